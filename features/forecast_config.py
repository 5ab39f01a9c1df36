"""What the forecast feature frame contains: ``ForecastFeatureConfig`` and its defaults per frequency.

``features.forecast_frame`` builds the frame a config describes; ``features.lags`` computes its ``y_*``
features. The defaults (lags, rolling and seasonal windows, the cap of promo/holiday distances) depend on the
frequency and are filled in at construction, so ``to_dict()`` (logged to MLflow with every model) is explicit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import numpy as np

from features.calendar import base_freq
from features.lags import ROLLING_STATS, lag_feature_names

__all__ = ["ForecastFeatureConfig"]

_DEFAULTS: dict[str, dict[str, Any]] = {
    "D": {
        "lags": (1, 2, 3, 4, 5, 6, 7, 14, 21, 28, 35, 42, 49, 56, 91, 182, 364),
        "rolling_windows": (7, 28, 91, 364),
        "seasonal_windows": ((7, 4), (7, 8), (7, 52)),
        "event_cap": 60,
        "level_window": 28,
        "covariate_lags": (),
    },
    "H": {
        "lags": (1, 2, 3, 4, 5, 6, 12, 24, 48, 72, 168, 336),
        "rolling_windows": (24, 168, 672),
        "seasonal_windows": ((24, 7), (168, 4)),
        "event_cap": 168,
        "level_window": 168,
        "covariate_lags": (),
    },
    "W": {
        "lags": (1, 2, 3, 4, 8, 13, 26, 52),
        "rolling_windows": (4, 8, 13, 26, 52),
        "seasonal_windows": ((52, 2),),
        "event_cap": 13,
        "level_window": 8,
        "covariate_lags": (1, 2),
    },
}


@dataclass(frozen=True)
class ForecastFeatureConfig:
    """What the forecast frame contains. Leave ``lags``/``rolling_windows``/``seasonal_windows``/``event_cap``
    as ``None`` for the defaults of ``freq`` (filled in at construction, so ``to_dict()`` is explicit).

    Parameters
    ----------
    freq : "H", "D", "W" or an anchored "W-XXX" (the anchor is checked against / inferred from the data).
    min_lag : every ``y``-derived feature at t uses only ``y`` at ``t - min_lag`` or earlier.
    lags : ``y_lag_k`` steps; all must be >= ``min_lag``. Default (daily): 1..7, weekly multiples to 56, 91,
        182, 364 (those below ``min_lag`` dropped and ``min_lag`` itself added).
    rolling_windows, rolling_stats : ``y_rolling_{stat}_{w}_lag_{min_lag}``; stats from mean, std, max, min.
    seasonal_windows : ``(season_length, n_seasons)`` pairs for same-weekday / same-hour means.
    rolling_min_fraction : share of a window that must be observed for a window statistic.
    use_* : switch a feature family off.
    event_cap : cap (in steps) of promo/holiday distances and run lengths.
    level_window : steps of the recent level ``y_rolling_mean_{level_window}_lag_{min_lag}`` that the target
        transforms of ``training.forecast.transforms`` scale by (``with_level()`` adds it to the rolling means;
        the defaults already hold it). Default D 28, W 8, H 168.
    use_yearly : last year's ramp relative to the level then (``y_yoy_log_ratio_*``, ``features.lags``; daily and
        weekly data, when the year lag is >= ``min_lag``). Off by default: on the one Online Retail cut with a
        year of history it did not pay (WAPE 0.326 with, 0.311 without); the ``yoy`` target transform turns it on.
    use_closures : days since the last closure (``open == 0``) and its length (``cal_closed_*``,
        ``features.closures``). Off by default: on 200 Rossmann stores it moved WAPE from 0.0796 to 0.0840
        (cut 2015-05-08) and from 0.0844 to 0.0835 (cut 2014-06-19), not a gain to rely on.
    use_holiday_weeks : weekly data only: Thanksgiving/Christmas/Easter week flags and weeks until each
        (``features.holidays.holiday_week_features``).
    covariate_lags : steps by which numeric covariates (markdowns, promo flags) are also lagged
        (``<name>_lag_<k>``, ``features.covariate_lags``); default (1, 2) for weekly data, none otherwise.
    weather_* : thresholds of the derived weather flags (degrees C, mm).
    """

    freq: str = "D"
    min_lag: int = 1
    lags: tuple[int, ...] | None = None
    rolling_windows: tuple[int, ...] | None = None
    rolling_stats: tuple[str, ...] = ("mean", "std")
    seasonal_windows: tuple[tuple[int, int], ...] | None = None
    rolling_min_fraction: float = 0.5
    use_lags: bool = True
    use_expanding_mean: bool = True
    use_calendar: bool = True
    use_covariates: bool = True
    use_weather: bool = True
    use_static: bool = True
    event_cap: int | None = None
    level_window: int | None = None
    use_yearly: bool = False
    use_holiday_weeks: bool = True
    use_closures: bool = False
    covariate_lags: tuple[int, ...] | None = None
    weather_cold_max_c: float = 0.0
    weather_heat_min_c: float = 30.0
    weather_rain_min_mm: float = 1.0

    def __post_init__(self) -> None:
        defaults = _DEFAULTS[base_freq(self.freq)]
        m = _positive_int("min_lag", self.min_lag)
        object.__setattr__(self, "min_lag", m)
        if self.lags is None:
            lags = [k for k in defaults["lags"] if k >= m]
            if len(lags) < len(defaults["lags"]):
                lags.append(m)
        else:
            lags = [_positive_int("lags", k) for k in self.lags]
            short = [k for k in lags if k < m]
            if short:
                raise ValueError(
                    f"lags {short} are shorter than min_lag={m}, so they would read y after the allowed cut-off. "
                    "Fix: drop them, or build the config with for_horizon(h), which drops them for you."
                )
        object.__setattr__(self, "lags", tuple(sorted(set(lags))))
        level = defaults["level_window"] if self.level_window is None else self.level_window
        object.__setattr__(self, "level_window", _positive_int("level_window", level))
        windows = defaults["rolling_windows"] if self.rolling_windows is None else self.rolling_windows
        object.__setattr__(
            self, "rolling_windows", tuple(sorted({_positive_int("rolling_windows", w) for w in windows}))
        )
        bad = [s for s in self.rolling_stats if s not in ROLLING_STATS]
        if bad:
            raise ValueError(f"rolling_stats must be among {ROLLING_STATS}. Got {bad} instead.")
        object.__setattr__(self, "rolling_stats", tuple(dict.fromkeys(self.rolling_stats)))
        seasonal = defaults["seasonal_windows"] if self.seasonal_windows is None else self.seasonal_windows
        pairs = []
        for pair in seasonal:
            if len(pair) != 2 or int(pair[0]) < 2 or int(pair[1]) < 1:
                raise ValueError(
                    f"seasonal_windows holds (season_length >= 2, n_seasons >= 1) pairs such as (7, 4). Got {pair!r}."
                )
            pairs.append((int(pair[0]), int(pair[1])))
        object.__setattr__(self, "seasonal_windows", tuple(dict.fromkeys(pairs)))
        if not 0 < float(self.rolling_min_fraction) <= 1:
            raise ValueError(
                f"rolling_min_fraction must be in (0, 1]. Got {self.rolling_min_fraction!r} instead."
            )
        cap = defaults["event_cap"] if self.event_cap is None else self.event_cap
        object.__setattr__(self, "event_cap", _positive_int("event_cap", cap))
        cov_lags = defaults["covariate_lags"] if self.covariate_lags is None else self.covariate_lags
        object.__setattr__(
            self, "covariate_lags", tuple(sorted({_positive_int("covariate_lags", k) for k in cov_lags}))
        )

    @property
    def level_name(self) -> str:
        """The column of the recent level the target transforms scale by."""
        return f"y_rolling_mean_{self.level_window}_lag_{self.min_lag}"

    def for_horizon(self, h: int) -> ForecastFeatureConfig:
        """A copy whose ``y`` features all start at >= ``h`` steps back (direct strategy for horizon ``h``).

        ``min_lag`` becomes ``max(min_lag, h)``; lags shorter than that are dropped and, if any was dropped, the
        lag ``h`` itself is added (the freshest value a model for horizon ``h`` may use); longer lags are kept.
        Rolling and expanding statistics are then computed on ``y`` shifted by the new ``min_lag``.
        """
        h = _positive_int("h", h)
        m = max(self.min_lag, h)
        lags = [k for k in self.lags if k >= m]
        if len(lags) < len(self.lags):
            lags.append(m)
        return replace(self, min_lag=m, lags=tuple(sorted(set(lags))))

    def with_level(self) -> ForecastFeatureConfig:
        """This config, or a copy whose rolling means include the level window (what the transforms need)."""
        if self.level_window in self.rolling_windows and "mean" in self.rolling_stats:
            return self
        return replace(
            self,
            rolling_windows=(*self.rolling_windows, self.level_window),
            rolling_stats=("mean", *self.rolling_stats),
        )

    def feature_names_y(self) -> list[str]:
        """The ``y_*`` feature names this configuration produces (empty when ``use_lags`` is False)."""
        return lag_feature_names(self) if self.use_lags else []

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-able parameters (e.g. for MLflow); ``from_dict`` reverses it."""
        d = asdict(self)
        d["lags"] = list(self.lags)
        d["rolling_windows"] = list(self.rolling_windows)
        d["rolling_stats"] = list(self.rolling_stats)
        d["seasonal_windows"] = [list(p) for p in self.seasonal_windows]
        d["covariate_lags"] = list(self.covariate_lags)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ForecastFeatureConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"Unknown ForecastFeatureConfig parameters {unknown}; known: {sorted(known)}.")
        kw = dict(d)
        for k in ("lags", "rolling_windows", "rolling_stats", "covariate_lags"):
            if kw.get(k) is not None:
                kw[k] = tuple(kw[k])
        if kw.get("seasonal_windows") is not None:
            kw["seasonal_windows"] = tuple(tuple(p) for p in kw["seasonal_windows"])
        return cls(**kw)


# ---------------------------------------------------------------------------------------------------------


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or int(value) < 1:
        raise ValueError(f"{name} must be a positive int (steps). Got {value!r} instead.")
    return int(value)
