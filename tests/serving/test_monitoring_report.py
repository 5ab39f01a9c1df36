"""`orderpulse report monitoring` (orderpulse/jobs/monitoring_report.py) on a service that answered forecasts and
scores and received their actuals and labels: the page shows the figures GET /v1/monitoring answers."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from orderpulse.cli import main

AUTH = {"X-API-Key": "test-key"}
PLAN = [
    {"ds": str(d.date()), "promo": 0, "state_holiday": "0", "school_holiday": 0, "promo2_active": 0}
    for d in pd.date_range("2015-06-20", periods=20, freq="D")
]


def _ok(response):
    assert response.status_code == 200, response.text
    return response.json()


def test_the_report_shows_the_figures_the_monitoring_route_answers(service, make_order, tmp_path, capsys):
    forecast = _ok(service.post("/v1/forecast", json={"series_id": "88", "covariates": PLAN}, headers=AUTH))
    points = forecast["series"][0]["points"][:5]
    actuals = [{"series_id": "88", "ds": p["ds"], "y": round(p["yhat"] * 1.1, 1)} for p in points]
    _ok(service.post("/v1/actuals", json={"actuals": actuals}, headers=AUTH))
    orders = [make_order(f"MR{i}", created_at=f"2011-07-0{i + 1}T10:00:00") for i in range(4)]
    for order in orders:
        _ok(service.post("/v1/orders/score", json=order, headers=AUTH))
    labels = [
        {"order_id": o["order_id"], "label": i % 2, "labeled_at": "2011-07-20T12:00:00"}
        for i, o in enumerate(orders)
    ]
    _ok(service.post("/v1/events", json={"orders": orders, "labels": labels}, headers=AUTH))
    live = _ok(service.get("/v1/monitoring", headers=AUTH))
    assert live["forecast"]["matched_steps"] == 5  # the scenario is what the report should show

    out = tmp_path / "report"
    url = service.app.state.settings.audit_url
    with pytest.raises(SystemExit) as exit_info:
        main(["report", "monitoring", "--events-db", url, "--out", str(out)])
    stdout, stderr = capsys.readouterr()
    assert exit_info.value.code in (0, None), stderr
    result = json.loads(stdout.strip().splitlines()[-1])
    assert result["matched_steps"] == 5
    assert result["matched_orders"] == live["anomaly"]["matched_orders"] == 4
    assert result["status"] == live["status"]
    written = json.loads((out / "monitoring.json").read_text())
    assert written["forecast"]["wape"] == pytest.approx(live["forecast"]["wape"], abs=1e-12)
    assert written["anomaly"]["auprc"] == pytest.approx(live["anomaly"]["auprc"], abs=1e-12)
    page = (out / "monitoring.html").read_text()
    assert f"{live['forecast']['wape']:.4g}" in page
    for name in ("accuracy.png", "coverage_by_step.png", "calibration.png", "drift.png"):
        assert f'src="{name}"' in page
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    timeline = pd.read_csv(out / "monitoring_timeline.csv")
    assert int(timeline.loc[timeline["kind"] == "forecast", "matched"].sum()) == 5
    assert int(timeline.loc[timeline["kind"] == "anomaly", "matched"].sum()) == 4


def test_a_missing_database_exits_2_with_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(
            [
                "report",
                "monitoring",
                "--events-db",
                f"sqlite:///{tmp_path / 'none.db'}",
                "--out",
                str(tmp_path),
            ]
        )
    _, stderr = capsys.readouterr()
    assert exit_info.value.code == 2
    assert "No service database at" in stderr
