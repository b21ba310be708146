"""The draws' grid gives up on points clearly outside its region without changing it.

``unmetneed.mrp.draws`` stops a grid point's PIRLS early when, after a Newton step,
its log density is already ``ABANDON_MARGIN`` beyond the threshold with a small
Newton decrement (``ABANDON_DECREMENT``). The grid it builds must be the one
it builds when every point is iterated to convergence: the same points, weights
and draws, bit for bit.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import unmetneed as um
from unmetneed.mrp import draws as draws_module
from unmetneed.mrp import laplace


def _fit() -> um.MultilevelFit:
    survey = um.datasets.load_example_survey()
    model = um.MultilevelModel("need ~ sex + (1|area_code) + (1|age_band)", data=survey)
    return model.fit()


def test_abandoning_outside_points_keeps_the_grid(monkeypatch: pytest.MonkeyPatch) -> None:
    fit = _fit()
    abandoned: list[int] = []
    original = laplace.LaplaceProblem.pirls

    def counting(self: laplace.LaplaceProblem, *args: object, **kwargs: object) -> laplace.PirlsResult:
        result = original(self, *args, **kwargs)  # type: ignore[arg-type]
        if result.extra.get("abandoned"):
            abandoned.append(result.iterations)
        return result

    monkeypatch.setattr(laplace.LaplaceProblem, "pirls", counting)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with_abandon = draws_module.sd_posterior_grid(fit)
        fast = fit.draws(300, seed=5)
    assert abandoned, "no grid point was given up: the test no longer exercises the rule"
    monkeypatch.setattr(draws_module, "ABANDON_MARGIN", np.inf)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        converged = draws_module.sd_posterior_grid(fit)
        slow = fit.draws(300, seed=5)
    np.testing.assert_array_equal(with_abandon["keys"], converged["keys"])
    np.testing.assert_array_equal(with_abandon["weights"], converged["weights"])
    for name in fast.data_vars:
        np.testing.assert_array_equal(fast[name].values, slow[name].values)
