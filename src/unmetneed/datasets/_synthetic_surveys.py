"""Surveys and administrative counts drawn from the synthetic England.

Three samples, each a pandas DataFrame of respondents (what the files hold):

``general``
    A household survey of adults like the Health Survey for England: 9 region
    strata; in each, postcode-sector-like clusters (about 5,000 adults each,
    nested in councils) drawn by systematic PPS from a list ordered by council
    deprivation; 32 adults issued per cluster; response by age, sex, ethnicity,
    council deprivation and a cluster effect. It samples the household cells
    only (the generator's household adults per cell); care-home residents are
    out of scope (as in HSE), so weighted totals estimate the household truth.
    Weight = design weight x non-response adjustment within region x age group
    x sex classes.
``ascs``
    Council-funded users (the Adult Social Care Survey), from a register that
    is the truth in whole people (:func:`community_counts` for households,
    the drawn council-funded care-home residents for ``residential``), split
    by learning-disability support: in each council four
    strata (learning-disability support at any age, other 18-64, 65+ in
    residential or nursing care, 65+ in the community), a systematic sample
    from the council's list (ordered by age, sex, ethnicity, disability),
    response 30-40% depending on characteristics. Weight = eligible population
    / respondents in the stratum; fpc = eligible population.
``sace``
    Carers known to councils (the Survey of Adult Carers in England): a simple
    random sample per council; weight = eligible carers / respondents; fpc =
    eligible carers. ``support_unmet`` (the carer's own support needs are not
    met): ``logit = -0.55 + age[k] + hours[band] + 0.15 dep_a + v_a``,
    ``v_a ~ N(0, 0.3^2)`` a council effect shared by all its carers.

Strata left with fewer than 2 respondents are merged into the stratum with
the most respondents in the same council (ASCS) or region (ASCS councils with
fewer than 2 respondents, SACE), so every stratum has at least 2 PSUs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from unmetneed.datasets._synthetic_model import (
    AGE_BANDS,
    DISABILITY,
    ETHNIC_GROUPS,
    SEXES,
    UNPAID_CARE,
    WHITE_BRITISH,
    CareModel,
    Inputs,
    Population,
    _apportion,
    expit,
    unpaid_care_probabilities,
)

__all__ = [
    "SURVEY_PARAMETERS",
    "Register",
    "admin_counts",
    "ascs_survey",
    "community_counts",
    "council_register",
    "general_survey",
    "sace_survey",
    "unpaid_care_census",
]

K, S, G, D = len(AGE_BANDS), len(SEXES), len(ETHNIC_GROUPS), len(DISABILITY)
C = K * S * G * D
HELP = ("none", "unpaid_only", "paid")
PAYER = ("council", "self", "both")
USER_GROUPS = (
    "Learning disability support",
    "Other support, 18-64",
    "65+ residential or nursing",
    "65+ community",
)
AGE_GROUPS = ("18-64", "65+")
SETTINGS = ("residential", "community")

#: Design and response parameters of the three surveys (logit scale for response).
SURVEY_PARAMETERS: dict[str, dict[str, Any]] = {
    "general": {
        "adults_per_cluster": 5000,
        "cluster_size_concentration": 25.0,
        "clusters": 620,
        "issued_per_cluster": 32,
        "cluster_age_tilt_sd": 0.15,
        "cluster_minority_tilt_sd": 0.6,
        "cluster_disability_tilt_sd": 0.15,
        "response_intercept": 0.45,
        "response_age": [-0.5, -0.45, -0.2, 0.0, 0.15, 0.35, 0.3, -0.1],
        "response_female": 0.15,
        "response_minority": -0.25,
        "response_deprivation": -0.2,
        "response_cluster_sd": 0.3,
        "nonresponse_age_groups": ["18-34", "18-34", "35-54", "35-54", "55-74", "55-74", "75+", "75+"],
    },
    "ascs": {
        "sampling_fraction": 0.13,
        "extra_per_stratum": 25,
        "response_intercept": -0.45,
        "response_learning_disability": -0.15,
        "response_residential": -0.35,
        "response_age": [-0.3, -0.2, -0.1, 0.0, 0.0, 0.1, 0.0, -0.2],
        "response_minority": -0.35,
        "response_deprivation": -0.10,
        "response_female": 0.05,
    },
    "sace": {
        "known_per_council_funded": 0.40,
        "known_per_unpaid_only": 0.06,
        "known_age_tilt": [0.5, 0.6, 0.8, 1.0, 1.2, 1.4, 1.5, 1.2],
        "known_band_tilt": [0.0, 0.0, 0.2, 0.4, 0.9],
        "sampling_fraction": 0.11,
        "extra_per_stratum": 20,
        "response_intercept": -0.55,
        "response_age": [-0.6, -0.5, -0.35, -0.15, 0.05, 0.3, 0.3, -0.1],
        "response_female": 0.10,
        "response_minority": -0.40,
        "response_deprivation": -0.10,
        "cared_for_65_plus_by_age": [0.45, 0.35, 0.30, 0.45, 0.65, 0.75, 0.85, 0.85],
        "cared_for_council_funded": 0.2,
        "cared_for_council_funded_deprivation": 0.2,
        "qol_intercept": 0.75,
        "qol_50_hours": -0.45,
        "qol_35_hours": -0.2,
        "qol_a_lot": -0.35,
        "qol_a_little": -0.15,
        # support_unmet: the carer's own support needs are not met
        "support_unmet_intercept": -0.55,
        "support_unmet_age": [0.35, 0.3, 0.25, 0.15, 0.0, -0.15, -0.25, -0.3],
        "support_unmet_hours": [-0.45, -0.25, 0.0, 0.2, 0.45],
        "support_unmet_deprivation": 0.15,
        "support_unmet_area_sd": 0.30,
    },
    "scrqol": {"intercept": 1.55, "not_enough": -0.6, "a_lot": -0.3, "residential": -0.1},
}


def _cell_codes(cells: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Age, sex, ethnic group and disability codes of flat cell indices (0..C-1)."""
    k, s, g, d = np.unravel_index(cells, (K, S, G, D))
    return k, s, g, d


