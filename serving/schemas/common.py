"""Field types shared by the schemas: identifiers, UTC timestamps, finite numbers, the model reference."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, Field, StringConstraints

__all__ = ["Id", "OptionalId", "OptionalText", "UtcDatetime", "ModelRef", "blank_to_none", "naive_utc"]


def blank_to_none(value: Any) -> Any:
    """``""`` / blanks / ``null`` -> None (an empty customer_id is a guest, as in the orders input format)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return value


def naive_utc(value: datetime) -> datetime:
    """Aware timestamps -> UTC; naive ones are taken as UTC (as ``features.validation`` does); no tzinfo."""
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value


Id = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128)]
"""An identifier (order, customer, SKU, series): 1-128 characters after stripping; numbers are accepted."""

OptionalId = Annotated[Id | None, BeforeValidator(blank_to_none)]
OptionalText = Annotated[
    Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)] | None,
    BeforeValidator(blank_to_none),
]
UtcDatetime = Annotated[datetime, AfterValidator(naive_utc)]
"""ISO 8601 date or timestamp; with an offset it is converted to UTC, without one it is taken as UTC."""


class ModelRef(BaseModel):
    """The model version that made a decision."""

    name: str = Field(examples=["orderpulse-anomaly"])
    version: str = Field(examples=["3"])
    alias: str | None = Field(None, examples=["champion"])
