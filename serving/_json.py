"""Turn the values routes and models produce (numpy, pandas, datetimes, dataclasses) into plain JSON values.

Used by the error handlers (problem examples may hold timestamps or NaN) and by the audit store. Non-finite
floats (NaN, +-inf) and pandas' missing markers (NA, NaT) become ``null``: JSON has no NaN, and in OrderPulse
frames a NaN means "missing" (a feature without history, a day without weather), which is exactly what
``null`` says.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from collections.abc import Mapping
from decimal import Decimal
from enum import Enum
from typing import Any

import numpy as np

__all__ = ["jsonable"]


def jsonable(obj: Any) -> Any:
    """Recursively convert ``obj`` into dicts, lists, str, int, float (finite), bool and None."""
    if obj is None or isinstance(obj, bool | str | int):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, Mapping):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple | set | frozenset):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return [jsonable(v) for v in obj.tolist()]
    if isinstance(obj, np.generic):
        return jsonable(obj.item())
    if _is_pandas_missing(obj):
        return None
    if isinstance(obj, dt.datetime | dt.date | dt.time):
        return obj.isoformat()
    if isinstance(obj, Decimal):
        return jsonable(float(obj))
    if isinstance(obj, Enum):
        return jsonable(obj.value)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return jsonable(dataclasses.asdict(obj))
    if hasattr(obj, "model_dump"):  # pydantic models
        return jsonable(obj.model_dump(mode="json"))
    if hasattr(obj, "to_dict"):  # pandas Series / DataFrame
        return jsonable(obj.to_dict())
    if hasattr(obj, "isoformat"):  # pandas Timestamp / Timedelta-likes
        return obj.isoformat()
    if isinstance(obj, dt.timedelta):
        return obj.total_seconds()
    raise TypeError(
        f"cannot store a value of type {type(obj).__name__} as JSON (got {obj!r:.80}); convert it to a "
        "number, string, list or dict first"
    )


def _is_pandas_missing(obj: Any) -> bool:
    module = type(obj).__module__
    if not module.startswith("pandas"):
        return False
    import pandas as pd

    return obj is pd.NaT or obj is pd.NA
