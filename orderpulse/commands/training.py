"""``orderpulse train|forecast|backtest|tune|promote|score``: the data scientist's commands.

Training commands print progress on stderr and end with one JSON line on stdout (``run_id``, ``model_uri``,
``metrics``, ...), so scripts can parse the last line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from orderpulse.commands.features import EngineOpt, SchedulerOpt
from orderpulse.commands.order_log import ByOpt, MeasureOpt, series_inputs
from orderpulse.console import err, print_json_line

__all__ = ["register", "json_object"]

train_app = typer.Typer(help="Train, backtest, log to MLflow and register a model.", no_args_is_help=True)
tune_app = typer.Typer(
    help="Tune a model with Optuna (every trial is a nested MLflow run).", no_args_is_help=True
)

SeriesOpt = Annotated[Path, typer.Option("--series", help="series table (series_id, ds, y[, open])")]
CovOpt = Annotated[Path | None, typer.Option("--covariates", help="covariates table (known in advance)")]
WeatherOpt = Annotated[Path | None, typer.Option("--weather", help="weather table (region, ds, ...)")]
StaticOpt = Annotated[Path | None, typer.Option("--static", help="static table (series_id[, region], ...)")]
FreqOpt = Annotated[str, typer.Option("--freq", help="H, D or W (weekly: any anchor, inferred)")]
HorizonOpt = Annotated[int, typer.Option("--horizon", min=1, max=366, help="steps to forecast")]
NameOpt = Annotated[
    str, typer.Option("--name", help="registered models are <name>-forecast / <name>-anomaly")
]
UntilOpt = Annotated[str | None, typer.Option("--until", help="train on data up to this date (default: all)")]
OnBadRows = Annotated[
    str, typer.Option("--on-bad-rows", help="raise: refuse bad rows; drop: drop and count them")
]
HolidaysOpt = Annotated[
    str | None,
    typer.Option(
        "--holidays",
        help="public-holiday covariate: a country (GB, DE-BY) or 'static' (the static table's country column)",
    ),
]
WindowsOpt = Annotated[int, typer.Option("--n-windows", min=1, help="rolling-origin backtest windows")]
HierarchyOpt = Annotated[
    str | None,
    typer.Option(
        "--levels",
        help="hierarchy levels: static columns and/or total, e.g. region,total (coherent aggregate forecasts)",
    ),
]
StepOpt = Annotated[
    int | None, typer.Option("--step", min=1, help="steps between windows (default horizon/2)")
]


def register(app: typer.Typer) -> None:
    """Attach these commands to the root app."""
    app.add_typer(train_app, name="train")
    app.add_typer(tune_app, name="tune")
    app.command("forecast")(forecast)
    app.command("backtest")(backtest_cmd)
    app.command("promote")(promote)
    app.command("score")(score)


@train_app.command("forecast")
def train_forecast(
    series: Annotated[
        Path | None, typer.Option("--series", help="series table (series_id, ds, y[, open]); or --orders")
    ] = None,
    orders: Annotated[
        Path | None,
        typer.Option(
            "--orders", help="an order log to aggregate first (with --by/--measure), instead of --series"
        ),
    ] = None,
    by: ByOpt = None,
    measure: MeasureOpt = "orders",
    holidays: HolidaysOpt = None,
    covariates: CovOpt = None,
    weather: WeatherOpt = None,
    static: StaticOpt = None,
    freq: FreqOpt = "D",
    horizon: HorizonOpt = 42,
    until: UntilOpt = None,
    name: NameOpt = "orderpulse",
    tune: Annotated[int, typer.Option("--tune", min=0, help="Optuna trials before training (0: none)")] = 0,
    n_windows: Annotated[
        int | None,
        typer.Option(
            "--n-windows",
            min=1,
            help="rolling-origin backtest windows (default: 2 for the LightGBM, 4 for the ensemble, whose weights "
            "and intervals are fitted on them)",
        ),
    ] = None,
    step: StepOpt = None,
    on_bad_rows: OnBadRows = "raise",
    seed: Annotated[int, typer.Option("--seed")] = 0,
    lgbm_params: Annotated[
        str | None,
        typer.Option(
            "--lgbm-params",
            help='LightGBM overrides as JSON, e.g. \'{"num_leaves": 63, "n_estimators": 300}\'',
        ),
    ] = None,
    engine: EngineOpt = "local",
    scheduler: SchedulerOpt = None,
    levels: HierarchyOpt = None,
    model: Annotated[
        str,
        typer.Option(
            "--model",
            help="auto (default): the LightGBM, or the ensemble when the LightGBM's backtest WAPE is above 0.8x "
            "the seasonal naive's; lgbm: the global LightGBM; ensemble: LightGBM + Theta + profiles + seasonal "
            "naive, weighted on the backtest windows",
        ),
    ] = "auto",
    calendar_correction: Annotated[
        bool,
        typer.Option(
            "--calendar-correction/--no-calendar-correction",
            help="correct the LightGBM's bias on holiday and promo days, learned on its backtest windows "
            "(training.forecast.daykinds; default on)",
        ),
    ] = True,
) -> None:
    """Train the forecaster (global LightGBM, or --model ensemble), backtest it, log it to MLflow and register
    <name>-forecast."""
    import tempfile

    from orderpulse.jobs.forecast import train_forecast as job

    # what to record for `orderpulse retrain` (an order log is recorded as such: its series is a temporary file)
    given = {"series": series, "covariates": covariates, "weather": weather, "static": static}
    if orders is not None:
        given |= {"series": None, "orders": orders, "by": by, "measure": measure}
    with tempfile.TemporaryDirectory(prefix="orderpulse-series-") as workdir:
        series, static = series_inputs(
            series,
            orders,
            static,
            freq=freq,
            by=by,
            measure=measure,
            workdir=Path(workdir),
            on_bad_rows=on_bad_rows,
        )
        if holidays is not None:
            _check_holidays(holidays, static)
        result = job(
            series,
            covariates,
            weather,
            static,
            freq=freq,
            holidays=holidays,
            horizon=horizon,
            until=until,
            name=name,
            tune=tune,
            n_windows=n_windows,
            step=step,
            on_bad_rows=on_bad_rows,
            seed=seed,
            params=json_object(lgbm_params, "--lgbm-params"),
            engine=engine,
            scheduler=scheduler,
            hierarchy_levels=levels,
            model=model,
            calendar_correction=calendar_correction,
        )
    _record_inputs(result, given)
    print_json_line(result)


@train_app.command("anomaly")
def train_anomaly(
    orders: Annotated[Path, typer.Option("--orders", help="orders table (order lines)")],
    labels: Annotated[
        Path | None, typer.Option("--labels", help="labels table (order_id, label, labeled_at)")
    ] = None,
    until: UntilOpt = None,
    name: NameOpt = "orderpulse",
    unsupervised: Annotated[
        bool, typer.Option("--unsupervised", help="isolation forest; no labels needed")
    ] = False,
    tune: Annotated[int, typer.Option("--tune", min=0, help="Optuna trials (supervised only)")] = 0,
    threshold_policy: Annotated[
        str | None,
        typer.Option(
            "--threshold-policy",
            help="how the flag threshold is chosen: f1:0.15 (default: best F1 flagging at most 15% of the "
            "orders), f1 (best F1), precision:0.6, budget:0.05, reviews:40 (flags per day) or cost:5 (a "
            "missed exception costs 5 needless reviews)",
        ),
    ] = None,
    target_precision: Annotated[
        float | None,
        typer.Option("--target-precision", min=0.0, max=1.0, help="= --threshold-policy precision:<value>"),
    ] = None,
    flag_budget: Annotated[
        float | None,
        typer.Option(
            "--flag-budget", min=0.0, max=1.0, help="flag the top share of orders instead, e.g. 0.05"
        ),
    ] = None,
    on_bad_rows: OnBadRows = "raise",
    seed: Annotated[int, typer.Option("--seed")] = 0,
    engine: EngineOpt = "local",
    scheduler: SchedulerOpt = None,
) -> None:
    """Train the exception-order classifier (or the unsupervised detector), log it and register <name>-anomaly."""
    from orderpulse.jobs.anomaly import train_anomaly as job
    from training.anomaly.calibration import ThresholdPolicy

    given = [
        o
        for o, v in (
            ("--threshold-policy", threshold_policy),
            ("--target-precision", target_precision),
            ("--flag-budget", flag_budget),
        )
        if v is not None
    ]
    if len(given) > 1:
        raise ValueError(f"Pass one threshold policy option, not {' and '.join(given)}.")
    policy = ThresholdPolicy.parse(threshold_policy) if threshold_policy is not None else None
    if target_precision is not None or flag_budget is not None:
        policy = ThresholdPolicy(target_precision=target_precision, flag_budget=flag_budget)
    result = job(
        orders,
        labels,
        until=until,
        name=name,
        unsupervised=unsupervised,
        tune=tune,
        threshold_policy=policy,
        on_bad_rows=on_bad_rows,
        seed=seed,
        engine=engine,
        scheduler=scheduler,
    )
    _record_inputs(result, {"orders": orders, "labels": labels})
    print_json_line(result)


def _record_inputs(result: dict, inputs: dict) -> None:
    """The input paths as ``input.<table>`` run tags, so ``orderpulse retrain`` can read them again."""
    from orderpulse.jobs.retrain import record_inputs

    record_inputs(result["run_id"], inputs)


def _check_holidays(spec: str, static: Path | None) -> None:
    """Refuse an unknown --holidays calendar (or 'static' without a country column) before any training."""
    import pandas as pd

    from features.holidays import check_holidays
    from features.io import read_frame

    columns = list(read_frame(static, "static").columns) if static is not None else None
    check_holidays(spec, None if columns is None else pd.DataFrame(columns=columns))


def json_object(text: str | None, option: str) -> dict | None:
    import json

    if text is None:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"{option} must be a JSON object like '{{\"num_leaves\": 63}}'. Got {text!r} ({exc.msg})."
        ) from None
    if not isinstance(value, dict):
        raise ValueError(f"{option} must be a JSON object like '{{\"num_leaves\": 63}}'. Got {text!r}.")
    return value


def forecast(
    model: Annotated[
        str, typer.Option("--model", help="models:/<name>-forecast@champion, models:/n/3 or runs:/...")
    ],
    series: SeriesOpt,
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            help="output CSV (series_id, ds, yhat, yhat_lo, yhat_hi), or a directory: partitioned Parquet",
        ),
    ],
    covariates: CovOpt = None,
    weather: WeatherOpt = None,
    static: StaticOpt = None,
    horizon: Annotated[
        int | None, typer.Option("--horizon", min=1, max=366, help="default: the model's")
    ] = None,
    level: Annotated[int, typer.Option("--level", min=1, max=99, help="interval level in %")] = 80,
    origin: Annotated[
        str | None, typer.Option("--origin", help="forecast after this date (default: latest ds)")
    ] = None,
    explain: Annotated[bool, typer.Option("--explain", help="add effect_<family> columns (SHAP)")] = False,
    on_bad_rows: OnBadRows = "raise",
    engine: EngineOpt = "local",
    scheduler: SchedulerOpt = None,
    levels: HierarchyOpt = None,
) -> None:
    """Forecast every series in --series for the next --horizon steps after the origin."""
    from orderpulse.jobs.forecast import forecast_to_file

    summary = forecast_to_file(
        model,
        series,
        out,
        covariates,
        weather,
        static,
        horizon=horizon,
        level=level,
        origin=origin,
        explain=explain,
        on_bad_rows=on_bad_rows,
        engine=engine,
        scheduler=scheduler,
        hierarchy_levels=levels,
    )
    print_json_line(summary)


def backtest_cmd(
    series: SeriesOpt,
    covariates: CovOpt = None,
    weather: WeatherOpt = None,
    static: StaticOpt = None,
    freq: FreqOpt = "D",
    horizon: HorizonOpt = 42,
    n_windows: WindowsOpt = 3,
    step: StepOpt = None,
    model: Annotated[str, typer.Option("--model", help="lgbm, ensemble, seasonal_naive or ets")] = "lgbm",
    holidays: HolidaysOpt = None,
    refit: Annotated[bool, typer.Option("--refit/--no-refit", help="refit every window")] = False,
    out: Annotated[
        Path | None, typer.Option("--out", help="write the backtest predictions (CSV/Parquet)")
    ] = None,
    on_bad_rows: OnBadRows = "raise",
) -> None:
    """Rolling-origin backtest of a model recipe; prints metrics per window and overall."""
    from rich.table import Table

    from features.io import write_frame
    from orderpulse.jobs.forecast import load_forecast_tables
    from training.forecast.baselines import SeasonalNaive, StatsModelsETS
    from training.forecast.ensemble import EnsembleForecaster
    from training.forecast.forecaster import LGBMForecaster
    from training.forecast.job import run_backtest

    makers = {
        "lgbm": lambda: LGBMForecaster(freq=freq, horizon=horizon, holidays=holidays),
        "ensemble": lambda: EnsembleForecaster(freq=freq, horizon=horizon, holidays=holidays),
        "seasonal_naive": lambda: SeasonalNaive(freq),
        "ets": lambda: StatsModelsETS(freq, n_jobs=2),
    }
    if model not in makers:
        raise ValueError(f"Unknown --model {model!r}: choose one of {sorted(makers)}.")
    tables, _ = load_forecast_tables(series, covariates, weather, static, on_bad_rows)
    s = tables.pop("series")
    step = step or max(1, horizon // 2)
    with err.status(f"backtesting {model} on {n_windows} windows"):
        bt = run_backtest(
            makers[model],
            s,
            tables,
            n_windows=n_windows,
            step=step,
            horizon=horizon,
            refit=refit or model == "ets",
            pass_tables=model in ("lgbm", "ensemble"),
        )
    table = Table(title=f"{model}: backtest, {n_windows} windows x {horizon} steps")
    cols = [
        c
        for c in ("wape", "rmspe", "mase", "bias", "coverage_80", "coverage_95", "daily_total_wape")
        if c in bt.window_metrics.columns
    ]
    for c in ["window", "origin", *cols]:
        table.add_column(c, justify="right")
    for _, row in bt.window_metrics.iterrows():
        table.add_row(str(row["window"]), str(row["origin"])[:10], *[f"{row[c]:.4f}" for c in cols])
    table.add_row("all", "", *[f"{bt.overall.get(c, float('nan')):.4f}" for c in cols])
    err.print(table)
    if out is not None:
        write_frame(bt.predictions, out)
        err.print(f"[green]wrote[/] {out}")
    print_json_line({"model": model, "eval_key": bt.eval_key(), "metrics": bt.overall})


def promote(
    name: Annotated[str, typer.Argument(help="registered model, e.g. orderpulse-forecast")],
    version: Annotated[str, typer.Argument(help="version number or alias (e.g. challenger)")],
    to: Annotated[str, typer.Option("--to", help="alias to move")] = "champion",
) -> None:
    """Move an alias (default champion) to a version by hand, printing the comparison with the previous holder."""
    from training.registry import promote as do_promote

    comparison = do_promote(name, int(version) if version.isdigit() else version, to_alias=to)
    err.print(str(comparison))
    print_json_line({"name": name, "alias": to, "version": comparison.new_version})


def score(
    model: Annotated[
        str, typer.Option("--model", help="models:/<name>-anomaly@champion or another model URI")
    ],
    orders: Annotated[Path, typer.Option("--orders", help="orders table (history and the orders to score)")],
    start: Annotated[str, typer.Option("--from", help="score orders created at or after this time")],
    end: Annotated[str, typer.Option("--to", help="... and before this time")],
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            help="output CSV/Parquet (order_id, score, flagged, reasons), or a directory: partitioned Parquet",
        ),
    ],
    labels: Annotated[
        Path | None, typer.Option("--labels", help="labels known so far (point-in-time)")
    ] = None,
    reasons: Annotated[str, typer.Option("--reasons", help="flagged, all or none")] = "flagged",
    on_bad_rows: OnBadRows = "raise",
    engine: EngineOpt = "local",
    scheduler: SchedulerOpt = None,
) -> None:
    """Score every order created in [--from, --to) using only history known before each order."""
    from orderpulse.jobs.anomaly import score_orders

    summary = score_orders(
        model,
        orders,
        out,
        start,
        end,
        labels_path=labels,
        reasons=reasons,  # type: ignore[arg-type]
        on_bad_rows=on_bad_rows,
        engine=engine,
        scheduler=scheduler,
    )
    print_json_line(summary)


@tune_app.command("forecast")
def tune_forecast(
    series: SeriesOpt,
    covariates: CovOpt = None,
    weather: WeatherOpt = None,
    static: StaticOpt = None,
    freq: FreqOpt = "D",
    horizon: HorizonOpt = 42,
    trials: Annotated[int, typer.Option("--trials", min=1, help="Optuna trials")] = 20,
    n_windows: WindowsOpt = 2,
    step: StepOpt = None,
    name: NameOpt = "orderpulse",
    seed: Annotated[int, typer.Option("--seed")] = 0,
    on_bad_rows: OnBadRows = "raise",
) -> None:
    """Tune the forecaster on backtest WAPE and print the best parameters (use train forecast --tune to train)."""
    from orderpulse.console import RichProgress
    from orderpulse.jobs.forecast import load_forecast_tables
    from training.forecast.tuning import tune_forecaster
    from training.registry import registered_name
    from training.tracking import start_run

    tables, _ = load_forecast_tables(series, covariates, weather, static, on_bad_rows)
    s = tables.pop("series")
    with start_run(
        registered_name(name, "forecast"),
        run_name=f"tune h={horizon} {freq}",
        tags={"model": "forecast-tuning"},
    ) as run:
        params, config = tune_forecaster(
            s,
            tables,
            freq=freq,
            horizon=horizon,
            n_trials=trials,
            n_windows=n_windows,
            step=step,
            seed=seed,
            progress=RichProgress(),
        )
    print_json_line({"run_id": run.info.run_id, "params": params, "use_weather": config.use_weather})


@tune_app.command("anomaly")
def tune_anomaly(
    orders: Annotated[Path, typer.Option("--orders", help="orders table")],
    labels: Annotated[Path, typer.Option("--labels", help="labels table")],
    trials: Annotated[int, typer.Option("--trials", min=1, help="Optuna trials")] = 20,
    until: UntilOpt = None,
    name: NameOpt = "orderpulse",
    on_bad_rows: OnBadRows = "raise",
) -> None:
    """Tune the exception classifier on validation AUPRC, then train and register it (same as train --tune)."""
    from orderpulse.jobs.anomaly import train_anomaly as job

    print_json_line(job(orders, labels, until=until, name=name, tune=trials, on_bad_rows=on_bad_rows))
