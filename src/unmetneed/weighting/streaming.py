"""Raking and calibration of a Dask DataFrame's rows: one pass for the cells, weights mapped lazily.

Dask is optional: nothing imports this module unless :func:`~unmetneed.rake`
or :func:`~unmetneed.calibrate` is given a Dask DataFrame, and it imports Dask
only inside its functions. The work runs on the active Dask scheduler (a
``distributed.Client`` entered with ``with Client(...)``, otherwise Dask's
default one).

With categorical margins a row's raked weight is its base weight times the
g-weight of its cell of the margins' cross-classification, and the solver needs
only the cells' totals of base weights. So:

1. one pass over the partitions: each partition is checked (weights and margin
   variables, as a :class:`~unmetneed.SurveyDesign` checks them) and summed by
   cell; the partial sums are added up in a tree
   (:func:`unmetneed.design.partitions.stream_by_group`);
2. the in-memory code runs on the cells, a design of one row per cell with the
   cell's total as its weight: margins matched (``collapse=``,
   ``allow_empty=``, ``reconcile=``), cells solved for their g-weights (IPF or
   Newton), non-convergence raised or warned;
3. the weights are the base weights times their cell's g-weight, mapped over
   the partitions lazily: a Dask Series with the input's partitions and index.

The sweeps of the solver run on the cells in memory (at most a few hundred
thousand), not over the partitions: one pass over the data however many sweeps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from unmetneed._validate import require_columns
from unmetneed.design import SurveyDesign
from unmetneed.design.coding import code_columns
from unmetneed.design.partitions import Partial, group_keys, map_by_partition, stream_by_group
from unmetneed.design.survey_design import check_weights
from unmetneed.errors import DesignError, MarginsError
from unmetneed.margins import Margins
from unmetneed.weighting.apply import MarginOptions, check_options, solve_on_cells
from unmetneed.weighting.blocks import prepare_blocks
from unmetneed.weighting.report import (
    DaskWeightingResult,
    WeightingReport,
    cell_weight_summary,
    margin_fit_table,
)

__all__ = ["fit_margins_dask"]

ROLE = "margin variable"


@dataclass(frozen=True)
class _Columns:
    variables: list[str]
    weights: str


@dataclass(frozen=True)
class _Lookup:
    """What every partition needs to weight its rows: the cells' keys and g-weights."""

    columns: _Columns
    keys: pd.MultiIndex
    g: np.ndarray


