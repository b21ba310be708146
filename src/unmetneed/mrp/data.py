"""Turn a model's rows into binomial cells, and cells into model matrices."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from formulaic import model_matrix

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
    spec: object  # formulaic ModelSpec of the fixed part
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
    """Validate the model's columns and collapse rows to binomial cells."""
    if not isinstance(data, pd.DataFrame) or len(data) == 0:
        raise ModelError("data must be a non-empty pandas DataFrame")
    fixed_vars = [v for v in formula.fixed_variables if v in data.columns]
    unknown = [v for v in formula.fixed_variables if v not in data.columns]
    if unknown and formula.fixed != "1":
        require_columns(data, unknown[:1], "fixed-effect")
    needed = [formula.response, *fixed_vars, *formula.groups]
    if weights:
        needed.append(weights)
    if trials:
        needed.append(trials)
    require_columns(data, needed, "model")
    for column in [*fixed_vars, *formula.groups, formula.response]:
        missing = data[column].isna().to_numpy()
        if missing.any():
            raise ModelError(
                f"model column {column!r} has missing values in {row_examples(missing, data.index)}; "
                "remove or recode those rows first (nothing is dropped silently)"
            )

    y = pd.to_numeric(data[formula.response], errors="coerce").to_numpy(dtype=np.float64)
    if trials:
        n = pd.to_numeric(data[trials], errors="coerce").to_numpy(dtype=np.float64)
        bad = ~np.isfinite(n) | (n < 0) | ~np.isfinite(y) | (y < 0) | (y > n)
        if bad.any():
            raise ModelError(
                f"successes {formula.response!r} must lie between 0 and trials {trials!r}; "
                f"not so in {row_examples(bad, data.index)}"
            )
    else:
        bad = ~np.isin(y, (0.0, 1.0))
        if bad.any():
            raise ModelError(
                f"response {formula.response!r} must be 0/1 (or successes with trials=); "
                f"found {show(data[formula.response].to_numpy()[bad][0])} in "
                f"{row_examples(bad, data.index)}"
            )
        n = np.ones_like(y)
    if weights:
        w = pd.to_numeric(data[weights], errors="coerce").to_numpy(dtype=np.float64)
        bad = ~np.isfinite(w) | (w < 0)
        if bad.any():
            raise ModelError(f"weights {weights!r} must be finite and >= 0; not so in {row_examples(bad, data.index)}")
        w = w * (w.size / w.sum())  # scaled to the sample size (pseudo-likelihood)
    else:
        w = np.ones_like(y)

    levels: dict[str, pd.Index] = {}
    codes = []
    for group in formula.groups:
        group_codes, group_levels = code_series(data[group])
        if len(group_levels) < 2:
            raise ModelError(
                f"grouping factor {group!r} has a single level ({show(group_levels[0])}); a "
                f"random intercept needs at least two: drop (1|{group}) from the formula"
            )
        levels[group] = group_levels
        codes.append(group_codes)

    # Cells: distinct combinations of the fixed-effect variables and the groups.
    key = np.zeros(len(data), dtype=np.int64)
    for column in fixed_vars:
        column_codes, uniques = pd.factorize(data[column], sort=False)
        key = key * max(len(uniques), 1) + column_codes
        key, _ = pd.factorize(key)
        key = key.astype(np.int64)
    for group_codes, group in zip(codes, formula.groups, strict=True):
        key = key * len(levels[group]) + group_codes
        key, _ = pd.factorize(key)
        key = key.astype(np.int64)
    cell, first = factorize_with_first(key)
    n_cells = first.size
    successes = np.bincount(cell, weights=w * y, minlength=n_cells)
    cell_trials = np.bincount(cell, weights=w * n, minlength=n_cells)
    cell_frame = data.iloc[first][[*fixed_vars, *formula.groups]].reset_index(drop=True)
    try:
        matrix = model_matrix(formula.fixed, cell_frame.copy(), ensure_full_rank=True)
    except Exception as error:  # formulaic raises several types; name the formula
        raise ModelError(f"could not build the fixed effects of {formula.fixed!r}: {error}") from error
    X = np.asarray(matrix, dtype=np.float64)
    if X.shape[1] and np.linalg.matrix_rank(X) < X.shape[1]:
        raise ModelError(
            f"the fixed effects {list(matrix.columns)} are collinear in the data; drop one"
        )
    log_binom = 0.0
    if trials:
        from scipy.special import gammaln

        log_binom = float(np.sum(w * (gammaln(n + 1) - gammaln(y + 1) - gammaln(n - y + 1))))
    cell_data = CellData(
        X=X,
        codes=tuple(c[first] for c in codes),
        n_levels=tuple(len(levels[g]) for g in formula.groups),
        successes=successes,
        trials=cell_trials,
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
