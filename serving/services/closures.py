"""Known closures of forecast steps (``closures`` in ``POST /v1/forecast``), laid over the series history.

The forecaster reads closures where the CLI gets them: ``open`` of the series rows after the origin (a row
with ``open`` 0 is forecast exactly 0; see ``LGBMForecaster.predict``). So a request's closures become series
rows: the ``open`` of an existing row after the origin is replaced, a missing (series, step) is added with no
``y``. The forecast of a request with closures equals the CLI's forecast of a series file holding the same
future rows (``tests/serving/test_forecast_route.py``).

Rows without ``series_id`` apply to every requested series; a row naming the series wins over such a row for
the same step (close every store on a holiday, but keep one open). Rows must name requested series and
forecast steps (after the origin, at most ``horizon`` steps after it, on the model's grid), one row per
(series, step): otherwise ``DataValidationError`` (400) names the rows and the fix.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from features.errors import DataValidationError, Problem
from serving.schemas.forecast import ClosureIn

__all__ = ["with_closures"]


def with_closures(
    history: pd.DataFrame,
    closures: Sequence[ClosureIn],
    ids: Sequence[str],
    origin: pd.Timestamp,
    end: pd.Timestamp,
    off_grid: Callable[[pd.Series], np.ndarray],
) -> pd.DataFrame:
    """``history`` with the ``open`` of ``closures`` on the steps ``(origin, end]``.

    ``off_grid(ds)`` is True where a timestamp is not a step of the model (``ForecastContext.off_grid``).
    """
    rows = _rows(closures, ids)
    _check(rows, ids, origin, end, off_grid)
    hist = history if "open" in history.columns else history.assign(open=np.int8(1))
    key = pd.MultiIndex.from_arrays([hist["series_id"].astype(str).to_numpy(object), hist["ds"]])
    pos = key.get_indexer(pd.MultiIndex.from_arrays([rows["series_id"].to_numpy(object), rows["ds"]]))
    present = pos >= 0
    out = hist.copy()
    col = out.columns.get_loc("open")
    out.iloc[pos[present], col] = rows["open"].to_numpy()[present].astype(out["open"].dtype)
    if not present.all():
        added = pd.DataFrame(
            {
                "series_id": rows["series_id"].to_numpy(object)[~present],
                "ds": rows["ds"].to_numpy()[~present],
                "y": np.nan,
                "open": rows["open"].to_numpy()[~present],
            }
        )
        added = added.astype({c: out[c].dtype for c in added.columns})
        out = pd.concat([out, added], ignore_index=True)
        out = out.sort_values(["series_id", "ds"], kind="stable").reset_index(drop=True)
    return out


def _rows(closures: Sequence[ClosureIn], ids: Sequence[str]) -> pd.DataFrame:
    """The request rows, with every row without ``series_id`` spread over ``ids`` (named rows win)."""
    req = pd.DataFrame(
        {
            "series_id": pd.array([c.series_id for c in closures], dtype="object"),
            "ds": pd.to_datetime([c.ds for c in closures]).as_unit("ns"),
            "open": np.array([c.open for c in closures], dtype="int8"),
        }
    )
    named = req.loc[req["series_id"].notna()]
    spread = req.loc[req["series_id"].isna()].drop(columns="series_id")
    spread = spread.merge(pd.DataFrame({"series_id": list(ids)}, dtype=object), how="cross")
    overridden = pd.MultiIndex.from_frame(spread[["series_id", "ds"]]).isin(
        pd.MultiIndex.from_frame(named[["series_id", "ds"]])
    )
    return pd.concat([named, spread.loc[~overridden, ["series_id", "ds", "open"]]], ignore_index=True)


def _check(
    rows: pd.DataFrame,
    ids: Sequence[str],
    origin: pd.Timestamp,
    end: pd.Timestamp,
    off_grid: Callable[[pd.Series], np.ndarray],
) -> None:
    problems: list[Problem] = []

    def problem(bad: np.ndarray | pd.Series, column: str, issue: str, fix: str) -> None:
        bad = np.asarray(bad, dtype=bool)
        if bad.any():
            examples = rows.loc[bad, ["series_id", "ds"]].head(3).astype(str).to_dict("records")
            problems.append(Problem("closures", column, issue, fix, int(bad.sum()), examples))

    problem(
        ~rows["series_id"].isin(list(ids)),
        "series_id",
        "rows for series outside this request",
        f"send closures only for the requested series {list(ids)[:10]} (or leave series_id out for all of them)",
    )
    problem(
        (rows["ds"] <= origin) | (rows["ds"] > end),
        "ds",
        f"dates that are not forecast steps (after the origin {origin}, until {end})",
        "send closures for the forecast steps only; report past closures through POST /v1/actuals with open=0",
    )
    problem(off_grid(rows["ds"]), "ds", "dates off the model's grid", "send steps of the model's frequency")
    problem(
        rows.duplicated(["series_id", "ds"], keep=False),
        "series_id,ds",
        "several rows for the same series and date",
        "send one row per series and date",
    )
    if problems:
        raise DataValidationError(problems)
