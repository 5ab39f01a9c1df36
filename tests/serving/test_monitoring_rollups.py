"""Per-day rollups behind /v1/monitoring: equal to a direct computation, and dropped when an actual or label changes."""

from datetime import UTC, datetime, timedelta

import numpy as np
from sklearn.metrics import average_precision_score
from sqlalchemy import func, select

from serving.services.monitoring import _tables, monitoring_summary, monitoring_timeline, warm_rollups
from serving.services.monitoring_inputs import data_quality
from serving.store.audit import AuditRecord
from serving.store.events import Actual, LabelEvent
from serving.store.rollups import MARGIN, day_plan

DAY0 = datetime(2026, 3, 1, tzinfo=UTC)  # days long past: complete, so they are rolled up
N_DAYS = 6


def _history(audit, events):
    """Six days of forecasts (3 series, 3 steps, two versions) and scores, their actuals and some labels."""
    rng = np.random.default_rng(5)
    records, truth, labels = [], {}, []
    for d in range(N_DAYS):
        for h in (1, 9, 23):
            at = DAY0 + timedelta(days=d, hours=h)
            origin = datetime(2026, 3, 1) + timedelta(days=d)
            for s in ("s1", "s2", "s3"):
                points = []
                for step in (1, 2, 3):
                    yhat = float(rng.uniform(50, 150))
                    ds = origin + timedelta(days=step)
                    points.append(
                        {
                            "ds": ds.isoformat(),
                            "step": step,
                            "yhat": yhat,
                            "yhat_lo": yhat * 0.8,
                            "yhat_hi": yhat * 1.2,
                        }
                    )
                records.append(
                    AuditRecord(
                        kind="forecast",
                        model_name="m-forecast",
                        model_version="1" if d < 3 else "2",
                        input={"series_id": s},
                        output={"points": points, "levels": [80]},
                        created_at=at,
                    )
                )
            for k in range(4):
                oid = f"o{d}-{h}-{k}"
                score = float(rng.uniform())
                records.append(
                    AuditRecord(
                        kind="score",
                        model_name="m-anomaly",
                        model_version="1",
                        input={"order_id": oid, "created_at": (at - timedelta(minutes=5)).isoformat()},
                        output={"score": score, "threshold": 0.5, "flagged": score >= 0.5},
                        created_at=at,
                    )
                )
                if k < 3:
                    labels.append(LabelEvent(oid, int(rng.uniform() < score), datetime(2026, 3, 20)))
    audit.write_many(records)
    for s in ("s1", "s2", "s3"):
        for d in range(1, N_DAYS + 3):
            ds = datetime(2026, 3, 1) + timedelta(days=d)
            truth[(s, ds)] = float(rng.uniform(60, 140))
    events.upsert_actuals([Actual(s, ds, y) for (s, ds), y in truth.items()])
    events.add_labels(labels)
    return records, truth, {lab.order_id: lab.label for lab in labels}


def _expected(records, truth, labels, now):
    """WAPE, coverage and AUPRC computed directly from the answers and truths."""
    y, yhat, lo, hi = [], [], [], []
    for r in records:
        if r.kind == "forecast":
            for p in r.output["points"]:
                key = (r.input["series_id"], datetime.fromisoformat(p["ds"]))
                if key in truth:
                    y.append(truth[key])
                    yhat.append(p["yhat"])
                    lo.append(p["yhat_lo"])
                    hi.append(p["yhat_hi"])
    y, yhat, lo, hi = map(np.array, (y, yhat, lo, hi))
    outcome, score = [], []
    for r in (r for r in records if r.kind == "score"):
        oid = r.input["order_id"]
        created = datetime.fromisoformat(r.input["created_at"]).replace(tzinfo=UTC)
        if oid in labels:
            outcome.append(labels[oid])
        elif created < now - timedelta(days=14):
            outcome.append(0)
        else:
            continue
        score.append(r.output["score"])
    return {
        "matched_steps": len(y),
        "wape": np.abs(yhat - y).sum() / y.sum(),
        "coverage": np.mean((y >= lo) & (y <= hi)),
        "matched_orders": len(outcome),
        "auprc": average_precision_score(outcome, score) if outcome else None,
    }


