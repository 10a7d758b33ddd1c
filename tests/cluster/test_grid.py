"""Grid engine results equal scikit-learn's, setting by setting."""

import numpy as np
import pytest
from _kit_data import replicated
from sklearn.cluster import DBSCAN, KMeans
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score
from sklearn.preprocessing import StandardScaler

from segmint.cluster import _grid
from segmint.cluster import _grid_kernels as K
from segmint.cluster._grid import (
    dbscan_grid,
    kmeans_grid,
    to_sklearn_dbscan,
    to_sklearn_kmeans,
)
from segmint.cluster._sklearn_compat import _kmeans_plusplus, row_norms


def _blobs(n=3000, d=6, centers=8, seed=0):
    X, _ = make_blobs(n_samples=n, n_features=d, centers=centers, cluster_std=2.0, random_state=seed)
    return StandardScaler().fit_transform(X)


def _replicated(n_base=200, r=10, d=21, seed=0):
    return replicated(n_base, r, d, seed)


def _check_kmeans(X, ks, tols, **kw):
    grid = kmeans_grid(X, ks, tols, **kw)
    assert set(grid) == {(k, t) for k in ks for t in tols}
    for (k, tol), res in grid.items():
        params = dict(n_clusters=k, tol=tol, random_state=kw.get("random_state", 0),
                      max_iter=kw.get("max_iter", 300), init=kw.get("init", "k-means++"),
                      algorithm="lloyd", n_init=1)
        km = KMeans(**params).fit(X)
        assert res.labels.dtype == np.int32
        assert res.cluster_centers.shape == (k, X.shape[1])
        assert abs(res.inertia - km.inertia_) <= 1e-6 * km.inertia_, (k, tol)
        assert adjusted_rand_score(km.labels_, res.labels) >= 0.9999, (k, tol)
        assert res.n_iter == km.n_iter_, (k, tol)
        np.testing.assert_allclose(res.cluster_centers, km.cluster_centers_, rtol=1e-9, atol=1e-9)
    return grid


@pytest.mark.parametrize("maker", [_blobs, _replicated])
def test_kmeans_grid_matches_sklearn(maker):
    X = maker()
    _check_kmeans(X, [1, 2, 3, 5, 8, 12], [1e-2, 1e-3, 1e-4, 1e-5])


def test_kmeans_grid_matches_sklearn_with_few_iterations_and_other_seed():
    X = _replicated(seed=3)
    _check_kmeans(X, [4, 9], [1e-4, 1e-6], max_iter=4, random_state=7)


def test_kmeans_grid_random_init_and_duplicates():
    # many duplicate points: random init can pick the same point twice and
    # leave a cluster empty, which scikit-learn relocates
    rng = np.random.default_rng(5)
    X = np.repeat(rng.normal(size=(40, 3)), 25, axis=0)
    for seed in range(4):
        _check_kmeans(X, [6, 15], [1e-4], init="random", random_state=seed)


def test_kmeans_grid_exact_ties_on_a_lattice():
    # integer lattice points: many rows equidistant from two centers, which
    # the float32 distance pass must leave to scikit-learn's float64 formula
    rng = np.random.default_rng(11)
    X = rng.integers(0, 3, size=(1500, 4)).astype(float)
    for seed in range(3):
        grid = _check_kmeans(X, [3, 6, 11], [1e-4, 0.0], random_state=seed)
        for (k, tol), res in grid.items():
            km = KMeans(n_clusters=k, tol=tol, random_state=seed, n_init=1,
                        algorithm="lloyd").fit(X)
            np.testing.assert_array_equal(res.labels, km.labels_)


