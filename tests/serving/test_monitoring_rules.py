"""Monitoring on hand-built decisions: matching rules, status rules, drift, alerts (SQLite and PostgreSQL)."""

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from serving.prometheus import Metrics
from serving.services.monitoring import MonitoringRules, monitoring_summary, monitoring_timeline
from serving.services.monitoring_job import MonitoringRefresher
from serving.store.alerts import AlertStore
from serving.store.audit import AuditRecord
from serving.store.events import Actual, LabelEvent
from serving.store.predictions import record_reference
from training.profile import build_profile

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
DS0 = datetime(2026, 2, 1)


def _forecast(sid, first_ds, yhats, *, lo=None, hi=None, version="1", at=NOW, first_step=1):
    points = [
        {
            "ds": (first_ds + timedelta(days=i)).isoformat(),
            "step": first_step + i,
            "yhat": float(y),
            "yhat_lo": float(lo[i] if lo is not None else y * 0.8),
            "yhat_hi": float(hi[i] if hi is not None else y * 1.2),
        }
        for i, y in enumerate(yhats)
    ]
    return AuditRecord(
        kind="forecast",
        model_name="m-forecast",
        model_version=version,
        input={"series_id": sid},
        output={"points": points, "levels": [80]},
        created_at=at,
    )


def _score(
    order_id, score, *, created="2026-01-01T00:00:00", version="1", at=NOW, features=None, unknown=None
):
    return AuditRecord(
        kind="score",
        model_name="m-anomaly",
        model_version=version,
        input={"order_id": order_id, "created_at": created},
        features=features,
        output={"score": float(score), "threshold": 0.5, "flagged": score >= 0.5, "unknown": unknown or {}},
        created_at=at,
    )


def _summary(stores, **kwargs):
    db, schema, _, _ = stores
    kwargs.setdefault("since", None)
    kwargs.setdefault("until", None)
    kwargs.setdefault("model", None)
    return monitoring_summary(db, schema=schema, now=NOW, **kwargs)


def _reference(stores, kind, name, metrics, profile=None, version="1"):
    db, _, audit, _ = stores
    record_reference(
        db, audit.predictions, kind=kind, name=name, version=version, metrics=metrics, profile=profile
    )


# ---------------------------------------------------------------------------------------------- matching
def test_a_late_actual_matches_whenever_it_arrives(stores):
    _, _, audit, events = stores
    audit.write_many([_forecast("s1", DS0, [100, 110, 120])])
    before = _summary(stores)["forecast"]
    assert (before["matched_steps"], before["pending_steps"], before["wape"]) == (0, 3, None)
    events.upsert_actuals([Actual("s1", DS0 + timedelta(days=1), 100.0)])
    after = _summary(stores)["forecast"]
    assert (after["matched_steps"], after["pending_steps"]) == (1, 2)
    assert after["wape"] == pytest.approx(0.10) and after["bias"] == pytest.approx(0.10)


def test_a_duplicated_actual_does_not_count_twice(stores):
    _, _, audit, events = stores
    audit.write_many([_forecast("s1", DS0, [100])])
    assert events.upsert_actuals([Actual("s1", DS0, 80.0)]) == ["inserted"]
    assert events.upsert_actuals([Actual("s1", DS0, 80.0)]) == ["duplicate"]
    out = _summary(stores)["forecast"]
    assert out["matched_steps"] == 1 and out["wape"] == pytest.approx(20 / 80)


def test_an_updated_actual_replaces_the_value_the_step_is_judged_against(stores):
    _, _, audit, events = stores
    audit.write_many([_forecast("s1", DS0, [100])])
    events.upsert_actuals([Actual("s1", DS0, 50.0)])
    assert _summary(stores)["forecast"]["wape"] == pytest.approx(1.0)
    assert events.upsert_actuals([Actual("s1", DS0, 125.0)]) == ["updated"]
    out = _summary(stores)
    assert out["forecast"]["matched_steps"] == 1 and out["forecast"]["wape"] == pytest.approx(0.2)
    assert out["data_quality"]["actuals"]["problems"]["revised"] == 1


def test_a_closed_step_is_neither_matched_nor_pending(stores):
    _, _, audit, events = stores
    audit.write_many([_forecast("s1", DS0, [100, 100])])
    events.upsert_actuals([Actual("s1", DS0, 0.0, open=0), Actual("s1", DS0 + timedelta(days=1), 90.0)])
    out = _summary(stores)["forecast"]
    assert (out["matched_steps"], out["closed_steps"], out["pending_steps"]) == (1, 1, 0)
    assert out["wape"] == pytest.approx(10 / 90)


