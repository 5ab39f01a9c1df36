"""The forecast training job behind ``orderpulse train forecast`` (and ``backtest``/``forecast``), on frames.

The CLI layer (``orderpulse.jobs.forecast``) reads and validates the files and writes the outputs; the functions
here take validated frames and report progress through a ``training.progress.Progress``.

``train_forecast``:

1. logs what validation repaired (``validation.*`` metrics, from the reports the reader returned);
   ``until`` drops every ``y`` after that date (counted);
2. optionally tunes LightGBM with Optuna (``training.forecast.tuning``);
3. backtests on ``n_windows`` rolling origins (one fit at the first origin, then newer history without
   refitting; the model calibrates its intervals on the horizon before that origin) and backtests the seasonal
   naive baseline on the same windows;
4. fits the final model on all data, with intervals calibrated on the backtest's out-of-sample residuals;
5. logs params, data fingerprints, metrics per window and overall (WAPE, RMSPE, MASE, and the coverage and
   mean width of each interval level: ``window_width_80`` next to ``window_coverage_80``), plots and the
   pyfunc model to MLflow, and registers a version of ``<name>-forecast``: ``champion`` when its backtest
   WAPE beats seasonal naive's on the same windows (the gate: a version that does not is never champion) and
   the champion's on the same windows of the same data (the champion's recipe is re-backtested here when it
   was evaluated on other windows or other data), ``challenger`` otherwise. The returned dict says why
   (``decision``, ``gate``, ``gate_passed``, ``compared_with``, ``reevaluated``).

Weather note: backtests read the weather observed on the target dates; in production those values are
weather forecasts, so backtest accuracy is slightly optimistic where weather matters.
"""

from __future__ import annotations

import time
import warnings
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from sklearn.base import clone

from features.forecast_config import ForecastFeatureConfig
from features.validation import ValidationReport
from training.engine import check_engine, engine_context
from training.forecast.backtest import BacktestResult, backtest, newer_windows, windows_that_fit
from training.forecast.baselines import SeasonalNaive
from training.forecast.ensemble import EnsembleForecaster
from training.forecast.forecaster import LGBMForecaster
from training.forecast.hierarchy import hierarchy_output, plan_hierarchy, train_hierarchy
from training.forecast.run_logging import log_ensemble, log_forecast_artifacts
from training.profile import build_profile, profile_table
from training.progress import Progress, reporting
from training.pyfunc import (
    ForecastPyfunc,
    SnapshotPyfunc,
    forecast_signature,
    load_snapshot_model,
    log_pyfunc,
)
from training.registry import Baseline, NotComparableError, register, registered_name
from training.tracking import (
    data_fingerprint,
    log_fingerprint,
    log_params_flat,
    start_run,
)

__all__ = [
    "train_forecast",
    "run_backtest",
    "forecast_frame",
    "forecast_output",
    "TABLE_NAMES",
]

TABLE_NAMES = ("covariates", "weather", "static")
# --model auto trains the ensemble when the LightGBM's backtest WAPE is above this multiple of the seasonal
# naive's on the same windows: a trending or sparse panel (an order log by country: 1.08x on average over 5
# cuts, where the ensemble reached 0.90x); daily store panels stay far below it (full Rossmann: 0.40x)
AUTO_ENSEMBLE_ABOVE = 0.8
# backtest windows when n_windows is not given, fewer when the history is short (a window's model needs
# WINDOW_HISTORY horizons up to its origin: the LightGBM's holdout calibration takes 3). LightGBM: one fit, then
# each window only predicts; on full Rossmann (CLI, cuts 2015-05-08 / 04-24) 2 -> 5 windows took the total's
# daily MAPE 3.88 -> 3.61% / 3.42 -> 3.27% (a steadier calendar correction). Ensemble: its weights (8 order-log
# cuts: 4 windows 0.83x seasonal naive, 2 windows 0.85x).
DEFAULT_WINDOWS = {"lgbm": 5, "ensemble": 4}
WINDOW_HISTORY = {"lgbm": 3, "ensemble": 1}


# boosters per bucket of the LightGBM's backtest models (the final model keeps its n_seeds, 3 by default): the
# backtest measures the recipe, calibrates the intervals and learns the calendar correction; seed averaging
# lowers a model's error by ~3% (full Rossmann WAPE 0.0756 -> 0.0732) at 3x the fit time, which the backtest
# does not need (its residuals are then a little larger than the final model's: intervals slightly wider)
BACKTEST_SEEDS = 1


