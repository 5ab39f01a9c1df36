"""Exception orders: models that score how likely an order is to become an exception, and why.

- ``models``: ``ExceptionClassifier`` (calibrated LightGBM) and ``UnsupervisedDetector`` (isolation forest),
  scikit-learn estimators, and their MLflow wrapper ``AnomalyPyfunc``.
- ``data``: the point-in-time training data (features known before each order, label maturity, the train /
  validation / calibration split); ``calibration``: probability calibration and the flag-threshold policy;
  ``reasons``: readable sentences from SHAP contributions.
- ``tuning``: Optuna search on validation AUPRC (each trial a nested MLflow run).
- ``dask``: order features and batch scoring on a Dask cluster.
- ``job``: ``train_anomaly`` and ``score_orders`` on validated frames; ``orderpulse.jobs.anomaly`` runs them on
  files.
"""
