"""The measurement-error Fay-Herriot model (Ybarra & Lohr, 2008): R, simulation, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from unmetneed.errors import ModelError
from unmetneed.sae import fit_measurement_error

REFERENCE = Path(__file__).resolve().parents[1] / "reference" / "sae"


def test_without_covariate_error_equals_metafor_paule_mandel() -> None:
    """C = 0: the Fay-Herriot moment estimator = metafor's Paule-Mandel fit and blup()."""
    ref = json.loads((REFERENCE / "measurement_error_pm.json").read_text())
    d = pd.read_csv(REFERENCE / ref["data"])
    X = np.column_stack([np.ones(len(d)), d["x1"], d["x2"]])
    fit = fit_measurement_error(d["y"], d["v"], X, np.zeros_like(X))
    assert fit.sigma2 == pytest.approx(ref["tau2"], rel=1e-10)
    np.testing.assert_allclose(fit.beta, ref["beta"], rtol=1e-10)
    np.testing.assert_allclose(fit.vcov_beta, np.array(ref["vb"]), rtol=1e-8)
    np.testing.assert_allclose(fit.estimate, ref["blup"], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(np.sqrt(fit.mse), ref["blup_se"], rtol=1e-8)


def _simulate(rng: np.random.Generator, m: int = 120) -> tuple[np.ndarray, ...]:
    x = rng.uniform(0.0, 1.0, m)
    c = rng.uniform(0.002, 0.03, m)  # the covariate's error variance, area by area
    x_hat = x + rng.normal(0.0, np.sqrt(c))
    psi = rng.uniform(0.01, 0.08, m)
    theta = 0.5 + 2.0 * x + rng.normal(0.0, 0.1, m)
    y = theta + rng.normal(0.0, np.sqrt(psi))
    X = np.column_stack([np.ones(m), x_hat])
    C = np.column_stack([np.zeros(m), c])
    return y, psi, X, C, theta


def test_intervals_cover_and_ignoring_the_error_does_not() -> None:
    """90% intervals cover the area means when the covariate's error is modelled.

    Ignored, the error is absorbed into sigma2, so the intervals cover on average but
    not where the covariate is noisiest (the quarter of areas with the largest C_a).
    """
    rng = np.random.default_rng(20261205)
    covered, noisy, naive_noisy, mse_ratio = [], [], [], []
    for _ in range(150):
        y, psi, X, C, theta = _simulate(rng)
        top = C[:, 1] >= np.quantile(C[:, 1], 0.75)
        fit = fit_measurement_error(y, psi, X, C)
        lo, hi = fit.interval(0.9)
        inside = (lo <= theta) & (theta <= hi)
        covered.append(inside.mean())
        noisy.append(inside[top].mean())
        naive = fit_measurement_error(y, psi, X, np.zeros_like(C))
        lo, hi = naive.interval(0.9)
        naive_noisy.append(((lo <= theta) & (theta <= hi))[top].mean())
        mse_ratio.append(np.mean((fit.estimate - theta) ** 2) / np.mean((y - theta) ** 2))
    assert 0.86 <= np.mean(covered) <= 0.94
    assert 0.85 <= np.mean(noisy) <= 0.95
    assert np.mean(naive_noisy) < np.mean(noisy) - 0.03
    assert np.mean(mse_ratio) < 0.8  # better than the direct estimates


def test_results_are_read_only() -> None:
    y, psi, X, C, _ = _simulate(np.random.default_rng(1), m=40)
    fit = fit_measurement_error(y, psi, X, C)
    with pytest.raises(ValueError):
        fit.estimate[0] = 0.0
    with pytest.raises(AttributeError):
        fit.sigma2 = 1.0  # type: ignore[misc]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda y, psi, X, C: (y[:-1], psi, X, C), "vectors of one length"),
        (lambda y, psi, X, C: (y, -psi, X, C), "must be > 0"),
        (lambda y, psi, X, C: (np.where(np.arange(y.size) == 3, np.nan, y), psi, X, C), "not finite"),
        (lambda y, psi, X, C: (y, psi, X, -C - 0.01), ">= 0"),
        (lambda y, psi, X, C: (y, psi, X, C[:, :1]), "covariate_variance must be"),
        (lambda y, psi, X, C: (y[:2], psi[:2], X[:2], C[:2]), "cannot estimate"),
        (lambda y, psi, X, C: (y, psi, X, C * 400.0), "not positive definite"),
    ],
)
def test_bad_input_is_named(change, message) -> None:
    y, psi, X, C, _ = _simulate(np.random.default_rng(2), m=30)
    with pytest.raises(ModelError, match=message):
        fit_measurement_error(*change(y, psi, X, C))
