"""harmonise and the shipped category maps (in-memory fixtures)."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from unmetneed.errors import MarginsError, MissingColumnError
from unmetneed.harmonise import CategoryMap, categories, harmonise, list_maps, load_map

COUNCILS = Path(__file__).resolve().parents[2] / "data" / "reference" / "councils.csv"

AGE_BANDS = ["18-24", "25-34", "35-44", "45-54", "55-64", "65-74", "75-84", "85+"]

ETHNIC_20 = [
    "Does not apply",
    "Asian, Asian British or Asian Welsh: Bangladeshi",
    "Asian, Asian British or Asian Welsh: Chinese",
    "Asian, Asian British or Asian Welsh: Indian",
    "Asian, Asian British or Asian Welsh: Pakistani",
    "Asian, Asian British or Asian Welsh: Other Asian",
    "Black, Black British, Black Welsh, Caribbean or African: African",
    "Black, Black British, Black Welsh, Caribbean or African: Caribbean",
    "Black, Black British, Black Welsh, Caribbean or African: Other Black",
    "Mixed or Multiple ethnic groups: White and Asian",
    "Mixed or Multiple ethnic groups: White and Black African",
    "Mixed or Multiple ethnic groups: White and Black Caribbean",
    "Mixed or Multiple ethnic groups: Other Mixed or Multiple ethnic groups",
    "White: English, Welsh, Scottish, Northern Irish or British",
    "White: Irish",
    "White: Gypsy or Irish Traveller",
    "White: Roma",
    "White: Other White",
    "Other ethnic group: Arab",
    "Other ethnic group: Any other ethnic group",
]


def _single_year_label(age: int) -> str:
    return {0: "Aged under 1 year", 1: "Aged 1 year", 100: "Aged 100 years and over"}.get(
        age, f"Aged {age} years")


def _ages(n_areas: int = 2, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """A tidy single-year table as read_census_table returns it."""
    counts = np.random.default_rng(seed).integers(0, 1000, size=(n_areas, 101))
    labels = [_single_year_label(a) for a in range(101)]
    codes = [f"E0600000{i + 1}" for i in range(n_areas)]
    frame = pd.DataFrame({
        "area_code": np.repeat(codes, 101),
        "area_name": np.repeat([f"Area {i}" for i in range(n_areas)], 101),
        "age": pd.Categorical(np.tile(labels, n_areas), categories=labels, ordered=True),
        "count": counts.ravel(),
    })
    frame.attrs = {"table_id": "ts007", "level": "detailed"}
    return frame, counts


def _ethnic(seed: int = 1) -> pd.DataFrame:
    counts = np.random.default_rng(seed).integers(0, 500, size=20)
    counts[0] = 7  # "Does not apply" (zero in real tables; non-zero here to see it recorded)
    return pd.DataFrame({
        "area_code": "E06000001",
        "ethnic_group": pd.Categorical(ETHNIC_20, categories=ETHNIC_20, ordered=True),
        "count": counts,
    })


def test_single_years_to_age_bands():
    frame, counts = _ages()
    out = harmonise(frame, "age_band")
    assert out.columns.tolist() == ["area_code", "area_name", "age_band", "count"]
    assert out["age_band"].cat.categories.tolist() == AGE_BANDS
    assert out["age_band"].cat.ordered
    expected = [counts[:, lo:hi + 1].sum(axis=1) for lo, hi in
                [(18, 24), (25, 34), (35, 44), (45, 54), (55, 64), (65, 74), (75, 84), (85, 100)]]
    np.testing.assert_array_equal(out["count"].to_numpy().reshape(2, 8), np.array(expected).T)
    record = out.attrs["harmonise"][-1]
    assert record["map"] == "age_band" and record["target"] == "age_band"
    assert len(record["excluded"]) == 18  # ages 0-17, outside adult social care
    assert record["excluded"]["Aged 17 years"] == counts[:, 17].sum()
    assert out.attrs["table_id"] == "ts007"  # the reader's provenance is kept


def test_age_bands_straddling_two_targets_have_no_mapping():
    frame = pd.DataFrame({
        "area_code": "E06000001",
        "age": ["Aged 20 to 24 years", "Aged 16 to 19 years", "Aged 35 to 49 years",
                "Aged 85 years and over"],
        "count": [10, 20, 30, 40],
    })
    with pytest.raises(MarginsError) as info:
        harmonise(frame, "age_band")
    message = str(info.value)
    assert "'Aged 16 to 19 years' (20 counted)" in message
    assert "'Aged 35 to 49 years' (30 counted)" in message
    assert "Aged 20 to 24" not in message and "level='detailed'" in message
    fits = harmonise(frame.iloc[[0, 3]], "age_band")
    assert fits["age_band"].tolist() == ["18-24", "85+"]


def test_numeric_ages_in_a_series():
    ages = pd.Series([18, 24.5, 25, 64, 85, 104, 17, np.nan], name="age")
    out = harmonise(ages, "age_band")
    assert out.name == "age_band"
    assert out.tolist()[:6] == ["18-24", "18-24", "25-34", "55-64", "85+", "85+"]
    assert out.isna().tolist()[6:] == [True, True]  # under 18 excluded; missing stays missing
    assert out.attrs["harmonise"][-1]["excluded"] == {"17.0": None}
    with pytest.raises(MarginsError, match="-1"):
        harmonise(pd.Series([30, -1]), "age_band")


def test_ethnic_group_20_to_19_and_to_5():
    frame = _ethnic()
    detailed = harmonise(frame, "ethnic_group")
    assert detailed["ethnic_group"].cat.categories.tolist() == categories("ethnic_group")
    assert detailed["ethnic_group"].tolist() == ETHNIC_20[1:]
    assert detailed["count"].tolist() == frame["count"].tolist()[1:]
    assert detailed.attrs["harmonise"][-1]["excluded"] == {"Does not apply": 7}
    high = harmonise(frame, "ethnic_group_5")
    assert high.columns.tolist() == ["area_code", "ethnic_group_5", "count"]
    assert high["ethnic_group_5"].tolist() == categories("ethnic_group_5")
    sizes = [5, 3, 4, 5, 2]
    bounds = np.cumsum([1, *sizes])
    assert high["count"].tolist() == [int(frame["count"][a:b].sum())
                                      for a, b in itertools.pairwise(bounds)]
    # 19 -> 5 works on the already harmonised table too
    pd.testing.assert_frame_equal(harmonise(detailed, "ethnic_group_5"), high)


def test_disability_ts038_to_three_categories():
    frame = pd.DataFrame({
        "area_code": ["E06000001"] * 4,
        "disability": [
            "Disabled under the Equality Act: Day-to-day activities limited a lot",
            "Disabled under the Equality Act: Day-to-day activities limited a little",
            ("Not disabled under the Equality Act: Has long term physical or mental health "
             "condition but day-to-day activities are not limited"),
            ("Not disabled under the Equality Act: No long term physical or mental health "
             "conditions")],
        "count": [9, 8, 7, 70],
    })
    out = harmonise(frame, "disability")
    assert out["disability"].tolist() == ["Disabled: limited a lot", "Disabled: limited a little",
                                          "Not disabled"]
    assert out["count"].tolist() == [9, 8, 77]
    parent = frame.assign(disability="Disabled under the Equality Act")
    with pytest.raises(MarginsError, match="'Disabled under the Equality Act'"):
        harmonise(parent.iloc[:1], "disability")


def test_lower_tier_to_upper_tier_replaces_codes_and_names():
    frame = pd.DataFrame({
        "area_code": ["E07000026", "E07000028", "E06000001", "E07000026", "E07000028",
                      "E06000001"],
        "area_name": ["Allerdale", "Carlisle", "Hartlepool"] * 2,
        "sex": ["Female"] * 3 + ["Male"] * 3,
        "count": [1, 2, 3, 4, 5, 6],
    })
    out = harmonise(frame, "upper_tier_2021")
    assert out.to_dict("list") == {
        "area_code": ["E10000006", "E06000001", "E10000006", "E06000001"],
        "area_name": ["Cumbria", "Hartlepool", "Cumbria", "Hartlepool"],
        "sex": ["Female", "Female", "Male", "Male"],
        "count": [3, 3, 9, 6],
    }
    assert not isinstance(out["area_code"].dtype, pd.CategoricalDtype)
    with pytest.raises(MarginsError, match="'E07999999'"):
        harmonise(frame.assign(area_code="E07999999"), "upper_tier_2021")


def test_custom_mapping_needs_a_column_and_refuses_unmapped_categories():
    frame = pd.DataFrame({"tenure": ["own", "rent", "own", "other"], "count": [1, 2, 3, 4]})
    with pytest.raises(MissingColumnError, match="column="):
        harmonise(frame, {"own": "Owner", "rent": "Renter"})
    with pytest.raises(MarginsError, match=r"'other' \(4 counted\)"):
        harmonise(frame, {"own": "Owner", "rent": "Renter"}, column="tenure")
    out = harmonise(frame, {"own": "Owner", "rent": "Renter", "other": None}, column="tenure")
    assert out.to_dict("list") == {"tenure": ["Owner", "Renter"], "count": [4, 2]}
    assert out.attrs["harmonise"][-1]["excluded"] == {"other": 4}
    as_series = pd.Series({"own": "Owner", "rent": "Renter", "other": "Renter"})
    assert harmonise(frame, as_series, column="tenure")["count"].tolist() == [4, 6]


def test_unused_categorical_category_without_mapping_is_refused():
    # a category nobody has is still a category: never dropped silently
    frame = pd.DataFrame({
        "sex": pd.Categorical(["F", "M"], categories=["F", "M", "X"]), "count": [1, 2]})
    with pytest.raises(MarginsError, match=r"'X' \(0 counted\)"):
        harmonise(frame, {"F": "Female", "M": "Male"}, column="sex")


def test_relabelling_microdata_without_aggregating():
    survey = pd.DataFrame({"id": [1, 2, 3, 4], "age": [16, 30, 85, 47]})
    out = harmonise(survey, "age_band", aggregate=False)
    assert out.columns.tolist() == ["id", "age_band"]
    assert out["age_band"].astype(object).tolist()[1:] == ["25-34", "85+", "45-54"]
    assert pd.isna(out["age_band"][0])
    with pytest.raises(MissingColumnError, match="aggregate=False"):
        harmonise(survey, "age_band")


def test_missing_values_stay_a_group_when_aggregating():
    frame = pd.DataFrame({"sex": ["F", None, "M", None], "count": [1, 2, 3, 4]})
    out = harmonise(frame, {"F": "Female", "M": "Male"}, column="sex")
    assert out["count"].tolist() == [1, 6, 3]
    assert out["sex"].isna().tolist() == [False, True, False]


def test_bad_arguments():
    frame, _ = _ages()
    with pytest.raises(MissingColumnError, match="shipped maps"):
        harmonise(frame, "age_bands")
    with pytest.raises(MissingColumnError, match="'nope' not found"):
        harmonise(frame, "age_band", column="nope")
    with pytest.raises(MarginsError, match="already has a 'age_band'"):
        harmonise(frame.assign(age_band="x"), "age_band")
    with pytest.raises(MarginsError, match="True or False"):
        harmonise(frame, "age_band", aggregate="yes")  # type: ignore[arg-type]
    with pytest.raises(MarginsError, match="a dict or a Series"):
        harmonise(frame, ["18-24"], column="age")  # type: ignore[arg-type]
    with pytest.raises(MissingColumnError, match="applies to column 'age'"):
        harmonise(frame.rename(columns={"age": "years"}), "age_band")
    with pytest.raises(MarginsError, match=r"'count' has missing or non-numeric values.*\[3\]"):
        harmonise(frame.assign(count=frame["count"].where(frame.index != 3)), "age_band")


def test_maps_are_listed_loaded_and_ordered():
    maps = list_maps()
    assert maps["name"].tolist() == ["age_band", "ethnic_group", "ethnic_group_5", "disability",
                                     "upper_tier_2021"]
    assert categories("age_band") == AGE_BANDS
    assert categories("disability") == ["Disabled: limited a lot", "Disabled: limited a little",
                                         "Not disabled"]
    assert len(categories("unpaid_care")) == 6
    with pytest.raises(MissingColumnError, match="known variables"):
        categories("religion")
    ethnic = load_map("ethnic_group")
    assert ethnic.pairs["Does not apply"] is None
    assert len(ethnic.target_categories) == 19
    with pytest.raises(TypeError):
        ethnic.pairs["White: Irish"] = "x"  # type: ignore[index]  # shared maps are read-only
    custom = CategoryMap.from_mapping({"b": "Male", "a": "Female"})
    assert custom.target_categories == ("Female", "Male")  # standard order of `sex`


def test_upper_tier_map_structure():
    upper = load_map("upper_tier_2021")
    pairs = upper.pairs
    districts = [code for code in pairs if code.startswith("E07")]
    assert len(districts) == 181
    assert {pairs[code][:3] for code in districts} == {"E10"}
    assert len({pairs[code] for code in districts}) == 24
    for code, target in pairs.items():
        if code[:3] in ("E06", "E08", "E09", "W06"):
            assert target == code
    assert len(pairs) == 331


def test_councils_file_matches_the_upper_tier_map():
    councils = pd.read_csv(COUNCILS, dtype=str, keep_default_na=False)
    assert councils.columns.tolist() == ["area_code", "area_name", "council_type"]
    assert len(councils) == 152 and councils["area_code"].is_unique
    assert councils["council_type"].value_counts().to_dict() == {
        "Unitary authority": 59, "Metropolitan district": 36, "London borough": 33,
        "County council": 24}
    upper = load_map("upper_tier_2021")
    assert {t for t in upper.pairs.values() if t.startswith("E")} == set(councils["area_code"])
    for code, name in zip(councils["area_code"], councils["area_name"]):
        assert upper.target_names[code] == name
