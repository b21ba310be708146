"""Draws from a fitted GLMM integrate over the random-effect SDs, as MCMC does.

The posterior reference is ``tests/reference/mrp/stan.json``, written by
``tests/reference/mrp/stan.R``: ``rstanarm::stan_glmer`` with default priors
(2 chains x 1,000 post-warmup draws) on the rows dataset of ``glmm.R``. The
point estimates come from ``glmm.json`` (``lme4::glmer``). Nothing here
computes an expected value.

``fit.draws`` uses an approximation (a Laplace-integrated posterior of the
log-SDs on a grid) and is not expected to equal MCMC; the bands below say how
close "integrates over the variance parameters" must be. A method that fixed
the SDs at their estimates would have no spread in ``sd`` and fail at once.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import unmetneed as um

REFERENCE_DIR = Path(__file__).resolve().parents[1] / "reference" / "mrp"
STAN = json.loads((REFERENCE_DIR / "stan.json").read_text(encoding="utf-8"))
GLMM = json.loads((REFERENCE_DIR / "glmm.json").read_text(encoding="utf-8"))["cases"]["rows"]

FACTORS = ["area", "age_band", "ethnic_group"]
TERMS = ["Intercept", "sex[T.Male]", "deprivation"]
N_DRAWS = 2000
SEED = 1

# Bands (relative to rstanarm unless stated). rstanarm's own Monte Carlo error
# (n_eff ~ 700-900 for the SDs) is a few per cent on the tail quantiles; the
# rest of each band allows for a different approximation of the same posterior.
RTOL_SD_QUANTILE = 0.08  # 5%, 50% and 95% quantiles of each SD
RTOL_SD_SPREAD = 0.10  # posterior SD of each SD
RTOL_BETA_SPREAD = 0.25  # posterior SD of each fixed effect
RTOL_RE_SPREAD = 0.25  # posterior SD of each random intercept
# Posterior means of beta / of each random intercept: distance in posterior SDs.
BETA_MEAN_VS_GLMER = 0.2  # the draws' SD; glmer's fixef is the mode under a flat prior
RE_MEAN_VS_RSTANARM = 0.3  # rstanarm's SD of that intercept

QUANTILES = {"q05": 0.05, "q50": 0.5, "q95": 0.95}


@cache
def fitted() -> Any:
    data = pd.read_csv(REFERENCE_DIR / GLMM["data"])
    return um.MultilevelModel(STAN["python"]["formula"], data=data).fit()


@cache
def draws() -> xr.Dataset:
    """Drawn once per session; tests only read it."""
    return fitted().draws(n=N_DRAWS, seed=SEED)


def level_dim(variable: xr.DataArray) -> str:
    """The non-draw dimension of a ``re_<factor>`` variable (levels of the factor)."""
    (dim,) = [d for d in variable.dims if d != "draw"]
    return dim


# ---------------------------------------------------------------------------
# Shape of the draws
# ---------------------------------------------------------------------------
def test_draws_layout() -> None:
    ds = draws()
    assert isinstance(ds, xr.Dataset)
    assert ds["beta"].dims == ("draw", "term")
    assert ds["sd"].dims == ("draw", "factor")
    assert ds.sizes["draw"] == N_DRAWS
    assert [str(t) for t in ds["term"].values] == TERMS
    assert sorted(str(f) for f in ds["factor"].values) == sorted(FACTORS)
    for factor in FACTORS:
        variable = ds[f"re_{factor}"]
        assert variable.dims[0] == "draw" and variable.ndim == 2
        levels = [str(v) for v in variable[level_dim(variable)].values]
        assert levels == [r["level"] for r in GLMM["random_effects"][factor]], factor
    for name in ["beta", "sd", *(f"re_{f}" for f in FACTORS)]:
        assert np.all(np.isfinite(ds[name].values)), name
    assert np.all(ds["sd"].values > 0)


def test_draws_reproducible_from_seed() -> None:
    fit = fitted()
    first, again, other = fit.draws(n=50, seed=7), fit.draws(n=50, seed=7), fit.draws(n=50, seed=8)
    xr.testing.assert_identical(first, again)
    assert not np.array_equal(first["beta"].values, other["beta"].values)


# ---------------------------------------------------------------------------
# Random-effect SDs against rstanarm's sqrt(Sigma[...]) draws
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("quantile", list(QUANTILES))
@pytest.mark.parametrize("factor", FACTORS)
def test_sd_quantiles_vs_rstanarm(factor: str, quantile: str) -> None:
    ours = float(np.quantile(draws()["sd"].sel(factor=factor).values, QUANTILES[quantile]))
    ref = STAN["sd"][factor][quantile]
    assert ours == pytest.approx(ref, rel=RTOL_SD_QUANTILE), (
        f"sd[{factor}] {quantile}: ours {ours:.4f}, rstanarm {ref:.4f}"
    )


@pytest.mark.parametrize("factor", FACTORS)
def test_sd_spread_vs_rstanarm(factor: str) -> None:
    ours = float(draws()["sd"].sel(factor=factor).std(ddof=1))
    ref = STAN["sd"][factor]["sd"]
    assert ours == pytest.approx(ref, rel=RTOL_SD_SPREAD), (
        f"posterior SD of sd[{factor}]: ours {ours:.4f}, rstanarm {ref:.4f}"
    )


# ---------------------------------------------------------------------------
# Fixed effects
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("term", TERMS)
def test_beta_mean_near_glmer(term: str) -> None:
    beta = draws()["beta"].sel(term=term)
    mean, spread = float(beta.mean()), float(beta.std(ddof=1))
    ref = {r["term"]: r["estimate"] for r in GLMM["fixed_effects"]}[term]
    assert abs(mean - ref) <= BETA_MEAN_VS_GLMER * spread, (
        f"{term}: mean of draws {mean:.4f}, glmer {ref:.4f}, posterior SD {spread:.4f}"
    )


@pytest.mark.parametrize("term", TERMS)
def test_beta_spread_vs_rstanarm(term: str) -> None:
    ours = float(draws()["beta"].sel(term=term).std(ddof=1))
    ref = STAN["fixed_effects"][term]["sd"]
    assert ours == pytest.approx(ref, rel=RTOL_BETA_SPREAD), (
        f"posterior SD of {term}: ours {ours:.4f}, rstanarm {ref:.4f}"
    )


# ---------------------------------------------------------------------------
# Random intercepts per level
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("factor", FACTORS)
def test_random_intercepts_vs_rstanarm(factor: str) -> None:
    variable = draws()[f"re_{factor}"]
    dim = level_dim(variable)
    ref = pd.DataFrame(STAN["random_effects"][factor]).set_index("level")
    levels = [str(v) for v in variable[dim].values]
    assert levels == list(ref.index)
    mean = variable.mean("draw").values
    spread = variable.std("draw", ddof=1).values
    distance = np.abs(mean - ref["mean"].to_numpy()) / ref["sd"].to_numpy()
    ratio = spread / ref["sd"].to_numpy()
    worst_mean, worst_ratio = int(np.argmax(distance)), int(np.argmax(np.abs(ratio - 1)))
    assert distance.max() <= RE_MEAN_VS_RSTANARM, (
        f"{factor} level {levels[worst_mean]}: mean {mean[worst_mean]:.4f}, rstanarm "
        f"{ref['mean'].iloc[worst_mean]:.4f} (SD {ref['sd'].iloc[worst_mean]:.4f})"
    )
    np.testing.assert_allclose(
        spread, ref["sd"].to_numpy(), rtol=RTOL_RE_SPREAD,
        err_msg=f"{factor}: posterior SDs of the intercepts (worst: {levels[worst_ratio]})",
    )
