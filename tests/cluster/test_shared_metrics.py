from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.cluster import KMeans
from sklearn.datasets import make_blobs

from segmint.cluster import shared_metrics
from segmint.cluster.metrics import solution_metrics
from segmint.cluster.shared_metrics import shared_measures

MEASURES = ("silhouette", "davies_bouldin", "calinski_harabasz")


@pytest.fixture(scope="module")
def blobs() -> tuple[np.ndarray, list[np.ndarray]]:
    X, _ = make_blobs(n_samples=1000, centers=5, n_features=4, random_state=0)
    labelings = [KMeans(k, n_init=1, random_state=0).fit_predict(X) for k in (2, 3, 5, 8)]
    noisy = labelings[2].copy()
    noisy[::7] = -1  # DBSCAN-like noise: its silhouette sample is drawn among the other rows
    singleton = labelings[1].copy()
    singleton[0] = 9  # a cluster of one row: silhouette 0 for it
    labelings += [noisy, singleton, np.zeros(1000, dtype=int), np.full(1000, -1)]
    return X, labelings


def _assert_equal_to_solution_metrics(X, labelings, got, silhouette_sample):
    assert len(got) == len(labelings)
    for labels, measures in zip(labelings, got, strict=True):
        expected = solution_metrics(X, labels, silhouette_sample=silhouette_sample)
        for name in MEASURES:
            if math.isnan(expected[name]):
                assert math.isnan(measures[name]), name
            else:
                assert measures[name] == pytest.approx(expected[name], rel=1e-9, abs=0), name


@pytest.mark.parametrize("silhouette_sample", [20_000, 300])
def test_equal_to_solution_metrics_below_and_above_the_sample(blobs, silhouette_sample):
    X, labelings = blobs
    got = shared_measures(X, labelings, silhouette_sample=silhouette_sample)
    _assert_equal_to_solution_metrics(X, labelings, got, silhouette_sample)
    # one cluster or all noise: no measure; a singleton keeps the others finite
    assert all(math.isnan(got[-2][m]) and math.isnan(got[-1][m]) for m in MEASURES)
    assert all(math.isfinite(got[-3][m]) for m in MEASURES)


@pytest.mark.parametrize("block_rows", [1, 77, 999, 5000])
def test_block_sizes_that_do_not_divide_n_give_the_same_numbers(blobs, block_rows):
    X, labelings = blobs
    reference = shared_measures(X, labelings, silhouette_sample=300)
    got = shared_measures(X, labelings, silhouette_sample=300, block_rows=block_rows)
    for a, b in zip(got, reference, strict=True):
        for name in MEASURES:
            assert a[name] == pytest.approx(b[name], rel=1e-12, nan_ok=True)


def test_one_blocked_pass_over_the_distances(blobs, monkeypatch):
    X, labelings = blobs
    shapes = []
    real = shared_metrics.euclidean_distances

    def spy(A, B=None, **kw):
        shapes.append((A.shape[0], (A if B is None else B).shape[0]))
        return real(A, B, **kw)

    monkeypatch.setattr(shared_metrics, "euclidean_distances", spy)
    shared_measures(X, labelings[:4], silhouette_sample=20_000, block_rows=64)
    blocks = [s for s in shapes if s[1] == 1000]  # the others are centroid distances (k x k)
    # every k-means labeling reads the same 16 blocks of at most 64 x 1000 distances
    assert [rows for rows, _ in blocks] == [64] * 15 + [1000 - 15 * 64]


def test_default_block_is_about_64_mb(blobs, monkeypatch):
    X, labelings = blobs
    monkeypatch.setattr(shared_metrics, "BLOCK_BYTES", 8 * 1000 * 100)  # 100 rows of 1000
    shapes = []
    real = shared_metrics.euclidean_distances
    monkeypatch.setattr(shared_metrics, "euclidean_distances",
                        lambda A, B=None, **kw: shapes.append((A.shape[0], (A if B is None else B).shape[0]))
                        or real(A, B, **kw))
    shared_measures(X, labelings[:2])
    assert {rows for rows, columns in shapes if columns == 1000} == {100}


def test_hand_checked_silhouette():
    # two pairs 1 apart, 10 apart: a = 1, b = mean(10, 9) or (10, 11), s = 1 - a/b
    X = np.array([[0.0], [1.0], [10.0], [11.0]])
    (m,) = shared_measures(X, [np.array([0, 0, 1, 1])])
    assert m["silhouette"] == pytest.approx(np.mean([1 - 1 / 10.5, 1 - 1 / 9.5, 1 - 1 / 9.5, 1 - 1 / 10.5]))