def test_kmeans_grid_float32_pass_rechecks_near_ties():
    if not K.AVAILABLE:
        pytest.skip("needs numba")
    X = _replicated(n_base=120, r=5)
    x_sq = (X * X).sum(axis=1)
    C = X[:7].copy()
    C[1] = C[0]  # two equal centers: every row near them is a tie
    asg = _grid._Assigner(X, x_sq, 7, X.astype(np.float32))
    asg.assign(C)
    D = (C * C).sum(axis=1) - 2.0 * X @ C.T
    np.testing.assert_array_equal(asg.labels, D.argmin(axis=1))
    assert asg.n_exact > 0


@pytest.mark.parametrize("k", [2, 3, 33, 70])
def test_float32_pass_labels_and_bounds_hold(k):
    # labels are the float64 formula's argmin; every stored bound holds for
    # the exact distances (own center: upper; tracked: lower; rest: lower),
    # also for k > 32, where the center index takes more low key bits
    if not K.AVAILABLE:
        pytest.skip("needs numba")
    X = _replicated(n_base=150, r=4, seed=k)
    x_sq = (X * X).sum(axis=1)
    C = X[np.random.default_rng(k).choice(len(X), k, replace=False)] + 0.01
    asg = _grid._Assigner(X, x_sq, k, X.astype(np.float32))
    asg.assign(C)
    D = (C * C).sum(axis=1) - 2.0 * X @ C.T
    np.testing.assert_array_equal(asg.labels, D.argmin(axis=1))
    dist = np.sqrt(((X[:, None, :] - C[None, :, :]) ** 2).sum(axis=2))
    rows = np.arange(len(X))
    assert np.all(asg.U >= dist[rows, asg.labels] * (1 - 1e-12))
    others = np.ones_like(dist, dtype=bool)
    others[rows, asg.labels] = False
    for c in range(asg.cand_idx.shape[1]):
        assert np.all(asg.L[:, c] <= dist[rows, asg.cand_idx[:, c]] * (1 + 1e-12))
        others[rows, asg.cand_idx[:, c]] = False
    if k > 1 + asg.cand_idx.shape[1]:
        rest = np.where(others, dist, np.inf).min(axis=1)
        assert np.all(asg.R <= rest * (1 + 1e-12))
        # and the bounds are tight (the 4 nearest found): within 1e-5
        assert np.allclose(asg.R, rest, rtol=1e-5)
    else:
        assert np.all(np.isinf(asg.R))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fused_kmeans_plusplus_is_sklearns_bit_for_bit(seed):
    if not K.AVAILABLE:
        pytest.skip("needs numba")
    rng = np.random.default_rng(seed)
    datasets = [
        _replicated(n_base=300, r=8, seed=seed),
        rng.integers(0, 3, size=(2000, 4)).astype(float),  # many duplicates, ties
        np.repeat(rng.normal(size=(30, 3)), 40, axis=0) * 1e3,
    ]
    for X in datasets:
        X = np.ascontiguousarray(X - X.mean(axis=0))
        x_sq = row_norms(X, squared=True)
        sw = np.ones(len(X))
        for k in (2, 7, 30):
            ref, _ = _kmeans_plusplus(X, k, x_squared_norms=x_sq, sample_weight=sw,
                                      random_state=np.random.RandomState(seed))
            got = _grid._kmeans_plusplus_fused(X, k, x_sq, sw, np.random.RandomState(seed))
            np.testing.assert_array_equal(got, ref)


def test_centered_var_is_np_var_bit_for_bit():
    if not K.AVAILABLE:
        pytest.skip("needs numba")
    rng = np.random.default_rng(2)
    for X in (_replicated(n_base=90, r=7), rng.normal(size=(20001, 5)) * 1e3 + 7.0,
              rng.exponential(size=(777, 40))):
        Xc = np.array(X, copy=True)
        Xc -= Xc.mean(axis=0)
        np.testing.assert_array_equal(K.centered_var(Xc), np.var(X, axis=0))


