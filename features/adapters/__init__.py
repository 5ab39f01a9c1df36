"""Adapters: public datasets -> OrderPulse's six input tables (series, orders, covariates, weather, static,
labels).

Each adapter module has ``load(source_dir) -> (tables, AdapterReport)``: a dict of DataFrames that pass
``features.validation.validate`` unchanged, and the counts of everything it dropped, mapped or repaired.
``prepare`` runs one adapter and writes its tables as ``<table>.parquet`` files.

>>> paths = prepare("rossmann", "../shared/data/rossmann", "out/rossmann")  # doctest: +SKIP
>>> sorted(paths)  # doctest: +SKIP
['covariates', 'series', 'static', 'weather']
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import pandas as pd

from features.adapters import online_retail, rossmann
from features.adapters.report import AdapterReport
from features.io import write_frame

__all__ = ["ADAPTERS", "AdapterReport", "prepare"]

Adapter = Callable[[Path], tuple[dict[str, pd.DataFrame], AdapterReport]]

_log = logging.getLogger(__name__)

ADAPTERS: dict[str, Adapter] = {
    "rossmann": rossmann.load,
    "online_retail": online_retail.load,
}


def prepare(dataset: str, source_dir: str | Path, out_dir: str | Path) -> dict[str, Path]:
    """Convert ``dataset`` read from ``source_dir`` and write ``<table>.parquet`` files into ``out_dir``.

    The adapter's report is logged and written next to them as ``adapter_report.json`` (what was dropped,
    mapped or repaired). Returns the written Parquet paths by table name.
    """
    if dataset not in ADAPTERS:
        raise ValueError(f"Unknown dataset {dataset!r}; expected one of {sorted(ADAPTERS)}.")
    tables, report = ADAPTERS[dataset](Path(source_dir))
    out = Path(out_dir)
    paths = {name: write_frame(df, out / f"{name}.parquet") for name, df in tables.items()}
    (out / "adapter_report.json").write_text(json.dumps(asdict(report), indent=2) + "\n")
    _log.info("%s", report)
    return paths
