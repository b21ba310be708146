r"""Representativeness of each source's respondents: population-based R-indicators and ASMDs.

Only respondents and population counts are available (no sampled
non-respondents), so response propensities come from population tables, the
population-based estimator of Bianchi et al. (2019), with a linear link:

- per category :math:`k` of an auxiliary variable :math:`X`, with
  :math:`n_k` respondents and :math:`N_k` people,
  :math:`\rho_k = \bar\rho \, (n_k / N_k) / (n / N)`, the category's rate
  of appearing among the respondents scaled so that the population mean of
  :math:`\rho` is the overall rate :math:`\bar\rho` (the source's response
  rate if given, else :math:`n/N`);
- for all auxiliary variables together, the additive linear propensity
  model fitted from population cross-products,
  :math:`\hat\beta = (\sum_c N_c x_c x_c^\top)^{-1} \sum_{i \in r} x_i`,
  :math:`\rho_c = \bar\rho\,(x_c^\top\hat\beta)/(n/N)` per frame cell;
- :math:`R = 1 - 2 S(\rho)` with
  :math:`S^2(\rho) = \frac{1}{N-1}\sum_c N_c (\rho_c - \bar\rho)^2`, and
  :math:`CV = S(\rho)/\bar\rho`;
- unconditional partial indicators (Schouten, Shlomo & Skinner 2011):
  :math:`P_u(X) = \sqrt{\frac{1}{N-1}\sum_k N_k(\rho_k - \bar\rho)^2}` and
  :math:`P_u(X, k) = \sqrt{N_k/(N-1)}\,(\rho_k - \bar\rho)` (negative:
  under-represented), with partial CVs :math:`P_u/\bar\rho`;
- absolute standardised mean difference of each category indicator,
  weighted sample share :math:`p_k^w` against population share :math:`p_k`:
  :math:`|p_k^w - p_k| / \sqrt{(p_k^w(1-p_k^w) + p_k(1-p_k))/2}`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from unmetneed._blas import single_threaded_blas
from unmetneed.coverage._groups import describe_labels
from unmetneed.coverage.frame import Source
from unmetneed.design.coding import code_series
from unmetneed.errors import DesignError, MarginsError
from unmetneed.mrp.draw_estimates import DrawEstimates
from unmetneed.mrp.frame import PopulationFrame

__all__ = [
    "ASMD_THRESHOLD",
    "REPRESENTATIVENESS_COLUMNS",
    "check_response_rates",
    "reference_cells",
    "representativeness_table",
]

#: Absolute standardised mean differences above this are imbalanced (Austin 2009).
ASMD_THRESHOLD = 0.1
REPRESENTATIVENESS_COLUMNS = [
    "source",
    "scope",
    "variable",
    "category",
    "population",
    "respondents",
    "weighted_total",
    "population_share",
    "weighted_share",
    "propensity",
    "r_indicator",
    "cv",
    "partial_r",
    "partial_cv",
    "asmd",
]


def check_response_rates(response_rates: Any, names: list[str]) -> dict[str, float]:
    """Overall response rates by source name, each in (0, 1]."""
    if response_rates is None:
        return {}
    if not isinstance(response_rates, Mapping):
        raise DesignError(
            f"response_rates must be a dict of source name -> rate; got {type(response_rates).__name__}"
        )
    out = {}
    for name, rate in response_rates.items():
        if name not in names:
            raise DesignError(f"response_rates names {name!r}, which is not a source ({names})")
        value = float(rate)
        if not 0.0 < value <= 1.0:
            raise DesignError(f"response_rates[{name!r}] = {rate!r} must be a rate in (0, 1]")
        out[name] = value
    return out


def reference_cells(
    care: DrawEstimates, population: PopulationFrame | None
) -> tuple[pd.DataFrame, np.ndarray, str] | None:
    """Population cells (categorical variables only) and their counts."""
    if population is not None:
        cells = population.cells
        variables = [c for c in population.variables if not pd.api.types.is_float_dtype(cells[c].dtype)]
        if not variables:
            return None
        return cells[variables], population.counts, "population frame"
    if not care.by:
        return None
    pop = care.draws["population"].isel(draw=0).transpose(*care.by)
    values = np.asarray(pop.values, dtype=np.float64).ravel()
    grids = np.meshgrid(*[np.asarray(pop[d].values, dtype=object) for d in care.by], indexing="ij")
    keys = pd.DataFrame({d: g.ravel() for d, g in zip(care.by, grids, strict=True)})
    keep = np.isfinite(values)
    return keys.loc[keep].reset_index(drop=True), values[keep], "care population"


def _codes(
    source: Source, variable: str, values: pd.Series, levels: pd.Index, population: np.ndarray
) -> np.ndarray:
    missing = values.isna().to_numpy()
    if missing.any():
        raise DesignError(
            f"source {source.name!r}: column {variable!r} has missing values for "
            f"{int(missing.sum()):,} respondents; recode them to an explicit category first"
        )
    codes = levels.get_indexer(pd.Index(values.astype(object).to_numpy(), dtype=object))
    unknown = pd.unique(values.to_numpy(dtype=object)[codes < 0])
    if len(unknown):
        raise MarginsError(
            f"source {source.name!r} has respondents in categories of {variable!r} that the "
            f"population lacks: {describe_labels(unknown)}; harmonise the categories "
            "(um.harmonise) first"
        )
    empty = population[codes] == 0
    if empty.any():
        raise MarginsError(
            f"source {source.name!r} has respondents in categories of {variable!r} with no "
            f"population: {describe_labels(pd.unique(levels.to_numpy()[codes[empty]]))}"
        )
    return codes


def _source_rows(
    source: Source, keys: pd.DataFrame, counts: np.ndarray, rate: float | None
) -> tuple[list[dict[str, Any]], list[str]]:
    design = source.design
    data = design.data
    variables = [v for v in keys.columns if v in data.columns]
    if not variables:
        return [], []
    weights = np.asarray(design.weights)
    responded = weights != 0
    w = weights[responded]
    n, total_w, total_n = int(responded.sum()), float(w.sum()), float(counts.sum())
    mean_rate = rate if rate is not None else n / total_n
    scale = mean_rate / (n / total_n)
    rows: list[dict[str, Any]] = []
    blocks = []  # sparse indicator columns of the additive model
    respondent_sums = [float(n)]
    for variable in variables:
        ref_codes, levels = code_series(keys[variable].reset_index(drop=True))
        levels = pd.Index(levels.astype(object), dtype=object)
        n_pop = np.bincount(ref_codes, weights=counts, minlength=len(levels))
        codes = _codes(source, variable, data.loc[responded, variable], levels, n_pop)
        n_k = np.bincount(codes, minlength=len(levels)).astype(np.float64)
        w_k = np.bincount(codes, weights=w, minlength=len(levels))
        with np.errstate(divide="ignore", invalid="ignore"):
            rho = np.where(n_pop > 0, scale * n_k / n_pop, np.nan)
        deviation = np.where(n_pop > 0, rho - mean_rate, 0.0)
        partial = np.sqrt(n_pop / (total_n - 1.0)) * deviation
        p_w, p = w_k / total_w, n_pop / total_n
        spread = np.sqrt((p_w * (1 - p_w) + p * (1 - p)) / 2.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            asmd = np.where(spread > 0, np.abs(p_w - p) / spread, 0.0)
        for k, label in enumerate(levels):
            rows.append(
                {
                    "source": source.name,
                    "scope": "category",
                    "variable": variable,
                    "category": label,
                    "population": n_pop[k],
                    "respondents": n_k[k],
                    "weighted_total": w_k[k],
                    "population_share": p[k],
                    "weighted_share": p_w[k],
                    "propensity": rho[k],
                    "partial_r": partial[k],
                    "partial_cv": partial[k] / mean_rate,
                    "asmd": asmd[k],
                }
            )
        p_u = float(np.sqrt(np.sum(partial**2)))
        rows.append(
            {
                "source": source.name,
                "scope": "variable",
                "variable": variable,
                "population": total_n,
                "respondents": float(n),
                "weighted_total": total_w,
                "population_share": 1.0,
                "weighted_share": 1.0,
                "r_indicator": 1.0 - 2.0 * p_u,
                "cv": p_u / mean_rate,
                "partial_r": p_u,
                "partial_cv": p_u / mean_rate,
                "asmd": float(asmd.max()),
            }
        )
        # Reference coding: the first populated category is absorbed by the intercept.
        populated = np.flatnonzero(n_pop > 0)[1:]
        column = np.full(len(levels), -1)
        column[populated] = np.arange(populated.size)
        mapped = column[ref_codes]
        inside = mapped >= 0
        blocks.append(
            sp.csr_matrix(
                (np.ones(int(inside.sum())), (np.flatnonzero(inside), mapped[inside])),
                shape=(len(ref_codes), populated.size),
            )
        )
        respondent_sums.extend(n_k[populated])
    x = sp.hstack([sp.csr_matrix(np.ones((len(counts), 1))), *blocks], format="csr")
    cross = np.asarray((x.T @ x.multiply(counts[:, None])).todense())
    with single_threaded_blas():  # a small dense solve: one thread is faster and steadier
        beta = np.linalg.lstsq(cross, np.asarray(respondent_sums), rcond=None)[0]
    rho_cells = scale * (x @ beta)
    overall_spread = float(np.sqrt(np.sum(counts * (rho_cells - mean_rate) ** 2) / (total_n - 1.0)))
    variable_rows = [r for r in rows if r["scope"] == "variable"]
    rows.append(
        {
            "source": source.name,
            "scope": "source",
            "population": total_n,
            "respondents": float(n),
            "weighted_total": total_w,
            "population_share": 1.0,
            "weighted_share": 1.0,
            "propensity": mean_rate,
            "r_indicator": 1.0 - 2.0 * overall_spread,
            "cv": overall_spread / mean_rate,
            "asmd": max(r["asmd"] for r in variable_rows),
        }
    )
    return rows, variables


def representativeness_table(
    sources: list[Source],
    reference: tuple[pd.DataFrame, np.ndarray, str] | None,
    response_rates: Mapping[str, float],
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """One table for all sources: a ``source`` row, ``variable`` rows, ``category`` rows."""
    info: dict[str, Any] = {"variables": {}, "rate": {}, "notes": []}
    if reference is None:
        info["notes"].append(
            "no population by characteristic (care by=None and no population=): "
            "representativeness not measured"
        )
        return pd.DataFrame(columns=REPRESENTATIVENESS_COLUMNS), info
    keys, counts, origin = reference
    info["reference"] = origin
    rows: list[dict[str, Any]] = []
    for source in sources:
        rate = response_rates.get(source.name)
        source_rows, variables = _source_rows(source, keys, counts, rate)
        if not variables:
            info["notes"].append(
                f"source {source.name!r} shares no variable with the {origin} "
                f"({list(keys.columns)}): representativeness not measured"
            )
            continue
        rows.extend(source_rows)
        info["variables"][source.name] = variables
        info["rate"][source.name] = "given response rate" if rate is not None else "n / N"
    table = pd.DataFrame(rows, columns=REPRESENTATIVENESS_COLUMNS)
    table["respondents"] = table["respondents"].astype("float64")
    return table, info
