r"""Tests of association in a two-way table, as R's ``svychisq``.

With :math:`\hat p` the :math:`rc` cell proportions (rows varying fastest),
:math:`\hat V` their design covariance, :math:`N` the design's rows and
:math:`X^2` Pearson's statistic of the weighted table scaled to total
:math:`N`:

* ``"F"`` (Rao-Scott second order): :math:`F = X^2/\operatorname{tr}\Delta`
  on :math:`d_0` and :math:`d_0\nu` degrees of freedom,
  :math:`\Delta = (C^\top D^{-1} C / N)^{-1} C^\top D^{-1}\hat V D^{-1} C`,
  :math:`d_0 = (\operatorname{tr}\Delta)^2/\operatorname{tr}\Delta^2`, with
  :math:`C` the interaction contrasts residualised on the main effects,
  :math:`D = \operatorname{diag}(\hat p)` and :math:`\nu` the design's
  degrees of freedom;
* ``"Chisq"``: :math:`X^2` with p-value :math:`P(\chi^2_{(r-1)(c-1)} > X^2/\bar\delta)`;
* ``"Wald"`` and ``"adjWald"``: the Wald statistic of the interior cells'
  deviations from independence (totals, with the delta-method covariance of
  R), on :math:`(r-1)(c-1)` and :math:`\nu` (adjusted: :math:`\nu - (r-1)(c-1) + 1`)
  degrees of freedom;
* ``"saddlepoint"``: the p-value of :math:`X^2` under
  :math:`\sum_j \delta_j \chi^2_1` (replicate designs), or of
  :math:`X^2/\sum_j\delta_j\chi^2_1 \cdot \chi^2_{m}/m` with :math:`m` the
  denominator df :math:`d_0\nu` **truncated to an integer** as R's ``rep()``
  does (Taylor), by R's saddlepoint approximation (``survey:::saddle``, its
  ``uniroot`` ported step for step);
* ``"lincom"``: the same distribution computed exactly by numerical
  inversion of its characteristic function (Imhof 1961), where R calls
  ``CompQuadForm::davies`` (Davies 1980) with the same integer-truncated
  denominator df. Without CompQuadForm R falls back to the saddlepoint.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
from scipy import integrate, stats

from unmetneed._validate import require_columns, show
from unmetneed.design.coding import code_series
from unmetneed.design.linear import estimate_family, mean_statistics, total_statistics
from unmetneed.design.rootfinding import uniroot
from unmetneed.errors import DesignError

if TYPE_CHECKING:
    from unmetneed.design.survey_design import SurveyDesign

__all__ = ["ChisqResult", "chisq_test", "pchisqsum", "pfsum", "saddle"]


@dataclass(frozen=True)
class ChisqResult:
    """A design-based test of association (R ``svychisq``).

    Attributes
    ----------
    statistic : float
        F for ``"F"``, ``"Wald"``, ``"adjWald"``; Pearson's :math:`X^2` otherwise.
    ndf, ddf : float or None
        Numerator and denominator degrees of freedom (``ddf`` None for ``"Chisq"``).
    p_value : float
    method : str

    Examples
    --------
    >>> import unmetneed as um
    >>> design = um.datasets.load_example_design()
    >>> test = design.chisq("sex", "help", statistic="adjWald")
    >>> test.ndf
    2.0
    >>> 0 <= test.p_value <= 1
    True
    """

    statistic: float
    ndf: float | None
    ddf: float | None
    p_value: float
    method: str
    row: str
    column: str
    info: dict[str, Any] = field(default_factory=dict)

    def to_frame(self) -> pd.DataFrame:
        """One row: row, column, method, statistic, ndf, ddf, p_value."""
        return pd.DataFrame(
            [
                {
                    "row": self.row,
                    "column": self.column,
                    "method": self.method,
                    "statistic": self.statistic,
                    "ndf": self.ndf,
                    "ddf": self.ddf,
                    "p_value": self.p_value,
                }
            ]
        )

    def summary(self) -> str:
        dfs = "" if self.ndf is None else f", ndf = {self.ndf:.6g}"
        dfs += "" if self.ddf is None else f", ddf = {self.ddf:.6g}"
        return (
            f"{self.method}: {self.row} by {self.column}\n"
            f"statistic = {self.statistic:.6g}{dfs}, p-value = {self.p_value:.4g}"
        )

    def __repr__(self) -> str:
        return f"<ChisqResult>\n{self.summary()}"

    def _repr_html_(self) -> str:
        return f"<div><pre>{html.escape(self.summary())}</pre></div>"


def _codes(design: SurveyDesign, column: str) -> tuple[np.ndarray, np.ndarray, pd.Index]:
    series = design._data[column]
    missing = series.isna().to_numpy()
    inside = design._in_design
    present = series[~missing & inside]
    if isinstance(series.dtype, pd.CategoricalDtype):
        counts = present.value_counts()
        unused = [c for c in series.cat.categories if counts.get(c, 0) == 0]
        if unused:
            raise DesignError(
                f"table column {column!r} has categories with no respondents: "
                f"{', '.join(show(u) for u in unused)}; the table would have an empty "
                f"row or column (R's svychisq gives NaN). Drop them with "
                f"df[{column!r}].cat.remove_unused_categories()"
            )
    _, labels = code_series(present)
    codes = np.zeros(design.n, dtype=np.intp)
    codes[~missing] = labels.get_indexer(pd.Index(series[~missing]))
    return codes, ~missing & (codes >= 0), labels


def chisq_test(design: SurveyDesign, row: str, column: str, statistic: str) -> ChisqResult:
    require_columns(design._data, [row, column], "table")
    rcodes, rok, rlabels = _codes(design, row)
    ccodes, cok, clabels = _codes(design, column)
    nr, nc = len(rlabels), len(clabels)
    if nr < 2 or nc < 2:
        raise DesignError(
            f"a test of association needs at least two levels in each of {row!r} ({nr}) and {column!r} ({nc})"
        )
    inside = design._in_design
    keep = rok & cok & inside
    w = design._weights
    cell = np.where(keep, rcodes + nr * ccodes, 0)  # rows fastest, as interaction()
    table = np.bincount(cell[keep], weights=w[keep], minlength=nr * nc).reshape(nc, nr).T
    for axis, labels, name in ((1, rlabels, row), (0, clabels, column)):
        margin = table.sum(axis=axis)
        if (margin <= 0).any():
            empty = [show(labels[int(i)]) for i in np.flatnonzero(margin <= 0)]
            raise DesignError(
                f"the table of {row!r} by {column!r} has an empty "
                f"{'row' if axis == 1 else 'column'}: {name!r} = {', '.join(empty)} has no "
                "weight; drop or merge that category"
            )
    n_total = float(inside.sum())
    nu = float(design.degf)
    scaled = table * n_total / table.sum()
    expected = np.outer(scaled.sum(axis=1), scaled.sum(axis=0)) / n_total
    pearson = float(((scaled - expected) ** 2 / expected).sum())
    method = f"Design-based {statistic} test of association"
    if statistic in ("Wald", "adjWald"):
        return _wald(design, row, column, statistic, rcodes, ccodes, keep, nr, nc, nu, method)
    indicators = np.zeros((design.n, nr * nc))
    indicators[np.arange(design.n), cell] = keep
    family = estimate_family(design, mean_statistics(indicators, keep, np.zeros(design.n, dtype=np.intp), 1))
    mean2 = family.theta
    v = family.covariance()
    x1 = _main_effects(nr, nc)
    x12 = _interactions(nr, nc)
    q, _ = np.linalg.qr(x1)
    cmat = x12 - q @ (q.T @ x12)
    with np.errstate(divide="ignore"):
        inv = np.where(mean2 == 0, 0.0, 1.0 / mean2)
    denom = cmat.T @ (inv[:, None] / n_total * cmat)
    numr = cmat.T @ (inv[:, None] * v * inv[None, :]) @ cmat
    delta = np.linalg.solve(denom, numr)
    trace = float(np.trace(delta))
    d0 = trace**2 / float(np.trace(delta @ delta))
    info = {"design_df": nu, "rows": n_total}
    if statistic == "F":
        f = pearson / trace
        p = float(stats.f.sf(f, d0, d0 * nu))
        return ChisqResult(f, d0, d0 * nu, p, "Pearson's X^2: Rao & Scott adjustment", row, column, info)
    if statistic == "Chisq":
        k = delta.shape[1]
        p = float(stats.chi2.sf(pearson / (trace / k), k))
        return ChisqResult(
            pearson, float(k), None, p, "Pearson's X^2: Rao & Scott adjustment", row, column, info
        )
    eigen = np.linalg.eigvals(delta).real
    exact = statistic == "lincom"
    if design.replicates is None:
        p = pfsum(pearson, eigen, d0 * nu, exact=exact)
    else:
        p = pchisqsum(pearson, eigen, exact=exact)
    label = (
        "Pearson's X^2: asymptotic exact distribution"
        if exact
        else "Pearson's X^2: saddlepoint approximation"
    )
    return ChisqResult(pearson, None, None, p, label, row, column, info)


def _main_effects(nr: int, nc: int) -> np.ndarray:
    rows = np.tile(np.arange(nr), nc)
    cols = np.repeat(np.arange(nc), nr)
    parts = [np.ones(nr * nc)]
    parts += [(rows == i).astype(float) for i in range(1, nr)]
    parts += [(cols == j).astype(float) for j in range(1, nc)]
    return np.column_stack(parts)


def _interactions(nr: int, nc: int) -> np.ndarray:
    rows = np.tile(np.arange(nr), nc)
    cols = np.repeat(np.arange(nc), nr)
    return np.column_stack(
        [((rows == i) & (cols == j)).astype(float) for j in range(1, nc) for i in range(1, nr)]
    )


def _wald(
    design: SurveyDesign,
    row: str,
    column: str,
    statistic: str,
    rcodes: np.ndarray,
    ccodes: np.ndarray,
    keep: np.ndarray,
    nr: int,
    nc: int,
    nu: float,
    method: str,
) -> ChisqResult:
    n = design.n
    k = nr * nc + nr + nc + 1
    values = np.zeros((n, k))
    idx = np.arange(n)
    values[idx, rcodes + nr * ccodes] = 1.0
    values[idx, nr * nc + rcodes] = 1.0
    values[idx, nr * nc + nr + ccodes] = 1.0
    values[:, -1] = 1.0
    family = estimate_family(design, total_statistics(values, keep, np.zeros(n, dtype=np.intp), 1))
    cells = family.theta
    v = family.covariance()
    rows_total = cells[nr * nc : nr * nc + nr]
    cols_total = cells[nr * nc + nr : nr * nc + nr + nc]
    grand = cells[-1]
    cell_rows = np.tile(np.arange(nr), nc)
    cell_cols = np.repeat(np.arange(nc), nr)
    jac = np.hstack(
        [
            np.eye(nr * nc),
            -(cell_rows[:, None] == np.arange(nr)[None, :]).astype(float)
            * (cols_total[cell_cols] / grand)[:, None],
            -(cell_cols[:, None] == np.arange(nc)[None, :]).astype(float)
            * (rows_total[cell_rows] / grand)[:, None],
            (rows_total[cell_rows] * cols_total[cell_cols] / grand**2)[:, None],
        ]
    )
    y = cells[: nr * nc] - rows_total[cell_rows] * cols_total[cell_cols] / grand
    vv = jac @ v @ jac.T
    use = (cell_rows > 0) & (cell_cols > 0)
    wald = float(y[use] @ np.linalg.solve(vv[np.ix_(use, use)], y[use]))
    numdf = float((nr - 1) * (nc - 1))
    if statistic == "Wald":
        stat, ddf = wald / numdf, nu
    else:
        ddf = nu - numdf + 1
        stat = wald * ddf / (numdf * nu)
    p = float(stats.f.sf(stat, numdf, ddf))
    return ChisqResult(stat, numdf, ddf, p, "Design-based Wald test of association", row, column)


# -- distributions of sums of chi-squares (R's pchisqsum, pFsum, saddle) ------------------
def saddle(x: float, lam: np.ndarray) -> float:
    """R's ``survey:::saddle``: upper tail of ``sum(lam * chisq_1)`` at ``x`` (NaN if unusable)."""
    lam = np.asarray(lam, dtype=np.float64)
    d = float(lam.max())
    lam = lam / d
    x = x / d

    def k0(z: float) -> float:
        return float(-np.sum(np.log(1 - 2 * z * lam)) / 2)

    def kprime0(z: float) -> float:
        return float(np.sum(lam / (1 - 2 * z * lam)))

    def kpprime0(z: float) -> float:
        return float(2 * np.sum(lam**2 / (1 - 2 * z * lam) ** 2))

    if (lam < 0).any():
        lmin = float(np.max(1 / (2 * lam[lam < 0]))) * 0.99999
    elif x > lam.sum():
        lmin = -0.01
    else:
        lmin = -lam.size / (2 * x)
    lmax = float(np.min(1 / (2 * lam[lam > 0]))) * 0.99999
    hatzeta = uniroot(lambda z: kprime0(z) - x, lmin, lmax, tol=1e-8)
    w = np.sign(hatzeta) * np.sqrt(2 * (hatzeta * x - k0(hatzeta)))
    v = hatzeta * np.sqrt(kpprime0(hatzeta))
    if abs(hatzeta) < 1e-4:
        return float("nan")
    return float(stats.norm.sf(w + np.log(v / w) / w))


