"""Weighting survey designs to population totals: rake, calibrate, poststratify, trim."""

from unmetneed.weighting.functions import (
    adjust_nonresponse,
    calibrate,
    poststratify,
    rake,
    trim,
)
from unmetneed.weighting.report import WeightingReport, WeightingResult

__all__ = [
    "WeightingReport",
    "WeightingResult",
    "adjust_nonresponse",
    "calibrate",
    "poststratify",
    "rake",
    "trim",
]
