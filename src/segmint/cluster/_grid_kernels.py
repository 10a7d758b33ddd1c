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
        exactly scikit-learn's values (argmin, first index on ties).

        One pass per row keeps the m + 2 smallest values in order (ties keep
        the lower index first): the label, the m tracked other centers and
        the bound for all the rest.  Bounds come from D with the margin
        (upper: + dl, lower: - dl), which exceeds D's rounding error.
        """
        k = D.shape[1]
        m = cand_idx.shape[1]  # 1 or 2
        for r in range(rows.shape[0]):
            i = rows[r]
            # the 4 smallest values (b0 <= b1 <= b2 <= b3), first index on ties
            b0 = np.inf
            b1 = np.inf
            b2 = np.inf
            b3 = np.inf
            j0 = 0
            j1 = -1
            j2 = -1
            for j in range(k):
                v = D[r, j]
                if v < b3:
                    if v < b1:
                        b3 = b2
                        b2 = b1
                        j2 = j1
                        if v < b0:
                            b1 = b0
                            j1 = j0
                            b0 = v
                            j0 = j
                        else:
                            b1 = v
                            j1 = j
                    elif v < b2:
                        b3 = b2
                        b2 = v
                        j2 = j
                    else:
                        b3 = v
            labels[i] = j0
            xs = x_sq[i]
            dl = base[i] + delta_c
            s2 = b0 + xs + dl
            u0[i] = math.sqrt(s2) if s2 > 0.0 else 0.0
            s2 = b1 + xs - dl
            cand_idx[i, 0] = j1 if j1 >= 0 else j0
            cand_lb[i, 0] = math.sqrt(s2) if s2 > 0.0 else 0.0
            if m == 2:
                s2 = b2 + xs - dl
                cand_idx[i, 1] = j2 if j2 >= 0 else j0
                cand_lb[i, 1] = math.sqrt(s2) if s2 > 0.0 else 0.0
                v = b3
            else:
                v = b2
            if v == np.inf:
                rest0[i] = np.inf
            else:
                s2 = v + xs - dl
                rest0[i] = math.sqrt(s2) if s2 > 0.0 else 0.0
            T0[i] = now

    @njit(cache=True, nogil=True, fastmath=_FM)
    def finish_rows_f32(
        x_sq, c_sq, P, rows, labels, u0, cand_idx, cand_lb, rest0, T0, now,
        base, delta_c, err_rel, c_sq_max, out,
    ):
        """``finish_rows_topm`` from float32 dot products P = X32[rows].C32^T.

        ``||c||^2 - 2 p`` is within ``e = err_rel * (||x||^2 + max ||c||^2)``
        of the exact value (err_rel bounds float32 rounding of inputs and
        sums).  A row whose best value beats the second by more than
        2 e + dl gets the same label as scikit-learn's float64 formula and
        bounds widened by e; every other row is written to ``out`` (count
        returned) for the float64 formula.
        """
        k = P.shape[1]
        m = cand_idx.shape[1]
        n_out = 0
        for r in range(rows.shape[0]):
            i = rows[r]
            b0 = np.inf
            b1 = np.inf
            b2 = np.inf
            b3 = np.inf
            j0 = 0
            j1 = -1
            j2 = -1
            for j in range(k):
                v = c_sq[j] - 2.0 * np.float64(P[r, j])
                if v < b3:
                    if v < b1:
                        b3 = b2
                        b2 = b1
                        j2 = j1
                        if v < b0:
                            b1 = b0
                            j1 = j0
                            b0 = v
                            j0 = j
                        else:
                            b1 = v
                            j1 = j
                    elif v < b2:
                        b3 = b2
                        b2 = v
                        j2 = j
                    else:
                        b3 = v
            xs = x_sq[i]
            e = err_rel * (xs + c_sq_max) + 1e-36  # + float32 underflow
            dl = base[i] + delta_c + e
            if not (b1 - b0 > 2.0 * dl):
                out[n_out] = i
                n_out += 1
                continue
            labels[i] = j0
            s2 = b0 + xs + dl
            u0[i] = math.sqrt(s2) if s2 > 0.0 else 0.0
            s2 = b1 + xs - dl
            cand_idx[i, 0] = j1 if j1 >= 0 else j0
            cand_lb[i, 0] = math.sqrt(s2) if s2 > 0.0 else 0.0
            if m == 2:
                s2 = b2 + xs - dl
                cand_idx[i, 1] = j2 if j2 >= 0 else j0
                cand_lb[i, 1] = math.sqrt(s2) if s2 > 0.0 else 0.0
                v = b3
            else:
                v = b2
            if v == np.inf:
                rest0[i] = np.inf
            else:
                s2 = v + xs - dl
                rest0[i] = math.sqrt(s2) if s2 > 0.0 else 0.0
            T0[i] = now
        return n_out
