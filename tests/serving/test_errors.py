import logging

import numpy as np
import pytest
from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from features.errors import DataValidationError, NotFittedError, Problem
from serving.errors import PayloadTooLargeError, check_batch_size
from serving.models import ModelSnapshot

router = APIRouter()


class Order(BaseModel):
    order_id: str
    quantity: float = Field(gt=0)


class Batch(BaseModel):
    orders: list[Order]


@router.post("/v1/test/orders")
def post_orders(batch: Batch) -> dict:
    check_batch_size(len(batch.orders), 2)
    return {"n": len(batch.orders)}


@router.post("/v1/test/raw")
async def post_raw(request: Request) -> dict:
    return {"n": len(await request.body())}


@router.get("/v1/test/data-validation")
def data_validation() -> dict:
    raise DataValidationError(
        [
            Problem(
                "orders",
                "quantity",
                "quantity <= 0",
                "send positive quantities",
                2,
                [{"row": 3, "quantity": -1.0, "unit_price": np.nan}],
            )
        ]
    )


@router.get("/v1/test/value-error")
def value_error() -> dict:
    raise ValueError("horizon must be in [1, 366], got 0")


@router.get("/v1/test/pydantic-error")
def pydantic_error() -> dict:
    Order(order_id="o1", quantity=-5)
    return {}


@router.get("/v1/test/not-fitted")
def not_fitted() -> dict:
    raise NotFittedError("forecaster is not fitted")


@router.get("/v1/test/no-model")
def no_model() -> dict:
    ModelSnapshot({}).get("anomaly")
    return {}


@router.get("/v1/test/bug")
def bug() -> dict:
    raise RuntimeError("secret internal detail")


@pytest.fixture
def client(make_client):
    return make_client(routers=(router,), raise_server_exceptions=False, max_body_bytes=2048)


def _error(response):
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}
    return body["error"]


def test_schema_error_is_422_with_field_details(client, fakes):
    r = client.post(
        "/v1/test/orders", json={"orders": [{"order_id": "o1", "quantity": "abc"}]}, headers=fakes.AUTH
    )
    assert r.status_code == 422
    err = _error(r)
    assert err["code"] == "invalid_request"
    assert err["details"] == [
        {
            "loc": ["body", "orders", 0, "quantity"],
            "msg": "Input should be a valid number, unable to parse string as a number",
            "type": "float_parsing",
            "input": "abc",
        }
    ]
    assert "body.orders.0.quantity" in err["message"] and "'abc'" in err["message"]


def test_malformed_json_is_422_not_500(client, fakes):
    r = client.post(
        "/v1/test/orders", content=b"{not json", headers={**fakes.AUTH, "Content-Type": "application/json"}
    )
    assert r.status_code == 422 and _error(r)["code"] == "invalid_request"


def test_pydantic_error_inside_a_route_is_422(client, fakes):
    r = client.get("/v1/test/pydantic-error", headers=fakes.AUTH)
    assert r.status_code == 422
    assert _error(r)["details"][0]["loc"] == ["quantity"]


def test_data_validation_error_is_400_with_problems(client, fakes):
    r = client.get("/v1/test/data-validation", headers=fakes.AUTH)
    assert r.status_code == 400
    err = _error(r)
    assert err["code"] == "data_validation"
    assert err["details"] == [
        {
            "table": "orders",
            "column": "quantity",
            "issue": "quantity <= 0",
            "n_rows": 2,
            "examples": [{"row": 3, "quantity": -1.0, "unit_price": None}],
            "fix": "send positive quantities",
        }
    ]
    assert "1 problem in the input" in err["message"]


def test_value_error_is_400_with_its_message(client, fakes):
    r = client.get("/v1/test/value-error", headers=fakes.AUTH)
    assert r.status_code == 400
    assert _error(r) == {
        "code": "invalid_value",
        "message": "horizon must be in [1, 366], got 0",
        "details": None,
    }


def test_not_fitted_model_is_503(client, fakes):
    r = client.get("/v1/test/not-fitted", headers=fakes.AUTH)
    assert r.status_code == 503 and _error(r)["code"] == "model_not_fitted"


