r"""Sample support of model-based estimates: how much of each area is data.

Per area :math:`a`, from the fitted care chain:

- respondents behind each link's model, and the frame cells (combinations
  of the ``need`` model's categorical variables) with and without
  respondents, with the population share of the empty ones;
- the **pooling factor** of the area's random intercept :math:`b_a` in a
  model with random-intercept SD :math:`\sigma`:

  .. math:: \lambda_a = \operatorname{Var}(b_a \mid y) / \sigma^2
     = \mathrm{sd}_{\text{cond}}(b_a)^2 / \sigma^2 ,

  0 when the area's own data pin its effect down, 1 when the estimate rests
  entirely on pooling (an area without respondents, or :math:`\sigma = 0`);
- ``extrapolation``: no respondents, or :math:`\lambda_a >` 0.9 in the
  ``need`` model.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from unmetneed.errors import FrameError
from unmetneed.mrp.draw_estimates import DrawEstimates
from unmetneed.mrp.frame import PopulationFrame
from unmetneed.mrp.model import MultilevelFit

__all__ = ["AREA", "POOLING_THRESHOLD", "support_tables"]

AREA = "area_code"
#: Above this pooling factor an area's estimate is flagged as extrapolation.
POOLING_THRESHOLD = 0.9


def _categorical(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if not pd.api.types.is_float_dtype(frame[c].dtype)]


def _by_area(fit: MultilevelFit) -> pd.Series | None:
    cells = fit.model.data.cell_frame
    if AREA not in cells.columns:
        return None
    counts = pd.Series(fit.model.data.rows_per_cell, index=pd.Index(cells[AREA].astype(object), dtype=object))
    return counts.groupby(level=0, sort=False).sum()


def _pooling(fit: MultilevelFit, areas: pd.Index) -> np.ndarray:
    if AREA not in fit.model.formula.groups:
        # No area term at all: every area is pooled completely (its effect is 0).
        return np.ones(len(areas))
    sd = float(fit.variance_components[AREA])
    effects = fit.random_effects[AREA]
    if sd > 0:
        factor = (effects["sd"].to_numpy() / sd) ** 2
    else:
        factor = np.ones(len(effects))
    series = pd.Series(factor, index=pd.Index(effects.index.astype(object), dtype=object))
    # Areas unseen in fitting draw their effect from N(0, sd^2): entirely pooled.
    return series.reindex(areas).fillna(1.0).to_numpy()


def _cell_support(fit: MultilevelFit, population: PopulationFrame | None) -> pd.DataFrame:
    data = fit.model.data
    keys = _categorical(data.cell_frame)
    model = data.cell_frame[keys].astype(object)
    if population is None:
        table = model.assign(respondents=data.rows_per_cell).groupby(keys, sort=False).sum().reset_index()
        table["population"] = np.nan
        return table[[*keys, "population", "respondents"]]
    cells = population.cells
    absent = [k for k in keys if k not in cells.columns]
    if absent:
        # Groupings the care model derives itself (ethnic_group_5 from ethnic_group,
        # age_band_disability from both) are derived here the same way.
        try:
            from unmetneed.estimates.groupings import add_grouping_columns
        except ImportError:  # pragma: no cover - older estimates layer
            pass
        else:
            cells = add_grouping_columns(cells)
            absent = [k for k in keys if k not in cells.columns]
    if absent:
        raise FrameError(
            f"population lacks {absent}, variables of the need model "
            f"({fit.model.formula.text}); pass the frame the care estimates were made with"
        )
    # One integer key per combination, shared by frame and model cells: sums by bincount.
    both = pd.concat([cells[keys].astype(object), model], ignore_index=True)
    codes = [pd.factorize(both[k])[0] for k in keys]
    sizes = [int(c.max()) + 1 for c in codes]
    key, uniques = pd.factorize(np.ravel_multi_index(codes, sizes))
    n_frame = len(cells)
    n_keys = len(uniques)
    population_sum = np.bincount(key[:n_frame], weights=population.counts, minlength=n_keys)
    respondents = np.bincount(key[n_frame:], weights=data.rows_per_cell, minlength=n_keys)
    firsts = np.full(n_keys, -1)
    firsts[key[::-1]] = np.arange(key.size - 1, -1, -1)
    table = both.iloc[firsts].reset_index(drop=True)
    table["population"] = population_sum
    table["respondents"] = respondents.astype(np.int64)
    return table


def support_tables(
    care: DrawEstimates, population: PopulationFrame | None
) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """Per-area support, per-cell support and notes on what could not be measured."""
    fits: Mapping[str, MultilevelFit] | None = getattr(care, "fits", None)
    notes: list[str] = []
    if not fits or "need" not in fits:
        notes.append("care carries no fitted models (.fits): sample support not measured")
        return pd.DataFrame(), pd.DataFrame(), notes
    need = fits["need"]
    cells = _cell_support(need, population)
    if population is None:
        notes.append("no population= frame: empty frame cells and their population share not measured")

    # The areas: the frame's, else care's, then any only the models saw.
    candidates: list[Any] = []
    if population is not None and AREA in population.cells.columns:
        candidates = list(pd.unique(population.cells[AREA].astype(object)))
    elif AREA in care.by:
        candidates = list(np.asarray(care.draws[AREA].values, dtype=object))
    per_link = {name: _by_area(fit) for name, fit in fits.items()}
    seen = [a for counts in per_link.values() if counts is not None for a in counts.index]
    if candidates:
        known = set(candidates)
        candidates += [a for a in pd.unique(np.asarray(seen, dtype=object)) if a not in known]
    else:
        candidates = sorted(set(seen), key=str)
    if not candidates:
        notes.append(f"no {AREA!r} in the frame, care or models: support by area not measured")
        return pd.DataFrame(), cells, notes
    areas = pd.Index(pd.unique(np.asarray(candidates, dtype=object)), dtype=object, name=AREA)

    table = pd.DataFrame({AREA: areas.to_numpy()})
    if population is not None and AREA in population.cells.columns:
        totals = population.totals(AREA)
        totals.index = pd.Index(totals.index.astype(object), dtype=object)
        table["population"] = totals.reindex(areas).to_numpy()
    elif AREA in care.by:
        pop = (
            care.draws["population"]
            .isel(draw=0)
            .sum(dim=[d for d in care.by if d != AREA], min_count=1)
            .to_series()
        )
        pop.index = pd.Index(pop.index.astype(object), dtype=object)
        table["population"] = pop.reindex(areas).to_numpy()
    else:
        table["population"] = np.nan
    for name in fits:
        column = "respondents" if name == "need" else f"respondents_{name}"
        counts = per_link[name]
        if counts is None and name == "need" and care.respondents is not None and care.by == [AREA]:
            counts = pd.Series(care.respondents)
            counts.index = pd.Index(counts.index.astype(object), dtype=object)
        table[column] = (
            counts.reindex(areas).fillna(0).astype(np.int64).to_numpy()
            if counts is not None
            else pd.array([pd.NA] * len(areas), dtype="Int64")
        )
    if population is not None and AREA in cells.columns:
        populated = cells[cells["population"] > 0]
        empty = populated["respondents"] == 0
        grouped = populated.assign(empty=empty, empty_population=populated["population"].where(empty, 0.0))
        per_area = grouped.groupby(AREA, sort=False).agg(
            cells=("population", "size"),
            empty_cells=("empty", "sum"),
            empty_population=("empty_population", "sum"),
            total=("population", "sum"),
        )
        per_area.index = pd.Index(per_area.index.astype(object), dtype=object)
        per_area = per_area.reindex(areas)
        table["cells"] = per_area["cells"].fillna(0).astype(np.int64).to_numpy()
        table["empty_cells"] = per_area["empty_cells"].fillna(0).astype(np.int64).to_numpy()
        with np.errstate(divide="ignore", invalid="ignore"):
            table["empty_cell_share"] = (per_area["empty_population"] / per_area["total"]).to_numpy()
    else:
        table["cells"] = pd.array([pd.NA] * len(areas), dtype="Int64")
        table["empty_cells"] = pd.array([pd.NA] * len(areas), dtype="Int64")
        table["empty_cell_share"] = np.nan
    for name, fit in fits.items():
        table["pooling" if name == "need" else f"pooling_{name}"] = _pooling(fit, areas)
    no_data = table["respondents"].fillna(0).to_numpy() == 0
    table["extrapolation"] = no_data | (table["pooling"].to_numpy() > POOLING_THRESHOLD)
    if AREA not in need.model.formula.groups:
        notes.append(
            f"the need model has no (1|{AREA}) term: every area's estimate is composition only (pooling 1)"
        )
    return table, cells, notes
