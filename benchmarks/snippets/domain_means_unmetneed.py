"""domain_means, unmetneed: d.mean("y", by="area") with Taylor SEs."""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import NotAvailable, import_unmetneed  # noqa: E402

VERSION = "unmetneed"


def load(data, params):
    import pandas as pd

    import_unmetneed()  # import outside the timed set-up
    # psu ids repeat across strata: nest=True makes them unique within strata.
    return pd.DataFrame({k: data[k] for k in ("stratum", "psu", "area", "w", "y")})


def setup(df, params):
    um = import_unmetneed()
    if not hasattr(um, "SurveyDesign"):
        raise NotAvailable("unmetneed.SurveyDesign does not exist yet")
    return um.SurveyDesign(df, weights="w", strata="stratum", clusters="psu", nest=True)


def run(design, params):
    # Time the cold call, as the peers do it: the design caches the integer codes of
    # `by` and `y` after a first call, so clear that cache before every timed call.
    design._cache.clear()  # noqa: SLF001 - benchmark only
    return design.mean("y", by="area")


def extract(design, est, params):
    f = est.to_frame().set_index("area").reindex(np.arange(150))
    return {"estimate": f["estimate"].to_numpy(float), "se": f["se"].to_numpy(float),
            "n": f["n"].to_numpy(float)}
