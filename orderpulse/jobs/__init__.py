"""The jobs the commands run: files in, frames through ``training/``, files and one summary dict out.

``forecast.py`` (``train forecast``, ``forecast``, ``backtest``/``tune`` table loading), ``anomaly.py``
(``train anomaly``, ``score``), ``volume.py`` (``detect volume``), ``retrain.py`` (``retrain forecast|anomaly``:
the champion's inputs plus the service's stored events, gated, under a registry lock) and
``monitoring_report.py`` (``report monitoring``) read and validate the input tables with
``features.io``, print what was read and repaired on stderr, call the training functions that take frames (rendering their progress with
``orderpulse.console.RichProgress``) and write the outputs with ``features.io``. The dask engine reads its
inputs lazily, so for it these modules pass the paths on (``training.forecast.dask``, ``training.anomaly.dask``).
"""
