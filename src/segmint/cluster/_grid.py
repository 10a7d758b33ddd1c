"""Grid fits for repeated cluster analysis on one data set.

A parameter sweep fits the same data many times.  Most of that work is
shared between settings, so this module fits a whole grid at once and
returns, for every setting, the result scikit-learn would give for that
setting alone:

* ``kmeans_grid``: for one ``n_clusters`` the k-means++ start and Lloyd's
  iterations do not depend on ``tol``; one run to the smallest tolerance
  yields every larger tolerance's answer at the iteration where it would
  have stopped (scikit-learn's stopping rules, final re-assignment and
  empty-cluster relocation reproduced).  k-means++ starts are shared
  between values of k that draw as many candidates per step (and their
  element-wise steps run fused, same numbers).  Iterations skip points
  whose label provably cannot change (distance bounds, with a safety
  margin far wider than the rounding error of scikit-learn's own distance
  formula); the other points get all their distances from a float32 gemm,
  and those whose nearest center does not win by more than the float32
  error bound get scikit-learn's float64 formula itself, so labels,
  iteration counts and inertia are scikit-learn's (except where a point is
  exactly as far from two centres: centres here differ from scikit-learn's
  by a few ulps, so such a tie can go the other way; see BENCHMARKS.md,
  "Equality beyond the benchmark data").  Different
  ``n_clusters`` run in parallel threads.  Without numba, the iterations
  use scikit-learn's own Lloyd kernel (still one run per k).
* ``dbscan_grid``: one radius-neighbour pass at the largest ``eps`` (with
  distances, computed by scikit-learn itself; for the brute algorithm only
  against points that a projection bound cannot rule out) serves every
  ``eps`` and ``min_samples``.  Clusters are
  connected components of core points; a border point gets the cluster of
  the first component (in scikit-learn's order) that reaches it, which is
  what scikit-learn's depth-first search does.  The neighbour graph is kept
  only while it fits ``graph_budget``; past it, each block's pairs go into
  every setting's union-find as they arrive and are dropped, so memory is
  O(n) per setting plus one block of queries, whatever the number of pairs.

``to_sklearn_kmeans`` / ``to_sklearn_dbscan`` turn a result into a fitted
scikit-learn estimator.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy import sparse
from scipy.sparse.csgraph import connected_components
from sklearn.cluster import DBSCAN, KMeans
from sklearn.neighbors import NearestNeighbors
from sklearn.utils import check_array, check_random_state

from segmint._threads import map_in_threads, threads
from segmint.prepare._checks import locate_nonfinite

from . import _grid_kernels as _K
from ._sklearn_compat import (
    ALLOW_NONFINITE,
    _euclidean_distances,
    _inertia_dense,
    _kmeans_plusplus,
    _openmp_effective_n_threads,
    _relocate_empty_clusters_dense,
    lloyd_iter_chunked_dense,
    row_norms,
)

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

# bounds kept per point for this many nearest other centers
_TOP_M = 2

# rows per gemm block when recomputing distances
_BLOCK = 16384

# pieces of an assignment step that idle threads share: at least this many
# rows, a multiple of the float32 kernel's tile (``_grid_kernels._TILE``), so
# that every row goes through the very code it goes through in one pass
_PIECE = 2048
_TILE_ROWS = 128

# rows per piece of the bound filter, at least
_FILTER_PIECE = 16384

# float32 unit roundoff; (d + 3) * 2 * this bounds, relative to
# ||x||^2 + ||c||^2, the error of ||c||^2 - 2 x.c from float32 inputs and
# float32 sums (factor 2 for safety)
_F32_ERR = 2.0 * 2.0**-24


def _n_threads() -> int:
    return _openmp_effective_n_threads()


class _Workspace:
    """Per-row arrays of one k-means fit, reused by the next fit on the same
    thread (every value is written before it is read): no fresh pages to
    fault in for every k."""

    def __init__(self, n):
        self.labels = np.zeros(n, dtype=np.int32)
        self.amb = np.empty(n, dtype=np.int64)
        self.moved = np.empty(n, dtype=np.int64)
        self.moved_from = np.empty(n, dtype=np.int32)
        self.U = np.empty(n)
        self.R = np.empty(n)
        self.cand = np.empty(n * _TOP_M, dtype=np.int32)
        self.L = np.empty(n * _TOP_M)
        # per piece of a block: the rows that changed label, and their old labels
        self.piece_moved = np.empty(min(n, _BLOCK), dtype=np.int64)
        self.piece_from = np.empty(min(n, _BLOCK), dtype=np.int32)


def _serial(fn: Callable[[int], None], n: int) -> None:
    for i in range(n):
        fn(i)


def _one_piece(n_rows: int, min_rows: int) -> int:
    return max(1, n_rows)


def _piece_rows(n_rows: int, min_rows: int, parts: int) -> int:
    """Rows per piece to cut ``n_rows`` into at most ``parts`` pieces of at
    least ``min_rows`` rows, a multiple of ``_TILE_ROWS``."""
    parts = max(1, min(parts, n_rows // min_rows))
    size = -(-n_rows // parts)
    return max(1, -(-size // _TILE_ROWS) * _TILE_ROWS)


class _Assigner:
    """Nearest-center assignment that agrees with scikit-learn's Lloyd E-step.

    scikit-learn labels a point by argmin over centers of ``||c||^2 - 2 x.c``
    (float64 BLAS gemm).  Here:

    * points whose label provably cannot change are skipped: bounds on the
      distance to their center and to their m nearest other centers (and
      to all the rest), with a margin far wider than that formula's
      rounding error;
    * every other point gets all its distances: a float32 gemm, where the
      nearest center wins by more than the float32 error bound (plus the
      margin), else scikit-learn's very formula (blocked float64 gemm,
      ``||c||^2 - 2 x.c``, first argmin); either way all its bounds are
      renewed.
    """

    def __init__(self, X, x_sq, k, X32=None, work=None, base=None, pieces=None):
        self.X = X
        # pieces = (run, split): split(n_rows, min_rows) is the rows per piece
        # (more pieces when threads are idle), run(fn, n) calls fn(0), ...,
        # fn(n - 1) on any threads; the pieces write disjoint rows and are
        # gathered in order, so the result is one pass's whatever the threads
        self.run, self.split = (_serial, _one_piece) if pieces is None else pieces
        self.X32 = X32
        self.amb32 = np.empty(_BLOCK, dtype=np.int64)
        self.n_exact = 0  # rows the float32 pass left to the float64 formula
        self.x_sq = x_sq
        n = X.shape[0]
        self.base = _MARGIN * (x_sq + 1.0) if base is None else base
        self.dl_base = float(self.base.max()) if n else 0.0
        w = work if work is not None else _Workspace(n)
        m = max(1, min(_TOP_M, k - 1))
        self.labels = w.labels
        self.amb = w.amb
        self.piece_moved, self.piece_from = w.piece_moved, w.piece_from
        # rows whose label changed in a step, and their previous labels
        self.moved, self.moved_from = w.moved, w.moved_from
        self.n_moved = np.zeros(1, dtype=np.int64)
        # bounds in drift coordinates (see _grid_kernels.bound_filter)
        self.U = w.U
        self.cand_idx = w.cand[: n * m].reshape(n, m)
        self.L = w.L[: n * m].reshape(n, m)
        self.R = w.R
        self.Snow = np.zeros(k)  # cumulative movement of each center
        self.smax = 0.0  # cumulative largest movement
        self.step = 0
        self.prev_centers = None

    def _rows64(self, rows, C, c_sq, delta_c, contiguous=False):
        """All distances of ``rows``: float32 gemm first; rows whose nearest
        center does not win by the float32 error bound (plus margin) get
        scikit-learn's float64 formula."""
        if self.X32 is None:
            return self._rows_exact(rows, C, c_sq, delta_c, contiguous)
        CT32 = np.ascontiguousarray(C.T, dtype=np.float32)
        c_sq_max = float(c_sq.max())
        # + the key's dropped low bits (< 2**(kbits-51) relative to
        # ||x||^2 + max ||c||^2) and float64 rounding of w (< 2**-50)
        kbits = max(1, (C.shape[0] - 1).bit_length())
        err_rel = _F32_ERR * (self.X.shape[1] + 3) + 2.0 ** (kbits - 50)
        redo = []
        for s in range(0, rows.shape[0], _BLOCK):
            r = rows[s : s + _BLOCK]
            nb = r.shape[0]
            size = self.split(nb, _PIECE)
            n_pieces = -(-nb // size)
            if contiguous:
                Xb = self.X32[s : s + _BLOCK]
            elif n_pieces == 1:
                Xb = np.take(self.X32, r, axis=0)
            else:  # the same array, gathered by pieces
                Xb = np.empty((nb, self.X32.shape[1]), dtype=np.float32)
                self.run(lambda p, r=r, Xb=Xb, z=size: self._gather(r, Xb, p * z, z), n_pieces)
            P = Xb @ CT32  # one product per block, as in one pass
            n_mv = np.zeros(n_pieces, dtype=np.int64)
            n_out = np.zeros(n_pieces, dtype=np.int64)

            def finish(p, P=P, r=r, n_mv=n_mv, n_out=n_out, size=size):
                a = p * size
                b = a + size
                n_out[p] = _K.finish_rows_f32(
                    self.x_sq, c_sq, P[a:b], r[a:b], self.labels, self.U, self.cand_idx,
                    self.L, self.R, self.Snow, self.smax, self.base, delta_c,
                    err_rel, c_sq_max, self.amb32[a:b], kbits,
                    self.piece_moved[a:b], self.piece_from[a:b], n_mv[p : p + 1],
                )

            self.run(finish, n_pieces)
            # gathered in row order: what one pass over the block writes
            nm = int(self.n_moved[0])
            for p in range(n_pieces):
                a, c = p * size, int(n_mv[p])
                self.moved[nm : nm + c] = self.piece_moved[a : a + c]
                self.moved_from[nm : nm + c] = self.piece_from[a : a + c]
                nm += c
                if n_out[p]:
                    redo.append(self.amb32[a : a + n_out[p]].copy())
            self.n_moved[0] = nm
        if redo:
            rr = np.concatenate(redo)
            self.n_exact += rr.shape[0]
            self._rows_exact(rr, C, c_sq, delta_c)

    def _gather(self, r, Xb, a, size):
        np.take(self.X32, r[a : a + size], axis=0, out=Xb[a : a + size], mode="clip")

    def _filter(self, delta_c):
        """``bound_filter`` over all rows, by pieces; the rows it keeps, in order,
        are gathered at the front of ``self.amb``; returns their count."""
        n = self.X.shape[0]
        size = self.split(n, _FILTER_PIECE)
        n_pieces = -(-n // size)
        counts = np.zeros(n_pieces, dtype=np.int64)
        dl = self.dl_base + delta_c

        def one(p):
            lo = p * size
            hi = min(n, lo + size)
            counts[p] = _K.bound_filter(
                self.Snow, self.smax, self.labels, self.U, self.cand_idx,
                self.L, self.R, dl, self.amb[lo:hi], lo, hi,
            )

        self.run(one, n_pieces)
        n_amb = int(counts[0])
        for p in range(1, n_pieces):
            lo, c = p * size, int(counts[p])
            if c:
                self.amb[n_amb : n_amb + c] = self.amb[lo : lo + c].copy()
                n_amb += c
        return n_amb

    def _rows_exact(self, rows, C, c_sq, delta_c, contiguous=False):
        CT = np.ascontiguousarray(C.T)
        for s in range(0, rows.shape[0], _BLOCK):
            r = rows[s : s + _BLOCK]
            Xb = self.X[s : s + _BLOCK] if contiguous else np.take(self.X, r, axis=0)
            D = Xb @ CT
            D *= -2.0
            D += c_sq
            _K.finish_rows_topm(
                self.x_sq, D, r, self.labels, self.U, self.cand_idx,
                self.L, self.R, self.Snow, self.smax, self.base, delta_c,
                self.moved, self.moved_from, self.n_moved,
            )

    def assign(self, C: np.ndarray):
        """Assign every point to its nearest center of C.

        Returns None on the first call (every row is new), else
        ``(rows, previous labels)`` of the rows whose label changed (views
        that the next call overwrites).
        """
        C = np.ascontiguousarray(C, dtype=np.float64)
        k = C.shape[0]
        first = self.prev_centers is None
        self.n_moved[0] = 0
        if k == 1:
            self.labels[:] = 0
        else:
            c_sq = np.einsum("ij,ij->i", C, C)
            delta_c = _MARGIN * float(c_sq.max())
            if not first:
                shift = np.sqrt(((C - self.prev_centers) ** 2).sum(axis=1))
                self.Snow += shift
                self.smax += float(shift.max())
            if first:
                self._rows64(np.arange(self.X.shape[0]), C, c_sq, delta_c, True)
                n_amb = 0
            else:
                n_amb = self._filter(delta_c)
            if n_amb:
                self._rows64(self.amb[:n_amb], C, c_sq, delta_c)
        self.prev_centers = C.copy()
        self.step += 1
        if first:
            return None
        nm = int(self.n_moved[0])
        return self.moved[:nm], self.moved_from[:nm]


def _kmeans_one_k(
    Xc, x_sq, centers_init, tols_abs, max_iter, n_threads, X32=None, work=None, base=None,
    pieces=None,
):
    """Lloyd's run to the smallest tolerance; snapshot every larger tolerance.

    Mirrors ``sklearn.cluster._kmeans._kmeans_single_lloyd`` step by step:
    E-step, M-step (with scikit-learn's empty-cluster relocation), strict
    convergence when labels do not change, else stop when the squared
    center shift total is <= tol, then a final E-step with the last centers.
    Returns {tol_abs: (labels, centers (centered), inertia, n_iter)}.
    """
    if not _K.AVAILABLE:
        return _lloyd_sklearn_kernel(Xc, centers_init, tols_abs, max_iter, n_threads)
    n, d = Xc.shape
    k = centers_init.shape[0]
    sw = np.ones(n, dtype=np.float64)
    remaining = sorted(set(tols_abs), reverse=True)
    out = {}
    pending = []  # (tol, centers, n_iter) waiting for their final E-step

    asg = _Assigner(Xc, x_sq, k, X32, work, base, pieces)
    centers = np.array(centers_init, dtype=np.float64, order="C")
    S = W = None

    def finish(tol, C, labels, n_iter):
        lab = np.ascontiguousarray(labels, dtype=np.int32).copy()
        inertia = float(_inertia_dense(Xc, sw, C, lab, n_threads))
        out[tol] = (lab, C.copy(), inertia, n_iter)

    relocated = False
    for i in range(max_iter):
        moved = asg.assign(centers)
        n_moved = n if moved is None else moved[0].size
        labels = asg.labels
        # this E-step is the final re-assignment of every tolerance that
        # stopped at the previous iteration
        for tol, C, it in pending:
            finish(tol, C, labels, it)
        pending = []
        if not remaining:
            return out
        # M-step: per-cluster sums, updated from the points that moved
        if moved is None or relocated or n_moved * 2 > n:
            S, W = _K.cluster_sums(Xc, labels, np.arange(n), k)
        elif n_moved:
            _K.move_sums(Xc, moved[1], labels, moved[0], S, W)
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
        if moved is not None and n_moved == 0:
            # strict convergence: labels unchanged, no re-assignment
            for tol in remaining:
                finish(tol, centers_new, labels, i + 1)
            return out
        shift = np.sqrt(((centers_new - centers) ** 2).sum(axis=1))
        shift_tot = float((shift**2).sum())
        for t in [t for t in remaining if shift_tot <= t]:
            pending.append((t, centers_new, i + 1))
            remaining.remove(t)
        centers = centers_new
    # max_iter reached: every tolerance still running stops here
    pending += [(t, centers, max_iter) for t in remaining]
    asg.assign(centers)
    for tol, C, it in pending:
        finish(tol, C, asg.labels, it)
    return out


def _lloyd_sklearn_kernel(Xc, centers_init, tols_abs, max_iter, n_threads):
    """Fallback without numba: scikit-learn's own Lloyd kernel, one run for all tols."""
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
    rs = check_random_state(random_state)
    sw = np.ones(Xc.shape[0], dtype=np.float64)
    if isinstance(init, str) and init == "k-means++":
        if _K.AVAILABLE:
            centers = _kmeans_plusplus_fused(Xc, k, x_sq, sw, rs)
        else:
            centers, _ = _kmeans_plusplus(
                Xc, k, x_squared_norms=x_sq, sample_weight=sw, random_state=rs
            )
    elif isinstance(init, str) and init == "random":
        seeds = rs.choice(Xc.shape[0], size=k, replace=False, p=sw / sw.sum())
        centers = Xc[seeds]
    else:
        raise ValueError(f"unsupported init {init!r}")
    return np.ascontiguousarray(centers, dtype=np.float64)


def _kmeans_plusplus_fused(X, k, x_sq, sw, rs):
    """scikit-learn's ``_kmeans_plusplus`` (dense X), the same centers bit
    for bit: the same random draws, and the same BLAS calls for the
    candidate dot products and the candidate potentials (their summation
    order is the library's), while the element-wise steps between them
    (scale, add both norms, clip at 0, minimum with the closest distance,
    weighted cumulative sum) run in one compiled pass instead of six
    numpy passes over a (candidates x rows) array."""
    n, d = X.shape
    centers = np.empty((k, d), dtype=X.dtype)
    n_local_trials = 2 + int(np.log(k))
    center_id = rs.choice(n, p=sw / sw.sum())
    centers[0] = X[center_id]
    closest = _euclidean_distances(
        centers[0, np.newaxis], X, Y_norm_squared=x_sq, squared=True
    )
    current_pot = closest @ sw
    closest = closest[0]
    csum = np.empty(n)
    for c in range(1, k):
        rand_vals = rs.uniform(size=n_local_trials) * current_pot
        _K.weighted_cumsum(sw, closest, csum)
        candidate_ids = np.searchsorted(csum, rand_vals)
        np.clip(candidate_ids, None, n - 1, out=candidate_ids)
        Y = X[candidate_ids]
        P = Y @ X.T
        _K.pp_candidates(P, row_norms(Y, squared=True), x_sq, closest)
        candidates_pot = P @ sw.reshape(-1, 1)
        best = np.argmin(candidates_pot)
        current_pot = candidates_pot[best]
        closest = P[best]
        centers[c] = X[candidate_ids[best]]
    return centers


def _init_plan(ks: Iterable[int], init: str, random_state: int | None) -> dict[int, int]:
    """{k: k whose k-means++ start it shares} (its centers are a prefix).

    scikit-learn's k-means++ draws ``2 + int(log(k))`` candidates per step
    from a fresh ``RandomState(random_state)``; for two values of k with the
    same number of candidates the first steps are the same computation, so
    the smaller k's centers are the first rows of the larger k's.
    """
    if isinstance(init, str) and init == "k-means++" and random_state is not None:
        groups: dict[int, int] = {}
        for k in ks:
            g = 2 + int(np.log(k))
            groups[g] = max(groups.get(g, 0), k)
        return {k: groups[2 + int(np.log(k))] for k in ks}
    return {k: k for k in ks}


def _run_pipeline(
    Xc: np.ndarray,
    x_sq: np.ndarray,
    ks: list[int],
    init: str,
    random_state: int | None,
    fit_args: tuple[list[float], int, Callable[[], np.ndarray] | None],
    n_jobs: int,
) -> dict[int, dict]:
    """Starts and fits on n_jobs threads, BLAS single-threaded.

    Shared starts run first (largest first); a thread that finds no start
    left takes the first fit (largest k first) whose start is ready, so no
    thread idles while the slowest start is still running.  A thread that
    finds no fit left to start helps the running fits: their assignment
    steps are cut into pieces of rows that any idle thread may take (so one
    k, or fewer k than threads, still uses every thread).  The float32
    copy of the data (``fit_args[2]``: a callable, or None for no copy) is
    made by the thread that finishes the shorter starts, while the other
    still runs the longest one; fits wait for it.
    Returns {k: fit result}.
    """
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from threadpoolctl import threadpool_limits

    plan = _init_plan(ks, init, random_state)
    todo_init = [("init", k) for k in sorted(set(plan.values()), reverse=True)]
    tols_abs, max_iter, make_x32 = fit_args
    x32: dict[str, object] = {}
    if make_x32 is None:
        x32["X"] = None
    else:
        todo_init.append(("x32", 0))
    todo_fit = list(ks)  # largest first
    starts: dict[int, np.ndarray] = {}
    fits: dict[int, dict] = {}
    cond = threading.Condition()
    errors: list[BaseException] = []
    # pieces of the running fits' assignment steps: [fn, n, next, done, error]
    jobs: list[list] = []
    running = [0]  # fits in progress
    idle = [0]  # workers waiting for a task

    def take():
        with cond:
            while True:
                if errors:
                    return None
                if todo_init:
                    return todo_init.pop(0)
                for k in todo_fit:
                    if plan[k] in starts and "X" in x32:
                        todo_fit.remove(k)
                        running[0] += 1
                        return ("fit", k)
                for job in jobs:  # no fit to start: help a running one
                    if job[2] < job[1]:
                        job[2] += 1
                        return ("piece", job, job[2] - 1)
                if not todo_fit and not running[0]:
                    return None
                idle[0] += 1
                cond.wait()
                idle[0] -= 1

    def run_piece(job, i):
        error = None
        try:
            job[0](i)
        except BaseException as exc:  # pragma: no cover - re-raised by the fit
            error = exc
        with cond:
            if error is not None and job[4] is None:
                job[4] = error
            job[3] += 1
            if job[3] == job[1]:
                cond.notify_all()

    def split(n_rows, min_rows):
        """Rows per piece: one piece for this thread and one per idle worker."""
        if n_jobs == 1 or not idle[0]:
            return max(1, n_rows)
        return _piece_rows(n_rows, min_rows, 1 + idle[0])

    def run_pieces(fn, n):
        """fn(0..n-1): this thread takes pieces, and so do idle workers."""
        if n == 1 or n_jobs == 1:
            _serial(fn, n)
            return
        job: list = [fn, n, 0, 0, None]
        with cond:
            jobs.append(job)
            cond.notify_all()
        while True:
            with cond:
                if job[2] >= n:
                    break
                i = job[2]
                job[2] += 1
            run_piece(job, i)
        with cond:
            while job[3] < n:
                cond.wait()
            jobs.remove(job)
        if job[4] is not None:
            raise job[4]

    base = _MARGIN * (x_sq + 1.0)  # per-row margins, shared by every k

    def worker():
        work = None  # this thread's per-row arrays, reused from k to k
        while True:
            task = take()
            if task is None:
                return
            if task[0] == "piece":
                run_piece(task[1], task[2])
                continue
            kind, k = task
            try:
                if kind == "init":
                    c = _init_centers(Xc, x_sq, k, init, random_state)
                    with cond:
                        starts[k] = c
                        cond.notify_all()
                elif kind == "x32":
                    a = make_x32()
                    with cond:
                        x32["X"] = a
                        cond.notify_all()
                else:
                    c0 = starts[plan[k]]
                    c0 = c0 if plan[k] == k else np.ascontiguousarray(c0[:k])
                    if work is None:
                        work = _Workspace(Xc.shape[0])
                    fits[k] = _kmeans_one_k(
                        Xc, x_sq, c0, tols_abs, max_iter, 1, x32["X"], work, base,
                        (run_pieces, split),
                    )
                    with cond:
                        running[0] -= 1
                        cond.notify_all()
            except BaseException as exc:  # pragma: no cover - re-raised below
                with cond:
                    errors.append(exc)
                    cond.notify_all()
                return

    with threadpool_limits(limits=1, user_api="blas"):
        if n_jobs == 1:
            worker()
        else:
            with ThreadPoolExecutor(max_workers=n_jobs) as ex:
                for f in [ex.submit(worker) for _ in range(n_jobs)]:
                    f.result()
    if errors:
        raise errors[0]
    return fits


def kmeans_grid(
    X: ArrayLike,
    n_clusters_list: Iterable[int],
    tol_list: Iterable[float],
    *,
    random_state: int | None = 0,
    max_iter: int = 300,
    init: str = "k-means++",
    n_jobs: int | None = None,
) -> dict[tuple[int, float], KMeansResult]:
    """Fit k-means for every (n_clusters, tol) pair.

    Equivalent to ``KMeans(n_clusters=k, tol=tol, init=init, n_init=1,
    random_state=random_state, max_iter=max_iter, algorithm="lloyd").fit(X)``
    for each pair (one start: ``n_init="auto"`` is 1 for k-means++; with
    ``init="random"`` this matches ``n_init=1``).  ``X`` is a float64 array,
    already scaled.  ``random_state`` must be an int (each fit starts from
    a fresh ``RandomState(random_state)``, as separate estimators would) or
    None.  ``n_jobs`` threads (default: ``segmint._threads.threads()``) fit
    different k, and split the rows of one k's assignment step.

    ``X`` is checked by scikit-learn's rules (2-D, numeric, at least one
    row and one feature) and must be finite: a NaN or inf raises a
    ``ValueError`` naming its column and rows, before any fit.

    Returns ``{(k, tol): KMeansResult}``.
    """
    if random_state is not None and not isinstance(random_state, (int, np.integer)):
        raise TypeError("random_state must be an int or None")
    X = _checked(X)  # read only: not copied when already float64, C-ordered
    n = X.shape[0]
    ks = sorted({int(k) for k in n_clusters_list}, reverse=True)
    tols = sorted({float(t) for t in tol_list})
    for k in ks:
        if not 1 <= k <= n:
            raise ValueError(f"n_clusters={k} must be in [1, n_samples={n}]")
    # the mean of the C-ordered float64 data: scikit-learn's X.mean(axis=0)
    X_mean = X.mean(axis=0)
    # more threads than k values help only by sharing one k's rows
    n_jobs = _resolve_jobs(n_jobs, len(ks) if n < 2 * _PIECE or not _K.AVAILABLE else n)
    make_x32 = None
    if _K.AVAILABLE:
        # X - X_mean in one pass (no copy-then-subtract, no max/min passes)
        Xc, amax = _center_copy(X, X_mean)
        # float32 copy for the distance gemm (near ties re-done in float64),
        # only where it cannot overflow (|x_f c_f| summed stays < 3e38);
        # made inside the pipeline, in parallel with the k-means++ starts
        if amax < 1e18:
            def make_x32():
                X32 = np.empty(Xc.shape, dtype=np.float32)
                _K.to_float32(Xc, X32)
                return X32
        # np.var(X, axis=0) bit for bit (same mean, same sequential sums),
        # without its n x d temporary
        mean_var = np.mean(_K.centered_var(Xc))
    else:
        Xc = np.array(X, copy=True)
        mean_var = np.mean(np.var(Xc, axis=0))
        Xc -= X_mean
    del X  # the fits need only the centred copy (a converted input is freed)
    tol_abs = {t: (0 if t == 0 else mean_var * t) for t in tols}
    x_sq = row_norms(Xc, squared=True)

    # one k per thread (largest first); BLAS single-threaded (small gemms
    # across threads are slower, and much slower when cores are shared)
    fitted = _run_pipeline(
        Xc, x_sq, ks, init, random_state,
        (list(tol_abs.values()), max_iter, make_x32), n_jobs,
    )

    out = {}
    for k, res in fitted.items():
        for t in tols:
            labels, C, inertia, n_iter = res[tol_abs[t]]
            out[(k, t)] = KMeansResult(
                labels=labels,
                cluster_centers=C + X_mean,
                inertia=inertia,
                n_iter=int(n_iter),
            )
    return {key: out[key] for key in sorted(out)}


def _checked(X: ArrayLike) -> np.ndarray:
    """X as KMeans and DBSCAN accept it (scikit-learn's ``check_array``), as a
    float64 C-ordered array; NaN or inf raise a ValueError saying where: one
    NaN would otherwise give every k-means solution a single cluster."""
    arr: np.ndarray = check_array(X, dtype=np.float64, order="C", input_name="X", **ALLOW_NONFINITE)
    found = locate_nonfinite(arr)
    if found is not None:
        raise ValueError(found.message("X"))
    return arr


def _center_copy(X, X_mean):
    """(X - X_mean, largest |X - X_mean|) in one pass of a compiled kernel
    (the differences are exactly those of ``X -= X_mean``), instead of
    copy, subtract, max and min passes; this serial step's cost is mostly
    the new array's first-touch page faults.  (Splitting the rows between
    two threads was slower here: concurrent first touches of fresh memory
    stalled for ~0.1 s.)"""
    n, d = X.shape
    Xc = np.empty((n, d))
    mean = np.ascontiguousarray(X_mean, dtype=np.float64)
    amax = _K.center_rows(X, mean, Xc)
    return Xc, float(amax)


def _resolve_jobs(n_jobs, n_tasks):
    if n_jobs is None:
        n_jobs = threads()
    return max(1, min(int(n_jobs), n_tasks))


# --------------------------------------------------------------------------
# DBSCAN


def _resolve_algorithm(algorithm, X):
    """The neighbour algorithm scikit-learn's DBSCAN would use ('auto' resolved)."""
    if algorithm != "auto":
        return algorithm
    n, d = X.shape
    if d > 15 or 5 >= n // 2:  # NearestNeighbors' rule (n_neighbors=5)
        return "brute"
    return "kd_tree"


def _projections(X, n_dirs=3):
    """Top principal directions (from a subsample) and the projections on them.

    Any unit vector v gives |v.x - v.y| <= ||x - y||, so projections can only
    rule pairs out, never in: the choice affects speed, not results.
    """
    n = X.shape[0]
    step = max(1, n // 20000)
    S = X[::step]
    S = S - S.mean(axis=0)
    _, _, vt = np.linalg.svd(S, full_matrices=False)
    V = vt[: min(n_dirs, vt.shape[0])]
    V = V / np.linalg.norm(V, axis=1, keepdims=True)
    return X @ V.T


# Bytes the DBSCAN grid may spend on the whole neighbour graph at the largest
# eps (int32 index, uint8 level and uint8 band per pair, int64 offsets per
# row).  A graph that fits is kept and labelled in one go (a little faster:
# 42,560 intel21 rows, 16 MB of graph, 1.0 s instead of 1.2 s); a larger one
# is never gathered: each block's pairs go into every setting's union-find as
# they arrive (``_Stream``), so memory does not grow with the number of pairs.
# One block's worth, as the measures' pairwise blocks
# (``shared_metrics.BLOCK_BYTES``): the run's memory target is about twice
# the input matrix plus one block.
_GRAPH_BUDGET = 64 * 2**20

# Relative band (of |x|^2 + |y|^2 + eps^2, squared-distance units) around an
# eps threshold inside which a pair's two directions may fall on different
# sides: scikit-learn's brute distance (|x|^2 - 2 x.y + |y|^2) is not
# symmetric to the last bits.  Its rounding error is below 1e-13 of that
# scale for 1e3 features; pairs in the band are taken one direction at a time.
_NEAR = 1e-9

# rows per radius query within a block (``_RadiusQueries.query``)
_QUERY_ROWS = 64


class _RadiusQueries:
    """scikit-learn's radius queries at the largest eps, block by block.

    ``query(rows)`` gives row by row (self included) the neighbours at the
    largest eps, their distances and level: the index of the smallest eps at
    which the pair is a neighbour pair in scikit-learn's arithmetic.

    scikit-learn keeps a pair when its squared distance s <= eps**2 and
    reports sqrt(s).  With T = sqrt(eps**2) (correctly rounded), a reported
    distance < T means s <= eps**2, > T means s > eps**2; = T cannot be told
    apart and is decided by asking scikit-learn at that eps (full data),
    within the block.

    For the brute algorithm, blocks are compact along the top principal
    directions (``blocks``), and a block's rows are only compared with the
    points whose projections on those directions are within eps of the
    block's range (a safe filter, computed when the block runs: no candidate
    lists held); distances are computed by scikit-learn itself, so each pair's
    value is the one a full pass gives.
    """

    def __init__(self, X, eps_sorted, algorithm, leaf_size, block_rows):
        self.X = X
        self.n = n = X.shape[0]
        self.eps = np.asarray(eps_sorted, dtype=np.float64)
        self.T = np.sqrt(self.eps * self.eps)
        self.block_rows = block_rows
        self.leaf_size = leaf_size
        self.method = _resolve_algorithm(algorithm, X)
        self.windowed = self.method == "brute" and n > 2 * block_rows
        self._lock = threading.Lock()
        self._full: NearestNeighbors | None = None
        if self.windowed:
            self.P = _projections(X)
            self.order = np.argsort(self.P[:, 0], kind="stable")
            self.p0 = self.P[self.order, 0]
            self.reach = float(self.eps[-1]) * (1.0 + 1e-6) + 1e-9
        else:
            self.order = np.arange(n)
            self._full = self._model(X)

    def _model(self, data):
        return NearestNeighbors(radius=float(self.eps[-1]), algorithm=self.method,
                                leaf_size=self.leaf_size, metric="euclidean").fit(data)

    def full(self) -> NearestNeighbors:
        """The model on all rows (tie decisions; the queries unless windowed)."""
        with self._lock:
            if self._full is None:
                self._full = self._model(self.X)
            return self._full

    def blocks(self, subset=None) -> list[np.ndarray]:
        """Row blocks covering ``subset`` (all rows if None).

        Brute, windowed: the leaves of a median split along the widest of the
        projections, at most ``block_rows`` rows each, so that a block is
        narrow along every projection, not only the first: half the
        candidates of runs along the first one (425,600 intel21 rows, eps 0.7:
        69,000 per row instead of 139,000)."""
        seq = self.order if subset is None else np.asarray(subset)
        if not self.windowed:
            return [seq[s : s + self.block_rows] for s in range(0, seq.shape[0], self.block_rows)]
        P = self.P
        out: list[np.ndarray] = []
        stack = [seq]
        while stack:
            rows = stack.pop()
            if rows.shape[0] <= self.block_rows:
                out.append(rows)
                continue
            Pr = P[rows]
            dim = int(np.argmax(Pr.max(axis=0) - Pr.min(axis=0)))
            by = rows[np.argsort(Pr[:, dim], kind="stable")]
            half = by.shape[0] // 2
            stack += [by[half:], by[:half]]
        return out

    def _candidates(self, rows):
        pr = self.P[rows, 0]
        lo = np.searchsorted(self.p0, pr.min() - self.reach, side="left")
        hi = np.searchsorted(self.p0, pr.max() + self.reach, side="right")
        cand = self.order[lo:hi]
        for dim in range(1, self.P.shape[1]):
            pr = self.P[rows, dim]
            pc = self.P[cand, dim]
            cand = cand[(pc >= pr.min() - self.reach) & (pc <= pr.max() + self.reach)]
        return np.sort(cand)

    def query(self, rows):
        """The block's pairs, ``_QUERY_ROWS`` rows at a time: yields (rows,
        lens, ids int32, distances, levels uint8, ties asked) per piece, row
        k's pairs being the k-th run of ``lens[k]`` entries.  (One model on the
        block's candidates serves its pieces; a piece's scikit-learn output and
        copies, ~40 bytes a pair, are all a thread holds beyond the caller's
        6 bytes a pair: dense blocks reach millions of pairs.)"""
        X = self.X
        if self.windowed:
            among = self._candidates(rows)
            model = self._model(X[among])
            ids = among.astype(np.int32)
            del among
        else:
            model = self.full()
            ids = None
        for s in range(0, rows.shape[0], _QUERY_ROWS):
            piece = rows[s : s + _QUERY_ROWS]
            yield (piece, *self._piece(model, ids, piece))

    def _piece(self, model, ids, rows):
        X = self.X
        dist, ind = model.radius_neighbors(X[rows], return_distance=True)
        lens = np.fromiter((a.shape[0] for a in ind), dtype=np.int64, count=len(rows))
        flat_d = np.concatenate(dist)
        del dist
        flat_i = np.concatenate(ind)
        del ind
        g = flat_i.astype(np.int32) if ids is None else ids[flat_i]
        del flat_i
        lev = np.searchsorted(self.T, flat_d, side="left").astype(np.uint8)
        eq = np.flatnonzero(self.T[np.minimum(lev, len(self.T) - 1)] == flat_d)
        if eq.size:
            # pairs exactly at a boundary: ask scikit-learn at that eps, full data
            r_of = np.repeat(np.arange(len(rows)), lens)[eq]
            for lv in np.unique(lev[eq]).tolist():
                at = lev[eq] == lv
                asked = np.unique(r_of[at])
                got = self.full().radius_neighbors(X[rows[asked]], radius=float(self.eps[lv]),
                                                   return_distance=False)
                members = {int(k): set(a.tolist()) for k, a in zip(asked, got, strict=True)}
                for p, k in zip(eq[at].tolist(), r_of[at].tolist(), strict=True):
                    if int(g[p]) not in members[k]:
                        lev[p] = lv + 1  # outside this eps
        return lens, g, flat_d, lev, int(eq.size)


def _assemble(n, parts):
    """The graph (indptr int64, indices int32, level uint8) from per-block
    ``(rows, lens, ids, levels)``; the parts list is emptied as it goes."""
    counts = np.zeros(n, dtype=np.int64)
    for rows, lens, *_ in parts:
        counts[rows] = lens
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    del counts
    indices = np.empty(indptr[-1], dtype=np.int32)
    level = np.empty(indptr[-1], dtype=np.uint8)
    while parts:
        rows, lens, g, lev = parts.pop()[:4]
        local = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum(lens, out=local[1:])
        dest = np.repeat(indptr[rows] - local[:-1], lens) + np.arange(local[-1])
        indices[dest] = g
        level[dest] = lev
        del dest, g, lev
    return indptr, indices, level


def _neighbour_graph(
    X: np.ndarray, eps_sorted: list[float], algorithm: str, leaf_size: int, block_rows: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """One radius-neighbour pass at the largest eps, kept compact (the path
    without numba, whatever the graph's size).

    Returns (indptr int64, indices int32, level uint8, n_rechecked): row i's
    neighbours at the largest eps are indices[indptr[i]:indptr[i+1]] (self
    included); level as in ``_RadiusQueries``.
    """
    q = _RadiusQueries(X, eps_sorted, algorithm, leaf_size, block_rows)

    def one_block(rows):
        return [(piece, lens, g, lev, n_eq) for piece, lens, g, _, lev, n_eq in q.query(rows)]

    # the blocks' radius queries on threads (each pair's distance does not depend on the
    # block or the thread that computes it), gathered in block order
    parts = [p for block in map_in_threads(one_block, q.blocks()) for p in block]
    n_amb = sum(p[4] for p in parts)
    indptr, indices, level = _assemble(X.shape[0], parts)
    return indptr, indices, level, n_amb


def _dbscan_from_graph(indptr, indices, level, rows, lv, min_samples, counts):
    """scikit-learn's DBSCAN labels for one (eps level, min_samples)."""
    n = indptr.shape[0] - 1
    core = counts >= min_samples
    labels = np.full(n, -1, dtype=np.int64)
    core_idx = np.flatnonzero(core)
    if core_idx.size == 0:
        return labels, core_idx
    within = level <= lv
    core_row = core[rows]
    core_col = core[indices]
    sel = within & core_row & core_col
    r_sel = rows[sel]
    c_sel = indices[sel]
    g_indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(r_sel, minlength=n), out=g_indptr[1:])
    graph = sparse.csr_matrix(
        (np.ones(c_sel.shape[0], dtype=np.int8), c_sel, g_indptr), shape=(n, n)
    )
    del r_sel, c_sel, sel
    _, comp = connected_components(graph, directed=True, connection="weak")
    del graph
    # clusters are numbered in the order of their first (lowest-index) core
    # point, as scikit-learn's loop over points starts them
    core_comp = comp[core_idx]
    uniq, first = np.unique(core_comp, return_index=True)
    rank = np.empty(uniq.shape[0], dtype=np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(uniq.shape[0])
    comp_label = np.full(comp.max() + 1, -1, dtype=np.int64)
    comp_label[uniq] = rank
    labels[core_idx] = comp_label[core_comp]
    # a border point (not core, within eps of a core point's neighbourhood)
    # takes the first cluster, in scikit-learn's order, that reaches it
    sel_b = within & core_row & ~core_col
    if np.any(sel_b):
        b_to = indices[sel_b]
        b_lab = labels[rows[sel_b]]
        best = np.full(n, np.iinfo(np.int64).max, dtype=np.int64)
        np.minimum.at(best, b_to, b_lab)
        hit = best != np.iinfo(np.int64).max
        labels[hit] = best[hit]
    return labels, core_idx


class _Stream:
    """The compiled DBSCAN grid in one pass of radius queries, graph kept only
    while it fits ``budget`` bytes.

    Each block's neighbour counts per level are published (``counts``,
    ``known``) as its query finishes.  While the blocks seen so far fit the
    budget their pairs are kept; if all fit, the graph is assembled and
    labelled as one (``dbscan_labels``).  From the block that does not fit
    on, nothing is kept: every block (the kept ones first) goes through
    ``stream_unions`` under a lock, which joins, for every setting, the core
    pairs whose other end is already published.  A pair (r, j) sits in r's
    block and in j's, and whichever of the two is published second sees
    both counts: every pair is taken once at least, without waiting for a
    second pass.  That needs the pair to be the same in both directions,
    which holds except within ``_NEAR`` of a threshold; such pairs are kept
    aside, one direction each (``deferred``: as many as there are pairs that
    close to an eps, usually none; exact ties included), and joined at the
    end.

    A non-core point reached by core points of at most two components
    (checked as the pairs arrive, ``_sight``) takes the lower of their
    numbers; the few reached from three at the time are queried again after
    the numbering (``border_min``), and the deferred pairs lower a border
    number where they reach it first (``deferred_border``).
    """

    def __init__(self, q: _RadiusQueries, ms_sorted: list[int], budget: float):
        self.q = q
        n = q.n
        self.n_lv = n_lv = q.eps.shape[0]
        self.set_lv = np.repeat(np.arange(n_lv, dtype=np.int64), len(ms_sorted))
        self.set_ms = np.tile(np.asarray(ms_sorted, dtype=np.int64), n_lv)
        self.counts = np.zeros((n_lv, n), dtype=np.int32)
        self.known = np.zeros(n, dtype=np.uint8)
        self.x_sq = row_norms(q.X, squared=True)
        self.T2 = q.T * q.T
        self.budget = budget
        self.kept: list[tuple] | None = []
        self.kept_bytes = 8 * (n + 1)
        self.deferred: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self.n_ties = 0
        self.lock = threading.Lock()
        self.parent = self.rep = self.rep2 = self.amb = None

    def _bands(self, rows, lens, g, dist, lev):
        return _K.near_bands(rows, lens, g, dist, lev, self.x_sq, self.T2, _NEAR)

    def _start_streaming(self):
        n_set, n = self.set_lv.shape[0], self.q.n
        self.parent = np.tile(np.arange(n, dtype=np.int32), (n_set, 1))
        self.rep = np.full((n_set, n), -1, dtype=np.int32)
        self.rep2 = np.full((n_set, n), -1, dtype=np.int32)
        self.amb = np.zeros((n_set, n), dtype=np.uint8)
        kept, self.kept = self.kept, None
        while kept:
            self._unions(*kept.pop(0))

    def _unions(self, rows, lens, g, lev, near):
        _K.stream_unions(rows, lens, g, lev, near, self.known, self.counts,
                         self.set_lv, self.set_ms, self.parent, self.rep, self.rep2, self.amb)

    def one_block(self, rows):
        for piece in self.q.query(rows):
            self._take(*piece)

    def _take(self, rows, lens, g, dist, lev, n_eq):
        cnt = _K.level_counts(lens, lev, self.n_lv)
        near = self._bands(rows, lens, g, dist, lev)
        del dist
        close = np.flatnonzero((near >= 1) & (lev < self.n_lv))
        if close.size:  # pairs near a threshold, one direction each
            ends = np.cumsum(lens)
            deferred = (rows[np.searchsorted(ends, close, side="right")].astype(np.int32),
                        g[close], lev[close])
        with self.lock:
            self.n_ties += n_eq
            self.counts[:, rows] = cnt
            self.known[rows] = 1
            if close.size:
                self.deferred.append(deferred)
            if self.kept is not None:
                size = 6 * g.shape[0]
                if self.kept_bytes + size <= self.budget:
                    self.kept.append((rows, lens, g, lev, near))
                    self.kept_bytes += size
                    return
                self._start_streaming()
            self._unions(rows, lens, g, lev, near)

    def run(self):
        q = self.q
        map_in_threads(self.one_block, q.blocks())
        n_def = sum(d[0].shape[0] for d in self.deferred)
        extra = {"n_boundary_pairs_rechecked": self.n_ties, "streamed": self.kept is None,
                 "n_near_pairs": n_def, "n_border_rows_requeried": 0}
        if self.kept is not None:
            kept, self.kept = self.kept, None
            indptr, indices, level = _assemble(q.n, kept)
            counts_of = dict(enumerate(map_in_threads(
                lambda lv: _K.within_counts(indptr, level, lv), range(self.n_lv))))
            found = map_in_threads(
                lambda s: _K.dbscan_labels(indptr, indices, level, s[0], counts_of[s[0]], s[1]),
                list(zip(self.set_lv.tolist(), self.set_ms.tolist(), strict=True)))
            return found, extra
        if n_def:
            dr, dj, dlev = (np.concatenate(a) for a in zip(*self.deferred, strict=True))
        else:
            dr = dj = np.zeros(0, dtype=np.int32)
            dlev = np.zeros(0, dtype=np.uint8)
        self.deferred = []
        counts, set_lv, set_ms = self.counts, self.set_lv, self.set_ms
        _K.deferred_unions(dr, dj, dlev, counts, set_lv, set_ms, self.parent)
        labels = np.empty((set_lv.shape[0], q.n), dtype=np.int64)

        def number(s):
            _K.stream_labels(counts[set_lv[s]], set_ms[s], self.parent[s], self.rep[s],
                             self.rep2[s], self.amb[s], labels[s])

        map_in_threads(number, range(set_lv.shape[0]))
        self.parent = self.rep = self.rep2 = None
        again = np.flatnonzero(self.amb.any(axis=0))
        extra["n_border_rows_requeried"] = int(again.size)
        if again.size:
            def border(block):
                for rows, lens, g, dist, lev, _ in q.query(block):
                    near = self._bands(rows, lens, g, dist, lev)
                    del dist
                    _K.border_min(rows, lens, g, lev, near, counts, set_lv, set_ms, self.amb,
                                  labels)

            # each block writes its own rows only
            map_in_threads(border, q.blocks(again))
        _K.deferred_border(dr, dj, dlev, counts, set_lv, set_ms, labels)
        found = [(labels[s], np.flatnonzero(counts[set_lv[s]] >= set_ms[s]).astype(np.int64))
                 for s in range(set_lv.shape[0])]
        return found, extra


def dbscan_grid(
    X: ArrayLike,
    eps_list: Iterable[float],
    min_samples_list: Iterable[int],
    *,
    algorithm: str = "auto",
    leaf_size: int = 30,
    block_rows: int = 1024,
    graph_budget: float | None = None,
) -> dict[tuple[float, int], DBSCANResult]:
    """Fit DBSCAN for every (eps, min_samples) pair from one neighbour pass.

    Equivalent to ``DBSCAN(eps=eps, min_samples=m, algorithm=algorithm,
    leaf_size=leaf_size).fit(X)`` (euclidean metric, no sample weights) for
    each pair: same core samples, same labels.  ``X`` is checked as in
    ``kmeans_grid`` (a NaN or inf raises a ``ValueError`` naming its column
    and rows) and used as float64.

    ``graph_budget`` (bytes; None: ``_GRAPH_BUDGET``, 64 MiB) caps the
    neighbour graph kept in memory: past it, the pairs are used as they
    arrive and dropped (``_Stream``), so memory is O(n) per setting plus one
    block of radius queries per thread, whatever the number of pairs; same
    results either way.  Without numba the graph is always kept.
    Returns ``{(eps, min_samples): DBSCANResult}``.
    """
    X = _checked(X)
    n = X.shape[0]
    eps_sorted = sorted({float(e) for e in eps_list})
    if not eps_sorted or eps_sorted[0] <= 0:
        raise ValueError("eps values must be > 0")
    if len(eps_sorted) > 250:
        raise ValueError("at most 250 eps values")
    ms_sorted = sorted({int(m) for m in min_samples_list})
    settings = [(lv, eps, ms) for lv, eps in enumerate(eps_sorted) for ms in ms_sorted]
    if _K.AVAILABLE:
        q = _RadiusQueries(X, eps_sorted, algorithm, leaf_size, block_rows)
        budget = _GRAPH_BUDGET if graph_budget is None else graph_budget
        found, extra = _Stream(q, ms_sorted, budget).run()
        return {(eps, ms): DBSCANResult(labels=labels, core_sample_indices=core_idx,
                                        extra=dict(extra))
                for (_, eps, ms), (labels, core_idx) in zip(settings, found, strict=True)}
    indptr, indices, level, n_amb = _neighbour_graph(
        X, eps_sorted, algorithm, leaf_size, block_rows
    )
    extra = {"n_boundary_pairs_rechecked": n_amb, "streamed": False}
    rows = np.repeat(np.arange(n, dtype=np.int32), np.diff(indptr))
    out = {}
    for lv, eps in enumerate(eps_sorted):
        within = (level <= lv).astype(np.int64)
        counts = np.bincount(rows, weights=within, minlength=n).astype(np.int64)
        del within
        for ms in ms_sorted:
            labels, core_idx = _dbscan_from_graph(
                indptr, indices, level, rows, lv, ms, counts
            )
            out[(eps, ms)] = DBSCANResult(
                labels=labels,
                core_sample_indices=core_idx,
                extra=dict(extra),
            )
    return out


# --------------------------------------------------------------------------
# scikit-learn estimators


def to_sklearn_kmeans(result: KMeansResult, X: ArrayLike, params: dict[str, Any]) -> KMeans:
    """A fitted ``sklearn.cluster.KMeans`` holding ``result``.

    ``params`` are the estimator's constructor parameters (n_clusters, tol,
    random_state, ...); ``X`` is the (scaled) data the grid was fitted on.
    ``predict``, ``transform``, ``score`` work as on a fitted estimator.
    """
    X = np.asarray(X)
    params = dict(params)
    params.setdefault("n_clusters", result.cluster_centers.shape[0])
    km = KMeans(**params)
    km.cluster_centers_ = np.asarray(result.cluster_centers, dtype=np.float64)
    km.labels_ = np.asarray(result.labels, dtype=np.int32)
    km.inertia_ = float(result.inertia)
    km.n_iter_ = int(result.n_iter)
    km.n_features_in_ = X.shape[1]
    km._n_features_out = km.cluster_centers_.shape[0]
    km._n_threads = _n_threads()
    km._tol = float(np.mean(np.var(X, axis=0)) * km.tol) if km.tol else 0.0
    km._n_init = 1 if km.n_init == "auto" and km.init == "k-means++" else km.n_init
    km._algorithm = km.algorithm
    return km


def to_sklearn_dbscan(result: DBSCANResult, X: ArrayLike, params: dict[str, Any]) -> DBSCAN:
    """A fitted ``sklearn.cluster.DBSCAN`` holding ``result``."""
    X = np.asarray(X)
    db = DBSCAN(**dict(params))
    db.labels_ = np.asarray(result.labels, dtype=np.int64)
    db.core_sample_indices_ = np.asarray(result.core_sample_indices, dtype=np.int64)
    db.components_ = X[db.core_sample_indices_].copy()
    db.n_features_in_ = X.shape[1]
    return db
