"""The algorithms a sweep can run: the one place that knows an algorithm.

Each :class:`Algorithm` says how to build it, what to try by default, what input it takes,
whether it is quadratic in the number of customers, how it assigns new customers, where its
centres come from, which parameter its elbow curve follows, what extra measures it reports and
whether a grid engine fits its grids as a whole. The sweep, the selection, the run folder and
the report ask these traits; none of them names an algorithm. A new algorithm is one
:func:`register_algorithm` call.
"""
from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from sklearn.base import ClusterMixin
from sklearn.cluster import DBSCAN, HDBSCAN, AgglomerativeClustering, Birch, KMeans, MiniBatchKMeans
from sklearn.mixture import GaussianMixture

from segmint.cluster.kprototypes import KPrototypes

__all__ = ["Algorithm", "ALGORITHMS", "register_algorithm", "expand_grid", "nearest_center",
           "nearest_core"]

#: fn(X, grid, seed) -> [(params, fitted estimator, labels, seconds)], or None when the grid
#: needs something the engine does not do (then the settings are fitted one by one).
FastPath = Callable[[np.ndarray, list[dict[str, Any]], int], list[tuple] | None]
#: fn(fitted estimator, Z, center ids, centers) -> segment of each row of Z (-1: noise)
Assign = Callable[[Any, np.ndarray, np.ndarray, np.ndarray], np.ndarray]


