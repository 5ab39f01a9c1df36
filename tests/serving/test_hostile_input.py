"""Hostile and careless input (issue 12): every case of the audit, reproduced against the real models.

Bounds, strict types and statuses are those of ``features.bounds`` and ``serving.schemas.common``; stored rows
out of bounds are skipped on read (``serving.store.checks``).
"""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import text

AUTH = {"X-API-Key": "test-key"}
SCORE = "/v1/orders/score"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_settings(request, pg_url):
    """Settings overrides for an app on SQLite (the default) or on a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        yield {}
        return
    url = pg_url
    if url is None:
        pytest.skip("no PostgreSQL server reachable")
    import psycopg

    schema = f"orderpulse_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield {"audit_url": f"{url}?options=-csearch_path%3D{schema}"}
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def _error(response, status=422):
    assert response.status_code == status, response.text
    return response.json()["error"]


# --------------------------------------------------------------------------------------------- poisoning
def test_an_out_of_range_event_is_refused_and_never_disables_scoring(
    make_service, make_order, database_settings
):
    service = make_service(**database_settings)
    bad = make_order("POISON", created_at="0016-11-14T08:29:36Z")
    error = _error(service.post("/v1/events", json={"orders": [bad]}, headers=AUTH))
    assert error["details"][0]["loc"] == ["body", "orders", 0, "created_at"]
    assert "1900-01-01 .. 2200-12-31" in error["details"][0]["msg"]
    valid = make_order("FINE-1", created_at="2011-07-02T10:00:00")
    assert service.post("/v1/events", json={"orders": [valid]}, headers=AUTH).status_code == 200
    restarted = make_service(**database_settings)  # a new app on the same database
    response = restarted.post(SCORE, json=make_order("FINE-2"), headers=AUTH)
    assert response.status_code == 200, response.text
    assert restarted.app.state.order_history.state.n_event_orders == 1


def test_rows_stored_out_of_bounds_are_skipped_and_reported_at_startup(
    make_service, make_order, database_settings, caplog
):
    service = make_service(**database_settings)
    assert service.post("/v1/events", json={"orders": [make_order("OK-1")]}, headers=AUTH).status_code == 200
    events = service.app.state.events
    with events.database.connection() as conn:  # rows written before the bounds existed, or by hand
        conn.execute(
            text(
                "INSERT INTO order_events (order_id, customer_id, created_at, n_lines, content_hash, received_at)"
                " VALUES ('OLD-BAD', '13094', :t, 1, 'x', :now)"
            ),
            {"t": "0016-11-14 08:29:36", "now": "2026-01-01 00:00:00+00:00"},
        )
        conn.execute(
            text(
                "INSERT INTO order_event_lines (order_id, line_no, sku, quantity, unit_price)"
                " VALUES ('OLD-BAD', 0, '84946', 5e-324, 1e308)"
            )
        )
    restarted = make_service(**database_settings)
    response = restarted.post(SCORE, json=make_order("FINE-3"), headers=AUTH)
    assert response.status_code == 200, response.text
    assert restarted.app.state.order_history.state.n_event_orders == 1  # OK-1 only
    metrics = restarted.get("/metrics").text
    assert 'orderpulse_event_rows_skipped{table="order_events"} 1.0' in metrics
    assert "skipped 1 stored order_events rows that are out of bounds" in caplog.text


# ------------------------------------------------------------------------------------ dates and numbers
@pytest.mark.parametrize(
    "created_at",
    ["9999-12-31T23:59:59Z", "0001-01-01T00:00Z", "9999-12-31T23:59:59-05:00", "1899-12-31T23:59:59Z"],
)
def test_a_timestamp_outside_1900_2200_is_422_not_another_date(service, make_order, created_at):
    error = _error(service.post(SCORE, json=make_order("D", created_at=created_at), headers=AUTH))
    assert error["details"][0]["loc"] == ["body", "order", "created_at"]
    assert "outside the accepted range 1900-01-01 .. 2200-12-31" in error["details"][0]["msg"]


def test_the_bounds_themselves_are_scored_with_their_own_date(service, make_order):
    for created_at, day in (("1900-01-01T00:00:00Z", "1900-01-01"), ("2200-12-31T23:59:59Z", "2200-12-31")):
        scored = service.post(SCORE, json=make_order("B", created_at=created_at), headers=AUTH)
        assert scored.status_code == 200, scored.text
        recorded = service.get(f"/v1/decisions/{scored.json()['decision_id']}", headers=AUTH).json()
        assert recorded["features"]["created_at"].startswith(day)


@pytest.mark.parametrize(
    ("line", "field"),
    [((("84946", 5e-324, 1.0)), "quantity"), ((("84946", 2, 1e308)), "unit_price")],
)
def test_numbers_that_overflow_the_explanations_are_422(service, make_order, line, field):
    order = make_order("N", lines=[line])
    error = _error(service.post(f"{SCORE}?explain=all", json=order, headers=AUTH))
    assert error["details"][0]["loc"] == ["body", "order", "lines", 0, field]


# ------------------------------------------------------------------------------------------- strict types
@pytest.mark.parametrize(
    ("change", "loc"),
    [
        ({"order_id": 581475}, ["order_id"]),
        ({"customer_id": 13094}, ["customer_id"]),
        ({"lines": [{"sku": "84946", "quantity": 1, "unit_price": False}]}, ["lines", 0, "unit_price"]),
        ({"lines": [{"sku": "84946", "quantity": "3", "unit_price": 1}]}, ["lines", 0, "quantity"]),
        ({"created_at": 0}, ["created_at"]),
        ({"created_at": "1322556000"}, ["created_at"]),
    ],
)
def test_values_of_the_wrong_json_type_are_422_not_converted(service, make_order, change, loc):
    error = _error(service.post(SCORE, json={**make_order("T"), **change}, headers=AUTH))
    assert any(d["loc"][: 2 + len(loc)] == ["body", "order", *loc] for d in error["details"]), error


def test_a_label_must_be_the_integer_0_or_1(service):
    for label in (True, 1.0, "1"):
        body = {"labels": [{"order_id": "X", "label": label, "labeled_at": "2011-07-05T12:00:00"}]}
        error = _error(service.post("/v1/events", json=body, headers=AUTH))
        assert error["details"][0]["loc"][:4] == ["body", "labels", 0, "label"]


# ------------------------------------------------------------------------------------ strings (NUL ...)
@pytest.mark.parametrize("value", ["A\x00B", "A\nB", "x" * 129])
def test_control_characters_and_long_ids_are_422_on_every_store(
    make_service, make_order, database_settings, value
):
    service = make_service(**database_settings)
    for body in ({"orders": [make_order(value)]}, {"orders": [make_order("S", customer_id=value)]}):
        _error(service.post("/v1/events", json=body, headers=AUTH))
    _error(service.post(SCORE, json=make_order(value), headers=AUTH))
    _error(service.get(f"/v1/decisions/{value.replace(chr(0), '%00').replace(chr(10), '%0A')}", headers=AUTH))


# ----------------------------------------------------------------------------- one status per mistake
@pytest.mark.parametrize("path", [SCORE, "/v1/events", "/v1/forecast", "/v1/actuals"])
@pytest.mark.parametrize("body", [b'{"orders": [', b'{"series_id": "\xff\xfe"}'], ids=["json", "utf8"])
def test_an_unparseable_body_is_422_on_every_route(service, path, body):
    headers = {**AUTH, "Content-Type": "application/json"}
    error = _error(service.post(path, content=body, headers=headers))
    assert error["code"] == "invalid_request"


# ------------------------------------------------------------------------------------------------ OpenAPI
def test_every_operation_documents_its_error_statuses_with_the_shared_schema(service):
    paths = service.app.openapi()["paths"]
    expected = {
        ("get", "/health"): set(),
        ("get", "/ready"): {"503"},
        ("get", "/v1/models"): {"401", "403"},
        ("post", "/v1/admin/reload"): {"401", "403"},
        ("get", "/v1/decisions/{decision_id}"): {"401", "403", "404", "422", "503"},
        ("post", "/v1/orders/score"): {"400", "401", "403", "413", "422", "503"},
        ("post", "/v1/events"): {"400", "401", "403", "413", "422", "503"},
        ("post", "/v1/forecast"): {"400", "401", "403", "404", "413", "422", "503"},
        ("post", "/v1/actuals"): {"400", "401", "403", "404", "413", "422", "503"},
    }
    for (method, path), statuses in expected.items():
        responses = paths[path][method]["responses"]
        assert set(responses) - {"200"} == statuses, (method, path)
        for status in statuses:
            schema = responses[status]["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/ErrorBody"}, (method, path, status)
        assert ("security" in paths[path][method]) == (path not in ("/health", "/ready"))


# ---------------------------------------------------------------------------------------- docs and /ready
def test_docs_are_open_in_dev_and_closed_in_prod(make_client):
    dev = make_client()
    assert dev.get("/docs").status_code == 200
    assert dev.get("/openapi.json").status_code == 200
    prod = make_client(profile="prod", api_keys="sha256:" + "ab" * 32)
    assert prod.get("/docs").status_code == 404
    assert prod.get("/redoc").status_code == 404
    assert _error(prod.get("/openapi.json"), 401)["code"] == "missing_api_key"
    opened = make_client(profile="prod", api_keys="sha256:" + "ab" * 32, docs_public=True)
    assert opened.get("/docs").status_code == 200


def test_ready_names_no_local_path_in_its_open_503_body(make_client, fakes, tmp_path):
    source = fakes.FakeSource({})
    source.fail_with = FileNotFoundError(f"no cached copy in {tmp_path}/mlruns/serving-cache/x")
    client = make_client(source=source)
    body = client.get("/ready")
    assert body.status_code == 503
    assert str(tmp_path) not in body.text
    assert "<path>" in body.text
