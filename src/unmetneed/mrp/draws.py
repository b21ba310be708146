r"""Joint draws of all linear-predictor parameters, integrating over the SDs.

An integrated nested Laplace approach (Rue, Martino & Chopin 2009) for the
random-intercept standard deviations :math:`\theta`:

1. The marginal posterior of :math:`\psi = \log\theta` is approximated by
   integrating the random effects *and* the fixed effects (flat prior) with a
   Laplace approximation,

   .. math::

       -2\log\tilde\pi(\psi \mid y) = -2\ell(\hat u, \hat\beta) + \|\hat u\|^2
       + \log\lvert H_{(u,\beta)}\rvert - 2\log p(\theta) - 2\sum_g \psi_g + c,

   where :math:`(\hat u, \hat\beta)` is the joint mode given :math:`\theta`
   and :math:`H_{(u,\beta)}` the Hessian there. The prior on each SD is
   exponential with rate 1 — the default of ``rstanarm::stan_glmer``
   (``decov(shape = 1, scale = 1)``) for a single random intercept.
2. The posterior of :math:`\psi` is explored on a grid in standardised
   coordinates :math:`z` (:math:`\psi = \psi^* + V\Lambda^{1/2} z`, from the
   Hessian at the mode), stepping outward from the mode while the log density
   is within :math:`\chi^2_d(0.995)/2` of its maximum (99.5% of a Gaussian's mass),
   so skewed posteriors (few levels) are covered.
   Each grid point gets weight :math:`\propto \tilde\pi(\psi \mid y)`.
   With three or more SDs the lattice's step is 1.1-2.5 (in :math:`z`), so a
   weakly identified SD would take only 3-4 values and the effects drawn at
   them come out too narrow; there the lattice only locates the posterior and
   the support points are ``SUPPORT_POINTS`` draws :math:`\psi_j` from a
   multivariate t (5 df) with the lattice's weighted mean and scale matrix
   1.5² x (its weighted covariance + each cell's spread), each weighted by
   :math:`\tilde\pi(\psi_j \mid y) / q(\psi_j)` (see :func:`sd_posterior_support`).
3. Proposals: a support point :math:`k` by weight, then
   :math:`(u, \beta) \sim N((\hat u_k, \hat\beta_k), H_k^{-1})` at that point and
   :math:`b_g = \theta_{k,g} u_g` -- the effects and the SDs of one draw always
   belong together (rescaling standardised effects by a jittered SD, as
   versions before 0.3 did, breaks the balance between the intercept and the
   effects and inflated the spread of predictions 1.3-1.6 times).
4. Importance resampling: ``IMPORTANCE_OVERSAMPLE`` proposals per draw get
   weights

   .. math::

       w \propto \frac{p(y \mid \beta, b)\, N(b; 0, \theta_k^2)\, p(\theta_k)}
                       {w_k\, N\bigl((u, \beta); (\hat u_k, \hat\beta_k), H_k^{-1}\bigr)
                        \prod_g \theta_{k,g}^{-n_g}},

   the exact joint posterior on the support over the proposal (for sampled
   support points the target is divided by :math:`q(\psi_k)` and :math:`w_k`
   includes it, so :math:`q` cancels), and the returned
   draws are a systematic resample by these weights. This removes the error of
   the Gaussian conditional (skewed for rare outcomes, where its mean of
   :math:`p` is too high) and of the Laplace marginal at the grid points. The
   effective sample size is in ``attrs``; if it falls below
   ``MIN_RELATIVE_ESS`` of the proposals the draws are returned uncorrected
   with a warning.

5. On a lattice (one or two SDs) the reported SDs (``sd``) are spread
   uniformly over their grid point's cell (in the standardised coordinates
   :math:`z`), so their marginal is continuous; sampled support points are
   reported as they are. Poststratification draws the effect of a level
   without respondents from :math:`N(0, \mathrm{sd}^2)` with them. The
   effects of observed levels are those drawn at the support point.

The result integrates over the uncertainty in the SDs rather than fixing them
at their estimates; compare with ``rstanarm`` in ``tests/reference/mrp/``.
"""

