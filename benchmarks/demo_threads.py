"""The demo run at 1 thread and at 2 (or any counts), stage by stage: issue 13's thread target
(the whole run 1.7x faster from 1 to 2 threads) and its demo target (under 5 s).

    python benchmarks/demo_threads.py                 # 3 alternating pairs of 1 and 2 threads
    python benchmarks/demo_threads.py --pairs 5 --threads 1 4 --json out.json

Each run is a fresh subprocess (``segmint.run(demo_spec(tmp), threads=n)``); it reports the
seconds of its imports, the wall of the ``segmint.run`` call and the manifest's stage timings.
That wall includes what a fresh process pays once inside the run: the libraries a stage
imports when it first needs them (scikit-learn and SciPy with the spec's algorithms, skops
with the first model file, LightGBM, plotly) and numba loading its cached kernels. With
``--warm`` each child first runs the demo once, untimed, so the timed run shows the run's own
work (what a second run in the same process, a notebook or a service, waits for).
Counts alternate so that load from elsewhere falls on both alike; the summary is the median per
count and the ratio of the medians. At 2 threads or more the explanation runs while the
solutions are written, so explain and write overlap (their sum exceeds their wall). The
OpenBLAS variables the environment sets are left as they are (the run's own setting).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import machine  # noqa: E402


def machine_line() -> str:
    return machine(["numpy", "scikit-learn", "pandas", "duckdb", "lightgbm", "segmint"])

CHILD = r"""
import json, sys, tempfile, time
t0 = time.perf_counter()
import segmint
from segmint.pipeline import demo_spec
imported = time.perf_counter() - t0
if sys.argv[3] == "warm":
    with tempfile.TemporaryDirectory() as first:
        segmint.run(demo_spec(first), threads=int(sys.argv[1]))
t = time.perf_counter()
run = segmint.run(demo_spec(sys.argv[2]), threads=int(sys.argv[1]))
wall = time.perf_counter() - t
print(json.dumps({"import_s": imported, "wall_s": wall, "stages": run.manifest["timings_seconds"],
                  "recommended": run.recommended}))
"""


def one_run(threads: int, warm: bool = False) -> dict:
    with tempfile.TemporaryDirectory(prefix="segmint-threads-") as folder:
        out = subprocess.run([sys.executable, "-c", CHILD, str(threads), folder,
                              "warm" if warm else "cold"],
                             capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=3, help="rounds of every thread count")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--json", type=Path, help="write the figures to this JSON file")
    parser.add_argument("--warm", action="store_true",
                        help="time a second run in each process (imports and kernels loaded)")
    args = parser.parse_args()
    print("# segmint demo at", ", ".join(map(str, args.threads)), "threads,",
          "second run in each process (--warm)" if args.warm else "first run in a fresh process")
    print(machine_line())
    print("load average at start:", " ".join(f"{x:.2f}" for x in os.getloadavg()))
    runs: dict[int, list[dict]] = {n: [] for n in args.threads}
    for _ in range(args.pairs):
        for n in args.threads:
            r = one_run(n, args.warm)
            runs[n].append(r)
            stages = " ".join(f"{k} {v:.2f}" for k, v in r["stages"].items())
            print(f"threads {n}: wall {r['wall_s']:.2f} s (imports {r['import_s']:.2f}); {stages}")
    medians = {n: statistics.median(r["wall_s"] for r in rs) for n, rs in runs.items()}
    base = medians[args.threads[0]]
    for n, m in medians.items():
        print(f"median wall at {n} thread(s): {m:.2f} s; {base / m:.2f}x the {args.threads[0]}-thread run")
    same = {r["recommended"] for rs in runs.values() for r in rs}
    print("recommended:", ", ".join(sorted(same)), "(the same at every count)" if len(same) == 1 else
          "(DIFFERS between counts)")
    print("load average at end:", " ".join(f"{x:.2f}" for x in os.getloadavg()))
    if args.json:
        args.json.write_text(json.dumps({"machine": machine_line(), "warm": args.warm, "runs": runs,
                                         "median_wall_s": medians}, indent=1))


if __name__ == "__main__":
    main()
