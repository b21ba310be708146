"""The self-contained HTML report of a run (figures embedded as PNG)."""

from unmetneed.report.html import write_report

__all__ = ["write_report"]
