r"""Laplace approximation for a binomial GLMM with crossed random intercepts.

Data are cells :math:`c` with :math:`k_c` successes out of :math:`n_c` trials,
fixed-effect row :math:`x_c` and one level :math:`j_g(c)` per grouping factor
:math:`g`. With spherical random effects :math:`u_g \sim N(0, I)` and
:math:`b_g = \theta_g u_g` (so :math:`\theta_g` is the standard deviation),

.. math::

    \eta_c = x_c^\top\beta + \sum_g \theta_g u_{g, j_g(c)}, \qquad
    \mu_c = \operatorname{logit}^{-1}(\eta_c).

Penalised iteratively reweighted least squares (PIRLS) finds the conditional
mode :math:`\tilde u` of :math:`-2\ell(u) + \|u\|^2`, and the Laplace
approximation to the deviance is

.. math::

    D(\theta, \beta) = -2\ell(\tilde u, \beta, \theta) + \|\tilde u\|^2
        + \log\lvert \Lambda Z^\top W Z \Lambda + I\rvert,

the objective of ``lme4::glmer(nAGQ = 1)`` (Bates et al. 2015).
:math:`Z^\top W Z` is a cross-tabulation of :math:`W = n\mu(1-\mu)` per pair of
factors (``bincount``), never an :math:`n \times q` matrix. The systems are
factorised densely (:math:`q \times q`) for a few hundred levels, or through a
Schur complement that keeps the largest factor's block diagonal when it has
many levels (:mod:`unmetneed.mrp.factor`, :func:`choose_algebra`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from scipy import sparse
from scipy.special import expit

from unmetneed._validate import check_choice
from unmetneed.mrp.factor import NARROW_LEVELS, DenseFactor, SchurFactor, SchurLayout

__all__ = ["SCHUR_MIN_LEVELS", "CellData", "LaplaceProblem", "PirlsResult", "choose_algebra"]


@dataclass(frozen=True, eq=False)
class CellData:
    """A model's data collapsed to cells."""

    X: np.ndarray  # (C, p)
    codes: tuple[np.ndarray, ...]  # per factor (C,)
    n_levels: tuple[int, ...]
    successes: np.ndarray  # (C,)
    trials: np.ndarray  # (C,)

    @property
    def offsets(self) -> np.ndarray:
        return np.concatenate([[0], np.cumsum(self.n_levels)])

    @property
    def q(self) -> int:
        return int(sum(self.n_levels))

    @property
    def p(self) -> int:
        return self.X.shape[1]


Factor = DenseFactor | SchurFactor


class _Extra(dict[str, Any]):
    """``PirlsResult.extra``; ``"chol_full"`` (a dense Cholesky of the joint Hessian) is
    made on first use from ``"factor_full"``, for callers written before the factor API."""

    def __missing__(self, key: str) -> Any:
        if key == "chol_full" and "factor_full" in self:
            value = self["factor_full"].dense_cholesky()
            self[key] = value
            return value
        raise KeyError(key)


@dataclass(eq=False)
class PirlsResult:
    u: np.ndarray
    beta: np.ndarray
    eta: np.ndarray
    mu: np.ndarray
    loglik: float  # conditional log-likelihood (no binomial coefficients)
    converged: bool
    iterations: int
    extra: dict = field(default_factory=_Extra)
    # Factor of the random-effect block H (solve, sample, log|H|, selected inverse), made
    # on first use: the draws' grid needs only the joint system's.
    make_factor: Callable[[], Factor] | None = field(default=None, repr=False)
    _factor: Factor | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.extra, _Extra):
            self.extra = _Extra(self.extra)

    @property
    def factor(self) -> Factor:
        if self._factor is None:
            if self.make_factor is None:
                raise ValueError("this PIRLS result carries no factor")
            self._factor = self.make_factor()
            self.make_factor = None
        return self._factor

    @property
    def logdet(self) -> float:
        """log|H| of the random-effect block."""
        return self.factor.logdet

    @property
    def deviance(self) -> float:
        return -2.0 * self.loglik + float(self.u @ self.u) + self.logdet

    @property
    def chol(self) -> np.ndarray:
        """Dense lower Cholesky of the random-effect block (q^3 for the Schur factor: avoid)."""
        return self.factor.dense_cholesky()


