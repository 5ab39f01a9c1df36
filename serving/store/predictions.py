"""Narrow, indexed copies of every answered prediction, for monitoring; and the reference of each served model.

The audit trail (``serving.store.audit``) keeps each decision whole, as JSON; monitoring needs a few numbers of
millions of them, joined with the actuals and labels (``serving.store.events``). So ``AuditStore.write_many``
also writes, *in the same transaction* as the audit rows, one row per answered forecast step and per scored
order into the tables below (``prediction_rows`` derives them from the audit records): a decision the client
received is in the audit trail and in monitoring, or in neither.

==========================  ========================================================================================
table                       rows
==========================  ========================================================================================
``forecast_predictions``    one per answered forecast step: ``decision_id``, ``created_at`` (aware UTC), model name
                            and version, ``series_id``, ``ds`` (naive UTC), ``step`` (1 = first step after the
                            origin), ``yhat``, ``lo``/``hi`` of the first requested interval level, ``level``
``score_predictions``       one per scored order: ``decision_id``, ``created_at``, model name and version,
                            ``order_id``, ``order_created_at`` (naive UTC), ``score``, ``threshold``, ``flagged``
``model_references``        one per (model name, version) the service loaded: kind, the training figures
                            monitoring compares with (``backtest_wape``, ``valid_auprc``, label maturity...) and the
                            training profile (``training.profile``), written when the model is loaded
==========================  ========================================================================================

Indexes: both prediction tables on ``created_at`` (the monitoring window), so the monitoring query reads only
the window's rows; the joins go from these rows to the primary keys of ``actuals`` (``series_id, ds``) and
``label_events`` (``order_id``). ``score_predictions`` also on ``order_id``: a label that arrives finds the
days of the scores it changes, whose rollups (``serving.store.rollups``) are then recomputed. No index on
``forecast_predictions (series_id, ds)``: each index is one more B-tree insert on the scoring path, and a
changed actual finds its days through the rollups' ``min_ds``/``max_ds``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Double,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Table,
    and_,
    case,
    func,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite

from features.hierarchy import SERIES_LEVEL
from serving.store.db import Database

__all__ = [
    "PredictionTables",
    "prediction_tables",
    "prediction_rows",
    "record_reference",
    "read_references",
    "ModelFilter",
    "forecast_sums",
    "score_outcomes",
    "score_rows",
    "Range",
    "NAT_NS",
    "utc_day",
]

_ID = 200
Range = tuple[
    datetime | None, datetime | None, bool
]  # created_at from lo (inclusive) to hi (inclusive or not)


class PredictionTables:
    """The three monitoring tables in ``metadata`` (one instance per schema)."""

    def __init__(self, metadata: MetaData) -> None:
        aware = DateTime(timezone=True)
        self.forecasts = Table(
            "forecast_predictions",
            metadata,
            Column("decision_id", String(36), nullable=False),
            Column("created_at", aware, nullable=False),
            Column("model_name", String(_ID), nullable=False),
            Column("model_version", String(64), nullable=False),
            Column("series_id", String(_ID), nullable=False),
            Column("ds", DateTime(), nullable=False),
            Column("step", Integer, nullable=False),
            Column("yhat", Double, nullable=True),
            Column("lo", Double, nullable=True),
            Column("hi", Double, nullable=True),
            Column("level", SmallInteger, nullable=True),
            PrimaryKeyConstraint("decision_id", "ds", name="forecast_predictions_pk"),
            Index("forecast_predictions_created", "created_at"),
        )
        self.scores = Table(
            "score_predictions",
            metadata,
            # no primary key: ``decisions`` already refuses a repeated decision_id in the same transaction, and
            # a random-keyed B-tree would dirty one page per scored order on the scoring path
            Column("decision_id", String(36), nullable=False),
            Column("created_at", aware, nullable=False),
            Column("model_name", String(_ID), nullable=False),
            Column("model_version", String(64), nullable=False),
            Column("order_id", String(_ID), nullable=False),
            Column("order_created_at", DateTime(), nullable=True),
            Column("score", Double, nullable=False),
            Column("threshold", Double, nullable=False),
            Column("flagged", SmallInteger, nullable=False),
            Index("score_predictions_created", "created_at"),
            Index("score_predictions_order", "order_id"),  # a new label finds the scores it changes
        )
        self.references = Table(
            "model_references",
            metadata,
            Column("model_name", String(_ID), nullable=False),
            Column("model_version", String(64), nullable=False),
            Column("kind", String(16), nullable=False),
            Column("metrics", JSON(), nullable=True),
            Column("profile", JSON(), nullable=True),
            Column("recorded_at", aware, nullable=False),
            PrimaryKeyConstraint("model_name", "model_version", name="model_references_pk"),
        )


def prediction_tables(metadata: MetaData) -> PredictionTables:
    return PredictionTables(metadata)


def prediction_rows(records: Sequence[Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``(forecast step rows, score rows)`` of audit records (``serving.store.audit.AuditRecord``).

    A forecast record gives one row per point of ``output["points"]`` (its ``input["series_id"]``; interval of
    ``output["levels"][0]``), except the aggregates of a hierarchy forecast (``input["level"]`` other than
    the series level), whose actuals are never posted; a score record one row (``input["order_id"]``, ``input["created_at"]``,
    ``output["score"]``, ``["threshold"]``, ``["flagged"]``). Records without those fields give no row.
    """
    forecasts: list[dict[str, Any]] = []
    scores: list[dict[str, Any]] = []
    for r in records:
        inp = r.input if isinstance(r.input, Mapping) else {}
        out = r.output if isinstance(r.output, Mapping) else {}
        created = r.created_at.astimezone(UTC)
        if r.kind == "forecast":
            sid = inp.get("series_id")
            levels = out.get("levels") or [None]
            level = inp.get("level")  # a hierarchy answer names its level; a series answer's is the interval
            if sid is None or (isinstance(level, str) and level != SERIES_LEVEL):
                continue  # aggregates (hierarchy levels) get no actuals through /v1/actuals: nothing to match
            for p in out.get("points") or ():
                forecasts.append(
                    {
                        "decision_id": r.decision_id,
                        "created_at": created,
                        "model_name": r.model_name,
                        "model_version": str(r.model_version),
                        "series_id": str(sid),
                        "ds": _naive(p["ds"]),
                        "step": int(p["step"]),
                        "yhat": _float(p.get("yhat")),
                        "lo": _float(p.get("yhat_lo")),
                        "hi": _float(p.get("yhat_hi")),
                        "level": None if levels[0] is None else int(levels[0]),
                    }
                )
        elif r.kind == "score" and "order_id" in inp and "score" in out:
            scores.append(
                {
                    "decision_id": r.decision_id,
                    "created_at": created,
                    "model_name": r.model_name,
                    "model_version": str(r.model_version),
                    "order_id": str(inp["order_id"]),
                    "order_created_at": _naive(inp["created_at"]) if inp.get("created_at") else None,
                    "score": float(out["score"]),
                    "threshold": float(out.get("threshold", float("nan"))),
                    "flagged": int(bool(out.get("flagged"))),
                }
            )
    return forecasts, scores


