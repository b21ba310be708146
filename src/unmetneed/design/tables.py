"""Weighted tables (R ``svytable``): cell codes shared with the Rao-Scott tests.

As R: on Taylor designs the counts are sums of weights over the rows holding
every column; on replicate designs they are then rescaled to the total weight
of all rows (``svytable.svyrep.design``'s default ``Ntotal``), which differs
only when some rows miss a column.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from unmetneed._validate import require_columns
from unmetneed.design.coding import code_series
from unmetneed.errors import DesignError

if TYPE_CHECKING:
    from unmetneed.design.survey_design import SurveyDesign

__all__ = ["cell_codes", "weighted_table"]


def cell_codes(
    design: SurveyDesign, columns: Sequence[str], *, na_rm: bool
) -> tuple[np.ndarray, np.ndarray, list[pd.Index]]:
    """Cell of each row (first column slowest), rows holding every column, levels."""
    if not columns:
        raise DesignError("table() needs at least one column")
    require_columns(design._data, columns, "table")
    complete = np.ones(design.n, dtype=bool)
    parts: list[np.ndarray] = []
    levels: list[pd.Index] = []
    for name in columns:
        series = design._data[name]
        missing = series.isna().to_numpy()
        if missing.any() and not na_rm:
            raise DesignError(
                f"table column {name!r} has missing values; pass na_rm=True to leave those rows out"
            )
        complete &= ~missing
        filled = series
        if missing.any():
            if isinstance(series.dtype, pd.CategoricalDtype):
                filled = series.cat.add_categories("__missing__").fillna("__missing__")
                codes, labels = code_series(filled, observed=False)
                labels = labels[:-1]
            else:
                present = series[~missing]
                _, labels = code_series(present)
                codes = np.zeros(design.n, dtype=np.intp)
                codes[~missing] = labels.get_indexer(pd.Index(present))
            parts.append(codes)
            levels.append(labels)
            continue
        codes, labels = code_series(filled, observed=False)
        parts.append(codes)
        levels.append(labels)
    sizes = [len(lv) for lv in levels]
    cell = np.zeros(design.n, dtype=np.int64)
    for codes, size in zip(parts, sizes, strict=True):
        cell = cell * size + np.where(complete, codes, 0)
    return cell, complete & design._in_design, levels


def weighted_table(design: SurveyDesign, columns: Sequence[str], *, na_rm: bool) -> pd.DataFrame:
    cell, keep, levels = cell_codes(design, columns, na_rm=na_rm)
    sizes = [len(lv) for lv in levels]
    total = int(np.prod(sizes))
    counts = np.bincount(cell[keep], weights=design._weights[keep], minlength=total)
    if design.replicates is not None and counts.sum() > 0:
        # R's svytable.svyrep.design rescales to Ntotal = sum of all the design's
        # weights (rows missing a column included); svytable.survey.design does not.
        counts = counts * (design._weights[design._in_design].sum() / counts.sum())
    grid = np.unravel_index(np.arange(total), sizes)
    frame = pd.DataFrame(
        {
            name: pd.Categorical(np.asarray(lv, dtype=object)[g], categories=lv)
            for name, lv, g in zip(columns, levels, grid, strict=True)
        }
    )
    frame["count"] = counts
    return frame
