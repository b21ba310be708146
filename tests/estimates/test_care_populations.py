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
                                   "ci_upper", "cv", "n", "basis", "flag"]
    assert set(table["basis"]) == {"model"}  # every area has respondents, nothing benchmarked
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


def test_benchmarking_conditions_every_part_on_the_admin_count(frame, survey, by_area) -> None:  # type: ignore[no-untyped-def]
    council = by_area.draws["council_funded"].mean("draw").to_series()
    admin = (council * 1.2).iloc[:4]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnmetneedWarning)
        bench = estimate(frame, survey, draws=200, seed=3, admin=admin)
    d, base = bench.draws, by_area.draws
    areas = admin.index.tolist()
    for area, value in admin.items():
        np.testing.assert_allclose(d["council_funded"].sel(area_code=area).values, value, rtol=1e-10)
    # Parts stay positive and add up; need is their sum.
    for part in PARTS:
        assert (d[part].sel(area_code=areas).values > 0).all()
    np.testing.assert_allclose(sum(d[p] for p in PARTS).values, d["need"].values, rtol=1e-12)
    # Each part moves by exp(k_j * (log A - log C)) with k_j = Cov(log T_j, log C) / Var(log C)
    # across draws, the ensemble Kalman update on log totals.
    for area, value in admin.items():
        log_c = np.log(base["council_funded"].sel(area_code=area).values)
        for part in ("self_funded", "unpaid_only", "unmet"):
            log_t = np.log(base[part].sel(area_code=area).values)
            gain = np.cov(log_t, log_c, bias=True)[0, 1] / np.var(log_c)
            expected = np.exp(log_t + gain * (np.log(value) - log_c))
            np.testing.assert_allclose(d[part].sel(area_code=area).values, expected, rtol=1e-9)
    untouched = [a for a in d["area_code"].values if a not in admin.index]
    for part in (*PARTS, "need", "insufficient"):
        np.testing.assert_allclose(d[part].sel(area_code=untouched).values,
                                   base[part].sel(area_code=untouched).values)
    assert bench.to_frame().attrs["benchmarked_to_admin"] is True


def test_benchmarking_with_uncertain_counts_keeps_their_spread(frame, survey, by_area) -> None:  # type: ignore[no-untyped-def]
    council = by_area.draws["council_funded"].mean("draw").to_series()
    admin = council.iloc[:3]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnmetneedWarning)
        exact = estimate(frame, survey, draws=400, seed=3, admin=admin)
        loose = estimate(frame, survey, draws=400, seed=3, admin=admin, admin_cv=0.05)
    for area in admin.index:
        sd_exact = float(np.log(exact.draws["council_funded"].sel(area_code=area)).std())
        sd_loose = float(np.log(loose.draws["council_funded"].sel(area_code=area)).std())
        sd_model = float(np.log(by_area.draws["council_funded"].sel(area_code=area)).std())
        assert sd_exact < 1e-12
        # Posterior SD of a Gaussian update: (1/sd_model^2 + 1/cv^2)^-1/2 (with Monte Carlo error).
        expected = (sd_model**-2 + 0.05**-2) ** -0.5
        assert sd_loose == pytest.approx(expected, rel=0.2)
    with pytest.raises(FrameError, match="admin_cv"):
        estimate(frame, survey, draws=10, admin=admin, admin_cv=-0.1)


def test_admin_far_from_the_model_warns(frame, survey, by_area) -> None:  # type: ignore[no-untyped-def]
    paid = (by_area.draws["council_funded"] + by_area.draws["self_funded"]).max("draw").to_series()
    admin = paid.iloc[:2] * 30.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", um.mrp.SingularFitWarning)
        with pytest.warns(BenchmarkWarning, match="posterior SDs") as record:
            bench = um.estimate_care_populations(frame, survey, formulas=FORMULAS, draws=200, seed=3, admin=admin)
    messages = [str(w.message) for w in record if issubclass(w.category, BenchmarkWarning)]
    assert len(messages) == 1 and str(admin.index[0]) in messages[0]
    d = bench.draws.sel(area_code=admin.index.tolist())
    for part in PARTS:
        assert (d[part].values >= 0).all()
    np.testing.assert_allclose(sum(d[p] for p in PARTS).values, d["need"].values, rtol=1e-12)
    assert set(bench.to_frame().attrs["admin_far_from_posterior"]) == set(admin.index.astype(str))


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


def test_one_draw_has_no_spread_and_is_not_ok(frame, survey) -> None:  # type: ignore[no-untyped-def]
    table = estimate(frame, survey, draws=1, seed=3).to_frame()
    assert table["se"].isna().all() and table["cv"].isna().all()
    assert table["ci_lower"].isna().all() and table["ci_upper"].isna().all()
    assert set(table["flag"]) == {"low_reliability"}


def test_basis_says_what_a_figure_rests_on(frame, survey, by_area) -> None:  # type: ignore[no-untyped-def]
    council = by_area.draws["council_funded"].mean("draw").to_series()
    admin = council.iloc[:3]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnmetneedWarning)
        bench = estimate(frame, survey, draws=100, seed=3, admin=admin).to_frame()
        loose = estimate(frame, survey, draws=100, seed=3, admin=admin, admin_cv=0.05).to_frame()
        full = estimate(frame, survey, draws=100, seed=3, admin=council, by=["age_band"]).to_frame()
        # a frame area nobody in the survey lives in
        fewer = survey[survey["area_code"] != survey["area_code"].iloc[0]]
        unseen = estimate(frame, fewer, draws=100, seed=3).to_frame()
    counted = bench["measure"].isin(["count", "rate_per_1000"])
    rows = bench[(bench["quantity"] == "council_funded") & counted].set_index("area_code")["basis"]
    assert set(rows[admin.index]) == {"admin"}
    assert set(rows.drop(admin.index)) == {"model"}
    assert set(bench.loc[bench["quantity"] != "council_funded", "basis"]) == {"model"}
    shares = bench[(bench["quantity"] == "council_funded") & ~counted]
    assert set(shares["basis"]) == {"model"}  # a share of the modelled need
    loose_rows = loose[(loose["quantity"] == "council_funded") & loose["measure"].eq("count")]
    assert set(loose_rows.set_index("area_code")["basis"][admin.index]) == {"admin"}
    by_age = full[(full["quantity"] == "council_funded") & full["measure"].eq("count")]["basis"]
    assert set(by_age) == {"admin_composition"}
    missing = unseen[unseen["area_code"] == survey["area_code"].iloc[0]]
    assert set(missing["basis"]) == {"model_no_respondents"} and (missing["n"] == 0).all()


def test_exact_admin_counts_are_published_without_rounding_noise(frame, survey, by_area) -> None:  # type: ignore[no-untyped-def]
    council = by_area.draws["council_funded"].mean("draw").to_series()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnmetneedWarning)
        bench = estimate(frame, survey, draws=100, seed=3, admin=council)
        england = estimate(frame, survey, draws=100, seed=3, admin=council, by=None)
    rows = bench.to_frame().query("quantity == 'council_funded' and measure == 'count'")
    assert (rows["se"] == 0).all() and (rows["ci_lower"] == rows["ci_upper"]).all()
    total = england.to_frame().query("quantity == 'council_funded' and measure == 'count'")
    assert total["estimate"].iloc[0] == pytest.approx(council.sum(), rel=1e-14)
    assert total["se"].iloc[0] == 0
    d = bench.draws
    np.testing.assert_allclose(sum(d[p] for p in PARTS).values, d["need"].values, rtol=1e-12)
