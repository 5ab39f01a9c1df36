"""training/pyfunc.py: the one loader of logged OrderPulse models checks what it loads; logged models carry exact
requirements and their code, and MLflow's own server answers."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import cloudpickle
import httpx
import joblib
import mlflow
import mlflow.pyfunc
import numpy as np
import pandas as pd
import pytest

from features.io import load_table
from training.anomaly.models import AnomalyPyfunc
from training.forecast.forecaster import LGBMForecaster
from training.pyfunc import (
    MODEL_REQUIREMENTS,
    ForecastPyfunc,
    ModelKindError,
    SnapshotPyfunc,
    forecast_signature,
    load_snapshot_model,
    log_pyfunc,
    model_requirements,
)
from training.tracking import start_run

pytestmark = pytest.mark.filterwarnings("ignore:.*input example was not provided")

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "data" / "sample" / "rossmann"


class NotOurs(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        return model_input


def _save(tmp_path, name, python_model, with_snapshot=True):
    path = tmp_path / name
    artifacts = {}
    if with_snapshot:
        joblib.dump({"an": "estimator"}, tmp_path / f"{name}.joblib")
        pd.DataFrame({"series_id": ["a"], "y": [1.0]}).to_parquet(tmp_path / f"{name}.parquet")
        artifacts = {
            "estimator": str(tmp_path / f"{name}.joblib"),
            "table_series": str(tmp_path / f"{name}.parquet"),
        }
    mlflow.pyfunc.save_model(str(path), python_model=python_model, artifacts=artifacts, pip_requirements=[])
    return str(path)


def test_loads_the_wrapper_with_its_estimator_and_snapshot(tmp_path):
    wrapper = load_snapshot_model(_save(tmp_path, "f", ForecastPyfunc()), kind=ForecastPyfunc)
    assert isinstance(wrapper, ForecastPyfunc)
    assert wrapper.model == {"an": "estimator"}
    assert wrapper.table("series")["y"].tolist() == [1.0]
    assert wrapper.table("weather") is None


def test_a_model_that_is_not_orderpulses_is_refused_naming_its_type(tmp_path):
    path = _save(tmp_path, "other", NotOurs(), with_snapshot=False)
    with pytest.raises(
        ModelKindError, match=r"is a NotOurs, not an OrderPulse model: register models logged"
    ):
        load_snapshot_model(path)


def test_a_forecast_model_is_refused_where_an_anomaly_model_is_needed(tmp_path):
    path = _save(tmp_path, "f", ForecastPyfunc())
    assert isinstance(load_snapshot_model(path), SnapshotPyfunc)
    with pytest.raises(ModelKindError, match="is a ForecastPyfunc, not an OrderPulse AnomalyPyfunc") as info:
        load_snapshot_model(path, kind=AnomalyPyfunc)
    assert isinstance(info.value, TypeError)


def test_model_requirements_are_the_lock_s_exact_versions_and_never_orderpulse():
    lock = set((REPO / "requirements.lock").read_text().splitlines())
    pins = model_requirements()
    assert [p.split("==")[0] for p in pins] == list(MODEL_REQUIREMENTS)
    assert all(p in lock for p in pins), [p for p in pins if p not in lock]
    assert not any(p.lower().startswith("orderpulse") for p in pins)


def test_model_requirements_pin_the_cloudpickle_that_pickles_the_wrapper():
    # `mlflow models serve` (virtualenv) resolved cloudpickle 3.1.3 for a wrapper pickled with 3.1.2: MLflow
    # warned that the model may not load; the pin makes the served environment unpickle with the same version
    assert f"cloudpickle=={cloudpickle.__version__}" in model_requirements()


@pytest.fixture
def logged_forecaster(isolated_mlflow) -> str:
    """A small forecaster on two sample stores, logged the way training logs it (its code, pinned requirements)."""
    series, _ = load_table(SAMPLE / "series.csv", "series")
    covariates, _ = load_table(SAMPLE / "covariates.csv", "covariates")
    ids = ["88", "126"]
    series = series.loc[series["series_id"].astype(str).isin(ids) & (series["ds"] <= "2015-05-31")]
    covariates = covariates.loc[covariates["series_id"].astype(str).isin(ids)]
    model = LGBMForecaster(freq="D", horizon=7, params={"n_estimators": 20, "num_leaves": 7}, n_jobs=1)
    model.fit(series, covariates=covariates)
    with start_run("pyfunc-tests"):
        return log_pyfunc(
            ForecastPyfunc(),
            model,
            {"series": series, "covariates": covariates},
            forecast_signature(covariates),
        )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_mlflow_models_serve_with_the_local_env_manager_answers_like_load_model(
    logged_forecaster, tmp_path, wait_for_http
):
    rows = pd.DataFrame(
        {"series_id": [88, 88, 126], "ds": ["2015-06-01", "2015-06-02", "2015-06-01"], "open": 1}
    )
    expected = mlflow.pyfunc.load_model(logged_forecaster).predict(rows)

    port = _free_port()
    bin_dir = str(Path(sys.executable).parent)  # the server starts `uvicorn` from PATH
    env = {**os.environ, "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""), "OMP_NUM_THREADS": "1"}
    log = open(tmp_path / "serve.log", "wb")  # noqa: SIM115 - closed below
    cmd = [sys.executable, "-m", "mlflow", "models", "serve", "-m", logged_forecaster]
    cmd += ["--env-manager", "local", "-h", "127.0.0.1", "-p", str(port)]
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(proc, f"{base}/ping", tmp_path / "serve.log", timeout_s=120)
        body = {"dataframe_split": rows.to_dict(orient="split", index=False)}
        response = httpx.post(f"{base}/invocations", json=body, timeout=60)
        assert response.status_code == 200, response.text
        got = pd.DataFrame(response.json()["predictions"])
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=30)
        log.close()
    assert list(got["series_id"]) == ["88", "88", "126"]
    np.testing.assert_allclose(got["yhat"], expected["yhat"], rtol=1e-9)
    np.testing.assert_allclose(got["yhat_hi_80"], expected["yhat_hi_80"], rtol=1e-9)
