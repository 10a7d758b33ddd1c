"""The DBSCAN grid's time and peak memory: neighbour graph kept vs streamed.

Intel's DBSCAN grid (eps {0.3, 0.5, 0.7} x min_samples {10, 50, 100}) with
``segmint.cluster._grid.dbscan_grid`` on the intel21 customer table (4,256 x 21,
``benchmarks/intel_grid.py``'s ``intel_table``) replicated with the kit's seeded
jitter (``intel_grid.replicate``, ceil(rows / 4,256) copies, the first ``--rows``
rows kept) and standard-scaled:

* ``graph``: ``graph_budget=inf``, the whole neighbour graph at the largest eps
  kept and labelled in one go (the way every size ran before the budget);
* ``stream``: ``graph_budget=0``, pairs used as their block arrives, nothing
  gathered (what graphs past the default budget, 64 MiB, get);
* ``default``: ``graph_budget=None`` (``--modes`` adds it): the module's budget,
  what the pipeline runs (kept while the graph fits, streamed past it);
* scikit-learn: one ``DBSCAN(eps, min_samples).fit`` per setting at
  ``--sklearn-rows`` (default 42,560; plain DBSCAN at 425,600 rows takes ~4 min
  and up to 7 GiB per fit), beside ``stream`` at that size for the ratio.

    .venv/bin/python benchmarks/dbscan_memory.py --rows 42560
    .venv/bin/python benchmarks/dbscan_memory.py --rows 425600 --json out.json

Every measurement runs in a fresh subprocess: imports, an untimed warm-up on
300 rows (compiled kernels loaded), then VmHWM is read as the baseline, the
matrix is loaded and the grid runs; reported are the wall seconds of the grid
and the peak RSS (VmHWM, ``intel_grid._peak_rss_mib``) above that baseline
(the matrix itself, 425,600 x 21 x 8 B = 68.2 MiB, included) and in all.
Modes alternate between repeats; the median is reported.  Labels and core
samples are compared between the modes, and with scikit-learn's at
``--sklearn-rows``.  OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE are left as the
environment sets them (the output prints them); threads are segmint's default
(``SEGMINT_THREADS`` or the cores this process may use).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
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

from intel_grid import DATA, EPS_LIST, MS_LIST, _peak_rss_mib, intel_table, replicate  # noqa: E402

BUDGETS: dict[str, float | None] = {"graph": float("inf"), "stream": 0.0, "default": None}


def _child(mode, data, out):
    from segmint._threads import threads

    tiny = np.random.default_rng(1).normal(size=(300, 21))
    if mode == "sklearn":
        from sklearn.cluster import DBSCAN

        def run(X):
            fits = {}
            for eps in EPS_LIST:
                for ms in MS_LIST:
                    db = DBSCAN(eps=eps, min_samples=ms).fit(X)
                    fits[(eps, ms)] = (db.labels_, db.core_sample_indices_)
            return fits, {}
    else:
        from segmint.cluster._grid import dbscan_grid

        def run(X):
            res = dbscan_grid(X, EPS_LIST, MS_LIST, graph_budget=BUDGETS[mode])
            fits = {k: (r.labels, r.core_sample_indices) for k, r in res.items()}
            return fits, next(iter(res.values())).extra

    run(tiny)  # untimed: imports, compiled code
    base = _peak_rss_mib()
    X = np.load(data)
    t0 = time.perf_counter()
    fits, extra = run(X)
    seconds = time.perf_counter() - t0
    peak = _peak_rss_mib()
    np.savez(out + ".npz", **{f"labels|{e}|{m}": v[0] for (e, m), v in fits.items()},
             **{f"core|{e}|{m}": v[1] for (e, m), v in fits.items()})
    Path(out + ".json").write_text(json.dumps({
        "seconds": seconds, "peak_rss_mib": peak, "peak_above_imports_mib": peak - base,
        "baseline_mib": base, "threads": threads(), "extra": extra}, default=str))


def _measure(mode, data, tmpdir, tag):
    out = os.path.join(tmpdir, f"{mode}-{tag}")
    cmd = [sys.executable, __file__, "--child", mode, "--data", data, "--out", out]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{mode} failed:\n{proc.stderr[-3000:]}")
    meta = json.loads(Path(out + ".json").read_text())
    with np.load(out + ".npz") as z:
        meta["arrays"] = {k: z[k] for k in z.files}
    return meta


def _same(a, b):
    return a["arrays"].keys() == b["arrays"].keys() and all(
        np.array_equal(a["arrays"][k], b["arrays"][k]) for k in a["arrays"])


def _matrix(table, rows):
    from sklearn.preprocessing import StandardScaler

    r = -(-rows // table.shape[0])
    return StandardScaler().fit_transform(replicate(table, r)[:rows])


def _series(label, modes, rows, table, repeats, tmpdir):
    """Each mode ``repeats`` times at ``rows`` rows, alternating; prints and returns the figures."""
    data = os.path.join(tmpdir, f"X-{rows}.npy")
    np.save(data, _matrix(table, rows))
    print(f"\n## {label}: {rows:,} rows x 21, {len(EPS_LIST) * len(MS_LIST)} settings, "
          f"{repeats} repeat(s)", flush=True)
    runs: dict[str, list] = {m: [] for m in modes}
    for rep in range(repeats):
        for mode in (modes if rep % 2 == 0 else modes[::-1]):
            meta = _measure(mode, data, tmpdir, f"{rows}-{rep}")
            runs[mode].append(meta)
            extra = {k: v for k, v in meta["extra"].items() if k != "streamed"}
            print(f"  {mode:<8} {meta['seconds']:8.2f} s  peak RSS {meta['peak_rss_mib']:7.0f} MiB "
                  f"({meta['peak_above_imports_mib']:6.0f} above imports)  "
                  f"threads {meta['threads']}  {extra}", flush=True)
    out = {"rows": rows, "modes": {}}
    for mode, metas in runs.items():
        out["modes"][mode] = {
            "median_s": statistics.median(m["seconds"] for m in metas),
            "times_s": [m["seconds"] for m in metas],
            "peak_rss_mib": max(m["peak_rss_mib"] for m in metas),
            "peak_above_imports_mib": max(m["peak_above_imports_mib"] for m in metas),
            "extra": metas[-1]["extra"]}
    last = {mode: metas[-1] for mode, metas in runs.items()}
    ref = modes[0]
    for mode in modes[1:]:
        same = _same(last[ref], last[mode])
        out["modes"][mode][f"identical_to_{ref}"] = same
        print(f"  {mode} labels and core samples identical to {ref}'s: {'yes' if same else 'NO'}")
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=425_600, help="rows of the grid (default 425,600)")
    ap.add_argument("--sklearn-rows", type=int, default=42_560,
                    help="rows for scikit-learn's DBSCAN and the ratio (0: skip)")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--modes", default="graph,stream",
                    help="comma-separated, of graph, stream, default (default: graph,stream)")
    ap.add_argument("--json", default=None, help="write the figures to this JSON file")
    ap.add_argument("--data-path", default=str(DATA))
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--data", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        return _child(args.child, args.data, args.out)

    print("# DBSCAN grid: neighbour graph kept vs streamed")
    print("command:", " ".join([Path(sys.executable).name, *sys.argv]))
    print("date:", _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC"))
    print("cores:", len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
          else os.cpu_count())
    print("env:", {k: os.environ.get(k) for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE",
                                                   "SEGMINT_THREADS", "OMP_NUM_THREADS")},
          "(left as set)")
    table, source = intel_table(args.data_path)
    table = table.to_numpy(np.float64)
    print(f"data: {table.shape[0]} customers x {table.shape[1]} from {source}")
    results = {"command": sys.argv, "series": []}
    with tempfile.TemporaryDirectory() as tmpdir:
        results["series"].append(
            _series("segmint", args.modes.split(","), args.rows, table, args.repeats, tmpdir))
        if args.sklearn_rows:
            sk = _series("scikit-learn vs segmint (streamed)", ["sklearn", "stream"],
                         args.sklearn_rows, table, args.repeats, tmpdir)
            ratio = sk["modes"]["sklearn"]["median_s"] / sk["modes"]["stream"]["median_s"]
            sk["sklearn_over_stream"] = ratio
            print(f"  scikit-learn / streamed: {ratio:.1f}x")
            results["series"].append(sk)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=str))
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
