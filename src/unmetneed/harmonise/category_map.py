"""Category maps: shipped data files (``maps/``) or the caller's own dictionaries."""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache, lru_cache
from importlib import resources
from importlib.resources.abc import Traversable
from numbers import Real
from types import MappingProxyType
from typing import Literal, TypedDict, cast

import pandas as pd

from unmetneed.errors import MarginsError, MissingColumnError
from unmetneed.io import parse_interval

__all__ = ["EXCLUDED", "CategoryMap", "categories", "list_maps", "load_map"]

#: Target of a category that is deliberately left out (e.g. "Does not apply").
EXCLUDED = None

_NO_MAPPING = object()


def _maps_folder() -> Traversable:
    return resources.files("unmetneed.harmonise").joinpath("maps")


@lru_cache(maxsize=1)
def _index() -> dict[str, dict[str, object]]:
    with _maps_folder().joinpath("index.toml").open("rb") as handle:
        return tomllib.load(handle)


def _read_map_file(name: str) -> pd.DataFrame:
    with _maps_folder().joinpath(name).open("r", encoding="utf-8") as handle:
        return pd.read_csv(handle, dtype=str, keep_default_na=False)


@dataclass(frozen=True)
class CategoryMap:
    """A map from source categories to target categories.

    Build one with :func:`load_map` (shipped maps) or :meth:`from_mapping`
    (a dict or Series); :func:`~unmetneed.harmonise.harmonise` accepts either.

    Attributes
    ----------
    name : str
        Map name (``"custom"`` for the caller's own).
    kind : {'labels', 'intervals'}
        ``labels``: exact label lookup in ``pairs``. ``intervals``: numbers or
        range labels placed in ``bands``.
    pairs : dict
        Source label -> target label, or None when deliberately excluded.
    bands : tuple of (target or None, lo, hi)
        Closed intervals for ``intervals`` maps (``hi`` may be ``inf``).
    target_categories : tuple of str
        Target categories in order.
    source, target : str or None
        Default column to map and the name of the mapped column (None: same).
    target_names : dict
        Target code -> name (area maps, used to fill ``area_name``).
    categorical : bool
        Whether mapped values become an ordered Categorical.
    description : str
    """

    name: str
    kind: Literal["labels", "intervals"]
    pairs: Mapping[str, str | None] = field(default_factory=dict)
    bands: tuple[tuple[str | None, float, float], ...] = ()
    target_categories: tuple[str, ...] = ()
    source: str | None = None
    target: str | None = None
    target_names: Mapping[str, str] = field(default_factory=dict)
    categorical: bool = True
    description: str = ""

    @classmethod
    def from_mapping(cls, mapping: Mapping[object, object] | pd.Series, name: str = "custom") -> CategoryMap:
        """A labels map from ``{source: target}``; a None/NaN target excludes.

        Target order is the order targets first appear, or the library's
        standard order when they are exactly one standard variable's categories.

        Examples
        --------
        >>> m = CategoryMap.from_mapping({"F": "Female", "M": "Male", "X": None})
        >>> m.target_categories
        ('Female', 'Male')
        """
        items = mapping.items() if isinstance(mapping, (Mapping, pd.Series)) else None
        if items is None:
            raise MarginsError(
                f"mapping must be a shipped map's name, a CategoryMap, a dict or a Series; "
                f"got {type(mapping).__name__}"
            )
        pairs: dict[str, str | None] = {}
        for key, value in items:
            missing = value is None or (isinstance(value, float) and math.isnan(value))
            pairs[str(key)] = None if missing else str(value)
        targets = list(dict.fromkeys(v for v in pairs.values() if v is not None))
        standard = _standard_order(targets)
        return cls(
            name=name,
            kind="labels",
            pairs=MappingProxyType(pairs),
            target_categories=tuple(standard or targets),
        )

    def lookup(self, values: Sequence[object]) -> tuple[dict[object, str | None], list[object]]:
        """Targets of ``values`` (None = excluded) and the values with no mapping.

        Examples
        --------
        >>> load_map("age_band").lookup(["Aged 30 years", 17, "Aged 16 to 19 years"])
        ({'Aged 30 years': '25-34', 17: None}, ['Aged 16 to 19 years'])
        """
        found: dict[object, str | None] = {}
        unmapped: list[object] = []
        for value in values:
            target = self._target(value)
            if target is _NO_MAPPING:
                unmapped.append(value)
            else:
                # anything but the sentinel is a target: a category name or None (excluded)
                found[value] = cast("str | None", target)
        return found, unmapped

    def _target(self, value: object) -> object:
        if self.kind == "labels":
            return self.pairs.get(str(value), _NO_MAPPING)
        if isinstance(value, Real) and not isinstance(value, bool):
            number = float(value)
            for target, lo, hi in self.bands:
                # integer bands [lo, hi] hold every age from lo up to (not incl.) hi + 1
                if lo <= number < hi + 1:
                    return target
            return _NO_MAPPING
        interval = parse_interval(value)
        if interval is None:
            return _NO_MAPPING
        for target, lo, hi in self.bands:
            if lo <= interval[0] and interval[1] <= hi:
                return target
        return _NO_MAPPING

    def to_frame(self) -> pd.DataFrame:
        """The map as a table (``from``, ``to``; ``lo``, ``hi`` for interval maps).

        Examples
        --------
        >>> load_map("disability").to_frame().shape[1]
        2
        """
        if self.kind == "intervals":
            return pd.DataFrame(self.bands, columns=["to", "lo", "hi"])
        return pd.DataFrame({"from": list(self.pairs), "to": list(self.pairs.values())})


