"""A small simulated survey and frame with the standard care items."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import unmetneed as um

AREAS = [f"E0600000{i}" for i in range(1, 9)]
AGES = ["18-64", "65-84", "85+"]


def simulate_survey(n: int = 2500, seed: int = 11) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    area = rng.integers(0, len(AREAS), n)
    age = rng.choice(3, n, p=[0.6, 0.3, 0.1])
    sex = rng.integers(0, 2, n)
    need = rng.random(n) < 1 / (1 + np.exp(-(-2.0 + 1.2 * age + 0.2 * sex + rng.normal(0, 0.3, 8)[area])))
    u = rng.random(n)
    help_ = np.where(~need, None, np.where(u < 0.25, "none", np.where(u < 0.65, "unpaid_only", "paid")))
    v = rng.random(n)
    payer = np.where(help_ == "paid", np.where(v < 0.45, "council", np.where(v < 0.9, "self", "both")), None)
    enough = np.where((help_ == "unpaid_only") | (help_ == "paid"), (rng.random(n) < 0.7).astype(float), np.nan)
    return pd.DataFrame({
        "area_code": np.asarray(AREAS)[area],
        "age_band": np.asarray(AGES)[age],
        "sex": np.where(sex == 1, "Male", "Female"),
        "need": need.astype(int),
        "help": help_,
        "payer": payer,
        "help_enough": enough,
    })


def simulate_frame() -> um.PopulationFrame:
    rng = np.random.default_rng(5)
    grid = pd.MultiIndex.from_product([AREAS, AGES, ["Female", "Male"]],
                                      names=["area_code", "age_band", "sex"]).to_frame(index=False)
    grid["count"] = rng.integers(2_000, 40_000, len(grid)).astype(float)
    return um.PopulationFrame(grid)


FORMULA = "outcome ~ sex + (1|area_code) + (1|age_band)"
FORMULAS = {name: FORMULA for name in ("need", "help", "paid", "council", "not_enough")}


@pytest.fixture(scope="session")
def survey() -> pd.DataFrame:
    return simulate_survey()


@pytest.fixture(scope="session")
def frame() -> um.PopulationFrame:
    return simulate_frame()
