"""The one place that turns exceptions into HTTP responses, all with the same JSON body.

Every error response has the body ``{"error": {"code": str, "message": str, "details": ...}}`` and carries
the request's ``X-Request-ID`` header. The mapping:

=====================================================  ======  ============================================
exception                                              status  code
=====================================================  ======  ============================================
``ApiError`` subclasses below                          its own  its own
FastAPI ``RequestValidationError`` (request schema,    422     ``invalid_request`` (details: field errors)
a body that is not JSON or not UTF-8 included)
``pydantic.ValidationError`` raised inside a route     422     ``invalid_request``
``features.errors.DataValidationError``                400     ``data_validation`` (details: the problems)
``features.errors.NotFittedError``                     503     ``model_not_fitted``
other ``OrderPulseError`` / ``ValueError``             400     ``invalid_input`` / ``invalid_value``
Starlette ``HTTPException`` (404 route, 405 ...)       same    by status (``not_found``, ...)
anything else (a bug)                                  500     ``internal_error``: no stack trace in the
                                                               body; logged with the request id
=====================================================  ======  ============================================

One status per kind of mistake, on every route: 422 = the request does not match the schema (unparseable
body, wrong type, out-of-bounds value); 400 = it matches the schema but cannot be used with the served model
(covariates missing for the horizon, a date off the model's grid); 401 / 403 = no / a wrong API key; 404 = the
named series or decision does not exist; 413 = too large; 503 = not ready (model or store missing). Every route
documents its statuses in OpenAPI with the ``ErrorBody`` schema (``error_responses``).

``ApiError`` subclasses Starlette's ``HTTPException`` so that FastAPI passes it through unchanged even when it
is raised while the body is being read (the streamed body-size limit).
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

import pydantic
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from features.errors import DataValidationError, NotFittedError, OrderPulseError
from serving._json import jsonable

__all__ = [
    "ApiError",
    "ErrorBody",
    "ErrorInfo",
    "error_responses",
    "AuthenticationError",
    "PermissionDeniedError",
    "NotFoundError",
    "PayloadTooLargeError",
    "ModelNotLoadedError",
    "ServiceNotReadyError",
    "REQUEST_ID_SCOPE_KEY",
    "check_batch_size",
    "error_body",
    "error_response",
    "install_error_handlers",
]

REQUEST_ID_SCOPE_KEY = "orderpulse.request_id"
_log = logging.getLogger("orderpulse.serving.errors")

_CODES_BY_STATUS = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    429: "too_many_requests",
    503: "unavailable",
}


_PARSE_ERROR = "There was an error parsing the body"  # FastAPI's 400 for a body it cannot decode (not UTF-8)

_RESPONSE_DESCRIPTIONS = {
    400: "The request matches the schema but cannot be used with the served model (the message says why)",
    401: "No API key was sent (X-API-Key header or Authorization: Bearer)",
    403: "The API key is not valid for this service",
    404: "The named resource (series, decision) does not exist",
    413: "The body or the batch is larger than the configured limit",
    422: "The request does not match the schema: unparseable body, wrong type, value out of bounds",
    503: "Not ready: a required model or the audit/event store is not available (retry later)",
}


class ErrorInfo(BaseModel):
    code: str = Field(description="stable machine-readable code", examples=["invalid_request"])
    message: str = Field(description="what was wrong, the value received and how to fix it")
    details: Any = Field(None, description="structured details (field errors, limits ...)")


class ErrorBody(BaseModel):
    """The body of every error response."""

    error: ErrorInfo


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` entries for ``statuses``, each with the shared ``ErrorBody`` schema."""
    return {
        status: {"model": ErrorBody, "description": _RESPONSE_DESCRIPTIONS[status]} for status in statuses
    }


