"""Collection settings for the whole repository (tests and the package's doctests)."""

from __future__ import annotations

import importlib.util


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent that is not a package, or a module set to None
        return False


# The examples of the Dask module run Dask: without the optional dask extra they are not collected
# (the package itself imports without it; tests/ skip their Dask tests).
collect_ignore = [] if _installed("dask.dataframe") else ["src/unmetneed/mrp/streaming.py"]
