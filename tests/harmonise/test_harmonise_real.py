"""Maps and consistency checks on the real ONS files in /work/shared/reference-data.

Skipped, with the reason, where that folder is absent (it is outside the
repository); the fixture tests beside this file run everywhere."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from unmetneed.harmonise import check_consistency, harmonise
from unmetneed.io import read_census_table

REFERENCE = Path("/work/shared/reference-data")
COUNCILS = Path(__file__).resolve().parents[2] / "data" / "reference" / "councils.csv"
pytestmark = pytest.mark.skipif(
    not REFERENCE.is_dir(),
    reason=f"real ONS reference files not available ({REFERENCE} is absent)",
)

# Census 2021 cell-key perturbation is applied to each published cell, so a
# county's cell differs slightly from the sum of its districts' cells. Across
# TS007's 113 columns and 24 counties the largest difference is 27 people
# (Staffordshire, total); single-year and band cells differ by at most 12. No
# district has fewer than 49,764 residents, so a district missing from or added
# to a county would move its total by far more than this noise.
PERTURBATION_BOUND = 30
SMALLEST_DISTRICT = 49_764


@pytest.fixture
def ltla_and_utla() -> tuple[pd.DataFrame, pd.DataFrame]:
    ltla = read_census_table(REFERENCE / "census2021-ts007-ltla.csv")
    utla = read_census_table(REFERENCE / "census2021-ts007-utla.csv")
    return ltla, utla


def _wide(table: pd.DataFrame) -> pd.DataFrame:
    return table.pivot(index="area_code", columns="age", values="count")


def test_upper_tier_map_rebuilds_every_upper_tier_council(ltla_and_utla):
    ltla, utla = ltla_and_utla
    rebuilt = harmonise(ltla, "upper_tier_2021")
    assert rebuilt.columns.tolist() == ["area_code", "area_name", "age", "count"]
    mine, published = _wide(rebuilt), _wide(utla)
    assert sorted(mine.index) == sorted(published.index)  # all 174 (152 English + 22 Welsh)
    difference = mine - published.loc[mine.index]
    counties = difference.index.str.startswith("E10")
    assert counties.sum() == 24
    # councils that are their own upper tier: identical in every age column
    assert (difference.loc[~counties] == 0).all().all()
    # counties: every single-year column agrees up to perturbation noise
    assert difference.loc[counties].abs().max().max() <= PERTURBATION_BOUND
    names = rebuilt.drop_duplicates("area_code").set_index("area_code")["area_name"]
    utla_names = utla.drop_duplicates("area_code").set_index("area_code")["area_name"]
    pd.testing.assert_series_equal(names.sort_index(), utla_names.sort_index())


def test_county_totals_and_bands_agree_up_to_perturbation():
    for level in ("bands", "total"):
        ltla = read_census_table(REFERENCE / "census2021-ts007-ltla.csv", level=level)
        utla = read_census_table(REFERENCE / "census2021-ts007-utla.csv", level=level)
        rebuilt = harmonise(ltla, "upper_tier_2021")
        difference = (_wide(rebuilt) - _wide(utla).loc[_wide(rebuilt).index]).abs()
        assert difference.max().max() <= PERTURBATION_BOUND
    assert PERTURBATION_BOUND * 1000 < SMALLEST_DISTRICT
    ltla_totals = read_census_table(REFERENCE / "census2021-ts007-ltla.csv", level="total")
    districts = ltla_totals[ltla_totals["area_code"].str.startswith("E07")]
    assert districts["count"].min() == SMALLEST_DISTRICT


def test_check_consistency_reports_county_perturbation(ltla_and_utla):
    ltla, utla = ltla_and_utla
    report = check_consistency(utla, harmonise(ltla, "upper_tier_2021"))
    assert len(report) == 174
    assert report.attrs["n_equal"] == 150
    assert report.attrs["n_within_tolerance"] == 24
    assert set(report.loc[report["status"] != "equal", "area_code"].str[:3]) == {"E10"}
    assert report.attrs["max_abs_difference"] == 27
    cumbria = report.set_index("area_code").loc["E10000006"]
    assert cumbria["difference"] == -17


def test_ts038_and_ts007_totals_differ_slightly_and_are_all_reported():
    disability = pd.read_csv(REFERENCE / "england_disability_21.csv")
    ts038 = disability.drop_duplicates("ltla21_code").set_index("ltla21_code")["total_residents"]
    ts007 = read_census_table(REFERENCE / "census2021-ts007-ltla.csv", level="total")
    report = check_consistency(ts007, ts038).set_index("area_code")
    assert len(report) == 331
    assert report.loc["E06000001", "difference"] == 92_338 - 92_334  # SOURCES.md: Hartlepool
    assert (report["status"] == "missing_in_b").sum() == 22  # Wales is not in the TS038 file
    assert report.loc[report["status"] == "missing_in_b"].index.str.startswith("W06").all()
    assert report["difference"].abs().max() <= PERTURBATION_BOUND
    # the smallest council shows the largest relative difference: reported, not hidden
    flagged = report.index[report["status"] == "exceeds_tolerance"].tolist()
    assert flagged == ["E06000053"]  # Isles of Scilly, 2,058 vs 2,053


def test_councils_file_copies_the_english_rows_of_ts007_utla():
    councils = pd.read_csv(COUNCILS, dtype=str, keep_default_na=False)
    utla = pd.read_csv(REFERENCE / "census2021-ts007-utla.csv", dtype=str)
    england = utla[utla["geography code"].str.startswith("E")]
    assert dict(zip(councils["area_code"], councils["area_name"])) == dict(
        zip(england["geography code"], england["geography"]))


def test_adult_age_bands_from_real_single_years(ltla_and_utla):
    ltla, _ = ltla_and_utla
    bands = harmonise(ltla, "age_band")
    assert bands["age_band"].cat.categories.tolist()[0] == "18-24"
    totals = ltla.groupby("area_code", sort=False)["count"].sum()
    under_18 = ltla[ltla["age"].cat.codes < 18].groupby("area_code", sort=False)["count"].sum()
    adults = bands.groupby("area_code", sort=False)["count"].sum()
    np.testing.assert_array_equal(adults.to_numpy(), (totals - under_18).to_numpy())
