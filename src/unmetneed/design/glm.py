r"""Design-based generalised linear models, as R's ``svyglm``.

The coefficients solve the weighted score equations
:math:`\sum_i w_i x_i (y_i - \mu_i)\, \mu'(\eta_i)/V(\mu_i) = 0` (pseudo
maximum likelihood). The fit iterates exactly as R's ``glm.fit``: weights
rescaled to mean 1 over the design's rows, the family's starting values
(gaussian :math:`\mu = y`; binomial :math:`\mu = (w y + 1/2)/(w + 1)`; poisson
:math:`\mu = y + 0.1`), Fisher scoring by weighted least squares (Cholesky with one refinement step), and
R's stopping rule :math:`|D - D_{old}|/(|D| + 0.1) < 10^{-8}` (at most 25
iterations), so the coefficients equal R's to rounding rather than to the
convergence tolerance.

Variance. Taylor designs: the sandwich of R's ``svy.varcoef``: influence
values :math:`z_i = \{w^{(W)}_i r^{(W)}_i x_i^\top\} A^{-1}`, with
:math:`w^{(W)}` the working weights of the last iteration, :math:`r^{(W)}` the
working residuals and :math:`A = X^\top W^{(W)} X`, summed by PSU and combined
by :func:`~unmetneed.design.variance.stratified_covariance` (calibrated
designs use the calibration residuals). Replicate designs: every replicate is
refitted from the full-sample coefficients with its weights normalised to sum
1 and the same stopping rule (R's ``svyglm.svyrep.design``), and the
covariance is the replicate covariance of the coefficients.

Degrees of freedom (``df_resid``), as R: the design's degrees of freedom plus
one minus the number of coefficients; on Taylor designs counted on the rows
the model uses (R subsets the design to them), on replicate designs on the
whole (sub)design. The quasi families give the same coefficients and
sandwich variances as binomial and poisson; only the name differs, as in R.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy import stats

from unmetneed._blas import single_threaded_blas
from unmetneed._validate import check_choice, check_level
from unmetneed.design.options import PredictionScale
from unmetneed.design.replicate import replicate_variance
from unmetneed.design.variance import MatrixInfluence, psu_totals, stratified_covariance
from unmetneed.errors import DesignError, MissingColumnError

if TYPE_CHECKING:
    from unmetneed.design.survey_design import SurveyDesign

__all__ = ["GLMByResult", "GLMResult", "fit_glm", "fit_glm_by"]

EPSILON = 1e-8
MAX_ITER = 25
_THRESH = 30.0
_EPS = float(np.finfo(float).eps)


# -- families (R's C code for the logit link) --------------------------------------------
class _Link:
    def __init__(self, kind: str) -> None:
        self.kind = kind

    def link(self, mu: np.ndarray) -> np.ndarray:
        if self.kind == "identity":
            return mu
        if self.kind == "log":
            return np.log(mu)
        return np.log(mu / (1.0 - mu))

    def inverse(self, eta: np.ndarray) -> np.ndarray:
        if self.kind == "identity":
            return eta
        if self.kind == "log":
            return np.maximum(np.exp(eta), _EPS)
        e = np.exp(np.clip(eta, -_THRESH, _THRESH))
        tmp = np.where(eta < -_THRESH, _EPS, np.where(eta > _THRESH, 1.0 / _EPS, e))
        return tmp / (1.0 + tmp)

    def mu_eta(self, eta: np.ndarray) -> np.ndarray:
        if self.kind == "identity":
            return np.ones_like(eta)
        if self.kind == "log":
            return np.maximum(np.exp(eta), _EPS)
        e = np.exp(np.clip(eta, -_THRESH, _THRESH))
        value = e / ((1.0 + e) * (1.0 + e))
        return np.where((eta > _THRESH) | (eta < -_THRESH), _EPS, value)


def _variance(family: str, mu: np.ndarray) -> np.ndarray:
    if family == "gaussian":
        return np.ones_like(mu)
    if family in ("binomial", "quasibinomial"):
        return mu * (1.0 - mu)
    return mu


def _dev_resids(family: str, y: np.ndarray, mu: np.ndarray, wt: np.ndarray) -> np.ndarray:
    if family == "gaussian":
        return wt * (y - mu) ** 2
    with np.errstate(divide="ignore", invalid="ignore"):
        if family in ("binomial", "quasibinomial"):
            a = np.where(y != 0, y * np.log(y / mu), 0.0)
            b = np.where(1 - y != 0, (1 - y) * np.log((1 - y) / (1 - mu)), 0.0)
            return 2.0 * wt * (a + b)
        r = np.where(y > 0, y * np.log(y / mu) - (y - mu), mu)
        return 2.0 * wt * r


def _link_of(family: str) -> _Link:
    return _Link({"gaussian": "identity", "poisson": "log", "quasipoisson": "log"}.get(family, "logit"))


def _mustart(family: str, y: np.ndarray, wt: np.ndarray) -> np.ndarray:
    if family == "gaussian":
        return y.copy()
    if family in ("binomial", "quasibinomial"):
        if ((y < 0) | (y > 1)).any():
            raise DesignError(
                f"family={family!r} needs a response between 0 and 1 (a proportion or 0/1); "
                f"got values from {y.min():g} to {y.max():g}"
            )
        yy = np.where(wt == 0, 0.0, y)
        return (wt * yy + 0.5) / (wt + 1.0)
    if (y < 0).any():
        raise DesignError(f"family={family!r} needs a non-negative response (counts)")
    return y + 0.1


@dataclass
class _Fit:
    coef: np.ndarray
    eta: np.ndarray | None  # None: not computed (gaussian first fit; see _irls)
    mu: np.ndarray | None
    working_weights: np.ndarray  # w^2 of the last iteration (R's glm$weights)
    gram: np.ndarray  # X' W X of the last iteration
    iterations: int
    converged: bool
    chol: Any = None  # scipy cho_factor of ``gram``


def _irls(
    xt: np.ndarray,
    y: np.ndarray,
    wt: np.ndarray,
    family: str,
    start: np.ndarray | None = None,
) -> _Fit:
    """R's ``glm.fit`` (no offset), step for step; ``xt`` is the transposed model matrix."""
    link = _link_of(family)
    identity = link.kind == "identity"
    if family == "gaussian" and start is None:
        # R starts at mu = y (eta = y), so its first iteration is one weighted least squares
        # of y; its second repeats it (the identity link's working weights do not depend on
        # mu) and stops: the coefficients are these, to rounding. The linear predictor (a
        # pass over X) is left to the caller, which fuses it with the pass it makes anyway
        # (the sandwich's score totals); R's deviance test can only end the first iteration
        # on an exact fit, which changes the count of iterations, not the numbers.
        good = wt > 0
        w = np.sqrt(wt)
        z = y
        if not good.all():
            w = np.where(good, w, 0.0)
            z = np.where(good, y, 0.0)
        coef, gram, chol, _ = _weighted_least_squares(xt, z, w, need_eta=False)
        return _Fit(coef, None, None, w * w, gram, 2, True, chol)
    eta = link.link(_mustart(family, y, wt)) if start is None else start @ xt
    mu = link.inverse(eta)
    devold = float(np.sum(_dev_resids(family, y, mu, wt)))
    coef = np.full(xt.shape[0], np.nan) if start is None else start.copy()
    converged = False
    w2 = np.zeros(y.size)
    gram = np.eye(xt.shape[0])
    chol = None
    iteration = 0
    for iteration in range(1, MAX_ITER + 1):
        if identity:
            # mu_eta = 1 and V(mu) = 1: the same numbers as the general branch
            # (eta + (y - mu) / 1, sqrt(wt * 1 / 1)) without six passes over n.
            good = wt > 0
            z = eta + (y - mu)
            w = np.sqrt(wt)
            if not good.all():
                w = np.where(good, w, 0.0)
                z = np.where(good, z, 0.0)
        else:
            mu_eta = link.mu_eta(eta)
            good = (wt > 0) & (mu_eta != 0)
            with np.errstate(divide="ignore", invalid="ignore"):
                z = eta + (y - mu) / mu_eta
                w = np.sqrt(wt * mu_eta**2 / _variance(family, mu))
            w = np.where(good, w, 0.0)
            z = np.where(good, z, 0.0)
        new, gram, chol, predictor = _weighted_least_squares(xt, z, w)
        eta = cast("np.ndarray", predictor)  # asked for (need_eta)
        mu = link.inverse(eta)
        dev = float(np.sum(_dev_resids(family, y, mu, wt)))
        w2, coef = w * w, new
        if abs(dev - devold) / (abs(dev) + 0.1) < EPSILON:
            converged = True
            break
        devold = dev
    return _Fit(coef, eta, mu, w2, gram, iteration, converged, chol)


