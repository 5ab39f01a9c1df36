"""Dask forecast feature frames: ``build_training_frame`` on every series partition, reports merged.

The result equals the single-machine frame row for row, with the same categories (see ``features.dask``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from features.dask import head0, require_client
from features.dask.partitions import ForecastPartitions, PartitionResult, merge_validation
from features.errors import DataValidationError, merge_problems
from features.forecast_config import ForecastFeatureConfig
from features.forecast_frame import FrameReport, build_training_frame
from features.io import dataset_part_path, prepare_dataset_dir, write_frame

if TYPE_CHECKING:  # pragma: no cover
    import dask.dataframe as dd
    from distributed import Client

__all__ = ["build_training_frame_dask", "write_training_frame_dask", "merge_frame_reports"]

_IGNORED_COV = "covariate_rows_for_unknown_series_ignored"


def build_training_frame_dask(
    partitions: ForecastPartitions,
    config: ForecastFeatureConfig | None = None,
    *,
    client: Client | None = None,
) -> tuple[dd.DataFrame, FrameReport]:
    """``build_training_frame`` on every partition; the frames stay on the workers (persisted).

    Returns a dask DataFrame whose partitions, computed and concatenated, equal the single-machine frame row
    for row (same categories), and the merged ``FrameReport``. Raises ``DataValidationError`` with every
    problem of every partition when a table is refused.
    """
    import dask.dataframe as dd

    client = require_client(client)
    t0 = time.perf_counter()
    config = _resolved_config(partitions, config or ForecastFeatureConfig(), client)
    built = client.compute(partitions.delayed(_build_part, config))
    infos = client.gather(client.map(_info_of, built, pure=False))
    report, series_cats, categories = _merge_infos(infos, partitions, config, t0)
    # large arguments go to the workers once, as data (client.map would turn a long list into a task)
    [lists] = client.scatter([(series_cats, categories)], broadcast=True, hash=False)
    frames = client.map(_recode, built, lists=lists, pure=False)
    del built
    meta = client.submit(head0, frames[0], pure=False).result()
    return dd.from_delayed(frames, meta=meta, verify_meta=False), report


def write_training_frame_dask(
    partitions: ForecastPartitions,
    out: str | Path,
    config: ForecastFeatureConfig | None = None,
    *,
    client: Client | None = None,
) -> FrameReport:
    """Build the training frame partition by partition and write it as a Parquet dataset under ``out``.

    Memory per worker stays that of one partition: each frame is written as soon as it is built (file
    ``part-00000.parquet`` ...), then every file is rewritten with the union of the category lists, so the
    files read back (``features.io.read_frame(out)``) as the single-machine frame.
    """
    client = require_client(client)
    t0 = time.perf_counter()
    out = prepare_dataset_dir(out)
    config = _resolved_config(partitions, config or ForecastFeatureConfig(), client)
    paths = [str(dataset_part_path(out, i)) for i in range(partitions.npartitions)]
    import dask

    # files are written with series_id categories = every assigned series (the final list unless validation
    # dropped a whole series); only files whose category lists turn out to differ from the union are rewritten
    assigned = [str(i) for i in partitions.assignment.index]
    [assigned_f] = client.scatter([assigned], broadcast=True, hash=False)
    write = dask.delayed(_build_and_write, pure=False)
    tasks = [
        write(d, path, assigned_f)
        for d, path in zip(partitions.delayed(_build_part, config), paths, strict=True)
    ]
    infos = client.gather(client.compute(tasks))
    report, series_cats, categories = _merge_infos(infos, partitions, config, t0)
    stale = [
        path
        for path, info in zip(paths, infos, strict=True)
        if series_cats != assigned or info.value[0].categories != categories
    ]
    if stale:
        [lists] = client.scatter([(series_cats, categories)], broadcast=True, hash=False)
        client.gather(client.map(_recode_file, stale, lists=lists, pure=False))
    report.seconds = time.perf_counter() - t0
    return report


def merge_frame_reports(reports: Sequence[FrameReport]) -> FrameReport:
    """One ``FrameReport`` for frames built per partition: counts summed, categories unioned, dates spanned."""
    reports = [r for r in reports if r is not None]
    if not reports:
        raise ValueError("No partition report to merge: every partition was empty.")
    first = reports[0]
    merged = FrameReport(
        kind=first.kind, freq=first.freq, origin=first.origin, horizon=first.horizon, feature_names=[]
    )
    for r in reports:
        for k, v in r.counts.items():
            merged.count(
                k, v, keep_zero=k in ("rows", "series", "gap_rows_inserted", "closed_rows", "missing_y_rows")
            )
        if not merged.feature_names and r.feature_names:
            merged.feature_names = list(r.feature_names)
        for col, cats in r.categories.items():
            merged.categories[col] = sorted(set(merged.categories.get(col, [])) | set(cats))
        if r.first_ds is not None:
            merged.first_ds = r.first_ds if merged.first_ds is None else min(merged.first_ds, r.first_ds)
            merged.last_ds = r.last_ds if merged.last_ds is None else max(merged.last_ds, r.last_ds)
    return merged


# ---------------------------------------------------------------------------------------------------------


def _resolved_config(
    parts: ForecastPartitions, config: ForecastFeatureConfig, client: Client
) -> ForecastFeatureConfig:
    """The config with the frequency inferred once from all distinct dates (not per partition)."""
    from features.calendar import infer_freq

    if not isinstance(config, ForecastFeatureConfig):
        raise TypeError(f"config must be a ForecastFeatureConfig. Got {type(config).__name__} instead.")
    values = pd.Series(np.sort(np.asarray(parts.dates, dtype="datetime64[ns]")))
    if values.empty:
        raise ValueError("series has no valid ds. Pass a non-empty, validated series table.")
    return replace(config, freq=infer_freq(values, config.freq))


def _build_part(
    series: pd.DataFrame, tables: dict[str, Any], config: ForecastFeatureConfig, *, context_rows: int
) -> tuple[pd.DataFrame, FrameReport]:
    frame, report = build_training_frame(series, config=config, **tables)
    if context_rows:
        left = report.counts.get(_IGNORED_COV, 0) - context_rows
        if left:
            report.counts[_IGNORED_COV] = left
        else:
            report.counts.pop(_IGNORED_COV, None)
    return frame, report


def _info_of(result: PartitionResult) -> PartitionResult:
    """The result without the frame, plus the partition's series list (what the driver needs)."""
    if result.value is None:
        return result
    frame, report = result.value
    return PartitionResult(
        value=(report, [str(c) for c in frame["series_id"].cat.categories], _schema(frame)),
        validation=result.validation,
    )