def fit_margins_dask(
    frame: Any,
    margins: Margins,
    shared: MarginOptions,
    *,
    weights: str | None,
    method: str,
    solve: Any,
    options: dict[str, Any],
) -> DaskWeightingResult:
    """Weights of a Dask DataFrame's rows calibrated to categorical ``margins`` (see the module).

    Raises
    ------
    DesignError
        No ``weights=``; bad weights or missing values of a margin variable in a
        partition (named in the message); no rows.
    MissingColumnError
        The weights column or a margin variable is not in the frame.
    MarginsError
        Numeric totals among the margins; as in memory, margins that do not fit
        the data.
    CalibrationError
        As in memory.

    Examples
    --------
    >>> import dask.dataframe as dd, pandas as pd, unmetneed as um
    >>> survey = um.datasets.load_example_survey()
    >>> m = um.Margins({"sex": pd.Series({"Female": 510_000.0, "Male": 490_000.0})})
    >>> r = um.rake(dd.from_pandas(survey, npartitions=3), m, weights="weight")
    >>> r.weights.npartitions, round(float(r.weights.sum().compute()))
    (3, 1000000)
    """
    check_options(shared)
    if weights is None:
        raise DesignError(
            f"{method} of a Dask DataFrame needs weights=, the column of base weights "
            "(e.g. rake(frame, margins, weights='weight'))"
        )
    margins = Margins(margins)
    if margins.numeric_keys:
        raise MarginsError(
            f"{method} of a Dask DataFrame takes categorical margins only; the numeric totals "
            f"{[str(k) for k in margins.numeric_keys]} need the rows in memory: calibrate a "
            "SurveyDesign of the rows (frame.compute()) instead"
        )
    variables = list(dict.fromkeys(v for key in margins.categorical_keys for v in Margins.variables_of(key)))
    require_columns(frame, [weights], "weights")
    require_columns(frame, variables, ROLE)
    columns = _Columns(variables, weights)
    ((keys, sums),) = stream_by_group(
        frame,
        _partition_cells,
        columns,
        [variables],
        empty=DesignError("df has no rows; a design needs at least one respondent"),
    )
    base = sums["base"]
    cell_frame = keys.copy()
    weight_col = weights if weights not in variables else "_base_weight"
    cell_frame[weight_col] = base
    # The in-memory code on the cells: a design of one row per cell, weighted by its total.
    design = SurveyDesign(cell_frame, weights=weight_col)
    prep = prepare_blocks(
        design,
        margins,
        reconcile=shared.reconcile,
        collapse=shared.collapse,
        allow_empty=shared.allow_empty,
        counts=sums["rows"],
    )
    cells, solution = solve_on_cells(prep, base, solve, method, shared)
    g = solution.g[cells.cell]
    rows, zeros = sums["rows"], sums["zeros"]
    weights_out = map_by_partition(
        frame,
        _partition_weights,
        _Lookup(columns, pd.MultiIndex.from_frame(keys), g),
        pd.Series(dtype="float64", name=weights),
    )
    messages = []
    negative = rows - zeros
    if (g < 0).any() and negative[g < 0].sum() > 0:
        messages.append(
            f"{int(negative[g < 0].sum()):,} weights are negative (linear calibration allows them); "
            "use bounds= or method='raking'/'logit' to keep weights positive"
        )
    report = WeightingReport(
        method=method,
        converged=bool(solution.max_rel_error <= shared.tol),
        iterations=solution.iterations,
        max_rel_error=solution.max_rel_error,
        before=np.empty(0),
        after=np.empty(0),
        table=margin_fit_table(prep.blocks, base, base * g),
        adjustments=list(prep.adjustments),
        messages=messages,
        options={**options, "weights": weights, "partitions": frame.npartitions},
        summaries=(
            cell_weight_summary(rows, base, sums["squares"], zeros),
            cell_weight_summary(rows, base, sums["squares"], zeros, g),
        ),
    )
    table = keys.assign(rows=rows.astype(np.int64), base_weight=base, g=g)
    return DaskWeightingResult(weights_out, report, table)


def _partition_cells(part: pd.DataFrame, columns: _Columns) -> Partial:
    """One partition's cells: rows, base weight totals, sums of squares and zero weights per cell."""
    w = check_weights(part, columns.weights, some_positive=False)
    coding = code_columns(part, columns.variables, ROLE)
    n = coding.n_levels
    sums = {
        "rows": np.bincount(coding.codes, minlength=n).astype(np.float64),
        "base": np.bincount(coding.codes, weights=w, minlength=n),
        "squares": np.bincount(coding.codes, weights=w * w, minlength=n),
        "zeros": np.bincount(coding.codes, weights=w == 0, minlength=n),
    }
    return [(group_keys(part, columns.variables, coding.codes, n), sums)]


def _partition_weights(part: pd.DataFrame, lookup: _Lookup) -> pd.Series:
    """One partition's weights: base weight times the g-weight of the row's cell."""
    columns = lookup.columns
    w = check_weights(part, columns.weights, some_positive=False)
    if len(part) == 0:
        return pd.Series(w, index=part.index, name=columns.weights)
    coding = code_columns(part, columns.variables, ROLE)
    position = lookup.keys.get_indexer(pd.MultiIndex.from_frame(coding.levels))
    if (position < 0).any():
        unseen = coding.levels[position < 0].iloc[0].to_dict()
        raise DesignError(
            f"rows of cell {unseen} were not in the data when the weights were found: the data "
            "changed between the passes; rake again"
        )
    return pd.Series(w * lookup.g[position[coding.codes]], index=part.index, name=columns.weights)
