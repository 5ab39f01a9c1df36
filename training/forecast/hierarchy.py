"""Coherent forecasts for every level of a hierarchy (series, region, ..., total), reconciled by backtest.

How it works
------------
1. **Base forecasts per level.** The series keep their own forecaster. The aggregates (``region=Bayern``,
   ``total``: see ``features.hierarchy``) get a second, small global model with the series model's recipe,
   trained on their own series, on the aggregates' sums (default). With ``aggregate_target="per_open"`` it
   learns the aggregate *per open member* (``y / n_open``, with the members' mean covariates and
   ``open_share``) and its forecast is multiplied back by the number of open members, known in advance: a
   Sunday when 3% of the stores open, a regional holiday or stores missing from the data are then not level
   shifts the model must learn from a few aggregate series (opt-in: see ``fit_hierarchy``). Aggregates are smoother than their members, so their own model usually forecasts them
   better than the sum of the series forecasts.
2. **Reconciliation** with Nixtla ``hierarchicalforecast``: ``bottom_up`` (the sum of the series forecasts) and
   the MinTrace family (``ols``, ``wls_struct``, ``wls_var``, ``mint_shrink``: the covariance of the base
   forecasts' backtest errors, shrunk). Every method returns series forecasts ``b`` and all levels as
   ``S @ b``, so stores sum to their region and regions to the total at every step. Afterwards closed series
   (``open = 0``) are set to 0 and negative values to 0 (counted) and the aggregates are summed again from the
   series, so the output stays coherent to float precision.
3. **Choice by backtest.** Both models are backtested on the same rolling-origin windows, equally stale
   (``make_backtest_model``); with ``bias_correction=True`` the base forecasts are first turned from medians
   into means (``reconcile.smearing_factors``); each method reconciles every window (the MinTrace covariance comes from
   the base forecasts' errors on the windows sharing no day with it) and is scored by WAPE per level and
   window. ``reconcile.choose_method`` keeps ``bottom_up`` unless a method beats it at every aggregate level in
   most windows by more than the windows' spread; every method's per-level WAPE is kept in ``metrics_`` (per
   window in ``window_metrics_``; logged as MLflow metrics by the training job).
4. **Intervals per level**, calibrated on that level's own reconciled backtest residuals (split conformal in
   log space, like ``LGBMForecaster``): ``expm1(log1p(yhat) + q)`` with the finite-sample corrected quantiles
   of ``log1p(y) - log1p(yhat)``. An aggregate's interval is therefore not the sum of its members' intervals.
   ``coverage_`` reports, per level, the coverage of window ``w`` by quantiles learned on the other windows.

Explanations per aggregate (``predict`` with series explanations): for a feature family with log-space
contribution ``c_i`` in series ``i``, the aggregate's effect is ``sum(yhat_i) / sum(yhat_i * exp(-c_i)) - 1``:
how much larger the aggregate is with that family's effect than without it, member effects weighted by their
forecasts (for a single series this is the series' own ``exp(c) - 1``).

Scale: the MinTrace methods are dense (``n_series + n_aggregates`` squared); fine for thousands of series.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone

from features.hierarchy import SERIES_LEVEL, Hierarchy, aggregate_tables, parse_levels, with_forecast_days
from features.holidays import closure_features
from training.forecast.backtest import backtest
from training.forecast.forecaster import LGBMForecaster
from training.forecast.reconcile import DEFAULT_METHODS, RECONCILERS, HierarchicalReconciler, level_order
from training.metrics import wape

__all__ = [
    "HierarchicalReconciler",
    "plan_hierarchy",
    "train_hierarchy",
    "hierarchy_output",
    "check_levels",
    "RECONCILERS",
    "DEFAULT_METHODS",
    "AGGREGATE_TARGETS",
    "fit_hierarchy",
    "forecast_hierarchy",
    "level_order",
]

log = logging.getLogger(__name__)

AGGREGATE_TARGETS = ("per_open", "sum")


def fit_hierarchy(
    hierarchy: Hierarchy,
    series: pd.DataFrame,
    tables: dict[str, pd.DataFrame | None],
    series_backtest: pd.DataFrame,
    make_aggregate_model: Callable[[], Any],
    *,
    n_windows: int,
    step: int,
    horizon: int,
    levels: tuple[int, ...] = (80, 95),
    methods: Sequence[str] = DEFAULT_METHODS,
    method: str | None = None,
    aggregate_target: str = "sum",
    aggregate_closures: bool = False,
    make_backtest_model: Callable[[], Any] | None = None,
    bias_correction: bool = False,
) -> tuple[HierarchicalReconciler, dict[str, float]]:
    """Backtest the aggregate model on the windows of ``series_backtest``, choose and calibrate the
    reconciliation, then fit the aggregate model on all data. Returns ``(reconciler, counts)``; the fitted
    aggregate model is ``reconciler.aggregate_model_``.

    ``aggregate_target``: what the aggregate model learns. ``"sum"`` (default): the aggregate's sum itself;
    ``"per_open"``: the aggregate per open member (``y / n_open``), its forecast multiplied back by the known
    number of open members, so days when most members are closed (Sundays, regional holidays) or absent are not
    level shifts for the model. ``per_open`` wins on the backtest windows of full Rossmann but lost on the
    held-out 42 days after MinTrace reconciliation (state WAPE 0.058 vs 0.044, store WAPE 0.091 vs 0.080;
    ``benchmarks/forecast_hierarchy_rossmann.py --aggregate-target``), so it is opt-in.

    ``aggregate_closures``: also give the aggregate model ``features.holidays.closure_features`` of its members'
    open share (the closed share of the neighbouring days: the day before a holiday, the day after Easter
    Monday; from ``open`` only). It improves the aggregate model alone and the reconciled backtest windows of
    full Rossmann, but not the held-out 42 days after ``mint_shrink`` (total daily MAPE 0.047 vs 0.043;
    docs/accuracy/hierarchy.md, "Why the total's daily MAPE is high"),
    so it is opt-in too.

    ``make_backtest_model``: the aggregate model for the backtest windows (default ``make_aggregate_model``).
    Give it the staleness of the series backtest's model, so that the two base models are compared on equal
    terms: when the series model of each window was fitted ``horizon`` steps before the origin (split-conformal
    calibration keeps those boosters), an aggregate model fitted up to the origin looks better than it will be
    next to the final series model, and the reconciliation over-trusts it.

    ``bias_correction``: base forecasts times ``reconcile.smearing_factors`` (medians to means) before
    reconciling; opt-in (see ``HierarchicalReconciler``)."""
    if aggregate_target not in AGGREGATE_TARGETS:
        raise ValueError(
            f"aggregate_target must be one of {AGGREGATE_TARGETS}. Got {aggregate_target!r} instead."
        )
    agg_series, agg_tables, counts, n_open = _aggregate_inputs(
        hierarchy, series, tables, aggregate_target, closures=aggregate_closures
    )
    bt = backtest(
        make_backtest_model or make_aggregate_model,
        agg_series,
        n_windows=n_windows,
        step=step,
        horizon=horizon,
        refit=False,
        levels=(),
        fit_kwargs={k: v for k, v in agg_tables.items() if v is not None},
    )
    cols = ["window", "step", "series_id", "ds", "y", "open", "yhat"]
    agg_bt = _rescale(bt.predictions[cols], n_open, ("y", "yhat"))
    base = pd.concat([series_backtest[cols], agg_bt], ignore_index=True)
    rec = HierarchicalReconciler(
        methods=methods, method=method, levels=levels, bias_correction=bias_correction
    ).fit(hierarchy, base)
    rec.aggregate_target_ = aggregate_target
    rec.aggregate_closures_ = aggregate_closures
    rec.aggregate_model_ = make_aggregate_model().fit(agg_series, **agg_tables)
    counts = {**counts, **hierarchy.describe(), "aggregate_backtest_wape": wape(agg_bt["y"], agg_bt["yhat"])}
    return rec, counts


def forecast_hierarchy(
    reconciler: HierarchicalReconciler,
    series_pred: pd.DataFrame,
    series: pd.DataFrame,
    tables: dict[str, pd.DataFrame | None],
    *,
    horizon: int | None = None,
    origin: Any = None,
    levels: Sequence[int] = (80,),
    method: str | None = None,
    sums: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Every level's coherent forecast from the series forecaster's ``series_pred`` (same origin/horizon) and
    the aggregate model, which reads the aggregates of ``series`` (history + known future ``open``). Forecast
    days that ``series`` does not list take ``open`` from ``series_pred`` (a forecast of exactly 0 is closed,
    the forecaster's convention), so the aggregates know how many members are open on every forecast day.
    ``sums`` (``features.hierarchy.member_sums`` of that series table, forecast days included) replaces
    ``series``: the dask engine computes them partition by partition."""
    reconciler._check_fitted()
    target = getattr(reconciler, "aggregate_target_", "sum")
    closures = getattr(reconciler, "aggregate_closures_", False)  # False for models saved before the option
    if sums is None:
        series = with_forecast_days(series, series_pred)
    agg_series, agg_tables, _, n_open = _aggregate_inputs(
        reconciler.hierarchy_, series, tables, target, sums=sums, closures=closures
    )
    agg_pred = reconciler.aggregate_model_.predict(
        horizon, levels=(), series=agg_series, origin=origin, **agg_tables
    )
    agg_pred = _rescale(agg_pred, n_open, ("yhat",))
    out = reconciler.predict(series_pred, agg_pred, levels, method=method)
    order = {lv: i for i, lv in enumerate(level_order(reconciler.hierarchy_.levels))}
    rank = out["level"].map(order)
    return out.assign(_r=rank).sort_values(["_r", "series_id", "ds"], kind="stable").drop(columns="_r")


