"""A whole run gives the same folder at one thread and at two: the grids, the shared measures,
the stability refits, the writing on threads and the explanation computed beside the writing
change when things happen, never what is computed."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import segmint


def _customers(n: int = 900) -> pd.DataFrame:
    rng = np.random.default_rng(5)
    group = rng.integers(0, 3, n)
    return pd.DataFrame({
        "spend": rng.lognormal(4 + group, 0.5),
        "orders": rng.poisson(3 + 4 * group).astype("float64"),
        "recency_days": rng.integers(0, 300, n).astype("float64") / (1 + group),
        "channel": np.where(group == 2, "web", rng.choice(["web", "store"], n)),
    }, index=pd.Index([f"c{i:04d}" for i in range(n)], name="customer_id"))


SPEC = {"name": "threads-equal", "recipe": {"kind": "attributes"},
        "prepare": {"outliers": {"method": "isolation_forest", "mode": "flag"}},
        "sweep": {"scalings": ["log", "standard"],
                  "algorithms": [{"name": "kmeans", "grid": {"n_clusters": [2, 3, 4, 6],
                                                             "tol": [1e-3, 1e-4]}},
                                 {"name": "dbscan", "grid": {"eps": [0.4, 0.8],
                                                             "min_samples": [5, 15]}}]},
        "select": {"stability_resamples": 4},
        "profile": {"projections": ["pca"], "explain": True}}


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[int, segmint.Run]:
    data = _customers()
    return {n: segmint.run(data, SPEC, output=tmp_path_factory.mktemp(f"t{n}"), threads=n)
            for n in (1, 2)}


def test_leaderboard_labels_and_stability_are_the_same_at_one_and_two_threads(runs):
    one, two = runs[1], runs[2]
    assert one.recommended == two.recommended
    timing = [c for c in one.leaderboard().columns if c.endswith("seconds")]
    pd.testing.assert_frame_equal(one.leaderboard().drop(columns=timing),
                                  two.leaderboard().drop(columns=timing))
    pd.testing.assert_frame_equal(pd.read_parquet(one.path / "labels.parquet"),
                                  pd.read_parquet(two.path / "labels.parquet"))
    pd.testing.assert_frame_equal(one.stability(), two.stability())
    pd.testing.assert_frame_equal(one.segment_stability(), two.segment_stability())
    assert len(one.solutions()) == 24  # 16 k-means and 8 DBSCAN settings
    assert one.leaderboard()["silhouette"].notna().sum() >= 16


def test_profiles_models_and_explanation_are_the_same_at_one_and_two_threads(runs):
    one, two = runs[1], runs[2]
    for name in one.solutions():
        pd.testing.assert_frame_equal(one.solution(name).profile(), two.solution(name).profile())
        a = json.loads((one.path / "solutions" / name / "metrics.json").read_text())
        b = json.loads((two.path / "solutions" / name / "metrics.json").read_text())
        # skops files differ byte for byte from save to save (they name objects by memory
        # address), so their checksums do too
        same = [k for k in a if k != "fit_seconds" and not k.endswith("sha256")]
        assert {k: a[k] for k in same} == {k: b[k] for k in same}
    chosen = one.recommended
    explained = sorted(p.name for p in (one.path / "solutions" / chosen).glob("explain_*.parquet"))
    assert explained and explained == sorted(
        p.name for p in (two.path / "solutions" / chosen).glob("explain_*.parquet"))
    for file in explained:
        pd.testing.assert_frame_equal(pd.read_parquet(one.path / "solutions" / chosen / file),
                                      pd.read_parquet(two.path / "solutions" / chosen / file))
    # the explanation ran beside the writing at two threads, and the report still has it
    for run in (one, two):
        html = run.report_path.read_text(encoding="utf-8")
        assert "what sets the segments apart" in html.lower() or "surrogate" in html.lower()
        assert run.manifest["timings_seconds"]["explain"] > 0
