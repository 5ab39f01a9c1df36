"""Reading and writing tables: the one home of file discovery, the id-column rule and the output writer.

``read_frame`` reads a CSV/Parquet file, a directory of Parquet files or a glob of them (``discover_files``
finds them; ``features.dask.reading`` reads the same files lazily). ``load_table`` = ``read_frame`` +
``validation.validate``: what every CLI command and training job uses. ``write_frame`` writes every output
(feature frames, forecasts, scores, backtests, converted datasets) and decides the format by the path:
``.csv``/``.csv.gz``/``.tsv`` text, ``.parquet``/``.pq`` one Parquet file, an existing directory or a path
without extension a partitioned Parquet dataset (``part-00000.parquet`` ...).
"""

from __future__ import annotations

import glob
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from features.errors import DataValidationError, Problem
from features.validation import TableName, ValidationReport, validate

if TYPE_CHECKING:  # pragma: no cover
    import dask.dataframe as dd
    from distributed import Client

__all__ = [
    "SUPPORTED_SUFFIXES",
    "PARQUET_SUFFIXES",
    "TEXT_SUFFIXES",
    "is_id_column",
    "discover_files",
    "read_frame",
    "load_table",
    "is_dataset_path",
    "dataset_part_path",
    "prepare_dataset_dir",
    "write_frame",
]

PARQUET_SUFFIXES = (".parquet", ".pq")
TEXT_SUFFIXES = (".csv", ".csv.gz", ".tsv")
SUPPORTED_SUFFIXES = TEXT_SUFFIXES + PARQUET_SUFFIXES


def is_id_column(name: object) -> bool:
    """True for columns read as strings from text files (``*_id``, ``sku``, ``region``), so ids like
    ``"007"`` keep their leading zeros."""
    text = str(name)
    return text.endswith("_id") or text in {"sku", "region", "series_id"}


def discover_files(path: str | Path, table: str = "input") -> list[str]:
    """The files behind ``path``: the files a glob matches (sorted), the ``.parquet``/``.pq`` files under a
    directory (recursively, sorted), or the file itself. Raises ``DataValidationError`` naming the path when
    there is none."""
    text = str(path)
    p = Path(path)
    if any(ch in text for ch in "*?["):
        files = sorted(glob.glob(text))
        why = "the glob matched no file"
    elif p.is_dir():
        files = [str(f) for suffix in PARQUET_SUFFIXES for f in sorted(p.rglob(f"*{suffix}"))]
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


def read_frame(path: str | Path, table: str = "input", *, text: bool = False) -> pd.DataFrame:
    """Read one CSV/Parquet file, a directory of Parquet files, or a glob of them (concatenated in order).

    CSV columns are read as strings where they look like identifiers (``is_id_column``); with ``text=True``
    every CSV column is read as written (a raw export whose id columns have other names: ``"007"`` keeps its
    zeros). Parquet columns keep their types.
    """
    files = discover_files(path, table)
    if len(files) == 1 and files[0] == str(path):
        return _read_file(Path(files[0]), table, text)
    parts = [
        read_frame(f, table, text=text) if Path(f).is_dir() else _read_file(Path(f), table, text)
        for f in files
    ]
    return pd.concat(parts, ignore_index=True)


def load_table(
    path: str | Path, table: TableName, *, on_bad_rows: str = "raise"
) -> tuple[pd.DataFrame, ValidationReport]:
    """Read and validate one input table; see ``features.validation`` for the policies."""
    return validate(read_frame(path, table), table, on_bad_rows=on_bad_rows)


def is_dataset_path(path: str | Path) -> bool:
    """True when ``path`` names a partitioned Parquet dataset (an existing directory, or a name without a
    file extension)."""
    p = Path(path)
    return p.is_dir() or not p.suffix


def dataset_part_path(out: str | Path, i: int) -> Path:
    """The file of partition ``i`` in the dataset ``out``: ``out/part-00000.parquet`` ..."""
    return Path(out) / f"part-{i:05d}.parquet"


