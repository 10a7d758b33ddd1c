"""Compiled inner loops for ``segmint.cluster._grid`` (optional: needs numba).

If numba cannot be imported, ``AVAILABLE`` is False and ``_grid`` falls back
to scikit-learn's own Lloyd kernel (same results, less speed).
"""

from __future__ import annotations

import math

import numpy as np

try:  # pragma: no cover - exercised when numba is installed
    from numba import njit

    AVAILABLE = True
except Exception:  # pragma: no cover
    AVAILABLE = False

if AVAILABLE:
    # no 'nnan'/'ninf': the kernels compare with inf
    _FM = {"contract", "reassoc", "nsz", "arcp"}

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
    def _store_row(i, acc, x_sq, bj, dl, cand_idx, cand_lb, rest0):
        """Keep the m nearest other centers (lower bounds) and a bound for the rest."""
        k = acc.shape[0]
        m = cand_idx.shape[1]
        taken = acc[bj]
        acc[bj] = np.inf
        for c in range(m):
            jb = 0
            vb = np.inf
            for j in range(k):
                if acc[j] < vb:
                    vb = acc[j]
                    jb = j
            cand_idx[i, c] = jb
            s2 = vb + x_sq - dl
            cand_lb[i, c] = math.sqrt(s2) if s2 > 0.0 else 0.0
            acc[jb] = np.inf
        vb = np.inf
        for j in range(k):
            if acc[j] < vb:
                vb = acc[j]
        if vb == np.inf:
            rest0[i] = np.inf
        else:
            s2 = vb + x_sq - dl
            rest0[i] = math.sqrt(s2) if s2 > 0.0 else 0.0
        acc[bj] = taken

    @njit(cache=True, nogil=True, fastmath=_FM)
    def topm_step(
        X, C, S, Smax, now, labels, u0, cand_idx, cand_lb, rest0, T0, base,
        delta_c, out, stats,
    ):
        """One assignment step with bounds on the m nearest other centers.

        Per point, as of step ``T0[i]``: ``u0`` bounds the distance to its
        center from above; ``cand_lb`` bounds from below the distances to
        the m nearest other centers ``cand_idx``; ``rest0`` bounds from
        below the distance to every remaining center.  ``S[t, j]`` is center
        j's cumulative movement up to step t and ``Smax[t]`` the cumulative
        largest movement, so bounds are brought up to date lazily (a point
        that passes costs a few reads, no writes).

        A point keeps its label when (upper)^2 + margin < (every lower)^2,
        the margin being far wider than the rounding error of
        scikit-learn's ``||c||^2 - 2 x.c``; else the upper bound is made
        exact and tested again; else, if only tracked centers can be nearer,
        their direct distances decide (when the best wins by more than the
        margin).  Every other row is written to ``out`` (count returned):
        the caller computes all its distances with scikit-learn's own
        float64 gemm formula.
        """
        n, d = X.shape
        m = cand_idx.shape[1]
        val = np.empty(m)
        n_amb = 0
        for i in range(n):
            a = labels[i]
            dl = base[i] + delta_c
            t0 = T0[i]
            u = u0[i] + (S[now, a] - S[t0, a])
            thr = u * u + dl
            rest = rest0[i] - (Smax[now] - Smax[t0])
            ok = rest > 0.0 and rest * rest > thr
            if ok:
                for c in range(m):
                    j = cand_idx[i, c]
                    lb = cand_lb[i, c] - (S[now, j] - S[t0, j])
                    if not (lb > 0.0 and lb * lb > thr):
                        ok = False
                        break
            if ok:
                continue
            stats[0] += 1
            sa = 0.0
            for f in range(d):
                df = X[i, f] - C[a, f]
                sa += df * df
            thr = sa + dl
            ok = rest > 0.0 and rest * rest > thr
            if ok:
                for c in range(m):
                    j = cand_idx[i, c]
                    lb = cand_lb[i, c] - (S[now, j] - S[t0, j])
                    if not (lb > 0.0 and lb * lb > thr):
                        ok = False
                        break
            if ok:
                # rebase the bounds on this step
                for c in range(m):
                    j = cand_idx[i, c]
                    cand_lb[i, c] = cand_lb[i, c] - (S[now, j] - S[t0, j])
                rest0[i] = rest
                u0[i] = math.sqrt(sa)
                T0[i] = now
                continue
            if rest > 0.0 and rest * rest > thr:
                # only some of the m nearest others can be nearer:
                # direct distances to those
                best = sa
                bj = a
                cb = -1
                second = np.inf
                for c in range(m):
                    j = cand_idx[i, c]
                    lb = cand_lb[i, c] - (S[now, j] - S[t0, j])
                    if lb > 0.0 and lb * lb > thr:
                        val[c] = lb
                        continue
                    t = 0.0
                    for f in range(d):
                        df = X[i, f] - C[j, f]
                        t += df * df
                    val[c] = math.sqrt(t)
                    if t < best:
                        second = best
                        best = t
                        bj = j
                        cb = c
                    elif t < second:
                        second = t
                if second - best > dl:
                    for c in range(m):
                        cand_lb[i, c] = val[c]
                    if cb >= 0:
                        # the old center becomes a tracked other center
                        cand_idx[i, cb] = a
                        cand_lb[i, cb] = math.sqrt(sa)
                        labels[i] = bj
                    u0[i] = math.sqrt(best)
                    rest0[i] = rest
                    T0[i] = now
                    continue
                out[n_amb] = i
                n_amb += 1
                continue
            stats[1] += 1
            out[n_amb] = i
            n_amb += 1
        return n_amb

    @njit(cache=True, nogil=True, fastmath=_FM)
    def finish_rows_topm(
        X, x_sq, C, D, rows, labels, u0, cand_idx, cand_lb, rest0, T0, now,
        base, delta_c,
    ):
        """Labels and bounds of ``rows`` from D = ||c||^2 - 2 X[rows].C^T,
        exactly scikit-learn's values (argmin, first index on ties)."""
        d = X.shape[1]
        k = C.shape[0]
        acc = np.empty(k)
        for r in range(rows.shape[0]):
            i = rows[r]
            best = D[r, 0]
            bj = 0
            for j in range(1, k):
                if D[r, j] < best:
                    best = D[r, j]
                    bj = j
            labels[i] = bj
            t = 0.0
            for f in range(d):
                df = X[i, f] - C[bj, f]
                t += df * df
            u0[i] = math.sqrt(t)
            for j in range(k):
                acc[j] = D[r, j]
            _store_row(i, acc, x_sq[i], bj, base[i] + delta_c, cand_idx, cand_lb, rest0)
            T0[i] = now
