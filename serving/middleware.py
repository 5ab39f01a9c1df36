"""Pure-ASGI middleware: request ids and the request body size limit.

(Pure ASGI rather than ``BaseHTTPMiddleware``: no extra task per request, and the body stays streamed.)
"""

from __future__ import annotations

import re
import uuid

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serving.errors import REQUEST_ID_SCOPE_KEY, PayloadTooLargeError, error_response

__all__ = ["RequestIdMiddleware", "BodySizeLimitMiddleware", "REQUEST_ID_HEADER"]

REQUEST_ID_HEADER = "X-Request-ID"
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:/+=@-]{1,128}$")


class RequestIdMiddleware:
    """Take the client's ``X-Request-ID`` (1-128 safe characters) or generate one; echo it on the response.

    The id is stored in the ASGI scope (``REQUEST_ID_SCOPE_KEY``) and in ``request.state.request_id``. An id
    that is not safe to log (too long, control characters...) is replaced by a generated one.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = Headers(scope=scope).get(REQUEST_ID_HEADER)
        request_id = given if given and _VALID_REQUEST_ID.match(given) else uuid.uuid4().hex
        scope[REQUEST_ID_SCOPE_KEY] = request_id
        scope.setdefault("state", {})["request_id"] = request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"x-request-id"]
                headers.append((b"x-request-id", request_id.encode("latin-1")))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_id)


class BodySizeLimitMiddleware:
    """Refuse request bodies over ``max_body_bytes`` with 413.

    A declared ``Content-Length`` over the limit is refused before the app runs; a body without one
    (chunked) is counted while it streams, and the read that crosses the limit raises
    ``PayloadTooLargeError``, which the error handlers turn into the same 413 body.
    """

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_body_bytes
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            exc = _too_large(int(declared), limit, declared=True)
            response = error_response(scope, 413, exc.code, exc.message, exc.details)
            await response(scope, receive, send)
            return

        received = 0

        async def receive_with_limit() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _too_large(received, limit, declared=False)
            return message

        await self.app(scope, receive_with_limit, send)


def _too_large(size: int, limit: int, *, declared: bool) -> PayloadTooLargeError:
    what = f"declares {size} bytes" if declared else f"streamed more than {limit} bytes ({size} so far)"
    return PayloadTooLargeError(
        f"the request body {what}, over the limit of {limit} bytes: send smaller batches "
        "(or raise ORDERPULSE_MAX_BODY_BYTES)",
        details={"max_body_bytes": limit, "received_bytes": size},
    )
