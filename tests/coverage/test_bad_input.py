"""Bad input: each error names the culprit and the fix."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import unmetneed as um
from unmetneed.coverage import coverage_gaps
from unmetneed.errors import (
    DesignError,
    FrameError,
    MarginsError,
    MissingColumnError,
    UnmetneedError,
)


def test_target_neither_care_quantity_nor_census_key(care, inputs) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(MissingColumnError, match=r"source 'ascs': target 'councl_funded' is neither") as info:
        coverage_gaps(care, {"ascs": (inputs.ascs, "councl_funded")}, census=inputs.census)
    message = str(info.value)
    assert "council_funded" in message and "unpaid_carers" in message
    assert isinstance(info.value, KeyError) and isinstance(info.value, UnmetneedError)


def test_census_target_without_census(care, inputs) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(MissingColumnError, match="no census= given"):
        coverage_gaps(care, {"sace": (inputs.sace, "unpaid_carers")})


def test_target_in_both(care, inputs) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(DesignError, match="both a care quantity and a census key"):
        coverage_gaps(care, {"ascs": (inputs.ascs, "need")}, census={"need": inputs.census["unpaid_carers"]})


def test_by_not_in_care(care, inputs) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(MissingColumnError, match=r"by variable 'age_band' is not a grouping of care.*\['area_code'\]"):
        coverage_gaps(care, {"ascs": (inputs.ascs, "council_funded")}, by="age_band")


def test_by_not_in_a_source(care, inputs) -> None:  # type: ignore[no-untyped-def]
    data = inputs.ascs.data.rename(columns={"area_code": "la"})
    design = um.SurveyDesign(data, weights="weight", strata="la", fpc="fpc")
    with pytest.raises(MissingColumnError, match="by variable 'area_code' is not a column of source 'ascs'"):
        coverage_gaps(care, {"ascs": (design, "council_funded")})


def test_missing_by_values_in_a_source(care, inputs) -> None:  # type: ignore[no-untyped-def]
    data = inputs.ascs.data.copy()
    data["region"] = "R1"
    data.loc[0, "area_code"] = None
    design = um.SurveyDesign(data, weights="weight", strata="region")
    with pytest.raises(DesignError, match="source 'ascs': by column 'area_code' has missing values"):
        coverage_gaps(care, {"ascs": (design, "council_funded")})


def test_source_groups_care_does_not_have(care, inputs) -> None:  # type: ignore[no-untyped-def]
    data = inputs.ascs.data.copy()
    data["area_code"] = data["area_code"].replace({"E06000001": "E06000999"})
    design = um.SurveyDesign(data, weights="weight")
    with pytest.raises(DesignError, match=r"source 'ascs' has respondents in groups.*'E06000999'"):
        coverage_gaps(care, {"ascs": (design, "council_funded")})


def test_census_groups_missing(care, inputs) -> None:  # type: ignore[no-untyped-def]
    short = inputs.census["unpaid_carers"].drop("E06000002")
    with pytest.raises(MarginsError, match=r"census 'unpaid_carers' does not match.*no census count: \['E06000002'\]"):
        coverage_gaps(care, {"sace": (inputs.sace, "unpaid_carers")}, census={"unpaid_carers": short})


def test_census_groups_extra(care, inputs) -> None:  # type: ignore[no-untyped-def]
    carers = inputs.census["unpaid_carers"]
    extra = pd.concat([carers, pd.Series([10], index=["W06000001"])])
    with pytest.raises(MarginsError, match=r"census groups care does not have: \['W06000001'\]"):
        coverage_gaps(care, {"sace": (inputs.sace, "unpaid_carers")}, census={"unpaid_carers": extra})


def test_census_with_other_categories(care, inputs) -> None:  # type: ignore[no-untyped-def]
    carers = inputs.census["unpaid_carers"].rename_axis("area_code").reset_index()
    long = pd.concat([carers.assign(unpaid_care="some"), carers.assign(unpaid_care="none")])
    with pytest.raises(MarginsError, match=r"census 'carers' has .* rows that repeat a group.*groupby"):
        coverage_gaps(care, {"sace": (inputs.sace, "carers")}, census={"carers": long})


def test_census_table_without_count(care, inputs) -> None:  # type: ignore[no-untyped-def]
    table = inputs.census["unpaid_carers"].rename_axis("area_code").reset_index(name="n")
    with pytest.raises(MissingColumnError, match=r"census 'carers' lacks the column\(s\) \['count'\]"):
        coverage_gaps(care, {"sace": (inputs.sace, "carers")}, census={"carers": table})


def test_census_indexed_by_something_else(care, inputs) -> None:  # type: ignore[no-untyped-def]
    carers = inputs.census["unpaid_carers"].rename_axis("la_code")
    with pytest.raises(MarginsError, match=r"indexed by \['la_code'\] but the groups are by \['area_code'\]"):
        coverage_gaps(care, {"sace": (inputs.sace, "carers")}, census={"carers": carers})


@pytest.mark.parametrize("bad", [-1.0, np.nan])
def test_census_bad_counts(care, inputs, bad) -> None:  # type: ignore[no-untyped-def]
    carers = inputs.census["unpaid_carers"].astype(float).copy()
    carers.iloc[2] = bad
    with pytest.raises(MarginsError, match=r"census 'carers' has missing, negative.*'E06000003'"):
        coverage_gaps(care, {"sace": (inputs.sace, "carers")}, census={"carers": carers})


def test_census_not_a_table(care, inputs) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(MarginsError, match="must be a pandas Series"):
        coverage_gaps(care, {"sace": (inputs.sace, "carers")}, census={"carers": [1, 2, 3]})
    with pytest.raises(DesignError, match="census must be a dict"):
        coverage_gaps(care, {"sace": (inputs.sace, "carers")}, census=[1, 2])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("sources", "match"),
    [
        ({}, "non-empty dict"),
        ([("ascs", "need")], "non-empty dict"),
        ({"ascs": "need"}, r"source 'ascs' must be a \(SurveyDesign, target\) pair"),
        ({"ascs": (pd.DataFrame(), "need")}, "the first element must be a SurveyDesign"),
        ({1: ("x", "need")}, "source names must be strings"),
    ],
)
def test_malformed_sources(care, sources, match) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(DesignError, match=match):
        coverage_gaps(care, sources)


def test_target_not_a_name(care, inputs) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(DesignError, match=r"the target must be a name"):
        coverage_gaps(care, {"ascs": (inputs.ascs, 3)})  # type: ignore[dict-item]


def test_care_must_be_care_estimates(care, inputs) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(DesignError, match="care must be the CareEstimates"):
        coverage_gaps(care.to_frame(), {"ascs": (inputs.ascs, "need")})  # type: ignore[arg-type]
    thin = um.DrawEstimates(care.draws[["need", "population"]], by=care.by)
    with pytest.raises(DesignError, match=r"care lacks the quantities \['council_funded'"):
        coverage_gaps(thin, {"ascs": (inputs.ascs, "need")})


@pytest.mark.parametrize("level", [0.0, 1.0, 95, "0.9"])
def test_bad_level(care, inputs, level) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(DesignError, match="level"):
        coverage_gaps(care, {"ascs": (inputs.ascs, "council_funded")}, level=level)


@pytest.mark.parametrize("seed", [1.5, "1", True])
def test_bad_seed(care, inputs, seed) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(DesignError, match="seed"):
        coverage_gaps(care, {"ascs": (inputs.ascs, "council_funded")}, seed=seed)


def test_bad_population(care, inputs) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(FrameError, match="population must be a PopulationFrame"):
        coverage_gaps(care, {"ascs": (inputs.ascs, "council_funded")}, population=[1])  # type: ignore[arg-type]
    cells = inputs.frame.cells.drop(columns="sex").groupby(["area_code", "age_band"], as_index=False).sum()
    with pytest.raises(FrameError, match=r"population lacks \['sex'\]"):
        coverage_gaps(care, {"ascs": (inputs.ascs, "council_funded")}, population=cells)


def test_by_named_twice(care, inputs) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(DesignError, match="twice"):
        coverage_gaps(care, {"ascs": (inputs.ascs, "council_funded")}, by=["area_code", "area_code"])
