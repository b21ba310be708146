r"""Families of ratio estimators computed together, with their full covariance.

Several variables (``mean(["a", "b"], by=...)``), R's ``svyvar`` (the mean of
:math:`n/(n-1)\,(y_i - \hat{\bar y}_d)^2`), the indicator means behind
quantile intervals and the cell proportions behind Rao-Scott tests are all a
list of :class:`~unmetneed.design.statistics.RatioStatistic`, one per
variable, each with one column per domain. Their influence values are summed
by PSU (Taylor) or their replicate estimates computed (replicate designs);
the covariance of every pair of rows comes from the same sums.

Missing values (``na_rm=True``) follow R's ``na.rm=TRUE``: a row missing any
of the variables leaves every estimate of the call as if outside the domain
(numerator and denominator contributions zero); the design, its strata and
PSUs stay whole, so variances are domain variances.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from unmetneed.design.statistics import RatioStatistic
from unmetneed.design.variance import (
    design_covariance,
    psu_totals,
    stack_totals,
)

if TYPE_CHECKING:
    from unmetneed.design.survey_design import SurveyDesign

__all__ = ["RatioFamily", "estimate_family", "mean_statistics", "total_statistics"]


@dataclass(frozen=True, eq=False)
class RatioFamily:
    """Estimates, variances and a lazily computed covariance of stacked ratios."""

    theta: np.ndarray
    variance: np.ndarray
    covariance: Callable[[], np.ndarray]
    replicates: np.ndarray | None  # (k, R) replicate estimates, replicate designs only


def estimate_family(
    design: SurveyDesign, stats: Sequence[RatioStatistic], order: np.ndarray | None = None
) -> RatioFamily:
    """Stack the columns of ``stats`` (then reorder by ``order``) and estimate."""
    w = design._weights
    thetas = [s.estimate(w) for s in stats]
    theta = np.concatenate(thetas)
    perm = np.arange(theta.size) if order is None else np.asarray(order)
    theta = theta[perm]
    r = design.replicates
    if r is not None:
        reps = np.vstack([s.replicate_estimates(r.weights) for s in stats])[perm]
        variance = design_covariance(design, theta=theta, replicates=reps, diagonal=True)

        def covariance() -> np.ndarray:
            return design_covariance(design, theta=theta, replicates=reps)

        return RatioFamily(theta, variance, covariance, reps)
    totals = stack_totals([psu_totals(design, s, t) for s, t in zip(stats, thetas, strict=True)])
    totals = totals[perm]
    variance = design_covariance(design, theta=theta, totals=totals, diagonal=True)

    def covariance_taylor() -> np.ndarray:
        return design_covariance(design, theta=theta, totals=totals)

    return RatioFamily(theta, variance, covariance_taylor, None)


def mean_statistics(
    values: np.ndarray, keep: np.ndarray, codes: np.ndarray, n_domains: int
) -> list[RatioStatistic]:
    """One domain-mean statistic per column of ``values``; rows with ``keep`` False leave."""
    den = keep.astype(np.float64)
    return [
        RatioStatistic(
            num_column=codes,
            num=values[:, j] * den,
            n_columns=n_domains,
            den_column=codes,
            den=den,
            n_dens=n_domains,
            column_den=np.arange(n_domains),
        )
        for j in range(values.shape[1])
    ]


def total_statistics(
    values: np.ndarray, keep: np.ndarray, codes: np.ndarray, n_domains: int
) -> list[RatioStatistic]:
    """One domain-total statistic per column of ``values``."""
    den = keep.astype(np.float64)
    return [
        RatioStatistic(num_column=codes, num=values[:, j] * den, n_columns=n_domains)
        for j in range(values.shape[1])
    ]


def domain_major(n_domains: int, n_variables: int) -> np.ndarray:
    """Order (domain, variable) rows from variable-major stacked columns."""
    d, j = np.divmod(np.arange(n_domains * n_variables), n_variables)
    return j * n_domains + d


def expand_keys(levels: pd.DataFrame, variables: Sequence[str]) -> pd.DataFrame:
    """Domain levels repeated for each variable, with a ``variable`` column."""
    k = len(variables)
    keys = levels.loc[np.repeat(levels.index, k)].reset_index(drop=True)
    keys["variable"] = np.tile(np.asarray(variables, dtype=object), len(levels))
    return keys


def _svyvar_ratio(design: SurveyDesign, keep: np.ndarray, codes: np.ndarray, n_domains: int) -> np.ndarray:
    """:math:`n_d / (n_d - 1)` by domain, ``n_d`` as :func:`svyvar_values` counts it."""
    if design.replicates is None:
        rows = design._in_design & (design._weights != 0)
    else:
        rows = keep
    n = np.bincount(codes[rows], minlength=n_domains).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return n / (n - 1.0)


def svyvar_values(
    design: SurveyDesign, y: np.ndarray, keep: np.ndarray, codes: np.ndarray, n_domains: int
) -> np.ndarray:
    r"""R's ``svyvar`` as a mean: :math:`u_i = (y_i - \hat{\bar y}_d)^2\, n_d / (n_d - 1)`.

    ``n_d`` counts, as R's two methods do, the domain's rows with non-zero
    weight whether or not they miss ``y`` (Taylor: ``svyvar.survey.design``
    counts before ``na.rm``), or the domain's rows holding ``y`` (replicate
    designs).
    """
    w = design._weights * keep
    size = np.bincount(codes, weights=w, minlength=n_domains)
    with np.errstate(divide="ignore", invalid="ignore"):
        ybar = np.bincount(codes, weights=w * y, minlength=n_domains) / size
    return (y - ybar[codes]) ** 2 * _svyvar_ratio(design, keep, codes, n_domains)[codes]


def replicate_svyvar(
    design: SurveyDesign, y: np.ndarray, keep: np.ndarray, codes: np.ndarray, n_domains: int
) -> np.ndarray:
    """Replicate estimates of R's ``svyvar.svyrep.design`` (mean re-estimated per replicate)."""
    import scipy.sparse as sp

    r = design.replicates
    assert r is not None
    n_rows = np.bincount(codes[keep], minlength=n_domains).astype(np.float64)
    w = design._weights * keep
    size = np.bincount(codes, weights=w, minlength=n_domains)
    with np.errstate(divide="ignore", invalid="ignore"):
        centre = np.bincount(codes, weights=w * y, minlength=n_domains) / size
    # Shift by the full-sample domain mean: the variance is shift invariant and
    # the shifted moments lose no precision.
    yc = np.where(keep, y - centre[codes], 0.0)
    rows = np.arange(y.size)
    k = keep.astype(np.float64)
    ind = sp.csr_matrix((k, (codes, rows)), shape=(n_domains, y.size))
    s0 = np.asarray(ind @ r.weights)
    s1 = np.asarray(sp.csr_matrix((k * yc, (codes, rows)), shape=(n_domains, y.size)) @ r.weights)
    s2 = np.asarray(sp.csr_matrix((k * yc * yc, (codes, rows)), shape=(n_domains, y.size)) @ r.weights)
    with np.errstate(divide="ignore", invalid="ignore"):
        m1 = s1 / s0
        out = (s2 / s0 - m1 * m1) * (n_rows / (n_rows - 1.0))[:, None]
    return out


