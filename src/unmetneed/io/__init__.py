"""Readers: census tables, survey microdata, admin counts, care homes, remote downloads.

Every reader returns a pandas DataFrame using the library's standard names
(``area_code``, ``area_name``, ``count``, ...) and records its provenance
(source, SHA-256 of the file, layout) in ``DataFrame.attrs``.

:func:`read_csv_checked` is the CSV reader underneath them, for tables the
readers do not know (the command line's config inputs): it refuses truncated,
ragged, HTML or repeated-header files and keeps codes such as ``"01"`` as strings.
"""

from unmetneed.io._common import read_csv_checked
from unmetneed.io._labels import parse_interval
from unmetneed.io.admin import read_admin_counts
from unmetneed.io.care_homes import read_care_home_register, read_provider_returns
from unmetneed.io.census import LAYOUTS, read_census_table
from unmetneed.io.fetch import default_cache_dir, fetch_table
from unmetneed.io.survey import FORMATS, read_survey
from unmetneed.io.unpaid_care import UNPAID_CARE_BANDS, read_unpaid_care_msoa

__all__ = [
    "FORMATS",
    "LAYOUTS",
    "UNPAID_CARE_BANDS",
    "default_cache_dir",
    "fetch_table",
    "parse_interval",
    "read_admin_counts",
    "read_care_home_register",
    "read_census_table",
    "read_csv_checked",
    "read_provider_returns",
    "read_survey",
    "read_unpaid_care_msoa",
]
