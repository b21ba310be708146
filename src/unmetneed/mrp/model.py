"""`MultilevelModel` and its fit, `MultilevelFit`."""

from __future__ import annotations

import html
import warnings
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit

from unmetneed._blas import single_threaded_blas
from unmetneed._immutable import FrozenAfterInit
from unmetneed._validate import require_columns
from unmetneed.errors import (
    ConvergenceWarning,
    ModelError,
    NewLevelWarning,
    SingularFitWarning,
)
from unmetneed.mrp.data import ModelData, prepare_cells
from unmetneed.mrp.draws import joint_draws
from unmetneed.mrp.fitting import FitState, fit_laplace
from unmetneed.mrp.formula import parse_formula
from unmetneed.mrp.poststratify import poststratify as _poststratify

# The warnings live in unmetneed.errors; re-exported here, where they were first defined.
__all__ = ["MultilevelFit", "MultilevelModel", "NewLevelWarning", "SingularFitWarning"]


SINGULAR_TOL = 1e-4


class MultilevelModel(FrozenAfterInit):
    r"""A binomial (logit) model with fixed effects and crossed random intercepts.

    Parameters
    ----------
    formula : str
        ``"y ~ fixed terms + (1|g1) + (1|g2) + ..."``; the fixed part in
        Wilkinson notation (formulaic: categorical terms get treatment
        contrasts with the first category as reference, as R), each
        ``(1|g)`` a random intercept for the grouping factor ``g``.
    data : DataFrame
        One row per respondent with a 0/1 response, or one row per cell with
        successes (the response) and ``trials``.
    weights : str, optional
        Survey weights: pseudo-likelihood with weights scaled to sum to the
        number of rows. Standard errors are then model-based under that
        scaling, not design-based: treat them as approximate.
    trials : str, optional
        Number of trials when the response counts successes.

    Notes
    -----
    Rows are collapsed to cells (distinct combinations of the model's
    variables) before fitting; the likelihood depends on the data only
    through the cells' successes and trials, so nothing changes but speed.

    Examples
    --------
    >>> import unmetneed as um
    >>> survey = um.datasets.load_example_survey()
    >>> fit = um.MultilevelModel("need ~ sex + (1|area_code) + (1|age_band)", data=survey).fit()
    >>> list(fit.variance_components.index)
    ['area_code', 'age_band']
    """

    def __init__(
        self,
        formula: str,
        data: pd.DataFrame,
        *,
        weights: str | None = None,
        trials: str | None = None,
    ) -> None:
        self.formula = parse_formula(formula)
        self.data = prepare_cells(self.formula, data, weights=weights, trials=trials)
        self.weights = weights
        self.trials = trials
        self._freeze()

    def fit(self, *, max_iter: int = 500) -> MultilevelFit:
        """Maximise the Laplace approximation to the likelihood (as ``glmer(nAGQ=1)``).

        Returns
        -------
        MultilevelFit

        Raises
        ------
        ModelError
            Quasi-complete separation (a fixed effect running off to infinity).
        """
        with single_threaded_blas():
            state = fit_laplace(self.data.cells, max_iter=max_iter)
        return MultilevelFit(self, state)

    def __repr__(self) -> str:
        cells = self.data.cells
        return (
            f"<MultilevelModel: {self.formula.text!r}, {self.data.n_rows:,} rows in "
            f"{cells.X.shape[0]:,} cells>"
        )


