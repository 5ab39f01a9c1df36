"""What-if forecasts: the same forecast under a changed promo plan or weather scenario, and the difference.

Used by ``POST /v1/forecast`` (covariates in the request) and by the planner notebook
``02_promo_weather_whatif.ipynb``, so both show the same numbers: ``overlay`` lays the scenario over the stored
tables, ``baseline_yhat`` is the forecast under the stored plan aligned to the scenario's rows.
``what_if_levels`` is the same for a model trained with hierarchy levels: the scenario's coherent effect on the
regions and the total.

A scenario is given as rows that *overlay* the stored tables: for covariates, rows keyed by (``series_id``,
``ds``) — or ``ds`` alone for a change that applies to every series — whose columns replace the stored values
for that key (columns not given keep their stored values); keys not in the stored table are added (a plan that
runs past the stored calendar). Weather rows overlay by (``region``, ``ds``) the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from features.hierarchy import SERIES_LEVEL, parse_levels
from features.validation import validate
from training.forecast.forecaster import LGBMForecaster
from training.forecast.hierarchy import check_levels, forecast_hierarchy

__all__ = ["overlay", "what_if", "what_if_levels", "baseline_yhat"]


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


def what_if_levels(
    model: LGBMForecaster,
    series: pd.DataFrame,
    hierarchy_levels: str | Sequence[str],
    *,
    covariates: pd.DataFrame | None = None,
    weather: pd.DataFrame | None = None,
    covariate_changes: pd.DataFrame | None = None,
    weather_changes: pd.DataFrame | None = None,
    horizon: int | None = None,
    origin: Any = None,
    level: int = 80,
) -> pd.DataFrame:
    """A scenario's effect on every level: the coherent forecast (``training.forecast.hierarchy``) under the
    scenario and under the stored plan, for the series and the aggregates of ``hierarchy_levels`` (levels the
    model was trained with).

    Both forecasts go through the same reconciliation, so each adds up (stores to their region, regions to the
    total) and so does their difference. The aggregate model sees the scenario too (the share of members on
    promo is one of its covariates). Returns ``level, series_id, ds, yhat, yhat_lo, yhat_hi`` under the
    scenario, ``yhat_base``, ``delta = yhat - yhat_base`` and ``delta_pct``.
    """
    rec = check_levels(model, hierarchy_levels)
    wanted = [SERIES_LEVEL, *parse_levels(hierarchy_levels)]
    stored = {
        "covariates": covariates if covariates is not None else model.tables_.get("covariates"),
        "weather": weather if weather is not None else model.tables_.get("weather"),
        "static": model.tables_.get("static"),
    }
    scenario = {
        **stored,
        "covariates": overlay(
            stored["covariates"], _validated(covariate_changes, "covariates"), ("series_id", "ds")
        ),
        "weather": overlay(stored["weather"], _validated(weather_changes, "weather"), ("region", "ds")),
    }
    if origin is None:
        origin = series.loc[series["y"].notna(), "ds"].max()
    frames = []
    for tables in (scenario, stored):
        series_pred = model.predict(horizon, levels=(), series=series, origin=origin, **tables)
        frames.append(
            forecast_hierarchy(
                rec, series_pred, series, tables, horizon=horizon, origin=origin, levels=(level,)
            )
        )
    keys = ["level", "series_id", "ds"]
    out = frames[0].rename(columns={f"yhat_lo_{level}": "yhat_lo", f"yhat_hi_{level}": "yhat_hi"})
    out = out.merge(frames[1][[*keys, "yhat"]].rename(columns={"yhat": "yhat_base"}), on=keys, how="left")
    out = out.loc[out["level"].isin(wanted), [*keys, "yhat", "yhat_lo", "yhat_hi", "yhat_base"]]
    out["delta"] = out["yhat"] - out["yhat_base"]
    out["delta_pct"] = (out["delta"] / out["yhat_base"]).where(out["yhat_base"] > 0)
    return out.reset_index(drop=True)


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
