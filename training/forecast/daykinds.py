"""Calendar correction: what a forecaster's out-of-sample errors say about holiday and promo days.

A global LightGBM fitted on years of history learns one promo uplift and one holiday effect, averaged over
those years; when the uplift drifts (on full Rossmann the backtest windows of 2015 were forecast about 3% high
on promo days and 4-6% low around public holidays, in every window) every later forecast inherits the error,
and a total over 1,000 stores keeps it while the stores' random errors cancel. The correction learns, per
*day kind*, the forecaster's relative bias on its own backtest windows and multiplies later forecasts by it:

=====================  ==============================================================================
day kind               the row's date (``features.covariates.driver_flags`` of the covariates table)
=====================  ==============================================================================
``<holiday>``          a holiday column is active that day, named as its features (``holiday_state``,
                       ``holiday_public``); where several are, the rarest one. Only columns active on at
                       most ``EVENT_SHARE`` (10%) of the rows are days; school holidays are seasons
``before_<holiday>``   that holiday is active the next day (one day, also for hourly data; one step for
``after_<holiday>``    weekly data) or was the day before
``weekday=<Sun>``      otherwise, a *sparse weekday*: one on which most series are closed (at most
                       ``SPARSE_WEEKDAY_SHARE`` (50%) as many rows open as on the busiest weekday, in the
                       predictions the correction is learned from; daily and intraday data only). On full
                       Rossmann that is Sunday: the ~30 stores that open then were forecast 3.6-9.0% low in
                       every backtest window, a bias the promo kinds averaged away
``promo=<names>``      otherwise: the promo columns active that day (``promo=promo2_active+promo``), or
                       ``promo=none``
=====================  ==============================================================================

Per backtest window, a kind's log error is ``log(sum(y) / sum(yhat))`` over its rows minus the same over the
whole window, so the window's overall level (the drift of a model fitted once at the first origin, which the
final model does not share) is taken out and only the kinds' bias *relative* to each other is kept. The kinds'
errors are averaged over the windows (weighted by their forecast volume) and shrunk toward 0 by ``days / (days +
prior_days)``, ``days`` the distinct dates of that kind in the backtest, so a kind seen on two days barely
moves anything. Closed rows (``open == 0``) are left out and stay exactly 0.

Measured on full Rossmann (1,115 stores, 42 held-out days, store model fitted to the cut, correction learned
on the backtest windows before it, three cuts): README "Forecasting" (calendar correction) and
docs/accuracy/hierarchy.md, "Session 7".
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from features.calendar import step_length
from features.covariates import driver_flags

__all__ = [
    "CalendarCorrection",
    "day_kinds",
    "event_holidays",
    "fit_calendar_correction",
    "sparse_weekdays",
    "EVENT_SHARE",
    "SPARSE_WEEKDAY_SHARE",
]

# a holiday column active on more than this share of the rows is a season (school holidays), not a day kind
EVENT_SHARE = 0.1
# a weekday with at most this share of the busiest weekday's open rows is a kind of its own (Sunday trading)
SPARSE_WEEKDAY_SHARE = 0.5
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def event_holidays(covariates: pd.DataFrame | None) -> tuple[str, ...]:
    """The holiday columns of ``covariates`` that mark days, not seasons: their ``<prefix>_flag`` names, active
    on at most ``EVENT_SHARE`` of the table's rows, the rarest first."""
    if covariates is None or not len(covariates):
        return ()
    keys = covariates[["ds"]].assign(series_id=covariates.get("series_id"))
    flags = driver_flags(keys, covariates)
    share = {c: float(flags[c].mean()) for c in flags.columns if c.startswith("holiday")}
    return tuple(sorted((c for c, v in share.items() if v <= EVENT_SHARE), key=lambda c: (share[c], c)))


