"""Tests of serving/cli.py (named apart from tests/orderpulse/test_cli.py)."""

import json

import pytest
from fastapi import FastAPI
from typer.testing import CliRunner

from serving import cli
from serving.auth import hash_api_key
from serving.settings import Settings


@pytest.fixture
def uvicorn_calls(monkeypatch):
    import uvicorn

    calls = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.append((app, kw)))
    return calls


def test_serve_with_one_worker_runs_the_app_object(uvicorn_calls, make_settings):
    cli.serve("127.0.0.1", 8123, 1, settings=make_settings())
    ((app, kw),) = uvicorn_calls
    assert isinstance(app, FastAPI)
    assert (kw["host"], kw["port"]) == ("127.0.0.1", 8123) and "workers" not in kw
    assert kw["timeout_keep_alive"] == 75.0  # above a load balancer's idle timeout


def test_serve_with_workers_uses_the_factory_and_exports_settings(make_settings, monkeypatch):
    import socket

    import uvicorn.supervisors

    for name in list(Settings().to_env()):
        monkeypatch.delenv(name, raising=False)
    settings = make_settings(api_keys="", max_batch_orders=77)  # dev without a key: one is generated
    import os

    runs = []

    class FakeSupervisor:
        def __init__(self, config, sockets):
            runs.append((config, sockets))

        def run(self):
            (sock,) = runs[-1][1]
            runs.append(sock.proto)

    monkeypatch.setattr(uvicorn.supervisors, "Multiprocess", FakeSupervisor)
    monkeypatch.setattr(os, "environ", dict(os.environ))  # keep the export inside this test
    cli.serve("127.0.0.1", 0, 2, settings=settings, print_generated_key=False)
    (config, _), proto = runs
    assert config.app == "serving.app:create_app_from_env"
    assert config.factory is True and config.workers == 2
    assert proto == socket.IPPROTO_TCP  # accepted connections get TCP_NODELAY from asyncio
    assert os.environ["ORDERPULSE_MAX_BATCH_ORDERS"] == "77"
    assert json.loads(os.environ["ORDERPULSE_API_KEYS"]) == [hash_api_key(settings.generated_api_key)]


def test_serve_prints_the_generated_dev_key(uvicorn_calls, make_settings, capsys):
    settings = make_settings(api_keys="")
    cli.serve(settings=settings)
    assert settings.generated_api_key in capsys.readouterr().err


def test_serve_refuses_zero_workers(make_settings):
    with pytest.raises(ValueError, match="workers must be >= 1, got 0"):
        cli.serve(workers=0, settings=make_settings())


def test_keys_hash_prints_the_sha256_of_the_argument_or_stdin():
    runner = CliRunner()
    assert runner.invoke(cli.keys_app, ["hash", "abc"]).output.strip() == hash_api_key("abc")
    assert runner.invoke(cli.keys_app, ["hash"], input="abc\n").output.strip() == hash_api_key("abc")


def test_keys_new_prints_a_key_and_its_hash():
    out = CliRunner().invoke(cli.keys_app, ["new"]).output.split()
    key, digest = out[1], out[3]
    assert hash_api_key(key) == digest
