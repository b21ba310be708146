"""read_census_table: layouts, hierarchy, levels and bad input (fixtures)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from unmetneed.errors import (
    InconsistentTotalsWarning,
    MarginsError,
    OptionError,
    ReadError,
)
from unmetneed.io import read_census_table


def _rewrite_cell(path: Path, row: int, column: str, value: object) -> None:
    """Replace one cell of a CSV (row counts data rows from 0)."""
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    rows[row + 1][rows[0].index(column)] = str(value)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(rows)


# --- Nomis bulk layout -------------------------------------------------------


def test_nomis_detailed_is_single_years_in_published_order(nomis_ts007, census):
    path, singles = nomis_ts007()
    table = read_census_table(path)
    assert table.columns.tolist() == ["area_code", "area_name", "age", "count"]
    assert table["count"].dtype == np.int64
    age = table["age"]
    assert isinstance(age.dtype, pd.CategoricalDtype) and age.cat.ordered
    assert len(age.cat.categories) == 101
    assert age.cat.categories[0] == "Aged under 1 year"
    assert age.cat.categories[-1] == "Aged 100 years and over"
    assert table["area_code"].tolist()[::101] == [code for code, _ in census.AREAS]
    assert table["area_name"].tolist()[::101] == [name for _, name in census.AREAS]
    counts = table["count"].to_numpy().reshape(len(census.AREAS), 101)
    np.testing.assert_array_equal(counts, singles)


def test_nomis_attrs_record_table_hierarchy_and_provenance(nomis_ts007):
    path, _ = nomis_ts007()
    attrs = read_census_table(path).attrs
    assert attrs["table_id"] == "ts007"
    assert attrs["layout"] == "nomis_bulk"
    assert attrs["source"] == str(path)
    assert len(attrs["sha256"]) == 64
    assert attrs["geography"] == "Lower tier local authorities"
    assert attrs["date"] == "2021"
    assert attrs["level"] == "detailed"
    assert attrs["variable"] == "age"
    assert attrs["variable_labels"] == {"age": "Age"}
    hierarchy = attrs["hierarchy"]["age"]
    assert hierarchy["Total"] is None
    assert hierarchy["Aged 4 years and under"] == "Total"
    assert hierarchy["Aged 1 year"] == "Aged 4 years and under"
    assert hierarchy["Aged 100 years and over"] == "Aged 85 years and over"
    assert attrs["intervals"]["age"]["Aged 85 years and over"] == [85.0, None]
    assert attrs["intervals"]["age"]["Aged 10 to 15 years"] == [10.0, 15.0]
    assert attrs["total_category"] == {"age": "Total"}
    assert attrs["inconsistencies"] == []


def test_nomis_bands_and_total_levels(nomis_ts007, census):
    path, singles = nomis_ts007()
    bands = read_census_table(path, level="bands")
    assert bands["age"].cat.categories.tolist() == [label for label, _, _ in census.TS007_BANDS]
    first = bands[bands["area_code"] == census.AREAS[0][0]]
    first = dict(zip(first["age"].astype(str), first["count"]))
    for label, lo, hi in census.TS007_BANDS:
        assert first[label] == singles[0, lo:(hi if hi is not None else 100) + 1].sum()
    total = read_census_table(path, level="total")
    assert total["age"].cat.categories.tolist() == ["Total"]
    np.testing.assert_array_equal(total["count"], singles.sum(axis=1))
    assert total.attrs["level"] == "total"


def test_every_level_sums_to_the_same_total(nomis_ts007):
    # never double count: each level is one partition of the population
    path, singles = nomis_ts007()
    for level in ("detailed", "bands", "total"):
        table = read_census_table(path, level=level)
        sums = table.groupby("area_code", sort=False)["count"].sum()
        np.testing.assert_array_equal(sums.to_numpy(), singles.sum(axis=1))


def test_measures_suffix_is_optional(nomis_ts007):
    with_suffix, _ = nomis_ts007("census2021-ts007-ltla.csv", suffix=True)
    without, _ = nomis_ts007("census2021-ts007-utla.csv", suffix=False, quote_all=False)
    a, b = read_census_table(with_suffix), read_census_table(without)
    pd.testing.assert_frame_equal(a, b)
    assert b.attrs["geography"] == "Upper tier local authorities"


def test_total_disagreeing_with_its_parts_raises_naming_area_and_difference(nomis_ts007):
    path, singles = nomis_ts007()
    published = int(singles[1].sum())
    _rewrite_cell(path, 1, "Age: Total; measures: Value", published + 7)
    with pytest.raises(MarginsError, match=r"E06000002.*'Total'.*difference -7") as info:
        read_census_table(path)
    differences = info.value.differences
    assert differences[["area_code", "category", "difference"]].values.tolist() == [
        ["E06000002", "Total", -7]
    ]


def test_subtotal_mismatch_can_be_read_with_a_warning(nomis_ts007):
    path, singles = nomis_ts007()
    _rewrite_cell(path, 2, "Age: Aged 10 to 15 years; measures: Value",
                  int(singles[2, 10:16].sum()) - 3)
    with pytest.warns(InconsistentTotalsWarning, match="E07000026"):
        table = read_census_table(path, on_inconsistent="warn")
    # the band disagrees with its years, and the total with its bands
    band = int(singles[2, 10:16].sum())
    total = int(singles[2].sum())
    assert table.attrs["inconsistencies"] == [
        {"area_code": "E07000026", "variable": "age", "category": "Total",
         "published": total, "sum_of_parts": total - 3, "difference": -3},
        {"area_code": "E07000026", "variable": "age", "category": "Aged 10 to 15 years",
         "published": band - 3, "sum_of_parts": band, "difference": 3},
    ]
    np.testing.assert_array_equal(table["count"].to_numpy().reshape(3, 101), singles)


def test_non_numeric_count_is_refused_naming_area_and_column(nomis_ts007):
    path, _ = nomis_ts007()
    _rewrite_cell(path, 0, "Age: Aged 7 years; measures: Value", "c")
    with pytest.raises(ReadError, match=r"E06000001.*Aged 7 years.*'c'"):
        read_census_table(path)


def test_negative_count_is_refused(nomis_ts007):
    path, _ = nomis_ts007()
    _rewrite_cell(path, 0, "Age: Aged 7 years; measures: Value", "-1")
    with pytest.raises(ReadError, match="non-negative whole-number"):
        read_census_table(path)


def test_duplicated_area_row_is_refused(nomis_ts007, census):
    path, _ = nomis_ts007(areas=[census.AREAS[0], census.AREAS[1], census.AREAS[0]])
    with pytest.raises(ReadError, match=r"more than one row.*E06000001"):
        read_census_table(path)


def test_band_not_covered_by_its_years_is_refused(tmp_path, census):
    header = ["date", "geography", "geography code", "Age: Total", "Age: Aged 4 years and under",
              "Age: Aged under 1 year", "Age: Aged 1 year", "Age: Aged 3 years",
              "Age: Aged 4 years"]
    row = ["2021", "A", "E06000001", 10, 10, 1, 2, 3, 4]
    path = census.write_csv(tmp_path / "t.csv", header, [row])
    with pytest.raises(ReadError, match=r"Aged 4 years and under.*missing \[2, 2\]"):
        read_census_table(path)


def test_overlapping_categories_are_refused(tmp_path, census):
    header = ["date", "geography", "geography code", "Age: Total", "Age: Aged 0 to 9 years",
              "Age: Aged 5 to 14 years"]
    path = census.write_csv(tmp_path / "t.csv", header, [["2021", "A", "E06000001", 10, 4, 6]])
    with pytest.raises(ReadError, match="overlap"):
        read_census_table(path)


def _ts021_nomis(tmp_path: Path, census) -> tuple[Path, np.ndarray]:
    """Nomis bulk TS021 layout: no measures suffix, hierarchy written as paths."""
    groups: dict[str, list[str]] = {}
    for label in census.ETHNIC_LABELS[1:]:
        group = label.split(": ")[0]
        groups.setdefault(group, []).append(label)
    rng = np.random.default_rng(3)
    detailed = rng.integers(0, 900, size=(2, 19))
    header = ["date", "geography", "geography code", "Ethnic group: Total: All usual residents"]
    rows = [["2021", name, code, int(detailed[i].sum())]
            for i, (code, name) in enumerate(census.AREAS[:2])]
    k = 0
    for group, members in groups.items():
        header.append(f"Ethnic group: {group}")
        for i in range(2):
            rows[i].append(int(detailed[i, k:k + len(members)].sum()))
        for label in members:
            header.append(f"Ethnic group: {label}")
            for i in range(2):
                rows[i].append(int(detailed[i, k]))
            k += 1
    return census.write_csv(tmp_path / "census2021-ts021-ltla.csv", header, rows), detailed


def test_path_hierarchy_of_ts021_gives_19_groups_and_5_bands(tmp_path, census):
    path, detailed = _ts021_nomis(tmp_path, census)
    table = read_census_table(path)
    assert table.columns.tolist() == ["area_code", "area_name", "ethnic_group", "count"]
    assert table["ethnic_group"].cat.categories.tolist() == census.ETHNIC_LABELS[1:]
    np.testing.assert_array_equal(table["count"].to_numpy().reshape(2, 19), detailed)
    bands = read_census_table(path, level="bands")
    assert bands["ethnic_group"].cat.categories.tolist() == [
        "Asian, Asian British or Asian Welsh",
        "Black, Black British, Black Welsh, Caribbean or African",
        "Mixed or Multiple ethnic groups", "White", "Other ethnic group"]
    assert table.attrs["total_category"] == {"ethnic_group": "Total: All usual residents"}


def test_hours_intervals_of_ts039_nest_without_paths(tmp_path, census):
    header = ["date", "geography", "geography code",
              "Provision of unpaid care: Total: All usual residents aged 5 and over",
              "Provision of unpaid care: Provides no unpaid care",
              "Provision of unpaid care: Provides 19 hours or less unpaid care a week",
              "Provision of unpaid care: Provides 9 hours or less unpaid care a week",
              "Provision of unpaid care: Provides 10 to 19 hours unpaid care a week",
              "Provision of unpaid care: Provides 20 to 49 hours unpaid care a week",
              "Provision of unpaid care: Provides 20 to 34 hours unpaid care a week",
              "Provision of unpaid care: Provides 35 to 49 hours unpaid care a week",
              "Provision of unpaid care: Provides 50 or more hours unpaid care a week"]
    row = ["2021", "A", "E06000001", 100, 80, 12, 7, 5, 5, 3, 2, 3]
    path = census.write_csv(tmp_path / "census2021-ts039-ltla.csv", header, [row])
    table = read_census_table(path)
    assert table.columns[2] == "unpaid_care"
    assert table["unpaid_care"].cat.categories.tolist() == [
        "Provides no unpaid care", "Provides 9 hours or less unpaid care a week",
        "Provides 10 to 19 hours unpaid care a week", "Provides 20 to 34 hours unpaid care a week",
        "Provides 35 to 49 hours unpaid care a week",
        "Provides 50 or more hours unpaid care a week"]
    assert table["count"].tolist() == [80, 7, 5, 3, 2, 3]
    assert read_census_table(path, level="bands")["count"].tolist() == [80, 12, 5, 3]


def test_level_and_option_values_are_checked(nomis_ts007):
    path, _ = nomis_ts007()
    with pytest.raises(OptionError, match="'detailed', 'bands', 'total'"):
        read_census_table(path, level="single")  # type: ignore[arg-type]
    with pytest.raises(OptionError, match="'raise', 'warn'"):
        read_census_table(path, on_inconsistent="ignore")  # type: ignore[arg-type]


def test_variable_renames_the_category_column(nomis_ts007):
    path, _ = nomis_ts007()
    table = read_census_table(path, variable="age_single_year", table_id="ts007x")
    assert table.columns[2] == "age_single_year"
    assert table.attrs["table_id"] == "ts007x"
    with pytest.raises(ReadError, match="clash"):
        read_census_table(path, variable="count")


def test_unknown_layout_names_columns_seen_and_expected(tmp_path, census):
    path = census.write_csv(tmp_path / "t.csv", ["la", "age", "n"], [["E06000001", "18-24", 5]])
    with pytest.raises(ReadError) as info:
        read_census_table(path)
    message = str(info.value)
    assert "columns seen ['la', 'age', 'n']" in message
    assert "geography code" in message and "Observation" in message


def test_unrecognised_nomis_category_column_is_named(tmp_path, census):
    header = ["date", "geography", "geography code", "Age: Total", "Something else"]
    path = census.write_csv(tmp_path / "t.csv", header, [["2021", "A", "E06000001", 1, 1]])
    with pytest.raises(ReadError, match="'Something else'"):
        read_census_table(path)


def test_missing_file_and_empty_file(tmp_path, census):
    with pytest.raises(ReadError, match="file not found"):
        read_census_table(tmp_path / "nope.csv")
    header = ["date", "geography", "geography code", "Age: Total"]
    path = census.write_csv(tmp_path / "empty.csv", header,
                     [])
    with pytest.raises(ReadError, match="no rows"):
        read_census_table(path)


# --- ONS custom-dataset layout --------------------------------------------------


def test_custom_dataset_ethnic_group_20(custom_ts021, census):
    path, counts = custom_ts021()
    table = read_census_table(path)
    assert table.columns.tolist() == ["area_code", "area_name", "ethnic_group", "count"]
    assert table["ethnic_group"].cat.categories.tolist() == census.ETHNIC_LABELS
    assert table["ethnic_group"].cat.ordered
    np.testing.assert_array_equal(table["count"].to_numpy().reshape(3, 20), counts)
    attrs = table.attrs
    assert attrs["layout"] == "ons_custom"
    assert attrs["table_id"] == "ts021"
    assert attrs["geography"] == "Lower tier local authorities"
    assert attrs["variable_labels"] == {"ethnic_group": "Ethnic group (20 categories)"}
    assert attrs["category_codes"]["ethnic_group"]["Does not apply"] == -8
    assert attrs["category_codes"]["ethnic_group"]["White: Roma"] == 16
    assert attrs["total_category"] == {"ethnic_group": None}


def test_custom_dataset_total_level_is_computed(custom_ts021):
    path, counts = custom_ts021()
    table = read_census_table(path, level="total")
    assert table["ethnic_group"].cat.categories.tolist() == ["Total"]
    np.testing.assert_array_equal(table["count"], counts.sum(axis=1))
    # without subtotals, the bands are the categories themselves
    assert len(read_census_table(path, level="bands")) == 60


def test_custom_dataset_capitalisation_varies(tmp_path, census):
    header = ["Lower Tier Local Authorities Code", "Lower Tier Local Authorities",
              "Ethnic group (20 categories) Code", "ethnic group (20 categories)", "observation"]
    rows = [["E06000001", "Hartlepool", code, label, 10] for code, label in census.ETHNIC_GROUP_20]
    table = read_census_table(census.write_csv(tmp_path / "custom.csv", header, rows))
    assert table["count"].sum() == 200
    assert table.attrs["table_id"] is None


def test_custom_dataset_without_area_names(tmp_path, census):
    header = ["Lower tier local authorities Code", "Sex (2 categories) Code",
              "Sex (2 categories)", "Observation"]
    rows = [["E06000001", 1, "Female", 3], ["E06000001", 2, "Male", 4]]
    table = read_census_table(census.write_csv(tmp_path / "custom.csv", header, rows))
    assert table.columns.tolist() == ["area_code", "area_name", "sex", "count"]
    assert table["area_name"].isna().all()
    assert table["sex"].cat.categories.tolist() == ["Female", "Male"]


def test_custom_dataset_with_two_variables(tmp_path, census):
    header = ["Lower tier local authorities Code", "Lower tier local authorities",
              "Age (B) (3 categories) Code", "Age (B) (3 categories)",
              "Sex (2 categories) Code", "Sex (2 categories)", "Observation"]
    ages = [(1, "Aged 17 years and under"), (2, "Aged 18 to 64 years"),
            (3, "Aged 65 years and over")]
    rows = [["E06000001", "Hartlepool", a, al, s, sl, 10 * a + s]
            for a, al in ages for s, sl in [(1, "Female"), (2, "Male")]]
    table = read_census_table(census.write_csv(tmp_path / "custom.csv", header, rows))
    assert table.columns.tolist() == ["area_code", "area_name", "age", "sex", "count"]
    assert table["count"].tolist() == [11, 12, 21, 22, 31, 32]
    total = read_census_table(tmp_path / "custom.csv", level="total")
    assert total["count"].tolist() == [11 + 12 + 21 + 22 + 31 + 32]
    with pytest.raises(ReadError, match="2 variables"):
        read_census_table(tmp_path / "custom.csv", variable="x")
    renamed = read_census_table(tmp_path / "custom.csv",
                                variable={"Age (B) (3 categories)": "age_b"})
    assert renamed.columns.tolist() == ["area_code", "area_name", "age_b", "sex", "count"]


def test_custom_dataset_duplicated_rows_are_refused(custom_ts021):
    path, _ = custom_ts021()
    with open(path, encoding="utf-8") as handle:
        lines = handle.read().splitlines()
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("\n".join([*lines, lines[5]]) + "\n")
    with pytest.raises(ReadError, match=r"repeat an area and category.*E06000001"):
        read_census_table(path)


def test_custom_dataset_non_numeric_observation_is_refused(custom_ts021):
    path, _ = custom_ts021()
    _rewrite_cell(path, 4, "Observation", "x")
    with pytest.raises(ReadError, match=r"'Observation'.*Pakistani.*'x'"):
        read_census_table(path)


def test_custom_dataset_missing_cell_is_refused(custom_ts021):
    path, _ = custom_ts021()
    with open(path, encoding="utf-8") as handle:
        lines = handle.read().splitlines()
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines[:-1]) + "\n")
    with pytest.raises(ReadError, match=r"E07000026 \(19 rows\)"):
        read_census_table(path)


def test_custom_dataset_label_with_two_codes_is_refused(tmp_path, census):
    header = ["Lower tier local authorities Code", "Lower tier local authorities",
              "Sex (2 categories) Code", "Sex (2 categories)", "Observation"]
    rows = [["E06000001", "A", 1, "Female", 3], ["E06000001", "A", 2, "Female ", 4]]
    with pytest.raises(ReadError):
        read_census_table(census.write_csv(tmp_path / "custom.csv", header, rows))


def test_custom_dataset_variable_without_label_column_is_refused(tmp_path, census):
    header = ["Lower tier local authorities Code", "Lower tier local authorities",
              "Sex (2 categories) Code", "Observation"]
    rows = [["E06000001", "A", 1, 3]]
    with pytest.raises(ReadError, match="no label"):
        read_census_table(census.write_csv(tmp_path / "custom.csv", header, rows))
