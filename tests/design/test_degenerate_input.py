"""Degenerate designs give errors that say what is wrong (issue 13's probes)."""

from __future__ import annotations

import pandas as pd
import pytest

import unmetneed as um
from unmetneed.errors import DesignError


@pytest.fixture()
def df() -> pd.DataFrame:
    return pd.DataFrame({"y": [1.0, 2, 3, 4], "x": [0.0, 0, 1, 2], "w": [1.0, 2, 1, 3],
                         "g": list("aabb")})


def test_ratio_with_a_zero_denominator_total_names_the_domain(df: pd.DataFrame) -> None:
    design = um.SurveyDesign(df, weights="w")
    with pytest.raises(DesignError, match=r"denominator 'x' is 0 in domain\(s\) \['a'\]"):
        design.ratio("y", "x", by="g")
    with pytest.raises(DesignError, match="is 0 in the whole design"):
        design.assign(x=[0.0] * 4).ratio("y", "x")
    assert design.ratio("y", "x").estimate.iloc[0] == pytest.approx(20 / 7)  # sum(w y) / sum(w x)


def test_weights_whose_squares_overflow_are_refused(df: pd.DataFrame) -> None:
    with pytest.raises(DesignError, match=r"'w' has values above 1e\+100 in 1 row\(s\) \(index 0\)"):
        um.SurveyDesign(df.assign(w=[1e300, 1, 1, 1]), weights="w")
    big = um.SurveyDesign(df.assign(w=df["w"] * 1e90), weights="w")
    small = um.SurveyDesign(df, weights="w")
    assert big.mean("y").se.iloc[0] == pytest.approx(small.mean("y").se.iloc[0], rel=1e-12)


def test_a_single_psu_design_says_so(df: pd.DataFrame) -> None:
    with pytest.raises(DesignError, match=r"the design has a single PSU \(1 row\(s\)\)"):
        um.SurveyDesign(df.iloc[:1], weights="w").mean("y")


def test_repeated_column_names_are_refused(df: pd.DataFrame) -> None:
    twice = pd.concat([df[["y"]], df], axis=1)
    with pytest.raises(DesignError, match=r"repeated column names \['y'\]"):
        um.SurveyDesign(twice, weights="w")
