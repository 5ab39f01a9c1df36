"""``orderpulse detect volume``: order-volume anomalies (surges and drops) in a series table.

Writes one row per point after each series' warm-up (``series_id, ds, y, expected, lo, hi, score, flagged,
direction, reason``); progress on stderr, one JSON line on stdout (``points``, ``series``, ``alerts``, ...).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from orderpulse.console import print_json_line

__all__ = ["detect_app"]

detect_app = typer.Typer(help="Detect anomalies as they happen (order volume).", no_args_is_help=True)


@detect_app.command("volume")
def volume(
    series: Annotated[Path, typer.Option("--series", help="series table (series_id, ds, y[, open])")],
    out: Annotated[
        Path, typer.Option("--out", help="output .csv or .parquet, one row per point after warm-up")
    ],
    covariates: Annotated[
        list[Path] | None,
        typer.Option(
            "--covariates", help="covariates table(s): promo* / *holiday* columns are known drivers"
        ),
    ] = None,
    freq: Annotated[
        str, typer.Option("--freq", help="grid step from 1min to W, e.g. 5min, 30min, H, D")
    ] = "5min",
    warmup: Annotated[
        str,
        typer.Option(
            "--warmup",
            help="learned from each series' first point, never flagged, e.g. 8d; auto: 2 days below a "
            "daily grid, 4 weeks daily, 13 weeks weekly",
        ),
    ] = "auto",
    threshold: Annotated[
        float | None,
        typer.Option(
            "--threshold", min=0.5, max=0.9999999, help="score that opens an alert (default 0.99999)"
        ),
    ] = None,
    return_period: Annotated[
        str,
        typer.Option(
            "--return-period",
            help="an alert must exceed the deviation the series shows about once per this period (off: no)",
        ),
    ] = "14d",
    unit: Annotated[str, typer.Option("--unit", help="noun in the reasons")] = "orders",
    on_bad_rows: Annotated[
        str, typer.Option("--on-bad-rows", help="raise: refuse bad rows; drop: drop and count them")
    ] = "raise",
    log_mlflow: Annotated[
        bool, typer.Option("--log-mlflow", help="log parameters, counts and the learned detector to MLflow")
    ] = False,
    plots: Annotated[
        Path | None,
        typer.Option("--plots", help="folder for <series_id>.png: band and alerts of the series with alerts"),
    ] = None,
) -> None:
    """Flag surges and drops of volume against each series' own rhythm and its planned drivers."""
    from orderpulse.jobs.volume import detect_volume

    params = {
        "freq": freq,
        "warmup": warmup,
        "return_period": None if return_period.strip().lower() == "off" else return_period,
        "unit": unit,
    }
    if threshold is not None:
        params["threshold"] = threshold
    summary = detect_volume(
        series,
        covariates or [],
        out=out,
        on_bad_rows=on_bad_rows,
        log_mlflow=log_mlflow,
        plots=plots,
        **params,
    )
    print_json_line(summary)
