r"""A synthetic England with known truth, for testing methods end to end.

Only the 152 upper-tier councils (2021 codes and names), their regions,
their adult populations by age band (Census 2021 TS007) and their share of
households owning their home (Census 2021 TS054) are real; everything else --
the split by sex, ethnic group and disability, the council ``deprivation``
score, need for care, who helps and who pays, who lives in a care home, the
surveys, the care homes and the administrative counts -- is drawn from a
documented model with a fixed seed. Because the model is known, so is the
truth: how many people in each council and group need care, and how many of
them are council-funded, self-funded, helped only by unpaid carers, or have no
help at all, in private households and in care homes (generator version 2:
one accounting of both settings; care-home residents are the population
model's people in need whose paid care is residential, and the care-home
register holds exactly them).

The files live in ``data/reference/synthetic/`` (plus
``data/reference/truth_*.csv``) with a ``MANIFEST.json`` of SHA-256 checksums;
:func:`load_synthetic_england` reads and checks them (no network, nothing is
regenerated); :func:`generate_synthetic_england` rebuilds everything from the
seed (a few seconds) and :func:`write_synthetic_england` writes the files.
The model, the files and their columns are documented in
``data/reference/README.md``.

Contains public sector information licensed under the Open Government Licence
v3.0.
"""

from __future__ import annotations

import csv
import gzip
import html
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from unmetneed._provenance import sha256_bytes, sha256_file
from unmetneed.datasets._synthetic_care_homes import (
    HOME_TYPES,
    RATINGS,
    SIZE_BANDS,
    generate_care_homes,
)
from unmetneed.datasets._synthetic_inputs import INPUTS_FILE
from unmetneed.datasets._synthetic_model import (
    AGE_BANDS,
    DISABILITY,
    ETHNIC_GROUPS,
    PARAMETERS,
    QUANTITIES,
    SEXES,
    TRUTH_SETTINGS,
    UNITS,
    UNPAID_CARE,
    CareModel,
    Inputs,
    Population,
    Settings,
    build_population,
    care_model,
    draw_area_effects,
    draw_settings,
    read_inputs,
    standardise,
    truth_by_setting,
)
from unmetneed.datasets._synthetic_surveys import (
    AGE_GROUPS,
    HELP,
    PAYER,
    SETTINGS,
    SURVEY_PARAMETERS,
    USER_GROUPS,
    admin_counts,
    ascs_survey,
    community_counts,
    council_register,
    general_survey,
    sace_survey,
    unpaid_care_census,
)
from unmetneed.datasets.builders import build_population_frame, build_survey_design
from unmetneed.datasets.example import reference_path
from unmetneed.errors import ReadError, UnmetneedError

__all__ = [
    "SEED",
    "CareHomes",
    "GeneratorState",
    "SyntheticEngland",
    "generate_synthetic_england",
    "generator_state",
    "load_synthetic_england",
    "write_synthetic_england",
]

#: The seed the committed files were generated with.
SEED = 20210321  # Census day 2021
#: Bumped whenever the generator changes what it draws.
GENERATOR_VERSION = 2
MANIFEST = "synthetic/MANIFEST.json"

#: Generated files, relative to ``data/reference/``.
FILES: dict[str, str] = {
    "population": "synthetic/population.csv.gz",
    "areas": "synthetic/areas.csv",
    "area_effects": "synthetic/area_effects.csv",
    "survey_general": "synthetic/survey_general.csv.gz",
    "survey_ascs": "synthetic/survey_ascs.csv.gz",
    "survey_sace": "synthetic/survey_sace.csv.gz",
    "admin": "synthetic/admin_council_funded.csv",
    "census_age_band": "synthetic/census2021-ts007-utla-adults.csv",
    "census_unpaid_care": "synthetic/census2021-ts039-utla-adults.csv",
    "census_ethnic_group": "synthetic/custom-ethnic-group-20-utla-adults.csv",
    "truth_by_area": "truth_by_area.csv",
    "truth_by_age_band": "truth_by_age_band.csv",
    "truth_by_sex": "truth_by_sex.csv",
    "truth_by_ethnic_group": "truth_by_ethnic_group.csv",
    "truth_by_disability": "truth_by_disability.csv",
    "truth_england": "truth_england.csv",
    # care homes: the population's care-home residents placed in homes (own seed stream)
    "care_home_register": "synthetic/care_home_register.csv.gz",
    "care_home_returns": "synthetic/care_home_returns.csv.gz",
    "care_home_areas": "synthetic/care_home_areas.csv",
    "truth_care_homes_by_area": "truth_care_homes_by_area.csv",
}
TRUTH_TABLES = ("by_area", "by_age_band", "by_sex", "by_ethnic_group", "by_disability", "england")
_TRUTH_AXES = {"by_area": 0, "by_age_band": 1, "by_sex": 2, "by_ethnic_group": 3, "by_disability": 4}
# census tables derived from the frame: name -> variables
CENSUS_TABLES: dict[str, tuple[str, ...]] = {
    "age_band": ("age_band",),
    "sex": ("sex",),
    "ethnic_group": ("ethnic_group",),
    "disability": ("disability",),
    "age_band_sex": ("age_band", "sex"),
    "age_band_disability": ("age_band", "disability"),
    "age_band_ethnic_group": ("age_band", "ethnic_group"),
}
_CATEGORIES: dict[str, tuple[str, ...]] = {
    "age_band": AGE_BANDS,
    "sex": SEXES,
    "ethnic_group": ETHNIC_GROUPS,
    "disability": DISABILITY,
    "unpaid_care": UNPAID_CARE,
    "help": HELP,
    "payer": PAYER,
    "user_group": USER_GROUPS,
    "setting": SETTINGS,
    "age_group": AGE_GROUPS,
    "cared_for_age_group": AGE_GROUPS,
    "quantity": QUANTITIES,
    "home_type": HOME_TYPES,
    "size_band": SIZE_BANDS,
    "rating": RATINGS,
}
_AXES = ("area_code", "age_band", "sex", "ethnic_group", "disability")
#: Settings of the population frame (the truth adds ``all``).
FRAME_SETTINGS = ("household", "care_home")
#: Spawn key of the settings draw (care-home residents per cell) under the seed.
SETTINGS_STREAM = 8
#: Spawn key of the SACE ``support_unmet`` council effects under the seed.
SUPPORT_STREAM = 9

