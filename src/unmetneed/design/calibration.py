r"""What a design remembers of its calibration, so variances can account for it.

After calibration the weights satisfy :math:`\sum_i w_i x_i = t_x` exactly, so
the variance of an estimator must be that of the residuals of the calibration
regression (Deville & Särndal 1992; Lumley 2010, ch. 7). Two records exist,
each reproducing R ``survey`` exactly:

``"regression"`` (``calibrate``, ``poststratify``; R's ``greg_calibration`` and
post-strata) replaces the influence values :math:`z_i` by

.. math::

    e_i = z_i - w_i\, x_i^\top \hat b, \qquad
    \hat b = \Big(\sum_i w^{0}_i x_i x_i^\top\Big)^{-} \sum_i x_i z_i / g_i ,

with :math:`w^0` the weights before calibration, :math:`g_i = w_i / w^0_i`.

``"raking"`` (``rake``; R's ``rake``) removes margin means by backfitting:
ten sweeps over the margins of
:math:`z_i \leftarrow z_i - w_i \,\overline{(z/w)}_{k(i)}`, the unweighted mean of
:math:`z/w` over the respondents in the row's category :math:`k(i)`, exactly
as R's ``svyrecvar`` does for raked designs.

Both are computed on sums by (estimate, category) and (category, PSU): the
:math:`n \times k` matrix of influence values is never formed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp

from unmetneed._blas import single_threaded_blas
from unmetneed.design.statistics import RatioStatistic
from unmetneed.design.taylor import group_sums

__all__ = ["RAKING_SWEEPS", "CalibrationRecord"]

RAKING_SWEEPS = 10  # R survey's svyrecvar uses ten backfitting sweeps


@dataclass(frozen=True, eq=False)
class CalibrationRecord:
    """The calibration model of one weighting step.

    Attributes
    ----------
    kind : {"regression", "raking"}
    codes : tuple of ndarray
        Category code per row of each categorical margin.
    sizes : tuple of int
        Number of categories of each margin.
    auxiliaries : tuple of ndarray
        Values per row of each numeric auxiliary (regression only).
    base_weights : ndarray
        Weights before the step.
    weights : ndarray
        Weights right after the step.
    method : str
        The weighting function and its options, for provenance.
    """

    kind: Literal["regression", "raking"]
    codes: tuple[np.ndarray, ...]
    sizes: tuple[int, ...]
    auxiliaries: tuple[np.ndarray, ...]
    base_weights: np.ndarray
    weights: np.ndarray
    method: str

    def adjust(
        self,
        stat: RatioStatistic,
        weights: np.ndarray,
        theta: np.ndarray,
        psu_totals: np.ndarray | sp.csr_matrix,
        psu: np.ndarray,
        n_psus: int,
    ) -> np.ndarray:
        """PSU totals of the calibration residuals instead of the influence values."""
        if self.kind == "raking":
            correction = self._raking_correction(stat, weights, theta, psu, n_psus)
        else:
            correction = self._regression_correction(stat, weights, theta, psu, n_psus)
        dense = psu_totals.toarray() if sp.issparse(psu_totals) else psu_totals
        return dense - correction

    # -- R's greg_calibration ------------------------------------------------------------
    def _design_matrix_blocks(self) -> list[tuple[np.ndarray | None, np.ndarray | None, int]]:
        blocks: list[tuple[np.ndarray | None, np.ndarray | None, int]] = [
            (codes, None, size) for codes, size in zip(self.codes, self.sizes, strict=True)
        ]
        blocks += [(None, values, 1) for values in self.auxiliaries]
        return blocks

    def _regression_correction(
        self, stat: RatioStatistic, weights: np.ndarray, theta: np.ndarray, psu: np.ndarray, n_psus: int
    ) -> np.ndarray:
        blocks = self._design_matrix_blocks()
        inverse_g, pinv_gram, wx = self._regression_parts(psu, n_psus)
        zero = np.zeros(inverse_g.size, dtype=np.intp)
        # X'(z/g): (k x p)
        xz = []
        for codes, values, size in blocks:
            if codes is not None:
                part = stat.influence_sums(weights, theta, codes, size, inverse_g)
            else:
                part = stat.influence_sums(weights, theta, zero, 1, inverse_g * values)
            xz.append(part.toarray() if sp.issparse(part) else part)
        coefficients = np.hstack(xz) @ pinv_gram
        return coefficients @ wx

    def _regression_parts(self, psu: np.ndarray, n_psus: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """1/g, the pseudo-inverse of X'W0X and PSU totals of w x: fixed per design."""
        key = ("regression", id(psu), n_psus)
        cache = self.__dict__.setdefault("_cache", {})
        if key not in cache:
            blocks = self._design_matrix_blocks()
            w0 = self.base_weights
            with np.errstate(divide="ignore", invalid="ignore"):
                inverse_g = np.where(self.weights != 0, w0 / self.weights, 0.0)
            gram = np.block([[_cross(a, b, w0) for b in blocks] for a in blocks])
            wx = np.vstack([_psu_sums(a, self.weights, psu, n_psus) for a in blocks])
            with single_threaded_blas():
                pinv_gram = np.linalg.pinv(gram, hermitian=True)
            cache[key] = (inverse_g, pinv_gram, wx)
        return cache[key]

    # -- R's raking backfit ----------------------------------------------------------------
    def _raking_correction(
        self, stat: RatioStatistic, weights: np.ndarray, theta: np.ndarray, psu: np.ndarray, n_psus: int
    ) -> np.ndarray:
        inverse, counts, n_cat, psu_sums = self._raking_parts(psu, n_psus)
        sums = []
        for codes, size in zip(self.codes, self.sizes, strict=True):
            part = stat.influence_sums(weights, theta, codes, size, inverse)
            sums.append(part.toarray() if sp.issparse(part) else part)
        effects = [np.zeros_like(s) for s in sums]
        for _ in range(RAKING_SWEEPS):
            for a in range(len(self.codes)):
                current = sums[a].copy()
                for b in range(len(self.codes)):
                    current -= effects[b] @ counts[(b, a)]
                with np.errstate(divide="ignore", invalid="ignore"):
                    effects[a] = effects[a] + np.where(n_cat[a] > 0, current / n_cat[a], 0.0)
        correction = 0.0
        for a in range(len(self.codes)):
            correction = correction + effects[a] @ psu_sums[a]
        return np.asarray(correction)

    def _raking_parts(self, psu: np.ndarray, n_psus: int) -> tuple[Any, ...]:
        """1/w, category cross-counts and PSU totals of w by category: fixed per design."""
        key = ("raking", id(psu), n_psus)
        cache = self.__dict__.setdefault("_cache", {})
        if key not in cache:
            psw = self.weights
            with np.errstate(divide="ignore", invalid="ignore"):
                inverse = np.where(psw != 0, 1.0 / psw, 0.0)
            ones = np.ones(psw.size)
            margins = range(len(self.codes))
            blocks = [(self.codes[a], None, self.sizes[a]) for a in margins]
            counts = {(a, b): _cross(blocks[a], blocks[b], ones) for a in margins for b in margins}
            n_cat = [np.diag(counts[(a, a)]) for a in margins]
            psu_sums = [_psu_sums(blocks[a], psw, psu, n_psus) for a in margins]
            cache[key] = (inverse, counts, n_cat, psu_sums)
        return cache[key]


