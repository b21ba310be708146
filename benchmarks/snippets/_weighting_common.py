"""Shared loading for the raking and calibration snippets (numpy only)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import workloads as W  # noqa: E402

MARGINS = list(W.MARGIN_SIZES)


def totals(data) -> dict[str, np.ndarray]:
    return {name: data[f"total__{name}"] for name in MARGINS}


def code_controls(data) -> dict[str, dict[int, float]]:
    """{margin: {integer code: population total}}."""
    return {name: {i: float(t) for i, t in enumerate(data[f"total__{name}"])}
            for name in MARGINS}
