"""dbscan_grid without the neighbour graph (``graph_budget`` below its size): the pairs go into
every setting's union-find as the blocks arrive; results equal scikit-learn's and the kept
graph's, cluster numbers included, at 1 and 2 threads."""

import numpy as np
import pytest
from _kit_data import replicated
from sklearn.cluster import DBSCAN
from sklearn.datasets import make_blobs
from sklearn.neighbors import NearestNeighbors
from sklearn.preprocessing import StandardScaler

from segmint._threads import using_threads
from segmint.cluster import _grid
from segmint.cluster import _grid_kernels as K
from segmint.cluster._grid import dbscan_grid

pytestmark = pytest.mark.skipif(not K.AVAILABLE, reason="the streamed path needs numba")


def _blobs(n, d, centers, seed=0, std=2.0):
    X, _ = make_blobs(n_samples=n, n_features=d, centers=centers, cluster_std=std,
                      random_state=seed)
    return StandardScaler().fit_transform(X)


def _replicated(n_base=150, r=12, d=21, seed=0):
    return replicated(n_base, r, d, seed)


def _two_clusters_and_a_shared_border(order):
    # two clusters whose ends are within eps of one non-core point (as in test_grid.py)
    rng = np.random.default_rng(0)
    arm = [[0.3, 0.0], [0.6, 0.0], [0.6, 0.3], [0.6, -0.3]]
    left = np.vstack([rng.normal(0.0, 0.05, size=(30, 2)), arm])
    right = np.array([2.0, 0.0]) - np.vstack([rng.normal(0.0, 0.05, size=(30, 2)), arm])
    middle = np.array([[1.0, 0.0]])
    parts = {"m": middle, "l": left, "r": right}
    return np.vstack([parts[c] for c in order])


def _three_clusters_and_a_shared_border(order, seed=0):
    """Three clusters (blob and arm at 0, 120 and 240 degrees) whose arm ends are within eps
    of one non-core point: it is reached from three components, whatever the order."""
    rng = np.random.default_rng(seed)
    parts = {"m": np.zeros((1, 2))}
    for name, angle in zip("abc", (0.0, 2 * np.pi / 3, 4 * np.pi / 3), strict=True):
        u = np.array([np.cos(angle), np.sin(angle)])
        v = np.array([-u[1], u[0]])
        blob = u + rng.normal(0.0, 0.05, size=(30, 2))
        parts[name] = np.vstack([blob, 0.7 * u, 0.4 * u, 0.4 * u + 0.2 * v, 0.4 * u - 0.2 * v])
    return np.vstack([parts[c] for c in order])


def _lattice(d, side, varying=None, seed=0):
    """Integer points (the first ``varying`` coordinates, the others 0): many pairs at
    exactly 1, sqrt(2), 2 (ties with eps), many repeated."""
    rng = np.random.default_rng(seed)
    X = rng.integers(0, side, size=(900, d)).astype(float)
    if varying is not None:
        X[:, varying:] = 0.0
    return np.vstack([X, X[:60]])


CASES = {
    # low dimension: kd_tree
    "tree": (lambda: _blobs(2500, 2, 6), [0.05, 0.1, 0.2], [3, 10, 30], {}),
    # 21 features: brute, windowed blocks of 128 rows
    "brute_windowed": (lambda: _blobs(3000, 21, 5), [0.8, 1.2, 1.6], [3, 10, 40],
                       {"block_rows": 128}),
    "brute_replicated": (_replicated, [1.5, 2.5, 3.5], [3, 10, 40], {"block_rows": 128}),
    "duplicates_all_noise": (
        lambda: np.repeat(np.arange(10, dtype=float)[:, None] * 10.0, 3, axis=0),
        [0.5, 1.0], [2, 3, 4], {}),
    "all_noise": (lambda: np.arange(40, dtype=float)[:, None] * 5.0, [1.0], [2], {}),
    "shared_border_mlr": (lambda: _two_clusters_and_a_shared_border("mlr"), [0.41, 0.45], [4], {}),
    "shared_border_rml": (lambda: _two_clusters_and_a_shared_border("rml"), [0.41, 0.45], [4],
                          {"block_rows": 16}),
    "shared_border_lrm": (lambda: _two_clusters_and_a_shared_border("lrm"), [0.41, 0.45], [4], {}),
    "three_way_border_mabc": (lambda: _three_clusters_and_a_shared_border("mabc"),
                              [0.41, 0.43], [5], {}),
    "three_way_border_bmca": (lambda: _three_clusters_and_a_shared_border("bmca"),
                              [0.41, 0.43], [5], {"block_rows": 16}),
    "three_way_border_cabm": (lambda: _three_clusters_and_a_shared_border("cabm"),
                              [0.41, 0.43], [5], {}),
    # ties: squared distances exactly eps**2, in the tree and in the brute windowed path
    "ties_tree": (lambda: _lattice(2, 30), [1.0, float(np.sqrt(2.0)), 2.0], [3, 5, 9], {}),
    "ties_brute": (lambda: _lattice(18, 3, varying=5), [1.0, float(np.sqrt(2.0)), 2.0], [8, 30, 60],
                   {"block_rows": 64}),
}


def _graph_bytes(X, eps_max):
    """The kept graph's size as ``_Stream`` counts it (6 bytes a pair, 8 a row)."""
    nn = NearestNeighbors(radius=eps_max).fit(X)
    pairs = sum(len(a) for a in nn.radius_neighbors(X, return_distance=False))
    return 6 * pairs + 8 * (X.shape[0] + 1)


