"""Quality measures of one clustering, on the matrix it was fit on."""
from __future__ import annotations

import math

import numpy as np
from sklearn.metrics import calinski_harabasz_score, davies_bouldin_score, silhouette_score

__all__ = ["label_centers", "solution_metrics"]


def label_centers(X: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean of each non-noise label's points. Returns (label ids, centers)."""
    ids = np.unique(labels[labels >= 0])
    if ids.size == 0:
        return ids, np.empty((0, X.shape[1]))
    # one pass: sums per label via bincount on each column
    pos = np.searchsorted(ids, labels[labels >= 0])
    Xa = X[labels >= 0]
    counts = np.bincount(pos, minlength=ids.size).astype(float)
    sums = np.stack([np.bincount(pos, weights=Xa[:, j], minlength=ids.size)
                     for j in range(X.shape[1])], axis=1)
    return ids, sums / counts[:, None]


def solution_metrics(X: np.ndarray, labels: np.ndarray, *, inertia: float | None = None,
                     silhouette_sample: int = 20_000, seed: int = 0,
                     label_measures: bool = True) -> dict:
    """Sizes, noise share, inertia / mean squared distance, Davies-Bouldin, Calinski-Harabasz
    and silhouette (on a seeded sample of ``silhouette_sample`` rows above that size).

    Noise (label -1) is left out of every measure but ``noise_share``. Measures that need two
    clusters are NaN with fewer.

    Examples
    --------
    >>> X = np.array([[0.0], [2.0], [10.0], [12.0]])
    >>> m = solution_metrics(X, np.array([0, 0, 1, 1]))
    >>> m["n_clusters"], m["inertia"], m["mean_squared_distance"]
    (2, 4.0, 1.0)
    """
    n = len(labels)
    assigned = labels >= 0
    ids, centers = label_centers(X, labels)
    sizes = {int(i): int((labels == i).sum()) for i in ids}
    if inertia is None:
        if ids.size:
            pos = np.searchsorted(ids, labels[assigned])
            inertia = float(((X[assigned] - centers[pos]) ** 2).sum())
        else:
            inertia = math.nan
    n_assigned = int(assigned.sum())
    out = {
        "n_clusters": int(ids.size),
        "sizes": sizes,
        "noise_share": float(1 - n_assigned / n) if n else math.nan,
        "min_cluster_share": float(min(sizes.values()) / n) if sizes else math.nan,
        "inertia": float(inertia),
        "mean_squared_distance": float(inertia / n_assigned) if n_assigned else math.nan,
        "davies_bouldin": math.nan,
        "calinski_harabasz": math.nan,
        "silhouette": math.nan,
        "silhouette_sample": 0,
    }
    if label_measures and 2 <= ids.size < n_assigned:
        Xa, la = X[assigned], labels[assigned]
        out["davies_bouldin"] = float(davies_bouldin_score(Xa, la))
        out["calinski_harabasz"] = float(calinski_harabasz_score(Xa, la))
        if n_assigned > silhouette_sample:
            idx = np.random.default_rng(seed).choice(n_assigned, silhouette_sample, replace=False)
            Xs, ls = Xa[idx], la[idx]
        else:
            Xs, ls = Xa, la
        if 2 <= np.unique(ls).size < len(ls):
            out["silhouette"] = float(silhouette_score(Xs, ls))
            out["silhouette_sample"] = int(len(ls))
    return out
