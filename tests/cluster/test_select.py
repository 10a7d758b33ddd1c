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


# ---------------------------------------------------------------- stability through the engine


def _engine_calls(monkeypatch) -> dict[str, int]:
    """Count the grid engine's calls per algorithm (same engine, counted)."""
    from dataclasses import replace

    from segmint.cluster.registry import ALGORITHMS

    calls = {"kmeans": 0, "dbscan": 0}
    for name in calls:
        algo = ALGORITHMS[name]

        def counted(X, grid, seed, _inner=algo.fast_path, _name=name):
            calls[_name] += 1
            return _inner(X, grid, seed)

        monkeypatch.setitem(ALGORITHMS, name, replace(algo, fast_path=counted))
    return calls


def test_grid_engine_refits_equal_the_plain_refits(blobs, monkeypatch):
    """k-means at three k and DBSCAN at two eps on two spaces: the engine's refits give the
    plain pipeline refits' ARI on every resample, with one engine call per algorithm and
    space and resample."""
    from sklearn.metrics import adjusted_rand_score

    from segmint.cluster.select import _refits, stability_tables

    table, _, _ = blobs
    spec = SweepSpec.model_validate({"scalings": ["standard", "minmax"], "algorithms": [
        {"name": "kmeans", "grid": {"n_clusters": [3, 4, 5]}},
        {"name": "dbscan", "grid": {"eps": [0.15, 0.3], "min_samples": [5]}}]})
    sols = run_sweep(table, spec, seed=3)
    assert len(sols) == 10 and {s.algorithm for s in sols} == {"kmeans", "dbscan"}
    calls = _engine_calls(monkeypatch)
    grid = _refits(sols, table, resamples=4, fraction=0.8, seed=7)
    assert calls == {"kmeans": 2 * 4, "dbscan": 2 * 4}  # one per space per resample
    plain = _refits(sols, table, resamples=4, fraction=0.8, seed=7, plain=True)
    assert calls == {"kmeans": 8, "dbscan": 8}  # the plain path never asks the engine
    for s in sols:
        original = s.clustered_labels()
        for (rows, fast), (rows_plain, slow) in zip(grid[s.name], plain[s.name], strict=True):
            assert np.array_equal(rows, rows_plain) and len(rows) == 400
            assert adjusted_rand_score(original[rows], fast) == \
                adjusted_rand_score(original[rows_plain], slow)
            assert adjusted_rand_score(fast, slow) == 1.0  # the same partition
    # a DBSCAN solution with noise is among them, and its refits find several clusters
    assert any((s.labels == -1).any() for s in sols if s.algorithm == "dbscan")
    assert all(len(set(fast) - {-1}) >= 2 for s in sols if s.algorithm == "dbscan"
               for _, fast in grid[s.name])
    stab_grid, seg_grid = stability_tables(sols, table, resamples=4, seed=7)
    stab_plain, seg_plain = stability_tables(sols, table, resamples=4, seed=7, plain=True)
    pd.testing.assert_frame_equal(stab_grid, stab_plain)
    pd.testing.assert_frame_equal(seg_grid, seg_plain)
    # the old per-solution function gives the same numbers
    one = stability(sols[1], table, resamples=4, seed=7)
    assert one["stability_ari_mean"] == stab_grid.loc[1, "stability_ari_mean"]
    assert one["stability_jaccard_mean"] == stab_grid.loc[1, "stability_jaccard_mean"]


