import threading
import time
import warnings
from types import SimpleNamespace

import pytest
from fastapi import APIRouter

from serving.deps import ModelsDep
from serving.model_source import RegistryModelSource
from serving.models import LoadedModel, ModelHolder


def _model(kind, version, value=None):
    from types import SimpleNamespace

    return LoadedModel(
        kind=kind,
        name=f"test-{kind}",
        version=version,
        model=SimpleNamespace(value=value if value is not None else float(version)),
    )


# ------------------------------------------------------------------------------------------ swap logic
def test_reload_loads_every_kind_in_one_generation(fakes):
    holder = ModelHolder(fakes.FakeSource({"forecast": "1", "anomaly": "2"}))
    report = holder.reload()
    snap = holder.snapshot()
    assert report.ok and snap.generation == 1
    assert {k: m.version for k, m in snap.models.items()} == {"forecast": "1", "anomaly": "2"}
    assert snap.get("anomaly").model.predict([0, 0]) == [2.0, 2.0]


def test_same_version_is_unchanged_and_keeps_the_snapshot(fakes):
    holder = ModelHolder(fakes.FakeSource({"forecast": "1", "anomaly": "1"}))
    holder.reload()
    before = holder.snapshot()
    report = holder.reload()
    assert {o.status for o in report.outcomes.values()} == {"unchanged"}
    assert holder.snapshot() is before


def test_a_held_snapshot_is_unaffected_by_a_reload(fakes):
    source = fakes.FakeSource({"forecast": "1", "anomaly": "1"})
    holder = ModelHolder(source)
    holder.reload()
    held = holder.snapshot()
    source.versions = {"forecast": "2", "anomaly": "2"}
    holder.reload()
    assert (held.get("forecast").version, held.get("anomaly").version) == ("1", "1")
    assert (holder.snapshot().get("forecast").version, holder.snapshot().generation) == ("2", 2)


