"""Silhouette, Davies-Bouldin and Calinski-Harabasz for many labelings of one matrix at once.

``solution_metrics`` computes each measure per labeling; a sweep holds dozens of labelings of
the same matrix, and silhouette's O(n^2) distances dominate. Here the pairwise distances of the
(sampled) rows are computed once, in row blocks of bounded size, and every labeling reads its
per-cluster distance sums from the same block (``D_block @ onehot``). The numbers equal
``solution_metrics``' (scikit-learn's functions on the same rows) to rounding. Blocks run on
``segmint._threads.threads()`` threads; the results do not depend on how many.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from sklearn.metrics.pairwise import euclidean_distances
from sklearn.utils.extmath import row_norms

from segmint._threads import map_in_threads
from segmint.cluster._sklearn_compat import _euclidean_distances

__all__ = ["shared_measures"]

#: bytes of one block of the distance matrix when ``block_rows`` is not given
BLOCK_BYTES = 64 * 2**20
#: blocks a pass is cut into at least (of 64 rows or more) when ``block_rows`` is not given,
#: for the threads
MIN_BLOCKS = 16
#: a labeling with more clusters than this (plus one for rows outside its sample) sums its
#: distances through a sparse product of its own instead of the shared dense one
MANY_CLUSTERS = 64


def _silhouette_rows(X: np.ndarray, labels: np.ndarray, silhouette_sample: int,
                     seed: int) -> np.ndarray | None:
    """Global row indices silhouette is computed on: solution_metrics' rule, None when NaN."""
    assigned = np.flatnonzero(labels >= 0)
    n_clusters = np.unique(labels[assigned]).size
    if not 2 <= n_clusters < assigned.size:
        return None
    if assigned.size > silhouette_sample:
        # the same draw as solution_metrics: positions among the assigned rows
        rows = assigned[np.random.default_rng(seed).choice(assigned.size, silhouette_sample,
                                                           replace=False)]
    else:
        rows = assigned
    if not 2 <= np.unique(labels[rows]).size < rows.size:
        return None
    return rows


