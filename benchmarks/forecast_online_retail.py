"""Forecasting from a raw order log: Online Retail cut at a date, by country per day, 28 days ahead.

    python benchmarks/forecast_online_retail.py [--cut 2010-11-10 --cut 2011-06-01 ...]
        [--measure orders|quantity|revenue] [--holidays static|GB|none] [--source ../shared/data/online_retail]
        [--ensemble default --ensemble theta,ets,seasonal_naive ...] [--ensemble-windows N] [--skip-lgbm]
        [--skip-mlforecast] [--dump F]

What a shop does with OrderPulse (README "Forecasting from your order log"), on the full Online Retail
2009-2011 log (``features.adapters.online_retail``: purchase invoices as order lines):

1. keep the orders created before the cut (``created_at < cut``): the log as it stood that day;
2. ``features.orders.aggregate_orders(orders, "D", by="country", measure=...)``, as ``features build series``
   does (every country padded with zeros to the log's last day) plus the static table of countries;
3. ``LGBMForecaster(freq="D", horizon=28, holidays=...)`` at default settings, fitted on that history (the
   point forecasts of ``train forecast --horizon 28``'s final model: same defaults, same features; intervals
   split-conformal on its own holdout), and forecast the 28 days after the cut; ``SeasonalNaive("D")`` (same
   weekday last week) and the peer Nixtla mlforecast (``run_mlforecast``) on the same history;
4. score all against the same aggregation of the full log over ``[cut, cut + 28 days)``: WAPE over every
   (country, day) and MAPE of the daily total over all countries (days whose actual total is 0, e.g.
   Saturdays when the shop does not trade, are skipped and counted).

Issue 13's target for the hidden shop: WAPE <= 0.85x seasonal naive and daily-total MAPE <= 12% across a
pre-holiday ramp. Countries that first order after the cut have no history and are not scored (counted).
One table: per cut and model WAPE, WAPE x seasonal naive, RMSPE (country-days with orders), daily-total MAPE,
80% coverage, train seconds and peak MB (``measure``), then the mean over the cuts.
Results (README "Accuracy on a full order log"; history and analysis: docs/accuracy/order_log.md): the default
forecaster does not reach it on this log.
"""

from __future__ import annotations

import argparse
import copy
import os
import warnings

import numpy as np
import pandas as pd

from autogluon_peer import add_autogluon_argument, run_autogluon
from measure import measure, mlforecast_output, shared_data  # noqa: I001 - also puts the repo on sys.path

from features.adapters import online_retail  # noqa: E402
from features.orders import aggregate_orders  # noqa: E402
from features.validation import validate  # noqa: E402
from training.forecast.baselines import SeasonalNaive  # noqa: E402
from training.forecast.ensemble import DEFAULT_MEMBERS, EnsembleForecaster  # noqa: E402
from training.forecast.forecaster import LGBMForecaster  # noqa: E402
from training.metrics import coverage, rmspe, wape  # noqa: E402

