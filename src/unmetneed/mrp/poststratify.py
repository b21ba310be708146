r"""Poststratification of model draws into a population frame, in chunks of cells.

For draw :math:`d` and cell :math:`c` with population :math:`N_c`,
:math:`p_{cd} = \operatorname{logit}^{-1}(x_c^\top\beta_d + \sum_g b_{g,j_g(c),d})`;
the count in group :math:`G` is :math:`\sum_{c \in G} N_c p_{cd}` and the
prevalence that count over :math:`\sum_{c\in G} N_c` (Gelman & Little 1997;
Park, Gelman & Bafumi 2004). A level absent from the fitting data draws its
effect from :math:`N(0, \sigma_{g,d}^2)` in each draw (once per level, shared
by its cells). Cells are processed in chunks so memory stays bounded
(about 32 MB of working arrays whatever the frame's size).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
import xarray as xr
from scipy.special import expit

from unmetneed._blas import single_threaded_blas
from unmetneed._validate import as_column_list, require_columns, resolve_rng
from unmetneed.design.partitions import group_coding, is_dask_frame
from unmetneed.errors import FrameError, NewLevelWarning
from unmetneed.mrp.draw_estimates import DrawEstimates
from unmetneed.mrp.frame import PopulationFrame

if TYPE_CHECKING:
    from unmetneed.mrp.model import MultilevelFit

__all__ = ["cell_probability_draws", "poststratify"]

CHUNK_ELEMENTS = 4_000_000  # cells x draws per chunk (32 MB of float64)
BLOCK_ELEMENTS = 65_536  # cells x draws evaluated at a time within a chunk (512 KB, in cache)


def _as_frame(frame: Any) -> PopulationFrame:
    if isinstance(frame, PopulationFrame):
        return frame
    if isinstance(frame, pd.DataFrame) or is_dask_frame(frame):
        return PopulationFrame(frame)
    raise FrameError(
        f"frame must be a PopulationFrame, a DataFrame or a Dask DataFrame; got {type(frame).__name__}"
    )


def cell_probability_draws(
    fit: MultilevelFit,
    cells: pd.DataFrame,
    draws: xr.Dataset,
    rng: np.random.Generator,
) -> tuple[Any, dict[str, int]]:
    """Prepare the per-chunk evaluator of cell probabilities under each draw.

    Returns a function ``chunk(start, stop) -> (draws x cells) array`` and the
    number of unseen levels per factor.

    The array is the transpose of a C-ordered (cells x draws) one: each cell's
    draws are contiguous, so ``sparse (groups x cells) @ chunk.T`` sums it by
    group without a copy, and elementwise products of such arrays keep that
    order. It is evaluated a block of cells at a time (about 512 KB, so the
    fixed part, the random-effect rows gathered for each factor and ``expit``
    work in cache), each element as before: ``x_c . beta_d``, plus each
    factor's effect in the formula's order, then ``expit``, so the values are
    those of ``expit(beta @ X.T + b_1[:, j_1] + ...)`` (bitwise with numpy's
    bundled OpenBLAS, whose dot products of the few fixed-effect terms do not
    depend on the blocking).
    """
    X, codes, unseen = fit.new_data_design(cells)
    groups = fit.model.formula.groups
    values = [cells[group].to_numpy() for group in groups]
    new_levels = [np.unique(v[code < 0].astype(str)) for v, code in zip(values, codes, strict=True)]
    tables = effect_tables(fit, draws, new_levels, rng)
    effects = [
        (table, level_codes(code, v, table.shape[0] - new.size, new))
        for table, code, v, new in zip(tables, codes, values, new_levels, strict=True)
    ]
    return probability_evaluator(X, draws["beta"].values, effects), unseen


def effect_tables(
    fit: MultilevelFit, draws: xr.Dataset, new_levels: Sequence[np.ndarray], rng: np.random.Generator
) -> list[np.ndarray]:
    """Each grouping factor's effects as a (levels x draws) C-ordered array.

    Rows are the fitted levels, then ``new_levels[g]`` (sorted strings of the
    levels absent from the fitting data), whose effects are drawn here from
    :math:`N(0, \\sigma_{g,d}^2)`: one ``rng.standard_normal((draws, n_new))``
    per factor that has new levels, in the formula's order.

    Examples
    --------
    >>> import numpy as np, unmetneed as um
    >>> from unmetneed.mrp.poststratify import effect_tables
    >>> survey = um.datasets.load_example_survey()
    >>> fit = um.MultilevelModel("need ~ sex + (1|area_code)", data=survey).fit()
    >>> draws = fit.draws(50, seed=1)
    >>> [t.shape for t in effect_tables(fit, draws, [np.array(["NEW1", "NEW2"])], np.random.default_rng(2))]
    [(12, 50)]
    """
    sd = draws["sd"].values  # (D, G)
    tables = []
    for g, group in enumerate(fit.model.formula.groups):
        known = draws[f"re_{group}"].values  # (D, L)
        if new_levels[g].size:
            extra = sd[:, [g]] * rng.standard_normal((sd.shape[0], new_levels[g].size))
            known = np.concatenate([known, extra], axis=1)
        # (L, D): a level's draws contiguous, gathered as rows
        tables.append(np.ascontiguousarray(known.T))
    return tables


def level_codes(code: np.ndarray, values: np.ndarray, n_fitted: int, new_levels: np.ndarray) -> np.ndarray:
    """Rows of an :func:`effect_tables` table for each cell.

    ``code`` is a factor's fitted-level code per cell (-1 where unseen, as from
    ``MultilevelFit.new_data_design``); an unseen value takes row ``n_fitted``
    plus its position in ``new_levels`` (the sorted strings of the new levels).

    Examples
    --------
    >>> import numpy as np
    >>> from unmetneed.mrp.poststratify import level_codes
    >>> level_codes(np.array([1, -1, 0, -1]), np.array(["b", "z", "a", "y"]), 2, np.array(["y", "z"])).tolist()
    [1, 3, 0, 2]
    """
    code = code.copy()
    new = code < 0
    if new.any():
        code[new] = n_fitted + np.searchsorted(new_levels, values[new].astype(str))
    return code.astype(np.intp, copy=False)


def probability_evaluator(
    X: np.ndarray, beta: np.ndarray, effects: Sequence[tuple[np.ndarray, np.ndarray]]
) -> Callable[[int, int], np.ndarray]:
    """The chunk evaluator of :func:`cell_probability_draws` for given arrays.

    ``X`` is (cells x terms), ``beta`` (draws x terms) and ``effects`` one
    ``(table, codes)`` pair per factor, from :func:`effect_tables` and
    :func:`level_codes`.

    Examples
    --------
    >>> import numpy as np
    >>> from unmetneed.mrp.poststratify import probability_evaluator
    >>> chunk = probability_evaluator(np.ones((3, 1)), np.zeros((2, 1)), [(np.zeros((1, 2)), np.zeros(3, np.intp))])
    >>> chunk(0, 3).shape
    (2, 3)
    """
    n_draws = beta.shape[0]
    X = np.ascontiguousarray(X)
    beta_t = beta.T  # (p, D)
    rows = max(1, BLOCK_ELEMENTS // max(n_draws, 1))

    def chunk(start: int, stop: int) -> np.ndarray:
        eta = np.empty((stop - start, n_draws))  # (m, D)
        gathered = np.empty((min(rows, stop - start), n_draws))
        for s in range(start, stop, rows):
            e = min(s + rows, stop)
            block = eta[s - start : e - start]
            np.matmul(X[s:e], beta_t, out=block)
            buffer = gathered[: e - s]
            for known_t, code in effects:
                # codes are valid by construction; mode="clip" lets take write to out unbuffered
                np.take(known_t, code[s:e], axis=0, out=buffer, mode="clip")
                np.add(block, buffer, out=block)
            expit(block, out=block)
        return eta.T

    return chunk


def poststratify(
    fit: MultilevelFit,
    frame: PopulationFrame | pd.DataFrame,
    *,
    by: str | Sequence[str] | None = "area_code",
    draws: int | xr.Dataset = 1000,
    seed: int | np.random.Generator | None = None,
    level: float = 0.9,
) -> DrawEstimates:
    """Per-draw prevalence and counts for each group of ``by``.

    Parameters
    ----------
    fit : MultilevelFit
    frame : PopulationFrame, DataFrame or dask.dataframe.DataFrame
        Cells with every model variable and a population count. A Dask-backed
        frame is streamed a partition at a time on the active Dask client (or
        Dask's default scheduler), with the in-memory result for the same
        ``seed`` (see :mod:`unmetneed.mrp.streaming`).
    by : str, list of str or None
        Grouping of the cells (area, a characteristic, a cross); ``None`` for all.
    draws : int or xarray.Dataset
        Number of draws to take from ``fit.draws``, or draws already taken.
    seed : int or Generator, optional
    level : float, default 0.9

    Returns
    -------
    DrawEstimates
        Quantities ``prevalence``, ``count`` and ``population`` by group.

    Examples
    --------
    >>> import unmetneed as um
    >>> survey = um.datasets.load_example_survey()
    >>> fit = um.MultilevelModel("need ~ sex + (1|area_code) + (1|age_band)", data=survey).fit()
    >>> cells = survey.groupby(["area_code", "sex", "age_band"], observed=True).size().rename("count").reset_index()
    >>> post = fit.poststratify(um.PopulationFrame(cells), by="area_code", draws=200, seed=1)
    >>> post.summary().query("quantity == 'prevalence'").shape[0]
    10
    """

    population = _as_frame(frame)
    by_columns = as_column_list(by)
    require_columns(population.dask if population.is_dask else population.cells, by_columns, "by")
    if population.count_col in by_columns:
        raise FrameError(
            f"by={by!r} names the frame's count column {population.count_col!r}; group by "
            "characteristics of the cells (e.g. by='area_code'), not by their population counts"
        )
    if not population.is_dask:
        population = _collapse(population, fit, by_columns)
    rng = resolve_rng(seed)
    dataset = fit.draws(draws, seed=rng) if not isinstance(draws, xr.Dataset) else draws
    if population.is_dask:
        from unmetneed.mrp.streaming import stream_group_totals

        totals_t, pop, keys, unseen = stream_group_totals(fit, population, by_columns, dataset, rng)
    else:
        totals_t, pop, keys, unseen = _group_totals(fit, population, by_columns, dataset, rng)
    if unseen:
        warnings.warn(
            f"levels not in the fitting data draw their effect from N(0, sd^2): {unseen}",
            NewLevelWarning,
            stacklevel=3,
        )
    return _estimates(fit, dataset, totals_t.T, pop, keys, by_columns, unseen, level)


def _group_totals(
    fit: MultilevelFit,
    population: PopulationFrame,
    by_columns: list[str],
    dataset: xr.Dataset,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, pd.DataFrame, dict[str, int]]:
    """(groups x draws) counts, populations, group keys and unseen levels of an in-memory frame."""
    cells = population.cells
    with single_threaded_blas():
        chunk, unseen = cell_probability_draws(fit, cells, dataset, rng)
    counts = population.counts
    group_codes, keys = group_coding(cells, by_columns)
    totals_t = group_sums(chunk, counts, group_codes, len(keys), dataset.sizes["draw"])
    pop = np.bincount(group_codes, weights=counts, minlength=len(keys))
    return totals_t, pop, keys, unseen


def group_sums(
    chunk: Callable[[int, int], np.ndarray],
    counts: np.ndarray,
    group_codes: np.ndarray,
    n_groups: int,
    n_draws: int,
) -> np.ndarray:
    """(groups x draws) sums of ``counts`` times the cell probabilities, a chunk of cells at a time.

    ``chunk(start, stop)`` gives the (draws x cells) probabilities of cells
    ``start:stop`` (see :func:`cell_probability_draws`); no more than about
    ``CHUNK_ELEMENTS`` cell x draw values exist at once.

    Examples
    --------
    >>> import numpy as np
    >>> from unmetneed.mrp.poststratify import group_sums
    >>> chunk = lambda start, stop: np.full((2, stop - start), 0.5)
    >>> group_sums(chunk, np.array([10.0, 20.0, 30.0]), np.array([0, 1, 0]), 2, 2).tolist()
    [[20.0, 20.0], [10.0, 10.0]]
    """
    # (groups x draws): chunk(...).T is C-ordered (cells x draws), so the sparse product reads it in place
    totals_t = np.zeros((n_groups, n_draws))
    size = max(1, CHUNK_ELEMENTS // max(n_draws, 1))
    with single_threaded_blas():
        for start in range(0, len(counts), size):
            stop = min(start + size, len(counts))
            p = chunk(start, stop)  # (D, m)
            m = stop - start
            indicator = sp.csr_matrix(
                (counts[start:stop], (np.arange(m), group_codes[start:stop])), shape=(m, n_groups)
            )
            totals_t += indicator.T @ p.T
    return totals_t


def _estimates(
    fit: MultilevelFit,
    dataset: xr.Dataset,
    totals: np.ndarray,
    pop: np.ndarray,
    keys: pd.DataFrame,
    by_columns: list[str],
    unseen: dict[str, int],
    level: float,
) -> DrawEstimates:
    """The :class:`DrawEstimates` of (draws x groups) ``totals`` and the groups' populations."""
    n_draws = dataset.sizes["draw"]
    dims = ["draw", *by_columns]
    shape = [n_draws] + [len(pd.unique(keys[c])) for c in by_columns]
    coords: dict[str, Any] = {"draw": np.arange(n_draws)}
    if by_columns:
        full = pd.MultiIndex.from_product([pd.Index(pd.unique(keys[c])) for c in by_columns])
        position = (
            full.get_indexer(pd.MultiIndex.from_frame(keys))
            if len(by_columns) > 1
            else pd.Index(full.get_level_values(0)).get_indexer(keys[by_columns[0]])
        )
        dense = np.full((n_draws, int(np.prod(shape[1:]))), np.nan)
        dense[:, position] = totals
        dense_pop = np.full(int(np.prod(shape[1:])), np.nan)
        dense_pop[position] = pop
        for c in by_columns:
            coords[c] = np.asarray(pd.unique(keys[c]))
        count = dense.reshape(shape)
        population_arr = np.broadcast_to(dense_pop.reshape(shape[1:]), shape)
    else:
        count = totals.reshape(n_draws)
        population_arr = np.full(n_draws, pop[0])
    with np.errstate(invalid="ignore", divide="ignore"):
        prevalence = count / population_arr
    result = xr.Dataset(
        {
            "prevalence": (dims, prevalence),
            "count": (dims, count),
            "population": (dims, np.array(population_arr)),
        },
        coords=coords,
    )
    respondents = _respondents_by(fit, by_columns)
    attrs = {
        "unseen_levels": unseen,
        "model": fit.model.formula.text,
        "draws_method": dataset.attrs.get("method", ""),
    }
    return DrawEstimates(result, by=by_columns, respondents=respondents, level=level, attrs=attrs)


def _collapse(population: PopulationFrame, fit: MultilevelFit, by: list[str]) -> PopulationFrame:
    """Sum the frame over variables neither the model nor ``by`` uses.

    Cells that differ only in such variables have the same probability in every
    draw, so their counts can be added first (a frame with an extra household-type
    variable shrinks by its number of types) without changing any result.
    """
    model_columns = list(fit.model.data.cell_frame.columns)
    keep = list(dict.fromkeys([*model_columns, *by]))
    cells = population.cells
    require_columns(cells, keep, "model")
    if len(keep) == len(population.variables):
        return population
    count = population.count_col
    grouped = (
        cells.assign(**{count: population.counts})
        .groupby(keep, observed=True, sort=False, dropna=False)[count]
        .sum()
        .reset_index()
    )
    if len(grouped) == len(cells):
        return population
    return PopulationFrame(grouped, count=count)


def _respondents_by(fit: MultilevelFit, by: list[str]) -> pd.Series | None:
    data = fit.model.data
    if not by or not set(by) <= set(data.cell_frame.columns):
        return None
    frame = data.cell_frame[by].copy()
    frame["_n"] = data.rows_per_cell
    return frame.groupby(by, observed=True)["_n"].sum()
