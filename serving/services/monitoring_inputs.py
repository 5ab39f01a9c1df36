"""Drift and data quality of what the service received, for ``serving.services.monitoring``.

Drift compares live inputs with the training profile logged with the model (``training.profile``):

- anomaly: the features of the newest ``sample`` scored orders of the window (the ``features`` the audit trail
  recorded for each decision: exactly what the model saw) against the profile of the model's training
  features. A category value the model never saw reaches it as missing (so it raises the missing rate); the
  answer names it (``unknown``), and its share is the feature's ``unknown_rate``;
- forecast: the actuals received in the window (``y``) and the covariate rows of the newest ``sample``
  forecast answers (the plan each forecast used) against the profile of the training ``series`` / ``covariates``.

A model logged without a profile (trained before profiles existed) reports ``available: false`` with the
reason, never an error.

Data quality is one scorecard per input table (``order_events``, ``label_events``, ``actuals``): rows received in
the window, their problems by kind, and freshness (time since the newest row was received). The tables get an
index on ``received_at`` (``received_at_indexes``) so the window is read without a table scan.
Duplicated events are not stored (``serving.store.events`` is idempotent: a repeat is answered ``duplicate``),
so only stored problems are counted here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
from sqlalchemy import Index, Table, case, func, select

from serving.store.db import Database
from serving.store.predictions import ModelFilter, utc_day
from serving.store.rollups import RollupTables, day_plan, refresh, stale_days
from training.profile import compare_to_profile

__all__ = ["input_drift", "data_quality", "received_at_indexes", "DRIFT_SAMPLE"]

DRIFT_SAMPLE = 2_000
_COVARIATE_IDS = ("series_id", "ds", "region")


def input_drift(
    database: Database,
    decisions: Table,
    actuals: Table,
    *,
    kind: str,
    reference: Mapping[str, Any] | None,
    since: datetime | None,
    until: datetime | None,
    sample: int = DRIFT_SAMPLE,
) -> dict[str, Any]:
    """Drift of one model version's live inputs against its training profile (see the module docstring)."""
    if reference is None:
        return {"available": False, "reason": f"no {kind} model answered in the window"}
    head = {"model_name": reference["model_name"], "model_version": reference["model_version"]}
    profile = reference.get("profile")
    if not profile:
        return {
            **head,
            "available": False,
            "reason": f"{reference['model_name']} v{reference['model_version']} was logged without a training "
            "profile (trained before profiles existed): retrain it to get drift",
        }
    model = ModelFilter(reference["model_name"], reference["model_version"])
    unknown: dict[str, float] = {}
    if kind == "anomaly":
        rows = _recorded(database, decisions, "score", model, since, until, sample)
        live = pd.DataFrame([f for f, _ in rows if isinstance(f, dict)])
        unknown = _unknown_rates([o.get("unknown") if isinstance(o, dict) else None for _, o in rows])
    else:
        plans = [f for f, _ in _recorded(database, decisions, "forecast", model, since, until, sample)]
        cov = [row for f in plans if isinstance(f, dict) for row in f.get("covariates") or ()]
        live = pd.DataFrame(cov).drop(columns=[c for c in _COVARIATE_IDS if cov and c in cov[0]])
        y = _received_actuals(database, actuals, since, until)
        live = pd.concat([live, pd.DataFrame({"y": y})], axis=1) if len(y) else live
    wanted = {k: v for k, v in profile.items() if k in live.columns}
    features = compare_to_profile(wanted, live) if len(live) else {}
    for col, rate in unknown.items():  # the model saw these values as missing; the answer named them
        if f"order_{col}" in features:
            features[f"order_{col}"]["unknown_rate"] = rate
    scored = [v["psi"] for v in features.values() if v["psi"] is not None]
    return {
        **head,
        "available": True,
        "n": int(len(live)),
        "max_psi": max(scored) if scored else None,
        "features": features,
    }


