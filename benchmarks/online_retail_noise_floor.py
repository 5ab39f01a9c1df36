"""How low can the daily-total MAPE of an order log go? Hindsight bounds on the 28 days after each cut.

    python benchmarks/online_retail_noise_floor.py [--cut 2010-11-10 ...] [--source ../shared/data/online_retail]

The log is aggregated as ``forecast_online_retail.py`` does (orders per country per day, countries known before
the cut); the daily total over those countries is scored on the days it is above 0 (the shop does not trade on
Saturdays). Bounds, each the mean over those days of ``|expected - actual| / actual``:

* ``poisson``: the count noise alone, ``E|N - lam| / lam`` for ``N ~ Poisson(lam)`` at each day's actual total;
* ``oracle weekday x level`` (constant, linear, quadratic in time): a Poisson GLM of weekday factors times a
  smooth level fitted **on the held-out days themselves** (in-sample: optimistic); its Pearson dispersion says
  how much noisier than Poisson the daily total is;
* ``history weekday x oracle level``: the weekday shares of the 8 weeks before the cut (what a forecaster knows)
  times a linear level fitted in hindsight: the MAPE a forecaster that got the level exactly right would have;
* ``seasonal naive`` (same weekday of the last week) for reference.

Also the share of the orders that the largest country (the United Kingdom) places: the total's error is its.
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import stats

from measure import shared_data  # noqa: I001 - also puts the repo on sys.path

from features.adapters import online_retail  # noqa: E402
from features.orders import aggregate_orders  # noqa: E402
from features.validation import validate  # noqa: E402

HORIZON = 28
DEFAULT_CUTS = (
    "2010-06-01",
    "2010-09-01",
    "2010-10-01",
    "2010-11-10",
    "2011-03-01",
    "2011-04-12",
    "2011-06-01",
    "2011-08-01",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", default=str(shared_data("online_retail")))
    parser.add_argument(
        "--cut", action="append", help="cut date (repeatable); default: " + ", ".join(DEFAULT_CUTS)
    )
    args = parser.parse_args()
    tables, _ = online_retail.load(args.source)
    orders, _ = validate(tables["orders"], "orders")
    full = aggregate_orders(orders, "D", by="country", measure="orders").series
    table = pd.DataFrame([bounds(full, pd.Timestamp(c)) for c in args.cut or DEFAULT_CUTS])
    print(table.to_string(index=False, float_format="{:.3f}".format))
    print("\nmean\n" + table.drop(columns="cut").mean().to_string(float_format="{:.3f}".format))


def bounds(full: pd.DataFrame, cut: pd.Timestamp) -> dict[str, float | str]:
    """The hindsight bounds of the daily-total MAPE over the ``HORIZON`` days after ``cut`` (module docstring)."""
    known = full.loc[full["ds"] < cut, "series_id"].unique()
    f = full.loc[full["series_id"].isin(known)]
    window = f.loc[(f["ds"] >= cut) & (f["ds"] < cut + pd.Timedelta(days=HORIZON))]
    total = window.groupby("ds")["y"].sum()
    total = total[total > 0]
    largest = window.groupby("series_id")["y"].sum().idxmax()
    t = (total.index - cut).days.to_numpy() / HORIZON
    weekday = pd.get_dummies(total.index.dayofweek, prefix="d", drop_first=True, dtype=float)
    out: dict[str, float | str] = {
        "cut": str(cut.date()),
        "days": float(total.size),
        "mean total": float(total.mean()),
        f"{largest} share": float(window.loc[window["series_id"] == largest, "y"].sum() / total.sum()),
        "poisson": float(np.mean([_poisson_mad(lam) for lam in total])),
    }
    for name, extra in (("const", []), ("linear", [t]), ("quad", [t, t**2])):
        x = sm.add_constant(np.column_stack([weekday.to_numpy(), *extra]))
        fit = sm.GLM(total.to_numpy(), x, family=sm.families.Poisson()).fit()
        out[f"oracle weekday x {name} level"] = _mape(fit.fittedvalues, total.to_numpy())
        if name == "linear":
            out["dispersion"] = float(fit.pearson_chi2 / fit.df_resid)
    before = f.loc[(f["ds"] < cut) & (f["ds"] >= cut - pd.Timedelta(days=56))].groupby("ds")["y"].sum()
    shares = before.groupby(before.index.dayofweek).mean()
    shares = shares / shares[shares > 0].mean()
    share = shares.reindex(total.index.dayofweek).fillna(0.0).to_numpy()
    ok = share > 0
    fit = sm.GLM(
        total.to_numpy()[ok],
        sm.add_constant(t[ok]),
        family=sm.families.Poisson(),
        offset=np.log(share[ok]),
    ).fit()
    out["history weekday x oracle level"] = _mape(fit.fittedvalues, total.to_numpy()[ok])
    last_week = f.loc[(f["ds"] >= cut - pd.Timedelta(days=7)) & (f["ds"] < cut)].groupby("ds")["y"].sum()
    naive = last_week.groupby(last_week.index.dayofweek).sum().reindex(total.index.dayofweek).fillna(0.0)
    out["seasonal naive"] = _mape(naive.to_numpy(), total.to_numpy())
    return out


def _poisson_mad(lam: float) -> float:
    k = np.arange(0, int(3 * lam + 50))
    return float((np.abs(k - lam) * stats.poisson.pmf(k, lam)).sum() / lam)


def _mape(expected: np.ndarray, actual: np.ndarray) -> float:
    return float(np.mean(np.abs(np.asarray(expected) - actual) / actual))


if __name__ == "__main__":
    main()
