r"""Unpaid carers known and unknown to councils, and carers whose support needs are unmet.

Three sources, one table by council (:func:`estimate_carers`):

* **Census 2021 (TS039)** counts unpaid carers by council and hours band: the
  whole population of carers, exact (published counts; ``basis = "admin"``).
* **The SACE frame**: the Survey of Adult Carers in England samples the carers
  each council knows, stratified by council; the stratum's population
  (``fpc``) is the number of carers on the council's list. Known carers are
  those counts (or the admin counts a caller passes); unknown carers are the
  census carers less them.
* **SACE responses**: the design-based proportion of known carers reporting
  that their support needs are not met, with a Korn-Graubard (beta) interval,
  times the known carers.

Carers unknown to councils are not on any SACE list, so SACE says nothing
about their support needs: no figure is produced for them.

Formulas: the methods page "Unpaid carers" (``docs/methods/carers.md``).
"""

from __future__ import annotations

import html
import warnings
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from numpy.typing import ArrayLike
from scipy import stats

from unmetneed._provenance import package_version
from unmetneed._validate import check_level, require_columns, resolve_rng
from unmetneed.design import SurveyDesign
from unmetneed.design.variance import domain_degf
from unmetneed.errors import DesignError, KnownExceedsCensusWarning
from unmetneed.io.unpaid_care import UNPAID_CARE_BANDS

__all__ = ["CARER_QUANTITIES", "CarerEstimates", "KnownExceedsCensusWarning", "estimate_carers"]

#: The quantities of :func:`estimate_carers`, in table order.
CARER_QUANTITIES = ("carers", "carers_known", "carers_unknown", "carers_known_share", "carers_support_unmet")
#: ``unpaid_care`` label of the rows for all carers (all hours bands together).
ALL_CARERS = "All unpaid carers"
#: Area code of the England row.
ENGLAND = "E92000001"
_NO_CARE = UNPAID_CARE_BANDS[0]
_MET = "(support needs met)"


@dataclass(frozen=True, repr=False)
class CarerEstimates:
    """Carers by council: census, known to the council, unknown, with unmet support needs.

    Built by :func:`estimate_carers`.

    Attributes
    ----------
    draws : xarray.Dataset
        One variable per quantity in :data:`CARER_QUANTITIES` with dimensions
        ``draw`` and the area (councils, then England ``E92000001``), for all
        carers (not by hours band). England is the sum of the councils in
        every draw (the share: England known / England carers).
    councils : DataFrame
        One row per council: ``carers``, ``carers_known``, ``known_basis``,
        ``known_se``, ``respondents``, and the SACE proportion reporting unmet
        support needs (``p_unmet``, ``p_unmet_se``, ``p_lower``, ``p_upper``,
        ``n_effective``).
    info : mapping
        Options, level, interval method, seed and package version.
    """

    draws: xr.Dataset
    councils: pd.DataFrame
    info: MappingProxyType[str, Any]
    _table: pd.DataFrame = field(repr=False)

    def to_frame(self) -> pd.DataFrame:
        """``area_code, unpaid_care, quantity, estimate, se, ci_lower, ci_upper, cv, n, basis``.

        One row per council (and England, ``E92000001``), hours band
        (``"All unpaid carers"`` and each band both sources have) and quantity.
        ``n`` is the SACE respondents in the council; ``basis`` is ``admin``
        (census or known counts, no sampling error) or ``direct`` (rests on
        SACE responses). Intervals are at ``attrs["level"]``.
        """
        table = self._table.copy()
        table.attrs.update(dict(self.info))
        return table

    def draw_estimates(self) -> Any:
        """The draws as a :class:`~unmetneed.mrp.DrawEstimates` (summaries over draws)."""
        from unmetneed.mrp import DrawEstimates

        area = str(self.info["area"])
        respondents = self.councils.set_index(area)["respondents"]
        respondents = pd.concat([respondents, pd.Series({ENGLAND: int(respondents.sum())})])
        return DrawEstimates(
            self.draws,
            by=[area],
            respondents=respondents,
            level=float(self.info["level"]),
            attrs=dict(self.info),
        )

    def summary(self) -> str:
        """A plain-text summary: England's figures and how known carers were counted."""
        table = self._table
        area = str(self.info["area"])
        rows = table[(table[area] == ENGLAND) & (table["unpaid_care"] == ALL_CARERS)]
        rows = rows.set_index("quantity")
        level = float(self.info["level"])
        title = (
            f"Unpaid carers by council ({len(self.councils)} councils; "
            f"known carers from {self.info['known_source']})"
        )
        lines = [title]
        for quantity in CARER_QUANTITIES:
            row = rows.loc[quantity]
            fmt = "{:.3f}" if quantity == "carers_known_share" else "{:,.0f}"
            interval = (
                ""
                if row["basis"] == "admin" and row["se"] == 0
                else f" ({level:.0%} CI {fmt.format(row['ci_lower'])}-{fmt.format(row['ci_upper'])})"
            )
            lines.append(f"  England {quantity}: {fmt.format(row['estimate'])}{interval}")
        over = self.info.get("known_exceeds_census") or []
        if over:
            lines.append(f"  councils knowing more carers than the census counts: {', '.join(over)}")
        lines.append("  carers unknown to councils are not surveyed: their support needs are not estimated")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<CarerEstimates>\n{self.summary()}"

    def _repr_html_(self) -> str:
        head = "".join(f"<p>{html.escape(line)}</p>" for line in self.summary().splitlines())
        rows = self._table[self._table["unpaid_care"] == ALL_CARERS].head(10)
        return f"<div>{head}{rows.to_html(index=False, border=0, float_format='{:.4f}'.format)}</div>"


