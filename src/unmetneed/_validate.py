"""Input checks shared by every layer.

Each check raises an :mod:`unmetneed.errors` exception whose message names the
column, category or value at fault and says how to fix it. Nothing is
dropped, imputed or clipped here.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from typing import Any, Literal, get_args, get_origin

import numpy as np
import pandas as pd

from unmetneed.errors import (
    DesignError,
    MissingColumnError,
    OptionError,
    UnmetneedError,
)

__all__ = [
    "as_column_list",
    "check_choice",
    "choices_of",
    "column_values",
    "numeric_column",
    "preview",
    "require_columns",
    "resolve_rng",
    "row_examples",
    "show",
]


def show(value: Any) -> str:
    """``repr`` of a label as the user wrote it (numpy scalars as plain Python)."""
    if isinstance(value, np.generic):
        value = value.item()
    return repr(value)


def preview(values: Sequence[Any], limit: int = 10) -> str:
    """``[a, b, c, ...]`` with at most ``limit`` items and the number left out."""
    values = [v.item() if isinstance(v, np.generic) else v for v in values]
    shown = ", ".join(repr(v) for v in values[:limit])
    more = f", ... ({len(values) - limit} more)" if len(values) > limit else ""
    return f"[{shown}{more}]"


def choices_of(options: Any) -> tuple[Any, ...]:
    """The valid values of an option set: a ``Literal`` alias's arguments, or the sequence itself."""
    if get_origin(options) is Literal:
        return get_args(options)
    args = get_args(options)  # Optional[Literal[...]] and unions of Literals
    if args and all(get_origin(a) is Literal or a is type(None) for a in args):
        return tuple(v for a in args for v in (get_args(a) if a is not type(None) else (None,)))
    return tuple(options)


def _same_choice(value: Any, choice: Any) -> bool:
    # True == 1: a bool must not pass for a numeric choice, nor the other way round.
    if isinstance(value, bool) != isinstance(choice, bool):
        return False
    try:
        return bool(value == choice)
    except (TypeError, ValueError):  # an array compares elementwise: not a choice
        return False


def check_choice(value: Any, name: str, choices: Any, *, error: type[UnmetneedError] = OptionError) -> Any:
    """Refuse an option that is not one of ``choices``, listing the valid ones.

    ``choices`` is the option set's ``Literal`` alias (read with
    :func:`typing.get_args`) or a sequence of values. Raises ``error``
    (:class:`~unmetneed.errors.OptionError` unless a caller needs its own).
    """
    valid = choices_of(choices)
    if not any(_same_choice(value, c) for c in valid):
        listed = ", ".join(repr(c) for c in valid)
        raise error(f"{name}={value!r} is not a valid choice; use one of {listed}")
    return value


def check_level(level: Any, *, error: type[UnmetneedError] = DesignError) -> float:
    """An interval level strictly between 0 and 1, as a float."""
    if (
        isinstance(level, bool)
        or not isinstance(level, (int, float, np.number))
        or not 0.0 < float(level) < 1.0
    ):
        raise error(f"level={level!r} must be a number strictly between 0 and 1, e.g. 0.9")
    return float(level)


def as_column_list(columns: str | Iterable[str] | None) -> list[str]:
    """Turn ``None``, one column name or several into a list of names."""
    if columns is None:
        return []
    if isinstance(columns, str):
        return [columns]
    names = list(columns)
    for name in names:
        if not isinstance(name, str):
            raise DesignError(f"column names must be strings; got {name!r}")
    return names


def require_columns(df: pd.DataFrame, columns: Iterable[str], role: str) -> None:
    """Raise :class:`MissingColumnError` for the first column ``df`` lacks."""
    for column in columns:
        if column not in df.columns:
            close = difflib.get_close_matches(str(column), [str(c) for c in df.columns], n=3)
            hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            raise MissingColumnError(
                f"{role} column {column!r} is not in the data{hint} "
                f"(columns: {', '.join(map(str, df.columns[:20]))}"
                f"{', ...' if len(df.columns) > 20 else ''})"
            )


def row_examples(mask: np.ndarray, index: pd.Index, limit: int = 5) -> str:
    """Describe the rows where ``mask`` holds: their count and the first labels."""
    where = np.flatnonzero(mask)
    shown = ", ".join(show(index[i]) for i in where[:limit])
    more = ", ..." if where.size > limit else ""
    return f"{where.size:,} row(s) (index {shown}{more})"


def repeated_keys(df: pd.DataFrame, keys: list[str]) -> tuple[int, str] | None:
    """Rows that repeat a combination of ``keys``: how many, and the first combination shown.

    ``None`` when every combination is unique.
    """
    repeated = df.duplicated(keys, keep=False).to_numpy()
    if not repeated.any():
        return None
    example = df.loc[repeated, keys].iloc[0].to_dict()
    return int(repeated.sum()), str({k: show(v) for k, v in example.items()})


def column_values(df: pd.DataFrame, column: str, role: str) -> pd.Series:
    """Return ``df[column]`` after checking it exists and has no missing values."""
    require_columns(df, [column], role)
    series = df[column]
    missing = series.isna().to_numpy()
    if missing.any():
        raise DesignError(
            f"{role} column {column!r} has missing values in "
            f"{row_examples(missing, df.index)}; recode them to an explicit category "
            "or remove those rows before building the design (nothing is dropped silently)"
        )
    return series


def numeric_column(df: pd.DataFrame, column: str, role: str) -> np.ndarray:
    """Return a numeric column as float64, refusing text, missing or infinite values."""
    series = column_values(df, column, role)
    if isinstance(series.dtype, pd.CategoricalDtype) or not (
        pd.api.types.is_numeric_dtype(series.dtype) or pd.api.types.is_bool_dtype(series.dtype)
    ):
        raise DesignError(
            f"{role} column {column!r} is not numeric (dtype {series.dtype}); "
            "use proportion() for a categorical variable, or convert it with pd.to_numeric"
        )
    values = series.to_numpy(dtype=np.float64)
    bad = ~np.isfinite(values)
    if bad.any():
        raise DesignError(f"{role} column {column!r} has infinite values in {row_examples(bad, df.index)}")
    return values


def resolve_rng(seed: int | np.random.Generator | None) -> np.random.Generator:
    """Return a numpy Generator from a seed, a Generator, or ``None`` (fresh entropy)."""
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is not None and not isinstance(seed, (int, np.integer)):
        raise DesignError(f"seed must be an int, a numpy Generator or None; got {seed!r}")
    return np.random.default_rng(seed)
