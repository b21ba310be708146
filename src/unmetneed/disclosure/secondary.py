r"""Secondary suppression: no suppressed cell recoverable from a published total.

A *line* is a set of cells that add up to a total: the cells that share every
key except one additive dimension :math:`d` (all areas for one age band and
quantity; all age bands for one area), or the components and total of a
declared hierarchy (``need = council_funded + self_funded + unpaid_only +
unmet``). The total of every line is taken as published, in the table (a
``total_label`` row, which is itself a cell of the line) or elsewhere (area
totals, the England figure). A line with exactly one suppressed cell gives
that cell away by subtraction, so the rule enforced is

.. math::

    \#\{\text{suppressed cells in line } \ell\} \ne 1 \quad \text{for every line } \ell .

Each pass handles one dimension at a time: every line of it with exactly one
suppressed cell gets a partner, chosen among its published cells by, in
order: not a total row; belonging to the most other lines that also lack a
partner (one suppression then repairs several lines); smallest estimate; first
in the table. Passes repeat over all dimensions until nothing changes; the
suppressed set only grows, so this ends. Everything within a pass is
vectorised (bincount and lexsort over line memberships).

The rule is necessary, not sufficient: with several dimensions a suppressed
cell can still be pinned down by all the lines together (a cell joining two
otherwise separate rectangles of suppressions is the difference of their row
and column totals). So the result is audited exactly: the suppressed cells
:math:`x` satisfy the linear system :math:`A x = b` of all lines
(coefficient 1 for a component, -1 for an in-table total, published cells
moved into :math:`b`), and cell :math:`i` is determined exactly when the unit
vector :math:`e_i` lies in the row space of :math:`A`. A determined cell gets
a partner (the smallest published cell of one of its lines), the line rule
runs again, and so on until no suppressed cell is determined. The audit runs
per connected group of suppressed cells (cells sharing lines); a cell alone in
its line equals a published total and counts as published there.
"""

from __future__ import annotations

import warnings
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import scipy.linalg
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from unmetneed._blas import single_threaded_blas
from unmetneed.errors import UnmetneedWarning

__all__ = [
    "AUDIT_MAX_WORK",
    "KeyCodes",
    "Lines",
    "SecondaryReport",
    "build_lines",
    "determined_cells",
    "extend_suppression",
    "secondary_suppression",
]

# Largest linked group of suppressed cells audited exactly, as the work of its
# dense pivoted QR, cells x lines x min(cells, lines): about 2 s on one core
# (20,000 cells on 300 lines, or 1,300 cells on 1,300 lines).
AUDIT_MAX_WORK = 2e9
# The constraint matrix holds 0 and +-1 only: its rank and the projections
# below are far from these tolerances.
_RANK_TOL = 1e-10
_NULL_TOL = 1e-8


@dataclass(frozen=True)
class Lines:
    """Memberships of cells (rows of the count table) in additive lines."""

    rows: np.ndarray  # position of the cell in the count table, per membership
    line: np.ndarray  # line id, per membership
    is_total: np.ndarray  # the cell is the line's total row, per membership
    dimension: np.ndarray  # index into ``dims``, per membership
    n_lines: int
    dims: tuple[str, ...]


