"""estimate_care_populations: definitions, benchmarking, tables and bad input."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import unmetneed as um
from unmetneed.errors import FrameError, ModelError, UnmetneedWarning
from unmetneed.estimates import PARTS, BenchmarkWarning

from .conftest import FORMULAS


def estimate(frame, survey, **kwargs):  # type: ignore[no-untyped-def]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnmetneedWarning)  # singular fits on small data
        return um.estimate_care_populations(frame, survey, formulas=FORMULAS, **kwargs)


@pytest.fixture(scope="module")
def by_area(frame, survey):  # type: ignore[no-untyped-def]
    return estimate(frame, survey, draws=200, seed=3)


def test_parts_add_up_to_need_in_every_draw(by_area) -> None:  # type: ignore[no-untyped-def]
    d = by_area.draws
    total = sum(d[p] for p in PARTS)
    np.testing.assert_allclose(total.values, d["need"].values, rtol=1e-12)
    np.testing.assert_allclose((d["unmet"] + d["insufficient"]).values, d["unmet_or_insufficient"].values)


def test_table_has_the_published_columns(by_area) -> None:  # type: ignore[no-untyped-def]
    table = by_area.to_frame()
    assert list(table.columns) == ["area_code", "quantity", "measure", "estimate", "se", "ci_lower",
                                   "ci_upper", "cv", "n", "flag"]
    assert set(table["measure"]) == {"count", "rate_per_1000", "share_of_need"}
    assert set(table["flag"]) <= {"ok", "low_reliability"}
    assert table.attrs["level"] == 0.9
    shares = table[(table["measure"] == "share_of_need") & table["quantity"].isin(PARTS)]
    sums = shares.groupby("area_code")["estimate"].sum()
    np.testing.assert_allclose(sums.to_numpy(), 1.0, rtol=1e-10)


def test_rates_are_per_1000_adults(by_area, frame) -> None:  # type: ignore[no-untyped-def]
    table = by_area.to_frame().set_index(["area_code", "quantity", "measure"])
    pop = frame.totals("area_code")
    for area in pop.index[:3]:
        rate = table.loc[(area, "need", "rate_per_1000"), "estimate"]
        draws = by_area.draws["need"].sel(area_code=area).values
        assert rate == pytest.approx(np.mean(1000 * draws / pop[area]))


def test_groups_add_up_to_england(frame, survey, by_area) -> None:  # type: ignore[no-untyped-def]
    england = estimate(frame, survey, by=None, draws=200, seed=3)
    np.testing.assert_allclose(
        by_area.draws["need"].sum("area_code").values, england.draws["need"].values, rtol=1e-10
    )


def test_by_a_characteristic_and_a_cross(frame, survey) -> None:  # type: ignore[no-untyped-def]
    by_age = estimate(frame, survey, by="age_band", draws=100, seed=4)
    assert set(by_age.to_frame()["age_band"]) == {"18-64", "65-84", "85+"}
    cross = estimate(frame, survey, by=["area_code", "sex"], draws=100, seed=4)
    assert cross.draws["need"].dims == ("draw", "area_code", "sex")


def test_benchmarking_moves_only_between_council_and_self(frame, survey, by_area) -> None:  # type: ignore[no-untyped-def]
    council = by_area.draws["council_funded"].mean("draw").to_series()
    admin = (council * 1.2).iloc[:4]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnmetneedWarning)
        bench = estimate(frame, survey, draws=200, seed=3, admin=admin)
    d, base = bench.draws, by_area.draws
    np.testing.assert_allclose(d["need"].values, base["need"].values, rtol=1e-12)
    for area, value in admin.items():
        np.testing.assert_allclose(d["council_funded"].sel(area_code=area).values, value, rtol=1e-10)
    paid = (d["council_funded"] + d["self_funded"]).sel(area_code=admin.index.tolist())
    paid_base = (base["council_funded"] + base["self_funded"]).sel(area_code=admin.index.tolist())
    ok = (d["self_funded"].sel(area_code=admin.index.tolist()) > 0).values
    np.testing.assert_allclose(paid.values[ok], paid_base.values[ok], rtol=1e-10)
    untouched = [a for a in d["area_code"].values if a not in admin.index]
    np.testing.assert_allclose(d["council_funded"].sel(area_code=untouched).values,
                               base["council_funded"].sel(area_code=untouched).values)


def test_admin_above_paid_care_warns_and_keeps_need(frame, survey, by_area) -> None:  # type: ignore[no-untyped-def]
    paid = (by_area.draws["council_funded"] + by_area.draws["self_funded"]).max("draw").to_series()
    admin = paid.iloc[:2] * 3.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", um.mrp.SingularFitWarning)
        with pytest.warns(BenchmarkWarning, match="exceed the modelled paid care"):
            bench = um.estimate_care_populations(frame, survey, formulas=FORMULAS, draws=200, seed=3, admin=admin)
    d = bench.draws.sel(area_code=admin.index.tolist())
    np.testing.assert_allclose(d["self_funded"].values, 0.0, atol=1e-9)
    total = sum(d[p] for p in PARTS)
    np.testing.assert_allclose(total.values, d["need"].values, rtol=1e-12)


def test_bad_admin_counts(frame, survey) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(FrameError, match="areas not in the frame: \\['E99999999'\\]"):
        estimate(frame, survey, draws=10, admin=pd.Series({"E99999999": 10.0}))
    with pytest.raises(FrameError, match="non-negative"):
        estimate(frame, survey, draws=10, admin=pd.Series({"E06000001": -1.0}))


def test_frame_lacking_a_model_variable(frame, survey) -> None:  # type: ignore[no-untyped-def]
    cells = frame.cells.groupby(["area_code", "age_band"], as_index=False)["count"].sum()
    with pytest.raises(FrameError, match="lacks \\['sex'\\]"):
        estimate(um.PopulationFrame(cells), survey, draws=10)


def test_by_naming_nothing_known(frame, survey) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(KeyError, match="'region'"):
        estimate(frame, survey, by="region", draws=10)


def test_missing_care_item_for_those_asked(frame, survey) -> None:  # type: ignore[no-untyped-def]
    broken = survey.copy()
    row = broken.index[broken["need"] == 1][0]
    broken.loc[row, "help"] = None
    with pytest.raises(ModelError, match="column 'help' must be one of"):
        estimate(frame, broken, draws=10)


def test_residual_estimate() -> None:
    out = um.residual_estimate(total=pd.Series({"A": 100.0, "B": 50.0}), known=pd.Series({"A": 60.0, "B": 70.0}),
                               total_se=pd.Series({"A": 3.0, "B": 4.0}), known_se=4.0)
    assert out["estimate"].tolist() == [40.0, -20.0]
    assert out["se"].tolist() == [5.0, pytest.approx(np.sqrt(32.0))]
    assert out["flag"].tolist() == ["ok", "negative"]
    with pytest.raises(FrameError, match="missing \\['B'\\]"):
        um.residual_estimate(total=pd.Series({"A": 1.0, "B": 2.0}), known=pd.Series({"A": 1.0}))
