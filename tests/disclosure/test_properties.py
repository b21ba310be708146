"""Hypothesis: what protect() guarantees for any table of counts."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from unmetneed.disclosure import protect

MAX_EXAMPLES = 40
DIMS = ["area_code", "group"]
NUMBERS = ["estimate", "se", "ci_lower", "ci_upper", "cv", "n"]


@dataclass(frozen=True)
class Case:
    counts: np.ndarray
    cv: np.ndarray
    n: np.ndarray
    totals: bool
    min_count: int
    rounding: int | None
    min_n: int | None
    suppress_cv: float | None


@st.composite
def cases(draw: st.DrawFn) -> Case:
    rows = draw(st.integers(1, 6))
    columns = draw(st.integers(1, 5))
    size = rows * columns
    # A mix of small counts (to be suppressed) and large ones, some non-integer.
    count = st.one_of(st.integers(0, 15).map(float), st.floats(0, 2_000, allow_nan=False),
                      st.integers(10, 10_000).map(float))
    counts = np.array(draw(st.lists(count, min_size=size, max_size=size))).reshape(rows, columns)
    cv = np.array(draw(st.lists(st.floats(0, 0.8), min_size=size, max_size=size))).reshape(rows, columns)
    n = np.array(draw(st.lists(st.integers(0, 80), min_size=size, max_size=size))).reshape(rows, columns)
    return Case(counts, cv, n, totals=draw(st.booleans()),
                min_count=draw(st.sampled_from([0, 5, 10, 12])),
                rounding=draw(st.sampled_from([None, 5, 10])),
                min_n=draw(st.sampled_from([None, 10, 30])),
                suppress_cv=draw(st.sampled_from([None, 0.5])))


def run(case: Case, make, table: pd.DataFrame | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    if table is None:
        table = make(case.counts, cv=case.cv, n=case.n, totals=case.totals)
    out = protect(table, min_count=case.min_count, rounding=case.rounding, min_n=case.min_n,
                  suppress_cv=case.suppress_cv, by=DIMS,
                  total_label="Total" if case.totals else None)
    return table, out


@settings(max_examples=MAX_EXAMPLES, deadline=None)
@given(case=cases())
def test_rows_and_keys_are_kept(grid_maker, case):
    table, out = run(case, grid_maker)
    assert len(out) == len(table)
    pd.testing.assert_frame_equal(out[DIMS], table[DIMS])
    assert out["flag"].isin(["ok", "low_reliability", "suppressed"]).all()
    hidden = (out["flag"] == "suppressed").to_numpy()
    assert out.loc[hidden, NUMBERS].isna().all().all()
    assert out.loc[~hidden, ["estimate", "n"]].notna().all().all()  # cv is NaN for a zero


@settings(max_examples=MAX_EXAMPLES, deadline=None)
@given(case=cases())
def test_no_published_count_below_min_count(grid_maker, case):
    table, out = run(case, grid_maker)
    published = (out["flag"] != "suppressed").to_numpy()
    assert (out.loc[published, "estimate"] >= case.min_count).all()
    assert (table.loc[published, "estimate"] >= case.min_count).all()
    # ...and the primary rules all hold.
    if case.min_n is not None:
        assert (table.loc[published, "n"] >= case.min_n).all()
    if case.suppress_cv is not None:
        assert not (table.loc[published, "cv"] > case.suppress_cv).any()


@settings(max_examples=MAX_EXAMPLES, deadline=None)
@given(case=cases())
def test_rounded_values_are_multiples_of_the_base(grid_maker, case):
    _, out = run(case, grid_maker)
    if case.rounding is None:
        return
    published = out[out["flag"] != "suppressed"]
    for column in ("estimate", "se", "ci_lower", "ci_upper"):
        assert (published[column] % case.rounding == 0).all(), column


@settings(max_examples=MAX_EXAMPLES, deadline=None)
@given(case=cases())
def test_rounded_intervals_contain_the_rounded_estimate(grid_maker, case):
    table, out = run(case, grid_maker)
    published = (out["flag"] != "suppressed").to_numpy()
    p = out[published]
    assert (p["ci_lower"] <= p["estimate"]).all() and (p["estimate"] <= p["ci_upper"]).all()
    # Outward rounding: never narrower than before, but for the documented snap of values
    # within 1e-9 units of the grid (floating-point noise) onto it (disclosure/rounding.py).
    base = case.rounding or 1
    lower, upper = table.loc[published, "ci_lower"], table.loc[published, "ci_upper"]
    assert (p["ci_lower"] <= lower + 1e-9 * np.maximum(base, np.abs(lower))).all()
    assert (p["ci_upper"] >= upper - 1e-9 * np.maximum(base, np.abs(upper))).all()
    if case.rounding is not None:
        assert (np.abs(p["estimate"] - table.loc[published, "estimate"]) <= case.rounding / 2 + 1e-9).all()


@settings(max_examples=MAX_EXAMPLES, deadline=None)
@given(case=cases())
def test_no_line_with_a_published_total_has_exactly_one_suppressed_cell(grid_maker, case):
    _, out = run(case, grid_maker)
    hidden = out["flag"].eq("suppressed")
    for dim in DIMS:
        (other,) = [d for d in DIMS if d != dim]
        per_line = hidden.groupby(out[other]).agg(["sum", "size"])
        # A line of one cell is its own total: nothing here can hide it.
        lonely = per_line[(per_line["sum"] == 1) & (per_line["size"] > 1)]
        assert lonely.empty, f"lines along {dim} with one suppressed cell: {list(lonely.index)}"
    expected_unpaired = 0
    for dim in DIMS:
        (other,) = [d for d in DIMS if d != dim]
        per_line = hidden.groupby(out[other]).agg(["sum", "size"])
        expected_unpaired += int(((per_line["sum"] == 1) & (per_line["size"] == 1)).sum())
    assert out.attrs["disclosure"]["unpaired_lines"] == expected_unpaired


@settings(max_examples=MAX_EXAMPLES, deadline=None)
@given(case=cases())
def test_protect_is_idempotent(grid_maker, case):
    _, once = run(case, grid_maker)
    _, twice = run(case, grid_maker, table=once)
    pd.testing.assert_frame_equal(once, twice)
    assert once.attrs == twice.attrs


@settings(max_examples=MAX_EXAMPLES, deadline=None)
@given(case=cases(), seed=st.integers(0, 2**32 - 1))
def test_row_order_does_not_matter(grid_maker, case, seed):
    table = grid_maker(case.counts, cv=case.cv, n=case.n, totals=case.totals)
    _, out = run(case, grid_maker, table=table)
    shuffled = table.sample(frac=1.0, random_state=np.random.default_rng(seed))
    _, out_shuffled = run(case, grid_maker, table=shuffled)
    # Ties between equal estimates may be broken differently; the primary
    # suppressions and the rule hold either way, and without ties the result
    # is the same.
    if not table["estimate"].duplicated().any():
        pd.testing.assert_frame_equal(out_shuffled.loc[out.index], out)


def determined(out: pd.DataFrame, totals: bool) -> list[tuple[str, str]]:
    """Suppressed cells the published cells and totals fix (rank test, by hand)."""
    hidden = out.set_index(DIMS)["flag"].eq("suppressed").unstack()
    cells = [(r, c) for r in hidden.index for c in hidden.columns if hidden.loc[r, c]]
    lines = []
    alone = set()  # a cell alone in its line equals the line's published total
    for dim in DIMS:
        (other,) = [d for d in DIMS if d != dim]
        for _, group in out.groupby(other):
            if len(group) < 2:
                alone.update(zip(group["area_code"], group["group"], strict=True))
                continue
            line = {}
            for r, c in zip(group["area_code"], group["group"], strict=True):
                is_total = (r if dim == "area_code" else c) == "Total"
                line[(r, c)] = -1.0 if is_total and totals else 1.0
            lines.append(line)
    unknown = [cell for cell in cells if cell not in alone]
    if not unknown:
        return []
    a = np.array([[line.get(cell, 0.0) for cell in unknown] for line in lines])
    rank = np.linalg.matrix_rank(a)
    fixed = []
    for i, cell in enumerate(unknown):
        e = np.zeros(len(unknown))
        e[i] = 1.0
        if np.linalg.matrix_rank(np.vstack([a, e])) == rank:
            fixed.append(cell)
    return fixed


@settings(max_examples=MAX_EXAMPLES, deadline=None)
@given(case=cases())
def test_no_suppressed_cell_can_be_solved_from_the_totals(grid_maker, case):
    _, out = run(case, grid_maker)
    solvable = determined(out, case.totals)
    assert solvable == [], f"cells fixed by the totals: {solvable}"
    assert out.attrs["disclosure"]["recoverable_cells"] == 0
