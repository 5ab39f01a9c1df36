"""training/volume/job.py: the job on frames, and the learned detector logged to MLflow."""

from __future__ import annotations

import joblib
import mlflow
import numpy as np
import pandas as pd
import pytest

from training.volume.detector import VolumeDetector
from training.volume.job import detect_volume, log_detector


def _series(days=3):
    ds = pd.date_range("2024-01-01", periods=days * 24, freq="h")
    y = np.random.default_rng(1).poisson(80, len(ds)).astype(float)
    return pd.DataFrame({"series_id": "a", "ds": ds, "y": y})


def test_the_job_summarises_the_points_after_warmup():
    verdicts, detector, summary = detect_volume(_series(), freq="H", warmup="1d")
    assert len(verdicts) == 48 and isinstance(detector, VolumeDetector)
    assert summary == {
        "points": 48,
        "series": 1,
        "alerts": detector.alert_count(),
        "flagged_points": int(verdicts["flagged"].sum()),
        "points_in_warmup": 24,
        "series_only_in_warmup": 0,
        "missing_steps": 0,
        "series_with_missing_steps": 0,
        "points_outside_covariates": 0,
        "drivers": [],
    }


def test_the_job_counts_the_points_a_covariates_calendar_does_not_cover():
    promo = pd.DataFrame({"ds": pd.date_range("2024-01-01", periods=2, freq="D"), "promo": [0, 1]})
    _, _, summary = detect_volume(_series(), [promo], freq="H", warmup="1d")
    assert summary["drivers"] == ["promo_flag"] and summary["points_outside_covariates"] == 24  # day 3


def test_the_job_counts_steps_without_a_row_and_series_that_never_leave_the_warmup():
    series = pd.concat([_series().drop(index=[30, 31, 40]), _series(days=1).assign(series_id="b")])
    verdicts, _, summary = detect_volume(series, freq="H", warmup="1d")
    assert set(verdicts["series_id"]) == {"a"} and len(verdicts) == 45
    assert (
        summary["series_only_in_warmup"],
        summary["missing_steps"],
        summary["series_with_missing_steps"],
    ) == (
        1,
        3,
        1,
    )


def test_the_job_refuses_a_frequency_finer_than_every_series():
    series = _series().iloc[::2]  # points two hours apart
    with pytest.raises(
        ValueError, match=r"freq is 'H', but the points of every series are a multiple of 2h apart"
    ):
        detect_volume(series, freq="H", warmup="1d")


def test_the_logged_detector_continues_where_the_run_stopped():
    series = _series()
    _, detector, summary = detect_volume(series, freq="H", warmup="1d")
    logged = log_detector(detector, series, summary)
    run = mlflow.get_run(logged["run_id"])
    assert run.data.metrics["points"] == 48 and run.data.params["freq"] == "H"
    assert run.data.params["return_period"] == "14d"
    resumed = joblib.load(mlflow.artifacts.download_artifacts(logged["detector_uri"]))
    verdict = resumed.update("a", series["ds"].iloc[-1] + pd.Timedelta("1h"), 80 * 5)
    assert verdict["flagged"] and verdict["alert"] and verdict["direction"] == "surge"
