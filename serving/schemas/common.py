"""Field types shared by the schemas: the one boundary every request value passes (``features.bounds``).

Types are strict where a lax conversion would change a value's meaning: an identifier must be a JSON string
(``13069`` is refused, not turned into ``"13069"``), a number must be a JSON number (``false`` is not 0), a
timestamp an ISO 8601 string (an epoch number such as ``0`` is refused, not read as 1970-01-01), and a 0/1 flag
the integer 0 or 1 (not ``true`` or ``1.0``). Strings carry no control characters (a NUL cannot be stored in
PostgreSQL) and identifiers at most 128 characters; timestamps lie in 1900-01-01 .. 2200-12-31 UTC; numbers are
finite and within the bounds documented in ``features.bounds``. Every violation is a field-level 422.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    Field,
    Strict,
    StringConstraints,
    WithJsonSchema,
)

from features.bounds import (
    MAX_ID_LENGTH,
    MAX_TEXT_LENGTH,
    NO_CONTROL_CHARACTERS,
    timestamp_problem,
)

__all__ = [
    "Id",
    "OptionalId",
    "Text",
    "OptionalText",
    "UtcDatetime",
    "StrictFloat",
    "StrictInt",
    "StrictBool",
    "Binary",
    "ModelRef",
    "INPUT_CONFIG",
    "blank_to_none",
    "naive_utc",
]

INPUT_CONFIG: dict[str, Any] = {"extra": "ignore"}
"""``model_config`` of the request schemas (unknown fields are ignored; nothing is coerced)."""

_YEARS_PATTERN = r"^(19[0-9]{2}|2[01][0-9]{2}|2200)-"
_EPOCH_LIKE = re.compile(r"^\s*[-+]?\d+(\.\d*)?\s*$")


def blank_to_none(value: Any) -> Any:
    """``""`` / blanks / ``null`` -> None (an empty customer_id is a guest, as in the orders input format)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return value


def naive_utc(value: datetime) -> datetime:
    """Aware timestamps -> UTC; naive ones are taken as UTC (as ``features.validation`` does); no tzinfo.

    Refuses timestamps outside 1900-01-01 .. 2200-12-31 UTC (checked before the UTC conversion, which itself
    overflows near year 9999).
    """
    problem = timestamp_problem(value)
    if problem is not None:
        raise ValueError(problem)
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value


def _iso_string(value: Any) -> Any:
    """Let only ISO 8601 strings (and datetimes, for Python callers) through: no epoch numbers."""
    if isinstance(value, bool | int | float) or (isinstance(value, str) and _EPOCH_LIKE.match(value)):
        raise ValueError(
            f"expected an ISO 8601 date or timestamp string such as '2011-12-09T08:39:00Z', got {value!r} "
            "(epoch numbers are not accepted)"
        )
    return value


def _zero_or_one(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"expected the integer 0 or 1, got {value!r}")
    return value


_SAFE = {"pattern": NO_CONTROL_CHARACTERS}
Id = Annotated[
    str,
    Strict(),
    StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_ID_LENGTH, **_SAFE),
]
"""An identifier (order, customer, SKU, series): a string of 1-128 characters after stripping, no control
characters; numbers are refused (send ``"13069"``, not ``13069``)."""

OptionalId = Annotated[Id | None, BeforeValidator(blank_to_none)]
Text = Annotated[
    str,
    Strict(),
    StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_TEXT_LENGTH, **_SAFE),
]
OptionalText = Annotated[Text | None, BeforeValidator(blank_to_none)]
UtcDatetime = Annotated[
    datetime,
    BeforeValidator(_iso_string),
    AfterValidator(naive_utc),
    WithJsonSchema(
        {
            "type": "string",
            "format": "date-time",
            "pattern": _YEARS_PATTERN,
            "description": "ISO 8601 date or timestamp in 1900-01-01 .. 2200-12-31 UTC",
        }
    ),
]
"""ISO 8601 date or timestamp in 1900-01-01 .. 2200-12-31 UTC; with an offset it is converted to UTC, without
one it is taken as UTC."""

StrictFloat = Annotated[float, Strict(), Field(allow_inf_nan=False)]
"""A finite JSON number (integers allowed; ``false``, ``"1.5"``, NaN and infinities refused)."""
StrictInt = Annotated[int, Strict()]
StrictBool = Annotated[bool, Strict()]
Binary = Annotated[Literal[0, 1], BeforeValidator(_zero_or_one)]
"""The integer 0 or 1 (``true`` / ``1.0`` / ``"1"`` refused)."""


class ModelRef(BaseModel):
    """The model version that made a decision."""

    name: str = Field(examples=["orderpulse-anomaly"])
    version: str = Field(examples=["3"])
    alias: str | None = Field(None, examples=["champion"])
