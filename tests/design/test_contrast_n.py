"""``Estimates.contrast(...).n`` counts each respondent once (R's svycontrast has no n)."""

from __future__ import annotations

import numpy as np

import unmetneed as um


def _design() -> um.SurveyDesign:
    survey = um.datasets.load_example_survey()
    survey["need2"] = survey["need"] * 2.0
    return um.SurveyDesign(survey, weights="weight", strata="stratum", clusters="psu", nest=True)


def test_contrast_n_counts_domains_once() -> None:
    design = _design()
    est = design.mean(["need", "need2"], by="sex")
    n = est.n
    con = est.contrast(
        {
            "same domain": {("Female", "need"): 1, ("Female", "need2"): -1},
            "two domains": {("Female", "need"): 1, ("Male", "need"): -1},
            "every row": dict.fromkeys(est.estimate.index, 1.0),
        }
    )
    female, male = n[("Female", "need")], n[("Male", "need")]
    assert con.n.tolist() == [female, female + male, female + male]
    # without domains every row has the same respondents
    whole = design.mean(["need", "need2"])
    assert whole.contrast([1, -1]).n.tolist() == [design.n]


def test_contrast_n_of_a_contrast() -> None:
    design = _design()
    est = design.mean("need", by="sex")
    con = est.contrast(np.eye(2))
    assert con.n.tolist() == est.n.tolist()
    # a contrast of contrasts: its rows carry no domain, the largest n counts (a lower bound)
    assert con.contrast([1, 1]).n.tolist() == [int(est.n.max())]
