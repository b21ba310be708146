r"""Proportion intervals of :meth:`SurveyDesign.proportion(ci=...)`, as R's ``svyciprop``.

``"mean"``, ``"xlogit"``, ``"asin"`` and ``"beta"`` are closed forms (see
:mod:`unmetneed.design.proportion_ci`). ``"logit"`` is R's
``svyglm(y ~ 1, family = quasibinomial)`` Wald interval: an intercept-only
logistic fit whose iterations are R's ``glm.fit`` (start
:math:`\mu_i = (w_i y_i + 1/2)/(w_i + 1)` with weights rescaled to mean 1,
Fisher scoring until :math:`|D - D_{old}|/(|D| + 0.1) < 10^{-8}`), so the
coefficient is R's to rounding, not only to the convergence tolerance. For
one intercept each scoring step is the scalar update
:math:`\eta \leftarrow \eta + (\bar y_w - \mu)/(\mu(1-\mu))`; every
(domain, category) fit, and every replicate fit, runs at once.

Taylor designs: :math:`V(\hat\beta) = V(\hat p)/(\hat\mu(1-\hat\mu))^2`, the
sandwich of R's ``svy.varcoef`` for one intercept. Replicate designs: each
replicate refits from the full-sample coefficient (R's
``svyglm.svyrep.design``), and :math:`V(\hat\beta)` is the replicate
variance of those coefficients. Bounds are
:math:`\operatorname{expit}(\hat\beta + \hat{se}\; \Phi^{-1}(\Phi(t_{df}(\alpha/2))))`,
the exact arithmetic of R's ``confint.svyglm``.

``"likelihood"``: R interpolates a profile likelihood with a spline (about
``1e-6`` from the exact root) and returns NA on replicate designs; here the
root is found exactly (see :func:`likelihood_bounds`) and replicate designs
raise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from scipy import stats

from unmetneed.design.coding import Coding
from unmetneed.design.proportion_ci import transformed_interval
from unmetneed.design.replicate import replicate_variance
from unmetneed.design.statistics import RatioStatistic

if TYPE_CHECKING:
    from unmetneed.design.survey_design import SurveyDesign

__all__ = ["ProportionProblem", "logit_fit", "proportion_bounds"]

EPSILON = 1e-8  # glm.control()$epsilon
MAX_ITER = 25  # glm.control()$maxit
_THRESH = 30.0
_DBL_EPS = np.finfo(float).eps


@dataclass(frozen=True)
class ProportionProblem:
    """The proportions of one ``proportion(ci=...)`` call, in (domain, category) order.

    ``theta`` and ``variance`` have one value per (domain, category) pair;
    ``category`` is each row's category code (0 to ``k - 1``).
    """

    design: SurveyDesign
    stat: RatioStatistic
    theta: np.ndarray
    variance: np.ndarray
    domains: Coding
    category: np.ndarray
    k: int


def glm_weights(design: SurveyDesign, domains: Coding, inside: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """svyglm's rescaled weights (mean 1 over each domain's rows ``inside``) and each domain's weight sum."""
    codes = domains.codes
    w = design._weights
    rows = np.bincount(codes[inside], minlength=domains.n_levels).astype(float)
    size = np.bincount(codes[inside], weights=w[inside], minlength=domains.n_levels)
    scale = np.where(size > 0, rows / np.where(size > 0, size, 1.0), 0.0)
    return np.where(inside, w * scale[codes], 0.0), size


def _linkinv(eta: np.ndarray) -> np.ndarray:
    tmp = np.where(
        eta < -_THRESH,
        _DBL_EPS,
        np.where(eta > _THRESH, 1.0 / _DBL_EPS, np.exp(np.clip(eta, -_THRESH, _THRESH))),
    )
    return tmp / (1.0 + tmp)


def _mu_eta(eta: np.ndarray) -> np.ndarray:
    opexp = 1.0 + np.exp(np.clip(eta, -_THRESH, _THRESH))
    value = np.exp(np.clip(eta, -_THRESH, _THRESH)) / (opexp * opexp)
    return np.where((eta > _THRESH) | (eta < -_THRESH), _DBL_EPS, value)


