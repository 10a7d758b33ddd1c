"""Repeated cluster analysis on Intel's customer-segmentation protocol.

Times a whole grid of fits -- 27 k-means settings and 9 DBSCAN settings --
with stock scikit-learn (one estimator per setting, each standardising
first) and with segmint's grid engine (``segmint.cluster._grid``: one
standardisation, shared work across settings), on the same data, and checks
that segmint's results are scikit-learn's.

    python benchmarks/intel_grid.py --quick          # a few minutes
    python benchmarks/intel_grid.py                  # full run
    python benchmarks/intel_grid.py --json out.json
    python benchmarks/intel_grid.py --only kmeans:100  # one grid

Every engine's grid runs in its own subprocess (so peak RSS is per engine);
engines alternate between repeats; the reported time is the median wall
clock of the whole grid.  Each child first runs its engine once on a tiny
data set (imports, compiled-code loading), untimed, for every engine alike.
As the protocol asks, OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE are unset for
every engine's command (the output says so); --keep-openblas-env keeps them.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "online_retail.parquet"

K_LIST = [2, 3, 4, 5, 10, 15, 20, 25, 30]
TOL_LIST = [1e-3, 1e-4, 1e-5]
EPS_LIST = [0.3, 0.5, 0.7]
MS_LIST = [10, 50, 100]

DAYS = ["Friday", "Monday", "Sunday", "Thursday", "Tuesday", "Wednesday"]
MONTHS = ["April", "August", "December", "February", "January", "July", "June",
          "March", "May", "November", "October", "September"]
COLUMNS = ["Amount", "NumberOfOrders", "Recency", *DAYS, *MONTHS]


# --------------------------------------------------------------------------
# data


def _private_intel_table(path):
    """The kit's 21-feature customer table (4,256 x 21 on Online Retail)."""
    import pandas as pd

    df = pd.read_parquet(path)
    df = df[df["CustomerID"].notna()].copy()
    df["Amount"] = df["Quantity"] * df["UnitPrice"]
    g = df.groupby("CustomerID")
    out = pd.DataFrame({"Amount": g["Amount"].mean(), "NumberOfOrders": g["Amount"].count()})
    out["Recency"] = (df["InvoiceDate"].max() - g["InvoiceDate"].max()).dt.days
    dow = pd.crosstab(df["CustomerID"], df["InvoiceDate"].dt.day_name())
    mon = pd.crosstab(df["CustomerID"], df["InvoiceDate"].dt.month_name())
    out = out.join(dow.reindex(columns=DAYS, fill_value=0))
    out = out.join(mon.reindex(columns=MONTHS, fill_value=0)).fillna(0)
    for c in ["Amount", "Recency", "NumberOfOrders"]:
        q05, q95 = out[c].quantile(0.05), out[c].quantile(0.95)
        span = q95 - q05
        out = out[(out[c] >= q05 - 1.5 * span) & (out[c] <= q95 + 1.5 * span)]
    return out[COLUMNS].astype("float64")


def intel_table(path):
    """(table, source): the package's recipe when available, else the helper."""
    private = _private_intel_table(path)
    try:
        import pandas as pd

        from segmint.io import read_frame
        from segmint.recipes import customer_table

        lines = read_frame(pd.read_parquet(path),
                           required=["customer", "invoice", "date", "quantity", "price"])
        table = customer_table(lines, "intel21").frame[COLUMNS]
        if list(table.columns) == COLUMNS and table.shape == private.shape:
            same = np.allclose(table.to_numpy(float), private.to_numpy(float))
            return table[COLUMNS].astype("float64"), (
                "segmint.recipes.customer_table(..., 'intel21') "
                f"(matches the protocol helper: {'yes' if same else 'NO'})")
    except Exception as exc:  # recipe absent or different: use the helper
        return private, f"protocol helper in this script ({type(exc).__name__} from recipe)"
    return private, "protocol helper in this script (recipe output differs in shape)"


def replicate(X, r, seed=0):
    """The kit's replication: every row r times, then seeded jitter on all rows."""
    X = np.repeat(np.asarray(X, dtype=np.float64), r, axis=0)
    if r > 1:
        rng = np.random.default_rng(seed)
        X[:, 0] += np.exp(rng.standard_normal(X.shape[0]))
        X[:, 1:] += rng.integers(0, 5, size=(X.shape[0], X.shape[1] - 1))
    return X


