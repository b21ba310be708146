"""Category hierarchies of published census tables.

Published tables mix a total, subtotals and detailed categories. A category is a
*parent* when it is the union of others, recognised in two ways:

* by its label's path: ``"White"`` is the parent of ``"White: Irish"`` (Nomis
  bulk headers for TS021 and TS038 write the hierarchy this way);
* by interval: ``"Aged 4 years and under"`` ([0, 4]) is the union of the
  contiguous run ``"Aged under 1 year"`` … ``"Aged 4 years"``.

The total (``Total``, ``Total: All usual residents``, ``All persons``) is the
parent of every category that has no other parent. A category whose interval
contains others that do not tile it exactly, or two categories that overlap
without one containing the other, make the table ambiguous: it could be double
counted, so it is refused.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Literal, get_args

import numpy as np
import pandas as pd

from unmetneed.errors import ReadError
from unmetneed.io._common import preview
from unmetneed.io._labels import is_total_label, parse_interval

__all__ = ["LEVELS", "Hierarchy", "Level", "build_hierarchy"]

Level = Literal["detailed", "bands", "total"]
LEVELS: tuple[str, ...] = get_args(Level)
COMPUTED_TOTAL = "Total"


@dataclass(frozen=True)
class Hierarchy:
    """The parent of every category of one variable, in published order."""

    variable: str
    categories: tuple[str, ...]
    parent: dict[str, str | None]
    total: str | None
    intervals: dict[str, tuple[float, float]] = field(default_factory=dict)

    def children(self, category: str) -> list[str]:
        """Direct children of ``category`` in published order."""
        return [c for c in self.categories if self.parent[c] == category]

    def parents(self) -> list[str]:
        """Categories that have children, in published order."""
        having = {p for p in self.parent.values() if p is not None}
        return [c for c in self.categories if c in having]

    def leaves(self) -> list[str]:
        """The most detailed categories: those with no children (never the total
        unless the table has nothing else)."""
        having = {p for p in self.parent.values() if p is not None}
        found = [c for c in self.categories if c not in having and c != self.total]
        return found or ([self.total] if self.total is not None else [])

    def top(self) -> list[str]:
        """The coarsest categories below the total (the roots when no total)."""
        found = [c for c in self.categories if c != self.total and self.parent[c] == self.total]
        return found or ([self.total] if self.total is not None else [])

    def level(self, level: str) -> list[str]:
        """Categories making up ``level`` ('detailed', 'bands' or 'total')."""
        if level == "detailed":
            return self.leaves()
        if level == "bands":
            return self.top()
        return [self.total] if self.total is not None else []

    def to_attrs(self) -> dict[str, str | None]:
        """Plain ``{category: parent}`` dictionary for ``DataFrame.attrs``."""
        return {c: self.parent[c] for c in self.categories}

    def intervals_to_attrs(self) -> dict[str, list[float | None]]:
        """Plain ``{category: [lo, hi]}`` (``hi`` None when open-ended)."""
        return {c: [lo, None if math.isinf(hi) else hi] for c, (lo, hi) in self.intervals.items()}


def _format_interval(interval: tuple[float, float]) -> str:
    lo, hi = interval
    return f"[{lo:g}, {'inf' if math.isinf(hi) else f'{hi:g}'}]"


def _path_parents(categories: Sequence[str]) -> dict[str, str]:
    """Parent by label path: the longest ': '-prefix that is itself a category."""
    present = set(categories)
    found: dict[str, str] = {}
    for category in categories:
        parts = category.split(": ")
        for cut in range(len(parts) - 1, 0, -1):
            prefix = ": ".join(parts[:cut])
            if prefix in present and prefix != category:
                found[category] = prefix
                break
    return found


def _check_tiling(
    variable: str,
    owner: str,
    owner_interval: tuple[float, float] | None,
    children: list[str],
    intervals: dict[str, tuple[float, float]],
) -> None:
    """Children's intervals must not overlap and, under an interval parent, cover it."""
    spans = sorted((intervals[c], c) for c in children if c in intervals)
    for (left, left_name), (right, right_name) in pairwise(spans):
        if right[0] <= left[1]:
            raise ReadError(
                f"{variable}: categories {left_name!r} {_format_interval(left)} and "
                f"{right_name!r} {_format_interval(right)} overlap without one containing "
                "the other, so the table's hierarchy is ambiguous and summing it could "
                "double count; read a table whose categories nest, or select columns first"
            )
    if owner_interval is None or not spans:
        return
    gaps: list[str] = []
    expected = owner_interval[0]
    for (lo, hi), _ in spans:
        if lo > expected:
            gaps.append(_format_interval((expected, lo - 1)))
        expected = hi + 1
    if not math.isinf(owner_interval[1]) and expected <= owner_interval[1]:
        gaps.append(_format_interval((expected, owner_interval[1])))
    if math.isinf(owner_interval[1]) and not math.isinf(spans[-1][0][1]):
        gaps.append(_format_interval((expected, math.inf)))
    if gaps:
        raise ReadError(
            f"{variable}: category {owner!r} {_format_interval(owner_interval)} contains "
            f"{preview([c for _, c in spans])} but they do not cover it (missing "
            f"{', '.join(gaps)}), so it is neither a total of other categories nor a "
            "detailed category; the table's hierarchy cannot be recognised"
        )


