"""Smoothing direct sampling variances with a generalised variance function."""

from __future__ import annotations

import numpy as np
import pandas as pd

from unmetneed._validate import require_columns, row_examples
from unmetneed.errors import ModelError

__all__ = ["smooth_variances"]


def smooth_variances(data: pd.DataFrame, variance: str, n: str) -> pd.Series:
    r"""Smooth direct sampling variances by a log-linear function of sample size.

    Fay-Herriot models treat the sampling variances :math:`\psi_i` as known,
    but direct variance estimates from small samples are themselves noisy (and
    0 for a proportion estimated as 0 or 1). A generalised variance function
    (GVF) replaces them by a fitted curve in the sample size:

    .. math::

        \log\hat\psi_i = a + b\log n_i + \varepsilon_i, \qquad
        \tilde\psi_i = \exp(\hat a + \hat b\log n_i)\cdot
        \frac1{k}\sum_{j}\exp(\hat\varepsilon_j),

    fitted by ordinary least squares over the :math:`k` areas with
    :math:`\hat\psi_j > 0`, with Duan's (1983) smearing factor so that the
    smoothed variances are not biased downwards on the original scale. For a
    simple random sample :math:`b \approx -1`.

    Parameters
    ----------
    data : DataFrame
        One row per area.
    variance : str
        Column of direct variance estimates (>= 0 or NaN). Rows with a
        positive variance fit the curve.
    n : str
        Column of sample sizes (respondents), > 0 in every row.

    Returns
    -------
    Series
        Smoothed variances, one per row of ``data`` (same index), named
        ``"<variance>_gvf"``; also for rows whose variance is 0 or NaN. The
        fitted ``a``, ``b``, ``smearing``, ``r_squared`` and ``areas_used`` are
        in ``attrs``.

    Raises
    ------
    MissingColumnError
        A named column is not in ``data``.
    ModelError
        Sample sizes missing or <= 0, negative or infinite variances, or
        fewer than 3 areas with a positive variance (or all with the same
        sample size).

    Notes
    -----
    Give the smoothed column as ``variance=`` to :class:`FayHerriot`, keeping
    it NaN where the direct estimate is NaN (an area without a direct estimate
    is predicted synthetically and must not carry a variance). Other GVF forms
    (e.g. through :math:`p(1-p)/n` with a design effect) suit some surveys
    better; this one needs only the sample sizes.

    References
    ----------
    Duan, N. (1983). Smearing estimate: a nonparametric retransformation
    method. *JASA* 78, 605-610.

    Wolter, K. M. (2007). *Introduction to Variance Estimation*, 2nd ed.,
    chapter 7 (generalized variance functions). Springer.

    Examples
    --------
    >>> import pandas as pd
    >>> from unmetneed.sae import smooth_variances
    >>> data = pd.DataFrame({"v": [0.21, 0.09, 0.0, 0.05, 0.026],
    ...                      "n": [10, 25, 40, 50, 100]})
    >>> smoothed = smooth_variances(data, "v", "n")
    >>> bool((smoothed > 0).all())
    True
    >>> round(smoothed.attrs["b"], 2)
    -0.9
    """
    if not isinstance(data, pd.DataFrame) or len(data) == 0:
        raise ModelError("data must be a non-empty pandas DataFrame with one row per area")
    require_columns(data, [variance, n], "variance or sample size")
    v = pd.to_numeric(data[variance], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    size = pd.to_numeric(data[n], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    bad = ~np.isfinite(size) | (size <= 0)
    if bad.any():
        raise ModelError(
            f"sample sizes {n!r} must be > 0 in every row; not so in {row_examples(bad, data.index)}"
        )
    bad = (v < 0) | np.isinf(v)
    if bad.any():
        raise ModelError(
            f"variances {variance!r} must be >= 0 or NaN; not so in {row_examples(bad, data.index)}"
        )
    use = np.isfinite(v) & (v > 0)
    log_n = np.log(size)
    if use.sum() < 3 or np.ptp(log_n[use]) == 0:
        raise ModelError(
            f"a generalised variance function needs at least 3 areas with a positive variance "
            f"{variance!r} and different sample sizes; found {int(use.sum())}"
        )
    design = np.column_stack([np.ones(int(use.sum())), log_n[use]])
    log_v = np.log(v[use])
    (a, b), *_ = np.linalg.lstsq(design, log_v, rcond=None)
    resid = log_v - design @ np.array([a, b])
    smearing = float(np.mean(np.exp(resid)))
    total = float(np.sum((log_v - log_v.mean()) ** 2))
    r_squared = 1.0 - float(resid @ resid) / total if total > 0 else 1.0
    out = pd.Series(np.exp(a + b * log_n) * smearing, index=data.index, name=f"{variance}_gvf")
    out.attrs.update(
        {
            "model": "log(variance) = a + b log(n), OLS; Duan smearing",
            "a": float(a),
            "b": float(b),
            "smearing": smearing,
            "r_squared": r_squared,
            "areas_used": int(use.sum()),
        }
    )
    return out
