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

import pandas as pd

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
    series, alerts, flagged points, points in warm-up, drivers). ``params`` go to ``VolumeDetector``."""
    detector = VolumeDetector(**params)
    verdicts = detector.detect(series, list(covariates) or None, progress=progress)
    summary = {
        "points": int(len(verdicts)),
        "series": int(series["series_id"].nunique()),
        "alerts": detector.alert_count(),
        "flagged_points": int(verdicts["flagged"].sum()),
        "points_in_warmup": int(len(series) - len(verdicts)),
        "drivers": detector.drivers_,
    }
    return verdicts, detector, summary


def log_detector(detector: VolumeDetector, series: pd.DataFrame, summary: dict[str, Any]) -> dict[str, str]:
    """Log one run to the ``orderpulse-volume`` experiment; returns its ``run_id`` and ``detector_uri``."""
    import joblib
    import mlflow

    from training import tracking

    with tracking.start_run(EXPERIMENT, run_name="detect-volume") as run:
        mlflow.log_params({k: str(v) for k, v in detector.get_params().items()})
        mlflow.log_metrics({k: float(summary[k]) for k in ("points", "series", "alerts", "flagged_points")})
        tracking.log_fingerprint(tracking.data_fingerprint(series))
        with tempfile.TemporaryDirectory() as tmp:
            file = Path(tmp) / Path(DETECTOR_ARTIFACT).name
            joblib.dump(detector, file)
            mlflow.log_artifact(str(file), artifact_path=str(Path(DETECTOR_ARTIFACT).parent))
        return {"run_id": run.info.run_id, "detector_uri": f"runs:/{run.info.run_id}/{DETECTOR_ARTIFACT}"}
