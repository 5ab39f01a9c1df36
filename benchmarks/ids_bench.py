"""Speed of the id rule (``features.ids.normalize_ids``) on columns of a million values, as ``validate`` runs it.

Columns built here (no data files): numeric ids (a customer column exported as floats with blanks, and an
integer column), text ids written as whole floats (``"14911.0"``, repaired), plain text ids (SKU-like
``"85123A"``, left alone), each with 50,000 distinct values, and plain text ids that are all distinct (the
worst case for running the rule on the distinct values). Prints milliseconds per million values, the best
of ``--repeat`` runs, and the load average at the start and the end.

Run: ``.venv/bin/python benchmarks/ids_bench.py`` (seconds).
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import pandas as pd

import measure  # noqa: F401 - puts the repo on sys.path

from features.ids import normalize_ids  # noqa: E402
from features.validation import ValidationReport  # noqa: E402

ROWS = 1_000_000
DISTINCT = 50_000


def columns(rows: int = ROWS, distinct: int = DISTINCT, seed: int = 0) -> dict[str, pd.Series]:
    """The benchmark columns: name -> raw column as ``pd.read_csv`` / ``read_parquet`` would give it."""
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, distinct, rows)
    numbers = 10_000 + codes
    floats = numbers.astype("float64")
    floats[rng.random(rows) < 0.05] = np.nan  # guest orders: the export writes the column as floats
    texts = np.array([f"{n}" for n in range(10_000, 10_000 + distinct)], dtype=object)
    return {
        "numeric ids, float64 with blanks (repaired)": pd.Series(floats),
        "numeric ids, int64": pd.Series(numbers),
        "whole-float text ids, '14911.0' (repaired)": pd.Series(
            np.array([f"{t}.0" for t in texts], dtype=object)[codes]
        ),
        "plain text ids, '85123A' (left alone)": pd.Series(
            np.array([f"{t}A" for t in texts], dtype=object)[codes]
        ),
        f"plain text ids, all {rows:,} distinct": pd.Series(
            np.array([f"{n}A" for n in range(rows)], dtype=object)
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    load = os.getloadavg()[0]
    print(f"| column ({ROWS:,} values) | distinct | ms per 1M values | repaired | merged |")
    print("|---|---:|---:|---:|---:|")
    for name, column in columns().items():
        times = []
        for _ in range(args.repeat):
            report = ValidationReport(table="bench", rows_in=len(column))
            t0 = time.perf_counter()
            normalize_ids(column, report)
            times.append(time.perf_counter() - t0)
        ms = min(times) * 1e3 * 1_000_000 / len(column)
        print(
            f"| {name} | {column.nunique():,} | {ms:,.0f} | "
            f"{report.repairs.get('ids_whole_float_repaired', 0):,} | "
            f"{report.repairs.get('ids_merged_by_repair', 0):,} |"
        )
    print(f"load average (1 min): {load:.2f} at the start, {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    main()
