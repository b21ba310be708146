"""R's ``uniroot`` (Brent's zeroin, ``R_zeroin2``), step for step.

Score intervals for quantiles and R's saddlepoint approximation solve
equations whose answer depends on which iterates the root-finder visits (the
score function is a step function). Porting R's C code exactly makes the
result land on the same side of every jump as R's.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from unmetneed.errors import DesignError

__all__ = ["uniroot"]

_EPSILON = float(np.finfo(float).eps)


def uniroot(
    f: Callable[[float], float],
    lower: float,
    upper: float,
    *,
    tol: float = _EPSILON**0.25,
    maxiter: int = 1000,
) -> float:
    """The root of ``f`` in ``[lower, upper]`` exactly as R's ``uniroot(f, c(lower, upper), tol=)``.

    Raises
    ------
    DesignError
        ``f`` has the same sign at both ends (R: "f() values at end points not
        of opposite sign").
    """
    fa = float(f(lower))
    fb = float(f(upper))
    if np.isnan(fa) or np.isnan(fb):
        raise DesignError("the function is NaN at an end of the search interval")
    if fa * fb > 0:
        raise DesignError("f() values at end points not of opposite sign")
    return _zeroin2(f, lower, upper, fa, fb, tol, maxiter)


def _zeroin2(
    f: Callable[[float], float],
    ax: float,
    bx: float,
    fa: float,
    fb: float,
    tol: float,
    maxit: int,
) -> float:
    a, b = ax, bx
    c, fc = a, fa
    if fa == 0.0:
        return a
    if fb == 0.0:
        return b
    remaining = maxit + 1
    while remaining:
        remaining -= 1
        prev_step = b - a
        if abs(fc) < abs(fb):
            a, b, c = b, c, b
            fa, fb, fc = fb, fc, fb
        tol_act = 2 * _EPSILON * abs(b) + tol / 2
        new_step = (c - b) / 2
        if abs(new_step) <= tol_act or fb == 0.0:
            return b
        if abs(prev_step) >= tol_act and abs(fa) > abs(fb):
            cb = c - b
            if a == c:
                t1 = fb / fa
                p = cb * t1
                q = 1.0 - t1
            else:
                q = fa / fc
                t1 = fb / fc
                t2 = fb / fa
                p = t2 * (cb * q * (q - t1) - (b - a) * (t1 - 1.0))
                q = (q - 1.0) * (t1 - 1.0) * (t2 - 1.0)
            if p > 0:
                q = -q
            else:
                p = -p
            if p < (0.75 * cb * q - abs(tol_act * q) / 2) and p < abs(prev_step * q / 2):
                new_step = p / q
        if abs(new_step) < tol_act:
            new_step = tol_act if new_step > 0 else -tol_act
        a, fa = b, fb
        b += new_step
        fb = float(f(b))
        if (fb > 0 and fc > 0) or (fb < 0 and fc < 0):
            c, fc = a, fa
    return b
