"""A database for the store tests: SQLite in a tmp folder, and PostgreSQL (127.0.0.1:5432, database ``test``,
or ``ORDERPULSE_TEST_POSTGRES_URL``) in a schema of its own, dropped afterwards; skips when no server answers."""

import uuid

import pytest

from serving.store.db import Database


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database(request, tmp_path, pg_url):
    """``(Database, schema)``: schema is None on SQLite."""
    if request.param == "sqlite":
        db = Database(f"sqlite:///{tmp_path / 'store.db'}")
        yield db, None
        db.dispose()
        return
    url = pg_url  # tests/serving/conftest.py: the first server that answers, probed once per session
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