def _same(a, b):
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key].labels, b[key].labels)
        np.testing.assert_array_equal(a[key].core_sample_indices, b[key].core_sample_indices)
        assert a[key].labels.dtype == b[key].labels.dtype == np.int64
        assert a[key].core_sample_indices.dtype == np.int64


def _check_sklearn(X, grid, eps_list, ms_list):
    for eps in eps_list:
        for ms in ms_list:
            db = DBSCAN(eps=eps, min_samples=ms).fit(X)
            res = grid[(eps, ms)]
            np.testing.assert_array_equal(res.core_sample_indices, db.core_sample_indices_)
            np.testing.assert_array_equal(res.labels, db.labels_)


@pytest.mark.parametrize("n_threads", [1, 2])
@pytest.mark.parametrize("case", sorted(CASES))
def test_streamed_grid_is_sklearns(case, n_threads):
    make, eps, ms, kw = CASES[case]
    X = make()
    with using_threads(n_threads):
        streamed = dbscan_grid(X, eps, ms, graph_budget=0, **kw)
        kept = dbscan_grid(X, eps, ms, graph_budget=np.inf, **kw)
    assert all(r.extra["streamed"] for r in streamed.values())
    assert not any(r.extra["streamed"] for r in kept.values())
    _check_sklearn(X, streamed, eps, ms)
    _same(streamed, kept)


def test_the_cases_exercise_what_they_are_for():
    """Ties reach the deferred list and scikit-learn's own decision; a point reached from three
    components is queried again (and it is a border point of three clusters); some settings
    have clusters and noise."""
    make, eps, ms, kw = CASES["ties_brute"]
    res = dbscan_grid(make(), eps, ms, graph_budget=0, **kw)
    extra = next(iter(res.values())).extra
    assert extra["n_boundary_pairs_rechecked"] > 0
    assert extra["n_near_pairs"] > 0
    for case in ("three_way_border_mabc", "three_way_border_bmca", "three_way_border_cabm"):
        make, eps, ms, kw = CASES[case]
        X = make()
        middle = int(np.flatnonzero((X == 0.0).all(axis=1))[0])
        res = dbscan_grid(X, eps, ms, graph_budget=0, **kw)
        assert next(iter(res.values())).extra["n_border_rows_requeried"] > 0
        for r in res.values():
            assert len(set(r.labels.tolist()) - {-1}) == 3
            assert r.labels[middle] != -1
            assert middle not in set(r.core_sample_indices.tolist())
    for case in ("tree", "brute_windowed", "brute_replicated", "ties_brute"):
        make, eps, ms, kw = CASES[case]
        res = dbscan_grid(make(), eps, ms, graph_budget=0, **kw)
        assert max(r.labels.max() for r in res.values()) >= 2
        assert any((r.labels == -1).any() for r in res.values())


@pytest.mark.parametrize("n_threads", [1, 2])
def test_budget_crossed_midway_and_default_budget(n_threads, monkeypatch):
    # the blocks kept before the budget is crossed join the stream late: same results
    X = _blobs(4000, 18, 5)
    eps, ms, kw = [0.8, 1.2, 1.6], [3, 10, 40], {"block_rows": 256}
    size = _graph_bytes(X, max(eps))
    with using_threads(n_threads):
        kept = dbscan_grid(X, eps, ms, graph_budget=size, **kw)
        half = dbscan_grid(X, eps, ms, graph_budget=size // 2, **kw)
        monkeypatch.setattr(_grid, "_GRAPH_BUDGET", size - 1)
        default = dbscan_grid(X, eps, ms, **kw)
    assert not next(iter(kept.values())).extra["streamed"]
    assert next(iter(half.values())).extra["streamed"]
    assert next(iter(default.values())).extra["streamed"]
    _same(kept, half)
    _same(kept, default)
    assert max(r.labels.max() for r in kept.values()) >= 3
    with using_threads(n_threads):
        _check_sklearn(X[:1500], dbscan_grid(X[:1500], eps[:2], ms, graph_budget=0, **kw),
                       eps[:2], ms)


@pytest.mark.parametrize("case", ["brute_windowed", "tree", "shared_border_rml"])
def test_a_wide_near_band_gives_the_same_results(case, monkeypatch):
    # a band this wide (5 % of |x|^2 + |y|^2 + eps^2) sends most pairs one direction at a time
    # through the deferred list (unions and border numbers at the end): the path real data
    # rarely takes, exercised in bulk
    make, eps, ms, kw = CASES[case]
    X = make()
    plain = dbscan_grid(X, eps, ms, graph_budget=0, **kw)
    monkeypatch.setattr(_grid, "_NEAR", 0.05)
    with using_threads(2):
        wide = dbscan_grid(X, eps, ms, graph_budget=0, **kw)
    assert next(iter(wide.values())).extra["n_near_pairs"] > 100
    _same(plain, wide)
    _check_sklearn(X, wide, eps, ms)


def test_without_numba_the_graph_is_kept(monkeypatch):
    make, eps, ms, kw = CASES["brute_windowed"]
    X = make()
    streamed = dbscan_grid(X, eps, ms, graph_budget=0, **kw)
    monkeypatch.setattr(K, "AVAILABLE", False)
    plain = dbscan_grid(X, eps, ms, graph_budget=0, **kw)
    assert not next(iter(plain.values())).extra["streamed"]
    _same(streamed, plain)