Algebra = Literal["auto", "dense", "schur"]
# The Schur complement (one factor's block diagonal, the rest dense) pays from about
# this many levels of the largest factor on (fit CPU seconds, 30,000 respondents, dense
# vs Schur: 100 levels 0.16 vs 0.18, 200: 0.28 vs 0.21, 400: 0.96 vs 0.30, 1,600: 19.5 vs
# 0.56); below it one dense Cholesky of the q x q system is as fast and keeps results
# bit-for-bit as before. docs/methods/mrp.md, "Sparse algebra".
SCHUR_MIN_LEVELS = 200


def choose_algebra(n_levels: tuple[int, ...], algebra: Algebra = "auto") -> str:
    """``"schur"`` when the largest factor has at least SCHUR_MIN_LEVELS levels, else ``"dense"``."""
    check_choice(algebra, "algebra", Algebra)
    if algebra != "auto":
        return algebra
    return "schur" if n_levels and max(n_levels) >= SCHUR_MIN_LEVELS else "dense"


class _CrossTab:
    """:math:`\\Lambda Z^\\top W Z \\Lambda + I` (and, with X, the joint system's other blocks)
    for any cell weights W, as one sparse product.

    Every entry of the lower triangle is a sum over cells of :math:`w_c` times a fixed
    number (1, or an entry of X): a sparse matrix K (entries x cells) built once, so
    the matrix for new weights is ``K @ w``, scaled per block and mirrored. About three
    times faster than a ``bincount`` per pair of factors and column of X.
    """

    def __init__(self, sizes: list[int], codes: list[np.ndarray], X: np.ndarray | None, n_cells: int) -> None:
        offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        q = int(offsets[-1])
        columns = [] if X is None else [X[:, j] for j in range(X.shape[1])]
        p = len(columns)
        n = self.n = q + p
        self.q = q
        index = [np.asarray(code, dtype=np.int64) + offsets[g] for g, code in enumerate(codes)]
        keys: list[np.ndarray] = []
        values: list[np.ndarray | None] = []  # None: ones
        kinds: list[int] = []
        # kind: scale of the entry's block; factors a >= b -> theta_a theta_b, (X, a) -> theta_a
        n_factors = len(codes)
        for a in range(n_factors):
            for b in range(a + 1):
                keys.append(index[a] * n + index[b])
                values.append(None)
                kinds.append(a * n_factors + b)
            for j in range(p):
                keys.append((q + j) * n + index[a])
                values.append(columns[j])
                kinds.append(n_factors * n_factors + a)
        for j in range(p):
            for k in range(j + 1):
                keys.append(np.full(n_cells, (q + j) * n + q + k, dtype=np.int64))
                values.append(columns[j] * columns[k])
                kinds.append(n_factors * n_factors + n_factors)
        self.n_kinds = n_factors * n_factors + n_factors + 1
        self.n_factors = n_factors
        if keys:
            unique, inverse = np.unique(np.concatenate(keys), return_inverse=True)
            data = np.concatenate(
                [np.ones(n_cells) if v is None else np.asarray(v, dtype=float) for v in values]
            )
            kind_of = np.concatenate([np.full(n_cells, kind) for kind in kinds])
            self.kind = np.zeros(unique.size, dtype=np.int64)
            self.kind[inverse] = kind_of
            self.matrix_k = sparse.csr_matrix(
                (data, (inverse, np.tile(np.arange(n_cells), len(keys)))), shape=(unique.size, n_cells)
            )
        else:
            unique = np.zeros(0, np.int64)
            self.kind = np.zeros(0, np.int64)
            self.matrix_k = sparse.csr_matrix((0, n_cells))
        self.flat = unique
        self.flat_mirror = (unique % n) * n + unique // n  # the same entry's upper-triangle place
        self.diagonal = np.arange(q) * (n + 1)

    def matrix(self, w: np.ndarray, theta: np.ndarray) -> np.ndarray:
        nf = self.n_factors
        scale = np.empty(self.n_kinds)
        scale[: nf * nf] = np.outer(theta, theta).ravel()
        scale[nf * nf : nf * nf + nf] = theta
        scale[-1] = 1.0
        # Each entry written to both triangles (a diagonal one twice, to one place). "+ 0.0"
        # keeps the matrix bit for bit what lower + lower.T made (a -0.0 entry became +0.0).
        values = (self.matrix_k @ w) * scale[self.kind] + 0.0
        out = np.zeros(self.n * self.n)
        out[self.flat_mirror] = values
        out[self.flat] = values
        out[self.diagonal] += 1.0
        return out.reshape(self.n, self.n)


