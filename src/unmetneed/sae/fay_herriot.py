"""The area-level Fay-Herriot model: ``FayHerriot`` and its fit."""

from __future__ import annotations

import dataclasses
import hashlib
import html
import operator
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal, cast

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import stats

from unmetneed._immutable import readonly
from unmetneed._provenance import package_version
from unmetneed._validate import check_choice, check_level, require_columns
from unmetneed.errors import ModelError
from unmetneed.sae.data import AreaData, covariate_matrix, prepare_area_data
from unmetneed.sae.fitting import FitMethod, fit_sigma2, gls
from unmetneed.sae.mse import MSEComponents, eblup, mse_components, synthetic_mse

__all__ = ["BenchmarkMethod", "FayHerriot", "FayHerriotFit", "FitMethod"]

BenchmarkMethod = Literal["ratio", "difference"]

_BASIS_EBLUP = "eblup"
_BASIS_SYNTHETIC = "synthetic"


def _inputs_hash(d: AreaData) -> str:
    """SHA-256 of what the fit uses: labels, estimates, variances, covariate rows."""
    digest = hashlib.sha256()
    digest.update("\x1f".join(map(str, d.areas)).encode("utf-8"))
    for array in (d.y, d.psi, d.X):
        digest.update(np.ascontiguousarray(array, dtype=np.float64).tobytes())
    return digest.hexdigest()


def _field(attribute: str, doc: str) -> Any:
    """A read-only property returning ``self.<attribute>`` (dotted paths allowed)."""
    return property(operator.attrgetter(attribute), doc=doc)


