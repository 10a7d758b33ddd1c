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

from . import _grid_kernels as _K
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

# rows per gemm block when recomputing distances
_BLOCK = 2048


def _n_threads() -> int:
    from sklearn.utils._openmp_helpers import _openmp_effective_n_threads

    return _openmp_effective_n_threads()


class _Assigner:
    """Nearest-center assignment that agrees with scikit-learn's Lloyd E-step.

    scikit-learn labels a point by argmin over centers of ``||c||^2 - 2 x.c``
    (BLAS gemm).  Points whose label provably cannot change (Hamerly's
    bounds, with a margin far wider than that formula's rounding error) are
    skipped; every other point is recomputed with the very same gemm
    formula, so near-ties are decided exactly as scikit-learn decides them.
    """

    def __init__(self, X: np.ndarray, x_sq: np.ndarray):
        self.X = X
        self.x_sq = x_sq
        n = X.shape[0]
        self.base = _MARGIN * (x_sq + 1.0)
        self.labels = np.zeros(n, dtype=np.int32)
        self.upper = np.zeros(n)
        self.lower = np.zeros(n)
        self.rows = np.empty(n, dtype=np.int64)
        self.prev_centers = None
        self.history = []  # rows recomputed per step (diagnostics)

    def assign(self, C: np.ndarray) -> np.ndarray:
        """Assign every point to its nearest center of C; return moved rows."""
        C = np.ascontiguousarray(C, dtype=np.float64)
        k = C.shape[0]
        c_sq = np.einsum("ij,ij->i", C, C)
        delta_c = _MARGIN * float(c_sq.max())
        before = None if self.prev_centers is None else self.labels.copy()
        full = before is None or k == 1
        if full:
            rows = np.arange(self.X.shape[0])
        else:
            shift = np.sqrt(((C - self.prev_centers) ** 2).sum(axis=1))
            order = np.argsort(shift, kind="stable")
            pmax = np.full(k, shift[order[-1]])
            pmax[order[-1]] = shift[order[-2]]
            diffc = C[:, None, :] - C[None, :, :]
            cc = np.sqrt((diffc**2).sum(axis=2))
            np.fill_diagonal(cc, np.inf)
            half_sep = 0.5 * cc.min(axis=1)
            m = _K.hamerly_filter(
                self.X, C, shift, pmax, half_sep, self.labels, self.upper,
                self.lower, self.base, delta_c, self.rows,
            )
            rows = self.rows[:m]
        CT = np.ascontiguousarray(C.T)
        for s in range(0, rows.shape[0], _BLOCK):
            r = rows[s : s + _BLOCK]
            Xb = self.X[s : s + _BLOCK] if full else self.X[r]
            D = Xb @ CT
            D *= -2.0
            D += c_sq
            if k == 1:
                self.labels[r] = 0
                diff = Xb - C[0]
                self.upper[r] = np.sqrt(np.einsum("ij,ij->i", diff, diff))
                self.lower[r] = np.inf
            else:
                _K.finish_rows(
                    self.X, self.x_sq, C, D, r, self.labels, self.upper,
                    self.lower, self.base, delta_c,
                )
        self.history.append(int(rows.shape[0]))
        self.prev_centers = C.copy()
        if before is None:
            return rows
        return np.flatnonzero(self.labels != before)