_BLOCK = 16384  # columns of X' per block of X'WX: the weighted block stays in cache
_REFINE_ABOVE = 1e3  # scaled condition number of X'WX above which the solution is refined


def _weighted_least_squares(
    xt: np.ndarray, z: np.ndarray, w: np.ndarray, *, need_eta: bool = True
) -> tuple[np.ndarray, np.ndarray, Any, np.ndarray | None]:
    """Solve min ||w (z - x b)||: Cholesky of X'WX plus one refinement step.

    The corrected semi-normal equations (Bjorck 1996, sec. 2.9) are as accurate
    as R's QR for the well-conditioned model matrices of surveys, and need two
    passes over X instead of a Householder QR of the n x p matrix (about 10
    times faster at a million rows); the second pass (the refinement) is made
    only when the scaled condition number of X'WX exceeds ``_REFINE_ABOVE``. ``xt`` is X transposed (p x n, C order).
    Each pass runs by blocks of ``_BLOCK`` rows, so the block stays in cache
    and no n x p temporary is made: the first accumulates X'WX (BLAS on the
    weighted block augmented by the weighted response, so X'Wz comes out of
    the same pass); the second computes the residual of the semi-normal
    equations X'W(z - X b) with X read once. The passes over X are what the
    time goes to (X is larger than the caches). Returns the coefficients,
    X'WX, its Cholesky factor and X b (None unless ``need_eta``).
    """
    from scipy.linalg import LinAlgError, cho_factor, cho_solve

    p, n = xt.shape
    cross = np.zeros((p + 1, p + 1))
    buffer = np.empty((p + 1, min(_BLOCK, n)))
    with single_threaded_blas():
        for start in range(0, n, _BLOCK):
            stop = min(start + _BLOCK, n)
            block = buffer[:, : stop - start]
            wb = w[start:stop]
            np.multiply(xt[:, start:stop], wb, out=block[:p])
            np.multiply(z[start:stop], wb, out=block[p])
            cross += block @ block.T
        gram = cross[:p, :p].copy()
        try:
            factor = cho_factor(gram)
        except LinAlgError as error:
            raise DesignError(
                "the model matrix is rank deficient (aliased terms or an empty category); drop a term"
            ) from error
        beta = cho_solve(factor, cross[:p, p])
        # Refinement: X'W(z - X b) = X'(w^2 (z - X b)), block by block (X read once).
        # Only when it can matter: the normal equations lose about cond(X'WX) * eps
        # (with the columns scaled to unit norm, van der Sluis), so below
        # _REFINE_ABOVE the step would move the coefficients by less than ~1e-12
        # relative, far inside the agreement with R's QR the tests ask for (1e-10).
        scale = 1.0 / np.sqrt(np.diag(gram))
        if np.linalg.cond(gram * scale[:, None] * scale[None, :]) <= _REFINE_ABOVE:
            eta = beta @ xt if need_eta else None
            return beta, gram, factor, eta
        correction = np.zeros(p)
        residual = buffer[0]
        for start in range(0, n, _BLOCK):
            stop = min(start + _BLOCK, n)
            xb = xt[:, start:stop]
            r = residual[: stop - start]
            np.dot(beta, xb, out=r)
            np.subtract(z[start:stop], r, out=r)
            r *= w[start:stop]
            r *= w[start:stop]
            correction += xb @ r
        beta = beta + cho_solve(factor, correction)
        eta = beta @ xt if need_eta else None
    return beta, gram, factor, eta


