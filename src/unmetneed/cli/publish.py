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

from unmetneed.coverage.frame import TARGET_COLUMNS
from unmetneed.disclosure import protect
from unmetneed.disclosure.rounding import round_to_base, round_to_decimals
from unmetneed.estimates.carers import ALL_CARERS, CARER_QUANTITIES, ENGLAND

__all__ = ["ENGLAND_CODE", "ENGLAND_NAME", "Publication", "build_publication"]

ENGLAND_CODE = ENGLAND
ENGLAND_NAME = "England"
RESULT_COLUMNS = ["quantity", "measure", "estimate", "se", "ci_lower", "ci_upper", "cv", "n", "basis", "flag"]
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
    #: unpaid carers by council and hours band (estimate_carers), protected; None without SACE
    carers: pd.DataFrame | None = None

    def count(self, quantity: str, setting: str = "all") -> float:
        """The published England count of ``quantity`` in ``setting`` (NaN when it is not published)."""
        rows = _in_setting(self.england, setting)
        rows = rows[(rows["quantity"] == quantity) & (rows["measure"] == "count")]
        return float(rows["estimate"].iloc[0]) if len(rows) else float("nan")


def _in_setting(table: pd.DataFrame, setting: str = "all") -> pd.DataFrame:
    """The rows of one setting (every row of a table without settings)."""
    return table[table["setting"] == setting] if "setting" in table.columns else table


def _hierarchy(quantities: set[str], settings: set[str]) -> dict[str, dict[str, list[str]]]:
    from unmetneed.estimates import PARTS

    relations: dict[str, list[str]] = {}
    if "need" in quantities:
        relations["need"] = [p for p in PARTS if p in quantities]
    if {"unmet_or_insufficient", "unmet", "insufficient"} <= quantities:
        relations["unmet_or_insufficient"] = ["unmet", "insufficient"]
    out: dict[str, dict[str, list[str]]] = {"quantity": relations}
    if {"household", "care_home", "all"} <= settings:
        out["setting"] = {"all": ["household", "care_home"]}
    return out


def _settings(table: pd.DataFrame) -> list[str]:
    """``["setting"]`` when the table is by setting (a key column of every line)."""
    return ["setting"] if "setting" in table.columns else []


def _group(table: pd.DataFrame, key: str) -> pd.Series:
    """The group of each row: its ``key`` category, and its setting when there is one."""
    group = table[key].astype(str)
    if "setting" in table.columns:
        group = group + "\x1e" + table["setting"].astype(str)
    return group


def _population(estimates: Any, key: list[str]) -> pd.Series:
    """Census population of each group (the same in every draw)."""
    population = estimates.draws["population"].isel(draw=0)
    if "setting" not in population.dims:
        if not key:
            return pd.Series([float(population.sum())], index=pd.Index([ENGLAND_CODE]))
        series = population.to_series()
        series.index = series.index.astype(str)
        return series.astype(float)
    table = population.to_series().rename("population").reset_index()
    if not key:
        table[ENGLAND_CODE] = ENGLAND_CODE
        key = [ENGLAND_CODE]
    return pd.Series(table["population"].to_numpy(dtype=float), index=_group(table, key[0]).to_numpy())


def _keys(table: pd.DataFrame, key: str) -> pd.Series:
    return _group(table, key) + "\x1f" + table["quantity"].astype(str)


