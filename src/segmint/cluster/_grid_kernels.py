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

    @njit(parallel=True, cache=True, nogil=True)
    def hamerly_assign(
        X, x_sq, C, CT, c_sq, shift, pmax, half_sep, labels, upper, lower,
        base, delta_c, force, moved, ambiguous,
    ):
        """One assignment step with Hamerly's bounds.

        For every point, either prove its label cannot change (upper bound on
        the distance to its center + margin below the lower bound on any other
        center's distance) or recompute the distances to all centers with the
        ``||c||^2 - 2 x.c`` formula.  A point whose two best squared
        distances are within twice the margin is flagged ``ambiguous`` so the
        caller can decide it with exactly scikit-learn's arithmetic.
        ``moved[i]`` is set to 1 when the label changed.
        """
        n, d = X.shape
        k = C.shape[0]
        n_chunks = (n + CHUNK - 1) // CHUNK
        for ch in prange(n_chunks):
            acc = np.empty(k)
            start = ch * CHUNK
            end = min(n, start + CHUNK)
            for i in range(start, end):
                a = labels[i]
                dl = base[i] + delta_c
                moved[i] = 0
                ambiguous[i] = 0
                if not force:
                    u = upper[i] + shift[a]
                    lo = lower[i] - pmax[a]
                    m = lo
                    if half_sep[a] > m:
                        m = half_sep[a]
                    if u * u + dl < m * m:
                        upper[i] = u
                        lower[i] = lo
                        continue
                    t = 0.0
                    for f in range(d):
                        df = X[i, f] - C[a, f]
                        t += df * df
                    u = math.sqrt(t)
                    if u * u + dl < m * m:
                        upper[i] = u
                        lower[i] = lo
                        continue
                for j in range(k):
                    acc[j] = 0.0
                for f in range(d):
                    xf = X[i, f]
                    for j in range(k):
                        acc[j] += xf * CT[f, j]
                best = np.inf
                second = np.inf
                bj = 0
                for j in range(k):
                    v = c_sq[j] - 2.0 * acc[j]
                    if v < best:
                        second = best
                        best = v
                        bj = j
                    elif v < second:
                        second = v
                if second - best <= 2.0 * dl:
                    ambiguous[i] = 1
                if bj != a:
                    moved[i] = 1
                labels[i] = bj
                t = 0.0
                for f in range(d):
                    df = X[i, f] - C[bj, f]
                    t += df * df
                upper[i] = math.sqrt(t)
                if k > 1:
                    s2 = second + x_sq[i] - dl
                    lower[i] = math.sqrt(s2) if s2 > 0.0 else 0.0
                else:
                    lower[i] = np.inf

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
