from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.cluster import KMeans
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score, davies_bouldin_score
from sklearn.preprocessing import StandardScaler

from segmint.cluster import leaderboard, run_sweep, solution_metrics
from segmint.errors import SpecError
from segmint.spec import SweepSpec


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    X, _ = make_blobs(n_samples=600, centers=4, n_features=3, cluster_std=0.6, random_state=3)
    return pd.DataFrame(X * [1.0, 10.0, 100.0], columns=["a", "b", "c"],
                        index=pd.Index([f"c{i}" for i in range(600)], name="customer"))


def _spec(**kw) -> SweepSpec:
    return SweepSpec.model_validate(kw)


def test_kmeans_solutions_equal_sklearn_pipeline(table):
    spec = _spec(scalings=["standard"], algorithms=[{"name": "kmeans", "grid": {"n_clusters": [2, 3, 4]}}])
    sols = run_sweep(table, spec, seed=7)
    assert [s.name for s in sols] == ["kmeans_k2", "kmeans_k3", "kmeans_k4"]
    X = StandardScaler().fit_transform(table)
    for s in sols:
        ref = KMeans(n_clusters=s.params["n_clusters"], random_state=7).fit(X)
        assert adjusted_rand_score(ref.labels_, s.labels) == 1.0
        assert s.metrics["inertia"] == pytest.approx(ref.inertia_, rel=1e-9)
        assert s.metrics["mean_squared_distance"] == pytest.approx(ref.inertia_ / len(X), rel=1e-9)
        assert s.metrics["davies_bouldin"] == pytest.approx(davies_bouldin_score(X, ref.labels_))
        assert sum(s.metrics["sizes"].values()) == 600
    # k=4 recovers the four blobs: the lowest Davies-Bouldin of the three
    board = leaderboard(sols)
    assert board.loc[board["davies_bouldin"].idxmin(), "solution"] == "kmeans_k4"


def test_every_algorithm_and_scaling_runs_with_names_and_metrics(table):
    spec = _spec(scalings=["standard", "minmax", "robust", "none"], algorithms=[
        {"name": "kmeans", "grid": {"n_clusters": [4]}},
        {"name": "minibatch_kmeans", "grid": {"n_clusters": [4]}},
        {"name": "dbscan", "grid": {"eps": [0.3], "min_samples": [5]}},
        {"name": "hdbscan", "grid": {"min_cluster_size": [20]}},
        {"name": "gaussian_mixture", "grid": {"n_components": [4]}},
        {"name": "agglomerative", "grid": {"n_clusters": [4]}},
        {"name": "birch", "grid": {"n_clusters": [4]}},
    ])
    sols = run_sweep(table, spec)
    assert len(sols) == 28
    names = [s.name for s in sols]
    assert len(set(names)) == 28 and "dbscan_minmax" in names and "kmeans_k4_none" in names
    board = leaderboard(sols)
    gmm = board[board["algorithm"] == "gaussian_mixture"]
    assert gmm["bic"].notna().all()
    assert board.loc[board["algorithm"] != "gaussian_mixture", "bic"].isna().all()
    # the blobs are well separated: every k=4 method finds them under standard scaling
    std = [s for s in sols
           if s.representation == "standard" and s.algorithm not in ("dbscan", "hdbscan")]
    ref = std[0].labels
    for s in std[1:]:
        assert adjusted_rand_score(ref, s.labels) > 0.95, s.name


def test_noise_is_left_out_of_metrics():
    X = np.array([[0.0, 0], [0, 1], [1, 0], [10, 10], [10, 11], [11, 10], [50, 50]])
    m = solution_metrics(X, np.array([0, 0, 0, 1, 1, 1, -1]))
    assert m["noise_share"] == pytest.approx(1 / 7)
    assert m["n_clusters"] == 2 and m["sizes"] == {0: 3, 1: 3}
    # each cluster: centroid at (1/3, 1/3); squared distances 2/9, 5/9, 5/9 -> 4/3 per cluster
    assert m["inertia"] == pytest.approx(8 / 3)
    assert m["mean_squared_distance"] == pytest.approx(8 / 18)


