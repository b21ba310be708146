r"""Council-funded people by group: admin totals split by the ASCS composition.

Councils count the people they fund by admin cell :math:`c` (council, setting,
age group) — :math:`A_c` people — but not by ethnic group, sex or disability.
The Adult Social Care Survey (ASCS) samples those people. Per cell the split of
:math:`A_c` over the categories :math:`k` of ``by`` is drawn from a
hierarchical *stick-breaking* (generalised Dirichlet; Connor & Mosimann 1969)
posterior. With the categories ordered by their national weighted share, a
composition :math:`\theta` is the sequence of splits

.. math::

    q_j = \theta_{(j)} \Big/ \sum_{l \ge j} \theta_{(l)}, \qquad j = 1..K-1,

(the largest group against the rest, the next against what is left, ...).
Down the tree England :math:`\to` pool (region) :math:`p` :math:`\to` area
:math:`a` :math:`\to` cell :math:`c`, every node's split is Beta around its
parent's,

.. math::

    q_{pj} &\sim \operatorname{Beta}\big(\alpha^{pool}_j \bar q_{0j} + s_{pj},\;
             \alpha^{pool}_j(1-\bar q_{0j}) + f_{pj}\big),\quad
    q_{aj} \sim \operatorname{Beta}(\alpha^{area}_j q_{p(a)j} + s_{aj}, \ldots), \\
    q_{cj} &\sim \operatorname{Beta}(\alpha^{cell}_j \tilde q_{cj} + s_{cj}, \ldots),\qquad
    \tilde\theta_c \propto \theta_{a(c)} \odot \rho_{s(c)},\qquad
    N_c \sim \operatorname{Multinomial}(A_c, \theta_c),

where :math:`\rho_s = \bar\theta_s / \bar\theta_0` is the national pattern of the
cell's (setting, age group) relative to England (posterior means), so a cell is
centred on its council's composition adjusted for its setting and age group.
:math:`s_{gj}, f_{gj}` are the node's *design-weighted pseudo-counts* of group
:math:`(j)` and of the groups after it, from Kish's (1965) effective sample size:

.. math::

    m_{gk} = n^{*}_g\,\hat p_{gk},\qquad
    \hat p_{gk} = \frac{\sum_{i\in g} w_i [y_i = k]}{\sum_{i\in g} w_i},\qquad
    n^{*}_g = \frac{(\sum_{i\in g} w_i)^2}{\sum_{i\in g} w_i^2}.

Kish's :math:`n^*` assumes weights unrelated to the group; when they differ by group
(a non-response adjustment by ethnic group) a group's share varies more than it
says, so each split's pseudo-counts are divided by its design effect over Kish,
:math:`\max\{1, \hat V_{lin}(\hat q_j) / [\hat q_j(1-\hat q_j)/n^*]\}`, from the
national linearised variance of the split (with replacement, the design's PSUs).

A parent's data are its children's, so in the draws a parent's pseudo-counts are
cut to what its children tell about it under the model,
:math:`\sum_{c} n_c\alpha_j/(n_c+\alpha_j)` over its children (capped at its own),
rather than counted twice: with councils that differ, a region's composition is
known from its few councils, not from all its respondents.

Each strength :math:`\alpha^{level}_j` maximises the beta-binomial marginal
likelihood of that level's pseudo-counts around their parents' posterior means
(empirical Bayes), unless given; a strength at the upper bound (1e6) means the
data show no extra variation at that level for that split. The top level has
Perks' prior (total mass 1), so no category is ever impossible. Counts are
multinomial given :math:`\theta_c`: whole people, summing to :math:`A_c`
exactly in every draw.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from scipy import optimize, special

from unmetneed._validate import (
    as_column_list,
    check_level,
    require_columns,
    resolve_rng,
    show,
)
from unmetneed.design import SurveyDesign
from unmetneed.design.variance import group_totals
from unmetneed.errors import FrameError
from unmetneed.estimates.care import FLAG_CV, reliability_flags
from unmetneed.mrp.draw_estimates import DrawEstimates, summarise_draws

__all__ = [
    "AGE_GROUPS",
    "SETTINGS",
    "CouncilFundedEstimates",
    "estimate_council_funded",
]

#: ASCS ``age_band`` -> admin ``age_group`` (the synthetic England's labels).
AGE_GROUPS: dict[str, str] = {
    "18-24": "18-64",
    "25-34": "18-64",
    "35-44": "18-64",
    "45-54": "18-64",
    "55-64": "18-64",
    "65-74": "65+",
    "75-84": "65+",
    "85+": "65+",
}
#: ASCS ``setting`` -> admin ``setting``.
SETTINGS: dict[str, str] = {
    "community": "community",
    "care home": "residential",
    "residential": "residential",
}
PERKS = 1.0  # total prior mass a_0 at the top level, spread evenly over the categories
STRENGTH_BOUNDS = (1e-2, 1e6)
QUANTITY = "council_funded"
BASIS = "admin_composition"


class CouncilFundedEstimates(DrawEstimates):
    """Council-funded counts by admin cell and group, as draws.

    ``draws["council_funded"]`` has dimensions ``draw``, the ``within``
    columns and the ``by`` columns (NaN for cells with no admin count).
    :meth:`aggregate` sums draws to coarser groupings (by council, England);
    :meth:`tables` gives the three usual ones. ``to_frame()`` has
    ``[by...], quantity, measure, estimate, se, ci_lower, ci_upper, cv, n,
    basis, flag``: ``n`` is the ASCS respondents behind the row (0 where the
    group has none in that cell: the figure then rests on the pooled
    composition alone), ``basis`` is ``admin_composition``, ``flag`` is
    ``low_reliability`` when the CV exceeds 0.2.
    """

    def summary(self, level: float | None = None) -> pd.DataFrame:
        level = self.level if level is None else float(level)
        array = self.draws[QUANTITY].transpose("draw", *self.by)
        values = array.values.reshape(self.n_draws, -1)
        keep = ~np.all(np.isnan(values), axis=0)
        stats = summarise_draws(values[:, keep], level)
        grids = np.meshgrid(*[array[d].values for d in self.by], indexing="ij")
        table = pd.DataFrame(
            {d: g.ravel()[keep] for d, g in zip(self.by, grids, strict=True)},
            index=pd.RangeIndex(int(keep.sum())),
        )
        table["quantity"] = QUANTITY
        table["measure"] = "count"
        for name, column in stats.items():
            table[name] = column
        table["n"] = self._respondents_for(table[self.by]).to_numpy()
        table["basis"] = BASIS
        table["flag"] = reliability_flags(table)
        table.attrs.update(self.attrs)
        table.attrs.update({**self._summary_attrs(level), "flag_cv": FLAG_CV})
        return table

    to_frame = summary

    def aggregate(self, by: str | Sequence[str] | None) -> CouncilFundedEstimates:
        """Draws summed over every dimension not in ``by`` (None: England).

        Examples
        --------
        >>> import unmetneed as um
        >>> eng = um.datasets.load_synthetic_england()
        >>> est = um.estimate_council_funded(eng.surveys["ascs"], eng.admin, draws=50, seed=1,
        ...                                  allow_empty=True)
        >>> est.aggregate("ethnic_group").to_frame().shape[0]
        19
        """
        keep = as_column_list(by)
        unknown = [d for d in keep if d not in self.by]
        if unknown:
            raise FrameError(f"aggregate by={unknown} names no dimension of the draws; use some of {self.by}")
        drop = [d for d in self.by if d not in keep]
        summed = self.draws[QUANTITY].sum(dim=drop, min_count=1) if drop else self.draws[QUANTITY]
        respondents = None
        if self.respondents is not None and keep:
            respondents = self.respondents.groupby(level=keep, observed=True).sum()
        return type(self)(
            xr.Dataset({QUANTITY: summed}),
            by=keep,
            respondents=respondents,
            level=self.level,
            attrs=dict(self.attrs),
        )

    def tables(self, level: float | None = None) -> dict[str, pd.DataFrame]:
        """``cell`` (within x by), ``area`` (area x by) and ``england`` (by) tables."""
        groups = self.attrs["by"]
        area = self.attrs["within"][0]
        return {
            "cell": self.summary(level),
            "area": self.aggregate([area, *groups]).summary(level),
            "england": self.aggregate(groups).summary(level),
        }


@dataclass(frozen=True)
class _Prepared:
    """ASCS pseudo-counts per admin cell, and the cells' keys."""

    cells: pd.DataFrame  # within columns, count, pool
    weighted: np.ndarray  # (cells, K) weighted counts
    weight_sum: np.ndarray  # (cells,)
    weight_sq: np.ndarray  # (cells,)
    respondents: np.ndarray  # (cells, K) unweighted counts
    categories: list[list[Any]]  # per by column
    design_effect: np.ndarray  # (K - 1,) per split, in _split_order, >= 1


