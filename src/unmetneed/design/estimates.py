"""The result of a design-based estimator: one table, several views."""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from unmetneed._immutable import FrozenAfterInit
from unmetneed._immutable import readonly as _frozen_array
from unmetneed._validate import check_level
from unmetneed.errors import DesignError

__all__ = ["Estimates"]

RESULT_COLUMNS = ["estimate", "se", "ci_lower", "ci_upper", "cv", "n"]


class Estimates(FrozenAfterInit):
    """Point estimates with standard errors, intervals, CVs and respondent counts.

    Built by :class:`~unmetneed.SurveyDesign` estimators; not usually made by
    hand. Every view (``to_frame``, ``summary``, ``repr``, the notebook HTML)
    comes from the same table.

    Parameters
    ----------
    keys : DataFrame
        One row per estimate: the ``by`` columns and, for a proportion, the
        category column. May have no columns (a single overall estimate).
    estimate, se : ndarray
        Point estimates and standard errors.
    n : ndarray of int
        Respondents (rows with non-zero weight) behind each estimate.
    df : float
        Degrees of freedom for the t intervals (the design's ``degf``).
    level : float
        Default interval level.
    info : mapping
        Provenance: statistic, variable, by, variance method and options.
    deff : ndarray, optional
        Design effects (as R ``svymean(..., deff=TRUE)``).

    Examples
    --------
    >>> import unmetneed as um
    >>> design = um.datasets.load_example_design()
    >>> est = design.mean("need")
    >>> list(est.to_frame().columns)
    ['estimate', 'se', 'ci_lower', 'ci_upper', 'cv', 'n']
    """

    def __init__(
        self,
        keys: pd.DataFrame,
        estimate: np.ndarray,
        se: np.ndarray,
        n: np.ndarray,
        *,
        df: float,
        level: float,
        info: Mapping[str, Any],
        deff: np.ndarray | None = None,
        vcov: np.ndarray | Callable[[], np.ndarray] | None = None,
        bounds: tuple[np.ndarray, np.ndarray] | None = None,
        extra: Mapping[str, np.ndarray] | None = None,
    ) -> None:
        check_level(level)
        # Immutable: own read-only copies of every array; views return copies.
        self._keys = keys.reset_index(drop=True).copy(deep=True)
        self._estimate = _frozen_array(estimate, np.float64)
        self._se = _frozen_array(se, np.float64)
        self._n = _frozen_array(n, np.int64)
        self._deff = None if deff is None else _frozen_array(deff, np.float64)
        self.df = float(df)
        self.level = float(level)
        self.info: Mapping[str, Any] = MappingProxyType(dict(info))
        self._vcov_source = vcov
        self._extra = MappingProxyType({k: _frozen_array(v) for k, v in (extra or {}).items()})
        self._bounds = (
            None
            if bounds is None
            else (_frozen_array(bounds[0], np.float64), _frozen_array(bounds[1], np.float64))
        )
        self._vcov: np.ndarray | None = None
        self._freeze()

    # -- accessors -----------------------------------------------------------
    def _index(self) -> pd.Index:
        if self._keys.shape[1] == 0:
            return pd.Index([self.info.get("variable", "estimate")], name="variable")
        if self._keys.shape[1] == 1:
            return pd.Index(self._keys.iloc[:, 0], name=self._keys.columns[0])
        return pd.MultiIndex.from_frame(self._keys)

    @property
    def estimate(self) -> pd.Series:
        """Point estimates, indexed by the ``by`` (and category) values."""
        return pd.Series(self._estimate, index=self._index(), name="estimate", copy=True)

    @property
    def se(self) -> pd.Series:
        """Standard errors."""
        return pd.Series(self._se, index=self._index(), name="se", copy=True)

    @property
    def variance(self) -> pd.Series:
        """Variances (squared standard errors)."""
        return pd.Series(self._se**2, index=self._index(), name="variance")

    @property
    def cv(self) -> pd.Series:
        """Coefficients of variation, ``se / |estimate|`` (NaN for a zero estimate)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            cv = np.where(self._estimate != 0, self._se / np.abs(self._estimate), np.nan)
        return pd.Series(cv, index=self._index(), name="cv")

    @property
    def n(self) -> pd.Series:
        """Respondents behind each estimate."""
        return pd.Series(self._n, index=self._index(), name="n", copy=True)

    @property
    def deff(self) -> pd.Series:
        """Design effects; only when the estimator was called with ``deff=True``."""
        if self._deff is None:
            raise DesignError("design effects were not computed; call the estimator with deff=True")
        return pd.Series(self._deff, index=self._index(), name="deff", copy=True)

    def vcov(self) -> pd.DataFrame:
        """Covariance matrix of all the estimates (R ``vcov(svyby(..., covmat=TRUE))``).

        Rows and columns follow the rows of :meth:`to_frame`. Estimates of
        different domains are correlated through the PSUs they share; the
        matrix accounts for it (linearisation over the whole design, or the
        replicates).

        Raises
        ------
        DesignError
            The estimator that made this result keeps no covariance.

        Examples
        --------
        >>> import unmetneed as um
        >>> design = um.datasets.load_example_design()
        >>> est = design.mean("need", by="sex")
        >>> v = est.vcov()
        >>> bool(abs(v.iloc[0, 0] - est.se.iloc[0] ** 2) < 1e-15)
        True
        """
        return pd.DataFrame(self._vcov_matrix().copy(), index=self._index(), columns=self._index())

    def _vcov_matrix(self) -> np.ndarray:
        if self._vcov is None:
            source = self._vcov_source
            if source is None:
                raise DesignError(
                    "this result keeps no covariance matrix; it comes from an estimator "
                    "that reports standard errors only"
                )
            matrix = source() if callable(source) else source
            frozen = _frozen_array(np.reshape(matrix, (len(self), len(self))), np.float64)
            # The one lazily filled field: computed once, then read-only.
            object.__setattr__(self, "_vcov", frozen)
            return frozen
        return self._vcov

    def contrast(
        self,
        contrasts: Mapping[str, Mapping[Any, float]] | np.ndarray | Any,
        *,
        level: float | None = None,
    ) -> Estimates:
        r"""Linear combinations of the estimates, as R's ``svycontrast``.

        Parameters
        ----------
        contrasts : dict, 1-D or 2-D array
            ``{"name": {row: coefficient, ...}, ...}`` where ``row`` is a label
            of :attr:`estimate`'s index (a tuple for several key columns);
            rows not named get 0. A 1-D array of one coefficient per row is one
            contrast; a 2-D array has one contrast per row.
        level : float, optional
            Interval level (default: this result's).

        Returns
        -------
        Estimates
            One row per contrast (column ``contrast``); ``vcov()`` gives their
            covariance :math:`C V C^	op`; ``n`` counts the respondents behind
            the rows with a non-zero coefficient once: the ``by`` domains are
            disjoint, so their respondents add up, while rows of one domain
            (several variables, several quantiles) share theirs, which count
            once (the largest ``n`` among them: with ``na_rm=True`` the
            variables' respondents can differ, and the union may be larger).
            R's ``svycontrast`` carries no sample size.

        Notes
        -----
        :math:`\hat\gamma = C\hat	heta`, :math:`\hat V(\hat\gamma) = C \hat V C^	op`
        with :math:`\hat V` from :meth:`vcov`. Degrees of freedom are kept.

        Raises
        ------
        DesignError
            A named row does not exist, or the array has the wrong length.

        Examples
        --------
        >>> import unmetneed as um
        >>> design = um.datasets.load_example_design()
        >>> est = design.mean("need", by="sex")
        >>> diff = est.contrast({"F - M": {"Female": 1, "Male": -1}})
        >>> diff.to_frame()["contrast"].tolist()
        ['F - M']
        """
        matrix, names = self._contrast_matrix(contrasts)
        cov = self._vcov_matrix()
        estimate = matrix @ self._estimate
        # Only rows with a non-zero coefficient enter (a covariance not estimated between
        # rows, NaN as for quantiles, must not spoil a contrast that leaves one of them out).
        used = np.flatnonzero(np.any(matrix != 0, axis=0))
        gamma_cov = matrix[:, used] @ cov[np.ix_(used, used)] @ matrix[:, used].T
        n = self._contrast_n(matrix)
        info = dict(self.info)
        info.update({"statistic": "contrast", "of": self.info.get("statistic")})
        return Estimates(
            pd.DataFrame({"contrast": names}),
            estimate,
            np.sqrt(np.maximum(np.diag(gamma_cov), 0.0)),
            n,
            df=self.df,
            level=self.level if level is None else level,
            info=info,
            vcov=gamma_cov,
        )

    def _contrast_n(self, matrix: np.ndarray) -> np.ndarray:
        """Respondents behind each contrast, each domain counted once (see :meth:`contrast`)."""
        by = self.info.get("by")
        by_columns = [by] if isinstance(by, str) else list(by or [])
        by_columns = [c for c in by_columns if c in self._keys.columns]
        if by_columns:
            domain = self._keys.groupby(by_columns, sort=False, dropna=False).ngroup().to_numpy()
        else:
            domain = np.zeros(len(self._n), dtype=np.int64)
        n_domains = int(domain.max()) + 1 if domain.size else 0
        out = np.zeros(matrix.shape[0], dtype=np.int64)
        for r in range(matrix.shape[0]):
            involved = np.abs(matrix[r]) > 0
            largest = np.zeros(n_domains, dtype=np.int64)
            np.maximum.at(largest, domain[involved], self._n[involved])
            out[r] = int(largest.sum())
        return out

    def _contrast_matrix(self, contrasts: Any) -> tuple[np.ndarray, list[str]]:
        k = len(self)
        if isinstance(contrasts, Mapping):
            index = self._index()
            labels = list(index)
            names = [str(name) for name in contrasts]
            matrix = np.zeros((len(names), k))
            for r, (name, coefficients) in enumerate(contrasts.items()):
                if not isinstance(coefficients, Mapping):
                    raise DesignError(
                        f"contrast {name!r} must map row labels to coefficients, "
                        f"e.g. {{{labels[0]!r}: 1}}; got {type(coefficients).__name__}"
                    )
                for label, value in coefficients.items():
                    hits = [i for i, lab in enumerate(labels) if lab == label]
                    if not hits:
                        shown = ", ".join(repr(x) for x in labels[:10])
                        raise DesignError(
                            f"contrast {name!r} names row {label!r}, which is not among the "
                            f"estimates' rows ({shown}{', ...' if k > 10 else ''})"
                        )
                    matrix[r, hits[0]] = float(value)
            return matrix, names
        array = np.asarray(contrasts, dtype=np.float64)
        if array.ndim == 1:
            array = array[None, :]
        if array.ndim != 2 or array.shape[1] != k:
            raise DesignError(
                f"contrast coefficients must have one value per estimate ({k}); "
                f"got shape {np.asarray(contrasts).shape}"
            )
        names = [f"contrast{i + 1}" for i in range(array.shape[0])] if array.shape[0] > 1 else ["contrast"]
        return array, names

    def ci(self, level: float | None = None) -> pd.DataFrame:
        """t intervals ``estimate +/- t(df, (1+level)/2) * se``.

        The degrees of freedom are the design's (``df`` in the result's
        ``attrs``), never silently infinite.
        """
        level = self.level if level is None else level
        check_level(level)
        if self._bounds is not None:
            if level != self.level:
                raise DesignError(
                    f"these intervals ({self.info.get('interval')}) were computed at "
                    f"level={self.level}; call the estimator again with level={level}"
                )
            out = pd.DataFrame(
                {"ci_lower": self._bounds[0].copy(), "ci_upper": self._bounds[1].copy()}, index=self._index()
            )
            out.attrs.update({"level": level, "df": self.df, "distribution": self.info.get("interval")})
            return out
        if self.df > 0:
            quantile = stats.t.ppf(0.5 + level / 2.0, self.df)
        else:
            quantile = np.nan
        half = quantile * self._se
        out = pd.DataFrame(
            {"ci_lower": self._estimate - half, "ci_upper": self._estimate + half},
            index=self._index(),
        )
        out.attrs.update({"level": level, "df": self.df, "distribution": "t"})
        return out

    def to_frame(self, level: float | None = None) -> pd.DataFrame:
        """The tidy table: ``[by...], estimate, se, ci_lower, ci_upper, cv, n`` (``deff``)."""
        level = self.level if level is None else level
        intervals = self.ci(level)
        table = self._keys.copy()
        table["estimate"] = self._estimate.copy()
        table["se"] = self._se.copy()
        table["ci_lower"] = intervals["ci_lower"].to_numpy()
        table["ci_upper"] = intervals["ci_upper"].to_numpy()
        table["cv"] = self.cv.to_numpy()
        table["n"] = self._n.copy()
        if self._deff is not None:
            table["deff"] = self._deff.copy()
        for name, values in self._extra.items():
            table[name] = values.copy()
        table.attrs.update(dict(self.info))
        table.attrs.update({"level": level, "df": self.df, "interval": self.info.get("interval", "t")})
        return table

    # -- display ---------------------------------------------------------------
    def _title(self) -> str:
        info = self.info
        by = info.get("by") or []
        text = f"{info.get('statistic', 'estimate')} of {info.get('variable', '?')}"
        if by:
            text += f" by {', '.join(by)}"
        return text

    def _footer(self) -> str:
        kind = self.info.get("interval", "t")
        return (
            f"variance: {self.info.get('variance', '?')}; "
            f"{self.level:.0%} {kind} intervals on {self.df:g} degrees of freedom"
        )

    def summary(self) -> str:
        """A plain-text table with a title and the variance method."""
        with pd.option_context("display.max_rows", 60, "display.width", 120):
            body = self.to_frame().to_string(index=False, float_format=_fmt)
        return f"{self._title()}\n{body}\n{self._footer()}"

    def __repr__(self) -> str:
        return f"<Estimates: {self._title()}>\n" + self.summary().split("\n", 1)[1]

    def _repr_html_(self) -> str:
        table = self.to_frame().to_html(index=False, float_format=_fmt, border=0)
        return (
            f"<div><strong>{html.escape(self._title())}</strong>{table}"
            f"<small>{html.escape(self._footer())}</small></div>"
        )

    def __len__(self) -> int:
        return self._estimate.size


def _fmt(value: float) -> str:
    return f"{value:.6g}"
