"""calibration, unmetneed: um.calibrate(design, um.Margins({...}), method="linear").

Same data, design and checks as the raking snippet; only the call differs.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from raking_unmetneed import VERSION, extract, load  # noqa: E402,F401
from raking_unmetneed import setup as _setup  # noqa: E402

from _common import NotAvailable  # noqa: E402


def setup(obj, params):
    um, design, series = _setup(obj, params)
    if not hasattr(um, "calibrate"):
        raise NotAvailable("unmetneed has no calibrate yet")
    return um, design, series


def run(state, params):
    um, design, series = state
    # Cold call, as the peers compute theirs: clear the design's code cache first.
    design._cache.clear()  # noqa: SLF001 - benchmark only
    return um.calibrate(design, um.Margins(dict(series)), method="linear")
