"""A bounded load test of the HTTP service (``segmint serve``) on 127.0.0.1.

    python benchmarks/serve_load.py                                  # 10,000 x 100 rows, 8 at once
    python benchmarks/serve_load.py --requests 2000 --concurrency 4 --json out.json
    python benchmarks/serve_load.py --run runs/online-retail-insiders-20261201-012718

It makes a run of the bundled demo spec in a temporary folder (``segmint.pipeline.demo_spec``,
about 1.5 minutes; or takes ``--run``), publishes its recommended solution with
``ModelStore.publish``, and starts the service (``segmint.deploy.service.serve``) with uvicorn
in a subprocess on a free port of 127.0.0.1, its key in ``SEGMINT_API_KEY``. Then it sends
``--requests`` POST /score requests of ``--rows`` customer rows each (drawn with a fixed seed
from the run's customer table; 64 distinct bodies, cycled) from ``--concurrency`` workers of
one httpx AsyncClient, and stops by itself. Every response is checked: status 200 and as many
scored rows as sent; anything else counts as an error.

It prints: errors, latency p50 / p95 / p99 / max (ms, client side, from sending to the whole
response read), requests/s and rows/s over the whole load, the server's peak RSS (VmHWM) and
its RSS once the model was loaded, the server's log (one JSON line per request: counted, and
searched for the key). The peer, measured in the same invocation just before and just after
the load (their mean is used): the same bodies scored in this process by
``PublishedModel.score`` on one thread, no HTTP, no JSON; the ratio says what the service costs
on top of scoring, or gains from several requests at once. Client and server share the
machine's cores; the load average at start and end says whether anything else did.
"""
from __future__ import annotations

import argparse
import asyncio
import datetime as _dt
import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from _machine import machine as _machine  # benchmarks/_machine.py

DISTINCT_BODIES = 64


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _status_kib(pid: int, field: str) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _bodies(run: Any, rows: int, seed: int = 0) -> list[list[dict[str, Any]]]:
    """``DISTINCT_BODIES`` lists of ``rows`` customer-table rows, drawn with a fixed seed."""
    table = run.customers().reset_index()
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(DISTINCT_BODIES):
        picked = table.iloc[rng.choice(len(table), size=rows, replace=rows > len(table))]
        out.append([{k: (str(v) if k == "customer" else float(v)) for k, v in row.items()}
                    for row in picked.to_dict("records")])
    return out


async def _load(base: str, key: str, bodies: list[bytes], rows: int, requests: int,
                concurrency: int) -> dict[str, Any]:
    import httpx

    latencies = np.full(requests, np.nan)
    errors: list[str] = []
    counter = iter(range(requests))
    headers = {"X-API-Key": key, "Content-Type": "application/json"}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async def worker(client: httpx.AsyncClient) -> None:
        for i in counter:
            t0 = time.perf_counter()
            try:
                response = await client.post("/score", content=bodies[i % len(bodies)],
                                             headers=headers)
                ok = response.status_code == 200 and len(response.json()["rows"]) == rows
                if not ok:
                    errors.append(f"request {i}: status {response.status_code} {response.text[:200]}")
            except Exception as exc:  # a refused or dropped connection is an error, not a crash
                errors.append(f"request {i}: {type(exc).__name__}: {exc}")
            latencies[i] = (time.perf_counter() - t0) * 1000

    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60) as client:
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        wall = time.perf_counter() - t0
    return {"latencies_ms": latencies, "errors": errors, "wall_s": wall}


def _start_server(models: Path, port: int, key: str, log_path: Path) -> subprocess.Popen:
    code = ("import sys; from segmint.deploy.service import serve; "
            "serve(sys.argv[1], host='127.0.0.1', port=int(sys.argv[2]))")
    env = {**os.environ, "SEGMINT_API_KEY": key}
    log = open(log_path, "wb")  # noqa: SIM115  (closed by the caller through proc.stderr's owner)
    return subprocess.Popen([sys.executable, "-c", code, str(models), str(port)], env=env,
                            stdout=log, stderr=subprocess.STDOUT)


