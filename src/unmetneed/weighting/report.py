"""`WeightingReport` and `WeightingResult`: what a weighting step did, and how well."""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd

from unmetneed._immutable import readonly
from unmetneed._validate import as_column_list, column_values
from unmetneed.design import SurveyDesign
from unmetneed.errors import DesignError
from unmetneed.weighting.blocks import Block

__all__ = [
    "DaskWeightingResult",
    "WeightingReport",
    "WeightingResult",
    "cell_weight_summary",
    "margin_fit_table",
    "weight_summary",
]


def kish_deff(weights: np.ndarray) -> float:
    """Kish's design effect due to unequal weights, :math:`n \\sum w^2 / (\\sum w)^2`."""
    return float(weights.size * np.sum(weights**2) / np.sum(weights) ** 2)


def weight_summary(weights: np.ndarray, base: np.ndarray | None = None) -> pd.Series:
    """Distribution of weights (and g-weights when ``base`` is given)."""
    q = np.quantile(weights, [0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99])
    positive = weights[weights > 0]
    out = {
        "n": weights.size,
        "sum": float(weights.sum()),
        "min": float(weights.min()),
        "p01": q[0],
        "p05": q[1],
        "p25": q[2],
        "median": q[3],
        "p75": q[4],
        "p95": q[5],
        "p99": q[6],
        "max": float(weights.max()),
        "max_over_min": float(positive.max() / positive.min()) if positive.size else np.nan,
        "share_negative": float(np.mean(weights < 0)),
        "share_zero": float(np.mean(weights == 0)),
        "kish_deff": kish_deff(weights),
        "effective_n": float(weights.sum() ** 2 / np.sum(weights**2)),
    }
    if base is not None:
        with np.errstate(divide="ignore", invalid="ignore"):
            g = weights[base != 0] / base[base != 0]
        out["g_min"] = float(g.min()) if g.size else np.nan
        out["g_max"] = float(g.max()) if g.size else np.nan
    return pd.Series(out, name="weights")


def cell_weight_summary(
    rows: np.ndarray, totals: np.ndarray, squares: np.ndarray, zeros: np.ndarray, g: np.ndarray | None = None
) -> pd.Series:
    """:func:`weight_summary` of rows known only by cell: rows, weight totals, sums of squares, zeros.

    With ``g``, the summary of the weights ``g[cell] * w``. What needs the
    rows themselves (minimum, quantiles, maximum, max/min) is NaN.

    Examples
    --------
    >>> import numpy as np
    >>> from unmetneed.weighting.report import cell_weight_summary
    >>> s = cell_weight_summary(np.array([2, 1]), np.array([3.0, 4.0]), np.array([5.0, 16.0]), np.array([0, 0]))
    >>> float(s["sum"]), round(float(s["kish_deff"]), 4), bool(np.isnan(s["median"]))
    (7.0, 1.2857, True)
    """
    factor = np.ones(totals.size) if g is None else g
    n = float(rows.sum())
    total = float(totals @ factor)
    square = float(squares @ factor**2)
    nonzero = rows - zeros
    out: dict[str, float] = dict.fromkeys(
        ["min", "p01", "p05", "p25", "median", "p75", "p95", "p99", "max", "max_over_min"], np.nan
    )
    out.update(
        n=n,
        sum=total,
        share_negative=float(nonzero[factor < 0].sum()) / n,
        share_zero=float(zeros.sum() + nonzero[factor == 0].sum()) / n,
        kish_deff=n * square / total**2,
        effective_n=total**2 / square,
    )
    if g is not None:
        based = g[nonzero > 0]
        out["g_min"] = float(based.min()) if based.size else np.nan
        out["g_max"] = float(based.max()) if based.size else np.nan
    order = [*weight_summary(np.ones(1)).index, *(["g_min", "g_max"] if g is not None else [])]
    return pd.Series(out, name="weights")[order]