class KeyCodes:
    """The key columns of a table, each factorised once to integer codes.

    Groupings of several columns and the relabelling test then work on
    integer arrays (a few numpy calls) instead of pandas groupby each time.
    Missing keys are a category of their own.
    """

    def __init__(self, keys: pd.DataFrame) -> None:
        self.n_rows = len(keys)
        self.codes: dict[str, np.ndarray] = {}
        self.sizes: dict[str, int] = {}
        for column in keys.columns:
            codes, uniques = pd.factorize(keys[column], use_na_sentinel=False)
            self.codes[column] = codes.astype(np.int64)
            self.sizes[column] = len(uniques)

    def subset(self, rows: np.ndarray) -> KeyCodes:
        """The same columns for some rows only (codes re-numbered from 0)."""
        out = KeyCodes(pd.DataFrame(index=range(int(np.count_nonzero(rows)))))
        for column, codes in self.codes.items():
            out.codes[column], uniques = _dense(codes[rows])
            out.sizes[column] = uniques
        return out

    def group(self, columns: Sequence[str]) -> np.ndarray:
        """Code of each row's combination of ``columns`` (all zero for none)."""
        combined = np.zeros(self.n_rows, dtype=np.int64)
        for column in columns:
            # Mixed radix, made dense again each step so it cannot overflow.
            combined, _ = _dense(combined * self.sizes[column] + self.codes[column])
        return combined

    def one_to_one(self, a: str, b: str) -> bool:
        """Whether ``a`` and ``b`` relabel each other (``area_code``/``area_name``)."""
        _, pairs = _dense(self.codes[a] * self.sizes[b] + self.codes[b])
        used_a, used_b = _dense(self.codes[a])[1], _dense(self.codes[b])[1]
        return pairs == used_a == used_b


def _dense(codes: np.ndarray) -> tuple[np.ndarray, int]:
    uniques, inverse = np.unique(codes, return_inverse=True)
    return inverse.astype(np.int64).reshape(-1), uniques.size


def build_lines(
    keys: pd.DataFrame,
    codes: KeyCodes,
    dims: Sequence[str],
    relations: Mapping[str, Sequence[tuple[Hashable | None, Sequence[Any] | None]]],
) -> Lines:
    """Lines of the count table along each dimension.

    Parameters
    ----------
    keys : DataFrame
        Key columns of the count rows (one row per cell, unique).
    codes : KeyCodes
        The same columns as integer codes.
    dims : sequence of str
        Additive dimensions.
    relations : mapping
        Per dimension, ``(total, components)`` pairs: ``total`` is the category
        holding the line's total (None when it is published elsewhere) and
        ``components`` the categories adding up to it (None: every category
        but the total). When the total category is in the table, a group of
        cells without a total row has no published total and forms no line
        (e.g. a quantity a setting does not publish); with ``total`` None the
        total is taken as published elsewhere and every group forms a line.
    """
    keys = keys.reset_index(drop=True)
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
    offset = 0
    for k, dim in enumerate(dims):
        # Columns that only relabel ``dim`` (area_name for area_code) vary with
        # it along the line, so they must not split it.
        others = [c for c in keys.columns if c != dim and not codes.one_to_one(c, dim)]
        within = codes.group(others)
        n_within = int(within.max()) + 1 if len(within) else 0
        column = keys[dim]
        for total, components in relations[dim]:
            is_total = column.isin([total]).to_numpy() if total is not None else np.zeros(len(keys), bool)
            if components is None:
                member = np.ones(len(keys), dtype=bool)
            else:
                member = is_total | column.isin(list(components)).to_numpy()
            if total is not None:
                # groups with a total row: the others publish no sum of these cells
                has_total = np.zeros(n_within, dtype=bool)
                has_total[within[is_total]] = True
                member &= has_total[within]
            rows = np.flatnonzero(member)
            parts.append((rows, within[rows] + offset, is_total[rows], np.full(rows.size, k)))
            offset += n_within
    if not parts:
        empty = np.zeros(0, dtype=np.intp)
        return Lines(empty, empty, np.zeros(0, bool), empty, 0, tuple(dims))
    rows, line, is_total, dimension = (np.concatenate(p) for p in zip(*parts, strict=True))
    return Lines(rows, line, is_total, dimension, offset, tuple(dims))


def _suppressed_per_line(lines: Lines, suppressed: np.ndarray) -> np.ndarray:
    return np.bincount(lines.line, weights=suppressed[lines.rows], minlength=lines.n_lines)


