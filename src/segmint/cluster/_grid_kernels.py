"""Compiled inner loops for ``segmint.cluster._grid`` (optional: needs numba).

If numba cannot be imported, ``AVAILABLE`` is False and ``_grid`` falls back
to scikit-learn's own Lloyd kernel (same results, less speed).
"""

from __future__ import annotations

import math

import numpy as np

try:  # pragma: no cover - exercised when numba is installed
    import numba
    from numba import njit, prange

    AVAILABLE = True
except Exception:  # pragma: no cover
    AVAILABLE = False

if AVAILABLE:
    # no 'nnan'/'ninf': the kernels compare with inf
    _FM = {"contract", "reassoc", "nsz", "arcp"}

    @njit(cache=True, nogil=True)
    def finish_rows(X, x_sq, C, D, rows, labels, upper, lower, base, delta_c):
        """Labels and bounds of ``rows`` from D = ||c||^2 - 2 X[rows].C^T.

        D holds exactly the values scikit-learn's Lloyd step computes, so the
        argmin (first index on ties) is scikit-learn's label.
        """
        d = X.shape[1]
        k = C.shape[0]
        for r in range(rows.shape[0]):
            i = rows[r]
            best = D[r, 0]
            bj = 0
            for j in range(1, k):
                if D[r, j] < best:
                    best = D[r, j]
                    bj = j
            second = np.inf
            for j in range(k):
                if j != bj and D[r, j] < second:
                    second = D[r, j]
            labels[i] = bj
            t = 0.0
            for f in range(d):
                df = X[i, f] - C[bj, f]
                t += df * df
            upper[i] = math.sqrt(t)
            s2 = second + x_sq[i] - (base[i] + delta_c)
            lower[i] = math.sqrt(s2) if s2 > 0.0 else 0.0

    @njit(cache=True, nogil=True)
    def cluster_sums(X, labels, idx, k):
        d = X.shape[1]
        S = np.zeros((k, d))
        W = np.zeros(k)
        for t in range(idx.shape[0]):
            i = idx[t]
            j = labels[i]
            W[j] += 1.0
            for f in range(d):
                S[j, f] += X[i, f]
        return S, W

    @njit(cache=True, nogil=True)
    def move_sums(X, old_labels, new_labels, idx, S, W):
        d = X.shape[1]
        for t in range(idx.shape[0]):
            i = idx[t]
            a = old_labels[i]
            b = new_labels[i]
            W[a] -= 1.0
            W[b] += 1.0
            for f in range(d):
                S[a, f] -= X[i, f]
                S[b, f] += X[i, f]

    @njit(cache=True, nogil=True, fastmath=_FM)
    def hamerly_step(
        X, x_sq, C, CT, c_sq, shift, pmax, half_sep, labels, upper, lower,
        base, delta_c, full, amb,
    ):
        """One assignment step with Hamerly's bounds, all in one pass.

        A point keeps its label when (upper bound on the distance to its
        center)^2 + margin < (lower bound on the distance to any other
        center)^2; the upper bound is the previous one plus the center's
        shift, recomputed exactly when that is not enough.  Otherwise all
        squared distances are computed as ||x||^2 + ||c||^2 - 2 x.c (error
        far below the margin); the nearest center is taken when it wins by
        more than twice the margin, else the row is written to ``amb`` for
        the caller to decide with scikit-learn's own float64 gemm formula.
        Returns the number of rows written to ``amb``; ``full`` skips the
        bound test (first step).
        """
        n, d = X.shape
        k = C.shape[0]
        acc = np.empty(k)
        n_amb = 0
        for i in range(n):
            a = labels[i]
            dl = base[i] + delta_c
            if not full:
                u = upper[i] + shift[a]
                lo = lower[i] - pmax[a]
                lower[i] = lo
                m = lo
                if half_sep[a] > m:
                    m = half_sep[a]
                if u * u + dl < m * m:
                    upper[i] = u
                    continue
                t = 0.0
                for f in range(d):
                    df = X[i, f] - C[a, f]
                    t += df * df
                upper[i] = math.sqrt(t)
                if t + dl < m * m:
                    continue
            for j in range(k):
                acc[j] = c_sq[j]
            for f in range(d):
                xf = -2.0 * X[i, f]
                for j in range(k):
                    acc[j] += xf * CT[f, j]
            best = acc[0]
            bj = 0
            for j in range(1, k):
                if acc[j] < best:
                    best = acc[j]
                    bj = j
            second = np.inf
            for j in range(k):
                if j != bj and acc[j] < second:
                    second = acc[j]
            if second - best <= 2.0 * dl:
                amb[n_amb] = i
                n_amb += 1
                continue
            labels[i] = bj
            t = 0.0
            for f in range(d):
                df = X[i, f] - C[bj, f]
                t += df * df
            upper[i] = math.sqrt(t)
            s2 = second + x_sq[i] - dl
            lower[i] = math.sqrt(s2) if s2 > 0.0 else 0.0
        return n_amb
