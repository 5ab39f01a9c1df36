"""Schemas of ``POST /v1/forecast`` and ``POST /v1/actuals``.

A forecast request names the series (``series_ids``, or one ``series_id``), the ``horizon`` (default: the
model's), the interval level(s) (default 80), optionally the ``origin`` (default: the last observed value),
``explain`` (contributions by feature family) and a plan for the horizon: ``covariates`` rows (``ds``,
optional ``series_id``: absent = every requested series, then the covariate columns the model was trained
with, e.g. ``promo``) and ``weather`` rows (``region``, ``ds``, weather columns). Plan rows replace the stored
values of the same (series, date) column by column; columns a row does not mention keep the stored value.
A request with a plan is a what-if: every point also carries ``yhat_baseline`` (the forecast under the
stored plan) and ``delta`` = ``yhat - yhat_baseline``.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from features.bounds import MAX_ACTUAL, MAX_ID_LENGTH, MAX_TEXT_LENGTH, text_problem
from serving.schemas.alerts import VolumeVerdict
from serving.schemas.common import (
    INPUT_CONFIG,
    Binary,
    Id,
    ModelRef,
    OptionalId,
    StrictBool,
    StrictFloat,
    StrictInt,
    UtcDatetime,
)

__all__ = [
    "CovariateRowIn",
    "WeatherRowIn",
    "ClosureIn",
    "ForecastIn",
    "ForecastPoint",
    "SeriesForecast",
    "ForecastOut",
    "ActualIn",
    "ActualsIn",
    "ActualResult",
    "ActualsOut",
]

_INPUT = ConfigDict(**INPUT_CONFIG)
_PLAN = ConfigDict(**{**INPUT_CONFIG, "extra": "allow"})
_MAX_PLAN_VALUE = 1e12


def _is_number(value: int | str) -> bool:
    return isinstance(value, int) or str(value).strip().isdigit()


def _check_plan_values(row: BaseModel) -> None:
    """Plan columns: safe names; values null, bool, a short string without control characters or a finite
    number within +-1e12."""
    for name, value in (row.model_extra or {}).items():
        problem = text_problem(name, MAX_ID_LENGTH)
        if problem is not None:
            raise ValueError(
                f"the column name {name[:40]!r} {problem}: name a covariate the model was trained with"
            )
        if isinstance(value, bool) or value is None:
            continue
        if isinstance(value, str):
            problem = text_problem(value, MAX_TEXT_LENGTH) if value else None
            if problem is not None:
                raise ValueError(f"{name}: the value {value[:40]!r} {problem}")
            continue
        if isinstance(value, int | float):
            if not math.isfinite(value) or abs(value) > _MAX_PLAN_VALUE:
                raise ValueError(
                    f"{name} must be a finite number within +-{_MAX_PLAN_VALUE:g} or a string, got {value!r}"
                )
            continue
        raise ValueError(f"{name} must be a number, a string or null, got {type(value).__name__}")


class CovariateRowIn(BaseModel):
    """One date of the plan: ``{"series_id"?, "ds", "promo": 1, "state_holiday": "0", ...}``."""

    model_config = _PLAN

    series_id: OptionalId = Field(None, description="absent: the row applies to every requested series")
    ds: UtcDatetime

    @model_validator(mode="after")
    def _values(self) -> CovariateRowIn:
        _check_plan_values(self)
        return self


class WeatherRowIn(BaseModel):
    """One day of weather for a region: ``{"region", "ds", "temp_mean": 12.5, ...}``."""

    model_config = _PLAN

    region: Id
    ds: UtcDatetime

    @model_validator(mode="after")
    def _values(self) -> WeatherRowIn:
        _check_plan_values(self)
        return self


class ClosureIn(BaseModel):
    """A forecast step known in advance to be closed (``open`` 0, forecast exactly 0) or open (``open`` 1)."""

    model_config = _INPUT

    series_id: OptionalId = Field(None, description="absent: the row applies to every requested series")
    ds: UtcDatetime
    open: Binary = Field(0, description="0: closed (the default); 1: open, overriding a stored closure")


class ForecastIn(BaseModel):
    """What to forecast (see the module docstring)."""

    model_config = _INPUT

    series_ids: list[Id] | None = Field(None, min_length=1, examples=[["88", "126"]])
    series_id: Id | None = Field(None, examples=["88"])
    horizon: StrictInt | None = Field(
        None, ge=1, le=366, description="steps; default and maximum: the model's horizon"
    )
    level: StrictInt | None = Field(None, ge=1, le=99, description="interval level in percent (default 80)")
    levels: list[StrictInt | Id] | None = Field(
        None,
        min_length=1,
        max_length=20,
        description="several interval levels (numbers), and/or hierarchy levels to forecast every aggregate of "
        "(names such as 'region', 'total': the model must be trained with them)",
    )
    origin: UtcDatetime | None = Field(None, description="last observed step to forecast from")
    explain: StrictBool = False
    covariates: list[CovariateRowIn] | None = None
    weather: list[WeatherRowIn] | None = None
    closures: list[ClosureIn] | None = Field(
        None,
        description="known closures of forecast steps, e.g. [{'ds': '2015-06-14'}] (a Sunday for every series)",
        examples=[[{"series_id": "88", "ds": "2015-06-14", "open": 0}]],
    )

    @model_validator(mode="after")
    def _series_and_levels(self) -> ForecastIn:
        if not self.series_ids and not self.series_id and not self.hierarchy_levels:
            raise ValueError(
                "name the series to forecast: 'series_ids': [...] (aggregates: 'region=Bayern', 'total'), "
                "'series_id': '...' or hierarchy 'levels': ['region', 'total']"
            )
        for lv in self._numeric_levels():
            if not 1 <= lv <= 99:
                raise ValueError(f"levels are percentages in [1, 99], got {lv}")
        return self

    @property
    def ids(self) -> list[str]:
        """The requested series, each once, in request order."""
        ids = ([self.series_id] if self.series_id else []) + list(self.series_ids or [])
        return list(dict.fromkeys(ids))

    @property
    def interval_levels(self) -> tuple[int, ...]:
        levels = ([self.level] if self.level else []) + self._numeric_levels()
        return tuple(dict.fromkeys(levels)) or (80,)

    @property
    def hierarchy_levels(self) -> list[str]:
        """Names in ``levels`` (``region``, ``total``): forecast every aggregate of those levels."""
        return [str(lv) for lv in self.levels or [] if not _is_number(lv)]

    def _numeric_levels(self) -> list[int]:
        return [int(lv) for lv in self.levels or [] if _is_number(lv)]

    @property
    def is_what_if(self) -> bool:
        return bool(self.covariates) or bool(self.weather)


class ForecastPoint(BaseModel):
    ds: datetime
    step: int
    yhat: float
    yhat_lo: float | None = Field(None, description="lower bound at the first requested level")
    yhat_hi: float | None = Field(None, description="upper bound at the first requested level")
    intervals: dict[str, list[float]] | None = Field(
        None, description="every requested level: {'80': [lo, hi], '95': [lo, hi]} (when several)"
    )
    yhat_baseline: float | None = Field(
        None, description="what-if requests: the forecast under the stored plan"
    )
    delta: float | None = Field(None, description="what-if requests: yhat - yhat_baseline")
    base: float | None = Field(None, description="explain: the model's base value (log1p space)")
    contributions: dict[str, float] | None = Field(
        None,
        description="explain: log1p-space contribution of each feature family (they add up to log1p(yhat))",
    )
    effects: dict[str, float] | None = Field(
        None, description="explain: multiplicative effect of each family, exp(contribution) - 1 (-0.04 = -4%)"
    )


class SeriesForecast(BaseModel):
    series_id: str = Field(description="the series, or the aggregate asked for ('region=Bayern', 'total')")
    level: str | None = Field(
        None, description="aggregate requests: 'series', the hierarchy level or 'total'"
    )
    decision_id: str
    history_end: datetime | None = Field(None, description="last observed step of this series")
    actuals_used: int = Field(0, description="values of this series taken from POST /v1/actuals")
    points: list[ForecastPoint]


class ForecastOut(BaseModel):
    model: ModelRef
    origin: datetime
    horizon: int
    levels: list[int]
    what_if: bool
    baseline_available: bool | None = Field(
        None, description="what-if requests: false when the stored plan does not cover the horizon (no delta)"
    )
    note: str | None = None
    ids_read_as: dict[str, str] | None = Field(
        None,
        description="series ids sent as whole floats ('7.0') answered for the id the model knows ('7')",
    )
    series: list[SeriesForecast]


class ActualIn(BaseModel):
    """One observed value; ``open`` 0 marks a known closure (``y`` must then be 0)."""

    model_config = _INPUT

    series_id: Id
    ds: UtcDatetime
    y: StrictFloat = Field(ge=0, le=MAX_ACTUAL)
    open: Binary = 1
    promo: Binary | None = Field(
        None,
        description="1: a promotion was planned for this point, so a surge it explains is not a volume alert "
        "(volume verdicts only; not stored with the actual)",
    )

    @model_validator(mode="after")
    def _closed_is_zero(self) -> ActualIn:
        if self.open == 0 and self.y != 0:
            raise ValueError(
                f"open=0 (closed) requires y=0, got y={self.y}; set open=1 if the series was open"
            )
        return self


class ActualsIn(BaseModel):
    model_config = _INPUT

    actuals: list[ActualIn] = Field(min_length=1)


class ActualResult(BaseModel):
    series_id: str
    ds: datetime
    status: Literal["inserted", "updated", "duplicate"]


class ActualsOut(BaseModel):
    inserted: int
    updated: int
    duplicate: int
    results: list[ActualResult]
    latest: dict[str, datetime] = Field(
        description="per series, the last observed step forecasts now start from"
    )
    ids_read_as: dict[str, str] | None = Field(
        None, description="series ids sent as whole floats ('88.0') stored for the id the model knows ('88')"
    )
    volume: list[VolumeVerdict] | None = Field(
        None,
        description="volume verdicts, one per posted point in order (when ORDERPULSE_VOLUME_FREQ is set)",
    )
