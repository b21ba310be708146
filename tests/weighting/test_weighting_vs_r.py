"""Raking, calibration and post-stratification agree with R ``survey`` 4.1.1.

Expected values are read from ``tests/reference/weighting/weighting.json``,
written by ``tests/reference/weighting/weighting.R`` (see the README there)
from the sample in ``data/weighting_sample.csv``. Nothing here computes an
expected value: every number compared against comes from R.

Cases: ``rake`` (R ``rake``), ``calibrate_linear`` (``calibrate``, sex + age +
numeric x), ``calibrate_raking_bounded`` (``calfun="raking"``, bounds 0.5-2),
``calibrate_logit`` (bounds 0.4-2.5), ``poststratify`` (``postStratify`` on
region x sex), and ``rake`` of JK1, JKn and bootstrap replicate designs.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import unmetneed as um
from unmetneed.weighting import WeightingResult

REFERENCE_DIR = Path(__file__).resolve().parents[1] / "reference" / "weighting"

# DESIGN.md, "Agreement with R" (relative tolerances).
RTOL_WEIGHTS = 1e-8  # calibrated / raked / poststratified weights (converged to 1e-12)
RTOL_ESTIMATE = 1e-8  # point estimates from those weights
RTOL_SE = 1e-6  # SEs after weighting
RTOL_SE_REPLICATE = 1e-8  # replicate SEs from given (imported) replicate weights
TOL = 1e-12  # convergence tolerance of our calls

TAYLOR_CASES = [
    "rake",
    "calibrate_linear",
    "calibrate_raking_bounded",
    "calibrate_logit",
    "poststratify",
]
REPLICATE_CASES = ["rake_jk1", "rake_jkn"]
STATISTICS = ["mean", "total", "proportion", "mean_by_region"]


@cache
def _reference_text() -> str:
    return (REFERENCE_DIR / "weighting.json").read_text(encoding="utf-8")


def reference() -> dict[str, Any]:
    """A fresh copy of the stored R output (no shared mutable state)."""
    return json.loads(_reference_text())


def case(name: str) -> dict[str, Any]:
    return reference()["cases"][name]


@cache
def _read_csv(relative: str) -> pd.DataFrame:
    # pandas' default parser reads each decimal to the nearest double, as R does
    return pd.read_csv(REFERENCE_DIR / relative)


def sample() -> pd.DataFrame:
    return _read_csv(reference()["data"]).copy()


def margin_series(name: str) -> pd.Series:
    """A margin exactly as R used it (``margins`` in the JSON)."""
    m = reference()["margins"][name]
    variables = m["variables"]
    if len(variables) == 1:
        index: pd.Index = pd.Index(m[variables[0]], name=variables[0])
    else:
        index = pd.MultiIndex.from_arrays([m[v] for v in variables], names=variables)
    return pd.Series(np.asarray(m["total"], dtype=np.float64), index=index)


def margins(*names: str) -> um.Margins:
    entries: dict[Any, Any] = {}
    for name in names:
        if name == "x":
            entries["x"] = float(reference()["margins"]["x"]["total"])
        elif name == "region_sex":
            entries[("region", "sex")] = margin_series(name)
        else:
            entries[name] = margin_series(name)
    return um.Margins(entries)


def taylor_design(df: pd.DataFrame | None = None) -> um.SurveyDesign:
    """R: svydesign(ids = ~psu, strata = ~stratum, weights = ~w, nest = TRUE)."""
    return um.SurveyDesign(
        sample() if df is None else df, weights="w", strata="stratum", clusters="psu", nest=True
    )


RAKE_MARGINS = ("sex", "age", "region")


def weight(name: str) -> WeightingResult:
    """Our equivalent of each R case."""
    if name == "rake":
        return um.rake(taylor_design(), margins(*RAKE_MARGINS), tol=TOL)
    if name == "calibrate_linear":
        return um.calibrate(taylor_design(), margins("sex", "age", "x"), method="linear", tol=TOL)
    if name == "calibrate_raking_bounded":
        return um.calibrate(
            taylor_design(), margins(*RAKE_MARGINS), method="raking", bounds=(0.5, 2.0), tol=TOL
        )
    if name == "calibrate_logit":
        return um.calibrate(
            taylor_design(), margins(*RAKE_MARGINS), method="logit", bounds=(0.4, 2.5), tol=TOL
        )
    if name == "poststratify":
        return um.poststratify(taylor_design(), margins("region_sex"))
    if name == "rake_jk1":
        # R: JK1 needs an unstratified design: the 30 PSUs with unique ids
        design = um.SurveyDesign(sample(), weights="w", clusters="psu_id").replicate("jk1")
        return um.rake(design, margins(*RAKE_MARGINS), tol=TOL)
    if name == "rake_jkn":
        return um.rake(taylor_design().replicate("jkn"), margins(*RAKE_MARGINS), tol=TOL)
    raise AssertionError(name)


@cache
def _weighted(name: str) -> WeightingResult:
    # WeightingResult and SurveyDesign are immutable: safe to share between tests
    return weight(name)


# ---------------------------------------------------------------------------
# Estimates in the reference layout
# ---------------------------------------------------------------------------
def ours(design: um.SurveyDesign, statistic: str) -> pd.DataFrame:
    if statistic == "mean":
        return design.mean("y").to_frame()
    if statistic == "total":
        return design.total("y").to_frame()
    if statistic == "proportion":
        return design.proportion("cat").to_frame().rename(columns={"cat": "category"})
    if statistic == "mean_by_region":
        return design.mean("y", by="region").to_frame()
    raise AssertionError(statistic)


def compare_results(
    design: um.SurveyDesign, results: dict[str, Any], statistic: str, label: str, rtol_se: float
) -> None:
    expected = pd.DataFrame(results[statistic])
    got = ours(design, statistic)
    assert len(got) == len(expected), f"{label}: {len(got)} rows, R has {len(expected)}"
    for key in ("category", "region"):
        if key in expected:
            assert got[key].astype(str).tolist() == expected[key].tolist(), f"{label}: {key}"
    np.testing.assert_allclose(
        got["estimate"].to_numpy(dtype=np.float64),
        expected["estimate"].to_numpy(dtype=np.float64),
        rtol=RTOL_ESTIMATE, atol=0.0, err_msg=f"{label}: estimate",
    )
    np.testing.assert_allclose(
        got["se"].to_numpy(dtype=np.float64),
        expected["se"].to_numpy(dtype=np.float64),
        rtol=rtol_se, atol=0.0, err_msg=f"{label}: se",
    )


# ---------------------------------------------------------------------------
# The reference file itself
# ---------------------------------------------------------------------------
def test_reference_file_records_versions() -> None:
    ref = reference()
    assert ref["survey_version"] == "4.1.1"
    assert ref["r_version"].startswith("R version")
    assert set(ref["cases"]) == set(TAYLOR_CASES + REPLICATE_CASES + ["rake_bootstrap"])


def test_reference_margins_agree() -> None:
    """The margins are sums of one population table, so their totals agree."""
    ref = reference()
    population = _read_csv(ref["population_file"])
    total = float(population["count"].sum())
    assert total == ref["population_total"]
    for name in ("sex", "age", "region", "region_sex"):
        assert margin_series(name).sum() == total, name


def test_r_bounds_bind() -> None:
    """The bounded raking case is not the unbounded one in disguise."""
    c = case("calibrate_raking_bounded")
    assert c["n_at_bounds"] > 0
    low, high = c["unbounded_g_range"]
    assert low < 0.5 or high > 2.0


# ---------------------------------------------------------------------------
# Taylor cases: weights, convergence, estimates and SEs
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("name", TAYLOR_CASES + REPLICATE_CASES)
def test_weights_match_r(name: str) -> None:
    result = _weighted(name)
    np.testing.assert_allclose(
        result.design.weights, np.asarray(case(name)["weights"]), rtol=RTOL_WEIGHTS, atol=0.0,
        err_msg=f"{name}: weights",
    )


@pytest.mark.parametrize("name", TAYLOR_CASES + REPLICATE_CASES)
def test_report_says_converged(name: str) -> None:
    report = _weighted(name).report
    assert report.converged, name
    assert report.max_rel_error <= TOL, name
    fit = report.margin_fit
    assert np.abs(fit["rel_error_after"].to_numpy(dtype=np.float64)).max() <= TOL


@pytest.mark.parametrize("name", TAYLOR_CASES + REPLICATE_CASES)
def test_degrees_of_freedom(name: str) -> None:
    assert _weighted(name).design.degf == case(name)["degf"]


@pytest.mark.parametrize("statistic", STATISTICS)
@pytest.mark.parametrize("name", TAYLOR_CASES + REPLICATE_CASES)
def test_estimates_match_r(name: str, statistic: str) -> None:
    compare_results(
        _weighted(name).design, case(name)["results"], statistic, f"{name} {statistic}", RTOL_SE
    )


def test_bounded_raking_g_weights_within_bounds() -> None:
    """g = w / w0 stays in [0.5, 2] and sits on the bound for R's units."""
    w0 = taylor_design().weights
    g = _weighted("calibrate_raking_bounded").design.weights / w0
    assert g.min() >= 0.5 * (1 - 1e-12) and g.max() <= 2.0 * (1 + 1e-12)
    at_bounds = np.isclose(g, 0.5, rtol=1e-10, atol=0.0) | np.isclose(g, 2.0, rtol=1e-10, atol=0.0)
    assert int(at_bounds.sum()) == case("calibrate_raking_bounded")["n_at_bounds"]