def _labels(codes: np.ndarray, labels: tuple[str, ...]) -> np.ndarray:
    return np.asarray(labels, dtype=object)[codes]


def _flat(array: np.ndarray, n_areas: int) -> np.ndarray:
    """A model array broadcast to (A, C)."""
    return np.broadcast_to(array, (n_areas, K, S, G, D)).reshape(n_areas, C)


@dataclass(frozen=True)
class _Cells:
    """Probabilities of the care model per (area, cell), flattened to (A, C)."""

    need: np.ndarray
    help: np.ndarray
    paid: np.ndarray
    council: np.ndarray
    topup: np.ndarray
    ne_unpaid: np.ndarray
    ne_council: np.ndarray
    ne_self: np.ndarray
    residential: np.ndarray
    learning: np.ndarray


def _cells(model: CareModel, n_areas: int) -> _Cells:
    return _Cells(
        need=_flat(model.need, n_areas),
        help=_flat(model.help, n_areas),
        paid=_flat(model.paid, n_areas),
        council=_flat(model.council, n_areas),
        topup=_flat(model.topup, n_areas),
        ne_unpaid=_flat(model.not_enough_unpaid, n_areas),
        ne_council=_flat(model.not_enough_council, n_areas),
        ne_self=_flat(model.not_enough_self, n_areas),
        residential=_flat(model.residential, n_areas),
        learning=_flat(model.learning_disability, n_areas),
    )


def _care_items(
    rng: np.random.Generator, p: _Cells, area: np.ndarray, cell: np.ndarray, *, household: bool
) -> dict[str, np.ndarray]:
    """Draw need, help, payer and help_enough for people in (area, cell).

    ``household=True`` conditions on not living in a care home (residential
    paid care), for a household survey.
    """
    n = len(area)
    pn, ph, pp = p.need[area, cell], p.help[area, cell], p.paid[area, cell]
    if household:
        res = p.residential[area, cell]
        pn = pn * (1 - ph * pp * res) / (1 - pn * ph * pp * res)
        ph = ph * (1 - pp * res) / (1 - ph * pp * res)
        pp = pp * (1 - res) / (1 - pp * res)
    u = rng.random((n, 6))
    need = u[:, 0] < pn
    helped = need & (u[:, 1] < ph)
    paid = helped & (u[:, 2] < pp)
    council = paid & (u[:, 3] < p.council[area, cell])
    both = council & (u[:, 4] < p.topup[area, cell])
    not_enough_p = np.where(
        council, p.ne_council[area, cell], np.where(paid, p.ne_self[area, cell], p.ne_unpaid[area, cell])
    )
    enough = helped & ~(u[:, 5] < not_enough_p)
    help_code = np.where(paid, 2, np.where(helped, 1, 0))
    payer_code = np.where(both, 2, np.where(council, 0, 1))
    return _items_frame(need, helped, paid, help_code, payer_code, enough)


