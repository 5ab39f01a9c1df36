"""Exact per-day rollups of the monitoring tables, so a long window is read from a few rows per day.

``GET /v1/monitoring`` over a year of decisions would otherwise join and aggregate millions of rows. A complete
UTC day of answers (``created_at``) is summarised once, on the first query that needs it, and kept:

==========================  ========================================================================================
table                       rows
==========================  ========================================================================================
``monitoring_rollup_days``  one per (kind, day) summarised: when (``computed_at``, taken *before* the rows were read)
                            and, for forecasts, the range of target dates (``min_ds``, ``max_ds``) its steps cover
``forecast_rollup``         the additive sums of ``serving.store.predictions.forecast_sums`` per day, model version,
                            horizon step and interval level (the same SQL aggregate, grouped by day)
``score_rollup``            per day and model version the numbers AUPRC / ECE need, as one packed array
                            (``score``, ``flagged``, ``label`` as stored then (-1 none), the order's ``created_at``):
                            the outcome of an unlabeled order depends on the query's ``now`` and is derived at read
``count_rollup``            per kind (``card:<table>``), received day and name, a count of the data-quality
                            scorecards (``serving.services.monitoring_inputs``)
``monitoring_rollup_state`` per kind, the watermark up to which changed actuals / new labels were checked
==========================  ========================================================================================

Exactness: a rollup holds the same sums and arrays the direct query computes (float sums in another order: equal
to ~1e-12). It is dropped when what it was computed from changes: every query first reads the actuals changed
(``updated_at``) and the labels received since the watermark, and deletes the day rollups they touch (an actual of
date ``ds`` touches the forecast days whose steps cover ``ds``; a label the score day of its order, found through
the ``score_predictions(order_id)`` index) unless the rollup was computed more than ``MARGIN`` after the change.
Days not rolled up (the window's partial first and last day, days younger than ``MARGIN``, days just dropped) are
read directly. ``MARGIN`` (10 min) bounds how long a write transaction may take between stamping its time and
committing; the watermark never passes ``now - MARGIN``, so every change is seen by a query after it commits.
Two queries summarising the same day at once store it once (the day row is inserted first, on conflict nothing).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import (
    Column,
    DateTime,
    Double,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Table,
    func,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite

from serving.store.db import Database
from serving.store.predictions import (
    ModelFilter,
    PredictionTables,
    forecast_sums,
    score_rows,
    utc_day,
)

__all__ = [
    "MARGIN",
    "RollupTables",
    "rolled_forecast_sums",
    "rolled_score_rows",
    "warm",
    "day_plan",
    "DayPlan",
]

MARGIN = timedelta(minutes=10)
SCORE_DTYPE = np.dtype([("score", "<f8"), ("flagged", "i1"), ("label", "i1"), ("order_created_ns", "<i8")])
_ID = 200
_MARGIN_NS = MARGIN // timedelta(microseconds=1) * 1000


class RollupTables:
    """The rollup tables of one schema (created when missing), plus the indexes their invalidation reads by."""

    def __init__(self, database: Database, schema: str | None, scores: Table, actuals: Table) -> None:
        aware = DateTime(timezone=True)
        self.metadata = MetaData(schema=schema)
        self.days = Table(
            "monitoring_rollup_days",
            self.metadata,
            Column("kind", String(64), nullable=False),
            Column("day", String(10), nullable=False),
            Column("computed_at", aware, nullable=False),
            Column("min_ds", DateTime(), nullable=True),
            Column("max_ds", DateTime(), nullable=True),
            PrimaryKeyConstraint("kind", "day", name="monitoring_rollup_days_pk"),
        )
        self.forecasts = Table(
            "forecast_rollup",
            self.metadata,
            Column("day", String(10), nullable=False),
            Column("model_name", String(_ID), nullable=False),
            Column("model_version", String(64), nullable=False),
            Column("step", Integer, nullable=False),
            Column("level", SmallInteger, nullable=True),
            Column("last_at", aware, nullable=False),
            *(Column(c, Integer, nullable=False) for c in ("answered", "matched", "closed")),
            *(Column(c, Double, nullable=True) for c in ("abs_err", "sum_y", "err")),
            *(Column(c, Integer, nullable=False) for c in ("n_interval", "covered")),
            Index("forecast_rollup_day", "day"),
        )
        self.scores = Table(
            "score_rollup",
            self.metadata,
            Column("day", String(10), nullable=False),
            Column("model_name", String(_ID), nullable=False),
            Column("model_version", String(64), nullable=False),
            Column("last_at", aware, nullable=False),
            Column("payload", LargeBinary, nullable=False),
            PrimaryKeyConstraint("day", "model_name", "model_version", name="score_rollup_pk"),
        )
        self.counts = Table(
            "count_rollup",
            self.metadata,
            Column("kind", String(64), nullable=False),
            Column("day", String(10), nullable=False),
            Column("name", String(64), nullable=False),
            Column("value", Integer, nullable=False),
            PrimaryKeyConstraint("kind", "day", "name", name="count_rollup_pk"),
        )
        self.state = Table(
            "monitoring_rollup_state",
            self.metadata,
            Column("kind", String(64), primary_key=True),
            Column("watermark", aware, nullable=False),
        )
        database.create_tables(self.metadata, schema)
        for name, column in (
            ("score_predictions_order", scores.c.order_id),
            ("actuals_updated_at", actuals.c.updated_at),
        ):  # tables created before these indexes existed get them here
            declared = [ix for ix in column.table.indexes if ix.name == name]
            (declared[0] if declared else Index(name, column)).create(database.engine, checkfirst=True)


class DayPlan:
    """How one window is read: complete UTC days from rollups, the rest (``raw``) directly.

    ``days``: 'YYYY-MM-DD' of the days wholly inside the window and older than ``MARGIN``; ``raw``: ``(lo, hi,
    inclusive)`` ranges of ``created_at`` (``lo`` None = unbounded) read from the prediction table.
    """

    def __init__(self, days: list[str], raw: list[tuple[datetime | None, datetime | None, bool]]) -> None:
        self.days = days
        self.raw = raw


def day_plan(
    since: datetime | None, until: datetime | None, first: datetime | None, clock: datetime
) -> DayPlan:
    """Split ``[since, until]`` (aware UTC; ``until`` inclusive) into rollup days and direct ranges.

    ``first`` is the table's oldest ``created_at`` (the start when ``since`` is None); ``clock`` the real time:
    a day is complete once ``MARGIN`` has passed since it ended (no answer of it can still be committing).
    """
    if since is None and first is None:
        return DayPlan([], [(since, until, True)])
    if since is None:  # from the table's first day: nothing is answered before it
        first_day = _midnight(first)
    else:
        first_day = _midnight(since) if since == _midnight(since) else _midnight(since) + timedelta(days=1)
    end = min(until, clock - MARGIN) if until is not None else clock - MARGIN
    last_day_end = _midnight(end)  # the end of the last complete day
    if last_day_end <= first_day:
        return DayPlan([], [(since, until, True)])
    n_days = (last_day_end - first_day).days
    days = [(first_day + timedelta(days=i)).strftime("%Y-%m-%d") for i in range(n_days)]
    raw: list[tuple[datetime | None, datetime | None, bool]] = []
    if since is not None and since < first_day:
        raw.append((since, first_day, False))
    raw.append((last_day_end, until, True))
    return DayPlan(days, raw)


def refresh(
    database: Database,
    tables: RollupTables,
    kind: str,
    days: list[str],
    *,
    changed: Callable[[Any, datetime], list[tuple[Any, datetime]]],
    stale: Callable[[Any, list[tuple[Any, datetime]]], list[str]],
    compute: Callable[[datetime, datetime], tuple[dict[str, pd.DataFrame | list], dict[str, tuple]]],
    store: Callable[[Any, list[str], dict[str, Any]], None],
    clock: datetime,
) -> None:
    """Drop the rollups of ``kind`` that changed inputs made stale, then compute and store the ``days`` missing.

    ``changed(conn, since)``: (key, change time) of inputs changed after ``since``; ``stale(conn, changes)``:
    days whose rollup those changes touch and that were computed before change + ``MARGIN``;
    ``compute(lo, hi)``: per day, the rollup rows of ``[lo, hi)`` and the day's ``(min_ds, max_ds)``;
    ``store(conn, days, rows)`` inserts the rows of the days whose marker this call inserted.
    """
    t = tables
    gone: list[str] = []
    with database.connection(begin=False) as conn:  # reads only: no write lock unless something changed
        watermark = conn.execute(
            select(t.state.c.watermark).where(t.state.c.kind == kind)
        ).scalar_one_or_none()
        watermark = _utc(watermark) if watermark is not None else None
        any_day = conn.execute(select(t.days.c.day).where(t.days.c.kind == kind).limit(1)).first()
        mark = clock - MARGIN
        if any_day is not None:
            since = watermark - MARGIN if watermark is not None else datetime(1970, 1, 1, tzinfo=UTC)
            changes = changed(conn, since)
            gone = stale(conn, changes) if changes else []
            newest = max((c for _, c in changes), default=None)
            mark = min(_utc(newest), mark) if newest is not None else mark
    advance = watermark is None or mark - watermark >= MARGIN / 2  # a lagging watermark only re-reads more
    if gone or advance:
        with database.connection() as conn:
            for chunk in _chunks(gone):
                conn.execute(t.days.delete().where(t.days.c.kind == kind, t.days.c.day.in_(chunk)))
                if kind in ("forecast", "score"):
                    rows = t.forecasts if kind == "forecast" else t.scores
                    conn.execute(rows.delete().where(rows.c.day.in_(chunk)))
                else:
                    conn.execute(t.counts.delete().where(t.counts.c.kind == kind, t.counts.c.day.in_(chunk)))
            if advance:
                _upsert_state(database, conn, t.state, kind, mark)
    if not days:
        return
    with database.connection(begin=False) as conn:
        have = set()
        for chunk in _chunks(days):
            have |= set(
                conn.execute(
                    select(t.days.c.day).where(t.days.c.kind == kind, t.days.c.day.in_(chunk))
                ).scalars()
            )
    missing = [d for d in days if d not in have]
    for lo, hi in _runs(missing):
        computed_at = datetime.now(UTC)  # before the rows are read: a change committed later is newer
        rows, ranges = compute(lo, hi)
        run_days = [(lo + timedelta(days=i)).strftime("%Y-%m-%d") for i in range((hi - lo).days)]
        markers = [
            {
                "kind": kind,
                "day": d,
                "computed_at": computed_at,
                "min_ds": ranges.get(d, (None, None))[0],
                "max_ds": ranges.get(d, (None, None))[1],
            }
            for d in run_days
        ]
        dialect = postgresql if database.dialect == "postgresql" else sqlite
        with database.connection() as conn:
            stmt = dialect.insert(t.days).on_conflict_do_nothing(index_elements=["kind", "day"])
            inserted = list(conn.execute(stmt.returning(t.days.c.day), markers).scalars())
            if inserted:
                store(conn, inserted, rows)


def changed_actuals(actuals: Table) -> Callable[[Any, datetime], list[tuple[Any, datetime]]]:
    """``(ds, last change)`` of the actuals changed after ``since`` (read through ``actuals_updated_at``)."""

    def changed(conn: Any, since: datetime) -> list[tuple[Any, datetime]]:
        a = actuals
        stmt = select(a.c.ds, func.max(a.c.updated_at)).where(a.c.updated_at > since).group_by(a.c.ds)
        return [(r[0], _utc(r[1])) for r in conn.execute(stmt)]

    return changed


def stale_forecast_days(tables: RollupTables) -> Callable[[Any, list[tuple[Any, datetime]]], list[str]]:
    """Forecast days whose steps cover a changed ``ds`` and whose rollup predates that change + ``MARGIN``."""

    def stale(conn: Any, changes: list[tuple[Any, datetime]]) -> list[str]:
        d = tables.days
        lo, hi = min(ds for ds, _ in changes), max(ds for ds, _ in changes)
        stmt = select(d.c.day, d.c.computed_at, d.c.min_ds, d.c.max_ds).where(
            d.c.kind == "forecast", d.c.min_ds <= hi, d.c.max_ds >= lo
        )
        markers = conn.execute(stmt).all()
        if not markers:
            return []
        ds = np.array([pd.Timestamp(c).value for c, _ in changes], dtype="int64")
        at = np.array([pd.Timestamp(t).value for _, t in changes], dtype="int64")
        order = np.argsort(ds)
        ds, at = ds[order], at[order]
        out = []
        for day, computed_at, min_ds, max_ds in markers:
            i = np.searchsorted(ds, pd.Timestamp(min_ds).value, side="left")
            j = np.searchsorted(ds, pd.Timestamp(max_ds).value, side="right")
            if j > i and at[i:j].max() + _MARGIN_NS > _ns(computed_at):
                out.append(day)
        return out

    return stale


def changed_labels(scores: Table, labels: Table, day: Callable[[Any], Any]) -> Callable:
    """``(score day, newest label received)`` of labels received after ``since``, mapped to the day their order
    was scored (through ``score_predictions_order``)."""

    def changed(conn: Any, since: datetime) -> list[tuple[Any, datetime]]:
        p, lab = scores, labels
        key = day(p.c.created_at)
        stmt = (
            select(key, func.max(lab.c.received_at))
            .select_from(lab.join(p, p.c.order_id == lab.c.order_id))
            .where(lab.c.received_at > since)
            .group_by(key)
        )
        return [(r[0], _utc(r[1])) for r in conn.execute(stmt)]

    return changed


def stale_days(tables: RollupTables, kind: str) -> Callable[[Any, list[tuple[Any, datetime]]], list[str]]:
    """Days (the change's key) of ``kind`` whose rollup predates the change + ``MARGIN``."""

    def stale(conn: Any, changes: list[tuple[Any, datetime]]) -> list[str]:
        d = tables.days
        newest = dict(changes)
        out = []
        for chunk in _chunks(list(newest)):
            stmt = select(d.c.day, d.c.computed_at).where(d.c.kind == kind, d.c.day.in_(chunk))
            out += [day for day, at in conn.execute(stmt) if _utc(at) < newest[day] + MARGIN]
        return out

    return stale


def pack_scores(frame: pd.DataFrame) -> bytes:
    """The packed ``SCORE_DTYPE`` array of ``frame`` (``score, flagged, label, order_created_ns``)."""
    out = np.empty(len(frame), dtype=SCORE_DTYPE)
    for name in SCORE_DTYPE.names:
        out[name] = frame[name].to_numpy()
    return out.tobytes()


def unpack_scores(payload: bytes) -> np.ndarray:
    return np.frombuffer(payload, dtype=SCORE_DTYPE)


def _upsert_state(database: Database, conn: Any, state: Table, kind: str, mark: datetime) -> None:
    dialect = postgresql if database.dialect == "postgresql" else sqlite
    stmt = dialect.insert(state)
    conn.execute(
        stmt.on_conflict_do_update(index_elements=["kind"], set_={"watermark": stmt.excluded.watermark}),
        {"kind": kind, "watermark": mark},
    )


def _runs(days: list[str]) -> Iterable[tuple[datetime, datetime]]:
    """Contiguous runs of 'YYYY-MM-DD' days as ``[lo, hi)`` aware datetimes."""
    stamps = sorted(datetime.strptime(d, "%Y-%m-%d").replace(tzinfo=UTC) for d in days)
    i = 0
    while i < len(stamps):
        j = i
        while j + 1 < len(stamps) and stamps[j + 1] - stamps[j] == timedelta(days=1):
            j += 1
        yield stamps[i], stamps[j] + timedelta(days=1)
        i = j + 1


def _chunks(values: list[Any], size: int = 500) -> Iterable[list[Any]]:
    for i in range(0, len(values), size):
        yield values[i : i + size]


def _midnight(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _ns(value: datetime) -> int:
    return pd.Timestamp(_utc(value)).value


# ---------------------------------------------------------------------------------------------- reads
def rolled_forecast_sums(
    database: Database,
    tables: RollupTables,
    predictions: PredictionTables,
    actuals: Table,
    *,
    since: datetime | None,
    until: datetime | None,
    model: ModelFilter,
    by_day: bool = False,
    clock: datetime | None = None,
    read: bool = True,
) -> pd.DataFrame:
    """``serving.store.predictions.forecast_sums`` of the window, complete days read from ``forecast_rollup``
    (``read`` False: only bring the rollups up to date)."""
    p = predictions.forecasts
    clock = clock or datetime.now(UTC)
    plan = day_plan(since, until, _first(database, p) if since is None else None, clock)

    def compute(lo: datetime, hi: datetime) -> tuple[dict[str, Any], dict[str, tuple]]:
        sums = forecast_sums(
            database,
            predictions,
            actuals,
            since=None,
            until=None,
            model=ModelFilter(),
            by_day=True,
            ranges=[(lo, hi, False)],
        )
        ranges = {d: (part["min_ds"].min(), part["max_ds"].max()) for d, part in sums.groupby("day")}
        return {"sums": sums}, ranges

    def store(conn: Any, days: list[str], rows: dict[str, Any]) -> None:
        sums = rows["sums"]
        sums = sums.loc[sums["day"].isin(days)].drop(columns=["min_ds", "max_ds"])
        if len(sums):
            records = sums.astype(object).where(sums.notna(), None).to_dict("records")
            for r in records:
                r["last_at"] = r["last_at"].to_pydatetime()
            conn.execute(tables.forecasts.insert(), records)

    refresh(
        database,
        tables,
        "forecast",
        plan.days,
        changed=changed_actuals(actuals),
        stale=stale_forecast_days(tables),
        compute=compute,
        store=store,
        clock=clock,
    )
    if not read:
        return pd.DataFrame()
    raw = forecast_sums(
        database, predictions, actuals, since=None, until=None, model=model, by_day=True, ranges=plan.raw
    ).drop(columns=["min_ds", "max_ds"])
    parts = [raw] if len(raw) else []
    if plan.days:
        r = tables.forecasts
        stmt = select(*(r.c[c] for c in raw.columns)).where(*_model_where(r, model))
        stmt = stmt.where(r.c.day >= plan.days[0], r.c.day <= plan.days[-1])
        with database.connection(begin=False) as conn:
            rolled = pd.DataFrame(conn.execute(stmt).all(), columns=list(raw.columns))
        if len(rolled):
            rolled["last_at"] = pd.to_datetime(rolled["last_at"], utc=True)
            parts.append(rolled.astype({c: raw[c].dtype for c in raw.columns if c != "last_at"}))
    frame = pd.concat(parts, ignore_index=True) if len(parts) > 1 else (parts[0] if parts else raw)
    if by_day:
        return frame.reset_index(drop=True)
    keys = ["model_name", "model_version", "step", "level"]
    agg = {
        c: "sum"
        for c in ("answered", "matched", "closed", "abs_err", "sum_y", "err", "n_interval", "covered")
    }
    out = frame.groupby(keys, sort=True, dropna=False).agg({"last_at": "max", **agg}).reset_index()
    for c in ("abs_err", "sum_y", "err"):  # SQL SUM of no matched step is NULL: keep it NaN, not 0
        out[c] = out[c].where(frame.groupby(keys, sort=True, dropna=False)[c].count().to_numpy() > 0)
    return out


def rolled_score_rows(
    database: Database,
    tables: RollupTables,
    predictions: PredictionTables,
    labels: Table,
    *,
    since: datetime | None,
    until: datetime | None,
    model: ModelFilter,
    clock: datetime | None = None,
    read: bool = True,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``serving.store.predictions.score_rows`` of the window, complete days read from ``score_rollup``
    (``read`` False: only bring the rollups up to date). ``model_name``, ``model_version`` and ``day`` are
    categoricals (group them with ``observed=True``)."""
    p = predictions.scores
    clock = clock or datetime.now(UTC)
    plan = day_plan(since, until, _first(database, p) if since is None else None, clock)

    def compute(lo: datetime, hi: datetime) -> tuple[dict[str, Any], dict[str, tuple]]:
        rows, last = score_rows(database, predictions, labels, model=ModelFilter(), ranges=[(lo, hi, False)])
        return {"rows": rows, "last": last}, {}

    def store(conn: Any, days: list[str], got: dict[str, Any]) -> None:
        rows, last = got["rows"], got["last"]
        rows = rows.loc[rows["day"].isin(days)]
        last = last.set_index(["day", "model_name", "model_version"])["last_at"]
        records = [
            {
                "day": day,
                "model_name": name,
                "model_version": version,
                "last_at": last.loc[(day, name, version)].to_pydatetime(),
                "payload": pack_scores(part),
            }
            for (day, name, version), part in rows.groupby(["day", "model_name", "model_version"], sort=True)
        ]
        if records:
            conn.execute(tables.scores.insert(), records)

    changed = changed_labels(p, labels, lambda c: utc_day(database, c))
    refresh(
        database,
        tables,
        "score",
        plan.days,
        changed=changed,
        stale=stale_days(tables, "score"),
        compute=compute,
        store=store,
        clock=clock,
    )
    if not read:
        return pd.DataFrame(), pd.DataFrame()
    rows, last = score_rows(database, predictions, labels, model=model, ranges=plan.raw)
    found: list[Any] = []
    if plan.days:
        r = tables.scores
        stmt = select(r.c.day, r.c.model_name, r.c.model_version, r.c.last_at, r.c.payload)
        stmt = stmt.where(*_model_where(r, model), r.c.day >= plan.days[0], r.c.day <= plan.days[-1])
        with database.connection(begin=False) as conn:
            found = conn.execute(stmt).all()
    arrays = [unpack_scores(f[4]) for f in found]
    sizes = np.array([len(a) for a in arrays], dtype="int64")
    columns: dict[str, Any] = {}
    for i, key in _KEYS:  # categorical keys: hundreds of thousands of rows share a few (day, version) values
        raw_values = rows[key].to_numpy(dtype=object)
        block_values = np.array([f[i] for f in found], dtype=object)
        categories = sorted(set(raw_values) | set(block_values))
        index = pd.Index(categories, dtype=object)
        codes = [index.get_indexer(raw_values), np.repeat(index.get_indexer(block_values), sizes)]
        columns[key] = pd.Categorical.from_codes(np.concatenate(codes).astype("int64"), categories=categories)
    packed = np.concatenate([np.empty(0, dtype=SCORE_DTYPE), *arrays])
    for name in SCORE_DTYPE.names:
        columns[name] = np.concatenate([rows[name].to_numpy(), packed[name]]).astype(SCORE_DTYPE[name])
    out = pd.DataFrame(columns)[list(rows.columns)]
    if found:
        rolled_last = pd.DataFrame(
            {
                **{k: [f[i] for f in found] for i, k in _KEYS},
                "last_at": pd.to_datetime([_utc(f[3]) for f in found], utc=True),
            }
        )
        last = pd.concat([last, rolled_last.astype(last.dtypes.to_dict())], ignore_index=True)
    return out, last


_KEYS = ((0, "day"), (1, "model_name"), (2, "model_version"))


def warm(
    database: Database, tables: RollupTables, predictions: PredictionTables, actuals: Table, labels: Table
) -> None:
    """Bring every complete day's rollups up to date (the periodic monitoring refresh calls it): any window is
    then read from rollups, the first query of a long one included."""
    window = {"since": None, "until": None, "model": ModelFilter(), "read": False}
    rolled_forecast_sums(database, tables, predictions, actuals, **window)
    rolled_score_rows(database, tables, predictions, labels, **window)


def _first(database: Database, table: Table) -> datetime | None:
    """The oldest ``created_at`` of ``table`` (through its ``created_at`` index)."""
    with database.connection(begin=False) as conn:
        value = conn.execute(select(func.min(table.c.created_at))).scalar_one_or_none()
    return _utc(value) if value is not None else None


def _model_where(table: Table, model: ModelFilter) -> list[Any]:
    where = []
    if model.name is not None:
        where.append(table.c.model_name == model.name)
    if model.version is not None:
        where.append(table.c.model_version == model.version)
    return where
