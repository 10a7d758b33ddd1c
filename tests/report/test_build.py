"""The report built from a run folder's files: the same page the run wrote, and its new parts
(heatmap, silhouette plot, saved projections, solutions in words, the leaderboard's filter)
checked against computations made here from the folder's own tables."""
from __future__ import annotations

import base64
import json
import re
import struct
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import silhouette_samples

import segmint
from segmint.report import build_report, write_report
from segmint.report._build import _stratified

BUNDLED = Path(str(resources.files("segmint") / "data" / "online_retail.parquet"))
CLEANING = {"impute_customer": True, "drop_non_product_codes": True, "min_unit_price": 0.04,
            "drop_customers": ["16446"], "drop_countries": ["European Community", "Unspecified"]}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    spec = {
        "name": "report-build",
        "source": {"path": str(BUNDLED)},
        "recipe": {"features": "insiders", "cleaning": CLEANING},
        "sweep": {"scalings": ["log"], "algorithms": [
            {"name": "kmeans", "grid": {"n_clusters": [2, 3, 4, 5, 6, 8]}}]},
        "select": {"stability_resamples": 2, "stability_top": 1},
        "profile": {"projections": ["pca", "pca3"], "projection_rows": 1000, "explain": True},
    }
    return segmint.run(spec, output=tmp_path_factory.mktemp("runs"))


def _decoded(value):
    """plotly's JSON keeps an array as base64 bytes with its dtype; a list as it is."""
    if isinstance(value, dict) and "bdata" in value:
        return np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"]).tolist()
    return value


def _figure(page: str, div_id: str) -> list[dict]:
    """The traces plotly is given for the figure ``div_id`` (the JSON of its newPlot call),
    arrays decoded."""
    match = re.search(r'Plotly\.newPlot\(\s*"' + re.escape(div_id) + r'",\s*(\[.*?\]),\s*\{',
                      page, flags=re.S)
    assert match, f"no figure {div_id}"
    return [{k: _decoded(v) for k, v in trace.items()} for trace in json.loads(match.group(1))]


def test_the_page_the_run_wrote_is_the_page_its_folder_builds(run) -> None:
    assert build_report(run.path) == run.report_path.read_text(encoding="utf-8")


def test_write_report_writes_elsewhere_and_leaves_the_run_alone(run, tmp_path) -> None:
    before = run.report_path.read_bytes()
    out = write_report(run.path, tmp_path / "again.html", max_points=200)
    assert out == tmp_path / "again.html" and run.report_path.read_bytes() == before
    page = out.read_text(encoding="utf-8")
    for trace_list in (_figure(page, "projection-0"), _figure(page, "projection-1")):
        assert sum(len(t["x"]) for t in trace_list) == 200
    assert "a seeded sample of 200 of its 1,000 points" in page


def test_heatmap_colours_are_lifts_the_right_way_round(run) -> None:
    from segmint.explain import good_direction

    page = run.report_path.read_text(encoding="utf-8")
    profile = run.solution().profile()
    traces = {t["name"]: t for t in _figure(page, "profile-heatmap")}
    rows = [f"{int(s)}: {n}" for s, n in zip(profile["segment"], profile["name"], strict=True)]
    features = [c[len("mean_"):] for c in profile.columns if c.startswith("mean_")]
    judged = [f for f in features if good_direction(f)]
    assert judged and traces["judged"]["y"] == rows
    for j, feature in enumerate(judged):
        lift = profile[f"lift_{feature}"].to_numpy(dtype=float)
        expected = np.clip(np.log2(lift) * good_direction(feature), -2, 2)
        got = np.array([traces["judged"]["z"][i][j] for i in range(len(rows))], dtype=float)
        np.testing.assert_allclose(got, expected, rtol=1e-9)
        assert [traces["judged"]["text"][i][j] for i in range(len(rows))] == \
            [f"×{v:.1f}" for v in lift]
    # the Insiders (top revenue) are green on revenue: a positive colour value
    revenue = next(f for f in judged if "revenue" in f)
    top = int(profile[f"mean_{revenue}"].to_numpy().argmax())
    assert traces["judged"]["z"][top][judged.index(revenue)] > 0


