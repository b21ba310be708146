"""calibration, samplics: SampleWeight().calibrate(samp_weight, aux_vars, control).

samplics takes a dense n x p matrix of auxiliaries: the indicators of every
level of the first margin and of all but the first level of the others
(p = 180), built in set-up. ``calib_covariates`` is not used: it crosses the
categorical variables into cells instead of treating them as margins.
"""

import sys
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _weighting_common import MARGINS  # noqa: E402

VERSION = "samplics"


def load(data, params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import samplics  # noqa: F401
    return data


def _available_bytes() -> float:
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemAvailable"):
                return float(line.split()[1]) * 1024
    except OSError:
        pass
    return float("inf")


def setup(data, params):
    n = data["w"].size
    # SampleWeight._core_matrix builds np.diag(samp_weight / scale): a dense
    # n x n matrix. Refuse up front where it cannot fit rather than let the
    # machine swap or the allocation fail half-way.
    need = 8.0 * n * n
    if need > 0.5 * _available_bytes():
        from _common import NotAvailable

        raise NotAvailable(
            f"samplics calibrate() forms np.diag(weights), a dense n x n matrix: "
            f"{need / 1e9:,.0f} GB at {n:,} rows (runs only up to about 40,000 rows here)")
    cols, control = [], {}
    for j, name in enumerate(MARGINS):
        codes = data[name].astype(np.int64)
        tot = data[f"total__{name}"]
        for level in range(0 if j == 0 else 1, tot.size):
            cols.append((codes, level))
            control[f"{name}_{level}"] = float(tot[level])
    x = np.zeros((n, len(cols)))
    for k, (codes, level) in enumerate(cols):
        x[:, k] = codes == level
    return data["w"], x, control


def run(state, params):
    from samplics import SampleWeight

    w, x, control = state
    return SampleWeight().calibrate(samp_weight=w, aux_vars=x, control=control)


def extract(state, result, params):
    return {"weights": result}
