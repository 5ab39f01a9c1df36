"""Coherent store / state / total forecasts on full Rossmann, last 42 days held out: bottom-up vs the chosen
reconciliation, in one run.

The pipeline is the training job's (``orderpulse train forecast --levels region,total``): the store model
(``LGBMForecaster``) and the aggregate model (states and the total, ``training.forecast.hierarchy``) are
backtested on the same 7 rolling windows (42 days, every 14) of the history before the cut; every
reconciliation method is scored there by WAPE per level, the default is chosen, the per-level intervals are
calibrated on those windows, both models are refitted on all history and forecast the held-out 42 days.

Reported per method (bottom-up = the sum of the store forecasts, the chosen one, and with ``--bias-correction``
(base forecasts turned from medians into means) also the plain sum without the correction): WAPE per level (store, state, total), the
total's daily MAPE, 80% interval coverage per level, the largest coherence gap (|sum of stores - state|,
|sum of states - total|), and the training time with the machine's load; also each method's backtest WAPE per
window and level, and the correction's factors per level (1 without ``--bias-correction``). ``--cut`` moves the whole run earlier (a backtest of
it: ``--cut 2015-03-27 --n-windows 4`` keeps the first window after the 2014H2 gap).
Session 6 (loaded machine, load average 2-7 on 2 cores; store stage 2,319 s, hierarchy 547 s), before the
session's changes: bottom-up 0.0732 / 0.0417 / 0.0336, MAPE 0.0447, total 80% coverage 0.833; ``mint_shrink``
chosen, 0.0777 / 0.0433 / 0.0359, MAPE 0.0451. The median-to-mean correction on the held-out days (bottom-up
total): WAPE 0.0343, MAPE 0.0444, bias -1.4% (docs/accuracy/hierarchy.md). After the changes (MinTrace
scored with the covariance of the non-overlapping windows; hierarchy 598 s, load average 8): backtest WAPE
bottom-up 0.0817 / 0.0469 / 0.0391, ``mint_shrink`` 0.0860 / 0.0496 / 0.0428, so bottom-up is chosen.
Targets (issue 15): daily-total MAPE <= 2.5%; state WAPE no worse than bottom-up; the total's 80% interval
covers 60-95% of the days.
Run: ``.venv/bin/python benchmarks/forecast_hierarchy_rossmann.py``.
"""

from __future__ import annotations

import argparse
import os
import pickle
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from measure import measure  # noqa: I001 - also puts the repo on sys.path
from forecast_rossmann import rossmann_holdout

from features.hierarchy import Hierarchy, aggregate_tables
from training.forecast.backtest import backtest
from training.forecast.daykinds import fit_calendar_correction
from training.forecast.forecaster import LGBMForecaster
from training.forecast.hierarchy import fit_hierarchy, forecast_hierarchy
from training.metrics import coverage, mape, wape

