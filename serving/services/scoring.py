"""Scoring orders: request orders -> point-in-time features -> calibrated score, flag, reasons, audit records.

The same computation as the batch job ``training.anomaly.job.score_orders``: features from
``OrderHistory.features`` (``features.order_features``, the code training used), ``model.score`` for the
score, ``model.explain_records`` (exact TreeSHAP, ``training.anomaly.reasons`` sentences) for the reasons. So for the
same order and the same history the API and ``orderpulse score`` return the same score and reasons.

The orders of one request see each other (an order sees the request's orders created strictly before it),
exactly as the orders of one file do in the batch job. Scoring does not add an order to the history: the OMS
reports orders through ``POST /v1/events``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from features.columns import Columns, take_rows
from features.ids import WHOLE_FLOAT_IDS, ids_as_text
from features.order_features import CATEGORICAL_COLUMNS, OrderHistory
from features.validation import ValidationReport
from serving.errors import ApiError
from serving.models import LoadedModel
from serving.schemas.orders import ExplainMode, OrderIn
from serving.store.audit import AuditRecord

__all__ = [
    "ScoreOutcome",
    "score_orders",
    "orders_to_lines",
    "unknown_categories",
    "model_ref",
    "anomaly_smoke_check",
    "REASONS_PER_ORDER",
]

REASONS_PER_ORDER = 5
_LINE_COLUMNS = ("order_id", "created_at", "customer_id", "sku", "quantity", "unit_price")


@dataclass(frozen=True)
class ScoreOutcome:
    """Per order, in request order: the response dicts and the audit records; scores and flags as arrays."""

    results: list[dict[str, Any]]
    records: list[AuditRecord]
    scores: np.ndarray
    flagged: np.ndarray
    ids_whole_float_repaired: int = 0  # request ids written as whole floats ("14911.0") made "14911"


def model_ref(loaded: LoadedModel) -> dict[str, Any]:
    return {"name": loaded.name, "version": str(loaded.version), "alias": loaded.alias}


def orders_to_lines(
    orders: Sequence[OrderIn], report: ValidationReport | None = None
) -> dict[str, np.ndarray]:
    """Orders as order lines in the ``orders`` input shape, as column arrays (one element per line; ids as str
    objects, missing as <NA>; ``pd.DataFrame(lines)`` is the table).

    Ids follow the id rule of a validated table (``features.ids``), so a request whose
    ids were exported as whole floats (``"14911.0"``) finds the history trained as ``"14911"``; the values
    changed are counted in ``report`` (``ids_whole_float_repaired``).
    """
    n_lines = [len(o.lines) for o in orders]
    columns: dict[str, Any] = {
        "order_id": np.repeat(np.array([o.order_id for o in orders], dtype=object), n_lines),
        "created_at": np.repeat(np.array([o.created_at for o in orders], dtype="datetime64[ns]"), n_lines),
        "customer_id": np.repeat(np.array([o.customer_id for o in orders], dtype=object), n_lines),
        "sku": np.array([line.sku for o in orders for line in o.lines], dtype=object),
        "quantity": np.array([line.quantity for o in orders for line in o.lines], dtype="float64"),
        "unit_price": np.array([line.unit_price for o in orders for line in o.lines], dtype="float64"),
    }
    for col in ("order_id", "customer_id", "sku"):
        columns[col], _ = ids_as_text(columns[col], report)
    for col in CATEGORICAL_COLUMNS:
        values = [getattr(o, col) for o in orders]
        if any(v is not None for v in values):
            columns[col] = np.repeat(np.array(values, dtype=object), n_lines)
    return columns


def unknown_categories(orders: Sequence[OrderIn], model: Any) -> list[dict[str, str]]:
    """Per order, the category fields (country, channel, region) whose value the model never saw."""
    known = getattr(getattr(model, "encoder_", None), "categories_", None) or {}
    fields = [(col, set(known[f"order_{col}"])) for col in CATEGORICAL_COLUMNS if f"order_{col}" in known]
    out: list[dict[str, str]] = []
    for order in orders:
        unknown: dict[str, str] = {}
        for col, values in fields:
            value = getattr(order, col)
            if value is not None and value not in values:
                unknown[col] = value
        out.append(unknown)
    return out


def score_orders(
    orders: Sequence[OrderIn],
    loaded: LoadedModel,
    history: OrderHistory,
    *,
    explain: ExplainMode = "flagged",
    k: int = REASONS_PER_ORDER,
    request_id: str | None = None,
) -> ScoreOutcome:
    """Score ``orders`` against ``history`` with the anomaly model ``loaded`` (see the module docstring)."""
    model = loaded.model.model
    # column arrays, not a DataFrame: building one costs more than the features of a few orders
    report = ValidationReport(table="request", rows_in=len(orders))
    lines = orders_to_lines(orders, report)
    order_ids = lines["order_id"][np.cumsum([0] + [len(o.lines) for o in orders[:-1]])]
    _one_order_per_id(orders, order_ids)
    features, _ = history.feature_columns(lines)
    if len(orders) > 1:  # features come sorted by (created_at, order_id): back to request order
        position = pd.Index(features["order_id"]).get_indexer(order_ids)
        if (position != np.arange(len(orders))).any():
            features = take_rows(features, position)
    scores = np.asarray(model.score(features), dtype="float64")
    threshold = float(model.threshold_)
    flagged = scores >= threshold
    if explain == "all":
        rows = np.arange(len(orders))
    elif explain == "flagged":
        rows = np.flatnonzero(flagged)
    else:
        rows = np.array([], dtype="int64")
    reasons: list[list[dict[str, Any]]] = [[] for _ in orders]
    if len(rows):
        explained = features if len(rows) == len(orders) else take_rows(features, rows)
        for i, record in zip(rows, model.explain_records(explained, k=k), strict=True):
            reasons[i] = record["reasons"]
    unknown = unknown_categories(orders, model)
    feature_rows = _feature_rows(features, ["order_id", "created_at", "customer_id", *model.feature_names_])
    ref = model_ref(loaded)
    results: list[dict[str, Any]] = []
    records: list[AuditRecord] = []
    for i, order in enumerate(orders):
        output = {
            "score": float(scores[i]),
            "flagged": bool(flagged[i]),
            "threshold": threshold,
            "reasons": reasons[i],
            "unknown": unknown[i],
        }
        record = AuditRecord(
            kind="score",
            model_name=loaded.name,
            model_version=str(loaded.version),
            model_alias=loaded.alias,
            request_id=request_id,
            input=order.model_dump(mode="json"),
            features=feature_rows[i],
            output=output,
        )
        records.append(record)
        results.append(
            {"order_id": order.order_id, **output, "model": ref, "decision_id": record.decision_id}
        )
    return ScoreOutcome(results, records, scores, flagged, report.repairs.get(WHOLE_FLOAT_IDS, 0))


def _one_order_per_id(orders: Sequence[OrderIn], order_ids: np.ndarray) -> None:
    """422 when two orders of a batch are one ``order_id`` under the id rule (``"7.0"`` and ``"7"``): scoring
    them as one order would mix their lines, and a batch sends each order once."""
    ids = pd.Series(order_ids)
    if len(orders) < 2 or ids.is_unique:
        return
    sent = pd.Series([o.order_id for o in orders])
    merged = sent.groupby(ids.to_numpy()).agg(list)
    merged = {k: v for k, v in merged.items() if len(v) > 1}
    shown = "; ".join(f"{' and '.join(map(repr, v))} are {k!r}" for k, v in list(merged.items())[:5])
    raise ApiError(
        f"order_id must be unique within one request, and the id rule reads whole numbers written with '.0' as "
        f"integer text: {shown}. Send each order once",
        status_code=422,
        code="invalid_request",
        details={"merged_order_ids": merged},
    )


def _feature_rows(features: Columns, names: list[str]) -> list[dict[str, Any]]:
    """The feature values of each order as a dict of plain JSON values (what the audit trail records).

    Missing values become None and timestamps ISO strings here, column by column with numpy, so the audit
    store's C JSON encoder takes the records as they are (its converting fallback costs ~40 us a record).
    """
    columns = [_json_values(np.asarray(features[c])) for c in names]
    return [dict(zip(names, values, strict=True)) for values in zip(*columns, strict=True)]


def _json_values(values: np.ndarray) -> np.ndarray:
    kind = values.dtype.kind
    if kind == "M":
        return np.datetime_as_string(values, unit="s").astype(object)
    if kind == "f":
        out = values.astype(object)
        missing = np.isnan(values)
        if missing.any():
            out[missing] = None
        return out
    if kind in "iub":
        return values.astype(object)
    out = values.astype(object)
    missing = pd.isna(out)
    if missing.any():
        out[missing] = None
    return out


def anomaly_smoke_check(loaded: LoadedModel, tail_lines: int = 2_000) -> None:
    """Refuse an anomaly model that cannot score: score and explain the last order of its own snapshot.

    Needs no labels: a model trained while the newest orders' outcomes are unknown (or an unsupervised one
    without a labels table) passes.

    Uses a history of the snapshot's last ``tail_lines`` lines (building the full one is the history
    store's job), so the check stays cheap for large snapshots.
    """
    from serving.history import snapshot_tables

    snap_orders, snap_labels = snapshot_tables(loaded)
    model = loaded.model.model
    for attribute in ("score", "explain_records", "threshold_", "feature_names_"):
        if not hasattr(model, attribute):
            raise TypeError(
                f"the anomaly model's estimator {type(model).__name__} has no {attribute!r}: serve an "
                "ExceptionClassifier or UnsupervisedDetector logged by `orderpulse train anomaly`"
            )
    if snap_orders.empty:
        raise ValueError(
            "the anomaly model's orders snapshot is empty: retrain it on a non-empty orders table"
        )
    tail = snap_orders.tail(tail_lines)
    last_id = tail["order_id"].iloc[-1]
    labels = None  # the newest orders' outcomes are usually unknown yet: no labels is a valid state
    if snap_labels is not None and len(snap_labels):
        labels = snap_labels.loc[snap_labels["order_id"].isin(tail["order_id"])]
        labels = labels if len(labels) else None
    history = OrderHistory(tail, labels, prior_strength=getattr(model, "prior_strength", 10.0))
    features, _ = history.features(tail.loc[tail["order_id"] == last_id])
    score = np.asarray(model.score(features), dtype="float64")
    if score.shape != (1,) or not (np.isfinite(score).all() and 0.0 <= score[0] <= 1.0):
        raise ValueError(f"scoring snapshot order {last_id!r} gave {score!r}, not one score in [0, 1]")
    explained = model.explain_records(features, k=REASONS_PER_ORDER)
    if len(explained) != 1:
        raise ValueError(f"explaining snapshot order {last_id!r} gave {len(explained)} records, not 1")