def test_silhouette_on_a_seeded_sample(table):
    spec = _spec(algorithms=[{"name": "kmeans", "grid": {"n_clusters": [3]}}], silhouette_sample=200)
    a = run_sweep(table, spec, seed=1)[0].metrics
    b = run_sweep(table, spec, seed=1)[0].metrics
    assert a["silhouette_sample"] == 200 and a["silhouette"] == b["silhouette"]


def test_agglomerative_refuses_large_tables(table):
    spec = _spec(algorithms=[{"name": "agglomerative"}], max_rows_quadratic=100)
    with pytest.raises(SpecError, match="max_rows_quadratic"):
        run_sweep(table, spec)


def test_sweep_uses_the_grid_engine_and_matches_sklearn_setting_by_setting(table, monkeypatch):
    from sklearn.cluster import DBSCAN

    import segmint.cluster._grid as grid_engine

    calls = []
    for name in ("kmeans_grid", "dbscan_grid"):
        real = getattr(grid_engine, name)
        monkeypatch.setattr(grid_engine, name,
                            lambda *a, _real=real, _name=name, **k: calls.append(_name) or _real(*a, **k))
    spec = _spec(scalings=["standard"], algorithms=[
        {"name": "kmeans", "grid": {"n_clusters": [2, 3, 5, 8], "tol": [1e-2, 1e-4, 1e-6]}},
        {"name": "dbscan", "grid": {"eps": [0.15, 0.3, 0.6], "min_samples": [3, 10, 30]}},
    ])
    sols = run_sweep(table, spec, seed=0)
    assert calls == ["kmeans_grid", "dbscan_grid"]  # one call per algorithm, not per setting
    X = StandardScaler().fit_transform(table)
    for s in sols:
        if s.algorithm == "kmeans":
            ref = KMeans(**s.params, random_state=0).fit(X)
            assert s.metrics["inertia"] == pytest.approx(ref.inertia_, rel=1e-6), s.name
            assert adjusted_rand_score(ref.labels_, s.labels) >= 0.9999, s.name
            # the saved model predicts like the reference
            assert (s.model.named_steps["cluster"].predict(X) == ref.predict(X)).all()
        else:
            ref = DBSCAN(**s.params).fit(X)
            assert adjusted_rand_score(ref.labels_, s.labels) == 1.0, s.name
            assert ((ref.labels_ == -1) == (s.labels == -1)).all(), s.name
            assert (np.sort(ref.core_sample_indices_) == np.sort(
                s.model.named_steps["cluster"].core_sample_indices_)).all()


def test_more_clusters_than_customers_is_a_spec_error(table):
    spec = _spec(algorithms=[{"name": "kmeans", "grid": {"n_clusters": [2, 5000]}}])
    with pytest.raises(SpecError, match="n_clusters"):
        run_sweep(table, spec)


def test_label_measures_taken_in_one_pass_equal_solution_metrics(table):
    """The sweep measures every labeling of a space together (shared_measures); each solution's
    silhouette, Davies-Bouldin and Calinski-Harabasz, own and common, equal solution_metrics'
    of its own labels, with a silhouette sample smaller than the table."""
    from segmint.cluster.sweep import Sweep

    spec = _spec(algorithms=[{"name": "kmeans", "grid": {"n_clusters": [2, 3, 4], "tol": [1e-4, 1e-3]}},
                             {"name": "dbscan", "grid": {"eps": [0.3, 0.6], "min_samples": [5]}}],
                 scalings=["standard", "minmax"], silhouette_sample=150)
    sweep = Sweep(spec, seed=3)
    solutions = sweep.run(table)
    assert len(solutions) == 16
    for sol in solutions:
        X = sweep.representations[sol.representation].X
        own = solution_metrics(X, sol.labels, silhouette_sample=150, seed=3)
        common = solution_metrics(sweep.common.X, sol.labels, silhouette_sample=150, seed=3)
        for measure in ("silhouette", "davies_bouldin", "calinski_harabasz"):
            assert sol.metrics[measure] == pytest.approx(own[measure], rel=1e-9, nan_ok=True), measure
            assert sol.metrics[f"common_{measure}"] == pytest.approx(common[measure], rel=1e-9,
                                                                     nan_ok=True), measure
        assert sol.metrics["silhouette_sample"] == own["silhouette_sample"]
