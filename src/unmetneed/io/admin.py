"""Read administrative counts (e.g. council-funded clients by area)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from unmetneed._validate import show
from unmetneed.errors import MissingColumnError, ReadError
from unmetneed.io._common import parse_counts, preview
from unmetneed.io.survey import Format, read_survey

__all__ = ["read_admin_counts"]


def read_admin_counts(
    path: str | os.PathLike[str] | pd.DataFrame,
    *,
    area_col: str = "area_code",
    count_col: str = "count",
    by: str | Sequence[str] | None = None,
    known_areas: Iterable[str] | None = None,
    format: Format | None = None,
) -> pd.DataFrame:
    """Read and validate administrative counts by area (and characteristics).

    Parameters
    ----------
    path : str, os.PathLike or pandas.DataFrame
        A file in any format :func:`read_survey` reads, or a frame already in
        memory (validated the same way; it is not modified).
    area_col : str, default 'area_code'
        Column holding the area codes (ONS GSS codes).
    count_col : str, default 'count'
        Column holding the counts.
    by : str or sequence of str, optional
        Further key columns (e.g. ``"age_band"``); each combination of area and
        ``by`` must appear once.
    known_areas : iterable of str, optional
        The area codes that may appear (e.g. the upper-tier councils of
        ``data/reference/councils.csv``); any other code is refused.
    format : {'csv', 'parquet', 'stata', 'spss'}, optional
        Passed to :func:`read_survey`.

    Returns
    -------
    pandas.DataFrame
        Columns ``area_code`` (str), the ``by`` columns as read, and ``count``
        (int64), in the file's row order; ``attrs`` keeps the reader's
        provenance (``source``, ``sha256``) plus ``area_col`` and ``count_col``.

    Raises
    ------
    MissingColumnError
        ``area_col``, ``count_col`` or a ``by`` column is absent.
    ReadError
        Missing area codes or keys, counts that are missing, non-numeric,
        negative or not whole numbers, a repeated area (and ``by``)
        combination, or area codes not in ``known_areas``. Each message names
        the rows and values at fault.

    Examples
    --------
    >>> import pandas as pd, unmetneed as um
    >>> counts = pd.DataFrame({"la": ["E06000001", "E06000002"], "n": [120, 75]})
    >>> um.io.read_admin_counts(counts, area_col="la", count_col="n")
       area_code  count
    0  E06000001    120
    1  E06000002     75
    """
    by_cols = [by] if isinstance(by, str) else list(by or [])
    wanted = [area_col, *by_cols, count_col]
    if len(set(wanted)) != len(wanted):
        raise ReadError(f"area_col, by and count_col must name different columns, got {wanted}")
    if isinstance(path, pd.DataFrame):
        missing = [c for c in wanted if c not in path.columns]
        if missing:
            raise MissingColumnError(
                f"columns {missing} not found; the frame has {preview(list(path.columns), 20)}"
            )
        frame = path[wanted].copy()
        frame.attrs = {"source": "DataFrame", "sha256": None}
        where = "frame"
    else:
        frame = read_survey(path, format=format, columns=wanted)
        frame.attrs = {k: frame.attrs[k] for k in ("source", "format", "sha256")}
        where = os.fspath(path)

    rows = np.arange(len(frame)) + 2  # line numbers in a CSV with a header
    area = frame[area_col]
    blank = area.isna() | (area.astype(str).str.strip() == "")
    if blank.any():
        raise ReadError(
            f"{where}: column {area_col!r} is missing on rows {preview(rows[blank.to_numpy()].tolist())}"
        )
    area_code = area.astype(str).str.strip()
    for column in by_cols:
        missing_key = frame[column].isna()
        if missing_key.any():
            raise ReadError(
                f"{where}: column {column!r} is missing on rows "
                f"{preview(rows[missing_key.to_numpy()].tolist())}; give these "
                "rows a category or remove them before reading"
            )

    raw = frame[count_col]
    numbers, problems = parse_counts(raw)
    for what, bad in problems.items():
        if bad.any():
            shown = [
                f"row {int(r)} ({a}): {show(v)}"
                for r, a, v in zip(rows[bad][:8], area_code.to_numpy()[bad][:8], raw.to_numpy()[bad][:8])
            ]
            raise ReadError(
                f"{where}: column {count_col!r} has {int(bad.sum())} count(s) {what}: "
                f"{'; '.join(shown)}; counts must be whole numbers >= 0"
            )

    out = pd.DataFrame({"area_code": pd.array(area_code.to_numpy(dtype=object), dtype="str")})
    for column in by_cols:
        out[column] = frame[column].to_numpy()
        if isinstance(frame[column].dtype, pd.CategoricalDtype):
            out[column] = out[column].astype(frame[column].dtype)
    out["count"] = numbers.astype(np.int64)

    keys = ["area_code", *by_cols]
    repeated = out.duplicated(subset=keys, keep=False).to_numpy()
    if repeated.any():
        examples = out.loc[repeated, keys].drop_duplicates().head(8).to_dict("records")
        raise ReadError(
            f"{where}: {int(repeated.sum())} rows repeat a combination of {keys} "
            f"(rows {preview(rows[repeated].tolist())}), e.g. {examples}; each must appear "
            "once: sum them first if they are parts of one count"
        )
    if known_areas is not None:
        if isinstance(known_areas, str):
            raise ReadError("known_areas must be a collection of area codes, not one string")
        known = set(map(str, known_areas))
        unknown = out.loc[~out["area_code"].isin(known), "area_code"].unique()
        if len(unknown):
            raise ReadError(
                f"{where}: area codes not in known_areas: {preview(list(unknown))}; check "
                "for old codes (e.g. pre-2023 Cumbria E10000006) or typing errors"
            )
    out.attrs = {**frame.attrs, "area_col": area_col, "count_col": count_col}
    return out
