"""The audit store against a real PostgreSQL server (127.0.0.1:5432, database ``test``); skips when none answers.

``ORDERPULSE_TEST_POSTGRES_URL`` points it elsewhere. Each run works in its own schema, dropped afterwards.
"""

import os
import threading
import uuid
from datetime import UTC, datetime

import pytest

from serving.store.audit import AuditRecord, AuditStore

pytestmark = pytest.mark.postgres

CANDIDATE_URLS = (
    [os.environ["ORDERPULSE_TEST_POSTGRES_URL"]]
    if os.environ.get("ORDERPULSE_TEST_POSTGRES_URL")
    else ["postgresql://postgres@127.0.0.1:5432/test", "postgresql://root@127.0.0.1:5432/test"]
)


def _reachable_url() -> tuple[str | None, str]:
    try:
        import psycopg
    except ImportError as exc:  # pragma: no cover - psycopg is in the lock
        return None, f"psycopg is not installed ({exc})"
    reasons = []
    for url in CANDIDATE_URLS:
        try:
            with psycopg.connect(url, connect_timeout=3):
                return url, ""
        except Exception as exc:
            reasons.append(f"{url}: {' '.join(str(exc).split())[:120]}")
    return None, "no PostgreSQL server reachable (" + "; ".join(reasons) + ")"


@pytest.fixture(scope="module")
def pg_url():
    url, reason = _reachable_url()
    if url is None:
        pytest.skip(reason)
    return url


@pytest.fixture
def store(pg_url):
    import psycopg

    schema = f"orderpulse_test_{uuid.uuid4().hex[:12]}"
    s = AuditStore(pg_url, schema=schema)
    try:
        yield s
    finally:
        s.close()
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def _record(**overrides):
    values = dict(
        kind="forecast",
        model_name="orderpulse-forecast",
        model_version="7",
        model_alias="champion",
        request_id="r-1",
        input={"series_id": ["s1"], "horizon": 3},
        features=None,
        output={"yhat_sum": 12.5, "days": ["2024-01-01", "2024-01-02", "2024-01-03"]},
    )
    values.update(overrides)
    return AuditRecord(**values)


def test_postgres_store_uses_psycopg_and_its_own_schema(store):
    assert store.engine.dialect.name == "postgresql"
    assert store.engine.dialect.driver == "psycopg"
    assert store.table.schema == store.schema


def test_postgres_write_many_then_get_round_trips(store):
    rec = _record(created_at=datetime(2024, 3, 2, 8, 0, tzinfo=UTC))
    store.write_many([rec, _record()])
    assert store.get(rec.decision_id) == rec
    assert store.count() == 2


def test_postgres_commit_is_visible_to_a_new_connection(store, pg_url):
    import psycopg

    rec = _record()
    store.write(rec)
    with psycopg.connect(pg_url) as conn:
        row = conn.execute(
            f"SELECT kind, output->>'yhat_sum' FROM \"{store.schema}\".decisions WHERE decision_id = %s",
            (rec.decision_id,),
        ).fetchone()
    assert row == ("forecast", "12.5")


def test_postgres_batch_with_a_duplicate_writes_nothing(store):
    from sqlalchemy.exc import IntegrityError

    first = _record()
    with pytest.raises(IntegrityError):
        store.write_many([first, _record(decision_id=first.decision_id)])
    assert store.count() == 0


def test_postgres_concurrent_writers(store):
    errors = []

    def writer(i):
        try:
            for j in range(5):
                store.write(_record(request_id=f"{i}-{j}"))
        except BaseException as exc:  # pragma: no cover
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and store.count() == 20