def plan_hierarchy(levels: str | Sequence[str] | None, series: pd.DataFrame, static: pd.DataFrame | None):
    """The ``Hierarchy`` for ``--levels`` (``None`` without levels), built before any training so that a
    missing or empty level column fails fast."""
    if not parse_levels(levels):
        return None
    return Hierarchy.from_static(static, series["series_id"].unique(), levels)


def train_hierarchy(
    model: Any,
    hierarchy: Hierarchy,
    series: pd.DataFrame,
    tables: dict[str, pd.DataFrame | None],
    series_backtest: pd.DataFrame,
    *,
    n_windows: int,
    step: int,
    horizon: int,
    methods: Sequence[str] = DEFAULT_METHODS,
    backtest_calibrate: bool | str = False,
) -> dict[str, float]:
    """Fit what ``hierarchy_output`` needs and attach it to the fitted series forecaster as ``model.hierarchy_``
    (so it is saved with the model). The aggregate model is an ``LGBMForecaster`` with ``model``'s recipe.
    ``backtest_calibrate``: the ``calibrate`` of the series backtest's models; the aggregate model's backtest
    uses the same, so both base models are equally stale there (``True``/``"split"`` keeps boosters fitted
    ``horizon`` steps before each origin), while the final aggregate model, like ``model``, is fitted on all
    data.
    Returns MLflow-ready metrics: every method's WAPE per level, the chosen method's coverage per level
    (``hierarchy.<level>.coverage_<L>``) and counts (``hierarchy.aggregates_<level>``, ...)."""

    def make_aggregate_model(calibrate: bool | str = False) -> LGBMForecaster:
        return clone(model).set_params(levels=(), calibrate=calibrate, engine="local", scheduler=None)

    rec, counts = fit_hierarchy(
        hierarchy,
        series,
        tables,
        series_backtest,
        make_aggregate_model,
        n_windows=n_windows,
        step=step,
        horizon=horizon,
        levels=tuple(model.levels),
        methods=methods,
        make_backtest_model=lambda: make_aggregate_model(backtest_calibrate),
    )
    model.hierarchy_ = rec
    log.info("hierarchy %s: reconciliation %s chosen by backtest", hierarchy.levels, rec.method_)
    return rec.metrics_flat() | {f"hierarchy.{k}": float(v) for k, v in counts.items()}


