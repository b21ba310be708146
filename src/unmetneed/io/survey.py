"""Read survey microdata (CSV, Parquet, Stata, SPSS) into pandas."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Mapping, Sequence
from numbers import Number
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np
import pandas as pd

from unmetneed._validate import check_choice
from unmetneed.errors import MissingColumnError, ReadError
from unmetneed.io._common import (
    as_path,
    optional_module,
    preview,
    read_csv_checked,
    sha256_of,
)

__all__ = ["FORMATS", "read_survey"]

Format = Literal["csv", "parquet", "stata", "spss"]
FORMATS: tuple[str, ...] = get_args(Format)
_SUFFIXES = {
    ".csv": "csv",
    ".txt": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".dta": "stata",
    ".sav": "spss",
    ".zsav": "spss",
}
_COMPRESSED = (".gz", ".bz2", ".zip", ".xz", ".zst")


def _format_from_suffix(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in _COMPRESSED:
        suffixes = suffixes[:-1]
    if suffixes and suffixes[-1] in _SUFFIXES:
        return _SUFFIXES[suffixes[-1]]
    raise ReadError(
        f"cannot tell the format of {path.name!r} from its suffix; pass format= one of "
        f"{list(FORMATS)} (suffixes recognised: {sorted(_SUFFIXES)})"
    )


def _check_columns(requested: Sequence[str] | None, available: Sequence[str], path: Path) -> list[str] | None:
    if requested is None:
        return None
    requested = list(requested)
    missing = [c for c in requested if c not in available]
    if missing:
        raise MissingColumnError(
            f"{path.name}: columns {missing} not found; the file has {preview(list(available), 20)}"
        )
    return requested


def _import_pyreadstat() -> Any:
    return optional_module("pyreadstat", "reading Stata .dta and SPSS .sav files", "pyreadstat")


def _sort_key(code: Any) -> tuple[int, Any]:
    if isinstance(code, (int, float, np.integer, np.floating)):
        return (0, float(code))
    return (1, str(code))


def _labelled_categorical(values: pd.Series, labels: Mapping[Any, str]) -> pd.Categorical[str] | None:
    """Ordered Categorical of the labels (ordered by code), or None when some
    non-missing values have no label."""
    codes = sorted(labels, key=_sort_key)
    numeric = all(isinstance(c, Number) for c in codes)
    if numeric:
        if values.dtype.kind not in "iufb":
            return None
        keys, code_keys = values.astype(float), [float(c) for c in codes]
    else:
        keys, code_keys = values, list(codes)
    names = [str(labels[c]) for c in codes]
    repeated = Counter(names)
    # Two codes sharing one label would merge categories: keep them apart.
    names = [
        (f"{n} [{c:g}]" if numeric else f"{n} [{c}]") if repeated[n] > 1 else n for n, c in zip(names, codes)
    ]
    if not keys.dropna().isin(code_keys).all():
        return None
    return pd.Categorical(keys.map(dict(zip(code_keys, names))), categories=names, ordered=True)


def _apply_value_labels(frame: pd.DataFrame, value_labels: Mapping[str, Mapping[Any, str]]) -> list[str]:
    partial: list[str] = []
    for column, labels in value_labels.items():
        if column not in frame.columns or not labels:
            continue
        categorical = _labelled_categorical(frame[column], labels)
        if categorical is None:
            partial.append(column)
        else:
            frame[column] = categorical
    return partial


def read_survey(
    path: str | os.PathLike[str],
    *,
    format: Format | None = None,
    columns: Sequence[str] | None = None,
    value_labels: bool = True,
    na_values: Sequence[str] = ("",),
) -> pd.DataFrame:
    """Read survey microdata from CSV, Parquet, Stata or SPSS into a DataFrame.

    Parameters
    ----------
    path : str or os.PathLike
        The file. CSV may be compressed (``.csv.gz``).
    format : {'csv', 'parquet', 'stata', 'spss'}, optional
        File format; by default from the suffix (``.csv``, ``.txt``,
        ``.parquet``, ``.pq``, ``.dta``, ``.sav``, ``.zsav``).
    columns : sequence of str, optional
        Columns to read (all by default). Names not in the file raise
        :class:`~unmetneed.errors.MissingColumnError` listing the ones there.
    value_labels : bool, default True
        Stata/SPSS value labels become ordered pandas Categoricals whose
        categories are the labels sorted by code (every labelled code, also
        codes no respondent has). A column with values that have no label keeps
        its codes (listed in ``attrs["partially_labelled"]``), so no value is
        lost. False keeps codes everywhere.
    na_values : sequence of str, default ("",)
        CSV only: the texts that mean missing. By default only empty cells, so
        a label such as ``"NA"`` (not applicable) stays a label; pass
        ``na_values=("", "NA")`` to treat it as missing.

    Returns
    -------
    pandas.DataFrame
        ``attrs`` holds ``source``, ``format``, ``sha256``, ``value_labels``
        (column -> {code: label}), ``variable_labels`` (column -> label, Stata
        and SPSS) and ``partially_labelled``.

    Raises
    ------
    ReadError
        Unknown format or a file that cannot be parsed; a CSV that is not a
        table (an HTML page, no rows), has repeated column names, ragged rows
        or a last row cut short.
    MissingColumnError
        A requested column does not exist.
    ImportError
        ``pyreadstat`` (Stata/SPSS) or ``pyarrow`` (Parquet) is not installed.

    Notes
    -----
    CSV columns whose values are all numbers become numeric, except codes
    with a leading zero (``"01"``, ``"02"``), which stay strings.
    Stata and SPSS files are read with pyreadstat; user-defined missing values
    (SPSS) and extended missing values (Stata ``.a``-``.z``) become missing.
    Two codes that share a label become distinct categories ``"label [code]"``.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> import pandas as pd, unmetneed as um
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "survey.dta"
    >>> pd.DataFrame({"sex": [2, 2, 1]}).to_stata(
    ...     path, write_index=False, value_labels={"sex": {1: "Female", 2: "Male"}})
    >>> survey = um.io.read_survey(path)
    >>> survey["sex"].tolist(), survey["sex"].cat.categories.tolist()
    (['Male', 'Male', 'Female'], ['Female', 'Male'])
    """
    if format is not None:
        check_choice(format, "format", Format)
    if not isinstance(value_labels, bool):
        raise ReadError(f"value_labels must be True or False, got {value_labels!r}")
    if isinstance(columns, str):
        raise ReadError(f"columns= must be a list of column names, got the string {columns!r}")
    if isinstance(na_values, str) or not all(isinstance(v, str) for v in na_values):
        raise ReadError(f"na_values must be a list of strings, e.g. ('', 'NA'); got {na_values!r}")
    file = as_path(path)
    kind = format if format is not None else _format_from_suffix(file)
    labels: dict[str, dict[Any, str]] = {}
    variable_labels: dict[str, str] = {}
    try:
        if kind == "csv":
            available = list(pd.read_csv(file, nrows=0).columns)
            usecols = _check_columns(columns, available, file)
            frame = read_csv_checked(file, usecols=usecols, na_values=na_values)
        elif kind == "parquet":
            pq = optional_module("pyarrow.parquet", "reading Parquet", "pyarrow")
            available = list(pq.read_schema(file).names)
            usecols = _check_columns(columns, available, file)
            frame = pd.read_parquet(file, columns=usecols, engine="pyarrow")
        else:
            pyreadstat = _import_pyreadstat()
            reader = pyreadstat.read_dta if kind == "stata" else pyreadstat.read_sav
            _, meta = reader(str(file), metadataonly=True)
            usecols = _check_columns(columns, list(meta.column_names), file)
            frame, meta = reader(str(file), usecols=usecols, apply_value_formats=False)
            labels = {k: dict(v) for k, v in meta.variable_value_labels.items() if k in frame.columns}
            variable_labels = {
                k: v for k, v in zip(meta.column_names, meta.column_labels) if v and k in frame.columns
            }
    except (MissingColumnError, ReadError, ImportError):
        raise
    except Exception as err:  # the parsers raise many unrelated types
        raise ReadError(f"could not read {str(file)!r} as {kind}: {err}") from err

    partial = _apply_value_labels(frame, labels) if value_labels else []
    frame.attrs = {
        "source": str(file),
        "format": kind,
        "sha256": sha256_of(file),
        "value_labels": labels,
        "variable_labels": variable_labels,
        "partially_labelled": partial,
    }
    return frame
