import sqlite3
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime

import numpy as np
import pytest
from sqlalchemy.exc import IntegrityError

from serving.store.audit import AuditRecord, AuditStore


def _record(**overrides):
    values = dict(
        kind="score",
        model_name="orderpulse-anomaly",
        model_version="3",
        model_alias="champion",
        request_id="req-1",
        input={"order_id": "o1", "quantity": 2},
        features={"customer_cancel_rate": 0.5},
        output={"score": 0.91, "flag": True, "threshold": 0.7},
    )
    values.update(overrides)
    return AuditRecord(**values)


@pytest.fixture
def store(tmp_path):
    with AuditStore(f"sqlite:///{tmp_path / 'audit.db'}") as s:
        yield s


def test_write_many_then_get_returns_the_same_record(store):
    rec = _record(created_at=datetime(2024, 5, 1, 12, 30, tzinfo=UTC))
    assert store.write_many([rec]) == [rec.decision_id]
    assert store.get(rec.decision_id) == rec


def test_get_unknown_id_returns_none(store):
    assert store.get("00000000-0000-0000-0000-000000000000") is None


def test_write_many_is_committed_when_it_returns(tmp_path, store):
    rec = _record()
    store.write_many([rec])
    with sqlite3.connect(tmp_path / "audit.db") as other:  # another connection sees it at once
        rows = other.execute("SELECT decision_id, kind FROM decisions").fetchall()
    assert rows == [(rec.decision_id, "score")]


def test_write_many_is_one_transaction(store):
    first = _record()
    duplicate = _record(decision_id=first.decision_id)
    with pytest.raises(IntegrityError):
        store.write_many([_record(), first, duplicate])
    assert store.count() == 0


def test_sqlite_uses_wal_full_sync_and_busy_timeout(store):
    with store.engine.connect() as conn:
        raw = conn.connection.dbapi_connection
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert raw.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        assert raw.execute("PRAGMA busy_timeout").fetchone()[0] == 10_000


def test_sqlite_synchronous_normal_is_opt_in(tmp_path):
    with (
        AuditStore(f"sqlite:///{tmp_path / 'n.db'}", sqlite_synchronous="NORMAL") as s,
        s.engine.connect() as conn,
    ):
        assert conn.connection.dbapi_connection.execute("PRAGMA synchronous").fetchone()[0] == 1


def test_numpy_values_and_nan_are_stored_as_plain_json(store):
    rec = _record(features={"lag": np.float64("nan"), "n": np.int64(4), "v": np.array([1.5, np.inf])})
    store.write(rec)
    assert store.get(rec.decision_id).features == {"lag": None, "n": 4, "v": [1.5, None]}


def test_concurrent_writes_from_threads_all_land(store):
    errors: list[BaseException] = []

    def writer(i: int) -> None:
        try:
            for j in range(10):
                store.write_many([_record(request_id=f"t{i}-{j}"), _record(request_id=f"t{i}-{j}b")])
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert store.count() == 6 * 10 * 2


def test_two_stores_on_one_file_share_the_trail(tmp_path):
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    with AuditStore(url) as a, AuditStore(url) as b:
        rec = _record()
        a.write(rec)
        assert b.get(rec.decision_id) == rec


def test_in_memory_store_works_across_threads():
    with AuditStore("sqlite://") as s:
        recs = [_record() for _ in range(4)]
        threads = [threading.Thread(target=s.write, args=(r,)) for r in recs]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert s.count() == 4


def test_missing_parent_folder_is_created(tmp_path):
    with AuditStore(f"sqlite:///{tmp_path / 'new' / 'dir' / 'audit.db'}") as s:
        s.write(_record())
    assert (tmp_path / "new" / "dir" / "audit.db").is_file()


def test_unknown_kind_is_refused():
    with pytest.raises(ValueError, match=r"kind must be one of \('score', 'forecast'\), got 'predict'"):
        _record(kind="predict")


def test_naive_created_at_is_refused():
    with pytest.raises(ValueError, match="timezone-aware"):
        _record(created_at=datetime(2024, 1, 1))


def test_postgres_url_gets_the_psycopg_driver():
    from serving.store.db import with_driver

    assert with_driver("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert with_driver("postgres://u@h/db") == "postgresql+psycopg://u@h/db"
    assert with_driver("sqlite:///x.db") == "sqlite:///x.db"


def test_stores_opened_at_once_on_a_new_file_all_succeed(tmp_path):
    url = f"sqlite:///{tmp_path / 'race.db'}"
    stores, errors = [], []

    def open_store():
        try:
            stores.append(AuditStore(url))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=open_store) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    stores[0].write(_record())
    assert all(s.count() == 1 for s in stores)
    for s in stores:
        s.close()


_HOLD_LOCK = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o644)
fcntl.flock(fd, fcntl.LOCK_EX)
open(sys.argv[2], "w").close()  # tell the test the lock is held
time.sleep(float(sys.argv[3]))
open(sys.argv[4], "w").close()  # about to release
"""


@pytest.mark.skipif(sys.platform == "win32", reason="flock is POSIX")
def test_sqlite_writes_wait_for_another_process_holding_the_writer_lock(tmp_path):
    """Writers of one SQLite file queue on ``<file>.lock`` (flock), not in SQLite's sleeping busy handler."""
    db = tmp_path / "audit.db"
    with AuditStore(f"sqlite:///{db}") as store:
        store.write(_record())  # creates the table and the lock file
        lock_file = tmp_path / "audit.db.lock"
        assert lock_file.exists()
        held, releasing = tmp_path / "held", tmp_path / "releasing"
        holder = subprocess.Popen(
            [sys.executable, "-c", _HOLD_LOCK, str(lock_file), str(held), "0.5", str(releasing)]
        )
        try:
            for _ in range(500):
                if held.exists():
                    break
                time.sleep(0.01)
            assert held.exists()
            store.write(_record(request_id="after"))
            assert releasing.exists()  # the write went through only once the other process let go
        finally:
            holder.wait(timeout=30)
        assert store.count() == 2
