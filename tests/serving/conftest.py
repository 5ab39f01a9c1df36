"""Fixtures for the service tests: settings on a tmp folder, tiny fake models and an in-memory model source."""

from __future__ import annotations

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


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., Settings]:
    def make(**overrides: object) -> Settings:
        values: dict[str, object] = {
            "profile": "dev",
            "api_keys": API_KEY,
            "mlruns_dir": tmp_path / "mlruns",
            "tracking_uri": f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}",
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