# -- the result -------------------------------------------------------------------------
class GLMResult:
    """A fitted design-based GLM (R ``svyglm``): coefficients, sandwich SEs, t tests.

    Attributes
    ----------
    params, bse : Series
        Coefficients and standard errors, indexed by term (formulaic's names).
    df_resid : float
        Residual degrees of freedom for the t tests and intervals, as R.
    family, formula : str
    n : int
        Rows used (non-missing, in the design or subset, non-zero weight).

    Examples
    --------
    >>> import unmetneed as um
    >>> design = um.datasets.load_example_design()
    >>> fit = design.glm("need ~ sex", family="quasibinomial")
    >>> list(fit.to_frame().columns)
    ['term', 'estimate', 'se', 'statistic', 'p_value', 'ci_lower', 'ci_upper']
    >>> fit.vcov().shape
    (2, 2)
    >>> import pandas as pd
    >>> new = pd.DataFrame({"sex": pd.Categorical(["Male"], categories=["Female", "Male"])})
    >>> list(fit.predict(new, type="response").columns)
    ['estimate', 'se']
    """

    def __init__(
        self,
        terms: list[str],
        coef: np.ndarray,
        cov: np.ndarray,
        *,
        df_resid: float,
        family: str,
        formula: str,
        n: int,
        spec: Any,
        info: Mapping[str, Any],
        level: float = 0.95,
    ) -> None:
        self._terms = list(terms)
        self._coef = coef
        self._cov = cov
        self.df_resid = float(df_resid)
        self.family = family
        self.formula = formula
        self.n = int(n)
        self.level = level
        self._spec = spec
        self.info = dict(info)

    @property
    def params(self) -> pd.Series:
        return pd.Series(self._coef, index=self._terms, name="estimate")

    @property
    def bse(self) -> pd.Series:
        return pd.Series(np.sqrt(np.diag(self._cov)), index=self._terms, name="se")

    def vcov(self) -> pd.DataFrame:
        """Covariance matrix of the coefficients (R ``vcov(svyglm)``)."""
        return pd.DataFrame(self._cov, index=self._terms, columns=self._terms)

    def to_frame(self, level: float | None = None) -> pd.DataFrame:
        """term, estimate, se, statistic (t), p_value, ci_lower, ci_upper.

        p-values and intervals use t on :attr:`df_resid` degrees of freedom
        (R ``summary.svyglm`` and ``confint.svyglm``).
        """
        level = check_level(self.level if level is None else level)
        se = np.sqrt(np.diag(self._cov))
        df = np.full(se.size, self.df_resid)
        frame = pd.DataFrame({"term": self._terms, "estimate": self._coef, "se": se})
        for name, values in _t_table(self._coef, se, df, level).items():
            frame[name] = values
        frame.attrs.update(self.info)
        frame.attrs.update({"level": level, "df": self.df_resid, "distribution": "t"})
        return frame

    def predict(
        self,
        newdata: pd.DataFrame,
        *,
        se: bool = True,
        type: PredictionScale = "link",
    ) -> pd.DataFrame:
        """Predictions for new rows, as R's ``predict.svyglm``.

        Parameters
        ----------
        newdata : DataFrame
            The formula's right-hand-side columns.
        se : bool, default True
            Add standard errors: :math:`\\sqrt{x^\\top V x}` on the link scale,
            times :math:`|\\mu'(\\eta)|` on the response scale.
        type : {"link", "response"}

        Returns
        -------
        DataFrame
            ``estimate`` (and ``se``), on ``newdata``'s index.

        Raises
        ------
        DesignError
            ``newdata`` lacks a column of the formula or has a new category.

        Examples
        --------
        >>> import pandas as pd, unmetneed as um
        >>> design = um.datasets.load_example_design()
        >>> fit = design.glm("need ~ sex", family="quasibinomial")
        >>> new = pd.DataFrame({"sex": pd.Categorical(["Female", "Male"])})
        >>> p = fit.predict(new, type="response")
        >>> bool(((p["estimate"] > 0) & (p["estimate"] < 1)).all())
        True
        """
        check_choice(type, "type", PredictionScale)
        try:
            matrix = self._spec.get_model_matrix(newdata)
        except Exception as error:  # formulaic raises several types
            raise DesignError(f"newdata does not fit the formula {self.formula!r}: {error}") from error
        x = np.asarray(matrix, dtype=np.float64)
        eta = x @ self._coef
        link = _link_of(self.family)
        out = pd.DataFrame(index=newdata.index)
        out["estimate"] = eta if type == "link" else link.inverse(eta)
        if se:
            var = np.einsum("ij,jk,ik->i", x, self._cov, x)
            s = np.sqrt(var)
            out["se"] = s if type == "link" else np.abs(link.mu_eta(eta)) * s
        return out

    def summary(self) -> str:
        with pd.option_context("display.width", 120):
            body = self.to_frame().to_string(index=False, float_format=lambda v: f"{v:.6g}")
        return (
            f"survey GLM ({self.family}): {self.formula}\n{body}\n"
            f"variance: {self.info.get('variance', '?')}; t on {self.df_resid:g} residual df; "
            f"{self.n} rows"
        )

    def __repr__(self) -> str:
        return f"<GLMResult>\n{self.summary()}"

    def _repr_html_(self) -> str:
        table = self.to_frame().to_html(index=False, float_format=lambda v: f"{v:.6g}", border=0)
        title = html.escape(f"survey GLM ({self.family}): {self.formula}")
        foot = html.escape(f"t on {self.df_resid:g} residual df; {self.n} rows")
        return f"<div><strong>{title}</strong>{table}<small>{foot}</small></div>"


