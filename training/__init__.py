"""Training: validated frames in, fitted and backtested models, MLflow runs and registered versions out.

Data flows one way: ``features`` (raw tables -> model-ready frames) -> ``training`` -> MLflow registry ->
``serving``. This package consumes frames; it never reads raw files, never prints and never imports the CLI
(``orderpulse``), which reads the files, calls the jobs here and renders their progress.

Sub-packages, one per concept (the way Darts keeps forecasting models and anomaly detection apart):

- ``forecast/``: the global LightGBM forecaster, baselines, rolling-origin backtests, Optuna tuning, what-if
  forecasts, its dask fitting, and the forecast job (``train_forecast`` on frames).
- ``anomaly/``: the exception-order classifier and unsupervised detector, their training data, calibration and
  thresholds, reasons, tuning, dask scoring, and the anomaly job (``train_anomaly``, ``score_orders``).
- ``review/``: tables and plots for the notebooks and ``orderpulse report`` (forecast and order reviews,
  what-if scenarios); they compute nothing a model does not already produce.

Shared flat modules, used by both kinds of model:

- ``progress``: how jobs report progress (``Progress``: ``info``/``warning``/``task``; logging by default).
- ``metrics``: forecast and classification metrics; ``explain``: exact TreeSHAP contributions; ``profile``: the
  training profile logged with each model, and PSI / missing / unknown rates of live inputs against it.
- ``tracking``: where MLflow runs go and what they log; ``pyfunc``: how models are logged and the one loader
  (``load_snapshot_model(uri, kind=...)``); ``registry``: the ``<name>-<kind>`` rule (``registered_name``),
  versions, the ``champion``/``challenger`` aliases.
- ``engine``: ``local`` or ``dask``, the Dask client and what the dask paths share.
"""
