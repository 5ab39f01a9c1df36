"""UCI Online Retail (352) + Online Retail II (502) -> OrderPulse orders and exception labels.

Source files (see ``../shared/data/README.md``), oldest first: ``online_retail_ii_2009_2010.parquet``
(``Invoice, Price, Customer ID``) and ``online_retail_2010_2011.parquet`` (``InvoiceNo, UnitPrice,
CustomerID``). One row per invoice line; an invoice is an order.

Output tables (they pass ``features.validation.validate`` unchanged):

* ``orders`` (purchase invoice lines): ``order_id`` (invoice number), ``created_at`` (InvoiceDate),
  ``customer_id`` (string without ".0"; missing for guests), ``sku`` (StockCode), ``quantity``,
  ``unit_price``, ``country``. Cancellation invoices ("C...") and bad-debt adjustments ("A...") are not orders.
* ``labels`` (one row per purchase invoice that has a customer; guests get no label): an order is an
  exception (``label = 1``) when the same customer issues a cancellation invoice containing at least one of
  its StockCodes within ``window_days`` after it (``created_at < cancelled_at <= created_at + window``);
  ``labeled_at`` is the time of the first such cancellation. Every other customer order is ``label = 0`` with
  ``labeled_at = created_at + window``: the moment its window closed, which for the last ``window_days`` of
  the data lies after the data's end (counted as ``negatives_labeled_after_data_end``; point-in-time
  consumers must only use labels with ``labeled_at`` before their cutoff).

Repairs, all counted in the report: the overlap of the two files (2010-12-01 .. 2010-12-09) is kept once,
from the later file (lines of an invoice that also appears in a later file are dropped from the earlier
one); purchase lines with quantity <= 0 (stock write-offs) or unit_price < 0 are dropped; exact duplicate
lines are dropped (validation would drop them too); invoices whose lines carry timestamps a minute apart get
the first one; StockCodes lose surrounding blanks ("47503J " -> "47503J").
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from features.adapters.report import AdapterReport
from features.labels import EVENT_TIME, outcome_labels
from features.validation import parse_timestamps

__all__ = ["DEFAULT_SOURCE", "SOURCE_FILES", "TABLES", "load", "read_raw", "adapt", "exception_labels"]

DEFAULT_SOURCE = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "online_retail"
SOURCE_FILES = ("online_retail_ii_2009_2010.parquet", "online_retail_2010_2011.parquet")  # oldest first
TABLES = ("orders", "labels")

_ALIASES = {"InvoiceNo": "Invoice", "UnitPrice": "Price", "CustomerID": "Customer ID"}
_INTERNAL = {
    "Invoice": "order_id",
    "StockCode": "sku",
    "Quantity": "quantity",
    "InvoiceDate": "created_at",
    "Price": "unit_price",
    "Customer ID": "customer_id",
    "Country": "country",
}
_ORDER_COLUMNS = ["order_id", "created_at", "customer_id", "sku", "quantity", "unit_price", "country"]


def load(
    source_dir: str | Path = DEFAULT_SOURCE, *, window_days: int = 30
) -> tuple[dict[str, pd.DataFrame], AdapterReport]:
    """Read both source files under ``source_dir`` and convert them (``adapt(read_raw(source_dir))``)."""
    return adapt(read_raw(source_dir), window_days=window_days)


def read_raw(source_dir: str | Path = DEFAULT_SOURCE) -> list[pd.DataFrame]:
    """The raw source frames, oldest file first (the order ``adapt`` expects)."""
    src = Path(source_dir)
    absent = [f for f in SOURCE_FILES if not (src / f).exists()]
    if absent:
        raise FileNotFoundError(
            f"Online Retail source incomplete in {str(src)!r}: missing {absent}. Point source_dir at the "
            f"folder holding {list(SOURCE_FILES)} (../shared/data/online_retail)."
        )
    return [pd.read_parquet(src / f) for f in SOURCE_FILES]


def adapt(
    frames: Sequence[pd.DataFrame], *, window_days: int = 30
) -> tuple[dict[str, pd.DataFrame], AdapterReport]:
    """Convert raw Online Retail frames (oldest first; either file's column names) into orders and labels.

    Where the same invoice appears in several frames, the copy in the latest frame is kept.
    """
    if not frames:
        raise ValueError("adapt() needs at least one raw Online Retail frame; got an empty sequence.")
    if window_days < 1:
        raise ValueError(f"window_days must be a positive number of days. Got {window_days!r} instead.")
    report = AdapterReport("online_retail")
    lines = _combine(frames, report)
    lines = _normalise(lines, report)

    kind = lines["order_id"].str[0].str.upper()
    is_cancel = (kind == "C").to_numpy()
    is_adjust = (kind == "A").to_numpy()
    report.count("cancellation_lines", int(is_cancel.sum()))
    report.count("cancellation_invoices", lines.loc[is_cancel, "order_id"].nunique())
    report.count("adjustment_lines_dropped", int(is_adjust.sum()))
    cancellations = lines.loc[is_cancel]
    purchases = lines.loc[~is_cancel & ~is_adjust]

    bad_quantity = ~(purchases["quantity"] > 0)
    bad_price = ~(purchases["unit_price"] >= 0)
    report.count("purchase_lines_quantity_le_0_dropped", int(bad_quantity.sum()))
    report.count("purchase_lines_unit_price_lt_0_dropped", int((bad_price & ~bad_quantity).sum()))
    purchases = purchases.loc[~bad_quantity & ~bad_price]
    duplicated = purchases.duplicated(_ORDER_COLUMNS)
    report.count("purchase_lines_exact_duplicates_dropped", int(duplicated.sum()))
    orders = purchases.loc[~duplicated, _ORDER_COLUMNS]
    orders = orders.sort_values(["created_at", "order_id"], kind="stable").reset_index(drop=True)

    labels = exception_labels(
        orders,
        cancellations.rename(columns={"created_at": "cancelled_at"}),
        window_days=window_days,
    )
    data_end = lines["created_at"].max()
    report.count("orders", orders["order_id"].nunique())
    report.count("order_lines", len(orders))
    report.count("guest_orders_unlabeled", orders.loc[orders["customer_id"].isna(), "order_id"].nunique())
    report.count("labels", len(labels))
    report.count("labels_positive", int(labels["label"].sum()))
    report.count(
        "negatives_labeled_after_data_end",
        int(((labels["label"] == 0) & (labels["labeled_at"] > data_end)).sum()),
    )
    if len(labels):
        report.note(
            f"positive label rate {labels['label'].mean():.4f} "
            f"({window_days}-day cancellation window); data ends {data_end}"
        )
    return {"orders": orders, "labels": labels}, report


def exception_labels(
    orders: pd.DataFrame, cancellations: pd.DataFrame, *, window_days: int = 30
) -> pd.DataFrame:
    """Label every order that has a customer (see the module docstring for the rule).

    ``orders``: order lines with ``order_id, created_at, customer_id, sku``; ``cancellations``: cancellation
    lines with ``customer_id, sku, cancelled_at``. Returns ``order_id, label (int8), labeled_at`` sorted by
    ``order_id``'s creation time. The rule is ``features.labels.outcome_labels`` matched by customer + SKU;
    every window is closed here (``as_of`` = the end of time), so no order is left pending.
    """
    events = cancellations.rename(columns={"cancelled_at": EVENT_TIME})[["customer_id", "sku", EVENT_TIME]]
    return outcome_labels(orders, events, window_days=window_days, as_of=pd.Timestamp.max).labels


# ---------------------------------------------------------------------------------------------------------


def _combine(frames: Sequence[pd.DataFrame], report: AdapterReport) -> pd.DataFrame:
    """Harmonise column names and keep each invoice from the latest frame that has it."""
    renamed = []
    for i, f in enumerate(frames):
        f = f.rename(columns=_ALIASES)
        missing = [c for c in _INTERNAL if c not in f.columns]
        if missing:
            raise ValueError(
                f"Online Retail frame #{i} lacks column(s) {missing} (found {list(f.columns)[:12]}); expected "
                f"the UCI columns Invoice/InvoiceNo, StockCode, Quantity, InvoiceDate, Price/UnitPrice, "
                f"Customer ID/CustomerID, Country."
            )
        f = f[list(_INTERNAL)].rename(columns=_INTERNAL)
        f["order_id"] = f["order_id"].astype("string").str.strip()
        renamed.append(f)
    kept = []
    later: set[str] = set()
    for f in reversed(renamed):  # newest first: an earlier frame loses the invoices a later one has
        overlap = f["order_id"].isin(later)
        report.count("overlap_lines_dropped_from_earlier_file", int(overlap.sum()))
        report.count("overlap_invoices_kept_once", f.loc[overlap, "order_id"].nunique())
        kept.append(f.loc[~overlap])
        later |= set(f["order_id"].dropna().unique())
    report.count("raw_lines", sum(len(f) for f in renamed))
    return pd.concat(kept[::-1], ignore_index=True)


def _normalise(lines: pd.DataFrame, report: AdapterReport) -> pd.DataFrame:
    out = lines.copy()
    sku = out["sku"].astype("string")
    out["sku"] = sku.str.strip()
    report.count("sku_blanks_stripped", int((out["sku"] != sku).fillna(False).sum()))
    out["customer_id"] = _customer_ids(out["customer_id"])
    out["country"] = out["country"].astype("string")
    out["quantity"] = pd.to_numeric(out["quantity"], errors="coerce").astype("float64")
    out["unit_price"] = pd.to_numeric(out["unit_price"], errors="coerce").astype("float64")

    raw_time = out["created_at"]
    out["created_at"] = parse_timestamps(raw_time)
    failed = out["created_at"].isna()
    if failed.any():
        raise ValueError(
            f"InvoiceDate is not a date/time in {int(failed.sum())} lines "
            f"(e.g. {raw_time[failed].head(3).tolist()}); expected 'YYYY-MM-DD HH:MM:SS'."
        )
    first = out.groupby("order_id", sort=False)["created_at"].transform("min")
    moved = out["created_at"] != first
    report.count("invoices_with_several_timestamps_set_to_first", out.loc[moved, "order_id"].nunique())
    report.count("lines_moved_to_invoice_first_timestamp", int(moved.sum()))
    out["created_at"] = first
    return out


def _customer_ids(values: pd.Series) -> pd.Series:
    """12345.0 / "12345.0" / 12345 -> "12345"; NaN and blanks -> missing (guest)."""
    if pd.api.types.is_float_dtype(values):
        whole = values.dropna().mod(1).eq(0).all()
        if whole:
            values = values.astype("Int64")
    out = values.astype("string").str.strip().str.replace(r"\.0+$", "", regex=True)
    return out.mask(out == "")