def estimate_council_funded(
    ascs: SurveyDesign,
    admin: pd.DataFrame,
    *,
    by: str | Sequence[str] = "ethnic_group",
    within: Sequence[str] = ("area_code", "setting", "age_group"),
    count: str = "count",
    age_groups: Mapping[Any, Any] | None = None,
    settings: Mapping[Any, Any] | None = None,
    categories: Mapping[str, Sequence[Any]] | None = None,
    pool: str | None = "region_code",
    prior_strength: float | Mapping[str, float] | None = None,
    allow_empty: bool = False,
    draws: int = 1000,
    seed: int | np.random.Generator | None = None,
    level: float = 0.9,
) -> CouncilFundedEstimates:
    r"""Council-funded people by group: admin counts split by the ASCS composition.

    Parameters
    ----------
    ascs : SurveyDesign
        The Adult Social Care Survey (council-funded users) with ``area_code``,
        ``setting``, ``age_band`` (or the admin ``age_group``), the ``by``
        columns and, for ``pool``, a region column. Its weights are used as
        published; respondents with missing ``by`` values are an error.
    admin : DataFrame
        Council-funded counts, one row per ``within`` cell, in column ``count``.
    by : str or list of str, default "ethnic_group"
        The characteristic(s) to split by; a list splits by their cross.
    within : sequence of str, default ("area_code", "setting", "age_group")
        The admin cells; the first is the area.
    count : str, default "count"
        The admin count column.
    age_groups : mapping, optional
        ASCS ``age_band`` -> admin ``age_group``; default :data:`AGE_GROUPS`
        (``18-24`` .. ``55-64`` -> ``18-64``, ``65-74`` .. ``85+`` -> ``65+``).
        Used when ``within`` has ``age_group`` and the ASCS does not.
    settings : mapping, optional
        ASCS ``setting`` -> admin ``setting``; default :data:`SETTINGS`
        (``care home`` and ``residential`` -> ``residential``).
    categories : mapping, optional
        Categories of each ``by`` column; default the ASCS column's categorical
        categories (or its sorted values). Groups no respondent is in are kept.
    pool : str or None, default "region_code"
        ASCS column (constant within an area) whose composition a council's is
        shrunk towards; None pools straight to England (one pool).
    prior_strength : float or dict, optional
        Strengths :math:`\alpha` (module notes): one number for every level and
        split, or a dict by level (``setting_age_group``, ``pool``, ``area``,
        ``cell``; levels left out are estimated). Default: each split's by
        maximum marginal likelihood.
    allow_empty : bool, default False
        Let admin cells with a positive count and no ASCS respondents take
        their pool's composition (with its uncertainty) instead of raising.
    draws : int, default 1000
    seed : int or Generator, optional
    level : float, default 0.9

    Returns
    -------
    CouncilFundedEstimates
        Draws by ``within`` x ``by``; ``aggregate()`` and ``tables()`` give
        councils and England. ``attrs`` hold the prior strengths, the
        cells without respondents and the options.

    Raises
    ------
    MissingColumnError
        A column of ``within``, ``by``, ``count`` or ``pool`` is missing.
    FrameError
        Negative, missing or duplicated admin counts; ASCS labels the maps do
        not cover, or mapped labels the admin does not have; ``by`` values
        outside ``categories``; ASCS respondents in cells without an admin
        count; admin cells with people and no respondents (unless
        ``allow_empty``); a ``pool`` that varies within an area.

    Notes
    -----
    See the module notes and ``docs/methods/council-funded.md``. Per cell the
    posterior mean is

    .. math:: E[q_{cj} \mid \tilde q_{cj}] = \frac{\alpha^{cell}_j \tilde q_{cj} + s_{cj}}{\alpha^{cell}_j + s_{cj} + f_{cj}},

    the weighted (published) split shrunk towards the council's, which is
    shrunk towards the region's; a group with no respondents in a cell gets
    the spread of its council's and region's composition, not a zero.

    References
    ----------
    Gelman, A. et al. (2013). *Bayesian Data Analysis*, 3rd ed., ch. 5 (the
    beta-binomial hierarchical model, empirical Bayes strengths).
    Connor, R. J. & Mosimann, J. E. (1969). Concepts of independence for
    proportions with a generalization of the Dirichlet distribution. *JASA* 64.
    Kish, L. (1965). *Survey Sampling*. Wiley (effective sample size).
    NHS England. Personal Social Services Adult Social Care Survey, England:
    methodology and data quality notes (stratified sample of council-funded
    users, weights by stratum).

    Examples
    --------
    >>> import unmetneed as um
    >>> eng = um.datasets.load_synthetic_england()
    >>> est = um.estimate_council_funded(eng.surveys["ascs"], eng.admin, draws=200, seed=1,
    ...                                  allow_empty=True)
    >>> england = est.tables()["england"]
    >>> int(round(england["estimate"].sum())) == int(eng.admin["count"].sum())
    True
    """
    by_cols = as_column_list(by)
    within_cols = as_column_list(within)
    if not by_cols or not within_cols:
        raise FrameError("by and within each need at least one column")
    level = check_level(level, error=FrameError)
    if isinstance(draws, bool) or not isinstance(draws, (int, np.integer)) or draws < 1:
        raise FrameError(f"draws={draws!r} must be a positive whole number")
    if not isinstance(ascs, SurveyDesign):
        raise FrameError("ascs must be a SurveyDesign (the survey with its weights)")
    prepared = _prepare(
        ascs, admin, by_cols, within_cols, count, age_groups, settings, categories, pool, allow_empty
    )
    strengths = _check_strength(prior_strength)
    rng = resolve_rng(seed)
    counts, alphas = _draw_counts(prepared, int(draws), rng, strengths, within_cols[0])
    return _result(
        prepared,
        counts,
        alphas,
        by_cols,
        within_cols,
        level,
        {"pool": pool, "allow_empty": allow_empty, "seed": seed, "draws": int(draws)},
    )


