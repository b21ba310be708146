"""The unmetneed command: validation, exit codes, outputs and reproducibility."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from unmetneed.cli import main

from .conftest import EXAMPLE, TEST_DRAWS, small_config

AREA_COLUMNS = ["area_code", "area_name", "setting", "quantity", "measure", "estimate", "se", "ci_lower",
                "ci_upper", "cv", "n", "basis", "flag", "reason"]


def test_example_config_validates(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(EXAMPLE)]) == 0
    assert "valid" in capsys.readouterr().out


def test_every_problem_is_reported_at_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(
        """
[inputs.population]
path = "nowhere.csv"
[inputs.surveys.ascs]
path = "nowhere.csv"
weights = "w"
target = "everyone"
[models.need]
formula = "need ~ sex"
[models.wellbeing]
formula = "outcome ~ 1 + (1|area_code)"
[estimates]
draws = 1
level = 1.5
[output]
format = "xlsx"
""",
        encoding="utf-8",
    )
    assert main(["validate", str(config)]) == 2
    err = capsys.readouterr().err
    for key in ("inputs.population.path", "inputs.surveys.general", "inputs.surveys.ascs.path",
                "inputs.surveys.ascs.target", "models.need.formula", "models.wellbeing",
                "estimates.draws", "estimates.level", "estimates.seed", "output.format"):
        assert key in err, f"{key} not reported:\n{err}"


def test_not_toml_and_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "x.toml"
    bad.write_text("this is [not toml", encoding="utf-8")
    assert main(["validate", str(bad)]) == 2
    assert "not valid TOML" in capsys.readouterr().err
    assert main(["run", str(tmp_path / "missing.toml")]) == 2
    assert "not found" in capsys.readouterr().err


def test_unexpected_failure_exits_1(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    from unmetneed.cli import pipeline

    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(pipeline, "run_pipeline", boom)
    assert main(["run", str(small_config(tmp_path))]) == 1
    err = capsys.readouterr().err
    assert "unexpected failure: RuntimeError: disk on fire" in err and "--debug" in err
    assert main(["--debug", "run", str(small_config(tmp_path))]) == 1
    assert "Traceback" in capsys.readouterr().err


def test_outputs_and_their_columns(run_output: Path) -> None:
    names = {p.name for p in run_output.iterdir()}
    assert {"estimates_by_area.csv", "estimates_by_characteristic.csv", "estimates_england.csv",
            "coverage_gaps.csv", "report.html", "provenance.json", "summary.txt"} <= names
    area = pd.read_csv(run_output / "estimates_by_area.csv")
    assert list(area.columns) == AREA_COLUMNS
    assert area["area_code"].nunique() == 152
    chars = pd.read_csv(run_output / "estimates_by_characteristic.csv")
    assert list(chars.columns[:2]) == ["characteristic", "category"]
    assert chars.loc[chars["characteristic"] == "ethnic_group", "category"].nunique() == 19
    assert set(area["flag"]) <= {"ok", "low_reliability", "suppressed"}
    assert set(area["setting"]) == set(chars["setting"]) == {"household", "care_home", "all"}
    assert set(area["basis"]) <= {"model", "model_no_respondents", "admin", "direct"}
    assert set(chars["basis"]) <= {"model", "admin_composition", "direct"}
    # care-home residents' need is the census count; unpaid-only and unmet are 0 there by
    # definition and have no rows
    homes = area[area["setting"] == "care_home"]
    assert set(homes.loc[homes["quantity"] == "need", "basis"]) == {"direct"}
    assert not homes["quantity"].isin(["unpaid_only", "unmet"]).any()
    # disclosure control withholds what it must, not the table: most council counts of all
    # adults are published (a missing total once made the audit cascade through everything)
    counts = area[(area["measure"] == "count") & (area["setting"] == "all")]
    published = counts.groupby("quantity")["flag"].apply(lambda f: (f != "suppressed").mean())
    assert (published >= 0.8).all(), published.to_dict()
    # a council without survey respondents says so in its household and all-adult figures
    empty = area.loc[(area["setting"] == "household") & (area["basis"] == "model_no_respondents"), "area_code"]
    assert len(empty)
    everyone = area[area["area_code"].isin(empty) & (area["setting"] == "all") & (area["quantity"] == "need")]
    assert set(everyone["basis"]) == {"model_no_respondents"}
    coverage = pd.read_csv(run_output / "coverage_gaps.csv")
    assert {"characteristic", "category", "setting"} <= set(coverage.columns)
    assert coverage.loc[coverage["characteristic"] == "ethnic_group", "category"].nunique() == 19
    provenance = json.loads((run_output / "provenance.json").read_text())
    for key in ("version", "python", "dependencies", "input_checksums_sha256", "config",
                "settings", "timings_seconds"):
        assert key in provenance
    assert provenance["settings"]["seed"] == 20211
    assert all(len(v) == 64 for v in provenance["input_checksums_sha256"].values())


def test_rerun_gives_byte_identical_tables(run_output: Path, tmp_path: Path) -> None:
    config = small_config(tmp_path)
    second = tmp_path / "second"
    assert main(["run", str(config), "--quiet", "--out", str(second), "--format", "parquet",
                 "--save-draws"]) == 0
    for name in ("estimates_by_area.csv", "estimates_by_characteristic.csv", "estimates_england.csv",
                 "coverage_gaps.csv"):
        assert (second / name).read_bytes() == (run_output / name).read_bytes(), name
    assert (second / "estimates_by_area.parquet").exists()
    import xarray as xr

    with xr.open_dataset(second / "internal" / "draws_area_code.nc") as draws:
        assert draws.sizes["draw"] == TEST_DRAWS


def test_python_dash_m_is_the_same_command() -> None:
    module = subprocess.run([sys.executable, "-m", "unmetneed", "--version"], capture_output=True, text=True,
                            check=False)
    script = Path(sys.executable).with_name("unmetneed")
    console = subprocess.run([str(script), "--version"], capture_output=True, text=True, check=False)
    assert module.returncode == console.returncode == 0
    assert module.stdout == console.stdout
    bad = subprocess.run([sys.executable, "-m", "unmetneed", "validate", "/nonexistent.toml"],
                         capture_output=True, text=True, check=False)
    assert bad.returncode == 2


@pytest.mark.parametrize("draws", ["0", "1", "99"])
def test_fewer_than_100_draws_are_refused(draws: str, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--quiet", "--draws", draws, "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert f"draws={draws}" in err and "at least 100" in err
    assert not (tmp_path / "out").exists()


def test_out_pointing_at_a_file_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "report.txt"
    target.write_text("mine", encoding="utf-8")
    assert main(["demo", "--quiet", "--out", str(target)]) == 2
    assert "is a file" in capsys.readouterr().err
    assert target.read_text(encoding="utf-8") == "mine"


def test_a_folder_that_is_not_an_output_is_not_replaced(tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "documents"
    folder.mkdir()
    (folder / "thesis.tex").write_text("x", encoding="utf-8")
    assert main(["demo", "--quiet", "--out", str(folder)]) == 2
    assert "not an unmetneed output" in capsys.readouterr().err
    assert (folder / "thesis.tex").exists()


def test_the_output_folder_is_replaced_as_one_set(tmp_path: Path) -> None:
    from unmetneed.cli.pipeline import _replace_folder, _staging_folder

    out = tmp_path / "out"
    out.mkdir()
    (out / "provenance.json").write_text("{}", encoding="utf-8")
    (out / "draws.nc").write_text("stale", encoding="utf-8")
    staging = _staging_folder(out)
    assert staging.parent == out.parent and staging.name.startswith(".out.partial-")
    (staging / "provenance.json").write_text('{"new": 1}', encoding="utf-8")
    _replace_folder(staging, out)
    assert sorted(p.name for p in out.iterdir()) == ["provenance.json"]  # the stale file is gone
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no staging or old copy left


def test_a_failed_run_leaves_the_previous_output_untouched(monkeypatch: pytest.MonkeyPatch,
                                                           run_output: Path, tmp_path: Path) -> None:
    import shutil

    from unmetneed.cli import pipeline

    out = tmp_path / "out"
    shutil.copytree(run_output, out)
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}

    def killed(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(pipeline, "_write_tables", killed)
    with pytest.raises(KeyboardInterrupt):
        main(["run", str(small_config(tmp_path)), "--quiet", "--out", str(out)])
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.toml", "out"]
