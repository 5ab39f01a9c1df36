"""The forecast feature frame: one row per (series, step), the same code for training and for serving.

``build_training_frame`` and ``build_future_frame`` both call ``_assemble``, which

1. puts every series on its full regular grid (``infer_freq``): missing steps are inserted with ``y``
   missing (counted as ``gap_rows_inserted``); for a forecast, the grid runs to ``origin + horizon`` and every
   ``y`` after the origin is treated as unknown;
2. computes every feature family once on that grid: ``y`` lags/rolling statistics (``features.lags``; closed
   rows and missing ``y`` are unobserved, never 0), calendar (``features.calendar``), covariates with promo and
   holiday signals (``features.covariates``), weather (``features.weather``), static attributes;
3. selects the rows asked for: the history (training) or the horizon steps ``origin+1 .. origin+horizon``
   (forecast), and turns string features into categories with a stable list.

So a model never sees a feature computed two different ways. The frame's columns are ``series_id``
(category), ``ds``, ``y``, ``open`` and then the features; ``feature_columns(frame)`` lists the features and
``feature_family(name)`` names the family each one is explained under.

Direct multi-step forecasting: a model for horizon bucket ``h`` is trained on
``build_training_frame(series, config=config.for_horizon(h))``, whose ``y``-derived features all use ``y`` at
``t - h`` or earlier, and predicts from ``build_future_frame(..., config=config.for_horizon(h))``: for steps
``1..h`` after the origin every ``y`` feature then only reads ``y`` up to the origin. (Steps beyond
``config.min_lag`` are allowed, their nearest lags are simply missing; they are counted as
``future_rows_beyond_min_lag``.)
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from features.calendar import base_freq, calendar_features, infer_freq, step_length
from features.closures import closure_features
from features.covariate_lags import covariate_lag_features
from features.covariates import (
    apply_categories,
    categorical_as_trained,
    covariate_features,
    learn_categories,
    static_features,
)
from features.errors import DataValidationError, Problem
from features.forecast_config import ForecastFeatureConfig
from features.holidays import holiday_week_features
from features.lags import lag_features
from features.weather import WEATHER_DATE_MISSING, WEATHER_NO_REGION, weather_features

__all__ = [
    "FrameReport",
    "build_training_frame",
    "build_future_frame",
    "design_matrix",
    "feature_columns",
    "feature_family",
    "FEATURE_FAMILIES",
    "infer_freq",
]

FEATURE_FAMILIES = ("level/lags", "calendar", "promo", "holiday", "weather", "static", "covariates")


@dataclass
class FrameReport:
    """What building a frame did: sizes, the features, and a count of everything inserted, masked or missing.

    ``counts`` keys (always present): ``rows``, ``series``, ``gap_rows_inserted`` (history steps missing from
    the series table), ``closed_rows`` (``open == 0``), ``missing_y_rows`` (open history rows whose ``y`` is
    missing in the input); others appear when non-zero, e.g. ``y_after_origin_ignored``,
    ``covariate_rows_missing``, ``weather_rows_missing_history`` / ``_future``, ``weather_series_without_region``,
    ``unknown_category_values[<column>]``. ``categories`` are the category lists used (persist them with the
    model and pass them to ``build_future_frame(categories=...)`` to count unseen values at serving time).
    """

    kind: Literal["training", "future"]
    freq: str
    feature_names: list[str] = field(default_factory=list)
    origin: pd.Timestamp | None = None
    horizon: int | None = None
    first_ds: pd.Timestamp | None = None
    last_ds: pd.Timestamp | None = None
    counts: dict[str, int] = field(default_factory=dict)
    categories: dict[str, list[str]] = field(default_factory=dict)
    seconds: float = 0.0

    def count(self, what: str, n: int | np.integer, *, keep_zero: bool = False) -> None:
        if n or keep_zero:
            self.counts[what] = self.counts.get(what, 0) + int(n)

    @property
    def n_rows(self) -> int:
        return self.counts.get("rows", 0)

    @property
    def n_series(self) -> int:
        return self.counts.get("series", 0)

    @property
    def gap_rows_inserted(self) -> int:
        return self.counts.get("gap_rows_inserted", 0)

    @property
    def closed_rows(self) -> int:
        return self.counts.get("closed_rows", 0)

    def families(self) -> dict[str, int]:
        """Number of features per family."""
        out: dict[str, int] = {}
        for name in self.feature_names:
            fam = feature_family(name)
            out[fam] = out.get(fam, 0) + 1
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "freq": self.freq,
            "origin": None if self.origin is None else self.origin.isoformat(),
            "horizon": self.horizon,
            "first_ds": None if self.first_ds is None else self.first_ds.isoformat(),
            "last_ds": None if self.last_ds is None else self.last_ds.isoformat(),
            "feature_names": list(self.feature_names),
            "counts": dict(self.counts),
            "categories": {k: list(v) for k, v in self.categories.items()},
            "seconds": round(self.seconds, 3),
        }

    def __str__(self) -> str:
        span = f"{_day(self.first_ds)}..{_day(self.last_ds)}"
        head = (
            f"{self.kind} frame: {self.n_rows:,} rows, {self.n_series:,} series, freq {self.freq}, {span}"
            + (f", origin {_day(self.origin)} + {self.horizon} steps" if self.origin is not None else "")
            + f", built in {self.seconds:.1f}s"
        )
        fams = ", ".join(f"{k} {v}" for k, v in self.families().items())
        rest = ", ".join(f"{k}={v:,}" for k, v in self.counts.items() if k not in ("rows", "series"))
        return f"{head}\n  {len(self.feature_names)} features: {fams}\n  {rest}"


def build_training_frame(
    series: pd.DataFrame,
    covariates: pd.DataFrame | None = None,
    weather: pd.DataFrame | None = None,
    static: pd.DataFrame | None = None,
    config: ForecastFeatureConfig | None = None,
    *,
    categories: Mapping[str, list[str]] | None = None,
) -> tuple[pd.DataFrame, FrameReport]:
    """The feature frame of every history step of every series (validated input tables).

    All grid rows are returned, including inserted gaps (``y`` missing) and closed rows (``open == 0``);
    train on ``(open == 1) & y.notna()``. ``categories`` (optional) fixes the category lists.
    """
    config = config or ForecastFeatureConfig()
    return _assemble(series, config, covariates, weather, static, kind="training", categories=categories)


def build_future_frame(
    series: pd.DataFrame,
    horizon: int,
    config: ForecastFeatureConfig | None = None,
    covariates: pd.DataFrame | None = None,
    weather: pd.DataFrame | None = None,
    static: pd.DataFrame | None = None,
    origin: pd.Timestamp | str | None = None,
    *,
    categories: Mapping[str, list[str]] | None = None,
    keys: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, FrameReport]:
    """The feature frame of steps ``origin+1 .. origin+horizon`` for every series, with ``y`` missing.

    ``origin`` defaults to the latest ``ds`` with an observed ``y``. Every ``y`` after the origin is ignored
    (counted), so passing the full table for a backtest is safe; rows of ``series`` after the origin still
    provide ``open`` (known closures). Series whose history stops before the origin get rows too (their lags
    read whatever history exists). Raises ``DataValidationError`` when covariates are given but do not cover
    every forecast row. ``keys`` (``series_id, ds``) keeps only those forecast rows: the others are neither
    returned nor need covariates (a series with a gap in the horizon, such as stores closed for months).
    """
    if (
        isinstance(horizon, bool)
        or not isinstance(horizon, (int, np.integer))
        or not 1 <= int(horizon) <= 100_000
    ):
        raise ValueError(f"The 'horizon' parameter must be a positive int (steps). Got {horizon!r} instead.")
    config = config or ForecastFeatureConfig()
    return _assemble(
        series,
        config,
        covariates,
        weather,
        static,
        kind="future",
        origin=origin,
        horizon=int(horizon),
        categories=categories,
        keys=keys,
    )


def feature_columns(frame: pd.DataFrame) -> list[str]:
    """The feature columns of a forecast frame, in order (``series_id`` included; ``ds``, ``y``, ``open`` not)."""
    return [c for c in frame.columns if _family_or_none(c) is not None]


def feature_family(name: str) -> str:
    """The explanation family of a feature: one of ``FEATURE_FAMILIES``."""
    fam = _family_or_none(name)
    if fam is None:
        raise ValueError(
            f"{name!r} is not a forecast feature: feature names are series_id or start with y_, cal_, promo, "
            "holiday, weather_, static_ or cov_."
        )
    return fam


def design_matrix(frame: pd.DataFrame, trainable_only: bool) -> tuple[pd.DataFrame, np.ndarray]:
    """The model's inputs ``X`` (the frame without ``ds, y, open, step``) and ``y`` as float64; with
    ``trainable_only`` only open rows with an observed ``y``."""
    if trainable_only:
        frame = frame.loc[(frame["open"] == 1) & frame["y"].notna()]
    X = frame.drop(columns=[c for c in ("ds", "y", "open", "step") if c in frame.columns])
    return X, frame["y"].to_numpy(dtype="float64")


# ---------------------------------------------------------------------------------------------------------


def _family_or_none(name: str) -> str | None:
    if name == "series_id" or name.startswith("y_"):
        return "level/lags"
    for prefix, fam in (
        ("cal_", "calendar"),
        ("promo", "promo"),
        ("holiday", "holiday"),
        ("weather_", "weather"),
        ("static_", "static"),
        ("cov_", "covariates"),
    ):
        if name.startswith(prefix):
            return fam
    return None


def _assemble(
    series: pd.DataFrame,
    config: ForecastFeatureConfig,
    covariates: pd.DataFrame | None,
    weather: pd.DataFrame | None,
    static: pd.DataFrame | None,
    *,
    kind: Literal["training", "future"],
    origin: pd.Timestamp | str | None = None,
    horizon: int | None = None,
    categories: Mapping[str, list[str]] | None = None,
    keys: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, FrameReport]:
    t_start = time.perf_counter()
    if not isinstance(config, ForecastFeatureConfig):
        raise TypeError(f"config must be a ForecastFeatureConfig. Got {type(config).__name__} instead.")
    _check_series(series)
    freq = infer_freq(series["ds"], config.freq)
    step = step_length(freq).value
    report = FrameReport(kind=kind, freq=freq, horizon=horizon)

    sid = series["series_id"].astype("string").to_numpy(dtype=object)
    ds = series["ds"].to_numpy(dtype="datetime64[ns]").view(np.int64)
    y = series["y"].to_numpy(dtype="float64", na_value=np.nan).copy()
    is_open = (
        series["open"].fillna(1).to_numpy().astype(np.int8)
        if "open" in series.columns
        else np.ones(len(series), dtype=np.int8)
    )

    origin_ns = end_ns = None
    if kind == "future":
        origin_ns = _origin(origin, ds, y, step)
        end_ns = origin_ns + int(horizon) * step
        after = ds > origin_ns
        report.count("y_after_origin_ignored", np.sum(after & ~np.isnan(y)))
        report.count("rows_after_horizon_ignored", np.sum(ds > end_ns))
        y[after] = np.nan
        keep = ds <= end_ns
        sid, ds, y, is_open = sid[keep], ds[keep], y[keep], is_open[keep]
        report.origin = pd.Timestamp(origin_ns)

    cats = pd.Index(sorted(pd.unique(sid)), dtype=object)
    codes = cats.get_indexer(sid)
    by_series = pd.Series(ds).groupby(codes)
    first = by_series.min().to_numpy()
    last = by_series.max().to_numpy()
    if kind == "future":
        lo = np.minimum(first, origin_ns + step)
        hi = np.full(len(cats), end_ns, dtype=np.int64)
        observed_last = (
            pd.Series(np.where(np.isnan(y), np.iinfo(np.int64).min, ds)).groupby(codes).max().to_numpy()
        )
        report.count("series_without_history", np.sum(observed_last == np.iinfo(np.int64).min))
        report.count(
            "series_history_ends_before_origin",
            np.sum((observed_last < origin_ns) & (observed_last != np.iinfo(np.int64).min)),
        )
        report.count("future_rows_beyond_min_lag", len(cats) * max(0, int(horizon) - config.min_lag))
    else:
        lo, hi = first, last

    use_cov = covariates is not None and config.use_covariates and len(covariates) > 0
    ext_lo, ext_hi = _context_extension(covariates if use_cov else None, lo, hi, step, config.event_cap, freq)
    glo, ghi = lo - ext_lo * step, hi + ext_hi * step
    length = (ghi - glo) // step + 1
    offsets = np.r_[0, np.cumsum(length)[:-1]].astype(np.int64)
    total = int(length.sum())
    block = np.repeat(np.arange(len(cats)), length)
    gds = glo[block] + (np.arange(total) - offsets[block]) * step
    at = offsets[codes] + (ds - glo[codes]) // step
    present = np.zeros(total, dtype=bool)
    present[at] = True
    if int(present.sum()) != len(at):
        raise ValueError(
            f"series has {len(at) - int(present.sum())} duplicate (series_id, ds) rows. Fix: validate the table "
            "(features.validation.validate) and keep one row per series and step."
        )
    gy = np.full(total, np.nan)
    gy[at] = y
    gopen = np.ones(total, dtype=np.int8)
    gopen[at] = is_open
    in_range = (gds >= lo[block]) & (gds <= hi[block])
    future_row = gds > origin_ns if kind == "future" else np.zeros(total, dtype=bool)
    select = in_range & future_row if kind == "future" else in_range
    if keys is not None:
        select &= _grid_mask(keys, cats, glo, ghi, offsets, step, total)
    grid = pd.DataFrame(
        {
            "series_id": pd.Categorical.from_codes(block, categories=cats),
            "ds": gds.view("datetime64[ns]"),
            "y": gy,
            "open": gopen,
        }
    )

    # Features are computed on the whole grid (so running sums and runs see all history and look-ahead) and
    # kept for the selected rows; the cheap row-wise families are computed for the selected rows only.
    rows = np.flatnonzero(select)
    every_row = len(rows) == total

    def selected(df: pd.DataFrame) -> pd.DataFrame:
        return df if every_row else df.iloc[rows].reset_index(drop=True)

    out_grid = selected(grid)
    parts: list[pd.DataFrame] = [out_grid]
    cov_parts = None
    if use_cov:
        if categories is not None:
            covariates = categorical_as_trained(covariates, categories)
        cov_all, covered, cov_counts = covariate_features(grid, covariates, freq, config.event_cap)
        for k, v in cov_counts.items():
            report.count(k, v)
        if kind == "future":
            _require_covariates(grid, select & ~covered, origin_ns, end_ns, step)
        report.count("covariate_rows_missing", np.sum(select & ~future_row & ~covered))
        if config.covariate_lags:
            cov_all = pd.concat(
                [cov_all, covariate_lag_features(grid, cov_all, config.covariate_lags)], axis=1
            )
        cov_parts = selected(cov_all)
    if config.use_lags:
        parts.append(lag_features(grid, config, None if every_row else rows).reset_index(drop=True))
    if config.use_calendar:
        parts.append(calendar_features(out_grid["ds"], freq))
        if config.use_closures:
            parts.append(closure_features(grid, config.event_cap, None if every_row else rows, known=present))
    if config.use_holiday_weeks and base_freq(freq) == "W":
        parts.append(holiday_week_features(out_grid["ds"], config.event_cap))
    if cov_parts is not None:
        parts.append(cov_parts)
    if weather is not None and config.use_weather:
        wx, status, w_counts = weather_features(
            grid,
            weather,
            static,
            freq,
            cold_max_c=config.weather_cold_max_c,
            heat_min_c=config.weather_heat_min_c,
            rain_min_mm=config.weather_rain_min_mm,
        )
        parts.append(selected(wx))
        for k, v in w_counts.items():
            report.count(k, v)
        missing_date = select & (status == WEATHER_DATE_MISSING)
        report.count("weather_rows_missing_history", np.sum(missing_date & ~future_row))
        report.count("weather_rows_missing_future", np.sum(missing_date & future_row))
        report.count("weather_rows_without_region", np.sum(select & (status == WEATHER_NO_REGION)))
    if static is not None and config.use_static:
        st, s_counts = static_features(out_grid["series_id"], static)
        parts.append(st)
        for k, v in s_counts.items():
            report.count(k, v)
    frame = pd.concat(parts, axis=1, copy=False)

    string_cols = [c for c in frame.columns[4:] if not pd.api.types.is_numeric_dtype(frame[c])]
    learned = learn_categories(frame, string_cols)
    used = {
        c: list(categories[c]) if categories is not None and c in categories else learned[c]
        for c in string_cols
    }
    frame, unknown = apply_categories(frame, used)
    for col, n in unknown.items():
        report.count(f"unknown_category_values[{col}]", n)
    report.categories = used

    sel_open, sel_y = gopen[rows], gy[rows]
    sel_future, sel_present = future_row[rows], present[rows]
    report.count("rows", len(frame), keep_zero=True)
    report.count("series", frame["series_id"].nunique(), keep_zero=True)
    report.count("gap_rows_inserted", np.sum(~sel_present & ~sel_future), keep_zero=True)
    report.count("closed_rows", np.sum(sel_open == 0), keep_zero=True)
    report.count(
        "missing_y_rows",
        np.sum(sel_present & ~sel_future & (sel_open == 1) & np.isnan(sel_y)),
        keep_zero=True,
    )
    if cov_parts is not None:
        raw = [
            c for c in cov_parts.columns if (c.startswith("cov_") or c.endswith("_flag")) and "_lag_" not in c
        ]
        report.count("covariate_values_missing", int(frame[raw].isna().to_numpy().sum()) if raw else 0)
    report.feature_names = feature_columns(frame)
    if len(frame):
        report.first_ds, report.last_ds = pd.Timestamp(frame["ds"].min()), pd.Timestamp(frame["ds"].max())
    report.seconds = time.perf_counter() - t_start
    return frame, report


def _grid_mask(
    keys: pd.DataFrame,
    cats: pd.Index,
    glo: np.ndarray,
    ghi: np.ndarray,
    offsets: np.ndarray,
    step: int,
    total: int,
) -> np.ndarray:
    """The grid rows named by ``keys`` (``series_id, ds``); keys of other series or off the grid mark nothing."""
    code = cats.get_indexer(keys["series_id"].astype("string").to_numpy(dtype=object))
    kds = pd.to_datetime(keys["ds"]).to_numpy(dtype="datetime64[ns]").view(np.int64)
    ok = code >= 0
    code, kds = code[ok], kds[ok]
    ok = (kds >= glo[code]) & (kds <= ghi[code]) & ((kds - glo[code]) % step == 0)
    mask = np.zeros(total, dtype=bool)
    mask[offsets[code[ok]] + (kds[ok] - glo[code[ok]]) // step] = True
    return mask


def _check_series(series: pd.DataFrame) -> None:
    if not isinstance(series, pd.DataFrame):
        raise TypeError(f"series must be a pandas DataFrame. Got {type(series).__name__} instead.")
    missing = [c for c in ("series_id", "ds", "y") if c not in series.columns]
    if missing:
        raise ValueError(
            f"series needs columns {missing}; got {list(series.columns)[:10]}. Fix: validate it first."
        )
    if series.empty:
        raise ValueError("series has no rows. Pass a non-empty, validated series table.")
    if not pd.api.types.is_datetime64_any_dtype(series["ds"]):
        raise TypeError(
            f"series.ds must be datetime64. Got {series['ds'].dtype}. Fix: run features.validation.validate(df, 'series')."
        )
    bad = int(series["series_id"].isna().sum() + series["ds"].isna().sum())
    if bad:
        raise ValueError(
            f"series has {bad} missing series_id/ds values. Fix: run features.validation.validate first."
        )


def _origin(origin: pd.Timestamp | str | None, ds: np.ndarray, y: np.ndarray, step: int) -> int:
    if origin is None:
        observed = ~np.isnan(y)
        if not observed.any():
            raise ValueError(
                "series has no observed y, so there is no default forecast origin. Fix: pass origin=."
            )
        return int(ds[observed].max())
    ts = pd.Timestamp(origin)
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    value = ts.as_unit("ns").value
    if (value - int(ds.min())) % step:
        raise ValueError(
            f"origin {ts} is not on the series' grid (steps of {pd.Timedelta(step)} from {pd.Timestamp(int(ds.min()))}). "
            "Fix: pass an origin that is one of the grid's timestamps."
        )
    return value


def _context_extension(
    covariates: pd.DataFrame | None, lo: np.ndarray, hi: np.ndarray, step: int, cap: int, freq: str
) -> tuple[np.ndarray, np.ndarray]:
    """Extra grid steps before/after each series (up to ``cap``, where covariates exist) so that promo/holiday
    distances near the ends of the selected rows see the covariates beyond them. These rows are never output."""
    zeros = np.zeros(len(lo), dtype=np.int64)
    if covariates is None:
        return zeros, zeros
    c = covariates["ds"].dropna()
    cmin = int(c.min().value)
    cmax = int(c.max().value)
    if base_freq(freq) == "H" and (c == c.dt.normalize()).all():
        cmax += pd.Timedelta(days=1).value - step  # daily covariates cover the whole day
    ext_lo = np.clip((lo - cmin) // step, 0, cap)
    ext_hi = np.clip((cmax - hi) // step, 0, cap)
    return ext_lo.astype(np.int64), ext_hi.astype(np.int64)


def _require_covariates(
    grid: pd.DataFrame, missing: np.ndarray, origin_ns: int, end_ns: int, step: int
) -> None:
    if not missing.any():
        return
    rows = grid.loc[missing, ["series_id", "ds"]]
    n_series = rows["series_id"].nunique()
    examples = [
        {"series_id": str(s), "ds": pd.Timestamp(d).isoformat()}
        for s, d in rows.head(3).itertuples(index=False)
    ]
    first_step = pd.Timestamp(origin_ns + step)
    raise DataValidationError(
        [
            Problem(
                table="covariates",
                column="ds",
                issue=(
                    f"covariates are missing for {len(rows)} forecast rows of {n_series} series "
                    f"(series {_short(rows['series_id'].unique())}, dates {_day(rows['ds'].min())}..{_day(rows['ds'].max())})"
                ),
                fix=(
                    f"pass covariates through the horizon: a row per date from {_day(first_step)} through "
                    f"{_day(pd.Timestamp(end_ns))}, either without series_id (applies to every series) or per series"
                ),
                n_rows=len(rows),
                examples=examples,
            )
        ]
    )


def _short(values: Any, k: int = 5) -> str:
    vals = [str(v) for v in list(values)[:k]]
    more = len(values) - k
    return ", ".join(vals) + (f" and {more} more" if more > 0 else "")


def _day(ts: pd.Timestamp | None) -> str:
    if ts is None or pd.isna(ts):
        return "-"
    ts = pd.Timestamp(ts)
    return str(ts.date()) if ts == ts.normalize() else str(ts)
