"""The weighting verbs: rake, calibrate, poststratify, trim, adjust_nonresponse."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any, Literal, TypedDict, Unpack, overload

import numpy as np
import pandas as pd

from unmetneed._validate import as_column_list, check_choice, column_values, show
from unmetneed.design import SurveyDesign
from unmetneed.design.coding import code_columns
from unmetneed.design.partitions import is_dask_frame
from unmetneed.design.variance import group_totals
from unmetneed.errors import CalibrationError, DesignError, MarginsError
from unmetneed.margins import Margins
from unmetneed.weighting.apply import MarginOptions, OnNonconvergence, check_tolerance, fit_margins
from unmetneed.weighting.blocks import Collapse, Reconcile
from unmetneed.weighting.report import DaskWeightingResult, WeightingReport, WeightingResult
from unmetneed.weighting.solvers import calibrate_cells, rake_cells

__all__ = ["adjust_nonresponse", "calibrate", "poststratify", "rake", "trim"]

CalibrationMethod = Literal["linear", "raking", "logit"]


class RakeOptions(TypedDict, total=False):
    """The keyword options of :func:`rake` besides ``weights`` (for its typed overloads)."""

    tol: float
    max_iter: int
    reconcile: Reconcile
    collapse: Collapse
    allow_empty: bool
    on_nonconvergence: OnNonconvergence


class CalibrateOptions(RakeOptions, total=False):
    """The keyword options of :func:`calibrate` besides ``weights``."""

    method: CalibrationMethod
    bounds: tuple[float, float] | None


@overload
def rake(
    design: SurveyDesign, margins: Margins, *, weights: None = None, **options: Unpack[RakeOptions]
) -> WeightingResult: ...


@overload
def rake(
    design: Any, margins: Margins, *, weights: str, **options: Unpack[RakeOptions]
) -> DaskWeightingResult: ...


def rake(
    design: Any,
    margins: Margins,
    *,
    weights: str | None = None,
    tol: float = 1e-10,
    max_iter: int = 1000,
    reconcile: Reconcile = None,
    collapse: Collapse = None,
    allow_empty: bool = False,
    on_nonconvergence: OnNonconvergence = "raise",
) -> WeightingResult | DaskWeightingResult:
    r"""Rake weights to categorical margins by iterative proportional fitting.

    Parameters
    ----------
    design : SurveyDesign or dask.dataframe.DataFrame
        The design to weight (a replicate design is raked replicate by replicate),
        or a Dask DataFrame of respondents with ``weights=`` (streamed by
        partition on the active Dask client; see Notes).
    margins : Margins
        Population totals by category; crosses such as ``("area_code", "sex")`` allowed.
    weights : str, optional
        The column of base weights of a Dask DataFrame (required for one, refused
        for a design, which has its weights).
    tol : float, default 1e-10
        Stop when the largest relative margin error :math:`|\hat t_k - t_k| / t_k`
        over every margin category is at most ``tol`` (down to 1e-12 is reachable).
    max_iter : int, default 1000
        Sweeps over all margins.
    reconcile : {None, "scale"}
        Margins whose grand totals differ by more than 1e-6 relative raise
        :class:`~unmetneed.errors.MarginsError`; ``"scale"`` scales each to the
        first margin's total and records the factor in the report.
    collapse : mapping, optional
        Merge categories before raking, ``{"age_band": {"85+": "75-84"}}``
        (a flat ``{"85+": "75-84"}`` works when only one variable has that
        category). Respondents and population totals are merged alike.
    allow_empty : bool, default False
        Leave margin categories without respondents out of the targets
        instead of raising (their population is then not represented; with
        several margins combine with ``reconcile="scale"``).
    on_nonconvergence : {"raise", "warn"}
        Raise :class:`~unmetneed.errors.CalibrationError` naming the margin and
        its remaining error, or warn and return ``report.converged == False``.

    Returns
    -------
    WeightingResult or DaskWeightingResult
        ``.design`` (Taylor variances use R's raking residuals) and ``.report``;
        for a Dask DataFrame, ``.weights`` (a lazy Dask Series with the frame's
        partitions and index), ``.report`` and ``.cells``.

    Notes
    -----
    Deming & Stephan (1940): for each margin :math:`m` in turn,
    :math:`w_i \leftarrow w_i\, t_{m,k(i)} / \sum_{j: k(j)=k(i)} w_j`.
    Rows are first collapsed into the cells of the margins' cross-classification,
    so the work per sweep is proportional to the number of cells. Variances
    follow R's ``rake``: influence values are backfitted on the margins
    (``docs/methods/weighting.md``).

    A Dask DataFrame is read once: each partition is checked and summed by
    cell, the cells are raked in memory as above, and the weights (base weight
    times the cell's g-weight) are mapped over the partitions lazily
    (:mod:`unmetneed.weighting.streaming`). The results equal the in-memory
    ones to rounding.

    References
    ----------
    Deming, W. E. & Stephan, F. F. (1940). *Ann. Math. Statist.* 11, 427-444.
    Lumley, T. (2010). *Complex Surveys*, ch. 7. Wiley.

    Examples
    --------
    >>> import pandas as pd, unmetneed as um
    >>> d = um.datasets.load_example_design()
    >>> m = um.Margins({"sex": pd.Series({"Female": 510_000.0, "Male": 490_000.0}),
    ...                 "age_band": pd.Series(125_000.0, index=um.datasets.example.AGE_BANDS)})
    >>> r = um.rake(d, m)
    >>> r.report.converged, round(float(r.design.weights.sum()))
    (True, 1000000)

    A Dask DataFrame of the same respondents, in 4 partitions:

    >>> import dask.dataframe as dd
    >>> frame = dd.from_pandas(d.data, npartitions=4)
    >>> rd = um.rake(frame, m, weights="weight")  # on the active Dask client, if any
    >>> w = rd.weights.compute()
    >>> rd.weights.npartitions, bool(abs(w.to_numpy() - r.design.weights).max() < 1e-8)
    (4, True)
    """
    solve = partial(rake_cells, tol=tol, max_iter=max_iter)
    shared = MarginOptions(tol, max_iter, reconcile, collapse, allow_empty, on_nonconvergence)
    if is_dask_frame(design):
        from unmetneed.weighting.streaming import fit_margins_dask

        return fit_margins_dask(
            design, margins, shared, weights=weights, method="rake", solve=solve, options=shared.recorded()
        )
    _no_weights_column(design, weights)
    return fit_margins(
        design,
        margins,
        shared,
        method="rake",
        solve=solve,
        record_kind="raking",
        categorical_only=True,
        options=shared.recorded(),
    )


@overload
def calibrate(
    design: SurveyDesign, margins: Margins, *, weights: None = None, **options: Unpack[CalibrateOptions]
) -> WeightingResult: ...


@overload
def calibrate(
    design: Any, margins: Margins, *, weights: str, **options: Unpack[CalibrateOptions]
) -> DaskWeightingResult: ...


def calibrate(
    design: Any,
    margins: Margins,
    *,
    weights: str | None = None,
    method: CalibrationMethod = "linear",
    bounds: tuple[float, float] | None = None,
    tol: float = 1e-10,
    max_iter: int = 1000,
    reconcile: Reconcile = None,
    collapse: Collapse = None,
    allow_empty: bool = False,
    on_nonconvergence: OnNonconvergence = "raise",
) -> WeightingResult | DaskWeightingResult:
    r"""Calibrate weights to margins and numeric totals (Deville-Särndal family).

    Parameters
    ----------
    design : SurveyDesign or dask.dataframe.DataFrame
        A Dask DataFrame (with ``weights=``) takes categorical margins only, as :func:`rake`.
    margins : Margins
        Categorical margins and numeric auxiliary totals (``{"age_years": 4.1e7}``).
    weights : str, optional
        As :func:`rake`: the base weights of a Dask DataFrame.
    method : {"linear", "raking", "logit"}
        The distance: linear (GREG; weights may turn negative, the report says
        so), raking (multiplicative, positive weights), logit (bounded).
    bounds : (float, float), optional
        Bounds :math:`(L, U)` on the g-weights :math:`g_i = w_i / w^0_i`, as R's
        ``calibrate(bounds=)``; required for ``"logit"``. Linear and raking
        truncate :math:`F` to the bounds.
    tol, max_iter, reconcile, collapse, allow_empty, on_nonconvergence
        As :func:`rake`; if no solution within the bounds is found in
        ``max_iter`` Newton steps, that is a :class:`CalibrationError`.

    Returns
    -------
    WeightingResult or DaskWeightingResult

    Notes
    -----
    Solves :math:`\sum_i w^0_i F(x_i^\top\lambda)\, x_i = t_x` by Newton's
    method as R ``survey``'s ``grake``, with :math:`F(u) = 1 + u` (linear),
    :math:`e^u` (raking) or the logit
    :math:`F(u) = \frac{L(U-1) + U(1-L)e^{Au}}{U - 1 + (1-L)e^{Au}}`,
    :math:`A = \frac{U-L}{(1-L)(U-1)}`. Taylor variances use the residuals of
    the weighted regression of the influence values on :math:`x`.

    References
    ----------
    Deville, J.-C. & Särndal, C.-E. (1992). *JASA* 87, 376-382.
    Deville, J.-C., Särndal, C.-E. & Sautory, O. (1993). *JASA* 88, 1013-1020.

    Examples
    --------
    >>> import pandas as pd, unmetneed as um
    >>> d = um.datasets.load_example_design()
    >>> m = um.Margins({"sex": pd.Series({"Female": 510_000.0, "Male": 490_000.0}),
    ...                 "need": 230_000.0})
    >>> r = um.calibrate(d, m, method="linear")
    >>> round(float(r.design.total("need").estimate.iloc[0]))
    230000
    """
    check_choice(method, "method", CalibrationMethod)
    lower, upper = _check_bounds(bounds, method)
    check_tolerance(tol, max_iter)
    solve = partial(calibrate_cells, method=method, bounds=(lower, upper), tol=tol, max_iter=max_iter)
    shared = MarginOptions(tol, max_iter, reconcile, collapse, allow_empty, on_nonconvergence)
    options = {"method": method, "bounds": bounds, **shared.recorded()}
    if is_dask_frame(design):
        from unmetneed.weighting.streaming import fit_margins_dask

        return fit_margins_dask(
            design,
            margins,
            shared,
            weights=weights,
            method=f"calibrate({method})",
            solve=solve,
            options=options,
        )
    _no_weights_column(design, weights)
    return fit_margins(
        design,
        margins,
        shared,
        method=f"calibrate({method})",
        solve=solve,
        record_kind="regression",
        options=options,
    )


def _no_weights_column(design: object, weights: str | None) -> None:
    if weights is not None:
        given = (
            "a SurveyDesign has its own"
            if isinstance(design, SurveyDesign)
            else (
                f"got a {type(design).__name__}: make a SurveyDesign of it (SurveyDesign(df, weights={weights!r}))"
            )
        )
        raise DesignError(
            f"weights={weights!r} names the base weights of a Dask DataFrame; {given} (pass the "
            "design alone, or a Dask DataFrame with weights=)"
        )


def _check_bounds(bounds: tuple[float, float] | None, method: str) -> tuple[float, float]:
    if bounds is None:
        if method == "logit":
            raise CalibrationError(
                "method='logit' needs finite bounds on the g-weights, e.g. bounds=(0.5, 2.5)"
            )
        return (-np.inf, np.inf)
    try:
        lower, upper = (float(b) for b in bounds)
    except (TypeError, ValueError):
        raise CalibrationError(f"bounds={bounds!r} must be a pair (lower, upper)") from None
    if not lower < 1.0 < upper:
        raise CalibrationError(
            f"bounds={bounds!r} must satisfy lower < 1 < upper (g = 1 leaves a weight unchanged)"
        )
    if method == "logit" and not (np.isfinite(lower) and np.isfinite(upper)):
        raise CalibrationError("method='logit' needs finite bounds, e.g. bounds=(0.5, 2.5)")
    return lower, upper


def poststratify(
    design: SurveyDesign,
    margins: Margins,
    *,
    collapse: Collapse = None,
    allow_empty: bool = False,
) -> WeightingResult:
    r"""Post-stratify: scale weights within each cell of one margin to its total.

    Parameters
    ----------
    design : SurveyDesign
    margins : Margins
        Exactly one categorical margin (a variable or a cross).
    collapse, allow_empty
        As :func:`rake` (``allow_empty`` is R's ``partial=TRUE``).

    Notes
    -----
    :math:`w_i \leftarrow w_i\, N_{k(i)} / \hat N_{k(i)}`; variances use the
    residuals from the post-stratum means, as R's ``postStratify``.

    Examples
    --------
    >>> import pandas as pd, unmetneed as um
    >>> d = um.datasets.load_example_design()
    >>> r = um.poststratify(d, um.Margins({"sex": pd.Series({"Female": 5e5, "Male": 4.8e5})}))
    >>> r.design.total("need", by="sex").to_frame().shape[0]
    2
    """
    margins = Margins(margins)
    if len(margins.categorical_keys) != 1 or margins.numeric_keys:
        raise MarginsError(
            f"poststratify takes exactly one categorical margin (a variable or a cross); got "
            f"{list(margins)}. Use rake() or calibrate() for several margins"
        )
    solve = partial(rake_cells, tol=1e-12, max_iter=1)
    return fit_margins(
        design,
        margins,
        MarginOptions(tol=1e-9, max_iter=1, reconcile=None, collapse=collapse, allow_empty=allow_empty),
        method="poststratify",
        solve=solve,
        record_kind="regression",
        categorical_only=True,
        options={"collapse": collapse, "allow_empty": allow_empty},
    )


def trim(
    design: SurveyDesign,
    *,
    lower: float | None = None,
    upper: float | None = None,
    max_iter: int = 100,
) -> WeightingResult:
    r"""Trim weights to ``[lower, upper]`` and redistribute, keeping the total.

    Parameters
    ----------
    design : SurveyDesign
    lower, upper : float, optional
        Bounds on the weights themselves (not g-weights).
    max_iter : int, default 100
        Clip-and-redistribute rounds; stops as soon as no weight lies outside.

    Notes
    -----
    Each round clips the weights outside the bounds and spreads the clipped
    amount over the weights strictly inside, in proportion to their size, so
    :math:`\sum w` is unchanged; redistribution can push weights past a bound,
    hence the rounds (R's ``trimWeights(strict=TRUE)`` spreads equal amounts
    instead). Replicate weights are trimmed the same way, replicate by
    replicate. A calibration recorded on the design is kept for the variance.

    Examples
    --------
    >>> import unmetneed as um
    >>> d = um.datasets.load_example_design()
    >>> r = um.trim(d, upper=600.0)
    >>> bool(r.design.weights.max() <= 600.0), round(float(r.design.weights.sum()), 6) == round(float(d.weights.sum()), 6)
    (True, True)
    """
    if not isinstance(design, SurveyDesign):
        raise DesignError(f"design must be a SurveyDesign; got {type(design).__name__}")
    lo = -np.inf if lower is None else float(lower)
    hi = np.inf if upper is None else float(upper)
    if lower is None and upper is None:
        raise DesignError("trim needs lower=, upper= or both")
    if not lo < hi:
        raise DesignError(f"lower={lower!r} must be below upper={upper!r}")
    w0 = design.weights
    _check_trim_feasible(w0[:, None], lo, hi, lower, upper, "the weights")
    if design.replicates is not None:
        _check_trim_feasible(design.replicates.weights, lo, hi, lower, upper, "a replicate")
    weights, rounds, ok = _trim_columns(w0[:, None], lo, hi, max_iter)
    if not ok:
        raise CalibrationError(
            f"trim could not bring every weight into [{lower}, {upper}] in {max_iter} rounds "
            f"while keeping the total {w0.sum():,.6g}: the bounds are infeasible for "
            f"{w0.size:,} weights (mean {w0.mean():.6g})"
        )
    replicate_weights = None
    if design.replicates is not None:
        replicate_weights, _, rep_ok = _trim_columns(design.replicates.weights, lo, hi, max_iter)
        if not rep_ok:
            raise CalibrationError(f"trim could not meet [{lower}, {upper}] for every replicate")
    new_design = design.reweighted(weights[:, 0], replicate_weights=replicate_weights)
    trimmed = int(np.sum((w0 < lo) | (w0 > hi)))
    report = WeightingReport(
        method="trim",
        converged=True,
        iterations=rounds,
        max_rel_error=0.0,
        before=w0,
        after=new_design.weights,
        table=pd.DataFrame(
            columns=["margin", "category", "target", "before", "after", "rel_error_before", "rel_error_after"]
        ),
        messages=[f"{trimmed:,} weights were outside [{lower}, {upper}] and were trimmed"],
        options={"lower": lower, "upper": upper, "max_iter": max_iter},
        _design=new_design,
    )
    return WeightingResult(new_design, report)


def _check_trim_feasible(
    w: np.ndarray, lo: float, hi: float, lower: float | None, upper: float | None, what: str
) -> None:
    n = w.shape[0]
    total = w.sum(axis=0)
    infeasible = (n * lo > total * (1 + 1e-12)) | (n * hi < total * (1 - 1e-12))
    if infeasible.any():
        t = float(total[np.argmax(infeasible)])
        raise CalibrationError(
            f"trim bounds [{lower}, {upper}] are infeasible for {what}: {n:,} weights must keep their "
            f"total {t:,.6g} (mean {t / n:.6g}), which needs lower <= mean <= upper"
        )


def _trim_columns(w: np.ndarray, lo: float, hi: float, max_iter: int) -> tuple[np.ndarray, int, bool]:
    w = np.array(w, dtype=np.float64)
    total = w.sum(axis=0)
    rounds = 0
    for rounds in range(1, max_iter + 1):
        clipped = np.clip(w, lo, hi)
        excess = (w - clipped).sum(axis=0)
        inside = (clipped > lo) & (clipped < hi)
        base = np.where(inside, clipped, 0.0).sum(axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            factor = np.where(base > 0, 1.0 + excess / base, np.nan)
        w = np.where(inside, clipped * factor, clipped)
        if not np.isfinite(w).all():
            return w, rounds, False
        tolerance = 1e-12 * np.maximum(np.abs(w).max(axis=0), 1.0)
        if ((w >= lo - tolerance) & (w <= hi + tolerance)).all():
            w = np.clip(w, lo, hi)
            # Put the rounding (< 1e-12) on the weights strictly inside the bounds only.
            inside = (w > lo) & (w < hi)
            fixed = np.where(inside, 0.0, w).sum(axis=0)
            free = np.where(inside, w, 0.0).sum(axis=0)
            with np.errstate(divide="ignore", invalid="ignore"):
                factor = np.where(free > 0, (total - fixed) / free, 1.0)
            w = np.where(inside, w * factor, w)
            return w, rounds, True
    return w, rounds, False


def adjust_nonresponse(
    design: SurveyDesign,
    *,
    respondent: str,
    classes: str | Sequence[str],
) -> WeightingResult:
    r"""Weighting-class nonresponse adjustment; returns the design of the respondents.

    Parameters
    ----------
    design : SurveyDesign
        The issued sample, respondents and nonrespondents.
    respondent : str
        Column: true/1 for respondents, false/0 for nonrespondents.
    classes : str or list of str
        Adjustment classes (cells of similar response propensity).

    Returns
    -------
    WeightingResult
        The respondents only, each weight multiplied by
        :math:`\sum_{i \in c} w_i / \sum_{i \in c,\ \text{resp.}} w_i` of its class.
        The design keeps its strata, clusters, fpc and lonely-PSU policy;
        variances treat the adjusted weights as fixed.

    Raises
    ------
    DesignError
        A class with no respondents (named, with its size), or a
        ``respondent`` column that is not 0/1.

    Examples
    --------
    >>> import unmetneed as um
    >>> survey = um.datasets.load_example_survey()
    >>> survey["responded"] = (survey.index % 3 != 0)
    >>> d = um.SurveyDesign(survey, weights="weight", strata="stratum", clusters="psu", nest=True)
    >>> r = um.adjust_nonresponse(d, respondent="responded", classes="age_band")
    >>> r.design.n < d.n, round(float(r.design.weights.sum())) == round(float(d.weights.sum()))
    (True, True)
    """
    if not isinstance(design, SurveyDesign):
        raise DesignError(f"design must be a SurveyDesign; got {type(design).__name__}")
    data = design.data
    flag = column_values(data, respondent, "respondent")
    values = pd.unique(flag)
    if not set(values.tolist()) <= {0, 1}:
        raise DesignError(
            f"respondent column {respondent!r} must be true/false or 1/0; found "
            f"{', '.join(show(v) for v in values[:5])}"
        )
    responded = flag.to_numpy().astype(bool)
    coding = code_columns(data, as_column_list(classes), "classes")
    w = design.weights
    everyone = np.bincount(coding.codes, weights=w, minlength=coding.n_levels)
    answered = np.bincount(coding.codes, weights=w * responded, minlength=coding.n_levels)
    empty = answered <= 0
    if empty.any():
        sizes = np.bincount(coding.codes, minlength=coding.n_levels)[empty]
        rows = [
            f"{record} ({int(size):,} issued)"
            for record, size in zip(coding.levels[empty].head(5).to_dict("records"), sizes, strict=False)
        ]
        raise DesignError(
            f"nonresponse classes with no (weighted) respondents: {', '.join(rows)}; merge them "
            "with neighbouring classes before adjusting"
        )
    factor = everyone / answered
    adjusted = w * factor[coding.codes]
    kept = data.loc[responded].copy()
    kept[design.weights_col] = adjusted[responded]
    new_design = design.with_data(kept)
    if design.replicates is not None:
        reps = design.replicates.weights
        everyone_r = group_totals(reps, coding.codes, coding.n_levels)
        answered_r = group_totals(reps * responded[:, None], coding.codes, coding.n_levels)
        with np.errstate(divide="ignore", invalid="ignore"):
            factor_r = np.where(answered_r > 0, everyone_r / answered_r, 0.0)
        new_reps = (reps * factor_r[coding.codes])[responded]
        new_design = new_design.with_replicates(design.replicates.with_weights(new_reps))
    summary = coding.levels.copy()
    summary["issued"] = np.bincount(coding.codes, minlength=coding.n_levels)
    summary["responded"] = np.bincount(coding.codes, weights=responded, minlength=coding.n_levels)
    summary["factor"] = factor
    report = WeightingReport(
        method="adjust_nonresponse",
        converged=True,
        iterations=1,
        max_rel_error=0.0,
        before=w,
        after=new_design.weights,
        table=summary,
        messages=[
            (
                f"{int((~responded).sum()):,} nonrespondents removed; weights of "
                f"{int(responded.sum()):,} respondents adjusted within {coding.n_levels} "
                "classes"
            )
        ],
        options={"respondent": respondent, "classes": as_column_list(classes)},
        _design=new_design,
    )
    return WeightingResult(new_design, report)
