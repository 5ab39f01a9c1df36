"""``detect_volume``: series (and covariates) files -> ``VolumeDetector`` verdicts -> CSV/Parquet, optionally
logged to MLflow (parameters, counts and the learned detector state as an artifact, so a later run or the
service can continue from it: ``joblib.load`` gives the ``VolumeDetector`` back).

Progress is reported through a callback ``(series done, series total)``; nothing here prints.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from features.io import load_table, write_frame
from training.volume.detector import Progress, VolumeDetector

__all__ = ["detect_volume", "DETECTOR_ARTIFACT", "EXPERIMENT", "MAX_PLOTS"]

DETECTOR_ARTIFACT = "volume_detector/detector.joblib"
EXPERIMENT = "orderpulse-volume"
MAX_PLOTS = 20


def detect_volume(
    series: str | Path,
    covariates: Sequence[str | Path] = (),
    *,
    out: str | Path,
    freq: str = "5min",
    warmup: str = "8d",
    threshold: float | None = None,
    return_period: str | None = "14d",
    unit: str = "orders",
    on_bad_rows: str = "raise",
    log_mlflow: bool = False,
    plots: str | Path | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Detect volume anomalies in every series; write one row per point after warm-up to ``out``.

    Returns the summary the CLI prints: points, series, alerts, flagged points, rows dropped by validation,
    the output path and (with ``log_mlflow``) the run id and artifact URI of the learned detector. ``plots``: a
    directory that receives ``<series_id>.png`` (band and alerts, ``training.review.volume_plots``) for the
    series with alerts, most alerts first, at most ``MAX_PLOTS``.
    """
    if not str(out).lower().endswith((".csv", ".csv.gz", ".parquet", ".pq")):
        raise ValueError(f"--out must end in .csv or .parquet. Got {str(out)!r}.")
    frame, report = load_table(series, "series", on_bad_rows=on_bad_rows)
    tables = [load_table(path, "covariates", on_bad_rows=on_bad_rows)[0] for path in covariates]
    params: dict[str, Any] = {"freq": freq, "warmup": warmup, "return_period": return_period, "unit": unit}
    if threshold is not None:
        params["threshold"] = threshold
    detector = VolumeDetector(**params)
    verdicts = detector.detect(frame, tables or None, progress=progress)
    path = write_frame(verdicts, out)
    summary: dict[str, Any] = {
        "points": int(len(verdicts)),
        "series": int(frame["series_id"].nunique()),
        "alerts": detector.alert_count(),
        "flagged_points": int(verdicts["flagged"].sum()),
        "points_in_warmup": int(len(frame) - len(verdicts)),
        "drivers": detector.drivers_,
        "rows_repaired": report.repairs,
        "out": str(path),
    }
    if plots is not None:
        summary["plots"] = _plots(verdicts, Path(plots), unit)
    if log_mlflow:
        summary.update(_log(detector, frame, summary))
    return summary


def _plots(verdicts: pd.DataFrame, folder: Path, unit: str) -> list[str]:
    import matplotlib.pyplot as plt

    from training.review.volume_plots import volume_band

    flagged = verdicts["flagged"].astype(bool)
    opens = flagged & ~flagged.groupby(verdicts["series_id"]).shift(1, fill_value=False).astype(bool)
    counts = opens.groupby(verdicts["series_id"]).sum().sort_values(ascending=False, kind="stable")
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for sid in counts[counts > 0].index[:MAX_PLOTS]:
        fig = volume_band(verdicts, str(sid), unit=unit)
        path = folder / f"{_file_name(str(sid))}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(str(path))
    return written


def _file_name(series_id: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in series_id) or "series"


def _log(detector: VolumeDetector, frame: pd.DataFrame, summary: dict[str, Any]) -> dict[str, str]:
    import joblib
    import mlflow

    from training import tracking

    with tracking.start_run(EXPERIMENT, run_name="detect-volume") as run:
        mlflow.log_params({k: str(v) for k, v in detector.__dict__.items() if not k.endswith("_")})
        mlflow.log_metrics({k: float(summary[k]) for k in ("points", "series", "alerts", "flagged_points")})
        tracking.log_fingerprint(tracking.data_fingerprint(frame))
        with tempfile.TemporaryDirectory() as tmp:
            file = Path(tmp) / Path(DETECTOR_ARTIFACT).name
            joblib.dump(detector, file)
            mlflow.log_artifact(str(file), artifact_path=str(Path(DETECTOR_ARTIFACT).parent))
        return {"run_id": run.info.run_id, "detector_uri": f"runs:/{run.info.run_id}/{DETECTOR_ARTIFACT}"}
