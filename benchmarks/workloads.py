"""Seeded synthetic workloads shared by every tool in a benchmark run.

Each workload is generated once per (name, rows, seed) with numpy's PCG64
generator and cached under ``benchmarks/.cache/``:

* ``<key>.npz``: the columns as numpy arrays (integer codes for categories),
  plus category labels and, for the weighting workloads, the population
  totals. Every Python peer venv has numpy, so every peer can read it.
* ``<key>/``: the same columns as raw little-endian binary files with a
  ``columns.json`` manifest, for R (``readBin``), so R needs no extra package.

Workloads
---------
domain_means
    ``rows`` respondents in 50 strata and 303 PSUs nested in strata (at least 2
    PSUs per stratum, unequal numbers and sizes); PSU ids ``psu`` repeat across strata
    (``nest=True``) and ``psu_id`` is the same PSU with a globally unique id
    for tools that need one. ``area`` (150 domains) cuts across PSUs;
    lognormal weights ``w``; numeric ``y``.
raking / calibration
    ``rows`` respondents drawn with unequal, characteristic-dependent
    response propensities from a "true" population of 2,000,000 people in
    which ethnic group depends on area and disability on age. Margins: area
    (150), age (10), sex (2), ethnic group (19), disability (3); population
    totals ``total__<margin>`` are the true population's counts scaled to
    45,000,000 people, so every margin sums to the same total; the occupied
    cells of the true population with their scaled counts are ``cell__*``
    (for tools that want a target data set). Lognormal base weights ``w``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

CACHE_DIR = Path(__file__).resolve().parent / ".cache"
DEFAULT_SEED = 20261101

N_STRATA = 50
N_PSU = 303
N_AREA = 150
MARGIN_SIZES = {"area": 150, "age": 10, "sex": 2, "ethnic": 19, "disability": 3}
POPULATION_SIZE = 2_000_000
POPULATION_TOTAL = 45_000_000.0


def _labels(prefix: str, k: int) -> list[str]:
    width = len(str(k))
    return [f"{prefix}{i + 1:0{width}d}" for i in range(k)]


def _domain_means(rows: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng([seed, 1])
    # PSUs per stratum: at least 2, the rest spread unevenly.
    extra = rng.multinomial(N_PSU - 2 * N_STRATA, rng.dirichlet(np.full(N_STRATA, 1.0)))
    psu_per_stratum = 2 + extra
    psu_stratum = np.repeat(np.arange(N_STRATA), psu_per_stratum)
    psu_local = np.concatenate([np.arange(k) for k in psu_per_stratum])
    # Unequal PSU sizes; every PSU gets at least 20 rows.
    size_p = rng.lognormal(0.0, 0.6, N_PSU)
    sizes = 20 + rng.multinomial(rows - 20 * N_PSU, size_p / size_p.sum())
    psu_id = np.repeat(np.arange(N_PSU), sizes)
    rng.shuffle(psu_id)  # rows in no particular order
    stratum = psu_stratum[psu_id]
    psu = psu_local[psu_id]
    # Domains cut across PSUs: each PSU leans towards a few areas, but every
    # area appears in many PSUs.
    area_p = rng.dirichlet(np.full(N_AREA, 2.0))
    home = rng.integers(0, N_AREA, N_PSU)
    local = rng.random(rows) < 0.3
    area = np.where(local, home[psu_id], rng.choice(N_AREA, rows, p=area_p))
    w = rng.lognormal(mean=4.0, sigma=0.7, size=rows)
    area_effect = rng.normal(0.0, 1.0, N_AREA)
    psu_effect = rng.normal(0.0, 0.5, N_PSU)
    y = 10.0 + area_effect[area] + psu_effect[psu_id] + rng.normal(0.0, 2.0, rows)
    return {
        "stratum": stratum.astype(np.int32),
        "psu": psu.astype(np.int32),
        "psu_id": psu_id.astype(np.int32),
        "area": area.astype(np.int32),
        "w": w,
        "y": y,
    }


def _categorical(rng: np.random.Generator, probs: np.ndarray, rows_idx: np.ndarray) -> np.ndarray:
    """Draw one category per row from row-specific probabilities.

    ``probs`` is (groups, k); ``rows_idx`` the group of each row.
    """
    cum = np.cumsum(probs, axis=1)
    cum[:, -1] = 1.0
    u = rng.random(rows_idx.size)
    out = np.empty(rows_idx.size, dtype=np.int64)
    # Loop over groups (at most 150), vectorised within each.
    order = np.argsort(rows_idx, kind="stable")
    bounds = np.searchsorted(rows_idx[order], np.arange(probs.shape[0] + 1))
    for g in range(probs.shape[0]):
        idx = order[bounds[g]:bounds[g + 1]]
        out[idx] = np.searchsorted(cum[g], u[idx], side="right")
    return np.minimum(out, probs.shape[1] - 1)


def _population(seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng([seed, 2])
    m = POPULATION_SIZE
    area = rng.choice(150, m, p=rng.dirichlet(np.full(150, 5.0)))
    age = rng.choice(10, m, p=rng.dirichlet(np.full(10, 8.0)))
    sex = rng.choice(2, m, p=[0.51, 0.49])
    # Ethnic group depends on area: a shared national mix, tilted per area;
    # the first group is the large majority, as in England.
    base = np.r_[30.0, rng.uniform(0.2, 2.0, 18)]
    ethnic_p = rng.dirichlet(base * 20.0, size=150)
    ethnic = _categorical(rng, ethnic_p, area)
    # Disability depends on age (older, more often disabled).
    lot = np.linspace(0.03, 0.30, 10)
    little = np.linspace(0.05, 0.20, 10)
    dis_p = np.column_stack([lot, little, 1.0 - lot - little])
    disability = _categorical(rng, dis_p, age)
    return {"area": area, "age": age, "sex": sex, "ethnic": ethnic,
            "disability": disability}


def _weighting(rows: int, seed: int) -> dict[str, np.ndarray]:
    pop = _population(seed)
    rng = np.random.default_rng([seed, 3])
    # Response propensity: young, male, disabled and minority groups respond
    # less, so raking has real work to do.
    age_eff = np.linspace(-0.8, 0.4, 10)
    sex_eff = np.array([0.15, -0.15])
    dis_eff = np.array([-0.4, -0.2, 0.0])
    eth_eff = np.r_[0.3, rng.normal(-0.3, 0.3, 18)]
    area_eff = rng.normal(0.0, 0.3, 150)
    lin = (age_eff[pop["age"]] + sex_eff[pop["sex"]] + dis_eff[pop["disability"]]
           + eth_eff[pop["ethnic"]] + area_eff[pop["area"]])
    p = np.exp(lin)
    p /= p.sum()
    pick = rng.choice(POPULATION_SIZE, rows, replace=True, p=p)
    out = {k: v[pick].astype(np.int16) for k, v in pop.items()}
    out["w"] = rng.lognormal(mean=0.0, sigma=0.5, size=rows) * (POPULATION_TOTAL / rows)
    out["y"] = rng.normal(50.0, 10.0, rows) + 2.0 * pop["age"][pick]
    scale = POPULATION_TOTAL / POPULATION_SIZE
    for name, k in MARGIN_SIZES.items():
        out[f"total__{name}"] = np.bincount(pop[name], minlength=k).astype(np.float64) * scale
    # The true population collapsed to its occupied cells, with counts: for
    # tools (balance) that take a target data set rather than margins. Its
    # margins equal the totals above exactly.
    cell = np.zeros(POPULATION_SIZE, dtype=np.int64)
    for name, k in MARGIN_SIZES.items():
        cell = cell * k + pop[name]
    cells, counts = np.unique(cell, return_counts=True)
    for name, k in reversed(MARGIN_SIZES.items()):
        out[f"cell__{name}"] = (cells % k).astype(np.int16)
        cells = cells // k
    out["cell__count"] = counts.astype(np.float64) * scale
    return out


LABEL_PREFIX = {"area": "A", "age": "age", "sex": "sex", "ethnic": "eth",
                "disability": "dis", "stratum": "S"}

WORKLOADS = ("domain_means", "raking", "calibration")


def labels(variable: str) -> list[str]:
    """Category labels of a coded variable (code i has label labels[i])."""
    k = MARGIN_SIZES.get(variable, N_STRATA if variable == "stratum" else None)
    if k is None:
        raise KeyError(variable)
    return _labels(LABEL_PREFIX[variable], k)


def data_key(workload: str, rows: int, seed: int = DEFAULT_SEED) -> str:
    kind = "domain_means" if workload == "domain_means" else "weighting"
    return f"{kind}_n{rows}_s{seed}"


def ensure_data(workload: str, rows: int, seed: int = DEFAULT_SEED) -> Path:
    """Generate (once) and cache the workload; return the .npz path.

    A raw-binary copy for R is written beside it in a folder of the same
    name.
    """
    key = data_key(workload, rows, seed)
    npz = CACHE_DIR / f"{key}.npz"
    raw = CACHE_DIR / key
    if npz.exists() and (raw / "columns.json").exists():
        return npz
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    data = _domain_means(rows, seed) if workload == "domain_means" else _weighting(rows, seed)
    tmp = CACHE_DIR / f"{key}.tmp.npz"
    np.savez(tmp, **data)
    raw.mkdir(exist_ok=True)
    manifest = {}
    for name, arr in data.items():
        if arr.dtype.kind == "f":
            arr = arr.astype("<f8")
            kind = "double"
        else:
            arr = arr.astype("<i4")
            kind = "integer"
        arr.tofile(raw / f"{name}.bin")
        manifest[name] = {"type": kind, "length": int(arr.size)}
    (raw / "columns.json").write_text(json.dumps(manifest, indent=1))
    tmp.replace(npz)
    return npz


def load(npz_path: Path | str) -> dict[str, np.ndarray]:
    with np.load(npz_path) as f:
        return {k: f[k] for k in f.files}