from __future__ import annotations

import heapq
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import xarray as xr

from unmetneed._blas import single_threaded_blas
from unmetneed._validate import resolve_rng
from unmetneed.errors import ModelError, UnmetneedWarning
from unmetneed.mrp.laplace import LaplaceProblem, PirlsResult

if TYPE_CHECKING:
    from unmetneed.mrp.model import MultilevelFit

__all__ = ["SD_PRIOR_RATE", "joint_draws", "sd_posterior_grid"]

SD_PRIOR_RATE = 1.0


# Explore while the log density is within chi2_d(0.995)/2 of its maximum: the region
# that holds 99.5% of a d-dimensional Gaussian (a fixed 2.5 cut 17% of the mass in 3-D).
def log_density_drop(dim: int) -> float:
    from scipy.stats import chi2

    return float(chi2.ppf(0.995, dim) / 2.0)


MAX_GRID_POINTS = 240

# A grid point whose joint PIRLS is still iterating is given up as outside the explored
# region when, from the second Newton step on, its log density is already more than
# ABANDON_MARGIN below the threshold and the Newton decrement is below ABANDON_DECREMENT:
# the remaining steps moved it by at most 0.1 (largest change seen over the demo's five
# models and the 7,000-MSOA benchmark, 2,700 points, none misclassified), a tenth of the
# margin, and the point would be rejected after converging. About half of the points a
# grid evaluates lie outside; they no longer pay the last Newton steps and final factor.
ABANDON_MARGIN = 1.0
ABANDON_DECREMENT = 1e-2


class _LogPosterior:
    """:math:`-\\log\\tilde\\pi(\\psi \\mid y)` up to a constant, with warm starts."""

    def __init__(self, problem: LaplaceProblem, beta: np.ndarray, u: np.ndarray) -> None:
        self.problem = problem
        self.beta = beta
        self.u = u

    def evaluate(
        self,
        psi: np.ndarray,
        beta: np.ndarray | None = None,
        u: np.ndarray | None = None,
        tol: float = 1e-14,
        outside: float | None = None,
    ) -> tuple[float, PirlsResult]:
        """The value and the joint PIRLS result at ``psi``; ``inf`` for a point given up as
        lying beyond ``outside`` (see ABANDON_MARGIN)."""
        theta = np.exp(psi)
        log_prior = float(np.sum(np.log(SD_PRIOR_RATE) - SD_PRIOR_RATE * theta + psi))
        abandon: Callable[[float, float, float, float], bool] | None = None
        if outside is not None:
            limit = outside + ABANDON_MARGIN

            def beyond(loglik: float, uu: float, logdet: float, decrement: float) -> bool:
                return (
                    decrement < ABANDON_DECREMENT and -(loglik - 0.5 * uu - 0.5 * logdet + log_prior) > limit
                )

            abandon = beyond

        result = self.problem.pirls(
            theta,
            self.beta if beta is None else beta,
            self.u if u is None else u,
            joint=True,
            tol=tol,
            abandon=abandon,
        )
        if result.extra.get("abandoned"):
            return np.inf, result
        ll = result.loglik - 0.5 * float(result.u @ result.u) - 0.5 * result.extra["logdet_full"]
        return -(ll + log_prior), result

    def __call__(self, psi: np.ndarray) -> float:
        value, result = self.evaluate(psi)
        if result.converged:
            self.beta, self.u = result.beta, result.u
        return value


TARGET_GRID_POINTS = 150


def grid_step(dim: int, drop: float) -> float:
    r"""Lattice step in z so the explored ellipsoid holds about TARGET_GRID_POINTS points.

    The region :math:`\|z\|^2 \le 2\,\text{drop}` has volume
    :math:`\pi^{d/2} r^d / \Gamma(d/2 + 1)`; one or two SDs keep a fine 0.75 step.
    """
    if dim <= 2:
        return 0.75
    from math import gamma, pi

    radius = (2.0 * drop) ** 0.5
    volume = pi ** (dim / 2) * radius**dim / gamma(dim / 2 + 1)
    return float(max(1.0, (volume / TARGET_GRID_POINTS) ** (1.0 / dim)))


