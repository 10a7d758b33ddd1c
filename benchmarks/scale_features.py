"""The transactions recipes at scale: segmint (DuckDB over Parquet files, out of core) against
pandas (read_parquet + groupby), N line items.

Data: the bundled Online Retail (541,909 lines) replicated to N lines: copy j gets customer ids
``CustomerID + 100,000 j`` (missing ids stay missing), invoices ``"j-InvoiceNo"`` and its dates
shifted back by a seeded 0-365 days; one Parquet file per copy (the last one cut to reach N),
written once under ``--data-dir`` (default /tmp/segmint-scale/lines-N/) and reused.

Each (size, feature set, engine) runs in a fresh child process; it reports the wall seconds of
the whole recipe (reading the files included) and its own peak RSS (``ru_maxrss``), so the
figures of the engines do not mix:

* ``segmint``: ``build_customers`` on ``source: {path: "lines-N/*.parquet"}``, which runs the
  feature set's SQL over ``read_parquet`` of the files (``--memory-limit`` and
  ``--temp-directory`` go to ``engine:``); segmint's threads (``SEGMINT_THREADS`` or the cores);
* ``pandas``: ``pd.read_parquet`` of the files (the columns needed), then the same features
  with pandas groupby, single-threaded as pandas is. It is skipped at a size where its peak RSS,
  extrapolated linearly from the largest size it ran, would pass ``--pandas-cap`` (16 GiB);
  the output says so.

At the smallest size both engines' tables are compared (same customers, values within 1e-9
relative). OPENBLAS_* are left as the environment sets them.

    .venv/bin/python benchmarks/scale_features.py --sizes 10M
    .venv/bin/python benchmarks/scale_features.py --sizes 10M,50M,100M --json scale.json
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _machine import machine  # noqa: E402

FEATURES = ("intel21", "insiders", "rfm")
COPY_STRIDE = 100_000  # Online Retail's ids run 12346..18287
GIB = 1024 ** 3


def _size(text: str) -> int:
    text = text.strip().upper()
    scale = {"K": 10**3, "M": 10**6, "G": 10**9}.get(text[-1:], 1)
    return int(float(text.rstrip("KMG")) * scale)


def _label(n: int) -> str:
    return f"{n // 10**6}M" if n % 10**6 == 0 else f"{n:,}"


# --------------------------------------------------------------------------- data

def generate(n: int, data_dir: Path, seed: int) -> Path:
    """lines-N/ under data_dir, written once (a done.json marks it complete)."""
    from importlib import resources

    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    folder = data_dir / f"lines-{n}"
    marker = folder / "done.json"
    if marker.exists() and json.loads(marker.read_text()) == {"lines": n, "seed": seed}:
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.parquet"):
        old.unlink()
    with resources.as_file(resources.files("segmint") / "data" / "online_retail.parquet") as path:
        base = pq.read_table(path, columns=["InvoiceNo", "StockCode", "Quantity", "InvoiceDate",
                                            "UnitPrice", "CustomerID", "Country"])
    rng = np.random.default_rng(seed)
    copies = math.ceil(n / base.num_rows)
    shifts = rng.integers(0, 366, copies)
    written = 0
    for j in range(copies):
        part = base.slice(0, min(base.num_rows, n - written))
        customer = pc.add(part["CustomerID"], float(COPY_STRIDE * j))
        invoice = pc.binary_join_element_wise(pa.scalar(str(j)), part["InvoiceNo"], "-")
        date = pc.subtract(part["InvoiceDate"],
                           pa.scalar(_dt.timedelta(days=int(shifts[j])), pa.duration("us")))
        part = part.set_column(part.schema.get_field_index("CustomerID"), "CustomerID", customer)
        part = part.set_column(part.schema.get_field_index("InvoiceNo"), "InvoiceNo", invoice)
        part = part.set_column(part.schema.get_field_index("InvoiceDate"), "InvoiceDate", date)
        pq.write_table(part, folder / f"part-{j:04d}.parquet")
        written += part.num_rows
    marker.write_text(json.dumps({"lines": n, "seed": seed}))
    return folder


# --------------------------------------------------------------------------- children

def _pandas_features(folder: Path, features: str):
    """The feature set in plain pandas: read_parquet, then groupby (the recipes' definitions,
    see segmint.recipes.transactions)."""
    import numpy as np
    import pandas as pd

    files = sorted(folder.glob("*.parquet"))
    df = pd.read_parquet(files, columns=["CustomerID", "InvoiceNo", "InvoiceDate", "Quantity",
                                         "UnitPrice"])
    df = df[df["CustomerID"].notna()]
    df["customer"] = df["CustomerID"].astype("int64").astype("string")
    df["line_total"] = df["Quantity"] * df["UnitPrice"]
    returns = df["Quantity"] < 0
    if features == "intel21":
        g = df.groupby("customer")
        last = df["InvoiceDate"].max()
        out = pd.DataFrame({"Amount": g["line_total"].mean(),
                            "NumberOfOrders": g["InvoiceNo"].count().astype("float64"),
                            "Recency": (last - g["InvoiceDate"].max()).dt.days.astype("float64")})
        for name in ("day_name", "month_name"):  # the kit's value_counts().unstack()
            what = getattr(df["InvoiceDate"].dt, name)()
            out = out.join(df.groupby(["customer", what]).size().unstack(-1, fill_value=0))
        for col in ["Amount", "Recency", "NumberOfOrders"]:
            q05, q95 = out[col].quantile(0.05), out[col].quantile(0.95)
            span = q95 - q05
            out = out[(out[col] >= q05 - 1.5 * span) & (out[col] <= q95 + 1.5 * span)]
        return out.astype("float64")
    last_day = df["InvoiceDate"].max().normalize()
    buy = df[~returns]
    g = buy.groupby("customer")
    days = g["InvoiceDate"].agg(["min", "max"])
    recency = (last_day - days["max"].dt.normalize()).dt.days.astype("float64")
    if features == "rfm":
        return pd.DataFrame({"recency_days": recency,
                             "frequency": g["InvoiceNo"].nunique().astype("float64"),
                             "monetary": g["line_total"].sum()})
    span = (days["max"].dt.normalize() - days["min"].dt.normalize()).dt.days
    occasions = g["InvoiceNo"].nunique()
    back = df[returns].groupby("customer")["InvoiceNo"].nunique()
    return pd.DataFrame({"gross_revenue": g["line_total"].sum(), "recency_days": recency,
                         "quantity_of_products": g.size().astype("float64"),
                         "returns": back.reindex(recency.index).fillna(0).astype("float64"),
                         "frequency": np.where(span == 0, 0.0, occasions / span.replace(0, 1))})


def _child(engine: str, folder: Path, features: str, out: Path | None, memory_limit: str | None,
           temp_directory: str | None) -> None:
    import pandas  # noqa: F401  (imports are not timed)

    from segmint.recipes import build_customers
    from segmint.spec import RunSpec

    t0 = time.perf_counter()
    if engine == "segmint":
        engine_spec: dict[str, str] = {}
        if memory_limit:
            engine_spec["memory_limit"] = memory_limit
        if temp_directory:
            engine_spec["temp_directory"] = temp_directory
        spec = RunSpec.model_validate({"source": {"path": str(folder / "*.parquet")},
                                       "recipe": {"features": features},
                                       "engine": engine_spec or "local"})
        frame = build_customers(spec).frame
    else:
        frame = _pandas_features(folder, features)
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
    if out is not None:
        frame.to_parquet(out)
    print(json.dumps({"seconds": seconds, "peak_rss": peak, "customers": len(frame)}))


def _run_child(engine: str, folder: Path, features: str, args: argparse.Namespace,
               out: Path | None = None) -> dict:
    command = [sys.executable, __file__, "--child", engine, "--child-folder", str(folder),
               "--child-features", features]
    if out is not None:
        command += ["--child-out", str(out)]
    if args.memory_limit:
        command += ["--memory-limit", args.memory_limit]
    if args.temp_directory:
        command += ["--temp-directory", args.temp_directory]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        return {"error": (done.stderr.strip().splitlines() or ["?"])[-1]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def _compare(mine: Path, peer: Path) -> str:
    import numpy as np
    import pandas as pd

    a, b = pd.read_parquet(mine), pd.read_parquet(peer)
    b.index = b.index.astype("string")
    b = b.reindex(columns=[c for c in a.columns if c in b.columns])
    if sorted(a.index) != sorted(b.index):
        return f"customers differ: segmint {len(a):,}, pandas {len(b):,}"
    b = b.loc[a.index]
    # Differences relative to each column's largest magnitude: a mean of +-x lines that cancel
    # (~1e-15 either side of 0) differs in sign between summation orders, and is no difference.
    scale = np.maximum(np.abs(b.to_numpy()).max(axis=0), 1e-12)
    worst = float(np.max(np.abs(a[b.columns].to_numpy() - b.to_numpy()) / scale))
    verdict = "agree" if worst <= 1e-9 else "DIFFER"
    return (f"{verdict}: {len(a):,} customers, {len(b.columns)} columns, max diff "
            f"{worst:.1e} of the column's largest value")


# --------------------------------------------------------------------------- main

def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="10M,50M,100M", help="line counts, e.g. 10M,50M")
    ap.add_argument("--features", default=",".join(FEATURES))
    ap.add_argument("--data-dir", default="/tmp/segmint-scale")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--memory-limit", default=None, help="engine.memory_limit, e.g. 6GB")
    ap.add_argument("--temp-directory", default=None, help="engine.temp_directory")
    ap.add_argument("--pandas-cap", type=float, default=16.0, help="GiB: pandas skipped above")
    ap.add_argument("--no-pandas", action="store_true")
    ap.add_argument("--json", default=None, help="write the figures here")
    ap.add_argument("--child", choices=["segmint", "pandas"], help=argparse.SUPPRESS)
    ap.add_argument("--child-folder", help=argparse.SUPPRESS)
    ap.add_argument("--child-features", help=argparse.SUPPRESS)
    ap.add_argument("--child-out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        _child(args.child, Path(args.child_folder), args.child_features,
               Path(args.child_out) if args.child_out else None, args.memory_limit,
               args.temp_directory)
        return

    from segmint._threads import threads

    sizes = sorted(_size(s) for s in args.sizes.split(","))
    features = [f.strip() for f in args.features.split(",")]
    print(f"# {' '.join([Path(sys.executable).name, *sys.argv])}")
    print(f"# {_dt.datetime.now(_dt.UTC):%Y-%m-%d %H:%M UTC}")
    print(f"# {machine(['duckdb', 'pandas', 'pyarrow', 'numpy'], threads=threads())}")
    print(f"# OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '')!s} "
          f"OPENBLAS_L2_SIZE={os.environ.get('OPENBLAS_L2_SIZE', '')!s}; engine.memory_limit="
          f"{args.memory_limit or 'default'}, engine.temp_directory={args.temp_directory or 'default'}")
    rows: list[dict] = []
    pandas_rss_per_line: dict[str, float] = {}
    for n in sizes:
        t0 = time.perf_counter()
        folder = generate(n, Path(args.data_dir), args.seed)
        size_mb = sum(f.stat().st_size for f in folder.glob("*.parquet")) / 2**20
        print(f"\n## {_label(n)} lines: {folder} ({size_mb:,.0f} MiB Parquet, "
              f"{len(list(folder.glob('*.parquet')))} files; ready in {time.perf_counter() - t0:.1f} s)")
        print(f"{'features':<9} {'engine':<8} {'seconds':>8} {'lines/s':>12} {'peak RSS':>10} "
              f"{'customers':>10}  pandas/segmint")
        for fs in features:
            compare = n == sizes[0] and not args.no_pandas
            with tempfile.TemporaryDirectory() as tmp:
                mine_out = Path(tmp) / "segmint.parquet" if compare else None
                peer_out = Path(tmp) / "pandas.parquet" if compare else None
                mine = _run_child("segmint", folder, fs, args, mine_out)
                results = {"segmint": mine}
                estimate = pandas_rss_per_line.get(fs, 0.0) * n
                if args.no_pandas:
                    results["pandas"] = {"skipped": "--no-pandas"}
                elif estimate > args.pandas_cap * GIB:
                    results["pandas"] = {"skipped": f"estimated peak RSS {estimate / GIB:.1f} GiB "
                                                    f"> {args.pandas_cap:g} GiB (linear from the "
                                                    f"smaller size)"}
                else:
                    peer = _run_child("pandas", folder, fs, args, peer_out)
                    results["pandas"] = peer
                    if "peak_rss" in peer:
                        pandas_rss_per_line[fs] = peer["peak_rss"] / n
                agreement = _compare(mine_out, peer_out) if compare and "seconds" in \
                    results["pandas"] and "seconds" in mine else None
            for engine, r in results.items():
                row = {"lines": n, "features": fs, "engine": engine, **r}
                if "seconds" in r:
                    row["lines_per_s"] = n / r["seconds"]
                rows.append(row)
                if "seconds" not in r:
                    print(f"{fs:<9} {engine:<8} {r.get('skipped') or r.get('error')}")
                    continue
                ratio = ""
                if engine == "pandas" and "seconds" in mine:
                    ratio = (f"time {r['seconds'] / mine['seconds']:.1f}x, "
                             f"RSS {r['peak_rss'] / mine['peak_rss']:.1f}x")
                print(f"{fs:<9} {engine:<8} {r['seconds']:>8.1f} {n / r['seconds']:>12,.0f} "
                      f"{r['peak_rss'] / GIB:>6.2f} GiB {r['customers']:>10,}  {ratio}")
            if agreement:
                print(f"{'':<9} tables {agreement}")
                rows.append({"lines": n, "features": fs, "agreement": agreement})
    if args.json:
        Path(args.json).write_text(json.dumps({
            "command": sys.argv, "date": f"{_dt.datetime.now(_dt.UTC):%Y-%m-%d %H:%M UTC}",
            "machine": machine(["duckdb", "pandas", "pyarrow", "numpy"], threads=threads()),
            "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