warnings.simplefilter("ignore")
HORIZON = 28
DEFAULT_CUTS = ("2010-10-01", "2010-11-10", "2011-03-01", "2011-06-01", "2011-08-01")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", default=str(shared_data("online_retail")))
    parser.add_argument(
        "--cut", action="append", help="cut date (repeatable); default: " + ", ".join(DEFAULT_CUTS)
    )
    parser.add_argument("--measure", default="orders", choices=("orders", "quantity", "revenue"))
    parser.add_argument("--holidays", default="static", help="static (each country's calendar), GB, or none")
    parser.add_argument("--skip-mlforecast", action="store_true")
    parser.add_argument(
        "--ensemble",
        action="append",
        default=[],
        help="also fit EnsembleForecaster with these members (e.g. lgbm,theta,ets,seasonal_naive) per cut; "
        "repeatable (one row per member list); 'default' for its default members",
    )
    parser.add_argument("--skip-lgbm", action="store_true", help="do not fit the LightGBM alone")
    parser.add_argument(
        "--ensemble-windows",
        type=int,
        default=None,
        help="the ensemble's backtest windows (default: its own)",
    )
    parser.add_argument("--dump", default="", help="write every model's scored rows to this Parquet file")
    add_autogluon_argument(parser)
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    tables, _ = online_retail.load(args.source)
    orders, vreport = validate(tables["orders"], "orders")
    print(
        f"order lines: {len(orders):,} ({orders['created_at'].min()} .. {orders['created_at'].max()}); {vreport}"
    )
    holidays = None if args.holidays.lower() == "none" else args.holidays
    full = aggregate_orders(orders, "D", by="country", measure=args.measure).series
    print(f"measure={args.measure} holidays={holidays} horizon={HORIZON}")
    last_day = full["ds"].max()
    rows, scored_rows = [], []
    for cut in args.cut or DEFAULT_CUTS:
        cut = pd.Timestamp(cut)
        if cut + pd.Timedelta(days=HORIZON - 1) > last_day:
            print(
                f"{cut.date()} skipped: the log ends {last_day.date()}, before the {HORIZON} days after the cut"
            )
            continue
        ensembles = [DEFAULT_MEMBERS if e == "default" else tuple(e.split(",")) for e in args.ensemble]
        rows += _rows(
            orders,
            full,
            cut,
            args.measure,
            holidays,
            not args.skip_mlforecast,
            ensembles,
            not args.skip_lgbm,
            scored_rows,
            args.autogluon,
            args.ensemble_windows,
        )
        if args.dump:
            pd.concat(scored_rows, ignore_index=True).to_parquet(args.dump)
    table = pd.DataFrame(rows)
    print("\n" + table.to_string(index=False, float_format="{:.3f}".format))
    means = table.drop(columns=["cut", "note"]).groupby("model", sort=False).mean()
    print(f"\nmean over {table['cut'].nunique()} cuts\n" + means.to_string(float_format="{:.3f}".format))
    print("\nTargets (issue 13/17): WAPE <= 0.85x seasonal naive and daily-total MAPE <= 12%")
    for model in means.index.drop("seasonal naive"):
        ours = means.loc[model]
        mine = table.loc[table["model"] == model]
        worst = mine[["x naive", "total MAPE"]].max()
        print(
            f"  {model}: WAPE x naive mean {ours['x naive']:.2f}, worst {worst['x naive']:.2f}, met at "
            f"{int((mine['x naive'] <= 0.85).sum())}/{len(mine)} cuts; total MAPE mean {ours['total MAPE']:.1%}, "
            f"worst {worst['total MAPE']:.1%}, met at {int((mine['total MAPE'] <= 0.12).sum())}/{len(mine)} cuts"
        )


def cut_log(
    orders: pd.DataFrame, full: pd.DataFrame, cut: pd.Timestamp, measure_: str
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, list[str]]:
    """``(train, static, actual, new_series)``: the log as it stood at ``cut`` aggregated by country per day,
    and the same aggregation of the full log over the ``HORIZON`` days after it (known countries only)."""
    history = aggregate_orders(orders.loc[orders["created_at"] < cut], "D", by="country", measure=measure_)
    train, static = history.series, history.static
    end = cut + pd.Timedelta(days=HORIZON)
    actual = full.loc[(full["ds"] >= cut) & (full["ds"] < end)]
    new_series = sorted(set(actual["series_id"]) - set(train["series_id"]))
    actual = actual.loc[actual["series_id"].isin(train["series_id"])]
    if train["ds"].max() < cut - pd.Timedelta(days=1):
        # the log's last day before the cut had no order at all: pad to the day before the cut
        pad = pd.date_range(train["ds"].max() + pd.Timedelta(days=1), cut - pd.Timedelta(days=1), freq="D")
        ids = train["series_id"].unique()
        extra = pd.DataFrame({"series_id": np.repeat(ids, len(pad)), "ds": np.tile(pad, len(ids)), "y": 0.0})
        train = pd.concat([train, extra.astype({"series_id": "string"})], ignore_index=True)
    return train, static, actual, new_series