def build_hierarchy(variable: str, categories: Sequence[str]) -> Hierarchy:
    """Recognise the total, subtotals and detailed categories of one variable.

    Parameters
    ----------
    variable : str
        Variable name, used in messages.
    categories : sequence of str
        Category labels in published order (unique).

    Returns
    -------
    Hierarchy

    Raises
    ------
    ReadError
        Duplicated labels, more than one total, two categories with the same
        interval, overlapping categories that do not nest, or a category that
        contains others without being exactly their union.
    """
    categories = [str(c) for c in categories]
    duplicated = pd.Index(categories)[pd.Index(categories).duplicated()].unique()
    if len(duplicated):
        raise ReadError(f"{variable}: category labels appear more than once: {preview(list(duplicated))}")
    totals = [c for c in categories if is_total_label(c)]
    if len(totals) > 1:
        raise ReadError(f"{variable}: more than one total category: {preview(totals)}")
    total = totals[0] if totals else None

    intervals: dict[str, tuple[float, float]] = {}
    for category in categories:
        if category == total:
            continue
        interval = parse_interval(category)
        if interval is not None:
            intervals[category] = interval
    by_interval: dict[tuple[float, float], str] = {}
    for category, interval in intervals.items():
        if interval in by_interval:
            raise ReadError(
                f"{variable}: categories {by_interval[interval]!r} and {category!r} both "
                f"stand for ages/amounts {_format_interval(interval)}; the table would "
                "double count them"
            )
        by_interval[interval] = category

    parent: dict[str, str | None] = dict.fromkeys(categories, total)
    if total is not None:
        parent[total] = None
    # Interval parent: the smallest interval strictly containing the category.
    names = list(intervals)
    if names:
        lo = np.array([intervals[n][0] for n in names])
        hi = np.array([intervals[n][1] for n in names])
        width = hi - lo
        contains = (lo[:, None] <= lo[None, :]) & (hi[None, :] <= hi[:, None])
        np.fill_diagonal(contains, False)
        for j, name in enumerate(names):
            holders = np.flatnonzero(contains[:, j])
            if holders.size:
                parent[name] = names[int(holders[np.argmin(width[holders])])]
    parent.update(_path_parents([c for c in categories if c != total]))

    hierarchy = Hierarchy(
        variable=variable,
        categories=tuple(categories),
        parent=parent,
        total=total,
        intervals=intervals,
    )
    owners: list[str | None] = [*hierarchy.parents()]
    if total is None:
        owners = [None, *owners]  # the roots must not overlap either
    for owner in owners:
        if owner is None:
            children = [c for c in categories if parent[c] is None]
        else:
            children = hierarchy.children(owner)
        _check_tiling(variable, str(owner), intervals.get(owner) if owner else None, children, intervals)
    return hierarchy
