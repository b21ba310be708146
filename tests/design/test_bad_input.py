"""Every bad input to SurveyDesign and its estimators gets a clear, named error."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import unmetneed as um
from unmetneed.errors import (
    DesignError,
    LonelyPSUWarning,
    MissingColumnError,
    OptionError,
    UnmetneedError,
)


@pytest.fixture
def df() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "y": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
            "w": [1.0, 2.0, 1.0, 2.0, 1.0, 2.0],
            "h": ["a", "a", "a", "b", "b", "b"],
            "psu": [1, 1, 2, 3, 4, 4],
            "dom": ["x", "y", "x", "y", "x", "y"],
            "text": list("abcdef"),
        }
    )


def test_errors_are_value_errors_and_missing_columns_key_errors() -> None:
    assert issubclass(DesignError, ValueError)
    assert issubclass(MissingColumnError, KeyError)
    assert issubclass(MissingColumnError, UnmetneedError)


@pytest.mark.parametrize("role", ["weights", "strata", "clusters", "fpc"])
def test_missing_design_column_is_named(df: pd.DataFrame, role: str) -> None:
    kwargs = {"weights": "w", role: "nope"}
    with pytest.raises(MissingColumnError, match="'nope'"):
        um.SurveyDesign(df, **kwargs)


def test_missing_column_suggests_close_names(df: pd.DataFrame) -> None:
    with pytest.raises(KeyError, match="did you mean 'w'"):
        um.SurveyDesign(df, weights="ww")


def test_nan_weights(df: pd.DataFrame) -> None:
    df.loc[2, "w"] = np.nan
    with pytest.raises(DesignError, match=r"weights column 'w' has missing values in 1 row\(s\) \(index 2\)"):
        um.SurveyDesign(df, weights="w")


def test_negative_weights(df: pd.DataFrame) -> None:
    df.loc[[1, 4], "w"] = -1.0
    with pytest.raises(DesignError, match=r"negative values in 2 row\(s\) \(index 1, 4\)"):
        um.SurveyDesign(df, weights="w")


def test_all_zero_weights(df: pd.DataFrame) -> None:
    df["w"] = 0.0
    with pytest.raises(DesignError, match="zero in every row"):
        um.SurveyDesign(df, weights="w")


def test_infinite_weights(df: pd.DataFrame) -> None:
    df.loc[0, "w"] = np.inf
    with pytest.raises(DesignError, match="infinite"):
        um.SurveyDesign(df, weights="w")


def test_text_weights(df: pd.DataFrame) -> None:
    with pytest.raises(DesignError, match="'text' is not numeric"):
        um.SurveyDesign(df, weights="text")


def test_nan_strata(df: pd.DataFrame) -> None:
    df.loc[3, "h"] = None
    with pytest.raises(DesignError, match="strata column 'h' has missing values in 1 row"):
        um.SurveyDesign(df, weights="w", strata="h")


def test_nan_clusters(df: pd.DataFrame) -> None:
    df["psu"] = df["psu"].astype(float)
    df.loc[5, "psu"] = np.nan
    with pytest.raises(DesignError, match="clusters column 'psu' has missing values"):
        um.SurveyDesign(df, weights="w", strata="h", clusters="psu")


def test_cluster_in_two_strata_without_nest(df: pd.DataFrame) -> None:
    df["psu"] = [1, 1, 2, 1, 2, 2]
    with pytest.raises(DesignError, match="cluster 1 of 'psu' appears in more than one stratum.*nest=True"):
        um.SurveyDesign(df, weights="w", strata="h", clusters="psu")
    design = um.SurveyDesign(df, weights="w", strata="h", clusters="psu", nest=True)
    assert design.n_psus == 4


def test_fpc_smaller_than_sample(df: pd.DataFrame) -> None:
    df["N"] = 2.0  # three units sampled per stratum
    with pytest.raises(DesignError, match="gives 2 population PSUs in stratum 'a'.*fewer than the 3 sampled"):
        um.SurveyDesign(df, weights="w", strata="h", fpc="N")


def test_fpc_varies_within_stratum(df: pd.DataFrame) -> None:
    df["N"] = [10.0, 10.0, 11.0, 20.0, 20.0, 20.0]
    with pytest.raises(DesignError, match="varies within stratum 'a'"):
        um.SurveyDesign(df, weights="w", strata="h", fpc="N")


def test_fpc_mixes_fractions_and_counts(df: pd.DataFrame) -> None:
    df["N"] = [0.5, 0.5, 0.5, 20.0, 20.0, 20.0]
    with pytest.raises(DesignError, match="mixes sampling fractions"):
        um.SurveyDesign(df, weights="w", strata="h", fpc="N")


def test_fpc_missing_value(df: pd.DataFrame) -> None:
    df["N"] = [10.0, np.nan, 10.0, 20.0, 20.0, 20.0]
    with pytest.raises(DesignError, match="fpc column 'N' has missing or non-positive values"):
        um.SurveyDesign(df, weights="w", strata="h", fpc="N")


def test_lonely_psu_fail_names_stratum(df: pd.DataFrame) -> None:
    df["psu"] = [1, 1, 1, 3, 4, 4]
    with pytest.raises(DesignError, match="stratum 'a' of 'h' has only one PSU"):
        um.SurveyDesign(df, weights="w", strata="h", clusters="psu")


def test_lonely_psu_policy_warns(df: pd.DataFrame) -> None:
    df["psu"] = [1, 1, 1, 3, 4, 4]
    with pytest.warns(LonelyPSUWarning, match="stratum 'a' has only one PSU; handled by lonely_psu='adjust'"):
        um.SurveyDesign(df, weights="w", strata="h", clusters="psu", lonely_psu="adjust")


def test_unknown_lonely_policy(df: pd.DataFrame) -> None:
    with pytest.raises(OptionError, match="lonely_psu='skip' is not a valid choice; use one of 'fail'"):
        um.SurveyDesign(df, weights="w", lonely_psu="skip")


def test_not_a_dataframe() -> None:
    with pytest.raises(DesignError, match="must be a pandas DataFrame"):
        um.SurveyDesign({"w": [1.0]}, weights="w")


def test_empty_dataframe() -> None:
    with pytest.raises(DesignError, match="no rows"):
        um.SurveyDesign(pd.DataFrame({"w": []}), weights="w")


def test_unknown_by_column(df: pd.DataFrame) -> None:
    design = um.SurveyDesign(df, weights="w")
    with pytest.raises(MissingColumnError, match="by column 'area'"):
        design.mean("y", by="area")


def test_unknown_variable(df: pd.DataFrame) -> None:
    design = um.SurveyDesign(df, weights="w")
    with pytest.raises(KeyError, match="variable column 'z'"):
        design.total("z")


def test_non_numeric_variable_for_mean_and_total(df: pd.DataFrame) -> None:
    design = um.SurveyDesign(df, weights="w")
    for estimator in (design.mean, design.total):
        with pytest.raises(DesignError, match="'dom' is not numeric.*proportion"):
            estimator("dom")


def test_categorical_variable_for_mean(df: pd.DataFrame) -> None:
    df["dom"] = df["dom"].astype("category")
    design = um.SurveyDesign(df, weights="w")
    with pytest.raises(DesignError, match="'dom' is not numeric"):
        design.mean("dom")


def test_nan_in_variable_is_not_dropped(df: pd.DataFrame) -> None:
    df.loc[1, "y"] = np.nan
    design = um.SurveyDesign(df, weights="w")
    with pytest.raises(DesignError, match="variable column 'y' has missing values in 1 row"):
        design.mean("y")


def test_nan_in_by_is_not_dropped(df: pd.DataFrame) -> None:
    df.loc[0, "dom"] = None
    design = um.SurveyDesign(df, weights="w")
    with pytest.raises(DesignError, match="by column 'dom' has missing values"):
        design.mean("y", by="dom")


def test_bad_level(df: pd.DataFrame) -> None:
    design = um.SurveyDesign(df, weights="w")
    with pytest.raises(DesignError, match="level=95 must be a number strictly between 0 and 1"):
        design.mean("y", level=95)


def test_bad_replicate_method(df: pd.DataFrame) -> None:
    design = um.SurveyDesign(df, weights="w")
    with pytest.raises(OptionError, match="method='jackknife' is not a valid choice"):
        design.replicate("jackknife")


def test_options_are_keyword_only(df: pd.DataFrame) -> None:
    design = um.SurveyDesign(df, weights="w")
    with pytest.raises(TypeError):
        design.mean("y", "dom")  # type: ignore[misc]
    with pytest.raises(TypeError):
        um.SurveyDesign(df, "w")  # type: ignore[misc]


def test_design_is_immutable(df: pd.DataFrame) -> None:
    design = um.SurveyDesign(df, weights="w")
    with pytest.raises(AttributeError, match="immutable"):
        design.lonely_psu = "adjust"  # type: ignore[misc]
    with pytest.raises(ValueError):
        design.weights[0] = 5.0
    df.loc[0, "w"] = 100.0  # changing the caller's frame leaves the design alone
    assert design.weights[0] == 1.0


def test_replicate_weights_rscales_length(df: pd.DataFrame) -> None:
    df["r1"] = df["w"]
    with pytest.raises(DesignError, match="rscales has 2 values but there are 1 replicate columns"):
        um.SurveyDesign.from_replicate_weights(
            df, weights="w", replicate_weights=["r1"], scale=1.0, rscales=[1.0, 1.0]
        )
