"""Simulation-based calibration of ``MultilevelFit.draws`` (Talts et al. 2018).

See ``tests/mrp/sbc_cases.py``: parameters drawn from the prior, data from the
model, and the rank of each true value among 99 posterior draws. Here 100
replicates of two cases (two factors; three factors with a factor whose levels
have 0-3 respondents); ``benchmarks/sbc.py`` runs more replicates and all
cases. A chi-square test on 10 bins per quantity, with a Bonferroni bound over
the quantities, and the share of ranks in the outer 10% (too many: intervals
too narrow; too few: too wide).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import sbc_cases

REPLICATES = 100
DRAWS = 99
FAMILY_ALPHA = 0.01


@pytest.mark.parametrize("case", sbc_cases.CASES[:2], ids=lambda c: c.name)
def test_ranks_are_uniform(case: sbc_cases.Case) -> None:
    ranks = sbc_cases.ranks(case, REPLICATES, DRAWS, seed=5)
    assert ranks.attrs["refused"] <= 0.02 * REPLICATES
    table = sbc_cases.uniformity(ranks, DRAWS)
    alpha = FAMILY_ALPHA / len(table)
    bad = table[table["p_value"] < alpha]
    assert bad.empty, bad[["quantity", "chi2", "p_value", "bin_counts"]].to_string()
    # 10% of ranks expected in the outer tails; binomial(100, 0.1) stays within 2-20.
    outer = table["share_in_outer_10pct"]
    assert outer.between(0.02, 0.2).all(), table[["quantity", "share_in_outer_10pct"]].to_string()
    assert table["mean_rank"].between(0.4, 0.6).all(), table[["quantity", "mean_rank"]].to_string()
