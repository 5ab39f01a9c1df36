"""``orderpulse retrain forecast|anomaly``: the champion's inputs plus what the service received, retrained and gated.

1. **The champion.** ``models:/<name>-<kind>@champion`` gives the recipe (the fitted estimator's constructor
   parameters: LightGBM parameters, features, horizon, frequency, seed, threshold policy; the backtest windows
   from the run's params) and the original inputs: the paths ``orderpulse train`` recorded as ``input.<table>``
   run tags (``record_inputs``), or, for a table neither recorded nor given, the snapshot logged with the model.
   ``--series/--orders/...`` flags override both.
2. **What the service received** (the event store, ``serving.store.events``, in the database the service writes:
   ``ORDERPULSE_AUDIT_URL``): forecast: the ``actuals`` table (one row per (series_id, ds), its latest revision)
   overrides the original series rows with the same key and appends the others; anomaly: ``order_events`` +
   ``order_event_lines`` and ``label_events`` replace the original rows of the same ``order_id`` (whole orders,
   ``features.order_lines.merge_by_order``) and append the others. The merged table is validated again; every
   count (overridden, unchanged, appended, dropped by validation) is printed and returned.
3. **Train and gate** with ``training.forecast.job`` / ``training.anomaly.job``: the registry's gate (seasonal naive
   or the base rate on the same windows) and the champion's recipe re-evaluated on the same windows of the new
   data; a tie with it promotes (same recipe, newer data). ``champion`` if it passes, else ``challenger`` with
   the reason. ``dry_run`` trains and gates without registering.
4. **Safe from cron.** The whole run holds ``registry_lock``: a PostgreSQL advisory lock when the tracking store
   is PostgreSQL, else a file lock (``filelock``) next to the SQLite database (in the temp folder for other
   stores); a second run waits up to ``lock_timeout`` seconds and then raises ``RegistryBusyError``. Nothing is
   registered until the decision is made, and the alias moves last (``training.registry.register``), so a run
   that fails changes no alias.
"""

from __future__ import annotations

import hashlib
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from features.io import load_table
from features.order_lines import merge_by_order
from features.validation import validate
from orderpulse.console import RichProgress, err
from training.registry import CHAMPION, ModelNotFoundError, registered_name, resolve
from training.tracking import configure, tracking_uri

__all__ = [
    "INPUT_TAG",
    "RegistryBusyError",
    "record_inputs",
    "registry_lock",
    "merge_actuals",
    "merge_order_events",
    "read_events",
    "service_database_url",
    "retrain_forecast",
    "retrain_anomaly",
]

INPUT_TAG = "input."
"""Run tags ``input.<table>`` hold the paths (and ``input.by``/``input.measure``) a training run read."""

_FORECAST_TABLES = ("series", "covariates", "weather", "static")
_ANOMALY_TABLES = ("orders", "labels")


class RegistryBusyError(RuntimeError):
    """Another retrain of the same registered model holds the lock (nothing was changed by this run)."""


def record_inputs(run_id: str, inputs: Mapping[str, Any]) -> dict[str, str]:
    """Record the inputs of a training run as ``input.<key>`` run tags (paths made absolute; None skipped)."""
    from mlflow import MlflowClient

    tags = {
        f"{INPUT_TAG}{k}": str(Path(v).resolve()) if isinstance(v, Path) else str(v)
        for k, v in inputs.items()
        if v is not None
    }
    configure()
    client = MlflowClient()
    for key, value in tags.items():
        client.set_tag(run_id, key, value)
    return tags


