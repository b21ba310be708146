"""A design and its estimates cannot be changed after the fact (issue 16).

Each test edits what a caller can reach (their own frame, ``design.data``,
the arrays and tables handed back) and checks that the estimates do not move.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import unmetneed as um


def _survey() -> pd.DataFrame:
    return um.datasets.load_example_survey()


def _design(df: pd.DataFrame) -> um.SurveyDesign:
    return um.SurveyDesign(df, weights="weight", strata="stratum", clusters="psu", nest=True)


def test_editing_the_callers_frame_changes_nothing() -> None:
    df = _survey()
    design = _design(df)
    before = design.mean("need", by="sex").to_frame()
    df["need"] = 1.0
    df.loc[:, "weight"] = 7.0
    df["sex"] = "Female"
    after = design.mean("need", by="sex").to_frame()
    pd.testing.assert_frame_equal(before, after)


def test_editing_design_data_changes_nothing() -> None:
    design = _design(_survey())
    before = design.mean("need").to_frame()
    data = design.data
    data["need"] = 1.0
    data.loc[:, "weight"] = 7.0
    data.iloc[0, 0] = data.iloc[1, 0]
    pd.testing.assert_frame_equal(before, design.mean("need").to_frame())
    assert not design.data.equals(data)


def test_assigned_arrays_are_copied() -> None:
    design = _design(_survey())
    values = np.ones(design.n)
    extended = design.assign(one=values)
    values[:] = 5.0
    assert extended.mean("one").estimate.iloc[0] == pytest.approx(1.0)


def test_weights_and_structure_are_read_only() -> None:
    design = _design(_survey())
    with pytest.raises(ValueError, match="read-only"):
        design.weights[0] = 1.0
    with pytest.raises(ValueError, match="read-only"):
        design.structure.psu[0] = 0
    jk = design.replicate("jkn")
    with pytest.raises(ValueError, match="read-only"):
        jk.replicate_weights[0, 0] = 1.0
    with pytest.raises(AttributeError, match="immutable"):
        design.nest = True  # type: ignore[misc]


def test_editing_an_estimates_frame_or_series_changes_nothing() -> None:
    est = _design(_survey()).mean("need", by="sex")
    before = est.to_frame()
    table = est.to_frame()
    table["estimate"] = 0.0
    table.loc[:, "se"] = 0.0
    series = est.estimate
    series.iloc[0] = 99.0
    counts = est.n
    counts.iloc[0] = -1
    vcov = est.vcov()
    vcov.iloc[0, 0] = 99.0
    pd.testing.assert_frame_equal(before, est.to_frame())
    assert est.vcov().iloc[0, 0] == pytest.approx(est.se.iloc[0] ** 2)


def test_estimates_attributes_cannot_be_set() -> None:
    est = _design(_survey()).mean("need")
    with pytest.raises(AttributeError, match="immutable"):
        est.level = 0.5  # type: ignore[misc]
    with pytest.raises(AttributeError, match="immutable"):
        est._estimate = np.zeros(1)
    with pytest.raises(TypeError):
        est.info["statistic"] = "other"  # type: ignore[index]
