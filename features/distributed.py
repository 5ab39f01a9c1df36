"""Dask engine for the feature builders: the SAME ``features`` functions, applied per partition.

Like mlforecast's ``DistributedMLForecast``, nothing here computes a feature: every partition is handed to
``features.validation.validate``, ``features.forecast_frame.build_training_frame`` (or, for forecasts, the
model's own ``predict``) and ``features.order_features.OrderHistory``, so a feature cannot be computed two
different ways. This module only decides what each partition sees, and merges the reports.

Forecast frames: partitioned by series
--------------------------------------
Every feature of a forecast row depends on its own series only, plus small shared tables. ``ForecastPartitions``
gives each series to exactly one partition (contiguous ranges of the sorted ``series_id``, balanced by row
count, so concatenating the partitions in order gives the single-machine row order), and each partition gets:

* its series' rows, validated in the partition (every validation rule of ``series`` is per series);
* its series' own ``covariates`` rows (a per-series covariate table is as large as the series table, so it is
  split, never broadcast), plus the covariate rows without ``series_id`` (they apply to every series: shared);
  plus two *context rows*: copies of a covariate row whose ``series_id`` is a reserved id no series has, dated
  at the first and last ``ds`` of the whole covariate table. ``build_training_frame`` sizes the look-ahead
  context of promo/holiday distances from the covariates' date range; the context rows make that range the
  same in every partition as on one machine. The feature code ignores them like any row of an unknown series,
  and they are subtracted from ``covariate_rows_for_unknown_series_ignored``, so every count is exact;
* its series' ``static`` rows (rows of unknown series go to partition 0, where they are counted as on one
  machine) and the whole ``weather`` table (one row per region and day: small, shared).

Category lists (``series_id`` and string covariates/static attributes) are learned per partition, unioned,
and applied with ``features.covariates.apply_categories``: the result has exactly the categories, values, rows
and counts of ``build_training_frame`` on the whole table (``tests/features/test_distributed.py``).

Order features: one shared as-of index, partitioned by time
-----------------------------------------------------------
Customer history is per customer, but SKU popularity, SKU exception rates and the global label rate that
smooths every rate span all customers, so no partition of the orders can compute them from its own rows. The
point-in-time lookups are already an index (``OrderHistory``: sorted int64 arrays and prefix sums, about a
second per million lines to build). The dask engine builds that index once, in a worker, shares it with every
worker, and scores contiguous time ranges of orders in parallel with ``OrderHistory.features``. Each partition
sees exactly the history a single machine sees (every order and label; the as-of searches keep only what was
strictly before each order), so partition boundaries cannot leak the future or hide the past. The cost: the
index must fit in one worker's memory (it holds a few int64 per order line). Beyond that, the next step would
be a first distributed pass for the SKU and global label timelines joined to customer partitions; it is not
implemented.

Inputs may be a file, a directory or a glob of Parquet files, read lazily (``read_table_lazy``). Everything
here needs a ``distributed.Client`` (``training.engine.dask_client`` opens one); dask is imported only
when these functions run.
"""

from __future__ import annotations

import glob
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from features.errors import DataValidationError, Problem
from features.forecast_frame import ForecastFeatureConfig, FrameReport, build_training_frame
from features.validation import ValidationReport, parse_timestamps, validate

if TYPE_CHECKING:  # pragma: no cover
    import dask.dataframe as dd
    from distributed import Client

    from features.order_features import OrderFeatureReport

__all__ = [
    "DEFAULT_PARTITION_ROWS",
    "CONTEXT_SERIES_ID",
    "ForecastPartitions",
    "PartitionResult",
    "read_table_lazy",
    "build_training_frame_dask",
    "write_training_frame_dask",
    "order_features_dask",
    "write_dataset",
    "is_dataset_path",
    "merge_frame_reports",
]

DEFAULT_PARTITION_ROWS = 250_000
"""Series rows per partition by default: a partition's feature frame is then ~75 MB (85 features) and its
build peaks at ~250 MB, whatever the number of series."""

