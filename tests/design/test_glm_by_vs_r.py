"""``SurveyDesign.glm(..., by=)`` agrees with R ``svyby(formula, ~g, des, svyglm)``.

Expected values: ``tests/reference/design/analysis_glm_by.json``, written by
``analysis_glm_by.R`` (see the README there) on the data and designs of
``analysis.R``: the stratified clustered design with fpc (``taylor``) and its
JKn replicate version (``jkn``), by the 3-level ``r3`` (and the 5-level
``dom``, whose domains have different degrees of freedom). The covariance is
R's ``covmat = TRUE``, between domains too; R orders it domain fastest,
unmetneed domain by domain, so the tests reorder by name.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from unmetneed.design import GLMByResult
from unmetneed.errors import DesignError, MissingColumnError

from .test_analysis_vs_r import (
    DESIGNS,
    REFERENCE_DIR,
    RTOL_CI,
    RTOL_ESTIMATE,
    RTOL_P,
    RTOL_SE,
    _calibrated,
    _design,
    close,
)

REFERENCE = json.loads((REFERENCE_DIR / "analysis_glm_by.json").read_text(encoding="utf-8"))
CASES = {
    "gaussian": ("y ~ x + sex", "gaussian"),
    "binomial": ("bin ~ x + sex", "binomial"),
    "quasibinomial": ("bin ~ x + sex", "quasibinomial"),
    "gaussian_na": ("y_na ~ x_na + sex", "gaussian"),
    "gaussian_dom": ("y ~ x + sex", "gaussian"),
}
R_TERMS = {"(Intercept)": "Intercept", "sexMale": "sex[T.Male]"}


def _r_name(name: str) -> str:
    domain, term = name.split(":", 1)
    return f"{domain}:{R_TERMS.get(term, term)}"


def _fit(kind: str, case: str) -> GLMByResult:
    formula, family = CASES[case]
    return _design(kind).glm(formula, family=family, by=REFERENCE[kind][case]["by"])


@pytest.mark.parametrize("kind", DESIGNS)
@pytest.mark.parametrize("case", list(CASES))
def test_glm_by_equals_r(kind: str, case: str) -> None:
    expected = REFERENCE[kind][case]
    by = expected["by"]
    fits = _fit(kind, case)
    frame = fits.to_frame()
    names = [f"{d}:{t}" for d, t in zip(frame[by], frame["term"], strict=True)]
    r_names = [_r_name(n) for n in expected["names"]]
    assert sorted(names) == sorted(r_names)
    position = [r_names.index(n) for n in names]
    close(frame["estimate"], np.asarray(expected["estimate"])[position], RTOL_ESTIMATE)
    r_se = np.ravel(np.asarray(expected["se"], dtype=np.float64))  # one list per term, domain fastest
    close(frame["se"], r_se[position], RTOL_SE)
    vcov = fits.vcov().to_numpy()
    if expected["vcov"] is not None:
        full = np.asarray(expected["vcov"])[np.ix_(position, position)]
        close(vcov, full, RTOL_SE, atol=1e-15 * np.abs(full).max())
        # the domains share PSUs: their covariances are not zero
        between = frame[by].to_numpy()[:, None] != frame[by].to_numpy()[None, :]
        assert np.abs(full[between]).max() > 1e-3 * np.abs(full).max()
    else:
        # R's Taylor covmat = TRUE stops with missing values, and vcov() of its plain
        # svyby keeps the diagonal only ("Only diagonal elements of vcov() available")
        assert expected["covmat_error"]
        diagonal = np.diag(np.asarray(expected["vcov_block_diagonal"]))[position]
        close(np.diag(vcov), diagonal, RTOL_SE)
    # each domain's t tests, intervals and residual df: R's svyglm on design[domain, ]
    for domain in expected["domains"]:
        rows = frame[frame[by] == domain["level"]]
        assert rows["term"].tolist() == [R_TERMS.get(t, t) for t in domain["terms"]]
        close(rows["estimate"], domain["estimate"], RTOL_ESTIMATE)
        close(rows["se"], domain["se"], RTOL_SE)
        close(rows["statistic"], domain["statistic"], RTOL_SE)
        close(rows["p_value"], domain["p_value"], RTOL_P)
        close(rows["ci_lower"], domain["ci_lower"], RTOL_CI)
        close(rows["ci_upper"], domain["ci_upper"], RTOL_CI)
        assert (rows["df"] == domain["df_resid"]).all()
        assert fits.df_resid[domain["level"]] == domain["df_resid"]


def test_domains_have_their_own_degrees_of_freedom() -> None:
    """The 5-level case is the one that tells domain df from the design's."""
    df = [d["df_resid"] for d in REFERENCE["taylor"]["gaussian_dom"]["domains"]]
    assert len(set(df)) > 1


