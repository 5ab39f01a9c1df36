"""Benchmark: the service's resilience figures (issue 12), re-run on every change to serving.

    python benchmarks/resilience_bench.py [--clients 20] [--seconds 30] [--root DIR]

Trains the small models of ``serving_bench.py`` (into ``--root``, reused when present), then, with the audit
trail in SQLite (``synchronous=FULL``) and 2 uvicorn workers:

1. **reloads under load**: ``--clients`` clients score single orders for ``--seconds`` while
   ``POST /v1/admin/reload`` is called 10 times: errors, reloads that did not answer ``ok``, answered decisions
   missing from the audit trail;
2. **kill -9 of the master under load**: the same load, the master gets SIGKILL half-way: answered decisions
   missing from the audit trail, and seconds until the port can be bound again (the workers die with their
   master, ``serving/process.py``);
3. **registry down at start**: a tracking server that accepts connections and never answers, with the model
   cache of run 1 present: seconds until ``/ready`` answers 200 (``ORDERPULSE_REGISTRY_DEADLINE_S``).

Prints one JSON line with the three results; exits 1 when a decision was lost or an error was answered.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import sqlite3
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import serving_bench as sb  # noqa: E402  (the same training, service start and load client)


def _load(url: str, body: object, clients: int, seconds: float, out: dict) -> None:
    out.update(asyncio.run(sb._python_load(url, body, {"X-API-Key": sb.KEY}, clients, seconds)))


def _missing(audit_db: Path, decisions: list[str]) -> int:
    found = 0
    with sqlite3.connect(audit_db) as db:
        for i in range(0, len(decisions), 500):
            chunk = decisions[i : i + 500]
            found += db.execute(
                f"SELECT count(*) FROM decisions WHERE decision_id IN ({','.join('?' * len(chunk))})", chunk
            ).fetchone()[0]
    return len(decisions) - found


def _port_of(base: str) -> int:
    return int(base.rsplit(":", 1)[1])


def reloads_under_load(root: Path, body: object, clients: int, seconds: float) -> dict:
    import httpx

    proc, base, audit_db = sb.start_service(root, 2, "FULL", mlruns=root / "resilience")
    try:
        out: dict = {}
        load = threading.Thread(target=_load, args=(f"{base}/v1/orders/score", body, clients, seconds, out))
        load.start()
        reloads = []
        for _ in range(10):
            time.sleep(seconds / 12)
            r = httpx.post(f"{base}/v1/admin/reload", headers={"X-API-Key": sb.KEY}, timeout=60)
            reloads.append(r.status_code == 200 and r.json().get("ok", False))
        load.join()
        return {
            "answered": len(out["decisions"]),
            "errors": len(out["errors"]),
            "error_examples": out["errors"][:3],
            "reloads_not_ok": reloads.count(False),
            "lost_decisions": _missing(audit_db, out["decisions"]),
        }
    finally:
        sb.stop(proc)


def kill_master_under_load(root: Path, body: object, clients: int, seconds: float) -> dict:
    proc, base, audit_db = sb.start_service(root, 2, "FULL", mlruns=root / "resilience-kill")
    out: dict = {}
    load = threading.Thread(target=_load, args=(f"{base}/v1/orders/score", body, clients, seconds, out))
    load.start()
    time.sleep(seconds / 2)
    os.kill(proc.pid, signal.SIGKILL)
    killed_at = time.monotonic()
    port_free_after = None
    while time.monotonic() - killed_at < 30:
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds on a restart
            try:
                s.bind(("127.0.0.1", _port_of(base)))
                port_free_after = time.monotonic() - killed_at
                break
            except OSError:
                time.sleep(0.1)
    load.join()
    proc.wait(timeout=10)
    return {
        "answered": len(out["decisions"]),
        "failed_after_kill": len(out["errors"]),
        "lost_decisions": _missing(audit_db, out["decisions"]),
        "port_free_after_s": None if port_free_after is None else round(port_free_after, 2),
    }


def registry_down_at_start(root: Path) -> dict:
    hung = socket.socket()
    hung.bind(("127.0.0.1", 0))
    hung.listen(64)  # accepts connections (the kernel's backlog) and never answers
    url = f"http://127.0.0.1:{hung.getsockname()[1]}"
    t0 = time.monotonic()
    proc, _, _ = sb.start_service(
        root,
        1,
        "FULL",
        mlruns=root / "resilience",  # run 1's model cache
        fresh=False,
        env_extra={"ORDERPULSE_TRACKING_URI": url, "MLFLOW_TRACKING_URI": url},
        ready_timeout=300,
        settle_health=False,  # the figure is the time to /ready
    )
    seconds = time.monotonic() - t0
    sb.stop(proc)
    hung.close()
    return {"seconds_to_ready": round(seconds, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--root", type=Path, default=None, help="keep models/logs here (reused when present)")
    args = parser.parse_args()
    root = args.root or Path(tempfile.mkdtemp(prefix="orderpulse-resilience-"))
    root.mkdir(parents=True, exist_ok=True)
    sb.train(root)
    body = sb.payloads()["one"]
    result = {
        "reloads_under_load": reloads_under_load(root, body, args.clients, args.seconds),
        "kill_master_under_load": kill_master_under_load(root, body, args.clients, args.seconds),
        "registry_down_at_start": registry_down_at_start(root),
        "load_average": os.getloadavg()[0],
    }
    print(json.dumps(result))
    bad = (
        result["reloads_under_load"]["errors"]
        + result["reloads_under_load"]["lost_decisions"]
        + result["kill_master_under_load"]["lost_decisions"]
    )
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
