"""The whole run, end to end: ``segmint.run`` beside the same pipeline written plainly.

Two specs, each timed stage by stage in the same invocation:

* ``demo``: the bundled demo (``segmint.pipeline.demo_spec``: Insiders features on Online
  Retail, isolation-forest outliers flagged in the log space, Intel's k-means and DBSCAN grids
  in the log and standard spaces, stability of the top 3);
* ``large``: Intel's kit (``examples/intel_kit.yaml``: the 21-feature "intel21" customer
  table, standard scaling, k-means k {2,3,4,5,10,15,20,25,30} x tol {1e-3,1e-4,1e-5}, DBSCAN
  eps {0.3,0.5,0.7} x min_samples {10,50,100}) on the 4,256-customer table replicated with the
  kit's seeded jitter (as ``benchmarks/intel_grid.py`` does) to ``--rows`` customers (default
  ~425,600, ``--quick`` ~42,560), written once as a Parquet customer table and run with
  ``recipe.kind: attributes``.

    python benchmarks/end_to_end.py --quick                  # demo + ~42,560 customers
    python benchmarks/end_to_end.py                          # demo + ~425,600 customers
    python benchmarks/end_to_end.py --rows 100000 --json out.json
    python benchmarks/end_to_end.py --only demo
    SEGMINT_THREADS=1 python benchmarks/end_to_end.py --only large --segmint-only   # and =2

segmint side: ``segmint.run(spec)`` in a fresh subprocess; its manifest's
``timings_seconds`` (load_and_recipe, sweep, select, explain, write) and the wall clock of
the call; import time is reported apart. Plain side, in its own fresh subprocess: the same
pipeline written plainly with pandas and scikit-learn -- read the customer table (the demo's
Insiders recipe is segmint's own ``build_customers``, timed alike, since there is no plainer
way to get the same table), the demo's isolation forest (as segmint: 200 trees, seed, top 1 %
flagged, clustered apart), a scaler per space, then for each setting one ``KMeans`` (n_init 1,
the spec's seed) or ``DBSCAN`` fit and its measures (silhouette on the same seeded sample of
``sweep.silhouette_sample`` customers, Davies-Bouldin, Calinski-Harabasz; for a second space
also in the common space), the same ranking (eligibility, Davies-Bouldin + silhouette ranks,
elbow by kneed), bootstrap stability of the top 3 distinct partitions by scikit-learn refits
of scaler + clusterer (``SelectSpec``'s 10 resamples of 80 %, ``default_rng([seed, b])``),
and the outputs written (leaderboard CSV, one Parquet of labels per solution, stability CSV).
segmint's explain stage (projections, LightGBM surrogate) and its report have no plain
counterpart: totals are given with and without them.

Plain DBSCAN above ``--plain-dbscan-rows`` customers (default 64,000) is not run at full
size (scikit-learn's DBSCAN holds every neighbourhood: tens of GiB and many minutes at
400k): its settings are fitted and measured on seeded subsamples of half and all of that many
rows and each setting's time extrapolated by the power law through those two points; the
output marks every such figure as an estimate. The plain side then refits segmint's own
stability candidates (its ranking lacks those DBSCAN settings).

Each side runs in its own subprocess (peak RSS = that process's VmHWM, imports included);
a third child imports what the segmint side imports, then runs segmint's install warm-up
(two runs of 2,000 synthetic customers: what a run loads on the way, scikit-learn whole,
LightGBM, plotly, numba's kernels) and reports its peak RSS, so the RSS above that baseline
can be read beside the target's bound: 2 x the input matrix (rows x 21 x 8 bytes) plus one
block of the pairwise silhouette pass (``segmint.cluster.shared_metrics.BLOCK_BYTES``). The
segmint side also reports the highest resident memory while each stage reported progress.
The demo is repeated (``--repeats``, median; sides alternate); the large spec runs once.

As ``benchmarks/intel_grid.py`` does (the issue-4 protocol), OPENBLAS_CORETYPE and
OPENBLAS_L2_SIZE are unset for every child (the output says so); --keep-openblas-env keeps
them. SEGMINT_THREADS is passed through as set; the thread count segmint uses
(``segmint._threads.threads()``) is recorded.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _machine import machine  # noqa: E402
from intel_grid import (  # noqa: E402
    COLUMNS,
    DATA,
    EPS_LIST,
    K_LIST,
    MS_LIST,
    TOL_LIST,
    _peak_rss_mib,
    intel_table,
    replicate,
)

STAGES = ("load_and_recipe", "sweep", "select", "explain", "write")
#: leaderboard columns compared between the two sides (timings left out)
COMPARED = ("n_clusters", "noise_share", "min_cluster_share", "inertia", "mean_squared_distance",
            "davies_bouldin", "calinski_harabasz", "silhouette", "silhouette_sample",
            "common_davies_bouldin", "common_calinski_harabasz", "common_silhouette")
BASE_ROWS = 4256  # the intel21 table of Online Retail


# --------------------------------------------------------------------------
# specs


def large_spec(table_path: str, output: str) -> dict:
    """The Intel kit's spec (examples/intel_kit.yaml) on a customer table file."""
    return {
        "name": "intel-large",
        "seed": 0,
        "source": {"path": table_path},
        "recipe": {"kind": "attributes", "id_column": "CustomerID",
                   "columns": {c: "numeric" for c in COLUMNS}},
        "sweep": {"scalings": ["standard"], "algorithms": [
            {"name": "kmeans", "grid": {"n_clusters": K_LIST, "tol": TOL_LIST}},
            {"name": "dbscan", "grid": {"min_samples": MS_LIST, "eps": EPS_LIST}}]},
        "output": output,
    }


