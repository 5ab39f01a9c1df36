"""Schemas of ``POST /v1/orders/score`` and ``POST /v1/events``: orders in the ``orders`` input shape, labels.

An order is the JSON form of the order lines of the input format: one object with the order's fields and its
``lines``. Everything that would make a feature undefined is refused here with a field-level 422, before any
model runs or anything is stored (the bounds are ``features.bounds``'): a quantity outside 0.001 .. 1,000,000
(returns and cancellations are exception events, not order lines), a price outside 0 .. 1,000,000, NaN or
infinite numbers (``NaN`` / ``Infinity`` literals), a number where a string belongs or the reverse, no lines,
a ``created_at`` that is not an ISO 8601 string in 1900-01-01 .. 2200-12-31, a control character in a string,
the same ``order_id`` twice in one request.

Unknown categories are *not* an error: a ``country`` (``channel``, ``region``) the model never saw is scored
as a missing category, and the response lists it in ``unknown`` (``{"country": "Atlantis"}``), so a caller can
tell a new market from a typo.
"""

from __future__ import annotations

from collections import Counter
from typing import Annotated, Any, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from features.bounds import MAX_QUANTITY, MAX_UNIT_PRICE, MIN_QUANTITY
from serving.schemas.alerts import VolumeVerdict
from serving.schemas.common import (
    INPUT_CONFIG,
    Binary,
    Id,
    ModelRef,
    OptionalId,
    OptionalText,
    StrictFloat,
    UtcDatetime,
)

__all__ = [
    "OrderLineIn",
    "OrderIn",
    "ScoreBatchIn",
    "ScoreRequest",
    "Reason",
    "ScoredOrder",
    "ScoreBatchOut",
    "LabelIn",
    "EventsIn",
    "EventResult",
    "EventsOut",
    "ExplainMode",
]

ExplainMode = Literal["flagged", "all", "none"]

_INPUT = ConfigDict(**INPUT_CONFIG)


class OrderLineIn(BaseModel):
    """One line: a SKU, how many units (0.001 .. 1,000,000) and the unit price (0 .. 1,000,000)."""

    model_config = _INPUT

    sku: Id = Field(examples=["85123A"])
    quantity: StrictFloat = Field(ge=MIN_QUANTITY, le=MAX_QUANTITY, examples=[6])
    unit_price: StrictFloat = Field(ge=0, le=MAX_UNIT_PRICE, examples=[2.55])

    @field_validator("quantity", mode="before")
    @classmethod
    def _not_a_return(cls, value: Any) -> Any:
        """A line of an export's cancellation invoice (quantity -4) gets the fix, not just the bound."""
        if isinstance(value, int | float) and not isinstance(value, bool) and value <= 0:
            raise PydanticCustomError(
                "quantity_not_positive",
                "Input should be greater than or equal to 0.001: a cancellation or return is not an order; "
                "report it as a label of the order it cancels (POST /v1/events)",
            )
        return value


class OrderIn(BaseModel):
    """One order in the ``orders`` input shape (other fields are ignored)."""

    model_config = _INPUT

    order_id: Id = Field(examples=["581475"])
    customer_id: OptionalId = Field(
        None, description="null or empty for a guest checkout", examples=["13069"]
    )
    created_at: UtcDatetime = Field(examples=["2011-12-09T08:39:00Z"])
    lines: list[OrderLineIn] = Field(min_length=1, max_length=10_000)
    country: OptionalText = Field(None, examples=["United Kingdom"])
    channel: OptionalText = None
    region: OptionalText = None


def _unique_order_ids(orders: list[OrderIn], what: str) -> None:
    counts = Counter(o.order_id for o in orders)
    repeated = {k: n for k, n in counts.items() if n > 1}
    if repeated:
        shown = ", ".join(f"{k!r} ({n}x)" for k, n in list(repeated.items())[:5])
        raise ValueError(
            f"order_id must be unique within one request; repeated in {what}: {shown}. Send each order once"
        )


class ScoreBatchIn(BaseModel):
    """A batch of orders to score (at most ``ORDERPULSE_MAX_BATCH_ORDERS``; more is 413)."""

    model_config = _INPUT

    orders: list[OrderIn] = Field(min_length=1)

    @model_validator(mode="after")
    def _ids_unique(self) -> ScoreBatchIn:
        _unique_order_ids(self.orders, "orders")
        return self


def _request_kind(value: Any) -> str:
    if isinstance(value, dict):
        return "batch" if "orders" in value else "order"
    return "batch" if isinstance(value, ScoreBatchIn) else "order"