def sparse_weekdays(predictions: pd.DataFrame, freq: str) -> tuple[int, ...]:
    """The weekdays (0 = Monday) on which most series are closed: at most ``SPARSE_WEEKDAY_SHARE`` as many open
    rows (``open != 0``, or ``y > 0`` without an ``open`` column) as on the busiest weekday of ``predictions``.
    Empty for weekly or coarser data, and when every weekday trades alike."""
    if step_length(freq) >= pd.Timedelta(days=7) or not len(predictions):
        return ()
    is_open = predictions["open"] != 0 if "open" in predictions.columns else predictions["y"] > 0
    counts = is_open.groupby(pd.to_datetime(predictions["ds"]).dt.dayofweek.to_numpy()).sum()
    if len(counts) < 7 or counts.max() <= 0:
        return ()
    return tuple(int(d) for d in counts.index[counts <= SPARSE_WEEKDAY_SHARE * counts.max()])


def day_kinds(
    keys: pd.DataFrame,
    covariates: pd.DataFrame | None,
    freq: str,
    holidays: tuple[str, ...] | None = None,
    weekdays: tuple[int, ...] = (),
) -> np.ndarray:
    """The day kind (see the module doc) of every row of ``keys`` (``series_id``, ``ds``), as an object array.
    ``holidays``: the event columns (default ``event_holidays(covariates)``; a fitted correction keeps its own,
    so its kinds do not depend on which rows are asked for); ``weekdays``: the sparse weekdays
    (``sparse_weekdays``, kept by a fitted correction too)."""
    n = len(keys)
    labels = np.full(n, "promo=none", dtype=object)
    if weekdays and n:
        dow = pd.to_datetime(keys["ds"]).dt.dayofweek.to_numpy()
        for d in weekdays:
            labels[dow == d] = f"weekday={WEEKDAYS[d]}"
    if covariates is None or not len(covariates) or not n:
        return labels
    keys = keys[["series_id", "ds"]].reset_index(drop=True)
    shift = max(step_length(freq), pd.Timedelta(days=1))
    covariates = _near(covariates, keys, shift)
    now = driver_flags(keys, covariates)
    promo = sorted(c for c in now.columns if c.startswith("promo"))
    if promo:
        active = now[promo].to_numpy() > 0
        names = np.array([c.removesuffix("_flag") for c in promo], dtype=object)
        code = active @ (1 << np.arange(len(promo)))
        sparse = labels != "promo=none"  # a sparse weekday's rows keep their kind, promo or not
        for value in np.unique(code[code > 0]):
            bits = ((value >> np.arange(len(promo))) & 1).astype(bool)
            labels[(code == value) & ~sparse] = "promo=" + "+".join(names[bits])
    holiday = [c for c in (event_holidays(covariates) if holidays is None else holidays) if c in now.columns]
    if not holiday:
        return labels
    before = driver_flags(keys.assign(ds=keys["ds"] + shift), covariates)
    after = driver_flags(keys.assign(ds=keys["ds"] - shift), covariates)
    conditions, choices = [], []
    for col in holiday:
        name = col.removesuffix("_flag")
        conditions += [now[col].to_numpy() > 0, before[col].to_numpy() > 0, after[col].to_numpy() > 0]
        choices += [name, f"before_{name}", f"after_{name}"]
    return np.select(conditions, choices, default=labels).astype(object)


def _near(covariates: pd.DataFrame, keys: pd.DataFrame, shift: pd.Timedelta) -> pd.DataFrame:
    """The covariate rows that can matter for ``keys``: global or of their series, within ``shift`` of their
    dates (a one-series request does not scan a million-row calendar)."""
    ds = covariates["ds"]
    keep = ((ds >= keys["ds"].min() - shift) & (ds <= keys["ds"].max() + shift)).to_numpy()
    if "series_id" in covariates.columns:
        sid = covariates["series_id"]
        wanted = pd.Index(keys["series_id"].astype("string").unique())
        keep &= (sid.isna() | sid.astype("string").isin(wanted)).to_numpy()
    return covariates.loc[keep]


