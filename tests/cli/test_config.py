"""Configs that fail early: the typed schema, and `validate` running every check `run` makes."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from unmetneed.cli import main

from .conftest import ROOT, small_config

SYNTHETIC = ROOT / "data" / "reference" / "synthetic"


def _validate(config: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["validate", str(config)])
    captured = capsys.readouterr()
    return code, captured.err + captured.out


def _edit(tmp_path: Path, old: str, new: str) -> Path:
    config = small_config(tmp_path)
    text = config.read_text(encoding="utf-8")
    assert old in text, old
    config.write_text(text.replace(old, new, 1), encoding="utf-8")
    return config


def test_the_small_config_validates(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _validate(small_config(tmp_path), capsys)
    assert code == 0, out
    assert "inputs loaded and checked" in out


@pytest.mark.parametrize(("old", "new", "expected"), [
    ("[estimates]", "[estimate]", "estimate: unknown key; did you mean 'estimates'?"),
    ("draws = 100", "drawz = 100", "estimates.drawz: unknown key; did you mean 'draws'?"),
    ("min_count = 10", "min_cnt = 10", "disclosure.min_cnt: unknown key; did you mean 'min_count'?"),
    ('weights = "weight"', 'weight = "weight"', "inputs.surveys.general.weight: unknown key; did you mean 'weights'?"),
    ('clusters = "psu"', 'clustres = "psu"', "inputs.surveys.general.clustres: unknown key; did you mean 'clusters'?"),
])
def test_a_misspelt_key_is_refused_with_a_suggestion(old: str, new: str, expected: str, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _validate(_edit(tmp_path, old, new), capsys)
    assert code == 2
    assert expected in out, out


@pytest.mark.parametrize(("old", "new", "expected"), [
    ("suppress_cv = 0.5", "suppress_cv = 0.1", "flag_cv = 0.2 is above suppress_cv = 0.1"),
    ("rounding = 5", "rounding = 0", "disclosure.rounding: got 0"),
    ("seed = 20211", "seed = -1", "estimates.seed: got -1"),
    ('by = ["area_code", "ethnic_group"]', 'by = "region"', "estimates.by: got 'region'"),
    ("draws = 100", "draws = 20", "estimates.draws: got 20"),
    ('margins = ["age_band", "sex", "disability"]', 'margins = ["age_bnd", "sex"]', "weighting.margins[0]: 'age_bnd'"),
    ("[models]", '[models.need]\nformula = "outcome ~ sexx + (1|area_code"', "models.need.formula"),
])
def test_values_run_would_reject_fail_validate(old: str, new: str, expected: str, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _validate(_edit(tmp_path, old, new), capsys)
    assert code == 2
    assert expected in out, out


def test_a_whole_number_is_a_number(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = _edit(tmp_path, "suppress_cv = 0.5", "suppress_cv = 1")
    code, out = _validate(config, capsys)
    assert code == 0, out


def test_a_survey_without_a_care_item(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    survey = pd.read_csv(SYNTHETIC / "survey_general.csv.gz").drop(columns=["help"])
    survey.to_csv(tmp_path / "general.csv", index=False)
    config = _edit(tmp_path, f"{SYNTHETIC.as_posix()}/survey_general.csv.gz", (tmp_path / "general.csv").as_posix())
    code, out = _validate(config, capsys)
    assert code == 2
    assert "inputs.surveys.general" in out and "['help']" in out, out


def test_survey_labels_the_frame_lacks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    survey = pd.read_csv(SYNTHETIC / "survey_general.csv.gz")
    survey["sex"] = survey["sex"].str.lower()
    survey.to_csv(tmp_path / "general.csv", index=False)
    config = _edit(tmp_path, f"{SYNTHETIC.as_posix()}/survey_general.csv.gz", (tmp_path / "general.csv").as_posix())
    code, out = _validate(config, capsys)
    assert code == 2
    assert "column 'sex' has categories the population frame lacks: ['female', 'male']" in out, out


def test_a_raw_census_table_as_the_population(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    raw = SYNTHETIC / "census2021-ts007-utla-adults.csv"
    config = _edit(tmp_path, f"{SYNTHETIC.as_posix()}/population.csv.gz", raw.as_posix())
    code, out = _validate(config, capsys)
    assert code == 2
    assert "inputs.population.path" in out and "read_census_table" in out, out


def test_admin_counts_with_unknown_council_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    admin = pd.read_csv(ROOT / "examples" / "council_funded_community_by_area.csv")
    admin.loc[0, "area_code"] = "E06999999"
    admin.to_csv(tmp_path / "admin.csv", index=False)
    config = _edit(tmp_path, (ROOT / "examples" / "council_funded_community_by_area.csv").as_posix(),
                   (tmp_path / "admin.csv").as_posix())
    code, out = _validate(config, capsys)
    assert code == 2
    assert "inputs.admin: council codes not in the population frame: ['E06999999']" in out, out


def test_admin_counts_with_a_duplicated_row(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    admin = pd.read_csv(ROOT / "examples" / "council_funded_community_by_area.csv")
    pd.concat([admin, admin.iloc[[3]]]).to_csv(tmp_path / "admin.csv", index=False)
    config = _edit(tmp_path, (ROOT / "examples" / "council_funded_community_by_area.csv").as_posix(),
                   (tmp_path / "admin.csv").as_posix())
    code, out = _validate(config, capsys)
    assert code == 2
    assert "repeat another row exactly" in out, out


def test_a_latin1_config_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = small_config(tmp_path)
    text = config.read_text(encoding="utf-8").encode("ascii", "replace").decode("ascii")
    config.write_bytes(text.replace("# Census", "# Café census").encode("latin-1"))
    code, out = _validate(config, capsys)
    assert code == 2
    assert "not UTF-8" in out, out


def test_a_fixed_effect_typo(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = _edit(tmp_path, "[models]", '[models.need]\nformula = "outcome ~ sexx + (1|area_code)"')
    code, out = _validate(config, capsys)
    assert code == 2
    assert "models.need.formula: 'sexx' is not a column of the population frame or the general survey" in out, out


def test_a_population_file_that_is_not_a_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "population.csv"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x01\x00")
    config = _edit(tmp_path, f"{SYNTHETIC.as_posix()}/population.csv.gz", bad.as_posix())
    code, out = _validate(config, capsys)
    assert code == 2
    assert "inputs.population.path: population.csv could not be read as a table" in out, out


def test_area_names_without_area_code(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    names = tmp_path / "areas.csv"
    names.write_text("code,area_name\nE06000001,Hartlepool\n", encoding="utf-8")
    config = _edit(tmp_path, f"{SYNTHETIC.as_posix()}/areas.csv", names.as_posix())
    code, out = _validate(config, capsys)
    assert code == 2
    assert "inputs.population.area_names: areas.csv lacks the column(s) ['area_code']" in out, out


def test_output_dir_is_relative_to_the_config_file(tmp_path: Path) -> None:
    from unmetneed.cli.config import load_config

    config = small_config(tmp_path, out="results")
    assert load_config(config).output_dir == (tmp_path / "results").resolve()
    assert load_config(config, out="elsewhere").output_dir == Path("elsewhere")
