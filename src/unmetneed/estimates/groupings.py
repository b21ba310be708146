"""Grouping columns the care models derive from the standard variables.

* ``ethnic_group_5``: the five broad Census 2021 groups of ``ethnic_group``
  (the shipped ``ethnic_group_5`` category map), so the 19 detailed groups are
  nested in their broad groups in the model.
* ``age_band_disability``: ``age_band`` and ``disability`` crossed, for the
  interaction of age and disability in need and help.

A column is added only when its source columns are present and, for the broad
group, when every label is one of the 19 ONS groups; a column already present
is kept as given.

:func:`add_area_covariates` gives respondents the frame's area-level covariates
(float columns constant within each area) by ``area_code``.
"""

from __future__ import annotations

import pandas as pd

from unmetneed._validate import preview
from unmetneed.harmonise import load_map

__all__ = ["GROUPING_SOURCES", "add_area_covariates", "add_grouping_columns", "grouping_columns"]

SEPARATOR = " | "
# The columns add_grouping_columns may add (in the order it adds them) and the columns each is made from.
GROUPING_SOURCES: dict[str, tuple[str, ...]] = {
    "ethnic_group_5": ("ethnic_group",),
    "age_band_disability": ("age_band", "disability"),
}


def grouping_columns() -> tuple[str, ...]:
    """Names of the columns :func:`add_grouping_columns` may add."""
    return tuple(GROUPING_SOURCES)


def add_grouping_columns(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with ``ethnic_group_5`` and ``age_band_disability`` added where derivable.

    Examples
    --------
    >>> import pandas as pd
    >>> from unmetneed.estimates.groupings import add_grouping_columns
    >>> df = pd.DataFrame({"ethnic_group": ["White: Roma"], "age_band": ["85+"],
    ...                    "disability": ["Not disabled"]})
    >>> add_grouping_columns(df)[["ethnic_group_5", "age_band_disability"]].iloc[0].tolist()
    ['White', '85+ | Not disabled']
    """
    new: dict[str, pd.Series] = {}
    if "ethnic_group" in df.columns and "ethnic_group_5" not in df.columns:
        table = load_map("ethnic_group_5").to_frame().dropna()
        broad = dict(zip(table["from"], table["to"], strict=True))
        labels = df["ethnic_group"].astype("object")
        mapped = labels.map(broad)
        if len(df) and mapped.notna().all():
            order = list(dict.fromkeys(table["to"]))
            new["ethnic_group_5"] = pd.Series(pd.Categorical(mapped, categories=order), index=df.index)
    if {"age_band", "disability"} <= set(df.columns) and "age_band_disability" not in df.columns:
        age, disability = df["age_band"], df["disability"]
        if not (age.isna().any() or disability.isna().any()):
            new["age_band_disability"] = age.astype(str) + SEPARATOR + disability.astype(str)
    return df.assign(**new) if new else df


def add_area_covariates(data: pd.DataFrame, cells: pd.DataFrame, count: str = "count") -> pd.DataFrame:
    """The respondents with the frame's area-level covariates they lack, joined by ``area_code``.

    An area-level covariate is a float column of the frame (other than ``count``)
    that takes one value within every area (a census share such as the
    owner-occupied share of households, a deprivation score). Respondents carry
    it from their area, so the default formulas can use it as a fixed effect.

    Raises
    ------
    FrameError
        Respondents in areas the frame does not have (listed), when a covariate
        is to be joined.

    Examples
    --------
    >>> import pandas as pd
    >>> cells = pd.DataFrame({"area_code": ["A", "A", "B"], "owner_occupation": [0.6, 0.6, 0.7],
    ...                       "count": [10, 20, 30]})
    >>> add_area_covariates(pd.DataFrame({"area_code": ["B", "A"]}), cells)
      area_code  owner_occupation
    0         B               0.7
    1         A               0.6
    """
    from unmetneed.errors import FrameError

    if "area_code" not in data.columns or "area_code" not in cells.columns:
        return data
    candidates = [
        c
        for c in cells.columns
        if c != count and c not in data.columns and pd.api.types.is_float_dtype(cells[c])
    ]
    if not candidates:
        return data
    per_area = cells.groupby("area_code", observed=True)
    distinct = per_area[candidates].nunique(dropna=False)
    constant = [c for c in candidates if bool((distinct[c] <= 1).all())]
    if not constant:
        return data
    values = per_area[constant].first()
    values.index = values.index.astype(str)
    areas = data["area_code"].astype(str)
    unknown = sorted(set(areas) - set(values.index))
    if unknown:
        raise FrameError(
            f"respondents in areas the frame does not have: {preview(unknown, 8)}; the frame's "
            f"area-level covariates {constant} cannot be joined to them (use the frame's area codes)"
        )
    out = data.copy()
    for column in constant:
        out[column] = values[column].reindex(areas.to_numpy()).to_numpy()
    return out
