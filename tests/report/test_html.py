"""The self-contained HTML report, checked as text and in a real headless Chromium.

The leaderboard, profile and stability tables are built here from real fits (scikit-learn
KMeans, MiniBatchKMeans, DBSCAN and a Gaussian mixture on make_blobs), so the numbers on the
page are the kind a run produces.
"""
from __future__ import annotations

import hashlib
import json
import math
import re
import struct
from pathlib import Path
from time import perf_counter

import numpy as np
import pandas as pd
import pytest
import sklearn
from kneed import KneeLocator
from sklearn.cluster import DBSCAN, KMeans, MiniBatchKMeans
from sklearn.datasets import make_blobs
from sklearn.metrics import (
    adjusted_rand_score,
    calinski_harabasz_score,
    davies_bouldin_score,
    silhouette_score,
)
from sklearn.mixture import GaussianMixture
from sklearn.preprocessing import StandardScaler

from segmint.errors import InputError
from segmint.report import render_report
from segmint.report._html import _format_float

CHROMIUM = Path("/usr/bin/chromium")
KS = range(2, 7)
# (algorithm, scaling, tol): three elbow lines of five points each; NaN tol as a sweep
# leaves it for algorithms without one.
ELBOW_LINES = [("kmeans", "none", 1e-4), ("kmeans", "standard", 1e-4),
               ("minibatch_kmeans", "standard", math.nan)]
SEGMENT_NAMES = ['Big <spenders> & "friends"', "Loyal regulars", "Occasional buyers",
                 "Drifting away", "One-timers", "Dormant"]
FEATURES = ("recency_days", "frequency", "monetary")


