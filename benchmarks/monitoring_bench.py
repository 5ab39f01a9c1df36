"""Benchmark: ``GET /v1/monitoring`` over a million recorded decisions, and what recording adds to scoring.

    python benchmarks/monitoring_bench.py [--decisions 1000000] [--postgres URL] [--skip-latency]

1. Query: bulk-inserts ``--decisions`` synthetic decisions (70 % order scores, 30 % forecasts of 7 steps, over
   365 days and 1,000 series; every decision also in ``decisions`` with small JSON columns, as the service
   writes them) with their actuals (one per series and day, 5 % revised) and labels (12 % positive, 80 % of
   the orders labeled, the rest matured or pending) into SQLite (a file, as served) and PostgreSQL
   (``--postgres``, default the local ``test`` database, in a schema of its own dropped afterwards). Then times
   ``monitoring_summary`` (what the route returns) over the last 7 days, 30 days and the whole year: the first
   query of each window (it computes the per-day rollups the window lacks, ``serving.store.rollups``) and the
   median / max of the next 3 (read from the rollups), with the time of each part of the year's query, and
   checks that after a revised actual and a late label the year's figures equal a rebuild from scratch.
   Target (issue 16): under 1 s over the million decisions.

   Measured (session 5, 1M decisions, quiet machine): warm whole year SQLite 0.455 s, PostgreSQL 0.575 s;
   last 7 days 0.059 / 0.070 s; first year query (rollups computed) 14.9 / 10.0 s. Session 4 (no rollups,
   quiet): whole year 15.1 / 10.1 s. Recording: one order +3.0 %, batch of 100 -3.7 % (noise).
2. Latency: trains the anomaly model on data/sample (temporary MLflow store), then scores one order (with
   reasons) and a batch of 100 orders through the app (in-process ``TestClient``, audit trail in a SQLite file
   with ``synchronous=FULL``), with the monitoring rows recorded and without (``AuditStore(monitoring=False)``),
   interleaved in rounds so the machine's load drifts equally over both. Target: recording adds < 10 %.

Prints numbers and ratios; run it under ``nice`` on a shared machine and quote ``uptime`` with the numbers.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from serving.services import monitoring as mon  # noqa: E402
from serving.store.audit import AuditStore  # noqa: E402
from serving.store.db import Database  # noqa: E402
from serving.store.events import EventStore  # noqa: E402
from serving.store.predictions import record_reference  # noqa: E402

N_SERIES = 1_000
DAYS = 365
HORIZON = 7
NOW = datetime(2026, 1, 1, tzinfo=UTC)
START = NOW - timedelta(days=DAYS)


def synthetic(n_decisions: int, seed: int = 0) -> dict[str, list[tuple]]:
    """Rows of every table, as tuples in column order (see the module docstring)."""
    rng = np.random.default_rng(seed)
    n_forecast = int(n_decisions * 0.3)
    n_score = n_decisions - n_forecast
    rows: dict[str, list[tuple]] = {}
    # scores
    created = START + timedelta(seconds=1) * np.sort(rng.integers(0, DAYS * 86400, n_score))
    score = rng.beta(1, 5, n_score)
    label = (rng.random(n_score) < 0.1 + 0.5 * score).astype(int)
    ids = [str(uuid.UUID(int=int(i), version=4)) for i in rng.integers(0, 2**62, n_decisions)]
    order_created = [c.replace(tzinfo=None) - timedelta(minutes=5) for c in created.tolist()]
    rows["score_predictions"] = [
        (
            ids[i],
            created[i],
            "bench-anomaly",
            "3" if i > n_score // 2 else "2",
            f"O{i}",
            order_created[i],
            float(score[i]),
            0.4,
            int(score[i] >= 0.4),
        )
        for i in range(n_score)
    ]
    labeled = rng.random(n_score) < 0.8
    rows["label_events"] = [
        (
            f"O{i}",
            int(label[i]),
            order_created[i] + timedelta(days=3),
            (order_created[i] + timedelta(days=3, hours=1)).replace(tzinfo=UTC),
        )
        for i in np.flatnonzero(labeled)
    ]
    # forecasts
    f_created = START + timedelta(seconds=1) * np.sort(rng.integers(0, DAYS * 86400, n_forecast))
    series = rng.integers(0, N_SERIES, n_forecast)
    level = rng.normal(1000, 200, N_SERIES)
    steps = []
    for j in range(n_forecast):
        did = ids[n_score + j]
        origin = f_created[j].replace(tzinfo=None, hour=0, minute=0, second=0, microsecond=0)
        for step in range(1, HORIZON + 1):
            yhat = float(level[series[j]] * (1 + 0.1 * rng.standard_normal()))
            steps.append(
                (
                    did,
                    f_created[j],
                    "bench-forecast",
                    "5",
                    f"S{series[j]}",
                    origin + timedelta(days=step),
                    step,
                    yhat,
                    yhat * 0.8,
                    yhat * 1.2,
                    80,
                )
            )
    rows["forecast_predictions"] = steps
    # actuals: one per series and day up to NOW (the last week's steps stay pending)
    actuals = []
    for s in range(N_SERIES):
        y = level[s] * (1 + 0.12 * rng.standard_normal(DAYS))
        for d in range(DAYS):
            ds = START.replace(tzinfo=None) + timedelta(days=d)
            actuals.append(
                (
                    f"S{s}",
                    ds,
                    float(y[d]),
                    1,
                    ds.replace(tzinfo=UTC) + timedelta(hours=20),
                    NOW,
                    int(rng.random() < 0.05),
                )
            )
    rows["actuals"] = actuals
    # decisions: what the audit trail holds for each (small JSON)
    rows["decisions"] = [
        (
            ids[i],
            created[i],
            "score",
            "bench-anomaly",
            "3",
            None,
            None,
            f'{{"order_id": "O{i}"}}',
            '{"order_value": 10.0}',
            f'{{"score": {score[i]:.4f}}}',
        )
        for i in range(n_score)
    ] + [
        (
            ids[n_score + j],
            f_created[j],
            "forecast",
            "bench-forecast",
            "5",
            None,
            None,
            f'{{"series_id": "S{series[j]}"}}',
            '{"covariates": []}',
            '{"levels": [80]}',
        )
        for j in range(n_forecast)
    ]
    return rows


def load(database: Database, schema: str | None, rows: dict[str, list[tuple]]) -> float:
    """Bulk-insert ``rows`` (driver-level executemany / COPY); returns seconds."""
    audit = AuditStore(database=database, schema=schema)
    EventStore(database, schema=schema)
    t0 = time.perf_counter()
    prefix = f'"{schema}".' if schema else ""
    raw = database.engine.raw_connection()
    try:
        cur = raw.cursor()
        for table, data in rows.items():
            cols = _COLUMNS[table]
            if database.dialect == "postgresql":
                with cur.copy(f"COPY {prefix}{table} ({', '.join(cols)}) FROM STDIN") as copy:
                    for row in data:
                        copy.write_row(row)
            else:
                marks = ", ".join("?" * len(cols))
                cur.executemany(
                    f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({marks})", [_sqlite(r) for r in data]
                )
        raw.commit()
        if database.dialect == "postgresql":
            cur.execute("ANALYZE")
        else:
            cur.execute("ANALYZE")
        raw.commit()
    finally:
        raw.close()
    for kind, name, version, metrics in (
        ("anomaly", "bench-anomaly", "2", {"valid_auprc": 0.5, "data.label_maturity_days": 14.0}),
        ("anomaly", "bench-anomaly", "3", {"valid_auprc": 0.5, "data.label_maturity_days": 14.0}),
        ("forecast", "bench-forecast", "5", {"backtest_wape": 0.1, "backtest_coverage_80": 0.8}),
    ):
        record_reference(
            database, audit.predictions, kind=kind, name=name, version=version, metrics=metrics, profile=None
        )
    return time.perf_counter() - t0


_COLUMNS = {
    "score_predictions": [
        "decision_id",
        "created_at",
        "model_name",
        "model_version",
        "order_id",
        "order_created_at",
        "score",
        "threshold",
        "flagged",
    ],
    "label_events": ["order_id", "label", "labeled_at", "received_at"],
    "forecast_predictions": [
        "decision_id",
        "created_at",
        "model_name",
        "model_version",
        "series_id",
        "ds",
        "step",
        "yhat",
        "lo",
        "hi",
        "level",
    ],
    "actuals": ["series_id", "ds", "y", "open", "received_at", "updated_at", "revisions"],
    "decisions": [
        "decision_id",
        "created_at",
        "kind",
        "model_name",
        "model_version",
        "model_alias",
        "request_id",
        "input",
        "features",
        "output",
    ],
}


def _sqlite(row: tuple) -> tuple:
    """SQLAlchemy's SQLite storage of datetimes: 'YYYY-MM-DD HH:MM:SS.ffffff' (UTC, no offset)."""
    return tuple(
        v.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
        if isinstance(v, datetime) and v.tzinfo
        else v.strftime("%Y-%m-%d %H:%M:%S.%f")
        if isinstance(v, datetime)
        else v
        for v in row
    )


