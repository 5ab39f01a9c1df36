"""training/forecast/job.py through the CLI: train -> MLflow run + registry -> forecast, and what-if."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from features.io import load_table
from orderpulse.cli import main
from training.forecast.baselines import SeasonalNaive
from training.forecast.job import run_backtest
from training.forecast.whatif import overlay, what_if
from training.pyfunc import load_snapshot_model

SAMPLE = Path(__file__).resolve().parents[3] / "data" / "sample" / "rossmann"
STORES = ["88", "89", "126", "183", "512"]  # 89, 183, 512 have the 2014H2 gap
PARAMS = '{"n_estimators": 30, "num_leaves": 15, "min_child_samples": 5}'


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("forecast_job")
    out = {}
    for name in ("series", "covariates", "static"):
        df = pd.read_csv(SAMPLE / f"{name}.csv", dtype={"series_id": str})
        df = df.loc[df["series_id"].isin(STORES)]
        out[name] = root / f"{name}.csv"
        df.to_csv(out[name], index=False)
    out["weather"] = SAMPLE / "weather.csv"
    out["root"] = root
    return out


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("mlruns_forecast_job")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")
        mp.setenv("ORDERPULSE_MLRUNS_DIR", str(root))
        yield str(root)


@pytest.fixture(autouse=True)
def isolated_mlflow(store, monkeypatch):
    """Overrides the conftest fixture: one store per module (store creation costs seconds)."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{Path(store) / 'mlflow.db'}")
    return store


def _cli(capsys, argv: list[str]) -> dict:
    try:
        main(argv)
    except SystemExit as exc:  # typer exits 0 after a command
        assert exc.code in (0, None), capsys.readouterr().err
    out = capsys.readouterr().out.strip().splitlines()
    return json.loads(out[-1])


def _train_args(files, *extra: str) -> list[str]:
    return [
        "train",
        "forecast",
        "--series",
        str(files["series"]),
        "--covariates",
        str(files["covariates"]),
        "--weather",
        str(files["weather"]),
        "--static",
        str(files["static"]),
        "--freq",
        "D",
        "--horizon",
        "14",
        "--n-windows",
        "1",
        "--lgbm-params",
        PARAMS,
        *extra,
    ]


def _default_windows(args: list[str]) -> list[str]:
    """``args`` without ``--n-windows``: the job's default windows."""
    i = args.index("--n-windows")
    return args[:i] + args[i + 2 :]


def _forecast_args(files, out: Path, *extra: str) -> list[str]:
    return [
        "forecast",
        "--model",
        "models:/orderpulse-forecast@champion",
        "--series",
        str(files["series"]),
        "--origin",
        "2015-05-31",
        "--horizon",
        "14",
        "--out",
        str(out),
        *extra,
    ]


@pytest.fixture(scope="module")
def first(store, files):
    capsys = pytest.CaptureFixture  # not available at module scope: call main directly
    del capsys
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf), contextlib.suppress(SystemExit):
        main(_train_args(files, "--until", "2015-05-31"))
    return json.loads(buf.getvalue().strip().splitlines()[-1])


def test_train_prints_one_json_line_and_registers_a_champion(first):
    assert set(first) >= {"run_id", "model_uri", "metrics", "version", "alias"}
    assert first["version"] == 1 and first["alias"] == "champion"
    m = first["metrics"]
    assert 0 < m["backtest_wape"] < m["seasonal_naive_wape"]
    assert m["wape_vs_seasonal_naive"] == pytest.approx(
        m["backtest_wape"] / m["seasonal_naive_wape"], rel=1e-4
    )


