"""Grid fits for repeated cluster analysis on one data set.

A parameter sweep fits the same data many times.  Most of that work is
shared between settings, so this module fits a whole grid at once and
returns, for every setting, the result scikit-learn would give for that
setting alone:

* ``kmeans_grid``: for one ``n_clusters`` the k-means++ start and Lloyd's
  iterations do not depend on ``tol``; one run to the smallest tolerance
  yields every larger tolerance's answer at the iteration where it would
  have stopped.  Iterations skip points whose label provably cannot change
  (Hamerly's bounds, with a safety margin wider than the rounding error of
  scikit-learn's own distance formula, so near-ties are always recomputed
  with that formula).  Different ``n_clusters`` run in parallel.
* ``dbscan_grid``: one radius-neighbour pass at the largest ``eps`` (with
  distances) serves every ``eps`` and ``min_samples``.  Clusters are
  connected components of core points; a border point gets the cluster of
  the first component (in scikit-learn's order) that reaches it, which is
  what scikit-learn's depth-first search does.

``to_sklearn_kmeans`` / ``to_sklearn_dbscan`` turn a result into a fitted
scikit-learn estimator.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

import numpy as np
from scipy import sparse
from scipy.sparse.csgraph import connected_components

__all__ = [
    "KMeansResult",
    "DBSCANResult",
    "kmeans_grid",
    "dbscan_grid",
    "to_sklearn_kmeans",
    "to_sklearn_dbscan",
]


# --------------------------------------------------------------------------
# results


@dataclass
class KMeansResult:
    labels: np.ndarray  # int32, (n_samples,)
    cluster_centers: np.ndarray  # float64, (k, n_features)
    inertia: float
    n_iter: int


@dataclass
class DBSCANResult:
    labels: np.ndarray  # int64, (n_samples,), -1 = noise
    core_sample_indices: np.ndarray  # int64, sorted
    extra: dict = field(default_factory=dict)


# --------------------------------------------------------------------------
# k-means

# Relative margin (in squared-distance units, scaled by ||x||^2 + ||c||^2 + 1)
# under which a point is never skipped: far wider than the rounding error of
# ||c||^2 - 2 x.c for 1e3 features, so a skipped point's label is the one
# scikit-learn's formula would give.
_MARGIN = 1e-12

# rows per block for the dense distance computation
_BLOCK = 4096


def _n_threads() -> int:
    from sklearn.utils._openmp_helpers import _openmp_effective_n_threads

    return _openmp_effective_n_threads()


class _Assigner:
    """Exact (scikit-learn formula) nearest-center assignment with Hamerly bounds."""

    def __init__(self, X: np.ndarray, x_sq: np.ndarray):
        self.X = X
        self.x_sq = x_sq
        n = X.shape[0]
        self.base = _MARGIN * (x_sq + 1.0)
        self.labels = np.full(n, -1, dtype=np.int32)
        self.upper = np.zeros(n)
        self.lower = np.zeros(n)
        self.prev_centers = None
        self.n_recomputed = 0

    def _exact_dist(self, idx, C, lab):
        diff = self.X[idx] - C[lab]
        return np.sqrt(np.einsum("ij,ij->i", diff, diff))

    def _dense(self, idx, C, c_sq, delta_c):
        """Full assignment of rows idx (None = all) with scikit-learn's formula."""
        X = self.X
        rows = np.arange(X.shape[0]) if idx is None else idx
        k = C.shape[0]
        for s in range(0, rows.shape[0], _BLOCK):
            r = rows[s : s + _BLOCK]
            Xb = X[r] if idx is not None else X[s : s + _BLOCK]
            D = Xb @ C.T
            D *= -2.0
            D += c_sq
            lab = np.argmin(D, axis=1).astype(np.int32)
            ar = np.arange(r.shape[0])
            if k > 1:
                D[ar, lab] = np.inf
                second = D.min(axis=1) + self.x_sq[r]
                self.lower[r] = np.sqrt(
                    np.maximum(second - (self.base[r] + delta_c), 0.0)
                )
            else:
                self.lower[r] = np.inf
            self.labels[r] = lab
            diff = Xb - C[lab]
            self.upper[r] = np.sqrt(np.einsum("ij,ij->i", diff, diff))
        self.n_recomputed += rows.shape[0]

    def assign(self, C: np.ndarray, full: bool = False) -> np.ndarray:
        """Assign every point to its nearest center of C; return changed rows."""
        old = self.labels.copy()
        c_sq = np.einsum("ij,ij->i", C, C)
        delta_c = _MARGIN * float(c_sq.max())
        k = C.shape[0]
        if full or self.prev_centers is None or k == 1:
            self._dense(None, C, c_sq, delta_c)
        else:
            shift = np.sqrt(((C - self.prev_centers) ** 2).sum(axis=1))
            # largest shift of any *other* center, for each center
            order = np.argsort(shift)
            top, second = order[-1], order[-2]
            pmax = np.full(k, shift[top])
            pmax[top] = shift[second]
            a = self.labels
            self.upper += shift[a]
            self.lower -= pmax[a]
            # half distance from each center to its nearest other center
            diffc = C[:, None, :] - C[None, :, :]
            cc = np.sqrt((diffc**2).sum(axis=2))
            np.fill_diagonal(cc, np.inf)
            s = 0.5 * cc.min(axis=1)
            m = np.maximum(self.lower, s[a])
            u = self.upper
            need = u * u + (self.base + delta_c) >= m * m
            idx = np.flatnonzero(need)
            if idx.size:
                # tighten the upper bound, then test again
                ut = self._exact_dist(idx, C, a[idx])
                self.upper[idx] = ut
                need2 = ut * ut + (self.base[idx] + delta_c) >= m[idx] ** 2
                idx = idx[need2]
                if idx.size:
                    self._dense(idx, C, c_sq, delta_c)
        self.prev_centers = C.copy()
        return np.flatnonzero(self.labels != old)


