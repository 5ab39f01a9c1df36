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

Status: see ``MonitoringRules`` (each rule has a minimum sample size before it can fire).
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd

from serving.services.monitoring_inputs import DRIFT_SAMPLE, data_quality, input_drift
from serving.store.audit import AuditStore
from serving.store.db import Database
from serving.store.events import EventStore
from serving.store.predictions import ModelFilter, forecast_sums, read_references, score_outcomes
from training.metrics import auprc, ece

__all__ = [
    "MonitoringRules",
    "monitoring_summary",
    "monitoring_timeline",
    "monitoring_outcomes",
    "parse_model_filter",
    "STATUSES",
]

STATUSES = ("ok", "warning", "alert")


@dataclass(frozen=True)
class MonitoringRules:
    """When ``status`` turns to warning / alert (per model version, once its sample is large enough).

    ================== ======================================= ======================================= ==========
    rule               warning                                 alert                                   min sample
    ================== ======================================= ======================================= ==========
    forecast_wape      live WAPE >= 1.5 x backtest WAPE        >= 2 x                                  30 steps
    forecast_coverage  coverage >= 10 points off nominal       >= 20 points off                        30 steps
    anomaly_auprc      live AUPRC < 0.75 x validation AUPRC    < 0.5 x                                 50 orders,
                                                                                                       5 positive
    drift_psi          a feature's PSI > 0.25                  PSI > 0.5                               100 inputs
    missing_rate       a feature's missing rate >= 10 points   >= 25 points above training             100 inputs
                       above training
    unknown_category   >= 5 % of a feature's values unknown    >= 20 %                                 100 inputs
    ================== ======================================= ======================================= ==========
    """

    wape_warning: float = 1.5
    wape_alert: float = 2.0
    min_steps: int = 30
    coverage_warning: float = 0.10
    coverage_alert: float = 0.20
    auprc_warning: float = 0.75
    auprc_alert: float = 0.5
    min_orders: int = 50
    min_positives: int = 5
    psi_warning: float = 0.25
    psi_alert: float = 0.5
    missing_warning: float = 0.10
    missing_alert: float = 0.25
    unknown_warning: float = 0.05
    unknown_alert: float = 0.20
    min_inputs: int = 100


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
    filt = parse_model_filter(model)
    tables = _tables(database, schema)
    refs = read_references(database, tables.audit.predictions)
    sums = forecast_sums(
        database, tables.audit.predictions, tables.events.actuals, since=since, until=until, model=filt
    )
    outcomes = _outcomes(database, tables, refs, since, until, filt, now, default_label_maturity_days)
    forecast = _forecast_block(sums, refs)
    anomaly = _anomaly_block(outcomes, refs, default_label_maturity_days)
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
    )
    reasons = _reasons(forecast, anomaly, drift, rules)
    status = max((r["severity"] for r in reasons), key=STATUSES.index, default="ok")
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
        "reasons": reasons,
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
    now = _aware(now or datetime.now(UTC))
    since, until = _check_window(since, until)
    filt = parse_model_filter(model)
    tables = _tables(database, schema)
    refs = read_references(database, tables.audit.predictions)
    sums = forecast_sums(
        database, tables.audit.predictions, tables.events.actuals, since=since, until=until, model=filt
    )
    outcomes = _outcomes(database, tables, refs, since, until, filt, now, default_label_maturity_days)
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
        ["period", "model_name", "model_version"], sort=True
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
    now = _aware(now or datetime.now(UTC))
    since, until = _check_window(since, until)
    tables = _tables(database, schema)
    refs = read_references(database, tables.audit.predictions)
    filt = parse_model_filter(model)
    return _outcomes(database, tables, refs, since, until, filt, now, default_label_maturity_days)