def _check_strength(value: float | Mapping[str, float] | None) -> dict[str, float] | None:
    if value is None:
        return None
    values = dict(value) if isinstance(value, Mapping) else dict.fromkeys(LEVELS, value)
    unknown = [k for k in values if k not in LEVELS]
    ok = not unknown and all(
        isinstance(v, (int, float, np.number)) and not isinstance(v, bool) and np.isfinite(v) and v > 0
        for v in values.values()
    )
    if not ok:
        raise FrameError(
            f"prior_strength={value!r}: give a positive number, or a dict of them "
            f"by level ({', '.join(LEVELS)}), or None to estimate them"
        )
    return {k: float(v) for k, v in values.items()}


def _map_labels(
    series: pd.Series, mapping: Mapping[Any, Any], name: str, option: str, allowed: pd.Index
) -> pd.Series:
    values = series.astype(object)
    unknown = sorted({show(v) for v in pd.unique(values) if pd.notna(v) and v not in mapping})
    if values.isna().any():
        unknown.append("missing")
    if unknown:
        raise FrameError(
            f"ASCS {name!r} values [{', '.join(unknown)}] are not in {option}= (keys: "
            f"{sorted(map(str, mapping))}); add them to the map"
        )
    mapped = values.map(mapping)
    wrong = sorted({show(v) for v in pd.unique(mapped) if v not in set(allowed)})
    if wrong:
        raise FrameError(
            f"{option}= maps ASCS {name!r} to [{', '.join(wrong)}], which the admin counts do "
            f"not have (admin labels: {sorted(map(str, allowed))})"
        )
    return mapped


