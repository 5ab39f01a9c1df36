"""Fixtures for the service tests.

* settings on a tmp folder, tiny fake models and an in-memory model source (infrastructure tests);
* real models for the model routes (``trained``, ``served_models``, ``service`` / ``make_service``): a forecast
  and an anomaly model trained once per run (the xdist workers share them) from data/sample through the real
  training jobs, in a private MLflow store; every test app gets its own audit/event database;
* ``make_order``: a valid order in the request shape, for a customer of the sample.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient

from serving.app import create_app
from serving.models import LoadedModel, ModelHolder, ModelSource, ModelUnavailableError, RefusedVersionError
from serving.settings import Settings

API_KEY = "test-key"
AUTH = {"X-API-Key": API_KEY}


class ConstModel:
    """A fake model: predicts its own ``value`` for every row."""

    def __init__(self, value: float) -> None:
        self.value = value

    def predict(self, rows: list) -> list[float]:
        return [self.value] * len(rows)


class FakeSource(ModelSource):
    """Serves ``versions[kind]`` (a version string -> ConstModel(float(version))); mutate it to 'publish'."""

    def __init__(self, versions: dict[str, str] | None = None) -> None:
        self.versions = dict(versions or {})
        self.fetches = 0
        self.loads = 0
        self.fail_with: Exception | None = None
        self.lock = threading.Lock()

    def fetch(self, kind: str, current: LoadedModel | None, refused=()) -> LoadedModel:
        with self.lock:
            self.fetches += 1
        if self.fail_with is not None:
            raise self.fail_with
        if kind not in self.versions:
            raise ModelUnavailableError(f"no {kind} model published")
        version = self.versions[kind]
        if current is not None and current.version == version:
            return current
        if version in refused:
            raise RefusedVersionError(f"test-{kind}", version)
        self.loads += 1
        return LoadedModel(
            kind=kind,
            name=f"test-{kind}",
            version=version,
            model=ConstModel(float(version)),
            alias="champion",
            run_id=f"run-{kind}-{version}",
            data_fingerprint=f"fp-{version}",
            metrics={"mae": 1.5},
            source="registry",
        )


PG_URLS = (
    [os.environ["ORDERPULSE_TEST_POSTGRES_URL"]]
    if os.environ.get("ORDERPULSE_TEST_POSTGRES_URL")
    else ["postgresql://postgres@127.0.0.1:5432/test", "postgresql://root@127.0.0.1:5432/test"]
)


@pytest.fixture(scope="session")
def pg_url() -> str | None:
    """The first PostgreSQL URL that answers (``ORDERPULSE_TEST_POSTGRES_URL`` or the local ``test`` db), else None."""
    import psycopg

    for url in PG_URLS:
        try:
            with psycopg.connect(url, connect_timeout=3):
                return url
        except Exception:
            continue
    return None


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., Settings]:
    def make(**overrides: object) -> Settings:
        values: dict[str, object] = {
            "profile": "dev",
            "api_keys": API_KEY,
            "mlruns_dir": tmp_path / "mlruns",
            "tracking_uri": f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}",
            "gc_freeze_at_startup": False,  # a full collection per test app would cost ~0.3 s each
        }
        values.update(overrides)
        return Settings(**values)

    return make


@pytest.fixture
def make_client(make_settings: Callable[..., Settings]) -> Iterator[Callable[..., TestClient]]:
    """``make_client(source=FakeSource(...), routers=[...], raise_server_exceptions=..., **settings)``."""
    clients: list[TestClient] = []

    def make(
        *,
        source: ModelSource | None = None,
        routers: tuple[APIRouter, ...] = (),
        smoke_checks: dict | None = None,
        raise_server_exceptions: bool = True,
        **overrides: object,
    ) -> TestClient:
        settings = make_settings(**overrides)
        holder = ModelHolder(
            source or FakeSource({"forecast": "1", "anomaly": "1"}), smoke_checks=smoke_checks
        )
        app: FastAPI = create_app(settings, model_holder=holder, extra_routers=routers)
        client = TestClient(app, raise_server_exceptions=raise_server_exceptions)
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def fakes() -> object:
    """The fake classes and the test API key, for test modules (conftest is not importable by name)."""
    from types import SimpleNamespace

    return SimpleNamespace(ConstModel=ConstModel, FakeSource=FakeSource, API_KEY=API_KEY, AUTH=AUTH)


# ---------------------------------------------------------------------------------------------------------
# Real models for the model routes: trained ONCE per run from data/sample into a private MLflow store.
SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample"
SERVED_NAME = "svc"
FORECAST_HORIZON = 14
FORECAST_PARAMS = {"n_estimators": 40, "num_leaves": 15}
N_STORES = 6


class StaticSource(ModelSource):
    """Serves already loaded models (the session's real ones) without touching the registry."""

    def __init__(self, models: dict[str, LoadedModel]) -> None:
        self.models = dict(models)

    def fetch(self, kind: str, current: LoadedModel | None, refused=()) -> LoadedModel:
        if kind not in self.models:
            raise ModelUnavailableError(f"no {kind} model in this test")
        return self.models[kind]


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Forecast (6 Rossmann stores, horizon 14, 40 small trees, one backtest window) and anomaly models
    trained on data/sample.

    Trains through the real jobs into a session store; the environment is set only while training and
    restored afterwards (the per-test ``isolated_mlflow`` store stays untouched). Once per run: under
    pytest-xdist the first worker that needs the store trains it in the run's folder (above the workers' own)
    under a file lock, and the other workers wait for it and read it; the tests only read this store.
    """
    import json

    from filelock import FileLock

    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    root = shared / "serving_models"
    with FileLock(str(shared / "serving_models.lock")):
        done = root / "trained.json"
        if not done.exists():
            shutil.rmtree(root, ignore_errors=True)  # what a worker that failed to train left
            _train_served_models(root, done)
        results = json.loads(done.read_text())
    data = root / "rossmann"
    return {
        "root": root,
        "tracking_uri": f"sqlite:///{root / 'mlflow.db'}",
        "name": SERVED_NAME,
        "stores": results["stores"],
        "data": data,
        "orders_csv": SAMPLE / "online_retail" / "orders.csv",
        "forecast": results["forecast"],
        "anomaly": results["anomaly"],
    }


def _train_served_models(root: Path, done: Path) -> None:
    """Train ``trained``'s models into ``root``; write their job results to ``done`` (JSON) last."""
    import json

    import pandas as pd

    from orderpulse.jobs.anomaly import train_anomaly
    from orderpulse.jobs.forecast import train_forecast

    data = root / "rossmann"
    data.mkdir(parents=True)
    series = pd.read_csv(SAMPLE / "rossmann" / "series.csv", dtype={"series_id": str})
    stores = sorted(series["series_id"].unique(), key=int)[:N_STORES]
    for name in ("series", "covariates", "static"):
        table = pd.read_csv(SAMPLE / "rossmann" / f"{name}.csv", dtype={"series_id": str})
        table.loc[table["series_id"].isin(stores)].to_csv(data / f"{name}.csv", index=False)
    (data / "weather.csv").write_bytes((SAMPLE / "rossmann" / "weather.csv").read_bytes())
    uri = f"sqlite:///{root / 'mlflow.db'}"
    saved = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_URI", "ORDERPULSE_MLRUNS_DIR")}
    os.environ.update({"MLFLOW_TRACKING_URI": uri, "ORDERPULSE_MLRUNS_DIR": str(root)})
    try:
        forecast = train_forecast(
            data / "series.csv",
            data / "covariates.csv",
            data / "weather.csv",
            data / "static.csv",
            horizon=FORECAST_HORIZON,
            params=FORECAST_PARAMS,
            n_windows=1,
            name=SERVED_NAME,
            hierarchy_levels="region,total",
        )
        anomaly = train_anomaly(
            SAMPLE / "online_retail" / "orders.csv", SAMPLE / "online_retail" / "labels.csv", name=SERVED_NAME
        )
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    results = {"stores": stores, "forecast": forecast, "anomaly": anomaly}
    done.write_text(json.dumps(results, default=str))