warnings.simplefilter("ignore")
HORIZON = 42
LEVELS = ("region", "total")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    # 7 windows every 14 days: origins 2015-01-02 .. 2015-03-27, all after the 2014H2 gap of the 180 Bayern
    # stores (a window starting inside the gap cannot forecast those stores: no covariates there)
    parser.add_argument("--n-windows", type=int, default=7)
    parser.add_argument("--step", type=int, default=14)
    parser.add_argument("--aggregate-target", default="sum", choices=("sum", "per_open"))
    parser.add_argument(
        "--aggregate-closures",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="closure features (closed shares before/after each day) for the aggregate model (default: "
        "fit_hierarchy's)",
    )
    parser.add_argument(
        "--bias-correction",
        action="store_true",
        help="turn the base forecasts from medians into means before reconciling (opt-in, see fit_hierarchy)",
    )
    parser.add_argument(
        "--calendar-correction",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="correct the store forecasts by the store model's holiday/promo-day bias learned on the backtest "
        "windows, as train forecast does (LGBMForecaster.correct_from; default on); the uncorrected bottom-up is "
        "printed too",
    )
    parser.add_argument("--days-csv", help="write the total's per-day errors (held-out and backtest) here")
    parser.add_argument("--cache", help="folder to keep the store model's backtest + forecast between runs")
    parser.add_argument(
        "--cut",
        default=None,
        help="last training day (YYYY-MM-DD), default the last 42 days held out; an earlier cut is a backtest of "
        "the whole run (keep its first window after the 2014H2 gap: e.g. --cut 2015-03-27 --n-windows 4)",
    )
    args = parser.parse_args()

    train, test, tables = rossmann_holdout(HORIZON, cut=args.cut)
    cut = train["ds"].max()
    print(
        f"Rossmann: {train['series_id'].nunique():,} stores, train ..{cut.date()} ({len(train):,} rows), holdout "
        f"{HORIZON} days; load average at start {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores",
        flush=True,
    )

    def make_model() -> LGBMForecaster:
        return LGBMForecaster(freq="D", horizon=HORIZON, levels=(), calibrate=False)

    hierarchy = Hierarchy.from_static(tables["static"], train["series_id"].unique(), LEVELS)
    future = test.drop(columns="y")
    bt_pred, series_pred, store_seconds = _store_stage(make_model, train, future, tables, args)
    print(f"store model: backtest + final fit {store_seconds:.0f} s", flush=True)
    raw_series_pred = series_pred
    if args.calendar_correction:
        # what train forecast does after its backtest (LGBMForecaster.correct_from), on this backtest's windows
        correction = fit_calendar_correction(bt_pred, tables["covariates"], "D")
        series_pred = correction.apply(series_pred, tables["covariates"])
        print(
            "calendar correction (per day kind; backtest days): "
            + ", ".join(
                f"{k} {np.expm1(v):+.1%} ({correction.days[k]} d)" for k, v in correction.factors.items()
            )
        )
    with measure() as m_agg:
        rec, counts = fit_hierarchy(
            hierarchy,
            train,
            tables,
            bt_pred,
            make_model,
            n_windows=args.n_windows,
            step=args.step,
            horizon=HORIZON,
            aggregate_target=args.aggregate_target,
            bias_correction=args.bias_correction,
            **({} if args.aggregate_closures is None else {"aggregate_closures": args.aggregate_closures}),
        )
    print(f"hierarchy: aggregate model backtest + fit + method choice {m_agg.seconds:.0f} s", flush=True)
    print(f"  chosen method: {rec.method_}; {counts}")
    print("  backtest WAPE per method and level:")
    print(rec.metrics_.pivot(index="method", columns="level", values="wape").round(4).to_string())
    print("  backtest WAPE per window (aggregate levels), bottom_up and the other methods:")
    wm = rec.window_metrics_.loc[rec.window_metrics_["level"] != "series"]
    print(wm.pivot_table(index=["level", "window"], columns="method", values="wape").round(4).to_string())
    factors = rec.factors_.groupby(rec.level_of_.reindex(rec.factors_.index).to_numpy())
    print("  bias correction (smearing factors per level: mean, min, max):")
    print(factors.agg(["mean", "min", "max"]).round(4).to_string())
    print(
        f"  backtest 80% coverage per level ({rec.method_}; each window by quantiles of the other windows):"
    )
    print("  " + ", ".join(f"{lv} {c.get('coverage_80', np.nan):.3f}" for lv, c in rec.coverage_.items()))

    history = pd.concat([train, future.assign(y=np.nan)], ignore_index=True)
    actual = _actuals(hierarchy, test)
    results = {}
    for method in dict.fromkeys(["bottom_up", rec.method_]):
        out = forecast_hierarchy(
            rec, series_pred, history, tables, horizon=HORIZON, origin=cut, levels=(80,), method=method
        )
        results[method] = (_score(out.merge(actual, on=["level", "series_id", "ds"], how="left")), out)
    if args.calendar_correction:
        out = forecast_hierarchy(
            rec,
            raw_series_pred,
            history,
            tables,
            horizon=HORIZON,
            origin=cut,
            levels=(80,),
            method="bottom_up",
        )
        results["bottom_up, no calendar correction"] = (
            _score(out.merge(actual, on=["level", "series_id", "ds"], how="left")),
            out,
        )
    if args.bias_correction:
        # the plain sum of the store model's forecasts (no correction, no reconciler): point metrics only
        raw = _plain_sums(hierarchy, series_pred)
        results["bottom_up, no bias correction"] = (
            _score(raw.merge(actual, on=["level", "series_id", "ds"], how="left")),
            raw,
        )

    print(
        "\n| method | store WAPE | state WAPE | total WAPE | total daily MAPE | store 80% cov | state 80% cov "
        "| total 80% cov | max coherence gap |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for method, (sc, out) in results.items():
        print(
            f"| {method} | {sc['series']['wape']:.4f} | {sc['region']['wape']:.4f} | {sc['total']['wape']:.4f} | "
            f"{sc['total']['mape']:.4f} | {sc['series']['cov80']:.3f} | {sc['region']['cov80']:.3f} | "
            f"{sc['total']['cov80']:.3f} | {_coherence_gap(out):.2e} |"
        )
    train_s = store_seconds + m_agg.seconds
    print(
        f"\ntraining (store backtest+fit {store_seconds:.0f} s + hierarchy {m_agg.seconds:.0f} s) = "
        f"{train_s:.0f} s; load average now {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )
    chosen, bu = results[rec.method_][0], results["bottom_up"][0]
    days = _day_kinds(_with_promo(pd.concat([train, test], ignore_index=True), tables["covariates"]))
    print("\nThe total's daily error on the held-out days (pct error = yhat / y - 1, open days):")
    for method, (_, out) in results.items():
        total = out.loc[out["level"] == "total"].merge(actual, on=["level", "series_id", "ds"])
        print(f"-- {method}")
        print(_total_diagnostics(total.merge(days, left_on="ds", right_index=True)).to_string())
    print(
        "\nThe total on the backtest windows (several cuts before the held-out days), per window and per day kind:"
    )
    print(_backtest_by_window(rec, ["bottom_up", rec.method_], days).to_string())
    if args.days_csv:
        _write_days(args.days_csv, results, rec, actual, days)
    print("\nTargets:")
    for what, ok, value in (
        ("daily-total MAPE <= 2.5%", chosen["total"]["mape"] <= 0.025, f"{chosen['total']['mape']:.4f}"),
        (
            "state WAPE no worse than bottom-up",
            chosen["region"]["wape"] <= bu["region"]["wape"] + 1e-12,
            f"{chosen['region']['wape']:.4f} vs {bu['region']['wape']:.4f}",
        ),
        (
            "total 80% interval covers 60-95% of days",
            0.60 <= chosen["total"]["cov80"] <= 0.95,
            f"{chosen['total']['cov80']:.3f}",
        ),
    ):
        print(f"  [{'met' if ok else 'MISSED'}] {what}: {value}")


def _store_stage(make_model, train, future, tables, args) -> tuple[pd.DataFrame, pd.DataFrame, float]:
    """The store model's backtest predictions and held-out forecast, with their time; read from / written to
    ``--cache`` (a pickle keyed by the window settings) so the hierarchy part can be rerun alone."""
    path = None
    if args.cache:
        cut = "" if args.cut is None else f"_cut{args.cut}"
        path = Path(args.cache) / f"store_stage_w{args.n_windows}_s{args.step}_h{HORIZON}{cut}.pkl"
        if path.exists():
            with path.open("rb") as fh:
                cached = pickle.load(fh)  # noqa: S301 - a file this benchmark wrote itself
            print(f"store stage read from {path} (measured when it was written)", flush=True)
            return cached["backtest"], cached["forecast"], cached["seconds"]
    with measure() as m:
        bt = backtest(
            make_model,
            train,
            n_windows=args.n_windows,
            step=args.step,
            horizon=HORIZON,
            refit=False,
            levels=(),
            fit_kwargs=tables,
        )
        model = make_model().fit(train, **tables)
        series_pred = model.predict(HORIZON, future, levels=())
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as fh:
            pickle.dump({"backtest": bt.predictions, "forecast": series_pred, "seconds": m.seconds}, fh)
    return bt.predictions, series_pred, m.seconds


def _plain_sums(hierarchy: Hierarchy, series_pred: pd.DataFrame) -> pd.DataFrame:
    """``level, series_id, ds, yhat`` of the stores and of every aggregate as the plain sum of the store
    forecasts (interval columns NaN)."""
    keys = hierarchy.keys().set_index("key")
    pred = series_pred.assign(series_id=series_pred["series_id"].astype("string"))
    sums = (
        pred.merge(hierarchy.membership(), on="series_id")
        .groupby(["key", "ds"], as_index=False)["yhat"]
        .sum()
    )
    sums = sums.assign(
        level=keys["level"].reindex(sums["key"].astype(str)).to_numpy(),
        series_id=keys["group"].reindex(sums["key"].astype(str)).to_numpy(),
    )
    stores = pred.assign(level="series", series_id=pred["series_id"].astype(str))
    cols = ["level", "series_id", "ds", "yhat"]
    return pd.concat([stores[cols], sums[cols]], ignore_index=True).assign(
        yhat_lo_80=np.nan, yhat_hi_80=np.nan
    )


def _actuals(hierarchy: Hierarchy, test: pd.DataFrame) -> pd.DataFrame:
    agg, _, _, _ = aggregate_tables(hierarchy, test)
    keys = hierarchy.keys().set_index("key")
    agg = agg.assign(
        level=keys["level"].reindex(agg["series_id"].astype(str)).to_numpy(),
        series_id=keys["group"].reindex(agg["series_id"].astype(str)).to_numpy(),
        actual_open=agg["open"],
    )
    stores = test.assign(level="series", series_id=test["series_id"].astype(str), actual_open=test["open"])
    cols = ["level", "series_id", "ds", "y", "actual_open"]
    return pd.concat([stores[cols], agg[cols]], ignore_index=True)


def _score(frame: pd.DataFrame) -> dict[str, dict[str, float]]:
    out = {}
    for lv, g in frame.groupby("level"):
        op = g["actual_open"].to_numpy()
        out[str(lv)] = {
            "wape": wape(g["y"], g["yhat"], op),
            "mape": mape(g["y"], g["yhat"], op),
            "cov80": (
                coverage(g["y"], g["yhat_lo_80"], g["yhat_hi_80"], op)
                if g["yhat_lo_80"].notna().any()
                else np.nan
            ),
        }
    return out


def _with_promo(series: pd.DataFrame, covariates: pd.DataFrame | None) -> pd.DataFrame:
    """``series`` plus the stores' ``promo`` flag of that day (when the covariates have one)."""
    if covariates is None or "promo" not in covariates.columns:
        return series
    promo = covariates[["series_id", "ds", "promo"]].astype({"series_id": "string"})
    return series.astype({"series_id": "string"}).merge(promo, on=["series_id", "ds"], how="left")


def _day_kinds(series: pd.DataFrame) -> pd.DataFrame:
    """Per day: ``open_share`` of the stores and ``kind``: ``Sunday`` / ``holiday`` (mostly closed: <= 10% of the
    stores open), ``regional holiday`` (10-90% open), ``before holiday`` / ``after holiday`` (a normal day next to
    a mostly or partly closed weekday), else ``promo`` / ``no promo`` when most stores run the promo."""
    g = series.groupby("ds")
    share = g["open"].mean()
    promo = g["promo"].mean() if "promo" in series.columns else pd.Series(0.0, index=share.index)
    weekday = share.index.dayofweek
    holiday = (share < 0.9) & (weekday != 6)
    normal = share >= 0.9
    before = normal & holiday.shift(-1, fill_value=False)
    after = normal & holiday.shift(1, fill_value=False)
    kind = np.select(
        [share <= 0.1, share < 0.9, before, after, promo.reindex(share.index).fillna(0) > 0.5],
        ["holiday", "regional holiday", "before holiday", "after holiday", "promo"],
        "no promo",
    )
    kind = np.where((share <= 0.1) & (weekday == 6), "Sunday", kind)
    return pd.DataFrame({"open_share": share, "kind": kind}, index=share.index)


def _total_diagnostics(total: pd.DataFrame) -> pd.DataFrame:
    """MAPE, bias (mean pct error), spread (std of pct error) and share of the summed absolute pct error of the
    total per weekday and per day kind (``_day_kinds``)."""
    t = total.loc[(total["actual_open"] == 1) & (total["y"] > 0)].copy()
    t["pct"] = t["yhat"] / t["y"] - 1.0
    t["day"] = t["ds"].dt.day_name().str[:3]
    rows = []
    for by in ("day", "kind"):
        for key, g in t.groupby(by, sort=False):
            rows.append(_pct_row(f"{by}={key}", g["pct"], t["pct"]))
    rows.append(_pct_row("all", t["pct"], t["pct"]))
    return pd.DataFrame(rows).set_index("cut")


def _backtest_by_window(rec, methods, days: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for method in dict.fromkeys(methods):
        bt = rec.backtest_[method]
        t = bt.loc[(bt["level"] == "total") & (bt["open"] == 1) & (bt["y"] > 0)]
        t = t.merge(days, left_on="ds", right_index=True)
        pct = t["yhat"] / t["y"] - 1.0
        for w, g in t.groupby("window"):
            rows.append(_pct_row(f"{method} w{w} {g['ds'].min():%Y-%m-%d}", pct.loc[g.index], pct))
        for kind, g in t.groupby("kind"):
            rows.append(_pct_row(f"{method} all windows, {kind}", pct.loc[g.index], pct))
        rows.append(_pct_row(f"{method} all windows", pct, pct))
    return pd.DataFrame(rows).set_index("cut")


def _write_days(path, results, rec, actual, days) -> None:
    parts = []
    for method, (_, out) in results.items():
        total = out.loc[out["level"] == "total"].merge(actual, on=["level", "series_id", "ds"])
        parts.append(total[["ds", "y", "yhat"]].assign(method=method, window="held-out"))
        if method not in rec.backtest_:
            continue
        bt = rec.backtest_[method]
        bt = bt.loc[bt["level"] == "total", ["ds", "y", "yhat", "window"]]
        parts.append(bt.assign(method=method, window=bt["window"].astype(str)))
    out = pd.concat(parts, ignore_index=True).merge(days, left_on="ds", right_index=True)
    out = out.assign(weekday=out["ds"].dt.day_name().str[:3], pct=out["yhat"] / out["y"] - 1.0)
    out.to_csv(path, index=False)


def _pct_row(cut: str, pct: pd.Series, all_pct: pd.Series) -> dict:
    return {
        "cut": cut,
        "days": len(pct),
        "mape": float(pct.abs().mean()),
        "bias": float(pct.mean()),
        "std": float(pct.std(ddof=0)),
        "max_abs": float(pct.abs().max()),
        "share_of_error": float(pct.abs().sum() / all_pct.abs().sum()),
    }


def _coherence_gap(out: pd.DataFrame) -> float:
    stores = out.loc[out["level"] == "series"].groupby("ds")["yhat"].sum()
    regions = out.loc[out["level"] == "region"].groupby("ds")["yhat"].sum()
    total = out.loc[out["level"] == "total"].set_index("ds")["yhat"]
    rel = max((stores - total).abs().max(), (regions - total).abs().max())
    return float(rel / max(total.abs().max(), 1.0))


if __name__ == "__main__":
    main()
