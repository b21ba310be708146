"""read_census_table on the real ONS TS007 files in /work/shared/reference-data.

These run in addition to the fixture tests and are skipped, with the reason,
where the reference folder is absent (it is outside the repository)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from unmetneed.io import read_census_table

REFERENCE = Path("/work/shared/reference-data")
pytestmark = pytest.mark.skipif(
    not REFERENCE.is_dir(),
    reason=f"real ONS reference files not available ({REFERENCE} is absent)",
)

# Areas per file, as described in the folder's SOURCES.md.
N_AREAS = {"ltla": 331, "utla": 174, "rgn": 10, "ctry": 3}
ENGLAND_2021 = 56_490_045  # England's usual residents in TS007 (ctry file)


@pytest.mark.parametrize("geography", sorted(N_AREAS))
def test_ts007_levels_agree_and_nothing_is_double_counted(geography):
    path = REFERENCE / f"census2021-ts007-{geography}.csv"
    detailed = read_census_table(path)
    bands = read_census_table(path, level="bands")
    total = read_census_table(path, level="total")
    assert detailed.attrs["table_id"] == "ts007"
    assert detailed.attrs["inconsistencies"] == []
    assert len(detailed["age"].cat.categories) == 101
    assert len(bands["age"].cat.categories) == 11
    assert len(total) == N_AREAS[geography]
    published = total.set_index("area_code")["count"]
    for table in (detailed, bands):
        sums = table.groupby("area_code", sort=False)["count"].sum()
        pd.testing.assert_series_equal(sums, published.loc[sums.index], check_names=False)


def test_ts007_raw_columns_survive_the_reshape():
    path = REFERENCE / "census2021-ts007-ltla.csv"
    raw = pd.read_csv(path)
    tidy = read_census_table(path)
    singles = [c for c in raw.columns
               if c.removeprefix("Age: ").removesuffix("; measures: Value")
               in tidy["age"].cat.categories]
    assert len(singles) == 101
    np.testing.assert_array_equal(
        tidy["count"].to_numpy().reshape(len(raw), 101), raw[singles].to_numpy())
    assert tidy["area_code"].unique().tolist() == raw["geography code"].tolist()


def test_england_total():
    total = read_census_table(REFERENCE / "census2021-ts007-ctry.csv", level="total")
    assert total.set_index("area_code").loc["E92000001", "count"] == ENGLAND_2021
