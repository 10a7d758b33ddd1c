"""A/B timing and stage profile of segmint's k-means grid on the Intel r=100 data.

The development harness behind the per-idea figures in BENCHMARKS.md:

    # two versions of the code, fresh processes, alternating (old, new, old, ...)
    git worktree add /tmp/old <commit>
    python benchmarks/kmeans_grid_ab.py --old /tmp/old/src --new src --jobs 2 --repeats 5

    # where the time goes, single thread, after a warm-up (per-stage seconds)
    python benchmarks/kmeans_grid_ab.py --profile

Each timed process loads the replicated intel21 table (r=100: 425,600 x 21),
standardises it, runs the grid once on 300 rows (compiled-code loading,
untimed), then times ``kmeans_grid`` (27 settings) on the whole table:
wall and CPU seconds.  The OpenBLAS variables are unset, as in
``intel_grid.py``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import intel_grid as ig  # noqa: E402  (the protocol's data and grid)


def _data(path):
    if not os.path.exists(path):
        table, _ = ig.intel_table(ig.DATA)
        np.save(path, ig.replicate(table.to_numpy(), 100))
    return np.load(path)


def _time_once(src, data_path, jobs):
    """Child: (wall, cpu) seconds of one grid with the code under ``src``."""
    sys.path.insert(0, src)
    from sklearn.preprocessing import StandardScaler

    from segmint.cluster._grid import kmeans_grid

    X = np.load(data_path)
    tiny = np.random.default_rng(1).normal(size=(300, X.shape[1]))
    kmeans_grid(StandardScaler().fit_transform(tiny), ig.K_LIST, ig.TOL_LIST, random_state=0,
                n_jobs=jobs)
    Xs = StandardScaler().fit_transform(X)
    t, c = time.perf_counter(), time.process_time()
    kmeans_grid(Xs, ig.K_LIST, ig.TOL_LIST, random_state=0, n_jobs=jobs)
    print(f"{time.perf_counter() - t:.4f} {time.process_time() - c:.4f}")


def _profile(data_path):
    """Single-thread stage times (s), averaged over 3 grids after a warm-up."""
    import collections

    from sklearn.preprocessing import StandardScaler

    import segmint.cluster._grid as G
    import segmint.cluster._grid_kernels as K

    Xs = StandardScaler().fit_transform(np.load(data_path))
    G.kmeans_grid(Xs[:300], ig.K_LIST, ig.TOL_LIST, random_state=0, n_jobs=1)
    spent = collections.Counter()

    def timed(owner, name, label=None):
        fn = getattr(owner, name)

        def wrapper(*a, **kw):
            t = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                spent[label or name] += time.perf_counter() - t

        setattr(owner, name, wrapper)

    for name in ("bound_filter", "finish_rows_f32", "finish_rows_topm", "move_sums",
                 "cluster_sums", "center_rows", "to_float32"):
        timed(K, name)
    timed(G, "_init_centers", "k-means++ starts")
    timed(G._Assigner, "_rows64", "rows needing all distances (gather+gemm+selection)")
    timed(G._Assigner, "assign", "E-step in all")
    walls = []
    for _ in range(3):
        t = time.perf_counter()
        G.kmeans_grid(Xs, ig.K_LIST, ig.TOL_LIST, random_state=0, n_jobs=1)
        walls.append(time.perf_counter() - t)
    print("grid, single thread (s):", ", ".join(f"{w:.2f}" for w in walls))
    for label, s in spent.most_common():
        print(f"  {label:<55} {s / 3:6.3f}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--old", help="src folder of the 'old' code")
    ap.add_argument("--new", default=str(HERE.parent / "src"), help="src folder of the 'new' code")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--profile", action="store_true", help="stage profile of --new, one thread")
    ap.add_argument("--data", default=os.path.join(tempfile.gettempdir(), "segmint-intel-r100.npy"))
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        return _time_once(args.child, args.data, args.jobs)
    _data(args.data)
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
    if args.profile:
        code = (f"import sys; sys.path.insert(0, {args.new!r}); sys.path.insert(1, {str(HERE)!r}); "
                f"import kmeans_grid_ab as m; m._profile({args.data!r})")
        return subprocess.run([sys.executable, "-c", code], env=env, check=True).returncode
    versions = [("old", args.old), ("new", args.new)] if args.old else [("new", args.new)]
    runs = {name: [] for name, _ in versions}
    for rep in range(args.repeats):
        for name, src in versions:
            out = subprocess.run(
                [sys.executable, __file__, "--child", str(Path(src).resolve()), "--data", args.data,
                 "--jobs", str(args.jobs)],
                env=env, check=True, capture_output=True, text=True).stdout.split()
            runs[name].append((float(out[0]), float(out[1])))
            print(f"repeat {rep + 1} {name}: wall {out[0]} s, cpu {out[1]} s", flush=True)
    for name, vals in runs.items():
        wall = [w for w, _ in vals]
        cpu = [c for _, c in vals]
        print(f"{name}: wall median {statistics.median(wall):.3f} s (min {min(wall):.3f}), "
              f"cpu median {statistics.median(cpu):.3f} s  [{args.jobs} thread(s)]")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
