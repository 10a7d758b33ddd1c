"""The sweep: algorithms x parameters x representations over one customer table.

Every solution keeps its labels, its fitted model (representation + estimator as one
scikit-learn ``Pipeline``), its metrics and its fit time. Where a grid repeats work that can be shared
(k-means over tol, DBSCAN over eps and min_samples), the sweep asks a grid engine for all of
its settings at once; elsewhere it fits one setting after another.
"""
from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from segmint.cluster.leaderboard import params_text
from segmint.cluster.metrics import label_centers, solution_metrics
from segmint.cluster.registry import ALGORITHMS, Algorithm, expand_grid
from segmint.errors import SpecError
from segmint.prepare import MixedInput, Representation, prepare_mixed, represent
from segmint.recipes._table import CustomerTable
from segmint.spec import PrepareSpec, RepresentationSpec, SweepSpec

#: measures also taken in the common space (leaderboard columns ``common_<measure>``)
COMMON_MEASURES = ("davies_bouldin", "calinski_harabasz", "silhouette")

__all__ = ["Solution", "Sweep", "run_sweep", "solution_name", "describe"]

log = logging.getLogger(__name__)

#: progress(done, total, what)
Progress = Callable[[int, int, str], None]


@dataclass
class Solution:
    """One fitted clustering of the customer table."""

    name: str
    algorithm: str
    representation: str
    params: dict[str, Any]
    labels: np.ndarray
    model: Pipeline | None  # prepare + cluster; None for a rule-based solution
    metrics: dict[str, Any]
    fit_seconds: float
    center_ids: Any = field(repr=False, default=None)  # segment ids of `centers`
    centers: Any = field(repr=False, default=None)  # in the prepared space
    columns: list[str] = field(repr=False, default_factory=list)  # prepared column names
    description: str = ""
    rules: dict[str, Any] | None = field(repr=False, default=None)  # a rule-based solution's rules
    segment_names: dict[int, str] = field(repr=False, default_factory=dict)  # names given by rules
    # the customers that were clustered (False: an outlier set apart, labelled -1); None: all
    clustered: np.ndarray | None = field(repr=False, default=None)
    # can score new customers from its saved model (not on a tree embedding: UMAP's fitted
    # state has no safe file format)
    scorable: bool = True

    def clustered_labels(self) -> np.ndarray:
        """The labels of the customers that were clustered, in table order."""
        return self.labels if self.clustered is None else self.labels[self.clustered]

    def row(self) -> dict[str, Any]:
        """This solution as one leaderboard row (columns of LEADERBOARD_COLUMNS)."""
        m = self.metrics
        algo = ALGORITHMS.get(self.algorithm)
        k_param = algo.k_param if algo else None
        row = {
            "solution": self.name,
            "algorithm": self.algorithm,
            "representation": self.representation,
            "params": params_text(self.params),
            "description": self.description or self.name,
            "k": float(self.params[k_param]) if k_param in self.params else math.nan,
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
            **{f"common_{k}": m.get(f"common_{k}", m[k]) for k in COMMON_MEASURES},
            "bic": m.get("bic", math.nan),
            "fit_seconds": self.fit_seconds,
        }
        return row


def _fmt(v: Any) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def solution_name(algo: Algorithm, params: dict[str, Any], varied: set[str], representation: str,
                  many_representations: bool) -> str:
    """A short, stable id: ``kmeans_k5``, ``kmeans_k5_tol0.001``, ``dbscan_eps0.5_ms10_minmax``.

    The k parameter is always named; other parameters only when the grid varies them.
    """
    parts = [algo.name]
    for key, value in params.items():
        if key == algo.k_param or key in varied:
            parts.append(f"{algo.short.get(key, key)}{_fmt(value)}")
    if many_representations:
        parts.append(representation)
    return "_".join(parts)


def describe(algo: Algorithm, params: dict[str, Any], representation: str) -> str:
    """``k-means, 5 segments, tol 0.001, log scaling``."""
    return f"{algo.describe(params)}, {representation} scaling"


