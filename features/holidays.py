"""Public-holiday covariates from the ``holidays`` package, known for any date range by construction.

``holiday_covariates("GB", series, horizon_end=..., freq="D")`` builds a covariates table with one column,
``holiday_public``: the number of public holidays in the period (0/1 per day; a count per week). Because its
name contains "holiday", the covariate features of ``features.covariates`` apply to it
(``holiday_public_flag``, ``holiday_public_days_until_next``, ``holiday_public_days_since_last``), so "three
days before Christmas" is expressible. It needs no data: the calendar is computed for any dates, the forecast
horizon included (no leakage: a holiday date is known years ahead).

``spec`` chooses the calendar:

* a country, optionally with a subdivision: ``"GB"``, ``"DE-BY"``, ``"US-CA"`` (ISO 3166 codes as the
  ``holidays`` package spells them; English names such as ``"United Kingdom"`` work too). Every series gets
  that calendar (rows without ``series_id``).
* ``"static"``: each series gets the calendar of the ``country`` column of the ``static`` table (and of its
  ``subdivision`` column when present). Series whose country the package does not know (``"Unspecified"``,
  ``"European Community"``...) or that have no country get a missing value (unknown, not "no holiday"); they
  are counted in the report.

``holiday_week_features(ds, cap)`` gives weekly grids the retail weeks that move between years: one flag per
holiday (``holiday_week_christmas``, ``holiday_week_thanksgiving`` (US), ``holiday_week_easter``) set on the week
(``ds .. ds + 6 days``, the weekly grid's convention) that contains it, and ``holiday_weeks_until_<name>``
(0 in that week, capped at ``cap``): the ramp before Christmas and Thanksgiving. Dates come from the
``holidays`` package (Christmas Day and Thanksgiving of its US calendar; Easter Sunday from
``dateutil.easter``, which the package itself computes Easter with); they depend only on the date, so they cannot leak.

``add_holidays`` merges the calendar into a user covariates table: the user's rows keep their values, and
holiday rows are only added up to the last date the user's table covers, so a covariates table that stops
before the horizon is still refused when a forecast is built.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from features.calendar import base_freq

__all__ = [
    "HOLIDAY_COLUMN",
    "HolidayReport",
    "add_holidays",
    "check_holidays",
    "country_code",
    "holiday_calendar",
    "holiday_covariates",
    "holiday_week_features",
    "HOLIDAY_WEEKS",
    "CLOSURE_WINDOWS",
    "closure_features",
]

HOLIDAY_COLUMN = "holiday_public"
STATIC_SPEC = "static"

# names used by real order exports that the holidays registry does not spell this way
_ALIASES = {"eire": "IE", "usa": "US", "rsa": "ZA", "korea": "KR", "uk": "GB", "great_britain": "GB"}


@dataclass
class HolidayReport:
    """Which calendar each series got, and which series got none (unknown country)."""

    spec: str
    calendars: dict[str, int] = field(default_factory=dict)  # calendar ("GB", "DE-BY") -> series using it
    series_without_calendar: int = 0
    unknown_countries: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __str__(self) -> str:
        cals = ", ".join(f"{k}={v}" for k, v in self.calendars.items()) or "none"
        unknown = f" (unknown: {self.unknown_countries[:5]})" if self.unknown_countries else ""
        return (
            f"holidays {self.spec!r}: calendars {cals}; {self.series_without_calendar} series without a "
            f"calendar, their {HOLIDAY_COLUMN} is missing{unknown}"
        )


def country_code(name: str) -> tuple[str, str | None] | None:
    """``(country, subdivision)`` as the ``holidays`` package knows them, or None for an unknown name.

    >>> country_code("DE-BY"), country_code("United Kingdom"), country_code("EIRE"), country_code("Unspecified")
    (('DE', 'BY'), ('GB', None), ('IE', None), None)
    """
    import holidays

    text = str(name).strip()
    supported = holidays.list_supported_countries()
    code, _, subdiv = text.partition("-")
    if code.upper() in supported and (
        not subdiv or subdiv.upper() in map(str.upper, supported[code.upper()])
    ):
        return code.upper(), subdiv.upper() or None
    key = re.sub(r"[^0-9a-z]+", "_", text.lower()).strip("_")
    if key in _ALIASES:
        return _ALIASES[key], None
    from holidays.registry import COUNTRIES

    for module, names in COUNTRIES.items():
        if key == module or key.replace("_", "") == names[0].lower() or text.upper() in names[1:3]:
            return names[1], None
    return None


def holiday_calendar(country: str, subdivision: str | None, start: Any, end: Any) -> pd.DataFrame:
    """Daily ``ds, holiday_public`` (1 on a public holiday, else 0) from ``start`` to ``end`` (days)."""
    import holidays

    days = pd.date_range(pd.Timestamp(start).normalize(), pd.Timestamp(end).normalize(), freq="D")
    cal = holidays.country_holidays(country, subdiv=subdivision, years=range(days[0].year, days[-1].year + 1))
    is_holiday = np.fromiter((d in cal for d in days.date), dtype=bool, count=len(days))
    return pd.DataFrame({"ds": days, HOLIDAY_COLUMN: is_holiday.astype("float64")})


def holiday_covariates(
    spec: str,
    series: pd.DataFrame,
    end: Any,
    freq: str,
    static: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, HolidayReport]:
    """The holiday covariates table for ``series`` (``series_id, ds``) from its first ``ds`` to ``end``.

    Daily rows for ``"H"`` and ``"D"`` (hourly grids join daily covariates by day); for weekly data one row
    per week on the series' weekday holding the number of holidays in that week. See the module doc for
    ``spec``.
    """
    code = check_holidays(spec, static)
    start = pd.Timestamp(series["ds"].min())
    end = max(pd.Timestamp(end), pd.Timestamp(series["ds"].max()))
    base = base_freq(freq)
    report = HolidayReport(spec=spec)
    if code is not None:
        report.calendars[_label(code)] = int(series["series_id"].nunique())
        return _at_freq(holiday_calendar(*code, start, end + pd.Timedelta(days=7)), series, base, end), report
    return _per_series(static, series, start, end, base, report)  # type: ignore[arg-type]


HOLIDAY_WEEKS = ("christmas", "thanksgiving", "easter")


def holiday_week_features(ds: pd.Series, cap: int) -> pd.DataFrame:
    """Weekly grid: ``holiday_week_<name>`` (0/1) and ``holiday_weeks_until_<name>`` (0..``cap``) for each
    of ``HOLIDAY_WEEKS``; rows are weeks ``ds .. ds + 6 days`` (same index as ``ds``)."""
    ds = pd.Series(ds)
    codes, uniques = pd.factorize(ds, sort=False)
    weeks = pd.DatetimeIndex(uniques).normalize()
    if len(weeks) == 0:
        return pd.DataFrame(index=ds.index, dtype="float32")
    dates = _holiday_dates(weeks.min().year - 1, weeks.max().year + 1)
    out: dict[str, np.ndarray] = {}
    w = weeks.to_numpy(dtype="datetime64[D]").astype(np.int64)
    for name in HOLIDAY_WEEKS:
        days = np.sort(np.array(dates[name], dtype="datetime64[D]").astype(np.int64))
        nxt = days[
            np.minimum(np.searchsorted(days, w, side="left"), len(days) - 1)
        ]  # first holiday >= week start
        weeks_until = (nxt - w) // 7  # 0 when the holiday falls in this week (ds .. ds + 6)
        out[f"holiday_week_{name}"] = (weeks_until == 0).astype("float32")[codes]
        out[f"holiday_weeks_until_{name}"] = np.minimum(weeks_until, cap).astype("float32")[codes]
    return pd.DataFrame(out, index=ds.index)


CLOSURE_WINDOWS = (1, 3)


def closure_features(
    frame: pd.DataFrame, step: pd.Timedelta, windows: tuple[int, ...] = CLOSURE_WINDOWS
) -> pd.DataFrame:
    """Known closures around each row: how much of a group is closed just before and just after it.

    ``frame`` has ``series_id``, ``ds`` and ``open_share`` (the share of a group's members open that step, 0..1;
    a single series' ``open`` works too). Closures are known in advance (Rossmann's ``Open``, a store calendar),
    so reading the following steps is legitimate, as for a promo calendar; ``y`` is never read. Returns, aligned
    to ``frame.index``, for each ``k`` in ``windows``:

    * ``closed_share_next_<k>``: the summed closed share ``1 - open_share`` of steps ``t+1 .. t+k``;
    * ``closed_share_prev_<k>``: the same for ``t-k .. t-1``.

    So the Wednesday before a Thursday holiday reads ``closed_share_next_1`` close to 1 (like a Saturday), and
    the Tuesday after Easter Monday ``closed_share_prev_3`` close to 2 (Sunday and Monday). Steps are looked up
    by date (``ds +- j * step``), not by position: a step that the frame does not list (before the first row,
    after the horizon, a gap) is unknown, so the feature is missing there, never guessed as open.
    """
    for col in ("series_id", "ds", "open_share"):
        if col not in frame.columns:
            raise ValueError(f"closure_features needs column {col!r}; got {list(frame.columns)[:10]}.")
    step = pd.Timedelta(step)
    if step <= pd.Timedelta(0):
        raise ValueError(f"step must be a positive duration such as pd.Timedelta(days=1). Got {step!r}.")
    keys = frame[["series_id", "ds"]].assign(series_id=frame["series_id"].astype("string"))
    closed = pd.Series(
        1.0 - frame["open_share"].to_numpy(dtype="float64"),
        index=pd.MultiIndex.from_frame(keys),
    )
    closed = closed[~closed.index.duplicated()]
    out: dict[str, np.ndarray] = {}
    shifted: dict[int, np.ndarray] = {}
    for j in range(-max(windows), max(windows) + 1):
        if j == 0:
            continue
        at = pd.MultiIndex.from_arrays([keys["series_id"], keys["ds"] + j * step])
        shifted[j] = closed.reindex(at).to_numpy()
    for k in windows:
        out[f"closed_share_next_{k}"] = np.sum([shifted[j] for j in range(1, k + 1)], axis=0)
        out[f"closed_share_prev_{k}"] = np.sum([shifted[-j] for j in range(1, k + 1)], axis=0)
    return pd.DataFrame(out, index=frame.index).astype("float32")


def _holiday_dates(first_year: int, last_year: int) -> dict[str, list]:
    import holidays
    from dateutil.easter import easter  # what the holidays package computes Easter with

    years = range(first_year, last_year + 1)
    us = holidays.country_holidays("US", years=years)
    thanksgiving = sorted(us.get_named("Thanksgiving", lookup="startswith"))
    return {
        "christmas": [pd.Timestamp(y, 12, 25) for y in years],
        "thanksgiving": [pd.Timestamp(d) for d in thanksgiving],
        "easter": [pd.Timestamp(easter(y)) for y in years],
    }


def check_holidays(spec: str, static: pd.DataFrame | None) -> tuple[str, str | None] | None:
    """The ``(country, subdivision)`` of ``spec``, or None for ``"static"``; refuses what cannot work.

    Only the columns of ``static`` matter here (an empty frame with ``series_id, country`` is fine).
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(
            f"holidays must be a country code such as 'GB' or 'DE-BY', or 'static'. Got {spec!r}."
        )
    if spec.strip().lower() != STATIC_SPEC:
        code = country_code(spec)
        if code is None:
            raise ValueError(
                f"Unknown holiday calendar {spec!r}: use an ISO 3166 country code the holidays package supports, "
                f"optionally with a subdivision ('GB', 'DE-BY', 'US-CA'), or 'static' to take each series' "
                f"country from the static table's 'country' column."
            )
        return code
    if static is None or "country" not in static.columns:
        raise ValueError(
            "holidays='static' takes each series' country from the static table's 'country' column, but "
            f"{'no static table was given' if static is None else 'it has no country column'}. Pass a static "
            "table with series_id and country (features build series --by country writes one), or a "
            "country code such as 'GB'."
        )
    return None