# Labels of the ONS-layout files
_TS007_LABELS = (
    "Aged 18 to 24 years",
    "Aged 25 to 34 years",
    "Aged 35 to 44 years",
    "Aged 45 to 54 years",
    "Aged 55 to 64 years",
    "Aged 65 to 74 years",
    "Aged 75 to 84 years",
    "Aged 85 years and over",
)
_TS039_COLUMNS = (  # (label, leaf index or tuple of leaves for subtotals)
    ("Total: All usual residents aged 18 and over", (0, 1, 2, 3, 4, 5)),
    ("Provides no unpaid care", (0,)),
    ("Provides 19 hours or less unpaid care a week", (1, 2)),
    ("Provides 9 hours or less unpaid care a week", (1,)),
    ("Provides 10 to 19 hours unpaid care a week", (2,)),
    ("Provides 20 to 49 hours unpaid care a week", (3, 4)),
    ("Provides 20 to 34 hours unpaid care a week", (3,)),
    ("Provides 35 to 49 hours unpaid care a week", (4,)),
    ("Provides 50 or more hours unpaid care a week", (5,)),
)
_ETHNIC_20_CODES = (-8, *range(1, 20))


@dataclass(frozen=True, repr=False)
class CareHomes:
    """The synthetic care-home register and the provider returns.

    Attributes
    ----------
    register : DataFrame
        One row per care home: ``home_id`` (str), ``area_code`` (str),
        ``region`` (str, region name), ``home_type`` (``older_people``,
        ``younger_adults``), ``nursing`` (bool), ``beds`` (int64),
        ``size_band`` (``1-19``, ``20-49``, ``50+``), ``rating``
        (``outstanding``, ``good``, ``requires_improvement``, ``inadequate``,
        ``not_rated``), ``deprivation_decile`` (int64, 1 = most deprived);
        the category columns are ordered Categoricals.
    returns : DataFrame
        The responding homes' provider returns: ``home_id``, ``residents``,
        ``self_funded``, ``council_funded``, ``nhs_funded``, ``other_funded``
        (int64; the four parts add up to ``residents``).
    areas : DataFrame
        A council covariate as a census table gives it: ``area_code``,
        ``owner_occupied_share`` (share of households owning their home,
        Census 2021 TS054, rounded to 4 decimals).
    """

    register: pd.DataFrame
    returns: pd.DataFrame
    areas: pd.DataFrame

    def __repr__(self) -> str:
        return (
            f"<CareHomes: {len(self.register):,} homes, {int(self.register['beds'].sum()):,} "
            f"beds; {len(self.returns):,} returns covering "
            f"{int(self.returns['residents'].sum()):,} residents>"
        )


@dataclass(frozen=True, repr=False)
class SyntheticEngland:
    """The synthetic England: population, truth, census tables, surveys, admin counts.

    Attributes
    ----------
    population : PopulationFrame
        Adults (18+) by ``area_code`` x ``age_band`` x ``sex`` x ``ethnic_group``
        x ``disability`` x ``setting``: ``household`` rows for every
        combination (zeros included: 138,624 cells) and ``care_home`` rows
        only where the cell has care-home residents; with the council
        covariates ``deprivation`` (float, standardised) and
        ``owner_occupation`` (float, the council's share of households owning
        their home, Census 2021 TS054) and ``count`` (int64). Summing over
        ``setting`` gives the all-adult cells. Characteristics and
        ``setting`` are ordered Categoricals; ``area_code`` is a string.
    areas : DataFrame
        One row per council: ``area_code``, ``area_name``, ``council_type``,
        ``region_code``, ``region_name``, ``adults``, ``deprivation``,
        ``owner_occupation``.
    truth : dict of DataFrame
        ``"by_area"`` (``area_code, setting, quantity, value``),
        ``"by_age_band"``, ``"by_sex"``, ``"by_ethnic_group"``,
        ``"by_disability"`` (``<variable>, setting, quantity, value``) and
        ``"england"`` (``setting, quantity, value``). ``setting``:
        ``household``, ``care_home``, ``all`` (= household + care_home
        exactly). Quantities: ``need``; its exclusive parts
        ``council_funded``, ``self_funded``, ``unpaid_only``, ``unmet`` (they
        add up to ``need`` exactly); and ``insufficient`` (help, but not
        enough; overlaps the first three parts). Household values are
        expected counts (multiples of 1/1024 of a person); care-home values
        are whole residents (``insufficient`` excepted), all funded by their
        council or themselves (``unpaid_only`` = ``unmet`` = 0). Also
        ``"care_homes_by_area"`` (``area_code, residents, self_funded``: the
        care-home truth by council, over every home).
    census : dict of DataFrame
        Tidy tables as :func:`unmetneed.io.read_census_table` returns them
        (``area_code``, ``area_name``, the variable(s) as ordered
        Categoricals, ``count``): ``"age_band"``, ``"sex"``,
        ``"ethnic_group"``, ``"disability"``, ``"unpaid_care"``,
        ``"age_band_sex"``, ``"age_band_disability"``,
        ``"age_band_ethnic_group"``.
    surveys : dict of SurveyDesign
        ``"general"`` (household survey of private households only: strata =
        regions, clusters = postcode-sector-like PSUs), ``"ascs"``
        (council-funded users in both settings: strata = council x user
        group, fpc) and ``"sace"`` (carers known to councils: strata =
        councils, fpc; with ``support_unmet``).
    admin : DataFrame
        Council-funded people by ``area_code``, ``area_name``, ``age_group``
        (``18-64``, ``65+``) and ``setting`` (``residential`` = council-funded
        care-home residents, exactly the truth; ``community`` = the household
        ``council_funded`` truth rounded to whole people), ``count``.
    area_effects : DataFrame
        The council random effects (``area_code`` and one column per
        component: ``need, help, paid, council, not_enough`` of the care
        model and ``support_unmet`` of the carers' survey), for checking
        model-based estimates.
    metadata : dict
        Seed, generator version, model and survey parameters, key totals and
        the files with their checksums (the content of ``MANIFEST.json``).
    care_homes : CareHomes
        The care-home register, the provider returns of the responding homes
        and a council covariate (``truth["care_homes_by_area"]`` has
        ``area_code, residents, self_funded`` over every home, equal to the
        ``care_home`` truth by council).
    """

    # PopulationFrame and SurveyDesign, built by the classes' own layers
    # (datasets.builders): datasets imports neither, so they are typed Any here.
    population: Any
    areas: pd.DataFrame
    truth: dict[str, pd.DataFrame]
    census: dict[str, pd.DataFrame]
    surveys: dict[str, Any]
    admin: pd.DataFrame
    area_effects: pd.DataFrame
    metadata: dict[str, Any]
    care_homes: CareHomes

    def __repr__(self) -> str:
        table = self.truth["england"]
        england = table[table["setting"] == "all"].set_index("quantity")["value"]
        surveys = ", ".join(f"{k} n={v.n:,}" for k, v in self.surveys.items())
        parts = ", ".join(f"{q} {england[q]:,.0f}" for q in QUANTITIES)
        return (
            f"<SyntheticEngland seed={self.metadata.get('seed')}: {len(self.areas)} councils, "
            f"{self.population.total:,.0f} adults in {len(self.population):,} cells; "
            f"truth: {parts}; surveys: {surveys}; census tables: {', '.join(self.census)}>"
        )

    def _repr_html_(self) -> str:
        england = self.truth["england"].to_html(index=False, border=0)
        rows = "".join(
            f"<tr><td>{html.escape(k)}</td><td>{html.escape(repr(v))}</td></tr>"
            for k, v in self.surveys.items()
        )
        return (
            f"<div><p>{html.escape(repr(self.population))}</p>"
            f"<p>Truth (England)</p>{england}<p>Surveys</p><table>{rows}</table></div>"
        )


