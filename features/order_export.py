"""A shop's raw order export -> the ``orders`` table and the cancellation ``events`` of ``features.labels``.

An OMS or shop export has its own column names (``InvoiceNo, StockCode, Quantity, InvoiceDate, UnitPrice,
CustomerID, Country`` in Online Retail, ``Invoice, Price, Customer ID`` in Online Retail II) and often writes
cancellations as order lines of their own (an invoice ``C536379`` with negative quantities).
``split_order_export`` renames the columns to the input format and moves the cancellation lines out of the
order lines into the events table that ``outcome_labels`` matches by customer and SKU. Nothing is dropped: every
line ends up in ``orders`` or in ``events``, counted in the report; other bad lines (a stock write-off with a
negative quantity) stay in ``orders`` for ``validate`` to refuse or drop, counted there.

Column names are recognised case-, blank- and underscore-insensitively from ``COLUMN_ALIASES``; ``columns``
(``{"Invoice Number": "order_id"}``) names any others and wins over the aliases.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, NamedTuple

import pandas as pd

from features.errors import DataValidationError, Problem
from features.labels import EVENT_TIME

__all__ = ["COLUMN_ALIASES", "ExportReport", "OrderExport", "split_order_export", "parse_column_map"]

COLUMN_ALIASES: dict[str, tuple[str, ...]] = {
    "order_id": ("orderid", "invoiceno", "invoice", "invoiceid", "invoicenumber", "ordernumber", "orderno"),
    "created_at": ("createdat", "invoicedate", "orderdate", "ordercreatedat", "orderedat"),
    "customer_id": ("customerid", "customerno", "customernumber"),
    "sku": ("sku", "stockcode", "productid", "productcode", "itemid", "itemcode"),
    "quantity": ("quantity", "qty"),
    "unit_price": ("unitprice", "price"),
    "country": ("country",),
}
"""Export column names (lower case without blanks or underscores) recognised for each input-format column."""

_REQUIRED = ("order_id", "created_at", "sku", "quantity", "unit_price")
_EVENT_COLUMNS = (EVENT_TIME, "customer_id", "sku", "quantity", "cancellation_id")


@dataclass
class ExportReport:
    """What ``split_order_export`` did: the columns it renamed and where the lines went."""

    lines_in: int = 0
    order_lines: int = 0
    cancellation_lines: int = 0
    cancelled_prefix: str | None = None
    renamed: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The report as plain JSON-serialisable values."""
        return asdict(self)

    def __str__(self) -> str:
        names = ", ".join(f"{a} -> {b}" for a, b in self.renamed.items() if a != b) or "none"
        cancelled = (
            f"{self.cancellation_lines} cancellation lines (order id starting with {self.cancelled_prefix!r}) "
            "-> events"
            if self.cancelled_prefix is not None
            else "no cancellation prefix given: every line is an order line"
        )
        return (
            f"export: {self.lines_in} lines -> {self.order_lines} order lines, {cancelled}; renamed {names}"
        )


class OrderExport(NamedTuple):
    """What ``split_order_export`` returns: the order lines, the cancellation events and the report."""

    orders: pd.DataFrame
    events: pd.DataFrame
    report: ExportReport


