"""``what_if_levels`` (training/forecast/whatif.py): a promo scenario's effect on the regions and the total of a
model trained with hierarchy levels, on four sample stores in three regions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features.hierarchy import Hierarchy
from features.validation import validate
from training.forecast.backtest import backtest
from training.forecast.forecaster import LGBMForecaster
from training.forecast.hierarchy import train_hierarchy
from training.forecast.whatif import what_if_levels
from training.review.scenarios import promo_change, what_if_summary

pytest.importorskip("hierarchicalforecast")

SAMPLE = Path(__file__).resolve().parents[3] / "data" / "sample" / "rossmann"
STORES = ["88", "89", "183", "817"]  # SachsenAnhalt, Bayern x2, Berlin
HORIZON = 14
ORIGIN = pd.Timestamp("2015-05-31")


def _table(name: str) -> pd.DataFrame:
    df = pd.read_csv(SAMPLE / f"{name}.csv", dtype={"series_id": str})
    return validate(df.loc[df["series_id"].isin(STORES)], name)[0]


@pytest.fixture(scope="module")
def fitted():
    series = _table("series")
    tables = {"covariates": _table("covariates"), "weather": None, "static": _table("static")}
    history = series.loc[series["ds"] <= ORIGIN]

    def make_model(levels: tuple[int, ...] = ()) -> LGBMForecaster:
        return LGBMForecaster(
            freq="D",
            horizon=HORIZON,
            levels=levels,
            params={"n_estimators": 60, "num_leaves": 15, "min_child_samples": 5},
            calibrate=bool(levels),
        )

    bt = backtest(
        make_model, history, n_windows=2, step=7, horizon=HORIZON, refit=False, levels=(), fit_kwargs=tables
    )
    model = make_model((80,)).fit(history, **tables)
    hierarchy = Hierarchy.from_static(tables["static"], STORES, ("region", "total"))
    train_hierarchy(model, hierarchy, history, tables, bt.predictions, n_windows=2, step=7, horizon=HORIZON)
    return model, series.loc[series["ds"] <= ORIGIN + pd.Timedelta(days=HORIZON)]


def _promo_week(model: LGBMForecaster) -> tuple[pd.DataFrame, pd.Timestamp]:
    """A promo week for every store on a week of the horizon whose stored plan has no promo."""
    cov = model.tables_["covariates"]
    days = pd.date_range(ORIGIN + pd.Timedelta(days=1), periods=HORIZON, freq="D")
    stored = cov.loc[cov["ds"].isin(days)].groupby("ds")["promo"].sum()
    start = next(d for d in days[: HORIZON - 6] if stored.reindex(pd.date_range(d, periods=5)).sum() == 0)
    return promo_change(start, days=5), start


def test_a_promo_scenario_is_coherent_at_every_level_and_step(fitted):
    model, series = fitted
    changes, _ = _promo_week(model)
    out = what_if_levels(model, series, "region,total", covariate_changes=changes, origin=ORIGIN)
    assert set(out["level"]) == {"series", "region", "total"}
    assert len(out) == (4 + 3 + 1) * HORIZON
    for col in ("yhat", "yhat_base", "delta"):
        wide = out.pivot_table(index="ds", columns="level", values=col, aggfunc="sum")
        np.testing.assert_allclose(wide["series"], wide["total"], rtol=1e-9, atol=1e-6)
        np.testing.assert_allclose(wide["region"], wide["total"], rtol=1e-9, atol=1e-6)
    bayern = out.loc[out["series_id"] == "Bayern"].set_index("ds")["delta"]
    members = out.loc[out["series_id"].isin(["89", "183"])].groupby("ds")["delta"].sum()
    np.testing.assert_allclose(bayern, members.reindex(bayern.index), rtol=1e-9, atol=1e-6)


def test_a_promo_week_raises_the_total_on_its_open_days_and_the_summary_reads_per_level(fitted):
    model, series = fitted
    changes, start = _promo_week(model)
    out = what_if_levels(model, series, ["total"], covariate_changes=changes, origin=ORIGIN)
    assert set(out["level"]) == {"series", "total"}  # only the levels asked for
    total = out.loc[out["level"] == "total"].set_index("ds")
    promo_days = pd.date_range(start, periods=5)
    week = total.loc[promo_days]
    open_days = week["yhat_base"] > 0
    assert open_days.sum() >= 4 and (week.loc[~open_days, "delta"] == 0).all()  # a Sunday stays closed
    assert (week.loc[open_days, "delta"] > 0).all()
    assert week.loc[open_days, "delta_pct"].mean() > 0.05  # promo lifts Rossmann sales by tens of percent
    summary = what_if_summary(out, start, promo_days[-1])
    row = summary.loc[summary["level"] == "total"].iloc[0]
    assert row["days"] == 5
    assert row["delta"] == pytest.approx(summary.loc[summary["level"] == "series", "delta"].sum())
    assert "all" not in set(summary["series_id"])


def test_levels_the_model_was_not_trained_with_are_refused(fitted):
    model, series = fitted
    with pytest.raises(ValueError, match=r"Level\(s\) \['store_type'\] were not trained"):
        what_if_levels(model, series, "store_type", origin=ORIGIN)
