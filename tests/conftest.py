"""Shared test fixtures and options.

* ``--run-slow`` enables tests marked ``slow`` (they read ../shared/data and take longer).
* Every test gets its own MLflow store under tmp_path (``isolated_mlflow``): tests never touch ./mlruns.
"""

from __future__ import annotations

import os

# Two pytest-xdist workers share 2 cores: one LightGBM/OpenMP thread each, or they slow each other down ~5x.
os.environ.setdefault("ORDERPULSE_N_JOBS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
import time
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
