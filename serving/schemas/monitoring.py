"""The body of ``GET /v1/monitoring`` (built by ``serving.services.monitoring.monitoring_summary``)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

__all__ = ["MonitoringOut", "ForecastMonitoring", "AnomalyMonitoring", "StepFigures", "Reason"]


class ModelVersionRef(BaseModel):
    name: str
    version: str


class StepFigures(BaseModel):
    """Live accuracy of the answers of one horizon step (or one model version)."""

    step: int | None = None
    answered_steps: int
    matched_steps: int
    pending_steps: int
    wape: float | None
    bias: float | None
    coverage: float | None
    level: int | None


class ForecastVersion(StepFigures):
    model_name: str
    model_version: str
    last_answer_at: str
    backtest_wape: float | None
    backtest_coverage: float | None
    nominal_coverage: float | None


class ForecastMonitoring(BaseModel):
    model: ModelVersionRef | None = Field(description="the version that answered last in the window")
    answered_steps: int
    matched_steps: int = Field(description="answered steps whose open actual is stored")
    pending_steps: int = Field(description="answered steps without an actual yet")
    closed_steps: int = Field(description="answered steps whose actual says closed (not scored)")
    wape: float | None
    bias: float | None
    coverage: float | None = Field(description="share of matched steps inside the first requested interval")
    level: int | None = Field(description="that interval's level (%), when all answers used the same")
    backtest_wape: float | None
    backtest_coverage: float | None
    by_step: list[StepFigures]
    by_version: list[ForecastVersion]


class AnomalyFigures(BaseModel):
    scored_orders: int
    matched_orders: int = Field(description="scored orders with a known outcome (label, or matured without)")
    pending_orders: int = Field(description="scored orders without a label, younger than the label maturity")
    positives: int
    auprc: float | None
    precision: float | None
    recall: float | None
    ece: float | None
    base_rate: float | None


class AnomalyVersion(AnomalyFigures):
    model_name: str
    model_version: str
    last_answer_at: str
    validation_auprc: float | None
    label_maturity_days: float
    label_maturity_source: Literal["model", "setting"]


class AnomalyMonitoring(AnomalyFigures):
    model: ModelVersionRef | None
    validation_auprc: float | None
    label_maturity_days: float | None
    label_maturity_source: Literal["model", "setting"] | None
    by_version: list[AnomalyVersion]


class Reason(BaseModel):
    rule: str
    severity: Literal["warning", "alert"]
    model_name: str
    model_version: str
    feature: str | None = None
    value: float
    reference: float | None
    message: str


class MonitoringOut(BaseModel):
    window: dict[str, Any]
    forecast: ForecastMonitoring
    anomaly: AnomalyMonitoring
    drift: dict[str, Any] = Field(description="per model kind: PSI, missing and unknown rates per feature")
    data_quality: dict[str, Any] = Field(description="per input table: rows, problems by kind, freshness")
    status: Literal["ok", "warning", "alert"]
    reasons: list[Reason]
    rules: dict[str, Any] = Field(description="the thresholds the status was judged with")
