"""The volume detection job on frames: ``detect_volume`` runs a ``VolumeDetector`` over validated ``series``
(and covariates) frames and summarises the result; ``log_detector`` logs parameters, counts, the data
fingerprint and the learned detector to MLflow (``joblib.load`` of the artifact gives the ``VolumeDetector``
back, so a later run or the service continues from it). Reading and writing files is
``orderpulse.jobs.volume``'s business; progress goes through ``training.progress``.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pandas.tseries.frequencies import to_offset

from features.calendar import step_length
from features.covariates import driver_flags
from training.progress import Progress
from training.volume.detector import VolumeDetector

__all__ = ["detect_volume", "log_detector", "DETECTOR_ARTIFACT", "EXPERIMENT"]

DETECTOR_ARTIFACT = "volume_detector/detector.joblib"
EXPERIMENT = "orderpulse-volume"


def detect_volume(
    series: pd.DataFrame,
    covariates: Sequence[pd.DataFrame] = (),
    *,
    progress: Progress | None = None,
    **params: Any,
) -> tuple[pd.DataFrame, VolumeDetector, dict[str, Any]]:
    """Verdicts of every point after each series' warm-up, the fitted detector and a summary (points,
    series, alerts, flagged points, points in warm-up, series with no point after their warm-up, grid steps
    without a row, which are not judged, and the series that have them, points a covariates table with
    drivers has no row for (their drivers read as 0: nothing planned), drivers). ``params`` go to
    ``VolumeDetector``; a ``freq`` finer than every series' spacing is refused."""
    detector = VolumeDetector(**params)
    verdicts = detector.detect(series, list(covariates) or None, progress=progress)
    steps = _steps_between_points(series, detector.freq)
    keys = series[["series_id", "ds"]]
    covered = np.ones(len(series), dtype=bool)
    for table in covariates:
        flags, known = driver_flags(keys, table, with_coverage=True)
        if flags.shape[1]:
            covered &= known
    n_series = int(series["series_id"].nunique())
    summary = {
        "points": int(len(verdicts)),
        "series": n_series,
        "alerts": detector.alert_count(),
        "flagged_points": int(verdicts["flagged"].sum()),
        "points_in_warmup": int(len(series) - len(verdicts)),
        "series_only_in_warmup": n_series - int(verdicts["series_id"].nunique()),
        "missing_steps": int((steps - 1).sum()),
        "series_with_missing_steps": int(steps.loc[steps > 1].index.nunique()),
        "points_outside_covariates": int((~covered).sum()) if detector.drivers_ else 0,
        "drivers": detector.drivers_,
    }
    return verdicts, detector, summary


def _steps_between_points(series: pd.DataFrame, freq: str) -> pd.Series:
    """Grid steps from each point to the next of its series (index: series_id), where the gap is a whole
    number of steps (points off the grid are the detector's to refuse). Refuses a ``freq`` finer than the data:
    when every gap in the table is a multiple of one longer step, that step is the data's frequency."""
    frame = series[["series_id", "ds"]].sort_values(["series_id", "ds"], kind="stable")
    ids = frame["series_id"].astype("string").to_numpy()
    gaps = np.diff(frame["ds"].to_numpy("datetime64[ns]").view("int64"))[ids[1:] == ids[:-1]]
    step_ns = int(step_length(freq).value)
    on_grid = (gaps > 0) & (gaps % step_ns == 0)
    steps = pd.Series(gaps[on_grid] // step_ns, index=ids[1:][ids[1:] == ids[:-1]][on_grid], dtype="int64")
    common = int(np.gcd.reduce(steps.to_numpy())) if len(steps) else 1
    if common > 1:
        data_freq = to_offset(pd.Timedelta(step_ns * common, unit="ns")).freqstr
        raise ValueError(
            f"freq is {freq!r}, but the points of every series are a multiple of {data_freq} apart: "
            f"{common - 1} of every {common} steps would have no row and go unjudged. Fix: pass the frequency "
            f"the data has (--freq {data_freq}), or write y = 0 for the steps without orders."
        )
    return steps


def log_detector(detector: VolumeDetector, series: pd.DataFrame, summary: dict[str, Any]) -> dict[str, str]:
    """Log one run to the ``orderpulse-volume`` experiment; returns its ``run_id`` and ``detector_uri``."""
    import joblib
    import mlflow

    from training import tracking

    with tracking.start_run(EXPERIMENT, run_name="detect-volume") as run:
        mlflow.log_params({k: str(v) for k, v in detector.get_params().items()})
        mlflow.log_metrics(
            {k: float(summary[k]) for k in ("points", "series", "alerts", "flagged_points", "missing_steps")}
        )
        tracking.log_fingerprint(tracking.data_fingerprint(series))
        with tempfile.TemporaryDirectory() as tmp:
            file = Path(tmp) / Path(DETECTOR_ARTIFACT).name
            joblib.dump(detector, file)
            mlflow.log_artifact(str(file), artifact_path=str(Path(DETECTOR_ARTIFACT).parent))
        return {"run_id": run.info.run_id, "detector_uri": f"runs:/{run.info.run_id}/{DETECTOR_ARTIFACT}"}
