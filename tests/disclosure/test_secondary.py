"""Lines of a table whose total category exists but not in every group of cells."""

from __future__ import annotations

import pandas as pd

from unmetneed.disclosure import protect


def _table() -> pd.DataFrame:
    # Two settings; "total" is published for the household setting only (the care-home
    # setting does not publish that quantity), so the care-home cells form no line.
    rows = []
    for area, small in (("A", 4.0), ("B", 400.0)):
        rows += [
            {"area": area, "setting": "household", "quantity": "part1", "estimate": small},
            {"area": area, "setting": "household", "quantity": "part2", "estimate": 900.0},
            {"area": area, "setting": "household", "quantity": "total", "estimate": small + 900.0},
            {"area": area, "setting": "care_home", "quantity": "part1", "estimate": 3.0 if area == "A" else 500.0},
            {"area": area, "setting": "care_home", "quantity": "part2", "estimate": 300.0},
        ]
    table = pd.DataFrame(rows)
    table["measure"] = "count"
    table["se"] = 0.05 * table["estimate"]
    table["ci_lower"] = table["estimate"] * 0.9
    table["ci_upper"] = table["estimate"] * 1.1
    table["cv"] = 0.05
    table["n"] = 100
    return table


def test_a_group_without_its_total_row_forms_no_line() -> None:
    out = protect(_table(), by=["area"], hierarchy={"quantity": {"total": ["part1", "part2"]}},
                  rounding=None)
    flags = out.set_index(["area", "setting", "quantity"])["flag"].sort_index()
    # household A: part1 < 10 is suppressed, and total = part1 + part2 gets a partner
    assert flags[("A", "household", "part1")] == "suppressed"
    assert (flags.loc[("A", "household")] == "suppressed").sum() >= 2
    # the care-home cells publish no total of these quantities: no line, so care-home part1
    # being suppressed does not take part2 with it (before, the missing total counted as
    # published, and the audit cascaded through every line of the table)
    assert flags[("A", "care_home", "part1")] == "suppressed"
    assert flags[("A", "care_home", "part2")] == "ok"
    assert flags[("B", "care_home", "part2")] == "ok"
    assert out.attrs["disclosure"]["unpaired_lines"] == 0
