"""Build the small committed sample under data/sample/ from the full datasets in ../shared/data.

    python scripts/make_sample.py --shared ../shared/data --out data/sample      (= make sample)

Deterministic (seeded): the same inputs and arguments give byte-identical CSV files.

* rossmann/: ``--stores`` stores (default 30) chosen from a seeded permutation so that every store type,
  the "HB,NI" state pair, Schleswig-Holstein (whose weather is a copy) and at least three stores with the
  2014H2 gap are present; their full date range of series and covariates, their static rows and the weather
  of their states only.
* online_retail/: purchase lines from ``--start`` to ``--end`` (default 2011-01-01 .. 2011-06-30) of a seeded
  ``--customer-fraction`` of the customers and a ``--guest-fraction`` of the guest orders, with the labels of
  the customer orders. Labels are computed on the FULL data first and then subset, so they are exactly the
  labels the full adapter gives those orders (a cancellation after the sample period still counts).

The script also writes data/sample/README.md (what each file holds, counts, licence and attribution).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from features.adapters import online_retail, rossmann  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--shared",
        type=Path,
        default=REPO.parent / "shared" / "data",
        help="folder with rossmann/ and online_retail/ (default: ../shared/data)",
    )
    parser.add_argument("--out", type=Path, default=REPO / "data" / "sample", help="output folder")
    parser.add_argument("--seed", type=int, default=20150619)
    parser.add_argument("--stores", type=int, default=30)
    parser.add_argument("--start", default="2011-01-01")
    parser.add_argument("--end", default="2011-06-30", help="last day included")
    parser.add_argument("--customer-fraction", type=float, default=0.25)
    parser.add_argument("--guest-fraction", type=float, default=0.05)
    args = parser.parse_args(argv)
    if not args.shared.is_dir():
        parser.error(f"--shared {str(args.shared)!r} is not a folder; pass the path of ../shared/data")
    for name in ("customer_fraction", "guest_fraction"):
        if not 0 < getattr(args, name) <= 1:
            parser.error(f"--{name.replace('_', '-')} must be in (0, 1]; got {getattr(args, name)}")

    ross_tables, ross_report = rossmann.load(args.shared / "rossmann")
    ross = sample_rossmann(ross_tables, n_stores=args.stores, seed=args.seed)
    retail_tables, retail_report = online_retail.load(args.shared / "online_retail")
    retail = sample_online_retail(
        retail_tables,
        start=args.start,
        end=args.end,
        seed=args.seed,
        customer_fraction=args.customer_fraction,
        guest_fraction=args.guest_fraction,
    )
    sizes = {}
    for folder, tables in (("rossmann", ross), ("online_retail", retail)):
        for name, df in tables.items():
            path = args.out / folder / f"{name}.csv"
            path.parent.mkdir(parents=True, exist_ok=True)
            _compact(df).to_csv(path, index=False, lineterminator="\n")
            sizes[f"{folder}/{name}.csv"] = path.stat().st_size
            print(f"wrote {path} ({len(df):,} rows, {path.stat().st_size / 1e6:.2f} MB)")
    argv_text = (
        f"python scripts/make_sample.py --shared ../shared/data --out data/sample --seed {args.seed} "
        f"--stores {args.stores} --start {args.start} --end {args.end} "
        f"--customer-fraction {args.customer_fraction} --guest-fraction {args.guest_fraction}"
    )
    (args.out / "README.md").write_text(
        _readme(ross, retail, sizes, args, argv_text, ross_report, retail_report)
    )
    print(
        f"total {sum(sizes.values()) / 1e6:.2f} MB; positive label rate "
        f"{retail['labels']['label'].mean():.4f} ({int(retail['labels']['label'].sum())} positives)"
    )
    return 0


def sample_rossmann(tables: dict[str, pd.DataFrame], *, n_stores: int, seed: int) -> dict[str, pd.DataFrame]:
    """The tables restricted to ``n_stores`` stores chosen deterministically (see the module docstring)."""
    static = tables["static"]
    series = tables["series"]
    h2 = series.loc[series["ds"].between("2014-07-01", "2014-12-31"), "series_id"].unique()
    attrs = static.set_index("series_id")
    attrs["gap"] = ~attrs.index.isin(h2)
    order = np.random.default_rng(seed).permutation(np.sort(attrs.index.astype(int).to_numpy())).astype(str)

    needs = [("store_type", t, 1) for t in sorted(attrs["store_type"].dropna().unique())]
    needs += [("state_code", "HB,NI", 1), ("state_code", "SH", 1), ("gap", True, 3)]
    chosen: list[str] = []
    for column, value, k in needs:  # a handful of requirements, each filled from the seeded order
        have = sum(attrs.at[s, column] == value for s in chosen)
        for store in order:
            if have >= k:
                break
            if store not in chosen and attrs.at[store, column] == value:
                chosen.append(store)
                have += 1
    chosen += [s for s in order if s not in chosen][: max(0, n_stores - len(chosen))]
    keep = set(chosen)
    out = {
        name: df.loc[df["series_id"].isin(keep)].reset_index(drop=True)
        for name, df in tables.items()
        if name != "weather"
    }
    regions = set(out["static"]["region"].dropna())
    out["weather"] = tables["weather"].loc[tables["weather"]["region"].isin(regions)].reset_index(drop=True)
    return {name: out[name] for name in ("series", "covariates", "weather", "static")}


def sample_online_retail(
    tables: dict[str, pd.DataFrame],
    *,
    start: str,
    end: str,
    seed: int,
    customer_fraction: float,
    guest_fraction: float,
) -> dict[str, pd.DataFrame]:
    """Orders in [start, end] of a seeded subset of customers and guest orders, and their labels."""
    orders = tables["orders"]
    in_period = orders["created_at"].between(
        pd.Timestamp(start), pd.Timestamp(end) + pd.Timedelta(days=1), inclusive="left"
    )
    period = orders.loc[in_period]
    rng = np.random.default_rng(seed)
    customers = np.sort(period["customer_id"].dropna().unique().to_numpy(dtype=str))
    picked = rng.choice(customers, size=round(len(customers) * customer_fraction), replace=False)
    guest_orders = np.sort(period.loc[period["customer_id"].isna(), "order_id"].unique().to_numpy(dtype=str))
    picked_guests = rng.choice(guest_orders, size=round(len(guest_orders) * guest_fraction), replace=False)
    sample = period.loc[period["customer_id"].isin(picked) | period["order_id"].isin(picked_guests)]
    labels = tables["labels"].loc[tables["labels"]["order_id"].isin(sample["order_id"])]
    return {"orders": sample.reset_index(drop=True), "labels": labels.reset_index(drop=True)}


def _compact(df: pd.DataFrame) -> pd.DataFrame:
    """Whole-number float columns as integers so the CSV reads 12 rather than 12.0 (types come back on
    validation: numbers are parsed to float64 there)."""
    out = df.copy()
    for col in out.columns:
        if pd.api.types.is_float_dtype(out[col]):
            values = out[col].dropna()
            if (values == np.floor(values)).all():
                out[col] = out[col].astype("Int64")
    return out


def _readme(ross, retail, sizes, args, command, ross_report, retail_report) -> str:
    series, static = ross["series"], ross["static"]
    orders, labels = retail["orders"], retail["labels"]
    gap_stores = sorted(
        set(series["series_id"])
        - set(series.loc[series["ds"].between("2014-07-01", "2014-12-31"), "series_id"]),
        key=int,
    )
    size_lines = "\n".join(f"| `{k}` | {v / 1e3:,.0f} kB |" for k, v in sizes.items())
    mib = sum(sizes.values()) / 1e6
    return f"""# data/sample: the small real-data sample OrderPulse ships

