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
3. A draw picks a grid point by weight, jitters :math:`z` uniformly within
   the point's cell (so SD draws are continuous), and draws
   :math:`(u, \beta) \sim N((\hat u, \hat\beta), H_{(u,\beta)}^{-1})` at that
   point; random intercepts are :math:`b_g = \theta_g u_g`.

The result integrates over the uncertainty in the SDs rather than fixing them
at their estimates; compare with ``rstanarm`` in ``tests/reference/mrp/``.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any

import numpy as np
import xarray as xr
from scipy import linalg, optimize

from unmetneed._blas import single_threaded_blas
from unmetneed._validate import resolve_rng
from unmetneed.errors import ModelError
from unmetneed.mrp.fitting import numerical_hessian
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
MAX_GRID_POINTS = 600


class _LogPosterior:
    """:math:`-\\log\\tilde\\pi(\\psi \\mid y)` up to a constant, with warm starts."""

    def __init__(self, problem: LaplaceProblem, beta: np.ndarray, u: np.ndarray) -> None:
        self.problem = problem
        self.beta = beta
        self.u = u

    def evaluate(self, psi: np.ndarray, beta: np.ndarray | None = None,
                 u: np.ndarray | None = None) -> tuple[float, PirlsResult]:
        theta = np.exp(psi)
        result = self.problem.pirls(theta, self.beta if beta is None else beta,
                                    self.u if u is None else u, joint=True)
        ll = result.loglik - 0.5 * float(result.u @ result.u) - 0.5 * result.extra["logdet_full"]
        log_prior = float(np.sum(np.log(SD_PRIOR_RATE) - SD_PRIOR_RATE * theta + psi))
        return -(ll + log_prior), result

    def __call__(self, psi: np.ndarray) -> float:
        value, result = self.evaluate(psi)
        if result.converged:
            self.beta, self.u = result.beta, result.u
        return value


def sd_posterior_grid(fit: MultilevelFit) -> dict[str, Any]:
    """The grid over log-SDs: points, weights, and the Gaussian at each point."""
    data = fit.model.data.cells
    problem = LaplaceProblem(data)
    state = fit._state  # noqa: SLF001 - the fit owns its optimiser state
    target = _LogPosterior(problem, state.beta.copy(), state.pirls.u.copy())
    start = np.log(np.maximum(np.abs(state.theta), 0.05))
    h = 1e-5

    def gradient(x: np.ndarray) -> np.ndarray:
        g = np.empty_like(x)
        for i in range(x.size):
            e = np.zeros_like(x)
            e[i] = h
            g[i] = (target(x + e) - target(x - e)) / (2 * h)
        return g

    # The mode of the log-SDs, bounded to SDs in [1e-3, 20]: with an SD estimated at zero
    # the likelihood is flat below and the prior (with its Jacobian) shapes that side.
    bounds = [(np.log(1e-3), np.log(20.0))] * start.size
    start = np.clip(start, bounds[0][0], bounds[0][1])
    found = optimize.minimize(target, start, jac=gradient, method="L-BFGS-B", bounds=bounds,
                              options={"ftol": 1e-12, "gtol": 1e-6, "maxiter": 200})
    mode = found.x
    hessian = numerical_hessian(target, mode, step=1e-3)
    values, vectors = np.linalg.eigh(hessian)
    if not np.all(np.isfinite(values)):
        raise ModelError("the posterior of the log-SDs could not be evaluated around its mode")
    # Flat directions (an SD whose data say little, or a mode on the bound) get a unit
    # curvature floor: the grid then steps one unit of log-SD at a time there and the
    # exploration stops where the density has fallen by the threshold.
    values = np.maximum(values, 1.0)
    scale = vectors / np.sqrt(values)  # psi = mode + scale @ z
    dim = mode.size
    step = 1.0 if dim >= 3 else 0.75
    drop = log_density_drop(dim)

    f_mode, first = target.evaluate(mode)
    points: dict[tuple[int, ...], tuple[float, PirlsResult]] = {(0,) * dim: (f_mode, first)}
    queue: deque[tuple[int, ...]] = deque([(0,) * dim])
    while queue and len(points) < MAX_GRID_POINTS:
        key = queue.popleft()
        _, origin = points[key]
        for axis in range(dim):
            for direction in (-1, 1):
                nxt = list(key)
                nxt[axis] += direction
                nkey = tuple(nxt)
                if nkey in points:
                    continue
                psi = mode + scale @ (step * np.asarray(nkey, dtype=float))
                value, result = target.evaluate(psi, origin.beta, origin.u)
                if not np.isfinite(value) or value - f_mode > drop:
                    points[nkey] = (np.inf, result)  # outside: remember, do not expand
                    continue
                points[nkey] = (value, result)
                queue.append(nkey)
    keys = [k for k, (v, _) in points.items() if np.isfinite(v)]
    log_w = np.array([-(points[k][0] - f_mode) for k in keys])
    weights = np.exp(log_w - log_w.max())
    weights /= weights.sum()
    return {
        "mode": mode,
        "scale": scale,
        "step": step,
        "keys": np.asarray(keys, dtype=float),
        "weights": weights,
        "results": [points[k][1] for k in keys],
    }


def joint_draws(fit: MultilevelFit, n: int, seed: int | np.random.Generator | None) -> xr.Dataset:
    """Draws of ``beta``, ``sd`` and every factor's random intercepts (see module notes)."""
    if not isinstance(n, (int, np.integer)) or n < 1:
        raise ModelError(f"n={n!r} draws: give a positive integer")
    rng = resolve_rng(seed)
    with single_threaded_blas():
        grid = sd_posterior_grid(fit)
    data = fit.model.data
    cells = data.cells
    q, p = cells.q, cells.p
    groups = fit.model.formula.groups
    choice = rng.choice(len(grid["weights"]), size=n, p=grid["weights"])
    jitter = rng.uniform(-0.5, 0.5, size=(n, len(groups))) * grid["step"]
    z = grid["keys"][choice] * grid["step"] + jitter
    sd = np.exp(grid["mode"][None, :] + z @ grid["scale"].T)
    u = np.empty((n, q))
    beta = np.empty((n, p))
    with single_threaded_blas():
        for k in np.unique(choice):
            rows = np.flatnonzero(choice == k)
            result = grid["results"][k]
            chol = result.extra["chol_full"]
            eps = rng.standard_normal((q + p, rows.size))
            sample = linalg.solve_triangular(chol.T, eps, lower=False, check_finite=False)
            centre = np.concatenate([result.u, result.beta])
            sample = sample + centre[:, None]
            u[rows] = sample[:q].T
            beta[rows] = sample[q:].T
    offsets = cells.offsets
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
        variables[f"re_{group}"] = (("draw", level_dim), sd[:, [g]] * u[:, offsets[g]:offsets[g + 1]])
        coords[level_dim] = np.asarray(data.levels[group], dtype=object)
    dataset = xr.Dataset(variables, coords=coords)
    dataset.attrs.update(
        {
            "method": "INLA-style grid over log-SDs (Laplace-integrated u and beta), Gaussian "
                      "(u, beta) given the SDs; see unmetneed.mrp.draws",
            "sd_prior": f"exponential(rate={SD_PRIOR_RATE}) on each SD (rstanarm decov default)",
            "grid_points": int(len(grid["weights"])),
            "grid_step_z": float(grid["step"]),
        }
    )
    return dataset
