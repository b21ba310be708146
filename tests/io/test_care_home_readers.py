"""read_care_home_register and read_provider_returns: layouts, round trips, bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import unmetneed as um
from unmetneed.errors import MissingColumnError, ReadError


def _register() -> pd.DataFrame:
    return pd.DataFrame({
        "home_id": ["1-101", "1-102", "1-103", "1-104"],
        "area_code": ["E06000001", "E06000001", "E06000002", "E06000002"],
        "region": ["North East"] * 4,
        "home_type": ["older_people", "younger_adults", "older_people", "older_people"],
        "nursing": [True, False, False, True],
        "beds": [40, 8, 25, 60],
        "rating": ["good", "outstanding", "inadequate", "requires_improvement"],
        "deprivation_decile": [1, 2, 3, 4],
    })


def _returns() -> pd.DataFrame:
    return pd.DataFrame({
        "home_id": ["1-101", "1-103", "1-104"],
        "residents": [35, 20, 50],
        "self_funded": [10, 5, 25],
        "council_funded": [20, 14, 20],
        "nhs_funded": [5, 1, 5],
        "other_funded": [0, 0, 0],
    })


def _cqc() -> pd.DataFrame:
    return pd.DataFrame({
        "Location ID": ["1-101", "1-102", "1-103"],
        "Location Name": ["A", "B", "C"],
        "Location Local Authority": ["Hartlepool", "Middlesbrough", "E06000003"],
        "Location Region": ["North East"] * 3,
        "Care homes beds": [40, 8, 60],
        "Service type - Care home service with nursing": ["Y", "", "Y"],
        "Service user band - Older People": ["Y", "", "Y"],
        "Location Latest Overall Rating": ["Good", "Requires improvement", ""],
    })


def test_standard_register_reads_with_standard_types():
    out = um.io.read_care_home_register(_register())
    assert list(out.columns) == ["home_id", "area_code", "region", "home_type", "nursing", "beds",
                                 "size_band", "rating", "deprivation_decile"]
    assert out["size_band"].tolist() == ["20-49", "1-19", "20-49", "50+"]
    assert list(out["rating"].cat.categories) == ["outstanding", "good", "requires_improvement",
                                                  "inadequate", "not_rated"]
    assert out["beds"].dtype == np.int64 and out["nursing"].dtype == bool
    assert out.attrs["layout"] == "standard"


def test_cqc_layout_is_mapped(tmp_path):
    path = tmp_path / "directory.csv"
    _cqc().to_csv(path, index=False)
    out = um.io.read_care_home_register(path)
    assert out.attrs["layout"] == "cqc" and out.attrs["sha256"]
    assert out["area_code"].tolist() == ["E06000001", "E06000002", "E06000003"]
    assert out["home_type"].tolist() == ["older_people", "younger_adults", "older_people"]
    assert out["nursing"].tolist() == [True, False, True]
    assert out["rating"].tolist() == ["good", "requires_improvement", "not_rated"]
    assert out["deprivation_decile"].isna().all()


def test_parquet_and_csv_give_the_same_register(tmp_path):
    pytest.importorskip("pyarrow")
    register = _register()
    register.to_parquet(tmp_path / "r.parquet")
    register.to_csv(tmp_path / "r.csv", index=False)
    a = um.io.read_care_home_register(tmp_path / "r.parquet")
    b = um.io.read_care_home_register(tmp_path / "r.csv")
    pd.testing.assert_frame_equal(a, b, check_dtype=False)


def test_synthetic_files_read_back():
    homes = um.datasets.load_synthetic_england().care_homes
    register = um.io.read_care_home_register(homes.register)
    returns = um.io.read_provider_returns(homes.returns, register=register)
    assert len(register) == len(homes.register) and len(returns) == len(homes.returns)
    parts = returns[["self_funded", "council_funded", "nhs_funded", "other_funded"]].sum(axis=1)
    assert (parts == returns["residents"]).all()


def test_missing_column_is_named():
    with pytest.raises(MissingColumnError, match="beds"):
        um.io.read_care_home_register(_register().drop(columns="beds"))
    with pytest.raises(MissingColumnError, match="Care homes beds"):
        um.io.read_care_home_register(_cqc().drop(columns="Care homes beds"))
    with pytest.raises(MissingColumnError, match="self_funded"):
        um.io.read_provider_returns(_returns().drop(columns="self_funded"))


def test_unknown_categories_are_listed():
    register = _register()
    register.loc[1, "home_type"] = "children"
    with pytest.raises(ReadError, match=r"home_type.*'children'.*1-102"):
        um.io.read_care_home_register(register)
    register = _register()
    register.loc[2, "rating"] = "excellent"
    with pytest.raises(ReadError, match=r"rating.*'excellent'"):
        um.io.read_care_home_register(register)
    cqc = _cqc()
    cqc.loc[0, "Location Latest Overall Rating"] = "Superb"
    with pytest.raises(ReadError, match="Superb"):
        um.io.read_care_home_register(cqc)
    cqc = _cqc()
    cqc.loc[1, "Location Local Authority"] = "Atlantis"
    with pytest.raises(ReadError, match=r"Atlantis.*1-102"):
        um.io.read_care_home_register(cqc)


def test_bad_beds_name_the_home():
    for value, what in ((-3, "negative"), (0, "zero"), (2.5, "not a whole number"),
                        (np.nan, "missing")):
        register = _register()
        register["beds"] = register["beds"].astype(float)
        register.loc[2, "beds"] = value
        with pytest.raises(ReadError, match=rf"beds.*{what}.*1-103"):
            um.io.read_care_home_register(register)


def test_duplicate_home_ids_are_listed():
    register = _register()
    register.loc[3, "home_id"] = "1-101"
    with pytest.raises(ReadError, match=r"repeat a home id.*'1-101'"):
        um.io.read_care_home_register(register)
    returns = _returns()
    returns.loc[2, "home_id"] = "1-103"
    with pytest.raises(ReadError, match=r"repeat a home id.*'1-103'"):
        um.io.read_provider_returns(returns)


def test_size_band_that_disagrees_with_beds_is_refused():
    register = _register().assign(size_band=["1-19", "1-19", "20-49", "50+"])
    with pytest.raises(ReadError, match=r"size_band.*1-101"):
        um.io.read_care_home_register(register)


def test_negative_counts_in_returns_name_the_home():
    returns = _returns()
    returns.loc[1, "nhs_funded"] = -1
    with pytest.raises(ReadError, match=r"nhs_funded.*negative.*1-103"):
        um.io.read_provider_returns(returns)


def test_funding_parts_above_residents_are_refused():
    returns = _returns()
    returns.loc[0, "self_funded"] = 30
    with pytest.raises(ReadError, match=r"more than 'residents'.*1-101 \(55 > 35\)"):
        um.io.read_provider_returns(returns)


def test_returns_of_unregistered_homes_are_listed():
    returns = _returns()
    returns.loc[2, "home_id"] = "1-999"
    with pytest.raises(ReadError, match=r"not in the register.*'1-999'"):
        um.io.read_provider_returns(returns, register=um.io.read_care_home_register(_register()))


def test_more_residents_than_beds_is_refused():
    returns = _returns()
    returns.loc[1, ["residents", "council_funded"]] = [30, 24]
    with pytest.raises(ReadError, match=r"more residents than beds.*1-103 \(30 residents, 25 beds\)"):
        um.io.read_provider_returns(returns, register=_register())


def test_cqc_returns_layout_is_mapped():
    returns = _returns().rename(columns={v: k for k, v in
                                         um.io.care_homes.CQC_RETURNS_COLUMNS.items()})
    out = um.io.read_provider_returns(returns)
    assert out.attrs["layout"] == "cqc"
    assert out["residents"].tolist() == [35, 20, 50]


def test_inputs_are_not_modified():
    register, returns = _register(), _returns()
    before_r, before_s = register.copy(), returns.copy()
    um.io.read_provider_returns(returns, register=um.io.read_care_home_register(register))
    pd.testing.assert_frame_equal(register, before_r)
    pd.testing.assert_frame_equal(returns, before_s)
