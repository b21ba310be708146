"""REML and ML estimation of the Fay-Herriot variance by Fisher scoring.

Everything is O(m p^2) for m areas and p covariates: the m x m projection
matrix P = V^-1 - V^-1 X (X'V^-1X)^-1 X'V^-1 of the REML equations is never
formed, only its traces and quadratic forms (Harville 1977):

    tr(P)    = sum(1/V) - tr(A^-1 X'V^-2 X)
    tr(P P)  = sum(1/V^2) - 2 tr(A^-1 X'V^-3 X) + tr(A^-1 B A^-1 B),  B = X'V^-2 X
    P y      = V^-1 (y - X beta_hat)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from unmetneed.errors import ModelError

__all__ = ["GLS", "VarianceFit", "fit_sigma2", "gls"]

FitMethod = Literal["REML", "ML"]
_LOG_2PI = float(np.log(2.0 * np.pi))
_MAX_HALVINGS = 60


@dataclass(frozen=True)
class GLS:
    """Generalised least squares at a given sigma2."""

    beta: np.ndarray
    A_inv: np.ndarray  # (X'V^-1X)^-1, the covariance of beta_hat
    resid: np.ndarray  # y - X beta_hat
    V: np.ndarray  # sigma2 + psi


def gls(y: np.ndarray, X: np.ndarray, psi: np.ndarray, sigma2: float) -> GLS:
    """Weighted least squares with weights 1 / (sigma2 + psi)."""
    V = sigma2 + psi
    Xw = X / V[:, None]
    A = X.T @ Xw
    A_inv = np.linalg.inv(A)
    A_inv = (A_inv + A_inv.T) / 2.0
    beta = A_inv @ (Xw.T @ y)
    return GLS(beta=beta, A_inv=A_inv, resid=y - X @ beta, V=V)


def loglik(method: FitMethod, X: np.ndarray, g: GLS) -> float:
    """Log-likelihood (ML) or restricted log-likelihood (REML) at ``g``.

    The REML version includes the constant ``+ log|X'X| / 2``, as metafor's
    ``logLik()`` (``REMLf = TRUE``), so values are comparable with it.
    """
    m, p = X.shape
    quad = float(np.sum(g.resid**2 / g.V))
    logdet_v = float(np.sum(np.log(g.V)))
    if method == "ML":
        return -0.5 * (m * _LOG_2PI + logdet_v + quad)
    _, logdet_a_inv = np.linalg.slogdet(g.A_inv)
    _, logdet_xx = np.linalg.slogdet(X.T @ X)
    return -0.5 * ((m - p) * _LOG_2PI + logdet_v - logdet_a_inv - logdet_xx + quad)


def score_information(method: FitMethod, X: np.ndarray, g: GLS) -> tuple[float, float]:
    """Score and expected (Fisher) information for sigma2."""
    inv_v = 1.0 / g.V
    inv_v2 = inv_v**2
    r2 = float(np.sum(g.resid**2 * inv_v2))
    if method == "ML":
        return 0.5 * (r2 - float(np.sum(inv_v))), 0.5 * float(np.sum(inv_v2))
    B = X.T @ (X * inv_v2[:, None])
    C = X.T @ (X * (inv_v2 * inv_v)[:, None])
    AB = g.A_inv @ B
    trace_p = float(np.sum(inv_v)) - float(np.trace(AB))
    trace_pp = float(np.sum(inv_v2)) - 2.0 * float(np.sum(g.A_inv * C)) + float(np.sum(AB * AB.T))
    return 0.5 * (r2 - trace_p), 0.5 * trace_pp


@dataclass(frozen=True)
class VarianceFit:
    """The estimated sigma2 and how it was reached."""

    sigma2: float
    loglik: float
    information: float  # expected information at sigma2: var(sigma2_hat) ~ 1 / information
    score: float
    iterations: int
    converged: bool
    start: float


def _start(y: np.ndarray, X: np.ndarray, psi: np.ndarray) -> float:
    """Prasad-Rao moment estimator from ordinary least squares (>= 0)."""
    m, p = X.shape
    q, _ = np.linalg.qr(X)
    leverage = np.sum(q**2, axis=1)
    resid = y - q @ (q.T @ y)
    return max(0.0, (float(resid @ resid) - float(np.sum(psi * (1.0 - leverage)))) / (m - p))


def _scoring(
    method: FitMethod, y: np.ndarray, X: np.ndarray, psi: np.ndarray, start: float, tol: float, max_iter: int
) -> VarianceFit:
    scale = float(np.mean(psi))
    s2 = start
    g = gls(y, X, psi, s2)
    ll = loglik(method, X, g)
    for iteration in range(1, max_iter + 1):
        score, info = score_information(method, X, g)
        step = score / info
        for _ in range(_MAX_HALVINGS):
            new = max(s2 + step, 0.0)  # the boundary: sigma2 = 0 is allowed (as metafor)
            g_new = gls(y, X, psi, new)
            ll_new = loglik(method, X, g_new)
            # A step stands if it raises the likelihood or, where the likelihood is too
            # flat to tell in floating point (near the maximum), shrinks the score. A
            # slack on the likelihood instead let an expected-information step (which
            # overshoots when the observed curvature is over twice it) swing across the
            # maximum for ever.
            if ll_new > ll or abs(score_information(method, X, g_new)[0]) < abs(score):
                break
            step /= 2.0
        delta = new - s2
        s2, g, ll = new, g_new, ll_new
        if abs(delta) <= tol * (s2 + scale):
            score, info = score_information(method, X, g)
            return VarianceFit(s2, ll, info, score, iteration, True, start)
    score, info = score_information(method, X, g)
    return VarianceFit(s2, ll, info, score, max_iter, False, start)


def fit_sigma2(
    method: FitMethod, y: np.ndarray, X: np.ndarray, psi: np.ndarray, *, tol: float, max_iter: int
) -> VarianceFit:
    """Maximise the (restricted) likelihood over sigma2 >= 0.

    Fisher scoring with step halving (every step raises the likelihood) and
    truncation at 0, from the Prasad-Rao moment estimate and from 0; the
    higher of the two maxima is kept, which guards against a second local
    maximum at the boundary.
    """
    start = _start(y, X, psi)
    best = _scoring(method, y, X, psi, start, tol, max_iter)
    if start > 0.0:
        other = _scoring(method, y, X, psi, 0.0, tol, max_iter)
        if other.converged and other.loglik > best.loglik + 1e-9 * abs(best.loglik):
            best = other
    if not best.converged:
        raise ModelError(
            f"the {method} estimate of sigma2 did not converge in {max_iter} Fisher-scoring "
            f"iterations (last value {best.sigma2:.6g}); raise max_iter= or loosen tol="
        )
    return best
