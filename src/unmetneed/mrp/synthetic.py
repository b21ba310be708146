"""Synthetic poststratification frames: rake a seed joint table to census margins."""

from __future__ import annotations

from typing import cast

import numpy as np
import pandas as pd

from unmetneed._validate import require_columns
from unmetneed.design import SurveyDesign
from unmetneed.errors import FrameError
from unmetneed.margins import Margins
from unmetneed.mrp.frame import PopulationFrame

__all__ = ["synthetic_frame"]


def synthetic_frame(
    seed_cells: pd.DataFrame,
    margins: Margins,
    *,
    area: str = "area_code",
    count: str = "count",
    tol: float = 1e-10,
    max_iter: int = 1000,
) -> PopulationFrame:
    r"""Joint cells by area from a seed table and each area's census margins.

    When the census publishes only margins (area by one or two
    characteristics), the joint distribution within each area is taken from
    a seed table — national, or the area's own where known — and raked to the
    area's margins (Leemann & Wasserfallen 2017), with the project's
    :func:`~unmetneed.rake` over all areas at once.

    Parameters
    ----------
    seed_cells : DataFrame
        Joint cells with a ``count`` column; without an ``area`` column the
        seed is used for every area found in the margins.
    margins : Margins
        Crosses of ``area`` with characteristics, e.g. built with
        ``Margins.from_frame(census_age, variable="age_band", by="area_code")``.
    area, count : str
        Column names.
    tol, max_iter
        As :func:`~unmetneed.rake`.

    Returns
    -------
    PopulationFrame
        One row per area and seed cell, counts meeting every margin.

    Notes
    -----
    Raking keeps the seed's interactions (odds ratios) and changes only what
    the margins fix: :math:`N_{a,c} = s_c \prod_m \alpha_{a, m, k_m(c)}`.
    Seed cells with zero count stay zero.

    References
    ----------
    Leemann, L. & Wasserfallen, F. (2017). Extending the use and prediction
    precision of subnational public opinion estimation. *AJPS* 61, 1003-1022.

    Examples
    --------
    >>> import pandas as pd, unmetneed as um
    >>> seed = pd.DataFrame({"sex": ["Female", "Female", "Male", "Male"],
    ...                      "age_band": ["18-64", "65+", "18-64", "65+"],
    ...                      "count": [30.0, 10.0, 32.0, 8.0]})
    >>> m = um.Margins({
    ...     ("area_code", "sex"): pd.Series({("A", "Female"): 520.0, ("A", "Male"): 480.0,
    ...                                      ("B", "Female"): 260.0, ("B", "Male"): 240.0}),
    ...     ("area_code", "age_band"): pd.Series({("A", "18-64"): 800.0, ("A", "65+"): 200.0,
    ...                                           ("B", "18-64"): 350.0, ("B", "65+"): 150.0})})
    >>> frame = um.synthetic_frame(seed, m)
    >>> frame.totals("area_code").round(6).tolist()
    [1000.0, 500.0]
    """
    if not isinstance(seed_cells, pd.DataFrame):
        raise FrameError("seed_cells must be a DataFrame of joint cells with a count column")
    require_columns(seed_cells, [count], "count")
    margins = Margins(margins)
    for key in margins.categorical_keys:
        if area not in Margins.variables_of(key):
            raise FrameError(
                f"margin {key!r} is not by {area!r}; synthetic frames rake each area to its own "
                f"margins, so every margin must cross {area!r} (use Margins.from_frame(..., by={area!r}))"
            )
    if margins.numeric_keys:
        raise FrameError("synthetic_frame takes categorical margins only")
    if area in seed_cells.columns:
        cells = seed_cells.copy()
    else:
        areas = pd.unique(
            np.concatenate(
                [
                    # the categorical keys are those whose totals are a Series
                    cast(pd.Series, margins[k]).index.get_level_values(area).to_numpy()
                    for k in margins.categorical_keys
                ]
            )
        )
        cells = seed_cells.merge(pd.DataFrame({area: areas}), how="cross")
        cells = cells[[area, *[c for c in seed_cells.columns]]]
    seed = pd.to_numeric(cells[count], errors="coerce")
    if seed.isna().any() or (seed < 0).any():
        raise FrameError(f"seed counts in {count!r} must be non-negative numbers")
    cells = cells.reset_index(drop=True)
    cells["_seed_weight"] = seed.to_numpy(dtype=np.float64)
    from unmetneed.weighting import rake

    design = SurveyDesign(cells, weights="_seed_weight")
    result = rake(design, margins, tol=tol, max_iter=max_iter)
    out = cells.drop(columns=["_seed_weight"])
    out[count] = result.design.weights
    frame = PopulationFrame(out, count=count)
    frame.attrs["raking"] = result.report
    return frame
