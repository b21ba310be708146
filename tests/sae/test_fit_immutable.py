"""A FayHerriot model and its fit cannot be changed after the fact (issue 16)."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest

import unmetneed as um


def _data() -> pd.DataFrame:
    return pd.DataFrame({"area": list("ABCDEF"),
                         "y": [1.2, 2.3, 1.9, 3.1, 2.2, 2.8],
                         "v": [0.2, 0.5, 0.3, 0.4, 0.1, 0.6],
                         "x": [1.0, 2.0, 1.5, 3.0, 2.0, 2.5]})


def test_editing_the_callers_frame_changes_nothing() -> None:
    data = _data()
    model = um.FayHerriot(data, "y", "v", "y ~ x", "area")
    before = model.fit().to_frame()
    data["y"] = 0.0
    data.loc[:, "v"] = 9.0
    data["x"] = 1.0
    pd.testing.assert_frame_equal(before, model.fit().to_frame())


def test_editing_results_changes_nothing() -> None:
    fit = um.FayHerriot(_data(), "y", "v", "y ~ x", "area").fit()
    before = fit.to_frame()
    fixed = fit.fixed_effects
    fixed["estimate"] = 0.0
    table = fit.to_frame()
    table["estimate"] = 0.0
    vcov = fit.vcov()
    vcov.iloc[0, 0] = 0.0
    pd.testing.assert_frame_equal(before, fit.to_frame())
    with pytest.raises(ValueError, match="read-only"):
        fit.eblup[0] = 0.0
    with pytest.raises(ValueError, match="read-only"):
        fit.benchmark(10.0).benchmarking.weights[0] = 0.0  # type: ignore[union-attr]
    with pytest.raises(dataclasses.FrozenInstanceError):
        fit.sigma2 = 0.0  # type: ignore[misc]


def test_reml_converges_where_scoring_would_swing_across_the_maximum() -> None:
    """A case hypothesis found: expected-information steps overshoot the REML maximum.

    Fisher scoring from 0 jumps to 0.049 and back; with a likelihood slack the
    halved steps swung across the maximum for 1,000 iterations.
    """
    data = pd.DataFrame({
        "area": [f"A{i:03d}" for i in range(19)],
        "y": [2.178353, 2.423006, 1.657034, 0.859458, 2.415632, 2.765513, 0.354885, 1.407580,
              2.288068, 2.003939, 2.392374, 2.963427, 1.349634, 2.229329, 3.213470, 2.190119,
              0.409072, 2.234620, 1.560795],
        "v": [0.167339, 1.583796, 0.181881, 0.467038, 4.575562, 4.190679, 1.407829, 0.604538,
              0.178959, 0.104779, 4.353322, 0.538403, 0.085251, 0.882977, 1.787871, 0.841350,
              3.416374, 0.060001, 0.570359],
        "x": [0.345584, 0.821618, 0.330437, -1.303157, 0.905356, 0.446375, -0.536953, 0.581118,
              0.364572, 0.294132, 0.028422, 0.546713, -0.736454, -0.162910, -0.482119, 0.598846,
              0.039722, -0.292457, -0.781908],
    })
    fit = um.FayHerriot(data, "y", "v", "y ~ x", "area").fit()
    assert fit.converged and fit.iterations < 50
    assert fit.sigma2 == pytest.approx(0.0221570, rel=1e-4)
