"""A tiny simulated population, its care estimates and sources (fitted once per session)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import unmetneed as um
from unmetneed.coverage import coverage_gaps
from unmetneed.coverage._example import FORMULAS, ExampleInputs, example_inputs

DRAWS = 200


@pytest.fixture(scope="session")
def inputs() -> ExampleInputs:
    return example_inputs()


@pytest.fixture(scope="session")
def care_model(inputs: ExampleInputs) -> um.CareModel:
    return um.fit_care_model(inputs.frame, inputs.survey, formulas=FORMULAS, draws=DRAWS, seed=1)


@pytest.fixture(scope="session")
def care(care_model: um.CareModel, inputs: ExampleInputs) -> um.CareEstimates:
    return care_model.populations(inputs.frame, by="area_code")


@pytest.fixture(scope="session")
def care_cross(care_model: um.CareModel, inputs: ExampleInputs) -> um.CareEstimates:
    """The same draws, by area and age band."""
    return care_model.populations(inputs.frame, by=["area_code", "age_band"])


def sources(inputs: ExampleInputs) -> dict[str, tuple[um.SurveyDesign, str]]:
    return {"ascs": (inputs.ascs, "council_funded"), "sace": (inputs.sace, "unpaid_carers")}


def srs_design(inputs: ExampleInputs, n: int = 600, seed: int = 7) -> um.SurveyDesign:
    """A simple random sample of adults (no fpc): weighted totals with a positive SE."""
    rng = np.random.default_rng(seed)
    cells = inputs.frame.cells
    counts = inputs.frame.counts
    picks = rng.choice(len(cells), size=n, p=counts / counts.sum())
    data = cells.iloc[picks][["area_code", "age_band", "sex"]].reset_index(drop=True)
    return um.SurveyDesign(data.assign(weight=counts.sum() / n), weights="weight")


@pytest.fixture(scope="session")
def report(care: um.CareEstimates, inputs: ExampleInputs):  # type: ignore[no-untyped-def]
    return coverage_gaps(care, sources(inputs), census=inputs.census, population=inputs.frame, seed=2)


def as_series(table: pd.DataFrame, column: str, key: str = "area_code") -> pd.Series:
    return table.set_index(key)[column]