# ---------------------------------------------------------------------------
# generation


def _truth_tables(units: dict[str, dict[str, np.ndarray]], codes: pd.Series) -> dict[str, pd.DataFrame]:
    """The truth tables in file form (labels as text, values as float).

    Rows by level, then setting (``household``, ``care_home``, ``all``), then
    quantity.
    """
    out: dict[str, pd.DataFrame] = {}
    n_set, n_q = len(TRUTH_SETTINGS), len(QUANTITIES)
    for name, axis in _TRUTH_AXES.items():
        other = tuple(i for i in range(5) if i != axis)
        sums = np.stack(
            [np.stack([units[t][q].sum(axis=other) for q in QUANTITIES], axis=1) for t in TRUTH_SETTINGS],
            axis=1,
        )  # (levels, settings, Q)
        variable = _AXES[axis]
        levels = (
            np.asarray(codes, dtype=object) if axis == 0 else np.asarray(_CATEGORIES[variable], dtype=object)
        )
        out[name] = pd.DataFrame(
            {
                variable: np.repeat(levels, n_set * n_q),
                "setting": np.tile(np.repeat(np.asarray(TRUTH_SETTINGS, dtype=object), n_q), len(levels)),
                "quantity": np.tile(np.asarray(QUANTITIES, dtype=object), len(levels) * n_set),
                "value": sums.reshape(-1) / UNITS,
            }
        )
    total = np.array([[units[t][q].sum() for q in QUANTITIES] for t in TRUTH_SETTINGS])
    out["england"] = pd.DataFrame(
        {
            "setting": np.repeat(np.asarray(TRUTH_SETTINGS, dtype=object), n_q),
            "quantity": np.tile(np.asarray(QUANTITIES, dtype=object), n_set),
            "value": total.reshape(-1) / UNITS,
        }
    )
    return out


def _population_table(inputs: Inputs, settings: Settings) -> pd.DataFrame:
    """Non-empty cells by setting with labels (the file form of the population)."""
    parts = []
    for setting, counts in zip(FRAME_SETTINGS, (settings.household, settings.care_home), strict=True):
        flat = counts.reshape(-1)
        nz = np.flatnonzero(flat)
        a, k, s, g, d = np.unravel_index(nz, counts.shape)
        parts.append(
            pd.DataFrame(
                {
                    "area_code": inputs.areas["area_code"].to_numpy(dtype=object)[a],
                    "age_band": np.asarray(AGE_BANDS, dtype=object)[k],
                    "sex": np.asarray(SEXES, dtype=object)[s],
                    "ethnic_group": np.asarray(ETHNIC_GROUPS, dtype=object)[g],
                    "disability": np.asarray(DISABILITY, dtype=object)[d],
                    "setting": np.full(len(nz), setting, dtype=object),
                    "count": flat[nz],
                }
            )
        )
    return pd.concat(parts, ignore_index=True)


