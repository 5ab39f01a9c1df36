def test_list_models_shows_registry_metadata(make_client, fakes):
    client = make_client(source=fakes.FakeSource({"forecast": "2"}))
    body = client.get("/v1/models", headers=fakes.AUTH).json()
    assert body["missing"] == ["anomaly"] and body["generation"] == 1
    (model,) = body["models"]
    loaded_at = model.pop("loaded_at")
    assert loaded_at.endswith("+00:00")
    assert model == {
        "kind": "forecast",
        "name": "test-forecast",
        "version": "2",
        "alias": "champion",
        "run_id": "run-forecast-2",
        "data_fingerprint": "fp-2",
        "metrics": {"mae": 1.5},
        "source": "registry",
        "model_uri": None,
        "metadata": {},
    }


def test_admin_reload_swaps_in_the_new_version(make_client, fakes):
    source = fakes.FakeSource({"forecast": "1", "anomaly": "1"})
    client = make_client(source=source)
    source.versions["forecast"] = "2"
    r = client.post("/v1/admin/reload", headers=fakes.AUTH)
    assert r.status_code == 200
    body = r.json()
    assert body["ok"] is True and body["generation"] == 2
    assert body["outcomes"]["forecast"] == {
        "status": "loaded",
        "version": "2",
        "previous_version": "1",
        "source": "registry",
        "error": None,
    }
    assert body["outcomes"]["anomaly"]["status"] == "unchanged"
    versions = {
        m["kind"]: m["version"] for m in client.get("/v1/models", headers=fakes.AUTH).json()["models"]
    }
    assert versions == {"forecast": "2", "anomaly": "1"}


def test_admin_reload_reports_a_refused_model(make_client, fakes):
    source = fakes.FakeSource({"forecast": "1", "anomaly": "1"})
    client = make_client(source=source, smoke_checks={"anomaly": lambda m: m.version == "1"})
    source.versions["anomaly"] = "2"
    body = client.post("/v1/admin/reload", headers=fakes.AUTH).json()
    assert body["ok"] is False
    assert body["outcomes"]["anomaly"]["status"] == "refused"
    assert body["outcomes"]["anomaly"]["version"] == "1"


def test_admin_reload_needs_a_key(make_client):
    assert make_client().post("/v1/admin/reload").status_code == 401
