"""Weather features, joined to each series through ``static.region``.

Weather is given per region and day. Every numeric column becomes ``weather_<name>``; string columns
(e.g. "Rain-Snow") become categories. The conventional columns ``temp_mean``, ``temp_max`` and ``precip_mm``
also drive derived signals, computed per region on a full daily calendar (days missing from the table are
missing, never interpolated):

===========================  =========================================================================
feature                       value on day d
===========================  =========================================================================
weather_temp_drop_3d          temp_mean(d) - mean(temp_mean(d-1), temp_mean(d-2), temp_mean(d-3))
                              (positive = warmer than the last three days; needs all four days)
weather_cold_flag             temp_max(d) <= ``cold_max_c`` (default 0 C: an "ice day")
weather_heat_flag             temp_max(d) >= ``heat_min_c`` (default 30 C: a "hot day")
weather_rain_flag             precip_mm(d) >= ``rain_min_mm`` (default 1.0 mm)
weather_precip_mm_3d          precip_mm(d) + precip_mm(d-1) + precip_mm(d-2) (needs all three days)
===========================  =========================================================================

The weather of day d is the weather *of* that day (an observation in the history, a weather forecast in
production); derived signals only look back from d, never after it, so changing the weather after a date
never changes a feature at or before it.

Frequencies: daily series join by date; hourly series take the weather of their calendar day; weekly series
take the mean over the 7 days ending at ``ds`` (pandas' ``resample("W-...")`` labels a week by its last day),
with at least 4 of the 7 days present (string columns are not used for weekly series).

Series without a region, or whose region has no weather, get missing weather features; so do dates the weather
table does not cover (typically the far end of a forecast horizon). Everything missing is counted.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.calendar import base_freq
from features.covariates import category_codes, lookup_rows, snake_case

__all__ = [
    "derive_weather",
    "weather_features",
    "WEATHER_PRESENT",
    "WEATHER_DATE_MISSING",
    "WEATHER_NO_REGION",
]

WEATHER_PRESENT, WEATHER_DATE_MISSING, WEATHER_NO_REGION = 0, 1, 2
_DAY = pd.Timedelta(days=1).value


def derive_weather(
    weather: pd.DataFrame, *, cold_max_c: float = 0.0, heat_min_c: float = 30.0, rain_min_mm: float = 1.0
) -> pd.DataFrame:
    """Per region, on a full daily calendar: ``region``, ``ds`` and every ``weather_*`` feature.

    Raises ``ValueError`` when ``ds`` has a time of day (weather must be daily) or a column is missing.
    """
    missing = [c for c in ("region", "ds") if c not in weather.columns]
    if missing:
        raise ValueError(f"The weather table needs columns {missing}; got {list(weather.columns)[:10]}.")
    w = weather.loc[weather["region"].notna()]
    ds = w["ds"]
    off = ds != ds.dt.normalize()
    if off.any():
        raise ValueError(
            f"Weather must be daily, but {int(off.sum())} rows have a time of day (e.g. {[str(v) for v in ds[off].head(3)]}). "
            "Fix: aggregate the weather per region and day."
        )
    region = w["region"].astype("string")
    regions = pd.Index(sorted(region.unique()))
    r_code = regions.get_indexer(region).astype(np.int64)
    day = ds.to_numpy(dtype="datetime64[ns]").view(np.int64) // _DAY
    first = pd.Series(day).groupby(r_code).min().reindex(range(len(regions))).to_numpy()
    last = pd.Series(day).groupby(r_code).max().reindex(range(len(regions))).to_numpy()
    length = last - first + 1
    offsets = np.r_[0, np.cumsum(length)[:-1]]
    block = np.repeat(np.arange(len(regions)), length)
    pos = np.arange(int(length.sum())) - offsets[block]
    where = offsets[r_code] + (day - first[r_code])
    out = pd.DataFrame(
        {
            "region": pd.array(regions.to_numpy()[block], dtype="string"),
            "ds": ((first[block] + pos) * _DAY).astype("datetime64[ns]"),
        }
    )

    cols = [c for c in w.columns if c not in ("region", "ds")]
    names = {c: snake_case(c) for c in cols}
    dup = pd.Series(list(names.values())).duplicated()
    if dup.any():
        raise ValueError(
            f"Weather columns {cols} give duplicate feature names after snake_case. Fix: rename them."
        )
    numeric: dict[str, np.ndarray] = {}
    for c in cols:
        values = _as_number(w[c])
        if values is None:
            codes, labels = category_codes(w[c])
            arr = np.full(len(out), -1, dtype=np.int64)
            arr[where] = codes
            out[f"weather_{names[c]}"] = pd.Categorical.from_codes(arr, categories=labels)
            continue
        arr = np.full(len(out), np.nan)
        arr[where] = values
        numeric[names[c]] = arr
        out[f"weather_{names[c]}"] = arr

    def back(a: np.ndarray, k: int) -> np.ndarray:  # value k days earlier in the same region
        res = np.full(len(a), np.nan)
        res[k:] = a[:-k] if k < len(a) else res[k:]
        res[pos < k] = np.nan
        return res

    if "temp_mean" in numeric:
        t = numeric["temp_mean"]
        out["weather_temp_drop_3d"] = t - (back(t, 1) + back(t, 2) + back(t, 3)) / 3.0
    if "temp_max" in numeric:
        t = numeric["temp_max"]
        out["weather_cold_flag"] = np.where(np.isnan(t), np.nan, (t <= cold_max_c).astype("float64"))
        out["weather_heat_flag"] = np.where(np.isnan(t), np.nan, (t >= heat_min_c).astype("float64"))
    if "precip_mm" in numeric:
        p = numeric["precip_mm"]
        out["weather_rain_flag"] = np.where(np.isnan(p), np.nan, (p >= rain_min_mm).astype("float64"))
        out["weather_precip_mm_3d"] = p + back(p, 1) + back(p, 2)
    for c in out.columns[2:]:
        if pd.api.types.is_float_dtype(out[c]):
            out[c] = out[c].astype("float32")
    return out


def weather_features(
    grid: pd.DataFrame,
    weather: pd.DataFrame,
    static: pd.DataFrame | None,
    freq: str,
    *,
    cold_max_c: float = 0.0,
    heat_min_c: float = 30.0,
    rain_min_mm: float = 1.0,
) -> tuple[pd.DataFrame, np.ndarray, dict[str, int]]:
    """Weather features for each grid row (``series_id`` category, ``ds``), joined via ``static.region``.

    Returns ``(features, status, counts)``: ``status[i]`` is ``WEATHER_PRESENT``, ``WEATHER_DATE_MISSING``
    (the region has weather but not for this date, or all its values are missing) or ``WEATHER_NO_REGION``;
    ``counts`` has ``weather_series_without_region`` and ``weather_series_region_unknown``.
    """
    daily = derive_weather(weather, cold_max_c=cold_max_c, heat_min_c=heat_min_c, rain_min_mm=rain_min_mm)
    base = base_freq(freq)
    if base == "W":
        daily = _weekly_means(daily)
    feature_cols = [c for c in daily.columns if c not in ("region", "ds")]
    numeric_cols = [c for c in feature_cols if pd.api.types.is_float_dtype(daily[c])]

    cats = grid["series_id"].cat.categories
    series_region = pd.Series(pd.NA, index=range(len(cats)), dtype="string")
    if static is not None and "region" in static.columns:
        s_code = pd.Categorical(static["series_id"].astype("string"), categories=cats).codes
        ok = s_code >= 0
        series_region.iloc[s_code[ok]] = static["region"].astype("string").to_numpy()[ok]
    regions = pd.Index(daily["region"].unique())
    reg_code = regions.get_indexer(series_region.fillna("\x00__none__"))
    counts = {
        "weather_series_without_region": int(series_region.isna().sum()),
        "weather_series_region_unknown": int((series_region.notna().to_numpy() & (reg_code < 0)).sum()),
    }

    g_code = grid["series_id"].cat.codes.to_numpy()
    row_region = reg_code[g_code].astype(np.int64)
    g_day = grid["ds"].to_numpy(dtype="datetime64[ns]").view(np.int64) // _DAY
    d_day = daily["ds"].to_numpy(dtype="datetime64[ns]").view(np.int64) // _DAY
    d_reg = regions.get_indexer(daily["region"]).astype(np.int64)
    idx = lookup_rows(g_day, d_day, (row_region, d_reg))

    feats = {}
    for c in feature_cols:
        col = daily[c]
        if c in numeric_cols:
            arr = col.to_numpy()
            feats[c] = np.where(idx >= 0, arr[np.maximum(idx, 0)] if len(arr) else np.nan, np.nan).astype(
                "float32"
            )
        else:
            codes = col.cat.codes.to_numpy()
            taken = np.where(idx >= 0, codes[np.maximum(idx, 0)] if len(codes) else -1, -1)
            feats[c] = pd.Categorical.from_codes(taken, categories=col.cat.categories)
    out = pd.DataFrame(feats, index=grid.index)

    status = np.full(len(grid), WEATHER_PRESENT, dtype=np.int8)
    missing = idx < 0
    if numeric_cols:  # a row whose every value is missing is as good as no row
        missing |= np.isnan(out[numeric_cols].to_numpy(dtype="float32")).all(axis=1)
    status[missing] = WEATHER_DATE_MISSING
    status[row_region < 0] = WEATHER_NO_REGION
    return out, status, counts


def _as_number(s: pd.Series) -> np.ndarray | None:
    if pd.api.types.is_bool_dtype(s) or (
        pd.api.types.is_numeric_dtype(s) and not isinstance(s.dtype, pd.CategoricalDtype)
    ):
        return s.to_numpy(dtype="float64", na_value=np.nan)
    parsed = pd.to_numeric(s, errors="coerce")
    if (parsed.notna() | s.isna()).all():
        return parsed.to_numpy(dtype="float64", na_value=np.nan)
    return None  # holds text: used as a category


def _weekly_means(daily: pd.DataFrame) -> pd.DataFrame:
    numeric = [c for c in daily.columns[2:] if pd.api.types.is_float_dtype(daily[c])]
    rolled = (
        daily.groupby("region", sort=False)[numeric]
        .rolling(7, min_periods=4)
        .mean()
        .reset_index(level=0, drop=True)
        .sort_index()
    )
    out = daily[["region", "ds"]].copy()
    for c in numeric:
        out[c] = rolled[c].astype("float32")
    return out
