r"""Covariance matrices of several estimates, Taylor and replicate.

The Taylor covariance of estimates with influence values :math:`z_{ic}` is

.. math::

    \hat V_{cd} = \sum_h (1 - f_h) \frac{n_h}{n_h - 1}
        \sum_{j=1}^{n_h} (z_{hjc} - \bar z_{hc})(z_{hjd} - \bar z_{hd}),

the matrix version of :func:`~unmetneed.design.taylor.stratified_variance`
(R's ``svyrecvar``); lonely PSUs follow the design's policy (``"average"``
scales by the number of strata over those with more than one PSU, over the
whole design). The replicate covariance is R's ``svrVar``.

:class:`MatrixInfluence` wraps an explicit ``(n x k)`` matrix of influence
values (a GLM's ``estfun %*% Ainv``) so that calibration adjustments, written
for :class:`~unmetneed.design.statistics.RatioStatistic`, apply to it too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import scipy.sparse as sp

from unmetneed.design.replicate import replicate_degf, replicate_variance
from unmetneed.design.taylor import PSUStructure

if TYPE_CHECKING:
    from unmetneed.design.survey_design import SurveyDesign

__all__ = [
    "MatrixInfluence",
    "design_covariance",
    "domain_degf",
    "group_totals",
    "psu_totals",
    "stack_totals",
    "stratified_covariance",
]


def _dense(matrix: np.ndarray | sp.csr_matrix) -> np.ndarray:
    return matrix.toarray() if sp.issparse(matrix) else np.asarray(matrix)


def stratified_covariance(psu_totals: np.ndarray | sp.csr_matrix, structure: PSUStructure) -> np.ndarray:
    """``(k x k)`` covariance from ``(k x P)`` PSU totals of influence values.

    Dense totals are centred within strata before the cross-product (no loss
    of precision for nearly equal PSU totals); sparse ones use the expanded
    form so that absent PSUs stay zeros.
    """
    n_h = structure.n_psu.astype(np.float64)
    keep = 1.0 - structure.sampling_fraction
    keep = np.where(keep < 1e-7, 0.0, keep)
    lonely = structure.lonely
    with np.errstate(divide="ignore", invalid="ignore"):
        factor = np.where(lonely, 0.0, keep * n_h / (n_h - 1.0))
    indicator = structure.stratum_indicator()
    psu_factor = factor[structure.psu_stratum]
    if sp.issparse(psu_totals):
        sparse = sp.csr_matrix(psu_totals)
        s1 = _dense(sparse @ indicator)
        cross = _dense(sparse.multiply(psu_factor[None, :]) @ sparse.T)
        with np.errstate(divide="ignore", invalid="ignore"):
            scale = np.where(n_h > 0, factor / n_h, 0.0)
        cov = cross - (s1 * scale) @ s1.T
    else:
        totals = np.asarray(psu_totals, dtype=np.float64)
        s1 = _dense(totals @ indicator)
        with np.errstate(divide="ignore", invalid="ignore"):
            means = s1 / n_h
        deviations = totals - means[:, structure.psu_stratum]
        cov = (deviations * psu_factor[None, :]) @ deviations.T
    if structure.lonely_psu == "adjust" and lonely.any():
        lonely_psu = lonely[structure.psu_stratum]
        dense = _dense(psu_totals)[:, lonely_psu]
        cov = cov + (dense * keep[structure.psu_stratum][lonely_psu]) @ dense.T
    if structure.lonely_psu == "average" and lonely.any():
        n_ok = int((~lonely).sum())
        cov = cov * (structure.n_strata / n_ok) if n_ok else cov * np.nan
    return cov


@dataclass(frozen=True, eq=False)
class MatrixInfluence:
    """Explicit influence values ``z`` (n x k), with the statistic interface."""

    values: np.ndarray  # (n, k), weights already included

    @property
    def n_columns(self) -> int:
        return int(self.values.shape[1])

    column_den = None

    def influence_sums(
        self,
        weights: np.ndarray,
        theta: np.ndarray,
        group: np.ndarray,
        n_groups: int,
        multiplier: np.ndarray | None = None,
    ) -> np.ndarray:
        """Sums of :math:`z_{ic} m_i` by ``group``: shape (k, groups)."""
        z = self.values if multiplier is None else self.values * multiplier[:, None]
        return group_totals(z, group, n_groups).T


def psu_totals(design: SurveyDesign, stat: Any, theta: np.ndarray) -> np.ndarray | sp.csr_matrix:
    """PSU totals of a statistic's influence values, calibration residuals if calibrated."""
    s = design.structure
    w = design._weights
    totals = stat.influence_sums(w, theta, s.psu, s.n_psus)
    if design.calibration is not None:
        totals = design.calibration.adjust(stat, w, theta, totals, s.psu, s.n_psus)
    return totals


