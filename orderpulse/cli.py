"""The ``orderpulse`` command line: one typer app composed of the command modules in ``orderpulse/commands/``.

Exit codes: 0 done; 2 a failure the user can fix (bad input, a file that cannot be read or decoded, an unknown
model, a busy port, a usage error), with one readable line on stderr; 1 an internal error (a bug), also one
line, with the traceback only under ``orderpulse --debug ...`` (or ``ORDERPULSE_DEBUG=1``); 130 interrupted.
"""

from __future__ import annotations

import os
import sys
import traceback

import typer
from rich.markup import escape

from features.errors import OrderPulseError
from orderpulse import __version__
from orderpulse.commands import order_log
from orderpulse.commands import training as training_commands
from orderpulse.commands.detect import detect_app
from orderpulse.commands.features import build_app, data_app, features_app
from orderpulse.commands.quickstart import quickstart
from orderpulse.commands.report import report_app
from orderpulse.commands.retrain import retrain_app
from orderpulse.console import err
from serving.cli import keys_app, serve_command

__all__ = ["app", "main", "is_user_error"]

#: MLflow error codes that mean "you named something that is not there / not valid", not an outage
_MLFLOW_USER_CODES = frozenset(
    {
        "RESOURCE_DOES_NOT_EXIST",
        "INVALID_PARAMETER_VALUE",
        "NOT_FOUND",
        "RESOURCE_ALREADY_EXISTS",
        "BAD_REQUEST",
    }
)
_debug = {"on": False}

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
data_app.command("orders")(order_log.orders_from_export)
app.add_typer(data_app, name="data")
app.add_typer(features_app, name="features")
training_commands.register(app)
app.command("serve")(serve_command)
app.add_typer(keys_app, name="keys")
app.command("quickstart")(quickstart)
app.add_typer(report_app, name="report")
app.add_typer(retrain_app, name="retrain")
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
    debug: bool = typer.Option(False, "--debug", help="On an internal error, print the full traceback."),
) -> None:
    """Demand forecasts and exception-order scores for order management systems, explained with SHAP."""
    _debug["on"] = debug


def main(argv: list[str] | None = None) -> None:
    """Entry point of the console script (exit codes in the module docstring)."""
    _debug["on"] = os.environ.get("ORDERPULSE_DEBUG", "") not in ("", "0")
    try:
        app(args=argv, prog_name="orderpulse")
    except KeyboardInterrupt:
        err.print("interrupted", soft_wrap=True)
        sys.exit(130)
    except Exception as exc:
        message = escape(" ".join(str(exc).split()) or type(exc).__name__)
        if is_user_error(exc):
            err.print(f"[bold red]error:[/] {message}", soft_wrap=True)
            sys.exit(2)
        if _debug["on"]:
            traceback.print_exception(exc, file=sys.stderr)
        err.print(
            f"[bold red]internal error:[/] {type(exc).__name__}: {message} (a bug: run `orderpulse --debug ...` "
            "for the traceback and report it)",
            soft_wrap=True,
        )
        sys.exit(1)


def is_user_error(exc: BaseException) -> bool:
    """True for failures the user causes and can fix (exit 2), False for internal errors (exit 1)."""
    if isinstance(
        exc, OrderPulseError | ValueError | FileNotFoundError | PermissionError | IsADirectoryError
    ):
        return True
    if isinstance(exc, NotADirectoryError | FileExistsError):
        return True
    if type(exc).__name__ == "MlflowException":
        return getattr(exc, "error_code", "") in _MLFLOW_USER_CODES
    return False


if __name__ == "__main__":  # pragma: no cover
    main()
