"""Misuse of the analysis functions gets a clear error from unmetneed.errors naming the culprit."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import unmetneed as um
from unmetneed.errors import DesignError, MissingColumnError, OptionError


@pytest.fixture
def design() -> um.SurveyDesign:
    rng = np.random.default_rng(7)
    n = 60
    df = pd.DataFrame(
        {
            "y": rng.normal(10, 2, n),
            "b": rng.integers(0, 2, n).astype(float),
            "w": rng.uniform(1, 3, n),
            "h": np.repeat(["s1", "s2"], n // 2),
            "psu": np.tile(np.repeat([1, 2, 3], 10), 2),
            "text": rng.choice(["p", "q"], n),
            "r": pd.Categorical(rng.choice(["r1", "r2"], n), categories=["r1", "r2", "r3"]),
            "c": rng.choice(["c1", "c2", "c3"], n),
        }
    )
    return um.SurveyDesign(df, weights="w", strata="h", clusters="psu", nest=True)


@pytest.mark.parametrize(
    "call",
    [
        lambda d: d.mean(["y", "text"]),
        lambda d: d.total("text"),
        lambda d: d.var("text"),
        lambda d: d.quantile("text", q=0.5),
    ],
)
def test_non_numeric_variable_is_named(design: um.SurveyDesign, call) -> None:
    with pytest.raises(DesignError, match=r"'text' is not numeric"):
        call(design)


@pytest.mark.parametrize("q", [1.5, -0.1, [0.5, 2.0]])
def test_q_outside_unit_interval(design: um.SurveyDesign, q) -> None:
    with pytest.raises(DesignError, match=r"outside \[0, 1\]"):
        design.quantile("y", q=q)


def test_unknown_rule_lists_the_choices(design: um.SurveyDesign) -> None:
    with pytest.raises(OptionError, match=r"rule='hf10' is not a valid choice; use one of 'math'"):
        design.quantile("y", rule="hf10")


def test_interval_of_the_other_design_kind(design: um.SurveyDesign) -> None:
    with pytest.raises(DesignError, match=r"interval='quantile' is not available on a Taylor"):
        design.quantile("y", interval="quantile")
    with pytest.raises(DesignError, match=r"interval='score' is not available on a replicate"):
        design.replicate("jkn").quantile("y", interval="score")


def test_unknown_family(design: um.SurveyDesign) -> None:
    with pytest.raises(OptionError, match=r"family='gamma' is not a valid choice"):
        design.glm("y ~ b", family="gamma")


def test_formula_naming_a_missing_column(design: um.SurveyDesign) -> None:
    with pytest.raises(MissingColumnError, match=r"names 'yy'.*did you mean 'y'"):
        design.glm("yy ~ b")


def test_binomial_response_out_of_range(design: um.SurveyDesign) -> None:
    with pytest.raises(DesignError, match=r"between 0 and 1"):
        design.glm("y ~ b", family="binomial")


def test_table_with_an_empty_row(design: um.SurveyDesign) -> None:
    with pytest.raises(DesignError, match=r"'r' has categories with no respondents: 'r3'"):
        design.chisq("r", "c")
    zero = design.data.assign(w=np.where(design.data["c"] == "c3", 0.0, design.data["w"]))
    weighted = um.SurveyDesign(zero, weights="w", strata="h", clusters="psu", nest=True)
    with pytest.raises(DesignError, match=r"empty column: 'c' = 'c3'"):
        weighted.chisq("text", "c")


def test_unknown_statistic_and_interval_method(design: um.SurveyDesign) -> None:
    with pytest.raises(OptionError, match=r"statistic='G' is not a valid choice"):
        design.chisq("text", "c", statistic="G")
    with pytest.raises(OptionError, match=r"ci='wilson' is not a valid choice"):
        design.proportion("b", ci="wilson")


def test_likelihood_interval_on_replicate_design(design: um.SurveyDesign) -> None:
    with pytest.raises(DesignError, match=r"ci='likelihood' is not available on replicate"):
        design.replicate("jkn").proportion("b", ci="likelihood")


def test_contrast_naming_a_missing_row(design: um.SurveyDesign) -> None:
    est = design.mean("y", by="c")
    with pytest.raises(DesignError, match=r"names row 'c9'"):
        est.contrast({"x": {"c9": 1}})
    with pytest.raises(DesignError, match=r"one value per estimate \(3\)"):
        est.contrast([1, -1])


def test_subset_misuse(design: um.SurveyDesign) -> None:
    with pytest.raises(DesignError, match=r"one value per row"):
        design.subset(np.ones(3, dtype=bool))
    with pytest.raises(DesignError, match=r"selects no row"):
        design.subset("y > 1e9")
    with pytest.raises(DesignError, match=r"could not be evaluated"):
        design.subset("nope >")


def test_assign_cannot_replace_design_columns(design: um.SurveyDesign) -> None:
    with pytest.raises(DesignError, match=r"cannot replace the design column\(s\) \['w'\]"):
        design.assign(w=1.0)


def test_missing_values_need_na_rm(design: um.SurveyDesign) -> None:
    d = design.assign(y=design.data["y"].where(design.data["y"] > 9))
    for call in (lambda: d.mean("y"), lambda: d.quantile("y"), lambda: d.var("y")):
        with pytest.raises(DesignError, match=r"'y' has missing values .*na_rm=True"):
            call()


def test_intervals_stored_at_one_level(design: um.SurveyDesign) -> None:
    est = design.quantile("y", q=0.5)
    with pytest.raises(DesignError, match=r"call the estimator again with level=0.9"):
        est.to_frame(level=0.9)