# --- input checks -------------------------------------------------------------------


def _census_carers(census: pd.DataFrame, area: str) -> tuple[pd.DataFrame, list[str]]:
    """Carers per council and band (wide: councils x carer bands), and the bands."""
    if not isinstance(census, pd.DataFrame):
        raise DesignError(
            f"census must be a DataFrame (area, unpaid_care, count), got {type(census).__name__}"
        )
    require_columns(census, [area, "unpaid_care", "count"], "census")
    areas = census[area]
    if areas.isna().any():
        raise DesignError(
            f"census column {area!r} has missing area codes in {int(areas.isna().sum())} row(s)"
        )
    bands = census["unpaid_care"].astype(object)
    if bands.isna().any():
        raise DesignError(f"census column 'unpaid_care' is missing in {int(bands.isna().sum())} row(s)")
    unknown = sorted(set(map(str, bands)) - set(UNPAID_CARE_BANDS))
    if unknown:
        raise DesignError(
            f"census column 'unpaid_care' has categories that are not TS039 bands: {unknown}; "
            f"expected the six categories {list(UNPAID_CARE_BANDS)} (no totals or subtotals)"
        )
    counts = pd.to_numeric(census["count"], errors="coerce")
    bad = counts.isna() | ~np.isfinite(counts.to_numpy(dtype=float)) | (counts < 0)
    if bad.any():
        shown = census.loc[bad, [area, "unpaid_care", "count"]].head(5).to_dict("records")
        raise DesignError(
            f"census column 'count' has {int(bad.sum())} missing, infinite or "
            f"negative value(s), e.g. {shown}; counts must be >= 0"
        )
    frame = pd.DataFrame(
        {
            "area": areas.astype(str).to_numpy(),
            "band": bands.astype(str).to_numpy(),
            "count": counts.to_numpy(dtype=float),
        }
    )
    repeated = frame.duplicated(["area", "band"])
    if repeated.any():
        shown = frame.loc[repeated, ["area", "band"]].head(5).values.tolist()
        raise DesignError(
            f"census has {int(repeated.sum())} repeated (area, unpaid_care) rows, "
            f"e.g. {shown}; each council and band must appear once"
        )
    present = [b for b in UNPAID_CARE_BANDS if b in set(frame["band"])]
    wide = frame.pivot(index="area", columns="band", values="count").reindex(columns=present)
    holes = wide.isna().any(axis=1)
    if holes.any():
        raise DesignError(
            f"census councils lack rows for some bands: "
            f"{list(wide.index[holes][:5])}; every council needs every band"
        )
    carer_bands = [b for b in present if b != _NO_CARE]
    if not carer_bands:
        raise DesignError("census has no carer bands (only 'Provides no unpaid care')")
    return wide[carer_bands], carer_bands


