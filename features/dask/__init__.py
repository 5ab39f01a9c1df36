"""Dask engine for the feature builders: the SAME ``features`` functions, applied per partition.

Like mlforecast's ``DistributedMLForecast``, nothing here computes a feature: every partition is handed to
``features.validation.validate``, ``features.forecast_frame.build_training_frame`` (or, for forecasts, the
model's own ``predict``) and ``features.order_features.OrderHistory``, so a feature cannot be computed two
different ways. This module only decides what each partition sees, and merges the reports.

Forecast frames: partitioned by series
--------------------------------------
Every feature of a forecast row depends on its own series only, plus small shared tables. ``ForecastPartitions``
gives each series to exactly one partition (contiguous ranges of the sorted ``series_id``, balanced by row
count, so concatenating the partitions in order gives the single-machine row order), and each partition gets:

* its series' rows, validated in the partition (every validation rule of ``series`` is per series);
* its series' own ``covariates`` rows (a per-series covariate table is as large as the series table, so it is
  split, never broadcast), plus the covariate rows without ``series_id`` (they apply to every series: shared);
  plus two *context rows*: copies of a covariate row whose ``series_id`` is a reserved id no series has, dated
  at the first and last ``ds`` of the whole covariate table. ``build_training_frame`` sizes the look-ahead
  context of promo/holiday distances from the covariates' date range; the context rows make that range the
  same in every partition as on one machine. The feature code ignores them like any row of an unknown series,
  and they are subtracted from ``covariate_rows_for_unknown_series_ignored``, so every count is exact;
* its series' ``static`` rows (rows of unknown series go to partition 0, where they are counted as on one
  machine) and the whole ``weather`` table (one row per region and day: small, shared).

Category lists (``series_id`` and string covariates/static attributes) are learned per partition, unioned,
and applied with ``features.covariates.apply_categories``: the result has exactly the categories, values, rows
and counts of ``build_training_frame`` on the whole table (``tests/features/dask/test_forecast.py``).

Order features: one shared as-of index, partitioned by time
-----------------------------------------------------------
Customer history is per customer, but SKU popularity, SKU exception rates and the global label rate that
smooths every rate span all customers, so no partition of the orders can compute them from its own rows. The
point-in-time lookups are already an index (``OrderHistory``: sorted int64 arrays and prefix sums, about a
second per million lines to build). The dask engine builds that index once, in a worker, shares it with every
worker, and scores contiguous time ranges of orders in parallel with ``OrderHistory.features``. Each partition
sees exactly the history a single machine sees (every order and label; the as-of searches keep only what was
strictly before each order), so partition boundaries cannot leak the future or hide the past. The cost: the
index must fit in one worker's memory (it holds a few int64 per order line). Beyond that, the next step would
be a first distributed pass for the SKU and global label timelines joined to customer partitions; it is not
implemented.

Inputs may be a file, a directory or a glob of Parquet files, read lazily (``read_table_lazy``). Everything
here needs a ``distributed.Client`` (``training.engine.dask_client`` opens one); dask is imported only
when these functions run.

Modules: ``reading`` (lazy reading of the files ``features.io`` discovers), ``partitions`` (series
partitioning: ``ForecastPartitions``, ``PartitionResult``), ``forecast`` (dask forecast feature frames),
``orders`` (dask order features). Writing a dask frame as a partitioned dataset is ``features.io.write_frame``.
This package holds the client look-up they share.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:  # pragma: no cover
    from distributed import Client

__all__ = ["require_client", "task_token", "head0"]


def require_client(client: Client | None = None) -> Client:
    """``client``, else the ``distributed.Client`` running in this process; a clear error when none is."""
    if client is not None:
        return client
    from distributed import get_client

    try:
        return get_client()
    except ValueError:
        raise RuntimeError(
            "The dask engine needs a distributed Client and none is running. Fix: run inside "
            "`with training.engine.dask_client(scheduler): ...` (a LocalCluster when scheduler is None)."
        ) from None


def task_token() -> str:
    """A short random token that keeps dask task names of one call apart from another's."""
    import uuid

    return uuid.uuid4().hex[:12]


def head0(frame: pd.DataFrame) -> pd.DataFrame:
    """The empty frame with ``frame``'s columns and dtypes (the ``meta`` of ``dd.from_delayed``)."""
    return frame.iloc[:0]
