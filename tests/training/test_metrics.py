import math

import numpy as np
import pandas as pd
import pytest

from training import metrics as m


def _frame(y, yhat, open=None, series="a", start="2024-01-01", **extra):
    n = len(y)
    out = pd.DataFrame(
        {
            "series_id": pd.array([series] * n, dtype="string"),
            "ds": pd.date_range(start, periods=n, freq="D"),
            "y": np.asarray(y, dtype="float64"),
            "yhat": np.asarray(yhat, dtype="float64"),
        }
    )
    if open is not None:
        out["open"] = np.asarray(open, dtype="int8")
    for k, v in extra.items():
        out[k] = v
    return out


# ------------------------------------------------------------------------------------------ point metrics
def test_wape_excludes_closed_rows_and_rows_with_missing_y():
    # scored rows: (10, 12) and (20, 18) -> (2 + 2) / 30; the closed row and the missing y row do not count
    value = m.wape([10, 20, 0, np.nan], [12, 18, 5, 7], open=[1, 1, 0, 1])
    assert value == pytest.approx(4 / 30)


def test_mape_skips_zero_actuals():
    # |11-10|/10 = 0.1 and |15-20|/20 = 0.25; y == 0 is skipped
    assert m.mape([10, 0, 20], [11, 3, 15]) == pytest.approx(0.175)


def test_rmspe_is_rossmanns_definition_over_positive_actuals():
    # ((10-12)/10)^2 = 0.04, ((20-15)/20)^2 = 0.0625, the y == 0 row is skipped
    assert m.rmspe([10, 20, 0], [12, 15, 4]) == pytest.approx(math.sqrt((0.04 + 0.0625) / 2))


def test_smape_scores_zero_when_actual_and_forecast_are_both_zero():
    # terms: 0 (0 vs 0) and 2 * 20 / (10 + 30) = 1
    assert m.smape([0, 10], [0, 30]) == pytest.approx(0.5)


def test_bias_is_positive_when_forecasts_are_too_high():
    assert m.bias([10, 10], [12, 13]) == pytest.approx(0.25)
    assert m.bias([10, 10], [8, 9]) == pytest.approx(-0.15)


def test_wape_is_nan_when_actuals_sum_to_zero():
    assert math.isnan(m.wape([0, 0], [1, 2]))


def test_missing_forecast_on_a_scored_row_is_an_error():
    with pytest.raises(ValueError, match="yhat is missing for 1 scored row"):
        m.wape([10, 20], [11, np.nan])


def test_missing_forecast_on_a_closed_row_is_fine():
    assert m.wape([10, 0], [11, np.nan], open=[1, 0]) == pytest.approx(0.1)


def test_coverage_counts_bounds_as_inside():
    y, lo, hi = [10, 20, 30], [8, 21, 25], [12, 25, 30]
    assert m.coverage(y, lo, hi) == pytest.approx(2 / 3)


# ------------------------------------------------------------------------------------------ scaled metrics
def test_mase_and_rmsse_use_the_seasonal_naive_errors_of_the_training_history():
    # season 2: training pairs (1 -> 2) and (3 -> 5): errors 1 and 2 -> scale_mae 1.5, scale_mse 2.5
    train = _frame([1, 3, 2, 5], [0, 0, 0, 0]).drop(columns="yhat")
    test = _frame([4, 6], [5, 3], start="2024-01-05")
    assert m.mase(test, train, season=2) == pytest.approx((1 + 3) / 2 / 1.5)
    assert m.rmsse(test, train, season=2) == pytest.approx(math.sqrt((1 + 9) / 2 / 2.5))


def test_seasonal_scale_skips_closed_training_periods_instead_of_comparing_with_them():
    # season 1 (naive): open values 10, 14, 15 -> errors 4 and 1 -> scale 2.5 (the closed 0 is not an error)
    train = _frame([10, 0, 14, 15], [0] * 4, open=[1, 0, 1, 1]).drop(columns="yhat")
    scales = m.seasonal_scales(train, season=1)
    assert scales.loc["a", "scale_mae"] == pytest.approx(2.5)
    assert scales.loc["a", "n_pairs"] == 2
    test = _frame([20], [15], start="2024-01-05")
    assert m.mase(test, train, season=1) == pytest.approx(5 / 2.5)


