"""Turn a model's rows into binomial cells, and cells into model matrices."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from formulaic import ModelSpec, model_matrix
from scipy.special import gammaln

from unmetneed._validate import require_columns, row_examples, show
from unmetneed.design.coding import code_series, factorize_with_first
from unmetneed.errors import ModelError
from unmetneed.mrp.formula import ModelFormula
from unmetneed.mrp.laplace import CellData

__all__ = ["ModelData", "prepare_cells"]


@dataclass(frozen=True, eq=False)
class ModelData:
    """Cells, their model matrix and everything needed to predict new data."""

    cells: CellData
    terms: list[str]
    levels: dict[str, pd.Index]  # grouping factor -> its levels (fitting order)
    spec: ModelSpec  # of the fixed part
    n_rows: int
    weighted: bool
    aggregated: bool  # successes out of trials given by the user
    log_binomial_coefficients: float  # sum over rows of log C(n, k) (0 for 0/1 rows)
    cell_frame: pd.DataFrame  # one representative row per cell
    rows_per_cell: np.ndarray  # respondents (rows) behind each cell, unweighted


def prepare_cells(
    formula: ModelFormula,
    data: pd.DataFrame,
    *,
    weights: str | None,
    trials: str | None,
) -> ModelData:
    """Validate the model's columns and collapse rows to binomial cells.

    Steps: check the columns; read the response (and trials) and the scaled
    weights; code the grouping factors; collapse rows with the same fixed-effect
    values and levels into one cell; build the cells' fixed-effect matrix.
    """
    fixed_vars = _check_columns(formula, data, weights, trials)
    y, n = _response_and_trials(formula.response, data, trials)
    w = _scaled_weights(data, weights) if weights else np.ones_like(y)
    levels, codes = _group_codes(data, formula.groups)

    cell, first = factorize_with_first(_cell_key(data, fixed_vars, codes, levels, formula.groups))
    n_cells = first.size
    cell_frame = data.iloc[first][[*fixed_vars, *formula.groups]].reset_index(drop=True)
    X, matrix = _fixed_matrix(formula.fixed, cell_frame)
    log_binom = 0.0
    if trials:
        log_binom = float(np.sum(w * (gammaln(n + 1) - gammaln(y + 1) - gammaln(n - y + 1))))
    cell_data = CellData(
        X=X,
        codes=tuple(c[first] for c in codes),
        n_levels=tuple(len(levels[g]) for g in formula.groups),
        successes=np.bincount(cell, weights=w * y, minlength=n_cells),
        trials=np.bincount(cell, weights=w * n, minlength=n_cells),
    )
    return ModelData(
        cells=cell_data,
        terms=[str(c) for c in matrix.columns],
        levels=levels,
        spec=matrix.model_spec,
        n_rows=len(data),
        weighted=weights is not None,
        aggregated=trials is not None,
        log_binomial_coefficients=log_binom,
        cell_frame=cell_frame,
        rows_per_cell=np.bincount(cell, minlength=n_cells),
    )


def _check_columns(
    formula: ModelFormula, data: pd.DataFrame, weights: str | None, trials: str | None
) -> list[str]:
    """The fixed-effect variables present; every model column exists and has no missing value."""
    if not isinstance(data, pd.DataFrame) or len(data) == 0:
        raise ModelError("data must be a non-empty pandas DataFrame")
    fixed_vars = [v for v in formula.fixed_variables if v in data.columns]
    unknown = [v for v in formula.fixed_variables if v not in data.columns]
    if unknown and formula.fixed != "1":
        require_columns(data, unknown[:1], "fixed-effect")
    needed = [formula.response, *fixed_vars, *formula.groups]
    needed += [c for c in (weights, trials) if c]
    require_columns(data, needed, "model")
    for column in [*fixed_vars, *formula.groups, formula.response]:
        missing = data[column].isna().to_numpy()
        if missing.any():
            raise ModelError(
                f"model column {column!r} has missing values in {row_examples(missing, data.index)}; "
                "remove or recode those rows first (nothing is dropped silently)"
            )
    return fixed_vars


def _response_and_trials(
    response: str, data: pd.DataFrame, trials: str | None
) -> tuple[np.ndarray, np.ndarray]:
    """Successes and trials per row: 0/1 with one trial, or successes out of ``trials``."""
    y = pd.to_numeric(data[response], errors="coerce").to_numpy(dtype=np.float64)
    if trials:
        n = pd.to_numeric(data[trials], errors="coerce").to_numpy(dtype=np.float64)
        bad = ~np.isfinite(n) | (n < 0) | ~np.isfinite(y) | (y < 0) | (y > n)
        if bad.any():
            raise ModelError(
                f"successes {response!r} must lie between 0 and trials {trials!r}; "
                f"not so in {row_examples(bad, data.index)}"
            )
        return y, n
    bad = ~np.isin(y, (0.0, 1.0))
    if bad.any():
        raise ModelError(
            f"response {response!r} must be 0/1 (or successes with trials=); "
            f"found {show(data[response].to_numpy()[bad][0])} in "
            f"{row_examples(bad, data.index)}"
        )
    return y, np.ones_like(y)


def _scaled_weights(data: pd.DataFrame, weights: str) -> np.ndarray:
    """Survey weights scaled to sum to the number of rows (pseudo-likelihood)."""
    w = pd.to_numeric(data[weights], errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(w) | (w < 0)
    if bad.any():
        raise ModelError(
            f"weights {weights!r} must be finite and >= 0; not so in {row_examples(bad, data.index)}"
        )
    total = w.sum()
    if not total > 0:
        raise ModelError(
            f"weights {weights!r} are zero in every row, so they cannot be scaled to the "
            "sample size; check the column, or fit without weights"
        )
    return w * (w.size / total)


def _group_codes(
    data: pd.DataFrame, groups: tuple[str, ...] | list[str]
) -> tuple[dict[str, pd.Index], list[np.ndarray]]:
    """Each grouping factor's levels (R factor order) and integer codes; two levels at least."""
    levels: dict[str, pd.Index] = {}
    codes = []
    for group in groups:
        group_codes, group_levels = code_series(data[group])
        if len(group_levels) < 2:
            raise ModelError(
                f"grouping factor {group!r} has a single level ({show(group_levels[0])}); a "
                f"random intercept needs at least two: drop (1|{group}) from the formula"
            )
        levels[group] = group_levels
        codes.append(group_codes)
    return levels, codes