class MultilevelFit(FrozenAfterInit):
    """A fitted :class:`MultilevelModel`: estimates, predictions, draws.

    Attributes
    ----------
    fixed_effects : DataFrame
        Indexed by term: ``estimate``; ``se`` from the Hessian of the Laplace
        deviance in (SDs, fixed effects) — :math:`2H^{-1}`, which also
        reflects the uncertainty of the SDs, lme4's default ``vcov`` (equal to
        ``glmer``'s when its inner PIRLS loop is converged, ``tolPwrss =
        1e-13``; at its default 1e-7 lme4's finite-difference Hessian shifts
        the SEs by up to 0.4%); and ``se_conditional``, conditional on the
        SDs (the fixed-effect block of the inverse joint PIRLS Hessian, lme4's
        ``vcov(fit, use.hessian = FALSE)``).
    variance_components : Series
        Standard deviation of each grouping factor's random intercepts.
    random_effects : dict of DataFrame
        Per factor, indexed by level: ``mode`` (conditional mode of the
        intercept) and ``sd`` (its conditional standard deviation).
    loglik : float
        Laplace log-likelihood of the data as given (equal to ``glmer``'s on
        the same rows: binomial coefficients are included only for
        successes-out-of-trials data).
    converged, singular : bool
    """

    _immutable_hint = "Fit the model again."

    def __init__(self, model: MultilevelModel, state: FitState) -> None:
        self.model = model
        self._state = state
        data: ModelData = model.data
        groups = model.formula.groups
        n_theta = len(groups)
        theta = np.abs(state.theta)
        self.converged = state.converged
        self.singular = bool(np.any(theta < SINGULAR_TOL))
        covariance = self._covariance(state.hessian, n_theta)
        q = data.cells.q
        # Through the factor (dense, or the Schur complement for many levels): never q x q.
        factor_full = state.pirls.extra["factor_full"]
        conditional = factor_full.inverse_block(np.arange(q, factor_full.size))
        self._fixed_effects = pd.DataFrame(
            {
                "estimate": state.beta,
                "se": np.sqrt(np.clip(np.diag(covariance), 0.0, None)),
                "se_conditional": np.sqrt(np.diag(conditional)),
            },
            index=pd.Index(data.terms, name="term"),
        )
        self._variance_components = pd.Series(theta, index=pd.Index(groups, name="factor"), name="sd")
        self._beta_cov = covariance
        # Conditional modes and variances of b = theta * u (lme4's ranef, condVar).
        pirls = state.pirls
        cond_var = pirls.factor.inverse_diagonal()
        offsets = data.cells.offsets
        random_effects: dict[str, pd.DataFrame] = {}
        for g, group in enumerate(groups):
            sl = slice(offsets[g], offsets[g + 1])
            random_effects[group] = pd.DataFrame(
                {
                    "mode": theta[g] * pirls.u[sl],
                    "sd": theta[g] * np.sqrt(cond_var[sl]),
                },
                index=data.levels[group],
            )
        self._random_effects = random_effects
        self.loglik = -0.5 * state.deviance + data.log_binomial_coefficients
        self._check_flags()
        self._freeze()

    # -- estimates (copies: editing them never changes predictions or draws) ----------------
    @property
    def fixed_effects(self) -> pd.DataFrame:
        """A copy of the fixed effects, indexed by term: ``estimate``, ``se``, ``se_conditional``."""
        return self._fixed_effects.copy(deep=True)

    @property
    def variance_components(self) -> pd.Series:
        """A copy of the random-intercept SDs, indexed by grouping factor."""
        return self._variance_components.copy(deep=True)

    @property
    def random_effects(self) -> Mapping[str, pd.DataFrame]:
        """Per factor, a copy of the conditional modes and SDs, indexed by level."""
        return MappingProxyType({g: frame.copy(deep=True) for g, frame in self._random_effects.items()})

    @property
    def state(self) -> FitState:
        """The optimiser's state at the estimate (for the draws; treat as read-only)."""
        return self._state

    def _covariance(self, hessian: np.ndarray, n_theta: int) -> np.ndarray:
        n = hessian.shape[0]
        try:
            inverse = np.linalg.inv(hessian / 2.0)
            block = inverse[n_theta:, n_theta:]
            if np.all(np.diag(block) > 0):
                return block
        except np.linalg.LinAlgError:
            pass
        # Boundary fits (an SD at 0) make the full Hessian unusable: condition on theta.
        if n == n_theta:
            return np.zeros((0, 0))
        try:
            return np.linalg.inv(hessian[n_theta:, n_theta:] / 2.0)
        except np.linalg.LinAlgError:
            raise ModelError(
                "the fixed effects' curvature is singular at the estimate, so their standard "
                f"errors are not defined ({self.model.formula.text}): usually a fixed effect the "
                "data cannot separate from the random intercepts or from another term (e.g. an "
                "outcome that never or always occurs in some category); drop or merge that term"
            ) from None

    def _check_flags(self) -> None:
        beta = self._fixed_effects["estimate"]
        runaway = beta.index[np.abs(beta.to_numpy()) > 15]
        if len(runaway):
            raise ModelError(
                f"fixed effect(s) {list(runaway)} ran off to {beta[runaway].round(1).tolist()}: the "
                "outcome is (quasi-)completely separated by them; merge sparse categories or drop "
                "the term"
            )
        if self.singular:
            components = self._variance_components
            small = components.index[components < SINGULAR_TOL]
            warnings.warn(
                f"singular fit: the random-intercept SD of {list(small)} is estimated at "
                f"{components[small].round(6).tolist()} (boundary); their "
                "conditional modes are all ~0, so estimates pool completely across those levels",
                SingularFitWarning,
                stacklevel=3,
            )
        if not self.converged:
            warnings.warn(
                f"the optimiser did not report convergence ({self._state.message}); check the estimates",
                ConvergenceWarning,
                stacklevel=3,
            )

    # -- prediction -----------------------------------------------------------------------
    def new_data_design(self, frame: pd.DataFrame) -> tuple[np.ndarray, list[np.ndarray], dict[str, int]]:
        """Fixed-effect matrix and level codes (-1 for unseen levels) of new data.

        Returns the matrix ``X`` (rows of ``frame`` x terms), one array of
        level codes per grouping factor, and the number of unseen levels per
        factor that has any. For prediction and poststratification.
        """
        groups = self.model.formula.groups
        fixed_vars = list(self.model.data.cell_frame.columns.difference(list(groups), sort=False))
        require_columns(frame, [*fixed_vars, *groups], "model")
        _check_fixed_categories(self.model.data.cell_frame, frame, fixed_vars, self.model.formula.text)
        try:
            X = np.asarray(
                self.model.data.spec.get_model_matrix(_plain_strings(frame[fixed_vars])), dtype=np.float64
            )
        except Exception as error:
            raise ModelError(f"could not build the fixed effects for the new data: {error}") from error
        codes = []
        unseen: dict[str, int] = {}
        for group in groups:
            levels = self.model.data.levels[group]
            code = levels.get_indexer(pd.Index(frame[group]))
            missing = code < 0
            if missing.any():
                unseen[group] = int(pd.unique(frame[group].to_numpy()[missing]).size)
            codes.append(code)
        return X, codes, unseen

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        """Probabilities at the conditional modes, in the frame's row order.

        A level not seen in fitting gets random effect 0 (``lme4``'s
        ``allow.new.levels = TRUE``), with a :class:`NewLevelWarning`.

        Examples
        --------
        >>> import unmetneed as um
        >>> survey = um.datasets.load_example_survey()
        >>> fit = um.MultilevelModel("need ~ sex + (1|area_code) + (1|age_band)", data=survey).fit()
        >>> p = fit.predict(survey.head(3))
        >>> p.shape
        (3,)
        """
        cells = frame.cells if hasattr(frame, "cells") and not isinstance(frame, pd.DataFrame) else frame
        X, codes, unseen = self.new_data_design(cells)
        eta = X @ self._fixed_effects["estimate"].to_numpy()
        for group, code in zip(self.model.formula.groups, codes, strict=True):
            modes = self._random_effects[group]["mode"].to_numpy()
            eta = eta + np.where(code >= 0, modes[np.maximum(code, 0)], 0.0)
        if unseen:
            warnings.warn(
                f"levels not seen in fitting get random effect 0: {unseen} (new levels per factor)",
                NewLevelWarning,
                stacklevel=2,
            )
        return expit(eta)

    # -- draws ---------------------------------------------------------------------------------
    def draws(self, n: int = 1000, *, seed: int | np.random.Generator | None = None) -> Any:
        """Joint draws integrating over the variance parameters (see :mod:`unmetneed.mrp.draws`).

        The SDs come from a grid over their Laplace-approximated posterior; at
        each grid point the effects are drawn from the Gaussian approximation,
        and twice as many proposals as draws are importance-resampled to the
        exact posterior on the grid (which removes the Gaussian's upward bias
        of rare prevalences). The effective sample size of that step is in
        ``attrs["importance_ess"]``; if it is degenerate the draws are returned
        uncorrected with an :class:`~unmetneed.errors.UnmetneedWarning` and
        ``attrs["importance_resampled"]`` is False.

        Parameters
        ----------
        n : int, default 1000
            Number of draws.
        seed : int or numpy Generator, optional

        Returns
        -------
        xarray.Dataset
            ``beta`` (draw, term), ``sd`` (draw, factor), ``re_<factor>`` (draw,
            ``level_<factor>``); ``attrs`` record the method, the SD prior, the grid and
            the importance step: ``importance_proposals`` (2 per draw),
            ``importance_ess`` (out of the proposals; below 5% of them the weights
            count as degenerate) and ``importance_resampled``.

        Examples
        --------
        >>> import unmetneed as um
        >>> survey = um.datasets.load_example_survey()
        >>> fit = um.MultilevelModel("need ~ sex + (1|area_code) + (1|age_band)", data=survey).fit()
        >>> draws = fit.draws(200, seed=1)
        >>> draws["sd"].shape
        (200, 2)
        >>> draws.attrs["importance_resampled"]
        True
        """
        return joint_draws(self, n, seed)

    def poststratify(
        self,
        frame: Any,
        *,
        by: Any = "area_code",
        draws: int = 1000,
        seed: int | np.random.Generator | None = None,
        level: float = 0.9,
    ) -> Any:
        """Poststratify draws of the cell probabilities to groups of the frame.

        See :func:`unmetneed.mrp.poststratify.poststratify`.
        """
        return _poststratify(self, frame, by=by, draws=draws, seed=seed, level=level)

    # -- display --------------------------------------------------------------------------------
    def summary(self) -> str:
        data = self.model.data
        lines = [
            f"Binomial GLMM (logit), Laplace approximation: {self.model.formula.text}",
            f"{data.n_rows:,} rows in {data.cells.X.shape[0]:,} cells"
            + ("; survey-weighted pseudo-likelihood" if data.weighted else ""),
            f"log-likelihood {self.loglik:.4f}; converged {self.converged}; singular {self.singular}",
            "",
            "Fixed effects:",
            self.fixed_effects.to_string(float_format=lambda v: f"{v:.5f}"),
            "",
            "Random intercepts (SD):",
            self.variance_components.to_string(float_format=lambda v: f"{v:.5f}"),
        ]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<MultilevelFit>\n{self.summary()}"

    def _repr_html_(self) -> str:
        head = html.escape(self.summary().split("\n\n")[0]).replace("\n", "<br>")
        return (
            f"<div><p>{head}</p><b>Fixed effects</b>{self.fixed_effects.to_html(border=0, float_format=lambda v: f'{v:.5f}')}"
            f"<b>Random intercepts (SD)</b>{self.variance_components.to_frame().to_html(border=0, float_format=lambda v: f'{v:.5f}')}</div>"
        )


