"""Census fixture data and writers shared by the tests in tests/io.

Every writer fixture writes fresh files into the test's own tmp_path, so nothing
is shared between tests. Tests run with --import-mode=importlib, so constants
are handed out through the ``census`` fixture rather than imported."""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

# Census 2021 TS021 ethnic group as in ONS custom datasets ("Ethnic group (20
# categories)"), with the codes used in these fixtures.
ETHNIC_GROUP_20 = [
    (-8, "Does not apply"),
    (1, "Asian, Asian British or Asian Welsh: Bangladeshi"),
    (2, "Asian, Asian British or Asian Welsh: Chinese"),
    (3, "Asian, Asian British or Asian Welsh: Indian"),
    (4, "Asian, Asian British or Asian Welsh: Pakistani"),
    (5, "Asian, Asian British or Asian Welsh: Other Asian"),
    (6, "Black, Black British, Black Welsh, Caribbean or African: African"),
    (7, "Black, Black British, Black Welsh, Caribbean or African: Caribbean"),
    (8, "Black, Black British, Black Welsh, Caribbean or African: Other Black"),
    (9, "Mixed or Multiple ethnic groups: White and Asian"),
    (10, "Mixed or Multiple ethnic groups: White and Black African"),
    (11, "Mixed or Multiple ethnic groups: White and Black Caribbean"),
    (12, "Mixed or Multiple ethnic groups: Other Mixed or Multiple ethnic groups"),
    (13, "White: English, Welsh, Scottish, Northern Irish or British"),
    (14, "White: Irish"),
    (15, "White: Gypsy or Irish Traveller"),
    (16, "White: Roma"),
    (17, "White: Other White"),
    (18, "Other ethnic group: Arab"),
    (19, "Other ethnic group: Any other ethnic group"),
]

AREAS = [
    ("E06000001", "Hartlepool"),
    ("E06000002", "Middlesbrough"),
    ("E07000026", "Allerdale"),
]

# TS007's published bands (label, lo, hi); hi None = open-ended.
TS007_BANDS = [
    ("Aged 4 years and under", 0, 4),
    ("Aged 5 to 9 years", 5, 9),
    ("Aged 10 to 15 years", 10, 15),
    ("Aged 16 to 19 years", 16, 19),
    ("Aged 20 to 24 years", 20, 24),
    ("Aged 25 to 34 years", 25, 34),
    ("Aged 35 to 49 years", 35, 49),
    ("Aged 50 to 64 years", 50, 64),
    ("Aged 65 to 74 years", 65, 74),
    ("Aged 75 to 84 years", 75, 84),
    ("Aged 85 years and over", 85, None),
]


def single_year_label(age: int) -> str:
    if age == 0:
        return "Aged under 1 year"
    if age == 1:
        return "Aged 1 year"
    if age == 100:
        return "Aged 100 years and over"
    return f"Aged {age} years"


def ts007_columns() -> list[tuple[str, list[int] | None]]:
    """(label, single-year ages summed) in TS007 column order; None = total."""
    columns: list[tuple[str, list[int] | None]] = [("Total", None)]
    for label, lo, hi in TS007_BANDS:
        ages = list(range(lo, (hi if hi is not None else 100) + 1))
        columns.append((label, ages))
        columns.extend((single_year_label(a), [a]) for a in ages)
    return columns


def write_csv(path: Path, header: list[str], rows: list[list[object]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, quoting=csv.QUOTE_MINIMAL)
        writer.writerow(header)
        writer.writerows(rows)
    return path


@pytest.fixture
def nomis_ts007(tmp_path: Path) -> Callable[..., tuple[Path, np.ndarray]]:
    """Writer of a TS007-layout Nomis bulk file with consistent synthetic counts.

    Returns (path, single-year counts array of shape (areas, 101)).
    """

    def write(name: str = "census2021-ts007-ltla.csv", *, suffix: bool = True,
              seed: int = 0, areas: list[tuple[str, str]] | None = None,
              quote_all: bool = True) -> tuple[Path, np.ndarray]:
        areas = AREAS if areas is None else areas
        rng = np.random.default_rng(seed)
        singles = rng.integers(0, 2000, size=(len(areas), 101))
        end = "; measures: Value" if suffix else ""
        columns = ts007_columns()
        header = ["date", "geography", "geography code"] + [f"Age: {c}{end}" for c, _ in columns]
        rows = []
        for i, (code, area_name) in enumerate(areas):
            values = [int(singles[i].sum()) if ages is None else int(singles[i, ages].sum())
                      for _, ages in columns]
            rows.append(["2021", area_name, code, *values])
        path = tmp_path / name
        with open(path, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle, quoting=csv.QUOTE_NONNUMERIC if quote_all
                                else csv.QUOTE_MINIMAL)
            writer.writerow(header)
            writer.writerows(rows)
        return path, singles

    return write


@pytest.fixture
def custom_ts021(tmp_path: Path) -> Callable[..., tuple[Path, np.ndarray]]:
    """Writer of an ONS custom-dataset file of Ethnic group (20 categories).

    Returns (path, counts array of shape (areas, 20)) in ETHNIC_GROUP_20 order.
    """

    def write(name: str = "TS021-2021-3-filtered-2024-03-05T10_06_33Z.csv", *,
              geography: str = "Lower tier local authorities", seed: int = 1,
              areas: list[tuple[str, str]] | None = None) -> tuple[Path, np.ndarray]:
        areas = AREAS if areas is None else areas
        rng = np.random.default_rng(seed)
        counts = rng.integers(0, 5000, size=(len(areas), len(ETHNIC_GROUP_20)))
        counts[:, 0] = 0  # "Does not apply" is empty for usual residents
        header = [f"{geography} Code", geography, "Ethnic group (20 categories) Code",
                  "Ethnic group (20 categories)", "Observation"]
        rows = [
            [code, area_name, cat_code, label, int(counts[i, j])]
            for i, (code, area_name) in enumerate(areas)
            for j, (cat_code, label) in enumerate(ETHNIC_GROUP_20)
        ]
        return write_csv(tmp_path / name, header, rows), counts

    return write


@pytest.fixture
def census() -> SimpleNamespace:
    """Fixture constants and helpers (fresh copies for every test)."""
    return SimpleNamespace(
        AREAS=list(AREAS),
        ETHNIC_GROUP_20=list(ETHNIC_GROUP_20),
        ETHNIC_LABELS=[label for _, label in ETHNIC_GROUP_20],
        TS007_BANDS=list(TS007_BANDS),
        write_csv=write_csv,
    )
