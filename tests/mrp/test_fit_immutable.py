"""A MultilevelFit cannot be changed after the fact (issue 16)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import unmetneed as um


@pytest.fixture(scope="module")
def fitted() -> tuple[pd.DataFrame, um.MultilevelFit]:
    survey = um.datasets.load_example_survey()
    fit = um.MultilevelModel("need ~ sex + (1|area_code) + (1|age_band)", data=survey).fit()
    return survey, fit


def test_editing_estimates_changes_no_prediction(fitted) -> None:
    survey, fit = fitted
    before = fit.predict(survey.head(20))
    fixed = fit.fixed_effects
    fixed["estimate"] = 10.0
    fixed.iloc[0, 0] = 10.0
    components = fit.variance_components
    components.iloc[0] = 0.0
    modes = fit.random_effects["area_code"]
    modes["mode"] = 5.0
    np.testing.assert_array_equal(before, fit.predict(survey.head(20)))
    assert (fit.fixed_effects["estimate"].abs() < 10.0).all()


def test_fit_and_model_fields_cannot_be_set(fitted) -> None:
    _, fit = fitted
    with pytest.raises(AttributeError, match="immutable"):
        fit.loglik = 0.0  # type: ignore[misc]
    with pytest.raises(AttributeError, match="immutable"):
        fit.model.weights = "w"  # type: ignore[misc]
    with pytest.raises(TypeError):
        fit.random_effects["area_code"] = pd.DataFrame()  # type: ignore[index]


def test_editing_the_callers_frame_changes_nothing() -> None:
    survey = um.datasets.load_example_survey()
    model = um.MultilevelModel("need ~ sex + (1|age_band)", data=survey)
    first = model.fit().fixed_effects
    survey["need"] = 1
    survey["sex"] = "Female"
    pd.testing.assert_frame_equal(first, model.fit().fixed_effects)


def test_population_frame_is_its_own_copy() -> None:
    cells = pd.DataFrame({"area": ["A", "A", "B"], "sex": ["F", "M", "F"], "count": [10.0, 12.0, 7.0]})
    frame = um.PopulationFrame(cells)
    cells.loc[0, "count"] = 99.0
    cells["count"] = cells["count"].to_numpy()  # the caller's column stays writeable
    shown = frame.cells
    shown.loc[1, "count"] = 50.0
    assert frame.counts.tolist() == [10.0, 12.0, 7.0]
    assert frame.cells["count"].tolist() == [10.0, 12.0, 7.0]
    with pytest.raises(ValueError, match="read-only"):
        frame.counts[0] = 1.0