def extend_suppression(lines: Lines, suppressed: np.ndarray, size: np.ndarray) -> tuple[np.ndarray, int]:
    """Add secondary suppressions until no line has exactly one suppressed cell.

    Parameters
    ----------
    lines : Lines
    suppressed : bool array, one per count row
    size : float array
        Estimates of the count rows (the smallest published cell is preferred).

    Returns
    -------
    suppressed : bool array
        The input suppressions and the secondary ones.
    unpaired : int
        Lines left with one suppressed cell because they have no other cell:
        their single cell *is* the line's total, so it is public wherever the
        total is, and no suppression here can hide it.
    """
    suppressed = np.asarray(suppressed, dtype=bool).copy()
    n_rows = suppressed.size
    size = np.where(np.isnan(size), np.inf, size)
    changed = True
    while changed:
        changed = False
        for k in range(len(lines.dims)):
            count = _suppressed_per_line(lines, suppressed)
            needy_member = (count == 1)[lines.line]
            candidate = needy_member & (lines.dimension == k) & ~suppressed[lines.rows]
            if not candidate.any():
                continue
            # How many lines lacking a partner each cell belongs to: a cell in
            # several of them repairs them all at once.
            score = np.bincount(lines.rows[needy_member], minlength=n_rows)
            where = np.flatnonzero(candidate)
            rows, line = lines.rows[where], lines.line[where]
            order = np.lexsort((rows, size[rows], -score[rows], lines.is_total[where], line))
            first = np.ones(order.size, dtype=bool)
            first[1:] = line[order][1:] != line[order][:-1]
            suppressed[rows[order][first]] = True
            changed = True
    unpaired = int(np.count_nonzero(_suppressed_per_line(lines, suppressed) == 1))
    return suppressed, unpaired


def _line_sizes(lines: Lines) -> np.ndarray:
    return np.bincount(lines.line, minlength=lines.n_lines)


def determined_cells(lines: Lines, suppressed: np.ndarray) -> tuple[np.ndarray, int]:
    """Suppressed cells that the lines' totals and the published cells pin down.

    Returns the positions of the determined cells and the number of cells
    left unaudited (in a linked group whose audit would exceed
    :data:`AUDIT_MAX_WORK`).
    """
    single = np.zeros(suppressed.size, dtype=bool)
    single[lines.rows[_line_sizes(lines)[lines.line] == 1]] = True
    unknown = suppressed & ~single  # a cell alone in a line is its public total
    keep = unknown[lines.rows]
    rows, line = lines.rows[keep], lines.line[keep]
    if rows.size == 0:
        return np.zeros(0, dtype=np.intp), 0
    cells, cell_at = np.unique(rows, return_inverse=True)
    used_lines, line_at = np.unique(line, return_inverse=True)
    n_cells, n_lines = cells.size, used_lines.size
    coef = np.where(lines.is_total[keep], -1.0, 1.0)
    a = sp.csr_matrix((coef, (line_at, cell_at)), shape=(n_lines, n_cells))
    pattern = sp.csr_matrix(
        (np.ones(rows.size), (line_at, n_lines + cell_at)), shape=(n_lines + n_cells,) * 2
    )
    n_groups, label = connected_components(pattern, directed=False)
    cell_group = label[n_lines:]
    line_group = label[:n_lines]
    cell_order = np.argsort(cell_group, kind="stable")
    line_order = np.argsort(line_group, kind="stable")
    cell_bounds = np.searchsorted(cell_group[cell_order], np.arange(n_groups + 1))
    line_bounds = np.searchsorted(line_group[line_order], np.arange(n_groups + 1))
    found = []
    skipped = 0
    with single_threaded_blas():  # many small dense problems: one thread is faster
        for g in range(n_groups):  # one dense problem per linked group
            group_cells = cell_order[cell_bounds[g] : cell_bounds[g + 1]]
            group_lines = line_order[line_bounds[g] : line_bounds[g + 1]]
            k, m = group_cells.size, group_lines.size
            if float(k) * m * min(k, m) > AUDIT_MAX_WORK:
                skipped += k
                continue
            sub = a[group_lines][:, group_cells].toarray()
            found.append(cells[group_cells[_in_row_space(sub)]])
    determined = np.concatenate(found) if found else np.zeros(0, dtype=np.intp)
    return np.sort(determined), skipped