def test_linear_calibration_meets_the_auxiliary_total() -> None:
    design = _weighted("calibrate_linear").design
    x_total = float(reference()["margins"]["x"]["total"])
    np.testing.assert_allclose(design.total("x").estimate.iloc[0], x_total, rtol=1e-12)


# ---------------------------------------------------------------------------
# Replicate designs raked with the same margins (R: rake() on svyrep.design)
# ---------------------------------------------------------------------------
def _psu_codes(df: pd.DataFrame) -> np.ndarray:
    return pd.factorize(df["psu_id"])[0]


def _cell_g(c: dict[str, Any], df: pd.DataFrame) -> np.ndarray:
    """R's g-factor per (row, replicate): raked / base analysis weight of the row's cell."""
    cells = pd.DataFrame(c["cells"])
    key = pd.MultiIndex.from_frame(cells[["sex", "age", "region"]])
    rows = pd.MultiIndex.from_frame(df[["sex", "age", "region"]])
    position = key.get_indexer(rows)
    assert (position >= 0).all()
    g = np.array([[np.nan if v is None else v for v in row] for row in c["cell_g"]])
    return g[position]


@pytest.mark.parametrize("name", REPLICATE_CASES)
def test_replicate_factors_are_rs(name: str) -> None:
    """Before raking, our replicates equal R's: the raked ones can be compared."""
    c = case(name)
    df = sample()
    base = _weighted(name).design  # raking keeps the design's rows and PSUs
    assert base.replicates is not None
    spec = c["python"]["design"]
    unraked = um.SurveyDesign(df, **spec).replicate(c["python"]["replicate"])
    factors = np.asarray(c["psu_factors"])
    codes = _psu_codes(df)
    assert np.asarray(c["psu"]).tolist() == pd.unique(df["psu_id"]).tolist()
    expected = df["w"].to_numpy()[:, None] * factors[codes]
    np.testing.assert_allclose(unraked.replicate_weights, expected, rtol=1e-15, atol=0.0)
    assert base.replicates.scale == pytest.approx(c["scale"], rel=1e-15)
    np.testing.assert_allclose(base.replicates.rscales, c["rscales"], rtol=1e-15)
    assert base.replicates.mse == c["mse"]


