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
from scipy.linalg import lapack

__all__ = ["DenseFactor", "SchurFactor", "SchurLayout"]


def cholesky_lower(matrix: np.ndarray) -> np.ndarray:
    """``scipy.linalg.cholesky(matrix, lower=True, check_finite=False)``: the same LAPACK call
    (``dpotrf``), without the wrapper's checks and batching, which cost as much as factoring
    the few-hundred-column systems PIRLS solves thousands of times per fit."""
    if matrix.size == 0 or matrix.dtype != np.float64:
        return linalg.cholesky(matrix, lower=True, check_finite=False)
    factor, info = lapack.dpotrf(matrix, lower=1, clean=1)
    if info > 0:
        raise linalg.LinAlgError(f"{info}-th leading minor of the array is not positive definite")
    if info < 0:
        raise ValueError(f'LAPACK reported an illegal value in {-info}-th argument on entry to "POTRF".')
    return np.asarray(factor)


def cho_solve_lower(cholesky: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """``scipy.linalg.cho_solve((cholesky, True), rhs, check_finite=False)`` through ``dpotrs``."""
    rhs = np.asarray(rhs)
    if rhs.size == 0 or rhs.dtype != np.float64 or cholesky.dtype != np.float64:
        return linalg.cho_solve((cholesky, True), rhs, check_finite=False)
    solution, info = lapack.dpotrs(cholesky, rhs, lower=1)
    if info != 0:
        raise ValueError(f"illegal value in {-info}th argument of internal potrs")
    return np.asarray(solution)


class DenseFactor:
    """Dense lower Cholesky factor :math:`L L^\\top = H`."""

    kind = "dense"

    def __init__(self, matrix: np.ndarray) -> None:
        self.cholesky = cholesky_lower(matrix)
        self._inverse: np.ndarray | None = None

    @property
    def size(self) -> int:
        return self.cholesky.shape[0]

    @property
    def logdet(self) -> float:
        return 2.0 * float(np.sum(np.log(np.diag(self.cholesky))))

    def solve(self, rhs: np.ndarray) -> np.ndarray:
        """:math:`H^{-1}` rhs."""
        return cho_solve_lower(self.cholesky, rhs)

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


# Columns of factors with at most this many levels (and the fixed effects) are held
# densely in B: most levels of the large factor meet most of their levels, and a dense
# product B_n' D^-1 B_n is one BLAS call. Wider factors (councils) stay sparse.
NARROW_LEVELS = 64


@dataclass(frozen=True, eq=False)
class SchurLayout:
    """Where each column of a system goes: the large factor's levels, then the rest.

    ``big`` are the system's columns of the large factor (``n_big`` of them,
    consecutive), ``rest`` the other columns in their order. The sparse block
    :math:`B` (``n_big`` x ``len(rest)``) has its nonzeros at ``(rows, cols)``
    (sorted by row, then column: CSR order, ``indptr``); ``collect`` (nonzeros x
    cells, sparse) sums cell weights into them, ``positions[k]`` is each cell's
    nonzero for the k-th other column block (each small factor, then each fixed
    effect). ``narrow`` marks the rest columns held densely (see NARROW_LEVELS);
    ``wide_pairs`` lists, row by row, the pairs of nonzeros in wide columns.
    """

    size: int
    big: slice
    rest: np.ndarray
    rows: np.ndarray
    cols: np.ndarray
    indptr: np.ndarray
    positions: tuple[np.ndarray, ...]
    collect: sparse.csr_matrix
    narrow: np.ndarray  # (len(rest),) bool
    narrow_entry: np.ndarray  # nonzeros in narrow columns
    narrow_flat: np.ndarray  # their flat index in the (n_big x n_narrow) dense block
    wide_entry: np.ndarray  # nonzeros in wide columns (CSR order)
    wide_indptr: np.ndarray
    wide_cols: np.ndarray  # their index among the wide columns
    wide_pairs: tuple[np.ndarray, np.ndarray]  # nonzero pairs (wide x wide, same row)
    narrow_rows: np.ndarray  # row (large-factor level) of each narrow nonzero
    wide_rows: np.ndarray  # row of each wide nonzero
    narrow_index: np.ndarray  # positions in rest of the narrow columns
    wide_index: np.ndarray  # and of the wide ones

    @property
    def n_big(self) -> int:
        return self.big.stop - self.big.start

    @property
    def nnz(self) -> int:
        return self.rows.size

    @classmethod
    def build(
        cls,
        size: int,
        big: slice,
        rest: np.ndarray,
        big_code: np.ndarray,
        rest_columns: list[np.ndarray],
        cell_values: list[np.ndarray | None],
        narrow: np.ndarray,
    ) -> SchurLayout:
        """``rest_columns[k]``: each cell's position in ``rest`` for the k-th block;
        ``cell_values[k]``: what a cell adds there per unit weight (None: 1)."""
        n_big = big.stop - big.start
        s = rest.size
        n_cells = big_code.size
        keys = [big_code.astype(np.int64) * s + col for col in rest_columns]
        # No other column (a single random intercept, u system): B is empty.
        unique, inverse = np.unique(
            np.concatenate(keys) if keys else np.zeros(0, np.int64), return_inverse=True
        )
        rows, cols = np.divmod(unique, s)
        positions = tuple(inverse[k * n_cells : (k + 1) * n_cells] for k in range(len(keys)))
        counts = np.bincount(rows, minlength=n_big)
        indptr = np.concatenate([[0], np.cumsum(counts)])
        data = np.concatenate(
            [np.ones(n_cells) if v is None else np.asarray(v, dtype=float) for v in cell_values]
            or [np.zeros(0)]
        )
        collect = sparse.csr_matrix(
            (data, (inverse, np.tile(np.arange(n_cells), len(keys)))), shape=(unique.size, n_cells)
        )
        narrow_position = np.cumsum(narrow) - 1
        wide_position = np.cumsum(~narrow) - 1
        is_narrow = narrow[cols]
        narrow_entry = np.flatnonzero(is_narrow)
        narrow_flat = rows[narrow_entry] * int(narrow.sum()) + narrow_position[cols[narrow_entry]]
        wide_entry = np.flatnonzero(~is_narrow)
        wide_counts = np.bincount(rows[wide_entry], minlength=n_big)
        wide_indptr = np.concatenate([[0], np.cumsum(wide_counts)])
        # All ordered pairs of wide nonzeros within a row (one per row for a nested factor).
        pair_a, pair_b = [], []
        for width in np.unique(wide_counts[wide_counts > 0]):
            starts = wide_indptr[:-1][wide_counts == width]
            a, b = np.meshgrid(np.arange(width), np.arange(width), indexing="ij")
            pair_a.append((starts[:, None] + a.ravel()[None, :]).ravel())
            pair_b.append((starts[:, None] + b.ravel()[None, :]).ravel())
        pairs = (
            np.concatenate(pair_a) if pair_a else np.zeros(0, np.int64),
            np.concatenate(pair_b) if pair_b else np.zeros(0, np.int64),
        )
        return cls(
            size,
            big,
            rest,
            rows,
            cols.astype(np.int64),
            indptr,
            positions,
            collect,
            narrow,
            narrow_entry,
            narrow_flat,
            wide_entry,
            wide_indptr,
            wide_position[cols[wide_entry]],
            pairs,
            rows[narrow_entry],
            rows[wide_entry],
            np.flatnonzero(narrow),
            np.flatnonzero(~narrow),
        )


class SchurFactor:
    """:math:`H = [[D, B], [B^\\top, C]]` with :math:`D` diagonal, factorised through :math:`S`.

    See the module notes for the algebra. ``d`` is the diagonal of the large
    factor's block, ``values`` the nonzeros of :math:`B` in ``layout`` order,
    ``dense`` the block :math:`C` of the other columns.
    """

    kind = "schur"

    def __init__(self, layout: SchurLayout, d: np.ndarray, values: np.ndarray, dense: np.ndarray) -> None:
        lay = self.layout = layout
        self.d = d
        self.values = values
        self.block_c = dense
        n_big = lay.n_big
        # B' D^-1 B = G' G for G = D^-1/2 B, in three parts: narrow x narrow (dense, one BLAS
        # product), wide x narrow (sparse x dense) and wide x wide (pairs of nonzeros within a
        # row). G is scaled on B's nonzeros only, never on the dense block's zeros.
        narrow, wide = lay.narrow_index, lay.wide_index
        n_narrow = narrow.size
        root = np.sqrt(d)
        schur = dense.copy()
        if n_narrow:
            g_flat = np.zeros(n_big * n_narrow)
            g_flat[lay.narrow_flat] = values[lay.narrow_entry] / root[lay.narrow_rows]
            g_narrow = g_flat.reshape(n_big, n_narrow)
            # numpy computes G'G (a product with its own transpose) by syrk, symmetric exactly.
            schur[np.ix_(narrow, narrow)] -= g_narrow.T @ g_narrow
        if wide.size:
            g_wide_values = values[lay.wide_entry] / root[lay.wide_rows]
            if n_narrow:
                g_wide = sparse.csr_matrix(
                    (g_wide_values, lay.wide_cols, lay.wide_indptr), shape=(n_big, wide.size)
                )
                cross = np.asarray(g_wide.T @ g_narrow)
                schur[np.ix_(wide, narrow)] -= cross
                schur[np.ix_(narrow, wide)] -= cross.T
            a, b = lay.wide_pairs
            ww = np.bincount(
                lay.wide_cols[a] * wide.size + lay.wide_cols[b],
                weights=g_wide_values[a] * g_wide_values[b],
                minlength=wide.size**2,
            ).reshape(wide.size, wide.size)
            schur[np.ix_(wide, wide)] -= ww
        self.schur_cholesky = cholesky_lower(schur)
        self._schur_inverse: np.ndarray | None = None
        self._selected: tuple[np.ndarray, np.ndarray] | None = None
        self._m_matrix: sparse.csr_matrix | None = None
        self._m_data: np.ndarray | None = None

    @property
    def size(self) -> int:
        return self.layout.size

    @property
    def logdet(self) -> float:
        return float(np.sum(np.log(self.d))) + 2.0 * float(np.sum(np.log(np.diag(self.schur_cholesky))))

    @property
    def m_data(self) -> np.ndarray:
        """:math:`M = D^{-1}B` on B's pattern (made on first use: a factor made only for its
        log-determinant never needs it)."""
        if self._m_data is None:
            self._m_data = self.values / self.d[self.layout.rows]
        return self._m_data

    @property
    def m(self) -> sparse.csr_matrix:
        """:math:`M = D^{-1}B` as a sparse matrix (for products with several columns)."""
        if self._m_matrix is None:
            lay = self.layout
            self._m_matrix = sparse.csr_matrix(
                (self.m_data, lay.cols, lay.indptr), shape=(lay.n_big, lay.rest.size)
            )
        return self._m_matrix

    def _m_times(self, y: np.ndarray) -> np.ndarray:
        lay = self.layout
        if y.ndim == 1:
            return np.bincount(lay.rows, weights=self.m_data * y[lay.cols], minlength=lay.n_big)
        return np.asarray(self.m @ y)

    def _mt_times(self, v: np.ndarray) -> np.ndarray:
        lay = self.layout
        if v.ndim == 1:
            return np.bincount(lay.cols, weights=self.m_data * v[lay.rows], minlength=lay.rest.size)
        return np.asarray(self.m.T @ v)

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
        y2 = cho_solve_lower(self.schur_cholesky, v2 - self._mt_times(v1))
        d = self.d if v1.ndim == 1 else self.d[:, None]
        y1 = v1 / d - self._m_times(y2)
        return self._join(y1, y2)

    def sample(self, eps: np.ndarray) -> np.ndarray:
        """:math:`L^{-\\top}\\varepsilon` for the block factor :math:`L`: draws from :math:`N(0, H^{-1})`."""
        e1, e2 = self._split(eps)
        x2 = linalg.solve_triangular(self.schur_cholesky.T, e2, lower=False, check_finite=False)
        root = np.sqrt(self.d) if e1.ndim == 1 else np.sqrt(self.d)[:, None]
        x1 = e1 / root - self._m_times(x2)
        return self._join(x1, x2)

    def schur_inverse(self) -> np.ndarray:
        """:math:`S^{-1}`, the block of :math:`H^{-1}` for the ``rest`` columns."""
        if self._schur_inverse is None:
            s = self.layout.rest.size
            self._schur_inverse = cho_solve_lower(self.schur_cholesky, np.eye(s))
        return self._schur_inverse

    def selected_inverse(self) -> tuple[np.ndarray, np.ndarray]:
        r"""Diagonal of the large factor's block of :math:`H^{-1}`, and the cross block on B's pattern.

        With :math:`P = MS^{-1}` (sparse times dense: about nnz(B) x len(rest)
        operations), the cross block is :math:`-P` and the diagonal
        :math:`d_i^{-1} + \sum_k P_{ik} M_{ik}`, both read on B's pattern.
        """
        if self._selected is None:
            lay = self.layout
            p_pattern = np.asarray(self.m @ self.schur_inverse())[lay.rows, lay.cols]
            diag = 1.0 / self.d + np.bincount(lay.rows, weights=p_pattern * self.m_data, minlength=lay.n_big)
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
        b = sparse.csr_matrix((self.values, lay.cols, lay.indptr), shape=(lay.n_big, lay.rest.size)).toarray()
        out[np.ix_(big, lay.rest)] = b
        out[np.ix_(lay.rest, big)] = b.T
        out[np.ix_(lay.rest, lay.rest)] = self.block_c
        return out

    def dense_cholesky(self) -> np.ndarray:
        """Dense Cholesky of :math:`H` in its own column order: q^3 work, for old callers only."""
        return linalg.cholesky(self.dense(), lower=True, check_finite=False)