def write_large_table(rows: int, path: str, data_path: str) -> dict:
    """The intel21 table replicated (kit's jitter) to about ``rows`` customers, new ids."""
    import pandas as pd

    table, source = intel_table(data_path)
    r = max(1, round(rows / len(table)))
    X = replicate(table.to_numpy(), r)
    frame = pd.DataFrame(X, columns=COLUMNS)
    frame.insert(0, "CustomerID", [f"C{i:07d}" for i in range(len(frame))])
    frame.to_parquet(path, index=False)
    return {"rows": int(len(frame)), "replication": r, "base_rows": int(len(table)),
            "source": source}


# --------------------------------------------------------------------------
# children


def _spec_for(args) -> object:
    from segmint.pipeline import demo_spec
    from segmint.spec import load_spec

    if args.spec == "demo":
        return demo_spec(args.out)
    return load_spec(large_spec(args.data, args.out))


def child_imports(args) -> dict:
    """What a run holds before its data: the modules the segmint side imports before its
    timing, then what a run loads on the way (scikit-learn whole, through skops; LightGBM;
    plotly; numba's compiled kernels), by running segmint's install warm-up (two runs on
    2,000 synthetic customers). Its peak RSS is the baseline the memory bound is read above."""
    t0 = time.perf_counter()
    import segmint  # noqa: F401
    import segmint.cluster.sweep  # noqa: F401
    import segmint.pipeline  # noqa: F401
    import segmint.runs._write  # noqa: F401
    import_s = time.perf_counter() - t0
    after_imports = _peak_rss_mib()
    from segmint._warmup import main as warm_up

    warm_up()
    return {"import_s": import_s, "imports_rss_mib": after_imports,
            "peak_rss_mib": _peak_rss_mib()}


def child_segmint(args) -> dict:
    t0 = time.perf_counter()
    import segmint
    import segmint.cluster.sweep  # noqa: F401  (what child_imports loads, outside the timing)
    import segmint.pipeline  # noqa: F401
    import segmint.runs._write  # noqa: F401
    from segmint._threads import threads

    import_s = time.perf_counter() - t0
    import segmint.cluster.shared_metrics as shared

    spec = _spec_for(args)
    # a diagnostic only: the sweep's one-pass label measures, timed (the call is unchanged)
    measured = {"shared_measures_s": 0.0, "labelings": 0, "clusters": 0}
    original = shared.shared_measures

    def timed(X, labelings, **kw):
        t1 = time.perf_counter()
        try:
            return original(X, labelings, **kw)
        finally:
            measured["shared_measures_s"] += time.perf_counter() - t1
            measured["labelings"] += len(labelings)
            measured["clusters"] += sum(int(np.unique(lab[lab >= 0]).size) for lab in labelings)

    shared.shared_measures = timed
    # resident memory sampled every 20 ms beside the run, filed under the stage its progress
    # last reported: where the peak is, not only how high
    stage = ["start"]
    rss_by_stage: dict[str, float] = {}
    running = threading.Event()
    running.set()

    def sample() -> None:
        while running.is_set():
            rss_by_stage[stage[0]] = max(rss_by_stage.get(stage[0], 0.0), _rss_mib())
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    t0 = time.perf_counter()
    result = segmint.run(spec, progress=lambda name, done, total, what: stage.__setitem__(0, name))
    wall = time.perf_counter() - t0
    running.clear()
    sampler.join()
    manifest = json.loads((Path(result.path) / "manifest.json").read_text())
    return {"wall_s": wall, "import_s": import_s, "stages": manifest["timings_seconds"],
            "peak_rss_mib": _peak_rss_mib(), "run": str(result.path), "threads": threads(),
            "customers": manifest.get("customers"), "sweep_detail": measured,
            "rss_by_stage_mib": rss_by_stage}


