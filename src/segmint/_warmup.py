"""Compile segmint's numba kernels once, at installation (``make install`` runs this).

The grid engine, the pairwise measures and k-prototypes run compiled loops (numba, cached on
disk beside the code). The first run in a fresh installation compiles them: about 7 s on
two cores, more than the whole demo then takes. ``python -m segmint._warmup`` runs a tiny
sweep on synthetic customers that goes through every kernel the real runs use (k-means and
DBSCAN grids in two scalings with outliers set apart, the shared silhouette pass,
k-prototypes on a mixed table, stability refits, the profiles' passes), and a DBSCAN grid on
the streamed path that tables past its memory budget take (a tiny run keeps its graph), so
the cache is filled before a user waits.
It writes nothing but numba's cache (its run folder is a temporary one, removed).
"""
from __future__ import annotations

import tempfile
import time

import numpy as np
import pandas as pd

__all__ = ["main"]


def _customers(n: int = 2_000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "revenue": rng.lognormal(5, 1.2, n), "orders": rng.poisson(6, n).astype("float64"),
        "recency_days": rng.integers(0, 365, n).astype("float64"),
        "returns": rng.poisson(0.4, n).astype("float64"),
        "channel": rng.choice(["web", "store", "phone"], n),
    }, index=pd.Index([f"c{i}" for i in range(n)], name="customer_id"))


def main() -> float:
    """Run the warm-up sweep; return its seconds."""
    import segmint

    started = time.perf_counter()
    grid = {"n_clusters": [2, 3, 5], "tol": [1e-3, 1e-4]}
    numeric = {"recipe": {"kind": "attributes", "feature_columns": ["revenue", "orders",
                                                                   "recency_days", "returns"]},
               "sweep": {"scalings": ["log", "standard"],
                         "algorithms": [{"name": "kmeans", "grid": grid},
                                        {"name": "dbscan", "grid": {"eps": [0.5, 0.9],
                                                                    "min_samples": [5, 20]}}]},
               "select": {"stability_resamples": 2},
               "profile": {"projections": [], "explain": False}}
    mixed = {"recipe": {"kind": "attributes"},
             "sweep": {"algorithms": [{"name": "kprototypes", "grid": {"n_clusters": [2, 3]}}]},
             "select": {"stability_resamples": 2},
             "profile": {"projections": [], "explain": False}}
    with tempfile.TemporaryDirectory(prefix="segmint-warmup-") as folder:
        for name, spec in (("warmup-numeric", numeric), ("warmup-mixed", mixed)):
            segmint.run(_customers(), {"name": name, **spec}, output=folder)
    from segmint.cluster._grid import dbscan_grid

    # graph_budget 0: every pair streamed; these settings also meet a border point reached
    # from three clusters, so every streamed kernel is compiled
    X = np.random.default_rng(0).normal(size=(2_000, 4))
    dbscan_grid(X, [0.3, 0.5], [3, 6], graph_budget=0, block_rows=256)
    return time.perf_counter() - started


if __name__ == "__main__":
    print(f"segmint: compiled kernels cached in {main():.1f} s")