def _t_table(coef: np.ndarray, se: np.ndarray, df: np.ndarray, level: float) -> dict[str, np.ndarray]:
    """statistic, p_value, ci_lower, ci_upper: t on ``df`` (one per coefficient), as R."""
    with np.errstate(divide="ignore", invalid="ignore"):
        t = coef / se
    positive = df > 0
    safe = np.where(positive, df, 1.0)
    p = np.where(positive, 2 * stats.t.sf(np.abs(t), safe), np.nan)
    # R's confint.svyglm: qnorm of pnorm(qt(...)), i.e. the t quantile to rounding
    a = stats.norm.cdf(stats.t.ppf((1.0 - level) / 2.0, safe))
    low = np.where(positive, stats.norm.ppf(a), np.nan)
    high = np.where(positive, stats.norm.ppf(1.0 - a), np.nan)
    return {"statistic": t, "p_value": p, "ci_lower": coef + se * low, "ci_upper": coef + se * high}


class GLMByResult:
    """Design-based GLMs fitted by domain (R ``svyby(formula, ~g, design, svyglm)``).

    One fit per domain of ``by``, each as R fits ``design[domain, ]``: domain
    estimation, with the whole design's strata and PSUs kept for the variance.
    :meth:`vcov` is the covariance of every domain's coefficients, including
    the covariances between domains (R's ``covmat = TRUE``).

    Attributes
    ----------
    params, bse : Series
        Coefficients and standard errors, indexed by the ``by`` value(s) and
        the term.
    df_resid : Series
        Residual degrees of freedom of each domain's fit (R's
        ``df.residual`` of ``svyglm`` on the domain), indexed by domain.
    n : Series
        Rows each domain's fit uses (complete, non-zero weight).
    family, formula : str
    by : list of str

    Examples
    --------
    >>> import unmetneed as um
    >>> design = um.datasets.load_example_design()
    >>> fits = design.glm("need ~ age_band", family="quasibinomial", by="sex")
    >>> list(fits.to_frame().columns)[:3]
    ['sex', 'term', 'estimate']
    >>> fits.vcov().shape == (len(fits.params), len(fits.params))
    True
    >>> alone = design.subset("sex == 'Female'").glm("need ~ age_band", family="quasibinomial")
    >>> import numpy as np
    >>> bool(np.allclose(fits["Female"].params, alone.params, rtol=1e-12, atol=0))
    True
    """

    def __init__(
        self,
        levels: pd.DataFrame,
        terms: list[str],
        coef: np.ndarray,
        cov: np.ndarray,
        *,
        df_resid: np.ndarray,
        family: str,
        formula: str,
        n: np.ndarray,
        spec: Any,
        info: Mapping[str, Any],
        level: float = 0.95,
    ) -> None:
        self._levels = levels.reset_index(drop=True).copy()
        self._terms = list(terms)
        self._coef = np.asarray(coef, dtype=np.float64)  # domains x terms
        self._cov = cov
        self._df = np.asarray(df_resid, dtype=np.float64)
        self._n = np.asarray(n, dtype=np.int64)
        self.family = family
        self.formula = formula
        self.by = list(levels.columns)
        self.level = level
        self._spec = spec
        self.info = dict(info)

    def _domain_index(self) -> pd.Index:
        if self._levels.shape[1] == 1:
            return pd.Index(self._levels.iloc[:, 0], name=self.by[0])
        return pd.MultiIndex.from_frame(self._levels)

    def _index(self) -> pd.MultiIndex:
        """(by..., term) of every coefficient, domain by domain."""
        k, p = self._coef.shape
        keys = self._levels.loc[np.repeat(np.arange(k), p)].reset_index(drop=True)
        keys["term"] = self._terms * k
        return pd.MultiIndex.from_frame(keys)

    @property
    def params(self) -> pd.Series:
        return pd.Series(self._coef.ravel(), index=self._index(), name="estimate")

    @property
    def bse(self) -> pd.Series:
        return pd.Series(np.sqrt(np.diag(self._cov)), index=self._index(), name="se")

    @property
    def df_resid(self) -> pd.Series:
        return pd.Series(self._df, index=self._domain_index(), name="df_resid")

    @property
    def n(self) -> pd.Series:
        return pd.Series(self._n, index=self._domain_index(), name="n")

    def vcov(self) -> pd.DataFrame:
        """Covariance of all the coefficients, domain by domain, between domains too.

        R's ``vcov(svyby(..., svyglm, covmat = TRUE))`` in the order of
        :meth:`to_frame` (R lists the domains fastest). Without
        ``covmat = TRUE`` R's Taylor result is block diagonal; the blocks are
        the same.
        """
        index = self._index()
        return pd.DataFrame(self._cov.copy(), index=index, columns=index)

    def __getitem__(self, domain: Any) -> GLMResult:
        """The fit of one domain (a ``by`` value, a tuple for several), e.g. to ``predict``."""
        labels = list(self._domain_index())
        if domain not in labels:
            shown = ", ".join(repr(label) for label in labels[:10])
            raise KeyError(f"no domain {domain!r}; the domains are {shown}")
        k = labels.index(domain)
        p = len(self._terms)
        block = slice(k * p, (k + 1) * p)
        return GLMResult(
            self._terms,
            self._coef[k].copy(),
            self._cov[block, block].copy(),
            df_resid=float(self._df[k]),
            family=self.family,
            formula=self.formula,
            n=int(self._n[k]),
            spec=self._spec,
            info={**self.info, "domain": domain},
            level=self.level,
        )

    def to_frame(self, level: float | None = None) -> pd.DataFrame:
        """[by...], term, estimate, se, statistic, p_value, ci_lower, ci_upper, df.

        t tests and intervals on each domain's :attr:`df_resid` (column ``df``).
        """
        level = check_level(self.level if level is None else level)
        p = len(self._terms)
        coef = self._coef.ravel()
        se = np.sqrt(np.diag(self._cov))
        df = np.repeat(self._df, p)
        frame = self._index().to_frame(index=False)
        frame["estimate"] = coef
        frame["se"] = se
        for name, values in _t_table(coef, se, df, level).items():
            frame[name] = values
        frame["df"] = df
        frame.attrs.update(self.info)
        frame.attrs.update({"level": level, "distribution": "t"})
        return frame

    def _title(self) -> str:
        return f"survey GLM ({self.family}): {self.formula} by {', '.join(self.by)}"

    def _footer(self) -> str:
        return (
            f"variance: {self.info.get('variance', '?')} (covariances between domains kept); "
            f"t on each domain's residual df; {len(self._n)} domains, {int(self._n.sum())} rows"
        )

    def summary(self) -> str:
        with pd.option_context("display.width", 120, "display.max_rows", 200):
            body = self.to_frame().to_string(index=False, float_format=lambda v: f"{v:.6g}")
        return f"{self._title()}\n{body}\n{self._footer()}"

    def __repr__(self) -> str:
        return f"<GLMByResult>\n{self.summary()}"

    def _repr_html_(self) -> str:
        table = self.to_frame().to_html(index=False, float_format=lambda v: f"{v:.6g}", border=0)
        return (
            f"<div><strong>{html.escape(self._title())}</strong>{table}"
            f"<small>{html.escape(self._footer())}</small></div>"
        )