def _davies_bouldin_calinski_harabasz(X: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """Both measures on the assigned rows, from centroids. Linear in n; each cluster's rows are
    reduced as scikit-learn reduces them (mean, then euclidean_distances' arithmetic to the
    centroid), since distances near a centroid lose digits to the dot-product formula and must
    lose the same."""
    assigned = labels >= 0
    ids = np.unique(labels[assigned])
    if not 2 <= ids.size < int(assigned.sum()):
        return math.nan, math.nan
    Xa, la = X[assigned], labels[assigned]
    order = np.argsort(la, kind="stable")
    bounds = np.searchsorted(la[order], ids, side="left").tolist() + [order.size]
    centers = np.empty((ids.size, X.shape[1]))
    intra = np.empty(ids.size)
    extra = within = 0.0
    mean = Xa.mean(axis=0)
    for c in range(ids.size):
        cluster = Xa[order[bounds[c]:bounds[c + 1]]]
        centers[c] = cluster.mean(axis=0)
        # euclidean_distances' own arithmetic without its input checks (0.5 ms a call,
        # one call per cluster of every labeling)
        intra[c] = _euclidean_distances(cluster, centers[c:c + 1]).mean()
        extra += cluster.shape[0] * ((centers[c] - mean) ** 2).sum()
        within += ((cluster - centers[c]) ** 2).sum()
    # Davies-Bouldin: mean distance to the own centroid, over centroid distances
    between = euclidean_distances(centers)
    if np.allclose(intra, 0.0, rtol=1e-5, atol=1e-8) or np.allclose(between, 0.0, rtol=1e-5, atol=1e-8):
        davies_bouldin = 0.0
    else:
        between[between == 0] = np.inf
        davies_bouldin = float(np.mean(np.max((intra[:, None] + intra) / between, axis=1)))
    # Calinski-Harabasz: between- over within-cluster dispersion, degrees-of-freedom scaled
    n, k = Xa.shape[0], ids.size
    calinski_harabasz = 1.0 if within == 0.0 else extra * (n - k) / (within * (k - 1.0))
    return davies_bouldin, float(calinski_harabasz)


def _passes(samples: dict[int, np.ndarray], n: int) -> list[tuple[np.ndarray, list[int]]]:
    """Group labelings into distance passes: a pass over rows R serves every labeling whose
    silhouette rows lie in R (the others' rows are ignored), largest row sets first."""
    passes: list[tuple[np.ndarray, np.ndarray, list[int]]] = []
    for j in sorted(samples, key=lambda j: -samples[j].size):
        rows = samples[j]
        for mask, _, members in passes:
            if mask[rows].all():
                members.append(j)
                break
        else:
            mask = np.zeros(n, dtype=bool)
            mask[rows] = True
            passes.append((mask, np.flatnonzero(mask), [j]))
    return [(rows, members) for _, rows, members in passes]


def _silhouettes_one_pass(X: np.ndarray, rows: np.ndarray, labelings: list[np.ndarray],
                          samples: list[np.ndarray], block_rows: int | None) -> list[float]:
    """Mean silhouette of each labeling on its sample rows, from one blocked pass over the
    distances among ``rows`` (scikit-learn's silhouette_samples conventions).

    Labelings of few clusters read their per-cluster distance sums from one product with a
    dense one-hot matrix of them all; a labeling of many clusters (DBSCAN on a large table
    leaves thousands) from a sparse one of its own, whose cost does not grow with its clusters.
    Each block keeps only each row's a (mean distance within its cluster) and b (to the
    nearest other cluster), so memory stays that of one block."""
    from scipy import sparse

    m = rows.size
    # per labeling: cluster code of each pass row (code k = not in this labeling's sample)
    codes, n_codes = [], []
    for labels, sample in zip(labelings, samples, strict=True):
        ids, code = np.unique(labels[sample], return_inverse=True)
        full = np.full(X.shape[0], ids.size, dtype=np.intp)
        full[sample] = code
        codes.append(full[rows])
        n_codes.append(ids.size + 1)
    freqs = [np.bincount(code[code < k - 1], minlength=k - 1).astype(float)
             for code, k in zip(codes, n_codes, strict=True)]
    dense = [j for j, k in enumerate(n_codes) if k <= MANY_CLUSTERS]
    # a column per cluster; a row outside a labeling's sample has no 1 in its columns (its
    # code k - 1 has no column: nothing reads sums over those rows)
    offsets = np.concatenate([[0], np.cumsum([n_codes[j] - 1 for j in dense])]).astype(int)
    onehot = np.zeros((m, int(offsets[-1])))
    for j, offset in zip(dense, offsets[:-1], strict=True):
        inside = np.flatnonzero(codes[j] < n_codes[j] - 1)
        onehot[inside, offset + codes[j][inside]] = 1.0
    # a many-cluster labeling's one-hot, transposed: (clusters + 1) x m
    members = {j: sparse.csr_matrix((np.ones(m), (codes[j], np.arange(m))), shape=(n_codes[j], m))
               for j in range(len(codes)) if n_codes[j] > MANY_CLUSTERS}
    Xr = X[rows]
    norms = row_norms(Xr, squared=True)[np.newaxis, :]
    if block_rows is None:
        # at most BLOCK_BYTES a block, and at least MIN_BLOCKS blocks to share among threads
        # (a function of m alone: the blocks, hence the sums, do not depend on the threads)
        block_rows = max(1, min(BLOCK_BYTES // (8 * m), max(64, -(-m // MIN_BLOCKS))))
    a_all = np.full((len(codes), m), np.nan)
    b_all = np.full((len(codes), m), np.nan)

    def a_and_b(j: int, per_cluster: np.ndarray, start: int, stop: int) -> None:
        k = n_codes[j] - 1
        own = codes[j][start:stop]
        keep = own < k
        own, per_cluster = own[keep], per_cluster[keep, :k]
        with np.errstate(divide="ignore", invalid="ignore"):
            a = per_cluster[np.arange(own.size), own] / (freqs[j][own] - 1)
            others = per_cluster / freqs[j]
            others[np.arange(own.size), own] = np.inf
        where = np.arange(start, stop)[keep]
        a_all[j, where] = a
        b_all[j, where] = others.min(axis=1)

    def one_block(start: int) -> None:
        stop = min(start + block_rows, m)
        block = euclidean_distances(Xr[start:stop], Xr, Y_norm_squared=norms)
        # scikit-learn zeroes the self-distances its dot-product formula leaves
        block.flat[start::m + 1] = 0.0
        if dense:
            sums = block @ onehot
            for j, offset in zip(dense, offsets[:-1], strict=True):
                a_and_b(j, sums[:, offset:offset + n_codes[j] - 1], start, stop)
        for j, member in members.items():
            a_and_b(j, np.asarray((member @ block.T).T), start, stop)

    # each block on a thread, BLAS single-threaded inside (a product's last bits can depend
    # on BLAS's thread count: this way they do not depend on the run's)
    map_in_threads(one_block, range(0, m, block_rows))
    means = []
    for j, (code, k) in enumerate(zip(codes, n_codes, strict=True)):
        keep = code < k - 1
        a, b = a_all[j, keep], b_all[j, keep]
        with np.errstate(divide="ignore", invalid="ignore"):
            s = (b - a) / np.maximum(a, b)
        means.append(float(np.mean(np.nan_to_num(s))))
    return means


def shared_measures(X: np.ndarray, labelings: Sequence[np.ndarray], *, silhouette_sample: int = 20_000,
                    seed: int = 0, block_rows: int | None = None) -> list[dict[str, float]]:
    """Silhouette, Davies-Bouldin and Calinski-Harabasz of every labeling of ``X``, equal to
    :func:`~segmint.cluster.metrics.solution_metrics`' (same seeded silhouette sample, noise
    label -1 left out, NaN below two clusters), from shared pairwise distances.

    Labelings whose silhouette rows lie within one row set share one pass over the distances
    among those rows (all labelings without noise share one; below ``silhouette_sample``
    assigned rows every labeling fits in the pass over all rows).

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        The prepared matrix every labeling was fit on.
    labelings : sequence of int arrays of shape (n_samples,)
        Cluster labels, -1 for noise.
    silhouette_sample : int
        Above this many assigned rows, silhouette is computed on a seeded sample of this size.
    seed : int
        Seed of the sample (``numpy.random.default_rng(seed)``, as solution_metrics draws it).
    block_rows : int, optional
        Rows of the distance matrix held at once; by default a block is about 64 MB.

    Returns
    -------
    list of dict
        Per labeling: ``silhouette``, ``davies_bouldin``, ``calinski_harabasz``.

    Examples
    --------
    >>> X = np.array([[0.0], [1.0], [10.0], [11.0]])
    >>> m = shared_measures(X, [np.array([0, 0, 1, 1]), np.array([0, 0, 0, 0])])
    >>> round(m[0]["silhouette"], 4), m[1]["silhouette"]
    (0.8997, nan)
    """
    X = np.asarray(X, dtype=float)
    labelings = [np.asarray(labels) for labels in labelings]
    # settings that converge to the same labels (k-means at two tolerances, often) are
    # measured once: the same labels give the same rows and sums, hence the same numbers
    first: dict[bytes, int] = {}
    same = [first.setdefault(labels.astype(np.int64).tobytes(), j)
            for j, labels in enumerate(labelings)]
    if len(first) < len(labelings):
        distinct = shared_measures(X, [labelings[j] for j in first.values()],
                                   silhouette_sample=silhouette_sample, seed=seed,
                                   block_rows=block_rows)
        position = {j: i for i, j in enumerate(first.values())}
        return [dict(distinct[position[j]]) for j in same]
    out = []
    # labelings on threads (each one's numbers are its own, whichever thread computes them)
    for davies_bouldin, calinski_harabasz in map_in_threads(
            lambda labels: _davies_bouldin_calinski_harabasz(X, labels), labelings):
        out.append({"silhouette": math.nan, "davies_bouldin": davies_bouldin,
                    "calinski_harabasz": calinski_harabasz})
    samples = {}
    for j, labels in enumerate(labelings):
        rows = _silhouette_rows(X, labels, silhouette_sample, seed)
        if rows is not None:
            samples[j] = rows
    for rows, members in _passes(samples, X.shape[0]):
        means = _silhouettes_one_pass(X, rows, [labelings[j] for j in members],
                                      [samples[j] for j in members], block_rows)
        for j, mean in zip(members, means, strict=True):
            out[j]["silhouette"] = mean
    return out
