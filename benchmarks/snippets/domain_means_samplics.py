"""domain_means, samplics: TaylorEstimator(PopParam.mean).estimate(..., domain=).

samplics has no nest option either: the globally unique ``psu_id`` is
passed. The estimator object is rebuilt inside the timed call because
``estimate`` stores its results on the instance.
"""

import warnings

import numpy as np

VERSION = "samplics"


def load(data, params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # samplics warns at import that it is archived
        import samplics  # noqa: F401
    return {k: data[k] for k in ("stratum", "psu_id", "area", "w", "y")}


def setup(arrays, params):
    # samplics has no design object: everything happens in estimate().
    return arrays


def run(a, params):
    from samplics import PopParam, TaylorEstimator

    est = TaylorEstimator(PopParam.mean)
    est.estimate(y=a["y"], samp_weight=a["w"], stratum=a["stratum"], psu=a["psu_id"],
                 domain=a["area"], remove_nan=False)
    return est


def extract(a, est, params):
    out = {"estimate": np.full(150, np.nan), "se": np.full(150, np.nan)}
    for d, v in est.point_est.items():
        out["estimate"][int(d)] = v
    for d, v in est.stderror.items():
        out["se"][int(d)] = v
    return out
