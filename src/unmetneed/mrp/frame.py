"""`PopulationFrame`: the poststratification cells and their population counts."""

from __future__ import annotations

import html
from collections.abc import Sequence

import numpy as np
import pandas as pd

from unmetneed._immutable import readonly
from unmetneed._validate import as_column_list, repeated_keys, require_columns, row_examples
from unmetneed.errors import FrameError

__all__ = ["PopulationFrame"]


class PopulationFrame:
    """Cells of a population (one row per combination of area and characteristics).

    Parameters
    ----------
    cells : DataFrame
        One row per cell: the cell's characteristics (categorical columns such
        as ``area_code``, ``age_band``, ``sex``; numeric area covariates are
        allowed) and its population count.
    count : str, default "count"
        The column of population counts: finite, non-negative.

    Raises
    ------
    FrameError
        Missing or negative counts, or two rows for the same combination of
        the categorical columns.
    MissingColumnError
        The count column does not exist.

    Examples
    --------
    >>> import pandas as pd, unmetneed as um
    >>> cells = pd.DataFrame({"area_code": ["A", "A", "B", "B"],
    ...                       "sex": ["Female", "Male", "Female", "Male"],
    ...                       "count": [510, 490, 260, 250]})
    >>> frame = um.PopulationFrame(cells)
    >>> frame.total
    1510.0
    >>> frame.totals("area_code").tolist()
    [1000.0, 510.0]
    """

    def __init__(self, cells: pd.DataFrame, *, count: str = "count") -> None:
        if not isinstance(cells, pd.DataFrame):
            raise FrameError(f"cells must be a pandas DataFrame; got {type(cells).__name__}")
        if len(cells) == 0:
            raise FrameError("the frame has no cells")
        require_columns(cells, [count], "count")
        counts = pd.to_numeric(cells[count], errors="coerce").to_numpy(dtype=np.float64)
        bad = ~np.isfinite(counts)
        if bad.any():
            raise FrameError(
                f"count column {count!r} has missing or non-numeric values in "
                f"{row_examples(bad, cells.index)}"
            )
        negative = counts < 0
        if negative.any():
            raise FrameError(
                f"count column {count!r} has negative counts in {row_examples(negative, cells.index)}"
            )
        keys = [c for c in cells.columns if c != count and not _is_numeric_covariate(cells[c])]
        repeated = repeated_keys(cells, keys) if keys else None
        if repeated:
            n_repeated, example = repeated
            raise FrameError(
                f"{n_repeated:,} cells repeat a combination of {keys}, e.g. {example}; aggregate them "
                "(sum the counts) first"
            )
        for column in keys:
            if cells[column].isna().any():
                raise FrameError(
                    f"cell column {column!r} has missing values in "
                    f"{row_examples(cells[column].isna().to_numpy(), cells.index)}"
                )
        # Deep copies: on pandas < 3 a shallow one shares the caller's arrays (and marking
        # a shared array read-only would freeze the caller's frame).
        self._cells = cells.reset_index(drop=True).copy(deep=True)
        self._count = count
        self._counts = readonly(counts, np.float64)
        self.attrs: dict[str, object] = {}  # provenance, e.g. the raking report of a synthetic frame

    @property
    def cells(self) -> pd.DataFrame:
        """A copy of the cells: changing it never changes the frame."""
        return self._cells.copy(deep=True)

    @property
    def count_col(self) -> str:
        return self._count

    @property
    def counts(self) -> np.ndarray:
        """Population count of each cell (read-only float64)."""
        return self._counts

    @property
    def variables(self) -> list[str]:
        """Columns other than the count."""
        return [c for c in self._cells.columns if c != self._count]

    @property
    def total(self) -> float:
        return float(self._counts.sum())

    def __len__(self) -> int:
        return len(self._cells)

    def totals(self, by: str | Sequence[str]) -> pd.Series:
        """Population by group of ``by`` (observed groups, in category order)."""
        columns = as_column_list(by)
        require_columns(self._cells, columns, "by")
        grouped = pd.Series(
            self._counts,
            index=pd.MultiIndex.from_frame(self._cells[columns])
            if len(columns) > 1
            else pd.Index(self._cells[columns[0]]),
        )
        return grouped.groupby(level=list(range(len(columns))), observed=True, sort=True).sum()

    def __repr__(self) -> str:
        return (
            f"<PopulationFrame: {len(self):,} cells, population {self.total:,.0f}, "
            f"variables {self.variables}>"
        )

    def _repr_html_(self) -> str:
        head = self._cells.head(10).to_html(index=False, border=0)
        return f"<div><p>{html.escape(repr(self))}</p>{head}</div>"


def _is_numeric_covariate(series: pd.Series) -> bool:
    return pd.api.types.is_float_dtype(series.dtype)