def test_run_logs_params_fingerprint_metrics_plots_and_model(first, files):
    client = MlflowClient()
    series = pd.read_csv(files["series"], parse_dates=["ds"])
    run = client.get_run(first["run_id"])
    assert run.data.params["horizon"] == "14"
    assert run.data.params["data.series.end"].startswith("2015-05-31")
    assert int(run.data.params["data.series.rows"]) == int((series["ds"] <= "2015-05-31").sum())
    assert len(run.data.params["data.series.sha256"]) == 64
    assert "backtest_coverage_80" in run.data.metrics
    window_metrics = pd.read_csv(client.download_artifacts(first["run_id"], "backtest/window_metrics.csv"))
    width = client.get_metric_history(first["run_id"], "window_width_80")
    assert [h.step for h in width] == window_metrics["window"].tolist()
    assert [h.value for h in width] == pytest.approx(window_metrics["width_80"].tolist())
    assert width[0].value > 0
    assert run.data.metrics["backtest_width_80"] > 0
    artifacts = {a.path for a in client.list_artifacts(first["run_id"], "plots")}
    assert {
        "plots/forecast_vs_actual.png",
        "plots/residuals.png",
        "plots/feature_importance.png",
        "plots/shap_families.png",
    } <= artifacts
    wrapper = load_snapshot_model(first["model_uri"])
    assert wrapper.model.horizon == 14
    assert set(wrapper.tables) == {"series", "covariates", "weather", "static", "profile"}
    profiled = set(wrapper.tables["profile"]["feature"])  # training.profile: y and the covariate columns
    assert "y" in profiled and "promo" in profiled and "series_id" not in profiled


def test_until_keeps_later_actuals_out_of_training(first):
    wrapper = load_snapshot_model(first["model_uri"])
    assert wrapper.tables["series"]["ds"].max() == pd.Timestamp("2015-05-31")


def test_forecast_command_writes_every_series_and_matches_the_model(first, files, tmp_path, capsys):
    out = tmp_path / "fc.csv"
    summary = _cli(capsys, _forecast_args(files, out))
    assert summary["rows"] == 5 * 14 and summary["series"] == 5
    fc = pd.read_csv(out, dtype={"series_id": str}, parse_dates=["ds"])
    assert list(fc.columns) == ["series_id", "ds", "yhat", "yhat_lo", "yhat_hi"]
    assert fc["ds"].min() == pd.Timestamp("2015-06-01") and fc["ds"].max() == pd.Timestamp("2015-06-14")
    assert (fc["yhat_lo"] <= fc["yhat"]).all() and (fc["yhat"] <= fc["yhat_hi"]).all()
    series, _ = load_table(files["series"], "series")
    sundays = fc.merge(series[["series_id", "ds", "open"]].astype({"series_id": str}), on=["series_id", "ds"])
    assert (sundays.loc[sundays["open"] == 0, "yhat"] == 0).all()
    model = load_snapshot_model(first["model_uri"]).model
    direct = model.predict(14, levels=(80,), series=series, origin="2015-05-31")
    np.testing.assert_allclose(fc["yhat"].to_numpy(), direct["yhat"].to_numpy(), rtol=1e-9)


def test_a_worse_second_model_becomes_challenger_and_promote_moves_the_alias(first, files, capsys):
    worse = _cli(
        capsys,
        _train_args(files, "--until", "2015-05-31").copy()[:-2]
        + ["--lgbm-params", '{"n_estimators": 2, "num_leaves": 2}'],
    )
    assert worse["version"] == 2 and worse["alias"] == "challenger"
    assert worse["metrics"]["backtest_wape"] > first["metrics"]["backtest_wape"]
    moved = _cli(capsys, ["promote", "orderpulse-forecast", "challenger"])
    assert moved["version"] == 2
    assert str(MlflowClient().get_model_version_by_alias("orderpulse-forecast", "champion").version) == "2"
    _cli(capsys, ["promote", "orderpulse-forecast", "1"])
    assert str(MlflowClient().get_model_version_by_alias("orderpulse-forecast", "champion").version) == "1"


def test_bad_lgbm_params_exit_2(files, capsys):
    with pytest.raises(SystemExit) as exc:
        main(_train_args(files)[:-2] + ["--lgbm-params", "[1, 2]"])
    assert exc.value.code == 2
    assert "--lgbm-params must be a JSON object" in capsys.readouterr().err


