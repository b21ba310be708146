"""Care homes of the synthetic England: a register and the provider returns.

A register of care homes (one row per home, as the care regulator's directory)
and the returns of the homes that answered a provider information request (as
ONS uses to estimate self-funders). Since generator version 2 the homes hold
the population model's care-home residents: each council's homes hold exactly
its care-home residents (``setting == "care_home"`` of the truth) and exactly
its self-funded residents; the homes add only *where* they live and how the
self-funders are spread across homes. Drawn in a stream of its own
(``SeedSequence(seed, spawn_key=(STREAM,))``).

The model (every parameter in :data:`CARE_HOME_PARAMETERS`, documented in
``data/reference/README.md``):

* homes per council: older-people homes (for residents 65+) one per council
  plus a multinomial draw proportional to the council's residents 65+;
  younger-adult homes (for residents 18-64) one per council that has any plus
  a multinomial draw proportional to its residents 18-64;
* capacity: log-normal by home type; nursing, a deprivation decile of the
  home's neighbourhood and a regulator rating per home, as in version 1;
* residents: the council's residents of the home type spread over its homes
  by a multinomial draw with probabilities proportional to capacity x
  occupancy (occupancy ~ Beta per home); ``beds`` = max(capacity, residents);
* self-funders: the council's self-funded residents of the home type are
  chosen among its residents by weighted sampling without replacement
  (Efraimidis-Spirakis keys ``E / w_h``, ``E ~ Exp(1)``), a resident of home
  ``h`` weighing ``w_h = exp(c_size + c_rating + 0.06 (decile_h - 5.5) + e_h)``,
  ``e_h ~ N(0, 1.2^2)`` (homes are polarised: some take mostly self-funders,
  others mostly council-funded residents);
* every other resident is council-funded: ``nhs_funded`` = ``other_funded`` = 0
  (the synthetic England has no NHS-funded care-home residents);
* response (about 75%) by size, type, region and rating.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "CARE_HOME_PARAMETERS",
    "HOME_TYPES",
    "RATINGS",
    "SIZE_BANDS",
    "STREAM",
    "CareHomeDraw",
    "draw_response",
    "generate_care_homes",
    "resident_totals",
    "response_probabilities",
]

#: The spawn key of the care-home stream under the synthetic England's seed
#: (the other parts use children 0-6 of ``SeedSequence(seed).spawn(7)`` and the
#: settings draw child 8).
STREAM = 7
HOME_TYPES = ("older_people", "younger_adults")
SIZE_BANDS = ("1-19", "20-49", "50+")
RATINGS = ("outstanding", "good", "requires_improvement", "inadequate", "not_rated")

CARE_HOME_PARAMETERS: dict[str, Any] = {
    "homes": {"older_people": 7450, "younger_adults": 6550},
    "beds_median": {"older_people": 48.0, "younger_adults": 7.0},
    "beds_log_sd": {"older_people": 0.5, "younger_adults": 0.75},
    "beds_range": {"older_people": [3, 220], "younger_adults": [1, 120]},
    "nursing_logit": {"older_people": -0.9, "younger_adults": -2.4, "per_log_bed": 0.6},
    "occupancy_mean": 0.82,
    "occupancy_concentration": 20.0,
    "decile_deprivation_slope": -0.75,
    "decile_noise_sd": 0.65,
    "rating_base": {
        "outstanding": 0.05,
        "good": 0.72,
        "requires_improvement": 0.16,
        "inadequate": 0.015,
        "not_rated": 0.055,
    },
    "rating_deprivation": {
        "outstanding": -0.15,
        "good": 0.0,
        "requires_improvement": 0.2,
        "inadequate": 0.3,
        "not_rated": 0.0,
    },
    # weight of a home's residents in the draw of the council's self-funders (log scale)
    "self_funded": {
        "size_band": {"1-19": -0.3, "20-49": 0.0, "50+": 0.2},
        "rating": {
            "outstanding": 0.8,
            "good": 0.0,
            "requires_improvement": -0.2,
            "inadequate": -0.7,
            "not_rated": 0.0,
        },
        "decile": 0.06,
        "home_sd": 1.2,
    },
    "response": {
        "intercept": 1.3,
        "size_band": {"1-19": -0.35, "20-49": 0.0, "50+": 0.3},
        "younger_adults": -0.25,
        "rating": {
            "outstanding": 0.2,
            "good": 0.0,
            "requires_improvement": -0.15,
            "inadequate": -0.4,
            "not_rated": -0.5,
        },
        "region_sd": 0.2,
    },
}


def _expit(x: np.ndarray | float) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=float)))


@dataclass(frozen=True)
class CareHomeDraw:
    """Everything drawn: the published tables and what the benchmarks redraw from."""

    register: pd.DataFrame  # the register (file form)
    homes: pd.DataFrame  # register + residents and funding of every home
    returns: pd.DataFrame  # the responding homes' returns (file form)
    areas: pd.DataFrame  # area_code, owner_occupied_share (Census 2021 TS054)
    truth: pd.DataFrame  # area_code, residents, self_funded over all homes
    response_effects: dict[str, float]  # region -> response effect
    metadata: dict[str, Any]


def _size_band(beds: np.ndarray) -> np.ndarray:
    return np.where(beds < 20, 0, np.where(beds < 50, 1, 2))


def _home_ids(n: int, rng: np.random.Generator) -> np.ndarray:
    """Unique ids in the regulator's style (``1-`` and ten digits), in draw order."""
    draws = rng.integers(1_000_000_000, 9_999_999_999, size=n + n // 10 + 10)
    _, first = np.unique(draws, return_index=True)
    keep = np.sort(first)[:n]
    return np.array([f"1-{v}" for v in draws[keep]], dtype=object)


def _self_funded_draw(
    group: np.ndarray,
    residents: np.ndarray,
    weight: np.ndarray,
    targets: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    """Self-funders per home: ``targets[g]`` residents of group ``g`` chosen without
    replacement, a resident of home ``h`` with weight ``weight[h]`` (Efraimidis-Spirakis)."""
    home = np.repeat(np.arange(len(residents)), residents)
    person_group = group[home]
    key = rng.exponential(1.0, len(home)) / weight[home]
    order = np.lexsort((key, person_group))
    starts = np.concatenate([[0], np.cumsum(np.bincount(person_group, minlength=len(targets)))[:-1]])
    rank = np.arange(len(order)) - starts[person_group[order]]
    chosen = order[rank < targets[person_group[order]]]
    return np.bincount(home[chosen], minlength=len(residents)).astype(np.int64)


def generate_care_homes(
    areas: pd.DataFrame,
    residents: np.ndarray,
    self_funded: np.ndarray,
    deprivation: np.ndarray,
    owner_occupation: np.ndarray,
    seed: int,
) -> CareHomeDraw:
    """Draw the care-home register, every home's residents and the returns.

    Parameters
    ----------
    areas : DataFrame
        ``area_code, region_name`` of the 152 councils (the inputs' order).
    residents : ndarray (A, 2) of int
        Care-home residents by council and age group (18-64, 65+): the truth's
        ``care_home`` need.
    self_funded : ndarray (A, 2) of int
        Self-funded care-home residents by council and age group.
    deprivation : ndarray (A,)
        The councils' standardised deprivation score.
    owner_occupation : ndarray (A,)
        Share of households owning their home (Census 2021 TS054), published
        as the ``owner_occupied_share`` covariate.
    seed : int
        The synthetic England's seed; the stream is ``SeedSequence(seed,
        spawn_key=(STREAM,))``.
    """
    par = CARE_HOME_PARAMETERS
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(STREAM,)))
    A = len(areas)
    residents = np.asarray(residents, dtype=np.int64)
    self_funded = np.asarray(self_funded, dtype=np.int64)
    if residents.shape != (A, 2) or self_funded.shape != (A, 2):
        raise ValueError("residents and self_funded must be (councils, 2) arrays")
    if (self_funded > residents).any() or (self_funded < 0).any():
        raise ValueError("self-funded residents must lie between 0 and the residents")
    codes = areas["area_code"].to_numpy(dtype=object)
    region = areas["region_name"].to_numpy(dtype=object)
    regions = np.array(sorted(set(region)), dtype=object)
    own = np.asarray(owner_occupation, dtype=float)

    # homes per council: older-people homes hold residents 65+, younger-adult homes 18-64
    older_r, younger_r = residents[:, 1].astype(float), residents[:, 0].astype(float)
    n_older = 1 + rng.multinomial(par["homes"]["older_people"] - A, older_r / older_r.sum())
    has_younger = younger_r > 0
    n_younger = has_younger.astype(np.int64) + rng.multinomial(
        par["homes"]["younger_adults"] - int(has_younger.sum()), younger_r / younger_r.sum()
    )
    area_of = np.concatenate([np.repeat(np.arange(A), n_older), np.repeat(np.arange(A), n_younger)])
    home_type = np.concatenate(
        [np.zeros(n_older.sum(), dtype=np.int64), np.ones(n_younger.sum(), dtype=np.int64)]
    )
    order = np.lexsort((home_type, area_of))
    area_of, home_type = area_of[order], home_type[order]
    n = len(area_of)

    # capacity, nursing, neighbourhood deprivation decile, rating
    median = np.array([par["beds_median"][t] for t in HOME_TYPES])[home_type]
    log_sd = np.array([par["beds_log_sd"][t] for t in HOME_TYPES])[home_type]
    lo = np.array([par["beds_range"][t][0] for t in HOME_TYPES])[home_type]
    hi = np.array([par["beds_range"][t][1] for t in HOME_TYPES])[home_type]
    capacity = np.clip(np.round(median * np.exp(rng.normal(0.0, 1.0, n) * log_sd)), lo, hi)
    capacity = capacity.astype(np.int64)
    nurse = par["nursing_logit"]
    eta_n = np.where(home_type == 0, nurse["older_people"], nurse["younger_adults"]) + nurse[
        "per_log_bed"
    ] * (np.log(capacity) - np.log(median))
    nursing = rng.random(n) < _expit(eta_n)
    z = par["decile_deprivation_slope"] * deprivation[area_of] + rng.normal(0.0, par["decile_noise_sd"], n)
    decile = np.clip(np.ceil(10.0 * _normal_cdf(z)), 1, 10).astype(np.int64)
    base = np.log(np.array([par["rating_base"][r] for r in RATINGS]))
    tilt = np.array([par["rating_deprivation"][r] for r in RATINGS])
    rating_eta = base[None, :] + tilt[None, :] * deprivation[area_of][:, None]
    rating_p = np.exp(rating_eta)
    rating_p /= rating_p.sum(axis=1, keepdims=True)
    rating = (rng.random(n)[:, None] > np.cumsum(rating_p, axis=1)).sum(axis=1)
    rating = np.minimum(rating, len(RATINGS) - 1)

    # residents: the council's residents of the type, spread by capacity x occupancy
    m, k = par["occupancy_mean"], par["occupancy_concentration"]
    occupancy = rng.beta(m * k, (1 - m) * k, n)
    group = area_of * 2 + home_type  # (council, home type); age group 65+ = type 0
    group_total = np.stack([residents[:, 1], residents[:, 0]], axis=1).reshape(-1)
    group_self = np.stack([self_funded[:, 1], self_funded[:, 0]], axis=1).reshape(-1)
    home_residents = np.zeros(n, dtype=np.int64)
    weight = capacity * occupancy
    starts = np.concatenate([[0], np.cumsum(np.bincount(group, minlength=2 * A))])
    for g in np.flatnonzero(np.diff(starts)):  # homes are sorted by (council, type)
        block = slice(starts[g], starts[g + 1])
        w = weight[block]
        home_residents[block] = rng.multinomial(group_total[g], w / w.sum())
    if (np.bincount(group, weights=home_residents, minlength=2 * A) != group_total).any():
        raise RuntimeError("a council's residents have no home of their type")
    beds = np.maximum(capacity, home_residents)
    size = _size_band(beds)

    # self-funders: the council's number, spread over its homes by home weights
    sf = par["self_funded"]
    home_effect = rng.normal(0.0, sf["home_sd"], n)
    log_w = (
        np.array([sf["size_band"][b] for b in SIZE_BANDS])[size]
        + np.array([sf["rating"][r] for r in RATINGS])[rating]
        + sf["decile"] * (decile - 5.5)
        + home_effect
    )
    home_self = _self_funded_draw(group, home_residents, np.exp(log_w), group_self, rng)
    council = home_residents - home_self

    ids = _home_ids(n, rng)
    region_effect = rng.normal(0.0, par["response"]["region_sd"], len(regions))
    register = pd.DataFrame(
        {
            "home_id": ids,
            "area_code": codes[area_of],
            "region": region[area_of],
            "home_type": np.asarray(HOME_TYPES, dtype=object)[home_type],
            "nursing": nursing,
            "beds": beds,
            "size_band": np.asarray(SIZE_BANDS, dtype=object)[size],
            "rating": np.asarray(RATINGS, dtype=object)[rating],
            "deprivation_decile": decile,
        }
    )
    homes = register.copy()
    homes["residents"] = home_residents
    homes["self_funded"] = home_self
    homes["council_funded"] = council.astype(np.int64)
    homes["nhs_funded"] = np.zeros(n, dtype=np.int64)
    homes["other_funded"] = np.zeros(n, dtype=np.int64)
    effects = {str(r): float(e) for r, e in zip(regions, region_effect)}
    responded = draw_response(register, effects, rng)
    returns = homes.loc[
        responded, ["home_id", "residents", "self_funded", "council_funded", "nhs_funded", "other_funded"]
    ].reset_index(drop=True)
    truth = (
        homes.groupby("area_code", sort=False)[["residents", "self_funded"]]
        .sum()
        .reindex(codes, fill_value=0)
        .rename_axis("area_code")
        .reset_index()
    )
    covariates = pd.DataFrame({"area_code": codes, "owner_occupied_share": np.round(own, 4)})
    metadata = {
        "stream": f"numpy SeedSequence({seed}, spawn_key=({STREAM},))",
        "parameters": par,
        "beds_raised_to_residents": int((home_residents > capacity).sum()),
        "response_region_effects": {k: round(v, 6) for k, v in effects.items()},
        "summary": _summary(homes, responded),
    }
    return CareHomeDraw(
        register=register,
        homes=homes,
        returns=returns,
        areas=covariates,
        truth=truth,
        response_effects=effects,
        metadata=metadata,
    )


