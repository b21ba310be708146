"""protect(): primary and secondary suppression, rounding, flags, records."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import unmetneed as um
from unmetneed.disclosure import FLAGS, describe_protection, protect


# -- primary suppression and flags ---------------------------------------------
def test_small_counts_few_respondents_and_high_cv_are_suppressed(table_maker):
    table = table_maker({"area_code": list("ABCDE")}, [4.0, 500.0, 600.0, 700.0, 8.0],
                        cv=[0.1, 0.1, 0.6, 0.1, 0.7], n=[50, 12, 50, 50, 50])
    out = protect(table, min_n=30, secondary=False)
    assert out["flag"].tolist() == ["suppressed", "suppressed", "suppressed", "ok", "suppressed"]
    assert out["reason"].tolist() == ["count < 10", "n < 30", "cv > 0.5", "", "count < 10; cv > 0.5"]
    numbers = ["estimate", "se", "ci_lower", "ci_upper", "cv"]
    assert out.loc[out["flag"] == "suppressed", numbers].isna().all().all()
    assert out["n"].isna().tolist() == [True, True, True, False, True]
    assert out["area_code"].tolist() == list("ABCDE")  # keys stay


def test_flags_use_strict_cv_bands(table_maker):
    table = table_maker({"g": list("abcd")}, [100.0] * 4, cv=[0.2, 0.2001, 0.5, 0.5001])
    out = protect(table, secondary=False)
    assert out["flag"].tolist() == ["ok", "low_reliability", "low_reliability", "suppressed"]
    assert out["reason"].tolist() == ["", "cv > 0.2", "cv > 0.2", "cv > 0.5"]
    assert set(out["flag"]) <= set(FLAGS)


def test_count_rule_applies_to_count_measures_only(table_maker):
    table = table_maker({"g": ["a", "a"]}, [5.0, 5.0], measure=["count", "rate_per_1000"])
    out = protect(table, secondary=False)
    assert out["flag"].tolist() == ["suppressed", "ok"]
    assert out.loc[1, "estimate"] == 5.0  # rates are not rounded


def test_count_measures_option(table_maker):
    table = table_maker({"g": ["a", "b"]}, [5.0, 5.0], measure=["count", "persons"])
    out = protect(table, secondary=False, count_measures=("count", "persons"))
    assert out["flag"].tolist() == ["suppressed", "suppressed"]
    out = protect(table, secondary=False, count_measures="persons")
    assert out["flag"].tolist() == ["ok", "suppressed"]


def test_a_count_that_rounds_below_min_count_is_suppressed(table_maker):
    table = table_maker({"g": ["a", "b"]}, [12.3, 13.0])
    out = protect(table, min_count=12, rounding=5, secondary=False)
    # 12.3 rounds to 10 < 12; 13 rounds to 15.
    assert out["flag"].tolist() == ["suppressed", "ok"]
    assert out.loc[0, "reason"] == "count < 12"
    assert out.loc[1, "estimate"] == 15.0


def test_zero_estimate_without_cv_breaks_no_cv_rule(table_maker):
    table = table_maker({"g": ["a"]}, [0.0], measure="rate_per_1000")
    assert np.isnan(table.loc[0, "cv"])
    out = protect(table)
    assert out.loc[0, "flag"] == "ok"


def test_rules_can_be_switched_off(table_maker):
    table = table_maker({"g": list("abc")}, [3.0, 400.0, 500.0], cv=[0.1, 0.9, 0.3])
    out = protect(table, min_count=None, suppress_cv=None, flag_cv=None, rounding=None,
                  secondary=False)
    assert out["flag"].tolist() == ["ok"] * 3
    np.testing.assert_array_equal(out["estimate"], table["estimate"])


# -- rounding --------------------------------------------------------------------
def test_counts_round_half_away_from_zero_and_intervals_outwards(table_maker):
    table = table_maker({"g": list("abcd")}, [12.5, 17.5, 22.4999, 1002.5])
    table["ci_lower"] = [10.1, 14.0, 20.0, 1000.0]
    table["ci_upper"] = [14.9, 20.1, 25.0, 1005.0]
    out = protect(table, rounding=5, secondary=False)
    assert out["estimate"].tolist() == [15.0, 20.0, 20.0, 1005.0]
    assert out["ci_lower"].tolist() == [10.0, 10.0, 20.0, 1000.0]
    assert out["ci_upper"].tolist() == [15.0, 25.0, 25.0, 1005.0]
    assert (out["se"] % 5 == 0).all()
    np.testing.assert_array_equal(out["cv"], table["cv"])  # the CV is the unrounded quality measure


def test_rounding_base_ten(table_maker):
    out = protect(table_maker({"g": ["a", "b"]}, [15.0, 24.9]), rounding=10, secondary=False)
    assert out["estimate"].tolist() == [20.0, 20.0]


def test_decimals_round_rates_not_counts(table_maker):
    table = table_maker({"g": ["a", "a"]}, [123.456, 0.12345], measure=["count", "share_of_need"])
    out = protect(table, decimals=2, secondary=False)
    assert out["estimate"].tolist() == [125.0, 0.12]
    assert out.loc[1, "ci_lower"] <= 0.12 <= out.loc[1, "ci_upper"]
    out = protect(table, secondary=False)
    assert out.loc[1, "estimate"] == 0.12345


# -- secondary suppression -------------------------------------------------------
def test_table_with_totals_gets_complementary_suppressions(grid_maker):
    counts = np.array([[4.0, 120.0, 300.0], [60.0, 61.0, 400.0], [80.0, 90.0, 500.0]])
    table = grid_maker(counts, totals=True)
    out = protect(table, by=["area_code", "group"], total_label="Total")
    hidden = out.set_index(["area_code", "group"])["flag"].eq("suppressed").unstack()
    # r0,c0 is small; its row and column each get the smallest other cell
    # (r0,c1 = 120 and r1,c0 = 60), then r1 and c1 need partners: r1,c1 = 61
    # closes the rectangle.
    assert hidden.loc["r0", "c0"] and hidden.loc["r0", "c1"]
    assert hidden.loc["r1", "c0"] and hidden.loc["r1", "c1"]
    assert hidden.values.sum() == 4
    assert not hidden["Total"].any() and not hidden.loc["Total"].any()
    assert out.attrs["disclosure"]["secondary_suppressed"] == 3
    assert out.attrs["disclosure"]["primary_suppressed"] == 1


def test_no_line_is_left_with_one_suppressed_cell(grid_maker):
    rng = np.random.default_rng(3)
    counts = rng.integers(0, 60, size=(12, 6)).astype(float)
    table = grid_maker(counts, totals=True)
    out = protect(table, by=["area_code", "group"], total_label="Total")
    hidden = out.set_index(["area_code", "group"])["flag"].eq("suppressed").unstack()
    assert (hidden.sum(axis=0) != 1).all() and (hidden.sum(axis=1) != 1).all()


def test_totals_are_the_last_choice(grid_maker):
    # r0 has one small cell and one large; the only other cell of row r0 is c1.
    table = grid_maker(np.array([[3.0, 5000.0], [50.0, 70.0]]), totals=True)
    out = protect(table, by=["area_code", "group"], total_label="Total")
    hidden = out.set_index(["area_code", "group"])["flag"].eq("suppressed").unstack()
    assert hidden.loc["r0", "c1"] and not hidden.loc["r0", "Total"]


def test_without_total_rows_the_totals_are_taken_as_published(table_maker):
    table = table_maker({"area_code": list("ABCD")}, [4.0, 300.0, 200.0, 900.0])
    out = protect(table)
    # England's total is public: the smallest other area goes too.
    assert out["reason"].tolist() == ["count < 10", "", "secondary", ""]
    assert out.attrs["disclosure"]["by"] == ["area_code"]


def test_secondary_can_be_switched_off(table_maker):
    table = table_maker({"area_code": list("ABCD")}, [4.0, 300.0, 200.0, 900.0])
    out = protect(table, secondary=False)
    assert out["flag"].tolist() == ["suppressed", "ok", "ok", "ok"]
    assert out.attrs["disclosure"]["secondary_suppressed"] == 0


def test_label_columns_do_not_split_lines(table_maker):
    table = table_maker({"area_code": list("ABC"), "area_name": ["Ayr", "Bath", "Crewe"]},
                        [4.0, 300.0, 200.0])
    out = protect(table)
    assert out.attrs["disclosure"]["by"] == ["area_code"]
    assert out["flag"].tolist() == ["suppressed", "ok", "suppressed"]
    # The same with by= naming both: area_name relabels area_code.
    out = protect(table, by=["area_code", "area_name"])
    assert out["flag"].tolist() == ["suppressed", "ok", "suppressed"]


def test_a_single_cell_line_is_reported_unpaired(table_maker):
    table = table_maker({"area_code": ["A"]}, [4.0])
    out = protect(table)
    assert out["flag"].tolist() == ["suppressed"]
    assert out.attrs["disclosure"]["unpaired_lines"] == 1


def test_suppressed_counts_take_their_rates_and_shares_along(domain):
    out = protect(domain)
    cell = out[(out["area_code"] == "E06000002") & (out["quantity"] == "council_funded")]
    assert (cell["flag"] == "suppressed").all()
    assert cell.set_index("measure")["reason"].to_dict() == {
        "count": "count < 10", "rate_per_1000": "secondary", "share_of_need": "secondary"}
    # Within the area line of council_funded, another area goes with it.
    council = out[(out["quantity"] == "council_funded") & (out["measure"] == "count")]
    assert (council["flag"] == "suppressed").sum() == 2


def test_hierarchy_protects_parts_of_need(domain, parts):
    out = protect(domain, hierarchy={"quantity": {"need": parts}})
    counts = out[out["measure"] == "count"]
    area = counts[counts["area_code"] == "E06000003"].set_index("quantity")["flag"]
    # unmet (3) is small; without a partner among the parts it would be
    # need - council - self - unpaid.
    assert area["unmet"] == "suppressed"
    assert (area[parts] == "suppressed").sum() >= 2
    hidden = counts.pivot(index="area_code", columns="quantity", values="flag").eq("suppressed")
    assert (hidden[["need", *parts]].sum(axis=1) != 1).all()
    assert (hidden.sum(axis=0) != 1).all()
    assert out.attrs["disclosure"]["hierarchy"] == {"quantity": [("need", parts)]}


def test_suppressed_need_hides_the_shares_of_need(table_maker):
    areas = ["A", "A", "A", "B", "B", "B"]
    table = table_maker({"area_code": areas, "quantity": ["need", "unmet", "unmet"] * 2},
                        [400.0, 100.0, 0.25, 500.0, 100.0, 0.2],
                        cv=[0.6, 0.1, 0.1, 0.1, 0.1, 0.1],
                        measure=["count", "count", "share_of_need"] * 2)
    out = protect(table, secondary=True)
    a = out[out["area_code"] == "A"].set_index(["quantity", "measure"])["flag"]
    assert a[("unmet", "share_of_need")] == "suppressed"  # 100 / 0.25 would give need


def test_design_based_table_of_totals(example_design):
    table = example_design.total("need", by=["area_code", "age_band"]).to_frame()
    out = protect(table, min_n=10)
    assert len(out) == len(table)
    published = out["flag"] != "suppressed"
    assert (out.loc[published, "estimate"] % 5 == 0).all()
    assert (out.loc[published, "estimate"] >= 10).all()
    assert (out.loc[table["n"] < 10, "flag"] == "suppressed").all()
    assert out.attrs["statistic"] == "total" and out.attrs["level"] == table.attrs["level"]
    hidden = out.set_index(["area_code", "age_band"])["flag"].eq("suppressed").unstack()
    assert (hidden.sum(axis=0) != 1).all() and (hidden.sum(axis=1) != 1).all()


def test_design_based_proportions_are_not_counts(example_design):
    table = example_design.proportion("help", by="area_code").to_frame()
    out = protect(table, min_n=200)
    # Proportions are below 10 but not counts: only n and cv rules apply, no rounding.
    assert (out.loc[out["flag"] != "suppressed", "estimate"] < 1).all()
    assert set(out.loc[out["flag"] == "suppressed", "reason"]) <= {"n < 200", "cv > 0.5",
                                                                    "n < 200; cv > 0.5"}
    assert out.attrs["disclosure"]["count_rows"] == 0


# -- what stays the same ---------------------------------------------------------
def test_rows_order_index_and_input_are_kept(table_maker):
    table = table_maker({"area_code": list("ABCD")}, [4.0, 300.0, 200.0, 900.0])
    table.index = [10, 3, 7, 1]
    before = table.copy()
    out = protect(table)
    assert out.index.tolist() == [10, 3, 7, 1]
    pd.testing.assert_frame_equal(table, before)
    assert "flag" not in table.columns


def test_existing_flag_column_stays_in_place(domain):
    out = protect(domain)
    assert list(out.columns) == [*domain.columns, "reason"]
    assert str(out["n"].dtype) == "Int64"


def test_record_of_the_rules(table_maker):
    table = table_maker({"area_code": list("ABCD")}, [4.0, 300.0, 200.0, 900.0], cv=[0.1, 0.3, 0.1, 0.1])
    table.attrs["statistic"] = "total"
    info = protect(table, min_n=30).attrs["disclosure"]
    assert info["function"] == "unmetneed.disclosure.protect"
    assert info["version"] == um.__version__
    assert (info["min_count"], info["rounding"], info["flag_cv"], info["suppress_cv"], info["min_n"]) == (
        10, 5, 0.2, 0.5, 30)
    assert (info["primary_suppressed"], info["secondary_suppressed"], info["suppressed"]) == (1, 1, 2)
    assert info["low_reliability"] == 1
    assert info["reasons"] == {"count < 10": 1, "secondary": 1}
    assert info["rows"] == 4 and info["count_rows"] == 4


# -- re-protection ---------------------------------------------------------------
def test_protect_is_idempotent(domain, parts):
    options = {"hierarchy": {"quantity": {"need": parts}}, "decimals": 3}
    once = protect(domain, **options)
    twice = protect(once, **options)
    pd.testing.assert_frame_equal(once, twice)
    assert once.attrs == twice.attrs


def test_rows_flagged_suppressed_stay_suppressed(table_maker):
    table = table_maker({"area_code": list("ABCD")}, [400.0, 300.0, 200.0, 900.0])
    table["flag"] = ["suppressed", "ok", "ok", "ok"]
    out = protect(table)
    assert out.loc[0, "reason"] == "suppressed in input"
    assert np.isnan(out.loc[0, "estimate"])
    assert out.loc[2, "reason"] == "secondary"
    table["reason"] = ["policy", "", "", ""]
    assert protect(table).loc[0, "reason"] == "policy"


# -- describe_protection ---------------------------------------------------------
def test_describe_protection_words_the_rules(table_maker):
    table = table_maker({"area_code": list("ABCD")}, [4.0, 300.0, 200.0, 900.0], cv=[0.1, 0.3, 0.1, 0.1])
    text = describe_protection(protect(table, min_n=30, rounding=10))
    for words in ("counts below 10", "fewer than 30 respondents", "above 50%", "1 cell in all",
                  "Secondary suppression", "1 cell was suppressed", "nearest 10",
                  "above 20%", "1 of the 4 rows", um.__version__):
        assert words in text
    text = describe_protection(protect(table, secondary=False, rounding=None, decimals=1))
    assert "No secondary suppression" in text and "Counts are not rounded" in text
    assert "1 decimal places" in text


def test_describe_protection_refuses_an_unprotected_table(table_maker):
    with pytest.raises(um.errors.DisclosureError, match="protect"):
        describe_protection(table_maker({"g": ["a"]}, [100.0]))


def test_a_cell_joining_two_blocks_of_suppressions_is_protected(grid_maker):
    # Two rectangles of small cells joined by one more small cell, (r1, c2):
    # every row and column has two or more suppressed cells (the line rule
    # holds), yet x(r1, c2) = [hidden part of rows r0 + r1] - [hidden part of
    # columns c0 + c1], all known from the totals. The audit adds a partner
    # that puts it on a cycle of suppressions.
    counts = np.full((4, 4), 100.0)
    for r, c in [(0, 0), (0, 1), (1, 0), (1, 1), (2, 2), (2, 3), (3, 2), (3, 3), (1, 2)]:
        counts[r, c] = 3.0
    out = protect(grid_maker(counts, totals=True), by=["area_code", "group"], total_label="Total")
    info = out.attrs["disclosure"]
    assert info["primary_suppressed"] == 9 and info["secondary_suppressed"] >= 1
    assert info["recoverable_cells"] == 0
    hidden = out.set_index(["area_code", "group"])["flag"].eq("suppressed").unstack()
    cells = hidden.drop(index="Total", columns="Total")
    # A cycle through (r1, c2) needs another suppression off the two blocks.
    off_blocks = (cells.loc[["r0", "r1"], ["c2", "c3"]].values.sum()
                  + cells.loc[["r2", "r3"], ["c0", "c1"]].values.sum())
    assert off_blocks >= 2
    assert hidden.sum(axis=0).ne(1).all() and hidden.sum(axis=1).ne(1).all()


def test_large_linked_groups_are_not_audited_but_said_so(grid_maker, monkeypatch):
    from unmetneed.disclosure import secondary

    monkeypatch.setattr(secondary, "AUDIT_MAX_WORK", 2)
    counts = np.full((3, 3), 100.0)
    counts[:2, :2] = 3.0
    with pytest.warns(um.errors.UnmetneedWarning, match="too large to be audited"):
        out = protect(grid_maker(counts), by=["area_code", "group"])
    assert out.attrs["disclosure"]["unaudited_cells"] == 4
    assert "not by the exact audit" in describe_protection(out)


def _care_survey(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    area = rng.choice(["E06000001", "E06000002", "E06000003", "E06000004"], n)
    age = rng.choice(["18-64", "65-84", "85+"], n, p=[0.6, 0.3, 0.1])
    sex = rng.choice(["Female", "Male"], n)
    need = rng.random(n) < np.where(age == "18-64", 0.15, np.where(age == "65-84", 0.35, 0.6))
    u = rng.random(n)
    help_ = np.where(~need, None, np.where(u < 0.25, "none", np.where(u < 0.65, "unpaid_only", "paid")))
    payer = np.where(help_ == "paid", np.where(rng.random(n) < 0.5, "council", "self"), None)
    enough = np.where(np.isin(help_, ["unpaid_only", "paid"]), (rng.random(n) < 0.7).astype(float), np.nan)
    return pd.DataFrame({"area_code": area, "age_band": age, "sex": sex, "need": need.astype(int),
                         "help": help_, "payer": payer, "help_enough": enough})


def test_domain_layer_table_end_to_end(parts):
    survey = _care_survey(1200, seed=4)
    cells = survey.groupby(["area_code", "age_band", "sex"]).size().rename("count").reset_index()
    cells["count"] = cells["count"] * 40.0
    formula = "outcome ~ sex + (1|area_code) + (1|age_band)"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", um.errors.UnmetneedWarning)
        est = um.estimate_care_populations(
            um.PopulationFrame(cells), survey, by=["area_code", "age_band"], draws=100, seed=2,
            formulas={k: formula for k in ("need", "help", "paid", "council", "not_enough")})
    table = est.to_frame()
    out = protect(table, min_count=500, hierarchy={"quantity": {"need": parts}})
    assert len(out) == len(table) and list(out.columns) == [*table.columns, "reason"]
    info = out.attrs["disclosure"]
    assert info["by"] == ["area_code", "age_band", "quantity"]
    assert info["primary_suppressed"] > 0 and info["recoverable_cells"] == 0
    counts = out[out["measure"] == "count"]
    assert (counts.loc[counts["flag"] != "suppressed", "estimate"] % 5 == 0).all()
    hidden = counts.set_index(["area_code", "age_band", "quantity"])["flag"].eq("suppressed")
    for level in ("area_code", "age_band"):
        others = [n for n in ("area_code", "age_band", "quantity") if n != level]
        assert (hidden.groupby(level=others).sum() != 1).all()
    per_group = hidden.unstack("quantity")[["need", *parts]].sum(axis=1)
    assert (per_group != 1).all()
    # A suppressed count takes its rate and share along.
    wide = out.pivot_table(index=["area_code", "age_band", "quantity"], columns="measure",
                           values="flag", aggfunc="first")
    hidden_count = wide["count"] == "suppressed"
    assert (wide.loc[hidden_count, "rate_per_1000"] == "suppressed").all()
    assert out.attrs["level"] == table.attrs["level"]
    pd.testing.assert_frame_equal(protect(out, min_count=500, hierarchy={"quantity": {"need": parts}}), out)


def test_a_table_of_too_few_draws_is_not_published() -> None:
    from unmetneed.errors import DisclosureError

    table = pd.DataFrame({"area_code": ["A", "B"], "measure": "count", "estimate": [120.0, 80.0],
                          "se": 0.0, "ci_lower": [120.0, 80.0], "ci_upper": [120.0, 80.0],
                          "cv": 0.0, "n": 30})
    table.attrs["draws"] = 1
    with pytest.raises(DisclosureError, match=r"summarises 1 draw\(s\); published tables need at least 100"):
        protect(table)
    assert len(protect(table, min_draws=None)) == 2
    table.attrs["draws"] = 100
    assert protect(table).attrs["disclosure"]["min_draws"] == 100
