"""The global LightGBM demand forecaster.

Multi-step strategy: **direct, by horizon bucket.** The horizon 1..H can be cut into buckets (e.g. steps 1-7,
8-14, 15-28, 29-42); each bucket gets its own LightGBM booster trained on a feature frame whose every
``y``-derived feature is lagged by at least the bucket's last step (``ForecastFeatureConfig.for_horizon``), so
a forecast for step h only ever uses ``y`` up to the forecast origin. No prediction is fed back as an input (no
recursion, so errors do not compound). The default is one bucket for the whole horizon (see
``default_buckets`` for the measurement behind that); ``dense_buckets`` gives near steps their own models with
recent lags. Known-in-advance covariates (promo, holidays), calendar, weather and
static attributes are read at the target date.

Target: ``log1p(y) - offset`` with squared loss, i.e. relative errors, which is what RMSPE/WAPE across stores of
very different size reward; forecasts are ``expm1(prediction + offset)``, clipped at 0. The offset is the target
transform (``training.forecast.transforms``): 0 (``"log"``), the series' recent level (``"level"``: trees can
then forecast levels and ramps they never saw), the level times last year's ratio (``"yoy"``), or ``"auto"``:
the one of those with the lowest WAPE on the calibration holdout (``transform_report_``). Closed periods
(``open=0``) forecast exactly 0 (and have a zero-width interval).

Intervals: split-conformal on out-of-sample residuals. ``fit`` fits the buckets on the data up to
``last_ds - horizon``, forecasts the held-out last ``horizon`` steps and keeps the empirical quantiles of the
log-space residuals per bucket; by default those boosters are kept (one fit), ``calibrate="refit"`` refits them
on all data afterwards. Intervals are
``expm1(log1p(yhat) + q)``: multiplicative, so they scale with each series' level; ``q`` per octile of
``log1p(yhat)`` (Mondrian conformal, ``residual_bins_``): sparse series' relative residuals are far larger.
``calibrate_from`` replaces them with residuals of a longer backtest.

Explanations: exact TreeSHAP from LightGBM (``pred_contrib=True``) on the served boosters, in log space, with the
transform's offset (a function of past ``y``) added to the ``level/lags`` family, so
``base + sum(contributions) == log1p(yhat)``; by feature family they read as multiplicative effects
(``exp(c) - 1``: "+18% promo").
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, clone

from features.calendar import step_length
from features.errors import NotFittedError
from features.forecast_config import ForecastFeatureConfig
from features.forecast_frame import (
    build_future_frame,
    build_training_frame,
    design_matrix,
    feature_family,
)
from features.holidays import add_holidays, holiday_covariates
from training import progress
from training.forecast.daykinds import CalendarCorrection, fit_calendar_correction
from training.forecast.intervals import binned_bounds, conformal_quantiles, volume_binned_quantiles
from training.forecast.lgbm_defaults import (
    DEFAULT_LGBM_PARAMS,
    default_buckets,
    default_n_jobs,
    dense_buckets,
)
from training.forecast.seeds import SeedAverage
from training.forecast.transforms import AUTO_CANDIDATES, check_transform, forward, inverse, target_offsets

__all__ = [
    "LGBMForecaster",
    "default_buckets",
    "dense_buckets",
    "default_n_jobs",
    "DEFAULT_LGBM_PARAMS",
]

Freq = str


@dataclass(frozen=True)
class _Bucket:
    first: int
    last: int
    config: ForecastFeatureConfig


class LGBMForecaster(BaseEstimator):
    """Global LightGBM forecaster over all series (scikit-learn style; see module docstring).

    Parameters
    ----------
    freq : "H", "D" or "W" (weekly anchors are inferred from the data).
    horizon : the largest number of steps ``predict`` will be asked for (1..366).
    levels : interval levels in percent, default (80, 95).
    buckets : upper steps of the horizon buckets; default ``default_buckets(horizon, freq)``.
    params : LightGBM parameters overriding ``DEFAULT_LGBM_PARAMS``.
    feature_config : base feature configuration (lags/windows are re-based per bucket).
    calibrate : how the intervals are calibrated out of sample on the last ``horizon`` steps:
        ``"split"`` (default, also ``True``): the boosters are fitted once, on data up to ``last - horizon``, and
        kept (split conformal: one fit; the held-out steps still feed the lag features at forecast time);
        ``"refit"``: calibrate that way, then refit the boosters on all data (two fits); ``False``: no intervals
        until ``calibrate_from`` is called (e.g. with backtest residuals).
    n_jobs : LightGBM threads (default ``default_n_jobs()``).
    holidays : public-holiday calendar added as the ``holiday_public`` covariate (``features.holidays``): a
        country code such as ``"GB"`` or ``"DE-BY"``, or ``"static"`` for each series' ``country`` column of the
        static table. It is generated for every date the model fits or forecasts (kept with the model, so any
        later forecast has it for its horizon); default None (no holidays).
    target_transform : "log" (default), "level", "yoy" or "auto" (see the module doc and
        ``training.forecast.transforms``). "level" beat "log" at 2 of 3 Online Retail cuts (WAPE 0.394 vs 0.430,
        0.275 vs 0.308) and lost badly at the third (0.540 vs 0.326, 2011-03-01), so it is not the default.
    n_seeds : boosters per bucket, fitted with seeds ``random_state .. random_state + n_seeds - 1`` and averaged
        in log space (``training.forecast.seeds.SeedAverage``; the "dask" engine fits one). Default 3: on 200
        Rossmann stores at cuts 2015-05-08 / 2015-03-27 / 2014-06-19 (42 days), WAPE 0.0788 / 0.0768 / 0.0839
        and RMSPE 0.1231 / 0.1105 / 0.1081 against 0.0813 / 0.0783 / 0.0856 and 0.1257 / 0.1125 / 0.1102 for
        one seed (mean of seeds 0-2), for 3x the boosting time.
    engine, scheduler : "local" (default) or "dask": with "dask" the training frames are built per series
        partition and the boosters trained with lightgbm.dask on the cluster at ``scheduler`` (default: the
        running client or a LocalCluster); see ``training.engine``. Prediction is the same either way.

    The model keeps the history it was fitted on (``history_``) and the known-in-advance tables, so it follows
    the ``training.forecast.backtest`` Model protocol: ``fit(series, covariates=..., weather=..., static=...)``,
    ``predict(horizon, future, levels)`` and ``update(series)`` for newer history without refitting.
    """

    holidays: str | None = None  # the class default: models pickled before the parameter existed have none
    target_transform: str = "log"  # the same for models pickled before issue 17
    n_seeds: int = 1  # models pickled before session 5 have one booster per bucket
    calendar_correction_: CalendarCorrection | None = None  # none for models pickled before session 7

    def __init__(
        self,
        freq: Freq = "D",
        horizon: int = 42,
        levels: tuple[int, ...] = (80, 95),
        buckets: tuple[int, ...] | None = None,
        params: dict[str, Any] | None = None,
        feature_config: ForecastFeatureConfig | None = None,
        calibrate: bool | str = True,
        random_state: int = 0,
        n_jobs: int | None = None,
        engine: str = "local",
        scheduler: str | None = None,
        holidays: str | None = None,
        target_transform: str = "log",
        n_seeds: int = 3,
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
        self.target_transform = target_transform
        self.n_seeds = n_seeds

    # ------------------------------------------------------------------------------------------ fitting
    def fit(
        self,
        series: pd.DataFrame,
        covariates: pd.DataFrame | None = None,
        weather: pd.DataFrame | None = None,
        static: pd.DataFrame | None = None,
    ) -> LGBMForecaster:
        """Fit one booster per horizon bucket on validated input tables (see ``features.validation``)."""
        if not 1 <= int(self.horizon) <= 366:
            raise ValueError(
                f"The 'horizon' parameter must be an int in the range [1, 366]. Got {self.horizon!r} instead."
            )
        if any(not 0 < lv < 100 for lv in self.levels):
            raise ValueError(f"Interval levels must be percentages in (0, 100). Got {self.levels!r} instead.")
        self._n_seeds()
        self.buckets_ = self._make_buckets()
        self.tables_ = {"covariates": covariates, "weather": weather, "static": static}
        tables = self._with_holidays(self.tables_, series, series["ds"].max())
        self.residual_quantiles_: dict[int, dict[str, float]] = {}
        self.residual_bins_ = {}
        self.calibration_report_: dict[str, Any] = {"rows": 0}
        mode = self._calibration_mode()
        self.target_transform_ = check_transform(self.target_transform)
        self.transform_report_: dict[str, Any] = {"chosen": self.target_transform_}
        cal, scored = None, None
        if self.target_transform_ == "auto":
            cal, scored = self._choose_transform(series, tables)
        elif mode != "none":
            cal, scored = self._holdout_fit(series, tables)
        if mode == "none":
            self.calibration_report_ = {"rows": 0}
        elif scored is not None:
            self.residual_quantiles_ = self._quantiles_from(scored)
        if mode == "split" and cal is not None:
            # split conformal: keep the boosters fitted before the holdout (one fit instead of two); forecasts
            # still read the latest y through the lag features
            self.boosters_, self.fit_reports_, self.categories_ = (
                cal.boosters_,
                cal.fit_reports_,
                cal.categories_,
            )
        else:
            self.boosters_, self.fit_reports_ = self._fit_boosters(series, tables)
        self.feature_names_ = {b.last: list(self.boosters_[b.last].feature_name()) for b in self.buckets_}
        self.update(series)
        return self

    def update(self, series: pd.DataFrame) -> LGBMForecaster:
        """Take newer history (``series_id, ds, y, open``) to forecast from, without refitting."""
        cols = [c for c in ("series_id", "ds", "y", "open") if c in series.columns]
        self.history_ = series[cols].reset_index(drop=True)
        self.series_ids_ = pd.Index(series["series_id"].unique())
        self.last_ds_ = pd.Timestamp(series.loc[series["y"].notna(), "ds"].max())
        return self

    def calibrate_from(self, residual_frame: pd.DataFrame) -> LGBMForecaster:
        """Replace the interval quantiles by those of out-of-sample predictions (e.g. a backtest).

        ``residual_frame`` needs columns ``step``, ``y``, ``yhat`` (open rows only are used).
        """
        self._check_fitted()
        self.residual_quantiles_ = self._quantiles_from(residual_frame)
        return self

    def correct_from(self, predictions: pd.DataFrame, prior_days: float = 5.0) -> LGBMForecaster:
        """Learn the calendar correction (``training.forecast.daykinds``: the relative bias on holiday and promo
        days) from out-of-sample predictions, e.g. a backtest's (``series_id, ds, y, yhat``, with ``window`` and
        ``open`` if known); every later ``predict`` applies it (``effect_day_kind`` with ``explain``)."""
        self._check_fitted()
        tables = self._with_holidays(self.tables_, self.history_, self.last_ds_)
        self.calendar_correction_ = fit_calendar_correction(
            predictions, tables["covariates"], self.freq, prior_days=prior_days
        )
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
        """Forecast ``horizon`` steps after the origin for every series.

        ``series`` (default: the history the model was fitted on or last ``update``-d with) gives the ``y``
        history; the origin defaults to its latest ``ds`` with an observed ``y``; ``y`` after the origin is never
        used. ``future`` (optional) holds the rows to forecast (``series_id, ds`` and known-in-advance ``open``):
        only those rows are returned. ``covariates``/``weather``/``static`` default to the tables given to
        ``fit``; pass a changed promo plan here for a what-if.

        Returns ``series_id, ds, step, yhat, yhat_lo_<L>, yhat_hi_<L>`` per level, plus with ``explain=True``
        ``base`` (log space), ``contrib_<family>`` (log space) and ``effect_<family>`` (multiplicative, -0.04 =
        -4%).
        """
        self._check_fitted()
        horizon = int(self.horizon if horizon is None else horizon)
        if not 1 <= horizon <= self.horizon:
            raise ValueError(
                f"horizon must be in [1, {self.horizon}] (the model was trained for {self.horizon} steps). Got {horizon}."
            )
        levels = tuple(self.levels if levels is None else levels)
        missing = [lv for lv in levels if lv not in self._available_levels()]
        if missing:
            why = self.calibration_report_.get("skipped")
            fix = (
                f" The calibration was skipped: {why}. Fix: more history or a shorter horizon." if why else ""
            )
            raise ValueError(
                f"Interval level(s) {missing} were not calibrated; available: {self._available_levels()}.{fix}"
            )
        history = self.history_ if series is None else series
        observed = history.loc[history["y"].notna(), "ds"]
        origin_ts = pd.Timestamp(observed.max() if origin is None else origin)
        # Rows after the origin stay: their ``y`` is masked by the frame builder, their ``open`` (known closures)
        # is used. ``future`` rows not in ``series`` are added the same way.
        if future is not None:
            rows = future[["series_id", "ds"] + (["open"] if "open" in future.columns else [])]
            rows = rows.assign(series_id=rows["series_id"].astype(history["series_id"].dtype), y=np.nan)
            rows = rows.loc[rows["ds"] > origin_ts]
            known = history.loc[history["ds"] > origin_ts, ["series_id", "ds"]]
            rows = rows.merge(known, on=["series_id", "ds"], how="left", indicator=True)
            rows = rows.loc[rows["_merge"] == "left_only"].drop(columns="_merge")
            history = pd.concat([history, rows], ignore_index=True)
        tables = {
            "covariates": self.tables_["covariates"] if covariates is None else covariates,
            "weather": self.tables_["weather"] if weather is None else weather,
            "static": self.tables_["static"] if static is None else static,
        }
        tables = self._with_holidays(tables, history, origin_ts)
        parts = []
        for bucket in self.buckets_:
            if bucket.first > horizon:
                break
            frame, report = build_future_frame(
                history,
                horizon=min(bucket.last, horizon),
                config=bucket.config,
                origin=origin_ts,
                categories=self.categories_.get(bucket.last),
                keys=None if future is None else future,
                **tables,
            )
            # the last bucket's frame spans every step: its counts (what was inserted, missing, ignored) are
            # the forecast's, kept in ``predict_report_`` for the caller to report
            self.predict_report_ = dict(report.counts)
            frame = frame.assign(step=self._steps(frame["ds"], origin_ts))
            frame = frame.loc[frame["step"] >= bucket.first]
            parts.append(self._predict_bucket(bucket, frame, levels, explain))
        out = self._calendar_corrected(pd.concat(parts, ignore_index=True), tables["covariates"], explain)
        out["series_id"] = out["series_id"].astype("string")
        if future is not None:
            keys = future[["series_id", "ds"]].assign(series_id=lambda d: d["series_id"].astype("string"))
            out = out.merge(keys, on=["series_id", "ds"], how="inner")
        return out.sort_values(["series_id", "ds"], kind="stable").reset_index(drop=True)

    def explain_columns(self) -> list[str]:
        """Feature families that ``predict(explain=True)`` reports, in a stable order."""
        self._check_fitted()
        fams = {feature_family(f) for names in self.feature_names_.values() for f in names}
        if self.calendar_correction_ is not None and self.calendar_correction_.factors:
            fams.add("day_kind")
        return sorted(fams)

    # ------------------------------------------------------------------------------------------ internals
    def _calendar_corrected(
        self, out: pd.DataFrame, covariates: pd.DataFrame | None, explain: bool
    ) -> pd.DataFrame:
        """``out`` times the calendar correction, if one was learned; with ``explain`` its share of
        ``log1p(yhat)`` is the ``day_kind`` family, so the contributions still add up exactly."""
        correction = self.calendar_correction_
        if correction is None or not correction.factors or not len(out):
            return out
        before = out["yhat"].to_numpy(dtype="float64")
        out = correction.apply(out, covariates)
        if explain:
            delta = np.log1p(out["yhat"].to_numpy(dtype="float64")) - np.log1p(before)
            out["contrib_day_kind"] = delta
            out["effect_day_kind"] = np.expm1(delta)
        return out

    def _make_buckets(self) -> list[_Bucket]:
        lasts = tuple(sorted(set(self.buckets or default_buckets(int(self.horizon), self.freq))))
        if lasts[-1] != int(self.horizon) or lasts[0] < 1:
            raise ValueError(
                f"buckets must be increasing steps ending at horizon={self.horizon}. Got {lasts}."
            )
        base = (self.feature_config or ForecastFeatureConfig(freq=self.freq)).with_level()
        if self.target_transform in ("yoy", "auto") and not base.use_yearly:
            base = replace(base, use_yearly=True)  # "yoy" scales by last year's ratio, a yearly feature
        firsts = (1,) + tuple(b + 1 for b in lasts[:-1])
        return [_Bucket(f, last, base.for_horizon(last)) for f, last in zip(firsts, lasts, strict=True)]

    def _lgbm_params(self) -> dict[str, Any]:
        params = {**DEFAULT_LGBM_PARAMS, **(self.params or {})}
        params.update(
            seed=self.random_state, num_threads=self._n_jobs(), deterministic=True, force_row_wise=True
        )
        return params

    def _with_holidays(self, tables: dict, series: pd.DataFrame, last: pd.Timestamp) -> dict:
        """``tables`` with the holiday covariates up to ``last`` + the horizon merged in (when ``holidays``)."""
        spec = self.holidays
        if not spec:
            return tables
        end = pd.Timestamp(last) + int(self.horizon) * step_length(self.freq)
        cal, _ = holiday_covariates(spec, series, end, self.freq, static=tables["static"])
        return {**tables, "covariates": add_holidays(tables["covariates"], cal)}

    def _fit_boosters(
        self, series: pd.DataFrame, tables: dict
    ) -> tuple[dict[int, lgb.Booster | SeedAverage], dict[int, Any]]:
        params = self._lgbm_params()
        n_rounds = int(params.pop("n_estimators"))
        boosters, reports = {}, {}
        self.categories_: dict[int, dict[str, list[str]]] = {}
        if getattr(self, "engine", "local") != "local":
            from training.engine import check_engine
            from training.forecast.dask import fit_forecast_boosters

            check_engine(self.engine, self.scheduler)
            configs = [(b.last, b.config) for b in self.buckets_]
            boosters, reports = fit_forecast_boosters(
                series,
                tables,
                configs,
                params,
                n_rounds,
                scheduler=self.scheduler,
                transform=self._transform(),
            )
            self.categories_ = {last: dict(r.categories) for last, r in reports.items()}
            return boosters, reports
        for bucket in self.buckets_:
            frame, report = build_training_frame(series, config=bucket.config, **tables)
            self.categories_[bucket.last] = dict(report.categories)
            rows = frame.loc[(frame["open"] == 1) & frame["y"].notna()]
            offset, counts = target_offsets(rows, self._transform(), bucket.config.level_name)
            report.counts.update({k: v for k, v in counts.items() if v})
            X, y = design_matrix(rows, trainable_only=False)
            del frame, rows
            data = lgb.Dataset(X, label=forward(y, offset), categorical_feature="auto", free_raw_data=True)
            description = f"LightGBM rounds, steps {bucket.first}-{bucket.last}"
            n_seeds = self._n_seeds()
            with progress.current().task(description, total=n_rounds * n_seeds) as task:
                fitted = [
                    lgb.train(
                        {**params, "seed": params["seed"] + k},
                        data,
                        num_boost_round=n_rounds,
                        callbacks=[progress.lightgbm_rounds(task)],
                    )
                    for k in range(n_seeds)
                ]
            boosters[bucket.last] = fitted[0] if n_seeds == 1 else SeedAverage(fitted)
            reports[bucket.last] = report
        return boosters, reports

    def _steps(self, ds: pd.Series, origin: pd.Timestamp) -> np.ndarray:
        return ((ds - origin) / step_length(self.freq)).round().astype("int64").to_numpy()

    def _predict_bucket(
        self, bucket: _Bucket, frame: pd.DataFrame, levels: tuple[int, ...], explain: bool
    ) -> pd.DataFrame:
        booster = self.boosters_[bucket.last]
        X = frame[booster.feature_name()]
        offset, _ = target_offsets(frame, self._transform(), bucket.config.level_name)
        log_pred = booster.predict(X, num_threads=self._n_jobs()) + offset
        closed = frame["open"].to_numpy() == 0
        out = pd.DataFrame(
            {
                "series_id": frame["series_id"].to_numpy(),
                "ds": frame["ds"].to_numpy(),
                "step": frame["step"].to_numpy(),
            }
        )
        out["yhat"] = np.where(closed, 0.0, inverse(log_pred, 0.0))
        q = self.residual_quantiles_.get(bucket.last, {})
        bins = getattr(self, "residual_bins_", {}).get(bucket.last)  # absent in models pickled before
        for lv in levels:
            lo, hi = q.get(f"lo_{lv}", 0.0), q.get(f"hi_{lv}", 0.0)
            if bins is not None:
                lo, hi = binned_bounds(bins, np.log1p(out["yhat"].to_numpy()), lv)
            out[f"yhat_lo_{lv}"] = np.where(closed, 0.0, inverse(log_pred, lo))
            out[f"yhat_hi_{lv}"] = np.where(closed, 0.0, inverse(log_pred, hi))
        if explain:
            contrib = booster.predict(X, pred_contrib=True, num_threads=self._n_jobs())
            names = booster.feature_name()
            out["base"] = contrib[:, -1]
            fams = pd.Series([feature_family(n) for n in names])
            for fam in sorted(fams.unique()):
                cols = np.flatnonzero((fams == fam).to_numpy())
                c = contrib[:, cols].sum(axis=1) + (offset if fam == "level/lags" else 0.0)
                c = np.where(closed, 0.0, c)
                out[f"contrib_{fam}"] = c
                out[f"effect_{fam}"] = np.expm1(c)
        return out

    def _calibration_mode(self) -> str:
        mode = {True: "split", False: "none", None: "none"}.get(self.calibrate, self.calibrate)  # type: ignore[call-overload]
        if mode not in ("split", "refit", "none"):
            raise ValueError(
                f"calibrate must be 'split', 'refit', True or False. Got {self.calibrate!r} instead."
            )
        return mode

    def _n_seeds(self) -> int:
        n = getattr(self, "n_seeds", 1)
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"n_seeds must be a positive int. Got {n!r} instead.")
        return int(n)

    def _transform(self) -> str:
        return getattr(self, "target_transform_", "log")  # models pickled before issue 17: log1p

    def _choose_transform(
        self, series: pd.DataFrame, tables: dict
    ) -> tuple[LGBMForecaster | None, pd.DataFrame | None]:
        """``target_transform="auto"``: fit each candidate before the calibration holdout and keep the one with
        the lowest holdout WAPE (its boosters and residuals then serve the calibration, as for a fixed
        transform). The candidates' WAPEs are kept in ``transform_report_``."""
        candidates = list(AUTO_CANDIDATES)
        season = {"D": 364, "W": 52}.get(self.freq.upper()[:1])
        if season is None or series["ds"].nunique() < season + 3 * int(self.horizon):
            candidates.remove("yoy")  # no last year before the holdout: "yoy" would equal "level"
        best: tuple[float, str, LGBMForecaster, pd.DataFrame] | None = None
        wapes: dict[str, float] = {}
        for name in candidates:
            self.target_transform_ = name
            cal, scored = self._holdout_fit(series, tables)
            if cal is None or scored is None:  # too short for a holdout: no evidence, keep the first
                self.target_transform_ = candidates[0]
                self.transform_report_ = {"chosen": candidates[0], "skipped": "no holdout"}
                return None, None
            ok = (scored["open"] == 1) & scored["y"].notna() if "open" in scored else scored["y"].notna()
            total = float(scored.loc[ok, "y"].sum())
            wape = float((scored["yhat"] - scored["y"]).abs()[ok].sum()) / total if total else np.inf
            wapes[name] = round(wape, 5)
            if best is None or wape < best[0]:
                best = (wape, name, cal, scored)
        assert best is not None
        self.target_transform_ = best[1]
        self.transform_report_ = {"chosen": best[1], "holdout_wape": wapes}
        return best[2], best[3]

    def _holdout_fit(
        self, series: pd.DataFrame, tables: dict
    ) -> tuple[LGBMForecaster | None, pd.DataFrame | None]:
        """Fit on the data up to ``last - horizon`` and forecast the held-out last ``horizon`` steps:
        ``(model, scored rows)``, or ``(None, None)`` (reported) when the history is too short."""
        horizon = int(self.horizon)
        cut = pd.Timestamp(series["ds"].max()) - horizon * step_length(self.freq)
        train = series.loc[series["ds"] <= cut]
        if train.empty or train["ds"].nunique() < 2 * horizon:
            n, last = train["ds"].nunique() + horizon, pd.Timestamp(series["ds"].max())
            self.calibration_report_ = {
                "rows": 0,
                "skipped": f"{n} periods up to {last:%Y-%m-%d} < 3 x {horizon}",
            }
            return None, None
        cal = clone(self).set_params(calibrate=False)
        cal.target_transform_ = self._transform()
        cal.buckets_ = self.buckets_
        cal.tables_ = self.tables_  # the tables as given: cal.predict adds the holidays for its own horizon
        cal.boosters_, cal.fit_reports_ = cal._fit_boosters(train, tables)
        cal.feature_names_ = {b.last: list(cal.boosters_[b.last].feature_name()) for b in cal.buckets_}
        cal.residual_quantiles_, cal.residual_bins_ = {}, {}
        cal.update(train)
        pred = cal.predict(horizon, series.loc[series["ds"] > cut], levels=())
        actual = series[[c for c in ("series_id", "ds", "y", "open") if c in series.columns]].assign(
            series_id=lambda d: d["series_id"].astype("string")
        )
        scored = pred.merge(actual, on=["series_id", "ds"], how="inner")
        self.calibration_report_ = {
            "rows": int(len(scored)),
            "origin": str(cut.date()),
            "mode": self._calibration_mode(),
        }
        return cal, scored

    def _quantiles_from(self, scored: pd.DataFrame) -> dict[int, dict[str, float]]:
        """Pooled log-space quantiles per bucket (returned), and per forecast-volume bin in ``residual_bins_``:
        a Mondrian split-conformal by ``log1p(yhat)`` octile, so a sparse series' small forecasts get the
        wide relative residuals of small forecasts instead of those pooled with dense series."""
        ok = scored["y"].notna() & (scored["yhat"] >= 0)
        if "open" in scored.columns:
            ok &= scored["open"] == 1
        s = scored.loc[ok]
        resid = np.log1p(s["y"].to_numpy()) - np.log1p(s["yhat"].to_numpy())
        volume = np.log1p(s["yhat"].to_numpy())
        step = s["step"].to_numpy()
        quantiles: dict[int, dict[str, float]] = {}
        self.residual_bins_: dict[int, tuple[np.ndarray, list[dict[str, float]]]] = {}
        for bucket in self.buckets_:
            mask = (step >= bucket.first) & (step <= bucket.last)
            r, v = resid[mask], volume[mask]
            if r.size < 20:  # too few residuals in this bucket: borrow all of them
                r, v = resid, volume
            quantiles[bucket.last] = conformal_quantiles(r, self.levels)
            bins = volume_binned_quantiles(r, v, self.levels)
            if bins is not None:
                self.residual_bins_[bucket.last] = bins
        return quantiles

    def _available_levels(self) -> tuple[int, ...]:
        if not self.residual_quantiles_:
            return ()
        any_q = next(iter(self.residual_quantiles_.values()))
        return tuple(sorted({int(k.split("_")[1]) for k in any_q}))

    def _n_jobs(self) -> int:
        return int(self.n_jobs) if self.n_jobs else default_n_jobs()

    def _check_fitted(self) -> None:
        if not hasattr(self, "boosters_"):
            raise NotFittedError(
                "This LGBMForecaster is not fitted yet: call fit(series, ...) before predict()."
            )

    def __repr__(self) -> str:
        return f"LGBMForecaster(freq={self.freq!r}, horizon={self.horizon}, levels={self.levels})"
