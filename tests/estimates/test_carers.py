"""estimate_carers: census carers, carers known to councils (SACE frames), unmet support needs."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import unmetneed as um
from unmetneed.errors import DesignError, MissingColumnError
from unmetneed.estimates.carers import ALL_CARERS, ENGLAND, KnownExceedsCensusWarning

BANDS = list(um.io.UNPAID_CARE_BANDS)
COUNCILS = ["E06000001", "E06000002", "E06000003", "E08000001"]


def make_inputs(seed: int = 3, frames=(400, 1500, 60, 3000), carers=(3000, 9000, 700, 20000),
                p=(0.2, 0.4, 0.3, 0.5), fraction: float = 0.15, councils=COUNCILS):
    """Census by council and band; a SACE-like SRS per council (weights K / n, fpc K)."""
    rng = np.random.default_rng(seed)
    census_rows, survey = [], []
    for code, K, C, pa in zip(councils, frames, carers, p):
        split = rng.multinomial(C, [0.45, 0.2, 0.12, 0.06, 0.17])
        census_rows += [(code, b, c) for b, c in zip(BANDS, [C * 9, *split])]
        n = min(K, int(np.ceil(fraction * K)) + 10)
        band = rng.choice(BANDS[1:], size=n, p=[0.25, 0.15, 0.15, 0.1, 0.35])
        survey.append(pd.DataFrame({"area_code": code, "unpaid_care": band,
                                    "support_unmet": rng.random(n) < pa, "fpc": K,
                                    "weight": K / n}))
    census = pd.DataFrame(census_rows, columns=["area_code", "unpaid_care", "count"])
    data = pd.concat(survey, ignore_index=True)
    return census, data


def design_of(data: pd.DataFrame, strata: str = "area_code") -> um.SurveyDesign:
    return um.SurveyDesign(data, weights="weight", strata=strata, fpc="fpc")


def rows(table: pd.DataFrame, quantity: str, band: str = ALL_CARERS) -> pd.DataFrame:
    out = table[(table["quantity"] == quantity) & (table["unpaid_care"] == band)]
    return out.set_index("area_code")


def test_columns_and_sums() -> None:
    census, data = make_inputs()
    table = um.estimate_carers(census, design_of(data), seed=1).to_frame()
    assert table.columns.tolist() == ["area_code", "unpaid_care", "quantity", "estimate", "se",
                                      "ci_lower", "ci_upper", "cv", "n", "basis"]
    carers = rows(table, "carers")["estimate"]
    expected = census[census["unpaid_care"] != BANDS[0]].groupby("area_code")["count"].sum()
    assert carers.loc[COUNCILS].tolist() == expected.loc[COUNCILS].astype(float).tolist()
    known = rows(table, "carers_known")["estimate"]
    assert known.loc[COUNCILS].tolist() == [400.0, 1500.0, 60.0, 3000.0]
    unknown = rows(table, "carers_unknown")["estimate"]
    np.testing.assert_allclose(unknown, carers - known)
    np.testing.assert_allclose(rows(table, "carers_known_share")["estimate"], known / carers)
    for quantity in ("carers", "carers_known", "carers_unknown", "carers_support_unmet"):
        r = rows(table, quantity)["estimate"]
        assert r.loc[ENGLAND] == pytest.approx(r.loc[COUNCILS].sum(), rel=1e-12)
        # the bands add up to all carers (every SACE respondent is in a carer band)
        by_band = sum(rows(table, quantity, b)["estimate"] for b in BANDS[1:])
        np.testing.assert_allclose(by_band, r, rtol=1e-10)
    admin = table[table["quantity"].isin(["carers"])]
    assert (admin["basis"] == "admin").all() and (admin["se"] == 0).all()
    assert (rows(table, "carers_support_unmet")["basis"] == "direct").all()
    n = rows(table, "carers")["n"]
    assert n.loc[COUNCILS].tolist() == data.groupby("area_code").size().loc[COUNCILS].tolist()
    assert n.loc[ENGLAND] == len(data)


def test_unmet_is_known_times_the_design_proportion_with_beta_bounds() -> None:
    census, data = make_inputs()
    design = design_of(data)
    res = um.estimate_carers(census, design, band=None, level=0.9, seed=2)
    table = rows(res.to_frame(), "carers_support_unmet").loc[COUNCILS]
    prop = design.assign(u=data["support_unmet"].astype(int)).proportion(
        "u", by="area_code", ci="beta", level=0.9).to_frame()
    prop = prop[prop["u"] == 1].set_index("area_code").loc[COUNCILS]
    K = np.array([400.0, 1500.0, 60.0, 3000.0])
    np.testing.assert_allclose(table["estimate"], K * prop["estimate"], rtol=1e-12)
    np.testing.assert_allclose(table["se"], K * prop["se"], rtol=1e-12)
    np.testing.assert_allclose(table["ci_lower"], K * prop["ci_lower"], rtol=1e-12)
    np.testing.assert_allclose(table["ci_upper"], K * prop["ci_upper"], rtol=1e-12)
    assert set(table.index) | {ENGLAND} == set(res.draws["carers_support_unmet"].area_code.values)


def test_intervals_stay_within_zero_and_known_even_at_zero_and_one() -> None:
    census, data = make_inputs(p=(0.0, 0.4, 1.0, 0.02), frames=(40, 1500, 25, 3000))
    res = um.estimate_carers(census, design_of(data), seed=4)
    table = res.to_frame()
    unmet = table[table["quantity"] == "carers_support_unmet"]
    known = rows(table, "carers_known")["estimate"]
    for band in [ALL_CARERS, *BANDS[1:]]:
        part = unmet[unmet["unpaid_care"] == band].set_index("area_code")
        assert (part["ci_lower"] >= 0).all()
        assert (part["ci_upper"] <= known.loc[part.index] + 1e-9).all()
        assert (part["ci_lower"] <= part["estimate"]).all()
        assert (part["estimate"] <= part["ci_upper"]).all()
    zero = rows(table, "carers_support_unmet").loc["E06000001"]
    assert zero["estimate"] == 0 and zero["ci_lower"] == 0 and zero["ci_upper"] > 0
    draws = res.draws["carers_support_unmet"].values
    assert (draws >= 0).all()
    assert (draws[:, :4] <= np.array([40, 1500, 25, 3000]) + 1e-9).all()


def test_draw_quantiles_are_the_interval() -> None:
    census, data = make_inputs()
    res = um.estimate_carers(census, design_of(data), band=None, draws=40_000, seed=5)
    table = rows(res.to_frame(), "carers_support_unmet").loc[COUNCILS]
    draws = res.draws["carers_support_unmet"].sel(area_code=COUNCILS).values
    lo, hi = np.quantile(draws, [0.05, 0.95], axis=0)
    known = np.array([400.0, 1500.0, 60.0, 3000.0])
    np.testing.assert_allclose(lo / known, table["ci_lower"] / known, atol=0.005)
    np.testing.assert_allclose(hi / known, table["ci_upper"] / known, atol=0.005)
    summary = res.draw_estimates().to_frame()
    assert set(summary["quantity"]) == set(um.estimates.CARER_QUANTITIES)


def test_known_above_census_is_kept_and_named() -> None:
    census, data = make_inputs(frames=(400, 1500, 900, 3000), carers=(3000, 9000, 700, 20000))
    with pytest.warns(KnownExceedsCensusWarning, match=r"E06000003 \(known 900, census 700\)"):
        table = um.estimate_carers(census, design_of(data), seed=6).to_frame()
    assert rows(table, "carers_unknown").loc["E06000003", "estimate"] == -200
    assert rows(table, "carers_known_share").loc["E06000003", "estimate"] > 1


def test_admin_known_counts() -> None:
    census, data = make_inputs()
    known = pd.Series([420, 1400, 70, 3100], index=COUNCILS)
    design = design_of(data).assign(fpc_free=0)  # the design is not consulted for frames
    table = um.estimate_carers(census, design, known=known, band=None, seed=7).to_frame()
    assert rows(table, "carers_known")["estimate"].loc[COUNCILS].tolist() == [420, 1400, 70, 3100]
    assert (rows(table, "carers_known")["basis"] == "admin").all()
    base = um.estimate_carers(census, design_of(data), band=None, seed=7).to_frame()
    ratio = (rows(table, "carers_support_unmet")["estimate"].loc[COUNCILS]
             / rows(base, "carers_support_unmet")["estimate"].loc[COUNCILS])
    np.testing.assert_allclose(ratio, [420 / 400, 1400 / 1500, 70 / 60, 3100 / 3000])
    with pytest.raises(DesignError, match="lacks councils"):
        um.estimate_carers(census, design_of(data), known=known.iloc[:3])
    with pytest.raises(DesignError, match="negative"):
        um.estimate_carers(census, design_of(data), known=known.replace(70, -1))


def test_collapsed_stratum_splits_the_frame() -> None:
    census, data = make_inputs(frames=(400, 1500, 30, 3000))
    merged = data.assign(stratum=data["area_code"].replace({"E06000003": "E06000002"}))
    merged.loc[merged["stratum"] == "E06000002", "fpc"] = 1530
    w = 1530 / (merged["stratum"] == "E06000002").sum()
    merged.loc[merged["stratum"] == "E06000002", "weight"] = w
    res = um.estimate_carers(census, design_of(merged, "stratum"), band=None, seed=8)
    known = rows(res.to_frame(), "carers_known")
    assert known.loc[["E06000002", "E06000003"], "estimate"].sum() == pytest.approx(1530)
    assert known.loc[["E06000002", "E06000003"], "basis"].tolist() == ["direct", "direct"]
    assert (known.loc[["E06000002", "E06000003"], "se"] > 0).all()
    assert known.loc["E06000001", "basis"] == "admin"
    assert res.info["estimated_frames"] == ["E06000002", "E06000003"]
    # the split adds up to the merged frame, so England's known carers are exact
    assert known.loc[ENGLAND, "estimate"] == pytest.approx(400 + 1530 + 3000)
    assert known.loc[ENGLAND, "se"] == 0 and known.loc[ENGLAND, "basis"] == "admin"
    pair = res.draws["carers_known"].sel(area_code=["E06000002", "E06000003"]).values
    np.testing.assert_allclose(pair.sum(axis=1), 1530)


@pytest.mark.parametrize(
    ("census_change", "data_change", "error", "match"),
    [
        (lambda c: c.drop(columns="count"), None, MissingColumnError, "'count'"),
        (None, lambda d: d.drop(columns="support_unmet"), MissingColumnError, "'support_unmet'"),
        (None, lambda d: d.drop(columns="unpaid_care"), KeyError, "'unpaid_care'"),
        (lambda c: c.assign(count=c["count"].where(c.index != 3, -4)), None, DesignError,
         "negative"),
        (lambda c: c[c["area_code"] != "E08000001"], None, DesignError,
         r"not in the census: \['E08000001'\]"),
        (None, lambda d: d[d["area_code"] != "E08000001"], DesignError,
         r"no SACE respondents: \['E08000001'\]"),
        (None, lambda d: d.assign(support_unmet=d["support_unmet"].astype(int) * 2), DesignError,
         "boolean or 0/1"),
        (None, lambda d: d.assign(support_unmet=d["support_unmet"].where(d.index != 0)),
         DesignError, "missing"),
        (lambda c: c.assign(unpaid_care=c["unpaid_care"].replace({BANDS[1]: "Total"})), None,
         DesignError, "not TS039 bands"),
        (lambda c: pd.concat([c, c.iloc[[0]]]), None, DesignError, "repeated"),
    ],
)
def test_bad_input(census_change, data_change, error, match) -> None:
    census, data = make_inputs()
    if census_change is not None:
        census = census_change(census)
    if data_change is not None:
        data = data_change(data)
    with pytest.raises(error, match=match):
        um.estimate_carers(census, design_of(data))


def test_no_frame_sizes_asks_for_known() -> None:
    census, data = make_inputs()
    design = um.SurveyDesign(data, weights="weight", strata="area_code")
    with pytest.raises(DesignError, match="pass known="):
        um.estimate_carers(census, design)
    with pytest.raises(DesignError, match="draws"):
        um.estimate_carers(census, design_of(data), draws=0)


def test_repr_and_seed() -> None:
    census, data = make_inputs()
    a = um.estimate_carers(census, design_of(data), seed=11)
    b = um.estimate_carers(census, design_of(data), seed=11)
    assert a.draws.equals(b.draws)
    assert "not surveyed" in repr(a) and "<table" in a._repr_html_()
    assert a.to_frame().attrs["level"] == 0.9


def test_small_simulation_covers_at_the_nominal_rate() -> None:
    """Sixty surveys of one population: 90% intervals of council unmet counts cover 0.85-0.96.

    Fails if the intervals are too narrow (a Wald interval on few respondents,
    a missing finite-population correction) or too wide.
    """
    rng = np.random.default_rng(2026)
    frames = np.array([50, 120, 400, 900, 2500, 5000])
    councils = [f"E0600001{i}" for i in range(len(frames))]
    unmet = [rng.random(K) < p for K, p in zip(frames, [0.15, 0.5, 0.3, 0.4, 0.25, 0.35])]
    truth = np.array([u.sum() for u in unmet], dtype=float)
    census = pd.DataFrame([(c, b, 10 * K if b == BANDS[0] else 2 * K)
                           for c, K in zip(councils, frames) for b in BANDS],
                          columns=["area_code", "unpaid_care", "count"])
    hits, totals = [], []
    for _ in range(60):
        parts = []
        for code, K, u in zip(councils, frames, unmet):
            n = min(K, int(np.ceil(0.11 * K)) + 20)
            sampled = rng.choice(K, n, replace=False)
            sampled = sampled[rng.random(n) < 0.45]  # non-response, ignorable within council
            parts.append(pd.DataFrame({"area_code": code, "support_unmet": u[sampled],
                                       "fpc": K, "weight": K / len(sampled)}))
        design = design_of(pd.concat(parts, ignore_index=True))
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            table = um.estimate_carers(census, design, band=None, draws=1, seed=0).to_frame()
        t = rows(table, "carers_support_unmet")
        council = t.loc[councils]
        hits.append(((council["ci_lower"] <= truth) & (truth <= council["ci_upper"])).to_numpy())
        totals.append(t.loc[ENGLAND, "estimate"])
    coverage = np.mean(hits)
    assert 0.85 <= coverage <= 0.96, coverage
    assert abs(np.mean(totals) / truth.sum() - 1) < 0.02
