"""Properties every Taylor-linearisation design estimate must have.

Random stratified (optionally clustered) designs from hypothesis; each
property states an identity of the estimators, not a value from elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

import unmetneed as um

MAX_EXAMPLES = 50
DOMAINS = ["a", "b", "c"]
CATEGORIES = ["x1", "x2", "x3"]

# Sums of up to a few hundred terms of size <= 1e3 * 1e2: rounding is far below these.
RTOL = 1e-9

finite_y = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False, width=64)
positive_w = st.floats(0.05, 100.0, allow_nan=False, allow_infinity=False, width=64)


@dataclass(frozen=True)
class DesignCase:
    df: pd.DataFrame
    clustered: bool
    stratified: bool

    def design(self, df: pd.DataFrame | None = None, **overrides: object) -> um.SurveyDesign:
        kwargs: dict[str, object] = {"weights": "w"}
        if self.stratified:
            kwargs["strata"] = "stratum"
        if self.clustered:
            kwargs["clusters"] = "psu"
            kwargs["nest"] = True
        kwargs.update(overrides)
        return um.SurveyDesign(self.df if df is None else df, **kwargs)


@st.composite
def design_cases(draw: st.DrawFn, clustered: bool | None = None) -> DesignCase:
    """1-4 strata of 2-5 PSUs each (never a lonely PSU), 1-4 rows per PSU."""
    is_clustered = draw(st.booleans()) if clustered is None else clustered
    n_strata = draw(st.integers(1, 4))
    stratum: list[str] = []
    psu: list[int] = []
    for h in range(n_strata):
        for j in range(draw(st.integers(2, 5))):
            size = draw(st.integers(1, 4)) if is_clustered else 1
            stratum += [f"h{h}"] * size
            psu += [j + 1] * size  # ids repeat across strata: nest=True
    n = len(stratum)
    df = pd.DataFrame(
        {
            "stratum": stratum,
            "psu": psu,
            "y": draw(st.lists(finite_y, min_size=n, max_size=n)),
            "x": draw(st.lists(positive_w, min_size=n, max_size=n)),
            "w": draw(st.lists(positive_w, min_size=n, max_size=n)),
            "dom": draw(st.lists(st.sampled_from(DOMAINS), min_size=n, max_size=n)),
            "cat": draw(st.lists(st.sampled_from(CATEGORIES), min_size=n, max_size=n)),
        }
    )
    return DesignCase(df=df, clustered=is_clustered, stratified=n_strata > 1)


def _scale_of(values: pd.Series | np.ndarray) -> float:
    """A magnitude for absolute tolerances where an estimate may be near zero."""
    return float(np.max(np.abs(np.asarray(values, dtype=np.float64)), initial=1.0))


@settings(max_examples=MAX_EXAMPLES, deadline=None)
@given(case=design_cases(), factor=st.floats(1e-3, 1e3, allow_nan=False))
def test_mean_invariant_to_weight_scale(case: DesignCase, factor: float) -> None:
    base = case.design().mean("y", by="dom").to_frame()
    scaled_df = case.df.assign(w=case.df["w"] * factor)
    scaled = case.design(scaled_df).mean("y", by="dom").to_frame()
    atol = RTOL * _scale_of(case.df["y"])
    np.testing.assert_allclose(scaled["estimate"], base["estimate"], rtol=RTOL, atol=atol)
    np.testing.assert_allclose(scaled["se"], base["se"], rtol=RTOL, atol=atol)


@settings(max_examples=MAX_EXAMPLES, deadline=None)
@given(case=design_cases(), seed=st.integers(0, 2**32 - 1))
def test_mean_invariant_to_row_order(case: DesignCase, seed: int) -> None:
    order = np.random.default_rng(seed).permutation(len(case.df))
    shuffled_df = case.df.iloc[order].reset_index(drop=True)
    atol = RTOL * _scale_of(case.df["y"])
    for by in (None, "dom"):
        base = case.design().mean("y", by=by).to_frame()
        shuffled = case.design(shuffled_df).mean("y", by=by).to_frame()
        np.testing.assert_allclose(shuffled["estimate"], base["estimate"], rtol=RTOL, atol=atol)
        np.testing.assert_allclose(shuffled["se"], base["se"], rtol=RTOL, atol=atol)
        np.testing.assert_array_equal(shuffled["n"], base["n"])


@settings(max_examples=MAX_EXAMPLES, deadline=None)
@given(case=design_cases(), factor=st.floats(1e-3, 1e3, allow_nan=False))
def test_total_scales_with_weights(case: DesignCase, factor: float) -> None:
    base = case.design().total("y", by="dom").to_frame()
    scaled_df = case.df.assign(w=case.df["w"] * factor)
    scaled = case.design(scaled_df).total("y", by="dom").to_frame()
    atol = RTOL * factor * _scale_of(case.df["y"] * case.df["w"]) * len(case.df)
    np.testing.assert_allclose(
        scaled["estimate"], factor * base["estimate"], rtol=RTOL, atol=atol
    )
    np.testing.assert_allclose(scaled["se"], factor * base["se"], rtol=RTOL, atol=atol)


@settings(max_examples=MAX_EXAMPLES, deadline=None)
@given(case=design_cases())
def test_standard_errors_are_non_negative(case: DesignCase) -> None:
    design = case.design()
    tables = [
        design.mean("y").to_frame(),
        design.mean("y", by="dom").to_frame(),
        design.total("y", by="dom").to_frame(),
        design.ratio("y", "x", by="dom").to_frame(),
        design.proportion("cat", by="dom").to_frame(),
    ]
    for table in tables:
        se = table["se"].to_numpy(dtype=np.float64)
        assert np.all(np.isfinite(se)), table
        assert np.all(se >= 0), table


@settings(max_examples=MAX_EXAMPLES, deadline=None)
@given(case=design_cases(clustered=False))
def test_census_has_zero_standard_error(case: DesignCase) -> None:
    """fpc = the stratum's number of units: every unit sampled, nothing to estimate."""
    counts = case.df.groupby("stratum")["stratum"].transform("size").astype(np.float64)
    census_df = case.df.assign(fpc=counts)
    design = um.SurveyDesign(
        census_df, weights="w", strata="stratum" if case.stratified else None, fpc="fpc"
    )
    for table in (
        design.mean("y").to_frame(),
        design.total("y").to_frame(),
        design.mean("y", by="dom").to_frame(),
        design.total("y", by="dom").to_frame(),
        design.proportion("cat").to_frame(),
    ):
        np.testing.assert_array_equal(table["se"].to_numpy(dtype=np.float64), 0.0)


@settings(max_examples=MAX_EXAMPLES, deadline=None)
@given(case=design_cases())
def test_domain_totals_add_up_to_overall_total(case: DesignCase) -> None:
    design = case.design()
    overall = design.total("y").to_frame()["estimate"].iloc[0]
    by_domain = design.total("y", by="dom").to_frame()["estimate"].sum()
    atol = RTOL * _scale_of(case.df["y"] * case.df["w"]) * len(case.df)
    np.testing.assert_allclose(by_domain, overall, rtol=RTOL, atol=atol)


@settings(max_examples=MAX_EXAMPLES, deadline=None)
@given(case=design_cases())
def test_proportions_by_domain_sum_to_one(case: DesignCase) -> None:
    table = case.design().proportion("cat", by="dom").to_frame()
    sums = table.groupby("dom", observed=True)["estimate"].sum()
    assert sorted(sums.index.astype(str)) == sorted(case.df["dom"].unique())
    np.testing.assert_allclose(sums.to_numpy(), 1.0, rtol=0.0, atol=1e-12)
