"""The reference profile of a training snapshot, and drift of live inputs against it (PSI, missing, unknown).

``build_profile(frame)`` is computed by the training jobs on the frame the model was fitted on and logged with
the model as the snapshot table ``profile`` (``training.pyfunc.log_pyfunc``: one Parquet table among the
others, so the served model carries it); ``compare_to_profile(profile, frame)`` is what the service's
monitoring (``serving.services.monitoring``) computes on the inputs it received.

Per feature:

- numeric: the training values' deciles are the bin edges (``(-inf, q10], (q10, q20], ..., (q90, inf)``, tied
  edges merged), and the reference shares are the training shares of those bins;
- categorical (strings, booleans, categories): the share of each training category; a live value outside
  them counts as ``unknown`` (its own bin in the PSI, with a reference share of 0);
- both: the missing rate (missing values are kept out of the shares and reported on their own).

``psi = sum_b (live_b - ref_b) * ln(live_b / ref_b)`` with every share floored at ``PSI_EPSILON`` (an empty
bin would make it infinite). Reading: < 0.1 stable, 0.1-0.25 moderate shift, > 0.25 a shift worth acting on.

Written with numpy/pandas, not a drift library: Evidently computes the same PSI but pulls a large dependency
tree into a service that only needs these few lines, and it could not reuse a profile logged at training time
without the whole training frame.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "build_profile",
    "profile_table",
    "profile_from_table",
    "compare_to_profile",
    "psi",
    "PSI_EPSILON",
    "UNKNOWN",
]

PSI_EPSILON = 1e-4
UNKNOWN = "__unknown__"
_N_BINS = 10
_PROFILE_COLUMNS = ["feature", "kind", "bin", "upper", "category", "share", "missing_rate", "n"]


def build_profile(
    frame: pd.DataFrame, columns: list[str] | None = None, n_bins: int = _N_BINS
) -> dict[str, Any]:
    """``{feature: {"kind", "n", "missing_rate", "edges"|"categories", "shares"}}`` of ``frame``'s columns."""
    if int(n_bins) < 2:
        raise ValueError(f"n_bins must be >= 2. Got {n_bins} instead.")
    out: dict[str, Any] = {}
    for col in columns if columns is not None else list(frame.columns):
        values = frame[col]
        n = int(len(values))
        missing = values.isna()
        missing_rate = float(missing.mean()) if n else 0.0
        present = values[~missing]
        if _is_numeric(values):
            x = present.to_numpy(dtype="float64")
            x = x[np.isfinite(x)]
            edges = (
                np.unique(np.quantile(x, np.linspace(0.0, 1.0, int(n_bins) + 1))[1:-1])
                if x.size
                else np.array([])
            )
            shares = _numeric_shares(x, edges)
            out[col] = {
                "kind": "numeric",
                "n": n,
                "missing_rate": missing_rate,
                "edges": edges.tolist(),
                "shares": shares.tolist(),
            }
        else:
            counts = present.astype(str).value_counts()
            total = float(counts.sum())
            out[col] = {
                "kind": "categorical",
                "n": n,
                "missing_rate": missing_rate,
                "categories": [str(c) for c in counts.index],
                "shares": [float(c) / total for c in counts.to_numpy()] if total else [],
            }
    return out


def profile_table(profile: dict[str, Any]) -> pd.DataFrame:
    """The profile as a long table (one row per bin or category), the form it is logged in with the model."""
    rows: list[dict[str, Any]] = []
    for feature, p in profile.items():
        if p["kind"] == "numeric":
            uppers = [*p["edges"], np.inf] if p["shares"] else []
            for b, (upper, share) in enumerate(zip(uppers, p["shares"], strict=True)):
                rows.append(
                    {
                        "feature": feature,
                        "kind": "numeric",
                        "bin": b,
                        "upper": float(upper),
                        "category": None,
                        "share": share,
                        "missing_rate": p["missing_rate"],
                        "n": p["n"],
                    }
                )
            if not p["shares"]:  # an all-missing column still records its missing rate
                rows.append(
                    {
                        "feature": feature,
                        "kind": "numeric",
                        "bin": -1,
                        "upper": np.nan,
                        "category": None,
                        "share": 0.0,
                        "missing_rate": p["missing_rate"],
                        "n": p["n"],
                    }
                )
        else:
            cats = list(zip(p["categories"], p["shares"], strict=True)) or [(None, 0.0)]
            for b, (cat, share) in enumerate(cats):
                rows.append(
                    {
                        "feature": feature,
                        "kind": "categorical",
                        "bin": b if cat is not None else -1,
                        "upper": np.nan,
                        "category": cat,
                        "share": share,
                        "missing_rate": p["missing_rate"],
                        "n": p["n"],
                    }
                )
    table = pd.DataFrame(rows, columns=_PROFILE_COLUMNS)
    return table.astype({"feature": "string", "kind": "string", "category": "string", "bin": "int64"})


