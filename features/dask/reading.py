"""Lazy reading for the dask engine: the files ``features.io.discover_files`` finds, as a dask DataFrame.

Same file discovery and id-column rule as ``features.io.read_frame``; ``id_key`` gives the id a raw value
becomes after validation, so partitions agree with the validated table.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from features.errors import DataValidationError, Problem
from features.ids import normalize_ids
from features.io import PARQUET_SUFFIXES, TEXT_SUFFIXES, discover_files, is_id_column
from features.validation import parse_timestamps

if TYPE_CHECKING:  # pragma: no cover
    import dask.dataframe as dd

__all__ = ["read_table_lazy", "id_key", "distinct_dates"]


def read_table_lazy(path: str | Path, table: str = "input") -> dd.DataFrame:
    """A dask DataFrame over one CSV/Parquet file, a directory of Parquet files or a glob of them (not read yet).

    The lazy counterpart of ``features.io.read_frame``: same file discovery, same id columns read as strings
    from CSV, strings kept as Python objects (as pandas reads them) so validation sees the same values.
    """
    import dask
    import dask.dataframe as dd

    files = discover_files(path, table)
    names = [f.lower() for f in files]
    with dask.config.set({"dataframe.convert-string": False}):
        if all(n.endswith(PARQUET_SUFFIXES) for n in names):
            return dd.read_parquet(files)
        if all(n.endswith(TEXT_SUFFIXES) for n in names):
            sep = "\t" if names[0].endswith(".tsv") else ","
            header = pd.read_csv(files[0], sep=sep, nrows=0).columns
            as_str = {c: "string" for c in header if is_id_column(c)}
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


def id_key(s: pd.Series) -> pd.Series:
    """The id a raw value becomes after validation (so partitions agree with the validated table):
    ``normalize_ids``, which runs the rule on the distinct values and maps them back by code."""
    return normalize_ids(s)


def distinct_dates(ds: pd.Series) -> pd.Series:
    """The distinct parsed timestamps of a raw ``ds`` column (what the frequency is inferred from)."""
    parsed = ds if pd.api.types.is_datetime64_any_dtype(ds) else parse_timestamps(ds)
    return pd.Series(pd.unique(parsed.dropna().to_numpy("datetime64[ns]")), dtype="datetime64[ns]")
