"""Apply a category map to a column of labels or a table of counts."""

from __future__ import annotations

from collections.abc import Mapping
from typing import overload

import pandas as pd

from unmetneed.errors import MarginsError, MissingColumnError
from unmetneed.harmonise.category_map import CategoryMap, as_category_map
from unmetneed.io._common import preview

__all__ = ["harmonise"]

MapLike = str | CategoryMap | Mapping[object, object] | pd.Series


def _declared_values(values: pd.Series) -> list[object]:
    """Values to map: every declared category of a Categorical (also unused
    ones, never dropped silently), else the distinct non-missing values."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        return list(values.cat.categories)
    return list(pd.unique(values.dropna()))


def _refuse(category_map: CategoryMap, column: str, unmapped: list[object],
            counts: pd.Series | None) -> None:
    if counts is not None:
        shown = [f"{v!r} ({int(counts.get(v, 0)):,} counted)" for v in unmapped[:10]]
    else:
        shown = [repr(v) for v in unmapped[:10]]
    more = f", ... ({len(unmapped) - 10} more)" if len(unmapped) > 10 else ""
    hint = (
        "; they straddle or fall outside the bands, so read the table at a finer level "
        "(read_census_table(level='detailed')) or map them yourself"
        if category_map.kind == "intervals"
        else "; add them to the mapping (a None target excludes a category on purpose)"
    )
    raise MarginsError(
        f"column {column!r}: {len(unmapped)} categor{'y has' if len(unmapped) == 1 else 'ies have'} "
        f"no mapping in map {category_map.name!r}: [{', '.join(shown)}{more}]{hint}"
    )


def _mapped(values: pd.Series, category_map: CategoryMap, column: str,
            counts: pd.Series | None) -> tuple[pd.Series, dict[object, str | None]]:
    lookup, unmapped = category_map.lookup(_declared_values(values))
    if unmapped:
        _refuse(category_map, column, unmapped, counts)
    plain = values.astype(object) if isinstance(values.dtype, pd.CategoricalDtype) else values
    result = plain.map(lookup)
    if category_map.categorical:
        targets = list(category_map.target_categories)
        extra = [t for t in dict.fromkeys(lookup.values()) if t is not None and t not in targets]
        result = pd.Series(
            pd.Categorical(result.to_numpy(dtype=object), categories=targets + extra,
                           ordered=True),
            index=values.index,
        )
    else:
        result = pd.Series(pd.array(result.to_numpy(dtype=object), dtype="str"),
                           index=values.index)
    return result, lookup


def _default_column(frame: pd.DataFrame, category_map: CategoryMap) -> str:
    for candidate in (category_map.source, category_map.target):
        if candidate is not None and candidate in frame.columns:
            return candidate
    if category_map.source is None:
        raise MissingColumnError(
            "harmonise needs column= to know which column to map with a custom mapping; "
            f"the frame has {preview(list(frame.columns), 20)}"
        )
    raise MissingColumnError(
        f"map {category_map.name!r} applies to column {category_map.source!r}, which the "
        f"frame does not have ({preview(list(frame.columns), 20)}); pass column="
    )


@overload
def harmonise(data: pd.Series, mapping: MapLike, *, column: str | None = None,
              aggregate: bool = True) -> pd.Series: ...
@overload
def harmonise(data: pd.DataFrame, mapping: MapLike, *, column: str | None = None,
              aggregate: bool = True) -> pd.DataFrame: ...


def harmonise(
    data: pd.DataFrame | pd.Series,
    mapping: MapLike,
    *,
    column: str | None = None,
    aggregate: bool = True,
) -> pd.DataFrame | pd.Series:
    """Recode categories with a map, summing counts over merged categories.

    Parameters
    ----------
    data : pandas.DataFrame or pandas.Series
        A tidy table with a ``count`` column (as :func:`unmetneed.io.read_census_table`
        returns), any frame of labels (survey microdata) or a Series of labels.
    mapping : str, CategoryMap, dict or pandas.Series
        The name of a shipped map (see :func:`list_maps`: ``"age_band"``,
        ``"ethnic_group"``, ``"ethnic_group_5"``, ``"disability"``,
        ``"upper_tier_2021"``), a :class:`CategoryMap`, or ``{source: target}``
        (a None target excludes that category on purpose).
    column : str, optional
        Column of a DataFrame to map. Default: the map's source column
        (``age`` for ``age_band``, ``area_code`` for ``upper_tier_2021``, ...);
        required for a dict mapping.
    aggregate : bool, default True
        For a DataFrame: sum ``count`` over rows that map to the same target,
        grouping by every other column (select the columns you need first).
        False relabels row by row (survey microdata). Ignored for a Series,
        which is always relabelled element-wise.

    Returns
    -------
    pandas.DataFrame or pandas.Series
        The mapped column is renamed to the map's target (``age`` -> ``age_band``;
        unchanged for dict maps) and holds an ordered Categorical in the
        target order (area codes stay strings; ``area_name`` is replaced by the
        target areas' names). Deliberately excluded categories (under-18s for
        ``age_band``, "Does not apply") are removed from aggregated tables, or
        become missing when relabelling; what was excluded, with the counts,
        is in ``attrs["harmonise"]``.

    Raises
    ------
    MarginsError
        A category (also an unused category of a Categorical) has no mapping;
        the message names the categories and their counts.
    MissingColumnError
        The column to map (or ``count`` when aggregating) is absent.

    Examples
    --------
    >>> import pandas as pd
    >>> from unmetneed.harmonise import harmonise
    >>> table = pd.DataFrame({"area_code": ["E06000001"] * 3,
    ...                       "age": ["Aged 17 years", "Aged 18 years", "Aged 19 years"],
    ...                       "count": [10, 20, 30]})
    >>> harmonise(table, "age_band")
       area_code age_band  count
    0  E06000001    18-24     50
    >>> harmonise(pd.Series([30, 47, 90]), "age_band").tolist()
    ['25-34', '45-54', '85+']
    """
    category_map = as_category_map(mapping)
    if not isinstance(aggregate, bool):
        raise MarginsError(f"aggregate must be True or False, got {aggregate!r}")
    if isinstance(data, pd.Series):
        name = str(data.name) if data.name is not None else "values"
        result, lookup = _mapped(data, category_map, name, None)
        excluded = [k for k, v in lookup.items() if v is None]
        result.name = category_map.target or data.name
        result.attrs = {**data.attrs, "harmonise": _history(
            data.attrs, category_map, name, excluded_counts=dict.fromkeys(excluded))}
        return result
    if not isinstance(data, pd.DataFrame):
        raise MarginsError(f"harmonise needs a DataFrame or Series, got {type(data).__name__}")

    column = column if column is not None else _default_column(data, category_map)
    if column not in data.columns:
        raise MissingColumnError(
            f"column {column!r} not found; the frame has {preview(list(data.columns), 20)}"
        )
    target = category_map.target or column
    if target != column and target in data.columns:
        raise MarginsError(
            f"the frame already has a {target!r} column; drop it or map {column!r} with a "
            "dict to keep both"
        )
    if aggregate and "count" not in data.columns:
        raise MissingColumnError(
            "aggregate=True sums the 'count' column, which the frame does not have; pass "
            "aggregate=False to relabel rows (survey microdata)"
        )
    counts = (
        data.groupby(data[column].astype(object), dropna=True)["count"].sum()
        if "count" in data.columns else None
    )
    mapped, lookup = _mapped(data[column], category_map, column, counts)
    excluded = [k for k, v in lookup.items() if v is None]
    excluded_counts = (
        {k: int(counts.get(k, 0)) for k in excluded} if counts is not None
        else dict.fromkeys(excluded)
    )

    out = data.copy()
    position = list(data.columns).index(column)
    out = out.drop(columns=column)
    out.insert(position, target, mapped)
    if category_map.target_names and target == "area_code" and "area_name" in out.columns:
        names = mapped.astype(object).map(dict(category_map.target_names))
        out["area_name"] = pd.array(names.to_numpy(dtype=object), dtype="str")

    if aggregate:
        # excluded categories leave the table (their counts are recorded below);
        # rows that were already missing stay, as their own group
        out = out.loc[~data[column].isin(excluded).to_numpy()]
        keys = [c for c in out.columns if c != "count"]
        out = (
            out.groupby(keys, sort=False, dropna=False, observed=True)["count"]
            .sum()
            .reset_index()[list(out.columns)]
        )
    out.attrs = {**data.attrs, "harmonise": _history(data.attrs, category_map, column,
                                                     excluded_counts)}
    return out


def _history(attrs: Mapping[str, object], category_map: CategoryMap, column: str,
             excluded_counts: Mapping[object, int | None]) -> list[dict[str, object]]:
    previous = attrs.get("harmonise", [])
    history = list(previous) if isinstance(previous, list) else []
    history.append({
        "map": category_map.name,
        "column": column,
        "target": category_map.target or column,
        "excluded": {str(k): v for k, v in excluded_counts.items()},
    })
    return history

