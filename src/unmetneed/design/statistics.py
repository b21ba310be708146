r"""Estimators as ratios of weighted totals, with their influence values.

Every design-based estimator here is a ratio of two weighted domain totals,

.. math::

    \hat\theta_c = \frac{\hat U_c}{\hat V_{m(c)}}, \qquad
    \hat U_c = \sum_i w_i u_i [a_i = c], \quad
    \hat V_m = \sum_i w_i v_i [b_i = m],

and a total has no denominator. A domain mean has :math:`u = y`, :math:`v = 1`
and the domain as both :math:`a` and :math:`b`; a ratio has :math:`v = x`; a
proportion of category :math:`k` in domain :math:`d` has column
:math:`c = (d, k)`, :math:`u = [\text{category} = k]` and :math:`m(c) = d`.
The linearised influence value of row :math:`i` for column :math:`c` is

.. math::

    z_{ic} = w_i \frac{u_i [a_i = c] - \hat\theta_c\, v_i [b_i = m(c)]}{\hat V_{m(c)}},

which is zero outside the domain, so the domain variance comes from the whole
design (Lumley 2010, sec. 2.3.1 and 3.3; Wolter 2007, ch. 6). Group sums of
:math:`z` (by PSU, or by calibration cell) need only two ``bincount`` calls.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import numpy as np
import scipy.sparse as sp

from unmetneed.design.taylor import group_sums

__all__ = ["RatioStatistic"]


@dataclass(frozen=True, eq=False)
class RatioStatistic:
    """Numerator and denominator codes and values of a family of ratios."""

    num_column: np.ndarray  # (n,) column of each row's numerator contribution
    num: np.ndarray  # (n,) u
    n_columns: int
    den_column: np.ndarray | None = None  # (n,) denominator of each row
    den: np.ndarray | None = None  # (n,) v
    n_dens: int = 0
    column_den: np.ndarray | None = None  # (k,) denominator index of each column

    @property
    def is_total(self) -> bool:
        return self.den is None

    def _ratio(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``den_column``, ``den`` and ``column_den`` of a ratio (not a total)."""
        # Every RatioStatistic(...) built with den= also passes den_column= and
        # column_den= (a total has no den, though it may carry column_den).
        return (
            cast("np.ndarray", self.den_column),
            cast("np.ndarray", self.den),
            cast("np.ndarray", self.column_den),
        )

    def totals(self, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Weighted numerator totals per column and denominator totals per domain."""
        u = np.bincount(self.num_column, weights=weights * self.num, minlength=self.n_columns)
        if self.is_total:
            return u, None
        den_column, den, _ = self._ratio()
        v = np.bincount(den_column, weights=weights * den, minlength=self.n_dens)
        return u, v

    def estimate(self, weights: np.ndarray) -> np.ndarray:
        u, v = self.totals(weights)
        if v is None:
            return u
        with np.errstate(divide="ignore", invalid="ignore"):
            return u / v[self._ratio()[2]]

    def replicate_estimates(self, replicate_weights: np.ndarray) -> np.ndarray:
        """Estimates under each column of an (n x R) weight matrix: shape (k, R)."""
        n = self.num.size
        rows = np.arange(n)
        numerator = sp.csr_matrix((self.num, (self.num_column, rows)), shape=(self.n_columns, n))
        u = np.asarray(numerator @ replicate_weights)
        if self.is_total:
            return u
        den_column, den, column_den = self._ratio()
        denominator = sp.csr_matrix((den, (den_column, rows)), shape=(self.n_dens, n))
        v = np.asarray(denominator @ replicate_weights)
        with np.errstate(divide="ignore", invalid="ignore"):
            return u / v[column_den]

    def influence_sums(
        self,
        weights: np.ndarray,
        theta: np.ndarray,
        group: np.ndarray,
        n_groups: int,
        multiplier: np.ndarray | None = None,
    ) -> np.ndarray | sp.csr_matrix:
        """Sums of the influence values :math:`z_{ic} m_i` by ``group``: shape (k, groups).

        ``multiplier`` (:math:`m_i`, default 1) lets calibration adjustments sum
        :math:`z_i / g_i` or :math:`z_i x_i` without forming :math:`z`.
        """
        row = weights if multiplier is None else weights * multiplier
        u_sums = group_sums(self.num_column, row * self.num, self.n_columns, group, n_groups)
        if self.is_total:
            return u_sums
        den_column, den, column_den = self._ratio()
        v_sums = group_sums(den_column, row * den, self.n_dens, group, n_groups)
        _, v = self.totals(weights)
        assert v is not None  # a ratio (not a total) has denominator totals
        with np.errstate(divide="ignore", invalid="ignore"):
            scale = 1.0 / v[column_den]
        if sp.issparse(u_sums):
            expanded = sp.csr_matrix(v_sums)[column_den]
            z = u_sums - sp.diags(theta) @ expanded
            return (sp.diags(scale) @ z).tocsr()
        return (u_sums - theta[:, None] * v_sums[column_den]) * scale[:, None]
