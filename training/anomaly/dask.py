"""The dask code paths of exception orders: point-in-time order features on a cluster and batch scoring
per time range. See ``training.engine`` for what runs where with ``--engine dask``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from training.engine import check_engine, dask_client, write_output

__all__ = ["order_features_engine", "score_orders_dask"]


def order_features_engine(engine: str, scheduler: str | None = None) -> Any:
    """A function with ``order_features``' signature for ``engine`` ("local": ``order_features`` itself;
    "dask": ``order_features_dask`` computed into one pandas frame on a cluster)."""
    check_engine(engine, scheduler)
    from features.order_features import order_features

    if engine == "local":
        return order_features

    def on_dask(orders: pd.DataFrame, labels: pd.DataFrame | None = None, *, prior_strength: float = 10.0):
        from features.dask.orders import order_features_dask

        with dask_client(scheduler) as client:
            frame, report = order_features_dask(orders, labels, prior_strength=prior_strength, client=client)
            return frame.compute().reset_index(drop=True), report

    return on_dask


def score_orders_dask(
    model: Any,
    history: pd.DataFrame,
    history_labels: pd.DataFrame | None,
    start: pd.Timestamp,
    end: pd.Timestamp,
    out: str | Path,
    score_frame: Any,
    *,
    reasons: str,
    k: int,
    scheduler: str | None = None,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """``score`` on dask: point-in-time features of the orders created in ``[start, end)`` per time range
    (``features.dask.orders.order_features_dask``), ``score_frame(model, features, reasons, k)`` (the local
    job's own function) per partition, written by ``write_output``. Returns ``order_id, created_at, score,
    flagged`` of every scored order (for the summary and metrics) and the write summary."""
    from features.dask.orders import order_features_dask

    with dask_client(scheduler) as client:
        features, _ = order_features_dask(
            history,
            history_labels,
            prior_strength=getattr(model, "prior_strength", 10.0),
            start=start,
            end=end,
            client=client,
        )
        model_f = client.scatter(model, broadcast=True, hash=False)
        frames = client.map(
            score_frame,
            client.compute(features.to_delayed()),
            model=model_f,
            reasons=reasons,
            k=k,
            pure=False,
        )
        light = client.gather(client.map(_light_columns, frames, pure=False))
        summary = write_output(frames, out, client=client)
    scored = pd.concat(light, ignore_index=True)
    return scored, summary


def _light_columns(scored: pd.DataFrame) -> pd.DataFrame:
    return scored[["order_id", "created_at", "score", "flagged"]]
