r"""Factorisations of the PIRLS systems: dense Cholesky, or a Schur complement for many levels.

Every system PIRLS solves has the form

.. math::

    H = \begin{pmatrix} \Lambda Z^\top W Z \Lambda + I & \Lambda Z^\top W X \\
        X^\top W Z \Lambda & X^\top W X \end{pmatrix}

(the fixed-effect rows and columns only for the joint (u, beta) system). A
grouping factor never meets itself in a cell except on its own level, so the
block of :math:`Z^\top W Z` for one factor is *diagonal*. With one large
factor (6,856 MSOAs) and a few small ones (councils, age bands, ethnic
groups, fixed effects) the Hessian is, in the order (large factor | rest),

.. math::

    H = \begin{pmatrix} D & B \\ B^\top & C \end{pmatrix}, \qquad
    S = C - B^\top D^{-1} B,

with :math:`D` diagonal, :math:`B` sparse (a level of the large factor meets
only the few levels of the others it shares cells with) and :math:`C`, :math:`S`
small and dense. Then

* :math:`\log\lvert H\rvert = \sum_i \log d_i + \log\lvert S\rvert`;
* :math:`H^{-1}v`: :math:`y_2 = S^{-1}(v_2 - B^\top D^{-1}v_1)`,
  :math:`y_1 = D^{-1}(v_1 - B y_2)`;
* a draw from :math:`N(0, H^{-1})`: :math:`x = L^{-\top}\varepsilon` for the
  block Cholesky factor :math:`L = \begin{pmatrix} D^{1/2} & 0 \\ B^\top D^{-1/2}
  & L_S \end{pmatrix}`, i.e. :math:`x_2 = L_S^{-\top}\varepsilon_2`,
  :math:`x_1 = D^{-1/2}\varepsilon_1 - D^{-1}B x_2`;
* the entries of :math:`H^{-1}` on the sparsity pattern of :math:`H` (all
  the exact gradient needs): :math:`S^{-1}`, :math:`-D^{-1}BS^{-1}` on the
  pattern of :math:`B`, and the diagonal :math:`d_i^{-1} + (D^{-1}BS^{-1}B^\top
  D^{-1})_{ii}`.

The cost is linear in the number of levels of the large factor (times the
square of the number of other levels a level shares cells with), against the
cube of all levels for the dense factor. This is the elimination order a
sparse Cholesky (CHOLMOD) would choose for this pattern; doing it explicitly
needs no system library and gives the selected inverse for free.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import linalg, sparse

__all__ = ["DenseFactor", "SchurFactor", "SchurLayout"]


class DenseFactor:
    """Dense lower Cholesky factor :math:`L L^\\top = H`."""

    kind = "dense"

    def __init__(self, matrix: np.ndarray) -> None:
        self.cholesky = linalg.cholesky(matrix, lower=True, check_finite=False)
        self._inverse: np.ndarray | None = None

    @property
    def size(self) -> int:
        return self.cholesky.shape[0]

    @property
    def logdet(self) -> float:
        return 2.0 * float(np.sum(np.log(np.diag(self.cholesky))))

    def solve(self, rhs: np.ndarray) -> np.ndarray:
        """:math:`H^{-1}` rhs."""
        return linalg.cho_solve((self.cholesky, True), rhs, check_finite=False)

    def sample(self, eps: np.ndarray) -> np.ndarray:
        """:math:`L^{-\\top}\\varepsilon` for standard normal columns: draws from :math:`N(0, H^{-1})`."""
        return linalg.solve_triangular(self.cholesky.T, eps, lower=False, check_finite=False)

    def inverse(self) -> np.ndarray:
        if self._inverse is None:
            self._inverse = self.solve(np.eye(self.size))
        return self._inverse

    def inverse_diagonal(self) -> np.ndarray:
        return np.diag(self.inverse()).copy()

    def inverse_block(self, index: np.ndarray) -> np.ndarray:
        """:math:`(H^{-1})_{II}` for the columns ``index``."""
        return self.inverse()[np.ix_(index, index)]

    def dense_cholesky(self) -> np.ndarray:
        return self.cholesky


@dataclass(frozen=True, eq=False)
class SchurLayout:
    """Where each column of a system goes: the large factor's levels, then the rest.

    ``big`` are the system's columns of the large factor (``n_big`` of them,
    consecutive), ``rest`` the other columns in their order. The sparse block
    :math:`B` (``n_big`` x ``len(rest)``) has its nonzeros at ``(rows, cols)``
    (sorted by row, then column: CSR order, ``indptr``); ``positions[k]`` maps
    every cell to its nonzero for the k-th other column block (each small
    factor, then each fixed effect), so a cross-tabulation is one ``bincount``.
    """

    size: int
    big: slice
    rest: np.ndarray
    rows: np.ndarray
    cols: np.ndarray
    indptr: np.ndarray
    positions: tuple[np.ndarray, ...]

    @property
    def n_big(self) -> int:
        return self.big.stop - self.big.start

    @property
    def nnz(self) -> int:
        return self.rows.size

    @classmethod
    def build(cls, size: int, big: slice, rest: np.ndarray, big_code: np.ndarray,
              rest_columns: list[np.ndarray]) -> SchurLayout:
        """``rest_columns[k]``: each cell's position in ``rest`` for the k-th block."""
        n_big = big.stop - big.start
        s = rest.size
        keys = [big_code.astype(np.int64) * s + col for col in rest_columns]
        unique, inverse = np.unique(np.concatenate(keys), return_inverse=True)
        rows, cols = np.divmod(unique, s)
        n_cells = big_code.size
        positions = tuple(inverse[k * n_cells:(k + 1) * n_cells] for k in range(len(keys)))
        counts = np.bincount(rows, minlength=n_big)
        indptr = np.concatenate([[0], np.cumsum(counts)])
        return cls(size, big, rest, rows, cols.astype(np.int64), indptr, positions)


