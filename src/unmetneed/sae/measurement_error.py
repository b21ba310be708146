r"""The Fay-Herriot model with a covariate measured with error (Ybarra & Lohr, 2008).

A covariate that is itself an estimate (a survey ratio, an administrative count
divided by an estimated population) carries sampling error of its own. Used as
if it were exact, the EBLUP puts too little weight on the direct estimate where
the covariate is noisy and its MSE leaves that noise out, so intervals cover
less than they say. Ybarra and Lohr's predictor keeps both in view.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import optimize, stats

from unmetneed._validate import check_level
from unmetneed.errors import ModelError

__all__ = ["MeasurementErrorFit", "fit_measurement_error"]


@dataclass(frozen=True)
class MeasurementErrorFit:
    """A fitted measurement-error Fay-Herriot model; arrays are read-only.

    Attributes
    ----------
    beta : ndarray (p,)
        Regression coefficients.
    vcov_beta : ndarray (p, p)
        Their covariance (model-based, at the fitted variances).
    sigma2 : float
        Variance of the area effects (0 when the moment equation has no
        positive root).
    gamma : ndarray (m,)
        Weight of each area's direct estimate, :math:`\\tilde\\gamma_a`.
    estimate, mse : ndarray (m,)
        The predictor and its MSE estimate.
    synthetic : ndarray (m,)
        The regression part :math:`\\hat x_a^\\top\\hat\\beta`.
    iterations : int
        Iterations of the (beta, sigma2) fixed point.
    """

    beta: NDArray[np.float64]
    vcov_beta: NDArray[np.float64]
    sigma2: float
    gamma: NDArray[np.float64]
    estimate: NDArray[np.float64]
    mse: NDArray[np.float64]
    synthetic: NDArray[np.float64]
    iterations: int

    def __post_init__(self) -> None:
        for name in ("beta", "vcov_beta", "gamma", "estimate", "mse", "synthetic"):
            value = np.array(getattr(self, name), dtype=float)
            value.setflags(write=False)
            object.__setattr__(self, name, value)

    def interval(self, level: float = 0.9) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Normal intervals ``estimate -/+ z * sqrt(mse)``."""
        level = check_level(level)
        half = float(stats.norm.ppf(0.5 + level / 2.0)) * np.sqrt(self.mse)
        return self.estimate - half, self.estimate + half


