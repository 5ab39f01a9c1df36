"""Per-series statistical members of the forecast ensemble (``training.forecast.ensemble``).

A *member* forecasts ``horizon`` steps after an ``origin`` for every series of a history table, using only the
rows with ``ds <= origin``: ``forecast(history, origin, horizon) -> series_id, ds, step, yhat``. Local models
(one small model per series) are re-estimated at every origin, as AutoGluon-TimeSeries and statsforecast do:
fitting is part of forecasting and nothing learnt at one origin leaks into another.

* ``StatsForecastMember``: ``AutoETS`` or the dynamic optimised Theta (``AutoTheta(model="DOTM")``) of Nixtla
  ``statsforecast`` (its 2.x models run in compiled C++, no JIT: the first call is as fast as the next), one
  series at a time, on the last
  ``max_history`` steps of each series on its regular grid. Closed (``open=0``), missing and absent periods are
  linearly interpolated first (``training.forecast.baselines._regular_arrays``; counted in ``report_``), so a
  closed Sunday does not look like a collapse in demand; a series with a pause longer than two seasons is
  modelled from after the pause (counted). ``AutoARIMA`` is accepted too but costs ~40x AutoTheta
  per series (measured in benchmarks/forecast_rossmann.py), so it is not a default member. A series whose fit
  fails falls back to the mean of its last season (counted in ``report_["series_fallback"]``).
* ``NaiveMember``: the seasonal naive (``training.forecast.baselines.SeasonalNaive``) refitted at the origin.
* ``ProfileMember`` (``"profile"``; ``"profile_yoy"`` with ``yearly=True``): a recent level times a seasonal
  profile, vectorised (no per-series fit): ``yhat = L * p[position]`` with ``L`` the mean of the last ``level_seasons`` seasons (default 2: 14 days of a
  daily series) and ``p`` each season position's mean over the last ``profile_seasons`` seasons (default 8)
  divided by their overall mean (all positions 1 where that mean is 0). The level follows a ramp within two
  weeks and the profile is averaged over eight weeks, so a noisy or sparse series (a few orders a month) gets
  neither the one-week noise of the seasonal naive nor a trend extrapolated from noise. Same grid and gap
  handling as ``StatsForecastMember`` (closed periods interpolated, restart after a long pause). ``"profile_yoy"``
  also multiplies by last year's ratio of the target week to the level then (``profile_forecast``): a shop's
  pre-Christmas ramp and Christmas closure of last year, for series with more than a year of history.

Forecasts are clipped at 0 (``y >= 0`` by contract); closed periods are set to 0 by the ensemble.
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

import numpy as np
import pandas as pd
from joblib import Parallel, delayed

from features.calendar import step_length
from training.forecast.baselines import SeasonalNaive, _regular_arrays, season_for

__all__ = ["StatsForecastMember", "NaiveMember", "ProfileMember", "STAT_MODELS", "member_history"]

_log = logging.getLogger(__name__)
STAT_MODELS = ("ets", "theta", "arima")


def member_history(history: pd.DataFrame, origin: pd.Timestamp) -> pd.DataFrame:
    """The rows a member may see: ``ds <= origin``, typed, sorted, ``open`` filled with 1."""
    cols = [c for c in ("series_id", "ds", "y", "open") if c in history.columns]
    h = history.loc[history["ds"] <= origin, cols]
    h = h.assign(
        series_id=h["series_id"].astype("string"),
        y=pd.to_numeric(h["y"]).astype("float64"),
        open=h["open"].fillna(1).astype("int8") if "open" in h.columns else np.int8(1),
    )
    return h.sort_values(["series_id", "ds"], kind="stable").reset_index(drop=True)


class StatsForecastMember:
    """``AutoETS`` / ``AutoTheta`` / ``AutoARIMA`` per series, re-estimated at each origin (module docstring).

    Parameters: ``model`` ("ets", "theta" or "arima"), ``freq``, ``season`` (default 7/24/52 by ``freq``),
    ``max_history`` (steps of each series used, default 2 seasons of a year: 364 daily, 104 weekly, 24*56 hourly),
    ``n_jobs`` (joblib processes over series).
    """

    def __init__(
        self,
        model: str = "theta",
        freq: str = "D",
        season: int | None = None,
        max_history: int | None = None,
        n_jobs: int = 1,
    ):
        if model not in STAT_MODELS:
            raise ValueError(f"model must be one of {STAT_MODELS}. Got {model!r} instead.")
        self.model = model
        self.freq = freq
        self.season = season
        self.max_history = max_history
        self.n_jobs = n_jobs
        self.report_: dict[str, int] = {}

    @property
    def name(self) -> str:
        return self.model

    def forecast(self, history: pd.DataFrame, origin: pd.Timestamp, horizon: int) -> pd.DataFrame:
        """``series_id, ds, step, yhat`` for steps ``1..horizon`` after ``origin`` of every series with an
        observed open value at or before ``origin``."""
        step = step_length(self.freq)
        season = int(self.season or season_for(self.freq))
        max_history = int(self.max_history or {7: 364, 24: 24 * 56, 52: 104}.get(season, 8 * season))
        arrays, gaps, counts = _member_arrays(history, origin, step, season, max_history)
        if not arrays:
            return _empty_forecast()
        ids = list(arrays)
        jobs = [(arrays[sid][0], horizon + gap) for sid, gap in zip(ids, gaps, strict=True)]
        n_jobs = int(self.n_jobs or 1) if len(ids) >= 50 else 1  # process start-up costs more than a few fits
        results = Parallel(n_jobs=n_jobs)(delayed(_forecast_one)(self.model, y, n, season) for y, n in jobs)
        self.report_ = {**counts, "series": len(ids), "series_fallback": int(sum(r[1] for r in results))}
        if self.report_["series_fallback"]:
            _log.warning(
                "%s: %d of %d series fell back to their last season's mean (the model failed to fit)",
                self.model,
                self.report_["series_fallback"],
                len(ids),
            )
        yhat = np.concatenate([r[0][-horizon:] for r in results])
        return _forecast_frame(ids, origin, horizon, step, yhat)


class NaiveMember:
    """The seasonal naive refitted at each origin (``SeasonalNaive``), as a member."""

    name = "seasonal_naive"

    def __init__(self, freq: str = "D", season: int | None = None):
        self.freq = freq
        self.season = season

    def forecast(self, history: pd.DataFrame, origin: pd.Timestamp, horizon: int) -> pd.DataFrame:
        h = member_history(history, origin)
        has_value = h.loc[h["y"].notna() & (h["open"] == 1), "series_id"].unique()
        h = h.loc[h["series_id"].isin(has_value)]
        model = SeasonalNaive(self.freq, season=self.season).fit(h)
        step = step_length(self.freq)
        ids = model.last_ds_.index
        steps = np.arange(1, horizon + 1)
        grid = pd.DataFrame(
            {
                "series_id": pd.array(np.repeat(ids, horizon), dtype="string"),
                "ds": np.tile(origin + steps * step, len(ids)),
                "step": np.tile(steps, len(ids)),
            }
        )
        pred = model.predict(horizon, grid[["series_id", "ds"]], levels=())
        return grid.merge(pred[["series_id", "ds", "yhat"]], on=["series_id", "ds"], how="left")


class ProfileMember:
    """Recent level x seasonal profile per series, re-computed at each origin (module docstring)."""

    def __init__(
        self,
        freq: str = "D",
        season: int | None = None,
        level_seasons: int = 2,
        profile_seasons: int = 8,
        yearly: bool = False,
    ):
        if int(level_seasons) < 1 or int(profile_seasons) < 1:
            raise ValueError(
                f"level_seasons and profile_seasons must be >= 1. Got {level_seasons} and {profile_seasons}."
            )
        self.freq = freq
        self.season = season
        self.level_seasons = level_seasons
        self.profile_seasons = profile_seasons
        self.yearly = yearly
        self.report_: dict[str, int] = {}

    @property
    def name(self) -> str:
        return "profile_yoy" if self.yearly else "profile"

    def forecast(self, history: pd.DataFrame, origin: pd.Timestamp, horizon: int) -> pd.DataFrame:
        step = step_length(self.freq)
        season = int(self.season or season_for(self.freq))
        n_level, n_profile = int(self.level_seasons) * season, int(self.profile_seasons) * season
        year = _YEAR_STEPS.get(season) if self.yearly else None
        keep = max(n_level, n_profile) + (year + horizon if year else 0)
        arrays, gaps, counts = _member_arrays(history, origin, step, season, keep)
        if not arrays:
            return _empty_forecast()
        ids = list(arrays)
        out = np.empty((len(ids), horizon))
        n_yearly = 0
        for i, (sid, gap) in enumerate(zip(ids, gaps, strict=True)):
            y = arrays[sid][0]
            out[i] = profile_forecast(y, horizon + gap, season, n_level, n_profile, year)[-horizon:]
            n_yearly += bool(year) and y.size >= year + n_level
        self.report_ = {**counts, "series": len(ids), "series_with_last_year": int(n_yearly)}
        return _forecast_frame(ids, origin, horizon, step, out.ravel())


def profile_forecast(
    y: np.ndarray, h: int, season: int, n_level: int, n_profile: int, year: int | None = None
) -> np.ndarray:
    """``h`` forecasts after the last value of ``y`` (regular, no NaN): the mean of the last ``n_level`` values
    times each season position's mean over the last ``n_profile`` values relative to their overall mean; with
    ``year`` (steps in a year, a multiple of the season) and at least ``year + n_level`` values, also times
    last year's ratio ``(m_t + 1) / (L_ly + 1)``: ``m_t`` the mean of the season centred on the target's date a
    year earlier, ``L_ly`` the level window a year earlier (the +1, one unit a step, shrinks the ratios of
    sparse series towards 1; clipped to [0.2, 5])."""
    y = np.asarray(y, dtype="float64")
    if y.size == 0:
        return np.zeros(h)
    level = float(y[-n_level:].mean())
    tail = y[-n_profile:]
    # position of each tail value in the season, counted back from the last value (position season - 1)
    pos = (np.arange(tail.size) - tail.size) % season
    sums = np.bincount(pos, weights=tail, minlength=season)
    n = np.bincount(pos, minlength=season)
    means = np.divide(sums, n, out=np.full(season, np.nan), where=n > 0)
    overall = float(tail.mean())
    profile = means / overall if overall > 0 else np.ones(season)
    profile = np.where(np.isfinite(profile), profile, 1.0)
    ahead = np.arange(h) % season  # step 1 follows position season - 1, i.e. is position 0
    out = level * profile[ahead]
    n = y.size
    if year and n >= year + n_level and h + season // 2 < year:
        level_ly = float(y[n - year - n_level : n - year].mean())
        c = np.convolve(y, np.ones(season) / season, mode="valid")  # c[k] = mean of y[k : k + season]
        targets = n - 1 + np.arange(1, h + 1) - year  # each target's index a year earlier
        m = c[np.clip(targets - season // 2, 0, c.size - 1)]  # the season centred on it (all before n)
        out = out * np.clip((m + 1.0) / (level_ly + 1.0), 0.2, 5.0)
    return np.clip(out, 0.0, None)


_YEAR_STEPS = {7: 364, 52: 52}  # steps in a year by season (daily: 52 weeks, so weekdays line up)


def _member_arrays(
    history: pd.DataFrame, origin: pd.Timestamp, step: pd.Timedelta, season: int, max_history: int
) -> tuple[dict[str, tuple[np.ndarray, np.ndarray | None]], list[int], dict[str, int]]:
    """Each series' regular array up to ``origin`` (closed/missing interpolated; a series that paused longer
    than two seasons restarts after the pause, counted), and the steps from its last value to ``origin``."""
    h = member_history(history, origin)
    observed = h.loc[h["y"].notna() & (h["open"] == 1)]
    h = h.loc[h["series_id"].isin(observed["series_id"].unique())]
    # a series that paused longer than two seasons restarts after the pause: interpolating across months
    # would flatten its seasonality
    gap = h.groupby("series_id", sort=False)["ds"].diff() > 2 * season * step
    restart = h["ds"].where(gap).groupby(h["series_id"], sort=False).transform("max")
    n_cut = int(h.loc[gap, "series_id"].nunique())
    h = h.loc[restart.isna() | (h["ds"] >= restart)]
    if h.empty:
        return {}, [], {"series_restarted_after_gap": n_cut}
    arrays, counts = _regular_arrays(h, step, [], fill=True, max_history=max_history)
    last = h.groupby("series_id", sort=False)["ds"].max()
    gaps = [int(round((origin - last[sid]) / step)) for sid in arrays]
    return arrays, gaps, {**counts, "series_restarted_after_gap": n_cut}


def _empty_forecast() -> pd.DataFrame:
    return pd.DataFrame({"series_id": pd.array([], dtype="string"), "ds": [], "step": [], "yhat": []})


def _forecast_frame(
    ids: list[str], origin: pd.Timestamp, horizon: int, step, yhat: np.ndarray
) -> pd.DataFrame:
    steps = np.arange(1, horizon + 1)
    return pd.DataFrame(
        {
            "series_id": pd.array(np.repeat(ids, horizon), dtype="string"),
            "ds": np.tile(origin + steps * step, len(ids)),
            "step": np.tile(steps, len(ids)),
            "yhat": np.clip(yhat, 0.0, None),
        }
    )


def _forecast_one(model: str, y: np.ndarray, h: int, season: int) -> tuple[np.ndarray, bool]:
    """``h`` forecasts of one series, and whether it fell back to the last season's mean."""
    from statsforecast.models import AutoARIMA, AutoETS, AutoTheta

    y = np.asarray(y, dtype="float64")
    s = season if y.size >= 2 * season + 2 else 1
    makers: dict[str, Any] = {
        "ets": lambda: AutoETS(season_length=s, model="ZZA" if s > 1 else "ZZN"),
        # the dynamic optimised Theta alone: AutoTheta's default fits four Theta variants and keeps the best in
        # sample, ~4x the cost (52 vs 214 ms a 364-day series) for WAPE within 0.02x naive on the order log
        "theta": lambda: AutoTheta(season_length=s, model="DOTM"),
        "arima": lambda: AutoARIMA(season_length=s),
    }
    try:
        if y.size < 4 or np.nanstd(y) == 0:
            raise ValueError("too short or constant")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mean = np.asarray(makers[model]().forecast(y=y, h=h)["mean"], dtype="float64")
        if mean.shape != (h,) or not np.isfinite(mean).all():
            raise ValueError("non-finite forecast")
        return mean, False
    except Exception:  # noqa: BLE001 - one series' failure must not sink the member: counted fallback
        tail = y[-season:] if y.size else np.zeros(1)
        level = float(np.nanmean(tail)) if np.isfinite(tail).any() else 0.0
        return np.full(h, level), not (y.size >= 4 and np.nanstd(y) == 0)