# -- fitting ---------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class _ModelData:
    """The model matrix of one formula on one design, rows in PSU order.

    ``rows`` are the data rows the formula leaves complete, sorted (stably) by
    PSU so that the score totals of the sandwich are sums over contiguous
    segments; ``y``, ``weights`` (the design's) and ``xt`` (the model matrix
    transposed, p x n, C order: each term's column contiguous) follow
    ``rows``. The order changes no estimate (sums are order-free up to
    rounding).
    """

    rows: np.ndarray
    y: np.ndarray
    xt: np.ndarray
    weights: np.ndarray
    terms: list[str]
    spec: Any
    psu: np.ndarray  # PSU code of each of ``rows`` (non-decreasing)


def _matrices(design: SurveyDesign, formula: str) -> _ModelData:
    from formulaic import Formula, model_matrix

    if not isinstance(formula, str) or "~" not in formula:
        raise DesignError(f"formula must be a string 'y ~ x + ...'; got {formula!r}")
    if not formula.split("~", 1)[0].strip():
        raise DesignError(f"formula {formula!r} has no response; write it as 'y ~ x + ...'")
    try:
        required = Formula(formula).required_variables
    except Exception as error:
        raise DesignError(f"formula {formula!r} could not be parsed: {error}") from error
    data = design._data
    import difflib

    for name in sorted(required):
        if name not in data.columns and name not in ("np", "C", "I", "center", "scale", "log"):
            close = difflib.get_close_matches(name, [str(c) for c in data.columns], n=3)
            hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            raise MissingColumnError(
                f"formula {formula!r} names {name!r}, which is not a column of the data{hint}"
            )
    columns = [name for name in required if name in data.columns]
    # formulaic's row dropping is slow (about 8x the matrix itself at 1e6 rows):
    # ask for it only when a variable of the formula has missing values.
    has_missing = any(bool(data[name].isna().any()) for name in columns)
    try:
        matrices = model_matrix(formula, data, na_action="drop" if has_missing else "ignore")
    except Exception as error:
        raise DesignError(f"formula {formula!r} could not be evaluated: {error}") from error
    lhs, rhs = matrices.lhs, matrices.rhs
    if lhs.shape[1] != 1:
        raise DesignError(
            f"formula {formula!r} must have one numeric response; its left side gives "
            f"{lhs.shape[1]} columns (is the response categorical?)"
        )
    psu = design.structure.psu
    if has_missing:
        positions = data.index.get_indexer(rhs.index)
        psu = psu[positions]
    # PSU order: a stable counting sort (radix on a small integer type)
    n_psus = int(design.structure.n_psus)
    small = np.int16 if n_psus < 2**15 else np.int32 if n_psus < 2**31 else np.int64
    order = np.argsort(psu.astype(small, copy=False), kind="stable")
    rows = positions[order] if has_missing else order
    y = np.asarray(lhs.iloc[:, 0], dtype=np.float64)[order]
    xt = np.empty((rhs.shape[1], order.size))
    for j in range(rhs.shape[1]):
        # mode='clip': with out= and the default 'raise', numpy buffers the whole take
        np.take(np.asarray(rhs.iloc[:, j], dtype=np.float64), order, out=xt[j], mode="clip")
    return _ModelData(rows, y, xt, design._weights[rows], list(rhs.columns), rhs.model_spec, psu[order])


