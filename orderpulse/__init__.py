"""OrderPulse: demand forecasts and exception-order scores for order management systems.

The code lives in three packages that data flows through in one direction:
``features`` (raw tables -> model-ready frames) -> ``training`` (fit, backtest, MLflow registry) ->
``serving`` (HTTP API over registered models). This package is the ``orderpulse`` command line on top of them,
and the only code that talks to a terminal:

- ``cli``: the typer app (deliberate errors exit 2 with one readable line).
- ``commands/``: the command groups (``features``, ``train``/``tune``/``forecast``/``backtest``/``score``/
  ``promote``, ``report``, ``quickstart``); options and output columns are interfaces.
- ``jobs/``: what the training commands run: read and validate the input files (``features.io``), call the
  ``training`` jobs on frames, write the outputs; the dask engine gets the paths to read lazily.
- ``console``: rich output on stderr (``RichProgress`` renders ``training.progress``: status lines and
  progress bars with ETA) and the one JSON line on stdout.
"""

__version__ = "0.1.0"
