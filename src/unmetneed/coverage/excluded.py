r"""People council data cannot see, by design: counts and shares of need.

Council records and the surveys drawn from them (ASCS, SACE) start from a
Care Act assessment and council funding. Per group and draw :math:`d`:

.. math::

    \text{outside\_council\_data} = \text{need} - \text{council\_funded}
      = \text{self\_funded} + \text{unpaid\_only} + \text{unmet},

    \text{never\_assessed} = \text{unpaid\_only} + \text{unmet},

each also as a share of need. ``never_assessed`` is a proxy: people helped
only by family or with no help at all rarely reach council data, but some
were assessed and found ineligible; the care model cannot tell them apart.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from unmetneed.coverage._groups import GroupedDraws
from unmetneed.mrp.draw_estimates import summarise_draws

__all__ = ["EXCLUDED", "excluded_table"]

#: The groups council data leave out, and why.
EXCLUDED: dict[str, str] = {
    "self_funded": "pay for their own care: not in council records, the ASCS or SACE's cared-for",
    "unpaid_only": "helped only by unpaid carers: rarely assessed, never council-funded",
    "unmet": "no help at all: unknown to councils unless they ask",
    "never_assessed": "unpaid_only + unmet: in need but no route into council data",
    "outside_council_data": "need - council_funded: everyone in need that council data miss",
}


def _excluded_draws(values: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {
        "self_funded": values["self_funded"],
        "unpaid_only": values["unpaid_only"],
        "unmet": values["unmet"],
        "never_assessed": values["unpaid_only"] + values["unmet"],
        "outside_council_data": values["need"] - values["council_funded"],
    }


def excluded_table(groups: GroupedDraws, respondents: np.ndarray | None, level: float) -> pd.DataFrame:
    """``[by...], quantity, measure, estimate, se, ci_lower, ci_upper, cv, n``."""
    need = groups.values["need"]
    keys = {c: groups.keys[c].to_numpy() for c in groups.by}
    n = (
        pd.array(respondents, dtype="Int64")
        if respondents is not None
        else pd.array([pd.NA] * groups.n_groups, dtype="Int64")
    )
    frames = []
    for quantity, count in _excluded_draws(groups.values).items():
        with np.errstate(divide="ignore", invalid="ignore"):
            share = count / need
        for measure, values in (("count", count), ("share_of_need", share)):
            with warnings.catch_warnings():
                # a group with no need has no shares: NaN is the answer, not a problem
                warnings.simplefilter("ignore", RuntimeWarning)
                stats = summarise_draws(values, level)
            # one constructor call per block: inserting columns one by one is slow
            frames.append(
                pd.DataFrame(
                    {**keys, "quantity": quantity, "measure": measure, **stats, "n": n},
                    index=pd.RangeIndex(groups.n_groups),
                )
            )
    out = pd.concat(frames, ignore_index=True)
    out.attrs.update(
        {
            "level": level,
            "estimate": "posterior mean",
            "se": "posterior standard deviation",
            "interval": "equal-tailed quantiles of draws",
            "quantities": dict(EXCLUDED),
        }
    )
    return out
