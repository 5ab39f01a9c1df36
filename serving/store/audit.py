"""The decision audit trail: every score and forecast the service returns, with its inputs, features and model.

``AuditStore(url)`` works on SQLite (default ``sqlite:///mlruns/audit.db``) and PostgreSQL
(``postgresql+psycopg://user@host/db``; a bare ``postgresql://`` URL is given the psycopg driver).

Commit before respond: a route calls ``write_many(records)`` *before* it returns, and ``write_many`` commits
its one transaction before returning, so every decision a client has received is already durable. If the
write fails the client gets an error, never an unrecorded decision.

Durability on SQLite: WAL journal with ``synchronous=FULL`` by default, so a commit survives a power loss as
well as a crash, at the cost of one fsync per ``write_many`` (a batch of orders is one call, one fsync).
``synchronous=NORMAL`` (``ORDERPULSE_AUDIT_SQLITE_SYNCHRONOUS=NORMAL``) is faster but a power loss may undo the
last commits, which would break the commit-before-respond promise, so it is opt-in. ``busy_timeout`` makes
concurrent writers (threads, uvicorn worker processes) wait for the lock instead of failing.

Thread-safe: the SQLAlchemy engine hands each call its own pooled connection (an in-memory SQLite db, which
has only one connection, is serialised with a lock). Engine, pragmas and connections live in ``serving.store.db``,
shared with the event store (``serving.store.events``), whose tables sit in the same database.

Monitoring: the same transaction writes the narrow prediction rows of ``serving.store.predictions`` (one per
answered forecast step and scored order), so nothing answered is missing from ``GET /v1/monitoring``.

Tables are created when missing (``metadata.create_all``); there is no migration tool yet, so a later
change of columns needs one (Alembic is already installed as an MLflow dependency).

JSON columns hold plain JSON: numpy / pandas values are converted, and NaN / missing values are stored as
``null`` (see ``serving._json``).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Column,
    DateTime,
    MetaData,
    String,
    Table,
    insert,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

from serving.store.db import Database
from serving.store.predictions import PredictionTables, prediction_rows

__all__ = ["AuditRecord", "AuditStore", "DecisionKind", "DECISION_KINDS"]

DecisionKind = Literal["score", "forecast"]
DECISION_KINDS: tuple[str, ...] = ("score", "forecast")


@dataclass(frozen=True)
class AuditRecord:
    """One decision as stored: ``output`` is the score/flag/threshold/reasons or the forecast summary."""

    kind: DecisionKind
    model_name: str
    model_version: str
    input: Any
    output: Any
    features: Any = None
    model_alias: str | None = None
    request_id: str | None = None
    decision_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def __post_init__(self) -> None:
        if self.kind not in DECISION_KINDS:
            raise ValueError(f"AuditRecord.kind must be one of {DECISION_KINDS}, got {self.kind!r}")
        if self.created_at.tzinfo is None:
            raise ValueError(
                f"AuditRecord.created_at must be timezone-aware (UTC), got naive {self.created_at.isoformat()}; "
                "use datetime.now(UTC)"
            )

    def to_dict(self) -> dict[str, Any]:
        return {
            "decision_id": self.decision_id,
            "created_at": self.created_at.isoformat(),
            "kind": self.kind,
            "model_name": self.model_name,
            "model_version": self.model_version,
            "model_alias": self.model_alias,
            "request_id": self.request_id,
            "input": self.input,
            "features": self.features,
            "output": self.output,
        }


class AuditStore:
    """Append-only store of ``AuditRecord``s; create one per app (the lifespan handler does).

    ``database`` (a ``serving.store.db.Database``) is shared with the event store; pass ``database=`` to reuse an
    open one, else one is opened on ``url``.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        schema: str | None = None,
        sqlite_synchronous: str = "FULL",
        busy_timeout_ms: int = 10_000,
        database: Database | None = None,
        monitoring: bool = True,
    ) -> None:
        if database is None:
            if url is None:
                raise ValueError("AuditStore needs a database URL (url=) or an open Database (database=)")
            database = Database(url, sqlite_synchronous=sqlite_synchronous, busy_timeout_ms=busy_timeout_ms)
        self.database = database
        self.url = database.url
        self.schema = schema
        self.engine = database.engine
        self.metadata = MetaData(schema=schema)
        self.table = _decisions_table(self.metadata)
        self.predictions = PredictionTables(self.metadata)
        self.monitoring = (
            monitoring  # False: no monitoring rows (benchmarks/monitoring_bench.py measures the cost)
        )
        database.create_tables(self.metadata, schema)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def write_many(self, records: Sequence[AuditRecord]) -> list[str]:
        """Insert ``records`` in one transaction and commit before returning; returns their decision ids."""
        if not records:
            return []
        rows = [_to_row(r) for r in records]
        forecast_rows, score_rows = prediction_rows(records) if self.monitoring else ([], [])
        with self.database.connection() as conn:  # one transaction: audit rows and their monitoring rows
            conn.execute(insert(self.table), rows)
            if forecast_rows:
                conn.execute(insert(self.predictions.forecasts), forecast_rows)
            if score_rows:
                conn.execute(insert(self.predictions.scores), score_rows)
        return [r.decision_id for r in records]

    def write(self, record: AuditRecord) -> str:
        return self.write_many([record])[0]

    def get(self, decision_id: str) -> AuditRecord | None:
        """The stored decision, or None when no decision has that id."""
        with self.database.connection(begin=False) as conn:
            row = (
                conn.execute(select(self.table).where(self.table.c.decision_id == str(decision_id)))
                .mappings()
                .first()
            )
        return None if row is None else _from_row(row)

    def count(self) -> int:
        with self.database.connection(begin=False) as conn:
            return int(conn.execute(select(text("count(*)")).select_from(self.table)).scalar_one())

    def ping(self) -> None:
        """Raise if the database cannot be reached (used by /ready)."""
        with self.database.connection(begin=False) as conn:
            conn.execute(text("SELECT 1"))

    def close(self) -> None:
        self.database.dispose()

    def __enter__(self) -> AuditStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"AuditStore({self.engine.url.render_as_string(hide_password=True)!r}, schema={self.schema!r})"


