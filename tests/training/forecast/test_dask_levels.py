"""``--levels`` with the dask engine (training/forecast/dask.py): the batch forecast of every level, with each
partition summing its own series, equals the local job's coherent forecast; training on dask learns the
hierarchy too. On a LocalCluster of 2 worker processes and 6 sample stores."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("distributed")
pytest.importorskip("hierarchicalforecast")


from features.hierarchy import Hierarchy  # noqa: E402
from features.io import load_table, read_frame  # noqa: E402
from training.forecast.backtest import backtest  # noqa: E402
from training.forecast.dask import forecast_dataset  # noqa: E402
from training.forecast.forecaster import LGBMForecaster  # noqa: E402
from training.forecast.hierarchy import hierarchy_output, train_hierarchy  # noqa: E402
from training.forecast.job import forecast_output, train_forecast  # noqa: E402

SAMPLE = Path(__file__).resolve().parents[3] / "data" / "sample" / "rossmann"
STORES = ["88", "89", "126", "183", "512", "817"]
HORIZON = 7
PARAMS = {"n_estimators": 30, "num_leaves": 7, "min_child_samples": 5}


@pytest.fixture(scope="module")
def tables() -> dict[str, pd.DataFrame]:
    out = {}
    for name in ("series", "covariates", "static"):
        table = load_table(SAMPLE / f"{name}.csv", name)[0]
        out[name] = table.loc[table["series_id"].astype(str).isin(STORES)].reset_index(drop=True)
    return out


@pytest.fixture(scope="module")
def fitted(tables):
    series = tables["series"]
    origin = series["ds"].max() - pd.Timedelta(days=HORIZON)
    history = series.loc[series["ds"] <= origin]
    aux = {"covariates": tables["covariates"], "weather": None, "static": tables["static"]}

    def make_model(levels: tuple[int, ...] = ()) -> LGBMForecaster:
        return LGBMForecaster(freq="D", horizon=HORIZON, levels=levels, params=PARAMS, calibrate=bool(levels))

    bt = backtest(
        make_model, history, n_windows=2, step=7, horizon=HORIZON, refit=False, levels=(), fit_kwargs=aux
    )
    model = make_model((80,)).fit(history, **aux)
    hierarchy = Hierarchy.from_static(tables["static"], STORES, ("region", "total"))
    train_hierarchy(model, hierarchy, history, aux, bt.predictions, n_windows=2, step=7, horizon=HORIZON)
    return model, origin, aux


def test_dask_forecast_of_every_level_equals_the_local_one(client, tables, fitted, tmp_path):
    model, origin, aux = fitted
    series = tables["series"]
    pred = model.predict(HORIZON, levels=(80,), series=series, origin=origin, **aux)
    local = hierarchy_output(
        model, "region,total", pred, series, aux, level=80, horizon=HORIZON, origin=origin
    )
    raw = tmp_path / "series"
    raw.mkdir()
    for i, ids in enumerate((STORES[:2], STORES[2:4], STORES[4:])):  # Bayern (89, 183, 512) in all three
        series.loc[series["series_id"].astype(str).isin(ids)].to_parquet(
            raw / f"part-{i}.parquet", index=False
        )

    summary = forecast_dataset(
        model,
        raw,
        tmp_path / "levels.parquet",
        {**aux, "weather": None},
        horizon=HORIZON,
        level=80,
        origin=origin,
        explain=False,
        on_bad_rows="raise",
        shape=forecast_output,
        npartitions=3,
        levels_output=lambda pred, sums, at: hierarchy_output(
            model, "region,total", pred, None, aux, level=80, horizon=HORIZON, origin=at, sums=sums
        ),
    )

    written = read_frame(tmp_path / "levels.parquet")
    assert summary["rows"] == len(local) == (6 + 4 + 1) * HORIZON  # 6 stores, 4 regions, the total
    keys = ["level", "series_id", "ds"]
    got = written.assign(series_id=written["series_id"].astype(str)).sort_values(keys, ignore_index=True)
    want = local.assign(series_id=local["series_id"].astype(str)).sort_values(keys, ignore_index=True)
    pd.testing.assert_frame_equal(got[want.columns], want, check_dtype=False, rtol=1e-9)
    by_day = got.pivot_table(index="ds", columns="level", values="yhat", aggfunc="sum")
    np.testing.assert_allclose(by_day["series"], by_day["total"], rtol=1e-9)


def test_training_on_dask_learns_the_hierarchy(client, tables, monkeypatch):
    monkeypatch.setenv("ORDERPULSE_N_JOBS", "1")
    result = train_forecast(
        tables["series"],
        tables["covariates"],
        None,
        tables["static"],
        horizon=HORIZON,
        n_windows=2,
        step=7,
        params=PARAMS,
        engine="dask",
        scheduler=client.scheduler.address,
        hierarchy_levels="region,total",
        name="dasklevels",
    )
    metrics = result["metrics"]
    assert {"hierarchy.bottom_up.total.wape", "hierarchy.total.coverage_80"} <= set(metrics)
    assert 0 < metrics["hierarchy.bottom_up.total.wape"] < 0.5
    assert metrics["hierarchy.aggregates_region"] == 4
