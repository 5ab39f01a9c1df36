"""The AutoGluon-TimeSeries peer for the forecast benchmarks, run in its own virtual environment.

AutoGluon needs torch, which OrderPulse never installs; ``make bench-autogluon`` builds ``.venv-autogluon``
with the pinned ``benchmarks/peers/requirements-autogluon.txt``. A benchmark given ``--autogluon`` hands the
same history, known covariates and static columns it gives OrderPulse to ``benchmarks/peers/autogluon_ts.py``
in that environment (a subprocess, through Parquet files), reads the forecasts back and scores them with its own
metrics code, so every model in the table is scored on the same rows in the same way.

Wall time and peak memory are the subprocess's (``measure(pid=...)``: its and its children's resident set size).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd
from measure import REPO, Measured, measure

__all__ = ["AUTOGLUON_MODELS", "DEFAULT_PYTHON", "run_autogluon"]

DEFAULT_PYTHON = REPO / ".venv-autogluon" / "bin" / "python"
# the setting: tabular direct + recursive and two statistical models, AutoGluon's weighted ensemble
AUTOGLUON_MODELS = ("DirectTabular", "RecursiveTabular", "ETS", "Theta")


def add_autogluon_argument(parser: argparse.ArgumentParser) -> None:
    """``--autogluon [PYTHON]``: the forecast benchmarks' switch for this peer."""
    parser.add_argument(
        "--autogluon",
        nargs="?",
        const=str(DEFAULT_PYTHON),
        default="",
        help="also run the AutoGluon-TimeSeries peer with this Python (default: .venv-autogluon, make bench-autogluon)",
    )


def run_autogluon(
    history: pd.DataFrame,
    future: pd.DataFrame,
    *,
    freq: str,
    horizon: int,
    covariates: list[str],
    static: pd.DataFrame | None = None,
    time_limit: int = 1200,
    python: Path | str = DEFAULT_PYTHON,
) -> tuple[pd.DataFrame, Measured, dict]:
    """Fit and forecast with AutoGluon in ``python``'s environment: ``(pred, measured, info)``.

    ``history`` has ``series_id, ds, y`` and ``covariates``; ``future`` has ``series_id, ds`` and
    ``covariates`` for the ``horizon`` steps after the cut. ``pred`` has ``series_id, ds, yhat, yhat_lo_80,
    yhat_hi_80``.
    """
    python = Path(python)
    if not python.exists():
        sys.exit(
            f"{python} not found: run `make bench-autogluon` first (it builds .venv-autogluon with torch)"
        )
    with tempfile.TemporaryDirectory(prefix="op-autogluon-") as tmp:
        work = Path(tmp)
        history[["series_id", "ds", "y", *covariates]].to_parquet(work / "history.parquet", index=False)
        future[["series_id", "ds", *covariates]].to_parquet(work / "future.parquet", index=False)
        if static is not None:
            static.to_parquet(work / "static.parquet", index=False)
        config = {
            "freq": freq,
            "horizon": horizon,
            "covariates": covariates,
            "time_limit": time_limit,
            "models": list(AUTOGLUON_MODELS),
            "seed": 0,
        }
        (work / "config.json").write_text(json.dumps(config))
        script = REPO / "benchmarks" / "peers" / "autogluon_ts.py"
        proc = subprocess.Popen([str(python), str(script), str(work)])
        with measure(interval=0.05, pid=proc.pid) as measured:
            code = proc.wait()
        if code != 0:
            raise RuntimeError(f"AutoGluon exited with code {code} (its log is above)")
        pred = pd.read_parquet(work / "pred.parquet")
        info = json.loads((work / "info.json").read_text())
    pred["series_id"] = pred["series_id"].astype("string")
    return pred, measured, info
