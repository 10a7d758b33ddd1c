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
    # every k-means labeling reads the same 16 blocks of at most 64 x 1000 distances (blocks
    # run on threads: in any order)
    assert sorted(rows for rows, _ in blocks) == sorted([64] * 15 + [1000 - 15 * 64])


def _block_rows_seen(monkeypatch, X, labelings, m):
    shapes = []
    real = shared_metrics.euclidean_distances
    monkeypatch.setattr(shared_metrics, "euclidean_distances",
                        lambda A, B=None, **kw: shapes.append((A.shape[0], (A if B is None else B).shape[0]))
                        or real(A, B, **kw))
    shared_measures(X, labelings)
    return sorted(rows for rows, columns in shapes if columns == m)


def test_default_block_is_about_64_mb(blobs, monkeypatch):
    X, labelings = blobs
    monkeypatch.setattr(shared_metrics, "BLOCK_BYTES", 8 * 1000 * 100)  # 100 rows of 1000
    monkeypatch.setattr(shared_metrics, "MIN_BLOCKS", 2)
    assert set(_block_rows_seen(monkeypatch, X, labelings[:2], 1000)) == {100}


def test_default_cuts_a_pass_into_16_blocks_for_the_threads(blobs, monkeypatch):
    X, labelings = blobs
    # 1000 rows: 16 blocks of 63 would be under 64 rows: 15 of 64 and the rest
    assert _block_rows_seen(monkeypatch, X, labelings[:1], 1000) == [40] + [64] * 15
    X2 = np.vstack([X] * 3)  # 3000 rows: 16 blocks of 188 (the last 180)
    labels2 = np.concatenate([labelings[1]] * 3)
    assert _block_rows_seen(monkeypatch, X2, [labels2], 3000) == [180] + [188] * 15


def _exactly_equal(a, b):
    return all(len(x) == len(y) and all(x[m] == y[m] or (math.isnan(x[m]) and math.isnan(y[m]))
                                        for m in MEASURES) for x, y in zip(a, b, strict=True))


def test_same_numbers_on_one_or_two_threads(blobs, monkeypatch):
    from segmint._threads import using_threads

    X, labelings = blobs
    X3 = np.vstack([X + 0.01 * i for i in range(3)])  # 3000 rows, 16 blocks
    labelings3 = [np.concatenate([labels] * 3) for labels in labelings]
    threads_seen = set()
    real = shared_metrics.euclidean_distances

    def spy(A, B=None, **kw):
        import threading
        import time

        threads_seen.add(threading.get_ident())
        time.sleep(0.01)  # every worker has started before the blocks run out
        return real(A, B, **kw)

    with using_threads(1):
        one = shared_measures(X3, labelings3, silhouette_sample=2500)
    monkeypatch.setattr(shared_metrics, "euclidean_distances", spy)
    with using_threads(2):
        two = shared_measures(X3, labelings3, silhouette_sample=2500)
    assert len(threads_seen) >= 2  # the blocks did run on two threads
    assert _exactly_equal(one, two)  # exact floats, not approximately
    assert sum(math.isfinite(m["silhouette"]) for m in one) == 6
    # and equal to the per-labeling functions, to rounding
    _assert_equal_to_solution_metrics(X3, labelings3, two, 2500)


def test_hand_checked_silhouette():
    # two pairs 1 apart, 10 apart: a = 1, b = mean(10, 9) or (10, 11), s = 1 - a/b
    X = np.array([[0.0], [1.0], [10.0], [11.0]])
    (m,) = shared_measures(X, [np.array([0, 0, 1, 1])])
    assert m["silhouette"] == pytest.approx(np.mean([1 - 1 / 10.5, 1 - 1 / 9.5, 1 - 1 / 9.5, 1 - 1 / 10.5]))


def test_labelings_of_many_clusters_take_the_sparse_path_with_the_same_numbers(monkeypatch):
    # DBSCAN on a large table leaves thousands of small clusters: such a labeling sums its
    # distances through a sparse product of its own, not the shared dense one-hot
    from sklearn.metrics import silhouette_score

    rng = np.random.default_rng(11)
    X = rng.normal(size=(1_500, 4))
    few = (X[:, 0] > 0).astype(int)
    many = rng.integers(0, 300, 1_500)  # ~5 customers a cluster
    many[rng.random(1_500) < 0.1] = -1  # noise, left out as scikit-learn's callers do
    got = shared_measures(X, [few, many], silhouette_sample=1_000, seed=3)
    for labels, measured in zip([few, many], got, strict=True):
        want = solution_metrics(X, labels, silhouette_sample=1_000, seed=3)
        assert measured["silhouette"] == pytest.approx(want["silhouette"], rel=1e-9, abs=1e-12)
    # unsampled, against scikit-learn itself
    kept = many >= 0
    whole = shared_measures(X, [many], silhouette_sample=10_000)[0]["silhouette"]
    assert whole == pytest.approx(silhouette_score(X[kept], many[kept]), rel=1e-9)
    # the same numbers when every labeling goes through the dense product
    monkeypatch.setattr(shared_metrics, "MANY_CLUSTERS", 10_000)
    dense = shared_measures(X, [few, many], silhouette_sample=1_000, seed=3)
    assert dense[1]["silhouette"] == pytest.approx(got[1]["silhouette"], rel=1e-12)
    assert dense[0]["silhouette"] == got[0]["silhouette"]


def test_labelings_repeated_are_measured_once_and_each_gets_its_numbers(blobs, monkeypatch):
    X, labelings = blobs
    a, b, noisy = labelings[1], labelings[2], labelings[4]
    repeated = [a, b, a.copy(), noisy, b.astype(np.int32), noisy.copy()]
    passes = []
    real = shared_metrics._silhouettes_one_pass
    monkeypatch.setattr(shared_metrics, "_silhouettes_one_pass",
                        lambda X, rows, ls, *rest: passes.append(len(ls)) or real(X, rows, ls, *rest))
    got = shared_measures(X, repeated, silhouette_sample=300)
    # three distinct labelings (an int32 copy is the same labels), each measured once
    assert sum(passes) == 3
    _assert_equal_to_solution_metrics(X, repeated, got, 300)
    assert got[0] == got[2] and got[1] == got[4] and got[3] == got[5]
    assert got[0] is not got[2]  # each solution owns its dict