def test_every_answer_for_the_same_step_counts_and_by_step_splits_them(stores):
    _, _, audit, events = stores
    target = DS0 + timedelta(days=2)
    audit.write_many([_forecast("s1", target, [90], first_step=1)])  # origin the day before
    audit.write_many([_forecast("s1", target, [130], first_step=2)])  # origin two days before
    events.upsert_actuals([Actual("s1", target, 100.0)])
    out = _summary(stores)["forecast"]
    assert out["matched_steps"] == 2 and out["wape"] == pytest.approx((10 + 30) / 200)
    by_step = {s["step"]: s for s in out["by_step"]}
    assert by_step[1]["wape"] == pytest.approx(0.1) and by_step[2]["wape"] == pytest.approx(0.3)
    assert by_step[1]["matched_steps"] == by_step[2]["matched_steps"] == 1


def test_an_unlabeled_order_is_pending_until_the_models_label_maturity(stores):
    _, _, audit, events = stores
    _reference(stores, "anomaly", "m-anomaly", {"valid_auprc": 0.6, "data.label_maturity_days": 10.0})
    young = (NOW - timedelta(days=5)).replace(tzinfo=None).isoformat()
    old = (NOW - timedelta(days=15)).replace(tzinfo=None).isoformat()
    audit.write_many(
        [
            _score("young", 0.9, created=young),
            _score("old", 0.2, created=old),
            _score("done", 0.7, created=young),
        ]
    )
    events.add_labels([LabelEvent("done", 1, (NOW - timedelta(days=1)).replace(tzinfo=None))])
    out = _summary(stores)["anomaly"]
    assert (out["scored_orders"], out["matched_orders"], out["pending_orders"]) == (3, 2, 1)
    assert out["base_rate"] == pytest.approx(0.5) and out["auprc"] == pytest.approx(1.0)
    assert (out["label_maturity_days"], out["label_maturity_source"]) == (10.0, "model")
    events.add_labels([LabelEvent("young", 0, (NOW - timedelta(days=1)).replace(tzinfo=None))])
    out = _summary(stores)["anomaly"]
    assert (out["matched_orders"], out["pending_orders"]) == (3, 0)


def test_the_label_maturity_falls_back_to_the_setting(stores):
    _, _, audit, _ = stores
    created = (NOW - timedelta(days=5)).replace(tzinfo=None).isoformat()
    audit.write_many([_score("a", 0.9, created=created)])
    assert _summary(stores, default_label_maturity_days=3.0)["anomaly"]["matched_orders"] == 1
    out = _summary(stores, default_label_maturity_days=7.0)["anomaly"]
    assert (out["pending_orders"], out["label_maturity_source"]) == (1, "setting")


def test_the_window_and_the_model_filter_select_the_answers(stores):
    _, _, audit, events = stores
    audit.write_many([_forecast("s1", DS0, [100], at=NOW - timedelta(days=3))])
    audit.write_many([_forecast("s1", DS0, [150], at=NOW, version="2")])
    events.upsert_actuals([Actual("s1", DS0, 100.0)])
    recent = _summary(stores, since=NOW - timedelta(days=1))["forecast"]
    assert recent["matched_steps"] == 1 and recent["wape"] == pytest.approx(0.5)
    assert recent["model"] == {"name": "m-forecast", "version": "2"}
    assert _summary(stores, model="m-forecast/1")["forecast"]["wape"] == pytest.approx(0.0)
    assert _summary(stores, model="other")["forecast"]["answered_steps"] == 0


def test_the_timeline_gives_one_row_per_period_and_version(stores):
    db, schema, audit, events = stores
    audit.write_many([_forecast("s1", DS0, [100], at=NOW - timedelta(days=1))])
    audit.write_many([_forecast("s1", DS0, [120], at=NOW)])
    audit.write_many([_score("a", 0.9), _score("b", 0.1)])
    events.upsert_actuals([Actual("s1", DS0, 100.0)])
    events.add_labels([LabelEvent("a", 1, datetime(2026, 1, 2)), LabelEvent("b", 0, datetime(2026, 1, 2))])
    frame = monitoring_timeline(db, since=None, until=None, model=None, schema=schema, now=NOW)
    forecast = frame.loc[frame["kind"] == "forecast"].set_index("period")
    assert forecast["wape"].to_dict() == pytest.approx({"2026-02-28": 0.0, "2026-03-01": 0.2})
    anomaly = frame.loc[frame["kind"] == "anomaly"]
    assert anomaly[["period", "matched", "auprc", "base_rate"]].values.tolist() == [
        ["2026-03-01", 2, 1.0, 0.5]
    ]
    weekly = monitoring_timeline(db, since=None, until=None, model=None, schema=schema, now=NOW, freq="W")
    assert weekly.loc[weekly["kind"] == "forecast", "wape"].tolist() == pytest.approx([0.1])