CONTEXT_SERIES_ID = "\x00orderpulse-covariate-context"
"""Reserved ``series_id`` of the two context rows each partition's covariates get (see the module docstring)."""

_PARQUET = (".parquet", ".pq")
_CSV = (".csv", ".csv.gz", ".tsv")
_IGNORED_COV = "covariate_rows_for_unknown_series_ignored"


# ------------------------------------------------------------------------------------------ reading


def read_table_lazy(path: str | Path, table: str = "input") -> dd.DataFrame:
    """A dask DataFrame over one CSV/Parquet file, a directory of Parquet files or a glob of them (not read yet).

    The lazy counterpart of ``features.io.read_frame``: same file discovery, same id columns read as strings
    from CSV, strings kept as Python objects (as pandas reads them) so validation sees the same values.
    """
    import dask
    import dask.dataframe as dd

    files = _files(path, table)
    names = [f.lower() for f in files]
    with dask.config.set({"dataframe.convert-string": False}):
        if all(n.endswith(_PARQUET) for n in names):
            return dd.read_parquet(files)
        if all(n.endswith(_CSV) for n in names):
            sep = "\t" if names[0].endswith(".tsv") else ","
            header = pd.read_csv(files[0], sep=sep, nrows=0).columns
            as_str = {c: "string" for c in header if c.endswith("_id") or c in {"sku", "region", "series_id"}}
            compressed = any(n.endswith(".gz") for n in names)
            return dd.read_csv(
                files, sep=sep, dtype=as_str, blocksize=None if compressed else "64MB", low_memory=False
            )
    raise DataValidationError(
        [
            Problem(
                table=table,
                column=None,
                issue=f"cannot read {str(path)!r} lazily: it mixes formats or has an unknown extension ({files[:3]})",
                fix="pass Parquet (.parquet/.pq) or CSV (.csv/.csv.gz/.tsv) files of one format",
            )
        ]
    )


# ------------------------------------------------------------------------------------------ forecast partitions


