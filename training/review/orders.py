"""Exception-order review tables for the flagged-orders notebook and ``orderpulse report anomalies``.

Flagged orders of a period with their reasons, precision/recall against the flag threshold and calibration on
labelled history the model did not train on, and the reasons that recur most. Features are the point-in-time
features of ``features.order_features`` (through ``model.prepare``, exactly what the training job used), scores
and reasons come from the model itself (``score``, ``explain``, ``contributions``). Plots are in
``training.review.order_plots``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from features.order_features import order_feature_family
from training.anomaly.data import AnomalyTrainingData
from training.anomaly.models import AnomalyPyfunc, ExceptionClassifier, UnsupervisedDetector
from training.pyfunc import load_snapshot_model
from training.registry import ResolvedModel, resolve

__all__ = [
    "AnomalyModel",
    "load_anomaly_model",
    "labelled_history",
    "out_of_sample_rows",
    "PeriodScores",
    "score_period",
    "flagged_orders",
    "threshold_curve",
    "reliability",
    "reason_frequency",
    "shap_explanation",
]

OrderModel = ExceptionClassifier | UnsupervisedDetector


@dataclass(frozen=True)
class AnomalyModel:
    """A logged exception-order model loaded for review: the estimator, its snapshot tables, its source."""

    resolved: ResolvedModel
    model: OrderModel
    tables: dict[str, pd.DataFrame | None]

    def describe(self) -> str:
        r, m = self.resolved, self.model
        kind = "supervised LightGBM classifier" if isinstance(m, ExceptionClassifier) else "isolation forest"
        return (
            f"{r.label}: {kind}, trained on orders before {pd.Timestamp(m.cutoff_):%Y-%m-%d %H:%M}, "
            f"flag threshold {m.threshold_:.3f}"
        )


def load_anomaly_model(model_uri: str) -> AnomalyModel:
    """Resolve ``model_uri`` (``models:/<name>-anomaly@champion``, a version, ``runs:/...``) and load it."""
    resolved = resolve(model_uri)
    wrapper = load_snapshot_model(resolved.uri, kind=AnomalyPyfunc)
    return AnomalyModel(resolved, wrapper.model, {k: wrapper.table(k) for k in ("orders", "labels")})


def labelled_history(
    am: AnomalyModel, orders: pd.DataFrame | None = None, labels: pd.DataFrame | None = None
) -> AnomalyTrainingData:
    """Point-in-time features of every order and the labels known, split as the model's training split.

    Default tables: the model's snapshot, cut at its training cutoff, so the ``valid``/``calib`` rows are the
    ones the model's booster never trained on. Given newer tables, everything in them is used (``until=None``).
    """
    orders_ = am.tables["orders"] if orders is None else orders
    labels_ = am.tables["labels"] if labels is None else labels
    if orders_ is None:
        raise ValueError("The model was logged without its orders snapshot: pass an orders table.")
    until = am.model.cutoff_ if orders is None and labels is None else None
    if isinstance(am.model, ExceptionClassifier) and labels_ is None:
        raise ValueError(
            "The supervised classifier needs labels (order_id, label, labeled_at): pass a labels table."
        )
    return am.model.prepare(orders_, labels_, until)


def out_of_sample_rows(data: AnomalyTrainingData) -> np.ndarray:
    """Positions of the labelled rows the booster did not train on (``valid`` then ``calib`` slice)."""
    return np.concatenate([data.rows("valid"), data.rows("calib")])


@dataclass(frozen=True)
class PeriodScores:
    """The orders of a review period, scored and explained by the model.

    ``scored``: the model's ``explain`` frame (``order_id, score, flagged, raw, base_value, reasons``) with
    ``created_at``, ``customer_id`` and ``label`` (the outcome known at the model's cutoff, NaN when not
    known), highest score first; ``features``: the same orders' feature rows in the same order.
    """

    start: pd.Timestamp
    end: pd.Timestamp
    scored: pd.DataFrame
    features: pd.DataFrame

    @property
    def n_flagged(self) -> int:
        return int(self.scored["flagged"].sum())


def score_period(
    model: OrderModel,
    data: AnomalyTrainingData,
    start: Any = None,
    end: Any = None,
    days: int = 28,
    k: int = 3,
) -> PeriodScores:
    """Score and explain every order of ``data`` created in ``[start, end)`` (default: the last ``days`` days)."""
    features = data.features
    created = features["created_at"]
    t_end = pd.Timestamp(end) if end is not None else created.max().floor("D") + pd.Timedelta(days=1)
    t_start = pd.Timestamp(start) if start is not None else t_end - pd.Timedelta(days=int(days))
    if t_end <= t_start:
        raise ValueError(f"The period must end after it starts: got start={t_start}, end={t_end}.")
    inside = ((created >= t_start) & (created < t_end)).to_numpy()
    if not inside.any():
        raise ValueError(
            f"No order was created in [{t_start}, {t_end}); the orders run from {created.min()} to "
            f"{created.max()}. Choose another period."
        )
    window = features.loc[inside].reset_index(drop=True)
    explained = model.explain(window, k=k)
    explained.insert(1, "created_at", window["created_at"].to_numpy())
    customers = window["customer_id"].to_numpy() if "customer_id" in window.columns else None
    explained.insert(2, "customer_id", customers)
    y = data.y[inside].astype("float64")
    explained["label"] = np.where(y >= 0, y, np.nan)
    order = np.argsort(-explained["score"].to_numpy(), kind="stable")
    return PeriodScores(
        t_start,
        t_end,
        explained.iloc[order].reset_index(drop=True),
        window.iloc[order].reset_index(drop=True),
    )


def flagged_orders(scored: pd.DataFrame, top: int = 20, n_reasons: int = 3) -> pd.DataFrame:
    """The ``top`` flagged orders of ``score_period``'s frame, highest score first, one column per reason text."""
    flagged = scored.loc[scored["flagged"]].head(int(top))
    out = flagged[["order_id", "created_at", "customer_id", "score"]].reset_index(drop=True)
    for i in range(int(n_reasons)):
        out[f"reason_{i + 1}"] = [r[i]["text"] if len(r) > i else "" for r in flagged["reasons"]]
    return out


