"""The aggregate model alone (states and the total of full Rossmann), per target: the aggregate's sum
(``--target sum``) vs the aggregate per open member multiplied back by the known number of open members
(``per_open``, the default of ``training.forecast.hierarchy.fit_hierarchy``). Cheap next to the store model
(14 aggregate series), so it shows what the aggregates' own base forecasts are worth before reconciliation.

10 rolling windows of 42 days every 14 days up to the end of the data (origins 2015-01-02 .. 2015-05-08): windows
0-6 lie before the held-out cut of ``forecast_hierarchy_rossmann.py``, window 9 is its held-out 42 days. The
model is fitted once at the first origin and updated with newer history (``refit=False``, as the training job's
hierarchy backtest). Printed per target: the total's daily MAPE / bias and the state WAPE on windows 0-6 and on
window 9, the 80% coverage on window 9 of the total's interval calibrated on windows 0-6, per window and per
weekday tables. Run: ``.venv/bin/python benchmarks/forecast_hierarchy_aggregates.py --target per_open sum``.
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

import numpy as np
import pandas as pd

from measure import measure  # noqa: I001 - also puts the repo on sys.path
from forecast_rossmann import rossmann_holdout

from features.hierarchy import Hierarchy
from training.forecast.backtest import backtest
from training.forecast.forecaster import LGBMForecaster
from training.forecast.intervals import conformal_quantiles
from training.forecast.hierarchy import _aggregate_inputs, _rescale

warnings.simplefilter("ignore")
HORIZON = 42


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--target", nargs="+", default=["per_open", "sum"], choices=("per_open", "sum"))
    parser.add_argument(
        "--closures",
        nargs="+",
        type=int,
        default=[0, 1],
        choices=(0, 1),
        help="without (0) / with (1) the closure features (closed shares of the neighbouring days)",
    )
    args = parser.parse_args()
    train, test, tables = rossmann_holdout(HORIZON)
    full = pd.concat([train, test], ignore_index=True)
    hierarchy = Hierarchy.from_static(tables["static"], full["series_id"].unique(), ("region", "total"))
    print(f"load average at start {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores", flush=True)
    rows = []
    for target, closures in [(t, c) for t in args.target for c in args.closures]:
        t0 = time.perf_counter()
        with measure() as m:
            agg, agg_tables, _, n_open = _aggregate_inputs(
                hierarchy, full, tables, target, closures=bool(closures)
            )
            bt = backtest(
                lambda: LGBMForecaster(freq="D", horizon=HORIZON, levels=(), calibrate=False),
                agg,
                n_windows=10,
                step=14,
                horizon=HORIZON,
                refit=False,
                levels=(),
                fit_kwargs={k: v for k, v in agg_tables.items() if v is not None},
            )
        cols = ["window", "step", "series_id", "ds", "y", "open", "yhat"]
        pred = _rescale(bt.predictions[cols], n_open, ("y", "yhat"))
        total = pred.loc[(pred["series_id"] == "total") & (pred["open"] == 1) & (pred["y"] > 0)].copy()
        total["pct"] = total["yhat"] / total["y"] - 1
        total["res"] = np.log1p(total["y"]) - np.log1p(total["yhat"])
        states = pred.loc[pred["series_id"].str.startswith("region=") & (pred["open"] == 1)]
        before, held = total["window"] <= 6, total["window"] == 9
        q = conformal_quantiles(total.loc[before, "res"].to_numpy(), (80,))
        h = total.loc[held]
        rows.append(
            {
                "target": target,
                "closures": closures,
                "total MAPE w0-6": total.loc[before, "pct"].abs().mean(),
                "total bias w0-6": total.loc[before, "pct"].mean(),
                "total MAPE held-out": h["pct"].abs().mean(),
                "total bias held-out": h["pct"].mean(),
                "state WAPE w0-6": _wape(states.loc[states["window"] <= 6]),
                "state WAPE held-out": _wape(states.loc[states["window"] == 9]),
                "total 80% cov held-out": float(((h["res"] >= q["lo_80"]) & (h["res"] <= q["hi_80"])).mean()),
                "seconds": m.seconds,
            }
        )
        print(
            f"-- {target}, closures={closures}: {time.perf_counter() - t0:.0f} s; the total per window and per weekday:"
        )
        print(
            total.groupby("window")["pct"]
            .agg(mape=lambda v: v.abs().mean(), bias="mean")
            .round(4)
            .to_string()
        )
        weekday = total["ds"].dt.day_name().str[:3]
        print(
            total.groupby(weekday)["pct"].agg(mape=lambda v: v.abs().mean(), bias="mean").round(4).to_string()
        )
    print(pd.DataFrame(rows).round(4).to_string(index=False))
    print(f"load average now {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


def _wape(frame: pd.DataFrame) -> float:
    return float((frame["yhat"] - frame["y"]).abs().sum() / frame["y"].sum())


if __name__ == "__main__":
    main()
