"""Many levels: the sparse (Schur-complement) algebra equals the dense one, and lme4.

A random intercept with hundreds of levels (neighbourhoods) is factorised
through a Schur complement that keeps its block of the PIRLS Hessian diagonal
(``unmetneed.mrp.factor``). Here: every piece the fit and the draws use —
deviance, exact gradient, log-determinants, solves, :math:`L^{-\\top}`,
the selected inverse — equals the dense factor's on the same model, full fits
agree, and a 574-level case agrees with ``lme4::glmer``
(``tests/reference/mrp/glmm_many_levels.json``, written by
``glmm_many_levels.R``; nothing here computes an expected value from R's side).
"""

from __future__ import annotations

import json
from functools import cache, lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import unmetneed as um
from unmetneed.mrp import laplace
from unmetneed.mrp.factor import DenseFactor, SchurFactor
from unmetneed.mrp.fitting import fit_laplace
from unmetneed.mrp.laplace import LaplaceProblem, choose_algebra

REFERENCE_DIR = Path(__file__).resolve().parents[1] / "reference" / "mrp"
MANY = json.loads((REFERENCE_DIR / "glmm_many_levels.json").read_text(encoding="utf-8"))
FACTORS = ["msoa", "area", "age_band"]

# DESIGN.md, "Agreement with R" (as tests/mrp/test_glmm_vs_lme4.py).
RTOL_FIXED = 1e-3  # fixed effects, SEs, SDs (relative)
ATOL_MODE = 1e-3  # conditional modes and their conditional SDs (absolute)
ATOL_LOGLIK = 1e-3
# The two algebras compute the same numbers in a different order: pieces agree to
# rounding, whole fits (two optimiser runs) to the brief's 1e-8.
RTOL_PIECES = 1e-10
RTOL_PATHS = 1e-8


@cache
def _rows(name: str) -> pd.DataFrame:
    return pd.read_csv(REFERENCE_DIR / "data" / name)


def many_levels_model() -> um.MultilevelModel:
    return um.MultilevelModel(MANY["python"]["formula"], data=_rows("glmm_many_levels.csv").copy())


def single_factor_model() -> um.MultilevelModel:
    # One random intercept: the Schur complement of the u system is empty (0 x 0).
    return um.MultilevelModel("y ~ sex + (1|msoa)", data=_rows("glmm_many_levels.csv").copy())


def three_factor_model() -> um.MultilevelModel:
    formula = "y ~ sex + deprivation + (1|area) + (1|age_band) + (1|ethnic_group)"
    return um.MultilevelModel(formula, data=_rows("glmm_rows.csv").copy())


def test_algebra_is_chosen_by_the_largest_factor() -> None:
    assert choose_algebra((60, 8, 12)) == "dense"
    assert choose_algebra((laplace.SCHUR_MIN_LEVELS, 8)) == "schur"
    assert choose_algebra((574, 40, 8), "dense") == "dense"
    with pytest.raises(ValueError, match="'auto', 'dense', 'schur'"):
        choose_algebra((10,), "sparse")  # type: ignore[arg-type]
    model = many_levels_model()
    assert LaplaceProblem(model.data.cells).algebra == "schur"


def _close(a: np.ndarray | float, b: np.ndarray | float, rtol: float) -> None:
    np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * max(1.0, float(np.max(np.abs(b)))))


@pytest.mark.parametrize("case", ["many_levels", "single_factor", "three_factors"])
@pytest.mark.parametrize("narrow_levels", [64, 5], ids=["narrow_dense", "all_wide"])
def test_schur_pieces_equal_dense(case: str, narrow_levels: int, monkeypatch: pytest.MonkeyPatch) -> None:
    # narrow_levels=5 holds every other factor's columns sparsely: both code paths of
    # the Schur complement (dense BLAS product and sparse pairs) are exercised.
    monkeypatch.setattr(laplace, "NARROW_LEVELS", narrow_levels)
    model = {"many_levels": many_levels_model, "single_factor": single_factor_model,
             "three_factors": three_factor_model}[case]()
    cells = model.data.cells
    n_theta = len(cells.n_levels)
    theta = np.linspace(0.3, 0.6, n_theta)
    beta = np.r_[-1.4, np.full(cells.p - 1, 0.2)]
    dense, schur = LaplaceProblem(cells, algebra="dense"), LaplaceProblem(cells, algebra="schur")
    rd = dense.pirls(theta, beta, full=True)
    rs = schur.pirls(theta, beta, full=True)
    assert isinstance(rd.factor, DenseFactor) and isinstance(rs.factor, SchurFactor)
    _close(rs.u, rd.u, RTOL_PIECES)
    _close(rs.deviance, rd.deviance, RTOL_PIECES)
    _close(rs.extra["logdet_full"], rd.extra["logdet_full"], RTOL_PIECES)
    _close(schur.gradient(theta, beta, rs), dense.gradient(theta, beta, rd), RTOL_PIECES)
    _close(rs.extra["du"], rd.extra["du"], RTOL_PIECES)
    for sd, dd in ((rs.factor, rd.factor), (rs.extra["factor_full"], rd.extra["factor_full"])):
        h_inv = dd.inverse()
        _close(sd.dense(), np.linalg.inv(h_inv), 1e-8)
        _close(sd.inverse_diagonal(), np.diag(h_inv), RTOL_PIECES)
        rhs = np.random.default_rng(1).standard_normal((dd.size, 3))
        _close(sd.solve(rhs), dd.solve(rhs), RTOL_PIECES)
        _close(sd.solve(rhs[:, 0]), dd.solve(rhs[:, 0]), RTOL_PIECES)
        # x = L^-T eps has covariance H^-1 exactly: L^-T L^-1 = H^-1 (a different L).
        root = sd.sample(np.eye(sd.size))
        _close(root @ root.T, h_inv, RTOL_PIECES)
        fixed = np.arange(cells.q, dd.size) if dd.size > cells.q else np.arange(3)
        _close(sd.inverse_block(fixed), h_inv[np.ix_(fixed, fixed)], RTOL_PIECES)
    # Old callers' dense Cholesky of the random-effect block.
    _close(rs.chol @ rs.chol.T, rd.chol @ rd.chol.T, RTOL_PIECES)


