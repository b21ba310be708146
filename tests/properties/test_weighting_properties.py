"""Properties raking, calibration and post-stratification must have.

Random samples from hypothesis: two or three categorical margin variables,
positive design weights, and population totals that some strictly positive
re-weighting of the same rows reaches exactly (totals under
``v_i = w_i exp(e_i)``), so every raking/calibration problem here has a
solution. Each property is an identity of the methods, not a value from
elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

import unmetneed as um

MAX_EXAMPLES = 30
TOL = 1e-12  # convergence tolerance asked of the solvers
MAX_ITER = 10_000
# Margin fit is judged on the solver's own relative error; recomputing totals
# from the weights adds a few ulps of summation error.
FIT_RTOL = 1e-11
# Two different algorithms (IPF, Newton), each converged to 1e-12 on the margins:
# their weights agree to well within DESIGN.md's 1e-8 for weights.
CROSS_METHOD_RTOL = 1e-8


@dataclass(frozen=True)
class Sample:
    df: pd.DataFrame
    variables: tuple[str, ...]
    targets: np.ndarray  # (n,) a positive weighting that meets the margins

    def design(self, df: pd.DataFrame | None = None) -> um.SurveyDesign:
        return um.SurveyDesign(self.df if df is None else df, weights="w")

    def margin(self, variable: str | tuple[str, ...]) -> pd.Series:
        names = [variable] if isinstance(variable, str) else list(variable)
        frame = self.df[names].assign(_t=self.targets)
        totals = frame.groupby(names, sort=True)["_t"].sum()
        return totals.rename(None)

    def margins(self, *extra: str) -> um.Margins:
        entries: dict[str | tuple[str, ...], pd.Series | float] = {
            v: self.margin(v) for v in self.variables
        }
        for column in extra:
            entries[column] = float(self.targets @ self.df[column].to_numpy())
        return um.Margins(entries)


@st.composite
def samples(draw: st.DrawFn, n_variables: int | None = None) -> Sample:
    """20-80 rows; 2-3 variables of 2-4 categories, every category present."""
    k = draw(st.integers(2, 3)) if n_variables is None else n_variables
    sizes = [draw(st.integers(2, 4)) for _ in range(k)]
    n = draw(st.integers(20, 80))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    columns: dict[str, object] = {}
    variables = tuple(f"v{j}" for j in range(k))
    for name, size in zip(variables, sizes, strict=True):
        codes = rng.integers(0, size, n)
        codes[:size] = np.arange(size)  # every category has respondents
        rng.shuffle(codes)
        columns[name] = np.array([f"{name}_{c}" for c in codes])
    w = np.round(rng.uniform(0.5, 5.0, n), 3)
    columns["w"] = w
    columns["x"] = np.round(rng.uniform(1.0, 10.0, n), 3)
    columns["y"] = rng.normal(0.0, 1.0, n)
    df = pd.DataFrame(columns)
    scale = draw(st.sampled_from([1.0, 10.0, 1000.0]))
    targets = scale * w * np.exp(rng.uniform(-0.7, 0.7, n))
    return Sample(df, variables, targets)


def _achieved_error(sample: Sample, weights: np.ndarray, margins: um.Margins) -> float:
    worst = 0.0
    for key in margins:
        target = margins[key]
        if isinstance(target, pd.Series):
            names = [key] if isinstance(key, str) else list(key)
            got = sample.df[names].assign(_w=weights).groupby(names, sort=True)["_w"].sum()
            got = got.reindex(target.index)
            worst = max(worst, float(np.max(np.abs(got - target) / target)))
        else:
            got_total = float(weights @ sample.df[key].to_numpy())
            worst = max(worst, abs(got_total - target) / abs(target))
    return worst


@settings(max_examples=MAX_EXAMPLES, deadline=None)
@given(samples())
def test_raking_meets_every_margin(sample: Sample) -> None:
    margins = sample.margins()
    result = um.rake(sample.design(), margins, tol=TOL, max_iter=MAX_ITER)
    assert result.report.converged
    assert result.report.max_rel_error <= TOL
    fit = result.report.margin_fit["rel_error_after"].to_numpy(dtype=np.float64)
    assert np.abs(fit).max() <= TOL
    assert _achieved_error(sample, result.design.weights, margins) <= FIT_RTOL


@settings(max_examples=MAX_EXAMPLES, deadline=None)
@given(samples(), st.integers(0, 2**32 - 1))
def test_raking_is_invariant_to_row_order(sample: Sample, seed: int) -> None:
    margins = sample.margins()
    order = np.random.default_rng(seed).permutation(len(sample.df))
    shuffled = sample.df.iloc[order].reset_index(drop=True)
    original = um.rake(sample.design(), margins, tol=TOL, max_iter=MAX_ITER).design.weights
    permuted = um.rake(sample.design(shuffled), margins, tol=TOL, max_iter=MAX_ITER).design.weights
    np.testing.assert_allclose(permuted, original[order], rtol=1e-10, atol=0.0)


@settings(max_examples=MAX_EXAMPLES, deadline=None)
@given(samples(), st.sampled_from([0.01, 3.0, 1e4]))
def test_raking_is_invariant_to_weight_scale(sample: Sample, factor: float) -> None:
    margins = sample.margins()
    scaled = sample.df.assign(w=sample.df["w"] * factor)
    base = um.rake(sample.design(), margins, tol=TOL, max_iter=MAX_ITER).design.weights
    other = um.rake(sample.design(scaled), margins, tol=TOL, max_iter=MAX_ITER).design.weights
    np.testing.assert_allclose(other, base, rtol=1e-10, atol=0.0)


@settings(max_examples=MAX_EXAMPLES, deadline=None)
@given(samples())
def test_raking_weights_that_already_match_leaves_them_unchanged(sample: Sample) -> None:
    """Weights equal to the targets' weighting already meet the margins."""
    matched = sample.df.assign(w=sample.targets)
    result = um.rake(sample.design(matched), sample.margins(), tol=TOL, max_iter=MAX_ITER)
    np.testing.assert_allclose(result.design.weights, sample.targets, rtol=1e-12, atol=0.0)
    assert result.report.converged


