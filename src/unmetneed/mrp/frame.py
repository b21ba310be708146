"""`PopulationFrame`: the poststratification cells and their population counts."""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from unmetneed._immutable import readonly
from unmetneed._validate import as_column_list, repeated_keys, require_columns, row_examples
from unmetneed.design.partitions import (
    group_coding,
    group_keys,
    is_dask_collection,
    is_dask_frame,
    stream_by_group,
)
from unmetneed.errors import FrameError

__all__ = ["PopulationFrame"]


class PopulationFrame:
    """Cells of a population (one row per combination of area and characteristics).

    Parameters
    ----------
    cells : DataFrame or dask.dataframe.DataFrame
        One row per cell: the cell's characteristics (categorical columns such
        as ``area_code``, ``age_band``, ``sex``; numeric area covariates are
        allowed) and its population count. A Dask DataFrame (e.g. from
        ``dd.read_parquet``) is not loaded: its columns and the count's dtype
        are checked now, the rest partition by partition when it is streamed
        (see :func:`unmetneed.mrp.streaming.stream_group_totals`), and cells
        repeated across partitions by :meth:`check_repeated_cells`.
    count : str, default "count"
        The column of population counts: finite, non-negative.

    Raises
    ------
    FrameError
        Missing or negative counts, or two rows for the same combination of
        the categorical columns (for a Dask DataFrame: a count column that is
        not numeric; the others when a partition is read, repeats within a
        partition).
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
        self._count = count
        self.attrs: dict[str, object] = {}  # provenance, e.g. the raking report of a synthetic frame
        self._dask: Any = None
        self._repeats_checked = False  # a Dask-backed frame's cells checked across partitions
        if is_dask_frame(cells):
            from unmetneed.mrp.streaming import check_dask_frame

            self._dask = check_dask_frame(cells, count)
            return
        if isinstance(cells, pd.Series) or is_dask_collection(cells):
            raise FrameError(
                f"cells must be a pandas or Dask DataFrame with a count column; got {type(cells).__name__} "
                "(a Series: use series.reset_index() or series.to_frame())"
            )
        if not isinstance(cells, pd.DataFrame):
            raise FrameError(f"cells must be a pandas DataFrame; got {type(cells).__name__}")
        counts = validate_cells(cells, count)
        # Deep copies: on pandas < 3 a shallow one shares the caller's arrays (and marking
        # a shared array read-only would freeze the caller's frame).
        self._cells = cells.reset_index(drop=True).copy(deep=True)
        self._counts = readonly(counts, np.float64)

    @property
    def is_dask(self) -> bool:
        """Whether the cells are a Dask DataFrame (streamed by partition, never held in memory).

        Examples
        --------
        >>> import pandas as pd, unmetneed as um
        >>> um.PopulationFrame(pd.DataFrame({"area_code": ["A"], "count": [5]})).is_dask
        False
        """
        return self._dask is not None

    @property
    def dask(self) -> Any:
        """The Dask DataFrame of a Dask-backed frame (``None`` for an in-memory one).

        Examples
        --------
        >>> import pandas as pd, unmetneed as um
        >>> um.PopulationFrame(pd.DataFrame({"area_code": ["A"], "count": [5]})).dask is None
        True
        """
        return self._dask

    @property
    def cells(self) -> pd.DataFrame:
        """A copy of the cells: changing it never changes the frame.

        Raises
        ------
        FrameError
            The frame is Dask-backed: its cells are not held in memory.

        Examples
        --------
        >>> import pandas as pd, unmetneed as um
        >>> um.PopulationFrame(pd.DataFrame({"area_code": ["A"], "count": [5]})).cells.shape
        (1, 2)
        """
        self._require_in_memory()
        return self._cells.copy(deep=True)

    def _require_in_memory(self) -> None:
        if self._dask is not None:
            raise FrameError(
                f"the frame is Dask-backed ({self._dask.npartitions} partitions): its cells are not in "
                "memory; poststratify streams them, or make an in-memory frame with "
                "PopulationFrame(frame.dask.compute(), count=frame.count_col) if they fit"
            )

    @property
    def count_col(self) -> str:
        return self._count

    @property
    def counts(self) -> np.ndarray:
        """Population count of each cell (read-only float64; in-memory frames only, see :attr:`cells`)."""
        self._require_in_memory()
        return self._counts

    @property
    def variables(self) -> list[str]:
        """Columns other than the count."""
        columns = self._dask.columns if self._dask is not None else self._cells.columns
        return [c for c in columns if c != self._count]

    @property
    def total(self) -> float:
        """The population: the sum of the counts (computed with Dask for a Dask-backed frame)."""
        if self._dask is not None:
            return float(self._dask_totals([])[1].sum())
        return float(self._counts.sum())

    def check_repeated_cells(self) -> None:
        """Check that no two cells of a Dask-backed frame share a combination of the categorical
        columns, across partitions as well as within one (an in-memory frame is checked when made).

        One pass hashes each partition's key rows (64-bit; the client holds 8 bytes a cell);
        a repeated hash is confirmed on the rows themselves. Run once per frame: the
        streamed totals, poststratification and care populations call it.

        Raises
        ------
        FrameError
            Cells repeat a combination (e.g. the same cells in two Parquet files).

        Examples
        --------
        >>> import pandas as pd, unmetneed as um
        >>> um.PopulationFrame(pd.DataFrame({"area_code": ["A"], "count": [5]})).check_repeated_cells()
        """
        if self._dask is None or self._repeats_checked:
            return
        import dask

        keys = [
            c
            for c, dtype in self._dask.dtypes.items()
            if c != self._count and not pd.api.types.is_float_dtype(dtype)
        ]
        if keys:
            parts = self._dask.to_delayed()
            hashes = np.concatenate(dask.compute(*[dask.delayed(_key_hashes)(p, keys) for p in parts]))
            values, counts = np.unique(hashes, return_counts=True)
            repeated = values[counts > 1]
            if repeated.size:
                found = dask.compute(*[dask.delayed(_rows_with_hashes)(p, keys, repeated) for p in parts])
                rows = pd.concat([f.assign(_partition=i) for i, f in enumerate(found)], ignore_index=True)
                rows = rows[rows.duplicated(subset=keys, keep=False)]
                if len(rows):
                    example = rows.iloc[0][keys].to_dict()
                    n_repeated = int(rows.duplicated(subset=keys).sum())
                    where = sorted(
                        set(rows.loc[(rows[keys] == rows.iloc[0][keys]).all(axis=1), "_partition"])
                    )
                    places = " and ".join(str(i) for i in where)
                    floats = [c for c in self._dask.columns if c != self._count and c not in keys]
                    raise FrameError(
                        f"{n_repeated:,} cells repeat a combination of {keys}, e.g. {example} "
                        f"(partition{'s' if len(where) > 1 else ''} {places} of {len(parts)}); aggregate "
                        "them (sum the counts) first" + _float_key_hint(floats)
                    )
        self._repeats_checked = True

    def _dask_totals(self, columns: list[str]) -> tuple[pd.DataFrame, np.ndarray]:
        """Group keys and counts of a Dask-backed frame by ``columns``, each partition checked
        as in memory (missing or negative counts, missing keys and repeated cells raise
        ``FrameError``)."""
        self.check_repeated_cells()
        ((keys, sums),) = stream_by_group(self._dask, _partition_counts, (self._count, columns), [columns])
        for column in columns:  # categorical columns stay categorical (in factor order), as in memory
            if isinstance(self._dask.dtypes[column], pd.CategoricalDtype):
                keys[column] = pd.Categorical(keys[column], categories=pd.unique(keys[column]))
        return keys, np.asarray(sums["count"], dtype=np.float64)

    def __len__(self) -> int:
        return len(self._dask) if self._dask is not None else len(self._cells)

    def totals(self, by: str | Sequence[str]) -> pd.Series:
        """Population by group of ``by`` (observed groups, in category order).

        A Dask-backed frame's totals are computed with Dask (on the active client, if any).

        Examples
        --------
        >>> import pandas as pd, unmetneed as um
        >>> frame = um.PopulationFrame(pd.DataFrame({"area_code": ["B", "A", "B"], "sex": ["F", "F", "M"],
        ...                                          "count": [1, 2, 3]}))
        >>> frame.totals("area_code").to_dict()
        {'A': 2.0, 'B': 4.0}
        """
        columns = as_column_list(by)
        if not columns:
            raise FrameError(
                "by names no column: give one or more cell columns (the frame's total is .total)"
            )
        if self._dask is not None:  # one row per group already, in factor order
            require_columns(self._dask, columns, "by")
            keys, counts = self._dask_totals(columns)
            return pd.Series(counts, index=_index(keys, columns))
        require_columns(self._cells, columns, "by")
        grouped = pd.Series(self._counts, index=_index(self._cells, columns))
        return grouped.groupby(level=list(range(len(columns))), observed=True, sort=True).sum()

    def __repr__(self) -> str:
        if self._dask is not None:
            return (
                f"<PopulationFrame (Dask-backed): {self._dask.npartitions:,} partitions, "
                f"variables {self.variables}>"
            )
        return (
            f"<PopulationFrame: {len(self):,} cells, population {self.total:,.0f}, "
            f"variables {self.variables}>"
        )

    def _repr_html_(self) -> str:
        if self._dask is not None:
            return f"<div><p>{html.escape(repr(self))}</p></div>"
        head = self._cells.head(10).to_html(index=False, border=0)
        return f"<div><p>{html.escape(repr(self))}</p>{head}</div>"


def _float_key_hint(floats: list[str]) -> str:
    """What to do if a float column is really a category (it is taken as a covariate, not a key)."""
    if not floats:
        return ""
    return (
        f". Float columns {floats} are numeric covariates, not part of a cell's key; if one is a "
        "category (e.g. a code read as float), cast it first (.astype('int64') or .astype(str))"
    )


def _key_hashes(part: pd.DataFrame, keys: list[str]) -> np.ndarray:
    """64-bit hashes of a partition's key rows (values, not categories' codes)."""
    frame = part[keys].astype(object)
    return pd.util.hash_pandas_object(frame, index=False).to_numpy()


def _rows_with_hashes(part: pd.DataFrame, keys: list[str], hashes: np.ndarray) -> pd.DataFrame:
    frame = part[keys].astype(object)
    mask = np.isin(pd.util.hash_pandas_object(frame, index=False).to_numpy(), hashes)
    return frame[mask].reset_index(drop=True)


def _index(frame: pd.DataFrame, columns: list[str]) -> pd.Index:
    """``frame[columns]`` as an index (a MultiIndex for several columns)."""
    return pd.MultiIndex.from_frame(frame[columns]) if len(columns) > 1 else pd.Index(frame[columns[0]])


def _partition_counts(part: pd.DataFrame, payload: tuple[str, list[str]]) -> list[tuple[pd.DataFrame, dict]]:
    """One partition's checked counts summed by group (for :meth:`PopulationFrame.totals`)."""
    count, columns = payload
    counts = validate_cells(part, count)
    codes, levels = group_coding(part, columns)
    n_groups = len(levels)
    return [(group_keys(part, columns, codes, n_groups), {"count": np.bincount(codes, counts, n_groups)})]