def test_refits_of_clustered_customers_and_of_the_mixed_table():
    """Outliers set apart (``clustered``) and k-prototypes on the mixed table: the engine path
    refits the same rows as the plain one and gives the same labels."""
    from segmint.cluster.select import _refits
    from segmint.prepare import model_input
    from segmint.recipes._table import CustomerTable

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"spend": np.r_[rng.normal(10, 1, 60), rng.normal(40, 2, 60)],
                          "visits": np.r_[rng.normal(2, 0.3, 60), rng.normal(9, 0.5, 60)],
                          "plan": np.repeat(["basic", "gold"], 60)})
    types = {"spend": "numeric", "visits": "numeric", "plan": "categorical"}
    table = CustomerTable(frame, types, list(types))
    spec = SweepSpec.model_validate({"algorithms": [
        {"name": "kmeans", "grid": {"n_clusters": [2, 3]}},
        {"name": "kprototypes", "grid": {"n_clusters": [2], "n_init": [1]}}]})
    sols = run_sweep(table, spec, seed=0)
    assert {s.algorithm for s in sols} == {"kmeans", "kprototypes"}
    data = model_input(table.frame, table.types, table.features)
    # set the first five customers apart, as the pipeline does with flagged outliers
    flags = np.zeros(len(frame), dtype=bool)
    flags[:5] = True
    part = CustomerTable(frame[~flags].reset_index(drop=True), types, list(types))
    apart = run_sweep(part, SweepSpec.model_validate(
        {"algorithms": [{"name": "kmeans", "grid": {"n_clusters": [2, 3]}}]}), seed=0)
    for s in apart:
        labels = np.full(len(frame), -1, dtype=np.int64)
        labels[~flags] = s.labels
        s.name += "_apart"
        s.clustered, s.labels = ~flags, labels
    everyone = sols + apart
    grid = _refits(everyone, data, resamples=3, fraction=0.8, seed=1)
    plain = _refits(everyone, data, resamples=3, fraction=0.8, seed=1, plain=True)
    for s in everyone:
        for (rows, fast), (rows_plain, slow) in zip(grid[s.name], plain[s.name], strict=True):
            assert np.array_equal(rows, rows_plain)
            assert np.array_equal(fast, slow)
            # resamples of the clustered customers only: 80% of 115, else of 120
            assert len(rows) == (92 if s.clustered is not None else 96)


class _ThirdsOfX:
    """Refits: x < 4 one cluster, 4 <= x < 8 another, x >= 8 split three ways by x mod 3,
    x = 14 noise. Deterministic, so the Jaccard of each resample is known by hand."""

    def get_params(self, deep=True):
        return {}

    def set_params(self, **params):
        return self

    def fit_predict(self, X):
        x = np.asarray(X, dtype=float)[:, 0]
        return np.where(x >= 14, -1, np.where(x < 4, 0, np.where(x < 8, 1, 2 + x.astype(int) % 3)))


def test_segment_jaccard_by_hand():
    from segmint.cluster.select import segment_jaccard

    # 12 customers: segment 0 intact, segment 1 split 3/1 with one member now noise
    original = np.array([0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2])
    refit = np.array([7, 7, 7, 7, 8, 8, 8, 9, 9, 9, 9, -1])
    # 0: {0..3} = cluster 7 -> 1; 1: {4..7} vs 8 = {4,5,6} -> 3/4, vs 9 = {7..10} -> 1/7;
    # 2: {8..11} vs 9 = {7,8,9,10} -> 3/5 (11 is noise: in the segment, in no cluster)
    assert segment_jaccard(original, refit) == {0: 1.0, 1: 0.75, 2: 0.6}
    assert segment_jaccard(np.array([-1, 0, 0]), np.array([-1, -1, -1])) == {0: 0.0}


def test_segment_stability_against_a_hand_computation():
    """15 customers on a line: segments 0..3, 4..7, 8..13 and one noise point. Refits keep the
    first two and split the third three ways: its Jaccard per resample is the largest share
    of its resampled members in one third."""
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer

    from segmint.cluster.select import stability_tables, verdict
    from segmint.cluster.sweep import Solution

    x = np.arange(15, dtype=float)
    data = pd.DataFrame({"x": x})
    labels = np.where(x >= 14, -1, np.where(x < 4, 0, np.where(x < 8, 1, 2)))
    model = Pipeline([("prepare", FunctionTransformer()), ("cluster", _ThirdsOfX())])
    sol = Solution("line", "thirds", "raw", {}, labels, model, {}, 0.0)
    stab, segs = stability_tables([sol], data, resamples=6, fraction=0.8, seed=5)
    hand = []
    for b in range(6):
        rows = np.sort(np.random.default_rng([5, b]).choice(15, 12, replace=False))
        third = rows[(rows >= 8) & (rows < 14)]
        hand.append(np.bincount(third % 3).max() / len(third))
    segs = segs.set_index("segment")
    assert list(segs.index) == [0, 1, 2]  # noise is not a segment
    assert segs.loc[0, "jaccard_mean"] == 1.0 and segs.loc[1, "jaccard_min"] == 1.0
    assert segs.loc[2, "jaccard_mean"] == pytest.approx(np.mean(hand))
    assert segs.loc[2, "jaccard_min"] == pytest.approx(min(hand))
    assert np.mean(hand) < 0.6 and segs.loc[2, "verdict"] == "not to be trusted"
    assert segs.loc[0, "verdict"] == "stable" and segs.loc[1, "verdict"] == "stable"
    assert segs["size"].tolist() == [4, 4, 6] and (segs["resamples"] == 6).all()
    assert stab.loc[0, "stability_jaccard_mean"] == pytest.approx((2 + np.mean(hand)) / 3)
    assert (verdict(0.75), verdict(0.7499), verdict(0.6), verdict(0.5999)) == \
        ("stable", "doubtful", "doubtful", "not to be trusted")


