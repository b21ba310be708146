"""Replicate weights and replicate-variance estimates against R ``survey``.

Reference values: ``tests/reference/design/replicate.json``, written by
``tests/reference/design/replicate.R`` (R 4.2.2, survey 4.1.1) from the CSVs
in ``tests/reference/design/data/replicate_*.csv``. The tests never need R.

1. ``make_replicate_weights`` on integer codes built from the CSVs (strata
   sorted by label, PSUs by first appearance) reproduces R's replicate
   factors, scale, rscales and degf.
2. Estimates computed directly from those weights with
   ``replicate_variance`` reproduce R's estimates and SEs.
3. The public API (``SurveyDesign.replicate`` and
   ``SurveyDesign.from_replicate_weights``) reproduces them too.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import unmetneed as um
from unmetneed.design.replicate import (
    ReplicateWeights,
    _r_as_character,
    hadamard,
    make_replicate_weights,
    replicate_degf,
    replicate_variance,
)
from unmetneed.design.taylor import PSUStructure
from unmetneed.errors import (
    DesignError,
    LonelyPSUWarning,
    OptionError,
    UnmetneedWarning,
)

REFERENCE = Path(__file__).resolve().parents[1] / "reference" / "design"
REFERENCE_JSON = REFERENCE / "replicate.json"

#: Tolerances of DESIGN.md ("Agreement with R").
WEIGHT_RTOL = 1e-12
ESTIMATE_RTOL = 1e-10
SE_RTOL = 1e-8


def _reference() -> dict[str, Any]:
    """A fresh copy of the stored R output (no shared mutable state)."""
    return json.loads(REFERENCE_JSON.read_text())


def _case(name: str) -> dict[str, Any]:
    return next(c for c in _reference()["cases"] if c["name"] == name)


def _design_spec(name: str) -> dict[str, Any]:
    return _reference()["designs"][name]


CASE_NAMES = [c["name"] for c in _reference()["cases"]]
GENERATED = [c["name"] for c in _reference()["cases"] if c["method"] != "bootstrap"]
#: Cases where a domain has no rows in some replicate: R's svyby drops that
#: replicate for that domain only, with a warning, for these statistics.
NAN_REPLICATES = {"jk1_sparse_domain": {"mean_by_domain", "ratio_by_domain"}}


def _read(spec: dict[str, Any]) -> pd.DataFrame:
    return pd.read_csv(REFERENCE / "data" / spec["file"])


def _codes(spec: dict[str, Any]) -> dict[str, Any]:
    """Integer codes as SurveyDesign holds them, built independently here."""
    df = _read(spec)
    n = len(df)
    if spec["strata"]:
        labels = sorted(df[spec["strata"]].unique())
        strata = np.searchsorted(np.array(labels), df[spec["strata"]].to_numpy())
    else:
        labels = None
        strata = np.zeros(n, dtype=np.int64)
    n_strata = int(strata.max()) + 1
    cluster = pd.factorize(df[spec["clusters"]])[0]
    key = strata * (int(cluster.max()) + 1) + cluster if spec["nest"] else cluster
    psu = pd.factorize(key)[0].astype(np.int64)
    psu_stratum = np.empty(int(psu.max()) + 1, dtype=np.int64)
    psu_stratum[psu] = strata
    popsize = np.full(n_strata, np.inf)
    if spec["fpc"]:
        popsize[strata] = df[spec["fpc"]].to_numpy(dtype=float)
    return {
        "df": df,
        "weights": df[spec["weights"]].to_numpy(dtype=float),
        "strata": strata.astype(np.int64),
        "psu": psu,
        "psu_stratum": psu_stratum,
        "n_psu": np.bincount(psu_stratum, minlength=n_strata),
        "popsize": popsize,
        "labels": labels,
    }


def _make(case: dict[str, Any], **overrides: Any) -> tuple[ReplicateWeights, dict[str, Any]]:
    c = _codes(_design_spec(case["design"]))
    options: dict[str, Any] = {
        "method": case["method"],
        "rho": case["rho"],
        "mse": case["mse"],
        "lonely_psu": case["lonely_psu"],
        "stratum_labels": c["labels"],
    }
    options.update(overrides)
    rw = _call(c, **options)
    return rw, c


def _assert_close(ours: Any, r: Any, rtol: float, what: str) -> None:
    """Relative error; an R value of exactly 0 (an SE of a one-cluster domain)
    is compared relative to the largest R value of the vector."""
    ours = np.atleast_1d(np.asarray(ours, dtype=float))
    r = np.atleast_1d(np.asarray(r, dtype=float))
    assert ours.shape == r.shape, f"{what}: shape {ours.shape} vs R {r.shape}"
    size = np.where(r != 0, np.abs(r), max(float(np.abs(r).max(initial=0.0)), 1.0))
    rel = np.max(np.abs(ours - r) / size) if r.size else 0.0
    assert rel <= rtol, f"{what}: ours {ours.tolist()} vs R {r.tolist()} (max rel err {rel:.3g})"


# ----------------------------------------------------------------------------
# 1. replicate weights, scale, rscales, degf
# ----------------------------------------------------------------------------
@pytest.mark.parametrize("name", GENERATED)
def test_replicate_weights_equal_r(name: str) -> None:
    case = _case(name)
    rw, c = _make(case)
    r_factors = np.array(case["factors"], dtype=float)
    assert rw.weights.shape == r_factors.shape
    assert rw.factors is not None
    np.testing.assert_array_equal(rw.factors[c["psu"]], r_factors)
    expected = np.array(case["pweights"])[:, None] * r_factors
    np.testing.assert_allclose(rw.weights, expected, rtol=WEIGHT_RTOL, atol=0)
    _assert_close(rw.scale, case["scale"], WEIGHT_RTOL, "scale")
    _assert_close(rw.rscales, case["rscales"], WEIGHT_RTOL, "rscales")
    assert rw.mse is case["mse"]
    assert rw.method == case["method"]
    assert rw.rho == (0.0 if case["method"] == "brr" else case["rho"])
    assert rw.degf == case["degf"]
    assert replicate_degf(rw.weights) == case["degf"]


def test_brr_orders_numeric_strata_as_text_like_r() -> None:
    """R's brrweights sorts as.character(stratum): 1, 10, 11, 12, 2, ..."""
    case = _case("brr")
    r_factors = np.array(case["factors"], dtype=float)
    rw, c = _make(case, stratum_labels=None)  # numeric code order instead
    assert not np.array_equal(rw.factors[c["psu"]], r_factors)
    # same replicates up to which Hadamard row each stratum takes
    rw_text, _ = _make(case)
    np.testing.assert_array_equal(rw_text.factors[c["psu"]], r_factors)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1, "1"),
        (1.0, "1"),
        (100000.0, "1e+05"),
        (100000, "100000"),
        (123456.0, "123456"),
        (0.1, "0.1"),
        (1e-5, "1e-05"),
        (0.0001, "1e-04"),
        (0.001, "0.001"),
        (-2.5, "-2.5"),
        (1 / 3, "0.333333333333333"),
        (1200000.0, "1200000"),
        (True, "TRUE"),
        ("S1", "S1"),
    ],
)
def test_r_as_character(value: object, text: str) -> None:
    # values checked against R 4.2.2's as.character()
    assert _r_as_character(value) == text


