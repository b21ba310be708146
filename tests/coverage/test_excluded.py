"""Groups council data leave out by design: definitions and table."""

from __future__ import annotations

import numpy as np
import pandas as pd

from unmetneed.coverage import EXCLUDED


def _wide(report, measure: str) -> pd.DataFrame:  # type: ignore[no-untyped-def]
    table = report.excluded
    part = table[table["measure"] == measure]
    return part.pivot(index="area_code", columns="quantity", values="estimate")


def test_columns_quantities_and_measures(report) -> None:  # type: ignore[no-untyped-def]
    table = report.excluded
    assert list(table.columns) == ["area_code", "quantity", "measure", "estimate", "se", "ci_lower",
                                   "ci_upper", "cv", "n"]
    assert list(pd.unique(table["quantity"])) == list(EXCLUDED)
    assert set(table["measure"]) == {"count", "share_of_need"}
    assert table.attrs["level"] == 0.9
    assert (table["ci_lower"] <= table["estimate"]).all() and (table["estimate"] <= table["ci_upper"]).all()


def test_definitions_hold_for_the_posterior_means(report, care) -> None:  # type: ignore[no-untyped-def]
    counts = _wide(report, "count")
    mean = {q: care.draws[q].mean("draw").to_series().reindex(counts.index)
            for q in ("need", "council_funded", "self_funded", "unpaid_only", "unmet")}
    np.testing.assert_allclose(counts["self_funded"], mean["self_funded"], rtol=1e-12)
    np.testing.assert_allclose(counts["never_assessed"], mean["unpaid_only"] + mean["unmet"], rtol=1e-9)
    np.testing.assert_allclose(counts["outside_council_data"], mean["need"] - mean["council_funded"], rtol=1e-9)
    np.testing.assert_allclose(counts["outside_council_data"],
                               counts["self_funded"] + counts["never_assessed"], rtol=1e-9)


def test_shares_are_of_need_draw_by_draw(report, care) -> None:  # type: ignore[no-untyped-def]
    shares = _wide(report, "share_of_need")
    expected = (care.draws["self_funded"] / care.draws["need"]).mean("draw").to_series()
    np.testing.assert_allclose(shares["self_funded"], expected.reindex(shares.index), rtol=1e-12)
    assert ((shares > 0) & (shares < 1)).all().all()


def test_n_is_the_respondents_behind_each_group(report, inputs) -> None:  # type: ignore[no-untyped-def]
    table = report.excluded
    n = table[(table["quantity"] == "unmet") & (table["measure"] == "count")].set_index("area_code")["n"]
    expected = inputs.survey.groupby("area_code").size()
    np.testing.assert_array_equal(n.reindex(expected.index).to_numpy(), expected.to_numpy())
