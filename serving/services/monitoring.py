"""Live accuracy, drift and data quality of the served models: the body of ``GET /v1/monitoring``.

``monitoring_summary(database, since=, until=, model=)`` reads the narrow prediction tables
(``serving.store.predictions``, written with every audit row) joined with the actuals and labels the service
received (``serving.store.events``), and the reference of each model version (its training figures and
profile, recorded when the service loaded it). ``monitoring_timeline`` gives the same figures per period.

Matching rules
--------------
- A forecast step (one ``series_id``, ``ds`` of an answered forecast) matches the stored actual of
  (``series_id``, ``ds``). The actuals table holds one row per key, the latest value: a corrected actual
  replaces the old one (the step is judged against the correction), a repeated one is not stored twice, and an
  actual arriving late matches whenever it arrives. Closed steps (``open`` 0) are not scored (as in the
  backtest); steps with no actual yet are ``pending_steps``.
- Every answered forecast counts: when the same (series, ds) was forecast several times (from different
  origins, or twice from one), each answer is a prediction the OMS received and is judged; ``by_step`` splits
  them by horizon step (1 = the first step after the origin).
- A scored order matches its label event (``label`` 0 or 1). An order without one is ``pending`` while it is
  younger (its ``created_at``) than the model's label maturity, and a negative once older, as in training.
  The maturity is the model's logged ``data.label_maturity_days`` (training's label-delay percentile), else
  the ``default_label_maturity_days`` setting. Every answer counts, like forecasts.

Figures: WAPE ``sum|yhat - y| / sum y``, bias ``sum(yhat - y) / sum y``, coverage = share of matched steps
inside the first requested interval (``training.metrics`` definitions); AUPRC (``training.metrics.auprc``,
average precision), precision/recall at the threshold each answer was flagged with, ECE
(``training.metrics.ece``, 10 uniform bins), base rate. Pooled over all answers of the window; ``by_version``
splits them per model version, each with its training reference (``backtest_wape``, ``validation_auprc``).

Status: ``serving.services.monitoring_rules.MonitoringRules`` (each rule has a minimum sample size before it
can fire).
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Mapping
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd

from serving.services.monitoring_inputs import DRIFT_SAMPLE, data_quality, input_drift, received_at_indexes
from serving.services.monitoring_rules import MonitoringRules, reasons
from serving.store.audit import AuditStore
from serving.store.db import Database
from serving.store.events import EventStore
from serving.store.predictions import ModelFilter, read_references, score_outcomes
from serving.store.rollups import RollupTables, rolled_forecast_sums, rolled_score_rows, warm
from training.metrics import auprc, ece

__all__ = [
    "MonitoringRules",
    "monitoring_summary",
    "monitoring_timeline",
    "monitoring_outcomes",
    "warm_rollups",
    "parse_model_filter",
    "STATUSES",
]

STATUSES = ("ok", "warning", "alert")


def parse_model_filter(model: str | None) -> ModelFilter:
    """``None`` (all models), ``"<registered name>"`` or ``"<registered name>/<version>"``."""
    if model is None or not model.strip():
        return ModelFilter()
    name, _, version = model.strip().partition("/")
    if not name or (_ and not version) or "/" in version:
        raise ValueError(
            f"model must be a registered model name or '<name>/<version>' (e.g. 'orderpulse-anomaly/3'), "
            f"got {model!r}"
        )
    return ModelFilter(name, version or None)


def monitoring_summary(
    database: Database,
    *,
    since: datetime | None,
    until: datetime | None,
    model: str | None,
    schema: str | None = None,
    now: datetime | None = None,
    rules: MonitoringRules | None = None,
    default_label_maturity_days: float = 14.0,
    late_actual_days: float = 2.0,
    drift_sample: int = DRIFT_SAMPLE,
) -> dict[str, Any]:
    """The ``GET /v1/monitoring`` body (see the module docstring); raises ``ValueError`` for a bad window or
    model filter."""
    rules = rules or MonitoringRules()
    now = _aware(now or datetime.now(UTC))
    since, until = _check_window(since, until)
    tables = _tables(database, schema)
    refs, sums, outcomes, last_at = _read(
        database, tables, since, until, model, now, default_label_maturity_days, by_day=False
    )
    forecast = _forecast_block(sums, refs)
    anomaly = _anomaly_block(outcomes, last_at, refs, default_label_maturity_days)
    drift = {
        kind: input_drift(
            database,
            tables.audit.table,
            tables.events.actuals,
            kind=kind,
            reference=_newest_reference(block, refs),
            since=since,
            until=until,
            sample=drift_sample,
        )
        for kind, block in (("forecast", forecast), ("anomaly", anomaly))
    }
    quality = data_quality(
        database,
        tables.events.orders,
        tables.events.labels,
        tables.events.actuals,
        since=since,
        until=until,
        now=now,
        late_after=timedelta(days=late_actual_days),
        rollups=tables.rollups,
    )
    found = reasons(forecast, anomaly, drift, rules)
    status = max((r["severity"] for r in found), key=STATUSES.index, default="ok")
    return {
        "window": {
            "since": since.isoformat() if since else None,
            "until": until.isoformat() if until else None,
            "model": model,
            "computed_at": now.isoformat(),
        },
        "forecast": forecast,
        "anomaly": anomaly,
        "drift": drift,
        "data_quality": quality,
        "status": status,
        "reasons": found,
        "rules": asdict(rules),
    }


def monitoring_timeline(
    database: Database,
    *,
    since: datetime | None,
    until: datetime | None,
    model: str | None,
    freq: str = "D",
    schema: str | None = None,
    now: datetime | None = None,
    default_label_maturity_days: float = 14.0,
) -> pd.DataFrame:
    """One row per period (of the answer's time, UTC) and model version: ``period, model_name, model_version,
    kind, answered, matched, pending, wape, bias, coverage, auprc, precision, recall, ece, base_rate``
    (forecast rows leave the anomaly figures NaN and the reverse)."""
    sums, outcomes = _read_by_day(database, schema, since, until, model, now, default_label_maturity_days)
    rows: list[dict[str, Any]] = []
    sums["period"] = _periods(sums["day"], freq)
    for (period, name, version), part in sums.groupby(["period", "model_name", "model_version"], sort=True):
        rows.append(
            {
                "period": period,
                "model_name": name,
                "model_version": version,
                "kind": "forecast",
                **_forecast_figures(part),
            }
        )
    outcomes["period"] = _periods(outcomes["day"], freq)
    for (period, name, version), part in outcomes.groupby(
        ["period", "model_name", "model_version"], sort=True, observed=True
    ):
        rows.append(
            {
                "period": period,
                "model_name": name,
                "model_version": version,
                "kind": "anomaly",
                **_anomaly_figures(part),
            }
        )
    columns = [
        "period",
        "model_name",
        "model_version",
        "kind",
        "answered",
        "matched",
        "pending",
        "wape",
        "bias",
        "coverage",
        "auprc",
        "precision",
        "recall",
        "ece",
        "base_rate",
    ]
    frame = pd.DataFrame(rows).reindex(columns=columns)
    return frame.sort_values(["period", "kind", "model_name", "model_version"], kind="stable").reset_index(
        drop=True
    )


def monitoring_outcomes(
    database: Database,
    *,
    since: datetime | None,
    until: datetime | None,
    model: str | None,
    schema: str | None = None,
    now: datetime | None = None,
    default_label_maturity_days: float = 14.0,
) -> pd.DataFrame:
    """The scored orders behind the anomaly figures, one row per answer (``score_outcomes``: ``model_name,
    model_version, day, score, threshold, flagged, outcome``, -1 = pending), e.g. for a reliability diagram."""
    outcomes = _read_by_day(database, schema, since, until, model, now, default_label_maturity_days)[1]
    return outcomes.astype({"model_name": "string", "model_version": "string", "day": "string"})


def warm_rollups(database: Database, *, schema: str | None = None) -> None:
    """Summarise every complete day not yet rolled up, and redo the days changed actuals or labels touched
    (``serving.store.rollups``), so the next query over any window reads a few rows per day."""
    tables = _tables(database, schema)
    warm(database, tables.rollups, tables.audit.predictions, tables.events.actuals, tables.events.labels)


# ---------------------------------------------------------------------------------------------- blocks
def _read_by_day(
    database: Database,
    schema: str | None,
    since: datetime | None,
    until: datetime | None,
    model: str | None,
    now: datetime | None,
    default_days: float,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Forecast sums and score outcomes per day of answer, for the timeline and the outcome rows."""
    since, until = _check_window(since, until)
    now = _aware(now or datetime.now(UTC))
    _, sums, outcomes, _ = _read(
        database, _tables(database, schema), since, until, model, now, default_days, by_day=True
    )
    return sums, outcomes


def _forecast_block(sums: pd.DataFrame, refs: Mapping[tuple[str, str], dict]) -> dict[str, Any]:
    figures = _forecast_figures(sums)
    by_step = [
        {"step": int(step), **_forecast_figures(part, public=True)}
        for step, part in sums.groupby("step", sort=True)
    ]
    by_version = []
    for (name, version), part in sums.groupby(["model_name", "model_version"], sort=True):
        ref = refs.get((name, version), {})
        by_version.append(
            {
                "model_name": name,
                "model_version": version,
                "last_answer_at": part["last_at"].max().isoformat(),
                **_forecast_figures(part, public=True),
                **_forecast_reference(ref, part),
            }
        )
    newest, ref = _newest_and_ref(by_version, refs)
    reference = _forecast_reference(ref, sums) if newest else {}
    return {
        "model": _model_of(newest),
        "answered_steps": figures["answered"],
        "matched_steps": figures["matched"],
        "pending_steps": figures["pending"],
        "closed_steps": figures["closed"],
        "wape": figures["wape"],
        "bias": figures["bias"],
        "coverage": figures["coverage"],
        "level": figures["level"],
        "backtest_wape": reference.get("backtest_wape"),
        "backtest_coverage": reference.get("backtest_coverage"),
        "by_step": by_step,
        "by_version": by_version,
    }


def _anomaly_block(
    outcomes: pd.DataFrame,
    last_at: Mapping[tuple[str, str], datetime],
    refs: Mapping[tuple[str, str], dict],
    default_days: float,
) -> dict[str, Any]:
    figures = _anomaly_figures(outcomes)
    by_version = []
    for (name, version), part in outcomes.groupby(["model_name", "model_version"], sort=True, observed=True):
        ref = refs.get((name, version), {})
        by_version.append(
            {
                "model_name": name,
                "model_version": version,
                "last_answer_at": last_at[(name, version)].isoformat(),
                **_public_anomaly(_anomaly_figures(part)),
                **_anomaly_reference(ref, default_days),
            }
        )
    newest, ref = _newest_and_ref(by_version, refs)
    reference = _anomaly_reference(ref, default_days) if newest else {}
    return {
        "model": _model_of(newest),
        **_public_anomaly(figures),
        "validation_auprc": reference.get("validation_auprc"),
        "label_maturity_days": reference.get("label_maturity_days"),
        "label_maturity_source": reference.get("label_maturity_source"),
        "by_version": by_version,
    }


def _forecast_figures(sums: pd.DataFrame, public: bool = False) -> dict[str, Any]:
    answered, matched = int(sums["answered"].sum()), int(sums["matched"].sum())
    closed = int(sums["closed"].sum())
    sum_y = float(sums["sum_y"].sum())
    n_interval = int(sums["n_interval"].sum())
    levels = sums["level"].dropna().unique()
    out = {
        "answered": answered,
        "matched": matched,
        "pending": answered - matched - closed,
        "closed": closed,
        "wape": _ratio(float(sums["abs_err"].sum()), sum_y) if matched else None,
        "bias": _ratio(float(sums["err"].sum()), sum_y) if matched else None,
        "coverage": _ratio(float(sums["covered"].sum()), n_interval) if n_interval else None,
        "level": int(levels[0]) if len(levels) == 1 else None,
    }
    if public:
        out = {
            "answered_steps": answered,
            "matched_steps": matched,
            "pending_steps": out["pending"],
            **{k: out[k] for k in ("wape", "bias", "coverage", "level")},
        }
    return out


def _anomaly_figures(outcomes: pd.DataFrame) -> dict[str, Any]:
    outcome = outcomes["outcome"].to_numpy()
    known = outcome >= 0
    y = outcome[known].astype("float64")
    p = outcomes["score"].to_numpy(dtype="float64")[known]
    flagged = outcomes["flagged"].to_numpy()[known] == 1
    n, positives, n_flagged = int(y.size), int(y.sum()), int(flagged.sum())
    true_pos = int((flagged & (y == 1)).sum())
    return {
        "answered": int(outcome.size),
        "matched": n,
        "pending": int((~known).sum()),
        "positives": positives,
        "auprc": _finite(auprc(y, p)) if positives else None,
        "precision": true_pos / n_flagged if n_flagged else None,
        "recall": true_pos / positives if positives else None,
        "ece": _finite(ece(y, p)) if n else None,
        "base_rate": positives / n if n else None,
    }


def _public_anomaly(figures: dict[str, Any]) -> dict[str, Any]:
    names = {"answered": "scored_orders", "matched": "matched_orders", "pending": "pending_orders"}
    return {names.get(k, k): v for k, v in figures.items()}


def _forecast_reference(ref: Mapping[str, Any], sums: pd.DataFrame) -> dict[str, Any]:
    metrics = ref.get("metrics") or {}
    levels = sums["level"].dropna().unique()
    level = int(levels[0]) if len(levels) == 1 else None
    return {
        "backtest_wape": metrics.get("backtest_wape"),
        "backtest_coverage": metrics.get(f"backtest_coverage_{level}") if level is not None else None,
        "nominal_coverage": level / 100 if level is not None else None,
    }


def _anomaly_reference(ref: Mapping[str, Any], default_days: float) -> dict[str, Any]:
    metrics = ref.get("metrics") or {}
    logged = metrics.get("data.label_maturity_days")
    return {
        "validation_auprc": metrics.get("valid_auprc"),
        "label_maturity_days": float(logged) if logged is not None else float(default_days),
        "label_maturity_source": "model" if logged is not None else "setting",
    }


# ---------------------------------------------------------------------------------------------- rules
# ---------------------------------------------------------------------------------------------- helpers
class _Tables:
    def __init__(self, database: Database, schema: str | None) -> None:
        self.audit = AuditStore(database=database, schema=schema)
        self.events = EventStore(database, schema=schema)
        ev = self.events
        received_at_indexes(database, [ev.orders, ev.labels, ev.actuals])
        self.rollups = RollupTables(database, schema, self.audit.predictions.scores, ev.actuals)


_TABLES: weakref.WeakKeyDictionary[Database, dict[str | None, _Tables]] = weakref.WeakKeyDictionary()


def _tables(database: Database, schema: str | None) -> _Tables:
    """The audit, prediction and event tables of ``database`` (created once per database and schema)."""
    per_db = _TABLES.setdefault(database, {})
    if schema not in per_db:
        per_db[schema] = _Tables(database, schema)
    return per_db[schema]


def _read(
    database: Database,
    tables: _Tables,
    since: datetime | None,
    until: datetime | None,
    model: str | None,
    now: datetime,
    default_days: float,
    *,
    by_day: bool,
) -> tuple[dict, pd.DataFrame, pd.DataFrame, dict[tuple[str, str], datetime]]:
    """References, forecast sums, score outcomes and each score version's last answer, for one window."""
    filt = parse_model_filter(model)
    refs = read_references(database, tables.audit.predictions)
    preds = tables.audit.predictions
    window = {"since": since, "until": until, "model": filt}
    sums = rolled_forecast_sums(
        database, tables.rollups, preds, tables.events.actuals, **window, by_day=by_day
    )
    rows, last = rolled_score_rows(database, tables.rollups, preds, tables.events.labels, **window)
    naive_now = now.astimezone(UTC).replace(tzinfo=None)
    mature_before = {
        key: naive_now - timedelta(days=_anomaly_reference(ref, default_days)["label_maturity_days"])
        for key, ref in refs.items()
        if ref.get("kind") == "anomaly"
    }
    outcomes, last_at = score_outcomes(
        rows,
        last,
        mature_before=mature_before,
        default_mature_before=naive_now - timedelta(days=default_days),
        by_day=by_day,
    )
    return refs, sums, outcomes, last_at


def _newest(by_version: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The version that answered last (the higher version number on a tie)."""
    if not by_version:
        return None
    return max(by_version, key=lambda v: (v["last_answer_at"], _version_key(v["model_version"])))


def _newest_and_ref(
    by_version: list[dict[str, Any]], refs: Mapping[tuple[str, str], dict]
) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """The newest version's row and its recorded reference (``{}`` when none is recorded)."""
    newest = _newest(by_version)
    if newest is None:
        return None, {}
    return newest, refs.get((newest["model_name"], newest["model_version"]), {})


def _newest_reference(block: dict[str, Any], refs: Mapping[tuple[str, str], dict]) -> dict[str, Any] | None:
    model = block["model"]
    if model is None:
        return None
    key = (model["name"], model["version"])
    return {"model_name": key[0], "model_version": key[1], "profile": (refs.get(key) or {}).get("profile")}


def _model_of(version: dict[str, Any] | None) -> dict[str, str] | None:
    return None if version is None else {"name": version["model_name"], "version": version["model_version"]}


def _version_key(version: str) -> tuple[int, str]:
    return (int(version), "") if version.isdigit() else (-1, version)


def _periods(days: pd.Series, freq: str) -> pd.Series:
    if days.empty:
        return pd.Series([], dtype="object", index=days.index)
    stamps = pd.to_datetime(days.astype("string"), format="%Y-%m-%d")
    try:
        return stamps.dt.to_period(freq).dt.start_time.dt.strftime("%Y-%m-%d")
    except ValueError as exc:
        raise ValueError(
            f"freq must be a pandas period alias such as 'D', 'W' or 'M', got {freq!r} ({exc})"
        ) from None


def _check_window(since: datetime | None, until: datetime | None) -> tuple[datetime | None, datetime | None]:
    since = _aware(since) if since is not None else None
    until = _aware(until) if until is not None else None
    if since is not None and until is not None and since > until:
        raise ValueError(
            f"since ({since.isoformat()}) is after until ({until.isoformat()}): pass since <= until"
        )
    return since, until


def _aware(value: datetime) -> datetime:
    """Naive datetimes are taken as UTC; aware ones are converted to UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _ratio(num: float, den: float) -> float | None:
    return num / den if den else None


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None