def _rss_mib() -> float:
    """This process's resident memory now (VmRSS), MiB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return math.nan


# ---- the plain pipeline


def _signed_log1p(X):
    return np.sign(X) * np.log1p(np.abs(X))


def _scaler(space: str):
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    if space == "log":
        return make_pipeline(FunctionTransformer(_signed_log1p), StandardScaler())
    return StandardScaler()


def _measures(X, labels, sample: int, seed: int) -> dict:
    """What segmint's leaderboard holds of one labeling, scikit-learn's functions."""
    from sklearn.metrics import calinski_harabasz_score, davies_bouldin_score, silhouette_score

    n = len(labels)
    assigned = labels >= 0
    ids, counts = np.unique(labels[assigned], return_counts=True)
    n_assigned = int(assigned.sum())
    out = {"n_clusters": int(ids.size), "noise_share": 1 - n_assigned / n,
           "min_cluster_share": counts.min() / n if ids.size else math.nan,
           "sizes": " ".join(f"{int(i)}:{int(c)}" for i, c in zip(ids, counts, strict=True)),
           "davies_bouldin": math.nan, "calinski_harabasz": math.nan, "silhouette": math.nan,
           "silhouette_sample": 0}
    if ids.size:
        Xa, la = X[assigned], labels[assigned]
        centers = np.stack([Xa[la == i].mean(axis=0) for i in ids])
        inertia = float(((Xa - centers[np.searchsorted(ids, la)]) ** 2).sum())
    else:
        inertia = math.nan
    out["inertia"] = inertia
    out["mean_squared_distance"] = inertia / n_assigned if n_assigned else math.nan
    if 2 <= ids.size < n_assigned:
        out["davies_bouldin"] = float(davies_bouldin_score(Xa, la))
        out["calinski_harabasz"] = float(calinski_harabasz_score(Xa, la))
        if n_assigned > sample:
            idx = np.random.default_rng(seed).choice(n_assigned, sample, replace=False)
            Xs, ls = Xa[idx], la[idx]
        else:
            Xs, ls = Xa, la
        if 2 <= np.unique(ls).size < len(ls):
            out["silhouette"] = float(silhouette_score(Xs, ls))
            out["silhouette_sample"] = int(len(ls))
    return out


def _settings():
    """(algorithm, params, name stem) in segmint's sweep order."""
    out = []
    for k in K_LIST:
        for tol in TOL_LIST:
            out.append(("kmeans", {"n_clusters": k, "tol": tol}, f"kmeans_k{k}_tol{tol:g}"))
    for ms in MS_LIST:
        for eps in EPS_LIST:
            out.append(("dbscan", {"min_samples": ms, "eps": eps}, f"dbscan_ms{ms}_eps{eps:g}"))
    return out


def _estimator(algorithm: str, params: dict, seed: int):
    from sklearn.cluster import DBSCAN, KMeans

    if algorithm == "kmeans":
        return KMeans(n_clusters=params["n_clusters"], tol=params["tol"], n_init=1,
                      random_state=seed)
    return DBSCAN(eps=params["eps"], min_samples=params["min_samples"])


