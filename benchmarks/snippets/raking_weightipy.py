"""raking, weightipy: weightipy.weight(df, scheme_from_dict({col: {level: pct}})).

weightipy's RIM weighting starts from weights of 1: it has no base (design)
weights, so it solves a different problem (raking unit weights); its
answer is checked against raking from equal base weights. It has no
absolute tolerance either: it iterates until the total weight change stops
falling by a fraction ``convcrit`` (set to 1e-9, so it runs to convergence)
or 1,000 iterations. Targets are percentages; the weights are scaled to the
population total outside the timed call.
"""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _weighting_common import MARGINS  # noqa: E402

VERSION = "weightipy"


def load(data, params):
    import pandas as pd

    import weightipy  # noqa: F401

    df = pd.DataFrame({n: data[n].astype(np.int64) for n in MARGINS})
    pct = {n: {i: float(t) / float(data[f"total__{n}"].sum()) * 100.0
               for i, t in enumerate(data[f"total__{n}"])} for n in MARGINS}
    return df, pct, float(data["total__area"].sum())


def setup(obj, params):
    return obj


def run(state, params):
    import weightipy

    df, pct, _ = state
    scheme = weightipy.scheme_from_dict(pct, name="bench",
                                        rim_params={"max_iterations": 1000, "convcrit": 1e-9})
    return weightipy.weight(df, scheme)


def extract(state, result, params):
    total = state[2]
    w = result.to_numpy(dtype=float)
    return {"weights": w * total / w.sum(), "unit_base": [1.0]}
