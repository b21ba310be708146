"""Harmonisation: recode categories between classifications and check totals agree.

Category maps are data files shipped in ``unmetneed/harmonise/maps/`` (listed by
:func:`list_maps`): ages to the ``age_band`` bands, Census 2021 ethnic group (20
categories, 19 detailed groups, 5 high-level groups), TS038 disability to the
three standard categories, and lower-tier local authorities to upper-tier
councils (2021 boundaries).
"""

from unmetneed.harmonise.apply import harmonise
from unmetneed.harmonise.category_map import (
    CategoryMap,
    categories,
    list_maps,
    load_map,
)
from unmetneed.harmonise.consistency import check_consistency

__all__ = [
    "CategoryMap",
    "categories",
    "check_consistency",
    "harmonise",
    "list_maps",
    "load_map",
]