class Sweep:
    """Runs a :class:`~segmint.spec.SweepSpec` over a customer table.

    Every (representation, algorithm, setting) of the spec gives one :class:`Solution`. The
    representations are the spec's scalings applied to the table's numeric columns (categorical
    columns one-hot encoded, missing values filled; see :mod:`segmint.prepare`).

    Parameters
    ----------
    spec : SweepSpec
        Algorithms, grids and scalings.
    seed : int
        Seeds every randomised algorithm and the silhouette sample.
    progress : callable, optional
        Called as ``progress(done, total, what)`` after each solution.
    prepare_spec : PrepareSpec, optional
        How categorical columns are encoded.
    """

    def __init__(self, spec: SweepSpec, seed: int = 0, progress: Progress | None = None,
                 prepare_spec: PrepareSpec | None = None) -> None:
        self.spec = spec
        self.seed = seed
        self.progress = progress
        self.prepare_spec = prepare_spec or PrepareSpec()
        self._metrics_cache: dict[tuple[str, str], dict] = {}
        # the label measures (silhouette, Davies-Bouldin, Calinski-Harabasz) of every solution
        # are taken at the end of a run, all labelings of one space in one pass over its
        # pairwise distances: space -> (matrix, {labels hash: labels}), and who needs which
        self._deferred: dict[str, tuple[np.ndarray, dict[str, np.ndarray]]] = {}
        self._waiting: list[tuple[Solution, str, str, str]] = []
        self.representations: dict[str, Representation] = {}
        self._mixed: MixedInput | None = None
        self.common: Representation | None = None  # the space every solution is measured in
        self._kinds = {str(r.name): r.kind for r in spec.spaces()}

    def plan(self) -> list[tuple[RepresentationSpec, Algorithm, list[dict[str, Any]], set[str]]]:
        plan = []
        for space in self.spec.spaces():
            for algo_spec in self.spec.algorithms:
                algo = ALGORITHMS[algo_spec.name]
                grid = dict(algo_spec.grid or algo.default_grid)
                if algo.k_param and algo.k_param not in grid:
                    grid = {algo.k_param: algo.default_grid[algo.k_param], **grid}
                varied = {k for k, v in grid.items() if len(v) > 1}
                plan.append((space, algo, expand_grid(grid), varied))
        return plan

    def _represent(self, table: CustomerTable, space: RepresentationSpec) -> Representation:
        if space.name not in self.representations:
            self.representations[str(space.name)] = represent(table, space, self.prepare_spec,
                                                              seed=self.seed)
        return self.representations[str(space.name)]

    def run(self, table: CustomerTable | pd.DataFrame) -> list[Solution]:
        if isinstance(table, pd.DataFrame):  # a plain numeric table: every column a feature
            table = CustomerTable(table, {c: "numeric" for c in table.columns}, list(table.columns))
        plan = self.plan()
        spaces = self.spec.spaces()
        first = spaces[0].name
        total = sum(len(p[2]) for p in plan if p[1].input != "mixed" or p[0].name == first)
        many = len(spaces) > 1
        names: set[str] = set()
        solutions: list[Solution] = []
        self.common = self._represent(table, self.spec.common)
        for space, algo, grid, varied in plan:
            X, prepare_step, fixed = None, None, {}
            if algo.input == "mixed":
                # a mixed-type clusterer scales inside: one fit, whatever the representations;
                # its measures are taken in the common space
                if space.name != first:
                    continue
                if self._mixed is None:
                    self._mixed = prepare_mixed(table)
                rep = self.common
                X, prepare_step = self._mixed.X, self._mixed.transformer
                fixed = {"categorical": self._mixed.categorical}
            elif algo.input != "numeric":
                raise SpecError(f"{algo.name} takes {algo.input} input, which this sweep does "
                                f"not prepare yet")
            else:
                rep = self._represent(table, space)
                X = rep.X
            if algo.quadratic and len(rep.X) > self.spec.max_rows_quadratic:
                raise SpecError(
                    f"{algo.label or algo.name} is quadratic in memory; {len(rep.X):,} customers "
                    f"is above sweep.max_rows_quadratic={self.spec.max_rows_quadratic:,}")
            for params, estimator, labels, seconds in _fit_group(algo, X, grid, self.seed, fixed):
                name = solution_name(algo, params, varied, str(space.name),
                                     many and algo.input == "numeric")
                if name in names:
                    raise SpecError(f"two grid settings give the same solution name {name!r}")
                names.add(name)
                solutions.append(self._solution(name, algo, rep, params, estimator, labels,
                                                seconds, prepare_step))
                if self.progress:
                    self.progress(len(solutions), total, name)
        self._measure_deferred()
        return solutions

    def _measure_deferred(self) -> None:
        """Fill in every solution's label measures, in its own space and in the common one:
        one :func:`shared_measures` pass per space (equal to ``solution_metrics``')."""
        from segmint.cluster.shared_metrics import shared_measures

        found: dict[tuple[str, str], dict[str, Any]] = {}
        sample = self.spec.silhouette_sample
        for space, (X, by_hash) in self._deferred.items():
            hashes = list(by_hash)
            values = shared_measures(X, [by_hash[h] for h in hashes], silhouette_sample=sample,
                                     seed=self.seed)
            for h, measures in zip(hashes, values, strict=True):
                n_assigned = int((by_hash[h] >= 0).sum())
                used = 0 if math.isnan(measures["silhouette"]) else min(n_assigned, sample)
                found[(space, h)] = {**measures, "silhouette_sample": used}
        for solution, space, h, common in self._waiting:
            solution.metrics.update(found[(space, h)])
            for measure in COMMON_MEASURES:
                solution.metrics[f"common_{measure}"] = found[(common, h)][measure]
        self._deferred.clear()
        self._waiting.clear()

    def _solution(self, name: str, algo: Algorithm, rep: Representation, params: dict[str, Any],
                  estimator: Any, labels: np.ndarray, seconds: float,
                  prepare_step: Any = None) -> Solution:
        X = rep.X
        labels = np.asarray(labels, dtype=np.int64)
        # Settings that give the same partition (k-means at several tol, often) share the
        # label-based measures: silhouette is quadratic and the costliest step of a sweep.
        key = (str(rep.name), hashlib.sha1(labels.tobytes()).hexdigest())
        if key not in self._metrics_cache:  # sizes, inertia; label measures at the end of run()
            self._metrics_cache[key] = solution_metrics(
                X, labels, silhouette_sample=self.spec.silhouette_sample, seed=self.seed,
                label_measures=False)
        metrics = dict(self._metrics_cache[key])
        metrics["sizes"] = dict(metrics["sizes"])
        # the same measures in the common space, where solutions of different spaces compare
        common = self.common if self.common is not None else rep
        for space in (rep, common):
            self._deferred.setdefault(str(space.name), (space.X, {}))[1].setdefault(key[1], labels)
        metrics["common_space"] = common.name
        if algo.inertia_from_model and getattr(estimator, "inertia_", None) is not None:
            inertia = float(estimator.inertia_)
            metrics["inertia"] = inertia
            n_assigned = int((labels >= 0).sum())
            metrics["mean_squared_distance"] = inertia / n_assigned if n_assigned else math.nan
        if algo.extra_metrics is not None:
            metrics.update(algo.extra_metrics(estimator, X))
        ids, centers = label_centers(X, labels)
        if algo.centers_from_model and hasattr(estimator, "cluster_centers_"):
            ids, centers = np.arange(len(estimator.cluster_centers_)), estimator.cluster_centers_
        model = Pipeline([("prepare", rep.transformer if prepare_step is None else prepare_step),
                          ("cluster", estimator)])
        description = describe(algo, params, rep.name) if algo.input == "numeric" else \
            f"{algo.describe(params)}, on the mixed table (measured in the {rep.name} space)"
        kind = self._kinds.get(rep.name, "scaled") if algo.input == "numeric" else "scaled"
        if kind != "scaled":
            description = f"{algo.describe(params)}, on the {kind} embedding {rep.name!r}"
        solution = Solution(name, algo.name, rep.name, params, labels, model, metrics, seconds,
                            center_ids=np.asarray(ids), centers=np.asarray(centers, dtype="float64"),
                            columns=list(rep.columns), description=description,
                            scorable=kind != "tree")
        self._waiting.append((solution, key[0], key[1], str(common.name)))
        return solution


