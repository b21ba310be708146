"""Bad input to the weighting verbs raises, naming what is wrong and the fix.

DESIGN.md, "Bad input": every public function raises a ``ValueError``
subclass from :mod:`unmetneed.errors` whose message names the column,
category or value at fault and what would fix it; nothing is dropped or
imputed silently.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd
import pytest

import unmetneed as um
from unmetneed.errors import (
    CalibrationError,
    ConvergenceWarning,
    DesignError,
    MarginsError,
    MissingColumnError,
    OptionError,
    UnmetneedError,
)

SEX = ("Female", "Male")
AGE = ("16-34", "35-64", "65+")


def sample_frame() -> pd.DataFrame:
    """60 rows, every sex x age cell present; a fresh frame on every call."""
    rng = np.random.default_rng(20240615)
    n = 60
    sex = np.array([SEX[i % 2] for i in range(n)])
    age = np.array([AGE[(i // 2) % 3] for i in range(n)])
    return pd.DataFrame(
        {
            "sex": sex,
            "age": age,
            "y": np.round(rng.normal(50.0, 10.0, n), 3),
            "x": np.round(rng.uniform(1.0, 2.0, n), 3),
            "w": np.round(rng.uniform(10.0, 30.0, n), 3),
            "responded": np.arange(n) % 3 != 0,
        }
    )


def design(df: pd.DataFrame | None = None) -> um.SurveyDesign:
    return um.SurveyDesign(sample_frame() if df is None else df, weights="w")


def sex_margin(female: float = 600.0, male: float = 400.0) -> pd.Series:
    return pd.Series({"Female": female, "Male": male})


def age_margin(*totals: float, labels: tuple[str, ...] = AGE) -> pd.Series:
    values = totals or (300.0, 400.0, 300.0)
    return pd.Series(dict(zip(labels, values, strict=True)))


def two_margins(**age: Any) -> um.Margins:
    return um.Margins({"sex": sex_margin(), "age": age_margin(**age)})


def _max_rel_error(result: um.weighting.WeightingResult) -> float:
    return float(np.abs(result.report.margin_fit["rel_error_after"]).max())


# ---------------------------------------------------------------------------
# Margins whose totals disagree
# ---------------------------------------------------------------------------
def test_disagreeing_totals_name_both_margins_and_totals() -> None:
    margins = um.Margins({"sex": sex_margin(), "age": age_margin(300.0, 400.0, 301.0)})
    with pytest.raises(MarginsError) as info:
        um.rake(design(), margins)
    message = str(info.value)
    assert "'sex'" in message and "'age'" in message
    assert "1,000" in message and "1,001" in message
    assert "reconcile='scale'" in message


def test_disagreeing_totals_raise_in_calibrate_too() -> None:
    margins = um.Margins({"sex": sex_margin(), "age": age_margin(300.0, 400.0, 301.0)})
    with pytest.raises(MarginsError, match="'age'"):
        um.calibrate(design(), margins)


def test_reconcile_scale_fixes_disagreeing_totals_and_reports_it() -> None:
    margins = um.Margins({"sex": sex_margin(), "age": age_margin(300.0, 400.0, 301.0)})
    result = um.rake(design(), margins, reconcile="scale")
    assert result.report.converged
    np.testing.assert_allclose(result.design.weights.sum(), 1000.0, rtol=1e-10)
    assert any("'age'" in a and "scaled" in a for a in result.report.adjustments)
    # the age margin is met at its scaled totals: 301 of 1001 in "65+"
    fit = result.report.margin_fit.set_index(["margin", "category"])
    np.testing.assert_allclose(fit.loc[("age", "65+"), "target"], 301.0 * 1000.0 / 1001.0)
    assert _max_rel_error(result) <= 1e-10


def test_reconcile_rejects_unknown_choice() -> None:
    with pytest.raises(OptionError, match="'scale'"):
        um.rake(design(), two_margins(), reconcile="rescale")  # type: ignore[arg-type]


def test_totals_equal_within_the_documented_tolerance_are_accepted() -> None:
    """Census tables differing by rounding (5e-7 relative < 1e-6) are not an error.

    DESIGN.md: only totals differing by *more than* 1e-6 relative raise. Totals
    closer than that pass the check, so raking must then succeed.
    """
    margins = um.Margins({"sex": sex_margin(), "age": age_margin(300.0, 400.0, 300.0005)})
    result = um.rake(design(), margins)
    assert result.report.converged
    assert _max_rel_error(result) <= 1e-6


# ---------------------------------------------------------------------------
# Categories with no respondents, respondents with no category
# ---------------------------------------------------------------------------
AGE_WITH_EMPTY = ("16-34", "35-64", "65+", "85+")


def margins_with_empty_category() -> um.Margins:
    return um.Margins(
        {"sex": sex_margin(),
         "age": age_margin(300.0, 400.0, 250.0, 50.0, labels=AGE_WITH_EMPTY)}
    )


def test_margin_category_without_respondents_is_named_with_its_population() -> None:
    with pytest.raises(MarginsError) as info:
        um.rake(design(), margins_with_empty_category())
    message = str(info.value)
    assert "'age'" in message and "'85+'" in message
    assert "population 50" in message
    assert "collapse=" in message and "allow_empty=True" in message


def test_allow_empty_leaves_the_category_out_and_says_so() -> None:
    result = um.rake(design(), margins_with_empty_category(), allow_empty=True, reconcile="scale")
    assert result.report.converged
    assert any("'85+'" in a for a in result.report.adjustments)
    assert "85+" not in set(result.report.margin_fit["category"])


def test_allow_empty_with_one_margin() -> None:
    margins = um.Margins({"age": age_margin(300.0, 400.0, 250.0, 50.0, labels=AGE_WITH_EMPTY)})
    result = um.rake(design(), margins, allow_empty=True)
    np.testing.assert_allclose(result.design.weights.sum(), 950.0, rtol=1e-12)


@pytest.mark.parametrize(
    "collapse", [{"age": {"85+": "65+"}}, {"85+": "65+"}], ids=["per-variable", "flat"]
)
def test_collapse_merges_the_empty_category(collapse: dict[str, Any]) -> None:
    result = um.rake(design(), margins_with_empty_category(), collapse=collapse)
    assert result.report.converged
    assert any("merged" in a for a in result.report.adjustments)
    fit = result.report.margin_fit.set_index(["margin", "category"])
    np.testing.assert_allclose(fit.loc[("age", "65+"), "target"], 300.0)
    np.testing.assert_allclose(fit.loc[("age", "65+"), "after"], 300.0, rtol=1e-10)


def test_collapse_of_an_unknown_category_is_refused() -> None:
    with pytest.raises(MarginsError, match="'90\\+'"):
        um.rake(design(), margins_with_empty_category(), collapse={"90+": "65+"})


def test_respondent_category_missing_from_margin_is_named_with_respondents() -> None:
    df = sample_frame()
    n_old = int((df["age"] == "65+").sum())
    margins = um.Margins(
        {"sex": sex_margin(), "age": age_margin(500.0, 500.0, labels=("16-34", "35-64"))}
    )
    with pytest.raises(MarginsError) as info:
        um.rake(design(df), margins)
    message = str(info.value)
    assert "'age'" in message and "'65+'" in message
    assert f"{n_old} respondents" in message
    assert "collapse=" in message


def test_respondents_in_a_zero_population_category_are_refused() -> None:
    margins = um.Margins({"sex": sex_margin(1000.0, 0.0)})
    with pytest.raises(MarginsError, match="'Male'"):
        um.rake(design(), margins)


def test_missing_margin_column_is_a_key_error() -> None:
    margins = um.Margins({"gender": sex_margin()})
    with pytest.raises(MissingColumnError, match="'gender'") as info:
        um.rake(design(), margins)
    assert isinstance(info.value, KeyError)


# ---------------------------------------------------------------------------
# Invalid totals in Margins
# ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "pattern"),
    [
        (sex_margin(np.nan, 400.0), "missing or non-numeric totals for 'Female'"),
        (sex_margin(600.0, -1.0), "negative totals for 'Male'"),
        (sex_margin(np.inf, 400.0), "infinite"),
        (pd.Series({"Female": 600.0, "Male": "many"}), "non-numeric totals for 'Male'"),
    ],
    ids=["nan", "negative", "infinite", "text"],
)
def test_invalid_category_totals(value: pd.Series, pattern: str) -> None:
    with pytest.raises(MarginsError, match=re.escape(pattern)) as info:
        um.Margins({"sex": value})
    assert "'sex'" in str(info.value)


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_invalid_numeric_total(value: float) -> None:
    with pytest.raises(MarginsError, match="'x'"):
        um.Margins({"x": value})


def test_repeated_category_in_a_margin() -> None:
    value = pd.Series([600.0, 400.0], index=["Female", "Female"])
    with pytest.raises(MarginsError, match="'Female'"):
        um.Margins({"sex": value})


def test_empty_margins() -> None:
    with pytest.raises(MarginsError):
        um.Margins({})


# ---------------------------------------------------------------------------
# Method / margin combinations
# ---------------------------------------------------------------------------
def test_numeric_total_in_rake_points_to_linear_calibration() -> None:
    margins = um.Margins({"sex": sex_margin(), "x": 1500.0})
    with pytest.raises(MarginsError, match=re.escape("calibrate(method='linear')")) as info:
        um.rake(design(), margins)
    assert "'x'" in str(info.value)
    # ... and linear calibration takes it
    result = um.calibrate(design(), margins, method="linear")
    np.testing.assert_allclose(result.design.weights @ sample_frame()["x"], 1500.0, rtol=1e-10)


def test_poststratify_with_two_margins() -> None:
    with pytest.raises(MarginsError, match="exactly one") as info:
        um.poststratify(design(), two_margins())
    assert "'sex'" in str(info.value) and "'age'" in str(info.value)


def test_poststratify_with_a_numeric_total() -> None:
    with pytest.raises(MarginsError, match="exactly one"):
        um.poststratify(design(), um.Margins({"sex": sex_margin(), "x": 1500.0}))


def test_poststratify_accepts_a_cross() -> None:
    df = sample_frame()
    index = pd.MultiIndex.from_product([SEX, AGE], names=["sex", "age"])
    margins = um.Margins({("sex", "age"): pd.Series(100.0, index=index)})
    result = um.poststratify(design(df), margins)
    np.testing.assert_allclose(result.design.weights.sum(), 600.0, rtol=1e-12)


def test_logit_without_bounds() -> None:
    with pytest.raises(CalibrationError, match="bounds"):
        um.calibrate(design(), two_margins(), method="logit")


@pytest.mark.parametrize("method", ["linear", "raking", "logit"])
@pytest.mark.parametrize("bounds", [(1.2, 3.0), (0.2, 0.9), (1.0, 2.0), (2.0, 0.5)])
def test_bounds_must_bracket_one(method: str, bounds: tuple[float, float]) -> None:
    with pytest.raises(CalibrationError, match=re.escape("lower < 1 < upper")):
        um.calibrate(design(), two_margins(), method=method, bounds=bounds)


def test_logit_bounds_must_be_finite() -> None:
    with pytest.raises(CalibrationError, match="finite"):
        um.calibrate(design(), two_margins(), method="logit", bounds=(0.5, np.inf))


def test_bounds_must_be_a_pair() -> None:
    with pytest.raises(CalibrationError, match="pair"):
        um.calibrate(design(), two_margins(), method="raking", bounds=0.5)  # type: ignore[arg-type]


def test_unknown_method_lists_the_choices() -> None:
    with pytest.raises(OptionError, match="'linear', 'raking', 'logit'"):
        um.calibrate(design(), two_margins(), method="ipf")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("tol", "max_iter"), [(0.0, 10), (-1e-3, 10), (1.5, 10), (1e-10, 0), (1e-10, 2.5)]
)
def test_invalid_tol_or_max_iter(tol: float, max_iter: Any) -> None:
    with pytest.raises(DesignError):
        um.rake(design(), two_margins(), tol=tol, max_iter=max_iter)


# ---------------------------------------------------------------------------
# Non-convergence
# ---------------------------------------------------------------------------
def test_rake_nonconvergence_raises_naming_the_margin() -> None:
    with pytest.raises(CalibrationError, match=r"did not converge in 2 iterations") as info:
        um.rake(design(), two_margins(), tol=1e-14, max_iter=2)
    assert re.search(r"margin '(sex|age)'", str(info.value))
    assert "on_nonconvergence='warn'" in str(info.value)


def test_rake_nonconvergence_warns_when_asked() -> None:
    with pytest.warns(ConvergenceWarning, match=r"margin '(sex|age)'"):
        result = um.rake(design(), two_margins(), tol=1e-14, max_iter=2, on_nonconvergence="warn")
    assert result.report.converged is False
    assert result.report.max_rel_error > 1e-14
    assert result.report.iterations == 2


def test_calibration_without_a_solution_in_the_bounds_raises() -> None:
    """g-weights within 1% of 1 cannot move the totals by 20%."""
    margins = um.Margins({"sex": sex_margin(), "age": age_margin(200.0, 600.0, 200.0)})
    with pytest.raises(CalibrationError, match=r"did not converge.*margin '(sex|age)'"):
        um.calibrate(design(), margins, method="raking", bounds=(0.99, 1.01), max_iter=50)


def test_calibration_nonconvergence_warns_when_asked() -> None:
    margins = um.Margins({"sex": sex_margin(), "age": age_margin(200.0, 600.0, 200.0)})
    with pytest.warns(ConvergenceWarning):
        result = um.calibrate(
            design(), margins, method="raking", bounds=(0.99, 1.01), max_iter=50,
            on_nonconvergence="warn",
        )
    assert result.report.converged is False


def test_on_nonconvergence_rejects_unknown_choice() -> None:
    with pytest.raises(OptionError, match="'raise', 'warn'"):
        um.rake(design(), two_margins(), on_nonconvergence="ignore")  # type: ignore[arg-type]


# ---------------------------------------------------------------------------
# trim
# ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "bounds",
    [{"upper": 5.0}, {"lower": 100.0}, {"lower": 12.0, "upper": 13.0}],
    ids=["upper-below-mean", "lower-above-mean", "band-excludes-mean"],
)
def test_trim_infeasible_bounds(bounds: dict[str, float]) -> None:
    """60 weights of mean ~20 cannot all lie in the bounds and keep their total."""
    with pytest.raises(CalibrationError, match="infeasible"):
        um.trim(design(), **bounds)


def test_trim_feasible_bounds_hold() -> None:
    d = design()
    result = um.trim(d, upper=25.0)
    w = result.design.weights
    assert w.max() <= 25.0 * (1 + 1e-12)
    np.testing.assert_allclose(w.sum(), d.weights.sum(), rtol=1e-12)


def test_trim_needs_a_bound() -> None:
    with pytest.raises(DesignError, match="lower=, upper="):
        um.trim(design())


def test_trim_lower_above_upper() -> None:
    with pytest.raises(DesignError, match="below"):
        um.trim(design(), lower=30.0, upper=20.0)


# ---------------------------------------------------------------------------
# adjust_nonresponse
# ---------------------------------------------------------------------------
def test_nonresponse_class_without_respondents_is_named() -> None:
    df = sample_frame()
    df.loc[df["age"] == "65+", "responded"] = False
    with pytest.raises(DesignError, match="'65\\+'") as info:
        um.adjust_nonresponse(design(df), respondent="responded", classes="age")
    assert "merge" in str(info.value)


def test_nonresponse_flag_must_be_binary() -> None:
    df = sample_frame().assign(responded=np.arange(60) % 3)
    with pytest.raises(DesignError, match="'responded'"):
        um.adjust_nonresponse(design(df), respondent="responded", classes="age")


def test_nonresponse_missing_class_column() -> None:
    with pytest.raises(KeyError, match="'region'"):
        um.adjust_nonresponse(design(), respondent="responded", classes="region")


# ---------------------------------------------------------------------------
# No **kwargs: a misspelt option is refused (R's calibrate would ignore it)
# ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("function", "kwargs"),
    [
        (um.rake, {"tolerance": 1e-8}),
        (um.rake, {"maxit": 50}),
        (um.calibrate, {"bound": (0.5, 2.0)}),
        (um.calibrate, {"calfun": "raking"}),
        (um.calibrate, {"epsilon": 1e-8}),
        (um.poststratify, {"partial": True}),
        (um.poststratify, {"tol": 1e-8}),
    ],
    ids=["rake-tolerance", "rake-maxit", "calibrate-bound", "calibrate-calfun",
         "calibrate-epsilon", "poststratify-partial", "poststratify-tol"],
)
def test_misspelt_option_is_a_type_error(function: Any, kwargs: dict[str, Any]) -> None:
    margins = um.Margins({"sex": sex_margin()})
    with pytest.raises(TypeError, match=next(iter(kwargs))):
        function(design(), margins, **kwargs)


def test_misspelt_trim_option_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="lowr"):
        um.trim(design(), upper=25.0, lowr=1.0)  # type: ignore[call-arg]


def test_misspelt_nonresponse_option_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="class_"):
        um.adjust_nonresponse(design(), respondent="responded", class_="age")  # type: ignore[call-arg]


def test_options_are_keyword_only() -> None:
    with pytest.raises(TypeError):
        um.rake(design(), um.Margins({"sex": sex_margin()}), 1e-8)  # type: ignore[misc]


# ---------------------------------------------------------------------------
# Every error is a ValueError from unmetneed.errors
# ---------------------------------------------------------------------------
def test_errors_descend_from_unmetneed_error_and_value_error() -> None:
    for error in (MarginsError, CalibrationError, DesignError):
        assert issubclass(error, UnmetneedError) and issubclass(error, ValueError)


def test_poststratify_empty_cell_needs_allow_empty() -> None:
    """R: postStratify stops ("use partial=TRUE"); ours names the category."""
    margin = age_margin(300.0, 400.0, 250.0, 50.0, labels=AGE_WITH_EMPTY)
    with pytest.raises(MarginsError, match="'85\\+'"):
        um.poststratify(design(), um.Margins({"age": margin}))
    result = um.poststratify(design(), um.Margins({"age": margin}), allow_empty=True)
    np.testing.assert_allclose(result.design.weights.sum(), 950.0, rtol=1e-12)