def data_quality(
    database: Database,
    orders: Table,
    labels: Table,
    actuals: Table,
    *,
    since: datetime | None,
    until: datetime | None,
    now: datetime,
    late_after: timedelta,
    rollups: RollupTables | None = None,
) -> dict[str, Any]:
    """One scorecard per input table: ``rows`` received in the window, their ``problems`` by kind, and the
    table's ``last_received_at`` / ``freshness_s``.

    With ``rollups`` the counts of complete received days come from ``count_rollup`` (``serving.store.rollups``),
    kept exact: orders never change; a label's problems change when its order arrives (orders received since the
    watermark redo their labels' days); an actual's ``revised`` / ``closed`` when it is updated (``updated_at``).
    """
    late_days = late_after / timedelta(days=1)
    o, lab, a = orders, labels, actuals
    cards = {
        "order_events": _card(
            database,
            rollups,
            "dq:orders",
            o,
            since,
            until,
            now,
            {"missing_customer_id": o.c.customer_id.is_(None)},
        ),
        "label_events": _card(
            database,
            rollups,
            "dq:labels",
            lab,
            since,
            until,
            now,
            {  # one look-up of the order per label (a LEFT JOIN on its primary key), not one per problem
                "label_without_order": o.c.order_id.is_(None),
                "labeled_before_created": lab.c.labeled_at < o.c.created_at,
            },
            source=lab.outerjoin(o, o.c.order_id == lab.c.order_id),
            changed=lambda day: _per_day(
                day(lab.c.received_at), o.c.received_at, o.join(lab, lab.c.order_id == o.c.order_id)
            ),
            changed_at=o.c.received_at,
        ),
        "actuals": _card(
            database,
            rollups,
            f"dq:actuals:{late_days:g}",
            a,
            since,
            until,
            now,
            {
                "late": _days_between(database, a.c.ds, a.c.received_at) > late_days,
                "revised": a.c.revisions > 0,
                "closed": a.c.open == 0,
            },
            changed=lambda day: _per_day(day(a.c.received_at), a.c.updated_at, a),
            changed_at=a.c.updated_at,
        ),
    }
    cards["actuals"]["late_after_days"] = late_days
    return cards


def received_at_indexes(database: Database, tables: list[Table]) -> None:
    """Create the ``<table>_received_at`` index of each event table when missing (monitoring reads by it)."""
    for table in tables:
        name = f"{table.name}_received_at"
        if any(ix.name == name for ix in table.indexes):
            continue
        Index(name, table.c.received_at).create(database.engine, checkfirst=True)


def _card(
    database: Database,
    rollups: RollupTables | None,
    kind: str,
    table: Table,
    since: datetime | None,
    until: datetime | None,
    now: datetime,
    problems: dict,
    source: Any = None,
    changed: Callable[[Callable[[Any], Any]], Any] | None = None,
    changed_at: Any = None,
) -> dict[str, Any]:
    """Rows received in the window and their problems, freshness (see ``data_quality``).

    Complete received days come from the rollups; the rest is counted directly. A bound the table's rows all
    satisfy (``since`` before its first row, ``until`` after its last) is left out of a direct count: a window
    covering the table is one scan, not a walk of the whole ``received_at`` index with a look-up per row.
    """
    with database.connection(begin=False) as conn:
        first = conn.execute(
            select(func.min(table.c.received_at))
        ).scalar_one()  # one each: index end look-ups
        last = conn.execute(select(func.max(table.c.received_at))).scalar_one()
    first, last = (_utc(v) if v is not None else None for v in (first, last))
    names = ["rows", *problems]
    cols = [func.count().label("rows")] + [
        func.sum(_flag(cond)).label(name) for name, cond in problems.items()
    ]
    counted = select(*cols).select_from(source if source is not None else table)
    totals = dict.fromkeys(names, 0)
    ranges: list[tuple[datetime | None, datetime | None, bool]] = [(since, until, True)]
    if rollups is not None:
        plan = day_plan(since, until, first if since is None else None, datetime.now(UTC))
        if plan.days:
            ranges = plan.raw
            _refresh_counts(database, rollups, kind, table, plan.days, counted, names, changed, changed_at)
            c = rollups.counts
            stmt = select(c.c.name, func.sum(c.c.value)).where(
                c.c.kind == kind, c.c.day >= plan.days[0], c.c.day <= plan.days[-1]
            )
            with database.connection(begin=False) as conn:
                for name, value in conn.execute(stmt.group_by(c.c.name)):
                    totals[name] += int(value or 0)
    with database.connection(begin=False) as conn:
        for lo, hi, inclusive in ranges:
            lo = None if lo is not None and first is not None and first >= lo else lo
            hi = None if hi is not None and last is not None and last <= hi and inclusive else hi
            where = [table.c.received_at >= lo] if lo is not None else []
            if hi is not None:
                where.append(table.c.received_at <= hi if inclusive else table.c.received_at < hi)
            row = conn.execute(counted.where(*where)).mappings().one()
            for name in names:
                totals[name] += int(row[name] or 0)
    return {
        "rows": totals["rows"],
        "problems": {name: totals[name] for name in problems},
        "last_received_at": last.isoformat() if last is not None else None,
        "freshness_s": (now - last).total_seconds() if last is not None else None,
    }


