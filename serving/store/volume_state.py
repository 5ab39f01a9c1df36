"""The volume detector's state per series, shared by every worker and kept across restarts (audit database).

One row per series: the kernel's state vector (``training.volume.kernel``: float64 bytes), the reasons'
memory of past alerts (JSON), the series' alert count and a ``version``. A worker judging points of a series
reads the row when its own copy is older, judges, and writes the new state back with compare-and-swap
(``UPDATE ... WHERE version = <the version it read>``) in the same transaction as the alerts of those points.
When another worker wrote first, the swap matches no row, the transaction (state and alerts) is rolled back
and the worker re-reads and judges again from the winner's state (a point the winner already judged is then
``already_seen``). So workers agree on one verdict stream per series and a restart resumes where the last
write stopped, without a second warm-up.

Chosen over recomputing from stored actuals at start-up: the state is a few kB to ~40 kB per series (a
5-minute grid's time-of-week profile), O(1) to load, and exact (streaming equals batch), while replaying
history costs time proportional to it and needs every actual kept.
"""

from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Column, DateTime, Integer, LargeBinary, MetaData, String, Table, Text, select, update
from sqlalchemy.dialects import postgresql, sqlite

from serving.store.db import Database
from training.volume.reasons import AlertMemory

__all__ = ["SeriesState", "VolumeStateStore", "StateConflict"]


class StateConflict(Exception):
    """Another worker wrote the series' state first (compare-and-swap found a newer version)."""


@dataclass
class SeriesState:
    """One series' detector state as stored (``version`` counts the writes)."""

    version: int
    state: np.ndarray
    memory: AlertMemory
    alerts: int


class VolumeStateStore:
    """Detector state rows; thread-safe (one pooled connection per call)."""

    def __init__(self, database: Database, *, schema: str | None = None) -> None:
        self.database = database
        self.metadata = MetaData(schema=schema)
        self.states = Table(
            "volume_detector_state",
            self.metadata,
            Column("series_id", String(200), primary_key=True),
            Column("version", Integer, nullable=False),
            Column("state", LargeBinary, nullable=False),
            Column("memory", Text, nullable=False),
            Column("alerts", Integer, nullable=False),
            Column("updated_at", DateTime(timezone=True), nullable=False),
        )
        database.create_tables(self.metadata, schema)

    def version(self, series_id: str) -> int:
        """The stored version of ``series_id`` (0: no row yet)."""
        t = self.states
        with self.database.connection(begin=False) as conn:
            row = conn.execute(select(t.c.version).where(t.c.series_id == series_id)).first()
        return 0 if row is None else int(row.version)

    def load(self, series_id: str) -> SeriesState | None:
        t = self.states
        with self.database.connection(begin=False) as conn:
            row = conn.execute(select(t).where(t.c.series_id == series_id)).first()
        if row is None:
            return None
        return SeriesState(
            version=int(row.version),
            state=np.frombuffer(bytes(row.state), dtype="<f8").copy(),
            memory=_memory_from_json(row.memory),
            alerts=int(row.alerts),
        )

    def save(self, conn: Any, series_id: str, read_version: int, new: SeriesState) -> int:
        """Write ``new`` as version ``read_version + 1`` inside transaction ``conn`` if the row is still at
        ``read_version`` (0: no row yet); raise ``StateConflict`` otherwise. Returns the new version."""
        t = self.states
        values = {
            "version": read_version + 1,
            "state": np.ascontiguousarray(new.state, dtype="<f8").tobytes(),
            "memory": _memory_to_json(new.memory),
            "alerts": int(new.alerts),
            "updated_at": datetime.now(UTC),
        }
        if read_version == 0:
            dialect = postgresql if self.database.dialect == "postgresql" else sqlite
            stmt = (
                dialect.insert(t)
                .values(series_id=series_id, **values)
                .on_conflict_do_nothing(index_elements=["series_id"])
                .returning(t.c.series_id)
            )
        else:
            stmt = (
                update(t)
                .where(t.c.series_id == series_id, t.c.version == read_version)
                .values(**values)
                .returning(t.c.series_id)  # rowcount is -1 on psycopg: count the rows returned
            )
        if not conn.execute(stmt).all():
            raise StateConflict(series_id)
        return read_version + 1


def _memory_to_json(memory: AlertMemory) -> str:
    return json.dumps(
        {
            "alerts": [[pd.Timestamp(ts).isoformat(), d, float(r)] for ts, d, r in memory.alerts],
            "open_since": None if memory.open_since is None else pd.Timestamp(memory.open_since).isoformat(),
        }
    )


def _memory_from_json(text: str) -> AlertMemory:
    data = json.loads(text)
    memory = AlertMemory()
    memory.alerts = deque(
        [(pd.Timestamp(ts), d, float(r)) for ts, d, r in data["alerts"]], maxlen=memory.alerts.maxlen
    )
    memory.open_since = None if data["open_since"] is None else pd.Timestamp(data["open_since"])
    return memory