def test_center_copy_is_exact_and_input_untouched():
    if not K.AVAILABLE:
        pytest.skip("needs numba")
    X = _replicated(n_base=60, r=5, seed=3) * 3.0 + 1.5
    X0 = X.copy()
    m = X.mean(axis=0)
    Xc, amax = _grid._center_copy(X, m)
    ref = X0.copy()
    ref -= m
    np.testing.assert_array_equal(Xc, ref)
    assert amax == np.abs(ref).max()
    X32 = np.empty(Xc.shape, dtype=np.float32)
    K.to_float32(Xc, X32)
    np.testing.assert_array_equal(X32, ref.astype(np.float32))
    kmeans_grid(X, [3], [1e-4])
    np.testing.assert_array_equal(X, X0)  # kmeans_grid does not modify X


def test_kmeans_grid_huge_values_skip_float32():
    # |x| >= 1e18: no float32 copy, float64 formula only
    X = _replicated(n_base=80, r=3, seed=8) * 1e19
    _check_kmeans(X, [2, 5], [1e-4])


def test_kmeans_grid_same_result_on_one_or_two_threads():
    # shared k-means++ starts (k=10/15/20 share one, k=3/4/5 another) and
    # fits pipelined on threads: the result must not depend on the schedule
    X = _replicated(n_base=150, r=4, seed=4)
    ks, tols = [2, 3, 4, 5, 10, 15, 20], [1e-3, 1e-5]
    one = kmeans_grid(X, ks, tols, n_jobs=1)
    two = kmeans_grid(X, ks, tols, n_jobs=2)
    for key, res in one.items():
        np.testing.assert_array_equal(res.labels, two[key].labels)
        assert res.inertia == two[key].inertia and res.n_iter == two[key].n_iter
    _check_kmeans(X, [4, 15], [1e-3, 1e-5])


def test_kmeans_grid_scale_invariant_bounds():
    # drift-coordinate bounds (cumulative center movement added and
    # subtracted) at very large and very small scales
    X = _replicated(n_base=120, r=5, seed=6)
    for scale in (1e9, 1e-9):
        _check_kmeans(X * scale, [3, 12], [1e-4, 1e-6])


def test_kmeans_grid_without_compiled_kernels(monkeypatch):
    monkeypatch.setattr(K, "AVAILABLE", False)
    X = _replicated(n_base=150)
    _check_kmeans(X, [2, 7], [1e-3, 1e-5])


def test_kmeans_grid_tol_zero():
    X = _blobs(n=800, d=3)
    _check_kmeans(X, [3], [0.0, 1e-4])


def test_to_sklearn_kmeans_predicts():
    X = _blobs(n=1000, d=4)
    res = kmeans_grid(X, [4], [1e-4])[(4, 1e-4)]
    km = to_sklearn_kmeans(res, X, {"n_clusters": 4, "tol": 1e-4, "random_state": 0})
    np.testing.assert_array_equal(km.predict(X), res.labels)
    assert km.transform(X[:5]).shape == (5, 4)
    assert km.score(X) == pytest.approx(-res.inertia, rel=1e-9)


def _check_dbscan(X, eps_list, ms_list, **kw):
    grid = dbscan_grid(X, eps_list, ms_list, **kw)
    for eps in eps_list:
        for ms in ms_list:
            db = DBSCAN(eps=eps, min_samples=ms).fit(X)
            res = grid[(eps, ms)]
            np.testing.assert_array_equal(res.core_sample_indices, db.core_sample_indices_)
            np.testing.assert_array_equal(res.labels == -1, db.labels_ == -1)
            # same numbering too, not just the same partition
            np.testing.assert_array_equal(res.labels, db.labels_)
    return grid


def test_dbscan_grid_low_dim_tree_path():
    X = _blobs(n=2500, d=2, centers=6)
    _check_dbscan(X, [0.05, 0.1, 0.2], [3, 10, 30])