def _known_counts(known: Any, councils: pd.Index) -> pd.Series:
    """The caller's admin counts of known carers, one per council."""
    if isinstance(known, pd.DataFrame):
        if known.shape[1] != 2:
            raise DesignError(
                f"known as a DataFrame needs two columns: area code and count; got {list(known.columns)}"
            )
        series = pd.Series(known.iloc[:, 1].to_numpy(), index=known.iloc[:, 0].astype(str))
    elif isinstance(known, pd.Series):
        series = known.copy()
        series.index = series.index.astype(str)
    elif isinstance(known, Mapping):
        series = pd.Series(dict(known))
        series.index = series.index.astype(str)
    else:
        raise DesignError(
            "known must be a Series indexed by area code, a mapping or a two-column "
            f"DataFrame (area code, count); got {type(known).__name__}"
        )
    if series.index.duplicated().any():
        raise DesignError(f"known repeats councils: {list(series.index[series.index.duplicated()][:5])}")
    values = pd.to_numeric(series, errors="coerce").astype(float)
    bad = values.isna() | ~np.isfinite(values) | (values < 0)
    if bad.any():
        raise DesignError(f"known has missing or negative counts for {list(values.index[bad][:5])}")
    extra = values.index.difference(councils)
    if len(extra):
        raise DesignError(f"known has councils that are not in the census: {list(extra[:8])}")
    missing = councils.difference(values.index)
    if len(missing):
        raise DesignError(
            f"known lacks councils of the census: {list(missing[:8])}; give a count for every council"
        )
    return values.reindex(councils)


def _support_indicator(data: pd.DataFrame, support: str) -> np.ndarray:
    values = data[support]
    if values.isna().any():
        raise DesignError(
            f"SACE column {support!r} is missing for {int(values.isna().sum())} respondent(s); "
            "unmet support needs are not imputed: drop or impute those rows before estimating"
        )
    if values.dtype == bool or str(values.dtype) == "boolean":
        return values.to_numpy(dtype=bool)
    text = values.astype(str).str.strip().str.lower()
    if text.isin(["true", "false"]).all():  # a CSV's booleans ("True" / "False")
        return (text == "true").to_numpy()
    numbers = pd.to_numeric(values, errors="coerce")
    odd = ~numbers.isin([0, 1])
    if odd.any():
        raise DesignError(
            f"SACE column {support!r} must be boolean or 0/1 (or the text True/False); found "
            f"{sorted(map(repr, values[odd].unique()))[:5]}"
        )
    return numbers.to_numpy() == 1


def _frame_sizes(
    sace: SurveyDesign, area_of_row: pd.Series, councils: pd.Index
) -> tuple[pd.Series, pd.Series, list[str], list[tuple[list[str], float]]]:
    """Known carers per council from the SACE frame (sum of fpc per stratum).

    A stratum holding one council gives that council its fpc exactly. A
    stratum shared by several councils (small strata collapsed) is split in
    proportion to the councils' sums of weights; those councils' counts are
    estimates, with the Taylor SE of the domain total of 1.
    """
    if sace.strata_col is None or sace.fpc_col is None:
        raise DesignError(
            "the SACE design has no strata and fpc, so the carers each council knows "
            "are not in it; pass known= (admin counts of carers known, by council)"
        )
    data = sace.data
    fpc = pd.to_numeric(data[sace.fpc_col], errors="coerce").to_numpy(dtype=float)
    weights = sace.weights
    active = weights != 0
    if not np.isfinite(fpc[active]).all() or (fpc[active] <= 1).any():
        raise DesignError(
            f"SACE fpc column {sace.fpc_col!r} holds sampling fractions or infinite values, not "
            "the number of carers on each council's list; pass known= (admin counts)"
        )
    frame = pd.DataFrame(
        {
            "stratum": data[sace.strata_col].astype(str).to_numpy()[active],
            "area": area_of_row.to_numpy()[active],
            "fpc": fpc[active],
            "w": weights[active],
        }
    )
    per_stratum = frame.groupby("stratum", sort=False).agg(fpc=("fpc", "first"), w=("w", "sum"))
    cells = frame.groupby(["stratum", "area"], sort=False)["w"].sum().reset_index()
    cells["councils"] = cells.groupby("stratum")["area"].transform("size")
    cells["known"] = (
        per_stratum["fpc"].reindex(cells["stratum"]).to_numpy()
        * cells["w"].to_numpy()
        / per_stratum["w"].reindex(cells["stratum"]).to_numpy()
    )
    known = cells.groupby("area")["known"].sum().reindex(councils)
    shared = sorted(cells.loc[cells["councils"] > 1, "area"].unique())
    se = pd.Series(0.0, index=councils)
    if shared:
        ones = sace.assign(__carers_one=np.ones(len(data)))
        name = str(area_of_row.name)  # the area column's name (a str)
        totals = ones.total("__carers_one", by=name).to_frame()
        totals.index = totals[name].astype(str)
        se.loc[shared] = totals["se"].reindex(shared).to_numpy()
    fpc_of = per_stratum["fpc"].to_dict()
    groups = [
        (sorted(part["area"].tolist()), float(fpc_of[stratum]))
        for stratum, part in cells[cells["councils"] > 1].groupby("stratum", sort=False)
    ]
    return known, se, shared, groups