def _summary(truth: dict[str, pd.DataFrame], counts: np.ndarray, settings: Settings) -> dict[str, float]:
    england = truth["england"].set_index(["setting", "quantity"])["value"]
    by_age = truth["by_age_band"]
    by_age = by_age[by_age["setting"] == "all"]
    older = by_age[by_age["age_band"].isin(AGE_BANDS[5:])].groupby("quantity")["value"].sum()
    adults_65 = float(counts[:, 5:].sum())
    every = england.loc["all"]
    paid = every["council_funded"] + every["self_funded"]
    residents = float(settings.care_home.sum())
    resident_self = float((settings.care_home - settings.care_home_council).sum())
    out: dict[str, float] = {
        "adults": float(counts.sum()),
        "adults_65_plus": adults_65,
        "household_adults": float(settings.household.sum()),
        **{q: round(float(every[q]), 1) for q in QUANTITIES},
        **{
            f"{q}_{t}": round(float(england.loc[(t, q)]), 1)
            for t in ("household", "care_home")
            for q in QUANTITIES
        },
        "self_funded_share_of_paid_care": round(float(every["self_funded"] / paid), 4),
        "need_share_65_plus": round(float(older["need"] / adults_65), 4),
        "unmet_share_65_plus": round(float(older["unmet"] / adults_65), 4),
        "unmet_or_insufficient_share_65_plus": round(
            float((older["unmet"] + older["insufficient"]) / adults_65), 4
        ),
        "unmet_share_of_need_65_plus": round(float(older["unmet"] / older["need"]), 4),
        "council_funded_65_plus": round(float(older["council_funded"]), 1),
        "council_funded_18_64": round(float(every["council_funded"] - older["council_funded"]), 1),
        "care_home_residents": residents,
        "care_home_self_funded_share": round(resident_self / residents, 4),
    }
    return out


@dataclass(frozen=True)
class GeneratorState:
    """The generator's state before the surveys: what simulations redraw from.

    ``rngs`` are the seven spawned streams, the first two already used
    (population, area effects); ``effects`` the drawn council effects.
    """

    inputs: Inputs
    population: Population
    effects: dict[str, np.ndarray]
    model: CareModel
    settings: Settings
    rngs: list[np.random.Generator]


def generator_state(seed: int = SEED, inputs: Inputs | None = None) -> GeneratorState:
    """Rebuild the population, care model and settings exactly as the shipped files have them.

    For simulations that redraw surveys from the synthetic England, e.g.
    ``state = generator_state(); general_survey(state.inputs, state.population,
    state.model, rng, household=state.settings.household)``.
    """
    seed = _resolve_seed(seed)
    inputs = inputs if inputs is not None else _default_inputs()
    rngs = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(7)]
    population = build_population(inputs, rngs[0])
    effects = draw_area_effects(len(inputs.areas), rngs[1])
    model = care_model(
        population.deprivation,
        effects,
        inputs.areas["area_code"],
        owner_occupation=standardise(inputs.owner_occupation),
    )
    settings = draw_settings(
        population.counts,
        model,
        np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(SETTINGS_STREAM,))),
    )
    return GeneratorState(
        inputs=inputs, population=population, effects=effects, model=model, settings=settings, rngs=rngs
    )


def _generate_tables(seed: int, inputs: Inputs) -> tuple[dict[str, pd.DataFrame], dict[str, Any]]:
    """Every generated table in file form, and the metadata."""
    state = generator_state(seed, inputs)
    population, effects, model, settings, rngs = (
        state.population,
        state.effects,
        state.model,
        state.settings,
        state.rngs,
    )
    A = len(inputs.areas)
    own_score = standardise(inputs.owner_occupation)
    units = truth_by_setting(settings, model)
    truth = _truth_tables(units, inputs.areas["area_code"])
    every = truth["by_area"][truth["by_area"]["setting"] == "all"]
    by_area = every.pivot(index="area_code", columns="quantity", values="value")
    by_area = by_area.loc[inputs.areas["area_code"]]
    community = community_counts(units["household"]["council_funded"], UNITS)
    register = council_register(inputs, community, settings.care_home_council, model, rngs[2])
    support_sd = float(SURVEY_PARAMETERS["sace"]["support_unmet_area_sd"])
    support = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(SUPPORT_STREAM,))).normal(
        0.0, support_sd, A
    )
    tables: dict[str, pd.DataFrame] = {
        "population": _population_table(inputs, settings),
        "survey_general": general_survey(inputs, population, model, rngs[3], household=settings.household),
        "survey_ascs": ascs_survey(inputs, population, model, register, rngs[4]),
        "survey_sace": sace_survey(inputs, population, by_area, rngs[5], support_effects=support),
        "admin": admin_counts(inputs, register),
    }
    areas = inputs.areas.copy()
    areas["adults"] = population.counts.sum(axis=(1, 2, 3, 4))
    areas["deprivation"] = population.deprivation
    areas["owner_occupation"] = inputs.owner_occupation
    tables["areas"] = areas
    area_effects = model.area_effects.copy()
    area_effects["support_unmet"] = np.round(support, 6)
    tables["area_effects"] = area_effects
    unpaid = unpaid_care_census(inputs, population, rngs[6])
    tables.update(_census_files(inputs, population.counts, unpaid))
    for name, table in truth.items():
        tables[f"truth_{name}"] = table
    older = np.zeros(len(AGE_BANDS), dtype=bool)
    older[5:] = True
    residents = np.stack(
        [
            settings.care_home[:, ~older].sum(axis=(1, 2, 3, 4)),
            settings.care_home[:, older].sum(axis=(1, 2, 3, 4)),
        ],
        axis=1,
    )
    own_residents = settings.care_home - settings.care_home_council
    self_funded = np.stack(
        [own_residents[:, ~older].sum(axis=(1, 2, 3, 4)), own_residents[:, older].sum(axis=(1, 2, 3, 4))],
        axis=1,
    )
    homes = generate_care_homes(
        inputs.areas, residents, self_funded, population.deprivation, inputs.owner_occupation, seed
    )
    tables["care_home_register"] = homes.register
    tables["care_home_returns"] = homes.returns
    tables["care_home_areas"] = homes.areas
    tables["truth_care_homes_by_area"] = homes.truth
    drawn = {name: round(float(np.std(values)), 4) for name, values in effects.items()}
    drawn["support_unmet"] = round(float(np.std(support)), 4)
    metadata: dict[str, Any] = {
        "generator": "unmetneed.datasets.synthetic.generate_synthetic_england",
        "generator_version": GENERATOR_VERSION,
        "seed": seed,
        "summary": _summary(truth, population.counts, settings),
        "area_effect_sd_drawn": drawn,
        "covariate_share_of_council_variance": _covariate_share(population.deprivation, own_score, effects),
        "owner_occupation_standardisation": {
            "mean": round(float(inputs.owner_occupation.mean()), 6),
            "sd": round(float(inputs.owner_occupation.std()), 6),
        },
        "surveys": {
            name: {
                **tables[f"survey_{name}"].attrs,
                "respondents": len(tables[f"survey_{name}"]),
                "response_rate": round(
                    len(tables[f"survey_{name}"]) / tables[f"survey_{name}"].attrs["issued"], 4
                ),
            }
            for name in ("general", "ascs", "sace")
        },
        "model_parameters": PARAMETERS,
        "survey_parameters": SURVEY_PARAMETERS,
        "care_homes": homes.metadata,
        "licence": "Synthetic data. Council codes, names, regions, adults by age band and "
        "owner occupation (Census 2021 TS007, TS054): Contains public sector "
        "information licensed under the Open Government Licence v3.0.",
    }
    return tables, metadata


