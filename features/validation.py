"""Validation of the six input tables, with one documented policy per kind of problem.

Policy (also in README "Input format"):

==============================  ==========================================================================
problem                         what happens
==============================  ==========================================================================
missing required column         refused (always)
unparseable date / number       refused; with ``on_bad_rows="drop"`` the rows are dropped and counted
out-of-range value              (negative ``y``/``quantity``, ``open``/``label`` not 0/1, ``open=0`` with
                                ``y>0``, empty id): same as above
exact duplicate rows            dropped and counted (they carry no information)
lines of one order whose        repaired: every line gets the order's first line time (counted as
``created_at`` differ by at     ``order_lines_set_to_first_line_time`` and ``orders_with_line_times_spread``);
most ``order_time_spread``      larger spreads are out-of-range values (refused or dropped as above)
(default 5 minutes)
id column exported as whole     repaired when every value of the column is a whole number: ``14911.0`` (float
floats (``14911.0``)            or text) becomes ``"14911"``; counted as ``ids_whole_float_repaired``, and
                                ``"14911.0"`` next to ``"14911"`` merged and counted as ``ids_merged_by_repair``
                                (``features.ids``)
conflicting duplicate keys      refused: e.g. two different ``y`` for one (series_id, ds)
missing ``y``                   kept as missing (counted): not trained on, not used by lag features
gaps in a series                repaired later by ``features.forecast_frame`` (rows inserted with missing
                                ``y``, counted)
covariates missing for the      refused by ``features.forecast_frame`` when a forecast is built
forecast horizon
==============================  ==========================================================================

Every problem is reported at once (table, column, how many rows, example rows, the fix) in one
``DataValidationError``; nothing is repaired or dropped without being counted in the ``ValidationReport``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
import pandera.pandas as pa

from features.bounds import MAX_TIMESTAMP, MIN_TIMESTAMP
from features.errors import DataValidationError, Problem
from features.ids import normalize_ids

__all__ = [
    "TableName",
    "TABLES",
    "ValidationReport",
    "validate",
    "parse_timestamps",
]

TableName = Literal["series", "orders", "covariates", "weather", "static", "labels"]
OnBadRows = Literal["raise", "drop"]

_ORDER_LOG_HINT = (
    "; this looks like an order log (order_id, created_at): turn it into a series table first with "
    "`orderpulse features build series --orders FILE --freq D --by COLUMN --out series.parquet` "
    "(features.orders.aggregate_orders)"
)

_EXPORT_HINT = (
    "; a shop's export with its own names (InvoiceNo, StockCode, Quantity, ...) and cancellation lines is "
    "converted by `orderpulse data orders --export FILE --out orders.csv --cancelled-prefix C` "
    "(features.order_export)"
)

ORDER_TIME_SPREAD = "5min"
"""Largest spread of line times inside one order that validation repairs (to the order's first line time)."""

_MAX_EXAMPLES = 3


@dataclass(frozen=True)
class _Spec:
    required: tuple[str, ...]
    ids: tuple[str, ...] = ()  # coerced to str
    timestamps: tuple[str, ...] = ()  # coerced to datetime64[ns], tz-naive (UTC)
    numbers: tuple[str, ...] = ()  # coerced to float64
    key: tuple[str, ...] = ()  # unique after exact duplicates are dropped
    optional_ids: tuple[str, ...] = ()


TABLES: dict[str, _Spec] = {
    "series": _Spec(
        ("series_id", "ds", "y"),
        ids=("series_id",),
        timestamps=("ds",),
        numbers=("y", "open"),
        key=("series_id", "ds"),
    ),
    "orders": _Spec(
        ("order_id", "created_at", "sku", "quantity", "unit_price"),
        ids=("order_id", "sku"),
        timestamps=("created_at",),
        numbers=("quantity", "unit_price"),
        optional_ids=("customer_id", "country", "channel", "region"),
    ),
    "covariates": _Spec(("ds",), timestamps=("ds",), optional_ids=("series_id",), key=("series_id", "ds")),
    "weather": _Spec(("region", "ds"), ids=("region",), timestamps=("ds",), key=("region", "ds")),
    "static": _Spec(("series_id",), ids=("series_id",), optional_ids=("region",), key=("series_id",)),
    "labels": _Spec(
        ("order_id", "label", "labeled_at"),
        ids=("order_id",),
        timestamps=("labeled_at",),
        numbers=("label",),
        key=("order_id",),
    ),
}

_FIX = {
    "not_nullable": "fill in the value or remove the row",
    "greater_than_or_equal_to(0)": "values must be >= 0; remove returns/corrections or set them to 0",
    "greater_than(0)": "quantities must be > 0; send returns and cancellations as labels, not as order lines",
    "isin([0, 1])": "use 0 or 1",
    "closed_with_volume": "a row with open=0 must have y=0 (or missing); set open=1 if the series was open",
}


@dataclass
class ValidationReport:
    """What validation changed: row counts in and out and every repair, by name."""

    table: str
    rows_in: int
    rows_out: int = 0
    repairs: dict[str, int] = field(default_factory=dict)

    def count(self, what: str, n: int) -> None:
        if n:
            self.repairs[what] = self.repairs.get(what, 0) + int(n)

    def __str__(self) -> str:
        fixes = ", ".join(f"{k}={v}" for k, v in self.repairs.items()) or "nothing repaired"
        return f"{self.table}: {self.rows_in} rows in, {self.rows_out} out ({fixes})"


def validate(
    df: pd.DataFrame,
    table: TableName,
    *,
    on_bad_rows: OnBadRows = "raise",
    order_time_spread: str | pd.Timedelta = ORDER_TIME_SPREAD,
) -> tuple[pd.DataFrame, ValidationReport]:
    """Check and normalise one input table.

    Returns the cleaned frame (typed columns, sorted by its key) and a report of what was repaired.
    Raises ``DataValidationError`` listing every problem when the table is refused. ``order_time_spread``
    (orders only): lines of one order whose times differ by at most this much get the order's first line time
    (an export that stamps each line as it is written); ``"0s"`` turns the repair off.
    """
    if table not in TABLES:
        raise ValueError(f"Unknown table {table!r}; expected one of {sorted(TABLES)}.")
    if on_bad_rows not in ("raise", "drop"):
        raise ValueError(f"on_bad_rows must be 'raise' or 'drop'. Got {on_bad_rows!r} instead.")
    spec = TABLES[table]
    report = ValidationReport(table=table, rows_in=len(df))
    missing = [c for c in spec.required if c not in df.columns]
    if missing:
        hint = _ORDER_LOG_HINT if table == "series" and {"order_id", "created_at"} <= set(df.columns) else ""
        hint = _EXPORT_HINT if table == "orders" else hint
        raise DataValidationError(
            [
                Problem(
                    table,
                    c,
                    "required column is missing",
                    f"add a column named exactly {c!r} (found columns: {list(df.columns)[:12]})"
                    + (hint if i == 0 else ""),
                )
                for i, c in enumerate(missing)
            ]
        )
    if df.empty:
        raise DataValidationError([Problem(table, None, "the table has no rows", "pass a non-empty table")])

    out = df.reset_index(drop=True).copy()
    problems: list[Problem] = []
    bad = np.zeros(len(out), dtype=bool)

    for col in spec.ids + tuple(c for c in spec.optional_ids if c in out.columns):
        out[col] = normalize_ids(out[col], report)
    for col in spec.timestamps:
        parsed = parse_timestamps(out[col])
        failed = parsed.isna() & out[col].notna()
        bad |= _record(
            problems,
            out,
            failed,
            table,
            col,
            "unparseable date/time",
            "use ISO 8601 dates such as 2015-07-31 or 2015-07-31 14:05:00 (a column of dates like 01/02/2011 "
            "is read only when one of its days is above 12, which shows the day/month order)",
        )
        outside = parsed.notna() & ((parsed < MIN_TIMESTAMP) | (parsed > MAX_TIMESTAMP))
        bad |= _record(
            problems,
            out,
            outside,
            table,
            col,
            f"date/time outside {MIN_TIMESTAMP:%Y-%m-%d} .. {MAX_TIMESTAMP:%Y-%m-%d}",
            "correct the dates (a wrong century?) or leave the rows out",
        )
        out[col] = parsed
    for col in spec.numbers:
        if col not in out.columns:
            continue
        parsed = pd.to_numeric(out[col], errors="coerce").astype("float64")
        failed = parsed.isna() & out[col].notna()
        bad |= _record(problems, out, failed, table, col, "not a number", "use plain numbers like 12 or 3.5")
        infinite = np.isinf(parsed.to_numpy())
        bad |= _record(
            problems,
            out,
            pd.Series(infinite, index=out.index),
            table,
            col,
            "infinite value",
            "replace inf with a finite value or leave the cell empty",
        )
        out[col] = parsed.where(~infinite)

    if table == "orders":
        _repair_order_time_spread(out, pd.Timedelta(order_time_spread), report)
    bad |= _check_values(out, table, problems)
    bad |= _check_table_rules(out, table, problems)

    if problems and on_bad_rows == "raise":
        for p in problems:
            object.__setattr__(p, "fix", p.fix + " (or pass --on-bad-rows drop to drop and count such rows)")
        raise DataValidationError(problems)
    if bad.any():
        report.count("bad_rows_dropped", int(bad.sum()))
        out = out.loc[~bad].reset_index(drop=True)

    if table == "series":
        if "open" not in out.columns:
            out["open"] = 1
        out["open"] = out["open"].fillna(1).astype("int8")
        report.count("missing_y_kept_as_missing", int(out["y"].isna().sum()))
    if table == "labels":
        out["label"] = out["label"].astype("int8")
    if table == "orders" and "customer_id" not in out.columns:
        out["customer_id"] = pd.Series(pd.NA, index=out.index, dtype="string")
        report.count("customer_id_column_absent_all_guests", len(out))

    out, conflicts = _dedupe(out, spec, table, report)
    if conflicts:
        raise DataValidationError(conflicts)
    sort_cols = [c for c in spec.key if c in out.columns] or list(spec.timestamps)
    if table == "orders":
        sort_cols = ["created_at", "order_id"]
    if sort_cols:
        out = out.sort_values(sort_cols, kind="stable").reset_index(drop=True)
    report.rows_out = len(out)
    return out, report


def parse_timestamps(values: pd.Series) -> pd.Series:
    """Parse dates/timestamps to tz-naive ``datetime64[ns]`` (tz-aware input is converted to UTC).

    Fast ISO-8601 parsing first; only the values that fail are retried with the flexible parser.
    Unparseable values become ``NaT`` (the caller decides whether that is an error).
    """
    if pd.api.types.is_datetime64_any_dtype(values):
        parsed = values
    else:
        # pandas applies the first value's UTC offset to later naive values when both kinds are mixed, so
        # values with an explicit offset and naive values (taken as UTC) are parsed separately.
        text = values.astype("string")
        has_offset = text.str.contains(r"(?:Z|[+-]\d{2}:?\d{2})$", regex=True, na=False)
        parsed = pd.Series(pd.NaT, index=values.index, dtype="datetime64[ns, UTC]")
        for part in (has_offset, ~has_offset):
            if part.any():
                parsed.loc[part] = pd.to_datetime(values[part], errors="coerce", format="ISO8601", utc=True)
        retry = parsed.isna() & values.notna()
        if retry.any():
            parsed.loc[retry] = _parse_flexible(text[retry])
    if getattr(parsed.dt, "tz", None) is not None:
        parsed = parsed.dt.tz_convert("UTC").dt.tz_localize(None)
    return parsed.astype("datetime64[ns]")


# ---------------------------------------------------------------------------------------------------------


_NUMERIC_DATE = r"^\s*(\d{1,2})[/.-](\d{1,2})[/.-]\d{2,4}(?!\d)"


def _parse_flexible(text: pd.Series) -> pd.Series:
    """Non-ISO values: numeric dates (``01/12/2010 08:26``) are read with one day/month order for the whole
    column, the one the column itself shows (a first field above 12: day first; a second field above 12: month
    first). A column that shows neither (every field <= 12) or both cannot be read without a guess: NaT, so
    the caller refuses it (a per-value parser read ``12/01/2011`` as 1 December and ``13/01/2011`` as 13
    January in one column). Other values (``Jan 6, 2024``) go to pandas' flexible parser."""
    fields = text.str.extract(_NUMERIC_DATE).astype("float64")
    numeric = fields[0].notna().to_numpy()
    out = pd.Series(pd.NaT, index=text.index, dtype="datetime64[ns, UTC]")
    if (~numeric).any():
        out.loc[~numeric] = pd.to_datetime(text[~numeric], errors="coerce", format="mixed", utc=True)
    if numeric.any():
        day_first, month_first = bool((fields[0] > 12).any()), bool((fields[1] > 12).any())
        if day_first != month_first:
            out.loc[numeric] = pd.to_datetime(
                text[numeric], errors="coerce", format="mixed", dayfirst=day_first, utc=True
            )
    return out


def _repair_order_time_spread(df: pd.DataFrame, tolerance: pd.Timedelta, report: ValidationReport) -> None:
    """Give every line of an order whose line times spread by at most ``tolerance`` the first line's time."""
    if tolerance < pd.Timedelta(0):
        raise ValueError(f"order_time_spread must be >= 0 (e.g. '5min'). Got {tolerance} instead.")
    times = df["created_at"].where(df["order_id"].notna())
    g = times.groupby(df["order_id"], sort=False)
    first = g.transform("min")
    spread = g.transform("max") - first
    repair = (spread > pd.Timedelta(0)) & (spread <= tolerance) & (times != first) & times.notna()
    if repair.any():
        report.count("orders_with_line_times_spread", df.loc[repair, "order_id"].nunique())
        report.count("order_lines_set_to_first_line_time", int(repair.sum()))
        df.loc[repair, "created_at"] = first[repair]


def _value_schema(table: str, df: pd.DataFrame) -> pa.DataFrameSchema:
    cols: dict[str, pa.Column] = {}
    spec = TABLES[table]
    for c in spec.ids:
        cols[c] = pa.Column(nullable=False)
    for c in spec.timestamps:
        cols[c] = pa.Column(nullable=False)
    if table == "series":
        cols["y"] = pa.Column(checks=pa.Check.ge(0), nullable=True)
        if "open" in df.columns:
            cols["open"] = pa.Column(checks=pa.Check.isin([0, 1]), nullable=True)
    elif table == "orders":
        cols["quantity"] = pa.Column(checks=pa.Check.gt(0), nullable=False)
        cols["unit_price"] = pa.Column(checks=pa.Check.ge(0), nullable=False)
    elif table == "labels":
        cols["label"] = pa.Column(checks=pa.Check.isin([0, 1]), nullable=False)
    return pa.DataFrameSchema(cols, strict=False, coerce=False)


def _check_values(df: pd.DataFrame, table: str, problems: list[Problem]) -> np.ndarray:
    bad = np.zeros(len(df), dtype=bool)
    try:
        _value_schema(table, df).validate(df, lazy=True)
    except pa.errors.SchemaErrors as err:
        fc = err.failure_cases
        fc = fc[fc["index"].notna()]
        for (col, check), group in fc.groupby(["column", "check"], sort=False):
            mask = np.zeros(len(df), dtype=bool)
            mask[group["index"].astype(int).to_numpy()] = True
            # rows already reported as unparseable are not reported twice as "missing"
            if check == "not_nullable":
                already = {p.column for p in problems if p.issue in ("unparseable date/time", "not a number")}
                if col in already:
                    continue
            issue = "missing value" if check == "not_nullable" else f"value fails check {check}"
            bad |= _record(
                problems,
                df,
                pd.Series(mask, index=df.index),
                table,
                col,
                issue,
                _FIX.get(check, "correct the value"),
            )
    return bad


def _check_table_rules(df: pd.DataFrame, table: str, problems: list[Problem]) -> np.ndarray:
    bad = np.zeros(len(df), dtype=bool)
    if table == "series" and "open" in df.columns:
        closed_with_volume = (df["open"] == 0) & (df["y"] > 0)
        bad |= _record(
            problems, df, closed_with_volume, table, "open", "open=0 but y>0", _FIX["closed_with_volume"]
        )
    if table == "orders":
        # one order has one creation time and one customer across its lines
        g = df.groupby("order_id", sort=False)
        n_times = g["created_at"].transform("nunique")
        bad |= _record(
            problems,
            df,
            n_times > 1,
            table,
            "created_at",
            "lines of one order have different created_at",
            f"give every line of an order the same created_at (spreads up to {ORDER_TIME_SPREAD} are set to "
            "the order's first line time automatically)",
        )
        if "customer_id" in df.columns:
            n_cust = g["customer_id"].transform("nunique")
            bad |= _record(
                problems,
                df,
                n_cust > 1,
                table,
                "customer_id",
                "lines of one order name different customers",
                "give every line of an order the same customer_id",
            )
    return bad


def _dedupe(
    df: pd.DataFrame, spec: _Spec, table: str, report: ValidationReport
) -> tuple[pd.DataFrame, list[Problem]]:
    exact = df.duplicated(keep="first")
    report.count("exact_duplicate_rows_dropped", int(exact.sum()))
    df = df.loc[~exact]
    key = [c for c in spec.key if c in df.columns]
    if not key:
        return df, []
    dup = df.duplicated(subset=key, keep=False)
    if not dup.any():
        return df, []
    examples = df.loc[dup].head(_MAX_EXAMPLES * 2).to_dict("records")
    return df, [
        Problem(
            table,
            ",".join(key),
            f"duplicate key ({', '.join(key)}) with different values",
            "keep one row per key (aggregate or remove the duplicates)",
            int(dup.sum()),
            [_jsonable(r) for r in examples],
        )
    ]


def _record(
    problems: list[Problem],
    df: pd.DataFrame,
    mask: pd.Series,
    table: str,
    col: str | None,
    issue: str,
    fix: str,
) -> np.ndarray:
    m = np.asarray(mask, dtype=bool)
    n = int(m.sum())
    if n:
        rows = df.loc[m].head(_MAX_EXAMPLES)
        examples = [
            {"row": int(i), **_jsonable(r)} for i, r in zip(rows.index, rows.to_dict("records"), strict=True)
        ]
        problems.append(Problem(table, col, issue, fix, n, examples))
    return m


def _jsonable(record: dict) -> dict:
    out = {}
    for k, v in list(record.items())[:8]:
        if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA or v is pd.NaT:
            out[k] = None
        elif isinstance(v, pd.Timestamp):
            out[k] = v.isoformat()
        elif isinstance(v, np.generic):
            out[k] = v.item()
        else:
            out[k] = v
    return out
