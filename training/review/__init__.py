"""Reviews: the tables and plots a planner or an analyst reads, for the notebooks, ``orderpulse report`` and
the MLflow plots of the training jobs.

- ``forecast`` / ``forecast_plots``: accuracy by series and segment, interval coverage, drivers, champion vs
  challenger, and their figures.
- ``orders`` / ``order_plots``: flagged orders with reasons, precision/recall and calibration on labelled
  history, recurring reasons, and their figures.
- ``scenarios``: promo/weather what-if scenarios for the planner notebook (computed by
  ``training.forecast.whatif``).
- ``monitoring_plots``: live accuracy vs the training reference, coverage by step, live calibration and input
  drift, from the figures ``serving.services.monitoring`` computes (``orderpulse report monitoring``).

Nothing here fits or re-implements a model: the numbers come from the models' own outputs and
``training.metrics``, so a notebook, the HTML report and MLflow show the same values.
"""
