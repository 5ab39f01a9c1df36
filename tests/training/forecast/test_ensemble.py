"""training/forecast/ensemble.py and statistical.py: weights, dropped members, per-series intervals, leakage,
explanations, and the ensemble through `orderpulse train forecast --model ensemble` and the MLflow pyfunc."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from training.forecast import statistical
from training.forecast.ensemble import LEVEL_TREND, EnsembleForecaster, greedy_weights
from training.forecast.statistical import NaiveMember, StatsForecastMember

SAMPLE = Path(__file__).resolve().parents[3] / "data" / "sample" / "rossmann"
STORES = ["88", "89", "126", "183", "512"]
SMALL = {"n_estimators": 40, "num_leaves": 15, "min_child_samples": 5, "learning_rate": 0.2}


def _promo_tables(n_series: int = 4, days: int = 240) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(series, covariates): store sales with a level per series, +60% in promo weeks (one in three),
    Sundays closed (y = 0, open = 0)."""
    rng = np.random.default_rng(0)
    ds = pd.date_range("2023-01-02", periods=days, freq="D")
    promo = ((np.arange(days) // 7) % 3 == 0).astype(int)
    open_ = (ds.dayofweek.to_numpy() != 6).astype(int)
    series, cov = [], []
    for i in range(n_series):
        y = 100.0 * (i + 1) * (1 + 0.6 * promo) * rng.lognormal(0, 0.05, days) * open_
        series.append(pd.DataFrame({"series_id": f"s{i}", "ds": ds, "y": y, "open": open_}))
        cov.append(pd.DataFrame({"series_id": f"s{i}", "ds": ds, "promo": promo}))
    as_str = {"series_id": "string"}
    return pd.concat(series, ignore_index=True).astype(as_str), pd.concat(cov, ignore_index=True).astype(
        as_str
    )


def _counts(n_series: int, days: int, seed: int, lam_of: callable) -> pd.DataFrame:
    """Daily Poisson counts with a weekly pattern; ``lam_of(i)`` is series i's mean level."""
    rng = np.random.default_rng(seed)
    ds = pd.date_range("2024-01-01", periods=days, freq="D")
    week = 1 + 0.3 * np.sin(2 * np.pi * ds.dayofweek.to_numpy() / 7)
    rows = [
        pd.DataFrame(
            {"series_id": f"c{i}", "ds": ds, "y": rng.poisson(lam_of(i) * week).astype(float), "open": 1}
        )
        for i in range(n_series)
    ]
    return pd.concat(rows, ignore_index=True).astype({"series_id": "string"})


@pytest.fixture(scope="module")
def fitted():
    s, cov = _promo_tables()
    cut = s["ds"].max() - pd.Timedelta(days=14)
    model = EnsembleForecaster(
        horizon=14, params=SMALL, n_jobs=1, members=("lgbm", "theta", "seasonal_naive")
    )
    model.fit(s.loc[s["ds"] <= cut], covariates=cov)
    return model, s, cut


# ------------------------------------------------------------------------------------------ weights
def test_greedy_selection_weights_sum_to_one_and_pick_the_better_member():
    y = np.full(50, 10.0)
    w = greedy_weights(np.c_[np.full(50, 20.0), y + 0.1, np.zeros(50)], y, size=10)
    assert w.sum() == pytest.approx(1.0) and w.tolist() == [0.0, 1.0, 0.0]


def test_greedy_selection_averages_members_whose_errors_cancel():
    y = np.arange(1.0, 41.0)
    w = greedy_weights(np.c_[y + 4, y - 4], y, size=10)
    assert w.tolist() == [0.5, 0.5]


def test_fitted_weights_sum_to_one_over_the_members_and_are_logged_in_the_summary(fitted):
    model, _, _ = fitted
    assert set(model.weights_) == {"lgbm", "theta", "seasonal_naive"}
    assert sum(model.weights_.values()) == pytest.approx(1.0)
    # the tree reads the promo; per-series models cannot, so it wins most of the weight
    assert model.weights_["lgbm"] >= 0.5
    summary = model.summary()
    assert summary["weights"] == model.weights_ and len(summary["windows"]) == 4  # the default windows
    assert set(summary["member_backtest"]) == set(model.weights_)
    assert summary["member_backtest"]["lgbm"]["wape"] < summary["member_backtest"]["seasonal_naive"]["wape"]


def test_fewer_than_two_windows_or_unknown_members_are_refused():
    s = _counts(2, 120, 0, lambda i: 10.0)
    with pytest.raises(ValueError, match="members must be"):
        EnsembleForecaster(horizon=7, members=("prophet",)).fit(s)
    with pytest.raises(ValueError, match="at least 2 backtest windows"):
        EnsembleForecaster(horizon=7, n_windows=1, members=("seasonal_naive",)).fit(s)


# ------------------------------------------------------------------------------------------ dropped members
def test_a_failing_member_is_dropped_with_a_warning_and_counted(monkeypatch):
    def boom(self, history, origin, horizon):
        if self.model == "ets":
            raise RuntimeError("optimiser diverged")
        return original(self, history, origin, horizon)

    original = StatsForecastMember.forecast
    monkeypatch.setattr(StatsForecastMember, "forecast", boom)
    s = _counts(3, 120, 0, lambda i: 20.0 * (i + 1))
    with pytest.warns(RuntimeWarning, match="'ets' failed and is dropped: RuntimeError: optimiser diverged"):
        model = EnsembleForecaster(horizon=7, members=("ets", "theta", "seasonal_naive"), n_jobs=1).fit(s)
    assert model.dropped_ == {"ets": "RuntimeError: optimiser diverged"}
    assert set(model.weights_) == {"theta", "seasonal_naive"}
    assert sum(model.weights_.values()) == pytest.approx(1.0)
    assert model.summary()["dropped"] == {"ets": "RuntimeError: optimiser diverged"}
    assert len(model.predict(7)) == 3 * 7


def test_the_only_surviving_member_is_used_alone(monkeypatch):
    def boom(self, history, origin, horizon):
        raise RuntimeError("no")

    monkeypatch.setattr(StatsForecastMember, "forecast", boom)
    s = _counts(2, 90, 1, lambda i: 30.0)
    with pytest.warns(RuntimeWarning):
        model = EnsembleForecaster(horizon=7, members=("theta", "seasonal_naive"), n_jobs=1).fit(s)
    assert model.weights_ == {"seasonal_naive": 1.0}
    alone = NaiveMember("D").forecast(s, s["ds"].max(), 7)
    got = model.predict(7)
    np.testing.assert_allclose(got["yhat"].to_numpy(), alone["yhat"].to_numpy())


def test_every_member_failing_is_an_error_naming_them(monkeypatch):
    monkeypatch.setattr(
        NaiveMember, "forecast", lambda self, h, o, n: (_ for _ in ()).throw(ValueError("bad"))
    )
    s = _counts(2, 90, 1, lambda i: 30.0)
    with pytest.warns(RuntimeWarning), pytest.raises(ValueError, match="every ensemble member failed"):
        EnsembleForecaster(horizon=7, members=("seasonal_naive",)).fit(s)


# ------------------------------------------------------------------------------------------ forecasts
def test_closed_periods_forecast_exactly_zero_with_zero_width(fitted):
    model, s, cut = fitted
    future = s.loc[s["ds"] > cut].drop(columns="y")
    pred = model.predict(14, future).merge(future, on=["series_id", "ds"])
    closed = pred.loc[pred["open"] == 0]
    assert len(closed) == 4 * 2  # two Sundays per series
    assert (closed[["yhat", "yhat_lo_80", "yhat_hi_80", "yhat_lo_95", "yhat_hi_95"]] == 0).all().all()
    assert (pred.loc[pred["open"] == 1, "yhat"] > 0).all()


def test_ensemble_is_the_weighted_average_of_its_members(fitted):
    model, s, cut = fitted
    hist = s.loc[s["ds"] <= cut]
    pred = model.predict(14, series=hist).set_index(["series_id", "ds"])
    parts = {
        "lgbm": model.lgbm_.predict(14, levels=(), series=hist),
        "theta": StatsForecastMember("theta", "D").forecast(hist, cut, 14),
        "seasonal_naive": NaiveMember("D").forecast(hist, cut, 14),
    }
    total = sum(model.weights_[n] * p.set_index(["series_id", "ds"])["yhat"] for n, p in parts.items())
    ok = pred["yhat"] > 0  # closed days are 0 whatever the members say
    np.testing.assert_allclose(pred.loc[ok, "yhat"], total.reindex(pred.index)[ok], rtol=1e-9)


def test_explanations_add_up_to_log1p_yhat_with_a_level_trend_share(fitted):
    model, s, cut = fitted
    pred = model.predict(14, s.loc[s["ds"] > cut].drop(columns="y"), explain=True)
    contrib = [c for c in pred.columns if c.startswith("contrib_")]
    assert f"contrib_{LEVEL_TREND}" in contrib and "contrib_promo" in contrib
    np.testing.assert_allclose(pred["base"] + pred[contrib].sum(axis=1), np.log1p(pred["yhat"]), atol=1e-9)
    # the tree's SHAP values are scaled by its weight
    tree = model.lgbm_.predict(14, s.loc[s["ds"] > cut].drop(columns="y"), levels=(), explain=True)
    w = model.weights_["lgbm"]
    np.testing.assert_allclose(pred["contrib_promo"], w * tree["contrib_promo"], atol=1e-12)
    assert model.explain_columns() == sorted({*model.lgbm_.explain_columns(), LEVEL_TREND})


# ------------------------------------------------------------------------------------------ intervals
def test_intervals_contain_yhat_and_scale_with_each_series_on_sparse_and_dense_series():
    # one busy series and many sparse ones (mean 0.2-0.6 orders a day), as in an order log by country
    s = _counts(12, 200, 3, lambda i: 400.0 if i == 0 else 0.2 + 0.04 * i)
    model = EnsembleForecaster(horizon=14, members=("theta", "seasonal_naive"), n_jobs=1).fit(s)
    pred = model.predict(14)
    for lv in (80, 95):
        assert (pred[f"yhat_lo_{lv}"] <= pred["yhat"]).all() and (pred["yhat"] <= pred[f"yhat_hi_{lv}"]).all()
    width = (pred["yhat_hi_80"] - pred["yhat_lo_80"]).groupby(pred["series_id"]).mean()
    assert width["c0"] > 20 * width.drop("c0").max()  # the busy series' interval is its own, not pooled
    assert (width.drop("c0") > 0).all()


def test_80_percent_interval_covers_about_80_percent_of_a_held_out_window():
    s = _counts(30, 180, 5, lambda i: 5.0 + 3.0 * i)
    cut = s["ds"].max() - pd.Timedelta(days=14)
    model = EnsembleForecaster(horizon=14, members=("theta", "seasonal_naive"), n_jobs=1)
    model.fit(s.loc[s["ds"] <= cut])
    held = s.loc[s["ds"] > cut]
    pred = model.predict(14, held.drop(columns="y")).merge(held, on=["series_id", "ds"])
    coverage = ((pred["y"] >= pred["yhat_lo_80"]) & (pred["y"] <= pred["yhat_hi_80"])).mean()
    assert 0.72 <= coverage <= 0.9, coverage


def test_a_series_without_recent_orders_is_scaled_by_its_history_not_by_zero():
    # c1 ordered about once a day until 70 days before the end, then never again: its last 8 weeks are all 0
    s = _counts(6, 200, 7, lambda i: 40.0 if i == 0 else 1.0)
    stale = (s["series_id"] == "c1") & (s["ds"] > s["ds"].max() - pd.Timedelta(days=70))
    s.loc[stale, "y"] = 0.0
    model = EnsembleForecaster(horizon=14, members=("seasonal_naive", "profile"), n_jobs=1).fit(s)
    scales = model._scales(s, s["ds"].max())
    assert scales["c1"] == pytest.approx(s.loc[s["series_id"] == "c1", "y"].mean())
    assert (scales > 0).all()
    assert model.calibration_report_["rows_zero_scale"] == 0


def test_intervals_are_quantiles_of_the_forecasts_volume_bin_and_old_models_keep_pooled_ones():
    s = _counts(12, 200, 3, lambda i: 400.0 if i == 0 else 0.2 + 0.04 * i)
    model = EnsembleForecaster(horizon=14, members=("theta", "seasonal_naive"), n_jobs=1).fit(s)
    edges, per_bin = model.residual_bins_
    assert len(per_bin) == edges.size + 1 >= 2
    assert model.summary()["residual_volume_bins"][-1]["log1p_volume_up_to"] is None
    binned = model.predict(14, levels=(80,))
    del model.residual_bins_  # an ensemble pickled before the volume bins
    pooled = model.predict(14, levels=(80,))
    assert (pooled["yhat"] == binned["yhat"]).all()
    assert (pooled["yhat_lo_80"] <= pooled["yhat"]).all() and (pooled["yhat"] <= pooled["yhat_hi_80"]).all()
    assert not np.allclose(pooled["yhat_hi_80"], binned["yhat_hi_80"])


# ------------------------------------------------------------------------------------------ leakage
def test_a_statistical_member_never_reads_y_after_its_origin():
    s = _counts(3, 120, 2, lambda i: 10.0 * (i + 1))
    origin = s["ds"].max() - pd.Timedelta(days=20)
    poisoned = s.assign(y=np.where(s["ds"] > origin, 1e6, s["y"]))
    for member in (StatsForecastMember("theta", "D"), StatsForecastMember("ets", "D"), NaiveMember("D")):
        a = member.forecast(s, origin, 7)
        b = member.forecast(poisoned, origin, 7)
        pd.testing.assert_frame_equal(a, b)
        assert a["ds"].min() == origin + pd.Timedelta(days=1)


def test_member_fits_during_fit_see_only_data_up_to_each_window_origin(monkeypatch):
    seen: list[tuple[pd.Timestamp, pd.Timestamp]] = []
    original = statistical.member_history

    def spy(history, origin):
        h = original(history, origin)
        seen.append((origin, h["ds"].max()))
        return h

    monkeypatch.setattr(statistical, "member_history", spy)
    s = _counts(2, 100, 4, lambda i: 12.0)
    model = EnsembleForecaster(
        horizon=7, step=7, n_windows=2, members=("theta", "seasonal_naive"), n_jobs=1
    ).fit(s)
    origins = [w.origin for w in model.backtest_.windows]
    assert origins == [s["ds"].max() - pd.Timedelta(days=14), s["ds"].max() - pd.Timedelta(days=7)]
    assert all(last <= origin for origin, last in seen) and {o for o, _ in seen} >= set(origins)


def test_predict_from_an_origin_ignores_later_actuals(fitted):
    model, s, cut = fitted
    origin = cut - pd.Timedelta(days=14)
    poisoned = s.assign(y=np.where(s["ds"] > origin, 1e6, s["y"]))
    a = model.predict(14, series=s, origin=origin)
    b = model.predict(14, series=poisoned, origin=origin)
    pd.testing.assert_frame_equal(a, b)


# ------------------------------------------------------------------------------------------ CLI + MLflow
@pytest.fixture(scope="module")
def trained_cli(tmp_path_factory: pytest.TempPathFactory):
    from orderpulse.cli import main

    root = tmp_path_factory.mktemp("ensemble_job")
    files = {}
    for name in ("series", "covariates", "static"):
        df = pd.read_csv(SAMPLE / f"{name}.csv", dtype={"series_id": str})
        files[name] = root / f"{name}.csv"
        df.loc[df["series_id"].isin(STORES)].to_csv(files[name], index=False)
    argv = ["train", "forecast", "--model", "ensemble", "--horizon", "14", "--until", "2015-05-31"]
    argv += ["--lgbm-params", '{"n_estimators": 30, "num_leaves": 15, "min_child_samples": 5}']
    for name, path in files.items():
        argv += [f"--{name}", str(path)]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")
        mp.setenv("ORDERPULSE_MLRUNS_DIR", str(root))
        mp.setenv("ORDERPULSE_N_JOBS", "1")
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf), contextlib.suppress(SystemExit):
            main(argv)
        result = json.loads(buf.getvalue().strip().splitlines()[-1])
        yield {"result": result, "files": files, "root": root, "main": main}


@pytest.fixture
def cli_store(trained_cli, monkeypatch):
    """The module's MLflow store (the conftest's per-test store would not have the trained model)."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{trained_cli['root'] / 'mlflow.db'}")
    monkeypatch.setenv("ORDERPULSE_MLRUNS_DIR", str(trained_cli["root"]))
    return trained_cli


def test_train_ensemble_logs_members_scores_and_weights_to_mlflow(cli_store):
    trained_cli = cli_store
    result = trained_cli["result"]
    client = MlflowClient()
    run = client.get_run(result["run_id"])
    assert run.data.params["model"] == "ensemble"
    members = run.data.params["ensemble.members"].split(",")
    assert (
        set(members) <= {"lgbm", "theta", "ets", "seasonal_naive", "profile", "profile_yoy"}
        and "lgbm" in members
    )
    weights = [run.data.metrics[f"ensemble.weight.{m}"] for m in members]
    assert sum(weights) == pytest.approx(1.0)
    for m in members:
        assert run.data.metrics[f"ensemble.{m}.backtest_wape"] > 0
    summary = json.loads(
        Path(client.download_artifacts(result["run_id"], "ensemble/summary.json")).read_text()
    )
    assert summary["weights"] == pytest.approx(dict(zip(members, weights, strict=True)))
    assert result["metrics"]["backtest_wape"] == pytest.approx(summary["ensemble_backtest"]["wape"], rel=1e-5)


def test_mlflow_pyfunc_of_an_ensemble_equals_the_cli_forecast(cli_store, tmp_path):
    trained_cli = cli_store
    import mlflow

    result, files, main = trained_cli["result"], trained_cli["files"], trained_cli["main"]
    out = tmp_path / "fc.csv"
    argv = ["forecast", "--model", result["model_uri"], "--series", str(files["series"])]
    argv += ["--origin", "2015-05-31", "--horizon", "14", "--out", str(out)]
    with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
        main(argv)
    cli = pd.read_csv(out, dtype={"series_id": str}, parse_dates=["ds"])
    series = pd.read_csv(files["series"], dtype={"series_id": str}, parse_dates=["ds"])
    rows = series.loc[series["ds"].between("2015-06-01", "2015-06-14"), ["series_id", "ds", "open"]]
    got = mlflow.pyfunc.load_model(result["model_uri"]).predict(rows.reset_index(drop=True))
    merged = got.merge(cli, on=["series_id", "ds"], suffixes=("", "_cli"))
    assert len(merged) == len(rows) == 5 * 14
    np.testing.assert_allclose(merged["yhat"], merged["yhat_cli"], rtol=1e-9)
    np.testing.assert_allclose(merged["yhat_lo_80"], merged["yhat_lo"], rtol=1e-9)
    assert (merged["yhat_lo_80"] <= merged["yhat"]).all() and (merged["yhat"] <= merged["yhat_hi_80"]).all()