def record_reference(
    database: Database,
    tables: PredictionTables,
    *,
    kind: str,
    name: str,
    version: str,
    metrics: Mapping[str, float],
    profile: Mapping[str, Any] | None,
) -> None:
    """Insert or replace the reference of one model version (called when the service loads it)."""
    row = {
        "model_name": name,
        "model_version": str(version),
        "kind": kind,
        "metrics": {k: float(v) for k, v in metrics.items() if v == v},  # NaN is not JSON
        "profile": dict(profile) if profile is not None else None,
        "recorded_at": datetime.now(UTC),
    }
    dialect = postgresql if database.dialect == "postgresql" else sqlite
    stmt = dialect.insert(tables.references)
    stmt = stmt.on_conflict_do_update(
        index_elements=["model_name", "model_version"],
        set_={k: stmt.excluded[k] for k in ("kind", "metrics", "profile", "recorded_at")},
    )
    with database.connection() as conn:
        conn.execute(stmt, row)


def read_references(database: Database, tables: PredictionTables) -> dict[tuple[str, str], dict[str, Any]]:
    """Every stored reference (``model_name, model_version, kind, metrics, profile``) by (name, version)."""
    with database.connection(begin=False) as conn:
        rows = conn.execute(select(tables.references)).mappings().all()
    return {(r["model_name"], r["model_version"]): dict(r) for r in rows}


def _naive(value: Any) -> datetime:
    """Naive UTC ``datetime`` of an ISO string / datetime / Timestamp (``fromisoformat``: ~20x pd.Timestamp's
    speed, which matters on the scoring path)."""
    if isinstance(value, str):
        with contextlib.suppress(ValueError):  # not ISO for fromisoformat: pandas parses it below
            value = datetime.fromisoformat(value)
    if isinstance(value, datetime) and not isinstance(value, pd.Timestamp):
        return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo is not None else value
    ts = pd.Timestamp(value)
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    return ts.to_pydatetime()


def _float(value: Any) -> float | None:
    if value is None:
        return None
    out = float(value)
    return out if out == out else None