def train_forecast(
    series: pd.DataFrame,
    covariates: pd.DataFrame | None = None,
    weather: pd.DataFrame | None = None,
    static: pd.DataFrame | None = None,
    *,
    freq: str = "D",
    horizon: int = 42,
    until: Any = None,
    name: str = "orderpulse",
    holidays: str | None = None,
    tune: int = 0,
    n_windows: int | None = None,
    step: int | None = None,
    levels: tuple[int, ...] = (80, 95),
    params: dict[str, Any] | None = None,
    seed: int = 0,
    engine: str = "local",
    scheduler: str | None = None,
    reports: dict[str, ValidationReport] | None = None,
    progress: Progress | None = None,
    hierarchy_levels: str | None = None,
    feature_config: ForecastFeatureConfig | None = None,
    promote_ties: bool = False,
    dry_run: bool = False,
    model: str = "auto",
    calendar_correction: bool = True,
) -> dict[str, Any]:
    """Train, backtest, log and register a forecaster; returns ``run_id, model_uri, metrics, version, alias``.

    ``n_windows``: backtest windows (default ``DEFAULT_WINDOWS`` of the model trained: 5 for the LightGBM, 4
    for the ensemble, whose weights and intervals are fitted on them; fewer on a short history).

    ``feature_config`` (when not tuning): the feature recipe, e.g. a champion's (``orderpulse retrain``);
    ``promote_ties`` and ``dry_run`` go to ``training.registry.register``.

    ``model``: ``"auto"`` (default: the LightGBM, or the ensemble when the LightGBM's backtest WAPE is above
    ``AUTO_ENSEMBLE_ABOVE`` x the seasonal naive's; not with ``hierarchy_levels``, ``tune`` or the dask engine),
    ``"lgbm"`` (the global LightGBM) or ``"ensemble"`` (``training.forecast.ensemble``: LightGBM +
    statistical members weighted on the backtest windows; its own window forecasts are the backtest, and every
    member, its window score and the weights are logged as ``ensemble.*`` params/metrics and
    ``ensemble/summary.json``).

    ``calendar_correction`` (LightGBM): learn the model's relative bias on holiday and promo days from the
    backtest (``LGBMForecaster.correct_from``, ``training.forecast.daykinds``) and apply it to every forecast;
    logged as ``calendar.*`` metrics (fractions: -0.02 = forecasts lowered 2% on that kind of day).

    ``hierarchy_levels`` (``"region,total"``): also learn coherent aggregate forecasts for those levels
    (``training.forecast.hierarchy``: aggregate model, reconciliation chosen by backtest, intervals per level).

    The tables are validated frames (``features.io.load_table``); ``reports`` are the validation reports of
    their reading, logged as ``validation.<table>.<repair>`` metrics. ``engine="dask"`` builds the training
    frames and trains the boosters on a Dask cluster (``scheduler``, or a LocalCluster for the whole job); see
    ``training.engine``.
    """
    check_engine(engine, scheduler)
    if model not in ("auto", "lgbm", "ensemble"):
        raise ValueError(f"model must be 'auto', 'lgbm' or 'ensemble'. Got {model!r} instead.")
    if model == "ensemble" and hierarchy_levels:
        raise ValueError("--levels is not supported with --model ensemble yet: use --model lgbm.")
    # auto: the LightGBM, unless its backtest is not clearly ahead of the seasonal naive (see AUTO_ENSEMBLE_ABOVE)
    kind = "ensemble" if model == "ensemble" else "lgbm"
    requested_windows = n_windows
    s, tables = series, {"covariates": covariates, "weather": weather, "static": static}
    reports = reports or {}
    with reporting(progress) as progress:
        dropped_after_until = 0
        if until is not None:
            cutoff = pd.Timestamp(until)
            dropped_after_until = int((s["ds"] > cutoff).sum())
            s = s.loc[s["ds"] <= cutoff].reset_index(drop=True)
            progress.info(
                f"--until {cutoff.date()}: {dropped_after_until:,} series rows after it are not used"
            )
        step = int(step or max(1, horizon // 2))

        # the windows each model gets when none were asked for
        fitting = {
            k: windows_that_fit(s, n, step, horizon, WINDOW_HISTORY[k] * horizon)
            for k, n in DEFAULT_WINDOWS.items()
        }

        def default_windows(kind: str) -> int:
            n, wanted = fitting[kind], DEFAULT_WINDOWS[kind]
            if n < wanted:
                progress.info(
                    f"backtest: {n} window{'s' * (n != 1)}, not {wanted}: the history is too short for more"
                )
            return n

        n_windows = int(requested_windows or default_windows(kind))
        # the ensemble weights its members on 2 or more windows (its own default ones when none were asked for)
        can_switch = (
            model == "auto"
            and not hierarchy_levels
            and engine == "local"
            and not tune
            and (requested_windows or fitting["ensemble"]) >= 2
        )
        experiment = registered_name(name, "forecast")
        hierarchy = plan_hierarchy(hierarchy_levels, s, tables["static"])

        with (
            engine_context(engine, scheduler),
            start_run(experiment, run_name=f"{kind} h={horizon} {freq}", tags={"model": "forecast"}) as run,
        ):
            log_params_flat(
                {
                    "freq": freq,
                    "horizon": horizon,
                    "until": until,
                    "n_windows.requested": requested_windows,
                    "step": step,
                    "levels": list(levels),
                    "seed": seed,
                    "tune_trials": tune,
                    "engine": engine,
                    "holidays": holidays,
                    "model.requested": model,
                }
            )
            series_fingerprint = data_fingerprint(s, "ds")
            log_fingerprint(series_fingerprint, "series")
            for tname, df in tables.items():
                if df is not None:
                    log_fingerprint(data_fingerprint(df, "ds" if "ds" in df.columns else None), tname)
            mlflow.log_metrics(
                {f"validation.{t}.{k}": float(v) for t, r in reports.items() for k, v in r.repairs.items()}
                | {"data.series_rows_after_until_dropped": float(dropped_after_until)}
            )

            if tune:
                from training.forecast.tuning import tune_forecaster

                tuned, feature_config = tune_forecaster(
                    s,
                    tables,
                    freq=freq,
                    horizon=horizon,
                    n_trials=tune,
                    n_windows=n_windows,
                    step=step,
                    seed=seed,
                    progress=progress,
                )
                params = {**(params or {}), **tuned}
                log_params_flat({"features": {"use_weather": feature_config.use_weather}})
            log_params_flat({"lgbm": params or {}})

            def make_model(
                calibrate: bool = True, backtest: bool = False
            ) -> LGBMForecaster | EnsembleForecaster:
                cls, extra = LGBMForecaster, {"n_seeds": BACKTEST_SEEDS} if backtest else {}
                if kind == "ensemble":
                    cls, extra = EnsembleForecaster, {"n_windows": n_windows, "step": step}
                return cls(  # type: ignore[return-value]
                    freq=freq,
                    horizon=horizon,
                    levels=levels,
                    params=params,
                    feature_config=feature_config,
                    calibrate=calibrate,
                    random_state=seed,
                    engine=engine,
                    scheduler=scheduler,
                    holidays=holidays,
                    **extra,
                )

            progress.info(f"backtest: {n_windows} windows of {horizon} steps, every {step} steps")

            def backtest_model() -> tuple[BacktestResult, EnsembleForecaster | None]:
                if kind == "ensemble":
                    # one fit: the ensemble's weights come from its forecasts of these windows (its backtest)
                    ensemble = make_model().fit(s, **tables)
                    return ensemble.backtest_, ensemble
                return run_backtest(
                    lambda: make_model(backtest=True),
                    s,
                    tables,
                    n_windows=n_windows,
                    step=step,
                    horizon=horizon,
                    levels=levels,
                ), None

            def naive_backtest() -> BacktestResult:
                return run_backtest(
                    lambda: SeasonalNaive(freq),
                    s,
                    tables,
                    n_windows=n_windows,
                    step=step,
                    horizon=horizon,
                    levels=levels,
                    pass_tables=False,
                )

            t0 = time.perf_counter()
            bt, fitted = backtest_model()
            backtest_seconds = time.perf_counter() - t0
            naive = naive_backtest()
            ratio = bt.overall["wape"] / naive.overall["wape"] if naive.overall["wape"] else np.nan
            if can_switch and np.isfinite(ratio) and ratio > AUTO_ENSEMBLE_ABOVE:
                progress.info(
                    f"--model auto: the LightGBM's backtest WAPE is {ratio:.2f}x the seasonal naive's (above "
                    f"{AUTO_ENSEMBLE_ABOVE}): training the ensemble (LightGBM + statistical members) instead"
                )
                mlflow.log_metric("auto.lgbm_wape_vs_seasonal_naive", float(ratio))
                kind = "ensemble"
                if requested_windows is None and fitting["ensemble"] != n_windows:
                    n_windows = default_windows("ensemble")
                    progress.info(f"backtest: {n_windows} windows of {horizon} steps, every {step} steps")
                    naive = naive_backtest()  # the gate compares on the ensemble's windows
                t0 = time.perf_counter()
                bt, fitted = backtest_model()
                backtest_seconds += time.perf_counter() - t0
            metrics = {f"backtest_{k}": v for k, v in bt.overall.items()}
            metrics |= {
                f"seasonal_naive_{k}": naive.overall[k]
                for k in ("wape", "rmspe", "mase")
                if k in naive.overall
            }
            metrics["wape_vs_seasonal_naive"] = (
                bt.overall["wape"] / naive.overall["wape"] if naive.overall["wape"] else np.nan
            )
            mlflow.log_params({"model": kind, "n_windows": n_windows})
            metrics["backtest_seconds"] = backtest_seconds
            for _, row in bt.window_metrics.iterrows():
                for k in (
                    "wape",
                    "rmspe",
                    "mase",
                    *(f"{m}_{lv}" for lv in levels for m in ("coverage", "width")),
                ):
                    if k in row and pd.notna(row[k]):
                        mlflow.log_metric(f"window_{k}", float(row[k]), step=int(row["window"]))
            progress.info(
                f"backtest WAPE {bt.overall['wape']:.4f} (seasonal naive {naive.overall['wape']:.4f}), "
                f"RMSPE {bt.overall.get('rmspe', np.nan):.4f}, 80% coverage {bt.overall.get('coverage_80', np.nan):.3f}"
            )

            t0 = time.perf_counter()
            if kind == "ensemble":
                model = fitted
                metrics |= log_ensemble(model, progress)
            else:
                progress.info(f"fitting the final model on {len(s):,} rows")
                model = make_model(calibrate=False).fit(s, **tables)
                model.calibrate_from(bt.predictions.loc[newer_windows(bt.predictions)])
                if calendar_correction:
                    model.correct_from(bt.predictions)
                    metrics |= model.calendar_correction_.to_dict()
                    if model.calendar_correction_.factors:
                        progress.info(
                            "calendar correction: "
                            + ", ".join(
                                f"{k} {np.expm1(v):+.1%}"
                                for k, v in model.calendar_correction_.factors.items()
                            )
                        )
                mlflow.log_param("calendar_correction", str(bool(calendar_correction)))
            metrics["fit_seconds"] = time.perf_counter() - t0
            if hierarchy is not None:
                progress.info(f"hierarchy {','.join(hierarchy.levels)}: aggregate model, reconciliation")
                metrics |= train_hierarchy(
                    model,
                    hierarchy,
                    s,
                    tables,
                    bt.predictions,
                    n_windows=n_windows,
                    step=step,
                    horizon=horizon,
                    # the series backtest's models calibrate (split: boosters fitted before the origin's holdout)
                    backtest_calibrate=make_model().calibrate,
                )
                mlflow.log_params({"hierarchy_levels": ",".join(hierarchy.levels)})
                mlflow.set_tag("hierarchy_method", model.hierarchy_.method_)
                progress.info(
                    f"reconciliation: {model.hierarchy_.method_} (per-level WAPE: hierarchy.* metrics)"
                )
            mlflow.log_metrics({k: float(v) for k, v in metrics.items() if np.isfinite(v)})
            if model.buckets_:
                mlflow.log_params(
                    {
                        "buckets": str([b.last for b in model.buckets_]),
                        "n_features": str(len(model.feature_names_[model.buckets_[-1].last])),
                        "target_transform": str(
                            getattr(getattr(model, "lgbm_", model), "transform_report_", None)
                        ),
                    }
                )
            log_forecast_artifacts(model, bt, s)

            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=".*input example was not provided.*")
                model_uri = log_pyfunc(
                    ForecastPyfunc(),
                    model,
                    {"series": s, **tables, "profile": _profile(s, tables["covariates"])},
                    forecast_signature(tables["covariates"]),
                )
            # same windows of the same data: the windows key plus the series table's fingerprint
            eval_key = f"{bt.eval_key()}:data={series_fingerprint['sha256'][:16]}"
            decision = register(
                model_uri,
                experiment,
                metric="backtest_wape",
                value=bt.overall["wape"],
                eval_key=eval_key,
                metrics={k: v for k, v in metrics.items() if k.startswith("backtest_") and np.isfinite(v)},
                tags={"freq": freq, "horizon": str(horizon), "run_id": run.info.run_id},
                baseline=Baseline("seasonal naive", naive.overall["wape"]),
                reevaluate=_champion_rebacktest(
                    experiment, s, tables, freq, n_windows, step, horizon, levels, progress, engine, scheduler
                ),
                promote_ties=promote_ties,
                dry_run=dry_run,
            )
            progress.info(str(decision))
            run_id = run.info.run_id
        return {
            "run_id": run_id,
            "model_uri": model_uri,
            **decision.summary(),
            "metrics": {k: round(float(v), 6) for k, v in metrics.items() if np.isfinite(v)},
        }


def _profile(series: pd.DataFrame, covariates: pd.DataFrame | None) -> pd.DataFrame:
    """The reference profile (``training.profile``) of the training ``y`` and covariate columns."""
    y = series.loc[series["open"] != 0, ["y"]] if "open" in series.columns else series[["y"]]
    profile = build_profile(y)
    if covariates is not None:
        profile |= build_profile(
            covariates, [c for c in covariates.columns if c not in ("series_id", "ds", "region")]
        )
    return profile_table(profile)


def run_backtest(
    make_model: Any,
    series: pd.DataFrame,
    tables: dict[str, pd.DataFrame | None],
    *,
    n_windows: int,
    step: int,
    horizon: int,
    levels: tuple[int, ...] = (80, 95),
    refit: bool = False,
    pass_tables: bool = True,
) -> BacktestResult:
    """``training.forecast.backtest.backtest`` with the forecast tables passed to ``fit`` (they are known in advance)."""
    kwargs = {k: v for k, v in tables.items() if v is not None} if pass_tables else {}
    return backtest(
        make_model,
        series,
        n_windows=n_windows,
        step=step,
        horizon=horizon,
        refit=refit,
        levels=levels,
        fit_kwargs=kwargs,
    )


def forecast_frame(
    wrapper: SnapshotPyfunc,
    series: pd.DataFrame,
    covariates: pd.DataFrame | None = None,
    weather: pd.DataFrame | None = None,
    static: pd.DataFrame | None = None,
    *,
    horizon: int | None = None,
    level: int = 80,
    origin: Any = None,
    explain: bool = False,
    hierarchy_levels: str | None = None,
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Forecast every series of ``series`` from ``origin``: ``series_id, ds, yhat, yhat_lo, yhat_hi`` (+ SHAP),
    and the counts of what building the features inserted, ignored or found missing (the frame report's,
    without ``rows``/``series``; zeros left out).

    ``hierarchy_levels`` (``"region,total"``, levels the model was trained with): coherent rows for every
    aggregate too, with a ``level`` column (``series``, the static column's name, ``total``); see
    ``training.forecast.hierarchy.hierarchy_output``.

    ``wrapper`` is a loaded forecast model (``training.pyfunc.load_snapshot_model(uri, kind=ForecastPyfunc)``);
    tables not given fall back to the snapshot the model was trained with (e.g. its promo calendar). A
    covariates or weather table given that starts after the snapshot's does (a plan of the coming weeks) is
    completed with the snapshot's rows dated before its first ``ds``, so the history keeps its promo and
    holiday features; those rows are counted (``covariate_rows_from_snapshot``, ``weather_rows_from_snapshot``).
    """
    model: LGBMForecaster = wrapper.model
    given = {"covariates": covariates, "weather": weather, "static": static}
    tables = {k: v if v is not None else wrapper.table(k) for k, v in given.items()}
    counts: dict[str, int] = {}
    for name, key, counted in (
        ("covariates", "series_id", "covariate_rows_from_snapshot"),
        ("weather", "region", "weather_rows_from_snapshot"),
    ):
        if given[name] is not None:
            tables[name], n = with_snapshot_history(given[name], wrapper.table(name), key)
            if n:
                counts[counted] = n
    pred = model.predict(horizon, levels=(level,), explain=explain, series=series, origin=origin, **tables)
    frame_counts = getattr(model, "predict_report_", {})
    counts = {
        **{k: v for k, v in frame_counts.items() if v and k not in ("rows", "series")},
        **counts,
    }
    if hierarchy_levels:
        out = hierarchy_output(
            model, hierarchy_levels, pred, series, tables, level=level, horizon=horizon, origin=origin
        )
        return out, counts
    return forecast_output(pred, level, explain), counts


def with_snapshot_history(
    given: pd.DataFrame, stored: pd.DataFrame | None, key: str
) -> tuple[pd.DataFrame, int]:
    """``given`` preceded by the rows of ``stored`` dated before its first ``ds``, and how many those are.

    A plan of future dates alone would otherwise replace the history's covariates (promo and holiday features
    then read "none" before the plan). Rows keep ``given``'s columns (a stored column the plan lacks is not
    used; a plan column the snapshot lacks is missing there). ``key`` (``series_id``, ``region``) present in
    only one of the tables is spread over the other's values, as a row without it applies to all."""
    if stored is None or given.empty or stored.empty:
        return given, 0
    earlier = stored.loc[stored["ds"] < given["ds"].min()]
    if earlier.empty:
        return given, 0
    if key in earlier.columns and key not in given.columns:
        given = given.merge(earlier[[key]].drop_duplicates(), how="cross")
    elif key in given.columns and key not in earlier.columns:
        earlier = earlier.merge(given[[key]].drop_duplicates(), how="cross")
    if key in given.columns:
        earlier = earlier.assign(**{key: earlier[key].astype(given[key].dtype)})
    earlier = earlier.reindex(columns=given.columns)
    return pd.concat([earlier, given], ignore_index=True), len(earlier)


def forecast_output(pred: pd.DataFrame, level: int, explain: bool) -> pd.DataFrame:
    """The columns ``forecast`` writes: ``series_id, ds, yhat, yhat_lo, yhat_hi`` (+ SHAP columns)."""
    out_df = pred.rename(columns={f"yhat_lo_{level}": "yhat_lo", f"yhat_hi_{level}": "yhat_hi"})
    keep = ["series_id", "ds", "yhat", "yhat_lo", "yhat_hi"]
    if explain:
        keep += ["base"] + [c for c in out_df.columns if c.startswith(("effect_", "contrib_"))]
    return out_df[keep]


def _champion_rebacktest(
    experiment: str,
    series: pd.DataFrame,
    tables: dict,
    freq: str,
    n_windows: int,
    step: int,
    horizon: int,
    levels: tuple[int, ...],
    progress: Progress,
    engine: str,
    scheduler: str | None,
) -> Any:
    """``register``'s ``reevaluate`` callback: backtest the champion's recipe on the same windows of this data
    and return its WAPE; ``NotComparableError`` when it forecasts another horizon or frequency or cannot be
    loaded.

    The recipe is every constructor parameter of the champion (``clone``), backtested the way the new model
    is: calibrated intervals at ``levels``, on this job's engine."""

    def reevaluate(champion: Any) -> float:
        try:
            old: LGBMForecaster = load_snapshot_model(
                f"models:/{experiment}/{champion.version}", kind=ForecastPyfunc
            ).model
        except Exception as exc:  # noqa: BLE001 - an unloadable champion cannot be compared
            raise NotComparableError(f"champion v{champion.version} could not be loaded: {exc}") from exc
        if old.horizon != horizon or old.freq != freq:
            raise NotComparableError(
                f"champion v{champion.version} forecasts {old.horizon} steps at {old.freq}, this version "
                f"{horizon} at {freq}"
            )
        progress.info(
            f"re-backtesting champion v{champion.version}'s recipe on the same windows of this data"
        )

        def make_old() -> LGBMForecaster:
            recipe = clone(old).set_params(levels=levels, calibrate=True, engine=engine, scheduler=scheduler)
            # backtested as the new version is: with the backtest's seeds
            return recipe.set_params(n_seeds=BACKTEST_SEEDS) if isinstance(recipe, LGBMForecaster) else recipe

        bt = run_backtest(
            make_old, series, tables, n_windows=n_windows, step=step, horizon=horizon, levels=levels
        )
        return float(bt.overall["wape"])

    return reevaluate