def _derive_measures(
    protected: pd.DataFrame, unprotected: pd.DataFrame, key: str, population: pd.Series, rounding: int | None
) -> pd.DataFrame:
    """Rates and shares from the published counts, at published precision."""
    out = protected.copy()
    counts = out[out["measure"] == "count"]
    count_at = pd.Series(counts.index, index=_keys(counts, key))
    need_rows = counts[counts["quantity"] == "need"]
    need = need_rows.set_index(_group(need_rows, key))
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
        groups = _group(out.loc[rows], key)
        if measure == "rate_per_1000":
            scale = 1000.0 / population.reindex(groups).to_numpy(dtype=float)
            values = count * scale[:, None]
            out.loc[rows, "estimate"] = round_to_decimals(values[:, 0], RATE_DECIMALS)
            out.loc[rows, "se"] = _positive(
                values[:, 1], round_to_decimals(values[:, 1], RATE_DECIMALS), RATE_DECIMALS
            )
            out.loc[rows, "ci_lower"] = round_to_decimals(values[:, 2], RATE_DECIMALS, "down")
            out.loc[rows, "ci_upper"] = round_to_decimals(values[:, 3], RATE_DECIMALS, "up")
        else:
            denominator = need["estimate"].reindex(groups).to_numpy(dtype=float)
            with np.errstate(divide="ignore", invalid="ignore"):
                share = round_to_decimals(count[:, 0] / denominator, SHARE_DECIMALS)
            original = unprotected.loc[rows, ["se", "ci_lower", "ci_upper"]].to_numpy(dtype=float)
            out.loc[rows, "estimate"] = share
            out.loc[rows, "se"] = _positive(
                original[:, 0], round_to_decimals(original[:, 0], SHARE_DECIMALS), SHARE_DECIMALS
            )
            # The interval still contains the point after rounding.
            out.loc[rows, "ci_lower"] = np.fmin(
                round_to_decimals(original[:, 1], SHARE_DECIMALS, "down"), share
            )
            out.loc[rows, "ci_upper"] = np.fmax(
                round_to_decimals(original[:, 2], SHARE_DECIMALS, "up"), share
            )
    out["cv"] = round_to_decimals(out["cv"].to_numpy(dtype=float), CV_DECIMALS)
    return out


def _positive(se: np.ndarray, rounded: np.ndarray, decimals: int) -> np.ndarray:
    """A positive SE is never published as 0 (0 means exactly known): the last digit instead."""
    return np.where((se > 0) & (rounded == 0), 10.0**-decimals, rounded)


def _protect_with_england(
    table: pd.DataFrame, england: pd.DataFrame, key: str, options: dict[str, Any], hierarchy: dict[str, Any]
) -> pd.DataFrame:
    """Protect ``table`` with the England rows as the published total of its lines."""
    total = england.copy()
    for column in table.columns:
        if column not in total.columns:
            total[column] = ENGLAND_NAME if column != key else ENGLAND_CODE
    total[key] = ENGLAND_CODE
    both = pd.concat([table, total[table.columns]], ignore_index=True)
    both[key] = both[key].astype(str)
    return protect(both, by=[key], total_label=ENGLAND_CODE, hierarchy=hierarchy, **options)