def _decisions_table(metadata: MetaData) -> Table:
    json_type = JSON().with_variant(JSONB(), "postgresql")
    return Table(
        "decisions",
        metadata,
        Column("decision_id", String(36), primary_key=True),
        Column("created_at", DateTime(timezone=True), nullable=False, index=True),
        Column("kind", String(16), nullable=False),
        Column("model_name", String(200), nullable=False),
        Column("model_version", String(64), nullable=False),
        Column("model_alias", String(64), nullable=True),
        Column("request_id", String(128), nullable=True, index=True),
        Column("input", json_type, nullable=True),
        Column("features", json_type, nullable=True),
        Column("output", json_type, nullable=True),
        CheckConstraint("kind IN ('score', 'forecast')", name="decisions_kind_valid"),
    )


def _to_row(r: AuditRecord) -> dict[str, Any]:
    if not isinstance(r, AuditRecord):
        raise TypeError(f"AuditStore.write_many takes AuditRecord objects, got {type(r).__name__}")
    return {
        "decision_id": r.decision_id,
        "created_at": r.created_at.astimezone(UTC),
        "kind": r.kind,
        "model_name": r.model_name,
        "model_version": str(r.model_version),
        "model_alias": r.model_alias,
        "request_id": r.request_id,
        "input": r.input,
        "features": r.features,
        "output": r.output,
    }


def _from_row(row: Any) -> AuditRecord:
    created = row["created_at"]
    created = created.replace(tzinfo=UTC) if created.tzinfo is None else created.astimezone(UTC)
    return AuditRecord(
        decision_id=row["decision_id"],
        created_at=created,
        kind=row["kind"],
        model_name=row["model_name"],
        model_version=row["model_version"],
        model_alias=row["model_alias"],
        request_id=row["request_id"],
        input=row["input"],
        features=row["features"],
        output=row["output"],
    )
