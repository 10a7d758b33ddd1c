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
    def centered_var(X):
        """Column means of X**2 for a column-centered X, summed row after
        row as numpy's ``add.reduce(axis=0)`` does: ``np.var(X0, axis=0)``
        bit for bit when X = X0 - X0.mean(axis=0) (no fastmath: no
        reordering, no fused multiply-add)."""
        n, d = X.shape
        acc = np.zeros(d)
        for i in range(n):
            for f in range(d):
                v = X[i, f]
                acc[f] += v * v
        return acc / n

    @njit(cache=True, nogil=True)
    def center_rows(X, mean, Xc):
        """``Xc = X - mean`` (the exact float64 differences of
        ``X -= mean``: no fastmath); returns the largest ``|Xc|`` (inf if
        some value is NaN)."""
        n, d = X.shape
        amax = 0.0
        for i in range(n):
            for f in range(d):
                v = X[i, f] - mean[f]
                Xc[i, f] = v
                a = abs(v)
                if not a <= amax:
                    amax = a if a == a else np.inf
        return amax

    @njit(cache=True, nogil=True)
    def to_float32(X, out):
        """``out[:] = X.astype(np.float32)``, without the GIL."""
        n, d = X.shape
        for i in range(n):
            for f in range(d):
                out[i, f] = np.float32(X[i, f])

    @njit(cache=True, nogil=True)
    def pp_candidates(P, XX, x_sq, closest):
        """k-means++ step, in place, in one pass: ``P[c, i] <-
        minimum(closest[i], maximum((-2 P[c, i] + XX[c]) + x_sq[i], 0))``,
        the very operations (and NaN rules) of scikit-learn's
        ``_euclidean_distances`` and ``np.minimum`` on P = Y @ X.T (no
        fastmath: the same roundings in the same order)."""
        t, n = P.shape
        for c in range(t):
            xx = XX[c]
            for i in range(n):
                v = (-2.0 * P[c, i] + xx) + x_sq[i]
                if not (v >= 0.0 or v != v):
                    v = 0.0
                a = closest[i]
                P[c, i] = a if (a <= v or a != a) else v

    @njit(cache=True, nogil=True)
    def weighted_cumsum(w, v, out):
        """``out[:] = np.cumsum(w * v)`` (a sequential sum, as numpy's
        accumulate), without the temporaries."""
        s = 0.0
        for i in range(v.shape[0]):
            s += w[i] * v[i]
            out[i] = s

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
    def move_sums(X, from_labels, new_labels, idx, S, W):
        """Move rows ``idx`` from clusters ``from_labels`` (aligned with
        idx) to their ``new_labels`` in the sums S and counts W."""
        d = X.shape[1]
        for t in range(idx.shape[0]):
            i = idx[t]
            a = from_labels[t]
            b = new_labels[i]
            W[a] -= 1.0
            W[b] += 1.0
            for f in range(d):
                S[a, f] -= X[i, f]
                S[b, f] += X[i, f]

    @njit(cache=True, nogil=True, fastmath=_FM)
    def bound_filter(Snow, smax, labels, U, cand_idx, L, R, dl_max, out, lo, hi):
        """The rows ``lo <= i < hi`` whose label the bounds cannot keep: written
        to ``out`` (in order), count returned; the caller computes all their
        distances.

        Bounds are kept in drift coordinates: ``Snow[j]`` is center j's
        cumulative movement so far and ``smax`` the cumulative largest
        movement, so for point i the distance to its center is at most
        ``U[i] + Snow[labels[i]]``, the distance to tracked center
        ``cand_idx[i, c]`` at least ``L[i, c] - Snow[cand_idx[i, c]]`` and
        the distance to every other center at least ``R[i] - smax``
        (triangle inequality; nothing to bring up to date).  Storing
        ``bound -+ drift`` and adding the drift back costs an absolute
        rounding error of a few ulps of ``smax`` (every ``Snow[j] <=
        smax``): ``slack = 1e-13 smax`` covers it; relative rounding is
        covered by the margin ``dl_max`` (the largest per-point margin): a
        row is kept only when its smallest lower bound, squared, beats the
        squared upper bound by more than that.

        Branch-free, about 2 ns per row.  (Tightening the upper bound or
        computing a few direct distances for the listed rows, as Hamerly's
        and Elkan's methods do, was slower here than recomputing them all
        with the float32 gemm and ``finish_rows_f32``, which also renews
        every bound.)
        """
        m = cand_idx.shape[1]
        slack = 1e-13 * smax
        nf = 0
        if m == 2:
            for i in range(lo, hi):
                u = U[i] + Snow[labels[i]] + slack
                lb = min(
                    R[i] - smax,
                    min(L[i, 0] - Snow[cand_idx[i, 0]], L[i, 1] - Snow[cand_idx[i, 1]]),
                ) - slack
                ok = lb > 0.0 and lb * lb > u * u + dl_max
                out[nf] = i
                nf += 0 if ok else 1
        else:
            for i in range(lo, hi):
                u = U[i] + Snow[labels[i]] + slack
                lb = R[i] - smax
                for c in range(m):
                    lb = min(lb, L[i, c] - Snow[cand_idx[i, c]])
                lb -= slack
                ok = lb > 0.0 and lb * lb > u * u + dl_max
                out[nf] = i
                nf += 0 if ok else 1
        return nf

    @njit(cache=True, nogil=True, inline="always")
    def _keep4(v, j, b0, b1, b2, b3, j0, j1, j2):
        """Fold value v of centre j into the 4 smallest values so far (b0 <= b1 <= b2 <= b3,
        indices of the first three); ties keep the lower index, as argmin does."""
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
        return b0, b1, b2, b3, j0, j1, j2

    @njit(cache=True, nogil=True, fastmath=_FM)
    def finish_rows_topm(
        x_sq, D, rows, labels, U, cand_idx, L, R, Snow, smax,
        base, delta_c, moved, moved_from, n_moved,
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
                b0, b1, b2, b3, j0, j1, j2 = _keep4(D[r, j], j, b0, b1, b2, b3, j0, j1, j2)
            if labels[i] != j0:
                moved[n_moved[0]] = i
                moved_from[n_moved[0]] = labels[i]
                n_moved[0] += 1
                labels[i] = j0
            xs = x_sq[i]
            dl = base[i] + delta_c
            s2 = b0 + xs + dl
            U[i] = (math.sqrt(s2) if s2 > 0.0 else 0.0) - Snow[j0]
            s2 = b1 + xs - dl
            c1 = j1 if j1 >= 0 else j0
            cand_idx[i, 0] = c1
            L[i, 0] = (math.sqrt(s2) if s2 > 0.0 else 0.0) + Snow[c1]
            if m == 2:
                s2 = b2 + xs - dl
                c2 = j2 if j2 >= 0 else j0
                cand_idx[i, 1] = c2
                L[i, 1] = (math.sqrt(s2) if s2 > 0.0 else 0.0) + Snow[c2]
                v = b3
            else:
                v = b2
            if v == np.inf:
                R[i] = np.inf
            else:
                s2 = v + xs - dl
                R[i] = (math.sqrt(s2) if s2 > 0.0 else 0.0) + smax

    # rows per tile of ``finish_rows_f32`` (its key arrays stay in L1)
    _TILE = 128

    @njit(cache=True, nogil=True, fastmath=_FM)
    def finish_rows_f32(
        x_sq, c_sq, P, rows, labels, U, cand_idx, L, R, Snow, smax,
        base, delta_c, err_rel, c_sq_max, out, kbits, moved, moved_from, n_moved,
    ):
        """``finish_rows_topm`` from float32 dot products P = X32[rows].C32^T.

        ``w = max(||x||^2 + ||c||^2 - 2 p, 0)`` is within
        ``e = err_rel * (||x||^2 + max ||c||^2)`` of the squared distance
        (err_rel bounds float32 rounding of inputs and sums, and the
        ``kbits`` low mantissa bits dropped below).  A row whose best value
        beats the second by more than 2 e + dl gets the same label as
        scikit-learn's float64 formula and bounds widened by e; every other
        row is written to ``out`` (count returned) for the float64 formula.

        The 4 smallest values of a row are found branch-free, many rows at
        a time (SIMD lanes): each ``w >= 0`` becomes an int64 key whose
        order is w's order (IEEE bits of a non-negative double), with the
        center index in its ``kbits`` low bits (``2**kbits >= k``), pushed
        through a min/max insertion network per tile of rows.
        """
        nb, k = P.shape
        m = cand_idx.shape[1]
        TILE = _TILE
        WT = np.empty((k, TILE))
        WTi = WT.view(np.int64)
        KS = np.empty((4, TILE), dtype=np.int64)
        KF = KS.view(np.float64)
        xs_t = np.empty(TILE)
        low = np.int64((1 << kbits) - 1)
        hi = ~low
        big = np.int64(0x7FFFFFFFFFFFFFFF)  # "no value" (fewer than 4 centers)
        n_out = 0
        for t0 in range(0, nb, TILE):
            T = min(TILE, nb - t0)
            for r in range(T):
                xr = x_sq[rows[t0 + r]]
                xs_t[r] = xr
                for j in range(k):
                    WT[j, r] = max(c_sq[j] - 2.0 * np.float64(P[t0 + r, j]) + xr, 0.0)
            for r in range(T):
                KS[0, r] = big
                KS[1, r] = big
                KS[2, r] = big
                KS[3, r] = big
            for j in range(k):
                for r in range(T):
                    key = (WTi[j, r] & hi) | j
                    a = KS[0, r]
                    KS[0, r] = min(a, key)
                    key = max(a, key)
                    a = KS[1, r]
                    KS[1, r] = min(a, key)
                    key = max(a, key)
                    a = KS[2, r]
                    KS[2, r] = min(a, key)
                    key = max(a, key)
                    KS[3, r] = min(KS[3, r], key)
            for r in range(T):
                i = rows[t0 + r]
                k2 = KS[2, r]
                kr = KS[3, r] if m == 2 else k2
                j0 = KS[0, r] & low
                j1 = KS[1, r] & low
                j2 = k2 & low
                for q in range(4):
                    KS[q, r] &= hi  # the values, as doubles in KF
                xs = xs_t[r]
                e = err_rel * (xs + c_sq_max) + 1e-36  # + float32 underflow
                dl = base[i] + delta_c + e
                b0 = KF[0, r]
                b1 = KF[1, r]
                if not (b1 - b0 > 2.0 * dl):
                    out[n_out] = i
                    n_out += 1
                    continue
                if labels[i] != j0:
                    moved[n_moved[0]] = i
                    moved_from[n_moved[0]] = labels[i]
                    n_moved[0] += 1
                    labels[i] = j0
                s2 = b0 + dl
                U[i] = math.sqrt(s2) - Snow[j0]
                s2 = b1 - dl
                cand_idx[i, 0] = j1
                L[i, 0] = (math.sqrt(s2) if s2 > 0.0 else 0.0) + Snow[j1]
                if m == 2:  # k >= 3
                    s2 = KF[2, r] - dl
                    cand_idx[i, 1] = j2
                    L[i, 1] = (math.sqrt(s2) if s2 > 0.0 else 0.0) + Snow[j2]
                if kr == big:
                    R[i] = np.inf
                else:
                    s2 = KF[3 if m == 2 else 2, r] - dl
                    R[i] = (math.sqrt(s2) if s2 > 0.0 else 0.0) + smax
        return n_out

    # ----------------------------------------------------------------------
    # DBSCAN from the neighbour graph

    @njit(cache=True, nogil=True)
    def within_counts(indptr, level, lv):
        """Per row, the neighbours (self included) at eps level ``lv`` or below."""
        n = indptr.shape[0] - 1
        counts = np.zeros(n, dtype=np.int64)
        for i in range(n):
            c = 0
            for p in range(indptr[i], indptr[i + 1]):
                if level[p] <= lv:
                    c += 1
            counts[i] = c
        return counts

    @njit(cache=True, nogil=True, inline="always")
    def _root(parent, i):
        r = i
        while parent[r] != r:
            r = parent[r]
        while parent[i] != r:  # path compression
            nxt = parent[i]
            parent[i] = r
            i = nxt
        return r

    @njit(cache=True, nogil=True)
    def dbscan_labels(indptr, indices, level, lv, counts, min_samples):
        """scikit-learn's DBSCAN labels and core samples for one (eps level, min_samples).

        Core points are those with ``counts >= min_samples``; clusters are the
        connected components of core points joined by a neighbour pair within
        the level (union-find), numbered in the order of their lowest-index
        core point (as scikit-learn's loop over points starts them); a border
        point takes the lowest cluster number among the core points that reach
        it (the first, in scikit-learn's order, to reach it).
        """
        n = indptr.shape[0] - 1
        labels = np.full(n, -1, dtype=np.int64)
        parent = np.arange(n)
        n_core = 0
        for i in range(n):
            if counts[i] >= min_samples:
                n_core += 1
        core_idx = np.empty(n_core, dtype=np.int64)
        if n_core == 0:
            return labels, core_idx
        c = 0
        for i in range(n):
            if counts[i] < min_samples:
                continue
            core_idx[c] = i
            c += 1
            for p in range(indptr[i], indptr[i + 1]):
                if level[p] > lv:
                    continue
                j = indices[p]
                if counts[j] < min_samples:
                    continue
                a = _root(parent, i)
                b = _root(parent, j)
                if a < b:
                    parent[b] = a
                elif b < a:
                    parent[a] = b
        # number the clusters by their first core point
        number = np.full(n, -1, dtype=np.int64)
        nxt = 0
        for t in range(n_core):
            i = core_idx[t]
            r = _root(parent, i)
            if number[r] < 0:
                number[r] = nxt
                nxt += 1
            labels[i] = number[r]
        # border points: the lowest cluster number reaching them
        for t in range(n_core):
            i = core_idx[t]
            li = labels[i]
            for p in range(indptr[i], indptr[i + 1]):
                if level[p] > lv:
                    continue
                j = indices[p]
                if counts[j] >= min_samples:
                    continue
                if labels[j] < 0 or li < labels[j]:
                    labels[j] = li
        return labels, core_idx

    # ----------------------------------------------------------------------
    # DBSCAN streamed: no neighbour graph kept (``_grid._dbscan_streamed``)

    @njit(cache=True, nogil=True)
    def level_counts(lens, lev, n_lv):
        """Per row of a block (``lens[k]`` pairs each, in order), its neighbours
        (self included) at each eps level or below: (n_lv, rows) int32."""
        nb = lens.shape[0]
        out = np.zeros((n_lv, nb), dtype=np.int32)
        p = 0
        for k in range(nb):
            for _ in range(lens[k]):
                lv = lev[p]
                p += 1
                if lv < n_lv:
                    out[lv, k] += 1
            for lv in range(1, n_lv):
                out[lv, k] += out[lv - 1, k]
        return out

    @njit(cache=True, nogil=True)
    def near_bands(rows, lens, g, dist, lev, x_sq, T2, band):
        """Per pair, how close its squared distance is to an eps threshold:
        0 far, 1 within ``band * (|x|^2 + |y|^2 + T^2)`` of one, 2 within
        twice that (not 1).  The thresholds that can be near are the ones
        around the pair's level (``lev`` is searchsorted's index, + 1 after a
        tie scikit-learn decided outside)."""
        out = np.zeros(g.shape[0], dtype=np.uint8)
        n_t = T2.shape[0]
        p = 0
        for k in range(rows.shape[0]):
            xr = x_sq[rows[k]]
            for _ in range(lens[k]):
                d = dist[p]
                s = d * d
                xs = xr + x_sq[g[p]]
                lv = np.int64(lev[p])
                code = 0
                for t in range(max(0, lv - 2), min(n_t, lv + 2)):
                    m = band * (xs + T2[t])
                    a = abs(s - T2[t])
                    if a <= m:
                        code = 1
                        break
                    if a <= 2.0 * m:
                        code = 2
                out[p] = code
                p += 1
        return out

    @njit(cache=True, nogil=True, inline="always")
    def _union(parent, i, j):
        a = _root(parent, i)
        b = _root(parent, j)
        if a < b:
            parent[b] = a
        elif b < a:
            parent[a] = b

    @njit(cache=True, nogil=True, inline="always")
    def _sight(parent, rep, rep2, amb, b, c):
        """Core point c reaches non-core b: b keeps the first such c (rep) and
        the first in another component (rep2); b is marked ambiguous when a
        c lies in neither's component (at that moment: components only merge,
        so a c in rep's or rep2's component then is in it at the end, and b's
        number is the lower of theirs)."""
        if rep[b] < 0:
            rep[b] = c
            return
        if amb[b] != 0 or rep[b] == c or rep2[b] == c:
            return
        rc = _root(parent, c)
        r1 = _root(parent, rep[b])
        if rc == r1:
            return
        if rep2[b] < 0:
            rep2[b] = c
            return
        r2 = _root(parent, rep2[b])
        if rc == r2:
            return
        if r1 == r2:  # rep2's component has joined rep's since: c takes its place
            rep2[b] = c
            return
        amb[b] = 1

    @njit(cache=True, nogil=True)
    def stream_unions(rows, lens, g, lev, near, known, counts, set_lv, set_ms, parent, rep, rep2,
                      amb):
        """One block's pairs into every setting's union-find.

        A pair (r, j) not near a threshold (``near != 1``) is a neighbour pair
        at the same level in both directions, so it is taken here, both
        directions at once, when j's counts are known (``known[j]``: j's block
        was published before or with this one; the pair's other copy, in j's
        block, was skipped then or is taken again, harmlessly).  Core-core
        pairs are joined; a core point reaching a non-core one is a sighting
        (``_sight``).  Near pairs go through the deferred list instead.
        """
        n_set = set_lv.shape[0]
        p = 0
        for k in range(rows.shape[0]):
            r = rows[k]
            for _ in range(lens[k]):
                j = g[p]
                lv = lev[p]
                c = near[p]
                p += 1
                if c == 1 or j == r or known[j] == 0:
                    continue
                for s in range(n_set):
                    ls = set_lv[s]
                    if lv > ls:
                        continue
                    ms = set_ms[s]
                    cr = counts[ls, r] >= ms
                    cj = counts[ls, j] >= ms
                    if cr:
                        if cj:
                            _union(parent[s], r, j)
                        else:
                            _sight(parent[s], rep[s], rep2[s], amb[s], j, r)
                    elif cj:
                        _sight(parent[s], rep[s], rep2[s], amb[s], r, j)

    @njit(cache=True, nogil=True)
    def deferred_unions(dr, dj, dlev, counts, set_lv, set_ms, parent):
        """Directed near pairs r -> j (j in r's neighbourhood at level dlev):
        joined when both are core."""
        for t in range(dr.shape[0]):
            r = dr[t]
            j = dj[t]
            lv = dlev[t]
            for s in range(set_lv.shape[0]):
                ls = set_lv[s]
                if lv > ls:
                    continue
                ms = set_ms[s]
                if counts[ls, r] >= ms and counts[ls, j] >= ms:
                    _union(parent[s], r, j)

    @njit(cache=True, nogil=True)
    def stream_labels(counts_lv, min_samples, parent, rep, rep2, amb, labels):
        """One setting's labels from its union-find: clusters numbered in the
        order of their lowest-index core point; a non-core point whose
        sightings all lay in rep's or rep2's component takes the lower of
        their numbers; ambiguous points and the others stay -1
        (``border_min`` / ``deferred_border`` finish them)."""
        n = counts_lv.shape[0]
        number = np.full(n, -1, dtype=np.int64)
        nxt = 0
        for i in range(n):
            labels[i] = -1
            if counts_lv[i] < min_samples:
                continue
            r = _root(parent, i)
            if number[r] < 0:
                number[r] = nxt
                nxt += 1
            labels[i] = number[r]
        for i in range(n):
            if counts_lv[i] < min_samples and rep[i] >= 0 and amb[i] == 0:
                v = number[_root(parent, rep[i])]
                if rep2[i] >= 0:
                    v = min(v, number[_root(parent, rep2[i])])
                labels[i] = v

    @njit(cache=True, nogil=True)
    def border_min(rows, lens, g, lev, near, counts, set_lv, set_ms, amb, labels):
        """Ambiguous non-core rows of a block: the lowest cluster number among
        their core neighbours (pairs not near a threshold: symmetric; near
        pairs come from the deferred list)."""
        n_set = set_lv.shape[0]
        p0 = 0
        for k in range(rows.shape[0]):
            b = rows[k]
            for s in range(n_set):
                if amb[s, b] == 0:
                    continue
                ls = set_lv[s]
                ms = set_ms[s]
                best = labels[s, b]
                for p in range(p0, p0 + lens[k]):
                    if near[p] == 1 or lev[p] > ls:
                        continue
                    j = g[p]
                    if counts[ls, j] < ms:
                        continue
                    v = labels[s, j]
                    if best < 0 or v < best:
                        best = v
                labels[s, b] = best
            p0 += lens[k]

    @njit(cache=True, nogil=True)
    def deferred_border(dr, dj, dlev, counts, set_lv, set_ms, labels):
        """Directed near pairs r -> j with r core and j not: j takes r's
        cluster number if it is lower than what it has."""
        for t in range(dr.shape[0]):
            r = dr[t]
            j = dj[t]
            lv = dlev[t]
            for s in range(set_lv.shape[0]):
                ls = set_lv[s]
                if lv > ls:
                    continue
                ms = set_ms[s]
                if counts[ls, r] >= ms and counts[ls, j] < ms:
                    v = labels[s, r]
                    if labels[s, j] < 0 or v < labels[s, j]:
                        labels[s, j] = v
