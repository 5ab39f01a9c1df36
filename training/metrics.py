"""Forecast and classification metrics, computed the same way everywhere (backtests, MLflow, reports).

Forecast frames are long: ``series_id, ds, y, yhat`` plus optional ``open`` and interval columns
``yhat_lo_<L>`` / ``yhat_hi_<L>`` for a level ``L`` in percent. All metrics are fractions, not percentages
(``wape == 0.12`` means 12 %).

Which rows are scored
---------------------
Only *open periods with a known actual*: rows with ``open == 0`` (known in advance to be closed) and rows with a
missing ``y`` are excluded, and ``evaluate`` counts both (``n_closed_excluded``, ``n_missing_y_excluded``). A
missing ``yhat`` on a scored row is an error, never skipped. Metrics that divide by ``y`` skip ``y == 0``:

==========  =======================================================================================
metric      definition over the scored rows
==========  =======================================================================================
wape        ``sum|yhat - y| / sum y``                       (NaN when ``sum y == 0``)
mape        ``mean |yhat - y| / y`` over ``y > 0``           (``n_zero_y_excluded_from_mape`` counted)
rmspe       ``sqrt(mean(((y - yhat) / y)^2))`` over ``y > 0`` (the Rossmann competition metric)
smape       ``mean 2|yhat - y| / (|y| + |yhat|)``, in [0, 2]; a row with ``y == yhat == 0`` scores 0
bias        ``sum(yhat - y) / sum y``                      (> 0: over-forecast)
mase        ``mean|yhat - y| / scale_mae`` per series, then the mean over series (M4 convention)
rmsse       ``sqrt(mean((yhat - y)^2) / scale_mse)`` per series, then the mean over series (M5, unweighted)
coverage_L  share of scored rows with ``yhat_lo_L <= y <= yhat_hi_L``
width_L     mean ``yhat_hi_L - yhat_lo_L`` over the scored rows
==========  =======================================================================================

The MASE/RMSSE scales come from each series' *training* history (``train``): the mean absolute / squared
in-sample seasonal-naive error, where the seasonal-naive forecast of an open period is the previous open value
at the same position in the season (``seasonal_naive_errors``; closed or missing periods are skipped rather
than compared, so Sunday closures do not count as errors). A series without such a pair or with a zero scale
gets NaN and is counted in ``n_series_without_scale``.

Classification metrics (``auprc``, ``auroc``, ``brier``, ``ece``, ``precision_recall_at``,
``evaluate_classifier``) take 0/1 labels and probabilities; scikit-learn computes those it has.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

__all__ = [
    "wape",
    "mape",
    "rmspe",
    "smape",
    "bias",
    "coverage",
    "mase",
    "rmsse",
    "daily_total_error",
    "evaluate",
    "seasonal_naive_errors",
    "seasonal_scales",
    "infer_step",
    "default_season",
    "season_position",
    "auprc",
    "auroc",
    "brier",
    "ece",
    "precision_recall_at",
    "evaluate_classifier",
]

ArrayLike = np.ndarray | pd.Series | Sequence[float]

_EPOCH = pd.Timestamp("1970-01-01")


# ------------------------------------------------------------------------------------------ point metrics
def wape(y: ArrayLike, yhat: ArrayLike, open: ArrayLike | None = None) -> float:
    """Weighted absolute percentage error ``sum|yhat - y| / sum y`` over open rows with a known ``y``."""
    y_, f_ = _scored(y, yhat, open)
    return _ratio(np.abs(f_ - y_).sum(), y_.sum())


def mape(y: ArrayLike, yhat: ArrayLike, open: ArrayLike | None = None) -> float:
    """Mean absolute percentage error over scored rows with ``y > 0`` (zero actuals are skipped)."""
    y_, f_ = _scored(y, yhat, open)
    pos = y_ > 0
    return float(np.mean(np.abs(f_[pos] - y_[pos]) / y_[pos])) if pos.any() else float("nan")


def rmspe(y: ArrayLike, yhat: ArrayLike, open: ArrayLike | None = None) -> float:
    """Root mean squared percentage error (Rossmann's metric) over scored rows with ``y > 0``."""
    y_, f_ = _scored(y, yhat, open)
    pos = y_ > 0
    return float(np.sqrt(np.mean(((y_[pos] - f_[pos]) / y_[pos]) ** 2))) if pos.any() else float("nan")


def smape(y: ArrayLike, yhat: ArrayLike, open: ArrayLike | None = None) -> float:
    """Symmetric MAPE ``mean 2|yhat - y| / (|y| + |yhat|)`` in [0, 2]; ``y == yhat == 0`` scores 0."""
    y_, f_ = _scored(y, yhat, open)
    return float(np.mean(_smape_terms(y_, f_))) if y_.size else float("nan")


def bias(y: ArrayLike, yhat: ArrayLike, open: ArrayLike | None = None) -> float:
    """Relative bias ``sum(yhat - y) / sum y``: positive when the forecast is too high."""
    y_, f_ = _scored(y, yhat, open)
    return _ratio((f_ - y_).sum(), y_.sum())


def coverage(y: ArrayLike, lo: ArrayLike, hi: ArrayLike, open: ArrayLike | None = None) -> float:
    """Share of scored rows whose actual lies in ``[lo, hi]`` (bounds included)."""
    mask = _scored_mask(y, open)
    y_ = _as_float(y)[mask]
    lo_, hi_ = _as_float(lo)[mask], _as_float(hi)[mask]
    _check_no_missing(lo_, "yhat_lo")
    _check_no_missing(hi_, "yhat_hi")
    return float(np.mean((y_ >= lo_) & (y_ <= hi_))) if y_.size else float("nan")


def mase(frame: pd.DataFrame, train: pd.DataFrame, season: int | None = None) -> float:
    """Mean absolute scaled error: per-series MASE averaged over series (see the module docstring)."""
    overall, _ = evaluate(frame, train=train, levels=(), season=season)
    return overall["mase"]


def rmsse(frame: pd.DataFrame, train: pd.DataFrame, season: int | None = None) -> float:
    """Root mean squared scaled error: per-series RMSSE averaged over series (see the module docstring)."""
    overall, _ = evaluate(frame, train=train, levels=(), season=season)
    return overall["rmsse"]


def daily_total_error(frame: pd.DataFrame) -> float:
    """WAPE of the total across series per ``ds``: ``sum_ds |sum yhat - sum y| / sum_ds sum y``.

    Only scored rows (open, known ``y``) enter the totals, so the totals of actuals and forecasts cover the same
    rows. This is the error of the company-wide daily (or hourly, weekly: one ``ds``) total.
    """
    _require(frame, ("ds", "y", "yhat"), "daily_total_error")
    mask = _scored_mask(frame["y"], frame["open"] if "open" in frame.columns else None)
    scored = frame.loc[mask, ["ds", "y", "yhat"]]
    _check_no_missing(_as_float(scored["yhat"]), "yhat")
    totals = scored.groupby("ds", sort=False)[["y", "yhat"]].sum()
    return _ratio(np.abs(totals["yhat"] - totals["y"]).sum(), totals["y"].sum())


def evaluate(
    frame: pd.DataFrame,
    train: pd.DataFrame | None = None,
    levels: Sequence[int] = (80, 95),
    by: str | Sequence[str] | None = None,
    season: int | None = None,
) -> tuple[dict[str, float], pd.DataFrame]:
    """All forecast metrics at once: ``(overall, per_group)``.

    Parameters
    ----------
    frame : ``series_id, ds, y, yhat`` plus optional ``open`` and ``yhat_lo_<L>``/``yhat_hi_<L>`` columns.
    train : the training history (``series_id, ds, y``, optional ``open``) that defines the MASE/RMSSE scales;
        without it ``mase``/``rmsse`` are left out.
    levels : interval levels to score; a level whose two columns are both absent is skipped (a model without
        intervals), a level with only one of them is an error.
    by : column(s) of the breakdown table, default ``"series_id"`` (e.g. ``["window"]`` in a backtest).
    season : seasonal period in steps for the MASE/RMSSE scales; default from the step of ``train``
        (``default_season``).

    Returns
    -------
    overall : flat ``{name: float}`` ready for ``mlflow.log_metrics``: the metrics, ``coverage_<L>``,
        ``width_<L>``, ``daily_total_wape`` and the row counts (``n_rows``, ``n_scored``, ``n_closed_excluded``,
        ``n_missing_y_excluded``, ``n_zero_y_excluded_from_mape``, ``n_series``, ``n_series_without_scale``).
    per_group : one row per value of ``by`` with ``n_scored`` and the same metrics (for ``by`` other than the
        series, MASE/RMSSE pool the scaled errors of the group's rows).
    """
    _require(frame, ("series_id", "ds", "y", "yhat"), "evaluate")
    by_cols = [by] if isinstance(by, str) else list(by or ["series_id"])
    _require(frame, tuple(by_cols), "evaluate (by)")
    levels = tuple(int(lv) for lv in levels)
    level_cols = _level_columns(frame, levels)

    y = _as_float(frame["y"])
    yhat = _as_float(frame["yhat"])
    closed = _as_float(frame["open"]) == 0 if "open" in frame.columns else np.zeros(len(frame), dtype=bool)
    missing_y = np.isnan(y) & ~closed
    scored = ~closed & ~np.isnan(y)
    _check_no_missing(yhat[scored], "yhat")

    terms = _row_terms(frame, y, yhat, scored, level_cols)
    scaled = train is not None
    n_without_scale = 0
    if scaled:
        scales = seasonal_scales(train, season=season)
        sid = frame["series_id"].astype("string")
        mae_s = _as_float(sid.map(scales["scale_mae"]))
        mse_s = _as_float(sid.map(scales["scale_mse"]))
        ok = scored & np.isfinite(mae_s) & (mae_s > 0)
        err = yhat - y
        terms["n_scaled"] = ok.astype("float64")
        terms["ase"] = np.where(ok, np.abs(err) / np.where(ok, mae_s, 1.0), 0.0)
        terms["sse"] = np.where(ok, err**2 / np.where(ok, mse_s, 1.0), 0.0)
        has_scored = pd.Series(scored).groupby(sid.to_numpy()).any()
        has_scale = pd.Series(ok).groupby(sid.to_numpy()).any()
        n_without_scale = int((has_scored & ~has_scale).sum())

    keys = [frame[c].to_numpy() for c in by_cols]
    per_group = _metrics_from_sums(
        terms.groupby(keys, sort=True, dropna=False).sum(), levels, level_cols, scaled
    )
    per_group.index.names = by_cols
    per_group = per_group.reset_index()

    overall_row = _metrics_from_sums(terms.sum().to_frame().T, levels, level_cols, scaled).iloc[0]
    overall = {k: float(v) for k, v in overall_row.items() if k != "n_scored"}
    if scaled:
        per_series = _metrics_from_sums(terms.groupby(frame["series_id"].to_numpy()).sum(), (), {}, True)
        overall["mase"] = (
            float(per_series["mase"].mean()) if per_series["mase"].notna().any() else float("nan")
        )
        overall["rmsse"] = (
            float(per_series["rmsse"].mean()) if per_series["rmsse"].notna().any() else float("nan")
        )
    overall["daily_total_wape"] = daily_total_error(frame)
    overall.update(
        n_rows=float(len(frame)),
        n_scored=float(scored.sum()),
        n_closed_excluded=float(closed.sum()),
        n_missing_y_excluded=float(missing_y.sum()),
        n_zero_y_excluded_from_mape=float((scored & (y == 0)).sum()),
        n_series=float(frame["series_id"].nunique()),
    )
    if scaled:
        overall["n_series_without_scale"] = float(n_without_scale)
    return overall, per_group


# ------------------------------------------------------------------------------------------ seasonal scale
def seasonal_naive_errors(
    frame: pd.DataFrame, season: int | None = None, step: pd.Timedelta | None = None
) -> pd.Series:
    """In-sample seasonal-naive errors ``y - y_prev`` of the open rows with a known ``y``.

    ``y_prev`` is the previous open, known value of the same series at the same position in the season
    (position = whole steps since 1970-01-01 modulo ``season``). Returns a Series aligned on ``frame``'s index
    (NaN where there is no earlier value: the first season of each series, closed or missing rows).
    """
    _require(frame, ("series_id", "ds", "y"), "seasonal_naive_errors")
    step = infer_step(frame) if step is None else pd.Timedelta(step)
    season = default_season(step) if season is None else int(season)
    if season < 1:
        raise ValueError(f"season must be a positive number of steps. Got {season} instead.")
    usable = frame["y"].notna()
    if "open" in frame.columns:
        usable &= frame["open"] != 0
    f = frame.loc[usable, ["series_id", "ds", "y"]]
    phase = season_position(f["ds"], step, season)
    f = f.assign(_phase=phase).sort_values(["series_id", "_phase", "ds"], kind="stable")
    prev = f.groupby(["series_id", "_phase"], sort=False, observed=True)["y"].shift(1)
    return (f["y"] - prev).reindex(frame.index)


def seasonal_scales(
    train: pd.DataFrame, season: int | None = None, step: pd.Timedelta | None = None
) -> pd.DataFrame:
    """Per-series ``scale_mae`` (mean |error|), ``scale_mse`` (mean error^2) and ``n_pairs`` of the seasonal naive."""
    err = seasonal_naive_errors(train, season=season, step=step)
    sid = train["series_id"].astype("string")
    ok = err.notna()
    g = pd.DataFrame({"abs": err.abs(), "sq": err**2, "n": ok.astype("int64")}).groupby(sid.to_numpy())
    sums = g.sum(min_count=1)
    n = sums["n"].fillna(0).astype("int64")
    out = pd.DataFrame(
        {"scale_mae": sums["abs"] / n.where(n > 0), "scale_mse": sums["sq"] / n.where(n > 0), "n_pairs": n}
    )
    out.index = out.index.astype("string")
    out.index.name = "series_id"
    return out


def infer_step(frame: pd.DataFrame) -> pd.Timedelta:
    """The most common positive gap between consecutive ``ds`` of a series (one step of the data's frequency)."""
    _require(frame, ("series_id", "ds"), "infer_step")
    f = frame[["series_id", "ds"]].sort_values(["series_id", "ds"], kind="stable")
    same = f["series_id"].eq(f["series_id"].shift(1)).to_numpy(dtype=bool, na_value=False)
    gaps = f["ds"].diff()[same]
    gaps = gaps[gaps > pd.Timedelta(0)]
    if gaps.empty:
        raise ValueError(
            "Cannot infer the step between periods: no series has two distinct ds values. "
            "Pass step= (e.g. pd.Timedelta(days=1)) or give each series more than one period."
        )
    return pd.Timedelta(gaps.value_counts().idxmax())


def default_season(step: pd.Timedelta) -> int:
    """Seasonal period in steps: 7 for daily, 24 for hourly (1 day of sub-daily steps), 52 for weekly."""
    step = pd.Timedelta(step)
    day = pd.Timedelta(days=1)
    if step == day:
        return 7
    if step == 7 * day:
        return 52
    if step < day and day % step == pd.Timedelta(0):
        return int(day // step)
    raise ValueError(
        f"No default seasonal period for a step of {step}: supported are hourly (or any divisor of a day), "
        "daily and weekly data. Pass season= explicitly."
    )


def season_position(ds: pd.Series, step: pd.Timedelta, season: int) -> np.ndarray:
    """Position of each ``ds`` in the season: whole steps since 1970-01-01 modulo ``season`` (vectorised)."""
    steps = (pd.to_datetime(ds) - _EPOCH) // pd.Timedelta(step)
    return np.mod(steps.to_numpy(dtype="int64"), int(season))


# ------------------------------------------------------------------------------------------ classification
def auprc(y_true: ArrayLike, proba: ArrayLike) -> float:
    """Area under the precision-recall curve as average precision (scikit-learn; step-wise, no interpolation).

    NaN when there is no positive (undefined), so an all-negative backtest window does not crash a report.
    """
    y, p = _check_binary(y_true, proba)
    return float(average_precision_score(y, p)) if y.any() else float("nan")


def auroc(y_true: ArrayLike, proba: ArrayLike) -> float:
    """Area under the ROC curve (scikit-learn); NaN when only one class is present."""
    y, p = _check_binary(y_true, proba)
    return float(roc_auc_score(y, p)) if 0 < y.sum() < y.size else float("nan")


def brier(y_true: ArrayLike, proba: ArrayLike) -> float:
    """Brier score: mean squared difference between probability and outcome (lower is better)."""
    y, p = _check_binary(y_true, proba)
    return float(brier_score_loss(y, p, labels=[0, 1])) if y.size else float("nan")


def ece(
    y_true: ArrayLike,
    proba: ArrayLike,
    n_bins: int = 10,
    strategy: Literal["uniform", "quantile"] = "uniform",
) -> float:
    """Expected calibration error ``sum_b (n_b / n) |mean(y_b) - mean(p_b)|``.

    ``strategy="uniform"``: ``n_bins`` equal-width bins on [0, 1] (bin b holds ``b/n_bins <= p < (b+1)/n_bins``,
    ``p == 1`` in the last bin); ``"quantile"``: equal-mass bins with edges at the quantiles of ``proba`` (tied
    edges merge, so there may be fewer bins). Empty bins contribute nothing.
    """
    y, p = _check_binary(y_true, proba)
    if int(n_bins) < 1:
        raise ValueError(f"n_bins must be >= 1. Got {n_bins} instead.")
    if not y.size:
        return float("nan")
    if strategy == "uniform":
        bins = np.minimum((p * n_bins).astype("int64"), n_bins - 1)
    elif strategy == "quantile":
        edges = np.unique(np.quantile(p, np.linspace(0.0, 1.0, int(n_bins) + 1))[1:-1])
        bins = np.searchsorted(edges, p, side="right")
    else:
        raise ValueError(f"strategy must be 'uniform' or 'quantile'. Got {strategy!r} instead.")
    sum_y = np.bincount(bins, weights=y)
    sum_p = np.bincount(bins, weights=p)
    return float(np.abs(sum_y - sum_p).sum() / y.size)


def precision_recall_at(y_true: ArrayLike, proba: ArrayLike, threshold: float) -> dict[str, float]:
    """Precision and recall when flagging ``proba >= threshold``; precision is NaN when nothing is flagged."""
    y, p = _check_binary(y_true, proba)
    flagged = p >= float(threshold)
    tp = float((flagged & (y == 1)).sum())
    n_flagged, n_pos = float(flagged.sum()), float(y.sum())
    return {
        "threshold": float(threshold),
        "precision": tp / n_flagged if n_flagged else float("nan"),
        "recall": tp / n_pos if n_pos else float("nan"),
        "n_flagged": n_flagged,
    }


def evaluate_classifier(
    y_true: ArrayLike,
    proba: ArrayLike,
    threshold: float = 0.5,
    n_bins: int = 10,
    strategy: Literal["uniform", "quantile"] = "uniform",
) -> dict[str, float]:
    """All classification metrics in one flat dict (``auprc``, ``auroc``, ``brier``, ``ece``, ``precision``,
    ``recall``, ``n_flagged``, ``threshold``, ``n``, ``n_positive``, ``base_rate``), ready for MLflow."""
    y, p = _check_binary(y_true, proba)
    out = {
        "auprc": auprc(y, p),
        "auroc": auroc(y, p),
        "brier": brier(y, p),
        "ece": ece(y, p, n_bins=n_bins, strategy=strategy),
        **precision_recall_at(y, p, threshold),
        "n": float(y.size),
        "n_positive": float(y.sum()),
    }
    out["base_rate"] = out["n_positive"] / out["n"] if y.size else float("nan")
    return out


# ------------------------------------------------------------------------------------------ helpers
def _as_float(values: ArrayLike) -> np.ndarray:
    s = values if isinstance(values, pd.Series) else pd.Series(np.asarray(values))
    return pd.to_numeric(s, errors="raise").to_numpy(dtype="float64", na_value=np.nan)


def _scored_mask(y: ArrayLike, open: ArrayLike | None) -> np.ndarray:
    y_ = _as_float(y)
    mask = ~np.isnan(y_)
    if open is not None:
        o = _as_float(open)
        if o.shape != y_.shape:
            raise ValueError(f"open has {o.size} values but y has {y_.size}; pass one open flag per row.")
        mask &= o != 0
    return mask


def _scored(y: ArrayLike, yhat: ArrayLike, open: ArrayLike | None) -> tuple[np.ndarray, np.ndarray]:
    y_, f_ = _as_float(y), _as_float(yhat)
    if y_.shape != f_.shape:
        raise ValueError(f"y has {y_.size} values but yhat has {f_.size}; pass one forecast per actual.")
    mask = _scored_mask(y_, open)
    _check_no_missing(f_[mask], "yhat")
    return y_[mask], f_[mask]


def _check_no_missing(values: np.ndarray, name: str) -> None:
    n = int(np.isnan(values).sum())
    if n:
        raise ValueError(
            f"{name} is missing for {n} scored row(s) (open, with a known y). A forecast must be given for every "
            "open period; closed periods (open=0) and rows with missing y are excluded automatically."
        )


def _ratio(num: float, den: float) -> float:
    return float(num / den) if den != 0 else float("nan")


def _smape_terms(y: np.ndarray, f: np.ndarray) -> np.ndarray:
    den = np.abs(y) + np.abs(f)
    return np.where(den > 0, 2.0 * np.abs(f - y) / np.where(den > 0, den, 1.0), 0.0)


def _require(frame: pd.DataFrame, cols: Sequence[str], where: str) -> None:
    missing = [c for c in cols if c not in frame.columns]
    if missing:
        raise ValueError(
            f"{where} needs column(s) {missing}; the frame has {list(frame.columns)[:15]}. "
            "Rename or add them (forecast frames are long: series_id, ds, y, yhat, optional open)."
        )


def _level_columns(frame: pd.DataFrame, levels: tuple[int, ...]) -> dict[int, tuple[str, str]]:
    out = {}
    for lv in levels:
        lo, hi = f"yhat_lo_{lv}", f"yhat_hi_{lv}"
        has_lo, has_hi = lo in frame.columns, hi in frame.columns
        if has_lo != has_hi:
            raise ValueError(
                f"Interval level {lv} has only {lo if has_lo else hi}; add {hi if has_lo else lo} too."
            )
        if has_lo:
            out[lv] = (lo, hi)
    return out


def _row_terms(
    frame: pd.DataFrame,
    y: np.ndarray,
    yhat: np.ndarray,
    scored: np.ndarray,
    level_cols: dict[int, tuple[str, str]],
) -> pd.DataFrame:
    """Per-row additive terms; every metric is a ratio of their sums, so groups and totals share one code path."""
    ys = np.where(scored, y, 0.0)
    fs = np.where(scored, yhat, 0.0)
    pos = scored & (ys > 0)
    safe_y = np.where(pos, ys, 1.0)
    t = {
        "n_scored": scored.astype("float64"),
        "y": ys,
        "ae": np.abs(fs - ys),
        "e": fs - ys,
        "n_pos": pos.astype("float64"),
        "ape": np.where(pos, np.abs(fs - ys) / safe_y, 0.0),
        "spe": np.where(pos, ((ys - fs) / safe_y) ** 2, 0.0),
        "sape": np.where(scored, _smape_terms(ys, fs), 0.0),
    }
    for lv, (lo_c, hi_c) in level_cols.items():
        lo, hi = _as_float(frame[lo_c]), _as_float(frame[hi_c])
        _check_no_missing(lo[scored], lo_c)
        _check_no_missing(hi[scored], hi_c)
        t[f"cov_{lv}"] = np.where(scored, (y >= lo) & (y <= hi), False).astype("float64")
        t[f"wid_{lv}"] = np.where(scored, hi - lo, 0.0)
    return pd.DataFrame(t, index=frame.index)


def _metrics_from_sums(
    s: pd.DataFrame, levels: tuple[int, ...], level_cols: dict[int, tuple[str, str]], scaled: bool
) -> pd.DataFrame:
    def div(a: pd.Series, b: pd.Series) -> pd.Series:
        return a / b.where(b != 0)

    out = pd.DataFrame(index=s.index)
    out["n_scored"] = s["n_scored"].astype("int64")
    out["wape"] = div(s["ae"], s["y"])
    out["mape"] = div(s["ape"], s["n_pos"])
    out["rmspe"] = np.sqrt(div(s["spe"], s["n_pos"]))
    out["smape"] = div(s["sape"], s["n_scored"])
    out["bias"] = div(s["e"], s["y"])
    if scaled:
        out["mase"] = div(s["ase"], s["n_scaled"])
        out["rmsse"] = np.sqrt(div(s["sse"], s["n_scaled"]))
    for lv in levels:
        if lv in level_cols:
            out[f"coverage_{lv}"] = div(s[f"cov_{lv}"], s["n_scored"])
            out[f"width_{lv}"] = div(s[f"wid_{lv}"], s["n_scored"])
    return out


def _check_binary(y_true: ArrayLike, proba: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    y = _as_float(y_true)
    p = _as_float(proba)
    if y.shape != p.shape:
        raise ValueError(
            f"y_true has {y.size} values but proba has {p.size}; pass one probability per label."
        )
    bad_y = ~np.isin(y, (0.0, 1.0))
    if bad_y.any():
        raise ValueError(
            f"y_true must hold only 0 and 1; {int(bad_y.sum())} value(s) do not, e.g. {y[bad_y][:3].tolist()}. "
            "Map the labels to 0/1 and drop (and count) unlabeled rows first."
        )
    bad_p = np.isnan(p) | (p < 0) | (p > 1)
    if bad_p.any():
        raise ValueError(
            f"proba must be probabilities in [0, 1]; {int(bad_p.sum())} value(s) are not, e.g. {p[bad_p][:3].tolist()}. "
            "Pass predict_proba(...)[:, 1], not raw scores."
        )
    return y.astype("int64"), p
