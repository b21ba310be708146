"""Disclosure control for published tables: suppression, rounding, quality flags.

:func:`protect` applies primary suppression (small counts, few respondents,
high CV), secondary suppression (no suppressed count recoverable from a
total), rounding of published counts and reliability flags;
:func:`describe_protection` words what was applied for a report. The rules
and their sources are in ``docs/methods/disclosure.md``.
"""

from unmetneed.disclosure.describe import describe_protection
from unmetneed.disclosure.protect import FLAGS, protect

__all__ = ["FLAGS", "describe_protection", "protect"]
