"""Lag, rolling, seasonal and expanding features of ``y`` on the regular grid.

Every feature at time ``t`` uses only ``y`` at ``t - min_lag`` or earlier (``config.min_lag``; the direct
multi-step strategy sets it to the horizon, see ``ForecastFeatureConfig.for_horizon``):

==========================================  =================================================================
name                                         value at t
==========================================  =================================================================
``y_lag_{k}``                                y[t-k] (k >= min_lag)
``y_rolling_{stat}_{w}_lag_{m}``             mean/std/max/min of y[t-m-w+1 .. t-m], m = min_lag
``y_seasonal_rolling_mean_{k}{unit}_lag_{L}``  mean of y[t-L], y[t-L-s], ..., y[t-L-(k-1)s] (same weekday /
                                             same hour over k seasons of length s; L = smallest multiple
                                             of s >= min_lag; unit: d(ay)=24h, w(eek)=7d/168h, y(ear)=52w)
``y_expanding_mean_lag_{m}``                 mean of y[start .. t-m] (series level)
``y_yoy_log_ratio_lag_{S}``                  last year's value relative to the level then:
                                             log1p(y[t-S]) - log1p(L[t-S]), L[u] = mean of y[u-m-w+1 .. u-m]
                                             (w = level_window; S = 364 days / 52 weeks; needs S >= m)
``y_yoy_log_ratio_mean_{c}_lag_{S-c//2}``    the same with last year's centred mean of c steps
                                             (y[t-S-c//2 .. t-S+c//2]; c = 7 days / 3 weeks): last year's ramp
                                             without its day-of-week noise; needs S - c//2 >= m
==========================================  =================================================================

The yearly ratios carry last year's ramp (a pre-Christmas rise, a summer dip) as a ratio to the level at the
same point of last year, so they apply to this year's level whatever the trend in between (the ``level`` and
``yoy`` target transforms of ``training.forecast.transforms`` are built on the same level).

Missing ``y`` (gaps, missing values) and closed rows (``open == 0``) are *not observed*: they are skipped by
every statistic (so a store's Sunday zeros do not drag its rolling mean down) and a lag that lands on them is
missing. Missing never becomes 0. A window statistic needs at least ``ceil(rolling_min_fraction * w)``
observations (std at least 2), otherwise it is missing.

Implementation: per-series cumulative sums (``groupby().cumsum()`` on series blocks, so one series' values
never touch another's arithmetic, and a value after ``t`` never enters a sum at ``t``), differenced at two
lags; values are centred on each series' first observation before summing so sums of squares keep their
precision. ``max``/``min`` use pandas' rolling kernels on an array where series are separated by padding.
All of it is vectorised over the whole grid: about 0.1 s per feature-million-rows.
"""

from __future__ import annotations

import math
from typing import Protocol

import numpy as np
import pandas as pd

from features.calendar import base_freq, step_length

__all__ = [
    "LagConfig",
    "lag_features",
    "lag_feature_names",
    "seasonal_lag",
    "seasonal_unit",
    "grid_positions",
    "ROLLING_STATS",
]

ROLLING_STATS = ("mean", "std", "max", "min")


class LagConfig(Protocol):
    """What this module reads of a configuration; ``features.forecast_config.ForecastFeatureConfig`` is one
    (a protocol, so this module does not import the config that imports it)."""

    freq: str
    min_lag: int
    lags: tuple[int, ...]
    rolling_windows: tuple[int, ...]
    rolling_stats: tuple[str, ...]
    seasonal_windows: tuple[tuple[int, int], ...]
    rolling_min_fraction: float
    use_expanding_mean: bool
    level_window: int
    use_yearly: bool


def seasonal_lag(min_lag: int, season: int) -> int:
    """Smallest multiple of ``season`` that is >= ``min_lag`` (keeps the same weekday / hour of day)."""
    return int(math.ceil(min_lag / season) * season)