def prepare_dataset_dir(out: str | Path) -> Path:
    """Create ``out`` for a partitioned dataset, removing the part files of an earlier one.

    An existing directory must be empty or hold only ``part-*.parquet`` files, so a typo cannot wipe a
    folder; a file at ``out`` is refused."""
    out = Path(out)
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
    return out


def write_frame(df: pd.DataFrame | dd.DataFrame, out: str | Path, *, client: Client | None = None) -> Path:
    """Write ``df`` where ``out`` says, creating parent directories; returns the written path.

    * ``.csv``/``.csv.gz``/``.tsv``: text (tab-separated for ``.tsv``, gzip for ``.gz``);
    * ``.parquet``/``.pq``: one Parquet file;
    * an existing directory or a path without extension: a partitioned Parquet dataset, one file per
      partition of a dask DataFrame (written on the workers, ``client`` or the default scheduler) or one
      file for a pandas frame (``prepare_dataset_dir`` says what an existing directory may hold).

    Any other extension is refused with a ``ValueError`` naming the path and the accepted ones. A dask
    DataFrame written to a single file is computed first.
    """
    if is_dataset_path(out):
        out = prepare_dataset_dir(out)
        if isinstance(df, pd.DataFrame):
            _write_part(df, str(dataset_part_path(out, 0)))
        else:
            _write_dask_parts(df, out, client)
        return out
    p = Path(out)
    name = p.name.lower()
    if not name.endswith(SUPPORTED_SUFFIXES):
        raise ValueError(
            f"Cannot write {str(p)!r}: unknown extension. Fix: name the output with one of "
            f"{', '.join(SUPPORTED_SUFFIXES)}, or give a directory (or a name without extension) for a "
            "partitioned Parquet dataset."
        )
    if not isinstance(df, pd.DataFrame):
        df = client.compute(df).result() if client is not None else df.compute()
    p.parent.mkdir(parents=True, exist_ok=True)
    if name.endswith(PARQUET_SUFFIXES):
        df.to_parquet(p, index=False)
    else:
        df.to_csv(p, index=False, sep="\t" if name.endswith(".tsv") else ",")
    return p


# ---------------------------------------------------------------------------------------------------------


def _read_file(p: Path, table: str, text: bool = False) -> pd.DataFrame:
    name = p.name.lower()
    try:
        if name.endswith(PARQUET_SUFFIXES):
            return pd.read_parquet(p)
        if name.endswith(TEXT_SUFFIXES):
            sep = "\t" if name.endswith(".tsv") else ","
            header = pd.read_csv(p, sep=sep, nrows=0).columns
            as_str = {c: "string" for c in header if text or is_id_column(c)}
            return pd.read_csv(p, sep=sep, dtype=as_str, low_memory=False)
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError, OSError, ValueError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise DataValidationError(  # a file that cannot be decoded: name it (the decoder's message does not)
            [
                Problem(
                    table=table,
                    column=None,
                    issue=f"cannot read {str(p)!r}: {type(exc).__name__}: {' '.join(str(exc).split())[:200]}",
                    fix="pass a UTF-8 CSV/TSV with a header row, or a Parquet file, named by its format",
                )
            ]
        ) from exc
    raise DataValidationError(
        [
            Problem(
                table=table,
                column=None,
                issue=f"cannot tell the format of {str(p)!r} from its extension",
                fix=(
                    "save a spreadsheet (.xlsx, .xls, .ods) as CSV UTF-8 first; name the file with one of "
                    f"{', '.join(SUPPORTED_SUFFIXES)}"
                ),
            )
        ]
    )


def _write_part(frame: pd.DataFrame, path: str) -> int:
    frame.to_parquet(path, index=False)
    return len(frame)


def _write_dask_parts(frame: Any, out: Path, client: Client | None) -> None:
    import dask

    write = dask.delayed(_write_part, pure=False)
    tasks = [write(part, str(dataset_part_path(out, i))) for i, part in enumerate(frame.to_delayed())]
    if client is not None:
        client.gather(client.compute(tasks))
    else:
        dask.compute(*tasks)
