"""Collapse respondents into the cells of the margin variables' cross-classification.

Raking and calibration weights depend on a row only through its margin
categories (and numeric auxiliaries), so the solvers work on the distinct
combinations: at most a few hundred thousand cells however many rows there
are. Rows of a cell share the cell's g-weight.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from unmetneed.design.coding import factorize_with_first
from unmetneed.design.variance import group_totals
from unmetneed.weighting.blocks import Block

__all__ = ["Cells", "collapse_to_cells"]

DENSE_KEY_LIMIT = 1 << 25  # cross-classifications up to 33M combinations use a bincount


@dataclass(frozen=True, eq=False)
class Cells:
    """Respondent cells and each block's category (or value) per cell."""

    cell: np.ndarray  # (n,) cell of each row
    n_cells: int
    codes: list[np.ndarray | None]  # per block: (C,) category of each cell
    values: list[np.ndarray | None]  # per block: (C,) auxiliary value of each cell

    def sum(self, weights: np.ndarray) -> np.ndarray:
        """Cell totals of row weights: (C,) or, for an (n x R) matrix, (C x R)."""
        if weights.ndim == 1:
            return np.bincount(self.cell, weights=weights, minlength=self.n_cells)
        return group_totals(weights, self.cell, self.n_cells)


def collapse_to_cells(blocks: list[Block]) -> Cells:
    """Group rows by every block's category and auxiliary value."""
    n = next(b.codes.size if b.codes is not None else b.auxiliary.size for b in blocks)
    key = np.zeros(n, dtype=np.int64)
    span = 1
    renumbered = False
    parts: list[tuple[np.ndarray, int]] = []
    for block in blocks:
        if block.codes is not None:
            parts.append((block.codes, block.size))
        else:
            codes, uniques = pd.factorize(block.auxiliary)
            parts.append((codes, len(uniques)))
    for codes, size in parts:
        if span * size >= 2**62:
            key, _ = pd.factorize(key)  # renumber compactly before the key overflows
            renumbered = True
            span = int(key.max()) + 1
        key *= size
        key += codes
        span *= size
    if not renumbered and all(b.codes is not None for b in blocks) and span <= DENSE_KEY_LIMIT:
        # Categorical margins only: the key decodes to each block's category, so a
        # bincount remap finds the cells without hashing.
        present = np.bincount(key, minlength=span) > 0
        occupied = np.flatnonzero(present)
        cell = (np.cumsum(present) - 1)[key]
        decoded = np.unravel_index(occupied, [size for _, size in parts])
        return Cells(
            cell=cell,
            n_cells=occupied.size,
            codes=[np.asarray(c, dtype=np.intp) for c in decoded],
            values=[None] * len(blocks),
        )
    cell, first = factorize_with_first(key)
    block_codes: list[np.ndarray | None] = []
    block_values: list[np.ndarray | None] = []
    for block in blocks:
        if block.codes is not None:
            block_codes.append(block.codes[first])
            block_values.append(None)
        else:
            block_codes.append(None)
            block_values.append(block.auxiliary[first])
    return Cells(cell=cell, n_cells=first.size, codes=block_codes, values=block_values)
