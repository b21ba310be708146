"""The replicate design's degf rank (R's ``qr(x, tol = 1e-5)$rank``, LINPACK dqrdc2's limited
pivoting) computed from the Gram matrix agrees with Gram-Schmidt on the matrix itself.

The Gram path squares the condition number of the kept columns; with nearly collinear kept
columns a dependent column's squared residual can come out far above ``tol^2`` (a review found
one in 300 such matrices: rank 52 where R and Gram-Schmidt say 51). Those columns are decided
on ``x`` itself.
"""

from __future__ import annotations

import math

import numpy as np

from unmetneed.design.replicate import _dqrdc2_rank

TOL = 1e-5


def gram_schmidt_rank(x: np.ndarray, tol: float) -> int:
    """dqrdc2's rule by classical Gram-Schmidt done twice, column by column (the reference)."""
    basis: list[np.ndarray] = []
    for j in range(x.shape[1]):
        if len(basis) >= min(x.shape):
            break
        v = x[:, j].copy()
        norm = np.linalg.norm(v)
        if norm == 0:
            continue
        if basis:
            q = np.array(basis).T
            v -= q @ (q.T @ v)
            v -= q @ (q.T @ v)
        residual = np.linalg.norm(v)
        if residual >= tol * norm:
            basis.append(v / residual)
    return len(basis)


def near_collinear(rng: np.random.Generator) -> np.ndarray:
    """Columns sharing one large component, one exactly dependent, one nearly dependent."""
    m, p = int(rng.integers(20, 200)), int(rng.integers(5, 60))
    x = rng.normal(size=(m, 1)) * 10 + 50 + rng.normal(size=(m, p)) * 10 ** rng.uniform(-7, 0)
    k = int(rng.integers(1, p))
    x[:, k] = x[:, :k] @ rng.normal(size=k)
    j = int(rng.integers(0, p))
    if j > 1:
        noise = rng.normal(size=m) * np.linalg.norm(x[:, j]) / math.sqrt(m)
        x[:, j] = x[:, 0] + x[:, 1] + noise * 10 ** rng.uniform(-6, -4)
    return x


def test_gram_rank_equals_gram_schmidt_on_near_collinear_matrices() -> None:
    rng = np.random.default_rng(0)
    mismatches = []
    for trial in range(300):
        x = near_collinear(rng)
        ours, reference = _dqrdc2_rank(x, TOL), gram_schmidt_rank(x, TOL)
        if ours != reference:
            mismatches.append((trial, ours, reference))
    assert not mismatches


def test_replicate_like_matrices() -> None:
    """Jackknife factors (full rank), duplicated and zero columns."""
    rng = np.random.default_rng(1)
    f = np.full((40, 40), 40 / 39)
    np.fill_diagonal(f, 0.0)
    w = rng.lognormal(size=(200, 1)) * f[rng.integers(0, 40, 200)]
    assert _dqrdc2_rank(w, TOL) == gram_schmidt_rank(w, TOL) == 40
    doubled = np.concatenate([w, w[:, :5], np.zeros((200, 2))], axis=1)
    assert _dqrdc2_rank(doubled, TOL) == gram_schmidt_rank(doubled, TOL) == 40
