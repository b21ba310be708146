"""MultilevelModel, poststratification and frames: behaviour and bad input."""

from __future__ import annotations

import importlib

import numpy as np
import pandas as pd
import pytest

import unmetneed as um
from unmetneed.errors import FrameError, ModelError
from unmetneed.mrp import NewLevelWarning, SingularFitWarning

poststratify_module = importlib.import_module("unmetneed.mrp.poststratify")


def simulated(n: int = 3000, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    area = rng.integers(0, 25, n)
    age = rng.integers(0, 6, n)
    sex = rng.integers(0, 2, n)
    eta = -1.0 + 0.3 * sex + rng.normal(0, 0.5, 25)[area] + np.linspace(-1, 1, 6)[age]
    y = (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(int)
    return pd.DataFrame({
        "y": y,
        "area": [f"A{a:02d}" for a in area],
        "age": [f"G{a}" for a in age],
        "sex": np.where(sex == 1, "Male", "Female"),
    })


@pytest.fixture(scope="module")
def fit() -> um.MultilevelFit:
    return um.MultilevelModel("y ~ sex + (1|area) + (1|age)", data=simulated()).fit()


@pytest.fixture(scope="module")
def frame() -> um.PopulationFrame:
    data = simulated()
    cells = data.groupby(["area", "age", "sex"]).size().rename("count").reset_index()
    cells["count"] = cells["count"] * 100
    return um.PopulationFrame(cells)


def test_aggregated_data_give_the_same_fit(fit: um.MultilevelFit) -> None:
    data = simulated()
    cells = data.groupby(["area", "age", "sex"]).agg(y=("y", "sum"), n=("y", "size")).reset_index()
    agg = um.MultilevelModel("y ~ sex + (1|area) + (1|age)", data=cells, trials="n").fit()
    np.testing.assert_allclose(agg.fixed_effects["estimate"], fit.fixed_effects["estimate"], rtol=1e-6)
    np.testing.assert_allclose(agg.variance_components, fit.variance_components, rtol=1e-6)
    # glmer's log-likelihood of aggregated data includes the binomial coefficients.
    from scipy.special import gammaln

    coef = float(np.sum(gammaln(cells["n"] + 1) - gammaln(cells["y"] + 1) - gammaln(cells["n"] - cells["y"] + 1)))
    assert agg.loglik == pytest.approx(fit.loglik + coef, abs=1e-6)


def test_row_order_does_not_change_the_fit(fit: um.MultilevelFit) -> None:
    data = simulated().sample(frac=1.0, random_state=1)
    other = um.MultilevelModel("y ~ sex + (1|area) + (1|age)", data=data).fit()
    np.testing.assert_allclose(other.fixed_effects["estimate"], fit.fixed_effects["estimate"], rtol=1e-7)
    assert other.loglik == pytest.approx(fit.loglik, abs=1e-8)


def test_predict_in_row_order_and_new_levels(fit: um.MultilevelFit) -> None:
    data = simulated().head(5).copy()
    p = fit.predict(data)
    assert p.shape == (5,) and np.all((p > 0) & (p < 1))
    data.loc[0, "area"] = "NEW"
    with pytest.warns(NewLevelWarning, match="random effect 0"):
        q = fit.predict(data)
    np.testing.assert_allclose(q[1:], p[1:])
    beta = fit.fixed_effects["estimate"]
    eta = beta["Intercept"] + (beta["sex[T.Male]"] if data.loc[0, "sex"] == "Male" else 0.0)
    eta += fit.random_effects["age"].loc[data.loc[0, "age"], "mode"]
    assert q[0] == pytest.approx(1 / (1 + np.exp(-eta)))


def test_draws_have_the_contract_shape(fit: um.MultilevelFit) -> None:
    draws = fit.draws(300, seed=4)
    assert draws["beta"].dims == ("draw", "term")
    assert draws["sd"].dims == ("draw", "factor")
    assert draws["re_area"].shape == (300, 25)
    assert (draws["sd"] > 0).all()
    again = fit.draws(300, seed=4)
    np.testing.assert_array_equal(draws["beta"].values, again["beta"].values)


def test_poststratified_counts_add_up_and_chunking_does_not_matter(
    fit: um.MultilevelFit, frame: um.PopulationFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    draws = fit.draws(200, seed=5)
    by_area = fit.poststratify(frame, by="area", draws=draws, seed=1)
    overall = fit.poststratify(frame, by=None, draws=draws, seed=1)
    np.testing.assert_allclose(
        by_area.draws["count"].sum("area").values, overall.draws["count"].values, rtol=1e-12
    )
    monkeypatch.setattr(poststratify_module, "CHUNK_ELEMENTS", 7 * 200)
    chunked = fit.poststratify(frame, by="area", draws=draws, seed=1)
    np.testing.assert_allclose(chunked.draws["count"].values, by_area.draws["count"].values, rtol=1e-12)
    table = by_area.summary()
    assert list(table.columns) == ["area", "quantity", "estimate", "se", "ci_lower", "ci_upper", "cv", "n"]
    assert table.attrs["level"] == 0.9
    prevalence = table[table["quantity"] == "prevalence"]
    assert ((prevalence["ci_lower"] <= prevalence["estimate"]) & (prevalence["estimate"] <= prevalence["ci_upper"])).all()
    assert prevalence["n"].sum() == len(simulated())


@pytest.mark.parametrize("block", [1, 7 * 50, 65_536])
def test_cell_probabilities_are_the_direct_formula(
    fit: um.MultilevelFit, frame: um.PopulationFrame, monkeypatch: pytest.MonkeyPatch, block: int
) -> None:
    """The blocked (cells x draws) evaluator gives expit(beta @ X.T + b_area + b_age).

    Bitwise on this machine's BLAS; the check allows 1e-13 relative, since another BLAS may
    order the fixed part's products differently for the two matrix shapes.
    """
    monkeypatch.setattr(poststratify_module, "BLOCK_ELEMENTS", block)
    cells = frame.cells.copy()
    cells.loc[[0, 5, 9], "area"] = ["NEW1", "NEW2", "NEW1"]  # unseen levels: effects drawn per level
    draws = fit.draws(50, seed=6)
    chunk, unseen = poststratify_module.cell_probability_draws(fit, cells, draws, np.random.default_rng(8))
    assert unseen == {"area": 2}
    X, codes, _ = fit.new_data_design(cells)
    area = np.concatenate(
        [draws["re_area"].values, draws["sd"].values[:, [0]] * np.random.default_rng(8).standard_normal((50, 2))],
        axis=1,
    )
    area_code = codes[0].copy()
    area_code[[0, 5, 9]] = [25, 26, 25]
    from scipy.special import expit

    eta = draws["beta"].values @ X.T + area[:, area_code] + draws["re_age"].values[:, codes[1]]
    expected = expit(eta)
    for start, stop in [(0, len(cells)), (3, 40), (17, 18), (5, 5)]:
        p = chunk(start, stop)
        assert p.shape == (50, stop - start)
        assert p.T.flags["C_CONTIGUOUS"]  # cells x draws in memory: sparse group sums read it in place
        np.testing.assert_allclose(p, expected[:, start:stop], rtol=1e-13, atol=0)


def test_poststratify_unseen_area_draws_from_the_area_distribution(
    fit: um.MultilevelFit, frame: um.PopulationFrame
) -> None:
    cells = frame.cells
    new = cells[cells["area"] == "A00"].assign(area="NEW")
    extended = um.PopulationFrame(pd.concat([cells, new], ignore_index=True))
    with pytest.warns(NewLevelWarning, match="N\\(0, sd\\^2\\)"):
        post = fit.poststratify(extended, by="area", draws=400, seed=2)
    spread_new = float(post.draws["prevalence"].sel(area="NEW").std())
    spread_known = float(post.draws["prevalence"].sel(area="A00").std())
    assert spread_new > spread_known  # an area without data is less certain
    assert post.attrs["unseen_levels"] == {"area": 1}


def test_benchmark_fixes_the_totals(fit: um.MultilevelFit, frame: um.PopulationFrame) -> None:
    post = fit.poststratify(frame, by=["area", "sex"], draws=100, seed=3)
    totals = pd.Series({"A00": 1000.0, "A01": 2000.0})
    adjusted = post.benchmark(totals, by="area")
    sums = adjusted.draws["count"].sum("sex")
    np.testing.assert_allclose(sums.sel(area="A00").values, 1000.0)
    np.testing.assert_allclose(sums.sel(area="A01").values, 2000.0)
    untouched = adjusted.draws["count"].sel(area="A02").values
    np.testing.assert_allclose(untouched, post.draws["count"].sel(area="A02").values)
    assert set(adjusted.attrs["benchmark"].index) == {"A00", "A01"}
    with pytest.raises(FrameError, match="not estimated"):
        post.benchmark(pd.Series({"ZZZ": 5.0}), by="area")


def test_synthetic_frame_meets_margins_and_keeps_seed_odds() -> None:
    seed = pd.DataFrame({
        "sex": ["Female", "Female", "Male", "Male"],
        "age": ["young", "old", "young", "old"],
        "count": [30.0, 10.0, 32.0, 8.0],
    })
    margins = um.Margins({
        ("area", "sex"): pd.Series({("A", "Female"): 520.0, ("A", "Male"): 480.0,
                                    ("B", "Female"): 260.0, ("B", "Male"): 240.0}),
        ("area", "age"): pd.Series({("A", "young"): 800.0, ("A", "old"): 200.0,
                                    ("B", "young"): 350.0, ("B", "old"): 150.0}),
    })
    frame = um.synthetic_frame(seed, margins, area="area")
    cells = frame.cells
    by_sex = cells.groupby(["area", "sex"])["count"].sum()
    np.testing.assert_allclose(by_sex[("A", "Female")], 520.0, rtol=1e-10)
    a = cells[cells["area"] == "A"].set_index(["sex", "age"])["count"]
    odds = a[("Female", "young")] * a[("Male", "old")] / (a[("Female", "old")] * a[("Male", "young")])
    assert odds == pytest.approx(30.0 * 8.0 / (10.0 * 32.0), rel=1e-9)
    with pytest.raises(FrameError, match="must cross 'area'"):
        um.synthetic_frame(seed, um.Margins({"sex": pd.Series({"Female": 1.0, "Male": 1.0})}), area="area")


# -- bad input ------------------------------------------------------------------------------

def test_missing_values_in_predictors_are_refused() -> None:
    data = simulated(500)
    data.loc[3, "sex"] = None
    with pytest.raises(ModelError, match="'sex' has missing values in 1 row"):
        um.MultilevelModel("y ~ sex + (1|area)", data=data)


def test_non_binary_response_is_refused() -> None:
    data = simulated(500)
    data.loc[0, "y"] = 2
    with pytest.raises(ModelError, match="must be 0/1"):
        um.MultilevelModel("y ~ sex + (1|area)", data=data)


def test_one_level_grouping_factor_is_refused() -> None:
    data = simulated(500).assign(region="only")
    with pytest.raises(ModelError, match=r"'region' has a single level.*drop \(1\|region\) from"):
        um.MultilevelModel("y ~ sex + (1|region)", data=data)


def test_all_zero_weights_are_a_clear_error() -> None:
    data = simulated(500).assign(w=0.0)
    with pytest.raises(ModelError, match="weights 'w' are zero in every row"):
        um.MultilevelModel("y ~ sex + (1|area)", data=data, weights="w")


def test_formula_errors_are_named() -> None:
    data = simulated(500)
    with pytest.raises(ModelError, match="no random intercept"):
        um.MultilevelModel("y ~ sex", data=data)
    with pytest.raises(ModelError, match="only random intercepts"):
        um.MultilevelModel("y ~ sex + (sex|area)", data=data)
    with pytest.raises(KeyError, match="'nope'"):
        um.MultilevelModel("y ~ sex + (1|nope)", data=data)


def test_separation_is_an_error() -> None:
    data = simulated(2000)
    data["flag"] = np.where(data.index % 2 == 0, "yes", "no")
    data["y"] = (data["flag"] == "yes").astype(int)
    with pytest.raises(ModelError, match="separated"):
        um.MultilevelModel("y ~ flag + (1|area)", data=data).fit()


def test_collapsed_variance_is_flagged() -> None:
    # Two identical copies of the data labelled N0 and N1: the MLE of their SD is exactly 0.
    base = simulated(1500)
    data = pd.concat([base.assign(noise="N0"), base.assign(noise="N1")], ignore_index=True)
    with pytest.warns(SingularFitWarning, match="noise"):
        fitted = um.MultilevelModel("y ~ sex + (1|area) + (1|noise)", data=data).fit()
    assert fitted.singular
    assert fitted.variance_components["noise"] < 1e-4


def test_frame_validation() -> None:
    cells = pd.DataFrame({"area": ["A", "A"], "count": [1.0, 2.0]})
    with pytest.raises(FrameError, match="repeat a combination"):
        um.PopulationFrame(cells)
    with pytest.raises(FrameError, match="negative counts"):
        um.PopulationFrame(pd.DataFrame({"area": ["A", "B"], "count": [1.0, -2.0]}))
    with pytest.raises(FrameError, match="missing or non-numeric"):
        um.PopulationFrame(pd.DataFrame({"area": ["A", "B"], "count": [1.0, None]}))
    with pytest.raises(KeyError, match="'n'"):
        um.PopulationFrame(pd.DataFrame({"area": ["A"], "count": [1.0]}), count="n")


def test_frame_missing_model_variable(fit: um.MultilevelFit) -> None:
    cells = pd.DataFrame({"area": ["A00"], "sex": ["Male"], "count": [10.0]})
    with pytest.raises(KeyError, match="'age'"):
        fit.poststratify(um.PopulationFrame(cells), by="area", draws=10, seed=1)


def test_unused_frame_variables_are_summed_first(fit: um.MultilevelFit, frame: um.PopulationFrame) -> None:
    cells = frame.cells
    split = pd.concat([cells.assign(tenure="owner", count=cells["count"] * 0.25),
                       cells.assign(tenure="renter", count=cells["count"] * 0.75)], ignore_index=True)
    draws = fit.draws(50, seed=8)
    base = fit.poststratify(frame, by="area", draws=draws, seed=1)
    wide = fit.poststratify(um.PopulationFrame(split), by="area", draws=draws, seed=1)
    np.testing.assert_allclose(wide.draws["count"].values, base.draws["count"].values, rtol=1e-12)
    by_tenure = fit.poststratify(um.PopulationFrame(split), by="tenure", draws=draws, seed=1)
    np.testing.assert_allclose(by_tenure.draws["prevalence"].sel(tenure="owner").values,
                               by_tenure.draws["prevalence"].sel(tenure="renter").values, rtol=1e-12)


@pytest.mark.parametrize("n_groups", [1, 2, 5, 6, 9])
def test_formula_with_many_random_intercepts(n_groups: int) -> None:
    from unmetneed.mrp.formula import parse_formula

    groups = [f"g{j}" for j in range(n_groups)]
    text = "y ~ sex + x + " + " + ".join(f"(1|{g})" for g in groups)
    parsed = parse_formula(text)
    assert parsed.fixed == "sex + x"
    assert parsed.groups == tuple(groups)
    between = parse_formula("y ~ (1|a) + sex + (1|b) + (1|c) + x + (1|d) + (1|e)")
    assert between.fixed == "sex + x" and between.groups == ("a", "b", "c", "d", "e")


def test_poststratify_by_the_count_column_is_refused() -> None:
    data = simulated(500)
    fit = um.MultilevelModel("y ~ sex + (1|area)", data=data).fit()
    cells = data.groupby(["area", "sex"]).size().rename("count").reset_index()
    with pytest.raises(um.errors.FrameError, match="names the frame's count column 'count'"):
        fit.poststratify(um.PopulationFrame(cells), by="count", draws=20, seed=1)