class FayHerriot:
    r"""The area-level Fay-Herriot model of direct estimates.

    For area :math:`i` with direct estimate :math:`y_i` (e.g. a survey mean),
    its sampling variance :math:`\psi_i` (treated as known) and covariates
    :math:`x_i`,

    .. math::

        y_i = \theta_i + e_i, \quad \theta_i = x_i^\top\beta + u_i, \quad
        u_i \sim N(0, \sigma^2), \quad e_i \sim N(0, \psi_i).

    ``fit()`` estimates :math:`\sigma^2` by REML or ML and gives the EBLUP of
    every :math:`\theta_i` with its Datta-Lahiri MSE. The model is only
    specified and checked here; nothing is estimated until ``fit()``.

    Parameters
    ----------
    data : DataFrame
        One row per area.
    estimate : str
        Column of direct estimates :math:`y_i`.
    variance : str
        Column of their sampling variances :math:`\psi_i` (squared standard
        errors), > 0. An area whose estimate *and* variance are both NaN has no
        direct estimate: it is left out of the fit and predicted synthetically
        from its covariates (``basis == "synthetic"`` in the results).
    formula : str
        The covariates, ``"y ~ x1 + x2"`` (formulaic syntax: ``C(region)``,
        ``np.log(x)``, interactions; an intercept unless ``- 1``). The
        left-hand side, if given, must be ``estimate``. ``"y ~ 1"`` is a
        common mean.
    area : str
        Column of area labels (one row per area), e.g. ``"area_code"``. It
        names the area column of every result table.
    method : {"REML", "ML"}, default "REML"
        Estimator of :math:`\sigma^2`: restricted or full maximum likelihood.
    level : float, default 0.9
        Level of the normal intervals ``estimate -/+ z * sqrt(mse)`` in
        results (each result method can override it).
    n : str, optional
        Column of respondents behind each direct estimate, carried to the
        ``n`` column of ``to_frame()`` (NA when not given).

    Raises
    ------
    MissingColumnError
        A named column, or a variable of the formula, is not in ``data``.
    ModelError
        Duplicated or missing area labels; an estimate that is NaN while its
        variance is given; a variance that is NaN, infinite or <= 0 where there
        is a direct estimate; missing covariates; fewer areas with a direct
        estimate than fixed effects + 2; collinear covariates; an invalid
        ``method`` or ``level``. Each message lists the areas at fault.

    See Also
    --------
    FayHerriotFit : the fitted model.

    Notes
    -----
    Areas with a direct estimate enter the likelihood; all others need their
    covariates and are predicted by :math:`x_i^\top\hat\beta` (never dropped
    silently). Formulas are on the methods page "Fay-Herriot model".

    References
    ----------
    Fay, R. E. and Herriot, R. A. (1979). Estimates of income for small places:
    an application of James-Stein procedures to census data. *JASA* 74, 269-277.

    Rao, J. N. K. and Molina, I. (2015). *Small Area Estimation*, 2nd ed.,
    chapter 6. Wiley.

    Examples
    --------
    Direct estimates of need by council from the example survey, then a
    Fay-Herriot model with a common mean:

    >>> import unmetneed as um
    >>> design = um.datasets.load_example_design()
    >>> direct = design.mean("need", by="area_code").to_frame()
    >>> direct["variance"] = direct["se"] ** 2
    >>> model = um.FayHerriot(direct, estimate="estimate", variance="variance",
    ...                       formula="estimate ~ 1", area="area_code", n="n")
    >>> fit = model.fit()
    >>> table = fit.estimates()
    >>> list(table.columns[:8])
    ['area_code', 'direct', 'direct_variance', 'estimate', 'mse', 'ci_lower', 'ci_upper', 'shrinkage']
    >>> bool(((table["shrinkage"] >= 0) & (table["shrinkage"] <= 1)).all())
    True
    """

    __slots__ = ("_area_data", "_estimate", "_formula", "_level", "_method", "_n", "_variance")

    def __init__(
        self,
        data: pd.DataFrame,
        estimate: str,
        variance: str,
        formula: str,
        area: str,
        *,
        method: FitMethod = "REML",
        level: float = 0.9,
        n: str | None = None,
    ) -> None:
        # check_choice accepted it as one of FitMethod's values
        self._method = cast(FitMethod, str(check_choice(method, "method", FitMethod)))
        self._level = check_level(level, error=ModelError)
        area_data = prepare_area_data(
            data, estimate=estimate, variance=variance, formula=formula, area=area, n=n
        )
        self._estimate = estimate
        self._variance = variance
        self._formula = formula
        self._n = n
        self._area_data = area_data  # last: the model is read-only from here on

    def __setattr__(self, name: str, value: Any) -> None:
        if hasattr(self, "_area_data"):
            raise AttributeError("a FayHerriot model is immutable; build a new one")
        object.__setattr__(self, name, value)

    def __getstate__(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}

    def __setstate__(self, state: dict[str, Any]) -> None:
        for name, value in state.items():
            object.__setattr__(self, name, value)

    # -- specification (read-only fields) -----------------------------------------
    method = _field("_method", """``"REML"`` or ``"ML"``.""")
    level = _field("_level", "Default interval level of the results.")
    formula = _field("_formula", "The formula as given.")
    area_col = _field("_area_data.area_col", "Name of the area column.")
    estimate_col = _field("_estimate", "Name of the direct-estimate column.")
    variance_col = _field("_variance", "Name of the sampling-variance column.")
    areas = _field("_area_data.areas", "Every area, in the data's order (an immutable Index).")

    @property
    def terms(self) -> list[str]:
        """Names of the fixed effects (formulaic's, e.g. ``Intercept``, ``C(g)[T.b]``)."""
        return list(self._area_data.terms)

    @property
    def has_direct(self) -> pd.Series:
        """Whether each area has a direct estimate (``False``: predicted synthetically)."""
        return pd.Series(self._area_data.observed.copy(), index=self.areas, name="has_direct")

    def fit(self, *, tol: float = 1e-10, max_iter: int = 1000) -> FayHerriotFit:
        r"""Estimate :math:`\sigma^2`, :math:`\beta`, the EBLUPs and their MSE.

        Parameters
        ----------
        tol : float, default 1e-10
            Fisher scoring stops when the change in :math:`\sigma^2` is below
            ``tol * (sigma2 + mean(psi))``.
        max_iter : int, default 1000
            Iteration limit.

        Returns
        -------
        FayHerriotFit

        Raises
        ------
        ModelError
            If the estimate of :math:`\sigma^2` did not converge, or ``tol`` /
            ``max_iter`` are invalid.

        Notes
        -----
        :math:`\sigma^2` maximises the restricted (REML) or full (ML)
        likelihood over :math:`\sigma^2 \ge 0` by Fisher scoring with step
        halving, truncated at 0 as ``metafor::rma`` does; :math:`\hat\beta` is
        the GLS estimate at :math:`\hat\sigma^2`.

        Examples
        --------
        >>> import unmetneed as um
        >>> data = um.datasets.load_example_areas()
        >>> fit = um.FayHerriot(data, "y", "v", "y ~ x", "area").fit()
        >>> fit.converged
        True
        """
        if not (isinstance(tol, (int, float)) and not isinstance(tol, bool) and 0.0 < tol < 1.0):
            raise ModelError(f"tol={tol!r} must be a number between 0 and 1, e.g. 1e-10")
        if isinstance(max_iter, bool) or not isinstance(max_iter, (int, np.integer)) or max_iter < 1:
            raise ModelError(f"max_iter={max_iter!r} must be a positive integer")
        d = self._area_data
        obs = d.observed
        y, psi, X = d.y[obs], d.psi[obs], d.X[obs]
        vf = fit_sigma2(self._method, y, X, psi, tol=float(tol), max_iter=int(max_iter))
        g = gls(y, X, psi, vf.sigma2)
        synthetic = d.X @ g.beta
        estimate = synthetic.copy()
        shrinkage = np.zeros(d.areas.size)
        estimate[obs], shrinkage[obs] = eblup(y, psi, synthetic[obs], vf.sigma2)
        components = mse_components(X, psi, vf.sigma2, g.A_inv, self._method)
        mse = synthetic_mse(d.X, vf.sigma2, g.A_inv)
        mse[obs] = components.mse
        components = MSEComponents(*(readonly(a, np.float64) for a in dataclasses.astuple(components)))
        info = {
            "model": "Fay-Herriot",
            "method": self._method,
            "formula": self._formula,
            "estimate": self._estimate,
            "variance": self._variance,
            "area": d.area_col,
            "n": self._n,
            "areas_with_direct": int(obs.sum()),
            "areas_synthetic": int((~obs).sum()),
            "mse": "Datta-Lahiri (2000): g1 + g2 + 2 g3" + (" - b_ML g1'" if self._method == "ML" else ""),
            "optimiser": "Fisher scoring, step halving, sigma2 >= 0",
            "start": vf.start,
            "tol": float(tol),
            "max_iter": int(max_iter),
            "iterations": vf.iterations,
            "converged": vf.converged,
            "score": vf.score,
            "inputs_sha256": _inputs_hash(d),
            "unmetneed_version": package_version(),
        }
        return FayHerriotFit(
            model=self,
            sigma2=float(vf.sigma2),
            sigma2_se=float(np.sqrt(1.0 / vf.information)),
            loglik=float(vf.loglik),
            converged=bool(vf.converged),
            iterations=int(vf.iterations),
            beta=readonly(g.beta, np.float64),
            vcov_beta=readonly(g.A_inv, np.float64),
            synthetic=readonly(synthetic, np.float64),
            eblup=readonly(estimate, np.float64),
            mse=readonly(mse, np.float64),
            shrinkage=readonly(shrinkage, np.float64),
            components=components,
            info=MappingProxyType(info),
        )

    def __repr__(self) -> str:
        d = self._area_data
        return (
            f"<FayHerriot: {self._method}, {self._formula!r}, {int(d.observed.sum())} areas with a "
            f"direct estimate, {int((~d.observed).sum())} without>"
        )


