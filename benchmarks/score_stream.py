"""Scoring millions of customers in bounded memory: ``score_file`` streaming vs the whole table.

Issue 14, item 2: "scoring 10 million customers streams in chunks (benchmark: customers/s and
peak RSS)".

    python benchmarks/score_stream.py                                  # 10,000,000 customers
    python benchmarks/score_stream.py --customers 2000000 --peer-customers 500000
    python benchmarks/score_stream.py --chunk-rows 50000,200000 --json out.json
    python benchmarks/score_stream.py --data /tmp/tables       # keep the tables (and reuse them)

Two published models, each made here in seconds and published with ``ModelStore.publish``
into a temporary models folder:

* ``retail``: the bundled Online Retail data (``segmint/data/online_retail.parquet``), the
  Insiders recipe (5 numeric features), k-means k=4 under log scaling, the default
  isolation-forest outliers (200 trees) flagged and scored apart: a numeric preparation plus
  an outlier detector on every customer;
* ``crm``: a mixed-type customer table (the attributes recipe, as ``_crm`` in
  ``tests/deploy/test_published_models.py``: an id column, a numeric column with missing values, a count,
  a categorical column with missing values), standard scaling, k-means k=3, no outliers: the
  recipe's reading, imputation and one-hot encoding on every chunk.

For each model a Parquet customer table of ``--customers`` rows is written once, row group by
row group (``pyarrow.parquet.ParquetWriter``, so generating it holds one group at a time): the
run's customers replicated in order with new ids and seeded noise (each number times
1 + 0.01 N(0, 1); missing values and categories kept). A second table of ``--peer-customers``
rows is written the same way (its rows are the first rows of the large one).

Measured, each in a fresh subprocess whose peak RSS is its VmHWM (``/proc/self/status``):

* ``baseline``: imports segmint and loads the model (``PublishedModel.scorer``), nothing else;
* ``stream``: ``segmint.deploy.score.score_file(model, table, out.parquet, chunk_rows=...)``
  (DuckDB reads the table in chunks; the scores are appended to one Parquet file), at the
  default chunk size (``CHUNK_ROWS``) and each ``--chunk-rows``, at both sizes;
* ``whole`` (the peer): ``pd.read_parquet(table)`` then ``PublishedModel.score(frame)``, the
  non-streaming path, only at ``--peer-customers`` (default 1,000,000), where it fits. It is
  not run, and nothing of it is extrapolated, at ``--customers``.

Each child imports segmint and loads the model before its clock starts; its RSS then is
printed as "at start". Seconds are the wall clock of the call (streaming: reading, scoring and
writing the output; whole: reading the table and scoring it, the frame it returns not written).
Correctness: at the peer's size, the streamed output's customers and segments are asserted
equal, row by row, to the whole-table scoring's (and the distances to within 1e-9).

OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE are left as the environment sets them (the output
prints them); threads are segmint's default (``SEGMINT_THREADS`` or the cores this process may
use), recorded per child.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _machine import machine  # noqa: E402

BUNDLED_PARQUET = Path(str(resources.files("segmint") / "data" / "online_retail.parquet"))
#: rows per generated row group: one group is all the generator holds at a time
GROUP_ROWS = 500_000
NOISE = 0.01
MODELS = ("retail", "crm")


# --------------------------------------------------------------------------
# the two models


def retail_spec() -> dict:
    """Insiders features, k-means k=4, log scaling, outliers as the default (isolation forest)."""
    return {"name": "retail", "recipe": {"features": "insiders"},
            "sweep": {"scalings": ["log"],
                      "algorithms": [{"name": "kmeans", "grid": {"n_clusters": [4]}}]},
            "select": {"stability_resamples": 2, "stability_top": 1},
            "profile": {"projections": [], "explain": False}}


def crm_spec() -> dict:
    return {"name": "crm", "recipe": {"kind": "attributes", "id_column": "Client Ref"},
            "prepare": {"outliers": {"method": "none"}},
            "sweep": {"scalings": ["standard"],
                      "algorithms": [{"name": "kmeans", "grid": {"n_clusters": [3]}}]},
            "select": {"stability_resamples": 2, "stability_top": 1},
            "profile": {"projections": [], "explain": False}}


def crm_table(n: int = 400, seed: int = 0) -> Any:
    """A CRM export (tests/deploy/test_published_models.py's ``_crm``): headers with spaces, mixed types,
    missing values."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    group = rng.integers(0, 3, n)
    frame = pd.DataFrame({
        "Client Ref": [f"C{i:05d}" for i in range(n)],
        "Annual Spend": np.round(rng.lognormal(5 + group, 0.3), 2),
        "Store Visits": rng.poisson(2 + 4 * group).astype(float),
        "Region": np.array(["north", "south", "east"])[group],
    })
    frame.loc[rng.choice(n, 20, replace=False), "Annual Spend"] = np.nan
    frame.loc[rng.choice(n, 20, replace=False), "Region"] = None
    return frame


def publish_models(work: Path, names: list[str]) -> dict[str, dict]:
    """Run each spec, publish its recommended solution; the base table the data replicates."""
    import segmint
    from segmint.deploy.models import ModelStore

    store = ModelStore(work / "models")
    out: dict[str, dict] = {}
    for name in names:
        t0 = time.perf_counter()
        if name == "retail":
            run = segmint.run(BUNDLED_PARQUET, retail_spec(), output=work / "runs")
            base = run.customers().reset_index()  # customer + the 5 features
            id_column, categorical = "customer", []
        else:
            raw = crm_table()
            run = segmint.run(raw, crm_spec(), output=work / "runs")
            base, id_column, categorical = raw, "Client Ref", ["Region"]
        model = store.publish(run)
        out[name] = {"model": str(model.path), "solution": model.info["solution"]["name"],
                     "features": model.features, "types": model.types,
                     "outliers": (model.info.get("outliers") or {}).get("method"),
                     "segments": len(model.info["segments"]), "base": base,
                     "id_column": id_column, "categorical": categorical,
                     "run_seconds": time.perf_counter() - t0}
    return out


# --------------------------------------------------------------------------
# the customer tables


def write_table(path: Path, base: Any, id_column: str, categorical: list[str], n: int,
                seed: int = 0) -> None:
    """``n`` customers: ``base``'s rows replicated in order, new ids, each number times
    1 + 0.01 N(0, 1) (seeded per row group), written one row group at a time."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    numeric = [c for c in base.columns if c not in (id_column, *categorical)]
    values = base[numeric].to_numpy(dtype="float64")
    texts = {c: base[c].astype(object).to_numpy() for c in categorical}
    tmp = path.with_suffix(".partial")
    writer = None
    try:
        for g, start in enumerate(range(0, n, GROUP_ROWS)):
            stop = min(n, start + GROUP_ROWS)
            rows = np.arange(start, stop) % len(base)
            rng = np.random.default_rng([seed, g])
            noisy = values[rows] * (1 + NOISE * rng.standard_normal((stop - start, len(numeric))))
            columns = {id_column: pa.array([f"N{i:09d}" for i in range(start, stop)], pa.string())}
            for c in base.columns:
                if c in numeric:
                    columns[c] = pa.array(noisy[:, numeric.index(c)], pa.float64(),
                                          from_pandas=True)
                elif c in categorical:
                    columns[c] = pa.array(texts[c][rows], pa.string(), from_pandas=True)
            table = pa.table(columns)
            if writer is None:
                writer = pq.ParquetWriter(tmp, table.schema)
            writer.write_table(table)
    finally:
        if writer is not None:
            writer.close()
    tmp.replace(path)


def ensure_table(path: Path, info: dict, n: int) -> str:
    """Write the table unless a kept one (``--data``) already holds ``n`` rows."""
    import pyarrow.parquet as pq

    if path.is_file() and pq.ParquetFile(path).metadata.num_rows == n:
        return "kept"
    t0 = time.perf_counter()
    write_table(path, info["base"], info["id_column"], info["categorical"], n)
    return f"written in {time.perf_counter() - t0:.1f} s"


# --------------------------------------------------------------------------
# children


def _peak_rss_mib() -> float:
    """This process's peak resident memory (VmHWM), MiB."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(args: argparse.Namespace) -> int:
    t0 = time.perf_counter()
    import pandas as pd

    import segmint  # noqa: F401
    from segmint._threads import threads
    from segmint.deploy.models import PublishedModel
    from segmint.deploy.score import score_file

    model = PublishedModel(args.model)
    model.scorer  # noqa: B018  (loads the fitted model: part of the baseline)
    load_s = time.perf_counter() - t0
    at_start = _peak_rss_mib()
    meta: dict[str, Any] = {"mode": args.child, "load_s": load_s, "start_rss_mib": at_start,
                            "threads": threads()}
    if args.child == "stream":
        t0 = time.perf_counter()
        result = score_file(model, args.table, args.out, chunk_rows=args.chunk)
        meta["seconds"] = time.perf_counter() - t0
        meta["customers"] = result.customers
        meta["sizes"] = {str(k): v for k, v in result.sizes.items()}
        meta["peak_rss_mib"] = _peak_rss_mib()
    elif args.child == "whole":
        t0 = time.perf_counter()
        frame = pd.read_parquet(args.table)
        scored = model.score(frame)
        meta["seconds"] = time.perf_counter() - t0
        meta["peak_rss_mib"] = _peak_rss_mib()  # before the check's file below
        meta["customers"] = len(scored)
        counts = scored["segment"].value_counts().sort_index()
        meta["sizes"] = {str(k): int(v) for k, v in counts.items()}
        scored[["customer", "segment", "distance"]].to_parquet(args.out, index=False)
    else:
        meta["peak_rss_mib"] = at_start
    Path(args.out + ".json").write_text(json.dumps(meta))
    return 0


def measure(mode: str, model: str, table: str, out: str, chunk: int = 0) -> dict:
    cmd = [sys.executable, __file__, "--child", mode, "--model", model, "--table", table,
           "--out", out, "--chunk", str(chunk)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{mode} failed:\n{proc.stderr[-3000:]}")
    meta = json.loads(Path(out + ".json").read_text())
    meta["process_s"] = time.perf_counter() - t0
    meta["load_1min"] = os.getloadavg()[0]  # other work on the machine shows here
    if "seconds" in meta:
        meta["customers_per_s"] = meta["customers"] / meta["seconds"]
    return meta


def check_equal(streamed: str, whole: str) -> dict:
    """The streamed output's customers, segments and distances vs the whole-table scoring's."""
    import pandas as pd

    a = pd.read_parquet(streamed, columns=["customer", "segment", "distance"])
    b = pd.read_parquet(whole)
    same_customers = bool((a["customer"].astype(str).to_numpy()
                           == b["customer"].astype(str).to_numpy()).all()) and len(a) == len(b)
    same_segments = bool(np.array_equal(a["segment"].to_numpy(), b["segment"].to_numpy()))
    da, db = a["distance"].to_numpy(float), b["distance"].to_numpy(float)
    both = ~np.isnan(da) & ~np.isnan(db)
    return {"rows": len(a), "same_customers": same_customers, "same_segments": same_segments,
            "same_nan_distances": bool(np.array_equal(np.isnan(da), np.isnan(db))),
            "max_abs_distance_diff": float(np.abs(da[both] - db[both]).max()) if both.any()
            else 0.0}


# --------------------------------------------------------------------------
# the comparison


def _line(label: str, m: dict) -> str:
    return (f"  {label:<34} {m['customers']:>11,} customers {m['seconds']:8.2f} s "
            f"{m['customers_per_s']:>10,.0f} customers/s  peak RSS {m['peak_rss_mib']:6.0f} MiB "
            f"(at start {m['start_rss_mib']:4.0f}, +{m['peak_rss_mib'] - m['start_rss_mib']:5.0f}); "
            f"load {m['load_1min']:.1f}")


def bench_model(name: str, info: dict, tables: dict[int, str], n: int, peer_n: int,
                chunks: list[int], work: Path) -> dict:
    model = info["model"]
    features = ", ".join(f"{f} ({info['types'][f]})" for f in info["features"])
    print(f"\n## {name}: {info['solution']} ({info['segments']} segments; features "
          f"{features}; outliers "
          f"{info['outliers'] or 'none'})", flush=True)
    outs = work / "out"
    outs.mkdir(exist_ok=True)
    base = measure("baseline", model, tables[n], str(outs / f"{name}-baseline"))
    print(f"  baseline (import segmint, load the model): {base['load_s']:.2f} s, "
          f"peak RSS {base['peak_rss_mib']:.0f} MiB, threads {base['threads']}", flush=True)
    res: dict[str, Any] = {"baseline": base, "stream": {}, "whole": None}
    whole = None
    if peer_n:
        whole = measure("whole", model, tables[peer_n], str(outs / f"{name}-whole.parquet"))
        print(_line(f"whole table at once, {peer_n:,}", whole), flush=True)
        res["whole"] = whole
    sizes = [s for s in dict.fromkeys([peer_n, n]) if s]
    for size in sizes:
        for chunk in chunks:
            out = str(outs / f"{name}-stream-{size}-{chunk}.parquet")
            m = measure("stream", model, tables[size], out, chunk)
            res["stream"][f"{size}/{chunk}"] = m
            print(_line(f"score_file, chunk_rows {chunk:,}", m), flush=True)
            if size == peer_n and whole is not None:
                check = check_equal(out, str(outs / f"{name}-whole.parquet"))
                m["check"] = check
                ok = check["same_customers"] and check["same_segments"] \
                    and check["same_nan_distances"] and check["max_abs_distance_diff"] <= 1e-9
                print(f"    check vs whole table ({check['rows']:,} customers): customers and "
                      f"segments equal row by row: {check['same_customers'] and check['same_segments']}"
                      f"; distances max |diff| {check['max_abs_distance_diff']:.1e}: "
                      f"{'PASS' if ok else 'FAIL'}", flush=True)
                assert ok, f"{name}: streamed scores differ from the whole table's: {check}"
                assert m["sizes"] == whole["sizes"], (m["sizes"], whole["sizes"])
            if size != peer_n:
                Path(out).unlink(missing_ok=True)  # hundreds of MB at 10M
    default = chunks[0]
    big = res["stream"][f"{n}/{default}"]
    print(f"  ratios (chunk_rows {default:,}):")
    if whole is not None:
        same = res["stream"][f"{peer_n}/{default}"]
        res["ratios"] = {
            "same_size_speed": same["customers_per_s"] / whole["customers_per_s"],
            "same_size_peak": same["peak_rss_mib"] / whole["peak_rss_mib"],
            "large_stream_vs_peer_whole_speed": big["customers_per_s"] / whole["customers_per_s"],
            "large_stream_vs_peer_whole_peak": big["peak_rss_mib"] / whole["peak_rss_mib"]}
        r = res["ratios"]
        print(f"    both at {peer_n:,}: streaming / whole table: customers/s "
              f"{r['same_size_speed']:.2f}x, peak RSS {r['same_size_peak']:.2f}x")
        if n != peer_n:
            print(f"    streaming at {n:,} / whole table at {peer_n:,} (the peer was not run at "
                  f"{n:,}; nothing extrapolated): customers/s {r['large_stream_vs_peer_whole_speed']:.2f}x, "
                  f"peak RSS {r['large_stream_vs_peer_whole_peak']:.2f}x")
    if n != peer_n and peer_n:
        small = res["stream"][f"{peer_n}/{default}"]
        grow = (big["peak_rss_mib"] - big["start_rss_mib"]) - \
            (small["peak_rss_mib"] - small["start_rss_mib"])
        res["stream_growth_mib"] = grow
        print(f"    streaming peak RSS above its start: {small['peak_rss_mib'] - small['start_rss_mib']:.0f} "
              f"MiB at {peer_n:,}, {big['peak_rss_mib'] - big['start_rss_mib']:.0f} MiB at {n:,} "
              f"({n / peer_n:.0f}x the customers: {grow:+.0f} MiB, "
              f"{grow * 2**20 / (n - peer_n):.0f} B per extra customer)")
    print(f"    streaming peak RSS over the baseline process (import + model): "
          f"{big['peak_rss_mib'] / base['peak_rss_mib']:.2f}x at {n:,}")
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--customers", type=int, default=10_000_000,
                    help="customers streamed (default 10,000,000)")
    ap.add_argument("--peer-customers", type=int, default=1_000_000,
                    help="customers scored whole by the peer, and streamed for the check "
                         "(default 1,000,000; 0 skips the peer)")
    ap.add_argument("--chunk-rows", default=None,
                    help="comma-separated chunk sizes besides the default (CHUNK_ROWS)")
    ap.add_argument("--models", default=",".join(MODELS), help="of retail, crm (default both)")
    ap.add_argument("--data", default=None, help="keep the work folder (tables, models) here")
    ap.add_argument("--json", default=None, help="write the figures to this JSON file")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--model", help=argparse.SUPPRESS)
    ap.add_argument("--table", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    ap.add_argument("--chunk", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        return child(args)

    from segmint._threads import threads
    from segmint.deploy.score import CHUNK_ROWS

    n, peer_n = args.customers, args.peer_customers
    if n < 1 or peer_n < 0 or peer_n > n:
        ap.error("need --customers >= 1 and 0 <= --peer-customers <= --customers")
    chunks = [CHUNK_ROWS] + [int(c) for c in (args.chunk_rows or "").split(",")
                             if c and int(c) != CHUNK_ROWS]
    names = [m for m in args.models.split(",") if m]
    if not set(names) <= set(MODELS):
        ap.error(f"--models: of {MODELS}")

    print("# Scoring in bounded memory: score_file streaming vs the whole table at once")
    print("command:", " ".join([Path(sys.executable).name, *sys.argv]))
    print("date:", _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC"))
    line = machine(["segmint", "numpy", "pandas", "pyarrow", "duckdb", "scikit-learn"],
                   threads=threads())
    print("machine:", line)
    env = {k: os.environ.get(k) for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE",
                                          "SEGMINT_THREADS", "OMP_NUM_THREADS")}
    print("env:", env, "(OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE left as the environment sets them)")
    load0 = os.getloadavg()
    print(f"load average at start: {load0[0]:.2f} {load0[1]:.2f} {load0[2]:.2f}")
    print(f"customers streamed: {n:,}; peer (whole table at once) at {peer_n:,} only"
          if peer_n else f"customers streamed: {n:,}; peer skipped (--peer-customers 0)")
    print(f"chunk_rows: {', '.join(f'{c:,}' for c in chunks)} (default CHUNK_ROWS {CHUNK_ROWS:,})")

    work = Path(args.data) if args.data else Path(tempfile.mkdtemp(prefix="segmint-score-"))
    work.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {"command": sys.argv, "machine": line, "env": env, "customers": n,
                               "peer_customers": peer_n, "chunk_rows": chunks, "models": {}}
    try:
        t0 = time.perf_counter()
        infos = publish_models(work, names)
        print(f"models made and published in {time.perf_counter() - t0:.1f} s: " + ", ".join(
            f"{k} ({v['solution']}, from {len(v['base']):,} customers)" for k, v in infos.items()))
        for name, info in infos.items():
            tables = {}
            for size in dict.fromkeys([peer_n, n]):
                if not size:
                    continue
                path = work / f"{name}-{size}.parquet"
                how = ensure_table(path, info, size)
                tables[size] = str(path)
                print(f"table {path.name}: {size:,} customers, "
                      f"{path.stat().st_size / 2**20:.0f} MiB on disk ({how})", flush=True)
            res = bench_model(name, info, tables, n, peer_n, chunks, work)
            res["info"] = {k: v for k, v in info.items() if k != "base"}
            results["models"][name] = res
    finally:
        if not args.data:
            shutil.rmtree(work, ignore_errors=True)
    load1 = os.getloadavg()
    print(f"\nload average at end: {load1[0]:.2f} {load1[1]:.2f} {load1[2]:.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=str))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