@contextmanager
def registry_lock(name: str, timeout: float = 600.0, uri: str | None = None) -> Iterator[str]:
    """Hold the retrain lock of registered model ``name`` (yields a description of the lock).

    PostgreSQL tracking store: a session advisory lock (``pg_try_advisory_lock``) on the store itself, released
    when the connection closes, also when the process dies. Otherwise a ``filelock.FileLock`` on
    ``<db>.<name>.retrain.lock`` next to the SQLite database (the temp folder for other stores: then the lock
    only covers this machine). Waits up to ``timeout`` seconds (0: not at all), then ``RegistryBusyError``.
    """
    uri = uri or tracking_uri()
    if uri.startswith(("postgresql", "postgres")):
        with _advisory_lock(uri, name, timeout) as what:
            yield what
        return
    from filelock import FileLock, Timeout

    db = Path(uri.removeprefix("sqlite:///")) if uri.startswith("sqlite:///") else None
    folder = db.parent if db is not None else Path(tempfile.gettempdir())
    path = folder / f"{db.name if db is not None else 'orderpulse'}.{name}.retrain.lock"
    lock = FileLock(path)
    try:
        lock.acquire(timeout=timeout)
    except Timeout:
        raise RegistryBusyError(
            f"another retrain of {name} holds {path} (waited {timeout:g}s); nothing was changed: "
            "try again later or raise --lock-timeout"
        ) from None
    try:
        yield f"file lock {path}"
    finally:
        lock.release()


def merge_actuals(series: pd.DataFrame, actuals: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, int]]:
    """The original ``series`` table with the stored ``actuals`` applied (both ``series_id, ds, y, open``).

    An actual with the key (series_id, ds) of an original row replaces it (``overridden`` when ``y`` or ``open``
    differ, ``unchanged`` otherwise); the others are ``appended`` (``new_series``: series the original lacks).
    """
    key = ["series_id", "ds"]
    counts = {"actuals": len(actuals), "overridden": 0, "unchanged": 0, "appended": 0, "new_series": 0}
    if actuals.empty:
        return series, counts
    acts = actuals.assign(
        series_id=actuals["series_id"].astype("string"),
        ds=actuals["ds"].astype(series["ds"].dtype),
        open=actuals["open"].astype(series["open"].dtype),
    )
    orig = series.assign(series_id=series["series_id"].astype("string"))
    both = orig[key + ["y", "open"]].merge(
        acts[key + ["y", "open"]], on=key, how="inner", suffixes=("", "_a")
    )
    same = (both["y"].eq(both["y_a"]) | (both["y"].isna() & both["y_a"].isna())) & both["open"].eq(
        both["open_a"]
    )
    counts["unchanged"] = int(same.sum())
    counts["overridden"] = int((~same).sum())
    counts["appended"] = len(acts) - len(both)
    counts["new_series"] = int((~acts["series_id"].drop_duplicates().isin(orig["series_id"])).sum())
    replaced = pd.MultiIndex.from_frame(orig[key]).isin(pd.MultiIndex.from_frame(acts[key]))
    merged = pd.concat([orig.loc[~replaced], acts[[c for c in acts.columns if c in orig.columns]]])
    merged = merged.sort_values(key, kind="stable").reset_index(drop=True)
    return merged, counts


def merge_order_events(
    orders: pd.DataFrame,
    labels: pd.DataFrame | None,
    event_orders: pd.DataFrame,
    event_labels: pd.DataFrame,
) -> tuple[pd.DataFrame, pd.DataFrame | None, dict[str, int]]:
    """Original orders/labels with the stored events applied, by ``order_id`` (the event's copy wins, whole).

    Counts: ``event_orders``/``event_labels`` read, ``orders_overridden``/``labels_overridden`` (the original had
    that ``order_id``), ``orders_appended``/``labels_appended``.
    """
    o = merge_by_order(orders, event_orders if len(event_orders) else None)
    n_event_orders = int(event_orders["order_id"].nunique()) if len(event_orders) else 0
    counts = {
        "event_orders": n_event_orders,
        "orders_overridden": o.older_orders_replaced,
        "orders_appended": n_event_orders - o.older_orders_replaced,
        "event_labels": len(event_labels),
        "labels_overridden": 0,
        "labels_appended": 0,
    }
    merged_labels = labels
    if len(event_labels):
        lab = merge_by_order(labels, event_labels)
        merged_labels = lab.frame
        counts["labels_overridden"] = lab.older_orders_replaced
        counts["labels_appended"] = len(event_labels) - lab.older_orders_replaced
    assert o.frame is not None
    return o.frame, merged_labels, counts


