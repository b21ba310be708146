"""``protect``: the disclosure control a table goes through before it is published."""

from __future__ import annotations

import copy
import math
import numbers
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from unmetneed._provenance import package_version
from unmetneed._validate import as_column_list, require_columns, row_examples, show
from unmetneed.disclosure.rounding import Direction, round_to_base, round_to_decimals
from unmetneed.disclosure.secondary import (
    KeyCodes,
    SecondaryReport,
    build_lines,
    secondary_suppression,
)
from unmetneed.errors import DisclosureError

__all__ = ["DENOMINATORS", "FLAGS", "MIN_DRAWS", "RESULT_COLUMNS", "SECONDARY", "protect"]

RESULT_COLUMNS = ("estimate", "se", "ci_lower", "ci_upper", "cv", "n")
FLAGS = ("ok", "low_reliability", "suppressed")
SECONDARY = "secondary"
PRIOR = "suppressed in input"
#: Fewest draws a draw-based table may summarise and still be published.
MIN_DRAWS = 100
# Numbers that go missing in a suppressed row.
_BLANKED = (*RESULT_COLUMNS, "deff")
# Descriptors of a row, not keys of a cell: ``basis`` says what a figure rests on.
_NOT_KEYS = frozenset((*_BLANKED, "flag", "reason", "basis"))
# Statistics (``attrs["statistic"]`` of a table without a ``measure`` column)
# whose estimates are counts of people.
_COUNT_STATISTICS = frozenset({"total", "count"})
# measure -> quantity whose count is its denominator: with the share published,
# a suppressed denominator count is numerator / share.
DENOMINATORS: Mapping[str, str] = {"share_of_need": "need"}


# -- option checks -------------------------------------------------------------
def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _threshold(
    value: Any, name: str, *, integer: bool = False, positive: bool = False, allow_none: bool = True
) -> Any:
    if value is None and allow_none:
        return None
    ok = _is_int(value) if integer else _is_real(value)
    if ok:
        value = int(value) if _is_int(value) else float(value)  # plain Python, as given
        ok = math.isfinite(value) and (value > 0 if positive else value >= 0)
    if not ok:
        kind = (
            "a positive integer"
            if integer and positive
            else ("a non-negative integer" if integer else "a non-negative finite number")
        )
        none = " or None" if allow_none else ""
        raise DisclosureError(f"{name}={value!r} is not valid; use {kind}{none}")
    return value


def _check_options(
    min_count: Any,
    rounding: Any,
    flag_cv: Any,
    suppress_cv: Any,
    min_n: Any,
    secondary: Any,
    decimals: Any,
    count_measures: Any,
) -> tuple[float | None, int | None, float | None, float | None, int | None, int | None, tuple[str, ...]]:
    min_count = _threshold(min_count, "min_count")
    rounding = _threshold(rounding, "rounding", integer=True, positive=True)
    flag_cv = _threshold(flag_cv, "flag_cv")
    suppress_cv = _threshold(suppress_cv, "suppress_cv")
    if flag_cv is not None and suppress_cv is not None and flag_cv > suppress_cv:
        raise DisclosureError(
            f"flag_cv={flag_cv:g} exceeds suppress_cv={suppress_cv:g}; the CV that flags an "
            "estimate as low reliability must not be above the CV that suppresses it"
        )
    min_n = _threshold(min_n, "min_n", integer=True)
    decimals = _threshold(decimals, "decimals", integer=True)
    if not isinstance(secondary, bool):
        raise DisclosureError(f"secondary={secondary!r} must be True or False")
    if isinstance(count_measures, str):
        count_measures = (count_measures,)
    try:
        count_measures = tuple(count_measures)
    except TypeError:
        raise DisclosureError(
            f"count_measures={count_measures!r} must be a measure name or a sequence of them, e.g. ('count',)"
        ) from None
    for measure in count_measures:
        if not isinstance(measure, str):
            raise DisclosureError(f"count_measures must hold measure names (strings); got {measure!r}")
    return min_count, rounding, flag_cv, suppress_cv, min_n, decimals, count_measures


