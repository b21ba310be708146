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

from dataclasses import dataclass

import numpy as np
from scipy import optimize

from unmetneed.mrp.laplace import CellData, LaplaceProblem, PirlsResult

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
    """Deviance as a function of a parameter vector, with warm starts."""

    def __init__(self, problem: LaplaceProblem, n_theta: int, joint_beta: np.ndarray | None) -> None:
        self.problem = problem
        self.n_theta = n_theta
        self.joint_beta = joint_beta  # stage 1: beta from PIRLS, starting here
        self.u: np.ndarray | None = None
        self.beta = joint_beta
        self.evaluations = 0

    def __call__(self, x: np.ndarray) -> float:
        self.evaluations += 1
        theta = np.abs(x[: self.n_theta])
        if self.joint_beta is not None:
            result = self.problem.pirls(theta, self.beta, self.u, joint=True)
            self.beta = result.beta
        else:
            result = self.problem.pirls(theta, x[self.n_theta:], self.u)
        if result.converged:
            self.u = result.u
        return result.deviance

    def gradient(self, x: np.ndarray) -> np.ndarray:
        h = 1e-5 * np.maximum(np.abs(x), 1.0)
        grad = np.empty_like(x)
        for i in range(x.size):
            up, down = x.copy(), x.copy()
            up[i] += h[i]
            down[i] -= h[i]
            grad[i] = (self(up) - self(down)) / (2.0 * h[i])
        return grad


def numerical_hessian(f, x: np.ndarray, step: float = 1e-4) -> np.ndarray:  # type: ignore[no-untyped-def]
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
        step = np.linalg.solve(X.T @ (w[:, None] * X), X.T @ (k - n * mu))
        beta = beta + step
        if np.max(np.abs(step)) < 1e-10:
            break
    return beta


def fit_laplace(data: CellData, *, max_iter: int = 500) -> FitState:
    """Fit by the two stages above; returns the optimum, its PIRLS state and Hessian."""
    problem = LaplaceProblem(data)
    n_theta = len(data.n_levels)
    beta0 = _initial_beta(data)
    theta0 = np.ones(n_theta)

    stage1 = _Objective(problem, n_theta, joint_beta=beta0)
    first = optimize.minimize(
        stage1, theta0, jac=stage1.gradient, method="L-BFGS-B",
        bounds=[(0.0, None)] * n_theta,
        options={"maxiter": max_iter, "ftol": 1e-13, "gtol": 1e-7},
    )
    theta1 = first.x
    beta1 = stage1.beta

    stage2 = _Objective(problem, n_theta, joint_beta=None)
    stage2.u = stage1.u
    x0 = np.concatenate([theta1, beta1])
    second = optimize.minimize(
        stage2, x0, jac=stage2.gradient, method="L-BFGS-B",
        bounds=[(0.0, None)] * n_theta + [(None, None)] * beta1.size,
        options={"maxiter": max_iter, "ftol": 1e-14, "gtol": 1e-6},
    )
    x = second.x
    theta, beta = x[:n_theta], x[n_theta:]
    final = problem.pirls(theta, beta, stage2.u)
    hessian = numerical_hessian(stage2, x)
    converged = bool(second.success and final.converged)
    return FitState(
        theta=theta,
        beta=beta,
        pirls=final,
        deviance=final.deviance,
        hessian=hessian,
        converged=converged,
        message=str(second.message),
        evaluations=stage1.evaluations + stage2.evaluations,
    )
