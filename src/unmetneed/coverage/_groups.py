"""Care draws summed to the groups of ``by``, and checks of ``care`` and ``by``."""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from unmetneed._validate import as_column_list, show
from unmetneed.errors import DesignError, MissingColumnError
from unmetneed.mrp.draw_estimates import DrawEstimates

__all__ = [
    "CARE_NEEDED",
    "GroupedDraws",
    "as_object_index",
    "check_by",
    "check_care",
    "group_draws",
    "respondents_by",
]

#: Quantities of ``care`` every part of the report reads.
CARE_NEEDED = ("need", "council_funded", "self_funded", "unpaid_only", "unmet", "population")


@dataclass(frozen=True)
class GroupedDraws:
    """Draws of every care quantity as ``(draw, group)`` arrays, one column per group."""

    by: list[str]
    keys: pd.DataFrame  # one row per group, one object column per ``by`` variable
    index: pd.Index  # the same groups as an Index (MultiIndex for a cross; [0] for England)
    values: dict[str, np.ndarray]  # quantity -> (n_draws, n_groups)

    @property
    def n_draws(self) -> int:
        return int(self.values["population"].shape[0])

    @property
    def n_groups(self) -> int:
        return len(self.index)


def check_care(care: Any) -> None:
    """Refuse anything but care-population draws with the quantities the report reads."""
    if not isinstance(care, DrawEstimates):
        raise DesignError(
            f"care must be the CareEstimates that um.estimate_care_populations returns; got "
            f"{type(care).__name__}"
        )
    missing = [q for q in CARE_NEEDED if q not in care.draws.data_vars]
    if missing:
        raise DesignError(
            f"care lacks the quantities {missing} (it has {care.quantities}); pass the "
            "CareEstimates that um.estimate_care_populations returns"
        )


def check_by(care: DrawEstimates, by: str | Sequence[str] | None) -> list[str]:
    """``by`` as a list of names, each a grouping dimension of ``care``."""
    columns = as_column_list(by)
    if len(set(columns)) != len(columns):
        raise DesignError(f"by={columns!r} names a variable twice")
    absent = [c for c in columns if c not in care.by]
    if absent:
        raise MissingColumnError(
            f"by variable {absent[0]!r} is not a grouping of care (care is by {care.by}); "
            f"estimate care populations by it, e.g. um.estimate_care_populations(..., "
            f"by={sorted(set(care.by) | set(absent))!r}), or choose by from {care.by}"
        )
    return columns


def as_object_index(keys: pd.DataFrame) -> pd.Index:
    """The groups of a key table as an Index of plain labels (MultiIndex for a cross)."""
    if keys.shape[1] == 0:
        return pd.Index([0])
    plain = keys.astype(object)
    if plain.shape[1] == 1:
        return pd.Index(plain.iloc[:, 0].to_numpy(dtype=object), name=plain.columns[0], dtype=object)
    return pd.MultiIndex.from_frame(plain)


def group_draws(care: DrawEstimates, by: list[str]) -> GroupedDraws:
    """Sum care draws over the dimensions not in ``by``; drop groups absent from the frame.

    A group of a cross that no frame cell falls in is NaN in every draw of
    ``care``; it is not part of the population and is left out.
    """
    draws: xr.Dataset = care.draws
    other = [d for d in care.by if d not in by]
    if other:
        draws = draws.sum(dim=other, min_count=1)
    n_draws = int(draws.sizes["draw"])
    values: dict[str, np.ndarray] = {}
    for name in draws.data_vars:
        array = draws[name].transpose("draw", *by)
        values[str(name)] = np.asarray(array.values, dtype=np.float64).reshape(n_draws, -1)
    if by:
        grids = np.meshgrid(*[np.asarray(draws[d].values, dtype=object) for d in by], indexing="ij")
        keys = pd.DataFrame({d: g.ravel() for d, g in zip(by, grids, strict=True)}, dtype=object)
    else:
        keys = pd.DataFrame(index=[0])
    present = ~np.isnan(values["population"]).all(axis=0)
    if not present.all():
        keys = keys.loc[present].reset_index(drop=True)
        values = {k: v[:, present] for k, v in values.items()}
    return GroupedDraws(by=by, keys=keys, index=as_object_index(keys), values=values)


def respondents_by(care: DrawEstimates, groups: GroupedDraws) -> np.ndarray | None:
    """Respondents behind each group (from ``care.respondents``), or None if unknown."""
    respondents = care.respondents
    if respondents is None or not care.by:
        return None
    series = pd.Series(respondents)
    if not groups.by:
        return np.array([int(series.sum())])
    names: list[Hashable] = list(series.index.names)
    if names != care.by:
        names = list(care.by)  # respondents are indexed by care's groups in care's order
        series.index = series.index.set_names(names)
    positions = [names.index(b) for b in groups.by]
    summed = series.groupby(level=positions).sum()
    index = summed.index
    if isinstance(index, pd.MultiIndex):
        summed.index = pd.MultiIndex.from_arrays(
            [index.get_level_values(i).astype(object) for i in range(index.nlevels)], names=groups.by
        )
    else:
        summed.index = pd.Index(index.astype(object), name=groups.by[0], dtype=object)
    return summed.reindex(groups.index).fillna(0).astype(np.int64).to_numpy()


def describe_labels(labels: Iterable[Any], limit: int = 8) -> str:
    """``[a, b, ...]`` with at most ``limit`` labels shown, plus how many there are."""
    labels = list(labels)
    shown = ", ".join(show(v) for v in labels[:limit])
    more = f", ... ({len(labels)} in all)" if len(labels) > limit else ""
    return f"[{shown}{more}]"
