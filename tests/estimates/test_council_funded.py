"""estimate_council_funded: admin counts split by the ASCS composition."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import unmetneed as um
from unmetneed.errors import FrameError, MissingColumnError

GROUPS = ["A", "B", "C", "D"]
SHARES = np.array([0.85, 0.10, 0.04, 0.01])
CELLS = [("community", "18-64", "25-34"), ("residential", "18-64", "45-54"),
         ("community", "65+", "75-84"), ("residential", "65+", "85+")]


def simulate(seed: int, n_councils: int = 8, fraction: float = 0.12):
    """Councils with their own compositions; a stratified sample of their people."""
    rng = np.random.default_rng(seed)
    admin, truth, rows = [], [], []
    for a in range(n_councils):
        area, region = f"E0{a:07d}", f"R{a % 2}"
        effect = rng.normal(0, 0.5, len(GROUPS)) * (np.arange(len(GROUPS)) > 0)
        for setting, age_group, band in CELLS:
            theta = SHARES * np.exp(effect)
            theta /= theta.sum()
            count = int(rng.integers(150, 900))
            people = rng.multinomial(count, theta)
            admin.append((area, setting, age_group, count))
            truth.extend((area, setting, age_group, g, c) for g, c in zip(GROUPS, people, strict=True))
            group = np.repeat(np.arange(len(GROUPS)), people)
            n = max(3, int(fraction * count))
            sample = rng.choice(group, n, replace=False)
            rows.extend((area, region, "care home" if setting == "residential" else setting,
                         band, GROUPS[g], count / n) for g in sample)
    data = pd.DataFrame(rows, columns=["area_code", "region_code", "setting", "age_band",
                                       "ethnic_group", "weight"])
    data["ethnic_group"] = pd.Categorical(data["ethnic_group"], categories=GROUPS)
    return (um.SurveyDesign(data, weights="weight"),
            pd.DataFrame(admin, columns=["area_code", "setting", "age_group", "count"]),
            pd.DataFrame(truth, columns=["area_code", "setting", "age_group", "ethnic_group",
                                         "count"]))


@pytest.fixture
def world():
    return simulate(3)


def test_totals_equal_admin_in_every_draw(world):
    ascs, admin, _ = world
    est = um.estimate_council_funded(ascs, admin, draws=50, seed=1)
    totals = est.draws["council_funded"].sum("ethnic_group")
    expected = admin.set_index(["area_code", "setting", "age_group"])["count"]
    for (area, setting, age), count in expected.items():
        values = totals.sel(area_code=area, setting=setting, age_group=age).values
        assert np.array_equal(values, np.full(50, float(count)))
    england = est.aggregate("ethnic_group").draws["council_funded"].sum("ethnic_group").values
    assert np.array_equal(england, np.full(50, float(admin["count"].sum())))
    total = est.aggregate(None).to_frame()
    assert total["estimate"].tolist() == [float(admin["count"].sum())]
    assert total["se"].tolist() == [0.0] and total["quantity"].tolist() == ["council_funded"]


def test_result_table_columns_basis_and_n(world):
    ascs, admin, _ = world
    est = um.estimate_council_funded(ascs, admin, draws=40, seed=2)
    tables = est.tables()
    assert set(tables) == {"cell", "area", "england"}
    cell = tables["cell"]
    assert list(cell.columns) == ["area_code", "setting", "age_group", "ethnic_group", "quantity",
                                  "measure", "estimate", "se", "ci_lower", "ci_upper", "cv", "n",
                                  "basis", "flag"]
    assert len(cell) == len(admin) * len(GROUPS)
    assert (cell["basis"] == "admin_composition").all()
    assert (cell["quantity"] == "council_funded").all()
    assert cell["n"].sum() == len(ascs.data)
    assert tables["england"]["n"].sum() == len(ascs.data)
    assert len(tables["area"]) == admin["area_code"].nunique() * len(GROUPS)


def test_unseen_group_gets_a_real_interval(world):
    ascs, admin, _ = world
    data = ascs.data
    # drop every D respondent of one council: D still exists there (admin people), unseen
    keep = ~((data["area_code"] == "E00000000") & (data["ethnic_group"] == "D"))
    ascs = um.SurveyDesign(data[keep].reset_index(drop=True), weights="weight")
    area = um.estimate_council_funded(ascs, admin, draws=400, seed=3).tables()["area"]
    row = area[(area["area_code"] == "E00000000") & (area["ethnic_group"] == "D")].iloc[0]
    assert row["n"] == 0
    assert row["ci_upper"] > row["ci_lower"]
    assert row["ci_upper"] >= 1
    assert row["basis"] == "admin_composition"


def test_reproducible_with_a_seed(world):
    ascs, admin, _ = world
    a = um.estimate_council_funded(ascs, admin, draws=30, seed=7).draws["council_funded"]
    b = um.estimate_council_funded(ascs, admin, draws=30, seed=7).draws["council_funded"]
    assert a.equals(b)


def test_cross_of_two_characteristics(world):
    ascs, admin, _ = world
    rng = np.random.default_rng(0)
    ascs = ascs.assign(sex=pd.Categorical(rng.choice(["Female", "Male"], len(ascs.data))))
    est = um.estimate_council_funded(ascs, admin, by=["ethnic_group", "sex"], draws=20, seed=1)
    totals = est.draws["council_funded"].sum(["ethnic_group", "sex"])
    assert float(totals.sum(["area_code", "setting", "age_group"]).min()) == admin["count"].sum()
    assert est.tables()["england"].shape[0] == len(GROUPS) * 2


def test_simulation_coverage_and_bias():
    """Small simulation: 90% intervals cover council x group truths, national totals unbiased."""
    covered, rel = [], []
    for seed in range(6):
        ascs, admin, truth = simulate(100 + seed)
        area = um.estimate_council_funded(ascs, admin, draws=300, seed=seed).tables()["area"]
        t = truth.groupby(["area_code", "ethnic_group"])["count"].sum()
        area["truth"] = t.reindex(pd.MultiIndex.from_frame(area[["area_code", "ethnic_group"]])).to_numpy()
        covered.append(((area["ci_lower"] <= area["truth"]) & (area["truth"] <= area["ci_upper"])).mean())
        nat = area.groupby("ethnic_group")[["estimate", "truth"]].sum()
        rel.append((nat["estimate"] / nat["truth"] - 1).to_numpy())
    # 6 x 32 council-groups: coverage of 90% intervals has MC SE ~0.03 (before correlation)
    assert 0.78 <= np.mean(covered) <= 0.99
    bias = np.mean(rel, axis=0)
    assert np.all(np.abs(bias[:3]) < 0.05)  # A, B, C (D is ~1%: too noisy for 6 replicates)


# ---- bad input -------------------------------------------------------------------------


def test_missing_columns(world):
    ascs, admin, _ = world
    with pytest.raises(MissingColumnError, match="count"):
        um.estimate_council_funded(ascs, admin.drop(columns="count"))
    with pytest.raises(MissingColumnError, match="disability"):
        um.estimate_council_funded(ascs, admin, by="disability")
    with pytest.raises(MissingColumnError, match="region_code"):
        um.estimate_council_funded(
            um.SurveyDesign(ascs.data.drop(columns="region_code"), weights="weight"), admin)


def test_negative_or_fractional_counts(world):
    ascs, admin, _ = world
    bad = admin.copy()
    bad.loc[2, "count"] = -5
    with pytest.raises(FrameError, match="non-negative whole numbers"):
        um.estimate_council_funded(ascs, bad)
    bad = admin.astype({"count": float})
    bad.loc[0, "count"] = 10.5
    with pytest.raises(FrameError, match="non-negative whole numbers"):
        um.estimate_council_funded(ascs, bad)


def test_duplicated_admin_cells(world):
    ascs, admin, _ = world
    with pytest.raises(FrameError, match="repeated cells"):
        um.estimate_council_funded(ascs, pd.concat([admin, admin.head(1)]))


def test_admin_cell_without_respondents(world):
    ascs, admin, _ = world
    data = ascs.data
    keep = ~((data["area_code"] == "E00000001") & (data["setting"] == "care home")
             & (data["age_band"] == "85+"))
    thin = um.SurveyDesign(data[keep].reset_index(drop=True), weights="weight")
    with pytest.raises(FrameError, match=r"no ASCS respondents.*E00000001.*allow_empty"):
        um.estimate_council_funded(thin, admin, draws=10)
    est = um.estimate_council_funded(thin, admin, draws=200, seed=1, allow_empty=True)
    assert est.attrs["cells_without_respondents"] == [
        {"area_code": "E00000001", "setting": "residential", "age_group": "65+"}]
    cell = est.to_frame()
    rows = cell[(cell["area_code"] == "E00000001") & (cell["setting"] == "residential")
                & (cell["age_group"] == "65+")]
    assert (rows["n"] == 0).all() and (rows["ci_upper"] > rows["ci_lower"]).any()


def test_respondents_in_cells_without_admin(world):
    ascs, admin, _ = world
    with pytest.raises(FrameError, match="cells without an admin count"):
        um.estimate_council_funded(ascs, admin[admin["area_code"] != "E00000002"])


def test_label_maps(world):
    ascs, admin, _ = world
    odd = ascs.assign(setting=ascs.data["setting"].replace({"care home": "nursing home"}))
    with pytest.raises(FrameError, match=r"'nursing home'.*settings="):
        um.estimate_council_funded(odd, admin)
    est = um.estimate_council_funded(odd, admin, settings={"community": "community",
                                                           "nursing home": "residential"},
                                     draws=5, seed=1)
    assert est.n_draws == 5
    with pytest.raises(FrameError, match=r"age_groups= maps.*'65 and over'.*admin labels"):
        um.estimate_council_funded(ascs, admin, age_groups={b: "18-64" if b < "65" else "65 and over"
                                                            for b in ascs.data["age_band"].unique()})
    with pytest.raises(FrameError, match=r"age_band.*'25-34'"):
        um.estimate_council_funded(ascs, admin, age_groups={"85+": "65+"})


def test_categories_not_matching(world):
    ascs, admin, _ = world
    with pytest.raises(FrameError, match=r"'D'.*categories="):
        um.estimate_council_funded(ascs, admin, categories={"ethnic_group": ["A", "B", "C"]})
    missing = ascs.assign(ethnic_group=ascs.data["ethnic_group"].where(ascs.data.index > 0))
    with pytest.raises(FrameError, match="missing for 1 respondent"):
        um.estimate_council_funded(missing, admin)


def test_options_are_checked(world):
    ascs, admin, _ = world
    with pytest.raises(FrameError, match="prior_strength"):
        um.estimate_council_funded(ascs, admin, prior_strength=-1)
    with pytest.raises(FrameError, match="level"):
        um.estimate_council_funded(ascs, admin, level=90)
    with pytest.raises(FrameError, match="draws"):
        um.estimate_council_funded(ascs, admin, draws=0)
    with pytest.raises(FrameError, match="SurveyDesign"):
        um.estimate_council_funded(ascs.data, admin)
    fixed = um.estimate_council_funded(ascs, admin, prior_strength=50.0, draws=5, seed=1)
    assert set(fixed.attrs["prior_strength"]) == {"setting_age_group", "pool", "area", "cell"}
    assert set(fixed.attrs["prior_strength"]["cell"].values()) == {50.0}


def test_weights_that_differ_by_group_widen_intervals(world):
    """Kish's n* misses weights that depend on the group; the split design effect does not."""
    from unmetneed.estimates.council_funded import _prepare

    ascs, admin, _ = world
    data = ascs.data
    tilted = um.SurveyDesign(data.assign(weight=data["weight"] * np.where(
        data["ethnic_group"] == "A", 1.0, 3.0)), weights="weight")
    plain = _prepare(ascs, admin, ["ethnic_group"], ["area_code", "setting", "age_group"],
                     "count", None, None, None, "region_code", False)
    tilt = _prepare(tilted, admin, ["ethnic_group"], ["area_code", "setting", "age_group"],
                    "count", None, None, None, "region_code", False)
    assert np.all(plain.design_effect >= 1.0) and np.all(tilt.design_effect >= 1.0)
    assert tilt.design_effect[0] > 1.5  # A against the rest: weights 1 vs 3
