"""Fixtures shared by test folders: Dask for the streamed-frame tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture(scope="session")
def dd() -> Any:
    """``dask.dataframe``; the test is skipped when Dask (the ``dask`` extra) is not installed."""
    pytest.importorskip("dask.distributed")
    import dask.dataframe

    return dask.dataframe


@pytest.fixture
def client(dd: Any) -> Iterator[Any]:
    """A real in-process LocalCluster (one worker, one thread, no dashboard), active for the test."""
    from distributed import Client, LocalCluster

    with (
        LocalCluster(processes=False, n_workers=1, threads_per_worker=1, dashboard_address=None) as cluster,
        Client(cluster) as active,
    ):
        yield active
