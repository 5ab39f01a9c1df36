"""``orderpulse report forecast|anomalies``: the planner notebooks rendered to static HTML; ``orderpulse report
monitoring``: the live monitoring figures of the service (``orderpulse.jobs.monitoring_report``), no notebook.

Each command executes a notebook of ``notebooks/`` top to bottom with its parameters injected papermill-style
(a new cell tagged ``injected-parameters`` right after the cell tagged ``parameters``), in a fresh ``python3``
kernel that runs in the current directory with this process's MLflow store (``MLFLOW_TRACKING_URI``), then
writes the executed notebook and an HTML page (figures embedded as base64 PNG; code hidden unless
``--show-code``) to ``--out``. The model URI is resolved before the kernel starts, so an unknown model is one
readable error line, not a notebook traceback.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from features.errors import OrderPulseError
from orderpulse.console import err, print_json_line

__all__ = [
    "report_app",
    "ReportError",
    "render_notebook",
    "inject_parameters",
    "notebooks_dir",
    "FORECAST_NOTEBOOK",
    "ANOMALIES_NOTEBOOK",
]

FORECAST_NOTEBOOK = "01_forecast_review.ipynb"
ANOMALIES_NOTEBOOK = "03_flagged_orders_review.ipynb"
INJECTED_TAG = "injected-parameters"

report_app = typer.Typer(
    help="Render the planner notebooks to static HTML reports (executed on the registered models).",
    no_args_is_help=True,
)

OutOpt = Annotated[Path, typer.Option("--out", help="output folder for the .html and the executed .ipynb")]
ShowCodeOpt = Annotated[bool, typer.Option("--show-code", help="keep the notebook's code in the HTML")]
TimeoutOpt = Annotated[int, typer.Option("--timeout", min=10, help="seconds a single cell may run")]


class ReportError(OrderPulseError):
    """A report notebook could not be found or failed while executing."""


def notebooks_dir() -> Path:
    """``ORDERPULSE_NOTEBOOKS`` or the ``notebooks/`` folder of the repository this package runs from."""
    env = os.environ.get("ORDERPULSE_NOTEBOOKS")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "notebooks"


def inject_parameters(nb: Any, parameters: dict[str, Any]) -> Any:
    """``nb`` with a cell setting ``parameters`` inserted after the cell tagged ``parameters`` (an earlier
    injected cell is replaced). Values must be Python literals (str, numbers, bool, None, lists, dicts)."""
    import ast

    import nbformat

    index = next(
        (i for i, c in enumerate(nb.cells) if "parameters" in c.get("metadata", {}).get("tags", [])), None
    )
    if index is None:
        raise ReportError(
            "The notebook has no cell tagged 'parameters'; tag the cell that sets the defaults "
            "(cell metadata: {'tags': ['parameters']})."
        )
    lines = ["# Parameters injected by orderpulse report"]
    for name, value in parameters.items():
        if not name.isidentifier():
            raise ValueError(f"Parameter names must be Python identifiers. Got {name!r} instead.")
        value = str(value) if isinstance(value, Path) else value
        text = repr(value)
        try:
            ok = ast.literal_eval(text) == value
        except (ValueError, SyntaxError):
            ok = False
        if not ok:
            raise ValueError(
                f"Parameter {name!r} must be a Python literal (str, number, bool, None, list, dict). "
                f"Got {type(value).__name__} {text[:80]} instead."
            )
        lines.append(f"{name} = {text}")
    cell = nbformat.v4.new_code_cell("\n".join(lines), metadata={"tags": [INJECTED_TAG]})
    cells = [c for c in nb.cells if INJECTED_TAG not in c.get("metadata", {}).get("tags", [])]
    index = next(i for i, c in enumerate(cells) if "parameters" in c.get("metadata", {}).get("tags", []))
    nb.cells = cells[: index + 1] + [cell] + cells[index + 1 :]
    return nb


def render_notebook(
    notebook: str | Path,
    parameters: dict[str, Any],
    out_dir: str | Path,
    name: str,
    *,
    timeout: int = 600,
    show_code: bool = False,
    kernel_name: str = "python3",
    cwd: str | Path | None = None,
) -> dict[str, Any]:
    """Execute ``notebook`` with ``parameters`` and write ``<out_dir>/<name>.ipynb`` and ``<name>.html``.

    ``notebook`` is a path or a file name in ``notebooks_dir()``. The kernel runs in ``cwd`` (default: the
    current directory) with ``MLFLOW_TRACKING_URI`` set to this process's store. Returns the paths and the
    execution time. On a failing cell the partly executed notebook is still written and ``ReportError`` says
    which cell failed and where the notebook is.
    """
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError
    from nbconvert import HTMLExporter

    from training.tracking import tracking_uri

    path = Path(notebook)
    if not path.is_absolute() and not path.exists():
        path = notebooks_dir() / path
    if not path.is_file():
        raise ReportError(
            f"Notebook {path} not found. Run from a checkout of the repository or set ORDERPULSE_NOTEBOOKS "
            "to the folder holding the notebooks."
        )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    nb = inject_parameters(nbformat.read(path, as_version=4), parameters)
    _ensure_kernelspec(kernel_name)
    env = {**os.environ, "MLFLOW_TRACKING_URI": tracking_uri()}
    client = NotebookClient(
        nb,
        kernel_name=kernel_name,
        timeout=timeout,
        resources={"metadata": {"path": str(Path(cwd or Path.cwd()).resolve())}},
    )
    executed = out / f"{name}.ipynb"
    started = time.perf_counter()
    try:
        client.execute(env=env)
    except CellExecutionError as exc:
        nbformat.write(nb, executed)
        raise ReportError(
            f"{path.name} failed in a cell with {exc.ename}: {exc.evalue}. The partly executed notebook is "
            f"{executed}; open it to see the traceback."
        ) from None
    seconds = time.perf_counter() - started
    nbformat.write(nb, executed)
    exporter = HTMLExporter(
        exclude_input=not show_code, exclude_input_prompt=True, exclude_output_prompt=True
    )
    body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": name.replace("_", " ")}})
    html = out / f"{name}.html"
    html.write_text(body, encoding="utf-8")
    return {"html": str(html), "notebook": str(executed), "seconds": round(seconds, 1)}


@report_app.command("forecast")
def forecast_report(
    model: Annotated[
        str, typer.Option("--model", help="forecast model URI")
    ] = "models:/orderpulse-forecast@champion",
    series: Annotated[
        list[str] | None,
        typer.Option(
            "--series",
            help="a series to plot (repeat the option); default: a few spread over the range of volumes",
        ),
    ] = None,
    covariates: Annotated[
        Path | None,
        typer.Option(
            "--covariates",
            help="the promo/holiday plan for the coming days (covariates table); default: the model's own",
        ),
    ] = None,
    out: OutOpt = Path("reports"),
    show_code: ShowCodeOpt = False,
    timeout: TimeoutOpt = 600,
) -> None:
    """Forecast review: backtest accuracy by series/segment/daily total, worst series, coverage, next weeks."""
    _resolve_first(model)
    params: dict[str, Any] = {"model_uri": model, "series_ids": list(series or [])}
    if covariates is not None:
        params["covariates_path"] = str(covariates.resolve())
    _render(FORECAST_NOTEBOOK, params, out, "forecast_review", timeout, show_code)


@report_app.command("anomalies")
def anomalies_report(
    model: Annotated[
        str, typer.Option("--model", help="exception-order model URI")
    ] = "models:/orderpulse-anomaly@champion",
    start: Annotated[
        str | None,
        typer.Option(
            "--from",
            help="review orders created at or after this time (default: the last 28 days of the orders)",
        ),
    ] = None,
    end: Annotated[str | None, typer.Option("--to", help="... and before this time")] = None,
    orders: Annotated[
        Path | None, typer.Option("--orders", help="orders table (default: the model's snapshot)")
    ] = None,
    labels: Annotated[
        Path | None, typer.Option("--labels", help="labels table (default: the model's snapshot)")
    ] = None,
    out: OutOpt = Path("reports"),
    show_code: ShowCodeOpt = False,
    timeout: TimeoutOpt = 600,
) -> None:
    """Flagged-orders review: flags of a period with reasons, precision/recall vs threshold, calibration, SHAP."""
    _resolve_first(model)
    params: dict[str, Any] = {"model_uri": model, "period_start": start, "period_end": end}
    if orders is not None:
        params["orders_path"] = str(orders.resolve())
    if labels is not None:
        params["labels_path"] = str(labels.resolve())
    _render(ANOMALIES_NOTEBOOK, params, out, "flagged_orders_review", timeout, show_code)


@report_app.command("monitoring")
def monitoring_report(
    start: Annotated[str | None, typer.Option("--from", help="answers at or after this time (UTC)")] = None,
    end: Annotated[str | None, typer.Option("--to", help="... and before this time")] = None,
    out: Annotated[
        Path, typer.Option("--out", help="output folder for monitoring.html and its figures")
    ] = Path("reports"),
    model: Annotated[
        str | None, typer.Option("--model", help="one registered model (name or name/version); default all")
    ] = None,
    events_db: Annotated[
        str | None,
        typer.Option(
            "--events-db", help="the service's database URL (default: ORDERPULSE_AUDIT_URL, as the service)"
        ),
    ] = None,
    freq: Annotated[str, typer.Option("--freq", help="period of the timeline: D, W or M")] = "D",
) -> None:
    """Live monitoring page: accuracy vs backtest over time, coverage by step, calibration, drift, data quality."""
    from orderpulse.jobs.monitoring_report import monitoring_report as job
    from training.anomaly.data import parse_timestamp

    since = parse_timestamp(start, "--from").to_pydatetime() if start is not None else None
    until = parse_timestamp(end, "--to").to_pydatetime() if end is not None else None
    result = job(out, since=since, until=until, model=model, database_url=events_db, freq=freq)
    err.print(f"[green]wrote[/] {result['html']} (status {result['status']})")
    print_json_line(result)


def _render(
    notebook: str, params: dict[str, Any], out: Path, name: str, timeout: int, show_code: bool
) -> None:
    with err.status(f"executing {notebook}"):
        result = render_notebook(notebook, params, out, name, timeout=timeout, show_code=show_code)
    err.print(f"[green]wrote[/] {result['html']} ({result['seconds']:.0f}s)")
    print_json_line(result)


def _resolve_first(model_uri: str) -> None:
    """Fail before starting a kernel when the model URI does not resolve (exit code 2, one line)."""
    from training.registry import resolve

    resolve(model_uri)


def _ensure_kernelspec(kernel_name: str) -> None:
    """Make ``kernel_name`` findable: install this interpreter's ipykernel spec into its prefix if missing."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        KernelSpecManager().get_kernel_spec(kernel_name)
        return
    except NoSuchKernel:
        if kernel_name != "python3":
            raise ReportError(f"No Jupyter kernel named {kernel_name!r}; use 'python3'.") from None
    import subprocess

    subprocess.run(
        [sys.executable, "-m", "ipykernel", "install", "--sys-prefix"], check=True, capture_output=True
    )
