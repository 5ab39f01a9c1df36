"""Where MLflow runs go and small helpers to log what a training job must log.

Store: ``MLFLOW_TRACKING_URI`` when set (a server, PostgreSQL, another SQLite file), otherwise
``sqlite:///<cwd>/mlruns/mlflow.db``. For SQLite stores, run artifacts go to ``artifacts/`` next to the database
file (``<cwd>/mlruns/artifacts/<experiment>`` by default): experiments created here get that artifact location
explicitly, because MLflow's own default (``./mlruns/<id>`` under whatever the working directory is) would scatter
artifacts. For a tracking server the server decides where artifacts go.

Every helper works on the active run (``start_run`` / ``nested_run``); ``configure`` is idempotent and is called
by ``start_run`` and by ``training.registry``. ``quiet_mlflow`` lowers MLflow's database-migration chatter to
warnings; errors and MLflow's own warnings about misuse stay visible.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient

from features.io import write_frame

__all__ = [
    "DEFAULT_EXPERIMENT",
    "tracking_uri",
    "artifact_root",
    "configure",
    "quiet_mlflow",
    "ensure_experiment",
    "start_run",
    "nested_run",
    "data_fingerprint",
    "log_fingerprint",
    "log_params_flat",
    "log_figure",
    "log_frame_as_artifact",
]

DEFAULT_EXPERIMENT = "orderpulse"
_NOISY_LOGGERS = ("alembic", "alembic.runtime.migration", "mlflow.store.db.utils")


def tracking_uri() -> str:
    """``MLFLOW_TRACKING_URI`` if set, else ``sqlite:///<cwd>/mlruns/mlflow.db``; creates local folders it needs."""
    uri = os.environ.get("MLFLOW_TRACKING_URI", "").strip()
    if not uri:
        uri = "sqlite:///" + str(Path.cwd().resolve() / "mlruns" / "mlflow.db")
    db = _sqlite_path(uri)
    if db is not None:
        db.parent.mkdir(parents=True, exist_ok=True)
        (db.parent / "artifacts").mkdir(parents=True, exist_ok=True)
    return uri


def artifact_root(uri: str | None = None) -> str | None:
    """Artifact folder URI for experiments of a SQLite store (``<db folder>/artifacts``); None otherwise."""
    db = _sqlite_path(tracking_uri() if uri is None else uri)
    return None if db is None else (db.parent / "artifacts").resolve().as_uri()


def configure() -> str:
    """Point MLflow at ``tracking_uri()`` (the registry follows it unless ``MLFLOW_REGISTRY_URI`` says otherwise)
    and quiet it; returns the URI. Changes MLflow's global state only when it points elsewhere."""
    uri = tracking_uri()
    quiet_mlflow()
    if mlflow.get_tracking_uri() != uri:
        mlflow.set_tracking_uri(uri)
    return uri


def quiet_mlflow() -> None:
    """Lower MLflow's and alembic's database set-up messages (INFO per new store) to WARNING, hide its artifact
    download progress bars, and drop its CloudPickle advice (our pyfunc classes are importable code: see
    ``training.pyfunc``)."""
    for name in _NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    logging.getLogger("mlflow.pyfunc").addFilter(_drop_cloudpickle_advice)


def _drop_cloudpickle_advice(record: logging.LogRecord) -> bool:
    return "serialized using CloudPickle" not in record.getMessage()


def ensure_experiment(name: str = DEFAULT_EXPERIMENT) -> str:
    """The id of experiment ``name``, creating it (with the artifact location above) or restoring it if deleted."""
    if not name or not name.strip():
        raise ValueError("The experiment name must be a non-empty string, e.g. 'orderpulse-forecast'.")
    configure()
    client = MlflowClient()
    exp = client.get_experiment_by_name(name)
    if exp is None:
        root = artifact_root()
        location = None if root is None else f"{root}/{_safe_name(name)}"
        return client.create_experiment(name, artifact_location=location)
    if exp.lifecycle_stage == "deleted":
        client.restore_experiment(exp.experiment_id)
    return exp.experiment_id


@contextmanager
def start_run(
    experiment: str = DEFAULT_EXPERIMENT,
    run_name: str | None = None,
    tags: Mapping[str, Any] | None = None,
    nested: bool = False,
) -> Iterator[mlflow.ActiveRun]:
    """Start (and end) a run in ``experiment``; the run ends FAILED if the block raises."""
    experiment_id = ensure_experiment(experiment)
    with mlflow.start_run(
        experiment_id=experiment_id,
        run_name=run_name,
        nested=nested,
        tags={k: str(v) for k, v in (tags or {}).items()},
    ) as run:
        yield run


