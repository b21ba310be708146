"""Poststratification of a Dask-backed :class:`PopulationFrame`, streamed partition by partition.

Dask is optional: this module imports it only inside the functions that need
it, and nothing imports this module unless a frame is a Dask DataFrame.

The work runs on whatever Dask scheduler is active (a ``distributed.Client``
entered with ``with Client(...)``, otherwise Dask's default one):

1. one pass over the grouping factors' columns finds the levels absent from
   the fitting data (their unique values), and their effects are drawn on the
   client exactly as the in-memory path draws them (same numbers, same order);
2. each partition is validated, its cell probabilities evaluated a chunk at a
   time and summed by group of ``by`` (the in-memory path's evaluator and
   sparse group sum), giving a (groups in the partition x draws) array;
3. the partial sums are added up in a tree, a few at a time.

No array of all cells x draws ever exists: a task holds one partition, one
chunk of its probabilities and its groups' sums.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
import xarray as xr

from unmetneed._blas import single_threaded_blas
from unmetneed._validate import require_columns
from unmetneed.errors import FrameError
from unmetneed.mrp.frame import PopulationFrame, validate_cells
from unmetneed.mrp.poststratify import (
    effect_tables,
    group_coding,
    group_sums,
    level_codes,
    probability_evaluator,
)

if TYPE_CHECKING:
    from unmetneed.mrp.model import MultilevelFit

__all__ = ["check_dask_frame", "stream_group_totals"]

FAN_IN = 8  # partial sums added together per reduction task

# A group's keys (one row per group), its (groups x draws) counts and its populations;
# None for an empty partition.
Partial = tuple[pd.DataFrame, np.ndarray, np.ndarray] | None


def check_dask_frame(cells: Any, count: str) -> Any:
    """The checks of a Dask DataFrame that need no data: the count column exists and is numeric.

    The other checks of :class:`PopulationFrame` (missing or negative counts,
    missing keys, repeated cells) run on each partition when it is streamed.

    Raises
    ------
    MissingColumnError
        The count column does not exist.
    FrameError
        The count column's dtype is not numeric.

    Examples
    --------
    >>> import pandas as pd, dask.dataframe as dd
    >>> from unmetneed.mrp.streaming import check_dask_frame
    >>> cells = dd.from_pandas(pd.DataFrame({"area_code": ["A", "B"], "count": [5, 7]}), npartitions=2)
    >>> check_dask_frame(cells, "count").npartitions
    2
    """
    require_columns(cells, [count], "count")
    dtype = cells.dtypes[count]
    if not pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype):
        raise FrameError(
            f"count column {count!r} has dtype {dtype}, not a number; cast it first "
            f"(e.g. cells[{count!r}] = cells[{count!r}].astype('float64'))"
        )
    return cells


@dataclass(frozen=True)
class _PartitionModel:
    """What every partition needs, shipped to the workers once."""

    fit: MultilevelFit
    beta: np.ndarray  # (draws x terms)
    tables: list[np.ndarray]  # per factor: (fitted + new levels) x draws
    new_levels: list[np.ndarray]  # per factor: sorted strings of the unseen levels
    count: str
    by: list[str]


def stream_group_totals(
    fit: MultilevelFit,
    population: PopulationFrame,
    by_columns: list[str],
    draws: xr.Dataset,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, pd.DataFrame, dict[str, int]]:
    """(groups x draws) counts of a Dask-backed frame, its groups' populations and keys.

    The Dask counterpart of the in-memory path of :func:`poststratify`, with
    the same results (to rounding) for the same ``rng``: the groups in factor
    order, the unseen levels per factor, and their effects drawn from ``rng``
    in the same order.

    Raises
    ------
    FrameError
        A partition fails the checks of :class:`PopulationFrame` (the message
        names the partition), or the frame has no cells.

    Examples
    --------
    >>> import dask.dataframe as dd, unmetneed as um
    >>> survey = um.datasets.load_example_survey()
    >>> fit = um.MultilevelModel("need ~ sex + (1|area_code)", data=survey).fit()
    >>> cells = survey.groupby(["area_code", "sex"]).size().rename("count").reset_index()
    >>> frame = um.PopulationFrame(dd.from_pandas(cells, npartitions=3))
    >>> post = fit.poststratify(frame, by="sex", draws=100, seed=1)  # runs on the active client, if any
    >>> post.draws["count"].shape
    (100, 2)
    """
    import dask

    cells = population.dask
    require_columns(cells, list(fit.model.data.cell_frame.columns), "model")
    new_levels, unseen = _unseen_levels(fit, cells)
    model = _PartitionModel(
        fit=fit,
        beta=draws["beta"].values,
        tables=effect_tables(fit, draws, new_levels, rng),
        new_levels=new_levels,
        count=population.count_col,
        by=list(by_columns),
    )
    shipped = dask.delayed(model, traverse=False)
    parts = cells.to_delayed()
    partials = [dask.delayed(_partition_totals)(part, shipped, i, len(parts)) for i, part in enumerate(parts)]
    while True:  # at least one reduction, which puts the groups in factor order
        partials = [
            dask.delayed(_add_partials)(partials[i : i + FAN_IN], model.by)
            for i in range(0, len(partials), FAN_IN)
        ]
        if len(partials) == 1:
            break
    (total,) = dask.compute(partials[0])
    if total is None:
        raise FrameError("the frame has no cells")
    keys, totals_t, pop = total
    # the keys as the in-memory path has them: the levels' values (categories as plain values)
    levels = group_coding(keys, model.by)[1]
    return totals_t, pop, levels, unseen


def _unseen_levels(fit: MultilevelFit, cells: Any) -> tuple[list[np.ndarray], dict[str, int]]:
    """Per factor, the sorted strings of its levels absent from the fitting data; their number."""
    import dask

    groups = fit.model.formula.groups
    uniques = dask.compute(*[cells[group].drop_duplicates() for group in groups])
    new_levels: list[np.ndarray] = []
    unseen: dict[str, int] = {}
    for group, values in zip(groups, uniques, strict=True):
        values = values.to_numpy()
        missing = values[fit.model.data.levels[group].get_indexer(pd.Index(values)) < 0]
        if missing.size:
            unseen[group] = int(pd.unique(missing).size)
        new_levels.append(np.unique(missing.astype(str)))
    return new_levels, unseen


def _partition_totals(cells: pd.DataFrame, model: _PartitionModel, index: int, n_parts: int) -> Partial:
    """One partition's group keys, (groups x draws) counts and populations."""
    if len(cells) == 0:
        return None
    try:
        counts = validate_cells(cells, model.count)
    except FrameError as error:
        raise FrameError(f"{error} (partition {index} of {n_parts})") from None
    X, codes, _ = model.fit.new_data_design(cells)
    effects = [
        (table, level_codes(code, cells[group].to_numpy(), table.shape[0] - new.size, new))
        for group, table, code, new in zip(
            model.fit.model.formula.groups, model.tables, codes, model.new_levels, strict=True
        )
    ]
    with single_threaded_blas():
        chunk = probability_evaluator(X, model.beta, effects)
    group_codes, levels = group_coding(cells, model.by)
    totals_t = group_sums(chunk, counts, group_codes, len(levels), model.beta.shape[0])
    pop = np.bincount(group_codes, weights=counts, minlength=len(levels))
    return _keys(cells, model.by, group_codes, len(levels)), totals_t, pop