def _prepare(
    ascs: SurveyDesign,
    admin: pd.DataFrame,
    by: list[str],
    within: list[str],
    count: str,
    age_groups: Mapping[Any, Any] | None,
    settings: Mapping[Any, Any] | None,
    categories: Mapping[str, Sequence[Any]] | None,
    pool: str | None,
    allow_empty: bool,
) -> _Prepared:
    if not isinstance(admin, pd.DataFrame):
        raise FrameError("admin must be a DataFrame with the within columns and a count column")
    require_columns(admin, [*within, count], "admin")
    values = pd.to_numeric(admin[count], errors="coerce")
    bad = values.isna() | (values < 0) | ~np.isfinite(values.fillna(0)) | (values % 1 != 0)
    if bad.any():
        rows = admin.loc[bad, [*within, count]].head(5).to_dict("records")
        raise FrameError(
            f"admin {count!r} must be non-negative whole numbers; {int(bad.sum())} "
            f"row(s) are not, e.g. {rows}"
        )
    keys = admin[within].astype(object)
    if keys.isna().any().any():
        raise FrameError(f"admin {within} have missing values; every count needs its cell")
    dup = keys.duplicated(keep=False)
    if dup.any():
        raise FrameError(
            f"admin has {int(dup.sum())} rows for repeated cells, e.g. "
            f"{keys[dup].head(3).to_dict('records')}; sum them first"
        )
    data = ascs.data
    weights = np.asarray(ascs.weights, dtype=np.float64)
    frame = pd.DataFrame(index=data.index)
    for col in within:
        if col == "age_group" and col not in data.columns:
            require_columns(data, ["age_band"], "ascs (for age_group)")
            frame[col] = _map_labels(
                data["age_band"],
                AGE_GROUPS if age_groups is None else age_groups,
                "age_band",
                "age_groups",
                pd.Index(pd.unique(keys[col])),
            )
        elif col == "setting":
            require_columns(data, [col], "ascs")
            frame[col] = _map_labels(
                data[col],
                SETTINGS if settings is None else settings,
                "setting",
                "settings",
                pd.Index(pd.unique(keys[col])),
            )
        else:
            require_columns(data, [col], "ascs")
            frame[col] = data[col].astype(object)
    require_columns(data, by, "ascs by")
    cats: list[list[Any]] = []
    codes = np.zeros(len(data), dtype=np.intp)
    for col in by:
        series = data[col]
        if series.isna().any():
            raise FrameError(
                f"ASCS {col!r} is missing for {int(series.isna().sum())} "
                "respondent(s); recode them to a category (e.g. 'Not stated')"
            )
        if categories is not None and col in categories:
            levels = list(categories[col])
        elif isinstance(series.dtype, pd.CategoricalDtype):
            levels = list(series.cat.categories)
        else:
            levels = sorted(pd.unique(series.astype(object)), key=str)
        position = pd.Index(levels).get_indexer(series.astype(object))
        if (position < 0).any():
            outside = sorted({show(v) for v in series[position < 0]})
            raise FrameError(
                f"ASCS {col!r} values [{', '.join(outside)}] are not among its "
                f"categories [{', '.join(show(v) for v in levels[:8])}"
                f"{', ...' if len(levels) > 8 else ''}]; "
                "add them to categories="
            )
        cats.append(levels)
        codes = codes * len(levels) + position
    n_categories = int(np.prod([len(c) for c in cats]))
    cell_index = pd.MultiIndex.from_frame(keys) if len(within) > 1 else pd.Index(keys[within[0]])
    row_keys = pd.MultiIndex.from_frame(frame[within]) if len(within) > 1 else pd.Index(frame[within[0]])
    cell = cell_index.get_indexer(row_keys)
    if (cell < 0).any():
        examples = frame.loc[cell < 0, within].drop_duplicates().head(5).to_dict("records")
        raise FrameError(
            f"{int((cell < 0).sum())} ASCS respondent(s) are in cells without an "
            f"admin count, e.g. {examples}; add those cells to admin"
        )
    n_cells = len(cell_index)
    flat = cell * n_categories + codes
    size = n_cells * n_categories
    weighted = np.bincount(flat, weights=weights, minlength=size).reshape(n_cells, n_categories)
    respondents = np.bincount(flat, minlength=size).reshape(n_cells, n_categories)
    weight_sum = weighted.sum(axis=1)
    weight_sq = np.bincount(cell, weights=weights**2, minlength=n_cells)
    cells = keys.reset_index(drop=True).copy()
    cells[count] = values.to_numpy(dtype=np.int64)
    cells = cells.rename(columns={count: "_count"})
    empty = (respondents.sum(axis=1) == 0) & (cells["_count"].to_numpy() > 0)
    if empty.any() and not allow_empty:
        shown = cells.loc[empty, within].head(5).to_dict("records")
        raise FrameError(
            f"{int(empty.sum())} admin cell(s) with council-funded people have no "
            f"ASCS respondents, e.g. {shown}; pass allow_empty=True to give them "
            "their region's composition, or merge them with a neighbouring cell"
        )
    cells["_pool"] = _pools(data, frame, within[0], pool, cells)
    order = np.argsort(-weighted.sum(axis=0), kind="stable")
    deff = _split_design_effects(ascs, weights, codes, order)
    return _Prepared(cells, weighted, weight_sum, weight_sq, respondents, cats, deff)


