"""MLflow pyfunc wrappers: how OrderPulse models are logged, so MLflow's own tooling can load them too.

A logged model directory holds the fitted estimator (joblib) and a Parquet snapshot of the tables it was
trained on. The snapshot is what lets a forecast start from the latest history and what seeds the service's
store of past orders/labels; its fingerprint is logged with the run.

Models carry their code (``code_paths``: the ``features`` and ``training`` packages) and exact requirements
(``MODEL_REQUIREMENTS`` pinned to ``requirements.lock``, else to the installed versions), so
``mlflow.pyfunc.load_model(uri).predict(df)`` and ``mlflow models serve -m URI`` work without OrderPulse
installed. ``ForecastPyfunc`` takes the rows to forecast (``series_id, ds`` and optional ``open`` / covariate
columns); ``training.anomaly.models.AnomalyPyfunc`` takes order lines. OrderPulse code loads them with
``load_snapshot_model(uri, kind=...)``, which checks the type.
"""

from __future__ import annotations

import importlib.metadata
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any, TypeVar

import joblib
import mlflow
import pandas as pd
from mlflow.models import ModelSignature
from mlflow.types.schema import AnyType, ColSpec, Schema

from features.errors import OrderPulseError
from features.io import write_frame

W = TypeVar("W", bound="SnapshotPyfunc")

__all__ = [
    "SnapshotPyfunc",
    "ForecastPyfunc",
    "ModelKindError",
    "log_pyfunc",
    "load_snapshot_model",
    "forecast_signature",
    "model_requirements",
    "MODEL_REQUIREMENTS",
    "FORECAST_SIGNATURE",
]

MODEL_REQUIREMENTS = (
    "mlflow",
    "cloudpickle",  # MLflow pickles the wrapper with it; another version warns and may not unpickle it
    "numpy",
    "pandas",
    "pyarrow",
    "pandera",
    "lightgbm",
    "scikit-learn",
    "scipy",
    "shap",
    "joblib",
    "psutil",
    "holidays",  # LGBMForecaster(holidays=...) builds its calendar at predict time
    "hierarchicalforecast",  # models trained with --levels reconcile at predict time
)
"""The distributions the logged model code imports; pinned exactly by ``model_requirements``."""

_ROOT = Path(__file__).resolve().parents[1]
_CODE_PACKAGES = ("features", "training")
_FORECAST_OUTPUTS = Schema(
    [
        ColSpec("string", "series_id"),
        ColSpec("datetime", "ds"),
        ColSpec("long", "step"),
        ColSpec("double", "yhat"),
        ColSpec("double", "yhat_lo_80"),
        ColSpec("double", "yhat_hi_80"),
        ColSpec("double", "yhat_lo_95"),
        ColSpec("double", "yhat_hi_95"),
    ]
)


def forecast_signature(covariates: pd.DataFrame | None = None) -> ModelSignature:
    """The forecast pyfunc's signature: ``series_id``, ``ds`` (the dates to forecast), optional ``open`` and
    optional columns of the covariates the model was trained with (request values override the snapshot's).

    Ids and numbers accept any dtype (ints, floats, strings): the model converts them, so an int ``series_id``
    or an int promo flag is not refused by MLflow's schema enforcement."""
    extra = [
        c for c in (covariates.columns if covariates is not None else []) if c not in ("series_id", "ds")
    ]
    return ModelSignature(
        inputs=Schema(
            [
                ColSpec(AnyType(), "series_id"),
                ColSpec("datetime", "ds", required=False),
                ColSpec(AnyType(), "open", required=False),
                ColSpec("long", "horizon", required=False),
                *[ColSpec(AnyType(), str(c), required=False) for c in extra],
            ]
        ),
        outputs=_FORECAST_OUTPUTS,
    )


FORECAST_SIGNATURE = forecast_signature()
"""The signature of a forecast model trained without covariates."""


def model_requirements() -> list[str]:
    """``MODEL_REQUIREMENTS`` as exact pins: the version in ``requirements.lock`` when the repository has one,
    else the installed version (never an unpinned or an ``orderpulse`` requirement: no index has it)."""
    locked: dict[str, str] = {}
    lock = _ROOT / "requirements.lock"
    if lock.is_file():
        for line in lock.read_text().splitlines():
            match = re.fullmatch(r"\s*([A-Za-z0-9_.\-]+)==([^\s;#]+).*", line)
            if match:
                locked[_canonical(match.group(1))] = match.group(2)
    out = []
    for name in MODEL_REQUIREMENTS:
        version = locked.get(_canonical(name))
        if version is None:
            try:
                version = importlib.metadata.version(name)
            except importlib.metadata.PackageNotFoundError:
                continue
        out.append(f"{name}=={version}")
    return out


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
    """Input: the rows to forecast, ``series_id, ds`` (+ optional ``open`` and covariate columns); output:
    ``series_id, ds, step, yhat`` and the interval columns, one row per requested row, in request order.

    Each series is forecast from the step before its first requested ``ds`` (its origin) with the history
    and covariates of the snapshot; request columns override the stored values for their (series, ds). The
    numbers are those of ``orderpulse forecast --origin <origin>`` on the snapshot series. Rows of
    ``series_id`` alone (optional ``horizon``) forecast the steps after the snapshot's end, as before.
    """

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        if "series_id" not in model_input.columns:
            raise ValueError(
                f"The forecast model needs a series_id column. Got columns {list(model_input.columns)}."
            )
        if "ds" not in model_input.columns:
            return self._from_snapshot_end(model_input)
        from training.forecast.requests import forecast_rows

        return forecast_rows(self.model, self.tables, model_input)

    def _from_snapshot_end(self, model_input: pd.DataFrame) -> pd.DataFrame:
        ids = pd.Index(model_input["series_id"].astype(str).unique())
        horizon = (
            int(model_input["horizon"].max()) if "horizon" in model_input.columns else int(self.model.horizon)
        )
        series = self.tables["series"]
        wanted = series.loc[series["series_id"].astype(str).isin(ids)]
        kwargs = {k: self.table(k) for k in ("covariates", "weather", "static")}
        return self.model.predict(horizon, series=wanted, **kwargs)


def log_pyfunc(
    wrapper: SnapshotPyfunc,
    estimator: Any,
    tables: dict[str, pd.DataFrame | None],
    signature: ModelSignature,
    input_example: pd.DataFrame | None = None,
    name: str = "model",
    metadata: dict[str, Any] | None = None,
) -> str:
    """Log ``estimator`` + ``tables`` as a pyfunc model in the active run, with its code and pinned
    requirements (see the module docstring); returns the model URI.

    ``metadata`` goes into the model's MLmodel file (``PyFuncModel.metadata.metadata``; the service shows it
    in ``/v1/models``)."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        code_paths = []
        for package in _CODE_PACKAGES:
            target = root / "code" / package
            shutil.copytree(_ROOT / package, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
            code_paths.append(str(target))
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
            pip_requirements=model_requirements(),
            code_paths=code_paths,
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


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _parquet_safe(df: pd.DataFrame) -> pd.DataFrame:
    out = df.copy()
    for col in out.columns:
        if isinstance(out[col].dtype, pd.CategoricalDtype):
            out[col] = out[col].astype(object).where(out[col].notna(), None)
        elif out[col].dtype == object:
            out[col] = out[col].astype("string")
    return out
