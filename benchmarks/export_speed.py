"""Export of scored customers to PostgreSQL: segmint's export against pandas' DataFrame.to_sql.

    python benchmarks/export_speed.py                         # 50,000 and 500,000 rows
    python benchmarks/export_speed.py --rows 50000 --repeat 5 --json export.json

Starts its own PostgreSQL server on 127.0.0.1 (initdb + pg_ctl from /usr/lib/postgresql/*/bin,
as the ``postgres`` user when run as root, fsync off: the tests' fixture), and stops it after.

The rows are ML.PREDICT's columns (customer, segment, name, distance with 1 in 7 NaN,
nearest_centroids_distance: 4 centroids per customer) plus model_version and scored_at, the same
frame for every contender, each writing the same column types (the list column as jsonb):

- segmint replace: DuckDB writes the CSV (the list column as JSON by to_json), COPY into a
  staging table, primary key, DROP + RENAME in one transaction;
- segmint upsert: into a table holding the first half of the keys (half the rows update, half
  insert): COPY into a TEMP table, INSERT ... ON CONFLICT DO UPDATE;
- pandas to_sql(if_exists="replace"), method=None (executemany) and method="multi" (multi-row
  INSERTs of 5,000 rows), the list column serialized by SQLAlchemy's JSONB type. pandas has no
  upsert, so segmint's upsert is set beside its replace, labelled so.

Each is timed ``--repeat`` times (the 500,000-row to_sql runs once unless asked); the best is
reported. Prints the machine, the command, seconds, rows per second, and the ratios.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from _machine import machine as _machine  # noqa: E402  (benchmarks/_machine.py)

from segmint.deploy.export import export

SCORED_AT = datetime(2026, 12, 1, tzinfo=UTC)


@contextmanager
def postgres_server() -> Iterator[tuple[str, str]]:
    """A throw-away PostgreSQL server, as tests/conftest.py's postgres_url starts it: its
    SQLAlchemy URL and version."""
    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not bins:
        sys.exit("PostgreSQL server binaries are absent (apt-get install postgresql)")
    bindir = Path(bins[-1]).parent
    root = Path(tempfile.mkdtemp(prefix="segmint-bench-pg-"))
    data, sock = root / "data", root / "sock"
    sock.mkdir()
    as_user: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        shutil.chown(sock, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    subprocess.run([*as_user, str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres",
                    "--no-sync"], check=True, capture_output=True)
    subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-w", "-l", str(root / "log"),
                    "-o", f"-p {port} -k {sock} -c listen_addresses=127.0.0.1 -c fsync=off",
                    "start"], check=True, capture_output=True)
    version = subprocess.run([str(bindir / "postgres"), "--version"], capture_output=True,
                             text=True).stdout.strip()
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres", version
    finally:
        subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"],
                       capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def scored(n: int, *, start: int = 0, seed: int = 0, centroids: int = 4) -> pd.DataFrame:
    """``n`` scored customers c{start}..., ML.PREDICT's columns, stamped."""
    rng = np.random.default_rng(seed)
    dist = rng.random((n, centroids))
    segment = dist.argmin(axis=1)
    own = dist[np.arange(n), segment]
    own[::7] = np.nan
    order = np.argsort(dist, axis=1)
    nearest = [[{"centroid_id": int(j), "distance": float(dist[i, j])} for j in order[i]]
               for i in range(n)]
    return pd.DataFrame({
        "customer": pd.array([f"c{start + i}" for i in range(n)], dtype="string"),
        "segment": segment.astype("int64"),
        "name": [f"segment {s}" for s in segment],
        "distance": own,
        "nearest_centroids_distance": nearest,
    })


def best_of(repeat: int, run: Callable[[], Any], prepare: Callable[[], Any] | None = None) -> float:
    times = []
    for _ in range(repeat):
        if prepare is not None:
            prepare()
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def measure(url: str, n: int, repeat: int, peer_repeat: int) -> dict[str, float]:
    import sqlalchemy as sa
    from sqlalchemy.dialects.postgresql import JSONB

    frame = scored(n)
    upsert = scored(n, start=n // 2, seed=1)  # half the keys exist, half are new
    engine = sa.create_engine(url)
    stamped = frame.assign(model_version="v1", scored_at=pd.Timestamp(SCORED_AT))
    types = {"customer": sa.Text(), "segment": sa.BigInteger(), "name": sa.Text(),
             "distance": sa.Double(), "nearest_centroids_distance": JSONB(),
             "model_version": sa.Text(), "scored_at": sa.DateTime(timezone=True)}

    def to_sql(method: str | None) -> Callable[[], Any]:
        return lambda: stamped.to_sql("bench_pandas", engine, if_exists="replace", index=False,
                                      dtype=types, method=method,
                                      chunksize=5_000 if method == "multi" else None)

    out = {
        "segmint replace": best_of(repeat, lambda: export(frame, url, table="bench_segmint",
                                                          model_version="v1", scored_at=SCORED_AT)),
        "segmint upsert": best_of(
            repeat,
            lambda: export(upsert, url, table="bench_upsert", mode="upsert", model_version="v2",
                           scored_at=SCORED_AT),
            prepare=lambda: export(frame.iloc[: n // 2], url, table="bench_upsert",
                                   model_version="v1", scored_at=SCORED_AT)),
        "pandas to_sql (method=None)": best_of(peer_repeat, to_sql(None)),
        "pandas to_sql (method='multi')": best_of(peer_repeat, to_sql("multi")),
    }
    engine.dispose()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[50_000, 500_000])
    parser.add_argument("--repeat", type=int, default=3, help="runs of each, best kept")
    parser.add_argument("--peer-repeat-large", type=int, default=1,
                        help="runs of to_sql at 500,000 rows or more (each takes a while)")
    parser.add_argument("--json", type=Path, help="write the figures here too")
    args = parser.parse_args()

    with postgres_server() as (url, version):
        print(f"machine: {_machine(['pandas', 'pyarrow', 'duckdb', 'psycopg', 'sqlalchemy'], extra=version)}")
        print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}")
        print("PostgreSQL: a fresh local server (fsync=off, defaults otherwise), over TCP on 127.0.0.1")
        results: dict[str, dict[str, float]] = {}
        for n in args.rows:
            peer_repeat = args.repeat if n < 500_000 else args.peer_repeat_large
            results[str(n)] = times = measure(url, n, args.repeat, peer_repeat)
            base = times["pandas to_sql (method=None)"]
            print(f"\n{n:,} scored rows (best of {args.repeat}; to_sql best of {peer_repeat})")
            print(f"  {'':32s} {'seconds':>8s} {'rows/s':>10s} {'to_sql/this':>12s}")
            for name, seconds in times.items():
                print(f"  {name:32s} {seconds:8.2f} {n / seconds:10,.0f} {base / seconds:11.1f}x")
            multi = times["pandas to_sql (method='multi')"]
            print(f"  segmint replace is {base / times['segmint replace']:.1f}x to_sql's default and "
                  f"{multi / times['segmint replace']:.1f}x its method='multi'; segmint upsert (no pandas "
                  f"peer) {base / times['segmint upsert']:.1f}x to_sql's replace")
    if args.json:
        args.json.write_text(json.dumps({"machine": _machine(['pandas', 'pyarrow', 'duckdb', 'psycopg',
                                                              'sqlalchemy']),
                                         "postgres": version, "command": sys.argv,
                                         "seconds": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