def _metrics(X: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    kept = labels >= 0  # DBSCAN marks noise -1; metrics are over the clustered points
    n_clusters = len(np.unique(labels[kept]))
    sizes = np.bincount(labels[kept])
    row = {"n_clusters": n_clusters, "noise_share": float(1 - kept.mean()),
           "min_cluster_share": float(sizes.min() / len(labels)),
           "davies_bouldin": math.nan, "calinski_harabasz": math.nan,
           "silhouette": math.nan, "silhouette_sample": math.nan}
    if n_clusters >= 2:
        row.update(
            davies_bouldin=davies_bouldin_score(X[kept], labels[kept]),
            calinski_harabasz=calinski_harabasz_score(X[kept], labels[kept]),
            silhouette=silhouette_score(X[kept], labels[kept]),
            silhouette_sample=silhouette_score(X[kept], labels[kept], sample_size=100,
                                               random_state=0),
        )
    return row


@pytest.fixture(scope="module")
def run() -> dict:
    """A small real sweep: leaderboard, knee, stability and the recommended profile."""
    X, _ = make_blobs(n_samples=300, centers=4, cluster_std=2.0, random_state=7)
    scaled = {"none": X, "standard": StandardScaler().fit_transform(X)}
    rows, models = [], {}
    for algorithm, scaling, tol in ELBOW_LINES:
        for k in KS:
            start = perf_counter()
            if algorithm == "kmeans":
                model = KMeans(n_clusters=k, tol=tol, n_init=4, random_state=0)
            else:
                model = MiniBatchKMeans(n_clusters=k, n_init=3, batch_size=128, random_state=0)
            model.fit(scaled[scaling])
            name = f"{algorithm}-{scaling}-k{k}"
            models[name] = (model, scaling)
            rows.append({"solution": name, "algorithm": algorithm, "scaling": scaling,
                         "params": json.dumps({"n_clusters": k}), "tol": tol,
                         "mean_squared_distance": model.inertia_ / len(X),
                         "bic": math.nan, "fit_seconds": perf_counter() - start,
                         **_metrics(scaled[scaling], model.labels_)})
    start = perf_counter()
    dbscan = DBSCAN(eps=0.2, min_samples=5).fit(scaled["standard"])
    rows.append({"solution": "dbscan-standard-eps0.2", "algorithm": "dbscan",
                 "scaling": "standard", "params": json.dumps({"eps": 0.2, "min_samples": 5}),
                 "tol": math.nan, "mean_squared_distance": math.nan, "bic": math.nan,
                 "fit_seconds": perf_counter() - start,
                 **_metrics(scaled["standard"], dbscan.labels_)})
    start = perf_counter()
    mixture = GaussianMixture(n_components=4, random_state=0).fit(scaled["standard"])
    rows.append({"solution": "gmm-standard-k4", "algorithm": "gmm", "scaling": "standard",
                 "params": json.dumps({"n_components": 4}), "tol": math.nan,
                 "mean_squared_distance": math.nan, "bic": mixture.bic(scaled["standard"]),
                 "fit_seconds": perf_counter() - start,
                 **_metrics(scaled["standard"], mixture.predict(scaled["standard"]))})
    leaderboard = pd.DataFrame(rows)
    leaderboard["rank"] = leaderboard["silhouette"].rank(ascending=False, method="first")
    leaderboard = leaderboard.sort_values("rank", na_position="last").reset_index(drop=True)
    # The profile below needs k-means labels: recommend the best-ranked k-means fit.
    kmeans_names = [name for name in leaderboard["solution"] if name in models]
    recommended = kmeans_names[0]

    line = leaderboard[(leaderboard["algorithm"] == "kmeans")
                       & (leaderboard["scaling"] == "standard")].sort_values("n_clusters")
    knee = KneeLocator(line["n_clusters"], line["mean_squared_distance"], curve="convex",
                       direction="decreasing").knee
    assert knee is not None

    stability_rows = []
    rng = np.random.default_rng(0)
    for name in kmeans_names[:3]:
        model, scaling = models[name]
        data = scaled[scaling]
        scores = []
        for _ in range(5):
            picked = rng.choice(len(data), size=int(0.8 * len(data)), replace=False)
            refit = KMeans(n_clusters=model.n_clusters, n_init=4, random_state=0).fit(data[picked])
            scores.append(adjusted_rand_score(model.labels_, refit.predict(data)))
        stability_rows.append({"solution": name, "stability_ari_mean": float(np.mean(scores)),
                               "stability_ari_std": float(np.std(scores)), "resamples": 5})

    model, _ = models[recommended]
    labels = model.labels_
    customers = pd.DataFrame({
        "recency_days": np.round(np.abs(X[:, 1]) * 20 + 3),
        "frequency": np.round(np.abs(X[:, 0]) + 1),
        "monetary": 40.0 * (X[:, 0] - X[:, 0].min() + 1) ** 2,
    })
    customers["segment"] = labels
    means = customers.groupby("segment").mean()
    by_value = means["monetary"].sort_values(ascending=False).index
    profile = pd.DataFrame({"segment": by_value})
    profile["name"] = [SEGMENT_NAMES[i] for i in range(len(by_value))]
    counts = customers["segment"].value_counts()
    revenue = customers.groupby("segment")["monetary"].sum()
    profile["size"] = profile["segment"].map(counts).astype(int)
    profile["share"] = profile["size"] / len(customers)
    profile["revenue_share"] = profile["segment"].map(revenue) / revenue.sum()
    profile["insiders"] = profile.index == 0
    for feature in FEATURES:
        profile[f"mean_{feature}"] = profile["segment"].map(means[feature])
        profile[f"median_{feature}"] = profile["segment"].map(
            customers.groupby("segment")[feature].median())
        profile[f"lift_{feature}"] = profile[f"mean_{feature}"] / customers[feature].mean()

    manifest = {
        "run_id": "20240501-120000-blobs",
        "created": "2024-05-01T12:00:00+00:00",
        "input": {"file": "customers.csv", "rows": len(X),
                  "sha256": hashlib.sha256(X.tobytes()).hexdigest()},
        "versions": {"segmint": "0.1.0", "sklearn": sklearn.__version__,
                     "pandas": pd.__version__},
        "recommended": recommended,
        "knee": {"k": int(knee)},
    }
    best = leaderboard.set_index("solution").loc[recommended]
    reasons = [f"highest silhouette of the k-means fits ({best['silhouette']:.3f})",
               "smallest segment above 5 % of customers"]
    return {"leaderboard": leaderboard, "profile": profile,
            "stability": pd.DataFrame(stability_rows),
            "manifest": manifest, "recommended": recommended, "reasons": reasons}


@pytest.fixture(scope="module")
def page(run: dict) -> str:
    return render_report(title="Blobs & <friends> run", manifest=run["manifest"],
                         leaderboard=run["leaderboard"], profile=run["profile"],
                         recommended=run["recommended"], reasons=run["reasons"],
                         stability=run["stability"])


def _table(page: str, table_id: str) -> str:
    match = re.search(rf'<table[^>]*id="{table_id}".*?</table>', page, flags=re.S)
    assert match, f"no table {table_id}"
    return match.group(0)


def _markup(page: str) -> str:
    """The page without the bodies of its scripts (plotly.js mentions map tile URLs)."""
    return re.sub(r"(<script\b[^>]*>).*?(</script>)", r"\1\2", page, flags=re.S | re.I)


# ---------------------------------------------------------------- as text


def test_page_points_at_nothing_outside_itself(page: str) -> None:
    markup = _markup(page)
    references = re.findall(r"<(?:script|link|img|iframe|source|embed|object|audio|video)\b"
                            r"[^>]*?\b(?:src|href|data)\s*=\s*[\"']?([^\"'\s>]*)", markup,
                            flags=re.I)
    external = [ref for ref in references if re.match(r"(?:https?:)?//", ref, flags=re.I)]
    assert external == []
    assert "<script src" not in markup.lower() and "<link" not in markup.lower()
    assert not re.search(r"url\(\s*['\"]?(?:https?:)?//|@import", markup, flags=re.I)


def test_plotly_is_inlined_once(page: str) -> None:
    from plotly.offline import get_plotlyjs

    assert page.count(get_plotlyjs()[:200]) == 1
    # one call per figure: the two elbow plots and the profile heatmap
    assert page.count("Plotly.newPlot(") == page.count('class="plotly-graph-div"') == 3
    assert 'id="profile-heatmap"' in page


def test_header_shows_the_manifest(page: str, run: dict) -> None:
    manifest = run["manifest"]
    header = page.split("</header>")[0]
    assert "<title>Blobs &amp; &lt;friends&gt; run</title>" in page
    for text in (manifest["run_id"], manifest["created"], manifest["input"]["file"],
                 manifest["input"]["sha256"], sklearn.__version__, "300"):
        assert text in header


def test_recommended_solution_and_reasons_are_shown(page: str, run: dict) -> None:
    assert f'<p class="pick" id="recommended-solution">{run["recommended"]}</p>' in page
    for reason in run["reasons"]:
        assert f"<li>{reason}</li>" in page
    leaderboard = _table(page, "leaderboard")
    highlighted = re.findall(r'<tr class="recommended">(.*?)</tr>', leaderboard, flags=re.S)
    assert len(highlighted) == 1 and f">{run['recommended']}<" in highlighted[0]


def test_leaderboard_lists_every_solution_with_dashes_for_nan(page: str, run: dict) -> None:
    leaderboard = _table(page, "leaderboard")
    assert leaderboard.count("<tr") == len(run["leaderboard"]) + 1  # plus the heading row
    dbscan = re.search(r"<tr>(?:(?!</tr>).)*dbscan-standard-eps0\.2.*?</tr>", leaderboard,
                       flags=re.S).group(0)
    # DBSCAN has no mean squared distance and no BIC.
    assert dbscan.count(">—<") == 2
    assert not re.search(r">\s*nan\s*<", leaderboard, flags=re.I)
    # The silhouette of the best row, to four significant digits.
    best = run["leaderboard"].set_index("solution").loc[run["recommended"], "silhouette"]
    assert f">{_format_float(best)}<" in leaderboard and len(_format_float(best)) == 6


def test_stability_table(page: str, run: dict) -> None:
    stability = _table(page, "stability")
    assert stability.count("<tr") == len(run["stability"]) + 1
    for name in run["stability"]["solution"]:
        assert f">{name}<" in stability
    assert stability.count('<tr class="recommended">') == 1


def test_profile_reads_for_a_marketing_manager(page: str, run: dict) -> None:
    profile = run["profile"]
    section = re.search(r'<section id="profile">.*?</section>', page, flags=re.S).group(0)
    assert section.count('<span class="badge">Insiders</span>') == int(profile["insiders"].sum())
    for row in profile.itertuples():
        if row.name != SEGMENT_NAMES[0]:
            assert f"<strong>{row.name}</strong>" in section
        assert f"{row.share * 100:.1f}%" in section
        assert f"{row.revenue_share * 100:.1f}%" in section
        assert f">{row.size:,}<" in section
    top = profile.iloc[0]
    mean, lift = top["mean_monetary"], top["lift_monetary"]
    assert f"{mean:,.1f}</span> <span class=\"lift hi\">(×{lift:.1f})" in section


def test_text_is_escaped(page: str) -> None:
    assert "Big &lt;spenders&gt; &amp; &quot;friends&quot;" in page
    assert "<spenders>" not in page


@pytest.mark.parametrize(("value", "text"), [
    (12345.678, "12,350"), (0.0123456, "0.01235"), (1.0, "1"), (0.5, "0.5"),
    (-3.14159, "-3.142"), (2.5e-7, "2.5e-07"), (math.nan, "—"), (0.0, "0"),
])
def test_floats_show_four_significant_digits(value: float, text: str) -> None:
    assert _format_float(value) == text


def test_a_leaderboard_without_solution_names_is_refused() -> None:
    with pytest.raises(InputError, match="solution"):
        render_report(title="t", manifest={}, leaderboard=pd.DataFrame({"algorithm": ["kmeans"]}),
                      profile=None, recommended=None, reasons=[])


def test_no_kmeans_rows_means_no_plots_and_no_plotly() -> None:
    leaderboard = pd.DataFrame({"solution": ["dbscan-a"], "algorithm": ["dbscan"],
                                "n_clusters": [3], "silhouette": [0.41]})
    page = render_report(title="t", manifest={}, leaderboard=leaderboard, profile=None,
                         recommended=None, reasons=["no solution met the minimum share"])
    assert "No k-means solutions in this run." in page
    assert "Plotly.newPlot" not in page and len(page) < 50_000
    assert "No solution recommended" in page


# ---------------------------------------------------------------- in Chromium

LOCAL_SCHEMES = ("file:", "data:", "about:", "blob:")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def _png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", header[16:24])


def test_report_renders_offline_in_chromium(page: str, run: dict, tmp_path: Path) -> None:
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="the playwright package is not installed "
        "(pip install playwright; the browser is Debian's chromium, never `playwright install`)")
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is absent (apt-get install -y chromium)")
    report = tmp_path / "report.html"
    report.write_text(page, encoding="utf-8")

    external: list[str] = []
    page_errors: list[str] = []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 900})

            def guard(route) -> None:
                if route.request.url.startswith(LOCAL_SCHEMES):
                    route.continue_()
                else:
                    external.append(route.request.url)
                    route.abort()

            context.route("**/*", guard)
            tab = context.new_page()
            tab.on("pageerror", lambda error: page_errors.append(str(error)))
            tab.on("request", lambda request: None if request.url.startswith(LOCAL_SCHEMES)
                   else external.append(request.url))
            tab.goto(report.as_uri(), wait_until="load")
            tab.wait_for_function(
                "document.querySelectorAll('.js-plotly-plot .main-svg').length >= 2",
                timeout=30_000)

            points = tab.evaluate("id => document.getElementById(id).data.map(t => t.x.length)",
                                  "elbow-msd")
            assert points == [len(KS)] * len(ELBOW_LINES)
            drawn = tab.locator("#elbow-msd .scatterlayer path.point").count()
            assert drawn == len(KS) * len(ELBOW_LINES)
            db_points = tab.evaluate("id => document.getElementById(id).data.map(t => t.x.length)",
                                     "elbow-davies-bouldin")
            assert db_points == [len(KS)] * len(ELBOW_LINES)
            knee = tab.evaluate("() => document.getElementById('elbow-msd').layout.shapes[0].x0")
            assert knee == run["manifest"]["knee"]["k"]

            rows = tab.locator("#leaderboard tbody tr")
            assert rows.count() == len(run["leaderboard"])
            assert tab.locator("#leaderboard tbody tr.recommended").count() == 1

            # A click on a heading sorts the rows by it, blanks last.
            headings = tab.locator("#leaderboard thead th").all_inner_texts()
            column = headings.index("silhouette")
            tab.locator("#leaderboard thead th").nth(column).click()
            values = tab.evaluate(
                "col => Array.from(document.querySelectorAll('#leaderboard tbody tr'))"
                ".map(r => r.cells[col].getAttribute('data-v'))", column)
            numbers = [float(v) for v in values if v]
            assert numbers == sorted(numbers) and values[len(numbers):] == [""] * (
                len(values) - len(numbers))

            screenshot = tmp_path / "report.png"
            tab.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()

    assert external == []
    assert page_errors == []
    width, height = _png_size(screenshot)
    assert width == 1280 and height > 1500
    assert screenshot.stat().st_size > 50_000