def test_silhouette_plot_holds_every_clustered_customer_by_segment(run, tmp_path) -> None:
    labels = pd.read_parquet(run.path / "labels.parquet", columns=["customer", run.recommended])
    sizes = labels[run.recommended][labels[run.recommended] >= 0].value_counts().sort_index()
    # the run's page: a sample of 3,000, each segment in its share
    sampled = [len(t["x"]) for t in _figure(run.report_path.read_text(encoding="utf-8"),
                                            "silhouette-plot")]
    assert sum(sampled) == pytest.approx(3000, abs=len(sizes))
    np.testing.assert_allclose(np.array(sampled) / 3000, sizes / sizes.sum(), atol=1e-3)
    # every customer, when allowed
    page = write_report(run.path, tmp_path / "all.html", silhouette_rows=10_000).read_text()
    traces = _figure(page, "silhouette-plot")
    assert [len(t["x"]) for t in traces] == sizes.tolist()
    # independently: silhouettes of the prepared matrix, by the labels joined on customer id
    prepared = pd.read_parquet(run.path / "prepared.parquet")
    joined = prepared.merge(labels.astype({"customer": "string"}).assign(
        customer=lambda f: f["customer"].astype(str)),
        left_on=prepared["customer"].astype(str), right_on="customer", suffixes=("", "_l"))
    clustered = joined[joined[run.recommended] >= 0]
    X = clustered[[c for c in prepared.columns if c != "customer"]].to_numpy(dtype=float)
    values = silhouette_samples(X, clustered[run.recommended].to_numpy())
    drawn = np.concatenate([t["x"] for t in traces])
    np.testing.assert_allclose(np.sort(drawn), np.sort(values.round(4)), atol=1e-9)
    board = run.leaderboard().set_index("solution")
    if int(board.loc[run.recommended, "silhouette_sample"]) == len(values):
        assert values.mean() == pytest.approx(board.loc[run.recommended, "silhouette"], abs=1e-6)
    assert f"All {len(values):,} clustered customers." in page


def test_saved_projections_are_the_segments_of_the_customers(run) -> None:
    manifest = json.loads((run.path / "manifest.json").read_text())
    said = manifest["projections"]
    assert [p["method"] for p in said] == ["pca", "pca"]
    assert [p["n_components"] for p in said] == [2, 3]
    points = pd.read_parquet(run.path / "projections.parquet")
    assert points["z"][points["projection"] == 0].isna().all()
    assert points["z"][points["projection"] == 1].notna().all()
    # each segment's share of the projected sample is its share of the clustered customers
    labels = pd.read_parquet(run.path / "labels.parquet")[run.recommended]
    share = labels[labels >= 0].value_counts(normalize=True).sort_index()
    drawn = points[points["projection"] == 0]["segment"].value_counts(normalize=True).sort_index()
    assert list(drawn.index) == list(share.index)
    assert np.abs(drawn.to_numpy() - share.to_numpy()).max() < 0.06  # a 1,000-customer sample
    page = run.report_path.read_text(encoding="utf-8")
    traces = _figure(page, "projection-0")
    assert sum(len(t["x"]) for t in traces) == (points["projection"] == 0).sum()


def test_solutions_are_shown_in_words(run) -> None:
    page = run.report_path.read_text(encoding="utf-8")
    board = run.leaderboard().set_index("solution")
    words = str(board.loc[run.recommended, "description"])
    assert re.match(r"k-means, \d segments, log scaling$", words)
    pick = re.search(r'<p class="pick" id="recommended-solution">(.*?)</p>', page).group(1)
    assert pick == words.replace("'", "&#x27;")
    assert f"<code>{run.recommended}</code>" in page
    first_heading = re.search(r'<table class="sortable" id="leaderboard"><thead><tr><th[^>]*>'
                              r'(.*?)</th>', page).group(1)
    assert first_heading == "description"
    legend = [t["name"] for t in _figure(page, "elbow-msd")]
    assert legend == ["k-means, log scaling"]
    assert f"Segments of {words}" in page


