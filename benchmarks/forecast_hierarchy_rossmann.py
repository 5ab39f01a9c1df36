"""Coherent store / state / total forecasts on full Rossmann, last 42 days held out: bottom-up vs the chosen
reconciliation, in one run.

The pipeline is the training job's (``orderpulse train forecast --levels region,total``): the store model
(``LGBMForecaster``) and the aggregate model (states and the total, ``training.forecast.hierarchy``) are
backtested on the same 2 rolling windows (42 days, every 21) of the history before the cut; every
reconciliation method is scored there by WAPE per level, the default is chosen, the per-level intervals are
calibrated on those windows, both models are refitted on all history and forecast the held-out 42 days.

Reported per method (bottom-up = the sum of the store forecasts, and the chosen one): WAPE per level (store,
state, total), the total's daily MAPE, 80% interval coverage per level, the largest coherence gap
(|sum of stores - state|, |sum of states - total|), and the training time with the machine's load.
Targets (issue 15): daily-total MAPE <= 2.5%; state WAPE no worse than bottom-up; the total's 80% interval
covers 60-95% of the days.
Run: ``.venv/bin/python benchmarks/forecast_hierarchy_rossmann.py``.
"""

from __future__ import annotations

import argparse
import os
import warnings

import numpy as np
import pandas as pd

from measure import measure  # noqa: I001 - also puts the repo on sys.path
from forecast_rossmann import rossmann_holdout

from features.hierarchy import Hierarchy, aggregate_tables
from training.forecast.backtest import backtest
from training.forecast.forecaster import LGBMForecaster
from training.forecast.hierarchy import fit_hierarchy, forecast_hierarchy
from training.metrics import coverage, mape, wape

warnings.simplefilter("ignore")
HORIZON = 42
LEVELS = ("region", "total")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n-windows", type=int, default=2)
    parser.add_argument("--step", type=int, default=21)
    args = parser.parse_args()

    train, test, tables = rossmann_holdout(HORIZON)
    cut = train["ds"].max()
    print(
        f"Rossmann: {train['series_id'].nunique():,} stores, train ..{cut.date()} ({len(train):,} rows), holdout "
        f"{HORIZON} days; load average at start {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores",
        flush=True,
    )

    def make_model() -> LGBMForecaster:
        return LGBMForecaster(freq="D", horizon=HORIZON, levels=(), calibrate=False)

    hierarchy = Hierarchy.from_static(tables["static"], train["series_id"].unique(), LEVELS)
    with measure() as m_store:
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
    print(f"store model: backtest + final fit {m_store.seconds:.0f} s", flush=True)
    with measure() as m_agg:
        rec, counts = fit_hierarchy(
            hierarchy,
            train,
            tables,
            bt.predictions,
            make_model,
            n_windows=args.n_windows,
            step=args.step,
            horizon=HORIZON,
        )
    print(f"hierarchy: aggregate model backtest + fit + method choice {m_agg.seconds:.0f} s", flush=True)
    print(f"  chosen method: {rec.method_}; {counts}")
    print("  backtest WAPE per method and level:")
    print(rec.metrics_.pivot(index="method", columns="level", values="wape").round(4).to_string())

    future = test.drop(columns="y")
    history = pd.concat([train, future.assign(y=np.nan)], ignore_index=True)
    series_pred = model.predict(HORIZON, future, levels=())
    actual = _actuals(hierarchy, test)
    results = {}
    for method in dict.fromkeys(["bottom_up", rec.method_]):
        out = forecast_hierarchy(
            rec, series_pred, history, tables, horizon=HORIZON, origin=cut, levels=(80,), method=method
        )
        results[method] = (_score(out.merge(actual, on=["level", "series_id", "ds"], how="left")), out)

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
    train_s = m_store.seconds + m_agg.seconds
    print(
        f"\ntraining (store backtest+fit {m_store.seconds:.0f} s + hierarchy {m_agg.seconds:.0f} s) = "
        f"{train_s:.0f} s; load average now {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )
    chosen, bu = results[rec.method_][0], results["bottom_up"][0]
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
            "cov80": coverage(g["y"], g["yhat_lo_80"], g["yhat_hi_80"], op),
        }
    return out


def _coherence_gap(out: pd.DataFrame) -> float:
    stores = out.loc[out["level"] == "series"].groupby("ds")["yhat"].sum()
    regions = out.loc[out["level"] == "region"].groupby("ds")["yhat"].sum()
    total = out.loc[out["level"] == "total"].set_index("ds")["yhat"]
    rel = max((stores - total).abs().max(), (regions - total).abs().max())
    return float(rel / max(total.abs().max(), 1.0))


if __name__ == "__main__":
    main()
