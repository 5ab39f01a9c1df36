import shutil
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from training import tracking


@pytest.fixture(scope="module")
def template_db(tmp_path_factory):
    """An initialised empty MLflow SQLite store, created once (migrations take ~2 s) and copied per test."""
    folder = tmp_path_factory.mktemp("mlflow-template")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(folder)
        MlflowClient(tracking_uri=f"sqlite:///{folder / 'mlflow.db'}").search_experiments()
    return folder / "mlflow.db"


@pytest.fixture
def store(template_db, tmp_path, monkeypatch):
    """A private MLflow store under tmp_path; never touches the checkout's mlruns/."""
    shutil.copy(template_db, tmp_path / "mlflow.db")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    yield tmp_path
    while mlflow.active_run() is not None:
        mlflow.end_run()
    mlflow.set_tracking_uri(None)


# ------------------------------------------------------------------------------------------ store location
def test_tracking_uri_defaults_to_sqlite_in_mlruns_under_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    assert tracking.tracking_uri() == f"sqlite:///{tmp_path.resolve() / 'mlruns' / 'mlflow.db'}"
    assert (tmp_path / "mlruns" / "artifacts").is_dir()


def test_tracking_uri_follows_the_environment_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/elsewhere/x.db")
    assert tracking.tracking_uri() == f"sqlite:///{tmp_path}/elsewhere/x.db"
    assert tracking.artifact_root() == (tmp_path / "elsewhere" / "artifacts").as_uri()


def test_tracking_server_uris_get_no_local_artifact_root(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.internal:5000")
    assert tracking.artifact_root() is None


def test_experiments_keep_their_artifacts_next_to_the_database(store):
    experiment_id = tracking.ensure_experiment("demand forecast")
    location = MlflowClient().get_experiment(experiment_id).artifact_location
    assert location == (store / "artifacts" / "demand_forecast").as_uri()
    with tracking.start_run("demand forecast", run_name="r1"):
        tracking.log_frame_as_artifact(pd.DataFrame({"a": [1, 2]}), "tables/a.csv")
    files = list((store / "artifacts" / "demand_forecast").rglob("a.csv"))
    assert len(files) == 1 and files[0].read_text() == "a\n1\n2\n"


def test_ensure_experiment_returns_the_same_id_twice(store):
    assert tracking.ensure_experiment("x") == tracking.ensure_experiment("x")


# ------------------------------------------------------------------------------------------ runs
def test_start_run_names_and_tags_the_run(store):
    with tracking.start_run("exp", run_name="train-1", tags={"model": "lgbm", "horizon": 42}) as run:
        pass
    got = MlflowClient().get_run(run.info.run_id)
    assert got.info.run_name == "train-1"
    assert got.data.tags["model"] == "lgbm" and got.data.tags["horizon"] == "42"
    assert got.info.status == "FINISHED"


def test_a_failing_block_ends_the_run_as_failed(store):
    with pytest.raises(RuntimeError, match="boom"), tracking.start_run("exp") as run:
        raise RuntimeError("boom")
    assert MlflowClient().get_run(run.info.run_id).info.status == "FAILED"


def test_nested_runs_hang_under_the_active_run(store):
    with tracking.start_run("exp") as parent, tracking.nested_run("window=0") as child:
        mlflow.log_metric("wape", 0.1)
    got = MlflowClient().get_run(child.info.run_id)
    assert got.data.tags["mlflow.parentRunId"] == parent.info.run_id
    assert got.data.metrics == {"wape": 0.1}


def test_nested_run_without_a_parent_is_refused(store):
    with pytest.raises(RuntimeError, match="needs an active parent run"), tracking.nested_run("orphan"):
        pass


def test_log_params_flat_flattens_nested_mappings(store):
    with tracking.start_run("exp") as run:
        flat = tracking.log_params_flat({"lgbm": {"num_leaves": 63, "lr": 0.05}, "horizon": 42})
    assert flat == {"lgbm.num_leaves": "63", "lgbm.lr": "0.05", "horizon": "42"}
    assert MlflowClient().get_run(run.info.run_id).data.params == flat


def test_log_figure_writes_the_image(store):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.plot([1, 2, 3])
    with tracking.start_run("exp"):
        tracking.log_figure(fig, "plots/line.png")
    assert len(list(Path(store).rglob("line.png"))) == 1
    assert not plt.fignum_exists(fig.number)


def test_log_frame_as_artifact_refuses_unknown_formats(store):
    with tracking.start_run("exp"), pytest.raises(ValueError, match="use a .csv or .parquet name"):
        tracking.log_frame_as_artifact(pd.DataFrame({"a": [1]}), "a.xlsx")


# ------------------------------------------------------------------------------------------ fingerprint
def _data():
    return pd.DataFrame(
        {
            "series_id": pd.array(["a", "a", "b"], dtype="string"),
            "ds": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-01"]),
            "y": [1.0, 2.0, 3.0],
        }
    )


def test_data_fingerprint_reports_shape_and_time_span():
    fp = tracking.data_fingerprint(_data(), "ds")
    assert (fp["rows"], fp["columns"], fp["start"], fp["end"]) == (
        3,
        3,
        "2024-01-01T00:00:00",
        "2024-01-02T00:00:00",
    )
    assert len(fp["sha256"]) == 64


def test_data_fingerprint_ignores_row_and_column_order():
    df = _data()
    shuffled = df.iloc[[2, 0, 1], ::-1].reset_index(drop=True)
    assert tracking.data_fingerprint(shuffled)["sha256"] == tracking.data_fingerprint(df)["sha256"]


def test_data_fingerprint_changes_with_any_value_or_column_name():
    df = _data()
    base = tracking.data_fingerprint(df)["sha256"]
    changed = df.copy()
    changed.loc[1, "y"] = np.nextafter(2.0, 3.0)
    assert tracking.data_fingerprint(changed)["sha256"] != base
    assert tracking.data_fingerprint(df.rename(columns={"y": "sales"}))["sha256"] != base


def test_log_fingerprint_logs_prefixed_params(store):
    with tracking.start_run("exp") as run:
        tracking.log_fingerprint(tracking.data_fingerprint(_data()), name="train")
    params = MlflowClient().get_run(run.info.run_id).data.params
    assert params["data.train.rows"] == "3" and params["data.train.start"] == "2024-01-01T00:00:00"
