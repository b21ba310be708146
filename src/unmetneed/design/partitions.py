"""Dask DataFrames streamed partition by partition: per-partition results added up by group.

Dask is optional: this module imports it only inside the functions that need
it. The work runs on whatever Dask scheduler is active (a
``distributed.Client`` entered with ``with Client(...)``, otherwise Dask's
default one). A function runs on each partition and gives, per grouping, one
row of keys per group found in the partition and arrays with one row per
group; the partial results are added up in a tree, a few at a time, so no task
holds more than one partition and a few partial sums. Poststratification
(:mod:`unmetneed.mrp.streaming`), care populations and raking
(:mod:`unmetneed.weighting.streaming`) are built on it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from unmetneed.design.coding import code_columns
from unmetneed.errors import FrameError, UnmetneedError

__all__ = [
    "FAN_IN",
    "Partial",
    "group_coding",
    "group_keys",
    "is_dask_collection",
    "is_dask_frame",
    "map_by_partition",
    "ship",
    "stream_by_group",
    "unique_values",
]

FAN_IN = 8  # partial sums added together per reduction task

# Per grouping: the groups' keys (one row per group) and arrays with one row per group;
# None for an empty partition.
Partial = list[tuple[pd.DataFrame, dict[str, np.ndarray]]] | None


def is_dask_frame(obj: object) -> bool:
    """Whether ``obj`` is a Dask DataFrame (checked without importing Dask).

    Examples
    --------
    >>> import pandas as pd
    >>> from unmetneed.design.partitions import is_dask_frame
    >>> is_dask_frame(pd.DataFrame())
    False
    """
    return is_dask_collection(obj) and type(obj).__name__ == "DataFrame"


def is_dask_collection(obj: object) -> bool:
    """Whether ``obj`` is a Dask collection (DataFrame, Series, ...), checked without importing Dask.

    Examples
    --------
    >>> import pandas as pd
    >>> from unmetneed.design.partitions import is_dask_collection
    >>> is_dask_collection(pd.Series([1]))
    False
    """
    # dask >= 2025.1: dask.dataframe...; 2024.3-2024.12: dask_expr._collection.DataFrame
    package = type(obj).__module__.split(".")[0]
    return package in {"dask", "dask_expr"} and hasattr(obj, "npartitions")


def group_coding(cells: pd.DataFrame, by_columns: list[str]) -> tuple[np.ndarray, pd.DataFrame]:
    """Group code of each cell and the groups' keys (one row per group, in factor order).

    With no ``by`` columns every cell is in the one group (keys: one row, no columns).

    Examples
    --------
    >>> import pandas as pd
    >>> from unmetneed.design.partitions import group_coding
    >>> codes, keys = group_coding(pd.DataFrame({"area": ["B", "A", "B"]}), ["area"])
    >>> codes.tolist(), keys["area"].tolist()
    ([1, 0, 1], ['A', 'B'])
    """
    if not by_columns:
        return np.zeros(len(cells), dtype=np.intp), pd.DataFrame(index=[0])
    groups = code_columns(cells, by_columns, "by")
    return groups.codes, groups.levels


def unique_values(cells: Any, columns: Sequence[str | list[str]]) -> list[Any]:
    """Unique values of columns of a Dask DataFrame, in one pass (a tree reduction, no shuffle).

    For a column name, its unique values (a numpy array); for a list of names,
    the unique rows of those columns (a DataFrame).

    Examples
    --------
    >>> import pandas as pd, dask.dataframe as dd
    >>> from unmetneed.design.partitions import unique_values
    >>> cells = dd.from_pandas(pd.DataFrame({"a": ["x", "y", "x"], "b": [1, 1, 2]}), npartitions=2)
    >>> a, rows = unique_values(cells, ["a", ["a", "b"]])
    >>> sorted(a.tolist()), len(rows)
    (['x', 'y'], 3)
    """
    import dask

    uniques = dask.compute(*[cells[column].drop_duplicates(split_out=1) for column in columns])
    return [
        u.to_numpy() if isinstance(column, str) else u.reset_index(drop=True)
        for column, u in zip(columns, uniques, strict=True)
    ]


def stream_by_group(
    cells: Any,
    function: Callable[[pd.DataFrame, Any], Partial],
    payload: Any,
    groupings: Sequence[Sequence[str]],
    *,
    empty: UnmetneedError | None = None,
) -> list[tuple[pd.DataFrame, dict[str, np.ndarray]]]:
    """Run ``function(partition, payload)`` on every partition and add the results up by group.

    For each of ``groupings``, ``function`` gives one row of keys per group
    found in the partition (see :func:`group_keys`) and arrays whose first axis
    is those groups. Partial results are added a few at a time (``FAN_IN``) in a
    tree on the active Dask scheduler; ``payload`` is shipped to the workers
    once. Returns, per grouping, the keys (the grouping's levels, in factor
    order, as :func:`group_coding` gives them) and the summed arrays in that
    order.

    Raises
    ------
    UnmetneedError
        From ``function``: the same type, with the partition named.
    FrameError
        The frame has no rows (or ``empty``, when given).

    Examples
    --------
    >>> import numpy as np, pandas as pd, dask.dataframe as dd
    >>> from unmetneed.design.partitions import group_coding, group_keys, stream_by_group
    >>> def sums(part, column):
    ...     codes, levels = group_coding(part, ["area"])
    ...     total = np.bincount(codes, weights=part[column], minlength=len(levels))
    ...     return [(group_keys(part, ["area"], codes, len(levels)), {"total": total})]
    >>> cells = dd.from_pandas(pd.DataFrame({"area": ["B", "A", "B", "A"], "n": [1.0, 2.0, 3.0, 4.0]}), npartitions=2)
    >>> ((keys, arrays),) = stream_by_group(cells, sums, "n", [["area"]])
    >>> keys["area"].tolist(), arrays["total"].tolist()
    (['A', 'B'], [6.0, 4.0])
    """
    import dask

    by = [list(b) for b in groupings]
    shipped = ship(payload)
    parts = cells.to_delayed()
    partials = [
        dask.delayed(_run_partition)(function, part, shipped, i, len(parts)) for i, part in enumerate(parts)
    ]
    while True:  # at least one reduction, which puts the groups in factor order
        partials = [
            dask.delayed(_add_partials)(partials[i : i + FAN_IN], by) for i in range(0, len(partials), FAN_IN)
        ]
        if len(partials) == 1:
            break
    (total,) = dask.compute(partials[0])
    if total is None:
        raise empty if empty is not None else FrameError("the frame has no cells")
    # the keys as the in-memory path has them: the levels' values (categories as plain values)
    return [(group_coding(keys, b)[1], arrays) for (keys, arrays), b in zip(total, by, strict=True)]


def ship(payload: Any) -> Any:
    """``payload`` as a task argument: scattered to every worker of an active distributed client
    (once, not inside the task graph, which warns about large objects), else a delayed value."""
    import dask

    try:
        from distributed import default_client

        client = default_client()
    except (ImportError, ValueError):  # no distributed, or no client: dask's default scheduler
        return dask.delayed(payload, traverse=False)
    return client.scatter(payload, broadcast=True, hash=False)


def _run_partition(
    function: Callable[[pd.DataFrame, Any], Partial],
    cells: pd.DataFrame,
    payload: Any,
    index: int,
    n_parts: int,
) -> Partial:
    if len(cells) == 0:
        return None
    return _named(function, cells, payload, index, n_parts)


def _named(
    function: Callable[[pd.DataFrame, Any], Any], part: pd.DataFrame, payload: Any, index: int, n: int
) -> Any:
    try:
        return function(part, payload)
    except UnmetneedError as error:  # the same error, saying where
        raise type(error)(f"{error} (partition {index} of {n})") from None


def map_by_partition(
    frame: Any, function: Callable[[pd.DataFrame, Any], Any], payload: Any, meta: Any
) -> Any:
    """``function(partition, payload)`` on every partition, lazily: a Dask collection with ``frame``'s partitions.

    A ``frame.map_partitions``, so the result aligns with ``frame`` partition
    by partition (``frame.assign(w=result)`` needs no shuffle). ``payload`` is
    shipped to the workers once (see :func:`ship`; with a distributed client,
    compute the result while that client is open); ``meta`` is an empty
    pandas object like the function's results. An
    :class:`~unmetneed.errors.UnmetneedError` from ``function`` keeps its type
    and names the partition.

    Examples
    --------
    >>> import pandas as pd, dask.dataframe as dd
    >>> from unmetneed.design.partitions import map_by_partition
    >>> frame = dd.from_pandas(pd.DataFrame({"x": [1.0, 2.0, 3.0]}), npartitions=2)
    >>> doubled = map_by_partition(frame, lambda part, k: part["x"] * k, 2.0, pd.Series(dtype="f8", name="x"))
    >>> doubled.npartitions, doubled.compute().tolist()
    (2, [2.0, 4.0, 6.0])
    """
    import dask
    from dask.delayed import Delayed

    shipped = ship(payload)
    if not isinstance(shipped, Delayed):  # a distributed Future, as map_partitions takes it
        shipped = dask.delayed(shipped)
    return frame.map_partitions(
        _map_partition, function, shipped, frame.npartitions, meta=meta, enforce_metadata=False
    )


def _map_partition(
    part: pd.DataFrame,
    function: Callable[[pd.DataFrame, Any], Any],
    payload: Any,
    n_parts: int,
    partition_info: dict[str, Any] | None = None,
) -> Any:
    index = -1 if partition_info is None else partition_info["number"]
    return _named(function, part, payload, index, n_parts)


def _add_partials(partials: Sequence[Partial], by: list[list[str]]) -> Partial:
    """Sum partial results by group, per grouping; the groups come out in factor order."""
    present = [p for p in partials if p is not None]
    if not present:
        return None
    added = []
    for k, columns in enumerate(by):
        keys = pd.concat([p[k][0] for p in present], ignore_index=True)
        group_codes, levels = group_coding(keys, columns)
        n_rows, n_groups = len(keys), len(levels)
        indicator = sp.csr_matrix(
            (np.ones(n_rows), (group_codes, np.arange(n_rows))), shape=(n_groups, n_rows)
        )
        arrays = {
            name: indicator @ np.concatenate([p[k][1][name] for p in present]) for name in present[0][k][1]
        }
        added.append((group_keys(keys, columns, group_codes, n_groups), arrays))
    return added


def group_keys(frame: pd.DataFrame, by: list[str], group_codes: np.ndarray, n_groups: int) -> pd.DataFrame:
    """One row of ``frame[by]`` per group code, in code order, keeping the columns' dtypes.

    The dtypes matter: categories (hence the factor order of the final groups)
    survive the concatenation of partial results only as Categoricals.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from unmetneed.design.partitions import group_keys
    >>> group_keys(pd.DataFrame({"area": ["B", "A", "B"]}), ["area"], np.array([1, 0, 1]), 2)["area"].tolist()
    ['A', 'B']
    """
    if not by:
        return pd.DataFrame(index=[0])
    first = np.empty(n_groups, dtype=np.intp)
    # Reversed assignment: the last write for each code is its first row.
    first[group_codes[::-1]] = np.arange(group_codes.size - 1, -1, -1)
    return frame[by].iloc[first].reset_index(drop=True)
