"""The small set of exceptions OrderPulse raises on purpose.

Library code raises these (or plain ValueError/TypeError); only the CLI and ``serving/`` translate them,
into exit code 2 with one readable line and into an HTTP 4xx JSON body respectively.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from sklearn.exceptions import NotFittedError as _SkNotFittedError

__all__ = [
    "OrderPulseError",
    "DataValidationError",
    "NotFittedError",
    "Problem",
    "merge_problems",
]


class OrderPulseError(Exception):
    """Base class of every error OrderPulse raises deliberately."""


@dataclass(frozen=True)
class Problem:
    """One kind of problem found in an input table.

    ``examples`` holds up to a few offending rows (as dicts, with their row number under ``row``) so the
    user can find them; ``n_rows`` counts all of them.
    """

    table: str
    column: str | None
    issue: str
    fix: str
    n_rows: int = 0
    examples: list[dict[str, Any]] = field(default_factory=list)

    def __str__(self) -> str:
        where = f"{self.table}.{self.column}" if self.column else self.table
        rows = (
            f" ({self.n_rows} rows" + (f", e.g. {self.examples}" if self.examples else "") + ")"
            if self.n_rows
            else ""
        )
        return f"{where}: {self.issue}{rows}. Fix: {self.fix}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "column": self.column,
            "issue": self.issue,
            "n_rows": self.n_rows,
            "examples": self.examples,
            "fix": self.fix,
        }


class DataValidationError(OrderPulseError, ValueError):
    """An input table was refused; ``problems`` lists every problem found, not just the first."""

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        n = len(self.problems)
        head = f"{n} problem{'s' if n != 1 else ''} in the input: "
        super().__init__(head + " | ".join(str(p) for p in self.problems))


class NotFittedError(OrderPulseError, _SkNotFittedError):
    """An estimator was used before ``fit``; subclasses scikit-learn's so sklearn tooling recognises it."""


def merge_problems(problems: list[Problem]) -> list[Problem]:
    """One ``Problem`` per (table, column, issue, fix) for problems found piece by piece (e.g. per dask
    partition): row counts summed, the first three examples kept."""
    merged: dict[tuple, Problem] = {}
    for p in problems:
        key = (p.table, p.column, p.issue, p.fix)
        if key in merged:
            m = merged[key]
            merged[key] = replace(m, n_rows=m.n_rows + p.n_rows, examples=(m.examples + p.examples)[:3])
        else:
            merged[key] = p
    return list(merged.values())