@dataclass
class ForecastPartitions:
    """The forecast input tables split by series for the dask engine (see the module docstring).

    Build it with ``from_pandas`` (validated tables, e.g. inside ``LGBMForecaster.fit``) or ``from_paths``
    (raw files read lazily; every partition is validated where it is processed). ``assignment`` maps each
    ``series_id`` to its partition; ``delayed(fn)`` wraps ``fn(series, tables, **kwargs)`` on every
    partition's validated series and tables (``covariates``/``weather``/``static``) as lazy tasks returning
    ``PartitionResult``. ``dates`` are the distinct ``ds`` of all series (the frequency is inferred from them
    once, not per partition).
    """

    series: list[Any]
    assignment: pd.Series
    dates: np.ndarray
    covariates_own: list[Any] | None = None
    covariates_shared: Any = None
    covariate_dates: tuple[pd.Timestamp, pd.Timestamp] | None = None
    covariate_template: pd.DataFrame | None = None
    weather: Any = None
    static: list[Any] | None = None
    on_bad_rows: str | None = None
    covariates_raw: bool = False
    validation: dict[str, ValidationReport] = field(default_factory=dict)

    @property
    def npartitions(self) -> int:
        return len(self.series)

    @classmethod
    def from_pandas(
        cls,
        series: pd.DataFrame,
        covariates: pd.DataFrame | None = None,
        weather: pd.DataFrame | None = None,
        static: pd.DataFrame | None = None,
        *,
        npartitions: int | None = None,
        partition_rows: int = DEFAULT_PARTITION_ROWS,
        client: Client | None = None,
    ) -> ForecastPartitions:
        """Split validated tables (``features.validation.validate``) and send the pieces to the workers."""
        client = _client(client)
        if not isinstance(series, pd.DataFrame) or "series_id" not in series.columns:
            raise TypeError(
                "series must be a validated pandas DataFrame with a series_id column. "
                f"Got {type(series).__name__} instead."
            )
        ids = series["series_id"].astype("string")
        assignment = _assign(ids.value_counts(), npartitions, partition_rows)
        parts = _split(
            series, _partition_of(ids, assignment), len(assignment.unique()) if len(assignment) else 1
        )
        dates = pd.unique(series["ds"].dropna().to_numpy("datetime64[ns]"))
        out = cls(series=client.scatter(parts, hash=False), assignment=assignment, dates=dates)
        out._attach_pandas(covariates, weather, static, client)
        return out

    @classmethod
    def from_paths(
        cls,
        series: str | Path,
        covariates: str | Path | pd.DataFrame | None = None,
        weather: str | Path | pd.DataFrame | None = None,
        static: str | Path | pd.DataFrame | None = None,
        *,
        on_bad_rows: str = "raise",
        npartitions: int | None = None,
        partition_rows: int = DEFAULT_PARTITION_ROWS,
        client: Client | None = None,
    ) -> ForecastPartitions:
        """Read the tables lazily and split them by series; the driver never holds the series or covariates.

        Series (and per-series covariate) rows are validated inside their partition (the problems of all
        partitions are merged into one ``DataValidationError``; example row numbers count within the
        partition); the small tables (weather, static, covariate rows without ``series_id``) are validated
        here, once. A table given as a
        DataFrame is taken as validated (e.g. a model's snapshot) and split like ``from_pandas`` does.
        """
        from features.io import load_table

        client = _client(client)
        raw = read_table_lazy(series, "series")
        if "series_id" not in raw.columns:
            raise DataValidationError(
                [Problem("series", "series_id", "required column is missing", "add a series_id column")]
            )
        key = raw["series_id"].map_partitions(_id_key, meta=("series_id", "string"))
        dates_of = raw["ds"].map_partitions(_distinct_dates, meta=("ds", "datetime64[ns]"))
        counts, dates = client.gather(client.compute([key.value_counts(), dates_of]))  # one read
        assignment = _assign(counts, npartitions, partition_rows)
        n = len(assignment.unique()) if len(assignment) else 1
        out = cls(
            series=_by_partition(raw, "series_id", assignment, n),
            assignment=assignment,
            dates=pd.unique(np.asarray(dates, dtype="datetime64[ns]")),
        )
        out.on_bad_rows = on_bad_rows
        out._attach_pandas(
            *(t if isinstance(t, pd.DataFrame) else None for t in (covariates, weather, static)), client
        )
        if covariates is not None and not isinstance(covariates, pd.DataFrame):
            cov = read_table_lazy(covariates, "covariates")
            if "series_id" in cov.columns:
                ids = cov["series_id"].map_partitions(_id_key, meta=("series_id", "string"))
                cdates = cov["ds"].map_partitions(parse_timestamps, meta=("ds", "datetime64[ns]"))
                shared_raw, lo, hi, head = client.gather(  # one read of the table
                    client.compute(
                        [cov.loc[ids.isna()], cdates.min(), cdates.max(), cov.head(1, compute=False)]
                    )
                )
                if head.empty:  # the first file is empty: any row will do as the template
                    head = client.compute(cov.head(1, npartitions=-1, compute=False)).result()
                out.covariates_own = _by_partition(cov.loc[~ids.isna()], "series_id", assignment, n)
                out.covariates_raw = True
                out.covariate_dates = (pd.Timestamp(lo), pd.Timestamp(hi))
                out.covariate_template = validate(head, "covariates", on_bad_rows=on_bad_rows)[0]
            else:
                shared_raw = client.compute(cov).result()
            if len(shared_raw):
                shared, out.validation["covariates_shared"] = validate(
                    shared_raw, "covariates", on_bad_rows=on_bad_rows
                )
                out.covariates_shared = client.scatter(shared, hash=False, broadcast=True)
        if weather is not None and not isinstance(weather, pd.DataFrame):
            w, out.validation["weather"] = load_table(weather, "weather", on_bad_rows=on_bad_rows)
            out.weather = client.scatter(w, hash=False, broadcast=True)
        if static is not None and not isinstance(static, pd.DataFrame):
            st, out.validation["static"] = load_table(static, "static", on_bad_rows=on_bad_rows)
            parts = _split(st, _partition_of(st["series_id"].astype("string"), assignment), n)
            out.static = client.scatter(parts, hash=False)
        return out

    def _attach_pandas(
        self,
        covariates: pd.DataFrame | None,
        weather: pd.DataFrame | None,
        static: pd.DataFrame | None,
        client: Client,
    ) -> None:
        """Split validated per-series tables by ``assignment``; share the rest with every worker."""
        n = self.npartitions
        if covariates is not None and len(covariates):
            if "series_id" in covariates.columns:
                own = covariates["series_id"].notna().to_numpy()
                ids = covariates["series_id"].astype("string")
                pieces = _split(covariates.loc[own], _partition_of(ids[own], self.assignment), n)
                self.covariates_own = client.scatter(pieces, hash=False)
                shared = covariates.loc[~own].reset_index(drop=True)
                ds = covariates["ds"]
                self.covariate_dates = (pd.Timestamp(ds.min()), pd.Timestamp(ds.max()))
                self.covariate_template = covariates.iloc[:1].reset_index(drop=True)
            else:
                shared = covariates
            if len(shared):
                self.covariates_shared = client.scatter(shared, hash=False, broadcast=True)
        if weather is not None:
            self.weather = client.scatter(weather, hash=False, broadcast=True)
        if static is not None:
            ids = static["series_id"].astype("string")
            self.static = client.scatter(_split(static, _partition_of(ids, self.assignment), n), hash=False)

    def delayed(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> list[Any]:
        """Lazy ``PartitionResult(fn(series, tables, *args, context_rows=n, **kwargs))`` per partition.

        Compose more lazy steps on them and compute them together, so that a partition's inputs and
        intermediate frames are released as soon as its last step has run.
        """
        import dask

        run = dask.delayed(_run_partition, pure=False)
        return [
            run(
                fn,
                self.series[i],
                None if self.covariates_own is None else self.covariates_own[i],
                self.covariates_raw,
                self.covariates_shared,
                self.covariate_dates,
                self.covariate_template,
                self.weather,
                None if self.static is None else self.static[i],
                self.on_bad_rows,
                args,
                kwargs,
                dask_key_name=f"orderpulse-{getattr(fn, '__name__', 'fn').strip('_')}-{_token()}-{i}",
            )
            for i in range(self.npartitions)
        ]

    def release(self) -> None:
        """Drop the references to the pieces held by the workers."""
        self.series = []
        self.covariates_own = self.static = None
        self.covariates_shared = self.weather = None


@dataclass
class PartitionResult:
    """What one partition returned: ``value`` (``None`` when validation refused the partition), the
    validation reports of its tables and the problems found."""

    value: Any = None
    validation: dict[str, ValidationReport] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)


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

    client = _client(client)
    t0 = time.perf_counter()
    config = _resolved_config(partitions, config or ForecastFeatureConfig(), client)
    built = client.compute(partitions.delayed(_build_part, config))
    infos = client.gather(client.map(_info_of, built, pure=False))
    report, series_cats, categories = _merge_infos(infos, partitions, config, t0)
    # large arguments go to the workers once, as data (client.map would turn a long list into a task)
    [lists] = client.scatter([(series_cats, categories)], broadcast=True, hash=False)
    frames = client.map(_recode, built, lists=lists, pure=False)
    del built
    meta = client.submit(_head0, frames[0], pure=False).result()
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
    client = _client(client)
    t0 = time.perf_counter()
    out = Path(out)
    _prepare_dataset_dir(out)
    config = _resolved_config(partitions, config or ForecastFeatureConfig(), client)
    paths = [str(out / f"part-{i:05d}.parquet") for i in range(partitions.npartitions)]
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