def test_overlay_replaces_given_columns_and_adds_new_keys():
    base = pd.DataFrame(
        {
            "series_id": pd.array(["a", "a", "b"], dtype="string"),
            "ds": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-01"]),
            "promo": [0.0, 0.0, 1.0],
            "holiday": [1.0, 0.0, 0.0],
        }
    )
    changes = pd.DataFrame(
        {"series_id": ["a", "a"], "ds": pd.to_datetime(["2024-01-02", "2024-01-03"]), "promo": [1.0, 1.0]}
    )
    out = overlay(base, changes, ("series_id", "ds")).sort_values(["series_id", "ds"]).reset_index(drop=True)
    assert out["promo"].tolist() == [0.0, 1.0, 1.0, 1.0]
    assert out["holiday"].tolist()[:2] == [1.0, 0.0]  # not in the scenario: kept
    assert len(out) == 4


def test_overlay_without_series_id_applies_to_every_series():
    base = pd.DataFrame(
        {
            "series_id": pd.array(["a", "b"], dtype="string"),
            "ds": pd.to_datetime(["2024-01-01", "2024-01-01"]),
            "promo": [0.0, 0.0],
        }
    )
    out = overlay(
        base, pd.DataFrame({"ds": pd.to_datetime(["2024-01-01"]), "promo": [1.0]}), ("series_id", "ds")
    )
    assert out["promo"].tolist() == [1.0, 1.0]


def test_overlay_refuses_unknown_columns():
    base = pd.DataFrame({"ds": pd.to_datetime(["2024-01-01"]), "promo": [0.0]})
    with pytest.raises(ValueError, match=r"Scenario columns \['discount'\] are not in the stored table"):
        overlay(
            base, pd.DataFrame({"ds": pd.to_datetime(["2024-01-01"]), "discount": [0.1]}), ("series_id", "ds")
        )


def test_what_if_promo_raises_the_forecast_of_that_week_only(first):
    model = load_snapshot_model(first["model_uri"]).model
    series = model.history_
    days = pd.date_range("2015-06-08", "2015-06-12")
    change = pd.DataFrame({"series_id": "88", "ds": days, "promo": 1.0})
    base_cov = model.tables_["covariates"]
    off = base_cov.loc[(base_cov["series_id"] == "88") & base_cov["ds"].isin(days)]
    assert (off["promo"] == 0).all(), "the sample has no promo for store 88 that week"
    out = what_if(model, series, covariate_changes=change, horizon=14)
    changed = out.loc[(out["series_id"] == "88") & out["ds"].isin(days)]
    assert (changed["delta"] > 0).all()
    assert (changed["effect_promo"] > 0).all()
    others = out.loc[out["series_id"] != "88"]
    assert (others["delta"].abs() < 1e-9).all()


def test_the_printed_logged_model_uri_resolves_and_forecasts(first, files, tmp_path, capsys):
    from training.registry import resolve

    assert first["model_uri"].startswith("models:/m-")
    resolved = resolve(first["model_uri"])
    assert resolved.run_id == first["run_id"] and resolved.version is None
    summary = _cli(
        capsys,
        [
            "forecast",
            "--model",
            first["model_uri"],
            "--series",
            str(files["series"]),
            "--origin",
            "2015-05-31",
            "--horizon",
            "7",
            "--out",
            str(tmp_path / "f.csv"),
        ],
    )
    assert summary["rows"] == 5 * 7