def _rows(
    orders: pd.DataFrame,
    full: pd.DataFrame,
    cut: pd.Timestamp,
    measure_: str,
    holidays: str | None,
    with_mlforecast: bool,
    ensembles: list[tuple[str, ...]] = (),
    with_lgbm: bool = True,
    scored_rows: list[pd.DataFrame] | None = None,
    autogluon: str = "",
    ensemble_windows: int | None = None,
) -> list[dict]:
    """One row per model for this cut: WAPE, WAPE x seasonal naive, RMSPE, daily-total MAPE, 80% coverage,
    train seconds, peak MB."""
    train, static, actual, new_series = cut_log(orders, full, cut, measure_)
    runs = {"seasonal naive": lambda: _naive(train)}
    if with_lgbm:
        runs["OrderPulse"] = lambda: _orderpulse(train, static, holidays)
    if with_mlforecast:
        runs["mlforecast"] = lambda: run_mlforecast(train)
    for members in ensembles:
        name = "ensemble" if members == DEFAULT_MEMBERS else "ensemble " + "+".join(members)
        runs[name] = lambda m=members: _ensemble(train, static, holidays, m, ensemble_windows)
    if autogluon:
        runs["AutoGluon"] = lambda: _autogluon(train, autogluon)
    out = []
    for name, fn in runs.items():
        pred, m, note = fn()
        scored = pred.merge(actual, on=["series_id", "ds"], how="right").fillna(
            {"yhat": 0.0, "yhat_lo_80": 0.0, "yhat_hi_80": 0.0, "pooled_lo_80": 0.0, "pooled_hi_80": 0.0}
        )
        mape, skipped = _total_mape(scored)
        if scored_rows is not None:
            scored_rows.append(scored.assign(cut=cut, model=name))
        cov = (
            coverage(scored["y"], scored["yhat_lo_80"], scored["yhat_hi_80"])
            if "yhat_lo_80" in scored.columns
            else np.nan
        )
        if "pooled_lo_80" in scored.columns:
            sparse = scored["series_id"] != scored.groupby("series_id")["y"].sum().idxmax()
            s = scored.loc[sparse]
            note += (
                f" cov80 pooled quantiles {coverage(scored['y'], scored['pooled_lo_80'], scored['pooled_hi_80']):.3f}"
                f" (all but the largest series: pooled {coverage(s['y'], s['pooled_lo_80'], s['pooled_hi_80']):.3f},"
                f" binned {coverage(s['y'], s['yhat_lo_80'], s['yhat_hi_80']):.3f});"
            )
        out.append(
            {
                "cut": str(cut.date()),
                "model": name,
                "WAPE": wape(scored["y"], scored["yhat"]),
                "RMSPE": rmspe(scored["y"], scored["yhat"]),
                "total MAPE": mape,
                "cov80": cov,
                "train s": m.seconds,
                "peak MB": m.peak_mb,
                "note": note,
            }
        )
    naive = out[0]["WAPE"]
    for row in out:
        row["x naive"] = row["WAPE"] / naive
    out[0]["note"] += f" {skipped} zero-total days skipped; {len(new_series)} new countries not scored"
    return out


def _orderpulse(train: pd.DataFrame, static: pd.DataFrame, holidays: str | None):
    with measure() as m:
        # "refit": boosters on all the history, as train forecast's final model (the default "split" keeps the
        # boosters fitted 28 days before the cut: WAPE 0.475 instead of 0.308 at 2010-11-10), intervals from
        # the holdout before the cut
        model = LGBMForecaster(freq="D", horizon=HORIZON, holidays=holidays, calibrate="refit")
        model.fit(train, static=static)
    pred = model.predict(HORIZON, levels=(80,))
    # the intervals as before issue 13's fix (quantiles pooled over every forecast volume), for comparison
    pooled = copy.copy(model)
    pooled.residual_bins_ = {}
    p80 = pooled.predict(HORIZON, levels=(80,))[["series_id", "ds", "yhat_lo_80", "yhat_hi_80"]]
    pred = pred.merge(p80.rename(columns=lambda c: c.replace("yhat_", "pooled_")), on=["series_id", "ds"])
    return pred, m, f"transform {model.target_transform_};"