def test_prediction_rows_are_written_in_the_audit_transaction(stores):
    db, _, audit, _ = stores
    first = _forecast("s1", DS0, [100, 100])
    audit.write_many([first])
    again = AuditRecord(**{**first.__dict__, "input": {"series_id": "s2"}})  # same decision_id: refused
    with pytest.raises(IntegrityError):
        audit.write_many([_score("x", 0.3), again])
    with db.connection(begin=False) as conn:
        n_steps = conn.execute(select(func.count()).select_from(audit.predictions.forecasts)).scalar_one()
        n_scores = conn.execute(select(func.count()).select_from(audit.predictions.scores)).scalar_one()
    assert (n_steps, n_scores, audit.count()) == (2, 0, 1)


# ---------------------------------------------------------------------------------------------- status rules
def _steps(stores, error, n, backtest=0.1, inside=None):
    """``n`` matched steps whose WAPE is ``error``; ``inside`` of them inside their interval (default all)."""
    _, _, audit, events = stores
    _reference(stores, "forecast", "m-forecast", {"backtest_wape": backtest, "backtest_coverage_80": 0.8})
    inside = n if inside is None else inside
    yhat = [100.0 * (1 + error)] * n
    lo = [0.0] * inside + [500.0] * (n - inside)
    hi = [1000.0] * n
    audit.write_many([_forecast("s1", DS0, yhat, lo=lo, hi=hi)])
    events.upsert_actuals([Actual("s1", DS0 + timedelta(days=i), 100.0) for i in range(n)])


def _rules(out, rule):
    return [(r["severity"], r["rule"]) for r in out["reasons"] if r["rule"] == rule]


@pytest.mark.parametrize(
    ("error", "n", "expected"),
    [(0.14, 30, []), (0.15, 30, ["warning"]), (0.2, 30, ["alert"]), (0.5, 29, [])],
    ids=["below", "1.5x", "2x", "too-few-steps"],
)
def test_the_forecast_wape_rule(stores, error, n, expected):
    _steps(stores, error, n, inside=int(0.8 * n))
    out = _summary(stores)
    assert [s for s, _ in _rules(out, "forecast_wape")] == expected
    assert out["status"] == (expected[0] if expected else "ok")


@pytest.mark.parametrize(
    ("inside", "expected"), [(26, []), (27, ["warning"]), (30, ["alert"]), (15, ["alert"])]
)
def test_the_forecast_coverage_rule(stores, inside, expected):
    _steps(stores, 0.0, 30, inside=inside)  # 80% nominal: 26/30 = 86.7%, 27/30 = 90%, 30/30, 15/30 = 50%
    assert [s for s, _ in _rules(_summary(stores), "forecast_coverage")] == expected


@pytest.mark.parametrize(
    ("validation", "expected"), [(0.4, []), (0.6, ["warning"]), (0.9, ["alert"])], ids=["ok", "0.75x", "0.5x"]
)
def test_the_anomaly_auprc_rule(stores, validation, expected):
    _, _, audit, events = stores
    _reference(stores, "anomaly", "m-anomaly", {"valid_auprc": validation, "data.label_maturity_days": 1.0})
    rng = np.random.default_rng(0)
    labels = (np.arange(60) % 6 == 0).astype(int)  # 10 positives
    scores = np.clip(0.1 * labels + rng.uniform(0, 0.7, 60), 0, 1)
    audit.write_many([_score(f"o{i}", s) for i, s in enumerate(scores)])
    events.add_labels([LabelEvent(f"o{i}", int(y), datetime(2026, 1, 5)) for i, y in enumerate(labels)])
    out = _summary(stores)
    from sklearn.metrics import average_precision_score

    live = average_precision_score(labels, scores)
    assert out["anomaly"]["auprc"] == pytest.approx(live)
    assert 0.3 < live < 0.31  # so 0.4 is fine, 0.6 is below 0.75x and 0.9 below 0.5x
    assert [s for s, _ in _rules(out, "anomaly_auprc")] == expected


def test_the_anomaly_rule_waits_for_enough_positives(stores):
    _, _, audit, events = stores
    _reference(stores, "anomaly", "m-anomaly", {"valid_auprc": 0.9})
    audit.write_many([_score(f"o{i}", 0.9 - i / 100) for i in range(60)])
    events.add_labels([LabelEvent(f"o{i}", int(i >= 56), datetime(2026, 1, 5)) for i in range(60)])
    out = _summary(stores)
    assert out["anomaly"]["auprc"] < 0.2 and out["anomaly"]["positives"] == 4
    assert _rules(out, "anomaly_auprc") == [] and out["status"] == "ok"


# ---------------------------------------------------------------------------------------------- drift
def _training_profile():
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(
        {
            "order_value": rng.normal(0, 1, 5000),
            "order_country": rng.choice(["UK", "FR", "DE"], 5000, p=[0.8, 0.1, 0.1]),
        }
    )
    return build_profile(frame)


