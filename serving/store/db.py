"""One SQL database shared by the audit trail and the event store: engine, pragmas and connections.

``Database(url)`` works on SQLite and PostgreSQL (a bare ``postgresql://`` URL is given the psycopg driver).
File SQLite runs in WAL mode with ``synchronous`` FULL by default (a commit survives a power loss) and a
``busy_timeout`` so concurrent writers (threads, uvicorn workers) wait for the lock instead of failing; an
in-memory SQLite database has a single connection, which is serialised with a lock.

``serving.store.audit.AuditStore`` and ``serving.store.events.EventStore`` both take a ``Database``, so the decisions and
the events live in the same database, reached through one connection pool.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Engine, MetaData, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DatabaseError
from sqlalchemy.pool import StaticPool

from serving._json import jsonable

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["Database", "to_json", "with_driver"]


class Database:
    """A SQLAlchemy engine configured for OrderPulse, with a ``connection()`` context manager."""

    def __init__(
        self,
        url: str,
        *,
        sqlite_synchronous: str = "FULL",
        busy_timeout_ms: int = 10_000,
        json_serializer: Callable[[Any], str] | None = None,
    ) -> None:
        if sqlite_synchronous not in ("FULL", "NORMAL"):
            raise ValueError(f"sqlite_synchronous must be 'FULL' or 'NORMAL', got {sqlite_synchronous!r}")
        self.url = with_driver(url)
        self._lock: threading.Lock | None = None  # in-memory SQLite: every use of its single connection
        self._write_lock: _WriterLock | None = None  # file SQLite: write transactions
        self.engine = self._make_engine(sqlite_synchronous, busy_timeout_ms, json_serializer or to_json)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def connection(self, *, begin: bool = True) -> Iterator[Any]:
        """A pooled connection; with ``begin`` one transaction, committed on normal exit, rolled back on error."""
        lock = self._lock or (self._write_lock if begin else None)
        if lock is not None:
            lock.acquire()
        try:
            if begin:
                with self.engine.begin() as conn:
                    yield conn
            else:
                with self.engine.connect() as conn:
                    yield conn
        finally:
            if lock is not None:
                lock.release()

    def create_tables(self, metadata: MetaData, schema: str | None = None) -> None:
        """Create the schema/tables if missing; tolerate another process (a uvicorn worker) racing us to it."""
        for attempt in range(3):
            try:
                with self.connection() as conn:
                    if schema and self.dialect == "postgresql":
                        conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
                metadata.create_all(self.engine)
                return
            except DatabaseError:
                if attempt == 2:
                    raise
                time.sleep(0.05 * (attempt + 1))  # the other creator has committed by now: create_all skips

    def dispose(self) -> None:
        self.engine.dispose()
        if self._write_lock is not None:
            self._write_lock.close()

    def __repr__(self) -> str:
        return f"Database({self.engine.url.render_as_string(hide_password=True)!r})"

    def _make_engine(self, synchronous: str, busy_timeout_ms: int, serialise: Callable[[Any], str]) -> Engine:
        url = make_url(self.url)
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
            self._write_lock = _WriterLock(
                Path(database).expanduser().with_name(Path(database).name + ".lock")
            )
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


def to_json(obj: Any) -> str:
    """JSON text of ``obj`` (orjson: ~10x the standard library's speed; an audit row has three JSON columns).

    NaN and infinities become ``null`` (what ``serving._json.jsonable`` makes of them too); numpy values are
    encoded natively; anything else orjson cannot encode (pandas' NA, non-string keys...) takes the converting
    walk first.
    """
    try:
        return orjson.dumps(obj, option=_ORJSON_OPTIONS).decode()
    except TypeError:
        return orjson.dumps(jsonable(obj), option=_ORJSON_OPTIONS).decode()


_ORJSON_OPTIONS = orjson.OPT_SERIALIZE_NUMPY  # numpy scalars and arrays (np.float64 is a float subclass)


class _WriterLock:
    """Serialises SQLite write transactions across threads and processes (uvicorn workers sharing the file).

    A thread lock, then an exclusive ``flock`` on ``<database>.lock``. Without it, concurrent writers meet in
    SQLite's busy handler, which polls with sleeps growing to 100 ms: under load a writer waits far longer than
    the ~1 ms a commit holds the lock (p99 in the hundreds of ms with 2 workers). ``flock`` wakes the next
    writer as soon as the lock is released (the ``filelock`` package would not: it polls a non-blocking
    ``flock`` with sleeps, the same pattern). Where ``fcntl`` does not exist (Windows) only threads are
    serialised and SQLite's busy timeout handles the rest.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._thread = threading.Lock()
        self._fd: int | None = None

    def acquire(self) -> None:
        self._thread.acquire()
        if fcntl is None:
            return
        try:
            if self._fd is None:
                self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            fcntl.flock(self._fd, fcntl.LOCK_EX)
        except BaseException:
            self._thread.release()
            raise

    def release(self) -> None:
        try:
            if fcntl is not None and self._fd is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._thread.release()

    def close(self) -> None:
        with self._thread:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None


def with_driver(url: str) -> str:
    """``postgresql://`` / ``postgres://`` -> ``postgresql+psycopg://`` (psycopg 3 is the installed driver)."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url
