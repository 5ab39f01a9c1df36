"""Order lines and labels as plain arrays, and lines aggregated to one row per order.

The input side of ``features.order_features``: it checks the columns it needs, normalises ids and timestamps
with ``features.validation``'s functions (so a raw serving request and a validated training table give the same
arrays), and computes the ``order`` family of features (what is in the order). Everything is vectorised; a
one-order request costs well under a millisecond here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.asof import sorted_unique
from features.errors import DataValidationError, Problem
from features.ids import ids_as_text
from features.validation import parse_timestamps

__all__ = [
    "OrderTable",
    "OrderMerge",
    "prepare_order_lines",
    "prepare_labels",
    "order_table",
    "merge_by_order",
]

REQUIRED_LINES = ("order_id", "created_at", "sku", "quantity", "unit_price")
REQUIRED_LABELS = ("order_id", "label", "labeled_at")


@dataclass
class OrderTable:
    """Order lines aggregated to one row per order, sorted by (created_at, order_id)."""

    order_id: np.ndarray  # object (str)
    t: np.ndarray  # created_at as int64 nanoseconds
    customer: np.ndarray  # object (str), <NA> for guests
    guest: np.ndarray  # bool
    comp: dict[str, np.ndarray]  # the ``order`` family of features
    cats: dict[str, np.ndarray]  # optional categorical columns, value of the order's first line
    pair_order: np.ndarray  # (order, distinct SKU) pairs, sorted by order then SKU
    pair_sku: np.ndarray  # code of the pair's SKU in ``skus``
    pair_quantity: np.ndarray  # units of the pair's SKU in the order (its lines added up)
    pair_value: np.ndarray  # value (quantity x unit price) of the pair's SKU in the order
    skus: np.ndarray  # object (str), sorted distinct SKUs of these lines
    n_lines: int


def prepare_order_lines(
    df: pd.DataFrame | Mapping[str, np.ndarray], table: str, categoricals: tuple[str, ...] = ()
) -> dict[str, np.ndarray]:
    """Order lines as arrays: ids as str objects (<NA> when missing), ``created_at`` as int64 ns, numbers as
    float64, plus the ``categoricals`` columns present. Refuses missing columns, ids, times and numbers.

    ``df`` may also be a dict of column arrays (a service request: ``created_at`` as tz-naive UTC
    ``datetime64[ns]``, numbers as floats); such lines skip the DataFrame, and any that need a check or a
    repair go through the DataFrame path below, so the result and the errors are the same either way.
    """
    if isinstance(df, Mapping) and not isinstance(df, pd.DataFrame):
        typed = _typed_lines(df, categoricals)
        if typed is not None:
            return typed
        df = pd.DataFrame(dict(df))
    _require(df, REQUIRED_LINES, table)
    problems: list[Problem] = []
    out: dict[str, np.ndarray] = {}
    for col in ("order_id", "sku"):
        out[col], missing = ids_as_text(df[col])
        _check(problems, df, missing, table, col, "missing id")
    created = parse_timestamps(df["created_at"])
    _check(problems, df, created.isna().to_numpy(), table, "created_at", "missing or unparseable timestamp")
    out["created_at"] = created.to_numpy("datetime64[ns]").view("int64")
    for col in ("quantity", "unit_price"):
        out[col] = pd.to_numeric(df[col], errors="coerce").to_numpy("float64", na_value=np.nan)
        _check(problems, df, ~np.isfinite(out[col]), table, col, "missing or non-numeric value")
    if problems:
        raise DataValidationError(problems)
    out.update(_optional_ids(df, len(df), categoricals))
    return out


def _typed_lines(
    columns: Mapping[str, np.ndarray], categoricals: tuple[str, ...]
) -> dict[str, np.ndarray] | None:
    """``prepare_order_lines`` of already-typed column arrays, or None when they need the DataFrame path."""
    if any(c not in columns for c in REQUIRED_LINES):
        return None
    created = np.asarray(columns["created_at"])
    if created.dtype != np.dtype("datetime64[ns]") or len(created) == 0 or np.isnat(created).any():
        return None
    out: dict[str, np.ndarray] = {"created_at": created.view("int64")}
    for col in ("quantity", "unit_price"):
        values = np.asarray(columns[col])
        if values.dtype.kind not in "fiu" or len(values) != len(created):
            return None
        out[col] = values.astype("float64", copy=False)
        if not np.isfinite(out[col]).all():
            return None
    for col in ("order_id", "sku"):
        out[col], missing = ids_as_text(columns[col])
        if missing.any():
            return None
    out.update(_optional_ids(columns, len(created), categoricals))
    if any(len(v) != len(created) for v in out.values()):
        return None
    return out


def _optional_ids(
    columns: pd.DataFrame | Mapping[str, np.ndarray], n: int, categoricals: tuple[str, ...]
) -> dict[str, np.ndarray]:
    """``customer_id`` (all <NA> when absent: guests) and the ``categoricals`` present, as normalised text."""
    out = {"customer_id": np.full(n, pd.NA, dtype=object)}
    for col in ("customer_id", *categoricals):
        if col in columns:
            out[col], _ = ids_as_text(columns[col])
    return out


def prepare_labels(labels: pd.DataFrame | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(order_id, label, labeled_at)`` arrays (str objects, int64 0/1, int64 ns); empty when ``None``."""
    if labels is None:
        return np.array([], dtype=object), np.array([], dtype="int64"), np.array([], dtype="int64")
    _require(labels, REQUIRED_LABELS, "labels")
    problems: list[Problem] = []
    ids, missing = ids_as_text(labels["order_id"])
    _check(problems, labels, missing, "labels", "order_id", "missing id")
    y = pd.to_numeric(labels["label"], errors="coerce").to_numpy("float64", na_value=np.nan)
    _check(problems, labels, ~np.isin(y, (0.0, 1.0)), "labels", "label", "label is not 0 or 1")
    labeled_at = parse_timestamps(labels["labeled_at"])
    _check(
        problems,
        labels,
        labeled_at.isna().to_numpy(),
        "labels",
        "labeled_at",
        "missing or unparseable timestamp",
    )
    _check(
        problems,
        labels,
        pd.Series(ids).duplicated(keep=False).to_numpy(),
        "labels",
        "order_id",
        "several labels for one order_id",
    )
    if problems:
        raise DataValidationError(problems)
    return ids, y.astype("int64"), labeled_at.to_numpy("datetime64[ns]").view("int64")


