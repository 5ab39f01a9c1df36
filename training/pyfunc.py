"""MLflow pyfunc wrappers: how OrderPulse models are logged, so MLflow's own tooling can load them too.

A logged model directory holds the fitted estimator (joblib) and a Parquet snapshot of the tables it was
trained on. The snapshot is what lets a forecast start from the latest history and what seeds the service's
store of past orders/labels; its fingerprint is logged with the run.

Loading needs the ``orderpulse`` package installed (``pip install orderpulse``); the wrapper classes are
importable as ``training.pyfunc.ForecastPyfunc`` / ``training.anomaly.models.AnomalyPyfunc``; load them with
``load_snapshot_model(uri, kind=...)``, which checks the type.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, TypeVar

import joblib
import mlflow
import pandas as pd
from mlflow.models import ModelSignature
from mlflow.types.schema import ColSpec, Schema

from features.errors import OrderPulseError
from features.io import write_frame

W = TypeVar("W", bound="SnapshotPyfunc")

__all__ = [
    "SnapshotPyfunc",
    "ForecastPyfunc",
    "ModelKindError",
    "log_pyfunc",
    "load_snapshot_model",
    "FORECAST_SIGNATURE",
]

FORECAST_SIGNATURE = ModelSignature(
    inputs=Schema([ColSpec("string", "series_id"), ColSpec("long", "horizon", required=False)]),
    outputs=Schema(
        [
            ColSpec("string", "series_id"),
            ColSpec("datetime", "ds"),
            ColSpec("double", "yhat"),
            ColSpec("double", "yhat_lo_80"),
            ColSpec("double", "yhat_hi_80"),
            ColSpec("double", "yhat_lo_95"),
            ColSpec("double", "yhat_hi_95"),
        ]
    ),
)


class ModelKindError(OrderPulseError, TypeError):
    """A logged model is not the kind of OrderPulse model the caller needs (``load_snapshot_model``)."""


class SnapshotPyfunc(mlflow.pyfunc.PythonModel):
    """Base wrapper: a joblib-pickled estimator plus named Parquet tables, loaded once per process."""

    model: Any
    tables: dict[str, pd.DataFrame]

    def load_context(self, context: mlflow.pyfunc.PythonModelContext) -> None:
        self.model = joblib.load(context.artifacts["estimator"])
        self.tables = {
            name.removeprefix("table_"): pd.read_parquet(path)
            for name, path in context.artifacts.items()
            if name.startswith("table_")
        }

    def table(self, name: str) -> pd.DataFrame | None:
        return self.tables.get(name)


class ForecastPyfunc(SnapshotPyfunc):
    """Input: rows of ``series_id`` (and optional ``horizon``); output: forecasts from the snapshot's end."""

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        ids = pd.Index(model_input["series_id"].astype(str).unique())
        horizon = (
            int(model_input["horizon"].max()) if "horizon" in model_input.columns else int(self.model.horizon)
        )
        series = self.tables["series"]
        wanted = series.loc[series["series_id"].astype(str).isin(ids)]
        kwargs = {k: self.table(k) for k in ("covariates", "weather", "static")}
        return self.model.predict(wanted, horizon=horizon, **kwargs)


def log_pyfunc(
    wrapper: SnapshotPyfunc,
    estimator: Any,
    tables: dict[str, pd.DataFrame | None],
    signature: ModelSignature,
    input_example: pd.DataFrame | None = None,
    name: str = "model",
    metadata: dict[str, Any] | None = None,
) -> str:
    """Log ``estimator`` + ``tables`` as a pyfunc model in the active run; returns the model URI.

    ``metadata`` goes into the model's MLmodel file (``PyFuncModel.metadata.metadata``; the service shows it
    in ``/v1/models``)."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        artifacts = {"estimator": str(root / "estimator.joblib")}
        joblib.dump(estimator, artifacts["estimator"], compress=3)
        for key, df in tables.items():
            if df is None:
                continue
            path = root / f"{key}.parquet"
            write_frame(_parquet_safe(df), path)
            artifacts[f"table_{key}"] = str(path)
        info = mlflow.pyfunc.log_model(
            name=name,
            python_model=wrapper,
            artifacts=artifacts,
            signature=signature,
            input_example=input_example,
            pip_requirements=["orderpulse"],
            metadata=metadata,
        )
    return info.model_uri


def load_snapshot_model(model_uri: str, kind: type[W] = SnapshotPyfunc) -> W:  # type: ignore[assignment]
    """Load a logged OrderPulse model and return the wrapper (``.model`` estimator, ``.tables`` snapshot).

    The one loader of logged models (CLI jobs, reviews, the server's model source). ``kind`` is the wrapper
    class the caller needs (``ForecastPyfunc``, ``training.anomaly.models.AnomalyPyfunc``; default any
    OrderPulse model); any other model raises ``ModelKindError`` (a ``TypeError``; the CLI exits 2 with it)
    naming what was found and how to fix it.
    """
    loaded = mlflow.pyfunc.load_model(model_uri)
    wrapper = loaded.unwrap_python_model()
    if not isinstance(wrapper, kind):
        what = "an OrderPulse model" if kind is SnapshotPyfunc else f"an OrderPulse {kind.__name__}"
        raise ModelKindError(
            f"the model at {model_uri} is a {type(wrapper).__name__}, not {what}: register models "
            "logged by `orderpulse train forecast|anomaly` (forecast models for forecasts, anomaly models "
            "for scoring)"
        )
    return wrapper


def _parquet_safe(df: pd.DataFrame) -> pd.DataFrame:
    out = df.copy()
    for col in out.columns:
        if isinstance(out[col].dtype, pd.CategoricalDtype):
            out[col] = out[col].astype(object).where(out[col].notna(), None)
        elif out[col].dtype == object:
            out[col] = out[col].astype("string")
    return out
