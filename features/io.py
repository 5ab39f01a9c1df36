"""Reading the six input tables from CSV or Parquet (chosen by file extension).

``load_table`` = ``read_frame`` + ``validation.validate``: what every CLI command and training job uses.
"""

from __future__ import annotations

import glob
from pathlib import Path

import pandas as pd

from features.errors import DataValidationError, Problem
from features.validation import TableName, ValidationReport, validate

__all__ = ["read_frame", "load_table", "write_frame", "SUPPORTED_SUFFIXES"]

SUPPORTED_SUFFIXES = (".csv", ".csv.gz", ".tsv", ".parquet", ".pq")


def read_frame(path: str | Path, table: str = "input") -> pd.DataFrame:
    """Read one CSV/Parquet file, a directory of Parquet files, or a glob of them.

    CSV columns are read as strings where they look like identifiers (``*_id``, ``sku``, ``region``) so
    ids like ``"007"`` keep their leading zeros.
    """
    p = Path(path)
    text = str(path)
    if any(ch in text for ch in "*?["):
        files = sorted(glob.glob(text))
        if not files:
            raise _missing(table, text, "the glob matched no file")
        return pd.concat([read_frame(f, table) for f in files], ignore_index=True)
    if p.is_dir():
        files = sorted(p.rglob("*.parquet")) + sorted(p.rglob("*.pq"))
        if not files:
            raise _missing(table, text, "the directory holds no .parquet file")
        return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
    if not p.exists():
        raise _missing(table, text, "no such file")
    name = p.name.lower()
    if name.endswith((".parquet", ".pq")):
        return pd.read_parquet(p)
    if name.endswith((".csv", ".csv.gz", ".tsv")):
        sep = "\t" if name.endswith(".tsv") else ","
        header = pd.read_csv(p, sep=sep, nrows=0).columns
        as_str = {c: "string" for c in header if c.endswith("_id") or c in {"sku", "region", "series_id"}}
        return pd.read_csv(p, sep=sep, dtype=as_str, low_memory=False)
    raise DataValidationError(
        [
            Problem(
                table=table,
                column=None,
                issue=f"cannot tell the format of {text!r} from its extension",
                fix=f"name the file with one of {', '.join(SUPPORTED_SUFFIXES)}",
            )
        ]
    )


def load_table(
    path: str | Path, table: TableName, *, on_bad_rows: str = "raise"
) -> tuple[pd.DataFrame, ValidationReport]:
    """Read and validate one input table; see ``features.validation`` for the policies."""
    return validate(read_frame(path, table), table, on_bad_rows=on_bad_rows)


def write_frame(df: pd.DataFrame, path: str | Path) -> Path:
    """Write a frame as Parquet or CSV by extension, creating parent directories."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    if p.name.lower().endswith((".parquet", ".pq")):
        df.to_parquet(p, index=False)
    elif p.name.lower().endswith((".csv", ".csv.gz")):
        df.to_csv(p, index=False)
    else:
        raise ValueError(f"Cannot write {str(p)!r}: use a .parquet or .csv extension.")
    return p


def _missing(table: str, text: str, why: str) -> DataValidationError:
    return DataValidationError(
        [Problem(table=table, column=None, issue=f"cannot read {text!r}: {why}", fix="check the path")]
    )