def _plain_strings(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` with ``string`` columns (missing values ``pd.NA``) as object columns.

    formulaic treats such columns (what ``pyarrow`` and Dask readers give) as
    numeric; the values are the same, so their coding is the fitted one.
    """
    nullable = [
        c
        for c, dtype in frame.dtypes.items()
        if isinstance(dtype, pd.StringDtype) and dtype.na_value is pd.NA
    ]
    return frame.astype(dict.fromkeys(nullable, object)) if nullable else frame.copy()


def _check_fixed_categories(
    fitted: pd.DataFrame, frame: pd.DataFrame, variables: list[str], formula: str
) -> None:
    """Refuse categories of a fixed effect that fitting never saw.

    Treatment coding would give them no column, so they would silently take the
    reference level's value (sex "X", or "female" for "Female", predicted as "F").
    """
    for variable in variables:
        seen = fitted[variable]
        if pd.api.types.is_numeric_dtype(seen.dtype) and not pd.api.types.is_bool_dtype(seen.dtype):
            continue
        if isinstance(seen.dtype, pd.CategoricalDtype):
            known = pd.Index(seen.cat.categories)
        else:
            known = pd.Index(pd.unique(seen.dropna()))
        values = frame[variable]
        present = pd.Index(pd.unique(values.dropna()))
        unknown = present.difference(known, sort=False)
        if len(unknown):
            shown = ", ".join(repr(v) for v in list(unknown[:8]))
            raise ModelError(
                f"fixed effect {variable!r} of {formula!r} has categories not seen in fitting: "
                f"[{shown}]{' ...' if len(unknown) > 8 else ''} (fitted categories: "
                f"{[*known[:8]]}); treatment coding would give them the reference level's value. "
                f"Recode them to fitted categories (e.g. with unmetneed.harmonise) or refit with them"
            )
        if values.isna().any():
            raise ModelError(
                f"fixed effect {variable!r} of {formula!r} is missing in {int(values.isna().sum())} "
                "row(s) of the new data; fill or drop them first"
            )
