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