def test_overall_mase_is_the_mean_of_per_series_values():
    train = pd.concat(
        [_frame([10, 12, 14], [0] * 3, series="a"), _frame([100, 110, 120], [0] * 3, series="b")]
    ).drop(columns="yhat")
    # a: scale 2, abs errors 1, 3 -> MASE 1.0; b: scale 10, abs error 5 -> 0.5 (one row only);
    # the mean over series is 0.75 (pooling the three rows would give 0.8333)
    test = pd.concat(
        [
            _frame([15, 16], [16, 13], series="a", start="2024-01-04"),
            _frame([130], [125], series="b", start="2024-01-04"),
        ]
    )
    overall, per_series = m.evaluate(test, train=train, levels=(), season=1)
    assert per_series.set_index("series_id")["mase"].to_dict() == pytest.approx({"a": 1.0, "b": 0.5})
    assert overall["mase"] == pytest.approx(0.75)


def test_series_with_a_zero_scale_gets_nan_and_is_counted():
    train = pd.concat(
        [_frame([5, 5, 5], [0] * 3, series="flat"), _frame([1, 2, 3], [0] * 3, series="up")]
    ).drop(columns="yhat")
    test = pd.concat(
        [
            _frame([5], [6], series="flat", start="2024-01-04"),
            _frame([4], [4.5], series="up", start="2024-01-04"),
        ]
    )
    overall, per_series = m.evaluate(test, train=train, levels=(), season=1)
    assert math.isnan(per_series.set_index("series_id").loc["flat", "mase"])
    assert overall["n_series_without_scale"] == 1
    assert overall["mase"] == pytest.approx(0.5)


def test_seasonal_naive_errors_compare_with_the_previous_open_value_at_the_same_position():
    # season 2 over 6 days, day 3 (position 0 of the 2nd cycle) closed: day 5 is compared with day 1
    train = _frame([1, 2, 0, 4, 7, 8], [0] * 6, open=[1, 1, 0, 1, 1, 1]).drop(columns="yhat")
    err = m.seasonal_naive_errors(train, season=2)
    assert err.tolist()[3:] == [2.0, 6.0, 4.0]
    assert err.iloc[:3].isna().all()


def test_default_season_by_step():
    assert m.default_season(pd.Timedelta(days=1)) == 7
    assert m.default_season(pd.Timedelta(hours=1)) == 24
    assert m.default_season(pd.Timedelta(days=7)) == 52
    with pytest.raises(ValueError, match="Pass season= explicitly"):
        m.default_season(pd.Timedelta(days=3))


# ------------------------------------------------------------------------------------------ evaluate
def test_evaluate_counts_closed_missing_and_zero_actual_rows():
    f = _frame([10, 0, np.nan, 0, 20], [12, 0, 5, 1, 18], open=[1, 0, 1, 1, 1])
    overall, _ = m.evaluate(f, levels=())
    assert overall["n_rows"] == 5
    assert overall["n_scored"] == 3
    assert overall["n_closed_excluded"] == 1
    assert overall["n_missing_y_excluded"] == 1
    assert overall["n_zero_y_excluded_from_mape"] == 1
    # scored: (10, 12), (0, 1), (20, 18) -> wape 5 / 30; mape over y > 0: (0.2 + 0.1) / 2
    assert overall["wape"] == pytest.approx(5 / 30)
    assert overall["mape"] == pytest.approx(0.15)


def test_evaluate_scores_intervals_per_level_and_skips_absent_levels():
    f = _frame([10, 20, 30], [10, 20, 30], yhat_lo_80=[8, 21, 25], yhat_hi_80=[12, 25, 30])
    overall, per_series = m.evaluate(f, levels=(80, 95))
    assert overall["coverage_80"] == pytest.approx(2 / 3)
    assert overall["width_80"] == pytest.approx(13 / 3)
    assert "coverage_95" not in overall
    assert per_series.loc[0, "coverage_80"] == pytest.approx(2 / 3)


def test_evaluate_refuses_a_level_with_only_one_bound():
    f = _frame([10], [10], yhat_lo_80=[8])
    with pytest.raises(ValueError, match="only yhat_lo_80; add yhat_hi_80"):
        m.evaluate(f)


