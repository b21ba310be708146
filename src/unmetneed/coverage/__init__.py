"""Coverage-gap diagnostics: who each data source misses.

:func:`coverage_gaps` compares each source (a survey of a known population,
such as the ASCS of council-funded users) with what it should cover (a
modelled care population or a census count), counts the people council data
leave out by design (self-funders, people never assessed), measures how much
model-based estimates rest on data rather than pooling, and how
representative each source's respondents are. See ``docs/methods/coverage.md``.
"""

from unmetneed.coverage.excluded import EXCLUDED
from unmetneed.coverage.gaps import coverage_gaps
from unmetneed.coverage.report import CoverageReport
from unmetneed.coverage.representativeness import ASMD_THRESHOLD
from unmetneed.coverage.support import POOLING_THRESHOLD

__all__ = ["ASMD_THRESHOLD", "EXCLUDED", "POOLING_THRESHOLD", "CoverageReport", "coverage_gaps"]
