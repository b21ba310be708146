"""raking, samplics: SampleWeight().rake(samp_weight, margins, control, tol=1e-8).

samplics stops when the relative change of every margin between sweeps is
below ``tol`` and every margin is within ``ctrl_tol`` of its control; both
are set to the benchmark's tol.
"""

import sys
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _weighting_common import MARGINS, code_controls  # noqa: E402

VERSION = "samplics"


def load(data, params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # archived-package warning at import
        import samplics  # noqa: F401
    margins = {n: data[n].astype("int64") for n in MARGINS}
    return data["w"], margins, code_controls(data)


def setup(obj, params):
    return obj


def run(state, params):
    from samplics import SampleWeight

    w, margins, control = state
    return SampleWeight().rake(samp_weight=w, margins=margins, control=control,
                               tol=params["tol"], ctrl_tol=params["tol"], max_iter=1000)


def extract(state, result, params):
    return {"weights": result}
