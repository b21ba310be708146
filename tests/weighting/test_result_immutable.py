"""A WeightingResult and its report cannot be changed after the fact (issue 16)."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest

import unmetneed as um


def _result() -> um.WeightingResult:
    survey = um.datasets.load_example_survey()
    design = um.SurveyDesign(survey, weights="weight", strata="stratum", clusters="psu", nest=True)
    margins = um.Margins({"sex": pd.Series({"Female": 5.0e5, "Male": 4.8e5})})
    return um.rake(design, margins)


def test_report_tables_are_copies() -> None:
    result = _result()
    report = result.report
    before = report.margin_fit
    edited = report.margin_fit
    edited["after"] = 0.0
    summary = report.weights_after
    summary["min"] = -1.0
    table = report.to_frame()
    table["target"] = 0.0
    pd.testing.assert_frame_equal(before, report.margin_fit)
    assert report.weights_after["min"] > 0


def test_report_arrays_and_fields_are_frozen() -> None:
    result = _result()
    with pytest.raises(ValueError, match="read-only"):
        result.report.after[0] = 0.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.report.method = "other"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.design = result.design  # type: ignore[misc]
    with pytest.raises(TypeError):
        result.report.options["tol"] = 1.0  # type: ignore[index]
    assert isinstance(result.report.adjustments, tuple)


def test_editing_the_weighted_designs_data_changes_nothing() -> None:
    result = _result()
    before = result.design.mean("need").to_frame()
    data = result.design.data
    data["need"] = 1.0
    pd.testing.assert_frame_equal(before, result.design.mean("need").to_frame())


def test_margins_hand_out_copies() -> None:
    sex = pd.Series({"Female": 5.0e5, "Male": 4.8e5})
    margins = um.Margins({"sex": sex})
    sex.iloc[0] = 1.0
    shown = margins["sex"]
    shown.iloc[1] = 2.0
    assert margins["sex"].tolist() == [5.0e5, 4.8e5]