@pytest.mark.parametrize("name", REPLICATE_CASES)
def test_raked_replicate_weights_match_r(name: str) -> None:
    c = case(name)
    df = sample()
    unraked = um.SurveyDesign(df, **c["python"]["design"]).replicate(c["python"]["replicate"])
    base = np.asarray(unraked.replicate_weights)
    raked = np.asarray(_weighted(name).design.replicate_weights)
    g = _cell_g(c, df)
    positive = base > 0
    assert np.isfinite(g[positive]).all()
    np.testing.assert_array_equal(raked[~positive], 0.0)
    np.testing.assert_allclose(
        raked[positive], base[positive] * g[positive], rtol=RTOL_WEIGHTS, atol=0.0,
        err_msg=f"{name}: raked replicate weights",
    )


# ---------------------------------------------------------------------------
# Bootstrap: R's random replicates are imported, never regenerated (DESIGN.md)
# ---------------------------------------------------------------------------
def _bootstrap_frame() -> tuple[pd.DataFrame, list[str]]:
    c = case("rake_bootstrap")
    raked = _read_csv(c["raked_weights_file"])
    df = sample()
    assert raked["id"].tolist() == df["id"].tolist()
    columns = [k for k in raked.columns if k.startswith("rep")]
    assert len(columns) == c["n_replicates"]
    df["w_raked"] = raked["w"].to_numpy()
    for k in columns:
        df[k] = raked[k].to_numpy()
    return df, columns


