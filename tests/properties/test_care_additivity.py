"""Hypothesis: the four parts add up to need in every draw, whatever the data."""

from __future__ import annotations

import warnings

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import unmetneed as um
from unmetneed.errors import UnmetneedWarning
from unmetneed.estimates import PARTS


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), scale=st.floats(0.5, 3.0))
def test_parts_add_up_to_need(seed: int, scale: float) -> None:
    from tests.estimates.conftest import FORMULAS, simulate_frame, simulate_survey

    survey = simulate_survey(n=1500, seed=seed)
    frame = simulate_frame()
    cells = frame.cells.assign(count=frame.cells["count"] * scale)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnmetneedWarning)
        est = um.estimate_care_populations(um.PopulationFrame(cells), survey, formulas=FORMULAS,
                                           by="age_band", draws=50, seed=seed)
    d = est.draws
    np.testing.assert_allclose(sum(d[p] for p in PARTS).values, d["need"].values, rtol=1e-11)
    assert (d["insufficient"] <= d["need"] - d["unmet"] + 1e-9).all()
