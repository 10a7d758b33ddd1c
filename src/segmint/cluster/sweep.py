"""The sweep: algorithms x parameters x scalings over one customer table.

Every solution keeps its labels, its fitted model (scaler + estimator as one scikit-learn
``Pipeline``), its metrics and its fit time. Where a grid repeats work that can be shared
(k-means over tol, DBSCAN over eps and min_samples), the sweep asks a grid engine for all of
its settings at once; elsewhere it fits one setting after another.
"""
from __future__ import annotations

import hashlib
import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from segmint.cluster.metrics import label_centers, solution_metrics
from segmint.cluster.registry import ALGORITHMS, Algorithm, expand_grid
from segmint.errors import SpecError
from segmint.prepare import make_scaler
from segmint.spec import SweepSpec

__all__ = ["Solution", "Sweep", "run_sweep", "solution_name"]

log = logging.getLogger(__name__)

#: progress(done, total, what)
Progress = Callable[[int, int, str], None]


@dataclass
class Solution:
    """One fitted clustering of the customer table."""

    name: str
    algorithm: str
    scaling: str
    params: dict[str, Any]
    labels: np.ndarray
    model: Pipeline
    metrics: dict[str, Any]
    fit_seconds: float
    center_ids: np.ndarray = field(repr=False, default=None)  # segment ids of `centers`
    centers: np.ndarray = field(repr=False, default=None)  # in the prepared (scaled) space

    def row(self) -> dict[str, Any]:
        """This solution as one leaderboard row."""
        m = self.metrics
        algo = ALGORITHMS[self.algorithm]
        return {
            "solution": self.name,
            "algorithm": self.algorithm,
            "scaling": self.scaling,
            "params": _params_text(self.params),
            "k": self.params.get(algo.k_param, math.nan) if algo.k_param else math.nan,
            "tol": self.params.get("tol", math.nan),
            "n_clusters": m["n_clusters"],
            "sizes": " ".join(f"{k}:{v}" for k, v in m["sizes"].items()),
            "noise_share": m["noise_share"],
            "min_cluster_share": m["min_cluster_share"],
            "inertia": m["inertia"],
            "mean_squared_distance": m["mean_squared_distance"],
            "davies_bouldin": m["davies_bouldin"],
            "calinski_harabasz": m["calinski_harabasz"],
            "silhouette": m["silhouette"],
            "silhouette_sample": m["silhouette_sample"],
            "bic": m.get("bic", math.nan),
            "fit_seconds": self.fit_seconds,
        }


def _params_text(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in params.items())


def _fmt(v: Any) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def solution_name(algo: Algorithm, params: dict[str, Any], varied: set[str], scaling: str,
                  many_scalings: bool) -> str:
    """A short, stable id: ``kmeans_k5``, ``kmeans_k5_tol0.001``, ``dbscan_eps0.5_ms10_minmax``.

    The k parameter is always named; other parameters only when the grid varies them.
    """
    parts = [algo.name]
    for key, value in params.items():
        if key == algo.k_param or key in varied:
            parts.append(f"{algo.short.get(key, key)}{_fmt(value)}")
    if many_scalings:
        parts.append(scaling)
    return "_".join(parts)


