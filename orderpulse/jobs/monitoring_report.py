"""``orderpulse report monitoring``: the live monitoring figures of a window as a static HTML page.

Reads the service's database (``ORDERPULSE_AUDIT_URL``, or ``--events-db``) with the functions behind
``GET /v1/monitoring`` (``serving.services.monitoring``: ``monitoring_summary``, ``monitoring_timeline``,
``monitoring_outcomes``), draws the figures of ``training.review.monitoring_plots`` and writes to ``out``:
``monitoring.html`` (status and reasons, headline figures, the four figures, data quality), the PNGs it shows,
``monitoring_timeline.csv`` (one row per period and model version) and ``monitoring.json`` (the summary, as
the API answers it).
"""

from __future__ import annotations

import html
import json
from datetime import datetime
from pathlib import Path
from typing import Any

from features.io import write_frame
from training.review import monitoring_plots as plots

__all__ = ["monitoring_report"]

_FIGURES = (
    ("accuracy.png", "Live accuracy over time against the training reference"),
    ("coverage_by_step.png", "Forecast interval coverage by horizon step"),
    ("calibration.png", "Calibration of the exception scores (reliability diagram)"),
    ("drift.png", "Input drift by feature"),
)


def monitoring_report(
    out: str | Path,
    *,
    since: datetime | None,
    until: datetime | None,
    model: str | None = None,
    database_url: str | None = None,
    freq: str = "D",
) -> dict[str, Any]:
    """Write the report of ``[since, until)`` to ``out``; returns ``html``, ``status``, the matched counts."""
    import matplotlib.pyplot as plt

    from orderpulse.jobs.retrain import service_database_url
    from serving.services.monitoring import monitoring_outcomes, monitoring_summary, monitoring_timeline
    from serving.store.db import Database

    url = database_url or service_database_url()
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        raise FileNotFoundError(
            f"No service database at {url}: point --events-db (or ORDERPULSE_AUDIT_URL) at the database the "
            "service writes its audit trail to."
        )
    database = Database(url)
    try:
        window = {"since": since, "until": until, "model": model}
        summary = monitoring_summary(database, **window)
        timeline = monitoring_timeline(database, **window, freq=freq)
        outcomes = monitoring_outcomes(database, **window)
    finally:
        database.dispose()
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    figures = {
        "accuracy.png": plots.accuracy_over_time(timeline, summary),
        "coverage_by_step.png": plots.coverage_by_step(summary),
        "calibration.png": plots.live_calibration(outcomes),
        "drift.png": plots.drift_by_feature(summary),
    }
    for name, fig in figures.items():
        fig.savefig(folder / name, dpi=110)
        plt.close(fig)
    write_frame(timeline, folder / "monitoring_timeline.csv")
    (folder / "monitoring.json").write_text(json.dumps(summary, indent=2, default=str), encoding="utf-8")
    page = folder / "monitoring.html"
    page.write_text(_page(summary, since, until, model), encoding="utf-8")
    forecast, anomaly = summary.get("forecast") or {}, summary.get("anomaly") or {}
    return {
        "html": str(page),
        "status": summary.get("status"),
        "reasons": len(summary.get("reasons") or []),
        "matched_steps": forecast.get("matched_steps"),
        "matched_orders": anomaly.get("matched_orders"),
        "periods": int(timeline["period"].nunique()) if len(timeline) else 0,
    }


def _page(summary: dict[str, Any], since: Any, until: Any, model: str | None) -> str:
    esc = html.escape
    status = summary.get("status", "ok")
    colour = {"ok": "#2e7d32", "warning": "#ef6c00", "alert": "#c62828"}.get(status, "#555")
    reasons = "".join(
        f"<li><b>{esc(str(r.get('severity')))}</b>: {esc(str(r.get('message', r)))}</li>"
        for r in summary.get("reasons") or []
    )
    forecast, anomaly = summary.get("forecast") or {}, summary.get("anomaly") or {}
    headline = [
        (
            "forecast",
            "matched steps",
            forecast.get("matched_steps"),
            "pending",
            forecast.get("pending_steps"),
        ),
        ("forecast", "live WAPE", forecast.get("wape"), "backtest WAPE", forecast.get("backtest_wape")),
        ("forecast", "bias", forecast.get("bias"), "", None),
        (
            "forecast",
            f"coverage ({forecast.get('level')}%)",
            forecast.get("coverage"),
            "backtest",
            forecast.get("backtest_coverage"),
        ),
        (
            "anomaly",
            "matched orders",
            anomaly.get("matched_orders"),
            "pending",
            anomaly.get("pending_orders"),
        ),
        ("anomaly", "live AUPRC", anomaly.get("auprc"), "validation AUPRC", anomaly.get("validation_auprc")),
        ("anomaly", "precision / recall", _pair(anomaly.get("precision"), anomaly.get("recall")), "", None),
        ("anomaly", "ECE", anomaly.get("ece"), "base rate", anomaly.get("base_rate")),
    ]
    rows = "".join(
        f"<tr><td>{k}</td><td>{esc(a)}</td><td>{_fmt(x)}</td><td>{esc(b)}</td><td>{_fmt(y)}</td></tr>"
        for k, a, x, b, y in headline
    )
    quality = "".join(
        f"<tr><td>{esc(name)}</td><td>{_fmt(card.get('rows'))}</td>"
        f"<td>{esc(', '.join(f'{k}: {v}' for k, v in (card.get('problems') or {}).items()) or 'none')}</td>"
        f"<td>{_fmt(card.get('freshness_s'))}</td></tr>"
        for name, card in (summary.get("data_quality") or {}).items()
        if isinstance(card, dict)
    )
    images = "".join(
        f'<h2>{esc(title)}</h2><img src="{name}" alt="{esc(title)}" style="max-width:100%">'
        for name, title in _FIGURES
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>OrderPulse monitoring</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}}
table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:4px 8px;text-align:left}}</style></head>
<body><h1>OrderPulse monitoring</h1>
<p>Window {esc(str(since or "start"))} .. {esc(str(until or "now"))}; model {esc(model or "all")};
computed {esc(str((summary.get("window") or {}).get("computed_at")))}</p>
<p>Status: <b style="color:{colour}">{esc(str(status))}</b></p><ul>{reasons or "<li>no rule fired</li>"}</ul>
<h2>Headline figures</h2><table><tr><th>model</th><th>live</th><th></th><th>reference</th><th></th></tr>{rows}
</table>{images}
<h2>Data quality</h2><table><tr><th>table</th><th>rows received in the window</th><th>problems</th>
<th>freshness (s)</th></tr>{quality}</table>
<p>Figures: <code>monitoring.json</code> (as <code>GET /v1/monitoring</code> answers),
<code>monitoring_timeline.csv</code> (per period and model version).</p></body></html>
"""


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return html.escape(str(value))


def _pair(a: Any, b: Any) -> str | None:
    return None if a is None and b is None else f"{_fmt(a)} / {_fmt(b)}"
