"""Households, care homes and all adults: one accounting (unmetneed.estimates.settings)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import unmetneed as um
from unmetneed.errors import FrameError
from unmetneed.estimates.settings import (
    SETTINGS,
    _draw_shares,
    _spread,
    care_home_populations,
    combine_settings,
    split_settings,
)

from .conftest import AREAS, FORMULAS

DRAWS = 200


@pytest.fixture(scope="module")
def model(survey: pd.DataFrame, frame: um.PopulationFrame) -> um.CareModel:
    with warnings.catch_warnings():  # the small survey gives singular fits (warned)
        warnings.simplefilter("ignore", um.errors.UnmetneedWarning)
        return um.fit_care_model(frame, survey, formulas=FORMULAS, draws=DRAWS, seed=3)


@pytest.fixture(scope="module")
def homes(frame: um.PopulationFrame) -> um.PopulationFrame:
    cells = frame.cells.copy()
    old = cells["age_band"] != "18-64"
    cells["count"] = np.where(old, np.round(cells["count"] * 0.03), np.round(cells["count"] * 0.002))
    return um.PopulationFrame(cells)


@pytest.fixture(scope="module")
def funding() -> pd.DataFrame:
    rng = np.random.default_rng(1)
    share = rng.uniform(0.2, 0.5, len(AREAS))
    se = np.where(np.arange(len(AREAS)) == 0, 0.0, 0.03)  # the first council: every home returned
    return pd.DataFrame({"area_code": AREAS, "quantity": "self_funded_share", "estimate": share,
                         "se": se, "basis": np.where(se == 0, "direct", "model")})


def test_split_settings() -> None:
    cells = pd.DataFrame({"area_code": ["A", "A", "B"], "setting": ["household", "care_home", "household"],
                          "count": [100, 4, 50]})
    households, homes = split_settings(cells)
    assert households.counts.sum() == 150 and homes is not None and homes.counts.sum() == 4
    assert "setting" not in households.cells.columns
    households, homes = split_settings(cells.drop(columns="setting").iloc[[0, 2]])
    assert homes is None and households.counts.sum() == 150
    with pytest.raises(FrameError, match="'nursing'"):
        split_settings(cells.assign(setting=["household", "nursing", "household"]))
    with pytest.raises(FrameError, match="no 'household' rows"):
        split_settings(cells.iloc[[1, 2]].assign(setting="care_home"))


def test_care_home_parts_add_up_and_match_the_council_shares(model, homes, funding) -> None:
    tables = care_home_populations(model, homes, funding, groupings=[("area_code",), ("age_band",), ()],
                                   seed=4)
    by_area = tables[("area_code",)].draws
    residents = homes.cells.groupby("area_code")["count"].sum().reindex(by_area["area_code"].values)
    # need is the census count of residents in every draw; council + self = need
    np.testing.assert_allclose(by_area["need"].values, np.broadcast_to(residents.values, (DRAWS, len(AREAS))))
    np.testing.assert_allclose((by_area["council_funded"] + by_area["self_funded"]).values,
                               by_area["need"].values, rtol=1e-12)
    assert (by_area["unpaid_only"].values == 0).all() and (by_area["unmet"].values == 0).all()
    assert np.isnan(by_area["insufficient"].values).all()  # not measured in care homes
    share = by_area["self_funded"] / by_area["need"]
    # the council's share in every draw is a draw of its estimate (mean and SD as given)
    expected = funding.set_index("area_code").reindex(by_area["area_code"].values)
    np.testing.assert_allclose(share.mean("draw").values, expected["estimate"], atol=0.012)
    np.testing.assert_allclose(share.std("draw").values, expected["se"], atol=0.008)
    assert float(share.isel(area_code=0).std()) < 1e-12  # SE 0: the share itself
    # groupings come from the same draws: age bands add up to England
    england = tables[()].draws["self_funded"].values
    np.testing.assert_allclose(tables[("age_band",)].draws["self_funded"].sum("age_band").values, england,
                               rtol=1e-10)


def test_uniform_composition_gives_every_resident_of_a_council_the_same_share(model, homes, funding) -> None:
    cross = care_home_populations(model, homes, funding, groupings=[("area_code", "age_band")],
                                  composition="uniform", seed=4)[("area_code", "age_band")].draws
    share = (cross["self_funded"] / cross["need"]).isel(draw=0)
    spread = share.max("age_band") - share.min("age_band")
    assert float(spread.max()) < 1e-9
    linked = care_home_populations(model, homes, funding, groupings=[("area_code", "age_band")],
                                   seed=4)[("area_code", "age_band")].draws
    varied = (linked["self_funded"] / linked["need"]).isel(draw=0)
    assert float((varied.max("age_band") - varied.min("age_band")).max()) > 1e-3


def test_missing_council_and_bad_shares_are_refused(model, homes, funding) -> None:
    with pytest.raises(FrameError, match="without a care-home estimate"):
        care_home_populations(model, homes, funding.iloc[1:], groupings=[()])
    with pytest.raises(FrameError, match=r"in \[0, 1\]"):
        care_home_populations(model, homes, funding.assign(estimate=1.5), groupings=[()])
    with pytest.raises(FrameError, match="composition"):
        care_home_populations(model, homes, funding, groupings=[()], composition="flat")  # type: ignore[arg-type]


def test_all_is_household_plus_care_home_in_every_draw(model, frame, homes, funding) -> None:
    groupings = [(), ("area_code",), ("sex",)]
    household = model.populations_by(frame, groupings=groupings)
    care = care_home_populations(model, homes, funding, groupings=groupings, seed=5)
    tables = combine_settings(household, care, care_home_funding=funding)
    for estimates in tables.values():
        draws = estimates.draws
        assert [str(v) for v in draws["setting"].values] == list(SETTINGS)
        for quantity in ("need", "council_funded", "self_funded", "unpaid_only", "unmet"):
            total = draws[quantity].sel(setting="all")
            parts = draws[quantity].sel(setting="household") + draws[quantity].sel(setting="care_home")
            np.testing.assert_allclose(total.values, parts.values, rtol=1e-12)
    table = tables[("area_code",)].to_frame()
    homes_rows = table[table["setting"] == "care_home"]
    assert not homes_rows["quantity"].isin(["unpaid_only", "unmet", "insufficient"]).any()
    assert not table.loc[table["setting"] == "all", "quantity"].isin(["insufficient"]).any()
    need = homes_rows[(homes_rows["quantity"] == "need") & (homes_rows["measure"] == "count")]
    assert set(need["basis"]) == {"direct"} and need["n"].isna().all()
    first = homes_rows[(homes_rows["area_code"] == AREAS[0]) & (homes_rows["quantity"] == "self_funded")]
    assert set(first["basis"]) == {"direct"}  # every home returned there
    one = tables[("area_code",)].in_setting("household")
    assert one.by == ["area_code"]
    np.testing.assert_allclose(one.draws["need"].values, household[("area_code",)].draws["need"].values)
    with pytest.raises(FrameError, match="'nursing'"):
        tables[("area_code",)].in_setting("nursing")


def test_without_a_care_home_frame_only_households_are_claimed(model, frame) -> None:
    household = model.populations_by(frame, groupings=[("area_code",)])
    tables = combine_settings(household, None)
    assert set(tables[("area_code",)].to_frame()["setting"]) == {"household"}
    assert tables[("area_code",)].attrs["care_home_frame"] is False


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.floats(0.01, 0.99), st.floats(-4, 4))
def test_spread_meets_every_council_share(seed: int, target: float, shift: float) -> None:
    rng = np.random.default_rng(seed)
    n_cells, n_areas, n_draws = 30, 3, 4
    area = rng.integers(0, n_areas, n_cells)
    area[:n_areas] = np.arange(n_areas)
    counts = rng.integers(1, 50, n_cells).astype(float)
    logit_q = rng.normal(shift, 2.0, (n_draws, n_cells))
    share = np.clip(target + rng.normal(0, 0.05, (n_draws, n_areas)), 0.0, 1.0)
    share[0, 0] = 0.0
    share[1, 1] = 1.0
    s = _spread(logit_q, share, area, counts, n_areas)
    assert ((s >= 0) & (s <= 1)).all()
    totals = np.stack([np.bincount(area, weights=s[d] * counts, minlength=n_areas) for d in range(n_draws)])
    residents = np.bincount(area, weights=counts, minlength=n_areas)
    np.testing.assert_allclose(totals, share * residents, atol=1e-8 * residents.max())


def test_beta_draws_have_the_estimate_and_its_se() -> None:
    shares = pd.DataFrame({"estimate": [0.3, 0.05, 0.9], "se": [0.04, 0.02, 0.0], "basis": "model"},
                          index=["A", "B", "C"])
    draws = _draw_shares(shares, 40_000, np.random.default_rng(0))
    np.testing.assert_allclose(draws.mean(axis=0), [0.3, 0.05, 0.9], atol=0.002)
    np.testing.assert_allclose(draws.std(axis=0), [0.04, 0.02, 0.0], atol=0.001)
    assert ((draws >= 0) & (draws <= 1)).all()


def test_council_composition_replaces_household_council_funded_and_keeps_the_accounting(
        model, frame, homes, funding) -> None:
    import xarray as xr

    from unmetneed.estimates.settings import with_council_composition

    groupings = [(), ("sex",)]
    household = model.populations_by(frame, groupings=groupings)
    care = care_home_populations(model, homes, funding, groupings=groupings, seed=5)
    tables = combine_settings(household, care, care_home_funding=funding)
    before = tables[("sex",)].draws
    total = before["council_funded"].sel(setting="household").sum("sex").values
    rng = np.random.default_rng(2)
    share = rng.beta(40, 60, DRAWS)
    council = xr.DataArray(np.stack([total * share, total * (1 - share)], axis=1), dims=("draw", "sex"),
                           coords={"sex": ["Female", "Male"]})
    after = with_council_composition(tables[("sex",)], council).draws
    hh = after.sel(setting="household")
    np.testing.assert_allclose(hh["council_funded"].sel(sex="Female").values, total * share)
    # need is still the sum of its parts, and all = household + care home, in every draw
    parts = sum(hh[q] for q in ("council_funded", "self_funded", "unpaid_only", "unmet"))
    np.testing.assert_allclose(hh["need"].values, parts.values, rtol=1e-12)
    for q in ("need", "council_funded"):
        np.testing.assert_allclose(after[q].sel(setting="all").values,
                                   (after[q].sel(setting="household") + after[q].sel(setting="care_home")).values)
    # England is unchanged: the categories still add up to the same totals
    np.testing.assert_allclose(after["need"].sum("sex").values, before["need"].sum("sex").values, rtol=1e-12)
    np.testing.assert_allclose(after["self_funded"].values, before["self_funded"].values)
    with pytest.raises(FrameError, match="no draws for sex"):
        with_council_composition(tables[("sex",)], council.sel(sex=["Female"]))


def test_a_council_without_returns_is_model_no_respondents(model, frame, homes, funding) -> None:
    without = funding.assign(basis=np.where(funding["area_code"] == AREAS[1], "model_no_returns",
                                            funding["basis"]))
    groupings = [("area_code",)]
    tables = combine_settings(model.populations_by(frame, groupings=groupings),
                              care_home_populations(model, homes, without, groupings=groupings, seed=5),
                              care_home_funding=without)
    table = tables[("area_code",)].to_frame()
    rows = table[(table["area_code"] == AREAS[1]) & table["quantity"].isin(["self_funded", "council_funded"])]
    assert set(rows.loc[rows["setting"] == "care_home", "basis"]) == {"model_no_respondents"}
    assert set(rows.loc[rows["setting"] == "all", "basis"]) == {"model_no_respondents"}
    assert "model_no_returns" not in set(table["basis"])


def test_joint_share_draws_keep_each_margin_and_share_the_coefficients_error():
    """With the model's common error part, councils' shares are drawn jointly (Gaussian copula)."""
    from unmetneed.estimates.settings import _draw_shares

    shares = pd.DataFrame({"estimate": [0.3, 0.4, 0.5], "se": [0.05, 0.05, 0.05], "basis": "model"},
                          index=["a", "b", "c"])
    common = (np.full((3, 1), 0.04), np.array([[1.0]]))  # 0.04^2 / 0.05^2 = 64% of each variance
    joint = _draw_shares(shares, 40_000, np.random.default_rng(1), common)
    alone = _draw_shares(shares, 40_000, np.random.default_rng(1))
    for draws in (joint, alone):
        np.testing.assert_allclose(draws.mean(axis=0), [0.3, 0.4, 0.5], atol=2e-3)
        np.testing.assert_allclose(draws.std(axis=0), 0.05, rtol=0.03)
    assert np.corrcoef(joint.T)[0, 1] == pytest.approx(0.64, abs=0.03)
    assert abs(np.corrcoef(alone.T)[0, 1]) < 0.03
    # the sum over councils keeps the common part: Var = 3 v + 6 c
    assert joint.sum(axis=1).var() == pytest.approx(3 * 0.05**2 + 6 * 0.04**2, rel=0.06)