def time_query(database: Database, schema: str | None, since: datetime | None, runs: int = 4) -> dict:
    """Wall seconds of the first ``monitoring_summary`` of the window (``cold_s``: it also computes the per-day
    rollups the window still lacks) and the median / max of the next runs (``median_s``: what every later query
    costs), with this process's median CPU seconds (on SQLite that is all the work, and unlike wall time it
    barely moves with the machine's load)."""
    walls, cpus = [], []
    out = None
    for _ in range(runs):
        w, c = time.perf_counter(), time.process_time()
        out = mon.monitoring_summary(database, since=since, until=NOW, model=None, schema=schema, now=NOW)
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c)
    return {
        "cold_s": walls[0],
        "median_s": statistics.median(walls[1:]),
        "max_s": max(walls[1:]),
        "cpu_s": statistics.median(cpus[1:]),
        "summary": out,
    }


def bench_query(n: int, postgres: str | None) -> None:
    print(f"generating {n:,} decisions ...", flush=True)
    t0 = time.perf_counter()
    rows = synthetic(n)
    print(f"  {time.perf_counter() - t0:.1f} s: " + ", ".join(f"{k} {len(v):,}" for k, v in rows.items()))
    targets = []
    tmp = tempfile.mkdtemp(prefix="monbench-")
    targets.append(("sqlite", Database(f"sqlite:///{tmp}/audit.db"), None))
    if postgres:
        targets.append(("postgresql", Database(postgres), f"monbench_{uuid.uuid4().hex[:8]}"))
    for name, database, schema in targets:
        try:
            seconds = load(database, schema, rows)
            print(f"\n{name}: loaded in {seconds:.1f} s", flush=True)
            for label, since in (
                ("last 7 days", NOW - timedelta(days=7)),
                ("last 30 days", NOW - timedelta(days=30)),
                ("whole year", None),
            ):
                r = time_query(database, schema, since)
                s = r["summary"]
                print(
                    f"  {label:12s} monitoring_summary median {r['median_s']:.3f} s (max {r['max_s']:.3f} s; "
                    f"target < 1 s: {'met' if r['median_s'] < 1 else 'MISSED'}; this process's CPU "
                    f"{r['cpu_s']:.3f} s; first query, computing the missing day rollups, {r['cold_s']:.2f} s); "
                    f"{s['forecast']['answered_steps']:,} forecast steps ({s['forecast']['matched_steps']:,} "
                    f"matched), {s['anomaly']['scored_orders']:,} scores ({s['anomaly']['matched_orders']:,} "
                    f"matched); wape {s['forecast']['wape']:.6f}, auprc {s['anomaly']['auprc']:.6f}",
                    flush=True,
                )
            _parts(database, schema, None, "whole year")
            _revision(database, schema)
        finally:
            if schema:
                from sqlalchemy import text

                with database.connection() as conn:
                    conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            database.dispose()


