"""Reading meaning out of ONS labels: numeric intervals, variable names, table ids.

ONS writes ranges into category labels ("Aged 10 to 15 years", "Aged 85 years
and over", "Provides 19 hours or less unpaid care a week"). Parsing them into
closed integer intervals ``[lo, hi]`` (``hi`` may be ``inf``) lets the readers
recognise which categories are unions of others, and lets the age map place any
age label in a band.
"""

from __future__ import annotations

import math
import re
from pathlib import PurePath

__all__ = [
    "geography_from_name",
    "is_total_label",
    "parse_interval",
    "table_id_from_name",
    "variable_name",
]

_UNIT = r"(?:\s+(?:years?|yrs?|hours?))?"
_UNDER = re.compile(r"\bunder\s+(\d+)" + _UNIT + r"\b", re.IGNORECASE)
_AT_MOST = re.compile(r"\b(\d+)" + _UNIT + r"\s+(?:and|or)\s+(?:under|less|fewer|younger)\b", re.IGNORECASE)
_AT_LEAST = re.compile(r"\b(\d+)" + _UNIT + r"\s+(?:and|or)\s+(?:over|more|older|above)\b", re.IGNORECASE)
_RANGE = re.compile(r"\b(\d+)\s*(?:to|-|–)\s*(\d+)" + _UNIT + r"\b", re.IGNORECASE)
_SINGLE = re.compile(r"\b(\d+)\s+(?:years?|yrs?|hours?)\b", re.IGNORECASE)
_BARE_RANGE = re.compile(r"^\s*(\d+)\s*[-–]\s*(\d+)\s*$")
_BARE_OPEN = re.compile(r"^\s*(\d+)\s*\+\s*$")
_BARE_NUMBER = re.compile(r"^\s*(\d+)\s*$")


def parse_interval(label: object) -> tuple[float, float] | None:
    """The closed integer interval a category label stands for, or None.

    Parameters
    ----------
    label : object
        A category label such as ``"Aged 10 to 15 years"``, ``"Aged under 1
        year"``, ``"Aged 85 years and over"``, ``"Provides 9 hours or less unpaid
        care a week"``, ``"18-24"``, ``"85+"`` or ``"37"``.

    Returns
    -------
    tuple of float or None
        ``(lo, hi)`` with ``hi = inf`` for open-ended categories, or None when
        the label holds no recognisable range (``"Provides no unpaid care"``).

    Examples
    --------
    >>> parse_interval("Aged 10 to 15 years")
    (10.0, 15.0)
    >>> parse_interval("Aged under 1 year")
    (0.0, 0.0)
    >>> parse_interval("Aged 85 years and over")
    (85.0, inf)
    >>> parse_interval("Provides no unpaid care") is None
    True
    """
    if not isinstance(label, str):
        return None
    text = label.strip()
    for pattern, kind in (
        (_BARE_RANGE, "range"),
        (_BARE_OPEN, "at_least"),
        (_BARE_NUMBER, "single"),
        (_UNDER, "under"),
        (_AT_MOST, "at_most"),
        (_AT_LEAST, "at_least"),
        (_RANGE, "range"),
        (_SINGLE, "single"),
    ):
        match = pattern.search(text)
        if match is None:
            continue
        first = float(match.group(1))
        if kind == "range":
            second = float(match.group(2))
            return (first, second) if first <= second else None
        if kind == "under":
            return (0.0, first - 1.0) if first >= 1 else None
        if kind == "at_most":
            return (0.0, first)
        if kind == "at_least":
            return (first, math.inf)
        return (first, first)
    return None


_PARENTHESES = re.compile(r"\([^)]*\)")
_NON_WORD = re.compile(r"[^0-9a-z]+")
# Header names whose snake_case differs from the library's standard names.
_ALIASES = {
    "provision_of_unpaid_care": "unpaid_care",
    "disability_equality_act": "disability",
}


def variable_name(header: str) -> str:
    """Snake-case column name for an ONS variable header.

    Parenthesised qualifiers such as ``(20 categories)`` or ``(B)`` are dropped.

    Examples
    --------
    >>> variable_name("Ethnic group (20 categories)")
    'ethnic_group'
    >>> variable_name("Age")
    'age'
    >>> variable_name("Provision of unpaid care")
    'unpaid_care'
    """
    text = _PARENTHESES.sub(" ", header).lower()
    name = _NON_WORD.sub("_", text).strip("_")
    return _ALIASES.get(name, name) or "category"


_TABLE_ID = re.compile(r"(?<![a-z0-9])(ts|rm|st|ks|qs|dc)(\d{3,4})(?![0-9])", re.IGNORECASE)


def table_id_from_name(path: str | PurePath) -> str | None:
    """Census table id (``ts007``) read from a file name, or None.

    Examples
    --------
    >>> table_id_from_name("census2021-ts007-ltla.csv")
    'ts007'
    >>> table_id_from_name("TS021-2021-3-filtered-2024-03-05.csv")
    'ts021'
    """
    match = _TABLE_ID.search(PurePath(str(path)).name)
    if match is None:
        return None
    return f"{match.group(1).lower()}{match.group(2)}"


_GEOGRAPHY_SUFFIX = {
    "ltla": "Lower tier local authorities",
    "utla": "Upper tier local authorities",
    "rgn": "Regions",
    "ctry": "Countries",
    "msoa": "Middle layer Super Output Areas",
    "lsoa": "Lower layer Super Output Areas",
    "oa": "Output Areas",
}
_GEOGRAPHY = re.compile(r"-(" + "|".join(_GEOGRAPHY_SUFFIX) + r")\.csv$", re.IGNORECASE)


def geography_from_name(path: str | PurePath) -> str | None:
    """ONS geography label implied by a Nomis bulk file name, or None.

    Examples
    --------
    >>> geography_from_name("census2021-ts007-utla.csv")
    'Upper tier local authorities'
    """
    match = _GEOGRAPHY.search(PurePath(str(path)).name)
    if match is None:
        return None
    return _GEOGRAPHY_SUFFIX[match.group(1).lower()]


_TOTAL = re.compile(r"^(?:total\b|all\s)", re.IGNORECASE)


def is_total_label(label: str) -> bool:
    """True for ONS total labels: ``Total``, ``Total: All usual residents``, ``All persons``."""
    return bool(_TOTAL.match(label.strip()))