def _wait_healthy(base: str, proc: subprocess.Popen, seconds: float = 60) -> None:
    import httpx

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited with code {proc.returncode} before answering")
        try:
            if httpx.get(base + "/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise SystemExit("the server did not answer /health within a minute")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", default=None, help="a run folder (default: run the demo spec)")
    ap.add_argument("--requests", type=int, default=10_000)
    ap.add_argument("--rows", type=int, default=100, help="rows per request")
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--peer-batches", type=int, default=200,
                    help="batches the in-process peer scores (default 200)")
    ap.add_argument("--json", default=None, help="write the figures to this JSON file")
    args = ap.parse_args(argv)

    import segmint
    from segmint.deploy.models import ModelStore

    print("# segmint serve: a bounded load test of POST /score on 127.0.0.1")
    print("command:", " ".join([Path(sys.executable).name, *sys.argv]))
    print("date:", _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC"))
    print(_machine(["segmint", "fastapi", "starlette", "uvicorn", "httpx", "pandas",
                    "scikit-learn"]))
    load0 = os.getloadavg()
    print(f"load average at start: {load0[0]:.2f} {load0[1]:.2f} {load0[2]:.2f}", flush=True)

    with tempfile.TemporaryDirectory(prefix="segmint-serve-load-") as tmp:
        work = Path(tmp)
        if args.run:
            run = segmint.open_run(args.run)
        else:
            t0 = time.perf_counter()
            run = segmint.run(segmint.demo_spec(output=work / "runs"))
            print(f"demo run: {time.perf_counter() - t0:.1f} s, {run.path.name}", flush=True)
        model = ModelStore(work / "models").publish(run)
        print(f"published: {model.name} v{model.version} (solution {model.info['solution']['name']}, "
              f"{len(model.info['segments'])} segments, outliers "
              f"{'flagged' if model.info.get('outliers') else 'none'})")
        rows = _bodies(run, args.rows)
        bodies = [json.dumps({"rows": r}).encode() for r in rows]
        print(f"load: {args.requests:,} requests x {args.rows} rows ({len(bodies)} distinct bodies, "
              f"{np.mean([len(b) for b in bodies]) / 1024:.1f} KiB each), concurrency "
              f"{args.concurrency}", flush=True)

        # the peer: the same batches scored in this process, one thread, no HTTP
        import pandas as pd

        frames = [pd.DataFrame(r) for r in rows]
        model.score(frames[0])  # load the model first, as the server does before listening

        def peer() -> float:
            """Seconds to score ``--peer-batches`` batches in this process."""
            t0 = time.perf_counter()
            for i in range(args.peer_batches):
                model.score(frames[i % len(frames)])
            return time.perf_counter() - t0

        peer_times = [peer()]  # before the load, and again after it (the machine may be shared)

        key = secrets.token_urlsafe(32)
        port = _free_port()
        log_path = work / "server.log"
        proc = _start_server(work / "models", port, key, log_path)
        base = f"http://127.0.0.1:{port}"
        try:
            _wait_healthy(base, proc)
            import httpx

            first = httpx.post(base + "/score", content=bodies[0], timeout=60,
                               headers={"X-API-Key": key, "Content-Type": "application/json"})
            assert first.status_code == 200, first.text
            rss_loaded = _status_kib(proc.pid, "VmRSS")
            result = asyncio.run(_load(base, key, bodies, args.rows, args.requests,
                                       args.concurrency))
            peak = _status_kib(proc.pid, "VmHWM")
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log_text = log_path.read_text(encoding="utf-8", errors="replace")
        peer_times.append(peer())
    peer_s = float(np.mean(peer_times))
    peer_rows_s = args.peer_batches * args.rows / peer_s

    lines = [json.loads(line) for line in log_text.splitlines() if line.startswith("{")]
    scored = [e for e in lines if e.get("path") == "/score"]
    lat = result["latencies_ms"]
    p50, p95, p99 = np.percentile(lat, [50, 95, 99])
    rps = args.requests / result["wall_s"]
    figures = {
        "requests": args.requests, "rows": args.rows, "concurrency": args.concurrency,
        "errors": len(result["errors"]), "wall_s": result["wall_s"],
        "p50_ms": float(p50), "p95_ms": float(p95), "p99_ms": float(p99),
        "max_ms": float(np.max(lat)), "requests_per_s": rps, "rows_per_s": rps * args.rows,
        "server_rss_loaded_mib": None if rss_loaded is None else rss_loaded / 1024,
        "server_peak_rss_mib": None if peak is None else peak / 1024,
        "peer_rows_per_s": peer_rows_s, "peer_batch_ms": peer_s / args.peer_batches * 1000,
        "peer_batch_ms_before_after": [t / args.peer_batches * 1000 for t in peer_times],
        "load_average_start_end": [load0[0], os.getloadavg()[0]],
        "server_log_lines_for_score": len(scored),
        "key_in_server_log": key in log_text,
    }
    print(f"\nerrors: {figures['errors']} of {args.requests:,}")
    for error in result["errors"][:5]:
        print("  ", error)
    print(f"latency (ms): p50 {p50:.1f}, p95 {p95:.1f}, p99 {p99:.1f}, max {figures['max_ms']:.1f}")
    print(f"throughput: {rps:,.1f} requests/s, {rps * args.rows:,.0f} rows/s "
          f"({result['wall_s']:.1f} s in all)")
    if peak is not None and rss_loaded is not None:
        print(f"server RSS: {rss_loaded / 1024:.0f} MiB with the model loaded, peak "
              f"{peak / 1024:.0f} MiB")
    before, after = figures["peer_batch_ms_before_after"]
    print(f"peer (PublishedModel.score in process, one thread, no HTTP): "
          f"{figures['peer_batch_ms']:.1f} ms per {args.rows}-row batch (before the load "
          f"{before:.1f}, after {after:.1f}), {peer_rows_s:,.0f} rows/s; "
          f"service / peer rows/s: {rps * args.rows / peer_rows_s:.2f}x")
    print(f"server log: {len(scored):,} JSON lines for /score (expected {args.requests + 1:,}); "
          f"key in the log: {'YES' if figures['key_in_server_log'] else 'no'}")
    load1 = os.getloadavg()
    print(f"load average at end: {load1[0]:.2f} {load1[1]:.2f} {load1[2]:.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2), encoding="utf-8")
    return 0 if figures["errors"] == 0 and not figures["key_in_server_log"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
