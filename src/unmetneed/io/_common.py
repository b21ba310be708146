"""Small helpers shared by the readers: hashing, paths, optional packages, checked CSVs, counts."""

from __future__ import annotations

import importlib
import os
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd

from unmetneed._provenance import sha256_file
from unmetneed._validate import preview
from unmetneed.errors import ReadError

__all__ = [
    "as_path",
    "is_url",
    "optional_module",
    "parse_counts",
    "preview",
    "read_csv_checked",
    "sha256_of",
]

_URL_PREFIXES = ("http://", "https://", "ftp://")


# One home for the checksum (unmetneed._provenance); the readers' name for it.
sha256_of = sha256_file


def optional_module(name: str, purpose: str, package: str) -> ModuleType:
    """Import an optional dependency, or say which package to install for ``purpose``."""
    try:
        return importlib.import_module(name)
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(
            f"{purpose} needs the {package!r} package: pip install {package} (or pip install unmetneed[io])"
        ) from err


def is_url(value: object) -> bool:
    """True when ``value`` is a string that names a remote file."""
    return isinstance(value, str) and value.lower().startswith(_URL_PREFIXES)


def as_path(path: str | os.PathLike[str]) -> Path:
    """A local path that must exist, or a :class:`ReadError` saying so."""
    if not isinstance(path, (str, os.PathLike)):
        raise ReadError(f"expected a file path (str or os.PathLike), got {type(path).__name__}")
    resolved = Path(path)
    if not resolved.is_file():
        raise ReadError(f"file not found: {str(resolved)!r}")
    return resolved


def _looks_numeric_code(values: pd.Series) -> bool:
    """Digits with a leading zero ("01", "007"): codes, not numbers."""
    text = values.str.lstrip("-")
    return bool(text.str.match(r"0\d").any())


def read_csv_checked(
    path: str | os.PathLike[str],
    *,
    usecols: Sequence[str] | None = None,
    na_values: Sequence[str] = ("",),
) -> pd.DataFrame:
    r"""Read a CSV file that must be a whole, rectangular table.

    Refuses what ``pandas.read_csv`` lets through silently: a file that is not a
    table (an HTML error page saved as .csv, a file with no rows), repeated
    column names (pandas renames them ``x.1``), rows with more or fewer fields
    than the header (a file cut mid-line), and whole rows repeated at the end
    (a copy appended twice). Only ``na_values`` are missing (by default empty
    cells: the label "NA" stays a label); columns whose values are all numbers
    become numeric unless a value has a leading zero ("01"), which keeps the
    column as string codes. Raises :class:`~unmetneed.errors.ReadError` on each of these.

    Public as :func:`unmetneed.io.read_csv_checked`.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from unmetneed.io import read_csv_checked
    >>> file = pathlib.Path(tempfile.mkdtemp()) / "codes.csv"
    >>> _ = file.write_text("code,label,count\n01,NA,5\n02,b,7\n")
    >>> read_csv_checked(file).to_dict("list")
    {'code': ['01', '02'], 'label': ['NA', 'b'], 'count': [5, 7]}
    """
    path = Path(path)
    with open(path, "rb") as handle:
        head = handle.read(2048)
    if path.suffix.lower() not in (".gz", ".bz2", ".zip", ".xz", ".zst"):
        start = head.lstrip().lower()
        if start.startswith((b"<!doctype", b"<html", b"<?xml", b"<head", b"<body")):
            raise ReadError(
                f"{path.name} is not a CSV table: it starts like an HTML/XML page ({head[:40]!r}); "
                "a download probably saved an error page; fetch the file again"
            )
    try:
        header = pd.read_csv(path, nrows=0, dtype=str).columns
        raw_header = pd.read_csv(path, nrows=1, header=None, dtype=str, keep_default_na=False)
    except Exception as err:
        raise ReadError(f"could not read {str(path)!r} as CSV: {err}") from err
    names = [str(v) for v in raw_header.iloc[0].tolist()] if len(raw_header) else list(header)
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ReadError(
            f"{path.name}: column name(s) {repeated} appear more than once in the header; "
            "rename them so every column has its own name"
        )
    try:
        frame = pd.read_csv(
            path,
            dtype=str,
            keep_default_na=False,
            na_values=list(na_values),
            usecols=list(usecols) if usecols is not None else None,
            on_bad_lines="error",
            engine="c",
        )
    except Exception as err:
        raise ReadError(f"could not read {str(path)!r} as CSV (is it cut short or ragged?): {err}") from err
    if frame.shape[1] <= 1 and frame.shape[0] == 0:
        raise ReadError(
            f"{path.name} has no rows of data (header {list(frame.columns)[:5]}); "
            "it is empty or not a CSV table"
        )
    if len(frame) and len(frame.columns) > 1:
        last = frame.iloc[-1]
        if last.isna().iloc[1:].all() and frame.iloc[:-1].notna().iloc[:, 1:].any(axis=None):
            raise ReadError(
                f"{path.name}: the last row has only its first field ({last.iloc[0]!r}); "
                "the file looks cut short: fetch it again"
            )
    for column in frame.columns:
        values = frame[column]
        present = values.dropna()
        if not len(present) or _looks_numeric_code(present):
            continue
        numbers = pd.to_numeric(present, errors="coerce")
        if numbers.notna().all():
            frame[column] = pd.to_numeric(values)
    if usecols is not None:
        frame = frame[list(usecols)]
    return frame


def parse_counts(values: pd.Series, *, positive: bool = False) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """A count column as floats and, by problem, the rows that are not whole numbers >= 0.

    Text may carry thousands separators (``"1,204"``); ``positive`` adds zero as a problem.
    """
    if values.dtype.kind in "iuf":
        numbers = values.to_numpy(dtype=float, copy=True)
    else:
        text = values.astype(str).str.replace(",", "", regex=False).str.strip()
        numbers = pd.to_numeric(text, errors="coerce").to_numpy(dtype=float, copy=True)
        numbers[values.isna().to_numpy()] = np.nan
    with np.errstate(invalid="ignore"):
        problems = {
            "missing or not a number": ~np.isfinite(numbers),
            "negative": numbers < 0,
            "not a whole number": np.isfinite(numbers) & (numbers != np.floor(numbers)),
        }
        if positive:
            problems["zero"] = numbers == 0
    return numbers, problems
