r"""Intervals for proportions, as R's ``svyciprop`` (and ``svyquantile``'s Woodruff step).

For an estimated proportion :math:`\hat p` with design variance :math:`v`,
:math:`\alpha = 1 - \text{level}` and :math:`t = t_{df}(1 - \alpha/2)`:

``"mean"``
    :math:`\hat p \pm t \sqrt v` (Wald on the proportion).
``"xlogit"``
    :math:`\operatorname{expit}(\operatorname{logit}\hat p \pm t \sqrt v / (\hat p(1-\hat p)))`.
``"asin"``
    :math:`\sin^2(\arcsin\sqrt{\hat p} \pm t \sqrt v / (2\sqrt{\hat p(1-\hat p)}))`.
``"beta"``
    Korn and Graubard's (1998): effective size
    :math:`n^* = \hat p(1-\hat p)/v \cdot (t_{m-1}(\alpha/2) / t_{d}(\alpha/2))^2`
    with :math:`m` the rows of the (sub)design and :math:`d` its degrees of
    freedom; bounds :math:`B^{-1}(\alpha/2; n^*\hat p, n^*(1-\hat p)+1)` and
    :math:`B^{-1}(1-\alpha/2; n^*\hat p+1, n^*(1-\hat p))`. For an estimate of
    exactly 0 or 1 (zero variance) R's formula is 0/0 and gives NaN;
    ``proportion(ci="beta")`` then uses the domain's respondents as
    :math:`n^*`, Korn and Graubard's convention (e.g. 0 of 41 gives [0, 0.086]).
``"logit"``
    the Wald interval of the intercept of a quasibinomial ``svyglm``, back
    transformed (see :mod:`unmetneed.design.glm`); on replicate designs its
    variance comes from the replicate fits.
``"likelihood"``
    the profile-likelihood interval of that fit with the Rao-Scott scaled
    likelihood ratio; see :func:`likelihood_interval`.

As in R, bounds are not clipped: ``"mean"`` can go below 0.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

__all__ = ["transformed_interval"]


def _t(level: float, df: float | np.ndarray) -> np.ndarray:
    return np.asarray(stats.t.ppf(0.5 + level / 2.0, df))


def transformed_interval(
    p: np.ndarray,
    variance: np.ndarray,
    method: str,
    *,
    level: float,
    df: float | np.ndarray,
    rows: np.ndarray | None = None,
    rows_df: np.ndarray | None = None,
    respondents: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper bounds by the ``mean``, ``xlogit``, ``asin`` or ``beta`` method.

    ``rows`` and ``rows_df`` (rows of the (sub)design and its degrees of
    freedom) are used by ``beta`` only. With ``respondents``, a ``beta``
    interval for an estimate of exactly 0 or 1 (zero variance, where R gives
    NaN) takes the respondents as the effective size: the Clopper-Pearson
    interval of 0 (or n) successes in n, e.g. [0, 1 - (alpha/2)^(1/n)].
    """
    p = np.asarray(p, dtype=np.float64)
    v = np.asarray(variance, dtype=np.float64)
    se = np.sqrt(v)
    with np.errstate(divide="ignore", invalid="ignore"):
        if method == "mean":
            half = _t(level, df) * se
            return p - half, p + half
        if method == "xlogit":
            centre = np.log(p / (1.0 - p))
            half = _t(level, df) * se / (p * (1.0 - p))
            return _expit(centre - half), _expit(centre + half)
        if method == "asin":
            centre = np.arcsin(np.sqrt(p))
            half = _t(level, df) * se / (2.0 * np.sqrt(p * (1.0 - p)))
            return np.sin(centre - half) ** 2, np.sin(centre + half) ** 2
        if method == "beta":
            alpha = 1.0 - level
            assert rows is not None and rows_df is not None
            n_eff = p * (1.0 - p) / v
            n_eff = n_eff * (stats.t.ppf(alpha / 2, rows - 1.0) / stats.t.ppf(alpha / 2, rows_df)) ** 2
            if respondents is not None:
                boundary = ((p == 0) | (p == 1)) & (v == 0) & (respondents > 0)
                n_eff = np.where(boundary, respondents, n_eff)
            lower = stats.beta.ppf(alpha / 2, n_eff * p, n_eff * (1.0 - p) + 1.0)
            upper = stats.beta.ppf(1 - alpha / 2, n_eff * p + 1.0, n_eff * (1.0 - p))
            # a zero shape is a point mass (R: qbeta(., 0, b) = 0, qbeta(., a, 0) = 1)
            lower = np.where((n_eff * p == 0) & (n_eff > 0), 0.0, lower)
            upper = np.where((n_eff * (1.0 - p) == 0) & (n_eff > 0), 1.0, upper)
            return np.asarray(lower, dtype=np.float64), np.asarray(upper, dtype=np.float64)
    raise ValueError(f"unknown interval method {method!r}")  # pragma: no cover - checked above


def _expit(x: np.ndarray) -> np.ndarray:
    return np.exp(x) / (1.0 + np.exp(x))
