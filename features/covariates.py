"""Known-in-advance covariates, their derived promo/holiday signals, and static attributes.

Covariates (promo calendars, holidays, discounts...) are known for the history *and* the forecast horizon.
Rows without ``series_id`` apply to every series; rows with one override them for that series (a per-series
value that is present wins over the global value of the same column and date).

Column naming (the first word says the family used in explanations):

===========================  ==================================================================================
covariate column             features (``u`` = ``days``/``hours``/``weeks`` by frequency; ``p`` = the prefix)
===========================  ==================================================================================
name contains "promo"        ``p_flag`` (value non-zero / not "0"), ``p_u_since_start``, ``p_u_until_end``,
(p = promo, promo2_active,   ``p_run_length`` (of the current run of consecutive promo steps, missing outside a
web_promo -> promo_web)      run), ``p_u_until_next`` / ``p_u_since_last`` (0 inside a run), plus ``p_type``
                             (category) when the column holds strings
name contains "holiday"      ``p_flag``, ``p_u_until_next``, ``p_u_since_last``, plus ``p_type`` for strings
(state_holiday -> holiday_   (e.g. Rossmann's "0"/"a"/"b"/"c")
state)
anything else                ``cov_<name>``: numbers as float, strings as category
===========================  ==================================================================================

Forward-looking features (``until_end``, ``until_next``, ``run_length``) read covariates *after* the row's
date. That is legitimate because covariates are known in advance (a promo calendar is planned), and it is what
makes "two days before Christmas" expressible; it is also why the horizon's covariates are required.
All distances are in steps and capped at ``cap``; a distance that cannot be known because the covariates
stop (or are missing) before ``cap`` steps is missing, never guessed. Missing covariate values count as
unknown, not as "no promo". All run-length arithmetic is vectorised over the grid (accumulate tricks per
series block), no loop over rows.

Static attributes are joined by ``series_id`` as ``static_<name>`` (strings become categories).
String columns are returned as pandas categories (labels normalised: whole floats lose ".0", blanks are
missing); ``learn_categories`` / ``apply_categories`` then fix a stable category list learned at training
time (values unseen in training become missing and are counted).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from features.calendar import base_freq, step_length, step_unit
from features.lags import grid_positions

__all__ = [
    "covariate_features",
    "covariate_kind",
    "static_features",
    "learn_categories",
    "apply_categories",
    "category_codes",
    "categorical_as_trained",
    "lookup_rows",
    "snake_case",
    "driver_flags",
]

_ZERO_LIKE = frozenset({"0", "false", "no", "none", "n", "f"})


def snake_case(name: str) -> str:
    """``StateHoliday`` -> ``state_holiday``, ``Max_TemperatureC`` -> ``max_temperature_c``."""
    s = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", str(name))
    s = re.sub(r"[^0-9a-zA-Z]+", "_", s).strip("_").lower()
    return re.sub(r"_+", "_", s) or "unnamed"


def covariate_kind(column: str) -> tuple[str, str]:
    """``(kind, prefix)`` of a covariate column: kind is "promo", "holiday" or "cov".

    >>> covariate_kind("StateHoliday")
    ('holiday', 'holiday_state')
    >>> covariate_kind("promo2_active")
    ('promo', 'promo2_active')
    """
    s = snake_case(column)
    for kind in ("promo", "holiday"):
        if kind in s:
            if s.startswith(kind):
                return kind, s
            rest = re.sub(r"_+", "_", s.replace(kind, "_")).strip("_")
            return kind, f"{kind}_{rest}"
    return "cov", f"cov_{s}"


def covariate_features(
    grid: pd.DataFrame, covariates: pd.DataFrame, freq: str, cap: int
) -> tuple[pd.DataFrame, np.ndarray, dict[str, int]]:
    """Join covariates to the grid and derive promo/holiday signals.

    ``grid`` has ``series_id`` (category) and ``ds``, sorted by (series_id, ds) on a full regular grid.
    Returns ``(features, covered, counts)``: features aligned to ``grid.index`` (numbers as float32, strings
    as categories); ``covered[i]`` is True when some covariate row (global or per-series) exists for row i;
    ``counts`` of ignored covariate rows.
    """
    if "ds" not in covariates.columns:
        raise ValueError(f"The covariates table needs a 'ds' column; got {list(covariates.columns)[:10]}.")
    value_cols = [c for c in covariates.columns if c not in ("ds", "series_id")]
    _check_unique_names(value_cols)
    counts: dict[str, int] = {}
    n = len(grid)
    unit = _join_unit(covariates["ds"], grid["ds"], freq)
    cats = grid["series_id"].cat.categories
    g_code = grid["series_id"].cat.codes.to_numpy().astype(np.int64)
    g_tick = _ticks(grid["ds"], unit)
    c_tick = _ticks(covariates["ds"], unit)

    if "series_id" in covariates.columns:
        own = covariates["series_id"].notna().to_numpy()
        c_code = pd.Categorical(covariates["series_id"].astype("string"), categories=cats).codes.astype(
            np.int64
        )
        counts["covariate_rows_for_unknown_series_ignored"] = int((own & (c_code < 0)).sum())
    else:
        own = np.zeros(len(covariates), dtype=bool)
        c_code = np.full(len(covariates), -1, dtype=np.int64)
    g_idx = lookup_rows(g_tick, c_tick, mask=~own) if (~own).any() else np.full(n, -1)
    p_idx = lookup_rows(g_tick, c_tick, (g_code, c_code), mask=own) if own.any() else np.full(n, -1)
    covered = (g_idx >= 0) | (p_idx >= 0)

    _, _, start, end = grid_positions(grid["series_id"])
    feats: dict[str, Any] = {}
    u = step_unit(freq)
    for col in value_cols:
        kind, prefix = covariate_kind(col)
        if _is_numeric(covariates[col]):
            values = covariates[col].to_numpy(dtype="float64", na_value=np.nan)
            joined = _take(values, g_idx, np.nan)
            if own.any():
                mine = _take(values, p_idx, np.nan)
                joined = np.where(np.isnan(mine), joined, mine)
            flag = np.where(np.isnan(joined), np.nan, (joined != 0).astype("float64"))
            if kind == "cov":
                feats[prefix] = joined.astype("float32")
                continue
        else:
            codes, labels = category_codes(covariates[col])
            joined = _take(codes, g_idx, -1)
            if own.any():
                mine = _take(codes, p_idx, -1)
                joined = np.where(mine >= 0, mine, joined)
            category = pd.Categorical.from_codes(joined, categories=labels)
            if kind == "cov":
                feats[prefix] = category
                continue
            feats[f"{prefix}_type"] = category
            label_flag = np.array([0.0 if v.lower() in _ZERO_LIKE else 1.0 for v in labels] + [np.nan])
            flag = label_flag[joined]  # code -1 picks the trailing NaN
        feats[f"{prefix}_flag"] = flag.astype("float32")
        if kind == "promo":
            since, until, length = _runs(flag, start, end, cap)
            feats[f"{prefix}_{u}_since_start"] = since
            feats[f"{prefix}_{u}_until_end"] = until
            feats[f"{prefix}_run_length"] = length
        feats[f"{prefix}_{u}_until_next"] = _until_next(flag, end, cap)
        feats[f"{prefix}_{u}_since_last"] = _since_last(flag, start, cap)
    return pd.DataFrame(feats, index=grid.index), covered, counts


def driver_flags(
    keys: pd.DataFrame, covariates: pd.DataFrame, *, with_coverage: bool = False
) -> pd.DataFrame | tuple[pd.DataFrame, np.ndarray]:
    """0/1 activity of each promo and holiday column of ``covariates`` at the rows of ``keys``.

    ``keys`` has ``series_id`` and ``ds`` at any frequency. Columns are named ``<prefix>_flag`` as in
    ``covariate_features``. A covariates table whose dates are all at midnight is a daily calendar and covers
    every time of its day (a daily promo calendar on a 5-minute grid); otherwise rows match on the exact
    timestamp. Per-series rows override global ones; a missing value or no row is 0 (nothing planned), so a
    deviation there is not explained away. ``with_coverage``: also a boolean array, True where some driver
    column has a value for the row (False: the table says nothing about it, e.g. after the calendar ends).
    """
    if "ds" not in covariates.columns:
        raise ValueError(f"The covariates table needs a 'ds' column; got {list(covariates.columns)[:10]}.")
    value_cols = [
        c for c in covariates.columns if covariate_kind(c)[0] != "cov" and c not in ("ds", "series_id")
    ]
    names = [f"{covariate_kind(c)[1]}_flag" for c in value_cols]
    _check_unique_names(value_cols, names)
    cov_ds = pd.Series(pd.unique(covariates["ds"].dropna()))
    daily = bool(len(cov_ds)) and bool((cov_ds == cov_ds.dt.normalize()).all())
    key_ds = keys["ds"].dt.normalize() if daily else keys["ds"]
    flags = pd.DataFrame({"_ds": covariates["ds"]})
    for col, name in zip(value_cols, names, strict=True):
        if _is_numeric(covariates[col]):
            values = covariates[col].to_numpy(dtype="float64", na_value=np.nan)
            flags[name] = np.where(np.isnan(values), np.nan, values != 0)
        else:
            codes, labels = category_codes(covariates[col])
            label_flag = np.array([0.0 if v.lower() in _ZERO_LIKE else 1.0 for v in labels] + [np.nan])
            flags[name] = label_flag[codes]
    out = pd.DataFrame(np.nan, index=keys.index, columns=names)
    own = covariates["series_id"].notna().to_numpy() if "series_id" in covariates.columns else None
    left = pd.DataFrame({"_ds": key_ds.to_numpy()}, index=keys.index)
    if own is None or (~own).any():
        rows = flags[~own] if own is not None else flags
        out = out.fillna(left.merge(rows, on="_ds", how="left")[names].set_axis(keys.index))
    if own is not None and own.any():
        left["_sid"] = keys["series_id"].astype("string").to_numpy()
        rows = flags[own].assign(_sid=covariates.loc[own, "series_id"].astype("string").to_numpy())
        mine = left.merge(rows, on=["_sid", "_ds"], how="left")[names].set_axis(keys.index)
        out = mine.fillna(out)
    flags_out = out.fillna(0.0).astype("float64")
    if with_coverage:
        return flags_out, out.notna().any(axis=1).to_numpy()
    return flags_out


def static_features(series_id: pd.Series, static: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, int]]:
    """``static_<name>`` columns for each row of ``series_id`` (category), joined from the static table."""
    if "series_id" not in static.columns:
        raise ValueError(f"The static table needs a 'series_id' column; got {list(static.columns)[:10]}.")
    cats = series_id.cat.categories
    codes = series_id.cat.codes.to_numpy()
    s_code = pd.Categorical(static["series_id"].astype("string"), categories=cats).codes
    known = s_code >= 0
    counts = {
        "static_rows_for_unknown_series_ignored": int((~known).sum()),
        "static_series_missing": int(len(cats) - len(np.unique(s_code[known]))),
    }
    cols = [c for c in static.columns if c != "series_id"]
    names = [f"static_{snake_case(c)}" for c in cols]
    _check_unique_names(cols, names)
    row = np.full(len(cats), -1, dtype=np.int64)
    row[s_code[known]] = np.flatnonzero(known)
    row_of = row[codes]
    feats: dict[str, Any] = {}
    for col, name in zip(cols, names, strict=True):
        if _is_numeric(static[col]):
            feats[name] = _take(
                static[col].to_numpy(dtype="float64", na_value=np.nan), row_of, np.nan
            ).astype("float32")
        else:
            c, labels = category_codes(static[col])
            feats[name] = pd.Categorical.from_codes(_take(c, row_of, -1), categories=labels)
    return pd.DataFrame(feats, index=series_id.index), counts


def category_codes(values: pd.Series) -> tuple[np.ndarray, pd.Index]:
    """Integer codes (-1 = missing) and sorted labels of a categorical column.

    Labels are normalised (booleans -> "1"/"0", whole floats lose ".0", surrounding blanks stripped, empty ->
    missing); each distinct value is converted once, so this is fast on long columns.
    """
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    norm = [_norm(u) for u in uniques]
    labels = pd.Index(sorted({v for v in norm if v != ""}), dtype=object)
    remap = np.r_[labels.get_indexer(norm), -1].astype(np.int64)
    return remap[codes], labels


def lookup_rows(
    grid_tick: np.ndarray,
    table_tick: np.ndarray,
    codes: tuple[np.ndarray, np.ndarray] | None = None,
    *,
    mask: np.ndarray | None = None,
) -> np.ndarray:
    """For each grid row, the row of the table with the same (code, tick), or -1.

    ``codes`` = (grid codes, table codes) for per-series/per-region tables; table rows outside ``mask``, with
    a negative code or with a tick outside the grid's range are ignored. Uses a dense lookup table (fast, no hashing) unless it
    would be large, then a hash index.
    """
    n = len(grid_tick)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    lo, hi = int(grid_tick.min()), int(grid_tick.max())
    span = hi - lo + 1
    keep = (table_tick >= lo) & (table_tick <= hi)
    if mask is not None:
        keep &= mask
    if codes is None:
        lut = np.full(span, -1, dtype=np.int64)  # one entry per step: small
        lut[table_tick[keep] - lo] = np.flatnonzero(keep)
        return lut[grid_tick - lo]
    g_code, t_code = codes
    keep &= t_code >= 0
    n_codes = int(max(g_code.max(initial=-1), t_code.max(initial=-1))) + 1
    if n_codes * span <= 25_000_000 and len(table_tick) < 2**31:  # at most 100 MB of int32
        lut = np.full(n_codes * span, -1, dtype=np.int32)
        lut[t_code[keep] * span + table_tick[keep] - lo] = np.flatnonzero(keep)
        out = lut[np.maximum(g_code, 0) * span + grid_tick - lo].astype(np.int64)
    else:
        index = pd.Index(t_code[keep] * span + table_tick[keep] - lo)
        found = index.get_indexer(np.maximum(g_code, 0) * span + grid_tick - lo)
        out = np.where(found >= 0, np.flatnonzero(keep)[np.maximum(found, 0)], -1)
    out[g_code < 0] = -1
    return out


def categorical_as_trained(covariates: pd.DataFrame, categories: Mapping[str, Sequence[str]]) -> pd.DataFrame:
    """Read as text the numeric covariate columns whose features were categorical in training (their
    ``<prefix>_type`` / ``cov_<name>`` is in ``categories``): a plan whose ``state_holiday`` is all ``0`` is read
    as numbers by CSV, but means the category ``"0"`` the model learned next to ``"a"``, ``"b"``, ``"c"``."""
    names = [
        col
        for col in covariates.columns
        if col not in ("series_id", "ds")
        and _is_numeric(covariates[col])
        and _feature_name(col) in categories
    ]
    return covariates.astype({col: "string" for col in names}) if names else covariates


def _feature_name(column: str) -> str:
    kind, prefix = covariate_kind(column)
    return prefix if kind == "cov" else f"{prefix}_type"


def learn_categories(frame: pd.DataFrame, columns: list[str] | None = None) -> dict[str, list[str]]:
    """Sorted distinct values present in each categorical/string column (default: all of them but series_id)."""
    if columns is None:
        columns = [c for c in frame.columns if c != "series_id" and _is_categorical(frame[c])]
    out = {}
    for c in columns:
        s = frame[c]
        if isinstance(s.dtype, pd.CategoricalDtype):
            used = np.unique(s.cat.codes.to_numpy())
            out[c] = sorted(str(v) for v in s.cat.categories[used[used >= 0]])
        else:
            out[c] = sorted(pd.unique(s.dropna().astype(str)).tolist())
    return out


def apply_categories(
    frame: pd.DataFrame, categories: dict[str, list[str]]
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Give the named columns exactly these category lists; values not in a list become missing.

    Returns the new frame and, per column, how many non-missing values were unknown.
    """
    out = frame.copy(deep=False)
    unknown: dict[str, int] = {}
    for col, cats in categories.items():
        if col not in out.columns:
            continue
        s = out[col]
        if not isinstance(s.dtype, pd.CategoricalDtype):
            s = s.astype("string").astype("category")
        before = s.cat.codes.to_numpy() >= 0
        s = s.cat.set_categories(list(cats))
        lost = int((before & (s.cat.codes.to_numpy() < 0)).sum())
        if lost:
            unknown[col] = lost
        out[col] = s
    return out, unknown


