"""k-prototypes (segmint.cluster.kprototypes)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score
from sklearn.pipeline import Pipeline

from segmint.cluster import ALGORITHMS, Algorithm, register_algorithm
from segmint.cluster.kprototypes import KPrototypes

INITS = ["huang", "cao", "k-means++"]


def planted(n_per: int = 100, k: int = 4, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """k well separated groups: numeric blobs 20 apart and a group-specific category."""
    rng = np.random.default_rng(seed)
    truth = np.repeat(np.arange(k), n_per)
    frame = pd.DataFrame({
        "spend": truth * 20.0 + rng.normal(0, 1, len(truth)),
        "plan": np.array(["basic", "plus", "gold", "vip", "team"])[truth],
        "visits": truth * -15.0 + rng.normal(0, 1, len(truth)),
        "region": rng.choice(["north", "south"], len(truth)),
    })
    return frame, truth


@pytest.mark.parametrize("init", INITS)
def test_planted_mixed_blobs_are_recovered(init):
    X, truth = planted()
    km = KPrototypes(n_clusters=4, init=init, n_init=3, random_state=0).fit(X)
    assert km.categorical_.tolist() == [1, 3]
    assert km.numeric_.tolist() == [0, 2]
    assert adjusted_rand_score(truth, km.labels_) == 1.0
    assert km.labels_.dtype == np.int64
    # each segment's mode of "plan" is its own plan
    plans = {km.categories_[0][km.categorical_codes_[c, 0]] for c in range(4)}
    assert plans == {"basic", "plus", "gold", "vip"}


def test_all_numeric_cost_matches_kmeans_inertia():
    rng = np.random.default_rng(1)
    X = np.vstack([rng.normal(c, 1.0, (150, 3)) for c in (0, 4, 8, 12)])
    km = KPrototypes(n_clusters=4, n_init=10, random_state=0).fit(X)
    assert km.gamma_ == 0.0 and km.categorical_.size == 0
    Xs = (X - X.mean(axis=0)) / X.std(axis=0)
    np.testing.assert_allclose(km.numeric_mean_, X.mean(axis=0))
    inertia = KMeans(n_clusters=4, n_init=10, random_state=0).fit(Xs).inertia_
    assert km.cost_ == pytest.approx(inertia, rel=0.01)


def test_all_categorical_is_k_modes():
    rng = np.random.default_rng(2)
    groups = np.repeat([0, 1, 2], 60)
    levels = np.array([["a", "b", "c"], ["x", "y", "z"], ["p", "q", "r"]])
    cols = {f"c{j}": levels[j][groups] for j in range(3)}
    noise = rng.random((len(groups), 3)) < 0.1  # 10% of cells flipped to another level
    for j in range(3):
        cols[f"c{j}"] = np.where(noise[:, j], levels[j][(groups + 1) % 3], cols[f"c{j}"])
    X = pd.DataFrame(cols)
    km = KPrototypes(n_clusters=3, random_state=0).fit(X)
    assert km.gamma_ == 1.0 and km.numeric_centers_.shape == (3, 0)
    assert adjusted_rand_score(groups, km.labels_) > 0.9
    # cost is the number of mismatches to the modes: the flipped cells
    assert km.cost_ == pytest.approx(float(noise.sum()), abs=5)


def test_gamma_auto_is_clustmixtype_lambdaest():
    X = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "c": ["a", "a", "a", "b"]})
    km = KPrototypes(n_clusters=2, n_init=1, random_state=0).fit(X)
    # scaled x has population variance 1, so R's var (ddof=1) is 4/3;
    # 1 - (0.75^2 + 0.25^2) = 0.375; 4/3 / 0.375 = 32/9
    assert km.gamma_ == pytest.approx(32 / 9)
    raw = KPrototypes(n_clusters=2, n_init=1, scale_numeric=False, random_state=0).fit(X)
    assert raw.gamma_ == pytest.approx((5 / 3) / 0.375)  # var(1, 2, 3, 4) = 5/3
    assert KPrototypes(n_clusters=2, gamma=0.5).fit(X).gamma_ == 0.5


@pytest.mark.parametrize("init", INITS)
def test_k15_initialises_on_3500_rows(init):
    # kmodes' "could not initialize" case: few levels, many clusters
    rng = np.random.default_rng(3)
    X = pd.DataFrame({
        "a": rng.choice(["x", "y"], 3500), "b": rng.choice(["u", "v", "w"], 3500),
        "n": rng.integers(0, 3, 3500).astype(float),
    })
    km = KPrototypes(n_clusters=15, init=init, n_init=2, max_iter=20, random_state=0).fit(X)
    assert km.numeric_centers_.shape == (15, 1) and km.categorical_codes_.shape == (15, 2)
    assert len(np.unique(km.labels_)) == 15


@pytest.mark.parametrize("init", INITS)
def test_exactly_k_distinct_rows_initialise(init):
    X = [[0.0, "a"], [0.0, "a"], [1.0, "a"], [0.0, "b"], [1.0, "b"], [1.0, "b"]]
    km = KPrototypes(n_clusters=4, categorical=[1], gamma=1.0, init=init, random_state=0).fit(X)
    assert len(np.unique(km.labels_)) == 4 and km.cost_ == 0.0
    # gamma 0 hides the categories: four distinct starts still exist, two segments are used
    km = KPrototypes(n_clusters=4, categorical=[1], gamma=0.0, init=init, random_state=0).fit(X)
    assert km.categorical_codes_.shape == (4, 1) and km.cost_ == 0.0


def test_seeded_runs_repeat_and_seeds_differ():
    X, _ = planted(n_per=60, k=5, seed=4)
    X["spend"] += np.random.default_rng(5).normal(0, 15, len(X))  # overlapping: starts matter
    fits = [KPrototypes(n_clusters=6, init="k-means++", n_init=1, random_state=s).fit(X)
            for s in (7, 7, 8, 9, 10)]
    assert np.array_equal(fits[0].labels_, fits[1].labels_)
    assert fits[0].cost_ == fits[1].cost_
    np.testing.assert_array_equal(fits[0].numeric_centers_, fits[1].numeric_centers_)
    assert len({f.cost_ for f in fits[1:]}) > 1


def test_predict_and_transform_agree_with_fit():
    X, _ = planted(seed=6)
    X["spend"] += np.random.default_rng(7).normal(0, 10, len(X))
    km = KPrototypes(n_clusters=5, n_init=2, random_state=0).fit(X)
    assert np.array_equal(km.predict(X), km.labels_)
    D = km.transform(X)
    assert D.shape == (len(X), 5) and D.dtype == np.float64
    assert np.array_equal(D.argmin(axis=1), km.predict(X))
    assert D.min(axis=1).sum() == pytest.approx(km.cost_, rel=1e-9)
    assert np.array_equal(km.fit_predict(X), km.labels_)


def test_unseen_level_matches_no_mode():
    X = pd.DataFrame({"x": [0.0, 0.0, 10.0, 10.0], "c": ["a", "a", "b", "b"]})
    km = KPrototypes(n_clusters=2, gamma=1.0, scale_numeric=False, random_state=0).fit(X)
    D = km.transform(pd.DataFrame({"x": [0.0], "c": ["new"]}))
    # x matches the first pair's mean exactly; the unseen level costs one mismatch everywhere
    assert sorted(D[0].tolist()) == [1.0, 101.0]


def test_missing_values_are_refused_with_their_place():
    X = pd.DataFrame({"x": [1.0, 2.0, np.nan, np.nan], "c": ["a", "b", "a", "a"]})
    with pytest.raises(ValueError, match="missing value in column 0, row 2"):
        KPrototypes(n_clusters=2).fit(X)
    X = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "c": ["a", None, "a", "a"]})
    with pytest.raises(ValueError, match="missing value in column 1, row 1"):
        KPrototypes(n_clusters=2).fit(X)
    fitted = KPrototypes(n_clusters=2, random_state=0).fit(X.fillna("b"))
    with pytest.raises(ValueError, match="missing value in column 1, row 0"):
        fitted.predict(pd.DataFrame({"x": [1.0], "c": [np.nan]}))


def test_fewer_distinct_rows_than_k_is_refused():
    X = [[1.0, "a"], [1.0, "a"], [2.0, "b"], [2.0, "b"]]
    with pytest.raises(ValueError, match="2 distinct rows, fewer than n_clusters=3"):
        KPrototypes(n_clusters=3, categorical=[1]).fit(X)


def test_parameters_are_checked_in_one_place():
    X = [[1.0], [2.0]]
    for params in ({"n_clusters": 0}, {"gamma": -1.0}, {"init": "random"}, {"n_init": 0},
                   {"max_iter": 0}, {"scale_numeric": "yes"}, {"categorical": "c"}):
        with pytest.raises(ValueError, match=next(iter(params))):
            KPrototypes(**params).fit(X)
    with pytest.raises(ValueError, match="out of range"):
        KPrototypes(n_clusters=1, categorical=[3]).fit(X)
    with pytest.raises(ValueError, match="column 0 is not numeric"):
        KPrototypes(n_clusters=1).fit(np.array([["a"], ["b"]], dtype=object))


def test_saved_and_loaded_in_the_safe_model_format(tmp_path):
    from segmint.runs._models import load_model, save_model

    X, _ = planted(seed=8)
    pipe = Pipeline([("cluster", KPrototypes(n_clusters=4, n_init=2, random_state=0))]).fit(X)
    register_algorithm(Algorithm("kprototypes_test", KPrototypes, {"n_clusters": [2]},
                                 k_param="n_clusters"))
    try:
        digest = save_model(pipe, tmp_path / "model.skops")
        loaded = load_model(tmp_path / "model.skops", sha256=digest)
    finally:
        ALGORITHMS.pop("kprototypes_test", None)
    model = loaded[-1]
    assert np.array_equal(loaded.predict(X), pipe.predict(X))
    assert model.categories_ == pipe[-1].categories_
    assert model.cost_ == pipe[-1].cost_ and model.gamma_ == pipe[-1].gamma_
