"""The per-point recursion of the volume detector, compiled with numba: one call runs a stretch of one series.

Model (on the ``log1p`` scale of the count ``y``)::

    m_t   = level + tod[slot of day] + dow[day of week] + tow[slot of week] + sum_k beta_k * driver_k,t
    var_t = mu_t / (mu_t + 1)**2 + phi          (Poisson noise of log1p(y) at mean mu_t = expm1(m_t), plus
                                                 an over-dispersion phi learned from the residuals)
    z_t   = (log1p(y_t) - m_t) / sqrt(var_t)

``tow`` is the interaction of time of day and weekday (Saturday 2 am is not Tuesday 2 am), learned from what
``tod`` and ``dow`` leave over with a fixed small gain per visit (shrunk towards 0: one visit a week is one
noisy point). ``score_t = erf(|z_t| / sqrt 2)`` = 1 - two-sided tail probability, so 0.999 means "a deviation
this large happens once in a thousand normal points". Every component learns online after the verdict (the
verdict at t never sees y_t in its expectation): exponential forgetting with half-lives in steps, and a 1/n gain
while a component has seen few points (so warm-up is a running mean, not a cold start). Residuals enter the
updates clipped at ``clip`` standard deviations (Huber), so a surge moves the expectation only a little; a
lasting level shift is absorbed over about a level half-life. The scale ``phi`` learns from points outside
events only, so an event does not widen the band the next one is judged against.

Two time scales: ``z_t`` per point, and ``zs_t``, an exponentially smoothed clipped z (half-life ``short``,
an hour by default) divided by its sd under independent points, so a run of unusual points adds up and one
blip moves it by at most ``clip * gain / sd``.

Alerts: a point *opens* an event when its score reaches ``threshold``, its |z| exceeds the series' return
level, and ``zs`` agrees in direction by at least one of its sd (the point is part of a run, not a lone blip),
after warm-up and not while a known driver that is still being learned explains it. The return level
self-calibrates the threshold to each series: the largest |z| of every block (a day) is kept, and the level is
the (1 - 1/return_blocks) quantile of the last ``RING`` block maxima, i.e. the deviation this series shows about
once per return period anyway (a Twitter-like series full of bursts needs a larger burst to alert than a
quiet Poisson-like one, where ``threshold`` decides). The event stays open, every point flagged, while points
(or ``zs``) keep deviating the same way by more than ``exit_z`` standard deviations, and for ``hold`` quiet
points after the last one (hysteresis); then it closes. One event = one alert, at its first point.

The state of a series is one float64 vector (``state_size``): it pickles, stores in a database row and
resumes exactly, so streaming one point at a time gives the same verdicts as a batch run.
"""

from __future__ import annotations

import math

import numba
import numpy as np

__all__ = ["state_size", "new_state", "run", "N_SEEN", "EVENT_DIR", "FIRST_DS", "LAST_DS", "OUT_COLUMNS"]

# fixed slots of the state vector
LEVEL, N_SEEN, PHI, N_PHI, EVENT_DIR, EVENT_QUIET, EVENT_POINTS, FIRST_DS, LAST_DS = 0, 1, 2, 3, 4, 5, 6, 7, 8
BLOCK, BLOCK_MAX, RETURN_Z, N_BLOCKS = 9, 10, 11, 12
SHORT = 13  # the short time scale: exponentially smoothed z
_HEAD = 14  # FIRST_DS / LAST_DS: epoch seconds, kept by the caller
RING = 64  # block maxima of |z| kept for the return level
SUPPORT_Z = 1.0  # an event opens where the smoothed z agrees by one of its sd or more (a run, not a blip)
OUT_COLUMNS = ("expected", "lo", "hi", "score", "z", "flagged", "direction", "opens")


def state_size(n_tod: int, n_dow: int, n_drivers: int) -> int:
    """Length of one series' state vector."""
    return _HEAD + 2 * n_tod + 2 * n_dow + 2 * _n_tow(n_tod, n_dow) + 2 * n_drivers + RING


@numba.njit(cache=True, inline="always")
def _n_tow(n_tod: int, n_dow: int) -> int:
    """Slots of the time-of-week profile (the interaction of time of day and weekday; 0 below two of each)."""
    return n_tod * n_dow if n_tod > 1 and n_dow > 1 else 0


def new_state(n_tod: int, n_dow: int, n_drivers: int) -> np.ndarray:
    """The state of a series that has seen nothing yet."""
    state = np.zeros(state_size(n_tod, n_dow, n_drivers), dtype=np.float64)
    state[FIRST_DS] = np.nan
    state[LAST_DS] = np.nan
    state[BLOCK] = -1.0
    return state


