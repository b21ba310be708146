"""Read Census 2021 TS039 (provision of unpaid care) for MSOAs, optionally by council.

The MSOA file circulated with renamed columns (``msoa21cd``, ``msoa21nm``,
``total``, ``provides_no_unpaid_care``, ``provides_9_hours_or_less_unpaid_care_a_week``,
...) is read into the library's tidy form: ``area_code``, ``area_name``,
``unpaid_care`` (the TS039 labels, an ordered Categorical) and ``count``.
Columns named with ONS's own labels ("Provides no unpaid care", or the Nomis
bulk form "Provision of unpaid care: ...; measures: Value") are recognised too.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Literal, get_args

import numpy as np
import pandas as pd

from unmetneed._validate import check_choice
from unmetneed.errors import ReadError
from unmetneed.io._common import (
    as_path,
    parse_counts,
    preview,
    read_csv_checked,
    sha256_of,
)

__all__ = ["UNPAID_CARE_BANDS", "read_unpaid_care_msoa"]

#: The six TS039 categories, in ONS order (the labels of ``unpaid_care`` everywhere).
UNPAID_CARE_BANDS: tuple[str, ...] = (
    "Provides no unpaid care",
    "Provides 9 hours or less unpaid care a week",
    "Provides 10 to 19 hours unpaid care a week",
    "Provides 20 to 34 hours unpaid care a week",
    "Provides 35 to 49 hours unpaid care a week",
    "Provides 50 or more hours unpaid care a week",
)
Target = Literal["msoa21", "lad22"]
TARGETS: tuple[str, ...] = get_args(Target)
_TOTAL_LABELS = ("total", "total_all_usual_residents_aged_5_and_over", "all_usual_residents_aged_5_and_over")
_CODE_COLUMNS = ("msoa21cd", "geography_code", "msoa_code", "msoa21_code")
_NAME_COLUMNS = ("msoa21nm", "geography", "msoa_name", "msoa21_name")
_LOOKUP_FROM, _LOOKUP_TO, _LOOKUP_NAME = "MSOA21CD", "LAD22CD", "LAD22NM"


def _normalise(column: str) -> str:
    """``"Provision of unpaid care: Provides no unpaid care; measures: Value"`` -> ``provides_no_unpaid_care``."""
    text = column.strip().lower()
    text = re.sub(r";\s*measures:\s*value$", "", text)
    text = re.sub(r"^provision of unpaid care:\s*", "", text)
    return re.sub(r"[^a-z0-9]+", "_", text).strip("_")


_BAND_KEYS = {_normalise(label): label for label in UNPAID_CARE_BANDS}


def _find(columns: dict[str, str], candidates: tuple[str, ...]) -> str | None:
    return next((columns[c] for c in candidates if c in columns), None)


def _counts(frame: pd.DataFrame, column: str, codes: pd.Series, source: str) -> np.ndarray:
    values, problems = parse_counts(frame[column])
    bad = np.logical_or.reduce(list(problems.values()))
    if bad.any():
        rows = np.flatnonzero(bad)
        raw = [frame[column].iloc[i] for i in rows[:5]]
        shown = [
            f"{codes.iloc[i]}: {(v.item() if isinstance(v, np.generic) else v)!r}" for i, v in zip(rows, raw)
        ]
        raise ReadError(
            f"{source}: column {column!r} has {len(rows)} value(s) that are not non-negative "
            f"whole-number counts, e.g. {'; '.join(shown)}; census counts must be integers >= 0"
        )
    return values.astype(np.int64)


def _read_lookup(lookup: str | os.PathLike[str] | pd.DataFrame) -> tuple[pd.DataFrame, str | None]:
    """MSOA21 -> LAD22 pairs (one LAD per MSOA), and the file's SHA-256."""
    if isinstance(lookup, pd.DataFrame):
        table, digest = lookup.copy(), None
    else:
        path = as_path(lookup)
        table = read_csv_checked(path)
        table.columns = [str(c).lstrip("\ufeff").strip() for c in table.columns]
        digest = sha256_of(path)
    missing = [c for c in (_LOOKUP_FROM, _LOOKUP_TO) if c not in table.columns]
    if missing:
        raise ReadError(
            f"the lookup lacks column(s) {missing} (columns seen {preview(list(table.columns), 9)}); "
            "expected the ONS MSOA21 -> LAD22 lookup with MSOA21CD and LAD22CD (and LAD22NM)"
        )
    columns = [_LOOKUP_FROM, _LOOKUP_TO] + ([_LOOKUP_NAME] if _LOOKUP_NAME in table.columns else [])
    pairs = (
        table[columns].astype(str).apply(lambda s: s.str.strip()).drop_duplicates([_LOOKUP_FROM, _LOOKUP_TO])
    )
    split = pairs[_LOOKUP_FROM][pairs[_LOOKUP_FROM].duplicated()].unique()
    if len(split):
        raise ReadError(
            f"the lookup maps {len(split)} MSOA(s) to more than one LAD22, e.g. "
            f"{preview(list(split), 5)}; counts cannot be split between councils without weights"
        )
    return pairs, digest