# ------------------------------------------------------------------------------------------ order features


def order_features_dask(
    orders: pd.DataFrame,
    labels: pd.DataFrame | None = None,
    *,
    prior_strength: float = 10.0,
    start: Any = None,
    end: Any = None,
    npartitions: int | None = None,
    partition_orders: int = 50_000,
    client: Client | None = None,
) -> tuple[dd.DataFrame, OrderFeatureReport]:
    """``order_features(orders, labels)`` computed on the cluster, one contiguous time range per partition.

    ``orders``/``labels`` are validated tables (``features.validation``). ``start``/``end`` (optional) keep
    the orders created in ``[start, end)``; they are still scored against the whole history. Returns a dask
    DataFrame (partitions in time order; concatenated they equal the single-machine frame restricted to the
    window) and the merged ``OrderFeatureReport``. The ``OrderHistory`` is built once, in a worker, and
    shared (see the module docstring).
    """
    import dask.dataframe as dd

    from features.order_features import OrderHistory

    client = _client(client)
    t = parse_timestamps(orders["created_at"]).to_numpy("datetime64[ns]")
    order = np.lexsort((orders["order_id"].astype("string").to_numpy(dtype=object, na_value=""), t))
    o, t = orders.iloc[order].reset_index(drop=True), t[order]  # lines of an order are now contiguous
    window = np.ones(len(o), dtype=bool)
    if start is not None:
        window &= t >= np.datetime64(pd.Timestamp(start))
    if end is not None:
        window &= t < np.datetime64(pd.Timestamp(end))
    rows = np.flatnonzero(window)
    history = client.submit(
        OrderHistory,
        client.scatter(o, hash=False),
        None if labels is None else client.scatter(labels, hash=False),
        prior_strength=prior_strength,
        pure=False,
    )
    if not len(rows):
        raise ValueError(
            f"no order was created in [{start}, {end}); the orders run from {t.min() if len(t) else None} to "
            f"{t.max() if len(t) else None}. Check the window."
        )
    query = o.iloc[rows]
    bounds = _order_chunks(
        query["order_id"].astype("string").to_numpy(dtype=object), npartitions, partition_orders
    )
    pieces = client.scatter([query.iloc[a:b] for a, b in bounds], hash=False)
    if len(pieces) > 1:
        client.replicate([history])
    scored = client.map(_score_orders, pieces, history=history, pure=False)
    reports = client.gather(client.map(_second, scored, pure=False))
    frames = client.map(_first, scored, pure=False)
    del scored, history
    meta = client.submit(_head0, frames[0], pure=False).result()
    return dd.from_delayed(frames, meta=meta, verify_meta=False), _merge_order_reports(reports)


