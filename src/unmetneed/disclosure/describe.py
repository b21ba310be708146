"""``describe_protection``: the disclosure control of a table, in words for a report."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from unmetneed.errors import DisclosureError

__all__ = ["describe_protection"]


def _percent(value: float) -> str:
    return f"{value * 100:g}%"


def _cells(k: int) -> str:
    return f"{k:,} cell" + ("" if k == 1 else "s")


def _join(items: list[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def describe_protection(table: pd.DataFrame) -> str:
    """A paragraph saying which disclosure control a protected table went through.

    Parameters
    ----------
    table : DataFrame
        A table returned by :func:`protect` (its ``attrs["disclosure"]``).

    Returns
    -------
    str
        The rules, their thresholds and how many cells each affected, for the
        notes of a published table.

    Raises
    ------
    DisclosureError
        The table has no ``attrs["disclosure"]``: it has not been protected
        (or an operation dropped its ``attrs``).

    Examples
    --------
    >>> import unmetneed as um
    >>> from unmetneed.disclosure import describe_protection, protect
    >>> survey = um.datasets.load_example_survey()
    >>> design = um.SurveyDesign(survey, weights="weight", strata="stratum",
    ...                          clusters="psu", nest=True)
    >>> table = protect(design.total("need", by="area_code").to_frame())
    >>> print(describe_protection(table))  # doctest: +NORMALIZE_WHITESPACE, +ELLIPSIS
    Disclosure control (unmetneed.disclosure.protect, unmetneed ...): counts below 10 and
    estimates with a coefficient of variation (CV) above 50% were suppressed; no cell met
    these rules. Secondary suppression: in every line of counts that adds up to a total
    (along area_code; totals are taken as published, in the table or elsewhere) no
    suppressed value can be recovered by subtraction, nor solved exactly from all the totals
    together (an exact linear audit). Published counts, and their standard errors, are rounded to
    the nearest 5 (halves away from zero); confidence interval bounds are rounded outwards
    to multiples of 5 so they still contain the estimate. Estimates that are not counts are
    not rounded. Estimates with a CV above 20% are flagged low reliability (use with
    caution): none of the 10 rows.
    """
    info = table.attrs.get("disclosure") if isinstance(table, pd.DataFrame) else None
    if not isinstance(info, Mapping):
        raise DisclosureError(
            "the table carries no attrs['disclosure']: pass it through "
            "unmetneed.disclosure.protect() first (some pandas operations drop attrs; "
            "describe the table protect() returned)"
        )
    return " ".join(_sentences(info))


def _sentences(info: Mapping[str, Any]) -> list[str]:
    out: list[str] = []
    rules = []
    if info["min_count"] is not None:
        rules.append(f"counts below {info['min_count']:g}")
    if info["min_n"] is not None:
        rules.append(f"estimates based on fewer than {info['min_n']:,} respondents")
    if info["suppress_cv"] is not None:
        rules.append(f"estimates with a coefficient of variation (CV) above {_percent(info['suppress_cv'])}")
    reasons = dict(info.get("reasons", {}))
    reasons.pop("secondary", None)
    primary = info["primary_suppressed"]
    done = (
        f"{_cells(primary)} in all ({_join([f'{k}: {v:,}' for k, v in reasons.items()])})"
        if primary
        else "no cell met these rules"
    )
    head = f"Disclosure control ({info['function']}, unmetneed {info['version']}): "
    if rules:
        out.append(head + f"{_join(rules)} were suppressed; {done}.")
    else:
        out.append(head + ("no primary suppression rule was applied" + (f"; {done}." if primary else ".")))
    if info["secondary"] and not info["by"]:
        out.append("Secondary suppression: the table has no additive dimension, so none was needed.")
    elif info["secondary"]:
        extra = info["secondary_suppressed"]
        text = (
            f"Secondary suppression: in every line of counts that adds up to a total (along "
            f"{', '.join(info['by'])}; totals are taken as published, in the table or "
            "elsewhere) no suppressed value can be recovered by subtraction, nor solved "
            "exactly from all the totals together (an exact linear audit)"
        )
        if extra:
            text += (
                f"; {_cells(extra)} {'was' if extra == 1 else 'were'} suppressed for this "
                "(with the rates and shares that would give a suppressed count back)"
            )
        out.append(text + ".")
        if info.get("unpaired_lines"):
            out.append(
                f"{info['unpaired_lines']:,} line(s) have a single cell, equal to "
                "their total, which no suppression in this table can hide."
            )
        if info.get("recoverable_cells"):
            out.append(
                f"{_cells(info['recoverable_cells'])} could not be protected from "
                "exact recovery: every other cell of their lines is already suppressed."
            )
        if info.get("unaudited_cells"):
            out.append(
                f"{_cells(info['unaudited_cells'])} in very large linked groups were "
                "checked by the line rule only, not by the exact audit."
            )
    else:
        out.append("No secondary suppression was applied: suppressed counts may be recoverable from totals.")
    base, decimals = info["rounding"], info["decimals"]
    out.append(
        "Counts are not rounded."
        if base is None
        else (
            f"Published counts, and their standard errors, are rounded to the nearest {base} (halves "
            f"away from zero); confidence interval bounds are rounded outwards to multiples of {base} "
            "so they still contain the estimate."
        )
    )
    out.append(
        "Estimates that are not counts are not rounded."
        if decimals is None
        else f"Estimates that are not counts are rounded to {decimals} decimal places, their intervals "
        "outwards."
    )
    if info["flag_cv"] is not None:
        low = info["low_reliability"]
        out.append(
            f"Estimates with a CV above {_percent(info['flag_cv'])} are flagged low "
            f"reliability (use with caution): "
            f"{f'{low:,}' if low else 'none'} of the {info['rows']:,} "
            f"row{'' if info['rows'] == 1 else 's'}."
        )
    return out