class SchurFactor:
    """:math:`H = [[D, B], [B^\\top, C]]` with :math:`D` diagonal, factorised through :math:`S`.

    See the module notes for the algebra. ``d`` is the diagonal of the large
    factor's block, ``values`` the nonzeros of :math:`B` in ``layout`` order,
    ``dense`` the block :math:`C` of the other columns.
    """

    kind = "schur"

    def __init__(self, layout: SchurLayout, d: np.ndarray, values: np.ndarray, dense: np.ndarray) -> None:
        self.layout = layout
        self.d = d
        self.values = values
        self.block_c = dense
        n_big, s = layout.n_big, layout.rest.size
        self.b = sparse.csr_matrix((values, layout.cols, layout.indptr), shape=(n_big, s))
        # M = D^-1 B
        self.m = sparse.csr_matrix((values / d[layout.rows], layout.cols, layout.indptr), shape=(n_big, s))
        schur = dense - (self.b.T @ self.m).toarray()
        self.schur_cholesky = linalg.cholesky(schur, lower=True, check_finite=False)
        self._schur_inverse: np.ndarray | None = None
        self._selected: tuple[np.ndarray, np.ndarray] | None = None

    @property
    def size(self) -> int:
        return self.layout.size

    @property
    def logdet(self) -> float:
        return float(np.sum(np.log(self.d))) + 2.0 * float(np.sum(np.log(np.diag(self.schur_cholesky))))

    def _split(self, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return v[self.layout.big], v[self.layout.rest]

    def _join(self, x1: np.ndarray, x2: np.ndarray) -> np.ndarray:
        out = np.empty((self.size, *x1.shape[1:]))
        out[self.layout.big] = x1
        out[self.layout.rest] = x2
        return out

    def solve(self, rhs: np.ndarray) -> np.ndarray:
        """:math:`H^{-1}` rhs (a vector or columns)."""
        v1, v2 = self._split(np.asarray(rhs, dtype=float))
        y2 = linalg.cho_solve((self.schur_cholesky, True), v2 - self.m.T @ v1, check_finite=False)
        d = self.d if v1.ndim == 1 else self.d[:, None]
        y1 = v1 / d - self.m @ y2
        return self._join(y1, y2)

    def sample(self, eps: np.ndarray) -> np.ndarray:
        """:math:`L^{-\\top}\\varepsilon` for the block factor :math:`L`: draws from :math:`N(0, H^{-1})`."""
        e1, e2 = self._split(eps)
        x2 = linalg.solve_triangular(self.schur_cholesky.T, e2, lower=False, check_finite=False)
        root = np.sqrt(self.d) if e1.ndim == 1 else np.sqrt(self.d)[:, None]
        x1 = e1 / root - self.m @ x2
        return self._join(x1, x2)

    def schur_inverse(self) -> np.ndarray:
        """:math:`S^{-1}`, the block of :math:`H^{-1}` for the ``rest`` columns."""
        if self._schur_inverse is None:
            s = self.layout.rest.size
            self._schur_inverse = linalg.cho_solve((self.schur_cholesky, True), np.eye(s), check_finite=False)
        return self._schur_inverse

    def selected_inverse(self) -> tuple[np.ndarray, np.ndarray]:
        r"""Diagonal of the large factor's block of :math:`H^{-1}`, and the cross block on B's pattern.

        With :math:`P = MS^{-1}` (sparse times dense: about nnz(B) x len(rest)
        operations), the cross block is :math:`-P` and the diagonal
        :math:`d_i^{-1} + \sum_k P_{ik} M_{ik}`, both read on B's pattern.
        """
        if self._selected is None:
            lay = self.layout
            p_pattern = (self.m @ self.schur_inverse())[lay.rows, lay.cols]
            diag = 1.0 / self.d + np.bincount(lay.rows, weights=p_pattern * self.m.data, minlength=lay.n_big)
            self._selected = (diag, -p_pattern)
        return self._selected

    def inverse_diagonal(self) -> np.ndarray:
        diag_big, _ = self.selected_inverse()
        return self._join(diag_big, np.diag(self.schur_inverse()).copy())

    def inverse_block(self, index: np.ndarray) -> np.ndarray:
        """:math:`(H^{-1})_{II}` for the columns ``index`` (cheap when none is of the large factor)."""
        index = np.asarray(index)
        where = np.full(self.size, -1)
        where[self.layout.rest] = np.arange(self.layout.rest.size)
        if np.all(where[index] >= 0):
            pos = where[index]
            return self.schur_inverse()[np.ix_(pos, pos)]
        unit = np.zeros((self.size, index.size))
        unit[index, np.arange(index.size)] = 1.0
        return self.solve(unit)[index]

    def dense(self) -> np.ndarray:
        """:math:`H` as a dense matrix (tests and small problems only)."""
        lay = self.layout
        out = np.zeros((self.size, self.size))
        big = np.arange(lay.big.start, lay.big.stop)
        out[big, big] = self.d
        b = self.b.toarray()
        out[np.ix_(big, lay.rest)] = b
        out[np.ix_(lay.rest, big)] = b.T
        out[np.ix_(lay.rest, lay.rest)] = self.block_c
        return out

    def dense_cholesky(self) -> np.ndarray:
        """Dense Cholesky of :math:`H` in its own column order: q^3 work, for old callers only."""
        return linalg.cholesky(self.dense(), lower=True, check_finite=False)