def _ensemble(
    train: pd.DataFrame,
    static: pd.DataFrame,
    holidays: str | None,
    members: tuple[str, ...],
    n_windows: int | None = None,
):
    """The ensemble at default settings on the same history; the note gives its weights and dropped members."""
    with measure() as m:
        model = EnsembleForecaster(freq="D", horizon=HORIZON, holidays=holidays, members=members)
        if n_windows:
            model.set_params(n_windows=n_windows)
        model.fit(train, static=static)
    weights = " ".join(f"{n}={v:.2f}" for n, v in model.weights_.items())
    return model.predict(HORIZON, levels=(80,)), m, f"weights {weights}; dropped {model.dropped_ or 'none'};"


def _autogluon(train: pd.DataFrame, python: str):
    """AutoGluon-TimeSeries (tabular + ETS + Theta, weighted ensemble, 20 minutes at most) in its own venv, on
    the same history without covariates (it has no holiday calendar of its own)."""
    pred, m, info = run_autogluon(
        train, train.iloc[:0][["series_id", "ds"]], freq="D", horizon=HORIZON, covariates=[], python=python
    )
    weights = " ".join(f"{n}={v:.2f}" for n, v in (info.get("weights") or {}).items())
    return pred, m, f"weights {weights};"


def _naive(train: pd.DataFrame):
    with measure() as m:
        model = SeasonalNaive("D").fit(train)
    return model.predict(HORIZON, levels=(80,)), m, ""


def run_mlforecast(train: pd.DataFrame):
    """Nixtla mlforecast as its documentation shows for trending daily data: LightGBM on lags 1..28 and rolling
    means, date features, target transforms ``log1p`` then weekly differences (``Differences([7])``),
    recursive, conformal intervals from 2 windows."""
    import lightgbm as lgb
    from mlforecast import MLForecast
    from mlforecast.lag_transforms import RollingMean
    from mlforecast.target_transforms import Differences, GlobalSklearnTransformer
    from mlforecast.utils import PredictionIntervals
    from sklearn.preprocessing import FunctionTransformer

    from utilsforecast.preprocessing import fill_gaps

    df = train[["series_id", "ds", "y"]].rename(columns={"series_id": "unique_id"})
    # a country had no orders before its first one: zeros from the log's first day, so that every series is
    # long enough for mlforecast's conformal windows (countries first seen days before the cut)
    df = fill_gaps(df.assign(unique_id=df["unique_id"].astype(str)), freq="D", start="global", end="global")
    df = df.assign(y=df["y"].fillna(0.0))
    with measure() as m:
        fcst = MLForecast(
            models={
                "lgbm": lgb.LGBMRegressor(n_estimators=300, learning_rate=0.05, num_leaves=31, verbose=-1)
            },
            freq="D",
            lags=[1, 7, 14, 21, 28],
            lag_transforms={1: [RollingMean(7), RollingMean(28)], 7: [RollingMean(4 * 7)]},
            date_features=["dayofweek", "month", "day", "dayofyear"],
            target_transforms=[
                GlobalSklearnTransformer(FunctionTransformer(np.log1p, np.expm1)),
                Differences([7]),
            ],
            num_threads=2,
        )
        fcst.fit(df, static_features=[], prediction_intervals=PredictionIntervals(n_windows=2, h=HORIZON))
    pred = mlforecast_output(fcst.predict(HORIZON, level=[80]), (80,))
    return pred, m, "log1p + Differences([7])"


def _total_mape(frame: pd.DataFrame) -> tuple[float, int]:
    daily = frame.groupby("ds")[["y", "yhat"]].sum()
    scored = daily["y"] > 0
    errors = (daily["yhat"] - daily["y"]).abs()[scored] / daily["y"][scored]
    return float(errors.mean()), int((~scored).sum())


if __name__ == "__main__":
    main()
