"""Rolling-origin backtests of any forecaster that follows the small ``Model`` protocol.

The Model protocol
------------------
A forecaster needs two methods (``training.forecast.baselines`` and the LightGBM forecaster implement them)::

    model.fit(frame, **fit_kwargs)                  # frame: long series_id, ds, y, open, covariates...
    model.predict(horizon, future)  -> DataFrame    # series_id, ds, yhat (+ yhat_lo_<L>, yhat_hi_<L>)

``future`` holds exactly the rows to forecast: the frame's rows in the window, with every column except ``y``
(and those named in ``drop_from_future``), i.e. the covariates known in advance and ``open``. When intervals
are requested (``levels`` not empty) ``predict`` is called as ``predict(horizon, future, levels=levels)``.
With ``refit=False`` the model is fitted on the first window only and must also have ``update(frame)``, which
takes the newer history without re-estimating anything.

Leakage rule: for a window with origin ``t`` the model is fitted (or updated) on the rows with ``ds <= t``
only, and ``future`` carries no ``y``. ``fit_kwargs`` are passed unchanged to every ``fit``: put only
information known in advance there (covariate tables, static attributes).

Windows
-------
``rolling_origin_windows`` counts periods in the sorted distinct ``ds`` values of the data (positions, not
calendar offsets): the last window ends at the last ``ds`` (or at the last one ``<= until``), each earlier window
ends ``step`` positions before the next, and every window covers ``horizon`` positions after its origin.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import pandas as pd

from training.metrics import evaluate
from training.progress import Progress
from training.progress import resolve as resolve_progress

__all__ = [
    "Model",
    "Window",
    "BacktestResult",
    "rolling_origin_windows",
    "windows_that_fit",
    "newer_windows",
    "backtest",
]


class Model(Protocol):
    """What ``backtest`` needs from a forecaster (see the module docstring)."""

    def fit(self, frame: pd.DataFrame) -> Any: ...

    def predict(self, horizon: int, future: pd.DataFrame) -> pd.DataFrame: ...


@dataclass(frozen=True)
class Window:
    """One backtest window: train on ``ds <= origin``, forecast ``start <= ds <= end``."""

    origin: pd.Timestamp
    start: pd.Timestamp
    end: pd.Timestamp


@dataclass
class BacktestResult:
    """Everything a backtest produced.

    predictions : one row per forecast row: ``window`` (0 = earliest), ``origin``, ``step`` (1..horizon),
        ``series_id``, ``ds``, ``y``, ``open``, ``yhat`` and interval columns.
    window_metrics : one row per window: ``window, origin, start, end``, the metrics of ``training.metrics.evaluate``
        (MASE/RMSSE scaled by that window's training data), ``fit_seconds``, ``predict_seconds`` and the counts
        ``n_rows_new_series_skipped`` (future rows of series absent before the origin: not forecast) and
        ``n_extra_predictions_ignored`` (rows the model returned that were not asked for).
    overall : ``evaluate`` on all windows' predictions pooled; ``mase``/``rmsse`` are the mean over windows.
    per_series : ``evaluate``'s per-series table on the pooled predictions (without MASE/RMSSE).
    """

    predictions: pd.DataFrame
    window_metrics: pd.DataFrame
    overall: dict[str, float]
    per_series: pd.DataFrame
    windows: list[Window] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)

    def eval_key(self) -> str:
        """Names the evaluation (windows and horizon) for ``training.registry``: metrics of two models are
        comparable only when their keys are equal. Add a data fingerprint to it when the data may differ."""
        w = self.windows
        if not w:
            return "backtest:empty"
        p = self.params
        return (
            f"backtest:windows={len(w)}:step={p.get('step')}:horizon={p.get('horizon')}:"
            f"origins={w[0].origin.isoformat()}..{w[-1].origin.isoformat()}"
        )


def rolling_origin_windows(
    data: pd.DataFrame | pd.Series | pd.Index | Sequence[Any],
    n_windows: int,
    step: int,
    horizon: int,
    until: Any = None,
) -> list[Window]:
    """Rolling-origin windows over the distinct ``ds`` of ``data`` (a frame with ``ds`` or the ds values).

    Window ``i`` (0 = earliest) ends ``(n_windows - 1 - i) * step`` positions before the last ``ds`` (or the last
    ``ds <= until``), spans ``horizon`` positions and has its origin right before its start.
    """
    for name, value in (("n_windows", n_windows), ("step", step), ("horizon", horizon)):
        if not isinstance(value, int | np.integer) or value < 1:
            raise ValueError(f"The {name!r} parameter must be a positive int. Got {value!r} instead.")
    ds = data["ds"] if isinstance(data, pd.DataFrame) else data
    index = pd.DatetimeIndex(pd.unique(pd.to_datetime(pd.Series(np.asarray(ds))).dropna())).sort_values()
    if until is not None:
        index = index[index <= pd.Timestamp(until)]
    last = len(index) - 1
    first_origin = last - (n_windows - 1) * step - horizon
    if first_origin < 0:
        needed = (n_windows - 1) * step + horizon + 1
        raise ValueError(
            f"{n_windows} windows of horizon {horizon} every {step} periods need at least {needed} distinct ds "
            f"values{'' if until is None else f' up to {until}'}; the data has {len(index)}. "
            "Use fewer windows, a shorter horizon or step, or more history."
        )
    windows = []
    for i in range(n_windows):
        end = last - (n_windows - 1 - i) * step
        windows.append(Window(origin=index[end - horizon], start=index[end - horizon + 1], end=index[end]))
    return windows


def windows_that_fit(data: pd.DataFrame, wanted: int, step: int, horizon: int, history: int) -> int:
    """The most windows, up to ``wanted`` (and at least 1), that ``rolling_origin_windows`` can place on ``data``
    with ``history`` distinct ``ds`` up to and including the first origin (what the model needs to fit there)."""
    n_ds = int(pd.to_datetime(data["ds"]).nunique())
    fit = (n_ds - horizon - history) // max(1, step) + 1
    return int(max(1, min(wanted, fit)))


def newer_windows(predictions: pd.DataFrame) -> pd.Series:
    """The rows of the newer half of a backtest's windows, rounded up (4 of 7, 3 of 5 or 4, both of 2): what
    intervals are calibrated on, since residual spread is seasonal. On full Rossmann with 7 windows the winter
    windows widened the store model's 80% interval to a held-out coverage of 0.85-0.87; the newer half gave
    0.80-0.83."""
    window = predictions["window"]
    return window >= window.max() // 2


def backtest(
    make_model: Callable[[], Model],
    frame: pd.DataFrame,
    n_windows: int,
    step: int,
    horizon: int,
    refit: bool = True,
    levels: Sequence[int] = (80, 95),
    fit_kwargs: dict[str, Any] | None = None,
    until: Any = None,
    season: int | None = None,
    drop_from_future: Sequence[str] = (),
    progress: Progress | None = None,
) -> BacktestResult:
    """Fit on ``ds <= origin`` and forecast the next ``horizon`` periods, for each rolling-origin window.

    Parameters
    ----------
    make_model : builds a fresh, unfitted model (called once per window, or once with ``refit=False``).
    frame : long ``series_id, ds, y`` (+ ``open``, covariates); every column but ``y`` and ``drop_from_future``
        is treated as known in advance and passed in ``future``.
    n_windows, step, horizon, until : see ``rolling_origin_windows``.
    refit : refit every window (default) or fit once and ``update`` the model's history afterwards.
    levels : interval levels to request and score (``()``: point forecasts only).
    fit_kwargs : extra keyword arguments for every ``fit`` call (known-in-advance tables only).
    season : seasonal period for MASE/RMSSE (default from the data's step).
    drop_from_future : columns observed only after the fact (e.g. ``customers``) to keep out of ``future``.
    progress : where the windows are counted (default ``training.progress.current()``).
    """
    for col in ("series_id", "ds", "y"):
        if col not in frame.columns:
            raise ValueError(f"backtest needs column {col!r}; the frame has {list(frame.columns)[:15]}.")
    levels = tuple(int(lv) for lv in levels)
    frame = frame.assign(series_id=frame["series_id"].astype("string"), ds=pd.to_datetime(frame["ds"]))
    if "open" not in frame.columns:
        frame = frame.assign(open=np.int8(1))
    windows = rolling_origin_windows(frame, n_windows, step, horizon, until=until)
    positions = pd.Series(np.arange(frame["ds"].nunique()), index=np.sort(frame["ds"].unique()))
    hidden = ["y", *[c for c in drop_from_future if c in frame.columns]]
    model = None
    preds, rows = [], []
    with resolve_progress(progress).task("backtest windows", total=len(windows)) as task:
        for i, w in enumerate(windows):
            train = frame.loc[frame["ds"] <= w.origin]
            target = frame.loc[(frame["ds"] >= w.start) & (frame["ds"] <= w.end)]
            known = target["series_id"].isin(train["series_id"].unique())
            target = target.loc[known]
            future = target.drop(columns=hidden).reset_index(drop=True)

            t0 = time.perf_counter()
            if refit or model is None:
                model = make_model()
                model.fit(train, **(fit_kwargs or {}))
            elif hasattr(model, "update"):
                model.update(train)
            else:
                raise TypeError(
                    f"refit=False needs a model with update(frame) to take newer history; {type(model).__name__} has "
                    "none. Use refit=True or add update()."
                )
            t1 = time.perf_counter()
            pred = model.predict(horizon, future, levels=levels) if levels else model.predict(horizon, future)
            t2 = time.perf_counter()

            scored, n_extra = _join_actuals(pred, target, type(model).__name__, w)
            scored.insert(0, "window", i)
            scored.insert(1, "origin", w.origin)
            scored.insert(
                2, "step", positions.reindex(scored["ds"].to_numpy()).to_numpy() - positions[w.origin]
            )
            preds.append(scored)

            metrics, _ = evaluate(scored, train=train, levels=levels, season=season)
            rows.append(
                {
                    "window": i,
                    "origin": w.origin,
                    "start": w.start,
                    "end": w.end,
                    **metrics,
                    "fit_seconds": t1 - t0,
                    "predict_seconds": t2 - t1,
                    "n_rows_new_series_skipped": int((~known).sum()),
                    "n_extra_predictions_ignored": n_extra,
                }
            )
            task.advance()

    predictions = pd.concat(preds, ignore_index=True)
    window_metrics = pd.DataFrame(rows)
    overall, per_series = evaluate(predictions, train=None, levels=levels)
    for name in ("mase", "rmsse"):
        if name in window_metrics.columns:
            overall[name] = float(window_metrics[name].mean())
    overall["n_windows"] = float(len(windows))
    overall["n_rows_new_series_skipped"] = float(window_metrics["n_rows_new_series_skipped"].sum())
    params = {"n_windows": n_windows, "step": step, "horizon": horizon, "refit": refit, "levels": levels}
    return BacktestResult(predictions, window_metrics, overall, per_series, windows, params)


def _join_actuals(
    pred: pd.DataFrame, target: pd.DataFrame, model_name: str, w: Window
) -> tuple[pd.DataFrame, int]:
    """Attach ``y``/``open`` to the model's forecasts; every asked row must be forecast exactly once."""
    need = [c for c in ("series_id", "ds", "yhat") if c not in pred.columns]
    if need:
        raise ValueError(
            f"{model_name}.predict returned no column(s) {need}; it must return series_id, ds, yhat."
        )
    clashing = [c for c in ("y", "open", "step", "window", "origin") if c in pred.columns]
    pred = pred.drop(columns=clashing).assign(
        series_id=pred["series_id"].astype("string"), ds=pd.to_datetime(pred["ds"])
    )
    dup = pred.duplicated(["series_id", "ds"])
    if dup.any():
        raise ValueError(
            f"{model_name}.predict returned {int(dup.sum())} duplicate (series_id, ds) rows for the "
            f"window starting {w.start}; return one forecast per row of future."
        )
    actual = target[["series_id", "ds", "y", "open"]]
    merged = actual.merge(pred, on=["series_id", "ds"], how="left", indicator=True)
    missing = merged["_merge"] == "left_only"
    if missing.any():
        ex = merged.loc[missing, ["series_id", "ds"]].head(3).to_dict("records")
        raise ValueError(
            f"{model_name}.predict left {int(missing.sum())} row(s) of future without a forecast for the window "
            f"{w.start}..{w.end}, e.g. {ex}; it must forecast every row it is given."
        )
    n_extra = len(pred) - int((merged["_merge"] == "both").sum())
    return merged.drop(columns="_merge").reset_index(drop=True), n_extra
