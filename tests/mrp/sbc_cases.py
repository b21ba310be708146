"""Simulation-based calibration (Talts et al. 2018) of ``MultilevelFit.draws``.

Each replicate draws the parameters from the model's prior -- every SD from
the exponential(1) prior the draws use, the fixed effects from a normal that
is wide against their posterior (the draws use a flat prior, so the data must
dominate it) -- then the data, fits the model and takes ``L`` draws. If the
draws come from the posterior, the rank of the true value among them is
uniform on ``0..L`` for every parameter and any function of them.

Shared by ``tests/mrp/test_sbc.py`` (a few hundred replicates) and
``benchmarks/sbc.py`` (more, written to RESULTS.md).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

import unmetneed as um


@dataclass(frozen=True)
class Case:
    """A model to calibrate: crossed factors, their sizes and the sample."""

    name: str
    levels: tuple[int, ...]  # levels per factor
    respondents: int
    tiny_factor: int | None = None  # this factor's levels get very unequal sizes
    intercept: tuple[float, float] = (-1.0, 0.5)  # prior mean and SD of the intercept
    slope_sd: float = 0.5


CASES = (
    Case("two factors", levels=(10, 6), respondents=800),
    Case("three factors, tiny levels", levels=(12, 8, 10), respondents=1000, tiny_factor=2),
    Case("four factors, tiny levels", levels=(20, 8, 3, 12), respondents=1500, tiny_factor=3),
    # the care chain's shape: six SDs (the draws' support is sampled, not a lattice), one of
    # them 19 levels with 0-3 respondents for the smallest
    Case("six factors, tiny levels", levels=(30, 8, 5, 19, 3, 24), respondents=3000, tiny_factor=3),
)


def level_shares(n_levels: int, tiny: bool) -> np.ndarray:
    """Sampling shares of a factor's levels; with ``tiny`` a third get 0-3 respondents."""
    if not tiny:
        return np.full(n_levels, 1.0 / n_levels)
    shares = np.geomspace(1.0, 1e-3, n_levels)
    return shares / shares.sum()


def simulate(case: Case, rng: np.random.Generator) -> tuple[pd.DataFrame, dict[str, float]]:
    """One data set and the true value of every tracked quantity."""
    k = len(case.levels)
    sd = rng.exponential(1.0, size=k)
    intercept = rng.normal(*case.intercept)
    slope = rng.normal(0.0, case.slope_sd)
    effects = [rng.normal(0.0, s, size=n) for s, n in zip(sd, case.levels, strict=True)]
    n = case.respondents
    codes = [rng.choice(levels, size=n, p=level_shares(levels, g == case.tiny_factor))
             for g, levels in enumerate(case.levels)]
    x = rng.normal(size=n)
    eta = intercept + slope * x + sum(e[c] for e, c in zip(effects, codes, strict=True))
    y = rng.binomial(1, 1.0 / (1.0 + np.exp(-eta)))
    columns: dict[str, object] = {"y": y, "x": x}
    for g, (c, levels) in enumerate(zip(codes, case.levels, strict=True)):
        names = [f"L{j:02d}" for j in range(levels)]
        columns[f"g{g}"] = pd.Categorical(np.asarray(names)[c], categories=names)
    truth = {"Intercept": intercept, "x": slope}
    for g in range(k):
        truth[f"sd g{g}"] = sd[g]
        truth[f"u g{g} L00"] = effects[g][0]
        last = case.levels[g] - 1
        truth[f"u g{g} L{last:02d}"] = effects[g][last]
    # A cell prevalence: level 0 of every factor (the largest) at x = 0, and the same
    # with the smallest level of each factor.
    truth["p cell first"] = float(1 / (1 + np.exp(-(intercept + sum(e[0] for e in effects)))))
    truth["p cell last"] = float(1 / (1 + np.exp(-(intercept + sum(e[-1] for e in effects)))))
    return pd.DataFrame(columns), truth


def level_draws(re: object, level: str, sd: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A level's effect; a level without respondents draws it from N(0, sd^2), as poststratify does."""
    dim = re.dims[1]  # type: ignore[attr-defined]
    if level in set(re[dim].values.tolist()):  # type: ignore[index]
        return re.sel({dim: level}).values  # type: ignore[attr-defined]
    return rng.normal(0.0, 1.0, size=sd.size) * sd


def posterior(case: Case, data: pd.DataFrame, n_draws: int, seed: int) -> dict[str, np.ndarray]:
    """Draws of every tracked quantity from ``MultilevelModel(...).fit().draws``."""
    k = len(case.levels)
    formula = "y ~ x + " + " + ".join(f"(1|g{g})" for g in range(k))
    rng = np.random.default_rng(seed + 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # singular fits are expected when an SD is near 0
        draws = um.MultilevelModel(formula, data=data).fit().draws(n_draws, seed=seed)
    out = {"Intercept": draws["beta"].sel(term="Intercept").values,
           "x": draws["beta"].sel(term="x").values}
    eta_first = out["Intercept"].copy()
    eta_last = out["Intercept"].copy()
    for g in range(k):
        re = draws[f"re_g{g}"]
        out[f"sd g{g}"] = draws["sd"].sel(factor=f"g{g}").values
        first = level_draws(re, "L00", out[f"sd g{g}"], rng)
        last = level_draws(re, f"L{case.levels[g] - 1:02d}", out[f"sd g{g}"], rng)
        out[f"u g{g} L00"] = first
        out[f"u g{g} L{case.levels[g] - 1:02d}"] = last
        eta_first = eta_first + first
        eta_last = eta_last + last
    out["p cell first"] = 1 / (1 + np.exp(-eta_first))
    out["p cell last"] = 1 / (1 + np.exp(-eta_last))
    return out


def ranks(case: Case, replicates: int, n_draws: int, seed: int) -> pd.DataFrame:
    """Rank (0..n_draws) of each true value among its draws, one row per replicate."""
    rng = np.random.default_rng(seed)
    rows = []
    refused = 0
    for r in range(replicates):
        while True:
            data, truth = simulate(case, rng)
            try:
                draws = posterior(case, data, n_draws, seed=int(rng.integers(2**31)))
                break
            except um.errors.ModelError:
                # A data set the model refuses (separation, a singular fit): counted and
                # reported, never ranked. Rare with these priors; many would bias the ranks.
                refused += 1
        # Ties (an SD draw equal to the truth) are broken at random, as SBC requires.
        rows.append({name: int(np.sum(draws[name] < value)
                               + rng.integers(0, np.sum(draws[name] == value) + 1))
                     for name, value in truth.items()} | {"replicate": r})
    table = pd.DataFrame(rows).set_index("replicate")
    table.attrs["refused"] = refused
    return table


def uniformity(rank_table: pd.DataFrame, n_draws: int, bins: int = 10) -> pd.DataFrame:
    """Chi-square test of uniform ranks per quantity, and the mean scaled rank."""
    out = []
    for name in rank_table.columns:
        r = rank_table[name].to_numpy()
        counts = np.bincount(np.minimum(r * bins // (n_draws + 1), bins - 1), minlength=bins)
        expected = r.size / bins
        chi2 = float(((counts - expected) ** 2 / expected).sum())
        out.append({"quantity": name, "replicates": r.size,
                    "mean_rank": float(r.mean() / n_draws), "chi2": chi2,
                    "p_value": float(stats.chi2.sf(chi2, bins - 1)),
                    "share_in_outer_10pct": float(np.mean((r < 0.05 * n_draws) | (r > 0.95 * n_draws))),
                    "bin_counts": counts.tolist()})
    return pd.DataFrame(out)