def test_reload_swaps_atomically_under_concurrent_requests(make_client, fakes):
    router = APIRouter()

    @router.get("/v1/test/pair")
    def pair(models: ModelsDep) -> dict:
        forecast = models.get("forecast")
        time.sleep(0.002)  # a reload may happen here: this request must still see one generation
        anomaly = models.get("anomaly")
        return {"forecast": forecast.model.predict([0])[0], "anomaly": anomaly.model.predict([0])[0]}

    source = fakes.FakeSource({"forecast": "1", "anomaly": "1"})
    client = make_client(source=source, routers=(router,))
    holder = client.app.state.models
    results, errors, stop = [], [], threading.Event()

    def caller():
        while not stop.is_set():
            r = client.get("/v1/test/pair", headers=fakes.AUTH)
            (results if r.status_code == 200 else errors).append(r.json())

    def wait_for_results(n):
        deadline = time.monotonic() + 10
        while len(results) + len(errors) < n and time.monotonic() < deadline:
            time.sleep(0.001)

    def reloader():
        for v in range(2, 12):
            wait_for_results(3 * (v - 1))  # let requests run on every generation
            source.versions = {"forecast": str(v), "anomaly": str(v)}
            assert holder.reload().ok
        wait_for_results(33)
        stop.set()

    threads = [threading.Thread(target=caller) for _ in range(4)] + [threading.Thread(target=reloader)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert errors == []
    assert len(results) >= 30
    assert all(r["forecast"] == r["anomaly"] for r in results)
    assert len({r["forecast"] for r in results}) > 1  # requests really ran across several reloads


def test_model_failing_the_smoke_check_is_refused_and_the_old_one_stays(fakes):
    source = fakes.FakeSource({"forecast": "1", "anomaly": "1"})

    def must_predict_below_5(loaded):
        if loaded.model.predict([0])[0] >= 5:
            raise AssertionError(f"smoke prediction {loaded.model.predict([0])[0]} out of range")

    holder = ModelHolder(source, smoke_checks={"forecast": must_predict_below_5})
    holder.reload()
    source.versions = {"forecast": "9", "anomaly": "2"}
    report = holder.reload()
    assert report.outcomes["forecast"].status == "refused"
    assert "version 9 failed the smoke check" in report.outcomes["forecast"].error
    assert "out of range" in report.outcomes["forecast"].error
    assert report.outcomes["anomaly"].status == "loaded"
    assert not report.ok
    snap = holder.snapshot()
    assert (snap.get("forecast").version, snap.get("anomaly").version) == ("1", "2")


def test_refused_version_is_not_loaded_again_on_the_next_reload(fakes):
    source = fakes.FakeSource({"forecast": "1"})
    holder = ModelHolder(source, kinds=["forecast"], smoke_checks={"forecast": lambda m: m.version == "1"})
    holder.reload()
    source.versions = {"forecast": "2"}
    holder.reload()
    loads = source.loads
    report = holder.reload()
    assert source.loads == loads
    assert report.outcomes["forecast"].status == "refused"
    assert "test-forecast v2 failed its smoke check earlier" in report.outcomes["forecast"].error
    assert holder.snapshot().get("forecast").version == "1"


def test_smoke_check_returning_false_refuses(fakes):
    holder = ModelHolder(
        fakes.FakeSource({"forecast": "1"}), kinds=["forecast"], smoke_checks={"forecast": lambda m: False}
    )
    report = holder.reload()
    assert report.outcomes["forecast"].status == "refused"
    assert "forecast" not in holder.snapshot()
    assert "returned False" in holder.last_errors["forecast"]


def test_failed_fetch_keeps_the_served_model(fakes):
    source = fakes.FakeSource({"forecast": "1", "anomaly": "1"})
    holder = ModelHolder(source)
    holder.reload()
    source.fail_with = OSError("disk full")
    report = holder.reload()
    assert report.outcomes["forecast"].status == "failed"
    assert report.outcomes["forecast"].error == "OSError: disk full"
    assert holder.snapshot().get("forecast").version == "1"
    assert holder.last_errors == {}  # still served: nothing is missing


def test_kind_without_a_model_is_not_found_and_reported_missing(fakes):
    holder = ModelHolder(fakes.FakeSource({"forecast": "1"}))
    report = holder.reload()
    assert report.outcomes["anomaly"].status == "not_found"
    assert holder.snapshot().missing(["forecast", "anomaly"]) == ["anomaly"]
    assert holder.last_errors == {"anomaly": "no anomaly model published"}


def test_install_applies_smoke_checks(fakes):
    holder = ModelHolder(fakes.FakeSource(), smoke_checks={"anomaly": lambda m: m.model.value < 1})
    report = holder.install(
        {"anomaly": _model("anomaly", "5", value=0.5), "forecast": _model("forecast", "6")}
    )
    assert report.ok and holder.snapshot().get("anomaly").version == "5"
    report = holder.install({"anomaly": _model("anomaly", "7", value=3.0)})
    assert report.outcomes["anomaly"].status == "refused"
    assert holder.snapshot().get("anomaly").version == "5"


def test_periodic_reload_picks_up_a_new_version(fakes):
    source = fakes.FakeSource({"forecast": "1", "anomaly": "1"})
    holder = ModelHolder(source)
    holder.reload()
    source.versions = {"forecast": "2", "anomaly": "2"}
    holder.start_periodic_reload(0.02)
    try:
        deadline = time.monotonic() + 5
        while holder.snapshot().get("forecast").version != "2" and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        holder.stop()
    assert holder.snapshot().get("forecast").version == "2"


def test_listeners_see_each_report_and_snapshot(fakes):
    holder = ModelHolder(fakes.FakeSource({"forecast": "1", "anomaly": "1"}))
    seen = []
    holder.add_listener(lambda report, snap: seen.append((report.generation, snap.generation)))
    holder.reload()
    holder.reload()
    assert seen == [(1, 1), (1, 1)]


# ------------------------------------------------------------------------------------------ MLflow registry
@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    """A temporary sqlite MLflow store with tiny pyfunc models: test-forecast v1 (predicts 7) @champion."""
    import mlflow
    import mlflow.pyfunc
    from mlflow import MlflowClient

    class Const(mlflow.pyfunc.PythonModel):
        def __init__(self, value):
            self.value = value

        def predict(self, context, model_input, params=None):
            return [self.value] * len(model_input)

    root = tmp_path_factory.mktemp("registry")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = MlflowClient(uri, registry_uri=uri)
    experiment = client.create_experiment("serving-tests", artifact_location=str(root / "artifacts"))

    def publish(kind, value, alias="champion"):
        run = client.create_run(experiment)
        client.log_metric(run.info.run_id, "mae", value / 10)
        client.set_tag(run.info.run_id, "data_fingerprint", f"fp-{value}")
        local = root / f"saved-{kind}-{value}"
        with warnings.catch_warnings():  # "add type hints to predict": irrelevant for this fake
            warnings.simplefilter("ignore", UserWarning)
            mlflow.pyfunc.save_model(str(local), python_model=Const(value), pip_requirements=[])
        client.log_artifacts(run.info.run_id, str(local), "model")
        client.set_terminated(run.info.run_id)
        name = f"test-{kind}"
        if not client.search_registered_models(filter_string=f"name='{name}'"):
            client.create_registered_model(name)
        mv = client.create_model_version(
            name, source=f"{run.info.artifact_uri}/model", run_id=run.info.run_id
        )
        client.set_registered_model_alias(name, alias, mv.version)
        return mv

    publish("forecast", 7.0)
    return {"uri": uri, "client": client, "publish": publish, "root": root}


def _registry_holder(tracking_uri, cache_dir, **kw):
    source = RegistryModelSource(
        model_name="test", tracking_uri=tracking_uri, cache_dir=cache_dir, timeout_s=2, **kw
    )
    return ModelHolder(source, kinds=["forecast"])


def test_registry_model_is_loaded_with_its_metadata(registry, tmp_path):
    holder = _registry_holder(registry["uri"], tmp_path / "cache")
    assert holder.reload().ok
    loaded = holder.snapshot().get("forecast")
    assert (loaded.name, loaded.version, loaded.alias, loaded.source) == (
        "test-forecast",
        "1",
        "champion",
        "registry",
    )
    assert loaded.data_fingerprint == "fp-7.0"
    assert loaded.metrics == {"mae": 0.7}
    assert loaded.run_id and loaded.model_uri == "models:/test-forecast/1"
    assert loaded.model.predict([[0], [1]]) == [7.0, 7.0]
    assert (tmp_path / "cache" / "test-forecast" / "champion.json").is_file()


def test_registry_download_draws_no_progress_bars_into_the_service_log(
    registry, tmp_path, monkeypatch, capfd
):
    monkeypatch.delenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", raising=False)
    assert _registry_holder(registry["uri"], tmp_path / "cache").reload().ok
    assert "Downloading artifacts" not in capfd.readouterr().err


def test_registry_unreachable_at_start_serves_from_cache(registry, tmp_path):
    cache = tmp_path / "cache"
    assert _registry_holder(registry["uri"], cache).reload().ok  # an earlier run filled the cache
    started = time.monotonic()
    holder = _registry_holder("http://127.0.0.1:9/", cache)
    report = holder.reload()
    assert time.monotonic() - started < 10
    assert report.ok
    loaded = holder.snapshot().get("forecast")
    assert (loaded.version, loaded.source, loaded.data_fingerprint) == ("1", "cache", "fp-7.0")
    assert loaded.model.predict([[0]]) == [7.0]


def test_registry_unreachable_without_cache_reports_why(tmp_path):
    holder = _registry_holder("http://127.0.0.1:9/", tmp_path / "empty-cache")
    report = holder.reload()
    assert report.outcomes["forecast"].status == "failed"
    assert "unreachable" in report.outcomes["forecast"].error
    assert "no cached copy of test-forecast@champion" in holder.last_errors["forecast"]


def test_registry_without_the_alias_is_not_found_and_cache_is_not_used(registry, tmp_path):
    cache = tmp_path / "cache"
    _registry_holder(registry["uri"], cache).reload()
    holder = _registry_holder(registry["uri"], cache, alias="challenger")
    report = holder.reload()
    assert report.outcomes["forecast"].status == "not_found"
    assert "has no test-forecast@challenger" in report.outcomes["forecast"].error


def test_registry_alias_moved_loads_the_new_version(registry, tmp_path):
    holder = _registry_holder(registry["uri"], tmp_path / "cache", alias="staging")
    registry["publish"]("forecast", 3.0, alias="staging")
    holder.reload()
    first = holder.snapshot().get("forecast")
    registry["publish"]("forecast", 4.0, alias="staging")
    report = holder.reload()
    second = holder.snapshot().get("forecast")
    assert report.outcomes["forecast"].status == "loaded"
    assert int(second.version) == int(first.version) + 1
    assert second.model.predict([[0]]) == [4.0]


def test_describe_shows_the_metadata_a_pyfunc_model_was_logged_with():
    meta = {"threshold.policy": "f1", "threshold.recall": "0.56"}
    pyfunc_like = SimpleNamespace(metadata=SimpleNamespace(metadata=meta))
    described = LoadedModel(kind="anomaly", name="x-anomaly", version="3", model=pyfunc_like).describe()
    assert described["metadata"] == meta
    assert LoadedModel(kind="anomaly", name="x", version="1", model=object()).describe()["metadata"] == {}


@pytest.fixture
def silent_server():
    """A local TCP server that accepts connections and never answers (a hung tracking server)."""
    import socket

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    accepted = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}", accepted
    stop.set()
    thread.join()
    for conn in accepted:
        conn.close()
    server.close()


def test_a_registry_that_never_answers_delays_a_start_by_one_deadline_then_serves_the_cache(
    registry, tmp_path, silent_server
):
    cache = tmp_path / "cache"
    assert _registry_holder(registry["uri"], cache).reload().ok  # an earlier run filled the cache
    uri, accepted = silent_server
    source = RegistryModelSource(
        model_name="test", tracking_uri=uri, cache_dir=cache, timeout_s=60, deadline_s=1.0
    )
    holder = ModelHolder(source, kinds=["forecast", "anomaly"])
    started = time.monotonic()
    report = holder.reload()
    assert time.monotonic() - started < 30  # without the deadline: MLflow's 60 s timeout and its retries
    assert accepted  # the server took the connection and never answered
    assert report.outcomes["forecast"].status == "loaded"
    assert holder.snapshot().get("forecast").source == "cache"
    assert "did not answer for test-forecast@champion within 1 s" not in (
        report.outcomes["forecast"].error or ""
    )
    assert "has not answered an earlier request" in holder.last_errors["anomaly"]  # no second wait
