"""Care homes of the synthetic England: a register and the provider returns.

A register of care homes (one row per home, as the care regulator's directory)
and the returns of the homes that answered a provider information request (as
ONS uses to estimate self-funders), drawn from the synthetic England's seed in
a stream of its own (``SeedSequence(seed, spawn_key=(7,))``), so the rest of
the synthetic England is unchanged by it.

The model (every parameter in :data:`CARE_HOME_PARAMETERS`, documented in
``data/reference/README.md``):

* homes per council: older-people homes by a multinomial draw proportional to
  the council's adults aged 85+ plus 0.3 x aged 75-84 (at least one per
  council), younger-adult homes proportional to adults 18-64 tilted by
  deprivation;
* beds: log-normal by home type; nursing, a deprivation decile of the home's
  neighbourhood and a regulator rating per home;
* residents ~ Binomial(beds, occupancy), occupancy ~ Beta per home;
* self-funded residents ~ Binomial(residents, p_h) with
  ``logit p_h = c_type + c_size + c_rating + c_region - 0.25 dep_a
  + 2.0 (own_a - mean own) + 0.06 (decile_h - 5.5) + u_a + e_h``,
  ``u_a ~ N(0, 0.30^2)`` (the council effect the covariates do not explain),
  ``e_h ~ N(0, 1.2^2)`` (homes are polarised: some take mostly self-funders, others mostly council-funded residents); the offsets ``c`` are solved so that the expected
  shares equal ONS's published ones (home type, 1-19 beds, outstanding and
  inadequate ratings, South East and North East);
* the other residents split between council, NHS and other funding;
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
    "response_probabilities",
]

#: The spawn key of the care-home stream under the synthetic England's seed
#: (the other parts use children 0-6 of ``SeedSequence(seed).spawn(7)``).
STREAM = 7
HOME_TYPES = ("older_people", "younger_adults")
SIZE_BANDS = ("1-19", "20-49", "50+")
RATINGS = ("outstanding", "good", "requires_improvement", "inadequate", "not_rated")
LONDON = "London"

CARE_HOME_PARAMETERS: dict[str, Any] = {
    "homes": {"older_people": 7450, "younger_adults": 6550},
    "older_weight_75_84": 0.3,
    "younger_deprivation_tilt": 0.15,
    "beds_median": {"older_people": 40.0, "younger_adults": 13.0},
    "beds_log_sd": {"older_people": 0.5, "younger_adults": 0.75},
    "beds_range": {"older_people": [3, 220], "younger_adults": [1, 120]},
    "nursing_logit": {"older_people": -0.9, "younger_adults": -2.4, "per_log_bed": 0.6},
    "occupancy_mean": 0.82,
    "occupancy_concentration": 20.0,
    "decile_deprivation_slope": -0.75,
    "decile_noise_sd": 0.65,
    "owner_occupation": {"base": 0.63, "deprivation": -0.35, "london": -0.55, "noise_sd": 0.18},
    "rating_base": {"outstanding": 0.05, "good": 0.72, "requires_improvement": 0.16,
                    "inadequate": 0.015, "not_rated": 0.055},
    "rating_deprivation": {"outstanding": -0.15, "good": 0.0, "requires_improvement": 0.2,
                           "inadequate": 0.3, "not_rated": 0.0},
    "self_funded": {"deprivation": -0.25, "owner_occupation": 2.0, "decile": 0.06,
                    "council_sd": 0.30, "home_sd": 1.2},
    # ONS, Care homes and estimating the self-funding population, England: 2022 to 2023
    "targets": {"home_type": {"older_people": 0.489, "younger_adults": 0.020},
                "size_band": {"1-19": 0.120},
                "rating": {"outstanding": 0.509, "inadequate": 0.240},
                "region": {"South East": 0.475, "North East": 0.264}},
    "nhs_share": {"nursing": 0.15, "residential": 0.02},
    "other_share": 0.03,
    "response": {"intercept": 1.3, "size_band": {"1-19": -0.35, "20-49": 0.0, "50+": 0.3},
                 "younger_adults": -0.25,
                 "rating": {"outstanding": 0.2, "good": 0.0, "requires_improvement": -0.15,
                            "inadequate": -0.4, "not_rated": -0.5},
                 "region_sd": 0.2},
}


def _logit(p: np.ndarray | float) -> np.ndarray:
    p = np.asarray(p, dtype=float)
    return np.log(p) - np.log1p(-p)


def _expit(x: np.ndarray | float) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=float)))


@dataclass(frozen=True)
class CareHomeDraw:
    """Everything drawn: the published tables and what the benchmarks redraw from."""

    register: pd.DataFrame  # the register (file form)
    homes: pd.DataFrame  # register + residents and funding of every home
    returns: pd.DataFrame  # the responding homes' returns (file form)
    areas: pd.DataFrame  # area_code, owner_occupied_share (synthetic census-like covariate)
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


def _solve_offsets(groups: dict[str, np.ndarray], targets: dict[str, dict[int, float]],
                   base: np.ndarray, residents: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Offsets per targeted group so that expected resident-weighted shares hit the targets.

    Coordinate-wise logit shifts, repeated until every target is met to 1e-10.
    """
    offsets = {name: np.zeros(int(codes.max()) + 1) for name, codes in groups.items()}
    eta = base.copy()
    for _ in range(500):
        worst = 0.0
        for name, codes in groups.items():
            for level, target in targets[name].items():
                mask = codes == level
                w = residents[mask]
                for step_number in range(50):  # Newton on the one offset
                    p = _expit(eta[mask])
                    share = float((w * p).sum() / w.sum())
                    gap = share - target
                    if step_number == 0:
                        worst = max(worst, abs(gap))
                    if abs(gap) < 1e-12:
                        break
                    slope = float((w * p * (1 - p)).sum() / w.sum())
                    step = gap / slope
                    eta[mask] -= step
                    offsets[name][level] -= step
        if worst < 1e-10:
            break
    return eta, offsets