# ---------------------------------------------------------------------------------------------- queries
def forecast_sums(
    database: Database,
    tables: PredictionTables,
    actuals: Table,
    *,
    since: datetime | None,
    until: datetime | None,
    model: ModelFilter,
    by_day: bool = False,
    ranges: Sequence[Range] | None = None,
) -> pd.DataFrame:
    """Additive sums of the answered forecast steps of the window, matched with their actuals, per model
    version, horizon step and interval level (and UTC day of the answer with ``by_day``): one SQL aggregate,
    the rows never leave the database.

    Columns: ``model_name, model_version, [day,] step, level, last_at, answered, matched, closed, abs_err,
    sum_y, err, n_interval, covered, min_ds, max_ds``. A step is ``matched`` when an open actual of its
    (series_id, ds) is stored (the latest value: the actuals table keeps one row per key), ``closed`` when the
    actual says closed (``open`` 0: not scored, like the backtest); sums run over matched steps only.
    ``ranges`` (``(lo, hi, hi_inclusive)`` of ``created_at``) replaces ``[since, until]`` with several ranges.
    """
    p, a = tables.forecasts, actuals
    is_open = and_(a.c.y.is_not(None), a.c.open != 0)
    y = case((is_open, a.c.y), else_=None)
    has_interval = and_(is_open, p.c.lo.is_not(None), p.c.hi.is_not(None))
    keys = [p.c.model_name, p.c.model_version]
    if by_day:
        keys.append(utc_day(database, p.c.created_at).label("day"))
    keys += [p.c.step, p.c.level]
    stmt = select(
        *keys,
        func.max(p.c.created_at).label("last_at"),
        func.count().label("answered"),
        func.sum(case((is_open, 1), else_=0)).label("matched"),
        func.sum(case((a.c.open == 0, 1), else_=0)).label("closed"),
        func.sum(func.abs(p.c.yhat - y)).label("abs_err"),
        func.sum(y).label("sum_y"),
        func.sum(p.c.yhat - y).label("err"),
        func.sum(case((has_interval, 1), else_=0)).label("n_interval"),
        func.sum(case((and_(has_interval, a.c.y >= p.c.lo, a.c.y <= p.c.hi), 1), else_=0)).label("covered"),
        func.min(p.c.ds).label("min_ds"),
        func.max(p.c.ds).label("max_ds"),
    ).select_from(p.outerjoin(a, and_(a.c.series_id == p.c.series_id, a.c.ds == p.c.ds)))
    rows: list[Any] = []
    with database.connection(begin=False) as conn:
        for where in _wheres(p, since, until, model, ranges):
            rows += conn.execute(stmt.where(*where).group_by(*keys)).all()
    columns = {k: v for k, v in _FORECAST_SUM_COLUMNS.items() if by_day or k != "day"}
    frame = pd.DataFrame(rows, columns=list(columns)).astype(columns)
    frame["last_at"] = pd.to_datetime(frame["last_at"], utc=True)
    return frame


