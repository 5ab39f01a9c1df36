"""``orderpulse features build series`` and ``orderpulse data labels``: from a raw order log to the input tables.

Both read files, call one library function (``features.orders.aggregate_orders``,
``features.labels.outcome_labels``), write the tables, print what was done on stderr and end with one JSON
line on stdout. ``orders_to_series_files`` is shared with ``train forecast --orders``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer

from orderpulse.commands.features import OnBadRows
from orderpulse.console import err, print_json_line

__all__ = [
    "build_series",
    "labels",
    "orders_to_series_files",
    "parse_keys",
    "series_inputs",
    "static_path_for",
]

ByOpt = Annotated[
    str | None,
    typer.Option(
        "--by", help="key columns of the orders table, comma-separated (e.g. country or country,sku)"
    ),
]
MeasureOpt = Annotated[
    str,
    typer.Option(
        "--measure", help="orders (distinct orders), quantity (units) or revenue (quantity x price)"
    ),
]


def build_series(
    orders: Annotated[Path, typer.Option("--orders", help="orders table (order lines: CSV/Parquet)")],
    out: Annotated[Path, typer.Option("--out", help="series table to write (.parquet or .csv)")],
    freq: Annotated[
        str, typer.Option("--freq", help="H, D, W (weeks from Monday) or W-SUN, W-TUE, ...")
    ] = "D",
    by: ByOpt = None,
    measure: MeasureOpt = "orders",
    static_out: Annotated[
        Path | None,
        typer.Option("--static-out", help="static table to write (default: <out>_static next to --out)"),
    ] = None,
    on_bad_rows: OnBadRows = "raise",
) -> None:
    """Aggregate an order log to the series table (every series padded to the log's last period) + static."""
    t0 = time.perf_counter()
    summary = orders_to_series_files(orders, out, freq, by, measure, static_out, on_bad_rows)
    err.print(
        f"[green]wrote[/] {summary['series']} and {summary['static']} in {time.perf_counter() - t0:.1f}s"
    )
    print_json_line(summary)


def labels(
    orders: Annotated[Path, typer.Option("--orders", help="orders table (order lines)")],
    events: Annotated[
        Path,
        typer.Option(
            "--events",
            help="cancellations/returns: event_at and order_id, or event_at, customer_id and sku",
        ),
    ],
    out: Annotated[Path, typer.Option("--out", help="labels table to write (order_id, label, labeled_at)")],
    window_days: Annotated[
        float, typer.Option("--window-days", min=0.001, help="an event within this many days makes label 1")
    ] = 30,
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of", help="windows still open at this time stay unlabelled (default: the data's end)"
        ),
    ] = None,
    pending_out: Annotated[
        Path | None,
        typer.Option("--pending-out", help="also write the orders whose window is still open (not labelled)"),
    ] = None,
    on_bad_rows: OnBadRows = "raise",
) -> None:
    """Turn cancellation/return events into the labels table ("cancelled/returned within N days")."""
    from features.io import load_table, read_frame, write_frame
    from features.labels import outcome_labels

    o, report = load_table(orders, "orders", on_bad_rows=on_bad_rows)
    err.print(f"[dim]loaded[/] {report}")
    result = outcome_labels(o, read_frame(events, "events"), window_days=window_days, as_of=as_of)
    err.print(str(result.report))
    write_frame(result.labels, out)
    written: dict[str, Any] = {"labels": str(out)}
    if pending_out is not None:
        write_frame(result.pending, pending_out)
        written["pending"] = str(pending_out)
    elif result.report.pending_window_open:
        err.print(
            "[dim]pass --pending-out FILE to list the pending orders; run the command again later to label them[/]"
        )
    err.print(f"[green]wrote[/] {out}: {len(result.labels):,} labels")
    print_json_line({**written, "report": result.report.to_dict()})


def orders_to_series_files(
    orders: Path,
    out: Path,
    freq: str,
    by: str | None,
    measure: str,
    static_out: Path | None = None,
    on_bad_rows: str = "raise",
) -> dict[str, Any]:
    """Load and validate ``orders``, aggregate them, write the series and static tables; returns a summary."""
    from features.io import load_table, write_frame
    from features.orders import aggregate_orders

    o, vreport = load_table(orders, "orders", on_bad_rows=on_bad_rows)
    err.print(f"[dim]loaded[/] {vreport}")
    result = aggregate_orders(o, freq, by=parse_keys(by), measure=measure)
    err.print(str(result.report))
    static_out = static_out or static_path_for(out)
    write_frame(result.series, out)
    write_frame(result.static, static_out)
    return {
        "series": str(out),
        "static": str(static_out),
        "report": result.report.to_dict(),
        "validation": vreport.repairs,
    }


def parse_keys(by: str | None) -> tuple[str, ...]:
    """``"country, sku"`` -> ``("country", "sku")``; None or "" -> ``()``."""
    return tuple(k.strip() for k in (by or "").split(",") if k.strip())


def static_path_for(series_path: Path) -> Path:
    """Where the static table goes by default: next to the series table, ``series.parquet`` -> ``series_static.parquet``."""
    name = series_path.name
    for ext in (".csv.gz", ".parquet", ".pq", ".csv", ".tsv"):
        if name.lower().endswith(ext):
            return series_path.with_name(f"{name[: -len(ext)]}_static{name[-len(ext) :]}")
    return series_path.with_name(f"{name}_static.parquet")


def series_inputs(
    series: Path | None,
    orders: Path | None,
    static: Path | None,
    *,
    freq: str,
    by: str | None,
    measure: str,
    workdir: Path,
    on_bad_rows: str = "raise",
) -> tuple[Path, Path | None]:
    """``(series, static)`` paths for a training command given either ``--series`` or ``--orders``.

    With ``--orders`` the order log is aggregated (as ``features build series`` does) into ``workdir``; the
    generated static table is used unless ``--static`` names one.
    """
    if (series is None) == (orders is None):
        raise ValueError(
            "Pass either --series (a series table) or --orders with --by/--measure (an order log to aggregate), "
            "not both and not neither."
        )
    if orders is None:
        if by is not None:
            raise ValueError(
                "--by and --measure aggregate an order log: pass them with --orders, not --series."
            )
        return series, static  # type: ignore[return-value]
    summary = orders_to_series_files(
        orders, workdir / "series.parquet", freq, by, measure, on_bad_rows=on_bad_rows
    )
    return Path(summary["series"]), static or Path(summary["static"])