def _parts(database: Database, schema: str | None, since: datetime | None, label: str) -> None:
    """Seconds of each part of one summary."""
    timings: dict[str, float] = {}

    def timed(name, fn):
        def wrapper(*a, **k):
            t0 = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                timings[name] = timings.get(name, 0.0) + time.perf_counter() - t0

        return wrapper

    names = {
        "rolled_forecast_sums": "forecast sums",
        "rolled_score_rows": "score rows",
        "score_outcomes": "outcomes",
        "_anomaly_figures": "AUPRC/ECE",
        "input_drift": "drift",
        "data_quality": "data quality",
    }
    saved = {k: getattr(mon, k) for k in names}
    for k, v in names.items():
        setattr(mon, k, timed(v, saved[k]))
    try:
        t0 = time.perf_counter()
        mon.monitoring_summary(database, since=since, until=NOW, model=None, schema=schema, now=NOW)
        total = time.perf_counter() - t0
    finally:
        for k, v in saved.items():
            setattr(mon, k, v)
    print(
        f"  parts ({label}): "
        + ", ".join(f"{k} {v:.3f} s" for k, v in timings.items())
        + f", rest {total - sum(timings.values()):.3f} s"
    )


def _revision(database: Database, schema: str | None) -> None:
    """A revised actual and a late label in the middle of the year: the year's query after them (two day
    rollups recomputed per change), compared with a query on rollups dropped and rebuilt from scratch."""
    events = EventStore(database, schema=schema)
    from serving.store.events import Actual, LabelEvent

    mid = (START + timedelta(days=180)).replace(tzinfo=None)
    events.upsert_actuals([Actual("S1", mid, 12345.0)])
    events.add_labels([LabelEvent("late-label-of-no-order", 1, mid)])
    t0 = time.perf_counter()
    after = mon.monitoring_summary(database, since=None, until=NOW, model=None, schema=schema, now=NOW)
    seconds = time.perf_counter() - t0
    tables = mon._tables(database, schema).rollups
    with database.connection() as conn:
        for table in (tables.days, tables.forecasts, tables.scores, tables.counts, tables.state):
            conn.execute(table.delete())
    fresh = mon.monitoring_summary(database, since=None, until=NOW, model=None, schema=schema, now=NOW)
    same = all(
        abs((after[b][k] or 0) - (fresh[b][k] or 0)) < 1e-9
        for b, k in (("forecast", "wape"), ("forecast", "coverage"), ("anomaly", "auprc"), ("anomaly", "ece"))
    )
    print(
        f"  after a revised actual and a new label: whole year {seconds:.3f} s; equal to a rebuild from scratch "
        f"(1e-9): {same}"
    )