def build_publication(
    results: dict[tuple[str, ...], Any],
    coverage: Any,
    area_names: pd.Series,
    by: tuple[str, ...],
    disclosure: dict[str, Any],
    *,
    carers: Any = None,
) -> Publication:
    """Protect every table a run publishes, jointly (see the module docstring)."""
    options = {k: v for k, v in disclosure.items() if v is not None}
    rounding = options.get("rounding")
    area = by[0]
    england_estimates = results[()]
    england = england_estimates.to_frame().reset_index(drop=True)
    # England rests on every respondent: the sum of the areas' respondents. (The area
    # table is summarised once, here, and protected below: a summary costs a pass over
    # every quantity's draws.)
    summaries = {area: results[(area,)].to_frame()}
    area_table = summaries[area]
    area_table = _in_setting(area_table, "household") if "setting" in area_table.columns else area_table
    respondents = area_table.loc[(area_table["quantity"] == "need") & (area_table["measure"] == "count"), "n"]
    if respondents.notna().any():
        england["n"] = int(respondents.fillna(0).sum())
        if "setting" in england.columns:  # care-home rows rest on the care-home returns
            england["n"] = england["n"].astype("Int64").mask(england["setting"] == "care_home")
    setting = _settings(england)
    hierarchy = _hierarchy(set(england["quantity"]), set(england["setting"]) if setting else set())

    def one(key: str) -> tuple[pd.DataFrame, pd.DataFrame]:
        estimates = results[(key,)]
        summary = summaries.pop(key) if key in summaries else estimates.to_frame()
        table = summary.reset_index(drop=True)
        table[key] = table[key].astype(str)
        columns = [key, *setting, *RESULT_COLUMNS]
        protected = _protect_with_england(table[columns], england, key, options, hierarchy)
        population = pd.concat([_population(estimates, [key]), _population(england_estimates, [])])
        unprotected = pd.concat(
            [table[columns], england.assign(**{key: ENGLAND_CODE})[columns]], ignore_index=True
        )
        derived = _derive_measures(protected, unprotected, key, population, rounding)
        is_total = derived[key] == ENGLAND_CODE
        return derived[~is_total].reset_index(drop=True), derived[is_total].reset_index(drop=True)

    by_area, england_published = one(area)
    names = area_names.copy()
    names.index = names.index.astype(str)
    by_area.insert(1, "area_name", by_area[area].map(names))
    by_area = by_area[[area, "area_name", *setting, *RESULT_COLUMNS, "reason"]]
    england_published = england_published[[*setting, *RESULT_COLUMNS, "reason"]]
    if (england_published["flag"] == "suppressed").any():  # pragma: no cover - England counts are large
        raise RuntimeError("disclosure control suppressed an England total; the run cannot publish")
    frames = []
    for characteristic in by[1:]:
        table, total = one(characteristic)
        pd.testing.assert_frame_equal(total[[*setting, *RESULT_COLUMNS, "reason"]], england_published)
        table = table.rename(columns={characteristic: "category"})
        table.insert(0, "characteristic", characteristic)
        frames.append(table[["characteristic", "category", *setting, *RESULT_COLUMNS, "reason"]])
    characteristic_columns = ["characteristic", "category", *setting, *RESULT_COLUMNS, "reason"]
    by_characteristic = (
        pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=characteristic_columns)
    )
    publication = Publication(
        by_area=by_area,
        by_characteristic=by_characteristic,
        england=england_published,
        coverage=pd.DataFrame(),
        coverage_england=pd.DataFrame(),
        excluded_england=_excluded(england_published),
        rules={
            **options,
            "hierarchy": hierarchy,
            "rate_decimals": RATE_DECIMALS,
            "share_decimals": SHARE_DECIMALS,
            "cv_decimals": CV_DECIMALS,
            "coverage_decimals": COVERAGE_DECIMALS,
        },
    )
    publication.by_area.attrs["disclosure_text"] = _describe(by_area)
    if coverage is not None:
        publication.coverage, publication.coverage_england = _coverage(
            coverage, publication, area, names, rounding
        )
    if carers is not None:
        publication.carers = _carers(carers, names, options)
    return publication


CARER_COUNTS = tuple(q for q in CARER_QUANTITIES if q != "carers_known_share")


