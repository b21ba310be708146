"""EBLUPs and their estimated MSE (Prasad & Rao 1990; Datta & Lahiri 2000)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from unmetneed.sae.fitting import FitMethod

__all__ = ["MSEComponents", "eblup", "mse_components", "synthetic_mse"]


@dataclass(frozen=True)
class MSEComponents:
    """The terms of the second-order MSE estimate, one value per area.

    Read-only arrays for the areas with a direct estimate, in the data's order
    (``FayHerriotFit.components``; ``FayHerriotFit.mse_components()`` gives the
    same as a table).

    Attributes
    ----------
    g1 : ndarray
        ``sigma2 psi / (sigma2 + psi)``: the MSE of the BLUP with known parameters.
    g2 : ndarray
        ``(1 - gamma)^2 x'(X'V^-1X)^-1 x``: the cost of estimating beta.
    g3 : ndarray
        ``psi^2 / (sigma2 + psi)^3 * 2 / sum((sigma2 + psi)^-2)``: the cost of
        estimating sigma2 (it enters the MSE twice).
    bias : ndarray
        ML only: ``-b_ML (1 - gamma)^2`` (zeros under REML).
    mse : ndarray
        ``g1 + g2 + 2 g3 + bias``.

    Examples
    --------
    >>> import unmetneed as um
    >>> data = um.datasets.load_example_areas()
    >>> parts = um.FayHerriot(data, "y", "v", "y ~ x", "area").fit().components
    >>> bool(abs(parts.g1 + parts.g2 + 2 * parts.g3 - parts.mse).max() < 1e-12)
    True
    """

    g1: np.ndarray
    g2: np.ndarray
    g3: np.ndarray
    bias: np.ndarray  # -b_ML * d g1 / d sigma2 (ML only; zeros for REML)
    mse: np.ndarray


def eblup(
    y: np.ndarray, psi: np.ndarray, synthetic: np.ndarray, sigma2: float
) -> tuple[np.ndarray, np.ndarray]:
    """``gamma * y + (1 - gamma) * x'beta`` and the shrinkage ``gamma``."""
    gamma = sigma2 / (sigma2 + psi)
    return gamma * y + (1.0 - gamma) * synthetic, gamma


def mse_components(
    X: np.ndarray, psi: np.ndarray, sigma2: float, A_inv: np.ndarray, method: FitMethod
) -> MSEComponents:
    """Datta-Lahiri MSE: ``g1 + g2 + 2 g3`` (REML), minus ``b_ML g1'`` for ML.

    ``X`` and ``psi`` are the areas with direct estimates (the fit's); ``A_inv``
    is ``(X'V^-1X)^-1`` at ``sigma2``.
    """
    V = sigma2 + psi
    gamma = sigma2 / V
    g1 = gamma * psi
    leverage = np.sum((X @ A_inv) * X, axis=1)
    g2 = (1.0 - gamma) ** 2 * leverage
    inv_v2 = 1.0 / V**2
    information_sum = float(np.sum(inv_v2))  # 2 x Fisher information of sigma2
    g3 = psi**2 / V**3 * (2.0 / information_sum)
    if method == "ML":
        B = X.T @ (X * inv_v2[:, None])
        b_ml = -float(np.sum(A_inv * B)) / information_sum
        bias = -b_ml * (1.0 - gamma) ** 2  # d g1 / d sigma2 = (1 - gamma)^2
    else:
        bias = np.zeros_like(g1)
    return MSEComponents(g1=g1, g2=g2, g3=g3, bias=bias, mse=g1 + g2 + 2.0 * g3 + bias)


def synthetic_mse(X_new: np.ndarray, sigma2: float, A_inv: np.ndarray) -> np.ndarray:
    """MSE of the synthetic ``x'beta`` for an area outside the fit: ``sigma2 + x'A^-1x``."""
    return sigma2 + np.sum((X_new @ A_inv) * X_new, axis=1)
