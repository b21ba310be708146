"""Population totals (margins) that survey weights are calibrated to."""

from unmetneed.margins.margins import MarginKey, Margins

__all__ = ["MarginKey", "Margins"]
