"""Dask order features: one shared point-in-time ``OrderHistory``, orders scored per time range.

See ``features.dask`` for why the index is shared rather than partitioned by customer.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from features.dask import head0, require_client
from features.validation import parse_timestamps

if TYPE_CHECKING:  # pragma: no cover
    import dask.dataframe as dd
    from distributed import Client

    from features.order_features import OrderFeatureReport

__all__ = ["order_features_dask"]


def order_features_dask(
    orders: pd.DataFrame,
    labels: pd.DataFrame | None = None,
    *,
    prior_strength: float = 10.0,
    start: Any = None,
    end: Any = None,
    npartitions: int | None = None,
    partition_orders: int = 50_000,
    client: Client | None = None,
) -> tuple[dd.DataFrame, OrderFeatureReport]:
    """``order_features(orders, labels)`` computed on the cluster, one contiguous time range per partition.

    ``orders``/``labels`` are validated tables (``features.validation``). ``start``/``end`` (optional) keep
    the orders created in ``[start, end)``; they are still scored against the whole history. Returns a dask
    DataFrame (partitions in time order; concatenated they equal the single-machine frame restricted to the
    window) and the merged ``OrderFeatureReport``. The ``OrderHistory`` is built once, in a worker, and
    shared (see the module docstring).
    """
    import dask.dataframe as dd

    from features.order_features import OrderHistory

    client = require_client(client)
    t = parse_timestamps(orders["created_at"]).to_numpy("datetime64[ns]")
    order = np.lexsort((orders["order_id"].astype("string").to_numpy(dtype=object, na_value=""), t))
    o, t = orders.iloc[order].reset_index(drop=True), t[order]  # lines of an order are now contiguous
    window = np.ones(len(o), dtype=bool)
    if start is not None:
        window &= t >= np.datetime64(pd.Timestamp(start))
    if end is not None:
        window &= t < np.datetime64(pd.Timestamp(end))
    rows = np.flatnonzero(window)
    history = client.submit(
        OrderHistory,
        client.scatter(o, hash=False),
        None if labels is None else client.scatter(labels, hash=False),
        prior_strength=prior_strength,
        pure=False,
    )
    if not len(rows):
        raise ValueError(
            f"no order was created in [{start}, {end}); the orders run from {t.min() if len(t) else None} to "
            f"{t.max() if len(t) else None}. Check the window."
        )
    query = o.iloc[rows]
    bounds = _order_chunks(
        query["order_id"].astype("string").to_numpy(dtype=object), npartitions, partition_orders
    )
    pieces = client.scatter([query.iloc[a:b] for a, b in bounds], hash=False)
    if len(pieces) > 1:
        client.replicate([history])
    scored = client.map(_score_orders, pieces, history=history, pure=False)
    reports = client.gather(client.map(_second, scored, pure=False))
    frames = client.map(_first, scored, pure=False)
    del scored, history
    meta = client.submit(head0, frames[0], pure=False).result()
    return dd.from_delayed(frames, meta=meta, verify_meta=False), _merge_order_reports(reports)


# ---------------------------------------------------------------------------------------------------------


def _first(pair: tuple) -> Any:
    return pair[0]


def _second(pair: tuple) -> Any:
    return pair[1]


def _order_chunks(
    order_ids: np.ndarray, npartitions: int | None, partition_orders: int
) -> list[tuple[int, int]]:
    """Row ranges of about equal numbers of orders; the lines of one order never straddle two ranges."""
    n_rows = len(order_ids)
    starts = np.flatnonzero(np.r_[True, order_ids[1:] != order_ids[:-1]])  # lines of an order are contiguous
    n_orders = len(starts)
    if npartitions is None:
        npartitions = max(1, math.ceil(n_orders / max(int(partition_orders), 1)))
    k = max(1, min(int(npartitions), n_orders))
    cut = starts[(np.arange(1, k) * n_orders) // k] if k > 1 else np.array([], dtype=int)
    edges = np.r_[0, cut, n_rows].astype(int)
    return [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:], strict=True) if b > a]


def _score_orders(lines: pd.DataFrame, history: Any) -> tuple[pd.DataFrame, OrderFeatureReport]:
    return history.features(lines)


def _merge_order_reports(reports: list[OrderFeatureReport]) -> OrderFeatureReport:
    first = reports[0]
    merged = replace(first, orders=0, lines=0, guest_orders=0, unknown_category_values={})
    for r in reports:
        merged.orders += r.orders
        merged.lines += r.lines
        merged.guest_orders += r.guest_orders
        for c, n in r.unknown_category_values.items():
            merged.unknown_category_values[c] = merged.unknown_category_values.get(c, 0) + n
    return merged
