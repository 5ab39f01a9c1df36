"""``orderpulse train anomaly`` and ``orderpulse score`` on files: read, call ``training.anomaly.job``, write.

``train_anomaly`` prints ``train anomaly reading <orders> and <labels>``, what validation repaired, the job's
progress and ``done in ...: <validation metrics>``. ``score_orders`` loads the model, reads the orders (and
labels), scores the orders created in ``[start, end)`` and writes ``order_id, created_at, score, flagged,
reasons`` to a CSV/Parquet file, or a partitioned Parquet dataset when ``out_path`` is a directory or has no
extension (the dask engine writes its partitions itself). Both return the summary the CLI prints as JSON.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from features.io import load_table, write_frame
from orderpulse.console import RichProgress, err
from training.anomaly import job
from training.anomaly.models import AnomalyPyfunc
from training.engine import check_engine
from training.pyfunc import load_snapshot_model
from training.tracking import configure

__all__ = ["train_anomaly", "score_orders"]


def train_anomaly(
    orders_path: str | Path,
    labels_path: str | Path | None,
    *,
    on_bad_rows: str = "raise",
    **options: Any,
) -> dict[str, Any]:
    """Read the orders (and labels) files, then ``training.anomaly.job.train_anomaly`` with ``options`` (until,
    name, unsupervised, tune, threshold_policy, seed, engine, scheduler); returns its summary."""
    check_engine(options.get("engine", "local"), options.get("scheduler"))
    job.check_train_options(
        options.get("unsupervised", False), labels_path is not None, options.get("tune", 0)
    )
    started = time.perf_counter()
    err.print(
        f"[bold]train anomaly[/] reading {orders_path}" + (f" and {labels_path}" if labels_path else "")
    )
    orders, orders_report = load_table(orders_path, "orders", on_bad_rows=on_bad_rows)
    reports = {"orders": orders_report}
    labels = None
    if labels_path is not None:
        labels, reports["labels"] = load_table(labels_path, "labels", on_bad_rows=on_bad_rows)
    for rep in reports.values():
        err.print(f"  {rep}")
    result = job.train_anomaly(orders, labels, reports=reports, progress=RichProgress(), **options)
    summary = job.metric_summary(result["metrics"])
    err.print(f"[green]done[/] in {time.perf_counter() - started:.1f}s: {summary}")
    return result


def score_orders(
    model_uri: str,
    orders_path: str | Path,
    out_path: str | Path,
    start: Any,
    end: Any,
    labels_path: str | Path | None = None,
    reasons: job.ReasonsMode = "flagged",
    k: int = 5,
    on_bad_rows: str = "raise",
    engine: str = "local",
    scheduler: str | None = None,
) -> dict[str, Any]:
    """Score the orders created in ``[start, end)`` point-in-time and write them to ``out_path``."""
    check_engine(engine, scheduler)
    job.scoring_window(start, end, reasons)
    began = time.perf_counter()
    configure()
    err.print(f"[bold]score[/] loading {model_uri}")
    wrapper = load_snapshot_model(model_uri, kind=AnomalyPyfunc)
    orders, _ = load_table(orders_path, "orders", on_bad_rows=on_bad_rows)
    labels = (
        load_table(labels_path, "labels", on_bad_rows=on_bad_rows)[0] if labels_path is not None else None
    )
    out, summary = job.score_orders(
        wrapper,
        orders,
        start,
        end,
        labels=labels,
        reasons=reasons,
        k=k,
        engine=engine,
        scheduler=scheduler,
        dataset=out_path if engine == "dask" else None,
        progress=RichProgress(),
    )
    if engine != "dask":
        write_frame(out, out_path)
    result = {"model_uri": model_uri, "out": str(out_path), **summary}
    result["seconds"] = round(time.perf_counter() - began, 6)
    err.print(f"[green]done[/]: {len(out):,} orders scored, {summary['flagged']:,} flagged -> {out_path}")
    return result