def seasonal_unit(freq: str, season: int) -> str:
    """Short unit of a season in feature names: 24 hourly steps are a day ("d"), 7 days a week ("w")..."""
    unit = {("H", 24): "d", ("H", 168): "w", ("D", 7): "w", ("D", 364): "y", ("W", 52): "y"}
    return unit.get((base_freq(freq), int(season)), f"x{int(season)}")


def lag_feature_names(config: LagConfig) -> list[str]:
    """Names of the ``y_*`` columns ``lag_features`` computes for this configuration, in order."""
    m = config.min_lag
    names = [f"y_lag_{k}" for k in config.lags]
    names += [
        f"y_rolling_{stat}_{w}_lag_{m}" for w in config.rolling_windows for stat in config.rolling_stats
    ]
    names += [
        f"y_seasonal_rolling_mean_{k}{seasonal_unit(config.freq, s)}_lag_{seasonal_lag(m, s)}"
        for s, k in config.seasonal_windows
    ]
    if config.use_expanding_mean:
        names.append(f"y_expanding_mean_lag_{m}")
    return names + [name for name, _, _ in _yearly_specs(config)]


_YEAR = {"D": (364, 7), "W": (52, 3)}  # season length and the centred window of last year's smoothed value


def _yearly_specs(config: LagConfig) -> list[tuple[str, int, int]]:
    """``(name, first_lag, last_lag)`` of each yearly feature: it reads y[t-last_lag .. t-first_lag]."""
    year = _YEAR.get(base_freq(config.freq))
    if not getattr(config, "use_yearly", False) or year is None:
        return []
    season, c = year
    m, half = config.min_lag, c // 2
    specs = []
    if season >= m:
        specs.append((f"y_yoy_log_ratio_lag_{season}", season, season))
    if season - half >= m:
        specs.append((f"y_yoy_log_ratio_mean_{c}_lag_{season - half}", season - half, season + half))
    return specs


