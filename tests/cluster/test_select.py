from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_blobs

from segmint.cluster import find_knee, leaderboard, recommend, run_sweep, stability
from segmint.spec import SelectSpec, SweepSpec


def test_knee_of_a_hand_made_curve():
    assert find_knee([2, 3, 4, 5, 6, 7], [1000, 400, 120, 100, 90, 85]) == 4
    assert find_knee([2, 3], [10, 5]) is None


@pytest.fixture(scope="module")
def blobs():
    X, y = make_blobs(n_samples=500, centers=5, n_features=2, cluster_std=0.5, random_state=1,
                      center_box=(-20, 20))
    table = pd.DataFrame(X, columns=["x", "y"])
    spec = SweepSpec.model_validate(
        {"algorithms": [{"name": "kmeans", "grid": {"n_clusters": list(range(2, 9))}}]})
    sols = run_sweep(table, spec, seed=0)
    return table, sols, leaderboard(sols)


def test_recommends_the_true_k_with_reasons(blobs):
    table, sols, board = blobs
    rec = recommend(sols, board, table, SelectSpec(stability_resamples=5), seed=0)
    assert rec.solution == "kmeans_k5"
    assert any("elbow" in r for r in rec.reasons)
    assert any(r.startswith("Davies-Bouldin") for r in rec.reasons)
    assert set(rec.stability["solution"]) >= {"kmeans_k5"}
    assert rec.knee["kmeans|standard"] == 5
    board = rec.board.set_index("solution")
    assert board.loc["kmeans_k5", "rank"] == 1 and board.loc["kmeans_k5", "at_knee"]
    assert board["recommended"].sum() == 1 and board.loc["kmeans_k5", "recommended"]


def test_stability_high_for_true_k_lower_for_wrong_k(blobs):
    table, sols, _ = blobs
    by = {s.name: s for s in sols}
    good = stability(by["kmeans_k5"], table, resamples=5, seed=0)
    bad = stability(by["kmeans_k8"], table, resamples=5, seed=0)
    assert good["stability_ari_mean"] > 0.99
    assert bad["stability_ari_mean"] < good["stability_ari_mean"]


def test_tiny_clusters_are_not_eligible():
    X = np.vstack([np.random.default_rng(0).normal(0, 1, (300, 2)), [[40.0, 40.0]]])
    table = pd.DataFrame(X, columns=["x", "y"])
    spec = SweepSpec.model_validate({"algorithms": [{"name": "kmeans", "grid": {"n_clusters": [2, 3]}}]})
    sols = run_sweep(table, spec)
    board = leaderboard(sols)
    # k=2 puts the single far point alone: 1 of 301 customers (0.3%) is below 1%
    assert board.loc[board["k"] == 2, "min_cluster_share"].item() == pytest.approx(1 / 301)
    rec = recommend(sols, board, table, SelectSpec(stability_resamples=3))
    assert not rec.board.set_index("solution").loc["kmeans_k2", "eligible"]
    assert pd.isna(rec.board.set_index("solution").loc["kmeans_k2", "rank"])
    assert rec.solution != "kmeans_k2"


def test_candidates_are_distinct_partitions(blobs):
    table, sols, board = blobs
    # the same k-means at two tol values: one partition, one stability candidate
    spec = SweepSpec.model_validate({"algorithms": [{"name": "kmeans", "grid": {
        "n_clusters": [4, 5, 6], "tol": [1e-3, 1e-4]}}]})
    sols = run_sweep(table, spec, seed=0)
    rec = recommend(sols, leaderboard(sols), table, SelectSpec(stability_resamples=2))
    labels = {s.name: s.labels for s in sols}
    picked = rec.stability["solution"].tolist()
    assert len(picked) == 3
    for i, a in enumerate(picked):
        for b in picked[i + 1:]:
            assert not np.array_equal(labels[a], labels[b])


def test_min_k_and_max_k_bound_the_recommendation(blobs):
    table, sols, board = blobs
    rec = recommend(sols, board, table, SelectSpec(stability_resamples=2, min_k=6, max_k=7), seed=0)
    chosen = rec.board.set_index("solution").loc[rec.solution]
    assert 6 <= chosen["n_clusters"] <= 7 and rec.solution != "kmeans_k5"
    assert not rec.board.set_index("solution").loc["kmeans_k5", "eligible"]
    assert any("within the 6 to 7 asked for" in r for r in rec.reasons)
    none = recommend(sols, board, table, SelectSpec(stability_resamples=2, min_k=20), seed=0)
    assert none.solution is None and "between 20 and any number of segments" in none.reasons[0]


def test_min_k_above_max_k_is_a_spec_error():
    with pytest.raises(ValueError, match="min_k"):
        SelectSpec(min_k=8, max_k=4)