def order_table(lines: dict[str, np.ndarray], categoricals: tuple[str, ...]) -> OrderTable:
    """Aggregate prepared lines to one row per order with the ``order`` family of features."""
    codes, ids = pd.factorize(lines["order_id"])
    n = len(ids)
    t = np.full(n, np.iinfo("int64").max, dtype="int64")
    np.minimum.at(t, codes, lines["created_at"])  # validated orders have one created_at per order
    by_id = np.argsort(ids, kind="stable")
    ranked = by_id[np.argsort(t[by_id], kind="stable")]
    new_code = np.empty(n, dtype="int64")
    new_code[ranked] = np.arange(n)
    line_order = new_code[codes]
    ids, t = ids[ranked], t[ranked]

    qty, price = lines["quantity"], lines["unit_price"]
    n_lines = np.bincount(line_order, minlength=n)
    starts = np.concatenate([[0], np.cumsum(n_lines)[:-1]])
    perm = np.argsort(line_order, kind="stable")
    sku_codes, skus = pd.factorize(lines["sku"], sort=True)  # sorted: pair order does not depend on the batch
    line_pair = line_order * len(skus) + sku_codes
    pairs = sorted_unique(line_pair)
    pair_order = pairs // len(skus)
    line_pair = np.searchsorted(pairs, line_pair)
    # bincount adds each order's lines in input order, so the same lines give bit-identical sums anywhere
    comp = {
        "order_n_lines": n_lines.astype("int64"),
        "order_n_distinct_skus": np.bincount(pair_order, minlength=n).astype("int64"),
        "order_total_quantity": np.bincount(line_order, weights=qty, minlength=n),
        "order_max_line_quantity": np.maximum.reduceat(qty[perm], starts),
        "order_value": np.bincount(line_order, weights=qty * price, minlength=n),
        "order_mean_unit_price": np.bincount(line_order, weights=price, minlength=n) / n_lines,
        "order_max_unit_price": np.maximum.reduceat(price[perm], starts),
    }
    first_line = perm[starts]
    customer = lines["customer_id"][first_line]
    cats = {c: lines[c][first_line] if c in lines else np.full(n, pd.NA, dtype=object) for c in categoricals}
    return OrderTable(
        order_id=ids,
        t=t,
        customer=customer,
        guest=pd.isna(customer),
        comp=comp,
        cats=cats,
        pair_order=pair_order,
        pair_sku=pairs % len(skus),
        pair_quantity=np.bincount(line_pair, weights=qty, minlength=len(pairs)),
        pair_value=np.bincount(line_pair, weights=qty * price, minlength=len(pairs)),
        skus=np.asarray(skus, dtype=object),
        n_lines=len(line_order),
    )


