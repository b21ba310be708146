"""Read Census 2021 tables in the layouts ONS publishes into tidy frames."""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from unmetneed._validate import check_choice
from unmetneed.errors import InconsistentTotalsWarning, MarginsError, ReadError
from unmetneed.io._common import as_path, is_url, preview, sha256_of
from unmetneed.io._hierarchy import COMPUTED_TOTAL, Hierarchy, Level, build_hierarchy
from unmetneed.io._labels import geography_from_name, table_id_from_name, variable_name
from unmetneed.io.fetch import fetch_table

__all__ = ["LAYOUTS", "read_census_table"]

OnInconsistent = Literal["raise", "warn"]

LAYOUTS = ("nomis_bulk", "ons_custom")
_RESERVED = ("area_code", "area_name", "count")
_MEASURE = re.compile(r";\s*measures:\s*(.+)$", re.IGNORECASE)
_EXPECTED = (
    "expected either (1) the Nomis bulk layout: 'date', 'geography', 'geography "
    "code', then one column per category named 'Variable: Category' (optionally "
    "ending '; measures: Value'), e.g. 'Age: Total; measures: Value'; or (2) the "
    "ONS custom-dataset layout: '<Geography> Code', '<Geography>', '<Variable> "
    "Code', '<Variable>', 'Observation', e.g. 'Lower tier local authorities Code', "
    "'Lower tier local authorities', 'Ethnic group (20 categories) Code', 'Ethnic "
    "group (20 categories)', 'Observation'"
)


@dataclass
class _Parsed:
    """A table in long form, as integer codes, before hierarchy handling.

    Rows are cells; ``area`` indexes ``area_codes``/``area_names`` and
    ``codes[v]`` indexes ``categories[v]``. Working on codes rather than
    strings keeps small-area tables (35,000 LSOAs x 116 columns) fast.
    """

    area_codes: np.ndarray  # unique area codes (object), file order
    area_names: np.ndarray  # one name per area (object; NaN when the file has none)
    area: np.ndarray  # per cell: index into area_codes
    variables: list[str]  # header names of the variables, in order
    categories: dict[str, list[str]]  # published order per variable
    codes: dict[str, np.ndarray]  # per cell: index into categories[v]
    count: np.ndarray  # per cell, int64
    category_codes: dict[str, dict[str, object]] = field(default_factory=dict)
    geography: str | None = None
    date: str | None = None


def _lower(columns: list[str]) -> dict[str, str]:
    return {c.strip().lower(): c for c in columns}


def _detect_layout(columns: list[str]) -> str:
    lowered = _lower(columns)
    if "geography code" in lowered:
        return "nomis_bulk"
    if "observation" in lowered:
        return "ons_custom"
    raise ReadError(
        f"could not recognise the census table layout: columns seen {preview(columns, 8)}; {_EXPECTED}"
    )


def _to_counts(values: np.ndarray, describe: Callable[[np.ndarray], list[str]], what: str) -> np.ndarray:
    """Integer counts, or a ReadError naming the cells that are not counts.

    ``describe`` turns positions of bad values into descriptions; it is only
    called when something is wrong, so the happy path builds nothing extra.
    """
    values = np.asarray(values)
    if values.dtype.kind in "iu":  # the common case: pandas already parsed integers
        numbers = values.ravel().astype(np.int64)
        if (numbers >= 0).all():
            return numbers
        numbers = numbers.astype(float)
    elif values.dtype.kind == "f":
        numbers = values.ravel().astype(float)
    else:
        text = pd.Series(values.ravel().astype(str)).str.replace(",", "", regex=False)
        numbers = pd.to_numeric(text.str.strip(), errors="coerce").to_numpy(dtype=float)
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(numbers) | (numbers < 0) | (numbers != np.floor(numbers))
    if bad.any():
        rows = np.flatnonzero(bad)
        examples = describe(rows[:5])
        raise ReadError(
            f"{what}: {len(rows)} value(s) are not non-negative whole-number counts, "
            f"e.g. {'; '.join(examples)}; census counts must be integers >= 0 (no "
            "suppression markers or blanks)"
        )
    return numbers.astype(np.int64)


