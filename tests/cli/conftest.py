"""A small run of the whole pipeline, shared by the command-line, report and leak tests."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pytest

from unmetneed.cli import main

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "config.toml"
# The fewest draws published tables accept (quality flags need a spread).
TEST_DRAWS = 100


def small_config(tmp: Path, *, out: str = "out", draws: int = TEST_DRAWS) -> Path:
    """The example config with few draws and two groupings (fast enough for tests)."""
    text = EXAMPLE.read_text(encoding="utf-8")
    text = text.replace("../data/reference/", f"{(ROOT / 'data' / 'reference').as_posix()}/")
    for name in ("unpaid_carers_by_area.csv", "council_funded_community_by_area.csv"):
        text = text.replace(f'path = "{name}"', f'path = "{(ROOT / "examples" / name).as_posix()}"')
    text = text.replace('by = ["area_code", "age_band", "sex", "ethnic_group", "disability"]',
                        'by = ["area_code", "ethnic_group"]')
    text = text.replace("draws = 200", f"draws = {draws}")
    text = text.replace('dir = "unmetneed-output"', f'dir = "{out}"')
    path = tmp / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def run_console(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """One run with the draws saved: its output folder and what it printed."""
    tmp = tmp_path_factory.mktemp("run")
    config = small_config(tmp)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = main(["run", str(config), "--quiet", "--save-draws", "--out", str(tmp / "first")])
    assert code == 0
    return tmp / "first", printed.getvalue()


@pytest.fixture(scope="session")
def run_output(run_console: tuple[Path, str]) -> Path:
    return run_console[0]
