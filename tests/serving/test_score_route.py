"""POST /v1/orders/score with the real anomaly model trained on data/sample (see conftest ``trained``)."""

import json

import pandas as pd
import pytest

from serving.schemas.orders import OrderIn, ScoreBatchOut, ScoredOrder
from serving.services.scoring import anomaly_smoke_check, orders_to_lines

AUTH = {"X-API-Key": "test-key"}
URL = "/v1/orders/score"


def _score(client, body, **params):
    response = client.post(URL, json=body, headers=AUTH, params=params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    out = response.json()
    # the route encodes its body itself (no response validation at run time): hold it to the documented schema
    schema = ScoreBatchOut if "orders" in body else ScoredOrder
    assert schema.model_validate(out).model_dump(mode="json") == out
    return out


def _features(client, decision_id):
    return client.get(f"/v1/decisions/{decision_id}", headers=AUTH).json()["features"]


# ---------------------------------------------------------------------------------------------- answers
def test_one_order_gets_a_score_flag_threshold_model_and_decision_id(service, make_order, served_models):
    out = _score(service, make_order("N1"))
    model = served_models["anomaly"]
    assert out["order_id"] == "N1"
    assert 0.0 <= out["score"] <= 1.0
    assert out["threshold"] == pytest.approx(model.model.model.threshold_)
    assert out["flagged"] == (out["score"] >= out["threshold"])
    assert out["model"] == {"name": "svc-anomaly", "version": model.version, "alias": "champion"}
    assert len(out["decision_id"]) == 36 and out["unknown"] == {}


RISKY_LINES = [("84946", 72, 1.06), ("22791", 72, 1.06), ("22423", 4, 12.75)]
"""Customer 13094 had exceptions on 5 of its 7 earlier orders, on orders of SKUs 84946 and 22791."""


def test_flagged_orders_get_reason_sentences_and_the_others_none(service, make_order):
    # customer 13094 orders again two SKUs it had exceptions on: flagged; a first-time guest order is not
    out = _score(
        service,
        {
            "orders": [
                make_order("N1", lines=RISKY_LINES),
                make_order("G1", customer_id=None, lines=[("22423", 1, 12.75)]),
            ]
        },
    )
    flagged, guest = out["results"]
    assert flagged["flagged"] and not guest["flagged"]
    assert guest["reasons"] == []
    top = flagged["reasons"][0]
    assert set(top) == {"feature", "value", "contribution", "text"}
    assert top["feature"] == "customer_sku_prior_exceptions" and top["value"] == 2
    assert top["text"].startswith("customer had exceptions before on 2 SKUs of this order")
    assert top["contribution"] > 0 and top["text"].endswith(f"(+{top['contribution']:.2f})")


def test_explain_all_gives_reasons_for_every_order_and_none_for_no_order(service, make_order):
    body = {"orders": [make_order("N1"), make_order("G1", customer_id=None, lines=[("22423", 1, 12.75)])]}
    assert all(r["reasons"] for r in _score(service, body, explain="all")["results"])
    assert not any(r["reasons"] for r in _score(service, body, explain="none")["results"])


def test_batch_results_follow_request_order_with_counts(service, make_order):
    body = {
        "orders": [make_order("B", created_at="2011-07-03T10:00:00"), make_order("A", customer_id="12957")]
    }
    out = _score(service, body)
    assert [r["order_id"] for r in out["results"]] == ["B", "A"]
    assert out["n_orders"] == 2 and out["n_flagged"] == sum(r["flagged"] for r in out["results"])


def test_orders_of_one_batch_see_the_earlier_ones(service, make_order):
    alone = _score(service, make_order("LATER", created_at="2011-07-05T10:00:00"))
    together = _score(
        service,
        {
            "orders": [
                make_order("EARLIER", created_at="2011-07-02T10:00:00"),
                make_order("LATER", created_at="2011-07-05T10:00:00"),
            ]
        },
    )["results"][1]
    before = _features(service, alone["decision_id"])["customer_prior_orders"]
    assert _features(service, together["decision_id"])["customer_prior_orders"] == before + 1


def test_unknown_country_is_scored_as_missing_and_reported(service, make_order):
    known = _score(service, make_order("N1"))
    unknown = _score(service, make_order("N1", country="Atlantis"))
    assert known["unknown"] == {} and unknown["unknown"] == {"country": "Atlantis"}
    assert 0.0 <= unknown["score"] <= 1.0
    assert _features(service, known["decision_id"])["order_country"] == "United Kingdom"
    assert _features(service, unknown["decision_id"])["order_country"] is None


def test_api_scores_and_reasons_equal_the_cli_for_the_same_orders_and_history(
    service, make_order, trained, tmp_path, monkeypatch
):
    from orderpulse.jobs.anomaly import score_orders

    orders = [
        make_order("N1", lines=[("84946", 72, 1.06), ("84992", 24, 0.55)]),
        make_order(
            "N2",
            customer_id=None,
            created_at="2011-07-02T09:00:00",
            lines=[("85123A", 6, 2.55)],
            country="France",
        ),
        make_order("N3", customer_id="12957", created_at="2011-07-03T12:00:00", lines=[("84992", 1000, 0.5)]),
    ]
    api = _score(service, {"orders": orders}, explain="all")["results"]
    lines = pd.DataFrame(orders_to_lines([OrderIn.model_validate(o) for o in orders])).assign(
        country=[o["country"] for o in orders for _ in o["lines"]]
    )
    lines.to_csv(tmp_path / "orders.csv", index=False)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", trained["tracking_uri"])
    score_orders(
        "models:/svc-anomaly@champion",
        tmp_path / "orders.csv",
        tmp_path / "scores.csv",
        "2011-07-01",
        "2011-08-01",
        reasons="all",
    )
    cli = pd.read_csv(
        tmp_path / "scores.csv", dtype={"order_id": str}, float_precision="round_trip"
    ).set_index("order_id")
    for result in api:
        assert result["score"] == cli.loc[result["order_id"], "score"]
        assert result["reasons"] == json.loads(cli.loc[result["order_id"], "reasons"])


# ---------------------------------------------------------------------------------------------- records
def test_every_decision_is_recorded_with_input_features_output_and_model(service, make_order):
    out = _score(service, {"orders": [make_order("N1"), make_order("N2", customer_id="12957")]})
    for result in out["results"]:
        record = service.get(f"/v1/decisions/{result['decision_id']}", headers=AUTH).json()
        assert record["kind"] == "score" and record["model_name"] == "svc-anomaly"
        assert record["model_version"] == result["model"]["version"]
        assert record["input"]["order_id"] == result["order_id"] and record["input"]["lines"]
        assert (
            record["output"]["score"] == result["score"] and record["output"]["reasons"] == result["reasons"]
        )
        assert record["features"]["order_n_lines"] == 1
    assert service.app.state.audit.count() == 2


def test_scores_and_flags_are_exported_as_metrics(service, make_order):
    out = _score(
        service,
        {
            "orders": [
                make_order("N1", lines=RISKY_LINES),
                make_order("G1", customer_id=None, lines=[("22423", 1, 12.75)]),
            ]
        },
    )
    assert out["n_flagged"] == 1
    text = service.get("/metrics").text
    version = out["model"]["version"]
    assert f'orderpulse_orders_scored_total{{model_version="{version}"}} 2.0' in text
    assert f'orderpulse_orders_flagged_total{{model_version="{version}"}} {float(out["n_flagged"])}' in text
    assert f'orderpulse_anomaly_score_count{{model_version="{version}"}} 2.0' in text


def test_ids_sent_as_whole_floats_find_the_same_history_and_are_counted(service, make_order):
    plain = _score(service, make_order("N1", lines=RISKY_LINES), explain="all")
    floats = _score(
        service,
        {
            "orders": [
                make_order("G1", customer_id=None, lines=[("22423", 1, 12.75)]),
                make_order("N1", customer_id="13094.0", lines=RISKY_LINES),
            ]
        },
        explain="all",
    )["results"][1]
    assert floats["order_id"] == "N1"  # answered with the id as sent
    assert floats["score"] == plain["score"] and floats["reasons"] == plain["reasons"]
    assert _features(service, floats["decision_id"])["customer_prior_orders"] == 7
    text = service.get("/metrics").text
    # the customer on 3 lines
    assert 'orderpulse_request_ids_whole_float_repaired_total{request="score"} 3.0' in text
    assert 'orderpulse_request_ids_whole_float_repaired_total{request="events"} 0.0' in text


def test_two_orders_of_a_batch_that_the_id_rule_makes_one_are_422(service, make_order):
    body = {"orders": [make_order("7.0"), make_order("7"), make_order("8")]}
    response = service.post(URL, json=body, headers=AUTH)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["details"] == {"merged_order_ids": {"7": ["7.0", "7"]}}
    assert "'7.0' and '7' are '7'. Send each order once" in error["message"]


# ---------------------------------------------------------------------------------------------- bad input
def _line(**change):
    return [{"sku": "84946", "quantity": 72, "unit_price": 1.06, **change}]


BAD_ORDERS = {
    "nan_quantity": ({"lines": "NaN_QUANTITY"}, ["lines", 0, "quantity"], "finite number"),
    "inf_price": ({"lines": "INF_PRICE"}, ["lines", 0, "unit_price"], "finite number"),
    "negative_quantity": (
        {"lines": _line(quantity=-3)},
        ["lines", 0, "quantity"],
        "greater than or equal to 0.001: a cancellation or return is not an order; report it as a label",
    ),
    "zero_quantity": (
        {"lines": _line(quantity=0)},
        ["lines", 0, "quantity"],
        "greater than or equal to 0.001: a cancellation",
    ),
    "tiny_quantity": (
        {"lines": _line(quantity=0.0001)},
        ["lines", 0, "quantity"],
        "greater than or equal to 0.001",
    ),
    "negative_price": (
        {"lines": _line(unit_price=-0.5)},
        ["lines", 0, "unit_price"],
        "greater than or equal to 0",
    ),
    "empty_lines": ({"lines": []}, ["lines"], "at least 1 item"),
    "unparseable_created_at": ({"created_at": "yesterday-ish"}, ["created_at"], "valid datetime"),
    "missing_sku": ({"lines": [{"quantity": 1, "unit_price": 1}]}, ["lines", 0, "sku"], "Field required"),
}


@pytest.mark.parametrize("kind", list(BAD_ORDERS))
def test_invalid_order_is_422_with_the_field_and_never_500(service, make_order, kind):
    change, loc, message = BAD_ORDERS[kind]
    order = make_order("BAD")
    body = json.dumps({**order, **change})
    body = body.replace('"NaN_QUANTITY"', '[{"sku": "x", "quantity": NaN, "unit_price": 1}]')
    body = body.replace('"INF_PRICE"', '[{"sku": "x", "quantity": 1, "unit_price": Infinity}]')
    response = service.post(URL, content=body, headers={**AUTH, "Content-Type": "application/json"})
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_request"
    assert any(d["loc"] == ["body", "order", *loc] and message in d["msg"] for d in error["details"]), error


def test_repeated_order_id_in_a_batch_is_422(service, make_order):
    response = service.post(URL, json={"orders": [make_order("A"), make_order("A")]}, headers=AUTH)
    assert response.status_code == 422
    assert "order_id must be unique within one request" in response.json()["error"]["message"]


def test_malformed_json_is_422(service):
    response = service.post(
        URL, content=b'{"order_id": "A", "lines": [', headers={**AUTH, "Content-Type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["type"] == "json_invalid"


def test_batch_over_the_limit_is_413(make_service, make_order):
    client = make_service(max_batch_orders=2)
    response = client.post(URL, json={"orders": [make_order(f"O{i}") for i in range(3)]}, headers=AUTH)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "batch_too_large"
    assert client.app.state.audit.count() == 0


def test_scoring_without_an_anomaly_model_is_503(make_service, make_order):
    client = make_service(kinds=("forecast",))
    response = client.post(URL, json=make_order("N1"), headers=AUTH)
    assert response.status_code == 503 and response.json()["error"]["code"] == "model_not_loaded"


# ---------------------------------------------------------------------------------------------- smoke check
def test_anomaly_smoke_check_passes_the_real_model_and_refuses_an_empty_snapshot(served_models):
    import dataclasses
    from types import SimpleNamespace

    real = served_models["anomaly"]
    anomaly_smoke_check(real)
    empty = SimpleNamespace(
        model=real.model.model, tables={"orders": real.model.tables["orders"].iloc[:0], "labels": None}
    )
    with pytest.raises(ValueError, match="orders snapshot is empty"):
        anomaly_smoke_check(dataclasses.replace(real, model=empty))


@pytest.mark.parametrize("labels", ["none_for_the_newest_orders", "empty_table", "no_table"])
def test_anomaly_smoke_check_needs_no_labels(served_models, labels):
    """A model trained while the newest orders' outcomes are unknown (labels arrive weeks later) is served."""
    import dataclasses
    from types import SimpleNamespace

    real = served_models["anomaly"]
    orders, all_labels = real.model.tables["orders"], real.model.tables["labels"]
    newest = orders["order_id"].tail(2_000).unique()
    snapshot_labels = {
        "none_for_the_newest_orders": all_labels.loc[~all_labels["order_id"].isin(newest)],
        "empty_table": all_labels.iloc[:0],
        "no_table": None,
    }[labels]
    if snapshot_labels is not None:
        assert not snapshot_labels["order_id"].isin(newest).any()
    unlabelled = SimpleNamespace(model=real.model.model, tables={"orders": orders, "labels": snapshot_labels})
    anomaly_smoke_check(dataclasses.replace(real, model=unlabelled))  # raised DataValidationError before


def test_anomaly_pyfunc_scores_with_an_empty_labels_snapshot(served_models):
    from training.anomaly.models import AnomalyPyfunc

    real = served_models["anomaly"].model
    wrapper = AnomalyPyfunc()
    wrapper.model = real.model
    wrapper.tables = {"orders": real.tables["orders"], "labels": real.tables["labels"].iloc[:0]}
    last = real.tables["orders"].tail(1)
    out = wrapper.predict(None, last)
    assert list(out["order_id"]) == [str(last["order_id"].iloc[0])]
    assert 0.0 <= float(out["score"].iloc[0]) <= 1.0