def _effective_size(
    sace: SurveyDesign,
    codes: np.ndarray,
    n_areas: int,
    p: np.ndarray,
    variance: np.ndarray,
    respondents: np.ndarray,
    level: float,
) -> np.ndarray:
    """Korn-Graubard effective sample size of each council's proportion (as ``ci="beta"``)."""
    alpha = 1.0 - level
    rows = np.bincount(codes, minlength=n_areas).astype(float)
    rows_df = domain_degf(sace, codes, n_areas, np.ones(len(codes), dtype=bool))
    with np.errstate(divide="ignore", invalid="ignore"):
        n_eff = p * (1.0 - p) / variance
        n_eff = n_eff * (stats.t.ppf(alpha / 2, rows - 1.0) / stats.t.ppf(alpha / 2, rows_df)) ** 2
    boundary = ((p == 0) | (p == 1)) & (variance == 0)
    return np.where(boundary, respondents, n_eff)


def _beta_draws(p: np.ndarray, n_eff: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Draws whose quantile function is the Korn-Graubard bounds' beta distributions.

    Below the median the lower bound's distribution B(n p, n(1-p)+1), above it
    the upper bound's B(n p + 1, n(1-p)): the draws' alpha/2 and 1 - alpha/2
    quantiles are the interval's bounds at any level. An infinite effective
    size (the whole list responded: no sampling error) gives p itself.
    """
    a, b = n_eff * p, n_eff * (1.0 - p)
    with np.errstate(invalid="ignore"):
        low = stats.beta.ppf(u, np.maximum(a, 1e-300), b + 1.0)
        high = stats.beta.ppf(u, a + 1.0, np.maximum(b, 1e-300))
    low = np.where(a == 0, 0.0, low)
    high = np.where(b == 0, 1.0, high)
    out = np.where(u < 0.5, low, high)
    return np.where(np.isinf(n_eff) | np.isnan(n_eff), p, out)


def _rows(
    area: str,
    code: Any,
    band: str,
    quantity: str,
    estimate: ArrayLike,
    se: ArrayLike,
    lower: ArrayLike,
    upper: ArrayLike,
    n: ArrayLike,
    basis: Any,
) -> pd.DataFrame:
    values = np.asarray(estimate, dtype=float)
    errors = np.asarray(se, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        cv = np.where(values != 0, errors / np.abs(values), np.nan)
    return pd.DataFrame(
        {
            area: code,
            "unpaid_care": band,
            "quantity": quantity,
            "estimate": values,
            "se": errors,
            "ci_lower": np.asarray(lower, float),
            "ci_upper": np.asarray(upper, float),
            "cv": cv,
            "n": np.asarray(n, dtype=np.int64),
            "basis": basis,
        }
    )


Interval = tuple[Any, Any, Any, Any]  # estimate, se, lower, upper


def _normal(estimate: float, se: float, zq: float) -> Interval:
    return estimate, se, estimate - zq * se, estimate + zq * se


def _carer_rows(
    area: str,
    code: Any,
    band: str,
    carers: np.ndarray,
    known: Interval,
    unmet: Interval,
    n: ArrayLike,
    known_basis: Any,
) -> list[pd.DataFrame]:
    """The five quantities' rows for councils (or England) and one band.

    ``known`` and ``unmet`` are (estimate, se, lower, upper) of the known carers and the known
    carers with unmet support needs; the unknown carers and the known share follow from them and
    the census ``carers`` (no uncertainty: basis ``admin``).
    """
    K, K_se, K_lo, K_hi = (np.atleast_1d(np.asarray(v, dtype=float)) for v in known)
    M, M_se, M_lo, M_hi = (np.atleast_1d(np.asarray(v, dtype=float)) for v in unmet)
    return [
        _rows(area, code, band, "carers", carers, np.zeros_like(carers), carers, carers, n, "admin"),
        _rows(area, code, band, "carers_known", K, K_se, K_lo, K_hi, n, known_basis),
        _rows(
            area, code, band, "carers_unknown", carers - K, K_se, carers - K_hi, carers - K_lo, n, known_basis
        ),
        _rows(
            area,
            code,
            band,
            "carers_known_share",
            K / carers,
            K_se / carers,
            K_lo / carers,
            K_hi / carers,
            n,
            known_basis,
        ),
        _rows(area, code, band, "carers_support_unmet", M, M_se, M_lo, M_hi, n, "direct"),
    ]


# --- the estimator ------------------------------------------------------------------


def estimate_carers(
    census: pd.DataFrame,
    sace: SurveyDesign,
    *,
    known: pd.Series | Mapping[str, float] | pd.DataFrame | None = None,
    area: str = "area_code",
    support: str = "support_unmet",
    band: str | None = "unpaid_care",
    level: float = 0.9,
    draws: int = 1000,
    seed: int | np.random.Generator | None = None,
) -> CarerEstimates:
    r"""Unpaid carers by council: known and unknown to the council, and with unmet support needs.

    Parameters
    ----------
    census : DataFrame
        Census 2021 TS039 by council: ``area``, ``unpaid_care`` (the TS039
        categories, e.g. ``eng.census["unpaid_care"]`` or
        :func:`unmetneed.io.read_unpaid_care_msoa` summed to councils) and
        ``count``. Carers are every category but "Provides no unpaid care".
    sace : SurveyDesign
        The Survey of Adult Carers in England: stratified by council with
        ``fpc`` = the carers on the council's list, an ``area`` column, the
        0/1 or boolean ``support`` column and (optionally) the ``band``
        column.
    known : Series, mapping or DataFrame, optional
        Admin counts of the carers each council knows (area code -> count),
        used instead of the SACE frame sizes.
    area : str, default "area_code"
        The council column of both ``census`` and the SACE data.
    support : str, default "support_unmet"
        SACE column: the carer reports their support needs are not met.
    band : str or None, default "unpaid_care"
        SACE column of the carer's hours band; rows by band are added for the
        bands both the census and SACE have. ``None``: all carers only.
    level : float, default 0.9
        Interval level.
    draws : int, default 1000
        Draws of the council totals (``.draws``).
    seed : int, Generator or None
        Seed of the draws.

    Returns
    -------
    CarerEstimates
        ``.to_frame()``: ``area_code, unpaid_care, quantity, estimate, se,
        ci_lower, ci_upper, cv, n, basis`` for every council and England
        (``E92000001``); quantities ``carers``, ``carers_known``,
        ``carers_unknown``, ``carers_known_share``, ``carers_support_unmet``.

    Raises
    ------
    MissingColumnError
        A column named by ``area``, ``support`` or ``band`` (or the census's
        ``unpaid_care`` / ``count``) is missing.
    DesignError
        Negative or missing census counts, councils in SACE that are not in
        the census (or census councils SACE does not cover), ``support``
        values that are not 0/1, or no frame sizes in the design and no
        ``known``.

    Warns
    -----
    KnownExceedsCensusWarning
        A council knows more carers than the census counts there. The figure
        is kept (``carers_unknown`` is then negative), not clipped: SACE
        frames count carers of every age (the census table used may be adults
        or ages 5+) and carers living outside the council who care for its
        residents, and lists keep carers whose caring has ended.

    Notes
    -----
    For council :math:`a` with census carers :math:`C_a`, known carers
    :math:`K_a = \sum_{h \in a} N_h` (the SACE strata's frame sizes) and the
    design-based proportion :math:`\hat p_a` of SACE respondents reporting
    unmet support needs:

    .. math::

        U_a = C_a - K_a, \quad s_a = K_a / C_a, \quad
        \hat M_a = K_a \hat p_a, \quad \operatorname{se}(\hat M_a) = K_a \operatorname{se}(\hat p_a),

    with the interval :math:`K_a [L_a, U_a]` from Korn and Graubard's (1998)
    beta interval for :math:`\hat p_a` (``SurveyDesign.proportion(ci="beta")``),
    so bounds stay within :math:`[0, K_a]`. Draws of :math:`\hat M_a` follow
    the two beta distributions that define the bounds (below and above the
    median), so their quantiles are the interval. By band :math:`b`,
    :math:`K_{ab} = K_a \hat p_{ab}` (the SACE share of known carers in the
    band) and :math:`\hat M_{ab} = K_a \hat p_{a,b\cap\text{unmet}}`. England
    sums the councils; its SE is the root sum of squares (strata are
    independent) and its interval normal.

    **Carers unknown to councils are not surveyed by SACE, so nothing is
    estimated about their unmet support needs.** :math:`\hat M_a` counts known
    carers only.

    Where small strata were merged (e.g. the Isles of Scilly into Cornwall),
    the merged stratum's frame is split by the councils' sums of weights; those
    known counts are estimates (``basis = "direct"``) with the Taylor SE of
    the domain total.

    References
    ----------
    Korn, E. L. and Graubard, B. I. (1998). Confidence intervals for
    proportions with small expected number of positive counts estimated from
    survey data. *Survey Methodology* 24(2), 193-201.

    NHS England (2024). *Personal Social Services Survey of Adult Carers in
    England, 2023-24*: methodology and further information.

    ONS (2023). Census 2021 dictionary: *Provision of unpaid care* (TS039).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> import unmetneed as um
    >>> rng = np.random.default_rng(1)
    >>> census = pd.DataFrame({
    ...     "area_code": np.repeat(["E06000001", "E06000002"], 6),
    ...     "unpaid_care": list(um.io.UNPAID_CARE_BANDS) * 2,
    ...     "count": [9000, 400, 200, 150, 100, 150, 18000, 800, 400, 300, 200, 300]})
    >>> sace = pd.DataFrame({
    ...     "area_code": np.repeat(["E06000001", "E06000002"], [60, 90]),
    ...     "fpc": np.repeat([300, 700], [60, 90]),
    ...     "support_unmet": rng.random(150) < 0.3})
    >>> sace["weight"] = sace["fpc"] / sace.groupby("area_code")["fpc"].transform("size")
    >>> design = um.SurveyDesign(sace, weights="weight", strata="area_code", fpc="fpc")
    >>> result = um.estimate_carers(census, design, band=None, seed=0)
    >>> table = result.to_frame()
    >>> table.loc[table["quantity"] == "carers_known", "estimate"].tolist()
    [300.0, 700.0, 1000.0]
    >>> unmet = table[table["quantity"] == "carers_support_unmet"]
    >>> bool(((unmet["ci_lower"] >= 0) & (unmet["ci_upper"] <= [300, 700, 1000])).all())
    True
    """
    level = check_level(level)
    if isinstance(draws, bool) or not isinstance(draws, (int, np.integer)) or draws < 1:
        raise DesignError(f"draws={draws!r} must be a whole number >= 1")
    rng = resolve_rng(seed)
    if not isinstance(sace, SurveyDesign):
        raise DesignError(f"sace must be a SurveyDesign, got {type(sace).__name__}")
    wide, carer_bands = _census_carers(census, area)
    councils = pd.Index(wide.index, name=area)
    carers = wide.sum(axis=1).to_numpy(dtype=float)

    data = sace.data
    require_columns(data, [area, support] + ([band] if band is not None else []), "SACE")
    if data[area].isna().any():
        raise DesignError(f"SACE column {area!r} has missing council codes")
    area_of_row = data[area].astype(str).rename(area)
    in_sace = pd.Index(area_of_row.unique())
    outside = in_sace.difference(councils)
    if len(outside):
        raise DesignError(
            f"SACE has councils that are not in the census: {list(outside[:8])}; "
            "check the area codes (2021 upper-tier councils?) or add them to the census"
        )
    uncovered = councils.difference(in_sace)
    if len(uncovered):
        raise DesignError(
            f"census councils with no SACE respondents: {list(uncovered[:8])}; their "
            "unmet support needs cannot be estimated: leave them out of the census table"
        )
    unmet = _support_indicator(data, support)

    if known is None:
        known_counts, known_se, shared, groups = _frame_sizes(sace, area_of_row, councils)
        known_source = "SACE frame (sum of fpc per stratum)"
    else:
        known_counts = _known_counts(known, councils)
        known_se, shared, groups = pd.Series(0.0, index=councils), [], []
        known_source = "admin counts (known=)"
    K = known_counts.to_numpy(dtype=float)
    K_se = known_se.to_numpy(dtype=float)
    estimated = np.isin(councils, shared)
    known_basis = np.where(estimated, "direct", "admin")

    over = councils[K > carers].tolist()
    if over:
        shown = ", ".join(
            f"{c} (known {k:,.0f}, census {n:,.0f})"
            for c, k, n in zip(over[:10], K[K > carers], carers[K > carers])
        )
        warnings.warn(
            f"{len(over)} council(s) know more carers than the census counts: {shown}"
            f"{' ...' if len(over) > 10 else ''}. Kept as they are (carers_unknown is negative): "
            "council lists count carers of every age and carers living elsewhere who care for "
            "the council's residents, and keep carers whose caring has ended, while the census "
            "counts residents by where they live",
            KnownExceedsCensusWarning,
            stacklevel=2,
        )

    # the SACE proportions, by council, with Korn-Graubard intervals
    codes = councils.get_indexer(area_of_row)
    flag = f"{support}__unmet"
    columns: dict[str, Any] = {flag: pd.Categorical(unmet.astype(np.int64), categories=[0, 1])}
    sace_bands: list[str] = []
    if band is not None:
        labels = data[band].astype(object)
        if labels.isna().any():
            raise DesignError(
                f"SACE column {band!r} is missing for {int(labels.isna().sum())} "
                "respondent(s); pass band=None to estimate all carers only"
            )
        sace_bands = [b for b in carer_bands if b in set(map(str, labels))]
        cross = np.where(unmet, labels.astype(str).to_numpy(), _MET)
        cats = list(dict.fromkeys([*map(str, pd.unique(labels.astype(str))), _MET]))
        columns[f"{band}__cross"] = pd.Categorical(cross, categories=cats)
        columns[f"{band}__band"] = pd.Categorical(labels.astype(str).to_numpy(), categories=cats[:-1])
    design = sace.assign(**columns)

    cache: dict[str, pd.DataFrame] = {}

    def proportions(variable: str, category: Any) -> pd.DataFrame:
        if variable not in cache:
            cache[variable] = design.proportion(variable, by=area, ci="beta", level=level).to_frame()
        table = cache[variable]
        table = table[table[variable].astype(object) == category]
        table.index = table[area].astype(str)
        return table.reindex(councils)

    share = proportions(flag, 1)
    p = share["estimate"].to_numpy(dtype=float)
    p_se = share["se"].to_numpy(dtype=float)
    respondents = np.bincount(codes[sace.weights != 0], minlength=len(councils))
    zero_var = p_se == 0
    p_lo = np.where(zero_var & np.isnan(share["ci_lower"].to_numpy(float)), p, share["ci_lower"])
    p_hi = np.where(zero_var & np.isnan(share["ci_upper"].to_numpy(float)), p, share["ci_upper"])
    n_eff = _effective_size(sace, codes, len(councils), p, p_se**2, respondents, level)

    # draws of the council totals
    z = rng.standard_normal((draws, len(councils)))
    known_draws = np.where(estimated, np.maximum(K + K_se * z, respondents), K)
    for members, frame in groups:  # a merged stratum's councils share its frame in every draw
        cols = councils.get_indexer(members)
        known_draws[:, cols] *= frame / known_draws[:, cols].sum(axis=1, keepdims=True)
    p_draws = _beta_draws(p, n_eff, rng.random((draws, len(councils))))
    unmet_draws = known_draws * p_draws
    with np.errstate(divide="ignore", invalid="ignore"):
        share_draws = known_draws / carers
    totals = {
        "carers": np.broadcast_to(carers, known_draws.shape),
        "carers_known": known_draws,
        "carers_unknown": carers - known_draws,
        "carers_known_share": share_draws,
        "carers_support_unmet": unmet_draws,
    }
    england_known = known_draws.sum(axis=1)
    england = {
        "carers": np.full(draws, carers.sum()),
        "carers_known": england_known,
        "carers_unknown": carers.sum() - england_known,
        "carers_known_share": england_known / carers.sum(),
        "carers_support_unmet": unmet_draws.sum(axis=1),
    }
    coords = {"draw": np.arange(draws), area: [*map(str, councils), ENGLAND]}
    dataset = xr.Dataset(
        {q: (("draw", area), np.column_stack([totals[q], england[q]])) for q in CARER_QUANTITIES},
        coords=coords,
    )

    # the table: councils
    alpha = 1.0 - level
    zq = float(stats.norm.ppf(1 - alpha / 2))
    K_lo = np.where(estimated, np.maximum(K - zq * K_se, respondents), K)
    K_hi = np.where(estimated, K + zq * K_se, K)
    M = K * p
    M_se = np.sqrt((K * p_se) ** 2 + (p * K_se) ** 2)
    M_lo, M_hi = K * p_lo, K * p_hi
    if estimated.any():  # frame and proportion both estimated: quantiles of the product's draws
        q_lo, q_hi = np.quantile(unmet_draws[:, estimated], [alpha / 2, 1 - alpha / 2], axis=0)
        M_lo, M_hi = M_lo.copy(), M_hi.copy()
        M_lo[estimated], M_hi[estimated] = q_lo, q_hi
    n = respondents
    with np.errstate(divide="ignore", invalid="ignore"):
        frames = _carer_rows(
            area, councils, ALL_CARERS, carers, (K, K_se, K_lo, K_hi), (M, M_se, M_lo, M_hi), n, known_basis
        )
    # England: sums of independent councils
    C_e, K_e, M_e = carers.sum(), K.sum(), M.sum()
    # split frames add up to their strata's fpc: England's known carers are exact
    K_e_se = 0.0 if known is None else float(np.sqrt((K_se**2).sum()))
    M_e_se = float(np.sqrt(((K * p_se) ** 2).sum() if known is None else (M_se**2).sum()))
    e_basis = "direct" if estimated.any() and known is not None else "admin"
    n_e = [int(n.sum())]
    frames += _carer_rows(
        area,
        ENGLAND,
        ALL_CARERS,
        np.array([C_e]),
        _normal(K_e, K_e_se, zq),
        (M_e, M_e_se, max(M_e - zq * M_e_se, 0.0), min(M_e + zq * M_e_se, K_e + zq * K_e_se)),
        n_e,
        e_basis,
    )
    if sace_bands and band is not None:  # bands are only found when band is given
        frames += _band_rows(design, proportions, area, band, sace_bands, wide, councils, K, K_se, n, zq)
    table = pd.concat(frames, ignore_index=True)
    order = {q: i for i, q in enumerate(CARER_QUANTITIES)}
    band_order = {b: i for i, b in enumerate([ALL_CARERS, *carer_bands])}
    area_order = {c: i for i, c in enumerate([*map(str, councils), ENGLAND])}
    ranks: dict[Hashable, dict[str, int]] = {area: area_order, "unpaid_care": band_order, "quantity": order}

    def rank(column: pd.Series) -> pd.Series:
        return column.map(ranks[column.name])

    table = table.sort_values([area, "unpaid_care", "quantity"], key=rank, kind="stable").reset_index(
        drop=True
    )
    table[area] = table[area].astype(str)

    council_table = pd.DataFrame(
        {
            area: councils.astype(str),
            "carers": carers,
            "carers_known": K,
            "known_basis": known_basis,
            "known_se": K_se,
            "respondents": respondents,
            "p_unmet": p,
            "p_unmet_se": p_se,
            "p_lower": p_lo,
            "p_upper": p_hi,
            "n_effective": n_eff,
        }
    )
    info = MappingProxyType(
        {
            "method": "census carers; known = SACE frame or admin; unmet = known x SACE proportion",
            "interval": "Korn-Graubard beta for SACE proportions (scaled by known carers); "
            "normal for England and for estimated frame counts",
            "level": level,
            "area": area,
            "support": support,
            "band": band,
            "known_source": known_source,
            "estimated_frames": list(map(str, shared)),
            "known_exceeds_census": over,
            "draws": int(draws),
            "seed": seed if isinstance(seed, (int, np.integer)) or seed is None else "Generator",
            "unknown_carers_support": "not estimated: carers unknown to councils are not surveyed",
            "version": package_version(),
        }
    )
    return CarerEstimates(draws=dataset, councils=council_table, info=info, _table=table)


def _band_rows(
    design: SurveyDesign,
    proportions: Any,
    area: str,
    band: str,
    bands: list[str],
    wide: pd.DataFrame,
    councils: pd.Index,
    K: np.ndarray,
    K_se: np.ndarray,
    n: np.ndarray,
    zq: float,
) -> list[pd.DataFrame]:
    """Rows by hours band: census carers, and SACE shares of the known carers."""
    frames: list[pd.DataFrame] = []
    n_e = [int(n.sum())]
    for b in bands:
        C = wide[b].to_numpy(dtype=float)
        share = proportions(f"{band}__band", b)
        cross = proportions(f"{band}__cross", b)
        q, q_se = share["estimate"].to_numpy(float), share["se"].to_numpy(float)
        q_lo = np.where(q_se == 0, q, share["ci_lower"].to_numpy(float))
        q_hi = np.where(q_se == 0, q, share["ci_upper"].to_numpy(float))
        m, m_se = cross["estimate"].to_numpy(float), cross["se"].to_numpy(float)
        m_lo = np.where(m_se == 0, m, cross["ci_lower"].to_numpy(float))
        m_hi = np.where(m_se == 0, m, cross["ci_upper"].to_numpy(float))
        Kb, Kb_se = K * q, np.sqrt((K * q_se) ** 2 + (q * K_se) ** 2)
        Mb, Mb_se = K * m, np.sqrt((K * m_se) ** 2 + (m * K_se) ** 2)
        with np.errstate(divide="ignore", invalid="ignore"):
            frames += _carer_rows(
                area,
                councils,
                b,
                C,
                (Kb, Kb_se, K * q_lo, K * q_hi),
                (Mb, Mb_se, K * m_lo, K * m_hi),
                n,
                "direct",
            )
            Ce, Ke, Me = C.sum(), Kb.sum(), Mb.sum()
            Ke_se, Me_se = float(np.sqrt((Kb_se**2).sum())), float(np.sqrt((Mb_se**2).sum()))
            frames += _carer_rows(
                area,
                ENGLAND,
                b,
                np.array([Ce]),
                _normal(Ke, Ke_se, zq),
                (Me, Me_se, max(Me - zq * Me_se, 0.0), Me + zq * Me_se),
                n_e,
                "direct",
            )
    return frames