# -- the table -----------------------------------------------------------------
def _numeric(table: pd.DataFrame, column: str) -> np.ndarray:
    series = table[column]
    if isinstance(series.dtype, pd.CategoricalDtype) or not (
        pd.api.types.is_numeric_dtype(series.dtype) or series.isna().all()
    ):
        raise DisclosureError(
            f"result column {column!r} is not numeric (dtype {series.dtype}); "
            "protect() takes a table of estimates such as Estimates.to_frame()"
        )
    return series.to_numpy(dtype=np.float64, na_value=np.nan)


def _count_rows(table: pd.DataFrame, count_measures: tuple[str, ...]) -> np.ndarray:
    """Which rows are counts of people: the rule of the Notes of :func:`protect`."""
    if "measure" in table.columns:
        return table["measure"].isin(list(count_measures)).to_numpy()
    if not count_measures:
        return np.zeros(len(table), dtype=bool)
    statistic = table.attrs.get("statistic")
    if statistic is None:
        raise DisclosureError(
            "cannot tell whether the estimates are counts: the table has no 'measure' column "
            "and no attrs['statistic'] (Estimates.to_frame() sets it); add a measure column, "
            "e.g. table.assign(measure='count'), or set table.attrs['statistic'] to 'total' "
            "for counts or to 'mean', 'ratio' or 'proportion' otherwise"
        )
    statistic = "count" if statistic in _COUNT_STATISTICS else str(statistic)
    return np.full(len(table), statistic in count_measures)