def _deviance(s1: np.ndarray, s0: np.ndarray, mu: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return -2.0 * (np.where(s1 > 0, s1 * np.log(mu), 0.0) + np.where(s0 > 0, s0 * np.log1p(-mu), 0.0))


def logit_fit(
    s1: np.ndarray,
    total: np.ndarray,
    *,
    eta: np.ndarray,
    devold: np.ndarray,
    first: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """Coefficients of intercept-only logistic fits, iterated as R's ``glm.fit``.

    ``s1`` and ``total`` are each fit's weighted successes and weight total;
    ``eta`` the starting coefficient (ignored when ``first``, the sums
    :math:`\\sum w_i^2 z_i` and :math:`\\sum w_i^2` of a first step from
    row-wise starting values, is given), ``devold`` the starting deviance.
    """
    s0 = total - s1
    eta = np.array(eta, dtype=np.float64, copy=True)
    devold = np.array(devold, dtype=np.float64, copy=True)
    active = np.ones(eta.shape, dtype=bool)
    with np.errstate(divide="ignore", invalid="ignore"):
        for iteration in range(MAX_ITER):
            if iteration == 0 and first is not None:
                new = first[0] / first[1]
            else:
                mu = _linkinv(eta)
                new = eta + (s1 / total - mu) / _mu_eta(eta)
            dev = _deviance(s1, s0, _linkinv(new))
            eta = np.where(active, new, eta)
            converged = np.abs(dev - devold) / (np.abs(dev) + 0.1) < EPSILON
            devold = np.where(active, dev, devold)
            active &= ~converged
            if not active.any():
                break
    return eta


def _row_start(
    y: np.ndarray, wt: np.ndarray, fit: np.ndarray, n_fits: int
) -> tuple[tuple[np.ndarray, np.ndarray], np.ndarray]:
    """glm.fit's first step from binomial mustart, summed by fit."""
    mustart = (wt * y + 0.5) / (wt + 1.0)
    eta = np.log(mustart / (1.0 - mustart))
    mu = _linkinv(eta)
    mu_eta = _mu_eta(eta)
    varmu = mu * (1.0 - mu)
    z = eta + (y - mu) / mu_eta
    w2 = np.where(wt > 0, wt * mu_eta**2 / varmu, 0.0)
    sum_w2z = np.bincount(fit, weights=w2 * z, minlength=n_fits)
    sum_w2 = np.bincount(fit, weights=w2, minlength=n_fits)
    with np.errstate(divide="ignore"):
        dev_rows = np.where(y > 0, -2.0 * wt * np.log(mu), -2.0 * wt * np.log1p(-mu))
    devold = np.bincount(fit, weights=dev_rows, minlength=n_fits)
    return (sum_w2z, sum_w2), devold


def _wald_factor(level: float, df: float) -> tuple[float, float]:
    """R's confint.svyglm: qnorm of pnorm(qt(alpha/2, df)) (two tails)."""
    a = stats.norm.cdf(stats.t.ppf((1.0 - level) / 2.0, df))
    return float(stats.norm.ppf(a)), float(stats.norm.ppf(1.0 - a))


def proportion_bounds(
    problem: ProportionProblem,
    method: str,
    level: float,
    has_by: bool,
    keep: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Interval bounds for each (domain, category) proportion (``keep``: rows not missing)."""
    from unmetneed.design.variance import domain_degf

    design, domains, k = problem.design, problem.domains, problem.k
    theta, variance = problem.theta, problem.variance
    column_domain = np.repeat(np.arange(domains.n_levels), k)
    inside = design._in_design if keep is None else design._in_design & keep
    df = design.degf
    if method in ("mean", "xlogit", "asin", "beta"):
        # R's nrow(design) and degf(design): the (domain's) rows, missing or not
        whole = design._in_design
        rows = np.bincount(domains.codes[whole], minlength=domains.n_levels).astype(float)
        if has_by:
            rows_df = domain_degf(design, domains.codes, domains.n_levels, whole)
        else:
            rows_df = np.full(domains.n_levels, float(df))
        respondents = np.bincount(
            domains.codes[inside & (design._weights != 0)], minlength=domains.n_levels
        ).astype(float)
        return transformed_interval(
            theta,
            variance,
            method,
            level=level,
            df=df,
            rows=rows[column_domain],
            rows_df=rows_df[column_domain],
            respondents=respondents[column_domain],
        )
    if method == "likelihood":
        from unmetneed.design.likelihood import likelihood_bounds

        return likelihood_bounds(problem, level, inside)
    beta, beta_var = logit_coefficients(problem, inside)
    low, high = _wald_factor(level, df)
    se = np.sqrt(beta_var)
    return _expit(beta + se * low), _expit(beta + se * high)


def logit_coefficients(
    problem: ProportionProblem, inside: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """svyglm(I(cat == k) ~ 1, quasibinomial) per domain: coefficients and variances."""
    design, domains, category, k = problem.design, problem.domains, problem.category, problem.k
    n_fits = domains.n_levels * k
    inside = design._in_design if inside is None else inside
    codes = domains.codes
    wt, _ = glm_weights(design, domains, inside)
    total = np.repeat(np.bincount(codes, weights=wt, minlength=domains.n_levels), k)
    beta_rows = []
    sums = []
    devolds = []
    for c in range(k):
        y = ((category == c) & inside).astype(np.float64)
        first, devold = _row_start(y, wt, codes, domains.n_levels)
        sums.append(first)
        devolds.append(devold)
        beta_rows.append(np.bincount(codes, weights=wt * y, minlength=domains.n_levels))
    s1 = np.column_stack(beta_rows).ravel()
    first = (
        np.column_stack([f[0] for f in sums]).ravel(),
        np.column_stack([f[1] for f in sums]).ravel(),
    )
    devold = np.column_stack(devolds).ravel()
    beta = logit_fit(s1, total, eta=np.zeros(n_fits), devold=devold, first=first)
    r = design.replicates
    if r is None:
        return beta, problem.variance / _mu_eta(beta) ** 2
    # Replicate fits from the full-sample coefficient, weights normalised to sum 1.
    p_r = problem.stat.replicate_estimates(r.weights)  # (F, R)
    start = np.broadcast_to(beta[:, None], p_r.shape)
    with np.errstate(divide="ignore", invalid="ignore"):
        devold_r = -2.0 * (p_r * np.log(_linkinv(start)) + (1.0 - p_r) * np.log1p(-_linkinv(start)))
    betas = logit_fit(p_r, np.ones_like(p_r), eta=start, devold=devold_r)
    var = replicate_variance(beta, betas, r.scale, r.rscales, r.mse, by_estimate=True)
    return beta, var


def _expit(x: np.ndarray) -> np.ndarray:
    return np.exp(x) / (1.0 + np.exp(x))
