"""Embedded reference data that ships with the package (no network needed)."""

from unmetneed.datasets.example import load_example_survey, make_example_survey, reference_path

__all__ = ["load_example_survey", "make_example_survey", "reference_path"]