def generate_care_homes(areas: pd.DataFrame, adults: np.ndarray, deprivation: np.ndarray,
                        seed: int) -> CareHomeDraw:
    """Draw the care-home register, every home's residents and the returns.

    Parameters
    ----------
    areas : DataFrame
        ``area_code, region_name`` of the 152 councils (the inputs' order).
    adults : ndarray (A, 8)
        Adults by the standard age bands.
    deprivation : ndarray (A,)
        The councils' standardised deprivation score.
    seed : int
        The synthetic England's seed; the stream is ``SeedSequence(seed,
        spawn_key=(STREAM,))``.
    """
    par = CARE_HOME_PARAMETERS
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(STREAM,)))
    A = len(areas)
    codes = areas["area_code"].to_numpy(dtype=object)
    region = areas["region_name"].to_numpy(dtype=object)
    regions = np.array(sorted(set(region)), dtype=object)
    region_index = np.searchsorted(regions, region)

    # council covariates: owner occupation (synthetic census-like) and the council effect
    own_par = par["owner_occupation"]
    own = _expit(_logit(own_par["base"]) + own_par["deprivation"] * deprivation
                 + own_par["london"] * (region == LONDON)
                 + rng.normal(0.0, own_par["noise_sd"], A))
    council_effect = rng.normal(0.0, par["self_funded"]["council_sd"], A)

    # homes per council
    older_w = adults[:, 7] + par["older_weight_75_84"] * adults[:, 6]
    younger_w = adults[:, :5].sum(axis=1) * np.exp(par["younger_deprivation_tilt"] * deprivation)
    n_older = 1 + rng.multinomial(par["homes"]["older_people"] - A, older_w / older_w.sum())
    n_younger = rng.multinomial(par["homes"]["younger_adults"], younger_w / younger_w.sum())
    area_of = np.concatenate([np.repeat(np.arange(A), n_older), np.repeat(np.arange(A), n_younger)])
    home_type = np.concatenate([np.zeros(n_older.sum(), dtype=np.int64),
                                np.ones(n_younger.sum(), dtype=np.int64)])
    order = np.lexsort((home_type, area_of))
    area_of, home_type = area_of[order], home_type[order]
    n = len(area_of)

    # beds, nursing, neighbourhood deprivation decile, rating
    median = np.array([par["beds_median"][t] for t in HOME_TYPES])[home_type]
    log_sd = np.array([par["beds_log_sd"][t] for t in HOME_TYPES])[home_type]
    lo = np.array([par["beds_range"][t][0] for t in HOME_TYPES])[home_type]
    hi = np.array([par["beds_range"][t][1] for t in HOME_TYPES])[home_type]
    beds = np.clip(np.round(median * np.exp(rng.normal(0.0, 1.0, n) * log_sd)), lo, hi)
    beds = beds.astype(np.int64)
    size = _size_band(beds)
    nurse = par["nursing_logit"]
    eta_n = (np.where(home_type == 0, nurse["older_people"], nurse["younger_adults"])
             + nurse["per_log_bed"] * (np.log(beds) - np.log(median)))
    nursing = rng.random(n) < _expit(eta_n)
    z = (par["decile_deprivation_slope"] * deprivation[area_of]
         + rng.normal(0.0, par["decile_noise_sd"], n))
    decile = np.clip(np.ceil(10.0 * _normal_cdf(z)), 1, 10).astype(np.int64)
    base = np.log(np.array([par["rating_base"][r] for r in RATINGS]))
    tilt = np.array([par["rating_deprivation"][r] for r in RATINGS])
    rating_eta = base[None, :] + tilt[None, :] * deprivation[area_of][:, None]
    rating_p = np.exp(rating_eta)
    rating_p /= rating_p.sum(axis=1, keepdims=True)
    rating = (rng.random(n)[:, None] > np.cumsum(rating_p, axis=1)).sum(axis=1)
    rating = np.minimum(rating, len(RATINGS) - 1)

    # residents
    m, k = par["occupancy_mean"], par["occupancy_concentration"]
    occupancy = rng.beta(m * k, (1 - m) * k, n)
    residents = rng.binomial(beds, occupancy)

    # self-funded share: covariates + council effect + home effect, offsets solved to ONS
    sf = par["self_funded"]
    home_effect = rng.normal(0.0, sf["home_sd"], n)
    eta = (sf["deprivation"] * deprivation[area_of]
           + sf["owner_occupation"] * (own[area_of] - own.mean())
           + sf["decile"] * (decile - 5.5) + council_effect[area_of] + home_effect)
    targets = par["targets"]
    region_levels = {name: int(np.searchsorted(regions, name)) for name in targets["region"]}
    eta, offsets = _solve_offsets(
        {"home_type": home_type, "size_band": size, "rating": rating,
         "region": region_index[area_of]},
        {"home_type": {HOME_TYPES.index(t): v for t, v in targets["home_type"].items()},
         "size_band": {SIZE_BANDS.index(s): v for s, v in targets["size_band"].items()},
         "rating": {RATINGS.index(r): v for r, v in targets["rating"].items()},
         "region": {region_levels[r]: v for r, v in targets["region"].items()}},
        eta, residents.astype(float))
    p_self = _expit(eta)
    self_funded = rng.binomial(residents, p_self)
    rest = residents - self_funded
    nhs_p = np.where(nursing, par["nhs_share"]["nursing"], par["nhs_share"]["residential"])
    other_p = np.full(n, par["other_share"])
    nhs = rng.binomial(rest, nhs_p)
    other = rng.binomial(rest - nhs, other_p / (1 - nhs_p))
    council = rest - nhs - other

    ids = _home_ids(n, rng)
    region_effect = rng.normal(0.0, par["response"]["region_sd"], len(regions))
    register = pd.DataFrame({
        "home_id": ids,
        "area_code": codes[area_of],
        "region": region[area_of],
        "home_type": np.asarray(HOME_TYPES, dtype=object)[home_type],
        "nursing": nursing,
        "beds": beds,
        "size_band": np.asarray(SIZE_BANDS, dtype=object)[size],
        "rating": np.asarray(RATINGS, dtype=object)[rating],
        "deprivation_decile": decile,
    })
    homes = register.copy()
    homes["residents"] = residents.astype(np.int64)
    homes["self_funded"] = self_funded.astype(np.int64)
    homes["council_funded"] = council.astype(np.int64)
    homes["nhs_funded"] = nhs.astype(np.int64)
    homes["other_funded"] = other.astype(np.int64)
    homes["p_self_funded"] = p_self
    effects = {str(r): float(e) for r, e in zip(regions, region_effect)}
    responded = draw_response(register, effects, rng)
    returns = homes.loc[responded, ["home_id", "residents", "self_funded", "council_funded",
                                    "nhs_funded", "other_funded"]].reset_index(drop=True)
    truth = (homes.groupby("area_code", sort=False)[["residents", "self_funded"]].sum()
             .reindex(codes, fill_value=0).rename_axis("area_code").reset_index())
    covariates = pd.DataFrame({"area_code": codes, "owner_occupied_share": np.round(own, 4)})
    summary = _summary(homes, responded)
    metadata = {
        "stream": f"numpy SeedSequence({seed}, spawn_key=({STREAM},))",
        "parameters": par,
        "solved_offsets": {
            "home_type": dict(zip(HOME_TYPES, np.round(offsets["home_type"], 6).tolist())),
            "size_band": dict(zip(SIZE_BANDS, np.round(offsets["size_band"], 6).tolist())),
            "rating": dict(zip(RATINGS, np.round(offsets["rating"], 6).tolist())),
            "region": {str(r): round(float(offsets["region"][i]), 6)
                       for i, r in enumerate(regions)},
        },
        "council_effect_sd_realised": round(float(council_effect.std()), 4),
        "response_region_effects": {k: round(v, 6) for k, v in effects.items()},
        "summary": summary,
    }
    return CareHomeDraw(register=register, homes=homes, returns=returns, areas=covariates,
                        truth=truth, response_effects=effects, metadata=metadata)


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
        "residents_covered": round(float(homes.loc[responded, "residents"].sum()
                                         / homes["residents"].sum()), 4),
    }
    for column in ("home_type", "size_band", "rating", "region"):
        out[f"self_funded_share_by_{column}"] = {
            str(k): share(g) for k, g in homes.groupby(column, sort=True)}
    return out


def response_probabilities(register: pd.DataFrame, region_effects: dict[str, float]) -> np.ndarray:
    """P(the home returns its provider information) under the response model."""
    par = CARE_HOME_PARAMETERS["response"]
    eta = (par["intercept"]
           + register["size_band"].map(par["size_band"]).to_numpy(dtype=float)
           + par["younger_adults"] * (register["home_type"] == "younger_adults").to_numpy()
           + register["rating"].map(par["rating"]).to_numpy(dtype=float)
           + register["region"].map(region_effects).to_numpy(dtype=float))
    return _expit(eta)


def draw_response(register: pd.DataFrame, region_effects: dict[str, float],
                  rng: np.random.Generator) -> np.ndarray:
    """One draw of which homes respond (a boolean mask in register order)."""
    return rng.random(len(register)) < response_probabilities(register, region_effects)