def test_hadamard_equals_r() -> None:
    ref = _reference()["hadamard"]
    for n, order, checksum in zip(ref["n"], ref["order"], ref["checksum"]):
        h = hadamard(n).astype(np.int64)  # exact checksum in integers
        assert h.shape == (order, order), f"n={n}"
        i, j = np.indices(h.shape) + 1
        assert int((h * ((31 * i + 17 * j) % 1009)).sum()) == checksum, f"n={n}"
        pm = 2.0 * h - 1.0  # float: BLAS; entries are small integers, so exact
        np.testing.assert_array_equal(pm.T @ pm, order * np.eye(order))
    np.testing.assert_array_equal(hadamard(12), np.array(ref["h12"]))


# ----------------------------------------------------------------------------
# 2. estimates from the replicate weights and replicate_variance
# ----------------------------------------------------------------------------
def _ratio_reps(num: np.ndarray, den: np.ndarray, w: np.ndarray, wr: np.ndarray) -> tuple:
    with np.errstate(invalid="ignore"):  # 0/0: a domain empty in a replicate
        full = (num.T @ w) / (den.T @ w)
        reps = (num.T @ wr) / (den.T @ wr)
    return full, reps


@pytest.mark.parametrize("name", CASE_NAMES)
def test_replicate_variance_equals_r(name: str) -> None:
    case = _case(name)
    c = _codes(_design_spec(case["design"]))
    df = c["df"]
    w = np.asarray(case["pweights"], dtype=float)
    wr = w[:, None] * np.asarray(case["factors"], dtype=float)
    scale, rscales, mse = case["scale"], np.asarray(case["rscales"]), case["mse"]
    if case["method"] != "bootstrap":
        rw, _ = _make(case)
        wr = np.asarray(rw.weights)
        scale, rscales = rw.scale, rw.rscales
    y = df["y"].to_numpy(dtype=float)[:, None]
    x = df["x"].to_numpy(dtype=float)[:, None]
    one = np.ones_like(y)
    dom_levels = sorted(df["domain"].unique())
    dom = (df["domain"].to_numpy()[:, None] == np.array(dom_levels)[None, :]).astype(float)
    cats = sorted(df["factor4"].unique())
    ind = (df["factor4"].to_numpy()[:, None] == np.array(cats)[None, :]).astype(float)

    def check(full: np.ndarray, reps: np.ndarray, key: str) -> None:
        # domains: each estimate drops only its own NaN replicates (svyby)
        by_estimate = key.endswith("_by_domain")
        if key in NAN_REPLICATES.get(name, set()):
            with pytest.warns(UnmetneedWarning, match="NaN"):
                var = replicate_variance(
                    full, reps, scale, rscales, mse, by_estimate=by_estimate
                )
        else:
            var = replicate_variance(full, reps, scale, rscales, mse, by_estimate=by_estimate)
        _assert_close(full, case[key]["estimate"], ESTIMATE_RTOL, f"{name} {key} estimate")
        _assert_close(np.sqrt(var), case[key]["se"], SE_RTOL, f"{name} {key} se")

    check(*_ratio_reps(y, one, w, wr), "mean")
    check((y.T @ w), (y.T @ wr), "total")
    check(*_ratio_reps(y, x, w, wr), "ratio")
    assert case["mean_by_domain"]["domain"] == dom_levels
    check(*_ratio_reps(y * dom, dom, w, wr), "mean_by_domain")
    check(((y * dom).T @ w), ((y * dom).T @ wr), "total_by_domain")
    check(*_ratio_reps(y * dom, x * dom, w, wr), "ratio_by_domain")
    assert case["proportion_factor4"]["category"] == cats
    check(*_ratio_reps(ind, np.ones_like(ind), w, wr), "proportion_factor4")
    check(ind.T @ w, ind.T @ wr, "total_factor4")