def _dbscan_estimate(X, params, cap: int, seed: int, sample: int) -> dict:
    """Fit + measures of one DBSCAN setting on seeded subsamples of cap/2 and cap rows; the
    full size's seconds extrapolated by the power law through the two points."""
    n = len(X)
    sizes = [cap // 2, cap]
    secs = []
    for m in sizes:
        rows = np.sort(np.random.default_rng([seed, m]).choice(n, m, replace=False))
        Xm = X[rows]
        t0 = time.perf_counter()
        labels = _estimator("dbscan", params, seed).fit_predict(Xm)
        _measures(Xm, labels, sample, seed)
        secs.append(time.perf_counter() - t0)
    a = math.log(secs[1] / secs[0]) / math.log(sizes[1] / sizes[0]) if secs[0] > 0 else 2.0
    a = min(max(a, 1.0), 2.0)
    return {"estimated_s": secs[1] * (n / sizes[1]) ** a, "exponent": a,
            "subsample_rows": sizes, "subsample_s": secs}


def _knees(board) -> dict:
    """Kneedle's elbow of each k-means inertia curve: kneed, as a plain pipeline would; where
    kneed is not installed (segmint's test extras), segmint's own Kneedle, checked equal."""
    try:
        from kneed import KneeLocator

        def knee_of(k, inertia):
            return KneeLocator(k, inertia, curve="convex", direction="decreasing").knee
    except ImportError:
        from segmint.cluster.select import find_knee as knee_of

    knees = {}
    km = board[board["algorithm"] == "kmeans"]
    for key, group in km.groupby(["representation", "tol"], sort=False):
        g = group.sort_values("k")
        knee = knee_of(g["k"].to_numpy(float), g["inertia"].to_numpy(float)) \
            if len(g) >= 3 and np.isfinite(g["inertia"]).all() else None
        knees[key] = None if knee is None else int(knee)
    return knees


def _rank(board, min_share=0.01, max_noise=0.25):
    """segmint's selection rule, written out: eligible, ranked by Davies-Bouldin and silhouette
    in the common space, a tenth of the field for k at the elbow."""
    board = board.copy()
    board["eligible"] = ((board["n_clusters"] >= 2) & (board["min_cluster_share"] >= min_share)
                         & (board["noise_share"] <= max_noise)
                         & board["common_davies_bouldin"].notna())
    knees = _knees(board)
    board["at_knee"] = [r["algorithm"] == "kmeans"
                        and knees.get((r["representation"], r["tol"])) is not None
                        and r["k"] == knees[(r["representation"], r["tol"])]
                        for _, r in board.iterrows()]
    el = board[board["eligible"]].copy()
    db = el["common_davies_bouldin"].rank(method="min", ascending=True)
    sil = el["common_silhouette"].rank(method="min", ascending=False)
    el["order"] = (db + sil.fillna(len(el))) / (2 * len(el)) - 0.1 * el["at_knee"]
    el = el.sort_values(["order", "solution"], kind="stable")
    board["rank"] = np.nan
    board.loc[el.index, "rank"] = np.arange(1, len(el) + 1)
    return board, list(el["solution"])


def child_plain(args) -> dict:
    import pandas as pd
    from sklearn.base import clone
    from sklearn.metrics import adjusted_rand_score
    from sklearn.pipeline import Pipeline

    seed, sample = 0, 20_000  # RunSpec.seed, SweepSpec.silhouette_sample defaults
    resamples, fraction, top = 10, 0.8, 3  # SelectSpec defaults (the demo sets the same)
    stages = {}
    estimates = {}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    # ---- load_and_recipe
    t0 = time.perf_counter()
    if args.spec == "demo":
        import duckdb

        from segmint.pipeline import build_customers, demo_spec

        spec = demo_spec(args.out)
        with duckdb.connect() as con:
            table = build_customers(spec, con=con)
        frame = table.frame[table.features].astype("float64")
        spaces = ["log", "standard"]
    else:
        frame = pd.read_parquet(args.data).set_index("CustomerID")[COLUMNS]
        spaces = ["standard"]
    ids = frame.index.to_numpy()
    raw = frame.to_numpy(dtype=np.float64)
    stages["load_and_recipe"] = time.perf_counter() - t0

    # ---- sweep: outliers (demo), a scaler per space, one fit + measures per setting
    t0 = time.perf_counter()
    n = len(raw)
    clustered = np.ones(n, dtype=bool)
    if args.spec == "demo":  # transactions: isolation forest in the log space, top 1 % apart
        from sklearn.ensemble import IsolationForest

        X_log = _scaler("log").fit_transform(raw)
        scores = -IsolationForest(random_state=seed, n_estimators=200).fit(X_log).score_samples(X_log)
        clustered[np.argsort(-scores, kind="stable")[:int(np.floor(0.01 * n))]] = False
    part = raw[clustered]
    X = {s: _scaler(s).fit_transform(part) for s in spaces}
    common = spaces[0]
    cap = args.plain_dbscan_rows
    rows, labels_of, models = [], {}, {}
    dbscan_est = {}
    measures_s = 0.0
    for space in spaces:
        for algorithm, params, stem in _settings():
            name = stem + (f"_{space}" if len(spaces) > 1 else "")
            if algorithm == "dbscan" and len(part) > cap:
                dbscan_est[name] = _dbscan_estimate(X[space], params, cap, seed, sample)
                continue
            est = _estimator(algorithm, params, seed)
            t1 = time.perf_counter()
            lab = est.fit_predict(X[space])
            fit_s = time.perf_counter() - t1
            t1 = time.perf_counter()
            m = _measures(X[space], lab, sample, seed)
            measures_s += time.perf_counter() - t1
            if algorithm == "kmeans":
                m["inertia"] = float(est.inertia_)
                m["mean_squared_distance"] = m["inertia"] / len(lab)
            if space != common:
                t1 = time.perf_counter()
                c = _measures(X[common], lab, sample, seed)
                measures_s += time.perf_counter() - t1
            else:
                c = m
            m.update({f"common_{k}": c[k] for k in ("davies_bouldin", "calinski_harabasz",
                                                     "silhouette")})
            full = np.full(n, -1, dtype=np.int64)
            full[clustered] = lab
            labels_of[name] = full
            models[name] = (algorithm, params, space)
            rows.append({"solution": name, "algorithm": algorithm, "representation": space,
                         "k": float(params.get("n_clusters", math.nan)),
                         "tol": params.get("tol"), "params": json.dumps(params),
                         **m, "fit_seconds": fit_s})
    stages["sweep"] = time.perf_counter() - t0
    if dbscan_est:
        measured = stages["sweep"] - sum(sum(e["subsample_s"]) for e in dbscan_est.values())
        estimates["sweep"] = measured + sum(e["estimated_s"] for e in dbscan_est.values())
        estimates["dbscan_settings"] = dbscan_est

    # ---- select: ranking, stability of the top 3 distinct partitions by refits
    t0 = time.perf_counter()
    board = pd.DataFrame(rows)
    board, ranked = _rank(board)
    if args.candidates:
        picked = [c for c in args.candidates.split(",") if c in labels_of]
    else:
        picked = []
        for name in ranked:
            if len(picked) == top:
                break
            if not any(np.array_equal(labels_of[name], labels_of[p]) for p in picked):
                picked.append(name)
    view = part
    m_rows = len(view)
    size = max(2, int(round(fraction * m_rows)))
    aris = {p: [] for p in picked}
    for b in range(resamples):
        idx = np.sort(np.random.default_rng([seed, b]).choice(m_rows, size, replace=False))
        for p in picked:
            algorithm, params, space = models[p]
            pipe = Pipeline([("prepare", clone(_scaler(space))),
                             ("cluster", _estimator(algorithm, params, seed))])
            refit = pipe.fit_predict(view[idx])
            aris[p].append(adjusted_rand_score(labels_of[p][clustered][idx], refit))
    stab = pd.DataFrame([{"solution": p, "stability_ari_mean": float(np.mean(aris[p])),
                          "stability_ari_std": float(np.std(aris[p])), "resamples": resamples}
                         for p in picked])
    stable = stab[stab["stability_ari_mean"] >= 0.75]
    chosen = None if stab.empty else (stable["solution"].iloc[0] if len(stable) else
                                      stab.sort_values("stability_ari_mean",
                                                       ascending=False)["solution"].iloc[0])
    board["recommended"] = board["solution"] == chosen
    stages["select"] = time.perf_counter() - t0
    stages["explain"] = 0.0

    # ---- write: leaderboard, labels per solution, stability
    t0 = time.perf_counter()
    board.to_csv(out / "leaderboard.csv", index=False)
    stab.to_csv(out / "stability.csv", index=False)
    (out / "solutions").mkdir(exist_ok=True)
    for name, lab in labels_of.items():
        pd.DataFrame({"customer": ids, "segment": lab}).to_parquet(
            out / "solutions" / f"{name}.parquet", index=False)
    stages["write"] = time.perf_counter() - t0
    return {"stages": stages, "wall_s": sum(stages.values()), "peak_rss_mib": _peak_rss_mib(),
            "estimates": estimates, "candidates": picked, "recommended": chosen,
            "out": str(out), "sweep_detail": {"measures_s": measures_s}}


def child_dbscan_fit(args) -> dict:
    """One scikit-learn DBSCAN fit at full size (the check of the plain side's estimate)."""
    import pandas as pd
    from sklearn.preprocessing import StandardScaler

    X = StandardScaler().fit_transform(
        pd.read_parquet(args.data).set_index("CustomerID")[COLUMNS].to_numpy(np.float64))
    eps, ms = (float(v) for v in args.candidates.split(","))
    t0 = time.perf_counter()
    labels = _estimator("dbscan", {"eps": eps, "min_samples": int(ms)}, 0).fit_predict(X)
    return {"fit_s": time.perf_counter() - t0, "peak_rss_mib": _peak_rss_mib(),
            "n_clusters": int(np.unique(labels[labels >= 0]).size),
            "noise_share": float((labels < 0).mean())}


def dbscan_check(table_path: str, env: dict, work: str, budget: float, estimates: dict) -> list:
    """scikit-learn's DBSCAN at full size, min_samples 10 at each eps, each in a subprocess
    stopped after ``budget`` seconds: the measured fit beside the plain side's estimate.
    (Its time is the radius-neighbours query, which min_samples does not change.)"""
    out = []
    for eps in EPS_LIST:
        name = f"dbscan_ms{MS_LIST[0]}_eps{eps:g}"
        path = os.path.join(work, f"check-{name}")
        cmd = [sys.executable, __file__, "--child", "dbscan_fit", "--spec", "large", "--out", path,
               "--data", table_path, "--candidates", f"{eps},{MS_LIST[0]}"]
        t0 = time.perf_counter()
        try:
            subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=budget, check=True)
            res = json.loads(Path(path + ".json").read_text())
        except subprocess.TimeoutExpired:
            res = {"fit_s": None, "stopped_after_s": time.perf_counter() - t0}
        except subprocess.CalledProcessError as exc:
            res = {"fit_s": None, "failed": exc.stderr[-500:]}
        res.update({"setting": name, "estimated_fit_and_measures_s":
                    estimates.get(name, {}).get("estimated_s")})
        fit = res["fit_s"]
        print(f"  check: scikit-learn {name} at full size: "
              + (f"fit {fit:.1f} s, peak RSS {res['peak_rss_mib']:.0f} MiB, "
                 f"{res['n_clusters']} clusters, noise {res['noise_share']:.1%}" if fit is not None
                 else f"not finished: stopped after {res.get('stopped_after_s', 0):.0f} s"
                 if "stopped_after_s" in res else "failed")
              + (f" (the estimate of its fit + measures: {res['estimated_fit_and_measures_s']:.0f} s)"
                 if res["estimated_fit_and_measures_s"] is not None else ""),
              flush=True)
        out.append(res)
    return out