def _read_csv(path: Path, source: str) -> tuple[pd.DataFrame, str]:
    """The CSV with labels and codes as text and counts parsed by pandas when clean."""
    try:
        header = pd.read_csv(path, nrows=0, keep_default_na=False, encoding="utf-8-sig").columns
        layout = _detect_layout([str(c).strip() for c in header])
        lowered = _lower(list(header))
        if layout == "nomis_bulk":
            text = [lowered[k] for k in ("geography code", "geography", "date") if k in lowered]
        else:
            text = [c for c in header if c != lowered["observation"]]
        # Count columns are left to pandas: integers parse fast; anything else
        # arrives as text and is reported by _to_counts.
        table = pd.read_csv(path, dtype=dict.fromkeys(text, str), keep_default_na=False, encoding="utf-8-sig")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise ReadError(f"could not read {source!r} as a CSV file: {err}") from err
    table.columns = [str(c).strip() for c in table.columns]
    return table, layout


def _parse_nomis(table: pd.DataFrame) -> _Parsed:
    lowered = _lower(list(table.columns))
    code_col = lowered["geography code"]
    name_col = lowered.get("geography")
    date_col = lowered.get("date")
    value_cols = [c for c in table.columns if c not in (code_col, name_col, date_col)]
    if not value_cols:
        raise ReadError(
            f"Nomis bulk layout without category columns: columns seen "
            f"{preview(list(table.columns), 8)}; {_EXPECTED}"
        )
    variables: list[str] | None = None
    labels: list[tuple[str, ...]] = []
    unrecognised: list[str] = []
    for column in value_cols:
        header = column.strip()
        measure = _MEASURE.search(header)
        if measure is not None:
            if measure.group(1).strip().lower() != "value":
                raise ReadError(
                    f"column {column!r} holds '{measure.group(1).strip()}', not counts; "
                    "only 'measures: Value' columns can be read"
                )
            header = header[: measure.start()]
        parts = [p.strip() for p in header.split("; ")]
        pairs = [p.split(": ", 1) for p in parts]
        if any(len(p) != 2 or not p[0] or not p[1] for p in pairs):
            unrecognised.append(column)
            continue
        column_variables = [p[0] for p in pairs]
        if variables is None:
            variables = column_variables
        elif column_variables != variables:
            raise ReadError(
                f"column {column!r} is for variable(s) {column_variables}, but earlier columns are "
                f"for {variables}; a Nomis bulk file holds one table"
            )
        labels.append(tuple(p[1] for p in pairs))
    if unrecognised or variables is None:
        raise ReadError(
            f"could not recognise the category columns {preview(unrecognised, 5)} of a "
            f"Nomis bulk table (columns seen {preview(list(table.columns), 8)}); {_EXPECTED}"
        )
    area_code = table[code_col].astype(str).str.strip()
    _check_area_codes(area_code, code_col)
    duplicated = area_code[area_code.duplicated()].unique()
    if len(duplicated):
        raise ReadError(
            f"column {code_col!r}: areas appear on more than one row: "
            f"{preview(list(duplicated))}; each area must have one row"
        )
    if len(set(labels)) != len(labels):
        repeated = pd.Series(value_cols)[pd.Series(labels).duplicated().to_numpy()]
        raise ReadError(f"columns repeat a category: {preview(list(repeated))}")
    n_areas, n_cols = len(table), len(value_cols)
    values = table[value_cols].to_numpy()

    def describe(rows: np.ndarray) -> list[str]:
        return [
            f"area {area_code.iloc[i // n_cols]!r}, column {value_cols[i % n_cols]!r}: {values.ravel()[i]!r}"
            for i in rows
        ]

    counts = _to_counts(values, describe, "Nomis bulk table")
    categories: dict[str, list[str]] = {}
    codes: dict[str, np.ndarray] = {}
    for k, variable in enumerate(variables):
        column_labels = [lab[k] for lab in labels]
        categories[variable] = list(dict.fromkeys(column_labels))
        position = {c: i for i, c in enumerate(categories[variable])}
        codes[variable] = np.tile(np.array([position[c] for c in column_labels]), n_areas)
    dates = (
        table[date_col].astype(str).str.strip().unique()
        if date_col is not None
        else np.array([], dtype=object)
    )
    names = (
        table[name_col].astype(str).str.strip().to_numpy(dtype=object)
        if name_col is not None
        else np.full(n_areas, np.nan, dtype=object)
    )
    return _Parsed(
        area_codes=area_code.to_numpy(dtype=object),
        area_names=names,
        area=np.repeat(np.arange(n_areas), n_cols),
        variables=variables,
        categories=categories,
        codes=codes,
        count=counts,
        date=str(dates[0]) if len(dates) == 1 else None,
    )


