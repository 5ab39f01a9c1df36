"""Tests of training/anomaly/job.py: train -> MLflow -> registry -> score round trips in a temporary store."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from orderpulse.jobs.anomaly import score_orders, train_anomaly

UNTIL = "2020-08-31"


@pytest.fixture(scope="module")
def files(make_synthetic_orders, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    orders, labels = make_synthetic_orders(n_orders=2000, days=300, seed=3)
    root = tmp_path_factory.mktemp("anomaly_job")
    paths = {"orders": root / "orders.csv", "labels": root / "labels.csv", "root": root}
    orders.to_csv(paths["orders"], index=False)
    labels.to_csv(paths["labels"], index=False)
    return paths


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory):
    """One MLflow store for this module: creating a SQLite store runs migrations for seconds."""
    root = tmp_path_factory.mktemp("mlruns_anomaly_job")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", uri)
        mp.setenv("ORDERPULSE_MLRUNS_DIR", str(root))
        yield uri


@pytest.fixture(autouse=True)
def isolated_mlflow(store: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Overrides the conftest fixture: the module's store (tests use distinct registered model names)."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    return store


@pytest.fixture(scope="module")
def trained(store, files) -> dict:
    return train_anomaly(files["orders"], files["labels"], until=UNTIL, name="shop")


def test_train_logs_registers_and_scores_round_trip(trained, files, tmp_path):
    result = trained
    assert result["version"] == 1 and result["alias"] == "champion"
    assert result["registered"] == "models:/shop-anomaly/1"
    run = MlflowClient().get_run(result["run_id"])
    for key in (
        "valid_auprc",
        "valid_auroc",
        "valid_brier",
        "valid_brier_uncalibrated",
        "valid_ece",
        "valid_precision",
        "valid_recall",
        "valid_base_rate",
        "explain_one_order_ms",
    ):
        assert key in run.data.metrics, key
    assert run.data.params["data.orders.sha256"]
    artifacts = {a.path for a in MlflowClient().list_artifacts(result["run_id"], "plots")}
    assert artifacts == {"plots/calibration_curve.png", "plots/shap_summary.png"}

    out = tmp_path / "scores.csv"
    summary = score_orders(
        "models:/shop-anomaly@champion",
        files["orders"],
        out,
        "2020-09-01",
        "2020-10-01",
        labels_path=files["labels"],
    )
    scored = pd.read_csv(out)
    assert list(scored.columns) == ["order_id", "created_at", "score", "flagged", "reasons"]
    created = pd.to_datetime(scored["created_at"])
    assert created.min() >= pd.Timestamp("2020-09-01") and created.max() < pd.Timestamp("2020-10-01")
    assert summary["orders_scored"] == len(scored) and summary["flagged"] == int(scored["flagged"].sum())
    assert scored["score"].between(0, 1).all()
    reasons = scored["reasons"].map(json.loads)
    assert all(len(r) > 0 for r in reasons[scored["flagged"]])
    assert all(r == [] for r in reasons[~scored["flagged"]])
    first = next(r for r in reasons if r)[0]
    assert set(first) == {"feature", "value", "contribution", "text"}
    assert summary["metrics"]["n"] == summary["orders_labeled"]


def test_score_leaves_orders_whose_labels_are_not_final_out_of_the_metrics(trained, files, tmp_path):
    # Labels as known on 2020-10-15: September's exceptions (labelled within 10 days) are in, most of its
    # normal orders (labelled when their 30-day window closes) are not yet: metrics on them would be biased.
    labels = pd.read_csv(files["labels"], parse_dates=["labeled_at"], dtype={"order_id": str})
    known_then = labels.loc[labels["labeled_at"] <= pd.Timestamp("2020-10-15")]
    path = tmp_path / "labels_then.csv"
    known_then.to_csv(path, index=False)
    summary = score_orders(
        "models:/shop-anomaly@champion",
        files["orders"],
        tmp_path / "s.csv",
        "2020-09-01",
        "2020-10-01",
        labels_path=path,
    )
    days = MlflowClient().get_run(trained["run_id"]).data.metrics["data.label_maturity_days"]
    since = known_then["labeled_at"].max() - pd.Timedelta(days=days)
    scored = pd.read_csv(tmp_path / "s.csv", parse_dates=["created_at"], dtype={"order_id": str})
    labelled = scored.merge(known_then, on="order_id")
    young = labelled["created_at"] > since
    assert young.sum() > 0 and labelled.loc[young, "label"].mean() > 0.9  # early labels: exceptions
    assert summary["orders_labeled"] == len(labelled)
    assert summary["orders_labeled_too_young_for_metrics"] == int(young.sum())
    assert summary["metrics"]["n"] == int((~young).sum())
    assert summary["metrics"]["base_rate"] == pytest.approx(labelled.loc[~young, "label"].mean(), abs=1e-6)


def test_threshold_policy_and_its_numbers_are_stated_in_the_run_and_the_model_metadata(trained):
    run = MlflowClient().get_run(trained["run_id"])
    assert trained["threshold_policy"] == "f1:0.15" and run.data.params["threshold_policy"] == "f1:0.15"
    tags = run.data.tags
    assert tags["threshold.policy"] == "f1:0.15" and tags["threshold.chosen_on"] == "valid"
    assert float(tags["threshold.flag_rate"]) <= 0.15
    assert float(tags["threshold.threshold"]) == pytest.approx(trained["threshold"], rel=1e-5)
    assert 0 < float(tags["threshold.recall"]) <= 1 and float(tags["threshold.flags_per_day"]) > 0
    metadata = mlflow.pyfunc.load_model(trained["model_uri"]).metadata.metadata
    assert {k: v for k, v in metadata.items() if k.startswith("threshold.")} == {
        k: v for k, v in tags.items() if k.startswith("threshold.")
    }


def test_pyfunc_scores_order_lines(trained, files):
    result = trained
    lines = pd.read_csv(files["orders"], dtype={"order_id": str, "customer_id": str})
    lines["created_at"] = pd.to_datetime(lines["created_at"])
    request = lines.loc[lines["created_at"] >= pd.Timestamp("2020-09-01")].head(12)
    model = mlflow.pyfunc.load_model(result["model_uri"])
    out = model.predict(request)
    assert list(out.columns) == ["order_id", "score", "flagged"]
    assert sorted(out["order_id"]) == sorted(request["order_id"].unique())
    assert out["score"].between(0, 1).all()


def test_second_version_without_better_auprc_becomes_challenger(trained, files):
    first = trained
    second = train_anomaly(files["orders"], files["labels"], until=UNTIL, name="shop")
    assert (first["alias"], second["alias"]) == ("champion", "challenger")
    assert second["metrics"]["valid_auprc"] == first["metrics"]["valid_auprc"]  # seeded: same model


def test_scores_ignore_labels_known_after_each_order(trained, files, tmp_path):
    window = ("2020-09-01", "2020-10-01")
    a = score_orders(
        trained["model_uri"], files["orders"], tmp_path / "a.csv", *window, labels_path=files["labels"]
    )
    sa = pd.read_csv(tmp_path / "a.csv", parse_dates=["created_at"])
    t = sa["created_at"].iloc[len(sa) // 2]
    labels = pd.read_csv(files["labels"], dtype={"order_id": str}, parse_dates=["labeled_at"])
    later = labels["labeled_at"] >= t  # includes the labels of every window order created at or before t
    labels.loc[later, "label"] = 1 - labels.loc[later, "label"]
    labels.to_csv(tmp_path / "flipped.csv", index=False)
    b = score_orders(
        trained["model_uri"],
        files["orders"],
        tmp_path / "b.csv",
        *window,
        labels_path=tmp_path / "flipped.csv",
    )
    sb = pd.read_csv(tmp_path / "b.csv", parse_dates=["created_at"])
    upto = (sa["created_at"] <= t).to_numpy()
    np.testing.assert_array_equal(sa["score"][upto], sb["score"][upto])
    assert sa["reasons"][upto].tolist() == sb["reasons"][upto].tolist()
    assert not np.array_equal(sa["score"][~upto], sb["score"][~upto])  # later orders may use those labels
    assert a["metrics"]["auprc"] != b["metrics"]["auprc"]  # the evaluation did see the flipped labels


def test_tuning_logs_every_trial_as_a_nested_run(files):
    result = train_anomaly(files["orders"], files["labels"], until=UNTIL, tune=2, name="tuned")
    run = MlflowClient().get_run(result["run_id"])
    children = MlflowClient().search_runs(
        [run.info.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{result['run_id']}'"
    )
    assert len(children) == 2
    assert all("learning_rate" in c.data.params for c in children)
    assert "tuned.num_leaves" in run.data.params


def test_unsupervised_job_trains_without_labels(files, tmp_path):
    result = train_anomaly(files["orders"], None, until=UNTIL, unsupervised=True, name="unsupervised")
    assert result["kind"] == "unsupervised" and result["alias"] == "champion"
    summary = score_orders(
        result["model_uri"], files["orders"], tmp_path / "u.csv", "2020-09-01", "2020-10-01"
    )
    assert "metrics" not in summary
    assert 0 <= summary["flag_rate"] <= 0.2


def test_supervised_training_needs_labels(files):
    with pytest.raises(ValueError, match="needs --labels"):
        train_anomaly(files["orders"], None)


def test_score_refuses_an_empty_or_reversed_window(files, tmp_path):
    with pytest.raises(ValueError, match="end must be after start"):
        score_orders("models:/x@champion", files["orders"], tmp_path / "x.csv", "2020-10-01", "2020-09-01")


def test_mlflow_pyfunc_scores_int_typed_order_lines_like_the_score_command(trained, files, tmp_path):
    """``mlflow.pyfunc.load_model(uri).predict(orders)`` with int quantities and ids: the CLI's scores."""
    snapshot = mlflow.pyfunc.load_model(trained["model_uri"]).unwrap_python_model().tables["orders"]
    lines = pd.read_csv(files["orders"], dtype={"order_id": str, "customer_id": str})
    lines["created_at"] = pd.to_datetime(lines["created_at"])
    new = lines.loc[~lines["order_id"].isin(snapshot["order_id"].astype(str))]
    end = new["created_at"].min() + pd.Timedelta(days=3)
    request = new.loc[new["created_at"] < end].copy()
    request["quantity"] = request["quantity"].round().astype("int64")
    request["order_id"] = pd.factorize(request["order_id"])[0].astype("int64") + 10_000_000  # int ids
    assert request["quantity"].dtype == "int64" and len(request["order_id"].unique()) > 20
    request_ids = dict(zip(request["order_id"].astype(str), new.loc[request.index, "order_id"], strict=False))

    file_lines = new.loc[request.index].assign(quantity=request["quantity"].to_numpy())
    file_lines.to_csv(tmp_path / "orders.csv", index=False)
    score_orders(
        trained["model_uri"], tmp_path / "orders.csv", tmp_path / "cli.csv", new["created_at"].min(), end
    )
    cli = pd.read_csv(tmp_path / "cli.csv", dtype={"order_id": str})

    got = mlflow.pyfunc.load_model(trained["model_uri"]).predict(request)
    got["order_id"] = got["order_id"].map(request_ids)
    merged = cli.merge(got, on="order_id", suffixes=("_cli", "_pyfunc"))
    assert len(merged) == len(cli) == request["order_id"].nunique()
    np.testing.assert_allclose(merged["score_pyfunc"], merged["score_cli"], rtol=1e-9, atol=1e-12)
    assert (merged["flagged_pyfunc"] == merged["flagged_cli"]).all()


def test_logged_models_carry_their_code_and_exact_requirements(trained):
    from training.pyfunc import MODEL_REQUIREMENTS

    requirements = Path(mlflow.pyfunc.get_model_dependencies(trained["model_uri"])).read_text().split()
    names = {r.split("==")[0] for r in requirements}
    assert all("==" in r for r in requirements), requirements
    assert "orderpulse" not in names and set(MODEL_REQUIREMENTS) <= names
    lock = (Path(__file__).resolve().parents[3] / "requirements.lock").read_text().splitlines()
    assert next(r for r in requirements if r.startswith("lightgbm==")) in lock
    local = Path(mlflow.artifacts.download_artifacts(trained["model_uri"]))
    assert (local / "code" / "training" / "anomaly" / "models.py").is_file()
    assert (local / "code" / "features" / "order_features.py").is_file()
    assert not list((local / "code").rglob("__pycache__"))