def _add_partials(partials: Sequence[Partial], by: list[str]) -> Partial:
    """Sum partial results by group; the groups come out in factor order."""
    present = [p for p in partials if p is not None]
    if not present:
        return None
    keys = pd.concat([k for k, _, _ in present], ignore_index=True)
    group_codes, levels = group_coding(keys, by)
    n_rows, n_groups = len(keys), len(levels)
    indicator = sp.csr_matrix((np.ones(n_rows), (group_codes, np.arange(n_rows))), shape=(n_groups, n_rows))
    totals_t = indicator @ np.concatenate([t for _, t, _ in present])
    pop = np.bincount(group_codes, weights=np.concatenate([p for _, _, p in present]), minlength=n_groups)
    return _keys(keys, by, group_codes, n_groups), totals_t, pop


def _keys(frame: pd.DataFrame, by: list[str], group_codes: np.ndarray, n_groups: int) -> pd.DataFrame:
    """One row of ``frame[by]`` per group code, in code order, keeping the columns' dtypes.

    The dtypes matter: categories (hence the factor order of the final groups)
    survive the concatenation of partial results only as Categoricals.
    """
    if not by:
        return pd.DataFrame(index=[0])
    first = np.empty(n_groups, dtype=np.intp)
    # Reversed assignment: the last write for each code is its first row.
    first[group_codes[::-1]] = np.arange(group_codes.size - 1, -1, -1)
    return frame[by].iloc[first].reset_index(drop=True)
