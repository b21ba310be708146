"""`DrawEstimates`: model-based estimates carried as draws, and their summaries."""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from unmetneed._validate import show
from unmetneed.errors import FrameError

__all__ = ["DrawEstimates", "group_keys", "summarise_draws"]


def summarise_draws(values: np.ndarray, level: float) -> dict[str, np.ndarray]:
    """Posterior mean, SD, equal-tailed interval and CV over axis 0 (draws).

    One draw has no spread: its SD, interval and CV are NaN (not 0, which would
    pass every CV-based quality flag and suppression rule).
    """
    alpha = (1.0 - level) / 2.0
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.nanmean(values, axis=0) if values.size else np.array([])
        if values.shape[0] > 1:
            sd = np.nanstd(values, axis=0, ddof=1)
            # identical draws (a figure fixed to a known count) have no spread, exactly
            sd = np.where(np.nanmax(values, axis=0) == np.nanmin(values, axis=0), 0.0, sd)
            lower, upper = np.nanquantile(values, [alpha, 1.0 - alpha], axis=0)
        else:
            sd = np.full_like(mean, np.nan, dtype=float)
            lower, upper = sd.copy(), sd.copy()
        cv = np.where(mean != 0, sd / np.abs(mean), np.nan)
    return {"estimate": mean, "se": sd, "ci_lower": lower, "ci_upper": upper, "cv": cv}


