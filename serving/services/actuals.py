"""Observed values appended to the forecast history (``POST /v1/actuals``).

Values are stored in the event store's ``actuals`` table (idempotent on (series_id, ds); a corrected value
replaces the old one and is counted as ``updated``), so every replica's next forecast starts from them: the
default forecast origin is the latest observed step of snapshot + actuals.

Checked against the served forecast model before anything is stored: the series must be one the model
knows (404 with the list otherwise, as for forecasts; a series id sent as a whole float, ``"88.0"``, is the
model's ``"88"``, listed in ``ids_read_as``) and ``ds`` must lie on the model's grid (a daily model
takes midnights; a value at 13:00 is refused rather than silently moved).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import pandas as pd

from features.errors import DataValidationError, Problem
from serving.errors import NotFoundError
from serving.schemas.forecast import ActualIn
from serving.services.forecast_context import ForecastContext, with_series_ids
from serving.store.events import Actual, EventStore

__all__ = ["record_actuals"]


def record_actuals(ctx: ForecastContext, store: EventStore, actuals: Sequence[ActualIn]) -> dict[str, Any]:
    """Check and store ``actuals``; returns ``ActualsOut`` fields."""
    _, read_as = ctx.as_known(list(dict.fromkeys(a.series_id for a in actuals)))
    if read_as:
        actuals = with_series_ids(actuals, read_as)
    ids = list(dict.fromkeys(a.series_id for a in actuals))
    unknown = ctx.unknown(ids)
    if unknown:
        raise NotFoundError(
            f"unknown series_id {unknown[:10]}: the forecast model {ctx.loaded.name} v{ctx.loaded.version} does "
            "not know these series, so their actuals would never be used; send actuals of known series only",
            details={"unknown_series": unknown},
            code="unknown_series",
        )
    ds = pd.Series(pd.to_datetime([a.ds for a in actuals]))
    off = ctx.off_grid(ds)
    if off.any():
        examples = [
            {"series_id": actuals[i].series_id, "ds": actuals[i].ds.isoformat()} for i in off.nonzero()[0][:3]
        ]
        raise DataValidationError(
            [
                Problem(
                    "actuals",
                    "ds",
                    f"not on the model's grid (steps of {ctx.step} from {ctx.anchor})",
                    f"send one value per {ctx.model.freq} step, at the step's timestamp (e.g. {ctx.anchor})",
                    int(off.sum()),
                    examples,
                )
            ]
        )
    statuses = store.upsert_actuals(
        [Actual(series_id=a.series_id, ds=a.ds, y=float(a.y), open=int(a.open)) for a in actuals]
    )
    counts = Counter(statuses)
    stored = store.actuals_for(ids)
    observed = stored.loc[stored["y"].notna()].groupby("series_id", observed=True)["ds"].max()
    latest = {}
    for sid in ids:
        candidates = [
            t for t in (ctx.last_observed.get(sid), observed.get(sid)) if t is not None and pd.notna(t)
        ]
        if candidates:
            latest[sid] = max(pd.Timestamp(t) for t in candidates)
    return {
        "inserted": counts.get("inserted", 0),
        "updated": counts.get("updated", 0),
        "duplicate": counts.get("duplicate", 0),
        "results": [
            {"series_id": a.series_id, "ds": a.ds, "status": s}
            for a, s in zip(actuals, statuses, strict=True)
        ],
        "latest": latest,
        "ids_read_as": read_as or None,
    }
