"""The report of a large run: segmint's sampled page vs plotly's page of every customer.

    python benchmarks/report_scale.py                        # 500,000 customers
    python benchmarks/report_scale.py --customers 50000
    python benchmarks/report_scale.py --keep /tmp/report-scale --json out.json

The run folder is synthetic: ``--customers`` customers (6 numeric features and a
categorical channel), written without clustering as the run writer writes a real run
(leaderboard of k-means-like solutions k=2..8 from planted centres, profiles, labels, the
prepared matrix, a PCA projection of every customer). It mirrors the ``large_run`` fixture of
``tests/report/test_report_browser.py`` (copied here so the script stands alone; the test
takes the profile's column dtypes and the manifest's versions from real runs, this script
writes the dtypes those runs have and this environment's versions).

Measured, in one invocation:

* ``segmint``: ``segmint.report.build_report(folder)`` (reads the folder, samples what it
  plots: each projection at most ``MAX_POINTS`` customers, the silhouette plot at most
  ``SILHOUETTE_ROWS``, whose silhouettes it computes; the whole page: header, leaderboard,
  elbow, profile heatmap, ...), min and median of ``--repeats`` builds; the page's size.
* the peer: the page a user gets without sampling, from the same folder: the same two kinds
  of figure, the PCA scatter of ALL customers (``segmint.report._figures.projection_figure``,
  the report's own figure, fed every point) and the silhouette plot
  (``silhouette_figure``), written by plotly's own ``to_html`` (what ``fig.write_html``
  writes; plotly.js inlined once, one div per figure, nothing else on the page). The
  silhouette of every customer is O(N^2) (``sklearn.metrics.silhouette_samples``), so the
  peer's silhouette plot is of a stratified sample of ``--peer-silhouette`` customers
  (default 20,000; the same sampler as the report's), and the output says so. Its build time
  is reading the folder's files, the silhouettes, the figures and the HTML, each printed.
* Loading, each page in headless Chromium (Debian's ``/usr/bin/chromium`` through
  Playwright's sync API; never ``playwright install``), a fresh browser context per load:
  seconds from ``goto`` until every plotly div is drawn (plotly's ``.main-svg`` and
  ``_fullLayout`` present), median of ``--repeats`` loads; the page's JS heap when drawn (CDP
  ``Performance.getMetrics`` ``JSHeapUsedSize``, which counts plotly.js itself). A load is
  given ``--timeout`` seconds (default 120) and reported as "did not finish" beyond; the
  peer's load is repeated only when its first took under 30 s (the run stays near 5
  minutes). The time plotly.js alone takes to load in the same browser is printed as a floor.

Ratios are peer / segmint (above 1: the peer is bigger or slower). The two pages do not hold
the same things: segmint's has many more figures and tables, the peer's only the two
figures; the comparison is what plotting every customer costs against sampling them.

OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE are left as the environment sets them (printed).
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _machine import machine  # noqa: E402

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
VIEWPORT = {"width": 1280, "height": 900}
#: the peer's load is repeated only when its first load took less than this
REPEAT_BELOW_SECONDS = 30.0

# Every plotly div has become a plot (as tests/report/test_report_browser.py's _ALL_DRAWN).
_ALL_DRAWN = """() => Array.from(document.querySelectorAll('.plotly-graph-div')).every(
    d => d.classList.contains('js-plotly-plot') && d.querySelector('.main-svg') !== null
         && d._fullLayout !== undefined)"""
# Points in each figure's traces (x's length, plain array or plotly's typed-array spec).
_POINTS = """() => {
  const sizes = {i1: 1, u1: 1, i2: 2, u2: 2, i4: 4, u4: 4, f4: 4, f8: 8};
  const length = v => v === undefined || v === null ? 0 : v.length !== undefined ? v.length
      : v.bdata !== undefined ? atob(v.bdata).length / sizes[v.dtype] : 0;
  return Array.from(document.querySelectorAll('.js-plotly-plot')).map(
      d => (d.data || []).reduce((sum, t) => sum + length(t.x !== undefined ? t.x : t.values), 0));
}"""


# --------------------------------------------------------------------------
# the synthetic run folder (mirrors tests/report/test_report_browser.py's large_run fixture)

NUMERIC = ("recency_days", "frequency", "revenue", "basket_size", "tenure_days", "returns")
CHANNEL_LEVELS = ("web", "store", "phone", "marketplace")
TYPES = {**{f: "numeric" for f in NUMERIC}, "channel": "categorical"}
KS = range(2, 9)
RECOMMENDED_K = 5
_TEXT = pd.StringDtype(na_value=np.nan)  # what a real run's profile holds its text in


def _profile(customers: pd.DataFrame, labels: np.ndarray) -> pd.DataFrame:
    """A solution's profile with pandas, in the columns and dtypes of a real run's profile."""
    frame = customers.assign(segment=labels)
    groups = frame.groupby("segment", sort=True)
    profile = pd.DataFrame({"segment": groups.size().index.astype(np.int64)})
    profile["size"] = groups.size().to_numpy().astype(np.int64)
    profile["share"] = profile["size"] / len(frame)
    spend = groups["revenue"].sum().to_numpy()
    profile["revenue_share"] = spend / spend.sum()
    means = groups[list(NUMERIC)].mean()
    medians = groups[list(NUMERIC)].median()
    top_revenue = int(means["revenue"].idxmax())
    profile["insiders"] = profile["segment"] == top_revenue
    profile["name"] = [f"segment {s}" + (" (top spenders)" if s == top_revenue else "")
                       for s in profile["segment"]]
    profile["description"] = [f"{n:,} customers ({share:.1%})"
                              for n, share in zip(profile["size"], profile["share"], strict=True)]
    for feature in NUMERIC:
        profile[f"mean_{feature}"] = means[feature].to_numpy()
        profile[f"median_{feature}"] = medians[feature].to_numpy()
        profile[f"lift_{feature}"] = means[feature].to_numpy() / frame[feature].mean()
    counts = pd.crosstab(frame["segment"], frame["channel"])
    overall = frame["channel"].value_counts(normalize=True)
    top = counts.idxmax(axis=1)
    profile["top_channel"] = top.to_numpy()
    profile["topshare_channel"] = (counts.max(axis=1) / counts.sum(axis=1)).to_numpy()
    profile["lift_channel"] = profile["topshare_channel"] / overall.reindex(top).to_numpy()
    order = ["segment", "name", "description", "size", "share", "revenue_share", "insiders"]
    order += [f"{p}_{f}" for f in NUMERIC for p in ("mean", "median", "lift")]
    order += [f"{p}_channel" for p in ("top", "topshare", "lift")]
    texts = {"name": _TEXT, "description": _TEXT, "top_channel": _TEXT}
    return profile[order].astype(texts)


def write_run(parent: Path, n: int) -> Path:
    """A run folder of ``n`` customers, written without clustering: planted segments give the
    labels of k-means-like solutions k=2..8 (each customer to the nearest of the first k
    planted centres), their metrics computed with scikit-learn, in a real run's file formats."""
    import yaml
    from sklearn.metrics import calinski_harabasz_score, davies_bouldin_score, silhouette_score

    from segmint.cluster.leaderboard import column_names
    from segmint.runs import _layout as L
    from segmint.runs._write import _versions
    from segmint.spec import RunSpec

    folder = parent / f"synthetic-{n}-20261201-000000"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(15)
    centres = rng.normal(0.0, 3.0, size=(max(KS), len(NUMERIC)))
    planted = rng.integers(0, max(KS), size=n)
    raw = centres[planted] + rng.normal(size=(n, len(NUMERIC)))
    customers = pd.DataFrame({
        "customer": pd.array([f"C{i:07d}" for i in range(n)], dtype="string"),
        "recency_days": np.round(np.exp(3.5 + 0.4 * raw[:, 0])),
        "frequency": np.round(np.exp(1.0 + 0.3 * raw[:, 1])),
        "revenue": np.round(np.exp(5.0 + 0.4 * raw[:, 2]), 2),
        "basket_size": np.round(np.exp(2.0 + 0.2 * raw[:, 3]), 1),
        "tenure_days": np.round(np.abs(400 + 60 * raw[:, 4])),
        "returns": np.floor(np.exp(0.3 * raw[:, 5])),
        "channel": pd.array(np.array(CHANNEL_LEVELS)[(planted + rng.integers(0, 2, size=n)) % 4],
                            dtype="string"),
    })
    numeric = customers[list(NUMERIC)].to_numpy(dtype=np.float64)
    scaled = (numeric - numeric.mean(axis=0)) / numeric.std(axis=0)
    onehot = np.stack([(customers["channel"] == level).to_numpy(dtype=np.float64)
                       for level in CHANNEL_LEVELS], axis=1)
    X = np.hstack([scaled, onehot])
    prepared_columns = [*NUMERIC, *(f"channel_{level}" for level in CHANNEL_LEVELS)]

    rows, labels = [], {"customer": customers["customer"]}
    sample = rng.choice(n, size=min(n, 2_000), replace=False)
    for k in KS:
        name = f"kmeans_k{k}"
        means = np.stack([X[planted == c].mean(axis=0) for c in range(k)])
        distances = np.stack([((X - m) ** 2).sum(axis=1) for m in means], axis=1)
        segment = distances.argmin(axis=1).astype(np.int64)
        labels[name] = segment
        sizes = np.bincount(segment, minlength=k)
        centroids = np.stack([X[segment == s].mean(axis=0) for s in range(k)])
        inertia = float(((X - centroids[segment]) ** 2).sum())
        davies = davies_bouldin_score(X, segment)
        calinski = calinski_harabasz_score(X, segment)
        silhouette = silhouette_score(X[sample], segment[sample])
        rows.append({
            "solution": name, "algorithm": "kmeans", "representation": "standard",
            "params": json.dumps({"n_clusters": k}),
            "description": f"k-means, {k} segments, standard scaling", "k": float(k),
            "n_clusters": k, "sizes": " ".join(f"{s}:{c}" for s, c in enumerate(sizes)),
            "noise_share": 0.0, "min_cluster_share": sizes.min() / n, "inertia": inertia,
            "mean_squared_distance": inertia / n, "davies_bouldin": davies,
            "calinski_harabasz": calinski, "silhouette": silhouette,
            "silhouette_sample": len(sample), "common_davies_bouldin": davies,
            "common_calinski_harabasz": calinski, "common_silhouette": silhouette,
            "bic": math.nan, "fit_seconds": 0.0, "eligible": True,
            "at_knee": k == RECOMMENDED_K, "rank": 0, "recommended": k == RECOMMENDED_K})
        where = L.solution_dir(folder, name)
        where.mkdir(parents=True)
        _profile(customers.drop(columns="customer"), segment).to_parquet(where / L.PROFILE,
                                                                         index=False)
        metrics = {"name": name, "algorithm": "kmeans", "representation": "standard",
                   "params": {"n_clusters": k}, "description": rows[-1]["description"],
                   "features": list(TYPES), "prepared_columns": prepared_columns,
                   "fit_seconds": 0.0, "model_sha256": None, "scorable": False,
                   "preparation": None, "preparation_sha256": None, "n_clusters": k,
                   "davies_bouldin": davies, "silhouette": silhouette}
        (where / L.METRICS).write_text(json.dumps(metrics, indent=2), encoding="utf-8")
    board = pd.DataFrame(rows)
    board["rank"] = board["davies_bouldin"].rank(method="first").astype("Int64")
    assert list(board.columns) == column_names()  # the leaderboard schema, in its order
    board.to_csv(folder / L.LEADERBOARD, index=False)

    recommended = f"kmeans_k{RECOMMENDED_K}"
    customers.to_parquet(folder / L.CUSTOMERS, index=False)
    pd.DataFrame(labels).to_parquet(folder / L.ALL_LABELS, index=False)
    prepared = pd.DataFrame(X, columns=prepared_columns)
    prepared.insert(0, "customer", customers["customer"])
    prepared.to_parquet(folder / L.PREPARED, index=False)

    # PCA of the prepared matrix, every customer projected (the report must sample them)
    centred = X - X.mean(axis=0)
    eigenvalues, eigenvectors = np.linalg.eigh(np.cov(centred, rowvar=False))
    order = np.argsort(eigenvalues)[::-1][:2]
    coords = (centred @ eigenvectors[:, order]).astype(np.float32)
    explained = (eigenvalues[order] / eigenvalues.sum()).tolist()
    pd.DataFrame({"projection": np.zeros(n, dtype=np.int16), "segment": labels[recommended],
                  "x": coords[:, 0], "y": coords[:, 1],
                  "z": np.full(n, np.nan, dtype=np.float32)}).to_parquet(
        folder / L.PROJECTIONS, index=False)

    spec = RunSpec.model_validate({
        "name": "synthetic", "recipe": {"kind": "attributes", "revenue": "revenue"},
        "sweep": {"algorithms": [{"name": "kmeans", "grid": {"n_clusters": list(KS)}}]},
        "profile": {"projections": ["pca"], "explain": False}, "output": str(folder.parent)})
    (folder / L.SPEC).write_text(yaml.safe_dump(spec.model_dump(mode="json"), sort_keys=False),
                                 encoding="utf-8")
    manifest = {
        "format_version": L.FORMAT_VERSION, "run_id": folder.name, "name": "synthetic",
        "created": "2026-12-01T00:00:00+00:00", "versions": _versions(),
        "input": {"file": "synthetic.parquet", "rows": n, "format": "parquet"},
        "lines": n, "customers": n, "outliers": None, "recipe": "attributes",
        "features": list(TYPES), "types": TYPES, "revenue": "revenue",
        "notes": [], "schema": None, "prepared_columns": {"standard": prepared_columns},
        "solutions": len(KS), "recommended": recommended,
        "reasons": [f"Davies-Bouldin "
                    f"{board.set_index('solution').loc[recommended, 'davies_bouldin']:.3f}"],
        "knee": {"kmeans|standard": RECOMMENDED_K}, "chosen_knee": RECOMMENDED_K,
        "projections": [{"method": "pca", "heading": "PCA of the standard space "
                         f"({len(prepared_columns)} prepared columns)",
                         "note": f"PCA of the {len(prepared_columns)} prepared columns: 2 "
                         f"components explain {sum(explained):.1%} of the variance",
                         "explained": explained, "n_components": 2}],
        "prepared_representation": "standard", "timings_seconds": {},
    }
    (folder / L.MANIFEST).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return folder


