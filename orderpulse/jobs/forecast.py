"""``orderpulse train forecast`` and ``orderpulse forecast`` on files: read, call ``training.forecast.job``, write.

``train_forecast`` prints ``train forecast from <series>``, one ``loaded ...`` line per table (what validation
repaired), the job's progress (backtest windows, LightGBM rounds, tuning trials as bars) and ``done in ...``;
it returns the job's summary (the CLI prints it as the last stdout line, as JSON).

``forecast_to_file`` forecasts every series of a file with a logged model and writes ``series_id, ds, yhat,
yhat_lo, yhat_hi`` with ``features.io.write_frame`` (CSV/TSV text, a Parquet file, or a partitioned Parquet
dataset when ``out`` is a directory or has no extension); with ``engine="dask"`` the series are read lazily and forecast per partition on the cluster.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pandas as pd

from features.hierarchy import SERIES_LEVEL
from features.io import load_table, write_frame
from features.validation import ValidationReport
from orderpulse.console import RichProgress, err
from training.engine import check_engine
from training.forecast import job
from training.forecast.hierarchy import check_levels, hierarchy_output
from training.pyfunc import ForecastPyfunc, load_snapshot_model
from training.registry import resolve

__all__ = ["train_forecast", "forecast_to_file", "load_forecast_tables"]


def load_forecast_tables(
    series: str | Path,
    covariates: str | Path | None = None,
    weather: str | Path | None = None,
    static: str | Path | None = None,
    on_bad_rows: str = "raise",
) -> tuple[dict[str, pd.DataFrame | None], dict[str, ValidationReport]]:
    """Load and validate the forecast tables; prints one line per table with what validation repaired."""
    tables: dict[str, pd.DataFrame | None] = {}
    reports: dict[str, ValidationReport] = {}
    for name, path in (
        ("series", series),
        ("covariates", covariates),
        ("weather", weather),
        ("static", static),
    ):
        if path is None:
            tables[name] = None
            continue
        tables[name], reports[name] = load_table(path, name, on_bad_rows=on_bad_rows)  # type: ignore[arg-type]
        err.print(f"  [dim]loaded[/] {reports[name]}")
    return tables, reports


def train_forecast(
    series: str | Path,
    covariates: str | Path | None = None,
    weather: str | Path | None = None,
    static: str | Path | None = None,
    *,
    on_bad_rows: str = "raise",
    **options: Any,
) -> dict[str, Any]:
    """Read the tables, then ``training.forecast.job.train_forecast`` with ``options`` (freq, horizon, until,
    name, tune, n_windows, step, levels, params, seed, engine, scheduler); returns its summary."""
    check_engine(options.get("engine", "local"), options.get("scheduler"))
    started = time.perf_counter()
    err.print(f"[bold]train forecast[/] from {series}")
    tables, reports = load_forecast_tables(series, covariates, weather, static, on_bad_rows)
    s = tables.pop("series")
    assert s is not None
    result = job.train_forecast(s, **tables, reports=reports, progress=RichProgress(), **options)
    err.print(f"[green]done[/] in {time.perf_counter() - started:.1f}s")
    return result


def forecast_to_file(
    model_uri: str,
    series: str | Path,
    out: str | Path,
    covariates: str | Path | None = None,
    weather: str | Path | None = None,
    static: str | Path | None = None,
    *,
    horizon: int | None = None,
    level: int = 80,
    origin: Any = None,
    explain: bool = False,
    on_bad_rows: str = "raise",
    engine: str = "local",
    scheduler: str | None = None,
    hierarchy_levels: str | None = None,
) -> dict[str, Any]:
    """Forecast every series of ``series`` from ``origin`` and write ``series_id, ds, yhat, yhat_lo, yhat_hi``
    (with ``hierarchy_levels``, e.g. ``"region,total"``: ``level, series_id, ...`` rows for every aggregate too).

    Tables not given fall back to the snapshot the model was trained with (e.g. its promo calendar).
    ``engine="dask"`` reads ``series`` lazily (a file, directory or glob of Parquet files) and forecasts each
    series partition on the cluster (``training.forecast.dask.forecast_dataset``).
    """
    check_engine(engine, scheduler)
    resolved = resolve(model_uri)
    wrapper = load_snapshot_model(resolved.uri, kind=ForecastPyfunc)
    if hierarchy_levels:
        check_levels(wrapper.model, hierarchy_levels)
    if engine == "dask":
        from training.forecast.dask import forecast_dataset

        given = {"covariates": covariates, "weather": weather, "static": static}
        written = forecast_dataset(
            wrapper.model,
            series,
            out,
            {k: v if v is not None else wrapper.table(k) for k, v in given.items()},
            horizon=horizon,
            level=level,
            origin=origin,
            explain=explain,
            on_bad_rows=on_bad_rows,
            shape=job.forecast_output,
            scheduler=scheduler,
            levels_output=_levels_output(wrapper, hierarchy_levels, given, level, horizon, on_bad_rows),
        )
        summary = {"model": resolved.uri, "version": resolved.version, **written}
        err.print(
            f"[green]wrote[/] {out}: {summary['rows']:,} rows for {summary.get('series', 0):,} series, "
            f"{str(summary.get('start'))[:10]} .. {str(summary.get('end'))[:10]} (model {resolved.uri}, dask)"
        )
        return summary
    tables, _ = load_forecast_tables(series, covariates, weather, static, on_bad_rows)
    s = tables.pop("series")
    assert s is not None
    out_df, counts = job.forecast_frame(
        wrapper,
        s,
        **tables,
        horizon=horizon,
        level=level,
        origin=origin,
        explain=explain,
        hierarchy_levels=hierarchy_levels,
    )
    write_frame(out_df, out)
    summary = {
        "model": resolved.uri,
        "version": resolved.version,
        "rows": len(out_df),
        "series": int(out_df["series_id"].nunique()),
        "start": str(out_df["ds"].min()),
        "end": str(out_df["ds"].max()),
        "out": str(out),
        "frame": counts,
    }
    if counts:  # what building the features inserted, ignored or found missing: never silent
        err.print("  [dim]frame[/] " + ", ".join(f"{k}={v:,}" for k, v in counts.items()), soft_wrap=True)
    aggregates = ""
    if "level" in out_df.columns:  # --levels: the series and the aggregates counted apart
        is_series = out_df["level"] == SERIES_LEVEL
        summary["series"] = int(out_df.loc[is_series, "series_id"].nunique())
        summary["aggregates"] = len(out_df.loc[~is_series, ["level", "series_id"]].drop_duplicates())
        aggregates = f" and {summary['aggregates']:,} aggregates"
    err.print(
        f"[green]wrote[/] {out}: {summary['rows']:,} rows for {summary['series']:,} series{aggregates}, "
        f"{summary['start'][:10]} .. {summary['end'][:10]} (model {resolved.uri})"
    )
    return summary


def _levels_output(
    wrapper: Any, levels: str | None, given: dict[str, Any], level: int, horizon: int | None, on_bad_rows: str
) -> Any:
    """For ``--levels`` on dask: ``(series_pred, sums, origin) -> rows of every level``, the local job's
    ``hierarchy_output`` on the aggregates' sums, with the tables read here (they are small next to the series)."""
    if not levels:
        return None
    tables = {
        k: load_table(v, k, on_bad_rows=on_bad_rows)[0] if v is not None else wrapper.table(k)  # type: ignore[arg-type]
        for k, v in given.items()
    }

    def output(series_pred: pd.DataFrame, sums: pd.DataFrame, origin: pd.Timestamp) -> pd.DataFrame:
        return hierarchy_output(
            wrapper.model,
            levels,
            series_pred,
            None,
            tables,
            level=level,
            horizon=horizon,
            origin=origin,
            sums=sums,
        )

    return output
