"""The generalised variance function: exact on noiseless data, honest on bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import unmetneed as um
from unmetneed.errors import MissingColumnError, ModelError
from unmetneed.sae import smooth_variances


def test_recovers_an_exact_power_law() -> None:
    n = np.array([8, 15, 30, 60, 120, 400])
    data = pd.DataFrame({"v": 2.5 * n**-0.9, "n": n}, index=list("abcdef"))
    out = smooth_variances(data, "v", "n")
    np.testing.assert_allclose(out, data["v"], rtol=1e-12)
    assert out.attrs["smearing"] == pytest.approx(1.0, abs=1e-12)
    assert out.attrs["b"] == pytest.approx(-0.9, abs=1e-12)
    assert out.attrs["a"] == pytest.approx(np.log(2.5), abs=1e-12)
    assert list(out.index) == list("abcdef") and out.name == "v_gvf"


def test_smearing_corrects_the_log_scale_bias() -> None:
    # Multiplicative noise with E[exp(e)] = 1: Duan's smearing keeps the
    # smoothed variances unbiased on the original scale; exp(fit) alone is low.
    rng = np.random.default_rng(3)
    n = rng.integers(10, 500, size=4000)
    sd = 0.6
    v = 1.0 / n * np.exp(rng.normal(-(sd**2) / 2, sd, size=n.size))
    out = smooth_variances(pd.DataFrame({"v": v, "n": n}), "v", "n")
    ratio = out.to_numpy() * n  # the true variance is 1 / n
    assert abs(ratio.mean() - 1.0) < 0.03
    assert out.attrs["smearing"] == pytest.approx(np.exp(sd**2 / 2), rel=0.03)


def test_zero_and_missing_variances_are_smoothed_not_used() -> None:
    n = np.array([8, 15, 30, 60, 120, 400])
    v = 2.5 * n**-1.0
    data = pd.DataFrame({"v": np.r_[v[:4], 0.0, np.nan], "n": n})
    out = smooth_variances(data, "v", "n")
    assert out.attrs["areas_used"] == 4
    np.testing.assert_allclose(out, v, rtol=1e-12)


def test_feeds_a_fay_herriot_model() -> None:
    rng = np.random.default_rng(5)
    m = 30
    n = rng.integers(10, 300, size=m)
    x = rng.normal(size=m)
    v = 4.0 / n * rng.chisquare(n - 1) / (n - 1)
    data = pd.DataFrame({"area": np.arange(m), "y": 1 + x + rng.normal(0, 0.3, m), "v": v, "n": n, "x": x})
    data["v_gvf"] = smooth_variances(data, "v", "n")
    fit = um.FayHerriot(data, "y", "v_gvf", "y ~ x", "area").fit()
    assert fit.converged


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [("n", 0, "sample sizes 'n' must be > 0"), ("n", np.nan, "sample sizes"), ("v", -1.0, "must be >= 0 or NaN")],
)
def test_bad_input(column: str, value: float, message: str) -> None:
    data = pd.DataFrame({"v": [0.2, 0.1, 0.05, 0.02], "n": [10.0, 20.0, 40.0, 100.0]})
    data.loc[2, column] = value
    with pytest.raises(ModelError, match=message):
        smooth_variances(data, "v", "n")


def test_too_few_positive_variances() -> None:
    data = pd.DataFrame({"v": [0.2, 0.0, 0.0, 0.1], "n": [10, 20, 40, 100]})
    with pytest.raises(ModelError, match="at least 3 areas"):
        smooth_variances(data, "v", "n")
    with pytest.raises(MissingColumnError, match="'size'"):
        smooth_variances(data, "v", "size")
