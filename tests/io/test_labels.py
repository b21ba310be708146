"""Label parsing behind the census hierarchy and the age map."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from unmetneed.errors import ReadError
from unmetneed.io import parse_interval
from unmetneed.io._hierarchy import build_hierarchy
from unmetneed.io._labels import (
    geography_from_name,
    is_total_label,
    table_id_from_name,
    variable_name,
)

INF = math.inf


@pytest.mark.parametrize(
    ("label", "interval"),
    [
        ("Aged under 1 year", (0, 0)),
        ("Aged 1 year", (1, 1)),
        ("Aged 37 years", (37, 37)),
        ("Aged 4 years and under", (0, 4)),
        ("Aged 10 to 15 years", (10, 15)),
        ("Aged 85 years and over", (85, INF)),
        ("Aged 100 years and over", (100, INF)),
        ("Aged 90 years and over", (90, INF)),
        ("Provides 9 hours or less unpaid care a week", (0, 9)),
        ("Provides 19 or less hours unpaid care a week", (0, 19)),
        ("Provides 10 to 19 hours unpaid care a week", (10, 19)),
        ("Provides 50 or more hours unpaid care a week", (50, INF)),
        ("18-24", (18, 24)),
        ("85+", (85, INF)),
        ("37", (37, 37)),
    ],
)
def test_parse_interval(label, interval):
    assert parse_interval(label) == interval


@pytest.mark.parametrize(
    "label",
    ["Provides no unpaid care", "White: Irish", "Level 4 qualifications and above",
     "L10 and L11 Lower supervisory and technical occupations", "Aged 9 to 5 years", None, 12],
)
def test_labels_without_a_range(label):
    assert parse_interval(label) is None


@pytest.mark.parametrize(
    ("header", "name"),
    [("Ethnic group (20 categories)", "ethnic_group"), ("Age", "age"),
     ("Age (B) (6 categories)", "age"), ("Disability", "disability"),
     ("Provision of unpaid care", "unpaid_care"), ("Unpaid care (5 categories)", "unpaid_care"),
     ("Sex (2 categories)", "sex")],
)
def test_variable_name(header, name):
    assert variable_name(header) == name


def test_table_id_and_geography_from_file_names():
    assert table_id_from_name("census2021-ts007-ltla.csv") == "ts007"
    assert table_id_from_name("/x/RM121-2021-1-filtered.csv") == "rm121"
    assert table_id_from_name("custom-filtered-2024.csv") is None
    assert geography_from_name("census2021-ts007-rgn.csv") == "Regions"
    assert geography_from_name("ts007.csv") is None


def test_total_labels():
    assert is_total_label("Total")
    assert is_total_label("Total: All usual residents aged 5 and over")
    assert is_total_label("All persons")
    assert not is_total_label("Allerdale")
    assert not is_total_label("White: Other White")


def test_two_totals_or_repeated_labels_are_refused():
    with pytest.raises(ReadError, match="more than one total"):
        build_hierarchy("age", ["Total", "All persons", "Aged 1 year"])
    with pytest.raises(ReadError, match="more than once"):
        build_hierarchy("age", ["Total", "Aged 1 year", "Aged 1 year"])
    with pytest.raises(ReadError, match="both stand for"):
        build_hierarchy("age", ["Total", "Aged 1 year", "Aged 1 to 1 years"])


@given(st.lists(st.integers(min_value=2, max_value=10), min_size=1, max_size=12))
def test_any_band_partition_over_single_years_is_recognised(widths):
    # bands of the given widths (>= 2, so no band equals a single year) over
    # consecutive single years; the last band and last single year are open-ended
    categories, bands, start = ["Total"], [], 0
    for k, width in enumerate(widths):
        last = k == len(widths) - 1
        end = start + width - 1
        band = f"Aged {start} years and over" if last else f"Aged {start} to {end} years"
        bands.append(band)
        categories.append(band)
        categories.extend(f"Aged {a} years" for a in range(start, start + width))
        if last:
            categories.append(f"Aged {start + width} years and over")
        start += width
    hierarchy = build_hierarchy("age", categories)
    assert hierarchy.top() == bands
    leaves = hierarchy.leaves()
    assert len(leaves) == sum(widths) + 1
    assert set(leaves).isdisjoint(bands)
    assert all(hierarchy.parent[leaf] in bands for leaf in leaves)
