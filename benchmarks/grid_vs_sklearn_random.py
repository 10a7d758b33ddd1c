"""Randomized comparison of segmint's k-means grid with scikit-learn, setting by setting.

Draws data sets of four kinds (continuous Gaussian, small integer lattice,
rows repeated 10 times, continuous with feature scales 1e-3..1e3), random
shapes, k values and seeds, fits each (k, tol) with
``segmint.cluster._grid.kmeans_grid`` and with ``sklearn.cluster.KMeans``
(lloyd, n_init=1, same random_state), and counts the settings where they
differ (inertia beyond 1e-6 relative, ARI < 0.9999 or another n_iter),
per kind of data.

    python benchmarks/grid_vs_sklearn_random.py            # 60 data sets
    python benchmarks/grid_vs_sklearn_random.py --trials 200 --seed 7
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score

from segmint.cluster._grid import kmeans_grid

KINDS = ["gaussian", "integer lattice", "rows repeated x10", "scales 1e-3..1e3"]


def make_data(rng, kind):
    n = int(rng.integers(5, 3000))
    d = int(rng.integers(1, 12))
    if kind == 0:
        return rng.standard_normal((n, d))
    if kind == 1:
        return rng.integers(0, 3, (n, d)).astype(float)
    if kind == 2:
        return np.repeat(rng.standard_normal((max(1, n // 10), d)), 10, axis=0)[:n]
    return rng.standard_normal((n, d)) * np.logspace(-3, 3, d)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=60, help="data sets to draw")
    ap.add_argument("--seed", type=int, default=123)
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore")  # scikit-learn's duplicate-point warnings
    rng = np.random.default_rng(args.seed)
    total = np.zeros(len(KINDS), dtype=int)
    differ = np.zeros(len(KINDS), dtype=int)
    for trial in range(args.trials):
        kind = trial % len(KINDS)
        X = make_data(rng, kind)
        n = X.shape[0]
        ks = sorted({int(k) for k in rng.integers(1, min(n, 40) + 1, 3)})
        seed = int(rng.integers(0, 100))
        grid = kmeans_grid(X, ks, [1e-4, 0.0], random_state=seed)
        for (k, tol), res in grid.items():
            km = KMeans(n_clusters=k, tol=tol, random_state=seed, n_init=1,
                        algorithm="lloyd").fit(X)
            total[kind] += 1
            same = (abs(res.inertia - km.inertia_) <= 1e-6 * km.inertia_ + 1e-12
                    and adjusted_rand_score(km.labels_, res.labels) >= 0.9999
                    and res.n_iter == km.n_iter_)
            if not same:
                differ[kind] += 1
                print(f"differs: data set {trial} ({KINDS[kind]}, {n} x {X.shape[1]}), "
                      f"k={k}, tol={tol}, random_state={seed}: inertia {res.inertia:.6g} vs "
                      f"{km.inertia_:.6g}, n_iter {res.n_iter} vs {km.n_iter_}, ARI "
                      f"{adjusted_rand_score(km.labels_, res.labels):.4f}")
    print(f"\n{'data':<20} {'settings':>9} {'differ':>7}")
    for i, name in enumerate(KINDS):
        print(f"{name:<20} {total[i]:>9} {differ[i]:>7}")
    print(f"{'all':<20} {total.sum():>9} {differ.sum():>7}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
