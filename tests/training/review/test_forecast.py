"""training/review/forecast.py: forecast review tables on tiny hand-built frames whose answers are computed by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from training.forecast.forecaster import LGBMForecaster
from training.registry import ModelNotFoundError, ResolvedModel
from training.review import forecast as review

D = pd.Timestamp("2024-01-01")


def _day(i: int) -> pd.Timestamp:
    return D + pd.Timedelta(days=i)


@pytest.fixture
def preds() -> pd.DataFrame:
    """Series a: two open days (errors 2 and 2 on 10 and 20) and a closed day; series b: one open day (5 -> 10)."""
    return pd.DataFrame(
        {
            "window": 0,
            "origin": D,
            "step": [1, 2, 3, 1],
            "series_id": pd.array(["a", "a", "a", "b"], dtype="string"),
            "ds": [_day(1), _day(2), _day(3), _day(1)],
            "y": [10.0, 20.0, 0.0, 5.0],
            "open": np.array([1, 1, 0, 1], dtype="int8"),
            "yhat": [12.0, 18.0, 0.0, 10.0],
            "yhat_lo_80": [9.0, 19.0, 0.0, 6.0],
            "yhat_hi_80": [15.0, 25.0, 0.0, 12.0],
        }
    )


def test_interval_levels_needs_both_bounds():
    frame = pd.DataFrame(columns=["yhat_lo_80", "yhat_hi_80", "yhat_lo_95"])
    assert review.interval_levels(frame) == (80,)


def test_accuracy_by_series_scores_open_days_only(preds):
    table = review.accuracy_by_series(preds).set_index("series_id")
    assert table.loc["a", "n_scored"] == 2  # the closed day is not scored
    assert table.loc["a", "wape"] == pytest.approx(4 / 30)
    assert table.loc["a", "bias"] == pytest.approx(0.0)
    assert table.loc["a", "actual_total"] == 30.0
    assert table.loc["a", "forecast_total"] == 30.0
    assert table.loc["a", "coverage_80"] == 1.0
    assert table.loc["b", "wape"] == pytest.approx(1.0)
    assert table.loc["b", "bias"] == pytest.approx(1.0)
    assert table.loc["b", "coverage_80"] == 0.0  # 5 is below the interval [6, 12]


def test_accuracy_by_segment_groups_series_by_static_attribute(preds):
    static = pd.DataFrame({"series_id": ["a", "b"], "store_type": ["x", "y"]})
    table = review.accuracy_by_segment(preds, static, ["store_type"]).set_index("value")
    assert table.loc["x", "wape"] == pytest.approx(4 / 30)
    assert table.loc["y", "wape"] == pytest.approx(1.0)
    assert table.loc["x", "n_series"] == 1
    assert table.loc["y", "actual_total"] == 5.0
    assert set(table["segment"]) == {"store_type"}


def test_accuracy_by_segment_keeps_series_without_a_value_as_missing(preds):
    static = pd.DataFrame({"series_id": ["a"], "store_type": ["x"]})  # b has no static row
    table = review.accuracy_by_segment(preds, static, ["store_type"]).set_index("value")
    assert table.loc["(missing)", "n_scored"] == 1
    assert table.loc["(missing)", "wape"] == pytest.approx(1.0)


def test_accuracy_by_segment_refuses_unknown_columns_naming_the_available_ones(preds):
    static = pd.DataFrame({"series_id": ["a", "b"], "store_type": ["x", "y"]})
    with pytest.raises(ValueError, match=r"\['region'\] are not attributes.*\['store_type'\]"):
        review.accuracy_by_segment(preds, static, ["region"])


def test_segment_columns_skip_numbers_renamings_and_too_many_values():
    static = pd.DataFrame(
        {
            "series_id": list("abcd"),
            "region": ["Bayern", "Bayern", "Hessen", "Berlin"],
            "state_code": ["BY", "BY", "HE", "BE"],  # the same grouping as region
            "store_type": ["a", "b", "a", "b"],
            "distance": [1.0, 2.0, 3.0, 4.0],
            "name": list("wxyz"),  # one value per series: not a segment
        }
    )
    assert review.segment_columns(static, max_values=3) == ["region", "store_type"]


def test_daily_totals_sum_open_days_across_series(preds):
    totals = review.daily_totals(preds).set_index("ds")
    assert totals.loc[_day(1), "actual"] == 15.0
    assert totals.loc[_day(1), "forecast"] == 22.0
    assert totals.loc[_day(1), "error"] == 7.0
    assert _day(3) not in totals.index  # only closed rows that day


def test_total_accuracy_is_the_wape_of_the_daily_total(preds):
    table = review.total_accuracy(preds)
    assert len(table) == 1  # one window: no extra "all" row
    row = table.iloc[0]
    # day 1: |22 - 15| = 7, day 2: |18 - 20| = 2; over 35 actual
    assert row["daily_total_wape"] == pytest.approx(9 / 35)
    assert row["bias"] == pytest.approx((40 - 35) / 35)
    assert row["days"] == 2


def test_total_accuracy_adds_an_all_row_for_several_windows(preds):
    two = pd.concat([preds, preds.assign(window=1, origin=_day(10))], ignore_index=True)
    table = review.total_accuracy(two)
    assert list(table["window"]) == ["0", "1", "all"]


def test_worst_series_ranks_by_wape_and_leaves_out_series_without_one():
    table = pd.DataFrame({"series_id": ["a", "b", "c"], "wape": [0.1, np.nan, 0.3]})
    assert list(review.worst_series(table, k=5)["series_id"]) == ["c", "a"]


def test_worst_series_refuses_an_unknown_metric():
    with pytest.raises(ValueError, match="'mase' is not one of"):
        review.worst_series(pd.DataFrame({"series_id": ["a"], "wape": [0.1]}), metric="mase")


def test_coverage_by_step_groups_steps_in_weeks():
    frame = pd.DataFrame(
        {
            "series_id": "a",
            "ds": [_day(i) for i in range(1, 10)],
            "step": range(1, 10),
            "y": 10.0,
            "yhat": 10.0,
            "yhat_lo_80": [9.0] * 7 + [11.0, 9.0],  # step 8 misses
            "yhat_hi_80": 12.0,
        }
    )
    table = review.coverage_by_step(frame)
    assert list(table["steps"]) == ["1-7", "8-14"]
    assert list(table["coverage_80"]) == [1.0, 0.5]
    assert list(table["n_scored"]) == [7, 2]


def test_coverage_by_step_needs_the_step_column(preds):
    with pytest.raises(ValueError, match="'step' column"):
        review.coverage_by_step(preds.drop(columns="step"))


def _series(days: int) -> pd.DataFrame:
    return pd.DataFrame({"series_id": "a", "ds": [_day(i) for i in range(days)], "y": 1.0, "open": 1})


def test_forecast_origin_is_the_latest_actual_when_the_covariates_cover_the_horizon():
    cov = pd.DataFrame({"ds": [_day(i) for i in range(14)], "promo": 0})
    origin, note = review.forecast_origin(LGBMForecaster(freq="D"), _series(7), cov, horizon=7)
    assert origin == _day(6)
    assert note == ""


def test_forecast_origin_moves_back_when_the_covariates_stop_early_and_says_so():
    cov = pd.DataFrame({"series_id": "a", "ds": [_day(i) for i in range(10)], "promo": 0})
    origin, note = review.forecast_origin(LGBMForecaster(freq="D"), _series(10), cov, horizon=7)
    assert origin == _day(2)  # covariates end on day 9 = day 2 + 7
    assert "end on 2024-01-10" in note and "through 2024-01-17" in note and "made at 2024-01-03" in note


class _RecordingModel:
    """Stands in for a fitted forecaster: records what ``predict`` was given."""

    freq, horizon = "D", 3

    def predict(self, horizon, future, levels, explain, **kwargs):
        self.future, self.kwargs = future, kwargs
        return future[["series_id", "ds"]].assign(yhat=1.0)


def test_next_forecast_passes_known_closures_and_counts_the_unknown_days():
    history = pd.concat(
        [_series(5), pd.DataFrame({"series_id": "a", "ds": [_day(5)], "y": [np.nan], "open": [0]})],
        ignore_index=True,
    )
    model = _RecordingModel()
    fm = review.ForecastModel(ResolvedModel("u", None, None, None, "u"), model, {"series": history})
    out, notes = review.next_forecast(fm, covariates=None)
    assert list(model.future["open"]) == [0, 1, 1]  # day 5 known closed; days 6 and 7 unknown
    assert model.kwargs["origin"] == _day(4)
    assert notes == [
        "2 of 3 forecast rows have no known open/closed flag after 2024-01-05: they are forecast as open days. "
        "Pass a series table that lists the coming days with open=0 for known closures to forecast those as 0."
    ]
    assert out["y"].isna().all()


def test_backtest_predictions_backtests_the_models_recipe_when_no_run_logged_one(monkeypatch):
    model = LGBMForecaster(freq="D", horizon=14, levels=(80,), params={"num_leaves": 7}, random_state=3)
    calls = {}

    def fake_backtest(make_model, series, tables, **kw):
        calls.update(kw, model=make_model())
        preds = pd.DataFrame({"window": [0], "origin": [D], "step": [1], "series_id": ["a"], "ds": [_day(1)]})
        return type("BT", (), {"predictions": preds})()

    monkeypatch.setattr(review, "run_backtest", fake_backtest)
    fm = review.ForecastModel(ResolvedModel("u", None, None, None, "u"), model, {"series": _series(3)})
    preds, source = review.backtest_predictions(fm, n_windows=3)
    assert calls["n_windows"] == 3 and calls["step"] == 7 and calls["horizon"] == 14
    assert calls["model"].params == {"num_leaves": 7} and calls["model"].random_state == 3
    assert source.startswith("a new backtest of the model's recipe (the model has no run): 1 window(s)")


def test_family_effects_average_contributions_in_log_space_and_skip_closed_days():
    explained = pd.DataFrame(
        {
            "series_id": ["a", "a", "a"],
            "yhat": [10.0, 20.0, 0.0],
            "contrib_promo": [np.log(1.2), np.log(1.2), 5.0],  # the closed day (yhat 0) is ignored
            "contrib_weather": [np.log(0.9), np.log(1.1), 0.0],
        }
    )
    table = review.family_effects(explained).set_index("series_id")
    assert table.loc["a", "promo"] == pytest.approx(0.2)
    assert table.loc["a", "weather"] == pytest.approx(np.exp((np.log(0.9) + np.log(1.1)) / 2) - 1)
    assert table.loc["a", "forecast_mean"] == 15.0
    assert list(table.index) == ["a", "all"]


def test_family_effects_need_an_explained_forecast():
    with pytest.raises(ValueError, match="explain=True"):
        review.family_effects(pd.DataFrame({"series_id": ["a"], "yhat": [1.0]}))


def _resolved(version: int, alias: str, eval_key: str, wape: float) -> ResolvedModel:
    tags = {
        "metric.backtest_wape": repr(wape),
        "eval_key": eval_key,
        "registry.decision": f"@{alias}: reason",
    }
    return ResolvedModel(f"models:/m/{version}", "m", version, "r", "s", (alias,), tags)


def test_champion_vs_challenger_lists_both_metrics_and_the_difference(monkeypatch):
    models = {
        "champion": _resolved(1, "champion", "k", 0.10),
        "challenger": _resolved(2, "challenger", "k", 0.12),
    }
    monkeypatch.setattr(review, "resolve", lambda uri: models[uri.rsplit("@", 1)[1]])
    table, note = review.champion_vs_challenger("m")
    row = table.set_index("metric").loc["backtest_wape"]
    assert (row["champion"], row["challenger"]) == (0.10, 0.12)
    assert row["difference"] == pytest.approx(0.02)
    assert note.startswith("champion v1 vs challenger v2: evaluated on the same backtest windows")
    assert "Registry decision for v2: @challenger: reason." in note


def test_champion_vs_challenger_warns_when_the_windows_differ(monkeypatch):
    models = {
        "champion": _resolved(1, "champion", "k1", 0.1),
        "challenger": _resolved(2, "challenger", "k2", 0.1),
    }
    monkeypatch.setattr(review, "resolve", lambda uri: models[uri.rsplit("@", 1)[1]])
    _, note = review.champion_vs_challenger("m")
    assert "not directly comparable" in note


def test_champion_vs_challenger_says_so_when_there_is_no_challenger(monkeypatch):
    def resolve(uri):
        if uri.endswith("@challenger"):
            raise ModelNotFoundError("no alias")
        return _resolved(4, "champion", "k", 0.1)

    monkeypatch.setattr(review, "resolve", resolve)
    table, note = review.champion_vs_challenger("m")
    assert table is None
    assert note.startswith("No challenger exists for m (champion: v4)")


def test_styled_shows_fractions_in_percent_with_a_caption(preds):
    html = review.styled(review.accuracy_by_series(preds), "Accuracy by series").to_html()
    assert "<caption>Accuracy by series</caption>" in html
    assert "13.3%" in html  # wape of a
    assert "100.0%" in html


def test_next_forecast_restricts_the_forecast_to_the_series_asked_for_from_the_common_origin():
    other = pd.DataFrame({"series_id": "b", "ds": [_day(i) for i in range(3)], "y": 1.0, "open": 1})
    model = _RecordingModel()
    fm = review.ForecastModel(
        ResolvedModel("u", None, None, None, "u"), model, {"series": pd.concat([_series(5), other])}
    )
    review.next_forecast(fm, series_ids=["b"])
    assert set(model.kwargs["series"]["series_id"]) == {"b"}
    assert model.kwargs["origin"] == _day(4)  # the latest actual of all series, not b's day 2
    assert set(model.future["series_id"]) == {"b"}


def test_next_forecast_of_a_series_asked_for_as_a_whole_float_forecasts_the_series_the_model_knows():
    other = pd.DataFrame({"series_id": "7", "ds": [_day(i) for i in range(3)], "y": 1.0, "open": 1})
    model = _RecordingModel()
    fm = review.ForecastModel(
        ResolvedModel("u", None, None, None, "u"), model, {"series": pd.concat([_series(5), other])}
    )
    _, notes = review.next_forecast(fm, series_ids=["7.0"])
    assert set(model.kwargs["series"]["series_id"]) == {"7"} and set(model.future["series_id"]) == {"7"}
    assert "series ids read as the model knows them (whole numbers without '.0'): {'7.0': '7'}." in notes
    assert review.known_series_ids(fm.series, ["7.0", "a", "8.0"]) == (["7", "a", "8.0"], {"7.0": "7"})


def test_next_forecast_names_unknown_series():
    fm = review.ForecastModel(
        ResolvedModel("u", None, None, None, "u"), _RecordingModel(), {"series": _series(5)}
    )
    with pytest.raises(
        ValueError, match=r"Series \['zz'\] are not in the model's history; it knows 1 series"
    ):
        review.next_forecast(fm, series_ids=["zz"])


def test_accuracy_by_series_lists_numeric_ids_in_numeric_order(preds):
    frame = pd.concat(
        [
            preds.assign(series_id=preds["series_id"].map({"a": "1000", "b": "88"})),
            preds.iloc[[3]].assign(series_id="9"),
        ]
    )
    assert list(review.accuracy_by_series(frame)["series_id"]) == ["9", "88", "1000"]


def _history_fm(days: int, covariate_days: int) -> tuple[review.ForecastModel, _RecordingModel]:
    model = _RecordingModel()
    model.horizon = 7
    cov = pd.DataFrame({"ds": [_day(i) for i in range(covariate_days)], "promo": 0})
    tables = {"series": _series(days), "covariates": cov}
    return review.ForecastModel(ResolvedModel("u", None, None, None, "u"), model, tables), model


def test_next_forecast_never_starts_inside_the_training_history():
    # the plan ends on the last actual (day 9): no step after it can be forecast, and nothing earlier is shown
    fm, model = _history_fm(days=10, covariate_days=10)
    out, notes = review.next_forecast(fm, explain=False)
    assert out.empty and not hasattr(model, "future")
    assert "No forward forecast is shown" in notes[0] and "end on 2024-01-10" in notes[0]


def test_next_forecast_shows_the_steps_the_plan_covers_after_the_latest_actual():
    fm, model = _history_fm(days=10, covariate_days=13)  # plan through day 12: 3 of 7 steps
    out, notes = review.next_forecast(fm, explain=False)
    assert model.kwargs["origin"] == _day(9)
    assert list(out["ds"]) == [_day(10), _day(11), _day(12)]
    assert "Shown: the 3 steps the plan covers" in notes[0]