def _split_design_effects(
    ascs: SurveyDesign, weights: np.ndarray, codes: np.ndarray, order: np.ndarray
) -> np.ndarray:
    """Per split, the national Taylor variance of its weighted proportion over Kish's, >= 1.

    Kish's n* assumes weights unrelated to the group; weights that differ by group (a
    non-response adjustment by ethnic group) make a group's share more variable than n*
    says. The split's linearised variance (with replacement, the design's PSUs, one
    stratum) against ``p (1 - p) / n*`` gives the factor its pseudo-counts are divided by.
    """
    data = ascs.data
    # no strata: the factor is for a cell, within which nothing is stratified (the national
    # stratification gain would understate it)
    strata = np.zeros(len(data), dtype=np.intp)
    if ascs.clusters_col:
        psu = pd.factorize(pd.MultiIndex.from_arrays([strata, data[ascs.clusters_col]]))[0]
    else:
        psu = np.arange(len(data))
    psu_stratum = np.zeros(psu.max() + 1, dtype=np.intp)
    psu_stratum[psu] = strata
    n_psu = np.bincount(psu_stratum, minlength=strata.max() + 1).astype(float)
    factor = np.where(n_psu > 1, n_psu / np.maximum(n_psu - 1, 1), 0.0)  # lonely PSU: 0
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    position = rank[codes]
    out = np.ones(max(order.size - 1, 0))
    for j in range(order.size - 1):
        y = (position == j).astype(float)
        d = (position >= j).astype(float)
        total = float(np.sum(weights * d))
        if total <= 0:
            continue
        share = float(np.sum(weights * y)) / total
        kish = share * (1 - share) * float(np.sum(weights**2 * d)) / total**2
        if kish <= 0:
            continue
        z = np.bincount(psu, weights=weights * (y - share * d) / total)
        mean = np.bincount(psu_stratum, weights=z, minlength=n_psu.size) / np.maximum(n_psu, 1)
        taylor = float(np.sum(factor[psu_stratum] * (z - mean[psu_stratum]) ** 2))
        out[j] = max(1.0, taylor / kish)
    return out


def _pools(
    data: pd.DataFrame, frame: pd.DataFrame, area: str, pool: str | None, cells: pd.DataFrame
) -> np.ndarray:
    if pool is None:
        return np.zeros(len(cells), dtype=object)
    require_columns(data, [pool], "ascs pool")
    pairs = pd.DataFrame({"area": frame[area].to_numpy(), "pool": data[pool].astype(object)})
    varying = pairs.groupby("area")["pool"].nunique()
    if (varying > 1).any():
        raise FrameError(
            f"pool column {pool!r} varies within {area} "
            f"{[show(a) for a in varying.index[varying > 1][:5]]}; give a column "
            "constant within each area (e.g. region_code)"
        )
    lookup = pairs.drop_duplicates("area").set_index("area")["pool"]
    # an area with no respondents at all pools with England (its own pool of one)
    mapped = cells[area].map(lookup)
    return np.where(mapped.isna(), "_england", mapped.astype(object)).astype(object)


