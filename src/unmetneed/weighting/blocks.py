"""Match margins to a design's respondents: integer-coded calibration blocks.

A *block* is one margin as the solvers see it: per row, the code of its
category (a categorical margin, a cross coded jointly) or its value (a numeric
auxiliary), and the population totals. Here the checks of the bad-input policy
happen: categories with no respondents, respondents in no category, grand
totals that disagree; ``collapse=``, ``allow_empty=`` and ``reconcile=`` are
the documented ways out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, cast

import numpy as np
import pandas as pd

from unmetneed._validate import check_choice, numeric_column, show
from unmetneed.design import SurveyDesign
from unmetneed.errors import MarginsError
from unmetneed.margins import MarginKey, Margins

__all__ = ["Block", "Preparation", "prepare_blocks"]

Reconcile = None | Literal["scale"]  # None first: check_choice lists them in this order
Collapse = Mapping[str, Mapping[Any, Any]] | Mapping[Any, Any] | None

TOTALS_RTOL = 1e-6


@dataclass(frozen=True, eq=False)
class Block:
    """One margin, coded against the design's rows."""

    key: MarginKey
    codes: np.ndarray | None  # (n,) category code of each row (categorical)
    labels: pd.Index | None  # the K categories
    target: np.ndarray  # (K,) totals, or (1,) for a numeric auxiliary
    values: np.ndarray | None = None  # (n,) numeric auxiliary

    @property
    def is_numeric(self) -> bool:
        return self.codes is None

    @property
    def categories(self) -> pd.Index:
        """The K categories of a categorical block."""
        # prepare_blocks gives a block codes and labels together, or values alone
        return cast(pd.Index, self.labels)

    @property
    def auxiliary(self) -> np.ndarray:
        """Per row, the value of a numeric auxiliary."""
        # prepare_blocks gives a block codes and labels together, or values alone
        return cast(np.ndarray, self.values)

    @property
    def size(self) -> int:
        return 1 if self.codes is None else self.target.size

    def achieved(self, weights: np.ndarray) -> np.ndarray:
        """Weighted totals of the block's categories (or of the auxiliary)."""
        if self.codes is None:
            return np.array([weights @ self.values])
        return np.bincount(self.codes, weights=weights, minlength=self.target.size)

    def relative_error(self, weights: np.ndarray) -> np.ndarray:
        achieved = self.achieved(weights)
        scale = np.where(self.target != 0, np.abs(self.target), 1.0)
        return np.abs(achieved - self.target) / scale


@dataclass(frozen=True, eq=False)
class Preparation:
    """Blocks ready for a solver, and what was changed to get there."""

    blocks: list[Block]
    adjustments: list[str] = field(default_factory=list)

    @property
    def categorical(self) -> list[Block]:
        return [b for b in self.blocks if b.codes is not None]


def prepare_blocks(
    design: SurveyDesign,
    margins: Margins,
    *,
    reconcile: Reconcile = None,
    collapse: Collapse = None,
    allow_empty: bool = False,
    counts: np.ndarray | None = None,
) -> Preparation:
    """Code ``margins`` against the rows of ``design``.

    ``counts`` gives the respondents each row stands for (one each by default):
    the rows of a design of respondent cells (see :mod:`unmetneed.weighting.streaming`).

    Raises
    ------
    MarginsError
        Respondent categories absent from a margin; margin categories without
        respondents (unless ``allow_empty``); categorical margins whose grand
        totals differ by more than 1e-6 relative (unless ``reconcile="scale"``).
    MissingColumnError
        A margin variable is not in the data.
    """
    if not isinstance(margins, Margins):
        margins = Margins(margins)
    check_choice(reconcile, "reconcile", Reconcile)
    collapse_map = _collapse_by_variable(margins, collapse)
    adjustments: list[str] = []
    blocks: list[Block] = []
    for key in margins:
        value = margins[key]
        if not isinstance(value, pd.Series):
            values = numeric_column(design.data, str(key), "auxiliary")
            blocks.append(Block(key, None, None, np.array([float(value)]), values))
            continue
        blocks.append(_categorical_block(design, key, value, collapse_map, allow_empty, adjustments, counts))
    _reconcile_totals(blocks, reconcile, adjustments)
    return Preparation(blocks, adjustments)


