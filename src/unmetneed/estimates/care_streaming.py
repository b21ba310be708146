"""Care populations of a Dask-backed frame, streamed partition by partition (the ``dask`` extra).

The Dask counterpart of :meth:`CareModel.populations_by`'s in-memory pass,
built on :func:`unmetneed.design.partitions.stream_by_group`: the same results (to
rounding) from the same draws. Dask is imported only when a frame is a Dask
DataFrame.

1. One pass over the frame gives the unique values of every column a model
   groups by (and of the columns the derived groupings ``ethnic_group_5`` and
   ``age_band_disability`` are made from: whether a derived column exists, and
   its levels, follow from those). The effects of levels unseen in fitting are
   then drawn on the client, model by model, from the same stream as in memory.
2. With administrative counts, a first streamed pass sums each part by area;
   the benchmark factors (per draw and area) are computed on the client and
   shipped to the workers.
3. A streamed pass sums every part by every grouping, a chunk of cells at a
   time per partition, and the partial sums are added up by group.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import xarray as xr

from unmetneed._blas import single_threaded_blas
from unmetneed._validate import require_columns
from unmetneed.design.partitions import group_keys, stream_by_group, unique_values
from unmetneed.estimates.care import (
    CHUNK_ELEMENTS,
    PARTS,
    _benchmark_factors,
    _check_admin,
    _dataset,
    _exact_admin_totals,
    _grouping_codes,
    _require_model_columns,
    _sum_chunks,
)
from unmetneed.estimates.groupings import GROUPING_SOURCES, add_grouping_columns
from unmetneed.mrp.frame import PopulationFrame, validate_cells
from unmetneed.mrp.poststratify import effect_tables
from unmetneed.mrp.streaming import partition_evaluator, unseen_levels

if TYPE_CHECKING:
    from unmetneed.estimates.care import CareModel
    from unmetneed.mrp.model import MultilevelFit

__all__ = ["stream_care_populations"]

TOTALS = ("need", *PARTS, "insufficient")  # the sums _sum_chunks gives


@dataclass(frozen=True)
class _CarePartition:
    """What every partition needs, shipped to the workers once."""

    fits: dict[str, MultilevelFit]
    betas: dict[str, np.ndarray]
    tables: dict[str, list[np.ndarray]]
    new_levels: dict[str, list[np.ndarray]]
    count: str
    groupings: list[tuple[str, ...]]
    n_draws: int
    areas: pd.Index | None = None  # the frame's areas in factor order, when benchmarking
    factors: dict[str, np.ndarray] | None = None  # per part: (draws x areas) benchmark factors


def stream_care_populations(
    model: CareModel,
    population: PopulationFrame,
    groupings: list[tuple[str, ...]],
    admin: pd.Series | None,
    admin_cv: float,
) -> tuple[list[xr.Dataset], dict[str, float], bool, dict[str, dict[str, int]]]:
    """Datasets per grouping, councils far from the model, admin coverage and unseen levels.

    What :meth:`CareModel.populations_by` needs, from a Dask-backed frame.

    Examples
    --------
    >>> import dask.dataframe as dd, unmetneed as um
    >>> eng = um.datasets.load_synthetic_england()  # doctest: +SKIP
    >>> model = um.fit_care_model(eng.population, eng.surveys["general"], draws=100)  # doctest: +SKIP
    >>> frame = um.PopulationFrame(dd.from_pandas(eng.population.cells, npartitions=8))  # doctest: +SKIP
    >>> model.populations(frame, by="area_code")  # streamed on the active client  # doctest: +SKIP
    """
    population.check_repeated_cells()
    cells = population.dask
    wanted = {g for fit in model.fits.values() for g in fit.model.formula.groups}
    if admin is not None:
        wanted.add("area_code")
    columns, values = _columns_and_values(cells, wanted)
    known = pd.DataFrame(columns=columns)
    for key in groupings:
        require_columns(known, list(key), "by")
    if admin is not None:
        areas = values.get("area_code", np.array([]))
        admin = _check_admin(
            admin, known if "area_code" not in columns else pd.DataFrame({"area_code": areas})
        )
    # Effects of levels unseen in fitting are drawn from the same stream every time, in the same order.
    rng = np.random.default_rng(model._seed_sequence)
    tables: dict[str, list[np.ndarray]] = {}
    new_levels: dict[str, list[np.ndarray]] = {}
    unseen: dict[str, dict[str, int]] = {}
    for name, fit in model.fits.items():
        _require_model_columns(name, fit, columns)
        new_levels[name], unseen_fit = unseen_levels(fit, values)
        tables[name] = effect_tables(fit, model.link_draws[name], new_levels[name], rng)
        if unseen_fit:
            unseen[name] = unseen_fit
    payload = _CarePartition(
        fits=model.fits,
        betas={name: draws["beta"].values for name, draws in model.link_draws.items()},
        tables=tables,
        new_levels=new_levels,
        count=population.count_col,
        groupings=list(groupings),
        n_draws=model.n_draws,
    )
    far: dict[str, float] = {}
    covers = False
    if admin is not None:
        area_payload = _with(payload, groupings=[("area_code",)])
        ((area_keys, area_sums),) = stream_by_group(cells, _partition_sums, area_payload, [["area_code"]])
        area_levels = area_keys["area_code"]
        covers = bool(area_levels.astype(str).isin(admin.index.astype(str)).all())
        area_totals = {name: area_sums[name].T for name in TOTALS}
        factors, far = _benchmark_factors(area_totals, area_levels, admin, admin_cv, rng)
        payload = _with(payload, areas=pd.Index(area_levels), factors=factors)
    streamed = stream_by_group(cells, _partition_sums, payload, [list(by) for by in groupings])
    coded = [(np.arange(len(keys)), len(keys), keys) for keys, _ in streamed]
    all_totals = [{name: sums[name].T.copy() for name in TOTALS} for _, sums in streamed]
    if admin is not None and admin_cv == 0.0:
        _exact_admin_totals(groupings, coded, all_totals, admin, covers)
    datasets = [
        _dataset(list(by), group, n_groups, keys, totals, sums["population"], model.n_draws)
        for by, (group, n_groups, keys), totals, (_, sums) in zip(
            groupings, coded, all_totals, streamed, strict=True
        )
    ]
    return datasets, far, covers, unseen


def _with(payload: _CarePartition, **changes: Any) -> _CarePartition:
    return _CarePartition(**{**payload.__dict__, **changes})


def _columns_and_values(cells: Any, wanted: set[str]) -> tuple[list[str], dict[str, np.ndarray]]:
    """The frame's columns once grouping columns are added, and the unique values of ``wanted``.

    A derived grouping column exists (and has the levels) as ``add_grouping_columns``
    would give the whole frame: it decides from the unique rows of the columns it is
    made from, which is the same decision.
    """
    present = list(cells.columns)
    derived = {
        name: list(sources)
        for name, sources in GROUPING_SOURCES.items()
        if name not in present and set(sources) <= set(present)
    }
    plain = sorted(c for c in wanted if c in present)
    computed = unique_values(cells, [*derived.values(), *plain])
    values = dict(zip(plain, computed[len(derived) :], strict=True))
    columns = list(present)
    for name, unique_rows in zip(derived, computed[: len(derived)], strict=True):
        added = add_grouping_columns(unique_rows)
        if name in added.columns:
            columns.append(name)
            values[name] = added[name].drop_duplicates().to_numpy()
    return columns, values


def _partition_sums(
    cells: pd.DataFrame, payload: _CarePartition
) -> list[tuple[pd.DataFrame, dict[str, Any]]]:
    """One partition's (groups x draws) sums of every part and its groups' populations, per grouping."""
    cells = add_grouping_columns(cells)
    counts = validate_cells(cells, payload.count)
    probabilities = {
        name: partition_evaluator(
            fit, cells, payload.betas[name], payload.tables[name], payload.new_levels[name]
        )
        for name, fit in payload.fits.items()
    }
    coded = [_grouping_codes(cells, by) for by in payload.groupings]
    area_codes = None
    if payload.areas is not None:
        area_codes = payload.areas.get_indexer(pd.Index(cells["area_code"]))
    size = max(1, CHUNK_ELEMENTS // max(payload.n_draws, 1))
    with single_threaded_blas():  # one BLAS thread per worker task
        totals = _sum_chunks(
            probabilities,
            counts,
            [(c, n) for c, n, _ in coded],
            payload.n_draws,
            size,
            payload.factors,
            area_codes,
        )
    out = []
    for by, (group, n_groups, _), sums in zip(payload.groupings, coded, totals, strict=True):
        arrays = {name: np.ascontiguousarray(value.T) for name, value in sums.items()}
        arrays["population"] = np.bincount(group, weights=counts, minlength=n_groups)
        out.append((group_keys(cells, list(by), group, n_groups), arrays))
    return out
