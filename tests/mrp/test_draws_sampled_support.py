"""Three or more SDs: the draws' log-SDs come from sampled support points, not the coarse lattice.

With six SDs the lattice steps 2.5 standard units at a time; a weakly identified
SD (an ethnic factor with a handful of respondents per level) took 3-4 values,
and the effects drawn at the lowest of them were too narrow: on one shire_b
sample of the care simulation the 19 ethnic groups' need effects (true SD 0.5)
had posterior SDs of 0.11-0.20 and the ethnic SD's posterior median was 0.11;
with sampled support its median is 0.27 and its 95% quantile 0.51.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import unmetneed as um
from unmetneed.mrp import draws as draws_module

LEVELS = {"area": 25, "age": 8, "broad": 5, "group": 19, "dis": 3}


def six_factor_data(seed: int = 3) -> pd.DataFrame:
    """Binary outcome over five factors plus age x disability; ``group`` is weakly identified."""
    rng = np.random.default_rng(seed)
    n = 2500
    codes = {k: rng.integers(0, v, n) for k, v in LEVELS.items() if k != "group"}
    # 19 groups: one large, the rest with a few respondents each
    shares = np.r_[0.8, np.full(18, 0.2 / 18)]
    codes["group"] = rng.choice(19, size=n, p=shares)
    effects = {
        k: rng.normal(0, s, LEVELS[k])
        for k, s in {"area": 0.3, "age": 0.8, "broad": 0.3, "group": 0.5, "dis": 1.0}.items()
    }
    eta = -1.5 + sum(effects[k][codes[k]] for k in LEVELS)
    frame = pd.DataFrame({k: [f"{k}{c:02d}" for c in v] for k, v in codes.items()})
    frame["age_dis"] = frame["age"] + "|" + frame["dis"]
    frame["y"] = rng.binomial(1, 1 / (1 + np.exp(-eta)))
    return frame


FORMULA = "y ~ 1 + (1|area) + (1|age) + (1|broad) + (1|group) + (1|dis) + (1|age_dis)"


@pytest.fixture(scope="module")
def fit() -> um.MultilevelFit:
    with pytest.warns(um.errors.UnmetneedWarning, match="singular"):
        return um.MultilevelModel(FORMULA, data=six_factor_data()).fit()


def test_sds_take_a_continuum_of_values(fit: um.MultilevelFit) -> None:
    ds = fit.draws(400, seed=1)
    assert ds.attrs["sd_support_points"] == draws_module.SUPPORT_POINTS
    assert 0.05 * draws_module.SUPPORT_POINTS < ds.attrs["sd_support_ess"] <= draws_module.SUPPORT_POINTS
    assert "sampled from a t" in ds.attrs["method"]
    for factor in ds["factor"].values:
        values = ds["sd"].sel(factor=factor).values
        # resampled support points: many distinct values, not the 3-4 of a lattice axis
        assert np.unique(values).size >= 40, factor


def test_effects_use_the_sd_of_their_own_draw(fit: um.MultilevelFit) -> None:
    """A draw's group effects scale with its SD: the within-draw spread tracks the draw's sd."""
    ds = fit.draws(2000, seed=2)
    sd = ds["sd"].sel(factor="area").values
    spread = ds["re_area"].std(dim="level_area").values
    assert np.corrcoef(sd, spread)[0, 1] > 0.5


def test_same_seed_same_draws(fit: um.MultilevelFit) -> None:
    a, b = fit.draws(200, seed=7), fit.draws(200, seed=7)
    np.testing.assert_array_equal(a["sd"].values, b["sd"].values)
    np.testing.assert_array_equal(a["re_group"].values, b["re_group"].values)


def test_lattice_kept_for_one_or_two_sds() -> None:
    data = six_factor_data()
    fit2 = um.MultilevelModel("y ~ 1 + (1|area) + (1|age)", data=data).fit()
    ds = fit2.draws(200, seed=1)
    assert ds.attrs["sd_support_points"] == ds.attrs["grid_points"]
    assert "sampled from a t" not in ds.attrs["method"]


def test_lattice_used_when_no_sampled_point_can_be_evaluated(
    fit: um.MultilevelFit, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(draws_module, "SUPPORT_MAX_LOG_SD", -50.0)  # every sampled point refused
    with pytest.warns(um.errors.UnmetneedWarning, match="could be evaluated") as record:
        ds = fit.draws(100, seed=3)
    assert record[0].filename == __file__  # the warning points at the caller's line
    assert "sampled from a t" not in ds.attrs["method"]
    assert ds.attrs["sd_support_points"] == ds.attrs["grid_points"]
    assert np.isfinite(ds["beta"].values).all()


def test_lattice_used_when_the_sampled_support_is_degenerate(
    fit: um.MultilevelFit, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(draws_module, "MIN_SUPPORT_ESS", 1e9)  # no support is good enough
    with pytest.warns(um.errors.UnmetneedWarning, match="degenerate"):
        ds = fit.draws(100, seed=3)
    assert "sampled from a t" not in ds.attrs["method"]
    assert ds.attrs["sd_support_points"] == ds.attrs["grid_points"]
