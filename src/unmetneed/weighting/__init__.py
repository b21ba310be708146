"""Weighting survey designs to population totals: rake, calibrate, poststratify, trim."""

from unmetneed.weighting.functions import (
    adjust_nonresponse,
    calibrate,
    poststratify,
    rake,
    trim,
)
from unmetneed.weighting.report import DaskWeightingResult, WeightingReport, WeightingResult

__all__ = [
    "DaskWeightingResult",
    "WeightingReport",
    "WeightingResult",
    "adjust_nonresponse",
    "calibrate",
    "poststratify",
    "rake",
    "trim",
]
