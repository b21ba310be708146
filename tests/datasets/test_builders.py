"""datasets builds designs and frames through builders the higher layers register (issue 16)."""

from __future__ import annotations

import pandas as pd
import pytest

import unmetneed as um
from unmetneed.datasets import builders
from unmetneed.errors import OptionError, UnmetneedError


def test_design_and_mrp_register_their_classes():
    # importing unmetneed imports design and mrp, which register before any loader runs
    assert builders._BUILDERS["survey_design"] is um.SurveyDesign
    assert builders._BUILDERS["population_frame"] is um.PopulationFrame
    cells = pd.DataFrame({"area_code": ["A", "B"], "count": [10, 20]})
    assert isinstance(builders.build_population_frame(cells), um.PopulationFrame)
    survey = um.datasets.load_example_survey()
    design = builders.build_survey_design(survey, weights="weight", strata="stratum")
    assert isinstance(design, um.SurveyDesign)


@pytest.mark.parametrize(("kind", "owner"), [("survey_design", "unmetneed.design"),
                                             ("population_frame", "unmetneed.mrp")])
def test_a_missing_builder_names_the_module_to_import(monkeypatch, kind, owner):
    monkeypatch.delitem(builders._BUILDERS, kind)
    with pytest.raises(UnmetneedError, match=f"import {owner}"):
        um.datasets.load_synthetic_england(verify=False)


def test_register_builder_refuses_an_unknown_kind_or_a_non_callable():
    with pytest.raises(OptionError, match="survey_design"):
        builders.register_builder("design", um.SurveyDesign)  # type: ignore[call-overload]
    with pytest.raises(UnmetneedError, match="callable"):
        builders.register_builder("survey_design", "SurveyDesign")  # type: ignore[arg-type]
    assert builders._BUILDERS["survey_design"] is um.SurveyDesign
