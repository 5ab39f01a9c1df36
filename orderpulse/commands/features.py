"""``orderpulse data ...`` and ``orderpulse features ...``: prepare input tables and build feature frames."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from orderpulse.console import err

__all__ = ["build_app", "data_app", "features_app", "load_optional"]

data_app = typer.Typer(
    help="Turn public datasets and your own order exports into OrderPulse's input format.",
    no_args_is_help=True,
)
features_app = typer.Typer(help="Build model-ready feature frames from input tables.", no_args_is_help=True)
build_app = typer.Typer(help="Build a feature frame and write it to Parquet.", no_args_is_help=True)
features_app.add_typer(build_app, name="build")

OnBadRows = Annotated[
    str,
    typer.Option("--on-bad-rows", help="raise: refuse tables with bad rows; drop: drop and count them."),
]
EngineOpt = Annotated[
    str, typer.Option("--engine", help="local: this process; dask: a Dask cluster (see --scheduler)")
]
SchedulerOpt = Annotated[
    str | None,
    typer.Option(
        "--scheduler", help="Dask scheduler address, e.g. tcp://host:8786 (default: a LocalCluster)"
    ),
]
OutOpt = Annotated[
    Path,
    typer.Option(
        "--out", help="Output Parquet file, or a directory (no extension): one Parquet file per partition"
    ),
]


def load_optional(path: Path | None, table: str, on_bad_rows: str = "raise"):
    """Load and validate a table when a path is given; print what validation repaired."""
    if path is None:
        return None
    from features.io import load_table

    df, report = load_table(path, table, on_bad_rows=on_bad_rows)  # type: ignore[arg-type]
    err.print(f"[dim]loaded[/] {report}")
    return df


@data_app.command("prepare")
def prepare(
    dataset: Annotated[str, typer.Argument(help="rossmann or online_retail")],
    out: Annotated[Path, typer.Option("--out", help="Directory to write the tables to (Parquet).")],
    source: Annotated[
        Path | None,
        typer.Option("--source", help="Directory of the raw dataset (default: ../shared/data/<dataset>)."),
    ] = None,
) -> None:
    """Convert a public dataset into the input tables (series/covariates/weather/static or orders/labels)."""
    from features.adapters import ADAPTERS
    from features.adapters import prepare as run_prepare

    if dataset not in ADAPTERS:
        raise ValueError(f"Unknown dataset {dataset!r}: choose one of {sorted(ADAPTERS)}.")
    src = source or Path("..") / "shared" / "data" / dataset
    if not src.is_dir():
        raise FileNotFoundError(f"Source directory {str(src)!r} does not exist: pass --source DIR.")
    t0 = time.perf_counter()
    with err.status(f"preparing {dataset} from {src}"):
        written = run_prepare(dataset, src, out)
    for name, path in written.items():
        err.print(f"  {name:<11} -> {path}")
    err.print(f"[green]done[/] in {time.perf_counter() - t0:.1f}s")


@build_app.command("forecast")
def build_forecast(
    series: Annotated[
        Path, typer.Option("--series", help="series table (CSV/Parquet file, Parquet directory or glob)")
    ],
    out: OutOpt,
    covariates: Annotated[Path | None, typer.Option("--covariates", help="covariates table")] = None,
    weather: Annotated[Path | None, typer.Option("--weather", help="weather table")] = None,
    static: Annotated[Path | None, typer.Option("--static", help="static table")] = None,
    freq: Annotated[str, typer.Option("--freq", help="H, D or W")] = "D",
    horizon: Annotated[
        int, typer.Option("--horizon", min=1, max=366, help="lags start at this many steps")
    ] = 1,
    on_bad_rows: OnBadRows = "raise",
    engine: EngineOpt = "local",
    scheduler: SchedulerOpt = None,
) -> None:
    """Build the forecast feature frame (lags start at --horizon steps, so it is leak-free for that horizon)."""
    from features.forecast_config import ForecastFeatureConfig
    from features.forecast_frame import build_training_frame
    from features.io import write_frame
    from training.engine import check_engine

    t0 = time.perf_counter()
    if check_engine(engine, scheduler) == "dask":
        from features.dask.forecast import build_training_frame_dask, write_training_frame_dask
        from features.dask.partitions import ForecastPartitions
        from features.io import is_dataset_path
        from training.engine import dask_client

        config = ForecastFeatureConfig(freq=freq).for_horizon(horizon)
        with dask_client(scheduler) as client, err.status("building forecast features on dask"):
            parts = ForecastPartitions.from_paths(
                series, covariates, weather, static, on_bad_rows=on_bad_rows, client=client
            )
            if is_dataset_path(out):  # one file per partition, written where it is built
                report = write_training_frame_dask(parts, out, config, client=client)
            else:
                frame, report = build_training_frame_dask(parts, config, client=client)
                write_frame(frame, out, client=client)
        for r in parts.validation.values():
            err.print(f"[dim]validated[/] {r}")
        _summary_dask(report, out, parts.npartitions, time.perf_counter() - t0)
        return
    tables = {
        "covariates": load_optional(covariates, "covariates", on_bad_rows),
        "weather": load_optional(weather, "weather", on_bad_rows),
        "static": load_optional(static, "static", on_bad_rows),
    }
    s = load_optional(series, "series", on_bad_rows)
    config = ForecastFeatureConfig(freq=freq).for_horizon(horizon)
    with err.status("building forecast features"):
        frame, report = build_training_frame(s, config=config, **tables)
    write_frame(frame, out)
    _summary(frame, report, out, time.perf_counter() - t0)


@build_app.command("orders")
def build_orders(
    orders: Annotated[Path, typer.Option("--orders", help="orders table (order lines)")],
    out: OutOpt,
    labels: Annotated[Path | None, typer.Option("--labels", help="labels table")] = None,
    on_bad_rows: OnBadRows = "raise",
    engine: EngineOpt = "local",
    scheduler: SchedulerOpt = None,
) -> None:
    """Build point-in-time order features (one row per order) for the exception classifier."""
    from features.io import write_frame
    from features.order_features import order_features
    from training.engine import check_engine

    t0 = time.perf_counter()
    o = load_optional(orders, "orders", on_bad_rows)
    lab = load_optional(labels, "labels", on_bad_rows)
    if check_engine(engine, scheduler) == "dask":
        from features.dask.orders import order_features_dask
        from training.engine import dask_client

        with dask_client(scheduler) as client, err.status("building order features on dask"):
            frames, report = order_features_dask(o, lab, client=client)
            write_frame(frames, out, client=client)
        _summary_dask(report, out, frames.npartitions, time.perf_counter() - t0, rows=report.orders)
        return
    with err.status("building order features"):
        frame, report = order_features(o, lab)
    write_frame(frame, out)
    _summary(frame, report, out, time.perf_counter() - t0)


def _summary_dask(report, out: Path, npartitions: int, seconds: float, rows: int | None = None) -> None:
    n = report.n_rows if rows is None else rows
    err.print(f"{report}")
    err.print(
        f"[green]wrote[/] {out}: {n:,} rows from {npartitions} partitions in {seconds:.1f}s "
        f"({n / max(seconds, 1e-9):,.0f} rows/s)"
    )


def _summary(frame, report, out: Path, seconds: float) -> None:
    err.print(f"{report}")
    err.print(
        f"[green]wrote[/] {out}: {len(frame):,} rows x {frame.shape[1]} columns in {seconds:.1f}s "
        f"({len(frame) / max(seconds, 1e-9):,.0f} rows/s)"
    )