# --------------------------------------------------------------------------
# parent


def _child(kind: str, spec: str, out: str, env: dict, data: str | None = None,
           extra: list[str] | None = None) -> dict:
    cmd = [sys.executable, __file__, "--child", kind, "--spec", spec, "--out", out,
           *(["--data", data] if data else []), *(extra or [])]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{kind} {spec} failed:\n{proc.stderr[-4000:]}")
    return json.loads(Path(out + ".json").read_text())


def compare_demo(seg_run: str, plain_out: str) -> dict:
    """segmint's leaderboard and labels against the plain path's, setting by setting."""
    import pandas as pd
    from sklearn.metrics import adjusted_rand_score

    seg = pd.read_csv(Path(seg_run) / "leaderboard.csv").set_index("solution")
    plain = pd.read_csv(Path(plain_out) / "leaderboard.csv").set_index("solution")
    seg_labels = pd.read_parquet(Path(seg_run) / "labels.parquet")
    common = [s for s in plain.index if s in seg.index]
    worst = {}
    for col in COMPARED:
        a = seg.loc[common, col].to_numpy(float)
        b = plain.loc[common, col].to_numpy(float)
        both_nan = np.isnan(a) & np.isnan(b)
        one_nan = np.isnan(a) ^ np.isnan(b)
        with np.errstate(invalid="ignore", divide="ignore"):
            rel = np.abs(a - b) / np.maximum(np.abs(a), np.abs(b))
        rel = np.where(both_nan | ((a == b) & ~np.isnan(a)), 0.0, rel)
        worst[col] = float("inf") if one_nan.any() else float(np.nanmax(rel)) if len(rel) else 0.0
    equal = ari_one = 0
    for s in common:
        a = seg_labels[s].to_numpy()
        b = pd.read_parquet(Path(plain_out) / "solutions" / f"{s}.parquet")["segment"].to_numpy()
        equal += bool(np.array_equal(a, b))
        ari_one += bool(adjusted_rand_score(a, b) == 1.0)
    seg_stab = pd.read_csv(Path(seg_run) / "stability.csv").set_index("solution")
    plain_stab = pd.read_csv(Path(plain_out) / "stability.csv").set_index("solution")
    same_cands = list(seg_stab.index) == list(plain_stab.index)
    stab_diff = float(np.max(np.abs(seg_stab["stability_ari_mean"].to_numpy()
                                    - plain_stab["stability_ari_mean"].to_numpy()))) \
        if same_cands else None
    seg_rec = seg.index[seg["recommended"].astype(bool)].tolist()
    plain_rec = plain.index[plain["recommended"].astype(bool)].tolist()
    rank_equal = bool((seg.loc[common, "rank"].fillna(-1).to_numpy(float)
                       == plain.loc[common, "rank"].fillna(-1).to_numpy(float)).all())
    return {"solutions_compared": len(common), "segmint_solutions": len(seg),
            "max_rel_diff": worst, "labels_identical": equal, "labels_ari_1": ari_one,
            "rank_equal": rank_equal, "same_candidates": same_cands,
            "stability_ari_max_abs_diff": stab_diff,
            "recommended": {"segmint": seg_rec, "plain": plain_rec},
            "pass_1e9": all(v <= 1e-9 for v in worst.values())}


