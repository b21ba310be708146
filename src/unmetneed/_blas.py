"""Run small dense linear algebra on one BLAS thread.

On a 2-core machine a multi-threaded BLAS makes the small solves of
calibration and model fitting (a few hundred columns) slower and erratic; one
thread is both faster and steadier. The limit applies only inside the block.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

from threadpoolctl import ThreadpoolController

__all__ = ["single_threaded_blas"]


@lru_cache(maxsize=1)
def _controller() -> ThreadpoolController:
    return ThreadpoolController()


@contextmanager
def single_threaded_blas() -> Iterator[None]:
    """Limit BLAS to one thread for the duration of the ``with`` block."""
    with _controller().limit(limits=1, user_api="blas"):
        yield