@lru_cache(maxsize=1)
def _standard_categories() -> dict[str, tuple[str, ...]]:
    table = _read_map_file("categories.csv")
    # _read_map_file reads every column as str
    return {str(v): tuple(g["category"]) for v, g in table.groupby("variable", sort=False)}


def _standard_order(targets: Sequence[str]) -> list[str] | None:
    for ordered in _standard_categories().values():
        if set(targets) == set(ordered):
            return list(ordered)
    return None


def categories(variable: str) -> list[str]:
    """The library's standard categories of ``variable``, in order.

    Parameters
    ----------
    variable : str
        One of ``age_band``, ``sex``, ``ethnic_group`` (19 detailed Census 2021
        groups, ONS labels), ``ethnic_group_5``, ``disability``,
        ``unpaid_care`` (Census 2021 TS039 detailed categories).

    Returns
    -------
    list of str

    Raises
    ------
    MissingColumnError
        Unknown variable (the message lists the known ones).

    Examples
    --------
    >>> categories("age_band")[-1]
    '85+'
    >>> len(categories("ethnic_group"))
    19
    """
    known = _standard_categories()
    if variable not in known:
        raise MissingColumnError(f"no standard categories for {variable!r}; known variables: {sorted(known)}")
    return list(known[variable])


class _MapInfo(TypedDict):
    """What every shipped map's entry in index.toml says besides its table."""

    name: str
    source: str | None
    target: str | None
    categorical: bool
    description: str


@cache
def load_map(name: str) -> CategoryMap:
    """A category map shipped with the package.

    Parameters
    ----------
    name : str
        One of the names :func:`list_maps` shows: ``age_band``,
        ``ethnic_group``, ``ethnic_group_5``, ``disability``,
        ``upper_tier_2021``.

    Returns
    -------
    CategoryMap

    Raises
    ------
    MissingColumnError
        Unknown map name (the message lists the shipped ones).

    Examples
    --------
    >>> m = load_map("upper_tier_2021")
    >>> m.pairs["E07000026"], m.target_names["E10000006"]
    ('E10000006', 'Cumbria')
    """
    index = _index()
    if name not in index:
        raise MissingColumnError(f"no shipped map named {name!r}; shipped maps: {sorted(index)}")
    spec = index[name]
    table = _read_map_file(str(spec["file"]))
    to = str(spec["to"])
    order = spec.get("categories")
    common: _MapInfo = {
        "name": name,
        # index.toml gives these as strings, or leaves them out
        "source": cast("str | None", spec.get("source")),
        "target": cast("str | None", spec.get("target")),
        "categorical": bool(spec.get("categorical", True)),
        "description": str(spec.get("description", "")),
    }
    if spec["kind"] == "intervals":
        bands = tuple(
            (target or None, float(lo), math.inf if hi == "" else float(hi))
            for target, lo, hi in zip(table[to], table["lo"], table["hi"])
        )
        targets = [b[0] for b in bands if b[0] is not None]
        return CategoryMap(
            kind="intervals",
            bands=bands,
            target_categories=tuple(categories(str(order)) if order else targets),
            **common,
        )
    source_col = str(spec["from"])
    pairs = {f: (t or None) for f, t in zip(table[source_col], table[to])}
    names: dict[str, str] = {}
    if "to_name" in spec:
        names = dict(zip(table[to], table[str(spec["to_name"])]))
    targets = list(dict.fromkeys(t for t in pairs.values() if t is not None))
    if order:
        targets = categories(str(order))
    return CategoryMap(
        kind="labels",
        pairs=MappingProxyType(pairs),
        target_categories=tuple(targets),
        target_names=MappingProxyType(names),
        **common,
    )


def list_maps() -> pd.DataFrame:
    """The category maps shipped with the package.

    Returns
    -------
    pandas.DataFrame
        One row per map: ``name``, ``kind``, ``source`` (column mapped by
        default), ``target`` (mapped column's name), ``n_targets`` and
        ``description``.

    Examples
    --------
    >>> "age_band" in list_maps()["name"].tolist()
    True
    """
    rows = []
    for name in _index():
        m = load_map(name)
        rows.append(
            {
                "name": name,
                "kind": m.kind,
                "source": m.source,
                "target": m.target,
                "n_targets": len(m.target_categories)
                if m.categorical
                else len(set(m.pairs.values()) - {None}),
                "description": m.description,
            }
        )
    return pd.DataFrame(rows)


def as_category_map(mapping: str | CategoryMap | Mapping[object, object] | pd.Series) -> CategoryMap:
    """Resolve ``harmonise``'s ``mapping`` argument."""
    if isinstance(mapping, CategoryMap):
        return mapping
    if isinstance(mapping, str):
        return load_map(mapping)
    return CategoryMap.from_mapping(mapping)
