"""Exact TreeSHAP contributions, shared by the demand forecaster and the exception-order models.

A ``Contributions`` holds, for every explained row, one additive contribution per feature and the base value,
in the *raw output units of the explained model*: ``base + values.sum(axis=1) == raw`` exactly (up to float
rounding). What "raw" means depends on the model and is recorded in ``Contributions.output``:

=========================  ==============================================================================
model                      raw output
=========================  ==============================================================================
LightGBM binary booster    log-odds (the margin before the sigmoid); a calibrated probability on top of it
                           is *not* additive in the contributions, so explanations stay in log-odds and the
                           calibrated score is reported next to them
LightGBM regression        the prediction in the model's target space (log1p(y) for the forecaster)
IsolationForest            minus the mean isolation path length (``"anomaly (-path length)"``): TreeSHAP of
                           the path length (``shap.TreeExplainer``), negated so that a positive contribution
                           pushes towards "anomalous" exactly like a positive log-odds contribution does
=========================  ==============================================================================

Both paths are exact TreeSHAP on the served model (LightGBM's own ``pred_contrib``; the shap package's C
implementation for scikit-learn's IsolationForest), not a surrogate. ``top_contributions`` picks the reasons
of each row (positive contributions first, largest first) and ``family_sums`` adds contributions by feature
family ("+18% promo").
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "Contributions",
    "lgbm_contributions",
    "isolation_forest_explainer",
    "isolation_forest_contributions",
    "top_contributions",
    "family_sums",
    "import_shap",
]

_ZERO = 1e-12  # contributions smaller than this are "the feature played no part" (not a reason)


@dataclass(frozen=True)
class Contributions:
    """Per-row, per-feature additive contributions: ``base + values.sum(1) == raw`` (see module docstring).

    ``values`` has shape (n_rows, n_features), ``base`` shape (n_rows,); ``output`` names the units.
    """

    values: np.ndarray
    base: np.ndarray
    feature_names: tuple[str, ...]
    output: str

    def __post_init__(self) -> None:
        if self.values.ndim != 2 or self.values.shape[1] != len(self.feature_names):
            raise ValueError(
                f"values must have shape (n_rows, {len(self.feature_names)}) for "
                f"{len(self.feature_names)} feature names. Got shape {self.values.shape} instead."
            )
        if self.base.shape != (self.values.shape[0],):
            raise ValueError(
                f"base must have one value per row ({self.values.shape[0]}). "
                f"Got shape {self.base.shape} instead."
            )

    def __len__(self) -> int:
        return self.values.shape[0]

    @property
    def raw(self) -> np.ndarray:
        """The model's raw output the contributions add up to: ``base + values.sum(axis=1)``."""
        return self.base + self.values.sum(axis=1)

    def frame(self, index: pd.Index | Sequence[Any] | None = None) -> pd.DataFrame:
        """Contributions as a wide frame, one column per feature."""
        return pd.DataFrame(self.values, columns=list(self.feature_names), index=index)

    def top(self, k: int = 5, positive_only: bool = False) -> np.ndarray:
        """``top_contributions(self.values, k, positive_only)``: feature indices per row, -1 padded."""
        return top_contributions(self.values, k=k, positive_only=positive_only)

    def by_family(self, family_of: Callable[[str], str]) -> pd.DataFrame:
        """``family_sums(self, family_of)``."""
        return family_sums(self, family_of)

    def take(self, rows: np.ndarray | Sequence[int]) -> Contributions:
        """The contributions of a subset of rows."""
        rows = np.asarray(rows)
        return Contributions(self.values[rows], self.base[rows], self.feature_names, self.output)