def _covariate_share(
    deprivation: np.ndarray, owner_occupation: np.ndarray, effects: dict[str, np.ndarray]
) -> dict[str, float]:
    """Share of the council-level variance of each logit carried by the covariates.

    ``var(covariate part) / (var(covariate part) + var(drawn effect))`` for the
    components with area covariates (need, council): below 0.5 means councils
    differ mostly beyond their covariates.
    """
    out = {}
    for name in ("need", "council"):
        par = PARAMETERS[name]
        part = (
            float(par["deprivation"]) * deprivation
            + float(par.get("owner_occupation", 0.0)) * owner_occupation
        )
        out[name] = round(float(part.var() / (part.var() + effects[name].var())), 4)
    return out


def _census_files(inputs: Inputs, counts: np.ndarray, unpaid: np.ndarray) -> dict[str, pd.DataFrame]:
    """The census tables written in ONS layouts (two Nomis bulk, one custom dataset)."""
    A = len(inputs.areas)
    codes = inputs.areas["area_code"].to_numpy(dtype=object)
    names = inputs.areas["area_name"].to_numpy(dtype=object)
    by_age = counts.sum(axis=(2, 3, 4))
    age = pd.DataFrame(
        {"date": np.full(A, "2021", dtype=object), "geography": names, "geography code": codes}
    )
    age["Age: Total; measures: Value"] = by_age.sum(axis=1)
    for j, label in enumerate(_TS007_LABELS):
        age[f"Age: {label}; measures: Value"] = by_age[:, j]
    care = age[["date", "geography", "geography code"]].copy()
    for label, leaves in _TS039_COLUMNS:
        column = f"Provision of unpaid care: {label}; measures: Value"
        care[column] = unpaid[:, list(leaves)].sum(axis=1)
    by_group = counts.sum(axis=(1, 2, 4))  # (A, G)
    labels = ("Does not apply", *ETHNIC_GROUPS)
    values = np.concatenate([np.zeros((A, 1), dtype=np.int64), by_group], axis=1)
    ethnic = pd.DataFrame(
        {
            "Upper tier local authorities Code": np.repeat(codes, len(labels)),
            "Upper tier local authorities": np.repeat(names, len(labels)),
            "Ethnic group (20 categories) Code": np.tile(np.asarray(_ETHNIC_20_CODES), A),
            "Ethnic group (20 categories)": np.tile(np.asarray(labels, dtype=object), A),
            "Observation": values.reshape(-1),
        }
    )
    return {"census_age_band": age, "census_unpaid_care": care, "census_ethnic_group": ethnic}


def _csv_bytes(name: str, table: pd.DataFrame) -> bytes:
    options: dict[str, Any] = {"index": False, "lineterminator": "\n"}
    if name in ("census_age_band", "census_unpaid_care"):
        options["quoting"] = csv.QUOTE_NONNUMERIC  # as Nomis writes them
    return table.to_csv(**options).encode("utf-8")


def _file_bytes(name: str, content: bytes) -> bytes:
    if FILES[name].endswith(".gz"):
        return gzip.compress(content, compresslevel=9, mtime=0)
    return content


def _resolve_seed(seed: int) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise UnmetneedError(f"seed must be a non-negative int, got {seed!r}")
    return int(seed)


def _default_inputs() -> Inputs:
    path = reference_path(INPUTS_FILE)
    if not path.is_file():
        raise ReadError(
            f"the synthetic England inputs {str(path)!r} are missing; reinstall unmetneed "
            "(the file ships in data/reference/synthetic/)"
        )
    return read_inputs(path)


def generate_synthetic_england(*, seed: int = SEED) -> SyntheticEngland:
    r"""Generate the synthetic England from its model (what the shipped files hold).

    Parameters
    ----------
    seed : int, default :data:`SEED`
        Seed of ``numpy.random.SeedSequence``; each part (population, area
        effects, council register, each survey, census unpaid care) draws from
        its own spawned stream (children 0-6), the care homes, the settings
        draw and the carers' support effects from ``spawn_key`` 7, 8 and 9.
        The shipped files use :data:`SEED`.

    Returns
    -------
    SyntheticEngland
        The same object :func:`load_synthetic_england` returns for the
        shipped files when ``seed=SEED``.

    Notes
    -----
    The generating model (see ``data/reference/README.md`` for every
    parameter) is, for cell :math:`c` (council :math:`a`, age band :math:`k`,
    sex :math:`s`, ethnic group :math:`g`, disability :math:`d`) with
    :math:`N_c` adults,

    .. math::

        \text{need}_c = N_c\,p^{N}_c,\quad
        \text{unmet}_c = \text{need}_c (1 - p^{H}_c),\quad
        \text{unpaid\_only}_c = \text{need}_c\,p^{H}_c (1 - p^{P}_c),

        \text{council\_funded}_c = \text{need}_c\,p^{H}_c p^{P}_c p^{C}_c,\quad
        \text{self\_funded}_c = \text{need}_c\,p^{H}_c p^{P}_c (1 - p^{C}_c),

    each :math:`p` a logistic function of age, sex, disability, ethnic group,
    council deprivation and owner occupation and a council random effect.
    Care-home residents per cell are drawn as
    :math:`R_c \sim \text{Binomial}(N_c, p^N_c p^H_c p^P_c p^R_c)` (people in
    need whose paid care is residential); the formulas above, with the
    probabilities conditioned on not living in a care home, give the
    household truth for the :math:`N_c - R_c` household adults; the care-home
    truth is the residents and their drawn funding. Generation takes a few
    seconds.

    Examples
    --------
    >>> from unmetneed.datasets import generate_synthetic_england
    >>> eng = generate_synthetic_england()  # doctest: +SKIP
    """
    tables, metadata = _generate_tables(_resolve_seed(seed), _default_inputs())
    return _assemble(tables, metadata)