def _check_area_codes(area_code: pd.Series, column: str) -> None:
    blank = area_code.isna() | (area_code == "")
    if blank.any():
        raise ReadError(
            f"column {column!r}: {int(blank.sum())} row(s) have no area code "
            f"(rows {preview((np.flatnonzero(blank.to_numpy()) + 2).tolist())} of the file)"
        )


def _parse_custom(table: pd.DataFrame) -> _Parsed:
    """Read an ONS custom-dataset table (long: one row per area and category).

    Steps: pair each variable's code and label columns; code the areas and each
    variable's categories (first-appearance order); read the counts; check every
    area has one row per category; read the area names.
    """
    columns = list(table.columns)
    observation = _lower(columns)["observation"]
    geography, variable_groups = _custom_column_groups(columns, observation)
    area_code = table[geography["code"]].astype(str).str.strip()
    _check_area_codes(area_code, geography["code"])
    area, area_codes = pd.factorize(area_code)
    variables = [g["base"] for g in variable_groups]
    categories, codes, category_codes = _custom_categories(table, variable_groups)

    def describe(rows: np.ndarray) -> list[str]:
        return [
            f"line {int(i) + 2} ({area_code.iloc[i]}, "
            + ", ".join(categories[v][codes[v][i]] for v in variables)
            + f") -> {table[observation].iloc[i]!r}"
            for i in rows
        ]

    count = _to_counts(table[observation].to_numpy(), describe, f"column {observation!r}")
    _check_custom_cells(area, area_codes, [(codes[v], categories[v]) for v in variables])
    if "label" in geography:
        names = _custom_area_names(table[geography["label"]], area, area_codes)
    else:
        names = np.full(len(area_codes), np.nan, dtype=object)
    return _Parsed(
        area_codes=np.asarray(area_codes, dtype=object),
        area_names=names,
        area=area,
        variables=variables,
        categories=categories,
        codes=codes,
        count=count,
        category_codes=category_codes,
        geography=geography["base"],
    )


def _custom_column_groups(
    columns: list[str], observation: str
) -> tuple[dict[str, str], list[dict[str, str]]]:
    """The geography's and each variable's ``{"base", "code", "label"}`` columns, in order."""
    lowered = _lower(columns)
    groups: list[dict[str, str]] = []
    used: set[str] = set()
    for column in (c for c in columns if c != observation):
        if column in used:
            continue
        stripped = column.strip()
        if stripped.lower().endswith(" code"):
            base = stripped[: -len(" code")].strip()
            partner, role, partner_role = lowered.get(base.lower()), "code", "label"
        else:
            base = stripped
            partner, role, partner_role = lowered.get(f"{base.lower()} code"), "label", "code"
        group = {"base": base, role: column}
        if partner is not None and partner not in used and partner != column:
            group[partner_role] = partner
            used.add(partner)
        used.add(column)
        groups.append(group)
    if len(groups) < 2 or "code" not in groups[0]:
        raise ReadError(
            f"could not recognise the ONS custom-dataset layout: columns seen "
            f"{preview(columns, 8)}; the first columns must be the geography's code "
            f"(and name), then each variable's code and label; {_EXPECTED}"
        )
    missing_labels = [g["code"] for g in groups[1:] if "label" not in g]
    if missing_labels:
        raise ReadError(
            f"variable column(s) {preview(missing_labels)} have codes but no label "
            f"column beside them (columns seen {preview(columns, 8)}); {_EXPECTED}"
        )
    return groups[0], groups[1:]