def grid_positions(series_id: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Block number, position within the block, block start and block end (inclusive) of each row.

    ``series_id`` must come in contiguous blocks (a frame sorted by series); raises ``ValueError`` otherwise.
    """
    values = (
        series_id.cat.codes.to_numpy()
        if isinstance(series_id.dtype, pd.CategoricalDtype)
        else pd.factorize(series_id)[0]
    )
    n = len(values)
    if n == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty, empty
    change = np.empty(n, dtype=bool)
    change[0] = True
    np.not_equal(values[1:], values[:-1], out=change[1:])
    block = np.cumsum(change) - 1
    starts = np.flatnonzero(change)
    if len(starts) != len(np.unique(values)):
        raise ValueError(
            "The frame must be sorted by (series_id, ds) so each series is one contiguous block; "
            f"found {len(starts)} blocks for {len(np.unique(values))} series. Fix: frame.sort_values(['series_id', 'ds'])."
        )
    ends = np.r_[starts[1:], n] - 1
    pos = np.arange(n) - starts[block]
    return block, pos, starts[block], ends[block]


def lag_features(frame: pd.DataFrame, config: LagConfig, rows: np.ndarray | None = None) -> pd.DataFrame:
    """The ``y_*`` columns of ``config`` for ``frame`` (float32, indexed like ``frame``; the input is not
    modified). ``features.forecast_frame`` joins them to the grid it builds.

    ``frame`` has ``series_id``, ``ds``, ``y`` and optionally ``open``, sorted by (series_id, ds) on a full
    regular grid of ``config.freq``; raises ``ValueError`` when it is not. With ``rows`` (positions into ``frame``), the features are computed for those rows only (index
    ``frame.index[rows]``); running sums still cover the whole frame, so every value is exactly the one the
    full computation gives. ``features.forecast_frame`` uses this to score a horizon without paying for the
    whole history.
    """
    missing = [c for c in ("series_id", "ds", "y") if c not in frame.columns]
    if missing:
        raise ValueError(f"lag_features needs columns {missing}; got {list(frame.columns)[:10]}.")
    block, pos, start, _ = grid_positions(frame["series_id"])
    _check_regular(frame["ds"], pos, config.freq)
    rows = np.arange(len(frame)) if rows is None else np.asarray(rows, dtype=np.int64)
    index = frame.index[rows]
    if len(rows) == 0:
        return pd.DataFrame(
            {name: np.zeros(0, dtype="float32") for name in lag_feature_names(config)}, index=index
        )
    at = _Gather(rows, pos[rows])

    y = frame["y"].to_numpy(dtype="float64", copy=True)
    if "open" in frame.columns:
        y[frame["open"].to_numpy() == 0] = np.nan
    observed = ~np.isnan(y)
    centre_all = _first_observed(y, observed, block, start)
    centre = centre_all[rows]
    x = np.where(observed, y - centre_all, 0.0)

    m = config.min_lag
    feats: dict[str, np.ndarray] = {}
    for k in config.lags:
        feats[f"y_lag_{k}"] = at(y, k, np.nan)

    sums = any(s in ("mean", "std") for s in config.rolling_stats) and len(config.rolling_windows)
    if sums or config.use_expanding_mean:
        csum = _group_cumsum(x, block)
        ccount = _block_cumcount(observed, start)
        csq = _group_cumsum(x * x, block) if "std" in config.rolling_stats and sums else None
        sum_m, count_m = at(csum, m, 0.0), at(ccount, m, 0)
    for w in config.rolling_windows:
        min_obs = max(1, math.ceil(config.rolling_min_fraction * w))
        if sums:
            s1 = sum_m - at(csum, m + w, 0.0)
            n = (count_m - at(ccount, m + w, 0)).astype("float64")
        for stat in config.rolling_stats:
            name = f"y_rolling_{stat}_{w}_lag_{m}"
            if stat == "mean":
                feats[name] = _safe_mean(s1, n, min_obs) + centre
            elif stat == "std":
                s2 = at(csq, m, 0.0) - at(csq, m + w, 0.0)
                feats[name] = _safe_std(s1, s2, n, max(2, min_obs))
            else:
                feats[name] = _padded_rolling(y, block, w, m, min_obs, stat)[rows]
    per_season: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for season, k in config.seasonal_windows:
        lag = seasonal_lag(m, season)
        if season not in per_season:  # running sums over the same phase (weekday, hour) of each series
            phase = block.astype(np.int64) * season + pos % season
            per_season[season] = (_group_cumsum(x, phase), _group_cumsum(observed.astype("float64"), phase))
        cs, cn = per_season[season]
        s1 = at(cs, lag, 0.0) - at(cs, lag + k * season, 0.0)
        n = at(cn, lag, 0.0) - at(cn, lag + k * season, 0.0)
        name = f"y_seasonal_rolling_mean_{k}{seasonal_unit(config.freq, season)}_lag_{lag}"
        feats[name] = _safe_mean(s1, n, max(1, math.ceil(config.rolling_min_fraction * k))) + centre
    if config.use_expanding_mean:
        feats[f"y_expanding_mean_lag_{m}"] = _safe_mean(sum_m, count_m.astype("float64"), 1) + centre
    specs = _yearly_specs(config)
    if specs:
        if not (sums or config.use_expanding_mean):
            csum, ccount = _group_cumsum(x, block), _block_cumcount(observed, start)
        feats.update(_yearly(specs, config, at, csum, ccount, y, centre))

    return pd.DataFrame({name: np.asarray(v, dtype="float32") for name, v in feats.items()}, index=index)


def _yearly(
    specs: list[tuple[str, int, int]],
    config: LagConfig,
    at: _Gather,
    csum: np.ndarray,
    ccount: np.ndarray,
    y: np.ndarray,
    centre: np.ndarray,
) -> dict[str, np.ndarray]:
    """The ``y_yoy_log_ratio_*`` features (see the module table) from the per-series running sums."""
    season = _YEAR[base_freq(config.freq)][0]
    w, m = config.level_window, config.min_lag
    n_level = (at(ccount, season + m, 0) - at(ccount, season + m + w, 0)).astype("float64")
    s_level = at(csum, season + m, 0.0) - at(csum, season + m + w, 0.0)
    level_then = _safe_mean(s_level, n_level, max(1, math.ceil(config.rolling_min_fraction * w))) + centre
    log_level = np.log1p(np.clip(level_then, 0.0, None))
    out = {}
    for name, first, last in specs:
        if first == last:
            value = at(y, first, np.nan)
        else:
            n = (at(ccount, first, 0) - at(ccount, last + 1, 0)).astype("float64")
            s1 = at(csum, first, 0.0) - at(csum, last + 1, 0.0)
            min_obs = max(1, math.ceil(config.rolling_min_fraction * (last - first + 1)))
            value = _safe_mean(s1, n, min_obs) + centre
        out[name] = np.log1p(np.clip(value, 0.0, None)) - log_level
    return out


class _Gather:
    """``values[row - k]`` for the requested rows when that row is in the same series (position >= k)."""

    def __init__(self, rows: np.ndarray, pos: np.ndarray):
        self.rows, self.pos = rows, pos

    def __call__(self, values: np.ndarray, k: int, fill: float) -> np.ndarray:
        valid = self.pos >= k
        taken = values[np.where(valid, self.rows - k, 0)]
        return np.where(valid, taken, fill)


# ---------------------------------------------------------------------------------------------------------


def _check_regular(ds: pd.Series, pos: np.ndarray, freq: str) -> None:
    if len(ds) < 2:
        return
    t = ds.to_numpy(dtype="datetime64[ns]").view("int64")
    step = step_length(freq).value
    diff = np.diff(t)
    bad = (pos[1:] > 0) & (diff != step)
    if bad.any():
        i = int(np.flatnonzero(bad)[0]) + 1
        raise ValueError(
            f"lag_features needs a full regular {freq!r} grid per series, but {int(bad.sum())} consecutive rows "
            f"are not one step apart (first at row {i}: {ds.iloc[i - 1]} -> {ds.iloc[i]}). Fix: build the frame "
            "with features.forecast_frame, which inserts the missing steps."
        )


def _group_cumsum(values: np.ndarray, group: np.ndarray) -> np.ndarray:
    # per-group running sums: a series' sums never depend on another series' values
    return pd.Series(values).groupby(group, sort=False).cumsum().to_numpy(dtype="float64")


def _block_cumcount(observed: np.ndarray, start: np.ndarray) -> np.ndarray:
    # integer counts are exact, so one global cumulative sum minus the block's offset is safe
    c = np.cumsum(observed, dtype=np.int64)
    before = np.where(start > 0, c[np.maximum(start - 1, 0)], 0)
    return c - before


def _first_observed(y: np.ndarray, observed: np.ndarray, block: np.ndarray, start: np.ndarray) -> np.ndarray:
    n = len(y)
    if n == 0:
        return np.zeros(0)
    idx = np.where(observed, np.arange(n), n)
    starts = np.unique(start)
    first = np.minimum.reduceat(idx, starts)
    value = np.where(first < n, y[np.minimum(first, n - 1)], 0.0)
    return value[block]


def _safe_mean(s1: np.ndarray, n: np.ndarray, min_obs: int) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n >= min_obs, s1 / n, np.nan)


def _safe_std(s1: np.ndarray, s2: np.ndarray, n: np.ndarray, min_obs: int) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        var = (s2 - s1 * s1 / n) / (n - 1)
        return np.where(n >= min_obs, np.sqrt(np.clip(var, 0.0, None)), np.nan)


def _padded_rolling(y: np.ndarray, block: np.ndarray, w: int, m: int, min_obs: int, stat: str) -> np.ndarray:
    # series separated by w + m missing values, so no window ever reaches into the previous series
    pad = w + m
    n = len(y)
    where = np.arange(n) + (block.astype(np.int64) + 1) * pad
    padded = np.full(n + (int(block.max(initial=-1)) + 2) * pad, np.nan)
    padded[where] = y
    rolled = getattr(pd.Series(padded).rolling(w, min_periods=min_obs), stat)().to_numpy()
    return rolled[where - m]