@dataclass
class _Champion:
    name: str
    version: int
    run_id: str | None
    model: Any
    snapshot: dict[str, pd.DataFrame]
    inputs: dict[str, str]
    params: dict[str, str]


def retrain_forecast(
    name: str = "orderpulse",
    *,
    inputs: Mapping[str, str | Path | None] | None = None,
    events_url: str | None = None,
    params: dict[str, Any] | None = None,
    until: Any = None,
    dry_run: bool = False,
    lock_timeout: float = 600.0,
    on_bad_rows: str = "raise",
) -> dict[str, Any]:
    """Retrain ``<name>-forecast`` (see the module docstring); returns the training summary plus ``data`` counts.

    ``inputs``: explicit tables (``series``, ``covariates``, ``weather``, ``static``, or ``orders`` with ``by`` /
    ``measure``) overriding the recorded ones; ``params``: LightGBM parameters overriding the champion's."""
    from training.forecast import job
    from training.pyfunc import ForecastPyfunc

    started = time.perf_counter()
    model_name = registered_name(name, "forecast")
    with registry_lock(model_name, lock_timeout) as lock:
        err.print(f"[bold]retrain forecast[/] {model_name} ({lock})")
        champ = _champion(model_name, ForecastPyfunc)
        given = {k: v for k, v in (inputs or {}).items() if v is not None}
        sources = _forecast_sources(champ, given)
        tables, reports = _forecast_tables(champ, sources, on_bad_rows)
        actuals = read_events(events_url, "actuals")
        series, counts = merge_actuals(tables.pop("series"), actuals)
        series, report = validate(series, "series", on_bad_rows=on_bad_rows)
        counts["dropped_by_validation"] = report.rows_in - len(series)
        err.print(
            f"  actuals: {counts['actuals']:,} read, {counts['overridden']:,} overridden, "
            f"{counts['unchanged']:,} unchanged, {counts['appended']:,} appended "
            f"({counts['new_series']:,} new series), {counts['dropped_by_validation']:,} dropped by validation"
        )
        old = champ.model
        result = job.train_forecast(
            series,
            **tables,
            freq=old.freq,
            horizon=old.horizon,
            levels=tuple(old.levels),
            until=until,
            name=model_name,
            holidays=old.holidays,
            n_windows=int(champ.params.get("n_windows", 2)),
            step=int(champ.params["step"]) if champ.params.get("step") else None,
            params={**(old.params or {}), **(params or {})},
            feature_config=old.feature_config,
            seed=int(old.random_state),
            hierarchy_levels=champ.params.get("hierarchy_levels") or None,
            reports={"series": report, **reports},
            progress=RichProgress(),
            promote_ties=True,
            dry_run=dry_run,
        )
        if not dry_run:
            record_inputs(result["run_id"], {**sources, "retrained_from": f"v{champ.version}"})
    return _finish(result, champ, counts, started)