def test_lift_colours_know_which_direction_is_good() -> None:
    profile = pd.DataFrame({
        "segment": [0, 1], "name": ["lapsed", "loyal"], "size": [50, 50], "share": [0.5, 0.5],
        "mean_recency_days": [300.0, 10.0], "lift_recency_days": [1.9, 0.1],
        "mean_monetary": [20.0, 900.0], "lift_monetary": [0.1, 1.9],
        "mean_age": [60.0, 30.0], "lift_age": [1.3, 0.7],
        "top_job": ["retired", "student"], "topshare_job": [0.9, 0.8], "lift_job": [3.0, 2.5]})
    page = render_report(title="t", manifest={}, leaderboard=pd.DataFrame({"solution": ["s"]}),
                         profile=profile, recommended="s", reasons=[])
    section = re.search(r'<section id="profile">.*?</section>', page, flags=re.S).group(0)
    # a long recency is bad (red), a short one good (green); high spend good, low spend bad
    assert '<span class="lift lo">(×1.9)</span>' in section.split("lapsed")[1].split("loyal")[0]
    rows = section.split("<tr>")[2:]
    lapsed, loyal = rows[0], rows[1]
    assert 'class="lift lo">(×1.9)' in lapsed and 'class="lift lo">(×0.1)' in lapsed
    assert 'class="lift hi">(×0.1)' in loyal and 'class="lift hi">(×1.9)' in loyal
    # age and a job level have no good direction: high or low only
    assert 'class="lift up">(×1.3)' in lapsed and 'class="lift down">(×0.7)' in loyal
    assert 'class="lift up">(×3.0)' in lapsed