def nearest_center(est: Any, Z: np.ndarray, ids: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """New customers join the segment of the nearest centre (label means where the algorithm
    has no centres of its own: agglomerative, HDBSCAN)."""
    if len(centers) == 0:
        return np.full(len(Z), -1, dtype=np.int64)
    d = ((Z[:, None, :] - centers[None, :, :]) ** 2).sum(axis=2)
    return np.asarray(ids)[d.argmin(axis=1)]


def nearest_core(est: Any, Z: np.ndarray, ids: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """DBSCAN: new customers join the cluster of their nearest core sample within eps, else
    noise."""
    core = est.components_
    if len(core) == 0:
        return np.full(len(Z), -1, dtype=np.int64)
    from sklearn.neighbors import NearestNeighbors

    core_labels = est.labels_[est.core_sample_indices_]
    d, j = NearestNeighbors(n_neighbors=1).fit(core).kneighbors(Z)
    return np.where(d[:, 0] <= est.eps, core_labels[j[:, 0]], -1)


def model_predict(est: Any, Z: np.ndarray, ids: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """The estimator's own ``predict``."""
    return est.predict(Z)


def _bic(est: Any, X: np.ndarray) -> dict[str, float]:
    return {"bic": float(est.bic(X))}


@dataclass(frozen=True)
class Algorithm:
    """One clustering algorithm and its traits.

    Parameters
    ----------
    name : str
        The name a spec uses.
    build : callable
        ``build(**params)`` returns an unfitted scikit-learn-style clusterer.
    default_grid : dict
        Parameter -> values tried when the spec gives no grid.
    label : str
        The algorithm in words ("k-means").
    seeded : bool
        Takes ``random_state``.
    k_param : str or None
        The parameter that sets the number of clusters; the elbow curve follows it.
    short : dict
        Parameter -> short name in solution ids (``kmeans_k5_tol0.001``).
    input : {"numeric", "mixed", "precomputed"}
        What the clusterer takes: the prepared numeric matrix, the mixed-type customer table,
        or a distance matrix.
    quadratic : bool
        Memory or time grows with the square of the customers (fitted only up to
        ``sweep.max_rows_quadratic``).
    assign : callable
        How a fitted model assigns new customers (see :data:`Assign`).
    centers_from_model : bool
        The model's ``cluster_centers_`` are its centres (else: the mean of each label).
    inertia_from_model : bool
        The model's ``inertia_`` is the inertia on the whole matrix (else it is recomputed).
    elbow : bool
        Draw and search an elbow of inertia over ``k_param``.
    extra_metrics : callable or None
        ``fn(fitted, X) -> dict`` of further leaderboard measures (a mixture's BIC).
    fast_path : callable or None
        A grid engine that fits a whole grid at once (see :data:`FastPath`).
    distances : callable or None
        ``fn(fitted, Z) -> (n, k)`` the model's own dissimilarities to its k centres, for an
        algorithm whose input is not the prepared numeric matrix (k-prototypes); scoring then
        reports these instead of euclidean distances in the prepared space.
    savable : bool
        The fitted estimator can be stored in the safe model format. When it cannot (BIRCH:
        skops has no support for its tree), the run stores the preparation alone and assigns
        new customers to the nearest centre (``assign`` must not need the estimator).
    """

    name: str
    build: Callable[..., ClusterMixin]
    default_grid: dict[str, list[Any]]
    label: str = ""
    seeded: bool = False
    k_param: str | None = None
    short: dict[str, str] = field(default_factory=dict)
    input: Literal["numeric", "mixed", "precomputed"] = "numeric"
    quadratic: bool = False
    assign: Assign = nearest_center
    centers_from_model: bool = False
    inertia_from_model: bool = False
    elbow: bool = False
    extra_metrics: Callable[[Any, np.ndarray], dict[str, float]] | None = None
    fast_path: FastPath | None = None
    distances: Callable[[Any, np.ndarray], np.ndarray] | None = None
    savable: bool = True

    def make(self, params: dict[str, Any], seed: int) -> ClusterMixin:
        kwargs = dict(params)
        if self.seeded:
            kwargs.setdefault("random_state", seed)
        return self.build(**kwargs)

    def model_types(self) -> tuple[str, ...]:
        """The type names a saved model of this algorithm holds (the estimator's class), which
        the safe model loader allows."""
        kind = type(self.build())
        return (f"{kind.__module__}.{kind.__qualname__}",)

    def param_names(self) -> list[str]:
        """The parameters a grid may set: the estimator's constructor parameters."""
        return sorted(self.build().get_params(deep=False))

    def check_params(self, params: dict[str, Any]) -> None:
        """Raise ``ValueError`` if the estimator refuses ``params`` (a negative tol, k = 0),
        before anything is fitted."""
        from segmint.cluster._sklearn_compat import validate_parameter_constraints

        estimator = self.make(params, seed=0)
        constraints = getattr(estimator, "_parameter_constraints", None)
        if not constraints:  # an estimator that declares no rules is checked when fitted
            return
        try:
            validate_parameter_constraints(constraints, estimator.get_params(deep=False),
                                           caller_name=type(estimator).__name__)
        except (TypeError, ValueError) as exc:
            raise ValueError(str(exc).splitlines()[0]) from None

    def describe(self, params: dict[str, Any]) -> str:
        """The setting in words: ``k-means, 5 segments``."""
        words = [self.label or self.name]
        if self.k_param and self.k_param in params:
            words.append(f"{params[self.k_param]} segments")
        words += [f"{k} {v}" for k, v in params.items() if k != self.k_param]
        return ", ".join(words)


ALGORITHMS: dict[str, Algorithm] = {}


def register_algorithm(algorithm: Algorithm) -> Algorithm:
    """Make ``algorithm`` available to specs and sweeps under its name (replacing one of the
    same name). Returns it."""
    ALGORITHMS[algorithm.name] = algorithm
    return algorithm


def expand_grid(grid: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """Every combination of a grid, in the order the grid lists them (last key fastest).

    Examples
    --------
    >>> expand_grid({"n_clusters": [2, 3], "tol": [0.1]})
    [{'n_clusters': 2, 'tol': 0.1}, {'n_clusters': 3, 'tol': 0.1}]
    """
    keys = list(grid)
    return [dict(zip(keys, values, strict=True)) for values in itertools.product(*(grid[k] for k in keys))]


# ---------------------------------------------------------------- grid engine seams


def _constant(grid: list[dict[str, Any]], allowed: dict[str, tuple]) -> dict[str, Any] | None:
    """The grid's parameters other than the shared ones, if every setting agrees on them and
    the grid engine supports their values; else None (fit one by one)."""
    fixed: dict[str, Any] = {}
    for params in grid:
        for key, value in params.items():
            if key in allowed.get("__grid__", ()):
                continue
            if key not in allowed or (allowed[key] and value not in allowed[key]):
                return None
            if fixed.setdefault(key, value) != value:
                return None
    return fixed


def _kmeans_grid_path(X: np.ndarray, grid: list[dict[str, Any]], seed: int):
    """All (n_clusters, tol) settings of k-means from one Lloyd run per k (see _grid.py)."""
    from segmint.cluster._grid import kmeans_grid, to_sklearn_kmeans

    fixed = _constant(grid, {"__grid__": ("n_clusters", "tol"), "random_state": (),
                             "max_iter": (), "init": ("k-means++",), "algorithm": ("lloyd",),
                             "n_init": ("auto", 1)})
    if fixed is None or len(grid) < 2:
        return None
    random_state = fixed.get("random_state", seed)
    if not isinstance(random_state, (int, np.integer)):
        return None
    tol_of = [p.get("tol", 1e-4) for p in grid]
    start = time.perf_counter()
    results = kmeans_grid(X, [p["n_clusters"] for p in grid], sorted(set(tol_of)),
                          random_state=int(random_state), max_iter=fixed.get("max_iter", 300))
    share = (time.perf_counter() - start) / len(grid)
    out = []
    for params, tol in zip(grid, tol_of, strict=True):
        result = results[(int(params["n_clusters"]), float(tol))]
        estimator = to_sklearn_kmeans(result, X, {"random_state": random_state, **params})
        out.append((params, estimator, result.labels, share))
    return out


def _dbscan_grid_path(X: np.ndarray, grid: list[dict[str, Any]], seed: int):
    """All (eps, min_samples) settings of DBSCAN from one neighbour pass (see _grid.py)."""
    from segmint.cluster._grid import dbscan_grid, to_sklearn_dbscan

    fixed = _constant(grid, {"__grid__": ("eps", "min_samples"), "metric": ("euclidean",)})
    if fixed is None or len(grid) < 2:
        return None
    eps_of = [float(p.get("eps", 0.5)) for p in grid]
    ms_of = [int(p.get("min_samples", 5)) for p in grid]
    start = time.perf_counter()
    results = dbscan_grid(X, sorted(set(eps_of)), sorted(set(ms_of)))
    share = (time.perf_counter() - start) / len(grid)
    out = []
    for params, eps, ms in zip(grid, eps_of, ms_of, strict=True):
        result = results[(eps, ms)]
        est = to_sklearn_dbscan(result, X, params)
        # its core samples' coordinates are rows of X: a copy per setting (up to the whole
        # matrix each: 0.6 GB for Intel's nine settings at 425,600 customers) is not held
        # through the run; the run's writer puts them back in the saved model
        # (runs._write._with_core_samples), which holds them as scikit-learn's fit does
        del est.components_
        out.append((params, est, result.labels, share))
    return out


def _bqml_kmeans(**params: Any) -> ClusterMixin:
    from segmint.cluster.bqml_kmeans import BQKMeans

    return BQKMeans(**params)


_K = list(range(2, 11))
for _algorithm in [
    Algorithm("kmeans", KMeans, {"n_clusters": _K}, label="k-means", seeded=True,
              k_param="n_clusters", short={"n_clusters": "k", "tol": "tol"}, assign=model_predict,
              centers_from_model=True, inertia_from_model=True, elbow=True,
              fast_path=_kmeans_grid_path),
    Algorithm("minibatch_kmeans", MiniBatchKMeans, {"n_clusters": _K}, label="mini-batch k-means",
              seeded=True, k_param="n_clusters", short={"n_clusters": "k", "batch_size": "b"},
              assign=model_predict, centers_from_model=True, elbow=True),
    Algorithm("dbscan", DBSCAN, {"eps": [0.5], "min_samples": [5]}, label="DBSCAN",
              short={"eps": "eps", "min_samples": "ms"}, assign=nearest_core,
              fast_path=_dbscan_grid_path),
    Algorithm("hdbscan", lambda **kw: HDBSCAN(copy=True, **kw), {"min_cluster_size": [25]},
              label="HDBSCAN", short={"min_cluster_size": "mcs", "min_samples": "ms"}),
    Algorithm("gaussian_mixture", GaussianMixture, {"n_components": list(range(2, 9))},
              label="Gaussian mixture", seeded=True, k_param="n_components",
              short={"n_components": "k", "covariance_type": "cov"}, assign=model_predict,
              extra_metrics=_bic),
    Algorithm("agglomerative", AgglomerativeClustering, {"n_clusters": list(range(2, 9))},
              label="agglomerative (Ward)", k_param="n_clusters", quadratic=True,
              short={"n_clusters": "k", "linkage": "link"}),
    Algorithm("kprototypes", KPrototypes, {"n_clusters": _K}, label="k-prototypes", seeded=True,
              k_param="n_clusters", short={"n_clusters": "k", "gamma": "g", "init": "init"},
              input="mixed", assign=model_predict,
              distances=lambda estimator, Z: estimator.transform(Z)),
    # BigQuery ML's k-means (random starts, at most 20 iterations, relative-progress stop,
    # cosine distance): what CREATE MODEL in segmint.sql trains; a spec may sweep it too
    Algorithm("bqml_kmeans", _bqml_kmeans, {"n_clusters": _K}, label="BigQuery ML k-means",
              seeded=True, k_param="n_clusters", short={"n_clusters": "k", "distance": "d",
                                                        "init": "init"},
              assign=model_predict, centers_from_model=True, elbow=True),
    Algorithm("birch", Birch, {"n_clusters": list(range(2, 9))}, label="BIRCH",
              k_param="n_clusters", short={"n_clusters": "k", "threshold": "th"},
              assign=nearest_center, savable=False),
]:
    register_algorithm(_algorithm)
