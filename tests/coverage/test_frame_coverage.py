"""Frame coverage: covered, target, uncovered and coverage with their intervals."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import unmetneed as um
from unmetneed.coverage import coverage_gaps

from .conftest import DRAWS, as_series, sources, srs_design

COLUMNS = ["area_code", "source", "target", "covered", "covered_se", "target_estimate", "uncovered",
           "uncovered_lower", "uncovered_upper", "over_count", "coverage", "coverage_lower",
           "coverage_upper", "flag"]


def test_table_has_the_contract_columns(report) -> None:  # type: ignore[no-untyped-def]
    table = report.to_frame()
    assert list(table.columns) == COLUMNS
    assert table.attrs["level"] == 0.9
    assert table.attrs["draws"] == DRAWS
    assert list(pd.unique(table["source"])) == ["ascs", "sace"]
    assert len(table) == 2 * 6


def test_covered_is_the_design_weighted_total_of_respondents(report, inputs) -> None:  # type: ignore[no-untyped-def]
    table = report.to_frame()
    ascs = table[table["source"] == "ascs"]
    by_area = inputs.ascs.data.groupby("area_code")["weight"].sum()
    np.testing.assert_allclose(as_series(ascs, "covered").reindex(by_area.index), by_area, rtol=1e-12)
    # Each stratum is an area sampled without replacement from a list of known size:
    # the area's weighted count is exact.
    np.testing.assert_allclose(ascs["covered_se"], 0.0, atol=1e-6)


def test_covered_se_is_the_design_se(care, inputs) -> None:  # type: ignore[no-untyped-def]
    design = srs_design(inputs)
    report = coverage_gaps(care, {"srs": (design, "population")}, seed=1)
    table = report.to_frame()
    direct = um.SurveyDesign(design.data.assign(one=1.0), weights="weight").total("one", by="area_code")
    np.testing.assert_allclose(as_series(table, "covered_se").reindex(direct.se.index), direct.se, rtol=1e-12)
    assert (table["covered_se"] > 0).all()


def test_target_uncovered_and_coverage_follow_their_definitions(report, care) -> None:  # type: ignore[no-untyped-def]
    table = report.to_frame()
    ascs = table[table["source"] == "ascs"].set_index("area_code")
    mean = care.draws["council_funded"].mean("draw").to_series()
    np.testing.assert_allclose(ascs["target_estimate"], mean.reindex(ascs.index), rtol=1e-12)
    gap = table["target_estimate"] - table["covered"]
    np.testing.assert_allclose(table["uncovered"], gap.clip(lower=0), rtol=1e-12)
    np.testing.assert_allclose(table["over_count"], (-gap).clip(lower=0), rtol=1e-12)
    assert (table["flag"] == np.where(gap < 0, "over_count", "ok")).all()
    np.testing.assert_allclose(table["coverage"], table["covered"] / table["target_estimate"], rtol=1e-12)
    assert (table["uncovered_lower"] <= table["uncovered"]).all()
    assert (table["uncovered"] <= table["uncovered_upper"]).all()
    assert (table["coverage_lower"] <= table["coverage"]).all()
    assert (table["coverage"] <= table["coverage_upper"]).all()


def test_coverage_interval_pairs_the_draws(care, inputs) -> None:  # type: ignore[no-untyped-def]
    """With a design SE of 0, the interval is the target's draws alone."""
    table = coverage_gaps(care, {"ascs": (inputs.ascs, "council_funded")}, seed=5).to_frame()
    ascs = table.set_index("area_code")
    draws = care.draws["council_funded"]
    covered = ascs["covered"].to_xarray()
    expected = (covered / draws).quantile([0.05, 0.95], dim="draw").to_pandas().T
    np.testing.assert_allclose(ascs["coverage_lower"], expected[0.05].reindex(ascs.index), rtol=1e-6)
    np.testing.assert_allclose(ascs["coverage_upper"], expected[0.95].reindex(ascs.index), rtol=1e-6)


