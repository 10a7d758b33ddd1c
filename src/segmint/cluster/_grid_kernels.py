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

CHUNK = 2048

if AVAILABLE:

    @njit(cache=True, nogil=True)
    def hamerly_filter(
        X, C, shift, pmax, half_sep, labels, upper, lower, base, delta_c, out
    ):
        """Bound test for every point; return the rows that need all distances.

        A point keeps its label when (upper bound on the distance to its
        center)^2 + margin < (lower bound on any other center's distance)^2;
        the upper bound is first taken from the previous step plus the
        center's shift, then, if that is not enough, recomputed exactly.
        Rows that still fail are written to ``out``; their count is returned.
        """
        n, d = X.shape
        n_out = 0
        for i in range(n):
            a = labels[i]
            dl = base[i] + delta_c
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
            u = math.sqrt(t)
            upper[i] = u
            if u * u + dl < m * m:
                continue
            out[n_out] = i
            n_out += 1
        return n_out

    @njit(cache=True, nogil=True)
    def finish_rows(X, x_sq, C, D, rows, labels, upper, lower, base, delta_c):
        """Labels and bounds of ``rows`` from D = ||c||^2 - 2 X[rows].C^T.

        D holds exactly the values scikit-learn's Lloyd step computes, so the
        argmin (first index on ties) is scikit-learn's label.  Returns the
        number of rows whose label changed.
        """
        d = X.shape[1]
        k = C.shape[0]
        changed = 0
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
            if labels[i] != bj:
                changed += 1
            labels[i] = bj
            t = 0.0
            for f in range(d):
                df = X[i, f] - C[bj, f]
                t += df * df
            upper[i] = math.sqrt(t)
            s2 = second + x_sq[i] - (base[i] + delta_c)
            lower[i] = math.sqrt(s2) if s2 > 0.0 else 0.0
        return changed

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
