import time

from fastapi import APIRouter
from fastapi.testclient import TestClient

from serving.app import create_app, create_app_from_env
from serving.models import ModelHolder
from serving.routes import ROUTERS
from serving.store.audit import AuditStore


def test_create_app_loads_nothing_until_startup(make_settings, fakes):
    source = fakes.FakeSource({"forecast": "1", "anomaly": "1"})
    app = create_app(make_settings(), model_holder=ModelHolder(source))
    assert source.fetches == 0 and app.state.audit is None
    with TestClient(app):
        assert source.fetches == 2 and app.state.audit is not None
    assert app.state.audit is None


def test_extra_routers_are_included_behind_auth(make_client, fakes):
    router = APIRouter()

    @router.get("/v1/extra")
    def extra() -> dict:
        return {"extra": True}

    client = make_client(routers=(router,))
    assert client.get("/v1/extra").status_code == 401
    assert client.get("/v1/extra", headers=fakes.AUTH).json() == {"extra": True}


def test_route_modules_are_listed_in_one_place():
    from serving.routes import alerts, decisions, events, forecast, health, models, monitoring, orders

    assert (
        health.router,
        models.router,
        decisions.router,
        orders.router,
        events.router,
        forecast.router,
        alerts.router,
        monitoring.router,
    ) == ROUTERS


def test_periodic_reload_runs_while_the_app_is_up(make_settings, fakes):
    source = fakes.FakeSource({"forecast": "1", "anomaly": "1"})
    holder = ModelHolder(source)
    app = create_app(make_settings(reload_interval_s=0.02), model_holder=holder)
    with TestClient(app) as client:
        source.versions["forecast"] = "2"
        deadline = time.monotonic() + 5
        while holder.snapshot().get("forecast").version != "2" and time.monotonic() < deadline:
            time.sleep(0.01)
        assert client.get("/ready").json()["models"]["forecast"] == "2"
    fetches = source.fetches
    time.sleep(0.1)
    assert source.fetches == fetches  # the reload thread stopped with the app


def test_injected_audit_store_is_not_closed(make_settings, fakes, tmp_path):
    store = AuditStore(f"sqlite:///{tmp_path / 'mine.db'}")
    app = create_app(make_settings(), model_holder=ModelHolder(fakes.FakeSource()), audit_store=store)
    with TestClient(app):
        assert app.state.audit is store
    store.ping()  # still usable
    store.close()


def test_create_app_from_env_reads_orderpulse_variables(monkeypatch, tmp_path):
    monkeypatch.setenv("ORDERPULSE_API_KEYS", "env-key")
    monkeypatch.setenv("ORDERPULSE_MAX_BATCH_ORDERS", "12")
    monkeypatch.setenv("ORDERPULSE_MLRUNS_DIR", str(tmp_path))
    app = create_app_from_env()
    assert app.state.settings.max_batch_orders == 12


def test_openapi_documents_both_key_schemes(make_client):
    schemes = make_client().app.openapi()["components"]["securitySchemes"]
    assert schemes["APIKeyHeader"] == {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": "an OrderPulse API key",
    }
    assert schemes["HTTPBearer"]["scheme"] == "bearer"


def test_startup_freezes_the_loaded_objects_out_of_gc_when_asked(make_settings, fakes, monkeypatch):
    import gc

    calls = []
    monkeypatch.setattr(gc, "collect", lambda *a: calls.append("collect"))
    monkeypatch.setattr(gc, "freeze", lambda: calls.append("freeze"))
    holder = ModelHolder(fakes.FakeSource({"forecast": "1", "anomaly": "1"}))
    with TestClient(create_app(make_settings(gc_freeze_at_startup=True), model_holder=holder)):
        assert calls == ["collect", "freeze"]
    with TestClient(create_app(make_settings(), model_holder=ModelHolder(fakes.FakeSource()))):
        assert calls == ["collect", "freeze"]  # the test default turns it off