def _items_frame(
    need: np.ndarray,
    helped: np.ndarray,
    paid: np.ndarray,
    help_code: np.ndarray,
    payer_code: np.ndarray,
    enough: np.ndarray,
) -> dict[str, np.ndarray]:
    """The standard items (missing where not asked) and 0/1 indicators for everyone."""
    help_label = np.full(len(need), None, dtype=object)  # None = not asked
    help_label[need] = _labels(help_code[need], HELP)
    payer_label = np.full(len(need), None, dtype=object)
    payer_label[paid] = _labels(payer_code[paid], PAYER)
    help_enough = pd.array(np.where(helped, enough, False).astype(np.int64), dtype="Int64")
    help_enough[~helped] = pd.NA
    council = paid & (payer_code != 1)
    return {
        "need": need.astype(np.int64),
        "help": help_label,
        "payer": payer_label,
        "help_enough": help_enough,
        "any_help": helped.astype(np.int64),
        "paid_help": paid.astype(np.int64),
        "council_funded": council.astype(np.int64),
        "self_funded": (paid & ~council).astype(np.int64),
        "unpaid_only": (helped & ~paid).astype(np.int64),
        "unmet": (need & ~helped).astype(np.int64),
        "insufficient": (helped & ~enough).astype(np.int64),
    }


def _person_columns(
    inputs: Inputs, deprivation: np.ndarray, area: np.ndarray, cell: np.ndarray
) -> dict[str, np.ndarray]:
    k, s, g, d = _cell_codes(cell)
    areas = inputs.areas
    return {
        "area_code": areas["area_code"].to_numpy(dtype=object)[area],
        "area_name": areas["area_name"].to_numpy(dtype=object)[area],
        "region_code": areas["region_code"].to_numpy(dtype=object)[area],
        "deprivation": deprivation[area],
        "age_band": _labels(k, AGE_BANDS),
        "sex": _labels(s, SEXES),
        "ethnic_group": _labels(g, ETHNIC_GROUPS),
        "disability": _labels(d, DISABILITY),
    }


def _response_eta(par: Mapping[str, Any], cell: np.ndarray, deprivation: np.ndarray) -> np.ndarray:
    """The response model's linear predictor by age, sex, ethnic group and council deprivation."""
    k, s, g, _ = _cell_codes(cell)
    return (
        float(par["response_intercept"])
        + np.asarray(par["response_age"])[k]
        + float(par["response_female"]) * (s == 0)
        + float(par["response_minority"]) * (g != WHITE_BRITISH)
        + float(par["response_deprivation"]) * deprivation
    )


def _draw_cells(rng: np.random.Generator, probs: np.ndarray, n_each: int) -> np.ndarray:
    """``n_each`` category draws per row of ``probs`` (rows sum to 1), by inverse CDF."""
    cdf = np.cumsum(probs, axis=1)
    cdf[:, -1] = 1.0
    u = rng.random((len(probs), n_each))
    # count of CDF values <= u: (rows, draws, categories) booleans, a few MB at most
    return (cdf[:, None, :] <= u[:, :, None]).sum(axis=2)


def _ids(prefix: str, n: int) -> np.ndarray:
    return (prefix + pd.Series(np.arange(1, n + 1)).astype(str).str.zfill(6)).to_numpy(dtype=object)


