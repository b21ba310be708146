"""The accounting (residual) method: known total minus a known part."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from unmetneed.errors import FrameError

__all__ = ["residual_estimate"]


def residual_estimate(
    *,
    total: pd.Series | float,
    known: pd.Series | float,
    total_se: pd.Series | float | None = None,
    known_se: pd.Series | float | None = None,
    level: float = 0.9,
) -> pd.DataFrame:
    r"""Residual = total - known, with uncertainty from whichever inputs carry it.

    The method councils and ONS use for care homes: census care-home residents
    (``total``) minus council-funded residents from administrative data
    (``known``) estimates self-funded residents.

    Parameters
    ----------
    total, known : Series (indexed by area or group) or number
    total_se, known_se : Series or number, optional
        Standard errors where an input is itself an estimate (e.g. a survey
        total); ``None`` means the input is treated as exact.
    level : float, default 0.9

    Returns
    -------
    DataFrame
        ``[index], estimate, se, ci_lower, ci_upper, cv, n, flag``; ``n`` is
        missing (no respondents behind an accounting identity); ``flag`` is
        ``negative`` where known exceeds total (never clipped: check the
        inputs), ``ok`` otherwise. Inputs are assumed independent:
        :math:`se = \sqrt{se_t^2 + se_k^2}`; intervals are normal.

    Raises
    ------
    FrameError
        Indexes that do not match, negative or missing inputs.

    Examples
    --------
    >>> import pandas as pd, unmetneed as um
    >>> residents = pd.Series({"A": 1200.0, "B": 800.0})
    >>> funded = pd.Series({"A": 700.0, "B": 500.0})
    >>> um.residual_estimate(total=residents, known=funded, known_se=20.0)["estimate"].tolist()
    [500.0, 300.0]
    """
    t, k = pd.Series(total, dtype="float64") if np.ndim(total) else None, None
    if isinstance(total, pd.Series) or isinstance(known, pd.Series):
        index = total.index if isinstance(total, pd.Series) else known.index  # type: ignore[union-attr]
        t = _aligned(total, index, "total")
        k = _aligned(known, index, "known")
    else:
        index = pd.Index(["total"])
        t = pd.Series([float(total)], index=index)
        k = pd.Series([float(known)], index=index)
    for name, series in (("total", t), ("known", k)):
        if series.isna().any() or (series < 0).any():
            raise FrameError(
                f"{name} has missing or negative values: {series[series.isna() | (series < 0)].head(5).to_dict()}"
            )
    se_t = _aligned(total_se, index, "total_se") if total_se is not None else pd.Series(0.0, index=index)
    se_k = _aligned(known_se, index, "known_se") if known_se is not None else pd.Series(0.0, index=index)
    estimate = t - k
    se = np.sqrt(se_t**2 + se_k**2)
    z = stats.norm.ppf(0.5 + level / 2.0)
    out = pd.DataFrame(
        {
            "estimate": estimate,
            "se": se,
            "ci_lower": estimate - z * se,
            "ci_upper": estimate + z * se,
            "cv": np.where(estimate != 0, se / np.abs(estimate), np.nan),
            "n": pd.array([pd.NA] * len(index), dtype="Int64"),
            "flag": np.where(estimate < 0, "negative", "ok"),
        },
        index=index,
    )
    out.attrs.update(
        {
            "method": "residual (total - known)",
            "level": level,
            "interval": "normal",
            "independence": "inputs assumed independent",
        }
    )
    if index.equals(pd.Index(["total"])):
        return out
    out.index.name = index.name or "group"
    return out.reset_index()


def _aligned(value: pd.Series | float, index: pd.Index, name: str) -> pd.Series:
    if isinstance(value, pd.Series):
        missing = index.difference(value.index)
        extra = value.index.difference(index)
        if len(missing) or len(extra):
            raise FrameError(
                f"{name} does not cover the same groups: missing {list(missing[:5])}, extra {list(extra[:5])}"
            )
        return value.reindex(index).astype("float64")
    return pd.Series(float(value), index=index)
