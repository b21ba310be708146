"""Figures of the report, as base64 PNG strings (matplotlib, Agg backend)."""

from __future__ import annotations

import base64
import io
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["dot_interval", "histogram", "require_matplotlib"]


def require_matplotlib() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg", force=True)
        import matplotlib.pyplot as plt
    except ImportError as error:  # pragma: no cover - the plot extra is installed by make demo/test
        raise ImportError(
            "the report needs matplotlib: pip install 'unmetneed[plot]'"
        ) from error
    return plt


def _png(fig: Any) -> str:
    plt = require_matplotlib()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def dot_interval(table: pd.DataFrame, *, label: str, title: str, xlabel: str,
                 flag: pd.Series | None = None, max_rows: int = 160) -> str:
    """Sorted dot-and-interval chart (one row per group)."""
    plt = require_matplotlib()
    data = table.sort_values("estimate").tail(max_rows)
    height = max(2.5, 0.12 * len(data) + 1.0)
    fig, ax = plt.subplots(figsize=(7.5, height))
    y = np.arange(len(data))
    colours = np.where(
        (data["flag"] if "flag" in data else pd.Series("ok", index=data.index)) == "ok",
        "#1f5f8b", "#c0392b",
    )
    ax.hlines(y, data["ci_lower"], data["ci_upper"], color="#9bb7cc", linewidth=1.2)
    ax.scatter(data["estimate"], y, s=10, color=colours, zorder=3)
    ax.set_yticks(y)
    ax.set_yticklabels(data[label].astype(str), fontsize=6 if len(data) > 40 else 8)
    ax.set_xlabel(xlabel)
    ax.set_title(title, fontsize=10)
    ax.grid(axis="x", color="#eeeeee")
    return _png(fig)


def histogram(values: np.ndarray, *, title: str, xlabel: str) -> str:
    plt = require_matplotlib()
    fig, ax = plt.subplots(figsize=(6, 2.8))
    ax.hist(values, bins=60, color="#1f5f8b")
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(xlabel)
    ax.set_yscale("log")
    return _png(fig)
