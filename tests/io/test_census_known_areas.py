"""read_census_table(known_areas=): a file cut at a line boundary loses areas, and says so."""

from __future__ import annotations

from pathlib import Path

import pytest

from unmetneed.errors import ReadError
from unmetneed.io import read_census_table

ROOT = Path(__file__).resolve().parents[2]
TS007 = ROOT / "data" / "reference" / "synthetic" / "census2021-ts007-utla-adults.csv"


def test_all_known_areas_read() -> None:
    table = read_census_table(TS007, level="total")
    codes = table["area_code"].tolist()
    assert read_census_table(TS007, level="total", known_areas=codes)["area_code"].tolist() == codes


def test_a_file_cut_at_a_line_boundary_is_refused(tmp_path: Path) -> None:
    codes = read_census_table(TS007, level="total")["area_code"].tolist()
    lines = TS007.read_text(encoding="utf-8").splitlines(keepends=True)
    cut = tmp_path / "census2021-ts007-utla-adults.csv"
    cut.write_text("".join(lines[: 1 + len(codes) // 2]), encoding="utf-8")
    read_census_table(cut, level="total")  # a valid CSV: nothing to see without known_areas
    with pytest.raises(ReadError, match=rf"has {len(codes) // 2} of the {len(codes)} known areas"):
        read_census_table(cut, level="total", known_areas=codes)


def test_unknown_areas_are_named() -> None:
    codes = read_census_table(TS007, level="total")["area_code"].tolist()
    with pytest.raises(ReadError, match="not in known_areas"):
        read_census_table(TS007, known_areas=codes[1:])
    with pytest.raises(ReadError, match="not one string"):
        read_census_table(TS007, known_areas=codes[0])
