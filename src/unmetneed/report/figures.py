"""Figures of the report, as base64 PNG strings (matplotlib, Agg backend).

Colours are the Okabe-Ito palette (distinguishable with the common colour-vision
deficiencies), markers differ by flag as well as colour, and every figure has a
legend in the figure itself. Suppressed groups are drawn as suppressed (a grey
cross at the left edge, labelled), never silently left out.
"""

from __future__ import annotations

import base64
import io
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["FLAG_STYLE", "dot_interval", "histogram", "require_matplotlib"]

# Okabe & Ito (2008), "Color universal design": blue, orange, grey.
FLAG_STYLE = {
    "ok": {"color": "#0072B2", "marker": "o", "label": "estimate (reliable)"},
    "low_reliability": {
        "color": "#E69F00",
        "marker": "D",
        "label": "low reliability (CV above the flag limit)",
    },
    "suppressed": {"color": "#6E6E6E", "marker": "x", "label": "suppressed (disclosure control)"},
    "over_count": {
        "color": "#CC79A7",
        "marker": "s",
        "label": "over-count (source counts more than the target)",
    },
}
INTERVAL_COLOUR = "#8FBBD9"


def require_matplotlib() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg", force=True)
        import matplotlib.pyplot as plt
    except ImportError as error:  # pragma: no cover - the plot extra is installed by make demo/test
        raise ImportError("the report needs matplotlib: pip install 'unmetneed[plot]'") from error
    return plt


def _png(fig: Any) -> str:
    plt = require_matplotlib()
    buffer = io.BytesIO()
    # The figures use constrained layout: one draw (bbox_inches="tight" draws twice).
    fig.savefig(buffer, format="png", dpi=100, metadata={"Software": None})
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def dot_interval(
    table: pd.DataFrame, *, label: str, title: str, xlabel: str, level: float, reference: float | None = None
) -> str:
    """Sorted dot-and-interval chart, one row per group; suppressed groups shown as such.

    ``table`` has ``label``, ``estimate``, ``ci_lower``, ``ci_upper`` and ``flag``.
    """
    plt = require_matplotlib()
    data = table.copy()
    data["flag"] = data["flag"].fillna("ok").astype(str)
    shown = data[data["flag"] != "suppressed"].sort_values("estimate")
    hidden = data[data["flag"] == "suppressed"].sort_values(label)
    ordered = pd.concat([hidden, shown], ignore_index=True)
    rows = len(ordered)
    height = max(2.2, 0.19 * rows + 1.3)
    fig, ax = plt.subplots(figsize=(9.5, height), layout="constrained")
    y = np.arange(rows)
    published = ordered["flag"] != "suppressed"
    ax.hlines(
        y[published],
        ordered.loc[published, "ci_lower"],
        ordered.loc[published, "ci_upper"],
        color=INTERVAL_COLOUR,
        linewidth=1.6,
        label=f"{level:.0%} interval",
    )
    left = float(np.nanmin(ordered.loc[published, "ci_lower"])) if published.any() else 0.0
    left = min(left, 0.0) if reference is None else min(left, reference)
    for flag, style in FLAG_STYLE.items():
        at = (ordered["flag"] == flag).to_numpy()
        if not at.any():
            continue
        x = (
            ordered.loc[at, "estimate"].to_numpy(dtype=float)
            if flag != "suppressed"
            else np.full(at.sum(), left)
        )
        ax.scatter(
            x,
            y[at],
            s=22,
            color=style["color"],
            marker=style["marker"],
            zorder=3,
            label=f"{style['label']} ({int(at.sum())})",
        )
    if reference is not None:
        ax.axvline(reference, color="#444444", linestyle="--", linewidth=1)
    labels = [
        f"{v} (suppressed)" if f == "suppressed" else str(v)
        for v, f in zip(ordered[label], ordered["flag"], strict=True)
    ]
    ax.set_yticks(y, labels, fontsize=8)
    ax.set_ylim(rows - 0.2, -0.8)  # suppressed groups first, at the top; then lowest to highest
    ax.set_xlabel(xlabel, fontsize=10)
    ax.set_title(title, fontsize=11)
    ax.grid(axis="x", color="#e6e6e6")
    # Beside the axes, so it never hides a group's dot.
    fig.legend(loc="outside right upper", fontsize=8, framealpha=0.95)
    return _png(fig)


def histogram(values: np.ndarray, *, title: str, xlabel: str) -> str:
    plt = require_matplotlib()
    fig, ax = plt.subplots(figsize=(6.5, 3.0), layout="constrained")
    ax.hist(values, bins=60, color="#0072B2", label="respondents")
    ax.set_title(title, fontsize=11)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("respondents (log scale)")
    ax.set_yscale("log")
    ax.legend(fontsize=8)
    return _png(fig)