def test_dbscan_grid_high_dim_brute_windowed():
    X = _replicated(n_base=150, r=12)
    # small blocks so the projection window is exercised on small data; eps wide enough that
    # the settings find clusters (at 0.3-1.2 every point of this data was noise)
    grid = _check_dbscan(X, [0.3, 2.5, 3.5, 5.0], [2, 5, 10, 50], block_rows=128)
    clusters = {key: res.labels.max() + 1 for key, res in grid.items()}
    # many clusters with noise, a few without, one, and all noise: every case the grid meets
    assert clusters[(2.5, 5)] > 100 and clusters[(3.5, 5)] > 10 and clusters[(5.0, 50)] == 1
    assert clusters[(0.3, 50)] == 0


def test_dbscan_grid_high_dim_single_pass():
    X = _replicated(n_base=60, r=8)
    _check_dbscan(X, [0.5, 1.0], [3, 8])


def test_dbscan_border_point_reachable_from_two_clusters():
    # two clusters whose ends are both within eps of one point that is not
    # core itself: scikit-learn gives it the cluster it meets first (the one
    # with the lowest-index core point); check it for every order of groups
    rng = np.random.default_rng(0)
    arm = [[0.3, 0.0], [0.6, 0.0], [0.6, 0.3], [0.6, -0.3]]
    left = np.vstack([rng.normal(0.0, 0.05, size=(30, 2)), arm])
    right = np.array([2.0, 0.0]) - np.vstack([rng.normal(0.0, 0.05, size=(30, 2)), arm])
    middle = np.array([[1.0, 0.0]])
    for X in (np.vstack([middle, left, right]), np.vstack([right, middle, left]),
              np.vstack([left, right, middle]), np.vstack([right, left, middle])):
        grid = _check_dbscan(X, [0.41, 0.45], [4])
        for eps in (0.41, 0.45):
            res = grid[(eps, 4)]
            i_mid = int(np.flatnonzero((X == middle).all(axis=1))[0])
            assert res.labels[i_mid] != -1
            assert i_mid not in set(res.core_sample_indices.tolist())
            assert len(set(res.labels.tolist()) - {-1}) == 2


def test_dbscan_all_noise_and_duplicates():
    X = np.repeat(np.arange(10, dtype=float)[:, None] * 10.0, 3, axis=0)
    _check_dbscan(X, [0.5, 1.0], [2, 3, 4])


def test_to_sklearn_dbscan_attributes():
    X = _blobs(n=600, d=2, centers=3)
    res = dbscan_grid(X, [0.2], [5])[(0.2, 5)]
    db = to_sklearn_dbscan(res, X, {"eps": 0.2, "min_samples": 5})
    ref = DBSCAN(eps=0.2, min_samples=5).fit(X)
    np.testing.assert_array_equal(db.labels_, ref.labels_)
    np.testing.assert_array_equal(db.core_sample_indices_, ref.core_sample_indices_)
    np.testing.assert_array_equal(db.components_, ref.components_)


def test_kmeans_grid_rejects_bad_input():
    X = _blobs(n=50, d=2)
    with pytest.raises(ValueError):
        kmeans_grid(X, [60], [1e-4])
    with pytest.raises(ValueError):
        dbscan_grid(X, [0.0], [5])
    assert _grid._resolve_algorithm("auto", X) == "kd_tree"


def test_to_sklearn_estimators_carry_every_attribute_a_fit_sets():
    # the private fitted attributes too (KMeans._tol, _n_threads, ...): a
    # scikit-learn release that adds or renames one fails here
    X = _blobs(n=400, d=3, centers=4)
    params = {"n_clusters": 4, "tol": 1e-4, "random_state": 0, "n_init": 1}
    km = to_sklearn_kmeans(kmeans_grid(X, [4], [1e-4])[(4, 1e-4)], X, params)
    ref = KMeans(**params).fit(X)
    assert set(vars(km)) == set(vars(ref))
    for name in [a for a in vars(ref) if a.startswith("_")]:
        assert getattr(km, name) == getattr(ref, name), name
    db = to_sklearn_dbscan(dbscan_grid(X, [0.3], [5])[(0.3, 5)], X, {"eps": 0.3, "min_samples": 5})
    assert set(vars(db)) == set(vars(DBSCAN(eps=0.3, min_samples=5).fit(X)))


