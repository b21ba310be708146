"""Binomial GLMM fits agree with ``lme4::glmer`` (Laplace, ``nAGQ = 1``).

Expected values are read from ``tests/reference/mrp/glmm.json``, written by
``tests/reference/mrp/glmm.R`` (see the README there for versions and what
each field means). Nothing here computes an expected value: every number
compared against comes from R.

Cases: ``rows`` (4,000 respondents, 0/1 response, three crossed random
intercepts, ethnic groups of 5 to 2,140 rows), ``cells`` (the same data
aggregated to successes out of ``n`` trials) and ``singular`` (an ethnic-group
SD whose estimate is on the boundary, 0).
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
from unmetneed.errors import UnmetneedWarning

REFERENCE_DIR = Path(__file__).resolve().parents[1] / "reference" / "mrp"
REFERENCE = json.loads((REFERENCE_DIR / "glmm.json").read_text(encoding="utf-8"))
CASES: dict[str, dict[str, Any]] = REFERENCE["cases"]

# DESIGN.md, "Agreement with R".
RTOL_FIXED = 1e-3  # fixed effects, their SEs, random-effect SDs (relative)
ATOL_MODE = 1e-3  # conditional modes (absolute); also used for their conditional SDs
ATOL_LOGLIK = 1e-3  # log-likelihood (absolute)
# Predicted probabilities combine fixed effects (1e-3 relative) and modes
# (1e-3 absolute): a 1e-3 change of the linear predictor moves p by < 2.5e-4.
ATOL_PROBABILITY = 1e-3
# An SD that glmer puts exactly on the boundary (0): ours must be "near 0".
ATOL_ZERO_SD = 1e-3
# The cells case holds the same likelihood as the rows case, so the two fits
# must agree far more closely than with R (only optimiser paths differ).
RTOL_SAME_DATA = 1e-6
ATOL_SAME_DATA = 1e-6

FACTORS = ["area", "age_band", "ethnic_group"]
TERMS = ["Intercept", "sex[T.Male]", "deprivation"]


@cache
def _read_csv(relative: str) -> pd.DataFrame:
    return pd.read_csv(REFERENCE_DIR / relative)


def load_data(relative: str) -> pd.DataFrame:
    """A fresh copy of an input CSV (the cache is never handed out)."""
    return _read_csv(relative).copy()


def make_model(case_name: str) -> um.MultilevelModel:
    case = CASES[case_name]
    py = case["python"]
    kwargs = {} if py["trials"] is None else {"trials": py["trials"]}
    return um.MultilevelModel(py["formula"], data=load_data(case["data"]), **kwargs)


@cache
def fitted(case_name: str) -> Any:
    """Fit each case once per session; tests only read the fit.

    The singular case must warn; the others must not (warnings are errors).
    """
    model = make_model(case_name)
    if CASES[case_name]["singular"]:
        with pytest.warns(UnmetneedWarning):
            return model.fit()
    return model.fit()


CASE_NAMES = list(CASES)
CASE_FACTOR = [pytest.param(c, g, id=f"{c}-{g}") for c in CASE_NAMES for g in FACTORS]


def reference_fixed(case_name: str) -> pd.DataFrame:
    return pd.DataFrame(CASES[case_name]["fixed_effects"]).set_index("term")


# ---------------------------------------------------------------------------
# Fixed effects
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("case_name", CASE_NAMES)
def test_fixed_effect_terms(case_name: str) -> None:
    fit = fitted(case_name)
    assert list(fit.fixed_effects.index) == TERMS
    assert list(reference_fixed(case_name).index) == TERMS
    assert {"estimate", "se"} <= set(fit.fixed_effects.columns)


@pytest.mark.parametrize("case_name", CASE_NAMES)
def test_fixed_effects(case_name: str) -> None:
    ours = fitted(case_name).fixed_effects.loc[TERMS, "estimate"].to_numpy()
    ref = reference_fixed(case_name).loc[TERMS, "estimate"].to_numpy()
    np.testing.assert_allclose(ours, ref, rtol=RTOL_FIXED, err_msg=f"{case_name}: fixef")


@pytest.mark.parametrize("case_name", CASE_NAMES)
def test_fixed_effect_se_conditional(case_name: str) -> None:
    """``se_conditional`` is lme4's ``vcov(fit, use.hessian = FALSE)`` (from RX)."""
    ours = fitted(case_name).fixed_effects.loc[TERMS, "se_conditional"].to_numpy()
    ref = reference_fixed(case_name)
    np.testing.assert_allclose(
        ours,
        ref.loc[TERMS, "se_rx"].to_numpy(),
        rtol=RTOL_FIXED,
        err_msg=(
            f"{case_name}: se_conditional vs vcov(fit, use.hessian = FALSE); "
            f"lme4's default vcov gives {ref.loc[TERMS, 'se'].tolist()}"
        ),
    )


