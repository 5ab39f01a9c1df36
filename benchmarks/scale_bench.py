"""Scaling out: wall time, peak memory per worker and rows/s of forecast features + training, local vs dask.

Inputs: the full Rossmann tables (``features.adapters.rossmann``) replicated 1x, 4x and 16x in the number of
series, each replica with its own level per store (lognormal, sigma 0.25) and day-to-day noise (lognormal,
sigma 0.05) on ``y``, the same promo/holiday calendar, static attributes and regions (so the same weather).
Each table is written as a directory of Parquet files, one per replica: the way large tables arrive.

Every measurement runs in a fresh process (and, for dask, a fresh ``LocalCluster`` of ``--workers`` worker
processes with 1 thread each, so both engines use the same cores):

* ``features``: read + validate + build the ``for_horizon(7)`` training frame + write it as Parquet
  (local: ``load_table`` + ``build_training_frame`` + one file; dask: ``ForecastPartitions.from_paths`` +
  ``write_training_frame_dask``, one file per partition);
* ``training``: read + validate + frame + one LightGBM booster of ``--estimators`` rounds on ``log1p(y)``
  (local: ``LGBMForecaster(horizon=7, calibrate=False).fit``; dask: ``fit_forecast_booster``, the function
  ``LGBMForecaster(engine="dask")`` runs per horizon bucket, here on lazily read inputs);
* ``accuracy`` (1x only): ``LGBMForecaster(horizon=14)`` fitted with each engine on all but the last 14 days,
  WAPE of its forecast of those days.

Peak memory is the largest resident set size (RSS, sampled every 50 ms) of the process doing the work: the
single process for local, the largest worker for dask (the driver's peak is reported too). The growth
exponent ``k`` is the slope of log(seconds) on log(series rows) across the scales run.

Run: ``.venv/bin/python benchmarks/scale_bench.py`` (all scales, ~40 min on 2 cores) or
``--max-scale 4`` / ``--local-max-scale 4`` to stay smaller; ``--out FILE`` also writes the Markdown table.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
from measure import REPO, shared_data  # also puts the repo on sys.path

warnings.simplefilter("ignore")

SCALES = (1, 4, 16)
HORIZON = 7


# ------------------------------------------------------------------------------------------ inputs


def make_inputs(root: Path, scale: int, seed: int = 0) -> dict[str, Path]:
    """Write ``scale`` replicas of the Rossmann tables under ``root`` (skipped when already there)."""
    from features.adapters import rossmann
    from features.validation import validate

    paths = {t: root / t for t in ("series", "covariates")} | {
        "weather": root / "weather.parquet",
        "static": root / "static.parquet",
    }
    done = root / "DONE"
    if done.exists():
        return paths
    shutil.rmtree(root, ignore_errors=True)
    for t in ("series", "covariates"):
        paths[t].mkdir(parents=True)
    raw, _ = rossmann.load(shared_data("rossmann"))
    t = {k: validate(v, k)[0] for k, v in raw.items()}
    rng = np.random.default_rng(seed)
    statics = []
    for r in range(scale):
        ids = t["series"]["series_id"].astype(str)
        suffix = "" if r == 0 else f"_r{r}"
        level = {sid: 1.0 if r == 0 else float(rng.lognormal(0, 0.25)) for sid in ids.unique()}
        s = t["series"].copy()
        noise = 1.0 if r == 0 else rng.lognormal(0, 0.05, len(s))
        s["y"] = np.round(s["y"] * ids.map(level).to_numpy() * noise)
        s["series_id"] = ids + suffix
        s.to_parquet(paths["series"] / f"replica-{r:03d}.parquet", index=False)
        c = t["covariates"].copy()
        c["series_id"] = c["series_id"].astype(str) + suffix
        c.to_parquet(paths["covariates"] / f"replica-{r:03d}.parquet", index=False)
        st = t["static"].copy()
        st["series_id"] = st["series_id"].astype(str) + suffix
        statics.append(st)
    pd.concat(statics, ignore_index=True).to_parquet(paths["static"], index=False)
    t["weather"].to_parquet(paths["weather"], index=False)
    done.write_text("ok")
    return paths


# ------------------------------------------------------------------------------------------ one measurement


class PeakRSS:
    """Peak RSS (MB) of a set of processes, sampled by a thread every ``interval`` seconds, and the CPU
    seconds they used (user + system, all threads) in the block. The machine's 1-minute load average is kept
    too: CPU seconds are the fairer measure when other work shares the cores."""

    def __init__(self, pids: dict[str, int], interval: float = 0.05):
        self.procs = {name: psutil.Process(pid) for name, pid in pids.items()}
        self.peak = dict.fromkeys(pids, 0.0)
        self.interval = interval
        self._stop = threading.Event()
        self.cpu_seconds = 0.0
        self.load: list[float] = []

    def _cpu(self) -> float:
        total = 0.0
        for p in self.procs.values():
            with contextlib.suppress(psutil.Error):
                t = p.cpu_times()
                total += t.user + t.system
        return total

    def _sample(self) -> None:
        while not self._stop.is_set():
            for name, p in self.procs.items():
                with contextlib.suppress(psutil.Error):
                    self.peak[name] = max(self.peak[name], p.memory_info().rss / 2**20)
            time.sleep(self.interval)

    def __enter__(self) -> PeakRSS:
        self._cpu0 = self._cpu()
        self.load.append(os.getloadavg()[0])
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.cpu_seconds = self._cpu() - self._cpu0
        self.load.append(os.getloadavg()[0])


def run_one(engine: str, stage: str, paths: dict[str, Path], estimators: int, workers: int) -> dict:
    from features.forecast_config import ForecastFeatureConfig

    config = ForecastFeatureConfig(freq="D").for_horizon(HORIZON)
    params = {"n_estimators": estimators}
    out_dir = Path(tempfile.mkdtemp(prefix="scale_bench_out_"))
    result: dict = {"engine": engine, "stage": stage}
    try:
        if engine == "local":
            with PeakRSS({"worker": os.getpid()}) as peak:
                t0 = time.perf_counter()
                result.update(_local(stage, paths, config, params, out_dir))
                result["seconds"] = time.perf_counter() - t0
            result["peak_mb_worker"] = peak.peak["worker"]
            result["cpu_seconds"], result["load"] = peak.cpu_seconds, max(peak.load)
            return result
        from distributed import Client, LocalCluster

        with (
            LocalCluster(
                n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
            ) as cl,
            Client(cl) as client,
        ):
            pids = client.run(os.getpid)
            names = {f"w{i}": pid for i, pid in enumerate(pids.values())} | {"driver": os.getpid()}
            with PeakRSS(names) as peak:
                t0 = time.perf_counter()
                result.update(_dask(stage, paths, config, params, out_dir, client))
                result["seconds"] = time.perf_counter() - t0
            result["peak_mb_worker"] = max(v for k, v in peak.peak.items() if k != "driver")
            result["peak_mb_driver"] = peak.peak["driver"]
            result["cpu_seconds"], result["load"] = peak.cpu_seconds, max(peak.load)
            result["workers"] = len(pids)
        return result
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)


def _local(stage: str, paths: dict[str, Path], config, params: dict, out_dir: Path) -> dict:
    from features.forecast_frame import build_training_frame
    from features.io import load_table, write_frame
    from training.forecast.forecaster import LGBMForecaster

    t = {k: load_table(paths[k], k)[0] for k in ("series", "covariates", "weather", "static")}
    s = t.pop("series")
    if stage == "features":
        frame, report = build_training_frame(s, config=config, **t)
        write_frame(frame, out_dir / "frame.parquet")
        return {"series_rows": len(s), "frame_rows": report.n_rows, "series": report.n_series}
    if stage == "training":
        model = LGBMForecaster(freq="D", horizon=HORIZON, calibrate=False, params=params).fit(s, **t)
        report = model.fit_reports_[HORIZON]
        return {
            "series_rows": len(s),
            "frame_rows": report.n_rows,
            "trees": model.boosters_[HORIZON].num_trees(),
        }
    return _accuracy(s, t, params, "local")


def _dask(stage: str, paths: dict[str, Path], config, params: dict, out_dir: Path, client) -> dict:
    from features.dask.forecast import write_training_frame_dask
    from features.dask.partitions import ForecastPartitions
    from training.forecast.dask import fit_forecast_booster
    from training.forecast.forecaster import LGBMForecaster

    if stage == "accuracy":
        from features.io import load_table

        t = {k: load_table(paths[k], k)[0] for k in ("series", "covariates", "weather", "static")}
        s = t.pop("series")
        return _accuracy(s, t, params, "dask")
    parts = ForecastPartitions.from_paths(
        paths["series"], paths["covariates"], paths["weather"], paths["static"], client=client
    )
    if stage == "features":
        report = write_training_frame_dask(parts, out_dir / "frame", config, client=client)
    else:
        lgbm = LGBMForecaster(freq="D", horizon=HORIZON, params=params)._lgbm_params()
        rounds = int(lgbm.pop("n_estimators"))
        booster, report = fit_forecast_booster(parts, config, lgbm, rounds, client=client)
    rows = parts.validation["series"].rows_in
    return {
        "series_rows": rows,
        "frame_rows": report.n_rows,
        "series": report.n_series,
        "partitions": parts.npartitions,
    }


def _accuracy(s: pd.DataFrame, tables: dict, params: dict, engine: str) -> dict:
    from training.forecast.forecaster import LGBMForecaster

    h = 14
    origin = s["ds"].max() - pd.Timedelta(days=h)
    model = LGBMForecaster(freq="D", horizon=h, calibrate=False, params=params, engine=engine)
    model.fit(s.loc[s["ds"] <= origin], **tables)
    pred = model.predict(h, series=s, origin=origin, levels=())
    actual = s.loc[s["ds"] > origin, ["series_id", "ds", "y", "open"]].assign(
        series_id=lambda d: d["series_id"].astype("string")
    )
    scored = pred.merge(actual, on=["series_id", "ds"])
    scored = scored.loc[(scored["open"] == 1) & scored["y"].notna()]
    wape = float(np.abs(scored["y"] - scored["yhat"]).sum() / scored["y"].abs().sum())
    return {"series_rows": len(s), "wape": wape, "scored_rows": len(scored)}


# ------------------------------------------------------------------------------------------ driver


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--max-scale", type=int, default=16, help="largest replication factor (1, 4, 16)")
    ap.add_argument("--local-max-scale", type=int, default=16, help="largest factor the local engine runs")
    ap.add_argument("--estimators", type=int, default=50, help="LightGBM rounds of the training stage")
    ap.add_argument("--workers", type=int, default=2, help="dask worker processes (1 thread each)")
    ap.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "orderpulse_scale_bench")
    ap.add_argument("--out", type=Path, default=None, help="also write the Markdown table here")
    ap.add_argument("--stages", default="features,training,accuracy")
    ap.add_argument("--run-one", nargs=3, metavar=("ENGINE", "STAGE", "SCALE"), help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.run_one:
        engine, stage, scale = args.run_one
        paths = make_inputs(args.data / f"x{scale}", int(scale))
        print("RESULT " + json.dumps(run_one(engine, stage, paths, args.estimators, args.workers)))
        return

    stages = args.stages.split(",")
    results = []
    for scale in [s for s in SCALES if s <= args.max_scale]:
        t0 = time.perf_counter()
        make_inputs(args.data / f"x{scale}", scale)
        print(f"# inputs x{scale} ready ({time.perf_counter() - t0:.0f}s)", file=sys.stderr, flush=True)
        for stage in stages:
            if stage == "accuracy" and scale != 1:
                continue
            for engine in ("local", "dask"):
                if engine == "local" and scale > args.local_max_scale:
                    continue
                r = _subprocess(engine, stage, scale, args)
                r["scale"] = scale
                results.append(r)
                print("# " + json.dumps(r), file=sys.stderr, flush=True)
    table = _markdown(results)
    print(table)
    if args.out:
        args.out.write_text(table + "\n")


def _subprocess(engine: str, stage: str, scale: int, args: argparse.Namespace) -> dict:
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--run-one",
        engine,
        stage,
        str(scale),
        "--data",
        str(args.data),
        "--estimators",
        str(args.estimators),
        "--workers",
        str(args.workers),
    ]
    env = dict(os.environ, ORDERPULSE_N_JOBS=str(args.workers), PYTHONWARNINGS="ignore")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    return {"engine": engine, "stage": stage, "error": (proc.stderr or proc.stdout)[-800:]}


def _markdown(results: list[dict]) -> str:
    lines = [
        "| stage | engine | scale | series | series rows | wall s | CPU s | rows/s (wall) | peak MB per worker "
        "| driver peak MB | load | note |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in results:
        if "error" in r:
            lines.append(
                f"| {r['stage']} | {r['engine']} | {r['scale']}x | | | | | | | | | failed: {r['error'][-120:]!r} |"
            )
            continue
        rows = r.get("series_rows", 0)
        note = f"WAPE {r['wape']:.4f} on {r['scored_rows']:,} open days" if "wape" in r else ""
        if "partitions" in r:
            note = f"{r['partitions']} partitions, {r.get('workers', '')} workers"
        lines.append(
            f"| {r['stage']} | {r['engine']} | {r['scale']}x | {r.get('series', 1115 * r['scale']):,} | {rows:,} | "
            f"{r['seconds']:.1f} | {r['cpu_seconds']:.1f} | {rows / max(r['seconds'], 1e-9):,.0f} | "
            f"{r['peak_mb_worker']:,.0f} | {r.get('peak_mb_driver', r['peak_mb_worker']):,.0f} | "
            f"{r['load']:.1f} | {note} |"
        )
    lines += [
        "",
        "| stage | engine | k, wall (seconds ~ rows^k) | k, CPU seconds | peak MB per worker, smallest -> largest |",
        "|---|---|---:|---:|---|",
    ]
    for stage in dict.fromkeys(r["stage"] for r in results if r["stage"] != "accuracy"):
        for engine in ("local", "dask"):
            rs = [r for r in results if r["stage"] == stage and r["engine"] == engine and "error" not in r]
            if len(rs) < 2:
                continue
            x = np.log([r["series_rows"] for r in rs])
            k_wall = np.polyfit(x, np.log([r["seconds"] for r in rs]), 1)[0]
            k_cpu = np.polyfit(x, np.log([r["cpu_seconds"] for r in rs]), 1)[0]
            mem = " -> ".join(f"{r['peak_mb_worker']:,.0f}" for r in rs)
            lines.append(f"| {stage} | {engine} | {k_wall:.2f} | {k_cpu:.2f} | {mem} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
