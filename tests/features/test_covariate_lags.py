"""features/covariate_lags.py: lags of known-in-advance covariates (markdowns, promo flags) on weekly grids."""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.covariate_lags import covariate_lag_features
from features.forecast_config import ForecastFeatureConfig
from features.forecast_frame import build_future_frame, build_training_frame


def _weekly(n: int = 30) -> dict[str, pd.DataFrame]:
    ds = pd.date_range("2011-01-07", periods=n, freq="W-FRI")
    parts, cov = [], []
    for i, sid in enumerate(("1_1", "1_2")):
        parts.append(pd.DataFrame({"series_id": sid, "ds": ds, "y": 100.0 + i + np.arange(n)}))
        cov.append(
            pd.DataFrame(
                {
                    "series_id": sid,
                    "ds": ds,
                    "markdown1": np.arange(n) * (10.0 + i),
                    "promo": np.arange(n) % 3 == 0,
                }
            )
        )
    series = pd.concat(parts, ignore_index=True).astype({"series_id": "string"})
    covariates = pd.concat(cov, ignore_index=True).astype({"series_id": "string", "promo": "int8"})
    return {"series": series, "covariates": covariates}


def test_covariate_lags_read_k_steps_back_in_the_same_series_only():
    grid = pd.DataFrame({"series_id": pd.Categorical(["a", "a", "a", "b", "b"]), "ds": 0})
    cov = pd.DataFrame({"cov_markdown1": [1.0, 2.0, 3.0, 10.0, 20.0], "promo_flag": [1.0, 0, 1, 0, 1]})
    out = covariate_lag_features(grid, cov, (1, 2))
    assert out["cov_markdown1_lag_1"].tolist()[1:3] == [1.0, 2.0] and np.isnan(out["cov_markdown1_lag_1"][3])
    assert out["cov_markdown1_lag_2"].tolist()[2] == 1.0 and np.isnan(out["cov_markdown1_lag_2"][4])
    assert out["promo_flag_lag_1"].tolist()[4] == 0.0


def test_weekly_frames_carry_markdown_and_promo_lags_and_holiday_weeks():
    t = _weekly()
    frame, report = build_training_frame(
        t["series"], covariates=t["covariates"], config=ForecastFeatureConfig(freq="W")
    )
    row = frame.loc[(frame["series_id"] == "1_2") & (frame["ds"] == pd.Timestamp("2011-03-04"))].iloc[0]
    assert row["cov_markdown1_lag_1"] == 7 * 11.0 and row["cov_markdown1_lag_2"] == 6 * 11.0
    assert {"promo_flag_lag_1", "holiday_week_easter", "holiday_weeks_until_christmas"} <= set(
        report.feature_names
    )
    daily = ForecastFeatureConfig(freq="D")
    assert daily.covariate_lags == () and ForecastFeatureConfig(freq="W").covariate_lags == (1, 2)


def test_weekly_future_frame_features_do_not_change_with_y_after_the_origin():
    t = _weekly()
    origin = pd.Timestamp("2011-06-03")
    cfg = ForecastFeatureConfig(freq="W").for_horizon(4)
    base, _ = build_future_frame(
        t["series"], horizon=4, config=cfg, covariates=t["covariates"], origin=origin
    )
    s = t["series"].assign(y=np.where(t["series"]["ds"] > origin, -1.0, t["series"]["y"]))
    out, _ = build_future_frame(s, horizon=4, config=cfg, covariates=t["covariates"], origin=origin)
    pd.testing.assert_frame_equal(out, base)
    assert base["cov_markdown1_lag_1"].notna().all()
