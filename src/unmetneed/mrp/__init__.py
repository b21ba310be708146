"""Multilevel regression and poststratification (MRP)."""

from unmetneed.datasets.builders import register_builder
from unmetneed.mrp.draw_estimates import DrawEstimates
from unmetneed.mrp.frame import PopulationFrame
from unmetneed.mrp.model import (
    MultilevelFit,
    MultilevelModel,
    NewLevelWarning,
    SingularFitWarning,
)
from unmetneed.mrp.poststratify import poststratify
from unmetneed.mrp.synthetic import synthetic_frame

# datasets (the layer below) builds its population frames with this class.
register_builder("population_frame", PopulationFrame)

__all__ = [
    "DrawEstimates",
    "MultilevelFit",
    "MultilevelModel",
    "NewLevelWarning",
    "PopulationFrame",
    "SingularFitWarning",
    "poststratify",
    "synthetic_frame",
]