# --------------------------------------------------------------------------
# child: one engine, one grid


def _peak_rss_mib():
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _child(args):
    X = np.load(args.data)
    engine, grid = args.engine, args.grid
    tiny = np.random.default_rng(1).normal(size=(300, X.shape[1]))
    if engine in ("sklearn", "sklearnex"):
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        # the peers fit one pipeline per setting, as Intel's kit does
        if engine == "sklearn":
            from sklearn.cluster import DBSCAN, KMeans
        else:
            from sklearnex.cluster import DBSCAN, KMeans

        def run(data):
            out = {}
            if grid == "kmeans":
                for k in K_LIST:
                    for tol in TOL_LIST:
                        p = make_pipeline(StandardScaler(), KMeans(
                            n_clusters=min(k, len(data)), tol=tol, random_state=0,
                            algorithm="lloyd")).fit(data)
                        km = p[-1]
                        out[f"{k}|{tol}"] = (km.labels_, km.inertia_, km.n_iter_)
            else:
                for ms in MS_LIST:
                    for eps in EPS_LIST:
                        p = make_pipeline(StandardScaler(), DBSCAN(eps=eps, min_samples=ms)).fit(data)
                        out[f"{eps}|{ms}"] = (p[-1].labels_, 0.0, 0)
            return out
    else:
        from sklearn.preprocessing import StandardScaler

        from segmint.cluster._grid import dbscan_grid, kmeans_grid

        def run(data):
            Xs = StandardScaler().fit_transform(data)
            if grid == "kmeans":
                res = kmeans_grid(Xs, [min(k, len(data)) for k in K_LIST], TOL_LIST, random_state=0)
                return {f"{k}|{t}": (r.labels, r.inertia, r.n_iter) for (k, t), r in res.items()}
            res = dbscan_grid(Xs, EPS_LIST, MS_LIST)
            return {f"{e}|{m}": (r.labels, 0.0, 0) for (e, m), r in res.items()}

    t0 = time.perf_counter()
    run(tiny)  # warm-up: imports, compiled code
    warm = time.perf_counter() - t0
    t0 = time.perf_counter()
    res = run(X)
    seconds = time.perf_counter() - t0
    np.savez(args.out, **{f"labels:{key}": v[0] for key, v in res.items()})
    meta = {
        "seconds": seconds,
        "warmup_seconds": warm,
        "peak_rss_mib": _peak_rss_mib(),
        "inertia": {key: float(v[1]) for key, v in res.items()},
        "n_iter": {key: int(v[2]) for key, v in res.items()},
    }
    Path(args.out + ".json").write_text(json.dumps(meta))


# --------------------------------------------------------------------------
# parent


def machine_info(env):
    info = {"python": platform.python_version(), "platform": platform.platform()}
    try:
        info["cores"] = len(os.sched_getaffinity(0))
    except AttributeError:
        info["cores"] = os.cpu_count()
    try:
        with open("/proc/meminfo") as fh:
            kb = int(next(line for line in fh if line.startswith("MemTotal")).split()[1])
        info["memory_gib"] = round(kb / 1024**2, 1)
    except (OSError, StopIteration):
        pass
    try:
        with open("/proc/cpuinfo") as fh:
            info["cpu"] = next(line.split(":", 1)[1].strip() for line in fh if line.startswith("model name"))
    except (OSError, StopIteration):
        info["cpu"] = platform.processor()
    import scipy
    import sklearn
    info["numpy"] = np.__version__
    info["scipy"] = scipy.__version__
    info["scikit-learn"] = sklearn.__version__
    try:
        import numba

        info["numba"] = numba.__version__
    except ImportError:
        info["numba"] = None
    try:
        import sklearnex

        info["scikit-learn-intelex"] = getattr(sklearnex, "__version__", "installed")
    except ImportError:
        info["scikit-learn-intelex"] = None
    # the BLAS / OpenMP libraries as a child (with the children's environment) sees them
    code = ("import json, numpy, scipy.linalg, sklearn.cluster\n"
            "from threadpoolctl import threadpool_info\n"
            "keys = ('user_api', 'internal_api', 'version', 'architecture', 'num_threads')\n"
            "print(json.dumps([{k: p.get(k) for k in keys} for p in threadpool_info()]))")
    try:
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                             text=True, check=True).stdout
        info["threadpools"] = json.loads(out)
    except (subprocess.CalledProcessError, ValueError) as exc:
        info["threadpools"] = f"unavailable ({exc})"
    if hasattr(os, "getloadavg"):
        info["load_average_at_start"] = [round(x, 2) for x in os.getloadavg()]
    info["env"] = {k: env.get(k) for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE",
                                           "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")}
    return info