def _cross(
    a: tuple[np.ndarray | None, np.ndarray | None, int],
    b: tuple[np.ndarray | None, np.ndarray | None, int],
    weights: np.ndarray,
) -> np.ndarray:
    """Weighted cross-product block of two margins' design-matrix columns."""
    codes_a, values_a, size_a = a
    codes_b, values_b, size_b = b
    if codes_a is not None and codes_b is not None:
        key = codes_a * size_b + codes_b
        return np.bincount(key, weights=weights, minlength=size_a * size_b).reshape(size_a, size_b)
    if codes_a is not None:
        return np.bincount(codes_a, weights=weights * values_b, minlength=size_a)[:, None]
    if codes_b is not None:
        return np.bincount(codes_b, weights=weights * values_a, minlength=size_b)[None, :]
    return np.array([[np.sum(weights * values_a * values_b)]])


def _psu_sums(
    block: tuple[np.ndarray | None, np.ndarray | None, int],
    weights: np.ndarray,
    psu: np.ndarray,
    n_psus: int,
) -> np.ndarray:
    codes, values, size = block
    if codes is not None:
        sums = group_sums(codes, weights, size, psu, n_psus)
        return sums.toarray() if sp.issparse(sums) else sums
    return np.bincount(psu, weights=weights * values, minlength=n_psus)[None, :]
