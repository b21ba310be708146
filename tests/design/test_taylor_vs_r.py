"""Taylor-linearisation estimates agree with R ``survey`` 4.1.1.

Expected values are read from ``tests/reference/design/taylor.json``, written
by ``tests/reference/design/taylor.R`` (see the README there). Nothing here
computes an expected value: every number compared against comes from R.
"""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import unmetneed as um
from unmetneed.errors import DesignError, LonelyPSUWarning

REFERENCE_DIR = Path(__file__).resolve().parents[1] / "reference" / "design"
REFERENCE = json.loads((REFERENCE_DIR / "taylor.json").read_text(encoding="utf-8"))
CASES: dict[str, dict[str, Any]] = REFERENCE["cases"]

# DESIGN.md, "Agreement with R" (relative tolerances).
RTOL_ESTIMATE = 1e-10
RTOL_SE = 1e-8
RTOL_CI = 1e-8
RTOL_DEFF = 1e-8
RTOL_CV = 1e-8

RESULT_COLUMNS = ["estimate", "se", "ci_lower", "ci_upper", "cv", "n"]
CATEGORY = "cat4"
CAT4_LEVELS = ["none", "paid", "self", "unpaid"]


@cache
def _read_csv(relative: str) -> pd.DataFrame:
    # pandas' default parser reads each decimal to the nearest double, as R does
    return pd.read_csv(REFERENCE_DIR / relative)


def load_data(case: dict[str, Any]) -> pd.DataFrame:
    """A fresh copy of a case's input data (the cache is never handed out)."""
    return _read_csv(case["data"]).copy()


def make_design(case: dict[str, Any], df: pd.DataFrame | None = None) -> um.SurveyDesign:
    """The case's design; lonely-PSU policies other than "fail" must warn."""
    data = load_data(case) if df is None else df
    kwargs = dict(case["python"], lonely_psu=case["lonely_psu"])
    if case["lonely_psu"] == "fail":
        return um.SurveyDesign(data, **kwargs)
    with pytest.warns(LonelyPSUWarning, match="S3"):
        return um.SurveyDesign(data, **kwargs)


def reference_frame(case_name: str, statistic: str) -> pd.DataFrame:
    rows = CASES[case_name]["results"][statistic]
    return pd.DataFrame(rows).rename(columns={"category": CATEGORY})


# ---------------------------------------------------------------------------
# What each reference statistic is in our API. Each entry: the by-variables,
# whether a category column is present, whether deff was requested, and a
# function (design, level) -> Estimates.
# ---------------------------------------------------------------------------
Estimator = Callable[[um.SurveyDesign, float], Any]

STATISTICS: dict[str, tuple[list[str], bool, bool, Estimator]] = {
    "mean": ([], False, True, lambda d, lv: d.mean("y", deff=True, level=lv)),
    "total": ([], False, True, lambda d, lv: d.total("y", deff=True, level=lv)),
    "ratio": ([], False, False, lambda d, lv: d.ratio("y", "x", level=lv)),
    "proportion": (
        [], True, True, lambda d, lv: d.proportion(CATEGORY, deff=True, level=lv)
    ),
    "mean_by_dom": (
        ["dom"], False, True, lambda d, lv: d.mean("y", by="dom", deff=True, level=lv)
    ),
    "total_by_dom": (
        ["dom"], False, True, lambda d, lv: d.total("y", by="dom", deff=True, level=lv)
    ),
    "ratio_by_dom": (["dom"], False, False, lambda d, lv: d.ratio("y", "x", by="dom", level=lv)),
    "proportion_by_dom": (
        ["dom"],
        True,
        True,
        lambda d, lv: d.proportion(CATEGORY, by="dom", deff=True, level=lv),
    ),
    "mean_by_dom_sex": (
        ["dom", "sex"],
        False,
        True,
        lambda d, lv: d.mean("y", by=["dom", "sex"], deff=True, level=lv),
    ),
    "total_by_dom_sex": (
        ["dom", "sex"],
        False,
        True,
        lambda d, lv: d.total("y", by=["dom", "sex"], deff=True, level=lv),
    ),
}

CASE_STATISTIC = [
    pytest.param(case, stat, id=f"{case}-{stat}") for case in CASES for stat in STATISTICS
]


