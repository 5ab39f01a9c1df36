"""The forecast ensemble: the global LightGBM + per-series statistical models + the seasonal naive, weighted by
greedy ensemble selection on out-of-sample backtest windows.

Members (``members``): ``"lgbm"`` (``LGBMForecaster`` with this estimator's LightGBM settings), ``"theta"``
and ``"ets"`` (statsforecast ``AutoTheta``/``AutoETS`` per series, ``training.forecast.statistical``),
``"arima"`` (opt-in: ~40x the cost of Theta; ``"ets"`` is opt-in too), ``"seasonal_naive"``, ``"profile"`` (recent level x 8-week
seasonal profile) and ``"profile_yoy"`` (the same times last year's ratio: last year's ramp), both vectorised
and cheap (``training.forecast.statistical.ProfileMember``).

Fitting (``fit(series, covariates=, weather=, static=)``):

1. ``n_windows`` rolling-origin windows of ``horizon`` steps, ``step`` apart, at the end of the data
   (``training.forecast.backtest.rolling_origin_windows``, the windows ``orderpulse train forecast`` scores).
2. The LightGBM member is fitted once on ``ds <= `` the first origin and forecasts every window from its origin
   (newer history feeds its lags, as ``backtest(refit=False)`` does); the statistical members are re-estimated at
   each origin on ``ds <= origin`` only. A member that raises is dropped with a warning and counted
   (``dropped_``); with one survivor it is used alone.
3. Weights: greedy ensemble selection (Caruana et al. 2004, as AutoGluon does): ``ensemble_size`` rounds, each
   adding (with replacement) the member that most lowers the WAPE of the running average on the open window
   rows; weights are the selection counts / ``ensemble_size`` (they sum to one).
4. Intervals: split-conformal on the ensemble's own window residuals **per series scale** and **per volume
   bin**: each residual is divided by its series' seasonal-naive MAE before that window's origin
   (``training.metrics.seasonal_scales``, last 8 seasons or ``max_history`` steps; a series without recent
   orders: its mean |y| over all its history), the quantiles are taken per octile of the forecast's volume
   (``training.forecast.intervals.scaled_bounds``; pooled over all series they were mostly the sparse series'
   and covered the busiest series' days half the time), and ``yhat_lo <= yhat <= yhat_hi`` always.
5. With ``refit`` (default) the LightGBM member is refitted on all data; the statistical members' forecasts from
   the last observed step are cached (re-estimated only for another origin or other history).

``backtest_`` is a ``BacktestResult`` of the ensemble on those windows (its ``wape``, ``rmspe``; weights and
interval quantiles were chosen on these same windows, so it is slightly optimistic: score held-out data for an
unbiased figure, as benchmarks/ does), ``member_scores_`` each member's WAPE/RMSPE there.

Explanations (``predict(explain=True)``), in log space as for the LightGBM alone: ``base`` and
``contrib_<family>`` are the LightGBM member's TreeSHAP values times its weight ``w``, and
``contrib_level/trend = log1p(yhat) - w * log1p(yhat_lgbm)`` is the statistical members' share, so
``base + sum(contrib_*) == log1p(yhat)`` for every row (``effect_<family> = exp(contrib) - 1``).
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from features.calendar import step_length
from features.errors import NotFittedError
from training.forecast.backtest import BacktestResult, rolling_origin_windows
from training.forecast.baselines import season_for
from training.forecast.forecaster import LGBMForecaster, default_n_jobs
from training.forecast.intervals import conformal_quantiles, scaled_bounds, volume_binned_quantiles
from training.forecast.statistical import NaiveMember, ProfileMember, StatsForecastMember, member_history
from training.metrics import evaluate, seasonal_scales

__all__ = ["EnsembleForecaster", "greedy_weights", "DEFAULT_MEMBERS", "LEVEL_TREND"]

_log = logging.getLogger(__name__)
# "ets" is opt-in: it took no weight at any of 7 order-log cuts (the same forecasts without it) and is the
# costliest default candidate per series (AutoETS ~4x DOTM Theta)
DEFAULT_MEMBERS = ("lgbm", "theta", "seasonal_naive", "profile", "profile_yoy")
MEMBERS = ("lgbm", "theta", "ets", "arima", "seasonal_naive", "profile", "profile_yoy")
LEVEL_TREND = "level/trend"


def greedy_weights(preds: np.ndarray, y: np.ndarray, size: int = 25) -> np.ndarray:
    """Greedy ensemble selection with replacement (Caruana et al. 2004): weights (summing to one) of the
    columns of ``preds`` whose running average minimises WAPE ``sum|y - p| / sum|y|`` on ``y``."""
    preds = np.asarray(preds, dtype="float64")
    y = np.asarray(y, dtype="float64")
    if preds.ndim != 2 or preds.shape[0] != y.shape[0] or preds.shape[1] == 0:
        raise ValueError(f"preds must be (n_rows, n_members) matching y; got {preds.shape} and {y.shape}.")
    counts = np.zeros(preds.shape[1])
    current = np.zeros(preds.shape[0])
    for it in range(int(size)):
        candidates = (current[:, None] * it + preds) / (it + 1)
        errors = np.abs(candidates - y[:, None]).sum(axis=0)
        best = int(np.argmin(errors))
        counts[best] += 1
        current = candidates[:, best]
    return counts / counts.sum()


class EnsembleForecaster(BaseEstimator):
    """Backtest-weighted ensemble with ``LGBMForecaster``'s interface (see the module docstring).

    The LightGBM parameters (``freq`` ... ``holidays``) are ``LGBMForecaster``'s, given to its member;
    ``calibrate`` is accepted for the same interface (the ensemble always calibrates on its windows).
    ``members``, ``n_windows``, ``step`` (default ``horizon // 2``), ``ensemble_size``, ``refit`` and
    ``max_history`` (steps each statistical member sees) configure the ensemble.
    """

    def __init__(
        self,
        freq: str = "D",
        horizon: int = 42,
        levels: tuple[int, ...] = (80, 95),
        buckets: tuple[int, ...] | None = None,
        params: dict[str, Any] | None = None,
        feature_config: Any = None,
        calibrate: bool | str = True,
        random_state: int = 0,
        n_jobs: int | None = None,
        engine: str = "local",
        scheduler: str | None = None,
        holidays: str | None = None,
        members: tuple[str, ...] = DEFAULT_MEMBERS,
        n_windows: int = 4,
        step: int | None = None,
        ensemble_size: int = 25,
        refit: bool = True,
        max_history: int | None = None,
    ):
        self.freq = freq
        self.horizon = horizon
        self.levels = levels
        self.buckets = buckets
        self.params = params
        self.feature_config = feature_config
        self.calibrate = calibrate
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.engine = engine
        self.scheduler = scheduler
        self.holidays = holidays
        self.members = members
        self.n_windows = n_windows
        self.step = step
        self.ensemble_size = ensemble_size
        self.refit = refit
        self.max_history = max_history

    # ------------------------------------------------------------------------------------------ fitting
    def fit(
        self,
        series: pd.DataFrame,
        covariates: pd.DataFrame | None = None,
        weather: pd.DataFrame | None = None,
        static: pd.DataFrame | None = None,
    ) -> EnsembleForecaster:
        unknown = sorted(set(self.members) - set(MEMBERS))
        if unknown or not self.members:
            raise ValueError(
                f"members must be a non-empty subset of {', '.join(MEMBERS)}. Got {self.members!r}."
            )
        if any(not 0 < lv < 100 for lv in self.levels):
            raise ValueError(f"Interval levels must be percentages in (0, 100). Got {self.levels!r} instead.")
        if int(self.n_windows) < 2:
            raise ValueError(
                f"the ensemble needs at least 2 backtest windows to weight its members. Got n_windows={self.n_windows}."
            )
        horizon = int(self.horizon)
        step = int(self.step or max(1, horizon // 2))
        windows = rolling_origin_windows(series, int(self.n_windows), step, horizon)
        self.tables_ = {"covariates": covariates, "weather": weather, "static": static}
        self.dropped_: dict[str, str] = {}
        self.member_seconds_: dict[str, float] = {}
        first = windows[0].origin
        lgbm = None
        if "lgbm" in self.members:
            lgbm = self._try(
                "lgbm", lambda: self._lgbm().fit(series.loc[series["ds"] <= first], **self.tables_)
            )
        stats = {name: self._stat_member(name) for name in self.members if name != "lgbm"}
        rows = []
        for i, w in enumerate(windows):
            actual = series.loc[(series["ds"] > w.origin) & (series["ds"] <= w.end)]
            grid = _grid(actual)
            preds = self._member_forecasts(lgbm, stats, series, w.origin, horizon, grid, self.tables_)
            lgbm = lgbm if "lgbm" in preds else None
            frame = grid.assign(window=i, origin=w.origin)
            for name, p in preds.items():
                frame[f"yhat_{name}"] = p
            rows.append(frame.merge(_keys(actual)[["series_id", "ds", "y"]], on=["series_id", "ds"]))
        oos = pd.concat(rows, ignore_index=True)
        names = [n for n in self.members if f"yhat_{n}" in oos.columns and n not in self.dropped_]
        if not names:
            raise ValueError(f"every ensemble member failed to fit: {self.dropped_}")
        oos = oos.drop(columns=[c for c in oos.columns if c.startswith("yhat_") and c[5:] not in names])
        cols = [f"yhat_{n}" for n in names]
        usable = (oos["open"] == 1) & oos["y"].notna()
        every = usable & np.isfinite(oos[cols].to_numpy(dtype="float64")).all(axis=1)
        if len(names) == 1:
            weights = np.ones(1)
        else:
            mat = oos.loc[every, cols].to_numpy(dtype="float64")
            weights = greedy_weights(mat, oos.loc[every, "y"].to_numpy(), int(self.ensemble_size))
        self.weights_ = dict(zip(names, (float(w) for w in weights), strict=True))
        self.member_names_ = [n for n in names if self.weights_[n] > 0]
        oos["yhat"] = self._combine(oos)
        self.member_scores_ = {
            n: _scores(oos.loc[every].assign(yhat=oos.loc[every, f"yhat_{n}"])) for n in names
        }
        scale = pd.concat(
            self._scales(series, w.origin).rename("scale").reset_index().assign(window=i)
            for i, w in enumerate(windows)
        )
        oos = oos.merge(scale, on=["series_id", "window"], how="left")
        self._calibrate(oos.loc[usable])
        if "lgbm" in self.member_names_ and self.refit:
            lgbm = self._try("lgbm", lambda: self._lgbm().fit(series, **self.tables_)) or lgbm
        self.lgbm_ = lgbm if "lgbm" in self.member_names_ else None
        self.stats_ = {n: m for n, m in stats.items() if n in self.member_names_}
        self.update(series)
        self._cache_stat_forecasts()
        self.backtest_ = self._backtest_result(oos, windows, step, series)
        return self

    def update(self, series: pd.DataFrame) -> EnsembleForecaster:
        """Take newer history (``series_id, ds, y, open``) to forecast from, without refitting."""
        if getattr(self, "lgbm_", None) is not None:
            self.lgbm_.update(series)
            self.history_ = self.lgbm_.history_  # one copy in the pickled model
        else:
            cols = [c for c in ("series_id", "ds", "y", "open") if c in series.columns]
            self.history_ = series[cols].reset_index(drop=True)
        self.series_ids_ = pd.Index(series["series_id"].unique())
        self.last_ds_ = pd.Timestamp(series.loc[series["y"].notna(), "ds"].max())
        self.stat_cache_ = {}
        return self

    def calibrate_from(self, residual_frame: pd.DataFrame) -> EnsembleForecaster:
        """Replace the interval quantiles by those of out-of-sample ensemble predictions (``series_id, origin,
        y, yhat``; open rows), each residual scaled by its series' scale at its origin."""
        self._check_fitted()
        f = residual_frame.assign(series_id=residual_frame["series_id"].astype("string"))
        if "open" in f.columns:
            f = f.loc[f["open"] == 1]
        parts = [
            g.merge(
                self._scales(self.history_, pd.Timestamp(o)).rename("scale").reset_index(), on="series_id"
            )
            for o, g in f.groupby("origin")
        ]
        self._calibrate(pd.concat(parts, ignore_index=True).loc[lambda d: d["y"].notna()])
        return self

    # ------------------------------------------------------------------------------------------ predicting
    def predict(
        self,
        horizon: int | None = None,
        future: pd.DataFrame | None = None,
        levels: tuple[int, ...] | None = None,
        explain: bool = False,
        *,
        series: pd.DataFrame | None = None,
        covariates: pd.DataFrame | None = None,
        weather: pd.DataFrame | None = None,
        static: pd.DataFrame | None = None,
        origin: pd.Timestamp | str | None = None,
    ) -> pd.DataFrame:
        """``LGBMForecaster.predict``'s contract: ``series_id, ds, step, yhat, yhat_lo_<L>, yhat_hi_<L>`` (+ with
        ``explain`` ``base``, ``contrib_<family>``, ``effect_<family>`` incl. ``level/trend``)."""
        self._check_fitted()
        horizon = int(self.horizon if horizon is None else horizon)
        if not 1 <= horizon <= int(self.horizon):
            raise ValueError(
                f"horizon must be in [1, {self.horizon}] (the model was trained for {self.horizon} steps). Got {horizon}."
            )
        levels = tuple(self.levels if levels is None else levels)
        missing = [lv for lv in levels if f"lo_{lv}" not in self.residual_quantiles_]
        if missing:
            raise ValueError(
                f"Interval level(s) {missing} were not calibrated; available: {tuple(self.levels)}."
            )
        history = self.history_ if series is None else series
        origin_ts = pd.Timestamp(history.loc[history["y"].notna(), "ds"].max() if origin is None else origin)
        tables = {"covariates": covariates, "weather": weather, "static": static}  # None: the member's own
        grid = self._predict_grid(history, future, origin_ts, horizon)
        lgbm_out = None
        if self.lgbm_ is not None:
            lgbm_out = self.lgbm_.predict(
                horizon,
                grid[["series_id", "ds", "open"]],
                levels=(),
                explain=explain,
                series=history,
                origin=origin_ts,
                **tables,
            )
            lgbm_out = grid[["series_id", "ds"]].merge(lgbm_out, on=["series_id", "ds"], how="left")
            self.predict_report_ = dict(getattr(self.lgbm_, "predict_report_", {}))
        cached = series is None and origin_ts == self.last_ds_
        preds = self._member_forecasts(
            self.lgbm_,
            self.stats_,
            history,
            origin_ts,
            horizon,
            grid,
            tables,
            lgbm_out=lgbm_out,
            cached=cached,
        )
        out = grid.copy()
        for name, p in preds.items():
            out[f"yhat_{name}"] = p
        out["yhat"] = self._combine(out)
        closed = out["open"].to_numpy() == 0
        scale = out["series_id"].map(self._scales(history, origin_ts)).fillna(0.0).to_numpy()
        for lv in levels:
            lo, hi = self._bounds(out["yhat"].to_numpy(), scale, lv)
            out[f"yhat_lo_{lv}"], out[f"yhat_hi_{lv}"] = np.where(closed, 0.0, lo), np.where(closed, 0.0, hi)
        if explain:
            out = self._explain(out, lgbm_out)
        out = out.drop(columns=[c for c in out.columns if c.startswith("yhat_") and c[5:] in self.weights_])
        out = out.drop(columns="open").sort_values(["series_id", "ds"], kind="stable").reset_index(drop=True)
        return out

    def explain_columns(self) -> list[str]:
        """Feature families that ``predict(explain=True)`` reports (the LightGBM's + ``level/trend``)."""
        self._check_fitted()
        fams = self.lgbm_.explain_columns() if self.lgbm_ is not None else []
        return sorted({*fams, LEVEL_TREND})

    # attributes the training job logs (buckets, features) come from the LightGBM member
    @property
    def buckets_(self) -> list:
        return self.lgbm_.buckets_ if getattr(self, "lgbm_", None) is not None else []

    @property
    def feature_names_(self) -> dict:
        return self.lgbm_.feature_names_ if getattr(self, "lgbm_", None) is not None else {}

    def summary(self) -> dict[str, Any]:
        """Members, weights, window scores, dropped members and interval quantiles (the MLflow JSON artifact)."""
        self._check_fitted()
        return {
            "members": list(self.weights_),
            "weights": self.weights_,
            "member_backtest": self.member_scores_,
            "ensemble_backtest": {k: self.backtest_.overall.get(k) for k in ("wape", "rmspe", "coverage_80")},
            "dropped": self.dropped_,
            "member_seconds": self.member_seconds_,
            "residual_quantiles_per_series_scale": self.residual_quantiles_,
            "residual_volume_bins": _bins_summary(getattr(self, "residual_bins_", None)),
            "windows": [str(w.origin.date()) for w in self.backtest_.windows],
        }

    # ------------------------------------------------------------------------------------------ internals
    def _lgbm(self) -> LGBMForecaster:
        return LGBMForecaster(
            freq=self.freq, horizon=self.horizon, levels=self.levels, buckets=self.buckets, params=self.params,
            feature_config=self.feature_config, calibrate=False, random_state=self.random_state,
            n_jobs=self.n_jobs, engine=self.engine, scheduler=self.scheduler, holidays=self.holidays,
        )  # fmt: skip

    def _stat_member(self, name: str) -> Any:
        if name == "seasonal_naive":
            return NaiveMember(self.freq)
        if name in ("profile", "profile_yoy"):
            return ProfileMember(self.freq, yearly=name == "profile_yoy")
        n_jobs = int(self.n_jobs) if self.n_jobs else default_n_jobs()
        return StatsForecastMember(name, self.freq, max_history=self.max_history, n_jobs=n_jobs)

    def _try(self, name: str, fn: Any) -> Any:
        """Run a member's fit/forecast; on failure drop it with a warning (``dropped_``) and return None."""
        import time

        t0 = time.perf_counter()
        try:
            result = fn()
        except Exception as exc:  # noqa: BLE001 - a failing member is dropped, counted and reported
            reason = f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"
            self.dropped_[name] = reason
            message = f"ensemble member {name!r} failed and is dropped: {reason}"
            _log.warning(message)
            warnings.warn(message, RuntimeWarning, stacklevel=3)
            return None
        self.member_seconds_[name] = self.member_seconds_.get(name, 0.0) + time.perf_counter() - t0
        return result

    def _member_forecasts(
        self, lgbm, stats, history, origin, horizon, grid, tables, lgbm_out=None, cached=False
    ) -> dict[str, np.ndarray]:
        """Each surviving member's ``yhat`` on ``grid``'s rows (NaN where a member has no forecast)."""
        out: dict[str, np.ndarray] = {}
        if lgbm is not None and "lgbm" not in self.dropped_:
            if lgbm_out is None:
                lgbm_out = self._try(
                    "lgbm",
                    lambda: lgbm.predict(
                        horizon,
                        grid[["series_id", "ds", "open"]],
                        levels=(),
                        series=history,
                        origin=origin,
                        **tables,
                    ),
                )
            if lgbm_out is not None:
                out["lgbm"] = _on_grid(grid, lgbm_out)
        for name, member in stats.items():
            if name in self.dropped_:
                continue
            if cached and name in getattr(self, "stat_cache_", {}):
                pred = self.stat_cache_[name]
            else:
                ids = grid["series_id"].unique()
                sub = history.loc[history["series_id"].astype("string").isin(ids)]
                pred = self._try(name, lambda m=member, s=sub: m.forecast(s, origin, horizon))
            if pred is not None:
                out[name] = _on_grid(grid, pred)
        return out

    def _cache_stat_forecasts(self) -> None:
        """The statistical members' forecasts from the last observed step (what a default forecast needs)."""
        self.stat_cache_ = {}
        for name, member in self.stats_.items():
            pred = self._try(
                name, lambda m=member: m.forecast(self.history_, self.last_ds_, int(self.horizon))
            )
            if pred is not None:
                self.stat_cache_[name] = pred

    def _combine(self, frame: pd.DataFrame) -> np.ndarray:
        """The weighted average of the members' ``yhat`` (weights renormalised over the members that have a
        forecast for a row); closed rows are exactly 0."""
        names = [n for n in getattr(self, "member_names_", self.weights_) if f"yhat_{n}" in frame.columns]
        w = np.array([self.weights_[n] for n in names])
        mat = frame[[f"yhat_{n}" for n in names]].to_numpy(dtype="float64")
        have = np.isfinite(mat)
        total = (np.where(have, mat, 0.0) * w).sum(axis=1)
        norm = (have * w).sum(axis=1)
        yhat = np.where(norm > 0, total / np.where(norm > 0, norm, 1.0), 0.0)
        return np.where(frame["open"].to_numpy() == 0, 0.0, np.clip(yhat, 0.0, None))

    def _scales(self, history: pd.DataFrame, origin: pd.Timestamp) -> pd.Series:
        """Each series' interval scale at ``origin``: its seasonal-naive MAE on the last 8 seasons (or ``max_history`` steps)
        before it (mean |y| where there are no seasonal pairs; where that is 0 too, a series without recent
        orders, its mean |y| over all its history, so its interval is not zero-width), from ``ds <= origin`` only."""
        full = member_history(history, origin)
        steps = int(self.max_history or 8 * season_for(self.freq))
        h = full.loc[full["ds"] > origin - steps * step_length(self.freq)]
        s = seasonal_scales(h, season=season_for(self.freq), step=step_length(self.freq))["scale_mae"]
        level = h.loc[h["open"] == 1].assign(a=h["y"].abs()).groupby("series_id")["a"].mean()
        ever = full.loc[full["open"] == 1].assign(a=full["y"].abs()).groupby("series_id")["a"].mean()
        s = s.reindex(level.index).fillna(level)
        s = s.where(s > 0).reindex(ever.index).fillna(ever).fillna(0.0)
        s.index = s.index.astype("string")
        return s

    def _calibrate(self, scored: pd.DataFrame) -> None:
        """Scaled residual quantiles, pooled and per octile of the forecast's volume (Mondrian conformal: the
        pooled quantiles are mostly those of the many sparse series, too narrow for the busiest ones)."""
        ok = scored["scale"].to_numpy() > 0
        r = ((scored["y"] - scored["yhat"]).to_numpy() / np.where(ok, scored["scale"].to_numpy(), 1.0))[ok]
        q = conformal_quantiles(r, tuple(self.levels))
        if not q:
            q = {f"{side}_{lv}": 0.0 for lv in self.levels for side in ("lo", "hi")}
        # the interval always contains the forecast itself
        self.residual_quantiles_ = {
            k: (min(v, 0.0) if k.startswith("lo") else max(v, 0.0)) for k, v in q.items()
        }
        volume = np.log1p(np.clip(scored["yhat"].to_numpy(dtype="float64")[ok], 0.0, None))
        self.residual_bins_ = volume_binned_quantiles(r, volume, tuple(self.levels))
        self.calibration_report_ = {"rows": int(ok.sum()), "rows_zero_scale": int((~ok).sum())}

    def _bounds(self, yhat: np.ndarray, scale: np.ndarray, level: int) -> tuple[np.ndarray, np.ndarray]:
        # models pickled before the volume bins have none: pooled quantiles
        bins = getattr(self, "residual_bins_", None)
        return scaled_bounds(yhat, scale, self.residual_quantiles_, bins, level)

    def _predict_grid(self, history, future, origin, horizon) -> pd.DataFrame:
        """The rows to forecast (``future``'s, or every series x step) with ``open``: ``future``'s value, else
        the history's known closure after the origin, else 1."""
        if future is None:
            grid = _grid_after(history, origin, horizon, self.freq).drop(columns="open")
        else:
            grid = _keys(future)
            grid = grid.loc[(grid["ds"] > origin) & (grid["ds"] <= origin + horizon * step_length(self.freq))]
        grid = grid[[c for c in ("series_id", "ds", "open") if c in grid.columns]]
        known = _keys(history).loc[lambda d: d["ds"] > origin]
        if "open" in known.columns:
            k = known[["series_id", "ds", "open"]].rename(columns={"open": "open_h"})
            grid = grid.merge(k, on=["series_id", "ds"], how="left")
            grid["open"] = (
                grid["open"].where(grid["open"].notna(), grid["open_h"]) if "open" in grid else grid["open_h"]
            )
            grid = grid.drop(columns="open_h")
        grid["open"] = grid["open"].fillna(1).astype("int8") if "open" in grid.columns else np.int8(1)
        steps = ((grid["ds"] - origin) / step_length(self.freq)).round().astype("int64")
        return grid.assign(step=steps.to_numpy()).reset_index(drop=True)

    def _explain(self, out: pd.DataFrame, lgbm_out: pd.DataFrame | None) -> pd.DataFrame:
        w = self.weights_.get("lgbm", 0.0) if self.lgbm_ is not None else 0.0
        closed = out["open"].to_numpy() == 0
        if lgbm_out is not None:
            contrib_cols = [c for c in lgbm_out.columns if c.startswith("contrib_")]
            out["base"] = w * lgbm_out["base"].to_numpy()
            for c in contrib_cols:
                out[c] = w * lgbm_out[c].to_numpy()
            tree = out["base"].to_numpy() + out[contrib_cols].to_numpy().sum(axis=1)
        else:
            contrib_cols, tree = [], np.zeros(len(out))
            out["base"] = 0.0
        out[f"contrib_{LEVEL_TREND}"] = np.where(closed, 0.0, np.log1p(out["yhat"].to_numpy()) - tree)
        if lgbm_out is not None:  # closed rows: the tree's base is not 0, so its share goes to level/trend
            out.loc[closed, f"contrib_{LEVEL_TREND}"] = -out.loc[closed, "base"]
        for c in [*contrib_cols, f"contrib_{LEVEL_TREND}"]:
            out["effect_" + c.removeprefix("contrib_")] = np.expm1(out[c].to_numpy())
        return out

    def _backtest_result(self, oos, windows, step, series) -> BacktestResult:
        levels = tuple(self.levels)
        scale = oos["scale"].fillna(0.0).to_numpy()
        pred = oos.drop(columns=[c for c in oos.columns if c.startswith("yhat_")])
        closed = pred["open"].to_numpy() == 0
        for lv in levels:
            lo, hi = self._bounds(pred["yhat"].to_numpy(), scale, lv)
            pred[f"yhat_lo_{lv}"] = np.where(closed, 0.0, lo)
            pred[f"yhat_hi_{lv}"] = np.where(closed, 0.0, hi)
        pred = pred.drop(columns="scale")
        rows = []
        for i, w in enumerate(windows):
            m, _ = evaluate(
                pred.loc[pred["window"] == i], train=series.loc[series["ds"] <= w.origin], levels=levels
            )
            rows.append({"window": i, "origin": w.origin, "start": w.start, "end": w.end, **m})
        overall, per_series = evaluate(pred, train=None, levels=levels)
        wm = pd.DataFrame(rows)
        for name in ("mase", "rmsse"):
            if name in wm.columns:
                overall[name] = float(wm[name].mean())
        overall["n_windows"] = float(len(windows))
        overall["n_rows_new_series_skipped"] = 0.0
        params = {
            "n_windows": len(windows),
            "step": step,
            "horizon": int(self.horizon),
            "refit": False,
            "levels": levels,
        }
        return BacktestResult(pred, wm, overall, per_series, list(windows), params)

    def _check_fitted(self) -> None:
        if not hasattr(self, "weights_"):
            raise NotFittedError(
                "This EnsembleForecaster is not fitted yet: call fit(series, ...) before predict()."
            )

    def __repr__(self) -> str:
        return f"EnsembleForecaster(freq={self.freq!r}, horizon={self.horizon}, members={self.members})"


def _keys(frame: pd.DataFrame) -> pd.DataFrame:
    cols = [c for c in ("series_id", "ds", "y", "open") if c in frame.columns]
    f = frame[cols].assign(series_id=frame["series_id"].astype("string"), ds=pd.to_datetime(frame["ds"]))
    if "open" in f.columns:
        f["open"] = f["open"].fillna(1).astype("int8")
    return f


def _grid(actual: pd.DataFrame) -> pd.DataFrame:
    """The rows of a window to forecast: ``series_id, ds, open``."""
    g = _keys(actual)
    if "open" not in g.columns:
        g = g.assign(open=np.int8(1))
    return g[["series_id", "ds", "open"]].reset_index(drop=True)


def _grid_after(history: pd.DataFrame, origin: pd.Timestamp, horizon: int, freq: str) -> pd.DataFrame:
    """Every series with history at or before ``origin`` x steps ``1..horizon`` (``open`` 1)."""
    ids = history.loc[history["ds"] <= origin, "series_id"].astype("string").unique()
    steps = np.arange(1, horizon + 1)
    return pd.DataFrame(
        {
            "series_id": pd.array(np.repeat(ids, horizon), dtype="string"),
            "ds": np.tile(origin + steps * step_length(freq), len(ids)),
            "open": np.int8(1),
        }
    )


def _on_grid(grid: pd.DataFrame, pred: pd.DataFrame) -> np.ndarray:
    p = pred[["series_id", "ds", "yhat"]].assign(series_id=pred["series_id"].astype("string"))
    return (
        grid[["series_id", "ds"]]
        .merge(p, on=["series_id", "ds"], how="left")["yhat"]
        .to_numpy(dtype="float64")
    )


def _scores(frame: pd.DataFrame) -> dict[str, float]:
    m, _ = evaluate(frame[["series_id", "ds", "y", "yhat", "open"]], train=None, levels=())
    return {k: float(m[k]) for k in ("wape", "rmspe") if k in m}


def _bins_summary(bins) -> list[dict[str, Any]]:
    """The volume bins as JSON: each bin's upper ``log1p`` volume edge (the last one open) and its quantiles."""
    if bins is None:
        return []
    edges, per_bin = bins
    uppers = [float(e) for e in edges] + [None]
    return [{"log1p_volume_up_to": e, **q} for e, q in zip(uppers, per_bin, strict=True)]
