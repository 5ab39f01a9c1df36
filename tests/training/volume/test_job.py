"""training/volume/job.py: files -> verdicts file, and the learned detector logged to MLflow."""

from __future__ import annotations

import joblib
import mlflow
import numpy as np
import pandas as pd
import pytest

from training.volume.detector import VolumeDetector
from training.volume.job import detect_volume


def _write(path, days=3):
    ds = pd.date_range("2024-01-01", periods=days * 24, freq="h")
    y = np.random.default_rng(1).poisson(80, len(ds)).astype(float)
    pd.DataFrame({"series_id": ["a"] * len(ds), "ds": ds, "y": y}).to_csv(path, index=False)
    return ds


def test_the_logged_detector_continues_where_the_run_stopped(tmp_path):
    ds = _write(tmp_path / "s.csv")
    summary = detect_volume(
        tmp_path / "s.csv", out=tmp_path / "v.parquet", freq="H", warmup="1d", log_mlflow=True
    )
    assert (summary["points"], summary["series"], summary["points_in_warmup"]) == (48, 1, 24)
    run = mlflow.get_run(summary["run_id"])
    assert run.data.metrics["points"] == 48 and run.data.params["freq"] == "H"
    detector = joblib.load(mlflow.artifacts.download_artifacts(summary["detector_uri"]))
    assert isinstance(detector, VolumeDetector)
    verdict = detector.update("a", ds[-1] + pd.Timedelta("1h"), 80 * 5)
    assert verdict["flagged"] and verdict["alert"] and verdict["direction"] == "surge"


def test_bad_rows_are_refused_before_anything_is_written(tmp_path):
    _write(tmp_path / "s.csv")
    frame = pd.read_csv(tmp_path / "s.csv")
    frame.loc[3, "y"] = -5
    frame.to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(ValueError, match="y"):
        detect_volume(tmp_path / "bad.csv", out=tmp_path / "v.csv", freq="H", warmup="1d")
    assert not (tmp_path / "v.csv").exists()