def test_replicate_variance_formula() -> None:
    reps = np.array([[1.0, 2.0, 3.0, 10.0], [0.0, 1.0, 0.0, 1.0]])
    rscales = np.array([0.5, 0.5, 2.0, 0.0])  # rscale 0: out of the centre
    full = np.array([2.5, 0.4])
    centre = reps[:, :3].mean(axis=1)
    expected = 0.3 * ((reps - centre[:, None]) ** 2 @ rscales)
    np.testing.assert_allclose(replicate_variance(full, reps, 0.3, rscales, False), expected)
    expected_mse = 0.3 * ((reps - full[:, None]) ** 2 @ rscales)
    np.testing.assert_allclose(replicate_variance(full, reps, 0.3, rscales, True), expected_mse)
    cov = replicate_variance(full, reps, 0.3, rscales, False, covariance=True)
    np.testing.assert_allclose(np.diag(cov), expected)
    assert cov.shape == (2, 2)


def test_replicate_variance_drops_nan_replicates_with_warning() -> None:
    reps = np.array([[1.0, 2.0, np.nan, 3.0]])
    with pytest.warns(UnmetneedWarning, match="1 replicates gave NaN"):
        v = replicate_variance(np.array([2.0]), reps, 1.0, np.ones(4), False)
    np.testing.assert_allclose(v, [2.0])
    with pytest.raises(DesignError, match="every replicate gave NaN"):
        replicate_variance(np.array([2.0]), np.full((1, 3), np.nan), 1.0, np.ones(3), False)