def _custom_categories(
    table: pd.DataFrame, variable_groups: list[dict[str, str]]
) -> tuple[dict[str, list[str]], dict[str, np.ndarray], dict[str, dict[str, object]]]:
    """Each variable's categories (first-appearance order), row codes, and label -> code map."""
    categories: dict[str, list[str]] = {}
    codes: dict[str, np.ndarray] = {}
    category_codes: dict[str, dict[str, object]] = {}
    for group in variable_groups:
        labels = table[group["label"]].astype(str).str.strip()
        if (labels == "").any():
            raise ReadError(f"column {group['label']!r} has blank category labels")
        codes[group["base"]], uniques = pd.factorize(labels)  # first-appearance order
        categories[group["base"]] = [str(u) for u in uniques]
        if "code" in group:
            category_codes[group["base"]] = _category_codes(
                table[group["code"]].astype(str).str.strip(), labels, group["code"]
            )
    return categories, codes, category_codes


def _check_custom_cells(
    area: np.ndarray, area_codes: pd.Index, variables: list[tuple[np.ndarray, list[str]]]
) -> None:
    """Every area has exactly one row for every combination of categories."""
    shape = (len(area_codes), *(len(labels) for _, labels in variables))
    cell = np.ravel_multi_index((area, *(codes for codes, _ in variables)), shape)
    repeated = pd.Series(cell).duplicated(keep=False).to_numpy()
    if repeated.any():
        rows = np.flatnonzero(repeated)
        shown = sorted(
            {(area_codes[area[i]], *(labels[codes[i]] for codes, labels in variables)) for i in rows[:10]}
        )[:5]
        raise ReadError(
            f"{len(rows)} rows repeat an area and category, e.g. {shown} (lines "
            f"{preview((rows + 2).tolist())}); each area and category must appear once "
            "(was the file appended twice?)"
        )
    cells = int(np.prod(shape[1:]))
    per_area = np.bincount(area, minlength=len(area_codes))
    short = np.flatnonzero(per_area != cells)
    if len(short):
        raise ReadError(
            f"{len(short)} area(s) do not have a row for every category "
            f"({cells} expected): "
            f"{preview([f'{area_codes[i]} ({per_area[i]} rows)' for i in short.tolist()])}; "
            "missing cells are not assumed to be zero"
        )


def _custom_area_names(labels: pd.Series, area: np.ndarray, area_codes: pd.Index) -> np.ndarray:
    """One name per area code; a code written with two names is refused."""
    name_codes, name_uniques = pd.factorize(labels.astype(str).str.strip())
    pairs = pd.DataFrame({"area": area, "name": name_codes}).drop_duplicates()
    clashing = pairs["area"][pairs["area"].duplicated()].unique()
    if len(clashing):
        raise ReadError(f"area codes with more than one name: {preview([area_codes[i] for i in clashing])}")
    names = np.empty(len(area_codes), dtype=object)
    names[pairs["area"].to_numpy()] = np.asarray(name_uniques, dtype=object)[pairs["name"].to_numpy()]
    return names


def _category_codes(codes: pd.Series, labels: pd.Series, column: str) -> dict[str, object]:
    pairs = pd.DataFrame({"code": codes, "label": labels}).drop_duplicates()
    for key, other in (("label", "code"), ("code", "label")):
        clash = pairs[key][pairs[key].duplicated()].unique()
        if len(clash):
            raise ReadError(f"column {column!r}: {key}s with more than one {other}: {preview(list(clash))}")
    numeric = pd.to_numeric(pairs["code"], errors="coerce")
    if numeric.notna().all() and (numeric == np.floor(numeric)).all():
        return dict(zip(pairs["label"], (int(v) for v in numeric)))
    return dict(zip(pairs["label"], pairs["code"]))