def test_recommendation_reports_segment_stability_and_untrusted_segments(blobs):
    table, sols, board = blobs
    rec = recommend(sols, board, table, SelectSpec(stability_resamples=4), seed=0)
    segs = rec.segment_stability
    assert list(segs.columns) == ["solution", "segment", "size", "jaccard_mean", "jaccard_min",
                                  "resamples", "verdict"]
    assert set(segs["solution"]) == set(rec.stability["solution"])
    mine = segs[segs["solution"] == "kmeans_k5"]
    # five well separated blobs: every segment comes back whole
    assert len(mine) == 5 and (mine["jaccard_mean"] > 0.95).all()
    assert (mine["verdict"] == "stable").all() and mine["size"].sum() == 500
    st = rec.stability.set_index("solution")
    assert st.loc["kmeans_k5", "stability_jaccard_mean"] == pytest.approx(
        mine["jaccard_mean"].mean())
    assert not any("not to be trusted" in r for r in rec.reasons)
    # k=8 cuts blobs in pieces: some of its segments are not to be trusted, and it says so
    eight = recommend(sols, board, table, SelectSpec(stability_resamples=4, min_k=8), seed=0)
    assert eight.solution == "kmeans_k8"
    weak = eight.segment_stability.query("solution == 'kmeans_k8' and jaccard_mean < 0.6")
    assert len(weak) >= 1
    said = [r for r in eight.reasons if "not to be trusted" in r]
    assert len(said) == 1 and all(f"{int(s)} (Jaccard" in said[0] for s in weak["segment"])


def test_recommendation_default_segment_stability_is_an_empty_table():
    from segmint.cluster.select import Recommendation

    rec = Recommendation(None, [], {}, pd.DataFrame(), pd.DataFrame())
    assert rec.segment_stability.empty and "verdict" in rec.segment_stability.columns


def test_find_knee_is_kneed_on_random_elbow_curves():
    # segmint writes Kneedle out (importing kneed cost ~1.3 s a run); kneed is the reference
    from kneed import KneeLocator

    from segmint.cluster.select import find_knee

    rng = np.random.default_rng(7)
    found = 0
    for trial in range(400):
        n = int(rng.integers(3, 16))
        k = np.sort(rng.choice(np.arange(2, 60), n, replace=False)).astype(float)
        if trial % 3 == 0:  # a clean elbow: exponential decay plus noise
            inertia = 1000 * np.exp(-k / rng.uniform(2, 15)) + rng.normal(0, 5, n) + 100
        elif trial % 3 == 1:  # convex power law
            inertia = 1e4 * k ** -rng.uniform(0.3, 2.5)
        else:  # noisy, not monotone: several local extrema
            inertia = np.sort(rng.uniform(0, 1000, n))[::-1] + rng.normal(0, 80, n)
        shuffled = rng.permutation(n)
        want = KneeLocator(k, inertia, curve="convex", direction="decreasing").knee
        got = find_knee(k[shuffled], inertia[shuffled])  # order of the points does not matter
        assert got == (None if want is None else int(want)), (k.tolist(), inertia.tolist())
        found += want is not None
    assert found > 200  # most curves have an elbow: the comparison is not vacuous