# ---------------------------------------------------------------------------------------------- blocks
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
                "last_day": part["day"].max(),
                **_forecast_figures(part, public=True),
                **_forecast_reference(ref, part),
            }
        )
    newest = _newest(by_version)
    reference = (
        _forecast_reference(refs.get((newest["model_name"], newest["model_version"]), {}), sums)
        if newest
        else {}
    )
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
    outcomes: pd.DataFrame, refs: Mapping[tuple[str, str], dict], default_days: float
) -> dict[str, Any]:
    figures = _anomaly_figures(outcomes)
    by_version = []
    for (name, version), part in outcomes.groupby(["model_name", "model_version"], sort=True):
        ref = refs.get((name, version), {})
        by_version.append(
            {
                "model_name": name,
                "model_version": version,
                "last_day": part["day"].max(),
                **_public_anomaly(_anomaly_figures(part)),
                **_anomaly_reference(ref, default_days),
            }
        )
    newest = _newest(by_version)
    reference = (
        _anomaly_reference(refs.get((newest["model_name"], newest["model_version"]), {}), default_days)
        if newest
        else {}
    )
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
def _reasons(
    forecast: dict[str, Any], anomaly: dict[str, Any], drift: dict[str, Any], rules: MonitoringRules
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for v in forecast["by_version"]:
        who = f"{v['model_name']} v{v['model_version']}"
        live, ref = v["wape"], v["backtest_wape"]
        if v["matched_steps"] >= rules.min_steps and live is not None and ref:
            ratio = live / ref
            sev = _severity(ratio >= rules.wape_alert, ratio >= rules.wape_warning)
            if sev:
                out.append(
                    _reason(
                        "forecast_wape",
                        sev,
                        v,
                        live,
                        ref,
                        f"{who}: live WAPE {live:.3f} is {ratio:.2f}x the backtest's {ref:.3f} "
                        f"(warning at {rules.wape_warning}x, alert at {rules.wape_alert}x)",
                    )
                )
        cov, nominal = v["coverage"], v["nominal_coverage"]
        if v["matched_steps"] >= rules.min_steps and cov is not None and nominal is not None:
            off = abs(cov - nominal)
            sev = _severity(off >= rules.coverage_alert - 1e-12, off >= rules.coverage_warning - 1e-12)
            if sev:
                out.append(
                    _reason(
                        "forecast_coverage",
                        sev,
                        v,
                        cov,
                        nominal,
                        f"{who}: {v['level']}% interval coverage is {cov:.1%}, {off * 100:.1f} points "
                        f"off nominal (warning at {rules.coverage_warning * 100:g}, alert at "
                        f"{rules.coverage_alert * 100:g} points)",
                    )
                )
    for v in anomaly["by_version"]:
        who = f"{v['model_name']} v{v['model_version']}"
        live, ref = v["auprc"], v["validation_auprc"]
        if (
            v["matched_orders"] >= rules.min_orders
            and v["positives"] >= rules.min_positives
            and live is not None
            and ref
        ):
            ratio = live / ref
            sev = _severity(ratio < rules.auprc_alert, ratio < rules.auprc_warning)
            if sev:
                out.append(
                    _reason(
                        "anomaly_auprc",
                        sev,
                        v,
                        live,
                        ref,
                        f"{who}: live AUPRC {live:.3f} is {ratio:.2f}x the validation's {ref:.3f} "
                        f"(warning below {rules.auprc_warning}x, alert below {rules.auprc_alert}x)",
                    )
                )
    for kind, d in drift.items():
        if not d.get("available") or d["n"] < rules.min_inputs:
            continue
        who = f"{d['model_name']} v{d['model_version']}"
        for feature, f in d["features"].items():
            if f["n"] < rules.min_inputs:
                continue
            checks = (
                ("drift_psi", f["psi"], rules.psi_warning, rules.psi_alert, None, "PSI {value:.3f}"),
                (
                    "missing_rate",
                    _minus(f["missing_rate"], f["reference_missing_rate"]),
                    rules.missing_warning,
                    rules.missing_alert,
                    f["reference_missing_rate"],
                    "missing rate {missing:.1%} (training {ref:.1%})",
                ),
                (
                    "unknown_category",
                    f["unknown_rate"],
                    rules.unknown_warning,
                    rules.unknown_alert,
                    0.0,
                    "{value:.1%} unknown categories",
                ),
            )
            for rule, value, warn, alert, ref, text in checks:
                if value is None:
                    continue
                sev = _severity(
                    value > alert if rule == "drift_psi" else value >= alert,
                    value > warn if rule == "drift_psi" else value >= warn,
                )
                if sev:
                    msg = text.format(value=value, missing=f["missing_rate"] or 0.0, ref=ref or 0.0)
                    out.append(
                        {
                            "rule": rule,
                            "severity": sev,
                            "model_name": d["model_name"],
                            "model_version": d["model_version"],
                            "feature": feature,
                            "value": value,
                            "reference": ref if rule != "drift_psi" else warn,
                            "message": f"{who} {kind} input {feature!r}: {msg} (warning above {warn:g}, "
                            f"alert above {alert:g}, on {f['n']} inputs)",
                        }
                    )
    return out


def _reason(
    rule: str, severity: str, v: dict, value: float, reference: float, message: str
) -> dict[str, Any]:
    return {
        "rule": rule,
        "severity": severity,
        "model_name": v["model_name"],
        "model_version": v["model_version"],
        "value": value,
        "reference": reference,
        "message": message,
    }


def _severity(alert: bool, warning: bool) -> str | None:
    return "alert" if alert else "warning" if warning else None


# ---------------------------------------------------------------------------------------------- helpers
class _Tables:
    def __init__(self, database: Database, schema: str | None) -> None:
        self.audit = AuditStore(database=database, schema=schema)
        self.events = EventStore(database, schema=schema)


_TABLES: weakref.WeakKeyDictionary[Database, dict[str | None, _Tables]] = weakref.WeakKeyDictionary()


def _tables(database: Database, schema: str | None) -> _Tables:
    """The audit, prediction and event tables of ``database`` (created once per database and schema)."""
    per_db = _TABLES.setdefault(database, {})
    if schema not in per_db:
        per_db[schema] = _Tables(database, schema)
    return per_db[schema]


def _outcomes(
    database: Database,
    tables: _Tables,
    refs: Mapping[tuple[str, str], dict],
    since: datetime | None,
    until: datetime | None,
    filt: ModelFilter,
    now: datetime,
    default_days: float,
) -> pd.DataFrame:
    naive_now = now.astimezone(UTC).replace(tzinfo=None)
    mature_before = {
        key: naive_now - timedelta(days=_anomaly_reference(ref, default_days)["label_maturity_days"])
        for key, ref in refs.items()
        if ref.get("kind") == "anomaly"
    }
    return score_outcomes(
        database,
        tables.audit.predictions,
        tables.events.labels,
        since=since,
        until=until,
        model=filt,
        mature_before=mature_before,
        default_mature_before=naive_now - timedelta(days=default_days),
    )


def _newest(by_version: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The version that answered last (latest day; the higher version number on a tie)."""
    if not by_version:
        return None
    return max(by_version, key=lambda v: (v["last_day"], _version_key(v["model_version"])))


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
    stamps = pd.to_datetime(days, format="%Y-%m-%d")
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


def _minus(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b
