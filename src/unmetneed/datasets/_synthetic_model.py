r"""The data-generating model of the synthetic England.

Everything here is vectorised over the cell grid ``(area, age_band, sex,
ethnic_group, disability)`` = 152 x 8 x 2 x 19 x 3 = 138,624 cells, held as
numpy arrays of that shape (axes in that order).

Population
    Adults by council and age band are the real Census 2021 TS007 counts
    (``council_inputs.csv``). Within each council and age band the split by
    sex, ethnic group and disability is drawn from a multinomial whose
    probabilities are synthetic: sex by a female share rising with age;
    ethnicity from a council minority share (hand-set for well-known diverse
    councils, regional baselines elsewhere) tilted by age, spread over the 18
    minority groups in the England-wide mix with council emphases (e.g.
    Bangladeshi in Tower Hamlets, Indian in Leicester); disability from two
    logits (disabled at all, and limited a lot given disabled) rising steeply
    with age.

Deprivation
    ``deprivation`` is a synthetic standardised council score:
    ``z(log disability_ratio) + 0.35 z(logit minority share) + N(0, 0.3^2)``,
    standardised to mean 0 and SD 1 over the 152 councils, where
    ``disability_ratio`` is the indirectly age-standardised Census 2021
    disability ratio (real) and the rest synthetic. It is not the IMD.

Owner occupation
    ``own_a``: the council's share of households owning their home (Census
    2021 TS054, real), standardised over the 152 councils (:func:`standardise`)
    where it enters a logit. It lowers P(council | paid) (the home counts in
    the means test for residential care) and, slightly, need.

Care model (probabilities per cell; ``logit`` links, area random effects ``u``)
    .. math::

        \operatorname{logit} P(\text{need}) &= \alpha^{N}_{k} + \beta^{N}_{d} + \beta^{N}_{s}
            + \beta^{N}_{g} + \gamma^{N} \text{dep}_a + \delta^{N} \text{own}_a + u^{N}_a \\
        \operatorname{logit} P(\text{help} \mid \text{need}) &= \alpha^{H}_{k} + \beta^{H}_{d}
            + \beta^{H}_{s} + \gamma^{H} \text{dep}_a + u^{H}_a \\
        \operatorname{logit} P(\text{paid} \mid \text{help}) &= \alpha^{P}_{k} + \beta^{P}_{d}
            + \beta^{P}_{g} + \gamma^{P} \text{dep}_a + u^{P}_a \\
        \operatorname{logit} P(\text{council} \mid \text{paid}) &= \alpha^{C}_{k} + \beta^{C}_{d}
            + \beta^{C}_{s} + \beta^{C}_{g} + \gamma^{C} \text{dep}_a + \delta^{C} \text{own}_a
            + u^{C}_a \\
        \operatorname{logit} P(\text{not enough} \mid \text{help type } t) &= \alpha^{E}_{t}
            + \gamma^{E} \text{dep}_a + u^{E}_a

    with ``u ~ N(0, sigma^2)`` independent across councils and components, and
    further logits (no area effects beyond deprivation) for a council top-up
    paid by the person (``payer = both``), residential/nursing care among paid
    care, a learning-disability support reason among council-funded people,
    and the Census unpaid-care bands. All coefficients are in
    :data:`PARAMETERS` (and copied into ``MANIFEST.json``).

Settings
    Care-home residents per cell ``R ~ Binomial(N, p_need p_help p_paid
    p_residential)`` (people in need whose paid care is residential), the
    council-funded among them ``~ Binomial(R, P(council | paid, residential))``
    (P(council | paid) shifted by +1.5 on the logit under 65); the other
    ``N - R`` adults live in private households (:func:`draw_settings`).

Truth (:func:`truth_by_setting`)
    Households: the formulas below for the household adults under the model
    conditioned on not living in a care home (:func:`household_model`). Care
    homes: need = residents, council_funded / self_funded the drawn split,
    unpaid_only = unmet = 0. ``all`` = household + care_home.
    Expected counts per cell: ``need = N p_need``, ``unmet = need (1 - p_help)``,
    ``unpaid_only = need p_help (1 - p_paid)``, ``council_funded = need p_help
    p_paid p_council``, ``self_funded = need p_help p_paid (1 - p_council)``,
    ``insufficient = sum over help types of the count with that help x
    P(not enough | type)``. They are kept as whole multiples of 1/1024 of a
    person (:data:`UNITS`): ``need`` is rounded to a multiple, then split into
    the four exclusive parts by largest remainders, so every sum of truth
    values is exact in binary floating point and the parts add up to ``need``
    exactly in any table.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from unmetneed.io.unpaid_care import UNPAID_CARE_BANDS

__all__ = [
    "AGE_BANDS",
    "DISABILITY",
    "ETHNIC_GROUPS",
    "PARAMETERS",
    "PARTS",
    "QUANTITIES",
    "SEXES",
    "TRUTH_SETTINGS",
    "UNITS",
    "UNPAID_CARE",
    "CareModel",
    "Inputs",
    "Population",
    "Settings",
    "build_population",
    "care_model",
    "draw_settings",
    "household_model",
    "read_inputs",
    "residential_probability",
    "standardise",
    "truth_by_setting",
    "truth_units",
    "unpaid_care_probabilities",
]

AGE_BANDS = ("18-24", "25-34", "35-44", "45-54", "55-64", "65-74", "75-84", "85+")
SEXES = ("Female", "Male")
# Census 2021 TS021 detailed groups, ONS labels, in unmetneed's standard order
# (src/unmetneed/harmonise/maps/categories.csv).
ETHNIC_GROUPS = (
    "Asian, Asian British or Asian Welsh: Bangladeshi",
    "Asian, Asian British or Asian Welsh: Chinese",
    "Asian, Asian British or Asian Welsh: Indian",
    "Asian, Asian British or Asian Welsh: Pakistani",
    "Asian, Asian British or Asian Welsh: Other Asian",
    "Black, Black British, Black Welsh, Caribbean or African: African",
    "Black, Black British, Black Welsh, Caribbean or African: Caribbean",
    "Black, Black British, Black Welsh, Caribbean or African: Other Black",
    "Mixed or Multiple ethnic groups: White and Asian",
    "Mixed or Multiple ethnic groups: White and Black African",
    "Mixed or Multiple ethnic groups: White and Black Caribbean",
    "Mixed or Multiple ethnic groups: Other Mixed or Multiple ethnic groups",
    "White: English, Welsh, Scottish, Northern Irish or British",
    "White: Irish",
    "White: Gypsy or Irish Traveller",
    "White: Roma",
    "White: Other White",
    "Other ethnic group: Arab",
    "Other ethnic group: Any other ethnic group",
)
# Short names used in the parameter tables, same order as ETHNIC_GROUPS.
GROUP_KEYS = (
    "bangladeshi",
    "chinese",
    "indian",
    "pakistani",
    "other_asian",
    "african",
    "caribbean",
    "other_black",
    "mixed_white_asian",
    "mixed_white_black_african",
    "mixed_white_black_caribbean",
    "other_mixed",
    "white_british",
    "irish",
    "gypsy",
    "roma",
    "other_white",
    "arab",
    "other",
)
WHITE_BRITISH = GROUP_KEYS.index("white_british")
DISABILITY = ("Disabled: limited a lot", "Disabled: limited a little", "Not disabled")
UNPAID_CARE = UNPAID_CARE_BANDS  # Census 2021 TS039, as the reader labels them
#: Truth quantities; the first five are ``need`` and its four exclusive parts.
QUANTITIES = ("need", "council_funded", "self_funded", "unpaid_only", "unmet", "insufficient")
PARTS = ("council_funded", "self_funded", "unpaid_only", "unmet")
#: Truth values are whole multiples of 1/UNITS of a person (exact in binary).
UNITS = 1024

K, S, G, D = len(AGE_BANDS), len(SEXES), len(ETHNIC_GROUPS), len(DISABILITY)


def _groups(default: float = 0.0, **values: float) -> list[float]:
    return [float(values.get(key, default)) for key in GROUP_KEYS]


#: Every coefficient of the generating model (logit scale unless stated).
#: Vectors indexed by age band follow AGE_BANDS, by disability DISABILITY,
#: by ethnic group ETHNIC_GROUPS; ``sex`` coefficients apply to women.
PARAMETERS: dict[str, dict[str, Any]] = {
    "sex": {
        "female_share_by_age": [0.492, 0.505, 0.508, 0.508, 0.510, 0.522, 0.548, 0.640],
        "area_sd": 0.03,
    },
    "ethnicity": {
        # England 2021 shares (per cent, all ages) of the 19 groups
        "england_share": _groups(
            bangladeshi=1.1,
            chinese=0.7,
            indian=3.3,
            pakistani=2.8,
            other_asian=1.6,
            african=2.6,
            caribbean=1.1,
            other_black=0.5,
            mixed_white_asian=0.8,
            mixed_white_black_african=0.4,
            mixed_white_black_caribbean=0.9,
            other_mixed=0.8,
            white_british=73.5,
            irish=0.9,
            gypsy=0.1,
            roma=0.2,
            other_white=6.4,
            arab=0.6,
            other=1.6,
        ),
        # logit shift of the minority (not White British) share by age band
        "minority_age_shift": [0.39, 0.57, 0.48, 0.05, -0.42, -0.89, -1.21, -1.49],
        "minority_area_sd": 0.2,
        "group_area_sd": 0.35,
    },
    "disability": {
        # P(disabled at all) and P(limited a lot | disabled) by age band at dep = 0
        "p_disabled_by_age": [0.11, 0.12, 0.14, 0.18, 0.25, 0.29, 0.40, 0.60],
        "p_a_lot_by_age": [0.30, 0.33, 0.37, 0.40, 0.43, 0.42, 0.48, 0.62],
        "female": 0.10,
        "deprivation": 0.22,
        "a_lot_deprivation": 0.15,
        "area_sd": 0.06,
        "ethnic_group": _groups(
            bangladeshi=0.25,
            chinese=-0.45,
            indian=-0.10,
            pakistani=0.25,
            other_asian=-0.15,
            african=-0.35,
            caribbean=0.10,
            other_black=0.0,
            mixed_white_asian=0.05,
            mixed_white_black_african=0.05,
            mixed_white_black_caribbean=0.15,
            other_mixed=0.05,
            irish=0.20,
            gypsy=0.60,
            roma=0.10,
            other_white=-0.35,
            arab=-0.05,
            other=-0.10,
        ),
    },
    "need": {
        "age": [-5.0, -4.9, -4.7, -4.4, -4.0, -2.7, -1.9, -1.1],
        "disability": [3.1, 1.5, 0.0],
        "female": 0.15,
        "deprivation": 0.25,
        "owner_occupation": -0.05,
        "area_sd": 0.30,
        "ethnic_group": _groups(
            bangladeshi=0.30,
            chinese=-0.20,
            indian=0.10,
            pakistani=0.30,
            other_asian=0.05,
            african=-0.10,
            caribbean=0.10,
            other_black=0.05,
            gypsy=0.40,
            irish=0.05,
            other_white=-0.15,
            arab=0.10,
            roma=0.20,
        ),
    },
    "help": {  # P(any help | need)
        "age": [0.25, 0.2, 0.15, 0.15, 0.15, -0.05, 0.15, 0.60],
        "disability": [0.45, 0.0, -0.35],
        "female": -0.10,
        "deprivation": 0.05,
        "area_sd": 0.20,
    },
    "paid": {  # P(paid help | any help)
        "age": [0.3, 0.3, 0.25, 0.2, 0.05, -0.35, 0.05, 0.65],
        "disability": [0.55, -0.05, -0.55],
        "deprivation": -0.05,
        "area_sd": 0.15,
        "ethnic_group": _groups(
            bangladeshi=-0.80,
            chinese=-0.30,
            indian=-0.50,
            pakistani=-0.80,
            other_asian=-0.40,
            african=-0.20,
            caribbean=-0.10,
            other_black=-0.20,
            gypsy=-0.60,
            arab=-0.40,
            other=-0.30,
            roma=-0.40,
        ),
    },
    "council": {  # P(any council funding | paid help)
        "age": [2.6, 2.4, 2.2, 2.0, 1.5, 0.60, 0.35, 0.15],
        "disability": [0.20, 0.0, -0.10],
        "female": 0.10,
        # means test: deprived areas and areas with fewer home owners have fewer
        # self-funders (the home counts in the means test for residential care)
        "deprivation": 0.10,
        "owner_occupation": -0.20,
        "area_sd": 0.30,
        # care-home residents under 65 are almost all funded by their council
        # (ONS 2022-23: 2.0% of residents of younger-adult homes self-fund)
        "residential_working_age": 1.5,
        "ethnic_group": _groups(
            0.30,
            white_british=0.0,
            irish=0.0,
            other_white=0.10,
            chinese=0.0,
            indian=0.10,
        ),
    },
    "topup": {  # P(payer = both | council funded): a top-up paid by the person
        "intercept": -2.0,
        "working_age": -1.2,
        "deprivation": -0.35,
    },
    "not_enough": {  # P(help not enough | help type)
        "unpaid_only": 0.5,
        "council": -0.15,
        "self": -0.45,
        "deprivation": 0.10,
        "area_sd": 0.15,
    },
    "residential": {  # P(residential or nursing care | paid help)
        "age": [-2.45, -2.45, -2.35, -2.25, -2.05, -1.45, -0.9, -0.2],
        "disability": [0.45, -0.30, -0.90],
    },
    "learning_disability": {  # P(learning-disability support | council funded)
        "age": [0.9, 0.55, 0.2, -0.05, -0.55, -2.0, -3.4, -4.4],
        "disability": [0.5, -0.3, -1.2],
    },
    "unpaid_care": {  # Census unpaid-care bands (all adults)
        "p_carer_by_age": [0.042, 0.055, 0.083, 0.12, 0.157, 0.13, 0.105, 0.065],
        "female": 0.35,
        "disability": [-0.05, 0.15, 0.0],
        "deprivation": 0.10,
        # multinomial logit of the five caring bands (9h or less .. 50h+) given carer
        "band_shares": [0.36, 0.14, 0.10, 0.11, 0.29],
        "band_age": [-0.4, -0.3, -0.2, -0.1, 0.0, 0.25, 0.5, 0.6],
        "band_deprivation": 0.15,
        "band_a_lot": 0.40,
    },
    "deprivation": {
        "minority_weight": 0.35,
        "noise_sd": 0.30,
    },
}

# Minority (not White British) share of adults, hand-set for councils whose
# diversity is well known (rough 2021 magnitudes, synthetic); elsewhere a
# regional baseline, a little higher in unitary and metropolitan councils.
MINORITY_SHARE: dict[str, float] = {
    # London
    "E09000001": 0.43,
    "E09000002": 0.66,
    "E09000003": 0.60,
    "E09000004": 0.36,
    "E09000005": 0.83,
    "E09000006": 0.32,
    "E09000007": 0.53,
    "E09000008": 0.58,
    "E09000009": 0.68,
    "E09000010": 0.59,
    "E09000011": 0.55,
    "E09000012": 0.62,
    "E09000013": 0.56,
    "E09000014": 0.67,
    "E09000015": 0.77,
    "E09000016": 0.29,
    "E09000017": 0.57,
    "E09000018": 0.67,
    "E09000019": 0.55,
    "E09000020": 0.63,
    "E09000021": 0.45,
    "E09000022": 0.60,
    "E09000023": 0.57,
    "E09000024": 0.55,
    "E09000025": 0.84,
    "E09000026": 0.74,
    "E09000027": 0.34,
    "E09000028": 0.61,
    "E09000029": 0.40,
    "E09000030": 0.75,
    "E09000031": 0.62,
    "E09000032": 0.52,
    "E09000033": 0.66,
    # elsewhere
    "E06000016": 0.63,
    "E08000025": 0.50,
    "E06000039": 0.72,
    "E06000032": 0.58,
    "E08000032": 0.37,
    "E06000008": 0.37,
    "E08000003": 0.42,
    "E08000028": 0.38,
    "E08000031": 0.37,
    "E08000026": 0.33,
    "E06000018": 0.35,
    "E08000035": 0.18,
    "E08000034": 0.23,
    "E08000004": 0.25,
    "E08000005": 0.22,
    "E08000001": 0.23,
    "E06000015": 0.23,
    "E06000031": 0.30,
    "E06000038": 0.38,
    "E06000042": 0.30,
    "E06000023": 0.26,
    "E08000019": 0.18,
    "E08000012": 0.14,
    "E08000021": 0.19,
    "E06000045": 0.23,
    "E08000009": 0.21,
    "E08000006": 0.20,
    "E08000030": 0.23,
    "E06000043": 0.19,
    "E06000034": 0.20,
    "E06000055": 0.26,
    "E10000015": 0.19,
    "E06000060": 0.17,
    "E10000030": 0.16,
    "E08000033": 0.12,
    "E08000002": 0.14,
    "E06000002": 0.14,
    "E06000021": 0.14,
    "E10000018": 0.11,
    "E06000033": 0.16,
    "E06000036": 0.18,
    "E06000040": 0.22,
    "E06000041": 0.20,
    "E06000044": 0.17,
    "E10000003": 0.16,
    "E10000025": 0.16,
    "E08000029": 0.16,
    "E06000010": 0.10,
    "E06000035": 0.14,
    "E10000019": 0.09,
}
REGION_MINORITY_BASE = {
    "E12000001": 0.055,
    "E12000002": 0.09,
    "E12000003": 0.09,
    "E12000004": 0.10,
    "E12000005": 0.10,
    "E12000006": 0.15,
    "E12000007": 0.55,
    "E12000008": 0.15,
    "E12000009": 0.075,
}
# Largely rural councils: a lower share than their region's baseline.
RURAL = frozenset(
    {
        "E06000052",
        "E06000053",
        "E06000057",
        "E06000047",
        "E06000051",
        "E06000019",
        "E06000054",
        "E06000059",
        "E06000011",
        "E06000017",
        "E06000046",
        "E06000003",
        "E10000006",
        "E10000023",
        "E10000008",
        "E10000027",
        "E10000020",
        "E10000029",
        "E10000007",
        "E10000028",
        "E10000034",
        "E10000013",
    }
)
# Council emphases on minority groups (multipliers of the England-wide mix).
GROUP_EMPHASIS: dict[str, dict[str, float]] = {
    "E09000030": {"bangladeshi": 16.0},
    "E09000025": {"bangladeshi": 5.0, "indian": 2.0, "pakistani": 2.0, "african": 1.5},
    "E09000007": {"bangladeshi": 2.5, "chinese": 2.0, "other_white": 1.8, "irish": 1.8},
    "E08000004": {"bangladeshi": 3.0, "pakistani": 4.0},
    "E06000032": {"bangladeshi": 3.0, "pakistani": 4.0, "irish": 1.5},
    "E08000025": {"pakistani": 3.5, "bangladeshi": 2.5, "caribbean": 2.5, "indian": 1.3},
    "E08000032": {"pakistani": 6.0},
    "E06000008": {"pakistani": 5.0, "indian": 2.5},
    "E08000005": {"pakistani": 5.0},
    "E08000034": {"pakistani": 4.0, "indian": 1.5},
    "E08000033": {"pakistani": 4.0},
    "E06000039": {"pakistani": 4.0, "indian": 2.5, "other_white": 1.5},
    "E08000001": {"indian": 2.0, "pakistani": 2.5},
    "E08000003": {"pakistani": 2.5, "african": 1.5, "chinese": 2.0, "arab": 2.0, "irish": 1.5},
    "E08000019": {"pakistani": 2.0, "chinese": 1.5, "arab": 2.0, "roma": 2.0},
    "E06000031": {"pakistani": 2.0, "other_white": 2.0, "roma": 3.0},
    "E09000026": {"pakistani": 2.0, "indian": 2.5, "bangladeshi": 2.0},
    "E09000031": {"pakistani": 2.5, "caribbean": 2.0, "other_white": 1.5},
    "E06000016": {"indian": 5.0, "roma": 2.0},
    "E09000015": {"indian": 4.0, "irish": 1.8, "other_asian": 2.0},
    "E09000005": {"indian": 2.5, "caribbean": 2.5, "other_white": 1.5, "arab": 2.0, "irish": 2.0},
    "E09000018": {"indian": 3.0, "pakistani": 1.5},
    "E08000031": {"indian": 3.0, "caribbean": 2.5},
    "E08000028": {"indian": 3.0, "caribbean": 2.5, "pakistani": 1.5},
    "E09000009": {"indian": 2.5, "other_white": 1.6, "arab": 2.5, "irish": 1.8},
    "E09000017": {"indian": 3.0, "pakistani": 1.5},
    "E08000026": {"indian": 2.0, "chinese": 1.5, "irish": 1.3},
    "E10000018": {"indian": 3.0},
    "E09000028": {"african": 2.5, "caribbean": 2.0},
    "E09000023": {"african": 2.5, "caribbean": 4.0},
    "E09000011": {"african": 2.5},
    "E09000002": {"african": 3.0},
    "E09000008": {"african": 2.0, "caribbean": 3.0},
    "E09000022": {"african": 2.0, "caribbean": 3.0},
    "E09000012": {"african": 1.5, "caribbean": 2.5, "other_white": 1.5},
    "E09000010": {"african": 1.5, "caribbean": 2.0, "other_white": 1.8},
    "E09000014": {"caribbean": 2.0, "other_white": 2.0},
    "E06000042": {"african": 2.0},
    "E06000034": {"african": 2.0},
    "E06000018": {"caribbean": 1.5, "chinese": 1.5},
    "E09000033": {"other_white": 2.2, "arab": 4.0, "chinese": 2.0},
    "E09000020": {"other_white": 2.2, "arab": 4.0},
    "E09000013": {"other_white": 2.0, "irish": 2.0},
    "E09000003": {"other_white": 1.5, "indian": 1.5},
    "E10000019": {"other_white": 2.5},
    "E08000021": {"chinese": 2.0},
    "E10000003": {"chinese": 1.5, "gypsy": 3.0},
    "E10000016": {"gypsy": 3.0},
    "E10000012": {"gypsy": 3.0},
    "E10000015": {"gypsy": 2.0},
    "E10000030": {"gypsy": 2.5},
    "E08000018": {"roma": 3.0},
    "E06000015": {"roma": 3.0, "indian": 1.5, "pakistani": 1.5},
    "E08000012": {"irish": 1.5, "chinese": 1.5},
    "E09000019": {"irish": 2.0},
}
# log multipliers of each minority group's share by age band
GROUP_AGE_TILT: dict[str, list[float]] = {
    "other_white": [0.0, 0.3, 0.3, 0.1, -0.2, -0.4, -0.5, -0.5],
    "irish": [-1.0, -0.8, -0.6, -0.3, 0.2, 0.6, 1.0, 1.2],
    "caribbean": [-0.6, -0.5, -0.4, -0.1, 0.4, 0.6, 0.8, 0.6],
    "mixed_white_asian": [0.8, 0.4, 0.1, -0.2, -0.6, -1.0, -1.4, -1.6],
    "mixed_white_black_african": [0.8, 0.4, 0.1, -0.2, -0.6, -1.0, -1.4, -1.6],
    "mixed_white_black_caribbean": [0.8, 0.4, 0.1, -0.2, -0.6, -1.0, -1.4, -1.6],
    "other_mixed": [0.8, 0.4, 0.1, -0.2, -0.6, -1.0, -1.4, -1.6],
    "african": [0.1, 0.1, 0.3, 0.2, -0.2, -0.7, -1.2, -1.5],
    "chinese": [0.8, 0.3, 0.0, -0.1, -0.2, -0.4, -0.6, -0.8],
    "arab": [0.4, 0.3, 0.2, 0.0, -0.3, -0.6, -0.8, -1.0],
    "bangladeshi": [0.3, 0.2, 0.1, -0.1, -0.1, -0.2, -0.5, -0.9],
    "pakistani": [0.3, 0.2, 0.1, -0.1, -0.1, -0.2, -0.5, -0.9],
    "indian": [-0.1, 0.1, 0.1, 0.0, 0.1, 0.1, -0.1, -0.3],
    "roma": [0.3, 0.3, 0.1, -0.2, -0.6, -1.0, -1.5, -2.0],
    "gypsy": [0.2, 0.1, 0.0, 0.0, -0.1, -0.3, -0.5, -0.6],
    "other_asian": [0.2, 0.2, 0.2, 0.0, -0.3, -0.6, -0.9, -1.2],
    "other_black": [0.2, 0.2, 0.2, 0.0, -0.3, -0.6, -0.9, -1.2],
    "other": [0.2, 0.2, 0.2, 0.0, -0.3, -0.6, -0.9, -1.2],
}
# Area random effects of the care model: component -> standard deviation.
AREA_EFFECTS = ("need", "help", "paid", "council", "not_enough")


def logit(p: np.ndarray | float) -> np.ndarray:
    p = np.asarray(p, dtype=float)
    return np.log(p) - np.log1p(-p)


def expit(x: np.ndarray | float) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=float)))


def _vector(values: object, axis: int, ndim: int = 5) -> np.ndarray:
    """A parameter vector shaped to broadcast along one axis of the cell grid."""
    array = np.asarray(values, dtype=float)
    shape = [1] * ndim
    shape[axis] = array.size
    return array.reshape(shape)


def _area(values: np.ndarray, ndim: int = 5) -> np.ndarray:
    return np.asarray(values, dtype=float).reshape((-1,) + (1,) * (ndim - 1))


@dataclass(frozen=True)
class Inputs:
    """The real figures: councils, regions and adults by age band."""

    areas: pd.DataFrame  # area_code, area_name, council_type, region_code, region_name
    adults: np.ndarray  # (A, K) int64 usual residents 18+ by age band
    disability_ratio: np.ndarray  # (A,) indirectly standardised, England = 1
    owner_occupation: np.ndarray  # (A,) share of households owned (Census 2021 TS054)


def read_inputs(path: str | os.PathLike[str]) -> Inputs:
    table = pd.read_csv(
        path, dtype={c: str for c in ("area_code", "area_name", "council_type", "region_code", "region_name")}
    )
    areas = table[["area_code", "area_name", "council_type", "region_code", "region_name"]]
    return Inputs(
        areas=areas.reset_index(drop=True),
        adults=table[list(AGE_BANDS)].to_numpy(dtype=np.int64),
        disability_ratio=table["disability_ratio"].to_numpy(dtype=float),
        owner_occupation=table["owner_occupation"].to_numpy(dtype=float),
    )


@dataclass(frozen=True)
class Population:
    counts: np.ndarray  # (A, K, S, G, D) int64
    deprivation: np.ndarray  # (A,) standardised
    minority_share: np.ndarray  # (A,) adult share not White British (model value)


def _minority_targets(inputs: Inputs, rng: np.random.Generator) -> np.ndarray:
    par = PARAMETERS["ethnicity"]
    base = []
    for code, region, kind in zip(
        inputs.areas["area_code"], inputs.areas["region_code"], inputs.areas["council_type"], strict=True
    ):
        if code in MINORITY_SHARE:
            base.append(MINORITY_SHARE[code])
        else:
            share = REGION_MINORITY_BASE[region]
            factor = 0.6 if code in RURAL else (1.0 if kind == "County council" else 1.35)
            base.append(share * factor)
    noise = rng.normal(0.0, float(par["minority_area_sd"]), len(base))
    return np.asarray(expit(logit(np.asarray(base)) + noise))


def _solve_shift(target: np.ndarray, weights: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """Per area c such that sum_k w_ak expit(logit(target_a) + shift_k + c_a) = target_a."""
    base = logit(target)[:, None] + shift[None, :]
    c = np.zeros(len(target))
    share = weights / weights.sum(axis=1, keepdims=True)
    for _ in range(50):  # Newton; converges in a handful of steps
        p = expit(base + c[:, None])
        f = (share * p).sum(axis=1) - target
        c -= f / (share * p * (1 - p)).sum(axis=1)
        if np.abs(f).max() < 1e-12:
            break
    return np.asarray(expit(base + c[:, None]))


def _ethnic_composition(inputs: Inputs, minority: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """P(ethnic group | area, age band): (A, K, G)."""
    par = PARAMETERS["ethnicity"]
    A = len(minority)
    by_age = _solve_shift(
        minority, inputs.adults.astype(float), np.asarray(par["minority_age_shift"], dtype=float)
    )  # (A, K)
    log_mix = np.log(np.asarray(par["england_share"], dtype=float))
    log_mix = np.broadcast_to(log_mix, (A, G)).copy()
    for a, code in enumerate(inputs.areas["area_code"]):
        for key, factor in GROUP_EMPHASIS.get(code, {}).items():
            log_mix[a, GROUP_KEYS.index(key)] += np.log(factor)
    log_mix += rng.normal(0.0, float(par["group_area_sd"]), (A, G))
    tilt = np.zeros((K, G))
    for key, values in GROUP_AGE_TILT.items():
        tilt[:, GROUP_KEYS.index(key)] = values
    logits = log_mix[:, None, :] + tilt[None, :, :]
    logits[:, :, WHITE_BRITISH] = -np.inf
    within = np.exp(logits - logits.max(axis=2, keepdims=True))
    within /= within.sum(axis=2, keepdims=True)
    composition = within * by_age[:, :, None]
    composition[:, :, WHITE_BRITISH] = 1.0 - by_age
    return composition


def _deprivation(inputs: Inputs, minority: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    par = PARAMETERS["deprivation"]

    def z(x: np.ndarray) -> np.ndarray:
        return (x - x.mean()) / x.std()

    raw = (
        z(np.log(inputs.disability_ratio))
        + float(par["minority_weight"]) * z(logit(minority))
        + rng.normal(0.0, float(par["noise_sd"]), len(minority))
    )
    return np.round(z(raw), 4)


def _disability(deprivation: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """P(disability | area, age, sex, ethnic group): (A, K, S, G, D)."""
    par = PARAMETERS["disability"]
    A = len(deprivation)
    area = rng.normal(0.0, float(par["area_sd"]), A)
    female = np.array([1.0, 0.0])
    eta_any = (
        _vector(logit(par["p_disabled_by_age"]), 1, 4)
        + float(par["female"]) * _vector(female - 0.5, 2, 4)
        + _vector(par["ethnic_group"], 3, 4)
        + _area(float(par["deprivation"]) * deprivation + area, 4)
    )
    eta_lot = _vector(logit(par["p_a_lot_by_age"]), 1, 4) + _area(
        float(par["a_lot_deprivation"]) * deprivation, 4
    )
    p_any = expit(eta_any)
    p_lot = expit(eta_lot)
    out = np.empty((A, K, S, G, D))
    out[..., 0] = p_any * p_lot
    out[..., 1] = p_any * (1.0 - p_lot)
    out[..., 2] = 1.0 - p_any
    return out


def build_population(inputs: Inputs, rng: np.random.Generator) -> Population:
    """Draw the adult population by cell (totals by area and age band are the real ones)."""
    A = len(inputs.areas)
    minority = _minority_targets(inputs, rng)
    ethnic = _ethnic_composition(inputs, minority, rng)  # (A, K, G)
    deprivation = _deprivation(inputs, minority, rng)
    par = PARAMETERS["sex"]
    female = expit(
        logit(np.asarray(par["female_share_by_age"]))[None, :]
        + rng.normal(0.0, float(par["area_sd"]), (A, 1))
    )
    sex = np.stack([female, 1.0 - female], axis=2)  # (A, K, S)
    disability = _disability(deprivation, rng)  # (A, K, S, G, D)
    probs = sex[:, :, :, None, None] * ethnic[:, :, None, :, None] * disability
    probs = probs.reshape(A * K, S * G * D)
    probs /= probs.sum(axis=1, keepdims=True)
    counts = rng.multinomial(inputs.adults.reshape(-1), probs)
    return Population(
        counts=counts.reshape(A, K, S, G, D).astype(np.int64),
        deprivation=deprivation,
        minority_share=minority,
    )


@dataclass(frozen=True)
class CareModel:
    """Cell probabilities of the care model, each broadcastable to (A, K, S, G, D)."""

    need: np.ndarray  # P(need)
    help: np.ndarray  # P(any help | need)
    paid: np.ndarray  # P(paid | help)
    council: np.ndarray  # P(any council funding | paid)
    council_residential: np.ndarray  # P(any council funding | paid, residential)
    topup: np.ndarray  # P(payer both | council funded)
    not_enough_unpaid: np.ndarray  # P(not enough | unpaid help only)
    not_enough_council: np.ndarray  # P(not enough | council funded)
    not_enough_self: np.ndarray  # P(not enough | self funded)
    residential: np.ndarray  # P(residential or nursing | paid)
    learning_disability: np.ndarray  # P(learning disability support | council funded)
    area_effects: pd.DataFrame  # the random effects u by area and component


def draw_area_effects(n_areas: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {name: rng.normal(0.0, float(PARAMETERS[name]["area_sd"]), n_areas) for name in AREA_EFFECTS}


def standardise(values: np.ndarray) -> np.ndarray:
    """z-score over the councils (mean 0, SD 1 with ddof 0), rounded to 4 decimals."""
    x = np.asarray(values, dtype=float)
    return np.asarray(np.round((x - x.mean()) / x.std(), 4))


def care_model(
    deprivation: np.ndarray,
    effects: dict[str, np.ndarray],
    area_codes: pd.Series,
    *,
    owner_occupation: np.ndarray,
) -> CareModel:
    """Evaluate the care model on the cell grid.

    ``owner_occupation`` is the standardised council score
    (:func:`standardise` of the TS054 share), entering need and P(council |
    paid) with the coefficients in :data:`PARAMETERS`.
    """
    dep = np.asarray(deprivation, dtype=float)
    own = np.asarray(owner_occupation, dtype=float)
    female = _vector([1.0, 0.0], 2)

    def linear(name: str, *, sex: bool = False, ethnic: bool = False, disability: bool = True) -> np.ndarray:
        par = PARAMETERS[name]
        eta = _vector(par["age"], 1) + _area(
            float(par["deprivation"]) * dep + float(par.get("owner_occupation", 0.0)) * own + effects[name]
        )
        if disability:
            eta = eta + _vector(par["disability"], 4)
        if sex:
            eta = eta + float(par["female"]) * female
        if ethnic:
            eta = eta + _vector(par["ethnic_group"], 3)
        return eta

    need = expit(linear("need", sex=True, ethnic=True))
    help_ = expit(linear("help", sex=True))
    paid = expit(linear("paid", ethnic=True))
    eta_council = linear("council", sex=True, ethnic=True)
    council = expit(eta_council)
    working_age = _vector([1, 1, 1, 1, 1, 0, 0, 0], 1)
    council_residential = expit(
        eta_council + float(PARAMETERS["council"]["residential_working_age"]) * working_age
    )
    top = PARAMETERS["topup"]
    topup = expit(
        float(top["intercept"])
        + float(top["working_age"]) * working_age
        + _area(float(top["deprivation"]) * dep)
    )
    ne = PARAMETERS["not_enough"]
    base = _area(float(ne["deprivation"]) * dep + effects["not_enough"])
    res = PARAMETERS["residential"]
    residential = expit(_vector(res["age"], 1) + _vector(res["disability"], 4))
    ld = PARAMETERS["learning_disability"]
    learning = expit(_vector(ld["age"], 1) + _vector(ld["disability"], 4))
    table = pd.DataFrame({"area_code": np.asarray(area_codes, dtype=object)})
    for name in AREA_EFFECTS:
        table[name] = np.round(effects[name], 6)
    return CareModel(
        need=need,
        help=help_,
        paid=paid,
        council=council,
        council_residential=council_residential,
        topup=topup,
        not_enough_unpaid=expit(float(ne["unpaid_only"]) + base),
        not_enough_council=expit(float(ne["council"]) + base),
        not_enough_self=expit(float(ne["self"]) + base),
        residential=residential,
        learning_disability=learning,
        area_effects=table,
    )


def _apportion(total: np.ndarray, parts: np.ndarray) -> np.ndarray:
    """Integers per row of ``parts`` (last axis) adding up to ``total`` exactly.

    Largest-remainder rounding of ``parts`` rescaled to ``total``.
    """
    sums = parts.sum(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        scaled = np.where(sums > 0, parts * (total[..., None] / sums), 0.0)
    floor = np.floor(scaled)
    remainder = (total - floor.sum(axis=-1)).astype(np.int64)
    order = np.argsort(-(scaled - floor), axis=-1, kind="stable")
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(parts.shape[-1]), axis=-1)
    return (floor + (ranks < remainder[..., None])).astype(np.int64)


@dataclass(frozen=True)
class Settings:
    """Adults per cell by where they live, and the care-home residents' funding.

    All arrays (A, K, S, G, D) int64; ``household + care_home`` = the cell's adults.
    """

    household: np.ndarray
    care_home: np.ndarray  # residents: in need, helped, paid care that is residential
    care_home_council: np.ndarray  # residents with any council funding


def residential_probability(model: CareModel) -> np.ndarray:
    """P(a care-home resident) per cell = P(need) P(help|need) P(paid|help) P(residential|paid)."""
    return np.asarray(model.need * model.help * model.paid * model.residential)


def draw_settings(counts: np.ndarray, model: CareModel, rng: np.random.Generator) -> Settings:
    """Care-home residents ~ Binomial(N_c, p_res); council-funded among them
    ~ Binomial(residents, P(council | paid, residential))."""
    p_res = np.broadcast_to(residential_probability(model), counts.shape)
    residents = rng.binomial(counts, p_res).astype(np.int64)
    council = rng.binomial(residents, np.broadcast_to(model.council_residential, counts.shape))
    return Settings(
        household=counts - residents, care_home=residents, care_home_council=council.astype(np.int64)
    )


def household_model(model: CareModel) -> CareModel:
    """The care model for people living in private households (not in a care home).

    Conditioning on not being a care-home resident: with ``r`` = P(residential
    | paid), ``P(need | hh) = p_N (1 - p_H p_P r) / (1 - p_N p_H p_P r)``,
    ``P(help | need, hh) = p_H (1 - p_P r) / (1 - p_H p_P r)``,
    ``P(paid | help, hh) = p_P (1 - r) / (1 - p_P r)``; who pays and the
    not-enough probabilities are unchanged.
    """
    pn, ph, pp, r = model.need, model.help, model.paid, model.residential
    return replace(
        model,
        need=pn * (1 - ph * pp * r) / (1 - pn * ph * pp * r),
        help=ph * (1 - pp * r) / (1 - ph * pp * r),
        paid=pp * (1 - r) / (1 - pp * r),
    )


#: Settings of the truth tables; ``all`` = ``household`` + ``care_home``.
TRUTH_SETTINGS = ("household", "care_home", "all")


def truth_by_setting(settings: Settings, model: CareModel) -> dict[str, dict[str, np.ndarray]]:
    """Truth per cell and setting in units of 1/UNITS person (int64).

    Households: :func:`truth_units` of the household counts under
    :func:`household_model`. Care homes: ``need`` = residents,
    ``council_funded`` and ``self_funded`` the drawn split, ``unpaid_only`` =
    ``unmet`` = 0, ``insufficient`` = council-funded x P(not enough | council)
    + self-funded x P(not enough | self), rounded to a unit. ``all`` is their
    sum, so ``all`` = ``household`` + ``care_home`` exactly.
    """
    household = truth_units(settings.household, household_model(model))
    residents = settings.care_home
    council = settings.care_home_council
    own = residents - council
    zero = np.zeros_like(residents)
    insufficient = np.rint((council * model.not_enough_council + own * model.not_enough_self) * UNITS).astype(
        np.int64
    )
    care_home = {
        "need": residents * UNITS,
        "council_funded": council * UNITS,
        "self_funded": own * UNITS,
        "unpaid_only": zero,
        "unmet": zero.copy(),
        "insufficient": np.minimum(insufficient, residents * UNITS),
    }
    every = {q: household[q] + care_home[q] for q in QUANTITIES}
    return {"household": household, "care_home": care_home, "all": every}


def truth_units(counts: np.ndarray, model: CareModel) -> dict[str, np.ndarray]:
    """Truth per cell in units of 1/UNITS person (int64), the parts adding up to need."""
    n = counts.astype(float)
    need = n * model.need
    helped = need * model.help
    paid = helped * model.paid
    parts = np.stack(
        np.broadcast_arrays(
            paid * model.council,  # council_funded
            paid * (1.0 - model.council),  # self_funded
            helped * (1.0 - model.paid),  # unpaid_only
            need * (1.0 - model.help),  # unmet
        ),
        axis=-1,
    )
    need_units = np.rint(need * UNITS).astype(np.int64)
    split = _apportion(need_units, parts * UNITS)
    insufficient = (
        parts[..., 0] * model.not_enough_council
        + parts[..., 1] * model.not_enough_self
        + parts[..., 2] * model.not_enough_unpaid
    )
    helped_units = split[..., :3].sum(axis=-1)
    out = {"need": need_units}
    for j, name in enumerate(PARTS):
        out[name] = split[..., j]
    out["insufficient"] = np.minimum(np.rint(insufficient * UNITS).astype(np.int64), helped_units)
    return out


def unpaid_care_probabilities(deprivation: np.ndarray) -> np.ndarray:
    """P(unpaid-care band | cell): (A, K, S, G, D, 6), bands as UNPAID_CARE."""
    par = PARAMETERS["unpaid_care"]
    dep = np.asarray(deprivation, dtype=float)
    eta = (
        _vector(logit(par["p_carer_by_age"]), 1)
        + float(par["female"]) * (_vector([1.0, 0.0], 2) - 0.5)
        + _vector(par["disability"], 4)
        + _area(float(par["deprivation"]) * dep)
    )
    carer = expit(eta)
    heavy = np.zeros(5)
    heavy[-1] = 1.0
    band_eta = np.log(np.asarray(par["band_shares"], dtype=float)) + heavy * (
        _vector(par["band_age"], 1)[..., None]
        + _area(float(par["band_deprivation"]) * dep)[..., None]
        + float(par["band_a_lot"]) * _vector([1.0, 0.0, 0.0], 4)[..., None]
    )
    bands = np.exp(band_eta - band_eta.max(axis=-1, keepdims=True))
    bands /= bands.sum(axis=-1, keepdims=True)
    carer, bands = np.broadcast_arrays(carer[..., None], bands)
    return np.concatenate([1.0 - carer[..., :1], carer * bands], axis=-1)
