"""``var([...])`` (R ``svyvar(~a + b)``) and ``vcov()`` of quantiles agree with R.

Expected values: ``tests/reference/design/analysis_var_vcov.json``, written by
``analysis_var_vcov.R`` (R ``survey`` 4.1.1) from the data and designs of
``analysis.R``. The tests never need R.
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

REFERENCE_DIR = Path(__file__).resolve().parents[1] / "reference" / "design"
REFERENCE = json.loads((REFERENCE_DIR / "analysis_var_vcov.json").read_text(encoding="utf-8"))
QUANTILES = tuple(REFERENCE["quantiles"])

RTOL_ESTIMATE = 1e-10  # the tolerances (relative)
RTOL_SE = 1e-8
DESIGNS = ["taylor", "jkn"]
DOMAINS = ["D1", "D2", "D3", "D4", "D5"]


@cache
def _design(kind: str) -> um.SurveyDesign:
    df = pd.read_csv(REFERENCE_DIR / REFERENCE["data"])
    df["dom"] = pd.Categorical(df["dom"], categories=DOMAINS)
    taylor = um.SurveyDesign(
        df, weights="w", strata="stratum", clusters="psu", fpc="fpc_psu", nest=True
    )
    return taylor if kind == "taylor" else taylor.replicate("jkn")


def close(actual: Any, expected: Any, rtol: float, atol: float = 0.0) -> None:
    a = np.asarray(actual, dtype=np.float64)
    e = np.asarray([np.nan if v is None else v for v in np.ravel(expected)], dtype=np.float64)
    np.testing.assert_allclose(a.ravel(), e, rtol=rtol, atol=atol, equal_nan=True)


def ref(kind: str, key: str) -> Any:
    return REFERENCE[kind][key]


def test_reference_versions() -> None:
    assert REFERENCE["survey_version"] == "4.1.1"


# -- svyvar of several variables ------------------------------------------------------
@pytest.mark.parametrize("kind", DESIGNS)
@pytest.mark.parametrize(
    ("key", "variables", "na_rm"),
    [
        ("var_multi", ["y", "x"], False),
        ("var_multi3", ["y", "x", "count"], False),
        ("var_multi_na", ["y_na", "x_na"], True),
    ],
)
def test_var_matrix(kind: str, key: str, variables: list[str], na_rm: bool) -> None:
    expected = ref(kind, key)
    est = _design(kind).var(variables, na_rm=na_rm)
    p = len(variables)
    frame = est.to_frame()
    assert frame["variable"].tolist() == list(np.repeat(variables, p))
    assert frame["variable2"].tolist() == variables * p
    # R lists the symmetric matrix column by column, unmetneed row by row: the
    # same sequence of values.
    close(est.estimate, expected["estimate"], RTOL_ESTIMATE)
    close(est.se, expected["se"], RTOL_SE)
    if "vcov" in expected:
        close(est.vcov().to_numpy(), expected["vcov"], RTOL_SE)
    matrix = est.estimate.unstack().loc[variables, variables].to_numpy()
    np.testing.assert_array_equal(matrix, matrix.T)


@pytest.mark.parametrize("kind", DESIGNS)
def test_var_matrix_diagonal_is_single_variance(kind: str) -> None:
    design = _design(kind)
    both = design.var(["y", "x"]).to_frame()
    for name in ["y", "x"]:
        one = design.var(name).to_frame()
        row = both[(both["variable"] == name) & (both["variable2"] == name)]
        close(row["estimate"], one["estimate"], 1e-13)
        close(row["se"], one["se"], 1e-10)


@pytest.mark.parametrize("kind", DESIGNS)
def test_var_matrix_by_domain(kind: str) -> None:
    expected = ref(kind, "var_multi_by")
    est = _design(kind).var(["y", "x"], by="dom").to_frame()
    assert len(est) == len(DOMAINS) * 4
    # R: domain fastest, then entry (column by column); unmetneed: domain slowest.
    r_order = pd.concat(
        [
            est[(est["variable"] == a) & (est["variable2"] == b)]
            for b in ["y", "x"]
            for a in ["y", "x"]
        ]
    )
    assert r_order["dom"].astype(str).tolist() == DOMAINS * 4
    close(r_order["estimate"], expected["estimate"], RTOL_ESTIMATE)
    close(r_order["se"], expected["se"], RTOL_SE)


@pytest.mark.parametrize("kind", DESIGNS)
def test_var_matrix_vcov_diagonal_and_contrast(kind: str) -> None:
    est = _design(kind).var(["y", "x"], by="dom")
    v = est.vcov().to_numpy()
    close(np.sqrt(np.diag(v)), est.se, 1e-12)
    np.testing.assert_allclose(v, v.T, rtol=1e-12, atol=0)
    one = est.contrast(np.eye(len(est))[5])
    close(one.estimate, [est.estimate.iloc[5]], 1e-14)
    close(one.se, [est.se.iloc[5]], 1e-12)


# -- vcov() of quantiles --------------------------------------------------------------
def _off_diagonal(matrix: np.ndarray) -> np.ndarray:
    return matrix[~np.eye(matrix.shape[0], dtype=bool)]


@pytest.mark.parametrize("kind", DESIGNS)
def test_quantile_vcov(kind: str) -> None:
    expected = ref(kind, "quantile_vcov")
    est = _design(kind).quantile("y", q=QUANTILES)
    v = est.vcov()
    assert v.shape == (3, 3)
    assert list(v.index) == list(QUANTILES)
    close(v.to_numpy(), expected["vcov"], RTOL_SE)  # NA -> NaN off the diagonal
    assert np.isnan(_off_diagonal(v.to_numpy())).all()
    close(np.diag(v.to_numpy()), est.se.to_numpy() ** 2, 1e-15)


@pytest.mark.parametrize("kind", DESIGNS)
def test_quantile_vcov_two_variables_blocks(kind: str) -> None:
    expected = np.array(
        [[np.nan if x is None else x for x in row] for row in ref(kind, "quantile_vcov_two")["vcov"]]
    )
    design = _design(kind)
    for j, name in enumerate(["y", "x"]):
        block = expected[3 * j : 3 * j + 3, 3 * j : 3 * j + 3]
        close(design.quantile(name, q=QUANTILES).vcov().to_numpy(), block, RTOL_SE)


@pytest.mark.parametrize("kind", DESIGNS)
def test_quantile_vcov_by_domain(kind: str) -> None:
    expected = ref(kind, "quantile_vcov_by")
    matrix = np.asarray(expected["vcov"], dtype=np.float64)
    est = _design(kind).quantile("y", q=QUANTILES, by="dom")
    v = est.vcov()
    # R's names "D1:y.0.25" (quantile slowest); unmetneed rows (dom, quantile).
    labels = [(str(d), q) for d, q in v.index]
    position = {f"{d}:y.{q:g}": i for i, (d, q) in enumerate(labels)}
    order = [position[name] for name in expected["names"]]
    ours = v.to_numpy()[np.ix_(order, order)]
    close(np.diag(ours), np.diag(matrix), RTOL_SE)
    # R (vcov.svyby, "Only diagonal elements of vcov() available") puts 0 off
    # the diagonal; unmetneed documents NaN: the covariance is unknown.
    assert (_off_diagonal(matrix) == 0).all()
    assert np.isnan(_off_diagonal(ours)).all()


def test_var_matrix_bad_input() -> None:
    from unmetneed.errors import DesignError

    design = _design("taylor")
    with pytest.raises(DesignError, match="twice"):
        design.var(["y", "y"])
    with pytest.raises(DesignError, match="at least one"):
        design.var([])
    with pytest.raises(DesignError, match="'dom'.*not numeric"):
        design.var(["y", "dom"])
    with pytest.raises(DesignError, match="'y_na'.*na_rm=True"):
        design.var(["y", "y_na"])


def test_a_contrast_of_one_quantile_row_has_that_rows_se() -> None:
    """Covariances between quantiles are not estimated (NaN); a contrast that uses one row
    must not pick them up."""
    import unmetneed as um

    survey = um.datasets.load_example_survey()
    design = um.SurveyDesign(survey, weights="weight", strata="stratum", clusters="psu", nest=True)
    column = survey.select_dtypes("number").columns[0]
    q = design.quantile(column, q=(0.25, 0.5))
    picked = q.contrast(np.array([0.0, 1.0])).to_frame()
    assert picked["estimate"].iloc[0] == q.to_frame()["estimate"].iloc[1]
    assert picked["se"].iloc[0] == pytest.approx(q.to_frame()["se"].iloc[1], rel=1e-12)