def _other_cells(parsed: _Parsed, variable: str) -> tuple[np.ndarray, tuple[int, ...]]:
    """Per row, the index of its combination of area and the other variables."""
    others = [v for v in parsed.variables if v != variable]
    shape = (len(parsed.area_codes), *(len(parsed.categories[v]) for v in others))
    return np.ravel_multi_index((parsed.area, *(parsed.codes[v] for v in others)), shape), shape


def _inconsistencies(
    parsed: _Parsed, hierarchy: Hierarchy, variable: str, names: dict[str, str]
) -> pd.DataFrame:
    """Cells where a published total or subtotal differs from the sum of its parts."""
    parents = hierarchy.parents()
    others = [v for v in parsed.variables if v != variable]
    columns = [
        "area_code",
        *(names[v] for v in others),
        "variable",
        "category",
        "published",
        "sum_of_parts",
        "difference",
    ]
    if not parents:
        return pd.DataFrame(columns=columns)
    categories = list(hierarchy.categories)
    position = {c: i for i, c in enumerate(categories)}
    group, shape = _other_cells(parsed, variable)
    # every area has every combination (checked while parsing), so a dense
    # (cells x categories) matrix holds the table exactly
    matrix = np.zeros((int(np.prod(shape)), len(categories)), dtype=np.int64)
    matrix[group, parsed.codes[variable]] = parsed.count
    incidence = np.zeros((len(categories), len(parents)), dtype=np.int64)
    for j, parent in enumerate(parents):
        for child in hierarchy.children(parent):
            incidence[position[child], j] = 1
    published = matrix[:, [position[p] for p in parents]]
    parts = matrix @ incidence
    rows, cols = np.nonzero(parts != published)
    decoded = np.unravel_index(rows, shape)
    out = pd.DataFrame({"area_code": parsed.area_codes[decoded[0]]})
    for k, other in enumerate(others, start=1):
        out[names[other]] = np.asarray(parsed.categories[other], dtype=object)[decoded[k]]
    out["variable"] = names[variable]
    out["category"] = np.asarray(parents, dtype=object)[cols]
    out["published"] = published[rows, cols]
    out["sum_of_parts"] = parts[rows, cols]
    out["difference"] = out["sum_of_parts"] - out["published"]
    return out[columns]


def _select_level(parsed: _Parsed, hierarchy: Hierarchy, variable: str, level: str) -> _Parsed:
    """The rows of one level of ``variable``, recoded to that level's categories."""
    codes = parsed.codes[variable]
    if level == "total" and hierarchy.total is None:
        leaves = [parsed.categories[variable].index(c) for c in hierarchy.leaves()]
        keep = np.isin(codes, leaves)
        group, shape = _other_cells(parsed, variable)
        sums = np.bincount(
            group[keep], weights=parsed.count[keep].astype(np.float64), minlength=int(np.prod(shape))
        )
        present = np.flatnonzero(np.bincount(group, minlength=len(sums)))
        decoded = np.unravel_index(present, shape)
        others = [v for v in parsed.variables if v != variable]
        new_codes = {v: decoded[k] for k, v in enumerate(others, start=1)}
        new_codes[variable] = np.zeros(len(present), dtype=np.intp)
        return replace(
            parsed,
            area=decoded[0],
            codes=new_codes,
            categories={**parsed.categories, variable: [COMPUTED_TOTAL]},
            count=np.rint(sums[present]).astype(np.int64),
        )
    selected = hierarchy.level(level)
    lookup = np.full(len(parsed.categories[variable]), -1, dtype=np.intp)
    lookup[[parsed.categories[variable].index(c) for c in selected]] = np.arange(len(selected))
    keep = lookup[codes] >= 0
    return replace(
        parsed,
        area=parsed.area[keep],
        codes={v: (lookup[c[keep]] if v == variable else c[keep]) for v, c in parsed.codes.items()},
        categories={**parsed.categories, variable: selected},
        count=parsed.count[keep],
    )


