"""``orderpulse data orders``, ``orderpulse features build series`` and ``orderpulse data labels``: from a raw
order export to the input tables.

Each reads files, calls one library function (``features.order_export.split_order_export``,
``features.orders.aggregate_orders``, ``features.labels.outcome_labels``), writes the tables, prints what was
done on stderr and ends with one JSON line on stdout. ``orders_to_series_files`` is shared with ``train
forecast --orders``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer

from orderpulse.commands.features import OnBadRows
from orderpulse.console import err, print_json_line

__all__ = [
    "orders_from_export",
    "build_series",
    "labels",
    "orders_to_series_files",
    "parse_keys",
    "series_inputs",
    "sibling_path",
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


def orders_from_export(
    export: Annotated[Path, typer.Option("--export", help="the shop's order export (CSV/Parquet)")],
    out: Annotated[Path, typer.Option("--out", help="orders table to write (.csv or .parquet)")],
    events_out: Annotated[
        Path | None,
        typer.Option(
            "--events-out",
            help="cancellation events to write (default: <out>_events next to --out; with --cancelled-prefix)",
        ),
    ] = None,
    columns: Annotated[
        str | None,
        typer.Option(
            "--columns",
            help="EXPORT_NAME=COLUMN pairs for names not recognised, e.g. 'Invoice Number=order_id,Ordered=created_at'",
        ),
    ] = None,
    cancelled_prefix: Annotated[
        str | None,
        typer.Option(
            "--cancelled-prefix",
            help="order ids starting with this are cancellations (C in Online Retail): their lines become events",
        ),
    ] = None,
) -> None:
    """Rename an export's columns to the orders table and split its cancellation lines off as events."""
    from features.io import read_frame, write_frame
    from features.order_export import parse_column_map, split_order_export

    if events_out is not None and cancelled_prefix is None:
        raise ValueError(
            "--events-out writes the cancellation lines, which --cancelled-prefix names: pass both (e.g. "
            "--cancelled-prefix C), or leave --events-out out."
        )
    t0 = time.perf_counter()
    result = split_order_export(
        read_frame(export, "export", text=True),
        columns=parse_column_map(columns),
        cancelled_prefix=cancelled_prefix,
    )
    err.print(str(result.report))
    write_frame(result.orders, out)
    written: dict[str, Any] = {"orders": str(out)}
    if cancelled_prefix is not None:
        events_path = events_out or sibling_path(out, "events")
        write_frame(result.events, events_path)
        written["events"] = str(events_path)
    err.print(f"[green]wrote[/] {', '.join(written.values())} in {time.perf_counter() - t0:.1f}s")
    print_json_line({**written, "report": result.report.to_dict()})


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
    return sibling_path(series_path, "static")


def sibling_path(path: Path, what: str) -> Path:
    """A table written next to ``path`` in its format: ``("orders.csv", "events")`` -> ``orders_events.csv``."""
    name = path.name
    for ext in (".csv.gz", ".parquet", ".pq", ".csv", ".tsv"):
        if name.lower().endswith(ext):
            return path.with_name(f"{name[: -len(ext)]}_{what}{name[-len(ext) :]}")
    return path.with_name(f"{name}_{what}.parquet")


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
