"""POST /v1/actuals: observed values appended to the forecast history, idempotent on (series_id, ds)."""

import pandas as pd

AUTH = {"X-API-Key": "test-key"}
PLAN = [
    {"ds": str(d.date()), "promo": 0, "state_holiday": "0", "school_holiday": 0, "promo2_active": 0}
    for d in pd.date_range("2015-06-20", periods=20, freq="D")
]


def _actuals(client, *rows):
    response = client.post("/v1/actuals", json={"actuals": list(rows)}, headers=AUTH)
    assert response.status_code == 200, response.text
    return response.json()


def _forecast(client, **body):
    response = client.post("/v1/forecast", json=body, headers=AUTH)
    assert response.status_code == 200, response.text
    return response.json()


def test_actuals_after_the_data_end_move_the_forecast_origin(service):
    before = _forecast(service, series_id="88", covariates=PLAN)
    out = _actuals(
        service,
        {"series_id": "88", "ds": "2015-06-20", "y": 2400},
        {"series_id": "88", "ds": "2015-06-22", "y": 6100},
    )
    assert out["inserted"] == 2 and out["latest"] == {"88": "2015-06-22T00:00:00"}
    after = _forecast(service, series_id="88", covariates=PLAN)
    assert before["origin"] == "2015-06-19T00:00:00" and after["origin"] == "2015-06-22T00:00:00"
    series = after["series"][0]
    assert series["points"][0]["ds"] == "2015-06-23T00:00:00"
    assert series["history_end"] == "2015-06-22T00:00:00" and series["actuals_used"] == 2


def test_a_repeated_actual_is_a_duplicate_and_a_corrected_one_is_updated(service):
    row = {"series_id": "88", "ds": "2015-06-20", "y": 2400}
    assert _actuals(service, row)["inserted"] == 1
    again = _actuals(service, row)
    assert (again["inserted"], again["updated"], again["duplicate"]) == (0, 0, 1)
    fixed = _actuals(service, {**row, "y": 2500})
    assert (fixed["inserted"], fixed["updated"], fixed["duplicate"]) == (0, 1, 0)
    stored = service.app.state.events.actuals_for(["88"])
    assert stored["y"].tolist() == [2500.0] and service.app.state.events.count_actuals() == 1


def test_an_actual_replaces_the_snapshot_value_the_forecast_starts_from(service):
    before = _forecast(service, series_id="88", origin="2015-06-05")
    _actuals(service, {"series_id": "88", "ds": "2015-06-05", "y": 30000})  # the snapshot says 7025
    after = _forecast(service, series_id="88", origin="2015-06-05")
    changed = [
        a["yhat"] != b["yhat"]
        for a, b in zip(after["series"][0]["points"], before["series"][0]["points"], strict=True)
    ]
    assert any(changed)
    assert after["series"][0]["actuals_used"] == 1


def test_a_closed_day_is_stored_with_open_zero(service):
    _actuals(service, {"series_id": "88", "ds": "2015-06-21", "y": 0, "open": 0})
    stored = service.app.state.events.actuals_for(["88"])
    assert stored[["y", "open"]].values.tolist() == [[0.0, 0]]


def test_an_actual_of_a_series_sent_as_a_whole_float_is_stored_for_the_series_the_model_knows(service):
    out = _actuals(service, {"series_id": "88.0", "ds": "2015-06-20", "y": 5000})
    assert out["inserted"] == 1 and out["ids_read_as"] == {"88.0": "88"}
    assert out["results"][0]["series_id"] == "88" and out["latest"] == {"88": "2015-06-20T00:00:00"}
    assert service.app.state.events.actuals_for(["88"])["y"].tolist() == [5000.0]
    assert "ids_read_as" not in _actuals(service, {"series_id": "88", "ds": "2015-06-21", "y": 10})
    text = service.get("/metrics").text
    assert 'orderpulse_request_ids_whole_float_repaired_total{request="actuals"} 1.0' in text


def test_an_actual_of_an_unknown_series_is_404(service):
    response = service.post(
        "/v1/actuals", json={"actuals": [{"series_id": "nope", "ds": "2015-06-20", "y": 1}]}, headers=AUTH
    )
    assert response.status_code == 404
    assert response.json()["error"]["details"] == {"unknown_series": ["nope"]}
    assert service.app.state.events.count_actuals() == 0


def test_an_actual_off_the_daily_grid_is_400(service):
    response = service.post(
        "/v1/actuals",
        json={"actuals": [{"series_id": "88", "ds": "2015-06-20T13:00:00", "y": 1}]},
        headers=AUTH,
    )
    assert response.status_code == 400
    assert "not on the model's grid" in response.json()["error"]["message"]
    assert service.app.state.events.count_actuals() == 0


def test_a_closed_day_with_sales_is_422(service):
    response = service.post(
        "/v1/actuals",
        json={"actuals": [{"series_id": "88", "ds": "2015-06-21", "y": 5, "open": 0}]},
        headers=AUTH,
    )
    assert response.status_code == 422
    assert "open=0 (closed) requires y=0" in response.json()["error"]["message"]


def test_a_negative_or_missing_value_is_422(service):
    for y in (-1, None):
        response = service.post(
            "/v1/actuals", json={"actuals": [{"series_id": "88", "ds": "2015-06-20", "y": y}]}, headers=AUTH
        )
        assert response.status_code == 422
        assert response.json()["error"]["details"][0]["loc"] == ["body", "actuals", 0, "y"]


def test_an_actual_refused_for_the_forecast_model_leaves_no_volume_verdict_behind(make_service):
    client = make_service(volume_freq="5min", volume_warmup="1d")
    off = client.post(
        "/v1/actuals",
        json={"actuals": [{"series_id": "88", "ds": "2015-06-20T14:05:00", "y": 90}]},
        headers=AUTH,
    )
    assert off.status_code == 400 and "not on the model's grid" in off.json()["error"]["message"]
    out = _actuals(client, {"series_id": "88", "ds": "2015-06-20", "y": 2400})
    assert out["inserted"] == 1
    assert [(v["ds"], v["status"]) for v in out["volume"]] == [("2015-06-20T00:00:00", "forecast_only")]


def test_daily_actuals_of_forecast_series_are_not_judged_by_the_5_minute_volume_detector(make_service):
    client = make_service(volume_freq="5min", volume_warmup="1d")
    out = _actuals(
        client,
        {"series_id": "web", "ds": "2015-06-20T14:05:00", "y": 90},
        {"series_id": "88", "ds": "2015-06-20", "y": 2400},
        {"series_id": "88", "ds": "2015-06-21", "y": 0, "open": 0},
        {"series_id": "web", "ds": "2015-06-20T14:10:00", "y": 95},
    )
    assert out["inserted"] == 2 and out["latest"] == {"88": "2015-06-21T00:00:00"}
    assert [(v["series_id"], v["status"], v.get("y")) for v in out["volume"]] == [
        ("web", "warmup", 90.0),
        ("88", "forecast_only", None),
        ("88", "forecast_only", None),
        ("web", "warmup", 95.0),
    ]
    volume = client.app.state.volume
    assert volume.detector.last_seen("88") is None and volume.states.version("88") == 0
    assert volume.detector.last_seen("web") is not None
