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

``ThresholdPolicy`` says how the flag threshold is chosen on validation data (``choose_threshold``); its text
form (``ThresholdPolicy.parse``, the CLI's ``--threshold-policy``) names the kind:

* ``f1:0.15``: the threshold of maximum F1 (precision and recall weighted equally) among those that flag at
  most 15% of the validation orders: the exception classifier's default. Best F1 adapts to what the scores
  can do (a fixed target precision either flags almost nothing, 0.6 kept 5% of the exceptions on Online
  Retail, or is easy, depending on the data), but on weak scores it sits where almost everything is flagged
  (29-42% of the orders on Online Retail at 30% precision): the cap keeps the review load workable. When
  the cap binds, the choice says so in ``note``;
* ``f1``: the threshold of maximum F1 without a cap;
* ``precision:0.6``: the lowest threshold whose precision reaches the target (the highest recall at that
  precision); when the target is unreachable it falls back to best F1 and says so in ``fallback``;
* ``budget:0.05``: flag a fixed share of orders (the unsupervised detector's policy);
* ``reviews:40``: flag about 40 orders per day, the review capacity of the team (the share of orders that
  gives 40 flags per calendar day on the validation slice);
* ``cost:5``: a missed exception costs 5 times a needless review; the threshold that minimises the total
  cost ``5 * missed + needless reviews`` on the validation slice (for calibrated scores near ``1 / (1 + 5)``).

Every choice is reported with what it achieved (``ThresholdChoice``); nothing falls back silently.
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
    "days_covered",
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
    """How the flag threshold is chosen on validation data; stored with the model (see module docstring).

    Set one of ``flag_budget`` (share of orders in (0, 1)), ``reviews_per_day`` (> 0), ``cost_fn`` (cost of a
    missed exception in needless reviews, > 0), ``max_f1=True`` or ``target_precision`` (in (0, 1)); when
    several are set, the first in that order wins and the others are cleared. ``min_flagged``: a target
    precision counts only where at least that many orders are flagged. ``max_flag_rate`` (in (0, 1), with
    ``max_f1`` only): the best-F1 threshold may flag at most that share of the orders.
    """

    target_precision: float | None = 0.6
    flag_budget: float | None = None
    min_flagged: int = 10
    reviews_per_day: float | None = None
    cost_fn: float | None = None
    max_f1: bool = False
    max_flag_rate: float | None = None

    def __post_init__(self) -> None:
        if (
            self.flag_budget is None
            and self.target_precision is None
            and self.reviews_per_day is None
            and self.cost_fn is None
            and not self.max_f1
        ):
            raise ValueError(
                "ThresholdPolicy needs a target_precision or a flag_budget (or reviews_per_day, cost_fn, "
                "max_f1=True). Got none; e.g. ThresholdPolicy(target_precision=0.6), "
                "ThresholdPolicy(flag_budget=0.05) or ThresholdPolicy.parse('f1')."
            )
        for name in ("target_precision", "flag_budget", "max_flag_rate"):
            v = getattr(self, name)
            if v is not None and not (_is_number(v) and 0 < v < 1):
                raise ValueError(f"ThresholdPolicy.{name} must be a fraction in (0, 1). Got {v!r} instead.")
        for name in ("reviews_per_day", "cost_fn"):
            v = getattr(self, name)
            if v is not None and not (_is_number(v) and np.isfinite(v) and v > 0):
                raise ValueError(f"ThresholdPolicy.{name} must be a number > 0. Got {v!r} instead.")
        if not isinstance(self.min_flagged, int) or self.min_flagged < 1:
            raise ValueError(
                f"ThresholdPolicy.min_flagged must be an int >= 1. Got {self.min_flagged!r} instead."
            )
        kind = self.kind
        for name, owner in _POLICY_FIELDS.items():  # one kind per policy: clear what does not apply
            if owner != kind and getattr(self, name) not in (None, False):
                object.__setattr__(self, name, False if name == "max_f1" else None)

    @classmethod
    def parse(
        cls, text: str | ThresholdPolicy | None, default: ThresholdPolicy | None = None
    ) -> ThresholdPolicy:
        """``"f1:0.15"``, ``"f1"``, ``"precision:0.6"``, ``"budget:0.05"``, ``"reviews:40"`` or ``"cost:5"``
        (the CLI's form); a policy passes through unchanged; None gives ``default`` (``ThresholdPolicy()``
        without one)."""
        if text is None:
            return default if default is not None else cls()
        if isinstance(text, ThresholdPolicy):
            return text
        kind, sep, value = str(text).strip().partition(":")
        kind = kind.strip().lower()
        if kind == "f1" and not sep:
            return cls(target_precision=None, max_f1=True)
        try:
            number = float(value)
        except ValueError:
            number = None
        field_of = {"precision": "target_precision", "budget": "flag_budget", "reviews": "reviews_per_day"}
        field_of["cost"] = "cost_fn"
        if kind == "f1" and number is not None:
            return cls(target_precision=None, max_f1=True, max_flag_rate=number)
        if kind in field_of and number is not None:
            return cls(**{"target_precision": None, field_of[kind]: number})
        raise ValueError(
            f"threshold policy must be 'f1' (best F1), 'f1:0.15' (best F1 flagging at most 15% of the "
            f"orders), 'precision:0.6' (target precision), 'budget:0.05' (flag the top 5% of orders), "
            f"'reviews:40' (about 40 flags per day) or 'cost:5' (a missed exception costs 5 needless "
            f"reviews). Got {text!r} instead."
        )

    @property
    def kind(self) -> str:
        """``"budget"``, ``"reviews"``, ``"cost"``, ``"f1"`` or ``"precision"``."""
        if self.flag_budget is not None:
            return "budget"
        if self.reviews_per_day is not None:
            return "reviews"
        if self.cost_fn is not None:
            return "cost"
        return "f1" if self.max_f1 else "precision"

    def __str__(self) -> str:
        value = {
            "budget": self.flag_budget,
            "reviews": self.reviews_per_day,
            "cost": self.cost_fn,
            "precision": self.target_precision,
            "f1": self.max_flag_rate,
        }.get(self.kind)
        return self.kind if value is None else f"{self.kind}:{value:g}"

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
    flags_per_day: float | None = None
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def metadata(self) -> dict[str, str]:
        """``threshold.<field>`` -> text (MLflow tags and the logged model's metadata; NaN/None left out)."""
        out = {}
        for key, value in self.to_dict().items():
            if value is None or (isinstance(value, float) and not np.isfinite(value)):
                continue
            out[f"threshold.{key}"] = f"{value:.6g}" if isinstance(value, float) else str(value)
        return out


def choose_threshold(
    scores: np.ndarray, y: np.ndarray | None, policy: ThresholdPolicy, *, days: float | None = None
) -> ThresholdChoice:
    """Threshold on ``scores`` (flag ``score >= threshold``) following ``policy``; vectorised.

    ``y`` may be None only for a flag budget or a review budget (precision and recall are then NaN).
    ``days``: the number of calendar days the scored orders cover; a review budget needs it, and the choice
    reports ``flags_per_day`` whenever it is given.
    """
    scores = np.asarray(scores, dtype="float64")
    n = len(scores)
    if n == 0:
        raise ValueError("choose_threshold needs at least one score; the validation slice is empty.")
    if np.isnan(scores).any():
        raise ValueError(
            f"scores contain {int(np.isnan(scores).sum())} NaN value(s); score every validation row."
        )
    if days is not None and not (_is_number(days) and days > 0):
        raise ValueError(f"days must be a number > 0 (the days the scores cover). Got {days!r} instead.")
    kind = policy.kind
    if kind in ("budget", "reviews"):
        if kind == "budget":
            k = max(1, int(np.ceil(policy.flag_budget * n)))
        elif days is None:
            raise ValueError(
                f"a review budget ({policy}) needs the number of days the validation orders cover "
                f"(days=...); or use a flag budget, e.g. ThresholdPolicy(flag_budget=0.05)."
            )
        else:
            k = min(n, max(1, round(policy.reviews_per_day * days)))
        threshold = float(np.sort(scores)[::-1][k - 1])
        return _achieved(scores, y, threshold, str(policy), None, days)
    if y is None:
        raise ValueError(
            f"the policy {policy} needs labels to choose the threshold. Pass labels or "
            f"use a flag budget, e.g. ThresholdPolicy(flag_budget=0.05)."
        )
    y = np.asarray(y, dtype="int64")
    cut, flagged, tp = _cuts(scores, y)
    n_pos = max(int(y.sum()), 1)
    precision, recall = tp / flagged, tp / n_pos
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(tp > 0, 2 * precision * recall / (precision + recall), 0.0)
    if (
        kind == "cost"
    ):  # cost of flagging everything >= cut: cost_fn per missed exception, 1 per needless flag
        cost = policy.cost_fn * (n_pos - tp) + (flagged - tp)
        i = int(np.argmin(cost))
        note = None
        if cost[i] >= policy.cost_fn * n_pos:
            note = (
                f"with {policy} flagging no order is cheapest on the validation data (no threshold costs less "
                f"than missing all {n_pos} exceptions); flagging only the top-scored orders"
            )
            i = 0
        return _achieved(scores, y, float(cut[i]), str(policy), note, days)
    if kind == "f1":
        return _best_f1(scores, y, cut, flagged, f1, policy, days)
    feasible = (precision >= policy.target_precision) & (flagged >= policy.min_flagged)
    if feasible.any():
        i = int(np.flatnonzero(feasible)[-1])  # lowest feasible threshold: the most recall
        return _achieved(scores, y, float(cut[i]), str(policy), None, days)
    i = int(np.argmax(f1))
    best = precision[flagged >= policy.min_flagged].max() if (flagged >= policy.min_flagged).any() else np.nan
    note = (
        f"target precision {policy.target_precision:g} is unreachable on the validation data (best precision "
        f"with at least {policy.min_flagged} flagged orders: {best:.3f}); using the best-F1 threshold instead"
    )
    return _achieved(scores, y, float(cut[i]), str(policy), note, days)


def _best_f1(
    scores: np.ndarray,
    y: np.ndarray,
    cut: np.ndarray,
    flagged: np.ndarray,
    f1: np.ndarray,
    policy: ThresholdPolicy,
    days: float | None,
) -> ThresholdChoice:
    """The cut of maximum F1 among those flagging at most ``policy.max_flag_rate`` of the orders."""
    best = int(np.argmax(f1))
    if policy.max_flag_rate is None:
        return _achieved(scores, y, float(cut[best]), str(policy), None, days)
    allowed = flagged <= max(1, int(np.floor(policy.max_flag_rate * len(scores))))
    i = int(np.argmax(np.where(allowed, f1, -1.0))) if allowed.any() else 0
    note = None
    if i != best:
        note = (
            f"the best-F1 threshold would flag {flagged[best] / len(scores):.1%} of the orders (F1 "
            f"{f1[best]:.3f}); capped at {policy.max_flag_rate:.1%} (F1 {f1[i]:.3f})"
        )
    return _achieved(scores, y, float(cut[i]), str(policy), None, days, note)


def days_covered(created_at: np.ndarray) -> float | None:
    """Calendar days from the first to the last timestamp, both days counted (None when there is none)."""
    if len(created_at) == 0:
        return None
    day = np.asarray(created_at, dtype="datetime64[D]")
    return float((day.max() - day.min()).astype("int64") + 1)


_POLICY_FIELDS = {
    "flag_budget": "budget",
    "reviews_per_day": "reviews",
    "cost_fn": "cost",
    "max_f1": "f1",
    "max_flag_rate": "f1",
    "target_precision": "precision",
}


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _cuts(scores: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every distinct threshold (descending) with the orders flagged and the exceptions among them."""
    order = np.argsort(-scores, kind="stable")
    s, yy = scores[order], y[order]
    last_of_value = np.r_[s[1:] != s[:-1], True]  # flag everything >= s: cut after the last tie
    tp = np.cumsum(yy)[last_of_value]
    flagged = np.arange(1, len(s) + 1)[last_of_value]
    return s[last_of_value], flagged, tp


def _achieved(
    scores: np.ndarray,
    y: np.ndarray | None,
    threshold: float,
    policy: str,
    fallback: str | None,
    days: float | None = None,
    note: str | None = None,
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
    per_day = None if days is None else n_flagged / float(days)
    return ThresholdChoice(
        threshold, policy, precision, recall, n_flagged, n_flagged / len(scores), fallback, per_day, note
    )


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