def _output_names(variables: list[str], variable: str | Mapping[str, str] | None) -> list[str]:
    if variable is None:
        names = [variable_name(v) for v in variables]
    elif isinstance(variable, str):
        if len(variables) != 1:
            raise ReadError(
                f"the table has {len(variables)} variables {variables}; give variable= as "
                "a mapping from each header name to a column name"
            )
        names = [variable]
    elif isinstance(variable, Mapping):
        unknown = [
            k for k in variable if k not in variables and k not in [variable_name(v) for v in variables]
        ]
        if unknown:
            raise ReadError(f"variable= names {unknown} are not variables of the table {variables}")
        names = [str(variable.get(v, variable.get(variable_name(v), variable_name(v)))) for v in variables]
    else:
        raise ReadError(f"variable= must be a str, a mapping or None, got {variable!r}")
    clashes = [n for n in names if n in _RESERVED] + [n for i, n in enumerate(names) if n in names[:i]]
    if clashes:
        raise ReadError(
            f"variable column name(s) {clashes} clash with each other or with "
            f"{list(_RESERVED)}; rename them with variable="
        )
    return names


def read_census_table(
    path_or_url: str | os.PathLike[str],
    *,
    level: Level | None = None,
    variable: str | Mapping[str, str] | None = None,
    table_id: str | None = None,
    on_inconsistent: OnInconsistent = "raise",
    known_hash: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    known_areas: Iterable[str] | None = None,
) -> pd.DataFrame:
    r"""Read a published Census 2021 table into a tidy frame.

    Two layouts are recognised from the header:

    ``nomis_bulk``
        The Nomis bulk CSVs: ``date``, ``geography``, ``geography code``, then
        one column per category, ``"Age: Aged 4 years and under; measures:
        Value"`` (the ``; measures: Value`` suffix is optional, and several
        variables may be joined with ``"; "``).
    ``ons_custom``
        The ONS "create a custom dataset" CSVs: ``<Geography> Code``,
        ``<Geography>``, then ``<Variable> Code`` and ``<Variable>`` for each
        variable, and ``Observation`` (column capitalisation may vary).

    Published tables mix a total, subtotals and detailed categories (TS007 has
    ``Total``, irregular bands such as ``Aged 10 to 15 years`` and 101 single
    years). The hierarchy is recognised (see Notes), one level is returned so
    nothing is double counted, and every published total and subtotal is
    checked against the sum of the categories beneath it, area by area.

    Parameters
    ----------
    path_or_url : str or os.PathLike
        A local CSV, or an ``http(s)://`` address fetched (and cached) with
        :func:`fetch_table`.
    level : {'detailed', 'bands', 'total'}, optional
        Which categories to return. ``'detailed'`` (default): the most detailed
        categories, those that are not the union of others (TS007: the 101
        single years). ``'bands'``: the coarsest categories below the total
        (TS007: the 11 published age bands; TS021: the 5 high-level ethnic
        groups; a table without subtotals: its categories). ``'total'``: the
        total alone (computed as the sum of the detailed categories and labelled
        ``'Total'`` when the table publishes none).
    variable : str or mapping, optional
        Name of the category column. By default derived from the header in
        snake_case without qualifiers (``"Ethnic group (20 categories)"`` ->
        ``ethnic_group``, ``"Age"`` -> ``age``, ``"Provision of unpaid care"``
        -> ``unpaid_care``). For a table with several variables, a mapping from
        header name (or derived name) to column name.
    table_id : str, optional
        Table id recorded in ``attrs``; by default read from the file name
        (``census2021-ts007-ltla.csv`` -> ``ts007``), else None.
    on_inconsistent : {'raise', 'warn'}, default 'raise'
        What to do when a published total or subtotal differs from the sum of
        its categories in some area (within one table they must agree):
        ``'raise'`` a :class:`~unmetneed.errors.MarginsError`, or ``'warn'``
        with :class:`~unmetneed.errors.InconsistentTotalsWarning` and go on.
        The differences are in ``attrs["inconsistencies"]`` (and on the error
        as ``.differences``).
    known_hash : str, optional
        Checksum of a remote file, passed to :func:`fetch_table`.
    cache_dir : str or os.PathLike, optional
        Cache folder for remote files, passed to :func:`fetch_table`.
    known_areas : iterable of str, optional
        The area codes the table must hold, no more and no fewer (e.g. the
        2021 upper-tier councils). A file cut at a line boundary is a valid
        CSV that silently lacks its last areas; with ``known_areas`` it raises
        :class:`~unmetneed.errors.ReadError` naming the missing areas.

    Returns
    -------
    pandas.DataFrame
        Columns ``area_code``, ``area_name`` (missing where the file has no
        names), one column per variable holding the category labels as an
        ordered Categorical in published order, and ``count`` (int64). Rows are
        in the file's area order, then category order. ``attrs`` holds
        ``table_id``, ``layout``, ``source``, ``sha256``, ``geography``,
        ``date``, ``level``, ``variable`` (the column name; ``variables`` lists
        all), ``variable_labels`` (column -> header name), ``hierarchy``
        (column -> {category: parent}), ``intervals`` (column -> {category:
        [lo, hi]}, hi None when open-ended), ``total_category`` (column ->
        published total label or None), ``category_codes`` (column -> {label:
        code}, custom datasets only) and ``inconsistencies``.

    Raises
    ------
    ReadError
        The layout is not recognised (the message lists the columns seen and
        the ones expected), counts are not non-negative integers, an area or
        cell appears twice or is missing, or the hierarchy is ambiguous.
    MarginsError
        A total or subtotal disagrees with its parts and
        ``on_inconsistent='raise'``; the message names the areas and
        differences.

    Notes
    -----
    A category is a parent when it is the union of a contiguous run of others.
    Age and hours labels are parsed into closed integer intervals
    (``"Aged 10 to 15 years"`` -> [10, 15], ``"Aged 85 years and over"`` ->
    [85, inf]); a category's parent is the smallest category whose interval
    contains it, and each parent must be tiled exactly by its children. Labels
    written as paths (``"White: Irish"`` under ``"White"``) nest by prefix. The
    total (``Total...``, ``All ...``) is the parent of all other top-level
    categories. The check is, for every area :math:`a` and parent :math:`p`,
    :math:`n_{a,p} = \sum_{c \in \mathrm{children}(p)} n_{a,c}`.

    Examples
    --------
    A Nomis bulk file (made-up counts) with a total and two categories:

    >>> import pathlib, tempfile
    >>> import unmetneed as um
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "census2021-ts008-ltla.csv"
    >>> _ = path.write_text(
    ...     '"date","geography","geography code","Sex: All persons; measures: Value",'
    ...     '"Sex: Female; measures: Value","Sex: Male; measures: Value"\n'
    ...     '"2021","Area A","E06000001",100,52,48\n')
    >>> table = um.io.read_census_table(path)
    >>> table
       area_code area_name     sex  count
    0  E06000001    Area A  Female     52
    1  E06000001    Area A    Male     48
    >>> table.attrs["table_id"], table.attrs["hierarchy"]["sex"]["Female"]
    ('ts008', 'All persons')
    >>> um.io.read_census_table(path, level="total")["count"].tolist()
    [100]
    """
    level_name = "detailed" if level is None else level
    check_choice(level_name, "level", Level)
    check_choice(on_inconsistent, "on_inconsistent", OnInconsistent)
    if is_url(path_or_url):
        source = str(path_or_url)
        path = fetch_table(source, known_hash=known_hash, cache_dir=cache_dir)
    else:
        path = as_path(path_or_url)
        source = str(path)
    if known_areas is not None and isinstance(known_areas, str):
        raise ReadError("known_areas must be a collection of area codes, not one string")
    table, layout = _read_csv(path, source)
    parsed = _parse_nomis(table) if layout == "nomis_bulk" else _parse_custom(table)
    if len(parsed.count) == 0:
        raise ReadError(f"{source!r} has a header but no rows")
    if known_areas is not None:
        _check_areas(parsed.area_codes, known_areas, source)
    names = dict(zip(parsed.variables, _output_names(parsed.variables, variable)))
    hierarchies = {v: build_hierarchy(names[v], parsed.categories[v]) for v in parsed.variables}

    problems = [_inconsistencies(parsed, hierarchies[v], v, names) for v in parsed.variables]
    problems = [p for p in problems if len(p)]
    inconsistencies = pd.concat(problems, ignore_index=True) if problems else None
    if inconsistencies is not None:
        message = _inconsistency_message(inconsistencies, source)
        if on_inconsistent == "raise":
            error = MarginsError(message + "; pass on_inconsistent='warn' to read it anyway")
            error.differences = inconsistencies  # type: ignore[attr-defined]
            raise error
        warnings.warn(message, InconsistentTotalsWarning, stacklevel=2)

    selected = parsed
    for v in parsed.variables:
        selected = _select_level(selected, hierarchies[v], v, level_name)
    shape = (len(parsed.area_codes), *(len(selected.categories[v]) for v in parsed.variables))
    key = np.ravel_multi_index((selected.area, *(selected.codes[v] for v in parsed.variables)), shape)
    # area order of the file, then category order; files are usually in it already
    order = np.arange(len(key)) if (np.diff(key) > 0).all() else np.argsort(key, kind="stable")
    area = selected.area[order]
    out = pd.DataFrame(
        {
            "area_code": pd.array(parsed.area_codes, dtype="str").take(area),
            "area_name": pd.array(parsed.area_names, dtype="str").take(area),
        }
    )
    for v in parsed.variables:
        out[names[v]] = pd.Categorical.from_codes(
            selected.codes[v][order], dtype=pd.CategoricalDtype(selected.categories[v], ordered=True)
        )
    out["count"] = selected.count[order]

    columns = [names[v] for v in parsed.variables]
    geography = parsed.geography or geography_from_name(source)
    out.attrs = {
        "table_id": table_id if table_id is not None else table_id_from_name(source),
        "layout": layout,
        "source": source,
        "sha256": sha256_of(path),
        "geography": geography,
        "date": parsed.date,
        "level": level_name,
        "variable": columns[0] if len(columns) == 1 else None,
        "variables": columns,
        "variable_labels": {names[v]: v for v in parsed.variables},
        "hierarchy": {names[v]: hierarchies[v].to_attrs() for v in parsed.variables},
        "intervals": {names[v]: hierarchies[v].intervals_to_attrs() for v in parsed.variables},
        "total_category": {names[v]: hierarchies[v].total for v in parsed.variables},
        "category_codes": {names[v]: parsed.category_codes.get(v, {}) for v in parsed.variables},
        "inconsistencies": [] if inconsistencies is None else inconsistencies.to_dict("records"),
    }
    return out


