"""Optuna tuning of the exception-order classifier on validation AUPRC (``orderpulse tune anomaly``, ``--tune``).

Seeded TPE sampler; a median pruner stops trials whose validation AUPRC (reported every 10 boosting rounds)
falls below the median of earlier trials at the same round. Every trial is a nested MLflow run of the active
run with its parameters, validation AUPRC and best iteration; ``progress`` counts the trials.
"""

from __future__ import annotations

import warnings
from typing import Any

import mlflow

from training.anomaly.data import AnomalyTrainingData
from training.anomaly.models import ExceptionClassifier
from training.progress import Progress
from training.progress import resolve as resolve_progress
from training.tracking import nested_run

__all__ = ["tune_classifier", "SEARCH_SPACE"]

SEARCH_SPACE = {
    "learning_rate": (0.02, 0.2, "log"),
    "num_leaves": (7, 31, "int"),
    "min_child_samples": (10, 200, "log-int"),
    "feature_fraction": (0.5, 1.0, "float"),
    "lambda_l2": (1e-3, 10.0, "log"),
}
"""LightGBM parameters tuned by ``tune=N`` (kept small: exact TreeSHAP cost grows with leaves x depth^2)."""


def tune_classifier(
    data: AnomalyTrainingData, n_trials: int, seed: int = 0, progress: Progress | None = None
) -> dict[str, Any]:
    """Optuna search of ``SEARCH_SPACE`` on validation AUPRC; each trial is a nested MLflow run of the active run.

    Seeded TPE sampler; a median pruner stops trials whose validation AUPRC (reported every 10 boosting rounds)
    falls below the median of earlier trials at the same round. Returns the best LightGBM parameters.
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = optuna.samplers.TPESampler(seed=seed)
    pruner = optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=30, interval_steps=10)
    study = optuna.create_study(direction="maximize", sampler=sampler, pruner=pruner)

    def objective(trial: optuna.Trial) -> float:
        params = _suggest(trial)
        with nested_run(f"trial {trial.number}", tags={"optuna.trial": trial.number}):
            mlflow.log_params(params)
            model = ExceptionClassifier(params=params, random_state=seed)
            try:
                with warnings.catch_warnings():  # a trial's threshold fallback is not the final model's
                    warnings.simplefilter("ignore", UserWarning)
                    model.fit_prepared(data, callbacks=[_pruning_callback(trial)])
            except optuna.TrialPruned:
                mlflow.set_tag("optuna.state", "pruned")
                raise
            value = float(model.metrics_["valid_auprc"])
            mlflow.log_metrics({"valid_auprc": value, "best_iteration": float(model.best_iteration_)})
            mlflow.set_tag("optuna.state", "complete")
        progress.info(f"trial {trial.number}: valid AUPRC {value:.4f}")
        return value

    progress = resolve_progress(progress)
    with progress.task(f"tuning ({n_trials} trials)", total=int(n_trials)) as task:
        study.optimize(objective, n_trials=int(n_trials), callbacks=[lambda *_: task.advance()], catch=())
    mlflow.log_metrics(
        {
            "tuning_best_valid_auprc": float(study.best_value),
            "tuning_trials_pruned": float(sum(t.state.name == "PRUNED" for t in study.trials)),
        }
    )
    return {**study.best_params}


# ------------------------------------------------------------------------------------------ helpers
def _suggest(trial: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, (lo, hi, kind) in SEARCH_SPACE.items():
        if kind == "int":
            out[key] = trial.suggest_int(key, int(lo), int(hi))
        elif kind == "log-int":
            out[key] = trial.suggest_int(key, int(lo), int(hi), log=True)
        else:
            out[key] = trial.suggest_float(key, lo, hi, log=kind == "log")
    return out


def _pruning_callback(trial: Any) -> Any:
    import optuna

    def callback(env: Any) -> None:
        if (env.iteration + 1) % 10:
            return
        for _data_name, metric, value, _higher in env.evaluation_result_list:
            if metric == "average_precision":
                trial.report(float(value), env.iteration + 1)
                if trial.should_prune():
                    raise optuna.TrialPruned(f"pruned at round {env.iteration + 1} (valid AUPRC {value:.4f})")

    callback.order = 30  # after early stopping's bookkeeping
    return callback