# ------------------------------------------------------------------------------------------ champion gate
def test_a_model_that_loses_to_seasonal_naive_is_registered_but_never_champion(files, capsys):
    weak = _cli(
        capsys,
        _train_args(files, "--until", "2015-05-31")
        + ["--name", "weak", "--lgbm-params", '{"n_estimators": 1, "num_leaves": 2, "learning_rate": 0.01}'],
    )
    m = weak["metrics"]
    assert m["backtest_wape"] > m["seasonal_naive_wape"]
    assert (weak["version"], weak["alias"], weak["gate_passed"]) == (1, "challenger", False)
    assert weak["decision"].startswith("never champion: metric.backtest_wape")
    assert "does not beat seasonal naive's" in weak["decision"]
    # the gate names the windows and data both were evaluated on, as the champion comparison does
    key = MlflowClient().get_model_version("weak-forecast", "1").tags["eval_key"]
    assert weak["decision"].endswith(f"{m['seasonal_naive_wape']:.6g}, both evaluated on {key}")
    assert ":origins=" in key and ":data=" in key
    aliases = MlflowClient().get_registered_model("weak-forecast").aliases
    assert aliases == {"challenger": 1}
    tags = MlflowClient().get_model_version("weak-forecast", "1").tags
    assert "does not beat seasonal naive" in tags["registry.gate"]


def test_a_champion_trained_on_other_data_is_re_backtested_before_the_comparison(
    files, capsys, tmp_path, monkeypatch
):
    from training.forecast.forecaster import LGBMForecaster

    series = pd.read_csv(files["series"], dtype={"series_id": str})
    fewer = tmp_path / "series_3.csv"
    series.loc[series["series_id"].isin(STORES[:3])].to_csv(fewer, index=False)
    args = _train_args(files, "--until", "2015-05-31", "--name", "drift")
    old = _cli(capsys, [fewer.as_posix() if a == str(files["series"]) else a for a in args])
    seeds, fit = [], LGBMForecaster.fit

    def recording_fit(self, *a, **k):
        seeds.append(self.n_seeds)
        return fit(self, *a, **k)

    monkeypatch.setattr(LGBMForecaster, "fit", recording_fit)
    new = _cli(capsys, args)
    # the backtest (1 window) and the champion's re-backtest fit one seed per bucket, the final model 3
    assert seeds == [1, 3, 1]
    assert load_snapshot_model(new["model_uri"]).model.n_seeds == 3
    assert (old["alias"], old["gate_passed"]) == ("champion", True)
    assert (new["version"], new["compared_with"], new["reevaluated"]) == (2, 1, True)
    assert "re-evaluated on the same windows of the same data" in new["decision"]
    client = MlflowClient()
    v1, v2 = (client.get_model_version("drift-forecast", v).tags for v in ("1", "2"))
    assert (
        v1["eval_key"] != v2["eval_key"]
    )  # same windows, other data: the keys differ by the data fingerprint
    assert v1["eval_key"].rsplit(":data=", 1)[0] == v2["eval_key"].rsplit(":data=", 1)[0]
    assert float(v1["metric.backtest_wape"]) == pytest.approx(old["metrics"]["backtest_wape"], abs=1e-6)
    assert v1["registry.reevaluation"].endswith(f"on {v2['eval_key']} (for v2)")
    # the printed decision names the windows and data compared on, and the champion's own evaluation
    assert new["decision"].endswith(
        f"(re-evaluated on the same windows of the same data: {v2['eval_key']}; "
        f"the champion's own evaluation was on {v1['eval_key']})"
    )
    # the same recipe re-backtested on the same windows of the same data gives the new version's WAPE
    champion_wape = float(v1["registry.reevaluation"].split("=", 1)[1].split(" on ", 1)[0])
    assert champion_wape == pytest.approx(
        new["metrics"]["backtest_wape"], abs=1e-6
    )  # JSON rounds to 6 places
    assert new["alias"] == "challenger"  # an equal WAPE does not take champion


# ------------------------------------------------------------------------------------------ MLflow-native pyfunc
def _cli_forecast(capsys, model_uri: str, series: Path, origin: str, out: Path) -> pd.DataFrame:
    _cli(
        capsys,
        ["forecast", "--model", model_uri, "--series", str(series), "--origin", origin]
        + ["--horizon", "14", "--out", str(out)],
    )
    return pd.read_csv(out, dtype={"series_id": str}, parse_dates=["ds"])