def _per_day(key: Any, changed_at: Any, source: Any) -> Any:
    """``(key, max(changed_at))`` per key (one expression object in SELECT and GROUP BY: PostgreSQL matches
    them by their bound parameters)."""
    return select(key, func.max(changed_at)).select_from(source).group_by(key)


def _refresh_counts(
    database: Database,
    rollups: RollupTables,
    kind: str,
    table: Table,
    days: list[str],
    counted: Any,
    names: list[str],
    changed: Callable[[Callable[[Any], Any]], Any] | None,
    changed_at: Any,
) -> None:
    """Bring the ``count_rollup`` rows of ``kind`` up to date for ``days`` (received days of ``table``)."""

    def day(column: Any) -> Any:
        return utc_day(database, column)

    def changes(conn: Any, since: datetime) -> list[tuple[Any, datetime]]:
        if changed is None:  # rows that never change once stored
            return []
        return [(r[0], _utc(r[1])) for r in conn.execute(changed(day).where(changed_at > since))]

    def compute(lo: datetime, hi: datetime) -> tuple[dict[str, Any], dict[str, tuple]]:
        received = day(table.c.received_at).label("day")
        stmt = counted.add_columns(received).where(table.c.received_at >= lo, table.c.received_at < hi)
        with database.connection(begin=False) as conn:
            rows = conn.execute(stmt.group_by(received)).mappings().all()
        return {"rows": rows}, {}

    def store(conn: Any, inserted: list[str], got: dict[str, Any]) -> None:
        keep = set(inserted)
        values = [
            {"kind": kind, "day": r["day"], "name": name, "value": int(r[name] or 0)}
            for r in got["rows"]
            if r["day"] in keep
            for name in names
        ]
        if values:
            conn.execute(rollups.counts.insert(), values)

    refresh(
        database,
        rollups,
        kind,
        days,
        changed=changes,
        stale=stale_days(rollups, kind),
        compute=compute,
        store=store,
        clock=datetime.now(UTC),
    )


def _recorded(
    database: Database,
    decisions: Table,
    kind: str,
    model: ModelFilter,
    since: datetime | None,
    until: datetime | None,
    limit: int,
) -> list[tuple[Any, Any]]:
    """``(features, output)`` of the newest ``limit`` decisions of ``kind`` by the model in the window."""
    d = decisions
    where = [d.c.kind == kind, d.c.model_name == model.name, d.c.model_version == model.version]
    if since is not None:
        where.append(d.c.created_at >= since)
    if until is not None:
        where.append(d.c.created_at <= until)
    stmt = select(d.c.features, d.c.output).where(*where).order_by(d.c.created_at.desc()).limit(int(limit))
    with database.connection(begin=False) as conn:
        return [(r[0], r[1]) for r in conn.execute(stmt)]


def _unknown_rates(unknown: list[Any]) -> dict[str, float]:
    """Per category field, the share of scored orders whose value the model never saw (``output.unknown``)."""
    if not unknown:
        return {}
    counts: dict[str, int] = {}
    for u in unknown:
        for col in u or {}:
            counts[col] = counts.get(col, 0) + 1
    fields = set(counts) | {"country", "channel", "region"}
    return {c: counts.get(c, 0) / len(unknown) for c in fields}


def _received_actuals(
    database: Database, actuals: Table, since: datetime | None, until: datetime | None
) -> pd.Series:
    stmt = select(actuals.c.y).where(actuals.c.open != 0, *_received_window(actuals, since, until))
    with database.connection(begin=False) as conn:
        return pd.Series([r[0] for r in conn.execute(stmt)], dtype="float64")


def _received_window(table: Table, since: datetime | None, until: datetime | None) -> list[Any]:
    where = []
    if since is not None:
        where.append(table.c.received_at >= since)
    if until is not None:
        where.append(table.c.received_at <= until)
    return where


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _flag(condition: Any) -> Any:
    return case((condition, 1), else_=0)


def _days_between(database: Database, naive_start: Any, aware_end: Any) -> Any:
    """``aware_end - naive_start`` in days (the naive column is UTC wall time)."""
    if database.dialect == "postgresql":
        return func.extract("epoch", func.timezone("UTC", aware_end) - naive_start) / 86400.0
    return func.julianday(func.substr(aware_end, 1, 26)) - func.julianday(naive_start)
