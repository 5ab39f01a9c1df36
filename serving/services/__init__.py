"""What the model routes do, on DataFrames: ``scoring`` (orders), ``events`` (reported orders and labels),
``forecasting`` (forecasts, what-ifs, actuals), ``monitoring`` (live accuracy, drift, data quality and status;
``monitoring_inputs``, ``monitoring_rules``, ``monitoring_job`` for the periodic refresh). Routes validate, call one of these, and return the result."""