def test_mlflow_pyfunc_forecasts_the_requested_rows_with_the_cli_numbers(first, files, tmp_path, capsys):
    import mlflow

    cli = _cli_forecast(capsys, first["model_uri"], files["series"], "2015-05-31", tmp_path / "a.csv")
    late = _cli_forecast(capsys, first["model_uri"], files["series"], "2015-05-24", tmp_path / "b.csv")
    series = pd.read_csv(files["series"], dtype={"series_id": str}, parse_dates=["ds"])
    rows = series.loc[
        (series["ds"] > "2015-05-31") & (series["ds"] <= "2015-06-14"), ["series_id", "ds", "open"]
    ]
    # store 88 asks for dates from 2015-05-25: its origin is 2015-05-24, the others' 2015-05-31
    early = series.loc[
        (series["series_id"] == "88") & series["ds"].between("2015-05-25", "2015-05-31"),
        ["series_id", "ds", "open"],
    ]
    rows = pd.concat([rows.loc[~((rows["series_id"] == "88") & (rows["ds"] > "2015-06-07"))], early])
    rows = rows.sample(frac=1, random_state=0).reset_index(drop=True)  # any order
    rows["series_id"] = rows["series_id"].astype("int64")  # int ids are accepted
    rows["open"] = rows["open"].astype("int64")

    got = mlflow.pyfunc.load_model(first["model_uri"]).predict(rows)

    assert list(got["ds"]) == list(rows["ds"]) and list(got["series_id"]) == list(
        rows["series_id"].astype(str)
    )
    expected = pd.concat(
        [cli.loc[cli["series_id"] != "88"], late.loc[late["series_id"] == "88"]], ignore_index=True
    )
    merged = got.merge(expected, on=["series_id", "ds"], suffixes=("", "_cli"))
    assert len(merged) == len(rows) == 4 * 14 + 14
    np.testing.assert_allclose(merged["yhat"], merged["yhat_cli"], rtol=1e-9)
    np.testing.assert_allclose(merged["yhat_lo_80"], merged["yhat_lo"], rtol=1e-9)
    np.testing.assert_allclose(merged["yhat_hi_80"], merged["yhat_hi"], rtol=1e-9)
    assert sorted(merged.loc[merged["series_id"] == "88", "step"]) == list(range(1, 15))


def test_mlflow_pyfunc_request_covariates_override_the_stored_ones(first, files):
    import mlflow

    model = mlflow.pyfunc.load_model(first["model_uri"])
    stored = model.unwrap_python_model().tables["covariates"]
    days = pd.date_range("2015-06-01", "2015-06-14")
    rows = pd.DataFrame({"series_id": "88", "ds": days, "open": (days.dayofweek < 6).astype(int)})
    base = model.predict(rows)
    plan = stored.loc[(stored["series_id"].astype(str) == "88") & stored["ds"].isin(days)].set_index("ds")[
        "promo"
    ]
    flipped = rows.assign(promo=1 - plan.reindex(days).to_numpy())
    changed = model.predict(flipped)
    open_days = (rows["open"] == 1).to_numpy()
    assert (changed["yhat"].to_numpy()[open_days] != base["yhat"].to_numpy()[open_days]).all()
    same = model.predict(rows.assign(promo=plan.reindex(days).to_numpy()))
    np.testing.assert_allclose(same["yhat"], base["yhat"], rtol=1e-12)


