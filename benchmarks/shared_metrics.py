"""Silhouette, Davies-Bouldin and Calinski-Harabasz of every solution of the demo sweep:
``solution_metrics`` once per labeling (what the sweep does today) against ``shared_measures``
once per prepared matrix (one blocked pass over the pairwise distances), in the same run.

    python benchmarks/shared_metrics.py
    python benchmarks/shared_metrics.py --silhouette-sample 2000   # the sampled path

The labelings are the demo's own: the demo sweep (Online Retail, Insiders features, Intel's
k-means grid and DBSCAN, log and standard spaces) runs once with its ``solution_metrics`` calls
recorded (matrix, labels); both sides are then timed on exactly those calls.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "2")
os.environ.setdefault("MKL_NUM_THREADS", "2")
os.environ.setdefault("OMP_NUM_THREADS", "2")

import duckdb  # noqa: E402
import numpy as np  # noqa: E402
from _machine import machine  # noqa: E402

from segmint.cluster import sweep as sweep_module  # noqa: E402
from segmint.cluster.metrics import solution_metrics  # noqa: E402
from segmint.cluster.shared_metrics import shared_measures  # noqa: E402
from segmint.pipeline import build_customers, demo_spec  # noqa: E402

MEASURES = ("silhouette", "davies_bouldin", "calinski_harabasz")


def demo_calls() -> list[tuple[np.ndarray, np.ndarray]]:
    """Every (matrix, labels) the demo sweep measures, recorded from its solution_metrics calls."""
    spec = demo_spec()
    with duckdb.connect() as con:
        table = build_customers(spec, con=con)
    calls = []

    def record(X, labels, **kw):
        calls.append((X, labels))
        return solution_metrics(X, labels, **kw)

    sweep_module.solution_metrics = record  # type: ignore[assignment]
    try:
        sweep_module.Sweep(spec.sweep, seed=spec.seed, prepare_spec=spec.prepare).run(table)
    finally:
        sweep_module.solution_metrics = solution_metrics
    return calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--silhouette-sample", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(machine(["numpy", "scipy", "scikit-learn", "segmint"], threads=2))
    print("command: python " + " ".join(sys.argv))
    calls = demo_calls()
    matrices: dict[int, tuple[np.ndarray, list[np.ndarray]]] = {}
    for X, labels in calls:
        matrices.setdefault(id(X), (X, []))[1].append(labels)
    kw = {"silhouette_sample": args.silhouette_sample, "seed": args.seed}
    total_plain = total_shared = 0.0
    worst = 0.0
    for X, labelings in matrices.values():
        t0 = time.perf_counter()
        plain = [solution_metrics(X, labels, **kw) for labels in labelings]
        t_plain = time.perf_counter() - t0
        t0 = time.perf_counter()
        shared = shared_measures(X, labelings, **kw)
        t_shared = time.perf_counter() - t0
        for p, s in zip(plain, shared, strict=True):
            for name in MEASURES:
                if math.isnan(p[name]) or math.isnan(s[name]):
                    assert math.isnan(p[name]) and math.isnan(s[name]), name
                elif p[name] != s[name]:
                    worst = max(worst, abs(s[name] - p[name]) / abs(p[name]))
        total_plain += t_plain
        total_shared += t_shared
        print(f"matrix {X.shape[0]} x {X.shape[1]}, {len(labelings)} labelings: "
              f"solution_metrics per labeling {t_plain:.2f} s, shared_measures once {t_shared:.2f} s, "
              f"{t_plain / t_shared:.1f}x")
    print(f"all {len(calls)} labelings of {len(matrices)} matrices: solution_metrics {total_plain:.2f} s, "
          f"shared_measures {total_shared:.2f} s, {total_plain / total_shared:.1f}x; "
          f"max relative difference {worst:.1e}")


if __name__ == "__main__":
    main()