def _carers(carers: Any, names: pd.Series, options: dict[str, Any]) -> pd.DataFrame:
    """Unpaid carers by council and hours band, protected like the care tables.

    Counts add up over councils (England the total row), over hours bands (all
    carers the total) and as carers = known + unknown; the known share is a
    ratio of published counts, suppressed with them.
    """
    table = carers.to_frame().reset_index(drop=True)
    table["area_code"] = table["area_code"].astype(str)
    table["measure"] = np.where(table["quantity"].isin(CARER_COUNTS), "count", "share")
    bands = [b for b in pd.unique(table["unpaid_care"]) if b != ALL_CARERS]
    hierarchy: dict[str, Any] = {"quantity": {"carers": ["carers_known", "carers_unknown"]}}
    if bands:
        hierarchy["unpaid_care"] = {ALL_CARERS: bands}
    columns = [
        "area_code",
        "unpaid_care",
        "quantity",
        "measure",
        "estimate",
        "se",
        "ci_lower",
        "ci_upper",
        "cv",
        "n",
        "basis",
    ]
    shown = {k: v for k, v in options.items() if k != "min_n"}
    protected = protect(
        table[columns],
        by=["area_code"],
        total_label=ENGLAND_CODE,
        hierarchy=hierarchy,
        decimals=SHARE_DECIMALS,
        **shown,
    )
    share = protected["measure"] == "share"
    # the known share is known / carers: withheld when either published count is
    keyed = protected.set_index(["area_code", "unpaid_care", "quantity"])["flag"]
    for quantity in ("carers_known", "carers"):
        flags = keyed.reindex(
            pd.MultiIndex.from_arrays(
                [protected["area_code"], protected["unpaid_care"], pd.Series(quantity, index=protected.index)]
            )
        )
        hidden = share.to_numpy() & (flags.to_numpy() == "suppressed")
        protected.loc[hidden, ["estimate", "se", "ci_lower", "ci_upper", "cv"]] = np.nan
        protected.loc[hidden, "flag"] = "suppressed"
        protected.loc[hidden, "reason"] = "secondary"
    protected.insert(
        1,
        "area_name",
        protected["area_code"].map(names).where(protected["area_code"] != ENGLAND_CODE, ENGLAND_NAME),
    )
    return protected


def _describe(table: pd.DataFrame) -> str:
    from unmetneed.disclosure import describe_protection

    try:
        return describe_protection(table)
    except (KeyError, ValueError, TypeError):
        return ""


def _excluded(england: pd.DataFrame) -> pd.DataFrame:
    """People council data leave out, England: sums and differences of published counts only."""
    england = _in_setting(england)
    count = england[england["measure"] == "count"].set_index("quantity")["estimate"]
    rows = []
    derived = {
        "self_funded": ("pay for their own care", count.get("self_funded")),
        "unpaid_only": ("helped only by unpaid carers", count.get("unpaid_only")),
        "unmet": ("no help at all", count.get("unmet")),
        "never_assessed": (
            "helped only by unpaid carers or not at all (unpaid_only + unmet)",
            count.get("unpaid_only", np.nan) + count.get("unmet", np.nan),
        ),
        "outside_council_data": (
            "everyone in need whom council data miss (need - council_funded)",
            count.get("need", np.nan) - count.get("council_funded", np.nan),
        ),
    }
    need = float(count.get("need", np.nan))
    for quantity, (meaning, value) in derived.items():
        value = float(value) if value is not None else np.nan
        rows.append(
            {
                "quantity": quantity,
                "who": meaning,
                "count": value,
                "share_of_need": round_to_decimals(np.array([value / need]), SHARE_DECIMALS)[0],
            }
        )
    return pd.DataFrame(rows)


def _round_se(se: np.ndarray, rounding: int | None) -> np.ndarray:
    if rounding is None:
        return se
    out = round_to_base(se, rounding)
    # A positive SE is never published as 0: 0 means exactly known.
    return np.where((se > 0) & (out == 0), float(rounding), out)


def _protect_coverage(
    frame: pd.DataFrame, target: pd.Series, flag: pd.Series, care: np.ndarray, rounding: int | None
) -> pd.DataFrame:
    """Coverage rows at published precision; rows whose care target is suppressed are blanked."""
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
    out["coverage_lower"] = np.fmin(
        round_to_decimals(out["coverage_lower"].to_numpy(dtype=float), COVERAGE_DECIMALS, "down"), share
    )
    out["coverage_upper"] = np.fmax(
        round_to_decimals(out["coverage_upper"].to_numpy(dtype=float), COVERAGE_DECIMALS, "up"), share
    )
    # An over-count is flagged when the interval says so (its lower bound above 1): a point
    # just above 1 is the sampling noise of a source that counts everyone.
    out["flag"] = np.where((gap < 0) & (out["coverage_lower"].to_numpy(dtype=float) > 1), "over_count", "ok")
    out.loc[suppressed, list(TARGET_COLUMNS)] = np.nan
    out.loc[suppressed, "flag"] = "suppressed"
    return out


