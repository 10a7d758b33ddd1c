"""The recommend run's report: the models beside the baselines in words, a chart and a table,
and what each segment buys and is recommended, checked against the run's own files; drawn in
headless Chromium with nothing fetched."""
from __future__ import annotations

import base64
import json
import re
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import segmint
from segmint.recommend.pipeline import recommend
from segmint.report import build_report

BUNDLED = Path(str(resources.files("segmint") / "data" / "online_retail.parquet"))
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    segmented = segmint.run({
        "name": "retail-segments", "source": {"path": str(BUNDLED)},
        "recipe": {"features": "insiders", "cleaning": {"drop_non_product_codes": True}},
        "sweep": {"scalings": ["log"], "algorithms": [{"name": "kmeans",
                                                         "grid": {"n_clusters": [3]}}]},
        "select": {"stability_resamples": 2, "stability_top": 1},
        "profile": {"projections": [], "explain": False}}, output=out)
    rec = recommend({
        "name": "retail-recommend", "source": {"path": str(BUNDLED)},
        "recipe": {"cleaning": {"drop_non_product_codes": True}},
        "recommend": {"interactions": {"format": "transactions", "scale": None},
                      "split": {"kind": "time", "ratio": 0.8}, "models": ["ease"],
                      "params": {"ease": {"l2": 200.0}}, "top_n": 10, "k": 10,
                      "segments": str(segmented.path)}}, output=out)
    return segmented, rec


def _traces(page: str, div_id: str) -> list[dict]:
    match = re.search(r'Plotly\.newPlot\(\s*"' + re.escape(div_id) + r'",\s*(\[.*?\]),\s*\{',
                      page, flags=re.S)
    assert match, f"no figure {div_id}"

    def decoded(value):
        if isinstance(value, dict) and "bdata" in value:
            return np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"]).tolist()
        return value
    return [{k: decoded(v) for k, v in t.items()} for t in json.loads(match.group(1))]


def test_the_models_beside_the_baselines_in_words_and_bars(runs) -> None:
    _, rec = runs
    page = (rec.path / "report.html").read_text(encoding="utf-8")
    assert page == build_report(rec.path)  # the run's page is the folder's page
    mean = rec.metrics().query("split == 'mean'").set_index("model")
    assert list(mean.index) == ["ease", "popularity"]
    summary = re.search(r'<p class="summary">(.*?)</p>', page).group(1)
    ease, popular = mean.loc["ease", "ndcg_at_k"], mean.loc["popularity", "ndcg_at_k"]
    assert f"{ease:.4f} against {popular:.4f} for the best naive baseline (popularity)" in summary
    assert f"({ease / popular:.1f} times as high)" in summary
    manifest = rec.manifest
    assert f"{manifest['interactions']['customers']:,} customers" in summary
    bars = {t["name"]: t["y"] for t in _traces(page, "recommend-ranking")}
    assert set(bars) == {"ease", "popularity (baseline)"}
    np.testing.assert_allclose(bars["ease"], mean.loc["ease", ["ndcg_at_k", "precision_at_k",
                                                               "recall_at_k", "map_at_k",
                                                               "hit_rate_at_k"]].to_numpy(float))
    assert 'id="recommend-rating"' not in page  # purchases: no rating to predict
    assert page.count('<tr class="recommended">') == 1


def test_each_segment_buys_and_is_recommended_what_the_lines_say(runs) -> None:
    segmented, rec = runs
    page = (rec.path / "report.html").read_text(encoding="utf-8")
    section = re.search(r'<section id="segment-items">.*?</section>', page, flags=re.S).group(0)
    by_segment = rec.segment_top_items()
    segments = sorted(by_segment["segment"].unique())
    assert section.count('<article class="card">') == len(segments)
    # independently: the top recommended item of the first segment from the top-N lists
    names = segmented.solution().profile().set_index("segment")["name"]
    labels = segmented.solution().labels().set_index("customer")["segment"].map(names)
    labels.index = labels.index.astype(str)
    recs = rec.recommendations()
    recs = recs.assign(segment=recs["customer"].astype(str).map(labels)).dropna()
    first = segments[0]
    mine = recs[recs["segment"] == str(first)]
    counts = mine.drop_duplicates(["customer", "item"]).groupby("item").size()
    top = counts[counts == counts.max()].index.min()
    share = counts.max() / (labels == str(first)).sum()
    card = section.split('<article class="card">')[1]
    recommended = card.split("Recommended most")[1]
    title = recs.loc[recs["item"] == top, "title"].iloc[0]
    first_item = re.search(r"<li>(.*?) <span", recommended).group(1)
    assert first_item == title.replace("&", "&amp;").replace("'", "&#x27;")
    assert f"({share:.0%} of the segment)" in recommended


def test_the_recommend_report_draws_offline_in_chromium(runs, tmp_path) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is absent (apt-get install -y chromium)")
    _, rec = runs
    external: list[str] = []
    errors: list[str] = []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 900})

            def guard(route) -> None:
                if route.request.url.startswith(("file:", "data:", "about:", "blob:")):
                    route.continue_()
                else:
                    external.append(route.request.url)
                    route.abort()

            context.route("**/*", guard)
            tab = context.new_page()
            tab.on("pageerror", lambda e: errors.append(str(e)))
            tab.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            tab.goto((rec.path / "report.html").as_uri(), wait_until="load")
            tab.wait_for_function(
                "document.querySelectorAll('#recommend-ranking .main-svg').length > 0",
                timeout=30_000)
            bars = tab.locator("#recommend-ranking .bars path").count()
            assert bars == 2 * 5  # two models, five measures
            tab.locator("#recommend-metrics thead th").nth(1).click()
            shot = tmp_path / "recommend.png"
            tab.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    assert external == [] and errors == []
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 30_000


def test_a_recommend_folder_without_its_files_is_a_clear_error(tmp_path) -> None:
    (tmp_path / "manifest.json").write_text(json.dumps({"kind": "recommend", "name": "x"}))
    with pytest.raises(segmint.errors.ModelError, match="lacks metrics.csv"):
        build_report(tmp_path)
    pd.DataFrame({"model": ["m"], "split": ["mean"]}).to_csv(tmp_path / "metrics.csv")
    with pytest.raises(segmint.errors.ModelError, match="lacks recommendations.parquet"):
        build_report(tmp_path)