# --------------------------------------------------------------------------
# input checks: scikit-learn's rules, and NaN/inf named before any work


def _with(value, cells, n=120, d=4):
    X = _blobs(n=n, d=d, centers=3)
    for row, column in cells:
        X[row, column] = value
    return X


def test_kmeans_grid_nan_names_its_column_and_row():
    X = _with(np.nan, [(17, 2)])
    with pytest.raises(ValueError) as err:
        kmeans_grid(X, [2, 3, 5], [1e-4, 1e-3])
    assert str(err.value) == "X holds 1 non-finite value (NaN or inf): column 2, rows [17]"


def test_kmeans_grid_inf_names_its_column_and_rows():
    X = _with(np.inf, [(4, 1), (17, 1)])
    X[90, 1] = -np.inf
    with pytest.raises(ValueError) as err:
        kmeans_grid(X, [2, 4], [1e-4])
    assert str(err.value) == "X holds 3 non-finite values (NaN or inf): column 1, rows [4, 17, 90]"


def test_nonfinite_message_shows_five_rows_and_the_other_columns():
    X = _with(np.nan, [(r, 0) for r in (3, 5, 8, 13, 21, 34)] + [(1, 3), (2, 2)])
    with pytest.raises(ValueError) as err:
        kmeans_grid(X, [2], [1e-4])
    assert str(err.value) == (
        "X holds 8 non-finite values (NaN or inf): column 0, rows [3, 5, 8, 13, 21, ...]; "
        "also columns [2, 3]"
    )


def test_dbscan_grid_nan_and_inf_name_their_column_and_rows():
    one = r"^X holds 1 non-finite value \(NaN or inf\): column 3, rows \[0\]$"
    with pytest.raises(ValueError, match=one):
        dbscan_grid(_with(np.nan, [(0, 3)]), [0.3, 0.5], [3, 5])
    with pytest.raises(ValueError, match=r"^X holds 2 non-finite values .*: column 0, rows \[7, 119\]$"):
        dbscan_grid(_with(-np.inf, [(7, 0), (119, 0)]), [0.3], [5])


@pytest.mark.parametrize("grid", [lambda X: kmeans_grid(X, [1], [1e-4]),
                                  lambda X: dbscan_grid(X, [0.5], [2])])
@pytest.mark.parametrize("bad", [
    np.zeros(5),  # 1-D
    np.zeros((0, 2)),  # no rows
    np.zeros((3, 0)),  # no features
    np.array([["1.0", "x"], ["2.0", "y"]]),  # not numbers
    np.ones((3, 2)) * 1j,  # complex
])
def test_grids_reject_what_scikit_learn_rejects(grid, bad):
    with pytest.raises(ValueError):
        KMeans(n_clusters=1).fit(bad)
    with pytest.raises(ValueError):
        grid(bad)


def test_grids_take_what_scikit_learn_takes():
    # lists, ints and an F-ordered array are converted, not refused
    X = np.asfortranarray(np.arange(40).reshape(20, 2) % 7)
    res = kmeans_grid(X, [3], [1e-4])[(3, 1e-4)]
    km = KMeans(n_clusters=3, random_state=0, n_init=1).fit(X)
    np.testing.assert_array_equal(res.labels, km.labels_)
    assert dbscan_grid(X.tolist(), [1.5], [2])[(1.5, 2)].labels.shape == (20,)


# --------------------------------------------------------------------------
# threads: results do not depend on how many


def _same_kmeans(a, b):
    assert a.keys() == b.keys()
    for key, res in a.items():
        other = b[key]
        np.testing.assert_array_equal(res.labels, other.labels)
        np.testing.assert_array_equal(res.cluster_centers, other.cluster_centers)  # exact
        assert res.inertia == other.inertia and res.n_iter == other.n_iter, key