def _check_areas(codes: np.ndarray | Sequence[str], known_areas: Iterable[str], source: str) -> None:
    """Every known area and no other: a file cut at a line boundary loses whole areas."""
    known = list(dict.fromkeys(map(str, known_areas)))
    present = set(map(str, codes))
    unknown = [c for c in dict.fromkeys(map(str, codes)) if c not in set(known)]
    missing = [c for c in known if c not in present]
    if unknown:
        raise ReadError(
            f"{source!r} has area codes not in known_areas: {preview(unknown, 8)}; check "
            "the geography (2021 boundaries?) or the codes"
        )
    if missing:
        raise ReadError(
            f"{source!r} has {len(present)} of the {len(known)} known areas; missing "
            f"{preview(missing, 8)}. Was the file cut short (a partial download)? Fetch it again, "
            "or pass the areas it is meant to hold as known_areas"
        )


def _inconsistency_message(table: pd.DataFrame, source: str) -> str:
    areas = table["area_code"].unique()
    lines = [
        f"{row.area_code}: {row.category!r} is {row.published:,} but its categories sum "
        f"to {row.sum_of_parts:,} (difference {row.difference:+,})"
        for row in table.head(8).itertuples()
    ]
    more = f"; ... {len(table) - 8} more" if len(table) > 8 else ""
    return (
        f"{source!r}: published totals disagree with the sum of their categories in "
        f"{len(areas)} area(s) {preview(list(areas), 5)}: " + "; ".join(lines) + more
    )
