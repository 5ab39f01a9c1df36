"""Order-volume anomaly detector: is the volume arriving now normal, given the series' own rhythm and the
drivers that were planned?

``VolumeDetector`` runs the online recursion of ``training.volume.kernel`` over each series of a validated
``series`` table (``series_id, ds, y[, open]``) at a regular frequency from 1 minute to 1 week:

- expectation = a robust seasonal baseline on the log scale (level, time-of-day and weekday profiles) plus
  the learned effect of each known driver that is active (``promo*`` / ``*holiday*`` columns of the
  covariates table; ``open = 0`` in the series means closed: expected 0, never flagged);
- ``score`` = 1 - the two-sided tail probability of the point under a Poisson-plus-over-dispersion
  distribution around the expectation; ``lo``/``hi`` = the 95% interval of that distribution;
- ``flagged``: inside an alert event (opened by a point scoring at least ``threshold`` whose deviation also
  exceeds what the series shows about once per ``return_period`` anyway, kept open by hysteresis, see the
  kernel); ``direction``: ``surge`` or ``drop``; one alert per event, at its first point.

Strictly causal: the verdict at ``t`` uses only points at or before ``t`` of that series (and covariates,
which are planned in advance). It keeps learning after warm-up; ``warmup`` is measured from each series' own
first point and nothing is flagged inside it. ``detect`` continues from the learned state, so batch runs,
runs cut into pieces and point-by-point ``update`` calls give identical verdicts.

Defaults are general, not tuned per series: every learning rate is a half-life in time (level and scale: one
day, or a week / a quarter for daily / weekly data; profiles: a week of days, four weeks of weekdays).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from features.calendar import seasonal_slots, step_length
from features.covariates import driver_flags
from training.progress import Progress, resolve
from training.volume import kernel
from training.volume.reasons import AlertMemory, reason_for

__all__ = ["VolumeDetector", "VERDICT_COLUMNS"]

VERDICT_COLUMNS = ("series_id", "ds", "y", "expected", "lo", "hi", "score", "flagged", "direction", "reason")
Covariates = pd.DataFrame | Sequence[pd.DataFrame] | None  # one covariates table or several

_DAY = pd.Timedelta(days=1)
_N_PARAMS = 14  # length of the kernel's parameter vector (``_params``)
_SECOND = 1_000_000_000


class VolumeDetector(BaseEstimator):
    """Online volume anomaly detector (a scikit-learn estimator: ``__init__`` stores parameters only, so
    ``get_params`` / ``clone`` work; learned state ends in ``_``).

    Parameters
    ----------
    freq: the grid, e.g. ``"5min"``, ``"30min"``, ``"H"``, ``"D"``, ``"W"``.
    warmup: duration learned from each series' first point before anything is flagged (e.g. ``"8d"``), or
        ``"auto"`` (default): scaled to the grid, two days below a day (576 points of 5 minutes: each
        time-of-day slot seen twice, two scale half-lives), four weeks for daily and 13 weeks for weekly data
        (one scale half-life; each weekday seen four times).
    threshold: score that opens an alert event (0.99999, about 4.4 sd: a deviation an exact model would
        show once in 100,000 normal points, about a year of 5-minute points).
    exit_z: an open event stays open while points deviate the same way by at least this many sd ...
    hold: ... and for this long after the last such point (hysteresis: one event, one alert).
    clip: residuals beyond this many sd are clipped before they are learned from.
    return_period: an alert must also deviate more than the series' own return level: the |z| its largest
        deviation per day (per 24 steps on hourly or coarser grids) exceeds about once in this period, learned
        online from the series (self-calibration: a series whose normal days hold bursts the model scores as
        extreme needs a larger one to alert). None: the model's tail probability alone.
    unit: the noun in reasons ("412 orders in 5 min ...").
    drivers: names of drivers given point by point (``update(drivers=...)``, e.g. ``("promo_flag",)`` for a
        planned promo posted with each actual), in addition to the covariates tables' driver columns; in a
        ``detect`` without covariates they are 0 (nothing planned).
    short: the short time scale: half-life of the smoothed z an opening point must agree with (a run, not a
        blip) and that keeps an ongoing event open.
    time_of_week: learn the time-of-week profile (the interaction of time of day and weekday) too.
    """

    TOW_HALF_LIFE = 4.0  # visits (weeks) of a time-of-week slot

    def __init__(
        self,
        freq: str = "5min",
        warmup: str = "auto",
        threshold: float = 0.99999,
        exit_z: float = 2.0,
        hold: str = "1h",
        clip: float = 3.0,
        return_period: str | None = "14d",
        unit: str = "orders",
        drivers: tuple[str, ...] = (),
        short: str = "1h",
        time_of_week: bool = True,
    ) -> None:
        self.freq = freq
        self.warmup = warmup
        self.threshold = threshold
        self.exit_z = exit_z
        self.hold = hold
        self.clip = clip
        self.return_period = return_period
        self.unit = unit
        self.drivers = drivers
        self.short = short
        self.time_of_week = time_of_week

    # ------------------------------------------------------------------------------------------ public
    def fit(self, series: pd.DataFrame, covariates: Covariates = None) -> VolumeDetector:
        """Learn from ``series`` (verdicts discarded); ``detect`` / ``update`` then continue from there."""
        self.detect(series, covariates, include_warmup=True)
        return self

    def detect(
        self,
        series: pd.DataFrame,
        covariates: Covariates = None,
        *,
        include_warmup: bool = False,
        progress: Progress | None = None,
    ) -> pd.DataFrame:
        """Verdicts for every point of ``series`` (continuing each series' state), ``VERDICT_COLUMNS``.

        Points inside a series' warm-up are left out unless ``include_warmup``. Every series' new points
        must come after the last point this detector has seen of it.
        """
        self._prepare(covariates)
        frame = _checked(series)
        drivers = self._driver_matrix(frame, covariates)
        closed = (frame["open"].to_numpy(dtype="float64", na_value=1.0) == 0) if "open" in frame else None
        frame = frame.reset_index(drop=True)
        parts = []
        bounds = _series_bounds(frame["series_id"])
        with resolve(progress).task("series", total=len(bounds)) as task:
            for sid, lo, hi in bounds:
                out, can_flag = self._run_series(
                    sid,
                    frame["ds"].to_numpy()[lo:hi],
                    frame["y"].to_numpy(dtype="float64", na_value=np.nan)[lo:hi],
                    drivers[lo:hi],
                    closed[lo:hi] if closed is not None else np.zeros(hi - lo),
                )
                part = self._verdicts(sid, frame.iloc[lo:hi], out, drivers[lo:hi])
                parts.append(part if include_warmup else part[can_flag])
                task.advance()
        if not parts:
            return pd.DataFrame({c: [] for c in VERDICT_COLUMNS})
        return pd.concat(parts, ignore_index=True)

    def update(
        self,
        series_id: str,
        ds: Any,
        y: float,
        drivers: dict[str, float] | None = None,
        open: int | None = None,
    ) -> dict[str, Any]:
        """Verdict for one new point (streaming); same result as ``detect`` on it. ``drivers`` maps driver
        names (``drivers_``) to 0/1; unknown names raise."""
        self._prepare(None)
        ts = pd.Timestamp(ds)
        row = np.zeros((1, len(self.drivers_)))
        for name, value in (drivers or {}).items():
            if name not in self.drivers_:
                raise ValueError(
                    f"Unknown driver {name!r}; this detector knows {list(self.drivers_) or 'no drivers'}."
                )
            row[0, self.drivers_.index(name)] = float(bool(value))
        closed = np.array([1.0 if open == 0 else 0.0])
        out, can_flag = self._run_series(
            str(series_id),
            np.array([ts.to_datetime64()], dtype="datetime64[ns]"),
            np.array([float(y)]),
            row,
            closed,
        )
        columns = self._verdict_columns(
            str(series_id), np.array([ts.to_datetime64()]), np.array([float(y)]), out, row
        )
        verdict = {name: values[0] for name, values in columns.items()}
        verdict["ds"] = ts
        verdict["in_warmup"] = not bool(can_flag[0])
        verdict["alert"] = bool(out[0, 7])
        return verdict

    def check_points(self, series_id: str, ds: Sequence[Any]) -> None:
        """Raise the ``ValueError`` that ``update`` would raise for these new points of ``series_id`` (in time
        order): a point at or before the last one seen, or off the series' grid. Learns nothing, so a caller
        can refuse a whole request before judging any of it."""
        self._prepare(None)
        if len(ds) == 0:
            return
        stamps = pd.DatetimeIndex([pd.Timestamp(t) for t in ds]).to_numpy(dtype="datetime64[ns]")
        state = self.states_.get(str(series_id))
        if state is None:
            state = kernel.new_state(self.n_tod_, self.n_dow_, len(self.drivers_))
        self._grid_start(str(series_id), state, stamps)

    def series_state(self, series_id: str) -> tuple[np.ndarray, AlertMemory, int] | None:
        """``(state vector, alert memory, alerts opened)`` of one series (copies; None: never seen), to store
        and ``restore_series_state`` in another process."""
        self._prepare(None)
        sid = str(series_id)
        if sid not in self.states_:
            return None
        memory = self.memory_.get(sid, AlertMemory())
        copy = AlertMemory(
            alerts=deque(memory.alerts, maxlen=memory.alerts.maxlen), open_since=memory.open_since
        )
        return self.states_[sid].copy(), copy, int(self.alerts_.get(sid, 0))

    def restore_series_state(
        self, series_id: str, state: np.ndarray, memory: AlertMemory, alerts: int
    ) -> None:
        """Continue ``series_id`` from a state saved by ``series_state`` of a detector with the same
        parameters (a state of another grid or set of drivers is refused)."""
        self._prepare(None)
        size = kernel.state_size(self.n_tod_, self.n_dow_, len(self.drivers_))
        if np.shape(state) != (size,):
            raise ValueError(
                f"Series {series_id!r}: a stored detector state of {np.size(state)} values does not fit this "
                f"detector ({size} for freq {self.freq!r} and drivers {self.drivers_}). Fix: serve the detector "
                "the state was written by, or delete the series' stored state to learn it again."
            )
        sid = str(series_id)
        self.states_[sid] = np.array(state, dtype=np.float64)
        self.memory_[sid] = memory
        self.alerts_[sid] = int(alerts)

    def forget_series(self, series_id: str) -> None:
        """Drop what this detector learned of ``series_id`` (e.g. before restoring a stored state)."""
        for learned in ("states_", "memory_", "alerts_"):
            getattr(self, learned, {}).pop(str(series_id), None)

    def driver_names(self) -> list[str]:
        """The drivers this detector knows (``update`` accepts these names)."""
        self._prepare(None)
        return list(self.drivers_)

    def warmup_duration(self) -> str:
        """``warmup`` as a duration (``"auto"`` resolved for ``freq``)."""
        if str(self.warmup).strip().lower() != "auto":
            return self.warmup
        step = step_length(self.freq)
        return "2D" if step < _DAY else ("28D" if step == _DAY else "91D")

    def last_seen(self, series_id: str) -> pd.Timestamp | None:
        """Timestamp of the last point of ``series_id`` this detector has judged (None: none yet)."""
        state = getattr(self, "states_", {}).get(str(series_id))
        if state is None or np.isnan(state[kernel.LAST_DS]):
            return None
        return pd.Timestamp(int(state[kernel.LAST_DS]), unit="s")

    def alert_count(self) -> int:
        """Alerts (events) opened so far, over all series."""
        return int(sum(self.alerts_.values())) if hasattr(self, "alerts_") else 0

    # --------------------------------------------------------------------------------------- internals
    def _prepare(self, covariates: Covariates) -> None:
        if hasattr(self, "states_"):
            return
        self.step_ = step_length(self.freq)
        durations = [("warmup", self.warmup_duration()), ("hold", self.hold), ("short", self.short)]
        if self.return_period is not None:
            durations.append(("return_period", self.return_period))
        for name, value in durations:
            auto = " (or 'auto')" if name == "warmup" else ""
            try:
                negative = pd.Timedelta(value) < pd.Timedelta(0)
            except ValueError:
                negative = None
            if negative is None or negative:
                raise ValueError(
                    f"{name} must be a duration >= 0 such as '8d', '12h' or '30min'{auto}. Got {value!r}."
                )
        if not 0.5 < float(self.threshold) < 1.0:
            raise ValueError(f"threshold must be in (0.5, 1), e.g. 0.99999. Got {self.threshold!r}.")
        self.warmup_seconds_ = pd.Timedelta(self.warmup_duration()).value / _SECOND
        _, self.n_tod_, _, self.n_dow_ = seasonal_slots(pd.DatetimeIndex([]), self.freq)
        keys = pd.DataFrame({"series_id": pd.Series([], dtype="string"), "ds": pd.DatetimeIndex([])})
        self.drivers_ = [] if covariates is None else list(_flags(keys, covariates).columns)
        self.drivers_ += [str(d) for d in self.drivers if str(d) not in self.drivers_]
        self.params_ = self._params()
        self.states_: dict[str, np.ndarray] = {}
        self.memory_: dict[str, AlertMemory] = {}
        self.alerts_: dict[str, int] = {}

    def _params(self) -> np.ndarray:
        step = self.step_
        if step < _DAY:
            per_day = _DAY / step
            level_hl, scale_hl, tod_hl, dow_hl = per_day, per_day, 7.0, 28.0 * per_day / 7.0
        elif step == _DAY:
            level_hl, scale_hl, tod_hl, dow_hl = 7.0, 28.0, 1.0, 4.0
        else:
            level_hl, scale_hl, tod_hl, dow_hl = 4.0, 13.0, 1.0, 1.0
        hold_steps = max(1.0, math.ceil(pd.Timedelta(self.hold) / step))
        # return level: blocks of a day (24 steps for hourly or longer grids); an alert must also exceed the
        # |z| this series reaches about once per ``return_period``
        self.block_days_ = 1.0 if step < pd.Timedelta(hours=1) else 24 * step / _DAY
        return_blocks = (
            0.0
            if self.return_period is None
            else max(2.0, pd.Timedelta(self.return_period) / (self.block_days_ * _DAY))
        )
        z95 = 1.959963984540054
        min_driver = max(3.0, min(_DAY / step, 12.0))  # points of a driver seen before its effect is trusted
        return np.array(
            [
                _gain(level_hl),
                _gain(tod_hl),
                _gain(dow_hl),
                _gain(2.0 * min_driver),
                _gain(scale_hl),
                float(self.clip),
                float(self.threshold),
                float(self.exit_z),
                hold_steps,
                z95,
                min_driver,
                return_blocks,
                _gain(self.TOW_HALF_LIFE) if self.time_of_week else 0.0,
                _gain(max(1.0, pd.Timedelta(self.short) / step)),
            ]
        )

    def _run_series(
        self, sid: str, ds: np.ndarray, y: np.ndarray, drivers: np.ndarray, closed: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        state = self.states_.get(sid)
        if state is None:
            state = kernel.new_state(self.n_tod_, self.n_dow_, len(self.drivers_))
        size = kernel.state_size(self.n_tod_, self.n_dow_, len(self.drivers_))
        if len(state) != size or len(self.params_) != _N_PARAMS:  # the kernel does not check its bounds
            raise ValueError(
                f"Series {sid!r}: this detector's state ({len(state)} values, {len(self.params_)} parameters) was "
                f"written by another version of the volume detector (now {size} and {_N_PARAMS}). Fix: run "
                "`orderpulse detect volume --log-mlflow` again and serve the new detector."
            )
        first, secs = self._grid_start(sid, state, ds)
        tod, _, dow, _ = seasonal_slots(ds, self.freq)
        block = (secs // (86400.0 * self.block_days_)).astype(np.int64).astype(np.float64)
        can_flag = secs >= first + self.warmup_seconds_
        out = np.empty((len(y), len(kernel.OUT_COLUMNS)), dtype=np.float64)
        kernel.run(
            state,
            np.ascontiguousarray(y, dtype=np.float64),
            tod,
            dow,
            block,
            np.ascontiguousarray(drivers, dtype=np.float64),
            np.ascontiguousarray(closed, dtype=np.float64),
            can_flag.astype(np.float64),
            self.n_tod_,
            self.n_dow_,
            self.params_,
            out,
        )
        state[kernel.FIRST_DS] = first
        state[kernel.LAST_DS] = secs[-1]
        self.states_[sid] = state
        self.alerts_[sid] = self.alerts_.get(sid, 0) + int(out[:, 7].sum())
        return out, can_flag

    def _grid_start(self, sid: str, state: np.ndarray, ds: np.ndarray) -> tuple[float, np.ndarray]:
        """The series' grid start and ``ds`` in epoch seconds; refuses points at or before the last one seen
        and points off the grid (which starts at the series' first point)."""
        secs = ds.astype("datetime64[s]").astype("int64").astype("float64")
        if not np.isnan(state[kernel.LAST_DS]) and secs[0] <= state[kernel.LAST_DS]:
            last = pd.Timestamp(int(state[kernel.LAST_DS]), unit="s")
            raise ValueError(
                f"Series {sid!r}: point at {pd.Timestamp(ds[0])} is not after the last point already seen "
                f"({last}). Fix: send each series' points in time order, once."
            )
        first = secs[0] if np.isnan(state[kernel.FIRST_DS]) else state[kernel.FIRST_DS]
        off = np.mod(secs - first, self.step_.value / _SECOND) != 0
        if off.any():
            raise ValueError(
                f"Series {sid!r}: {int(off.sum())} timestamps are off its {self.freq!r} grid, which starts at "
                f"{pd.Timestamp(int(first), unit='s')} (e.g. {[str(pd.Timestamp(v)) for v in ds[off][:3]]}). "
                "Fix: aggregate y per step of the frequency (one point per step, on the grid), or give the "
                "frequency the data has (--freq, ORDERPULSE_VOLUME_FREQ in the service)."
            )
        return first, secs

    def _verdicts(self, sid: str, rows: pd.DataFrame, out: np.ndarray, drivers: np.ndarray) -> pd.DataFrame:
        y = rows["y"].to_numpy(dtype="float64", na_value=np.nan)
        return pd.DataFrame(self._verdict_columns(sid, rows["ds"].to_numpy(), y, out, drivers))

    def _verdict_columns(
        self, sid: str, ds: np.ndarray, y: np.ndarray, out: np.ndarray, drivers: np.ndarray
    ) -> dict[str, Any]:
        """``VERDICT_COLUMNS`` as arrays; writes the reasons of flagged (and driver-explained) points."""
        flagged = out[:, 5] > 0.5
        direction = np.where(out[:, 6] > 0, "surge", np.where(out[:, 6] < 0, "drop", ""))
        memory = self.memory_.setdefault(sid, AlertMemory())
        reasons = np.full(len(y), "", dtype=object)
        explained = (out[:, 3] >= self.threshold) & ~flagged & (drivers.sum(axis=1) > 0)
        for i in np.flatnonzero(flagged | explained):
            active = [n for n, a in zip(self.drivers_, drivers[i], strict=True) if a > 0.5]
            reasons[i] = reason_for(
                y=y[i],
                expected=out[i, 0],
                lo=out[i, 1],
                hi=out[i, 2],
                ds=pd.Timestamp(ds[i]),
                step=self.step_,
                unit=self.unit,
                drivers=self.drivers_,
                active=active,
                memory=memory,
                opens=bool(out[i, 7]),
                flagged=bool(flagged[i]),
                event=str(direction[i]),
            )
        return {
            "series_id": np.full(len(y), sid, dtype=object),
            "ds": ds,
            "y": y,
            "expected": out[:, 0],
            "lo": out[:, 1],
            "hi": out[:, 2],
            "score": out[:, 3],
            "flagged": flagged,
            "direction": direction,
            "reason": reasons,
        }

    def _driver_matrix(self, frame: pd.DataFrame, covariates: Covariates) -> np.ndarray:
        if covariates is None and set(self.drivers_) <= {str(d) for d in self.drivers}:
            return np.zeros((len(frame), len(self.drivers_)))  # point-by-point drivers: nothing planned
        if covariates is None:
            raise ValueError(
                f"This detector learned the drivers {self.drivers_}; pass the covariates table with them."
            )
        flags = _flags(frame[["series_id", "ds"]], covariates)
        flags = flags.assign(**{str(d): 0.0 for d in self.drivers if str(d) not in flags.columns})
        missing = [d for d in self.drivers_ if d not in flags.columns]
        if missing:
            raise ValueError(f"The covariates table lacks the drivers {missing} this detector learned.")
        return flags[self.drivers_].to_numpy(dtype="float64")


def _flags(keys: pd.DataFrame, covariates: Covariates) -> pd.DataFrame:
    """Driver flags from one covariates table or several (their driver names must not collide)."""
    tables = [covariates] if isinstance(covariates, pd.DataFrame) else list(covariates or [])
    parts = [driver_flags(keys, table) for table in tables]
    names = [c for part in parts for c in part.columns]
    twice = sorted({c for c in names if names.count(c) > 1})
    if twice:
        raise ValueError(
            f"Driver {twice} comes from more than one covariates table. Fix: rename the column in one."
        )
    return pd.concat(parts, axis=1) if parts else pd.DataFrame(index=keys.index)


def _gain(half_life: float) -> float:
    return 1.0 - 0.5 ** (1.0 / max(half_life, 1e-9))


def _checked(series: pd.DataFrame) -> pd.DataFrame:
    missing = [c for c in ("series_id", "ds", "y") if c not in series.columns]
    if missing:
        raise ValueError(
            f"The series table needs columns series_id, ds, y; missing {missing} (got {list(series.columns)[:10]})."
        )
    if not pd.api.types.is_datetime64_any_dtype(series["ds"]):
        raise TypeError(f"ds must be datetime64 (validate the table first). Got dtype {series['ds'].dtype}.")
    y = pd.to_numeric(series["y"], errors="coerce")
    bad = (y < 0).to_numpy(dtype=bool, na_value=False)
    if bad.any():
        raise ValueError(
            f"y must be a count >= 0, but {int(bad.sum())} rows are negative (e.g. {y[bad].head(3).tolist()}). "
            "Fix: send volumes, not differences."
        )
    frame = series.assign(series_id=series["series_id"].astype("string"), y=y)
    frame = frame.sort_values(["series_id", "ds"], kind="stable")
    dup = frame.duplicated(["series_id", "ds"], keep=False)
    if dup.any():
        raise ValueError(
            f"{int(dup.sum())} rows share a (series_id, ds) (e.g. {frame.loc[dup, ['series_id', 'ds']].head(2).values.tolist()}). "
            "Fix: aggregate them into one count per step."
        )
    return frame


def _series_bounds(ids: pd.Series) -> list[tuple[str, int, int]]:
    values = ids.to_numpy()
    if len(values) == 0:
        return []
    starts = np.flatnonzero(np.r_[True, values[1:] != values[:-1]])
    ends = np.r_[starts[1:], len(values)]
    return [(str(values[s]), int(s), int(e)) for s, e in zip(starts, ends, strict=True)]
