from datetime import UTC, datetime

from serving.store.audit import AuditRecord


def test_recorded_decision_is_returned(make_client, fakes):
    client = make_client()
    rec = AuditRecord(
        kind="score",
        model_name="test-anomaly",
        model_version="4",
        model_alias="champion",
        request_id="req-9",
        input={"order_id": "o1"},
        features={"qty": 2.0},
        output={"score": 0.8, "flag": True, "threshold": 0.5, "reasons": ["new customer"]},
        created_at=datetime(2024, 2, 3, 4, 5, 6, tzinfo=UTC),
    )
    client.app.state.audit.write_many([rec])
    r = client.get(f"/v1/decisions/{rec.decision_id}", headers=fakes.AUTH)
    assert r.status_code == 200
    assert r.json() == {
        "decision_id": rec.decision_id,
        "created_at": "2024-02-03T04:05:06Z",
        "kind": "score",
        "model_name": "test-anomaly",
        "model_version": "4",
        "model_alias": "champion",
        "request_id": "req-9",
        "input": {"order_id": "o1"},
        "features": {"qty": 2.0},
        "output": {"score": 0.8, "flag": True, "threshold": 0.5, "reasons": ["new customer"]},
    }


def test_unknown_decision_is_404_with_the_id(make_client, fakes):
    r = make_client().get("/v1/decisions/does-not-exist", headers=fakes.AUTH)
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "not_found"
    assert r.json()["error"]["details"] == {"decision_id": "does-not-exist"}


def test_lifespan_opens_the_audit_db_from_settings(make_client, make_settings):
    client = make_client()
    assert client.app.state.audit.url == make_settings().audit_url
