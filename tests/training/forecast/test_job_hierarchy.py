"""``orderpulse train forecast --levels`` and ``orderpulse forecast --levels`` (training/forecast/job.py with
training/forecast/hierarchy.py) on five sample stores in four regions."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from orderpulse.cli import main

pytest.importorskip("hierarchicalforecast")

SAMPLE = Path(__file__).resolve().parents[3] / "data" / "sample" / "rossmann"
STORES = ["88", "89", "126", "183", "512"]
PARAMS = '{"n_estimators": 20, "num_leaves": 7, "min_child_samples": 5}'


def _sample(name: str) -> pd.DataFrame:
    table = pd.read_csv(SAMPLE / f"{name}.csv", dtype={"series_id": str})
    keep = STORES if name != "static" else [s for s in STORES if s != "512"]  # 512: no static row
    return table.loc[table["series_id"].isin(keep)]


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The sample's tables for STORES; store 512 has no static row, so it belongs to the "(none)" region."""
    root = tmp_path_factory.mktemp("forecast_hierarchy_job")
    paths = {name: root / f"{name}.csv" for name in ("series", "covariates", "static")}
    for name, path in paths.items():
        _sample(name).to_csv(path, index=False)
    return {**paths, "weather": SAMPLE / "weather.csv"}


@pytest.fixture(scope="module")
def tracking(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("mlruns_hierarchy_job")
    return {"MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}", "ORDERPULSE_MLRUNS_DIR": str(root)}


@pytest.fixture(autouse=True)
def isolated_mlflow(tracking, monkeypatch):
    """One MLflow store for this module (overrides the conftest's per-test store): the model trains once."""
    for key, value in tracking.items():
        monkeypatch.setenv(key, value)


def _train_args(files, *extra: str) -> list[str]:
    args = ["train", "forecast", "--series", str(files["series"]), "--covariates", str(files["covariates"])]
    args += ["--weather", str(files["weather"]), "--static", str(files["static"]), "--horizon", "14"]
    return args + ["--n-windows", "2", "--step", "7", "--lgbm-params", PARAMS, "--name", "hier", *extra]


@pytest.fixture(scope="module")
def trained(tracking, files):
    buf = io.StringIO()
    with pytest.MonkeyPatch.context() as mp:
        for key, value in tracking.items():
            mp.setenv(key, value)
        with contextlib.redirect_stdout(buf), contextlib.suppress(SystemExit):
            main(_train_args(files, "--until", "2015-05-31", "--levels", "region,total"))
    return json.loads(buf.getvalue().strip().splitlines()[-1])


def _forecast(files, tmp_path, capsys, *extra: str) -> pd.DataFrame:
    out = tmp_path / "fc.csv"
    argv = ["forecast", "--model", "models:/hier-forecast@champion", "--series", str(files["series"])]
    argv += ["--origin", "2015-05-31", "--horizon", "14", "--out", str(out), *extra]
    with contextlib.suppress(SystemExit):
        main(argv)
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    frame = pd.read_csv(out, dtype={"series_id": str}, parse_dates=["ds"])
    frame.attrs["summary"] = summary
    return frame


def test_training_logs_every_method_per_level_and_the_chosen_method(trained):
    run = MlflowClient().get_run(trained["run_id"])
    m = run.data.metrics
    for method in ("bottom_up", "mint_shrink", "wls_struct"):
        for level in ("series", "region", "total"):
            assert 0.0 <= m[f"hierarchy.{method}.{level}.wape"] < 1.0
    assert "hierarchy.total.coverage_80" in m
    assert m["hierarchy.series_without_region"] == 1.0
    assert run.data.params["hierarchy_levels"] == "region,total"
    assert run.data.tags["hierarchy_method"] in {"bottom_up", "ols", "wls_struct", "wls_var", "mint_shrink"}


def test_forecast_with_levels_writes_coherent_rows_for_every_aggregate(trained, files, tmp_path, capsys):
    fc = _forecast(files, tmp_path, capsys, "--levels", "region,total")
    assert list(fc.columns) == ["level", "series_id", "ds", "yhat", "yhat_lo", "yhat_hi"]
    assert set(fc["level"]) == {"series", "region", "total"}
    assert set(fc.loc[fc["level"] == "series", "series_id"]) == set(STORES)
    static = pd.read_csv(files["static"], dtype={"series_id": str})
    regions = set(fc.loc[fc["level"] == "region", "series_id"])
    assert regions == set(static["region"]) | {"(none)"}
    summary = fc.attrs["summary"]
    assert (summary["series"], summary["aggregates"]) == (len(STORES), len(regions) + 1)
    assert (fc.groupby("level")["ds"].nunique() == 14).all()
    by_day = fc.pivot_table(index="ds", columns="level", values="yhat", aggfunc="sum")
    np.testing.assert_allclose(by_day["series"], by_day["total"], rtol=1e-9)
    np.testing.assert_allclose(by_day["region"], by_day["total"], rtol=1e-9)
    assert (fc["yhat_lo"] <= fc["yhat"]).all() and (fc["yhat"] <= fc["yhat_hi"]).all()


def test_forecast_total_only_and_with_explanations(trained, files, tmp_path, capsys):
    fc = _forecast(files, tmp_path, capsys, "--levels", "total", "--explain")
    assert set(fc["level"]) == {"series", "total"}
    effects = [c for c in fc.columns if c.startswith("effect_")]
    assert "effect_promo" in effects
    assert fc.loc[fc["level"] == "total", effects].notna().all().all()


def test_a_level_the_model_was_not_trained_with_is_a_clear_error(trained, files, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(
            ["forecast", "--model", "models:/hier-forecast@champion", "--series", str(files["series"])]
            + ["--out", str(tmp_path / "x.csv"), "--levels", "store_type"]
        )
    assert exc.value.code == 2
    assert "Level(s) ['store_type'] were not trained" in capsys.readouterr().err


def test_a_missing_level_column_fails_before_training(files, capsys):
    with pytest.raises(SystemExit) as exc:
        main(_train_args(files, "--levels", "country,total"))
    assert exc.value.code == 2
    assert "'country' is not a column of the static table" in capsys.readouterr().err