@dataclass
class CalendarCorrection:
    """Log-space corrections per day kind (``factors``; a kind not listed gets none) and the backtest dates
    each was learned from (``days``)."""

    factors: dict[str, float] = field(default_factory=dict)
    days: dict[str, int] = field(default_factory=dict)
    freq: str = "D"
    holidays: tuple[str, ...] = ()
    weekdays: tuple[int, ...] = ()  # sparse weekdays; a class default, so corrections pickled before load too

    def multipliers(self, keys: pd.DataFrame, covariates: pd.DataFrame | None) -> np.ndarray:
        """``exp(correction)`` of every row of ``keys`` (1 where its kind has none)."""
        if not self.factors:
            return np.ones(len(keys))
        kinds = pd.Series(day_kinds(keys, covariates, self.freq, self.holidays, self.weekdays))
        return np.exp(kinds.map(self.factors).fillna(0.0).to_numpy(dtype="float64"))

    def apply(self, predictions: pd.DataFrame, covariates: pd.DataFrame | None) -> pd.DataFrame:
        """A copy of ``predictions`` with ``yhat`` and every ``yhat_lo_*`` / ``yhat_hi_*`` column multiplied by
        its row's correction (multiplicative intervals stay around the corrected forecast; zeros stay 0)."""
        out = predictions.copy()
        if not self.factors or not len(out):
            return out
        m = self.multipliers(out, covariates)
        for col in [c for c in out.columns if c == "yhat" or c.startswith(("yhat_lo", "yhat_hi"))]:
            out[col] = out[col].to_numpy(dtype="float64") * m
        return out

    def to_dict(self) -> dict[str, float]:
        """Flat ``calendar.<kind>`` -> correction as a fraction (``exp(c) - 1``: -0.02 = -2%), named for MLflow
        metrics (``promo=promo2_active+promo`` -> ``calendar.promo.promo2_active_and_promo``)."""
        return {
            "calendar." + k.replace("=", ".").replace("+", "_and_"): float(np.expm1(v))
            for k, v in sorted(self.factors.items())
        }


def fit_calendar_correction(
    predictions: pd.DataFrame,
    covariates: pd.DataFrame | None,
    freq: str,
    prior_days: float = 5.0,
) -> CalendarCorrection:
    """Learn the corrections from out-of-sample predictions (``series_id, ds, y, yhat`` and optionally
    ``window`` and ``open``; e.g. ``backtest(...).predictions``). Only rows with a known ``y`` and a positive
    forecast count; without covariates there are no kinds to tell apart and the correction is empty."""
    if prior_days < 0:
        raise ValueError(f"prior_days must be >= 0. Got {prior_days!r}.")
    known = predictions.loc[predictions["y"].notna()]
    weekdays = sparse_weekdays(known, freq)
    rows = known.loc[known["yhat"] > 0]
    if "open" in rows.columns:
        rows = rows.loc[rows["open"] != 0]
    if (covariates is None and not weekdays) or not len(rows):
        return CalendarCorrection(freq=freq)
    holidays = event_holidays(covariates)
    window = rows["window"].to_numpy() if "window" in rows.columns else np.zeros(len(rows), dtype=np.int64)
    frame = pd.DataFrame(
        {
            "kind": day_kinds(rows, covariates, freq, holidays, weekdays),
            "window": window,
            "ds": rows["ds"].to_numpy(),
            "y": rows["y"].to_numpy(dtype="float64"),
            "yhat": rows["yhat"].to_numpy(dtype="float64"),
        }
    )
    totals = frame.groupby("window")[["y", "yhat"]].sum()
    level = np.log(totals["y"] / totals["yhat"])
    cells = frame.groupby(["kind", "window"])[["y", "yhat"]].sum().reset_index()
    cells = cells.loc[(cells["y"] > 0) & (cells["yhat"] > 0)]
    cells["error"] = np.log(cells["y"] / cells["yhat"]) - cells["window"].map(level).to_numpy()
    days = frame.groupby("kind")["ds"].nunique()
    factors, seen = {}, {}
    for kind, part in cells.groupby("kind"):
        n = int(days.get(kind, 0))
        mean = float(np.average(part["error"], weights=part["yhat"]))
        factors[str(kind)] = mean * n / (n + prior_days) if n + prior_days > 0 else 0.0
        seen[str(kind)] = n
    return CalendarCorrection(factors=factors, days=seen, freq=freq, holidays=holidays, weekdays=weekdays)
