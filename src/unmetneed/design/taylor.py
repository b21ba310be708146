r"""Taylor-linearisation variance for stratified multistage designs.

The first stage is treated as sampled with replacement (R ``survey``'s
default, the "ultimate cluster" estimator), or without replacement when an fpc
is given. For an estimator with influence values :math:`z_i`, let
:math:`z_{hj}` be the total of :math:`z_i` over PSU :math:`j` of stratum
:math:`h`, which has :math:`n_h` sampled PSUs out of :math:`N_h`. Then

.. math::

    \hat V = \sum_h (1 - f_h) \frac{n_h}{n_h - 1}
             \sum_{j=1}^{n_h} (z_{hj} - \bar z_h)^2, \qquad f_h = n_h / N_h .

PSU totals of a domain are zero for the domain's absent PSUs, so domain
variances come from the full design (Lumley 2010, sec. 2.3.1). Lonely PSUs
(:math:`n_h = 1`) follow R's ``survey.lonely.psu`` rules exactly (see
:func:`stratified_variance`).

References
----------
Wolter, K. M. (2007). *Introduction to Variance Estimation*, 2nd ed. Springer.
Lumley, T. (2010). *Complex Surveys: A Guide to Analysis Using R*. Wiley.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from unmetneed._immutable import readonly
from unmetneed.design.options import LonelyPSU

__all__ = ["PSUStructure", "group_sums", "stratified_variance"]

# Above this many cells a (columns x groups) table is built sparse, not dense.
DENSE_CELL_LIMIT = 1 << 23


@dataclass(frozen=True, eq=False)
class PSUStructure:
    """The first-stage sampling structure of a design, integer coded.

    Attributes
    ----------
    stratum : ndarray of int, shape (n,)
        Stratum code of each row (0 for an unstratified design).
    psu : ndarray of int, shape (n,)
        PSU code of each row, numbered in order of first appearance.
    psu_stratum : ndarray of int, shape (P,)
        Stratum code of each PSU.
    n_psu : ndarray of int, shape (H,)
        Sampled PSUs per stratum.
    popsize : ndarray of float, shape (H,)
        Population PSUs per stratum (``inf`` when there is no fpc).
    lonely_psu : str
        R's ``survey.lonely.psu`` policy.
    stratum_labels : tuple
        The stratum labels, in code order (empty for an unstratified design).
    """

    stratum: np.ndarray
    psu: np.ndarray
    psu_stratum: np.ndarray
    n_psu: np.ndarray
    popsize: np.ndarray
    lonely_psu: LonelyPSU
    stratum_labels: tuple[object, ...] = ()

    def __post_init__(self) -> None:
        # Read-only, as the design that holds the structure.
        for name in ("stratum", "psu", "psu_stratum", "n_psu", "popsize"):
            object.__setattr__(self, name, readonly(getattr(self, name), copy=False))

    @property
    def n_strata(self) -> int:
        return self.n_psu.size

    @property
    def n_psus(self) -> int:
        return self.psu_stratum.size

    @property
    def sampling_fraction(self) -> np.ndarray:
        """:math:`f_h = n_h / N_h` (0 without fpc)."""
        return np.where(np.isinf(self.popsize), 0.0, self.n_psu / self.popsize)

    @property
    def lonely(self) -> np.ndarray:
        """Strata with a single sampled PSU."""
        return self.n_psu == 1

    def stratum_indicator(self) -> sp.csr_matrix:
        """Sparse (P x H) matrix mapping PSUs to their strata."""
        ones = np.ones(self.n_psus)
        shape = (self.n_psus, self.n_strata)
        return sp.csr_matrix((ones, (np.arange(self.n_psus), self.psu_stratum)), shape=shape)


def group_sums(
    column: np.ndarray, values: np.ndarray, n_columns: int, group: np.ndarray, n_groups: int
) -> np.ndarray | sp.csr_matrix:
    """Sum ``values`` into a (columns x groups) table by two integer codes.

    Dense (one ``bincount``) when the table is small enough, sparse otherwise.
    """
    cells = n_columns * n_groups
    if cells <= DENSE_CELL_LIMIT:
        key = column * n_groups + group
        return np.bincount(key, weights=values, minlength=cells).reshape(n_columns, n_groups)
    table = sp.coo_matrix((values, (column, group)), shape=(n_columns, n_groups))
    return table.tocsr()


def _as_dense(matrix: np.ndarray | sp.csr_matrix) -> np.ndarray:
    return matrix.toarray() if sp.issparse(matrix) else np.asarray(matrix)


def stratified_variance(
    psu_totals: np.ndarray | sp.csr_matrix,
    structure: PSUStructure,
    present: np.ndarray | None = None,
) -> np.ndarray:
    """Variance of each column from its PSU totals, as R's ``svyrecvar``.

    Parameters
    ----------
    psu_totals : array or sparse matrix, shape (k, P)
        Totals of the influence values of ``k`` estimates over the ``P`` PSUs.
    structure : PSUStructure
        Strata, PSU counts and fpc of the design.
    present : ndarray of bool, shape (k, H), optional
        Whether each estimate's domain has rows in each stratum. Only the
        ``"average"`` policy uses it (R counts the strata a domain touches);
        ``None`` means every stratum.

    Returns
    -------
    ndarray, shape (k,)

    Notes
    -----
    Strata with :math:`f_h \\ge 1 - 10^{-7}` (a census) contribute zero. A
    stratum with one PSU contributes zero under ``"certainty"`` and
    ``"remove"``; :math:`(1-f_h) z_{h1}^2` (deviation from zero, the
    population mean of the influence values) under ``"adjust"``; and under
    ``"average"`` it is left out and the sum is scaled by the number of strata
    over the number of strata with more than one PSU, as R does.
    """
    indicator = structure.stratum_indicator()
    totals = psu_totals
    n_h = structure.n_psu.astype(np.float64)
    s1 = _as_dense(totals @ indicator)
    if sp.issparse(totals):
        # Absent PSUs are zeros: expand the square instead of densifying.
        s2 = _as_dense(totals.multiply(totals) @ indicator)
        centred = s2 - s1 * s1 / n_h
    else:
        # Centre exactly, so nearly equal PSU totals lose no precision.
        deviations = totals - (s1 / n_h)[:, structure.psu_stratum]
        centred = (deviations * deviations) @ indicator
        s2 = (totals * totals) @ indicator
    keep = 1.0 - structure.sampling_fraction
    keep = np.where(keep < 1e-7, 0.0, keep)  # R: all(f < 1e-7) -> zero variance
    lonely = structure.lonely
    with np.errstate(divide="ignore", invalid="ignore"):
        per_stratum = np.where(lonely, 0.0, keep * n_h / (n_h - 1.0) * centred)
    if structure.lonely_psu == "adjust":
        per_stratum = per_stratum + np.where(lonely, keep * s2, 0.0)
    variance = per_stratum.sum(axis=1)
    if structure.lonely_psu == "average" and lonely.any():
        touched = np.ones_like(s1, dtype=bool) if present is None else present
        n_strata = touched.sum(axis=1)
        n_ok = (touched & ~lonely).sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            variance = np.where(n_ok > 0, variance * n_strata / n_ok, np.nan)
    return np.maximum(variance, 0.0)
