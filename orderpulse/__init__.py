"""OrderPulse: demand forecasts and exception-order scores for order management systems.

The code lives in three packages that data flows through in one direction:
``features`` (raw tables -> model-ready frames) -> ``training`` (fit, backtest, MLflow registry) ->
``serving`` (HTTP API over registered models). This package only holds the ``orderpulse`` command line.
"""

__version__ = "0.1.0"
