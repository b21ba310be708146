r"""Laplace approximation for a binomial GLMM with crossed random intercepts.

Data are cells :math:`c` with :math:`k_c` successes out of :math:`n_c` trials,
fixed-effect row :math:`x_c` and one level :math:`j_g(c)` per grouping factor
:math:`g`. With spherical random effects :math:`u_g \sim N(0, I)` and
:math:`b_g = \theta_g u_g` (so :math:`\theta_g` is the standard deviation),

.. math::

    \eta_c = x_c^\top\beta + \sum_g \theta_g u_{g, j_g(c)}, \qquad
    \mu_c = \operatorname{logit}^{-1}(\eta_c).

Penalised iteratively reweighted least squares (PIRLS) finds the conditional
mode :math:`\tilde u` of :math:`-2\ell(u) + \|u\|^2`, and the Laplace
approximation to the deviance is

.. math::

    D(\theta, \beta) = -2\ell(\tilde u, \beta, \theta) + \|\tilde u\|^2
        + \log\lvert \Lambda Z^\top W Z \Lambda + I\rvert,

the objective of ``lme4::glmer(nAGQ = 1)`` (Bates et al. 2015).
:math:`Z^\top W Z` is a cross-tabulation of :math:`W = n\mu(1-\mu)` per pair of
factors (``bincount``), so only the :math:`q \times q` matrix is dense, never
:math:`n \times q`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import linalg
from scipy.special import expit

__all__ = ["CellData", "LaplaceProblem", "PirlsResult"]


@dataclass(frozen=True, eq=False)
class CellData:
    """A model's data collapsed to cells."""

    X: np.ndarray  # (C, p)
    codes: tuple[np.ndarray, ...]  # per factor (C,)
    n_levels: tuple[int, ...]
    successes: np.ndarray  # (C,)
    trials: np.ndarray  # (C,)

    @property
    def offsets(self) -> np.ndarray:
        return np.concatenate([[0], np.cumsum(self.n_levels)])

    @property
    def q(self) -> int:
        return int(sum(self.n_levels))

    @property
    def p(self) -> int:
        return self.X.shape[1]


@dataclass(eq=False)
class PirlsResult:
    u: np.ndarray
    beta: np.ndarray
    eta: np.ndarray
    mu: np.ndarray
    loglik: float  # conditional log-likelihood (no binomial coefficients)
    logdet: float  # log|H| of the random-effect block
    chol: np.ndarray  # Cholesky factor (lower) of the system that was solved
    converged: bool
    iterations: int
    extra: dict = field(default_factory=dict)

    @property
    def deviance(self) -> float:
        return -2.0 * self.loglik + float(self.u @ self.u) + self.logdet


