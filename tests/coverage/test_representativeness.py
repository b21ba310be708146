"""Population-based R-indicators, partial indicators and ASMDs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import unmetneed as um
from unmetneed.coverage import ASMD_THRESHOLD, coverage_gaps
from unmetneed.errors import DesignError, MarginsError

from .conftest import srs_design


def _rows(report, source: str, scope: str) -> pd.DataFrame:  # type: ignore[no-untyped-def]
    table = report.representativeness
    return table[(table["source"] == source) & (table["scope"] == scope)]


def test_propensities_per_category(report, inputs) -> None:  # type: ignore[no-untyped-def]
    cats = _rows(report, "ascs", "category").set_index(["variable", "category"])
    data = inputs.ascs.data
    n, population = len(data), inputs.frame.total
    rate = n / population
    counts = inputs.frame.totals("age_band")
    respondents = data.groupby("age_band").size()
    expected = rate * (respondents / counts) / (n / population)
    np.testing.assert_allclose(cats.loc["age_band", "propensity"], expected.reindex(
        cats.loc["age_band"].index), rtol=1e-12)
    # their population-weighted mean is the overall rate
    ages = cats.loc["age_band"]
    assert np.sum(ages["population"] * ages["propensity"]) / population == pytest.approx(rate)


def test_partial_indicators_and_their_categories(report) -> None:  # type: ignore[no-untyped-def]
    cats = _rows(report, "ascs", "category")
    variables = _rows(report, "ascs", "variable").set_index("variable")
    head = _rows(report, "ascs", "source").iloc[0]
    population = head["population"]
    for variable, part in cats.groupby("variable"):
        deviation = part["propensity"] - head["propensity"]
        np.testing.assert_allclose(part["partial_r"], np.sqrt(part["population"] / (population - 1)) * deviation)
        p_u = np.sqrt(np.sum(part["partial_r"] ** 2))
        assert variables.loc[variable, "partial_r"] == pytest.approx(p_u)
        assert variables.loc[variable, "r_indicator"] == pytest.approx(1 - 2 * p_u)
        assert variables.loc[variable, "partial_cv"] == pytest.approx(p_u / head["propensity"])
    # the ASCS over-represents the oldest (council-funded users are old)
    ages = cats[cats["variable"] == "age_band"].set_index("category")
    assert ages.loc["85+", "partial_r"] > 0 > ages.loc["18-64", "partial_r"]


def test_joint_model_equals_weighted_least_squares(report, inputs) -> None:  # type: ignore[no-untyped-def]
    """R of the additive model: fitted by least squares over the frame's cells."""
    cells = inputs.frame.cells
    counts = inputs.frame.counts
    data = inputs.ascs.data
    x = pd.get_dummies(cells[["area_code", "age_band", "sex"]], drop_first=True).to_numpy(float)
    x = np.column_stack([np.ones(len(cells)), x])
    # respondents per cell: the response indicator summed over the cell's people
    merged = cells.merge(data.groupby(["area_code", "age_band", "sex"]).size().rename("r").reset_index(),
                         how="left", on=["area_code", "age_band", "sex"])
    r = merged["r"].fillna(0).to_numpy()
    beta = np.linalg.solve(x.T @ (counts[:, None] * x), x.T @ r)
    rho = x @ beta
    mean = len(data) / counts.sum()
    spread = np.sqrt(np.sum(counts * (rho - mean) ** 2) / (counts.sum() - 1))
    head = _rows(report, "ascs", "source").iloc[0]
    assert head["r_indicator"] == pytest.approx(1 - 2 * spread, rel=1e-10)
    assert head["cv"] == pytest.approx(spread / mean, rel=1e-8)
    # the joint model explains at least what each variable does alone
    assert head["cv"] >= _rows(report, "ascs", "variable")["cv"].max() - 1e-12


def test_one_variable_the_joint_model_is_that_variable(care, inputs) -> None:  # type: ignore[no-untyped-def]
    report = coverage_gaps(care, {"ascs": (inputs.ascs, "council_funded")}, seed=1)
    assert report.attrs["representativeness"]["reference"] == "care population"
    head = _rows(report, "ascs", "source").iloc[0]
    variable = _rows(report, "ascs", "variable").iloc[0]
    assert variable["variable"] == "area_code"
    assert head["r_indicator"] == pytest.approx(variable["r_indicator"], rel=1e-10)


