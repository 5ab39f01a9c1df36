"""Frequencies and calendar features of the regular time grid.

Three frequencies are supported: hourly (``"H"``, pandas alias ``"h"``), daily (``"D"``) and weekly (``"W"``,
anchored on whatever weekday the data uses: ``"W-SUN"``, ``"W-MON"``, ...). ``infer_freq`` checks that the data
fits the requested frequency and returns the pandas offset alias every other module works with.

Calendar features depend only on the timestamp of the row, so they can never leak ``y``. Only what makes sense
at the frequency is produced:

=====================  ===  ===  ===
feature                 H    D    W
=====================  ===  ===  ===
cal_hour                x
cal_dayofweek           x    x
cal_dayofmonth          x    x    x
cal_dayofyear           x    x
cal_weekofyear          x    x    x   (ISO week)
cal_month               x    x    x
cal_quarter             x    x    x
cal_year                x    x    x
cal_is_month_start      x    x
cal_is_month_end        x    x
cal_days_to_month_end   x    x    x   (0 on the last day of the month)
=====================  ===  ===  ===
"""

from __future__ import annotations

import functools
import warnings

import numpy as np
import pandas as pd

__all__ = [
    "Freq",
    "SUPPORTED_FREQS",
    "infer_freq",
    "base_freq",
    "step_length",
    "step_unit",
    "calendar_feature_names",
    "calendar_features",
    "MIN_STEP",
    "MAX_STEP",
    "seasonal_slots",
]

Freq = str  # a pandas offset alias: "h", "D" or "W-<DAY>"

SUPPORTED_FREQS = ("H", "D", "W")
_WEEKDAYS = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")

_NAMES = {
    "H": (
        "cal_hour",
        "cal_dayofweek",
        "cal_dayofmonth",
        "cal_dayofyear",
        "cal_weekofyear",
        "cal_month",
        "cal_quarter",
        "cal_year",
        "cal_is_month_start",
        "cal_is_month_end",
        "cal_days_to_month_end",
    ),
    "D": (
        "cal_dayofweek",
        "cal_dayofmonth",
        "cal_dayofyear",
        "cal_weekofyear",
        "cal_month",
        "cal_quarter",
        "cal_year",
        "cal_is_month_start",
        "cal_is_month_end",
        "cal_days_to_month_end",
    ),
    "W": (
        "cal_dayofmonth",
        "cal_weekofyear",
        "cal_month",
        "cal_quarter",
        "cal_year",
        "cal_days_to_month_end",
    ),
}


def base_freq(freq: str) -> str:
    """``"H"``, ``"D"`` or ``"W"`` for any accepted spelling (``"h"``, ``"1D"``, ``"W-SUN"``...)."""
    if not isinstance(freq, str):
        raise TypeError(f"freq must be a string such as 'D', 'H' or 'W'. Got {freq!r} instead.")
    f = freq.strip().upper()
    if f.startswith("1") and len(f) > 1:
        f = f[1:]
    if f == "H":
        return "H"
    if f == "D":
        return "D"
    if f == "W" or (f.startswith("W-") and f[2:] in _WEEKDAYS):
        return "W"
    raise ValueError(
        f"Unsupported frequency {freq!r}: use 'H' (hourly), 'D' (daily) or 'W' (weekly; the anchor weekday "
        f"is inferred from the data, or give it as e.g. 'W-SUN')."
    )


def step_length(freq: str) -> pd.Timedelta:
    """Length of one step of frequency ``freq``: 1 hour, 1 day or 7 days for any spelling ``base_freq`` accepts
    (the forecaster's ``H``/``D``/``W``); any fixed pandas frequency from ``MIN_STEP`` to ``MAX_STEP``
    otherwise (``"1min"``, ``"5min"``, ``"15min"``, ``"2h"``...: the volume detector's grids, which must divide a
    day evenly when shorter than one).

    The one step-length function: feature code, the forecaster, the baselines, the volume detector and the
    service use it."""
    try:
        return {"H": pd.Timedelta(hours=1), "D": pd.Timedelta(days=1), "W": pd.Timedelta(days=7)}[
            base_freq(freq)
        ]
    except ValueError:
        return _fixed_step(freq)


