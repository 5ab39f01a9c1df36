"""The served forecaster and its snapshot tables, indexed by series once per model version; its smoke check.

``context_for(loaded)`` returns the (cached) ``ForecastContext`` of a loaded forecast model: the snapshot's
series, covariates, weather and static rows grouped by series (and region), so a request passes the model only
the rows of its own series (``serving.services.forecasting``). ``forecast_smoke_check`` refuses, at load time,
a forecast model that cannot forecast one step, and caches the context it built for the first request.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from features.calendar import step_length
from features.ids import ids_as_known
from serving.models import LoadedModel

__all__ = ["ForecastContext", "context_for", "forecast_smoke_check", "with_series_ids"]


class ForecastContext:
    """The served forecaster and its snapshot tables, indexed by series (built once per model version)."""

    def __init__(self, loaded: LoadedModel) -> None:
        wrapper = loaded.model
        tables = getattr(wrapper, "tables", None)
        if not isinstance(tables, dict) or not isinstance(tables.get("series"), pd.DataFrame):
            raise TypeError(
                f"the forecast model {loaded.name} v{loaded.version} has no series snapshot (got "
                f"{type(wrapper).__name__}): serve a model logged by `orderpulse train forecast`"
            )
        self.loaded = loaded
        self.model = wrapper.model
        self.step = step_length(self.model.freq)
        self.series = _with_string_ids(tables["series"], "series_id")
        self._rows = _group_rows(self.series["series_id"])
        self.anchor = pd.Timestamp(self.series["ds"].min())
        observed = self.series.loc[self.series["y"].notna()]
        self.last_observed = observed.groupby("series_id", observed=True)["ds"].max()
        self.covariates = _optional(tables.get("covariates"), "series_id")
        self._cov_rows: dict[str, np.ndarray] = {}
        self._cov_global = np.array([], dtype="int64")
        if self.covariates is not None and "series_id" in self.covariates.columns:
            self._cov_rows = _group_rows(self.covariates["series_id"])
            self._cov_global = np.flatnonzero(self.covariates["series_id"].isna().to_numpy())
        self.static = _optional(tables.get("static"), "series_id")
        self.weather = _optional(tables.get("weather"), "region")
        self._weather_rows = _group_rows(self.weather["region"]) if self.weather is not None else {}
        self._region: dict[str, str] = {}
        if self.static is not None and "region" in self.static.columns:
            known = self.static.loc[self.static["region"].notna()]
            self._region = dict(zip(known["series_id"], known["region"], strict=True))

    def unknown(self, ids: Sequence[str]) -> list[str]:
        return [i for i in ids if i not in self._rows]

    def as_known(self, ids: Sequence[str]) -> tuple[list[str], dict[str, str]]:
        """``ids`` as this model knows them (``features.ids.ids_as_known``: ``"7.0"`` is ``"7"`` when the model
        knows ``"7"``) and ``{as sent: as read}``."""
        return ids_as_known(ids, self._rows)

    def history(self, ids: Sequence[str], actuals: pd.DataFrame | None = None) -> pd.DataFrame:
        """The series rows of ``ids``; ``actuals`` replace the snapshot's value of the same (series, ds)."""
        rows = self.series.iloc[np.concatenate([self._rows[i] for i in ids])]
        if actuals is None or actuals.empty:
            return rows.reset_index(drop=True)
        both = pd.concat([rows, actuals[list(rows.columns)]], ignore_index=True)
        both = both.drop_duplicates(["series_id", "ds"], keep="last")
        return both.sort_values(["series_id", "ds"], kind="stable").reset_index(drop=True)

    def covariates_for(self, ids: Sequence[str]) -> pd.DataFrame | None:
        if self.covariates is None or not self._cov_rows:
            return self.covariates
        parts = [self._cov_global] + [self._cov_rows[i] for i in ids if i in self._cov_rows]
        return self.covariates.iloc[np.sort(np.concatenate(parts))].reset_index(drop=True)

    def regions(self, ids: Sequence[str]) -> list[str]:
        return list(dict.fromkeys(self._region[i] for i in ids if i in self._region))

    def weather_for(self, ids: Sequence[str]) -> pd.DataFrame | None:
        if self.weather is None:
            return None
        parts = [self._weather_rows[r] for r in self.regions(ids) if r in self._weather_rows]
        if not parts:  # no region known for these series: the table as the CLI would pass it
            return self.weather
        return self.weather.iloc[np.sort(np.concatenate(parts))].reset_index(drop=True)

    def static_for(self, ids: Sequence[str]) -> pd.DataFrame | None:
        if self.static is None:
            return None
        return self.static.loc[self.static["series_id"].isin(ids)].reset_index(drop=True)

    def off_grid(self, ds: pd.Series) -> np.ndarray:
        """True where a timestamp is not on the model's grid (steps of ``freq`` from the snapshot's first)."""
        return ((ds - self.anchor) % self.step).to_numpy() != np.timedelta64(0, "ns")