def general_survey(
    inputs: Inputs,
    population: Population,
    model: CareModel,
    rng: np.random.Generator,
    *,
    household: np.ndarray | None = None,
) -> pd.DataFrame:
    """The household survey; ``household`` = adults in private households per cell
    (A, K, S, G, D), default their expected number ``N (1 - p_res)``."""
    par = SURVEY_PARAMETERS["general"]
    A = len(inputs.areas)
    p = _cells(model, A)
    if household is None:
        counts = population.counts.reshape(A, C).astype(float)
        resident = p.need * p.help * p.paid * p.residential
        household = counts * (1.0 - resident)
    else:
        household = np.asarray(household, dtype=float).reshape(A, C)
    adults = np.rint(household.sum(axis=1)).astype(np.int64)

    # clusters: ~5,000 adults each, sizes from a Dirichlet split of the council
    per = int(par["adults_per_cluster"])
    n_clusters = np.maximum(1, np.rint(adults / per)).astype(np.int64)
    cluster_area = np.repeat(np.arange(A), n_clusters)
    shares = rng.gamma(float(par["cluster_size_concentration"]), 1.0, len(cluster_area))
    sizes = np.empty(len(cluster_area), dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(n_clusters)])
    for a in range(A):  # one small apportionment per council
        block = shares[starts[a] : starts[a + 1]]
        sizes[starts[a] : starts[a + 1]] = _apportion(np.array(adults[a]), block)
    cluster_number = np.arange(len(cluster_area)) - starts[cluster_area]

    # strata = regions; systematic PPS within each, list ordered by council deprivation
    region = inputs.areas["region_code"].to_numpy(dtype=object)
    region_codes = sorted(set(region))
    h_of_area = np.array([region_codes.index(r) for r in region])
    h_of_cluster = h_of_area[cluster_area]
    N_h = np.bincount(h_of_cluster, weights=sizes, minlength=len(region_codes))
    n_h = _apportion(np.array(int(par["clusters"])), N_h)
    selected: list[np.ndarray] = []
    for h in range(len(region_codes)):
        members = np.flatnonzero(h_of_cluster == h)
        order = np.lexsort(
            (cluster_number[members], cluster_area[members], population.deprivation[cluster_area[members]])
        )
        members = members[order]
        cumulative = np.cumsum(sizes[members])
        interval = cumulative[-1] / n_h[h]
        points = rng.uniform(0.0, interval) + interval * np.arange(n_h[h])
        selected.append(members[np.searchsorted(cumulative, points, side="right")])
    psu = np.concatenate(selected)
    if len(np.unique(psu)) != len(psu):  # cannot happen with clusters << interval
        raise RuntimeError("a cluster was selected twice")
    psu_area = cluster_area[psu]

    # composition of each selected cluster: its council's tilted by cluster effects
    k, s, g, d = _cell_codes(np.arange(C))
    n_psu = len(psu)
    tilt = (
        rng.normal(0.0, float(par["cluster_age_tilt_sd"]), (n_psu, K))[:, k]
        + rng.normal(0.0, float(par["cluster_minority_tilt_sd"]), (n_psu, 1)) * (g != WHITE_BRITISH)[None, :]
        + rng.normal(0.0, float(par["cluster_disability_tilt_sd"]), (n_psu, 1)) * (d != 2)[None, :]
    )
    weights = household[psu_area] * np.exp(tilt)
    weights /= weights.sum(axis=1, keepdims=True)
    m = int(par["issued_per_cluster"])
    cell = _draw_cells(rng, weights, m).reshape(-1)
    person_psu = np.repeat(np.arange(n_psu), m)
    area = psu_area[person_psu]
    stratum = h_of_area[area]
    design_weight = N_h[stratum] / (n_h[stratum] * m)

    # response
    k, s, _, _ = _cell_codes(cell)
    eta = (
        _response_eta(par, cell, population.deprivation[area])
        + rng.normal(0.0, float(par["response_cluster_sd"]), n_psu)[person_psu]
    )
    responded = rng.random(len(cell)) < expit(eta)

    # non-response adjustment in region x age group x sex classes
    age_group = np.asarray(par["nonresponse_age_groups"], dtype=object)[k]
    _, group_code = np.unique(age_group, return_inverse=True)
    klass = (stratum * 4 + group_code) * 2 + s
    issued_w = np.bincount(klass, weights=design_weight, minlength=len(region_codes) * 8)
    resp_w = np.bincount(klass, weights=design_weight * responded, minlength=len(issued_w))
    if (resp_w[issued_w > 0] == 0).any():
        raise RuntimeError("a non-response class has no respondents")
    with np.errstate(divide="ignore", invalid="ignore"):
        adjustment = np.where(resp_w > 0, issued_w / resp_w, 0.0)

    keep = np.flatnonzero(responded)
    area, cell, person_psu, stratum = area[keep], cell[keep], person_psu[keep], stratum[keep]
    items = _care_items(rng, p, area, cell, household=True)
    out = pd.DataFrame({"respondent_id": _ids("G", len(keep))})
    for name, values in _person_columns(inputs, population.deprivation, area, cell).items():
        out[name] = values
    out.insert(4, "region_name", inputs.areas["region_name"].to_numpy(dtype=object)[area])
    out.insert(1, "stratum", np.asarray(region_codes, dtype=object)[stratum])
    codes = inputs.areas["area_code"].to_numpy(dtype=object)
    psu_label = (
        pd.Series(codes[psu_area[person_psu]])
        + "-"
        + pd.Series(cluster_number[psu][person_psu]).astype(str).str.zfill(3)
    )
    out.insert(2, "psu", psu_label.to_numpy(dtype=object))
    for name, values in items.items():
        out[name] = values
    out["design_weight"] = np.round(design_weight[keep], 4)
    out["nonresponse_adjustment"] = np.round(adjustment[klass[keep]], 6)
    out["weight"] = np.round(design_weight[keep] * adjustment[klass[keep]], 4)
    out.attrs = {"issued": len(responded), "clusters": int(n_psu)}
    return out