def _cell_key(
    data: pd.DataFrame,
    fixed_vars: list[str],
    codes: list[np.ndarray],
    levels: dict[str, pd.Index],
    groups: tuple[str, ...] | list[str],
) -> np.ndarray:
    """One integer per distinct combination of the fixed-effect variables and the groups."""
    key = np.zeros(len(data), dtype=np.int64)
    radices = [pd.factorize(data[column], sort=False) for column in fixed_vars]
    parts = [(c, max(len(u), 1)) for c, u in radices]
    parts += [(c, len(levels[g])) for c, g in zip(codes, groups, strict=True)]
    for part_codes, size in parts:
        # Re-factorised after each step so the key stays small (no int64 overflow).
        key, _ = pd.factorize(key * size + part_codes)
        key = key.astype(np.int64)
    return key


def _fixed_matrix(fixed: str, cell_frame: pd.DataFrame) -> tuple[np.ndarray, Any]:
    """The cells' fixed-effect matrix (formulaic, full rank) and formulaic's matrix object."""
    try:
        matrix = model_matrix(fixed, cell_frame.copy(), ensure_full_rank=True)
    except Exception as error:  # formulaic raises several types; name the formula
        raise ModelError(f"could not build the fixed effects of {fixed!r}: {error}") from error
    X = np.asarray(matrix, dtype=np.float64)
    if X.shape[1] and np.linalg.matrix_rank(X) < X.shape[1]:
        raise ModelError(f"the fixed effects {list(matrix.columns)} are collinear in the data; drop one")
    return X, matrix