def _kmeans_one_k(Xc, x_sq, centers_init, tols_abs, max_iter, n_threads):
    """Lloyd's run to the smallest tolerance; snapshot every larger tolerance.

    Mirrors ``sklearn.cluster._kmeans._kmeans_single_lloyd`` step by step:
    E-step, M-step (with scikit-learn's empty-cluster relocation), strict
    convergence when labels do not change, else stop when the squared
    center shift total is <= tol, then a final E-step with the last centers.
    Returns {tol_abs: (labels, centers (centered), inertia, n_iter)}.
    """
    if not _K.AVAILABLE:
        return _lloyd_sklearn_kernel(Xc, centers_init, tols_abs, max_iter, n_threads)
    from sklearn.cluster._k_means_common import (
        _inertia_dense,
        _relocate_empty_clusters_dense,
    )

    n, d = Xc.shape
    k = centers_init.shape[0]
    sw = np.ones(n, dtype=np.float64)
    remaining = sorted(set(tols_abs), reverse=True)
    out = {}
    pending = []  # (tol, centers, n_iter) waiting for their final E-step

    asg = _Assigner(Xc, x_sq)
    centers = np.array(centers_init, dtype=np.float64, order="C")
    S = W = None
    labels_old = None

    def finish(tol, C, labels, n_iter):
        lab = np.ascontiguousarray(labels, dtype=np.int32).copy()
        inertia = float(_inertia_dense(Xc, sw, C, lab, n_threads))
        out[tol] = (lab, C.copy(), inertia, n_iter)

    relocated = False
    for i in range(max_iter):
        changed = asg.assign(centers)
        labels = asg.labels
        # this E-step is the final re-assignment of every tolerance that
        # stopped at the previous iteration
        for tol, C, it in pending:
            finish(tol, C, labels, it)
        pending = []
        if not remaining:
            return out
        # M-step: per-cluster sums, updated from the points that moved
        if labels_old is None or relocated or changed.size * 2 > n:
            S, W = _K.cluster_sums(Xc, labels, np.arange(n), k)
        elif changed.size:
            _K.move_sums(Xc, labels_old, labels, changed, S, W)
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
        if labels_old is not None and changed.size == 0:
            # strict convergence: labels unchanged, no re-assignment
            for tol in remaining:
                finish(tol, centers_new, labels, i + 1)
            return out
        shift = np.sqrt(((centers_new - centers) ** 2).sum(axis=1))
        shift_tot = float((shift**2).sum())
        for t in [t for t in remaining if shift_tot <= t]:
            pending.append((t, centers_new, i + 1))
            remaining.remove(t)
        labels_old = labels.copy()
        centers = centers_new
    # max_iter reached: every tolerance still running stops here
    pending += [(t, centers, max_iter) for t in remaining]
    asg.assign(centers)
    for tol, C, it in pending:
        finish(tol, C, asg.labels, it)
    return out


def _lloyd_sklearn_kernel(Xc, centers_init, tols_abs, max_iter, n_threads):
    """Fallback without numba: scikit-learn's own Lloyd kernel, one run for all tols."""
    from sklearn.cluster._k_means_common import _inertia_dense
    from sklearn.cluster._k_means_lloyd import lloyd_iter_chunked_dense

    n = Xc.shape[0]
    k = centers_init.shape[0]
    sw = np.ones(n, dtype=np.float64)
    centers = np.array(centers_init, dtype=np.float64, order="C")
    centers_new = np.zeros_like(centers)
    labels = np.full(n, -1, dtype=np.int32)
    labels_old = labels.copy()
    weight = np.zeros(k)
    shift = np.zeros(k)
    remaining = sorted(set(tols_abs), reverse=True)
    out = {}

    def finish(tol, C, n_iter, reassign):
        lab = labels.copy()
        if reassign:
            lloyd_iter_chunked_dense(
                Xc, sw, C, C, weight, lab, shift, n_threads, update_centers=False
            )
        out[tol] = (lab, C.copy(), float(_inertia_dense(Xc, sw, C, lab, n_threads)), n_iter)

    for i in range(max_iter):
        lloyd_iter_chunked_dense(
            Xc, sw, centers, centers_new, weight, labels, shift, n_threads
        )
        centers, centers_new = centers_new, centers
        if np.array_equal(labels, labels_old):
            for t in remaining:
                finish(t, centers, i + 1, False)
            return out
        tot = (shift**2).sum()
        for t in [t for t in remaining if tot <= t]:
            finish(t, centers, i + 1, True)
            remaining.remove(t)
        if not remaining:
            return out
        labels_old[:] = labels
    for t in remaining:
        finish(t, centers, max_iter, True)
    return out


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
    res = _kmeans_one_k(Xc, x_sq, centers_init, tols_abs, max_iter, n_threads)
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

    args = [(X, x_sq, k, list(tol_abs.values()), max_iter, init, random_state) for k in ks]
    n_jobs = _resolve_jobs(n_jobs, len(ks))
    # one k per thread (largest first); BLAS single-threaded (small gemms
    # across threads are slower, and much slower when cores are shared)
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
        if n_jobs == 1:
            return [fn(*a, n_threads=1) for a in args]
        with ThreadPoolExecutor(max_workers=n_jobs) as ex:
            futs = [ex.submit(fn, *a, n_threads=1) for a in args]
            return [f.result() for f in futs]
