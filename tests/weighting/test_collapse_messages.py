"""collapse= mistakes name what is wrong and suggest the right fix."""

from __future__ import annotations

import pandas as pd
import pytest

import unmetneed as um
from unmetneed.errors import MarginsError


def design_and_margins() -> tuple[um.SurveyDesign, um.Margins]:
    df = pd.DataFrame({"age": ["a", "a", "b", "b", "c", "c"], "w": [1.0] * 6})
    margins = um.Margins({"age": pd.Series({"a": 10.0, "b": 10.0, "c": 5.0, "d": 5.0})})
    return um.SurveyDesign(df, weights="w"), margins


def test_a_misspelt_variable_is_called_a_variable_with_a_suggestion() -> None:
    design, margins = design_and_margins()
    with pytest.raises(MarginsError, match=r"collapse names variable 'agee'.*did you mean 'age'"):
        um.rake(design, margins, collapse={"agee": {"d": "c"}})


def test_an_unknown_category_suggests_a_margin_variable() -> None:
    design, margins = design_and_margins()
    with pytest.raises(MarginsError, match=r"category 'zz' is in no margin.*collapse=\{'age'"):
        um.rake(design, margins, collapse={"zz": "c"})
    result = um.rake(design, margins, collapse={"age": {"d": "c"}})
    assert result.design.weights.sum() == pytest.approx(30.0)
