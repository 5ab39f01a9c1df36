"""``orderpulse quickstart``: what ``make run`` does on a fresh clone.

Trains the forecast and anomaly models on the bundled sample when no champion is registered yet (an existing
champion is kept), then serves the API. The sample lives in ``data/sample/``: Rossmann stores for the
forecaster, Online Retail orders and labels for the exception classifier. ``--name X`` (default: the service's
``ORDERPULSE_MODEL_NAME``, else ``orderpulse``) trains ``X-forecast`` / ``X-anomaly`` when they have no champion
and serves those (``Settings.model_name``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from orderpulse.console import err

__all__ = ["quickstart", "champion_exists", "ensure_models"]


def champion_exists(registered_name: str) -> bool:
    """True when ``registered_name`` has a version under the ``champion`` alias in the tracking store."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from training.tracking import configure

    configure()
    try:
        MlflowClient().get_model_version_by_alias(registered_name, "champion")
    except MlflowException:
        return False
    return True


def ensure_models(data: Path, name: str = "orderpulse") -> dict[str, str]:
    """Train what is missing on the sample; returns what was done per model kind."""
    from orderpulse.jobs.anomaly import train_anomaly
    from orderpulse.jobs.forecast import train_forecast
    from training.registry import registered_name

    done = {}
    rossmann, retail = data / "rossmann", data / "online_retail"
    if champion_exists(registered_name(name, "forecast")):
        done["forecast"] = "champion already registered"
    else:
        for f in ("series", "covariates", "weather", "static"):
            if not (rossmann / f"{f}.csv").exists():
                raise FileNotFoundError(
                    f"{rossmann / f'{f}.csv'} is missing: run from the repository root or pass --data."
                )
        result = train_forecast(
            rossmann / "series.csv",
            rossmann / "covariates.csv",
            rossmann / "weather.csv",
            rossmann / "static.csv",
            freq="D",
            horizon=42,
            name=name,
            n_windows=2,
        )
        done["forecast"] = _trained(result)
    if champion_exists(registered_name(name, "anomaly")):
        done["anomaly"] = "champion already registered"
    else:
        result = train_anomaly(retail / "orders.csv", retail / "labels.csv", name=name)
        done["anomaly"] = _trained(result)
    return done


def quickstart(
    data: Annotated[
        Path, typer.Option("--data", help="folder with rossmann/ and online_retail/ samples")
    ] = Path("data/sample"),
    name: Annotated[
        str,
        typer.Option(
            "--name", envvar="ORDERPULSE_MODEL_NAME", help="registered model name prefix (the service's too)"
        ),
    ] = "orderpulse",
    host: Annotated[str, typer.Option("--host")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port")] = 8000,
    train_only: Annotated[bool, typer.Option("--train-only", help="train if needed, do not serve")] = False,
) -> None:
    """Train on the bundled sample if no champion model exists yet, then serve the API."""
    for kind, what in ensure_models(data, name).items():
        err.print(f"[bold]{kind}[/]: {what}")
    if train_only:
        return
    from serving.cli import serve
    from serving.settings import Settings

    serve(host, port, workers=1, settings=Settings(model_name=name))


def _trained(result: dict) -> str:
    text = f"trained v{result['version']} (@{result['alias']})"
    return text if result.get("gate_passed", True) else f"{text}: {result.get('decision')}"
