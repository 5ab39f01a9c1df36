"""orderpulse/commands/quickstart.py: ``quickstart --name X`` serves the ``X-*`` models it trained."""

from __future__ import annotations

import pytest

import serving.cli
from orderpulse.cli import main
from orderpulse.commands import quickstart
from training.registry import registered_name


@pytest.mark.parametrize("name", ["shop", "orderpulse"])
def test_quickstart_serves_the_models_it_trained(monkeypatch, tmp_path, name):
    trained, served = [], []
    monkeypatch.setattr(quickstart, "ensure_models", lambda data, n: trained.append(n) or {"forecast": "ok"})
    monkeypatch.setattr(serving.cli, "serve", lambda host, port, workers, settings: served.append(settings))
    monkeypatch.setenv("ORDERPULSE_MODEL_NAME", "something-else")  # --name wins over the environment
    with pytest.raises(SystemExit) as exc:
        main(["quickstart", "--data", str(tmp_path), "--name", name, "--port", "8123"])
    assert exc.value.code in (0, None)
    assert trained == [name]
    assert [registered_name(s.model_name, k) for s in served for k in ("forecast", "anomaly")] == [
        f"{name}-forecast",
        f"{name}-anomaly",
    ]


def test_quickstart_without_name_serves_the_models_the_environment_names(monkeypatch, tmp_path):
    # ORDERPULSE_MODEL_NAME=shop make run: the shop's models, not orderpulse-* trained on the sample
    trained, served = [], []
    monkeypatch.setattr(quickstart, "ensure_models", lambda data, n: trained.append(n) or {"forecast": "ok"})
    monkeypatch.setattr(serving.cli, "serve", lambda host, port, workers, settings: served.append(settings))
    monkeypatch.setenv("ORDERPULSE_MODEL_NAME", "shop")
    with pytest.raises(SystemExit) as exc:
        main(["quickstart", "--data", str(tmp_path), "--port", "8123"])
    assert exc.value.code in (0, None)
    assert trained == ["shop"] and [s.model_name for s in served] == ["shop"]


def test_quickstart_reports_a_model_that_failed_the_gate():
    result = {"version": 1, "alias": "challenger", "gate_passed": False, "decision": "never champion: why"}
    assert quickstart._trained(result) == "trained v1 (@challenger): never champion: why"
    assert (
        quickstart._trained({"version": 2, "alias": "champion", "gate_passed": True})
        == "trained v2 (@champion)"
    )