@settings(max_examples=MAX_EXAMPLES, deadline=None)
@given(samples(), st.sampled_from(["linear", "raking"]))
def test_calibrated_totals_equal_targets(sample: Sample, method: str) -> None:
    """Categorical margins and the numeric auxiliary x are met."""
    margins = sample.margins("x")
    result = um.calibrate(sample.design(), margins, method=method, tol=TOL, max_iter=MAX_ITER)
    assert result.report.converged
    assert _achieved_error(sample, result.design.weights, margins) <= FIT_RTOL
    total_x = result.design.total("x").estimate.iloc[0]
    np.testing.assert_allclose(total_x, margins["x"], rtol=FIT_RTOL)


@settings(max_examples=MAX_EXAMPLES, deadline=None)
@given(samples())
def test_rake_equals_calibrate_raking(sample: Sample) -> None:
    """IPF and Newton on the raking distance reach the same weights."""
    margins = sample.margins()
    raked = um.rake(sample.design(), margins, tol=TOL, max_iter=MAX_ITER).design.weights
    calibrated = um.calibrate(
        sample.design(), margins, method="raking", tol=TOL, max_iter=MAX_ITER
    ).design.weights
    np.testing.assert_allclose(calibrated, raked, rtol=CROSS_METHOD_RTOL, atol=0.0)


@settings(max_examples=MAX_EXAMPLES, deadline=None)
@given(samples(), st.booleans())
def test_poststratify_equals_rake_with_one_margin(sample: Sample, cross: bool) -> None:
    # a cross uses the cells present in the sample (each has respondents)
    key: str | tuple[str, ...] = sample.variables[:2] if cross else sample.variables[0]
    margin = sample.margin(key)
    margins = um.Margins({key: margin})
    post = um.poststratify(sample.design(), margins).design.weights
    raked = um.rake(sample.design(), margins, tol=TOL, max_iter=MAX_ITER).design.weights
    np.testing.assert_allclose(post, raked, rtol=1e-12, atol=0.0)
    assert _achieved_error(sample, post, margins) <= FIT_RTOL


@settings(max_examples=MAX_EXAMPLES // 2, deadline=None)
@given(samples(n_variables=2))
def test_raking_a_replicate_design_rakes_every_replicate(sample: Sample) -> None:
    """Each replicate's weights meet the margins, as R's rake on svyrep.design.

    Rows of a (v0, v1) cell are spread over several PSUs and cells with one
    row are left out, so deleting any PSU leaves every cell occupied: each
    jackknife replicate then has a positive solution.
    """
    cell = sample.df.groupby(list(sample.variables), sort=False)
    keep = (cell["w"].transform("size") >= 2).to_numpy()
    df = sample.df.loc[keep].reset_index(drop=True)
    df["psu"] = df.groupby(list(sample.variables), sort=False).cumcount() % 5
    sub = Sample(df, sample.variables, sample.targets[keep])
    design = um.SurveyDesign(df, weights="w", clusters="psu").replicate("jk1")
    margins = sub.margins()
    result = um.rake(design, margins, tol=TOL, max_iter=MAX_ITER)
    assert result.report.converged
    replicates = np.asarray(result.design.replicate_weights)
    assert replicates.shape[1] == df["psu"].nunique()
    for r in range(replicates.shape[1]):
        assert _achieved_error(sub, replicates[:, r], margins) <= FIT_RTOL
