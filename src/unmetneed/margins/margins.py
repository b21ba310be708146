"""`Margins`: population totals by category, for one variable or a cross."""

from __future__ import annotations

import html
from collections.abc import Iterator, Mapping, Sequence
from numbers import Real

import numpy as np
import pandas as pd

from unmetneed._validate import require_columns, show
from unmetneed.errors import MarginsError

__all__ = ["MarginKey", "Margins"]

MarginKey = str | tuple[str, ...]


class Margins(Mapping[MarginKey, pd.Series | float]):
    """Population totals to calibrate survey weights to.

    Parameters
    ----------
    entries : mapping
        Keys are a variable name, or a tuple of names for a cross-classification
        such as ``("area_code", "sex")``. Values are pandas Series of population
        totals indexed by category (a MultiIndex for a cross), or a number: the
        population total of a numeric auxiliary variable (linear calibration).

    Raises
    ------
    MarginsError
        A total is missing (NaN) or negative, a category is repeated, a cross
        has the wrong number of index levels, or a value is neither a Series
        nor a number.

    Notes
    -----
    Agreement of the grand totals of the categorical margins, and the fit of
    the categories to a design's respondents, are checked by the weighting
    functions (:func:`unmetneed.rake` and friends), which know the options
    ``reconcile=``, ``collapse=`` and ``allow_empty=``.

    Examples
    --------
    >>> import pandas as pd, unmetneed as um
    >>> m = um.Margins({
    ...     "sex": pd.Series({"Female": 510.0, "Male": 490.0}),
    ...     ("area", "sex"): pd.Series({("A", "Female"): 250.0, ("A", "Male"): 240.0,
    ...                                 ("B", "Female"): 260.0, ("B", "Male"): 250.0}),
    ...     "age_years": 45_000.0,
    ... })
    >>> m.categorical_keys
    ['sex', ('area', 'sex')]
    >>> float(m.total("sex"))
    1000.0
    """

    def __init__(self, entries: Mapping[MarginKey, pd.Series | float]) -> None:
        if isinstance(entries, Margins):
            entries = dict(entries.items())
        if not isinstance(entries, Mapping) or not entries:
            raise MarginsError("Margins needs a non-empty mapping of variable -> totals")
        self._entries: dict[MarginKey, pd.Series | float] = {}
        for key, value in entries.items():
            key = _check_key(key)
            if key in self._entries:
                raise MarginsError(f"margin {key!r} is given twice")
            self._entries[key] = _check_value(key, value)

    @classmethod
    def from_frame(
        cls,
        df: pd.DataFrame,
        *,
        variable: str | Sequence[str],
        by: str | Sequence[str] | None = None,
        count: str = "count",
    ) -> Margins:
        """Margins from a tidy table (as the census readers return).

        Parameters
        ----------
        df : DataFrame
            One row per category (per ``by`` group), with a count column.
        variable : str or list of str
            Category column(s).
        by : str or list of str, optional
            Grouping columns (e.g. ``"area_code"``): the margin becomes the
            cross ``(by..., variable...)``.
        count : str, default "count"
            Column of population counts.

        Examples
        --------
        >>> import pandas as pd, unmetneed as um
        >>> tidy = pd.DataFrame({"area_code": ["A", "A", "B", "B"],
        ...                      "sex": ["Female", "Male", "Female", "Male"],
        ...                      "count": [250, 240, 260, 250]})
        >>> m = um.Margins.from_frame(tidy, variable="sex", by="area_code")
        >>> list(m)
        [('area_code', 'sex')]
        """
        variables = [variable] if isinstance(variable, str) else list(variable)
        groups = [] if by is None else ([by] if isinstance(by, str) else list(by))
        names = groups + variables
        require_columns(df, names + [count], "margin")
        duplicated = df.duplicated(names, keep=False)
        if duplicated.any():
            first = df.loc[duplicated, names].iloc[0].tolist()
            raise MarginsError(
                f"the table has {int(duplicated.sum())} rows repeating a category of "
                f"{names}, e.g. {first}; aggregate them first (nothing is summed silently)"
            )
        totals = pd.to_numeric(df[count], errors="coerce")
        bad = totals.isna() & df[count].notna()
        if bad.any():
            raise MarginsError(
                f"count column {count!r} has non-numeric values, e.g. {show(df.loc[bad, count].iloc[0])}"
            )
        key: MarginKey = names[0] if len(names) == 1 else tuple(names)
        if len(names) == 1:
            index = pd.Index(df[names[0]], name=names[0])
        else:
            index = pd.MultiIndex.from_frame(df[names])
        return cls({key: pd.Series(totals.to_numpy(dtype=np.float64), index=index)})

    # -- mapping protocol -----------------------------------------------------------
    def __getitem__(self, key: MarginKey) -> pd.Series | float:
        """The totals of ``key`` (a copy: changing it never changes the margins)."""
        value = self._entries[key]
        return value.copy(deep=True) if isinstance(value, pd.Series) else value

    def __iter__(self) -> Iterator[MarginKey]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __or__(self, other: Margins) -> Margins:
        merged = dict(self._entries)
        for key, value in Margins(other).items():
            if key in merged:
                raise MarginsError(f"margin {key!r} is in both sets of margins")
            merged[key] = value
        return Margins(merged)

    # -- views -------------------------------------------------------------------------
    @property
    def categorical_keys(self) -> list[MarginKey]:
        """Keys whose totals are by category."""
        return [k for k, v in self._entries.items() if isinstance(v, pd.Series)]

    @property
    def numeric_keys(self) -> list[str]:
        """Keys of numeric auxiliary totals."""
        # _check_value keys a numeric total by one variable, so these keys are all str
        return [k for k, v in self._entries.items() if isinstance(k, str) and not isinstance(v, pd.Series)]

    @staticmethod
    def variables_of(key: MarginKey) -> list[str]:
        """The data columns a margin key refers to."""
        return [key] if isinstance(key, str) else list(key)

    def total(self, key: MarginKey) -> float:
        """Grand total of a margin (the number itself for a numeric auxiliary)."""
        value = self._entries[key]
        return float(value.sum()) if isinstance(value, pd.Series) else float(value)

    def to_frame(self) -> pd.DataFrame:
        """All margins in one long table: ``margin, category, total``."""
        rows = []
        for key, value in self._entries.items():
            if isinstance(value, pd.Series):
                labels = [
                    str(c) if not isinstance(c, tuple) else " x ".join(map(str, c)) for c in value.index
                ]
                rows.append(pd.DataFrame({"margin": str(key), "category": labels, "total": value.to_numpy()}))
            else:
                rows.append(pd.DataFrame({"margin": [key], "category": ["(total)"], "total": [float(value)]}))
        return pd.concat(rows, ignore_index=True)

    def __repr__(self) -> str:
        lines = [f"<Margins: {len(self)} margin(s)>"]
        for key, value in self._entries.items():
            if isinstance(value, pd.Series):
                lines.append(f"  {key!r}: {len(value)} categories, total {value.sum():,.6g}")
            else:
                lines.append(f"  {key!r}: numeric total {float(value):,.6g}")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        return f"<pre>{html.escape(repr(self))}</pre>"