def write_synthetic_england(
    directory: str | os.PathLike[str] | None = None, *, seed: int = SEED
) -> dict[str, Path]:
    """Generate the synthetic England and write its files with a ``MANIFEST.json``.

    Parameters
    ----------
    directory : str or PathLike, optional
        Root folder (files go to ``<directory>/synthetic/`` and
        ``<directory>/truth_*.csv``, as in ``data/reference/``). Default: the
        package's ``data/reference/`` (used to refresh the committed files).
    seed : int, default :data:`SEED`

    Returns
    -------
    dict
        File key -> path written (``"manifest"`` included).
    """
    root = Path(directory) if directory is not None else reference_path("")
    inputs_path = reference_path(INPUTS_FILE)
    tables, metadata = _generate_tables(_resolve_seed(seed), _default_inputs())
    files: dict[str, dict[str, Any]] = {}
    written: dict[str, Path] = {}
    for name, relative in FILES.items():
        content = _csv_bytes(name, tables[name])
        data = _file_bytes(name, content)
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        written[name] = path
        files[relative] = {
            "sha256": sha256_bytes(data),
            "content_sha256": sha256_bytes(content),
            "bytes": len(data),
            "rows": len(tables[name]),
        }
    inputs_data = inputs_path.read_bytes()
    target = root / INPUTS_FILE
    if target.resolve() != inputs_path.resolve():
        target.write_bytes(inputs_data)
    files[INPUTS_FILE] = {
        "sha256": sha256_bytes(inputs_data),
        "content_sha256": sha256_bytes(inputs_data),
        "bytes": len(inputs_data),
        "rows": None,
        "input": True,
    }
    manifest = {**metadata, "files": files}
    path = root / MANIFEST
    path.write_text(json.dumps(manifest, indent=1, sort_keys=False) + "\n", encoding="utf-8")
    written["manifest"] = path
    return written


# ---------------------------------------------------------------------------
# loading


def _dtype(variable: str) -> pd.CategoricalDtype:
    return pd.CategoricalDtype(list(_CATEGORIES[variable]), ordered=True)


def _categorical(values: pd.Series | np.ndarray, variable: str) -> pd.Categorical:
    categories = list(_CATEGORIES[variable])
    series = pd.Series(values, copy=False)
    result = pd.Categorical(series, categories=categories, ordered=True)
    unknown = (result.codes < 0) & series.notna().to_numpy()
    if unknown.any():
        bad = series[unknown].unique()[:5]
        raise ReadError(f"column {variable!r} has unknown categories {list(bad)}; expected {categories}")
    return result


def _read_manifest(root: Path) -> dict[str, Any]:
    path = root / MANIFEST
    if not path.is_file():
        raise ReadError(
            f"the synthetic England manifest {str(path)!r} is missing; the data files cannot "
            "be checked. Reinstall unmetneed, or rebuild the files with "
            "unmetneed.datasets.write_synthetic_england()"
        )
    manifest: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return manifest


def _verify(root: Path, manifest: dict[str, Any]) -> None:
    missing, altered = [], []
    for relative, info in manifest["files"].items():
        path = root / relative
        if not path.is_file():
            missing.append(relative)
            continue
        digest = sha256_file(path)
        if digest != info["sha256"]:
            altered.append(f"{relative} (sha256 {digest[:12]}..., expected {info['sha256'][:12]}...)")
    problems = []
    if missing:
        problems.append(f"missing: {', '.join(missing)}")
    if altered:
        problems.append(f"altered (checksum differs from MANIFEST.json): {', '.join(altered)}")
    if problems:
        raise ReadError(
            f"the synthetic England files in {str(root)!r} do not match their manifest; "
            + "; ".join(problems)
            + ". Restore them from the package (reinstall unmetneed or check out "
            "data/reference/ again) or rebuild them with write_synthetic_england()"
        )


def _read_tables(root: Path) -> dict[str, pd.DataFrame]:
    text = {
        "area_code": str,
        "area_name": str,
        "region_code": str,
        "region_name": str,
        "council_type": str,
        "stratum": str,
        "psu": str,
        "respondent_id": str,
        "home_id": str,
        "region": str,
    }
    tables = {}
    for name, relative in FILES.items():
        path = root / relative
        if not path.is_file():
            raise ReadError(f"synthetic England file {str(path)!r} is missing")
        if name.startswith("census_"):
            tables[name] = pd.read_csv(path, dtype={"geography code": str, "geography": str})
        else:
            tables[name] = pd.read_csv(path, dtype=text)
    return tables


