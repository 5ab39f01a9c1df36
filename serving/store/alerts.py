"""Volume alerts and their webhook outbox, in the audit database (SQLite or PostgreSQL via ``serving.store.db``).

One row per alert (an event of ``training.volume``: one alert at its first point). The row is also the outbox
entry of its webhook delivery (transactional outbox): it is written in the same transaction as the alert, and
stays ``pending`` until a POST to the receiver succeeded, so a dead receiver loses nothing; the sender retries
it with backoff (``attempts``, ``next_attempt_at``, ``last_error``).

``alert_id`` is derived from (series_id, ds), so a point re-sent after a lost response never stores a second
alert, and the receiver gets the same ``Idempotency-Key`` on every retry.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Column,
    DateTime,
    Double,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from serving.store.db import Database

__all__ = ["VolumeAlert", "AlertStore", "alert_id_for"]

_NAMESPACE = uuid.UUID("6f1c2a55-6c4b-4c53-9a52-0f5d8f3c1e14")


def alert_id_for(series_id: str, ds: datetime) -> str:
    """The stable id of the alert opened at (series_id, ds)."""
    return str(uuid.uuid5(_NAMESPACE, f"{series_id}|{_naive(ds).isoformat()}"))


@dataclass(frozen=True)
class VolumeAlert:
    """One alert as stored and as sent to the webhook (``payload``)."""

    series_id: str
    ds: datetime
    y: float
    expected: float
    lo: float
    hi: float
    score: float
    direction: str
    reason: str
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def alert_id(self) -> str:
        return alert_id_for(self.series_id, self.ds)

    def payload(self) -> dict[str, Any]:
        return {
            "alert_id": self.alert_id,
            "series_id": self.series_id,
            "ds": _naive(self.ds).isoformat(),
            "y": self.y,
            "expected": self.expected,
            "lo": self.lo,
            "hi": self.hi,
            "score": self.score,
            "direction": self.direction,
            "reason": self.reason,
            "created_at": self.created_at.isoformat(),
        }


class AlertStore:
    """Alerts and their delivery state; thread-safe (one pooled connection per call)."""

    def __init__(self, database: Database, *, schema: str | None = None) -> None:
        self.database = database
        self.metadata = MetaData(schema=schema)
        aware = DateTime(timezone=True)
        self.alerts = Table(
            "volume_alerts",
            self.metadata,
            Column("alert_id", String(36), primary_key=True),
            Column("series_id", String(200), nullable=False),
            Column("ds", DateTime(), nullable=False),
            Column("y", Double, nullable=False),
            Column("expected", Double, nullable=False),
            Column("lo", Double, nullable=False),
            Column("hi", Double, nullable=False),
            Column("score", Double, nullable=False),
            Column("direction", String(8), nullable=False),
            Column("reason", Text, nullable=False),
            Column("created_at", aware, nullable=False),
            Column("delivery", String(12), nullable=False),  # pending | delivered | none (no webhook)
            Column("attempts", Integer, nullable=False),
            Column("next_attempt_at", aware, nullable=True),
            Column("delivered_at", aware, nullable=True),
            Column("last_error", Text, nullable=True),
            Index("volume_alerts_created", "created_at"),
            Index("volume_alerts_delivery", "delivery", "next_attempt_at"),
        )
        database.create_tables(self.metadata, schema)

    def add(self, alerts: Sequence[VolumeAlert], *, deliver: bool) -> int:
        """Store ``alerts`` (an alert already stored is skipped); ``deliver``: queue them for the webhook.
        Returns how many were new."""
        if not alerts:
            return 0
        with self.database.connection() as conn:
            return self.add_in(conn, alerts, deliver=deliver)

    def add_in(self, conn: Any, alerts: Sequence[VolumeAlert], *, deliver: bool) -> int:
        """``add`` inside the caller's transaction ``conn`` (e.g. with the detector state it came from)."""
        rows = [
            {
                **{k: v for k, v in a.payload().items() if k not in ("ds", "created_at")},
                "ds": _naive(a.ds),
                "created_at": a.created_at,
                "delivery": "pending" if deliver else "none",
                "attempts": 0,
                "next_attempt_at": a.created_at if deliver else None,
            }
            for a in alerts
        ]
        dialect = postgresql if self.database.dialect == "postgresql" else sqlite
        stmt = (
            dialect.insert(self.alerts)
            .on_conflict_do_nothing(index_elements=["alert_id"])
            .returning(self.alerts.c.alert_id)  # rowcount is -1 on psycopg: count the rows returned
        )
        return sum(len(conn.execute(stmt, row).all()) for row in rows)

    def since(self, since: datetime, *, limit: int = 1000) -> list[dict[str, Any]]:
        """Alerts created at or after ``since``, oldest first, at most ``limit``."""
        t = self.alerts
        query = (
            select(t)
            .where(t.c.created_at >= _aware(since))
            .order_by(t.c.created_at, t.c.alert_id)
            .limit(limit)
        )
        with self.database.connection(begin=False) as conn:
            return [dict(row._mapping) for row in conn.execute(query)]

    def due(self, now: datetime, *, limit: int = 100) -> list[dict[str, Any]]:
        """Pending deliveries whose next attempt is due."""
        t = self.alerts
        query = (
            select(t)
            .where(t.c.delivery == "pending", t.c.next_attempt_at <= _aware(now))
            .order_by(t.c.created_at)
            .limit(limit)
        )
        with self.database.connection(begin=False) as conn:
            return [dict(row._mapping) for row in conn.execute(query)]

    def delivered(self, alert_id: str, at: datetime) -> None:
        t = self.alerts
        with self.database.connection() as conn:
            conn.execute(
                update(t)
                .where(t.c.alert_id == alert_id)
                .values(delivery="delivered", delivered_at=at, attempts=t.c.attempts + 1, last_error=None)
            )

    def failed(self, alert_id: str, error: str, retry_at: datetime) -> None:
        t = self.alerts
        with self.database.connection() as conn:
            conn.execute(
                update(t)
                .where(t.c.alert_id == alert_id)
                .values(attempts=t.c.attempts + 1, last_error=error[:500], next_attempt_at=retry_at)
            )

    def pending_count(self) -> int:
        t = self.alerts
        with self.database.connection(begin=False) as conn:
            return len(conn.execute(select(t.c.alert_id).where(t.c.delivery == "pending")).all())


def _naive(value: datetime) -> datetime:
    """UTC wall time without tzinfo (the ``ds`` convention of every table)."""
    if getattr(value, "tzinfo", None) is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.to_pydatetime() if hasattr(value, "to_pydatetime") else value


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value
