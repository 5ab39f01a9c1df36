"""Demand forecasting: everything that fits, evaluates or runs the global LightGBM forecaster.

- ``forecaster``: ``LGBMForecaster`` (scikit-learn estimator; one booster per horizon bucket, conformal
  intervals, SHAP by feature family); ``baselines``: seasonal naive and statsmodels ETS/SARIMAX through the same
  interface.
- ``backtest``: rolling-origin windows and ``backtest`` (metrics per window and overall, ``eval_key``).
- ``tuning``: Optuna search on backtest WAPE; ``whatif``: the forecast under a changed plan and its baseline
  (shared with the API's what-if).
- ``dask``: the forecaster's dask paths (training frames and boosters on a cluster, batch forecasts per
  partition).
- ``job``: ``train_forecast`` (tune, backtest, fit, log, register) and ``forecast_frame`` on validated frames;
  ``orderpulse.jobs.forecast`` runs them on files.
"""
