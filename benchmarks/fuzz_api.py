"""Fuzz every operation of the service with schemathesis, in process, on SQLite and on PostgreSQL.

    python benchmarks/fuzz_api.py [--examples 150] [--db sqlite postgresql] [--root DIR]

Trains the sample models once (``serving_bench.train``, into ``--root``), then for each database builds the app
the way ``orderpulse serve`` does (models from the registry by alias, the audit and event store in SQLite or in
a fresh PostgreSQL schema at ``ORDERPULSE_TEST_POSTGRES_URL`` / ``postgresql://postgres@127.0.0.1:5432/test``)
and sends, per operation, ``--examples`` positive and ``--examples`` negative generated requests with a valid
API key, plus a tenth as many without a key and with a wrong one. Counts, per database: requests, server
errors (5xx) and statuses the operation's OpenAPI entry does not list, with an example request for each, and
answers slower than READ_TIMEOUT_S (``timeout``; a busy machine, not a status).
Prints a table on stderr and one JSON line on stdout. Exit code 1 when anything was found.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
for path in (REPO, REPO / "benchmarks"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("ORDERPULSE_N_JOBS", "1")

KEY = "fuzz-key"
READ_TIMEOUT_S = 60.0
PG_URL = os.environ.get("ORDERPULSE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def fuzz(app, examples: int) -> dict:
    """Send the generated requests to ``app``; returns counts and findings (see the module docstring)."""
    import schemathesis
    from hypothesis.errors import Unsatisfiable
    from schemathesis import GenerationMode

    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    statuses: dict[str, Counter] = defaultdict(Counter)
    findings: list[dict] = []
    variants = [
        (GenerationMode.POSITIVE, {"X-API-Key": KEY}, examples),
        (GenerationMode.NEGATIVE, {"X-API-Key": KEY}, examples),
        (GenerationMode.POSITIVE, {}, max(1, examples // 10)),
        (GenerationMode.POSITIVE, {"X-API-Key": "wrong-key"}, max(1, examples // 10)),
    ]
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode, headers, n in variants:
            with contextlib.suppress(Unsatisfiable):  # nothing to make invalid (no parameter, no body)
                _send(operation, mode, headers, n, statuses, findings)
    return {
        "requests": sum(sum(c.values()) for c in statuses.values()),
        "server_errors": sum(f["kind"] == "server_error" for f in findings),
        "undocumented_statuses": sum(f["kind"] == "undocumented_status" for f in findings),
        "statuses": {op: dict(sorted(c.items())) for op, c in sorted(statuses.items())},
        "findings": findings[:20],
    }


def _send(operation, mode, headers: dict, n: int, statuses: dict, findings: list) -> None:
    """``n`` generated requests to ``operation``; counts statuses, records 5xx and undocumented statuses."""
    import requests
    from hypothesis import HealthCheck, given, settings

    documented = {int(s) for s in operation.definition.raw["responses"] if s.isdigit()}

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=n, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def call(case) -> None:
        try:
            response = case.call(headers=headers, timeout=READ_TIMEOUT_S)
        except requests.exceptions.Timeout:  # a slow answer on a busy machine: counted, not a crash
            statuses[operation.label]["timeout"] += 1
            return
        status = response.status_code
        statuses[operation.label][status] += 1
        if status >= 500 or status not in documented:
            findings.append(
                {
                    "operation": operation.label,
                    "status": status,
                    "kind": "server_error" if status >= 500 else "undocumented_status",
                    "request": case.as_curl_command(headers=headers)[:600],
                    "body": response.text[:300],
                }
            )

    call()


def build_app(root: Path, db: str):
    """The app as ``orderpulse serve`` builds it, on ``db``; returns (app, cleanup)."""
    from serving.app import create_app
    from serving.settings import Settings
    from serving_bench import NAME

    run = Path(tempfile.mkdtemp(prefix=f"fuzz-{db}-", dir=root))
    overrides: dict = {}
    cleanup = lambda: None  # noqa: E731
    if db == "postgresql":
        import psycopg

        schema = f"orderpulse_fuzz_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
        overrides["audit_url"] = f"{PG_URL}?options=-csearch_path%3D{schema}"

        def cleanup() -> None:
            with psycopg.connect(PG_URL, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')

    settings = Settings(
        profile="dev",
        api_keys=KEY,
        mlruns_dir=run,
        model_cache_dir=root / "serving-cache",
        tracking_uri=f"sqlite:///{root / 'mlflow.db'}",
        model_name=NAME,
        gc_freeze_at_startup=False,
        events_refresh_interval_s=0,
        **overrides,
    )
    return create_app(settings), cleanup


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=150, help="generated requests per operation and mode")
    parser.add_argument("--db", nargs="+", default=["sqlite", "postgresql"], choices=["sqlite", "postgresql"])
    parser.add_argument("--root", type=Path, default=Path(tempfile.gettempdir()) / "orderpulse-fuzz")
    args = parser.parse_args()
    args.root.mkdir(parents=True, exist_ok=True)
    from schemathesis.python.asgi import shutdown_lifespans
    from serving_bench import train

    with contextlib.redirect_stdout(sys.stderr):  # stdout carries the one JSON line
        train(args.root)
    out: dict = {"examples": args.examples}
    for db in args.db:
        app, cleanup = build_app(args.root, db)
        started = time.perf_counter()
        try:
            out[db] = fuzz(app, args.examples)
        finally:
            shutdown_lifespans()
            cleanup()
        out[db]["seconds"] = round(time.perf_counter() - started, 1)
        r = out[db]
        print(
            f"{db}: {r['requests']} requests in {r['seconds']} s: {r['server_errors']} server errors, "
            f"{r['undocumented_statuses']} undocumented statuses",
            file=sys.stderr,
        )
        for op, counts in r["statuses"].items():
            print(f"  {op:40s} {counts}", file=sys.stderr)
        for finding in r["findings"][:5]:
            print(f"  FOUND {finding}", file=sys.stderr)
    print(json.dumps(out))
    found = any(out[db]["server_errors"] or out[db]["undocumented_statuses"] for db in args.db)
    sys.exit(1 if found else 0)


if __name__ == "__main__":
    main()