def imported_bootstrap() -> um.SurveyDesign:
    c = case("rake_bootstrap")
    df, columns = _bootstrap_frame()
    return um.SurveyDesign.from_replicate_weights(
        df, weights="w_raked", replicate_weights=columns, scale=c["scale"],
        rscales=c["rscales"], mse=c["mse"],
    )


def raked_bootstrap() -> WeightingResult:
    """R's bootstrap replicates before raking (its PSU factors), raked by us."""
    c = case("rake_bootstrap")
    df = sample()
    factors = np.asarray(c["psu_factors"])
    assert np.asarray(c["psu"]).tolist() == pd.unique(df["psu_id"]).tolist()
    base = df["w"].to_numpy()[:, None] * factors[_psu_codes(df)]
    columns = [f"boot{r + 1:02d}" for r in range(base.shape[1])]
    df = pd.concat([df, pd.DataFrame(base, columns=columns, index=df.index)], axis=1)
    design = um.SurveyDesign.from_replicate_weights(
        df, weights="w", replicate_weights=columns, scale=c["scale"], rscales=c["rscales"],
        mse=c["mse"],
    )
    return um.rake(design, margins(*RAKE_MARGINS), tol=TOL)


@pytest.mark.parametrize("results_key", ["results", "imported"])
@pytest.mark.parametrize("statistic", STATISTICS)
def test_imported_bootstrap_matches_r(statistic: str, results_key: str) -> None:
    """R's raked bootstrap weights, imported: R's SEs of the raked design."""
    c = case("rake_bootstrap")
    results = c["results"] if results_key == "results" else c["imported"]["results"]
    compare_results(
        imported_bootstrap(), results, statistic, f"bootstrap imported {statistic}",
        RTOL_SE_REPLICATE,
    )


def test_imported_bootstrap_degf() -> None:
    assert imported_bootstrap().degf == case("rake_bootstrap")["degf"]


def test_raking_r_bootstrap_replicates_matches_r() -> None:
    """Raking R's unraked bootstrap replicates ourselves gives R's raked replicates."""
    result = raked_bootstrap()
    df, columns = _bootstrap_frame()
    np.testing.assert_allclose(
        result.design.weights, df["w_raked"].to_numpy(), rtol=RTOL_WEIGHTS, atol=0.0
    )
    np.testing.assert_allclose(
        np.asarray(result.design.replicate_weights), df[columns].to_numpy(),
        rtol=RTOL_WEIGHTS, atol=0.0, err_msg="raked bootstrap replicate weights",
    )
    assert result.report.converged


@pytest.mark.parametrize("statistic", STATISTICS)
def test_raked_bootstrap_estimates_match_r(statistic: str) -> None:
    compare_results(
        raked_bootstrap().design, case("rake_bootstrap")["results"], statistic,
        f"bootstrap raked by us {statistic}", RTOL_SE,
    )
