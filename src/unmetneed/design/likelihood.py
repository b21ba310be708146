r"""Profile-likelihood intervals for proportions (R ``svyciprop(method = "likelihood")``).

R profiles the quasibinomial ``svyglm(y ~ 1)`` deviance: the signed root
:math:`z(\beta) = \operatorname{sign}(\beta - \hat\beta)\sqrt{(D(\beta) - D(\hat\beta))/\hat\phi}`,
with :math:`D` the deviance under the rescaled weights and :math:`\hat\phi`
the design-based variance (``svyvar``) of the Pearson residuals
:math:`(y_i - \hat\mu)/\sqrt{\hat\mu(1-\hat\mu)}` (``summary.svyglm``'s
dispersion; ``residuals.svyglm`` divides out the sampling weight), and solves :math:`z(\beta) = \pm t_{df}(1-\alpha/2)\sqrt{\lambda}`,
:math:`\lambda = V_{design}(\hat\beta) / V_{naive}(\hat\beta)` (Rao-Scott
scaling). R evaluates :math:`z` on a grid and interpolates an interpolating
spline, so its bounds are about ``1e-6`` from the exact root; here the root is
solved exactly (vectorised bisection on the logit scale to machine
precision). R returns NA on replicate designs; this raises.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from scipy import stats

from unmetneed.errors import DesignError

if TYPE_CHECKING:
    from unmetneed.design.proportion_intervals import ProportionProblem

__all__ = ["likelihood_bounds"]

BISECTION_STEPS = 200


def likelihood_bounds(
    problem: ProportionProblem, level: float, inside: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    from unmetneed.design.proportion_intervals import (
        _linkinv,
        _mu_eta,
        glm_weights,
        logit_coefficients,
    )

    design, domains, category, k = problem.design, problem.domains, problem.category, problem.k
    if design.replicates is not None:
        raise DesignError(
            "ci='likelihood' is not available on replicate designs (R's svyciprop returns "
            "NA there); use ci='logit', 'beta' or 'xlogit'"
        )
    inside = design._in_design if inside is None else inside
    beta, beta_var = logit_coefficients(problem, inside)
    mu = _linkinv(beta)
    codes = domains.codes
    w = design._weights
    n_levels = domains.n_levels
    wt, size = glm_weights(design, domains, inside)
    nonzero = np.bincount(codes[inside & (w != 0)], minlength=n_levels).astype(float)
    s1 = np.empty(n_levels * k)
    total = np.repeat(np.bincount(codes, weights=wt, minlength=n_levels), k)
    phi = np.empty(n_levels * k)
    for c in range(k):
        y = ((category == c) & inside).astype(np.float64)
        s1[c::k] = np.bincount(codes, weights=wt * y, minlength=n_levels)
        m = mu[c::k][codes]
        # residuals.svyglm(type = "pearson") divides out the sampling weight
        resid = (y - m) / np.sqrt(m * (1.0 - m))
        wi = np.where(inside, w, 0.0)
        rbar = np.bincount(codes, weights=wi * resid, minlength=n_levels) / size
        ss = np.bincount(codes, weights=wi * (resid - rbar[codes]) ** 2, minlength=n_levels)
        phi[c::k] = ss / size * nonzero / (nonzero - 1.0)
    s0 = total - s1
    naive = 1.0 / (total * _mu_eta(beta))
    lam = beta_var / naive
    t = stats.t.ppf(0.5 + level / 2.0, design.degf)
    target = phi * t**2 * lam  # D(beta) - D(hat beta) at the bounds

    def excess(b: np.ndarray) -> np.ndarray:
        m = _linkinv(b)
        with np.errstate(divide="ignore", invalid="ignore"):
            d = 2.0 * (
                np.where(s1 > 0, s1 * (np.log(mu) - np.log(m)), 0.0)
                + np.where(s0 > 0, s0 * (np.log1p(-mu) - np.log1p(-m)), 0.0)
            )
        return d - target

    def solve(outer: np.ndarray) -> np.ndarray:
        lo, hi = beta.copy(), outer.copy()
        for _ in range(BISECTION_STEPS):
            mid = 0.5 * (lo + hi)
            above = excess(mid) > 0
            hi = np.where(above, mid, hi)
            lo = np.where(above, lo, mid)
        return 0.5 * (lo + hi)

    lower = solve(beta - 40.0)
    upper = solve(beta + 40.0)
    return _linkinv(lower), _linkinv(upper)