@numba.njit(cache=True, nogil=True)
def run(
    state: np.ndarray,
    y: np.ndarray,
    tod: np.ndarray,
    dow: np.ndarray,
    block: np.ndarray,
    drivers: np.ndarray,
    closed: np.ndarray,
    can_flag: np.ndarray,
    n_tod: int,
    n_dow: int,
    params: np.ndarray,
    out: np.ndarray,
) -> None:
    """Process points ``0..len(y)-1`` of one series in order, updating ``state`` in place.

    ``y``: counts (NaN = missing: no verdict, no learning); ``tod``/``dow``: slot indices; ``block``: index of
    the block (a day; 24 steps for daily or longer steps) whose largest |z| enters the return level; ``drivers``:
    (n, k) 0/1 activity of known drivers (promo, holiday...); ``closed``: 1 where the series is known to be
    closed (expected 0, never flagged); ``can_flag``: 0 inside warm-up. ``params`` = [level gain, tod gain,
    dow gain, driver gain, scale gain, clip, threshold, exit_z, hold, z95, min_driver_points, return_blocks,
    time-of-week gain, short gain]. ``out``: (n, 8) float64, columns ``OUT_COLUMNS``.
    """
    a_level, a_tod, a_dow, a_drv, a_scale = params[0], params[1], params[2], params[3], params[4]
    clip, threshold, exit_z, hold, z95, min_drv = (
        params[5],
        params[6],
        params[7],
        params[8],
        params[9],
        params[10],
    )
    return_blocks, a_tow, a_short = params[11], params[12], params[13]
    # the smoothed z of independent N(0, 1) points has sd sqrt(g / (2 - g)): divide it out
    short_sd = math.sqrt(a_short / (2.0 - a_short))
    k = drivers.shape[1]
    n_tow = _n_tow(n_tod, n_dow)
    o_tod = _HEAD
    o_tod_n = o_tod + n_tod
    o_dow = o_tod_n + n_tod
    o_dow_n = o_dow + n_dow
    o_tow = o_dow_n + n_dow
    o_tow_n = o_tow + n_tow
    o_beta = o_tow_n + n_tow
    o_beta_n = o_beta + k
    o_ring = o_beta_n + k
    for i in range(y.shape[0]):
        if block[i] != state[BLOCK]:
            _close_block(state, o_ring, return_blocks)
            state[BLOCK] = block[i]
        out[i, :5] = np.nan
        out[i, 5:] = 0.0  # not flagged, no direction, opens no alert
        if closed[i] > 0.5:
            out[i, :5] = 0.0  # expected 0, interval [0, 0], score 0
            continue
        v = y[i]
        if np.isnan(v):
            continue
        x = math.log1p(max(v, 0.0))
        if state[N_SEEN] == 0.0:
            state[LEVEL] = x
        t = o_tod + tod[i]
        d = o_dow + dow[i]
        w = o_tow + tod[i] + n_tod * dow[i]
        base = state[LEVEL] + state[t] + state[d] + (state[w] if n_tow > 0 else 0.0)
        effect = 0.0
        learning_up = False  # an active driver whose effect is still being learned
        for j in range(k):
            if drivers[i, j] > 0.5:
                effect += state[o_beta + j]
                if state[o_beta_n + j] < min_drv:
                    learning_up = True
        m = base + effect
        mu = max(math.expm1(m), 0.0)
        var = mu / ((mu + 1.0) * (mu + 1.0)) + state[PHI] + 1e-6
        sd = math.sqrt(var)
        e = x - m
        z = e / sd
        score = math.erf(abs(z) / math.sqrt(2.0))
        # short time scale: an exponentially smoothed z of clipped points, in sd of its own (a run of
        # moderately unusual points adds up; one burst moves it by at most clip * gain / short_sd)
        zc = min(max(z, -clip), clip)
        state[SHORT] += a_short * (zc - state[SHORT])
        zs = state[SHORT] / short_sd
        out[i, 0] = mu
        out[i, 1] = max(math.expm1(m - z95 * sd), 0.0)
        out[i, 2] = math.expm1(m + z95 * sd)
        out[i, 3] = score
        out[i, 4] = z
        sign = 1.0 if z > 0 else -1.0
        # ---- event state machine (hysteresis) ----
        explained = learning_up  # a driver still being learned explains any deviation while it is active
        if state[EVENT_DIR] != 0.0:
            same = (sign == state[EVENT_DIR] and abs(z) >= exit_z) or zs * state[EVENT_DIR] >= exit_z
            if same:
                state[EVENT_QUIET] = 0.0
            else:
                state[EVENT_QUIET] += 1.0
            if state[EVENT_QUIET] > hold or can_flag[i] < 0.5:
                state[EVENT_DIR] = 0.0
                state[EVENT_QUIET] = 0.0
            else:
                out[i, 5] = 1.0
                out[i, 6] = state[EVENT_DIR]
                state[EVENT_POINTS] += 1.0
        # an event opens on an extreme point that is part of a run: the smoothed z agrees by SUPPORT_Z sd (an
        # isolated blip, or the first point of a burst, does not open one; its second or third point does)
        opens = score >= threshold and abs(z) >= state[RETURN_Z] and zs * sign >= SUPPORT_Z
        if state[EVENT_DIR] == 0.0 and can_flag[i] > 0.5 and opens and not explained:
            state[EVENT_DIR] = sign
            state[EVENT_QUIET] = 0.0
            state[EVENT_POINTS] = 1.0
            out[i, 5] = 1.0
            out[i, 6] = sign
            out[i, 7] = 1.0
        # ---- learning (after the verdict) ----
        n = state[N_SEEN] + 1.0
        state[N_SEEN] = n
        trusted = state[N_PHI] >= 1.0 / a_scale  # enough points for the scale to clip with
        if trusted:  # the cold start's residuals say nothing about the series' normal extremes
            state[BLOCK_MAX] = max(state[BLOCK_MAX], abs(z))
        r = min(max(e, -clip * sd), clip * sd) if trusted else e
        # known drivers first: they absorb what the base expectation misses on their active points (a
        # driver still being learned takes the raw residual, and the base then learns nothing from the point)
        for j in range(k):
            if drivers[i, j] > 0.5:
                nb = state[o_beta_n + j] + 1.0
                state[o_beta_n + j] = nb
                g = max(a_drv, 1.0 / nb)
                step = g * (e if nb <= min_drv else r)
                state[o_beta + j] += step
                r -= step
        if learning_up:
            r = 0.0
        # then the base, component by component on what is left (Holt-Winters style; gains never sum above 1)
        g = max(a_level, 1.0 / n)
        state[LEVEL] += g * r
        r -= g * r
        if n_tod > 1:
            r = _learn(state, t, o_tod_n + tod[i], a_tod, r)
        if n_dow > 1:
            r = _learn(state, d, o_dow_n + dow[i], a_dow, r)
        if n_tow > 0:  # shrunk towards 0: a fixed gain from the first visit (one visit is one noisy point)
            state[w] += a_tow * r
            state[o_tow_n + tod[i] + n_tod * dow[i]] += 1.0
        if out[i, 5] > 0.5:  # the scale learns from normal points only: an event must not widen the band
            continue
        npf = state[N_PHI] + 1.0
        state[N_PHI] = npf
        ec = min(max(e, -clip * sd), clip * sd) if trusted else e
        extra = ec * ec - mu / ((mu + 1.0) * (mu + 1.0))
        state[PHI] = max(state[PHI] + max(a_scale, 1.0 / npf) * (extra - state[PHI]), 0.0)


