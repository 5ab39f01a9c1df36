"""The ``orderpulse`` command line: one typer app composed of the command modules in ``orderpulse/commands/``.

Deliberate errors (bad input, unknown model, ...) end with exit code 2 and one readable line on stderr;
anything else is a bug and shows a traceback.
"""

from __future__ import annotations

import sys

import typer

from features.errors import OrderPulseError
from orderpulse import __version__
from orderpulse.commands import order_log
from orderpulse.commands import training as training_commands
from orderpulse.commands.detect import detect_app
from orderpulse.commands.features import build_app, data_app, features_app
from orderpulse.commands.quickstart import quickstart
from orderpulse.commands.report import report_app
from orderpulse.console import err
from serving.cli import keys_app, serve_command

__all__ = ["app", "main"]

app = typer.Typer(
    name="orderpulse",
    help="Demand forecasts and exception-order scores for order management systems, explained with SHAP.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
    rich_markup_mode="rich",
)
build_app.command("series")(order_log.build_series)
data_app.command("labels")(order_log.labels)
app.add_typer(data_app, name="data")
app.add_typer(features_app, name="features")
training_commands.register(app)
app.command("serve")(serve_command)
app.add_typer(keys_app, name="keys")
app.command("quickstart")(quickstart)
app.add_typer(report_app, name="report")
app.add_typer(detect_app, name="detect")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"orderpulse {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version."
    ),
) -> None:
    """Demand forecasts and exception-order scores for order management systems, explained with SHAP."""


def main(argv: list[str] | None = None) -> None:
    """Entry point of the console script."""
    try:
        app(args=argv, prog_name="orderpulse")
    except (OrderPulseError, ValueError, FileNotFoundError) as exc:
        message = " ".join(str(exc).split())
        err.print(f"[bold red]error:[/] {message}", soft_wrap=True)
        sys.exit(2)


if __name__ == "__main__":  # pragma: no cover
    main()
