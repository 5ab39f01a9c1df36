"""POST /v1/forecast with a registered forecast *ensemble* (``train forecast --model ensemble``), loaded from the
registry by alias and smoke-checked the way the service loads every model."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from serving.app import create_app, default_model_holder

AUTH = {"X-API-Key": "test-key"}
SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample" / "rossmann"
STORES = ["126", "183", "254", "512"]
NAME = "ens"


@pytest.fixture(scope="module")
def registered(tmp_path_factory: pytest.TempPathFactory) -> dict:
    from orderpulse.jobs.forecast import train_forecast

    root = tmp_path_factory.mktemp("ensemble_served")
    paths = {t: root / f"{t}.csv" for t in ("series", "covariates", "static")}
    for path in paths.values():
        df = pd.read_csv(SAMPLE / path.name, dtype={"series_id": str})
        df.loc[df["series_id"].isin(STORES)].to_csv(path, index=False)
    uri = f"sqlite:///{root / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as mp:  # the per-test store of the conftest comes later
        mp.setenv("MLFLOW_TRACKING_URI", uri)
        mp.setenv("ORDERPULSE_MLRUNS_DIR", str(root))
        result = train_forecast(
            paths["series"],
            paths["covariates"],
            None,
            paths["static"],
            horizon=14,
            params={"n_estimators": 30, "num_leaves": 15},
            name=NAME,
            model="ensemble",
        )
    return {"uri": uri, "result": result, "series": paths["series"]}


@pytest.fixture
def client(registered, make_settings):
    settings = make_settings(tracking_uri=registered["uri"], model_name=NAME)
    with TestClient(create_app(settings, model_holder=default_model_holder(settings))) as c:
        yield c


def test_a_registered_ensemble_is_champion_and_serves_forecasts_with_intervals(registered, client):
    assert registered["result"]["alias"] == "champion"
    response = client.post(
        "/v1/forecast", json={"series_ids": STORES[:2], "origin": "2015-06-05"}, headers=AUTH
    )
    assert response.status_code == 200, response.text
    out = response.json()
    assert out["model"]["name"] == f"{NAME}-forecast" and out["horizon"] == 14
    for series in out["series"]:
        points = series["points"]
        assert [p["step"] for p in points] == list(range(1, 15))
        assert all(0 <= p["yhat_lo"] <= p["yhat"] <= p["yhat_hi"] for p in points)
        assert any(p["yhat"] > 0 for p in points)


def test_served_ensemble_equals_the_model_and_explains_by_family_with_level_trend(
    registered, client, monkeypatch
):
    from training.pyfunc import ForecastPyfunc, load_snapshot_model

    body = {"series_id": STORES[0], "origin": "2015-06-05", "explain": True}
    response = client.post("/v1/forecast", json=body, headers=AUTH)
    assert response.status_code == 200, response.text
    points = response.json()["series"][0]["points"]
    monkeypatch.setenv("MLFLOW_TRACKING_URI", registered["uri"])
    model = load_snapshot_model(registered["result"]["model_uri"], kind=ForecastPyfunc).model
    series = pd.read_csv(registered["series"], dtype={"series_id": str}, parse_dates=["ds"])
    direct = model.predict(
        14, levels=(80,), series=series.loc[series["series_id"] == STORES[0]], origin="2015-06-05"
    )
    np.testing.assert_allclose([p["yhat"] for p in points], direct["yhat"], rtol=1e-9)
    open_point = next(p for p in points if p["yhat"] > 0)
    assert "level/trend" in open_point["contributions"] and "promo" in open_point["contributions"]
    total = open_point["base"] + sum(open_point["contributions"].values())
    assert total == pytest.approx(math.log1p(open_point["yhat"]), abs=1e-9)
