"""What the exception-order models train on: point-in-time features, the labels known at the cutoff, the
time-based split, and the numeric encoding of the feature frame.

Which orders are training rows (all counted in ``AnomalyTrainingData.report``)
--------------------------------------------------------------------------
``cutoff`` comes from ``until`` (``resolve_cutoff``): a date (midnight) means "up to and including that
day", so the cutoff is the next midnight; a timestamp with a time of day is the exact cutoff. Without
``until`` everything given is known: the cutoff is just after the last order and the last label.

1. Orders created before the cutoff get features (``features.order_features``) from orders and labels
   known before the cutoff; labels known only later are not used anywhere (``labels_after_cutoff``).
2. Training rows are the orders whose label is known at the cutoff (``labeled_at < cutoff``); orders with no
   label (guests; ``orders_without_label``) or a label known only later (``orders_label_unknown_at_cutoff``)
   are excluded.
3. **Label maturity.** Orders just before the cutoff are a biased sample: their quick labels (an exception
   found within days) are known, their slow ones (the "no exception" verdict that only comes when a
   30-day window closes) are not, so their known labels are mostly positives. Training rows are therefore
   restricted to orders created at least ``maturity`` before the cutoff, where ``maturity`` is the 99th
   percentile of the label delay (``labeled_at - created_at``) of the known labels (``label_maturity="auto"``;
   a Timedelta or None to choose). Excluded rows are counted (``orders_immature_excluded`` and how many of
   them were positive).

Split (never random): training rows sorted by ``created_at`` are cut at the ``1 - valid - calib`` and
``1 - calib`` quantiles of time into ``train`` (earliest), ``valid`` and ``calib`` (latest); orders created
at the same instant stay in one slice.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from features.columns import FeatureTable, category_positions, column_values, n_rows
from features.order_features import order_feature_names, order_features

__all__ = [
    "AnomalyTrainingData",
    "FeatureEncoder",
    "prepare_training_data",
    "resolve_cutoff",
    "parse_timestamp",
    "time_split",
    "label_maturity",
]

Part = Literal["train", "valid", "calib"]
MATURITY_QUANTILE = 0.99


@dataclass
class AnomalyTrainingData:
    """Features of every order before ``cutoff`` and, for the training rows, their label and slice.

    ``features``: one row per order (``order_id``, ``created_at``, ``customer_id``, features), sorted by time;
    ``y``: 0/1 for training rows, -1 elsewhere; ``part``: "train"/"valid"/"calib" for training rows, "" elsewhere.
    ``orders`` / ``labels`` are the input tables restricted to what was known at the cutoff (the snapshot a
    model is logged with).
    """

    cutoff: pd.Timestamp
    features: pd.DataFrame
    feature_names: list[str]
    y: np.ndarray
    part: np.ndarray
    orders: pd.DataFrame
    labels: pd.DataFrame | None
    maturity: pd.Timedelta
    report: dict[str, Any] = field(default_factory=dict)

    def rows(self, part: Part) -> np.ndarray:
        """Positions (into ``features``) of the rows of one slice."""
        return np.flatnonzero(self.part == part)

    def __str__(self) -> str:
        return "training data: " + ", ".join(f"{k}={v}" for k, v in self.report.items())


def resolve_cutoff(until: Any, orders: pd.DataFrame, labels: pd.DataFrame | None = None) -> pd.Timestamp:
    """The exclusive training cutoff for ``until`` (see module docstring)."""
    if until is None:
        last = orders["created_at"].max()
        if labels is not None and len(labels):
            last = max(last, labels["labeled_at"].max())
        return pd.Timestamp(last) + pd.Timedelta(1, "ns")
    ts = parse_timestamp(until, "until")
    return ts + pd.Timedelta(days=1) if ts == ts.normalize() else ts


def parse_timestamp(value: Any, what: str) -> pd.Timestamp:
    """``value`` as a naive UTC timestamp; a clear ``ValueError`` naming ``what`` when it is not one."""
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError):
        raise ValueError(
            f"{what} must be a date or timestamp such as 2011-07-01. Got {value!r} instead."
        ) from None
    if ts is pd.NaT:
        raise ValueError(f"{what} must be a date or timestamp such as 2011-07-01. Got {value!r} instead.")
    return ts.tz_convert("UTC").tz_localize(None) if ts.tzinfo is not None else ts


def label_maturity(orders_created: pd.Series, labeled_at: pd.Series) -> pd.Timedelta:
    """99th percentile of the label delay ``labeled_at - created_at`` (negative delays count as 0)."""
    delay = (labeled_at.to_numpy("datetime64[ns]") - orders_created.to_numpy("datetime64[ns]")).astype(
        "int64"
    )
    if len(delay) == 0:
        return pd.Timedelta(0)
    return pd.Timedelta(int(np.quantile(np.maximum(delay, 0), MATURITY_QUANTILE)), "ns")


def time_split(created_at: np.ndarray, valid_fraction: float, calib_fraction: float) -> np.ndarray:
    """ "train"/"valid"/"calib" per row by time quantiles (rows need not be sorted; ties share a slice)."""
    for name, v in (("valid_fraction", valid_fraction), ("calib_fraction", calib_fraction)):
        if not (isinstance(v, int | float) and 0 < v < 0.5):
            raise ValueError(f"{name} must be a fraction in (0, 0.5). Got {v!r} instead.")
    t = np.asarray(created_at, dtype="datetime64[ns]").astype("int64")
    s = np.sort(t)
    n = len(s)
    t_valid = s[min(n - 1, int(np.floor(n * (1 - valid_fraction - calib_fraction))))]
    t_calib = s[min(n - 1, int(np.floor(n * (1 - calib_fraction))))]
    return np.where(t < t_valid, "train", np.where(t < t_calib, "valid", "calib"))


def prepare_training_data(
    orders: pd.DataFrame,
    labels: pd.DataFrame | None,
    until: Any = None,
    *,
    maturity: str | pd.Timedelta | None = "auto",
    valid_fraction: float = 0.15,
    calib_fraction: float = 0.15,
    prior_strength: float = 10.0,
    require_labels: bool = True,
    features_fn: Any = None,
) -> AnomalyTrainingData:
    """Features, labels and slices as of the cutoff (see module docstring); raises when a slice is unusable.

    ``features_fn`` (default ``order_features``) computes the features; the dask engine passes
    ``training.engine.order_features_engine("dask")``, which returns the same frame."""
    for col in ("order_id", "created_at"):
        if col not in orders.columns:
            raise ValueError(
                f"orders lacks the column {col!r}; pass a validated orders table "
                f"(features.validation.validate(df, 'orders'))."
            )
    cutoff = resolve_cutoff(until, orders, labels)
    report: dict[str, Any] = {"cutoff": str(cutoff)}
    before = orders.loc[orders["created_at"] < cutoff]
    if before.empty:
        raise ValueError(
            f"no order was created before the cutoff {cutoff} (until={until!r}); the orders run from "
            f"{orders['created_at'].min()} to {orders['created_at'].max()}. Choose a later until."
        )
    known = None
    if labels is not None:
        known = labels.loc[labels["labeled_at"] < cutoff]
        report["labels_after_cutoff"] = int(len(labels) - len(known))
    features, feature_report = (features_fn or order_features)(before, known, prior_strength=prior_strength)
    report["orders_before_cutoff"] = len(features)
    report["labels_unknown_order"] = feature_report.labels_unknown_order
    names = order_feature_names(features)
    y = np.full(len(features), -1, dtype="int64")
    part = np.full(len(features), "", dtype=object)
    mature = pd.Timedelta(0)
    if known is not None and len(known):
        ids = features["order_id"]
        label_of = known.set_index("order_id")["label"]
        labeled_at = ids.map(known.set_index("order_id")["labeled_at"])
        has_label = ids.isin(label_of.index).to_numpy()
        in_full = ids.isin(labels["order_id"]).to_numpy()
        report["orders_without_label"] = int((~in_full).sum())
        report["orders_label_unknown_at_cutoff"] = int((in_full & ~has_label).sum())
        created = features["created_at"]
        if isinstance(maturity, str) and maturity == "auto":
            mature = label_maturity(created[has_label], labeled_at[has_label])
        elif maturity is not None:
            mature = pd.Timedelta(maturity)
        immature = (created >= cutoff - mature).to_numpy() & has_label
        report["label_maturity_days"] = round(mature / pd.Timedelta(days=1), 3)
        report["orders_immature_excluded"] = int(immature.sum())
        lab = ids.map(label_of).to_numpy(dtype="float64", na_value=np.nan)
        report["orders_immature_excluded_positive"] = int(np.nansum(lab[immature]))
        use = has_label & ~immature
        y[use] = lab[use].astype("int64")
        if use.any():
            part[use] = time_split(created.to_numpy()[use], valid_fraction, calib_fraction)
    n_used = int((y >= 0).sum())
    report["training_rows"] = n_used
    for p in ("train", "valid", "calib"):
        in_p = part == p
        report[f"rows_{p}"] = int(in_p.sum())
        report[f"positives_{p}"] = int(y[in_p].clip(0).sum())
    if require_labels:
        _check_slices(report, cutoff)
    return AnomalyTrainingData(
        cutoff,
        features,
        names,
        y,
        part,
        before.reset_index(drop=True),
        None if known is None else known.reset_index(drop=True),
        mature,
        report,
    )


class FeatureEncoder:
    """Feature frame -> float64 matrix, the same way at fit and predict time.

    ``categorical="codes"``: category codes of the categories seen at fit (unseen -> NaN; for LightGBM's native
    categorical splits). ``categorical="frequency"``: the category's share of the fit rows (unseen -> 0; an
    isolation forest isolates rare values quickly). ``impute=True`` replaces missing numbers with the fit
    median (the isolation forest cannot route missing values); how many were missing at fit is counted in
    ``n_missing_``.
    """

    def __init__(
        self,
        feature_names: list[str],
        categorical: Literal["codes", "frequency"] = "codes",
        impute: bool = False,
    ):
        self.feature_names = list(feature_names)
        self.categorical = categorical
        self.impute = impute

    def fit(self, frame: pd.DataFrame) -> FeatureEncoder:
        missing = [c for c in self.feature_names if c not in frame.columns]
        if missing:
            raise ValueError(
                f"the feature frame lacks column(s) {missing}; build it with "
                f"features.order_features (found {list(frame.columns)[:12]})."
            )
        self.categorical_ = [
            c
            for c in self.feature_names
            if isinstance(frame[c].dtype, pd.CategoricalDtype)
            or frame[c].dtype == object
            or pd.api.types.is_string_dtype(frame[c].dtype)
        ]
        self.categories_ = {}
        self.frequencies_ = {}
        for c in self.categorical_:
            values = frame[c].astype(object).where(frame[c].notna(), None)
            counts = pd.Series(values).value_counts(dropna=True)
            self.categories_[c] = list(counts.index)
            self.frequencies_[c] = (counts / max(len(frame), 1)).to_numpy("float64")
        self._codes = {c: {v: i for i, v in enumerate(cats)} for c, cats in self.categories_.items()}
        matrix = self._raw(frame)
        self.n_missing_ = {
            c: int(n) for c, n in zip(self.feature_names, np.isnan(matrix).sum(0), strict=True) if n
        }
        with warnings.catch_warnings():  # an all-missing column has no median: it is imputed with 0
            warnings.simplefilter("ignore", RuntimeWarning)
            medians = np.nanmedian(matrix, axis=0) if len(matrix) else np.zeros(len(self.feature_names))
        self.medians_ = np.nan_to_num(medians)
        return self

    @property
    def categorical_indices(self) -> list[int]:
        return [self.feature_names.index(c) for c in self.categorical_]

    def transform(self, frame: FeatureTable) -> np.ndarray:
        """The float64 matrix of ``frame`` (a DataFrame or a dict of column arrays, ``features.columns``)."""
        matrix = self._raw(frame)
        if self.impute:
            holes = np.isnan(matrix)
            if holes.any():
                matrix[holes] = np.broadcast_to(self.medians_, matrix.shape)[holes]
        return matrix

    def _raw(self, frame: FeatureTable) -> np.ndarray:
        out = np.empty((n_rows(frame), len(self.feature_names)), dtype="float64")
        for j, c in enumerate(self.feature_names):
            values = column_values(frame, c)
            if c in self.categories_:
                codes = category_positions(values, self.categories_[c], self._codes[c])
                if self.categorical == "codes":
                    out[:, j] = np.where(codes >= 0, codes, np.nan)
                else:
                    out[:, j] = np.where(codes >= 0, self.frequencies_[c][np.maximum(codes, 0)], 0.0)
                continue
            if values.dtype.kind in "fiub":
                out[:, j] = values
            else:  # nullable or object numbers
                out[:, j] = pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(
                    "float64", na_value=np.nan
                )
        return out


def _check_slices(report: dict[str, Any], cutoff: pd.Timestamp) -> None:
    problems = []
    for p in ("train", "valid", "calib"):
        n, pos = report[f"rows_{p}"], report[f"positives_{p}"]
        if pos == 0 or pos == n:
            problems.append(f"the {p} slice has {n} rows of which {pos} positive")
    if problems:
        raise ValueError(
            "cannot train the exception classifier: " + "; ".join(problems) + f" (cutoff {cutoff}; "
            f"{report.get('training_rows', 0)} orders have a label known and mature at the cutoff, "
            f"{report.get('orders_immature_excluded', 0)} were too recent, "
            f"{report.get('orders_without_label', 0)} have no label). Every slice needs both classes: pass more "
            f"labelled history, a later until, or larger valid/calib fractions; with few exceptions known yet, "
            f"train the unsupervised detector (--unsupervised: no labels needed)."
        )
