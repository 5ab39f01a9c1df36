"""The dask code paths of the forecaster: training one booster per horizon bucket on the workers
(``lightgbm.dask`` on the distributed training frame) and batch forecasts per series partition.

See ``training.engine`` for what runs where with ``--engine dask``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from features.dask import head0
from features.forecast_frame import design_matrix
from training.engine import dask_client, train_booster_dask, write_output
from training.forecast.transforms import forward, target_offsets

if TYPE_CHECKING:  # pragma: no cover
    import lightgbm as lgb
    from distributed import Client

    from features.dask.partitions import ForecastPartitions
    from features.forecast_config import ForecastFeatureConfig
    from features.forecast_frame import FrameReport

__all__ = ["fit_forecast_booster", "fit_forecast_boosters", "forecast_dataset"]


def fit_forecast_booster(
    partitions: ForecastPartitions,
    config: ForecastFeatureConfig,
    params: dict[str, Any],
    num_boost_round: int,
    *,
    client: Client | None = None,
    transform: str = "log",
) -> tuple[lgb.Booster, FrameReport]:
    """One horizon bucket of ``LGBMForecaster``: the distributed training frame, its trainable rows dealt to
    the workers, and ``train_booster_dask`` on the forecaster's target (``log1p(y)`` minus the offset of the
    target ``transform``, ``training.forecast.transforms``)."""
    import dask.dataframe as dd

    from features.dask import require_client
    from features.dask.forecast import build_training_frame_dask

    client = require_client(client)
    frame, report = build_training_frame_dask(partitions, config, client=client)
    frames = client.compute(frame.to_delayed())
    del frame
    workers = sorted(client.scheduler_info()["workers"])
    pieces = client.map(
        _design_pieces, frames, n=len(workers), transform=transform, level_name=config.level_name, pure=False
    )
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
    meta = client.submit(head0, X_parts[0], pure=False).result()
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
    transform: str = "log",
) -> tuple[dict[int, lgb.Booster], dict[int, FrameReport]]:
    """``LGBMForecaster._fit_boosters`` on dask: the tables are split once, then one booster per
    ``(bucket_last_step, config)``. Returns boosters and frame reports keyed by the bucket's last step."""
    from features.dask.partitions import ForecastPartitions

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
                parts, config, params, num_boost_round, client=client, transform=transform
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
    shape: Callable[[pd.DataFrame, int, bool], pd.DataFrame],
    scheduler: str | None = None,
    npartitions: int | None = None,
    levels_output: Callable[[pd.DataFrame, pd.DataFrame, pd.Timestamp], pd.DataFrame] | None = None,
) -> dict[str, Any]:
    """Batch forecast on dask: the series read lazily and split by series, ``model.predict`` per partition
    (with the global origin), shaped by ``shape(pred, level, explain)`` (the local job's own output
    function), written by ``write_output``.

    ``tables`` values are paths (read and validated lazily/in the partitions) or validated frames (e.g. the
    model's snapshot). Returns ``rows, series, start, end, out`` (and ``files`` for a partitioned output).

    ``levels_output`` (for ``--levels``; the model must have a fitted hierarchy): each partition also sums its
    series per aggregate and day (``features.hierarchy.member_sums``, forecast days included); the client adds
    those sums up and writes one table, ``levels_output(series_pred, sums, origin)`` (the local job's
    ``training.forecast.hierarchy.hierarchy_output`` with ``sums``). Only the sums and the forecast rows travel
    to the client, never the series history.
    """
    import dask

    from features.dask.partitions import ForecastPartitions

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
                from features.errors import DataValidationError, merge_problems

                raise DataValidationError(merge_problems(problems))
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
            shape=shape,
            hierarchy=None if levels_output is None else model.hierarchy_.hierarchy_,
        )
        frames = client.compute([dask.delayed(_value_or_problems)(t) for t in tasks])
        if levels_output is None:
            summary = write_output(frames, out, client=client)
        else:
            summary = write_output(_levels_frame(client.gather(frames), levels_output, origin), out)
        parts.release()
    summary["origin"] = str(pd.Timestamp(origin))
    return summary


def _levels_frame(
    results: list[tuple[pd.DataFrame, pd.DataFrame]],
    levels_output: Callable[[pd.DataFrame, pd.DataFrame, pd.Timestamp], pd.DataFrame],
    origin: Any,
) -> pd.DataFrame:
    """Every level's rows from the partitions' ``(forecast, member_sums)``."""
    from features.hierarchy import combine_member_sums

    series_pred = pd.concat([pred for pred, _ in results], ignore_index=True)
    sums = combine_member_sums(part_sums for _, part_sums in results)
    return levels_output(series_pred, sums, pd.Timestamp(origin))


def _design_pieces(
    frame: pd.DataFrame, n: int, transform: str = "log", level_name: str = ""
) -> list[tuple[pd.DataFrame, pd.Series]]:
    """The forecaster's design matrix of one partition (``design_matrix``: open rows with an observed y) and
    its label (``forward(y, offset)`` of the target transform), dealt into ``n`` pieces by a hash of
    (series_id, ds)."""
    X, y = design_matrix(frame, trainable_only=True)
    offset, _ = target_offsets(frame.loc[X.index], transform, level_name)
    label = pd.Series(forward(y, offset), name="_label")
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
    shape: Callable[[pd.DataFrame, int, bool], pd.DataFrame] | None,
    context_rows: int,
    hierarchy: Any = None,
) -> Any:
    """One partition's forecast, shaped; with ``hierarchy``, the raw forecast and the partition's
    ``member_sums`` (history + forecast days) instead."""
    pred = model.predict(horizon, levels=(level,), explain=explain, series=series, origin=origin, **tables)
    if hierarchy is None:
        assert shape is not None
        return shape(pred, level, explain)
    from features.hierarchy import member_sums, with_forecast_days

    return pred, member_sums(hierarchy, with_forecast_days(series, pred))


def _value_or_problems(result: Any) -> pd.DataFrame:
    if result.problems:
        from features.errors import DataValidationError, merge_problems

        raise DataValidationError(merge_problems(result.problems))
    return result.value