def _pseudo(weighted: np.ndarray, weight_sum: np.ndarray, weight_sq: np.ndarray) -> np.ndarray:
    """Kish pseudo-counts ``n* p_hat`` per row (0 where there is no one)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        ess = np.where(weight_sq > 0, weight_sum**2 / weight_sq, 0.0)
        share = np.where(weight_sum[:, None] > 0, weighted / weight_sum[:, None], 0.0)
    return ess[:, None] * share


def _bb_loglik(alpha: float, prior_mean: np.ndarray, success: np.ndarray, failure: np.ndarray) -> float:
    """Beta-binomial log marginal likelihood of the rows (no constant; counts may be fractional)."""
    a, b = alpha * prior_mean, alpha * (1.0 - prior_mean)
    return float(
        np.sum(
            special.gammaln(alpha)
            - special.gammaln(alpha + success + failure)
            + special.gammaln(a + success)
            - special.gammaln(a)
            + special.gammaln(b + failure)
            - special.gammaln(b)
        )
    )


def _ml_strength(prior_mean: np.ndarray, success: np.ndarray, failure: np.ndarray) -> float:
    """Strength maximising the beta-binomial marginal likelihood (bounded, log scale)."""
    rows = (success + failure) > 0
    if rows.sum() < 2:
        return STRENGTH_BOUNDS[1]
    mean = np.clip(prior_mean[rows], 1e-12, 1 - 1e-12)
    s, f = success[rows], failure[rows]
    lo, hi = np.log(STRENGTH_BOUNDS[0]), np.log(STRENGTH_BOUNDS[1])
    res = optimize.minimize_scalar(
        lambda x: -_bb_loglik(np.exp(x), mean, s, f),
        bounds=(lo, hi),
        method="bounded",
        options={"xatol": 1e-3},
    )
    return float(np.exp(res.x))


def _group_sums(groups: np.ndarray, *arrays: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    codes, inverse = np.unique(groups, return_inverse=True)
    return inverse, [group_totals(a, inverse, len(codes)) for a in arrays]


LEVELS = ("setting_age_group", "pool", "area", "cell")


def _hierarchy(prepared: _Prepared, area: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per level: (index of each admin cell's node, pseudo-counts of the nodes)."""
    cells = prepared.cells
    within = [c for c in cells.columns if c not in ("_count", "_pool")]
    others = [c for c in within if c != area]  # setting, age group
    key = (
        cells[others].astype(str).agg("\x1f".join, axis=1).to_numpy(dtype=str)
        if others
        else np.full(len(cells), "", dtype=str)
    )
    w, ws, wq = prepared.weighted, prepared.weight_sum, prepared.weight_sq
    out = {
        "top": (
            np.zeros(len(cells), dtype=np.intp),
            _pseudo(w.sum(axis=0)[None, :], ws.sum()[None], wq.sum()[None]),
        )
    }
    groups = {
        "setting_age_group": key,
        "pool": cells["_pool"].astype(str).to_numpy(dtype=str),
        "area": cells[area].astype(str).to_numpy(dtype=str),
    }
    for name, labels in groups.items():
        inverse, (w_g, ws_g, wq_g) = _group_sums(labels, w, ws, wq)
        out[name] = (inverse, _pseudo(w_g, ws_g, wq_g))
    out["cell"] = (np.arange(len(cells)), _pseudo(w, ws, wq))
    return out