def _collapse_by_variable(margins: Margins, collapse: Collapse) -> dict[str, dict[Any, Any]]:
    """Accept ``{variable: {from: to}}`` or a flat ``{from: to}`` (unambiguous only)."""
    if not collapse:
        return {}
    variables = {v for key in margins.categorical_keys for v in Margins.variables_of(key)}
    if all(isinstance(k, str) and k in variables and isinstance(v, Mapping) for k, v in collapse.items()):
        return {k: dict(v) for k, v in collapse.items()}
    out: dict[str, dict[Any, Any]] = {}
    for source, target in collapse.items():
        owners = [
            var
            for key in margins.categorical_keys
            # the categorical keys are those whose totals are a Series
            for var, level in zip(
                Margins.variables_of(key), _levels_of(cast(pd.Series, margins[key])), strict=True
            )
            if source in set(level)
        ]
        owners = sorted(set(owners))
        if isinstance(target, Mapping):  # meant as {variable: {from: to}}, but no such margin
            from difflib import get_close_matches

            close = get_close_matches(str(source), sorted(variables), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise MarginsError(
                f"collapse names variable {show(source)}, which no margin has (margin variables: "
                f"{sorted(variables)}){hint} Write collapse={{variable: {{category: target}}}} "
                "with a margin's variable"
            )
        if len(owners) != 1:
            where = "no margin" if not owners else f"several variables ({owners})"
            example = owners[0] if owners else min(variables) if variables else "variable"
            raise MarginsError(
                f"collapse: category {show(source)} is in {where}; write the mapping per "
                f"variable, e.g. collapse={{{example!r}: {{{show(source)}: {show(target)}}}}}"
            )
        out.setdefault(owners[0], {})[source] = target
    return out


def _levels_of(series: pd.Series) -> list[pd.Index]:
    index = series.index
    if isinstance(index, pd.MultiIndex):
        return [index.get_level_values(i) for i in range(index.nlevels)]
    return [index]


def _categorical_block(
    design: SurveyDesign,
    key: MarginKey,
    totals: pd.Series,
    collapse: dict[str, dict[Any, Any]],
    allow_empty: bool,
    adjustments: list[str],
    counts: np.ndarray | None = None,
) -> Block:
    names = Margins.variables_of(key)
    row_codes = []
    level_values = []
    for name in names:
        codes, levels = design.category_codes(name, "margin variable")
        if name in collapse:
            levels = pd.Index([collapse[name].get(v, v) for v in levels], name=name)
        row_codes.append(codes)
        level_values.append(levels)
    if any(n in collapse for n in names):
        totals = _collapse_totals(totals, names, collapse, adjustments, key)

    if len(names) == 1:
        observed = level_values[0]
        position = totals.index.get_indexer(observed)
        identity = np.array_equal(position, np.arange(len(totals)))
        codes = row_codes[0] if identity else position[row_codes[0]]
        combos = observed
    else:
        sizes = [len(lv) for lv in level_values]
        flat = np.ravel_multi_index(row_codes, sizes)
        uniq, inverse = np.unique(flat, return_inverse=True)
        parts = np.unravel_index(uniq, sizes)
        combos = pd.MultiIndex.from_arrays(
            [lv.take(p) for lv, p in zip(level_values, parts, strict=True)], names=names
        )
        position = totals.index.get_indexer(combos)
        codes = position[inverse]

    counts_by_observed = np.bincount(
        row_codes[0] if len(names) == 1 else inverse, weights=counts, minlength=len(combos)
    )
    unknown = position < 0
    if unknown.any():
        cats = [
            f"{show(c)} ({int(n):,} respondents)"
            for c, n in zip(combos[unknown], counts_by_observed[unknown], strict=True)
        ][:8]
        known = ", ".join(show(c) for c in totals.index[:8])
        raise MarginsError(
            f"margin {key!r} has no total for respondent categories {', '.join(cats)}; "
            f"the margin's categories are {known}{', ...' if len(totals) > 8 else ''}. "
            "Add their totals, or merge categories with collapse={variable: {category: target}}"
        )

    respondents = np.bincount(position, weights=counts_by_observed, minlength=len(totals))
    target = totals.to_numpy(dtype=np.float64, copy=True)
    empty = respondents == 0
    zero_pop = target == 0
    drop = empty & zero_pop  # no respondents, no population: nothing to calibrate
    orphans = empty & ~zero_pop
    if orphans.any():
        listed = [
            f"{show(c)} (population {t:,.6g})"
            for c, t in zip(totals.index[orphans], target[orphans], strict=True)
        ][:8]
        if not allow_empty:
            raise MarginsError(
                f"margin {key!r} has categories with no respondents: {', '.join(listed)}; "
                "merge them with a neighbouring category with collapse="
                "{variable: {category: target}}, or pass allow_empty=True to leave their "
                "population out of the targets"
            )
        adjustments.append(
            f"{key!r}: categories with no respondents left out of the targets: {', '.join(listed)}"
        )
        drop = drop | orphans
    populated_without_pop = (~empty) & zero_pop
    if populated_without_pop.any():
        cats = [show(c) for c in totals.index[populated_without_pop]][:8]
        raise MarginsError(
            f"margin {key!r} has a population total of 0 for categories with respondents: "
            f"{', '.join(cats)}; their weights cannot be calibrated to zero. Check the table, "
            "or merge them with collapse="
        )
    if drop.any():
        keep = ~drop
        new_position = np.cumsum(keep) - 1
        codes = new_position[codes]
        totals = totals[keep]
        target = target[keep]
    return Block(key, np.asarray(codes, dtype=np.intp), totals.index, target)


def _collapse_totals(
    totals: pd.Series,
    names: list[str],
    collapse: dict[str, dict[Any, Any]],
    adjustments: list[str],
    key: MarginKey,
) -> pd.Series:
    frame = totals.rename("total").reset_index()
    for name in names:
        if name in collapse:
            mapping = collapse[name]
            missing = [k for k in mapping if k not in set(frame[name])]
            if missing:
                raise MarginsError(f"collapse for {name!r}: categories {missing} are not in margin {key!r}")
            frame[name] = frame[name].map(lambda v, m=mapping: m.get(v, v))
            adjustments.append(f"{key!r}: merged categories of {name!r}: {mapping}")
    grouped = frame.groupby(names, sort=False, observed=True)["total"].sum()
    return grouped


def _reconcile_totals(blocks: list[Block], reconcile: Reconcile, adjustments: list[str]) -> None:
    categorical = [b for b in blocks if b.codes is not None]
    if len(categorical) < 2:
        return
    reference = categorical[0]
    ref_total = float(reference.target.sum())
    for block in categorical[1:]:
        total = float(block.target.sum())
        if total == ref_total:
            continue
        if abs(total - ref_total) > TOTALS_RTOL * abs(ref_total) and reconcile != "scale":
            raise MarginsError(
                f"margins disagree on the population total: {reference.key!r} sums to "
                f"{ref_total:,.10g} but {block.key!r} to {total:,.10g} "
                f"(relative difference {abs(total - ref_total) / ref_total:.2e}); raking "
                "cannot meet both. Pass reconcile='scale' to scale each margin to the first "
                "one's total (census tables differ slightly by design)"
            )
        # Within 1e-6 the difference is rounding, not a conflict: scale always, so the
        # margins can be met together to any tolerance; say so either way.
        factor = ref_total / total
        block.target[:] = block.target * factor
        adjustments.append(
            f"{block.key!r}: scaled by {factor:.12g} to the total of {reference.key!r} "
            f"({total:,.10g} -> {ref_total:,.10g})"
        )
