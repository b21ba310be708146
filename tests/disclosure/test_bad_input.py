"""protect() refuses bad input with a message naming what is wrong and the fix."""

from __future__ import annotations

import numpy as np
import pytest

from unmetneed.disclosure import protect
from unmetneed.errors import DisclosureError, MissingColumnError, UnmetneedError


@pytest.mark.parametrize("column", ["estimate", "se", "ci_lower", "ci_upper", "cv", "n"])
def test_missing_result_column_is_named(table_maker, column):
    table = table_maker({"g": ["a"]}, [100.0]).drop(columns=column)
    with pytest.raises(MissingColumnError, match=repr(column)) as info:
        protect(table)
    assert isinstance(info.value, KeyError) and isinstance(info.value, UnmetneedError)


def test_not_a_data_frame():
    with pytest.raises(DisclosureError, match="DataFrame"):
        protect({"estimate": [1.0]})  # type: ignore[arg-type]


@pytest.mark.parametrize(("option", "value"), [
    ("min_count", -1), ("min_count", float("nan")), ("min_count", "10"), ("min_count", True),
    ("rounding", 0), ("rounding", -5), ("rounding", 2.5), ("rounding", 5.0), ("rounding", True),
    ("flag_cv", -0.1), ("suppress_cv", float("inf")), ("min_n", -1), ("min_n", 2.5),
    ("decimals", -1), ("decimals", 1.5), ("secondary", "yes"), ("count_measures", [1]),
    ("count_measures", 3),
])
def test_invalid_options(table_maker, option, value):
    with pytest.raises(DisclosureError, match=option):
        protect(table_maker({"g": ["a"]}, [100.0]), **{option: value})


def test_flag_cv_above_suppress_cv(table_maker):
    with pytest.raises(DisclosureError, match=r"flag_cv=0\.6 exceeds suppress_cv=0\.5"):
        protect(table_maker({"g": ["a"]}, [100.0]), flag_cv=0.6)


def test_unknown_flag_values_are_named(table_maker):
    table = table_maker({"g": ["a", "b"]}, [100.0, 200.0])
    table["flag"] = ["ok", "dubious"]
    with pytest.raises(DisclosureError, match="'dubious'"):
        protect(table)
    table["flag"] = ["ok", None]
    with pytest.raises(DisclosureError, match="flag"):
        protect(table)


def test_missing_estimate_is_refused_unless_flagged_suppressed(table_maker):
    table = table_maker({"g": ["a", "b"]}, [100.0, 200.0])
    table.loc[1, "estimate"] = np.nan
    with pytest.raises(DisclosureError, match=r"estimate.*index 1"):
        protect(table)
    table["flag"] = ["ok", "suppressed"]
    assert protect(table)["flag"].tolist() == ["suppressed", "suppressed"]


def test_missing_cv_for_a_nonzero_estimate(table_maker):
    table = table_maker({"g": ["a"]}, [100.0])
    table["cv"] = np.nan
    with pytest.raises(DisclosureError, match="cv"):
        protect(table)


def test_negative_cv_or_n(table_maker):
    table = table_maker({"g": ["a"]}, [100.0])
    with pytest.raises(DisclosureError, match="negative"):
        protect(table.assign(cv=-0.1))
    with pytest.raises(DisclosureError, match="negative"):
        protect(table.assign(n=-3))


def test_min_n_needs_n(table_maker):
    table = table_maker({"g": ["a"]}, [100.0]).assign(n=np.nan)
    assert protect(table)["flag"].tolist() == ["ok"]
    with pytest.raises(DisclosureError, match="min_n=30"):
        protect(table, min_n=30)


def test_text_in_a_result_column(table_maker):
    table = table_maker({"g": ["a"]}, [100.0]).assign(se="big")
    with pytest.raises(DisclosureError, match="'se' is not numeric"):
        protect(table)


def test_table_that_does_not_say_whether_it_holds_counts(table_maker):
    table = table_maker({"g": ["a"]}, [5.0], measure=None)
    with pytest.raises(DisclosureError, match="measure"):
        protect(table)
    table.attrs["statistic"] = "total"
    assert protect(table)["flag"].tolist() == ["suppressed"]
    table.attrs["statistic"] = "mean"
    assert protect(table)["flag"].tolist() == ["ok"]
    # With no count measures there is nothing to decide.
    del table.attrs["statistic"]
    assert protect(table, count_measures=())["flag"].tolist() == ["ok"]


def test_by_must_name_key_columns(table_maker):
    table = table_maker({"area_code": ["A", "B"]}, [100.0, 200.0])
    with pytest.raises(MissingColumnError, match="'area'"):
        protect(table, by="area")
    with pytest.raises(DisclosureError, match="'estimate' is a result"):
        protect(table, by="estimate")
    with pytest.raises(DisclosureError, match="'measure' is a result or measure"):
        protect(table, by="measure")


def test_total_label_not_in_the_table(grid_maker):
    table = grid_maker(np.ones((2, 2)) * 100, totals=True)
    with pytest.raises(DisclosureError, match="total_label='All'"):
        protect(table, total_label="All")


def test_duplicated_keys_with_secondary(table_maker):
    table = table_maker({"area_code": ["A", "A"]}, [100.0, 200.0])
    with pytest.raises(DisclosureError, match="not unique"):
        protect(table)
    assert len(protect(table, secondary=False)) == 2


def test_bad_hierarchy(domain, parts):
    with pytest.raises(MissingColumnError, match="'quantities'"):
        protect(domain, hierarchy={"quantities": {"need": parts}})
    with pytest.raises(DisclosureError, match="list of component"):
        protect(domain, hierarchy={"quantity": {"need": "unmet"}})
    with pytest.raises(DisclosureError, match="map a total"):
        protect(domain, hierarchy={"quantity": parts})
    with pytest.raises(DisclosureError, match="other than the total"):
        protect(domain, hierarchy={"quantity": {"need": ["need"]}})
    with pytest.raises(DisclosureError, match="check the labels"):
        protect(domain, hierarchy={"quantity": {"Need": ["Unmet"]}})
    with pytest.raises(DisclosureError, match="result or measure"):
        protect(domain, hierarchy={"measure": {"count": ["rate_per_1000"]}})
