"""Target transforms of the LightGBM forecaster: what the trees learn, and how a forecast is read back.

Every transform is an offset in ``log1p`` space, computed per row from ``y`` known at the row's forecast
origin (the frame's ``y`` features, which read ``y`` at ``t - min_lag`` or earlier, see ``features.lags``):

=========  ===========================================================  ===============================
name       the trees learn ``z = log1p(y) - offset`` with offset        read as
=========  ===========================================================  ===============================
``log``    0                                                            relative errors (the default
                                                                        before issue 17)
``level``  ``log1p(L)``, L = mean of the last ``level_window``          y relative to the series' recent
           observed open steps before the origin                        level: a tree can then forecast
           (``config.level_name``)                                      a level it never saw in training
``yoy``    ``log1p(L) + y_yoy_log_ratio_mean_*``: the level times last  the level carrying last year's
           year's (smoothed) ratio to the level then                    ramp; trees learn the rest
=========  ===========================================================  ===============================

So the forecast is ``expm1(zhat + offset)``: ``inverse(forward(y, offset), offset) == y``. Where a row's level
(or last year's ratio) is unknown (too little history), its offset falls back to what is known (``yoy`` ->
``level`` -> 0); the fallbacks are counted. The offset is a function of past ``y`` only, so explanations add it
to the ``level/lags`` family: ``base + sum(contributions) == log1p(yhat)`` still holds in the documented space.

This is what mlforecast's target transforms do (``LocalStandardScaler``, ``Differences``,
``GlobalSklearnTransformer(log1p)``), adapted to the direct strategy: the scale is the level at each row's
own origin (``t - min_lag``), not one scale per series fitted on the whole history, so no training row is
scaled with values after its origin. ``"auto"`` (``LGBMForecaster``) fits each of ``AUTO_CANDIDATES`` on the
data before its calibration holdout and keeps the one with the lowest holdout WAPE.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = [
    "TRANSFORMS",
    "AUTO_CANDIDATES",
    "check_transform",
    "target_offsets",
    "forward",
    "inverse",
]

TRANSFORMS = ("log", "level", "yoy")
AUTO_CANDIDATES = ("log", "level", "yoy")


def check_transform(name: str) -> str:
    """``name`` if it is a transform or ``"auto"``; a ``ValueError`` naming the choices otherwise."""
    if name not in (*TRANSFORMS, "auto"):
        raise ValueError(f"target_transform must be one of {(*TRANSFORMS, 'auto')}. Got {name!r} instead.")
    return name


def target_offsets(frame: pd.DataFrame, name: str, level_name: str) -> tuple[np.ndarray, dict[str, int]]:
    """The ``log1p``-space offset of each row of a forecast frame, and counts of rows that fell back.

    ``level_name`` is the frame's level column (``ForecastFeatureConfig.level_name``).
    """
    check_transform(name)
    n = len(frame)
    if name == "log":
        return np.zeros(n), {}
    counts: dict[str, int] = {}
    level = _column(frame, level_name)
    known = np.isfinite(level)
    offset = np.where(known, np.log1p(np.clip(level, 0.0, None)), 0.0)
    counts["transform_rows_without_level"] = int((~known).sum())
    if name == "yoy":
        yearly = [c for c in frame.columns if c.startswith("y_yoy_log_ratio_mean_")]
        ratio = _column(frame, yearly[0]) if yearly else np.full(n, np.nan)
        has = np.isfinite(ratio) & known
        offset = offset + np.where(has, ratio, 0.0)
        counts["transform_rows_without_last_year"] = int((known & ~has).sum())
    return offset, counts


def forward(y: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """The training target ``log1p(y) - offset``."""
    return np.log1p(np.asarray(y, dtype="float64")) - offset


def inverse(z: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """The forecast in ``y`` units (clipped at 0) from the model's output ``z``."""
    return np.clip(np.expm1(np.asarray(z, dtype="float64") + offset), 0.0, None)


def _column(frame: pd.DataFrame, name: str) -> np.ndarray:
    if name not in frame.columns:
        return np.full(len(frame), np.nan)
    return frame[name].to_numpy(dtype="float64", na_value=np.nan)