def svyvar_products(
    design: SurveyDesign, values: np.ndarray, keep: np.ndarray, codes: np.ndarray, n_domains: int
) -> np.ndarray:
    r"""R's ``svyvar(~a + b + ...)`` as means: one column per matrix entry.

    Column ``j * p + k`` holds
    :math:`u_{ijk} = (y_{ij} - \hat{\bar y}_{dj})(y_{ik} - \hat{\bar y}_{dk})\, n_d/(n_d - 1)`
    (the domain means held fixed, as ``svyvar.survey.design``); ``n_d`` as
    in :func:`svyvar_values`. With one column this is :func:`svyvar_values`.
    """
    w = design._weights * keep
    size = np.bincount(codes, weights=w, minlength=n_domains)
    p = values.shape[1]
    centred = np.empty_like(values)
    for j in range(p):
        with np.errstate(divide="ignore", invalid="ignore"):
            ybar = np.bincount(codes, weights=w * values[:, j], minlength=n_domains) / size
        centred[:, j] = values[:, j] - ybar[codes]
    ratio = _svyvar_ratio(design, keep, codes, n_domains)[codes]
    out = np.empty((values.shape[0], p * p))
    for j in range(p):
        for k in range(p):
            out[:, j * p + k] = centred[:, j] * centred[:, k] * ratio
    return out


def replicate_svyvar_products(
    design: SurveyDesign, values: np.ndarray, keep: np.ndarray, codes: np.ndarray, n_domains: int
) -> np.ndarray:
    """Replicate estimates of ``svyvar.svyrep.design`` for a p x p matrix.

    Rows are entry-major (entry ``j * p + k`` slowest, domain fastest), as the
    stacked statistics of :func:`svyvar_products`; means re-estimated in every
    replicate, ``n_d`` the domain's rows holding every variable.
    """
    import scipy.sparse as sp

    r = design.replicates
    assert r is not None
    p = values.shape[1]
    n_rows = np.bincount(codes[keep], minlength=n_domains).astype(np.float64)
    w = design._weights * keep
    size = np.bincount(codes, weights=w, minlength=n_domains)
    k_ = keep.astype(np.float64)
    rows = np.arange(values.shape[0])
    shape = (n_domains, values.shape[0])

    def summed(x: np.ndarray) -> np.ndarray:
        return np.asarray(sp.csr_matrix((k_ * x, (codes, rows)), shape=shape) @ r.weights)

    # Shift by the full-sample domain means (shift invariant, no loss of precision).
    centred = np.empty_like(values)
    for j in range(p):
        with np.errstate(divide="ignore", invalid="ignore"):
            centre = np.bincount(codes, weights=w * values[:, j], minlength=n_domains) / size
        centred[:, j] = np.where(keep, values[:, j] - centre[codes], 0.0)
    s0 = summed(np.ones(values.shape[0]))
    with np.errstate(divide="ignore", invalid="ignore"):
        m1 = [summed(centred[:, j]) / s0 for j in range(p)]
        factor = (n_rows / (n_rows - 1.0))[:, None]
        blocks = [
            (summed(centred[:, j] * centred[:, k]) / s0 - m1[j] * m1[k]) * factor
            for j in range(p)
            for k in range(p)
        ]
    return np.vstack(blocks)


def expand_pair_keys(levels: pd.DataFrame, variables: Sequence[str]) -> pd.DataFrame:
    """Domain levels repeated for each (variable, variable2) entry, row by row."""
    p = len(variables)
    keys = levels.loc[np.repeat(levels.index, p * p)].reset_index(drop=True)
    names = np.asarray(variables, dtype=object)
    keys["variable"] = np.tile(np.repeat(names, p), len(levels))
    keys["variable2"] = np.tile(np.tile(names, p), len(levels))
    return keys
