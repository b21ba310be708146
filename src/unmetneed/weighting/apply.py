"""Shared driver of the margin-based weighting functions."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from unmetneed._validate import check_choice
from unmetneed.design import SurveyDesign
from unmetneed.design.calibration import CalibrationRecord
from unmetneed.errors import (
    CalibrationError,
    ConvergenceWarning,
    DesignError,
    MarginsError,
)
from unmetneed.margins import Margins
from unmetneed.weighting.blocks import Collapse, Preparation, Reconcile, prepare_blocks
from unmetneed.weighting.cells import Cells, collapse_to_cells
from unmetneed.weighting.report import WeightingReport, WeightingResult
from unmetneed.weighting.solvers import Solution

__all__ = [
    "MarginOptions",
    "OnNonconvergence",
    "check_options",
    "check_tolerance",
    "fit_margins",
    "solve_on_cells",
]

OnNonconvergence = Literal["raise", "warn"]


@dataclass(frozen=True)
class MarginOptions:
    """The options every margin-based weighting shares: convergence and matching margins."""

    tol: float
    max_iter: int
    reconcile: Reconcile
    collapse: Collapse
    allow_empty: bool
    on_nonconvergence: OnNonconvergence = "raise"

    def recorded(self) -> dict[str, Any]:
        """The options a result records (the failure policy is not part of the answer)."""
        return {
            "tol": self.tol,
            "max_iter": self.max_iter,
            "reconcile": self.reconcile,
            "collapse": self.collapse,
            "allow_empty": self.allow_empty,
        }


def check_tolerance(tol: float, max_iter: int) -> None:
    if not (isinstance(tol, (int, float)) and 0 < tol < 1):
        raise DesignError(f"tol={tol!r} must be a number in (0, 1), e.g. 1e-10")
    if not (isinstance(max_iter, (int, np.integer)) and max_iter >= 1):
        raise DesignError(f"max_iter={max_iter!r} must be a positive integer")


def fit_margins(
    design: SurveyDesign,
    margins: Margins,
    shared: MarginOptions,
    *,
    method: str,
    solve: Any,
    record_kind: Literal["regression", "raking"],
    options: dict[str, Any],
    categorical_only: bool = False,
) -> WeightingResult:
    """Prepare blocks, solve on cells for the weights and each replicate, build the result.

    ``options`` is what the result records as the call's options.
    """
    if not isinstance(design, SurveyDesign):
        raise DesignError(
            f"design must be a SurveyDesign (or, for rake and calibrate, a Dask DataFrame); "
            f"got {type(design).__name__}"
        )
    tol, on_nonconvergence = shared.tol, shared.on_nonconvergence
    check_options(shared)
    prep = prepare_blocks(
        design,
        Margins(margins),
        reconcile=shared.reconcile,
        collapse=shared.collapse,
        allow_empty=shared.allow_empty,
    )
    if categorical_only and any(b.codes is None for b in prep.blocks):
        names = [str(b.key) for b in prep.blocks if b.codes is None]
        raise MarginsError(
            f"{method} works with categorical margins only; numeric totals {names} need "
            "calibrate(method='linear')"
        )
    w0 = design.weights
    cells, solution = solve_on_cells(prep, w0, solve, method, shared)
    weights = w0 * solution.g[cells.cell]

    replicate_weights = None
    if design.replicates is not None:
        reps = design.replicates.weights
        rep_solution: Solution = solve(cells.sum(reps), cells, prep.blocks)
        raise_or_warn(rep_solution, prep, f"{method} (replicate weights)", tol, on_nonconvergence)
        # Made column-major, the layout ReplicateWeights keeps (one replicate's rows contiguous):
        # a row-major product would be copied to Fortran order (0.6 s at 100,000 rows x 300).
        replicate_weights = (reps.T * rep_solution.g.T[:, cells.cell]).T

    record = CalibrationRecord(
        kind=record_kind,
        codes=tuple(b.codes for b in prep.blocks if b.codes is not None),
        sizes=tuple(b.size for b in prep.blocks if b.codes is not None),
        auxiliaries=tuple(b.auxiliary for b in prep.blocks if b.codes is None),
        base_weights=w0.copy(),
        weights=weights,
        method=method,
    )
    new_design = design.reweighted(weights, calibration=record, replicate_weights=replicate_weights)
    messages = []
    if (weights < 0).any():
        messages.append(
            f"{int((weights < 0).sum()):,} weights are negative (linear calibration allows them); "
            "use bounds= or method='raking'/'logit' to keep weights positive"
        )
    if design.calibration is not None:
        messages.append(
            "the design was already calibrated; Taylor variances now account for this "
            "calibration only (calibrate to all margins in one call to account for all)"
        )
    report = WeightingReport(
        method=method,
        converged=bool(solution.max_rel_error <= tol),
        iterations=solution.iterations,
        max_rel_error=solution.max_rel_error,
        before=w0,
        after=weights,
        blocks=prep.blocks,
        adjustments=list(prep.adjustments),
        messages=messages,
        options=options,
        _design=new_design,
    )
    return WeightingResult(new_design, report)


def check_options(shared: MarginOptions) -> None:
    """Refuse a bad ``tol``, ``max_iter`` or ``on_nonconvergence``."""
    check_tolerance(shared.tol, shared.max_iter)
    check_choice(shared.on_nonconvergence, "on_nonconvergence", OnNonconvergence)


def solve_on_cells(
    prep: Preparation, w0: np.ndarray, solve: Any, method: str, shared: MarginOptions
) -> tuple[Cells, Solution]:
    """Collapse the rows of ``prep`` to cells, solve for the cells' g-weights, raise or warn.

    The rows may be respondents (``w0`` their weights) or cells of respondents
    (``w0`` the cells' totals): the cells and g-weights come out the same.
    """
    cells = collapse_to_cells(prep.blocks)
    cell_weights = cells.sum(w0)
    _check_weighted_categories(prep, cells, cell_weights)
    solution: Solution = solve(cell_weights, cells, prep.blocks)
    # the user's call is 5 frames up: rake -> fit_margins(_dask) -> solve_on_cells -> raise_or_warn
    raise_or_warn(solution, prep, method, shared.tol, shared.on_nonconvergence, 5)
    return cells, solution


def _check_weighted_categories(prep: Preparation, cells: Cells, cell_weights: np.ndarray) -> None:
    for block, codes in zip(prep.blocks, cells.codes, strict=True):
        if codes is None:
            continue
        totals = np.bincount(codes, weights=cell_weights, minlength=block.size)
        zero = totals <= 0
        if zero.any():
            cats = ", ".join(str(c) for c in block.categories[zero][:8])
            raise MarginsError(
                f"margin {block.key!r}: the respondents in categories {cats} all have zero "
                "weight, so their weights cannot be scaled to the targets; merge those "
                "categories with collapse= or give them positive weights"
            )


def raise_or_warn(
    solution: Solution,
    prep: Preparation,
    method: str,
    tol: float,
    on_nonconvergence: str,
    stacklevel: int = 4,
) -> None:
    """Non-convergence is never silent: raise, or warn when the caller asked to go on."""
    if solution.max_rel_error <= tol:
        return
    block = prep.blocks[solution.worst_block]
    message = (
        f"{method} did not converge in {solution.iterations} iterations: margin {block.key!r} "
        f"still has a relative error of {solution.max_rel_error:.3g} (tol {tol:g}). "
        "Raise max_iter, loosen tol, check that the margins can be met together "
        "(bounds too tight, categories with few respondents), or pass "
        "on_nonconvergence='warn' to keep the unconverged weights"
    )
    if on_nonconvergence == "raise":
        raise CalibrationError(message)
    warnings.warn(message, ConvergenceWarning, stacklevel=stacklevel)