def margin_fit_table(blocks: Sequence[Block], before: np.ndarray, after: np.ndarray) -> pd.DataFrame:
    """Per margin category: target, weighted total before and after, relative errors."""
    frames = []
    for block in blocks:
        if block.codes is None:
            labels: list[Any] = ["(total)"]
        else:
            labels = [" x ".join(map(str, c)) if isinstance(c, tuple) else c for c in block.categories]
        target = block.target
        scale = np.where(target != 0, np.abs(target), 1.0)
        b, a = block.achieved(before), block.achieved(after)
        frames.append(
            pd.DataFrame(
                {
                    "margin": str(block.key),
                    "category": pd.Series(labels, dtype=object).astype(str),
                    "target": target,
                    "before": b,
                    "after": a,
                    "rel_error_before": (b - target) / scale,
                    "rel_error_after": (a - target) / scale,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


@dataclass(frozen=True, eq=False)
class WeightingReport:
    """Diagnostics of a weighting step.

    Attributes
    ----------
    method : str
        ``"rake"``, ``"calibrate(linear)"``, ``"poststratify"``, ``"trim"``, ...
    converged : bool
    iterations : int
    max_rel_error : float
        Largest relative margin error after weighting.
    margin_fit : DataFrame
        ``margin, category, target, before, after, rel_error_before, rel_error_after``.
    weights_before, weights_after : Series
        Weight distributions (min, quantiles, max, max/min, share negative,
        Kish deff, effective sample size; g-weight range after).
    adjustments : tuple of str
        What was changed to make the margins fit (collapsed categories,
        scaled totals, categories left out), in words.
    messages : tuple of str
        Anything else a user should know (negative weights, bounds).
    options : mapping
        The call's options, for provenance.

    The tables are computed when first asked for, so weighting itself stays fast.
    A report of a Dask DataFrame's weights (:class:`DaskWeightingResult`) has
    its weight distributions from cell totals: no quantiles, minimum or maximum.
    """

    method: str
    converged: bool
    iterations: int
    max_rel_error: float
    before: np.ndarray
    after: np.ndarray
    blocks: Sequence[Block] = ()
    table: pd.DataFrame | None = None
    adjustments: Sequence[str] = ()
    messages: Sequence[str] = ()
    options: Any = field(default_factory=dict)
    _design: SurveyDesign | None = None
    summaries: tuple[pd.Series, pd.Series] | None = None  # weights before, after (rows not in memory)

    def __post_init__(self) -> None:
        # Frozen all the way down: read-only weight copies, tuples, a read-only mapping.
        for name in ("before", "after"):
            object.__setattr__(self, name, readonly(getattr(self, name), np.float64))
        object.__setattr__(self, "blocks", tuple(self.blocks))
        object.__setattr__(self, "adjustments", tuple(self.adjustments))
        object.__setattr__(self, "messages", tuple(self.messages))
        if self.table is not None:
            object.__setattr__(self, "table", self.table.copy(deep=True))
        object.__setattr__(self, "options", MappingProxyType(dict(self.options)))

    @cached_property
    def _margin_fit(self) -> pd.DataFrame:
        if self.table is not None:
            return self.table
        return margin_fit_table(self.blocks, self.before, self.after)

    @property
    def margin_fit(self) -> pd.DataFrame:
        """A copy of the margin fit table (computed once)."""
        return self._margin_fit.copy(deep=True)

    @cached_property
    def _weights_before(self) -> pd.Series:
        if self.summaries is not None:
            return self.summaries[0]
        return weight_summary(self.before)

    @cached_property
    def _weights_after(self) -> pd.Series:
        if self.summaries is not None:
            return self.summaries[1]
        return weight_summary(self.after, self.before if self.before.size == self.after.size else None)

    @property
    def weights_before(self) -> pd.Series:
        """A copy of the weight distribution before the step."""
        return self._weights_before.copy(deep=True)

    @property
    def weights_after(self) -> pd.Series:
        """A copy of the weight distribution after the step."""
        return self._weights_after.copy(deep=True)

    @property
    def kish_deff(self) -> float:
        """Design effect due to weighting (Kish 1965) after the step."""
        return float(self.weights_after["kish_deff"])

    @property
    def effective_sample_size(self) -> float:
        """:math:`(\\sum w)^2 / \\sum w^2` after the step."""
        return float(self.weights_after["effective_n"])

    def effective_sample_size_by(self, by: str | Sequence[str]) -> pd.DataFrame:
        """Respondents, effective sample size and Kish deff per group of ``by``.

        Examples
        --------
        >>> import pandas as pd, unmetneed as um
        >>> d = um.datasets.load_example_design()
        >>> r = um.poststratify(d, um.Margins({"sex": pd.Series({"Female": 5e5, "Male": 4.8e5})}))
        >>> r.report.effective_sample_size_by("sex").columns.tolist()
        ['sex', 'n', 'effective_n', 'kish_deff']
        """
        if self._design is None:
            raise DesignError(
                "this report has no design attached (the weights of a Dask DataFrame): group "
                "result.weights by the columns with Dask instead"
            )
        columns = as_column_list(by)
        data = self._design.data
        for c in columns:
            column_values(data, c, "by")
        w = self._design.weights
        frame = data[columns].copy()
        frame["_w"] = w
        frame["_w2"] = w * w
        grouped = frame.groupby(columns, observed=True, sort=True)
        out = grouped.agg(n=("_w", "size"), s=("_w", "sum"), s2=("_w2", "sum")).reset_index()
        out["effective_n"] = out["s"] ** 2 / out["s2"]
        out["kish_deff"] = out["n"] / out["effective_n"]
        return out[columns + ["n", "effective_n", "kish_deff"]]

    def to_frame(self) -> pd.DataFrame:
        """The margin fit table (with the method and convergence in ``attrs``)."""
        table = self.margin_fit
        table.attrs.update(
            {
                "method": self.method,
                "converged": self.converged,
                "iterations": self.iterations,
                "max_rel_error": self.max_rel_error,
            }
        )
        return table

    def summary(self) -> str:
        lines = [
            (
                f"{self.method}: {'converged' if self.converged else 'NOT converged'} in "
                f"{self.iterations} iteration(s); largest relative margin error "
                f"{self.max_rel_error:.3g}"
            ),
            (
                f"Kish deff {self.kish_deff:.4g}, effective sample size "
                f"{self.effective_sample_size:,.1f} of {int(self.weights_after['n']):,}"
            ),
            (
                f"weights {self.weights_after['min']:.6g} .. {self.weights_after['max']:.6g} "
                f"(max/min {self.weights_after['max_over_min']:.4g}, "
                f"{self.weights_after['share_negative']:.1%} negative)"
            ),
        ]
        if np.isnan(self.weights_after["min"]):  # a Dask DataFrame's weights: not in memory
            lines.pop()
        if "g_min" in self.weights_after:
            lines.append(f"g-weights {self.weights_after['g_min']:.6g} .. {self.weights_after['g_max']:.6g}")
        lines += [f"adjusted: {a}" for a in self.adjustments]
        lines += [f"note: {m}" for m in self.messages]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<WeightingReport>\n{self.summary()}"

    def _repr_html_(self) -> str:
        summary = "<br>".join(html.escape(line) for line in self.summary().split("\n"))
        table = self._margin_fit.to_html(index=False, border=0, float_format=lambda v: f"{v:.6g}")
        return f"<div><p>{summary}</p>{table}</div>"


@dataclass(frozen=True, eq=False)
class WeightingResult:
    """A weighted design and the report of how it was weighted."""

    design: SurveyDesign
    report: WeightingReport

    def __repr__(self) -> str:
        return f"<WeightingResult: {self.design!r}>\n{self.report.summary()}"

    def _repr_html_(self) -> str:
        return f"<div><p>{html.escape(repr(self.design))}</p>{self.report._repr_html_()}</div>"


@dataclass(frozen=True, eq=False)
class DaskWeightingResult:
    """The weights of a Dask DataFrame (lazy) and the report of how they were found.

    Attributes
    ----------
    weights : dask.dataframe.Series
        One weight per row, with the input's partitions and index: the base
        weight times its cell's g-weight. Lazy: compute or persist it (or write
        it out) while the Dask client it was made on is still open.
    report : WeightingReport
        Convergence and the margin fit table as for a design; the weight
        distributions come from cell totals (no quantiles, minimum or maximum).
    cells : DataFrame
        One row per combination of the margin variables found in the data:
        the variables, ``rows``, ``base_weight`` (its total) and ``g``.
    """

    weights: Any
    report: WeightingReport
    cells: pd.DataFrame

    def __post_init__(self) -> None:
        object.__setattr__(self, "cells", self.cells.copy(deep=True))

    def __repr__(self) -> str:
        return (
            f"<DaskWeightingResult: {self.weights.npartitions} partitions, "
            f"{len(self.cells):,} cells>\n{self.report.summary()}"
        )

    def _repr_html_(self) -> str:
        head = html.escape(repr(self).split("\n", 1)[0])
        return f"<div><p>{head}</p>{self.report._repr_html_()}</div>"