# ------------------------------------------------------------------------------------------ writing


def is_dataset_path(path: str | Path) -> bool:
    """True when ``path`` names a Parquet dataset (a directory, or a name without a file extension)."""
    p = Path(path)
    return p.is_dir() or not p.suffix


def write_dataset(
    frame: dd.DataFrame | pd.DataFrame, out: str | Path, *, client: Client | None = None
) -> dict[str, Any]:
    """Write ``frame`` as one Parquet file per partition (``out/part-00000.parquet`` ...); returns
    ``{"out", "files", "rows"}``. An existing directory must be empty or hold only such part files (they are
    replaced), so a typo cannot wipe a folder."""
    out = Path(out)
    _prepare_dataset_dir(out)
    if isinstance(frame, pd.DataFrame):
        path = out / "part-00000.parquet"
        frame.to_parquet(path, index=False)
        return {"out": str(out), "files": 1, "rows": len(frame)}
    client = _client(client)
    parts = frame.to_delayed()
    paths = [str(out / f"part-{i:05d}.parquet") for i in range(len(parts))]
    futures = client.compute([_write_part_delayed(p, path) for p, path in zip(parts, paths, strict=True)])
    rows = sum(client.gather(futures))
    return {"out": str(out), "files": len(paths), "rows": int(rows)}


