"""Multilevel regression and poststratification (MRP)."""

from unmetneed.mrp.frame import PopulationFrame
from unmetneed.mrp.model import MultilevelFit, MultilevelModel, NewLevelWarning, SingularFitWarning

__all__ = [
    "MultilevelFit",
    "MultilevelModel",
    "NewLevelWarning",
    "PopulationFrame",
    "SingularFitWarning",
]
