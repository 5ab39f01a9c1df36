"""Which target transform pays: ``LGBMForecaster(target_transform=...)`` over several cuts of two datasets.

    python benchmarks/forecast_transforms.py [--dataset rossmann|online_retail|both] [--stores 300]
        [--transform log --transform level ...] [--cut 2015-05-08 ...]

* Rossmann: every ``--stores``-th share of the 1,115 stores (evenly spaced ids; 0 = all), 42 days after each cut
  (open store-days scored): WAPE, RMSPE, 80% coverage (split-conformal on the model's own holdout), MAPE of the
  daily total over the scored stores, fit seconds.
* Online Retail: by country per day (``forecast_online_retail.cut_log``), 28 days after each cut: WAPE, WAPE
  relative to the seasonal naive, daily-total MAPE, fit seconds; boosters fitted on all the history before the
  cut (``calibrate=False``, as the final model of ``train forecast``; no intervals).

Each table ends with the mean over the cuts per transform: the default is chosen on those means, never on one
cut (issue 17: "do not tune to one period").
"""

from __future__ import annotations

import argparse
import os
import warnings

import numpy as np
import pandas as pd

from measure import measure, shared_data  # noqa: I001 - also puts the repo on sys.path

from features.adapters import online_retail, rossmann  # noqa: E402
from features.orders import aggregate_orders  # noqa: E402
from features.validation import validate  # noqa: E402
from forecast_online_retail import HORIZON as OR_HORIZON, cut_log  # noqa: E402
from training.forecast.baselines import SeasonalNaive  # noqa: E402
from training.forecast.forecaster import LGBMForecaster  # noqa: E402
from training.metrics import coverage, rmspe, wape  # noqa: E402

warnings.simplefilter("ignore")
ROSSMANN_CUTS = ("2014-05-01", "2015-02-13", "2015-03-27", "2015-05-08")
RETAIL_CUTS = ("2010-10-01", "2010-11-10", "2011-03-01", "2011-06-01", "2011-08-01")
TRANSFORMS = ("log", "level", "yoy")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="both", choices=("rossmann", "online_retail", "both"))
    parser.add_argument("--stores", type=int, default=300, help="Rossmann stores (0: all 1,115)")
    parser.add_argument("--transform", action="append", help="default: " + ", ".join(TRANSFORMS))
    parser.add_argument("--cut", action="append", help="cut dates (default: several per dataset)")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    transforms = args.transform or list(TRANSFORMS)
    if args.dataset in ("rossmann", "both"):
        _table("Rossmann, 42 days", _rossmann(args.cut or ROSSMANN_CUTS, transforms, args.stores))
    if args.dataset in ("online_retail", "both"):
        _table("Online Retail by country, 28 days", _retail(args.cut or RETAIL_CUTS, transforms))


def _rossmann(cuts, transforms, n_stores) -> pd.DataFrame:
    raw, _ = rossmann.load(shared_data("rossmann"))
    t = {k: validate(v, k)[0] for k, v in raw.items()}
    series = t["series"]
    ids = np.sort(series["series_id"].astype(str).unique())
    if n_stores:
        ids = ids[np.linspace(0, len(ids) - 1, n_stores).round().astype(int)]
        series = series.loc[series["series_id"].astype(str).isin(ids)]
    tables = {k: t[k] for k in ("covariates", "weather", "static")}
    rows = []
    for cut in map(pd.Timestamp, cuts):
        train = series.loc[series["ds"] <= cut]
        test = series.loc[(series["ds"] > cut) & (series["ds"] <= cut + pd.Timedelta(days=42))]
        for name in transforms:
            with measure() as m:
                model = LGBMForecaster(freq="D", horizon=42, target_transform=name).fit(train, **tables)
            pred = model.predict(42, test.drop(columns="y"), levels=(80,))
            s = test.assign(series_id=test["series_id"].astype("string")).merge(pred, on=["series_id", "ds"])
            s = s.loc[s["open"] == 1]
            rows.append(_metrics(cut, name, model, s, m) | {"RMSPE": rmspe(s["y"], s["yhat"])})
            print(rows[-1], flush=True)
    return pd.DataFrame(rows)


def _retail(cuts, transforms) -> pd.DataFrame:
    tables, _ = online_retail.load(shared_data("online_retail"))
    orders, _ = validate(tables["orders"], "orders")
    full = aggregate_orders(orders, "D", by="country", measure="orders").series
    rows = []
    for cut in map(pd.Timestamp, cuts):
        train, static, actual, _ = cut_log(orders, full, cut, "orders")
        naive = SeasonalNaive("D").fit(train).predict(OR_HORIZON, levels=())
        naive = naive[["series_id", "ds", "yhat"]].merge(actual, on=["series_id", "ds"], how="right")
        w_naive = wape(naive["y"], naive["yhat"].fillna(0.0))
        for name in transforms:
            with measure() as m:
                model = LGBMForecaster(
                    freq="D", horizon=OR_HORIZON, holidays="static", target_transform=name, calibrate=False
                )
                model.fit(train, static=static)
            pred = model.predict(OR_HORIZON, levels=()).merge(actual, on=["series_id", "ds"], how="right")
            pred = pred.fillna({"yhat": 0.0}).assign(yhat_lo_80=np.nan, yhat_hi_80=np.nan)
            row = _metrics(cut, name, model, pred, m)
            rows.append(row | {"x naive": row["WAPE"] / w_naive})
            print(rows[-1], flush=True)
    return pd.DataFrame(rows)


def _metrics(cut, name, model, s, m) -> dict:
    daily = s.groupby("ds")[["y", "yhat"]].sum()
    daily = daily.loc[daily["y"] > 0]
    return {
        "cut": str(cut.date()),
        "transform": name,
        "chosen": model.target_transform_,
        "WAPE": wape(s["y"], s["yhat"]),
        "total MAPE": float(((daily["yhat"] - daily["y"]).abs() / daily["y"]).mean()),
        "cov80": coverage(s["y"], s["yhat_lo_80"], s["yhat_hi_80"])
        if s["yhat_lo_80"].notna().all()
        else np.nan,
        "fit s": m.seconds,
    }


def _table(title: str, df: pd.DataFrame) -> None:
    print(f"\n{title}\n" + df.to_string(index=False, float_format="{:.4f}".format))
    means = df.drop(columns=["cut", "chosen"]).groupby("transform", sort=False).mean()
    print(f"\nmean over {df['cut'].nunique()} cuts\n" + means.to_string(float_format="{:.4f}".format))


if __name__ == "__main__":
    main()
