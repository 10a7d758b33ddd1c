"""Compiled inner loops for ``segmint.cluster.kprototypes`` (numba).

The estimator reads as logic; these read as numbers. Every kernel is deterministic: the
parallel one writes each row independently, the sums run row after row.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(cache=True, nogil=True, parallel=True)
def add_mismatches_argmin(D, codes, modes, gamma, labels, min_dist):  # pragma: no cover - compiled
    """In place ``D[i, c] += gamma * #(codes[i] != modes[c])``; then ``labels[i]`` is the
    first column of row i's minimum and ``min_dist[i]`` that minimum.

    D holds the numeric squared distances (n x k); codes (n x p_cat) and modes (k x p_cat)
    are int64 category codes (-1, an unseen level, matches no mode).
    """
    n, k = D.shape
    p = codes.shape[1]
    for i in prange(n):
        best = np.inf
        best_c = 0
        for c in range(k):
            m = 0
            for j in range(p):
                if codes[i, j] != modes[c, j]:
                    m += 1
            d = D[i, c] + gamma * m
            D[i, c] = d
            if d < best:
                best = d
                best_c = c
        labels[i] = best_c
        min_dist[i] = best


@njit(cache=True, nogil=True)
def cluster_sums(X, codes, offsets, labels, k, n_levels):  # pragma: no cover - compiled
    """One pass over the rows: per cluster the sum of the numeric rows (k x p_num), the row
    count (k) and the count of every level of every categorical column (k x n_levels, column
    j's levels at ``offsets[j]:offsets[j + 1]``)."""
    n, p_num = X.shape
    p_cat = codes.shape[1]
    sums = np.zeros((k, p_num))
    counts = np.zeros(k, dtype=np.int64)
    level_counts = np.zeros((k, n_levels), dtype=np.int64)
    for i in range(n):
        c = labels[i]
        counts[c] += 1
        for f in range(p_num):
            sums[c, f] += X[i, f]
        for j in range(p_cat):
            level_counts[c, offsets[j] + codes[i, j]] += 1
    return sums, counts, level_counts


@njit(cache=True, nogil=True)
def dissimilarity_to_row(X, codes, x, code, gamma):  # pragma: no cover - compiled
    """Mixed dissimilarity of every row of (X, codes) to one prototype (x, code): squared
    euclidean over the numeric columns plus gamma times the mismatches."""
    n, p_num = X.shape
    p_cat = codes.shape[1]
    out = np.empty(n)
    for i in range(n):
        s = 0.0
        for f in range(p_num):
            t = X[i, f] - x[f]
            s += t * t
        m = 0
        for j in range(p_cat):
            if codes[i, j] != code[j]:
                m += 1
        out[i] = s + gamma * m
    return out


@njit(cache=True, nogil=True)
def cost(X, codes, centers, modes, labels, gamma):  # pragma: no cover - compiled
    """Sum over the rows of the dissimilarity to their own prototype, computed directly
    (not through the ``||x||^2 + ||c||^2 - 2 x.c`` expansion, which loses digits)."""
    n, p_num = X.shape
    p_cat = codes.shape[1]
    total = 0.0
    for i in range(n):
        c = labels[i]
        s = 0.0
        for f in range(p_num):
            t = X[i, f] - centers[c, f]
            s += t * t
        m = 0
        for j in range(p_cat):
            if codes[i, j] != modes[c, j]:
                m += 1
        total += s + gamma * m
    return total
