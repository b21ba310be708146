"""Fixtures shared by test folders: Dask for the streamed-frame tests."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
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


@pytest.fixture
def run_without_dask() -> Callable[[str], None]:
    """Run Python ``code`` in a fresh interpreter where ``dask`` and ``distributed`` cannot be
    imported; it must also leave no dask module loaded."""

    def run(code: str) -> None:
        import unmetneed

        script = (
            "import sys; sys.modules['dask'] = None; sys.modules['distributed'] = None\n"
            + code
            + "\nassert 'dask' not in {m.split('.')[0] for m in sys.modules if sys.modules[m]}\n"
        )
        subprocess.run(
            [sys.executable, "-c", script],
            check=True,
            env={**os.environ, "PYTHONPATH": str(Path(unmetneed.__file__).parents[1])},
        )

    return run