# --------------------------------------------------------------------------
# the two pages


def build_segmint(folder: Path, out: Path, repeats: int) -> dict[str, Any]:
    from segmint.report import build_report

    seconds = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        page = build_report(folder)
        seconds.append(time.perf_counter() - t0)
    out.write_text(page, encoding="utf-8")
    return {"seconds": seconds, "min_s": min(seconds), "median_s": statistics.median(seconds),
            "bytes": out.stat().st_size}


def build_peer(folder: Path, out: Path, silhouette_rows: int) -> dict[str, Any]:
    """Every customer of the projection in one scatter, the silhouettes of a stratified sample
    of ``silhouette_rows``, both figures on one page by plotly's ``to_html``."""
    import plotly.io as pio
    from sklearn.metrics import silhouette_samples

    from segmint.prepare.projections import Projection
    from segmint.report._build import _stratified
    from segmint.report._figures import projection_figure, silhouette_figure
    from segmint.runs import _layout as L

    parts: dict[str, float] = {}
    t0 = time.perf_counter()
    manifest = json.loads((folder / L.MANIFEST).read_text(encoding="utf-8"))
    meta = manifest["projections"][0]
    points = pd.read_parquet(folder / L.PROJECTIONS)
    points = points[points["projection"] == 0]
    prepared = pd.read_parquet(folder / L.PREPARED)
    labels = pd.read_parquet(folder / L.ALL_LABELS, columns=["customer", manifest["recommended"]])
    segment = labels.set_index("customer")[manifest["recommended"]].reindex(
        prepared["customer"]).to_numpy(dtype=np.int64)
    X = prepared.drop(columns="customer").to_numpy(dtype=np.float64)
    parts["read"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    keep = _stratified(segment, silhouette_rows, 0)
    values = silhouette_samples(X[keep], segment[keep])
    parts["silhouette"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    coords = points[["x", "y"]].to_numpy(dtype=np.float64)
    projection = Projection("pca", coords, np.arange(len(coords)), meta["explained"], meta["note"])
    figures = [projection_figure(projection, points["segment"].to_numpy(dtype=np.int64),
                                 title=meta["heading"]),
               silhouette_figure(values, segment[keep])]
    parts["figures"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    divs = [pio.to_html(figure, full_html=False, include_plotlyjs=(i == 0))
            for i, figure in enumerate(figures)]
    out.write_text("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"></head><body>\n"
                   + "\n".join(divs) + "\n</body></html>\n", encoding="utf-8")
    parts["html"] = time.perf_counter() - t0
    return {"seconds": sum(parts.values()), "parts": parts, "bytes": out.stat().st_size,
            "projection_points": len(coords), "silhouette_points": len(keep)}


# --------------------------------------------------------------------------
# loading in Chromium


def load_once(browser: Any, page_path: Path, timeout_s: float) -> dict[str, Any]:
    """One load in a fresh context: seconds from goto to every figure drawn, or None when it
    did not finish within ``timeout_s``; the JS heap when drawn."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    context = browser.new_context(viewport=VIEWPORT)
    errors: list[str] = []
    try:
        tab = context.new_page()
        tab.on("pageerror", lambda error: errors.append(str(error)))
        start = time.perf_counter()
        try:
            tab.goto(page_path.as_uri(), wait_until="load", timeout=timeout_s * 1000)
            left = max(1.0, timeout_s - (time.perf_counter() - start))
            tab.wait_for_function(_ALL_DRAWN, timeout=left * 1000)
        except PlaywrightTimeout:
            return {"seconds": None, "waited_s": time.perf_counter() - start, "errors": errors}
        seconds = time.perf_counter() - start
        heap = None
        try:
            cdp = context.new_cdp_session(tab)
            cdp.send("Performance.enable")
            metrics = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
            heap = metrics.get("JSHeapUsedSize")
        except Exception:  # CDP unavailable: fall back to Chromium's performance.memory
            heap = tab.evaluate("() => performance.memory ? performance.memory.usedJSHeapSize "
                                ": null")
        return {"seconds": seconds, "heap_bytes": heap, "points": tab.evaluate(_POINTS),
                "errors": errors}
    finally:
        context.close()


def load_page(browser: Any, page_path: Path, repeats: int, timeout_s: float,
              repeat_below: float = math.inf) -> dict[str, Any]:
    loads = [load_once(browser, page_path, timeout_s)]
    while len(loads) < repeats and loads[-1]["seconds"] is not None \
            and loads[0]["seconds"] < repeat_below:
        loads.append(load_once(browser, page_path, timeout_s))
    done = [x["seconds"] for x in loads if x["seconds"] is not None]
    heaps = [x["heap_bytes"] for x in loads if x.get("heap_bytes")]
    return {"loads": loads, "seconds": [x["seconds"] for x in loads],
            "median_s": statistics.median(done) if len(done) == len(loads) else None,
            "heap_bytes": statistics.median(heaps) if heaps else None,
            "points": loads[0].get("points"), "errors": sorted({e for x in loads
                                                                for e in x["errors"]})}


def plotly_alone(browser: Any, work: Path) -> float | None:
    from plotly.offline import get_plotlyjs

    floor = work / "plotly-alone.html"
    floor.write_text(f"<!DOCTYPE html><html><head><script>{get_plotlyjs()}</script></head>"
                     "<body><p>plotly.js alone</p></body></html>", encoding="utf-8")
    return load_once(browser, floor, 60)["seconds"]


# --------------------------------------------------------------------------
# the comparison


def _s(value: float | None) -> str:
    return "did not finish" if value is None else f"{value:.2f}"


def _ratio(peer: float | None, ours: float | None, timeout_s: float) -> str:
    if ours is None:
        return "n/a"
    if peer is None:
        return f"> {timeout_s / ours:.0f}x"
    return f"{peer / ours:.1f}x"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--customers", type=int, default=500_000,
                    help="customers in the synthetic run folder (default 500,000)")
    ap.add_argument("--repeats", type=int, default=3,
                    help="builds of segmint's page, and loads of each page (default 3)")
    ap.add_argument("--timeout", type=float, default=120.0,
                    help="seconds a load may take before it counts as not finished (default 120)")
    ap.add_argument("--peer-silhouette", type=int, default=20_000,
                    help="customers in the peer's silhouette plot (default 20,000)")
    ap.add_argument("--keep", default=None, help="write the run folder and pages here, and keep them")
    ap.add_argument("--json", default=None, help="write the figures to this JSON file")
    args = ap.parse_args(argv)
    n = args.customers
    if n < 1_000:
        ap.error("--customers: at least 1,000")

    from playwright.sync_api import sync_playwright

    from segmint.report._build import MAX_POINTS, SILHOUETTE_ROWS

    print("# The report at scale: segmint's sampled page vs plotly's page of every customer")
    print("command:", " ".join([Path(sys.executable).name, *sys.argv]))
    print("date:", _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC"))
    print("machine:", machine(["segmint", "plotly", "playwright", "pandas", "scikit-learn"],
                              extra=f"browser {CHROMIUM} (headless, --disable-gpu)"))
    env = {k: os.environ.get(k) for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
    print("env:", env, "(left as the environment sets them)")
    load0 = os.getloadavg()
    print(f"load average at start: {load0[0]:.2f} {load0[1]:.2f} {load0[2]:.2f}", flush=True)
    if not CHROMIUM.exists():
        print(f"{CHROMIUM} is absent (apt-get install -y chromium)")
        return 1

    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="segmint-report-"))
    work.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {"command": sys.argv, "customers": n}
    try:
        t0 = time.perf_counter()
        folder = write_run(work / "runs", n)
        print(f"synthetic run folder: {n:,} customers, written in {time.perf_counter() - t0:.1f} s",
              flush=True)
        ours = build_segmint(folder, work / "segmint.html", args.repeats)
        print(f"segmint build_report: {', '.join(f'{s:.2f}' for s in ours['seconds'])} s; "
              f"{ours['bytes'] / 1e6:.2f} MB", flush=True)
        peer = build_peer(folder, work / "peer.html", args.peer_silhouette)
        parts = peer["parts"]
        print(f"peer build: {peer['seconds']:.2f} s (read {parts['read']:.2f}, silhouettes of "
              f"{peer['silhouette_points']:,} {parts['silhouette']:.2f}, figures "
              f"{parts['figures']:.2f}, to_html + write {parts['html']:.2f}); "
              f"{peer['bytes'] / 1e6:.2f} MB", flush=True)

        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            try:
                floor = plotly_alone(browser, work)
                print(f"plotly.js alone: {_s(floor)} s", flush=True)
                ours_load = load_page(browser, work / "segmint.html", args.repeats, args.timeout)
                print(f"segmint loads: {', '.join(_s(s) for s in ours_load['seconds'])} s; "
                      f"points per figure {ours_load['points']}", flush=True)
                peer_load = load_page(browser, work / "peer.html", args.repeats, args.timeout,
                                      repeat_below=REPEAT_BELOW_SECONDS)
                print(f"peer loads: {', '.join(_s(s) for s in peer_load['seconds'])} s; points "
                      f"per figure {peer_load['points']}", flush=True)
            finally:
                browser.close()
        for name, loaded in (("segmint", ours_load), ("peer", peer_load)):
            if loaded["errors"]:
                print(f"{name} page errors: {loaded['errors'][:3]}")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    from plotly.offline import get_plotlyjs

    mb = 1e6
    plotly_bytes = len(get_plotlyjs().encode("utf-8"))

    def heap(x: float | None) -> float | None:
        return None if x is None else x / 2**20

    no_sil = peer["seconds"] - peer["parts"]["silhouette"]
    rows = [
        ("build s (segmint: min / median)", f"{ours['min_s']:.2f} / {ours['median_s']:.2f}",
         f"{peer['seconds']:.2f}", f"{peer['seconds'] / ours['median_s']:.1f}x"),
        ("  peer without its silhouettes", "", f"{no_sil:.2f}",
         f"{no_sil / ours['median_s']:.1f}x"),
        ("page MB", f"{ours['bytes'] / mb:.2f}", f"{peer['bytes'] / mb:.2f}",
         f"{peer['bytes'] / ours['bytes']:.1f}x"),
        ("load s, goto to drawn (median)", _s(ours_load["median_s"]), _s(peer_load["median_s"]),
         _ratio(peer_load["median_s"], ours_load["median_s"], args.timeout)),
        ("JS heap MiB when drawn", _s(heap(ours_load["heap_bytes"])),
         "n/a" if peer_load["heap_bytes"] is None else _s(heap(peer_load["heap_bytes"])),
         "n/a" if peer_load["heap_bytes"] is None or ours_load["heap_bytes"] is None
         else f"{peer_load['heap_bytes'] / ours_load['heap_bytes']:.1f}x"),
    ]
    print(f"\n## {n:,} customers (ratios: peer / segmint)")
    print(f"  {'':<33} {'segmint':>15} {'peer':>15} {'ratio':>8}")
    for label, a, b, r in rows:
        print(f"  {label:<33} {a:>15} {b:>15} {r:>8}")
    print(f"  sampled: segmint draws at most {MAX_POINTS:,} points per projection and "
          f"{SILHOUETTE_ROWS:,} silhouettes (seeded samples); the peer draws all {n:,} "
          f"projected customers and the silhouettes of a stratified sample of "
          f"{peer['silhouette_points']:,} (every customer's would be O(N^2)).")
    print(f"  plotly.js, inlined in both pages: {plotly_bytes / mb:.2f} MB; the rest: segmint "
          f"{(ours['bytes'] - plotly_bytes) / mb:.2f} MB, peer "
          f"{(peer['bytes'] - plotly_bytes) / mb:.2f} MB. plotly.js alone loads in {_s(floor)} s.")
    print(f"  peer load repeats: {len(peer_load['seconds'])} (repeated only under "
          f"{REPEAT_BELOW_SECONDS:.0f} s); timeout {args.timeout:.0f} s.")
    load1 = os.getloadavg()
    print(f"load average at end: {load1[0]:.2f} {load1[1]:.2f} {load1[2]:.2f}")
    results.update({"segmint": {**ours, "load": ours_load}, "peer": {**peer, "load": peer_load},
                    "plotly_alone_s": floor, "load_average": [load0[0], load1[0]]})
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=str), encoding="utf-8")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
