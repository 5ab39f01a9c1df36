"""training/pyfunc.py: the one loader of logged OrderPulse models checks what it loads."""

from __future__ import annotations

import joblib
import mlflow.pyfunc
import pandas as pd
import pytest

from training.anomaly.models import AnomalyPyfunc
from training.pyfunc import ForecastPyfunc, ModelKindError, SnapshotPyfunc, load_snapshot_model


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
