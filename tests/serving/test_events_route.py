"""POST /v1/events: reported orders and exceptions feed the history features scoring uses."""

import time

AUTH = {"X-API-Key": "test-key"}


def _post(client, body):
    response = client.post("/v1/events", json=body, headers=AUTH)
    assert response.status_code == 200, response.text
    return response.json()


def _customer_features(client, order):
    scored = client.post("/v1/orders/score", json=order, headers=AUTH).json()
    return client.get(f"/v1/decisions/{scored['decision_id']}", headers=AUTH).json()["features"]


def test_an_exception_on_a_customers_earlier_order_raises_the_next_orders_prior_exceptions(
    service, make_order
):
    earlier = make_order("E1", customer_id="12957", created_at="2011-07-01T09:00:00")
    later = make_order("L1", customer_id="12957", created_at="2011-07-20T09:00:00")
    before = _customer_features(service, later)
    _post(service, {"orders": [earlier]})
    with_order = _customer_features(service, later)
    assert with_order["customer_prior_orders"] == before["customer_prior_orders"] + 1
    assert with_order["customer_prior_exceptions"] == before["customer_prior_exceptions"]
    _post(service, {"labels": [{"order_id": "E1", "label": 1, "labeled_at": "2011-07-05T12:00:00"}]})
    service.app.state.order_history.refresh()
    after = _customer_features(service, later)
    assert after["customer_prior_exceptions"] == before["customer_prior_exceptions"] + 1
    assert after["customer_prior_labeled"] == before["customer_prior_labeled"] + 1


def test_an_exception_known_only_after_the_order_is_not_used_for_it(service, make_order):
    _post(service, {"orders": [make_order("E1", customer_id="12957", created_at="2011-07-01T09:00:00")]})
    later = make_order("L1", customer_id="12957", created_at="2011-07-20T09:00:00")
    before = _customer_features(service, later)
    _post(service, {"exceptions": [{"order_id": "E1", "label": 1, "labeled_at": "2011-07-25T12:00:00"}]})
    assert (
        _customer_features(service, later)["customer_prior_exceptions"] == before["customer_prior_exceptions"]
    )


def test_a_repeated_order_event_is_a_duplicate_and_counted_once(service, make_order):
    event = make_order("E1", customer_id="12957", created_at="2011-07-01T09:00:00")
    later = make_order("L1", customer_id="12957", created_at="2011-07-20T09:00:00")
    before = _customer_features(service, later)["customer_prior_orders"]
    first, second = _post(service, {"orders": [event]}), _post(service, {"orders": [event]})
    assert first["orders"] == {"accepted": 1, "duplicate": 0, "conflict": 0}
    assert second["orders"] == {"accepted": 0, "duplicate": 1, "conflict": 0}
    assert second["results"] == [
        {
            "kind": "order",
            "order_id": "E1",
            "status": "duplicate",
            "note": "already known: not counted again",
            "stored_as": None,
        }
    ]
    assert _customer_features(service, later)["customer_prior_orders"] == before + 1
    assert service.app.state.events.high_water_mark() == (1, 0)


def test_a_different_order_under_a_stored_id_is_a_conflict_and_not_applied(service, make_order):
    _post(service, {"orders": [make_order("E1", lines=[("84946", 1, 1.0)])]})
    out = _post(service, {"orders": [make_order("E1", lines=[("84946", 999, 1.0)])]})
    assert out["orders"]["conflict"] == 1 and "not applied" in out["results"][0]["note"]
    assert service.app.state.events.order_lines()["quantity"].tolist() == [1.0]


def test_an_order_of_the_models_snapshot_is_a_duplicate(service, make_order):
    out = _post(service, {"orders": [make_order("540004")]})
    assert out["orders"]["duplicate"] == 1 and "snapshot" in out["results"][0]["note"]
    assert service.app.state.events.high_water_mark() == (0, 0)


def test_a_repeated_and_a_changed_label_are_duplicate_and_conflict(service, make_order):
    label = {"order_id": "E1", "label": 1, "labeled_at": "2011-07-05T12:00:00"}
    _post(service, {"orders": [make_order("E1")], "labels": [label]})
    out = _post(service, {"labels": [label]})
    assert out["labels"]["duplicate"] == 1
    out = _post(service, {"labels": [{**label, "label": 0}]})
    assert out["labels"]["conflict"] == 1
    snapshot_label = {
        "order_id": "540004",
        "label": 1,
        "labeled_at": "2011-01-10T00:00:00",
    }  # snapshot says 0
    assert _post(service, {"labels": [snapshot_label]})["labels"]["conflict"] == 1


