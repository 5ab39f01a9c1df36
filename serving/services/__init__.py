"""What the model routes do, on DataFrames: ``scoring`` (orders), ``events`` (reported orders and labels),
``forecasting`` (forecasts, what-ifs, actuals). Routes validate, call one of these, and return the result."""
