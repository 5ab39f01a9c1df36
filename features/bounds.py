"""The documented range of every input value: timestamps, quantities, prices, observed values, identifiers.

One home for the limits every input passes (HTTP bodies and parameters, stored events, actuals): values
outside them are refused with a message naming the value and the limit, never converted into something else.

=================== ========================================================================================
value               accepted
=================== ========================================================================================
timestamps          1900-01-01T00:00:00 .. 2200-12-31T23:59:59.999999 (UTC). pandas keeps timestamps as
                    nanoseconds (1677-09-21 .. 2262-04-11); outside that a conversion either fails or, in
                    numpy, silently wraps around (9999-12-31 became 1816-03-30), so the range is checked
                    before any conversion.
``quantity``        MIN_QUANTITY (0.001) .. MAX_QUANTITY (1,000,000) units per line
``unit_price``      0 .. MAX_UNIT_PRICE (1,000,000) per unit; a line's value (quantity x price) is at most
                    1e12 and an order's (10,000 lines at most) 1e16: finite in every sum and ratio
``y`` (actuals)     0 .. MAX_ACTUAL (1e12)
identifiers         1 .. MAX_ID_LENGTH (128) characters; text fields 1 .. MAX_TEXT_LENGTH (200)
every string        no control characters (U+0000-U+001F, U+007F): PostgreSQL text cannot hold NUL, and
                    log lines and CSV exports must not be split by a newline in an id
=================== ========================================================================================
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "MIN_TIMESTAMP",
    "MAX_TIMESTAMP",
    "MIN_QUANTITY",
    "MAX_QUANTITY",
    "MAX_UNIT_PRICE",
    "MAX_ACTUAL",
    "MAX_ID_LENGTH",
    "MAX_TEXT_LENGTH",
    "NO_CONTROL_CHARACTERS",
    "timestamp_problem",
    "text_problem",
    "number_problem",
    "out_of_bounds_rows",
]

MIN_TIMESTAMP = datetime(1900, 1, 1)
MAX_TIMESTAMP = datetime(2200, 12, 31, 23, 59, 59, 999999)
MIN_QUANTITY = 0.001
MAX_QUANTITY = 1_000_000.0
MAX_UNIT_PRICE = 1_000_000.0
MAX_ACTUAL = 1e12
MAX_ID_LENGTH = 128
MAX_TEXT_LENGTH = 200
NO_CONTROL_CHARACTERS = r"^[^\x00-\x1f\x7f]*$"
"""Regular expression (for JSON schemas) of a string without control characters."""

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_RANGE = f"{MIN_TIMESTAMP:%Y-%m-%d} .. {MAX_TIMESTAMP:%Y-%m-%d}"


def timestamp_problem(value: datetime) -> str | None:
    """None when ``value`` (naive = UTC, or aware) lies in the accepted range, else what is wrong with it.

    Checks the year before converting an aware value to UTC (the conversion itself overflows near year 9999).
    """
    if not MIN_TIMESTAMP.year <= value.year <= MAX_TIMESTAMP.year:
        return f"{value.isoformat()} is outside the accepted range {_RANGE} (UTC)"
    naive = value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo is not None else value
    if not MIN_TIMESTAMP <= naive <= MAX_TIMESTAMP:
        return f"{value.isoformat()} is outside the accepted range {_RANGE} (UTC)"
    return None


def text_problem(value: str, max_length: int = MAX_ID_LENGTH) -> str | None:
    """None for a non-empty string of at most ``max_length`` characters without control characters."""
    if not value:
        return "is empty"
    if len(value) > max_length:
        return f"has {len(value)} characters, more than {max_length}"
    found = _CONTROL.search(value)
    if found:
        return f"contains the control character U+{ord(found.group()):04X} at position {found.start()}"
    return None


def number_problem(value: Any, low: float, high: float) -> str | None:
    """None for a finite number (not a bool) in ``[low, high]``, else what is wrong with it."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        return f"{value!r} is not a number"
    if not math.isfinite(value):
        return f"{value!r} is not finite"
    if not low <= value <= high:
        return f"{value!r} is outside [{low:g}, {high:g}]"
    return None


def out_of_bounds_rows(
    frame: pd.DataFrame,
    *,
    timestamps: tuple[str, ...] = (),
    ids: tuple[str, ...] = (),
    texts: tuple[str, ...] = (),
    numbers: dict[str, tuple[float, float]] | None = None,
) -> tuple[np.ndarray, dict[str, int]]:
    """Rows of ``frame`` with a value outside the bounds: a boolean mask and the count per column.

    Missing values pass (whether a column may be missing is the schema's business); timestamp columns may
    hold ``datetime`` objects or strings (a database returns whatever was stored).
    """
    bad = np.zeros(len(frame), dtype=bool)
    counts: dict[str, int] = {}

    def mark(column: str, mask: np.ndarray) -> None:
        nonlocal bad
        if mask.any():
            counts[column] = int(mask.sum())
            bad |= mask

    for col in timestamps:
        mark(col, np.array([_bad_timestamp(v) for v in frame[col].tolist()], dtype=bool))
    for col in ids:
        mark(col, _bad_text(frame[col], MAX_ID_LENGTH))
    for col in texts:
        mark(col, _bad_text(frame[col], MAX_TEXT_LENGTH))
    for col, (low, high) in (numbers or {}).items():
        values = pd.to_numeric(frame[col], errors="coerce").to_numpy(dtype="float64")
        mark(col, ~(np.isfinite(values) & (values >= low) & (values <= high)))
    return bad, counts


def _bad_timestamp(value: Any) -> bool:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return False
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return True
    if isinstance(value, datetime):
        try:
            return timestamp_problem(value) is not None
        except (OverflowError, ValueError):
            return True
    return True


def _bad_text(values: pd.Series, max_length: int) -> np.ndarray:
    return np.array(
        [v is not None and not pd.isna(v) and text_problem(str(v), max_length) is not None for v in values],
        dtype=bool,
    )
