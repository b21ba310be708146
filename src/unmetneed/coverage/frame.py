r"""Frame coverage: how much of its target population each source reaches.

For source :math:`s` with design weights :math:`w_i` and group :math:`g`:

.. math::

    \hat C_g = \sum_{i \in s} w_i [i \in g], \qquad
    U_g = T_g - \hat C_g, \qquad \kappa_g = \hat C_g / T_g,

with :math:`T_g` the target (a care quantity's draws, or an exact census
count). Intervals pair the target's draws :math:`T_g^{(d)}` with normal draws
:math:`C_g^{(d)} = \max(0, \hat C_g + \widehat{\mathrm{se}}(\hat C_g) z^{(d)})`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from unmetneed._validate import repeated_keys
from unmetneed.coverage._groups import GroupedDraws, as_object_index, describe_labels
from unmetneed.design import SurveyDesign
from unmetneed.errors import (
    DesignError,
    MarginsError,
    MissingColumnError,
    UnmetneedError,
)

__all__ = [
    "COVERAGE_COLUMNS",
    "COVERAGE_FLAGS",
    "TARGET_COLUMNS",
    "Source",
    "check_sources",
    "coverage_tables",
    "resolve_census",
]

#: Columns of a coverage row that are computed from its target (with the target itself):
#: a row whose target is not published has these blank.
TARGET_COLUMNS = (
    "target_estimate",
    "uncovered",
    "uncovered_lower",
    "uncovered_upper",
    "over_count",
    "coverage",
    "coverage_lower",
    "coverage_upper",
)
COVERAGE_COLUMNS = ["source", "target", "covered", "covered_se", *TARGET_COLUMNS, "flag"]
#: ``flag`` of a coverage row: the source counts no more than its target (``ok``),
#: or more (``over_count``: the excess is in ``over_count``, ``uncovered`` is 0).
COVERAGE_FLAGS = ("ok", "over_count")
# A design SE this small relative to the total is floating-point noise of an
# exactly known total (a stratum sampled completely, or its fpc count): it is 0.
_EXACT_SE = 1e-9
_ONES = "__unmetneed_covered__"


@dataclass(frozen=True)
class Source:
    """One data source: its design, what it is compared with, and where that comes from."""

    name: str
    design: SurveyDesign
    target: str
    kind: str  # "care" (a quantity of care) or "census" (a key of census)


def check_sources(sources: Any, care_quantities: list[str], census: Mapping[str, Any] | None) -> list[Source]:
    """Validate ``sources`` and say where each target comes from."""
    if not isinstance(sources, Mapping) or not sources:
        raise DesignError(
            "sources must be a non-empty dict mapping a name to (SurveyDesign, target), e.g. "
            "{'ascs': (ascs_design, 'council_funded')}"
        )
    census_keys = [] if census is None else [str(k) for k in census]
    out = []
    for name, value in sources.items():
        if not isinstance(name, str):
            raise DesignError(f"source names must be strings; got {name!r}")
        if not (isinstance(value, tuple) and len(value) == 2):
            raise DesignError(
                f"source {name!r} must be a (SurveyDesign, target) pair; got {type(value).__name__}"
            )
        design, target = value
        if not isinstance(design, SurveyDesign):
            raise DesignError(
                f"source {name!r}: the first element must be a SurveyDesign; got {type(design).__name__}"
            )
        if not isinstance(target, str):
            raise DesignError(f"source {name!r}: the target must be a name (str); got {target!r}")
        in_care = target in care_quantities
        in_census = target in census_keys
        if in_care and in_census:
            raise DesignError(
                f"source {name!r}: target {target!r} is both a care quantity and a census key; "
                "rename the census key"
            )
        if not (in_care or in_census):
            census_text = f"census keys {census_keys}" if census_keys else "no census= given"
            raise MissingColumnError(
                f"source {name!r}: target {target!r} is neither a care quantity "
                f"({', '.join(care_quantities)}) nor a census key ({census_text}); name one of "
                "them, or pass the census counts as census={" + repr(target) + ": counts}"
            )
        out.append(Source(name, design, target, "care" if in_care else "census"))
    return out


def resolve_census(key: str, table: Any, groups: GroupedDraws) -> np.ndarray:
    """Census counts of ``key`` aligned to ``groups``; the groups must match exactly."""
    by = groups.by
    if isinstance(table, pd.DataFrame):
        needed = [*by, "count"]
        absent = [c for c in needed if c not in table.columns]
        if absent:
            raise MissingColumnError(
                f"census {key!r} lacks the column(s) {absent}; a census table needs the by "
                f"variables {by} and a 'count' column (or pass a Series indexed by {by})"
            )
        if by:
            repeated = repeated_keys(table, by)
            if repeated:
                n_repeated, example = repeated
                raise MarginsError(
                    f"census {key!r} has {n_repeated:,} rows that repeat a group of {by}, "
                    f"e.g. {example}: it has other categories "
                    f"too (columns {list(table.columns)}); keep the rows of the target and add "
                    f"them up first, e.g. table.groupby({by!r})['count'].sum()"
                )
            series = table.set_index(by)["count"]
        else:
            series = table["count"]
    elif isinstance(table, pd.Series):
        series = table
    else:
        raise MarginsError(
            f"census {key!r} must be a pandas Series indexed by {by} or a DataFrame with "
            f"columns {[*by, 'count']}; got {type(table).__name__}"
        )
    values = pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(values) | (values < 0)
    if bad.any():
        raise MarginsError(
            f"census {key!r} has missing, negative or non-numeric counts for "
            f"{describe_labels(series.index[bad])}"
        )
    if not by:
        if len(series) != 1:
            raise MarginsError(f"census {key!r}: with by=None give one count (England); got {len(series)}")
        return values
    index = series.index
    names = [n for n in index.names]
    if index.nlevels != len(by) or any(n is not None and n != b for n, b in zip(names, by, strict=False)):
        raise MarginsError(
            f"census {key!r} is indexed by {names} but the groups are by {by}; index it by "
            f"{by} (e.g. table.set_index({by!r})['count'])"
        )
    if index.nlevels == 1:
        labels = pd.Index(index.astype(object), dtype=object, name=by[0])
    else:
        labels = pd.MultiIndex.from_arrays(
            [index.get_level_values(i).astype(object) for i in range(index.nlevels)], names=by
        )
    if labels.has_duplicates:
        raise MarginsError(
            f"census {key!r} repeats the groups {describe_labels(labels[labels.duplicated()].unique())}; "
            "add them up first"
        )
    missing = groups.index.difference(labels, sort=False)
    extra = labels.difference(groups.index, sort=False)
    if len(missing) or len(extra):
        parts = []
        if len(missing):
            parts.append(f"groups of care with no census count: {describe_labels(missing)}")
        if len(extra):
            parts.append(f"census groups care does not have: {describe_labels(extra)}")
        raise MarginsError(
            f"census {key!r} does not match the groups of {by} in care: {'; '.join(parts)}. Use "
            "the same codes and boundaries (e.g. 2021 upper-tier area codes) in both"
        )
    return pd.Series(values, index=labels).reindex(groups.index).to_numpy(dtype=np.float64)


def _covered(
    source: Source, by: list[str], groups: GroupedDraws
) -> tuple[np.ndarray, np.ndarray, float, float]:
    """Weighted total of respondents per group and overall, with design SEs."""
    design = source.design
    data = design.data
    for column in by:
        if column not in data.columns:
            raise MissingColumnError(
                f"by variable {column!r} is not a column of source {source.name!r} (its columns: "
                f"{', '.join(map(str, data.columns[:20]))}); add it to the survey data or choose "
                "another by"
            )
    column = _ONES
    while column in data.columns:
        column += "_"
    # A column of ones gives the weighted count of respondents with the design's own
    # variance (calibration residuals or replicate weights included).
    counted = design.assign(**{column: 1.0})
    try:
        overall = counted.total(column)
        totals = counted.total(column, by=by) if by else overall
    except UnmetneedError as error:
        raise type(error)(f"source {source.name!r}: {error}") from error
    if by:
        index = totals.estimate.index
        labels: pd.Index
        if isinstance(index, pd.MultiIndex):
            labels = pd.MultiIndex.from_arrays(
                [index.get_level_values(i).astype(object) for i in range(index.nlevels)], names=by
            )
        else:
            labels = as_object_index(pd.DataFrame({by[0]: index.to_numpy()}))
        unknown = labels.difference(groups.index, sort=False)
        if len(unknown):
            raise DesignError(
                f"source {source.name!r} has respondents in groups of {by} that care does not "
                f"have: {describe_labels(unknown)}; check the codes (same boundaries and "
                "category labels as the frame)"
            )
        estimate = pd.Series(totals.estimate.to_numpy(), index=labels).reindex(groups.index)
        se = pd.Series(totals.se.to_numpy(), index=labels).reindex(groups.index)
        # A group without respondents: the source covers nobody there, with certainty.
        covered, covered_se = estimate.fillna(0.0).to_numpy(), se.fillna(0.0).to_numpy()
    else:
        covered, covered_se = overall.estimate.to_numpy(), overall.se.to_numpy()
    overall_covered = overall.estimate.to_numpy(dtype=np.float64)
    overall_se = _exact_zero(overall.se.to_numpy(dtype=np.float64), overall_covered)
    return (covered, _exact_zero(covered_se, covered), float(overall_covered[0]), float(overall_se[0]))


def _exact_zero(se: np.ndarray, total: np.ndarray) -> np.ndarray:
    """SEs that are rounding noise of an exactly known total (3.6e-14) become 0."""
    se = np.asarray(se, dtype=np.float64).copy()
    se[np.abs(se) <= _EXACT_SE * np.maximum(1.0, np.abs(total))] = 0.0
    return se


def _interval(values: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    """Equal-tailed quantiles per column; NaN where any draw is not finite."""
    alpha = (1.0 - level) / 2.0
    lower = np.full(values.shape[1], np.nan)
    upper = np.full(values.shape[1], np.nan)
    finite = np.isfinite(values).all(axis=0)
    if finite.any():
        lower[finite], upper[finite] = np.quantile(values[:, finite], [alpha, 1.0 - alpha], axis=0)
    return lower, upper


def _rows(
    source: Source,
    covered: np.ndarray,
    se: np.ndarray,
    target: np.ndarray,
    level: float,
    rng: np.random.Generator,
) -> dict[str, Any]:
    z = rng.standard_normal(target.shape)
    # A weighted count cannot be negative.
    covered_draws = np.maximum(covered[None, :] + se[None, :] * z, 0.0)
    target_estimate = target.mean(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        share_draws = covered_draws / target
        coverage = np.where(target_estimate > 0, covered / target_estimate, np.nan)
    # Nobody can be uncovered a negative number of times: a source that counts more
    # than the modelled target has an over-count (its own column and flag), and
    # uncovered is 0 there, in the point estimate and in every draw.
    uncovered_lower, uncovered_upper = _interval(np.maximum(target - covered_draws, 0.0), level)
    coverage_lower, coverage_upper = _interval(share_draws, level)
    excess = covered - target_estimate
    return {
        "source": source.name,
        "target": source.target,
        "covered": covered,
        "covered_se": se,
        "target_estimate": target_estimate,
        "uncovered": np.maximum(-excess, 0.0),
        "uncovered_lower": uncovered_lower,
        "uncovered_upper": uncovered_upper,
        "over_count": np.maximum(excess, 0.0),
        "coverage": coverage,
        "coverage_lower": coverage_lower,
        "coverage_upper": coverage_upper,
        "flag": np.where(excess > 0, "over_count", "ok"),
    }


def coverage_tables(
    sources: list[Source],
    groups: GroupedDraws,
    census: Mapping[str, Any] | None,
    *,
    level: float,
    entropy: int,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Coverage of every source by group of ``groups.by``, and overall (England)."""
    by = groups.by
    frames, overall_rows = [], []
    for position, source in enumerate(sources):
        if source.kind == "care":
            target = groups.values[source.target]
        else:
            counts = resolve_census(source.target, census[source.target], groups)  # type: ignore[index]
            target = np.broadcast_to(counts, (groups.n_draws, groups.n_groups))
        covered, se, covered_all, se_all = _covered(source, by, groups)
        streams = [
            np.random.default_rng(np.random.SeedSequence(entropy, spawn_key=(position, part)))
            for part in (0, 1)
        ]
        keys = {c: groups.keys[c].to_numpy() for c in by}
        rows = _rows(source, covered, se, target, level, streams[0])
        frames.append(pd.DataFrame({**keys, **rows}, index=pd.RangeIndex(groups.n_groups)))
        whole = _rows(
            source,
            np.array([covered_all]),
            np.array([se_all]),
            target.sum(axis=1, keepdims=True),
            level,
            streams[1],
        )
        overall_rows.append(pd.DataFrame(whole, index=[0]))
    columns = [*by, *COVERAGE_COLUMNS]
    table = pd.concat(frames, ignore_index=True)[columns]
    overall = pd.concat(overall_rows, ignore_index=True)[COVERAGE_COLUMNS]
    return table, overall
