import hashlib

import pytest

from serving.auth import generate_api_key, hash_api_key, normalise_key_hash, verify_api_key


def test_hash_api_key_is_the_sha256_hex_digest():
    assert hash_api_key("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_hash_of_an_empty_key_is_refused():
    with pytest.raises(ValueError, match="empty API key"):
        hash_api_key("")


def test_generated_keys_are_random_and_never_look_like_a_hash():
    a, b = generate_api_key(), generate_api_key()
    assert a != b and len(a) > 40
    assert normalise_key_hash(a) is None


def test_normalise_key_hash_accepts_prefix_and_upper_case():
    digest = hashlib.sha256(b"x").hexdigest()
    assert normalise_key_hash("sha256:" + digest.upper()) == digest
    assert normalise_key_hash("not-a-hash") is None


def test_verify_api_key_matches_any_stored_hash():
    hashes = [hash_api_key("one"), hash_api_key("two")]
    assert verify_api_key("two", hashes)
    assert not verify_api_key("three", hashes)
    assert not verify_api_key("two", [])


def test_missing_key_gives_401_with_challenge_and_json_body(make_client):
    client = make_client()
    r = client.get("/v1/models")
    assert r.status_code == 401
    assert "Bearer" in r.headers["WWW-Authenticate"]
    assert r.json()["error"]["code"] == "missing_api_key"
    assert "X-API-Key" in r.json()["error"]["message"]


def test_wrong_key_gives_403_json_body(make_client):
    r = make_client().get("/v1/models", headers={"X-API-Key": "wrong"})
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "invalid_api_key"


def test_valid_key_in_x_api_key_header_is_accepted(make_client, fakes):
    assert make_client().get("/v1/models", headers={"X-API-Key": fakes.API_KEY}).status_code == 200


def test_valid_key_as_bearer_token_is_accepted(make_client, fakes):
    r = make_client().get("/v1/models", headers={"Authorization": f"Bearer {fakes.API_KEY}"})
    assert r.status_code == 200


def test_key_configured_as_hash_is_accepted(make_client):
    client = make_client(api_keys="sha256:" + hash_api_key("from-hash"), profile="prod")
    assert client.get("/v1/models", headers={"X-API-Key": "from-hash"}).status_code == 200


def test_exempt_paths_need_no_key(make_client):
    client = make_client()
    assert client.get("/health").status_code == 200
    assert client.get("/metrics").status_code == 200
    assert client.get("/ready").status_code == 200


def test_exemptions_are_configurable(make_client):
    client = make_client(auth_exempt="/health")
    assert client.get("/health").status_code == 200
    assert client.get("/metrics").status_code == 401


def test_every_v1_route_requires_a_key(make_client):
    client = make_client()
    paths = {p: ops for p, ops in client.app.openapi()["paths"].items() if p.startswith("/v1")}
    assert set(paths) >= {"/v1/models", "/v1/admin/reload", "/v1/decisions/{decision_id}"}
    for path, operations in paths.items():
        for method in operations:
            url = path.replace("{decision_id}", "some-id")
            assert client.request(method.upper(), url).status_code == 401, (method, path)


def test_every_v1_route_of_the_model_service_requires_a_key(service):
    """Walks the app's documented routes, so a route added later is covered too."""
    routes = [
        (method.upper(), path.replace("{decision_id}", "x"))
        for path, operations in service.app.openapi()["paths"].items()
        if path.startswith("/v1")
        for method in operations
    ]
    assert {p for _, p in routes} >= {
        "/v1/orders/score",
        "/v1/events",
        "/v1/forecast",
        "/v1/actuals",
        "/v1/models",
    }
    for method, path in routes:
        missing = service.request(method, path, json={})
        wrong = service.request(method, path, json={}, headers={"X-API-Key": "not-the-key"})
        assert (missing.status_code, wrong.status_code) == (401, 403), (method, path)
    assert service.app.state.audit.count() == 0