def read_unpaid_care_msoa(
    path: str | os.PathLike[str],
    lookup: str | os.PathLike[str] | pd.DataFrame | None = None,
    to: Target | None = None,
) -> pd.DataFrame:
    r"""Census 2021 TS039 *provision of unpaid care* for MSOAs, or summed to LAD22.

    Parameters
    ----------
    path : str or path-like
        The MSOA CSV: an MSOA code column (``msoa21cd`` or ``geography code``),
        optionally a name column (``msoa21nm`` / ``geography``) and ``total``,
        and one count column per TS039 category, named either as the renamed
        file (``provides_no_unpaid_care``, ...) or with ONS's labels.
    lookup : str, path-like or DataFrame, optional
        The ONS MSOA21 -> LAD22 lookup (columns ``MSOA21CD``, ``LAD22CD``,
        optionally ``LAD22NM``; e.g. ``MSOA11_to_MSOA21_to_LAD22_EW.csv``).
        Rows repeated for 2011 MSOAs are collapsed; an MSOA mapped to two
        LADs is an error.
    to : {"msoa21", "lad22"}, optional
        Geography of the result. Default ``"lad22"`` when a lookup is given,
        else ``"msoa21"``; ``"lad22"`` without a lookup is an error.

    Returns
    -------
    DataFrame
        ``area_code, area_name, unpaid_care, count``: one row per area and
        TS039 category (the six categories in ONS order, an ordered
        Categorical with the labels of :data:`UNPAID_CARE_BANDS`, the same as
        ``eng.census["unpaid_care"]``). ``attrs`` records the source,
        SHA-256s, ``table_id`` ``"ts039"``, ``geography`` and ``base``.

    Raises
    ------
    ReadError
        A missing code or category column (named), a count that is not a
        non-negative integer (the MSOA and value named), a repeated MSOA, a
        ``total`` that differs from the sum of its categories, an MSOA
        missing from the lookup, or ``to="lad22"`` without a lookup.

    Notes
    -----
    **Base**: usual residents aged 5 and over (TS039's population), not adults
    as in the synthetic England's census table, which counts adults only.
    **Geography**: MSOAs (2021) or lower-tier local authorities (LAD22), not
    the 2021 upper-tier councils with adult social care duties. Counties (E10)
    need a LAD22 -> upper-tier lookup, which is not among the reference data,
    so none is provided here: sum the LAD22 table with your own lookup.
    Summed over England's 6,856 MSOAs: 4,678,238 unpaid carers out of
    53,413,057 residents aged 5+ (8.76%). Counts are perturbed by ONS (cell
    key perturbation), so they differ slightly from other tables.

    References
    ----------
    ONS (2023). *Provision of unpaid care* (TS039), Census 2021 variable
    definition: "someone who provides unpaid care ... looks after, or gives any
    help or support to, anyone who has long-term physical or mental health
    conditions or illnesses, or problems related to old age".

    Examples
    --------
    >>> import tempfile, pathlib
    >>> import unmetneed as um
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "ts039.csv").write_text(
    ...     "msoa21nm,msoa21cd,total,provides_no_unpaid_care,"
    ...     "provides_9_hours_or_less_unpaid_care_a_week,provides_10_to_19_hours_unpaid_care_a_week,"
    ...     "provides_20_to_34_hours_unpaid_care_a_week,provides_35_to_49_hours_unpaid_care_a_week,"
    ...     "provides_50_or_more_hours_unpaid_care_a_week\n"
    ...     "Town 001,E02000001,100,90,4,2,1,1,2\nTown 002,E02000002,50,45,2,1,1,0,1\n")
    >>> _ = (folder / "lookup.csv").write_text(
    ...     "MSOA21CD,LAD22CD,LAD22NM\nE02000001,E06000001,Town\nE02000002,E06000001,Town\n")
    >>> table = um.io.read_unpaid_care_msoa(folder / "ts039.csv", lookup=folder / "lookup.csv")
    >>> table["count"].tolist()
    [135, 6, 3, 2, 1, 3]
    >>> table.attrs["geography"], table.attrs["base"]
    ('LAD22', 'usual residents aged 5 and over')
    """
    check_choice(to, "to", Target | None)
    target = to if to is not None else ("lad22" if lookup is not None else "msoa21")
    if target == "lad22" and lookup is None:
        raise ReadError(
            "to='lad22' needs lookup= (the ONS MSOA21 -> LAD22 lookup); "
            "pass it, or to='msoa21' for the MSOA table"
        )
    file = as_path(path)
    source = str(file)
    frame = read_csv_checked(file)
    frame.columns = [str(c).lstrip("\ufeff").strip() for c in frame.columns]
    by_key = {_normalise(c): c for c in frame.columns}
    code_col = _find(by_key, _CODE_COLUMNS)
    if code_col is None:
        raise ReadError(
            f"{source}: no MSOA code column (expected 'msoa21cd' or 'geography code'; "
            f"columns seen {preview(list(frame.columns), 9)})"
        )
    name_col = _find(by_key, _NAME_COLUMNS)
    band_cols = {label: by_key.get(key) for key, label in _BAND_KEYS.items()}
    missing = [_normalise(label) for label, col in band_cols.items() if col is None]
    if missing:
        raise ReadError(
            f"{source}: TS039 category column(s) {missing} are missing (columns seen "
            f"{preview(list(frame.columns), 9)}); all six categories are needed"
        )
    codes = frame[code_col].astype(str).str.strip()
    blank = frame[code_col].isna() | (codes == "")
    if blank.any():
        raise ReadError(
            f"{source}: column {code_col!r} is blank on line(s) "
            f"{preview((np.flatnonzero(blank.to_numpy()) + 2).tolist())}"
        )
    repeated = codes[codes.duplicated()].unique()
    if len(repeated):
        raise ReadError(
            f"{source}: MSOAs appear on more than one row: {preview(list(repeated))}; "
            "each MSOA must have one row (was the file appended twice?)"
        )
    found = {label: col for label, col in band_cols.items() if col is not None}  # all of them
    counts = np.column_stack([_counts(frame, found[label], codes, source) for label in UNPAID_CARE_BANDS])
    total_col = _find(by_key, _TOTAL_LABELS)
    if total_col is not None:
        total = _counts(frame, total_col, codes, source)
        off = np.flatnonzero(total != counts.sum(axis=1))
        if len(off):
            shown = [f"{codes.iloc[i]}: total {total[i]:,}, categories {counts[i].sum():,}" for i in off[:5]]
            raise ReadError(
                f"{source}: column {total_col!r} differs from the sum of the six "
                f"categories in {len(off)} MSOA(s), e.g. {'; '.join(shown)}"
            )
    names = (
        frame[name_col].astype(str).str.strip()
        if name_col is not None
        else pd.Series(np.full(len(frame), np.nan, dtype=object))
    )
    area_codes, area_names = codes.to_numpy(dtype=object), names.to_numpy(dtype=object)
    lookup_sha = None
    if target == "lad22":
        assert lookup is not None  # checked above; for the type checker
        pairs, lookup_sha = _read_lookup(lookup)
        lad = pd.Series(pairs[_LOOKUP_TO].to_numpy(), index=pairs[_LOOKUP_FROM].to_numpy())
        unmapped = codes[~codes.isin(lad.index)].tolist()
        if unmapped:
            raise ReadError(
                f"{source}: {len(unmapped)} MSOA(s) are not in the lookup, e.g. "
                f"{preview(unmapped, 5)}; is the lookup for 2021 MSOAs?"
            )
        target_codes = lad.reindex(codes).to_numpy(dtype=object)
        group, area_codes = pd.factorize(target_codes)
        area_codes = np.asarray(area_codes, dtype=object)
        summed = np.zeros((len(area_codes), counts.shape[1]), dtype=np.int64)
        np.add.at(summed, group, counts)
        counts = summed
        if _LOOKUP_NAME in pairs.columns:
            lad_names = pairs.drop_duplicates(_LOOKUP_TO).set_index(_LOOKUP_TO)[_LOOKUP_NAME]
            area_names = lad_names.reindex(area_codes).to_numpy(dtype=object)
        else:
            area_names = np.full(len(area_codes), np.nan, dtype=object)
    k = len(UNPAID_CARE_BANDS)
    out = pd.DataFrame(
        {
            "area_code": pd.array(np.repeat(area_codes, k), dtype="str"),
            "area_name": pd.array(np.repeat(area_names, k), dtype="str"),
            "unpaid_care": pd.Categorical.from_codes(
                np.tile(np.arange(k), len(area_codes)),
                dtype=pd.CategoricalDtype(list(UNPAID_CARE_BANDS), ordered=True),
            ),
            "count": counts.reshape(-1),
        }
    )
    out.attrs = {
        "table_id": "ts039",
        "layout": "msoa_renamed",
        "source": source,
        "sha256": sha256_of(Path(file)),
        "lookup_sha256": lookup_sha,
        "geography": "LAD22" if target == "lad22" else "MSOA21",
        "base": "usual residents aged 5 and over",
        "date": "2021",
        "variable": "unpaid_care",
        "variables": ["unpaid_care"],
    }
    return out