Tests and `make run` use these files; the full datasets (`../shared/data`) are not needed. Every file is in
OrderPulse's documented input format (README "Input format") and passes `features.validation.validate` with
nothing to repair. Generated, do not edit by hand: rebuild with `make sample`, i.e.

    {command}

(seeded with {args.seed}; the same inputs give byte-identical files). Total size {mib:.1f} MB.

| file | size |
|---|---|
{size_lines}

## rossmann/ — daily sales of {series["series_id"].nunique()} Rossmann stores, {series["ds"].min():%Y-%m-%d} .. {series["ds"].max():%Y-%m-%d}

Made by `features.adapters.rossmann` from the Kaggle files, then restricted to stores chosen from a seeded
permutation so that every store type ({", ".join(sorted(static["store_type"].unique()))}), the state pair
"HB,NI", Schleswig-Holstein and stores with the 2014H2 gap are present
(states: {", ".join(sorted(static["state_code"].unique()))}).

- `series.csv` ({len(series):,} rows): `series_id` (store number), `ds` (date), `y` (sales), `open` (0 = closed,
  known in advance, `y` = 0). Stores {", ".join(gap_stores)} have no rows 2014-07-01 .. 2014-12-31 (as in the
  source; not filled). Open days with zero sales are kept as they are.
- `covariates.csv` ({len(ross["covariates"]):,} rows; per store and day, for the dates in series.csv only: the
  source has no future rows, so forecasting past {series["ds"].max():%Y-%m-%d} needs the horizon's covariates from
  elsewhere): `promo` (0/1), `state_holiday` ("0" none, "a" public, "b" Easter, "c" Christmas),
  `school_holiday` (0/1), `promo2_active` (1 when the store takes part in Promo2, the day is on/after the
  Monday of its Promo2SinceWeek/Year, and the month is in its PromoInterval).