def _imhof(lam: np.ndarray, h: np.ndarray) -> float:
    """P(sum_j lam_j chisq_{h_j} > 0), by Imhof's (1961) inversion formula."""

    def integrand(u: float) -> float:
        theta = 0.5 * np.sum(h * np.arctan(lam * u))
        rho = np.prod((1 + (lam * u) ** 2) ** (h / 4))
        return float(np.sin(theta) / (u * rho))

    value, _ = integrate.quad(integrand, 0, np.inf, limit=1000, epsabs=1e-12, epsrel=1e-10)
    return 0.5 + value / np.pi


def pchisqsum(x: float, a: np.ndarray, *, exact: bool) -> float:
    """Upper tail of ``sum(a_j chisq_1)`` at ``x`` (R's ``pchisqsum``, one df each)."""
    a = np.asarray(a, dtype=np.float64)
    if exact:
        return _imhof_shift(a, x)
    tr = a.mean()
    tr2 = (a**2).mean() / tr**2
    guess = float(stats.chi2.sf(x / (tr * tr2), a.size / tr2))
    sad = saddle(x, a)
    return guess if np.isnan(sad) else sad


def _imhof_shift(a: np.ndarray, x: float) -> float:
    r"""P(sum a_j chisq_1 > x) by Imhof's formula.

    The integrand :math:`\sin(\alpha(u) - xu/2)/(u\rho(u))` decays slowly, so
    beyond ``u = 1`` it is split into :math:`\sin\alpha\cos(xu/2)` and
    :math:`\cos\alpha\sin(xu/2)` parts integrated by QUADPACK's Fourier
    rule (QAWF).
    """

    def alpha(u: float) -> float:
        return 0.5 * float(np.sum(np.arctan(a * u)))

    def rho(u: float) -> float:
        return float(np.prod((1 + (a * u) ** 2) ** 0.25))

    def whole(u: float) -> float:
        return float(np.sin(alpha(u) - 0.5 * x * u) / (u * rho(u)))

    head, _ = integrate.quad(whole, 0, 1.0, limit=500, epsabs=1e-14, epsrel=1e-12)

    def tail(weight: Literal["cos", "sin"], part: Callable[[float], float]) -> float:
        value, _ = integrate.quad(
            lambda u: part(alpha(u)) / (u * rho(u)),
            1.0,
            np.inf,
            weight=weight,
            wvar=0.5 * x,
            limlst=200,
            epsabs=1e-12,
        )
        return float(value)

    return 0.5 + (head + tail("cos", np.sin) - tail("sin", np.cos)) / np.pi


def pfsum(x: float, a: np.ndarray, ddf: float, *, exact: bool) -> float:
    """Upper tail of ``sum(a_j chisq_1) / (chisq_m / m)`` at ``x``, ``m = int(ddf)`` (R's ``pFsum``)."""
    a = np.asarray(a, dtype=np.float64)
    if not np.isfinite(ddf):
        return pchisqsum(x, a, exact=exact)
    m = int(ddf)  # R: rep(a, df) and davies(h = ddf) truncate to an integer
    if exact:
        lam = np.concatenate([a, [-x / ddf]])
        h = np.concatenate([np.ones(a.size), [float(m)]])
        return _imhof(lam, h)
    tr = a.mean()
    tr2 = (a**2).mean() / tr**2
    scale = tr * tr2
    ndf = a.size / tr2
    rval = float(stats.f.sf(x / ndf / scale, ndf, ddf))
    lam = np.concatenate([a, np.full(m, -x / ddf)])
    s = saddle(0.0, lam)
    return rval if np.isnan(s) else s