def bench_latency(rounds: int, requests: int) -> None:
    """Scoring latency through the app with and without the monitoring rows (see the module docstring)."""
    import pandas as pd
    from fastapi.testclient import TestClient

    from orderpulse.jobs.anomaly import train_anomaly
    from serving.app import create_app
    from serving.settings import Settings

    root = Path(tempfile.mkdtemp(prefix="monbench-latency-"))
    uri = f"sqlite:///{root / 'mlflow.db'}"
    os.environ.update({"MLFLOW_TRACKING_URI": uri, "ORDERPULSE_MLRUNS_DIR": str(root)})
    sample = REPO / "data" / "sample" / "online_retail"
    print("\ntraining the anomaly model on data/sample ...", flush=True)
    train_anomaly(sample / "orders.csv", sample / "labels.csv", name="bench")
    orders = pd.read_csv(sample / "orders.csv", dtype={"customer_id": str, "sku": str, "order_id": str})
    last = orders.loc[orders["order_id"].isin(orders["order_id"].drop_duplicates().tail(100))]
    batch = [
        {
            "order_id": f"B{oid}",
            "created_at": str(g["created_at"].iloc[0]).replace(" ", "T"),
            "customer_id": None if pd.isna(g["customer_id"].iloc[0]) else g["customer_id"].iloc[0],
            "country": g["country"].iloc[0] if "country" in g else None,
            "lines": [
                {"sku": r.sku, "quantity": float(r.quantity), "unit_price": float(r.unit_price)}
                for r in g.itertuples()
            ],
        }
        for oid, g in last.groupby("order_id", sort=False)
    ]
    clients = {}
    for name, monitoring in (("with monitoring rows", True), ("without", False)):
        settings = Settings(
            profile="dev",
            api_keys="bench-key",
            mlruns_dir=root / name.split()[0],
            tracking_uri=uri,
            model_name="bench",
            require_models=["anomaly"],
            gc_freeze_at_startup=False,
            events_refresh_interval_s=0,
            monitoring_interval_s=0,
        )
        audit = AuditStore(f"sqlite:///{root / name.split()[0]}/audit.db", monitoring=monitoring)
        client = TestClient(create_app(settings, audit_store=audit))
        client.__enter__()
        clients[name] = client
    headers = {"X-API-Key": "bench-key"}
    for label, url, bodies in (
        ("one order, reasons", "/v1/orders/score?explain=all", [b for b in batch]),
        ("batch of 100 orders", "/v1/orders/score", [{"orders": batch}]),
    ):
        times: dict[str, list[float]] = {name: [] for name in clients}
        order = list(clients)
        for r in range(rounds):
            for name in order if r % 2 == 0 else order[::-1]:
                client = clients[name]
                for i in range(requests):
                    body = bodies[i % len(bodies)]
                    t0 = time.perf_counter()
                    response = client.post(url, json=body, headers=headers)
                    times[name].append(time.perf_counter() - t0)
                    assert response.status_code == 200, response.text
        med = {name: statistics.median(v) * 1000 for name, v in times.items()}
        mean = {name: statistics.fmean(v) * 1000 for name, v in times.items()}
        ratio = med["with monitoring rows"] / med["without"]
        print(
            f"  {label:22s} median {med['with monitoring rows']:.2f} ms with vs {med['without']:.2f} ms without "
            f"(mean {mean['with monitoring rows']:.2f} vs {mean['without']:.2f}); added "
            f"{(ratio - 1) * 100:+.1f} % (target < 10 %: {'met' if ratio < 1.10 else 'MISSED'}); "
            f"{len(times['without'])} requests each"
        )
    for client in clients.values():
        client.__exit__(None, None, None)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--decisions", type=int, default=1_000_000)
    parser.add_argument(
        "--postgres",
        default=os.environ.get("ORDERPULSE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"),
    )
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--skip-query", action="store_true")
    parser.add_argument("--rounds", type=int, default=6, help="latency: alternating rounds per configuration")
    parser.add_argument("--requests", type=int, default=50, help="latency: requests per round")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # kill: drop the PostgreSQL schema on the way out
    print(f"load: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f} (1/5/15 min)")
    if not args.skip_query:
        bench_query(args.decisions, args.postgres or None)
    if not args.skip_latency:
        bench_latency(args.rounds, args.requests)
    print(f"load: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f} (1/5/15 min)")


if __name__ == "__main__":
    main()