def test_a_label_for_an_order_not_seen_yet_is_accepted_and_counted(service):
    out = _post(
        service, {"labels": [{"order_id": "FUTURE", "label": 1, "labeled_at": "2011-07-05T12:00:00"}]}
    )
    assert out["labels"] == {"accepted": 1, "duplicate": 0, "conflict": 0, "unknown_order": 1}
    assert "used once the order is reported" in out["results"][0]["note"]


def test_the_response_says_when_events_are_visible_and_describes_the_history(service, make_order):
    out = _post(service, {"orders": [make_order("E1")]})
    assert out["visible"].startswith("now on this replica")
    assert (
        out["history"]["event_orders"] == 1
        and out["history"]["orders"] == out["history"]["snapshot_orders"] + 1
    )


def test_events_reach_another_replica_through_the_database_on_refresh(make_service, make_order):
    a, b = make_service(), make_service()  # same audit/event database, separate in-memory histories
    later = make_order("L1", customer_id="12957", created_at="2011-07-20T09:00:00")
    before = _customer_features(b, later)["customer_prior_orders"]
    _post(a, {"orders": [make_order("E1", customer_id="12957")]})
    assert _customer_features(b, later)["customer_prior_orders"] == before  # b has not refreshed yet
    b.app.state.order_history.refresh()
    assert _customer_features(b, later)["customer_prior_orders"] == before + 1


def test_the_background_refresh_picks_up_another_replicas_events(make_service, make_order):
    a, b = make_service(), make_service(events_refresh_interval_s=0.05)
    _post(a, {"orders": [make_order("E1")]})
    deadline = time.monotonic() + 10
    while b.app.state.order_history.state.n_event_orders == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert b.app.state.order_history.state.n_event_orders == 1


def test_an_empty_events_body_is_422(service):
    response = service.post("/v1/events", json={"orders": [], "labels": []}, headers=AUTH)
    assert response.status_code == 422
    assert "send at least one event" in response.json()["error"]["message"]


def test_an_invalid_label_is_422_with_the_field(service):
    response = service.post(
        "/v1/events",
        json={"labels": [{"order_id": "X", "label": 2, "labeled_at": "2011-07-01"}]},
        headers=AUTH,
    )
    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["loc"] == ["body", "labels", 0, "label"]


def test_event_ids_sent_as_whole_floats_are_stored_as_the_snapshot_reads_them(service, make_order):
    later = make_order("L1", customer_id="12957", created_at="2011-07-20T09:00:00")
    before = _customer_features(service, later)
    sent = [
        make_order("990001.0", customer_id="12957.0", created_at="2011-07-01T09:00:00"),
        make_order("990002", customer_id="12957", created_at="2011-07-02T09:00:00"),
    ]
    out = _post(service, {"orders": sent})
    assert out["orders"] == {"accepted": 2, "duplicate": 0, "conflict": 0}
    assert [(r["order_id"], r["stored_as"]) for r in out["results"]] == [
        ("990001.0", "990001"),
        ("990002", None),
    ]
    # one order id and one customer id changed; "12957.0" and "12957" are one customer now
    assert (out["ids_whole_float_repaired"], out["ids_merged_by_repair"]) == (2, 2)
    lines = service.app.state.events.order_lines()
    assert lines["order_id"].tolist() == ["990001", "990002"] and set(lines["customer_id"]) == {"12957"}
    after = _customer_features(service, later)
    assert after["customer_prior_orders"] == before["customer_prior_orders"] + 2


def test_two_event_orders_that_the_id_rule_makes_one_are_stored_once(service, make_order):
    first = make_order("990001.0", customer_id="13094.0", created_at="2011-07-01T09:00:00")
    again = make_order("990001", customer_id="13094", created_at="2011-07-01T09:00:00")
    label = {"order_id": "990001.0", "label": 1, "labeled_at": "2011-07-05T12:00:00"}
    out = _post(service, {"orders": [first, again], "labels": [label]})
    assert out["orders"] == {"accepted": 1, "duplicate": 1, "conflict": 0}
    assert out["labels"] == {"accepted": 1, "duplicate": 0, "conflict": 0, "unknown_order": 0}
    assert [(r["order_id"], r["status"], r["stored_as"]) for r in out["results"]] == [
        ("990001.0", "accepted", "990001"),
        ("990001", "duplicate", None),
        ("990001.0", "accepted", "990001"),
    ]
    # order ids: "990001.0" twice and "990001" (2 values changed); customers: 1 changed; 2 + 2 ids merged
    assert (out["ids_whole_float_repaired"], out["ids_merged_by_repair"]) == (3, 4)
    assert service.app.state.events.order_lines()["order_id"].tolist() == ["990001"]
    assert service.app.state.events.label_table()["order_id"].tolist() == ["990001"]
    text = service.get("/metrics").text
    assert 'orderpulse_request_ids_whole_float_repaired_total{request="events"} 3.0' in text