@dataclass(frozen=True)
class OrderMerge:
    """What ``merge_by_order`` did: the merged table (``None`` when both inputs were empty) and counts."""

    frame: pd.DataFrame | None
    older_orders_kept: int  # distinct order_id of ``older`` that ``newer`` does not hold
    older_rows_kept: int
    older_orders_replaced: int  # distinct order_id of ``older`` whose rows ``newer`` replaced


def merge_by_order(older: pd.DataFrame | None, newer: pd.DataFrame | None) -> OrderMerge:
    """One history of order lines (or labels) from two tables keyed by ``order_id``: THE precedence rule.

    For an ``order_id`` both tables hold, ``newer``'s rows win and ``older``'s rows of that order are all
    dropped (an order is replaced whole, never mixed line by line); every other row of both is kept, the
    kept ``older`` rows first. Columns are ``newer``'s that ``older`` also has. An empty or missing table
    gives the other one unchanged. Ids are compared as text (``"7"`` and ``7`` are one order).

    Callers: ``score`` merges the model's snapshot (older) with the ``--orders``/``--labels`` given now
    (newer); the service merges the events stored through ``POST /v1/events`` (older) with the snapshot
    of the served model (newer: the route refuses events for orders the snapshot holds, so the two share
    an order only when a model retrained on it was promoted after the event was stored).
    """
    if newer is None or newer.empty:
        kept = older if older is not None and len(older) else None
        n = int(kept["order_id"].nunique()) if kept is not None else 0
        return OrderMerge(kept, n, 0 if kept is None else len(kept), 0)
    if older is None or older.empty:
        return OrderMerge(newer, 0, 0, 0)
    newer_ids = pd.Index(newer["order_id"].astype("string").unique())
    older_ids = older["order_id"].astype("string")
    keep = ~older_ids.isin(newer_ids).to_numpy()
    columns = [c for c in newer.columns if c in older.columns]
    frame = (
        pd.concat([older.loc[keep, columns], newer[columns]], ignore_index=True)
        if keep.any()
        else newer[columns]
    )
    return OrderMerge(
        frame,
        older_orders_kept=int(older_ids[keep].nunique()),
        older_rows_kept=int(keep.sum()),
        older_orders_replaced=int(older_ids[~keep].nunique()),
    )


# ---------------------------------------------------------------------------------------------------------


def _require(df: pd.DataFrame, columns: tuple[str, ...], table: str) -> None:
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"{table} must be a pandas DataFrame. Got {type(df).__name__} instead.")
    missing = [c for c in columns if c not in df.columns]
    problems = [
        Problem(
            table,
            c,
            "required column is missing",
            f"add a column named exactly {c!r} (found columns: {list(df.columns)[:12]})",
        )
        for c in missing
    ]
    if not missing and df.empty:
        problems.append(Problem(table, None, "the table has no rows", "pass at least one row"))
    if problems:
        raise DataValidationError(problems)


def _check(
    problems: list[Problem], df: pd.DataFrame, bad: np.ndarray, table: str, col: str, issue: str
) -> None:
    n = int(np.count_nonzero(bad))
    if n:
        rows = df.loc[np.asarray(bad, dtype=bool)].head(3)
        examples = [
            {"row": int(i), col: None if pd.isna(v) else str(v)}
            for i, v in zip(rows.index, rows[col], strict=True)
        ]
        kind = "labels" if table == "labels" else "orders"
        problems.append(
            Problem(
                table,
                col,
                issue,
                f"correct or remove these rows; features.validation.validate(df, {kind!r}) finds them all",
                n,
                examples,
            )
        )