def _check_key(key: object) -> MarginKey:
    if isinstance(key, str):
        return key
    if isinstance(key, tuple) and key and all(isinstance(k, str) for k in key):
        if len(set(key)) != len(key):
            raise MarginsError(f"margin key {key!r} repeats a variable")
        return key if len(key) > 1 else key[0]
    raise MarginsError(
        f"margin key {key!r} must be a variable name or a tuple of names, e.g. ('area_code', 'sex')"
    )


def _check_value(key: MarginKey, value: object) -> pd.Series | float:
    if isinstance(value, pd.Series):
        names = Margins.variables_of(key)
        if value.index.nlevels != len(names):
            raise MarginsError(
                f"margin {key!r} crosses {len(names)} variables but its Series index has "
                f"{value.index.nlevels} level(s); index a cross by a MultiIndex"
            )
        totals = pd.to_numeric(value, errors="coerce").astype(np.float64)
        if totals.isna().any():
            missing = [show(c) for c in value.index[totals.isna().to_numpy()][:5]]
            raise MarginsError(f"margin {key!r} has missing or non-numeric totals for {', '.join(missing)}")
        negative = totals < 0
        if negative.any():
            cats = [show(c) for c in value.index[negative.to_numpy()][:5]]
            raise MarginsError(f"margin {key!r} has negative totals for {', '.join(cats)}")
        if not np.isfinite(totals.to_numpy()).all():
            raise MarginsError(f"margin {key!r} has infinite totals")
        if value.index.has_duplicates:
            dup = show(value.index[value.index.duplicated()][0])
            raise MarginsError(f"margin {key!r} repeats category {dup}; sum the rows first")
        index = value.index.copy()
        index = index.set_names(names) if value.index.nlevels > 1 else index.rename(names[0])
        return pd.Series(totals.to_numpy(), index=index, name=str(key))
    if isinstance(value, Real) and not isinstance(value, bool):
        if not isinstance(key, str):
            raise MarginsError(f"numeric total for {key!r}: a numeric auxiliary is one variable")
        if not np.isfinite(float(value)):
            raise MarginsError(f"numeric total of {key!r} is {value!r}; it must be finite")
        return float(value)
    raise MarginsError(
        f"margin {key!r} must be a pandas Series of totals by category or a number; "
        f"got {type(value).__name__}"
    )
