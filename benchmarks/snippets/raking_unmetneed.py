"""raking, unmetneed: um.rake(design, um.Margins({...}), tol=1e-8).

The Margins are built inside the timed call (as a user writes it); the
design is built in set-up.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import NotAvailable, import_unmetneed  # noqa: E402
from _weighting_common import MARGINS, W  # noqa: E402

VERSION = "unmetneed"


def load(data, params):
    import pandas as pd

    import_unmetneed()
    df = pd.DataFrame({n: pd.Categorical.from_codes(data[n].astype("int64"), W.labels(n))
                       for n in MARGINS})
    df["w"] = data["w"]
    series = {n: pd.Series(data[f"total__{n}"], index=pd.Index(W.labels(n), name=n))
              for n in MARGINS}
    return df, series


def setup(obj, params):
    um = import_unmetneed()
    missing = [name for name in ("rake", "Margins") if not hasattr(um, name)]
    if missing:
        raise NotAvailable(f"unmetneed has no {', '.join(missing)} yet")
    df, series = obj
    return um, um.SurveyDesign(df, weights="w"), series


def run(state, params):
    um, design, series = state
    # Time the cold call, as the peers do it: the design caches integer codes of its
    # columns after a first call, so clear that cache before every timed call.
    design._cache.clear()  # noqa: SLF001 - benchmark only
    return um.rake(design, um.Margins(dict(series)), tol=params["tol"])


def extract(state, result, params):
    return {"weights": result.design.weights}
