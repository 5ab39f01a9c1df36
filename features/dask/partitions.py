"""Series partitioning for the dask engine: ``ForecastPartitions`` gives each series to one partition.

See ``features.dask`` for what each partition sees (its series, its own covariates plus the shared rows and
two context rows, its static rows, the whole weather table) and why.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from features.dask import require_client, task_token
from features.dask.reading import distinct_dates, id_key, read_table_lazy
from features.errors import DataValidationError, Problem
from features.validation import ValidationReport, parse_timestamps, validate

if TYPE_CHECKING:  # pragma: no cover
    import dask.dataframe as dd
    from distributed import Client

__all__ = [
    "DEFAULT_PARTITION_ROWS",
    "CONTEXT_SERIES_ID",
    "ForecastPartitions",
    "PartitionResult",
    "merge_validation",
]

DEFAULT_PARTITION_ROWS = 250_000
"""Series rows per partition by default: a partition's feature frame is then ~75 MB (85 features) and its
build peaks at ~250 MB, whatever the number of series."""

CONTEXT_SERIES_ID = "\x00orderpulse-covariate-context"
"""Reserved ``series_id`` of the two context rows each partition's covariates get (see the module docstring)."""


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
        client = require_client(client)
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

        client = require_client(client)
        raw = read_table_lazy(series, "series")
        if "series_id" not in raw.columns:
            raise DataValidationError(
                [Problem("series", "series_id", "required column is missing", "add a series_id column")]
            )
        key = raw["series_id"].map_partitions(id_key, meta=("series_id", "string"))
        dates_of = raw["ds"].map_partitions(distinct_dates, meta=("ds", "datetime64[ns]"))
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
                ids = cov["series_id"].map_partitions(id_key, meta=("series_id", "string"))
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
                dask_key_name=f"orderpulse-{getattr(fn, '__name__', 'fn').strip('_')}-{task_token()}-{i}",
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


def merge_validation(reports: list[dict[str, ValidationReport]]) -> dict[str, ValidationReport]:
    """One ``ValidationReport`` per table for tables validated per partition: rows and repairs summed."""
    out: dict[str, ValidationReport] = {}
    for per_table in reports:
        for table, r in per_table.items():
            m = out.setdefault(table, ValidationReport(table=r.table, rows_in=0))
            m.rows_in += r.rows_in
            m.rows_out += r.rows_out
            for k, v in r.repairs.items():
                m.count(k, v)
    return out


# ---------------------------------------------------------------------------------------------------------


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
            lambda s: pd.Series(_partition_of(id_key(s), assignment), index=s.index),
            meta=("_orderpulse_partition", "int64"),
        )
    )
    divisions = tuple(range(n)) + (n - 1,)
    return list(keyed.set_index("_orderpulse_partition", divisions=divisions).to_delayed())


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
