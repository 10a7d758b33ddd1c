"""k-prototypes on bank-full (8 columns, k=5, n_init=10), against kmodes if installed.

    python benchmarks/kprototypes.py          # bank-full: segmint, then kmodes 0.12.2 if present
    python benchmarks/kprototypes.py --big    # 1,000,000 rows x 20 columns, k=20, n_init=1

Prints the machine, the command, seconds and cost of each, and the ratios. kmodes leaves
numerics raw, so segmint is also timed with scale_numeric=False for a like-for-like cost.
The first segmint fit compiles the numba kernels (cached afterwards); it is timed apart.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from _machine import machine as _machine  # noqa: E402  (benchmarks/_machine.py)

from segmint.cluster.kprototypes import KPrototypes

COLUMNS = ["age", "job", "marital", "education", "default", "balance", "housing", "loan"]
ROOT = Path(__file__).resolve().parents[1]


def bank_full() -> pd.DataFrame:
    shared = ROOT.parent / "shared" / "data" / "bank-full.csv.gz"
    path = shared if shared.exists() else ROOT / "src" / "segmint" / "data" / "bank-full.csv.gz"
    return pd.read_csv(path, sep=";", usecols=COLUMNS)[COLUMNS]


def big_table(n: int = 1_000_000, seed: int = 0) -> pd.DataFrame:
    """bank-full's 8 columns replicated with jitter to n rows, plus 12 more (6 numeric,
    6 categorical) derived from them: 20 columns."""
    rng = np.random.default_rng(seed)
    base = bank_full()
    rows = base.iloc[rng.integers(0, len(base), n)].reset_index(drop=True)
    rows["age"] = rows["age"] + rng.normal(0, 1.0, n)
    rows["balance"] = rows["balance"] + rng.normal(0, 50.0, n)
    for i in range(6):
        rows[f"num{i}"] = rows["age"] * (i + 1) * 0.1 + rng.normal(0, 1.0, n)
    for i in range(6):
        flip = rng.random(n) < 0.05
        rows[f"cat{i}"] = np.where(flip, rng.choice(["p", "q", "r"], n),
                                   rows[["job", "marital", "education"][i % 3]].to_numpy())
    return rows


def machine() -> str:
    return _machine(["numpy", "scikit-learn", "numba"])


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--big", action="store_true", help="1,000,000 x 20, k=20, n_init=1")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    print(f"date:    {time.strftime('%Y-%m-%d %H:%M')}")

    # compile (or load the cached) kernels once, outside every timing
    (_, compile_s) = timed(lambda: KPrototypes(2, n_init=1, random_state=0).fit(
        pd.DataFrame({"x": [0.0, 1.0, 2.0], "c": ["a", "b", "a"]})))
    print(f"kernel compile/load: {compile_s:.2f} s")

    if args.big:
        X, build_s = timed(big_table)
        print(f"data: {len(X):,} rows x {X.shape[1]} columns (built in {build_s:.1f} s), k=20, n_init=1")
        km, secs = timed(lambda: KPrototypes(20, n_init=1, max_iter=100, random_state=0).fit(X))
        print(f"segmint KPrototypes: {secs:.1f} s, cost {km.cost_:.6g}, {km.n_iter_} iterations, "
              f"gamma {km.gamma_:.4g}  (target < 120 s)")
        return

    X = bank_full()
    print(f"data: bank-full, {len(X):,} rows x {X.shape[1]} columns {COLUMNS}, k=5, n_init=10")
    results = {}
    for label, params in [("scaled (default)", {}), ("raw numerics", {"scale_numeric": False})]:
        km, secs = timed(lambda p=params: KPrototypes(5, n_init=10, random_state=0, **p).fit(X))
        results[label] = (secs, km)
        print(f"segmint KPrototypes, {label}: {secs:.2f} s, cost {km.cost_:.6g}, "
              f"{km.n_iter_} iterations, gamma {km.gamma_:.4g}  (target < 5 s)")
    for init in ("cao", "k-means++"):
        km, secs = timed(lambda i=init: KPrototypes(5, n_init=10, init=i, random_state=0).fit(X))
        print(f"segmint KPrototypes, init={init}: {secs:.2f} s, cost {km.cost_:.6g}")

    try:
        from kmodes.kprototypes import KPrototypes as KModesKPrototypes
    except ImportError:
        print("kmodes: not installed, no peer timing (pip install kmodes==0.12.2)")
        return
    from importlib.metadata import version

    cat = results["raw numerics"][1].categorical_.tolist()
    raw_secs, raw = results["raw numerics"]
    # the same gamma as segmint's raw run, so the costs measure the same thing
    peer = KModesKPrototypes(n_clusters=5, init="Huang", n_init=10, gamma=raw.gamma_,
                             random_state=0, n_jobs=1)
    _, peer_secs = timed(lambda: peer.fit(X.to_numpy(dtype=object), categorical=cat))
    print(f"kmodes {version('kmodes')} KPrototypes (Huang init, raw numerics, gamma as segmint raw, "
          f"n_jobs=1): {peer_secs:.2f} s, cost {peer.cost_:.6g}, {peer.n_iter_} iterations")
    print(f"ratio kmodes / segmint (raw numerics): time {peer_secs / raw_secs:.1f}x, "
          f"cost {peer.cost_ / raw.cost_:.4f}")
    print(f"ratio kmodes / segmint (default, scaled): time {peer_secs / results['scaled (default)'][0]:.1f}x")


if __name__ == "__main__":
    main()
