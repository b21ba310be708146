r"""Care populations by area and characteristic, with propagated uncertainty.

Per frame cell :math:`c` (population :math:`N_c`) and draw :math:`d`, with the
chain's probabilities :math:`p^{need}, p^{help}, p^{paid}, p^{council},
p^{notenough}`:

.. math::

    \text{need} = N p^{need},\quad
    \text{unmet} = \text{need}\,(1-p^{help}),\quad
    \text{unpaid\_only} = \text{need}\,p^{help}(1-p^{paid}),

    \text{council\_funded} = \text{need}\,p^{help}p^{paid}p^{council},\quad
    \text{self\_funded} = \text{need}\,p^{help}p^{paid}(1-p^{council}),

    \text{insufficient} = \text{need}\,p^{help}p^{notenough},

so ``council_funded + self_funded + unpaid_only + unmet = need`` exactly in
every draw. Groups are sums over their cells.

**Benchmarking to administrative counts** conditions the draws on the known
council-funded count :math:`A_a` of area :math:`a`. Per area, the log totals
of the parts :math:`\ell_j = \log T_j` (:math:`j` = council, self, unpaid,
unmet) are treated as jointly Gaussian across draws, and each draw is moved by
the conditional-mean update of an ensemble Kalman step (Evensen 2003) with a
perturbed observation:

.. math::

    \ell_{j,d}' = \ell_{j,d} + k_j\,(\log A_a + \tau\varepsilon_d - \ell_{C,d}),
    \qquad k_j = \frac{\operatorname{Cov}(\ell_j, \ell_C)}{\operatorname{Var}(\ell_C) + \tau^2},

with :math:`\tau` = ``admin_cv`` (0: the count is exact, and council_funded
equals it in every draw). Every cell of the area's part is multiplied by the
same factor :math:`\exp(\ell' - \ell)`, so no part can become negative, and
``need`` is the sum of the updated parts. A part moves only as far as the
draws say it is correlated with the council-funded total: need and paid care
move with it through the shared links, self-funding moves the other way
through the who-pays link.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
import xarray as xr

from unmetneed._blas import single_threaded_blas
from unmetneed._validate import as_column_list, require_columns, resolve_rng, show
from unmetneed.design import SurveyDesign
from unmetneed.design.coding import code_columns
from unmetneed.errors import BenchmarkWarning, FrameError, UnmetneedWarning
from unmetneed.estimates.chain import LINKS, link_data
from unmetneed.estimates.groupings import (
    add_area_covariates,
    add_grouping_columns,
    grouping_columns,
)
from unmetneed.mrp.draw_estimates import DrawEstimates
from unmetneed.mrp.frame import PopulationFrame
from unmetneed.mrp.model import MultilevelFit, MultilevelModel
from unmetneed.mrp.poststratify import cell_probability_draws

__all__ = [
    "PARTS",
    "QUANTITIES",
    "BenchmarkWarning",
    "CareEstimates",
    "CareModel",
    "default_formula",
    "estimate_care_populations",
    "fit_care_model",
]

PARTS = ("council_funded", "self_funded", "unpaid_only", "unmet")
QUANTITIES = ("need", *PARTS, "insufficient", "unmet_or_insufficient")
STANDARD_EFFECTS = (
    "area_code",
    "age_band",
    "ethnic_group_5",
    "ethnic_group",
    "disability",
    "age_band_disability",
)
CHUNK_ELEMENTS = 4_000_000  # cells x draws per chunk and per array (32 MB each)
FLAG_CV = 0.2


def reliability_flags(table: pd.DataFrame) -> np.ndarray:
    """``ok`` where the CV is at most :data:`FLAG_CV` (or the figure is exactly 0), else ``low_reliability``.

    A CV that cannot be computed (one draw, a zero estimate with a spread) is not ``ok``.
    """
    exact_zero = (table["estimate"] == 0) & (table["se"] == 0)
    return np.where((table["cv"] <= FLAG_CV) | exact_zero, "ok", "low_reliability")


BENCHMARK_Z = 4.0  # an admin count this many posterior SDs (log scale) away is flagged


def default_formula(outcome: str, frame: PopulationFrame, data: pd.DataFrame) -> str:
    """The care chain's default model for one link.

    ``outcome ~ sex + <area covariates> + (1|area_code) + (1|age_band) +
    (1|ethnic_group_5) + (1|ethnic_group) + (1|disability) +
    (1|age_band_disability)``, keeping the terms whose variables the frame and
    the survey both have. Numeric area covariates present in both (float
    columns of the frame, e.g. a deprivation index or the owner-occupied
    share) are fixed effects. ``ethnic_group_5`` (the five broad groups) and
    ``age_band_disability`` (the age x disability interaction) are derived
    from ``ethnic_group`` and from ``age_band`` and ``disability`` by
    :func:`fit_care_model`: a detailed ethnic group with few respondents then
    borrows strength from its broad group rather than from the grand mean.

    Examples
    --------
    >>> import pandas as pd
    >>> import unmetneed as um
    >>> from unmetneed.estimates import default_formula
    >>> cells = pd.DataFrame({"area_code": ["A", "B"], "sex": ["Female", "Male"],
    ...                       "deprivation": [0.1, -0.2], "count": [10, 12]})
    >>> default_formula("outcome", um.PopulationFrame(cells), cells)
    'outcome ~ sex + deprivation + (1|area_code)'
    """
    cells = frame.cells
    both = [c for c in cells.columns if c in data.columns and c != frame.count_col]
    fixed = ["sex"] if "sex" in both else []
    fixed += [
        c
        for c in both
        if pd.api.types.is_float_dtype(cells[c]) and c not in STANDARD_EFFECTS and c not in grouping_columns()
    ]
    random = [f"(1|{g})" for g in STANDARD_EFFECTS if g in both]
    if fixed:
        return f"{outcome} ~ " + " + ".join(fixed + random)
    return f"{outcome} ~ 1 + " + " + ".join(random)


class CareEstimates(DrawEstimates):
    """Care populations as draws, with the long tidy table people publish.

    ``to_frame()`` has ``[by...], quantity, measure, estimate, se, ci_lower,
    ci_upper, cv, n, basis, flag`` with ``measure`` in ``count``, ``rate_per_1000``
    (per 1,000 adults in the group) and ``share_of_need``. ``basis`` says what a
    figure rests on: ``model`` (the chain, poststratified), ``model_no_respondents``
    (a group without respondents: its effects come from the fitted distribution),
    ``admin`` (council-funded counts and rates fixed to the admin counts, exact or
    with the ``admin_cv`` given) or ``admin_composition`` (admin totals split
    across the group by the model). ``flag`` is
    ``low_reliability`` when the CV exceeds 0.2, else ``ok`` (disclosure
    control adds ``suppressed``). ``fits`` holds the fitted chain.
    """

    fits: Mapping[str, MultilevelFit]

    def summary(self, level: float | None = None) -> pd.DataFrame:
        level = self.level if level is None else float(level)
        draws = self.draws
        population = draws["population"]
        frames = []
        for quantity in QUANTITIES:
            count = draws[quantity]
            for measure, values in (
                ("count", count),
                ("rate_per_1000", 1000.0 * count / population),
                ("share_of_need", count / draws["need"]),
            ):
                if quantity == "need" and measure == "share_of_need":
                    continue
                frames.append(self._summary_rows(values, level, quantity=quantity, measure=measure))
        out = pd.concat(frames, ignore_index=True)
        out["basis"] = self._basis(out)
        out["flag"] = reliability_flags(out)
        out.attrs.update(self.attrs)
        out.attrs.update({**self._summary_attrs(level), "flag_cv": FLAG_CV})
        return out

    to_frame = summary

    def _basis(self, table: pd.DataFrame) -> np.ndarray:
        """What each figure rests on (``model``, ``model_no_respondents``, ``admin``, ...)."""
        n = table["n"]
        basis = np.where(n.isna() | (n.fillna(0) > 0), "model", "model_no_respondents")
        if self.attrs.get("benchmarked_to_admin"):
            # Counts and rates of council-funded care rest on the admin count (exact, or with
            # the admin_cv given); a share of need still divides by the modelled need.
            council = (
                (table["quantity"] == "council_funded") & table["measure"].isin(["count", "rate_per_1000"])
            ).to_numpy()
            if self.by == ["area_code"]:
                covered = table["area_code"].astype(str).isin(self.attrs.get("admin_areas", []))
                basis = np.where(council & covered.to_numpy(), "admin", basis)
            elif self.attrs.get("admin_covers_frame"):
                # totals of admin counts over areas, split by the model's composition
                kind = "admin" if not self.by else "admin_composition"
                basis = np.where(council, kind, basis)
        return basis


class CareModel:
    """The fitted chain of models and their draws, ready to poststratify.

    Fit once with :func:`fit_care_model`, then ask for any grouping with
    :meth:`populations` — every grouping uses the same draws, so tables by
    area and by characteristic are consistent with each other.
    """

    def __init__(
        self,
        fits: Mapping[str, MultilevelFit],
        link_draws: Mapping[str, xr.Dataset],
        *,
        n_draws: int,
        seed_sequence: np.random.SeedSequence,
        respondents: pd.DataFrame,
        weighted: bool,
    ) -> None:
        self.fits = dict(fits)
        self.link_draws = dict(link_draws)
        self.n_draws = n_draws
        self._seed_sequence = seed_sequence
        self._respondents = respondents
        self.weighted = weighted

    def __repr__(self) -> str:
        models = "; ".join(f"{k}: {f.model.formula.text}" for k, f in self.fits.items())
        return f"<CareModel: {self.n_draws} draws; {models}>"

    def link_probabilities(self, link: str, cells: pd.DataFrame, rng: np.random.Generator) -> np.ndarray:
        """Draws (draw x cell) of one link's probability for ``cells`` (with grouping columns).

        Levels unseen in fitting draw their effects from N(0, sd^2) with ``rng``.
        """
        fit = self.fits[link]
        _require_model_columns(link, fit, cells.columns)
        chunk, _ = cell_probability_draws(fit, cells, self.link_draws[link], rng)
        return np.asarray(chunk(0, len(cells)))

    def populations(
        self,
        frame: PopulationFrame | pd.DataFrame,
        *,
        by: str | Sequence[str] | None = "area_code",
        admin: pd.Series | None = None,
        admin_cv: float = 0.0,
        level: float = 0.9,
    ) -> CareEstimates:
        """Care populations of ``frame`` by ``by`` (see :func:`estimate_care_populations`)."""
        key = tuple(as_column_list(by))
        return self.populations_by(
            frame, groupings=[key], admin=admin, admin_cv=admin_cv, level=level, _stacklevel=3
        )[key]

    def populations_by(
        self,
        frame: PopulationFrame | pd.DataFrame,
        *,
        groupings: Sequence[str | Sequence[str] | None],
        admin: pd.Series | None = None,
        admin_cv: float = 0.0,
        level: float = 0.9,
        _stacklevel: int = 2,
    ) -> dict[tuple[str, ...], CareEstimates]:
        """Several groupings in one pass over the cells (keys: tuples of column names).

        Examples
        --------
        >>> import unmetneed as um
        >>> eng = um.datasets.load_synthetic_england()  # doctest: +SKIP
        >>> model = um.fit_care_model(eng.population, eng.surveys["general"], draws=100)  # doctest: +SKIP
        >>> tables = model.populations_by(eng.population, groupings=["area_code", "age_band"])  # doctest: +SKIP
        """
        population = frame if isinstance(frame, PopulationFrame) else PopulationFrame(frame)
        keys = [tuple(as_column_list(g)) for g in groupings]
        admin_cv = _check_admin_cv(admin_cv)
        if population.is_dask:
            from unmetneed.estimates.care_streaming import stream_care_populations

            datasets, far, covers, unseen = stream_care_populations(self, population, keys, admin, admin_cv)
        else:
            datasets, far, covers, unseen = self._accumulate_in_memory(population, keys, admin, admin_cv)
        if unseen:
            warnings.warn(
                f"frame levels absent from a model's respondents draw their effects from "
                f"N(0, sd^2): {unseen}",
                UnmetneedWarning,
                stacklevel=_stacklevel,
            )
        if far:
            shown = ", ".join(f"{a} (z = {z:+.1f})" for a, z in list(far.items())[:8])
            warnings.warn(
                f"administrative council-funded counts lie more than {BENCHMARK_Z:g} posterior SDs "
                f"(log scale) from the model's in {len(far)} area(s): {shown}"
                f"{' ...' if len(far) > 8 else ''}; check that the counts and the frame cover the "
                "same people (setting, ages, year) before benchmarking",
                BenchmarkWarning,
                stacklevel=_stacklevel,
            )
        attrs = {
            "models": {name: fit.model.formula.text for name, fit in self.fits.items()},
            "benchmarked_to_admin": admin is not None,
            "benchmark": (
                None
                if admin is None
                else f"ensemble Kalman update of the parts' log totals on the admin count, "
                f"admin_cv={admin_cv:g}"
            ),
            "admin_far_from_posterior": far,
            "admin_cv": admin_cv,
            "admin_areas": [] if admin is None else [str(a) for a in admin.index],
            "admin_covers_frame": covers,
            "unseen_levels": unseen,
            "weighted": self.weighted,
        }
        data = self._respondents
        out: dict[tuple[str, ...], CareEstimates] = {}
        for key, dataset in zip(keys, datasets, strict=True):
            respondents = None
            if key and set(key) <= set(data.columns):
                respondents = data.groupby(list(key), observed=True).size()
            estimates = CareEstimates(
                dataset, by=list(key), respondents=respondents, level=level, attrs=dict(attrs)
            )
            estimates.fits = self.fits
            out[key] = estimates
        return out

    def _accumulate_in_memory(
        self,
        population: PopulationFrame,
        keys: list[tuple[str, ...]],
        admin: pd.Series | None,
        admin_cv: float,
    ) -> tuple[list[xr.Dataset], dict[str, float], bool, dict[str, dict[str, int]]]:
        """Datasets per grouping, councils far from the model, admin coverage and unseen levels."""
        population = PopulationFrame(add_grouping_columns(population.cells), count=population.count_col)
        cells = population.cells
        for key in keys:
            require_columns(cells, list(key), "by")
        if admin is not None:
            admin = _check_admin(admin, cells)
        # Effects of levels unseen in fitting are drawn from the same stream every time.
        rng = np.random.default_rng(self._seed_sequence)
        probabilities: dict[str, Any] = {}
        unseen: dict[str, dict[str, int]] = {}
        for name, fit in self.fits.items():
            _require_model_columns(name, fit, cells.columns)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UnmetneedWarning)
                chunk, new_levels = cell_probability_draws(fit, cells, self.link_draws[name], rng)
            probabilities[name] = chunk
            if new_levels:
                unseen[name] = new_levels
        datasets, far, covers = _accumulate(
            probabilities, population, keys, self.n_draws, admin, admin_cv, rng
        )
        return datasets, far, covers, unseen


def fit_care_model(
    frame: PopulationFrame | pd.DataFrame,
    survey: SurveyDesign | pd.DataFrame,
    *,
    formulas: Mapping[str, str] | None = None,
    draws: int = 1000,
    seed: int | np.random.Generator | None = None,
    weighted: bool = False,
) -> CareModel:
    """Fit the chain of models and take their draws (see :func:`estimate_care_populations`).

    Examples
    --------
    >>> import unmetneed as um
    >>> eng = um.datasets.load_synthetic_england()  # doctest: +SKIP
    >>> model = um.fit_care_model(eng.population, eng.surveys["general"], draws=200, seed=1)  # doctest: +SKIP
    >>> by_area = model.populations(eng.population, by="area_code")  # doctest: +SKIP
    """
    population = frame if isinstance(frame, PopulationFrame) else PopulationFrame(frame)
    data = survey.data if isinstance(survey, SurveyDesign) else survey
    if not isinstance(data, pd.DataFrame):
        raise FrameError("survey must be a SurveyDesign or a DataFrame of respondents")
    data = add_grouping_columns(add_area_covariates(data, population.cells, population.count_col))
    population = PopulationFrame(add_grouping_columns(population.cells), count=population.count_col)
    sequence = _seed_sequence(seed)
    draw_seed, effect_seed = sequence.spawn(2)
    rng = np.random.default_rng(draw_seed)
    per_link = link_data(data)
    weights_col = survey.weights_col if (weighted and isinstance(survey, SurveyDesign)) else None
    cells = population.cells
    fits: dict[str, MultilevelFit] = {}
    link_draws: dict[str, xr.Dataset] = {}
    for link in LINKS:
        formula = (formulas or {}).get(link.name) or default_formula("outcome", population, data)
        model = MultilevelModel(formula, per_link[link.name], weights=weights_col)
        missing = [v for v in model.data.cell_frame.columns if v not in cells.columns]
        if missing:
            raise FrameError(
                f"the frame lacks {missing}, used by the {link.name!r} model ({formula}); add it "
                "to the frame or drop it from formulas"
            )
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            fit = model.fit()
        for warning in caught:  # say which link a model warning is about
            warnings.warn_explicit(
                f"{link.name!r} model ({formula}): {warning.message}",
                warning.category,
                warning.filename,
                warning.lineno,
            )
        fits[link.name] = fit
        link_draws[link.name] = fit.draws(draws, seed=rng)
    return CareModel(
        fits, link_draws, n_draws=draws, seed_sequence=effect_seed, respondents=data, weighted=weighted
    )


def _seed_sequence(seed: int | np.random.Generator | None) -> np.random.SeedSequence:
    if isinstance(seed, np.random.Generator):
        return np.random.SeedSequence(int(seed.integers(0, 2**63)))
    return np.random.SeedSequence(resolve_rng(seed).integers(0, 2**63) if seed is None else seed)


def estimate_care_populations(
    frame: PopulationFrame | pd.DataFrame,
    survey: SurveyDesign | pd.DataFrame,
    *,
    formulas: Mapping[str, str] | None = None,
    admin: pd.Series | None = None,
    admin_cv: float = 0.0,
    by: str | Sequence[str] | None = "area_code",
    draws: int = 1000,
    seed: int | np.random.Generator | None = None,
    level: float = 0.9,
    weighted: bool = False,
) -> CareEstimates:
    """Adults with care needs, who meets them, and who is left out — by group.

    Parameters
    ----------
    frame : PopulationFrame or DataFrame
        Census cells with the standard variable names and a ``count`` column.
    survey : SurveyDesign or DataFrame
        Respondents with ``need`` (0/1), ``help`` (``none``, ``unpaid_only``,
        ``paid``; asked when ``need == 1``), ``payer`` (``council``, ``self``,
        ``both``; asked when help is paid) and ``help_enough`` (0/1; asked
        when there is help). Items not asked may be missing.
    formulas : dict, optional
        Formula per link (``need``, ``help``, ``paid``, ``council``,
        ``not_enough``); the outcome column is ``outcome``. Default:
        :func:`default_formula`.
    admin : Series, optional
        Council-funded counts indexed by ``area_code`` (of the people the
        frame covers). The draws are conditioned on them (module notes): in
        each area and draw every part is rescaled by how it covaries with the
        council-funded total across draws, so ``council_funded`` equals the
        count (when ``admin_cv`` is 0), no part can go below zero, and
        ``need`` is the sum of the parts. A :class:`BenchmarkWarning` names
        areas whose count lies more than 4 posterior SDs from the model's.
    admin_cv : float, default 0.0
        Relative standard error of the admin counts (e.g. 0.03 for counts
        known to about 3%); 0 treats them as exact.
    by : str, list of str or None
        Grouping of the output (a frame column, a cross, or None for England).
    draws : int
        Draws per model (their joint draws integrate over the SDs).
    seed : int or Generator, optional
    level : float, default 0.9
    weighted : bool, default False
        Fit the models with the survey weights (pseudo-likelihood). MRP
        usually models the design variables instead.

    Returns
    -------
    CareEstimates
        Quantities ``need``, ``council_funded``, ``self_funded``,
        ``unpaid_only``, ``unmet``, ``insufficient``,
        ``unmet_or_insufficient`` and ``population`` as draws by group.

    Raises
    ------
    FrameError
        A model variable missing from the frame; admin counts for areas not
        in the frame or negative.
    MissingColumnError
        ``by`` names no frame column.

    Examples
    --------
    >>> import unmetneed as um
    >>> survey = um.datasets.load_example_survey()
    >>> survey = survey.assign(payer=survey["help"].map({"paid": "self"}).astype("object"),
    ...                        help_enough=1)
    >>> cells = (survey.groupby(["area_code", "sex", "age_band"], observed=True).size()
    ...          .rename("count").mul(1000).reset_index())
    >>> frame = um.PopulationFrame(cells)
    >>> f = {k: "outcome ~ sex + (1|area_code) + (1|age_band)" for k in
    ...      ("need", "help", "paid", "not_enough")}
    >>> f["council"] = "outcome ~ 1 + (1|area_code) + (1|age_band)"
    >>> est = um.estimate_care_populations(frame, survey.assign(payer=survey["payer"].fillna("self")),
    ...                                    formulas=f, draws=100, seed=1)  # doctest: +SKIP
    """
    model = fit_care_model(frame, survey, formulas=formulas, draws=draws, seed=seed, weighted=weighted)
    return model.populations(frame, by=by, admin=admin, admin_cv=admin_cv, level=level)


def _require_model_columns(name: str, fit: MultilevelFit, columns: pd.Index | Sequence[str]) -> None:
    missing = [v for v in fit.model.data.cell_frame.columns if v not in columns]
    if missing:
        raise FrameError(
            f"the frame lacks {missing}, used by the {name!r} model "
            f"({fit.model.formula.text}); add it to the frame or drop it from formulas"
        )


def _check_admin(admin: pd.Series, cells: pd.DataFrame) -> pd.Series:
    if "area_code" not in cells.columns:
        raise FrameError("admin counts are by area_code, but the frame has no area_code column")
    admin = pd.Series(admin)
    values = pd.to_numeric(admin, errors="coerce")
    if values.isna().any() or (values < 0).any():
        bad = admin[values.isna() | (values < 0)].head(5)
        raise FrameError(f"admin counts must be non-negative numbers; got {bad.to_dict()}")
    unknown = admin.index.difference(pd.Index(cells["area_code"].unique()))
    if len(unknown):
        raise FrameError(
            f"admin counts for areas not in the frame: [{', '.join(show(a) for a in unknown[:8])}]"
            f"{' ...' if len(unknown) > 8 else ''}; check the area codes (2021 boundaries?)"
        )
    return values.astype(np.float64)


def _grouping_codes(cells: pd.DataFrame, by: tuple[str, ...]) -> tuple[np.ndarray, int, pd.DataFrame]:
    if by:
        coding = code_columns(cells, list(by), "by")
        return coding.codes, coding.n_levels, coding.levels
    return np.zeros(len(cells), dtype=np.intp), 1, pd.DataFrame(index=[0])


def _accumulate(
    probabilities: Mapping[str, Any],
    population: PopulationFrame,
    groupings: Sequence[tuple[str, ...]],
    n_draws: int,
    admin: pd.Series | None,
    admin_cv: float,
    rng: np.random.Generator,
) -> tuple[list[xr.Dataset], dict[str, float], bool]:
    """Group totals as datasets; councils far from the model; whether admin covers every area."""
    cells = population.cells
    counts = population.counts
    coded = [_grouping_codes(cells, by) for by in groupings]
    size = max(1, CHUNK_ELEMENTS // max(n_draws, 1))
    factors = None
    far: dict[str, float] = {}
    area_codes = None
    covers = False
    if admin is not None:
        area = code_columns(cells, ["area_code"], "area_code")
        covers = bool(area.levels["area_code"].astype(str).isin(admin.index.astype(str)).all())
        (area_totals,) = _sum_chunks(
            probabilities, counts, [(area.codes, area.n_levels)], n_draws, size, None, None
        )
        factors, far = _benchmark_factors(area_totals, area.levels["area_code"], admin, admin_cv, rng)
        area_codes = area.codes
    all_totals = _sum_chunks(
        probabilities, counts, [(c, n) for c, n, _ in coded], n_draws, size, factors, area_codes
    )
    if admin is not None and admin_cv == 0.0:
        _exact_admin_totals(groupings, coded, all_totals, admin, covers)
    datasets = []
    for by, (group, n_groups, keys), totals in zip(groupings, coded, all_totals, strict=True):
        datasets.append(_dataset(list(by), group, n_groups, keys, totals, counts, n_draws))
    return datasets, far, covers


def _exact_admin_totals(
    groupings: Sequence[tuple[str, ...]],
    coded: Sequence[Any],
    all_totals: Sequence[dict[str, np.ndarray]],
    admin: pd.Series,
    covers: bool,
) -> None:
    """Exact admin counts are published as the counts, not as sums with rounding noise.

    The update makes each area's council-funded total equal its count up to floating-point
    error (~1e-15 relative), which would show as a tiny positive SE; areas (and England, when
    every frame area has a count) get the count itself.
    """
    known = {str(a): float(v) for a, v in admin.items()}
    for by, (_, _, keys), totals in zip(groupings, coded, all_totals, strict=True):
        council = totals["council_funded"]
        before = council.copy()
        if by == ("area_code",):
            codes = keys["area_code"].astype(str).to_numpy()
            hit = np.array([c in known for c in codes])
            council[:, hit] = np.array([known[c] for c in codes[hit]])[None, :]
        elif by == () and covers:
            council[:, 0] = float(admin.sum())
        totals["need"] += council - before  # need stays the sum of its parts


def _dataset(
    by: list[str],
    group: np.ndarray,
    n_groups: int,
    keys: pd.DataFrame,
    totals: dict[str, np.ndarray],
    counts: np.ndarray,
    n_draws: int,
) -> xr.Dataset:
    pop = np.bincount(group, weights=counts, minlength=n_groups)
    totals = dict(totals)
    totals["population"] = np.broadcast_to(pop, (n_draws, n_groups)).copy()
    totals["unmet_or_insufficient"] = totals["unmet"] + totals["insufficient"]
    coords: dict[str, Any] = {"draw": np.arange(n_draws)}
    if not by:
        return xr.Dataset({name: (["draw"], value[:, 0]) for name, value in totals.items()}, coords=coords)
    index = pd.MultiIndex.from_frame(keys) if len(by) > 1 else pd.Index(keys[by[0]])
    full = pd.MultiIndex.from_product([pd.unique(keys[c]) for c in by]) if len(by) > 1 else index
    position = full.get_indexer(index)
    shape = [n_draws] + [len(pd.unique(keys[c])) for c in by]
    for c in by:
        coords[c] = np.asarray(pd.unique(keys[c]))
    variables = {}
    for name, value in totals.items():
        dense = np.full((n_draws, int(np.prod(shape[1:]))), np.nan)
        dense[:, position] = value
        variables[name] = (["draw", *by], dense.reshape(shape))
    return xr.Dataset(variables, coords=coords)


def _cell_parts(
    probabilities: Mapping[str, Any], start: int, stop: int, counts: np.ndarray
) -> dict[str, np.ndarray]:
    need = probabilities["need"](start, stop) * counts[None, start:stop]
    p_help = probabilities["help"](start, stop)
    helped = need * p_help
    unmet = need - helped
    p_paid = probabilities["paid"](start, stop)
    paid = helped * p_paid
    unpaid = helped - paid
    council = paid * probabilities["council"](start, stop)
    return {
        "need": need,
        "council_funded": council,
        "self_funded": paid - council,
        "unpaid_only": unpaid,
        "unmet": unmet,
        "insufficient": helped * probabilities["not_enough"](start, stop),
    }


def _sum_chunks(
    probabilities: Mapping[str, Any],
    counts: np.ndarray,
    groupings: Sequence[tuple[np.ndarray, int]],
    n_draws: int,
    size: int,
    factors: dict[str, np.ndarray] | None,
    area_codes: np.ndarray | None,
) -> list[dict[str, np.ndarray]]:
    """Group totals of every part, per draw, for each grouping, in one pass over the cells."""
    names = ("need", *PARTS, "insufficient")
    totals = [{name: np.zeros((n_draws, n)) for name in names} for _, n in groupings]
    n_cells = counts.size
    with single_threaded_blas():
        for start in range(0, n_cells, size):
            stop = min(start + size, n_cells)
            parts = _cell_parts(probabilities, start, stop, counts)
            if factors is not None:
                _apply_benchmark(parts, factors, area_codes[start:stop])  # type: ignore[index]
            m = stop - start
            for (group, n_groups), target in zip(groupings, totals, strict=True):
                indicator = sp.csr_matrix(
                    (np.ones(m), (np.arange(m), group[start:stop])), shape=(m, n_groups)
                )
                for name in names:
                    target[name] += np.asarray((indicator.T @ parts[name].T).T)
    return totals


def _benchmark_factors(
    area_totals: dict[str, np.ndarray],
    areas: pd.Series,
    admin: pd.Series,
    admin_cv: float,
    rng: np.random.Generator,
) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """Per draw and area, the factor each part's cells are multiplied by (module notes)."""
    target = admin.reindex(pd.Index(areas)).to_numpy()  # NaN where no admin count
    has = ~np.isnan(target)
    n_draws, n_areas = area_totals["council_funded"].shape
    tiny = np.finfo(float).tiny
    logs = {j: np.log(np.maximum(area_totals[j], tiny)) for j in PARTS}
    log_c = logs["council_funded"]
    centred_c = log_c - log_c.mean(axis=0)
    var_c = (centred_c**2).mean(axis=0)
    with np.errstate(divide="ignore"):
        log_a = np.log(np.where(has, target, 1.0))
    observed = log_a[None, :] + admin_cv * rng.standard_normal((n_draws, n_areas))
    innovation = observed - log_c
    factors: dict[str, np.ndarray] = {}
    for j in PARTS:
        cov = ((logs[j] - logs[j].mean(axis=0)) * centred_c).mean(axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            gain = np.where(var_c + admin_cv**2 > 0, cov / (var_c + admin_cv**2), 0.0)
        factor = np.exp(gain[None, :] * innovation)
        factors[j] = np.where(has[None, :], factor, 1.0)
    # An admin count of 0: nobody is council-funded there; the other parts stay as drawn.
    zero = has & (target == 0)
    factors["council_funded"][:, zero] = 0.0
    for j in ("self_funded", "unpaid_only", "unmet"):
        factors[j][:, zero] = 1.0
    sd = np.sqrt(var_c + admin_cv**2)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (log_a - log_c.mean(axis=0)) / sd
    flagged = has & ~zero & (np.abs(z) > BENCHMARK_Z)
    far = {str(a): float(v) for a, v in zip(np.asarray(areas)[flagged], z[flagged], strict=True)}
    return factors, far


def _apply_benchmark(parts: dict[str, np.ndarray], factors: dict[str, np.ndarray], area: np.ndarray) -> None:
    helped = parts["council_funded"] + parts["self_funded"] + parts["unpaid_only"]
    for j in PARTS:
        parts[j] = parts[j] * factors[j][:, area]
    new_helped = parts["council_funded"] + parts["self_funded"] + parts["unpaid_only"]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(helped > 0, new_helped / helped, 1.0)
    parts["insufficient"] = parts["insufficient"] * ratio
    parts["need"] = new_helped + parts["unmet"]


def _check_admin_cv(admin_cv: float) -> float:
    value = float(admin_cv) if isinstance(admin_cv, (int, float, np.floating, np.integer)) else np.nan
    if not np.isfinite(value) or value < 0 or isinstance(admin_cv, bool):
        raise FrameError(
            f"admin_cv={admin_cv!r}: give the admin counts' relative standard error, "
            "a number >= 0 (0 = exact counts)"
        )
    return value
