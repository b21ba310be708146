"""The immutable survey design and its estimators."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, overload

import numpy as np
import pandas as pd

from unmetneed._immutable import FrozenAfterInit
from unmetneed._validate import (
    as_column_list,
    check_choice,
    check_level,
    column_values,
    numeric_column,
    require_columns,
    row_examples,
    show,
)
from unmetneed.design.calibration import CalibrationRecord
from unmetneed.design.chisq import ChisqResult
from unmetneed.design.coding import Coding, code_columns, code_series
from unmetneed.design.estimates import Estimates
from unmetneed.design.glm import GLMByResult, GLMResult
from unmetneed.design.options import (
    REPLICATE_INTERVALS,
    TAYLOR_INTERVALS,
    ChisqStatistic,
    CIMethod,
    GLMFamily,
    LonelyPSU,
    QuantileInterval,
    QuantileRule,
    ReplicateMethod,
)
from unmetneed.design.replicate import (
    ReplicateWeights,
    make_replicate_weights,
    replicate_degf,
)
from unmetneed.design.statistics import RatioStatistic
from unmetneed.design.taylor import PSUStructure, stratified_variance
from unmetneed.errors import DesignError, LonelyPSUWarning

__all__ = ["SurveyDesign"]

By = str | Sequence[str] | None


class SurveyDesign(FrozenAfterInit):
    r"""A survey sample with its weights and first-stage design.

    Immutable: the data and weights cannot change after construction; every
    weighting step returns a new design.

    Parameters
    ----------
    df : DataFrame
        Respondent data, one row per respondent.
    weights : str
        Column of sampling (or analysis) weights: finite, non-negative, not all zero.
    strata : str, optional
        Column of first-stage strata.
    clusters : str, optional
        Column of first-stage PSU (cluster) ids; each row is its own PSU when omitted.
    fpc : str, optional
        Column giving, per row, the stratum's population number of PSUs, or
        the sampling fraction (all values <= 1), as R's ``svydesign``; ``inf``
        means no correction. Must be constant within a stratum.
    nest : bool, default False
        PSU ids repeat across strata and are only unique within a stratum.
    lonely_psu : {"fail", "adjust", "certainty", "average", "remove"}
        What to do with a stratum holding a single PSU, with the meaning of R
        ``survey``'s ``survey.lonely.psu`` option: ``"fail"`` raises;
        ``"certainty"`` and ``"remove"`` let the stratum contribute nothing;
        ``"adjust"`` centres its PSU total at zero (the population mean of
        influence values) instead of the stratum mean; ``"average"`` replaces
        its contribution by the average of the other strata.

    Raises
    ------
    DesignError
        Missing, negative or all-zero weights; missing strata or PSU ids; a
        PSU in two strata without ``nest=True``; an fpc that varies within a
        stratum or is below the sampled count; a lonely PSU under ``"fail"``.
    MissingColumnError
        A named column does not exist (also a ``KeyError``).

    Notes
    -----
    Variances are Taylor linearisation over first-stage PSUs (with
    replacement, or without when ``fpc`` is given) or, after
    :meth:`replicate`, replicate-weight variances; see
    ``docs/methods/variance.md``. Degrees of freedom (:attr:`degf`) are the
    number of PSUs minus the number of strata, as R's ``degf``.

    References
    ----------
    Lumley, T. (2010). *Complex Surveys: A Guide to Analysis Using R*. Wiley.

    Examples
    --------
    >>> import unmetneed as um
    >>> survey = um.datasets.load_example_survey()
    >>> design = um.SurveyDesign(survey, weights="weight", strata="stratum",
    ...                          clusters="psu", nest=True)
    >>> design.degf
    67
    >>> table = design.mean("need", by="area_code").to_frame()
    >>> list(table.columns)
    ['area_code', 'estimate', 'se', 'ci_lower', 'ci_upper', 'cv', 'n']
    """

    _immutable_hint = "Weighting functions return a new design."

    def __init__(
        self,
        df: pd.DataFrame,
        *,
        weights: str,
        strata: str | None = None,
        clusters: str | None = None,
        fpc: str | None = None,
        nest: bool = False,
        lonely_psu: LonelyPSU = "fail",
    ) -> None:
        if not isinstance(df, pd.DataFrame):
            raise DesignError(f"df must be a pandas DataFrame; got {type(df).__name__}")
        if len(df) == 0:
            raise DesignError("df has no rows; a design needs at least one respondent")
        repeated = df.columns[df.columns.duplicated()].unique().tolist()
        if repeated:
            raise DesignError(
                f"df has repeated column names [{', '.join(show(c) for c in repeated[:8])}]; a design "
                "needs one column per name: rename or drop the copies"
            )
        check_choice(lonely_psu, "lonely_psu", LonelyPSU)
        w = check_weights(df, weights)
        structure = _build_structure(df, strata, clusters, fpc, nest, lonely_psu)
        # A deep copy: on pandas < 3 (no copy-on-write) a shallow one shares the
        # caller's arrays, so editing their frame afterwards would change the design.
        self._data = df.copy(deep=True)
        self._weights = w
        self._weights_col = weights
        self._strata_col = strata
        self._clusters_col = clusters
        self._fpc_col = fpc
        self._nest = bool(nest)
        self._structure = structure
        self._replicates: ReplicateWeights | None = None
        self._calibration: CalibrationRecord | None = None
        self._subset: np.ndarray | None = None
        self._cache: dict[Any, Any] = {}
        self._freeze()

    # -- immutability ------------------------------------------------------------
    def _replace(self, **fields: Any) -> SurveyDesign:
        new = object.__new__(type(self))
        state = dict(self.__dict__)
        state.update({f"_{k}": v for k, v in fields.items()})
        state["_cache"] = {}
        new.__dict__.update(state)
        return new

    def reweighted(
        self,
        weights: np.ndarray,
        *,
        calibration: CalibrationRecord | None = None,
        replicate_weights: np.ndarray | None = None,
    ) -> SurveyDesign:
        """A new design with new analysis weights (for the weighting layer).

        ``calibration`` records the calibration model so Taylor variances use
        its residuals; it replaces any earlier record (variances account for
        the latest calibration). ``replicate_weights`` are the re-weighted
        replicates of a replicate design.
        """
        w = np.ascontiguousarray(weights, dtype=np.float64)
        if w.shape != self._weights.shape or not np.isfinite(w).all():
            raise DesignError("new weights must be finite, one per row of the design")
        replicates = self._replicates
        if replicates is not None:
            if replicate_weights is None:
                raise DesignError("a replicate design needs its re-weighted replicates")
            replicates = replicates.with_weights(replicate_weights)
        fields: dict[str, Any] = {"weights": w, "replicates": replicates}
        if calibration is not None:
            fields["calibration"] = calibration
        return self._replace(**fields)

    def with_replicates(self, replicates: ReplicateWeights) -> SurveyDesign:
        """A new design whose variances come from ``replicates`` (one row per respondent).

        For the weighting layer, which re-weights replicates along with the
        full-sample weights (e.g. :func:`~unmetneed.adjust_nonresponse`).
        """
        if not isinstance(replicates, ReplicateWeights):
            raise DesignError(f"replicates must be a ReplicateWeights; got {type(replicates).__name__}")
        if replicates.weights.shape[0] != self.n:
            raise DesignError(
                f"replicate weights have {replicates.weights.shape[0]:,} rows; the design has {self.n:,}"
            )
        return self._replace(replicates=replicates)

    def with_data(self, df: pd.DataFrame) -> SurveyDesign:
        """A new design on other rows with this design's options.

        The weights, strata, clusters and fpc columns, ``nest`` and the
        lonely-PSU policy are kept; the rows, and so the PSU structure, are
        ``df``'s. Replicate weights and a calibration record belong to this
        design's rows and are not carried over.

        Parameters
        ----------
        df : DataFrame
            The new rows, with the design's columns.

        Returns
        -------
        SurveyDesign
            As ``SurveyDesign(df, ...)`` with this design's options; this design is unchanged.

        Raises
        ------
        DesignError
            As the constructor: no rows, invalid weights, or a bad design structure.

        Examples
        --------
        >>> import unmetneed as um
        >>> design = um.datasets.load_example_design()
        >>> women = design.with_data(design.data.query("sex == 'Female'"))
        >>> women.n < design.n, women.strata_col == design.strata_col
        (True, True)
        """
        return SurveyDesign(
            df,
            weights=self._weights_col,
            strata=self._strata_col,
            clusters=self._clusters_col,
            fpc=self._fpc_col,
            nest=self._nest,
            lonely_psu=self._structure.lonely_psu,
        )

    @property
    def calibration(self) -> CalibrationRecord | None:
        """The calibration this design went through (``None`` if none)."""
        return self._calibration

    # -- public attributes --------------------------------------------------------
    @property
    def data(self) -> pd.DataFrame:
        """A copy of the respondent data: changing it never changes the design.

        Deep, so that this holds on every pandas the package supports (before
        pandas 3 there is no copy-on-write); about 2 ms per million rows of
        five numeric columns.
        """
        return self._data.copy(deep=True)

    @property
    def weights(self) -> np.ndarray:
        """Analysis weights, float64, one per row (read-only)."""
        view = self._weights.view()
        view.flags.writeable = False
        return view

    @property
    def weights_col(self) -> str:
        return self._weights_col

    @property
    def strata_col(self) -> str | None:
        return self._strata_col

    @property
    def clusters_col(self) -> str | None:
        return self._clusters_col

    @property
    def fpc_col(self) -> str | None:
        return self._fpc_col

    @property
    def nest(self) -> bool:
        return self._nest

    @property
    def lonely_psu(self) -> str:
        return self._structure.lonely_psu

    @property
    def n(self) -> int:
        """Number of respondents (rows)."""
        return int(self._weights.size)

    @property
    def n_strata(self) -> int:
        return self._structure.n_strata

    @property
    def n_psus(self) -> int:
        return self._structure.n_psus

    @property
    def structure(self) -> PSUStructure:
        """Integer-coded strata and PSUs (for the weighting and variance layers)."""
        return self._structure

    @property
    def replicate_weights(self) -> np.ndarray | None:
        """The (n x R) replicate analysis weights (read-only), or ``None`` for a Taylor design."""
        return None if self._replicates is None else self._replicates.weights

    @property
    def replicates(self) -> ReplicateWeights | None:
        """Replicate weights with their scale, rscales and centring, if any."""
        return self._replicates

    @property
    def variance_method(self) -> str:
        if self._replicates is None:
            return "Taylor linearisation"
        return f"replicate weights ({self._replicates.method})"

    @property
    def degf(self) -> int:
        """Design degrees of freedom, as R's ``degf``.

        Taylor: PSUs minus strata among rows with non-zero weight. Replicate:
        the rank of the replicate-weight matrix minus one.
        """
        if "degf" not in self._cache:
            if self._replicates is not None:
                r = self._replicates
                value = r.degf if r.degf is not None else replicate_degf(r.weights)
            else:
                inset = self._weights != 0
                s = self._structure
                psus = np.count_nonzero(np.bincount(s.psu[inset], minlength=s.n_psus))
                strata = np.count_nonzero(np.bincount(s.stratum[inset], minlength=s.n_strata))
                value = int(psus - strata)
            self._cache["degf"] = int(value)
        return self._cache["degf"]

    def __repr__(self) -> str:
        parts = [f"{self.n:,} respondents", f"weights={self._weights_col!r}"]
        if self._strata_col:
            parts.append(f"strata={self._strata_col!r} ({self.n_strata})")
        if self._clusters_col:
            parts.append(f"clusters={self._clusters_col!r} ({self.n_psus} PSUs)")
        if self._fpc_col:
            parts.append(f"fpc={self._fpc_col!r}")
        parts.append(f"variance: {self.variance_method}")
        return f"<SurveyDesign: {', '.join(parts)}>"

    # -- replicate designs -----------------------------------------------------------
    def replicate(
        self,
        method: ReplicateMethod = "jk1",
        *,
        rho: float | None = None,
        n_replicates: int | None = None,
        mse: bool = False,
        seed: int | np.random.Generator | None = None,
    ) -> SurveyDesign:
        """Return a design whose variances come from replicate weights.

        Parameters
        ----------
        method : {"jk1", "jkn", "brr", "fay", "bootstrap"}
            Delete-one-PSU jackknife (unstratified, JK1), stratified jackknife
            (JKn), balanced repeated replication (exactly two PSUs per stratum),
            Fay's BRR (with ``rho``), or the Rao-Wu rescaled bootstrap.
        rho : float, optional
            Fay's coefficient, strictly between 0 and 1 (``method="fay"``).
        n_replicates : int, optional
            Bootstrap replicates.
        mse : bool, default False
            Centre the replicates on the full-sample estimate instead of their mean.
        seed : int or Generator, optional
            Bootstrap random numbers.

        Returns
        -------
        SurveyDesign
            Same data and weights, replicate variance. The scale factors,
            ``rscales`` and the Hadamard matrix follow R ``survey``'s
            ``as.svrepdesign`` so results equal R's.

        Examples
        --------
        >>> import unmetneed as um
        >>> design = um.datasets.load_example_design()
        >>> jk = design.replicate("jkn")
        >>> jk.replicate_weights.shape[1] == design.n_psus
        True
        """
        check_choice(method, "method", ReplicateMethod)
        replicates = make_replicate_weights(
            self._weights,
            self._structure,
            method=method,
            rho=rho,
            n_replicates=n_replicates,
            mse=mse,
            seed=seed,
        )
        return self._replace(replicates=replicates)

    @classmethod
    def from_replicate_weights(
        cls,
        df: pd.DataFrame,
        *,
        weights: str,
        replicate_weights: Sequence[str],
        scale: float,
        rscales: Sequence[float] | np.ndarray | None = None,
        mse: bool = False,
    ) -> SurveyDesign:
        """A design from replicate-weight columns published with a survey.

        The replicate columns are used as given: they are analysis weights
        (R ``svrepdesign(..., combined.weights=TRUE)``). The variance is
        ``scale * sum_r rscales[r] * (theta_r - centre)^2``.

        Parameters
        ----------
        df : DataFrame
        weights : str
            Full-sample weight column.
        replicate_weights : list of str
            Replicate weight columns.
        scale : float
            Overall variance multiplier (e.g. ``(R-1)/R`` for JK1, ``1/R`` for BRR).
        rscales : sequence of float, optional
            Per-replicate multipliers (default 1).
        mse : bool, default False
            Centre on the full-sample estimate instead of the replicate mean.

        Examples
        --------
        >>> import pandas as pd, unmetneed as um
        >>> df = pd.DataFrame({"y": [1.0, 2.0, 3.0], "w": [1.0, 1.0, 1.0],
        ...                    "r1": [0.0, 1.5, 1.5], "r2": [1.5, 0.0, 1.5],
        ...                    "r3": [1.5, 1.5, 0.0]})
        >>> d = um.SurveyDesign.from_replicate_weights(
        ...     df, weights="w", replicate_weights=["r1", "r2", "r3"], scale=2 / 3)
        >>> round(float(d.mean("y").se.iloc[0]), 6)
        0.57735
        """
        names = as_column_list(replicate_weights)
        if not names:
            raise DesignError("replicate_weights must name at least one column")
        require_columns(df, names, "replicate weight")
        base = cls(df, weights=weights)
        matrix = np.column_stack([numeric_column(df, c, "replicate weight") for c in names])
        if not np.isfinite(scale) or scale <= 0:
            raise DesignError(f"scale={scale!r} must be a positive finite number")
        if rscales is None:
            rs = np.ones(len(names))
        else:
            rs = np.asarray(rscales, dtype=np.float64)
            if rs.shape != (len(names),):
                raise DesignError(
                    f"rscales has {rs.size} values but there are {len(names)} replicate columns"
                )
        replicates = ReplicateWeights(
            weights=np.asfortranarray(matrix),
            scale=float(scale),
            rscales=rs,
            mse=bool(mse),
            method="other",
            rho=None,
        )
        return base._replace(replicates=replicates)

    # -- subsets and new variables (R subset(), update()) -------------------------------
    def subset(self, rows: np.ndarray | pd.Series | str) -> SurveyDesign:
        """The design restricted to a domain, as R's ``subset(design, ...)``.

        Rows outside keep their place in the design with weight 0 (also in
        every replicate), so estimates are domain estimates and variances use
        the whole design's strata and PSUs: exactly R's domain estimation.

        Parameters
        ----------
        rows : boolean array or Series, or str
            A mask with one value per row (missing counts as False, as R), or a
            :meth:`pandas.DataFrame.query` expression on the data.

        Returns
        -------
        SurveyDesign
            A new design; :attr:`degf` counts the subset's PSUs and strata, as
            R's ``degf`` of a subset design.

        Raises
        ------
        DesignError
            A mask of the wrong length or type, an invalid query, or no rows.

        Examples
        --------
        >>> import unmetneed as um
        >>> design = um.datasets.load_example_design()
        >>> women = design.subset("sex == 'Female'")
        >>> m1 = women.mean("need").estimate.iloc[0]
        >>> m2 = design.mean("need", by="sex").estimate["Female"]
        >>> bool(abs(m1 - m2) < 1e-12)
        True
        """
        mask = self._row_mask(rows)
        inside = self._in_design & mask
        if not (inside & (self._weights != 0)).any():
            raise DesignError(
                f"subset {rows if isinstance(rows, str) else 'mask'!s} selects no row with a non-zero weight"
            )
        weights = np.where(inside, self._weights, 0.0)
        replicates = self._replicates
        if replicates is not None:
            replicates = replicates.with_weights(replicates.weights * inside[:, None])
        return self._replace(weights=weights, replicates=replicates, subset=inside)

    def _row_mask(self, rows: np.ndarray | pd.Series | str) -> np.ndarray:
        values: object = rows  # a query evaluates to whatever DataFrame.eval returns
        if isinstance(rows, str):
            try:
                values = self._data.eval(rows)
            except Exception as exc:  # pandas raises many types for a bad query
                raise DesignError(f"subset query {rows!r} could not be evaluated: {exc}") from exc
        if isinstance(values, pd.Series):
            if not values.index.equals(self._data.index):
                raise DesignError("subset mask Series must have the data's index")
            values = values.to_numpy()
        mask = np.asarray(values)
        if mask.shape != (self.n,):
            raise DesignError(f"subset mask must have one value per row ({self.n}); got shape {mask.shape}")
        if mask.dtype == object:
            mask = pd.array(mask, dtype="boolean").to_numpy(dtype=bool, na_value=False)
        if mask.dtype != bool:
            raise DesignError(f"subset mask must be boolean; got dtype {mask.dtype}")
        return mask

    def assign(self, **columns: Any) -> SurveyDesign:
        """A new design with added or replaced variables, as R's ``update(design, ...)``.

        Parameters
        ----------
        **columns
            Column name to values (array, Series on the data's index, scalar)
            or to a function of the data frame, as :meth:`pandas.DataFrame.assign`.

        Returns
        -------
        SurveyDesign
            The same design (weights, strata, PSUs, replicates, calibration)
            with the new data; this design is unchanged.

        Raises
        ------
        DesignError
            A column that defines the design (weights, strata, clusters, fpc).

        Examples
        --------
        >>> import unmetneed as um
        >>> design = um.datasets.load_example_design()
        >>> older = design.assign(old=lambda d: (d["age_band"] == "85+").astype(float))
        >>> "old" in older.data.columns and "old" not in design.data.columns
        True
        """
        fixed = {c for c in (self._weights_col, self._strata_col, self._clusters_col, self._fpc_col) if c}
        clash = sorted(fixed & set(columns))
        if clash:
            raise DesignError(
                f"assign() cannot replace the design column(s) {clash}; build a new "
                "SurveyDesign to change weights, strata, clusters or fpc"
            )
        # Deep: assigned arrays must not stay shared with the caller.
        data = self._data.assign(**columns).copy(deep=True)
        if len(data) != self.n:
            raise DesignError("assigned columns must keep one value per row")
        return self._replace(data=data)

    # -- coding (cached: the design is immutable) ------------------------------------
    def _domains(self, by: By) -> Coding:
        columns = as_column_list(by)
        key = ("by", tuple(columns))
        if key not in self._cache:
            if not columns:
                coding = Coding(np.zeros(self.n, dtype=np.intp), pd.DataFrame(index=[0]))
            elif self._subset is not None:
                # Levels of the rows in the subset only (R's svyby drops groups
                # whose rows all have zero weight); rows outside have weight 0
                # and code 0, so they contribute nothing.
                inside = code_columns(self._data.loc[self._subset], columns, "by")
                codes = np.zeros(self.n, dtype=np.intp)
                codes[self._subset] = inside.codes
                coding = Coding(codes, inside.levels)
            else:
                coding = code_columns(self._data, columns, "by")
            self._cache[key] = coding
        return self._cache[key]

    def category_codes(self, column: str, role: str = "variable") -> tuple[np.ndarray, pd.Index]:
        """Integer codes of a column's observed categories (cached; R factor order).

        For the layers above (weighting, models): code each column once per design.
        """
        key = ("codes", column)
        if key not in self._cache:
            self._cache[key] = code_series(column_values(self._data, column, role))
        return self._cache[key]

    def _numeric(self, column: str, role: str) -> np.ndarray:
        key = ("numeric", column)
        if key not in self._cache:
            self._cache[key] = self._variables(column, role, False)[0][:, 0]
        return self._cache[key]

    @property
    def _in_design(self) -> np.ndarray:
        """Rows of the design (all, or those of a :meth:`subset`)."""
        if self._subset is None:
            return np.ones(self.n, dtype=bool)
        return self._subset

    def _variables(
        self, variables: str | Sequence[str], role: str, na_rm: bool
    ) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """Numeric columns (missing as 0) and the rows holding all of them."""
        names = as_column_list(variables)
        if not names:
            raise DesignError(f"give at least one {role} column")
        require_columns(self._data, names, role)
        inside = self._in_design
        values = np.empty((self.n, len(names)))
        missing = np.zeros(self.n, dtype=bool)
        for j, name in enumerate(names):
            series = self._data[name]
            if isinstance(series.dtype, pd.CategoricalDtype) or not (
                pd.api.types.is_numeric_dtype(series.dtype) or pd.api.types.is_bool_dtype(series.dtype)
            ):
                raise DesignError(
                    f"{role} column {name!r} is not numeric (dtype {series.dtype}); "
                    "use proportion() for a categorical variable, or convert it with "
                    "pd.to_numeric"
                )
            x = series.to_numpy(dtype=np.float64, na_value=np.nan)
            gone = np.isnan(x)
            if np.isinf(x).any():
                raise DesignError(
                    f"{role} column {name!r} has infinite values in "
                    f"{row_examples(np.isinf(x), self._data.index)}"
                )
            if not na_rm and (gone & inside).any():
                raise DesignError(
                    f"{role} column {name!r} has missing values in "
                    f"{row_examples(gone & inside, self._data.index)}; pass na_rm=True to "
                    "leave those rows out as R's na.rm=TRUE does (the design stays whole), "
                    "or impute them"
                )
            missing |= gone
            values[:, j] = np.where(gone, 0.0, x)
        return values, ~missing & inside, names

    # -- estimators ---------------------------------------------------------------------
    def mean(
        self,
        variable: str | Sequence[str],
        *,
        by: By = None,
        level: float = 0.95,
        deff: bool = False,
        na_rm: bool = False,
    ) -> Estimates:
        r"""Weighted mean of numeric variables, overall or by domain (R ``svymean``).

        Parameters
        ----------
        variable : str or list of str
            Numeric column(s) (bool is read as 0/1). With several, the result
            has a ``variable`` column and :meth:`Estimates.vcov` gives the
            covariance of every pair (R ``svymean(~a + b)``, ``svyby(...,
            covmat=TRUE)``).
        by : str or list of str, optional
            Domain column(s); estimates for every observed combination.
        level : float, default 0.95
            Interval level (t intervals on :attr:`degf` degrees of freedom).
        deff : bool, default False
            Add the design effect (Kish's, as R ``svymean(..., deff=TRUE)``);
            one variable without ``na_rm`` only.
        na_rm : bool, default False
            As R's ``na.rm=TRUE``: rows missing any of the variables leave as
            a domain (the design, its strata and PSUs stay whole). Without it a
            missing value is an error naming the column.

        Returns
        -------
        Estimates

        Raises
        ------
        DesignError
            A non-numeric variable, missing values without ``na_rm=True``.
        MissingColumnError
            A variable or ``by`` column is not in the data.

        Notes
        -----
        :math:`\hat{\bar y}_d = \sum_i w_i y_i [i \in d] / \sum_i w_i [i \in d]`,
        with influence values :math:`z_i = w_i [i\in d](y_i - \hat{\bar y}_d)/\hat N_d`.

        Examples
        --------
        >>> import unmetneed as um
        >>> design = um.datasets.load_example_design()
        >>> design.mean("need", by="sex").to_frame()["sex"].tolist()
        ['Female', 'Male']
        >>> both = design.assign(male=lambda d: (d["sex"] == "Male").astype(float))
        >>> both.mean(["need", "male"]).vcov().shape
        (2, 2)
        """
        return self._linear("mean", variable, by, level, deff, na_rm)

    def total(
        self,
        variable: str | Sequence[str],
        *,
        by: By = None,
        level: float = 0.95,
        deff: bool = False,
        na_rm: bool = False,
    ) -> Estimates:
        r"""Weighted total of numeric variables, overall or by domain (R ``svytotal``).

        Parameters are those of :meth:`mean`.

        Notes
        -----
        :math:`\hat Y_d = \sum_i w_i y_i [i \in d]`, influence :math:`z_i = w_i y_i [i \in d]`.

        Examples
        --------
        >>> import unmetneed as um
        >>> design = um.datasets.load_example_design()
        >>> design.total("need", by="sex").to_frame().shape[0]
        2
        """
        return self._linear("total", variable, by, level, deff, na_rm)

    def _linear(
        self,
        statistic: str,
        variable: str | Sequence[str],
        by: By,
        level: float,
        deff: bool,
        na_rm: bool,
    ) -> Estimates:
        from unmetneed.design import linear

        single = isinstance(variable, str)
        values, keep, names = self._variables(variable, "variable", na_rm)
        domains = self._domains(by)
        build = linear.mean_statistics if statistic == "mean" else linear.total_statistics
        if single:
            stat = build(values, keep, domains.codes, domains.n_levels)[0]
            extra = None
            if deff:
                if not keep.all():
                    raise DesignError(
                        "deff=True is not available with na_rm=True when rows are missing; "
                        "compute the design effect on a subset() without missing values"
                    )
                y = values[:, 0]
                extra = (self._mean_deff if statistic == "mean" else self._total_deff)(stat, y, domains)
            return self._estimates(stat, domains, domains.levels, statistic, names[0], by, level, extra, keep)
        if deff:
            raise DesignError("deff=True takes one variable at a time; call mean() per variable")
        stats = build(values, keep, domains.codes, domains.n_levels)
        k = len(names)
        family = linear.estimate_family(self, stats, linear.domain_major(domains.n_levels, k))
        keys = linear.expand_keys(domains.levels, names)
        respondents = np.repeat(self._respondents(domains, keep), k)
        return self._make_estimates(
            keys,
            family.theta,
            family.variance,
            respondents,
            statistic,
            ", ".join(names),
            by,
            level,
            vcov=family.covariance,
        )

    def ratio(
        self,
        numerator: str,
        denominator: str,
        *,
        by: By = None,
        level: float = 0.95,
        na_rm: bool = False,
    ) -> Estimates:
        r"""Ratio of two weighted totals, overall or by domain (R ``svyratio``).

        ``na_rm=True``: rows missing either variable leave as a domain.

        Notes
        -----
        :math:`\hat R_d = \hat Y_d / \hat X_d`, influence
        :math:`z_i = w_i [i \in d](y_i - \hat R_d x_i) / \hat X_d` (Wolter 2007, sec. 6.5).

        Examples
        --------
        >>> import unmetneed as um
        >>> design = um.datasets.load_example_design()
        >>> float(design.ratio("need", "need").estimate.iloc[0])
        1.0
        """
        if na_rm:
            values, keep, _ = self._variables([numerator, denominator], "variable", True)
            y, x = values[:, 0] * keep, values[:, 1] * keep
        else:
            y = self._numeric(numerator, "numerator")
            x = self._numeric(denominator, "denominator")
            keep = None
        domains = self._domains(by)
        stat = RatioStatistic(
            num_column=domains.codes,
            num=y,
            n_columns=domains.n_levels,
            den_column=domains.codes,
            den=x,
            n_dens=domains.n_levels,
            column_den=np.arange(domains.n_levels),
        )
        _, den_totals = stat.totals(self._weights)
        zero = np.flatnonzero(den_totals == 0)
        if zero.size:
            where = (
                "the whole design"
                if by is None
                else f"domain(s) {[tuple(r) if len(r) > 1 else r[0] for r in domains.levels.iloc[zero[:5]].itertuples(index=False)]}"
                + (" ..." if zero.size > 5 else "")
            )
            raise DesignError(
                f"the weighted total of denominator {denominator!r} is 0 in {where}, so the ratio "
                f"{numerator}/{denominator} is not defined there; drop those domains or choose a "
                "denominator that is non-zero in each"
            )
        name = f"{numerator}/{denominator}"
        return self._estimates(stat, domains, domains.levels, "ratio", name, by, level, None, keep)

    def proportion(
        self,
        variable: str,
        *,
        by: By = None,
        level: float = 0.95,
        deff: bool = False,
        ci: CIMethod = "mean",
        na_rm: bool = False,
    ) -> Estimates:
        r"""Proportion in each category of a variable, overall or by domain.

        Every category of a pandas Categorical is reported, including ones no
        respondent chose (estimate 0); otherwise the sorted observed values.

        Parameters
        ----------
        variable : str
            Category column (a 0/1 column gives the categories 0 and 1).
        by : str or list of str, optional
            Domain column(s).
        level : float, default 0.95
        deff : bool, default False
            Add Kish's design effect (R ``svymean(..., deff=TRUE)``).
        ci : {"mean", "logit", "likelihood", "asin", "beta", "xlogit"}
            Interval method of R's ``svyciprop(method=)`` for each category's
            proportion; ``"mean"`` is the Wald t interval. Degrees of freedom
            are the design's (R ``svyciprop(..., df = degf(design))``); the
            ``"beta"`` effective size uses each domain's rows and degrees of
            freedom, as R's ``svyby(..., svyciprop)``.
        na_rm : bool, default False
            Rows missing the variable leave as a domain (R ``na.rm=TRUE``);
            without it a missing value is an error.

        Returns
        -------
        Estimates
            Intervals other than ``"mean"`` are stored at ``level``; they are
            not symmetric, so ``to_frame(level=...)`` at another level raises.

        Notes
        -----
        The mean of the indicator of each category :math:`k`,
        :math:`\hat p_{dk} = \sum_i w_i [i\in d][c_i = k] / \hat N_d`. Interval
        formulas: :mod:`unmetneed.design.proportion_ci`.

        Examples
        --------
        >>> import unmetneed as um
        >>> design = um.datasets.load_example_design()
        >>> table = design.proportion("help").to_frame()
        >>> round(float(table["estimate"].sum()), 12)
        1.0
        >>> beta = design.proportion("need", by="area_code", ci="beta").to_frame()
        >>> bool((beta["ci_lower"] >= 0).all())
        True
        """

        check_choice(ci, "ci", CIMethod)
        require_columns(self._data, [variable], "variable")
        series = self._data[variable]
        missing = series.isna().to_numpy()
        keep: np.ndarray | None = None
        if missing.any():
            relevant = missing & self._in_design
            if relevant.any() and not na_rm:
                raise DesignError(
                    f"variable column {variable!r} has missing values in "
                    f"{row_examples(relevant, self._data.index)}; pass na_rm=True to leave "
                    "those rows out as R's na.rm=TRUE does (the design stays whole)"
                )
            keep = ~missing
            if deff:
                raise DesignError("deff=True is not available with missing values")
        key = ("categories", variable)
        if key not in self._cache:
            if keep is None:
                self._cache[key] = code_series(series, observed=False)
            else:
                present = series[keep]
                _, labels_ = code_series(present, observed=False)
                codes_ = np.zeros(self.n, dtype=np.intp)
                codes_[keep] = labels_.get_indexer(pd.Index(present))
                self._cache[key] = (codes_, labels_)
        category, labels = self._cache[key]
        domains = self._domains(by)
        k = len(labels)
        ones = np.ones(self.n) if keep is None else keep.astype(np.float64)
        stat = RatioStatistic(
            num_column=domains.codes * k + category,
            num=ones,
            n_columns=domains.n_levels * k,
            den_column=domains.codes,
            den=ones,
            n_dens=domains.n_levels,
            column_den=np.repeat(np.arange(domains.n_levels), k),
        )
        keys = domains.levels.loc[np.repeat(domains.levels.index, k)].reset_index(drop=True)
        keys[variable] = pd.Categorical(
            np.tile(labels.to_numpy(dtype=object), domains.n_levels),
            categories=labels,
            ordered=isinstance(series.dtype, pd.CategoricalDtype) and series.cat.ordered,
        )
        extra = self._proportion_deff(stat, domains) if deff else None
        if ci == "mean":
            return self._estimates(stat, domains, keys, "proportion", variable, by, level, extra, keep)
        from unmetneed.design.proportion_intervals import ProportionProblem, proportion_bounds

        theta = stat.estimate(self._weights)
        variance, covariance = self._variance(stat, theta, domains)
        problem = ProportionProblem(self, stat, theta, variance, domains, category, k)
        bounds = proportion_bounds(problem, ci, level, bool(as_column_list(by)), keep)
        respondents = np.repeat(self._respondents(domains, keep), k)
        return self._make_estimates(
            keys,
            theta,
            variance,
            respondents,
            "proportion",
            variable,
            by,
            level,
            deff=extra,
            vcov=covariance,
            bounds=bounds,
            info={"interval": ci},
        )

    def quantile(
        self,
        variable: str,
        q: float | Sequence[float] = (0.25, 0.5, 0.75),
        *,
        by: By = None,
        rule: QuantileRule = "math",
        interval: QuantileInterval = "mean",
        level: float = 0.95,
        na_rm: bool = False,
    ) -> Estimates:
        r"""Quantiles with confidence intervals, as R's ``svyquantile``.

        Parameters
        ----------
        variable : str
            Numeric column.
        q : float or sequence of float, default (0.25, 0.5, 0.75)
            Probabilities in [0, 1].
        by : str or list of str, optional
            Domains (R ``svyby(~x, ~d, design, svyquantile, ...)``).
        rule : {"math", "school", "shahvaish", "hf1", ..., "hf9"}
            R's ``qrule``.
        interval : {"mean", "beta", "xlogit", "asin", "score", "quantile"}
            R's ``interval.type``; ``"score"`` on Taylor designs only,
            ``"quantile"`` (replicate quantiles) on replicate designs only.
        level : float, default 0.95
        na_rm : bool, default False
            Rows missing the variable leave as a domain.

        Returns
        -------
        Estimates
            One row per domain and probability, with a ``quantile`` column;
            ``se`` is the interval width over :math:`2t`, as R reports it. The
            interval uses the design's degrees of freedom (R
            ``svyquantile(..., df = degf(design))``). :meth:`Estimates.vcov`
            is R's ``vcov(svyquantile(...))``: ``se**2`` on the diagonal and
            NaN (R's NA) off it, since the intervals give no covariances. Under
            ``by=`` R's ``vcov(svyby(...))`` warns "Only diagonal elements of
            vcov() available" and puts 0 off the diagonal; unmetneed keeps NaN
            there too, so a contrast cannot silently assume independence.

        Raises
        ------
        DesignError
            ``q`` outside [0, 1], an unknown rule or interval, a non-numeric
            variable.

        Notes
        -----
        See :mod:`unmetneed.design.quantiles` for the rules and intervals.

        Examples
        --------
        >>> import unmetneed as um
        >>> design = um.datasets.load_example_design()
        >>> old = design.assign(band=lambda d: d["age_band"].cat.codes.astype(float))
        >>> old.quantile("band", q=0.5, by="sex").to_frame()["quantile"].tolist()
        [0.5, 0.5]
        """
        from unmetneed.design import quantiles
        from unmetneed.design.variance import domain_degf

        probabilities = _check_probabilities(q)
        check_choice(rule, "rule", QuantileRule)
        check_choice(interval, "interval", QuantileInterval)
        allowed = TAYLOR_INTERVALS if self._replicates is None else REPLICATE_INTERVALS
        if interval not in allowed:
            kind = "Taylor" if self._replicates is None else "replicate"
            raise DesignError(
                f"interval={interval!r} is not available on a {kind} design; use one of "
                f"{', '.join(repr(a) for a in allowed)}"
            )
        if not isinstance(variable, str):
            raise DesignError("quantile() takes one variable; call it once per variable")
        values, keep, _ = self._variables(variable, "variable", na_rm)
        domains = self._domains(by)
        rows_df = np.full(domains.n_levels, float(self.degf))
        if interval == "beta" and (as_column_list(by) or not keep.all()):
            # the beta interval's effective size uses each (sub)domain's own df, as R
            rows_df = domain_degf(self, domains.codes, domains.n_levels, keep)
        table = quantiles.quantile_table(
            self,
            values[:, 0],
            keep,
            domains.codes,
            domains.n_levels,
            probabilities,
            rule=rule,
            interval=interval,
            level=level,
            domain_df=rows_df,
            df=float(self.degf),
        )
        k = len(probabilities)
        keys = domains.levels.loc[np.repeat(domains.levels.index, k)].reset_index(drop=True)
        keys["quantile"] = np.tile(np.asarray(probabilities, dtype=np.float64), domains.n_levels)
        respondents = np.repeat(self._respondents(domains, keep), k)
        return Estimates(
            keys,
            table["estimate"].ravel(),
            table["se"].ravel(),
            respondents,
            df=self.degf,
            level=level,
            info={
                "statistic": "quantile",
                "variable": variable,
                "by": as_column_list(by),
                "variance": self.variance_method,
                "interval": f"{interval} ({rule} rule)",
                "rule": rule,
            },
            bounds=(table["ci_lower"].ravel(), table["ci_upper"].ravel()),
            vcov=_diagonal_vcov(table["se"].ravel()),
        )

    @overload
    def glm(
        self, formula: str, *, family: GLMFamily = ..., by: None = ..., level: float = ...
    ) -> GLMResult: ...

    @overload
    def glm(
        self, formula: str, *, family: GLMFamily = ..., by: str | Sequence[str], level: float = ...
    ) -> GLMByResult: ...

    def glm(
        self,
        formula: str,
        *,
        family: GLMFamily = "gaussian",
        by: By = None,
        level: float = 0.95,
    ) -> GLMResult | GLMByResult:
        r"""A design-based generalised linear model, as R's ``svyglm``.

        Parameters
        ----------
        formula : str
            ``"y ~ x + C(g)"`` in formulaic's syntax (R's for the usual
            terms); categorical columns get treatment contrasts against their
            first level, as R. Rows missing any variable are left out (R's
            ``na.action = na.omit``) and the rest analysed as a domain.
        family : {"gaussian", "binomial", "quasibinomial", "poisson", "quasipoisson"}
        by : str or list of str, optional
            Fit the model in each domain (R's ``svyby(formula, ~by, design,
            svyglm)``): each domain as a :meth:`subset` (the whole design kept
            for the variance), with its own residual degrees of freedom.
        level : float, default 0.95
            Level of the intervals in ``to_frame()``.

        Returns
        -------
        GLMResult
            ``params``, ``bse``, ``vcov()``, ``df_resid``, ``to_frame()``,
            ``predict(newdata, se=True)``.
        GLMByResult
            With ``by``: the same per domain (``to_frame()`` with the ``by``
            column(s) and ``df``), ``vcov()`` of all the domains'
            coefficients with the covariances between domains (R's
            ``covmat = TRUE``), ``result[domain]`` the one domain's
            :class:`GLMResult`.

        Raises
        ------
        DesignError
            An unknown family, a response outside the family's range, a rank
            deficient model matrix (by domain: naming the domain), a domain
            with no complete row.
        MissingColumnError
            The formula or ``by`` names a column that is not in the data.

        Notes
        -----
        See :mod:`unmetneed.design.glm`: R's iterations and stopping rule, the
        sandwich (Binder 1983) for Taylor designs, refits for replicates.

        Examples
        --------
        >>> import unmetneed as um
        >>> design = um.datasets.load_example_design()
        >>> fit = design.glm("need ~ sex + age_band", family="quasibinomial")
        >>> fit.to_frame()["term"].iloc[0]
        'Intercept'
        >>> fit.df_resid == design.degf + 1 - len(fit.params)
        True
        >>> fits = design.glm("need ~ age_band", family="quasibinomial", by="sex")
        >>> fits.to_frame()[["sex", "term"]].iloc[0].tolist()
        ['Female', 'Intercept']
        """
        from unmetneed.design.glm import fit_glm, fit_glm_by

        check_choice(family, "family", GLMFamily)
        check_level(level)
        columns = as_column_list(by)
        if columns:
            return fit_glm_by(self, formula, family, columns, level)
        return fit_glm(self, formula, family, level)

    def chisq(self, row: str, column: str, *, statistic: ChisqStatistic = "F") -> ChisqResult:
        r"""Test of association between two categorical variables, as R's ``svychisq``.

        Parameters
        ----------
        row, column : str
            Category columns (rows missing either are left out as a domain).
        statistic : {"F", "Chisq", "Wald", "adjWald", "lincom", "saddlepoint"}
            ``"F"``: Rao-Scott second-order correction (R's default);
            ``"Chisq"``: first-order; ``"Wald"``/``"adjWald"``: Wald tests of
            the interior cells; ``"saddlepoint"``/``"lincom"``: Pearson's
            :math:`X^2` against its asymptotic distribution, a linear
            combination of :math:`\chi^2_1`, by a saddlepoint approximation or
            exactly.

        Returns
        -------
        ChisqResult
            ``statistic``, ``ndf``, ``ddf``, ``p_value``, ``to_frame()``.

        Raises
        ------
        DesignError
            A row or column of the table with no respondents (an unused
            category), fewer than two levels, an unknown statistic.

        Notes
        -----
        See :mod:`unmetneed.design.chisq` for the formulas and for R's
        truncation of the denominator degrees of freedom.

        Examples
        --------
        >>> import unmetneed as um
        >>> design = um.datasets.load_example_design()
        >>> test = design.chisq("sex", "help")
        >>> list(test.to_frame().columns)
        ['row', 'column', 'method', 'statistic', 'ndf', 'ddf', 'p_value']
        """
        from unmetneed.design.chisq import chisq_test

        check_choice(statistic, "statistic", ChisqStatistic)
        return chisq_test(self, row, column, statistic)

    def var(
        self,
        variable: str | Sequence[str],
        *,
        by: By = None,
        level: float = 0.95,
        na_rm: bool = False,
    ) -> Estimates:
        r"""Population variance of a numeric variable, or the covariance matrix
        of several, as R's ``svyvar``.

        Parameters
        ----------
        variable : str or list of str
            Numeric column(s). With a list of :math:`p` names the result is R's
            ``svyvar(~a + b + ...)``: the :math:`p \times p` covariance matrix,
            one row per entry (see Returns).
        by : str or list of str, optional
            Domains (R ``svyby(~y, ~d, design, svyvar)``).
        level : float, default 0.95
        na_rm : bool, default False
            Rows missing the variable leave as a domain.

        Returns
        -------
        Estimates
            One variable: one row per domain. Several: one row per domain and
            matrix entry, with columns ``variable`` and ``variable2`` (all
            :math:`p^2` entries, ``variable2`` varying fastest, so both
            ``(a, b)`` and ``(b, a)`` appear, as R's ``coef(svyvar(...))``
            lists them); ``se`` is each entry's standard error (R ``SE()``) and
            :meth:`Estimates.vcov` the covariance of the entries (R
            ``attr(, "var")``; singular, as the matrix is symmetric). With
            ``na_rm=True`` a row missing any of the variables leaves every
            entry, as R. ``Estimates.estimate.unstack()`` gives the matrix.

        Notes
        -----
        :math:`\hat S^2_d = \frac{n_d}{n_d - 1} \sum_i w_i [i\in d](y_i - \hat{\bar y}_d)^2
        / \sum_i w_i [i \in d]`, with :math:`n_d` the domain's respondents. Its
        Taylor variance is that of the mean of
        :math:`\frac{n_d}{n_d-1}(y_i - \hat{\bar y}_d)^2` (the mean held fixed,
        as R); replicate designs re-estimate the mean in every replicate.

        Examples
        --------
        >>> import unmetneed as um
        >>> design = um.datasets.load_example_design()
        >>> v = design.var("need").estimate.iloc[0]
        >>> p = design.mean("need").estimate.iloc[0]
        >>> bool(abs(v - p * (1 - p) * design.n / (design.n - 1)) < 1e-12)
        True
        >>> both = design.assign(male=lambda d: (d["sex"] == "Male").astype(float))
        >>> both.var(["need", "male"]).estimate.unstack().shape
        (2, 2)
        """
        from unmetneed.design import linear

        if not isinstance(variable, str):
            return self._var_matrix(variable, by, level, na_rm)
        values, keep, _ = self._variables(variable, "variable", na_rm)
        y = values[:, 0]
        domains = self._domains(by)
        codes, n_levels = domains.codes, domains.n_levels
        u = linear.svyvar_values(self, y, keep, codes, n_levels)
        stat = linear.mean_statistics(u[:, None], keep, codes, n_levels)[0]
        if self._replicates is None:
            return self._estimates(stat, domains, domains.levels, "variance", variable, by, level, None, keep)
        theta = stat.estimate(self._weights)
        reps = linear.replicate_svyvar(self, y, keep, codes, n_levels)
        from unmetneed.design.variance import design_covariance

        variance = design_covariance(self, theta=theta, replicates=reps, diagonal=True)

        return self._make_estimates(
            domains.levels,
            theta,
            variance,
            self._respondents(domains, keep),
            "variance",
            variable,
            by,
            level,
            vcov=lambda: design_covariance(self, theta=theta, replicates=reps),
        )

    def _var_matrix(self, variables: Sequence[str], by: By, level: float, na_rm: bool) -> Estimates:
        """``svyvar(~a + b + ...)``: the covariance matrix, one row per entry."""
        from unmetneed.design import linear
        from unmetneed.design.variance import design_covariance

        values, keep, names = self._variables(variables, "variable", na_rm)
        if len(set(names)) != len(names):
            raise DesignError(f"var() names a variable twice: {names}")
        domains = self._domains(by)
        codes, n_levels = domains.codes, domains.n_levels
        p = len(names)
        u = linear.svyvar_products(self, values, keep, codes, n_levels)
        stats = linear.mean_statistics(u, keep, codes, n_levels)
        order = linear.domain_major(n_levels, p * p)
        keys = linear.expand_pair_keys(domains.levels, names)
        respondents = np.repeat(self._respondents(domains, keep), p * p)
        if self._replicates is None:
            family = linear.estimate_family(self, stats, order)
            theta, variance, covariance = family.theta, family.variance, family.covariance
        else:
            theta = np.concatenate([s.estimate(self._weights) for s in stats])[order]
            reps = linear.replicate_svyvar_products(self, values, keep, codes, n_levels)[order]
            variance = design_covariance(self, theta=theta, replicates=reps, diagonal=True)

            def covariance() -> np.ndarray:
                return design_covariance(self, theta=theta, replicates=reps)

        return self._make_estimates(
            keys,
            theta,
            variance,
            respondents,
            "variance",
            ", ".join(names),
            by,
            level,
            vcov=covariance,
        )

    def table(self, columns: str | Sequence[str], *, na_rm: bool = True) -> pd.DataFrame:
        """Weighted counts of a cross-classification, as R's ``svytable``.

        Parameters
        ----------
        columns : str or list of str
            Category columns; every category of a Categorical is kept (zero
            counts included), otherwise the observed values.
        na_rm : bool, default True
            Leave out rows missing any of the columns (R's ``xtabs``).

        Returns
        -------
        DataFrame
            One row per combination (first column slowest): the columns and
            ``count``, the sum of the weights (on replicate designs rescaled to
            the total weight when rows are missing, as R's
            ``svytable.svyrep.design``).

        Examples
        --------
        >>> import unmetneed as um
        >>> design = um.datasets.load_example_design()
        >>> t = design.table(["sex", "help"])
        >>> list(t.columns)
        ['sex', 'help', 'count']
        >>> bool(abs(t["count"].sum() - design.weights.sum()) < 1e-6)
        True
        """
        from unmetneed.design.tables import weighted_table

        return weighted_table(self, as_column_list(columns), na_rm=na_rm)

    # -- shared machinery -------------------------------------------------------------------
    def _variance(self, stat: RatioStatistic, theta: np.ndarray, domains: Coding) -> tuple[np.ndarray, Any]:
        """Variances and a function giving the full covariance."""
        from unmetneed.design.variance import design_covariance, psu_totals

        if self._replicates is not None:
            r = self._replicates
            replicate_theta = stat.replicate_estimates(r.weights)
            # Each estimate on its own, as R's svyby: a replicate with no rows in one
            # domain is dropped for that domain only.
            variance = design_covariance(self, theta=theta, replicates=replicate_theta, diagonal=True)
            return variance, lambda: design_covariance(self, theta=theta, replicates=replicate_theta)
        s = self._structure
        totals = psu_totals(self, stat, theta)
        present = None
        if s.lonely_psu == "average" and s.lonely.any():
            counts = np.bincount(
                domains.codes * s.n_strata + s.stratum, minlength=domains.n_levels * s.n_strata
            ).reshape(domains.n_levels, s.n_strata)
            column_domain = np.arange(stat.n_columns) if stat.column_den is None else stat.column_den
            present = counts[column_domain] > 0
        variance = stratified_variance(totals, s, present)
        return variance, lambda: design_covariance(self, theta=theta, totals=totals)

    def _respondents(self, domains: Coding, keep: np.ndarray | None = None) -> np.ndarray:
        rows = self._weights != 0
        if keep is not None:
            rows = rows & keep
        return np.bincount(domains.codes[rows], minlength=domains.n_levels)

    def _estimates(
        self,
        stat: RatioStatistic,
        domains: Coding,
        keys: pd.DataFrame,
        statistic: str,
        variable: str,
        by: By,
        level: float,
        deff: np.ndarray | None,
        keep: np.ndarray | None = None,
    ) -> Estimates:
        theta = stat.estimate(self._weights)
        variance, covariance = self._variance(stat, theta, domains)
        respondents = self._respondents(domains, keep)
        per_column = stat.n_columns // domains.n_levels
        return self._make_estimates(
            keys,
            theta,
            variance,
            np.repeat(respondents, per_column),
            statistic,
            variable,
            by,
            level,
            deff=deff,
            vcov=covariance,
        )

    def _make_estimates(
        self,
        keys: pd.DataFrame,
        theta: np.ndarray,
        variance: np.ndarray,
        respondents: np.ndarray,
        statistic: str,
        variable: str,
        by: By,
        level: float,
        **options: Any,
    ) -> Estimates:
        info = {
            "statistic": statistic,
            "variable": variable,
            "by": as_column_list(by),
            "variance": self.variance_method,
            "lonely_psu": self.lonely_psu,
        }
        info.update(options.pop("info", {}))
        return Estimates(
            keys,
            theta,
            np.sqrt(variance),
            respondents,
            df=options.pop("df", self.degf),
            level=level,
            info=info,
            **options,
        )

    # -- design effects (R svymean/svytotal deff=TRUE, sampling without replacement) ----
    def _srs_variance_parts(
        self, stat: RatioStatistic, residual_ss: np.ndarray, domains: Coding
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Population variance (R ``svyvar``), respondents and weight total per column."""
        column_domain = stat.column_den if stat.column_den is not None else np.arange(stat.n_columns)
        nobs = self._respondents(domains)[column_domain].astype(np.float64)
        size = np.bincount(domains.codes, weights=self._weights, minlength=domains.n_levels)[column_domain]
        with np.errstate(divide="ignore", invalid="ignore"):
            svyvar = residual_ss / size * nobs / (nobs - 1.0)
        return svyvar, nobs, size

    def _residual_ss(self, y: np.ndarray, domains: Coding) -> tuple[np.ndarray, np.ndarray]:
        w = self._weights
        size = np.bincount(domains.codes, weights=w, minlength=domains.n_levels)
        with np.errstate(divide="ignore", invalid="ignore"):
            ybar = np.bincount(domains.codes, weights=w * y, minlength=domains.n_levels) / size
        residual = y - ybar[domains.codes]
        return np.bincount(domains.codes, weights=w * residual**2, minlength=domains.n_levels), ybar

    def _mean_deff(self, stat: RatioStatistic, y: np.ndarray, domains: Coding) -> np.ndarray:
        rss, theta = self._residual_ss(y, domains)
        svyvar, nobs, size = self._srs_variance_parts(stat, rss, domains)
        variance = self._variance(stat, theta, domains)[0]
        with np.errstate(divide="ignore", invalid="ignore"):
            return variance / (svyvar / nobs * (size - nobs) / size)

    def _total_deff(self, stat: RatioStatistic, y: np.ndarray, domains: Coding) -> np.ndarray:
        rss, _ = self._residual_ss(y, domains)
        mean_stat = RatioStatistic(
            num_column=stat.num_column,
            num=stat.num,
            n_columns=stat.n_columns,
            column_den=np.arange(stat.n_columns),
        )
        svyvar, nobs, size = self._srs_variance_parts(mean_stat, rss, domains)
        variance = self._variance(stat, stat.estimate(self._weights), domains)[0]
        with np.errstate(divide="ignore", invalid="ignore"):
            return variance / (svyvar * size**2 * (size - nobs) / (size * nobs))

    def _proportion_deff(self, stat: RatioStatistic, domains: Coding) -> np.ndarray:
        p = stat.estimate(self._weights)
        _, v = stat.totals(self._weights)
        assert v is not None  # a proportion is a ratio: it has denominator totals
        rss = v[stat.column_den] * p * (1.0 - p)
        svyvar, nobs, size = self._srs_variance_parts(stat, rss, domains)
        variance = self._variance(stat, p, domains)[0]
        with np.errstate(divide="ignore", invalid="ignore"):
            return variance / (svyvar / nobs * (size - nobs) / size)


def _diagonal_vcov(se: np.ndarray) -> np.ndarray:
    """R's ``vcov(svyquantile(...))``: squared SEs on the diagonal, unknown (NaN) elsewhere."""
    se = np.asarray(se, dtype=np.float64)
    matrix = np.full((se.size, se.size), np.nan)
    np.fill_diagonal(matrix, se**2)
    return matrix


def _check_probabilities(q: float | Sequence[float]) -> list[float]:
    if isinstance(q, (str, bytes)):
        raise DesignError(f"q={q!r}: give probabilities in [0, 1], e.g. q=0.5 for the median")
    values = [q] if isinstance(q, (int, float, np.number)) else list(q)
    out = []
    for value in values:
        if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
            raise DesignError(f"q must be numbers in [0, 1]; got {value!r}")
        if not (0.0 <= float(value) <= 1.0):
            raise DesignError(f"q={value!r} is outside [0, 1]; give probabilities, e.g. q=0.5")
        out.append(float(value))
    if not out:
        raise DesignError("q must hold at least one probability")
    return out


# -- construction checks ----------------------------------------------------------------
def check_weights(df: pd.DataFrame, column: str, *, some_positive: bool = True) -> np.ndarray:
    """The weights column as float64: finite, non-negative, below ``MAX_WEIGHT``, and (if
    ``some_positive``) not zero in every row; a :class:`DesignError` naming the rows otherwise.

    ``some_positive=False`` checks a part of the rows (a partition of a Dask DataFrame).

    Examples
    --------
    >>> import pandas as pd
    >>> from unmetneed.design.survey_design import check_weights
    >>> check_weights(pd.DataFrame({"w": [0.0, 2]}), "w").tolist()
    [0.0, 2.0]
    """
    w = numeric_column(df, column, "weights")
    negative = w < 0
    if negative.any():
        raise DesignError(
            f"weights column {column!r} has negative values in "
            f"{row_examples(negative, df.index)}; sampling weights must be >= 0"
        )
    if some_positive and not (w > 0).any():
        raise DesignError(f"weights column {column!r} is zero in every row")
    # Variances square the weights (times values): refuse weights whose squares overflow.
    huge = w > MAX_WEIGHT
    if huge.any():
        raise DesignError(
            f"weights column {column!r} has values above {MAX_WEIGHT:.0e} in "
            f"{row_examples(huge, df.index)} (largest {float(w.max()):.3g}); variances would "
            "overflow. Rescale the weights (estimates of means and ratios do not change) or "
            "check the column"
        )
    # A copy: to_numpy() of a float column may be a view of the caller's frame.
    return np.array(w, dtype=np.float64, order="C")


MAX_WEIGHT = 1e100


def _build_structure(
    df: pd.DataFrame,
    strata: str | None,
    clusters: str | None,
    fpc: str | None,
    nest: bool,
    lonely_psu: LonelyPSU,
) -> PSUStructure:
    n = len(df)
    if strata is None:
        stratum = np.zeros(n, dtype=np.intp)
        stratum_labels = pd.Index([1])
    else:
        stratum, stratum_labels = code_series(column_values(df, strata, "strata"))
    n_strata = len(stratum_labels)

    if clusters is None:
        psu = np.arange(n, dtype=np.intp)
    else:
        cluster_codes, cluster_labels = code_series(column_values(df, clusters, "clusters"))
        if nest:
            pair = stratum.astype(np.int64) * len(cluster_labels) + cluster_codes
            psu, _ = pd.factorize(pair, sort=False)
        else:
            psu, _ = pd.factorize(cluster_codes, sort=False)
            _check_clusters_nested(psu, stratum, df[clusters], stratum_labels, clusters, strata)
        psu = psu.astype(np.intp)
    n_psus = int(psu.max()) + 1
    psu_stratum = np.empty(n_psus, dtype=np.intp)
    psu_stratum[psu] = stratum
    n_psu = np.bincount(psu_stratum, minlength=n_strata)

    popsize = _popsize(df, fpc, stratum, stratum_labels, n_psu, strata)
    lonely = np.flatnonzero(n_psu == 1)
    if lonely.size:
        named = ", ".join(show(stratum_labels[h]) for h in lonely[:10])
        more = f" and {lonely.size - 10} more" if lonely.size > 10 else ""
        if lonely_psu == "fail" and strata is None:
            raise DesignError(
                f"the design has a single PSU ({len(df)} row(s){' in one cluster' if clusters else ''}), "
                "so no variance can be estimated; a design needs at least two PSUs"
            )
        if lonely_psu == "fail":
            raise DesignError(
                f"stratum {named}{more} of {strata!r} has only one PSU, so its variance "
                "cannot be estimated; choose lonely_psu='adjust', 'certainty', 'average' "
                "or 'remove' (R survey.lonely.psu), or merge the stratum with a similar one"
            )
        import warnings

        warnings.warn(
            f"stratum {named}{more} has only one PSU; handled by lonely_psu={lonely_psu!r}",
            LonelyPSUWarning,
            stacklevel=3,
        )
    return PSUStructure(
        stratum=stratum,
        psu=psu,
        psu_stratum=psu_stratum,
        n_psu=n_psu,
        popsize=popsize,
        lonely_psu=lonely_psu,
        # An unstratified design has no labels: errors name strata by code.
        stratum_labels=tuple(stratum_labels) if strata is not None else (),
    )


def _check_clusters_nested(
    psu: np.ndarray,
    stratum: np.ndarray,
    cluster_values: pd.Series,
    stratum_labels: pd.Index,
    clusters: str,
    strata: str | None,
) -> None:
    first = np.full(int(psu.max()) + 1, -1, dtype=np.intp)
    first[psu[::-1]] = stratum[::-1]
    crossing = first[psu] != stratum
    if crossing.any():
        row = int(np.flatnonzero(crossing)[0])
        label = cluster_values.iloc[row]
        raise DesignError(
            f"cluster {show(label)} of {clusters!r} appears in more than one stratum of "
            f"{strata!r} (e.g. {show(stratum_labels[first[psu[row]]])} and "
            f"{show(stratum_labels[stratum[row]])}); pass nest=True if cluster ids are only "
            "unique within strata"
        )


def _popsize(
    df: pd.DataFrame,
    fpc: str | None,
    stratum: np.ndarray,
    stratum_labels: pd.Index,
    n_psu: np.ndarray,
    strata: str | None,
) -> np.ndarray:
    n_strata = len(stratum_labels)
    if fpc is None:
        return np.full(n_strata, np.inf)
    require_columns(df, [fpc], "fpc")
    values = df[fpc].to_numpy(dtype=np.float64, na_value=np.nan)
    bad = np.isnan(values) | (values <= 0)
    if bad.any():
        raise DesignError(
            f"fpc column {fpc!r} has missing or non-positive values in "
            f"{row_examples(bad, df.index)}; give the population number of PSUs in the "
            "stratum, a sampling fraction in (0, 1], or inf for no correction"
        )
    low = np.full(n_strata, np.inf)
    high = np.full(n_strata, -np.inf)
    np.minimum.at(low, stratum, values)
    np.maximum.at(high, stratum, values)
    varies = low != high
    if varies.any():
        h = int(np.flatnonzero(varies)[0])
        raise DesignError(
            f"fpc column {fpc!r} varies within stratum {show(stratum_labels[h])} of {strata!r} "
            f"(from {low[h]:g} to {high[h]:g}); it must be constant within a stratum"
        )
    finite = np.isfinite(low)
    fractions = finite & (low <= 1)
    counts = finite & (low > 1)
    if fractions.any() and counts.any() and not np.all(low[fractions] == 1):
        raise DesignError(
            f"fpc column {fpc!r} mixes sampling fractions (<= 1) and population counts (> 1); "
            "use one or the other, as R's svydesign requires"
        )
    as_fraction = finite & ~counts.any() & (low <= 1)
    popsize = np.where(as_fraction, n_psu / np.where(as_fraction, low, 1.0), low)
    too_small = finite & (popsize < n_psu - 1e-9)
    if too_small.any():
        h = int(np.flatnonzero(too_small)[0])
        raise DesignError(
            f"fpc column {fpc!r} gives {popsize[h]:g} population PSUs in stratum "
            f"{show(stratum_labels[h])} of {strata!r}, fewer than the {n_psu[h]} sampled; "
            "fpc is the population number of PSUs in the stratum (or a sampling fraction <= 1)"
        )
    return popsize