def sd_posterior_grid(fit: MultilevelFit) -> dict[str, Any]:
    """The grid over log-SDs: points, weights, and the Gaussian at each point."""
    data = fit.model.data.cells
    problem = LaplaceProblem(data)
    state = fit.state
    target = _LogPosterior(problem, state.beta.copy(), state.pirls.u.copy())
    # Centre the lattice at the Laplace estimate and orient it by the curvature of the
    # Laplace deviance there (in log-SD, plus the prior's): no separate mode search. The
    # exploration below moves to wherever the density is higher and keeps the points
    # within the threshold of the best one found.
    n_theta = state.theta.size
    theta_hat = np.clip(np.abs(state.theta), 1e-3, 20.0)
    mode = np.log(theta_hat)
    hessian = theta_hat[:, None] * (state.hessian[:n_theta, :n_theta] / 2.0) * theta_hat[None, :]
    hessian[np.diag_indices(n_theta)] += SD_PRIOR_RATE * theta_hat
    values, vectors = np.linalg.eigh(hessian)
    if not np.all(np.isfinite(values)):
        raise ModelError("the posterior of the log-SDs could not be evaluated around its mode")
    # Flat directions (an SD whose data say little, or a mode on the bound) get a unit
    # curvature floor: the grid then steps one unit of log-SD at a time there and the
    # exploration stops where the density has fallen by the threshold.
    values = np.maximum(values, 1.0)
    scale = vectors / np.sqrt(values)  # psi = mode + scale @ z
    dim = mode.size
    drop = log_density_drop(dim)
    step = grid_step(dim, drop)

    f_mode, first = target.evaluate(mode)
    points: dict[tuple[int, ...], tuple[float, PirlsResult]] = {(0,) * dim: (f_mode, first)}
    # Best first: expand the densest open point, so a cap on the number of points
    # trims the lowest densities. Grid values need ~1e-9 precision, not 1e-14.
    queue: list[tuple[float, tuple[int, ...]]] = [(0.0, (0,) * dim)]
    accepted = 1
    while queue and accepted < MAX_GRID_POINTS:
        _, key = heapq.heappop(queue)
        _, origin = points[key]
        for axis in range(dim):
            for direction in (-1, 1):
                nxt = list(key)
                nxt[axis] += direction
                nkey = tuple(nxt)
                if nkey in points:
                    continue
                psi = mode + scale @ (step * np.asarray(nkey, dtype=float))
                value, result = target.evaluate(psi, origin.beta, origin.u, tol=1e-9, outside=f_mode + drop)
                f_mode = min(f_mode, value) if np.isfinite(value) else f_mode
                if not np.isfinite(value) or value - f_mode > drop:
                    points[nkey] = (np.inf, result)  # outside: remember, do not expand
                    continue
                points[nkey] = (value, result)
                accepted += 1
                heapq.heappush(queue, (value - f_mode, nkey))
    best = min(v for v, _ in points.values())
    keys = [k for k, (v, _) in points.items() if np.isfinite(v) and v - best <= drop]
    log_w = np.array([-(points[k][0] - best) for k in keys])
    weights = np.exp(log_w - log_w.max())
    weights /= weights.sum()
    return {
        "mode": mode,
        "scale": scale,
        "step": step,
        "keys": np.asarray(keys, dtype=float),
        "weights": weights,
        "results": [points[k][1] for k in keys],
        "problem": problem,
        "f_best": best,
        "drop": drop,
    }


# With three or more SDs the lattice is coarse (a step of 1.1-2.5 prior SDs of log-SD): a weakly
# identified SD -- 19 ethnic groups with a handful of respondents each -- then takes 3-4
# values, and the effects drawn at those values are too narrow where the posterior of the SD
# is wide. There the lattice only locates the posterior: the support of the draws is
# SUPPORT_POINTS points sampled from a multivariate t (SUPPORT_DF degrees of freedom) with the
# lattice's mean and covariance (plus each cell's own spread), scaled by SUPPORT_INFLATE.
SUPPORT_MIN_DIM = 3
SUPPORT_POINTS = 256
SUPPORT_DF = 5.0
SUPPORT_INFLATE = 1.5
SUPPORT_MAX_LOG_SD = 5.0
MIN_SUPPORT_ESS = 10.0  # fewer effective support points than this: the lattice is used, with a warning