- `weather.csv` ({len(ross["weather"]):,} rows): per German state (`region`, named as the source's weather files)
  and day, {ross["weather"]["ds"].min():%Y-%m-%d} .. {ross["weather"]["ds"].max():%Y-%m-%d}: `temp_max`, `temp_mean`,
  `temp_min` (C), `precip_mm`, `humidity_mean` (%), `pressure_mean` (hPa), `wind_mean` (km/h), `cloud_cover`
  (oktas), `event_rain`, `event_snow`, `event_fog`, `event_thunderstorm`, `event_hail` (0/1 from "Events").
  Quirk: the source's SchleswigHolstein weather is a byte-identical copy of MecklenburgVorpommern's; kept.
- `static.csv` ({len(static):,} rows): `series_id`, `region` (joins weather; the pair "HB,NI" maps to
  Niedersachsen because Bremen is an enclave in Lower Saxony), `state_code`, `store_type`, `assortment`,
  `competition_distance` (m), `competition_open_since_year`, `competition_open_since_month`, `promo2`,
  `promo2_since_year`, `promo2_since_week`, `promo_interval`; blanks are missing in the source.

## online_retail/ — order lines of a UK online giftware retailer, {args.start} .. {args.end}

Made by `features.adapters.online_retail` from both UCI files (overlap kept once), then restricted to a seeded
{args.customer_fraction:.0%} of the customers with orders in the period and {args.guest_fraction:.0%} of the guest
orders.

- `orders.csv` ({len(orders):,} lines, {orders["order_id"].nunique():,} orders,
  {orders["customer_id"].nunique():,} customers, {orders.loc[orders["customer_id"].isna(), "order_id"].nunique():,}
  guest orders): `order_id` (invoice), `created_at`, `customer_id` (empty for guests), `sku` (StockCode),
  `quantity`, `unit_price` (GBP), `country`. Cancellation ("C...") and adjustment ("A...") invoices are not
  orders; purchase lines with quantity <= 0 were dropped by the adapter (counted in its report).
- `labels.csv` ({len(labels):,} rows, {int(labels["label"].sum()):,} positive = {labels["label"].mean():.1%};
  full data: {retail_report.counts["labels_positive"]:,} of {retail_report.counts["labels"]:,}): `order_id`,
  `label`, `labeled_at`. An order with a customer is an exception (1) when the same customer issues a
  cancellation invoice containing one of its StockCodes within 30 days after it; `labeled_at` is the first
  such cancellation. Otherwise 0 with `labeled_at` = created_at + 30 days. Guest orders have no label.
  Labels were computed on the full data, so cancellations after {args.end} count.

## Licence and attribution

- Rossmann: data of the Kaggle competition "Rossmann Store Sales" (2015), provided by Rossmann under the
  competition rules (research / non-commercial use). State assignment (`store_states.csv`) and weather as
  published with the 3rd-place solution by Cheng Guo and Felix Berkhahn ("Entity Embeddings of Categorical
  Variables", 2016, arXiv:1604.06737; github.com/entron/entity-embedding-rossmann).
- Online Retail: UCI Machine Learning Repository, "Online Retail" (id 352) and "Online Retail II" (id 502),
  Daqing Chen; Chen, D., Sain, S.L. & Guo, K. (2012), "Data mining for the online retail industry: A case
  study of RFM model-based customer segmentation using data mining", Journal of Database Marketing and
  Customer Strategy Management 19(3), 197-208. Licensed CC BY 4.0
  (https://creativecommons.org/licenses/by/4.0/): this sample is a subset with renamed columns, dropped
  cancellation/adjustment invoices and derived labels.
"""


if __name__ == "__main__":
    raise SystemExit(main())
