"""Baseline forecasters with the same interface as the main model, for backtests and sanity checks.

Interface (the ``training.forecast.backtest.Model`` protocol): ``fit(frame) -> self`` on a long frame
``series_id, ds, y`` (+ optional ``open`` and covariate columns), then
``predict(horizon, future=None, levels=(80, 95))`` returning ``series_id, ds, yhat, yhat_lo_<L>, yhat_hi_<L>``
sorted by ``(series_id, ds)``. ``future`` lists the rows to forecast (``series_id, ds``, optional ``open`` and
covariates, no ``y``); without it every fitted series gets the ``horizon`` steps after its own last ``ds``, all
open. Periods with ``open == 0`` in ``future`` forecast exactly 0 with a zero-width interval. Lower bounds and
forecasts are never below 0 (``y >= 0`` by contract); ``predict_report_`` counts what ``predict`` clipped or
filled.

``freq`` is ``"D"``, ``"h"`` (or ``"H"``) or weekly ``"W-XXX"``; the default seasonal period is 7, 24 and 52 steps.

* ``SeasonalNaive``: the forecast for a period is the last *open* value at the same position in the season
  (a closed last Monday means the Monday before it is repeated). Intervals come from the empirical distribution
  of the series' in-sample seasonal-naive residuals (``training.metrics.seasonal_naive_errors``): for the k-th
  season ahead, ``yhat + q * sqrt(k)`` with ``q`` the residual quantiles at ``(1 - L/100)/2`` and
  ``1 - (1 - L/100)/2``, i.e. the random-walk-across-seasons assumption of Hyndman & Athanasopoulos (FPP3
  5.5). Series with fewer than ``min_residuals`` residuals borrow the pooled residuals of all series relative to
  each series' mean level (counted in ``n_series_pooled_intervals_``).
* ``StatsModelsETS``: per-series ETS(A, Ad, A) (additive errors, damped additive trend, additive seasonality;
  the state-space form of damped Holt-Winters, ``statsmodels.tsa.exponential_smoothing.ets.ETSModel``, chosen
  over ``holtwinters.ExponentialSmoothing`` because it gives analytic prediction intervals). ETS needs a regular
  series without gaps: closed, missing and absent periods are linearly interpolated for fitting and counted in
  ``filled_``. Too short series or failed fits fall back to ETS(A, Ad, N), then ETS(A, N, N), then the naive
  last value; ``model_counts_`` counts the model used per series. About 0.5-2 s per daily series (numerical
  optimisation; longer series and s=24/52 cost more).
* ``StatsModelsSARIMAX``: per-series SARIMAX with optional exogenous covariate columns (which must then be in
  ``future``). The Kalman filter handles closed/missing periods as missing. Slow: about 1 s per 900-point
  daily series with ``(1,0,1)x(1,0,1,7)``, far more with ``s=24`` or ``s=52``; use it on a handful of series.

The statsmodels fits run one series at a time; ``n_jobs=2`` spreads them over processes with joblib.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from scipy.stats import norm

from features.calendar import step_length
from features.errors import NotFittedError
from training.metrics import default_season, season_position, seasonal_naive_errors

__all__ = ["SeasonalNaive", "StatsModelsETS", "StatsModelsSARIMAX", "season_for"]

Freq = str
_log = logging.getLogger(__name__)


def season_for(freq: Freq) -> int:
    """Default seasonal period for ``freq``: 7 for daily, 24 for hourly, 52 for weekly data."""
    return default_season(step_length(freq))


# ------------------------------------------------------------------------------------------ common base
class _Baseline:
    freq: Freq
    season: int | None

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor parameters (scikit-learn convention), e.g. to build an unfitted copy."""
        import inspect

        names = [p for p in inspect.signature(type(self).__init__).parameters if p != "self"]
        return {name: getattr(self, name) for name in names}

    def _check_fitted(self) -> None:
        if not hasattr(self, "last_ds_"):
            raise NotFittedError(
                f"This {type(self).__name__} is not fitted yet: call fit(frame) before predict(horizon, future)."
            )

    def _setup(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Check the training frame; set ``step_``, ``season_``, ``last_ds_``; return it sorted and typed."""
        _require(frame, ("series_id", "ds", "y"), f"{type(self).__name__}.fit")
        f = frame.copy()
        f["series_id"] = f["series_id"].astype("string")
        f["ds"] = pd.to_datetime(f["ds"])
        f["y"] = pd.to_numeric(f["y"]).astype("float64")
        f["open"] = f["open"].fillna(1).astype("int8") if "open" in f.columns else np.int8(1)
        dup = f.duplicated(["series_id", "ds"])
        if dup.any():
            raise ValueError(
                f"The training frame has {int(dup.sum())} duplicate (series_id, ds) rows, e.g. "
                f"{f.loc[dup, ['series_id', 'ds']].head(3).to_dict('records')}; keep one row per series and period."
            )
        f = f.sort_values(["series_id", "ds"], kind="stable").reset_index(drop=True)
        self.step_ = step_length(self.freq)
        self.season_ = season_for(self.freq) if self.season is None else int(self.season)
        self.last_ds_ = f.groupby("series_id", sort=True)["ds"].max()
        return f

    def _future(self, horizon: int, future: pd.DataFrame | None, keep: Sequence[str] = ()) -> pd.DataFrame:
        """The rows to forecast with ``h`` (steps after the series' last training ds) and ``open``."""
        if future is None:
            h = int(horizon)
            if h < 1:
                raise ValueError(f"horizon must be a positive number of steps. Got {horizon!r} instead.")
            ids = self.last_ds_.index.repeat(h)
            steps = np.tile(np.arange(1, h + 1), len(self.last_ds_))
            ds = self.last_ds_.to_numpy().repeat(h) + steps * self.step_
            out = pd.DataFrame({"series_id": pd.array(ids, dtype="string"), "ds": ds, "open": np.int8(1)})
        else:
            _require(future, ("series_id", "ds", *keep), f"{type(self).__name__}.predict (future)")
            out = future[["series_id", "ds", *keep, *(["open"] if "open" in future.columns else [])]].copy()
            out["series_id"] = out["series_id"].astype("string")
            out["ds"] = pd.to_datetime(out["ds"])
            out["open"] = out["open"].fillna(1).astype("int8") if "open" in out.columns else np.int8(1)
            unknown = sorted(set(out["series_id"].dropna()) - set(self.last_ds_.index))
            if unknown:
                raise ValueError(
                    f"future holds {len(unknown)} series the model was not fitted on, e.g. {unknown[:5]}; "
                    "fit on a frame that contains them or drop them from future."
                )
            dup = out.duplicated(["series_id", "ds"])
            if dup.any():
                raise ValueError(
                    f"future has {int(dup.sum())} duplicate (series_id, ds) rows; keep one per period."
                )
        last = out["series_id"].map(self.last_ds_)
        out["h"] = ((out["ds"] - last) / self.step_).round().astype("int64")
        past = out["h"] < 1
        if past.any():
            raise ValueError(
                f"future has {int(past.sum())} row(s) at or before the series' last training ds, e.g. "
                f"{out.loc[past, ['series_id', 'ds']].head(3).to_dict('records')}; forecast only periods after it."
            )
        return out.sort_values(["series_id", "ds"], kind="stable").reset_index(drop=True)

    @staticmethod
    def _finish(out: pd.DataFrame, levels: Sequence[int], report: dict[str, int]) -> pd.DataFrame:
        """Closed rows -> exactly 0; clip at 0 and count; keep the public columns."""
        closed = out["open"].to_numpy() == 0
        cols = ["yhat"] + [f"yhat_{side}_{lv}" for lv in levels for side in ("lo", "hi")]
        report["closed_forecast_0"] = int(closed.sum())
        report["yhat_clipped_at_0"] = int(((out["yhat"] < 0) & ~closed).sum())
        for c in cols:
            out[c] = np.where(closed, 0.0, np.clip(out[c].to_numpy(dtype="float64"), 0.0, None))
        return out[["series_id", "ds", *cols]]


# ------------------------------------------------------------------------------------------ seasonal naive
class SeasonalNaive(_Baseline):
    """Repeat the last open value at the same season position; empirical intervals (see module docstring).

    Parameters
    ----------
    freq : ``"D"``, ``"h"`` or ``"W-XXX"``.
    season : seasonal period in steps; default 7 (D), 24 (h), 52 (W).
    min_residuals : series with fewer in-sample residuals borrow the pooled relative residuals for intervals.

    Fitted attributes: ``step_``, ``season_``, ``last_ds_`` (per series), ``residuals_`` (series_id, residual),
    ``n_series_pooled_intervals_``, and after ``predict`` the counts in ``predict_report_``.
    """

    def __init__(self, freq: Freq = "D", season: int | None = None, min_residuals: int = 10):
        self.freq = freq
        self.season = season
        self.min_residuals = min_residuals

    def fit(self, frame: pd.DataFrame) -> SeasonalNaive:
        f = self._setup(frame)
        resid = seasonal_naive_errors(f, season=self.season_, step=self.step_)
        ok = resid.notna()
        self.residuals_ = pd.DataFrame({"series_id": f.loc[ok, "series_id"], "r": resid[ok]}).reset_index(
            drop=True
        )
        usable = f.loc[(f["open"] == 1) & f["y"].notna()]
        self.level_ = usable.groupby("series_id")["y"].mean()
        counts = self.residuals_.groupby("series_id").size().reindex(self.last_ds_.index, fill_value=0)
        self.n_series_pooled_intervals_ = int((counts < self.min_residuals).sum())
        self._remember(f)
        return self

    def update(self, frame: pd.DataFrame) -> SeasonalNaive:
        """Take newer history (values and last ds) without re-estimating the residual distribution."""
        self._check_fitted()
        self._remember(self._setup(frame))
        return self

    def predict(
        self, horizon: int, future: pd.DataFrame | None = None, levels: Sequence[int] = (80, 95)
    ) -> pd.DataFrame:
        self._check_fitted()
        levels = _check_levels(levels)
        out = self._future(horizon, future)
        no_history = sorted(set(out["series_id"]) & self.series_without_history_)
        if no_history:
            raise ValueError(
                f"{len(no_history)} series have no open period with a known y in the training data, e.g. "
                f"{no_history[:5]}: a seasonal naive forecast is undefined. Drop them or give them history."
            )
        out["_phase"] = season_position(out["ds"], self.step_, self.season_)
        out = out.merge(self.last_by_phase_, on=["series_id", "_phase"], how="left")
        missing = out["yhat"].isna().to_numpy() & (out["open"].to_numpy() == 1)
        out["yhat"] = out["yhat"].fillna(out["series_id"].map(self.last_open_))
        k = np.sqrt(np.ceil(out["h"].to_numpy() / self.season_))
        q = self._residual_quantiles(levels)
        for lv in levels:
            lo = out["series_id"].map(q[f"lo_{lv}"]).to_numpy(dtype="float64")
            hi = out["series_id"].map(q[f"hi_{lv}"]).to_numpy(dtype="float64")
            out[f"yhat_lo_{lv}"] = out["yhat"] + np.nan_to_num(lo) * k
            out[f"yhat_hi_{lv}"] = out["yhat"] + np.nan_to_num(hi) * k
        self.predict_report_ = {
            "rows": len(out),
            "no_value_at_season_position_used_last_open": int(missing.sum()),
        }
        return self._finish(out, levels, self.predict_report_)

    # ---------------------------------------------------------------------------------------- internals
    def _remember(self, f: pd.DataFrame) -> None:
        usable = f.loc[(f["open"] == 1) & f["y"].notna(), ["series_id", "ds", "y"]]
        phase = season_position(usable["ds"], self.step_, self.season_)
        last = usable.assign(_phase=phase).groupby(["series_id", "_phase"], sort=False).tail(1)
        self.last_by_phase_ = (
            last[["series_id", "_phase", "y"]].rename(columns={"y": "yhat"}).reset_index(drop=True)
        )
        self.last_open_ = usable.groupby("series_id")["y"].last()
        self.last_ds_ = f.groupby("series_id", sort=True)["ds"].max()
        self.series_without_history_ = set(self.last_ds_.index) - set(self.last_open_.index)

    def _residual_quantiles(self, levels: tuple[int, ...]) -> pd.DataFrame:
        probs = sorted({p for lv in levels for p in _level_probs(lv)})
        cols = {
            p: name
            for lv in levels
            for p, name in zip(_level_probs(lv), (f"lo_{lv}", f"hi_{lv}"), strict=True)
        }
        if not probs:
            return pd.DataFrame(index=self.last_ds_.index)
        r = self.residuals_
        per = r.groupby("series_id")["r"].quantile(probs).unstack()
        counts = r.groupby("series_id").size()
        per = per.loc[counts[counts >= self.min_residuals].index] if len(per) else per
        rel = r["r"] / r["series_id"].map(self.level_)
        pooled = (
            np.nanquantile(rel.to_numpy(dtype="float64"), probs)
            if rel.notna().any()
            else np.zeros(len(probs))
        )
        borrowed = pd.DataFrame(
            np.outer(self.level_.reindex(self.last_ds_.index).fillna(0.0), pooled),
            index=self.last_ds_.index,
            columns=probs,
        )
        full = borrowed.copy()
        full.loc[per.index, probs] = per[probs].to_numpy()
        return full.rename(columns=cols)


# ------------------------------------------------------------------------------------------ statsmodels
@dataclass
class _Fitted:
    """One series' fitted model: ``spec`` names it; ``naive`` fits keep ``last`` and ``sigma`` only."""

    spec: str
    result: Any = None
    last: float = 0.0
    sigma: float = 0.0
    error: str | None = None


class _PerSeriesStatsModels(_Baseline):
    """Shared machinery: one regular array per series, joblib fits, per-series forecasts with normal intervals."""

    exog: Sequence[str] = ()
    n_jobs: int = 1
    max_history: int | None = None
    _fill_gaps = True

    def fit(self, frame: pd.DataFrame) -> _PerSeriesStatsModels:
        f = self._setup(frame)
        exog = list(self.exog)
        _require(f, tuple(exog), f"{type(self).__name__}.fit (exog)")
        series, self.filled_ = _regular_arrays(f, self.step_, exog, self._fill_gaps, self.max_history)
        if int(self.n_jobs) == 1:
            fitted = [self._fit_one(y, x) for y, x in series.values()]
        else:  # ship a bare copy (parameters + season) to the workers, not the fitted state
            worker = type(self)(**self.get_params())
            worker.season_ = self.season_
            fitted = Parallel(n_jobs=int(self.n_jobs))(
                delayed(worker._fit_one)(y, x) for y, x in series.values()
            )
        self.models_: dict[str, _Fitted] = dict(zip(series.keys(), fitted, strict=True))
        specs = pd.Series([m.spec for m in fitted], dtype="object")
        self.model_counts_ = {str(k): int(v) for k, v in specs.value_counts().items()}
        self.fit_errors_ = {sid: m.error for sid, m in self.models_.items() if m.error}
        if self.fit_errors_:
            _log.info(
                "%s: %d series fell back to a simpler model", type(self).__name__, len(self.fit_errors_)
            )
        return self

    def predict(
        self, horizon: int, future: pd.DataFrame | None = None, levels: Sequence[int] = (80, 95)
    ) -> pd.DataFrame:
        self._check_fitted()
        levels = _check_levels(levels)
        exog = list(self.exog)
        if exog and future is None:
            raise ValueError(
                f"{type(self).__name__} uses exogenous columns {exog}: pass future with their values."
            )
        out = self._future(horizon, future, keep=exog)
        mean = np.empty(len(out))
        var = np.empty(len(out))
        starts = np.flatnonzero(
            np.r_[True, out["series_id"].to_numpy()[1:] != out["series_id"].to_numpy()[:-1]]
        )
        bounds = np.r_[starts, len(out)]
        h_all = out["h"].to_numpy()
        for a, b in zip(bounds[:-1], bounds[1:], strict=True):
            sid = out["series_id"].iat[a]
            h = h_all[a:b]
            x_future = None
            if exog:
                if not np.array_equal(h, np.arange(1, h.max() + 1)):
                    raise ValueError(
                        f"series {sid!r}: future must hold every step 1..{h.max()} to supply the exogenous columns."
                    )
                x_future = out[exog].to_numpy(dtype="float64")[a:b]
            m, v = self._forecast_one(self.models_[sid], int(h.max()), x_future)
            mean[a:b], var[a:b] = m[h - 1], v[h - 1]
        out["yhat"] = mean
        sd = np.sqrt(np.clip(var, 0.0, None))
        for lv in levels:
            z = norm.ppf(0.5 + lv / 200)
            out[f"yhat_lo_{lv}"] = mean - z * sd
            out[f"yhat_hi_{lv}"] = mean + z * sd
        self.predict_report_ = {"rows": len(out)}
        return self._finish(out, levels, self.predict_report_)

    def _check_fitted(self) -> None:
        if not hasattr(self, "models_"):
            raise NotFittedError(
                f"This {type(self).__name__} is not fitted yet: call fit(frame) before predict(horizon, future)."
            )

    # subclasses: fit one regular series (NaN = missing) -> _Fitted, and forecast (mean, variance) for 1..steps
    def _fit_one(self, y: np.ndarray, x: np.ndarray | None) -> _Fitted:  # pragma: no cover - abstract
        raise NotImplementedError

    def _forecast_one(
        self, fitted: _Fitted, steps: int, x: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        if fitted.spec == "naive":
            h = np.arange(1, steps + 1)
            return np.full(steps, fitted.last), fitted.sigma**2 * h
        return self._forecast_model(fitted, steps, x)

    def _forecast_model(
        self, fitted: _Fitted, steps: int, x: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError  # pragma: no cover - abstract


class StatsModelsETS(_PerSeriesStatsModels):
    """Per-series damped Holt-Winters as ETS(A, Ad, A), with fallbacks (see module docstring).

    Parameters
    ----------
    freq : ``"D"``, ``"h"`` or ``"W-XXX"``; season : seasonal period in steps (default from ``freq``).
    n_jobs : processes for the per-series fits (joblib); max_history : fit on the last N steps only.

    Fitted attributes: ``models_`` (series_id -> fitted), ``model_counts_`` (model -> series),
    ``fit_errors_`` (series_id -> why it fell back), ``filled_`` (``values_interpolated``: closed, missing or
    absent periods filled for fitting).
    """

    SPECS = ("damped_trend_seasonal", "damped_trend", "level", "naive")

    def __init__(
        self, freq: Freq = "D", season: int | None = None, n_jobs: int = 1, max_history: int | None = None
    ):
        self.freq = freq
        self.season = season
        self.n_jobs = n_jobs
        self.max_history = max_history

    def _fit_one(self, y: np.ndarray, x: np.ndarray | None) -> _Fitted:
        from statsmodels.tsa.exponential_smoothing.ets import ETSModel

        m = self.season_
        options = {
            "damped_trend_seasonal": (
                len(y) >= 2 * m + 2 and m > 1,
                {"trend": "add", "damped_trend": True, "seasonal": "add", "seasonal_periods": m},
            ),
            "damped_trend": (len(y) >= 10, {"trend": "add", "damped_trend": True}),
            "level": (len(y) >= 3, {}),
        }

        def fit(kwargs: dict[str, Any]) -> Any:
            result = ETSModel(pd.Series(y), error="add", **kwargs).fit(disp=False)
            if not np.all(np.isfinite(result.forecast(1))):
                raise ValueError("non-finite forecast")
            return result

        return _first_that_fits(y, options, fit, f"only {len(y)} periods")

    def _forecast_model(
        self, fitted: _Fitted, steps: int, x: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        n = fitted.result.nobs
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pred = fitted.result.get_prediction(start=n, end=n + steps - 1)
        return np.asarray(pred.predicted_mean, dtype="float64"), np.asarray(
            pred.forecast_variance, dtype="float64"
        )


class StatsModelsSARIMAX(_PerSeriesStatsModels):
    """Per-series SARIMAX with optional exogenous covariates (slow; see module docstring).

    Parameters
    ----------
    freq, season : as for ``StatsModelsETS``.
    order : ARIMA ``(p, d, q)``; seasonal_order : ``(P, D, Q)``, the period is ``season``; trend : ``"c"``, ``"n"``...
    exog : numeric covariate columns known in advance (must be in the training frame and in ``future``;
        absent periods in the training grid get 0, counted in ``filled_["exog_absent_rows"]``).
    n_jobs, max_history : as for ``StatsModelsETS``.

    Falls back to the non-seasonal ``order`` and then to the naive last value (``model_counts_``).
    """

    def __init__(
        self,
        freq: Freq = "D",
        season: int | None = None,
        order: tuple[int, int, int] = (1, 0, 1),
        seasonal_order: tuple[int, int, int] = (1, 0, 1),
        trend: str = "c",
        exog: Sequence[str] = (),
        n_jobs: int = 1,
        max_history: int | None = None,
    ):
        self.freq = freq
        self.season = season
        self.order = order
        self.seasonal_order = seasonal_order
        self.trend = trend
        self.exog = exog
        self.n_jobs = n_jobs
        self.max_history = max_history

    _fill_gaps = False  # the Kalman filter treats NaN as missing

    def _fit_one(self, y: np.ndarray, x: np.ndarray | None) -> _Fitted:
        from statsmodels.tsa.statespace.sarimax import SARIMAX

        n_obs = int(np.isfinite(y).sum())
        options = {
            "sarimax": (n_obs >= 3 * self.season_ and self.season_ > 1, (*self.seasonal_order, self.season_)),
            "arimax": (n_obs >= 10, (0, 0, 0, 0)),
        }

        def fit(seasonal: tuple[int, ...]) -> Any:
            model = SARIMAX(y, exog=x, order=self.order, seasonal_order=seasonal, trend=self.trend)
            result = model.fit(disp=False)
            if not np.all(np.isfinite(result.params)):
                raise ValueError("non-finite parameters")
            return result

        return _first_that_fits(y, options, fit, f"only {n_obs} observed periods")

    def _forecast_model(
        self, fitted: _Fitted, steps: int, x: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fc = fitted.result.get_forecast(steps, exog=x)
        return np.asarray(fc.predicted_mean, dtype="float64"), np.asarray(fc.var_pred_mean, dtype="float64")


# ------------------------------------------------------------------------------------------ helpers
def _first_that_fits(
    y: np.ndarray, options: dict[str, tuple[bool, Any]], fit: Any, too_short: str
) -> _Fitted:
    """The first of ``options`` (``spec -> (feasible, argument of fit)``) that ``fit`` fits without an error,
    else the naive fallback; every spec that was skipped or failed is named in ``_Fitted.error``."""
    errors = []
    for spec, (feasible, arg) in options.items():
        if not feasible:
            errors.append(f"{spec}: {too_short}")
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                result = fit(arg)
            return _Fitted(spec, result, error="; ".join(errors) or None)
        except Exception as exc:  # noqa: BLE001 - any statsmodels failure means: try the next model
            errors.append(f"{spec}: {type(exc).__name__}: {exc}"[:200])
    return _naive(y, "; ".join(errors))


def _naive(y: np.ndarray, error: str) -> _Fitted:
    obs = y[np.isfinite(y)]
    diffs = np.diff(obs)
    sigma = float(np.std(diffs)) if diffs.size > 1 else 0.0
    return _Fitted("naive", last=float(obs[-1]) if obs.size else 0.0, sigma=sigma, error=error)


def _regular_arrays(
    f: pd.DataFrame, step: pd.Timedelta, exog: list[str], fill: bool, max_history: int | None
) -> tuple[dict[str, tuple[np.ndarray, np.ndarray | None]], dict[str, int]]:
    """One array per series on a regular grid from its first to its last ds (the last ``max_history`` steps).

    Closed, missing and absent periods are NaN, or linearly interpolated with ``fill`` (counted in
    ``values_interpolated``); exogenous values of absent periods are 0 (counted in ``exog_absent_rows``).
    """
    first = f.groupby("series_id", sort=False)["ds"].transform("min")
    pos = ((f["ds"] - first) / step).round().astype("int64").to_numpy()
    y = np.where(f["open"].to_numpy() == 1, f["y"].to_numpy(dtype="float64", na_value=np.nan), np.nan)
    x_all = f[exog].to_numpy(dtype="float64", na_value=np.nan) if exog else None
    ids = f["series_id"].to_numpy()
    bounds = np.r_[np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]]), len(f)]
    counts = {"values_interpolated" if fill else "missing_as_nan": 0}
    if exog:
        counts["exog_absent_rows"] = 0
    out: dict[str, tuple[np.ndarray, np.ndarray | None]] = {}
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        n = int(pos[b - 1]) + 1
        keep = slice(max(0, n - max_history) if max_history else 0, n)
        arr = np.full(n, np.nan)
        arr[pos[a:b]] = y[a:b]
        arr = arr[keep]
        x = None
        if x_all is not None:
            present = np.zeros(n, dtype=bool)
            present[pos[a:b]] = True
            x = np.zeros((n, len(exog)))
            x[pos[a:b]] = x_all[a:b]
            x = x[keep]
            counts["exog_absent_rows"] += int((~present[keep]).sum())
        n_nan = int(np.isnan(arr).sum())
        if fill and n_nan and n_nan < arr.size:
            arr = pd.Series(arr).interpolate(limit_direction="both").to_numpy()
        counts["values_interpolated" if fill else "missing_as_nan"] += n_nan
        out[str(ids[a])] = (arr, x)
    return out, counts


def _level_probs(level: int) -> tuple[float, float]:
    alpha = 1 - level / 100
    return alpha / 2, 1 - alpha / 2


def _check_levels(levels: Sequence[int]) -> tuple[int, ...]:
    levels = tuple(int(lv) for lv in levels)
    bad = [lv for lv in levels if not 0 < lv < 100]
    if bad:
        raise ValueError(f"Interval levels must be percentages in (0, 100). Got {bad} instead.")
    return levels


def _require(frame: pd.DataFrame, cols: Sequence[str], where: str) -> None:
    missing = [c for c in cols if c not in frame.columns]
    if missing:
        raise ValueError(f"{where} needs column(s) {missing}; the frame has {list(frame.columns)[:15]}.")