def _kmeans_one_k(Xc, x_sq, centers_init, tols_abs, max_iter, n_threads):
    """Lloyd's run to the smallest tolerance; snapshot every larger tolerance.

    Mirrors ``sklearn.cluster._kmeans._kmeans_single_lloyd``.
    Returns {tol_abs: (labels, centers (centered), inertia, n_iter)}.
    """
    from sklearn.cluster._k_means_common import (
        _inertia_dense,
        _relocate_empty_clusters_dense,
    )

    n, d = Xc.shape
    k = centers_init.shape[0]
    sw = np.ones(n, dtype=np.float64)
    remaining = sorted(set(tols_abs), reverse=True)
    out = {}
    pending: list[tuple[float, np.ndarray, int]] = []  # (tol, centers, n_iter)

    asg = _Assigner(Xc, x_sq)
    centers = np.ascontiguousarray(centers_init, dtype=np.float64)
    S = np.zeros((k, d))
    W = np.zeros(k)
    labels_old = None

    def finish(tol, C, labels, n_iter):
        lab = np.ascontiguousarray(labels, dtype=np.int32)
        inertia = float(_inertia_dense(Xc, sw, C, lab, n_threads))
        out[tol] = (lab.copy(), C.copy(), inertia, n_iter)

    relocated = False
    for i in range(max_iter):
        changed = asg.assign(centers)
        labels = asg.labels
        # the E-step with these centers is the final re-assignment of every
        # tolerance that stopped at the previous iteration
        for tol, C, it in pending:
            finish(tol, C, labels, it)
        pending = []
        if not remaining:
            break
        # M-step: per-cluster sums, updated incrementally from the moved points
        if labels_old is None or relocated or changed.size * 2 > n:
            S = _cluster_sums(Xc, labels, k)
            W = np.bincount(labels, minlength=k).astype(np.float64)
        elif changed.size:
            Xch = Xc[changed]
            lo = labels_old[changed]
            ln = labels[changed]
            S -= _cluster_sums(Xch, lo, k)
            S += _cluster_sums(Xch, ln, k)
            W -= np.bincount(lo, minlength=k)
            W += np.bincount(ln, minlength=k)
        relocated = False
        S_use, W_use = S, W
        if np.any(W == 0):
            S_use, W_use = S.copy(), W.copy()
            _relocate_empty_clusters_dense(Xc, sw, centers, S_use, W_use, labels)
            relocated = True  # sums no longer follow the labels
        nz = W_use > 0
        inv = np.ones(k)
        inv[nz] = 1.0 / W_use[nz]
        centers_new = S_use * inv[:, None]  # scikit-learn multiplies by 1/w
        shift = np.sqrt(((centers_new - centers) ** 2).sum(axis=1))

        if labels_old is not None and changed.size == 0:
            # strict convergence: labels unchanged, no re-assignment
            for tol in remaining:
                finish(tol, centers_new, labels, i + 1)
            remaining = []
            break
        shift_tot = float((shift**2).sum())
        for t in [t for t in remaining if shift_tot <= t]:
            pending.append((t, centers_new, i + 1))
            remaining.remove(t)
        labels_old = labels.copy()
        centers = centers_new
    else:
        # max_iter reached: every tolerance still running stops here
        pending += [(t, centers, max_iter) for t in remaining]
        if pending:
            asg.assign(centers)
            for tol, C, it in pending:
                finish(tol, C, asg.labels, it)
    return out, asg.n_recomputed


