"""k-means as BigQuery ML runs it (``CREATE MODEL ... OPTIONS(model_type='kmeans')``), as a
scikit-learn estimator: the registry's ``bqml_kmeans``.

Lloyd's iterations are written here rather than borrowed from scikit-learn's ``KMeans``
because BigQuery ML stops differently (at most ``max_iterations``, or when the loss improves
by less than ``min_rel_progress`` relative to the previous iteration), logs the loss of every
iteration (ML.TRAINING_INFO), starts from random rows by default, and offers a cosine
distance; the numeric work is a few vectorised lines (:func:`_lloyd_step`). The SQL face
(:mod:`segmint.sql.kmeans`) builds and trains it; a saved model holds it like any segmint
clusterer.
"""
from __future__ import annotations

import time
from numbers import Integral, Real
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClusterMixin

from segmint.cluster._sklearn_compat import Interval, StrOptions
from segmint.errors import InputError

__all__ = ["BQKMeans"]


# ----------------------------------------------------------------------- numeric kernel

def _unit_rows(X: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    return np.divide(X, norms, out=np.zeros_like(X), where=norms > 0)


def _distances(X: np.ndarray, centers: np.ndarray, cosine: bool) -> np.ndarray:
    """(n, k) distances: Euclidean, or 1 - cos for rows already of unit length."""
    if cosine:
        return 1.0 - X @ _unit_rows(centers).T
    sq = (np.einsum("ij,ij->i", X, X)[:, None] - 2.0 * X @ centers.T
          + np.einsum("ij,ij->i", centers, centers)[None, :])
    return np.sqrt(np.maximum(sq, 0.0))


def _own_distances(X: np.ndarray, centers: np.ndarray, labels: np.ndarray, cosine: bool) -> np.ndarray:
    mine = centers[labels]
    if cosine:
        return 1.0 - np.einsum("ij,ij->i", X, _unit_rows(mine))
    return np.linalg.norm(X - mine, axis=1)


def _loss(distances: np.ndarray, cosine: bool) -> float:
    # mean squared Euclidean distance; mean cosine distance (differences, 6)
    return float(np.mean(distances)) if cosine else float(np.mean(distances ** 2))


def _lloyd_step(X: np.ndarray, labels: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Each cluster's mean (for COSINE, X holds unit rows: the mean of unit vectors) and the
    clusters left empty."""
    sizes = np.bincount(labels, minlength=k)
    sums = np.zeros((k, X.shape[1]))
    np.add.at(sums, labels, X)
    centers = sums / np.maximum(sizes, 1)[:, None]
    return centers, sizes == 0


def _cluster_info(distances: np.ndarray, labels: np.ndarray, k: int) -> tuple[list[float], list[int]]:
    sizes = np.bincount(labels, minlength=k)
    sums = np.bincount(labels, weights=distances, minlength=k)
    radius = np.divide(sums, sizes, out=np.zeros(k), where=sizes > 0)
    return [float(r) for r in radius], [int(s) for s in sizes]


class BQKMeans(ClusterMixin, BaseEstimator):
    """k-means as BigQuery ML runs it: Lloyd iterations stopped by ``max_iter`` or, with
    ``early_stop``, by a relative loss improvement below ``min_rel_progress``.

    Parameters
    ----------
    n_clusters : number of clusters
    init : 'random' (k distinct rows drawn at random), 'k-means++', or an array of shape
        (n_clusters, n_features) of starting centres (CUSTOM, warm start)
    distance : 'euclidean', or 'cosine' (spherical k-means: rows scaled to unit length,
        distance 1 - cos, a centroid is the mean of its rows' unit vectors)
    max_iter : BigQuery's max_iterations
    early_stop, min_rel_progress : BigQuery's options of those names
    random_state : seed of the RANDOM and KMEANS++ starts

    Attributes
    ----------
    cluster_centers_ : (n_clusters, n_features) the centres after the last iteration
    labels_ : the assignments the final centres are the means of (a training row's nearest
        final centre, :meth:`predict`, can differ for rows near a boundary)
    n_iter_ : iterations run
    inertia_ : sum over the training rows of the squared distance to their own centre (for
        cosine, of the cosine distance)
    training_info_ : one dict per iteration: iteration, loss, duration_ms, cluster_radius,
        cluster_size
    converged_ : whether training stopped before max_iter (early stop or fixed assignments)
    cluster_radius_, cluster_size_ : per cluster, the mean distance of its rows (labels_) to its
        centre, and their number

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[0.0, 0.0], [0.0, 1.0], [10.0, 10.0], [10.0, 11.0]])
    >>> km = BQKMeans(n_clusters=2, random_state=0).fit(X)
    >>> sorted(km.cluster_centers_.tolist())
    [[0.0, 0.5], [10.0, 10.5]]
    >>> km.n_iter_, km.converged_, km.training_info_[-1]["loss"]
    (2, True, 0.25)
    """

    _parameter_constraints: dict[str, list[Any]] = {
        "n_clusters": [Interval(Integral, 1, None, closed="left")],
        "init": [StrOptions({"random", "k-means++"}), "array-like"],
        "distance": [StrOptions({"euclidean", "cosine"})],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "early_stop": ["boolean"],
        "min_rel_progress": [Interval(Real, 0, None, closed="left")],
        "random_state": ["random_state"],
    }

    def __init__(self, n_clusters: int = 8, *, init: str | np.ndarray = "random",
                 distance: str = "euclidean", max_iter: int = 20, early_stop: bool = True,
                 min_rel_progress: float = 0.01, random_state: Any = None) -> None:
        self.n_clusters = n_clusters
        self.init = init
        self.distance = distance
        self.max_iter = max_iter
        self.early_stop = early_stop
        self.min_rel_progress = min_rel_progress
        self.random_state = random_state

    def _start(self, X: np.ndarray, k: int, rng: np.random.RandomState) -> np.ndarray:
        if not isinstance(self.init, str):
            centers = np.array(self.init, dtype=np.float64)
            if centers.shape != (k, X.shape[1]):
                raise InputError(f"the starting centres have shape {centers.shape}, the model "
                                 f"needs ({k}, {X.shape[1]})")
            return centers
        if self.init == "k-means++":
            from sklearn.cluster import kmeans_plusplus

            distinct = len(np.unique(X, axis=0))
            if distinct < k:
                raise InputError(f"the training rows hold {distinct} distinct points, fewer than "
                                 f"num_clusters={k}")
            centers, _ = kmeans_plusplus(X, k, random_state=rng)
            return np.asarray(centers, dtype=np.float64)
        # RANDOM: k distinct points, so that no two starting centres coincide
        _, first = np.unique(X, axis=0, return_index=True)
        if len(first) < k:
            raise InputError(f"the training rows hold {len(first)} distinct points, fewer than "
                             f"num_clusters={k}")
        return X[rng.choice(np.sort(first), k, replace=False)].copy()

    def fit(self, X: Any, y: Any = None) -> BQKMeans:
        """Cluster X.

        Parameters
        ----------
        X : array of shape (n_samples, n_features), the prepared rows
        y : ignored

        Returns
        -------
        BQKMeans
            self, fitted.
        """
        from sklearn.utils import check_array, check_random_state

        self._validate_params()
        X = check_array(X, dtype=np.float64)
        k = int(self.n_clusters)
        if k > X.shape[0]:
            raise InputError(f"num_clusters={k} is more than the {X.shape[0]} training rows")
        cosine = self.distance == "cosine"
        rng = check_random_state(self.random_state)
        Xw = _unit_rows(X) if cosine else X
        centers = self._start(Xw, k, rng)

        start_labels = _distances(Xw, centers, cosine).argmin(axis=1)
        previous_loss = _loss(_own_distances(Xw, centers, start_labels, cosine), cosine)
        previous_labels: np.ndarray | None = None
        records: list[dict[str, Any]] = []
        converged = False
        for iteration in range(int(self.max_iter)):
            began = time.perf_counter()
            labels = _distances(Xw, centers, cosine).argmin(axis=1)
            if previous_labels is not None and np.array_equal(labels, previous_labels):
                converged = True  # the centres are the means of these very assignments already
                break
            new_centers, empty = _lloyd_step(Xw, labels, k)
            if cosine:
                empty |= np.linalg.norm(new_centers, axis=1) == 0
            own = _own_distances(Xw, new_centers, labels, cosine)
            if empty.any():
                # re-seed each empty cluster with the row farthest from its own centre
                for cluster, row in zip(np.flatnonzero(empty), np.argsort(-own, kind="stable"),
                                        strict=False):
                    new_centers[cluster] = Xw[row]
            loss = _loss(own, cosine)
            radius, size = _cluster_info(own, labels, k)
            records.append({"iteration": iteration, "loss": loss,
                            "duration_ms": int(round((time.perf_counter() - began) * 1000)),
                            "cluster_radius": radius, "cluster_size": size})
            centers, previous_labels = new_centers, labels
            if previous_loss <= 0.0:
                converged = True
                break
            if self.early_stop and (previous_loss - loss) / previous_loss < self.min_rel_progress:
                converged = True
                break
            previous_loss = loss

        assert previous_labels is not None  # max_iter >= 1 and the first iteration always records
        own = _own_distances(Xw, centers, previous_labels, cosine)
        self.cluster_centers_ = centers
        self.labels_ = previous_labels
        self.n_iter_ = len(records)
        self.inertia_ = float(np.sum(own) if cosine else np.sum(own ** 2))
        self.training_info_ = records
        self.converged_ = bool(converged or len(records) < int(self.max_iter))
        radius, size = _cluster_info(own, previous_labels, k)
        self.cluster_radius_ = np.asarray(radius)
        self.cluster_size_ = np.asarray(size, dtype=np.int64)
        self.n_features_in_ = X.shape[1]
        return self

    def transform(self, X: Any) -> np.ndarray:
        """Distance of every row to every centre (Euclidean, or 1 - cos)."""
        from sklearn.utils import check_array
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(self, "cluster_centers_")
        # no rows to score is no rows scored (ML.PREDICT over an empty query), not an error
        X = check_array(X, dtype=np.float64, ensure_min_samples=0)
        cosine = self.distance == "cosine"
        return _distances(_unit_rows(X) if cosine else X, self.cluster_centers_, cosine)

    def predict(self, X: Any) -> np.ndarray:
        """Index (0-based) of each row's nearest centre."""
        return self.transform(X).argmin(axis=1)

    def fit_predict(self, X: Any, y: Any = None, **kwargs: Any) -> np.ndarray:
        """:meth:`fit`, then :attr:`labels_`."""
        return self.fit(X).labels_