def test_census_targets_are_exact(report, inputs) -> None:  # type: ignore[no-untyped-def]
    table = report.to_frame()
    sace = table[table["source"] == "sace"].set_index("area_code")
    carers = inputs.census["unpaid_carers"]
    np.testing.assert_allclose(sace["target_estimate"], carers.reindex(sace.index), rtol=0)
    # the SACE totals are exact too (areas are strata with known list sizes): no uncertainty left
    np.testing.assert_allclose(sace["coverage_lower"], sace["coverage"], rtol=1e-9)
    np.testing.assert_allclose(sace["coverage_upper"], sace["coverage"], rtol=1e-9)
    assert (sace["coverage"] < 0.25).all()  # councils know a minority of carers


def test_census_interval_comes_from_the_design_se(care, inputs) -> None:  # type: ignore[no-untyped-def]
    design = srs_design(inputs, n=2000)
    adults = inputs.frame.totals("area_code").rename("count")
    report = coverage_gaps(care, {"srs": (design, "adults")}, census={"adults": adults}, seed=3)
    table = report.to_frame().set_index("area_code")
    half = (table["coverage_upper"] - table["coverage_lower"]) / 2
    normal = stats.norm.ppf(0.95) * table["covered_se"] / table["target_estimate"]
    # 200 draws: the quantile interval is within sampling noise of the normal one
    np.testing.assert_allclose(half, normal, rtol=0.25)


def test_a_group_without_respondents_is_not_covered(care, inputs) -> None:  # type: ignore[no-untyped-def]
    data = inputs.ascs.data
    missing = "E06000003"
    design = um.SurveyDesign(data[data["area_code"] != missing], weights="weight", strata="area_code",
                             fpc="fpc")
    table = coverage_gaps(care, {"ascs": (design, "council_funded")}, seed=1).to_frame()
    row = table.set_index("area_code").loc[missing]
    assert row["covered"] == 0 and row["covered_se"] == 0 and row["coverage"] == 0
    assert row["uncovered"] == pytest.approx(row["target_estimate"])
    assert len(table) == 6  # the area is kept, not dropped


def test_seed_makes_intervals_reproducible(care, inputs) -> None:  # type: ignore[no-untyped-def]
    design = srs_design(inputs)
    first = coverage_gaps(care, {"srs": (design, "population")}, seed=11)
    again = coverage_gaps(care, {"srs": (design, "population")}, seed=11)
    other = coverage_gaps(care, {"srs": (design, "population")}, seed=12)
    pd.testing.assert_frame_equal(first.to_frame(), again.to_frame())
    assert first.attrs["seed_entropy"] == 11
    np.testing.assert_allclose(first.to_frame()["coverage"], other.to_frame()["coverage"])
    assert not np.allclose(first.to_frame()["coverage_lower"], other.to_frame()["coverage_lower"])
    unseeded = coverage_gaps(care, {"srs": (design, "population")})
    assert isinstance(unseeded.attrs["seed_entropy"], int)


def test_against_the_known_truth(care, inputs) -> None:  # type: ignore[no-untyped-def]
    """The ASCS sample covers the true council-funded population of every area."""
    truth = inputs.truth["council_funded"]
    report = coverage_gaps(care, {"ascs": (inputs.ascs, "true_council_funded")},
                           census={"true_council_funded": truth}, seed=1)
    np.testing.assert_allclose(report.to_frame()["coverage"], 1.0, atol=1e-4)


def test_overall_is_the_whole_population(report) -> None:  # type: ignore[no-untyped-def]
    overall = report.overall.set_index("source")
    table = report.to_frame()
    sums = table.groupby("source")[["covered", "target_estimate"]].sum()
    np.testing.assert_allclose(overall.loc[sums.index, "covered"], sums["covered"], rtol=1e-12)
    np.testing.assert_allclose(overall.loc[sums.index, "target_estimate"], sums["target_estimate"], rtol=1e-9)
    assert list(report.overall.columns) == COLUMNS[1:]


