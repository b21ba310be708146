r"""Maximise the Laplace likelihood as ``lme4::glmer(nAGQ = 1)`` does.

Stage 1 optimises the standard deviations :math:`\theta` with the fixed
effects updated inside PIRLS (lme4's ``nAGQ = 0`` stage); stage 2 optimises
:math:`(\theta, \beta)` jointly on the Laplace deviance, with PIRLS over the
conditional modes only. Gradients are central differences of the deviance
(PIRLS is run to machine precision, warm-started), the optimiser L-BFGS-B with
:math:`\theta \ge 0`. The covariance of :math:`\hat\beta` is the
:math:`\beta` block of :math:`2 H^{-1}`, :math:`H` the Hessian of the deviance
in :math:`(\theta, \beta)` — what ``vcov()`` of a ``glmer`` fit reports.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import linalg, optimize

from unmetneed.errors import ModelError
from unmetneed.mrp.laplace import Algebra, CellData, LaplaceProblem, PirlsResult

__all__ = ["FitState", "fit_laplace", "numerical_hessian"]


@dataclass
class FitState:
    theta: np.ndarray
    beta: np.ndarray
    pirls: PirlsResult
    deviance: float
    hessian: np.ndarray
    converged: bool
    message: str
    evaluations: int


class _Objective:
    """Laplace deviance and its exact gradient in x = (theta, beta), with warm starts."""

    def __init__(self, problem: LaplaceProblem, n_theta: int) -> None:
        self.problem = problem
        self.n_theta = n_theta
        self.u: np.ndarray | None = None
        self.evaluations = 0
        self._cache: tuple[bytes, float, np.ndarray] | None = None
        self._last: tuple[np.ndarray, np.ndarray] | None = None

    def _evaluate(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        key = x.tobytes()
        if self._cache is not None and self._cache[0] == key:
            return self._cache[1], self._cache[2]
        self.evaluations += 1
        theta, beta = x[: self.n_theta], x[self.n_theta :]
        start = self.u
        if self.u is not None and self._last is not None:
            # First-order prediction of the modes at the new point.
            last_x, du = self._last
            start = self.u + du @ (x - last_x)
        result = self.problem.pirls(theta, beta, start)
        value = result.deviance
        grad = self.problem.gradient(theta, beta, result)
        if result.converged:
            self.u = result.u
            self._last = (x.copy(), result.extra["du"])
        self._cache = (key, value, grad)
        return value, grad

    def __call__(self, x: np.ndarray) -> float:
        return self._evaluate(x)[0]

    def gradient(self, x: np.ndarray) -> np.ndarray:
        return self._evaluate(x)[1]


def gradient_hessian(
    grad: Callable[[np.ndarray], np.ndarray], x: np.ndarray, step: float = 1e-5
) -> np.ndarray:
    """Central differences of an exact gradient, symmetrised."""
    d = x.size
    h = step * np.maximum(np.abs(x), 1.0)
    hess = np.empty((d, d))
    for i in range(d):
        e = np.zeros(d)
        e[i] = h[i]
        hess[:, i] = (grad(x + e) - grad(x - e)) / (2.0 * h[i])
    return (hess + hess.T) / 2.0


def numerical_hessian(f: Callable[[np.ndarray], float], x: np.ndarray, step: float = 1e-4) -> np.ndarray:
    """Central-difference Hessian of a scalar function."""
    d = x.size
    h = step * np.maximum(np.abs(x), 1.0)
    f0 = f(x)
    hess = np.empty((d, d))
    for i in range(d):
        ei = np.zeros(d)
        ei[i] = h[i]
        hess[i, i] = (f(x + ei) - 2.0 * f0 + f(x - ei)) / h[i] ** 2
        for j in range(i):
            ej = np.zeros(d)
            ej[j] = h[j]
            value = (f(x + ei + ej) - f(x + ei - ej) - f(x - ei + ej) + f(x - ei - ej)) / (4.0 * h[i] * h[j])
            hess[i, j] = hess[j, i] = value
    return hess


def _initial_beta(data: CellData) -> np.ndarray:
    """Logistic regression of the cells on the fixed effects, ignoring the groups."""
    X, k, n = data.X, data.successes, data.trials
    beta = np.zeros(X.shape[1])
    for _ in range(50):
        eta = X @ beta
        mu = 1.0 / (1.0 + np.exp(-eta))
        w = n * mu * (1 - mu) + 1e-12
        step = np.linalg.lstsq(X.T @ (w[:, None] * X), X.T @ (k - n * mu), rcond=None)[0]
        beta = beta + np.clip(step, -5.0, 5.0)
        if np.max(np.abs(step)) < 1e-10 or np.max(np.abs(beta)) > 30:
            break
    return beta


def fit_laplace(data: CellData, *, max_iter: int = 500, algebra: Algebra = "auto") -> FitState:
    """Minimise the Laplace deviance over (theta >= 0, beta) with its exact gradient.

    ``algebra`` chooses how the PIRLS systems are factorised (see
    :class:`~unmetneed.mrp.laplace.LaplaceProblem`); the estimates do not depend on it.
    """
    problem = LaplaceProblem(data, algebra=algebra)
    n_theta = len(data.n_levels)
    beta0 = _initial_beta(data)
    theta0 = np.ones(n_theta)
    objective = _Objective(problem, n_theta)

    def minimise(start: np.ndarray) -> optimize.OptimizeResult:
        # D is even in each theta (b = theta u, u ~ N(0, I)), so theta is left
        # unconstrained: a bound at 0 would be a stationary trap.
        return optimize.minimize(
            objective,
            start,
            jac=objective.gradient,
            method="L-BFGS-B",
            options={"maxiter": max_iter, "ftol": 1e-15, "gtol": 1e-7},
        )

    try:
        found = minimise(np.concatenate([theta0, beta0]))
    except (np.linalg.LinAlgError, linalg.LinAlgError) as error:
        raise ModelError(
            "the fit broke down numerically (a singular information matrix): usually "
            "(quasi-)complete separation — a fixed effect or a grouping level that predicts "
            "the outcome perfectly; merge sparse categories or drop the term"
        ) from error
    # A standard deviation at zero may be a saddle: restart it away from zero once.
    for _ in range(2):
        small = np.abs(found.x[:n_theta]) < 1e-4
        if not small.any():
            break
        start = found.x.copy()
        start[:n_theta][small] = 0.5
        retry = minimise(start)
        if retry.fun < found.fun - 1e-8:
            found = retry
        else:
            break
    x = found.x.copy()
    x[:n_theta] = np.abs(x[:n_theta])
    theta, beta = x[:n_theta], x[n_theta:]
    final = problem.pirls(theta, beta, objective.u, full=True)
    hessian = gradient_hessian(objective.gradient, x)
    gradient_norm = float(np.max(np.abs(problem.gradient(theta, beta, final))))
    converged = bool(final.converged and (found.success or gradient_norm < 1e-3))
    return FitState(
        theta=theta,
        beta=beta,
        pirls=final,
        deviance=final.deviance,
        hessian=hessian,
        converged=converged,
        message=str(found.message),
        evaluations=objective.evaluations,
    )
