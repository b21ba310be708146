"""Apply a category map to a column of labels or a table of counts."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import overload

import numpy as np
import pandas as pd

from unmetneed._validate import preview
from unmetneed.errors import MarginsError, MissingColumnError
from unmetneed.harmonise.category_map import CategoryMap, as_category_map

__all__ = ["harmonise"]

MapLike = str | CategoryMap | Mapping[object, object] | pd.Series


@dataclass(frozen=True)
class _Recoded:
    values: pd.Series  # the mapped column
    codes: np.ndarray  # per row: index into targets, -1 = missing or excluded
    targets: list[str]
    excluded_rows: np.ndarray  # per row: its category was excluded on purpose
    excluded_counts: dict[str, int | None]


def _refuse(
    category_map: CategoryMap, column: str, unmapped: list[object], counts: Mapping[object, int] | None
) -> None:
    if counts is not None:
        shown = [f"{v!r} ({counts[v]:,} counted)" for v in unmapped[:10]]
    else:
        shown = [repr(v) for v in unmapped[:10]]
    more = f", ... ({len(unmapped) - 10} more)" if len(unmapped) > 10 else ""
    hint = (
        "; they straddle or fall outside the bands, so read the table at a finer level "
        "(read_census_table(level='detailed')) or map them yourself"
        if category_map.kind == "intervals"
        else "; add them to the mapping (a None target excludes a category on purpose)"
    )
    noun = "category has" if len(unmapped) == 1 else "categories have"
    raise MarginsError(
        f"column {column!r}: {len(unmapped)} {noun} no mapping in map "
        f"{category_map.name!r}: [{', '.join(shown)}{more}]{hint}"
    )


def _recode(values: pd.Series, category_map: CategoryMap, column: str, count: np.ndarray | None) -> _Recoded:
    """Map the distinct values once, then every row through integer codes."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        # every declared category is mapped, also unused ones: never dropped silently
        codes = values.cat.codes.to_numpy().astype(np.intp)
        uniques = list(values.cat.categories)
    else:
        codes, found = pd.factorize(values, use_na_sentinel=True)
        uniques = list(found)
    present = codes >= 0
    sums = None
    if count is not None:
        totals = np.bincount(
            codes[present], weights=count[present].astype(np.float64), minlength=len(uniques)
        )
        sums = {u: round(float(t)) for u, t in zip(uniques, totals)}
    lookup, unmapped = category_map.lookup(uniques)
    if unmapped:
        _refuse(category_map, column, unmapped, sums)
    targets = list(category_map.target_categories)
    targets += [t for t in dict.fromkeys(lookup.values()) if t is not None and t not in targets]
    position = {t: i for i, t in enumerate(targets)}
    table = np.array(
        [-1 if target is None else position[target] for target in (lookup[u] for u in uniques)],
        dtype=np.intp,
    )
    new = np.full(len(codes), -1, dtype=np.intp)
    new[present] = table[codes[present]]
    mapped: pd.api.extensions.ExtensionArray
    if category_map.categorical:
        mapped = pd.Categorical.from_codes(new, dtype=pd.CategoricalDtype(targets, ordered=True))
    else:
        mapped = pd.array(targets, dtype="str").take(new, allow_fill=True)
    excluded = [u for u in uniques if lookup[u] is None]
    return _Recoded(
        values=pd.Series(mapped, index=values.index, name=values.name),
        codes=new,
        targets=targets,
        excluded_rows=present & (new < 0),
        excluded_counts={str(u): (sums[u] if sums is not None else None) for u in excluded},
    )


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
def harmonise(
    data: pd.Series, mapping: MapLike, *, column: str | None = None, aggregate: bool = True
) -> pd.Series: ...
@overload
def harmonise(
    data: pd.DataFrame, mapping: MapLike, *, column: str | None = None, aggregate: bool = True
) -> pd.DataFrame: ...


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
        recoded = _recode(data, category_map, name, None)
        result = recoded.values  # _recode's own new Series
        result.name = category_map.target or data.name
        result.attrs = {
            **data.attrs,
            "harmonise": _history(data.attrs, category_map, name, recoded.excluded_counts),
        }
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
            f"the frame already has a {target!r} column; drop it or map {column!r} with a dict to keep both"
        )
    if aggregate and "count" not in data.columns:
        raise MissingColumnError(
            "aggregate=True sums the 'count' column, which the frame does not have; pass "
            "aggregate=False to relabel rows (survey microdata)"
        )
    count = None
    if "count" in data.columns:
        count = pd.to_numeric(data["count"], errors="coerce").to_numpy(dtype=np.float64)
        if aggregate and not np.isfinite(count).all():
            raise MarginsError(
                "column 'count' has missing or non-numeric values on rows "
                f"{preview(np.flatnonzero(~np.isfinite(count)).tolist())}"
            )
    recoded = _recode(data[column], category_map, column, count)

    position = list(data.columns).index(column)
    out = data.drop(columns=column)
    out.insert(position, target, recoded.values)
    if category_map.target_names and target == "area_code" and "area_name" in out.columns:
        names = [category_map.target_names.get(t) for t in recoded.targets]
        out["area_name"] = pd.array(names, dtype="str").take(recoded.codes, allow_fill=True)

    if aggregate:
        # excluded categories leave the table (their counts are recorded in attrs);
        # rows that were already missing stay, as their own group
        out = out.loc[~recoded.excluded_rows]
        keys = [c for c in out.columns if c != "count"]
        out = (
            out.groupby(keys, sort=False, dropna=False, observed=True)["count"]
            .sum()
            .reset_index()[list(out.columns)]
        )
    out.attrs = {
        **data.attrs,
        "harmonise": _history(data.attrs, category_map, column, recoded.excluded_counts),
    }
    return out


def _history(
    attrs: Mapping[Hashable | None, object],
    category_map: CategoryMap,
    column: str,
    excluded_counts: Mapping[str, int | None],
) -> list[dict[str, object]]:
    previous = attrs.get("harmonise", [])
    history = list(previous) if isinstance(previous, list) else []
    history.append(
        {
            "map": category_map.name,
            "column": column,
            "target": category_map.target or column,
            "excluded": dict(excluded_counts),
        }
    )
    return history