ScoreRequest = Annotated[
    Annotated[OrderIn, Tag("order")] | Annotated[ScoreBatchIn, Tag("batch")],
    Discriminator(_request_kind),
]
"""One order, or ``{"orders": [...]}`` (error locations name which: ``body.order...`` / ``body.batch...``)."""


class Reason(BaseModel):
    """Why the score is high: one feature, its value, its contribution (log-odds) and a sentence."""

    feature: str = Field(examples=["customer_prior_exceptions"])
    value: float | int | str | None = Field(examples=[5])
    contribution: float = Field(examples=[0.61])
    text: str = Field(
        examples=["customer had exceptions on 5 of their 7 earlier orders with a known outcome (+0.61)"]
    )


class ScoredOrder(BaseModel):
    """The decision on one order."""

    order_id: str
    score: float = Field(description="calibrated probability that the order becomes an exception")
    flagged: bool = Field(description="score >= threshold")
    threshold: float
    reasons: list[Reason] = Field(
        description="top contributions pushing the score up: for flagged orders, or every order with ?explain=all"
    )
    unknown: dict[str, str] = Field(
        default_factory=dict,
        description="category fields whose value the model never saw (scored as missing), e.g. {'country': 'Atlantis'}",
    )
    model: ModelRef
    decision_id: str = Field(description="GET /v1/decisions/{decision_id} returns the recorded decision")


class ScoreBatchOut(BaseModel):
    """The decisions on a batch, in request order."""

    results: list[ScoredOrder]
    n_orders: int
    n_flagged: int
    model: ModelRef


class LabelIn(BaseModel):
    """The outcome of an order: 1 = it became an exception, 0 = it did not; known from ``labeled_at``."""

    model_config = _INPUT

    order_id: Id
    label: Binary
    labeled_at: UtcDatetime


class EventsIn(BaseModel):
    """New orders and/or outcomes reported by the OMS (``exceptions`` is accepted as a name for ``labels``)."""

    model_config = ConfigDict(
        **INPUT_CONFIG,
        json_schema_extra={  # at least one event (the validator below says so too)
            "anyOf": [
                {"required": [name], "properties": {name: {"minItems": 1}}} for name in ("orders", "labels")
            ]
        },
    )

    orders: list[OrderIn] = Field(default_factory=list)
    labels: list[LabelIn] = Field(default_factory=list, validation_alias=AliasChoices("labels", "exceptions"))

    @model_validator(mode="after")
    def _not_empty(self) -> EventsIn:
        if not self.orders and not self.labels:
            raise ValueError("send at least one event: a non-empty 'orders' and/or 'labels' list")
        _unique_order_ids(self.orders, "orders")
        counts = Counter(lab.order_id for lab in self.labels)
        repeated = [k for k, n in counts.items() if n > 1]
        if repeated:
            raise ValueError(
                f"one label per order_id per request; repeated in labels: {repeated[:5]}. Send each outcome once"
            )
        return self


class EventResult(BaseModel):
    kind: Literal["order", "label"]
    order_id: str = Field(description="as sent")
    status: Literal["accepted", "duplicate", "conflict"]
    note: str | None = None
    stored_as: str | None = Field(
        None,
        description="the order_id as stored when the id rule read it differently ('14911.0' -> '14911')",
    )


class EventsOut(BaseModel):
    """What was stored: counts per kind and status, and one result per event in request order."""

    orders: dict[str, int] = Field(examples=[{"accepted": 1, "duplicate": 0, "conflict": 0}])
    labels: dict[str, int] = Field(
        examples=[{"accepted": 1, "duplicate": 0, "conflict": 0, "unknown_order": 0}]
    )
    results: list[EventResult]
    ids_whole_float_repaired: int = Field(
        0,
        description="ids sent as whole floats ('14911.0') stored as integer text ('14911'), as in the tables",
    )
    ids_merged_by_repair: int = Field(
        0,
        description="distinct ids as sent that the id rule made one id with another ('14911.0' and '14911')",
    )
    visible: str = Field(description="when scoring sees these events, on this replica and on the others")
    history: dict[str, Any] | None = Field(None, description="the order history this replica scores with now")
    volume: list[VolumeVerdict] | None = Field(
        None,
        description="verdicts of the order-volume steps this request closed (ORDERPULSE_VOLUME_EVENT_KEYS)",
    )
    volume_late: int | None = Field(
        None,
        description="accepted orders of this request whose volume step was already judged: stored, not counted",
    )
    volume_future: int | None = Field(
        None,
        description="accepted orders of this request created more than 15 minutes after the server's clock: "
        "stored, not counted for volume",
    )
    volume_ahead: int | None = Field(
        None,
        description="accepted orders of this request counted in a step far past the newest steps (a lone order "
        "dated ahead of the others): held there, judged once the stream reaches it or another order confirms it",
    )