def _keys_as_text(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    return frame[keys].astype(str).reset_index(drop=True)


def _align(
    ours: pd.DataFrame, ref: pd.DataFrame, keys: list[str], label: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Check the key columns and return both tables in the same row order.

    With at most one ``by`` variable the row order itself must equal R's
    (sorted domains, categories in order). For a crossed ``by`` R's
    ``svyby`` varies the first variable fastest, an artefact we need not
    copy, so rows are matched on their keys.
    """
    assert len(ours) == len(ref), f"{label}: {len(ours)} rows, R has {len(ref)}"
    by_vars = [k for k in keys if k != CATEGORY]
    if len(by_vars) > 1:
        ours = ours.assign(**{k: ours[k].astype(str) for k in keys})
        ours = ours.sort_values(keys, kind="stable").reset_index(drop=True)
        ref = ref.sort_values(keys, kind="stable").reset_index(drop=True)
    pd.testing.assert_frame_equal(
        _keys_as_text(ours, keys), _keys_as_text(ref, keys), obj=f"{label} keys"
    )
    return ours.reset_index(drop=True), ref.reset_index(drop=True)


def _compare(ours: pd.DataFrame, ref: pd.DataFrame, label: str, deff: bool) -> None:
    def check(column: str, rtol: float, ref_column: str | None = None) -> None:
        np.testing.assert_allclose(
            ours[column].to_numpy(dtype=np.float64),
            ref[ref_column or column].to_numpy(dtype=np.float64),
            rtol=rtol,
            atol=0.0,
            err_msg=f"{label}: {column}",
        )

    check("estimate", RTOL_ESTIMATE)
    check("se", RTOL_SE)
    check("ci_lower", RTOL_CI)
    check("ci_upper", RTOL_CI)
    check("cv", RTOL_CV)
    if deff:
        check("deff", RTOL_DEFF)


# ---------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------
def test_reference_file_records_versions() -> None:
    assert REFERENCE["survey_version"] == "4.1.1"
    assert REFERENCE["r_version"].startswith("R version")
    for case in CASES.values():
        assert case["design_call"].startswith("svydesign(")


@pytest.mark.parametrize("case_name", list(CASES))
def test_degrees_of_freedom(case_name: str) -> None:
    case = CASES[case_name]
    assert make_design(case).degf == case["degf"]


@pytest.mark.parametrize(("case_name", "statistic"), CASE_STATISTIC)
def test_matches_r(case_name: str, statistic: str) -> None:
    case = CASES[case_name]
    by, has_category, deff, estimator = STATISTICS[statistic]
    keys = by + ([CATEGORY] if has_category else [])
    label = f"{case_name} {statistic}"
    design = make_design(case)
    ours = estimator(design, 0.95).to_frame()
    expected_columns = keys + RESULT_COLUMNS + (["deff"] if deff else [])
    assert list(ours.columns) == expected_columns, label
    ref = reference_frame(case_name, statistic)
    ours, ref = _align(ours, ref, keys, label)
    _compare(ours, ref, label, deff)
    if not has_category:
        # n = rows behind the estimate (R: unwtd.count); proportions below
        np.testing.assert_array_equal(
            ours["n"].to_numpy(), ref["n"].to_numpy(), err_msg=f"{label}: n"
        )


@pytest.mark.parametrize(("case_name", "statistic"), CASE_STATISTIC)
def test_interval_level(case_name: str, statistic: str) -> None:
    """``level=0.9`` gives R's ``confint(..., level=0.9, df=degf(design))``."""
    case = CASES[case_name]
    by, has_category, _, estimator = STATISTICS[statistic]
    keys = by + ([CATEGORY] if has_category else [])
    label = f"{case_name} {statistic} level=0.9"
    ours = estimator(make_design(case), 0.9).to_frame()
    ref = reference_frame(case_name, statistic)
    ours, ref = _align(ours, ref, keys, label)
    for ours_col, ref_col in (("ci_lower", "ci90_lower"), ("ci_upper", "ci90_upper")):
        np.testing.assert_allclose(
            ours[ours_col].to_numpy(dtype=np.float64),
            ref[ref_col].to_numpy(dtype=np.float64),
            rtol=RTOL_CI,
            atol=0.0,
            err_msg=f"{label}: {ours_col}",
        )


@pytest.mark.parametrize("statistic", ["proportion", "proportion_by_dom"])
@pytest.mark.parametrize("case_name", list(CASES))
def test_proportion_n_counts_domain_rows(case_name: str, statistic: str) -> None:
    """A proportion's n is the respondents in its domain (its denominator)."""
    case = CASES[case_name]
    by, _, _, estimator = STATISTICS[statistic]
    keys = [*by, CATEGORY]
    label = f"{case_name} {statistic}"
    ours = estimator(make_design(case), 0.95).to_frame()
    ref = reference_frame(case_name, statistic)
    ours, ref = _align(ours, ref, keys, label)
    np.testing.assert_array_equal(ours["n"].to_numpy(), ref["n"].to_numpy(), err_msg=label)


@pytest.mark.parametrize("case_name", list(CASES))
def test_categorical_totals_match_r(case_name: str) -> None:
    """``svytotal(~cat4)``: the total of each category's 0/1 indicator."""
    case = CASES[case_name]
    df = load_data(case)
    indicators = {f"is_{level}": (df[CATEGORY] == level).astype(np.float64) for level in CAT4_LEVELS}
    design = make_design(case, df.assign(**indicators))
    ref = reference_frame(case_name, "total_categorical")
    assert ref[CATEGORY].tolist() == CAT4_LEVELS
    ours = pd.concat(
        [design.total(name, deff=True).to_frame() for name in indicators], ignore_index=True
    )
    _compare(ours, ref, f"{case_name} total_categorical", deff=True)


@pytest.mark.parametrize("case_name", ["strat_fpc_count", "strat_fpc_fraction"])
def test_fpc_as_count_or_fraction_agree(case_name: str) -> None:
    """R reads fpc <= 1 as a sampling fraction; both forms give one design."""
    other = "strat_fpc_fraction" if case_name == "strat_fpc_count" else "strat_fpc_count"
    ours = make_design(CASES[case_name]).total("y", by="dom").to_frame()
    theirs = make_design(CASES[other]).total("y", by="dom").to_frame()
    np.testing.assert_allclose(ours["se"], theirs["se"], rtol=RTOL_SE)


def test_lonely_psu_fail_names_the_stratum() -> None:
    """R stops with "Stratum (S3) has only one PSU"; we refuse to build the design."""
    case = REFERENCE["fail_case"]
    assert "S3" in case["r_error"]
    kwargs = dict(case["python"], lonely_psu="fail")
    with pytest.raises(DesignError, match=re.escape("S3")):
        um.SurveyDesign(load_data(case), **kwargs)


def test_lonely_psu_fail_is_the_default() -> None:
    case = REFERENCE["fail_case"]
    with pytest.raises(DesignError, match="S3"):
        um.SurveyDesign(load_data(case), **case["python"])


def test_no_warning_without_lonely_strata() -> None:
    """Designs with at least two PSUs per stratum build silently."""
    for case in CASES.values():
        if case["lonely_psu"] != "fail":
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            make_design(case)
