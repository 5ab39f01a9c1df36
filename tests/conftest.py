"""Shared test fixtures and options.

* ``--run-slow`` enables tests marked ``slow`` (they read ../shared/data and take longer).
* Every test gets its own MLflow store under tmp_path (``isolated_mlflow``): tests never touch ./mlruns.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import sys
import threading

# Two pytest-xdist workers share 2 cores: one LightGBM/OpenMP thread each, or they slow each other down ~5x.
os.environ.setdefault("ORDERPULSE_N_JOBS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

# anyio 4.16 imports its submodules lazily on first attribute access (e.g. ``anyio.open_file`` when starlette
# serves a static file, from a worker thread). anyio is a pytest plugin, so pytest rewrites (re-parses) its
# modules on import, and CPython 3.11's parser is not thread-safe ("SystemError: AST constructor recursion depth
# mismatch", seen once in tests/serving/test_docs.py under load). Resolving every lazy name here, in the main thread
# at collection, keeps such imports out of request threads.
for _name in dir(anyio):
    getattr(anyio, _name)

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data" / "sample"
SHARED_DATA = Path(os.environ.get("ORDERPULSE_SHARED_DATA", REPO.parent / "shared" / "data"))


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--run-slow", action="store_true", default=False, help="run tests marked slow")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--run-slow"):
        return
    skip = pytest.mark.skip(reason="slow test: run with --run-slow (make test-all)")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def shared_data() -> Path:
    """The full real datasets (dev machines and CI only); skips the test when absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"{SHARED_DATA} is absent (only dev machines and CI have the full datasets)")
    return SHARED_DATA


@pytest.fixture
def sample_dir() -> Path:
    return SAMPLE


MLFLOW_SETUP_LOGS = (
    ("mlflow.store.db.utils", "Creating initial MLflow database tables..."),
    ("mlflow.store.db.utils", "Updating database tables"),
)


@pytest.fixture(scope="session", autouse=True)
def migrated_mlflow_schema(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """New SQLite MLflow stores get their tables by copying one store migrated once per session (per worker).

    MLflow creates the tables of every new store by running its ~50 alembic migrations (~2 s); about 25 tests
    and fixtures of a run make a new store (test_registry and test_retrain copy a store of theirs already).
    The copy (SQLite's backup API) is the same schema at the same alembic revision, made by this MLflow
    version; MLflow then adds the default experiment with the new store's own artifact root, as it does after
    migrating. The copy logs MLflow's two messages of a migration (same logger and level; alembic's own are
    at WARNING by then), so the tests of how the CLI quiets them still see them. Other backends migrate as
    usual. Only when the collected test modules imported MLflow (a run of feature tests alone does not pay
    for the import). tests/test_conftest.py checks the copy.
    """
    if "mlflow" not in sys.modules:
        yield
        return
    from mlflow.store.db import utils as db_utils
    from mlflow.store.model_registry import sqlalchemy_store as registry_store

    migrate = db_utils._initialize_tables
    template = tmp_path_factory.getbasetemp() / "mlflow-schema.db"
    lock = threading.Lock()

    def initialize_tables(engine) -> None:
        if engine.url.get_backend_name() != "sqlite" or engine.url.database in (None, "", ":memory:"):
            migrate(engine)
            return
        with lock:  # stores made from threads (concurrent retrains) wait for the one migration
            if not template.exists():
                import sqlalchemy

                partial = template.with_suffix(".partial")
                first = sqlalchemy.create_engine(f"sqlite:///{partial}")
                try:
                    migrate(first)
                finally:
                    first.dispose()
                partial.rename(template)
        for logger, message in MLFLOW_SETUP_LOGS:
            logging.getLogger(logger).info(message)
        source = sqlite3.connect(template)
        try:
            with engine.connect() as conn:
                source.backup(conn.connection.dbapi_connection)
        finally:
            source.close()

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(db_utils, "_initialize_tables", initialize_tables)
        mp.setattr(registry_store, "_initialize_tables", initialize_tables)
        yield


@pytest.fixture(autouse=True)
def isolated_mlflow(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> str:
    """A private sqlite MLflow store per test, so tests never write to the repo's mlruns/."""
    root = tmp_path_factory.mktemp("mlruns")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("ORDERPULSE_MLRUNS_DIR", str(root))
    return uri


@pytest.fixture
def wait_for_http():
    """``wait(proc, url, log, timeout_s=90)``: poll ``url`` until it answers 200; fail with the tail of ``log``
    when ``proc`` exits or ``timeout_s`` runs out (a start-up deadline for servers the tests start, not a speed
    assertion)."""
    import httpx

    def wait(proc, url: str, log: Path, timeout_s: float = 90.0) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            if proc.poll() is not None:
                pytest.fail(f"the server exited with {proc.returncode}:\n{Path(log).read_text()[-3000:]}")
            try:
                if httpx.get(url, timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"no answer on {url}:\n{Path(log).read_text()[-3000:]}")
            time.sleep(0.2)

    return wait