def stack_totals(parts: Sequence[np.ndarray | sp.csr_matrix]) -> np.ndarray | sp.csr_matrix:
    if any(sp.issparse(p) for p in parts):
        return sp.vstack([sp.csr_matrix(p) for p in parts]).tocsr()
    return np.vstack(cast("Sequence[np.ndarray]", parts))  # no part is sparse here


def design_covariance(
    design: SurveyDesign,
    *,
    theta: np.ndarray,
    totals: np.ndarray | sp.csr_matrix | None = None,
    replicates: np.ndarray | None = None,
    diagonal: bool = False,
) -> np.ndarray:
    """Covariance of estimates from PSU totals (Taylor) or replicate estimates.

    With ``diagonal``, the variances only (each estimate drops its own NaN replicates, as R's
    svyby).
    """
    r = design.replicates
    if r is None:
        assert totals is not None
        if diagonal:
            from unmetneed.design.taylor import stratified_variance

            return stratified_variance(totals, design.structure)
        return stratified_covariance(totals, design.structure)
    assert replicates is not None
    if diagonal:
        return replicate_variance(theta, replicates, r.scale, r.rscales, r.mse, by_estimate=True)
    reps = np.atleast_2d(replicates)
    valid = ~np.isnan(reps)
    if valid.all():
        return np.atleast_2d(replicate_variance(theta, reps, r.scale, r.rscales, r.mse, covariance=True))
    # A replicate with no rows in a domain is NaN for that domain only: each
    # pair uses the replicates valid for both, each estimate centred on its
    # own valid replicates, so the diagonal equals the variances of R's svyby
    # (R's covmat=TRUE drops such a replicate for every estimate instead).
    rs = np.asarray(r.rscales, dtype=np.float64)
    filled = np.where(valid, reps, 0.0)
    if r.mse:
        centre = np.asarray(theta, dtype=np.float64)
    else:
        use = valid & (rs > 0)[None, :]
        centre = np.where(use, filled, 0.0).sum(axis=1) / np.maximum(use.sum(axis=1), 1)
    dev = np.where(valid, filled - centre[:, None], 0.0)
    return r.scale * ((dev * rs[None, :]) @ dev.T)


def domain_degf(design: SurveyDesign, codes: np.ndarray, n_domains: int, active: np.ndarray) -> np.ndarray:
    """R's ``degf`` of each domain's subset design (rows with ``active`` set).

    Taylor: PSUs minus strata among the domain's rows with non-zero weight
    (R's ``degf.survey.design2`` on ``design[domain, ]``). Replicate: the
    rank of the domain's replicate weights minus one, as R's
    ``[.svyrep.design`` recomputes it.
    """
    r = design.replicates
    if r is None:
        s = design.structure
        inset = active & (design._weights != 0)
        d = codes[inset].astype(np.int64)
        counts = []
        for group, size in ((s.psu, s.n_psus), (s.stratum, s.n_strata)):
            key = d * size + group[inset]
            if n_domains * size <= 4 * max(key.size, 1) + (1 << 20):
                present = np.bincount(key, minlength=n_domains * size) > 0
                counts.append(present.reshape(n_domains, size).sum(axis=1))
            else:
                pairs = np.unique(key)
                counts.append(np.bincount(pairs // size, minlength=n_domains))
        return (counts[0] - counts[1]).astype(np.float64)
    out = np.empty(n_domains)
    # One rank per domain: each is O(rows x R) on the domain's rows only.
    order = np.argsort(codes[active], kind="stable")
    rows = np.flatnonzero(active)[order]
    bounds = np.searchsorted(codes[rows], np.arange(n_domains + 1))
    for d in range(n_domains):
        out[d] = replicate_degf(np.asarray(r.weights[rows[bounds[d] : bounds[d + 1]]]))
    return out


def group_totals(values: np.ndarray, codes: np.ndarray, n_codes: int) -> np.ndarray:
    """Column sums of ``values`` (n x k) by ``codes``: shape (n_codes, k)."""
    indicator = sp.csr_matrix(
        (np.ones(codes.size), (codes, np.arange(codes.size))), shape=(n_codes, codes.size)
    )
    return np.asarray(indicator @ values)