def add_holidays(covariates: pd.DataFrame | None, holidays_table: pd.DataFrame) -> pd.DataFrame:
    """Merge the holiday covariates into a user covariates table (see the module doc); returns a new table."""
    if covariates is None or covariates.empty:
        return holidays_table
    if HOLIDAY_COLUMN in covariates.columns:
        raise ValueError(
            f"The covariates table already has a {HOLIDAY_COLUMN!r} column; rename it or do not pass holidays."
        )
    holidays_table = holidays_table.loc[holidays_table["ds"] <= covariates["ds"].max()]
    keyed = "series_id" in covariates.columns or "series_id" in holidays_table.columns
    both = pd.concat([covariates, holidays_table], ignore_index=True)
    if not keyed:
        return both.groupby("ds", sort=True, as_index=False).first()
    both["series_id"] = both["series_id"].astype("string") if "series_id" in both.columns else pd.NA
    return both.groupby(["series_id", "ds"], sort=True, dropna=False, as_index=False).first()


# ---------------------------------------------------------------------------------------------------------


def _label(code: tuple[str, str | None]) -> str:
    return code[0] if code[1] is None else f"{code[0]}-{code[1]}"


def _per_series(
    static: pd.DataFrame,
    series: pd.DataFrame,
    start: pd.Timestamp,
    end: pd.Timestamp,
    base: str,
    report: HolidayReport,
) -> tuple[pd.DataFrame, HolidayReport]:
    ids = pd.Index(series["series_id"].astype("string").unique())
    st = static.assign(series_id=static["series_id"].astype("string")).drop_duplicates("series_id")
    st = st.set_index("series_id").reindex(ids)
    names = st["country"].astype("string").str.strip()
    if "subdivision" in st.columns:
        sub = st["subdivision"].astype("string").str.strip()
        names = names.where(sub.isna() | (sub == ""), names + "-" + sub)
    parts = []
    for name, sids in names.groupby(names, dropna=False, sort=True):
        code = country_code(name) if pd.notna(name) else None
        grid = series.loc[series["series_id"].astype("string").isin(sids.index)]
        if code is None:
            report.series_without_calendar += len(sids)
            if pd.notna(name):
                report.unknown_countries.append(str(name))
            cal = pd.DataFrame({"ds": pd.date_range(start.normalize(), end + pd.Timedelta(days=7), freq="D")})
            cal[HOLIDAY_COLUMN] = np.nan
        else:
            report.calendars[_label(code)] = report.calendars.get(_label(code), 0) + len(sids)
            cal = holiday_calendar(*code, start, end + pd.Timedelta(days=7))
        table = _at_freq(cal, grid, base, end)
        parts.append(
            table.merge(pd.DataFrame({"series_id": pd.array(sids.index, dtype="string")}), how="cross")
        )
    out = pd.concat(parts, ignore_index=True)[["series_id", "ds", HOLIDAY_COLUMN]]
    return out.sort_values(["series_id", "ds"], kind="stable").reset_index(drop=True), report


def _at_freq(daily: pd.DataFrame, series: pd.DataFrame, base: str, end: pd.Timestamp) -> pd.DataFrame:
    """Daily calendar -> rows at the grid's frequency, up to ``end`` (weekly: holidays per week)."""
    if base != "W":
        return daily.loc[daily["ds"] <= end].reset_index(drop=True)
    anchor = int(pd.Timestamp(series["ds"].min()).dayofweek)
    weekday = daily["ds"].dt.dayofweek.to_numpy()
    week_start = daily["ds"] - pd.to_timedelta((weekday - anchor) % 7, unit="D")
    weekly = daily.groupby(week_start.rename("ds"), sort=True)[HOLIDAY_COLUMN].sum(min_count=1).reset_index()
    return weekly.loc[(weekly["ds"] >= series["ds"].min()) & (weekly["ds"] <= end)].reset_index(drop=True)
