"""raking, balance: balance.weighting_methods.rake.rake(...), the function
under ``Sample.adjust(method="rake")``, called directly (less overhead).

balance rakes a sample to a *target data set*, not to margins. Its
``target_margins=`` shortcut realises the margins as a synthetic frame of at
most ``target_margins_max_length`` rows (default 10,000), rounding the
proportions, so it cannot meet the totals to 1e-8; the target here is the
true population collapsed to its occupied cells with counts as weights,
whose margins equal the totals exactly. ``transformations=None`` because the
default transformations lump rare categories (fct_lump) and quantise numeric
columns, which would change the problem. balance's convergence is
``max |current/target - 1| <= convergence_rate`` (set to tol) unless the
rate stops moving by ``rate_tolerance`` (set to 0). It rakes the full
cross-classification of the five variables (171,000 cells) with numpy IPF.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _weighting_common import MARGINS, W  # noqa: E402

VERSION = "balance"


def load(data, params):
    import logging

    import pandas as pd

    from balance.weighting_methods.rake import rake  # noqa: F401

    logging.getLogger("balance").setLevel(logging.WARNING)
    import numpy as np

    # String columns: balance's NaN indicator cannot be added to a Categorical.
    sample = pd.DataFrame({n: np.asarray(W.labels(n), dtype=object)[data[n]] for n in MARGINS})
    target = pd.DataFrame({n: np.asarray(W.labels(n), dtype=object)[data[f"cell__{n}"]]
                           for n in MARGINS})
    return (sample, pd.Series(data["w"]), target, pd.Series(data["cell__count"]))


def setup(obj, params):
    return obj


def run(state, params):
    from balance.weighting_methods.rake import rake

    sample, w, target, tw = state
    return rake(sample, w, target, tw, variables=MARGINS, transformations=None,
                max_iteration=1000, convergence_rate=params["tol"], rate_tolerance=0.0)


def extract(state, result, params):
    return {"weights": result["weight"].to_numpy(dtype=float),
            "converged": [float(result["model"].get("converged", -1))]}