def validate_cells(cells: pd.DataFrame, count: str) -> np.ndarray:
    """Check the cells of a frame (or one partition of it); return their counts as float64.

    Raises
    ------
    FrameError
        No cells, missing or negative counts, missing values in a cell column,
        or two rows for the same combination of the categorical columns.

    Examples
    --------
    >>> import pandas as pd
    >>> from unmetneed.mrp.frame import validate_cells
    >>> validate_cells(pd.DataFrame({"area_code": ["A", "B"], "count": [5, 7]}), "count").tolist()
    [5.0, 7.0]
    """
    if len(cells) == 0:
        raise FrameError("the frame has no cells")
    require_columns(cells, [count], "count")
    if pd.api.types.is_bool_dtype(cells[count].dtype):
        raise FrameError(
            f"count column {count!r} holds True/False, not counts; give the number of people in each cell"
        )
    counts = pd.to_numeric(cells[count], errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(counts)
    if bad.any():
        raise FrameError(
            f"count column {count!r} has missing or non-numeric values in {row_examples(bad, cells.index)}"
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
        floats = [c for c in cells.columns if c != count and c not in keys]
        raise FrameError(
            f"{n_repeated:,} cells repeat a combination of {keys}, e.g. {example}; aggregate them "
            "(sum the counts) first" + _float_key_hint(floats)
        )
    for column in keys:
        if cells[column].isna().any():
            raise FrameError(
                f"cell column {column!r} has missing values in "
                f"{row_examples(cells[column].isna().to_numpy(), cells.index)}"
            )
    return counts


def _is_numeric_covariate(series: pd.Series) -> bool:
    return pd.api.types.is_float_dtype(series.dtype)