def step_unit(freq: str) -> str:
    """The word used in feature names counting steps: ``hours``, ``days`` or ``weeks``."""
    return {"H": "hours", "D": "days", "W": "weeks"}[base_freq(freq)]


def infer_freq(ds: pd.Series, hint: str) -> Freq:
    """Check that the timestamps fit the frequency ``hint`` and return its pandas alias.

    ``hint`` is ``"H"``, ``"D"``, ``"W"`` or an anchored ``"W-XXX"``. Returns ``"h"``, ``"D"`` or ``"W-XXX"``
    where ``XXX`` is the weekday every ``ds`` falls on. Raises ``ValueError`` naming the offending values and
    the fix when the data does not fit (times of day in daily data, several weekdays in weekly data, daily
    data declared hourly, weekly data declared daily).
    """
    base = base_freq(hint)
    values = pd.Series(pd.unique(pd.Series(ds).dropna())).sort_values(ignore_index=True)
    if values.empty:
        raise ValueError(
            "Cannot infer the frequency: ds has no (non-missing) timestamp. Pass a non-empty series table."
        )
    if not pd.api.types.is_datetime64_any_dtype(values):
        raise TypeError(f"ds must be datetime64 (validate the table first). Got dtype {values.dtype}.")
    midnight = values == values.dt.normalize()
    if base == "H":
        off = values != values.dt.floor("h")
        if off.any():
            raise ValueError(
                f"freq 'H' needs timestamps on whole hours, but {int(off.sum())} of {len(values)} distinct ds are "
                f"not (e.g. {_examples(values[off])}). Fix: floor the timestamps to the hour and aggregate y."
            )
        if len(values) >= 3 and midnight.all():
            raise ValueError(
                f"freq 'H' was requested but all {len(values)} distinct ds are at midnight, so the data looks daily. "
                "Fix: use freq 'D'."
            )
        return "h"
    if not midnight.all():
        raise ValueError(
            f"freq {hint!r} needs dates without a time of day, but {int((~midnight).sum())} of {len(values)} distinct "
            f"ds have one (e.g. {_examples(values[~midnight])}). Fix: use freq 'H' for hourly data, or aggregate "
            "y per day first."
        )
    weekdays = values.dt.dayofweek
    if base == "D":
        if len(values) >= 3 and weekdays.nunique() == 1:
            day = _WEEKDAYS[int(weekdays.iloc[0])]
            raise ValueError(
                f"freq 'D' was requested but all {len(values)} distinct ds fall on a {day}, so the data looks weekly. "
                "Fix: use freq 'W'."
            )
        return "D"
    counts = weekdays.value_counts()
    if len(counts) > 1:
        found = ", ".join(f"{_WEEKDAYS[int(d)]}: {int(n)}" for d, n in counts.sort_index().items())
        raise ValueError(
            f"Weekly data must label every week by the same weekday, but ds falls on several ({found} distinct "
            "dates). Fix: label each week by one day, e.g. aggregate with resample('W-SUN')."
        )
    anchor = _WEEKDAYS[int(weekdays.iloc[0])]
    wanted = hint.strip().upper()
    if wanted.startswith("W-") and wanted[2:] != anchor:
        raise ValueError(
            f"freq {hint!r} was requested but every ds falls on a {anchor}. Fix: use freq 'W' (inferred as "
            f"'W-{anchor}') or relabel the weeks."
        )
    return f"W-{anchor}"


def calendar_feature_names(freq: str) -> list[str]:
    """The ``cal_*`` columns ``calendar_features`` produces at this frequency."""
    return list(_NAMES[base_freq(freq)])