def load_synthetic_england(
    *, directory: str | os.PathLike[str] | None = None, verify: bool = True
) -> SyntheticEngland:
    """Load the synthetic England shipped with the package (no network, no regeneration).

    Parameters
    ----------
    directory : str or PathLike, optional
        Root folder holding ``synthetic/`` and ``truth_*.csv``. Default: the
        package's ``data/reference/``.
    verify : bool, default True
        Check every file against the SHA-256 checksums in
        ``synthetic/MANIFEST.json`` first.

    Returns
    -------
    SyntheticEngland

    Raises
    ------
    ReadError
        The manifest or a file is missing, or a file's checksum differs from
        the manifest (the message lists the files and how to restore them).

    Notes
    -----
    Survey items that were not asked are missing: ``help`` (asked when
    ``need == 1``), ``payer`` (asked when ``help == "paid"``) and
    ``help_enough`` (asked when ``help != "none"``). Estimators refuse missing
    values, so use the 0/1 indicator columns every respondent has
    (``any_help``, ``paid_help``, ``council_funded``, ``self_funded``,
    ``unpaid_only``, ``unmet``, ``insufficient``), e.g. the self-funder share
    of paid care is ``design.ratio("self_funded", "paid_help")``.

    Examples
    --------
    >>> import unmetneed as um
    >>> eng = um.datasets.load_synthetic_england()
    >>> len(eng.areas), int(eng.population.total)
    (152, 44715424)
    >>> truth = eng.truth["by_area"]
    >>> need = truth[truth["setting"] == "all"].pivot(index="area_code", columns="quantity",
    ...                                              values="value")
    >>> bool((need[["council_funded", "self_funded", "unpaid_only", "unmet"]]
    ...       .sum(axis=1) == need["need"]).all())
    True
    >>> sorted(eng.population.cells["setting"].unique())
    ['care_home', 'household']
    >>> eng.surveys["general"].mean("need").to_frame().shape
    (1, 6)
    """
    root = Path(directory) if directory is not None else reference_path("")
    manifest = _read_manifest(root)
    if verify:
        _verify(root, manifest)
    tables = _read_tables(root)
    metadata = {k: v for k, v in manifest.items()}
    return _assemble(tables, metadata)


# ---------------------------------------------------------------------------
# assembling the object from the tables (same code for generated and loaded)


def _dense_counts(population: pd.DataFrame, codes: list[str]) -> np.ndarray:
    """Counts (setting, A, K, S, G, D) from the non-empty cells of the file."""
    position = {c: i for i, c in enumerate(codes)}
    a = population["area_code"].map(position)
    if a.isna().any():
        raise ReadError(
            "population.csv.gz has area codes not in areas.csv: "
            f"{sorted(population.loc[a.isna(), 'area_code'].unique())[:5]}"
        )
    setting = pd.Categorical(population["setting"], categories=list(FRAME_SETTINGS))
    if (setting.codes < 0).any():
        raise ReadError(f"population.csv.gz has settings other than {list(FRAME_SETTINGS)}")
    index = [setting.codes.astype(np.int64), a.to_numpy(dtype=np.int64)]
    for variable in _AXES[1:]:
        cat = _categorical(population[variable], variable)
        index.append(cat.codes.astype(np.int64))
    shape = (len(FRAME_SETTINGS), len(codes), len(AGE_BANDS), len(SEXES), len(ETHNIC_GROUPS), len(DISABILITY))
    counts = np.zeros(shape, dtype=np.int64)
    counts[tuple(index)] = population["count"].to_numpy(dtype=np.int64)
    return counts


def _frame(
    counts: np.ndarray, codes: list[str], deprivation: np.ndarray, owner_occupation: np.ndarray
) -> Any:
    """Household cells (every combination) then care-home cells with residents."""
    parts = []
    for j, setting in enumerate(FRAME_SETTINGS):
        block = counts[j]
        grids = np.indices(block.shape).reshape(5, -1)
        flat = block.reshape(-1)
        if setting == "care_home":
            keep = np.flatnonzero(flat)
            grids, flat = grids[:, keep], flat[keep]
        cells = pd.DataFrame({"area_code": pd.array(np.asarray(codes, dtype=object)[grids[0]], dtype="str")})
        for axis, variable in enumerate(_AXES[1:], start=1):
            cells[variable] = pd.Categorical.from_codes(grids[axis], dtype=_dtype(variable))
        cells["setting"] = pd.Categorical.from_codes(
            np.full(len(flat), j), dtype=pd.CategoricalDtype(list(FRAME_SETTINGS), ordered=True)
        )
        cells["deprivation"] = deprivation[grids[0]]
        cells["owner_occupation"] = owner_occupation[grids[0]]
        cells["count"] = flat
        parts.append(cells)
    return build_population_frame(pd.concat(parts, ignore_index=True))


def _census_from_counts(counts: np.ndarray, codes: list[str], names: list[str]) -> dict[str, pd.DataFrame]:
    out: dict[str, pd.DataFrame] = {}
    for name, variables in CENSUS_TABLES.items():
        axes = [_AXES.index(v) for v in variables]
        other = tuple(i for i in range(1, 5) if i not in axes)
        table = counts.sum(axis=other)  # (A, *variables)
        grids = np.indices(table.shape).reshape(table.ndim, -1)
        frame = pd.DataFrame(
            {
                "area_code": pd.array(np.asarray(codes, dtype=object)[grids[0]], dtype="str"),
                "area_name": pd.array(np.asarray(names, dtype=object)[grids[0]], dtype="str"),
            }
        )
        for j, variable in enumerate(variables, start=1):
            frame[variable] = pd.Categorical.from_codes(grids[j], dtype=_dtype(variable))
        frame["count"] = table.reshape(-1).astype(np.int64)
        frame.attrs.update(_census_attrs(name, list(variables)))
        out[name] = frame
    return out


def _census_attrs(name: str, variables: list[str]) -> dict[str, Any]:
    return {
        "table_id": None,
        "layout": "synthetic",
        "source": "unmetneed synthetic England",
        "geography": "Upper tier local authorities",
        "date": "2021",
        "level": "detailed",
        "variable": variables[0] if len(variables) == 1 else None,
        "variables": variables,
        "name": name,
    }