def threshold_curve(y: np.ndarray, scores: np.ndarray, thresholds: np.ndarray | None = None) -> pd.DataFrame:
    """Precision, recall and the share of orders flagged if the flag threshold were each of ``thresholds``.

    ``thresholds`` default to 0.00, 0.01, ..., 1.00. Precision is NaN where nothing would be flagged.
    Columns: ``threshold, n_flagged, flag_rate, precision, recall``.
    """
    y = np.asarray(y, dtype="int64")
    s = np.asarray(scores, dtype="float64")
    if y.shape != s.shape or not np.isin(y, (0, 1)).all():
        raise ValueError(
            f"threshold_curve needs 0/1 labels and scores of the same length; got {y.shape} labels "
            f"with values {sorted(set(np.unique(y)))[:5]} and {s.shape} scores."
        )
    t = (
        np.round(np.linspace(0.0, 1.0, 101), 2)
        if thresholds is None
        else np.asarray(thresholds, dtype="float64")
    )
    order = np.sort(s)
    pos_sorted = np.cumsum(y[np.argsort(s, kind="stable")][::-1])[::-1]  # positives at or above each rank
    first = np.searchsorted(order, t, side="left")  # flag s >= t: ranks first..n-1
    n_flagged = len(s) - first
    tp = np.where(first < len(s), pos_sorted[np.minimum(first, len(s) - 1)], 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(n_flagged > 0, tp / np.maximum(n_flagged, 1), np.nan)
        recall = tp / y.sum() if y.sum() else np.full(len(t), np.nan)
    return pd.DataFrame(
        {
            "threshold": t,
            "n_flagged": n_flagged,
            "flag_rate": n_flagged / max(len(s), 1),
            "precision": precision,
            "recall": recall,
        }
    )


def reliability(y: np.ndarray, scores: np.ndarray, n_bins: int = 10) -> pd.DataFrame:
    """Calibration table: per equal-width score bin, ``n``, ``mean_score`` and ``observed_rate`` (empty bins
    left out). A calibrated model has ``observed_rate`` close to ``mean_score`` in every bin."""
    y = np.asarray(y, dtype="float64")
    p = np.asarray(scores, dtype="float64")
    if int(n_bins) < 1:
        raise ValueError(f"n_bins must be >= 1. Got {n_bins!r} instead.")
    bins = np.minimum((p * n_bins).astype("int64"), n_bins - 1)
    n = np.bincount(bins, minlength=n_bins)
    keep = n > 0
    return pd.DataFrame(
        {
            "bin": np.flatnonzero(keep),
            "n": n[keep],
            "mean_score": np.bincount(bins, weights=p, minlength=n_bins)[keep] / n[keep],
            "observed_rate": np.bincount(bins, weights=y, minlength=n_bins)[keep] / n[keep],
        }
    )


def reason_frequency(scored: pd.DataFrame, top: int = 10, flagged_only: bool = True) -> pd.DataFrame:
    """The reasons that recur most among (flagged) orders: ``feature, family, n_orders, share_of_orders,
    mean_contribution, example`` (one example sentence), most frequent first."""
    rows = scored.loc[scored["flagged"]] if flagged_only else scored
    cols = ["feature", "family", "n_orders", "share_of_orders", "mean_contribution", "example"]
    reasons = rows["reasons"].explode().dropna()
    if reasons.empty:
        return pd.DataFrame(columns=cols)
    flat = pd.DataFrame(list(reasons), index=reasons.index)
    g = flat.groupby("feature", sort=False)
    out = pd.DataFrame(
        {
            "n_orders": g.size(),
            "mean_contribution": g["contribution"].mean(),
            "example": g["text"].first(),
        }
    )
    out["share_of_orders"] = out["n_orders"] / len(rows)
    out.index.name = "feature"
    out = out.reset_index()
    out["family"] = [_family(f) for f in out["feature"]]
    return (
        out.sort_values(["n_orders", "mean_contribution"], ascending=False)
        .head(int(top))[cols]
        .reset_index(drop=True)
    )


def shap_explanation(model: OrderModel, features: pd.DataFrame) -> tuple[Any, str]:
    """A ``shap.Explanation`` of ``features`` rows from the model's exact TreeSHAP contributions, with the
    orders' feature values as a person reads them (not encoded), and the name of its units (``"log-odds"``
    for the classifier, see ``training.explain``)."""
    from training.explain import import_shap

    shap = import_shap()
    contrib = model.contributions(features)
    explanation = shap.Explanation(
        values=contrib.values,
        base_values=contrib.base,
        data=features[list(contrib.feature_names)].to_numpy(dtype=object),
        feature_names=list(contrib.feature_names),
    )
    return explanation, contrib.output


def _family(feature: str) -> str:
    try:
        return order_feature_family(feature)
    except ValueError:
        return "other"
