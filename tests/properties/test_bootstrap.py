"""Properties of the Rao--Wu rescaled bootstrap (R's ``subbootstrap``).

Our bootstrap draws with numpy, so it is not compared with R's random draws
(R's own bootstrap weights are checked through ``from_replicate_weights`` in
``tests/design/test_replicate.py``). Instead we test what defines it: in every
replicate and stratum, ``n_h - 1`` PSUs are drawn with replacement and each
draw gets factor ``n_h / (n_h - 1)``; the replicate variance of a total is
unbiased for the with-replacement variance; results are reproducible from a
seed.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from unmetneed.design.replicate import (
    DEFAULT_BOOTSTRAP_REPLICATES,
    make_replicate_weights,
    replicate_variance,
)
from unmetneed.design.taylor import PSUStructure
from unmetneed.errors import DesignError, UnmetneedWarning

MAX_EXAMPLES = 50


def _design(psus_per_stratum: list[int], rows_per_psu: int = 3, seed: int = 0) -> dict:
    """Codes for a stratified clustered design, rows shuffled."""
    rng = np.random.default_rng(seed)
    n_psu = np.asarray(psus_per_stratum, dtype=np.int64)
    psu_stratum_sorted = np.repeat(np.arange(n_psu.size), n_psu)
    rows_psu = np.repeat(np.arange(psu_stratum_sorted.size), rows_per_psu)
    rows_psu = rows_psu[rng.permutation(rows_psu.size)]
    # PSU codes in order of first appearance, as SurveyDesign numbers them
    _, first = np.unique(rows_psu, return_index=True)
    order = np.argsort(first, kind="stable")
    recode = np.empty_like(order)
    recode[order] = np.arange(order.size)
    psu = recode[rows_psu]
    psu_stratum = psu_stratum_sorted[order]
    return {
        "weights": rng.uniform(1.0, 20.0, psu.size),
        "strata": psu_stratum[psu],
        "psu": psu,
        "psu_stratum": psu_stratum,
        "n_psu": n_psu,
        "popsize": np.full(n_psu.size, np.inf),
    }


def _boot(d: dict, *, lonely_psu: str = "fail", **options: object):
    structure = PSUStructure(
        d["strata"], d["psu"], d["psu_stratum"], d["n_psu"], d["popsize"], lonely_psu=lonely_psu
    )
    return make_replicate_weights(d["weights"], structure, method="bootstrap", **options)


@settings(max_examples=MAX_EXAMPLES, deadline=None)
@given(
    sizes=st.lists(st.integers(2, 7), min_size=1, max_size=6),
    n_replicates=st.integers(2, 40),
    seed=st.integers(0, 2**32 - 1),
)
def test_each_replicate_draws_n_minus_one_psus_per_stratum(
    sizes: list[int], n_replicates: int, seed: int
) -> None:
    d = _design(sizes, seed=seed % 1000)
    rw = _boot(d, n_replicates=n_replicates, seed=seed)
    n_h = d["n_psu"][d["psu_stratum"]][:, None]
    counts = rw.factors * (n_h - 1) / n_h  # draws of each PSU
    np.testing.assert_allclose(counts, np.rint(counts), atol=1e-12)
    assert (counts >= 0).all() and (counts <= n_h - 1 + 1e-12).all()
    # factors of a stratum sum to n_h in every replicate (n_h - 1 draws x n_h/(n_h - 1))
    sums = np.zeros((d["n_psu"].size, n_replicates))
    np.add.at(sums, d["psu_stratum"], rw.factors)
    np.testing.assert_allclose(sums, np.repeat(d["n_psu"][:, None], n_replicates, 1), rtol=1e-12)
    # analysis weights are the full-sample weight times the PSU's factor
    np.testing.assert_allclose(rw.weights, d["weights"][:, None] * rw.factors[d["psu"]], rtol=1e-15)
    assert rw.scale == pytest.approx(1.0 / (n_replicates - 1), rel=1e-15)
    np.testing.assert_array_equal(rw.rscales, np.ones(n_replicates))
    assert rw.method == "bootstrap" and rw.rho is None


def test_default_replicates_as_r() -> None:
    rw = _boot(_design([2, 3, 4]), seed=1)
    assert rw.n_replicates == DEFAULT_BOOTSTRAP_REPLICATES == 50
    assert rw.scale == pytest.approx(1 / 49)


def test_reproducible_from_seed_and_generator() -> None:
    d = _design([3, 2, 5, 4])
    a = _boot(d, seed=123)
    b = _boot(d, seed=123)
    c = _boot(d, seed=np.random.default_rng(123))
    other = _boot(d, seed=124)
    np.testing.assert_array_equal(a.weights, b.weights)
    np.testing.assert_array_equal(a.weights, c.weights)
    assert not np.array_equal(a.weights, other.weights)


def test_factors_have_mean_one() -> None:
    """E[f] = (n_h - 1)(1/n_h) * n_h/(n_h - 1) = 1 for every PSU."""
    d = _design([2, 3, 6])
    n_replicates = 20_000
    rw = _boot(d, n_replicates=n_replicates, seed=7)
    # each factor has variance (n_h/(n_h-1))^2 (n_h-1)(1/n_h)(1-1/n_h) = 1
    tolerance = 5.0 / np.sqrt(n_replicates)
    np.testing.assert_allclose(rw.factors.mean(axis=1), 1.0, atol=tolerance)


def test_variance_of_total_is_unbiased_for_with_replacement_variance() -> None:
    """Rao--Wu with m_h = n_h - 1: E*[(T* - T)^2] = sum_h n_h/(n_h-1) sum_j (z_hj - zbar_h)^2.

    That is the with-replacement (Taylor) variance of a total. The bootstrap
    variance (scale 1/(R-1), centred on the replicate mean) estimates it; with
    20,000 replicates its Monte Carlo relative SD is about 1-2%.
    """
    d = _design([2, 3, 4, 6, 10], rows_per_psu=4, seed=3)
    y = np.random.default_rng(11).gamma(2.0, 5.0, d["psu"].size)
    n_replicates = 20_000
    rw = _boot(d, n_replicates=n_replicates, seed=2024)
    full = np.array([d["weights"] @ y])
    reps = (y @ rw.weights)[None, :]
    boot_var = replicate_variance(full, reps, rw.scale, rw.rscales, rw.mse)[0]

    z = np.bincount(d["psu"], weights=d["weights"] * y)  # PSU totals
    n_h = d["n_psu"].astype(float)
    zbar = np.bincount(d["psu_stratum"], weights=z) / n_h
    ss = np.bincount(d["psu_stratum"], weights=(z - zbar[d["psu_stratum"]]) ** 2)
    wr_var = float(np.sum(n_h / (n_h - 1) * ss))
    assert boot_var == pytest.approx(wr_var, rel=0.06)
    # and the replicate totals are centred on the estimate
    se_mean = np.sqrt(wr_var / n_replicates)
    assert abs(reps.mean() - full[0]) < 5 * se_mean


def test_lonely_psu_fails_by_default_and_certainty_gives_factor_one() -> None:
    d = _design([3, 1, 2])
    with pytest.raises(DesignError, match="only one PSU"):
        _boot(d, seed=0)
    rw = _boot(d, seed=0, lonely_psu="certainty")
    lonely_psu = np.flatnonzero(d["psu_stratum"] == 1)
    np.testing.assert_array_equal(rw.factors[lonely_psu], 1.0)


def test_bootstrap_warns_that_fpc_is_not_used() -> None:
    d = _design([2, 3])
    d["popsize"] = np.array([10.0, 20.0])
    with pytest.warns(UnmetneedWarning, match="finite population correction not used"):
        _boot(d, seed=0)


@pytest.mark.parametrize("n_replicates", [0, 1, 2.5, True])
def test_bad_number_of_replicates(n_replicates: object) -> None:
    with pytest.raises(DesignError, match="n_replicates must be an integer >= 2"):
        _boot(_design([2, 3]), n_replicates=n_replicates, seed=0)
