"""API-key authentication: keys stored as SHA-256 hashes, checked in constant time against every stored hash.

A client sends its key as ``X-API-Key: <key>`` or ``Authorization: Bearer <key>``. No key -> 401 with a
``WWW-Authenticate`` challenge; a key that matches no stored hash -> 403. ``require_api_key`` is installed by
``create_app`` as an app-wide dependency, so every route (every ``/v1`` route the lead adds included) needs a
key except the paths in ``Settings.auth_exempt`` (default ``/health``, ``/ready``, ``/metrics``).

Keys are random (``generate_api_key``: 256 bits), so a plain SHA-256 is the right hash here: slow password
hashes exist to protect guessable secrets, and would cost every request milliseconds.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
from typing import Annotated

from fastapi import Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from serving.errors import AuthenticationError, PermissionDeniedError

__all__ = [
    "API_KEY_HEADER",
    "generate_api_key",
    "hash_api_key",
    "normalise_key_hash",
    "verify_api_key",
    "require_api_key",
]

API_KEY_HEADER = "X-API-Key"
_HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")
_log = logging.getLogger("orderpulse.serving.auth")

_api_key_header = APIKeyHeader(name=API_KEY_HEADER, auto_error=False, description="an OrderPulse API key")
_bearer = HTTPBearer(auto_error=False, description="an OrderPulse API key as a bearer token")


def generate_api_key() -> str:
    """A new random API key (256 bits, URL-safe, prefixed ``op_`` so it is never mistaken for a hash)."""
    return "op_" + secrets.token_urlsafe(32)


def hash_api_key(key: str) -> str:
    """The SHA-256 hex digest stored in ``ORDERPULSE_API_KEYS`` for ``key`` (what ``orderpulse keys hash`` prints)."""
    if not key:
        raise ValueError(
            "cannot hash an empty API key; pass the key itself (e.g. one from generate_api_key())"
        )
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def normalise_key_hash(value: str) -> str | None:
    """``'<64 hex>'`` or ``'sha256:<64 hex>'`` -> lower-case hex digest; anything else (a plain key) -> None."""
    text = value.strip()
    if text.lower().startswith("sha256:"):
        text = text[len("sha256:") :]
    return text.lower() if _HEX64.match(text) else None


def verify_api_key(key: str, hashes: tuple[str, ...] | list[str]) -> bool:
    """True when ``key`` hashes to one of ``hashes``; compares against all of them, in constant time each."""
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()
    matched = False
    for stored in hashes:
        matched |= hmac.compare_digest(digest, stored)
    return matched


async def require_api_key(
    request: Request,
    api_key: Annotated[str | None, Security(_api_key_header)] = None,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)] = None,
) -> None:
    """App-wide dependency: let exempt paths through, else demand a valid key (401 missing, 403 wrong)."""
    settings = request.app.state.settings
    route = request.scope.get("route")
    path = getattr(route, "path", None) or request.url.path
    if path in settings.auth_exempt:
        return
    key = api_key or (bearer.credentials if bearer is not None else None)
    if not key:
        raise AuthenticationError(
            f"missing API key: send it in the {API_KEY_HEADER} header (or as Authorization: Bearer <key>)"
        )
    if not verify_api_key(key, settings.api_keys):
        _log.warning("rejected an unknown API key on %s %s", request.method, path)
        raise PermissionDeniedError(
            f"the API key sent in {'the ' + API_KEY_HEADER + ' header' if api_key else 'the bearer token'} is not "
            "valid for this service: check it, or ask the operator to add its hash to ORDERPULSE_API_KEYS"
        )