def test_old_run_folders_without_the_new_files_still_build(run, tmp_path) -> None:
    import shutil

    old = tmp_path / "old"
    shutil.copytree(run.path, old)
    (old / "projections.parquet").unlink()
    (old / "prepared.parquet").unlink()
    manifest = json.loads((old / "manifest.json").read_text())
    del manifest["chosen_knee"], manifest["projections"]
    (old / "manifest.json").write_text(json.dumps(manifest))
    page = build_report(old)
    assert 'id="silhouette-plot"' not in page and 'id="projection-0"' not in page
    assert 'id="profile-heatmap"' in page
    # the knee comes back from the leaderboard and the manifest's knees
    knee = re.search(r"knee k = (\d+)", page)
    assert knee and int(knee.group(1)) == run.manifest["chosen_knee"]


def test_not_a_run_folder_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(segmint.errors.ModelError, match="no manifest.json"):
        build_report(tmp_path)


def test_a_sample_keeps_each_segment_in_its_share() -> None:
    labels = np.repeat([0, 1, 2], [9000, 900, 100])
    keep = _stratified(labels, 1000, seed=0)
    assert len(np.unique(keep)) == len(keep) and np.all(np.diff(keep) > 0)
    counts = np.bincount(labels[keep])
    assert counts.tolist() == [900, 90, 10]
    again = _stratified(labels, 1000, seed=0)
    assert np.array_equal(keep, again)


def test_every_figure_of_the_page_becomes_a_png(run, tmp_path) -> None:
    pytest.importorskip("kaleido", reason="kaleido is not installed (pip install 'segmint[png]')")
    if not Path("/usr/bin/chromium").exists():
        pytest.skip("/usr/bin/chromium is absent (apt-get install -y chromium)")
    from segmint.report import write_pngs

    page = run.report_path.read_text(encoding="utf-8")
    figures = re.findall(r'<div id="([^"]+)" class="plotly-graph-div"', page)
    paths = write_pngs(run.path, tmp_path / "png", scale=1)
    assert sorted(p.stem for p in paths) == sorted(figures)
    assert {"profile-heatmap", "silhouette-plot", "elbow-msd", "projection-0"} <= set(figures)
    for path in paths:
        header = path.read_bytes()[:24]
        assert header[:8] == b"\x89PNG\r\n\x1a\n"
        width, height = struct.unpack(">II", header[16:24])
        assert width >= 400 and height >= 200 and path.stat().st_size > 5_000


def test_outliers_are_listed_most_unusual_first(run) -> None:
    page = run.report_path.read_text(encoding="utf-8")
    section = re.search(r'<section id="outliers".*?</section>', page, flags=re.S).group(0)
    labels = pd.read_parquet(run.path / "labels.parquet", columns=["customer", run.recommended])
    flagged = set(labels.loc[labels[run.recommended] == -1, "customer"])
    assert len(flagged) == run.manifest["outliers"]["count"] > 20
    assert f"{len(flagged):,} customers" in section
    rows = re.findall(r"<tr>(.*?)</tr>", section.split("<tbody>")[1])
    assert len(rows) == 20
    cells = [re.findall(r"<td[^>]*>(.*?)</td>", row) for row in rows]
    assert {c[0] for c in cells} <= flagged
    # independently: how far each is from the median customer, in interquartile ranges
    customers = run.customers()
    numeric = [f for f in run.features if pd.api.types.is_numeric_dtype(customers[f])]
    values = customers[numeric].astype(float)
    iqr = values.quantile(0.75) - values.quantile(0.25)
    far = ((values - values.median()) / iqr).abs()
    far.index = far.index.astype(str)
    expected = far.loc[sorted(flagged)].max(axis=1).sort_values(ascending=False)
    shown = [float(c[2].replace(",", "")) for c in cells]
    # (the page shows four significant digits)
    np.testing.assert_allclose(shown, expected.head(20).to_numpy(), rtol=1e-3, atol=0.051)
    assert [c[1] for c in cells] == [far.loc[c[0]].idxmax() for c in cells]