def profile_from_table(table: pd.DataFrame) -> dict[str, Any]:
    """The inverse of ``profile_table``."""
    missing = [c for c in _PROFILE_COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"a profile table needs columns {_PROFILE_COLUMNS}; {missing} are missing")
    out: dict[str, Any] = {}
    for feature, rows in table.groupby("feature", sort=False):
        rows = rows.sort_values("bin", kind="stable")
        kind = str(rows["kind"].iloc[0])
        real = rows.loc[rows["bin"] >= 0]
        base = {
            "kind": kind,
            "n": int(rows["n"].iloc[0]),
            "missing_rate": float(rows["missing_rate"].iloc[0]),
        }
        if kind == "numeric":
            base["edges"] = real["upper"].to_numpy(dtype="float64")[:-1].tolist()
            base["shares"] = real["share"].to_numpy(dtype="float64").tolist()
        else:
            base["categories"] = [str(c) for c in real["category"]]
            base["shares"] = real["share"].to_numpy(dtype="float64").tolist()
        out[str(feature)] = base
    return out


def psi(reference: np.ndarray, live: np.ndarray, eps: float = PSI_EPSILON) -> float:
    """Population stability index of two share vectors over the same bins (shares floored at ``eps``)."""
    ref = np.maximum(np.asarray(reference, dtype="float64"), eps)
    cur = np.maximum(np.asarray(live, dtype="float64"), eps)
    if ref.shape != cur.shape:
        raise ValueError(
            f"reference has {ref.size} bins but live has {cur.size}; pass shares over the same bins"
        )
    return float(np.sum((cur - ref) * np.log(cur / ref)))


def compare_to_profile(profile: dict[str, Any], frame: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """Per profiled feature present in ``frame``: ``psi``, ``missing_rate`` (+ the reference's),
    ``unknown_rate`` (categorical: share of present values the training data never had) and ``n``.

    ``psi`` is None when no live value is present (nothing to compare). Features of ``frame`` the profile does
    not know are ignored; profiled features absent from ``frame`` are reported with ``n`` 0.
    """
    out: dict[str, dict[str, Any]] = {}
    for feature, p in profile.items():
        if feature not in frame.columns:
            out[feature] = {
                "n": 0,
                "psi": None,
                "missing_rate": None,
                "reference_missing_rate": p["missing_rate"],
                "unknown_rate": None,
            }
            continue
        values = frame[feature]
        missing = values.isna().to_numpy()
        present = values[~missing]
        n = int(len(values))
        entry: dict[str, Any] = {
            "n": n,
            "missing_rate": float(missing.mean()) if n else None,
            "reference_missing_rate": p["missing_rate"],
            "unknown_rate": None,
            "psi": None,
        }
        if p["kind"] == "numeric":
            x = pd.to_numeric(present, errors="coerce").to_numpy(dtype="float64")
            x = x[np.isfinite(x)]
            if x.size and p["shares"]:
                entry["psi"] = psi(np.asarray(p["shares"]), _numeric_shares(x, np.asarray(p["edges"])))
        else:
            cats = present.astype(str).to_numpy()
            if cats.size:
                known = pd.Index(p["categories"])
                pos = known.get_indexer(cats)
                counts = np.bincount(np.where(pos < 0, len(known), pos), minlength=len(known) + 1)
                live = counts / cats.size
                entry["unknown_rate"] = float(live[-1])
                entry["psi"] = psi(np.append(np.asarray(p["shares"], dtype="float64"), 0.0), live)
        out[feature] = entry
    return out


def _numeric_shares(x: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Shares of ``x`` in the bins ``(-inf, e0], (e0, e1], ..., (e_last, inf)``."""
    if not x.size:
        return np.zeros(len(edges) + 1) if len(edges) or x.size else np.array([])
    counts = np.bincount(np.searchsorted(edges, x, side="left"), minlength=len(edges) + 1)
    return counts / x.size


def _is_numeric(values: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
