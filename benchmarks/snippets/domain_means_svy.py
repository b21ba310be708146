"""domain_means, svy: Sample(...).estimation.mean("y", by="area"), Taylor.

svy.Design has no nest option: PSU ids must be unique across strata, so the
globally unique ``psu_id`` is passed. No fpc, with-replacement variance.
"""

import numpy as np

VERSION = "svy"


def load(data, params):
    import polars as pl

    return pl.DataFrame({"stratum": data["stratum"], "psu": data["psu_id"],
                         "area": data["area"], "w": data["w"], "y": data["y"]})


def setup(df, params):
    import svy

    return svy.Sample(df, svy.Design(stratum="stratum", psu="psu", wgt="w"))


def run(sample, params):
    return sample.estimation.mean("y", by="area", method="taylor")


def extract(sample, est, params):
    f = est.to_polars().sort("area")
    area = f["area"].to_numpy()
    out = {"estimate": np.full(150, np.nan), "se": np.full(150, np.nan)}
    out["estimate"][area] = f["est"].to_numpy()
    out["se"][area] = f["se"].to_numpy()
    return out