def _check(out, expected):
    assert out["forecast"]["matched_steps"] == expected["matched_steps"]
    assert out["anomaly"]["matched_orders"] == expected["matched_orders"]
    for block, key in (("forecast", "wape"), ("forecast", "coverage"), ("anomaly", "auprc")):
        assert abs(out[block][key] - expected[key]) < 1e-9


def _rolled_days(stores, kind):
    db, schema, _, _ = stores
    days = _tables(db, schema).rollups.days
    with db.connection(begin=False) as conn:
        return conn.execute(select(func.count()).where(days.c.kind == kind)).scalar_one()


def test_rollups_equal_the_direct_figures_and_follow_revised_actuals_and_new_labels(stores):
    db, schema, audit, events = stores
    records, truth, labels = _history(audit, events)
    now = DAY0 + timedelta(days=30)
    window = {"since": DAY0, "until": DAY0 + timedelta(days=N_DAYS), "model": None}
    first = monitoring_summary(db, schema=schema, now=now, **window)
    _check(first, _expected(records, truth, labels, now))
    assert _rolled_days(stores, "forecast") == N_DAYS and _rolled_days(stores, "score") == N_DAYS
    assert monitoring_summary(db, schema=schema, now=now, **window) == first  # read from the rollups

    key = ("s2", datetime(2026, 3, 3))  # a step of days 0, 1 and 2 (steps 3, 2, 1)
    truth[key] = truth[key] * 3
    assert events.upsert_actuals([Actual(*key, truth[key])]) == ["updated"]
    oid = next(
        r.input["order_id"] for r in records if r.kind == "score" and r.input["order_id"] not in labels
    )
    labels[oid] = 1
    events.add_labels([LabelEvent(oid, 1, datetime(2026, 3, 25))])
    second = monitoring_summary(db, schema=schema, now=now, **window)
    _check(second, _expected(records, truth, labels, now))
    assert second["forecast"]["wape"] != first["forecast"]["wape"]
    assert second["anomaly"]["positives"] == first["anomaly"]["positives"] + 1


def test_a_window_with_partial_days_and_the_timeline_match_the_direct_figures(stores):
    db, schema, audit, events = stores
    records, truth, labels = _history(audit, events)
    now = DAY0 + timedelta(days=30)
    since, until = DAY0 + timedelta(days=1, hours=5), DAY0 + timedelta(days=4, hours=10)
    inside = [r for r in records if since <= r.created_at <= until]
    out = monitoring_summary(db, schema=schema, now=now, since=since, until=until, model=None)
    _check(out, _expected(inside, truth, labels, now))
    assert _rolled_days(stores, "forecast") == 2  # days 2 and 3; the rest was read directly
    daily = monitoring_timeline(db, schema=schema, now=now, since=DAY0, until=until, model=None)
    day3 = [r for r in records if r.created_at.date() == (DAY0 + timedelta(days=3)).date()]
    row = daily.loc[(daily["period"] == "2026-03-04") & (daily["kind"] == "forecast")].iloc[0]
    assert row["matched"] == _expected(day3, truth, labels, now)["matched_steps"]
    assert abs(row["wape"] - _expected(day3, truth, labels, now)["wape"]) < 1e-9


def test_the_model_filter_applies_to_rolled_up_days(stores):
    db, schema, audit, events = stores
    records, truth, labels = _history(audit, events)
    now = DAY0 + timedelta(days=30)
    window = {"since": DAY0, "until": DAY0 + timedelta(days=N_DAYS)}
    monitoring_summary(db, schema=schema, now=now, model=None, **window)  # rolls every day up
    out = monitoring_summary(db, schema=schema, now=now, model="m-forecast/2", **window)
    mine = [r for r in records if r.kind == "forecast" and r.model_version == "2"]
    expected = _expected(mine, truth, labels, now)
    assert out["forecast"]["matched_steps"] == expected["matched_steps"]
    assert abs(out["forecast"]["wape"] - expected["wape"]) < 1e-9
    assert [v["model_version"] for v in out["forecast"]["by_version"]] == ["2"]


