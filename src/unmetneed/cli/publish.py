"""One protected set of published numbers: every table a run publishes, from one pass of disclosure control.

The CSVs, the report, its figures and the console summary are all rendered from
the :class:`Publication` built here, and from nothing else, so a figure is the
same wherever it appears and a suppressed figure appears nowhere:

* **Counts** by area, by each characteristic and for England go through
  :func:`unmetneed.disclosure.protect` together with the England row of every
  quantity as the published total of their lines (areas add up to England,
  categories of a characteristic add up to England, ``need`` is the sum of its
  four parts and ``unmet_or_insufficient`` of ``unmet`` and ``insufficient``):
  no line is left with a single suppressed cell. The England rows are one table,
  used unchanged in every call, so England totals are identical everywhere.
* **Rates and shares** are derived from the *published* (rounded) counts:
  ``rate_per_1000 = 1000 x count / population`` and ``share_of_need = count /
  need``, so rate x census population gives back the rounded count and nothing
  finer. Their SEs and intervals are the count's divided by the population
  (rates) or the draws' rounded outwards (shares).
* **Coverage** rows compared with a modelled quantity use its published count
  as the target, and are suppressed where that count is suppressed (target,
  uncovered, over-count and coverage would give it back).
* **Derived report figures** (people outside council data, ...) are sums and
  differences of published England counts only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from unmetneed.disclosure import protect
from unmetneed.disclosure.rounding import round_to_base, round_to_decimals

__all__ = ["ENGLAND_CODE", "ENGLAND_NAME", "Publication", "build_publication"]

ENGLAND_CODE = "E92000001"
ENGLAND_NAME = "England"
RESULT_COLUMNS = ["quantity", "measure", "estimate", "se", "ci_lower", "ci_upper", "cv", "n", "basis",
                  "flag"]
# Published precision of the measures that are not counts.
RATE_DECIMALS = 1
SHARE_DECIMALS = 3
CV_DECIMALS = 3
COVERAGE_DECIMALS = 3


@dataclass
class Publication:
    """Every table a run publishes, after disclosure control (the only source of published numbers)."""

    by_area: pd.DataFrame
    by_characteristic: pd.DataFrame
    england: pd.DataFrame
    coverage: pd.DataFrame
    coverage_england: pd.DataFrame
    excluded_england: pd.DataFrame
    rules: dict[str, Any] = field(default_factory=dict)

    def count(self, quantity: str) -> float:
        """The published England count of ``quantity`` (NaN when it is not published)."""
        rows = self.england[(self.england["quantity"] == quantity) & (self.england["measure"] == "count")]
        return float(rows["estimate"].iloc[0]) if len(rows) else float("nan")


def _hierarchy(quantities: set[str]) -> dict[str, dict[str, list[str]]]:
    from unmetneed.estimates import PARTS

    relations: dict[str, list[str]] = {}
    if "need" in quantities:
        relations["need"] = [p for p in PARTS if p in quantities]
    if {"unmet_or_insufficient", "unmet", "insufficient"} <= quantities:
        relations["unmet_or_insufficient"] = ["unmet", "insufficient"]
    return {"quantity": relations}


def _population(estimates: Any, key: list[str]) -> pd.Series:
    """Census population of each group (the same in every draw)."""
    population = estimates.draws["population"].isel(draw=0)
    if not key:
        return pd.Series([float(population.sum())], index=pd.Index([ENGLAND_CODE]))
    series = population.to_series()
    series.index = series.index.astype(str)
    return series.astype(float)


def _keys(table: pd.DataFrame, key: str) -> pd.Series:
    return table[key].astype(str) + "\x1f" + table["quantity"].astype(str)


def _derive_measures(protected: pd.DataFrame, unprotected: pd.DataFrame, key: str,
                     population: pd.Series, rounding: int | None) -> pd.DataFrame:
    """Rates and shares from the published counts, at published precision."""
    out = protected.copy()
    counts = out[out["measure"] == "count"]
    count_at = pd.Series(counts.index, index=_keys(counts, key))
    need = counts[counts["quantity"] == "need"].set_index(counts.loc[counts["quantity"] == "need", key].astype(str))
    published = out["flag"] != "suppressed"
    # A positive SE is never published as 0 (0 means exactly known): it is the base.
    base = float(rounding) if rounding else 0.0
    tiny = (out["measure"] == "count") & published & (out["se"] == 0) & (unprotected["se"] > 0)
    out.loc[tiny, "se"] = base
    for measure in ("rate_per_1000", "share_of_need"):
        rows = out.index[(out["measure"] == measure) & published]
        if not len(rows):
            continue
        source = count_at.reindex(_keys(out.loc[rows], key)).to_numpy()
        count = out.loc[source, ["estimate", "se", "ci_lower", "ci_upper"]].to_numpy(dtype=float)
        groups = out.loc[rows, key].astype(str)
        if measure == "rate_per_1000":
            scale = 1000.0 / population.reindex(groups).to_numpy(dtype=float)
            values = count * scale[:, None]
            out.loc[rows, "estimate"] = round_to_decimals(values[:, 0], RATE_DECIMALS)
            out.loc[rows, "se"] = _positive(values[:, 1], round_to_decimals(values[:, 1], RATE_DECIMALS),
                                            RATE_DECIMALS)
            out.loc[rows, "ci_lower"] = round_to_decimals(values[:, 2], RATE_DECIMALS, "down")
            out.loc[rows, "ci_upper"] = round_to_decimals(values[:, 3], RATE_DECIMALS, "up")
        else:
            denominator = need["estimate"].reindex(groups).to_numpy(dtype=float)
            with np.errstate(divide="ignore", invalid="ignore"):
                share = round_to_decimals(count[:, 0] / denominator, SHARE_DECIMALS)
            original = unprotected.loc[rows, ["se", "ci_lower", "ci_upper"]].to_numpy(dtype=float)
            out.loc[rows, "estimate"] = share
            out.loc[rows, "se"] = _positive(original[:, 0], round_to_decimals(original[:, 0], SHARE_DECIMALS),
                                            SHARE_DECIMALS)
            # The interval still contains the point after rounding.
            out.loc[rows, "ci_lower"] = np.fmin(round_to_decimals(original[:, 1], SHARE_DECIMALS, "down"), share)
            out.loc[rows, "ci_upper"] = np.fmax(round_to_decimals(original[:, 2], SHARE_DECIMALS, "up"), share)
    out["cv"] = round_to_decimals(out["cv"].to_numpy(dtype=float), CV_DECIMALS)
    return out


def _positive(se: np.ndarray, rounded: np.ndarray, decimals: int) -> np.ndarray:
    """A positive SE is never published as 0 (0 means exactly known): the last digit instead."""
    return np.where((se > 0) & (rounded == 0), 10.0**-decimals, rounded)


def _protect_with_england(table: pd.DataFrame, england: pd.DataFrame, key: str, options: dict[str, Any],
                          hierarchy: dict[str, Any]) -> pd.DataFrame:
    """Protect ``table`` with the England rows as the published total of its lines."""
    total = england.copy()
    for column in table.columns:
        if column not in total.columns:
            total[column] = ENGLAND_NAME if column != key else ENGLAND_CODE
    total[key] = ENGLAND_CODE
    both = pd.concat([table, total[table.columns]], ignore_index=True)
    both[key] = both[key].astype(str)
    return protect(both, by=[key], total_label=ENGLAND_CODE, hierarchy=hierarchy, **options)


def build_publication(results: dict[tuple[str, ...], Any], coverage: Any, area_names: pd.Series,
                      by: tuple[str, ...], disclosure: dict[str, Any]) -> Publication:
    """Protect every table a run publishes, jointly (see the module docstring)."""
    options = {k: v for k, v in disclosure.items() if v is not None}
    rounding = options.get("rounding")
    area = by[0]
    england_estimates = results[()]
    england = england_estimates.to_frame().reset_index(drop=True)
    # England rests on every respondent: the sum of the areas' respondents.
    area_table = results[(area,)].to_frame()
    respondents = area_table.loc[(area_table["quantity"] == "need") & (area_table["measure"] == "count"), "n"]
    if respondents.notna().any():
        england["n"] = int(respondents.fillna(0).sum())
    hierarchy = _hierarchy(set(england["quantity"]))

    def one(key: str) -> tuple[pd.DataFrame, pd.DataFrame]:
        estimates = results[(key,)]
        table = estimates.to_frame().reset_index(drop=True)
        table[key] = table[key].astype(str)
        protected = _protect_with_england(table[[key, *RESULT_COLUMNS]], england, key, options, hierarchy)
        population = pd.concat([_population(estimates, [key]), _population(england_estimates, [])])
        unprotected = pd.concat([table[[key, *RESULT_COLUMNS]],
                                 england.assign(**{key: ENGLAND_CODE})[[key, *RESULT_COLUMNS]]],
                                ignore_index=True)
        derived = _derive_measures(protected, unprotected, key, population, rounding)
        is_total = derived[key] == ENGLAND_CODE
        return derived[~is_total].reset_index(drop=True), derived[is_total].reset_index(drop=True)

    by_area, england_published = one(area)
    names = area_names.copy()
    names.index = names.index.astype(str)
    by_area.insert(1, "area_name", by_area[area].map(names))
    by_area = by_area[[area, "area_name", *RESULT_COLUMNS, "reason"]]
    england_published = england_published[RESULT_COLUMNS + ["reason"]]
    if (england_published["flag"] == "suppressed").any():  # pragma: no cover - England counts are large
        raise RuntimeError("disclosure control suppressed an England total; the run cannot publish")
    frames = []
    for characteristic in by[1:]:
        table, total = one(characteristic)
        pd.testing.assert_frame_equal(total[RESULT_COLUMNS + ["reason"]], england_published)
        table = table.rename(columns={characteristic: "category"})
        table.insert(0, "characteristic", characteristic)
        frames.append(table[["characteristic", "category", *RESULT_COLUMNS, "reason"]])
    by_characteristic = (pd.concat(frames, ignore_index=True) if frames else
                         pd.DataFrame(columns=["characteristic", "category", *RESULT_COLUMNS, "reason"]))
    publication = Publication(
        by_area=by_area, by_characteristic=by_characteristic, england=england_published,
        coverage=pd.DataFrame(), coverage_england=pd.DataFrame(),
        excluded_england=_excluded(england_published),
        rules={**options, "hierarchy": hierarchy["quantity"], "rate_decimals": RATE_DECIMALS,
               "share_decimals": SHARE_DECIMALS, "cv_decimals": CV_DECIMALS,
               "coverage_decimals": COVERAGE_DECIMALS},
    )
    publication.by_area.attrs["disclosure_text"] = _describe(by_area)
    if coverage is not None:
        publication.coverage, publication.coverage_england = _coverage(
            coverage, publication, area, names, rounding)
    return publication


def _describe(table: pd.DataFrame) -> str:
    from unmetneed.disclosure import describe_protection

    try:
        return describe_protection(table)
    except (KeyError, ValueError, TypeError):
        return ""


def _excluded(england: pd.DataFrame) -> pd.DataFrame:
    """People council data leave out, England: sums and differences of published counts only."""
    count = england[england["measure"] == "count"].set_index("quantity")["estimate"]
    rows = []
    derived = {
        "self_funded": ("pay for their own care", count.get("self_funded")),
        "unpaid_only": ("helped only by unpaid carers", count.get("unpaid_only")),
        "unmet": ("no help at all", count.get("unmet")),
        "never_assessed": ("helped only by unpaid carers or not at all (unpaid_only + unmet)",
                           count.get("unpaid_only", np.nan) + count.get("unmet", np.nan)),
        "outside_council_data": ("everyone in need whom council data miss (need - council_funded)",
                                 count.get("need", np.nan) - count.get("council_funded", np.nan)),
    }
    need = float(count.get("need", np.nan))
    for quantity, (meaning, value) in derived.items():
        value = float(value) if value is not None else np.nan
        rows.append({"quantity": quantity, "who": meaning, "count": value,
                     "share_of_need": round_to_decimals(np.array([value / need]), SHARE_DECIMALS)[0]})
    return pd.DataFrame(rows)


def _round_se(se: np.ndarray, rounding: int | None) -> np.ndarray:
    if rounding is None:
        return se
    out = round_to_base(se, rounding)
    # A positive SE is never published as 0: 0 means exactly known.
    return np.where((se > 0) & (out == 0), float(rounding), out)


def _coverage(report: Any, publication: Publication, area: str, names: pd.Series,
              rounding: int | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    table = report.to_frame().reset_index(drop=True)
    overall = report.overall.reset_index(drop=True)
    if area not in table.columns:
        return table, overall
    table[area] = table[area].astype(str)
    counts = publication.by_area[publication.by_area["measure"] == "count"]
    published = counts.set_index([area, "quantity"])
    england = publication.england[publication.england["measure"] == "count"].set_index("quantity")

    def protect_rows(frame: pd.DataFrame, target: pd.Series, flag: pd.Series, care: np.ndarray) -> pd.DataFrame:
        out = frame.copy()
        base = rounding or 1
        covered = out["covered"].to_numpy(dtype=float)
        out["covered"] = round_to_base(covered, base)
        out["covered_se"] = _round_se(out["covered_se"].to_numpy(dtype=float), rounding)
        # Care targets: the published count; census targets: the census count (public, exact).
        target_value = np.where(care, target.to_numpy(dtype=float), out["target_estimate"].to_numpy(dtype=float))
        suppressed = care & (flag.to_numpy() == "suppressed")
        out["target_estimate"] = np.where(care, target_value, out["target_estimate"])
        gap = target_value - out["covered"].to_numpy(dtype=float)
        out["uncovered"] = np.maximum(gap, 0.0)
        out["over_count"] = np.maximum(-gap, 0.0)
        out["uncovered_lower"] = round_to_base(out["uncovered_lower"].to_numpy(dtype=float), base, "down")
        out["uncovered_upper"] = round_to_base(out["uncovered_upper"].to_numpy(dtype=float), base, "up")
        out["uncovered_lower"] = np.fmin(out["uncovered_lower"], out["uncovered"])
        out["uncovered_upper"] = np.fmax(out["uncovered_upper"], out["uncovered"])
        with np.errstate(divide="ignore", invalid="ignore"):
            share = np.where(target_value > 0, out["covered"].to_numpy(dtype=float) / target_value, np.nan)
        share = round_to_decimals(share, COVERAGE_DECIMALS)
        out["coverage"] = share
        out["coverage_lower"] = np.fmin(round_to_decimals(out["coverage_lower"].to_numpy(dtype=float),
                                                          COVERAGE_DECIMALS, "down"), share)
        out["coverage_upper"] = np.fmax(round_to_decimals(out["coverage_upper"].to_numpy(dtype=float),
                                                          COVERAGE_DECIMALS, "up"), share)
        out["flag"] = np.where(gap < 0, "over_count", "ok")
        blank = ["target_estimate", "uncovered", "uncovered_lower", "uncovered_upper", "over_count",
                 "coverage", "coverage_lower", "coverage_upper"]
        out.loc[suppressed, blank] = np.nan
        out.loc[suppressed, "flag"] = "suppressed"
        return out

    care_rows = (table["target"].isin(counts["quantity"].unique())).to_numpy()
    keys = pd.MultiIndex.from_arrays([table[area], table["target"]])
    target = published["estimate"].reindex(keys)
    flag = published["flag"].reindex(keys).fillna("ok")
    target.index = flag.index = table.index
    coverage_table = protect_rows(table, target, flag, care_rows)
    coverage_table.insert(1, "area_name", coverage_table[area].map(names))
    care_overall = overall["target"].isin(england.index).to_numpy()
    overall_target = england["estimate"].reindex(overall["target"]).set_axis(overall.index)
    overall_flag = england["flag"].reindex(overall["target"]).fillna("ok").set_axis(overall.index)
    coverage_overall = protect_rows(overall, overall_target, overall_flag, care_overall)
    return coverage_table, coverage_overall
