"""Multilevel regression and poststratification (MRP)."""

from unmetneed.mrp.frame import PopulationFrame

__all__ = ["PopulationFrame"]
