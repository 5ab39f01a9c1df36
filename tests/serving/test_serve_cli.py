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
    monkeypatch.setattr(
        uvicorn.Server,
        "run",
        lambda self, sockets=None: calls.append((self.config, [s.getsockname() for s in sockets])),
    )
    return calls


def test_serve_with_one_worker_runs_the_app_object_on_a_socket_bound_first(uvicorn_calls, make_settings):
    cli.serve("127.0.0.1", 0, 1, settings=make_settings())
    ((config, sockets),) = uvicorn_calls
    assert isinstance(config.app, FastAPI)
    assert (config.host, config.port, config.workers) == ("127.0.0.1", 0, 1)
    assert sockets[0][0] == "127.0.0.1"
    assert config.timeout_keep_alive == 75.0  # above a load balancer's idle timeout


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


# ------------------------------------------------------------------ busy port, workers dying with the master
def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve_process(port: int, workers: int, tmp_path, **popen):
    import os
    import subprocess
    import sys

    env = {
        **os.environ,
        "ORDERPULSE_API_KEYS": "busy-port-key",
        "ORDERPULSE_MLRUNS_DIR": str(tmp_path / "mlruns"),
        "ORDERPULSE_TRACKING_URI": f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}",
        "ORDERPULSE_GC_FREEZE_AT_STARTUP": "false",
    }
    argv = ["serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
    return subprocess.Popen([sys.executable, "-m", "orderpulse.cli", *argv], env=env, **popen)


@pytest.mark.parametrize("workers", [1, 2])
def test_serve_on_a_busy_port_exits_2_with_one_line(tmp_path, workers):
    import socket
    import subprocess

    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        proc = _serve_process(port, workers, tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        out, err = proc.communicate(timeout=120)
    lines = [ln for ln in err.decode().splitlines() if ln.strip()]
    assert proc.returncode == 2, err.decode()
    assert out == b""
    assert len(lines) == 1 and f"cannot listen on 127.0.0.1:{port}" in lines[0], lines
    assert "Traceback" not in err.decode()


@pytest.mark.skipif(not __import__("sys").platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux")
def test_workers_exit_when_the_master_is_killed_and_the_port_is_free_again(tmp_path):
    import signal
    import time

    import httpx
    import psutil

    port = _free_port()
    log = open(tmp_path / "serve.log", "wb")  # noqa: SIM115 - closed below
    proc = _serve_process(port, 2, tmp_path, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 120
        workers: list = []
        while len(workers) < 2 or not _answers(httpx, port):
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()[-3000:]
            assert time.monotonic() < deadline, (tmp_path / "serve.log").read_text()[-3000:]
            workers = [c for c in psutil.Process(proc.pid).children() if c.is_running()]
            time.sleep(0.3)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        gone, alive = psutil.wait_procs(workers, timeout=30)
        assert not alive, f"workers still running after the master died: {[p.pid for p in alive]}"
        assert cli.tcp_listen_socket("127.0.0.1", port).close() is None  # a restart can bind the port
    finally:
        for p in psutil.Process().children(recursive=True):
            p.kill()
        log.close()


def _answers(httpx, port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200
    except httpx.TransportError:
        return False