class ApiError(StarletteHTTPException):
    """An error the service answers deliberately: a status, a stable ``code``, a message and details."""

    status_code: int = 400
    code: str = "bad_request"

    def __init__(
        self,
        message: str,
        *,
        details: Any = None,
        status_code: int | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(status_code=status_code or type(self).status_code, detail=message, headers=headers)
        self.code = code or type(self).code
        self.message = message
        self.details = details


class AuthenticationError(ApiError):
    """401: no credentials were sent."""

    status_code = 401
    code = "missing_api_key"

    def __init__(self, message: str, **kwargs: Any) -> None:
        headers = {"WWW-Authenticate": 'Bearer realm="orderpulse", ApiKey header="X-API-Key"'}
        super().__init__(message, headers=headers, **kwargs)


class PermissionDeniedError(ApiError):
    """403: credentials were sent but are not valid."""

    status_code = 403
    code = "invalid_api_key"


class NotFoundError(ApiError):
    """404: the named resource (a decision id, ...) does not exist."""

    status_code = 404
    code = "not_found"


class PayloadTooLargeError(ApiError):
    """413: the body or the batch is larger than the configured limit."""

    status_code = 413
    code = "payload_too_large"


class ModelNotLoadedError(ApiError):
    """503: a route needs a model kind that is not loaded (yet)."""

    status_code = 503
    code = "model_not_loaded"

    def __init__(self, kind: str, *, reason: str | None = None) -> None:
        message = (
            f"no {kind} model is loaded"
            + (f" ({reason})" if reason else "")
            + ("; register one under the served alias and POST /v1/admin/reload, or check GET /ready")
        )
        super().__init__(message, details={"kind": kind, "reason": reason})
        self.kind = kind


class ServiceNotReadyError(ApiError):
    """503 from /ready: required models (or the audit store) are missing."""

    status_code = 503
    code = "not_ready"


def check_batch_size(n_orders: int, max_batch_orders: int) -> None:
    """Raise 413 when a request carries more orders than ``max_batch_orders`` (routes call this first)."""
    if n_orders > max_batch_orders:
        raise PayloadTooLargeError(
            f"the request carries {n_orders} orders, more than the limit of {max_batch_orders}: split it into "
            f"batches of at most {max_batch_orders} orders (or raise ORDERPULSE_MAX_BATCH_ORDERS)",
            details={"n_orders": n_orders, "max_batch_orders": max_batch_orders},
            code="batch_too_large",
        )


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    """The stable error body ``{"error": {"code", "message", "details"}}``."""
    return {"error": {"code": code, "message": message, "details": jsonable(details)}}


def error_response(
    request_or_scope: Request | dict[str, Any] | None,
    status_code: int,
    code: str,
    message: str,
    details: Any = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """A JSON error response with the stable body and the request id header."""
    headers = dict(headers or {})
    scope = request_or_scope.scope if isinstance(request_or_scope, Request) else request_or_scope
    request_id = (scope or {}).get(REQUEST_ID_SCOPE_KEY)
    if request_id:
        headers.setdefault("X-Request-ID", request_id)
    return JSONResponse(error_body(code, message, details), status_code=status_code, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    """Register every handler of the table in the module docstring on ``app``."""
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _request_validation_error)
    app.add_exception_handler(pydantic.ValidationError, _pydantic_validation_error)
    app.add_exception_handler(DataValidationError, _data_validation_error)
    app.add_exception_handler(NotFittedError, _not_fitted_error)
    app.add_exception_handler(OrderPulseError, _orderpulse_error)
    app.add_exception_handler(ValueError, _value_error)
    app.add_exception_handler(StarletteHTTPException, _http_exception)
    app.add_exception_handler(Exception, _unhandled_error)


# ---------------------------------------------------------------------------------------------- handlers
async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
    return error_response(request, exc.status_code, exc.code, exc.message, exc.details, exc.headers)


async def _request_validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    details = _field_errors(exc.errors())
    return error_response(request, 422, "invalid_request", _summarise(details), details)


async def _pydantic_validation_error(request: Request, exc: pydantic.ValidationError) -> JSONResponse:
    details = _field_errors(exc.errors(include_url=False))
    return error_response(request, 422, "invalid_request", _summarise(details), details)


async def _data_validation_error(request: Request, exc: DataValidationError) -> JSONResponse:
    details = [p.to_dict() for p in exc.problems]
    return error_response(request, 400, "data_validation", str(exc), details)


async def _not_fitted_error(request: Request, exc: NotFittedError) -> JSONResponse:
    _log.error("a served model is not fitted: %s", exc)
    return error_response(request, 503, "model_not_fitted", str(exc))


async def _orderpulse_error(request: Request, exc: OrderPulseError) -> JSONResponse:
    return error_response(request, 400, "invalid_input", str(exc))


async def _value_error(request: Request, exc: ValueError) -> JSONResponse:
    return error_response(request, 400, "invalid_value", str(exc))


async def _http_exception(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    status = exc.status_code
    if (
        status == 400 and exc.detail == _PARSE_ERROR
    ):  # a body that is not UTF-8: a schema mistake like bad JSON
        cause = exc.__cause__
        message = f"the request body could not be decoded ({type(cause).__name__ if cause else 'error'}): send UTF-8 JSON"
        details = [{"loc": ["body"], "msg": message, "type": "body_decode"}]
        return error_response(request, 422, "invalid_request", message, details)
    code = _CODES_BY_STATUS.get(status, "http_error")
    phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "error"
    if isinstance(exc.detail, str) and exc.detail and exc.detail != phrase:
        message, details = exc.detail, None
    elif status == 404:
        message, details = f"no route {request.method} {request.url.path}: see /docs for the routes", None
    elif status == 405:
        message, details = f"method {request.method} is not allowed on {request.url.path}", None
    else:
        message, details = phrase, None if isinstance(exc.detail, str) else exc.detail
    headers = dict(exc.headers) if exc.headers else None
    return error_response(request, status, code, message, details, headers)


async def _unhandled_error(request: Request, exc: Exception) -> JSONResponse:
    request_id = request.scope.get(REQUEST_ID_SCOPE_KEY, "-")
    _log.error(
        "unhandled error on %s %s (request id %s)", request.method, request.url.path, request_id, exc_info=exc
    )
    return error_response(
        request,
        500,
        "internal_error",
        f"internal server error; it is logged on the server under request id {request_id}",
    )


# ---------------------------------------------------------------------------------------------- helpers
def _field_errors(errors: Any) -> list[dict[str, Any]]:
    """Keep each error's location, message and type, plus the value received when it is a short scalar."""
    out = []
    for err in errors:
        item: dict[str, Any] = {
            "loc": [str(p) if not isinstance(p, int) else p for p in err.get("loc", ())],
            "msg": err.get("msg", ""),
            "type": err.get("type", ""),
        }
        value = err.get("input")
        short_scalar = (
            value is None
            or isinstance(value, bool | int | float)
            or (isinstance(value, str) and len(value) <= 200)
        )
        if "input" in err and short_scalar and err.get("type") != "missing":
            item["input"] = value
        out.append(item)
    return out


def _summarise(details: list[dict[str, Any]]) -> str:
    n = len(details)
    shown = "; ".join(
        ".".join(str(p) for p in d["loc"])
        + f": {d['msg']}"
        + (f" (got {d['input']!r})" if "input" in d else "")
        for d in details[:3]
    )
    more = f"; and {n - 3} more (see details)" if n > 3 else ""
    return f"the request does not match the schema ({n} error{'s' if n != 1 else ''}): {shown}{more}"