def test_response_rate_scales_r_but_not_the_cv(report, care, inputs) -> None:  # type: ignore[no-untyped-def]
    scaled = coverage_gaps(care, {"ascs": (inputs.ascs, "council_funded")}, population=inputs.frame,
                           response_rates={"ascs": 0.4}, seed=1)
    head = _rows(scaled, "ascs", "source").iloc[0]
    base = _rows(report, "ascs", "source").iloc[0]
    assert head["propensity"] == 0.4
    assert head["cv"] == pytest.approx(base["cv"], rel=1e-9)
    assert head["r_indicator"] == pytest.approx(1 - 2 * 0.4 * base["cv"], rel=1e-9)
    assert scaled.attrs["representativeness"]["rate"] == {"ascs": "given response rate"}


def test_a_random_sample_is_representative(care, inputs) -> None:  # type: ignore[no-untyped-def]
    design = srs_design(inputs, n=3000)
    report = coverage_gaps(care, {"srs": (design, "population")}, population=inputs.frame,
                           response_rates={"srs": 0.5}, seed=1)
    head = _rows(report, "srs", "source").iloc[0]
    assert head["r_indicator"] > 0.9 and head["cv"] < 0.15
    assert head["asmd"] < ASMD_THRESHOLD


def test_asmd_compares_weighted_and_population_shares(report, inputs) -> None:  # type: ignore[no-untyped-def]
    cats = _rows(report, "sace", "category").set_index(["variable", "category"])
    data = inputs.sace.data
    share_w = data.groupby("sex")["weight"].sum() / data["weight"].sum()
    share = inputs.frame.totals("sex") / inputs.frame.total
    expected = (share_w - share).abs() / np.sqrt((share_w * (1 - share_w) + share * (1 - share)) / 2)
    np.testing.assert_allclose(cats.loc["sex", "asmd"], expected.reindex(cats.loc["sex"].index), rtol=1e-10)
    np.testing.assert_allclose(cats.loc["sex", "weighted_share"], share_w.reindex(cats.loc["sex"].index))


def test_unknown_category_in_a_source(care, inputs) -> None:  # type: ignore[no-untyped-def]
    data = inputs.ascs.data.copy()
    data["age_band"] = data["age_band"].replace({"85+": "85-89"})
    design = um.SurveyDesign(data, weights="weight", strata="area_code", fpc="fpc")
    with pytest.raises(MarginsError, match=r"source 'ascs'.*'age_band'.*'85-89'"):
        coverage_gaps(care, {"ascs": (design, "council_funded")}, population=inputs.frame, seed=1)


def test_missing_values_in_an_auxiliary_variable(care, inputs) -> None:  # type: ignore[no-untyped-def]
    data = inputs.ascs.data.copy()
    data["sex"] = data["sex"].astype(object)
    data.loc[3, "sex"] = None
    design = um.SurveyDesign(data, weights="weight", strata="area_code", fpc="fpc")
    with pytest.raises(DesignError, match=r"source 'ascs'.*'sex'.*missing"):
        coverage_gaps(care, {"ascs": (design, "council_funded")}, population=inputs.frame, seed=1)


@pytest.mark.parametrize("rates", [{"nope": 0.5}, {"ascs": 0.0}, {"ascs": 1.5}, [0.5]])
def test_bad_response_rates(care, inputs, rates) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(DesignError, match="response_rates"):
        coverage_gaps(care, {"ascs": (inputs.ascs, "council_funded")}, response_rates=rates, seed=1)


def test_no_common_variable_is_a_note(care, inputs) -> None:  # type: ignore[no-untyped-def]
    data = inputs.ascs.data.rename(columns={"area_code": "council"})
    design = um.SurveyDesign(data, weights="weight")
    report = coverage_gaps(care, {"x": (design, "council_funded")}, by=None, seed=1)
    assert report.representativeness.empty
    assert any("shares no variable" in note for note in report.attrs["notes"])


def test_reference_from_a_cross_of_care(care_cross, inputs) -> None:  # type: ignore[no-untyped-def]
    report = coverage_gaps(care_cross, {"ascs": (inputs.ascs, "council_funded")}, seed=1)
    variables = _rows(report, "ascs", "variable")["variable"].tolist()
    assert variables == ["area_code", "age_band"]
    with_frame = coverage_gaps(care_cross, {"ascs": (inputs.ascs, "council_funded")},
                               population=inputs.frame, seed=1)
    # the same categories and populations, whichever reference gives them
    a = _rows(report, "ascs", "category").set_index(["variable", "category"])["propensity"]
    b = _rows(with_frame, "ascs", "category").set_index(["variable", "category"])["propensity"]
    np.testing.assert_allclose(a, b.reindex(a.index), rtol=1e-9)
