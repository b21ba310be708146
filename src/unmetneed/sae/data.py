"""Area-level inputs of a Fay-Herriot model: checks and the covariate matrix."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from formulaic import Formula, model_matrix
from numpy.typing import ArrayLike

from unmetneed._immutable import readonly
from unmetneed._validate import require_columns, show
from unmetneed.errors import MissingColumnError, ModelError

__all__ = ["AreaData", "covariate_matrix", "prepare_area_data", "split_formula"]

_LIST_LIMIT = 10


def _areas(labels: ArrayLike | pd.api.extensions.ExtensionArray, mask: ArrayLike | None = None) -> str:
    """The first few area labels where ``mask`` holds, with a count."""
    values = np.asarray(labels, dtype=object)
    if mask is not None:
        values = values[np.asarray(mask, dtype=bool)]
    shown = ", ".join(show(v) for v in values[:_LIST_LIMIT])
    more = f", ... ({values.size:,} in all)" if values.size > _LIST_LIMIT else ""
    return f"[{shown}{more}]"


@dataclass(frozen=True, eq=False)
class AreaData:
    """Checked area-level data: direct estimates, their variances, covariates."""

    area_col: str
    areas: pd.Index  # every area, in the data's row order
    observed: np.ndarray  # bool: the area has a direct estimate
    y: np.ndarray  # direct estimates (NaN where not observed)
    psi: np.ndarray  # sampling variances (NaN where not observed)
    X: np.ndarray  # covariate rows of every area
    terms: tuple[str, ...]
    spec: Any  # formulaic ModelSpec, to build rows for new areas
    variables: tuple[str, ...]  # data columns the covariates use
    rhs: str
    n: np.ndarray | None  # respondents behind each direct estimate

    def __post_init__(self) -> None:
        # Own read-only copies: the caller's frame may share memory with them (pandas < 3).
        for name in ("observed", "y", "psi", "X", "n"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, readonly(value))


def split_formula(formula: str, estimate: str) -> str:
    """Return the right-hand side of ``formula``, checking its response is ``estimate``."""
    if not isinstance(formula, str) or not formula.strip():
        raise ModelError(f"formula must be a string such as '{estimate} ~ x1 + x2'; got {formula!r}")
    if "~" in formula:
        lhs, rhs = formula.split("~", 1)
        lhs = lhs.strip()
        if lhs and lhs != estimate:
            raise ModelError(
                f"the formula's response {lhs!r} is not the estimate column {estimate!r}; "
                f"write formula='{estimate} ~ {rhs.strip()}' (or leave the left-hand side out)"
            )
    else:
        rhs = formula
    rhs = rhs.strip()
    if not rhs:
        raise ModelError(f"formula {formula!r} has no right-hand side; use '{estimate} ~ 1' for a mean")
    if "|" in rhs:
        raise ModelError(
            f"formula {formula!r} has a '|' term: the Fay-Herriot model has one area random "
            "effect already; give only the covariates (e.g. 'y ~ x1 + x2')"
        )
    return rhs


def _variables(rhs: str) -> tuple[str, ...]:
    try:
        parsed = Formula(rhs)
    except Exception as error:  # formulaic raises several types; name the formula
        raise ModelError(f"could not parse the covariates {rhs!r}: {error}") from error
    return tuple(sorted(parsed.required_variables))


def _numeric(data: pd.DataFrame, column: str, role: str) -> np.ndarray:
    series = data[column]
    if isinstance(series.dtype, pd.CategoricalDtype) or not (
        pd.api.types.is_numeric_dtype(series.dtype) or series.isna().all()
    ):
        raise ModelError(
            f"{role} column {column!r} is not numeric (dtype {series.dtype}); convert it with pd.to_numeric"
        )
    return series.to_numpy(dtype=np.float64, na_value=np.nan)


def covariate_matrix(
    spec: Any, frame: pd.DataFrame, variables: tuple[str, ...], labels: pd.Index | np.ndarray
) -> np.ndarray:
    """Covariate rows for ``frame`` from a fitted spec, refusing missing values."""
    require_columns(frame, variables, "covariate")
    _check_covariates_present(frame, variables, labels, "a Fay-Herriot prediction needs every covariate")
    try:
        matrix = spec.get_model_matrix(frame[list(variables)].copy(), na_action="raise")
    except Exception as error:  # e.g. a category the model was not fitted with
        raise ModelError(
            f"could not build the covariates for these areas: {error}; "
            "categorical covariates may only take categories seen in the fit"
        ) from error
    return np.asarray(matrix, dtype=np.float64).reshape(len(frame), -1)


def prepare_area_data(
    data: pd.DataFrame,
    *,
    estimate: str,
    variance: str,
    formula: str,
    area: str,
    n: str | None,
) -> AreaData:
    """Validate the area table and build the covariate matrix."""
    if not isinstance(data, pd.DataFrame) or len(data) == 0:
        raise ModelError("data must be a non-empty pandas DataFrame with one row per area")
    for name, value in (("estimate", estimate), ("variance", variance), ("area", area)):
        if not isinstance(value, str):
            raise ModelError(f"{name} must be a column name (a string); got {value!r}")
    require_columns(data, [area], "area")
    require_columns(data, [estimate], "estimate")
    require_columns(data, [variance], "variance")
    rhs = split_formula(formula, estimate)
    variables = _variables(rhs)
    unknown = [v for v in variables if v not in data.columns]
    if unknown:
        columns = [str(c) for c in data.columns]
        close = difflib.get_close_matches(unknown[0], columns, n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
        raise MissingColumnError(
            f"the formula {formula!r} names {', '.join(map(repr, unknown))}, not a column of the "
            f"data{hint} (columns: {', '.join(columns[:20])}{', ...' if len(columns) > 20 else ''})"
        )
    if n is not None:
        require_columns(data, [n], "respondent count (n)")

    labels = data[area]
    if labels.isna().any():
        raise ModelError(
            f"area column {area!r} has missing labels in rows "
            f"{_areas(data.index, labels.isna().to_numpy())}; every row must name its area"
        )
    duplicated = labels.duplicated(keep=False).to_numpy()
    if duplicated.any():
        raise ModelError(
            f"areas appear more than once in {area!r}: {_areas(pd.unique(labels[duplicated]))}; "
            "the Fay-Herriot model takes one row per area (one direct estimate and its variance)"
        )
    areas = pd.Index(labels.to_numpy(), name=area)

    y = _numeric(data, estimate, "estimate")
    psi = _numeric(data, variance, "variance")
    y_missing = np.isnan(y)
    psi_missing = np.isnan(psi)
    observed = ~y_missing
    bad = y_missing & ~psi_missing
    if bad.any():
        raise ModelError(
            f"the estimate {estimate!r} is NaN but its variance {variance!r} is given for areas "
            f"{_areas(areas, bad)}; supply the direct estimates, or set both to NaN for areas "
            "without one (they are then predicted from the covariates and flagged 'synthetic')"
        )
    bad = observed & ~np.isfinite(y)
    if bad.any():
        raise ModelError(f"the estimate {estimate!r} is infinite for areas {_areas(areas, bad)}")
    bad = observed & ~(np.isfinite(psi) & (psi > 0))
    if bad.any():
        raise ModelError(
            f"the sampling variance {variance!r} must be finite and > 0 where there is a direct "
            f"estimate; not so for areas {_areas(areas, bad)} (values "
            f"{[float(v) for v in psi[bad][:_LIST_LIMIT]]}); a zero variance usually means too few "
            "respondents: smooth the variances (e.g. a generalised variance function) or "
            "leave those areas' estimate and variance NaN to predict them from the covariates"
        )

    frame = data.loc[:, list(variables)]
    _check_covariates_present(
        frame, variables, areas, "every area needs its covariates, also an area predicted synthetically"
    )
    fit_frame = frame.loc[observed].reset_index(drop=True)
    try:
        matrix = model_matrix(rhs, fit_frame.copy(), ensure_full_rank=True, na_action="raise")
    except Exception as error:  # formulaic raises several types; name the formula
        raise ModelError(f"could not build the covariates of {formula!r}: {error}") from error
    spec = matrix.model_spec
    terms = tuple(str(c) for c in matrix.columns)
    X_fit = np.asarray(matrix, dtype=np.float64).reshape(len(fit_frame), -1)
    m, p = X_fit.shape
    if m < p + 2:
        raise ModelError(
            f"{m} area(s) with a direct estimate cannot fit {p} fixed effect(s) {list(terms)} and "
            f"the random-effect variance: at least {p + 2} are needed; use fewer covariates"
        )
    if np.linalg.matrix_rank(X_fit) < p:
        raise ModelError(
            f"the covariates {list(terms)} are collinear in the areas with a direct estimate; drop one"
        )
    if observed.all():
        X = X_fit
    else:
        X = covariate_matrix(spec, frame.reset_index(drop=True), variables, areas)
        X[observed] = X_fit

    counts: np.ndarray | None = None
    if n is not None:
        counts = _numeric(data, n, "respondent count (n)")
        bad = ~np.isfinite(counts) | (counts < 0) | (counts != np.round(counts))
        if bad.any():
            raise ModelError(
                f"respondent counts {n!r} must be whole numbers >= 0; not so for areas {_areas(areas, bad)}"
            )
        counts = counts.astype(np.int64)

    for array in (y, psi, X, observed):
        array.setflags(write=False)
    if counts is not None:
        counts.setflags(write=False)
    return AreaData(
        area_col=area,
        areas=areas,
        observed=observed,
        y=y,
        psi=psi,
        X=X,
        terms=terms,
        spec=spec,
        variables=variables,
        rhs=rhs,
        n=counts,
    )


def _check_covariates_present(frame: pd.DataFrame, variables: Sequence[str], labels: Any, why: str) -> None:
    """Refuse areas with a missing covariate, naming the covariates and the areas."""
    if not variables:
        return
    missing = frame[list(variables)].isna().to_numpy().any(axis=1)
    if missing.any():
        bad = [v for v in variables if frame[v].isna().any()]
        raise ModelError(
            f"covariates {bad} are missing for areas {_areas(labels, missing)}; supply them "
            f"({why}); nothing is dropped or imputed"
        )
