"""Properties of the design-based analysis functions (quantiles, subsets, contrasts).

Random stratified, clustered designs from hypothesis. Weights are whole
numbers so that cumulative weights are exact in any row order, and weights are
scaled by powers of two (exact in floating point): the quantile rules compare
cumulative weights with p times the total exactly, as R does, so these
properties hold exactly rather than up to rounding at ties.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

import unmetneed as um
from unmetneed.errors import UnmetneedWarning

MAX_EXAMPLES = 40
RTOL = 1e-9
DOMAINS = ["a", "b", "c"]
RULES = ["math", "school", "shahvaish", "hf1", "hf2", "hf3", "hf4", "hf5", "hf6", "hf7", "hf8", "hf9"]
# R's Shah-Vaish positions (S + 0.5 - w/2)/(n + 1) use the raw weights w, not the
# normalised ones, so they depend on the weights' scale and, with unequal
# weights, need not increase with x (approx() then sorts them): the rule is
# neither scale invariant nor monotone in q, in R as here.
MONOTONE_RULES = [r for r in RULES if r != "shahvaish"]


@st.composite
def frames(draw: st.DrawFn) -> pd.DataFrame:
    """2-3 strata of 2-4 PSUs with 1-4 rows; every domain present."""
    stratum: list[str] = []
    psu: list[int] = []
    for h in range(draw(st.integers(2, 3))):
        for j in range(draw(st.integers(2, 4))):
            size = draw(st.integers(1, 4))
            stratum += [f"h{h}"] * size
            psu += [j + 1] * size
    n = len(stratum)
    dom = draw(st.lists(st.sampled_from(DOMAINS), min_size=n, max_size=n))
    dom[:3] = DOMAINS
    return pd.DataFrame(
        {
            "stratum": stratum,
            "psu": psu,
            "y": draw(st.lists(st.integers(-50, 50), min_size=n, max_size=n)),
            "w": draw(st.lists(st.integers(1, 40), min_size=n, max_size=n)),
            "dom": dom,
        }
    ).astype({"y": float, "w": float})


def _design(df: pd.DataFrame) -> um.SurveyDesign:
    return um.SurveyDesign(df, weights="w", strata="stratum", clusters="psu", nest=True)


@settings(max_examples=MAX_EXAMPLES, deadline=None)
@given(
    df=frames(),
    rule=st.sampled_from(MONOTONE_RULES),
    q=st.lists(st.floats(0.01, 0.99), min_size=2, max_size=5),
)
def test_quantiles_monotone_in_q(df: pd.DataFrame, rule: str, q: list[float]) -> None:
    q = sorted(q)
    est = _design(df).quantile("y", q=q, rule=rule, by="dom").to_frame()
    for _, group in est.groupby("dom", observed=True):
        values = group.sort_values("quantile")["estimate"].to_numpy()
        values = values[~np.isnan(values)]  # hf4, hf7: undefined in a one-row domain, as R
        assert np.all(np.diff(values) >= -1e-12 * max(1.0, np.abs(values).max(initial=0.0)))


@settings(max_examples=MAX_EXAMPLES, deadline=None)
@given(df=frames(), rule=st.sampled_from(RULES), seed=st.integers(0, 2**32 - 1))
def test_quantiles_invariant_to_row_order(df: pd.DataFrame, rule: str, seed: int) -> None:
    # Interpolating rules place tied values by their order (R's stable order(x)),
    # so tied values with unequal weights depend on row order in R too: untie them.
    df = df.assign(y=df["y"] + np.arange(len(df)) / 1024)
    order = np.random.default_rng(seed).permutation(len(df))
    shuffled = df.iloc[order].reset_index(drop=True)
    q = (0.1, 0.25, 0.5, 0.9)
    base = _design(df).quantile("y", q=q, rule=rule, by="dom").to_frame()
    other = _design(shuffled).quantile("y", q=q, rule=rule, by="dom").to_frame()
    np.testing.assert_allclose(
        other["estimate"], base["estimate"], rtol=1e-12, atol=1e-12, equal_nan=True
    )


@settings(max_examples=MAX_EXAMPLES, deadline=None)
@given(df=frames(), rule=st.sampled_from(MONOTONE_RULES), power=st.integers(-10, 10))
def test_quantiles_invariant_to_weight_scale(df: pd.DataFrame, rule: str, power: int) -> None:
    q = (0.1, 0.25, 0.5, 0.9)
    base = _design(df).quantile("y", q=q, rule=rule, by="dom").to_frame()
    scaled = _design(df.assign(w=df["w"] * 2.0**power)).quantile("y", q=q, rule=rule, by="dom")
    np.testing.assert_allclose(
        scaled.to_frame()["estimate"], base["estimate"], rtol=1e-12, atol=1e-12, equal_nan=True
    )


@settings(max_examples=MAX_EXAMPLES, deadline=None)
@given(df=frames(), domain=st.sampled_from(DOMAINS), replicate=st.booleans())
def test_subset_mean_equals_domain_mean(df: pd.DataFrame, domain: str, replicate: bool) -> None:
    design = _design(df)
    if replicate:
        design = design.replicate("jkn")
    with warnings.catch_warnings():
        # a domain absent from a replicate: R's NaN-replicate warning
        warnings.simplefilter("ignore", UnmetneedWarning)
        by = design.mean("y", by="dom").to_frame().set_index("dom")
        sub = design.subset(df["dom"] == domain).mean("y").to_frame()
    scale = max(1.0, float(np.abs(df["y"]).max()))
    np.testing.assert_allclose(sub["estimate"], [by.loc[domain, "estimate"]], rtol=RTOL, atol=RTOL * scale)
    np.testing.assert_allclose(sub["se"], [by.loc[domain, "se"]], rtol=RTOL, atol=RTOL * scale)


@settings(max_examples=MAX_EXAMPLES, deadline=None)
@given(df=frames(), domain=st.sampled_from(DOMAINS), replicate=st.booleans())
def test_contrast_of_one_row_is_that_row(df: pd.DataFrame, domain: str, replicate: bool) -> None:
    design = _design(df)
    if replicate:
        design = design.replicate("jkn")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnmetneedWarning)
        est = design.mean("y", by="dom")
        row = est.to_frame().set_index("dom").loc[domain]
        con = est.contrast({"only": {domain: 1.0}}).to_frame()
    scale = max(1.0, float(np.abs(df["y"]).max()))
    np.testing.assert_allclose(con["estimate"], [row["estimate"]], rtol=RTOL, atol=RTOL * scale)
    np.testing.assert_allclose(con["se"], [row["se"]], rtol=RTOL, atol=RTOL * scale)