def _cluster_sums(X, labels, k):
    d = X.shape[1]
    idx = (labels.astype(np.int64)[:, None] * d + np.arange(d)).ravel()
    return np.bincount(idx, weights=X.ravel(), minlength=k * d).reshape(k, d)


def _init_centers(Xc, x_sq, k, init, random_state):
    from sklearn.cluster._kmeans import _kmeans_plusplus
    from sklearn.utils import check_random_state

    rs = check_random_state(random_state)
    sw = np.ones(Xc.shape[0], dtype=np.float64)
    if isinstance(init, str) and init == "k-means++":
        centers, _ = _kmeans_plusplus(
            Xc, k, x_squared_norms=x_sq, sample_weight=sw, random_state=rs
        )
    elif isinstance(init, str) and init == "random":
        seeds = rs.choice(Xc.shape[0], size=k, replace=False, p=sw / sw.sum())
        centers = Xc[seeds]
    else:
        raise ValueError(f"unsupported init {init!r}")
    return np.ascontiguousarray(centers, dtype=np.float64)


def _fit_k(Xc, x_sq, k, tols_abs, max_iter, init, random_state, n_threads):
    centers_init = _init_centers(Xc, x_sq, k, init, random_state)
    res, _ = _kmeans_one_k(Xc, x_sq, centers_init, tols_abs, max_iter, n_threads)
    return k, res


def kmeans_grid(
    X,
    n_clusters_list,
    tol_list,
    *,
    random_state=0,
    max_iter=300,
    init="k-means++",
    n_jobs=None,
):
    """Fit k-means for every (n_clusters, tol) pair.

    Equivalent to ``KMeans(n_clusters=k, tol=tol, init=init, n_init=1,
    random_state=random_state, max_iter=max_iter, algorithm="lloyd").fit(X)``
    for each pair (``n_init="auto"`` is 1 for k-means++ and random init is
    not supported with several starts).  ``X`` is a float64 array, already
    scaled.  ``random_state`` must be an int (each fit starts from a fresh
    ``RandomState(random_state)``, as separate estimators would).

    Returns ``{(k, tol): KMeansResult}``.
    """
    from sklearn.utils.extmath import row_norms

    if random_state is not None and not isinstance(random_state, (int, np.integer)):
        raise TypeError("random_state must be an int or None")
    X = np.array(X, dtype=np.float64, order="C", copy=True)
    if X.ndim != 2:
        raise ValueError("X must be 2-D")
    n = X.shape[0]
    ks = sorted({int(k) for k in n_clusters_list}, reverse=True)
    tols = sorted({float(t) for t in tol_list})
    for k in ks:
        if not 1 <= k <= n:
            raise ValueError(f"n_clusters={k} must be in [1, n_samples={n}]")
    mean_var = np.mean(np.var(X, axis=0))
    tol_abs = {t: (0 if t == 0 else mean_var * t) for t in tols}
    X_mean = X.mean(axis=0)
    X -= X_mean
    x_sq = row_norms(X, squared=True)

    n_jobs = _resolve_jobs(n_jobs, len(ks))
    args = [(X, x_sq, k, list(tol_abs.values()), max_iter, init, random_state) for k in ks]
    if n_jobs == 1:
        fitted = [_fit_k(*a, n_threads=_n_threads()) for a in args]
    else:
        fitted = _run_threads(_fit_k, args, n_jobs)

    out = {}
    for k, res in fitted:
        for t in tols:
            labels, C, inertia, n_iter = res[tol_abs[t]]
            out[(k, t)] = KMeansResult(
                labels=labels,
                cluster_centers=C + X_mean,
                inertia=inertia,
                n_iter=int(n_iter),
            )
    return {key: out[key] for key in sorted(out)}


def _resolve_jobs(n_jobs, n_tasks):
    if n_jobs is None:
        n_jobs = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(int(n_jobs), n_tasks))


def _run_threads(fn, args, n_jobs):
    """Run fn(*a, n_threads=1) for each a on n_jobs threads, BLAS single-threaded.

    Tasks are handed out largest first (callers sort them that way)."""
    from concurrent.futures import ThreadPoolExecutor

    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        with ThreadPoolExecutor(max_workers=n_jobs) as ex:
            futs = [ex.submit(fn, *a, n_threads=1) for a in args]
            return [f.result() for f in futs]