def split_order_export(
    raw: pd.DataFrame,
    *,
    columns: Mapping[str, str] | None = None,
    cancelled_prefix: str | None = None,
) -> OrderExport:
    """Rename ``raw``'s columns to the input format and split off its cancellation lines (see the module doc).

    ``columns``: ``{export column: input-format column}`` for names ``COLUMN_ALIASES`` does not know.
    ``cancelled_prefix``: order ids starting with it are cancellations (``"C"`` in Online Retail); their lines
    become ``events`` (``event_at, customer_id, sku, quantity, cancellation_id``), matched to orders by customer
    and SKU by ``features.labels.outcome_labels``. Other columns of the export stay in ``orders``.
    """
    mapping = _column_mapping(list(raw.columns), dict(columns or {}))
    lines = raw.rename(columns=mapping)
    report = ExportReport(lines_in=len(raw), cancelled_prefix=cancelled_prefix, renamed=mapping)
    if cancelled_prefix is not None and not cancelled_prefix:
        raise ValueError("cancelled_prefix must be a non-empty text such as 'C', or None (no cancellations).")
    if cancelled_prefix is None:
        cancelled = pd.Series(False, index=lines.index)
    else:
        cancelled = lines["order_id"].astype("string").str.strip().str.startswith(cancelled_prefix)
        cancelled = cancelled.fillna(False).astype(bool)
        if cancelled.any() and "customer_id" not in lines.columns:
            raise DataValidationError(
                [
                    Problem(
                        "export",
                        "customer_id",
                        "cancellation lines but no customer column to match them to orders by",
                        "name the export's customer column with --columns NAME=customer_id",
                    )
                ]
            )
    c = lines.loc[cancelled]
    events = pd.DataFrame(
        {
            EVENT_TIME: c["created_at"],
            "customer_id": c["customer_id"] if "customer_id" in c else pd.Series(dtype="string"),
            "sku": c["sku"],
            "quantity": c["quantity"],
            "cancellation_id": c["order_id"],
        },
        columns=list(_EVENT_COLUMNS),
    ).reset_index(drop=True)
    orders = lines.loc[~cancelled].reset_index(drop=True)
    report.order_lines, report.cancellation_lines = len(orders), len(events)
    return OrderExport(orders, events, report)


def parse_column_map(text: str | None) -> dict[str, str]:
    """``"Invoice Number=order_id, Ordered=created_at"`` -> ``{"Invoice Number": "order_id", ...}``."""
    out: dict[str, str] = {}
    for part in (text or "").split(","):
        if not part.strip():
            continue
        name, sep, target = part.partition("=")
        if not sep or not name.strip() or not target.strip():
            raise ValueError(
                f"--columns takes EXPORT_NAME=COLUMN pairs separated by commas, e.g. 'Invoice=order_id,"
                f"Price=unit_price'. Got {part.strip()!r} instead."
            )
        out[name.strip()] = target.strip()
    return out


# ---------------------------------------------------------------------------------------------------------


def _key(name: object) -> str:
    return re.sub(r"[\s_\-.]+", "", str(name)).lower()


def _column_mapping(found: list[Any], explicit: dict[str, str]) -> dict[str, str]:
    """``{export column: input-format column}`` for every column that is renamed or already named right."""
    unknown = [n for n in explicit if n not in found]
    targets = set(COLUMN_ALIASES)
    bad_targets = sorted(set(explicit.values()) - targets)
    problems: list[Problem] = []
    if unknown:
        problems.append(
            Problem(
                "export",
                unknown[0],
                f"--columns names columns the export does not have: {unknown}",
                f"use the export's own names (found columns: {found[:12]})",
            )
        )
    if bad_targets:
        problems.append(
            Problem(
                "export",
                bad_targets[0],
                f"--columns maps to columns the orders table does not have: {bad_targets}",
                f"map to one of {sorted(targets)}",
            )
        )
    if problems:
        raise DataValidationError(problems)
    mapping = {name: target for name, target in explicit.items()}
    taken = set(mapping.values())
    for target, aliases in COLUMN_ALIASES.items():
        if target in taken:
            continue
        hits = [n for n in found if n not in mapping and _key(n) in aliases]
        if len(hits) > 1:
            problems.append(
                Problem(
                    "export",
                    target,
                    f"several columns could be {target}: {hits}",
                    f"choose one with --columns NAME={target}",
                )
            )
        elif hits:
            mapping[hits[0]] = target
    named = set(mapping.values())
    for target in _REQUIRED:
        if target not in named:
            problems.append(
                Problem(
                    "export",
                    target,
                    "no column recognised as this one",
                    f"name it with --columns NAME={target} (found columns: {found[:12]}; recognised: "
                    f"{list(COLUMN_ALIASES[target])})",
                )
            )
    clash = sorted({t for n, t in mapping.items() if t in found and t != n and t not in mapping})
    for target in clash:
        problems.append(
            Problem(
                "export",
                target,
                f"the export already has a column named {target!r} besides the one renamed to it",
                f"rename or remove one of them, or map {target!r} itself with --columns",
            )
        )
    if problems:
        raise DataValidationError(problems)
    return mapping