def test_mlflow_pyfunc_refuses_unknown_series_columns_and_rows_past_the_horizon(first):
    import mlflow

    model = mlflow.pyfunc.load_model(first["model_uri"])
    with pytest.raises(ValueError, match=r"series \['999'\] \(1 in all\) are not in the model's snapshot"):
        model.predict(pd.DataFrame({"series_id": ["999"], "ds": ["2015-06-01"]}))
    with pytest.raises(
        ValueError, match=r"columns \['discount'\] are neither series_id, ds, open nor covariates"
    ):
        # MLflow's schema enforcement drops (with a warning) columns the signature does not list: call the
        # wrapper itself to see the model's own check
        model.unwrap_python_model().predict(
            None, pd.DataFrame({"series_id": ["88"], "ds": ["2015-06-01"], "discount": [0.1]})
        )
    days = pd.date_range("2015-06-01", periods=15)
    with pytest.raises(
        ValueError, match=r"1 requested rows could not be forecast.*15 steps after its origin"
    ):
        model.predict(pd.DataFrame({"series_id": "88", "ds": days}))
    with pytest.raises(ValueError, match="starts after the snapshot's history, which ends 2015-05-31"):
        model.predict(pd.DataFrame({"series_id": ["88"], "ds": ["2015-06-20"]}))


def test_mlflow_pyfunc_forecasts_past_the_stored_plan_with_the_plan_in_the_request(first):
    import mlflow

    model = mlflow.pyfunc.load_model(first["model_uri"])
    wrapper = model.unwrap_python_model()
    stored = wrapper.tables["covariates"]
    cut = stored.loc[stored["ds"] <= "2015-05-31"]  # a plan that stops where the snapshot stops
    days = pd.date_range("2015-06-01", periods=3)
    plan = stored.loc[(stored["series_id"].astype(str) == "88") & stored["ds"].isin(days)]
    request = plan.assign(series_id="88", open=1)
    wrapper.tables["covariates"] = cut
    try:
        got = model.predict(request)  # only the 3 requested steps need the plan, not the 14-step horizon
    finally:
        wrapper.tables["covariates"] = stored
    snapshot = wrapper.tables["series"]
    direct = wrapper.model.predict(
        3,
        series=snapshot.loc[snapshot["series_id"].astype(str) == "88"],
        covariates=pd.concat([cut, plan], ignore_index=True),
        origin="2015-05-31",
    )
    assert list(got["ds"]) == list(days)
    np.testing.assert_allclose(got["yhat"], direct["yhat"], rtol=1e-9)


def test_auto_trains_the_ensemble_when_the_lightgbm_is_not_clearly_ahead_of_seasonal_naive(files, capsys):
    weak = _cli(
        capsys,
        _default_windows(_train_args(files, "--until", "2015-05-31"))
        + [
            "--name",
            "autoweak",
            "--lgbm-params",
            '{"n_estimators": 1, "num_leaves": 2, "learning_rate": 0.01}',
        ],
    )
    run = MlflowClient().get_run(weak["run_id"])
    assert run.data.params["model.requested"] == "auto"
    assert run.data.params["model"] == "ensemble"
    assert run.data.metrics["auto.lgbm_wape_vs_seasonal_naive"] > 0.8
    weights = [v for k, v in run.data.metrics.items() if k.startswith("ensemble.weight.")]
    assert sum(weights) == pytest.approx(1.0)
    # the gate reads the ensemble's backtest, not the LightGBM's
    assert weak["metrics"]["backtest_wape"] == pytest.approx(run.data.metrics["backtest_wape"], abs=1e-6)
    assert weak["metrics"]["wape_vs_seasonal_naive"] == pytest.approx(
        run.data.metrics["backtest_wape"] / run.data.metrics["seasonal_naive_wape"], abs=1e-6
    )
    assert weak["metrics"]["wape_vs_seasonal_naive"] < run.data.metrics["auto.lgbm_wape_vs_seasonal_naive"]
    # without --n-windows the ensemble is weighted on 4 windows (the LightGBM was backtested on 2), and the
    # seasonal naive it is gated against is re-backtested on those same 4 windows
    assert (run.data.params["n_windows.requested"], run.data.params["n_windows"]) == ("None", "4")
    assert run.data.metrics["backtest_n_windows"] == 4
    series, _ = load_table(files["series"], "series")
    naive = run_backtest(
        lambda: SeasonalNaive("D"),
        series.loc[series["ds"] <= "2015-05-31"],
        {},
        n_windows=4,
        step=7,
        horizon=14,
    )
    assert run.data.metrics["seasonal_naive_wape"] == pytest.approx(naive.overall["wape"], rel=1e-6)


