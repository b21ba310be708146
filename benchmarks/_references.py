"""Independent numpy references used to check every tool's answer.

They are written from the textbook formulas, apart from ``unmetneed``, so a
check never depends on the library under test; they use bincount sums and
never form an n x p matrix.
"""

from __future__ import annotations

import numpy as np

import workloads as W


def domain_means(data: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Weighted domain means with stratified with-replacement Taylor SEs.

    Linearisation of the ratio mean in domain d:
    z_i = w_i 1[i in d] (y_i - ybar_d) / W_d; PSU totals z_hj; variance
    sum_h n_h/(n_h - 1) sum_j (z_hj - zbar_h)^2 (R's svyby(svymean) with
    ids=~psu, strata=~stratum, nest=TRUE, no fpc).
    """
    area, w, y = data["area"], data["w"], data["y"]
    psu, stratum = data["psu_id"], data["stratum"]
    k = int(area.max()) + 1
    n_psu = int(psu.max()) + 1
    wd = np.bincount(area, weights=w, minlength=k)
    mean = np.bincount(area, weights=w * y, minlength=k) / wd
    z = w * (y - mean[area]) / wd[area]
    zt = np.bincount(psu * k + area, weights=z, minlength=n_psu * k).reshape(n_psu, k)
    psu_stratum = np.zeros(n_psu, dtype=np.int64)
    psu_stratum[psu] = stratum
    n_strata = int(psu_stratum.max()) + 1
    n_h = np.bincount(psu_stratum, minlength=n_strata).astype(float)
    sums = np.zeros((n_strata, k))
    np.add.at(sums, psu_stratum, zt)
    dev = zt - (sums / n_h[:, None])[psu_stratum]
    ss = np.zeros((n_strata, k))
    np.add.at(ss, psu_stratum, dev**2)
    var = ((n_h / (n_h - 1.0))[:, None] * ss).sum(axis=0)
    return {"estimate": mean, "se": np.sqrt(var),
            "n": np.bincount(area, minlength=k).astype(float)}


def margin_codes(data: dict[str, np.ndarray]) -> list[tuple[str, np.ndarray, np.ndarray]]:
    return [(name, data[name].astype(np.int64), data[f"total__{name}"])
            for name in W.MARGIN_SIZES]


def margin_fit(data: dict[str, np.ndarray], weights: np.ndarray) -> float:
    """Largest relative gap between weighted sample margins and totals."""
    worst = 0.0
    for _, codes, totals in margin_codes(data):
        got = np.bincount(codes, weights=weights, minlength=totals.size)
        worst = max(worst, float(np.max(np.abs(got - totals) / totals)))
    return worst


def rake(data: dict[str, np.ndarray], tol: float = 1e-13, max_iter: int = 2000) -> np.ndarray:
    """Iterative proportional fitting (Deming & Stephan 1940).

    Stops when a whole sweep changes no adjustment factor by more than
    ``tol`` (relative), or when the sweeps stop improving: at 1e7 rows the
    rounding of the weighted sums themselves is about 1e-13, so a fixed
    margin tolerance that small may never be met.
    """
    g = np.ones_like(data["w"])
    w0 = data["w"]
    margins = margin_codes(data)
    best = np.inf
    stalled = 0
    for _ in range(max_iter):
        change = 0.0
        for _, codes, totals in margins:
            got = np.bincount(codes, weights=w0 * g, minlength=totals.size)
            factor = totals / got
            change = max(change, float(np.max(np.abs(factor - 1.0))))
            g *= factor[codes]
        if change < tol:
            return w0 * g
        if change < 0.5 * best:
            best = change
            stalled = 0
        else:
            stalled += 1
            if stalled >= 20 and change < 1e-10:
                return w0 * g
    raise RuntimeError(f"reference raking did not converge (last change {change:.1e})")


def linear_calibration(data: dict[str, np.ndarray]) -> np.ndarray:
    """Linear (GREG) calibration to the margins (Deville & Sarndal 1992).

    w_i g_i with g_i = 1 + x_i' lambda and (sum w x x') lambda = T - sum w x,
    x the indicators of every margin (one level dropped per margin after the
    first, so the system is of full rank). X'WX is assembled from pairwise
    weighted cross-tabulations.
    """
    w = data["w"]
    margins = margin_codes(data)
    blocks = []  # (codes, totals, kept levels)
    for j, (_, codes, totals) in enumerate(margins):
        keep = np.arange(totals.size) if j == 0 else np.arange(1, totals.size)
        blocks.append((codes, totals, keep))
    offsets = np.cumsum([0] + [b[2].size for b in blocks])
    p = offsets[-1]
    xtwx = np.zeros((p, p))
    rhs = np.zeros(p)
    for a, (ca, ta, ka) in enumerate(blocks):
        ka_n = ta.size
        got = np.bincount(ca, weights=w, minlength=ka_n)
        rhs[offsets[a]:offsets[a + 1]] = (ta - got)[ka]
        for b, (cb, tb, kb) in enumerate(blocks):
            kb_n = tb.size
            cross = np.bincount(ca * kb_n + cb, weights=w,
                                minlength=ka_n * kb_n).reshape(ka_n, kb_n)
            xtwx[offsets[a]:offsets[a + 1], offsets[b]:offsets[b + 1]] = cross[np.ix_(ka, kb)]
    lam = np.linalg.solve(xtwx, rhs)
    g = np.ones_like(w)
    for a, (ca, ta, ka) in enumerate(blocks):
        full = np.zeros(ta.size)
        full[ka] = lam[offsets[a]:offsets[a + 1]]
        g += full[ca]
    return w * g
