"""Engine selection, the Dask client and what the dask code paths share (training a booster on the workers,
writing outputs); the forecaster's and the classifier's own dask paths are ``training.forecast.dask`` and
``training.anomaly.dask``.

``--engine local`` (default) runs everything in one process, as before. ``--engine dask`` runs the same
feature code per partition (``features.dask``) on a Dask cluster: the one at ``--scheduler ADDRESS``
(``tcp://host:8786``, a Kubernetes or cloud Dask service's scheduler), or a ``LocalCluster`` on this machine.

What runs where with ``--engine dask``:

* forecast features: built per series partition on the workers (``features build forecast``, and inside
  ``LGBMForecaster.fit`` one frame per horizon bucket);
* forecast training: ``lightgbm.dask`` data-parallel training on the workers. Before training, the rows are
  dealt to the workers by a hash of ``(series_id, ds)``: LightGBM computes each feature's bins on ONE worker's
  rows (lightgbm#3835, #5798), so a worker holding only some series would bin ``series_id`` without the
  others. The result is a plain ``lgb.Booster`` (``DaskLGBMRegressor.fit(...).to_local().booster_``), so the
  model logs, registers and serves exactly like a local one;
* batch forecasts (``forecast``): ``LGBMForecaster.predict`` per series partition, written as partitioned
  Parquet;
* order features and batch scoring (``features build orders``, ``score``): one shared point-in-time index,
  orders scored per time range (see ``features.dask``);
* ``train anomaly``: the order features on the cluster, the (small) classifier trained in this process.

Still local with either engine: validation of the small tables, backtest bookkeeping, calibration quantiles,
MLflow logging, and the model's own ``history_`` (the forecaster keeps the series it was fitted on, so
``train forecast`` loads the series table into this process; only ``features build`` and ``forecast`` read it
lazily).
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:  # pragma: no cover
    import dask.dataframe as dd
    import lightgbm as lgb
    from distributed import Client


__all__ = [
    "ENGINES",
    "check_engine",
    "dask_client",
    "engine_context",
    "train_booster_dask",
    "write_output",
]

Engine = str
ENGINES: tuple[Engine, ...] = ("local", "dask")

_QUIET_LOGGERS = ("distributed.shuffle._scheduler_plugin", "distributed.utils_perf")


def check_engine(engine: str, scheduler: str | None = None) -> str:
    """``engine`` if it is "local" or "dask"; refuses a scheduler address without the dask engine."""
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}. Got {engine!r} instead.")
    if scheduler is not None and engine != "dask":
        raise ValueError(
            f"--scheduler {scheduler!r} only applies to --engine dask. Fix: add --engine dask or drop --scheduler."
        )
    return engine


@contextmanager
def dask_client(
    scheduler: str | None = None,
    *,
    n_workers: int | None = None,
    threads_per_worker: int | None = None,
    processes: bool = True,
) -> Iterator[Client]:
    """A ``distributed.Client``: to ``scheduler`` when given, else the client already running in this process
    (e.g. a test's or a job's), else a new ``LocalCluster`` (closed on exit).

    LocalCluster defaults: ``ORDERPULSE_DASK_WORKERS`` workers (default: 2, or 1 on a single core), the cores
    split between them, worker processes (LightGBM's network is per process).
    """
    from distributed import Client, LocalCluster, get_client

    for name in _QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        current = get_client()
    except ValueError:
        current = None
    if current is not None and (scheduler is None or _same_address(current, scheduler)):
        yield current
        return
    if scheduler is not None:
        try:
            client = Client(scheduler, timeout="20s")
        except OSError as exc:
            raise ConnectionError(
                f"cannot reach the Dask scheduler at {scheduler!r} ({exc}). Fix: check the address "
                "(tcp://host:8786) and that the scheduler is running, or drop --scheduler for a LocalCluster."
            ) from None
        try:
            yield client
        finally:
            client.close()
        return
    cores = os.cpu_count() or 1
    env = os.environ.get("ORDERPULSE_DASK_WORKERS", "")
    if env and (not env.isdigit() or int(env) < 1):
        raise ValueError(f"ORDERPULSE_DASK_WORKERS must be a positive integer. Got {env!r} instead.")
    workers = n_workers or (int(env) if env else min(2, cores))
    threads = threads_per_worker or max(1, cores // workers)
    with (
        LocalCluster(
            n_workers=workers,
            threads_per_worker=threads,
            processes=processes,
            dashboard_address=None,
            silence_logs=logging.ERROR,
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


def engine_context(engine: str, scheduler: str | None = None) -> Any:
    """``dask_client(scheduler)`` when ``engine == "dask"`` (every fit inside the block then shares one
    cluster), a no-op context for "local"."""
    from contextlib import nullcontext

    check_engine(engine, scheduler)
    return dask_client(scheduler) if engine == "dask" else nullcontext()


def train_booster_dask(
    X: dd.DataFrame,
    y: dd.Series,
    params: dict[str, Any],
    num_boost_round: int,
    *,
    client: Client | None = None,
) -> lgb.Booster:
    """``lightgbm.dask`` regression on the workers holding ``X``/``y``; returns a plain local ``lgb.Booster``.

    ``params`` are ``lgb.train`` parameters; thread counts are set per worker by lightgbm.dask.
    """
    import lightgbm as lgb
    from lightgbm.dask import DaskLGBMRegressor

    from features.dask import require_client

    client = require_client(client)
    kw = {k: v for k, v in params.items() if k not in ("num_threads", "n_jobs", "nthread", "num_thread")}
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Parameter .* will be ignored")
        model = DaskLGBMRegressor(client=client, n_estimators=int(num_boost_round), **kw).fit(X, y)
    booster = model.to_local().booster_
    return lgb.Booster(model_str=booster.model_to_string())


def write_output(frames: Any, out: str | Path, *, client: Client | None = None) -> dict[str, Any]:
    """Write predictions or scores with ``features.io.write_frame`` (the path decides the format: a
    partitioned Parquet dataset for a directory or a name without extension, else one CSV/Parquet file) and
    summarise them.

    ``frames`` is a pandas DataFrame or a list of futures of pandas DataFrames (partitions, in order; a
    dataset is then written one file per partition, on the workers).
    Returns ``out``, ``files``, ``rows``, ``series`` (when there is a ``series_id``), ``start``/``end``.
    """
    from features.io import write_frame

    if isinstance(frames, pd.DataFrame):
        stats = [_stats(frames)]
        path = write_frame(frames, out)
    else:
        import dask.dataframe as dd

        from features.dask import head0, require_client

        client = require_client(client)
        stats = client.gather(client.map(_stats, frames, pure=False))
        meta = client.submit(head0, frames[0], pure=False).result()
        path = write_frame(dd.from_delayed(frames, meta=meta, verify_meta=False), out, client=client)
    files = len(list(path.glob("part-*.parquet"))) if path.is_dir() else 1
    return {"out": str(out), "files": files, **_merge_stats(stats)}


# ------------------------------------------------------------------------------------------ internals


def _same_address(client: Any, scheduler: str) -> bool:
    address = getattr(client.scheduler, "address", "") or ""
    return address == scheduler or address.split("://")[-1] == scheduler.split("://")[-1]


def _stats(frame: pd.DataFrame) -> dict[str, Any]:
    time_col = "ds" if "ds" in frame.columns else ("created_at" if "created_at" in frame.columns else None)
    out: dict[str, Any] = {"rows": len(frame)}
    if "series_id" in frame.columns:
        out["series_ids"] = set(frame["series_id"].astype(str).unique())
    if time_col is not None and len(frame):
        out["start"], out["end"] = frame[time_col].min(), frame[time_col].max()
    return out


def _merge_stats(stats: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {"rows": int(sum(s["rows"] for s in stats))}
    if any("series_ids" in s for s in stats):
        out["series"] = len(set().union(*(s.get("series_ids", set()) for s in stats)))
    starts = [s["start"] for s in stats if "start" in s]
    if starts:
        out["start"] = str(min(starts))
        out["end"] = str(max(s["end"] for s in stats if "end" in s))
    return out