@dataclass(frozen=True)
class Register:
    """Council-funded people: counts by (area, cell, learning disability, residential)."""

    counts: np.ndarray  # (A, C, 2, 2) int64; [..., ld, res], 1 = yes


def community_counts(household_council_units: np.ndarray, units: int) -> np.ndarray:
    """Whole council-funded people in households per (area, cell): (A, C) int64.

    Per council and age group (18-64, 65+) the truth's total (in units of
    1/``units`` person) is rounded to the nearest person (``numpy.rint``: halves
    to even), then spread over the cells by largest remainders of the cell
    values, so the counts add up to the rounded totals exactly.
    """
    A = household_council_units.shape[0]
    values = household_council_units.reshape(A, C).astype(float) / units
    k = _cell_codes(np.arange(C))[0]
    out = np.zeros((A, C), dtype=np.int64)
    for older in (False, True):
        cells = np.flatnonzero((k >= 5) == older)
        block = values[:, cells]
        total = np.rint(block.sum(axis=1)).astype(np.int64)
        out[:, cells] = _apportion(total, block)
    return out


def council_register(
    inputs: Inputs, community: np.ndarray, residential: np.ndarray, model: CareModel, rng: np.random.Generator
) -> Register:
    """Council-funded people by (area, cell, learning disability, residential).

    ``community`` (A, C): council-funded people in households
    (:func:`community_counts`); ``residential`` (A, C): council-funded care-home
    residents. Learning-disability support ~ Binomial(count, p_L) per entry.
    """
    A = len(inputs.areas)
    p = _cells(model, A)
    by_setting = np.stack(
        [
            np.asarray(community, dtype=np.int64).reshape(A, C),
            np.asarray(residential, dtype=np.int64).reshape(A, C),
        ],
        axis=-1,
    )
    learning = rng.binomial(by_setting, p.learning[..., None])  # (A, C, res)
    counts = np.stack([by_setting - learning, learning], axis=2)  # (A, C, ld, res)
    return Register(counts=counts.astype(np.int64))


def admin_counts(inputs: Inputs, register: Register) -> pd.DataFrame:
    A = len(inputs.areas)
    k = _cell_codes(np.arange(C))[0]
    older = (k >= 5).astype(np.int64)
    by = register.counts.sum(axis=2)  # (A, C, res)
    table = np.zeros((A, 2, 2), dtype=np.int64)
    for og in (0, 1):
        for r in (0, 1):
            table[:, og, 1 - r] = by[:, older == og, r].sum(axis=1)
    out = pd.DataFrame(
        {
            "area_code": np.repeat(inputs.areas["area_code"].to_numpy(dtype=object), 4),
            "area_name": np.repeat(inputs.areas["area_name"].to_numpy(dtype=object), 4),
            "age_group": np.tile(np.repeat(np.asarray(AGE_GROUPS, dtype=object), 2), A),
            "setting": np.tile(np.asarray(SETTINGS, dtype=object), 2 * A),
            "count": table.reshape(-1),
        }
    )
    return out


