"""The blocked GLM algebra (X'WX by blocks of rows, PSU segment sums) equals R
whatever the block size: with blocks of a few rows the R reference cases of
``test_analysis_vs_r`` are fitted through many blocks and PSU groups."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import unmetneed as um
from unmetneed.design import glm as glm_module

from .test_analysis_vs_r import (
    DESIGNS,
    GLM_CASES,
    RTOL_ESTIMATE,
    RTOL_SE,
    _design,
    close,
    ref,
)


@pytest.mark.parametrize("block", [1, 7, 64])
@pytest.mark.parametrize("kind", DESIGNS)
@pytest.mark.parametrize("case", ["gaussian", "binomial", "poisson", "gaussian_na", "gaussian_subset"])
def test_glm_equals_r_with_small_blocks(
    monkeypatch: pytest.MonkeyPatch, block: int, kind: str, case: str
) -> None:
    monkeypatch.setattr(glm_module, "_BLOCK", block)
    formula, family = GLM_CASES[case]
    design = _design(kind)
    if case == "gaussian_subset":
        design = design.subset("sex == 'Male'")
    frame = design.glm(formula, family=family).to_frame()
    expected = ref(kind, "glm")[case]
    close(frame["estimate"], expected["estimate"], RTOL_ESTIMATE)
    close(frame["se"], expected["se"], RTOL_SE)


def test_glm_matches_dense_algebra_on_many_blocks() -> None:
    """50,000 rows (several blocks), PSUs in no particular order: the coefficients
    equal weighted least squares by lstsq and the SEs the dense sandwich."""
    rng = np.random.default_rng(7)
    n, n_strata, n_psu = 50_000, 7, 9
    frame = pd.DataFrame(
        {
            "stratum": rng.integers(0, n_strata, n),
            "psu": rng.integers(0, n_psu, n),
            "w": rng.uniform(1, 5, n),
            "x1": rng.normal(size=n),
            "x2": rng.normal(size=n),
            "g": pd.Categorical(rng.integers(0, 3, n)),
        }
    )
    frame["y"] = 1 + frame["x1"] - 2 * frame["x2"] + frame["g"].cat.codes + rng.normal(size=n)
    design = um.SurveyDesign(frame, weights="w", strata="stratum", clusters="psu", nest=True)
    fit = design.glm("y ~ x1 + x2 + g")
    x = np.column_stack(
        [np.ones(n), frame["x1"], frame["x2"], frame["g"].cat.codes == 1, frame["g"].cat.codes == 2]
    ).astype(float)
    w = frame["w"].to_numpy() * n / frame["w"].sum()
    y = frame["y"].to_numpy()
    sw = np.sqrt(w)
    beta = np.linalg.lstsq(x * sw[:, None], y * sw, rcond=None)[0]
    np.testing.assert_allclose(fit.params.to_numpy(), beta, rtol=1e-10)
    # sandwich: PSU totals of x w (y - x b) A^-1, with-replacement stratified variance
    a_inv = np.linalg.inv(x.T @ (x * w[:, None]))
    scores = (x * (w * (y - x @ beta))[:, None]) @ a_inv
    psu = frame["stratum"].to_numpy() * n_psu + frame["psu"].to_numpy()
    ids, code = np.unique(psu, return_inverse=True)
    totals = np.zeros((ids.size, x.shape[1]))
    np.add.at(totals, code, scores)
    cov = np.zeros((x.shape[1], x.shape[1]))
    for h in range(n_strata):
        t = totals[ids // n_psu == h]
        d = t - t.mean(axis=0)
        cov += t.shape[0] / (t.shape[0] - 1) * d.T @ d
    np.testing.assert_allclose(fit.vcov().to_numpy(), cov, rtol=1e-8)


@pytest.mark.parametrize("offset", [0.0, 1e5])
def test_refinement_only_when_conditioning_needs_it(monkeypatch: pytest.MonkeyPatch, offset: float) -> None:
    """Well conditioned: one Cholesky pass; a covariate far from 0 (scaled condition
    number ~1e10): the refinement pass runs and the coefficients still equal
    weighted least squares by lstsq (an orthogonal method, as R's QR)."""
    rng = np.random.default_rng(11)
    n = 20_000
    frame = pd.DataFrame(
        {
            "stratum": rng.integers(0, 5, n),
            "psu": rng.integers(0, 6, n),
            "w": rng.uniform(1, 5, n),
            "x1": offset + rng.normal(size=n),
            "x2": rng.normal(size=n),
        }
    )
    frame["y"] = 3 + 2 * (frame["x1"] - offset) - frame["x2"] + rng.normal(size=n)
    refined = []
    solve = glm_module._weighted_least_squares

    def spy(xt: np.ndarray, z: np.ndarray, w: np.ndarray, *, need_eta: bool = True):  # type: ignore[no-untyped-def]
        gram = (xt * w) @ (xt * w).T
        scale = 1 / np.sqrt(np.diag(gram))
        refined.append(np.linalg.cond(gram * scale[:, None] * scale[None, :]))
        return solve(xt, z, w, need_eta=need_eta)

    monkeypatch.setattr(glm_module, "_weighted_least_squares", spy)
    design = um.SurveyDesign(frame, weights="w", strata="stratum", clusters="psu", nest=True)
    fit = design.glm("y ~ x1 + x2")
    x = np.column_stack([np.ones(n), frame["x1"], frame["x2"]])
    sw = np.sqrt(frame["w"].to_numpy())
    beta = np.linalg.lstsq(x * sw[:, None], frame["y"].to_numpy() * sw, rcond=None)[0]
    np.testing.assert_allclose(fit.params.to_numpy(), beta, rtol=1e-10)
    assert (max(refined) > glm_module._REFINE_ABOVE) == (offset != 0)
