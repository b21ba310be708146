"""estimate_care_home_funding: contract, weighting, councils without returns, bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import unmetneed as um
from unmetneed.errors import MissingColumnError, ModelError, ReadError

COLUMNS = ["area_code", "quantity", "estimate", "se", "ci_lower", "ci_upper", "cv", "n", "basis"]


@pytest.fixture(scope="module")
def homes():
    return um.datasets.load_synthetic_england().care_homes


@pytest.fixture(scope="module")
def result(homes):
    return um.estimate_care_home_funding(homes.register, homes.returns, covariates=homes.areas)


def _wide(result, column="estimate"):
    return result.to_frame().pivot(index="area_code", columns="quantity", values=column)


def test_to_frame_has_the_contract_columns_and_every_council(result, homes):
    table = result.to_frame()
    assert list(table.columns) == COLUMNS
    assert table["area_code"].nunique() == homes.register["area_code"].nunique() == 152
    assert set(table["quantity"]) == {"residents", "self_funded", "self_funded_share"}
    assert set(table["basis"]) <= {"direct", "model", "model_no_returns"}
    responding = (homes.returns.merge(homes.register, on="home_id")
                  .groupby("area_code").size())
    n = table.drop_duplicates("area_code").set_index("area_code")["n"]
    assert (n == responding.reindex(n.index).fillna(0)).all()
    assert table.attrs["level"] == 0.9


def test_intervals_bracket_estimates_and_shares_are_proportions(result):
    table = result.to_frame()
    assert (table["ci_lower"] <= table["estimate"] + 1e-12).all()
    assert (table["estimate"] <= table["ci_upper"] + 1e-12).all()
    assert (table["se"] >= 0).all()
    share = table[table["quantity"] == "self_funded_share"]
    assert share["estimate"].between(0, 1).all() and share["ci_upper"].le(1).all()


def test_self_funders_are_residents_times_share(result):
    wide = _wide(result)
    np.testing.assert_allclose(wide["self_funded"], wide["residents"] * wide["self_funded_share"],
                               rtol=1e-12)


def test_weights_reproduce_register_homes_and_beds(result, homes):
    data = result.design.data
    w = result.design.weights
    register = homes.register
    for variable in ("region", "home_type", "size_band"):
        weighted = pd.Series(w).groupby(data[variable].astype(str).to_numpy()).sum()
        target = register.groupby(register[variable].astype(str)).size()
        np.testing.assert_allclose(weighted.loc[target.index], target, rtol=1e-9)
        beds = pd.Series(w * data["beds"].to_numpy()).groupby(
            data[variable].astype(str).to_numpy()).sum()
        target_beds = register.groupby(register[variable].astype(str))["beds"].sum()
        np.testing.assert_allclose(beds.loc[target_beds.index], target_beds, rtol=1e-9)


def test_ons_tables_and_england_are_design_ratios(result):
    tables = result.tables()
    assert set(tables) == {"england", "region", "home_type", "size_band", "rating"}
    england = tables["england"].iloc[0]
    direct = result.design.ratio("self_funded", "residents")
    assert england["estimate"] == pytest.approx(float(direct.estimate.iloc[0]), rel=1e-12)
    assert tables["region"]["region"].nunique() == 9
    older = tables["home_type"].set_index("home_type").loc["older_people", "estimate"]
    younger = tables["home_type"].set_index("home_type").loc["younger_adults", "estimate"]
    assert older > 10 * younger


def test_a_council_without_returns_is_modelled_and_flagged(homes):
    register, returns = homes.register, homes.returns
    council = "E06000001"
    gone = register.loc[register["area_code"] == council, "home_id"]
    res = um.estimate_care_home_funding(register, returns[~returns["home_id"].isin(gone)],
                                        covariates=homes.areas)
    rows = res.to_frame().query("area_code == @council")
    assert len(rows) == 3
    assert set(rows["basis"]) == {"model_no_returns"}
    assert (rows["n"] == 0).all() and (rows["se"] > 0).all()
    assert council in res.info["councils_no_returns"]
    assert "model_no_returns 1" in res.summary()


def test_a_council_whose_homes_all_returned_is_exact(homes):
    register, returns = homes.register, homes.returns
    council = "E06000053"  # Isles of Scilly: a handful of homes
    everyone = register.loc[register["area_code"] == council, ["home_id", "beds"]]
    truth = returns.set_index("home_id")
    missing = everyone[~everyone["home_id"].isin(truth.index)]
    extra = pd.DataFrame({"home_id": missing["home_id"], "residents": missing["beds"] - 1,
                          "self_funded": 1, "council_funded": missing["beds"] - 2,
                          "nhs_funded": 0, "other_funded": 0})
    res = um.estimate_care_home_funding(register, pd.concat([returns, extra], ignore_index=True))
    rows = res.to_frame().query("area_code == @council").set_index("quantity")
    assert set(rows["basis"]) == {"direct"}
    assert (rows["se"] == 0).all()
    full = pd.concat([returns, extra]).merge(everyone, on="home_id")
    assert rows.loc["self_funded_share", "estimate"] == pytest.approx(
        full["self_funded"].sum() / full["residents"].sum(), rel=1e-12)
    assert rows.loc["residents", "estimate"] == pytest.approx(full["residents"].sum(), rel=1e-9)


def test_smoothed_variance_is_positive_where_taylor_is_zero(homes):
    register, returns = homes.register, homes.returns
    council = "E06000017"  # Rutland
    ids = register.loc[register["area_code"] == council, "home_id"]
    keep = returns["home_id"].isin(ids)
    one = returns[keep].head(1)
    res = um.estimate_care_home_funding(register, pd.concat([returns[~keep], one]))
    row = res.councils.set_index("area_code").loc[council]
    assert row["responding_homes"] == 1
    # zero up to rounding: the Taylor variance of one home is 0 (computed as ~1e-17)
    assert abs(row["direct_se"]) < 1e-9 and row["gvf_se"] > 0
    assert row["basis"] == "model"


def test_row_order_of_returns_does_not_matter(homes, result):
    shuffled = homes.returns.sample(frac=1.0, random_state=3)
    again = um.estimate_care_home_funding(homes.register, shuffled, covariates=homes.areas)
    a = result.to_frame().set_index(["area_code", "quantity"])
    b = again.to_frame().set_index(["area_code", "quantity"]).loc[a.index]
    np.testing.assert_allclose(a["estimate"], b["estimate"], rtol=1e-8)
    # atol: an SE that is 0 (a council with one responding home) comes out as 0 or ~1e-17
    np.testing.assert_allclose(a["se"], b["se"], rtol=1e-6, atol=1e-9)


def test_model_pulls_noisy_councils_towards_the_synthetic_share(result):
    councils = result.councils
    modelled = councils[councils["basis"] == "model"]
    assert modelled["shrinkage"].between(0, 1).all()
    small = modelled["responding_homes"] < modelled["responding_homes"].median()
    assert modelled.loc[small, "shrinkage"].mean() < modelled.loc[~small, "shrinkage"].mean()


def test_repr_and_html(result):
    assert "England self-funded share" in repr(result)
    assert "<table" in result._repr_html_()


def test_bad_input_names_the_culprit(homes):
    register, returns = homes.register, homes.returns
    bad = returns.copy()
    bad.loc[0, "home_id"] = "1-0000000000"
    with pytest.raises(ReadError, match="1-0000000000"):
        um.estimate_care_home_funding(register, bad)
    bad = returns.copy()
    home = bad.loc[0, "home_id"]
    beds = int(register.set_index("home_id").loc[home, "beds"])
    bad.loc[0, ["residents", "council_funded"]] = [beds + 5, beds + 5 - bad.loc[0, "self_funded"]
                                                   - bad.loc[0, "nhs_funded"]
                                                   - bad.loc[0, "other_funded"]]
    with pytest.raises(ReadError, match=rf"more residents than beds.*{home}"):
        um.estimate_care_home_funding(register, bad)
    with pytest.raises(MissingColumnError, match="ownership"):
        um.estimate_care_home_funding(register, returns, calibrate_to=("region", "ownership"))
    covariates = homes.areas.iloc[3:]
    with pytest.raises(ModelError, match=homes.areas["area_code"].iloc[0]):
        um.estimate_care_home_funding(register, returns, covariates=covariates)
    with pytest.raises(ValueError, match="level"):
        um.estimate_care_home_funding(register, returns, level=90)


def test_optional_register_columns_may_be_absent(homes):
    register = homes.register.drop(columns=["deprivation_decile", "rating"])
    res = um.estimate_care_home_funding(register, homes.returns,
                                        calibrate_to=("home_type", "size_band"))
    assert "mean_deprivation_decile" not in res.info["formula"]
    assert res.info["calibrate_to"] == ["home_type", "size_band"]
    assert res.to_frame()["area_code"].nunique() == 152
    assert set(res.tables()["rating"]["rating"].astype(str)) == {"not_rated"}


def test_result_is_frozen_and_to_frame_is_a_copy(result):
    with pytest.raises(AttributeError):
        result.model = None
    with pytest.raises(TypeError):
        result.info["level"] = 0.5
    table = result.to_frame()
    table["estimate"] = 0.0
    assert (result.to_frame()["estimate"] > 0).any()


@pytest.fixture(scope="module")
def admin_result(homes):
    admin = um.datasets.load_synthetic_england().admin
    return um.estimate_care_home_funding(homes.register, homes.returns, covariates=homes.areas, admin=admin)


def test_admin_counts_enter_as_an_estimated_covariate(admin_result, result):
    """admin=: the implied council-funded share joins the model, with its own variance."""
    assert admin_result.info["formula"].endswith("+ admin_share")
    assert "Ybarra" in admin_result.info["fh_method"]
    assert isinstance(admin_result.model, um.sae.MeasurementErrorFit)
    councils = admin_result.councils.set_index("area_code")
    partial = (councils["responding_homes"] > 0) & (councils["responding_homes"] < councils["homes"])
    assert (councils.loc[partial, "admin_share_se"] > 0).all()
    assert (councils.loc[~partial & (councils["responding_homes"] > 0), "admin_share_se"] == 0).all()
    # the synthetic England's admin counts are the homes' own, so the model leans on them:
    # less weight on the noisy direct shares than without them
    model = councils["basis"] == "model"
    plain = result.councils.set_index("area_code")
    assert councils.loc[model, "shrinkage"].mean() < plain.loc[model, "shrinkage"].mean() - 0.2
    table = admin_result.to_frame()
    assert (table["ci_lower"] <= table["estimate"] + 1e-12).all()
    assert (table["estimate"] <= table["ci_upper"] + 1e-12).all()


def test_a_council_without_returns_is_predicted_with_admin_counts(homes):
    admin = um.datasets.load_synthetic_england().admin
    drop = homes.register.loc[homes.register["area_code"] == "E06000001", "home_id"]
    returns = homes.returns[~homes.returns["home_id"].isin(drop)]
    res = um.estimate_care_home_funding(homes.register, returns, covariates=homes.areas, admin=admin)
    row = res.to_frame().query("area_code == 'E06000001' and quantity == 'self_funded_share'").iloc[0]
    assert row["basis"] == "model_no_returns" and row["se"] > 0 and np.isfinite(row["estimate"])


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        (lambda a: a.drop(columns="setting"), MissingColumnError, "setting"),
        (lambda a: a[a["setting"].astype(str) == "community"], ModelError, "no rows with setting"),
        (lambda a: a.assign(count=-a["count"]), ModelError, ">= 0"),
        (lambda a: a[a["area_code"] != "E06000002"], ModelError, "E06000002"),
    ],
)
def test_bad_admin_counts_are_named(homes, change, error, message):
    admin = um.datasets.load_synthetic_england().admin
    with pytest.raises(error, match=message):
        um.estimate_care_home_funding(homes.register, homes.returns, admin=change(admin))


def test_declared_admin_error_widens_the_intervals(homes, admin_result):
    admin = um.datasets.load_synthetic_england().admin
    res = um.estimate_care_home_funding(homes.register, homes.returns, covariates=homes.areas,
                                        admin=admin, admin_cv=0.05)
    model = res.councils["basis"].to_numpy() == "model"
    assert (res.councils["admin_share_se"] > admin_result.councils["admin_share_se"]).all()
    assert (res.councils["se"].to_numpy()[model] >= admin_result.councils["se"].to_numpy()[model] - 1e-12).all()
    with pytest.raises(ModelError, match="admin_cv"):
        um.estimate_care_home_funding(homes.register, homes.returns, admin=admin, admin_cv=-0.1)


def test_admin_counts_too_noisy_to_use_are_a_clear_error(homes):
    admin = um.datasets.load_synthetic_england().admin
    with pytest.raises(ModelError, match="too noisy to use"):
        um.estimate_care_home_funding(homes.register, homes.returns, covariates=homes.areas,
                                      admin=admin, admin_cv=0.6)