def retrain_anomaly(
    name: str = "orderpulse",
    *,
    inputs: Mapping[str, str | Path | None] | None = None,
    events_url: str | None = None,
    until: Any = None,
    dry_run: bool = False,
    lock_timeout: float = 600.0,
    on_bad_rows: str = "raise",
) -> dict[str, Any]:
    """Retrain ``<name>-anomaly`` (see the module docstring); returns the training summary plus ``data`` counts.

    ``inputs``: explicit ``orders`` / ``labels`` tables overriding the recorded ones."""
    from training.anomaly import job
    from training.anomaly.models import AnomalyPyfunc, UnsupervisedDetector

    started = time.perf_counter()
    model_name = registered_name(name, "anomaly")
    with registry_lock(model_name, lock_timeout) as lock:
        err.print(f"[bold]retrain anomaly[/] {model_name} ({lock})")
        champ = _champion(model_name, AnomalyPyfunc)
        given = {k: v for k, v in (inputs or {}).items() if v is not None}
        sources = {t: given.get(t, champ.inputs.get(t)) for t in _ANOMALY_TABLES}
        loaded = {t: _table(champ, t, sources[t], on_bad_rows) for t in _ANOMALY_TABLES}
        orders, labels = loaded["orders"][0], loaded["labels"][0]
        if orders is None:
            raise ValueError(
                f"champion v{champ.version} of {model_name} has no orders to retrain on: pass --orders."
            )
        orders, labels, counts = merge_order_events(
            orders, labels, read_events(events_url, "orders"), read_events(events_url, "labels")
        )
        orders, orders_report = validate(orders, "orders", on_bad_rows=on_bad_rows)
        counts["orders_rows_dropped_by_validation"] = orders_report.rows_in - len(orders)
        reports = {"orders": orders_report}
        if labels is not None:
            labels, reports["labels"] = validate(labels, "labels", on_bad_rows=on_bad_rows)
            counts["labels_dropped_by_validation"] = reports["labels"].rows_in - len(labels)
        err.print(
            f"  events: {counts['event_orders']:,} orders ({counts['orders_overridden']:,} overridden, "
            f"{counts['orders_appended']:,} appended), {counts['event_labels']:,} labels "
            f"({counts['labels_overridden']:,} overridden, {counts['labels_appended']:,} appended), "
            f"{counts['orders_rows_dropped_by_validation']:,} order rows dropped by validation"
        )
        recipe = {k: v for k, v in champ.model.get_params().items() if k not in ("engine", "scheduler")}
        unsupervised = isinstance(champ.model, UnsupervisedDetector)
        result = job.train_anomaly(
            orders,
            None if unsupervised else labels,
            until=until,
            name=model_name,
            unsupervised=unsupervised,
            seed=int(recipe.get("random_state", 0)),
            reports=reports,
            progress=RichProgress(),
            recipe=recipe,
            promote_ties=True,
            dry_run=dry_run,
        )
        if not dry_run:
            record_inputs(result["run_id"], {**sources, "retrained_from": f"v{champ.version}"})
    return _finish(result, champ, counts, started)


# ------------------------------------------------------------------------------------------ helpers
def _champion(model_name: str, kind: type) -> _Champion:
    """The champion's version, fitted estimator, snapshot tables, recorded inputs and run params."""
    from mlflow import MlflowClient

    from training.pyfunc import load_snapshot_model

    try:
        resolved = resolve(f"models:/{model_name}@{CHAMPION}")
    except ModelNotFoundError as exc:
        raise ModelNotFoundError(
            f"no champion of {model_name} to retrain ({exc}); train one first with `orderpulse train ...`"
        ) from None
    wrapper = load_snapshot_model(resolved.uri, kind=kind)
    inputs: dict[str, str] = {}
    params: dict[str, str] = {}
    if resolved.run_id:
        run = MlflowClient().get_run(resolved.run_id)
        inputs = {k.removeprefix(INPUT_TAG): v for k, v in run.data.tags.items() if k.startswith(INPUT_TAG)}
        params = dict(run.data.params)
    err.print(
        f"  champion v{resolved.version} (run {resolved.run_id}); recorded inputs: "
        + (", ".join(f"{k}={v}" for k, v in sorted(inputs.items())) or "none (the model's snapshot is used)")
    )
    return _Champion(
        model_name, int(resolved.version or 0), resolved.run_id, wrapper.model, wrapper.tables, inputs, params
    )


def _forecast_sources(champ: _Champion, given: dict[str, Any]) -> dict[str, Any]:
    """Which input each table comes from: given flags, else recorded paths (an order log replays with by/measure)."""
    if "series" in given or "orders" in given:
        keep = ("by", "measure", "orders", "series")
        recorded = {k: v for k, v in champ.inputs.items() if k not in keep}
    else:
        recorded = dict(champ.inputs)
    sources = {**recorded, **given}
    for key in ("retrained_from",):
        sources.pop(key, None)
    return sources


