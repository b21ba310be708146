"""Embedded reference data that ships with the package (no network needed).

``load_example_survey`` is a small example survey (``load_example_design``, its
design; ``load_example_areas``, six areas for Fay-Herriot); ``load_synthetic_england`` is a whole synthetic England with known truth (see
:mod:`unmetneed.datasets.synthetic` and ``data/reference/README.md``).
"""

from unmetneed.datasets.example import (
    load_example_areas,
    load_example_design,
    load_example_survey,
    make_example_survey,
    reference_path,
)
from unmetneed.datasets.synthetic import (
    CareHomes,
    SyntheticEngland,
    generate_synthetic_england,
    load_synthetic_england,
    write_synthetic_england,
)

__all__ = [
    "CareHomes",
    "SyntheticEngland",
    "generate_synthetic_england",
    "load_example_areas",
    "load_example_design",
    "load_example_survey",
    "load_synthetic_england",
    "make_example_survey",
    "reference_path",
    "write_synthetic_england",
]