class Sweep:
    """Runs a :class:`~segmint.spec.SweepSpec` over a customer table.

    Parameters
    ----------
    spec : SweepSpec
        Algorithms, grids and scalings.
    seed : int
        Seeds every randomised algorithm and the silhouette sample.
    progress : callable, optional
        Called as ``progress(done, total, what)`` after each solution.
    """

    def __init__(self, spec: SweepSpec, seed: int = 0, progress: Progress | None = None) -> None:
        self.spec = spec
        self.seed = seed
        self.progress = progress
        self._metrics_cache: dict[tuple[str, str], dict] = {}

    def plan(self) -> list[tuple[str, Algorithm, list[dict[str, Any]], set[str]]]:
        plan = []
        for scaling in self.spec.scalings:
            for algo_spec in self.spec.algorithms:
                algo = ALGORITHMS[algo_spec.name]
                grid = dict(algo_spec.grid or algo.default_grid)
                if algo.k_param and algo.k_param not in grid:
                    grid = {algo.k_param: algo.default_grid[algo.k_param], **grid}
                varied = {k for k, v in grid.items() if len(v) > 1}
                plan.append((scaling, algo, expand_grid(grid), varied))
        return plan

    def run(self, table: pd.DataFrame) -> list[Solution]:
        X_raw = table.to_numpy(dtype="float64")
        plan = self.plan()
        total = sum(len(p[2]) for p in plan)
        many_scalings = len(self.spec.scalings) > 1
        names: set[str] = set()
        solutions: list[Solution] = []
        scaled: dict[str, tuple[Any, np.ndarray]] = {}
        for scaling, algo, grid, varied in plan:
            if scaling not in scaled:
                scaler = make_scaler(scaling).fit(X_raw)
                scaled[scaling] = (scaler, scaler.transform(X_raw))
            scaler, X = scaled[scaling]
            if algo.name == "agglomerative" and len(X) > self.spec.max_rows_quadratic:
                raise SpecError(
                    f"agglomerative clustering is quadratic in memory; {len(X):,} customers is "
                    f"above sweep.max_rows_quadratic={self.spec.max_rows_quadratic:,}")
            for params, estimator, labels, seconds in _fit_group(algo, X, grid, self.seed):
                name = solution_name(algo, params, varied, scaling, many_scalings)
                if name in names:
                    raise SpecError(f"two grid settings give the same solution name {name!r}")
                names.add(name)
                solutions.append(self._solution(name, algo, scaling, params, scaler, estimator,
                                                X, labels, seconds))
                if self.progress:
                    self.progress(len(solutions), total, name)
        return solutions

    def _solution(self, name, algo, scaling, params, scaler, estimator, X, labels, seconds):
        labels = np.asarray(labels, dtype=np.int64)
        inertia = getattr(estimator, "inertia_", None) if algo.name == "kmeans" else None
        # Settings that give the same partition (k-means at several tol, often) share the
        # label-based measures: silhouette is quadratic and the costliest step of a sweep.
        key = (scaling, hashlib.sha1(labels.tobytes()).hexdigest())
        if key not in self._metrics_cache:
            self._metrics_cache[key] = solution_metrics(
                X, labels, silhouette_sample=self.spec.silhouette_sample, seed=self.seed)
        metrics = dict(self._metrics_cache[key])
        metrics["sizes"] = dict(metrics["sizes"])
        if inertia is not None:
            metrics["inertia"] = float(inertia)
            n_assigned = int((labels >= 0).sum())
            metrics["mean_squared_distance"] = float(inertia) / n_assigned if n_assigned else math.nan
        if algo.name == "gaussian_mixture":
            metrics["bic"] = float(estimator.bic(X))
        ids, centers = label_centers(X, labels)
        if hasattr(estimator, "cluster_centers_") and algo.name in ("kmeans", "minibatch_kmeans"):
            ids, centers = np.arange(len(estimator.cluster_centers_)), estimator.cluster_centers_
        model = Pipeline([("scale", scaler), ("cluster", estimator)])
        return Solution(name, algo.name, scaling, params, labels, model, metrics, seconds,
                        center_ids=np.asarray(ids), centers=np.asarray(centers, dtype="float64"))


def _fit_group(algo: Algorithm, X: np.ndarray, grid: list[dict[str, Any]], seed: int):
    """Yield (params, fitted estimator, labels, seconds) for each grid setting."""
    fast = _FAST_PATHS.get(algo.name)
    if fast is not None:
        try:
            result = fast(X, grid, seed)
        except (ValueError, TypeError) as exc:
            raise SpecError(f"{algo.name} grid: {exc}") from None
        if result is not None:
            yield from result
            return
    for params in grid:
        estimator = algo.make(params, seed)
        start = time.perf_counter()
        try:
            if hasattr(estimator, "fit_predict"):
                labels = estimator.fit_predict(X)
            else:
                labels = estimator.fit(X).predict(X)
        except (ValueError, TypeError) as exc:
            raise SpecError(f"{algo.name} with {_params_text(params)}: {exc}") from None
        yield params, estimator, labels, time.perf_counter() - start


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
    for params, tol in zip(grid, tol_of):
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
    for params, eps, ms in zip(grid, eps_of, ms_of):
        result = results[(eps, ms)]
        out.append((params, to_sklearn_dbscan(result, X, params), result.labels, share))
    return out


#: algorithm name -> fn(X, grid, seed) returning [(params, estimator, labels, seconds)], or None
#: where the grid needs something the engine does not do (then settings are fitted one by one).
#: Results equal scikit-learn's fit of each setting alone (tests/cluster/test_sweep.py).
_FAST_PATHS: dict[str, Callable] = {"kmeans": _kmeans_grid_path, "dbscan": _dbscan_grid_path}


def run_sweep(table: pd.DataFrame, spec: SweepSpec, seed: int = 0,
              progress: Progress | None = None) -> list[Solution]:
    """Fit every solution of ``spec`` on ``table`` (numeric columns, one row per customer)."""
    return Sweep(spec, seed=seed, progress=progress).run(table)