def lgbm_contributions(
    booster: Any,
    X: np.ndarray | pd.DataFrame,
    feature_names: Sequence[str] | None = None,
    num_iteration: int | None = None,
    output: str = "log-odds",
) -> Contributions:
    """Exact TreeSHAP of a single-output LightGBM ``Booster`` (``predict(pred_contrib=True)``).

    ``X`` is what the booster was trained on (a float matrix, or a frame with the training dtypes). Passing a
    float64 matrix skips LightGBM's pandas conversion, which costs more than the TreeSHAP of one row.
    Prediction runs on one thread: for the few rows of a request that is the fastest.
    """
    names = tuple(feature_names if feature_names is not None else booster.feature_name())
    out = np.asarray(booster.predict(X, pred_contrib=True, num_iteration=num_iteration, num_threads=1))
    if out.ndim != 2 or out.shape[1] != len(names) + 1:
        raise ValueError(
            f"lgbm_contributions explains single-output boosters with {len(names)} features; "
            f"pred_contrib returned shape {out.shape}. Multiclass boosters are not supported: "
            f"explain one class's booster at a time."
        )
    return Contributions(out[:, :-1].astype("float64"), out[:, -1].astype("float64"), names, output)


def isolation_forest_explainer(forest: Any) -> Any:
    """A ``shap.TreeExplainer`` of a fitted scikit-learn ``IsolationForest`` (build once, reuse: building it
    walks every tree in Python and costs far more than explaining a row)."""
    return import_shap().TreeExplainer(forest)


def import_shap() -> Any:
    """``import shap`` (heavy: imported only when needed) without its matplotlib deprecation chatter."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        import shap
    return shap


def isolation_forest_contributions(
    explainer: Any, X: np.ndarray, feature_names: Sequence[str]
) -> Contributions:
    """Exact TreeSHAP of the mean isolation path length, negated (positive = pushes towards anomalous).

    ``explainer`` comes from ``isolation_forest_explainer``; ``X`` must be the float matrix the forest was
    fitted on (no missing values). ``raw`` is then minus the mean path length over the trees, the same path
    length scikit-learn scores with: ``forest.score_samples(X) == -2 ** (raw / c(max_samples))``.
    """
    X = np.ascontiguousarray(X, dtype=np.float64)
    values = np.asarray(explainer.shap_values(X, check_additivity=False), dtype="float64")
    if values.ndim == 1:
        values = values[None, :]
    expected = float(np.ravel(explainer.expected_value)[0])
    base = np.full(values.shape[0], -expected)
    return Contributions(-values, base, tuple(feature_names), "anomaly (-path length)")


def top_contributions(values: np.ndarray, k: int = 5, positive_only: bool = False) -> np.ndarray:
    """Indices of each row's ``k`` leading features, as an (n_rows, k) int array padded with -1.

    Order: positive contributions first, largest first; then (unless ``positive_only``) negative ones by
    magnitude, largest first. Zero contributions (features the trees did not use for that row) never appear.
    Vectorised over rows.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1 (the number of reasons per row). Got {k!r} instead.")
    values = np.asarray(values, dtype="float64")
    if values.ndim != 2:
        raise ValueError(f"values must be a 2-d (rows x features) array. Got {values.ndim} dimension(s).")
    positive = values > _ZERO
    eligible = positive if positive_only else np.abs(values) > _ZERO
    # sort key, ascending: eligible positives (by -value), then eligible negatives (by -|value|), then the rest
    key = np.where(positive, -values, np.where(eligible, 1.0 / (1.0 + np.abs(values)), np.inf))
    order = np.argsort(key, axis=1, kind="stable")[:, :k]
    keep = np.take_along_axis(eligible, order, axis=1)
    out = np.where(keep, order, -1)
    if out.shape[1] < k:  # fewer features than k
        out = np.hstack([out, np.full((out.shape[0], k - out.shape[1]), -1, dtype=out.dtype)])
    return out


def family_sums(contributions: Contributions, family_of: Callable[[str], str]) -> pd.DataFrame:
    """Contributions summed by feature family (one column per family, in first-seen order)."""
    families = [family_of(name) for name in contributions.feature_names]
    codes, uniques = pd.factorize(pd.Series(families), sort=False)
    n_families = len(uniques)
    onehot = np.zeros((len(families), n_families))
    onehot[np.arange(len(families)), codes] = 1.0
    return pd.DataFrame(contributions.values @ onehot, columns=list(uniques))
