"""Deterministic rounding of published numbers.

Estimates are rounded to the nearest multiple, halves away from zero (not
numpy's round-half-to-even, whose result depends on the parity of the
neighbouring multiple); interval bounds are rounded outwards so a rounded
interval always contains the rounded estimate.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

__all__ = ["round_to_base", "round_to_decimals"]

Direction = Literal["nearest", "down", "up"]

# A value already on the grid, up to floating-point noise (0.29 * 100 is
# 28.999999999999996), is snapped to it first so rounding an already rounded
# table changes nothing.
_SNAP = 1e-9


def _round_units(units: np.ndarray, how: Direction) -> np.ndarray:
    nearest_int = np.rint(units)
    close = np.abs(units - nearest_int) <= _SNAP * np.maximum(1.0, np.abs(units))
    units = np.where(close, nearest_int, units)
    if how == "nearest":
        out = np.sign(units) * np.floor(np.abs(units) + 0.5)
    elif how == "down":
        out = np.floor(units)
    else:
        out = np.ceil(units)
    return out + 0.0  # turns -0.0 into 0.0


def round_to_base(values: np.ndarray, base: int, how: Direction = "nearest") -> np.ndarray:
    """Round to a multiple of ``base``: nearest (halves away from zero), down or up.

    Examples
    --------
    >>> import numpy as np
    >>> round_to_base(np.array([12.5, 17.4, -12.5, 0.2]), 5)
    array([ 15.,  15., -15.,   0.])
    >>> bounds = np.array([11.0, 15.0])
    >>> round_to_base(bounds, 5, how="down"), round_to_base(bounds, 5, how="up")
    (array([10., 15.]), array([15., 15.]))
    """
    values = np.asarray(values, dtype=np.float64)
    return _round_units(values / base, how) * base


def round_to_decimals(values: np.ndarray, decimals: int, how: Direction = "nearest") -> np.ndarray:
    """Round to ``decimals`` places: nearest (halves away from zero), down or up.

    Examples
    --------
    >>> import numpy as np
    >>> round_to_decimals(np.array([0.125, 0.29, -0.125]), 2)
    array([ 0.13,  0.29, -0.13])
    >>> round_to_decimals(np.array([0.29]), 2, how="down")
    array([0.29])
    """
    values = np.asarray(values, dtype=np.float64)
    scale = 10.0**decimals
    return _round_units(values * scale, how) / scale
