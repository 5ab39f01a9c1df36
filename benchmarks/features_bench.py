"""Feature-building speed and memory on the full datasets.

* forecast features: the full Rossmann training frame (all families, default daily config, and the
  ``for_horizon(42)`` frame the forecaster trains on) and a 42-step future frame;
* order features: point-in-time features of every Online Retail order in one vectorised pass, and the
  per-request path (one incoming order against the full history).

Target (issue 2): full Rossmann feature frame in under 20 s and under 2 GB peak on 2 cores.
Run: ``.venv/bin/python benchmarks/features_bench.py`` (or ``make bench``).
"""

from __future__ import annotations

import time
import warnings

import numpy as np
import pandas as pd

from measure import measure, shared_data  # noqa: I001 - also puts the repo on sys.path

from features.adapters import online_retail, rossmann  # noqa: E402
from features.forecast_config import ForecastFeatureConfig  # noqa: E402
from features.forecast_frame import build_future_frame, build_training_frame  # noqa: E402
from features.order_features import OrderHistory, order_features  # noqa: E402
from features.validation import validate  # noqa: E402

warnings.simplefilter("ignore")


def _row(name: str, rows: int, m, note: str = "") -> str:
    return f"| {name} | {rows:,} | {m.seconds:.2f} | {rows / max(m.seconds, 1e-9):,.0f} | {m.peak_mb:,.0f} | {note} |"


def main() -> None:
    lines = [
        "| what | rows | seconds | rows/s | peak MB above start | note |",
        "|---|---:|---:|---:|---:|---|",
    ]
    raw, _ = rossmann.load(shared_data("rossmann"))
    t = {k: validate(v, k)[0] for k, v in raw.items()}
    tables = {k: t[k] for k in ("covariates", "weather", "static")}
    s = t["series"]
    for label, config in (
        ("Rossmann training frame (default config)", ForecastFeatureConfig(freq="D")),
        ("Rossmann training frame, for_horizon(42)", ForecastFeatureConfig(freq="D").for_horizon(42)),
    ):
        with measure() as m:
            frame, report = build_training_frame(s, config=config, **tables)
        lines.append(_row(label, len(frame), m, f"{len(report.feature_names)} features"))
        del frame
    history = s.loc[s["ds"] <= s["ds"].max() - pd.Timedelta(days=42)]
    with measure() as m:
        frame, _ = build_future_frame(
            history, horizon=42, config=ForecastFeatureConfig(freq="D").for_horizon(42), **tables
        )
    lines.append(_row("Rossmann future frame, 42 steps", len(frame), m, "1,115 series"))

    raw, _ = online_retail.load(shared_data("online_retail"))
    orders, _ = validate(raw["orders"], "orders")
    labels, _ = validate(raw["labels"], "labels")
    with measure() as m:
        feats, _ = order_features(orders, labels)
    lines.append(_row("Online Retail order features (batch)", len(orders), m, f"{len(feats):,} orders"))
    with measure() as m:
        hist = OrderHistory(orders, labels)
    lines.append(_row("OrderHistory build (serving start-up)", len(orders), m, ""))
    last = orders.loc[orders["created_at"] >= orders["created_at"].max() - pd.Timedelta(days=30)]
    ids = last["order_id"].drop_duplicates().sample(200, random_state=0)
    times = []
    for oid in ids:
        one = last.loc[last["order_id"] == oid]
        t0 = time.perf_counter()
        hist.features(one)
        times.append(time.perf_counter() - t0)
    ms = np.array(times) * 1000
    lines.append(
        f"| one incoming order (200 samples) | 1 order | p50 {np.median(ms):.1f} ms, p99 {np.percentile(ms, 99):.1f} ms | | | |"
    )
    print("\n".join(lines))


if __name__ == "__main__":
    main()