@pytest.mark.parametrize("case_name", CASE_NAMES)
def test_fixed_effect_se_hessian(case_name: str) -> None:
    """``se``: lme4's default ``vcov(fit)``, from the Hessian of the Laplace
    deviance in (theta, beta), as glmer gives it with PIRLS converged
    (``tolPwrss = 1e-13``, the JSON's ``tight`` fit).

    At lme4's default ``tolPwrss = 1e-7`` its deviance function is computed from
    a PIRLS stopped early, and the finite-difference Hessian inherits the error:
    the default fit's ``se`` is up to 0.4% from the converged one (the JSON's
    ``stability.se_rel``), more than the tolerance. Everything else in the
    default and tight fits agrees to ~1e-4 or better.
    """
    fit = fitted(case_name)
    ours = fit.fixed_effects.loc[TERMS, "se"].to_numpy()
    tight = pd.DataFrame(CASES[case_name]["tight"]["fixed_effects"]).set_index("term")
    default = reference_fixed(case_name)
    np.testing.assert_allclose(
        ours,
        tight.loc[TERMS, "se"].to_numpy(),
        rtol=RTOL_FIXED,
        err_msg=(
            f"{case_name}: se vs sqrt(diag(vcov(fit))) with tolPwrss = 1e-13; "
            f"at the default tolPwrss glmer gives {default.loc[TERMS, 'se'].tolist()}"
        ),
    )


# ---------------------------------------------------------------------------
# Variance components and conditional modes
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("case_name", CASE_NAMES)
def test_variance_components(case_name: str) -> None:
    ours = fitted(case_name).variance_components
    ref = pd.Series(CASES[case_name]["variance_components"])
    assert sorted(ours.index) == sorted(FACTORS)
    ours = ours.loc[FACTORS].to_numpy(dtype=float)
    ref = ref.loc[FACTORS].to_numpy(dtype=float)
    positive = ref > 0
    np.testing.assert_allclose(
        ours[positive], ref[positive], rtol=RTOL_FIXED, err_msg=f"{case_name}: SDs"
    )
    # glmer's boundary estimate is exactly 0: ours must be near it
    np.testing.assert_allclose(
        ours[~positive], 0.0, atol=ATOL_ZERO_SD, err_msg=f"{case_name}: SD at the boundary"
    )


@pytest.mark.parametrize(("case_name", "factor"), CASE_FACTOR)
def test_conditional_modes(case_name: str, factor: str) -> None:
    ours = fitted(case_name).random_effects[factor]
    ref = pd.DataFrame(CASES[case_name]["random_effects"][factor]).set_index("level")
    assert [str(v) for v in ours.index] == list(ref.index), f"{case_name}/{factor}: levels"
    np.testing.assert_allclose(
        ours["mode"].to_numpy(dtype=float),
        ref["mode"].to_numpy(),
        rtol=0,
        atol=ATOL_MODE,
        err_msg=f"{case_name}/{factor}: conditional modes",
    )


@pytest.mark.parametrize(("case_name", "factor"), CASE_FACTOR)
def test_conditional_sds(case_name: str, factor: str) -> None:
    """``sd``: sqrt of ``attr(ranef(fit, condVar = TRUE)[[factor]], "postVar")``."""
    ours = fitted(case_name).random_effects[factor]
    ref = pd.DataFrame(CASES[case_name]["random_effects"][factor]).set_index("level")
    np.testing.assert_allclose(
        ours["sd"].to_numpy(dtype=float),
        ref["sd"].to_numpy(),
        rtol=0,
        atol=ATOL_MODE,
        err_msg=f"{case_name}/{factor}: conditional SDs",
    )


# ---------------------------------------------------------------------------
# Log-likelihood, flags
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("case_name", CASE_NAMES)
def test_loglik(case_name: str) -> None:
    """``logLik(fit)``; for the cells case glmer includes sum(lchoose(n, successes))."""
    ours = fitted(case_name).loglik
    assert isinstance(ours, float)
    ref = CASES[case_name]["loglik"]
    assert abs(ours - ref) <= ATOL_LOGLIK, f"{case_name}: loglik {ours!r}, glmer {ref!r}"


@pytest.mark.parametrize("case_name", CASE_NAMES)
def test_flags(case_name: str) -> None:
    fit = fitted(case_name)
    case = CASES[case_name]
    assert isinstance(fit.converged, bool) and isinstance(fit.singular, bool)
    # glmer reports no convergence problem in any case (a boundary fit is converged)
    assert case["optimizer_converged"]
    assert fit.converged
    assert fit.singular is case["singular"]