def fit_measurement_error(
    direct: ArrayLike,
    variance: ArrayLike,
    X: ArrayLike,
    covariate_variance: ArrayLike,
    *,
    tol: float = 1e-10,
    max_iter: int = 200,
) -> MeasurementErrorFit:
    r"""Fit the Fay-Herriot model whose covariates are estimated (Ybarra & Lohr, 2008).

    Model: :math:`\hat y_a = \theta_a + e_a`, :math:`\theta_a = x_a^\top\beta
    + u_a`, :math:`\hat x_a = x_a + \eta_a` with :math:`e_a \sim (0,\psi_a)`,
    :math:`u_a \sim (0, \sigma^2)`, :math:`\eta_a \sim (0, C_a)`, independent.
    The predictor

    .. math::
        \tilde\theta_a = \tilde\gamma_a \hat y_a + (1 - \tilde\gamma_a)\hat x_a^\top\hat\beta,
        \qquad \tilde\gamma_a = \frac{\sigma^2 + \beta^\top C_a\beta}
                                     {\sigma^2 + \beta^\top C_a\beta + \psi_a}

    has MSE :math:`\tilde\gamma_a\psi_a` when :math:`\beta, \sigma^2` are
    known; the estimate adds :math:`(1-\tilde\gamma_a)^2 \hat x_a^\top
    V(\hat\beta)\hat x_a` for the estimated coefficients. :math:`\hat\beta` is
    the weighted, error-corrected least-squares solution
    :math:`[\sum_a w_a(\hat x_a\hat x_a^\top - C_a)]^{-1}\sum_a w_a\hat x_a\hat
    y_a` with :math:`w_a = 1/(\sigma^2 + \beta^\top C_a\beta + \psi_a)`, and
    :math:`\sigma^2` solves Fay and Herriot's moment equation :math:`\sum_a
    w_a(\hat y_a - \hat x_a^\top\hat\beta)^2 = m - p` (0 when it has no
    positive root), the two iterated to a fixed point. With every
    :math:`C_a = 0` this is the Fay-Herriot EBLUP with the Fay-Herriot
    moment estimator of :math:`\sigma^2`.

    Parameters
    ----------
    direct, variance : array_like (m,)
        Direct estimates :math:`\hat y_a` and their sampling variances
        :math:`\psi_a > 0`.
    X : array_like (m, p)
        Covariates, estimated ones included (an intercept column if wanted).
    covariate_variance : array_like (m, p, p) or (m, p)
        :math:`C_a`: the covariance of each area's covariate errors, or its
        diagonal; zero for covariates known exactly.
    tol, max_iter : float, int
        Convergence of the fixed point (relative change of beta and sigma2).

    Returns
    -------
    MeasurementErrorFit

    Raises
    ------
    ModelError
        Shapes disagree, a value is not finite, a variance is not positive
        (or a covariate variance negative), fewer areas than coefficients + 1,
        the corrected cross-product matrix is not positive definite (the
        covariate errors swamp the covariates), or no convergence.

    References
    ----------
    Ybarra, L. M. R. & Lohr, S. L. (2008). Small area estimation when auxiliary
    information is measured with error. *Biometrika* 95(4), 919-931.
    Fay, R. E. & Herriot, R. A. (1979). *JASA* 74, 269-277.

    Examples
    --------
    >>> import numpy as np
    >>> from unmetneed.sae import fit_measurement_error
    >>> rng = np.random.default_rng(1)
    >>> x = rng.uniform(0, 1, 60)
    >>> C = np.full(60, 0.01)                       # the covariate's error variance
    >>> x_hat = x + rng.normal(0, 0.1, 60)
    >>> psi = np.full(60, 0.04)
    >>> y = 1 + 2 * x + rng.normal(0, 0.2, 60) + rng.normal(0, 0.2, 60)
    >>> X = np.column_stack([np.ones(60), x_hat])
    >>> Cm = np.stack([np.zeros(60), C], axis=1)    # diagonal: intercept exact
    >>> fit = fit_measurement_error(y, psi, X, Cm)
    >>> bool(0 < fit.gamma.min() and fit.gamma.max() < 1)
    True
    """
    y = np.asarray(direct, dtype=float)
    psi = np.asarray(variance, dtype=float)
    Xm = np.asarray(X, dtype=float)
    C = np.asarray(covariate_variance, dtype=float)
    m = y.shape[0] if y.ndim == 1 else -1
    if y.ndim != 1 or psi.shape != y.shape or Xm.ndim != 2 or Xm.shape[0] != m:
        raise ModelError(
            f"direct and variance must be vectors of one length and X an (areas, p) matrix; got "
            f"{y.shape}, {psi.shape}, {Xm.shape}"
        )
    p = Xm.shape[1]
    if C.shape == (m, p):
        C = np.einsum("ap,pq->apq", C, np.eye(p))
    if C.shape != (m, p, p):
        raise ModelError(
            f"covariate_variance must be (areas, p) or (areas, p, p) = ({m}, {p}[, {p}]); got {C.shape}"
        )
    for name, value in (("direct", y), ("variance", psi), ("X", Xm), ("covariate_variance", C)):
        if not np.isfinite(value).all():
            raise ModelError(f"{name} has values that are not finite")
    if (psi <= 0).any():
        raise ModelError(f"sampling variances must be > 0; {int((psi <= 0).sum())} are not")
    if (np.einsum("app->ap", C) < 0).any():
        raise ModelError("covariate variances must be >= 0")
    if m <= p:
        raise ModelError(f"{m} areas cannot estimate {p} coefficients and a variance")

    xx = np.einsum("ap,aq->apq", Xm, Xm) - C  # corrected cross-products, area by area

    def solve_beta(
        w: NDArray[np.float64], corrected: bool = True
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        A = np.einsum("a,apq->pq", w, xx if corrected else xx + C)
        try:
            chol = np.linalg.cholesky(A)
        except np.linalg.LinAlgError:
            raise ModelError(
                "the error-corrected covariate cross-products are not positive definite: the "
                "covariates' measurement error is as large as their spread between areas"
            ) from None
        beta = np.linalg.solve(chol.T, np.linalg.solve(chol, Xm.T @ (w * y)))
        return beta, A

    def total_variance(beta: NDArray[np.float64], sigma2: float) -> NDArray[np.float64]:
        return sigma2 + np.einsum("p,apq,q->a", beta, C, beta) + psi

    def moment(sigma2: float, bcb_psi: NDArray[np.float64], r2: NDArray[np.float64]) -> float:
        return float(np.sum(r2 / (sigma2 + bcb_psi)) - (m - p))

    # start: least squares ignoring the covariates' error, so that the first corrected step
    # already gives little weight to areas whose covariates are noisy
    sigma2 = float(max(np.var(y) - psi.mean(), 0.0))
    beta, A = solve_beta(1.0 / (sigma2 + psi), corrected=False)
    for iteration in range(1, max_iter + 1):
        beta_new, A = solve_beta(1.0 / total_variance(beta, sigma2))
        # the moment equation in sigma2 at beta_new: beta'C beta + psi and the residuals are fixed
        args = (total_variance(beta_new, 0.0), (y - Xm @ beta_new) ** 2)
        if moment(0.0, *args) <= 0.0:
            sigma2_new = 0.0
        else:
            upper = max(sigma2, 1e-12) * 2.0 + float(np.var(y))
            while moment(upper, *args) > 0.0:
                upper *= 2.0
            sigma2_new = float(optimize.brentq(moment, 0.0, upper, args=args, xtol=1e-14))
        change = np.max(np.abs(beta_new - beta)) / (1.0 + np.max(np.abs(beta)))
        change = max(change, abs(sigma2_new - sigma2) / (1.0 + sigma2))
        beta, sigma2 = beta_new, sigma2_new
        if change < tol:
            break
    else:
        raise ModelError(f"the measurement-error Fay-Herriot fit did not converge in {max_iter} iterations")

    tv = total_variance(beta, sigma2)
    w = 1.0 / tv
    beta, A = solve_beta(w)
    A_inv = np.linalg.inv(A)
    vcov = A_inv @ (Xm.T @ (w[:, None] * Xm)) @ A_inv
    gamma = (tv - psi) / tv
    synthetic = Xm @ beta
    estimate = gamma * y + (1.0 - gamma) * synthetic
    mse = gamma * psi + (1.0 - gamma) ** 2 * np.einsum("ap,pq,aq->a", Xm, vcov, Xm)
    return MeasurementErrorFit(
        beta=beta,
        vcov_beta=vcov,
        sigma2=sigma2,
        gamma=gamma,
        estimate=estimate,
        mse=mse,
        synthetic=synthetic,
        iterations=iteration,
    )
