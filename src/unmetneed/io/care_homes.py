"""Read a care-home register and providers' returns (residents by who pays).

Two layouts are read:

``"standard"``
    The library's own names: the register has ``home_id, area_code, region,
    home_type, nursing, beds`` (optional ``size_band``, ``rating``,
    ``deprivation_decile``, ``area_name``); the returns ``home_id, residents,
    self_funded, council_funded, nhs_funded, other_funded``.
``"cqc"``
    Column names of the care regulator's (CQC) care directory and of a
    provider-information-return extract, mapped as in :data:`CQC_REGISTER_COLUMNS`
    and :data:`CQC_RETURNS_COLUMNS` (e.g. ``"Location ID"`` -> ``home_id``,
    ``"Location Local Authority"`` -> the council, ``"Care homes beds"`` ->
    ``beds``, ``"Service user band - Older People"`` -> ``home_type``,
    ``"Location Latest Overall Rating"`` -> ``rating``).

Every check the census readers make applies: a missing column is named, an
unknown category is listed with the valid ones, counts must be whole numbers
>= 0, a home id appears once, and returns must belong to a home in the
register and not report more residents than it has beds.
"""

from __future__ import annotations

import os
from collections.abc import Hashable, Mapping
from typing import Any, Literal

import numpy as np
import pandas as pd

from unmetneed._validate import check_choice, preview
from unmetneed.errors import MissingColumnError, ReadError
from unmetneed.io._common import parse_counts
from unmetneed.io.survey import read_survey

__all__ = [
    "CQC_REGISTER_COLUMNS",
    "CQC_RETURNS_COLUMNS",
    "HOME_TYPES",
    "RATINGS",
    "SIZE_BANDS",
    "read_care_home_register",
    "read_provider_returns",
]

Layout = Literal["auto", "standard", "cqc"]
HOME_TYPES = ("older_people", "younger_adults")
SIZE_BANDS = ("1-19", "20-49", "50+")
RATINGS = ("outstanding", "good", "requires_improvement", "inadequate", "not_rated")
FUNDING = ("self_funded", "council_funded", "nhs_funded", "other_funded")
RETURN_COLUMNS = ("home_id", "residents", *FUNDING)

#: CQC care directory column -> the register's standard column.
CQC_REGISTER_COLUMNS: dict[str, str] = {
    "Location ID": "home_id",
    "Location Local Authority": "area",
    "Location Region": "region",
    "Care homes beds": "beds",
    "Service type - Care home service with nursing": "nursing",
    "Service user band - Older People": "older_people",
    "Location Latest Overall Rating": "rating",
}
#: Optional CQC-layout register columns.
CQC_OPTIONAL_COLUMNS: dict[str, str] = {
    "Location Name": "home_name",
    "Location IMD Decile": "deprivation_decile",
}
#: Provider-information-return extract column -> the returns' standard column.
CQC_RETURNS_COLUMNS: dict[str, str] = {
    "Location ID": "home_id",
    "Residents": "residents",
    "Residents self-funded": "self_funded",
    "Residents funded by local authority": "council_funded",
    "Residents funded by NHS": "nhs_funded",
    "Residents other funding": "other_funded",
}
_CQC_RATINGS = {
    "outstanding": "outstanding",
    "good": "good",
    "requires improvement": "requires_improvement",
    "inadequate": "inadequate",
    "not rated": "not_rated",
    "": "not_rated",
    "nan": "not_rated",
    "insufficient evidence to rate": "not_rated",
}
_YES = {"y", "yes", "true", "1", "t"}
_NO = {"", "n", "no", "false", "0", "f", "nan", "none"}


def _where(source: str | os.PathLike[str] | pd.DataFrame) -> str:
    return "frame" if isinstance(source, pd.DataFrame) else os.fspath(source)


def _load(
    source: str | os.PathLike[str] | pd.DataFrame, fmt: Literal["csv", "parquet"] | None
) -> pd.DataFrame:
    if isinstance(source, pd.DataFrame):
        frame = source.copy()
        frame.attrs = {"source": "DataFrame", "sha256": None}
        return frame
    if not isinstance(source, (str, os.PathLike)):
        raise ReadError(f"expected a file path or a pandas DataFrame, got {type(source).__name__}")
    frame = read_survey(source, format=fmt, value_labels=False)
    frame.attrs = {k: frame.attrs.get(k) for k in ("source", "format", "sha256")}
    return frame