class DrawEstimates:
    """Estimates carried as draws along a ``draw`` dimension.

    Parameters
    ----------
    draws : xarray.Dataset
        One data variable per quantity, each with a ``draw`` dimension and
        one dimension per ``by`` variable.
    by : list of str
        The grouping dimensions.
    respondents : Series, optional
        Respondents behind each group (indexed like the groups), for the ``n`` column.
    level : float, default 0.9
        Interval level of :meth:`summary`.

    Notes
    -----
    ``estimate`` is the posterior mean, ``se`` the posterior standard
    deviation, ``ci_lower``/``ci_upper`` equal-tailed quantiles of the draws.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> from unmetneed.mrp import DrawEstimates
    >>> ds = xr.Dataset({"count": (("draw", "area"), np.random.default_rng(0).normal(10, 1, (500, 2)))},
    ...                 coords={"area": ["A", "B"]})
    >>> DrawEstimates(ds, by=["area"]).to_frame().columns.tolist()
    ['area', 'quantity', 'estimate', 'se', 'ci_lower', 'ci_upper', 'cv', 'n']
    """

    def __init__(
        self,
        draws: xr.Dataset,
        *,
        by: Sequence[str],
        respondents: pd.Series | None = None,
        level: float = 0.9,
        attrs: dict[str, Any] | None = None,
    ) -> None:
        if "draw" not in draws.dims:
            raise FrameError("draws need a 'draw' dimension")
        self.draws = draws
        self.by = list(by)
        self.respondents = respondents
        self.level = float(level)
        self.attrs: dict[str, Any] = dict(attrs or {})

    @property
    def quantities(self) -> list[str]:
        return [str(v) for v in self.draws.data_vars]

    @property
    def n_draws(self) -> int:
        return int(self.draws.sizes["draw"])

    def summary(self, level: float | None = None) -> pd.DataFrame:
        """The long table ``[by...], quantity, estimate, se, ci_lower, ci_upper, cv, n``."""
        level = self.level if level is None else float(level)
        frames = [self._summary_rows(self.draws[q], level, quantity=q) for q in self.quantities]
        out = pd.concat(frames, ignore_index=True)
        out.attrs.update(self.attrs)
        out.attrs.update(self._summary_attrs(level))
        return out

    to_frame = summary

    def _summary_rows(self, values: xr.DataArray, level: float, **labels: str) -> pd.DataFrame:
        """One summary row per group of ``values`` (draws x by): keys, ``labels``, the statistics, n."""
        array = values.transpose("draw", *self.by)
        stats = summarise_draws(array.values.reshape(self.n_draws, -1), level)
        keys = group_keys(array, self.by)
        table = keys.assign(**labels)
        for name, column in stats.items():
            table[name] = column
        table["n"] = self._respondents_for(keys)
        return table

    def _summary_attrs(self, level: float) -> dict[str, Any]:
        """What a summary table's statistics are, for its ``attrs``."""
        return {
            "level": level,
            "interval": "equal-tailed quantiles of draws",
            "estimate": "posterior mean",
            "se": "posterior standard deviation",
            "draws": self.n_draws,
        }

    def _respondents_for(self, keys: pd.DataFrame) -> pd.Series:
        if self.respondents is None or not self.by:
            return pd.Series(pd.array([pd.NA] * len(keys), dtype="Int64"))
        index = pd.MultiIndex.from_frame(keys) if len(self.by) > 1 else pd.Index(keys[self.by[0]])
        values = self.respondents.reindex(index).fillna(0).astype("int64").to_numpy()
        return pd.Series(pd.array(values, dtype="Int64"))

    def benchmark(
        self, totals: pd.Series, *, by: str, quantity: str = "count", population: str = "population"
    ) -> DrawEstimates:
        """Ratio-adjust the draws so that groups with a known total match it.

        Parameters
        ----------
        totals : Series
            Known totals (e.g. administrative counts) indexed by the levels of ``by``.
        by : str
            One of the grouping dimensions; groups of finer crosses are scaled
            together within each level of ``by``.
        quantity : str, default "count"
            The quantity the totals refer to. Other count-like quantities are
            left alone; ``prevalence`` is recomputed from the adjusted counts
            when a ``population`` variable is present.

        Returns
        -------
        DrawEstimates
            Adjusted draws; ``attrs["benchmark"]`` holds the mean adjustment
            factor per group and its 5%-95% range over draws.

        Raises
        ------
        FrameError
            ``by`` is not a grouping dimension, totals name groups that are
            not estimated, or are negative or missing.
        """
        if by not in self.by:
            raise FrameError(f"benchmark by={by!r} must be one of the grouping dimensions {self.by}")
        if quantity not in self.draws:
            raise FrameError(f"no quantity {quantity!r} to benchmark; quantities: {self.quantities}")
        totals = pd.Series(totals, dtype="float64")
        levels = pd.Index(self.draws[by].values)
        unknown = totals.index.difference(levels)
        if len(unknown):
            raise FrameError(
                f"benchmark totals name groups of {by!r} that are not estimated: "
                f"{[show(v) for v in unknown[:8]]}"
            )
        if totals.isna().any() or (totals < 0).any():
            raise FrameError("benchmark totals must be non-missing and non-negative")
        other = [d for d in self.by if d != by]
        current = self.draws[quantity].sum(dim=other) if other else self.draws[quantity]
        target = xr.DataArray(totals.reindex(levels).to_numpy(), dims=[by], coords={by: levels})
        factor = (target / current).where(target.notnull(), 1.0)
        adjusted = self.draws.copy()
        adjusted[quantity] = self.draws[quantity] * factor
        if "prevalence" in adjusted and population in adjusted:
            adjusted["prevalence"] = adjusted[quantity] / adjusted[population]
        report = pd.DataFrame(
            {
                "total": totals,
                "mean_factor": factor.mean("draw").to_series().reindex(totals.index),
                "factor_p05": factor.quantile(0.05, dim="draw").to_series().reindex(totals.index),
                "factor_p95": factor.quantile(0.95, dim="draw").to_series().reindex(totals.index),
            }
        )
        attrs = dict(self.attrs)
        attrs["benchmark"] = report
        return type(self)(adjusted, by=self.by, respondents=self.respondents, level=self.level, attrs=attrs)

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__}: {', '.join(self.quantities)} by {self.by or 'all'}; "
            f"{self.n_draws} draws, {self.level:.0%} intervals>"
        )

    def _repr_html_(self) -> str:
        table = self.summary().head(20).to_html(index=False, border=0, float_format=lambda v: f"{v:.4g}")
        return f"<div><p>{html.escape(repr(self))}</p>{table}</div>"


def group_keys(array: xr.DataArray, by: list[str]) -> pd.DataFrame:
    if not by:
        return pd.DataFrame(index=[0])
    grids = np.meshgrid(*[array[d].values for d in by], indexing="ij")
    return pd.DataFrame({d: g.ravel() for d, g in zip(by, grids, strict=True)})
