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
has only one connection, is serialised with a lock).

Tables are created when missing (``metadata.create_all``); there is no migration tool yet, so a later
change of columns needs one (Alembic is already installed as an MLflow dependency).

JSON columns hold plain JSON: numpy / pandas values are converted, and NaN / missing values are stored as
``null`` (see ``serving._json``).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Column,
    DateTime,
    Engine,
    MetaData,
    String,
    Table,
    create_engine,
    event,
    insert,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DatabaseError
from sqlalchemy.pool import StaticPool

from serving._json import jsonable

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
    """Append-only store of ``AuditRecord``s; create one per app (the lifespan handler does)."""

    def __init__(
        self,
        url: str,
        *,
        schema: str | None = None,
        sqlite_synchronous: str = "FULL",
        busy_timeout_ms: int = 10_000,
    ) -> None:
        if sqlite_synchronous not in ("FULL", "NORMAL"):
            raise ValueError(f"sqlite_synchronous must be 'FULL' or 'NORMAL', got {sqlite_synchronous!r}")
        self.url = _with_driver(url)
        self.schema = schema
        self._lock: threading.Lock | None = None
        self.engine = self._make_engine(sqlite_synchronous, busy_timeout_ms)
        self.metadata = MetaData(schema=schema)
        self.table = _decisions_table(self.metadata)
        self._create_tables()

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def write_many(self, records: Sequence[AuditRecord]) -> list[str]:
        """Insert ``records`` in one transaction and commit before returning; returns their decision ids."""
        if not records:
            return []
        rows = [_to_row(r) for r in records]
        with self._connection() as conn:
            conn.execute(insert(self.table), rows)
        return [r.decision_id for r in records]

    def write(self, record: AuditRecord) -> str:
        return self.write_many([record])[0]

    def get(self, decision_id: str) -> AuditRecord | None:
        """The stored decision, or None when no decision has that id."""
        with self._connection(begin=False) as conn:
            row = (
                conn.execute(select(self.table).where(self.table.c.decision_id == str(decision_id)))
                .mappings()
                .first()
            )
        return None if row is None else _from_row(row)

    def count(self) -> int:
        with self._connection(begin=False) as conn:
            return int(conn.execute(select(text("count(*)")).select_from(self.table)).scalar_one())

    def ping(self) -> None:
        """Raise if the database cannot be reached (used by /ready)."""
        with self._connection(begin=False) as conn:
            conn.execute(text("SELECT 1"))

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> AuditStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"AuditStore({self.engine.url.render_as_string(hide_password=True)!r}, schema={self.schema!r})"

    # ------------------------------------------------------------------ internals
    def _create_tables(self) -> None:
        """Create the schema/table if missing; tolerate another process (a uvicorn worker) racing us to it."""
        for attempt in range(3):
            try:
                with self._connection() as conn:
                    if self.schema and self.engine.dialect.name == "postgresql":
                        conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"'))
                self.metadata.create_all(self.engine)
                return
            except DatabaseError:
                if attempt == 2:
                    raise
                time.sleep(0.05 * (attempt + 1))  # the other creator has committed by now: create_all skips

    def _make_engine(self, synchronous: str, busy_timeout_ms: int) -> Engine:
        url = make_url(self.url)
        serialise = _to_json
        if url.get_backend_name() != "sqlite":
            return create_engine(url, json_serializer=serialise, pool_pre_ping=True)
        database = url.database or ""
        in_memory = database in ("", ":memory:") or "mode=memory" in database
        if in_memory:
            self._lock = threading.Lock()
            engine = create_engine(
                url,
                json_serializer=serialise,
                poolclass=StaticPool,
                connect_args={"check_same_thread": False},
            )
        else:
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
            engine = create_engine(
                url,
                json_serializer=serialise,
                connect_args={"check_same_thread": False, "timeout": busy_timeout_ms / 1000},
            )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cursor = dbapi_conn.cursor()
            if not in_memory:
                cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA synchronous={synchronous}")
            cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
            cursor.close()

        return engine

    @contextmanager
    def _connection(self, *, begin: bool = True) -> Iterator[Any]:
        lock = self._lock
        if lock is not None:
            lock.acquire()
        try:
            if begin:
                with self.engine.begin() as conn:  # commits on normal exit, rolls back on error
                    yield conn
            else:
                with self.engine.connect() as conn:
                    yield conn
        finally:
            if lock is not None:
                lock.release()


def _to_json(obj: Any) -> str:
    """JSON text of ``obj``; the C encoder first, the converting walk only for numpy values / NaN."""
    try:
        return json.dumps(obj, allow_nan=False)
    except (TypeError, ValueError):
        return json.dumps(jsonable(obj), allow_nan=False)


def _with_driver(url: str) -> str:
    """``postgresql://`` / ``postgres://`` -> ``postgresql+psycopg://`` (psycopg 3 is the installed driver)."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


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