def check_levels(model: Any, levels: str | Sequence[str]) -> HierarchicalReconciler:
    """The model's fitted reconciler, after checking it was trained with every level in ``levels``."""
    rec: HierarchicalReconciler | None = getattr(model, "hierarchy_", None)
    wanted = parse_levels(levels)
    if rec is None:
        raise ValueError(
            "This model was trained without hierarchy levels, so it cannot forecast aggregates: retrain it "
            f"with `orderpulse train forecast ... --levels {','.join(wanted)}`."
        )
    unknown = [lv for lv in wanted if lv not in rec.hierarchy_.levels]
    if unknown:
        raise ValueError(
            f"Level(s) {unknown} were not trained; this model knows {list(rec.hierarchy_.levels)}. Ask for "
            "those, or retrain with the levels you need."
        )
    return rec


def hierarchy_output(
    model: Any,
    levels: str | Sequence[str],
    series_pred: pd.DataFrame,
    series: pd.DataFrame | None,
    tables: dict[str, pd.DataFrame | None],
    *,
    level: int,
    horizon: int | None = None,
    origin: Any = None,
    sums: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """What ``orderpulse forecast --levels`` writes: ``level, series_id, ds, yhat, yhat_lo, yhat_hi`` for the
    series and every aggregate of the requested levels (+ ``effect_<family>`` when ``series_pred`` has
    ``contrib_<family>`` columns, i.e. was predicted with ``explain=True``). With ``sums`` (see
    ``forecast_hierarchy``) ``series`` may be ``None`` and ``origin`` must be given."""
    rec = check_levels(model, levels)
    wanted = parse_levels(levels)
    if origin is None:
        origin = series.loc[series["y"].notna(), "ds"].max()
    out = forecast_hierarchy(
        rec, series_pred, series, tables, horizon=horizon, origin=origin, levels=(level,), sums=sums
    )
    out = out.loc[out["level"].isin([SERIES_LEVEL, *wanted])]
    out = out.rename(columns={f"yhat_lo_{level}": "yhat_lo", f"yhat_hi_{level}": "yhat_hi"})
    keep = ["level", "series_id", "ds", "yhat", "yhat_lo", "yhat_hi"]
    return out[keep + [c for c in out.columns if c.startswith("effect_")]].reset_index(drop=True)


# ---------------------------------------------------------------------------------------------------------


def _aggregate_inputs(
    hierarchy: Hierarchy,
    series: pd.DataFrame | None,
    tables: dict[str, pd.DataFrame | None],
    target: str = "sum",
    sums: pd.DataFrame | None = None,
    closures: bool = False,
) -> tuple[pd.DataFrame, dict[str, pd.DataFrame | None], dict[str, float], pd.DataFrame | None]:
    """The aggregate model's inputs and, for ``target="per_open"``, the ``series_id, ds, n_open`` factors its
    forecasts are multiplied by (``None`` for ``"sum"``)."""
    agg_series, cov, static, counts = aggregate_tables(
        hierarchy, series, tables.get("covariates"), tables.get("static"), sums=sums
    )
    n_open = None
    if target == "per_open":
        n_open = agg_series[["series_id", "ds", "n_open"]]
        some_open = agg_series["n_open"] > 0
        per_open = agg_series["y"] / agg_series["n_open"].where(some_open)
        agg_series = agg_series.assign(y=per_open.where(some_open, agg_series["y"]))
    agg_series = agg_series.drop(columns="n_open")
    if closures:
        cov = _with_closures(cov)
    return agg_series, {"covariates": cov, "weather": tables.get("weather"), "static": static}, counts, n_open


def _with_closures(cov: pd.DataFrame) -> pd.DataFrame:
    """The aggregates' covariates plus ``features.holidays.closure_features`` of their ``open_share`` (closed
    shares just before / after each day: the day before a holiday, the day after Easter Monday)."""
    own = cov.loc[cov["series_id"].notna() & cov["open_share"].notna(), ["series_id", "ds", "open_share"]]
    days = np.sort(own["ds"].unique())
    if len(days) < 2:
        return cov
    step = pd.Timedelta(np.diff(days).min())
    feats = closure_features(own, step)
    return cov.merge(pd.concat([own[["series_id", "ds"]], feats], axis=1), on=["series_id", "ds"], how="left")


def _rescale(frame: pd.DataFrame, n_open: pd.DataFrame | None, columns: Sequence[str]) -> pd.DataFrame:
    """Per-open-member values back to aggregate sums (``columns`` times ``n_open`` of the row's aggregate/day)."""
    if n_open is None:
        return frame
    factor = frame[["series_id", "ds"]].merge(
        n_open.astype({"series_id": "string"}), on=["series_id", "ds"], how="left"
    )["n_open"]
    out = frame.copy()
    for c in columns:
        out[c] = out[c].to_numpy() * factor.fillna(0).to_numpy()
    return out