def sd_posterior_support(fit: MultilevelFit, rng: np.random.Generator) -> dict[str, Any]:
    r"""Support points of the log-SDs for the draws, their weights and Gaussians.

    One or two SDs: the lattice of :func:`sd_posterior_grid`, weights
    :math:`\propto\tilde\pi(\psi_k \mid y)`. Three or more: ``SUPPORT_POINTS``
    points :math:`\psi_j` from the t proposal :math:`q` fitted to the lattice, with
    self-normalised importance weights :math:`\propto\tilde\pi(\psi_j \mid y) / q(\psi_j)`
    (Monte Carlo integration over the SDs, so a draw's SDs take a continuum of values).
    Points with a log-SD above ``SUPPORT_MAX_LOG_SD``, or whose density is clearly
    below the lattice's region (more than ``2 * drop + ABANDON_MARGIN`` under its
    best point), get weight 0: a truncation of the far tails. With fewer than
    ``MIN_SUPPORT_ESS`` effective points (or none evaluated), the lattice is the
    support, with a warning.

    Parameters
    ----------
    fit : MultilevelFit
    rng : numpy.random.Generator
        Scrambles the Sobol points.

    Returns
    -------
    dict
        ``psi`` (points x SDs), ``weights``, ``results`` (the joint mode and Hessian
        factor at each point), ``log_q`` (the proposal's log density, 0 on a lattice),
        ``sampled``, and the lattice's entries (``problem``, ``keys``, ``step``, ...).
    """
    grid = sd_posterior_grid(fit)
    lattice = grid["mode"][None, :] + (grid["keys"] * grid["step"]) @ grid["scale"].T
    dim = lattice.shape[1]
    if dim < SUPPORT_MIN_DIM:
        return {**grid, "psi": lattice, "log_q": np.zeros(len(lattice)), "sampled": False}
    from scipy.special import gammaln, ndtri
    from scipy.stats import chi2, qmc

    w = grid["weights"]
    centre = w @ lattice
    spread = lattice - centre
    cell = (grid["step"] ** 2 / 12.0) * (grid["scale"] @ grid["scale"].T)  # uniform within a cell
    cov = (spread.T * w) @ spread + cell
    chol = np.linalg.cholesky(SUPPORT_INFLATE**2 * cov)
    # Scrambled Sobol points: d normals and one chi-square per point (a t is a normal over
    # the square root of a scaled chi-square).
    uniform = qmc.Sobol(dim + 1, scramble=True, seed=rng).random(SUPPORT_POINTS)
    uniform = np.clip(uniform, 1e-12, 1 - 1e-12)
    z = ndtri(uniform[:, :dim])
    scale = np.sqrt(chi2.ppf(uniform[:, dim], SUPPORT_DF) / SUPPORT_DF)
    psi = centre + (z / scale[:, None]) @ chol.T
    # log q(psi): multivariate t with location centre and scale matrix chol chol'
    standard = np.linalg.solve(chol, (psi - centre).T)
    quad = np.sum(standard**2, axis=0)
    log_q = (
        gammaln((SUPPORT_DF + dim) / 2)
        - gammaln(SUPPORT_DF / 2)
        - 0.5 * dim * np.log(SUPPORT_DF * np.pi)
        - float(np.sum(np.log(np.diag(chol))))
        - 0.5 * (SUPPORT_DF + dim) * np.log1p(quad / SUPPORT_DF)
    )
    # Each point starts from the nearest lattice point's mode (in the proposal's metric) and is
    # given up once it is clearly below the lattice's best density (ABANDON_MARGIN past it).
    problem = grid["problem"]
    state = fit.state
    target = _LogPosterior(problem, state.beta.copy(), state.pirls.u.copy())
    lattice_std = np.linalg.solve(chol, spread.T).T
    f_lattice = grid["f_best"]
    values = np.empty(SUPPORT_POINTS)
    results: list[PirlsResult] = []
    for j in range(SUPPORT_POINTS):
        nearest = int(np.argmin(np.sum((lattice_std - standard[:, j]) ** 2, axis=1)))
        origin = grid["results"][nearest]
        if np.any(psi[j] > SUPPORT_MAX_LOG_SD):
            values[j] = np.inf  # an SD of e^5 on the logit scale: no posterior mass here
            results.append(origin)
            continue
        try:
            value, result = target.evaluate(
                psi[j], origin.beta, origin.u, tol=1e-9, outside=f_lattice + 2.0 * grid["drop"]
            )
        except np.linalg.LinAlgError:  # the system is numerically singular this far out
            value, result = np.inf, origin
        values[j] = value
        results.append(result)
    if not np.isfinite(values).any():  # every point given up: keep the lattice's support
        warnings.warn(
            "no sampled support point of the SDs could be evaluated; the draws use the lattice's points",
            UnmetneedWarning,
            stacklevel=4,
        )
        return {**grid, "psi": lattice, "log_q": np.zeros(len(lattice)), "sampled": False}
    log_w = -(values - np.min(values[np.isfinite(values)])) - log_q  # -inf where given up
    weights = np.exp(log_w - np.max(log_w))
    weights /= weights.sum()
    support_ess = float(1.0 / np.sum(weights**2))
    if support_ess < MIN_SUPPORT_ESS:
        warnings.warn(
            f"the sampled support of the SDs is degenerate (effective size {support_ess:.1f} of "
            f"{SUPPORT_POINTS} points); the draws use the lattice's points instead",
            UnmetneedWarning,
            stacklevel=4,
        )
        return {**grid, "psi": lattice, "log_q": np.zeros(len(lattice)), "sampled": False}
    return {
        **grid,
        "psi": psi,
        "weights": weights,
        "results": results,
        "log_q": log_q,
        "sampled": True,
        "support_ess": support_ess,
    }