def _layout(frame: pd.DataFrame, layout: str, cqc_id: str = "Location ID") -> str:
    check_choice(layout, "layout", Layout)
    if layout != "auto":
        return layout
    return "cqc" if cqc_id in frame.columns else "standard"


def _require(frame: pd.DataFrame, columns: list[str], where: str, layout: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise MissingColumnError(
            f"{where}: columns {missing} not found ({layout} layout); the file has "
            f"{preview(list(map(str, frame.columns)), 20)}"
        )


def _ids(values: pd.Series, column: str, where: str) -> np.ndarray:
    rows = np.arange(len(values)) + 2
    blank = values.isna().to_numpy() | (values.astype(str).str.strip() == "").to_numpy()
    if blank.any():
        raise ReadError(
            f"{where}: column {column!r} is missing on rows "
            f"{preview(rows[blank].tolist())}; every home needs an id"
        )
    ids = values.astype(str).str.strip().to_numpy(dtype=object)
    repeated = pd.Series(ids).duplicated(keep=False).to_numpy()
    if repeated.any():
        raise ReadError(
            f"{where}: {int(repeated.sum())} rows repeat a home id in column {column!r}: "
            f"{preview(sorted(set(ids[repeated])))} (rows {preview(rows[repeated].tolist())}); "
            "each home must appear once"
        )
    return ids


def _counts(
    values: pd.Series, column: str, where: str, ids: np.ndarray, *, positive: bool = False
) -> np.ndarray:
    numbers, problems = parse_counts(values, positive=positive)
    for what, bad in problems.items():
        if bad.any():
            shown = [f"{i}: {v!r}" for i, v in zip(ids[bad][:8], values.to_numpy()[bad][:8])]
            need = "whole numbers >= 1" if positive else "whole numbers >= 0"
            raise ReadError(
                f"{where}: column {column!r} has {int(bad.sum())} value(s) {what}, for homes "
                f"{'; '.join(shown)}{' ...' if bad.sum() > 8 else ''}; they must be {need}"
            )
    return numbers.astype(np.int64)


def _categories(
    values: pd.Series, column: str, where: str, ids: np.ndarray, categories: tuple[str, ...]
) -> pd.Categorical:
    text = values.astype(str).str.strip()
    missing = values.isna().to_numpy()
    bad = missing | ~text.isin(list(categories)).to_numpy()
    if bad.any():
        unknown = sorted(set(text[bad & ~missing])) + (["<missing>"] if missing.any() else [])
        raise ReadError(
            f"{where}: column {column!r} has unknown categories {preview(unknown)} (homes "
            f"{preview(list(ids[bad]), 5)}); expected one of {list(categories)}"
        )
    result = pd.Categorical(text.to_numpy(dtype=object), categories=list(categories), ordered=True)
    return result


def _flag(values: pd.Series, column: str, where: str, ids: np.ndarray) -> np.ndarray:
    if values.dtype == bool:
        return values.to_numpy(dtype=bool)
    text = values.astype(str).str.strip().str.lower()
    yes = text.isin(_YES).to_numpy()
    no = text.isin(_NO).to_numpy() | values.isna().to_numpy()
    bad = ~(yes | no)
    if bad.any():
        raise ReadError(
            f"{where}: column {column!r} has values that are neither yes nor no: "
            f"{preview(sorted(set(values.astype(str)[bad])))} (homes {preview(list(ids[bad]), 5)}); "
            "use Y / blank (CQC) or True / False"
        )
    return yes


def size_bands(beds: np.ndarray) -> pd.Categorical[str]:
    """The ONS size bands of a number of beds: ``1-19``, ``20-49``, ``50+``."""
    codes = np.where(beds < 20, 0, np.where(beds < 50, 1, 2))
    return pd.Categorical.from_codes(codes, categories=pd.Index(SIZE_BANDS), ordered=True)


def _council_codes(
    values: pd.Series, where: str, ids: np.ndarray, area_codes: Mapping[str, str] | None
) -> np.ndarray:
    """GSS codes as given, or council names looked up (case-insensitively)."""
    text = values.astype(str).str.strip()
    if area_codes is None:
        from unmetneed.datasets.example import reference_path  # same layer: data files

        councils = pd.read_csv(reference_path("councils.csv"), dtype=str)
        area_codes = dict(zip(councils["area_name"], councils["area_code"]))
    lookup = {str(k).strip().lower(): str(v) for k, v in area_codes.items()}
    is_code = text.str.match(r"^[EWSN]\d{8}$").to_numpy()
    codes = np.where(
        is_code, text.to_numpy(dtype=object), text.str.lower().map(lookup).to_numpy(dtype=object)
    )
    unknown = pd.isna(codes)
    if unknown.any():
        raise ReadError(
            f"{where}: local authorities not recognised: {preview(sorted(set(text[unknown])))} "
            f"(homes {preview(list(ids[unknown]), 5)}); give GSS codes or pass "
            "area_codes={name: code} for these names"
        )
    return codes


def read_care_home_register(
    path: str | os.PathLike[str] | pd.DataFrame,
    *,
    layout: Layout = "auto",
    area_codes: Mapping[str, str] | None = None,
    known_areas: list[str] | None = None,
    format: Literal["csv", "parquet"] | None = None,
) -> pd.DataFrame:
    """Read and check a register of care homes (one row per home).

    Parameters
    ----------
    path : str, os.PathLike or pandas.DataFrame
        A CSV (optionally ``.csv.gz``) or Parquet file, or a frame in memory
        (checked the same way and not modified).
    layout : {'auto', 'standard', 'cqc'}, default 'auto'
        ``'cqc'`` maps the care directory's columns
        (:data:`CQC_REGISTER_COLUMNS`); ``'auto'`` picks it when a
        ``"Location ID"`` column is present.
    area_codes : mapping of str to str, optional
        Council name -> GSS code for the CQC layout, whose ``"Location Local
        Authority"`` holds names. Default: the 152 councils of
        ``data/reference/councils.csv``. Values that already are GSS codes
        are kept.
    known_areas : list of str, optional
        The council codes allowed; any other is refused.
    format : {'csv', 'parquet'}, optional
        By default from the file's suffix.

    Returns
    -------
    pandas.DataFrame
        ``home_id`` (str), ``area_code`` (str), ``region`` (str),
        ``home_type`` (``older_people`` | ``younger_adults``), ``nursing``
        (bool), ``beds`` (int64), ``size_band`` (``1-19`` | ``20-49`` |
        ``50+``, from ``beds`` when absent), ``rating`` (``outstanding`` |
        ``good`` | ``requires_improvement`` | ``inadequate`` | ``not_rated``),
        ``deprivation_decile`` (Int64, missing when not given); categories are
        ordered Categoricals. ``attrs`` holds ``source``, ``sha256`` and
        ``layout``.

    Raises
    ------
    MissingColumnError
        A required column is absent (named, with the columns the file has).
    ReadError
        Blank or repeated home ids (listed), beds missing, negative, zero or
        not whole, unknown home types, ratings or size bands (listed with the
        valid ones), a ``size_band`` that disagrees with ``beds``, an unknown
        local authority, a deprivation decile outside 1-10.

    Examples
    --------
    >>> import unmetneed as um
    >>> eng = um.datasets.load_synthetic_england()
    >>> register = um.io.read_care_home_register(eng.care_homes.register)
    >>> len(register), int(register["beds"].sum())
    (14000, 477887)
    """
    where = _where(path)
    frame = _load(path, format)
    chosen = _layout(frame, layout)
    if chosen == "cqc":
        _require(frame, list(CQC_REGISTER_COLUMNS), where, "cqc")
        ids = _ids(frame["Location ID"], "Location ID", where)
        older = _flag(
            frame["Service user band - Older People"], "Service user band - Older People", where, ids
        )
        ratings = (
            frame["Location Latest Overall Rating"]
            .astype(object)
            .fillna("")
            .astype(str)
            .str.strip()
            .str.lower()
        )
        unknown = ~ratings.isin(list(_CQC_RATINGS)).to_numpy()
        if unknown.any():
            raise ReadError(
                f"{where}: column 'Location Latest Overall Rating' has unknown ratings "
                f"{preview(sorted(set(frame['Location Latest Overall Rating'].astype(str)[unknown])))}"
                f" (homes {preview(list(ids[unknown]), 5)}); expected Outstanding, Good, "
                "Requires improvement, Inadequate or blank (not rated)"
            )
        standard = pd.DataFrame(
            {
                "home_id": ids,
                "area_code": _council_codes(frame["Location Local Authority"], where, ids, area_codes),
                "region": frame["Location Region"].astype(str).str.strip().to_numpy(dtype=object),
                "home_type": np.where(older, "older_people", "younger_adults"),
                "nursing": _flag(
                    frame["Service type - Care home service with nursing"],
                    "Service type - Care home service with nursing",
                    where,
                    ids,
                ),
                "beds": frame["Care homes beds"].to_numpy(),
                "rating": ratings.map(_CQC_RATINGS).to_numpy(dtype=object),
            }
        )
        if "Location IMD Decile" in frame.columns:
            standard["deprivation_decile"] = frame["Location IMD Decile"].to_numpy()
        column_of = {v: k for k, v in CQC_REGISTER_COLUMNS.items()}
        column_of["area_code"] = "Location Local Authority"
        column_of["deprivation_decile"] = "Location IMD Decile"
    else:
        required = ["home_id", "area_code", "region", "home_type", "nursing", "beds"]
        _require(frame, required, where, "standard")
        ids = _ids(frame["home_id"], "home_id", where)
        standard = frame.copy()
        standard["home_id"] = ids
        column_of = {c: c for c in standard.columns}

    beds = _counts(pd.Series(standard["beds"]), column_of.get("beds", "beds"), where, ids, positive=True)
    area = pd.Series(standard["area_code"])
    blank = area.isna().to_numpy() | (area.astype(str).str.strip() == "").to_numpy()
    if blank.any():
        raise ReadError(
            f"{where}: column {column_of.get('area_code', 'area_code')!r} is "
            f"missing for homes {preview(list(ids[blank]))}"
        )
    out = pd.DataFrame(
        {
            "home_id": pd.array(ids, dtype="str"),
            "area_code": pd.array(area.astype(str).str.strip().to_numpy(dtype=object), dtype="str"),
            "region": pd.array(
                pd.Series(standard["region"]).astype(str).str.strip().to_numpy(dtype=object), dtype="str"
            ),
            "home_type": _categories(
                pd.Series(standard["home_type"]),
                column_of.get("home_type", "home_type"),
                where,
                ids,
                HOME_TYPES,
            ),
            "nursing": _flag(pd.Series(standard["nursing"]), column_of.get("nursing", "nursing"), where, ids),
            "beds": beds,
        }
    )
    derived = size_bands(beds)
    if "size_band" in standard.columns:
        given = _categories(pd.Series(standard["size_band"]), "size_band", where, ids, SIZE_BANDS)
        wrong = np.asarray(given.codes != derived.codes)
        if wrong.any():
            raise ReadError(
                f"{where}: column 'size_band' disagrees with 'beds' for homes "
                f"{preview(list(ids[wrong]))}; the bands are 1-19, 20-49 and 50+ beds "
                "(drop the column to derive it)"
            )
    out["size_band"] = derived
    if "rating" in standard.columns:
        out["rating"] = _categories(
            pd.Series(standard["rating"]).fillna("not_rated"),
            column_of.get("rating", "rating"),
            where,
            ids,
            RATINGS,
        )
    else:
        out["rating"] = pd.Categorical(["not_rated"] * len(out), categories=list(RATINGS), ordered=True)
    if "deprivation_decile" in standard.columns:
        raw = pd.Series(standard["deprivation_decile"])
        decile = pd.to_numeric(raw, errors="coerce")
        bad = (decile.notna() & ~decile.isin(range(1, 11))).to_numpy() | (
            decile.isna() & raw.notna()
        ).to_numpy()
        if bad.any():
            raise ReadError(
                f"{where}: column {column_of.get('deprivation_decile', 'deprivation_decile')!r} "
                f"has values outside 1-10: {preview(list(raw[bad].unique()))} (homes "
                f"{preview(list(ids[bad]), 5)})"
            )
        out["deprivation_decile"] = decile.astype("Int64").to_numpy()
    else:
        out["deprivation_decile"] = pd.array([pd.NA] * len(out), dtype="Int64")
    if known_areas is not None:
        unknown_areas = sorted(set(out["area_code"]) - set(map(str, known_areas)))
        if unknown_areas:
            raise ReadError(f"{where}: area codes not in known_areas: {preview(unknown_areas)}")
    out.attrs = _attrs(frame, chosen, "care_home_register")
    return out


def _attrs(frame: pd.DataFrame, layout: str, kind: str) -> dict[Hashable | None, Any]:
    """What a reader records in its result's ``attrs``: the file's source and checksum, the layout."""
    return {
        "source": frame.attrs.get("source"),
        "sha256": frame.attrs.get("sha256"),
        "layout": layout,
        "kind": kind,
    }


def read_provider_returns(
    path: str | os.PathLike[str] | pd.DataFrame,
    *,
    register: pd.DataFrame | None = None,
    layout: Layout = "auto",
    format: Literal["csv", "parquet"] | None = None,
) -> pd.DataFrame:
    """Read and check care homes' returns: residents by who funds them.

    Parameters
    ----------
    path : str, os.PathLike or pandas.DataFrame
        A CSV or Parquet file, or a frame in memory (not modified).
    register : DataFrame, optional
        The register (as :func:`read_care_home_register` returns it); when
        given, every return must belong to a home in it and report no more
        residents than the home has beds.
    layout : {'auto', 'standard', 'cqc'}, default 'auto'
        ``'cqc'`` maps the columns of :data:`CQC_RETURNS_COLUMNS`.
    format : {'csv', 'parquet'}, optional

    Returns
    -------
    pandas.DataFrame
        ``home_id`` (str), ``residents``, ``self_funded``, ``council_funded``,
        ``nhs_funded``, ``other_funded`` (int64). The funding parts may add up
        to fewer than ``residents`` (funding not known), never to more.

    Raises
    ------
    MissingColumnError
        A required column is absent.
    ReadError
        Blank or repeated home ids; counts missing, negative or not whole
        (homes listed); funding parts adding up to more than the residents;
        homes not in ``register`` (ids listed); more residents than beds.

    Examples
    --------
    >>> import unmetneed as um
    >>> eng = um.datasets.load_synthetic_england()
    >>> returns = um.io.read_provider_returns(eng.care_homes.returns,
    ...                                       register=eng.care_homes.register)
    >>> len(returns)
    10124
    """
    where = _where(path)
    frame = _load(path, format)
    chosen = _layout(frame, layout)
    if chosen == "cqc":
        _require(frame, list(CQC_RETURNS_COLUMNS), where, "cqc")
        frame = frame.rename(columns=CQC_RETURNS_COLUMNS)
        names = {v: k for k, v in CQC_RETURNS_COLUMNS.items()}
    else:
        _require(frame, list(RETURN_COLUMNS), where, "standard")
        names = {c: c for c in RETURN_COLUMNS}
    ids = _ids(frame["home_id"], names["home_id"], where)
    out = pd.DataFrame({"home_id": pd.array(ids, dtype="str")})
    for column in RETURN_COLUMNS[1:]:
        out[column] = _counts(frame[column], names[column], where, ids)
    parts = out[list(FUNDING)].sum(axis=1).to_numpy()
    over = parts > out["residents"].to_numpy()
    if over.any():
        shown = [
            f"{i} ({p} > {r})"
            for i, p, r in zip(ids[over][:8], parts[over][:8], out["residents"].to_numpy()[over][:8])
        ]
        raise ReadError(
            f"{where}: the funding columns add up to more than {names['residents']!r} for "
            f"{int(over.sum())} home(s): {'; '.join(shown)}"
        )
    if register is not None:
        check_returns_against_register(out, register, where)
    out.attrs = _attrs(frame, chosen, "provider_returns")
    return out


def check_returns_against_register(
    returns: pd.DataFrame, register: pd.DataFrame, where: str = "returns"
) -> None:
    """Every return belongs to a registered home and has no more residents than beds."""
    for frame, name, columns in (
        (register, "register", ("home_id", "beds")),
        (returns, "returns", ("home_id", "residents")),
    ):
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise MissingColumnError(f"the {name} lacks columns {missing}")
    beds = pd.Series(register["beds"].to_numpy(), index=register["home_id"].astype(str))
    if beds.index.duplicated().any():
        raise ReadError(
            f"the register repeats home ids {preview(sorted(set(beds.index[beds.index.duplicated()])))}"
        )
    ids = returns["home_id"].astype(str)
    unknown = ~ids.isin(beds.index).to_numpy()
    if unknown.any():
        raise ReadError(
            f"{where}: {int(unknown.sum())} return(s) are for homes not in the register: "
            f"{preview(list(ids[unknown]))}; check the ids or the register's date"
        )
    home_beds = beds.loc[ids].to_numpy()
    residents = returns["residents"].to_numpy()
    over = residents > home_beds
    if over.any():
        shown = [
            f"{i} ({r} residents, {b} beds)"
            for i, r, b in zip(ids[over][:8], residents[over][:8], home_beds[over][:8])
        ]
        raise ReadError(
            f"{where}: {int(over.sum())} home(s) report more residents than beds: {'; '.join(shown)}"
        )
