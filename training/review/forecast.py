"""Forecast review tables for the planner notebooks and ``orderpulse report forecast``.

Accuracy by series, by segment and for the daily total, the worst series, interval coverage by horizon step,
what drives the coming weeks, champion vs challenger, and ``styled``/``show`` to display tables and figures. Everything is computed from frames the models produce (backtest predictions,
``LGBMForecaster.predict(explain=True)``, ``training.forecast.whatif.what_if``) with ``training.metrics``, so a notebook,
the HTML report and MLflow show the same numbers. Metrics are fractions (0.12 = 12%), as everywhere. Plots of
these tables are in ``training.review.forecast_plots``; the what-if scenario builders are in ``training.review.scenarios``.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from features.calendar import step_length
from features.ids import ids_as_known
from training.forecast.forecaster import LGBMForecaster
from training.forecast.job import run_backtest
from training.metrics import daily_total_error, evaluate
from training.pyfunc import ForecastPyfunc, load_snapshot_model
from training.registry import CHALLENGER, CHAMPION, ModelNotFoundError, ResolvedModel, resolve
from training.review.forecast_plots import series_order

__all__ = [
    "ForecastModel",
    "BACKTEST_ARTIFACT",
    "load_forecast_model",
    "backtest_predictions",
    "interval_levels",
    "accuracy_by_series",
    "segment_columns",
    "accuracy_by_segment",
    "total_accuracy",
    "daily_totals",
    "worst_series",
    "coverage_by_step",
    "forecast_origin",
    "next_forecast",
    "known_series_ids",
    "family_effects",
    "champion_vs_challenger",
    "styled",
    "show",
]

BACKTEST_ARTIFACT = "backtest/predictions.parquet"
"""Where ``training.forecast.job.train_forecast`` logs the backtest predictions of a run."""

TABLES = ("series", "covariates", "weather", "static")


@dataclass(frozen=True)
class ForecastModel:
    """A logged forecaster loaded for review: the estimator, the tables it was trained on, where it came from."""

    resolved: ResolvedModel
    model: LGBMForecaster
    tables: dict[str, pd.DataFrame | None]

    @property
    def series(self) -> pd.DataFrame:
        """The ``series`` history of the training snapshot."""
        return self.tables["series"]  # type: ignore[return-value]

    def describe(self) -> str:
        """One line a planner can read: which model, how far it forecasts, on what history."""
        r, m, s = self.resolved, self.model, self.series
        observed = s.loc[s["y"].notna(), "ds"]
        return (
            f"{r.label}: LightGBM forecaster, {m.horizon} steps of {m.freq}, "
            f"{s['series_id'].nunique()} series, history {observed.min():%Y-%m-%d} .. {observed.max():%Y-%m-%d}"
        )


def load_forecast_model(model_uri: str) -> ForecastModel:
    """Resolve ``model_uri`` (``models:/<name>@champion``, ``models:/<name>/3``, ``runs:/...``) and load it."""
    resolved = resolve(model_uri)
    wrapper = load_snapshot_model(resolved.uri, kind=ForecastPyfunc)
    tables = {name: wrapper.table(name) for name in TABLES}
    if tables["series"] is None:
        raise ValueError(
            f"{model_uri} was logged without its series snapshot; retrain it with train_forecast."
        )
    return ForecastModel(resolved, wrapper.model, tables)


def backtest_predictions(
    fm: ForecastModel, n_windows: int = 2, step: int | None = None
) -> tuple[pd.DataFrame, str]:
    """The model's backtest predictions and a sentence saying where they come from.

    Reuses the predictions logged with the model's run (``BACKTEST_ARTIFACT``) when there are any, which is
    cheap; otherwise backtests the model's recipe (same parameters, features and horizon) on ``n_windows``
    rolling origins of its training history, ``step`` steps apart (default half the horizon).
    """
    run_id = fm.resolved.run_id
    if run_id:
        try:
            with tempfile.TemporaryDirectory() as tmp:
                path = MlflowClient().download_artifacts(run_id, BACKTEST_ARTIFACT, tmp)
                preds = pd.read_parquet(path)
        except (MlflowException, OSError):
            preds = None
        if preds is not None:
            preds = preds.assign(series_id=preds["series_id"].astype("string"))
            return preds, f"the backtest logged with run {run_id}: {_describe_windows(preds)}"
    model = fm.model

    def recipe() -> LGBMForecaster:
        return LGBMForecaster(
            freq=model.freq,
            horizon=model.horizon,
            levels=model.levels,
            buckets=model.buckets,
            params=model.params,
            feature_config=model.feature_config,
            random_state=model.random_state,
        )

    tables = {k: fm.tables.get(k) for k in ("covariates", "weather", "static")}
    step = int(step or max(1, model.horizon // 2))
    bt = run_backtest(
        recipe, fm.series, tables, n_windows=n_windows, step=step, horizon=model.horizon, levels=model.levels
    )
    source = "no backtest was logged with this model" if run_id else "the model has no run"
    return (
        bt.predictions,
        f"a new backtest of the model's recipe ({source}): {_describe_windows(bt.predictions)}",
    )


def interval_levels(frame: pd.DataFrame) -> tuple[int, ...]:
    """Interval levels present in a forecast frame (both ``yhat_lo_<L>`` and ``yhat_hi_<L>``), ascending."""
    lo = {int(c.rsplit("_", 1)[1]) for c in frame.columns if c.startswith("yhat_lo_")}
    hi = {int(c.rsplit("_", 1)[1]) for c in frame.columns if c.startswith("yhat_hi_")}
    return tuple(sorted(lo & hi))


def accuracy_by_series(predictions: pd.DataFrame, levels: tuple[int, ...] | None = None) -> pd.DataFrame:
    """One row per series: ``series_id, n_scored, actual_total, forecast_total, wape, bias, rmspe,
    coverage_<L>``, over open rows with a known actual (``training.metrics.evaluate``)."""
    levels = interval_levels(predictions) if levels is None else tuple(levels)
    _, per = evaluate(predictions, levels=levels)
    totals = _scored(predictions).groupby("series_id", observed=True)[["y", "yhat"]].sum()
    per = per.merge(
        totals.rename(columns={"y": "actual_total", "yhat": "forecast_total"}),
        left_on="series_id",
        right_index=True,
        how="left",
    )
    cols = ["series_id", "n_scored", "actual_total", "forecast_total", "wape", "bias", "rmspe"]
    per = per.set_index(per["series_id"].astype(str), drop=False)
    per = per.loc[series_order(per.index)]
    return per[cols + [f"coverage_{lv}" for lv in levels]].reset_index(drop=True)


def segment_columns(static: pd.DataFrame, max_values: int = 12) -> list[str]:
    """Static attributes that make readable segments: text columns with 2..``max_values`` distinct values,
    leaving out a column that only renames an earlier one (``state_code`` next to ``region``)."""
    out: list[str] = []
    codes: list[np.ndarray] = []
    for col in static.columns:
        if col == "series_id" or pd.api.types.is_numeric_dtype(static[col]):
            continue
        if not 2 <= static[col].nunique(dropna=True) <= max_values:
            continue
        c = pd.factorize(static[col].astype("string").fillna("(missing)"))[0]
        if any(_same_partition(c, prev) for prev in codes):
            continue
        out.append(col)
        codes.append(c)
    return out


def accuracy_by_segment(
    predictions: pd.DataFrame,
    static: pd.DataFrame | None,
    columns: list[str] | tuple[str, ...] | None = None,
    levels: tuple[int, ...] | None = None,
) -> pd.DataFrame:
    """Accuracy per value of each static attribute (``store_type``, ``region``, ...).

    Columns: ``segment`` (the attribute), ``value``, ``n_series``, ``n_scored``, ``actual_total``, ``wape``,
    ``bias``, ``coverage_<L>``. ``columns`` default to ``segment_columns(static)``. Series without a value for
    an attribute form the segment ``"(missing)"``; series absent from ``static`` too.
    """
    if static is None:
        raise ValueError(
            "accuracy_by_segment needs the static table (series_id + attributes); the model has none."
        )
    columns = segment_columns(static) if columns is None else list(columns)
    unknown = [c for c in columns if c not in static.columns or c == "series_id"]
    if unknown:
        raise ValueError(
            f"Segment column(s) {unknown} are not attributes of the static table; its columns are "
            f"{[c for c in static.columns if c != 'series_id']}."
        )
    levels = interval_levels(predictions) if levels is None else tuple(levels)
    attrs = static[["series_id", *columns]].assign(series_id=static["series_id"].astype("string"))
    joined = predictions.assign(series_id=predictions["series_id"].astype("string")).merge(
        attrs, on="series_id", how="left"
    )
    parts = []
    for col in columns:
        value = joined[col].astype("string").fillna("(missing)")
        frame = joined.assign(_value=value)
        _, per = evaluate(frame, levels=levels, by="_value")
        scored = _scored(frame)
        extra = scored.groupby("_value").agg(n_series=("series_id", "nunique"), actual_total=("y", "sum"))
        per = per.merge(extra, left_on="_value", right_index=True, how="left")
        parts.append(per.rename(columns={"_value": "value"}).assign(segment=col))
    cols = ["segment", "value", "n_series", "n_scored", "actual_total", "wape", "bias"]
    cols += [f"coverage_{lv}" for lv in levels]
    if not parts:
        return pd.DataFrame(columns=cols)
    return pd.concat(parts, ignore_index=True)[cols]


def daily_totals(predictions: pd.DataFrame) -> pd.DataFrame:
    """Total across series per window and ``ds``: ``window, ds, actual, forecast, error`` (forecast - actual).

    Only open rows with a known actual enter both totals (as in ``training.metrics.daily_total_error``).
    """
    scored = _scored(predictions)
    keys = ["window", "ds"] if "window" in scored.columns else ["ds"]
    out = scored.groupby(keys)[["y", "yhat"]].sum().reset_index()
    out = out.rename(columns={"y": "actual", "yhat": "forecast"})
    out["error"] = out["forecast"] - out["actual"]
    return out


def total_accuracy(predictions: pd.DataFrame) -> pd.DataFrame:
    """The company-wide total, per backtest window and over all: ``window, origin, days, actual_total,
    forecast_total, bias, daily_total_wape`` (``daily_total_wape`` = WAPE of the daily total)."""
    frame = predictions if "window" in predictions.columns else predictions.assign(window=0)
    rows = []
    groups = [(str(w), g) for w, g in frame.groupby("window", sort=True)]
    if len(groups) > 1:
        groups.append(("all", frame))
    for label, g in groups:
        s = _scored(g)
        actual, forecast = float(s["y"].sum()), float(s["yhat"].sum())
        rows.append(
            {
                "window": label,
                "origin": g["origin"].min() if "origin" in g.columns and label != "all" else pd.NaT,
                "days": int(s["ds"].nunique()),
                "actual_total": actual,
                "forecast_total": forecast,
                "bias": (forecast - actual) / actual if actual else np.nan,
                "daily_total_wape": daily_total_error(g),
            }
        )
    return pd.DataFrame(rows)


def worst_series(per_series: pd.DataFrame, k: int = 5, metric: str = "wape") -> pd.DataFrame:
    """The ``k`` series with the highest ``metric`` (series without a value, e.g. no open day, are left out)."""
    if metric not in per_series.columns:
        raise ValueError(
            f"worst_series ranks by a column of the table; {metric!r} is not one of "
            f"{list(per_series.columns)}."
        )
    ranked = per_series.dropna(subset=[metric]).sort_values(metric, ascending=False, kind="stable")
    return ranked.head(int(k)).reset_index(drop=True)


def coverage_by_step(
    predictions: pd.DataFrame, levels: tuple[int, ...] | None = None, steps_per_group: int = 7
) -> pd.DataFrame:
    """Observed interval coverage and width per range of horizon steps (``1-7``, ``8-14``, ...).

    Columns: ``steps``, ``first_step``, ``n_scored``, ``coverage_<L>``, ``width_<L>`` per level. An 80%
    interval is well calibrated when ``coverage_80`` is close to 0.80 in every range.
    """
    if "step" not in predictions.columns:
        raise ValueError("coverage_by_step needs the 'step' column of backtest predictions (1 = first step).")
    if steps_per_group < 1:
        raise ValueError(f"steps_per_group must be >= 1. Got {steps_per_group!r} instead.")
    levels = interval_levels(predictions) if levels is None else tuple(levels)
    first = (predictions["step"].to_numpy() - 1) // steps_per_group * steps_per_group + 1
    frame = predictions.assign(first_step=first)
    _, per = evaluate(frame, levels=levels, by="first_step")
    per["steps"] = [f"{f}-{f + steps_per_group - 1}" for f in per["first_step"]]
    cols = ["steps", "first_step", "n_scored"]
    cols += [c for lv in levels for c in (f"coverage_{lv}", f"width_{lv}")]
    return per[cols].sort_values("first_step").reset_index(drop=True)


def forecast_origin(
    model: LGBMForecaster, series: pd.DataFrame, covariates: pd.DataFrame | None, horizon: int
) -> tuple[pd.Timestamp, str]:
    """Where the forward forecast starts, and a note when it cannot start at the latest actual.

    The origin is the latest ``ds`` with an observed ``y``. Covariates are known in advance and required for
    the whole horizon; when they stop earlier, the origin moves back to the latest date whose horizon they
    cover, and the note says so (and what to pass to forecast the real next weeks).
    """
    origin = pd.Timestamp(series.loc[series["y"].notna(), "ds"].max())
    cov_end = _plan_end(series, covariates)
    if cov_end is None:
        return origin, ""
    latest = cov_end - int(horizon) * step_length(model.freq)
    if latest >= origin:
        return origin, ""
    needed = origin + int(horizon) * step_length(model.freq)
    note = (
        f"The covariates (promo and holiday plan) end on {cov_end:%Y-%m-%d}, but a {horizon}-step forecast after "
        f"the latest actuals ({origin:%Y-%m-%d}) needs them through {needed:%Y-%m-%d}. Shown instead: the forecast "
        f"made at {latest:%Y-%m-%d}, the latest origin the stored plan covers. Pass the plan for the coming days "
        f"(a covariates table through {needed:%Y-%m-%d}) to see the real next weeks."
    )
    return latest, note


def next_forecast(
    fm: ForecastModel,
    horizon: int | None = None,
    level: int = 80,
    *,
    series_ids: list[str] | tuple[str, ...] | None = None,
    series: pd.DataFrame | None = None,
    covariates: pd.DataFrame | None = None,
    origin: Any = None,
    explain: bool = True,
) -> tuple[pd.DataFrame, list[str]]:
    """The forecast of the next ``horizon`` steps with its ``level``% interval and explanation, plus notes.

    ``series``/``covariates`` default to the model's snapshot; the origin to the latest actual over all series,
    never earlier: a forecast made before it would show the training period's fitted values as "the next weeks".
    When the covariates (the promo/holiday plan) stop before the horizon, only the steps they cover are forecast
    (none when they end at the latest actual: an empty frame), and a note says what to pass. ``series_ids`` restricts the forecast to those series (the model is global but its features are
    per series, so their forecasts are the same; explaining a large model costs milliseconds per row, so a
    notebook explains the series it shows). Closures (``open=0``) known after the origin are taken from
    ``series``; days without a known flag are forecast as open (counted in a note). Returns the ``predict``
    columns plus ``y``, the actual where already known.
    """
    model = fm.model
    horizon = int(model.horizon if horizon is None else horizon)
    series = fm.series if series is None else series
    covariates = fm.tables.get("covariates") if covariates is None else covariates
    notes: list[str] = []
    if origin is None:
        origin = pd.Timestamp(series.loc[series["y"].notna(), "ds"].max())
        horizon, note = _steps_the_plan_covers(model, series, covariates, origin, horizon)
        if note:
            notes.append(note)
        if horizon == 0:
            columns = ["series_id", "ds", "step", "yhat", f"yhat_lo_{level}", f"yhat_hi_{level}", "y"]
            return pd.DataFrame(columns=columns), notes
    origin = pd.Timestamp(origin)
    if series_ids:
        ids, read_as = known_series_ids(series, series_ids)
        if read_as:
            notes.append(f"series ids read as the model knows them (whole numbers without '.0'): {read_as}.")
        series = _only_series(series, ids)
    step = step_length(model.freq)
    dates = pd.DatetimeIndex([origin + i * step for i in range(1, horizon + 1)])
    ids = pd.Index(series["series_id"].astype("string").unique(), dtype="string")
    grid = pd.MultiIndex.from_product([ids, dates], names=["series_id", "ds"]).to_frame(index=False)
    later = series.loc[(series["ds"] > origin) & (series["ds"] <= dates[-1])]
    later = later.assign(series_id=later["series_id"].astype("string"))
    known_open = later[["series_id", "ds", "open"]] if "open" in later.columns else later[["series_id", "ds"]]
    future = grid.merge(known_open, on=["series_id", "ds"], how="left")
    if "open" not in future.columns:
        future["open"] = np.nan
    n_unknown = int(future["open"].isna().sum())
    if n_unknown:
        notes.append(
            f"{n_unknown:,} of {len(future):,} forecast rows have no known open/closed flag after "
            f"{origin:%Y-%m-%d}: they are forecast as open days. Pass a series table that lists the coming days "
            "with open=0 for known closures to forecast those as 0."
        )
    future["open"] = future["open"].fillna(1).astype("int8")
    pred = model.predict(
        horizon,
        future,
        levels=(int(level),),
        explain=explain,
        series=series,
        covariates=covariates,
        origin=origin,
    )
    actual = later[["series_id", "ds", "y"]]
    return pred.merge(actual, on=["series_id", "ds"], how="left"), notes


def family_effects(explained: pd.DataFrame, by: str = "series_id") -> pd.DataFrame:
    """What drives the forecast, per ``by`` group and for all rows: the average effect of each feature family.

    Rows: one per group plus ``"all"``; columns: ``forecast_mean`` (mean ``yhat``) and one column per family,
    the multiplicative effect ``exp(mean contribution) - 1`` (0.18 = the family lifts the forecast by 18%
    relative to the model's base level). Closed rows (forecast 0) are left out.
    """
    fams = [c.removeprefix("contrib_") for c in explained.columns if c.startswith("contrib_")]
    if not fams:
        raise ValueError(
            "family_effects needs contrib_<family> columns: forecast with predict(..., explain=True)."
        )
    rows = explained.loc[explained["yhat"] > 0]
    contrib = rows[[f"contrib_{f}" for f in fams]].set_axis(fams, axis=1)
    grouped = contrib.groupby(rows[by].astype("string").to_numpy()).mean()
    grouped.loc["all"] = contrib.mean()
    out = np.expm1(grouped)
    mean_yhat = rows.groupby(rows[by].astype("string").to_numpy())["yhat"].mean()
    mean_yhat.loc["all"] = rows["yhat"].mean()
    out.insert(0, "forecast_mean", mean_yhat)
    out.index.name = by
    return out.reset_index()


def champion_vs_challenger(
    name: str, metrics: tuple[str, ...] | None = None
) -> tuple[pd.DataFrame | None, str]:
    """Compare the ``champion`` and ``challenger`` versions of registered model ``name`` on their metric tags.

    Returns ``(table, note)``: the table has one row per metric (``metric, champion, challenger, difference``,
    difference = challenger - champion) or is None when there is nothing to compare; the note says which
    versions, whether they were evaluated on the same windows and what the registry decided.
    """
    try:
        champ = resolve(f"models:/{name}@{CHAMPION}")
    except ModelNotFoundError:
        return None, f"{name} has no champion version yet: nothing to compare."
    try:
        chall = resolve(f"models:/{name}@{CHALLENGER}")
    except ModelNotFoundError:
        return None, (
            f"No challenger exists for {name} (champion: v{champ.version}): nothing to compare. A newly "
            "trained version that does not beat the champion becomes the challenger."
        )
    a, b = _short_metrics(champ.metrics), _short_metrics(chall.metrics)
    keys = [k for k in (metrics or sorted(set(a) | set(b))) if k in a or k in b]
    table = pd.DataFrame(
        {
            "metric": keys,
            "champion": [a.get(k, np.nan) for k in keys],
            "challenger": [b.get(k, np.nan) for k in keys],
        }
    )
    table["difference"] = table["challenger"] - table["champion"]
    same = champ.tags.get("eval_key") is not None and champ.tags.get("eval_key") == chall.tags.get("eval_key")
    note = f"champion v{champ.version} vs challenger v{chall.version}: " + (
        "evaluated on the same backtest windows, so the metrics compare directly."
        if same
        else f"evaluated on different windows ({champ.tags.get('eval_key')!r} vs {chall.tags.get('eval_key')!r}): "
        "the metrics are not directly comparable."
    )
    decision = chall.tags.get("registry.decision")
    if decision:
        note += f" Registry decision for v{chall.version}: {decision}."
    return table, note


# ------------------------------------------------------------------------------------------ display
PERCENT_COLUMNS = frozenset(
    {
        "wape",
        "mape",
        "rmspe",
        "smape",
        "bias",
        "daily_total_wape",
        "delta_pct",
        "share_of_orders",
        "flag_rate",
        "precision",
        "recall",
        "score",
        "threshold",
        "mean_score",
        "observed_rate",
    }
)
"""Fraction columns ``styled`` shows in percent (plus every ``coverage_<L>``)."""


def styled(
    table: pd.DataFrame, caption: str, percent: list[str] | tuple[str, ...] = (), decimals: int = 1
) -> Any:
    """``table`` as a pandas ``Styler`` for a notebook or an HTML report: a caption, fractions in percent
    (``PERCENT_COLUMNS``, ``coverage_<L>`` and ``percent``), other numbers with thousands separators, dates as
    dates, no index."""
    pct = [c for c in table.columns if c in PERCENT_COLUMNS or str(c).startswith("coverage_") or c in percent]
    formats: dict[Any, Any] = {c: f"{{:.{decimals}%}}" for c in pct}
    for c in table.columns:
        if c in formats:
            continue
        if pd.api.types.is_float_dtype(table[c]):
            formats[c] = "{:,.0f}" if table[c].abs().max(skipna=True) >= 10 else f"{{:,.{decimals + 1}f}}"
        elif pd.api.types.is_integer_dtype(table[c]):
            formats[c] = "{:,}"
        elif pd.api.types.is_datetime64_any_dtype(table[c]):
            formats[c] = lambda v: "" if pd.isna(v) else f"{v:%Y-%m-%d %H:%M}".removesuffix(" 00:00")
    return table.style.format(formats, na_rep="-").set_caption(caption).hide(axis="index")


def show(fig: Any) -> None:
    """Display a matplotlib figure in a notebook (as a PNG) and close it, so it is shown exactly once."""
    import matplotlib.pyplot as plt
    from IPython.display import display

    display(fig)
    plt.close(fig)


# ------------------------------------------------------------------------------------------ helpers
def _plan_end(series: pd.DataFrame, covariates: pd.DataFrame | None) -> pd.Timestamp | None:
    """The last date the covariates cover for every series of ``series`` (None without covariates)."""
    if covariates is None or covariates.empty:
        return None
    cov = covariates
    if "series_id" in cov.columns:
        ids = series["series_id"].astype("string").unique()
        cov = cov.loc[cov["series_id"].astype("string").isin(ids)]
        return pd.Timestamp(cov.groupby("series_id", observed=True)["ds"].max().min())
    return pd.Timestamp(cov["ds"].max())


def _steps_the_plan_covers(
    model: Any, series: pd.DataFrame, covariates: pd.DataFrame | None, origin: pd.Timestamp, horizon: int
) -> tuple[int, str]:
    """How many of the ``horizon`` steps after ``origin`` the covariates cover, and a note when not all."""
    cov_end = _plan_end(series, covariates)
    if cov_end is None:
        return horizon, ""
    step = step_length(model.freq)
    covered = int(max(0, min(horizon, (cov_end - origin) // step)))
    if covered == horizon:
        return horizon, ""
    needed = origin + horizon * step
    head = (
        f"The covariates (promo and holiday plan) end on {cov_end:%Y-%m-%d}, but a {horizon}-step forecast after "
        f"the latest actuals ({origin:%Y-%m-%d}) needs them through {needed:%Y-%m-%d}. "
    )
    tail = f"Pass the plan for the coming days (a covariates table through {needed:%Y-%m-%d}) to see the next weeks."
    if covered == 0:
        return 0, head + (
            "No forward forecast is shown (a forecast made earlier would cover the training period: fitted "
            "values, not the next weeks). " + tail
        )
    return covered, head + f"Shown: the {covered} steps the plan covers. " + tail


def known_series_ids(
    series: pd.DataFrame, series_ids: list[str] | tuple[str, ...]
) -> tuple[list[str], dict[str, str]]:
    """``series_ids`` as ``series`` (the model's history) names them: ``"7.0"`` is ``"7"`` when the history has
    ``"7"`` (``features.ids.ids_as_known``), and ``{as sent: as read}``; other ids stay as they are."""
    known = set(series["series_id"].astype("string").dropna().unique())
    return ids_as_known([str(s) for s in series_ids], known)


def _scored(frame: pd.DataFrame) -> pd.DataFrame:
    """Open rows with a known actual: the rows every metric scores."""
    ok = frame["y"].notna()
    if "open" in frame.columns:
        ok &= frame["open"] == 1
    return frame.loc[ok]


def _only_series(series: pd.DataFrame, series_ids: list[str] | tuple[str, ...]) -> pd.DataFrame:
    ids = [str(s) for s in series_ids]
    sid = series["series_id"].astype("string")
    unknown = sorted(set(ids) - set(sid.unique()))
    if unknown:
        known = sorted(sid.unique())
        raise ValueError(
            f"Series {unknown} are not in the model's history; it knows {len(known)} series, e.g. {known[:10]}."
        )
    return series.loc[sid.isin(ids).to_numpy()]


def _same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    """True when two labelings group the rows identically (a one-to-one renaming)."""
    pairs = len(set(zip(a.tolist(), b.tolist(), strict=True)))
    return pairs == len(np.unique(a)) == len(np.unique(b))


def _describe_windows(preds: pd.DataFrame) -> str:
    if "window" not in preds.columns or "origin" not in preds.columns:
        return f"{len(preds):,} forecast rows"
    origins = sorted(pd.to_datetime(preds["origin"].unique()))
    return (
        f"{len(origins)} window(s) of {int(preds['step'].max())} steps, origins "
        f"{', '.join(f'{o:%Y-%m-%d}' for o in origins)}, {preds['series_id'].nunique()} series"
    )


def _short_metrics(metrics: dict[str, float]) -> dict[str, float]:
    return {k.removeprefix("metric."): v for k, v in metrics.items()}