def test_by_none_is_the_overall_row(care, inputs, report) -> None:  # type: ignore[no-untyped-def]
    england = pd.Series([inputs.census["unpaid_carers"].sum()])
    whole = coverage_gaps(care, sources(inputs), census={"unpaid_carers": england}, by=None, seed=2)
    table = whole.to_frame()
    assert list(table.columns) == COLUMNS[1:]
    np.testing.assert_allclose(table["covered"], report.overall["covered"], rtol=1e-12)
    np.testing.assert_allclose(table["target_estimate"], report.overall["target_estimate"], rtol=1e-9)


def test_by_a_characteristic_and_a_cross(care_cross, care, inputs) -> None:  # type: ignore[no-untyped-def]
    design = srs_design(inputs)
    by_age = coverage_gaps(care_cross, {"srs": (design, "need")}, by="age_band", seed=1).to_frame()
    assert sorted(by_age["age_band"]) == ["18-64", "65-84", "85+"]
    expected = care_cross.draws["need"].sum("area_code").mean("draw").to_series()
    np.testing.assert_allclose(as_series(by_age, "target_estimate", "age_band").reindex(expected.index),
                               expected, rtol=1e-9)
    cross = coverage_gaps(care_cross, {"srs": (design, "need")}, by=["area_code", "age_band"], seed=1)
    assert len(cross.to_frame()) == 18
    # summing the cross over age gives the same areas as care by area (same draws)
    by_area = coverage_gaps(care_cross, {"srs": (design, "need")}, by="area_code", seed=1).to_frame()
    direct = coverage_gaps(care, {"srs": (design, "need")}, by="area_code", seed=1).to_frame()
    np.testing.assert_allclose(by_area["target_estimate"], direct["target_estimate"], rtol=1e-9)
    np.testing.assert_allclose(by_area["covered"], direct["covered"], rtol=1e-12)


def test_census_as_a_tidy_table(care, inputs, report) -> None:  # type: ignore[no-untyped-def]
    tidy = inputs.census["unpaid_carers"].rename_axis("area_code").reset_index()
    tidy["area_name"] = "somewhere"
    table = coverage_gaps(care, {"sace": (inputs.sace, "carers")}, census={"carers": tidy}, seed=2).to_frame()
    expected = report.to_frame().query("source == 'sace'")
    np.testing.assert_allclose(table["target_estimate"], expected["target_estimate"])


def test_level_changes_the_intervals(care, inputs) -> None:  # type: ignore[no-untyped-def]
    narrow = coverage_gaps(care, {"ascs": (inputs.ascs, "council_funded")}, level=0.5, seed=1).to_frame()
    wide = coverage_gaps(care, {"ascs": (inputs.ascs, "council_funded")}, level=0.95, seed=1).to_frame()
    assert narrow.attrs["level"] == 0.5
    assert ((wide["coverage_upper"] - wide["coverage_lower"])
            > (narrow["coverage_upper"] - narrow["coverage_lower"])).all()


def test_inputs_are_not_changed(care, inputs) -> None:  # type: ignore[no-untyped-def]
    before = inputs.ascs.data.copy()
    coverage_gaps(care, {"ascs": (inputs.ascs, "council_funded")}, seed=1)
    pd.testing.assert_frame_equal(inputs.ascs.data, before)
    assert "__unmetneed_covered__" not in inputs.ascs.data.columns


def test_an_over_count_is_flagged_never_a_negative_uncovered(care, inputs) -> None:  # type: ignore[no-untyped-def]
    # A source that counts everyone twice covers more than its target everywhere.
    design = srs_design(inputs)
    doubled = um.SurveyDesign(design.data.assign(weight=design.data["weight"] * 2.0), weights="weight")
    table = coverage_gaps(care, {"double": (doubled, "population")}, seed=1).to_frame()
    assert (table["coverage"] > 1).all()
    assert (table["flag"] == "over_count").all()
    assert (table["uncovered"] == 0).all() and (table["uncovered_lower"] >= 0).all()
    np.testing.assert_allclose(table["over_count"], table["covered"] - table["target_estimate"], rtol=1e-12)


def test_se_noise_of_an_exact_total_is_zero(report) -> None:  # type: ignore[no-untyped-def]
    # ASCS strata are areas sampled from lists of known size: their totals are exact.
    ascs = report.to_frame().query("source == 'ascs'")
    assert (ascs["covered_se"] == 0).all()