def test_stability_per_segment_of_the_recommended_solution(run: dict) -> None:
    """The recommended solution's segments with their clusterboot Jaccard and verdict, named
    as in the profile (escaped); other candidates' segments are left out; no table given, no
    section."""
    recommended = run["recommended"]
    other = next(name for name in run["stability"]["solution"] if name != recommended)
    profile = run["profile"]
    ids = profile["segment"].tolist()[:3]  # the first is named 'Big <spenders> & "friends"'
    segments = pd.DataFrame({
        "solution": [recommended] * 3 + [other],
        "segment": [*ids, 0], "size": [120, 95, 85, 300],
        "jaccard_mean": [0.9812, 0.6634, 0.4127, 0.99],
        "jaccard_min": [0.95, 0.52, 0.21, 0.98], "resamples": [10, 10, 9, 10],
        "verdict": ["stable", "doubtful", "not to be trusted", "stable"]})
    stability = run["stability"].assign(stability_jaccard_mean=0.6858)
    page = render_report(title="Blobs", manifest=run["manifest"], leaderboard=run["leaderboard"],
                         profile=profile, recommended=recommended, reasons=run["reasons"],
                         stability=stability, segment_stability=segments)
    table = _table(page, "segment-stability")
    body = table.split("<tbody>")[1]
    rows = re.findall(r"<tr>(.*?)</tr>", body, flags=re.S)
    assert len(rows) == 3  # the recommended solution's three segments, not the other's
    cells = [re.findall(r"<td[^>]*>(.*?)</td>", row) for row in rows]
    assert cells[2] == [str(ids[2]), profile["name"].iloc[2], "85", "0.4127", "0.21", "9",
                        "not to be trusted"]
    assert cells[0][1] == "Big &lt;spenders&gt; &amp; &quot;friends&quot;"
    assert [c[-1] for c in cells] == ["stable", "doubtful", "not to be trusted"]
    assert ">300<" not in table and ">0.99<" not in table
    assert "<h2>Stability per segment</h2>" in page
    assert page.index("<h2>Stability</h2>") < page.index("<h2>Stability per segment</h2>")
    # the solution-level mean Jaccard is a column of the stability table
    assert ">stability jaccard mean<" in _table(page, "stability")
    assert ">0.6858<" in _table(page, "stability")
    plain = render_report(title="Blobs", manifest=run["manifest"], leaderboard=run["leaderboard"],
                          profile=None, recommended=recommended, reasons=run["reasons"],
                          stability=run["stability"])
    assert "Stability per segment" not in plain and 'id="segment-stability"' not in plain