def calendar_features(ds: pd.Series, freq: str) -> pd.DataFrame:
    """Calendar features of each timestamp (same index as ``ds``; small integer dtypes).

    Computed once per distinct timestamp and broadcast, so a million-row grid costs milliseconds.
    """
    names = calendar_feature_names(freq)
    ds = pd.Series(ds)
    codes, uniques = pd.factorize(ds, sort=False)
    if (codes < 0).any():
        raise ValueError(f"ds has {int((codes < 0).sum())} missing timestamps; the grid must be complete.")
    u = pd.DatetimeIndex(uniques)
    days_in_month = u.days_in_month.to_numpy()
    cols: dict[str, np.ndarray] = {
        "cal_hour": u.hour.to_numpy().astype("int8"),
        "cal_dayofweek": u.dayofweek.to_numpy().astype("int8"),
        "cal_dayofmonth": u.day.to_numpy().astype("int8"),
        "cal_dayofyear": u.dayofyear.to_numpy().astype("int16"),
        "cal_weekofyear": u.isocalendar()["week"].to_numpy().astype("int8"),
        "cal_month": u.month.to_numpy().astype("int8"),
        "cal_quarter": u.quarter.to_numpy().astype("int8"),
        "cal_year": u.year.to_numpy().astype("int16"),
        "cal_is_month_start": u.is_month_start.astype("int8"),
        "cal_is_month_end": u.is_month_end.astype("int8"),
        "cal_days_to_month_end": (days_in_month - u.day.to_numpy()).astype("int8"),
    }
    return pd.DataFrame({name: cols[name][codes] for name in names}, index=ds.index)


MIN_STEP = pd.Timedelta(minutes=1)
MAX_STEP = pd.Timedelta(days=7)
_DAY = pd.Timedelta(days=1)


def seasonal_slots(ds: pd.Series | pd.DatetimeIndex, freq: str) -> tuple[np.ndarray, int, np.ndarray, int]:
    """``(time_of_day, n_time_of_day, day_of_week, n_day_of_week)`` slot indices of each timestamp.

    Below a day: slot of the day (``n = 1 day / step``) and weekday (7). Daily: one time-of-day slot, the
    weekday. Longer steps: one slot each (no within-week seasonality to learn). Slots depend only on the
    timestamp, never on ``y``. Plain integer arithmetic on the nanoseconds (a streamed point costs microseconds).
    """
    step = step_length(freq)
    ns = np.asarray(ds, dtype="datetime64[ns]").view("int64")
    n = len(ns)
    days, since_midnight = np.divmod(ns, _DAY.value)
    weekday = (days + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0
    if step < _DAY:
        n_tod = int(_DAY // step)
        return np.minimum(since_midnight // step.value, n_tod - 1), n_tod, weekday, 7
    if step == _DAY:
        return np.zeros(n, "int64"), 1, weekday, 7
    return np.zeros(n, "int64"), 1, np.zeros(n, "int64"), 1


@functools.lru_cache(maxsize=64)  # pure in the string; a streamed point asks for its step each time
def _fixed_step(freq: str) -> pd.Timedelta:
    text = freq.strip() if isinstance(freq, str) else freq
    try:
        with warnings.catch_warnings():  # deprecated aliases ("M") warn before they fail below
            warnings.simplefilter("ignore", FutureWarning)
            offset = pd.tseries.frequencies.to_offset(text)
        step = pd.Timedelta(offset.nanos, unit="ns")
    except (ValueError, TypeError):
        step = None
    if step is None or not (MIN_STEP <= step <= MAX_STEP) or (step < _DAY and _DAY % step != pd.Timedelta(0)):
        raise ValueError(
            f"Unsupported frequency {freq!r}: use a regular step from 1 minute to 1 week that divides a day "
            "evenly when shorter than one, e.g. '1min', '5min', '15min', '30min', 'H', 'D' or 'W'."
        )
    return step


def _examples(values: pd.Series, k: int = 3) -> list[str]:
    return [str(v) for v in values.head(k)]
