"""A forecast request's plan (covariates / weather rows) laid over the model's stored tables: what-ifs.

``overlay_plan`` checks and types the request rows, then lays them over the stored table with
``training.forecast.whatif.overlay`` (the planner notebook's), so the API and the notebook show the same
numbers. ``plan_problem`` adds to a covariates problem where the stored plan ends and how to send one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import pandas as pd

from features.errors import DataValidationError, Problem
from serving.services.forecast_context import ForecastContext
from training.forecast.whatif import overlay

__all__ = ["overlay_plan", "plan_problem"]


def overlay_plan(
    stored: pd.DataFrame | None,
    rows: list[dict[str, Any]],
    table: str,
    key_column: str,
    targets: Sequence[str],
) -> pd.DataFrame:
    """Lay request rows over the stored table, column by column, on (``key_column``, ``ds``).

    ``table`` is "covariates" (key ``series_id``: a row without one applies to every series in ``targets``)
    or "weather" (key ``region``). Request columns must be columns of the stored table; a request value
    (not null) replaces the stored value of its row, other columns keep theirs, new keys are added. The
    overlay itself is ``training.forecast.whatif.overlay`` (the planner notebook's), after the request rows were
    checked and typed here: ``DataValidationError`` for unknown columns, rows outside ``targets``, duplicate
    rows and non-numbers in numeric columns. Rows without ``series_id`` are spread over ``targets`` first: a
    global row would lose to the stored per-series rows of the same date.
    """
    req = pd.DataFrame(rows)
    if stored is None:
        raise DataValidationError(
            [
                Problem(
                    table,
                    None,
                    f"the model was trained without a {table} table",
                    f"remove '{table}' from the request (the model has no such features)",
                    len(req),
                )
            ]
        )
    if key_column in req.columns and req[key_column].isna().all() and key_column not in stored.columns:
        req = req.drop(columns=[key_column])
    problems: list[Problem] = []
    values = [c for c in req.columns if c not in (key_column, "ds")]
    unknown = [c for c in values if c not in stored.columns]
    if unknown:
        problems.append(
            Problem(
                table,
                ",".join(unknown),
                "columns the model was not trained with",
                f"use the model's {table} columns: {[c for c in stored.columns if c not in (key_column, 'ds')]}",
                len(req),
            )
        )
    if key_column in req.columns:
        given = req[key_column].notna()
        if table == "covariates" and key_column in stored.columns:
            spread = req.loc[~given].drop(columns=[key_column])
            req = pd.concat(
                [req.loc[given], spread.merge(pd.DataFrame({key_column: list(targets)}), how="cross")],
                ignore_index=True,
            )
        outside = req.loc[req[key_column].notna() & ~req[key_column].isin(list(targets)), key_column]
        if len(outside):
            problems.append(
                Problem(
                    table,
                    key_column,
                    f"rows for {key_column} outside this request",
                    f"send plan rows only for {list(targets)[:10]}",
                    len(outside),
                    [{key_column: v} for v in outside.unique()[:3]],
                )
            )
    key = [c for c in (key_column, "ds") if c in req.columns]
    if key_column in req.columns and key_column not in stored.columns:
        stored = stored.assign(**{key_column: pd.Series(pd.NA, index=stored.index, dtype="string")})
    dup = req.duplicated(key, keep=False)
    if dup.any():
        problems.append(
            Problem(
                table,
                ",".join(key),
                "several rows for the same key",
                "send one row per key",
                int(dup.sum()),
                req.loc[dup, key].head(3).astype(str).to_dict("records"),
            )
        )
    for col in [c for c in values if c in stored.columns]:
        if pd.api.types.is_numeric_dtype(stored[col]):
            numbers = pd.to_numeric(req[col], errors="coerce")
            bad = numbers.isna() & req[col].notna()
            if bad.any():
                problems.append(
                    Problem(
                        table,
                        col,
                        "not a number",
                        f"{col} is numeric in the model's {table}",
                        int(bad.sum()),
                        [{col: v} for v in req.loc[bad, col].head(3)],
                    )
                )
            req[col] = numbers.astype("float64")
        else:
            req[col] = req[col].map(_label, na_action="ignore").astype("string")
    if problems:
        raise DataValidationError(problems)
    if key_column in req.columns:
        req[key_column] = req[key_column].astype("string")
    merged = overlay(stored, req, (key_column, "ds"))
    for col in stored.columns:  # keep the stored dtypes (the overlay's union of rows may widen them)
        if isinstance(stored[col].dtype, pd.StringDtype):
            merged[col] = merged[col].astype("string")
    return merged.sort_values(key, kind="stable").reset_index(drop=True)


def plan_problem(
    exc: DataValidationError, ctx: ForecastContext, stored: pd.DataFrame | None, planned: bool
) -> DataValidationError:
    """Say, in the covariates problem, where the stored plan ends and how to send one in the request."""
    end = None if stored is None or stored.empty else pd.Timestamp(stored["ds"].max()).date()
    columns = [] if stored is None else [c for c in stored.columns if c not in ("series_id", "ds")]
    hint = (
        f"; the model's stored covariates end at {end}, so a forecast past that date needs the plan for the horizon "
        f'in the request: "covariates": [{{"ds": ..., "series_id"?: ..., {", ".join(repr(c) + ": ..." for c in columns)}}}]'
        + (" (the request's covariates do not cover every forecast date either)" if planned else "")
    )
    problems = [
        dataclasses.replace(p, fix=p.fix + hint) if p.table == "covariates" else p for p in exc.problems
    ]
    return DataValidationError(problems)


# ---------------------------------------------------------------------------------------------- helpers
def _label(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
