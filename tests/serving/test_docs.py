"""serving/docs.py: /docs and /redoc reference only assets the service itself serves (no CDN)."""

from __future__ import annotations

import re
import socket

import pytest

# what a browser fetches: src=/href= attributes and the spec's ``url: '...'`` in the Swagger UI script
ASSET = re.compile(r"""(?:\b(?:src|href)=|\burl:\s*)["']([^"']+)["']""", re.IGNORECASE)


@pytest.fixture
def offline(monkeypatch):
    """No outgoing connection: any attempt fails the test (the pages must not need one)."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args!r}")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)


@pytest.mark.parametrize(
    ("page", "assets"),
    [
        (
            "/docs",
            {"/static-docs/swagger-ui-bundle.js", "/static-docs/swagger-ui.css", "/static-docs/favicon.png"},
        ),
        ("/redoc", {"/static-docs/redoc.standalone.js", "/static-docs/favicon.png"}),
    ],
)
def test_docs_pages_reference_only_local_assets_and_serve_them(make_client, offline, page, assets):
    client = make_client()
    response = client.get(page)  # no API key: like FastAPI's own pages
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    html = response.text
    assert "cdn" not in html.lower() and "http://" not in html and "https://" not in html
    referenced = {m for m in ASSET.findall(html) if not m.startswith(("#", "data:"))}
    assert assets <= referenced
    assert all(ref.startswith("/") and not ref.startswith("//") for ref in referenced), referenced
    for ref in assets:
        asset = client.get(ref)
        assert asset.status_code == 200 and len(asset.content) > 1_000, ref
    assert client.get("/openapi.json").status_code == 200


def test_docs_pages_stay_out_of_the_openapi_schema(make_client):
    paths = make_client().get("/openapi.json").json()["paths"]
    assert not {"/docs", "/redoc", "/docs/oauth2-redirect"} & set(paths)