def test_sparse_and_dense_fits_agree() -> None:
    # The three-factor reference data (60 areas): a dense fit of the 574-level case takes
    # ~10 s, and its pieces are compared above.
    cells = three_factor_model().data.cells
    dense = fit_laplace(cells, algebra="dense")
    schur = fit_laplace(cells, algebra="schur")
    assert dense.converged and schur.converged
    _close(schur.theta, dense.theta, RTOL_PATHS)
    _close(schur.beta, dense.beta, RTOL_PATHS)
    _close(schur.deviance, dense.deviance, RTOL_PATHS)
    _close(schur.pirls.u, dense.pirls.u, RTOL_PATHS)
    _close(schur.hessian, dense.hessian, 1e-6)


@lru_cache(maxsize=1)
def _many_levels_fit() -> um.MultilevelFit:
    return many_levels_model().fit()


def test_many_levels_matches_lme4() -> None:
    fit = _many_levels_fit()
    ref = MANY["tight"]  # PIRLS converged; the default fit differs from it by < 1e-4
    assert fit.converged and not fit.singular
    fixed = ref["fixed_effects"]
    assert list(fit.fixed_effects.index) == fixed["term"]
    np.testing.assert_allclose(fit.fixed_effects["estimate"], fixed["estimate"], rtol=RTOL_FIXED)
    np.testing.assert_allclose(fit.fixed_effects["se"], fixed["se"], rtol=RTOL_FIXED)
    np.testing.assert_allclose(fit.fixed_effects["se_conditional"], fixed["se_rx"], rtol=RTOL_FIXED)
    for factor in FACTORS:
        np.testing.assert_allclose(fit.variance_components[factor], ref["variance_components"][factor],
                                   rtol=RTOL_FIXED)
        expected = ref["random_effects"][factor]
        ours = fit.random_effects[factor].loc[expected["level"]]
        np.testing.assert_allclose(ours["mode"], expected["mode"], atol=ATOL_MODE)
        np.testing.assert_allclose(ours["sd"], expected["sd"], atol=ATOL_MODE)
    assert abs(fit.loglik - ref["loglik"]) < ATOL_LOGLIK
    # and the default-tolerance glmer fit is within the same tolerances of ours
    default = MANY["default"]
    np.testing.assert_allclose(fit.fixed_effects["estimate"], default["fixed_effects"]["estimate"],
                               rtol=RTOL_FIXED)
    np.testing.assert_allclose(fit.variance_components[FACTORS],
                               [default["variance_components"][f] for f in FACTORS], rtol=RTOL_FIXED)


def test_many_levels_draws_centre_on_the_modes() -> None:
    fit = _many_levels_fit()
    draws = fit.draws(400, seed=3)
    msoa = draws["re_msoa"].values
    assert msoa.shape == (400, MANY["levels"]["msoa"])
    assert np.all(np.isfinite(msoa))
    modes = fit.random_effects["msoa"]["mode"].to_numpy()
    # The draws' means follow the conditional modes level by level; their spread is at
    # least the conditional SD (the SDs' uncertainty only adds to it).
    assert np.corrcoef(msoa.mean(axis=0), modes)[0, 1] > 0.95
    ratio = msoa.std(axis=0) / fit.random_effects["msoa"]["sd"].to_numpy()
    assert 0.85 < np.median(ratio) < 1.5