@pytest.mark.parametrize(
    "design",
    [
        pytest.param(lambda: _design("taylor"), id="taylor"),
        pytest.param(lambda: _design("jkn"), id="jkn"),
        pytest.param(lambda: _calibrated("poststratified"), id="poststratified"),
        pytest.param(lambda: _design("taylor").subset("sex == 'Male'"), id="taylor-subset"),
        pytest.param(lambda: _design("jkn").subset("sex == 'Male'"), id="jkn-subset"),
    ],
)
@pytest.mark.parametrize("family", ["gaussian", "quasibinomial"])
def test_each_domain_is_the_subset_fit(design, family: str) -> None:
    """Domain k of ``by`` is ``subset(domain k).glm()``: coefficients, vcov block, df."""
    des = design()
    formula = "y ~ x" if family == "gaussian" else "bin ~ x"
    fits = des.glm(formula, family=family, by="r3")
    p = 2
    vcov = fits.vcov().to_numpy()
    for k, level in enumerate(fits.df_resid.index):
        alone = des.subset(des.data["r3"] == level).glm(formula, family=family)
        one = fits[level]
        close(one.params, alone.params, 1e-12)
        close(vcov[k * p : (k + 1) * p, k * p : (k + 1) * p], alone.vcov().to_numpy(), 1e-10)
        assert one.df_resid == alone.df_resid
        assert one.n == alone.n


def test_result_protocol() -> None:
    fits = _fit("taylor", "gaussian")
    frame = fits.to_frame(level=0.9)
    assert list(frame.columns) == [
        "r3", "term", "estimate", "se", "statistic", "p_value", "ci_lower", "ci_upper", "df",
    ]  # fmt: skip
    assert frame.attrs["level"] == 0.9 and frame.attrs["by"] == ["r3"]
    assert fits.params.index.names == ["r3", "term"]
    assert fits.vcov().index.equals(fits.params.index)
    text = fits.summary()
    assert "by r3" in text and "sex[T.Male]" in text and repr(fits).startswith("<GLMByResult>")
    assert "<table" in fits._repr_html_() and "by r3" in fits._repr_html_()
    new = pd.DataFrame({"x": [2.0], "sex": pd.Categorical(["Male"], categories=["Female", "Male"])})
    assert fits["r2"].predict(new)["estimate"].notna().all()
    with pytest.raises(KeyError, match="no domain 'r9'"):
        fits["r9"]


def test_two_by_columns() -> None:
    fits = _design("taylor").glm("y ~ x", by=["sex", "r3"])
    frame = fits.to_frame()
    assert list(frame.columns[:3]) == ["sex", "r3", "term"]
    assert len(frame) == 2 * 3 * 2
    alone = _design("taylor").subset("sex == 'Male' and r3 == 'r2'").glm("y ~ x")
    close(fits[("Male", "r2")].params, alone.params, 1e-12)


# -- bad input -------------------------------------------------------------------
def test_by_column_missing() -> None:
    with pytest.raises(MissingColumnError, match="r4"):
        _design("taylor").glm("y ~ x", by="r4")


@pytest.mark.parametrize("kind", DESIGNS)
def test_rank_deficient_domain_is_named(kind: str) -> None:
    with pytest.raises(DesignError, match=r"rank deficient.*domain sex='Female'"):
        _design(kind).glm("y ~ x + sex", by="sex")


def test_domain_without_complete_rows_is_named() -> None:
    design = _design("taylor")
    design = design.assign(y_gap=design.data["y"].where(design.data["r3"] != "r2"))
    with pytest.raises(DesignError, match=r"no complete rows.*domain r3='r2'"):
        design.glm("y_gap ~ x", by="r3")


def test_glm_to_frame_checks_its_level() -> None:
    """A bad level in to_frame() is an error, as in the by-domain result (not NaN intervals)."""
    import unmetneed as um
    from unmetneed.errors import DesignError

    design = um.datasets.load_example_design()
    fit = design.glm("need ~ age_band")
    with pytest.raises(DesignError, match="level"):
        fit.to_frame(level=1.5)