# ------------------------------------------------------------------------------------------ internals


def _client(client: Client | None) -> Client:
    if client is not None:
        return client
    from distributed import get_client

    try:
        return get_client()
    except ValueError:
        raise RuntimeError(
            "The dask engine needs a distributed Client and none is running. Fix: run inside "
            "`with training.engine.dask_client(scheduler): ...` (a LocalCluster when scheduler is None)."
        ) from None


def _token() -> str:
    import uuid

    return uuid.uuid4().hex[:12]


def _files(path: str | Path, table: str) -> list[str]:
    text = str(path)
    p = Path(path)
    if any(ch in text for ch in "*?["):
        files = sorted(glob.glob(text))
        why = "the glob matched no file"
    elif p.is_dir():
        files = sorted(str(f) for f in p.rglob("*.parquet")) + sorted(str(f) for f in p.rglob("*.pq"))
        why = "the directory holds no .parquet file"
    elif p.exists():
        files, why = [text], ""
    else:
        files, why = [], "no such file"
    if not files:
        raise DataValidationError(
            [Problem(table=table, column=None, issue=f"cannot read {text!r}: {why}", fix="check the path")]
        )
    return files


def _id_key(s: pd.Series) -> pd.Series:
    """The id a raw value becomes after validation (so partitions agree with the validated table).

    ``validate`` normalises ids with ``_as_id``; applying it to the distinct values and taking them back by
    code gives the same result as on the whole column, without a Python-level pass over every row."""
    from features.validation import _as_id  # the normalisation validate() applies to ids

    codes, uniques = pd.factorize(s, use_na_sentinel=True)
    norm = _as_id(pd.Series(uniques, dtype=s.dtype))
    out = (
        norm.take(np.where(codes >= 0, codes, 0)).where(codes >= 0, pd.NA)
        if len(norm)
        else norm.reindex(range(len(s)))
    )
    return pd.Series(out.to_numpy(), index=s.index, dtype="string", name=s.name)