@pytest.fixture(scope="session")
def served_models(trained: dict, tmp_path_factory: pytest.TempPathFactory) -> dict[str, LoadedModel]:
    """The registered champions loaded the way the service loads them (registry, loader, smoke checks)."""
    from serving.app import default_model_holder

    settings = Settings(
        profile="dev",
        api_keys=API_KEY,
        mlruns_dir=tmp_path_factory.mktemp("served_cache"),
        tracking_uri=trained["tracking_uri"],
        model_name=trained["name"],
    )
    holder = default_model_holder(settings)
    report = holder.reload()
    assert report.ok, report.to_dict()
    return dict(holder.snapshot().models)


@pytest.fixture
def make_service(
    served_models: dict[str, LoadedModel], make_settings: Callable[..., Settings]
) -> Iterator[Callable[..., TestClient]]:
    """``make_service(**settings)``: an app serving the session's real models, on a fresh audit/event db."""
    clients: list[TestClient] = []

    def make(*, kinds: tuple[str, ...] = ("forecast", "anomaly"), **overrides: object) -> TestClient:
        overrides.setdefault("events_refresh_interval_s", 0)
        settings = make_settings(**overrides)
        models = {k: served_models[k] for k in kinds}
        holder = ModelHolder(StaticSource(models), kinds=("forecast", "anomaly"))
        client = TestClient(create_app(settings, model_holder=holder))
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def service(make_service: Callable[..., TestClient]) -> TestClient:
    """An app serving the real forecast and anomaly models (fresh audit and event tables)."""
    return make_service()


@pytest.fixture
def make_order() -> Callable[..., dict]:
    """``make_order(order_id, customer_id=..., created_at=..., lines=[(sku, qty, price)], **fields)``."""

    def make(
        order_id: str,
        customer_id: str | None = "13094",
        created_at: str = "2011-07-01T10:00:00",
        lines: list[tuple[str, float, float]] | None = None,
        **fields: object,
    ) -> dict:
        lines = lines or [("84946", 72, 1.06)]
        return {
            "order_id": order_id,
            "customer_id": customer_id,
            "created_at": created_at,
            "lines": [{"sku": sku, "quantity": q, "unit_price": p} for sku, q, p in lines],
            "country": "United Kingdom",
            **fields,
        }

    return make


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def stores(request, tmp_path, pg_url):
    """``(database, schema, audit, events)`` on SQLite, and on PostgreSQL in a schema of its own (dropped after)."""
    import uuid

    from sqlalchemy import text

    from serving.store.audit import AuditStore
    from serving.store.db import Database
    from serving.store.events import EventStore

    if request.param == "sqlite":
        db, schema = Database(f"sqlite:///{tmp_path / 'monitoring.db'}"), None
    else:
        if pg_url is None:
            pytest.skip("no PostgreSQL server reachable")
        db, schema = Database(pg_url), f"orderpulse_monitoring_{uuid.uuid4().hex[:12]}"
    try:
        yield db, schema, AuditStore(database=db, schema=schema), EventStore(db, schema=schema)
    finally:
        if schema is not None:
            with db.connection() as conn:
                conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        db.dispose()
