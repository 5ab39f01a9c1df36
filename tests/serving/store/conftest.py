"""A database for the store tests: SQLite in a tmp folder, and PostgreSQL (127.0.0.1:5432, database ``test``,
or ``ORDERPULSE_TEST_POSTGRES_URL``) in a schema of its own, dropped afterwards; skips when no server answers."""

import os
import uuid

import pytest

from serving.store.db import Database

PG_URLS = (
    [os.environ["ORDERPULSE_TEST_POSTGRES_URL"]]
    if os.environ.get("ORDERPULSE_TEST_POSTGRES_URL")
    else ["postgresql://postgres@127.0.0.1:5432/test", "postgresql://root@127.0.0.1:5432/test"]
)


def _pg_url() -> str | None:
    import psycopg

    for url in PG_URLS:
        try:
            with psycopg.connect(url, connect_timeout=3):
                return url
        except Exception:
            continue
    return None


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database(request, tmp_path):
    """``(Database, schema)``: schema is None on SQLite."""
    if request.param == "sqlite":
        db = Database(f"sqlite:///{tmp_path / 'store.db'}")
        yield db, None
        db.dispose()
        return
    url = _pg_url()
    if url is None:
        pytest.skip("no PostgreSQL server reachable")
    import psycopg

    schema = f"orderpulse_test_{uuid.uuid4().hex[:12]}"
    db = Database(url)
    try:
        yield db, schema
    finally:
        db.dispose()
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
