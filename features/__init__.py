"""Features: raw tables (series, orders, covariates, weather, static, labels) -> model-ready frames.

The first layer of the data flow ``features/`` -> ``training/`` -> MLflow registry -> ``serving/``: training
and serving call the same functions here, so a model never sees a feature computed two different ways. Nothing
here knows of MLflow or HTTP, prints, or imports ``training``/``serving``/``orderpulse``.

Tables in and out (one home each)
    ``io``               reading (file discovery, the id-column rule) and ``write_frame``, the one writer: the
                         path decides CSV/TSV text, a Parquet file or a partitioned Parquet dataset
    ``validation``       the six input tables' schemas and repairs (pandera) and ``parse_timestamps``
    ``ids``              the id rule (``normalize_ids``, ``ids_as_text``, ``ids_as_known``): every id of
                         every table, event and request is read by it
    ``errors``           ``DataValidationError`` / ``Problem`` (what was wrong, the value, the fix)
    ``adapters/``        public datasets (Rossmann, Online Retail) -> the six tables
    ``order_export``     a shop's own order export -> the ``orders`` table and its cancellation events

Demand forecasting: one row per (series, step)
    ``forecast_config``  ``ForecastFeatureConfig``: which features, defaults per frequency
    ``forecast_frame``   ``build_training_frame`` / ``build_future_frame`` (the regular grid, every family),
                         ``design_matrix``, feature families for explanations
    ``calendar``         frequencies (``infer_freq``, ``step_length``: the one step length) and calendar
                         features
    ``lags``             ``y`` lags, rolling, seasonal and expanding statistics (leak-free at ``min_lag``)
    ``covariates``       known-in-advance covariates, promo/holiday signals, static attributes, categories
    ``weather``          weather per region and day, joined through ``static.region``

Exception orders: one row per order, point in time
    ``order_lines``      order lines and labels as arrays, lines -> one row per order, ``merge_by_order``
                         (the one rule for merging a snapshot with newer order lines or labels)
    ``order_features``   ``order_features`` / ``OrderHistory``: customer, SKU and time features as of each order
    ``order_outcomes``   ``OutcomeIndex``: the labels known so far (exception rates per customer, SKU,
                         customer x SKU, country/channel/region; plain and decayed with a 90-day half-life)
    ``asof``             the vectorised "strictly before" lookups those features use (and decayed sums)
    ``columns``          feature tables as a DataFrame or a dict of arrays (the service's fast path)
    ``orders``           order lines -> a ``series`` table (orders, units or revenue per key and period)

Scale-out
    ``dask/``            the same functions per partition on a Dask cluster: lazy reading, series partitions,
                         forecast frames, order features (see its docstring for what each partition sees)
"""
