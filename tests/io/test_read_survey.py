"""read_survey: CSV, Parquet, Stata and SPSS, value labels to Categoricals."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyreadstat
import pytest

from unmetneed.errors import MissingColumnError, OptionError, ReadError
from unmetneed.io import read_survey


def _survey() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": np.arange(1, 7, dtype=np.int32),
            "sex": np.array([2, 1, 1, 2, 2, 1], dtype=np.int32),
            "need": np.array([0, 1, 0, 0, 1, 1], dtype=np.int32),
            "weight": [1.5, 2.0, 0.5, 1.0, 1.25, 3.0],
        }
    )


def test_csv_and_column_selection(tmp_path):
    path = tmp_path / "survey.csv"
    _survey().to_csv(path, index=False)
    frame = read_survey(path)
    assert frame.columns.tolist() == ["id", "sex", "need", "weight"]
    assert frame.attrs["format"] == "csv" and len(frame.attrs["sha256"]) == 64
    picked = read_survey(path, columns=["weight", "id"])
    assert picked.columns.tolist() == ["weight", "id"]
    np.testing.assert_allclose(picked["weight"], _survey()["weight"])


def test_missing_columns_are_named(tmp_path):
    path = tmp_path / "survey.csv"
    _survey().to_csv(path, index=False)
    with pytest.raises(MissingColumnError, match=r"\['age'\] not found.*'weight'"):
        read_survey(path, columns=["id", "age"])
    with pytest.raises(KeyError):  # MissingColumnError is also a KeyError
        read_survey(path, columns=["age"])


def test_parquet_round_trip_keeps_categoricals(tmp_path):
    frame = _survey()
    frame["age_band"] = pd.Categorical(["18-24", "85+", "18-24", "25-34", "85+", "25-34"],
                                       categories=["18-24", "25-34", "85+"], ordered=True)
    path = tmp_path / "survey.parquet"
    frame.to_parquet(path, engine="pyarrow", index=False)
    read = read_survey(path)
    assert read.attrs["format"] == "parquet"
    assert read["age_band"].cat.categories.tolist() == ["18-24", "25-34", "85+"]
    assert read["age_band"].cat.ordered
    assert read_survey(path, columns=["need"]).columns.tolist() == ["need"]
    with pytest.raises(MissingColumnError, match="'nope'"):
        read_survey(path, columns=["nope"])


def test_stata_value_labels_become_ordered_categoricals(tmp_path):
    path = tmp_path / "survey.dta"
    labels = {"sex": {2: "Male", 1: "Female", 9: "Prefer not to say"},
              "need": {0: "No", 1: "Yes"}}
    _survey().to_stata(path, write_index=False, value_labels=labels,
                       variable_labels={"need": "Needs help with a daily activity"})
    frame = read_survey(path)
    sex = frame["sex"]
    assert isinstance(sex.dtype, pd.CategoricalDtype) and sex.cat.ordered
    # ordered by code, every labelled code kept although nobody answered 9
    assert sex.cat.categories.tolist() == ["Female", "Male", "Prefer not to say"]
    assert sex.tolist() == ["Male", "Female", "Female", "Male", "Male", "Female"]
    assert frame["need"].tolist() == ["No", "Yes", "No", "No", "Yes", "Yes"]
    assert frame["id"].tolist() == list(range(1, 7))  # unlabelled columns untouched
    assert frame.attrs["format"] == "stata"
    assert frame.attrs["value_labels"]["sex"][9] == "Prefer not to say"
    assert frame.attrs["variable_labels"]["need"] == "Needs help with a daily activity"
    codes = read_survey(path, value_labels=False)
    assert codes["sex"].tolist() == [2, 1, 1, 2, 2, 1]


def test_partially_labelled_column_keeps_its_codes(tmp_path):
    path = tmp_path / "survey.dta"
    frame = _survey()
    frame["age"] = np.array([23, 45, 99, 67, 81, 99], dtype=np.int32)
    frame.to_stata(path, write_index=False, value_labels={"age": {99: "Refused"}})
    read = read_survey(path)
    assert read["age"].tolist() == [23, 45, 99, 67, 81, 99]
    assert read.attrs["partially_labelled"] == ["age"]
    assert read.attrs["value_labels"]["age"] == {99: "Refused"}


def test_repeated_labels_stay_distinct_categories(tmp_path):
    path = tmp_path / "survey.dta"
    _survey().to_stata(path, write_index=False,
                       value_labels={"sex": {1: "Other", 2: "Other"}})
    sex = read_survey(path)["sex"]
    assert sex.cat.categories.tolist() == ["Other [1]", "Other [2]"]
    assert sex.tolist()[:2] == ["Other [2]", "Other [1]"]


def test_spss_value_and_variable_labels(tmp_path):
    path = tmp_path / "survey.sav"
    frame = _survey().astype({"sex": float, "need": float})
    frame.loc[2, "need"] = np.nan
    pyreadstat.write_sav(
        frame, str(path),
        column_labels={"sex": "Sex of respondent"},
        variable_value_labels={"sex": {1.0: "Female", 2.0: "Male"},
                               "need": {0.0: "No", 1.0: "Yes"}},
    )
    read = read_survey(path, columns=["sex", "need"])
    assert read.columns.tolist() == ["sex", "need"]
    assert read["sex"].cat.categories.tolist() == ["Female", "Male"]
    assert read["need"].isna().tolist() == [False, False, True, False, False, False]
    assert read.attrs["format"] == "spss"
    assert read.attrs["variable_labels"] == {"sex": "Sex of respondent"}
    with pytest.raises(MissingColumnError, match="'age'"):
        read_survey(path, columns=["age"])


def test_format_from_suffix_or_argument(tmp_path):
    path = tmp_path / "survey.dat"
    _survey().to_csv(path, index=False)
    with pytest.raises(ReadError, match=r"format= one of \['csv', 'parquet', 'stata', 'spss'\]"):
        read_survey(path)
    assert len(read_survey(path, format="csv")) == 6
    with pytest.raises(OptionError, match="'excel'"):
        read_survey(path, format="excel")  # type: ignore[arg-type]
    gz = tmp_path / "survey.csv.gz"
    _survey().to_csv(gz, index=False)
    assert len(read_survey(gz)) == 6


def test_corrupt_or_missing_files(tmp_path):
    path = tmp_path / "survey.dta"
    path.write_bytes(b"this is not a stata file")
    with pytest.raises(ReadError, match="could not read .* as stata"):
        read_survey(path)
    with pytest.raises(ReadError, match="file not found"):
        read_survey(tmp_path / "absent.sav")
    with pytest.raises(ReadError, match="list of column names"):
        read_survey(tmp_path / "survey.dta", columns="sex")  # type: ignore[arg-type]
