"""`CoverageReport`: who each data source misses, as tables, text and plots."""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from unmetneed._validate import as_column_list
from unmetneed.coverage.plots import area_coverage_figure, coverage_figure
from unmetneed.coverage.representativeness import ASMD_THRESHOLD
from unmetneed.coverage.support import AREA, POOLING_THRESHOLD
from unmetneed.errors import DesignError

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

__all__ = ["CoverageReport"]

_LOWEST = 3  # groups listed per source in the summary


def _count(value: float) -> str:
    return "NA" if not np.isfinite(value) else f"{value:,.0f}"


def _share(value: float) -> str:
    return "NA" if not np.isfinite(value) else f"{value:.1%}"


class CoverageReport:
    """Who each data source misses: frame coverage, exclusions, support, representativeness.

    Made by :func:`unmetneed.coverage.coverage_gaps`; every view comes from its tables.

    Attributes
    ----------
    by : list of str
        The grouping of the coverage and exclusion tables.
    level : float
        Interval level.
    attrs : mapping
        Provenance: package version, options, seed entropy, thresholds.

    Examples
    --------
    >>> import unmetneed as um
    >>> from unmetneed.coverage._example import FORMULAS, example_inputs
    >>> inputs = example_inputs()  # a tiny simulated population
    >>> care = um.estimate_care_populations(inputs.frame, inputs.survey, formulas=FORMULAS,
    ...                                     draws=200, seed=1)
    >>> from unmetneed.coverage import coverage_gaps
    >>> report = coverage_gaps(care, {"ascs": (inputs.ascs, "council_funded")}, seed=2)
    >>> report
    <CoverageReport: ascs (council_funded) by ['area_code']; 90% intervals, 200 draws>
    >>> report.excluded["quantity"].unique().tolist()
    ['self_funded', 'unpaid_only', 'unmet', 'never_assessed', 'outside_council_data']
    """

    def __init__(
        self,
        *,
        coverage: pd.DataFrame,
        overall: pd.DataFrame,
        excluded: pd.DataFrame,
        excluded_overall: pd.DataFrame,
        support: pd.DataFrame,
        cell_support: pd.DataFrame,
        representativeness: pd.DataFrame,
        by: list[str],
        level: float,
        attrs: Mapping[str, Any],
        regroup: Callable[[list[str], str | None], pd.DataFrame],
    ) -> None:
        self._coverage = coverage
        self._overall = overall
        self._excluded = excluded
        self._excluded_overall = excluded_overall
        self._support = support
        self._cell_support = cell_support
        self._representativeness = representativeness
        self.by = list(by)
        self.level = float(level)
        self.attrs: Mapping[str, Any] = MappingProxyType(dict(attrs))
        self._regroup = regroup

    # -- tables ------------------------------------------------------------------
    def _table(self, table: pd.DataFrame, **extra: Any) -> pd.DataFrame:
        out = table.copy()
        out.attrs.update(dict(self.attrs))
        out.attrs.update({"level": self.level, **extra})
        return out

    def to_frame(self) -> pd.DataFrame:
        """Frame coverage by group and source.

        Columns ``[by...], source, target, covered, covered_se,
        target_estimate, uncovered, uncovered_lower, uncovered_upper,
        over_count, coverage, coverage_lower, coverage_upper, flag``
        (``flag`` is ``over_count`` where the source counts more than its
        target, else ``ok``); the interval level is in ``attrs["level"]``.
        """
        return self._table(self._coverage, interval="equal-tailed quantiles of paired draws")

    @property
    def overall(self) -> pd.DataFrame:
        """Frame coverage of the whole population (England), one row per source."""
        return self._table(self._overall, interval="equal-tailed quantiles of paired draws")

    @property
    def excluded(self) -> pd.DataFrame:
        """People council data leave out by design, by group: counts and shares of need.

        Columns ``[by...], quantity, measure, estimate, se, ci_lower,
        ci_upper, cv, n`` with ``quantity`` in ``self_funded``,
        ``unpaid_only``, ``unmet``, ``never_assessed`` (unpaid only or
        unmet) and ``outside_council_data`` (need minus council-funded), and
        ``measure`` in ``count``, ``share_of_need``.
        """
        out = self._table(self._excluded)
        out.attrs.update(self._excluded.attrs)  # the table's own attrs win over the report's
        return out

    @property
    def support(self) -> pd.DataFrame:
        """Sample support of the care model by area.

        ``area_code, population, respondents, respondents_<link>..., cells,
        empty_cells, empty_cell_share, pooling, pooling_<link>...,
        extrapolation``: respondents per link's model; frame cells (of the
        ``need`` model's variables) and those with no respondents; the
        population share of the empty cells; the pooling factor
        ``sd_cond^2 / sd^2`` of the area intercept (``pooling`` is the
        ``need`` model's; 1 = entirely pooled); ``extrapolation`` where the
        area has no respondents or ``pooling`` exceeds 0.9.
        """
        return self._table(self._support, pooling_threshold=POOLING_THRESHOLD)

    @property
    def cell_support(self) -> pd.DataFrame:
        """Respondents and population of each cell of the ``need`` model's variables."""
        return self._table(self._cell_support)

    @property
    def representativeness(self) -> pd.DataFrame:
        """Population-based R-indicators, partial R-indicators and ASMDs per source.

        One ``scope == "source"`` row per source (``r_indicator``, ``cv``,
        ``propensity`` = the overall rate used, largest ``asmd``), one
        ``"variable"`` row per auxiliary variable (unconditional partial
        indicator ``partial_r``, ``partial_cv``, the variable's own
        ``r_indicator``, largest ``asmd``) and one ``"category"`` row per
        category (``propensity``, signed ``partial_r``, ``partial_cv``,
        ``asmd``, shares). See ``docs/methods/coverage.md``.
        """
        return self._table(self._representativeness, asmd_threshold=ASMD_THRESHOLD)

    # -- text ----------------------------------------------------------------------
    def _title(self) -> str:
        sources = ", ".join(f"{name} ({spec['target']})" for name, spec in self.attrs["sources"].items())
        groups = f"by {self.by}" if self.by else "for the whole population"
        return f"{sources} {groups}; {self.level:.0%} intervals, {self.attrs['draws']} draws"

    def summary(self) -> str:
        """A plain-text account of who each source misses."""
        lines = ["Coverage gaps: who each data source misses", self._title(), ""]
        lines.append("Frame coverage (whole population)")
        for _, row in self._overall.iterrows():
            spec = self.attrs["sources"][row["source"]]
            lines.append(
                f"  {row['source']} vs {row['target']} ({spec['kind']}): covers "
                f"{_count(row['covered'])} (se {_count(row['covered_se'])}) of "
                f"{_count(row['target_estimate'])}: coverage {_share(row['coverage'])} "
                f"({_share(row['coverage_lower'])} to {_share(row['coverage_upper'])}); misses "
                f"{_count(row['uncovered'])} ({_count(row['uncovered_lower'])} to "
                f"{_count(row['uncovered_upper'])})"
                + (
                    f"; over-count {_count(row['over_count'])} (the source counts more than the target)"
                    if row["flag"] == "over_count"
                    else ""
                )
            )
            if self.by:
                part = self._coverage[self._coverage["source"] == row["source"]]
                lowest = part.nsmallest(_LOWEST, "coverage")
                listed = "; ".join(
                    f"{', '.join(str(r[b]) for b in self.by)} {_share(r['coverage'])}"
                    for _, r in lowest.iterrows()
                )
                lines.append(f"    lowest coverage: {listed}")
        lines += ["", "Left out of council data by design (whole population, share of need)"]
        shares = self._excluded_overall[self._excluded_overall["measure"] == "share_of_need"]
        counts = self._excluded_overall[self._excluded_overall["measure"] == "count"].set_index("quantity")
        for _, row in shares.iterrows():
            lines.append(
                f"  {row['quantity']:<22} {_share(row['estimate']):>6} ({_share(row['ci_lower'])} to "
                f"{_share(row['ci_upper'])}), {_count(counts.loc[row['quantity'], 'estimate'])} people"
            )
        lines += ["", "Sample support (need model)"]
        support = self._support
        if len(support):
            no_data = int((support["respondents"].fillna(0) == 0).sum())
            flagged = int(support["extrapolation"].sum())
            lines.append(
                f"  areas: {len(support)}; with no respondents: {no_data}; flagged extrapolation "
                f"(no respondents or pooling > {POOLING_THRESHOLD}): {flagged}; median pooling "
                f"{np.nanmedian(support['pooling'].to_numpy(dtype=float)):.2f}"
            )
            if self._cell_support["population"].notna().any():
                cells = self._cell_support
                populated = cells[cells["population"] > 0]
                empty = populated["respondents"] == 0
                lines.append(
                    f"  frame cells: {len(populated):,}, {int(empty.sum()):,} with no respondents, "
                    f"holding {_share(populated.loc[empty, 'population'].sum() / populated['population'].sum())}"
                    " of the population"
                )
        lines += ["", "Representativeness (population-based R-indicators; see docs/methods/coverage.md)"]
        table = self._representativeness
        for name in self.attrs["sources"]:
            rows = table[table["source"] == name]
            overall = rows[rows["scope"] == "source"]
            if overall.empty:
                continue
            head = overall.iloc[0]
            variables = rows[rows["scope"] == "variable"]
            worst = variables.loc[variables["partial_cv"].idxmax()]
            imbalanced = variables.loc[variables["asmd"] > ASMD_THRESHOLD, "variable"].tolist()
            rate = self.attrs["representativeness"]["rate"].get(name, "n / N")
            lines.append(
                f"  {name}: R = {head['r_indicator']:.3f} at rate {head['propensity']:.3g} ({rate}), "
                f"CV = {head['cv']:.2f}; most unequal: {worst['variable']} (partial CV "
                f"{worst['partial_cv']:.2f}); after weighting, ASMD > {ASMD_THRESHOLD}: "
                f"{', '.join(imbalanced) if imbalanced else 'none'}"
            )
        notes = self.attrs.get("notes", [])
        if notes:
            lines += ["", "Notes"] + [f"  - {note}" for note in notes]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<CoverageReport: {self._title()}>"

    def _repr_html_(self) -> str:
        table = self._coverage.head(20).to_html(index=False, border=0, float_format=lambda v: f"{v:.4g}")
        return (
            f"<div><p><strong>CoverageReport</strong>: {html.escape(self._title())}</p>"
            f"<pre>{html.escape(self.summary())}</pre>{table}</div>"
        )

    # -- plots ---------------------------------------------------------------------
    def plot_coverage(self, by_characteristic: str, *, source: str | None = None) -> Figure:
        """Coverage by category of a characteristic, with intervals, one marker per source.

        Needs matplotlib (``pip install 'unmetneed[plot]'``). When
        ``by_characteristic`` is not the report's ``by``, coverage is
        recomputed by it from the same inputs and seed (``care`` must be
        grouped by it; census targets must be counted by it).

        Returns
        -------
        matplotlib.figure.Figure
        """
        columns = as_column_list(by_characteristic)
        if len(columns) != 1:
            raise DesignError(f"by_characteristic must name one variable; got {by_characteristic!r}")
        table = self._coverage if columns == self.by else self._regroup(columns, source)
        return coverage_figure(table, columns[0], self.level, source)

    def plot_area_coverage(self, *, source: str | None = None) -> Figure:
        """Areas sorted by coverage, a dot and its interval each; one panel per source.

        Needs matplotlib (``pip install 'unmetneed[plot]'``) and a report by
        ``area_code`` alone.

        Returns
        -------
        matplotlib.figure.Figure
        """
        if self.by != [AREA]:
            raise DesignError(
                f"plot_area_coverage needs a report by {AREA!r}; this one is by {self.by}. Call "
                f"coverage_gaps(..., by={AREA!r})"
            )
        return area_coverage_figure(self._coverage, AREA, self.level, source)
