"""The typer sub-commands of ``orderpulse``: ``features`` (data prepare, features build), ``training`` (train,
forecast, score, backtest, tune, promote), ``report`` (notebooks to HTML), ``quickstart`` (``make run``).
Each parses its options, calls a job in ``orderpulse.jobs`` and prints one JSON line on stdout."""
