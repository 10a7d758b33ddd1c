"""The algorithms a sweep can run, their default grids and how each is built."""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any, Callable

from sklearn.base import ClusterMixin
from sklearn.cluster import DBSCAN, HDBSCAN, AgglomerativeClustering, Birch, KMeans, MiniBatchKMeans
from sklearn.mixture import GaussianMixture

__all__ = ["Algorithm", "ALGORITHMS", "expand_grid"]


@dataclass(frozen=True)
class Algorithm:
    """One clustering algorithm: how to build it and what to try by default."""

    name: str
    build: Callable[..., ClusterMixin]
    default_grid: dict[str, list[Any]]
    seeded: bool = False  # takes random_state
    k_param: str | None = None  # the parameter that sets the number of clusters
    short: dict[str, str] = field(default_factory=dict)  # parameter -> short name in solution ids

    def make(self, params: dict[str, Any], seed: int) -> ClusterMixin:
        kwargs = dict(params)
        if self.seeded:
            kwargs.setdefault("random_state", seed)
        return self.build(**kwargs)


_K = list(range(2, 11))
ALGORITHMS: dict[str, Algorithm] = {a.name: a for a in [
    Algorithm("kmeans", KMeans, {"n_clusters": _K}, seeded=True, k_param="n_clusters",
              short={"n_clusters": "k", "tol": "tol"}),
    Algorithm("minibatch_kmeans", MiniBatchKMeans, {"n_clusters": _K}, seeded=True,
              k_param="n_clusters", short={"n_clusters": "k", "batch_size": "b"}),
    Algorithm("dbscan", DBSCAN, {"eps": [0.5], "min_samples": [5]},
              short={"eps": "eps", "min_samples": "ms"}),
    Algorithm("hdbscan", lambda **kw: HDBSCAN(copy=True, **kw), {"min_cluster_size": [25]},
              short={"min_cluster_size": "mcs", "min_samples": "ms"}),
    Algorithm("gaussian_mixture", GaussianMixture, {"n_components": list(range(2, 9))},
              seeded=True, k_param="n_components", short={"n_components": "k",
                                                          "covariance_type": "cov"}),
    Algorithm("agglomerative", AgglomerativeClustering, {"n_clusters": list(range(2, 9))},
              k_param="n_clusters", short={"n_clusters": "k", "linkage": "link"}),
    Algorithm("birch", Birch, {"n_clusters": list(range(2, 9))}, k_param="n_clusters",
              short={"n_clusters": "k", "threshold": "th"}),
]}


def expand_grid(grid: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """Every combination of a grid, in the order the grid lists them (last key fastest).

    Examples
    --------
    >>> expand_grid({"n_clusters": [2, 3], "tol": [0.1]})
    [{'n_clusters': 2, 'tol': 0.1}, {'n_clusters': 3, 'tol': 0.1}]
    """
    keys = list(grid)
    return [dict(zip(keys, values)) for values in itertools.product(*(grid[k] for k in keys))]
