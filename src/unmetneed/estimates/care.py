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
from unmetneed.errors import FrameError, UnmetneedWarning
from unmetneed.estimates.chain import LINKS, link_data
from unmetneed.mrp.draw_estimates import DrawEstimates, group_keys, summarise_draws
from unmetneed.mrp.frame import PopulationFrame
from unmetneed.mrp.model import MultilevelFit, MultilevelModel
from unmetneed.mrp.poststratify import cell_probability_draws

__all__ = [
    "BenchmarkWarning",
    "CareEstimates",
    "CareModel",
    "fit_care_model",
    "PARTS",
    "QUANTITIES",
    "default_formula",
    "estimate_care_populations",
]

PARTS = ("council_funded", "self_funded", "unpaid_only", "unmet")
QUANTITIES = ("need", *PARTS, "insufficient", "unmet_or_insufficient")
STANDARD_EFFECTS = ("area_code", "age_band", "ethnic_group", "disability")
CHUNK_ELEMENTS = 4_000_000  # cells x draws per chunk and per array (32 MB each)
FLAG_CV = 0.2


class BenchmarkWarning(UnmetneedWarning):
    """Administrative counts exceeded the modelled paid care in some draws."""


def default_formula(outcome: str, frame: PopulationFrame, data: pd.DataFrame) -> str:
    """``outcome ~ sex + (1|area_code) + (1|age_band) + (1|ethnic_group) + (1|disability)``.

    Standard variables missing from the frame or the survey are left out;
    numeric area covariates present in both (float columns of the frame, e.g.
    a deprivation index) are added as fixed effects.
    """
    cells = frame.cells
    both = [c for c in cells.columns if c in data.columns and c != frame.count_col]
    fixed = ["sex"] if "sex" in both else []
    fixed += [c for c in both if pd.api.types.is_float_dtype(cells[c]) and c not in STANDARD_EFFECTS]
    random = [f"(1|{g})" for g in STANDARD_EFFECTS if g in both]
    return f"{outcome} ~ " + " + ".join(fixed + random) if fixed else f"{outcome} ~ 1 + " + " + ".join(random)