def test_auto_keeps_the_lightgbm_when_it_is_clearly_ahead(files, capsys, monkeypatch):
    from training.forecast import job

    monkeypatch.setattr(job, "AUTO_ENSEMBLE_ABOVE", 50.0)
    result = _cli(
        capsys, _default_windows(_train_args(files, "--until", "2015-05-31")) + ["--name", "autokeep"]
    )
    run = MlflowClient().get_run(result["run_id"])
    assert (run.data.params["model.requested"], run.data.params["model"]) == ("auto", "lgbm")
    assert run.data.params["n_windows"] == "5"  # the LightGBM's default
    assert run.data.metrics["backtest_n_windows"] == 5
    assert "auto.lgbm_wape_vs_seasonal_naive" not in run.data.metrics
    # the intervals are calibrated on the newer half of the windows (2, 3, 4), not on all five
    model = load_snapshot_model(result["model_uri"]).model
    bt = pd.read_parquet(MlflowClient().download_artifacts(result["run_id"], "backtest/predictions.parquet"))
    assert sorted(bt["window"].unique()) == [0, 1, 2, 3, 4]
    newer = model._quantiles_from(bt.loc[bt["window"] >= 2])
    everything = model._quantiles_from(bt)
    assert model.residual_quantiles_ == newer
    assert model.residual_quantiles_ != everything


def test_default_windows_shrink_to_what_a_short_history_holds(files, capsys, tmp_path):
    """80 days, horizon 14, step 7: each window's model needs 3 horizons (42 days) up to its origin, so only
    (80 - 14 - 42) // 7 + 1 = 4 of the LightGBM's 5 default windows fit; stderr says so."""
    series = pd.read_csv(files["series"], dtype={"series_id": str})
    short = series.loc[pd.to_datetime(series["ds"]).between("2015-02-20", "2015-05-10")]
    assert short["ds"].nunique() == 80
    path = tmp_path / "short.csv"
    short.to_csv(path, index=False)
    args = _default_windows(_train_args(files)) + ["--name", "shortwin", "--model", "lgbm"]
    args[args.index(str(files["series"]))] = str(path)
    with pytest.raises(SystemExit) as exc:
        main(args)
    out, err = capsys.readouterr()
    assert exc.value.code in (0, None), err
    assert "backtest: 4 windows, not 5: the history is too short" in err
    run = MlflowClient().get_run(json.loads(out.strip().splitlines()[-1])["run_id"])
    assert run.data.params["n_windows"] == "4"
    assert run.data.metrics["backtest_n_windows"] == 4
    # the ensemble's windows need 1 horizon of history: 50 days hold 1 LightGBM window but 4 of the ensemble's
    tiny = short.loc[pd.to_datetime(short["ds"]) >= "2015-03-22"]
    assert tiny["ds"].nunique() == 50
    tiny.to_csv(path, index=False)
    args[args.index("lgbm")] = "ensemble"
    args[args.index("shortwin")] = "shortens"
    with pytest.raises(SystemExit) as exc:
        main(args)
    out, err = capsys.readouterr()
    assert exc.value.code in (0, None), err
    run = MlflowClient().get_run(json.loads(out.strip().splitlines()[-1])["run_id"])
    assert (run.data.params["model"], run.data.params["n_windows"]) == ("ensemble", "4")


def test_an_unknown_model_kind_exits_2_with_the_choices(files, capsys):
    with pytest.raises(SystemExit) as exc:
        main(_train_args(files) + ["--name", "badkind", "--model", "prophet"])
    assert exc.value.code == 2
    assert "'auto', 'lgbm' or 'ensemble'" in capsys.readouterr().err


