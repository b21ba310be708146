"""calibration, svy: sample.weighting.calibrate(controls={Cat(col): {level: total}}).

Linear (GREG) calibration is svy's only calibration distance. svy accepts
every level of every margin (the redundant indicators are handled inside)
and adds one auxiliary column per level to the data.
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
    return svy.Sample(df, svy.Design(wgt="w")), {svy.Cat(n): c for n, c in controls.items()}


def run(state, params):
    sample, controls = state
    return sample.weighting.calibrate(controls=controls)


def extract(state, result, params):
    return {"weights": result.data["calib_wgt"].to_numpy()}