def test_day_plan_rolls_up_only_complete_days_inside_the_window():
    clock = datetime(2026, 3, 10, 0, 5, tzinfo=UTC)  # 9 March ended 5 minutes ago: not complete yet
    plan = day_plan(datetime(2026, 3, 5, 6, tzinfo=UTC), None, None, clock)
    assert plan.days == ["2026-03-06", "2026-03-07", "2026-03-08"]
    assert plan.raw == [
        (datetime(2026, 3, 5, 6, tzinfo=UTC), datetime(2026, 3, 6, tzinfo=UTC), False),
        (datetime(2026, 3, 9, tzinfo=UTC), None, True),
    ]
    assert clock - datetime(2026, 3, 10, tzinfo=UTC) < MARGIN
    same_day = day_plan(datetime(2026, 3, 5, 6, tzinfo=UTC), datetime(2026, 3, 5, 9, tzinfo=UTC), None, clock)
    assert same_day.days == [] and same_day.raw == [
        (datetime(2026, 3, 5, 6, tzinfo=UTC), datetime(2026, 3, 5, 9, tzinfo=UTC), True)
    ]


def test_warming_rolls_up_every_complete_day_and_queries_then_read_them(stores):
    db, schema, audit, events = stores
    records, truth, labels = _history(audit, events)
    warm_rollups(db, schema=schema)
    complete = (datetime.now(UTC) - MARGIN).date() - DAY0.date()
    assert _rolled_days(stores, "forecast") == complete.days == _rolled_days(stores, "score")
    now = DAY0 + timedelta(days=30)
    out = monitoring_summary(
        db, schema=schema, now=now, since=DAY0, until=DAY0 + timedelta(days=N_DAYS), model=None
    )
    _check(out, _expected(records, truth, labels, now))


def test_data_quality_counts_of_rolled_up_days_follow_new_orders_and_updated_actuals(stores):
    db, schema, _, events = stores
    tables = _tables(db, schema)
    ev = tables.events
    old = DAY0 + timedelta(hours=6)
    with db.connection() as conn:  # received on past days (the service stamps "now"; written directly here)
        conn.execute(
            ev.orders.insert(),
            [
                {
                    "order_id": f"o{i}",
                    "customer_id": None if i % 3 == 0 else "c",
                    "created_at": datetime(2026, 3, 1),
                    "n_lines": 1,
                    "content_hash": "h",
                    "received_at": old + timedelta(days=i % 4),
                }
                for i in range(12)
            ],
        )
        conn.execute(
            ev.labels.insert(),
            [
                {
                    "order_id": f"o{i}",
                    "label": i % 2,
                    "labeled_at": datetime(2026, 2, 27 if i == 1 else 28) if i < 2 else datetime(2026, 3, 3),
                    "received_at": old + timedelta(days=i % 5),
                }
                for i in range(
                    16
                )  # o12..o15 have no order yet; o0, o1 labeled before their order was created
            ],
        )
        conn.execute(
            ev.actuals.insert(),
            [
                {
                    "series_id": f"s{i}",
                    "ds": datetime(2026, 3, 1) + timedelta(days=i % 4),
                    "y": 1.0,
                    "open": int(i % 5 != 0),
                    "received_at": old + timedelta(days=i % 4, hours=30 * (i % 2)),
                    "updated_at": old,
                    "revisions": 0,
                }
                for i in range(20)
            ],
        )
    window = {"since": DAY0, "until": DAY0 + timedelta(days=N_DAYS), "now": DAY0 + timedelta(days=10)}
    args = (db, ev.orders, ev.labels, ev.actuals)

    def both():
        direct = data_quality(*args, **window, late_after=timedelta(days=1))
        rolled = data_quality(*args, **window, late_after=timedelta(days=1), rollups=tables.rollups)
        assert rolled == direct
        return rolled

    first = both()
    assert both() == first  # the second read comes from count_rollup
    assert first["label_events"]["problems"] == {"label_without_order": 4, "labeled_before_created": 2}
    assert first["actuals"]["problems"]["late"] == 10 and first["actuals"]["problems"]["closed"] == 4
    assert _rolled_days(stores, "dq:actuals:1") == N_DAYS
    with db.connection() as conn:
        conn.execute(
            ev.orders.insert(),
            [
                {
                    "order_id": "o12",
                    "customer_id": "c",
                    "created_at": datetime(2026, 3, 1),
                    "n_lines": 1,
                    "content_hash": "h",
                    "received_at": datetime.now(UTC),
                }
            ],
        )
    events.upsert_actuals([Actual("s3", datetime(2026, 3, 4), 5.0)])  # s3's actual revised
    second = both()
    assert second["label_events"]["problems"]["label_without_order"] == 3
    assert second["actuals"]["problems"]["revised"] == first["actuals"]["problems"]["revised"] + 1
