"""What-if scenarios for the promo/weather planner notebook: build a changed promo plan or weather scenario for
``training.forecast.whatif.what_if`` (which computes the scenario forecast, the same code as the API's what-if), then
summarise the change and say which feature families make it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from features.calendar import step_length

__all__ = ["promo_change", "pick_change_start", "weather_change", "what_if_summary", "change_by_family"]

_TINY = 1e-12


def promo_change(
    start: Any,
    days: int = 7,
    series_ids: list[str] | tuple[str, ...] | None = None,
    value: float = 1,
    column: str = "promo",
    freq: str = "D",
) -> pd.DataFrame:
    """Covariate changes for ``training.forecast.whatif.what_if``: ``column`` set to ``value`` for ``days`` steps from
    ``start``, for ``series_ids`` (``series_id, ds, <column>`` rows) or every series (no ``series_id``)."""
    if int(days) < 1:
        raise ValueError(f"days must be >= 1 (the length of the promo change). Got {days!r} instead.")
    dates = pd.Timestamp(start) + step_length(freq) * np.arange(int(days))
    frame = pd.DataFrame({"ds": pd.DatetimeIndex(dates), column: float(value)})
    if not series_ids:
        return frame
    ids = pd.DataFrame({"series_id": pd.array([str(s) for s in series_ids], dtype="string")})
    return ids.merge(frame, how="cross")[["series_id", "ds", column]]


def pick_change_start(
    covariates: pd.DataFrame | None,
    series_ids: list[str] | tuple[str, ...],
    starts: Any,
    days: int = 7,
    column: str = "promo",
    value: float = 1,
    freq: str = "D",
) -> pd.Timestamp:
    """The first of ``starts`` where setting ``column`` to ``value`` for ``days`` steps changes the stored plan of
    ``series_ids`` on the most days (a promo week where there was none, rather than where there already was).

    Stored rows without ``series_id`` apply to every series; a day absent from the stored plan counts as changed.
    """
    candidates = pd.DatetimeIndex(pd.to_datetime(list(starts)))
    if candidates.empty:
        raise ValueError("pick_change_start needs at least one candidate start date.")
    if covariates is None or column not in covariates.columns:
        have = [] if covariates is None else [c for c in covariates.columns if c not in ("series_id", "ds")]
        raise ValueError(f"The stored covariates have no column {column!r} to change; they have {have}.")
    rows = covariates
    if "series_id" in covariates.columns:
        rows = covariates.loc[covariates["series_id"].astype("string").isin([str(s) for s in series_ids])]
    stored = rows.groupby("ds")[column].apply(lambda v: int((v != value).sum()))
    n_series = max(len(series_ids), 1) if "series_id" in covariates.columns else 1
    offsets = step_length(freq) * np.arange(int(days))
    changed = [
        int(stored.reindex(start + offsets).fillna(n_series).sum()) for start in candidates
    ]  # a handful of candidate weeks: a loop over them is clearer than a rolling window
    return candidates[int(np.argmax(changed))]


def weather_change(
    weather: pd.DataFrame | None,
    static: pd.DataFrame | None,
    series_ids: list[str] | tuple[str, ...],
    start: Any,
    days: int = 7,
    temp_delta_c: float = 0.0,
    precip_mm: float | None = None,
    freq: str = "D",
) -> pd.DataFrame:
    """Weather changes for ``training.forecast.whatif.what_if`` in the regions of ``series_ids``: the stored
    ``temp_mean``/``temp_min``/``temp_max`` shifted by ``temp_delta_c`` and ``precip_mm`` set (if given) for
    ``days`` steps from ``start``. Returns ``region, ds`` and the changed columns. Every series of a region
    sees the change (weather is per region)."""
    if weather is None or static is None or "region" not in static.columns:
        raise ValueError(
            "A weather scenario needs the weather table and a static table with a region column; "
            "this model was trained without them."
        )
    if int(days) < 1:
        raise ValueError(f"days must be >= 1 (the length of the weather change). Got {days!r} instead.")
    ids = [str(s) for s in series_ids]
    attrs = static.assign(series_id=static["series_id"].astype("string"))
    chosen = attrs.loc[attrs["series_id"].isin(ids)]
    no_region = sorted(set(ids) - set(chosen.loc[chosen["region"].notna(), "series_id"]))
    if no_region:
        raise ValueError(
            f"Series {no_region} have no region in the static table, so no weather applies to them."
        )
    regions = sorted(chosen["region"].astype(str).unique())
    dates = pd.DatetimeIndex(pd.Timestamp(start) + step_length(freq) * np.arange(int(days)))
    rows = weather.loc[weather["region"].astype(str).isin(regions) & weather["ds"].isin(dates)]
    expected = len(regions) * len(dates)
    if len(rows) < expected:
        raise ValueError(
            f"The stored weather has {len(rows)} of the {expected} rows (regions {regions}, {dates[0]:%Y-%m-%d} .. "
            f"{dates[-1]:%Y-%m-%d}) that a temperature shift starts from; choose dates the weather table covers."
        )
    temps = [c for c in ("temp_mean", "temp_min", "temp_max") if c in rows.columns]
    out = rows[["region", "ds"]].copy()
    for c in temps:
        out[c] = rows[c].astype("float64") + float(temp_delta_c)
    if precip_mm is not None:
        out["precip_mm"] = float(precip_mm)
    return out.reset_index(drop=True)


def what_if_summary(result: pd.DataFrame, start: Any = None, end: Any = None) -> pd.DataFrame:
    """Per series, over ``[start, end]`` (default: every row of ``result``, a ``what_if`` frame): ``days``,
    ``forecast_base``, ``forecast_scenario``, ``delta`` (scenario - base) and ``delta_pct``, plus a total row.

    For a ``what_if_levels`` frame (with a ``level`` column) the rows are per ``level, series_id`` and there is
    no extra total row: the ``total`` level is the total, and it equals the sum of its members."""
    rows = _between(result, start, end)
    by = ["level", "series_id"] if "level" in rows.columns else ["series_id"]
    keys = rows[by].astype("string")
    g = rows.groupby([keys[c] for c in by], sort=False)
    out = pd.DataFrame(
        {
            "days": g["ds"].nunique(),
            "forecast_base": g["yhat_base"].sum(),
            "forecast_scenario": g["yhat"].sum(),
        }
    )
    if "level" not in rows.columns:
        out.loc["all"] = [rows["ds"].nunique(), rows["yhat_base"].sum(), rows["yhat"].sum()]
    out["days"] = out["days"].astype("int64")
    out["delta"] = out["forecast_scenario"] - out["forecast_base"]
    out["delta_pct"] = (out["delta"] / out["forecast_base"]).where(out["forecast_base"] > 0)
    out.index.names = by
    return out.reset_index()


def change_by_family(
    base: pd.DataFrame, scenario: pd.DataFrame, start: Any = None, end: Any = None
) -> pd.DataFrame:
    """Which feature families make the difference between two explained forecasts, in forecast units.

    Per row, TreeSHAP is additive in log space: ``log1p(yhat_s) - log1p(yhat_b) = sum_f (c_f,s - c_f,b)``. The
    change in units ``yhat_s - yhat_b`` is shared among the families in proportion to their change of
    contribution; rows are then summed per series over ``[start, end]``. Returns ``series_id``, one column per
    family and ``total`` (= the change of the forecast), with an ``"all"`` row.
    """
    fams = [c.removeprefix("contrib_") for c in scenario.columns if c.startswith("contrib_")]
    missing = [f for f in fams if f"contrib_{f}" not in base.columns]
    if not fams or missing:
        raise ValueError(
            "change_by_family needs contrib_<family> columns in both forecasts (predict(..., "
            f"explain=True)); missing in base: {missing or 'all'}."
        )
    cols = [f"contrib_{f}" for f in fams]
    keys = ["series_id", "ds"]
    b = base[keys + ["yhat", *cols]].assign(series_id=base["series_id"].astype("string"))
    s = scenario[keys + ["yhat", *cols]].assign(series_id=scenario["series_id"].astype("string"))
    m = _between(s.merge(b, on=keys, suffixes=("", "_b"), how="inner"), start, end)
    dc = m[cols].to_numpy() - m[[f"{c}_b" for c in cols]].to_numpy()
    dlog = dc.sum(axis=1)
    delta = (m["yhat"] - m["yhat_b"]).to_numpy()
    share = np.divide(dc, dlog[:, None], out=np.zeros_like(dc), where=np.abs(dlog[:, None]) > _TINY)
    units = pd.DataFrame(share * delta[:, None], columns=fams)
    units["total"] = delta
    out = units.groupby(m["series_id"].to_numpy()).sum()
    out.loc["all"] = units.sum()
    out.index.name = "series_id"
    return out.reset_index()


def _between(frame: pd.DataFrame, start: Any, end: Any) -> pd.DataFrame:
    ok = pd.Series(True, index=frame.index)
    if start is not None:
        ok &= frame["ds"] >= pd.Timestamp(start)
    if end is not None:
        ok &= frame["ds"] <= pd.Timestamp(end)
    return frame.loc[ok]