@numba.njit(cache=True, nogil=True)
def _close_block(state: np.ndarray, o_ring: int, return_blocks: float) -> None:
    """Record the finished block's largest |z| and recompute the return level."""
    if state[BLOCK] < 0.0 or state[BLOCK_MAX] <= 0.0 or return_blocks <= 0.0:
        state[BLOCK_MAX] = 0.0
        return
    n = int(state[N_BLOCKS])
    state[o_ring + n % RING] = state[BLOCK_MAX]
    state[N_BLOCKS] = n + 1
    state[BLOCK_MAX] = 0.0
    m = min(n + 1, RING)
    state[RETURN_Z] = _quantile(state[o_ring : o_ring + m], 1.0 - 1.0 / return_blocks)


@numba.njit(cache=True, nogil=True)
def _quantile(ring: np.ndarray, q: float) -> float:
    """The q quantile of the recorded block maxima (linear interpolation): the |z| a series exceeds about
    once in ``1 / (1 - q)`` blocks anyway."""
    values = np.sort(ring)
    m = values.shape[0]
    pos = q * (m - 1)
    lo = int(math.floor(pos))
    hi = min(lo + 1, m - 1)
    return values[lo] + (values[hi] - values[lo]) * (pos - lo)


@numba.njit(cache=True, nogil=True, inline="always")
def _learn(state: np.ndarray, at: int, count_at: int, gain: float, r: float) -> float:
    """Move the profile value ``state[at]`` towards residual ``r`` (gain: 1/n while it has seen few points);
    return what is left of ``r`` for the next component."""
    n = state[count_at] + 1.0
    state[count_at] = n
    g = max(gain, 1.0 / n)
    state[at] += g * r
    return r - g * r
