"""Compare area totals of two tables that should agree."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from unmetneed._validate import preview
from unmetneed.errors import MarginsError, MissingColumnError

__all__ = ["STATUSES", "check_consistency"]

STATUSES = ("equal", "within_tolerance", "exceeds_tolerance", "missing_in_a", "missing_in_b")


def _area_totals(table: pd.DataFrame | pd.Series, name: str) -> tuple[pd.Series, pd.Series]:
    """Total count per area (in first-appearance order) and area names."""
    if isinstance(table, pd.Series):
        if table.index.has_duplicates:
            raise MarginsError(
                f"{name}: the Series index repeats area codes "
                f"{preview(list(table.index[table.index.duplicated()]))}"
            )
        totals = pd.to_numeric(table, errors="coerce")
        totals.index = totals.index.astype(str)
        names = pd.Series(np.nan, index=totals.index, dtype=object)
    elif isinstance(table, pd.DataFrame):
        missing = [c for c in ("area_code", "count") if c not in table.columns]
        if missing:
            raise MissingColumnError(
                f"{name}: columns {missing} not found; give a tidy table with 'area_code' "
                f"and 'count' (as read_census_table returns) or a Series of totals indexed "
                f"by area code; columns seen {preview(list(table.columns), 20)}"
            )
        codes = table["area_code"].astype(str)
        totals = (
            pd.to_numeric(table["count"], errors="coerce")
            .groupby(codes.to_numpy(), sort=False)
            .sum(min_count=1)
        )
        if "area_name" in table.columns:
            names = table["area_name"].groupby(codes.to_numpy(), sort=False).first()
        else:
            names = pd.Series(np.nan, index=totals.index, dtype=object)
    else:
        raise MarginsError(f"{name} must be a DataFrame or Series, got {type(table).__name__}")
    bad = totals[totals.isna()]
    if len(bad):
        raise MarginsError(f"{name}: areas with missing or non-numeric counts: {preview(list(bad.index))}")
    return totals, names


def check_consistency(
    table_a: pd.DataFrame | pd.Series,
    table_b: pd.DataFrame | pd.Series,
    *,
    tolerance: float = 1e-3,
) -> pd.DataFrame:
    """Compare the area totals of two tables that should agree, area by area.

    Census 2021 tables are perturbed independently (cell-key perturbation), so
    the same population differs slightly between tables (Hartlepool is 92,334
    in TS007 and 92,338 in TS038), and a county's total differs slightly from
    the sum of its districts. This reports every difference; it hides none.

    Parameters
    ----------
    table_a, table_b : pandas.DataFrame or pandas.Series
        Tidy tables with ``area_code`` and ``count`` (summed per area, so pass
        one level of one table, as :func:`unmetneed.io.read_census_table`
        returns), or Series of totals indexed by area code.
    tolerance : float, default 1e-3
        Relative difference :math:`|b - a| / a` up to which areas are
        ``within_tolerance`` (0 flags any difference).

    Returns
    -------
    pandas.DataFrame
        One row per area in either table (``table_a``'s order, then areas only
        in ``table_b``): ``area_code``, ``area_name``, ``total_a``,
        ``total_b``, ``difference`` (b - a), ``relative_difference``
        (difference / total_a) and ``status``: ``equal``,
        ``within_tolerance``, ``exceeds_tolerance``, ``missing_in_a`` or
        ``missing_in_b``. ``attrs`` summarises: ``tolerance``, ``n_areas``,
        the number per status, and ``max_abs_difference``.

    Raises
    ------
    MissingColumnError
        A frame lacks ``area_code`` or ``count``.
    MarginsError
        Non-numeric counts, repeated areas in a Series, or a negative or
        non-finite tolerance.

    Examples
    --------
    >>> import pandas as pd
    >>> from unmetneed.harmonise import check_consistency
    >>> a = pd.Series({"E06000001": 92334, "E06000002": 143922})
    >>> b = pd.Series({"E06000001": 92338})
    >>> check_consistency(a, b)[["area_code", "difference", "status"]]
       area_code  difference            status
    0  E06000001         4.0  within_tolerance
    1  E06000002         NaN      missing_in_b
    """
    if not isinstance(tolerance, (int, float)) or not math.isfinite(tolerance) or tolerance < 0:
        raise MarginsError(f"tolerance must be a finite number >= 0, got {tolerance!r}")
    totals_a, names_a = _area_totals(table_a, "table_a")
    totals_b, names_b = _area_totals(table_b, "table_b")
    areas = list(dict.fromkeys([*totals_a.index, *totals_b.index]))
    total_a = totals_a.reindex(areas).astype(float)
    total_b = totals_b.reindex(areas).astype(float)
    names = names_a.reindex(areas).astype(object).fillna(names_b.reindex(areas).astype(object))
    difference = total_b - total_a
    with np.errstate(divide="ignore", invalid="ignore"):
        relative = difference / total_a
    relative[(difference == 0)] = 0.0
    status = np.select(
        [total_a.isna(), total_b.isna(), difference == 0, relative.abs() <= tolerance],
        ["missing_in_a", "missing_in_b", "equal", "within_tolerance"],
        default="exceeds_tolerance",
    )
    out = pd.DataFrame(
        {
            "area_code": pd.array(areas, dtype="str"),
            "area_name": pd.array(names.to_numpy(dtype=object), dtype="str"),
            "total_a": total_a.to_numpy(),
            "total_b": total_b.to_numpy(),
            "difference": difference.to_numpy(),
            "relative_difference": relative.to_numpy(),
            "status": pd.Categorical(status, categories=STATUSES),
        }
    )
    counts = out["status"].value_counts()
    out.attrs = {
        "tolerance": float(tolerance),
        "n_areas": len(out),
        **{f"n_{s}": int(counts.get(s, 0)) for s in STATUSES},
        "max_abs_difference": float(np.nanmax(np.abs(out["difference"])))
        if out["difference"].notna().any()
        else float("nan"),
    }
    return out
