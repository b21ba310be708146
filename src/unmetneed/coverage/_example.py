"""A tiny simulated population for the coverage examples and tests.

Six areas x three age bands x two sexes, a general-population survey with the
standard care items, an ASCS-like survey of council-funded users, a SACE-like
survey of carers known to councils and census counts of unpaid carers. Every
link of the care chain has an area effect, so the multilevel fits are not
singular and the examples run without warnings in about a second.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from unmetneed.design import SurveyDesign
from unmetneed.mrp import PopulationFrame

__all__ = ["FORMULAS", "ExampleInputs", "example_inputs"]

AREAS = ("E06000001", "E06000002", "E06000003", "E06000004", "E06000005", "E06000006")
AGES = ("18-64", "65-84", "85+")
SEXES = ("Female", "Male")
FORMULA = "outcome ~ sex + age_band + (1|area_code)"
#: One formula per link of the care chain (age as a fixed effect: three bands).
FORMULAS = {link: FORMULA for link in ("need", "help", "paid", "council", "not_enough")}


@dataclass(frozen=True)
class ExampleInputs:
    """What :func:`example_inputs` returns."""

    frame: PopulationFrame
    survey: pd.DataFrame  # general-population survey with the care items
    ascs: SurveyDesign  # council-funded users
    sace: SurveyDesign  # carers known to councils
    census: dict[str, pd.Series]  # "unpaid_carers" by area_code
    truth: pd.DataFrame  # expected care populations by area_code


def _logistic(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def example_inputs(seed: int = 20210321, n: int = 4000) -> ExampleInputs:
    """Simulate the tiny population, its surveys and census counts.

    Examples
    --------
    >>> from unmetneed.coverage._example import example_inputs
    >>> inputs = example_inputs()
    >>> len(inputs.frame), inputs.ascs.n > 0
    (36, True)
    """
    rng = np.random.default_rng(seed)
    grid = pd.MultiIndex.from_product([AREAS, AGES, SEXES], names=["area_code", "age_band", "sex"])
    cells = grid.to_frame(index=False)
    cells["count"] = rng.integers(5_000, 60_000, len(cells)).astype(np.float64)
    area = pd.Categorical(cells["area_code"], categories=AREAS).codes
    age = pd.Categorical(cells["age_band"], categories=AGES).codes
    male = (cells["sex"] == "Male").to_numpy().astype(float)
    effects = rng.normal(0.0, 0.6, (5, len(AREAS)))
    p_need = _logistic(-2.4 + 1.4 * age + 0.2 * male + effects[0, area])
    p_help = _logistic(1.0 + 0.2 * age + effects[1, area])
    p_paid = _logistic(-0.4 + 0.5 * age + effects[2, area])
    p_council = _logistic(0.2 + effects[3, area])
    p_not_enough = _logistic(-0.8 + effects[4, area])
    counts = cells["count"].to_numpy()
    need = counts * p_need
    council = need * p_help * p_paid * p_council
    truth = (
        pd.DataFrame(
            {
                "area_code": cells["area_code"],
                "need": need,
                "council_funded": council,
                "self_funded": need * p_help * p_paid * (1 - p_council),
                "unpaid_only": need * p_help * (1 - p_paid),
                "unmet": need * (1 - p_help),
                "insufficient": need * p_help * p_not_enough,
            }
        )
        .groupby("area_code", sort=False)
        .sum()
    )

    # General survey: simple random sample of adults.
    cell = rng.choice(len(cells), size=n, p=counts / counts.sum())
    u = rng.random((5, n))
    has_need = u[0] < p_need[cell]
    helped = has_need & (u[1] < p_help[cell])
    paid = helped & (u[2] < p_paid[cell])
    by_council = paid & (u[3] < p_council[cell])
    missing = np.array(None, dtype=object)  # what np.where makes of None, spelt out for the type checker
    help_ = np.where(~has_need, missing, np.where(~helped, "none", np.where(paid, "paid", "unpaid_only")))
    payer = np.where(
        ~paid, missing, np.where(by_council, np.where(rng.random(n) < 0.8, "council", "both"), "self")
    )
    enough = np.where(helped, (u[4] >= p_not_enough[cell]).astype(float), np.nan)
    survey = cells.iloc[cell][["area_code", "age_band", "sex"]].reset_index(drop=True)
    survey = survey.assign(
        need=has_need.astype(np.int64), help=help_, payer=payer, help_enough=enough, weight=counts.sum() / n
    )

    # ASCS-like: a stratified sample of each council's list of funded users.
    council_cells = pd.Series(council, index=cells.index)
    rows = []
    for a in range(len(AREAS)):
        in_area = np.flatnonzero(area == a)
        listed = round(council_cells.iloc[in_area].sum())
        taken = min(listed, 120)
        picks = rng.choice(in_area, size=taken, p=council[in_area] / council[in_area].sum())
        rows.append(
            cells.iloc[picks][["area_code", "age_band", "sex"]].assign(
                weight=listed / taken, fpc=float(listed)
            )
        )
    ascs = pd.concat(rows, ignore_index=True)

    # Census unpaid carers by area, and a SACE-like sample of the carers councils know.
    adults = cells.groupby("area_code", sort=False)["count"].sum()
    carers = (adults * rng.uniform(0.08, 0.12, len(adults))).round().astype(np.int64)
    rows = []
    for code, total in carers.items():
        known = round(total * rng.uniform(0.1, 0.2))
        in_area = np.flatnonzero(cells["area_code"].to_numpy() == code)
        picks = rng.choice(in_area, size=80, p=counts[in_area] / counts[in_area].sum())
        rows.append(
            cells.iloc[picks][["area_code", "age_band", "sex"]].assign(weight=known / 80, fpc=float(known))
        )
    sace = pd.concat(rows, ignore_index=True)
    return ExampleInputs(
        frame=PopulationFrame(cells),
        survey=survey,
        ascs=SurveyDesign(ascs, weights="weight", strata="area_code", fpc="fpc"),
        sace=SurveyDesign(sace, weights="weight", strata="area_code", fpc="fpc"),
        census={"unpaid_carers": carers.rename("count")},
        truth=truth,
    )
