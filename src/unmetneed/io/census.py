"""Read Census 2021 tables in the layouts ONS publishes into tidy frames."""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from unmetneed.errors import InconsistentTotalsWarning, MarginsError, ReadError
from unmetneed.io._common import as_path, check_choice, is_url, preview, sha256_of
from unmetneed.io._hierarchy import COMPUTED_TOTAL, LEVELS, Hierarchy, build_hierarchy
from unmetneed.io._labels import geography_from_name, table_id_from_name, variable_name
from unmetneed.io.fetch import fetch_table

__all__ = ["read_census_table", "LAYOUTS"]

Level = Literal["detailed", "bands", "total"]
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
    """A table in long form before hierarchy handling."""

    frame: pd.DataFrame  # area_code, area_name, <variable labels...>, count
    variables: list[str]  # header labels of the variables, in order
    categories: dict[str, list[str]]  # published order per variable
    codes: dict[str, dict[str, object]] = field(default_factory=dict)
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
        f"could not recognise the census table layout: columns seen "
        f"{preview(columns, 8)}; {_EXPECTED}"
    )


def _to_counts(values: np.ndarray, describe: Callable[[np.ndarray], list[str]],
               what: str) -> np.ndarray:
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
    options = {"keep_default_na": False, "encoding": "utf-8-sig"}
    try:
        header = pd.read_csv(path, nrows=0, **options).columns
        layout = _detect_layout([str(c).strip() for c in header])
        lowered = _lower(list(header))
        if layout == "nomis_bulk":
            text = [lowered[k] for k in ("geography code", "geography", "date") if k in lowered]
        else:
            text = [c for c in header if c != lowered["observation"]]
        # Count columns are left to pandas: integers parse fast; anything else
        # arrives as text and is reported by _to_counts.
        table = pd.read_csv(path, dtype=dict.fromkeys(text, str), **options)
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
        names = [p[0] for p in pairs]
        if variables is None:
            variables = names
        elif names != variables:
            raise ReadError(
                f"column {column!r} is for variable(s) {names}, but earlier columns are "
                f"for {variables}; a Nomis bulk file holds one table"
            )
        labels.append(tuple(p[1] for p in pairs))
    if unrecognised or variables is None:
        raise ReadError(
            f"could not recognise the category columns {preview(unrecognised, 5)} of a "
            f"Nomis bulk table (columns seen {preview(list(table.columns), 8)}); {_EXPECTED}"
        )
    area_code = table[code_col].str.strip()
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
            f"area {area_code.iloc[i // n_cols]!r}, column {value_cols[i % n_cols]!r}: "
            f"{values.ravel()[i]!r}"
            for i in rows
        ]

    counts = _to_counts(values, describe, "Nomis bulk table")
    long = {
        "area_code": np.repeat(area_code.to_numpy(dtype=object), n_cols),
        "area_name": np.repeat(
            table[name_col].str.strip().to_numpy(dtype=object)
            if name_col is not None
            else np.full(n_areas, np.nan, dtype=object),
            n_cols,
        ),
    }
    categories: dict[str, list[str]] = {}
    for k, variable in enumerate(variables):
        column_labels = [lab[k] for lab in labels]
        long[variable] = np.tile(np.asarray(column_labels, dtype=object), n_areas)
        categories[variable] = list(dict.fromkeys(column_labels))
    frame = pd.DataFrame(long)
    frame["count"] = counts
    dates = table[date_col].str.strip().unique() if date_col is not None else []
    return _Parsed(
        frame=frame,
        variables=variables,
        categories=categories,
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
    columns = list(table.columns)
    lowered = _lower(columns)
    observation = lowered["observation"]
    rest = [c for c in columns if c != observation]
    groups: list[dict[str, str]] = []
    used: set[str] = set()
    for column in rest:
        if column in used:
            continue
        stripped = column.strip()
        if stripped.lower().endswith(" code"):
            base = stripped[: -len(" code")].strip()
            label = lowered.get(base.lower())
            group = {"base": base, "code": column}
            if label is not None and label not in used and label != column:
                group["label"] = label
                used.add(label)
        else:
            base = stripped
            code = lowered.get(f"{base.lower()} code")
            group = {"base": base, "label": column}
            if code is not None and code not in used:
                group["code"] = code
                used.add(code)
        used.add(column)
        groups.append(group)
    if len(groups) < 2 or "code" not in groups[0]:
        raise ReadError(
            f"could not recognise the ONS custom-dataset layout: columns seen "
            f"{preview(columns, 8)}; the first columns must be the geography's code "
            f"(and name), then each variable's code and label; {_EXPECTED}"
        )
    geography, variable_groups = groups[0], groups[1:]
    missing_labels = [g["code"] for g in variable_groups if "label" not in g]
    if missing_labels:
        raise ReadError(
            f"variable column(s) {preview(missing_labels)} have codes but no label "
            f"column beside them (columns seen {preview(columns, 8)}); {_EXPECTED}"
        )
    area_code = table[geography["code"]].str.strip()
    _check_area_codes(area_code, geography["code"])
    frame = pd.DataFrame(
        {
            "area_code": area_code,
            "area_name": table[geography["label"]].str.strip()
            if "label" in geography
            else pd.Series(np.nan, index=table.index, dtype=object),
        }
    )
    variables = [g["base"] for g in variable_groups]
    categories: dict[str, list[str]] = {}
    codes: dict[str, dict[str, object]] = {}
    for group in variable_groups:
        labels = table[group["label"]].str.strip()
        if (labels == "").any():
            raise ReadError(f"column {group['label']!r} has blank category labels")
        frame[group["base"]] = labels
        categories[group["base"]] = list(pd.unique(labels))
        if "code" in group:
            codes[group["base"]] = _category_codes(table[group["code"]].str.strip(), labels,
                                                   group["code"])
    def describe(rows: np.ndarray) -> list[str]:
        shown = frame.drop(columns="area_name").iloc[rows].to_dict("records")
        return [f"{row} -> {table[observation].iloc[i]!r}" for i, row in zip(rows, shown)]

    frame["count"] = _to_counts(table[observation].to_numpy(), describe,
                                f"column {observation!r}")
    keys = ["area_code", *variables]
    duplicated = frame.duplicated(subset=keys, keep=False)
    if duplicated.any():
        shown = frame.loc[duplicated, keys].drop_duplicates().head(5).to_dict("records")
        raise ReadError(
            f"{int(duplicated.sum())} rows repeat an area and category, e.g. {shown}; "
            "each area and category must appear once (was the file appended twice?)"
        )
    cells = int(np.prod([len(categories[v]) for v in variables]))
    per_area = frame.groupby("area_code", sort=False).size()
    short = per_area[per_area != cells]
    if len(short):
        raise ReadError(
            f"{len(short)} area(s) do not have a row for every category "
            f"({cells} expected): {preview([f'{a} ({n} rows)' for a, n in short.items()])}; "
            "missing cells are not assumed to be zero"
        )
    names = frame.drop_duplicates(["area_code", "area_name"])
    clashing = names["area_code"][names["area_code"].duplicated()].unique()
    if len(clashing):
        raise ReadError(f"area codes with more than one name: {preview(list(clashing))}")
    return _Parsed(
        frame=frame,
        variables=variables,
        categories=categories,
        codes=codes,
        geography=geography["base"],
    )


def _category_codes(codes: pd.Series, labels: pd.Series, column: str) -> dict[str, object]:
    pairs = pd.DataFrame({"code": codes, "label": labels}).drop_duplicates()
    for key, other in (("label", "code"), ("code", "label")):
        clash = pairs[key][pairs[key].duplicated()].unique()
        if len(clash):
            raise ReadError(
                f"column {column!r}: {key}s with more than one {other}: "
                f"{preview(list(clash))}"
            )
    numeric = pd.to_numeric(pairs["code"], errors="coerce")
    if numeric.notna().all() and (numeric == np.floor(numeric)).all():
        return dict(zip(pairs["label"], (int(v) for v in numeric)))
    return dict(zip(pairs["label"], pairs["code"]))


def _matrix(frame: pd.DataFrame, variable: str, categories: list[str],
            keys: list[str]) -> tuple[pd.DataFrame, np.ndarray]:
    """Counts as a (groups x categories) matrix, groups = combinations of ``keys``."""
    # ngroup(sort=False) numbers groups by first appearance, as drop_duplicates keeps them
    group_codes = frame.groupby(keys, sort=False, dropna=False).ngroup().to_numpy()
    groups = frame[keys].drop_duplicates().reset_index(drop=True)
    cat_codes = pd.Categorical(frame[variable], categories=categories).codes
    matrix = np.zeros((len(groups), len(categories)), dtype=np.int64)
    matrix[group_codes, cat_codes] = frame["count"].to_numpy()
    return groups, matrix


def _inconsistencies(frame: pd.DataFrame, hierarchy: Hierarchy, variable: str,
                     keys: list[str]) -> pd.DataFrame:
    """Rows where a published total or subtotal differs from the sum of its parts."""
    parents = hierarchy.parents()
    columns = [*keys, "category", "published", "sum_of_parts", "difference"]
    if not parents:
        return pd.DataFrame(columns=columns)
    categories = list(hierarchy.categories)
    position = {c: i for i, c in enumerate(categories)}
    groups, matrix = _matrix(frame, variable, categories, keys)
    incidence = np.zeros((len(categories), len(parents)), dtype=np.int64)
    for j, parent in enumerate(parents):
        for child in hierarchy.children(parent):
            incidence[position[child], j] = 1
    published = matrix[:, [position[p] for p in parents]]
    parts = matrix @ incidence
    rows, cols = np.nonzero(parts != published)
    out = groups.iloc[rows].reset_index(drop=True)
    out["category"] = np.asarray(parents, dtype=object)[cols]
    out["published"] = published[rows, cols]
    out["sum_of_parts"] = parts[rows, cols]
    out["difference"] = out["sum_of_parts"] - out["published"]
    return out[columns]


def _select_level(frame: pd.DataFrame, hierarchy: Hierarchy, variable: str,
                  level: str, keys: list[str]) -> tuple[pd.DataFrame, list[str]]:
    if level == "total" and hierarchy.total is None:
        leaves = hierarchy.leaves()
        kept = frame[frame[variable].isin(leaves)]
        summed = kept.groupby(keys, sort=False, dropna=False)["count"].sum().reset_index()
        summed[variable] = COMPUTED_TOTAL
        return summed, [COMPUTED_TOTAL]
    selected = hierarchy.level(level)
    return frame[frame[variable].isin(selected)], selected


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
        unknown = [k for k in variable if k not in variables
                   and k not in [variable_name(v) for v in variables]]
        if unknown:
            raise ReadError(f"variable= names {unknown} are not variables of the table "
                            f"{variables}")
        names = [
            str(variable.get(v, variable.get(variable_name(v), variable_name(v))))
            for v in variables
        ]
    else:
        raise ReadError(f"variable= must be a str, a mapping or None, got {variable!r}")
    clashes = [n for n in names if n in _RESERVED] + [
        n for i, n in enumerate(names) if n in names[:i]
    ]
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
    check_choice("level", level_name, LEVELS)
    check_choice("on_inconsistent", on_inconsistent, ("raise", "warn"))
    if is_url(path_or_url):
        source = str(path_or_url)
        path = fetch_table(source, known_hash=known_hash, cache_dir=cache_dir)
    else:
        path = as_path(path_or_url)
        source = str(path)
    table, layout = _read_csv(path, source)
    parsed = _parse_nomis(table) if layout == "nomis_bulk" else _parse_custom(table)
    if parsed.frame.empty:
        raise ReadError(f"{source!r} has a header but no rows")

    names = _output_names(parsed.variables, variable)
    frame = parsed.frame.rename(columns=dict(zip(parsed.variables, names)))
    categories = {n: parsed.categories[v] for v, n in zip(parsed.variables, names)}
    hierarchies = {n: build_hierarchy(n, categories[n]) for n in names}

    problems = []
    for name in names:
        keys = ["area_code", *[n for n in names if n != name]]
        found = _inconsistencies(frame, hierarchies[name], name, keys)
        if len(found):
            found.insert(len(keys), "variable", name)
            problems.append(found)
    inconsistencies = pd.concat(problems, ignore_index=True) if problems else None
    if inconsistencies is not None:
        message = _inconsistency_message(inconsistencies, source)
        if on_inconsistent == "raise":
            error = MarginsError(message + "; pass on_inconsistent='warn' to read it anyway")
            error.differences = inconsistencies  # type: ignore[attr-defined]
            raise error
        warnings.warn(message, InconsistentTotalsWarning, stacklevel=2)

    selected: dict[str, list[str]] = {}
    for name in names:
        keys = ["area_code", "area_name", *[n for n in names if n != name]]
        frame, selected[name] = _select_level(frame, hierarchies[name], name, level_name, keys)

    area_order = pd.unique(parsed.frame["area_code"])
    out = pd.DataFrame(
        {
            "area_code": pd.array(frame["area_code"].to_numpy(dtype=object), dtype="str"),
            "area_name": pd.array(frame["area_name"].to_numpy(dtype=object), dtype="str"),
        }
    )
    for name in names:
        out[name] = pd.Categorical(
            frame[name].to_numpy(dtype=object), categories=selected[name], ordered=True
        )
    out["count"] = frame["count"].to_numpy(dtype=np.int64)
    sort_keys = [out[n].cat.codes.to_numpy() for n in reversed(names)]
    area_rank = pd.Categorical(out["area_code"], categories=area_order).codes
    out = out.iloc[np.lexsort([*sort_keys, area_rank])].reset_index(drop=True)

    geography = parsed.geography or geography_from_name(path if not is_url(path_or_url)
                                                        else source)
    out.attrs = {
        "table_id": table_id if table_id is not None else table_id_from_name(
            source if is_url(path_or_url) else path),
        "layout": layout,
        "source": source,
        "sha256": sha256_of(path),
        "geography": geography,
        "date": parsed.date,
        "level": level_name,
        "variable": names[0] if len(names) == 1 else None,
        "variables": names,
        "variable_labels": dict(zip(names, parsed.variables)),
        "hierarchy": {n: hierarchies[n].to_attrs() for n in names},
        "intervals": {n: hierarchies[n].intervals_to_attrs() for n in names},
        "total_category": {n: hierarchies[n].total for n in names},
        "category_codes": {n: parsed.codes.get(v, {}) for v, n in zip(parsed.variables, names)},
        "inconsistencies": [] if inconsistencies is None
        else inconsistencies.to_dict("records"),
    }
    return out


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
