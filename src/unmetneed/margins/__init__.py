"""Population totals (margins) that survey weights are calibrated to."""

from unmetneed.margins.margins import Margins, MarginKey

__all__ = ["MarginKey", "Margins"]
