"""What a nightly ``orderpulse retrain forecast`` costs next to the ``orderpulse train forecast`` it repeats.

On the first ``STORES`` stores of the Rossmann sample (``data/sample/rossmann``: series, covariates, weather,
static) the script trains a champion (horizon 14, one backtest window, 100 trees: a cron-sized run on 2 shared
cores), posts the next 14 days as actuals into a fresh event store, then runs
``retrain forecast`` (which also re-backtests the champion's recipe on the new windows) and ``retrain forecast
--dry-run``, and prints each wall time and the ratio to the train, measured in the same run, plus the decision
and the counts. The retrain does more work than the train by design (the champion's re-backtest), so the ratio,
not a target, is the figure.

Run: ``nice -n 10 .venv/bin/python benchmarks/retrain_bench.py``
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from orderpulse.cli import main  # noqa: E402
from serving.store.db import Database  # noqa: E402
from serving.store.events import Actual, EventStore  # noqa: E402

SAMPLE = ROOT / "data" / "sample" / "rossmann"
NEW_DAYS = 14
STORES = 10
PARAMS = '{"n_estimators": 100, "num_leaves": 31}'


def _cli(argv: list[str]) -> tuple[float, dict]:
    out = io.StringIO()
    started = time.perf_counter()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        try:
            main(argv)
        except SystemExit as exc:
            if exc.code not in (0, None):
                raise RuntimeError(f"{argv} exited {exc.code}") from None
    return time.perf_counter() - started, json.loads(out.getvalue().strip().splitlines()[-1])


def run() -> None:
    work = Path(tempfile.mkdtemp(prefix="retrain-bench-"))
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{work / 'mlflow.db'}"
    series = pd.read_csv(SAMPLE / "series.csv", dtype={"series_id": str}, parse_dates=["ds"])
    series = series.loc[series["series_id"].isin(sorted(series["series_id"].unique(), key=int)[:STORES])]
    end = series["ds"].max() - pd.Timedelta(days=NEW_DAYS)
    series.loc[series["ds"] <= end].to_csv(work / "series.csv", index=False)
    new = series.loc[series["ds"] > end]
    tables = [f"--{t}={SAMPLE / f'{t}.csv'}" for t in ("covariates", "weather", "static")]
    common = ["--name", "bench", "--horizon", "14", "--n-windows", "1", "--lgbm-params", PARAMS]
    train_s, trained = _cli(["train", "forecast", "--series", str(work / "series.csv"), *tables, *common])
    url = f"sqlite:///{work / 'audit.db'}"
    database = Database(url)
    EventStore(database).upsert_actuals(
        [
            Actual(r.series_id, datetime.fromisoformat(str(r.ds)), float(r.y), int(r.open))
            for r in new.itertuples()
        ]
    )
    database.dispose()
    dry_s, dry = _cli(["retrain", "forecast", "--name", "bench", "--events-db", url, "--dry-run"])
    retrain_s, retrained = _cli(["retrain", "forecast", "--name", "bench", "--events-db", url])
    print(
        f"series: {series['series_id'].nunique()} stores, {len(series) - len(new):,} rows; {len(new):,} actuals posted"
    )
    print(f"train forecast          {train_s:6.1f} s  (v{trained['version']}, {trained['alias']})")
    print(f"retrain forecast --dry  {dry_s:6.1f} s  ({dry_s / train_s:.2f}x train): would be @{dry['alias']}")
    print(
        f"retrain forecast        {retrain_s:6.1f} s  ({retrain_s / train_s:.2f}x train): v{retrained['version']} @{retrained['alias']}"
    )
    print(f"  decision: {retrained['decision']}")
    print(f"  data: {retrained['data']}")


if __name__ == "__main__":
    run()