def _scored_inputs(stores, values, countries, unknown_every=0):
    _, _, audit, _ = stores
    _reference(stores, "anomaly", "m-anomaly", {"valid_auprc": 0.5}, profile=_training_profile())
    records = [
        _score(
            f"d{i}",
            0.1,
            features={"order_value": None if v is None else float(v), "order_country": c},
            unknown={"country": "Atlantis"} if unknown_every and i % unknown_every == 0 else {},
        )
        for i, (v, c) in enumerate(zip(values, countries, strict=True))
    ]
    audit.write_many(records)


def test_a_shifted_input_is_flagged_by_its_psi(stores):
    rng = np.random.default_rng(2)
    _scored_inputs(stores, rng.normal(2, 1, 300), ["UK"] * 300)
    out = _summary(stores)
    drift = out["drift"]["anomaly"]
    assert drift["available"] is True and drift["n"] == 300
    assert drift["features"]["order_value"]["psi"] > 1.0
    assert ("alert", "drift_psi") in [
        (r["severity"], r["rule"]) for r in out["reasons"] if r["feature"] == "order_value"
    ]
    assert out["status"] == "alert"


def test_an_unshifted_input_is_ok(stores):
    rng = np.random.default_rng(3)
    countries = rng.choice(["UK", "FR", "DE"], 400, p=[0.8, 0.1, 0.1]).tolist()
    _scored_inputs(stores, rng.normal(0, 1, 400), countries)
    out = _summary(stores)
    assert out["drift"]["anomaly"]["features"]["order_value"]["psi"] < 0.1
    assert out["reasons"] == [] and out["status"] == "ok"


def test_missing_values_and_unknown_categories_are_rules_of_their_own(stores):
    rng = np.random.default_rng(4)
    values = [None if i % 3 == 0 else v for i, v in enumerate(rng.normal(0, 1, 300))]
    countries = rng.choice(["UK", "FR", "DE"], 300, p=[0.8, 0.1, 0.1]).tolist()
    _scored_inputs(stores, values, countries, unknown_every=10)
    out = _summary(stores)
    f = out["drift"]["anomaly"]["features"]
    assert f["order_value"]["missing_rate"] == pytest.approx(1 / 3)
    assert f["order_country"]["unknown_rate"] == pytest.approx(0.1)
    found = {(r["rule"], r["feature"]): r["severity"] for r in out["reasons"]}
    assert found[("missing_rate", "order_value")] == "alert"
    assert found[("unknown_category", "order_country")] == "warning"


def test_a_model_without_a_profile_reports_drift_unavailable_with_the_reason(stores):
    _, _, audit, _ = stores
    _reference(stores, "anomaly", "m-anomaly", {"valid_auprc": 0.5})
    audit.write_many([_score("a", 0.2, features={"order_value": 1.0})])
    drift = _summary(stores)["drift"]["anomaly"]
    assert drift["available"] is False and "without a training profile" in drift["reason"]


def test_custom_rules_change_the_thresholds(stores):
    _steps(stores, 0.12, 30, inside=24)
    assert _summary(stores)["status"] == "ok"
    strict = MonitoringRules(wape_warning=1.1, wape_alert=5.0)
    assert _rules(_summary(stores, rules=strict), "forecast_wape") == [("warning", "forecast_wape")]


# ---------------------------------------------------------------------------------------------- alerts, gauges
def test_an_alert_status_raises_one_alert_per_rule_per_day_and_sets_the_gauges(stores):
    db, schema, _, _ = stores
    _steps(stores, 0.3, 30, inside=24)
    metrics = Metrics()
    alerts = AlertStore(db, schema=schema)
    refresher = MonitoringRefresher(db, metrics, schema=schema, window_days=30, alerts=alerts)
    first = refresher.refresh(NOW)
    refresher.refresh(NOW + timedelta(hours=1))
    rows = alerts.since(NOW - timedelta(days=1))
    assert first["status"] == "alert" and len(rows) == 1
    assert rows[0]["series_id"] == "monitoring:forecast_wape:m-forecast/1"
    assert rows[0]["y"] == pytest.approx(0.3) and rows[0]["expected"] == pytest.approx(0.1)
    refresher.refresh(NOW + timedelta(days=1))
    assert len(alerts.since(NOW - timedelta(days=1))) == 2
    value = metrics.registry.get_sample_value
    assert value("orderpulse_monitoring_status") == 2
    assert value(
        "orderpulse_monitoring_forecast", {"model_version": "all", "figure": "wape"}
    ) == pytest.approx(0.3)
    assert value("orderpulse_monitoring_forecast", {"model_version": "1", "figure": "matched_steps"}) == 30