@contextmanager
def nested_run(run_name: str, tags: Mapping[str, Any] | None = None) -> Iterator[mlflow.ActiveRun]:
    """A child run of the active run (e.g. one per backtest window or tuning trial)."""
    parent = mlflow.active_run()
    if parent is None:
        raise RuntimeError(
            f"nested_run({run_name!r}) needs an active parent run: call it inside start_run(...)."
        )
    with mlflow.start_run(
        experiment_id=parent.info.experiment_id,
        run_name=run_name,
        nested=True,
        tags={k: str(v) for k, v in (tags or {}).items()},
    ) as run:
        yield run


def data_fingerprint(df: pd.DataFrame, time_col: str | None = "ds") -> dict[str, Any]:
    """``rows``, ``columns``, ``start``/``end`` of ``time_col`` (ISO) and a ``sha256`` of the content.

    The hash combines the column names and dtypes with ``pd.util.hash_pandas_object`` of every row (columns in
    sorted order, row hashes sorted), so it is the same whatever the row or column order, and changes with any
    value, column name or dtype change.
    """
    if time_col is not None and time_col not in df.columns:
        raise ValueError(
            f"data_fingerprint: no time column {time_col!r}; pass time_col=None or one of {list(df.columns)}."
        )
    cols = sorted(map(str, df.columns))
    digest = hashlib.sha256()
    digest.update(repr([(c, str(df[c].dtype)) for c in cols]).encode())
    if len(df) and cols:
        frame = df.copy()
        frame.columns = list(map(str, frame.columns))
        row_hashes = pd.util.hash_pandas_object(frame[cols], index=False, categorize=True).to_numpy()
        digest.update(np.sort(row_hashes).tobytes())
    start = end = None
    if time_col is not None and len(df):
        ts = pd.to_datetime(df[time_col])
        start, end = ts.min().isoformat(), ts.max().isoformat()
    return {
        "rows": len(df),
        "columns": len(df.columns),
        "start": start,
        "end": end,
        "sha256": digest.hexdigest(),
    }


def log_fingerprint(fingerprint: Mapping[str, Any], name: str = "train") -> None:
    """Log a ``data_fingerprint`` as params ``data.<name>.rows`` ... ``data.<name>.sha256``."""
    mlflow.log_params({f"data.{name}.{k}": "" if v is None else str(v) for k, v in fingerprint.items()})


def log_params_flat(params: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Log a nested mapping as flat params (``{"lgbm": {"num_leaves": 63}}`` -> ``lgbm.num_leaves``)."""
    flat = _flatten(params, prefix)
    if flat:
        mlflow.log_params(flat)
    return flat


def log_figure(figure: Any, artifact_file: str, close: bool = True) -> None:
    """Log a matplotlib figure (e.g. ``"plots/backtest.png"``) to the active run and close it to free memory."""
    mlflow.log_figure(figure, artifact_file)
    if close:
        import matplotlib.pyplot as plt

        plt.close(figure)


def log_frame_as_artifact(df: pd.DataFrame, artifact_file: str) -> None:
    """Log a frame as ``.csv`` or ``.parquet`` (by extension) at ``artifact_file`` inside the active run."""
    path = Path(artifact_file)
    if path.suffix not in (".csv", ".parquet"):
        raise ValueError(
            f"log_frame_as_artifact: use a .csv or .parquet name. Got {artifact_file!r} instead."
        )
    with tempfile.TemporaryDirectory() as tmp:
        local = write_frame(df, Path(tmp) / path.name)
        folder = str(path.parent) if str(path.parent) not in ("", ".") else None
        mlflow.log_artifact(str(local), artifact_path=folder)


# ------------------------------------------------------------------------------------------ helpers
def _sqlite_path(uri: str) -> Path | None:
    if not uri.startswith("sqlite:///"):
        return None
    path = unquote(uri[len("sqlite:///") :])
    return None if path in ("", ":memory:") else Path(path)


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "experiment"


def _flatten(params: Mapping[str, Any], prefix: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in params.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            out.update(_flatten(value, name))
        else:
            out[name] = str(value)
    return out
