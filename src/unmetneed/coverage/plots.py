"""Plots of a coverage report (matplotlib, the optional ``plot`` extra, imported lazily)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from unmetneed.errors import DesignError

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

__all__ = ["area_coverage_figure", "coverage_figure", "pyplot"]

_MAX_AREA_LABELS = 40


def pyplot() -> Any:
    """``matplotlib.pyplot``, or an ImportError that names the ``plot`` extra."""
    try:
        import matplotlib.pyplot as plt
    except ImportError as error:
        raise ImportError(
            "plotting needs matplotlib, an optional dependency of unmetneed: install it with "
            "pip install 'unmetneed[plot]'"
        ) from error
    return plt


def _sources(table: pd.DataFrame, source: str | None) -> list[str]:
    names = list(pd.unique(table["source"]))
    if source is None:
        return names
    if source not in names:
        raise DesignError(f"source={source!r} is not in the report; sources: {names}")
    return [source]


def _errors(part: pd.DataFrame) -> np.ndarray:
    """Distances from the point to the interval ends (0 where the interval is missing)."""
    lower = (part["coverage"] - part["coverage_lower"]).clip(lower=0).fillna(0.0)
    upper = (part["coverage_upper"] - part["coverage"]).clip(lower=0).fillna(0.0)
    return np.vstack([lower.to_numpy(), upper.to_numpy()])


def coverage_figure(table: pd.DataFrame, variable: str, level: float, source: str | None) -> Figure:
    """Coverage by category of ``variable``: one row per category, one marker per source."""
    plt = pyplot()
    names = _sources(table, source)
    categories = list(pd.unique(table[variable]))
    fig, ax = plt.subplots(figsize=(7.0, 1.2 + 0.45 * len(categories) * max(1, len(names)) ** 0.5))
    offsets = np.linspace(-0.25, 0.25, len(names)) if len(names) > 1 else np.zeros(1)
    positions = {c: i for i, c in enumerate(categories)}
    for offset, name in zip(offsets, names, strict=True):
        part = table[table["source"] == name]
        y = part[variable].map(positions).to_numpy(dtype=float) + offset
        target = part["target"].iloc[0]
        ax.errorbar(
            part["coverage"], y, xerr=_errors(part), fmt="o", capsize=3, label=f"{name} (of {target})"
        )
    ax.axvline(1.0, color="0.5", linestyle="--", linewidth=1)
    ax.set_yticks(range(len(categories)), [str(c) for c in categories])
    ax.invert_yaxis()
    ax.set_xlabel(f"coverage: share of the target the source covers ({level:.0%} intervals)")
    ax.set_title(f"Who each source reaches, by {variable}")
    ax.legend(loc="best", fontsize="small")
    fig.tight_layout()
    return fig


def area_coverage_figure(table: pd.DataFrame, area: str, level: float, source: str | None) -> Figure:
    """Areas sorted by coverage, a dot and interval each; one panel per source."""
    plt = pyplot()
    names = _sources(table, source)
    n_areas = table[area].nunique()
    fig, axes = plt.subplots(1, len(names), figsize=(4.5 * len(names), 1.5 + 0.12 * n_areas), squeeze=False)
    for ax, name in zip(axes[0], names, strict=True):
        part = table[table["source"] == name].sort_values("coverage", na_position="first")
        y = np.arange(len(part))
        ax.errorbar(part["coverage"], y, xerr=_errors(part), fmt="o", markersize=3, elinewidth=0.8, capsize=0)
        ax.axvline(1.0, color="0.5", linestyle="--", linewidth=1)
        ax.invert_yaxis()  # the lowest coverage, the areas most missed, at the top
        if len(part) <= _MAX_AREA_LABELS:
            ax.set_yticks(y, [str(v) for v in part[area]], fontsize="small")
        else:
            ax.set_yticks([])
            ax.set_ylabel(f"{len(part)} areas, sorted by coverage")
        ax.set_xlabel(f"coverage of {part['target'].iloc[0]} ({level:.0%} intervals)")
        ax.set_title(name)
    fig.tight_layout()
    return fig
