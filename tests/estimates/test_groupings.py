"""Grouping columns the care models derive, and the default formulas that use them."""

from __future__ import annotations

import warnings

import pandas as pd
import pytest

import unmetneed as um
from unmetneed.errors import UnmetneedWarning
from unmetneed.estimates import default_formula
from unmetneed.estimates.groupings import add_grouping_columns

from .conftest import simulate_survey

ROMA = "White: Roma"
INDIAN = "Asian, Asian British or Asian Welsh: Indian"


def test_broad_group_and_interaction_are_derived() -> None:
    df = pd.DataFrame({"ethnic_group": [ROMA, INDIAN], "age_band": ["85+", "18-24"],
                       "disability": ["Not disabled", "Disabled: limited a lot"]})
    out = add_grouping_columns(df)
    assert out["ethnic_group_5"].tolist() == ["White", "Asian, Asian British or Asian Welsh"]
    assert list(out["ethnic_group_5"].cat.categories)[:2] == [
        "Asian, Asian British or Asian Welsh",
        "Black, Black British, Black Welsh, Caribbean or African"]
    assert out["age_band_disability"].tolist() == ["85+ | Not disabled",
                                                   "18-24 | Disabled: limited a lot"]
    assert "ethnic_group_5" not in df.columns  # the input is not changed


def test_nothing_is_derived_from_unknown_labels_or_kept_columns() -> None:
    df = pd.DataFrame({"ethnic_group": ["E01", ROMA]})
    assert list(add_grouping_columns(df).columns) == ["ethnic_group"]
    given = pd.DataFrame({"ethnic_group": [ROMA], "ethnic_group_5": ["my own"]})
    assert add_grouping_columns(given)["ethnic_group_5"].tolist() == ["my own"]
    missing = pd.DataFrame({"age_band": ["85+", None], "disability": ["Not disabled"] * 2})
    assert "age_band_disability" not in add_grouping_columns(missing).columns


def test_default_formula_nests_ethnic_groups_and_crosses_age_with_disability() -> None:
    cells = pd.DataFrame({"area_code": ["A", "B"], "age_band": ["85+", "18-24"],
                          "sex": ["Female", "Male"], "ethnic_group": [ROMA, INDIAN],
                          "disability": ["Not disabled"] * 2, "deprivation": [0.1, -0.2],
                          "count": [10.0, 12.0]})
    cells = add_grouping_columns(cells)
    formula = default_formula("outcome", um.PopulationFrame(cells), cells)
    assert formula == ("outcome ~ sex + deprivation + (1|area_code) + (1|age_band) + "
                       "(1|ethnic_group_5) + (1|ethnic_group) + (1|disability) + "
                       "(1|age_band_disability)")


def test_care_model_fits_and_poststratifies_with_derived_columns() -> None:
    rng_groups = [ROMA, INDIAN, "White: English, Welsh, Scottish, Northern Irish or British"]
    survey = simulate_survey(1500, seed=3)
    survey["ethnic_group"] = [rng_groups[i % 3] for i in range(len(survey))]
    survey["disability"] = ["Not disabled" if i % 4 else "Disabled: limited a lot"
                            for i in range(len(survey))]
    cells = (survey.groupby(["area_code", "age_band", "sex", "ethnic_group", "disability"])
             .size().rename("count").mul(500.0).reset_index())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnmetneedWarning)
        model = um.fit_care_model(cells, survey, draws=50, seed=1)
        by_broad = model.populations(cells, by="ethnic_group_5")
    assert "(1|ethnic_group_5)" in model.fits["need"].model.formula.text
    assert "(1|age_band_disability)" in model.fits["need"].model.formula.text
    table = by_broad.to_frame()
    assert set(table["ethnic_group_5"]) == {"White", "Asian, Asian British or Asian Welsh"}
    total = model.populations(cells, by=None).draws["need"]
    assert float(abs(by_broad.draws["need"].sum("ethnic_group_5") - total).max()) == pytest.approx(0.0, abs=1e-6)


def test_area_covariates_join_respondents_by_area() -> None:
    from unmetneed.errors import FrameError
    from unmetneed.estimates.groupings import add_area_covariates

    cells = pd.DataFrame({"area_code": ["A", "A", "B", "B"], "sex": ["F", "M", "F", "M"],
                          "owner_occupation": [0.6, 0.6, 0.7, 0.7], "share_varies": [0.1, 0.2, 0.3, 0.3],
                          "count": [10.0, 20.0, 30.0, 40.0]})
    data = pd.DataFrame({"area_code": ["B", "A", "B"], "need": [1, 0, 1]})
    out = add_area_covariates(data, cells)
    assert out["owner_occupation"].tolist() == [0.7, 0.6, 0.7]
    assert "share_varies" not in out.columns  # not one value per area: not an area covariate
    assert "count" not in out.columns and "owner_occupation" not in data.columns
    kept = add_area_covariates(data.assign(owner_occupation=0.5), cells)
    assert (kept["owner_occupation"] == 0.5).all()  # a column the survey has is kept as given
    with pytest.raises(FrameError, match=r"\['C'\]"):
        add_area_covariates(pd.DataFrame({"area_code": ["A", "C"]}), cells)
