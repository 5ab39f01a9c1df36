"""End to end: ``orderpulse serve`` in its own process (real uvicorn, real models from the registry)."""

import os
import signal
import socket
import sqlite3
import subprocess
import sys

import httpx
import pytest

from serving.auth import hash_api_key

KEY = "e2e-secret-key"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(trained, tmp_path, wait_for_http):
    port = _free_port()
    env = {
        **os.environ,
        "ORDERPULSE_PROFILE": "prod",
        "ORDERPULSE_API_KEYS": hash_api_key(KEY),
        "ORDERPULSE_TRACKING_URI": trained["tracking_uri"],
        "ORDERPULSE_MODEL_NAME": trained["name"],
        "ORDERPULSE_MLRUNS_DIR": str(tmp_path / "mlruns"),
        "ORDERPULSE_EVENTS_REFRESH_INTERVAL_S": "1",
        "ORDERPULSE_N_JOBS": "1",
    }
    env.pop("MLFLOW_TRACKING_URI", None)
    log = open(tmp_path / "server.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [sys.executable, "-m", "orderpulse.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(proc, f"{base}/health", tmp_path / "server.log")
        yield {
            "base": base,
            "proc": proc,
            "audit": tmp_path / "mlruns" / "audit.db",
            "log": tmp_path / "server.log",
        }
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:  # pragma: no cover - a hung server must not hang the suite
                proc.kill()
                proc.wait()
        log.close()


def test_orderpulse_serve_answers_health_ready_and_a_recorded_score(server, make_order):
    base = server["base"]
    assert httpx.get(f"{base}/health").json() == {"status": "ok"}
    ready = httpx.get(f"{base}/ready").json()
    assert ready["status"] == "ready" and set(ready["models"]) == {"forecast", "anomaly"}
    assert httpx.post(f"{base}/v1/orders/score", json=make_order("E2E")).status_code == 401
    response = httpx.post(
        f"{base}/v1/orders/score", json=make_order("E2E"), headers={"X-API-Key": KEY}, timeout=30
    )
    assert response.status_code == 200, response.text
    scored = response.json()
    assert 0.0 <= scored["score"] <= 1.0 and scored["model"]["name"] == "svc-anomaly"
    with sqlite3.connect(server["audit"]) as db:
        rows = db.execute(
            "SELECT kind, model_name FROM decisions WHERE decision_id = ?", (scored["decision_id"],)
        ).fetchall()
    assert rows == [("score", "svc-anomaly")]
    server["proc"].send_signal(signal.SIGINT)
    assert server["proc"].wait(timeout=30) == 0
    assert b"model anomaly: loaded" in server["log"].read_bytes()
