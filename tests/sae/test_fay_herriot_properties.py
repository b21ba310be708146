"""Properties of every Fay-Herriot fit, on random area tables from hypothesis.

The likelihoods are recomputed here from their textbook dense-matrix form
(Rao & Molina 2015, section 5.2): V = diag(sigma2 + psi), P = V^-1 -
V^-1 X (X'V^-1X)^-1 X'V^-1. The library never forms P, so these checks are
independent of its O(m p^2) trace identities.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

import unmetneed as um

MAX_EXAMPLES = 40
# Relative slack on likelihood comparisons: values are O(10-100) and the fit
# stops when sigma2 moves by < 1e-10 of its scale.
LL_SLACK = 1e-8


@dataclass(frozen=True)
class AreaCase:
    data: pd.DataFrame
    method: str


@st.composite
def area_cases(draw: st.DrawFn) -> AreaCase:
    """6-40 areas, one covariate, sampling variances over two orders of magnitude."""
    m = draw(st.integers(6, 40))
    seed = draw(st.integers(0, 2**32 - 1))
    sigma2 = draw(st.sampled_from([0.0, 0.05, 0.5, 3.0]))
    rng = np.random.default_rng(seed)
    x = rng.normal(size=m)
    psi = np.exp(rng.uniform(np.log(0.05), np.log(5.0), size=m))
    y = 2.0 + 0.5 * x + rng.normal(0, np.sqrt(sigma2), m) + rng.normal(0, np.sqrt(psi))
    data = pd.DataFrame({"area": [f"A{i:03d}" for i in range(m)], "y": y, "v": psi, "x": x})
    return AreaCase(data, draw(st.sampled_from(["REML", "ML"])))


def dense_loglik(case: AreaCase, sigma2: float) -> float:
    """(Restricted) log-likelihood from the dense textbook formulas."""
    y = case.data["y"].to_numpy()
    psi = case.data["v"].to_numpy()
    X = np.column_stack([np.ones(len(y)), case.data["x"].to_numpy()])
    m, p = X.shape
    V_inv = np.diag(1.0 / (sigma2 + psi))
    A = X.T @ V_inv @ X
    P = V_inv - V_inv @ X @ np.linalg.solve(A, X.T @ V_inv)
    logdet_v = float(np.sum(np.log(sigma2 + psi)))
    if case.method == "ML":
        beta = np.linalg.solve(A, X.T @ V_inv @ y)
        r = y - X @ beta
        return -0.5 * (m * np.log(2 * np.pi) + logdet_v + r @ V_inv @ r)
    return -0.5 * (
        (m - p) * np.log(2 * np.pi)
        + logdet_v
        + np.linalg.slogdet(A)[1]
        - np.linalg.slogdet(X.T @ X)[1]
        + y @ P @ y
    )


def fit(case: AreaCase) -> um.FayHerriotFit:
    return um.FayHerriot(case.data, "y", "v", "y ~ x", "area", method=case.method).fit()


@settings(max_examples=MAX_EXAMPLES, deadline=None)
@given(area_cases())
def test_sigma2_maximises_the_likelihood_over_a_grid(case: AreaCase) -> None:
    result = fit(case)
    assert result.sigma2 >= 0.0
    best = dense_loglik(case, result.sigma2)
    np.testing.assert_allclose(result.loglik, best, rtol=1e-10)
    scale = float(np.var(case.data["y"])) + float(case.data["v"].max())
    grid = np.concatenate([[0.0], np.geomspace(1e-4, 10.0, 60) * scale])
    values = np.array([dense_loglik(case, s) for s in grid])
    assert values.max() <= best + LL_SLACK * abs(best)
    # A local maximum: nudging sigma2 either way (within [0, inf)) lowers it.
    for nudge in (result.sigma2 * (1 + 1e-3) + 1e-9, max(result.sigma2 * (1 - 1e-3) - 1e-9, 0.0)):
        assert dense_loglik(case, nudge) <= best + LL_SLACK * abs(best)


@settings(max_examples=MAX_EXAMPLES, deadline=None)
@given(area_cases())
def test_shrinkage_and_mse_are_sane(case: AreaCase) -> None:
    result = fit(case)
    table = result.estimates()
    psi = case.data["v"].to_numpy()
    assert ((table["shrinkage"] >= 0) & (table["shrinkage"] <= 1)).all()
    np.testing.assert_allclose(table["shrinkage"], result.sigma2 / (result.sigma2 + psi), rtol=1e-12)
    # The EBLUP is the shrinkage-weighted average of direct and synthetic.
    np.testing.assert_allclose(
        table["estimate"],
        table["shrinkage"] * table["direct"] + (1 - table["shrinkage"]) * result.synthetic,
        rtol=1e-10,
        atol=1e-12,
    )
    parts = result.mse_components()
    assert (parts[["g1", "g2", "g3"]] >= 0).all().all()
    assert (parts["bias"] >= 0).all()  # b_ML < 0: the ML correction adds to the MSE
    assert (table["mse"] > 0).all()
    assert (table["ci_lower"] < table["estimate"]).all() and (table["estimate"] < table["ci_upper"]).all()


@settings(max_examples=MAX_EXAMPLES, deadline=None)
@given(area_cases(), st.integers(0, 2**32 - 1))
def test_row_order_invariance(case: AreaCase, seed: int) -> None:
    order = np.random.default_rng(seed).permutation(len(case.data))
    shuffled = AreaCase(case.data.iloc[order].reset_index(drop=True), case.method)
    a, b = fit(case), fit(shuffled)
    np.testing.assert_allclose(b.sigma2, a.sigma2, rtol=1e-7, atol=1e-12)
    ta = a.estimates().set_index("area")
    tb = b.estimates().set_index("area").loc[ta.index]
    np.testing.assert_allclose(tb["estimate"], ta["estimate"], rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(tb["mse"], ta["mse"], rtol=1e-6, atol=1e-12)
