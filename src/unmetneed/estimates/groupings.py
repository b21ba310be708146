"""Grouping columns the care models derive from the standard variables.

* ``ethnic_group_5``: the five broad Census 2021 groups of ``ethnic_group``
  (the shipped ``ethnic_group_5`` category map), so the 19 detailed groups are
  nested in their broad groups in the model.
* ``age_band_disability``: ``age_band`` and ``disability`` crossed, for the
  interaction of age and disability in need and help.

A column is added only when its source columns are present and, for the broad
group, when every label is one of the 19 ONS groups; a column already present
is kept as given.
"""

from __future__ import annotations

import pandas as pd

from unmetneed.harmonise import load_map

__all__ = ["add_grouping_columns", "grouping_columns"]

SEPARATOR = " | "


def grouping_columns() -> tuple[str, ...]:
    """Names of the columns :func:`add_grouping_columns` may add."""
    return ("ethnic_group_5", "age_band_disability")


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
            new["ethnic_group_5"] = pd.Series(pd.Categorical(mapped, categories=order),
                                              index=df.index)
    if {"age_band", "disability"} <= set(df.columns) and "age_band_disability" not in df.columns:
        age, disability = df["age_band"], df["disability"]
        if not (age.isna().any() or disability.isna().any()):
            new["age_band_disability"] = age.astype(str) + SEPARATOR + disability.astype(str)
    return df.assign(**new) if new else df
