"""Importance resampling of the draws: recorded, effective, and refused when degenerate."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import unmetneed as um
from unmetneed.errors import UnmetneedWarning
from unmetneed.mrp import draws as draws_module


def rare_outcome(seed: int = 4) -> pd.DataFrame:
    """A rare outcome (about 3%) over 30 areas and 6 age groups: a skewed posterior."""
    rng = np.random.default_rng(seed)
    n = 3000
    area = rng.integers(0, 30, n)
    age = rng.integers(0, 6, n)
    eta = -3.6 + rng.normal(0, 0.5, 30)[area] + np.linspace(-0.8, 0.8, 6)[age]
    return pd.DataFrame({"y": rng.binomial(1, 1 / (1 + np.exp(-eta))),
                         "area": [f"A{a:02d}" for a in area], "age": [f"G{g}" for g in age]})


def test_draws_record_the_importance_step() -> None:
    fit = um.MultilevelModel("y ~ 1 + (1|area) + (1|age)", data=rare_outcome()).fit()
    ds = fit.draws(500, seed=2)
    assert ds.attrs["importance_proposals"] == 500 * draws_module.IMPORTANCE_OVERSAMPLE
    assert ds.attrs["importance_resampled"] is True
    assert 0.2 * 1000 < ds.attrs["importance_ess"] <= 1000
    assert ds.sizes["draw"] == 500


def test_resampling_lowers_the_mean_of_a_rare_prevalence() -> None:
    """The Gaussian conditional overstates a rare cell's mean prevalence; the weights fix it."""
    data = rare_outcome()
    fit = um.MultilevelModel("y ~ 1 + (1|area) + (1|age)", data=data).fit()
    ds = fit.draws(4000, seed=3)
    # Prevalence of the smallest cell (area with fewest cases, first age group).
    area = data.groupby("area")["y"].sum().idxmin()
    eta = (ds["beta"].sel(term="Intercept") + ds["re_area"].sel(level_area=area)
           + ds["re_age"].sel(level_age="G0"))
    corrected = float((1 / (1 + np.exp(-eta))).mean())
    original = draws_module.IMPORTANCE_OVERSAMPLE, draws_module.MIN_RELATIVE_ESS
    try:
        draws_module.MIN_RELATIVE_ESS = 2.0  # force the uncorrected Gaussian draws
        with pytest.warns(UnmetneedWarning, match="degenerate"):
            raw = fit.draws(4000, seed=3)
    finally:
        draws_module.IMPORTANCE_OVERSAMPLE, draws_module.MIN_RELATIVE_ESS = original
    assert raw.attrs["importance_resampled"] is False
    eta_raw = (raw["beta"].sel(term="Intercept") + raw["re_area"].sel(level_area=area)
               + raw["re_age"].sel(level_age="G0"))
    gaussian = float((1 / (1 + np.exp(-eta_raw))).mean())
    # a Monte Carlo SE of each mean is below 0.5% of it; the correction is larger
    assert corrected < 0.99 * gaussian, (corrected, gaussian)