# ---------------------------------------------------------------------------------------------------------


def _norm(value: object) -> str:
    if isinstance(value, (bool, np.bool_)):
        return "1" if value else "0"
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value).strip()


def _is_numeric(s: pd.Series) -> bool:
    return (pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s)) and not isinstance(
        s.dtype, pd.CategoricalDtype
    )


def _is_categorical(s: pd.Series) -> bool:
    return (
        isinstance(s.dtype, pd.CategoricalDtype)
        or pd.api.types.is_string_dtype(s)
        or pd.api.types.is_object_dtype(s)
    )


def _check_unique_names(cols: list[str], names: list[str] | None = None) -> None:
    names = names or [covariate_kind(c)[1] for c in cols]
    seen: dict[str, str] = {}
    for col, name in zip(cols, names, strict=True):
        if name in seen:
            raise ValueError(
                f"Columns {seen[name]!r} and {col!r} both become feature {name!r}. Fix: rename one of them."
            )
        seen[name] = col


def _join_unit(table_ds: pd.Series, grid_ds: pd.Series, freq: str) -> int:
    """Join resolution in ns: the grid step, or one day for daily tables on an hourly grid."""
    base = base_freq(freq)
    t = pd.Series(pd.unique(table_ds.dropna()))
    if base == "H" and len(t) and (t == t.dt.normalize()).all():
        return pd.Timedelta(days=1).value
    if base == "H":
        off = t != t.dt.floor("h")
    elif base == "D":
        off = t != t.dt.normalize()
    else:
        anchor = int(grid_ds.iloc[0].dayofweek) if len(grid_ds) else 0
        off = (t != t.dt.normalize()) | (t.dt.dayofweek != anchor)
    if off.any():
        raise ValueError(
            f"{int(off.sum())} distinct covariate dates do not fall on the series' {freq!r} grid "
            f"(e.g. {[str(v) for v in t[off].head(3)]}). Fix: give covariates at the same frequency (and weekday, "
            "for weekly data) as the series."
        )
    return step_length(freq).value