def test_replicate_variance_by_estimate_drops_nan_per_estimate() -> None:
    """As svyby: a domain empty in a replicate loses that replicate, others keep it."""
    reps = np.array([[1.0, 2.0, np.nan, 3.0], [1.0, 2.0, 5.0, 4.0]])
    full = np.array([2.0, 3.0])
    with pytest.warns(UnmetneedWarning, match="1 replicate estimates were NaN"):
        v = replicate_variance(full, reps, 0.5, np.ones(4), False, by_estimate=True)
    expected_second = replicate_variance(full[1:], reps[1:], 0.5, np.ones(4), False)
    np.testing.assert_allclose(v, [0.5 * 2.0, expected_second[0]])
    with pytest.warns(UnmetneedWarning):
        v_mse = replicate_variance(full, reps, 0.5, np.ones(4), True, by_estimate=True)
    np.testing.assert_allclose(v_mse[0], 0.5 * (1.0 + 0.0 + 1.0))
    # without NaN it is the ordinary formula
    clean = np.nan_to_num(reps, nan=4.0)
    np.testing.assert_allclose(
        replicate_variance(full, clean, 0.5, np.ones(4), False, by_estimate=True),
        replicate_variance(full, clean, 0.5, np.ones(4), False),
    )


# ----------------------------------------------------------------------------
# 3. the public API
# ----------------------------------------------------------------------------
def _public_design(case: dict[str, Any]) -> um.SurveyDesign:
    spec = _design_spec(case["design"])
    df = _read(spec)
    kwargs = {
        "weights": spec["weights"],
        "strata": spec["strata"],
        "clusters": spec["clusters"],
        "fpc": spec["fpc"],
        "nest": spec["nest"],
        "lonely_psu": case["lonely_psu"],
    }
    if case["lonely_psu"] != "fail":
        with pytest.warns(LonelyPSUWarning):
            return um.SurveyDesign(df, **kwargs)
    return um.SurveyDesign(df, **kwargs)


def _compare_public(design: um.SurveyDesign, case: dict[str, Any]) -> None:
    name = case["name"]

    def check(est: Any, key: str, by: str | None = None, label: str | None = None) -> None:
        frame = est().to_frame()
        if by is not None:
            assert [str(v) for v in frame[by]] == case[key][label or by], f"{name} {key} rows"
        _assert_close(
            frame["estimate"], case[key]["estimate"], ESTIMATE_RTOL, f"{name} {key} estimate"
        )
        _assert_close(frame["se"], case[key]["se"], SE_RTOL, f"{name} {key} se")

    def warned(call: Any, key: str) -> Any:
        if key not in NAN_REPLICATES.get(name, set()):
            return call

        def run() -> Any:
            with pytest.warns(UnmetneedWarning, match="NaN"):
                return call()

        return run

    check(lambda: design.mean("y"), "mean")
    check(lambda: design.total("y"), "total")
    check(lambda: design.ratio("y", "x"), "ratio")
    check(
        warned(lambda: design.mean("y", by="domain"), "mean_by_domain"), "mean_by_domain", "domain"
    )
    check(lambda: design.total("y", by="domain"), "total_by_domain", "domain")
    check(
        warned(lambda: design.ratio("y", "x", by="domain"), "ratio_by_domain"),
        "ratio_by_domain",
        "domain",
    )
    check(lambda: design.proportion("factor4"), "proportion_factor4", "factor4", "category")
    assert design.degf == case["degf"], f"{name} degf: ours {design.degf} vs R {case['degf']}"


@pytest.mark.parametrize("name", GENERATED)
def test_public_replicate_equals_r(name: str) -> None:
    case = _case(name)
    design = _public_design(case)
    rd = design.replicate(method=case["method"], rho=case["rho"], mse=case["mse"])
    assert rd.replicates is not None
    _assert_close(rd.replicates.scale, case["scale"], WEIGHT_RTOL, "scale")
    _assert_close(rd.replicates.rscales, case["rscales"], WEIGHT_RTOL, "rscales")
    _compare_public(rd, case)


@pytest.mark.parametrize(
    "name", ["jk1", "jkn_mse", "jkn_census", "brr", "fay", "subbootstrap", "jk1_sparse_domain"]
)
def test_from_replicate_weights_with_r_weights_equals_r(name: str) -> None:
    case = _case(name)
    df = _read(_design_spec(case["design"])).copy()
    combined = np.asarray(case["pweights"])[:, None] * np.asarray(case["factors"])
    columns = [f"repw_{r + 1}" for r in range(combined.shape[1])]
    df = pd.concat([df, pd.DataFrame(combined, columns=columns, index=df.index)], axis=1)
    design = um.SurveyDesign.from_replicate_weights(
        df,
        weights="w",
        replicate_weights=columns,
        scale=case["scale"],
        rscales=case["rscales"],
        mse=case["mse"],
    )
    _compare_public(design, case)