def _fit_group(algo: Algorithm, X: np.ndarray, grid: list[dict[str, Any]], seed: int,
               fixed: dict[str, Any] | None = None):
    """Yield (params, fitted estimator, labels, seconds) for each grid setting. ``fixed`` are
    parameters the sweep sets itself (a mixed clusterer's categorical columns), kept out of the
    setting's recorded params."""
    if algo.fast_path is not None:
        try:
            result = algo.fast_path(X, grid, seed)
        except (ValueError, TypeError) as exc:
            raise SpecError(f"{algo.name} grid: {exc}") from None
        if result is not None:
            yield from result
            return
    for params in grid:
        estimator = algo.make(params, seed)
        if fixed:
            estimator.set_params(**fixed)
        start = time.perf_counter()
        try:
            if hasattr(estimator, "fit_predict"):
                labels = estimator.fit_predict(X)
            else:
                labels = estimator.fit(X).predict(X)
        except (ValueError, TypeError) as exc:
            raise SpecError(f"{algo.name} with {params_text(params)}: {exc}") from None
        yield params, estimator, labels, time.perf_counter() - start


def run_sweep(table: CustomerTable | pd.DataFrame, spec: SweepSpec, seed: int = 0,
              progress: Progress | None = None,
              prepare_spec: PrepareSpec | None = None) -> list[Solution]:
    """Fit every solution of ``spec`` on ``table`` (one row per customer)."""
    return Sweep(spec, seed=seed, progress=progress, prepare_spec=prepare_spec).run(table)
