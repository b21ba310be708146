"""raking, svy: sample.weighting.rake(controls={col: {level: total}}, tol=1e-8).

Returns a new Sample with the raked weight column ``rk_wgt``; the input
sample is unchanged, so repeated calls are independent.
"""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _weighting_common import MARGINS, code_controls  # noqa: E402

VERSION = "svy"


def load(data, params):
    import polars as pl

    df = pl.DataFrame({**{n: data[n].astype(np.int64) for n in MARGINS}, "w": data["w"]})
    return df, code_controls(data)


def setup(obj, params):
    import svy

    df, controls = obj
    return svy.Sample(df, svy.Design(wgt="w")), controls


def run(state, params):
    sample, controls = state
    return sample.weighting.rake(controls=controls, tol=params["tol"], max_iter=1000)


def extract(state, result, params):
    return {"weights": result.data["rk_wgt"].to_numpy()}
