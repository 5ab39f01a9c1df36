"""training/review/forecast_plots.py, the review figures: readable by a non-engineer (title, labelled axes, legend) and drawing
the numbers of the tables they are given."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from training.review import forecast_plots as plots

D = pd.Timestamp("2024-01-01")
DAYS = pd.date_range(D, periods=3, freq="D")


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _labelled(fig) -> None:
    assert fig._suptitle is not None or any(ax.get_title() for ax in fig.axes)
    for ax in fig.axes:
        if ax.get_visible():
            assert ax.get_xlabel() and ax.get_ylabel()


def test_daily_total_draws_actual_and_forecast_totals():
    totals = pd.DataFrame(
        {"window": 0, "ds": DAYS, "actual": [10.0, 20.0, 30.0], "forecast": [11.0, 19.0, 33.0]}
    )
    fig = plots.daily_total(totals, unit="sales")
    _labelled(fig)
    ax = fig.axes[0]
    assert [line.get_label() for line in ax.get_lines()] == ["actual", "forecast"]
    assert list(ax.get_lines()[1].get_ydata()) == [11.0, 19.0, 33.0]
    assert ax.get_ylabel() == "sales per day (all series)"


def test_accuracy_bars_draw_wape_in_percent_worst_on_top():
    table = pd.DataFrame({"series_id": ["a", "b", "c"], "wape": [0.1, 0.3, np.nan]})
    fig = plots.accuracy_bars(table, label="series_id")
    _labelled(fig)
    bars = fig.axes[0].patches
    assert [b.get_width() for b in bars] == pytest.approx([10.0, 30.0])  # c has no WAPE: not drawn
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["a", "b"]


def test_accuracy_bars_name_segments_with_their_attribute():
    table = pd.DataFrame({"segment": ["store_type", "region"], "value": ["a", "Bayern"], "wape": [0.1, 0.2]})
    fig = plots.accuracy_bars(table, label="value")
    labels = {t.get_text() for t in fig.axes[0].get_yticklabels()}
    assert labels == {"store_type = a", "region = Bayern"}


def test_coverage_by_step_draws_observed_coverage_against_the_target():
    table = pd.DataFrame(
        {"steps": ["1-7", "8-14"], "first_step": [1, 8], "n_scored": [7, 7], "coverage_80": [0.8, 0.5]}
    )
    fig = plots.coverage_by_step(table)
    _labelled(fig)
    ax = fig.axes[0]
    assert [b.get_height() for b in ax.patches] == pytest.approx([80.0, 50.0])
    assert [line.get_ydata()[0] for line in ax.get_lines()] == [80]  # the dashed target


def test_what_if_draws_base_scenario_and_delta_per_series():
    result = pd.DataFrame(
        {
            "series_id": ["a"] * 3,
            "ds": DAYS,
            "yhat": [12.0, 10.0, 8.0],
            "yhat_base": [10.0, 10.0, 10.0],
            "yhat_lo_80": 5.0,
            "yhat_hi_80": 15.0,
            "delta": [2.0, 0.0, -2.0],
        }
    )
    fig = plots.what_if(result, ["a"], unit="sales")
    _labelled(fig)
    left, right = fig.axes
    assert [line.get_label() for line in left.get_lines()] == ["base plan", "scenario"]
    assert [b.get_height() for b in right.patches] == [2.0, 0.0, -2.0]


def test_change_by_family_draws_one_bar_per_family_and_series():
    table = pd.DataFrame(
        {
            "series_id": ["a", "b", "all"],
            "promo": [20.0, 5.0, 25.0],
            "calendar": [1.0, -1.0, 0.0],
            "total": [21.0, 4.0, 25.0],
        }
    )
    fig = plots.change_by_family(table, unit="sales")
    _labelled(fig)
    assert [b.get_height() for b in fig.axes[0].patches] == [
        20.0,
        1.0,
        5.0,
        -1.0,
    ]  # the "all" row is not drawn
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["promo", "calendar"]


def _windows(origins: list[int], series: tuple[str, ...] = ("7",), horizon: int = 4) -> pd.DataFrame:
    """Backtest predictions: one window per origin day, ``horizon`` days each."""
    rows = [
        {"window": w, "origin": D + pd.Timedelta(days=o), "series_id": s, "ds": D + pd.Timedelta(days=o + k)}
        for w, o in enumerate(origins)
        for s in series
        for k in range(1, horizon + 1)
    ]
    return pd.DataFrame(rows).assign(y=10.0, yhat=11.0, yhat_lo_80=9.0, yhat_hi_80=13.0)


def test_overlapping_backtest_windows_are_drawn_in_panels_of_their_own():
    fig = plots.forecast_vs_actual(_windows([0, 2]))  # days 1-4 and 3-6 overlap
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in visible] == [
        "series 7, window 0, origin 2024-01-01",
        "series 7, window 1, origin 2024-01-03",
    ]
    for ax in visible:  # each panel holds one forecast line of 4 days
        forecasts = [line for line in ax.get_lines() if line.get_label() == "forecast"]
        assert len(forecasts) == 1 and len(forecasts[0].get_xdata()) == 4


def test_windows_that_do_not_overlap_share_one_axis():
    fig = plots.forecast_vs_actual(_windows([0, 4]))
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in visible] == ["series 7"]


def test_daily_total_draws_overlapping_windows_apart():
    totals = pd.DataFrame(
        {"window": [0, 0, 1, 1], "ds": [DAYS[0], DAYS[1], DAYS[1], DAYS[2]], "actual": 1.0, "forecast": 1.0}
    )
    fig = plots.daily_total(totals, title="Daily total")
    assert [ax.get_title() for ax in fig.axes] == ["Daily total (window 0)", "Daily total (window 1)"]


def test_aggregate_charts_name_the_aggregates_not_series():
    preds = _windows([0], series=("total", "region=Bayern", "region=Berlin"))
    fig = plots.forecast_vs_actual(preds, series=["total", "region=Bayern"], title="F", what="aggregates")
    assert fig._suptitle.get_text() == "F (2 of 3 aggregates)"
    assert [ax.get_title() for ax in fig.axes if ax.get_title()] == ["total", "region=Bayern"]


def test_charts_say_when_they_show_a_subset():
    preds = _windows([0], series=("1", "2", "3"))
    assert (
        plots.forecast_vs_actual(preds, series=["2"], title="F")._suptitle.get_text() == "F (1 of 3 series)"
    )
    assert plots.forecast_vs_actual(preds, series=["1", "2", "3"], title="F")._suptitle.get_text() == "F"
    table = pd.DataFrame({"series_id": [str(i) for i in range(30)], "wape": np.linspace(0.1, 0.4, 30)})
    assert (
        plots.accuracy_bars(table, label="series_id", title="W").axes[0].get_title()
        == "W (the 25 highest of 30)"
    )
    assert plots.accuracy_bars(table.head(5), label="series_id", title="W").axes[0].get_title() == "W"


def test_series_ids_sort_numerically_when_they_are_numbers():
    assert plots.series_order(["1000", "88", "9", 88]) == ["9", "88", "1000"]
    assert plots.series_order(["b", "10", "a"]) == ["10", "a", "b"]
    preds = _windows([0], series=("1000", "88", "9")).assign(y=lambda d: d["series_id"].astype(float))
    assert plots.pick_series(preds, k=3) == ["9", "88", "1000"]
