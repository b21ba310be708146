"""Sample support: respondents per area and cell, pooling, extrapolation flags."""

from __future__ import annotations

import numpy as np
import pytest

import unmetneed as um
from unmetneed.coverage import POOLING_THRESHOLD, coverage_gaps
from unmetneed.coverage._example import FORMULAS
from unmetneed.errors import UnmetneedWarning

from .conftest import sources


def test_respondents_per_area_and_link(report, inputs) -> None:  # type: ignore[no-untyped-def]
    support = report.support.set_index("area_code")
    survey = inputs.survey
    np.testing.assert_array_equal(support["respondents"], survey.groupby("area_code").size()
                                  .reindex(support.index))
    with_need = survey[survey["need"] == 1].groupby("area_code").size()
    np.testing.assert_array_equal(support["respondents_help"], with_need.reindex(support.index))
    assert support["respondents_council"].sum() == (survey["help"] == "paid").sum()


def test_pooling_is_the_conditional_over_the_prior_variance(report, care) -> None:  # type: ignore[no-untyped-def]
    support = report.support.set_index("area_code")
    for link, column in (("need", "pooling"), ("council", "pooling_council")):
        fit = care.fits[link]
        effects = fit.random_effects["area_code"]
        expected = (effects["sd"] / fit.variance_components["area_code"]) ** 2
        np.testing.assert_allclose(support[column], expected.reindex(support.index), rtol=1e-12)
    assert ((support["pooling"] > 0) & (support["pooling"] < 1)).all()
    assert report.support.attrs["pooling_threshold"] == POOLING_THRESHOLD == 0.9


def test_cells_with_and_without_respondents(report, inputs) -> None:  # type: ignore[no-untyped-def]
    cells = report.cell_support
    assert list(cells.columns) == ["sex", "age_band", "area_code", "population", "respondents"]
    assert len(cells) == len(inputs.frame)
    assert cells["population"].sum() == pytest.approx(inputs.frame.total)
    assert cells["respondents"].sum() == len(inputs.survey)
    support = report.support
    assert (support["cells"] == 6).all() and (support["empty_cells"] == 0).all()
    assert not support["extrapolation"].any()


@pytest.fixture(scope="module")
def thin(inputs):  # type: ignore[no-untyped-def]
    """Care estimated without one area's respondents and without one cell's."""
    survey = inputs.survey
    gone = "E06000006"
    empty = (survey["area_code"] == "E06000001") & (survey["age_band"] == "85+") & (survey["sex"] == "Male")
    kept = survey[(survey["area_code"] != gone) & ~empty]
    with pytest.warns(UnmetneedWarning, match="N\\(0, sd\\^2\\)"):
        care = um.estimate_care_populations(inputs.frame, kept, formulas=FORMULAS, draws=100, seed=1)
    return care, coverage_gaps(care, sources(inputs), census=inputs.census, population=inputs.frame,
                               seed=1)


def test_an_area_without_respondents_is_extrapolation(thin, inputs) -> None:  # type: ignore[no-untyped-def]
    _, report = thin
    support = report.support.set_index("area_code")
    row = support.loc["E06000006"]
    assert row["respondents"] == 0 and row["empty_cells"] == 6
    assert row["pooling"] == 1.0 and row["empty_cell_share"] == 1.0
    assert row["extrapolation"]
    assert not support.drop(index="E06000006")["extrapolation"].any()


def test_an_empty_cell_and_its_population_share(thin, inputs) -> None:  # type: ignore[no-untyped-def]
    _, report = thin
    row = report.support.set_index("area_code").loc["E06000001"]
    cells = inputs.frame.cells
    area = cells[cells["area_code"] == "E06000001"]
    cell = area[(area["age_band"] == "85+") & (area["sex"] == "Male")]["count"].sum()
    assert row["empty_cells"] == 1
    assert row["empty_cell_share"] == pytest.approx(cell / area["count"].sum())
    assert "0 with no respondents" not in report.summary()


def test_without_the_frame_cells_are_not_measured(care, inputs) -> None:  # type: ignore[no-untyped-def]
    report = coverage_gaps(care, sources(inputs), census=inputs.census, seed=1)
    assert report.support["empty_cell_share"].isna().all()
    assert report.cell_support["population"].isna().all()
    assert report.cell_support["respondents"].sum() == len(inputs.survey)
    assert any("population=" in note for note in report.attrs["notes"])


def test_care_for_the_whole_population(care_model, inputs) -> None:  # type: ignore[no-untyped-def]
    england = care_model.populations(inputs.frame, by=None)
    report = coverage_gaps(england, {"ascs": (inputs.ascs, "council_funded")}, by=None, seed=1)
    support = report.support
    # areas come from the models alone: sorted, population unknown
    assert support["area_code"].tolist() == sorted(inputs.survey["area_code"].unique())
    assert support["population"].isna().all()
    assert report.representativeness.empty
    assert "for the whole population" in repr(report)