def _forecast_tables(
    champ: _Champion, sources: dict[str, Any], on_bad_rows: str
) -> tuple[dict[str, pd.DataFrame | None], dict[str, Any]]:
    from orderpulse.commands.order_log import series_inputs

    tables: dict[str, pd.DataFrame | None] = {}
    reports: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="orderpulse-retrain-") as workdir:
        if sources.get("orders"):
            series_path, static_path = series_inputs(
                None,
                Path(sources["orders"]),
                Path(sources["static"]) if sources.get("static") else None,
                freq=champ.model.freq,
                by=sources.get("by"),
                measure=sources.get("measure") or "orders",
                workdir=Path(workdir),
                on_bad_rows=on_bad_rows,
            )
            sources = {**sources, "series": series_path, "static": static_path}
        for t in _FORECAST_TABLES:
            tables[t], rep = _table(champ, t, sources.get(t), on_bad_rows)
            if rep is not None:
                reports[t] = rep
    if tables["series"] is None:
        raise ValueError(
            f"champion v{champ.version} of {champ.name} has no series to retrain on: pass --series."
        )
    return tables, reports


def _table(champ: _Champion, table: str, path: Any, on_bad_rows: str) -> tuple[pd.DataFrame | None, Any]:
    """A table from its path (validated, printed), else the champion's snapshot copy, else None."""
    if path is not None:
        frame, report = load_table(path, table, on_bad_rows=on_bad_rows)  # type: ignore[arg-type]
        err.print(f"  [dim]loaded[/] {report}")
        return frame, report
    snap = champ.snapshot.get(table)
    if snap is not None:
        err.print(f"  [dim]{table}:[/] the champion's snapshot ({len(snap):,} rows)")
    return snap, None


def read_events(url: str | None, what: str) -> pd.DataFrame:
    """``actuals``, ``orders`` (order lines) or ``labels`` stored by the service at ``url`` (None: the service's
    own setting); an empty frame when that SQLite file does not exist (the service never stored anything)."""
    from serving.store.db import Database
    from serving.store.events import EventStore

    url = url or service_database_url()
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        err.print(f"  [yellow]no event store at {url}[/]: nothing received to add")
        return pd.DataFrame()
    database = Database(url)
    try:
        store = EventStore(database)
        if what == "orders":
            return store.order_lines()
        if what == "labels":
            return store.label_table()
        from sqlalchemy import select

        with database.connection(begin=False) as conn:
            ids = [r[0] for r in conn.execute(select(store.actuals.c.series_id).distinct())]
        return store.actuals_for(ids)
    finally:
        database.dispose()


def service_database_url() -> str:
    """The database the service stores events in: ``ORDERPULSE_AUDIT_URL`` or its default (``serving.settings``)."""
    from serving.settings import Settings

    return Settings(profile="dev").audit_url  # dev: no API key is needed to read the URL


def _finish(
    result: dict[str, Any], champ: _Champion, counts: dict[str, int], started: float
) -> dict[str, Any]:
    verb = "would be" if result.get("dry_run") else "->"
    err.print(
        f"[green]done[/] in {time.perf_counter() - started:.1f}s: {champ.name} {verb} @{result['alias']} "
        f"({result['decision']})"
    )
    return {**result, "retrained_from": champ.version, "data": counts}


@contextmanager
def _advisory_lock(uri: str, name: str, timeout: float) -> Iterator[str]:
    from sqlalchemy import create_engine, text
    from sqlalchemy.pool import NullPool

    from serving.store.db import with_driver

    key = int.from_bytes(
        hashlib.sha256(f"orderpulse-retrain:{name}".encode()).digest()[:8], "big", signed=True
    )
    engine = create_engine(with_driver(uri), poolclass=NullPool)
    try:
        with engine.connect() as conn:
            deadline = time.monotonic() + timeout
            while not conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar_one():
                conn.rollback()
                if time.monotonic() >= deadline:
                    raise RegistryBusyError(
                        f"another retrain of {name} holds the PostgreSQL advisory lock {key} (waited {timeout:g}s); "
                        "nothing was changed: try again later or raise --lock-timeout"
                    )
                time.sleep(min(0.5, max(0.0, deadline - time.monotonic())) or 0.05)
            conn.commit()
            try:
                yield f"advisory lock {key}"
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                conn.commit()
    finally:
        engine.dispose()
