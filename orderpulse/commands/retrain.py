"""``orderpulse retrain forecast|anomaly``: retrain the champion's recipe on its inputs plus what the service
received, gate it and promote it (or keep it as challenger). Made for cron and Kubernetes CronJobs.

Non-interactive. Exit codes: 0 promoted or kept as challenger (also with ``--dry-run``); 2 bad input (a table
that does not validate, no champion, a bad flag), one line on stderr; 1 a failure (the lock stayed busy for
``--lock-timeout`` seconds, the tracking store is down, a bug). A run that fails changes no alias. The last
stdout line is the JSON summary (``alias``, ``decision``, ``gate``, ``version``, ``data`` counts, ...).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from orderpulse.commands.order_log import ByOpt, MeasureOpt
from orderpulse.commands.training import NameOpt, OnBadRows, UntilOpt, json_object
from orderpulse.console import err, print_json_line

__all__ = ["retrain_app"]

retrain_app = typer.Typer(
    help="Retrain a champion on its inputs plus the actuals/events the service received; gate; promote.",
    no_args_is_help=True,
)

EventsOpt = Annotated[
    str | None,
    typer.Option(
        "--events-db",
        help="SQLAlchemy URL of the service's event store (default: ORDERPULSE_AUDIT_URL, as the service)",
    ),
]
DryRunOpt = Annotated[
    bool, typer.Option("--dry-run", help="train and gate, print the decision, register nothing")
]
LockOpt = Annotated[
    float,
    typer.Option("--lock-timeout", min=0.0, help="seconds to wait for a retrain already running (0: none)"),
]


@retrain_app.command("forecast")
def retrain_forecast(
    name: NameOpt = "orderpulse",
    series: Annotated[
        Path | None,
        typer.Option("--series", help="original series table (default: as the champion recorded)"),
    ] = None,
    orders: Annotated[
        Path | None, typer.Option("--orders", help="or an order log to aggregate (with --by/--measure)")
    ] = None,
    by: ByOpt = None,
    measure: MeasureOpt = "orders",
    covariates: Annotated[Path | None, typer.Option("--covariates", help="covariates table")] = None,
    weather: Annotated[Path | None, typer.Option("--weather", help="weather table")] = None,
    static: Annotated[Path | None, typer.Option("--static", help="static table")] = None,
    lgbm_params: Annotated[
        str | None,
        typer.Option("--lgbm-params", help="LightGBM overrides as JSON (default: the champion's parameters)"),
    ] = None,
    events_db: EventsOpt = None,
    until: UntilOpt = None,
    dry_run: DryRunOpt = False,
    lock_timeout: LockOpt = 600.0,
    on_bad_rows: OnBadRows = "raise",
) -> None:
    """Retrain <name>-forecast: original series + the service's actuals, champion's recipe, gate, promote."""
    from orderpulse.jobs.retrain import retrain_forecast as job

    if series is not None and orders is not None:
        raise ValueError("Pass either --series or --orders (with --by/--measure), not both.")
    inputs = {
        "series": series,
        "orders": orders,
        "covariates": covariates,
        "weather": weather,
        "static": static,
    }
    if orders is not None:
        inputs |= {"by": by, "measure": measure}
    _run(
        job,
        name,
        inputs=inputs,
        events_url=events_db,
        params=json_object(lgbm_params, "--lgbm-params"),
        until=until,
        dry_run=dry_run,
        lock_timeout=lock_timeout,
        on_bad_rows=on_bad_rows,
    )


@retrain_app.command("anomaly")
def retrain_anomaly(
    name: NameOpt = "orderpulse",
    orders: Annotated[
        Path | None,
        typer.Option("--orders", help="original orders table (default: as the champion recorded)"),
    ] = None,
    labels: Annotated[
        Path | None,
        typer.Option("--labels", help="original labels table (default: as the champion recorded)"),
    ] = None,
    events_db: EventsOpt = None,
    until: UntilOpt = None,
    dry_run: DryRunOpt = False,
    lock_timeout: LockOpt = 600.0,
    on_bad_rows: OnBadRows = "raise",
) -> None:
    """Retrain <name>-anomaly: original orders/labels + the service's order and label events, gate, promote."""
    from orderpulse.jobs.retrain import retrain_anomaly as job

    _run(
        job,
        name,
        inputs={"orders": orders, "labels": labels},
        events_url=events_db,
        until=until,
        dry_run=dry_run,
        lock_timeout=lock_timeout,
        on_bad_rows=on_bad_rows,
    )


def _run(job, name: str, **options) -> None:  # noqa: ANN001
    from orderpulse.jobs.retrain import RegistryBusyError

    try:
        result = job(name, **options)
    except RegistryBusyError as exc:
        err.print(f"[bold red]busy:[/] {exc}", soft_wrap=True)
        raise typer.Exit(1) from None
    print_json_line(result)
