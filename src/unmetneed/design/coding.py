"""Integer coding of category columns, done once per design and reused.

Levels follow R's factor order: the category order of a pandas Categorical
(unused categories dropped), otherwise the sorted unique values. A cross of
several columns is ordered lexicographically by the columns in turn.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from unmetneed._validate import column_values

__all__ = ["Coding", "code_columns", "code_series", "factorize_with_first"]


@dataclass(frozen=True)
class Coding:
    """Integer codes ``0..n_levels-1`` per row and the levels they stand for."""

    codes: np.ndarray
    levels: pd.DataFrame  # one row per level, one column per coded variable

    @property
    def n_levels(self) -> int:
        return len(self.levels)


def code_series(series: pd.Series, *, observed: bool = True) -> tuple[np.ndarray, pd.Index]:
    """Code one column (no missing values) as levels in factor order.

    ``observed=False`` keeps the unused categories of a Categorical.
    """
    if isinstance(series.dtype, pd.CategoricalDtype):
        raw = series.cat.codes.to_numpy().astype(np.intp)
        if not observed:
            return raw, pd.Index(series.cat.categories, name=series.name)
        used = np.bincount(raw, minlength=len(series.cat.categories)) > 0
        remap = np.cumsum(used) - 1
        return remap[raw], pd.Index(series.cat.categories[used], name=series.name)
    values = series.to_numpy()
    if values.dtype.kind in "iu" and values.size:
        low, high = int(values.min()), int(values.max())
        if high - low <= 4 * values.size + 1024:
            # Small integer range: a bincount remap is O(n) with no hashing or sorting.
            shifted = (values - low).astype(np.intp)
            present = np.bincount(shifted, minlength=high - low + 1) > 0
            remap = np.cumsum(present) - 1
            levels = np.flatnonzero(present) + low
            return remap[shifted], pd.Index(levels.astype(values.dtype), name=series.name)
    codes, uniques = pd.factorize(series, sort=True)
    return codes.astype(np.intp), pd.Index(uniques, name=series.name)


def code_columns(df: pd.DataFrame, columns: Sequence[str], role: str) -> Coding:
    """Code the cross-classification of ``columns`` (observed combinations only)."""
    coded = [code_series(column_values(df, c, role)) for c in columns]
    if len(coded) == 1:
        codes, levels = coded[0]
        return Coding(codes, pd.DataFrame({columns[0]: levels}))
    sizes = [len(levels) for _, levels in coded]
    key = np.ravel_multi_index([c for c, _ in coded], sizes).astype(np.int64)
    codes, uniques = pd.factorize(key, sort=True)
    parts = np.unravel_index(np.asarray(uniques), sizes)
    frame = pd.DataFrame(
        {name: lv.take(part) for name, (_, lv), part in zip(columns, coded, parts, strict=True)}
    )
    return Coding(codes.astype(np.intp), frame.reset_index(drop=True))


def factorize_with_first(key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Codes of ``key`` in order of first appearance, and the row where each first appears."""
    codes, uniques = pd.factorize(key)
    first = np.empty(len(uniques), dtype=np.intp)
    # Reversed assignment: the last write for each code is its first occurrence.
    first[codes[::-1]] = np.arange(key.size - 1, -1, -1)
    return np.asarray(codes, dtype=np.intp), first