def source_state() -> str:
    """The commit the children import segmint from, and uncommitted edits under src/."""
    root = HERE.parent
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, text=True,
                              capture_output=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "src"], cwd=root,
                               text=True, capture_output=True, check=True).stdout.split("\n")
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    files = [line[3:] for line in dirty if line.strip()]
    return f"commit {head}" + (f" + uncommitted edits in {len(files)} file(s) under src/: "
                               + ", ".join(files) if files else " (src/ clean)")


def _fmt(x) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.2f}"


def stage_table(seg: dict, plain: dict, seg_est: dict | None = None) -> list[dict]:
    rows = []
    est = plain.get("estimates", {})
    for st in STAGES:
        s = seg["stages"].get(st)
        p = plain["stages"].get(st) if st != "explain" else None
        p_est = est.get(st)
        pv = p_est if p_est is not None else p
        rows.append({"stage": st, "segmint_s": s, "plain_s": pv, "plain_estimated": p_est is not None,
                     "ratio": (pv / s) if pv and s else None})
    seg_total = seg["wall_s"]
    plain_total = sum(r["plain_s"] or 0.0 for r in rows)
    comparable = sum(seg["stages"][st] for st in STAGES if st != "explain")
    rows.append({"stage": "total (segmint: whole run call)", "segmint_s": seg_total,
                 "plain_s": plain_total, "plain_estimated": bool(est),
                 "ratio": plain_total / seg_total})
    rows.append({"stage": "sum of stages but explain", "segmint_s": comparable, "plain_s": plain_total,
                 "plain_estimated": bool(est), "ratio": plain_total / comparable})
    return rows


def _detail(seg: dict, plain: dict) -> str:
    d = seg.get("sweep_detail", {})
    return (f"  of the sweep: segmint's one-pass label measures {d.get('shared_measures_s', 0):.2f} s "
            f"({d.get('labelings', 0)} labelings, {d.get('clusters', 0)} clusters in all); plain "
            f"measures (Davies-Bouldin, Calinski-Harabasz, silhouette per setting) "
            f"{plain.get('sweep_detail', {}).get('measures_s', 0):.2f} s")


