r"""Care populations in two settings, one accounting: private households, care homes, and all.

A population frame may carry a ``setting`` column (``household`` |
``care_home``). Households get the chain of multilevel models
(:mod:`unmetneed.estimates.care`); care-home residents get the care-home
register and provider returns (:func:`unmetneed.estimate_care_home_funding`);
``all`` is their sum in every draw.

Care homes, per frame cell :math:`c` of council :math:`a` (:math:`N_c`
residents, the census count) and draw :math:`d`:

.. math::

    \text{need}_c = N_c,\qquad \text{self\_funded}_{c,d} = N_c\,s_{c,d},\qquad
    \text{council\_funded}_{c,d} = N_c\,(1 - s_{c,d}),\qquad
    \text{unpaid\_only}_c = \text{unmet}_c = 0.

Everyone living in a care home needs care and gets it; its cost is paid by the
resident or by the state (``council_funded`` here counts every resident who
does not pay for themselves, as ONS's split of care-home residents into
self-funded and state-funded does; NHS-funded residents are among them).
Whether care-home residents' help is enough (``insufficient``) is asked by no
source the library joins, so it is not estimated: care-home and ``all`` rows
of ``insufficient`` and ``unmet_or_insufficient`` are left out of the tables
(their draws are NaN), and those two quantities are published for households.

The council's self-funded share :math:`S_{a,d}` is drawn from the care-home
estimate (EBLUP and MSE of the Fay-Herriot model, or the direct share where
every home returned) as a beta variable with the same mean and variance, so
every draw lies in [0, 1]. It is spread over the council's residents by the
households' who-pays link (``composition="council_link"``): with
:math:`q_{c,d}` the chain's probability that paid care is not council-funded,

.. math::

    s_{c,d} = \operatorname{expit}(\operatorname{logit} q_{c,d} + \delta_{a,d}),
    \qquad \sum_{c \in a} N_c\,s_{c,d} = S_{a,d} \sum_{c \in a} N_c,

i.e. the care-home self-funders of a council are its total, split across age,
sex, ethnic group and disability with the relative odds of self-funding that
the household survey shows (``composition="uniform"``: the same share for
every resident of the council). The relative odds in care homes are assumed
to equal those of paid care in households.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd
import xarray as xr
from scipy import special

from unmetneed._validate import (
    as_column_list,
    check_choice,
    preview,
    require_columns,
    resolve_rng,
)
from unmetneed.errors import FrameError, UnmetneedWarning
from unmetneed.estimates.care import CareEstimates, CareModel, _dataset, _grouping_codes
from unmetneed.estimates.groupings import add_grouping_columns
from unmetneed.mrp.frame import PopulationFrame

__all__ = [
    "SETTINGS",
    "SettingEstimates",
    "care_home_populations",
    "combine_settings",
    "split_settings",
    "with_council_composition",
]

#: The settings of every care-population table; ``all`` = ``household`` + ``care_home``.
SETTINGS = ("household", "care_home", "all")
Composition = Literal["council_link", "uniform"]
#: Care-home quantities that hold by definition (need = residents, no unpaid-only or unmet).
DEFINED = ("need", "unpaid_only", "unmet")
#: Care-home quantities that are 0 by definition: left out of the tables.
STRUCTURAL_ZEROS = ("unpaid_only", "unmet")
#: Quantities no source measures in care homes: households only (module notes).
HOUSEHOLD_ONLY = ("insufficient", "unmet_or_insufficient")


def split_settings(frame: PopulationFrame | pd.DataFrame) -> tuple[PopulationFrame, PopulationFrame | None]:
    """The household and care-home frames of ``frame`` (by its ``setting`` column).

    A frame without ``setting`` is all households (the care-home frame is None).

    Raises
    ------
    FrameError
        ``setting`` has values other than ``household`` and ``care_home``.

    Examples
    --------
    >>> import pandas as pd
    >>> from unmetneed.estimates.settings import split_settings
    >>> cells = pd.DataFrame({"area_code": ["A", "A"], "setting": ["household", "care_home"],
    ...                       "count": [100, 4]})
    >>> households, homes = split_settings(cells)
    >>> int(households.counts.sum()), int(homes.counts.sum())
    (100, 4)
    """
    population = frame if isinstance(frame, PopulationFrame) else PopulationFrame(frame)
    cells = population.cells
    if "setting" not in cells.columns:
        return population, None
    values = cells["setting"].astype(str)
    unknown = sorted(set(values) - {"household", "care_home"})
    if unknown:
        raise FrameError(
            f"column 'setting' of the frame has values {unknown[:5]}; use 'household' "
            "(private households) and 'care_home' (care-home residents)"
        )
    out = []
    for setting in ("household", "care_home"):
        part = cells[(values == setting).to_numpy()].drop(columns="setting").reset_index(drop=True)
        out.append(PopulationFrame(part, count=population.count_col) if len(part) else None)
    if out[0] is None:
        raise FrameError("the frame has no 'household' rows; the household models need them")
    return out[0], out[1]


def care_home_populations(
    model: CareModel,
    frame: PopulationFrame | pd.DataFrame,
    funding: Any,
    *,
    groupings: Sequence[str | Sequence[str] | None],
    composition: Composition = "council_link",
    level: float = 0.9,
    seed: int | np.random.Generator | None = None,
) -> dict[tuple[str, ...], CareEstimates]:
    """Care populations of care-home residents, as draws, by each grouping (module notes).

    Parameters
    ----------
    model : CareModel
        The household chain (:func:`unmetneed.fit_care_model`); its who-pays
        link gives the split of a council's self-funders across residents.
        Its number of draws is used.
    frame : PopulationFrame or DataFrame
        Care-home residents by cell (the ``care_home`` rows of a frame), with
        ``area_code`` and the model's variables.
    funding : CareHomeFundingEstimates or DataFrame
        :func:`unmetneed.estimate_care_home_funding`, or its ``to_frame()``:
        rows ``quantity == "self_funded_share"`` give each council's share
        (estimate, se, basis).
    groupings : sequence
        Groupings as :meth:`CareModel.populations_by`.
    composition : {"council_link", "uniform"}
    level : float, default 0.9
    seed : int or Generator, optional

    Returns
    -------
    dict
        Grouping key (tuple) -> :class:`CareEstimates`.

    Raises
    ------
    FrameError
        A council of the frame has no care-home estimate (listed).

    Examples
    --------
    >>> import unmetneed as um  # doctest: +SKIP
    >>> eng = um.datasets.load_synthetic_england()  # doctest: +SKIP
    >>> households, homes = um.estimates.split_settings(eng.population)  # doctest: +SKIP
    >>> model = um.fit_care_model(households, eng.surveys["general"], draws=200)  # doctest: +SKIP
    >>> funding = um.estimate_care_home_funding(eng.care_homes.register, eng.care_homes.returns)  # doctest: +SKIP
    >>> tables = care_home_populations(model, homes, funding, groupings=[("area_code",)])  # doctest: +SKIP
    """
    check_choice(composition, "composition", ("council_link", "uniform"), error=FrameError)
    population = frame if isinstance(frame, PopulationFrame) else PopulationFrame(frame)
    population = PopulationFrame(add_grouping_columns(population.cells), count=population.count_col)
    cells = population.cells
    require_columns(cells, ["area_code"], "care-home frame")
    keys = [tuple(as_column_list(g)) for g in groupings]
    for key in keys:
        require_columns(cells, list(key), "by")
    shares = _shares(funding)
    areas = cells["area_code"].astype(str)
    missing = sorted(set(areas) - set(shares.index))
    if missing:
        raise FrameError(
            f"care-home residents in {len(missing)} council(s) without a care-home estimate: "
            f"{preview(missing, 8)}; the register and returns must cover every council of the "
            "frame (a council without returns gets a synthetic estimate)"
        )
    rng = resolve_rng(seed)
    n_draws = model.n_draws
    area_levels, area = np.unique(areas.to_numpy(), return_inverse=True)
    common = None
    if hasattr(funding, "common_share_error"):
        loading, vcov = funding.common_share_error()
        loading.index = loading.index.astype(str)
        common = (loading.reindex(area_levels).fillna(0.0).to_numpy(dtype=float), vcov)
    share = _draw_shares(shares.reindex(area_levels), n_draws, rng, common)  # (D, A)
    counts = population.counts.astype(float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnmetneedWarning)
        if composition == "council_link":
            logit_q = -_logit(model.link_probabilities("council", cells, rng))
        else:
            logit_q = np.zeros((n_draws, len(cells)))
    s = _spread(logit_q, share, area, counts, len(area_levels))
    self_funded = counts[None, :] * s
    parts = {
        "need": np.broadcast_to(counts, (n_draws, counts.size)),
        "council_funded": counts[None, :] - self_funded,
        "self_funded": self_funded,
        "unpaid_only": np.zeros((n_draws, counts.size)),
        "unmet": np.zeros((n_draws, counts.size)),
        "insufficient": np.full((n_draws, counts.size), np.nan),  # not measured (module notes)
    }
    out: dict[tuple[str, ...], CareEstimates] = {}
    attrs = {
        "setting": "care_home",
        "composition": composition,
        "care_home_share": "beta draws matching the care-home estimate's mean and MSE",
    }
    for key in keys:
        group, n_groups, levels = _grouping_codes(cells, key)
        totals = {name: _group_sums(value, group, n_groups) for name, value in parts.items()}
        dataset = _dataset(list(key), group, n_groups, levels, totals, counts, n_draws)
        estimates = CareEstimates(dataset, by=list(key), respondents=None, level=level, attrs=dict(attrs))
        estimates.fits = model.fits
        out[key] = estimates
    return out


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-12, 1 - 1e-12)
    return np.log(p) - np.log1p(-p)


def _expit(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def _shares(funding: Any) -> pd.DataFrame:
    table = funding.to_frame() if hasattr(funding, "to_frame") else pd.DataFrame(funding)
    require_columns(table, ["area_code", "quantity", "estimate", "se"], "care-home estimates")
    rows = table[table["quantity"] == "self_funded_share"].copy()
    if rows.empty:
        raise FrameError(
            "the care-home estimates have no 'self_funded_share' rows; pass "
            "estimate_care_home_funding(...) or its to_frame()"
        )
    rows["area_code"] = rows["area_code"].astype(str)
    if rows["area_code"].duplicated().any():
        raise FrameError(
            "the care-home estimates repeat a council's self_funded_share: "
            f"{rows.loc[rows['area_code'].duplicated(), 'area_code'].head(5).tolist()}"
        )
    bad = ~rows["estimate"].between(0, 1) | rows["se"].isna() | (rows["se"] < 0)
    if bad.any():
        raise FrameError(
            "care-home self_funded_share must be in [0, 1] with an SE >= 0; not so for "
            f"{rows.loc[bad, 'area_code'].head(5).tolist()}"
        )
    if "basis" not in rows.columns:
        rows["basis"] = "model"
    # a council without returns rests on the model alone: the tables' word for it
    rows["basis"] = rows["basis"].replace({"model_no_returns": "model_no_respondents"})
    return rows.set_index("area_code")[["estimate", "se", "basis"]]


def _draw_shares(
    shares: pd.DataFrame,
    n_draws: int,
    rng: np.random.Generator,
    common: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    r"""Beta draws with each council's mean and variance (fixed where the SE is 0).

    With ``common = (L, V)`` (the model coefficients' part of the errors,
    ``CareHomeFundingEstimates.common_share_error``) the councils are drawn jointly
    through a Gaussian copula: :math:`z_a = (L_a\delta + \sqrt{v_a - L_a V L_a^\top}\,
    \epsilon_a)/\sqrt{v_a}`, :math:`\delta \sim N(0, V)`, and the share is the Beta
    quantile of :math:`\Phi(z_a)`: each council keeps its Beta margin and sums over
    councils keep the shared uncertainty of the coefficients.
    """
    m = shares["estimate"].to_numpy(dtype=float)
    v = shares["se"].to_numpy(dtype=float) ** 2
    out = np.broadcast_to(m, (n_draws, m.size)).copy()
    random = (v > 0) & (m > 0) & (m < 1)
    ceiling = m * (1 - m)
    too_wide = random & (v >= ceiling)
    if too_wide.any():
        warnings.warn(
            f"care-home self-funded share of {int(too_wide.sum())} council(s) "
            f"({list(shares.index[too_wide][:5])}) has a variance at least p(1-p); drawn as "
            "Beta with concentration 1 (as wide as a share can be)",
            UnmetneedWarning,
            stacklevel=3,
        )
    with np.errstate(divide="ignore", invalid="ignore"):
        kappa = np.where(too_wide, 1.0, ceiling / np.where(v > 0, v, 1.0) - 1.0)
    if random.any():
        a, b = m[random] * kappa[random], (1 - m[random]) * kappa[random]
        if common is None:
            out[:, random] = rng.beta(a, b, size=(n_draws, int(random.sum())))
        else:
            loading, vcov = common[0][random], common[1]
            sd = np.sqrt(v[random])
            factor = np.linalg.cholesky(vcov + 1e-14 * np.eye(len(vcov)) * max(np.trace(vcov), 1e-300))
            shared = (rng.standard_normal((n_draws, len(vcov))) @ factor.T) @ loading.T / sd
            share_of_variance = np.minimum(np.einsum("ap,pq,aq->a", loading, vcov, loading) / v[random], 1.0)
            own = np.sqrt(1.0 - share_of_variance) * rng.standard_normal((n_draws, int(random.sum())))
            out[:, random] = special.betaincinv(a, b, special.ndtr(shared + own))
    return out


def _group_sums(values: np.ndarray, group: np.ndarray, n_groups: int) -> np.ndarray:
    """Per-draw sums of ``values`` (D, cells) over cell groups, without a Python loop over groups."""
    n_draws = values.shape[0]
    flat = (np.arange(n_draws)[:, None] * n_groups + group[None, :]).ravel()
    return np.bincount(
        flat, weights=np.ascontiguousarray(values).ravel(), minlength=n_draws * n_groups
    ).reshape(n_draws, n_groups)


def _spread(
    logit_q: np.ndarray,
    share: np.ndarray,
    area: np.ndarray,
    counts: np.ndarray,
    n_areas: int,
    *,
    tol: float = 1e-12,
    max_iter: int = 100,
) -> np.ndarray:
    """Cell shares ``expit(logit_q + delta[area])`` whose council totals match ``share`` (D, cells).

    Newton steps on the monotone total in ``delta``, per draw and council at once, with
    the step limited to 2 logits; exact 0 and 1 shares are set directly.
    """
    residents = np.bincount(area, weights=counts, minlength=n_areas)
    target = share * residents[None, :]
    delta = _logit(np.clip(share, 1e-9, 1 - 1e-9)) - _group_sums(
        logit_q * counts[None, :], area, n_areas
    ) / np.where(residents > 0, residents, 1.0)
    for _ in range(max_iter):
        p = _expit(logit_q + delta[:, area])
        total = _group_sums(p * counts[None, :], area, n_areas)
        slope = _group_sums(p * (1 - p) * counts[None, :], area, n_areas)
        gap = target - total
        if np.all(np.abs(gap) <= tol * np.maximum(residents[None, :], 1.0)):
            break
        with np.errstate(divide="ignore", invalid="ignore"):
            step = np.where(slope > 0, gap / slope, 0.0)
        delta = delta + np.clip(step, -2.0, 2.0)
    p = _expit(logit_q + delta[:, area])
    p = np.where(share[:, area] <= 0, 0.0, np.where(share[:, area] >= 1, 1.0, p))
    return p


def combine_settings(
    household: Mapping[tuple[str, ...], CareEstimates],
    care_home: Mapping[tuple[str, ...], CareEstimates] | None,
    *,
    care_home_funding: Any = None,
) -> dict[tuple[str, ...], SettingEstimates]:
    """Household, care-home and ``all`` (their sum in every draw) as one table per grouping.

    Each result's grouping gains a last dimension ``setting`` (``household``,
    ``care_home``, ``all``). Groups absent from the care-home frame have no
    residents there (0). Without a care-home frame (``care_home=None``) the
    only setting is ``household`` (``attrs["care_home_frame"]`` is False).

    Examples
    --------
    >>> from unmetneed.estimates.settings import combine_settings  # doctest: +SKIP
    >>> tables = combine_settings(households_by, care_homes_by)  # doctest: +SKIP
    >>> tables[("area_code",)].to_frame()["setting"].unique()  # doctest: +SKIP
    array(['household', 'care_home', 'all'], dtype=object)
    """
    funding = None if care_home_funding is None else _shares(care_home_funding)
    out: dict[tuple[str, ...], SettingEstimates] = {}
    for key, hh in household.items():
        ch = None if care_home is None else care_home.get(key)
        hh_data = hh.draws
        if ch is None:
            # no care-home frame: households only (nothing is claimed about care homes)
            combined = xr.concat([hh_data], dim=pd.Index(["household"], name="setting"))
        else:
            ch_data = ch.draws
            if ch_data.sizes["draw"] != hh_data.sizes["draw"]:
                raise FrameError(
                    f"household and care-home draws differ in number "
                    f"({hh_data.sizes['draw']} vs {ch_data.sizes['draw']})"
                )
            ch_data = ch_data.assign_coords(draw=hh_data["draw"].values)
            hh_data, ch_data = xr.align(hh_data, ch_data, join="outer")
            ch_data = ch_data.fillna(0.0)  # a group absent from the care-home frame has no residents
            combined = xr.concat(
                [hh_data, ch_data, hh_data + ch_data], dim=pd.Index(list(SETTINGS), name="setting")
            )
        dims = ["draw", *key, "setting"]
        combined = combined.transpose(*dims)
        respondents = None
        if hh.respondents is not None and key:
            respondents = _setting_respondents(hh.respondents, list(key))
        attrs = dict(hh.attrs)
        attrs.update(
            {
                "settings": [str(v) for v in combined["setting"].values],
                "care_home_frame": ch is not None,
                "care_home": None if ch is None else dict(ch.attrs),
            }
        )
        estimates = SettingEstimates(
            combined, by=[*key, "setting"], respondents=respondents, level=hh.level, attrs=attrs
        )
        estimates.fits = hh.fits
        estimates.household = hh
        estimates.care_home_basis = funding
        out[key] = estimates
    return out


def _setting_respondents(respondents: pd.Series, key: list[str]) -> pd.Series:
    """Household respondents for household and all rows (care-home rows: none from the survey)."""
    frames = []
    for setting in ("household", "all"):
        frame = respondents.rename("n").reset_index()
        frame["setting"] = setting
        frames.append(frame)
    table = pd.concat(frames, ignore_index=True)
    return table.set_index([*key, "setting"])["n"]


class SettingEstimates(CareEstimates):
    """Care populations by setting (``household``, ``care_home``, ``all``) and group.

    ``to_frame()`` is :class:`CareEstimates`'s table with a ``setting`` column.
    ``basis``: households as :class:`CareEstimates`; care homes ``direct`` for
    the census count of residents (``need``) and the quantities that are 0 by
    definition (``unpaid_only``, ``unmet``), the care-home estimate's basis
    (``model``, ``direct`` or ``model_no_respondents``) for every council row
    (count, rate and share of need) of ``self_funded`` and ``council_funded``,
    ``model`` otherwise; ``all`` the basis both settings
    share, else ``model`` (``model_no_respondents`` when either rests on a group
    without respondents). ``n`` is the household survey's respondents
    (missing for care-home rows, which rest on the care-home returns).
    """

    household: CareEstimates
    care_home_basis: pd.DataFrame | None

    def in_setting(self, setting: str) -> CareEstimates:
        """The estimates of one setting as a :class:`CareEstimates` by the other dimensions.

        Examples
        --------
        >>> homes = tables[("area_code",)].in_setting("care_home")  # doctest: +SKIP
        """
        settings = [str(v) for v in self.draws["setting"].values]
        if setting not in settings:
            raise FrameError(f"setting={setting!r} is not in these estimates; they have {settings}")
        by = [c for c in self.by if c != "setting"]
        respondents = None
        if setting != "care_home" and self.household.respondents is not None:
            respondents = self.household.respondents
        estimates = CareEstimates(
            self.draws.sel(setting=setting, drop=True),
            by=by,
            respondents=respondents,
            level=self.level,
            attrs={**self.attrs, "setting": setting},
        )
        estimates.fits = self.fits
        return estimates

    def summary(self, level: float | None = None) -> pd.DataFrame:
        out = super().summary(level)
        homes = out["setting"] == "care_home"
        # Zero by definition in care homes: not rows of the table (a published 0 would be
        # a count below any disclosure threshold, and says nothing an estimate could).
        structural = homes & out["quantity"].isin(STRUCTURAL_ZEROS)
        unmeasured = (out["setting"] != "household") & out["quantity"].isin(HOUSEHOLD_ONLY)
        if self.attrs.get("care_home_frame"):
            out = out[~(structural | unmeasured).to_numpy()].reset_index(drop=True)
            homes = out["setting"] == "care_home"
        # n of care-home rows: no survey respondent stands behind them
        out.loc[homes, "n"] = pd.NA
        return out

    to_frame = summary

    def _basis(self, table: pd.DataFrame) -> np.ndarray:
        by = [c for c in self.by if c != "setting"]
        setting = table["setting"].astype(str).to_numpy()
        basis = np.full(len(table), "model", dtype=object)
        household = setting == "household"
        if household.any():
            sub = table.loc[household].drop(columns="setting")
            basis[household] = self.household._basis(sub)
        homes = setting == "care_home"
        quantity = table["quantity"].astype(str).to_numpy()
        counts = table["measure"].isin(["count", "rate_per_1000"]).to_numpy()
        basis[homes & counts & np.isin(quantity, DEFINED)] = "direct"
        funded = homes & np.isin(quantity, ["self_funded", "council_funded"])
        if by == ["area_code"] and self.care_home_basis is not None:
            codes = table["area_code"].astype(str)
            basis[funded] = codes[funded].map(self.care_home_basis["basis"]).fillna("model").to_numpy()
        everything = setting == "all"
        if everything.any():
            keys = pd.MultiIndex.from_frame(table[[*by, "quantity", "measure"]].astype(str))
            hh = pd.Series(basis[household], index=keys[household])
            ch = pd.Series(basis[homes], index=keys[homes])
            a = hh.reindex(keys[everything]).to_numpy()
            b = ch.reindex(keys[everything]).to_numpy()
            # a care-home part that is 0 by definition leaves the household basis as it is
            same = (a == b) | np.isin(quantity[everything], STRUCTURAL_ZEROS)
            combined = np.where(same, a, "model")
            # a figure resting partly on a council without respondents says so
            weakest = (a == "model_no_respondents") | (b == "model_no_respondents")
            basis[everything] = np.where(weakest, "model_no_respondents", combined)
        return basis


def with_council_composition(
    estimates: SettingEstimates, council: xr.DataArray, *, source: str = "ASCS"
) -> SettingEstimates:
    """Household council-funded draws by a characteristic replaced by admin x survey composition.

    ``council`` holds draws (``draw`` x the characteristic) of household (community)
    council-funded people by category, e.g. from
    :func:`unmetneed.estimate_council_funded` (admin counts split by the ASCS's
    composition). The households' ``need`` moves with it (need is the sum of its
    parts in every draw) and ``all`` is recomputed; England totals are unchanged
    when both add up to the same admin total. Care homes keep the census
    composition of residents (their council-funded count is residents minus
    self-funders there).

    Raises
    ------
    FrameError
        ``estimates`` is not by one characteristic and setting, the draws differ
        in number, or a category of the estimates has no draws in ``council``.

    Examples
    --------
    >>> tables[("ethnic_group",)] = with_council_composition(
    ...     tables[("ethnic_group",)], composition.sel(setting="community"))  # doctest: +SKIP
    """
    by = [c for c in estimates.by if c != "setting"]
    if len(by) != 1 or by[0] not in council.dims:
        raise FrameError(
            f"council-funded composition by {list(council.dims)} does not match estimates by {estimates.by}"
        )
    key = by[0]
    draws = estimates.draws
    if council.sizes["draw"] != draws.sizes["draw"]:
        raise FrameError(
            f"the composition has {council.sizes['draw']} draws; the estimates {draws.sizes['draw']}"
        )
    categories = [str(v) for v in draws[key].values]
    council = council.assign_coords({key: [str(v) for v in council[key].values]})
    missing = sorted(set(categories) - set(council[key].values))
    if missing:
        raise FrameError(
            f"the council-funded composition has no draws for {key} {missing[:5]}; "
            "pass the frame's categories to the composition"
        )
    new = council.reindex({key: categories}).transpose("draw", key).values
    household = draws.sel(setting="household")
    old = household["council_funded"].transpose("draw", key).values
    # only the two quantities that change are copied; the rest are shared (read-only)
    out = draws.copy().assign(council_funded=draws["council_funded"].copy(), need=draws["need"].copy())
    position = {"setting": "household"}
    out["council_funded"].loc[position] = xr.DataArray(new, dims=("draw", key))
    out["need"].loc[position] = xr.DataArray(
        household["need"].transpose("draw", key).values + new - old, dims=("draw", key)
    )
    if "all" in [str(v) for v in out["setting"].values]:
        for name in ("council_funded", "need"):
            total = out[name].sel(setting="household") + out[name].sel(setting="care_home")
            out[name].loc[{"setting": "all"}] = total.transpose(*out[name].sel(setting="all").dims)
    result = SettingEstimates(
        out,
        by=list(estimates.by),
        respondents=estimates.respondents,
        level=estimates.level,
        attrs={**estimates.attrs, "council_composition": source},
    )
    result.fits = estimates.fits
    result.household = estimates.household
    result.care_home_basis = estimates.care_home_basis
    return result