def _score_totals(
    xt: np.ndarray,
    factor: np.ndarray,
    psu: np.ndarray,
    n_psus: int,
    residual_of: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """Sum of ``x * factor`` over each PSU, rows sorted by ``psu``: (p x n_psus).

    Segment sums (``np.add.reduceat``) over groups of whole PSUs of about
    ``_BLOCK`` rows, so the weighted copy of X stays small. With
    ``residual_of = (y, b)`` the summand is ``x * factor * (y - x b)``, the
    residual made from the group's block of X while it is in cache.
    """
    counts = np.bincount(psu, minlength=n_psus)
    bounds = np.zeros(n_psus + 1, dtype=np.int64)
    np.cumsum(counts, out=bounds[1:])
    present = np.flatnonzero(counts)
    starts = bounds[present]
    out = np.zeros((xt.shape[0], n_psus))
    k = 0
    while k < present.size:
        first = starts[k]
        kk = max(k + 1, int(np.searchsorted(starts, first + _BLOCK, side="left")))
        last = bounds[present[kk - 1] + 1]
        block = xt[:, first:last]
        if residual_of is None:
            f = factor[first:last]
        else:
            y, coef = residual_of
            f = coef @ block
            np.subtract(y[first:last], f, out=f)
            f *= factor[first:last]
        segment = block * f
        out[:, present[k:kk]] = np.add.reduceat(segment, starts[k:kk] - first, axis=1)
        k = kk
    return out


@dataclass
class _DomainFit:
    """One fit on a set of model rows (the whole (sub)design, or one domain of it)."""

    fit: _Fit
    rows: np.ndarray  # data rows used
    n_used: int  # of them with a non-zero weight
    totals: np.ndarray | None  # Taylor, uncalibrated: PSU totals of the influence values (p x PSUs)
    influence: np.ndarray | None  # Taylor, calibrated: influence values on ``rows`` (rows x p)
    betas: np.ndarray | None  # replicate designs: replicate coefficients (R x p)


def _fit_rows(
    design: SurveyDesign,
    formula: str,
    family: str,
    parts: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    n_design: int,
    w_total: float,
    where: str = "",
) -> _DomainFit:
    """Fit on the model rows ``parts`` = (rows, y, xt, design weights, psu), PSU-sorted.

    ``n_design`` and ``w_total`` are the rows and the weight total of the
    (domain) design the fit belongs to: R rescales the weights to mean 1 over
    them. ``where`` names the domain in messages.
    """
    rows, y, xt, w_rows, psu = parts
    if rows.size == 0 or not np.any(w_rows):
        raise DesignError(f"formula {formula!r} leaves no complete rows with a non-zero weight{where}")
    wt = w_rows * (n_design / w_total)
    try:
        fit = _irls(xt, y, wt, family)
    except DesignError as error:
        if not where:
            raise
        raise DesignError(f"{error}{where}") from error
    if not fit.converged:
        import warnings

        from unmetneed.errors import ConvergenceWarning

        warnings.warn(
            f"the fit of {formula!r}{where} did not converge in {MAX_ITER} iterations (R's glm.fit "
            "rule); the coefficients are the last iterate",
            ConvergenceWarning,
            stacklevel=4,
        )
    if not np.all(np.isfinite(fit.coef)):
        raise DesignError(f"the fit of {formula!r}{where} gave non-finite coefficients {fit.coef}")
    p = xt.shape[0]
    n_used = int(np.count_nonzero(w_rows))
    r = design.replicates
    if r is not None:
        betas = np.empty((r.n_replicates, p))
        for k in range(r.n_replicates):
            wk = np.asarray(r.weights[rows, k])
            total = wk.sum()
            betas[k] = _irls(xt, y, wk / total, family, start=fit.coef).coef if total > 0 else np.nan
        return _DomainFit(fit, rows, n_used, None, None, betas)
    from scipy.linalg import cho_solve

    a_inv = cho_solve(fit.chol, np.eye(p))
    if fit.mu is None and design.calibration is None:
        # gaussian: the residuals y - X b are made block by block in the pass
        # that sums the scores by PSU (X is read once, not twice)
        totals = a_inv.T @ _score_totals(xt, fit.working_weights, psu, design.structure.n_psus, (y, fit.coef))
        return _DomainFit(fit, rows, n_used, totals, None, None)
    mu = fit.coef @ xt if fit.mu is None else fit.mu  # identity link: mu = eta
    residual = y - mu
    link = _link_of(family)
    factor = residual if link.kind == "identity" else residual / link.mu_eta(cast("np.ndarray", fit.eta))
    factor *= fit.working_weights
    if design.calibration is None:
        # PSU sums of estfun = x * factor (one pass over x: rows are in PSU order), then A^-1
        totals = a_inv.T @ _score_totals(xt, factor, psu, design.structure.n_psus)
        return _DomainFit(fit, rows, n_used, totals, None, None)
    return _DomainFit(fit, rows, n_used, None, (xt * factor).T @ a_inv, None)


def _covariance(design: SurveyDesign, pieces: list[_DomainFit]) -> np.ndarray:
    """Covariance of all the pieces' coefficients (stacked in order), over the whole design.

    Pieces (domains) share strata and PSUs: their coefficients are correlated,
    through the PSU totals of the influence values (Taylor) or the replicates.
    """
    r = design.replicates
    theta = np.concatenate([piece.fit.coef for piece in pieces])
    if r is not None:
        betas = np.hstack([cast("np.ndarray", piece.betas) for piece in pieces])
        return np.atleast_2d(replicate_variance(theta, betas.T, r.scale, r.rscales, r.mse, covariance=True))
    totals: np.ndarray | sp.csr_matrix
    if design.calibration is None:
        totals = np.vstack([cast("np.ndarray", piece.totals) for piece in pieces])
    else:
        z = np.zeros((design.n, theta.size))
        column = 0
        for piece in pieces:
            values = cast("np.ndarray", piece.influence)
            z[piece.rows, column : column + values.shape[1]] = values
            column += values.shape[1]
        totals = psu_totals(design, MatrixInfluence(z), theta)
    return stratified_covariance(totals, design.structure)


def _model_data(design: SurveyDesign, formula: str) -> _ModelData:
    # The design is immutable: the model matrix of the last formula is kept with it
    # (as coded columns are), so refitting (another family, a predict) skips formulaic.
    key = ("glm-matrices", formula)
    cached = design._cache.get(key)
    if cached is None:
        for old in [k for k in design._cache if isinstance(k, tuple) and k[:1] == ("glm-matrices",)]:
            del design._cache[old]
        cached = design._cache[key] = _matrices(design, formula)
    return cast("_ModelData", cached)


def _info(design: SurveyDesign, formula: str, family: str, pieces: list[_DomainFit]) -> dict[str, Any]:
    return {
        "statistic": "glm",
        "family": family,
        "formula": formula,
        "variance": design.variance_method,
        "iterations": max(piece.fit.iterations for piece in pieces),
        "converged": all(piece.fit.converged for piece in pieces),
    }


def fit_glm(design: SurveyDesign, formula: str, family: str, level: float = 0.95) -> GLMResult:
    """Fit ``formula`` on ``design`` (see the module notes)."""
    from unmetneed.design.variance import domain_degf

    data = _model_data(design, formula)
    rows, y, xt, w_rows, psu = data.rows, data.y, data.xt, data.weights, data.psu
    w_all = design._weights
    # rows the model uses: complete and in the (sub)design (the PSU order is kept)
    if design._subset is None:
        n_design = design.n
        w_inside_total = float(w_all.sum())
    else:
        inside = design._subset
        use = inside[rows]
        if not use.all():
            rows, y, xt, w_rows, psu = rows[use], y[use], xt[:, use], w_rows[use], psu[use]
        n_design = int(inside.sum())
        w_inside_total = float(w_all[inside].sum())
    piece = _fit_rows(design, formula, family, (rows, y, xt, w_rows, psu), n_design, w_inside_total)
    cov = _covariance(design, [piece])
    p = xt.shape[0]
    if design.replicates is not None or rows.size == n_design:
        df_design = float(design.degf)  # every row of the (sub)design is used
    else:
        keep = np.zeros(design.n, dtype=bool)
        keep[rows] = True
        df_design = domain_degf(design, np.zeros(design.n, dtype=np.intp), 1, keep)[0]
    return GLMResult(
        data.terms,
        piece.fit.coef,
        cov,
        df_resid=df_design + 1 - p,
        family=family,
        formula=formula,
        n=piece.n_used,
        spec=data.spec,
        info=_info(design, formula, family, [piece]),
        level=level,
    )


def fit_glm_by(
    design: SurveyDesign, formula: str, family: str, by: list[str], level: float = 0.95
) -> GLMByResult:
    """One fit per domain of ``by`` (R ``svyby(formula, ~by, design, svyglm, covmat = TRUE)``).

    Each domain is fitted as R fits ``design[domain, ]``: its weights rescaled
    to mean 1 over the domain's rows, its own residual degrees of freedom. The
    covariance of all the domains' coefficients is computed over the whole
    design (the domains share strata and PSUs).
    """
    from unmetneed.design.variance import domain_degf

    data = _model_data(design, formula)
    coding = design._domains(by)
    n_domains = len(coding.levels)
    codes = coding.codes
    inside = design._in_design
    w_all = design._weights
    # Domain sizes and weight totals over the (sub)design's rows, as R's design[domain, ]
    n_domain = np.bincount(codes[inside], minlength=n_domains)
    w_domain = np.bincount(codes[inside], weights=w_all[inside], minlength=n_domains)
    # Model rows grouped by domain, PSU order kept within each: one stable sort, then
    # every domain's rows are a contiguous slice (views of one reordered copy).
    use = inside[data.rows]
    model_rows = data.rows[use] if not use.all() else data.rows
    row_codes = codes[model_rows]
    order = np.argsort(row_codes, kind="stable")
    if not use.all():
        order = np.flatnonzero(use)[order]
    rows = data.rows[order]
    y = data.y[order]
    w_rows = data.weights[order]
    psu = data.psu[order]
    xt = np.empty((data.xt.shape[0], order.size))
    for j in range(xt.shape[0]):
        np.take(data.xt[j], order, out=xt[j], mode="clip")
    bounds = np.searchsorted(codes[rows], np.arange(n_domains + 1))
    labels = [_domain_label(coding.levels, k) for k in range(n_domains)]
    pieces = []
    for k in range(n_domains):
        a, b = int(bounds[k]), int(bounds[k + 1])
        part = (rows[a:b], y[a:b], xt[:, a:b], w_rows[a:b], psu[a:b])
        where = f" in the domain {labels[k]}"
        pieces.append(_fit_rows(design, formula, family, part, int(n_domain[k]), float(w_domain[k]), where))
    cov = _covariance(design, pieces)
    p = xt.shape[0]
    if design.replicates is not None:
        # R: degf of design[domain, ] (rank of the domain's replicate weights), all its rows
        df_design = domain_degf(design, codes, n_domains, inside)
    else:
        keep = np.zeros(design.n, dtype=bool)
        keep[rows] = True
        df_design = domain_degf(design, codes, n_domains, keep)
    return GLMByResult(
        coding.levels,
        data.terms,
        np.vstack([piece.fit.coef for piece in pieces]),
        cov,
        df_resid=df_design + 1 - p,
        family=family,
        formula=formula,
        n=np.array([piece.n_used for piece in pieces]),
        spec=data.spec,
        info={**_info(design, formula, family, pieces), "by": list(by)},
        level=level,
    )


def _domain_label(levels: pd.DataFrame, k: int) -> str:
    return ", ".join(f"{column}={levels.iloc[k][column]!r}" for column in levels.columns)
