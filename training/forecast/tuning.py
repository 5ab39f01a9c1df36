"""Optuna tuning of the LightGBM forecaster on backtest WAPE.

Seeded TPE sampler, median pruner: each trial backtests window by window (refitting per window, so every
window is an independent out-of-sample estimate) and reports the running mean WAPE after each window, so a
trial that is clearly worse than the median stops early. Every trial is a nested MLflow run under the active
run (when there is one) with its parameters and WAPE.

Search space: the LightGBM parameters that matter most for a global model (leaves, learning rate and rounds,
minimum leaf size, feature/row subsampling, L2) and one feature-configuration choice, whether weather features
are used (they cost time and help only some retailers).
"""

from __future__ import annotations

from typing import Any

import mlflow
import numpy as np
import optuna
import pandas as pd

from features.forecast_config import ForecastFeatureConfig
from training.forecast.backtest import rolling_origin_windows
from training.forecast.forecaster import LGBMForecaster
from training.metrics import wape
from training.progress import Progress, reporting

__all__ = ["tune_forecaster", "suggest_params"]


def suggest_params(trial: optuna.Trial) -> dict[str, Any]:
    """The search space (see the module docstring)."""
    return {
        "num_leaves": trial.suggest_int("num_leaves", 31, 255, log=True),
        "learning_rate": trial.suggest_float("learning_rate", 0.03, 0.2, log=True),
        "n_estimators": trial.suggest_int("n_estimators", 150, 800, step=50),
        "min_child_samples": trial.suggest_int("min_child_samples", 10, 200, log=True),
        "feature_fraction": trial.suggest_float("feature_fraction", 0.5, 1.0),
        "bagging_fraction": trial.suggest_float("bagging_fraction", 0.5, 1.0),
        "lambda_l2": trial.suggest_float("lambda_l2", 1e-3, 10.0, log=True),
    }


def tune_forecaster(
    series: pd.DataFrame,
    tables: dict[str, pd.DataFrame | None],
    *,
    freq: str,
    horizon: int,
    n_trials: int,
    n_windows: int = 2,
    step: int | None = None,
    seed: int = 0,
    timeout: float | None = None,
    progress: Progress | None = None,
) -> tuple[dict[str, Any], ForecastFeatureConfig]:
    """Run ``n_trials`` Optuna trials; returns the best LightGBM parameters and feature configuration.

    ``progress`` counts the trials and reports the best one (default ``training.progress.current()``)."""
    if n_trials < 1:
        raise ValueError(f"n_trials must be >= 1. Got {n_trials} instead.")
    step = int(step or max(1, horizon // 2))
    windows = rolling_origin_windows(series, n_windows, step, horizon)
    kwargs = {k: v for k, v in tables.items() if v is not None}
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        direction="minimize",
        sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=0),
        study_name=f"forecast-h{horizon}-{freq}",
    )

    def objective(trial: optuna.Trial) -> float:
        params = suggest_params(trial)
        use_weather = (
            trial.suggest_categorical("use_weather", [True, False])
            if kwargs.get("weather") is not None
            else True
        )
        config = ForecastFeatureConfig(freq=freq, use_weather=use_weather)
        scores = []
        for i, w in enumerate(windows):
            train = series.loc[series["ds"] <= w.origin]
            target = series.loc[(series["ds"] > w.origin) & (series["ds"] <= w.end)]
            model = LGBMForecaster(
                freq=freq,
                horizon=horizon,
                params=params,
                feature_config=config,
                calibrate=False,
                random_state=seed,
            ).fit(train, **kwargs)
            pred = model.predict(horizon, target.drop(columns="y"), levels=())
            scored = pred.merge(
                target.assign(series_id=target["series_id"].astype("string")), on=["series_id", "ds"]
            )
            scores.append(wape(scored["y"], scored["yhat"], scored["open"]))
            trial.report(float(np.mean(scores)), step=i)
            if trial.should_prune():
                _log_trial(trial, params, use_weather, float(np.mean(scores)), pruned=True)
                raise optuna.TrialPruned()
        value = float(np.mean(scores))
        _log_trial(trial, params, use_weather, value, pruned=False)
        return value

    with (
        reporting(progress) as progress,
        progress.task(f"tuning ({n_trials} trials)", total=n_trials) as task,
    ):
        study.optimize(
            objective, n_trials=n_trials, timeout=timeout, callbacks=[lambda *_: task.advance()], catch=()
        )
    best = dict(study.best_params)
    n_pruned = sum(t.state == optuna.trial.TrialState.PRUNED for t in study.trials)
    progress.info(
        f"tuning: best backtest WAPE {study.best_value:.4f} after {len(study.trials)} trials "
        f"({n_pruned} pruned): {best}"
    )
    if mlflow.active_run() is not None:
        mlflow.log_metrics({"tune_best_wape": float(study.best_value), "tune_trials_pruned": float(n_pruned)})
    use_weather = bool(best.pop("use_weather", True))
    if not use_weather:
        progress.warning("note: the best trial does not use weather features")
    return best, ForecastFeatureConfig(freq=freq, use_weather=use_weather)


def _log_trial(
    trial: optuna.Trial, params: dict[str, Any], use_weather: bool, value: float, pruned: bool
) -> None:
    if mlflow.active_run() is None:
        return
    with mlflow.start_run(
        run_name=f"trial {trial.number}",
        nested=True,
        tags={"optuna.trial": str(trial.number), "optuna.pruned": str(pruned)},
    ):
        mlflow.log_params({**params, "use_weather": use_weather})
        mlflow.log_metric("backtest_wape", value)