IMPORTANCE_OVERSAMPLE = 2  # proposals per returned draw
MIN_RELATIVE_ESS = 0.05  # below this share of the proposals, weights are not trusted


def _systematic_resample(weights: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    positions = (rng.random() + np.arange(n)) / n
    return np.minimum(np.searchsorted(np.cumsum(weights), positions), weights.size - 1)


def joint_draws(fit: MultilevelFit, n: int, seed: int | np.random.Generator | None) -> xr.Dataset:
    """Draws of ``beta``, ``sd`` and every factor's random intercepts (see module notes)."""
    if not isinstance(n, (int, np.integer)) or n < 1:
        raise ModelError(f"n={n!r} draws: give a positive integer")
    rng = resolve_rng(seed)
    with single_threaded_blas():
        grid = sd_posterior_support(fit, rng)
    data = fit.model.data
    cells = data.cells
    q, p = cells.q, cells.p
    groups = fit.model.formula.groups
    m = IMPORTANCE_OVERSAMPLE * int(n)
    choice = rng.choice(len(grid["weights"]), size=m, p=grid["weights"])
    psi_points = grid["psi"]
    psi = psi_points[choice]
    sd = np.exp(psi)
    offsets = cells.offsets
    sizes = np.diff(offsets)
    # Column of each random intercept's factor, to scale u to b = theta * u.
    factor_of = np.repeat(np.arange(len(groups)), sizes)
    b = np.empty((m, q))
    beta = np.empty((m, p))
    log_proposal = np.empty(m)
    with single_threaded_blas():
        for k in np.unique(choice):
            rows = np.flatnonzero(choice == k)
            result = grid["results"][k]
            # Factor of the Hessian of (u, beta): L L' = H (dense, or block Cholesky through
            # the Schur complement for many levels); L^-T eps ~ N(0, H^-1) either way.
            factor = result.extra["factor_full"]
            theta = np.exp(psi_points[k])
            to_b = np.concatenate([theta[factor_of], np.ones(p)])
            eps = rng.standard_normal((q + p, rows.size))
            sample = factor.sample(eps)
            centre = np.concatenate([result.u, result.beta])
            sample = (sample + centre[:, None]) * to_b[:, None]
            b[rows] = sample[:q].T
            beta[rows] = sample[q:].T
            # log density of the proposal: the grid point, then the Gaussian in (b, beta)
            log_proposal[rows] = (
                np.log(grid["weights"][k])
                + 0.5 * result.extra["logdet_full"]
                - 0.5 * np.sum(eps**2, axis=0)
                - float(sizes @ np.log(theta))
            )
    # Importance weights to the exact posterior on the grid, p(beta, b | psi_k, y) p(psi_k | y):
    # the Gaussian conditional and the Laplace marginal of the SDs are approximations (for
    # rare outcomes the conditional posterior is skewed and the Gaussian's mean of p is too high).
    with single_threaded_blas():
        loglik = grid["problem"].loglik_draws(beta, b)
    squares = np.stack(
        [np.sum(b[:, offsets[g] : offsets[g + 1]] ** 2, axis=1) for g in range(len(groups))], axis=1
    )
    log_target = (
        loglik
        - 0.5 * np.sum(squares / sd**2, axis=1)
        - psi @ sizes
        + np.sum(np.log(SD_PRIOR_RATE) - SD_PRIOR_RATE * sd + psi, axis=1)
        - grid["log_q"][choice]  # sampled support: the target on it is pi(psi_j | y) / q(psi_j)
    )
    log_w = log_target - log_proposal
    log_w = np.where(np.isfinite(log_w), log_w, -np.inf)
    weights = np.exp(log_w - np.max(log_w))
    weights /= weights.sum()
    ess = float(1.0 / np.sum(weights**2))
    if ess >= MIN_RELATIVE_ESS * m:
        keep = np.sort(_systematic_resample(weights, int(n), rng))
        corrected = True
    else:
        keep = np.arange(int(n))
        corrected = False
        warnings.warn(
            f"importance weights of the draws are degenerate (effective sample size {ess:.0f} of "
            f"{m} proposals); the draws keep the Gaussian (Laplace) approximation, uncorrected",
            UnmetneedWarning,
            stacklevel=3,
        )
    b, beta = b[keep], beta[keep]
    # On a lattice the reported SDs are spread uniformly over their grid cell (a continuous
    # marginal, used for the effects of levels without respondents); the draw's effects are its
    # grid point's. Sampled support points are already continuous: the SDs are the points'.
    if grid["sampled"]:
        sd = np.exp(psi[keep])
    else:
        jitter = rng.uniform(-0.5, 0.5, size=(int(n), len(groups))) * grid["step"]
        sd = np.exp(psi[keep] + jitter @ grid["scale"].T)
    variables: dict[str, Any] = {
        "beta": (("draw", "term"), beta),
        "sd": (("draw", "factor"), sd),
    }
    coords: dict[str, Any] = {
        "draw": np.arange(n),
        "term": data.terms,
        "factor": list(groups),
    }
    for g, group in enumerate(groups):
        level_dim = f"level_{group}"
        variables[f"re_{group}"] = (("draw", level_dim), b[:, offsets[g] : offsets[g + 1]])
        coords[level_dim] = np.asarray(data.levels[group], dtype=object)
    dataset = xr.Dataset(variables, coords=coords)
    dataset.attrs.update(
        {
            "method": (
                "log-SDs on points sampled from a t fitted to an INLA-style grid (importance "
                "weights Laplace posterior / proposal)"
                if grid["sampled"]
                else "INLA-style grid over log-SDs"
            )
            + " (Laplace-integrated u and beta); Gaussian (b, beta) at each point, "
            "importance-resampled to the exact posterior on the points; see unmetneed.mrp.draws",
            "sd_prior": f"exponential(rate={SD_PRIOR_RATE}) on each SD (rstanarm decov default)",
            "grid_points": len(grid["keys"]),
            "grid_step_z": float(grid["step"]),
            "sd_support_points": len(grid["weights"]),
            "sd_support_ess": float(grid.get("support_ess", 1.0 / np.sum(grid["weights"] ** 2))),
            "importance_proposals": m,
            "importance_ess": ess,
            "importance_resampled": corrected,
        }
    )
    return dataset