def _in_row_space(a: np.ndarray) -> np.ndarray:
    """Which unit vectors e_i lie in the row space of ``a`` (cell i is determined).

    With ``Q`` an orthonormal basis of the row space (pivoted QR of a^T),
    e_i is in it exactly when its projection keeps its length:
    :math:`\\lVert Q_{i\\cdot} \\rVert^2 = 1`.
    """
    q, r, _ = scipy.linalg.qr(a.T, mode="economic", pivoting=True)
    diag = np.abs(np.diag(r))
    rank = int(np.count_nonzero(diag > _RANK_TOL * max(a.shape) * (diag[0] if diag.size else 0.0)))
    length = np.einsum("ij,ij->i", q[:, :rank], q[:, :rank])
    return length > 1.0 - _NULL_TOL


def _partners(lines: Lines, suppressed: np.ndarray, size: np.ndarray, determined: np.ndarray) -> np.ndarray:
    """For each determined cell, the best published cell of one of its lines."""
    sizes = _line_sizes(lines)
    is_determined = np.zeros(suppressed.size, dtype=bool)
    is_determined[determined] = True
    their = is_determined[lines.rows] & (sizes[lines.line] > 1)
    touched = np.zeros(lines.n_lines, dtype=bool)
    touched[lines.line[their]] = True
    candidate = touched[lines.line] & ~suppressed[lines.rows]
    if not candidate.any():
        return np.zeros(0, dtype=np.intp)
    where = np.flatnonzero(candidate)
    rows, line, total = lines.rows[where], lines.line[where], lines.is_total[where]
    order = np.lexsort((rows, size[rows], total, line))
    first = np.ones(order.size, dtype=bool)
    first[1:] = line[order][1:] != line[order][:-1]
    best_row = np.full(lines.n_lines, -1, dtype=np.intp)
    best_rank = np.full(lines.n_lines, np.inf)
    best_row[line[order][first]] = rows[order][first]
    # Rank of each line's best cell: non-totals first, then by size.
    rank = np.argsort(np.lexsort((rows[order][first], size[rows[order][first]], total[order][first])))
    best_rank[line[order][first]] = rank
    # Each determined cell takes the best partner over its lines.
    det_where = np.flatnonzero(their & (best_row[lines.line] >= 0))
    if det_where.size == 0:
        return np.zeros(0, dtype=np.intp)
    det_rows, det_lines = lines.rows[det_where], lines.line[det_where]
    order = np.lexsort((best_rank[det_lines], det_rows))
    first = np.ones(order.size, dtype=bool)
    first[1:] = det_rows[order][1:] != det_rows[order][:-1]
    return np.unique(best_row[det_lines[order][first]])


@dataclass(frozen=True)
class SecondaryReport:
    """What secondary suppression could not do."""

    unpaired_lines: int  # lines of one cell: it equals a published total
    recoverable_cells: int  # determined cells with no published cell left to pair
    unaudited_cells: int  # cells in linked groups too large for the exact audit


def secondary_suppression(
    lines: Lines, suppressed: np.ndarray, size: np.ndarray, *, audit: bool = True
) -> tuple[np.ndarray, SecondaryReport]:
    """The line rule, then the exact audit, repeated until neither adds a cell."""
    size = np.where(np.isnan(size), np.inf, size)
    suppressed, unpaired = extend_suppression(lines, suppressed, size)
    recoverable = unaudited = 0
    while audit:
        determined, unaudited = determined_cells(lines, suppressed)
        partners = _partners(lines, suppressed, size, determined)
        if partners.size == 0:
            recoverable = determined.size
            break
        suppressed = suppressed.copy()
        suppressed[partners] = True
        suppressed, unpaired = extend_suppression(lines, suppressed, size)
    if unaudited:
        warnings.warn(
            f"{unaudited:,} suppressed cells are linked in groups too large to be audited "
            "for exact recovery (the line rule holds for them); protect smaller tables, "
            "e.g. one quantity or one region at a time",
            UnmetneedWarning,
            stacklevel=3,
        )
    return suppressed, SecondaryReport(unpaired, recoverable, unaudited)