@pytest.mark.skipif(not K.AVAILABLE, reason="row pieces are a compiled-kernel path")
@pytest.mark.parametrize("ks", [[7], [2, 3, 9]])
def test_kmeans_grid_one_k_shares_its_rows_among_threads(monkeypatch, ks):
    from segmint._threads import using_threads

    X = _replicated(n_base=600, r=10, d=9, seed=3)
    tols = [1e-3, 1e-5]
    # pieces of 256 rows and more (2048 by default), so that 6000 rows are cut
    monkeypatch.setattr(_grid, "_PIECE", 256)
    monkeypatch.setattr(_grid, "_FILTER_PIECE", 1024)
    with using_threads(1):
        one = kmeans_grid(X, ks, tols)
    cuts = []
    real = _grid._piece_rows

    def spy(n_rows, min_rows, parts):
        size = real(n_rows, min_rows, parts)
        cuts.append((n_rows, size))
        return size

    monkeypatch.setattr(_grid, "_piece_rows", spy)
    with using_threads(2):
        two = kmeans_grid(X, ks, tols)
    _same_kmeans(one, two)
    if len(ks) == 1:  # the other thread has no k to fit: it took pieces of the rows
        assert any(size < n_rows for n_rows, size in cuts)
    assert all(size % 128 == 0 for _, size in cuts)
    _check_kmeans(X, ks[:1], tols[:1])


def test_kmeans_grid_threads_default_to_segmint_threads(monkeypatch):
    seen = []
    real = _grid._run_pipeline

    def spy(*args):
        seen.append(args[-1])
        return real(*args)

    monkeypatch.setattr(_grid, "_run_pipeline", spy)
    X = _blobs(n=600, d=3)
    monkeypatch.setenv("SEGMINT_THREADS", "1")
    a = kmeans_grid(X, [2, 3, 4], [1e-4])
    monkeypatch.setenv("SEGMINT_THREADS", "3")
    b = kmeans_grid(X, [2, 3, 4], [1e-4])
    assert seen == [1, 3]
    _same_kmeans(a, b)


@pytest.mark.parametrize("make, eps, ms, kw", [
    (lambda: _blobs(n=4000, d=3, centers=6), [0.1, 0.2, 0.35], [3, 10, 40], {}),
    # 18 features: the brute algorithm, its windowed blocks
    (lambda: _blobs(n=3000, d=18, centers=5), [0.8, 1.2, 1.6], [3, 10, 40], {"block_rows": 256}),
])
def test_dbscan_grid_same_result_on_one_or_two_threads(monkeypatch, make, eps, ms, kw):
    from segmint._threads import using_threads

    X = make()
    with using_threads(1):
        one = dbscan_grid(X, eps, ms, **kw)
    with using_threads(2):
        two = dbscan_grid(X, eps, ms, **kw)
    assert one.keys() == two.keys()
    for key, res in one.items():
        np.testing.assert_array_equal(res.labels, two[key].labels)
        np.testing.assert_array_equal(res.core_sample_indices, two[key].core_sample_indices)
    # several clusters and noise somewhere: the equality is not between trivial labelings
    assert max(r.labels.max() for r in one.values()) >= 3
    assert any((r.labels == -1).any() for r in one.values())
    # the compiled labelling is the array one's, cluster numbers included
    monkeypatch.setattr(K, "AVAILABLE", False)
    plain = dbscan_grid(X, eps, ms, **kw)
    for key, res in plain.items():
        np.testing.assert_array_equal(res.labels, one[key].labels)
        np.testing.assert_array_equal(res.core_sample_indices, one[key].core_sample_indices)
        assert res.labels.dtype == one[key].labels.dtype == np.int64
        assert one[key].core_sample_indices.dtype == np.int64
    with using_threads(2):
        _check_dbscan(X[:1500], eps[:2], ms[:2], **kw)