def print_table(rows: list[dict]) -> None:
    print(f"  {'stage':<32} {'segmint s':>10} {'plain s':>12} {'plain/segmint':>14}")
    for r in rows:
        p = _fmt(r["plain_s"]) + (" (est.)" if r["plain_estimated"] else "")
        if r["stage"] == "explain":
            p = "- (none)"
        print(f"  {r['stage']:<32} {_fmt(r['segmint_s']):>10} {p:>12} "
              f"{(_fmt(r['ratio']) + 'x') if r['ratio'] else '-':>14}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="large spec at ~42,560 customers")
    ap.add_argument("--rows", type=int, default=None,
                    help="customers of the large spec (rounded to a multiple of 4,256)")
    ap.add_argument("--repeats", type=int, default=3, help="repeats of the demo (median)")
    ap.add_argument("--only", choices=["demo", "large", "dbscan-check"], default=None,
                    help="one spec; dbscan-check: only the --dbscan-check fits at --rows (with "
                         "--estimates-from an earlier --json to print the estimates beside)")
    ap.add_argument("--estimates-from", default=None, metavar="JSON")
    ap.add_argument("--plain-dbscan-rows", type=int, default=64_000,
                    help="above this many customers plain DBSCAN is estimated from subsamples")
    ap.add_argument("--dbscan-check", type=float, default=None, metavar="SECONDS",
                    help="when plain DBSCAN is estimated, also fit scikit-learn's DBSCAN at full "
                         "size at each eps (min_samples 10), each stopped after SECONDS")
    ap.add_argument("--json", default=None, help="write the figures to this JSON file")
    ap.add_argument("--segmint-only", action="store_true",
                    help="large spec: run the segmint side alone (no plain pipeline)")
    ap.add_argument("--data-path", default=str(DATA))
    ap.add_argument("--keep-openblas-env", action="store_true",
                    help="keep OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE (default: unset, as "
                         "benchmarks/intel_grid.py)")
    ap.add_argument("--keep", default=None, help="keep the run folders under this folder")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--spec", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--out", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--data", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--candidates", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        fn = {"segmint": child_segmint, "plain": child_plain, "imports": child_imports,
              "dbscan_fit": child_dbscan_fit}[args.child]
        res = fn(args)
        Path(args.out + ".json").write_text(json.dumps(res, default=str))
        return 0

    env = dict(os.environ)
    if not args.keep_openblas_env:
        for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
            env.pop(k, None)
            os.environ.pop(k, None)
    try:
        from segmint._threads import threads

        n_threads = threads()
    except ImportError:
        n_threads = None
    print("# The whole run, end to end: segmint.run beside the plain scikit-learn pipeline")
    print("command:", " ".join([Path(sys.executable).name, *sys.argv]))
    print("date:", _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC"))
    line = machine(["numpy", "scipy", "scikit-learn", "pandas", "duckdb", "lightgbm", "segmint"],
                   threads=n_threads)
    print(line)
    print(f"SEGMINT_THREADS={os.environ.get('SEGMINT_THREADS')!r}; "
          f"OPENBLAS_CORETYPE/L2_SIZE {'kept' if args.keep_openblas_env else 'unset'} for every child")
    src = source_state()
    print(f"code: {src}")
    load0 = os.getloadavg()
    print(f"load average at start: {load0[0]:.2f} {load0[1]:.2f} {load0[2]:.2f}")
    results = {"machine": line, "command": sys.argv, "threads": n_threads, "code": src,
               "openblas_env": "kept" if args.keep_openblas_env else "unset",
               "load_average_start": load0, "specs": {}}
    work = args.keep or tempfile.mkdtemp(prefix="segmint-e2e-")
    os.makedirs(work, exist_ok=True)

    imports = _child("imports", "demo", os.path.join(work, "imports"), env)
    results["imports"] = imports
    print(f"imports only (segmint and its libraries): {imports['import_s']:.2f} s, "
          f"peak RSS {imports['imports_rss_mib']:.0f} MiB; with what a run loads on the way "
          f"(segmint's warm-up: two runs of 2,000 customers) {imports['peak_rss_mib']:.0f} MiB, "
          f"the baseline memory is read above")

    if args.only in (None, "demo"):
        print(f"\n## demo spec ({args.repeats} repeat(s), sides alternating, median)", flush=True)
        segs, plains = [], []
        for rep in range(args.repeats):
            order = ["segmint", "plain"] if rep % 2 == 0 else ["plain", "segmint"]
            for side in order:
                out = os.path.join(work, f"demo-{side}-{rep}")
                res = _child(side, "demo", out, env)
                (segs if side == "segmint" else plains).append(res)
                print(f"  repeat {rep + 1} {side}: {res['wall_s']:.2f} s, peak RSS "
                      f"{res['peak_rss_mib']:.0f} MiB (1-min load {os.getloadavg()[0]:.2f})",
                      flush=True)
        seg = _median_run(segs)
        plain = _median_run(plains)
        rows = stage_table(seg, plain)
        print_table(rows)
        print(_detail(seg, plain))
        print(f"  peak RSS: segmint {max(r['peak_rss_mib'] for r in segs):.0f} MiB, "
              f"plain {max(r['peak_rss_mib'] for r in plains):.0f} MiB; segmint import "
              f"{seg['import_s']:.2f} s (outside the run's time)")
        pairs = [compare_demo(a["run"], b["out"]) for a, b in zip(segs, plains, strict=True)]
        eq = dict(pairs[-1])  # the last repeat's, with each column's worst over the repeats
        eq["max_rel_diff"] = {c: max(p["max_rel_diff"][c] for p in pairs) for c in COMPARED}
        eq["labels_identical"] = min(p["labels_identical"] for p in pairs)
        eq["labels_ari_1"] = min(p["labels_ari_1"] for p in pairs)
        eq["rank_equal"] = all(p["rank_equal"] for p in pairs)
        eq["pass_1e9"] = all(p["pass_1e9"] for p in pairs)
        eq["per_repeat_pass_1e9"] = [p["pass_1e9"] for p in pairs]
        print(f"  equality ({eq['solutions_compared']} solutions): labels identical "
              f"{eq['labels_identical']}/{eq['solutions_compared']}, ARI 1 "
              f"{eq['labels_ari_1']}/{eq['solutions_compared']}; ranks equal {eq['rank_equal']}; "
              f"same stability candidates {eq['same_candidates']} (max |ARI mean diff| "
              f"{eq['stability_ari_max_abs_diff']}); recommended {eq['recommended']}")
        print(f"  max relative difference per column (worst of {len(pairs)} repeat(s)): " + ", ".join(
            f"{k} {v:.1e}" for k, v in eq["max_rel_diff"].items()))
        print(f"  leaderboard equal within 1e-9: {'PASS' if eq['pass_1e9'] else 'FAIL'}; "
              f"demo under 5 s of run time: {'yes' if seg['wall_s'] < 5 else 'NO'} "
              f"({seg['wall_s']:.2f} s median)")
        results["specs"]["demo"] = {"segmint": segs, "plain": plains, "table": rows,
                                    "equality": eq}

    if args.only in (None, "large"):
        rows_wanted = args.rows or (42_560 if args.quick else 425_600)
        table_path = os.path.join(work, "customers.parquet")
        info = write_large_table(rows_wanted, table_path, args.data_path)
        n = info["rows"]
        matrix_mib = n * len(COLUMNS) * 8 / 2**20
        from segmint.cluster.shared_metrics import BLOCK_BYTES

        block_mib = BLOCK_BYTES / 2**20
        print(f"\n## large spec: {n:,} customers x {len(COLUMNS)} (intel21 x {info['replication']}, "
              f"kit jitter; {info['source']})", flush=True)
        seg = _child("segmint", "large", os.path.join(work, "large-segmint"), env, table_path)
        print(f"  segmint: {seg['wall_s']:.2f} s, peak RSS {seg['peak_rss_mib']:.0f} MiB "
              f"(1-min load {os.getloadavg()[0]:.2f}); highest resident MiB while each stage "
              f"reported progress: " + ", ".join(f"{k} {v:.0f}" for k, v in
                                                  seg["rss_by_stage_mib"].items()), flush=True)
        if args.segmint_only:  # e.g. SEGMINT_THREADS=1 and =2, for the thread target
            print("  stages: " + ", ".join(f"{k} {v:.2f}" for k, v in seg["stages"].items()))
            results["specs"]["large"] = {"data": info, "segmint": seg}
            return _finish(results, args, work)
        extra = ["--plain-dbscan-rows", str(args.plain_dbscan_rows)]
        if n * 1.0 > args.plain_dbscan_rows:
            import pandas as pd

            cands = pd.read_csv(Path(seg["run"]) / "stability.csv")["solution"].tolist()
            extra += ["--candidates", ",".join(cands)]
        plain = _child("plain", "large", os.path.join(work, "large-plain"), env, table_path, extra)
        print(f"  plain: {plain['wall_s']:.2f} s measured, peak RSS {plain['peak_rss_mib']:.0f} MiB "
              f"(1-min load {os.getloadavg()[0]:.2f})", flush=True)
        rows = stage_table(seg, plain)
        print_table(rows)
        print(_detail(seg, plain))
        if plain["estimates"]:
            d = plain["estimates"]["dbscan_settings"]
            print(f"  (est.): plain DBSCAN not run at {n:,} rows; each of its {len(d)} settings "
                  f"fitted + measured on {next(iter(d.values()))['subsample_rows']} rows and "
                  f"extrapolated by the power law through the two (exponents, clipped to 1..2, "
                  f"{min(e['exponent'] for e in d.values()):.2f}-"
                  f"{max(e['exponent'] for e in d.values()):.2f}): "
                  f"{sum(e['estimated_s'] for e in d.values()):.0f} s in all")
        check = None
        if plain["estimates"] and args.dbscan_check:
            check = dbscan_check(table_path, env, work, args.dbscan_check,
                                 plain["estimates"]["dbscan_settings"])
        bound = 2 * matrix_mib + block_mib
        above = seg["peak_rss_mib"] - imports["peak_rss_mib"]
        print(f"  input matrix {n:,} x {len(COLUMNS)} x 8 B = {matrix_mib:.1f} MiB; bound 2 x matrix "
              f"+ pairwise block ({block_mib:.0f} MiB) = {bound:.1f} MiB")
        print(f"  segmint peak RSS {seg['peak_rss_mib']:.0f} MiB, {above:.0f} MiB above the "
              f"baseline's {imports['peak_rss_mib']:.0f} MiB (imports + warm-up): bound "
              f"{'holds' if seg['peak_rss_mib'] <= bound else 'does NOT hold'} (whole process), "
              f"{'holds' if above <= bound else 'does NOT hold'} (above the baseline)")
        total = rows[-2]
        print(f"  10x target (plain / segmint, whole run): {total['ratio']:.2f}x "
              f"{'met' if total['ratio'] >= 10 else 'NOT met'}"
              + (" (plain side partly estimated)" if plain["estimates"] else ""))
        results["specs"]["large"] = {"data": info, "segmint": seg, "plain": plain, "table": rows,
                                     "dbscan_check": check,
                                     "matrix_mib": matrix_mib, "block_mib": block_mib,
                                     "bound_mib": bound, "rss_above_imports_mib": above}
    if args.only == "dbscan-check":
        table_path = os.path.join(work, "customers.parquet")
        info = write_large_table(args.rows or (42_560 if args.quick else 425_600), table_path,
                                 args.data_path)
        est = {}
        if args.estimates_from:
            est = json.loads(Path(args.estimates_from).read_text())["specs"]["large"]["plain"][
                "estimates"].get("dbscan_settings", {})
        print(f"\n## scikit-learn DBSCAN at full size: {info['rows']:,} customers", flush=True)
        results["dbscan_check"] = {"rows": info["rows"], "fits": dbscan_check(
            table_path, env, work, args.dbscan_check or 900.0, est)}
    load1 = os.getloadavg()
    print(f"\nload average at end: {load1[0]:.2f} {load1[1]:.2f} {load1[2]:.2f}")
    results["load_average_end"] = load1
    return _finish(results, args, work)


def _finish(results: dict, args: argparse.Namespace, work: str) -> int:
    """Write the figures (--json) and remove the work folder unless --keep."""
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=str))
        print(f"wrote {args.json}")
    if not args.keep:
        import shutil

        shutil.rmtree(work, ignore_errors=True)
    return 0


def _median_run(runs: list[dict]) -> dict:
    """The median of each stage and of the wall clock over repeats."""
    out = dict(runs[-1])
    out["wall_s"] = statistics.median(r["wall_s"] for r in runs)
    out["stages"] = {st: statistics.median(r["stages"].get(st, 0.0) for r in runs)
                     for st in runs[0]["stages"]}
    if "import_s" in runs[0]:
        out["import_s"] = statistics.median(r["import_s"] for r in runs)
    out["peak_rss_mib"] = max(r["peak_rss_mib"] for r in runs)
    return out


if __name__ == "__main__":
    sys.exit(main())