# one context per loaded model object, dropped with it
_contexts: weakref.WeakKeyDictionary[Any, ForecastContext] = weakref.WeakKeyDictionary()
_contexts_lock = threading.Lock()


def context_for(loaded: LoadedModel) -> ForecastContext:
    """The (cached) context of a loaded forecast model."""
    with _contexts_lock:
        ctx = _contexts.get(loaded.model)
        if ctx is None or ctx.loaded.version != loaded.version:
            ctx = ForecastContext(loaded)
            _contexts[loaded.model] = ctx
        return ctx


def forecast_smoke_check(loaded: LoadedModel) -> None:
    """Refuse a forecast model that cannot forecast: one step for one snapshot series, from its last-but-one step."""
    ctx = ForecastContext(loaded)
    for attribute in ("predict", "horizon", "freq"):
        if not hasattr(ctx.model, attribute):
            raise TypeError(f"the forecast model's estimator {type(ctx.model).__name__} has no {attribute!r}")
    if ctx.last_observed.empty:
        raise ValueError("the forecast model's series snapshot has no observed value")
    series_id = str(ctx.last_observed.index[0])
    origin = pd.Timestamp(ctx.last_observed.iloc[0]) - ctx.step
    ids = [series_id]
    pred = ctx.model.predict(
        1,
        levels=(),
        series=ctx.history(ids),
        origin=origin,
        covariates=ctx.covariates_for(ids),
        weather=ctx.weather_for(ids),
        static=ctx.static_for(ids),
    )
    yhat = pred["yhat"].to_numpy(dtype="float64")
    if yhat.shape != (1,) or not (np.isfinite(yhat).all() and yhat[0] >= 0):
        raise ValueError(
            f"a 1-step forecast of series {series_id!r} from {origin} gave {yhat!r}, not one value >= 0"
        )
    with _contexts_lock:  # the first forecast of this version reuses the indexes built here
        _contexts[loaded.model] = ctx


# ---------------------------------------------------------------------------------------------- helpers
def _with_string_ids(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    if isinstance(frame[column].dtype, pd.StringDtype):
        return frame.reset_index(drop=True)
    return frame.assign(**{column: frame[column].astype("string")}).reset_index(drop=True)


def _optional(frame: pd.DataFrame | None, column: str) -> pd.DataFrame | None:
    if frame is None:
        return None
    return _with_string_ids(frame, column) if column in frame.columns else frame.reset_index(drop=True)


def _group_rows(ids: pd.Series) -> dict[str, np.ndarray]:
    known = ids.notna().to_numpy()
    positions = np.flatnonzero(known)
    groups = pd.Series(positions).groupby(ids.to_numpy(dtype=object)[known]).indices
    return {str(k): positions[v] for k, v in groups.items()}


def with_series_ids(rows: Sequence[Any], read_as: dict[str, str]) -> list[Any]:
    """Request rows (pydantic models with a ``series_id``) with the ids of ``read_as`` (``{as sent: as read}``,
    from ``ForecastContext.as_known``) replaced; the other rows as they are."""
    return [
        r.model_copy(update={"series_id": read_as[r.series_id]}) if r.series_id in read_as else r
        for r in rows
    ]