def _assign(counts: pd.Series, npartitions: int | None, partition_rows: int) -> pd.Series:
    """series_id -> partition: contiguous ranges of the sorted ids, balanced by row count, never empty."""
    counts = counts[counts.index.notna()] if len(counts) else counts
    if len(counts) == 0:
        raise ValueError("series has no rows with a series_id. Pass a non-empty series table.")
    ids = sorted(str(i) for i in counts.index)
    n = counts.set_axis([str(i) for i in counts.index]).reindex(ids).to_numpy(dtype="int64")
    total = int(n.sum())
    if npartitions is not None:
        if isinstance(npartitions, bool) or not isinstance(npartitions, int | np.integer) or npartitions < 1:
            raise ValueError(f"npartitions must be a positive int. Got {npartitions!r} instead.")
        wanted = int(npartitions)
    else:
        if not isinstance(partition_rows, int | np.integer) or partition_rows < 1:
            raise ValueError(f"partition_rows must be a positive int. Got {partition_rows!r} instead.")
        wanted = max(1, math.ceil(total / int(partition_rows)))
    wanted = min(wanted, len(ids))
    middle = 2 * (np.cumsum(n) - n) + n  # twice the running row count at each series' middle
    part = np.minimum((middle * wanted) // (2 * max(total, 1)), wanted - 1)
    part = np.unique(part, return_inverse=True)[1]  # renumber 0.. so no partition is empty
    return pd.Series(part.astype("int64"), index=pd.Index(ids, dtype=object), name="partition")


def _partition_of(ids: pd.Series, assignment: pd.Series) -> np.ndarray:
    """Partition of each row; ids not in the assignment (unknown series, missing ids) go to partition 0."""
    pos = assignment.index.get_indexer(ids.astype(object).where(ids.notna(), None))
    return np.where(pos >= 0, assignment.to_numpy()[np.maximum(pos, 0)], 0)


def _split(df: pd.DataFrame, part: np.ndarray, n: int) -> list[pd.DataFrame]:
    order = np.argsort(part, kind="stable")
    bounds = np.searchsorted(part[order], np.arange(n + 1))
    return [df.iloc[order[bounds[i] : bounds[i + 1]]].reset_index(drop=True) for i in range(n)]


def _by_partition(raw: dd.DataFrame, column: str, assignment: pd.Series, n: int) -> list[Any]:
    """Lazy pieces of ``raw``, piece i holding the rows of the series assigned to partition i (a shuffle)."""
    keyed = raw.assign(
        _orderpulse_partition=raw[column].map_partitions(
            lambda s: pd.Series(_partition_of(_id_key(s), assignment), index=s.index),
            meta=("_orderpulse_partition", "int64"),
        )
    )
    divisions = tuple(range(n)) + (n - 1,)
    return list(keyed.set_index("_orderpulse_partition", divisions=divisions).to_delayed())


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


def _distinct_dates(ds: pd.Series) -> pd.Series:
    parsed = ds if pd.api.types.is_datetime64_any_dtype(ds) else parse_timestamps(ds)
    return pd.Series(pd.unique(parsed.dropna().to_numpy("datetime64[ns]")), dtype="datetime64[ns]")


def _run_partition(
    fn: Callable[..., Any],
    series: pd.DataFrame,
    cov_own: pd.DataFrame | None,
    cov_raw: bool,
    cov_shared: pd.DataFrame | None,
    cov_dates: tuple[pd.Timestamp, pd.Timestamp] | None,
    cov_template: pd.DataFrame | None,
    weather: pd.DataFrame | None,
    static: pd.DataFrame | None,
    on_bad_rows: str | None,
    args: tuple,
    kwargs: dict,
) -> PartitionResult:
    result = PartitionResult()
    series = series.reset_index(drop=True)
    if cov_own is not None:
        cov_own = cov_own.reset_index(drop=True)
    if on_bad_rows is not None:
        series = _validated(series, "series", on_bad_rows, result)
        if cov_raw and cov_own is not None and len(cov_own):
            cov_own = _validated(cov_own, "covariates", on_bad_rows, result)
        if result.problems:
            return result
    covariates, n_context = _partition_covariates(cov_own, cov_shared, cov_dates, cov_template)
    tables = {"covariates": covariates, "weather": weather, "static": static}
    result.value = fn(series, tables, *args, context_rows=n_context, **kwargs)
    return result


def _validated(df: pd.DataFrame, table: str, on_bad_rows: str, result: PartitionResult) -> pd.DataFrame:
    try:
        clean, report = validate(df, table, on_bad_rows=on_bad_rows)  # type: ignore[arg-type]
    except DataValidationError as exc:  # sent back as data: the exception does not survive pickling
        result.problems.extend(exc.problems)
        return df
    result.validation[table] = report
    return clean


def _partition_covariates(
    own: pd.DataFrame | None,
    shared: pd.DataFrame | None,
    dates: tuple[pd.Timestamp, pd.Timestamp] | None,
    template: pd.DataFrame | None,
) -> tuple[pd.DataFrame | None, int]:
    """The partition's covariates: own rows, shared rows and the two context rows (see module docstring).

    The context rows are copies of a real (validated) covariate row, so every column keeps its dtype."""
    pieces = [p for p in (own, shared) if p is not None and len(p)]
    if dates is None or template is None or template.empty:
        return (
            pd.concat(pieces, ignore_index=True) if len(pieces) > 1 else (pieces[0] if pieces else None)
        ), 0
    context = pd.concat([template.iloc[:1], template.iloc[:1]], ignore_index=True)
    context["series_id"] = pd.array([CONTEXT_SERIES_ID] * 2, dtype=template["series_id"].dtype)
    context["ds"] = pd.to_datetime(list(dates)).astype(template["ds"].dtype)
    return pd.concat([*pieces, context], ignore_index=True), 2


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
        raise DataValidationError(_merge_problems(problems))
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
    parts.validation.update(_merge_validation([info.validation for info in infos]))
    report.seconds = time.perf_counter() - t0
    return report, series_cats, dict(report.categories)


def _merge_validation(reports: list[dict[str, ValidationReport]]) -> dict[str, ValidationReport]:
    out: dict[str, ValidationReport] = {}
    for per_table in reports:
        for table, r in per_table.items():
            m = out.setdefault(table, ValidationReport(table=r.table, rows_in=0))
            m.rows_in += r.rows_in
            m.rows_out += r.rows_out
            for k, v in r.repairs.items():
                m.count(k, v)
    return out


def _merge_problems(problems: list[Problem]) -> list[Problem]:
    merged: dict[tuple, Problem] = {}
    for p in problems:
        key = (p.table, p.column, p.issue, p.fix)
        if key in merged:
            m = merged[key]
            merged[key] = replace(m, n_rows=m.n_rows + p.n_rows, examples=(m.examples + p.examples)[:3])
        else:
            merged[key] = p
    return list(merged.values())


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
        frame.to_parquet(path, index=False)
    return info


def _recode_file(path: str, lists: tuple[list[str], dict[str, list[str]]]) -> int:
    frame = pd.read_parquet(path)
    _with_categories(frame, *lists).to_parquet(path, index=False)
    return len(frame)


def _head0(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.iloc[:0]


def _first(pair: tuple) -> Any:
    return pair[0]


def _second(pair: tuple) -> Any:
    return pair[1]


def _order_chunks(
    order_ids: np.ndarray, npartitions: int | None, partition_orders: int
) -> list[tuple[int, int]]:
    """Row ranges of about equal numbers of orders; the lines of one order never straddle two ranges."""
    n_rows = len(order_ids)
    starts = np.flatnonzero(np.r_[True, order_ids[1:] != order_ids[:-1]])  # lines of an order are contiguous
    n_orders = len(starts)
    if npartitions is None:
        npartitions = max(1, math.ceil(n_orders / max(int(partition_orders), 1)))
    k = max(1, min(int(npartitions), n_orders))
    cut = starts[(np.arange(1, k) * n_orders) // k] if k > 1 else np.array([], dtype=int)
    edges = np.r_[0, cut, n_rows].astype(int)
    return [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:], strict=True) if b > a]


def _score_orders(lines: pd.DataFrame, history: Any) -> tuple[pd.DataFrame, OrderFeatureReport]:
    return history.features(lines)


def _merge_order_reports(reports: list[OrderFeatureReport]) -> OrderFeatureReport:
    first = reports[0]
    merged = replace(first, orders=0, lines=0, guest_orders=0, unknown_category_values={})
    for r in reports:
        merged.orders += r.orders
        merged.lines += r.lines
        merged.guest_orders += r.guest_orders
        for c, n in r.unknown_category_values.items():
            merged.unknown_category_values[c] = merged.unknown_category_values.get(c, 0) + n
    return merged


def _prepare_dataset_dir(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise ValueError(
            f"{str(out)!r} is a file; a partitioned output needs a directory. Fix: pass a new path."
        )
    if out.is_dir():
        foreign = [
            p.name for p in out.iterdir() if not (p.name.startswith("part-") and p.suffix == ".parquet")
        ]
        if foreign:
            raise ValueError(
                f"{str(out)!r} holds other files ({foreign[:3]}); refusing to write a partitioned dataset "
                "into it. Fix: pass an empty or new directory."
            )
        for p in out.glob("part-*.parquet"):
            p.unlink()
    out.mkdir(parents=True, exist_ok=True)


def _write_part_delayed(part: Any, path: str) -> Any:
    import dask

    return dask.delayed(_write_part)(part, path)


def _write_part(frame: pd.DataFrame, path: str) -> int:
    frame.to_parquet(path, index=False)
    return len(frame)