def score_rows(
    database: Database,
    tables: PredictionTables,
    labels: Table,
    *,
    model: ModelFilter,
    ranges: Sequence[Range],
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The scored orders answered in ``ranges`` (``(lo, hi, hi_inclusive)`` of ``created_at``) with their stored
    label, and when each model version answered last on each day.

    Rows: ``model_name, model_version, day, score, flagged, label`` (-1: no label stored), ``order_created_ns``
    (the order's naive UTC ``created_at`` in ns, ``NAT_NS`` when unknown); last: ``model_name, model_version,
    day, last_at``. ``score_outcomes`` turns labels into outcomes.
    """
    p, lab = tables.scores, labels
    day = utc_day(database, p.c.created_at).label("day")
    rows_stmt = select(
        p.c.model_name, p.c.model_version, day, p.c.score, p.c.flagged, lab.c.label, p.c.order_created_at
    ).select_from(p.outerjoin(lab, lab.c.order_id == p.c.order_id))
    last_stmt = select(p.c.model_name, p.c.model_version, day, func.max(p.c.created_at))
    rows: list[Any] = []
    last: list[Any] = []
    with database.connection(begin=False) as conn:
        for where in _wheres(p, None, None, model, ranges):
            rows += conn.execute(rows_stmt.where(*where)).all()
            last += conn.execute(
                last_stmt.where(*where).group_by(p.c.model_name, p.c.model_version, day)
            ).all()
    names = ["model_name", "model_version", "day", "score", "flagged", "label", "order_created_at"]
    cols = list(zip(*rows, strict=True)) if rows else [() for _ in names]
    frame = pd.DataFrame(dict(zip(names, cols, strict=True)))
    created = pd.to_datetime(frame.pop("order_created_at"), utc=True).dt.tz_localize(None)
    frame["order_created_ns"] = created.to_numpy("datetime64[ns]").view("int64")
    frame["label"] = frame["label"].astype("float64").fillna(-1)
    frame = frame.astype(_SCORE_ROW_COLUMNS)
    last_frame = pd.DataFrame(last, columns=["model_name", "model_version", "day", "last_at"])
    last_frame["last_at"] = pd.to_datetime(last_frame["last_at"], utc=True)
    return frame, last_frame.astype({"model_name": "string", "model_version": "string", "day": "string"})


def score_outcomes(
    rows: pd.DataFrame,
    last: pd.DataFrame,
    *,
    mature_before: Mapping[tuple[str, str], datetime],
    default_mature_before: datetime,
    by_day: bool = False,
) -> tuple[pd.DataFrame, dict[tuple[str, str], datetime]]:
    """The scored orders of ``score_rows`` with their outcome, and when each model version answered last.

    Frame columns: ``model_name, model_version, [day,] score, flagged, outcome``; ``outcome`` is 1 / 0 from
    the order's label event; an order without one is 0 when it was created before its model's
    ``mature_before`` (naive UTC), else -1 (pending: also when the order's time is unknown).
    """
    cut = np.full(len(rows), _ns(default_mature_before), dtype="int64")
    for (name, version), when in mature_before.items():
        cut[((rows["model_name"] == name) & (rows["model_version"] == version)).to_numpy()] = _ns(when)
    label = rows["label"].to_numpy()
    created = rows["order_created_ns"].to_numpy()
    matured = (created != NAT_NS) & (created < cut)
    outcome = np.where(label >= 0, label, np.where(matured, 0, -1)).astype("int8")
    frame = rows[["model_name", "model_version", "day", "score", "flagged"]].assign(outcome=outcome)
    if not by_day:
        frame = frame.drop(columns="day")
    last_at = {
        (name, version): part.max()
        for (name, version), part in last.groupby(["model_name", "model_version"], sort=True)["last_at"]
    }
    return frame, last_at


class ModelFilter:
    """Which predictions a query reads: all, one registered model name, or one name and version."""

    def __init__(self, name: str | None = None, version: str | None = None) -> None:
        self.name = name
        self.version = version

    def __repr__(self) -> str:
        return f"ModelFilter(name={self.name!r}, version={self.version!r})"


_FORECAST_SUM_COLUMNS = {
    "model_name": "string",
    "model_version": "string",
    "day": "string",
    "step": "int64",
    "level": "Int64",
    "last_at": "object",
    "answered": "int64",
    "matched": "int64",
    "closed": "int64",
    "abs_err": "float64",
    "sum_y": "float64",
    "err": "float64",
    "n_interval": "int64",
    "covered": "int64",
    "min_ds": "object",
    "max_ds": "object",
}
_SCORE_ROW_COLUMNS = {
    "model_name": "string",
    "model_version": "string",
    "day": "string",
    "score": "float64",
    "flagged": "int8",
    "label": "int8",
    "order_created_ns": "int64",
}
NAT_NS = np.iinfo("int64").min  # pandas' NaT as int64: an order whose created_at is unknown


def _window(table: Table, since: datetime | None, until: datetime | None, model: ModelFilter) -> list[Any]:
    where: list[Any] = []
    if since is not None:
        where.append(table.c.created_at >= _aware(since))
    if until is not None:
        where.append(table.c.created_at <= _aware(until))
    if model.name is not None:
        where.append(table.c.model_name == model.name)
    if model.version is not None:
        where.append(table.c.model_version == model.version)
    return where


def _wheres(
    table: Table,
    since: datetime | None,
    until: datetime | None,
    model: ModelFilter,
    ranges: Sequence[Range] | None,
) -> list[list[Any]]:
    """One WHERE clause per range of ``created_at`` (``[since, until]`` when ``ranges`` is None)."""
    if ranges is None:
        return [_window(table, since, until, model)]
    out = []
    for lo, hi, inclusive in ranges:
        where = _window(table, lo, None, model)
        if hi is not None:
            where.append(table.c.created_at <= _aware(hi) if inclusive else table.c.created_at < _aware(hi))
        out.append(where)
    return out


def _ns(value: datetime) -> int:
    """ns since the epoch of a naive UTC (or aware) datetime."""
    return pd.Timestamp(value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value).value


def utc_day(database: Database, column: Any) -> Any:
    """The UTC calendar day of an aware timestamp column, as 'YYYY-MM-DD' text."""
    if database.dialect == "postgresql":
        return func.to_char(func.timezone("UTC", column), "YYYY-MM-DD")
    return func.substr(column, 1, 10)  # SQLite stores UTC 'YYYY-MM-DD HH:MM:SS...' text


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
