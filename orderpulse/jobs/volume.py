"""``orderpulse detect volume`` on files: read and validate the series (and covariates), run
``training.volume.job.detect_volume`` with a progress bar, write the verdicts (CSV/Parquet via
``features.io.write_frame``), optionally draw the band plots and log the detector to MLflow; returns the summary
the CLI prints as JSON.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from features.io import load_table, write_frame
from orderpulse.console import RichProgress, err
from training.volume import job

__all__ = ["detect_volume", "MAX_PLOTS"]

MAX_PLOTS = 20


def detect_volume(
    series_path: str | Path,
    covariate_paths: Sequence[str | Path] = (),
    *,
    out: str | Path,
    on_bad_rows: str = "raise",
    log_mlflow: bool = False,
    plots: str | Path | None = None,
    **params: Any,
) -> dict[str, Any]:
    """Detect volume anomalies in every series of ``series_path``; one row per point after warm-up to ``out``.

    ``params`` go to ``VolumeDetector`` (freq, warmup, threshold, return_period, unit). ``plots``: a folder
    that receives ``<series_id>.png`` (band and alerts) for the series with alerts, most alerts first, at most
    ``MAX_PLOTS``. Returns points, series, alerts, flagged points, what validation repaired, the output path
    and (with ``log_mlflow``) the run id and artifact URI of the learned detector.
    """
    if not str(out).lower().endswith((".csv", ".csv.gz", ".parquet", ".pq")):
        raise ValueError(f"--out must end in .csv or .parquet. Got {str(out)!r}.")
    started = time.perf_counter()
    err.print(f"[bold]detect volume[/] reading {series_path}")
    series, report = load_table(series_path, "series", on_bad_rows=on_bad_rows)
    err.print(f"  {report}")
    covariates = []
    for path in covariate_paths:
        table, cov_report = load_table(path, "covariates", on_bad_rows=on_bad_rows)
        err.print(f"  {cov_report}")
        covariates.append(table)
    verdicts, detector, summary = job.detect_volume(series, covariates, progress=RichProgress(), **params)
    warmup = detector.warmup_duration()
    if summary["points"] == 0 and not log_mlflow:
        longest = series.groupby("series_id", observed=True)["ds"].agg(lambda ds: ds.max() - ds.min()).max()
        raise ValueError(
            f"every series ends inside its warm-up ({warmup} from its first point; the longest spans {longest}): "
            "there is nothing to judge. Fix: pass a shorter --warmup, or a longer history (with --log-mlflow a "
            "warm-up-only run is kept to continue from)."
        )
    if summary["series_only_in_warmup"]:
        err.print(f"  {summary['series_only_in_warmup']} series end inside the warm-up ({warmup}): no rows")
    if summary["missing_steps"]:
        err.print(
            f"  {summary['missing_steps']:,} steps of {detector.freq} in {summary['series_with_missing_steps']} "
            f"series have no row and are not judged (a missing row is not read as 0 {detector.unit}: write "
            "y = 0 for steps without any)"
        )
    if summary["points_outside_covariates"]:
        err.print(
            f"  {summary['points_outside_covariates']:,} points have no row in a covariates table (before or after "
            "its dates, or another series): nothing planned is assumed there (reasons say 'no promo planned')"
        )
    write_frame(verdicts, out)
    summary.update({"rows_repaired": report.repairs, "out": str(out)})
    if plots is not None:
        summary["plots"] = _plots(verdicts, Path(plots), detector.unit)
    if log_mlflow:
        summary.update(job.log_detector(detector, series, summary))
    err.print(
        f"[green]done[/] in {time.perf_counter() - started:.1f}s: {summary['points']:,} points of "
        f"{summary['series']} series after warm-up, {summary['alerts']} alerts -> {out}"
    )
    return summary


def _plots(verdicts: pd.DataFrame, folder: Path, unit: str) -> list[str]:
    import matplotlib.pyplot as plt

    from training.review.volume_plots import volume_band

    flagged = verdicts["flagged"].astype(bool)
    opens = flagged & ~flagged.groupby(verdicts["series_id"]).shift(1, fill_value=False).astype(bool)
    counts = opens.groupby(verdicts["series_id"]).sum().sort_values(ascending=False, kind="stable")
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for sid in counts[counts > 0].index[:MAX_PLOTS]:
        fig = volume_band(verdicts, str(sid), unit=unit)
        path = folder / f"{_file_name(str(sid))}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(str(path))
    return written


def _file_name(series_id: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in series_id) or "series"
