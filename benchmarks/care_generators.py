"""Populations with a known truth for checking the care estimates by simulation.

Two kinds of generator, deliberately unlike each other:

* :class:`Shire` -- written for issue 10 from scratch, sharing no code or
  parameters with the synthetic England: a finite population of councils with
  all 19 Census ethnic groups (three of them tiny), an ethnic structure in which
  detailed groups vary around their broad group, an age x disability
  interaction, council effects on every link that no covariate explains,
  self-funding that rises with owner-occupation, and survey non-response that
  depends on age, sex, ethnic group, disability and deprivation. The truth is the
  *realised* population (every adult's state is drawn), and respondents are drawn
  from it. Two configurations (``shire_a``, ``shire_b``) differ in size, effects
  and non-response.
* :class:`SyntheticEngland` -- the shipped synthetic England's generator
  (version 2, from ``unmetneed.datasets.synthetic.generator_state``): its
  household population (the drawn adults of each cell living in private
  households, ``eng.population``'s household rows) and household truth
  (``eng.truth``'s ``household`` rows), since the general survey covers private
  households, with fresh general-survey samples drawn by its own survey code
  from those household counts.

Each generator gives a population frame, a truth table per cell, and
``survey(seed)``: a respondent table with the survey care items, ``weight``
(design weight) and the design columns.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.special import expit

AGES = ["18-24", "25-34", "35-44", "45-54", "55-64", "65-74", "75-84", "85+"]
SEXES = ["Female", "Male"]
DISABILITY = ["Disabled: limited a lot", "Disabled: limited a little", "Not disabled"]
# All 19 Census 2021 groups, with a national adult share (roughly England's, rounded)
# and the broad group they belong to.
ETHNIC = [
    ("Asian, Asian British or Asian Welsh: Bangladeshi", 0.010),
    ("Asian, Asian British or Asian Welsh: Chinese", 0.008),
    ("Asian, Asian British or Asian Welsh: Indian", 0.031),
    ("Asian, Asian British or Asian Welsh: Pakistani", 0.024),
    ("Asian, Asian British or Asian Welsh: Other Asian", 0.016),
    ("Black, Black British, Black Welsh, Caribbean or African: African", 0.024),
    ("Black, Black British, Black Welsh, Caribbean or African: Caribbean", 0.011),
    ("Black, Black British, Black Welsh, Caribbean or African: Other Black", 0.005),
    ("Mixed or Multiple ethnic groups: White and Asian", 0.004),
    ("Mixed or Multiple ethnic groups: White and Black African", 0.002),
    ("Mixed or Multiple ethnic groups: White and Black Caribbean", 0.005),
    ("Mixed or Multiple ethnic groups: Other Mixed or Multiple ethnic groups", 0.004),
    ("White: English, Welsh, Scottish, Northern Irish or British", 0.760),
    ("White: Irish", 0.009),
    ("White: Gypsy or Irish Traveller", 0.0004),
    ("White: Roma", 0.0008),
    ("White: Other White", 0.068),
    ("Other ethnic group: Arab", 0.0025),
    ("Other ethnic group: Any other ethnic group", 0.016),
]
ETHNIC_NAMES = [name for name, _ in ETHNIC]
BROAD = [name.split(":")[0] for name in ETHNIC_NAMES]
LINKS = ("need", "help", "paid", "council", "not_enough")
QUANTITIES = ("need", "council_funded", "self_funded", "unpaid_only", "unmet")


@dataclass
class Population:
    """Cells of a population with its realised (or expected) truth per cell."""

    cells: pd.DataFrame  # area_code, age_band, sex, ethnic_group, disability, covariates, count
    truth: pd.DataFrame  # per cell: need, council_funded, self_funded, unpaid_only, unmet
    name: str
    notes: dict = field(default_factory=dict)

    def truth_by(self, by: list[str]) -> pd.DataFrame:
        table = pd.concat([self.cells[by], self.truth[list(QUANTITIES)]], axis=1)
        if not by:
            return table[list(QUANTITIES)].sum().to_frame().T
        return table.groupby(by, observed=True)[list(QUANTITIES)].sum()


@dataclass(frozen=True)
class ShireConfig:
    name: str
    councils: int
    mean_adults: float  # adults per council (log-normal around this)
    council_sd: dict  # SD of the unexplained council effect on each link's logit
    ethnic_broad_sd: float
    ethnic_detail_sd: float
    interaction: float  # scale of the age x disability interaction on need
    response_ethnic: float  # how much lower minority groups respond (logit)
    respondents: int
    seed: int


SHIRE_A = ShireConfig("shire_a", councils=40, mean_adults=60_000,
                      council_sd={"need": 0.30, "help": 0.25, "paid": 0.3, "council": 0.35,
                                  "not_enough": 0.25},
                      ethnic_broad_sd=0.4, ethnic_detail_sd=0.35, interaction=0.6,
                      response_ethnic=0.6, respondents=9_000, seed=101)
SHIRE_B = ShireConfig("shire_b", councils=70, mean_adults=35_000,
                      council_sd={"need": 0.4, "help": 0.3, "paid": 0.4, "council": 0.45,
                                  "not_enough": 0.3},
                      ethnic_broad_sd=0.5, ethnic_detail_sd=0.45, interaction=0.3,
                      response_ethnic=0.9, respondents=7_000, seed=202)


class Shire:
    """A from-scratch finite population and its survey (see module notes)."""

    def __init__(self, config: ShireConfig) -> None:
        self.config = config
        rng = np.random.default_rng(config.seed)
        k = config.councils
        areas = [f"S{config.seed:03d}{j:04d}" for j in range(k)]
        deprivation = rng.normal(0.0, 1.0, k)
        owner = np.clip(0.64 - 0.08 * deprivation + rng.normal(0, 0.05, k), 0.3, 0.9)
        adults = np.round(rng.lognormal(np.log(config.mean_adults), 0.5, k))
        # Composition: age older where deprivation is low; ethnic mix varies by council.
        age_w = np.array([0.11, 0.17, 0.16, 0.16, 0.15, 0.12, 0.09, 0.04])
        age_shift = np.linspace(-0.25, 0.25, 8)
        age_share = age_w[None, :] * np.exp(-0.3 * deprivation[:, None] * age_shift[None, :])
        age_share /= age_share.sum(axis=1, keepdims=True)
        base = np.array([s for _, s in ETHNIC])
        base = base / base.sum()
        minority = rng.gamma(2.0, 0.5, k)  # council's minority multiplier
        eth_share = base[None, :] * np.where(np.arange(19) == 12, 1.0, minority[:, None])
        eth_share *= rng.gamma(20.0, 1 / 20.0, (k, 19))
        eth_share /= eth_share.sum(axis=1, keepdims=True)
        # Disability: more with age and deprivation.
        age_idx = np.arange(8)
        lot = expit(-3.4 + 0.33 * age_idx[None, :] + 0.2 * deprivation[:, None])
        little = expit(-2.6 + 0.2 * age_idx[None, :] + 0.1 * deprivation[:, None])
        dis_share = np.stack([lot, little * (1 - lot), (1 - lot) * (1 - little)], axis=-1)  # (k, 8, 3)
        grid = (adults[:, None, None, None, None] * age_share[:, :, None, None, None]
                * np.array([0.51, 0.49])[None, None, :, None, None]
                * eth_share[:, None, None, :, None] * dis_share[:, :, None, None, :])
        counts = rng.poisson(grid)  # (k, 8, 2, 19, 3)
        self.shape = counts.shape
        # ---- the care model -----------------------------------------------------------
        broad_codes = pd.Index(pd.unique(np.asarray(BROAD))).get_indexer(BROAD)
        eta = {}
        effects = {}
        age_lin = (age_idx - 3.5) / 3.5
        interaction = config.interaction * np.array([[0.8, 0.3, 0.0]]) * (-age_lin[:, None])  # (8, 3)
        specs = {  # intercept, age slope, disability effects, sex (male), deprivation, owner
            "need": (-2.3, 1.5, (2.3, 1.0, 0.0), -0.15, 0.25, 0.0),
            "help": (0.6, 0.5, (0.9, 0.3, 0.0), -0.2, -0.1, 0.0),
            "paid": (-0.9, 0.9, (1.0, 0.4, 0.0), 0.0, -0.1, 0.8),
            "council": (0.1, 0.2, (0.5, 0.2, 0.0), 0.1, 0.35, -3.0),
            "not_enough": (-0.9, -0.2, (0.5, 0.2, 0.0), 0.1, 0.2, 0.0),
        }
        for link, (a, slope, dis, male, dep, own) in specs.items():
            broad = rng.normal(0.0, config.ethnic_broad_sd, 5)
            detail = broad[broad_codes] + rng.normal(0.0, config.ethnic_detail_sd, 19)
            council = rng.normal(0.0, config.council_sd[link], k)
            effects[link] = {"ethnic": detail, "broad": broad[broad_codes], "council": council}
            e = (a + slope * age_lin[None, :, None, None, None]
                 + np.asarray(dis)[None, None, None, None, :]
                 + male * np.array([0, 1])[None, None, :, None, None]
                 + detail[None, None, None, :, None]
                 + (dep * deprivation + own * (owner - 0.64) + council)[:, None, None, None, None])
            if link == "need":
                e = e + interaction[None, :, None, None, :]
            eta[link] = np.broadcast_to(e, counts.shape)
        p = {link: expit(value) for link, value in eta.items()}
        # ---- realised states ----------------------------------------------------------
        need = rng.binomial(counts, p["need"])
        helped = rng.binomial(need, p["help"])
        paid = rng.binomial(helped, p["paid"])
        council = rng.binomial(paid, p["council"])
        enough_not = rng.binomial(helped, p["not_enough"])
        self.p = p
        index = pd.MultiIndex.from_product([areas, AGES, SEXES, ETHNIC_NAMES, DISABILITY],
                                           names=["area_code", "age_band", "sex", "ethnic_group",
                                                  "disability"])
        cells = index.to_frame(index=False)
        area_pos = np.repeat(np.arange(k), counts[0].size)
        cells["deprivation"] = deprivation[area_pos]
        cells["owner_occupied"] = owner[area_pos]
        cells["count"] = counts.ravel().astype(float)
        truth = pd.DataFrame({
            "need": need.ravel(), "council_funded": council.ravel(),
            "self_funded": (paid - council).ravel(), "unpaid_only": (helped - paid).ravel(),
            "unmet": (need - helped).ravel(), "not_enough": enough_not.ravel(),
            "helped": helped.ravel()}).astype(float)
        keep = cells["count"].to_numpy() > 0
        self.population = Population(cells[keep].reset_index(drop=True),
                                     truth[keep].reset_index(drop=True), config.name,
                                     notes={"adults": float(counts.sum()),
                                            "effects": effects})
        # ---- response propensity ------------------------------------------------------
        minority = np.where(np.arange(19) == 12, 0.0, -config.response_ethnic)
        minority[[14, 15]] -= 0.6  # Gypsy or Irish Traveller, Roma respond least
        resp = (-0.2 + 0.5 * age_lin[None, :, None, None, None]
                - 0.25 * np.array([0, 1])[None, None, :, None, None]
                + minority[None, None, None, :, None]
                - 0.3 * np.array([0.0, 0.0, 1.0])[None, None, None, None, :] * 0.5
                - 0.25 * deprivation[:, None, None, None, None])
        self.response = np.broadcast_to(expit(resp), counts.shape).ravel()[keep]
        # Sampling: each council gets an equal share of issued addresses (small councils
        # oversampled), so design weights vary by council.
        self.issue_rate = np.minimum(1.0, (config.respondents / 0.45 / k) / adults)[area_pos][keep]
        self._states = {
            "need": need.ravel()[keep], "helped": helped.ravel()[keep],
            "paid": paid.ravel()[keep], "council": council.ravel()[keep],
            "not_enough": enough_not.ravel()[keep],
        }

    def survey(self, seed: int) -> pd.DataFrame:
        """Respondents drawn without replacement from the realised population."""
        rng = np.random.default_rng(seed)
        cells = self.population.cells
        n_cell = cells["count"].to_numpy().astype(np.int64)
        rate = self.issue_rate * self.response
        sampled = rng.binomial(n_cell, rate)
        s = self._states
        # States of the sampled people: sequential hypergeometric draws within the cell.
        no_need = n_cell - s["need"]
        k_need = hypergeom(rng, s["need"], no_need, sampled)
        k_helped = hypergeom(rng, s["helped"], s["need"] - s["helped"], k_need)
        k_paid = hypergeom(rng, s["paid"], s["helped"] - s["paid"], k_helped)
        k_council = hypergeom(rng, s["council"], s["paid"] - s["council"], k_paid)
        k_ne = hypergeom(rng, s["not_enough"], s["helped"] - s["not_enough"], k_helped)
        rows = np.repeat(np.arange(len(cells)), sampled)
        frame = cells.iloc[rows, :5].reset_index(drop=True)
        frame["deprivation"] = cells["deprivation"].to_numpy()[rows]
        frame["owner_occupied"] = cells["owner_occupied"].to_numpy()[rows]
        # Within a cell, order people: council, self, unpaid, unmet, no need.
        pos = np.arange(rows.size) - np.repeat(np.cumsum(sampled) - sampled, sampled)
        c1 = k_council[rows]
        c2 = k_paid[rows]
        c3 = k_helped[rows]
        c4 = k_need[rows]
        need = (pos < c4).astype(int)
        help_ = np.where(pos < c2, "paid", np.where(pos < c3, "unpaid_only",
                                                     np.where(pos < c4, "none", None)))
        payer = np.where(pos < c1, "council", np.where(pos < c2, "self", None))
        # not enough: among the helped, a random subset of size k_ne per cell
        u = rng.random(rows.size)
        rank_helped = np.where(pos < c3, u, np.inf)
        order = np.lexsort((rank_helped, rows))
        rank = np.empty(rows.size, dtype=np.int64)
        rank[order] = np.arange(rows.size) - np.repeat(np.cumsum(sampled) - sampled, sampled)
        not_enough = (pos < c3) & (rank < k_ne[rows])
        frame["need"] = need
        frame["help"] = pd.Series(help_, dtype="object")
        frame["payer"] = pd.Series(payer, dtype="object")
        frame["help_enough"] = pd.array(np.where(pos < c3, (~not_enough).astype(int), -1),
                                        dtype="Int64")
        frame.loc[frame["help_enough"] < 0, "help_enough"] = pd.NA
        frame["weight"] = 1.0 / self.issue_rate[rows]
        for column in ("age_band", "sex", "ethnic_group", "disability"):
            frame[column] = pd.Categorical(frame[column], categories=cells[column].cat.categories
                                           if hasattr(cells[column], "cat") else
                                           pd.unique(cells[column]))
        return frame


def hypergeom(rng: np.random.Generator, good: np.ndarray, bad: np.ndarray,
              n: np.ndarray) -> np.ndarray:
    out = np.zeros(good.size, dtype=np.int64)
    ok = n > 0
    out[ok] = rng.hypergeometric(good[ok].astype(np.int64), bad[ok].astype(np.int64),
                                 n[ok].astype(np.int64))
    return out


class SyntheticEngland:
    """The shipped synthetic England (version 2): household population and truth, fresh general surveys."""

    def __init__(self) -> None:
        from unmetneed.datasets._synthetic_model import (
            AGE_BANDS,
            ETHNIC_GROUPS,
            UNITS,
            household_model,
            truth_units,
        )
        from unmetneed.datasets._synthetic_model import DISABILITY as DIS
        from unmetneed.datasets._synthetic_model import SEXES as SX
        from unmetneed.datasets.synthetic import generator_state

        state = generator_state()  # the shipped population, care model and settings, from its seed
        self.state = state
        self.inputs, self.population_raw, self.model = state.inputs, state.population, state.model
        house = state.settings.household  # adults living in private households per cell (drawn)
        inputs, population = state.inputs, state.population
        index = pd.MultiIndex.from_product(
            [inputs.areas["area_code"].astype(str), list(AGE_BANDS), list(SX),
             list(ETHNIC_GROUPS), list(DIS)],
            names=["area_code", "age_band", "sex", "ethnic_group", "disability"])
        cells = index.to_frame(index=False)
        area = (slice(None), None, None, None, None)
        cells["deprivation"] = np.broadcast_to(population.deprivation[area], house.shape).ravel()
        cells["owner_occupation"] = np.broadcast_to(
            np.asarray(inputs.owner_occupation, dtype=float)[area], house.shape).ravel()
        cells["count"] = house.ravel()
        # eng.truth's household rows per cell: the household model on the household counts
        units = truth_units(house, household_model(state.model))
        truth = pd.DataFrame({q: units[q].ravel() / UNITS for q in QUANTITIES})
        keep = cells["count"].to_numpy() > 0
        self.population = Population(cells[keep].reset_index(drop=True),
                                     truth[keep].reset_index(drop=True), "synthetic_england",
                                     notes={"truth": "expected household counts (eng.truth, "
                                                     "setting household)"})

    def survey(self, seed: int) -> pd.DataFrame:
        from unmetneed.datasets import synthetic as syn
        from unmetneed.datasets._synthetic_surveys import general_survey

        table = general_survey(self.inputs, self.population_raw, self.model,
                               np.random.default_rng(seed), household=self.state.settings.household)
        frame = syn._survey_frame(table)  # noqa: SLF001
        return frame


GENERATORS = {
    "shire_a": lambda: Shire(SHIRE_A),
    "shire_b": lambda: Shire(SHIRE_B),
    "synthetic_england": SyntheticEngland,
}
