"""Schemas of volume verdicts (in ``POST /v1/actuals`` responses) and of ``GET /v1/alerts``."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

__all__ = ["VolumeVerdict", "AlertOut", "AlertsOut"]


class VolumeVerdict(BaseModel):
    """The volume detector's verdict on one posted point."""

    series_id: str
    ds: datetime
    status: Literal["judged", "warmup", "already_seen", "forecast_only"] = Field(
        description="judged; warmup: learned, never flagged; already_seen: at or before the last point judged; "
        "forecast_only: a series of the forecast model, whose grid is not the volume detector's: not judged"
    )
    y: float | None = Field(
        None, description="the point's value (order volume: the orders counted in the step)"
    )
    expected: float | None = None
    lo: float | None = Field(None, description="95% interval, lower end")
    hi: float | None = Field(None, description="95% interval, upper end")
    score: float | None = Field(None, description="1 - two-sided tail probability of the point (0..1)")
    flagged: bool = False
    alert: bool = Field(False, description="this point opened an alert (stored; sent to the webhook)")
    direction: Literal["surge", "drop"] | None = None
    reason: str | None = None


class AlertOut(BaseModel):
    alert_id: str
    series_id: str
    ds: datetime
    y: float
    expected: float
    lo: float
    hi: float
    score: float
    direction: Literal["surge", "drop"]
    reason: str
    created_at: datetime
    delivery: Literal["pending", "delivered", "none"] = Field(
        description="webhook delivery: pending (in the outbox), delivered, none (no webhook configured)"
    )
    attempts: int
    delivered_at: datetime | None = None
    last_error: str | None = None


class AlertsOut(BaseModel):
    alerts: list[AlertOut]
    next_since: datetime | None = Field(
        None, description="pass as ?since= to continue after the last alert returned (None: no alert)"
    )
