"""Probability calibration and the threshold policy of the exception-order models.

Calibration maps a classifier's raw margin (log-odds) to a probability that means what it says: of the orders
scored 0.8, about 80% become exceptions. ``fit_calibrator(margin, y, method="auto")`` picks

* **isotonic** when the calibration slice has at least ``ISOTONIC_MIN_ROWS`` rows and ``ISOTONIC_MIN_CLASS``
  of each class: non-parametric, so it also undoes class weighting (``scale_pos_weight``) and any monotone
  distortion. It is the *centered* variant (Oron & Flournoy 2017): the isotonic step function is replaced by
  the piecewise-linear curve through the centre of each of its blocks, so the calibrated score is strictly
  increasing between the first and last block (no plateaus: a threshold on the score cuts exactly where the
  same threshold on the margin would, and a flag budget flags the share it asks for) with the same
  calibration as the steps; beyond the outer block centres it is constant;
* **Platt** scaling otherwise (a logistic regression on the margin: two parameters, safe on a few hundred
  rows, but it can only fix a sigmoid-shaped miscalibration).

``ThresholdPolicy`` says how the flag threshold is chosen on validation data: reach a target precision with
the highest recall (default 0.6), or flag a fixed share of orders (``flag_budget``). When the target precision
is unreachable, ``choose_threshold`` falls back to the threshold of best F1 and says so in ``fallback``: it is
never silent.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

__all__ = [
    "ISOTONIC_MIN_ROWS",
    "ISOTONIC_MIN_CLASS",
    "CenteredIsotonicCalibrator",
    "PlattCalibrator",
    "fit_calibrator",
    "ThresholdPolicy",
    "ThresholdChoice",
    "choose_threshold",
]

ISOTONIC_MIN_ROWS = 1000
ISOTONIC_MIN_CLASS = 50
CalibrationMethod = Literal["auto", "isotonic", "platt"]


class CenteredIsotonicCalibrator:
    """Centered isotonic regression of ``y`` on the margin (see module docstring). ``predict`` -> [0, 1]."""

    method = "isotonic"

    def fit(self, margin: np.ndarray, y: np.ndarray) -> CenteredIsotonicCalibrator:
        margin, y = _check(margin, y)
        steps = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(margin, y)
        level = steps.predict(margin)
        blocks = pd.DataFrame({"level": level, "margin": margin}).groupby("level", sort=True)["margin"].mean()
        self.centers_ = blocks.to_numpy("float64")
        self.levels_ = blocks.index.to_numpy("float64")
        increasing = len(self.centers_) < 2 or bool(np.all(np.diff(self.centers_) > 0))
        if not increasing:  # pragma: no cover - a property of isotonic regression
            raise RuntimeError("isotonic block centres are not increasing; this is a bug, please report it")
        return self

    def predict(self, margin: np.ndarray) -> np.ndarray:
        return np.interp(np.asarray(margin, dtype="float64"), self.centers_, self.levels_)

    def __repr__(self) -> str:
        return f"CenteredIsotonicCalibrator({len(getattr(self, 'centers_', []))} blocks)"


class PlattCalibrator:
    """Platt scaling: ``sigmoid(a * margin + b)`` fitted by (nearly unregularised) logistic regression."""

    method = "platt"

    def fit(self, margin: np.ndarray, y: np.ndarray) -> PlattCalibrator:
        margin, y = _check(margin, y)
        lr = LogisticRegression(C=1e6, max_iter=1000).fit(margin[:, None], y)
        self.a_ = float(lr.coef_[0, 0])
        self.b_ = float(lr.intercept_[0])
        return self

    def predict(self, margin: np.ndarray) -> np.ndarray:
        z = self.a_ * np.asarray(margin, dtype="float64") + self.b_
        return 1.0 / (1.0 + np.exp(-z))

    def __repr__(self) -> str:
        return f"PlattCalibrator(a={getattr(self, 'a_', None)}, b={getattr(self, 'b_', None)})"


def fit_calibrator(
    margin: np.ndarray, y: np.ndarray, method: CalibrationMethod = "auto"
) -> CenteredIsotonicCalibrator | PlattCalibrator:
    """Fit the calibrator ``method`` chooses ("auto": isotonic on enough rows of both classes, else Platt)."""
    if method not in ("auto", "isotonic", "platt"):
        raise ValueError(f"calibration must be 'auto', 'isotonic' or 'platt'. Got {method!r} instead.")
    y = np.asarray(y)
    if method == "auto":
        n_pos = int((y == 1).sum())
        enough = len(y) >= ISOTONIC_MIN_ROWS and min(n_pos, len(y) - n_pos) >= ISOTONIC_MIN_CLASS
        method = "isotonic" if enough else "platt"
    calibrator = CenteredIsotonicCalibrator() if method == "isotonic" else PlattCalibrator()
    return calibrator.fit(margin, y)


@dataclass(frozen=True)
class ThresholdPolicy:
    """How the flag threshold is chosen on validation data; stored with the model.

    ``flag_budget`` (a fraction in (0, 1), e.g. 0.05 = flag the top 5% of orders) takes precedence; otherwise
    the lowest threshold whose validation precision reaches ``target_precision`` on at least ``min_flagged``
    flagged orders (the highest recall at that precision).
    """

    target_precision: float | None = 0.6
    flag_budget: float | None = None
    min_flagged: int = 10

    def __post_init__(self) -> None:
        if self.flag_budget is None and self.target_precision is None:
            raise ValueError(
                "ThresholdPolicy needs a target_precision or a flag_budget. Got neither; e.g. "
                "ThresholdPolicy(target_precision=0.6) or ThresholdPolicy(flag_budget=0.05)."
            )
        for name in ("target_precision", "flag_budget"):
            v = getattr(self, name)
            if v is not None and not (isinstance(v, int | float) and 0 < v < 1):
                raise ValueError(f"ThresholdPolicy.{name} must be a fraction in (0, 1). Got {v!r} instead.")
        if not isinstance(self.min_flagged, int) or self.min_flagged < 1:
            raise ValueError(
                f"ThresholdPolicy.min_flagged must be an int >= 1. Got {self.min_flagged!r} instead."
            )

    @classmethod
    def parse(
        cls, text: str | ThresholdPolicy | None, default: ThresholdPolicy | None = None
    ) -> ThresholdPolicy:
        """``"precision:0.6"`` or ``"budget:0.05"`` (the CLI's form); a policy passes through unchanged."""
        if text is None:
            return default if default is not None else cls()
        if isinstance(text, ThresholdPolicy):
            return text
        kind, _, value = str(text).partition(":")
        try:
            number = float(value)
        except ValueError:
            number = None
        if kind.strip() in ("precision", "budget") and number is not None:
            return cls(target_precision=number) if kind.strip() == "precision" else cls(flag_budget=number)
        raise ValueError(
            f"threshold policy must look like 'precision:0.6' (target precision) or 'budget:0.05' "
            f"(flag the top 5% of orders). Got {text!r} instead."
        )

    @property
    def kind(self) -> str:
        return "budget" if self.flag_budget is not None else "precision"

    def __str__(self) -> str:
        if self.kind == "budget":
            return f"budget:{self.flag_budget:g}"
        return f"precision:{self.target_precision:g}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ThresholdChoice:
    """The chosen threshold and what it achieved on the data it was chosen on."""

    threshold: float
    policy: str
    precision: float
    recall: float
    n_flagged: int
    flag_rate: float
    fallback: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def choose_threshold(scores: np.ndarray, y: np.ndarray | None, policy: ThresholdPolicy) -> ThresholdChoice:
    """Threshold on ``scores`` (flag ``score >= threshold``) following ``policy``; vectorised.

    ``y`` may be None only for a flag budget (precision and recall are then NaN).
    """
    scores = np.asarray(scores, dtype="float64")
    n = len(scores)
    if n == 0:
        raise ValueError("choose_threshold needs at least one score; the validation slice is empty.")
    if np.isnan(scores).any():
        raise ValueError(
            f"scores contain {int(np.isnan(scores).sum())} NaN value(s); score every validation row."
        )
    desc = np.sort(scores)[::-1]
    if policy.kind == "budget":
        k = max(1, int(np.ceil(policy.flag_budget * n)))
        threshold = float(desc[k - 1])
        return _achieved(scores, y, threshold, str(policy), None)
    if y is None:
        raise ValueError(
            f"a target precision ({policy}) needs labels to choose the threshold. Pass labels or "
            f"use a flag budget, e.g. ThresholdPolicy(flag_budget=0.05)."
        )
    y = np.asarray(y, dtype="int64")
    order = np.argsort(-scores, kind="stable")
    s, yy = scores[order], y[order]
    last_of_value = np.r_[s[1:] != s[:-1], True]  # flag everything >= s: cut after the last tie
    tp = np.cumsum(yy)[last_of_value]
    flagged = np.arange(1, n + 1)[last_of_value]
    cut = s[last_of_value]
    precision = tp / flagged
    recall = tp / max(int(y.sum()), 1)
    feasible = (precision >= policy.target_precision) & (flagged >= policy.min_flagged)
    if feasible.any():
        i = int(np.flatnonzero(feasible)[-1])  # lowest feasible threshold: the most recall
        return _achieved(scores, y, float(cut[i]), str(policy), None)
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(tp > 0, 2 * precision * recall / (precision + recall), 0.0)
    i = int(np.argmax(f1))
    best = precision[flagged >= policy.min_flagged].max() if (flagged >= policy.min_flagged).any() else np.nan
    note = (
        f"target precision {policy.target_precision:g} is unreachable on the validation data (best precision "
        f"with at least {policy.min_flagged} flagged orders: {best:.3f}); using the best-F1 threshold instead"
    )
    return _achieved(scores, y, float(cut[i]), str(policy), note)


def _achieved(
    scores: np.ndarray, y: np.ndarray | None, threshold: float, policy: str, fallback: str | None
) -> ThresholdChoice:
    flagged = scores >= threshold
    n_flagged = int(flagged.sum())
    if y is None:
        precision = recall = float("nan")
    else:
        y = np.asarray(y)
        tp = int((flagged & (y == 1)).sum())
        precision = tp / n_flagged if n_flagged else float("nan")
        recall = tp / int(y.sum()) if y.sum() else float("nan")
    return ThresholdChoice(threshold, policy, precision, recall, n_flagged, n_flagged / len(scores), fallback)


def _check(margin: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    margin = np.asarray(margin, dtype="float64")
    y = np.asarray(y, dtype="float64")
    if margin.shape != y.shape or margin.ndim != 1:
        raise ValueError(
            f"margin and y must be 1-d and of equal length. Got shapes {margin.shape} and {y.shape}."
        )
    if len(np.unique(y)) < 2:
        raise ValueError(
            f"calibration needs both classes in its slice; got only label(s) {np.unique(y).tolist()} "
            f"in {len(y)} rows. Use more labelled history or a larger calib_fraction."
        )
    return margin, y