def test_the_shap_plot_of_a_run_explains_a_random_subset_of_many_series_and_says_so(monkeypatch):
    import training.forecast.run_logging as run_logging
    from training.forecast.backtest import backtest as run_bt
    from training.forecast.forecaster import LGBMForecaster

    rng = np.random.default_rng(0)
    ds = pd.date_range("2024-01-01", periods=120, freq="D")
    series = pd.concat(
        pd.DataFrame({"series_id": f"s{i}", "ds": ds, "y": rng.poisson(20 + 5 * i, len(ds)).astype(float)})
        for i in range(5)
    ).reset_index(drop=True)
    small = {"n_estimators": 10, "num_leaves": 7, "min_child_samples": 5}

    def make():
        return LGBMForecaster(freq="D", horizon=7, params=small, n_seeds=1, calibrate=False, levels=())

    bt = run_bt(make, series, n_windows=1, step=7, horizon=7, refit=False, levels=())
    titles, explained_ids = [], []
    monkeypatch.setattr(run_logging, "SHAP_PLOT_SERIES", 2)
    monkeypatch.setattr(run_logging, "log_frame_as_artifact", lambda *a, **k: None)
    monkeypatch.setattr(run_logging, "log_figure", lambda fig, name: titles.append(name))

    def family_plot(explained, title):
        explained_ids.extend(explained["series_id"].unique())
        titles.append(title)

    monkeypatch.setattr(run_logging.plots, "family_contributions", family_plot)
    run_logging.log_forecast_artifacts(make().fit(series), bt, series)
    assert len(set(explained_ids)) == 2
    assert any("2 of 5 series at random" in t for t in titles)


def test_forecast_reports_the_weather_rows_of_a_series_without_region(first, files, tmp_path, capsys):
    static = pd.read_csv(files["static"], dtype={"series_id": str})
    static.loc[static["series_id"] == "88", "region"] = None
    path = tmp_path / "static.csv"
    static.to_csv(path, index=False)
    try:
        main(_forecast_args(files, tmp_path / "fc.csv", "--static", str(path)))
    except SystemExit as exc:
        assert exc.code in (0, None)
    captured = capsys.readouterr()
    summary = json.loads(captured.out.strip().splitlines()[-1])
    assert summary["frame"]["weather_rows_without_region"] == 14  # store 88's 14 forecast steps
    frame_lines = [line for line in captured.err.splitlines() if line.strip().startswith("frame ")]
    assert len(frame_lines) == 1 and "weather_rows_without_region=14" in frame_lines[0]


def test_a_plan_only_covariates_file_keeps_the_snapshot_history_and_counts_it(first, files, tmp_path, capsys):
    cov = pd.read_csv(files["covariates"], dtype={"series_id": str}, parse_dates=["ds"])
    plan = tmp_path / "plan.csv"
    cov.loc[cov["ds"] > "2015-05-31"].to_csv(plan, index=False)
    stored = load_snapshot_model(first["model_uri"]).table("covariates")
    before_plan = int((stored["ds"] < cov.loc[cov["ds"] > "2015-05-31", "ds"].min()).sum())
    with_plan = _cli(capsys, _forecast_args(files, tmp_path / "plan_fc.csv", "--covariates", str(plan)))
    assert with_plan["frame"]["covariate_rows_from_snapshot"] == before_plan > 0
    snapshot_only = _cli(capsys, _forecast_args(files, tmp_path / "snap_fc.csv"))
    assert "covariate_rows_from_snapshot" not in snapshot_only["frame"]
    a = pd.read_csv(tmp_path / "plan_fc.csv")
    b = pd.read_csv(tmp_path / "snap_fc.csv")
    np.testing.assert_allclose(a["yhat"].to_numpy(), b["yhat"].to_numpy(), rtol=1e-9)
