"""GET /v1/monitoring on the real models: live accuracy equals an independent computation on the same answers."""

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score

AUTH = {"X-API-Key": "test-key"}
ORIGIN = "2015-06-05"  # inside the sample: the stored plan covers the next 14 days


def _post(client, url, body):
    response = client.post(url, json=body, headers=AUTH)
    assert response.status_code == 200, response.text
    return response.json()


def _monitoring(client, **params):
    response = client.get("/v1/monitoring", params=params, headers=AUTH)
    assert response.status_code == 200, response.text
    return response.json()


def _orders(make_order, n):
    rng = np.random.default_rng(7)
    customers = ["13094", "12957", "17850", "14911", "15311"]
    return [
        make_order(
            f"M{i:03d}",
            customer_id=customers[i % len(customers)],
            created_at=f"2011-07-{1 + i % 28:02d}T{8 + i % 10:02d}:00:00",
            lines=[("84946", float(rng.integers(1, 400)), float(rng.uniform(0.3, 30.0)))],
        )
        for i in range(n)
    ]


def test_monitoring_matches_an_independent_computation(service, trained, make_order):
    stores = trained["stores"][:3]
    first = _post(service, "/v1/forecast", {"series_ids": stores, "origin": ORIGIN})
    second = _post(service, "/v1/forecast", {"series_ids": stores[:1], "origin": "2015-06-08", "horizon": 10})
    rng = np.random.default_rng(3)
    days = pd.date_range("2015-06-06", periods=10, freq="D")  # steps 11..14 of the first answer stay pending
    actuals = [
        {"series_id": s, "ds": str(d.date()), "y": float(rng.integers(3000, 9000))}
        for s in stores
        for d in days
    ]
    actuals[14]["open"], actuals[14]["y"] = 0, 0.0  # a closed day (2nd store) is not scored
    _post(service, "/v1/actuals", {"actuals": actuals})
    truth = {(a["series_id"], a["ds"]): a for a in actuals}
    rows = []
    for answer in (first, second):
        for series in answer["series"]:
            for p in series["points"]:
                a = truth.get((series["series_id"], p["ds"][:10]))
                if a is not None and a.get("open", 1) == 1:
                    rows.append((a["y"], p["yhat"], p["yhat_lo"], p["yhat_hi"]))
    y, yhat, lo, hi = (np.array(c, dtype="float64") for c in zip(*rows, strict=True))

    orders = _orders(make_order, 40)
    scored = _post(service, "/v1/orders/score?explain=none", {"orders": orders})["results"]
    labels = [int(i % 4 == 0 or i % 7 == 0) for i in range(len(orders))]
    _post(
        service,
        "/v1/events",
        {
            "labels": [
                {"order_id": o["order_id"], "label": lab, "labeled_at": "2011-08-01T00:00:00"}
                for o, lab in zip(orders, labels, strict=True)
            ]
        },
    )
    scores = np.array([r["score"] for r in scored])

    out = _monitoring(service)
    f, a = out["forecast"], out["anomaly"]
    assert f["matched_steps"] == len(y) == 3 * 10 - 1 + 7  # 3 series x 10 days - 1 closed, + 7 of the 2nd
    assert abs(f["wape"] - np.abs(yhat - y).sum() / y.sum()) < 1e-6
    assert abs(f["bias"] - (yhat - y).sum() / y.sum()) < 1e-6
    assert abs(f["coverage"] - np.mean((y >= lo) & (y <= hi))) < 1e-6
    assert f["answered_steps"] == 3 * 14 + 10 and f["closed_steps"] == 1
    assert f["pending_steps"] == f["answered_steps"] - f["matched_steps"] - 1
    assert a["matched_orders"] == 40 and a["pending_orders"] == 0
    assert abs(a["auprc"] - average_precision_score(labels, scores)) < 1e-6
    assert abs(a["base_rate"] - np.mean(labels)) < 1e-6
    threshold = scored[0]["threshold"]
    flagged = scores >= threshold
    positives = np.array(labels) == 1
    if flagged.any():
        assert abs(a["precision"] - (flagged & positives).sum() / flagged.sum()) < 1e-6
    assert abs(a["recall"] - (flagged & positives).sum() / positives.sum()) < 1e-6


def test_by_step_splits_the_answers_by_horizon_step(service, trained):
    store = trained["stores"][0]
    answer = _post(service, "/v1/forecast", {"series_id": store, "origin": ORIGIN})
    points = answer["series"][0]["points"]
    _post(
        service,
        "/v1/actuals",
        {"actuals": [{"series_id": store, "ds": p["ds"][:10], "y": 5000.0} for p in points[:3]]},
    )
    by_step = {s["step"]: s for s in _monitoring(service)["forecast"]["by_step"]}
    assert sorted(by_step) == list(range(1, 15))
    for step in (1, 2, 3):
        expected = abs(points[step - 1]["yhat"] - 5000.0) / 5000.0
        assert by_step[step]["matched_steps"] == 1 and abs(by_step[step]["wape"] - expected) < 1e-9
    assert by_step[4]["matched_steps"] == 0 and by_step[4]["wape"] is None


def test_the_served_models_references_and_profiles_are_recorded_at_load(service, trained):
    out = _monitoring(service)
    assert out["forecast"]["model"] is None  # nothing answered yet
    _post(service, "/v1/forecast", {"series_id": trained["stores"][0], "origin": ORIGIN})
    out = _monitoring(service)
    backtest = trained["forecast"]["metrics"]["backtest_wape"]
    assert abs(out["forecast"]["backtest_wape"] - backtest) < 1e-6
    drift = out["drift"]["forecast"]
    assert drift["available"] is True and "promo" in drift["features"]


def test_bad_query_parameters_are_422_with_the_fix(service):
    cases = [
        ({"since": "2026-02-01", "until": "2026-01-01"}, "since"),
        ({"since": "yesterday"}, "since"),
        ({"model": "a/b/c"}, "model"),
        ({"model": "name/"}, "model"),
        ({"model": "bad\x00name"}, "model"),
    ]
    for params, word in cases:
        response = service.get("/v1/monitoring", params=params, headers=AUTH)
        assert response.status_code == 422, (params, response.text)
        body = response.json()["error"]
        assert body["code"] == "invalid_request" and word in body["message"]


def test_the_model_filter_keeps_one_model(service, trained, make_order):
    _post(service, "/v1/forecast", {"series_id": trained["stores"][0], "origin": ORIGIN})
    _post(service, "/v1/orders/score", make_order("F1"))
    name = service.app.state.models.snapshot().get("anomaly").name
    out = _monitoring(service, model=name)
    assert out["anomaly"]["scored_orders"] == 1 and out["forecast"]["answered_steps"] == 0
    version = service.app.state.models.snapshot().get("anomaly").version
    assert _monitoring(service, model=f"{name}/{version}")["anomaly"]["scored_orders"] == 1
    assert _monitoring(service, model=f"{name}/999")["anomaly"]["scored_orders"] == 0


def test_aggregate_forecasts_are_not_waiting_for_actuals(service, trained):
    store = trained["stores"][0]
    out = _post(service, "/v1/forecast", {"series_ids": [store, "total"], "origin": ORIGIN, "horizon": 3})
    assert [s["series_id"] for s in out["series"]] == [store, "total"]
    f = _monitoring(service)["forecast"]
    assert f["answered_steps"] == 3 and f["pending_steps"] == 3  # the store's steps; "total" gets no actuals