class LaplaceProblem:
    """Evaluate the Laplace deviance and its pieces for given parameters."""

    def __init__(self, data: CellData) -> None:
        self.data = data
        self._offsets = data.offsets
        self._pairs = [
            (a, b) for a in range(len(data.codes)) for b in range(a + 1)
        ]
        # Global column index of each cell's level for every factor.
        self._index = [data.codes[g] + self._offsets[g] for g in range(len(data.codes))]

    # -- building blocks ----------------------------------------------------------
    def _lambda(self, theta: np.ndarray) -> np.ndarray:
        return np.repeat(theta, self.data.n_levels)

    def linear_predictor(self, beta: np.ndarray, theta: np.ndarray, u: np.ndarray) -> np.ndarray:
        b = self._lambda(theta) * u
        eta = self.data.X @ beta
        for index in self._index:
            eta = eta + b[index]
        return eta

    def _loglik(self, eta: np.ndarray) -> float:
        d = self.data
        return float(np.sum(d.successes * eta - d.trials * np.logaddexp(0.0, eta)))

    def _zt(self, values: np.ndarray) -> np.ndarray:
        """:math:`Z^\\top v`: sums of a cell vector by each factor's levels."""
        d = self.data
        return np.concatenate(
            [np.bincount(c, weights=values, minlength=k) for c, k in zip(d.codes, d.n_levels, strict=True)]
        )

    def _ztwz(self, w: np.ndarray) -> np.ndarray:
        d = self.data
        q = d.q
        out = np.zeros((q, q))
        for a, b in self._pairs:
            ka, kb = d.n_levels[a], d.n_levels[b]
            block = np.bincount(d.codes[a] * kb + d.codes[b], weights=w, minlength=ka * kb).reshape(ka, kb)
            oa, ob = self._offsets[a], self._offsets[b]
            out[oa:oa + ka, ob:ob + kb] = block
            if a != b:
                out[ob:ob + kb, oa:oa + ka] = block.T
        return out

    # -- PIRLS for u (beta fixed) or (u, beta) jointly ----------------------------------
    def pirls(
        self,
        theta: np.ndarray,
        beta: np.ndarray,
        u0: np.ndarray | None = None,
        *,
        joint: bool = False,
        full: bool = False,
        tol: float = 1e-14,
        max_iter: int = 60,
    ) -> PirlsResult:
        """Conditional modes; with ``joint=True`` also the fixed effects (lme4's nAGQ=0 step).

        ``full=True`` also factors the joint (u, beta) Hessian at the end
        (for the conditional covariance of the fixed effects and for draws).
        """
        d = self.data
        q, p = d.q, d.p
        lam = self._lambda(theta)
        u = np.zeros(q) if u0 is None else u0.copy()
        beta = beta.copy()
        eta = self.linear_predictor(beta, theta, u)
        pdev = -2.0 * self._loglik(eta) + u @ u
        converged = False
        iteration = 0
        chol = np.eye(q)
        for iteration in range(1, max_iter + 1):
            hessian, gradient = self.system(theta, eta, u, joint=joint)
            chol = linalg.cholesky(hessian, lower=True, check_finite=False)
            step = linalg.cho_solve((chol, True), gradient, check_finite=False)
            decrement = float(gradient @ step)
            # Step halving on the penalised deviance.
            t = 1.0
            while True:
                u_new = u + t * step[:q]
                beta_new = beta + t * step[q:] if joint else beta
                eta_new = self.linear_predictor(beta_new, theta, u_new)
                pdev_new = -2.0 * self._loglik(eta_new) + u_new @ u_new
                if pdev_new <= pdev + 1e-12 * abs(pdev) or t < 1e-8:
                    break
                t /= 2.0
            u, beta, eta = u_new, beta_new, eta_new
            change = pdev - pdev_new
            pdev = pdev_new
            if decrement < tol * (1.0 + abs(pdev)) or abs(change) < tol * 1e-3 * (1.0 + abs(pdev)):
                converged = True
                break
        # Factor at the final point, for the log-determinant.
        system, _ = self.system(theta, eta, u, joint=joint or full)
        chol_u = linalg.cholesky(system[:q, :q], lower=True, check_finite=False)
        logdet = 2.0 * float(np.sum(np.log(np.diag(chol_u))))
        extra: dict = {}
        if joint or full:
            chol_full = linalg.cholesky(system, lower=True, check_finite=False)
            extra["logdet_full"] = 2.0 * float(np.sum(np.log(np.diag(chol_full))))
            extra["chol_full"] = chol_full
        mu = expit(eta)
        return PirlsResult(u, beta, eta, mu, self._loglik(eta), logdet, chol_u, converged, iteration, extra)

    def gradient(self, theta: np.ndarray, beta: np.ndarray, result: PirlsResult) -> np.ndarray:
        r"""Exact gradient of the Laplace deviance in :math:`(\theta, \beta)` at a PIRLS optimum.

        :math:`dD/d\phi_j = \partial P/\partial\phi_j + \operatorname{tr}(H^{-1} dH/d\phi_j)`:
        the penalised deviance :math:`P` by the envelope theorem, the log-determinant through
        :math:`\Lambda` and through :math:`W(\mu)`, whose change includes that of the
        conditional modes (:math:`du/d\phi = -H^{-1}\,\partial F/\partial\phi`, implicit
        differentiation of the PIRLS equations :math:`F = -\Lambda Z^\top r + u = 0`).
        """
        d = self.data
        q, p, n_theta = d.q, d.p, len(d.n_levels)
        lam = self._lambda(theta)
        u, eta = result.u, result.eta
        mu = expit(eta)
        w = d.trials * mu * (1.0 - mu)
        dw = w * (1.0 - 2.0 * mu)  # dW/deta
        resid = d.successes - d.trials * mu
        zr = self._zt(resid)
        a = self._ztwz(w)
        h_inv = linalg.cho_solve((result.chol, True), np.eye(q), check_finite=False)
        # Leverages s_c = z_c' Lambda H^{-1} Lambda z_c.
        lev = np.zeros(eta.size)
        for ga, gb in self._pairs:
            block = h_inv[self._offsets[ga]:self._offsets[ga + 1], self._offsets[gb]:self._offsets[gb + 1]]
            factor = theta[ga] * theta[gb] * (1.0 if ga == gb else 2.0)
            lev += factor * block[d.codes[ga], d.codes[gb]]
        grad = np.empty(n_theta + p)
        # Right-hand sides of du/dphi and the direct derivatives of eta.
        rhs = np.empty((q, n_theta + p))
        direct = np.empty((eta.size, n_theta + p))
        for g in range(n_theta):
            sl = slice(self._offsets[g], self._offsets[g + 1])
            ug = u[sl][d.codes[g]]  # d eta / d theta_g at fixed u
            direct[:, g] = ug
            term = lam * self._zt(w * ug)
            term[sl] -= zr[sl]
            rhs[:, g] = term
            grad[g] = -2.0 * float(zr[sl] @ u[sl])
        for j in range(p):
            direct[:, n_theta + j] = d.X[:, j]
            rhs[:, n_theta + j] = lam * self._zt(w * d.X[:, j])
            grad[n_theta + j] = -2.0 * float(d.X[:, j] @ resid)
        du = -linalg.cho_solve((result.chol, True), rhs, check_finite=False)
        result.extra["du"] = du  # sensitivities of the modes: warm starts for nearby points
        b_du = lam[:, None] * du
        deta = direct.copy()
        for g in range(n_theta):
            deta += b_du[self._offsets[g]:self._offsets[g + 1]][d.codes[g]]
        grad += (dw * lev) @ deta
        # Through Lambda: 2 * sum over the block of diag(H^{-1} Lambda A).
        diag = np.einsum("ik,ki->i", h_inv * lam[None, :], a)
        for g in range(n_theta):
            grad[g] += 2.0 * float(diag[self._offsets[g]:self._offsets[g + 1]].sum())
        return grad

    def system(
        self, theta: np.ndarray, eta: np.ndarray, u: np.ndarray, *, joint: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        r"""Hessian and gradient of :math:`-\ell + \|u\|^2/2` in u (and beta when ``joint``)."""
        d = self.data
        q, p = d.q, d.p
        lam = self._lambda(theta)
        mu = expit(eta)
        w = d.trials * mu * (1.0 - mu)
        resid = d.successes - d.trials * mu
        grad_u = lam * self._zt(resid) - u
        h_uu = lam[:, None] * self._ztwz(w) * lam[None, :]
        h_uu[np.diag_indices(q)] += 1.0
        if not joint:
            return h_uu, grad_u
        zwx = np.column_stack([self._zt(w * d.X[:, j]) for j in range(p)]) * lam[:, None]
        xwx = d.X.T @ (w[:, None] * d.X)
        hessian = np.block([[h_uu, zwx], [zwx.T, xwx]])
        return hessian, np.concatenate([grad_u, d.X.T @ resid])

    def deviance(self, theta: np.ndarray, beta: np.ndarray, u0: np.ndarray | None = None) -> tuple[float, PirlsResult]:
        """Laplace deviance :math:`D(\\theta, \\beta)` (PIRLS over u, warm-started at ``u0``)."""
        result = self.pirls(theta, beta, u0)
        return result.deviance, result