def test_missing_model_is_503_naming_the_kind(client, fakes):
    r = client.get("/v1/test/no-model", headers=fakes.AUTH)
    assert r.status_code == 503
    err = _error(r)
    assert err["code"] == "model_not_loaded" and err["details"]["kind"] == "anomaly"
    assert "no anomaly model is loaded" in err["message"]


def test_bug_is_500_without_internals_and_logged_with_request_id(client, fakes, caplog):
    with caplog.at_level(logging.ERROR, logger="orderpulse.serving.errors"):
        r = client.get("/v1/test/bug", headers={**fakes.AUTH, "X-Request-ID": "req-500"})
    assert r.status_code == 500
    assert r.headers["X-Request-ID"] == "req-500"
    err = _error(r)
    assert err["code"] == "internal_error" and "req-500" in err["message"]
    assert "secret internal detail" not in r.text and "Traceback" not in r.text
    assert any("req-500" in rec.getMessage() and rec.exc_info for rec in caplog.records)


def test_unknown_route_is_404_json(client, fakes):
    r = client.get("/v1/nothing-here", headers=fakes.AUTH)
    assert r.status_code == 404 and _error(r)["code"] == "not_found"


def test_wrong_method_is_405_json(client, fakes):
    r = client.delete("/v1/models", headers=fakes.AUTH)
    assert r.status_code == 405 and _error(r)["code"] == "method_not_allowed"


def test_body_over_limit_by_content_length_is_413(client, fakes):
    r = client.post("/v1/test/raw", content=b"x" * 4096, headers=fakes.AUTH)
    assert r.status_code == 413
    err = _error(r)
    assert err["code"] == "payload_too_large"
    assert err["details"] == {"max_body_bytes": 2048, "received_bytes": 4096}


def test_streamed_body_over_limit_is_413(client, fakes):
    def chunks():
        for _ in range(5):
            yield b"y" * 1000

    r = client.post("/v1/test/raw", content=chunks(), headers=fakes.AUTH)
    assert "content-length" not in {k.lower() for k in r.request.headers}
    assert r.status_code == 413
    assert _error(r)["code"] == "payload_too_large"


def test_streamed_body_under_limit_passes(client, fakes):
    r = client.post("/v1/test/raw", content=iter([b"a" * 1000, b"b" * 1000]), headers=fakes.AUTH)
    assert r.status_code == 200 and r.json() == {"n": 2000}


def test_batch_over_max_orders_is_413(client, fakes):
    orders = [{"order_id": f"o{i}", "quantity": 1} for i in range(3)]
    r = client.post("/v1/test/orders", json={"orders": orders}, headers=fakes.AUTH)
    assert r.status_code == 413
    err = _error(r)
    assert err["code"] == "batch_too_large"
    assert err["details"] == {"n_orders": 3, "max_batch_orders": 2}


def test_check_batch_size_names_the_limit_and_the_fix():
    with pytest.raises(
        PayloadTooLargeError,
        match=r"carries 1001 orders, more than the limit of 1000.*ORDERPULSE_MAX_BATCH_ORDERS",
    ):
        check_batch_size(1001, 1000)
    check_batch_size(1000, 1000)


def test_request_id_is_echoed_or_generated(client):
    assert client.get("/health", headers={"X-Request-ID": "abc-123"}).headers["X-Request-ID"] == "abc-123"
    generated = client.get("/health").headers["X-Request-ID"]
    assert len(generated) == 32
    unsafe = client.get("/health", headers={"X-Request-ID": "x" * 300}).headers["X-Request-ID"]
    assert unsafe != "x" * 300 and len(unsafe) == 32


def test_missing_field_has_no_received_value(client, fakes):
    r = client.post("/v1/test/orders", json={"orders": [{"order_id": "o1"}]}, headers=fakes.AUTH)
    assert r.status_code == 422
    assert _error(r)["details"] == [
        {"loc": ["body", "orders", 0, "quantity"], "msg": "Field required", "type": "missing"}
    ]