def _prior_suppression(table: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Rows the input already flags ``suppressed``, and their reasons."""
    n_rows = len(table)
    if "flag" not in table.columns:
        return np.zeros(n_rows, dtype=bool), np.full(n_rows, "", dtype=object)
    flag = table["flag"]
    unknown = ~flag.isin(FLAGS).to_numpy()
    if unknown.any():
        values = pd.unique(flag[unknown])[:8]
        raise DisclosureError(
            f"column 'flag' has values other than {', '.join(map(repr, FLAGS))}: "
            f"[{', '.join(show(v) for v in values)}] in {row_examples(unknown, table.index)}; "
            "fix or drop the column before protect()"
        )
    prior = (flag == "suppressed").to_numpy()
    reason = np.full(n_rows, PRIOR, dtype=object)
    if "reason" in table.columns:
        given = table["reason"].astype(object).to_numpy()
        keep = prior & pd.notna(given) & (given != "")
        reason[keep] = given[keep].astype(str)
    return prior, np.where(prior, reason, "")


def _check_values(
    table: pd.DataFrame, values: Mapping[str, np.ndarray], prior: np.ndarray, min_n: int | None
) -> None:
    index = table.index
    live = ~prior
    estimate, cv, n = values["estimate"], values["cv"], values["n"]
    bad = live & ~np.isfinite(estimate)
    if bad.any():
        raise DisclosureError(
            f"column 'estimate' is missing or infinite in {row_examples(bad, index)} not flagged "
            "'suppressed'; nothing is dropped silently: remove those rows or flag them 'suppressed'"
        )
    bad = live & np.isnan(cv) & (estimate != 0)
    if bad.any():
        raise DisclosureError(
            f"column 'cv' is missing for non-zero estimates in {row_examples(bad, index)}, so "
            "their reliability cannot be judged; compute it as se / |estimate|"
        )
    bad = live & (cv < 0)
    if bad.any():
        raise DisclosureError(f"column 'cv' is negative in {row_examples(bad, index)}")
    bad = live & (n < 0)
    if bad.any():
        raise DisclosureError(f"column 'n' (respondents) is negative in {row_examples(bad, index)}")
    if min_n is not None:
        bad = live & np.isnan(n)
        if bad.any():
            raise DisclosureError(
                f"min_n={min_n} needs the respondent counts, but column 'n' is missing in "
                f"{row_examples(bad, index)}; supply n or pass min_n=None"
            )


def _primary(
    estimate: np.ndarray,
    cv: np.ndarray,
    n: np.ndarray,
    is_count: np.ndarray,
    live: np.ndarray,
    min_count: float | None,
    rounding: int | None,
    suppress_cv: float | None,
    min_n: int | None,
) -> tuple[np.ndarray, np.ndarray]:
    false = np.zeros(estimate.size, dtype=bool)
    with np.errstate(invalid="ignore"):
        small = false.copy()
        if min_count is not None:
            published = round_to_base(estimate, rounding) if rounding is not None else estimate
            # The rounded count is tested too: 12 rounds to 10, below min_count=12.
            small = is_count & live & ((estimate < min_count) | (published < min_count))
        few = live & (n < min_n) if min_n is not None else false
        noisy = live & (cv > suppress_cv) if suppress_cv is not None else false
    rules = [
        (small, f"count < {min_count:g}" if min_count is not None else ""),
        (few, f"n < {min_n}"),
        (noisy, f"cv > {suppress_cv:g}" if suppress_cv is not None else ""),
    ]
    # Every combination of rules gets its reason text once; rows look it up by code.
    code = small.astype(np.intp) + 2 * few + 4 * noisy
    texts = np.array(
        ["; ".join(text for bit, (_, text) in enumerate(rules) if combo >> bit & 1) for combo in range(8)],
        dtype=object,
    )
    return code > 0, texts[code]


def _structure(
    table: pd.DataFrame,
    codes: KeyCodes,
    is_count: np.ndarray,
    by: Any,
    total_label: Hashable | None,
    hierarchy: Mapping[str, Mapping[Hashable, Sequence[Any]]] | None,
) -> tuple[pd.DataFrame, list[str], dict[str, list[tuple[Any, Any]]]]:
    """Key columns of the count rows, additive dimensions, and their relations."""
    key_columns = list(codes.codes)
    keys = table.loc[is_count, key_columns].reset_index(drop=True)
    hierarchy = dict(hierarchy or {})
    if by is None:
        dims: list[str] = []
        for column in key_columns:
            if column in ("measure", "quantity") or column in hierarchy:
                continue
            if pd.api.types.is_float_dtype(table[column].dtype):
                continue
            if any(codes.one_to_one(column, kept) for kept in dims):
                continue  # a label of a kept column (area_name of area_code)
            dims.append(column)
    else:
        dims = as_column_list(by)
        require_columns(table, dims, "by")
        for column in dims:
            if column in _NOT_KEYS or column == "measure":
                raise DisclosureError(
                    f"by column {column!r} is a result or measure column, not an additive "
                    "dimension; name the grouping columns, e.g. by=['area_code', 'age_band']"
                )
    require_columns(table, list(hierarchy), "hierarchy")
    for column in hierarchy:
        if column in _NOT_KEYS or column == "measure":
            raise DisclosureError(f"hierarchy column {column!r} is a result or measure column")
        if column not in dims:
            dims.append(column)
    relations: dict[str, list[tuple[Any, Any]]] = {}
    label_found = False
    for column in dims:
        if column in hierarchy:
            relations[column] = _hierarchy_relations(column, hierarchy[column], table[column])
            continue
        has_label = total_label is not None and bool(keys[column].isin([total_label]).any())
        label_found |= has_label
        relations[column] = [(total_label if has_label else None, None)]
    if total_label is not None and not label_found and len(keys):
        raise DisclosureError(
            f"total_label={total_label!r} is not a category of any additive dimension "
            f"({', '.join(map(repr, dims))}); pass the label the table uses for totals, "
            "or total_label=None when it has no total rows"
        )
    cell = codes.group(key_columns)
    duplicated = np.bincount(cell, minlength=len(keys))[cell] > 1 if len(keys) else cell > 0
    if duplicated.any():
        raise DisclosureError(
            f"the count rows are not unique on their keys ({', '.join(map(repr, key_columns))}): "
            f"{duplicated.sum():,} rows share keys with another, so secondary suppression cannot "
            "tell which cells add up; protect one table at a time or pass secondary=False"
        )
    return keys, dims, relations


def _hierarchy_relations(column: str, relation: Any, values: pd.Series) -> list[tuple[Any, Any]]:
    if not isinstance(relation, Mapping) or not relation:
        raise DisclosureError(
            f"hierarchy[{column!r}] must map a total category to its components, e.g. "
            "{'need': ['council_funded', 'self_funded', 'unpaid_only', 'unmet']}"
        )
    present = set(pd.unique(values.dropna()))
    out = []
    for total, components in relation.items():
        if isinstance(components, str) or not isinstance(components, Sequence | pd.Index | np.ndarray):
            raise DisclosureError(
                f"hierarchy[{column!r}][{total!r}] must be a list of component categories; got {components!r}"
            )
        components = list(components)
        if not components or total in components:
            raise DisclosureError(
                f"hierarchy[{column!r}][{total!r}] must list at least one component other than "
                f"the total itself; got {components!r}"
            )
        if not ({total, *components} & present):
            raise DisclosureError(
                f"no category of hierarchy[{column!r}] ({total!r} and its components) is in "
                f"column {column!r}; check the labels"
            )
        # An absent total is taken as published elsewhere; absent components
        # simply have no cells here.
        out.append((total if total in present else None, components))
    return out


class _Links:
    """Rows whose publication would give away a suppressed count.

    A rate per 1,000 times the (public) population, or a share times its
    count, is the count again: the other measures of a suppressed count (same
    keys) go with it, and so do the shares whose denominator count
    (:data:`DENOMINATORS`) is suppressed.
    """

    def __init__(self, table: pd.DataFrame, codes: KeyCodes, is_count: np.ndarray) -> None:
        self.groups: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # (codes, source, target)
        if "measure" not in table.columns or not len(table):
            return
        columns = list(codes.codes)
        everything = np.ones(len(table), dtype=bool)
        same_cell = codes.group([c for c in columns if c != "measure"])
        self.groups.append((same_cell, is_count, everything))
        if "quantity" in columns:
            same_group = codes.group([c for c in columns if c not in ("measure", "quantity")])
            for measure, quantity in DENOMINATORS.items():
                source = is_count & table["quantity"].isin([quantity]).to_numpy()
                target = table["measure"].isin([measure]).to_numpy()
                if source.any() and target.any():
                    self.groups.append((same_group, source, target))

    def __call__(self, suppressed: np.ndarray) -> np.ndarray:
        linked = np.zeros(suppressed.size, dtype=bool)
        for codes, source, target in self.groups:
            hit = np.bincount(codes[source & suppressed], minlength=int(codes.max()) + 1) > 0
            linked |= target & hit[codes]
        return linked & ~suppressed


# -- the verb ------------------------------------------------------------------
def protect(
    table: pd.DataFrame,
    *,
    min_count: float | None = 10,
    rounding: int | None = 5,
    flag_cv: float | None = 0.2,
    suppress_cv: float | None = 0.5,
    min_n: int | None = None,
    secondary: bool = True,
    count_measures: str | Sequence[str] = ("count",),
    by: str | Sequence[str] | None = None,
    total_label: Hashable | None = None,
    hierarchy: Mapping[str, Mapping[Hashable, Sequence[Any]]] | None = None,
    decimals: int | None = None,
    min_draws: int | None = MIN_DRAWS,
) -> pd.DataFrame:
    """Suppress, round and flag a table of estimates for publication.

    Parameters
    ----------
    table : DataFrame
        A result table: ``[by...], estimate, se, ci_lower, ci_upper, cv, n``
        (``Estimates.to_frame()``), optionally with ``quantity``, ``measure``
        and ``flag`` (domain tables). A table that went through ``protect``
        before may be protected again (see Notes).
    min_count : float or None, default 10
        Counts below this (before or after rounding) are suppressed.
    rounding : int or None, default 5
        Base that published counts (estimate and SE) are rounded to, halves
        away from zero; interval bounds are rounded outwards. None: no rounding.
    flag_cv : float or None, default 0.2
        Estimates with a CV above this are flagged ``low_reliability``.
    suppress_cv : float or None, default 0.5
        Estimates with a CV above this are suppressed.
    min_n : int or None
        Estimates from fewer respondents than this are suppressed.
    secondary : bool, default True
        Add secondary suppressions so that no suppressed count can be
        recovered from a total by subtraction, and suppress the rates and
        shares that would reveal a suppressed count.
    count_measures : str or sequence of str, default ("count",)
        Values of the ``measure`` column whose rows are counts of people.
    by : str, sequence of str or None
        Additive dimensions of the table (the counts of their categories add
        up to a total). Default: every key column other than ``quantity`` and
        ``measure`` that is not a float column and not a relabelling of an
        earlier one (``area_name`` of ``area_code``).
    total_label : hashable, optional
        Category that holds totals in the additive dimensions (e.g.
        ``"Total"``). Total rows are cells of their lines like any other, but
        are the last choice for a secondary suppression.
    hierarchy : mapping, optional
        Further additive relations within a column, ``{column: {total:
        [components]}}``, e.g. ``{"quantity": {"need": ["council_funded",
        "self_funded", "unpaid_only", "unmet"]}}``. A column named here uses
        these relations instead of "all categories add up" (give subtotals
        this way).
    decimals : int or None
        Round estimates, SEs and (outwards) intervals of the rows that are
        not counts to this many decimal places. Default: not rounded.
    min_draws : int or None, default 100
        A draw-based table (``attrs["draws"]``, as ``DrawEstimates.to_frame()``
        sets) summarising fewer draws is refused: its SEs and CVs, which the
        flags and suppression rest on, need a spread (one draw gives se = 0 and
        nothing is ever flagged). None: no check.

    Returns
    -------
    DataFrame
        The same rows in the same order, with ``flag`` (``ok``,
        ``low_reliability``, ``suppressed``) and ``reason`` (why: e.g.
        ``"count < 10"``, ``"n < 30"``, ``"cv > 0.5"``, ``"secondary"``,
        several joined by ``"; "``; ``""`` for ``ok``). Suppressed rows keep
        their keys; ``estimate``, ``se``, ``ci_lower``, ``ci_upper``, ``cv``,
        ``n`` (and ``deff``) are missing. ``attrs["disclosure"]`` records the
        rules and what they did; :func:`describe_protection` words it.

    Warns
    -----
    UnmetneedWarning
        Suppressed cells in linked groups too large for the exact audit.

    Raises
    ------
    MissingColumnError
        A result column, a ``by`` or a ``hierarchy`` column is not in the table.
    DisclosureError
        A threshold is negative or not a number, ``rounding`` is not a
        positive integer; ``flag`` has values other than ``ok``,
        ``low_reliability``, ``suppressed``; an estimate is missing in a row
        not flagged ``suppressed``; a non-zero estimate has no CV; ``min_n``
        is given and ``n`` is missing; the table has neither a ``measure``
        column nor ``attrs["statistic"]``; count rows repeat their keys.

    Notes
    -----
    **Which rows are counts.** With a ``measure`` column, the rows whose
    measure is in ``count_measures``. Without one, every row when the
    table's ``attrs["statistic"]`` is ``"total"`` (``SurveyDesign.total``)
    and none when it is ``"mean"``, ``"ratio"`` or ``"proportion"``;
    ``min_count``, ``rounding`` and secondary suppression apply to count
    rows only. The CV and ``min_n`` rules apply to every row.

    **Primary suppression**: a count :math:`\\hat t < m` (``min_count``;
    also when the rounded count is below it), respondents :math:`n <`
    ``min_n``, or :math:`\\mathrm{cv} >` ``suppress_cv``. **Flags**:
    ``suppressed``; else ``low_reliability`` when :math:`\\mathrm{cv} >`
    ``flag_cv``; else ``ok``. A missing CV (a zero estimate) breaks no CV rule.

    **Secondary suppression** (``secondary=True``): a line is the set of
    count cells that share every key but one additive dimension, or a
    ``hierarchy`` relation; its total is taken as published (a total row or
    another table). No line may hold exactly one suppressed cell: such a
    line gets its smallest published non-total cell suppressed (preferring
    cells that repair another such line), over all dimensions in turn until
    nothing changes. That rule is necessary but not sufficient, so an exact
    linear audit follows: a suppressed cell that all the lines together
    still determine (:math:`e_i` in the row space of the constraint matrix)
    gets another partner, and both steps repeat until no suppressed cell is
    determined. Then the rates and shares of a suppressed count (same keys,
    other measures) and the ``share_of_need`` rows whose denominator (the
    ``need`` count) is suppressed are suppressed too, as they would give the
    count back. ``attrs["disclosure"]`` counts what could not be protected:
    ``unpaired_lines`` (a line of one cell equals its published total),
    ``recoverable_cells`` and ``unaudited_cells`` (in linked groups too
    large for the exact audit, with an :class:`UnmetneedWarning`).

    **Rounding** of published count rows: estimate and SE to the nearest
    multiple of ``rounding`` (halves away from zero), ``ci_lower`` down and
    ``ci_upper`` up to a multiple, so the interval still contains the
    estimate. The CV stays unrounded (it is the quality measure the flags
    use). Each count is rounded on its own (no controlled rounding), so
    rounded cells need not add up to their rounded totals.

    **Re-protection** is idempotent: rows flagged ``suppressed`` stay
    suppressed with their reason (rows flagged ``low_reliability`` are
    flagged afresh by ``flag_cv``); published counts are already multiples
    of the base and at least ``min_count``, so ``protect(protect(t))``
    equals ``protect(t)`` with the same options.

    Examples
    --------
    A design-based table of totals (``attrs["statistic"] == "total"``, so
    every row is a count):

    >>> import unmetneed as um
    >>> from unmetneed.disclosure import protect
    >>> survey = um.datasets.load_example_survey()
    >>> design = um.SurveyDesign(survey, weights="weight", strata="stratum",
    ...                          clusters="psu", nest=True)
    >>> table = design.total("need", by=["area_code", "age_band"]).to_frame()
    >>> out = protect(table, min_n=10)
    >>> len(out) == len(table)
    True
    >>> out["flag"].value_counts().sort_index()
    flag
    low_reliability    45
    ok                  2
    suppressed         33
    Name: count, dtype: int64
    >>> out.loc[out["area_code"] == "E06000001",
    ...         ["age_band", "estimate", "ci_lower", "flag", "reason"]]  # doctest: +NORMALIZE_WHITESPACE
      age_band  estimate  ci_lower             flag            reason
    0    18-24       NaN       NaN       suppressed        count < 10
    1    25-34     555.0      15.0  low_reliability          cv > 0.2
    2    35-44       NaN       NaN       suppressed          cv > 0.5
    3    45-54    1405.0     545.0  low_reliability          cv > 0.2
    4    55-64       NaN       NaN       suppressed          cv > 0.5
    5    65-74    2065.0    1390.0               ok
    6    75-84    1375.0     455.0  low_reliability          cv > 0.2
    7      85+       NaN       NaN       suppressed  n < 10; cv > 0.5

    Secondary suppression in a table with its own totals: area A's count of
    women is small; the men of A (and so the women and men of B) go with it,
    or A's total would give it away.

    >>> import pandas as pd
    >>> counts = pd.DataFrame({"area_code": ["A", "A", "A", "B", "B", "B"],
    ...                        "sex": ["Female", "Male", "Total"] * 2,
    ...                        "measure": "count",
    ...                        "estimate": [4.0, 120.0, 124.0, 60.0, 61.0, 121.0]})
    >>> counts = counts.assign(se=counts["estimate"] / 10, cv=0.1, n=50,
    ...                        ci_lower=counts["estimate"] * 0.8,
    ...                        ci_upper=counts["estimate"] * 1.2)
    >>> safe = protect(counts, by=["area_code", "sex"], total_label="Total")
    >>> safe[["area_code", "sex", "estimate", "flag", "reason"]]  # doctest: +NORMALIZE_WHITESPACE
      area_code     sex  estimate        flag      reason
    0         A  Female       NaN  suppressed  count < 10
    1         A    Male       NaN  suppressed   secondary
    2         A   Total     125.0          ok
    3         B  Female       NaN  suppressed   secondary
    4         B    Male       NaN  suppressed   secondary
    5         B   Total     120.0          ok
    >>> safe.attrs["disclosure"]["secondary_suppressed"]
    3
    """
    (min_count, rounding, flag_cv, suppress_cv, min_n, decimals, count_measures) = _check_options(
        min_count, rounding, flag_cv, suppress_cv, min_n, secondary, decimals, count_measures
    )
    min_draws = _check_table(table, min_draws)
    values = {c: _numeric(table, c) for c in _BLANKED if c in table.columns}
    prior, reason = _prior_suppression(table)
    _check_values(table, values, prior, min_n)
    is_count = _count_rows(table, count_measures)
    estimate, cv, n = values["estimate"], values["cv"], values["n"]

    # 1. primary suppression: small counts, few respondents, large CVs.
    primary, primary_reason = _primary(
        estimate, cv, n, is_count, ~prior, min_count, rounding, suppress_cv, min_n
    )
    reason = np.where(primary, primary_reason, reason)
    suppressed = prior | primary

    # 2. secondary suppression: no suppressed count recoverable from the published totals.
    dims: list[str] = []
    relations: dict[str, list[tuple[Any, Any]]] = {}
    report = SecondaryReport(0, 0, 0)
    if secondary:
        suppressed, dims, relations, report = _secondary(
            table, is_count, suppressed, estimate, by, total_label, hierarchy
        )
        reason = np.where(suppressed & ~prior & ~primary, SECONDARY, reason)

    # 3. flags, then 4. rounding and blanking of what is published.
    low = ~suppressed & (cv > flag_cv) if flag_cv is not None else np.zeros(len(table), bool)
    reason = np.where(low, f"cv > {flag_cv:g}" if flag_cv is not None else "", reason)
    out = _published(table, values, suppressed, is_count, rounding, decimals)
    out["flag"] = np.where(suppressed, "suppressed", np.where(low, "low_reliability", "ok"))
    out["reason"] = reason.astype(str)
    out.attrs = copy.deepcopy(table.attrs)
    out.attrs["disclosure"] = {
        "function": "unmetneed.disclosure.protect",
        "version": package_version(),
        "min_count": min_count,
        "rounding": rounding,
        "rounding_rule": "half away from zero; interval bounds outwards",
        "decimals": decimals,
        "flag_cv": flag_cv,
        "suppress_cv": suppress_cv,
        "min_n": min_n,
        "min_draws": min_draws,
        "secondary": secondary,
        "count_measures": list(count_measures),
        "by": list(dims),
        "total_label": total_label,
        "hierarchy": {
            c: [(t, list(comp) if comp is not None else None) for t, comp in r]
            for c, r in relations.items()
            if hierarchy and c in hierarchy
        },
        "rows": len(out),
        "count_rows": int(is_count.sum()),
        "suppressed": int(suppressed.sum()),
        "primary_suppressed": int((suppressed & (out["reason"] != SECONDARY).to_numpy()).sum()),
        "secondary_suppressed": int((out["reason"] == SECONDARY).sum()),
        "low_reliability": int(low.sum()),
        "reasons": _reason_counts(out["reason"][suppressed]),
        "audit": "exact linear recovery from totals" if secondary else None,
        "unpaired_lines": report.unpaired_lines,
        "recoverable_cells": report.recoverable_cells,
        "unaudited_cells": report.unaudited_cells,
    }
    return out


def _check_table(table: Any, min_draws: int | None) -> int | None:
    """A DataFrame of results, from enough draws when draw-based; returns ``min_draws`` checked."""
    if not isinstance(table, pd.DataFrame):
        raise DisclosureError(
            f"protect() takes a pandas DataFrame of estimates (e.g. Estimates.to_frame()); "
            f"got {type(table).__name__}"
        )
    min_draws = _threshold(min_draws, "min_draws", integer=True)
    draws: Any = table.attrs.get("draws")
    if min_draws is not None and _is_int(draws) and draws < min_draws:
        raise DisclosureError(
            f"the table summarises {draws} draw(s); published tables need at least {min_draws} "
            "(its SEs and CVs, which flag and suppress estimates, need a spread of draws: one "
            "draw gives se = 0). Re-run with draws >= "
            f"{min_draws}, or pass min_draws=None for a table that is not for publication"
        )
    require_columns(table, RESULT_COLUMNS, "result")
    return min_draws


def _secondary(
    table: pd.DataFrame,
    is_count: np.ndarray,
    suppressed: np.ndarray,
    estimate: np.ndarray,
    by: str | Sequence[str] | None,
    total_label: Hashable | None,
    hierarchy: Mapping[str, Mapping[Hashable, Sequence[Any]]] | None,
) -> tuple[np.ndarray, list[str], dict[str, list[tuple[Any, Any]]], SecondaryReport]:
    """Suppressions extended until no line gives a suppressed count back, with linked rows."""
    suppressed = suppressed.copy()
    codes = KeyCodes(table[[c for c in table.columns if c not in _NOT_KEYS]])
    count_codes = codes.subset(is_count)
    keys, dims, relations = _structure(table, count_codes, is_count, by, total_label, hierarchy)
    lines = build_lines(keys, count_codes, dims, relations)
    links = _Links(table, codes, is_count)
    count_at = np.flatnonzero(is_count)
    while True:
        extended, report = secondary_suppression(lines, suppressed[count_at], estimate[count_at])
        suppressed[count_at] = extended
        linked = links(suppressed)
        suppressed |= linked
        if not linked[count_at].any():  # a linked count may need partners of its own
            return suppressed, dims, relations, report


def _published(
    table: pd.DataFrame,
    values: dict[str, np.ndarray],
    suppressed: np.ndarray,
    is_count: np.ndarray,
    rounding: int | None,
    decimals: int | None,
) -> pd.DataFrame:
    """A copy of the table with published values rounded and suppressed ones blanked."""
    out = table.copy()
    published = ~suppressed
    for column, column_values in values.items():
        new = column_values.copy()
        if column in ("estimate", "se", "ci_lower", "ci_upper"):
            outwards: dict[str, Direction] = {"ci_lower": "down", "ci_upper": "up"}
            how = outwards.get(column, "nearest")
            if rounding is not None:
                at = published & is_count
                new[at] = round_to_base(new[at], rounding, how)
            if decimals is not None:
                at = published & ~is_count
                new[at] = round_to_decimals(new[at], decimals, how)
        new[suppressed] = np.nan
        out[column] = _as_column(new, table[column])
    return out


def _as_column(values: np.ndarray, original: pd.Series) -> Any:
    """Float values back as a column: integer columns become nullable ``Int64``."""
    dtype = original.dtype
    if pd.api.types.is_integer_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype):
        finite = values[np.isfinite(values)]
        if np.array_equal(finite, np.round(finite)):
            return pd.array(values, dtype="Int64")
    return values


def _reason_counts(reason: pd.Series) -> dict[str, int]:
    """How many suppressed rows each rule (or reason given in the input) accounts for."""
    parts = reason[reason != ""].str.split("; ").explode()
    counts = {str(k): int(v) for k, v in parts.value_counts().items()}
    rank = {"count": 0, "n": 1, "cv": 2, SECONDARY: 4}
    return dict(sorted(counts.items(), key=lambda kv: (rank.get(kv[0].split(" ")[0], 3), kv[0])))
