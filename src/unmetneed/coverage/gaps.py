"""`coverage_gaps`: who each data source misses, explicitly."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from unmetneed._provenance import package_version
from unmetneed._validate import check_level
from unmetneed.coverage._groups import check_by, check_care, group_draws, respondents_by
from unmetneed.coverage.excluded import excluded_table
from unmetneed.coverage.frame import check_sources, coverage_tables
from unmetneed.coverage.report import CoverageReport
from unmetneed.coverage.representativeness import (
    ASMD_THRESHOLD,
    check_response_rates,
    reference_cells,
    representativeness_table,
)
from unmetneed.coverage.support import POOLING_THRESHOLD, support_tables
from unmetneed.design import SurveyDesign
from unmetneed.errors import DesignError, FrameError
from unmetneed.mrp.draw_estimates import DrawEstimates
from unmetneed.mrp.frame import PopulationFrame

__all__ = ["coverage_gaps"]


def coverage_gaps(
    care: DrawEstimates,
    sources: Mapping[str, tuple[SurveyDesign, str]],
    *,
    census: Mapping[str, pd.Series | pd.DataFrame] | None = None,
    by: str | Sequence[str] | None = "area_code",
    population: PopulationFrame | pd.DataFrame | None = None,
    response_rates: Mapping[str, float] | None = None,
    level: float | None = None,
    seed: int | np.random.Generator | None = None,
) -> CoverageReport:
    r"""Who each data source misses: coverage, exclusions, sample support, representativeness.

    Parameters
    ----------
    care : CareEstimates
        Care populations as draws, from :func:`unmetneed.estimate_care_populations`,
        grouped by (at least) ``by``.
    sources : dict
        Name -> ``(design, target)``: a :class:`~unmetneed.SurveyDesign` of a
        known population (the ASCS surveys council-funded users, SACE the
        carers councils know) and what it is compared with — a quantity of
        ``care`` (``"council_funded"``, ``"need"``, ``"population"``...) or
        a key of ``census``.
    census : dict, optional
        Key -> census counts by group of ``by``: a Series indexed by ``by``
        or a DataFrame with the ``by`` columns and ``count`` (one row per
        group; e.g. unpaid carers by area). Census counts are taken as exact.
    by : str, list of str or None, default "area_code"
        Groups: a grouping dimension of ``care`` (or a cross of them) that
        is also a column of every source's data; None for the whole population.
    population : PopulationFrame, optional
        The poststratification frame ``care`` was made with. Gives the
        population of every characteristic for the R-indicators and ASMDs
        (otherwise only ``care``'s groups are used) and the empty frame cells
        of the sample-support table.
    response_rates : dict, optional
        Source name -> its overall response rate (from its technical
        report): the mean response propensity of the R-indicator. Without
        one the rate is the source's respondents over the population, and
        only the CVs are comparable across sources.
    level : float, optional
        Interval level; default ``care.level``.
    seed : int or Generator, optional
        Seeds the normal draws of the sources' weighted totals; the entropy
        used is recorded in ``attrs["seed_entropy"]``.

    Returns
    -------
    CoverageReport
        ``to_frame()`` (coverage by group and source), ``overall``,
        ``excluded``, ``support``, ``cell_support``, ``representativeness``,
        ``summary()``, ``plot_coverage()``, ``plot_area_coverage()``.

    Raises
    ------
    MissingColumnError
        A target that is neither a care quantity nor a census key; ``by`` not
        a grouping of ``care`` or not a column of a source's data; a census
        table without the ``by`` columns or ``count``.
    MarginsError
        Census groups that do not match ``care``'s groups (missing or extra),
        repeated, negative or missing counts; respondents in categories the
        population lacks.
    DesignError
        Malformed ``sources``, ``response_rates`` or ``level``; respondents in
        groups ``care`` does not have.

    Notes
    -----
    Per group :math:`g`, a source with weights :math:`w_i` covers
    :math:`\hat C_g = \sum_{i \in g} w_i` (the design-based total of a
    column of ones, with its design SE) of its target :math:`T_g`;
    ``uncovered`` is :math:`\max(0, \bar T_g - \hat C_g)`, ``over_count``
    :math:`\max(0, \hat C_g - \bar T_g)` and ``coverage``
    :math:`\hat C_g / \bar T_g` (:math:`\bar T_g` the posterior mean, or the
    census count); a row whose source counts more than its target is flagged
    ``over_count`` (the source includes people the target does not, or the
    model under-estimates the target there), so a coverage above 1 never
    goes unexplained and ``uncovered`` is never negative. A design SE that
    is rounding noise of an exactly known total (below 1e-9 of it) is 0.
    Intervals are equal-tailed quantiles of
    :math:`\max(0, T^{(d)}_g - C^{(d)}_g)` and :math:`C^{(d)}_g / T^{(d)}_g` over the
    draws :math:`d` of ``care``, paired with independent normal draws
    :math:`C^{(d)}_g = \max(0, \hat C_g + \mathrm{se}(\hat C_g) z^{(d)})`
    (the source and the survey behind ``care`` are independent samples).
    The other tables and their formulas are described in
    ``docs/methods/coverage.md``.

    References
    ----------
    Schouten, B., Cobben, F. & Bethlehem, J. (2009). Indicators for the
    representativeness of survey response. *Survey Methodology* 35(1), 101-113.

    Schouten, B., Shlomo, N. & Skinner, C. (2011). Indicators for monitoring
    and improving representativeness of response. *Journal of Official
    Statistics* 27(2), 231-253.

    Bianchi, A., Shlomo, N., Schouten, B., Da Silva, D. & Skinner, C. (2019).
    Estimation of response propensities and indicators of representative
    response using population-level information. *Survey Methodology* 45(2).

    Examples
    --------
    >>> import unmetneed as um
    >>> from unmetneed.coverage import coverage_gaps
    >>> from unmetneed.coverage._example import FORMULAS, example_inputs
    >>> inputs = example_inputs()  # a tiny simulated population: 6 areas
    >>> care = um.estimate_care_populations(inputs.frame, inputs.survey, formulas=FORMULAS,
    ...                                     draws=200, seed=1)
    >>> report = coverage_gaps(
    ...     care,
    ...     {"ascs": (inputs.ascs, "council_funded"), "sace": (inputs.sace, "unpaid_carers")},
    ...     census=inputs.census, population=inputs.frame, seed=2)
    >>> table = report.to_frame()
    >>> table.columns.tolist()[:4]
    ['area_code', 'source', 'target', 'covered']
    >>> bool((table.loc[table["source"] == "sace", "coverage"] < 0.25).all())
    True
    >>> report.support.columns.tolist()[:3]
    ['area_code', 'population', 'respondents']
    >>> report.representativeness.query("scope == 'source'")["source"].tolist()
    ['ascs', 'sace']
    """
    check_care(care)
    columns = check_by(care, by)
    level = care.level if level is None else level
    check_level(level)
    if census is not None and not isinstance(census, Mapping):
        raise DesignError(f"census must be a dict of name -> counts; got {type(census).__name__}")
    source_list = check_sources(sources, care.quantities, census)
    rates = check_response_rates(response_rates, [s.name for s in source_list])
    if population is not None and not isinstance(population, PopulationFrame):
        if isinstance(population, pd.DataFrame):
            population = PopulationFrame(population)
        else:
            raise FrameError(f"population must be a PopulationFrame; got {type(population).__name__}")
    if isinstance(seed, bool) or not (
        seed is None or isinstance(seed, (int, np.integer, np.random.Generator))
    ):
        raise DesignError(f"seed must be an int, a numpy Generator or None; got {seed!r}")
    if seed is None:
        entropy = int(np.random.SeedSequence().entropy)  # type: ignore[arg-type]
    elif isinstance(seed, np.random.Generator):
        entropy = int(seed.integers(0, 2**63))
    else:
        entropy = int(seed)

    groups = group_draws(care, columns)
    coverage, overall = coverage_tables(source_list, groups, census, level=level, entropy=entropy)
    excluded = excluded_table(groups, respondents_by(care, groups), level)
    whole = group_draws(care, [])
    excluded_overall = excluded_table(whole, respondents_by(care, whole), level)
    support, cell_support, support_notes = support_tables(care, population)
    representativeness, info = representativeness_table(source_list, reference_cells(care, population), rates)

    def regroup(new_by: list[str], source: str | None) -> pd.DataFrame:
        chosen = [s for s in source_list if source is None or s.name == source]
        if not chosen:
            raise DesignError(
                f"source={source!r} is not in the report; sources: {[s.name for s in source_list]}"
            )
        table, _ = coverage_tables(
            chosen, group_draws(care, check_by(care, new_by)), census, level=level, entropy=entropy
        )
        return table

    attrs = {
        "package_version": package_version(),
        "method": "coverage_gaps",
        "by": columns,
        "level": level,
        "draws": groups.n_draws,
        "seed_entropy": entropy,
        "sources": {
            s.name: {"target": s.target, "kind": s.kind, "respondents": s.design.n} for s in source_list
        },
        "response_rates": dict(rates),
        "pooling_threshold": POOLING_THRESHOLD,
        "asmd_threshold": ASMD_THRESHOLD,
        "representativeness": {
            "reference": info.get("reference"),
            "variables": info["variables"],
            "rate": info["rate"],
        },
        "notes": [*support_notes, *info["notes"]],
    }
    return CoverageReport(
        coverage=coverage,
        overall=overall,
        excluded=excluded,
        excluded_overall=excluded_overall,
        support=support,
        cell_support=cell_support,
        representativeness=representativeness,
        by=columns,
        level=level,
        attrs=attrs,
        regroup=regroup,
    )