def test_singular_fit_warns() -> None:
    """A boundary SD is flagged, named in a warning, and its modes are 0."""
    model = make_model("singular")
    with pytest.warns(UnmetneedWarning, match="ethnic_group") as record:
        fit = model.fit()
    assert all(issubclass(w.category, UnmetneedWarning) for w in record)
    assert fit.singular is True
    assert fit.variance_components["ethnic_group"] <= ATOL_ZERO_SD
    assert CASES["singular"]["variance_components"]["ethnic_group"] == 0
    np.testing.assert_allclose(
        fit.random_effects["ethnic_group"]["mode"].to_numpy(dtype=float), 0.0, atol=ATOL_MODE
    )


# ---------------------------------------------------------------------------
# Aggregated data (successes out of trials) = the row data
# ---------------------------------------------------------------------------
def test_cells_fit_equals_rows_fit() -> None:
    rows, cells = fitted("rows"), fitted("cells")
    pd.testing.assert_index_equal(cells.fixed_effects.index, rows.fixed_effects.index)
    np.testing.assert_allclose(
        cells.fixed_effects["estimate"].to_numpy(),
        rows.fixed_effects["estimate"].to_numpy(),
        rtol=RTOL_SAME_DATA,
        err_msg="fixed effects: cells vs rows",
    )
    np.testing.assert_allclose(
        cells.fixed_effects["se"].to_numpy(),
        rows.fixed_effects["se"].to_numpy(),
        rtol=RTOL_SAME_DATA,
        err_msg="SEs: cells vs rows",
    )
    np.testing.assert_allclose(
        cells.variance_components.loc[FACTORS].to_numpy(),
        rows.variance_components.loc[FACTORS].to_numpy(),
        rtol=RTOL_SAME_DATA,
        err_msg="SDs: cells vs rows",
    )
    for factor in FACTORS:
        np.testing.assert_allclose(
            cells.random_effects[factor]["mode"].to_numpy(),
            rows.random_effects[factor]["mode"].to_numpy(),
            atol=ATOL_SAME_DATA,
            err_msg=f"modes of {factor}: cells vs rows",
        )


def test_cells_loglik_adds_binomial_coefficients() -> None:
    """As glmer: the cells' loglik = the rows' + sum(lchoose(n, successes))."""
    lchoose = CASES["cells"]["log_binomial_coefficients"]
    difference = fitted("cells").loglik - fitted("rows").loglik
    assert abs(difference - lchoose) <= ATOL_SAME_DATA * abs(lchoose)
    # and R's own numbers say the same
    r_difference = CASES["cells"]["loglik"] - CASES["rows"]["loglik"]
    assert abs(r_difference - lchoose) <= ATOL_SAME_DATA * abs(lchoose)


# ---------------------------------------------------------------------------
# Prediction
# ---------------------------------------------------------------------------
def test_predict_matches_lme4_and_warns_on_unseen_area() -> None:
    spec = CASES["rows"]["predict"]
    newdata = load_data(spec["newdata"])
    unseen = spec["unseen"]["area"]
    assert set(unseen) <= set(newdata["area"])
    with pytest.warns(UnmetneedWarning, match="area"):
        probability = fitted("rows").predict(newdata)
    assert isinstance(probability, np.ndarray)
    assert probability.shape == (len(newdata),)
    np.testing.assert_allclose(
        probability, spec["probability"], rtol=0, atol=ATOL_PROBABILITY,
        err_msg="predict(fit, newdata, type = 'response', allow.new.levels = TRUE)",
    )


def test_predict_seen_levels_does_not_warn() -> None:
    spec = CASES["rows"]["predict"]
    newdata = load_data(spec["newdata"])
    seen = ~newdata["area"].isin(spec["unseen"]["area"]).to_numpy()
    probability = fitted("rows").predict(newdata[seen])  # a warning would be an error
    np.testing.assert_allclose(
        probability, np.asarray(spec["probability"])[seen], rtol=0, atol=ATOL_PROBABILITY
    )


def test_predict_unseen_level_gets_effect_zero() -> None:
    """The unseen area's row equals the prediction from the fixed part and the
    other factors' modes only (R's link values agree; here ours with ours)."""
    spec = CASES["rows"]["predict"]
    newdata = load_data(spec["newdata"])
    fit = fitted("rows")
    unseen_rows = newdata["area"].isin(spec["unseen"]["area"]).to_numpy()
    with pytest.warns(UnmetneedWarning):
        probability = fit.predict(newdata)
    link = np.log(probability / (1 - probability))
    beta = fit.fixed_effects.loc[TERMS, "estimate"].to_numpy()
    for i in np.flatnonzero(unseen_rows):
        row = newdata.iloc[i]
        expected = (
            beta[0]
            + beta[1] * (row["sex"] == "Male")
            + beta[2] * row["deprivation"]
            + fit.random_effects["age_band"]["mode"].loc[row["age_band"]]
            + fit.random_effects["ethnic_group"]["mode"].loc[row["ethnic_group"]]
        )
        assert link[i] == pytest.approx(expected, abs=1e-10)