def _schema(frame: pd.DataFrame) -> list[tuple[str, str]]:
    return [
        (c, "category" if isinstance(t, pd.CategoricalDtype) else str(t)) for c, t in frame.dtypes.items()
    ]


def _merge_infos(
    infos: list[PartitionResult], parts: ForecastPartitions, config: ForecastFeatureConfig, t0: float
) -> tuple[FrameReport, list[str], dict[str, list[str]]]:
    problems = [p for info in infos for p in info.problems]
    if problems:
        raise DataValidationError(merge_problems(problems))
    reports = [info.value[0] for info in infos]
    schemas = {tuple(info.value[2]) for info in infos}
    if len(schemas) > 1:
        a, b = list(schemas)[:2]
        diff = sorted(set(a) ^ set(b))[:6]
        raise ValueError(
            f"partitions built feature frames with different columns/dtypes ({diff}); a covariate or static "
            "column probably holds numbers in some files and text in others. Fix: give the column one type "
            "in every input file."
        )
    series_cats = sorted({s for info in infos for s in info.value[1]})
    report = merge_frame_reports(reports)
    parts.validation.update(merge_validation([info.validation for info in infos]))
    report.seconds = time.perf_counter() - t0
    return report, series_cats, dict(report.categories)


def _recode(result: PartitionResult, lists: tuple[list[str], dict[str, list[str]]]) -> pd.DataFrame:
    frame, _ = result.value
    return _with_categories(frame, *lists)


def _with_categories(
    frame: pd.DataFrame, series_categories: list[str], categories: dict[str, list[str]]
) -> pd.DataFrame:
    from features.covariates import apply_categories

    out, _ = apply_categories(frame, categories)
    out["series_id"] = out["series_id"].cat.set_categories(pd.Index(series_categories, dtype=object))
    return out


def _build_and_write(result: PartitionResult, path: str, series_categories: list[str]) -> PartitionResult:
    info = _info_of(result)
    if result.value is not None:
        frame = result.value[0]
        frame["series_id"] = frame["series_id"].cat.set_categories(pd.Index(series_categories, dtype=object))
        write_frame(frame, path)
    return info


def _recode_file(path: str, lists: tuple[list[str], dict[str, list[str]]]) -> int:
    frame = pd.read_parquet(path)
    write_frame(_with_categories(frame, *lists), path)
    return len(frame)
