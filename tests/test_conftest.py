"""tests/conftest.py: ``migrated_mlflow_schema``, the copy that gives new SQLite MLflow stores their tables."""

from __future__ import annotations

import logging
import sqlite3

import mlflow
from mlflow import MlflowClient
from mlflow.store.db import utils as db_utils
from mlflow.store.model_registry import sqlalchemy_store as registry_store


def test_new_stores_get_their_tables_from_the_copy_not_from_migrations():
    for module in (db_utils, registry_store):
        assert module._initialize_tables.__qualname__.startswith("migrated_mlflow_schema."), module


def test_a_copied_store_is_at_mlflows_latest_revision_and_tracks_and_registers(tmp_path, monkeypatch, caplog):
    from alembic.script import ScriptDirectory

    monkeypatch.chdir(tmp_path)
    caplog.set_level(
        logging.INFO, logger="mlflow.store.db.utils"
    )  # quiet_mlflow() of earlier tests raised it
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri, registry_uri=uri)

    head = ScriptDirectory.from_config(db_utils._get_alembic_config(uri)).get_current_head()
    with sqlite3.connect(tmp_path / "mlflow.db") as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [(head,)]
    (default,) = client.search_experiments()
    assert (default.name, default.artifact_location) == ("Default", str(tmp_path / "mlruns" / "0"))
    run = client.create_run(default.experiment_id)
    client.log_metric(run.info.run_id, "wape", 0.25)
    client.create_registered_model("m")
    client.create_model_version("m", f"runs:/{run.info.run_id}/model", run.info.run_id)
    assert client.get_run(run.info.run_id).data.metrics == {"wape": 0.25}
    assert [v.version for v in client.search_model_versions("name='m'")] == [1]
    # the messages a migration logs, under the same loggers, for the tests of how the CLI quiets them
    logged = {(r.name, r.getMessage()) for r in caplog.records if r.levelno == logging.INFO}
    assert ("mlflow.store.db.utils", "Creating initial MLflow database tables...") in logged
    assert ("mlflow.store.db.utils", "Updating database tables") in logged
    assert mlflow.get_tracking_uri() != uri  # the client did not move the global tracking URI
