"""What-if forecasts: the same forecast under a changed promo plan or weather scenario, and the difference.

Used by ``POST /v1/forecast`` (covariates in the request) and by the planner notebook
``02_promo_weather_whatif.ipynb``, so both show the same numbers: ``overlay`` lays the scenario over the stored
tables, ``baseline_yhat`` is the forecast under the stored plan aligned to the scenario's rows.

A scenario is given as rows that *overlay* the stored tables: for covariates, rows keyed by (``series_id``,
``ds``) — or ``ds`` alone for a change that applies to every series — whose columns replace the stored values
for that key (columns not given keep their stored values); keys not in the stored table are added (a plan that
runs past the stored calendar). Weather rows overlay by (``region``, ``ds``) the same way.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from features.validation import validate
from training.forecast.forecaster import LGBMForecaster

__all__ = ["overlay", "what_if", "baseline_yhat"]


def overlay(
    base: pd.DataFrame | None, changes: pd.DataFrame | None, keys: tuple[str, ...]
) -> pd.DataFrame | None:
    """``base`` with the rows/columns of ``changes`` written over it (see the module docstring).

    A change without ``series_id`` (covariates) applies to every series of ``base`` on that ``ds``.
    """
    if changes is None or len(changes) == 0:
        return base
    if base is None:
        return changes.reset_index(drop=True)
    changes = changes.copy()
    if "series_id" in keys and "series_id" not in changes.columns and "series_id" in base.columns:
        ids = pd.DataFrame({"series_id": base["series_id"].drop_duplicates()})
        changes = changes.merge(ids, how="cross")
    on = [k for k in keys if k in changes.columns and k in base.columns]
    unknown = [c for c in changes.columns if c not in base.columns and c not in on]
    if unknown:
        raise ValueError(
            f"Scenario columns {unknown} are not in the stored table (columns: {list(base.columns)}). "
            "A what-if can only change covariates the model was trained with."
        )
    for k in on:
        changes[k] = changes[k].astype(base[k].dtype) if k != "ds" else pd.to_datetime(changes[k])
    b = base.set_index(on)
    c = changes.set_index(on)
    b = b.reindex(b.index.union(c.index))
    b.update(c)  # non-missing scenario values replace stored ones
    return b.reset_index()


def what_if(
    model: LGBMForecaster,
    series: pd.DataFrame,
    *,
    covariates: pd.DataFrame | None = None,
    weather: pd.DataFrame | None = None,
    covariate_changes: pd.DataFrame | None = None,
    weather_changes: pd.DataFrame | None = None,
    horizon: int | None = None,
    origin: Any = None,
    levels: tuple[int, ...] = (80,),
    explain: bool = True,
) -> pd.DataFrame:
    """Forecast ``series`` under the stored tables and under the scenario; one row per series and step.

    Returns the scenario forecast (``yhat``, intervals, and ``effect_<family>`` with ``explain``) plus
    ``yhat_base`` (the forecast under the stored plan), ``delta = yhat - yhat_base`` and ``delta_pct``.
    """
    stored_cov = covariates if covariates is not None else model.tables_.get("covariates")
    stored_weather = weather if weather is not None else model.tables_.get("weather")
    scen_cov = overlay(stored_cov, _validated(covariate_changes, "covariates"), ("series_id", "ds"))
    scen_weather = overlay(stored_weather, _validated(weather_changes, "weather"), ("region", "ds"))
    scenario = model.predict(
        horizon,
        levels=levels,
        explain=explain,
        series=series,
        covariates=scen_cov,
        weather=scen_weather,
        origin=origin,
    )
    out = scenario.assign(
        yhat_base=baseline_yhat(
            model,
            scenario,
            horizon=horizon,
            series=series,
            origin=origin,
            covariates=stored_cov,
            weather=stored_weather,
        ).to_numpy()
    )
    out["delta"] = out["yhat"] - out["yhat_base"]
    out["delta_pct"] = (out["delta"] / out["yhat_base"]).where(out["yhat_base"] > 0)
    return out


def baseline_yhat(
    model: LGBMForecaster, scenario: pd.DataFrame, *, horizon: int | None, **predict_kwargs: Any
) -> pd.Series:
    """The point forecast under the stored plan for each row (``series_id``, ``ds``) of ``scenario``.

    ``predict_kwargs`` are ``LGBMForecaster.predict``'s (``series``, ``origin``, and the stored ``covariates``,
    ``weather``, ``static``); NaN where the stored plan has no forecast for a row. Raises what ``predict``
    raises, e.g. ``DataValidationError`` when the stored plan does not cover the horizon.
    """
    base = model.predict(horizon, levels=(), **predict_kwargs)
    keys = scenario[["series_id", "ds"]]
    return keys.merge(base[["series_id", "ds", "yhat"]], on=["series_id", "ds"], how="left")["yhat"]


def _validated(changes: pd.DataFrame | None, table: str) -> pd.DataFrame | None:
    if changes is None or len(changes) == 0:
        return None
    clean, _ = validate(changes, table)  # type: ignore[arg-type]
    return clean