def resident_totals(
    cells: pd.DataFrame, admin: pd.DataFrame, codes: list[str] | np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Care-home residents and self-funded residents by council and age group (18-64, 65+).

    What :func:`generate_care_homes` takes, recovered from the published
    synthetic England: residents from the population frame's ``care_home``
    cells, council-funded residents from the ``residential`` admin counts
    (exact), self-funded = residents - council-funded. ``codes`` gives the
    council order. Returns two (A, 2) int64 arrays.
    """
    older_bands = ("65-74", "75-84", "85+")
    homes = cells[cells["setting"].astype(str) == "care_home"]
    group = np.where(homes["age_band"].astype(str).isin(older_bands), "65+", "18-64")
    residents = (
        homes.groupby([homes["area_code"].astype(str), group])["count"]
        .sum()
        .unstack(fill_value=0)
        .reindex(index=list(codes), columns=["18-64", "65+"], fill_value=0)
    )
    council = admin[admin["setting"].astype(str) == "residential"]
    council = (
        council.groupby([council["area_code"].astype(str), council["age_group"].astype(str)])["count"]
        .sum()
        .unstack(fill_value=0)
        .reindex(index=list(codes), columns=["18-64", "65+"], fill_value=0)
    )
    r = residents.to_numpy(dtype=np.int64)
    return r, r - council.to_numpy(dtype=np.int64)


def _normal_cdf(z: np.ndarray) -> np.ndarray:
    from math import erf, sqrt

    return 0.5 * (1.0 + np.vectorize(erf)(np.asarray(z) / sqrt(2.0)))


def _summary(homes: pd.DataFrame, responded: np.ndarray) -> dict[str, Any]:
    def share(frame: pd.DataFrame) -> float:
        return round(float(frame["self_funded"].sum() / frame["residents"].sum()), 4)

    out: dict[str, Any] = {
        "homes": len(homes),
        "beds": int(homes["beds"].sum()),
        "residents": int(homes["residents"].sum()),
        "self_funded": int(homes["self_funded"].sum()),
        "self_funded_share": share(homes),
        "responding_homes": int(responded.sum()),
        "response_rate": round(float(responded.mean()), 4),
        "residents_covered": round(
            float(homes.loc[responded, "residents"].sum() / homes["residents"].sum()), 4
        ),
    }
    for column in ("home_type", "size_band", "rating", "region"):
        out[f"self_funded_share_by_{column}"] = {
            str(k): share(g) for k, g in homes.groupby(column, sort=True)
        }
    return out


def response_probabilities(register: pd.DataFrame, region_effects: dict[str, float]) -> np.ndarray:
    """P(the home returns its provider information) under the response model."""
    par = CARE_HOME_PARAMETERS["response"]
    eta = (
        par["intercept"]
        + register["size_band"].map(par["size_band"]).to_numpy(dtype=float)
        + par["younger_adults"] * (register["home_type"] == "younger_adults").to_numpy()
        + register["rating"].map(par["rating"]).to_numpy(dtype=float)
        + register["region"].map(region_effects).to_numpy(dtype=float)
    )
    return _expit(eta)


def draw_response(
    register: pd.DataFrame, region_effects: dict[str, float], rng: np.random.Generator
) -> np.ndarray:
    """One draw of which homes respond (a boolean mask in register order)."""
    return rng.random(len(register)) < response_probabilities(register, region_effects)
