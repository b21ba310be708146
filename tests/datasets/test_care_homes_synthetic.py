"""The synthetic care homes: sizes, published shares, council variation, response."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import unmetneed as um
from unmetneed.datasets import _synthetic_care_homes as generator
from unmetneed.datasets import synthetic

# ONS, Care homes and estimating the self-funding population, England: 2022 to 2023
ONS = {"england": 0.370, "South East": 0.475, "North East": 0.264, "older_people": 0.489,
       "younger_adults": 0.020, "1-19": 0.120, "outstanding": 0.509, "inadequate": 0.240}
# the generator solves its offsets to the expected shares; the realised shares
# differ by binomial noise (a few hundred residents per group)
SHARE_TOLERANCE = 0.01


@pytest.fixture(scope="module")
def eng():
    return um.datasets.load_synthetic_england()


@pytest.fixture(scope="module")
def homes(eng):
    full = generator.generate_care_homes(
        eng.areas[["area_code", "region_name"]], _adults(eng), eng.areas["deprivation"].to_numpy(),
        synthetic.SEED)
    return full


def _adults(eng):
    table = eng.census["age_band"].pivot(index="area_code", columns="age_band", values="count")
    return table.loc[eng.areas["area_code"]].to_numpy()


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
    assert set(eng.truth["care_homes_by_area"].columns) == {"area_code", "residents",
                                                            "self_funded"}


def test_sizes_are_englands(eng):
    ch = eng.care_homes
    assert 13_000 <= len(ch.register) <= 15_000
    assert 420_000 <= ch.register["beds"].sum() <= 480_000
    truth = eng.truth["care_homes_by_area"]
    assert 350_000 <= truth["residents"].sum() <= 390_000  # ONS: 372,035
    rate = len(ch.returns) / len(ch.register)
    assert 0.70 <= rate <= 0.80  # ONS: 75.4% of residents covered


def test_generator_reproduces_the_shipped_files(eng, homes):
    pd.testing.assert_frame_equal(homes.returns.reset_index(drop=True),
                                  eng.care_homes.returns, check_dtype=False)
    pd.testing.assert_frame_equal(homes.truth, eng.truth["care_homes_by_area"], check_dtype=False)


def test_shares_are_near_the_published_ones(eng, homes):
    every = homes.homes
    truth = eng.truth["care_homes_by_area"]
    assert _share(truth) == pytest.approx(ONS["england"], abs=SHARE_TOLERANCE)
    for column in ("region", "home_type", "size_band", "rating"):
        for level, group in every.groupby(column):
            if level in ONS:
                assert _share(group) == pytest.approx(ONS[level], abs=SHARE_TOLERANCE), level


def test_council_shares_vary_beyond_the_covariates(eng, homes):
    truth = eng.truth["care_homes_by_area"]
    share = truth["self_funded"] / truth["residents"]
    assert share.std() > 0.08
    sd = eng.metadata["care_homes"]["parameters"]["self_funded"]["council_sd"]
    assert sd >= 0.25
    # deprived councils have fewer self-funders; home ownership more
    councils = eng.areas.set_index("area_code")
    s = pd.Series(share.to_numpy(), index=truth["area_code"])
    own = eng.care_homes.areas.set_index("area_code")["owner_occupied_share"]
    assert np.corrcoef(councils["deprivation"].loc[s.index], s)[0, 1] < -0.2
    assert np.corrcoef(own.loc[s.index], s)[0, 1] > 0.2


def test_non_response_depends_on_size_type_and_rating(eng):
    ch = eng.care_homes
    register = ch.register.assign(responded=ch.register["home_id"].isin(ch.returns["home_id"]))
    by_size = register.groupby("size_band", observed=True)["responded"].mean()
    assert by_size["50+"] > by_size["1-19"]
    by_rating = register.groupby("rating", observed=True)["responded"].mean()
    assert by_rating["outstanding"] > by_rating["inadequate"]


def test_care_home_stream_leaves_the_rest_unchanged():
    # children 0-6 of the seed feed the other parts; the care homes take child 7
    assert generator.STREAM == 7
    first = np.random.SeedSequence(synthetic.SEED).spawn(8)
    assert first[7].spawn_key == (7,)