@dataclass(frozen=True)
class _Benchmark:
    total: float
    weights: np.ndarray
    method: str
    before: float  # sum(weights * eblup) before benchmarking

    def __post_init__(self) -> None:
        object.__setattr__(self, "weights", readonly(self.weights, np.float64))


@dataclass(frozen=True, eq=False, repr=False)
class FayHerriotFit:
    r"""A fitted Fay-Herriot model (made by :meth:`FayHerriot.fit`).

    Immutable: arrays are read-only and :meth:`benchmark` returns a new fit.

    Attributes
    ----------
    model : FayHerriot
        The specification.
    sigma2 : float
        Estimated random-effect variance :math:`\hat\sigma^2` (>= 0).
    sigma2_se : float
        Its asymptotic standard error, :math:`I(\hat\sigma^2)^{-1/2}` (expected
        information; metafor's ``se.tau2``).
    loglik : float
        Log-likelihood (ML) or restricted log-likelihood (REML, including
        :math:`\tfrac12\log|X^\top X|` as metafor's ``logLik``).
    converged, iterations
        Fisher-scoring convergence.
    beta, vcov_beta : ndarray
        GLS fixed effects and their covariance :math:`(X^\top V^{-1}X)^{-1}`.
    synthetic, eblup, mse, shrinkage : ndarray
        Per area (data order): :math:`x_i^\top\hat\beta`; the EBLUP (the
        synthetic estimate where there is no direct one); its MSE estimate;
        :math:`\hat\gamma_i=\hat\sigma^2/(\hat\sigma^2+\psi_i)` (0 without a
        direct estimate).
    components : MSEComponents
        ``g1``, ``g2``, ``g3``, ``bias`` and ``mse`` of the areas with a direct
        estimate.
    info : mapping
        Provenance: options, convergence, package version.

    Examples
    --------
    >>> import unmetneed as um
    >>> data = um.datasets.load_example_areas()
    >>> fit = um.FayHerriot(data, "y", "v", "y ~ x", "area").fit()
    >>> list(fit.fixed_effects.columns)
    ['estimate', 'se']
    >>> list(fit.to_frame().columns)
    ['area', 'estimate', 'se', 'ci_lower', 'ci_upper', 'cv', 'n', 'basis']
    """

    model: FayHerriot
    sigma2: float
    sigma2_se: float
    loglik: float
    converged: bool
    iterations: int
    beta: np.ndarray
    vcov_beta: np.ndarray
    synthetic: np.ndarray
    eblup: np.ndarray
    mse: np.ndarray
    shrinkage: np.ndarray
    components: MSEComponents
    info: Mapping[str, Any]
    benchmarking: _Benchmark | None = None

    def __getstate__(self) -> dict[str, Any]:
        state = {field.name: getattr(self, field.name) for field in dataclasses.fields(self)}
        state["info"] = dict(self.info)  # a mappingproxy does not pickle
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        for name, value in state.items():
            if isinstance(value, np.ndarray):
                value = readonly(value, np.float64)
            elif isinstance(value, MSEComponents):
                value = MSEComponents(*(readonly(a, np.float64) for a in dataclasses.astuple(value)))
            object.__setattr__(self, name, value)
        object.__setattr__(self, "info", MappingProxyType(dict(state["info"])))

    # -- parameters ----------------------------------------------------------------
    @property
    def fixed_effects(self) -> pd.DataFrame:
        """GLS estimates of :math:`\\beta` and their standard errors, indexed by term.

        Examples
        --------
        >>> import unmetneed as um
        >>> data = um.datasets.load_example_areas()
        >>> um.FayHerriot(data, "y", "v", "y ~ x", "area").fit().fixed_effects.index.tolist()
        ['Intercept', 'x']
        """
        index = pd.Index(self.model.terms, name="term")
        return pd.DataFrame(
            {"estimate": np.array(self.beta), "se": np.sqrt(np.diag(self.vcov_beta))}, index=index
        )

    def vcov(self) -> pd.DataFrame:
        """Covariance matrix of the fixed effects, labelled by term.

        Examples
        --------
        >>> import unmetneed as um
        >>> data = um.datasets.load_example_areas()
        >>> um.FayHerriot(data, "y", "v", "y ~ x", "area").fit().vcov().shape
        (2, 2)
        """
        terms = pd.Index(self.model.terms, name="term")
        return pd.DataFrame(np.array(self.vcov_beta), index=terms, columns=terms)

    # -- verbs -----------------------------------------------------------------------
    def benchmark(
        self,
        total: float,
        *,
        weights: pd.Series | ArrayLike | None = None,
        method: BenchmarkMethod = "ratio",
    ) -> FayHerriotFit:
        r"""A new fit whose estimates add up to a known total.

        The benchmarked estimates :math:`\hat\theta_i^B` satisfy
        :math:`\sum_i w_i\hat\theta_i^B = T` over **every area of the table**
        (with a direct estimate or synthetic). ``estimates()``, ``to_frame()``
        and ``summary()`` of the returned fit show them; ``predict()`` does not
        (new areas are outside the total).

        Parameters
        ----------
        total : float
            The known total :math:`T` (e.g. a national estimate); with weights
            that are population shares summing to 1, a national mean.
        weights : Series, array-like or None
            :math:`w_i`: a Series indexed by area (every area of the model), or
            values in the data's row order; finite and >= 0. ``None``: all 1
            (the estimates sum to ``total``).
        method : {"ratio", "difference"}, default "ratio"
            ``"ratio"``: :math:`\hat\theta_i^B = \hat\theta_i\,T/\sum_j w_j\hat\theta_j`
            (keeps signs, suits counts and rates); ``"difference"``:
            :math:`\hat\theta_i^B = \hat\theta_i + (T - \sum_j w_j\hat\theta_j)/\sum_j w_j`.

        Returns
        -------
        FayHerriotFit
            With ``benchmarking`` set; this fit is unchanged.

        Raises
        ------
        ModelError
            Invalid weights or method, a non-finite total, or (ratio) a
            weighted sum of estimates equal to 0.

        Notes
        -----
        The MSE of a benchmarked EBLUP is estimated by adding the squared
        adjustment, :math:`\operatorname{mse}(\hat\theta_i^B) =
        \operatorname{mse}(\hat\theta_i) + (\hat\theta_i^B - \hat\theta_i)^2`:
        for the difference benchmark the extra MSE is
        :math:`E(\hat\theta_i^B - \hat\theta_i)^2` up to :math:`o(m^{-1})`
        (Steorts & Ghosh 2013), which the realised square estimates without
        bias, if noisily; the same approximation is used for the ratio
        benchmark. The intervals are rebuilt from it; ``unbenchmarked`` keeps
        the EBLUPs.

        References
        ----------
        Steorts, R. C. and Ghosh, M. (2013). On estimation of mean squared
        errors of benchmarked empirical Bayes estimators. *Statistica Sinica*
        23, 749-767.

        Examples
        --------
        >>> import unmetneed as um
        >>> data = um.datasets.load_example_areas()
        >>> fit = um.FayHerriot(data, "y", "v", "y ~ x", "area").fit()
        >>> bench = fit.benchmark(14.0, method="difference")
        >>> round(float(bench.estimates()["estimate"].sum()), 10)
        14.0
        """
        method = check_choice(method, "method", BenchmarkMethod)
        if (
            isinstance(total, bool)
            or not isinstance(total, (int, float, np.number))
            or not np.isfinite(total)
        ):
            raise ModelError(f"total={total!r} must be a finite number")
        w = self._benchmark_weights(weights)
        before = float(np.sum(w * self.eblup))
        if method == "ratio" and before == 0.0:
            raise ModelError(
                "the weighted sum of the estimates is 0, so a ratio benchmark is undefined; "
                "use method='difference'"
            )
        w.setflags(write=False)
        return dataclasses.replace(self, benchmarking=_Benchmark(float(total), w, method, before))

    def _benchmark_weights(self, weights: pd.Series | ArrayLike | None) -> np.ndarray:
        areas = self.model.areas
        if weights is None:
            return np.ones(areas.size)
        if isinstance(weights, str):
            raise ModelError(
                "pass the benchmark weights as values (a Series indexed by area or an array in the "
                f"data's row order), e.g. weights=data.set_index({areas.name!r})[{weights!r}]"
            )
        if isinstance(weights, pd.Series):
            missing = areas.difference(weights.index)
            if missing.size:
                raise ModelError(
                    f"benchmark weights are missing for areas {list(missing[:10])}; "
                    "give a weight (possibly 0) to every area of the model"
                )
            if weights.index.duplicated().any():
                raise ModelError("benchmark weights name an area more than once")
            values = pd.to_numeric(weights.reindex(areas), errors="coerce").to_numpy(dtype=np.float64)
        else:
            values = np.asarray(weights, dtype=np.float64).reshape(-1)
            if values.size != areas.size:
                raise ModelError(
                    f"benchmark weights have {values.size} values for {areas.size} areas; give one per "
                    "row of the model's data (or a Series indexed by area)"
                )
            values = values.copy()
        bad = ~np.isfinite(values) | (values < 0)
        if bad.any():
            raise ModelError(
                f"benchmark weights must be finite and >= 0; not so for areas {list(areas[bad][:10])}"
            )
        if values.sum() <= 0:
            raise ModelError("benchmark weights are all 0; at least one area must carry weight")
        return values

    # -- results ---------------------------------------------------------------------
    def _level(self, level: float | None) -> float:
        return self.model.level if level is None else check_level(level, error=ModelError)

    def _final(self) -> tuple[np.ndarray, np.ndarray]:
        """Estimates and MSEs after benchmarking (if any)."""
        b = self.benchmarking
        if b is None:
            return np.array(self.eblup), np.array(self.mse)
        if b.method == "ratio":
            final = self.eblup * (b.total / b.before)
        else:
            final = self.eblup + (b.total - b.before) / float(np.sum(b.weights))
        return final, self.mse + (final - self.eblup) ** 2

    def estimates(self, *, level: float | None = None) -> pd.DataFrame:
        """One row per area: the direct estimate, the EBLUP, its MSE and interval.

        Parameters
        ----------
        level : float, optional
            Interval level; default the model's ``level`` (0.9 unless set).

        Returns
        -------
        DataFrame
            Columns ``<area>`` (the model's area column name), ``direct``,
            ``direct_variance``, ``estimate`` (EBLUP, or the synthetic
            :math:`x_i^\\top\\hat\\beta` without a direct estimate), ``mse``,
            ``ci_lower``, ``ci_upper`` (``estimate -/+ z * sqrt(mse)``),
            ``shrinkage`` (:math:`\\hat\\sigma^2/(\\hat\\sigma^2+\\psi_i)`, the
            weight on the direct estimate), ``basis`` (``"eblup"`` or
            ``"synthetic"``); ``n`` if the model has one; ``unbenchmarked``
            after :meth:`benchmark`. Level, method and MSE formula in ``attrs``.

        Examples
        --------
        >>> import numpy as np
        >>> import pandas as pd
        >>> import unmetneed as um
        >>> data = pd.DataFrame({"area": list("ABCDEFG"),
        ...                      "y": [1.2, 2.3, 1.9, 3.1, 2.2, 2.8, np.nan],
        ...                      "v": [0.2, 0.5, 0.3, 0.4, 0.1, 0.6, np.nan],
        ...                      "x": [1.0, 2.0, 1.5, 3.0, 2.0, 2.5, 4.0]})
        >>> table = um.FayHerriot(data, "y", "v", "y ~ x", "area").fit().estimates()
        >>> table["basis"].tolist()[-2:]
        ['eblup', 'synthetic']
        """
        level = self._level(level)
        d = self.model._area_data
        final, mse = self._final()
        half = float(stats.norm.ppf(0.5 + level / 2.0)) * np.sqrt(mse)
        table = pd.DataFrame({d.area_col: d.areas.to_numpy()})
        table["direct"] = np.array(d.y)
        table["direct_variance"] = np.array(d.psi)
        table["estimate"] = final
        table["mse"] = mse
        table["ci_lower"] = final - half
        table["ci_upper"] = final + half
        table["shrinkage"] = np.array(self.shrinkage)
        table["basis"] = np.where(d.observed, _BASIS_EBLUP, _BASIS_SYNTHETIC)
        if d.n is not None:
            table["n"] = np.array(d.n)
        if self.benchmarking is not None:
            table["unbenchmarked"] = np.array(self.eblup)
        table.attrs.update(self._attrs(level))
        return table

    def to_frame(self, *, level: float | None = None) -> pd.DataFrame:
        """The library's standard result table.

        Parameters
        ----------
        level : float, optional
            Interval level; default the model's ``level``.

        Returns
        -------
        DataFrame
            ``<area>, estimate, se, ci_lower, ci_upper, cv, n, basis`` with
            ``se = sqrt(mse)``, ``cv = se / |estimate|``, normal intervals and
            ``n`` the respondents (NA unless the model was given ``n=``).

        Examples
        --------
        >>> import unmetneed as um
        >>> data = um.datasets.load_example_areas()
        >>> frame = um.FayHerriot(data, "y", "v", "y ~ x", "area").fit().to_frame(level=0.95)
        >>> frame.attrs["level"]
        0.95
        """
        full = self.estimates(level=level)
        d = self.model._area_data
        se = np.sqrt(full["mse"].to_numpy())
        estimate = full["estimate"].to_numpy()
        with np.errstate(divide="ignore", invalid="ignore"):
            cv = np.where(estimate != 0, se / np.abs(estimate), np.nan)
        table = pd.DataFrame({d.area_col: full[d.area_col].to_numpy()})
        table["estimate"] = estimate
        table["se"] = se
        table["ci_lower"] = full["ci_lower"].to_numpy()
        table["ci_upper"] = full["ci_upper"].to_numpy()
        table["cv"] = cv
        table["n"] = pd.array(d.n if d.n is not None else [pd.NA] * len(table), dtype="Int64")
        table["basis"] = full["basis"].to_numpy()
        table.attrs.update(full.attrs)
        return table

    def mse_components(self) -> pd.DataFrame:
        """The terms of the MSE estimate for the areas with a direct estimate.

        Returns
        -------
        DataFrame
            ``<area>, g1, g2, g3, bias, mse`` with ``mse = g1 + g2 + 2 g3 + bias``;
            ``bias`` is the ML correction :math:`-b_{ML}(\\hat\\sigma^2)\\,
            \\partial g_1/\\partial\\sigma^2` (0 under REML). Before benchmarking.

        Examples
        --------
        >>> import unmetneed as um
        >>> data = um.datasets.load_example_areas()
        >>> parts = um.FayHerriot(data, "y", "v", "y ~ x", "area", method="ML").fit().mse_components()
        >>> bool((parts["bias"] >= 0).all())
        True
        """
        d = self.model._area_data
        c = self.components
        return pd.DataFrame(
            {
                d.area_col: d.areas.to_numpy()[d.observed],
                "g1": np.array(c.g1),
                "g2": np.array(c.g2),
                "g3": np.array(c.g3),
                "bias": np.array(c.bias),
                "mse": np.array(c.mse),
            }
        )

    def predict(self, new_areas: pd.DataFrame, *, level: float | None = None) -> pd.DataFrame:
        r"""Synthetic estimates :math:`x^\top\hat\beta` for areas from their covariates.

        For areas outside the fit (or with no direct estimate): no random
        effect is predicted, so the MSE is :math:`\hat\sigma^2 +
        x^\top\widehat{V}(\hat\beta)x`.

        Parameters
        ----------
        new_areas : DataFrame
            The covariates the formula uses, one row per area; the model's area
            column is carried to the result if present.
        level : float, optional
            Interval level; default the model's ``level``.

        Returns
        -------
        DataFrame
            ``[<area>], estimate, se, mse, ci_lower, ci_upper`` (normal
            intervals), with the rows and index of ``new_areas``. Not
            benchmarked.

        Raises
        ------
        MissingColumnError
            A covariate column is missing.
        ModelError
            Missing covariate values (the areas are listed), or a category
            not seen in the fit.

        Examples
        --------
        >>> import pandas as pd
        >>> import unmetneed as um
        >>> data = um.datasets.load_example_areas()
        >>> fit = um.FayHerriot(data, "y", "v", "y ~ x", "area").fit()
        >>> new = pd.DataFrame({"area": ["G", "H"], "x": [1.8, 2.6]})
        >>> list(fit.predict(new).columns)
        ['area', 'estimate', 'se', 'mse', 'ci_lower', 'ci_upper']
        """
        if not isinstance(new_areas, pd.DataFrame):
            raise ModelError("new_areas must be a pandas DataFrame of covariates, one row per area")
        level = self._level(level)
        d = self.model._area_data
        require_columns(new_areas, d.variables, "covariate")
        labels = new_areas[d.area_col].to_numpy() if d.area_col in new_areas.columns else new_areas.index
        X_new = covariate_matrix(d.spec, new_areas.reset_index(drop=True), d.variables, labels)
        estimate = X_new @ self.beta
        mse = synthetic_mse(X_new, self.sigma2, self.vcov_beta)
        se = np.sqrt(mse)
        half = float(stats.norm.ppf(0.5 + level / 2.0)) * se
        table = pd.DataFrame(index=new_areas.index)
        if d.area_col in new_areas.columns:
            table[d.area_col] = new_areas[d.area_col].to_numpy()
        table["estimate"] = estimate
        table["se"] = se
        table["mse"] = mse
        table["ci_lower"] = estimate - half
        table["ci_upper"] = estimate + half
        table.attrs.update(self._attrs(level))
        table.attrs["basis"] = "synthetic: x'beta; mse = sigma2 + x'V(beta)x"
        return table

    # -- display ---------------------------------------------------------------------
    def _attrs(self, level: float) -> dict[str, Any]:
        attrs: dict[str, Any] = dict(self.info)
        attrs.update({"level": level, "interval": "normal", "sigma2": self.sigma2})
        if self.benchmarking is not None:
            b = self.benchmarking
            attrs["benchmark"] = {"total": b.total, "method": b.method, "before": b.before}
        return attrs

    def _title(self) -> str:
        return f"Fay-Herriot model ({self.model.method}): {self.model.formula}"

    def _header_lines(self) -> list[str]:
        info = self.info
        likelihood = "restricted log-likelihood" if self.model.method == "REML" else "log-likelihood"
        lines = [
            (
                f"areas: {info['areas_with_direct']} with a direct estimate, "
                f"{info['areas_synthetic']} predicted synthetically"
            ),
            (
                f"sigma2 = {self.sigma2:.6g} (se {self.sigma2_se:.4g}); {likelihood} {self.loglik:.6g}; "
                f"{self.iterations} Fisher-scoring iteration(s)"
            ),
        ]
        if self.sigma2 == 0.0:
            lines.append("sigma2 is at the boundary 0: the EBLUPs are the synthetic estimates x'beta")
        if self.benchmarking is not None:
            b = self.benchmarking
            lines.append(
                f"benchmarked ({b.method}) to total {b.total:.6g} (weighted sum before: {b.before:.6g}); "
                "mse includes the squared adjustment"
            )
        return lines

    def _footer(self) -> str:
        synthetic = "; synthetic areas: sigma2 + x'V(beta)x" if self.info["areas_synthetic"] else ""
        return (
            f"mse: {self.info['mse']}{synthetic}; {self.model.level:.0%} normal intervals "
            "estimate -/+ z sqrt(mse); shrinkage = weight on the direct estimate"
        )

    def summary(self) -> str:
        """A plain-text report: the fit, the fixed effects and the area table.

        Examples
        --------
        >>> import unmetneed as um
        >>> data = um.datasets.load_example_areas()
        >>> print(um.FayHerriot(data, "y", "v", "y ~ x", "area").fit().summary())  # doctest: +ELLIPSIS
        Fay-Herriot model (REML): y ~ x
        ...
        """
        with pd.option_context("display.max_rows", 60, "display.width", 120):
            fixed = self.fixed_effects.to_string(float_format=_fmt)
            areas = self.estimates().to_string(index=False, float_format=_fmt)
        return "\n".join(
            [self._title(), *self._header_lines(), "", "fixed effects:", fixed, "", areas, self._footer()]
        )

    def __repr__(self) -> str:
        fixed = self.fixed_effects.to_string(float_format=_fmt)
        return "\n".join([f"<FayHerriotFit: {self._title()}>", *self._header_lines(), fixed])

    def _repr_html_(self) -> str:
        header = "<br>".join(html.escape(line) for line in self._header_lines())
        fixed = self.fixed_effects.to_html(float_format=_fmt, border=0)
        areas = self.estimates().to_html(index=False, float_format=_fmt, border=0, max_rows=60)
        return (
            f"<div><strong>{html.escape(self._title())}</strong><p>{header}</p>{fixed}{areas}"
            f"<small>{html.escape(self._footer())}</small></div>"
        )


def _fmt(value: float) -> str:
    return f"{value:.6g}"
