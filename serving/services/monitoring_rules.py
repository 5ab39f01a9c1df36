"""The status rules of monitoring: when ``GET /v1/monitoring`` turns to warning or alert, and why.

``MonitoringRules`` holds the thresholds (documented in its docstring and the README's "Monitoring" section);
``reasons(forecast, anomaly, drift, rules)`` judges the blocks ``serving.services.monitoring`` computed and
returns one reason per rule that fires (``rule``, ``severity``, model version, ``feature``, ``value``,
``reference``, ``message``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["MonitoringRules", "reasons"]

_EPS = 1e-9  # thresholds are met by values equal to them up to float rounding (115 / 100 - 1 < 0.15)


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


def reasons(
    forecast: dict[str, Any], anomaly: dict[str, Any], drift: dict[str, Any], rules: MonitoringRules
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for v in forecast["by_version"]:
        who = f"{v['model_name']} v{v['model_version']}"
        live, ref = v["wape"], v["backtest_wape"]
        if v["matched_steps"] >= rules.min_steps and live is not None and ref:
            ratio = live / ref
            sev = _severity(ratio >= rules.wape_alert - _EPS, ratio >= rules.wape_warning - _EPS)
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
            sev = _severity(off >= rules.coverage_alert - _EPS, off >= rules.coverage_warning - _EPS)
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
        "feature": None,
        "value": value,
        "reference": reference,
        "message": message,
    }


def _severity(alert: bool, warning: bool) -> str | None:
    return "alert" if alert else "warning" if warning else None


def _minus(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b
