"""Reconciliation, method choice, intervals per level and explanations per aggregate
(training/forecast/hierarchy.py), on hand-built hierarchies whose answers are known."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.errors import NotFittedError
from features.hierarchy import Hierarchy
from training.forecast.hierarchy import RECONCILERS, HierarchicalReconciler, _aggregate_inputs, _rescale
from training.forecast.reconcile import choose_method, smearing_factors

pytest.importorskip("hierarchicalforecast")

STATIC = pd.DataFrame({"series_id": ["a", "b", "c"], "region": ["N", "N", "S"]})
LEVELS = ("region", "total")


def _hierarchy(ids=("a", "b", "c")) -> Hierarchy:
    return Hierarchy.from_static(STATIC, list(ids), LEVELS)


def _base_backtest(seed: int = 0, n_windows: int = 2, horizon: int = 10, agg_noise: float = 0.02):
    """Backtest rows for every node: series forecasts with 10% noise, aggregate forecasts with ``agg_noise``."""
    rng = np.random.default_rng(seed)
    level = {"a": 100.0, "b": 200.0, "c": 400.0}
    rows = []
    for w in range(n_windows):
        for step in range(1, horizon + 1):
            ds = pd.Timestamp("2024-01-01") + pd.Timedelta(days=w * horizon + step)
            y = {k: v * (1 + 0.2 * np.sin(step + w)) for k, v in level.items()}
            y_nodes = {**y, "region=N": y["a"] + y["b"], "region=S": y["c"], "total": sum(y.values())}
            for node, actual in y_nodes.items():
                noise = 0.10 if node in level else agg_noise
                rows.append(
                    {
                        "window": w,
                        "step": step,
                        "series_id": node,
                        "ds": ds,
                        "y": actual,
                        "open": 1,
                        "yhat": actual * (1 + noise * rng.standard_normal()),
                    }
                )
    return pd.DataFrame(rows)


def _future(horizon: int = 5, closed_b_on_day: int | None = None):
    ds = pd.date_range("2024-03-01", periods=horizon, freq="D")
    series = pd.DataFrame(
        [
            {"series_id": k, "ds": d, "step": i + 1, "yhat": v}
            for k, v in {"a": 100.0, "b": 210.0, "c": 390.0}.items()
            for i, d in enumerate(ds)
        ]
    )
    if closed_b_on_day is not None:
        series.loc[(series["series_id"] == "b") & (series["step"] == closed_b_on_day), "yhat"] = 0.0
    agg = pd.DataFrame(
        [
            {"series_id": k, "ds": d, "yhat": v}
            for k, v in {"region=N": 330.0, "region=S": 400.0, "total": 740.0}.items()
            for d in ds
        ]
    )
    return series, agg


@pytest.mark.parametrize("method", sorted(RECONCILERS))
def test_every_method_is_coherent_at_every_step(method):
    rec = HierarchicalReconciler(method=method).fit(_hierarchy(), _base_backtest())
    series, agg = _future()
    out = rec.predict(series, agg, levels=(80,))
    for _, g in out.groupby("ds"):
        v = g.set_index(["level", "series_id"])["yhat"]
        assert v[("region", "N")] == pytest.approx(v[("series", "a")] + v[("series", "b")], rel=1e-12)
        assert v[("region", "S")] == pytest.approx(v[("series", "c")], rel=1e-12)
        assert v[("total", "total")] == pytest.approx(v[("region", "N")] + v[("region", "S")], rel=1e-12)


def test_bottom_up_is_the_sum_of_the_series_forecasts():
    rec = HierarchicalReconciler(method="bottom_up", bias_correction=False).fit(
        _hierarchy(), _base_backtest()
    )
    series, agg = _future()
    out = rec.predict(series, agg, levels=(80,)).set_index(["level", "series_id", "step"])["yhat"]
    assert out[("series", "a", 1)] == 100.0
    assert out[("region", "N", 1)] == 310.0
    assert out[("total", "total", 1)] == 700.0


def test_mint_moves_the_total_toward_a_better_aggregate_forecast():
    # aggregates forecast 5x more precisely than series: MinT-shrink trusts them, bottom-up ignores them
    rec = HierarchicalReconciler(method="mint_shrink").fit(_hierarchy(), _base_backtest())
    series, agg = _future()
    total = rec.predict(series, agg, levels=(80,)).query("level == 'total'")["yhat"].iloc[0]
    assert 720.0 < total < 740.0


def test_method_is_chosen_by_backtest_wape_and_every_method_is_reported():
    rec = HierarchicalReconciler().fit(_hierarchy(), _base_backtest(agg_noise=0.01))
    table = rec.metrics_.pivot(index="method", columns="level", values="wape")
    assert set(table.index) == set(RECONCILERS)
    assert list(table.columns) == sorted(["series", "region", "total"])
    assert rec.method_ != "bottom_up"
    assert table.loc[rec.method_, "total"] < table.loc["bottom_up", "total"]
    assert table.loc[rec.method_, "region"] <= table.loc["bottom_up", "region"]
    flat = rec.metrics_flat()
    assert flat["hierarchy.bottom_up.total.wape"] == pytest.approx(table.loc["bottom_up", "total"])
    assert "hierarchy.mint_shrink.total.daily_mape" in flat
    assert 0.0 <= flat["hierarchy.total.coverage_80"] <= 1.0


def test_bottom_up_is_kept_when_the_other_methods_lose_at_an_aggregate_level():
    # aggregates forecast with 50% noise: OLS trusts them as much as the series and loses to bottom-up
    rec = HierarchicalReconciler(methods=("ols",)).fit(_hierarchy(), _base_backtest(agg_noise=0.5))
    table = rec.metrics_.pivot(index="method", columns="level", values="wape")
    assert table.loc["ols", "total"] > table.loc["bottom_up", "total"]
    assert rec.method_ == "bottom_up"


def test_intervals_are_calibrated_per_level_and_widen_with_the_level_s_error():
    rec = HierarchicalReconciler(method="bottom_up", levels=(80, 95)).fit(_hierarchy(), _base_backtest())
    q = rec.quantiles_
    assert set(q) == {"series", "region", "total"}
    # bottom-up: series errors (10%) partly cancel in the total, so the total's interval is narrower
    assert q["total"]["hi_80"] - q["total"]["lo_80"] < q["series"]["hi_80"] - q["series"]["lo_80"]
    series, agg = _future()
    out = rec.predict(series, agg, levels=(80, 95))
    assert (out["yhat_lo_95"] <= out["yhat_lo_80"]).all() and (out["yhat_lo_80"] <= out["yhat"]).all()
    assert (out["yhat"] <= out["yhat_hi_80"]).all() and (out["yhat_hi_80"] <= out["yhat_hi_95"]).all()
    t = out.query("level == 'total'").iloc[0]
    assert t["yhat_hi_80"] == pytest.approx(np.expm1(np.log1p(t["yhat"]) + q["total"]["hi_80"]))


def test_closed_series_stay_zero_and_aggregates_are_resummed():
    rec = HierarchicalReconciler(method="ols").fit(_hierarchy(), _base_backtest())
    series, agg = _future(closed_b_on_day=2)
    out = rec.predict(series, agg, levels=(80,)).set_index(["level", "series_id", "step"])
    assert out.loc[("series", "b", 2), "yhat"] == 0.0
    assert out.loc[("series", "b", 2), "yhat_hi_80"] == 0.0
    assert out.loc[("region", "N", 2), "yhat"] == pytest.approx(out.loc[("series", "a", 2), "yhat"])


def test_series_without_region_form_the_none_group_of_the_output():
    static_ids = ["a", "b", "c", "d"]
    h = Hierarchy.from_static(STATIC, static_ids, LEVELS)
    bt = _base_backtest()
    extra = bt.loc[bt["series_id"] == "a"].assign(series_id="d")
    none_group = extra.assign(series_id="region=(none)")
    bt = pd.concat([bt, extra, none_group])
    total = bt["series_id"] == "total"
    bt.loc[total, ["y", "yhat"]] += extra[["y", "yhat"]].to_numpy()
    rec = HierarchicalReconciler(method="bottom_up", bias_correction=False).fit(h, bt)
    series, agg = _future()
    series = pd.concat([series, series.loc[series["series_id"] == "a"].assign(series_id="d")])
    agg = pd.concat([agg, agg.loc[agg["series_id"] == "region=S"].assign(series_id="region=(none)")])
    out = rec.predict(series, agg, levels=(80,)).set_index(["level", "series_id", "step"])["yhat"]
    assert out[("region", "(none)", 1)] == 100.0
    assert out[("total", "total", 1)] == 800.0


def test_aggregate_effect_is_the_forecast_weighted_effect_of_the_members():
    rec = HierarchicalReconciler(method="bottom_up").fit(_hierarchy(), _base_backtest())
    series, agg = _future(horizon=1)
    # promo lifts a by +20% (log 0.182), b and c not at all
    series["contrib_promo"] = np.where(series["series_id"] == "a", np.log(1.2), 0.0)
    out = rec.predict(series, agg, levels=(80,)).set_index(["level", "series_id"])
    assert out.loc[("series", "a"), "effect_promo"] == pytest.approx(0.2)
    # region N: (100 + 210) / (100/1.2 + 210) - 1
    assert out.loc[("region", "N"), "effect_promo"] == pytest.approx(310 / (100 / 1.2 + 210) - 1)
    assert out.loc[("region", "S"), "effect_promo"] == pytest.approx(0.0)


def test_unknown_method_and_unfitted_use_are_clear_errors():
    with pytest.raises(ValueError, match="Unknown reconciliation method.*'erm'.*choose from"):
        HierarchicalReconciler(method="erm").fit(_hierarchy(), _base_backtest())
    with pytest.raises(NotFittedError, match="not fitted yet"):
        HierarchicalReconciler().reconcile(pd.DataFrame())
    rec = HierarchicalReconciler(methods=("bottom_up",)).fit(_hierarchy(), _base_backtest())
    series, agg = _future()
    with pytest.raises(ValueError, match="'mint_shrink' was not compared at training"):
        rec.predict(series, agg, method="mint_shrink")


@pytest.mark.parametrize("method", ["bottom_up", "mint_shrink"])
def test_every_level_s_80_interval_covers_about_80_percent_of_new_days(method):
    """Known noise (10% per series, 2% for the aggregates' own forecasts): intervals calibrated on 12 backtest
    windows cover 70-90% of 30 new windows at every level, and the out-of-window coverage reported at
    training says the same."""
    rec = HierarchicalReconciler(method=method, levels=(80,)).fit(
        _hierarchy(), _base_backtest(seed=0, n_windows=12, horizon=20)
    )
    fresh = _base_backtest(seed=1, n_windows=30, horizon=20)
    hits: dict[str, list[bool]] = {}
    for _, w in fresh.groupby("window"):
        is_series = w["series_id"].isin(["a", "b", "c"])
        out = rec.predict(w.loc[is_series], w.loc[~is_series], levels=(80,))
        truth = w.assign(node=w["series_id"])[["node", "ds", "y"]]
        out["node"] = np.where(
            out["level"] == "series",
            out["series_id"],
            np.where(out["level"] == "total", "total", "region=" + out["series_id"].astype(str)),
        )
        scored = out.merge(truth, on=["node", "ds"])
        inside = (scored["y"] >= scored["yhat_lo_80"]) & (scored["y"] <= scored["yhat_hi_80"])
        for lv, g in inside.groupby(scored["level"]):
            hits.setdefault(str(lv), []).extend(g.tolist())
    for lv, h in hits.items():
        assert 0.70 <= np.mean(h) <= 0.90, (lv, np.mean(h))
        assert 0.70 <= rec.coverage_[lv]["coverage_80"] <= 0.90, (lv, rec.coverage_[lv])


def _three_days_with_closures() -> tuple[pd.DatetimeIndex, pd.DataFrame]:
    """Stores a, b (region N) and c (S) over 3 days: all open on day 1, b and c closed on day 2, day 3 the
    future (no ``y``) with c closed."""
    ds = pd.date_range("2024-01-01", periods=3, freq="D")
    series = pd.DataFrame(
        {
            "series_id": ["a", "b", "c"] * 3,
            "ds": np.repeat(ds, 3),
            "y": [100.0, 200.0, 400.0, 110.0, 0.0, 0.0, np.nan, np.nan, np.nan],
            "open": [1, 1, 1, 1, 0, 0, 1, 1, 0],
        }
    )
    return ds, series


def test_the_aggregate_model_learns_the_aggregate_per_open_member_and_forecasts_sums():
    """``aggregate_target="per_open"``: a region where half the stores close on a day is not a level shift
    for the aggregate model (its target is the sum per open member), and forecasts are multiplied back."""
    ds, series = _three_days_with_closures()
    agg, _, _, n_open = _aggregate_inputs(_hierarchy(), series, {}, "per_open")
    y = agg.set_index(["series_id", "ds"])["y"]
    assert y[("region=N", ds[0])] == 150.0 and y[("total", ds[0])] == pytest.approx(700 / 3)
    assert y[("region=N", ds[1])] == 110.0  # only a was open
    assert y[("region=S", ds[1])] == 0.0 and np.isnan(y[("total", ds[2])])  # closed; future unknown
    assert "n_open" not in agg.columns  # not a model input
    forecast = pd.DataFrame(
        {"series_id": ["region=N", "total", "region=S"], "ds": ds[2], "yhat": [120.0] * 3}
    )
    summed = _rescale(forecast.astype({"series_id": "string"}), n_open, ("yhat",))
    assert summed["yhat"].tolist() == [240.0, 240.0, 0.0]  # 2 open members in N and in total, S closed
    plain, _, _, none = _aggregate_inputs(_hierarchy(), series, {}, "sum")
    assert none is None and plain.set_index(["series_id", "ds"])["y"][("total", ds[0])] == 700.0


def test_aggregate_closure_features_read_the_members_open_days_before_and_after():
    """``closures=True``: the aggregate model's covariates get the closed share of the neighbouring days (a
    region's day before a holiday when its stores close), computed from ``open`` only, never from ``y``."""
    ds, series = _three_days_with_closures()
    _, tables, _, _ = _aggregate_inputs(_hierarchy(), series, {}, "sum", closures=True)
    cov = tables["covariates"].set_index(["series_id", "ds"])
    assert cov.loc[("region=N", ds[0]), "closed_share_next_1"] == pytest.approx(0.5)  # b closes on day 2
    assert cov.loc[("total", ds[2]), "closed_share_prev_1"] == pytest.approx(2 / 3)
    assert cov.loc[("region=S", ds[1]), "closed_share_next_1"] == pytest.approx(1.0)
    assert np.isnan(cov.loc[("total", ds[0]), "closed_share_prev_1"])  # before the data: unknown
    _, plain, _, _ = _aggregate_inputs(_hierarchy(), series, {}, "sum")
    assert "closed_share_next_1" not in plain["covariates"].columns
    changed = series.assign(y=series["y"] * 10)
    _, again, _, _ = _aggregate_inputs(_hierarchy(), changed, {}, "sum", closures=True)
    pd.testing.assert_frame_equal(again["covariates"], tables["covariates"])


def _log_normal_backtest(
    sigma: float, n_days: int = 4000, seed: int = 0, window_days: int = 100
) -> pd.DataFrame:
    """Series a, b, c whose forecasts are their exact medians ``m`` and actuals ``m * exp(e)``, ``e ~ N(0, sigma)``
    (what a model of ``log y`` with squared loss forecasts at best); aggregates forecast as the sum of medians.
    Backtest windows of ``window_days`` days (the reconciler's fit reconciles each window once per method)."""
    rng = np.random.default_rng(seed)
    ds = pd.Timestamp("2024-01-01") + pd.to_timedelta(np.arange(n_days), unit="D")
    median = {"a": 100.0, "b": 200.0, "c": 400.0}
    y = {k: m * np.exp(sigma * rng.standard_normal(n_days)) for k, m in median.items()}
    nodes = {
        **{k: (y[k], np.full(n_days, m)) for k, m in median.items()},
        "region=N": (y["a"] + y["b"], np.full(n_days, 300.0)),
        "region=S": (y["c"], np.full(n_days, 400.0)),
        "total": (y["a"] + y["b"] + y["c"], np.full(n_days, 700.0)),
    }
    return pd.concat(
        [
            pd.DataFrame(
                {
                    "window": np.arange(n_days) // window_days,
                    "step": np.arange(n_days) % window_days + 1,
                    "series_id": node,
                    "ds": ds,
                    "y": actual,
                    "open": 1,
                    "yhat": forecast,
                }
            )
            for node, (actual, forecast) in nodes.items()
        ],
        ignore_index=True,
    )


def test_smearing_factor_of_log_normal_errors_is_exp_half_sigma_squared():
    bt = _log_normal_backtest(sigma=0.3)
    level_of = pd.Series({"a": "series", "b": "series", "c": "series", "total": "total"})
    factors = smearing_factors(bt, level_of)
    for node in ("a", "b", "c"):  # E[exp(e)] = exp(0.3^2 / 2) = 1.0460
        assert factors[node] == pytest.approx(np.exp(0.045), abs=0.01)
    assert factors["total"] > 1.0  # the sum of medians is below the sum's mean too
    # a node with few rows leans on its level's pooled variance: 10 rows (residual variance 0), 100 rows of prior
    few = pd.concat([bt.loc[bt["series_id"] != "c"], bt.loc[bt["series_id"] == "c"].head(10).assign(y=800.0)])
    is_series = few["series_id"].isin(["a", "b", "c"])
    pooled = (np.log1p(few["y"]) - np.log1p(few["yhat"]))[is_series].var(ddof=1)
    assert smearing_factors(few, level_of)["c"] == pytest.approx(np.exp(100 * pooled / 109 / 2))
    # only the spread counts, not the mean: a constant bias of the backtest (a model's drift) is not corrected
    shifted = bt.assign(y=bt["y"] * 1.5)
    pd.testing.assert_series_equal(smearing_factors(shifted, level_of), factors, rtol=1e-3)
    closed = bt.assign(open=0)
    assert (smearing_factors(closed, level_of) == 1.0).all()  # no open rows: no correction


def test_bias_correction_makes_the_bottom_up_total_a_mean_forecast():
    """Series forecasts that are medians of log-normal actuals (sigma 0.3): their sum is about 4.4% below the
    total's mean; corrected by factors learned on the backtest, the total of new days is unbiased."""
    bt = _log_normal_backtest(sigma=0.3, seed=0, window_days=1000)  # 4 windows: factors use every row alike
    fresh = _log_normal_backtest(sigma=0.3, n_days=4000, seed=1)
    raw = HierarchicalReconciler(method="bottom_up", bias_correction=False).fit(_hierarchy(), bt)
    fixed = HierarchicalReconciler(method="bottom_up", bias_correction=True).fit(_hierarchy(), bt)
    series, agg = _future(horizon=1)
    total = {
        name: rec.predict(series, agg, levels=(80,)).query("level == 'total'")["yhat"].iloc[0]
        for name, rec in (("raw", raw), ("fixed", fixed))
    }
    assert total["raw"] == 700.0
    truth = fresh.loc[fresh["series_id"] == "total", "y"].mean()  # new days with the same medians (700)
    assert truth / 700.0 - 1 == pytest.approx(0.046, abs=0.01)
    assert total["fixed"] == pytest.approx(truth, rel=0.01)
    assert fixed.factors_["a"] == pytest.approx(np.exp(0.045), abs=0.01)


def test_bias_correction_is_learned_from_the_backtest_rows_only():
    """Leakage: the factors come from the backtest given to ``fit`` (rows up to the origin); the forecast rows
    given to ``predict`` carry no actuals, and extra columns there change nothing."""
    calm = _log_normal_backtest(sigma=0.1, n_days=1000, window_days=250)
    wild = _log_normal_backtest(sigma=0.4, n_days=1000, window_days=250)
    rec = HierarchicalReconciler(method="bottom_up", bias_correction=True).fit(_hierarchy(), calm)
    pd.testing.assert_series_equal(rec.factors_, smearing_factors(calm, rec.level_of_))
    wild_rec = HierarchicalReconciler(method="bottom_up", bias_correction=True).fit(_hierarchy(), wild)
    assert rec.factors_["a"] < wild_rec.factors_["a"]
    off = HierarchicalReconciler(method="bottom_up").fit(_hierarchy(), wild)  # opt-in: off by default
    assert (off.factors_ == 1.0).all()
    series, agg = _future(horizon=2)
    before = rec.predict(series, agg, levels=(80,))
    after = rec.predict(series.assign(y=1e9), agg.assign(y=1e9), levels=(80,))
    pd.testing.assert_frame_equal(before, after)


def _choice_tables(gains: dict[str, list[float]]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-window WAPE: bottom-up 0.05 at every aggregate level and window, each method 0.05 - gain[w]."""
    rows = []
    for method, gain in {"bottom_up": [0.0] * len(next(iter(gains.values()))), **gains}.items():
        for lv in ("series", "region", "total"):
            for w, g in enumerate(gain):
                rows.append({"method": method, "level": lv, "window": w, "wape": 0.05 - g})
    windows = pd.DataFrame(rows)
    return windows.groupby(["method", "level"], as_index=False)["wape"].mean(), windows


def test_choice_takes_a_method_that_wins_in_every_window_by_more_than_the_spread():
    metrics, windows = _choice_tables({"mint_shrink": [0.004, 0.005, 0.006, 0.005]})
    assert choose_method(metrics, windows) == "mint_shrink"


def test_choice_keeps_bottom_up_when_the_gain_comes_from_a_minority_of_windows():
    # better on the pooled WAPE (one window won by far), worse in 3 of 4 windows
    metrics, windows = _choice_tables({"mint_shrink": [0.02, -0.001, -0.001, -0.001]})
    assert metrics.set_index(["method", "level"]).loc[("mint_shrink", "total"), "wape"] < 0.05
    assert choose_method(metrics, windows) == "bottom_up"


def test_choice_keeps_bottom_up_when_the_gain_is_smaller_than_its_window_spread():
    # wins 3 of 4 windows, but the mean gain (0.0025) is below the windows' spread (std 0.0044)
    metrics, windows = _choice_tables({"mint_shrink": [0.001, 0.002, 0.01, -0.003]})
    assert choose_method(metrics, windows) == "bottom_up"


def test_choice_with_one_window_compares_the_pooled_wape():
    metrics, windows = _choice_tables({"ols": [0.001], "mint_shrink": [0.003]})
    assert choose_method(metrics, windows) == "mint_shrink"
    assert choose_method(metrics) == "mint_shrink"
    worse, _ = _choice_tables({"ols": [-0.001]})
    assert choose_method(worse) == "bottom_up"


class _Stub:
    """A forecaster that records where it was fitted and forecasts 1.0 everywhere."""

    def __init__(self, tag: str, calls: list):
        self.tag, self.calls = tag, calls

    def fit(self, frame, **tables):
        self.calls.append((self.tag, frame["ds"].max()))
        return self

    def update(self, frame):
        return self

    def predict(self, horizon, future, **kwargs):
        return future[["series_id", "ds"]].assign(yhat=1.0)


def test_the_aggregate_backtest_uses_its_own_model_and_the_final_fit_the_aggregate_model():
    """``make_backtest_model`` (e.g. with the series backtest's staleness) serves the backtest windows only; the
    final aggregate model is fitted on all data."""
    from training.forecast.backtest import backtest
    from training.forecast.hierarchy import fit_hierarchy

    ds = pd.date_range("2024-01-01", periods=30, freq="D")
    series = pd.DataFrame(
        {"series_id": np.repeat(["a", "b", "c"], 30), "ds": np.tile(ds, 3), "y": 10.0, "open": 1}
    )
    calls: list = []
    bt = backtest(
        lambda: _Stub("series", calls), series, n_windows=3, step=3, horizon=5, refit=False, levels=()
    )
    fit_hierarchy(
        _hierarchy(),
        series,
        {},
        bt.predictions,
        lambda: _Stub("final", calls),
        n_windows=3,
        step=3,
        horizon=5,
        make_backtest_model=lambda: _Stub("aggregate backtest", calls),
    )
    assert calls == [
        ("series", ds[30 - 1 - 6 - 5]),
        ("aggregate backtest", ds[30 - 1 - 6 - 5]),  # fitted once, at the first origin
        ("final", ds[-1]),
    ]


def test_each_backtest_window_is_reconciled_with_the_errors_of_the_other_windows():
    """MinTrace is scored out of sample: window 0's reconciled forecasts do not depend on its own actuals (its
    errors are left out of the covariance), but do depend on the other windows' errors."""
    bt = _base_backtest(n_windows=3)
    first = bt["window"] == 0
    changed_own = bt.assign(y=np.where(first, bt["y"] * 1.3, bt["y"]))
    changed_other = bt.assign(y=np.where(bt["window"] == 2, bt["y"] * 1.3, bt["y"]))

    def window0(frame):
        rec = HierarchicalReconciler(method="mint_shrink", bias_correction=False).fit(_hierarchy(), frame)
        out = rec.backtest_["mint_shrink"]
        return out.loc[out["window"] == 0, "yhat"].to_numpy()

    np.testing.assert_allclose(window0(changed_own), window0(bt), rtol=1e-10)
    assert not np.allclose(window0(changed_other), window0(bt), rtol=1e-6)


def test_only_windows_with_a_disjoint_partner_choose_the_method():
    """Windows that overlap every other window can only be reconciled with their own errors (in sample, which
    flatters MinTrace): they are reconciled, but the method is chosen on the other windows only."""
    bt = _base_backtest(n_windows=4)
    # 4 windows of 10 days every 4 days: only windows 0 and 3 share no day
    bt = bt.assign(ds=pd.Timestamp("2024-01-01") + pd.to_timedelta(bt["window"] * 4 + bt["step"], unit="D"))
    rec = HierarchicalReconciler(bias_correction=False).fit(_hierarchy(), bt)
    assert rec.scored_windows_ == [0, 3]
    assert set(rec.window_metrics_["window"]) == {0, 3}
    total = rec.backtest_["bottom_up"]
    total = total.loc[(total["level"] == "total") & total["window"].isin([0, 3])]
    pooled = rec.metrics_.set_index(["method", "level"]).loc[("bottom_up", "total"), "wape"]
    assert pooled == pytest.approx(np.abs(total["y"] - total["yhat"]).sum() / total["y"].sum())
    assert set(rec.backtest_["bottom_up"]["window"]) == {0, 1, 2, 3}  # every window is still reconciled


def test_with_no_window_scored_out_of_sample_error_weighted_methods_are_not_chosen():
    """Two windows that overlap (train forecast's default: 2 windows of a horizon, half a horizon apart): MinTrace
    weighted by the backtest errors can only be scored on the errors it was estimated from, so it is not chosen;
    the methods that do not read the errors still compete. With disjoint windows it is chosen as before."""
    disjoint = _base_backtest(n_windows=4, agg_noise=0.01)
    assert (
        HierarchicalReconciler(methods=("mint_shrink",)).fit(_hierarchy(), disjoint).method_ == "mint_shrink"
    )
    bt = _base_backtest(n_windows=2, agg_noise=0.01)
    bt = bt.assign(ds=pd.Timestamp("2024-01-01") + pd.to_timedelta(bt["window"] * 5 + bt["step"], unit="D"))
    rec = HierarchicalReconciler(methods=("mint_shrink", "wls_var", "wls_struct")).fit(_hierarchy(), bt)
    assert rec.scored_windows_ == [] and sorted(rec.unjudged_methods_) == ["mint_shrink", "wls_var"]
    table = rec.metrics_.pivot(index="method", columns="level", values="wape")
    assert table.loc["mint_shrink", "total"] < table.loc["bottom_up", "total"]  # in sample it looks better
    assert rec.method_ in ("bottom_up", "wls_struct")
    # still reported, and usable when asked for by name
    assert set(table.index) == {"bottom_up", "mint_shrink", "wls_var", "wls_struct"}
    named = HierarchicalReconciler(method="mint_shrink").fit(_hierarchy(), bt)
    assert named.method_ == "mint_shrink"


def test_an_aggregates_interval_leaves_out_each_windows_own_bias():
    """Every window's series forecast 6% low as a whole (models fitted long before their origins drift): the total's
    residuals are then about +6% +- its daily noise. The interval is the daily noise around the forecast, not
    shifted by the windows' drift, which the final model does not share."""
    bt = _base_backtest(n_windows=3, agg_noise=0.01)
    series = ~bt["series_id"].str.contains("=|total", regex=True)
    bt.loc[series, "yhat"] *= 0.94
    rec = HierarchicalReconciler(method="bottom_up", bias_correction=False).fit(_hierarchy(), bt)
    total = rec.quantiles_["total"]
    rows = rec.backtest_["bottom_up"].query("level == 'total'")
    resid = np.log1p(rows["y"]) - np.log1p(rows["yhat"])
    shifted = np.quantile(resid, [0.1, 0.9])  # what the quantiles were with the drift left in
    assert (shifted[0] + shifted[1]) / 2 > 0.05, shifted
    assert total["lo_80"] < -0.04 and abs(total["lo_80"] + total["hi_80"]) / 2 < 0.03, total  # centred
    assert resid.mean() == pytest.approx(-np.log(0.94), abs=0.02)  # it was there
    assert rec.coverage_["total"]["coverage_80"] >= 0.7  # each window by the other windows' quantiles


def test_interval_quantiles_come_from_the_newer_half_of_the_windows():
    """Residual spread is seasonal: with 5 windows whose first two are 5x noisier, every level's interval is
    learned on the newer half, windows 2-4 (as the series model's in ``train forecast``)."""
    bt = _base_backtest(n_windows=5, agg_noise=0.01)
    noisy = bt["window"] < 2
    bt.loc[noisy, "yhat"] = bt.loc[noisy, "y"] + 5 * (bt.loc[noisy, "yhat"] - bt.loc[noisy, "y"])
    rec = HierarchicalReconciler(method="bottom_up", bias_correction=False).fit(_hierarchy(), bt)
    rows = rec.backtest_["bottom_up"]
    for level in ("region", "total"):
        part = rows.loc[rows["level"] == level]
        assert rec.quantiles_[level] == rec._quantiles(part.loc[part["window"] >= 2]), level
        assert rec.quantiles_[level] != rec._quantiles(part), level
    series = bt.loc[bt["series_id"].isin(["a", "b", "c"]) & (bt["window"] >= 2)]
    resid = np.log1p(series["y"]) - np.log1p(series["yhat"])
    assert rec.quantiles_["series"]["hi_80"] == pytest.approx(np.quantile(resid, 0.9), abs=0.03)
    wide = HierarchicalReconciler(method="bottom_up", bias_correction=False).fit(
        _hierarchy(), bt.loc[bt["window"] < 2]
    )
    assert wide.quantiles_["series"]["hi_80"] > 3 * rec.quantiles_["series"]["hi_80"]