class LaplaceProblem:
    """Evaluate the Laplace deviance and its pieces for given parameters.

    ``algebra`` picks how the PIRLS systems are factorised (:mod:`unmetneed.mrp.factor`):
    ``"dense"`` (one q x q Cholesky), ``"schur"`` (the largest factor's diagonal block
    eliminated first; linear in its levels) or ``"auto"`` (:func:`choose_algebra`).
    """

    def __init__(self, data: CellData, *, algebra: Algebra = "auto") -> None:
        self.data = data
        self.algebra = choose_algebra(data.n_levels, algebra)
        self._offsets = data.offsets
        self._pairs = [(a, b) for a in range(len(data.codes)) for b in range(a + 1)]
        # Global column index of each cell's level for every factor.
        self._index = [data.codes[g] + self._offsets[g] for g in range(len(data.codes))]
        # Z' as a sparse (q x cells) matrix: Z'V for several cell vectors in one product.
        n_cells = data.X.shape[0]
        self._zt_sparse = sparse.csr_matrix(
            (
                np.ones(n_cells * len(data.codes)),
                (
                    np.concatenate(self._index) if self._index else np.zeros(0, int),
                    np.tile(np.arange(n_cells), len(data.codes)),
                ),
            ),
            shape=(data.q, n_cells),
        )
        self._layouts: dict[bool, SchurLayout] = {}
        self._crosstabs: dict[tuple, _CrossTab] = {}
        if self.algebra == "schur":
            self._big = int(np.argmax(data.n_levels))
            self._small = [g for g in range(len(data.codes)) if g != self._big]
            # The dense block involves only the other factors and X: cells that differ only
            # in the large factor's level are summed first (one bincount), then cross-tabulated.
            keys = np.column_stack([data.codes[g] for g in self._small] + [data.X])
            unique, inverse = np.unique(keys, axis=0, return_inverse=True)
            small_codes = {g: unique[:, k].astype(np.intp) for k, g in enumerate(self._small)}
            self._merged = (inverse.ravel(), small_codes, np.ascontiguousarray(unique[:, len(self._small) :]))

    # -- building blocks ----------------------------------------------------------
    def _lambda(self, theta: np.ndarray) -> np.ndarray:
        return np.repeat(theta, self.data.n_levels)

    def linear_predictor(self, beta: np.ndarray, theta: np.ndarray, u: np.ndarray) -> np.ndarray:
        b = self._lambda(theta) * u
        eta = self.data.X @ beta
        for index in self._index:
            eta += b.take(index)  # take: the same gather as b[index], faster
        return eta

    def _loglik(self, eta: np.ndarray) -> float:
        return self._loglik_mu(eta)[0]

    def _loglik_mu(self, eta: np.ndarray) -> tuple[float, np.ndarray]:
        """Log-likelihood and :math:`\\mu = \\operatorname{logit}^{-1}(\\eta)` from one exp."""
        d = self.data
        # log(1 + e^eta) = log1p(e^-|eta|) + max(eta, 0), stably; four times faster than
        # np.logaddexp(0, eta), and the same e^-|eta| gives mu without a second exp.
        # (In place where it changes nothing but allocations: the same operations, bit for bit.)
        small = np.abs(eta)
        np.negative(small, out=small)
        np.exp(small, out=small)
        softplus = np.log1p(small)
        softplus += np.maximum(eta, 0.0)
        mu = np.where(eta >= 0.0, 1.0, small)
        small += 1.0
        mu /= small
        terms = d.successes * eta
        softplus *= d.trials
        terms -= softplus
        return float(np.sum(terms)), mu

    def loglik_draws(self, beta: np.ndarray, b: np.ndarray) -> np.ndarray:
        """The log-likelihood at many parameter draws: ``beta`` (m, p), ``b`` (m, q) -> (m,)."""
        d = self.data
        out = np.empty(beta.shape[0])
        chunk = max(1, 4_000_000 // max(d.X.shape[0], 1))  # draws x cells per block
        for start in range(0, beta.shape[0], chunk):
            stop = min(start + chunk, beta.shape[0])
            eta = beta[start:stop] @ d.X.T
            block = b[start:stop]
            for index in self._index:
                # np.take along the columns is the gather b[rows, index] at a third of the cost
                eta += block.take(index, axis=1)
            # softplus as _loglik_mu, log1p(e^-|eta|) + max(eta, 0), in one buffer
            softplus = np.abs(eta)
            np.negative(softplus, out=softplus)
            np.exp(softplus, out=softplus)
            np.log1p(softplus, out=softplus)
            softplus += np.maximum(eta, 0.0)
            out[start:stop] = eta @ d.successes - softplus @ d.trials
        return out

    def _zt(self, values: np.ndarray) -> np.ndarray:
        """:math:`Z^\\top v`: sums of a cell vector by each factor's levels."""
        d = self.data
        return np.concatenate(
            [np.bincount(c, weights=values, minlength=k) for c, k in zip(d.codes, d.n_levels, strict=True)]
        )

    def _zt_columns(self, values: np.ndarray) -> np.ndarray:
        """:math:`Z^\\top V` for a (cells x k) matrix V."""
        return np.asarray(self._zt_sparse @ values)

    def _ztwz(self, w: np.ndarray, factors: list[int] | None = None) -> np.ndarray:
        """Dense :math:`Z^\\top W Z` of the given factors (all by default), in their order."""
        d = self.data
        factors = list(range(len(d.codes))) if factors is None else factors
        sizes = [d.n_levels[g] for g in factors]
        offsets = np.concatenate([[0], np.cumsum(sizes)])
        out = np.zeros((offsets[-1], offsets[-1]))
        for i, a in enumerate(factors):
            for j in range(i + 1):
                b = factors[j]
                ka, kb = d.n_levels[a], d.n_levels[b]
                oa, ob = offsets[i], offsets[j]
                if i == j:  # a factor meets itself only on its own level: a diagonal block
                    diag = np.bincount(d.codes[a], weights=w, minlength=ka)
                    out[np.arange(oa, oa + ka), np.arange(oa, oa + ka)] = diag
                    continue
                block = np.bincount(d.codes[a] * kb + d.codes[b], weights=w, minlength=ka * kb).reshape(
                    ka, kb
                )
                out[oa : oa + ka, ob : ob + kb] = block
                out[ob : ob + kb, oa : oa + ka] = block.T
        return out

    # -- the PIRLS systems --------------------------------------------------------------
    def _layout(self, joint: bool) -> SchurLayout:
        """Pattern of the Schur path's sparse block for the u (or joint) system, built once."""
        if joint not in self._layouts:
            d = self.data
            q, p = d.q, d.p
            big = slice(int(self._offsets[self._big]), int(self._offsets[self._big + 1]))
            rest = np.concatenate([np.arange(0, big.start), np.arange(big.stop, q)])
            where = np.full(q, -1)
            where[rest] = np.arange(rest.size)
            columns = [where[self._index[g]] for g in self._small]
            values: list[np.ndarray | None] = [None] * len(self._small)
            narrow = np.repeat(
                np.array([d.n_levels[g] <= NARROW_LEVELS for g in self._small], dtype=bool),
                [d.n_levels[g] for g in self._small],
            )
            if joint:
                columns += [np.full(d.X.shape[0], rest.size + j) for j in range(p)]
                values += [d.X[:, j] for j in range(p)]
                rest = np.concatenate([rest, q + np.arange(p)])
                narrow = np.concatenate([narrow, np.ones(p, dtype=bool)])
            self._layouts[joint] = SchurLayout.build(
                q + p if joint else q, big, rest, d.codes[self._big], columns, values, narrow
            )
        return self._layouts[joint]

    def factorize(self, theta: np.ndarray, w: np.ndarray, *, joint: bool) -> Factor:
        r"""Factor the Hessian of :math:`-\ell + \|u\|^2/2` in u (and beta when ``joint``) for cell weights w."""
        if self.algebra == "dense":
            return DenseFactor(self._dense_block(theta, w, None, joint=joint))
        d = self.data
        lay = self._layout(joint)
        big, small = self._big, self._small
        theta_big = theta[big]
        diag = theta_big**2 * np.bincount(d.codes[big], weights=w, minlength=d.n_levels[big]) + 1.0
        lam_small = np.repeat(theta[small], [d.n_levels[g] for g in small])
        lam_rest = np.concatenate([lam_small, np.ones(d.p)]) if joint else lam_small
        values = (lay.collect @ w) * (theta_big * lam_rest[lay.cols])
        merged, codes, X = self._merged
        w_merged = np.bincount(merged, weights=w, minlength=X.shape[0])
        block = self._dense_block(theta, w_merged, small, joint=joint, codes=codes, X=X)
        return SchurFactor(lay, diag, values, block)

    def _dense_block(
        self,
        theta: np.ndarray,
        w: np.ndarray,
        factors: list[int] | None,
        *,
        joint: bool,
        codes: dict[int, np.ndarray] | None = None,
        X: np.ndarray | None = None,
    ) -> np.ndarray:
        """The system's matrix for the given factors (all: None) and, when ``joint``, the fixed
        effects. ``codes``/``X`` replace the cells' (merged cells); the cross-tabulation is
        one sparse product (:class:`_CrossTab`), then one scale per block
        (:math:`\\theta_a\\theta_b`, :math:`\\theta_a`, 1) and the identity for u."""
        key = (
            tuple(range(len(self.data.codes))) if factors is None else tuple(factors),
            joint,
            codes is not None,
        )
        tab = self._crosstabs.get(key)
        if tab is None:
            d = self.data
            tab = _CrossTab(
                [d.n_levels[g] for g in key[0]],
                [(d.codes if codes is None else codes)[g] for g in key[0]],
                (d.X if X is None else X) if joint else None,
                (d.X if X is None else X).shape[0],
            )
            self._crosstabs[key] = tab
        return tab.matrix(w, theta[list(key[0])])

    def _dense_hessian(self, theta: np.ndarray, w: np.ndarray, *, joint: bool) -> np.ndarray:
        return self._dense_block(theta, w, None, joint=joint)

    def _score(
        self, theta: np.ndarray, eta: np.ndarray, u: np.ndarray, *, joint: bool, mu: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Cell weights W and the gradient of :math:`\\ell - \\|u\\|^2/2` in u (and beta)."""
        d = self.data
        mu = expit(eta) if mu is None else mu
        w = d.trials * mu * (1.0 - mu)
        resid = d.successes - d.trials * mu
        grad_u = self._lambda(theta) * self._zt(resid) - u
        if joint:
            return w, np.concatenate([grad_u, d.X.T @ resid])
        return w, grad_u

    def system(
        self, theta: np.ndarray, eta: np.ndarray, u: np.ndarray, *, joint: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        r"""Dense Hessian and gradient of :math:`-\ell + \|u\|^2/2` in u (and beta when ``joint``)."""
        w, gradient = self._score(theta, eta, u, joint=joint)
        return self._dense_hessian(theta, w, joint=joint), gradient

    # -- PIRLS for u (beta fixed) or (u, beta) jointly ----------------------------------
    def pirls(
        self,
        theta: np.ndarray,
        beta: np.ndarray,
        u0: np.ndarray | None = None,
        *,
        joint: bool = False,
        full: bool = False,
        tol: float = 1e-14,
        max_iter: int = 60,
        abandon: Callable[[float, float, float, float], bool] | None = None,
    ) -> PirlsResult:
        """Conditional modes; with ``joint=True`` also the fixed effects (lme4's nAGQ=0 step).

        ``full=True`` also factors the joint (u, beta) Hessian at the end
        (for the conditional covariance of the fixed effects and for draws):
        ``extra["factor_full"]`` and its log-determinant ``extra["logdet_full"]``.

        ``abandon(loglik, u'u, log|H|, decrement)``, called from the second Newton step on
        with the current point's values (H the factored system, the joint one when
        ``joint``), may stop the iterations: the result then has ``extra["abandoned"]``
        True, ``converged`` False and no final factor (the draws' grid gives up on a point
        already clearly outside its region this way).
        """
        d = self.data
        q = d.q
        u = np.zeros(q) if u0 is None else u0.copy()
        beta = beta.copy()
        eta = self.linear_predictor(beta, theta, u)
        loglik, mu = self._loglik_mu(eta)
        pdev = -2.0 * loglik + u @ u
        converged = False
        iteration = 0
        for iteration in range(1, max_iter + 1):
            w, gradient = self._score(theta, eta, u, joint=joint, mu=mu)
            factor = self.factorize(theta, w, joint=joint)
            step = factor.solve(gradient)
            decrement = float(gradient @ step)
            if (
                abandon is not None
                and iteration > 1
                and abandon(loglik, float(u @ u), factor.logdet, decrement)
            ):
                extra = _Extra(abandoned=True)
                return PirlsResult(u, beta, eta, mu, loglik, False, iteration, extra)
            # Step halving on the penalised deviance.
            t = 1.0
            while True:
                u_new = u + t * step[:q]
                beta_new = beta + t * step[q:] if joint else beta
                eta_new = self.linear_predictor(beta_new, theta, u_new)
                loglik_new, mu_new = self._loglik_mu(eta_new)
                pdev_new = -2.0 * loglik_new + u_new @ u_new
                if pdev_new <= pdev + 1e-12 * abs(pdev) or t < 1e-8:
                    break
                t /= 2.0
            u, beta, eta, loglik, mu = u_new, beta_new, eta_new, loglik_new, mu_new
            change = pdev - pdev_new
            pdev = pdev_new
            if decrement < tol * (1.0 + abs(pdev)) or abs(change) < tol * 1e-3 * (1.0 + abs(pdev)):
                converged = True
                break
        # Factor at the final point, for the log-determinant.
        w = d.trials * mu * (1.0 - mu)
        extra = _Extra()
        result = PirlsResult(u, beta, eta, mu, loglik, converged, iteration, extra)
        if joint or full:
            if self.algebra == "dense":
                hessian = self._dense_hessian(theta, w, joint=True)
                dense_full = DenseFactor(hessian)
                factor_full: Factor = dense_full
                result.make_factor = lambda: DenseFactor(hessian[:q, :q])
                extra["chol_full"] = dense_full.cholesky
            else:
                factor_full = self.factorize(theta, w, joint=True)
                result.make_factor = lambda: self.factorize(theta, w, joint=False)
            extra["logdet_full"] = factor_full.logdet
            extra["factor_full"] = factor_full
        else:
            result._factor = self.factorize(theta, w, joint=False)
        return result

    def _inverse_at_cells(self, factor: Factor) -> dict[tuple[int, int], np.ndarray]:
        r""":math:`(H^{-1})_{j_a(c), j_b(c)}` for every cell c and pair of factors a >= b.

        Only entries on the sparsity pattern of H are needed (a cell's own levels), which
        the Schur factor supplies without forming :math:`H^{-1}`.
        """
        d = self.data
        out: dict[tuple[int, int], np.ndarray] = {}
        if isinstance(factor, DenseFactor):
            h_inv = factor.inverse()
            for a, b in self._pairs:
                out[a, b] = h_inv[self._index[a], self._index[b]]
            return out
        lay = factor.layout
        diag_big, cross = factor.selected_inverse()
        s_inv = factor.schur_inverse()
        where = np.full(d.q, -1)
        where[lay.rest] = np.arange(lay.rest.size)
        small_position = {g: k for k, g in enumerate(self._small)}
        for a, b in self._pairs:
            if a == self._big and b == self._big:
                out[a, b] = diag_big[d.codes[a]]
            elif a == self._big or b == self._big:
                other = b if a == self._big else a
                out[a, b] = cross[lay.positions[small_position[other]]]
            else:
                out[a, b] = s_inv[where[self._index[a]], where[self._index[b]]]
        return out

    def gradient(self, theta: np.ndarray, beta: np.ndarray, result: PirlsResult) -> np.ndarray:
        r"""Exact gradient of the Laplace deviance in :math:`(\theta, \beta)` at a PIRLS optimum.

        :math:`dD/d\phi_j = \partial P/\partial\phi_j + \operatorname{tr}(H^{-1} dH/d\phi_j)`:
        the penalised deviance :math:`P` by the envelope theorem, the log-determinant through
        :math:`\Lambda` and through :math:`W(\mu)`, whose change includes that of the
        conditional modes (:math:`du/d\phi = -H^{-1}\,\partial F/\partial\phi`, implicit
        differentiation of the PIRLS equations :math:`F = -\Lambda Z^\top r + u = 0`).
        Both traces need :math:`H^{-1}` only at each cell's own levels:
        :math:`\operatorname{tr}(H^{-1}\Lambda_g' A\Lambda) = \sum_c w_c \sum_b \theta_b
        (H^{-1})_{j_g(c) j_b(c)}` for :math:`A = Z^\top W Z`.
        """
        d = self.data
        p, n_theta = d.p, len(d.n_levels)
        lam = self._lambda(theta)
        u, eta = result.u, result.eta
        mu = expit(eta)
        w = d.trials * mu * (1.0 - mu)
        dw = w * (1.0 - 2.0 * mu)  # dW/deta
        resid = d.successes - d.trials * mu
        zr = self._zt(resid)
        inv = self._inverse_at_cells(result.factor)
        # Leverages s_c = z_c' Lambda H^{-1} Lambda z_c, and per factor
        # t_g(c) = sum_b theta_b H^{-1}[j_g(c), j_b(c)] for the trace through Lambda.
        lev = np.zeros(eta.size)
        per_factor = [np.zeros(eta.size) for _ in range(n_theta)]
        for ga, gb in self._pairs:
            entry = inv[ga, gb]
            factor = theta[ga] * theta[gb] * (1.0 if ga == gb else 2.0)
            lev += factor * entry
            per_factor[ga] += theta[gb] * entry
            if ga != gb:
                per_factor[gb] += theta[ga] * entry
        grad = np.empty(n_theta + p)
        # Right-hand sides of du/dphi and the direct derivatives of eta.
        direct = np.empty((eta.size, n_theta + p))
        for g in range(n_theta):
            sl = slice(self._offsets[g], self._offsets[g + 1])
            direct[:, g] = u[sl][d.codes[g]]  # d eta / d theta_g at fixed u
            grad[g] = -2.0 * float(zr[sl] @ u[sl])
        direct[:, n_theta:] = d.X
        grad[n_theta:] = -2.0 * (d.X.T @ resid)
        rhs = lam[:, None] * self._zt_columns(w[:, None] * direct)
        for g in range(n_theta):
            sl = slice(self._offsets[g], self._offsets[g + 1])
            rhs[sl, g] -= zr[sl]
        du = -result.factor.solve(rhs)
        result.extra["du"] = du  # sensitivities of the modes: warm starts for nearby points
        b_du = lam[:, None] * du
        deta = direct.copy()
        for g in range(n_theta):
            deta += b_du[self._offsets[g] : self._offsets[g + 1]][d.codes[g]]
        grad += (dw * lev) @ deta
        # Through Lambda: 2 tr(H^-1 Lambda_g' A Lambda) per factor.
        for g in range(n_theta):
            grad[g] += 2.0 * float(w @ per_factor[g])
        return grad

    def deviance(
        self, theta: np.ndarray, beta: np.ndarray, u0: np.ndarray | None = None
    ) -> tuple[float, PirlsResult]:
        """Laplace deviance :math:`D(\\theta, \\beta)` (PIRLS over u, warm-started at ``u0``)."""
        result = self.pirls(theta, beta, u0)
        return result.deviance, result
