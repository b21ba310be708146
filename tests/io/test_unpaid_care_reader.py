"""read_unpaid_care_msoa: Census 2021 TS039 for MSOAs, summed to LAD22 through the ONS lookup.

The real file is used when ``../shared/reference-data`` exists beside the
repository; otherwise the committed fixture ``data/ts039_msoa_derived.csv``:
eight MSOAs (three of Hartlepool, three of Middlesbrough, two of Cardiff) whose
counts are the real ones divided by 7 and rounded, with ``total`` recomputed,
and the matching rows of the lookup (``data/msoa21_to_lad22_derived.csv``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import unmetneed as um
from unmetneed.errors import ReadError, UnmetneedError

HERE = Path(__file__).resolve().parent
SHARED = HERE.parents[1].parent / "shared" / "reference-data"
REAL = SHARED / "msoa_provision_of_unpaid_care_2021_data.csv"
REAL_LOOKUP = SHARED / "MSOA11_to_MSOA21_to_LAD22_EW.csv"
FIXTURE = HERE / "data" / "ts039_msoa_derived.csv"
FIXTURE_LOOKUP = HERE / "data" / "msoa21_to_lad22_derived.csv"
HAVE_REAL = REAL.is_file() and REAL_LOOKUP.is_file()
# SOURCES.md: England sums to 4.68m carers out of 53.41m usual residents aged 5+.
ENGLAND_CARERS, ENGLAND_RESIDENTS = 4_678_238, 53_413_057


@pytest.fixture
def files() -> tuple[Path, Path]:
    return (REAL, REAL_LOOKUP) if HAVE_REAL else (FIXTURE, FIXTURE_LOOKUP)


def test_labels_are_the_synthetic_englands() -> None:
    from unmetneed.datasets._synthetic_model import UNPAID_CARE

    assert um.io.UNPAID_CARE_BANDS == tuple(UNPAID_CARE)


def test_msoa_table_is_tidy(files: tuple[Path, Path]) -> None:
    path, _ = files
    raw = pd.read_csv(path)
    table = um.io.read_unpaid_care_msoa(path)
    assert table.columns.tolist() == ["area_code", "area_name", "unpaid_care", "count"]
    assert len(table) == 6 * len(raw)
    assert table["unpaid_care"].cat.categories.tolist() == list(um.io.UNPAID_CARE_BANDS)
    assert table["unpaid_care"].cat.ordered
    assert table.attrs["geography"] == "MSOA21"
    assert table.attrs["base"] == "usual residents aged 5 and over"
    first = table[table["area_code"] == raw["msoa21cd"].iloc[0]]
    assert first["count"].tolist() == raw.iloc[0, 3:].tolist()
    assert table.groupby("area_code", sort=False)["count"].sum().tolist() == raw["total"].tolist()


def test_lad22_totals_and_england(files: tuple[Path, Path]) -> None:
    path, lookup = files
    table = um.io.read_unpaid_care_msoa(path, lookup=lookup)
    assert table.attrs["geography"] == "LAD22"
    raw = pd.read_csv(path)
    england = table[table["area_code"].str.startswith("E")]
    carers = int(england.loc[england["unpaid_care"] != "Provides no unpaid care", "count"].sum())
    residents = int(england["count"].sum())
    if HAVE_REAL:
        assert table["area_code"].nunique() == 331  # LAD22 of England and Wales
        assert (carers, residents) == (ENGLAND_CARERS, ENGLAND_RESIDENTS)
        assert round(carers / residents, 4) == 0.0876
    else:
        e = raw[raw["msoa21cd"].str.startswith("E")]
        assert residents == int(e["total"].sum())
        assert carers == int(e["total"].sum() - e["provides_no_unpaid_care"].sum())
    assert int(table["count"].sum()) == int(raw["total"].sum())
    hartlepool = table[table["area_code"] == "E06000001"]
    assert hartlepool["area_name"].unique().tolist() == ["Hartlepool"]
    assert len(hartlepool) == 6


def test_lookup_rows_repeated_for_2011_msoas_are_collapsed() -> None:
    lookup = pd.read_csv(FIXTURE_LOOKUP, encoding="utf-8-sig")
    doubled = pd.concat([lookup, lookup.iloc[:2]], ignore_index=True)
    a = um.io.read_unpaid_care_msoa(FIXTURE, lookup=doubled)
    b = um.io.read_unpaid_care_msoa(FIXTURE, lookup=FIXTURE_LOOKUP)
    assert a["count"].tolist() == b["count"].tolist()


def test_ons_labels_are_recognised(tmp_path: Path) -> None:
    raw = pd.read_csv(FIXTURE)
    renamed = raw.rename(columns={"msoa21cd": "geography code", "msoa21nm": "geography",
                                  **{c: f"Provision of unpaid care: {label}; measures: Value"
                                     for c, label in zip(raw.columns[3:], um.io.UNPAID_CARE_BANDS)}})
    path = tmp_path / "nomis.csv"
    renamed.to_csv(path, index=False)
    a = um.io.read_unpaid_care_msoa(path)
    b = um.io.read_unpaid_care_msoa(FIXTURE)
    assert a["count"].tolist() == b["count"].tolist()


def _write(tmp_path: Path, frame: pd.DataFrame) -> Path:
    path = tmp_path / "ts039.csv"
    frame.to_csv(path, index=False)
    return path


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda f: f.drop(columns="provides_20_to_34_hours_unpaid_care_a_week"),
         "provides_20_to_34_hours_unpaid_care_a_week"),
        (lambda f: f.drop(columns="msoa21cd"), "MSOA code column"),
        (lambda f: f.assign(provides_no_unpaid_care=f["provides_no_unpaid_care"]
                            .where(f.index != 2, -5)), "E02002485: -5"),
        (lambda f: f.assign(total=f["total"].astype(object).where(f.index != 1, "c")),
         "'total'"),
        (lambda f: pd.concat([f, f.iloc[[0]]], ignore_index=True), "more than one row"),
        (lambda f: f.assign(total=f["total"] + (f.index == 3)), "differs from the sum"),
    ],
)
def test_bad_files_are_refused(tmp_path: Path, change, match: str) -> None:
    path = _write(tmp_path, change(pd.read_csv(FIXTURE)))
    with pytest.raises(ReadError, match=match):
        um.io.read_unpaid_care_msoa(path)


def test_lookup_problems(tmp_path: Path) -> None:
    lookup = pd.read_csv(FIXTURE_LOOKUP, encoding="utf-8-sig")
    with pytest.raises(ReadError, match="not in the lookup"):
        um.io.read_unpaid_care_msoa(FIXTURE, lookup=lookup.iloc[1:])
    split = pd.concat([lookup, lookup.iloc[[0]].assign(LAD22CD="E06000002")])
    with pytest.raises(ReadError, match="more than one LAD22"):
        um.io.read_unpaid_care_msoa(FIXTURE, lookup=split)
    with pytest.raises(ReadError, match="LAD22CD"):
        um.io.read_unpaid_care_msoa(FIXTURE, lookup=lookup.drop(columns="LAD22CD"))
    with pytest.raises(ReadError, match="needs lookup"):
        um.io.read_unpaid_care_msoa(FIXTURE, to="lad22")
    with pytest.raises(UnmetneedError, match="'utla'"):
        um.io.read_unpaid_care_msoa(FIXTURE, to="utla")  # type: ignore[arg-type]
    with pytest.raises(ReadError, match="file not found"):
        um.io.read_unpaid_care_msoa(tmp_path / "absent.csv")


def test_msoa_level_ignores_lookup_when_asked() -> None:
    table = um.io.read_unpaid_care_msoa(FIXTURE, lookup=FIXTURE_LOOKUP, to="msoa21")
    assert table.attrs["geography"] == "MSOA21"
    assert np.array_equal(table["count"], um.io.read_unpaid_care_msoa(FIXTURE)["count"])