def _collapse(strata_r: np.ndarray, group: np.ndarray) -> np.ndarray:
    """Map each stratum to itself or, when it has < 2 respondents, to the stratum
    with the most respondents in its ``group``."""
    frame = pd.DataFrame({"r": strata_r, "group": group})
    best = frame.groupby("group")["r"].idxmax()
    target = np.arange(len(strata_r))
    small = strata_r < 2
    target[small] = best.loc[group[small]].to_numpy()
    return target


def _systematic(rng: np.random.Generator, N: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Positions (into the concatenated lists) of systematic samples of n of N per stratum."""
    offsets = np.concatenate([[0], np.cumsum(N)[:-1]])
    stratum = np.repeat(np.arange(len(N)), n)
    j = np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)
    interval = np.where(n > 0, N / np.maximum(n, 1), 0.0)
    start = rng.uniform(0.0, 1.0, len(N)) * interval
    position = np.floor(start[stratum] + j * interval[stratum]).astype(np.int64)
    return offsets[stratum] + np.minimum(position, N[stratum] - 1)


def _weights_after_collapse(
    stratum: np.ndarray, N: np.ndarray, responded: np.ndarray, groups: list[np.ndarray]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Design strata after merging small ones: per respondent (stratum, weight, fpc)."""
    r = np.bincount(stratum[responded], minlength=len(N))
    target = np.arange(len(N))
    for group in groups:
        current_r = np.bincount(target, weights=r, minlength=len(N))
        merged = _collapse(current_r, group)
        target = merged[target]
    N_new = np.bincount(target, weights=N, minlength=len(N))
    r_new = np.bincount(target, weights=r, minlength=len(N))
    design = target[stratum[responded]]
    if (r_new[design] < 2).any():
        raise RuntimeError("a design stratum still has fewer than 2 respondents")
    return design, N_new[design] / r_new[design], N_new[design]


def ascs_survey(
    inputs: Inputs, population: Population, model: CareModel, register: Register, rng: np.random.Generator
) -> pd.DataFrame:
    par = SURVEY_PARAMETERS["ascs"]
    A = len(inputs.areas)
    p = _cells(model, A)
    k_cell = _cell_codes(np.arange(C))[0]
    # user group of each register entry (area, cell, ld, res)
    ld = np.arange(2)[None, None, :, None]
    res = np.arange(2)[None, None, None, :]
    older = (k_cell >= 5)[None, :, None, None]
    group = np.where(ld == 1, 0, np.where(~older, 1, np.where(res == 1, 2, 3)))
    group = np.broadcast_to(group, register.counts.shape)
    area_idx = np.broadcast_to(np.arange(A)[:, None, None, None], register.counts.shape)
    cell_idx = np.broadcast_to(np.arange(C)[None, :, None, None], register.counts.shape)
    ld_idx = np.broadcast_to(ld, register.counts.shape)
    res_idx = np.broadcast_to(res, register.counts.shape)
    nz = np.flatnonzero(register.counts)
    entries = {
        name: arr.reshape(-1)[nz]
        for name, arr in (
            ("area", area_idx),
            ("cell", cell_idx),
            ("ld", ld_idx),
            ("res", res_idx),
            ("group", group),
        )
    }
    entry_count = register.counts.reshape(-1)[nz]
    strat = entries["area"] * 4 + entries["group"]
    order = np.lexsort((entries["cell"], strat))  # list order: stratum, then cell
    person = np.repeat(order, entry_count[order])  # entry of each person on the lists
    person_stratum = strat[person]
    N = np.bincount(person_stratum, minlength=A * 4).astype(np.int64)
    f = float(par["sampling_fraction"])
    n = np.minimum(N, np.ceil(f * N).astype(np.int64) + int(par["extra_per_stratum"]))
    sampled = person[_systematic(rng, N, n)]
    area = entries["area"][sampled]
    cell = entries["cell"][sampled]
    is_ld = entries["ld"][sampled] == 1
    is_res = entries["res"][sampled] == 1
    stratum = strat[sampled]
    k, s, g, d = _cell_codes(cell)
    eta = (
        float(par["response_intercept"])
        + float(par["response_learning_disability"]) * is_ld
        + float(par["response_residential"]) * is_res
        + np.asarray(par["response_age"])[k]
        + float(par["response_minority"]) * (g != WHITE_BRITISH)
        + float(par["response_deprivation"]) * population.deprivation[area]
        + float(par["response_female"]) * (s == 0)
    )
    responded = rng.random(len(sampled)) < expit(eta)
    region = inputs.areas["region_code"].to_numpy(dtype=object)
    council_of_stratum = np.repeat(np.arange(A), 4)
    region_of_stratum = pd.factorize(region[council_of_stratum])[0]
    design, weight, fpc = _weights_after_collapse(
        stratum, N, responded, [council_of_stratum, region_of_stratum]
    )
    keep = np.flatnonzero(responded)
    area, cell, is_ld, is_res = area[keep], cell[keep], is_ld[keep], is_res[keep]
    k, s, g, d = _cell_codes(cell)
    n_r = len(keep)
    u = rng.random((n_r, 3))
    both = u[:, 0] < p.topup[area, cell]
    enough = ~(u[:, 1] < p.ne_council[area, cell])
    items = _items_frame(
        np.ones(n_r, bool),
        np.ones(n_r, bool),
        np.ones(n_r, bool),
        np.full(n_r, 2),
        np.where(both, 2, 0),
        enough,
    )
    sq = SURVEY_PARAMETERS["scrqol"]
    q = expit(
        float(sq["intercept"])
        + float(sq["not_enough"]) * ~enough
        + float(sq["a_lot"]) * (d == 0)
        + float(sq["residential"]) * is_res
    )
    scrqol = rng.binomial(24, q)
    codes = inputs.areas["area_code"].to_numpy(dtype=object)
    stratum_labels = np.asarray([f"{code}: {group}" for code in codes for group in USER_GROUPS], dtype=object)
    out = pd.DataFrame({"respondent_id": _ids("A", n_r)})
    out["stratum"] = stratum_labels[design]
    for name, values in _person_columns(inputs, population.deprivation, area, cell).items():
        out[name] = values
    out["user_group"] = _labels(stratum[keep] % 4, USER_GROUPS)
    out["setting"] = np.where(is_res, "residential", "community").astype(object)
    out["learning_disability"] = is_ld.astype(np.int64)
    for name, values in items.items():
        out[name] = values
    out["scrqol"] = scrqol.astype(np.int64)
    out["fpc"] = fpc.astype(np.int64)
    out["weight"] = np.round(weight, 4)
    out.attrs = {"issued": len(sampled), "eligible": int(N.sum())}
    return out


def _known_carer_cells(population: Population, deprivation: np.ndarray) -> np.ndarray:
    """P(cell | known carer, area): (A, C)."""
    par = SURVEY_PARAMETERS["sace"]
    A = population.counts.shape[0]
    carer = 1.0 - unpaid_care_probabilities(deprivation)[..., 0]
    k = _cell_codes(np.arange(C))[0]
    w = (
        population.counts.reshape(A, C)
        * np.broadcast_to(carer, population.counts.shape).reshape(A, C)
        * np.asarray(par["known_age_tilt"])[k][None, :]
    )
    return w / w.sum(axis=1, keepdims=True)


def sace_survey(
    inputs: Inputs,
    population: Population,
    truth_area: pd.DataFrame,
    rng: np.random.Generator,
    *,
    support_effects: np.ndarray | None = None,
) -> pd.DataFrame:
    """The carers' survey; ``support_effects`` (A,) = council effects of ``support_unmet``
    (default none: 0)."""
    par = SURVEY_PARAMETERS["sace"]
    A = len(inputs.areas)
    expected = (
        float(par["known_per_council_funded"]) * truth_area["council_funded"].to_numpy()
        + float(par["known_per_unpaid_only"]) * truth_area["unpaid_only"].to_numpy()
    )
    N = rng.poisson(expected).astype(np.int64)
    cells = rng.multinomial(N, _known_carer_cells(population, population.deprivation))  # (A, C)
    # list of carers: area, then cell; a simple random sample per council
    flat = cells.reshape(-1)
    entry = np.repeat(np.arange(flat.size), flat)
    area_all = entry // C
    key = rng.random(len(entry))
    order = np.lexsort((key, area_all))
    f = float(par["sampling_fraction"])
    n = np.minimum(N, np.ceil(f * N).astype(np.int64) + int(par["extra_per_stratum"]))
    offsets = np.concatenate([[0], np.cumsum(N)[:-1]])
    rank = np.arange(len(entry)) - offsets[area_all[order]]
    chosen = order[rank < n[area_all[order]]]
    chosen.sort()
    area = area_all[chosen]
    cell = entry[chosen] % C
    eta = _response_eta(par, cell, population.deprivation[area])
    responded = rng.random(len(chosen)) < expit(eta)
    region = pd.factorize(inputs.areas["region_code"].to_numpy(dtype=object))[0]
    design, weight, fpc = _weights_after_collapse(area, N, responded, [region])
    keep = np.flatnonzero(responded)
    area, cell = area[keep], cell[keep]
    k, _, _, d = _cell_codes(cell)
    n_r = len(keep)
    # caring hours: the Census bands given carer, tilted to long hours
    bands = unpaid_care_probabilities(population.deprivation)
    bands = np.broadcast_to(bands, population.counts.shape + (6,)).reshape(A, C, 6)[area, cell, 1:]
    bands = bands * np.exp(np.asarray(par["known_band_tilt"]))[None, :]
    bands /= bands.sum(axis=1, keepdims=True)
    band = _draw_cells(rng, bands, 1)[:, 0] if n_r else np.zeros(0, dtype=np.int64)
    u = rng.random((n_r, 2))
    older = u[:, 0] < np.asarray(par["cared_for_65_plus_by_age"])[k]
    funded = u[:, 1] < expit(
        float(par["cared_for_council_funded"])
        + float(par["cared_for_council_funded_deprivation"]) * population.deprivation[area]
    )
    q = expit(
        float(par["qol_intercept"])
        + float(par["qol_50_hours"]) * (band == 4)
        + float(par["qol_35_hours"]) * (band == 3)
        + float(par["qol_a_lot"]) * (d == 0)
        + float(par["qol_a_little"]) * (d == 1)
    )
    codes = inputs.areas["area_code"].to_numpy(dtype=object)
    out = pd.DataFrame({"respondent_id": _ids("C", n_r)})
    out["stratum"] = codes[design]
    for name, values in _person_columns(inputs, population.deprivation, area, cell).items():
        out[name] = values
    out["unpaid_care"] = _labels(band + 1, UNPAID_CARE)
    out["cared_for_age_group"] = np.where(older, "65+", "18-64").astype(object)
    out["cared_for_council_funded"] = funded.astype(np.int64)
    out["carer_qol"] = rng.binomial(12, q).astype(np.int64)
    effect = np.zeros(A) if support_effects is None else np.asarray(support_effects, dtype=float)
    eta_unmet = (
        float(par["support_unmet_intercept"])
        + np.asarray(par["support_unmet_age"])[k]
        + np.asarray(par["support_unmet_hours"])[band]
        + float(par["support_unmet_deprivation"]) * population.deprivation[area]
        + effect[area]
    )
    out["support_unmet"] = rng.random(n_r) < expit(eta_unmet)
    out["fpc"] = fpc.astype(np.int64)
    out["weight"] = np.round(weight, 4)
    out.attrs = {"issued": len(chosen), "eligible": int(N.sum())}
    return out


def unpaid_care_census(inputs: Inputs, population: Population, rng: np.random.Generator) -> np.ndarray:
    """Adults by council and unpaid-care band (A, 6), adding up to each council's adults."""
    A = len(inputs.areas)
    probs = unpaid_care_probabilities(population.deprivation)
    probs = np.broadcast_to(probs, population.counts.shape + (6,))
    expected = (population.counts[..., None] * probs).reshape(A, C, 6).sum(axis=1)
    adults = population.counts.reshape(A, C).sum(axis=1)
    return rng.multinomial(adults, expected / expected.sum(axis=1, keepdims=True)).astype(np.int64)