def _ticks(ds: pd.Series, unit: int) -> np.ndarray:
    return np.floor_divide(ds.to_numpy(dtype="datetime64[ns]").view(np.int64), unit)


def _take(values: np.ndarray, idx: np.ndarray, fill: float) -> np.ndarray:
    """values[idx] where idx >= 0, else ``fill``."""
    if len(values) == 0:
        return np.full(len(idx), fill, dtype=np.float64 if np.isnan(fill) else values.dtype)
    return np.where(idx >= 0, values[np.maximum(idx, 0)], fill)


def _capped(value: np.ndarray, known: np.ndarray, cap: int) -> np.ndarray:
    v = value.astype("float64")
    return np.where(known, np.minimum(v, cap), np.where(v >= cap, float(cap), np.nan))


def _until_next(flag: np.ndarray, end: np.ndarray, cap: int) -> np.ndarray:
    """Steps to the next flagged step (0 when flagged); unknown flags and the series end stop the search."""
    n = len(flag)
    idx = np.arange(n)
    event = (flag == 1) | np.isnan(flag)
    nxt = np.minimum.accumulate(np.where(event, idx, n)[::-1])[::-1] if n else idx
    nxt = np.minimum(nxt, end + 1)
    hit = (nxt <= end) & (flag[np.minimum(nxt, n - 1)] == 1)
    return _capped(nxt - idx, hit, cap).astype("float32")


