"""The synthetic care homes: they hold the population's care-home residents exactly."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import unmetneed as um
from unmetneed.datasets import _synthetic_care_homes as generator
from unmetneed.datasets import synthetic

# ONS, Care homes and estimating the self-funding population, England: 2022 to 2023:
# 372,035 residents, 37.0% self-funders. Targets to stay near, not forced: the
# self-funders follow from the population model (the band is about +-5 points).
ONS_RESIDENTS = 372_035
ONS_SHARE = 0.370
SHARE_BAND = 0.05


@pytest.fixture(scope="module")
def eng():
    return um.datasets.load_synthetic_england()


@pytest.fixture(scope="module")
def homes(eng):
    residents, self_funded = generator.resident_totals(eng.population.cells, eng.admin,
                                                       eng.areas["area_code"])
    return generator.generate_care_homes(
        eng.areas[["area_code", "region_name"]], residents, self_funded,
        eng.areas["deprivation"].to_numpy(), eng.areas["owner_occupation"].to_numpy(),
        synthetic.SEED)


def _share(frame: pd.DataFrame) -> float:
    return float(frame["self_funded"].sum() / frame["residents"].sum())


def test_register_and_returns_have_the_contract_columns(eng):
    ch = eng.care_homes
    assert list(ch.register.columns) == ["home_id", "area_code", "region", "home_type", "nursing",
                                         "beds", "size_band", "rating", "deprivation_decile"]
    assert list(ch.returns.columns) == ["home_id", "residents", "self_funded", "council_funded",
                                        "nhs_funded", "other_funded"]
    assert ch.register["home_id"].is_unique
    assert ch.returns["home_id"].isin(ch.register["home_id"]).all()
    assert set(ch.register["area_code"]) == set(eng.areas["area_code"])
    assert list(ch.register["rating"].cat.categories) == list(generator.RATINGS)
    assert list(eng.truth["care_homes_by_area"].columns) == ["area_code", "residents",
                                                             "self_funded"]
    parts = ch.returns[["self_funded", "council_funded", "nhs_funded", "other_funded"]]
    assert (parts.sum(axis=1) == ch.returns["residents"]).all()


def test_homes_hold_exactly_the_care_home_truth(eng, homes):
    truth = eng.truth["by_area"]
    truth = truth[truth["setting"] == "care_home"].pivot(index="area_code", columns="quantity",
                                                         values="value")
    by_area = eng.truth["care_homes_by_area"].set_index("area_code")
    np.testing.assert_array_equal(by_area["residents"].to_numpy(),
                                  truth.loc[by_area.index, "need"].to_numpy())
    np.testing.assert_array_equal(by_area["self_funded"].to_numpy(),
                                  truth.loc[by_area.index, "self_funded"].to_numpy())
    # the register's homes add up to the same totals, council by council
    every = homes.homes.groupby("area_code")[["residents", "self_funded"]].sum()
    pd.testing.assert_frame_equal(every.loc[by_area.index], by_area, check_dtype=False,
                                  check_names=False)
    assert (homes.homes["residents"] <= homes.homes["beds"]).all()
    # older-people homes hold the residents 65+, younger-adult homes those 18-64
    cells = eng.population.cells
    residents = cells[cells["setting"] == "care_home"]
    older = residents["age_band"].isin(["65-74", "75-84", "85+"])
    by_type = homes.homes.groupby("home_type")["residents"].sum()
    assert by_type["older_people"] == residents.loc[older, "count"].sum()
    assert by_type["younger_adults"] == residents.loc[~older, "count"].sum()


def test_sizes_are_englands(eng):
    ch = eng.care_homes
    assert 13_000 <= len(ch.register) <= 15_000
    assert 420_000 <= ch.register["beds"].sum() <= 480_000
    truth = eng.truth["care_homes_by_area"]
    assert abs(truth["residents"].sum() / ONS_RESIDENTS - 1) < 0.05
    rate = len(ch.returns) / len(ch.register)
    assert 0.70 <= rate <= 0.80  # ONS: 75.4% of residents covered


def test_generator_reproduces_the_shipped_files(eng, homes):
    pd.testing.assert_frame_equal(homes.returns.reset_index(drop=True),
                                  eng.care_homes.returns, check_dtype=False)
    pd.testing.assert_frame_equal(homes.truth, eng.truth["care_homes_by_area"], check_dtype=False)


def test_shares_vary_by_home_as_published(eng, homes):
    every = homes.homes
    assert _share(eng.truth["care_homes_by_area"]) == pytest.approx(ONS_SHARE, abs=SHARE_BAND)
    share = {column: every.groupby(column, observed=True).apply(_share)
             for column in ("home_type", "size_band", "rating", "region")}
    # ONS: older people 48.9% vs younger adults 2.0%; outstanding 50.9% vs inadequate 24.0%;
    # South East 47.5% vs North East 26.4%
    assert share["home_type"]["older_people"] > share["home_type"]["younger_adults"] + 0.2
    assert share["rating"]["outstanding"] > share["rating"]["inadequate"] + 0.15
    assert share["region"]["South East"] > share["region"]["North East"] + 0.05
    assert share["size_band"]["50+"] > share["size_band"]["1-19"]


def test_council_shares_vary_beyond_the_covariates(eng):
    truth = eng.truth["care_homes_by_area"]
    share = pd.Series((truth["self_funded"] / truth["residents"]).to_numpy(),
                      index=truth["area_code"])
    assert share.std() > 0.06
    assert eng.metadata["model_parameters"]["council"]["area_sd"] >= 0.25
    councils = eng.areas.set_index("area_code")
    own = eng.care_homes.areas.set_index("area_code")["owner_occupied_share"]
    # home ownership means more self-funders (the home counts in the means test)
    assert np.corrcoef(own.loc[share.index], share)[0, 1] > 0.2
    assert np.corrcoef(councils["deprivation"].loc[share.index], share)[0, 1] < 0


def test_non_response_depends_on_size_type_and_rating(eng):
    ch = eng.care_homes
    register = ch.register.assign(responded=ch.register["home_id"].isin(ch.returns["home_id"]))
    by_size = register.groupby("size_band", observed=True)["responded"].mean()
    assert by_size["50+"] > by_size["1-19"]
    by_rating = register.groupby("rating", observed=True)["responded"].mean()
    assert by_rating["outstanding"] > by_rating["inadequate"]
    by_type = register.groupby("home_type", observed=True)["responded"].mean()
    assert by_type["older_people"] > by_type["younger_adults"]


def test_care_home_stream_is_its_own():
    # children 0-6 of the seed feed the population, effects and surveys; 7 the care
    # homes, 8 the settings draw, 9 the carers' support effects
    assert generator.STREAM == 7
    assert synthetic.SETTINGS_STREAM == 8 and synthetic.SUPPORT_STREAM == 9
    first = np.random.SeedSequence(synthetic.SEED).spawn(10)
    assert first[7].spawn_key == (generator.STREAM,)