# ----------------------------------------------------------------------------
# Bad input
# ----------------------------------------------------------------------------
def _jkn_inputs() -> dict[str, Any]:
    return _codes(_design_spec("jkn"))


def _call(
    c: dict[str, Any], *, lonely_psu: Any = "fail", stratum_labels: Any = None, **options: Any
) -> ReplicateWeights:
    structure = PSUStructure(
        c["strata"],
        c["psu"],
        c["psu_stratum"],
        c["n_psu"],
        c["popsize"],
        lonely_psu=lonely_psu,
        stratum_labels=() if stratum_labels is None else tuple(stratum_labels),
    )
    return make_replicate_weights(c["weights"], structure, **options)


def test_jk1_refuses_stratified_design() -> None:
    with pytest.raises(DesignError, match="use method='jkn'"):
        _call(_jkn_inputs(), method="jk1")


def test_brr_needs_two_psus_per_stratum_and_names_them() -> None:
    c = _jkn_inputs()
    with pytest.raises(DesignError, match=r"exactly 2 PSUs") as err, warnings.catch_warnings():
        warnings.simplefilter("ignore", UnmetneedWarning)  # fpc dropped
        _call(c, method="brr", stratum_labels=c["labels"])
    message = str(err.value)
    assert "'S2' (3 PSUs)" in message and "'S4' (5 PSUs)" in message
    assert "'S1'" not in message  # S1 has 2 PSUs


@pytest.mark.parametrize("rho", [None, 0.0, 1.0, 1.5, -0.2])
def test_fay_rho_must_be_in_open_unit_interval(rho: float | None) -> None:
    c = _codes(_design_spec("brr"))
    with pytest.raises(DesignError, match="0 < rho < 1"):
        _call(c, method="fay", rho=rho)


def test_brr_with_nonzero_rho_points_to_fay() -> None:
    c = _codes(_design_spec("brr"))
    with pytest.raises(DesignError, match="use method='fay'"):
        _call(c, method="brr", rho=0.5)


def test_brr_warns_when_fpc_dropped() -> None:
    c = _codes(_design_spec("brr"))
    c["popsize"] = np.full(c["n_psu"].shape, 10.0)
    with pytest.warns(UnmetneedWarning, match="finite population correction dropped"):
        _call(c, method="brr")


def test_options_that_do_not_apply_are_refused() -> None:
    c = _jkn_inputs()
    with pytest.raises(DesignError, match="n_replicates is only for method='bootstrap'"):
        _call(c, method="jkn", n_replicates=10)
    with pytest.raises(DesignError, match="rho is only for method='fay'"):
        _call(c, method="jkn", rho=0.5)
    with pytest.raises(OptionError, match="use one of"):
        _call(c, method="jackknife")
    with pytest.raises(OptionError, match="lonely_psu"):
        _call(c, method="jkn", lonely_psu="drop")


def test_lonely_psu_fail_names_the_strata() -> None:
    c = _codes(_design_spec("lonely"))
    with pytest.raises(DesignError, match=r"stratum 'B', stratum 'D' have only one PSU"):
        _call(c, method="jkn", stratum_labels=c["labels"])


def test_population_smaller_than_sample_is_refused() -> None:
    c = _jkn_inputs()
    c["popsize"] = c["popsize"].copy()
    c["popsize"][3] = 2.0  # stratum S4 has 5 PSUs
    with pytest.raises(DesignError, match="population 2 < sampled 5"):
        _call(c, method="jkn", stratum_labels=c["labels"])


def test_jk1_census_has_no_replicates_and_zero_variance() -> None:
    """R (survey.drop.replicates): N = n gives no replicates, variance 0."""
    c = _codes(_design_spec("jk1"))
    c["popsize"] = np.array([float(c["n_psu"][0])])
    rw = _call(c, method="jk1")
    assert rw.n_replicates == 0 and rw.scale == 0.0
    np.testing.assert_array_equal(
        replicate_variance(np.array([1.0]), np.empty((1, 0)), rw.scale, rw.rscales, False), [0.0]
    )


def test_replicate_weights_are_read_only() -> None:
    rw, _ = _make(_case("jk1"))
    with pytest.raises(ValueError):
        rw.weights[0, 0] = 1.0
    with pytest.raises(AttributeError):
        rw.scale = 2.0  # type: ignore[misc]
    assert rw.weights.flags.f_contiguous
