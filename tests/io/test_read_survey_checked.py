"""read_survey (CSV) refuses what is not a whole table and keeps codes and labels as written."""

from __future__ import annotations

from pathlib import Path

import pytest

import unmetneed as um
from unmetneed.errors import ReadError


def _write(tmp_path: Path, text: str, name: str = "survey.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_an_html_error_page_is_not_a_table(tmp_path: Path) -> None:
    path = _write(tmp_path, "<!DOCTYPE html>\n<html><body>502 Bad Gateway</body></html>\n")
    with pytest.raises(ReadError, match="HTML"):
        um.io.read_survey(path)


def test_a_header_without_rows_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ReadError, match="no rows"):
        um.io.read_survey(_write(tmp_path, "only_a_header\n"))


def test_repeated_column_names_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ReadError, match=r"\['w'\] appear more than once"):
        um.io.read_survey(_write(tmp_path, "w,y,w\n1,0,2\n"))


def test_a_file_cut_mid_line_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ReadError, match="cut short"):
        um.io.read_survey(_write(tmp_path, "id,sex,weight\n1,Female,2.5\n2,Male,1.5\n3"))


def test_a_ragged_row_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ReadError, match="ragged"):
        um.io.read_survey(_write(tmp_path, "id,sex\n1,Female\n2,Male,extra\n"))


def test_na_is_a_label_and_codes_stay_strings(tmp_path: Path) -> None:
    path = _write(tmp_path, "region,code,weight,help\nNA,01,1.5,none\nNE,02,2,\n")
    survey = um.io.read_survey(path)
    assert survey["region"].tolist() == ["NA", "NE"]
    assert survey["code"].tolist() == ["01", "02"]
    assert survey["weight"].dtype.kind == "f"
    assert survey["help"].isna().tolist() == [False, True]  # an empty cell is missing
    told = um.io.read_survey(path, na_values=("", "NA"))
    assert told["region"].isna().tolist() == [True, False]
