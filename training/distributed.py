"""Engine selection and the dask code paths of training, batch forecasting and batch scoring.

``--engine local`` (default) runs everything in one process, as before. ``--engine dask`` runs the same
feature code per partition (``features.distributed``) on a Dask cluster: the one at ``--scheduler ADDRESS``
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
  orders scored per time range (see ``features.distributed``);
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
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:  # pragma: no cover
    import dask.dataframe as dd
    import lightgbm as lgb
    from distributed import Client

    from features.distributed import ForecastPartitions
    from features.forecast_frame import ForecastFeatureConfig, FrameReport

__all__ = [
    "ENGINES",
    "check_engine",
    "dask_client",
    "engine_context",
    "train_booster_dask",
    "fit_forecast_booster",
    "fit_forecast_boosters",
    "forecast_dataset",
    "order_features_engine",
    "score_orders_dask",
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

    from features.distributed import _client

    client = _client(client)
    kw = {k: v for k, v in params.items() if k not in ("num_threads", "n_jobs", "nthread", "num_thread")}
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Parameter .* will be ignored")
        model = DaskLGBMRegressor(client=client, n_estimators=int(num_boost_round), **kw).fit(X, y)
    booster = model.to_local().booster_
    return lgb.Booster(model_str=booster.model_to_string())


def fit_forecast_booster(
    partitions: ForecastPartitions,
    config: ForecastFeatureConfig,
    params: dict[str, Any],
    num_boost_round: int,
    *,
    client: Client | None = None,
) -> tuple[lgb.Booster, FrameReport]:
    """One horizon bucket of ``LGBMForecaster``: the distributed training frame, its trainable rows dealt to
    the workers, and ``train_booster_dask`` on ``log1p(y)`` (the forecaster's target)."""
    import dask.dataframe as dd

    from features.distributed import _client, build_training_frame_dask

    client = _client(client)
    frame, report = build_training_frame_dask(partitions, config, client=client)
    frames = client.compute(frame.to_delayed())
    del frame
    workers = sorted(client.scheduler_info()["workers"])
    pieces = client.map(_design_pieces, frames, n=len(workers), pure=False)
    del frames
    # piece (i, j): the rows of partition i dealt to worker j; each worker then fetches only its own pieces
    dealt = [[client.submit(_item, p, j, pure=False) for j in range(len(workers))] for p in pieces]
    del pieces
    X_parts, y_parts = [], []
    for j, w in enumerate(workers):
        mine = [row[j] for row in dealt]
        X_parts.append(
            client.submit(_concat_part, mine, 0, workers=[w], allow_other_workers=False, pure=False)
        )
        y_parts.append(
            client.submit(_concat_part, mine, 1, workers=[w], allow_other_workers=False, pure=False)
        )
    del dealt
    meta = client.submit(_head0, X_parts[0], pure=False).result()
    X = dd.from_delayed(X_parts, meta=meta, verify_meta=False)
    y = dd.from_delayed(y_parts, meta=pd.Series(dtype="float64", name="_label"), verify_meta=False)
    del X_parts, y_parts
    booster = train_booster_dask(X, y, params, num_boost_round, client=client)
    return booster, report


def fit_forecast_boosters(
    series: pd.DataFrame,
    tables: dict[str, pd.DataFrame | None],
    configs: Sequence[tuple[int, ForecastFeatureConfig]],
    params: dict[str, Any],
    num_boost_round: int,
    *,
    scheduler: str | None = None,
    npartitions: int | None = None,
) -> tuple[dict[int, lgb.Booster], dict[int, FrameReport]]:
    """``LGBMForecaster._fit_boosters`` on dask: the tables are split once, then one booster per
    ``(bucket_last_step, config)``. Returns boosters and frame reports keyed by the bucket's last step."""
    from features.distributed import ForecastPartitions

    boosters, reports = {}, {}
    with dask_client(scheduler) as client:
        parts = ForecastPartitions.from_pandas(
            series,
            tables.get("covariates"),
            tables.get("weather"),
            tables.get("static"),
            npartitions=npartitions,
            client=client,
        )
        for last, config in configs:
            boosters[last], reports[last] = fit_forecast_booster(
                parts, config, params, num_boost_round, client=client
            )
        parts.release()
    return boosters, reports


def forecast_dataset(
    model: Any,
    series: str | Path,
    out: str | Path,
    tables: dict[str, str | Path | pd.DataFrame | None],
    *,
    horizon: int | None,
    level: int,
    origin: Any,
    explain: bool,
    on_bad_rows: str,
    scheduler: str | None = None,
    npartitions: int | None = None,
) -> dict[str, Any]:
    """Batch forecast on dask: the series read lazily and split by series, ``model.predict`` per partition
    (with the global origin), output columns as ``training.forecast_job``'s, written by ``write_output``.

    ``tables`` values are paths (read and validated lazily/in the partitions) or validated frames (e.g. the
    model's snapshot). Returns ``rows, series, start, end, out`` (and ``files`` for a partitioned output).
    """
    import dask

    from features.distributed import ForecastPartitions

    with dask_client(scheduler) as client:
        parts = ForecastPartitions.from_paths(
            series,
            tables.get("covariates"),
            tables.get("weather"),
            tables.get("static"),
            on_bad_rows=on_bad_rows,
            npartitions=npartitions,
            client=client,
        )
        if origin is None:
            last = client.gather(client.compute(parts.delayed(_last_observed)))
            problems = [p for r in last for p in r.problems]
            if problems:
                from features.distributed import _merge_problems
                from features.errors import DataValidationError

                raise DataValidationError(_merge_problems(problems))
            observed = [r.value for r in last if r.value is not None]
            if not observed:
                raise ValueError(
                    "series has no observed y, so there is no default forecast origin. Fix: pass --origin."
                )
            origin = max(observed)
        slim = _without_history(model)
        model_f = client.scatter(slim, broadcast=True, hash=False)
        tasks = parts.delayed(
            _predict_part,
            model_f,
            horizon=horizon,
            level=level,
            origin=pd.Timestamp(origin),
            explain=explain,
        )
        frames = client.compute([dask.delayed(_value_or_problems)(t) for t in tasks])
        summary = write_output(frames, out, client=client)
        parts.release()
    summary["origin"] = str(pd.Timestamp(origin))
    return summary


def order_features_engine(engine: str, scheduler: str | None = None) -> Any:
    """A function with ``order_features``' signature for ``engine`` ("local": ``order_features`` itself;
    "dask": ``order_features_dask`` computed into one pandas frame on a cluster)."""
    check_engine(engine, scheduler)
    from features.order_features import order_features

    if engine == "local":
        return order_features

    def on_dask(orders: pd.DataFrame, labels: pd.DataFrame | None = None, *, prior_strength: float = 10.0):
        from features.distributed import order_features_dask

        with dask_client(scheduler) as client:
            frame, report = order_features_dask(orders, labels, prior_strength=prior_strength, client=client)
            return frame.compute().reset_index(drop=True), report

    return on_dask


def score_orders_dask(
    model: Any,
    history: pd.DataFrame,
    history_labels: pd.DataFrame | None,
    start: pd.Timestamp,
    end: pd.Timestamp,
    out: str | Path,
    score_frame: Any,
    *,
    reasons: str,
    k: int,
    scheduler: str | None = None,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """``score`` on dask: point-in-time features of the orders created in ``[start, end)`` per time range
    (``features.distributed.order_features_dask``), ``score_frame(model, features, reasons, k)`` (the local
    job's own function) per partition, written by ``write_output``. Returns ``order_id, created_at, score,
    flagged`` of every scored order (for the summary and metrics) and the write summary."""
    from features.distributed import order_features_dask

    with dask_client(scheduler) as client:
        features, _ = order_features_dask(
            history,
            history_labels,
            prior_strength=getattr(model, "prior_strength", 10.0),
            start=start,
            end=end,
            client=client,
        )
        model_f = client.scatter(model, broadcast=True, hash=False)
        frames = client.map(
            score_frame,
            client.compute(features.to_delayed()),
            model=model_f,
            reasons=reasons,
            k=k,
            pure=False,
        )
        light = client.gather(client.map(_light_columns, frames, pure=False))
        summary = write_output(frames, out, client=client)
    scored = pd.concat(light, ignore_index=True)
    return scored, summary


def write_output(frames: Any, out: str | Path, *, client: Client | None = None) -> dict[str, Any]:
    """Write predictions or scores: a Parquet dataset (one file per partition) when ``out`` is a directory or
    has no extension, else one CSV/Parquet file (``features.io.write_frame``).

    ``frames`` is a pandas DataFrame or a list of futures of pandas DataFrames (partitions, in order).
    Returns ``out``, ``rows``, ``files``, ``series`` (when there is a ``series_id``), ``start``/``end``.
    """
    from features.distributed import is_dataset_path, write_dataset
    from features.io import write_frame

    if isinstance(frames, pd.DataFrame):
        stats = [_stats(frames)]
        if is_dataset_path(out):
            written = write_dataset(frames, out)
        else:
            write_frame(frames, out)
            written = {"out": str(out), "files": 1, "rows": len(frames)}
    else:
        from features.distributed import _client

        client = _client(client)
        stats = client.gather(client.map(_stats, frames, pure=False))
        if is_dataset_path(out):
            import dask.dataframe as dd

            meta = client.submit(_head0, frames[0], pure=False).result()
            written = write_dataset(dd.from_delayed(frames, meta=meta, verify_meta=False), out, client=client)
        else:
            whole = pd.concat(client.gather(frames), ignore_index=True)
            write_frame(whole, out)
            written = {"out": str(out), "files": 1, "rows": len(whole)}
    return {**written, **_merge_stats(stats)}


# ------------------------------------------------------------------------------------------ internals


def _same_address(client: Any, scheduler: str) -> bool:
    address = getattr(client.scheduler, "address", "") or ""
    return address == scheduler or address.split("://")[-1] == scheduler.split("://")[-1]


def _design_pieces(frame: pd.DataFrame, n: int) -> list[tuple[pd.DataFrame, pd.Series]]:
    """The forecaster's design matrix of one partition (``LGBMForecaster._design``: open rows with an
    observed y) and its label ``log1p(y)``, dealt into ``n`` pieces by a hash of (series_id, ds)."""
    from training.forecaster import LGBMForecaster

    X, y = LGBMForecaster._design(frame, trainable_only=True)
    label = pd.Series(np.log1p(y), name="_label")
    if n == 1:
        return [(X.reset_index(drop=True), label)]
    rows = frame.loc[X.index]
    key = pd.util.hash_pandas_object(
        pd.DataFrame({"s": rows["series_id"].astype(str).to_numpy(), "d": rows["ds"].to_numpy()}), index=False
    ).to_numpy()
    which = key % np.uint64(n)
    return [
        (X.loc[which == j].reset_index(drop=True), label.loc[which == j].reset_index(drop=True))
        for j in range(n)
    ]


def _item(pieces: list, j: int) -> Any:
    return pieces[j]


def _concat_part(pieces: list[tuple[pd.DataFrame, pd.Series]], k: int) -> Any:
    return pd.concat([p[k] for p in pieces], ignore_index=True)


def _head0(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.iloc[:0]


def _last_observed(series: pd.DataFrame, tables: dict[str, Any], *, context_rows: int) -> pd.Timestamp | None:
    observed = series.loc[series["y"].notna(), "ds"]
    return None if observed.empty else pd.Timestamp(observed.max())


def _without_history(model: Any) -> Any:
    """A shallow copy of a fitted forecaster without the history and tables it carries (the partitions
    bring their own): what is shipped to every worker."""
    import copy

    slim = copy.copy(model)
    slim.history_ = model.history_.iloc[:0]
    slim.tables_ = {k: None for k in model.tables_}
    return slim


def _predict_part(
    series: pd.DataFrame,
    tables: dict[str, Any],
    model: Any,
    *,
    horizon: int | None,
    level: int,
    origin: pd.Timestamp,
    explain: bool,
    context_rows: int,
) -> pd.DataFrame:
    from training.forecast_job import forecast_output

    pred = model.predict(horizon, levels=(level,), explain=explain, series=series, origin=origin, **tables)
    return forecast_output(pred, level, explain)


def _value_or_problems(result: Any) -> pd.DataFrame:
    if result.problems:
        from features.distributed import _merge_problems
        from features.errors import DataValidationError

        raise DataValidationError(_merge_problems(result.problems))
    return result.value


def _light_columns(scored: pd.DataFrame) -> pd.DataFrame:
    return scored[["order_id", "created_at", "score", "flagged"]]


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
