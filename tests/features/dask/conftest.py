"""The 2-worker LocalCluster the tests of features/dask/ share (threads: fast to start, same code paths)."""

from __future__ import annotations

import pytest

pytest.importorskip("distributed")

from distributed import Client, LocalCluster  # noqa: E402


@pytest.fixture(scope="module")
def client():
    with (
        LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster,
        Client(cluster) as c,
    ):
        yield c