def _since_last(flag: np.ndarray, start: np.ndarray, cap: int) -> np.ndarray:
    """Steps since the last flagged step (0 when flagged); unknown flags and the series start stop the search."""
    n = len(flag)
    idx = np.arange(n)
    event = (flag == 1) | np.isnan(flag)
    prev = np.maximum.accumulate(np.where(event, idx, -1)) if n else idx
    prev = np.maximum(prev, start - 1)
    hit = (prev >= start) & (flag[np.maximum(prev, 0)] == 1)
    return _capped(idx - prev, hit, cap).astype("float32")


def _runs(
    flag: np.ndarray, start: np.ndarray, end: np.ndarray, cap: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Steps since the run started, until it ends, and its length, for rows inside a run of flagged steps.

    A run edge is known when the step just outside it is known to be unflagged (inside the same series);
    otherwise the value is a lower bound, reported as ``cap`` if it already reaches ``cap``, else missing.
    """
    n = len(flag)
    idx = np.arange(n)
    in_run = flag == 1
    prev_in = np.r_[False, in_run[:-1]] & (idx > start)
    next_in = np.r_[in_run[1:], False] & (idx < end)
    run_start = np.maximum.accumulate(np.where(in_run & ~prev_in, idx, -1)) if n else idx
    run_end = np.minimum.accumulate(np.where(in_run & ~next_in, idx, n)[::-1])[::-1] if n else idx
    before, after = run_start - 1, run_end + 1
    start_known = (before >= start) & (flag[np.clip(before, 0, max(n - 1, 0))] == 0)
    end_known = (after <= end) & (flag[np.clip(after, 0, max(n - 1, 0))] == 0)
    since = _capped(idx - run_start, start_known, cap)
    until = _capped(run_end - idx, end_known, cap)
    length = _capped(run_end - run_start + 1, start_known & end_known, cap)
    outside = ~in_run
    for a in (since, until, length):
        a[outside] = np.nan
    return since.astype("float32"), until.astype("float32"), length.astype("float32")
