"""orderpulse retrain forecast|anomaly (orderpulse/jobs/retrain.py, orderpulse/commands/retrain.py): the champion's
inputs plus the events the service stored, the registry gate, the lock, and a failed run changing nothing."""

from __future__ import annotations

import json
import os
import shutil
import threading
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from orderpulse.cli import main
from orderpulse.jobs.retrain import (
    RegistryBusyError,
    merge_actuals,
    merge_order_events,
    registry_lock,
)
from serving.store.db import Database
from serving.store.events import Actual, EventStore, LabelEvent, OrderEvent

NAME = "rt"
FORECAST = f"{NAME}-forecast"
ANOMALY = f"{NAME}-anomaly"
SMALL = '{"n_estimators": 30, "num_leaves": 7, "learning_rate": 0.1}'


def _run(capsys, argv: list[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    out, err = capsys.readouterr()
    return int(exit_info.value.code or 0), out, err


def _last_json(out: str) -> dict:
    return json.loads(out.strip().splitlines()[-1])


def _series(
    days: int = 140, ids: tuple[str, ...] = ("a", "b", "c", "d", "e", "f"), seed: int = 0
) -> pd.DataFrame:
    """Weekly pattern + noise per series: a learnable signal, so LightGBM beats seasonal naive."""
    rng = np.random.default_rng(seed)
    ds = pd.date_range("2024-01-01", periods=days, freq="D")
    frames = []
    for i, sid in enumerate(ids):
        weekly = np.array([1.0, 1.2, 1.1, 1.0, 1.4, 2.0, 0.6])[ds.dayofweek]
        y = (20 + 5 * i) * weekly + rng.normal(0, 4.0, days)
        frames.append(pd.DataFrame({"series_id": sid, "ds": ds, "y": y.round(2)}))
    return pd.concat(frames, ignore_index=True)


def _aliases(name: str) -> dict[str, int]:
    return {a: int(v) for a, v in MlflowClient().get_registered_model(name).aliases.items()}


def _versions(name: str) -> list[int]:
    return sorted(int(v.version) for v in MlflowClient().search_model_versions(f"name='{name}'"))


@pytest.fixture(scope="module")
def trained_store(tmp_path_factory) -> dict:
    """v1 of rt-forecast trained once by `orderpulse train forecast` on 140 days of 6 series (inputs recorded)."""
    root = tmp_path_factory.mktemp("retrain_store")
    path = root / "series.csv"
    _series().to_csv(path, index=False)
    saved = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{root / 'mlflow.db'}"
    try:
        with pytest.raises(SystemExit) as exit_info:
            main(
                ["train", "forecast", "--series", str(path), "--horizon", "7", "--n-windows", "1"]
                + ["--name", NAME, "--lgbm-params", SMALL]
            )
    finally:
        os.environ.pop("MLFLOW_TRACKING_URI") if saved is None else os.environ.update(
            MLFLOW_TRACKING_URI=saved
        )
    assert exit_info.value.code in (0, None)
    return {"root": root, "series": path}


@pytest.fixture
def forecast_champion(capsys, tmp_path, trained_store, monkeypatch) -> dict:
    """A private copy of the trained store (its artifacts stay shared, read-only) with v1 as champion."""
    shutil.copy(trained_store["root"] / "mlflow.db", tmp_path / "mlflow.db")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    capsys.readouterr()
    assert _aliases(FORECAST) == {"champion": 1}
    run_id = MlflowClient().get_model_version(FORECAST, "1").run_id
    return {
        "series": trained_store["series"],
        "events": f"sqlite:///{tmp_path / 'audit.db'}",
        "run_id": run_id,
    }


def _post_actuals(url: str, rows: list[tuple[str, str, float]]) -> None:
    database = Database(url)
    try:
        EventStore(database).upsert_actuals([Actual(s, datetime.fromisoformat(d), y) for s, d, y in rows])
    finally:
        database.dispose()


def _post_new_days(url: str, days: int = 14) -> int:
    """Post the ``days`` days after the original series' end as actuals; returns how many rows."""
    fresh = _series(days=140 + days)
    fresh = fresh.loc[fresh["ds"] >= pd.Timestamp("2024-05-20")]
    _post_actuals(url, [(r.series_id, str(r.ds), float(r.y)) for r in fresh.itertuples()])
    return len(fresh)


# ------------------------------------------------------------------------------------------ merging
def test_merge_actuals_overrides_appends_and_counts():
    series = pd.DataFrame(
        {
            "series_id": pd.array(["a", "a", "b"], dtype="string"),
            "ds": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-01"]),
            "y": [1.0, 2.0, 3.0],
            "open": np.array([1, 1, 1], dtype="int8"),
        }
    )
    actuals = pd.DataFrame(
        {
            "series_id": pd.array(["a", "a", "b", "z"], dtype="string"),
            "ds": pd.to_datetime(["2024-01-02", "2024-01-03", "2024-01-01", "2024-01-01"]),
            "y": [9.0, 4.0, 3.0, 7.0],
            "open": np.array([1, 1, 1, 1], dtype="int8"),
        }
    )
    merged, counts = merge_actuals(series, actuals)
    assert counts == {"actuals": 4, "overridden": 1, "unchanged": 1, "appended": 2, "new_series": 1}
    got = {(r.series_id, str(r.ds.date())): r.y for r in merged.itertuples()}
    assert got == {
        ("a", "2024-01-01"): 1.0,
        ("a", "2024-01-02"): 9.0,
        ("a", "2024-01-03"): 4.0,
        ("b", "2024-01-01"): 3.0,
        ("z", "2024-01-01"): 7.0,
    }


def test_merge_order_events_replaces_whole_orders_and_counts():
    orders = pd.DataFrame(
        {
            "order_id": ["1", "1", "2"],
            "created_at": pd.to_datetime(["2024-01-01"] * 3),
            "sku": ["x", "y", "x"],
            "quantity": [1.0, 2.0, 3.0],
            "unit_price": [1.0, 1.0, 1.0],
        }
    )
    labels = pd.DataFrame(
        {"order_id": ["1", "2"], "label": [0, 0], "labeled_at": pd.to_datetime(["2024-01-05"] * 2)}
    )
    events = pd.DataFrame(
        {
            "order_id": ["2", "3"],
            "created_at": pd.to_datetime(["2024-01-02"] * 2),
            "sku": ["z", "z"],
            "quantity": [5.0, 6.0],
            "unit_price": [2.0, 2.0],
        }
    )
    event_labels = pd.DataFrame(
        {"order_id": ["2"], "label": [1], "labeled_at": pd.to_datetime(["2024-01-06"])}
    )
    o, lab, counts = merge_order_events(orders, labels, events, event_labels)
    assert counts == {
        "event_orders": 2,
        "orders_overridden": 1,
        "orders_appended": 1,
        "event_labels": 1,
        "labels_overridden": 1,
        "labels_appended": 0,
    }
    assert sorted(zip(o["order_id"], o["sku"], strict=True)) == [
        ("1", "x"),
        ("1", "y"),
        ("2", "z"),
        ("3", "z"),
    ]
    assert dict(zip(lab["order_id"], lab["label"], strict=True)) == {"1": 0, "2": 1}


# ------------------------------------------------------------------------------------------ forecast retrain
def test_retrain_forecast_adds_posted_actuals_and_promotes(capsys, forecast_champion):
    assert _post_new_days(forecast_champion["events"]) == 6 * 14  # the 14 days after the original's end
    _post_actuals(forecast_champion["events"], [("a", "2024-01-01 00:00:00", 99.0)])  # a correction

    code, out, err = _run(
        capsys, ["retrain", "forecast", "--name", NAME, "--events-db", forecast_champion["events"]]
    )
    assert code == 0, err
    result = _last_json(out)
    assert result["data"]["actuals"] == 6 * 14 + 1
    assert result["data"]["appended"] == 6 * 14
    assert result["data"]["overridden"] == 1
    assert result["retrained_from"] == 1
    assert result["version"] == 2
    assert result["gate_passed"] is True and result["reevaluated"] is True, (result, err)
    assert result["alias"] == "champion", result["decision"]
    assert _aliases(FORECAST) == {"champion": 2}
    run = MlflowClient().get_run(result["run_id"])
    assert run.data.params["data.series.rows"] == str(6 * 154)
    assert run.data.params["data.series.end"].startswith("2024-06-02")
    assert run.data.tags["input.series"] == str(forecast_champion["series"].resolve())
    assert "84 appended" in err


def test_retrain_with_a_worse_recipe_is_kept_as_challenger(capsys, forecast_champion):
    code, out, err = _run(
        capsys,
        ["retrain", "forecast", "--name", NAME, "--events-db", forecast_champion["events"]]
        + ["--lgbm-params", '{"n_estimators": 1, "learning_rate": 0.01}'],
    )
    assert code == 0, err
    result = _last_json(out)
    assert result["alias"] == "challenger"
    assert "does not beat" in result["decision"]
    assert _aliases(FORECAST) == {"champion": 1, "challenger": 2}


def test_dry_run_registers_nothing(capsys, forecast_champion):
    code, out, err = _run(
        capsys,
        ["retrain", "forecast", "--name", NAME, "--dry-run", "--events-db", forecast_champion["events"]],
    )
    assert code == 0, err
    result = _last_json(out)
    assert result["dry_run"] is True and result["registered"] is None
    assert result["alias"] == "champion"
    assert _versions(FORECAST) == [1]
    assert _aliases(FORECAST) == {"champion": 1}


def test_a_failed_retrain_leaves_aliases_and_versions_unchanged(capsys, forecast_champion, monkeypatch):
    import training.forecast.job as job

    def broken(*args, **kwargs):
        def reevaluate(champion):
            raise RuntimeError("tracking store went away")

        return reevaluate

    monkeypatch.setattr(job, "_champion_rebacktest", broken)
    _post_new_days(forecast_champion["events"])  # new data: the champion must be re-backtested
    code, _, err = _run(
        capsys, ["retrain", "forecast", "--name", NAME, "--events-db", forecast_champion["events"]]
    )
    assert code == 1
    assert "tracking store went away" in err
    assert _versions(FORECAST) == [1]
    assert _aliases(FORECAST) == {"champion": 1}


def test_a_failed_alias_move_deletes_the_new_version(capsys, forecast_champion, monkeypatch):
    def refuse(self, name, alias, version):
        raise RuntimeError("registry refused the alias")

    with monkeypatch.context() as patch:
        patch.setattr(MlflowClient, "set_registered_model_alias", refuse)
        code, _, err = _run(
            capsys, ["retrain", "forecast", "--name", NAME, "--events-db", forecast_champion["events"]]
        )
    assert code == 1
    assert "registry refused the alias" in err
    assert _versions(FORECAST) == [1]
    assert _aliases(FORECAST) == {"champion": 1}


def test_bad_input_exits_2_with_one_line(capsys, forecast_champion, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("series_id,ds,y\na,not-a-date,1\n")
    code, _, err = _run(capsys, ["retrain", "forecast", "--name", NAME, "--series", str(bad)])
    assert code == 2
    assert "error:" in err and "ds" in err
    code, _, err = _run(capsys, ["retrain", "anomaly", "--name", "nothing-here"])
    assert code == 2
    assert "no champion of nothing-here-anomaly" in err
    assert _aliases(FORECAST) == {"champion": 1}


def test_a_running_service_serves_the_retrained_champion_after_a_reload(
    capsys, forecast_champion, tmp_path, monkeypatch
):
    from fastapi.testclient import TestClient

    from serving.app import create_app, default_model_holder
    from serving.settings import Settings

    monkeypatch.setenv(
        "ORDERPULSE_AUDIT_URL", forecast_champion["events"]
    )  # the service's and the cron's setting
    settings = Settings(
        profile="dev",
        api_keys=["service-key"],
        mlruns_dir=tmp_path / "service",
        tracking_uri=os.environ["MLFLOW_TRACKING_URI"],
        model_name=NAME,
        require_models=["forecast"],
        gc_freeze_at_startup=False,
    )
    auth = {"X-API-Key": "service-key"}
    with TestClient(create_app(settings, model_holder=default_model_holder(settings))) as client:
        served = {m["kind"]: m["version"] for m in client.get("/v1/models", headers=auth).json()["models"]}
        assert served["forecast"] == "1"
        _post_new_days(forecast_champion["events"])
        code, out, err = _run(
            capsys, ["retrain", "forecast", "--name", NAME]
        )  # events: the service's setting
        assert code == 0, err
        result = _last_json(out)
        assert result["data"]["appended"] == 6 * 14
        assert result["alias"] == "champion", result["decision"]
        reload = client.post("/v1/admin/reload", headers=auth).json()
        assert reload["outcomes"]["forecast"]["status"] == "loaded"
        assert reload["outcomes"]["forecast"]["version"] == "2"
        served = {m["kind"]: m["version"] for m in client.get("/v1/models", headers=auth).json()["models"]}
        assert served["forecast"] == "2"


# ------------------------------------------------------------------------------------------ lock
def test_a_retrain_while_another_holds_the_lock_exits_1_and_changes_nothing(capsys, forecast_champion):
    with registry_lock(FORECAST, timeout=0):
        code, out, err = _run(
            capsys,
            [
                "retrain",
                "forecast",
                "--name",
                NAME,
                "--lock-timeout",
                "0",
                "--events-db",
                forecast_champion["events"],
            ],
        )
    assert code == 1
    assert "another retrain of rt-forecast holds" in err
    assert out == ""
    assert _versions(FORECAST) == [1]


def test_the_lock_is_exclusive_across_threads_and_released_after(isolated_mlflow):
    held = threading.Event()
    release = threading.Event()

    def holder():
        with registry_lock("x-forecast", timeout=0):
            held.set()
            release.wait(10)

    t = threading.Thread(target=holder)
    t.start()
    assert held.wait(10)
    with (
        pytest.raises(RegistryBusyError, match="another retrain of x-forecast"),
        registry_lock("x-forecast", timeout=0),
    ):
        pass
    release.set()
    t.join()
    with registry_lock("x-forecast", timeout=0) as what:
        assert what.startswith("file lock ")


def test_two_concurrent_retrains_both_finish_and_leave_one_champion(forecast_champion):
    from orderpulse.jobs.retrain import retrain_forecast

    results: list[dict] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            results.append(retrain_forecast(NAME, events_url=forecast_champion["events"], lock_timeout=120))
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(r["version"] for r in results) == [2, 3]
    assert _versions(FORECAST) == [1, 2, 3]
    aliases = _aliases(FORECAST)
    assert aliases["champion"] in (2, 3)
    assert set(aliases) <= {"champion", "challenger"}


# ------------------------------------------------------------------------------------------ anomaly
def test_retrain_anomaly_adds_posted_orders_and_labels(capsys, tmp_path, sample_dir):
    orders = pd.read_csv(
        sample_dir / "online_retail" / "orders.csv", dtype={"order_id": str, "customer_id": str}
    )
    labels = pd.read_csv(sample_dir / "online_retail" / "labels.csv", dtype={"order_id": str})
    cut = pd.Timestamp("2011-09-01")
    orders["created_at"] = pd.to_datetime(orders["created_at"])
    old, new = orders.loc[orders["created_at"] < cut], orders.loc[orders["created_at"] >= cut]
    old.to_csv(tmp_path / "orders.csv", index=False)
    labels.loc[labels["order_id"].isin(old["order_id"])].to_csv(tmp_path / "labels.csv", index=False)
    code, out, err = _run(
        capsys,
        [
            "train",
            "anomaly",
            "--orders",
            str(tmp_path / "orders.csv"),
            "--labels",
            str(tmp_path / "labels.csv"),
        ]
        + ["--name", NAME],
    )
    assert code == 0, err
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    database = Database(url)
    store = EventStore(database)
    events = [
        OrderEvent(
            str(oid),
            g["created_at"].iloc[0].to_pydatetime(),
            None if pd.isna(g["customer_id"].iloc[0]) else str(g["customer_id"].iloc[0]),
            tuple((str(r.sku), float(r.quantity), float(r.unit_price)) for r in g.itertuples()),
        )
        for oid, g in new.groupby("order_id", sort=False)
    ]
    store.add_orders(events)
    new_labels = labels.loc[labels["order_id"].isin(new["order_id"])]
    store.add_labels(
        [
            LabelEvent(r.order_id, int(r.label), pd.Timestamp(r.labeled_at).to_pydatetime())
            for r in new_labels.itertuples()
        ]
    )
    database.dispose()

    code, out, err = _run(capsys, ["retrain", "anomaly", "--name", NAME, "--events-db", url])
    assert code == 0, err
    result = _last_json(out)
    assert result["data"]["event_orders"] == new["order_id"].nunique()
    assert result["data"]["orders_appended"] == new["order_id"].nunique()
    assert result["data"]["event_labels"] == len(new_labels)
    assert result["version"] == 2
    assert result["alias"] in ("champion", "challenger")
    run = MlflowClient().get_run(result["run_id"])
    assert run.data.params["data.orders.rows"] == str(len(orders))
    assert run.data.tags["input.orders"] == str((tmp_path / "orders.csv").resolve())
    assert _aliases(ANOMALY)["champion"] in (1, 2)


def test_recorded_inputs_are_absolute_paths(forecast_champion):
    tags = MlflowClient().get_run(forecast_champion["run_id"]).data.tags
    assert Path(tags["input.series"]).is_absolute()
    assert Path(tags["input.series"]) == forecast_champion["series"].resolve()
    assert "input.covariates" not in tags