def run_engine(engine, grid, data_path, env, tmpdir, tag):
    out = os.path.join(tmpdir, f"{engine}-{grid}-{tag}")
    cmd = [sys.executable, __file__, "--child", "--engine", engine, "--grid", grid,
           "--data", data_path, "--out", out]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{engine} {grid} failed:\n{proc.stderr[-3000:]}")
    meta = json.loads(Path(out + ".json").read_text())
    with np.load(out + ".npz") as z:
        meta["labels"] = {k.split(":", 1)[1]: z[k] for k in z.files}
    return meta


def quality(grid, ref, got):
    from sklearn.metrics import adjusted_rand_score

    rows = []
    for key, lab_ref in ref["labels"].items():
        lab = got["labels"][key]
        row = {"setting": key, "ari": float(adjusted_rand_score(lab_ref, lab))}
        if grid == "kmeans":
            a, b = ref["inertia"][key], got["inertia"][key]
            row["inertia_rel_diff"] = abs(a - b) / abs(a) if a else abs(b)
            row["n_iter_equal"] = ref["n_iter"][key] == got["n_iter"][key]
            row["ok"] = row["inertia_rel_diff"] <= 1e-6 and row["ari"] >= 0.9999
        else:
            row["noise_identical"] = bool(np.array_equal(lab_ref == -1, lab == -1))
            row["labels_identical"] = bool(np.array_equal(lab_ref, lab))
            row["ok"] = row["ari"] == 1.0 and row["noise_identical"]
        rows.append(row)
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="k-means r=10 and DBSCAN r=15 only")
    ap.add_argument("--repeats", type=int, default=None, help="repeats per engine and grid")
    ap.add_argument("--json", default=None, help="write the figures to this JSON file")
    ap.add_argument("--data-path", default=str(DATA))
    ap.add_argument("--keep-openblas-env", action="store_true",
                    help="keep OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE as the environment sets "
                         "them (default, as the protocol asks: both unset for every engine)")
    ap.add_argument("--only", action="append", default=None, metavar="GRID[:R]",
                    help="run only these grids (kmeans, dbscan, kmeans:100, dbscan:15; "
                         "repeatable), e.g. --only kmeans:100")
    ap.add_argument("--dbscan-r100-sklearn", action="store_true",
                    help="also time stock scikit-learn on the DBSCAN r=100 grid (slow)")
    # child mode
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--engine", help=argparse.SUPPRESS)
    ap.add_argument("--grid", help=argparse.SUPPRESS)
    ap.add_argument("--data", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        return _child(args)

    env = dict(os.environ)
    if not args.keep_openblas_env:
        for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
            env.pop(k, None)
            os.environ.pop(k, None)
    repeats = args.repeats or 3
    engines = ["sklearn", "segmint"]
    try:
        import sklearnex  # noqa: F401

        engines.append("sklearnex")
    except ImportError:
        pass

    print("# Intel customer-segmentation grid benchmark")
    print("command:", " ".join([Path(sys.executable).name, *sys.argv]))
    print("date:", _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC"))
    info = machine_info(env)
    for k, v in info.items():
        print(f"{k}: {v}")
    if args.keep_openblas_env:
        print("note: OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE kept as the environment sets them")
    else:
        print("note: OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset for every engine "
              "(the protocol; --keep-openblas-env keeps them)")
    if "sklearnex" not in engines:
        print("note: scikit-learn-intelex not importable; skipped")

    table, source = intel_table(args.data_path)
    print(f"data: {table.shape[0]} customers x {table.shape[1]} features from {source}")

    runs = [("kmeans", 10), ("dbscan", 15)]
    if not args.quick:
        runs = [("kmeans", 10), ("kmeans", 100), ("dbscan", 15), ("dbscan", 100)]
    if args.only:
        runs = [("kmeans", 10), ("kmeans", 100), ("dbscan", 15), ("dbscan", 100)]
        keep = set()
        for spec in args.only:
            g, _, r = spec.partition(":")
            keep |= {(gg, rr) for gg, rr in runs if gg == g and (not r or rr == int(r))}
        if not keep:
            ap.error(f"--only {args.only}: no such grid")
        runs = [run for run in runs if run in keep]
    results = {"machine": info, "data_source": source, "command": sys.argv,
               "openblas_env": "kept" if args.keep_openblas_env else "unset", "runs": []}
    with tempfile.TemporaryDirectory() as tmpdir:
        for grid, r in runs:
            X = replicate(table.to_numpy(), r)
            data_path = os.path.join(tmpdir, f"X-{r}.npy")
            np.save(data_path, X)
            eng = list(engines)
            reps = repeats
            if grid == "dbscan" and r == 100:
                reps = 1
                if not args.dbscan_r100_sklearn:
                    eng = ["segmint"]
            n_fits = len(K_LIST) * len(TOL_LIST) if grid == "kmeans" else len(EPS_LIST) * len(MS_LIST)
            print(f"\n## {grid}, r={r}: {X.shape[0]} rows, {n_fits} fits, {reps} repeat(s)", flush=True)
            times = {e: [] for e in eng}
            rss = {e: [] for e in eng}
            last = {}
            for rep in range(reps):
                order = eng if rep % 2 == 0 else eng[::-1]
                for e in order:
                    meta = run_engine(e, grid, data_path, env, tmpdir, f"{r}-{rep}")
                    times[e].append(meta["seconds"])
                    rss[e].append(meta["peak_rss_mib"])
                    last[e] = meta
                    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
                    print(f"  repeat {rep + 1} {e}: {meta['seconds']:.2f} s, "
                          f"peak RSS {meta['peak_rss_mib']:.0f} MiB "
                          f"(untimed warm-up {meta['warmup_seconds']:.2f} s; "
                          f"1-min load average after {load:.2f})", flush=True)
            entry = {"grid": grid, "r": r, "rows": int(X.shape[0]), "fits": n_fits, "engines": {}}
            for e in eng:
                entry["engines"][e] = {"median_s": statistics.median(times[e]), "times_s": times[e],
                                       "peak_rss_mib": max(rss[e])}
                if len(times[e]) > 1 and max(times[e]) > 1.5 * min(times[e]):
                    print(f"  note: {e} repeats vary {min(times[e]):.2f}-{max(times[e]):.2f} s: "
                          "other load on the machine? (OpenMP/BLAS thread teams slow down "
                          "badly when a core is taken)")
            if "sklearn" in eng:
                base = entry["engines"]["sklearn"]["median_s"]
                for e in eng:
                    entry["engines"][e]["speedup_vs_sklearn"] = base / entry["engines"][e]["median_s"]
                for e in eng:
                    if e == "sklearn":
                        continue
                    q = quality(grid, last["sklearn"], last[e])
                    entry["engines"][e]["quality"] = q
            results["runs"].append(entry)
            print(f"  {'engine':<10} {'median s':>9} {'sklearn/x':>10} {'peak RSS MiB':>13}")
            for e in eng:
                d = entry["engines"][e]
                ratio = d.get("speedup_vs_sklearn")
                print(f"  {e:<10} {d['median_s']:9.2f} {f'{ratio:.2f}' if ratio else '-':>10} "
                      f"{d['peak_rss_mib']:13.0f}")
            for e in eng:
                q = entry["engines"][e].get("quality")
                if not q:
                    continue
                ok = all(row["ok"] for row in q)
                worst_ari = min(row["ari"] for row in q)
                line = (f"  quality {e}: {'PASS' if ok else 'FAIL'} ({len(q)} settings), "
                        f"min ARI {worst_ari:.6f}")
                if grid == "kmeans":
                    line += (f", max inertia rel diff {max(row['inertia_rel_diff'] for row in q):.2e}"
                             f", n_iter equal {sum(row['n_iter_equal'] for row in q)}/{len(q)}")
                else:
                    line += (f", noise identical {sum(row['noise_identical'] for row in q)}/{len(q)}"
                             f", labels identical {sum(row['labels_identical'] for row in q)}/{len(q)}")
                print(line)
                entry["engines"][e]["quality_pass"] = ok
            del X
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=str))
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