class CareEstimates(DrawEstimates):
    """Care populations as draws, with the long tidy table people publish.

    ``to_frame()`` has ``[by...], quantity, measure, estimate, se, ci_lower,
    ci_upper, cv, n, flag`` with ``measure`` in ``count``, ``rate_per_1000``
    (per 1,000 adults in the group) and ``share_of_need``. ``flag`` is
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
                array = values.transpose("draw", *self.by)
                stats = summarise_draws(array.values.reshape(self.n_draws, -1), level)
                keys = group_keys(array, self.by)
                table = keys.copy()
                table["quantity"] = quantity
                table["measure"] = measure
                for name, column in stats.items():
                    table[name] = column
                table["n"] = self._respondents_for(keys)
                frames.append(table)
        out = pd.concat(frames, ignore_index=True)
        out["flag"] = np.where(out["cv"] > FLAG_CV, "low_reliability", "ok")
        out.attrs.update(self.attrs)
        out.attrs.update({"level": level, "estimate": "posterior mean",
                          "se": "posterior standard deviation",
                          "interval": "equal-tailed quantiles of draws", "draws": self.n_draws,
                          "flag_cv": FLAG_CV})
        return out

    to_frame = summary


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

    def populations(
        self,
        frame: PopulationFrame | pd.DataFrame,
        *,
        by: str | Sequence[str] | None = "area_code",
        admin: pd.Series | None = None,
        level: float = 0.9,
    ) -> CareEstimates:
        """Care populations of ``frame`` by ``by`` (see :func:`estimate_care_populations`)."""
        key = tuple(as_column_list(by))
        return self.populations_by(frame, groupings=[key], admin=admin, level=level,
                                   _stacklevel=3)[key]

    def populations_by(
        self,
        frame: PopulationFrame | pd.DataFrame,
        *,
        groupings: Sequence[str | Sequence[str] | None],
        admin: pd.Series | None = None,
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
        cells = population.cells
        keys = [tuple(as_column_list(g)) for g in groupings]
        for key in keys:
            require_columns(cells, list(key), "by")
        if admin is not None:
            admin = _check_admin(admin, cells)
        # Effects of levels unseen in fitting are drawn from the same stream every time.
        rng = np.random.default_rng(self._seed_sequence)
        probabilities: dict[str, Any] = {}
        unseen: dict[str, dict[str, int]] = {}
        for name, fit in self.fits.items():
            missing = [v for v in fit.model.data.cell_frame.columns if v not in cells.columns]
            if missing:
                raise FrameError(
                    f"the frame lacks {missing}, used by the {name!r} model "
                    f"({fit.model.formula.text}); add it to the frame or drop it from formulas"
                )
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UnmetneedWarning)
                chunk, new_levels = cell_probability_draws(fit, cells, self.link_draws[name], rng)
            probabilities[name] = chunk
            if new_levels:
                unseen[name] = new_levels
        if unseen:
            warnings.warn(
                f"frame levels absent from a model's respondents draw their effects from "
                f"N(0, sd^2): {unseen}", UnmetneedWarning, stacklevel=_stacklevel,
            )
        datasets, share_over = _accumulate(probabilities, population, keys, self.n_draws, admin)
        if share_over > 0:
            warnings.warn(
                f"administrative council-funded counts exceed the modelled paid care in "
                f"{share_over:.1%} of area draws; there self_funded is 0 and the excess comes out "
                "of unpaid_only and unmet in proportion", BenchmarkWarning, stacklevel=_stacklevel,
            )
        attrs = {
            "models": {name: fit.model.formula.text for name, fit in self.fits.items()},
            "benchmarked_to_admin": admin is not None,
            "share_of_area_draws_admin_above_paid": share_over,
            "unseen_levels": unseen,
            "weighted": self.weighted,
        }
        data = self._respondents
        out: dict[tuple[str, ...], CareEstimates] = {}
        for key, dataset in zip(keys, datasets, strict=True):
            respondents = None
            if key and set(key) <= set(data.columns):
                respondents = data.groupby(list(key), observed=True).size()
            estimates = CareEstimates(dataset, by=list(key), respondents=respondents, level=level,
                                      attrs=dict(attrs))
            estimates.fits = self.fits
            out[key] = estimates
        return out


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
        fit = model.fit()
        fits[link.name] = fit
        link_draws[link.name] = fit.draws(draws, seed=rng)
    return CareModel(fits, link_draws, n_draws=draws, seed_sequence=effect_seed,
                     respondents=data, weighted=weighted)


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
        Council-funded counts indexed by ``area_code``: benchmarking keeps
        ``need`` and paid help fixed in each draw and moves people between
        ``council_funded`` and ``self_funded``; where the count exceeds paid
        help, ``self_funded`` is 0 and the excess comes out of
        ``unpaid_only`` and ``unmet`` in proportion (a
        :class:`BenchmarkWarning` gives the share of such draws).
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
    model = fit_care_model(frame, survey, formulas=formulas, draws=draws, seed=seed,
                           weighted=weighted)
    return model.populations(frame, by=by, admin=admin, level=level)


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
) -> tuple[list[xr.Dataset], float]:
    cells = population.cells
    counts = population.counts
    coded = [_grouping_codes(cells, by) for by in groupings]
    size = max(1, CHUNK_ELEMENTS // max(n_draws, 1))
    factors = None
    share_over = 0.0
    area_codes = None
    if admin is not None:
        area = code_columns(cells, ["area_code"], "area_code")
        (area_totals,) = _sum_chunks(probabilities, counts, [(area.codes, area.n_levels)], n_draws,
                                     size, None, None)
        factors, share_over = _benchmark_factors(area_totals, area.levels["area_code"], admin)
        area_codes = area.codes
    all_totals = _sum_chunks(probabilities, counts, [(c, n) for c, n, _ in coded], n_draws, size,
                             factors, area_codes)
    datasets = []
    for by, (group, n_groups, keys), totals in zip(groupings, coded, all_totals, strict=True):
        datasets.append(_dataset(list(by), group, n_groups, keys, totals, counts, n_draws))
    return datasets, share_over


def _dataset(by: list[str], group: np.ndarray, n_groups: int, keys: pd.DataFrame,
             totals: dict[str, np.ndarray], counts: np.ndarray, n_draws: int) -> xr.Dataset:
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


def _cell_parts(probabilities: Mapping[str, Any], start: int, stop: int, counts: np.ndarray) -> dict[str, np.ndarray]:
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
                indicator = sp.csr_matrix((np.ones(m), (np.arange(m), group[start:stop])),
                                          shape=(m, n_groups))
                for name in names:
                    target[name] += np.asarray((indicator.T @ parts[name].T).T)
    return totals


def _benchmark_factors(
    area_totals: dict[str, np.ndarray], areas: pd.Series, admin: pd.Series
) -> tuple[dict[str, np.ndarray], float]:
    """Per draw and area: how to rescale council, self, unpaid and unmet in each cell."""
    target = admin.reindex(pd.Index(areas)).to_numpy()  # NaN where no admin count
    has = ~np.isnan(target)
    council = area_totals["council_funded"]
    self_ = area_totals["self_funded"]
    unpaid = area_totals["unpaid_only"]
    unmet = area_totals["unmet"]
    paid = council + self_
    t = np.where(has, target, 0.0)[None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        # admin <= council: scale council down, self takes the rest of paid help.
        down = np.where(council > 0, t / council, 1.0)
        # council < admin <= paid: scale self down, council takes the rest.
        self_scale = np.where(self_ > 0, (paid - t) / self_, 1.0)
        # admin > paid: self 0, council = paid + excess; unpaid and unmet shrink in proportion.
        excess = t - paid
        spare = unpaid + unmet
        shrink = np.where(spare > 0, 1.0 - np.minimum(excess / spare, 1.0), 1.0)
    over = (t > paid) & has[None, :]
    case_down = (t <= council) & has[None, :]
    case_self = (~case_down) & (~over) & has[None, :]
    share_over = float(over[:, has].mean()) if has.any() else 0.0
    return {
        "case_down": case_down, "case_self": case_self, "over": over,
        "down": np.nan_to_num(down, nan=1.0, posinf=1.0),
        "self_scale": np.nan_to_num(self_scale, nan=1.0, posinf=1.0),
        "shrink": np.nan_to_num(shrink, nan=1.0, posinf=1.0),
    }, share_over


def _apply_benchmark(parts: dict[str, np.ndarray], factors: dict[str, np.ndarray], area: np.ndarray) -> None:
    council, self_ = parts["council_funded"], parts["self_funded"]
    paid = council + self_
    down = factors["case_down"][:, area]
    mid = factors["case_self"][:, area]
    over = factors["over"][:, area]
    new_council = np.where(down, council * factors["down"][:, area], council)
    new_self = np.where(down, paid - new_council, self_)
    scaled_self = self_ * factors["self_scale"][:, area]
    new_self = np.where(mid, scaled_self, new_self)
    new_council = np.where(mid, paid - scaled_self, new_council)
    shrink = factors["shrink"][:, area]
    spare = parts["unpaid_only"] + parts["unmet"]
    moved = spare * (1.0 - shrink)
    new_council = np.where(over, paid + moved, new_council)
    new_self = np.where(over, 0.0, new_self)
    parts["unpaid_only"] = np.where(over, parts["unpaid_only"] * shrink, parts["unpaid_only"])
    parts["unmet"] = np.where(over, parts["unmet"] * shrink, parts["unmet"])
    parts["council_funded"] = new_council
    parts["self_funded"] = new_self