def _targets(table: pd.DataFrame, keys: list[str], published: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """The published count (and its flag) of each row's target; ``published`` is indexed by keys + quantity."""
    index = pd.MultiIndex.from_arrays([*(table[c] for c in keys), table["target"]])
    target = published["estimate"].reindex(index)
    flag = published["flag"].reindex(index).fillna("ok")
    target.index = flag.index = table.index
    return target, flag


def _coverage(
    report: Any, publication: Publication, area: str, names: pd.Series, rounding: int | None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    table = report.to_frame().reset_index(drop=True)
    overall = report.overall.reset_index(drop=True)
    if area not in table.columns:
        return table, overall
    table[area] = table[area].astype(str)
    counts = publication.by_area[publication.by_area["measure"] == "count"]
    keyed = [area, *_settings(counts)] if "setting" in table.columns else [area]
    published = (_in_setting(counts) if keyed == [area] else counts).set_index([*keyed, "quantity"])
    england = publication.england[publication.england["measure"] == "count"]
    overall_keys = _settings(england) if "setting" in overall.columns else []
    england = (_in_setting(england) if not overall_keys else england).set_index([*overall_keys, "quantity"])
    care_rows = table["target"].isin(counts["quantity"].unique()).to_numpy()
    target, flag = _targets(table, keyed, published)
    coverage_table = _protect_coverage(table, target, flag, care_rows, rounding)
    coverage_table.insert(1, "area_name", coverage_table[area].map(names))
    care_overall = overall["target"].isin(england.index.get_level_values("quantity")).to_numpy()
    overall_target, overall_flag = _targets(overall, overall_keys, england)
    coverage_overall = _protect_coverage(overall, overall_target, overall_flag, care_overall, rounding)
    if hasattr(report, "by_characteristic"):
        extra, extra_overall = _coverage_by_characteristic(report, publication, rounding)
        if len(extra):
            coverage_table.insert(0, "characteristic", area)
            coverage_table.insert(1, "category", coverage_table[area])
            coverage_table = pd.concat([coverage_table, extra], ignore_index=True)
            coverage_overall = pd.concat([coverage_overall, extra_overall], ignore_index=True)
    return coverage_table, coverage_overall


def _coverage_by_characteristic(
    report: Any, publication: Publication, rounding: int | None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Coverage of need by characteristic, against the published counts; groups clearly below
    the source's England coverage of need are flagged ``below_average``."""
    table = report.by_characteristic()
    if not len(table):
        return table, table
    table["category"] = table["category"].astype(str)
    counts = publication.by_characteristic[publication.by_characteristic["measure"] == "count"].copy()
    counts["category"] = counts["category"].astype(str)
    keys = ["characteristic", "category", *_settings(counts)]
    target, flag = _targets(table, keys, counts.set_index([*keys, "quantity"]))
    out = _protect_coverage(table, target, flag, np.ones(len(table), dtype=bool), rounding)
    overall = report.overall_by_characteristic.drop_duplicates(["source", "target", "setting"])
    overall = overall.reset_index(drop=True)
    england = publication.england[publication.england["measure"] == "count"]
    england_keys = _settings(england)
    overall_target, overall_flag = _targets(
        overall, england_keys, england.set_index([*england_keys, "quantity"])
    )
    overall = _protect_coverage(
        overall, overall_target, overall_flag, np.ones(len(overall), dtype=bool), rounding
    )
    average = overall.set_index(["source", "target", "setting"])["coverage"]
    reference = average.reindex(pd.MultiIndex.from_frame(out[["source", "target", "setting"]])).to_numpy()
    below = (out["flag"] == "ok").to_numpy() & (out["coverage_upper"].to_numpy(dtype=float) < reference)
    out.loc[below, "flag"] = "below_average"
    return out, overall
