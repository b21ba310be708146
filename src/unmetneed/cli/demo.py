"""The demo job on the embedded example data."""

from __future__ import annotations

import pandas as pd

from unmetneed.datasets import load_example_survey
from unmetneed.design import SurveyDesign

__all__ = ["run_demo"]


def run_demo(*, level: float = 0.95) -> str:
    """Estimate the share of adults with care needs by council area; return the report text.

    Examples
    --------
    >>> from unmetneed.cli.demo import run_demo
    >>> "Hartlepool" in run_demo()
    True
    """
    survey = load_example_survey()
    design = SurveyDesign(
        survey, weights="weight", strata="stratum", clusters="psu", nest=True
    )
    table = design.mean("need", by=["area_code", "area_name"], level=level).to_frame()
    overall = design.mean("need", level=level).to_frame()
    with pd.option_context("display.width", 120, "display.max_columns", 20):
        by_area = table.to_string(index=False, float_format=lambda v: f"{v:.4f}")
        england = overall.to_string(index=False, float_format=lambda v: f"{v:.4f}")
    return "\n".join(
        [
            "unmetneed demo: share of adults with care and support needs (synthetic example survey)",
            f"design: {design!r}",
            "",
            "By council area:",
            by_area,
            "",
            "All areas:",
            england,
            "",
            f"{level:.0%} t intervals on {design.degf} degrees of freedom (PSUs minus strata).",
        ]
    )