def _log_beta(rng: np.random.Generator, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """log q and log(1 - q) for q ~ Beta(a, b); stable for tiny parameters."""
    tiny = np.finfo(float).tiny
    a, b = np.maximum(a, 1e-300), np.maximum(b, 1e-300)
    # Gamma(a) = Gamma(a + 1) * U^(1/a): no underflow to 0 for small a
    log_ga = np.log(np.maximum(rng.gamma(a + 1.0), tiny)) + np.log1p(-rng.random(a.shape)) / a
    log_gb = np.log(np.maximum(rng.gamma(b + 1.0), tiny)) + np.log1p(-rng.random(b.shape)) / b
    total = np.logaddexp(log_ga, log_gb)
    return log_ga - total, log_gb - total


def _split_order(prepared: _Prepared) -> np.ndarray:
    """Categories from the largest weighted national share down (the stick-breaking order)."""
    return np.argsort(-prepared.weighted.sum(axis=0), kind="stable")


def _sticks(composition: np.ndarray, order: np.ndarray) -> np.ndarray:
    """Split probabilities q_j = c_(j) / sum_{l >= j} c_(l), j < K - 1 (last axis)."""
    ordered = np.take(composition, order, axis=-1)
    rest = np.cumsum(ordered[..., ::-1], axis=-1)[..., ::-1]
    with np.errstate(invalid="ignore", divide="ignore"):
        q = np.where(rest > 0, ordered / rest, 1.0)
    return np.clip(q[..., :-1], 0.0, 1.0)


def _compose(q: np.ndarray, order: np.ndarray) -> np.ndarray:
    """Inverse of :func:`_sticks`."""
    rest = np.cumprod(np.concatenate([np.ones(q.shape[:-1] + (1,)), 1.0 - q], axis=-1), axis=-1)
    ordered = rest * np.concatenate([q, np.ones(q.shape[:-1] + (1,))], axis=-1)
    out = np.empty_like(ordered)
    out[..., order] = ordered
    return out


def _split_data(counts: np.ndarray, order: np.ndarray, deff: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per split j: pseudo-count of category (j) and of the categories after it (/ deff)."""
    ordered = counts[:, order]
    rest = np.cumsum(ordered[:, ::-1], axis=1)[:, ::-1]
    return ordered[:, :-1] / deff, rest[:, 1:] / deff


def _posterior_level(
    centre: np.ndarray, counts: np.ndarray, order: np.ndarray, strength: float | None, deff: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Strength per split (ML unless given) and the nodes' posterior mean compositions."""
    q_bar = _sticks(centre, order)
    success, failure = _split_data(counts, order, deff)
    alphas = np.array(
        [
            _ml_strength(q_bar[:, j], success[:, j], failure[:, j]) if strength is None else strength
            for j in range(q_bar.shape[1])
        ]
    )
    q = (alphas * q_bar + success) / (alphas + success + failure)
    return alphas, _compose(q, order)


def _parent_information(
    parent: np.ndarray, n_parents: int, child_n: np.ndarray, alphas: np.ndarray, parent_n: np.ndarray
) -> np.ndarray:
    """Per parent and split, the share of its pseudo-counts its children's data carry.

    Under the beta-binomial, a child with n pseudo-counts and strength alpha tells about
    its parent's mean as much as ``n alpha / (n + alpha)`` draws from it (its share varies
    around the parent's by sampling and by the child's own deviation). The parent's data
    are the children's, so using all of them at both levels would count them twice and
    make the parent (and what is pooled towards it) far too certain when children differ.
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        eff = np.where(child_n > 0, child_n * alphas / (child_n + alphas), 0.0)
        total = group_totals(eff, parent, n_parents)
        return np.where(parent_n > 0, np.minimum(1.0, total / parent_n), 1.0)


def _draw_level(
    rng: np.random.Generator,
    centre: np.ndarray,
    counts: np.ndarray,
    order: np.ndarray,
    alphas: np.ndarray,
    deff: np.ndarray,
    scale: np.ndarray | None = None,
) -> np.ndarray:
    """Draws (draws, nodes, K) of the nodes' compositions given centre draws."""
    q_bar = _sticks(centre, order)
    success, failure = _split_data(counts, order, deff)
    if scale is not None:
        success, failure = success * scale, failure * scale
    log_q, log_1q = _log_beta(rng, alphas * q_bar + success, alphas * (1.0 - q_bar) + failure)
    log_rest = np.concatenate([np.zeros(log_q.shape[:-1] + (1,)), np.cumsum(log_1q, axis=-1)], axis=-1)
    log_ordered = log_rest + np.concatenate([log_q, np.zeros(log_q.shape[:-1] + (1,))], axis=-1)
    out = np.empty_like(log_ordered)
    out[..., order] = np.exp(log_ordered)
    return out


def _normalise(x: np.ndarray) -> np.ndarray:
    return x / x.sum(axis=-1, keepdims=True)


def _draw_counts(
    prepared: _Prepared,
    n_draws: int,
    rng: np.random.Generator,
    strengths: Mapping[str, float] | None,
    area: str,
    *,
    multinomial: bool = True,
    design_effect: bool = True,
    parent_information: bool = True,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Counts (draws, cells, K) summing to the admin count; strengths (level x split) used.

    Levels (module notes): England -> pool -> area -> admin cell, the cell's prior centre
    being its area's composition times the national (setting, age group) pattern.
    """
    levels = _hierarchy(prepared, area)
    order = _split_order(prepared)
    k = order.size
    given = dict(strengths or {})
    deff = prepared.design_effect if design_effect else np.ones(k - 1)
    _, top_counts = levels["top"]
    uniform = np.full((1, k), 1.0 / k)
    _, top_mean = _posterior_level(uniform, top_counts, order, PERKS, deff)
    alphas: dict[str, np.ndarray] = {}
    # national (setting, age group) pattern relative to England, as posterior means
    sg_index, sg_counts = levels["setting_age_group"]
    alphas["setting_age_group"], sg_mean = _posterior_level(
        np.broadcast_to(top_mean, sg_counts.shape), sg_counts, order, given.get("setting_age_group"), deff
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        pattern = np.where(top_mean > 0, sg_mean / top_mean, 1.0)
    # point posterior means down the tree, to estimate the strengths
    pool_index, pool_counts = levels["pool"]
    area_index, area_counts = levels["area"]
    _, cell_counts = levels["cell"]
    pool_of_area = np.zeros(area_counts.shape[0], dtype=np.intp)
    pool_of_area[area_index] = pool_index
    alphas["pool"], pool_mean = _posterior_level(
        np.broadcast_to(top_mean, pool_counts.shape), pool_counts, order, given.get("pool"), deff
    )
    alphas["area"], area_mean = _posterior_level(
        pool_mean[pool_of_area], area_counts, order, given.get("area"), deff
    )
    cell_centre = _normalise(area_mean[area_index] * pattern[sg_index])
    alphas["cell"], _ = _posterior_level(cell_centre, cell_counts, order, given.get("cell"), deff)

    # what each level's data say about it, bottom up (see _parent_information)
    def size(counts: np.ndarray) -> np.ndarray:
        s, f = _split_data(counts, order, deff)
        return s + f

    n_cell, n_area, n_pool, n_top = (
        size(cell_counts),
        size(area_counts),
        size(pool_counts),
        size(top_counts),
    )
    scales: dict[str, np.ndarray | None] = dict.fromkeys(("area", "pool", "top"))
    if parent_information:
        scales["area"] = _parent_information(area_index, n_area.shape[0], n_cell, alphas["cell"], n_area)
        scales["pool"] = _parent_information(
            pool_of_area, n_pool.shape[0], n_area * scales["area"], alphas["area"], n_pool
        )
        scales["top"] = _parent_information(
            np.zeros(n_pool.shape[0], dtype=np.intp), 1, n_pool * scales["pool"], alphas["pool"], n_top
        )
    # draws, top down
    top = _draw_level(
        rng,
        np.broadcast_to(uniform, (n_draws, 1, k)),
        top_counts,
        order,
        np.full(k - 1, PERKS),
        deff,
        scales["top"],
    )
    pools = _draw_level(
        rng,
        np.broadcast_to(top, (n_draws, pool_counts.shape[0], k)),
        pool_counts,
        order,
        alphas["pool"],
        deff,
        scales["pool"],
    )
    areas = _draw_level(
        rng, pools[:, pool_of_area, :], area_counts, order, alphas["area"], deff, scales["area"]
    )
    theta = _draw_level(
        rng, _normalise(areas[:, area_index, :] * pattern[sg_index]), cell_counts, order, alphas["cell"], deff
    )
    totals = prepared.cells["_count"].to_numpy(dtype=np.int64)
    theta = _normalise(theta)
    if not multinomial:
        return totals[None, :, None] * theta, alphas
    counts = rng.multinomial(np.broadcast_to(totals, (n_draws, totals.size)), theta)
    return counts.astype(np.float64), alphas


def _label(prepared: _Prepared, code: int) -> str:
    parts = []
    for levels in reversed(prepared.categories):
        code, position = divmod(int(code), len(levels))
        parts.append(str(levels[position]))
    return " x ".join(reversed(parts))


def _result(
    prepared: _Prepared,
    counts: np.ndarray,
    alphas: Mapping[str, np.ndarray],
    by: list[str],
    within: list[str],
    level: float,
    options: dict[str, Any],
) -> CouncilFundedEstimates:
    cells = prepared.cells
    n_draws, n_cells, n_categories = counts.shape
    within_levels = [pd.unique(cells[c]) for c in within]
    shape_within = [len(v) for v in within_levels]
    position = np.zeros(n_cells, dtype=np.intp)
    for col, levels in zip(within, within_levels, strict=True):
        position = position * len(levels) + pd.Index(levels).get_indexer(pd.Index(cells[col]))
    dense = np.full((n_draws, int(np.prod(shape_within)), n_categories), np.nan)
    dense[:, position, :] = counts
    shape = [n_draws, *shape_within, *[len(c) for c in prepared.categories]]
    coords: dict[str, Any] = {"draw": np.arange(n_draws)}
    for col, levels in zip(within, within_levels, strict=True):
        coords[col] = np.asarray(levels, dtype=object)
    for col, labels in zip(by, prepared.categories, strict=True):
        coords[col] = np.asarray(labels, dtype=object)
    data = xr.Dataset({QUANTITY: (["draw", *within, *by], dense.reshape(shape))}, coords=coords)
    key_frame = pd.DataFrame(
        np.repeat(cells[within].to_numpy(dtype=object), n_categories, axis=0), columns=within
    )
    grids = np.meshgrid(*[np.arange(len(c)) for c in prepared.categories], indexing="ij")
    for col, labels, grid in zip(by, prepared.categories, grids, strict=True):
        key_frame[col] = np.tile(np.asarray(labels, dtype=object)[grid.ravel()], n_cells)
    respondents = pd.Series(prepared.respondents.ravel(), index=pd.MultiIndex.from_frame(key_frame))
    empty = (prepared.respondents.sum(axis=1) == 0) & (cells["_count"].to_numpy() > 0)
    attrs = {
        "method": "stick-breaking (generalised Dirichlet) hierarchy England > pool > area > "
        "admin cell (centre: area composition x national setting/age pattern), "
        "Kish effective-size pseudo-counts, strengths by marginal likelihood per "
        "split, multinomial counts",
        "prior_strength": {
            level: dict(
                zip(
                    [_label(prepared, c) for c in _split_order(prepared)[:-1]],
                    map(float, values),
                    strict=True,
                )
            )
            for level, values in alphas.items()
        },
        "cells_without_respondents": cells.loc[empty, within].to_dict("records"),
        "by": by,
        "within": within,
        **options,
    }
    return CouncilFundedEstimates(data, by=[*within, *by], respondents=respondents, level=level, attrs=attrs)
