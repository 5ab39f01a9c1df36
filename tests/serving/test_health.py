def test_health_is_200_even_without_models(make_client, fakes):
    client = make_client(source=fakes.FakeSource({}))
    r = client.get("/health")
    assert r.status_code == 200 and r.json() == {"status": "ok"}


def test_ready_is_200_with_versions_when_required_models_are_loaded(make_client, fakes):
    client = make_client(source=fakes.FakeSource({"forecast": "3", "anomaly": "5"}))
    r = client.get("/ready")
    assert r.status_code == 200
    assert r.json() == {"status": "ready", "models": {"forecast": "3", "anomaly": "5"}, "generation": 1}


def test_ready_is_503_naming_the_missing_models_and_why(make_client, fakes):
    client = make_client(source=fakes.FakeSource({"forecast": "3"}))
    r = client.get("/ready")
    assert r.status_code == 503
    err = r.json()["error"]
    assert err["code"] == "not_ready"
    assert err["details"] == {
        "missing_models": ["anomaly"],
        "errors": {"anomaly": "no anomaly model published"},
        "audit": "ok",
    }
    assert "required models not loaded: anomaly" in err["message"]


def test_ready_only_requires_the_configured_kinds(make_client, fakes):
    client = make_client(source=fakes.FakeSource({"forecast": "3"}), require_models="forecast")
    assert client.get("/ready").status_code == 200


def test_ready_turns_200_after_a_successful_reload(make_client, fakes):
    source = fakes.FakeSource({"forecast": "1"})
    client = make_client(source=source)
    assert client.get("/ready").status_code == 503
    source.versions["anomaly"] = "1"
    assert client.post("/v1/admin/reload", headers=fakes.AUTH).json()["ok"] is True
    assert client.get("/ready").status_code == 200


def test_ready_is_503_when_the_audit_store_fails(make_client, fakes, monkeypatch):
    client = make_client()
    audit = client.app.state.audit

    def broken():
        raise OSError("database is locked")

    monkeypatch.setattr(audit, "ping", broken)
    r = client.get("/ready")
    assert r.status_code == 503
    assert (
        r.json()["error"]["details"]["audit"]
        == "the audit store does not answer: OSError: database is locked"
    )
