"""read_admin_counts: standard columns and validation of counts and keys."""

from __future__ import annotations

import pandas as pd
import pytest

from unmetneed.errors import MissingColumnError, ReadError
from unmetneed.io import read_admin_counts


def _counts() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "LA code": ["E06000001", "E06000001", "E10000006", "E10000006"],
            "Age group": ["18-64", "65+", "18-64", "65+"],
            "Clients": [120, 340, 1500, 4200],
        }
    )


def test_reads_a_csv_into_standard_columns(tmp_path):
    path = tmp_path / "clients.csv"
    _counts().to_csv(path, index=False)
    out = read_admin_counts(path, area_col="LA code", count_col="Clients", by="Age group")
    assert out.columns.tolist() == ["area_code", "Age group", "count"]
    assert out["count"].dtype == "int64"
    assert out["count"].tolist() == [120, 340, 1500, 4200]
    assert out.attrs["source"] == str(path) and len(out.attrs["sha256"]) == 64
    total = read_admin_counts(path, area_col="LA code", count_col="Clients",
                              by=["Age group"], known_areas=["E06000001", "E10000006"])
    assert len(total) == 4


def test_frame_input_is_validated_and_not_modified():
    frame = _counts()
    frame["Clients"] = frame["Clients"].astype(float)  # 120.0 is still a whole number
    before = frame.copy()
    out = read_admin_counts(frame, area_col="LA code", count_col="Clients", by="Age group")
    assert out["count"].dtype == "int64"
    pd.testing.assert_frame_equal(frame, before)


@pytest.mark.parametrize(
    ("value", "message"),
    [(-5, "negative"), (2.5, "not a whole number"), ("many", "missing or not a number"),
     (None, "missing or not a number")],
)
def test_bad_counts_are_named(value, message):
    frame = _counts().astype({"Clients": object})
    frame.loc[2, "Clients"] = value
    with pytest.raises(ReadError, match=rf"{message}.*row 4 \(E10000006\)"):
        read_admin_counts(frame, area_col="LA code", count_col="Clients", by="Age group")


def test_duplicated_rows_are_refused():
    frame = pd.concat([_counts(), _counts().iloc[[1]]], ignore_index=True)
    with pytest.raises(ReadError, match=r"repeat a combination.*E06000001.*65\+"):
        read_admin_counts(frame, area_col="LA code", count_col="Clients", by="Age group")
    # without `by` every area must appear once
    with pytest.raises(ReadError, match="repeat"):
        read_admin_counts(_counts(), area_col="LA code", count_col="Clients")


def test_unknown_area_codes_are_refused():
    with pytest.raises(ReadError, match=r"not in known_areas: \['E10000006'\]"):
        read_admin_counts(_counts(), area_col="LA code", count_col="Clients", by="Age group",
                          known_areas={"E06000001"})
    with pytest.raises(ReadError, match="collection of area codes"):
        read_admin_counts(_counts(), area_col="LA code", count_col="Clients", by="Age group",
                          known_areas="E06000001")


def test_missing_columns_and_keys():
    with pytest.raises(MissingColumnError, match=r"\['area_code', 'count'\]"):
        read_admin_counts(_counts())
    frame = _counts()
    frame.loc[0, "LA code"] = None
    with pytest.raises(ReadError, match=r"'LA code' is missing on rows \[2\]"):
        read_admin_counts(frame, area_col="LA code", count_col="Clients", by="Age group")
    frame = _counts()
    frame.loc[3, "Age group"] = None
    with pytest.raises(ReadError, match=r"'Age group' is missing on rows \[5\]"):
        read_admin_counts(frame, area_col="LA code", count_col="Clients", by="Age group")
    with pytest.raises(ReadError, match="different columns"):
        read_admin_counts(_counts(), area_col="Clients", count_col="Clients")


def test_a_negative_integer_count_is_shown_as_written():
    frame = _counts()
    frame.loc[2, "Clients"] = -16686
    with pytest.raises(ReadError, match=r"row 4 \(E10000006\): -16686;") as info:
        read_admin_counts(frame, area_col="LA code", count_col="Clients", by="Age group")
    assert "np.int64" not in str(info.value)
