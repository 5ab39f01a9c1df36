"""Order counts of the open volume steps, shared by every worker and kept across restarts (audit database).

``serving.services.order_volume`` counts the orders accepted by ``POST /v1/events`` per series and step. The
counts live here, not in a worker's memory, so several workers count together and a restart loses nothing:

==================== ======================================================================================
table                rows
==================== ======================================================================================
``volume_step_counts`` one per (``series_id``, ``step``) of a step not judged yet: ``orders`` counted so far
``volume_step_cursor`` one per series: ``next_step``, the first step not judged yet (``UNSTARTED`` until the
                     series' first steps are judged: its first step is then its earliest counted one, so an
                     order dated far ahead that came first does not make the earlier ones late), and
                     ``late``, orders that arrived for a step already judged (counted, not judged again)
==================== ======================================================================================

``add_in`` runs inside the transaction that stores the orders (``EventStore.add_orders``), so an order is
counted exactly when it is stored: an upsert ``orders = orders + n`` per (series, step), after reading the
series' cursor with a shared row lock (PostgreSQL ``FOR SHARE``; SQLite write transactions are serialised by
``serving.store.db``), so a step cannot be closed between the look-up and the count.

``claim`` closes steps ``[start, end)`` of a series exactly once across workers: a compare-and-swap on the
cursor (``UPDATE ... SET next_step = end WHERE next_step = start``) and a ``DELETE ... RETURNING`` of the
steps' counts, in the transaction that also writes the detector state and the alerts of their verdicts
(``serving.services.volume``). A worker whose swap matches no row, or whose counts changed since it read them,
gets ``StateConflict``: its transaction (verdicts, state, alerts) rolls back and it reads again.

The watermark (event time, not the wall clock) is computed from ``open_steps`` by
``serving.services.order_volume``: the newest step with open orders that the stream has reached (a lone order
far ahead of the others does not move it). The counts of the watermark's step are never claimed (a step closes
once the watermark is a whole step past its end), so it stays among the open steps.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    delete,
    func,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from serving.store.db import Database
from serving.store.volume_state import StateConflict

__all__ = ["VolumeCountStore"]

StepKey = tuple[str, datetime]  # (series_id, step start: naive UTC on the grid)
# next_step of a series none of whose steps was judged yet (before any valid date)
UNSTARTED = datetime(1800, 1, 1)


class VolumeCountStore:
    """Open-step counts and per-series cursors; thread-safe (one pooled connection per call)."""

    def __init__(self, database: Database, *, schema: str | None = None) -> None:
        self.database = database
        self.metadata = MetaData(schema=schema)
        self.counts = Table(
            "volume_step_counts",
            self.metadata,
            Column("series_id", String(200), nullable=False),
            Column("step", DateTime(), nullable=False),
            Column("orders", Integer, nullable=False),
            PrimaryKeyConstraint("series_id", "step", name="volume_step_counts_pk"),
            Index("volume_step_counts_step", "step"),
        )
        self.cursors = Table(
            "volume_step_cursor",
            self.metadata,
            Column("series_id", String(200), primary_key=True),
            Column("next_step", DateTime(), nullable=False),
            Column("late", Integer, nullable=False),
        )
        database.create_tables(self.metadata, schema)

    def add_in(self, conn: Any, counts: Mapping[StepKey, int]) -> int:
        """Add ``counts`` inside the caller's transaction ``conn`` (the one storing the orders). A series seen
        for the first time starts at its earliest step here; orders of a step before a series' cursor (already
        judged) are counted as ``late`` instead. Returns the number of late orders."""
        if not counts:
            return 0
        keys = sorted(counts)  # one lock order for every writer (no deadlocks between transactions)
        first: dict[str, datetime] = {}
        for sid, step in keys:
            first.setdefault(sid, step)
        c = self.cursors
        new = [{"series_id": s, "next_step": UNSTARTED, "late": 0} for s in first]
        conn.execute(self._insert(c).on_conflict_do_nothing(index_elements=["series_id"]), new)
        query = select(c.c.series_id, c.c.next_step).where(c.c.series_id.in_(list(first)))
        if self.database.dialect == "postgresql":
            query = query.with_for_update(read=True)  # no claim between this look-up and the counts
        cursor = {row.series_id: _naive(row.next_step) for row in conn.execute(query)}
        late: dict[str, int] = {}
        rows = []
        for sid, step in keys:
            if step < cursor[sid]:
                late[sid] = late.get(sid, 0) + int(counts[sid, step])
            else:
                rows.append({"series_id": sid, "step": step, "orders": int(counts[sid, step])})
        if rows:
            stmt = self._insert(self.counts)
            stmt = stmt.on_conflict_do_update(
                index_elements=["series_id", "step"],
                set_={"orders": self.counts.c.orders + stmt.excluded.orders},
            )
            conn.execute(stmt, rows)
        for sid, n in late.items():
            conn.execute(update(c).where(c.c.series_id == sid).values(late=c.c.late + n))
        return sum(late.values())

    def open_steps(self) -> list[tuple[datetime, int]]:
        """``(step, orders)`` of every step with open orders (all series summed), oldest first."""
        t = self.counts
        query = select(t.c.step, func.sum(t.c.orders)).group_by(t.c.step).order_by(t.c.step)
        with self.database.connection(begin=False) as conn:
            return [(_naive(row[0]), int(row[1])) for row in conn.execute(query)]

    def cursors_before(self, step: datetime) -> dict[str, datetime]:
        """``series_id -> next_step`` of the series whose next step starts before ``step``."""
        c = self.cursors
        with self.database.connection(begin=False) as conn:
            rows = conn.execute(select(c.c.series_id, c.c.next_step).where(c.c.next_step < step)).all()
        return {row.series_id: _naive(row.next_step) for row in rows}

    def cursor(self, series_id: str) -> tuple[datetime, datetime] | None:
        """``(stored next_step, first step to judge)`` of ``series_id``: they differ for a series none of whose
        steps was judged (``UNSTARTED``, its earliest counted step); None without a cursor or a step to judge."""
        c, t = self.cursors, self.counts
        with self.database.connection(begin=False) as conn:
            value = conn.execute(select(c.c.next_step).where(c.c.series_id == series_id)).scalar()
            if value is None:
                return None
            stored = start = _naive(value)
            if stored == UNSTARTED:
                start = conn.execute(select(func.min(t.c.step)).where(t.c.series_id == series_id)).scalar()
        return None if start is None else (stored, _naive(start))

    def open_counts(self, series_id: str, start: datetime, end: datetime) -> dict[datetime, int]:
        """``step -> orders`` of ``series_id`` for the steps in ``[start, end)`` that have orders."""
        t = self.counts
        query = select(t.c.step, t.c.orders).where(
            t.c.series_id == series_id, t.c.step >= start, t.c.step < end
        )
        with self.database.connection(begin=False) as conn:
            return {_naive(row.step): int(row.orders) for row in conn.execute(query)}

    def claim(
        self, conn: Any, series_id: str, start: datetime, end: datetime, expected: Mapping[datetime, int]
    ) -> None:
        """Close the steps before ``end`` of ``series_id`` inside transaction ``conn``: move its cursor from
        ``start`` (the stored ``next_step``, maybe ``UNSTARTED``) to ``end`` and delete their counts, which must
        equal ``expected`` (what was judged). Raises ``StateConflict`` when another worker moved the cursor or
        counted more orders meanwhile."""
        c = self.cursors
        moved = conn.execute(
            update(c)
            .where(c.c.series_id == series_id, c.c.next_step == start)
            .values(next_step=end)
            .returning(c.c.series_id)  # rowcount is -1 on psycopg: count the rows returned
        ).all()
        if not moved:
            raise StateConflict(series_id)
        t = self.counts
        gone = conn.execute(
            delete(t).where(t.c.series_id == series_id, t.c.step < end).returning(t.c.step, t.c.orders)
        ).all()
        if {_naive(row.step): int(row.orders) for row in gone} != dict(expected):
            raise StateConflict(series_id)

    def late(self) -> int:
        """Orders counted as late over all series."""
        with self.database.connection(begin=False) as conn:
            return int(conn.execute(select(func.coalesce(func.sum(self.cursors.c.late), 0))).scalar_one())

    def _insert(self, table: Table) -> Any:
        dialect = postgresql if self.database.dialect == "postgresql" else sqlite
        return dialect.insert(table)


def _naive(value: datetime) -> datetime:
    return value.replace(tzinfo=None) if value.tzinfo is not None else value
