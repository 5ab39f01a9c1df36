"""What a forecast training run logs to MLflow besides its metrics: the ensemble's members and weights, the
backtest tables and the review plots (forecast vs actual, residuals, feature importance, SHAP by family)."""

from __future__ import annotations

import mlflow
import pandas as pd

from training.forecast.backtest import BacktestResult
from training.forecast.ensemble import EnsembleForecaster
from training.forecast.forecaster import LGBMForecaster
from training.progress import Progress
from training.review import forecast_plots as plots
from training.tracking import log_figure, log_frame_as_artifact

__all__ = ["log_ensemble", "log_forecast_artifacts", "SHAP_PLOT_SERIES"]

# series explained for the SHAP family plot of a training run (a random subset above this; 200 took 3 minutes
# of a 12-minute full-Rossmann run: the family shares are read as well from 50 x the horizon's rows)
SHAP_PLOT_SERIES = 50


def log_ensemble(model: EnsembleForecaster, progress: Progress) -> dict[str, float]:
    """Log every member, its window score and the weights (params, metrics, ``ensemble/summary.json``)."""
    summary = model.summary()
    mlflow.log_params(
        {"ensemble.members": ",".join(summary["members"]), "ensemble.dropped": ",".join(summary["dropped"])}
    )
    mlflow.log_dict(summary, "ensemble/summary.json")
    metrics = {f"ensemble.weight.{n}": w for n, w in summary["weights"].items()}
    metrics |= {
        f"ensemble.{n}.backtest_{k}": v for n, sc in summary["member_backtest"].items() for k, v in sc.items()
    }
    metrics |= {f"ensemble.{n}.seconds": v for n, v in summary["member_seconds"].items()}
    metrics["ensemble.members_dropped"] = float(len(summary["dropped"]))
    for name, reason in summary["dropped"].items():
        progress.warning(f"ensemble member {name} dropped: {reason}")
    weights = ", ".join(f"{n} {w:.2f}" for n, w in summary["weights"].items())
    progress.info(f"ensemble weights (greedy selection on the backtest windows): {weights}")
    return metrics


def log_forecast_artifacts(
    model: LGBMForecaster | EnsembleForecaster, bt: BacktestResult, series: pd.DataFrame
) -> None:
    log_frame_as_artifact(bt.window_metrics, "backtest/window_metrics.csv")
    log_frame_as_artifact(bt.per_series, "backtest/per_series.csv")
    log_frame_as_artifact(bt.predictions, "backtest/predictions.parquet")
    log_figure(
        plots.forecast_vs_actual(bt.predictions, history=series, title="Backtest: forecast vs actual"),
        "plots/forecast_vs_actual.png",
    )
    log_figure(plots.residual_histogram(bt.predictions), "plots/residuals.png")
    tree = getattr(model, "lgbm_", model)  # the ensemble's LightGBM member (None when it was dropped)
    if tree is not None:
        last = tree.buckets_[-1].last
        booster = tree.boosters_[last]
        log_figure(
            plots.feature_importance(
                booster.feature_name(),
                booster.feature_importance("gain"),
                title=f"Feature importance (total gain), steps {tree.buckets_[-1].first}-{last}",
            ),
            "plots/feature_importance.png",
        )
    last_window = bt.predictions["window"].max()
    future = bt.predictions.loc[bt.predictions["window"] == last_window, ["series_id", "ds", "open"]]
    origin = bt.predictions.loc[bt.predictions["window"] == last_window, "origin"].iloc[0]
    if tree is None:
        return
    # TreeSHAP of every series is minutes on thousands of series (full Rossmann: over 15); the family plot reads
    # the same from a random subset, and says so
    ids = pd.Series(future["series_id"].unique())
    title = "SHAP: effect of each feature family (last window"
    if len(ids) > SHAP_PLOT_SERIES:
        keep = ids.sample(SHAP_PLOT_SERIES, random_state=0)
        future = future.loc[future["series_id"].isin(keep)]
        series = series.loc[series["series_id"].isin(keep)]
        title += f", {SHAP_PLOT_SERIES} of {len(ids):,} series at random"
    explained = tree.predict(tree.horizon, future, levels=(), explain=True, series=series, origin=origin)
    title += ")"
    if tree is not model:
        title += ", LightGBM member"
    log_figure(plots.family_contributions(explained, title=title), "plots/shap_families.png")
