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

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import xarray as xr

from unmetneed._validate import require_columns
from unmetneed.design.partitions import Partial, group_coding, group_keys, stream_by_group, unique_values
from unmetneed.errors import FrameError
from unmetneed.mrp.frame import PopulationFrame, validate_cells
from unmetneed.mrp.poststratify import (
    effect_tables,
    group_sums,
    level_codes,
    probability_evaluator,
)

if TYPE_CHECKING:
    from unmetneed.mrp.model import MultilevelFit

__all__ = [
    "check_dask_frame",
    "partition_evaluator",
    "stream_group_totals",
    "unseen_levels",
]


def check_dask_frame(cells: Any, count: str) -> Any:
    """The checks of a Dask DataFrame that need no data: the count column exists and is numeric.

    The other checks of :class:`PopulationFrame` (missing or negative counts,
    missing keys, cells repeated within a partition) run on each partition when
    it is streamed; cells repeated across partitions, in
    :meth:`PopulationFrame.check_repeated_cells`.

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
    """What every partition needs to poststratify, shipped to the workers once."""

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
    cells = population.dask
    require_columns(cells, list(fit.model.data.cell_frame.columns), "model")
    population.check_repeated_cells()
    groups = fit.model.formula.groups
    new_levels, unseen = unseen_levels(fit, dict(zip(groups, unique_values(cells, groups), strict=True)))
    model = _PartitionModel(
        fit=fit,
        beta=draws["beta"].values,
        tables=effect_tables(fit, draws, new_levels, rng),
        new_levels=new_levels,
        count=population.count_col,
        by=list(by_columns),
    )
    ((keys, sums),) = stream_by_group(cells, _partition_totals, model, [model.by])
    return sums["count"], sums["population"], keys, unseen


def unseen_levels(
    fit: MultilevelFit, values: dict[str, np.ndarray]
) -> tuple[list[np.ndarray], dict[str, int]]:
    """Per grouping factor, the sorted strings of its levels absent from the fitting data; their number.

    ``values`` holds the unique values of each factor's column over the whole
    frame. The levels are those the in-memory path draws effects for.

    Examples
    --------
    >>> import numpy as np, unmetneed as um
    >>> from unmetneed.mrp.streaming import unseen_levels
    >>> fit = um.MultilevelModel("need ~ (1|area_code)", data=um.datasets.load_example_survey()).fit()
    >>> fitted = fit.model.data.levels["area_code"]
    >>> values = [*fitted, "NEW"]  # the frame's unique areas: the fitted ones and one more
    >>> new, counts = unseen_levels(fit, {"area_code": np.array(values, dtype=object)})
    >>> new[0].tolist(), counts
    (['NEW'], {'area_code': 1})
    """
    new_levels: list[np.ndarray] = []
    unseen: dict[str, int] = {}
    for group in fit.model.formula.groups:
        group_values = values[group]
        missing = group_values[fit.model.data.levels[group].get_indexer(pd.Index(group_values)) < 0]
        if missing.size:
            unseen[group] = int(pd.unique(missing).size)
        new_levels.append(np.unique(missing.astype(str)))
    return new_levels, unseen


def partition_evaluator(
    fit: MultilevelFit,
    cells: pd.DataFrame,
    beta: np.ndarray,
    tables: list[np.ndarray],
    new_levels: list[np.ndarray],
) -> Callable[[int, int], np.ndarray]:
    """The chunk evaluator of cell probabilities for one partition, with the frame-wide effect tables.

    ``tables`` and ``new_levels`` come from :func:`effect_tables` and
    :func:`unseen_levels` for the whole frame, so a new level has the same
    effects in every partition.

    Examples
    --------
    >>> import numpy as np, unmetneed as um
    >>> from unmetneed.mrp.poststratify import effect_tables
    >>> from unmetneed.mrp.streaming import partition_evaluator, unseen_levels
    >>> survey = um.datasets.load_example_survey()
    >>> fit = um.MultilevelModel("need ~ (1|age_band)", data=survey).fit()
    >>> part = survey.head(5)
    >>> new, _ = unseen_levels(fit, {"age_band": part["age_band"].unique()})
    >>> draws = fit.draws(20, seed=1)
    >>> tables = effect_tables(fit, draws, new, np.random.default_rng(1))
    >>> partition_evaluator(fit, part, draws["beta"].values, tables, new)(0, 5).shape
    (20, 5)
    """
    X, codes, _ = fit.new_data_design(cells)
    effects = [
        (table, level_codes(code, cells[group].to_numpy(), table.shape[0] - new.size, new))
        for group, table, code, new in zip(fit.model.formula.groups, tables, codes, new_levels, strict=True)
    ]
    return probability_evaluator(X, beta, effects)


def _partition_totals(cells: pd.DataFrame, model: _PartitionModel) -> Partial:
    """One partition's group keys, (groups x draws) counts and populations."""
    counts = validate_cells(cells, model.count)
    chunk = partition_evaluator(model.fit, cells, model.beta, model.tables, model.new_levels)
    group_codes, levels = group_coding(cells, model.by)
    totals_t = group_sums(chunk, counts, group_codes, len(levels), model.beta.shape[0])
    pop = np.bincount(group_codes, weights=counts, minlength=len(levels))
    return [(group_keys(cells, model.by, group_codes, len(levels)), {"count": totals_t, "population": pop})]
