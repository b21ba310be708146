r"""Numerical cores of raking and calibration, on respondent cells.

Both work on cell totals of the weights (a vector, or a cells x replicates
matrix so every replicate is re-weighted in the same pass) and return
g-weights per cell.

Raking is iterative proportional fitting (Deming & Stephan 1940): for each
margin in turn, multiply the weights in each category by target / current.

Calibration follows R ``survey``'s ``grake`` (Deville & Särndal 1992): find
:math:`\lambda` with :math:`\sum_i w_i F(x_i^\top\lambda) x_i = t_x` by Newton's
method from :math:`\lambda = 0`, with the distance's inverse :math:`F` (linear
:math:`1+u`, raking :math:`e^u`, logit bounded in :math:`(L, U)`), truncated to
the bounds for linear and raking, step halving when a step leaves the domain,
and a generalised inverse, so rank-deficient margin sets (several margins of
indicators) need no contrasts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

import numpy as np
import scipy.sparse as sp

from unmetneed._blas import single_threaded_blas
from unmetneed.weighting.blocks import Block
from unmetneed.weighting.cells import Cells

__all__ = ["Solution", "calibrate_cells", "distance_functions", "rake_cells"]


@dataclass(frozen=True)
class Solution:
    g: np.ndarray  # (C,) or (C, R) g-weights per cell
    iterations: int
    max_rel_error: float  # largest over replicates as well
    worst_block: int  # index of the block with the largest error


def _indicators(cells: Cells, blocks: list[Block]) -> list[sp.csr_matrix]:
    out = []
    for block, codes, values in zip(blocks, cells.codes, cells.values, strict=True):
        if codes is None:
            # a block without category codes is a numeric auxiliary: its cells have values
            out.append(sp.csr_matrix(cast(np.ndarray, values)[None, :]))
        else:
            out.append(
                sp.csr_matrix(
                    (np.ones(cells.n_cells), (codes, np.arange(cells.n_cells))),
                    shape=(block.size, cells.n_cells),
                )
            )
    return out


def _block_totals(codes: np.ndarray, size: int, weights: np.ndarray, indicator: sp.csr_matrix) -> np.ndarray:
    if weights.ndim == 1:
        return np.bincount(codes, weights=weights, minlength=size)
    return np.asarray(indicator @ weights)


def _errors(blocks: list[Block], totals: list[np.ndarray]) -> np.ndarray:
    errs = []
    for block, total in zip(blocks, totals, strict=True):
        target = block.target if total.ndim == 1 else block.target[:, None]
        scale = np.where(target != 0, np.abs(target), 1.0)
        errs.append(float(np.max(np.abs(total - target) / scale)))
    return np.asarray(errs)


def rake_cells(
    cell_weights: np.ndarray, cells: Cells, blocks: list[Block], *, tol: float, max_iter: int
) -> Solution:
    """Iterative proportional fitting of cell weights to categorical blocks.

    Each sweep measures every margin's error just before adjusting it, so a sweep costs
    one ``bincount`` per margin; when a whole sweep saw no error above ``tol`` the
    final weights are checked once more and the loop stops only if they pass.
    """
    indicators = _indicators(cells, blocks)
    # fit_margins(categorical_only=True) refuses numeric auxiliaries before raking, so
    # every block has category codes
    block_codes = cast(list[np.ndarray], cells.codes)
    targets = [b.target if cell_weights.ndim == 1 else b.target[:, None] for b in blocks]
    scales = [np.where(t != 0, np.abs(t), 1.0) for t in targets]
    weights = np.array(cell_weights, dtype=np.float64, copy=True)
    errors = np.full(len(blocks), np.inf)
    iterations = 0
    for iterations in range(1, max_iter + 1):
        sweep_error = 0.0
        for block, codes, indicator, target, scale in zip(
            blocks, block_codes, indicators, targets, scales, strict=True
        ):
            current = _block_totals(codes, block.size, weights, indicator)
            sweep_error = max(sweep_error, float(np.max(np.abs(current - target) / scale)))
            with np.errstate(divide="ignore", invalid="ignore"):
                factor = np.where(current > 0, target / current, 1.0)
            weights *= factor[codes]
        if sweep_error <= tol:
            totals = [
                _block_totals(codes, b.size, weights, ind)
                for b, codes, ind in zip(blocks, block_codes, indicators, strict=True)
            ]
            errors = _errors(blocks, totals)
            if errors.max() <= tol:
                break
    else:
        totals = [
            _block_totals(codes, b.size, weights, ind)
            for b, codes, ind in zip(blocks, block_codes, indicators, strict=True)
        ]
        errors = _errors(blocks, totals)
    with np.errstate(divide="ignore", invalid="ignore"):
        g = np.where(cell_weights != 0, weights / cell_weights, 1.0)
    return Solution(g, iterations, float(errors.max()), int(np.argmax(errors)))


DistanceF = Callable[[np.ndarray], np.ndarray]


def distance_functions(method: str, bounds: tuple[float, float]) -> tuple[DistanceF, DistanceF]:
    """``F(u) - 1`` and ``F'(u)`` of R survey's ``cal.linear``, ``cal.raking``, ``cal.logit``."""
    lower, upper = bounds
    if method == "linear":

        def linear_fm1(u: np.ndarray) -> np.ndarray:
            return np.minimum(np.maximum(u + 1.0, lower), upper) - 1.0

        def linear_df(u: np.ndarray) -> np.ndarray:
            return ((u < upper - 1.0) & (u > lower - 1.0)).astype(np.float64)

        return linear_fm1, linear_df
    if method == "raking":

        def raking_fm1(u: np.ndarray) -> np.ndarray:
            with np.errstate(over="ignore"):
                return np.minimum(np.maximum(np.exp(u), lower), upper) - 1.0

        def raking_df(u: np.ndarray) -> np.ndarray:
            # As R: the window is on u, not on exp(u).
            with np.errstate(over="ignore"):
                return np.where((u < upper - 1.0) & (u > lower - 1.0), np.exp(u), 0.0)

        return raking_fm1, raking_df
    a = (upper - lower) / ((upper - 1.0) * (1.0 - lower))

    def fm1(u: np.ndarray) -> np.ndarray:
        with np.errstate(over="ignore", invalid="ignore"):
            e = np.exp(a * u)
            return (lower * (upper - 1.0) + upper * (1.0 - lower) * e) / (
                upper - 1.0 + (1.0 - lower) * e
            ) - 1.0

    def df(u: np.ndarray) -> np.ndarray:
        with np.errstate(over="ignore", invalid="ignore"):
            e = np.exp(a * u)
            d = upper - 1.0 + (1.0 - lower) * e
            return (
                upper * (1.0 - lower) * e * a / d
                - ((lower * (upper - 1.0) + upper * (1.0 - lower) * e) * ((1.0 - lower) * e * a)) / d**2
            )

    return fm1, df


class BlockMatrix:
    """The (cells x p) calibration matrix, held as category codes and values.

    Products with it are ``bincount`` and indexing; the Gram matrix
    :math:`X^\top D X` is a cross-tabulation per pair of margins. Nothing
    sparse or dense of size cells x p is built.
    """

    def __init__(self, cells: Cells, blocks: list[Block]) -> None:
        self.parts = [
            (codes, values, block.size)
            for block, codes, values in zip(blocks, cells.codes, cells.values, strict=True)
        ]
        self.offsets = np.cumsum([0] + [size for _, _, size in self.parts])
        self.n_columns = int(self.offsets[-1])

    def matvec(self, eta: np.ndarray) -> np.ndarray:
        out = 0.0
        for (codes, values, _), start in zip(self.parts, self.offsets, strict=False):
            out = out + (eta[start:][codes] if codes is not None else eta[start] * values)
        return np.asarray(out)

    def rmatvec(self, v: np.ndarray) -> np.ndarray:
        return np.concatenate(
            [
                np.bincount(codes, weights=v, minlength=size) if codes is not None else np.array([values @ v])
                for codes, values, size in self.parts
            ]
        )

    def gram(self, d: np.ndarray) -> np.ndarray:
        out = np.empty((self.n_columns, self.n_columns))
        for i, (ca, va, ka) in enumerate(self.parts):
            for j, (cb, vb, kb) in enumerate(self.parts[: i + 1]):
                if ca is not None and cb is not None:
                    block = np.bincount(ca * kb + cb, weights=d, minlength=ka * kb).reshape(ka, kb)
                elif ca is not None:
                    block = np.bincount(ca, weights=d * vb, minlength=ka)[:, None]
                elif cb is not None:
                    block = np.bincount(cb, weights=d * va, minlength=kb)[None, :]
                else:
                    block = np.array([[np.sum(d * va * vb)]])
                a, b = self.offsets[i], self.offsets[j]
                out[a : a + ka, b : b + kb] = block
                out[b : b + kb, a : a + ka] = block.T
        return out


RESCALE_THRESHOLD = 20.0  # R grake's SOMETHRESHOLD


def calibrate_cells(
    cell_weights: np.ndarray,
    cells: Cells,
    blocks: list[Block],
    *,
    method: str,
    bounds: tuple[float, float],
    tol: float,
    max_iter: int,
) -> Solution:
    """Newton calibration of (C,) cell weights, as R's ``grake``; replicates column by column."""
    if cell_weights.ndim == 2:
        solutions = [
            calibrate_cells(
                cell_weights[:, r], cells, blocks, method=method, bounds=bounds, tol=tol, max_iter=max_iter
            )
            for r in range(cell_weights.shape[1])
        ]
        worst_solution = max(solutions, key=lambda s: s.max_rel_error)
        return Solution(
            np.column_stack([s.g for s in solutions]),
            max(s.iterations for s in solutions),
            worst_solution.max_rel_error,
            worst_solution.worst_block,
        )
    x = BlockMatrix(cells, blocks)
    target = np.concatenate([b.target for b in blocks])
    fm1, df = distance_functions(method, bounds)
    ww = cell_weights.astype(np.float64)
    sample_total = x.rmatvec(ww)
    with np.errstate(divide="ignore", invalid="ignore"):
        scales = target / sample_total
    rescale = 1.0
    if np.all(np.isfinite(scales)) and scales.min() > RESCALE_THRESHOLD:
        rescale = float(np.mean(scales))  # as R: bounds then apply after this rescaling
        ww = ww * rescale
        sample_total = sample_total * rescale
    scale_err = np.where(target != 0, np.abs(target), 1.0)
    eta = np.zeros(x.n_columns)
    xeta = np.zeros(cells.n_cells)
    deriv = df(xeta)
    iterations = 1
    errors = np.inf
    while True:
        gram = x.gram(ww * deriv)
        misfit = target - sample_total - x.rmatvec(ww * fm1(xeta))
        with single_threaded_blas():
            step = np.linalg.pinv(gram, rcond=256 * np.finfo(float).eps, hermitian=True) @ misfit
        eta = eta + step
        xeta = x.matvec(eta)
        g = 1.0 + fm1(xeta)
        deriv = df(xeta)
        while iterations < max_iter and not (np.isfinite(g).all() and np.isfinite(deriv).all()):
            iterations += 1
            step = step / 2.0
            eta = eta - step
            xeta = x.matvec(eta)
            g = 1.0 + fm1(xeta)
            deriv = df(xeta)
        misfit = target - sample_total - x.rmatvec(ww * fm1(xeta))
        relative = np.abs(misfit) / scale_err
        errors = float(relative.max()) if np.isfinite(relative).all() else np.inf
        if errors <= tol:
            break
        iterations += 1
        if iterations > max_iter:
            break
    g = (1.0 + fm1(xeta)) * rescale
    offsets = np.cumsum([0] + [b.size for b in blocks])
    worst = int(np.searchsorted(offsets, int(np.argmax(relative)), side="right") - 1)
    return Solution(g, min(iterations, max_iter), errors, worst)