def test_evaluate_breaks_down_by_any_column():
    f = pd.concat([_frame([10, 10], [11, 12], series="a"), _frame([20, 20], [20, 18], series="b")])
    f["window"] = [0, 1, 0, 1]
    _, per_window = m.evaluate(f, levels=(), by="window")
    got = per_window.set_index("window")["wape"].to_dict()
    assert got == pytest.approx({0: 1 / 30, 1: 4 / 30})


def test_daily_total_error_aggregates_across_series_before_comparing():
    # a over-forecasts by 2, b under-forecasts by 2: the daily total is exact, the per-row WAPE is not
    f = pd.concat([_frame([10], [12], series="a"), _frame([10], [8], series="b")])
    assert m.daily_total_error(f) == pytest.approx(0.0)
    overall, _ = m.evaluate(f, levels=())
    assert overall["wape"] == pytest.approx(0.2)
    assert overall["daily_total_wape"] == pytest.approx(0.0)


def test_daily_total_error_leaves_out_closed_rows():
    f = _frame([10, 0, 30], [10, 9, 33], open=[1, 0, 1])
    assert m.daily_total_error(f) == pytest.approx(3 / 40)


# ------------------------------------------------------------------------------------------ classification
def test_auprc_auroc_and_brier_against_hand_values():
    y, p = [0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]
    assert m.auroc(y, p) == pytest.approx(0.75)
    # ranked: 0.8 (+), 0.4 (-), 0.35 (+): AP = 0.5 * 1 + 0.5 * 2/3
    assert m.auprc(y, p) == pytest.approx(0.5 + 0.5 * 2 / 3)
    assert m.brier(y, p) == pytest.approx((0.01 + 0.16 + 0.4225 + 0.04) / 4)


def test_ece_with_equal_width_bins():
    # bins [0, .5) and [.5, 1]: |0.5 - 0.125| * 2/4 + |0.5 - 0.85| * 2/4
    assert m.ece([0, 1, 1, 0], [0.1, 0.15, 0.8, 0.9], n_bins=2) == pytest.approx(0.1875 + 0.175)


def test_ece_with_equal_mass_bins_differs_from_equal_width():
    y, p = [0, 0, 1, 1], [0.1, 0.2, 0.3, 0.9]
    # equal mass, edge at the median 0.25: |0 - 0.15| * 1/2 + |1 - 0.6| * 1/2
    assert m.ece(y, p, n_bins=2, strategy="quantile") == pytest.approx(0.075 + 0.2)
    # equal width: {0.1, 0.2, 0.3} and {0.9}: |1/3 - 0.2| * 3/4 + |1 - 0.9| * 1/4
    assert m.ece(y, p, n_bins=2, strategy="uniform") == pytest.approx(0.1 + 0.025)


def test_precision_and_recall_at_a_threshold():
    got = m.precision_recall_at([1, 0, 1, 0, 1], [0.9, 0.8, 0.4, 0.2, 0.6], threshold=0.5)
    assert got["precision"] == pytest.approx(2 / 3)
    assert got["recall"] == pytest.approx(2 / 3)
    assert got["n_flagged"] == 3


def test_precision_is_nan_when_nothing_is_flagged():
    assert math.isnan(m.precision_recall_at([1, 0], [0.2, 0.1], threshold=0.5)["precision"])


def test_ranking_metrics_are_nan_with_a_single_class():
    assert math.isnan(m.auroc([0, 0, 0], [0.1, 0.2, 0.3]))
    assert math.isnan(m.auprc([0, 0, 0], [0.1, 0.2, 0.3]))


def test_evaluate_classifier_returns_every_metric_and_the_base_rate():
    got = m.evaluate_classifier([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8], threshold=0.5)
    assert got["auroc"] == pytest.approx(0.75)
    assert got["base_rate"] == pytest.approx(0.5)
    assert got["precision"] == pytest.approx(1.0)
    assert got["recall"] == pytest.approx(0.5)


def test_classification_metrics_refuse_labels_other_than_0_and_1():
    with pytest.raises(ValueError, match="y_true must hold only 0 and 1; 1 value"):
        m.auprc([0, 2, 1], [0.1, 0.2, 0.3])


def test_classification_metrics_refuse_scores_outside_0_1():
    with pytest.raises(ValueError, match="proba must be probabilities in \\[0, 1\\]"):
        m.brier([0, 1], [0.1, 1.7])
