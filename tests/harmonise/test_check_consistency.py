"""check_consistency: every area reported, differences never hidden."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from unmetneed.errors import MarginsError, MissingColumnError
from unmetneed.harmonise import check_consistency


def _tidy(totals: dict[str, list[int]]) -> pd.DataFrame:
    rows = [(code, f"Name {code}", k, n) for code, parts in totals.items()
            for k, n in enumerate(parts)]
    return pd.DataFrame(rows, columns=["area_code", "area_name", "age", "count"])


def test_statuses_and_differences():
    a = _tidy({"A1": [50, 50], "A2": [1000, 0], "A3": [10, 10], "A4": [5, 5]})
    b = _tidy({"A1": [100], "A2": [999], "A3": [30], "A5": [7]})
    out = check_consistency(a, b)
    assert out["area_code"].tolist() == ["A1", "A2", "A3", "A4", "A5"]
    assert out["status"].astype(str).tolist() == [
        "equal", "within_tolerance", "exceeds_tolerance", "missing_in_b", "missing_in_a"]
    assert out["total_a"].tolist()[:3] == [100, 1000, 20]
    assert out["difference"].tolist()[:3] == [0, -1, 10]
    assert out["relative_difference"].tolist()[:3] == [0, -0.001, 0.5]
    assert out["area_name"].tolist()[-1] == "Name A5"  # names from b where a lacks the area
    assert out.attrs["n_exceeds_tolerance"] == 1
    assert out.attrs["n_missing_in_a"] == out.attrs["n_missing_in_b"] == 1
    assert out.attrs["max_abs_difference"] == 10
    strict = check_consistency(a, b, tolerance=0)
    assert strict["status"].astype(str).tolist()[1] == "exceeds_tolerance"


def test_series_of_totals_are_accepted():
    a = pd.Series({"E06000001": 92334})
    b = pd.Series({"E06000001": 92338})
    out = check_consistency(a, b)
    assert out["difference"].tolist() == [4]
    assert out["area_name"].isna().all()


def test_bad_input():
    good = _tidy({"A1": [1]})
    with pytest.raises(MissingColumnError, match=r"\['count'\]"):
        check_consistency(good.drop(columns="count"), good)
    with pytest.raises(MarginsError, match="non-numeric"):
        check_consistency(good.assign(count="many"), good)
    with pytest.raises(MarginsError, match="repeats area codes"):
        check_consistency(pd.Series([1, 2], index=["A1", "A1"]), good)
    with pytest.raises(MarginsError, match="tolerance"):
        check_consistency(good, good, tolerance=-1)
    with pytest.raises(MarginsError, match="tolerance"):
        check_consistency(good, good, tolerance=np.nan)
    with pytest.raises(MarginsError, match="DataFrame or Series"):
        check_consistency([1], good)  # type: ignore[arg-type]
