import numpy as np
import pandas as pd
import pytest

from training.forecast.backtest import Window, backtest, rolling_origin_windows, windows_that_fit
from training.forecast.baselines import SeasonalNaive

DAY = pd.Timedelta(days=1)
T0 = pd.Timestamp("2024-01-01")


def _panel(n_days=35, series=("a", "b")):
    """Weekly pattern 10..70 per series (b = 2 x a), all open."""
    parts = []
    for k, sid in enumerate(series, start=1):
        y = np.tile([10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0], n_days // 7 + 1)[:n_days] * k
        parts.append(
            pd.DataFrame(
                {
                    "series_id": sid,
                    "ds": pd.date_range(T0, periods=n_days),
                    "y": y,
                    "open": np.int8(1),
                    "promo": 0.0,
                }
            )
        )
    return pd.concat(parts, ignore_index=True)


class Recorder:
    """A model that remembers what it was given and forecasts 1.0 everywhere."""

    log: list = []

    def fit(self, frame):
        Recorder.log.append(("fit", frame["ds"].max(), None))
        return self

    def predict(self, horizon, future, levels=()):
        Recorder.log.append(("predict", future["ds"].min(), list(future.columns)))
        out = future[["series_id", "ds"]].copy()
        out["yhat"] = 1.0
        return out


# ------------------------------------------------------------------------------------------ windows
def test_last_window_ends_at_the_last_ds_and_earlier_ones_step_back():
    ds = pd.date_range(T0, periods=30)
    windows = rolling_origin_windows(ds, n_windows=3, step=7, horizon=5)
    last = ds[-1]
    assert windows[-1] == Window(origin=last - 5 * DAY, start=last - 4 * DAY, end=last)
    assert [w.end for w in windows] == [last - 14 * DAY, last - 7 * DAY, last]
    assert all(w.start - w.origin == DAY and w.end - w.start == 4 * DAY for w in windows)


def test_windows_accept_a_frame_with_repeated_ds_and_an_until_date():
    windows = rolling_origin_windows(_panel(30), n_windows=1, step=1, horizon=3, until="2024-01-20")
    assert windows == [
        Window(pd.Timestamp("2024-01-17"), pd.Timestamp("2024-01-18"), pd.Timestamp("2024-01-20"))
    ]


def test_windows_count_positions_in_the_distinct_ds_not_calendar_days():
    ds = pd.DatetimeIndex(["2024-01-01", "2024-01-02", "2024-01-05", "2024-01-06"])  # a gap of two days
    (w,) = rolling_origin_windows(ds, n_windows=1, step=1, horizon=2)
    assert (w.origin, w.start, w.end) == (
        pd.Timestamp("2024-01-02"),
        pd.Timestamp("2024-01-05"),
        pd.Timestamp("2024-01-06"),
    )


def test_windows_refuse_too_little_history():
    with pytest.raises(ValueError, match="need at least 20 distinct ds values; the data has 10"):
        rolling_origin_windows(pd.date_range(T0, periods=10), n_windows=3, step=7, horizon=5)


def test_windows_refuse_a_non_positive_horizon():
    with pytest.raises(ValueError, match="The 'horizon' parameter must be a positive int. Got 0 instead."):
        rolling_origin_windows(pd.date_range(T0, periods=10), n_windows=1, step=1, horizon=0)


# ------------------------------------------------------------------------------------------ leakage
def test_the_model_never_sees_data_after_the_origin():
    Recorder.log = []
    result = backtest(Recorder, _panel(), n_windows=3, step=7, horizon=7, levels=())
    fits = [e for e in Recorder.log if e[0] == "fit"]
    predicts = [e for e in Recorder.log if e[0] == "predict"]
    assert len(fits) == len(predicts) == 3
    for w, (_, seen_until, _), (_, first_future, cols) in zip(result.windows, fits, predicts, strict=True):
        assert seen_until == w.origin
        assert first_future == w.start
        assert "y" not in cols


def test_changing_actuals_after_the_origin_does_not_change_that_windows_forecasts():
    frame = _panel()
    base = backtest(lambda: SeasonalNaive("D"), frame, n_windows=1, step=7, horizon=7)
    changed = frame.copy()
    changed.loc[changed["ds"] > base.windows[0].origin, "y"] *= 10
    other = backtest(lambda: SeasonalNaive("D"), changed, n_windows=1, step=7, horizon=7)
    cols = ["series_id", "ds", "yhat", "yhat_lo_80", "yhat_hi_95"]
    pd.testing.assert_frame_equal(base.predictions[cols], other.predictions[cols])


def test_columns_observed_only_afterwards_can_be_kept_out_of_future():
    Recorder.log = []
    backtest(
        Recorder,
        _panel().assign(customers=1.0),
        n_windows=1,
        step=1,
        horizon=3,
        levels=(),
        drop_from_future=["customers"],
    )
    ((_, _, cols),) = [e for e in Recorder.log if e[0] == "predict"]
    assert "customers" not in cols and "promo" in cols and "open" in cols


# ------------------------------------------------------------------------------------------ results
def test_backtest_with_seasonal_naive_is_exact_on_a_repeating_pattern():
    result = backtest(lambda: SeasonalNaive("D"), _panel(), n_windows=2, step=7, horizon=7)
    p = result.predictions
    assert len(p) == 2 * 2 * 7
    assert (p["yhat"] == p["y"]).all()
    assert p["step"].tolist()[:7] == [1, 2, 3, 4, 5, 6, 7]
    assert result.overall["wape"] == 0.0
    assert result.overall["n_windows"] == 2
    assert result.window_metrics["wape"].tolist() == [0.0, 0.0]
    assert result.window_metrics["origin"].tolist() == [w.origin for w in result.windows]


def test_backtest_counts_its_windows_on_the_given_progress(recorded_progress):
    backtest(lambda: SeasonalNaive("D"), _panel(), n_windows=3, step=7, horizon=7, progress=recorded_progress)
    assert recorded_progress.tasks == {"backtest windows": [1, 1, 1, 3]}


def test_backtest_metrics_match_a_hand_computation():
    frame = _panel(21, series=("a",))
    frame.loc[frame["ds"] == pd.Timestamp("2024-01-21"), "y"] = 77.0  # last day: forecast 70, actual 77
    result = backtest(lambda: SeasonalNaive("D"), frame, n_windows=1, step=1, horizon=7, levels=())
    assert result.overall["wape"] == pytest.approx(7 / (280 + 7))
    assert result.overall["bias"] == pytest.approx(-7 / 287)


def test_backtest_excludes_closed_days_from_the_metrics():
    frame = _panel(28, series=("a",))
    closed = frame["ds"] == pd.Timestamp("2024-01-24")
    frame.loc[closed, ["y", "open"]] = [0.0, 0]
    result = backtest(lambda: SeasonalNaive("D"), frame, n_windows=1, step=1, horizon=7, levels=())
    row = result.predictions.loc[result.predictions["ds"] == pd.Timestamp("2024-01-24")]
    assert row["yhat"].tolist() == [0.0]
    assert result.overall["n_closed_excluded"] == 1
    assert result.overall["wape"] == 0.0


def test_series_that_start_inside_a_window_are_skipped_and_counted():
    frame = _panel(35)
    late = pd.DataFrame(
        {
            "series_id": "late",
            "ds": pd.date_range("2024-02-01", periods=4),
            "y": 5.0,
            "open": np.int8(1),
            "promo": 0.0,
        }
    )
    result = backtest(lambda: SeasonalNaive("D"), pd.concat([frame, late]), n_windows=1, step=1, horizon=7)
    assert result.window_metrics["n_rows_new_series_skipped"].tolist() == [4]
    assert "late" not in set(result.predictions["series_id"])


def test_a_model_that_leaves_rows_without_forecast_is_refused():
    class Lazy(Recorder):
        def predict(self, horizon, future, levels=()):
            return super().predict(horizon, future).iloc[1:]

    with pytest.raises(ValueError, match="left 1 row\\(s\\) of future without a forecast"):
        backtest(Lazy, _panel(), n_windows=1, step=1, horizon=3, levels=())


def test_refit_false_fits_once_and_updates_the_history():
    calls = []

    class Counting(SeasonalNaive):
        def fit(self, frame):
            calls.append("fit")
            return super().fit(frame)

        def update(self, frame):
            calls.append("update")
            return super().update(frame)

    result = backtest(lambda: Counting("D"), _panel(), n_windows=3, step=7, horizon=7, refit=False)
    assert calls == ["fit", "update", "update"]
    assert result.overall["wape"] == 0.0


def test_refit_false_needs_a_model_with_update():
    with pytest.raises(TypeError, match="refit=False needs a model with update"):
        backtest(Recorder, _panel(), n_windows=2, step=7, horizon=7, refit=False, levels=())


def test_eval_key_names_the_windows():
    result = backtest(lambda: SeasonalNaive("D"), _panel(), n_windows=2, step=7, horizon=7)
    assert (
        result.eval_key()
        == "backtest:windows=2:step=7:horizon=7:origins=2024-01-21T00:00:00..2024-01-28T00:00:00"
    )


def test_windows_that_fit_keeps_the_history_each_window_needs():
    frame = pd.DataFrame({"ds": pd.date_range("2024-01-01", periods=100).repeat(2)})  # 100 distinct days
    # the first origin needs `history` distinct ds up to it: (100 - 14 - 42) // 7 + 1 = 7 windows fit
    assert windows_that_fit(frame, 5, step=7, horizon=14, history=42) == 5
    assert windows_that_fit(frame, 9, step=7, horizon=14, history=42) == 7
    days = frame["ds"].drop_duplicates()
    assert int((days <= rolling_origin_windows(frame, 7, step=7, horizon=14)[0].origin).sum()) == 44
    assert int((days <= rolling_origin_windows(frame, 8, step=7, horizon=14)[0].origin).sum()) == 37  # < 42
    assert windows_that_fit(frame, 5, step=7, horizon=14, history=90) == 1  # never fewer than one
