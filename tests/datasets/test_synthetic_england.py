"""The embedded synthetic England: contract, exact truth, checksums, reproducibility."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import unmetneed as um
from unmetneed.datasets import synthetic
from unmetneed.errors import ReadError

REPO = Path(__file__).resolve().parents[2]
REFERENCE = REPO / "data" / "reference"
AGE_BANDS = ["18-24", "25-34", "35-44", "45-54", "55-64", "65-74", "75-84", "85+"]
DISABILITY = ["Disabled: limited a lot", "Disabled: limited a little", "Not disabled"]
QUANTITIES = ["need", "council_funded", "self_funded", "unpaid_only", "unmet", "insufficient"]
PARTS = ["council_funded", "self_funded", "unpaid_only", "unmet"]
SETTINGS = ["household", "care_home", "all"]
TRUTH_TABLES = ("by_area", "by_age_band", "by_sex", "by_ethnic_group", "by_disability")
CELL_AXES = ["area_code", "age_band", "sex", "ethnic_group", "disability"]
N_COUNCILS = 152
N_CELLS = 152 * 8 * 2 * 19 * 3  # household cells: every combination
# Usual residents aged 18+ in England's 152 upper-tier councils, Census 2021 TS007
# (sum of single years 18..100+; England's all-age total is 56,490,045).
ENGLAND_ADULTS = 44_715_424


@pytest.fixture
def eng() -> synthetic.SyntheticEngland:
    return um.datasets.load_synthetic_england()


def _wide(table: pd.DataFrame, key: str, setting: str = "all") -> pd.DataFrame:
    rows = table[table["setting"] == setting]
    return rows.pivot(index=key, columns="quantity", values="value")


def _england(eng, setting: str = "all") -> pd.Series:
    table = eng.truth["england"]
    return table[table["setting"] == setting].set_index("quantity")["value"]


def _ethnic_groups() -> list[str]:
    categories = pd.read_csv(REPO / "src" / "unmetneed" / "harmonise" / "maps" / "categories.csv")
    return categories.loc[categories["variable"] == "ethnic_group", "category"].tolist()


def test_loader_returns_the_contract(eng):
    assert isinstance(eng, synthetic.SyntheticEngland)
    with pytest.raises(AttributeError):
        eng.truth = {}  # frozen
    frame = eng.population
    assert isinstance(frame, um.PopulationFrame)
    cells = frame.cells
    household = cells["setting"] == "household"
    # every combination in households; care-home cells only where there are residents
    assert household.sum() == N_CELLS
    assert (cells.loc[~household, "count"] > 0).all()
    assert frame.total == ENGLAND_ADULTS
    assert list(cells.columns) == ["area_code", "age_band", "sex", "ethnic_group", "disability",
                                   "setting", "deprivation", "owner_occupation", "count"]
    assert list(cells["setting"].cat.categories) == ["household", "care_home"]
    assert cells["count"].dtype == np.int64
    assert cells["deprivation"].dtype == np.float64
    assert cells["owner_occupation"].dtype == np.float64
    assert cells["area_code"].nunique() == N_COUNCILS
    expected = {"age_band": AGE_BANDS, "sex": ["Female", "Male"],
                "ethnic_group": _ethnic_groups(), "disability": DISABILITY}
    for column, categories in expected.items():
        assert isinstance(cells[column].dtype, pd.CategoricalDtype)
        assert cells[column].cat.ordered
        assert list(cells[column].cat.categories) == categories
    assert len(expected["ethnic_group"]) == 19
    councils = pd.read_csv(REFERENCE / "councils.csv", dtype=str)
    assert eng.areas["area_code"].tolist() == councils["area_code"].tolist()
    assert eng.areas["area_name"].tolist() == councils["area_name"].tolist()
    assert eng.areas["region_code"].nunique() == 9
    assert abs(eng.areas["deprivation"].mean()) < 1e-3
    assert abs(eng.areas["deprivation"].std(ddof=0) - 1) < 1e-3
    assert set(eng.truth) == {"by_area", "by_age_band", "by_sex", "by_ethnic_group",
                              "by_disability", "england", "care_homes_by_area"}
    assert list(eng.truth["by_area"].columns) == ["area_code", "setting", "quantity", "value"]
    for variable in ("age_band", "sex", "ethnic_group", "disability"):
        assert list(eng.truth[f"by_{variable}"].columns) == [variable, "setting", "quantity",
                                                             "value"]
    england = eng.truth["england"]
    assert list(england.columns) == ["setting", "quantity", "value"]
    assert list(england["quantity"]) == QUANTITIES * 3
    assert list(england["setting"].cat.categories) == SETTINGS
    assert eng.metadata["generator_version"] == synthetic.GENERATOR_VERSION == 2
    assert set(eng.surveys) == {"general", "ascs", "sace"}
    assert all(isinstance(d, um.SurveyDesign) for d in eng.surveys.values())
    assert list(eng.admin.columns) == ["area_code", "area_name", "age_group", "setting", "count"]
    assert "SyntheticEngland" in repr(eng)


def test_adults_by_council_and_age_band_are_census_2021(eng):
    inputs = pd.read_csv(REFERENCE / "synthetic" / "council_inputs.csv", dtype={"area_code": str})
    totals = eng.population.totals(["area_code", "age_band"]).unstack()
    np.testing.assert_array_equal(
        totals.loc[inputs["area_code"], AGE_BANDS].to_numpy(),
        inputs[AGE_BANDS].to_numpy())


def test_ethnicity_varies_by_area_and_disability_rises_with_age(eng):
    cells = eng.population.cells
    british = cells["ethnic_group"] == "White: English, Welsh, Scottish, Northern Irish or British"
    share = (cells["count"].where(british, 0).groupby(cells["area_code"]).sum()
             / cells.groupby("area_code")["count"].sum())
    for diverse in ("E09000025", "E06000016", "E08000025"):  # Newham, Leicester, Birmingham
        assert share[diverse] < 0.55
    for rural in ("E06000057", "E10000006", "E06000052"):  # Northumberland, Cumbria, Cornwall
        assert share[rural] > 0.9
    disabled = cells["count"].where(cells["disability"] != "Not disabled", 0)
    rate = disabled.groupby(cells["age_band"], observed=True).sum() / cells.groupby(
        "age_band", observed=True)["count"].sum()
    assert (np.diff(rate.to_numpy()) > 0).all()
    assert rate["85+"] > 3 * rate["18-24"]


def test_parts_add_up_to_need_exactly(eng):
    for name in TRUTH_TABLES:
        table = eng.truth[name]
        for setting in SETTINGS:
            wide = _wide(table, table.columns[0], setting)
            # exact equality: values are whole multiples of 1/1024
            assert (wide[PARTS].sum(axis=1) == wide["need"]).all(), (name, setting)
            helped = wide[["council_funded", "self_funded", "unpaid_only"]].sum(axis=1)
            assert (wide["insufficient"] <= helped).all(), (name, setting)
            assert (wide.to_numpy() >= 0).all()
    for setting in SETTINGS:
        england = _england(eng, setting)
        assert england[PARTS].sum() == england["need"]


def test_all_is_household_plus_care_home_in_every_truth_table(eng):
    for name in (*TRUTH_TABLES, "england"):
        table = eng.truth[name]
        key = [c for c in table.columns if c not in ("setting", "value")]
        wide = table.pivot_table(index=key, columns="setting", values="value", observed=True)
        assert len(wide) == len(table) // 3, name
        # exact: values are multiples of 1/1024
        assert (wide["household"] + wide["care_home"] == wide["all"]).all(), name


def test_care_home_truth_is_residents_funded_by_council_or_themselves(eng):
    for name in TRUTH_TABLES:
        table = eng.truth[name]
        wide = _wide(table, table.columns[0], "care_home")
        assert (wide["unpaid_only"] == 0).all() and (wide["unmet"] == 0).all(), name
        assert (wide["council_funded"] + wide["self_funded"] == wide["need"]).all(), name
        # whole residents
        assert (wide["need"] == np.round(wide["need"])).all(), name
    cells = eng.population.cells
    residents = cells[cells["setting"] == "care_home"].groupby("area_code")["count"].sum()
    need = _wide(eng.truth["by_area"], "area_code", "care_home")["need"]
    np.testing.assert_array_equal(need.loc[residents.index].to_numpy(), residents.to_numpy())
    assert need.drop(residents.index).eq(0).all()


def test_settings_add_up_to_the_all_adult_cells(eng):
    cells = eng.population.cells
    summed = cells.groupby(CELL_AXES, observed=True)["count"].sum()
    assert len(summed) == N_CELLS
    frame = eng.census["age_band_sex"].set_index(["area_code", "age_band", "sex"])["count"]
    by = summed.groupby(level=[0, 1, 2], observed=True).sum()
    np.testing.assert_array_equal(by.loc[frame.index].to_numpy(), frame.to_numpy())
    # care-home residents are people with need, so never more than the cell's need
    household = cells[cells["setting"] == "household"].set_index(CELL_AXES)["count"]
    assert (household >= 0).all()
    summary = eng.metadata["summary"]
    assert summary["household_adults"] + summary["care_home_residents"] == ENGLAND_ADULTS


def test_councils_differ_beyond_their_covariates(eng):
    effects = eng.area_effects.set_index("area_code")
    # the requirement: council SD on the logit >= 0.25 for need and self-funding
    for component in ("need", "council"):
        assert effects[component].std(ddof=0) >= 0.25, component
        assert eng.metadata["model_parameters"][component]["area_sd"] == 0.30
        # covariates carry less than half of the council-level variance
        assert eng.metadata["covariate_share_of_council_variance"][component] < 0.5
    drawn = eng.metadata["area_effect_sd_drawn"]
    assert drawn["need"] == pytest.approx(effects["need"].std(ddof=0), abs=1e-4)
    assert effects["support_unmet"].std(ddof=0) > 0.2


def test_owner_occupation_is_census_tenure(eng):
    cells = eng.population.cells
    own = cells["owner_occupation"]
    assert own.between(0, 1).all()
    areas = eng.areas.set_index("area_code")["owner_occupation"]
    np.testing.assert_array_equal(own.to_numpy(), areas.loc[cells["area_code"]].to_numpy())
    inputs = pd.read_csv(REFERENCE / "synthetic" / "council_inputs.csv", dtype={"area_code": str})
    np.testing.assert_array_equal(areas.loc[inputs["area_code"]].to_numpy(),
                                  inputs["owner_occupation"].to_numpy())
    # TS054: owned / all households; England about 62%, London boroughs far lower
    assert 0.5 < areas.median() < 0.7
    assert areas["E09000030"] < 0.35  # Tower Hamlets
    covariate = eng.care_homes.areas.set_index("area_code")["owner_occupied_share"]
    np.testing.assert_allclose(covariate.loc[areas.index], areas, atol=5e-5)
    # higher owner occupation, fewer council-funded among people with paid care
    paid = _wide(eng.truth["by_area"], "area_code")
    share = paid["council_funded"] / (paid["council_funded"] + paid["self_funded"])
    assert np.corrcoef(areas.loc[share.index], share)[0, 1] < -0.2


def test_truth_totals_are_consistent_with_the_population(eng):
    england = _england(eng)
    for name, variable in (("by_area", "area_code"), ("by_age_band", "age_band"),
                           ("by_sex", "sex"), ("by_ethnic_group", "ethnic_group"),
                           ("by_disability", "disability")):
        wide = _wide(eng.truth[name], variable)
        pd.testing.assert_series_equal(wide.sum(), england.loc[wide.columns],
                                       check_names=False, rtol=0, atol=0)
        population = eng.population.totals(variable)
        assert (wide["need"] <= population.loc[wide.index].to_numpy()).all()
    assert set(_wide(eng.truth["by_area"], "area_code").index) == set(eng.areas["area_code"])
    # published orders of magnitude (README): need among 65+ ~ 26-28% (HSE 2021),
    # council-funded 65+ ~ 540,000 (2022-23), care-home self-funders 37% (ONS 2022-23)
    summary = eng.metadata["summary"]
    assert 0.2 < summary["need_share_65_plus"] < 0.35
    assert 400_000 < summary["council_funded_65_plus"] < 700_000
    assert 0.25 < summary["care_home_self_funded_share"] < 0.5
    assert 0.15 < summary["unmet_or_insufficient_share_65_plus"] < 0.3


def test_truth_files_have_the_published_columns():
    table = pd.read_csv(REFERENCE / "truth_by_area.csv", dtype={"area_code": str})
    assert list(table.columns) == ["area_code", "setting", "quantity", "value"]
    assert len(table) == N_COUNCILS * len(SETTINGS) * len(QUANTITIES)
    for variable in ("age_band", "sex", "ethnic_group", "disability"):
        table = pd.read_csv(REFERENCE / f"truth_by_{variable}.csv")
        assert list(table.columns) == [variable, "setting", "quantity", "value"]


def test_census_tables_sum_to_the_population(eng):
    adults = eng.areas.set_index("area_code")["adults"]
    for name, table in eng.census.items():
        assert list(table.columns[:2]) == ["area_code", "area_name"], name
        assert table.columns[-1] == "count"
        assert table["count"].dtype == np.int64
        for variable in table.columns[2:-1]:
            assert isinstance(table[variable].dtype, pd.CategoricalDtype)
            assert table[variable].cat.ordered
        sums = table.groupby("area_code")["count"].sum()
        pd.testing.assert_series_equal(sums, adults.loc[sums.index], check_names=False)
    cross = eng.census["age_band_sex"].groupby(["area_code", "age_band", "sex"],
                                               observed=True)["count"].sum()
    frame = eng.population.totals(["area_code", "age_band", "sex"])
    np.testing.assert_array_equal(cross.to_numpy(), frame.loc[cross.index].to_numpy())


def test_ons_layout_files_read_back_equal_to_the_tidy_tables(eng):
    from unmetneed.harmonise import harmonise

    folder = REFERENCE / "synthetic"
    age = um.io.read_census_table(folder / "census2021-ts007-utla-adults.csv")
    assert age.attrs["layout"] == "nomis_bulk"
    ethnic = um.io.read_census_table(folder / "custom-ethnic-group-20-utla-adults.csv")
    assert ethnic.attrs["layout"] == "ons_custom"
    care = um.io.read_census_table(folder / "census2021-ts039-utla-adults.csv")
    for read, name in ((harmonise(age, "age_band"), "age_band"),
                       (harmonise(ethnic, "ethnic_group"), "ethnic_group"),
                       (care, "unpaid_care")):
        pd.testing.assert_frame_equal(read.reset_index(drop=True),
                                      eng.census[name].reset_index(drop=True))


def test_surveys_construct_and_weighted_totals_are_in_range(eng):
    england = _england(eng)
    households = _england(eng, "household")
    summary = eng.metadata["summary"]
    general = eng.surveys["general"]
    assert 11_000 <= general.n <= 13_000
    assert general.n_strata == 9 and general.n_psus > 500
    # the household survey samples private households only: weights add up to them
    household = summary["household_adults"]
    assert abs(general.weights.sum() / household - 1) < 1e-3
    need = general.total("need").to_frame().iloc[0]
    assert abs(need["estimate"] - households["need"]) < 4 * need["se"]
    paid = general.total("council_funded").to_frame().iloc[0]
    assert abs(paid["estimate"] - households["council_funded"]) < 4 * paid["se"]
    share = general.ratio("self_funded", "paid_help").to_frame().iloc[0]
    assert 0.15 < share["estimate"] < 0.5
    data = general.data
    assert data.loc[data["need"] == 0, "help"].isna().all()
    assert data.loc[data["need"] == 1, "help"].notna().all()
    assert data.loc[data["help"] == "paid", "payer"].notna().all()
    assert data.loc[data["help"] != "paid", "payer"].isna().all()
    np.testing.assert_allclose(data["weight"], data["design_weight"]
                               * data["nonresponse_adjustment"], rtol=1e-5)

    ascs = eng.surveys["ascs"]
    # weights are stored to 4 decimals
    assert ascs.weights.sum() == pytest.approx(eng.admin["count"].sum(), rel=1e-6)
    assert ascs.weights.sum() == pytest.approx(england["council_funded"], rel=1e-3)
    assert set(ascs.data["payer"].unique()) == {"council", "both"}
    # both settings: council-funded care-home residents and people at home
    assert set(ascs.data["setting"].astype(str)) == {"residential", "community"}
    rates = eng.metadata["surveys"]
    assert 0.3 <= rates["ascs"]["response_rate"] <= 0.4
    per_stratum = ascs.data.groupby("stratum").agg(r=("fpc", "size"), fpc=("fpc", "first"))
    assert (per_stratum["r"] >= 2).all() and (per_stratum["fpc"] >= per_stratum["r"]).all()
    weights = ascs.data.groupby("stratum")["weight"].first()
    np.testing.assert_allclose(weights, per_stratum["fpc"] / per_stratum["r"], atol=1e-4)

    sace = eng.surveys["sace"]
    known = 0.40 * england["council_funded"] + 0.06 * england["unpaid_only"]
    assert sace.weights.sum() == pytest.approx(known, rel=0.02)
    assert "Provides no unpaid care" not in set(sace.data["unpaid_care"].astype(str))
    assert sace.mean("carer_qol").to_frame()["estimate"].iloc[0] == pytest.approx(7, abs=1.5)
    assert sace.data["support_unmet"].dtype == bool
    unmet = sace.data["support_unmet"].astype(np.int64)
    assert 0.2 < unmet.mean() < 0.6
    # more hours, more unmet support needs (the documented logit)
    by_hours = unmet.groupby(sace.data["unpaid_care"].astype(str)).mean()
    assert (by_hours["Provides 50 or more hours unpaid care a week"]
            > by_hours["Provides 9 hours or less unpaid care a week"])


def test_admin_counts_equal_the_council_funded_truth(eng):
    admin = eng.admin.pivot_table(index=["area_code", "age_group"], columns="setting",
                                  values="count", observed=True)
    assert eng.admin["count"].dtype == np.int64
    # residential = council-funded care-home residents (whole people: exact)
    homes = eng.truth["by_area"]
    homes = homes[(homes["setting"] == "care_home") & (homes["quantity"] == "council_funded")]
    residential = admin["residential"].groupby(level=0).sum()
    np.testing.assert_array_equal(
        residential.to_numpy(),
        homes.set_index("area_code")["value"].loc[residential.index].to_numpy())
    # community = household council_funded by council and age group, rounded to a person
    cells = eng.truth["by_area"]
    household = _wide(cells, "area_code", "household")["council_funded"]
    community = admin["community"].groupby(level=0).sum()
    assert ((community - household.loc[community.index]).abs() <= 1.0).all()
    by_age = eng.truth["by_age_band"]
    by_age = by_age[(by_age["setting"] == "household") & (by_age["quantity"] == "council_funded")]
    older = by_age["age_band"].isin(["65-74", "75-84", "85+"]).to_numpy()
    totals = admin["community"].groupby(level=1, observed=True).sum()
    assert abs(totals["65+"] - by_age["value"][older].sum()) <= 0.5 * N_COUNCILS
    assert abs(totals["18-64"] - by_age["value"][~older].sum()) <= 0.5 * N_COUNCILS
    read = um.io.read_admin_counts(REFERENCE / "synthetic" / "admin_council_funded.csv",
                                   by=["age_group", "setting"])
    assert read["count"].sum() == eng.admin["count"].sum()


def _copy_reference(target: Path) -> Path:
    manifest = json.loads((REFERENCE / "synthetic" / "MANIFEST.json").read_text())
    for relative in [*manifest["files"], "synthetic/MANIFEST.json"]:
        destination = target / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(REFERENCE / relative, destination)
    return target


def test_checksums_are_verified(tmp_path):
    root = _copy_reference(tmp_path)
    assert um.datasets.load_synthetic_england(directory=root).population.total == ENGLAND_ADULTS
    truth = root / "truth_by_area.csv"
    text = truth.read_text().replace("need,", "need,1", 1)
    truth.write_text(text)
    with pytest.raises(ReadError, match=r"altered.*truth_by_area\.csv"):
        um.datasets.load_synthetic_england(directory=root)
    (root / "synthetic" / "survey_sace.csv.gz").unlink()
    with pytest.raises(ReadError, match=r"missing: synthetic/survey_sace\.csv\.gz"):
        um.datasets.load_synthetic_england(directory=root)
    (root / "synthetic" / "MANIFEST.json").unlink()
    with pytest.raises(ReadError, match="manifest"):
        um.datasets.load_synthetic_england(directory=root)


def test_regenerating_with_the_seed_reproduces_the_committed_files(tmp_path):
    manifest = json.loads((REFERENCE / "synthetic" / "MANIFEST.json").read_text())
    assert manifest["seed"] == synthetic.SEED
    written = synthetic.write_synthetic_england(tmp_path, seed=synthetic.SEED)
    fresh = json.loads(written["manifest"].read_text())
    # compressed bytes could differ with another zlib; the content must not
    for relative, info in manifest["files"].items():
        assert fresh["files"][relative]["content_sha256"] == info["content_sha256"], relative
        if not relative.endswith(".gz"):
            digest = hashlib.sha256((tmp_path / relative).read_bytes()).hexdigest()
            assert digest == info["sha256"], relative
    assert fresh["summary"] == manifest["summary"]


def _assert_same(left: pd.DataFrame, right: pd.DataFrame) -> None:
    """Frames equal column by column (assert_frame_equal is slow on large categoricals)."""
    assert list(left.columns) == list(right.columns)
    assert left.dtypes.equals(right.dtypes)
    for column in left.columns:
        a, b = left[column], right[column]
        if isinstance(a.dtype, pd.CategoricalDtype):
            np.testing.assert_array_equal(a.cat.codes.to_numpy(), b.cat.codes.to_numpy(), column)
        else:
            assert a.equals(b), column


def test_generated_object_equals_the_loaded_one(eng):
    fresh = synthetic.generate_synthetic_england()
    _assert_same(fresh.population.cells, eng.population.cells)
    for name in eng.truth:
        pd.testing.assert_frame_equal(fresh.truth[name], eng.truth[name])
    for name in eng.census:
        _assert_same(fresh.census[name], eng.census[name])
    for name in eng.surveys:
        _assert_same(fresh.surveys[name].data, eng.surveys[name].data)
    _assert_same(fresh.admin, eng.admin)
    other = synthetic.generate_synthetic_england(seed=1)
    assert not other.truth["england"].equals(eng.truth["england"])
    with pytest.raises(ValueError, match="seed"):
        synthetic.generate_synthetic_england(seed=-1)


def test_general_survey_samples_the_household_cells_only():
    from unmetneed.datasets import _synthetic_model as model_module
    from unmetneed.datasets import _synthetic_surveys as surveys

    inputs = synthetic._default_inputs()
    streams = [np.random.default_rng(s) for s in np.random.SeedSequence(5).spawn(4)]
    population = model_module.build_population(inputs, streams[0])
    effects = model_module.draw_area_effects(len(inputs.areas), streams[1])
    model = model_module.care_model(population.deprivation, effects, inputs.areas["area_code"],
                                    owner_occupation=model_module.standardise(
                                        inputs.owner_occupation))
    settings = model_module.draw_settings(population.counts, model, streams[2])
    assert (settings.household + settings.care_home == population.counts).all()
    household = settings.household.copy()
    household[:, 7] = 0  # nobody aged 85+ at home: the survey must find none
    survey = surveys.general_survey(inputs, population, model, streams[3], household=household)
    assert len(survey) > 10_000
    assert (survey["age_band"] != "85+").all()
    assert survey["weight"].sum() == pytest.approx(household.sum(), rel=1e-3)
