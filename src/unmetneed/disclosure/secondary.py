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
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["Lines", "build_lines", "extend_suppression", "group_codes", "one_to_one"]


@dataclass(frozen=True)
class Lines:
    """Memberships of cells (rows of the count table) in additive lines."""

    rows: np.ndarray  # position of the cell in the count table, per membership
    line: np.ndarray  # line id, per membership
    is_total: np.ndarray  # the cell is the line's total row, per membership
    dimension: np.ndarray  # index into ``dims``, per membership
    n_lines: int
    dims: tuple[str, ...]


def group_codes(keys: pd.DataFrame, columns: Sequence[str]) -> np.ndarray:
    """Integer code of each row's combination of ``columns`` (all zero for none)."""
    if not columns:
        return np.zeros(len(keys), dtype=np.intp)
    codes = keys.groupby(list(columns), dropna=False, sort=False, observed=True).ngroup()
    return codes.to_numpy(dtype=np.intp)


def one_to_one(keys: pd.DataFrame, a: str, b: str) -> bool:
    """Whether columns ``a`` and ``b`` relabel each other (``area_code``/``area_name``)."""
    pairs = len(keys[[a, b]].drop_duplicates())
    return pairs == keys[a].nunique(dropna=False) == keys[b].nunique(dropna=False)


def build_lines(
    keys: pd.DataFrame,
    dims: Sequence[str],
    relations: Mapping[str, Sequence[tuple[Hashable | None, Sequence[Any] | None]]],
) -> Lines:
    """Lines of the count table along each dimension.

    Parameters
    ----------
    keys : DataFrame
        Key columns of the count rows (one row per cell, unique).
    dims : sequence of str
        Additive dimensions.
    relations : mapping
        Per dimension, ``(total, components)`` pairs: ``total`` is the category
        holding the line's total (None when it is published elsewhere) and
        ``components`` the categories adding up to it (None: every category
        but the total).
    """
    keys = keys.reset_index(drop=True)
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
    offset = 0
    for k, dim in enumerate(dims):
        # Columns that only relabel ``dim`` (area_name for area_code) vary with
        # it along the line, so they must not split it.
        others = [c for c in keys.columns if c != dim and not one_to_one(keys, c, dim)]
        within = group_codes(keys, others)
        n_within = int(within.max()) + 1 if len(within) else 0
        column = keys[dim]
        for total, components in relations[dim]:
            is_total = column.isin([total]).to_numpy() if total is not None else np.zeros(len(keys), bool)
            if components is None:
                member = np.ones(len(keys), dtype=bool)
            else:
                member = is_total | column.isin(list(components)).to_numpy()
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


def extend_suppression(
    lines: Lines, suppressed: np.ndarray, size: np.ndarray
) -> tuple[np.ndarray, int]:
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