def _unpaid_care_table(table: pd.DataFrame) -> pd.DataFrame:
    """Tidy unpaid-care table from the Nomis bulk file (leaf categories only)."""
    columns = [f"Provision of unpaid care: {label}; measures: Value" for label in UNPAID_CARE]
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ReadError(f"the unpaid-care census file lacks columns {missing}")
    values = table[columns].to_numpy(dtype=np.int64)
    A = len(table)
    out = pd.DataFrame(
        {
            "area_code": pd.array(
                np.repeat(table["geography code"].to_numpy(dtype=object), len(UNPAID_CARE)), dtype="str"
            ),
            "area_name": pd.array(
                np.repeat(table["geography"].to_numpy(dtype=object), len(UNPAID_CARE)), dtype="str"
            ),
            "unpaid_care": pd.Categorical.from_codes(
                np.tile(np.arange(len(UNPAID_CARE)), A), dtype=_dtype("unpaid_care")
            ),
            "count": values.reshape(-1),
        }
    )
    out.attrs.update(_census_attrs("unpaid_care", ["unpaid_care"]))
    return out


def _truth(tables: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    out = {}
    for name in TRUTH_TABLES:
        table = tables[f"truth_{name}"].copy()
        for column in table.columns:
            if column == "setting":
                table[column] = pd.Categorical(table[column], categories=list(TRUTH_SETTINGS), ordered=True)
            elif column in _CATEGORIES:
                table[column] = _categorical(table[column], column)
            elif column == "area_code":
                table[column] = table[column].astype("str")
        table["value"] = table["value"].astype(np.float64)
        out[name] = table
    homes = tables["truth_care_homes_by_area"].copy()
    homes["area_code"] = homes["area_code"].astype("str")
    for column in ("residents", "self_funded"):
        homes[column] = homes[column].astype(np.int64)
    out["care_homes_by_area"] = homes
    return out


def _care_homes(tables: dict[str, pd.DataFrame]) -> CareHomes:
    register = tables["care_home_register"].copy()
    for column in ("home_id", "area_code", "region"):
        register[column] = register[column].astype("str")
    for column in ("home_type", "size_band", "rating"):
        register[column] = _categorical(register[column], column)
    register["nursing"] = register["nursing"].astype(bool)
    for column in ("beds", "deprivation_decile"):
        register[column] = register[column].astype(np.int64)
    returns = tables["care_home_returns"].copy()
    returns["home_id"] = returns["home_id"].astype("str")
    for column in returns.columns[1:]:
        returns[column] = returns[column].astype(np.int64)
    areas = tables["care_home_areas"].copy()
    areas["area_code"] = areas["area_code"].astype("str")
    areas["owner_occupied_share"] = areas["owner_occupied_share"].astype(np.float64)
    return CareHomes(register=register, returns=returns, areas=areas)


_SURVEY_CATEGORICALS = (
    "age_band",
    "sex",
    "ethnic_group",
    "disability",
    "help",
    "payer",
    "user_group",
    "setting",
    "unpaid_care",
    "cared_for_age_group",
)
_SURVEY_TEXT = ("respondent_id", "stratum", "psu", "area_code", "area_name", "region_code", "region_name")


def _survey_frame(table: pd.DataFrame) -> pd.DataFrame:
    table = table.copy()
    for column in table.columns:
        if column in _SURVEY_CATEGORICALS:
            table[column] = _categorical(table[column], column)
        elif column in _SURVEY_TEXT:
            table[column] = table[column].astype("str")
        elif column == "help_enough":
            table[column] = table[column].astype("Int64")
    return table


def _assemble(tables: dict[str, pd.DataFrame], metadata: dict[str, Any]) -> SyntheticEngland:
    areas = tables["areas"].copy()
    for column in ("area_code", "area_name", "council_type", "region_code", "region_name"):
        areas[column] = areas[column].astype("str")
    areas["adults"] = areas["adults"].astype(np.int64)
    areas["deprivation"] = areas["deprivation"].astype(np.float64)
    areas["owner_occupation"] = areas["owner_occupation"].astype(np.float64)
    codes = areas["area_code"].tolist()
    names = areas["area_name"].tolist()
    by_setting = _dense_counts(tables["population"], codes)
    counts = by_setting.sum(axis=0)
    if not np.array_equal(counts.sum(axis=(1, 2, 3, 4)), areas["adults"].to_numpy()):
        raise ReadError("population.csv.gz and areas.csv disagree on the adults per council")
    population = _frame(
        by_setting, codes, areas["deprivation"].to_numpy(), areas["owner_occupation"].to_numpy()
    )
    census = _census_from_counts(counts, codes, names)
    census["unpaid_care"] = _unpaid_care_table(tables["census_unpaid_care"])
    general = _survey_frame(tables["survey_general"])
    ascs = _survey_frame(tables["survey_ascs"])
    sace = _survey_frame(tables["survey_sace"])
    surveys = {
        "general": build_survey_design(general, weights="weight", strata="stratum", clusters="psu"),
        "ascs": build_survey_design(ascs, weights="weight", strata="stratum", fpc="fpc"),
        "sace": build_survey_design(sace, weights="weight", strata="stratum", fpc="fpc"),
    }
    admin = tables["admin"].copy()
    admin["area_code"] = admin["area_code"].astype("str")
    admin["area_name"] = admin["area_name"].astype("str")
    admin["age_group"] = _categorical(admin["age_group"], "age_group")
    admin["setting"] = _categorical(admin["setting"], "setting")
    admin["count"] = admin["count"].astype(np.int64)
    effects = tables["area_effects"].copy()
    effects["area_code"] = effects["area_code"].astype("str")
    return SyntheticEngland(
        population=population,
        areas=areas,
        truth=_truth(tables),
        census=census,
        surveys=surveys,
        admin=admin,
        area_effects=effects,
        metadata=metadata,
        care_homes=_care_homes(tables),
    )
