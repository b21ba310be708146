r"""Care-home residents and self-funders by council: returns weighted to the register.

ONS estimates the self-funding share of care-home residents from the care
regulator's provider information returns, weighted up to the register of care
homes. :func:`estimate_care_home_funding` does the same and adds council
estimates:

1. **Weighting.** The responding homes are the sample, the register the frame.
   Start weights are register homes / responding homes in the home's stratum
   (the first ``calibrate_to`` variable, ``region`` by default, with its
   finite-population correction); they are then calibrated (raking distance)
   so that the weighted homes *and* beds equal the register's in every
   category of each ``calibrate_to`` variable.
2. **Direct estimates.** Ratios :math:`\hat R_d = \sum_{i\in d} w_i y_i /
   \sum_{i\in d} w_i x_i` (self-funded / residents) with calibration-aware
   Taylor SEs, by council, region, home type, size band and rating (the
   ONS-style tables, :meth:`CareHomeFundingEstimates.tables`).
3. **Council shares.** A Fay-Herriot model of the direct council shares on
   register covariates (share of beds in older-people and nursing homes, mean
   deprivation decile, region) and the caller's ``covariates`` (e.g. census
   owner-occupation), with smoothed (GVF) sampling variances; councils with
   no returns get the synthetic prediction (``basis = "model_no_returns"``).
4. **Counts.** Residents = register beds x the council's occupancy ratio
   (residents / beds among its responding homes); self-funders = residents x
   share, with delta-method SEs.

The formulas are on the methods page "Care homes" (``docs/methods/care-homes.md``).
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd
from formulaic import model_matrix
from scipy import stats

from unmetneed._provenance import package_version
from unmetneed._validate import check_level, preview, require_columns
from unmetneed.design import SurveyDesign
from unmetneed.errors import DesignError, MissingColumnError, ModelError
from unmetneed.io.care_homes import read_care_home_register, read_provider_returns
from unmetneed.margins import Margins
from unmetneed.sae import FayHerriot, MeasurementErrorFit, fit_measurement_error
from unmetneed.weighting import WeightingResult, calibrate

__all__ = ["CareHomeFundingEstimates", "estimate_care_home_funding"]

QUANTITIES = ("residents", "self_funded", "self_funded_share")
BASES = ("direct", "model", "model_no_returns")
#: The ONS-style tables: England and one table per register variable.
TABLE_VARIABLES = ("region", "home_type", "size_band", "rating")
#: Councils with at least this many responding homes estimate the GVF's design factor.
GVF_MIN_HOMES = 10


@dataclass(frozen=True, repr=False)
class CareHomeFundingEstimates:
    """Care-home residents and self-funders by council, and the ONS-style tables.

    Built by :func:`estimate_care_home_funding`.

    Attributes
    ----------
    weighting : WeightingResult
        The calibrated design of responding homes (``.design``) and the
        weighting report (``.report``).
    councils : DataFrame
        One row per council: register homes and beds, responding homes, the
        direct share with its Taylor and smoothed (GVF) SEs, the covariates
        and the model estimate.
    model : FayHerriotFit or MeasurementErrorFit
        The Fay-Herriot fit of the council shares (with ``admin=``: the
        measurement-error model, :func:`unmetneed.sae.fit_measurement_error`).
    info : mapping
        Options, the GVF design factor, level and package version.
    """

    weighting: WeightingResult
    councils: pd.DataFrame
    model: Any
    info: MappingProxyType[str, Any]
    _table: pd.DataFrame = field(repr=False)
    _common: tuple[pd.DataFrame, np.ndarray] = field(repr=False)

    def common_share_error(self) -> tuple[pd.DataFrame, np.ndarray]:
        r"""The part of the council shares' errors that all councils share, for joint draws.

        Returns ``(L, V)``: :math:`L` one row per council (the model's covariates times
        the weight on the regression, :math:`(1-\gamma_a) x_a`; 0 where every home
        returned) and :math:`V` the covariance of the model's coefficients. The
        councils' errors have covariance :math:`L V L^\top` off the diagonal; the rest
        of each council's MSE is its own. Used by
        :func:`unmetneed.estimates.care_home_populations` to draw the shares jointly,
        so that sums over councils (England, regions) keep the coefficients' uncertainty.

        Examples
        --------
        >>> import unmetneed as um
        >>> eng = um.datasets.load_synthetic_england()
        >>> res = um.estimate_care_home_funding(eng.care_homes.register, eng.care_homes.returns)
        >>> L, V = res.common_share_error()
        >>> L.shape[0], V.shape == (L.shape[1], L.shape[1])
        (152, True)
        """
        loading, vcov = self._common
        return loading.copy(), vcov.copy()

    # -- tables ----------------------------------------------------------------------
    @property
    def design(self) -> SurveyDesign:
        """The calibrated design of responding homes (homes are the units)."""
        return self.weighting.design

    def to_frame(self) -> pd.DataFrame:
        """``area_code, quantity, estimate, se, ci_lower, ci_upper, cv, n, basis``.

        One row per council and quantity (``residents``, ``self_funded``,
        ``self_funded_share``); ``n`` is the number of responding homes;
        ``basis`` is ``direct`` (every home in the council returned, or the
        residents' ratio estimate), ``model`` (Fay-Herriot EBLUP) or
        ``model_no_returns`` (synthetic prediction: no home returned).
        """
        table = self._table.copy()
        table.attrs.update(dict(self.info))
        return table

    def direct(self, by: str | Sequence[str] | None = None, *, level: float | None = None) -> pd.DataFrame:
        """Design-based ratio self-funded / residents with Taylor SEs, by any register column.

        Parameters
        ----------
        by : str or sequence of str, optional
            Register columns (``"region"``, ``"home_type"``, ``"size_band"``,
            ``"rating"``, ``"nursing"``, the area column, ...); England when
            omitted.
        level : float, optional
            Interval level (t intervals on the design's degrees of freedom);
            default the result's level.
        """
        level = float(self.info["level"]) if level is None else level
        table = self.design.ratio("self_funded", "residents", by=by, level=level).to_frame()
        table.insert(
            0 if by is None else len([by] if isinstance(by, str) else by), "quantity", "self_funded_share"
        )
        return table

    def tables(self, *, level: float | None = None) -> dict[str, pd.DataFrame]:
        """The ONS-style tables: ``"england"`` and one per register variable.

        Each has the grouping column (none for England), ``quantity``,
        ``estimate, se, ci_lower, ci_upper, cv, n`` of the self-funded share,
        plus ``residents`` (the weighted total of residents).
        """
        out: dict[str, pd.DataFrame] = {}
        for name, by in (("england", None), *((v, v) for v in TABLE_VARIABLES)):
            table = self.direct(by, level=level)
            residents = self.design.total("residents", by=by).to_frame()
            table["residents"] = residents["estimate"].to_numpy()
            out[name] = table
        return out

    def summary(self) -> str:
        """A plain-text summary: England, the basis of the council rows, the model."""
        england = self.direct().iloc[0]
        share = self._table[self._table["quantity"] == "self_funded_share"]
        bases = share["basis"].value_counts().reindex(list(BASES), fill_value=0)
        lines = [
            "Care-home self-funders (returns weighted to the register)",
            (
                f"  homes in register {self.info['register_homes']:,}, returns "
                f"{self.info['responding_homes']:,} ({self.info['response_rate']:.1%})"
            ),
            (
                f"  England self-funded share {england['estimate']:.3f} (se {england['se']:.4f}, "
                f"{self.info['level']:.0%} CI {england['ci_lower']:.3f}-{england['ci_upper']:.3f})"
            ),
            f"  councils: {len(share)} ({', '.join(f'{k} {v}' for k, v in bases.items())})",
            f"  GVF design factor {self.info['gvf_factor']:.3f}; model {self.info['formula']}",
        ]
        if self.model is not None:
            lines.append(f"  Fay-Herriot sigma2 {float(self.model.sigma2):.5f} ({self.info['fh_method']})")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<CareHomeFundingEstimates>\n{self.summary()}"

    def _repr_html_(self) -> str:
        head = "".join(f"<p>{html.escape(line)}</p>" for line in self.summary().splitlines())
        share = self._table[self._table["quantity"] == "self_funded_share"].head(10)
        return f"<div>{head}{share.to_html(index=False, border=0, float_format='{:.4f}'.format)}</div>"


# ---------------------------------------------------------------------------------


def _sample(register: pd.DataFrame, returns: pd.DataFrame) -> pd.DataFrame:
    sample = returns.merge(register, on="home_id", how="left", validate="one_to_one")
    return sample.reset_index(drop=True)


def _margins(
    register: pd.DataFrame, sample: pd.DataFrame, calibrate_to: Sequence[str]
) -> tuple[Margins, pd.DataFrame]:
    """Homes by category of each variable, and beds by category as numeric totals.

    Beds totals for all categories of every variable would repeat the total
    (collinear constraints): the last category of every variable after the
    first is left out, which loses no constraint.
    """
    entries: dict[Any, Any] = {}
    sample = sample.copy()
    for position, variable in enumerate(calibrate_to):
        values = register[variable]
        categories = (
            list(values.cat.categories)
            if isinstance(values.dtype, pd.CategoricalDtype)
            else sorted(values.unique())
        )
        homes = values.value_counts().reindex(categories, fill_value=0).astype(float)
        present = homes[homes > 0]
        entries[variable] = present
        kept = list(present.index)
        if position > 0:
            kept = kept[:-1]
        for j, category in enumerate(kept):
            column = f"_beds_{position}_{j}"
            sample[column] = np.where(
                sample[variable].astype(object) == category, sample["beds"].to_numpy(dtype=float), 0.0
            )
            entries[column] = float(register.loc[values == category, "beds"].sum())
    return Margins(entries), sample


def _design(register: pd.DataFrame, sample: pd.DataFrame, stratum: str) -> SurveyDesign:
    N = register.groupby(stratum, observed=True).size()
    n = sample.groupby(stratum, observed=True).size()
    missing = sorted(set(N.index) - set(n.index), key=str)
    if missing:
        raise DesignError(
            f"no responding homes in {stratum} {missing}; the register's homes there cannot be "
            f"represented. Pass calibrate_to without {stratum!r} first, or collapse categories"
        )
    sample = sample.copy()
    key = sample[stratum].astype(object)
    sample["_weight"] = key.map((N / n).to_dict()).astype(float)
    sample["_fpc"] = key.map(N.astype(float).to_dict()).astype(float)
    sample["_stratum"] = key.astype(str)
    return SurveyDesign(sample, weights="_weight", strata="_stratum", fpc="_fpc", lonely_psu="certainty")


def _area_covariates(register: pd.DataFrame, by: str) -> pd.DataFrame:
    beds = register["beds"].to_numpy(dtype=float)
    frame = pd.DataFrame(
        {
            by: register[by].to_numpy(),
            "beds": beds,
            "older": beds * (register["home_type"].astype(object) == "older_people").to_numpy(),
            "nursing_beds": beds * register["nursing"].to_numpy(dtype=bool),
            "decile_beds": beds * pd.to_numeric(register["deprivation_decile"]).to_numpy(dtype=float),
        }
    )
    sums = frame.groupby(by, sort=True).sum()
    areas = pd.DataFrame(index=sums.index)
    areas["homes"] = register.groupby(by).size().reindex(sums.index)
    areas["register_beds"] = sums["beds"]
    areas["older_beds_share"] = sums["older"] / sums["beds"]
    areas["nursing_beds_share"] = sums["nursing_beds"] / sums["beds"]
    if register["deprivation_decile"].notna().all():
        areas["mean_deprivation_decile"] = sums["decile_beds"] / sums["beds"]
    region = register.groupby(by)["region"].agg(lambda s: s.mode().iloc[0])
    areas["region"] = region.reindex(sums.index).astype(str)
    return areas


def _admin_counts(register: pd.DataFrame, admin: pd.DataFrame, by: str) -> pd.Series:
    """Council-funded care-home residents (``setting == "residential"``) by register council."""
    if not isinstance(admin, pd.DataFrame):
        raise ModelError("admin must be a pandas DataFrame of council-funded counts (by, setting, count)")
    require_columns(admin, [by, "setting", "count"], "admin")
    rows = admin[admin["setting"].astype(str) == "residential"]
    if rows.empty:
        settings = sorted(map(str, pd.unique(admin["setting"].astype(str))))
        raise ModelError(f"admin has no rows with setting 'residential' (its settings: {settings})")
    counts = pd.to_numeric(rows["count"], errors="coerce")
    bad = counts.isna() | (counts < 0)
    if bad.any():
        first = rows.loc[bad, [by, "count"]].head(5).to_dict("records")
        raise ModelError(f"admin counts must be numbers >= 0; {int(bad.sum())} are not, e.g. {first}")
    funded = counts.groupby(rows[by].astype(str).to_numpy()).sum()
    councils = pd.unique(register[by].astype(str))
    lacking = sorted(set(councils) - set(funded.index))
    if lacking:
        raise ModelError(
            f"admin has no 'residential' count for councils {preview(lacking)} that have "
            "registered homes; give a count (0 if the council funds no care-home resident)"
        )
    return funded


def _fit_with_admin(
    councils: pd.DataFrame,
    X_all: np.ndarray,
    names: list[str],
    fit_rows: np.ndarray,
    synthetic_rows: np.ndarray,
) -> tuple[MeasurementErrorFit, float]:
    r"""The measurement-error Fay-Herriot model with the estimated ``admin_share`` covariate.

    ``X_all`` (named ``names``) holds every council's covariates; the model is fitted on
    ``fit_rows`` (councils with a direct share) and predicts ``synthetic_rows`` (councils
    without returns). Sets ``model_estimate``, ``model_se`` and ``shrinkage`` of ``councils`` in place
    and returns the fit and the coefficient of ``admin_share`` (councils without returns:
    the synthetic prediction with MSE
    :math:`\sigma^2 + \beta^\top C_a\beta + x_a^\top V(\hat\beta) x_a`).
    """
    column = names.index("admin_share")
    C = np.zeros_like(X_all)
    C[:, column] = councils["admin_share_se"].to_numpy() ** 2
    try:
        fit = fit_measurement_error(
            councils.loc[fit_rows, "fh_direct"],
            councils.loc[fit_rows, "fh_variance"],
            X_all[fit_rows],
            C[fit_rows],
        )
    except ModelError as error:
        raise ModelError(
            f"the care-home model with admin counts could not be fitted: {error}. The councils' "
            "council-funded shares implied by the admin counts are too noisy to use as a "
            "covariate: lower admin_cv if it overstates their error, or leave out admin="
        ) from error
    estimate = np.full(len(councils), np.nan)
    mse = np.full(len(councils), np.nan)
    shrinkage = np.full(len(councils), np.nan)
    estimate[fit_rows], mse[fit_rows], shrinkage[fit_rows] = fit.estimate, fit.mse, fit.gamma
    X_new = X_all[synthetic_rows]
    estimate[synthetic_rows] = X_new @ fit.beta
    mse[synthetic_rows] = (
        fit.sigma2
        + C[synthetic_rows, column] * fit.beta[column] ** 2
        + np.einsum("ap,pq,aq->a", X_new, fit.vcov_beta, X_new)
    )
    councils["model_estimate"] = estimate
    councils["model_se"] = np.sqrt(mse)
    councils["shrinkage"] = shrinkage
    return fit, float(fit.beta[column])


def _council_matrix(
    councils: pd.DataFrame, fit_rows: np.ndarray, modelled: np.ndarray, terms: list[str]
) -> tuple[np.ndarray, list[str]]:
    """The model's covariate rows, coded as in a fit on ``fit_rows``, and their names.

    Rows of ``modelled`` councils (those the model fits or predicts) are built; the others
    (every home returned: reported exactly) are 0 and need no covariates.
    """
    rhs = " + ".join(terms)
    columns = _terms_columns(terms)
    try:
        matrix = model_matrix(rhs, councils.loc[fit_rows, columns], ensure_full_rank=True, na_action="raise")
    except Exception as error:  # formulaic raises several types; name the formula
        raise ModelError(f"could not build the covariates '{rhs}': {error}") from error
    X_all = np.zeros((len(councils), matrix.shape[1]))
    X_all[modelled] = np.asarray(
        matrix.model_spec.get_model_matrix(councils.loc[modelled, columns], na_action="raise"), dtype=float
    )
    return X_all, [str(c) for c in matrix.columns]


def _common_error(
    councils: pd.DataFrame, X_all: np.ndarray, names: list[str], fit: Any, complete: np.ndarray
) -> tuple[pd.DataFrame, np.ndarray]:
    r"""The part of the council shares' errors that every council shares: the coefficients'.

    The EBLUP's error is :math:`\gamma_a e_a + (1-\gamma_a)(x_a^\top\hat\beta - \theta_a)`;
    its part :math:`(1-\gamma_a) x_a^\top(\hat\beta - \beta)` is common to all councils,
    with covariance :math:`L V(\hat\beta) L^\top`, :math:`L_a = (1-\gamma_a) x_a`
    (:math:`\gamma_a = 0` without returns, :math:`L_a = 0` where every home returned).
    Returns :math:`L` (councils x coefficients) and :math:`V(\hat\beta)`.
    """
    fitted = [str(t) for t in getattr(getattr(fit, "model", None), "terms", names)]
    if fitted != names:
        raise ModelError(f"internal: the model's coefficients {fitted} are not the covariates {names}")
    weight = 1.0 - np.nan_to_num(councils["shrinkage"].to_numpy(dtype=float), nan=0.0)
    loading = np.where(complete[:, None], 0.0, weight[:, None] * X_all)
    return pd.DataFrame(loading, index=councils.index, columns=names), np.array(fit.vcov_beta, dtype=float)


def _terms_columns(terms: list[str]) -> list[str]:
    """The council columns a list of formula terms reads (``C(region)`` reads ``region``)."""
    return [t[2:-1] if t.startswith("C(") and t.endswith(")") else t for t in terms]


def _gvf(
    design: SurveyDesign, councils: pd.DataFrame, by: str, synthetic: pd.Series
) -> tuple[pd.Series, float]:
    r"""Smoothed sampling variances of the direct council shares.

    :math:`\tilde v_a = \hat\phi\,(1 - f_a)\,\tilde p_a(1-\tilde p_a)/m_a` with
    :math:`m_a = (\sum_{i\in a} w_i x_i)^2 / \sum_{i\in a} w_i^2 x_i^2` (the
    effective number of homes, weighted by residents), :math:`f_a` the share
    of the council's register homes that returned, :math:`\tilde p_a` the
    synthetic share and :math:`\hat\phi` the ratio of the summed Taylor
    variances to the summed base variances over councils with at least
    :data:`GVF_MIN_HOMES` responding homes.
    """
    data = design.data
    w = design.weights
    x = data["residents"].to_numpy(dtype=float)
    wx = pd.Series(w * x).groupby(data[by].to_numpy()).sum()
    wx2 = pd.Series((w * x) ** 2).groupby(data[by].to_numpy()).sum()
    m = (wx**2 / wx2).reindex(councils.index)
    f = (councils["responding_homes"] / councils["homes"]).clip(upper=1.0)
    p = synthetic.reindex(councils.index).clip(0.005, 0.995)
    base = (1.0 - f) * p * (1.0 - p) / m
    use = (councils["responding_homes"] >= GVF_MIN_HOMES) & (base > 0)
    if not use.any():
        raise ModelError(
            f"no council has {GVF_MIN_HOMES} or more responding homes, so the design factor of "
            "the smoothed variances cannot be estimated"
        )
    phi = float(councils.loc[use, "direct_se"].pow(2).sum() / base[use].sum())
    return phi * base, phi


def _register_effective_homes(register: pd.DataFrame, by: str) -> pd.Series:
    """Effective number of homes per council with beds as sizes: (sum b)^2 / sum b^2."""
    beds = register["beds"].astype(float)
    groups = register[by].to_numpy()
    return beds.groupby(groups).sum() ** 2 / (beds**2).groupby(groups).sum()


def _synthetic_shares(design: SurveyDesign, register: pd.DataFrame, by: str) -> pd.Series:
    """Council share implied by region x home-type direct shares and the register's beds."""
    cells = design.ratio("self_funded", "residents", by=["region", "home_type"]).to_frame()
    cells["region"] = cells["region"].astype(str)
    cells["home_type"] = cells["home_type"].astype(str)
    rate = cells.set_index(["region", "home_type"])["estimate"]
    key = pd.MultiIndex.from_arrays([register["region"].astype(str), register["home_type"].astype(str)])
    national = float(design.ratio("self_funded", "residents").estimate.iloc[0])
    share = pd.Series(rate.reindex(key).to_numpy(), index=register.index).fillna(national)
    beds = register["beds"].to_numpy(dtype=float)
    num = pd.Series(beds * share.to_numpy()).groupby(register[by].to_numpy()).sum()
    den = pd.Series(beds).groupby(register[by].to_numpy()).sum()
    return num / den


def _fit_fay_herriot(councils: pd.DataFrame, by: str, formula_terms: list[str], level: float) -> Any:
    data = councils.reset_index()
    model = FayHerriot(
        data,
        estimate="fh_direct",
        variance="fh_variance",
        formula="fh_direct ~ " + " + ".join(formula_terms),
        area=by,
        method="REML",
        level=level,
        n="responding_homes",
    )
    return model.fit()


def _interval(
    estimate: np.ndarray, se: np.ndarray, z: float, lower: float = 0.0, upper: float = np.inf
) -> tuple[np.ndarray, np.ndarray]:
    return (np.clip(estimate - z * se, lower, upper), np.clip(estimate + z * se, lower, upper))


def estimate_care_home_funding(
    register: pd.DataFrame,
    returns: pd.DataFrame,
    *,
    by: str = "area_code",
    calibrate_to: Sequence[str] = ("region", "home_type", "size_band"),
    covariates: pd.DataFrame | None = None,
    admin: pd.DataFrame | None = None,
    admin_cv: float = 0.0,
    level: float = 0.9,
) -> CareHomeFundingEstimates:
    r"""Care-home residents and self-funders by council from returns weighted to the register.

    Parameters
    ----------
    register : DataFrame
        The register of care homes in the layout of
        :func:`unmetneed.io.read_care_home_register` (read again and checked
        here).
    returns : DataFrame
        The responding homes' returns, as :func:`unmetneed.io.read_provider_returns`.
    by : str, default "area_code"
        The register column of the small areas (councils).
    calibrate_to : sequence of str, default ("region", "home_type", "size_band")
        Register variables whose homes and beds the weights must reproduce in
        every category. The first one also stratifies the start weights (with
        its finite-population correction).
    covariates : DataFrame, optional
        Council covariates for the model, one row per council: a ``by``
        column and numeric columns (e.g. census owner-occupation), added to
        the register's own (beds in older-people homes, beds in nursing
        homes, mean deprivation decile, region).
    admin : DataFrame, optional
        Council-funded care-home residents by council from the councils' own
        returns: ``by``, ``setting`` and ``count`` columns (the layout of
        :func:`unmetneed.io.read_admin_counts`; rows whose setting is
        ``residential`` are used, other columns summed over). The council-funded
        share they imply, :math:`C_a / \hat N_a` (:math:`\hat N_a` the
        council's estimated residents), joins the covariates as
        ``admin_share``; being an estimate, it enters through the
        measurement-error Fay-Herriot model (Ybarra & Lohr, 2008).
    admin_cv : float, default 0
        Relative error of the admin counts as counts of the homes' own
        council-funded residents (placements out of area, another reference
        date); it adds :math:`\mathrm{cv}^2 \hat x_a^2` to the covariate's
        variance. 0 takes them as exact.
    level : float, default 0.9
        Interval level.

    Returns
    -------
    CareHomeFundingEstimates
        ``to_frame()``: ``area_code, quantity, estimate, se, ci_lower,
        ci_upper, cv, n, basis``; ``tables()`` the ONS-style tables;
        ``direct(by=...)`` design-based shares by any register column.

    Raises
    ------
    ReadError, MissingColumnError
        From the readers: returns of homes not in the register (ids listed),
        residents > beds, negative counts, repeated home ids, missing columns.
    DesignError
        A ``calibrate_to`` or ``by`` column is missing, a stratum has no
        returns, an invalid ``level``.
    CalibrationError
        The weights cannot meet the register's totals.
    ModelError
        Covariates missing for a council (listed), or the model cannot be fitted.

    Notes
    -----
    Direct council share :math:`\hat p_a = \sum_{i \in s_a} w_i y_i / \sum_{i\in
    s_a} w_i x_i` (:math:`y` self-funded, :math:`x` residents). The
    Fay-Herriot model :math:`\hat p_a = \theta_a + e_a`, :math:`\theta_a =
    z_a^\top\beta + u_a` uses the smoothed variances
    :math:`\tilde v_a = \hat\phi (1 - f_a) \tilde p_a (1-\tilde p_a)/m_a`
    (a generalised variance function: a council with one or two returns has a
    Taylor variance of 0 or an unstable one); the EBLUP's MSE is Datta-Lahiri's.
    A council whose every home returned is reported directly (SE 0). Residents
    :math:`\hat N_a = B_a \hat o_a` with :math:`B_a` the register's beds and
    :math:`\hat o_a` the ratio residents / beds; self-funders :math:`\hat
    S_a = \hat N_a \hat\theta_a` with :math:`\mathrm{Var} \approx \hat N_a^2
    \mathrm{mse}(\hat\theta_a) + \hat\theta_a^2 \mathrm{Var}(\hat N_a)`.
    Intervals are normal (model) or t (direct) and clipped at 0 (and 1 for
    shares).

    References
    ----------
    Office for National Statistics (2023). *Care homes and estimating the
    self-funding population, England: 2022 to 2023*.
    Fay, R. E. & Herriot, R. A. (1979). *JASA* 74, 269-277.
    Datta, G. S. & Lahiri, P. (2000). *Statistica Sinica* 10, 613-627.
    Rao, J. N. K. & Molina, I. (2015). *Small Area Estimation*, 2nd ed. Wiley.

    Examples
    --------
    >>> import unmetneed as um
    >>> eng = um.datasets.load_synthetic_england()
    >>> res = um.estimate_care_home_funding(eng.care_homes.register, eng.care_homes.returns,
    ...                                     covariates=eng.care_homes.areas)
    >>> table = res.to_frame()
    >>> sorted(table["quantity"].unique())
    ['residents', 'self_funded', 'self_funded_share']
    >>> table["area_code"].nunique()
    152
    """
    level = check_level(level)
    if not (np.isfinite(admin_cv) and 0.0 <= admin_cv < 1.0):
        raise ModelError(f"admin_cv must be a relative error in [0, 1); got {admin_cv!r}")
    if isinstance(calibrate_to, str):
        calibrate_to = (calibrate_to,)
    calibrate_to = tuple(calibrate_to)
    if not calibrate_to:
        raise DesignError("calibrate_to must name at least one register variable, e.g. 'region'")
    if not isinstance(register, pd.DataFrame) or not isinstance(returns, pd.DataFrame):
        raise DesignError(
            "register and returns must be pandas DataFrames (read files with "
            "unmetneed.io.read_care_home_register / read_provider_returns)"
        )
    extra = [c for c in (by, *calibrate_to) if c not in register.columns]
    if extra:
        raise MissingColumnError(
            f"register has no column(s) {extra} (by= / calibrate_to=); it has {list(register.columns)}"
        )
    reg = read_care_home_register(register, layout="standard")
    for column in (by, *calibrate_to):
        if column not in reg.columns:
            reg[column] = register[column].to_numpy()
    ret = read_provider_returns(returns, register=reg, layout="standard")
    sample = _sample(reg, ret)

    margins, sample = _margins(reg, sample, calibrate_to)
    design = _design(reg, sample, calibrate_to[0])
    weighting = calibrate(design, margins, method="raking", tol=1e-10)
    d = weighting.design

    # council frame: register covariates, direct shares, occupancy
    councils = _area_covariates(reg, by)
    direct = d.ratio("self_funded", "residents", by=by, level=level).to_frame().set_index(by)
    occupancy = d.ratio("residents", "beds", by=by, level=level).to_frame().set_index(by)
    councils["responding_homes"] = direct["n"].reindex(councils.index).fillna(0).astype(int)
    councils["direct"] = direct["estimate"].reindex(councils.index)
    councils["direct_se"] = direct["se"].reindex(councils.index)
    synthetic = _synthetic_shares(d, reg, by)
    gvf, phi = _gvf(d, councils, by, synthetic)
    councils["synthetic_share"] = synthetic.reindex(councils.index)
    councils["gvf_se"] = np.sqrt(gvf)
    complete = councils["responding_homes"] >= councils["homes"]
    none = councils["responding_homes"] == 0

    terms = ["older_beds_share", "nursing_beds_share"]
    if "mean_deprivation_decile" in councils.columns:
        terms.append("mean_deprivation_decile")
    if councils["region"].nunique() > 1:
        terms.append("C(region)")
    if covariates is not None:
        councils, user_terms = _join_covariates(councils, covariates, by)
        terms.extend(user_terms)
    # occupancy (residents / beds): the council's own ratio; the region's without returns
    beds = councils["register_beds"].to_numpy(dtype=float)
    occ = occupancy["estimate"].reindex(councils.index).to_numpy()
    # the Taylor SE where a council has enough returns to estimate it; fewer: the model's
    occ_se = np.where(
        councils["responding_homes"].to_numpy() >= GVF_MIN_HOMES,
        occupancy["se"].reindex(councils.index).to_numpy(),
        _occupancy_prediction_se(d, reg, councils, by),
    )
    if none.any():
        occ, occ_se = _occupancy_without_returns(d, reg, councils, by, occ, occ_se)

    fh_rows = ~complete
    councils["fh_direct"] = np.where(fh_rows & ~none, councils["direct"], np.nan)
    councils["fh_variance"] = np.where(fh_rows & ~none, gvf, np.nan)
    fit_rows = (fh_rows & ~none).to_numpy()
    if admin is not None:
        funded = _admin_counts(reg, admin, by).reindex(councils.index).to_numpy()
        occ_pooled, occ_pooled_se = _pooled_occupancy(councils, occ, occ_se, none.to_numpy())
        councils["admin_share"] = funded / (beds * occ_pooled)
        councils["admin_share_se"] = councils["admin_share"] * np.sqrt(
            (occ_pooled_se / occ_pooled) ** 2 + admin_cv**2
        )
        terms.append("admin_share")
    X_all, names = _council_matrix(councils, fit_rows, fh_rows.to_numpy(), terms)
    if admin is None:
        fit = _fit_fay_herriot(councils.loc[fh_rows], by, terms, level)
        fh = fit.estimates(level=level).set_index(by)
        councils["model_estimate"] = fh["estimate"].reindex(councils.index)
        councils["model_se"] = np.sqrt(fh["mse"].reindex(councils.index))
        councils["shrinkage"] = fh["shrinkage"].reindex(councils.index)
    else:
        fit, beta_admin = _fit_with_admin(councils, X_all, names, fit_rows, (fh_rows & none).to_numpy())

    if none.any():
        # the target is the council's finite-population share: add the variance of its
        # homes around the council mean (the GVF with nothing observed, f = 0)
        no_returns = none.to_numpy()
        p = councils["synthetic_share"].clip(0.005, 0.995).to_numpy()
        m = _register_effective_homes(reg, by).reindex(councils.index).to_numpy()
        extra = phi * p * (1.0 - p) / m
        councils["model_se"] = np.where(
            no_returns, np.sqrt(councils["model_se"].to_numpy() ** 2 + extra), councils["model_se"]
        )

    # councils whose every home returned: their totals are known exactly (unweighted sums)
    observed = sample.groupby(by)[["self_funded", "residents"]].sum().reindex(councils.index)
    exact_share = (observed["self_funded"] / observed["residents"]).to_numpy()

    # shares
    share = np.where(complete, exact_share, councils["model_estimate"])
    share_se = np.where(complete, 0.0, councils["model_se"])
    share = np.clip(share, 0.0, 1.0)
    basis = np.where(complete, "direct", np.where(none, "model_no_returns", "model"))

    # residents: register beds x occupancy (own ratio; region's for councils without returns)
    occ = np.where(complete, observed["residents"].to_numpy() / beds, occ)
    occ_se = np.where(complete, 0.0, occ_se)
    residents = beds * occ
    residents_se = beds * occ_se
    self_funded = residents * share
    # With admin counts the share leans on admin_share = C / residents, so its error and the
    # residents' share a source: Cov(share, residents) = (1 - gamma) beta_admin d(admin_share)/d(residents)
    # Var(residents), with d(admin_share)/d(residents) = -admin_share / residents.
    covariance = np.zeros(len(councils))
    if admin is not None:
        synthetic_weight = 1.0 - np.nan_to_num(councils["shrinkage"].to_numpy(), nan=0.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            slope = -councils["admin_share"].to_numpy() / residents
        covariance = np.where(complete, 0.0, synthetic_weight * beta_admin * slope * residents_se**2)
    self_funded_se = np.sqrt(
        np.maximum(
            residents**2 * share_se**2 + share**2 * residents_se**2 + 2.0 * residents * share * covariance,
            0.0,
        )
    )

    z = float(stats.norm.ppf(0.5 + level / 2.0))
    rows = []
    n = councils["responding_homes"].to_numpy()
    codes = councils.index.to_numpy()
    residents_basis = np.where(none, "model_no_returns", "direct")
    for quantity, est, se, base, upper in (
        ("residents", residents, residents_se, residents_basis, np.inf),
        ("self_funded", self_funded, self_funded_se, basis, np.inf),
        ("self_funded_share", share, share_se, basis, 1.0),
    ):
        lower_ci, upper_ci = _interval(est, se, z, 0.0, upper)
        with np.errstate(divide="ignore", invalid="ignore"):
            cv = np.where(est > 0, se / est, np.nan)
        rows.append(
            pd.DataFrame(
                {
                    by: codes,
                    "quantity": quantity,
                    "estimate": est,
                    "se": se,
                    "ci_lower": lower_ci,
                    "ci_upper": upper_ci,
                    "cv": cv,
                    "n": n,
                    "basis": base,
                }
            )
        )
    table = pd.concat(rows, ignore_index=True)
    table["quantity"] = pd.Categorical(table["quantity"], categories=list(QUANTITIES))
    table = table.sort_values([by, "quantity"], kind="stable").reset_index(drop=True)
    table["quantity"] = table["quantity"].astype(str)
    councils["estimate"] = share
    councils["se"] = share_se
    councils["basis"] = basis

    info = {
        "method": "returns calibrated to the register (raking: homes and beds by "
        + ", ".join(calibrate_to)
        + (
            "); Fay-Herriot (REML) on direct council shares"
            if admin is None
            else "); measurement-error Fay-Herriot on direct council shares, with the admin counts' "
            "council-funded share as a covariate"
        ),
        "by": by,
        "calibrate_to": list(calibrate_to),
        "level": level,
        "interval": "normal (model), clipped to [0, 1] for shares and at 0 for counts",
        "formula": "share ~ " + " + ".join(terms),
        "fh_method": (
            "REML, Datta-Lahiri MSE"
            if admin is None
            else "measurement-error Fay-Herriot (Ybarra & Lohr 2008; admin_share estimated, with "
            "its delta-method variance), Fay-Herriot moment estimator of sigma2"
        ),
        "gvf_factor": phi,
        "gvf_min_homes": GVF_MIN_HOMES,
        "register_homes": len(reg),
        "responding_homes": len(ret),
        "response_rate": float(len(ret) / len(reg)),
        "councils_no_returns": codes[none.to_numpy()].tolist(),
        "councils_complete": codes[complete.to_numpy()].tolist(),
        "register_sha256": reg.attrs.get("sha256"),
        "package_version": package_version(),
    }
    return CareHomeFundingEstimates(
        weighting=weighting,
        councils=councils.reset_index(),
        model=fit,
        info=MappingProxyType(info),
        _table=table,
        _common=_common_error(councils, X_all, names, fit, complete.to_numpy()),
    )


def _join_covariates(
    councils: pd.DataFrame, covariates: pd.DataFrame, by: str
) -> tuple[pd.DataFrame, list[str]]:
    if not isinstance(covariates, pd.DataFrame):
        raise ModelError("covariates must be a DataFrame with one row per council")
    if by not in covariates.columns:
        raise MissingColumnError(f"covariates have no {by!r} column; they have {list(covariates.columns)}")
    keys = covariates[by].astype(str)
    if keys.duplicated().any():
        raise ModelError(f"covariates repeat councils {sorted(set(keys[keys.duplicated()]))[:10]}")
    terms = [c for c in covariates.columns if c != by]
    if not terms:
        raise ModelError("covariates has no columns besides the council column")
    clash = [c for c in terms if c in councils.columns]
    if clash:
        raise ModelError(f"covariates columns {clash} clash with the register covariates; rename them")
    for column in terms:
        if not pd.api.types.is_numeric_dtype(covariates[column]):
            raise ModelError(f"covariate {column!r} is not numeric")
    values = covariates.assign(**{by: keys}).set_index(by)[terms]
    joined = councils.join(values, how="left")
    missing = joined[terms].isna().any(axis=1)
    if missing.any():
        raise ModelError(
            f"covariates are missing for councils {sorted(map(str, joined.index[missing]))[:10]}"
            f"{' ...' if missing.sum() > 10 else ''}; every council in the register needs them"
        )
    return joined, terms


def _region_occupancy_variance(design: SurveyDesign) -> pd.Series:
    """Weighted variance of home occupancy (residents / beds) between homes, by region."""
    data = design.data
    rate = data["residents"].to_numpy(dtype=float) / data["beds"].to_numpy(dtype=float)
    w = design.weights
    frame = pd.DataFrame(
        {"region": data["region"].astype(str).to_numpy(), "w": w, "wr": w * rate, "wr2": w * rate**2}
    )
    sums = frame.groupby("region").sum()
    mean = sums["wr"] / sums["w"]
    return (sums["wr2"] / sums["w"] - mean**2).clip(lower=0.0)


def _occupancy_prediction_se(
    design: SurveyDesign, register: pd.DataFrame, councils: pd.DataFrame, by: str
) -> np.ndarray:
    r"""SE of a council's occupancy ratio as a prediction of its register homes' occupancy.

    Under :math:`x_i = o_a b_i + \varepsilon_i`, :math:`\mathrm{Var}(\varepsilon_i) =
    \tau_r^2 b_i` (residents vary around the council's occupancy like counts, per bed;
    :math:`\tau_r^2` pooled over the region's councils with returns), the error of
    :math:`\hat o_a = \sum_{s_a} x_i / \sum_{s_a} b_i` for the register's occupancy has
    variance :math:`\tau_r^2 (B_{a,\bar s} + B_{a,\bar s}^2 / B_{a,s}) / B_a^2`
    (:math:`B_{a,s}`, :math:`B_{a,\bar s}` the beds of responding and other homes), which,
    unlike the Taylor variance, does not vanish for a council with one or two responding
    homes (as the shares' GVF). NaN for councils without returns.
    """
    data = design.data
    beds = data["beds"].to_numpy(dtype=float)
    keys = data[by].astype(str).to_numpy()
    # tau_r^2: homes' residents around their council's occupancy x beds, per bed, pooled over
    # the region's councils with returns
    residents = data["residents"].to_numpy(dtype=float)
    frame = pd.DataFrame({"x": residents, "b": beds}).groupby(keys).transform("sum")
    council_rate = (frame["x"] / frame["b"]).to_numpy()
    region_of = data["region"].astype(str).to_numpy()
    pooled = (
        pd.DataFrame({"e2": (residents - council_rate * beds) ** 2 / beds, "n": 1.0}).groupby(region_of).sum()
    )
    pooled["k"] = pd.Series(keys).groupby(region_of).nunique()
    tau2 = pooled["e2"] / (pooled["n"] - pooled["k"]).clip(lower=1.0)
    responding = pd.DataFrame({"b": beds}).groupby(keys).sum()
    reg_beds = register["beds"].astype(float).to_numpy()
    total = pd.DataFrame({"b": reg_beds}).groupby(register[by].astype(str).to_numpy()).sum()
    index = councils.index.astype(str)
    resp = responding["b"].reindex(index)
    tot = total["b"].reindex(index)
    missing = (tot - resp).clip(lower=0.0)
    region_tau2 = councils["region"].astype(str).map(tau2).to_numpy(dtype=float)
    variance = region_tau2 * (missing + missing**2 / resp) / tot**2
    return np.sqrt(variance.to_numpy(dtype=float))


def _pooled_occupancy(
    councils: pd.DataFrame, occ: np.ndarray, occ_se: np.ndarray, none: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    r"""Councils' occupancy pooled with their region's, for the ``admin_share`` covariate.

    :math:`\hat o^*_a = \lambda_a \hat o_a + (1-\lambda_a)\bar o_r`, :math:`\lambda_a =
    \tau_r^2 / (\tau_r^2 + V_a)`, with :math:`V_a` the variance of the council's own ratio,
    :math:`\bar o_r` the precision-weighted mean of the region's councils and
    :math:`\tau_r^2` the variance of councils' occupancy around it (moments, at least 1e-6);
    variance :math:`\lambda_a V_a`. A council with one or two responding homes borrows its
    region's occupancy instead of putting a noisy denominator under its admin count.
    Councils without returns keep the region's ratio given.
    """
    region = councils["region"].astype(str).to_numpy()
    own = ~none & (occ_se > 0)
    frame = pd.DataFrame(
        {"o": occ, "v": occ_se**2, "w": np.where(own, 1.0 / np.where(own, occ_se**2, 1.0), 0.0)}
    )
    frame["wo"] = frame["w"] * frame["o"]
    sums = frame[own].groupby(region[own]).agg(w=("w", "sum"), wo=("wo", "sum"), n=("o", "size"))
    mean = sums["wo"] / sums["w"]
    centre_own = pd.Series(region[own]).map(mean).to_numpy(dtype=float)
    excess = (frame.loc[own, "o"].to_numpy() - centre_own) ** 2 - frame.loc[own, "v"].to_numpy()
    tau2 = pd.Series(excess).groupby(region[own]).mean().clip(lower=1e-6)
    t2 = pd.Series(region).map(tau2).to_numpy(dtype=float)
    centre = pd.Series(region).map(mean).to_numpy(dtype=float)
    lam = np.where(own, t2 / (t2 + occ_se**2), 1.0)
    pooled = np.where(own, lam * occ + (1.0 - lam) * centre, occ)
    return pooled, np.where(own, np.sqrt(lam) * occ_se, occ_se)


def _occupancy_without_returns(
    design: SurveyDesign,
    register: pd.DataFrame,
    councils: pd.DataFrame,
    by: str,
    occ: np.ndarray,
    occ_se: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    r"""Occupancy of councils without returns: the region's ratio, with a prediction variance.

    :math:`\mathrm{Var} = \mathrm{Var}(\hat o_r) + s_r^2 \sum_h b_h^2 / B_a^2`,
    :math:`s_r^2` the weighted variance of home occupancy (residents / beds)
    in the region.
    """
    region = design.ratio("residents", "beds", by="region").to_frame()
    region["region"] = region["region"].astype(str)
    region = region.set_index("region")
    s2 = _region_occupancy_variance(design)
    beds2 = (register["beds"].astype(float) ** 2).groupby(register[by]).sum()
    occ, occ_se = occ.copy(), occ_se.copy()
    for i, code in enumerate(councils.index):
        if councils["responding_homes"].iloc[i] > 0:
            continue
        r = councils["region"].iloc[i]
        B = councils["register_beds"].iloc[i]
        occ[i] = region.loc[r, "estimate"]
        occ_se[i] = np.sqrt(region.loc[r, "se"] ** 2 + s2.loc[r] * beds2.loc[code] / B**2)
    return occ, occ_se
