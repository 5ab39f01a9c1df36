"""Tests of serving/prometheus.py (named apart from tests/training/test_metrics.py)."""

import numpy as np
from prometheus_client import CollectorRegistry

from serving.prometheus import Metrics


def _value(metrics, metric, /, **labels):
    return metrics.registry.get_sample_value(metric, labels)


def test_requests_are_counted_per_route_template(make_client, fakes):
    client = make_client()
    client.get("/v1/decisions/a", headers=fakes.AUTH)
    client.get("/v1/decisions/b", headers=fakes.AUTH)
    client.get("/health")
    m = client.app.state.metrics
    labels = {"method": "GET", "route": "/v1/decisions/{decision_id}", "status": "404"}
    assert _value(m, "orderpulse_http_requests_total", **labels) == 2
    assert _value(m, "orderpulse_http_requests_total", method="GET", route="/health", status="200") == 1
    assert (
        _value(
            m,
            "orderpulse_http_request_duration_seconds_count",
            method="GET",
            route="/v1/decisions/{decision_id}",
        )
        == 2
    )


def test_unmatched_paths_share_one_label(make_client):
    client = make_client()
    client.get("/x1")
    client.get("/x2")
    assert (
        _value(
            client.app.state.metrics,
            "orderpulse_http_requests_total",
            method="GET",
            route="<unmatched>",
            status="404",
        )
        == 2
    )


def test_metrics_endpoint_serves_prometheus_text(make_client):
    r = make_client().get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    assert "orderpulse_model_info" in r.text


def test_each_app_has_its_own_registry(make_client, fakes):
    a, b = make_client(), make_client()
    a.get("/health")
    assert (
        _value(
            a.app.state.metrics, "orderpulse_http_requests_total", method="GET", route="/health", status="200"
        )
        == 1
    )
    assert (
        _value(
            b.app.state.metrics, "orderpulse_http_requests_total", method="GET", route="/health", status="200"
        )
        is None
    )


def test_observe_scores_fills_buckets_sum_and_flag_counts():
    m = Metrics(CollectorRegistry())
    m.observe_scores(
        np.array([0.01, 0.05, 0.06, 0.97, np.nan]), [False, False, False, True, False], model_version="3"
    )
    assert _value(m, "orderpulse_anomaly_score_bucket", model_version="3", le="0.05") == 2
    assert _value(m, "orderpulse_anomaly_score_bucket", model_version="3", le="0.1") == 3
    assert _value(m, "orderpulse_anomaly_score_bucket", model_version="3", le="1.0") == 4
    assert _value(m, "orderpulse_anomaly_score_count", model_version="3") == 4
    assert _value(m, "orderpulse_anomaly_score_sum", model_version="3") == 0.01 + 0.05 + 0.06 + 0.97
    assert _value(m, "orderpulse_orders_scored_total", model_version="3") == 5
    assert _value(m, "orderpulse_orders_flagged_total", model_version="3") == 1


def test_model_info_lists_exactly_the_loaded_versions(make_client, fakes):
    source = fakes.FakeSource({"forecast": "1", "anomaly": "1"})
    client = make_client(source=source)
    m = client.app.state.metrics
    info = {"kind": "forecast", "name": "test-forecast", "alias": "champion", "source": "registry"}
    assert _value(m, "orderpulse_model_info", version="1", **info) == 1
    source.versions["forecast"] = "2"
    client.post("/v1/admin/reload", headers=fakes.AUTH)
    assert _value(m, "orderpulse_model_info", version="2", **info) == 1
    assert _value(m, "orderpulse_model_info", version="1", **info) is None
    assert _value(m, "orderpulse_model_reloads_total", kind="forecast", outcome="loaded") == 2
