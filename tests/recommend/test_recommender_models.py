"""segmint.recommend.models: each model on data whose answer is planted or computed by hand."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from segmint.errors import InputError, ModelError, SpecError
from segmint.recommend.interactions import Interactions, read_ratings
from segmint.recommend.models import (
    ALS,
    BPR,
    EASE,
    BiasBaseline,
    Blend,
    FMClassifier,
    FMRegressor,
    GlobalMean,
    Popularity,
)


def _interactions(users: np.ndarray, items: np.ndarray, ratings: np.ndarray,
                  timestamps: np.ndarray | None = None,
                  scale: tuple[float, float] | None = None) -> Interactions:
    frame = pd.DataFrame({"user": users, "item": items, "rating": ratings})
    columns = None
    if timestamps is not None:
        frame["timestamp"] = timestamps
        columns = {"user": "user", "item": "item", "rating": "rating", "timestamp": "timestamp"}
    return read_ratings(frame, columns=columns, scale=scale)


def _low_rank(seed: int = 0, n_users: int = 200, n_items: int = 100, rank: int = 4,
              noise: float = 0.1, observed: float = 0.3) -> tuple[Interactions, np.ndarray,
                                                                  np.ndarray]:
    """Ratings 3 + <U_u, V_i> + noise on a random 30% of pairs; returns the interactions of a
    random 80% of those as train, and the held-out (code) pairs with their noiseless truth."""
    rng = np.random.default_rng(seed)
    U = rng.normal(0, 0.8, (n_users, rank))
    V = rng.normal(0, 0.8, (n_items, rank))
    truth = 3 + U @ V.T
    cells = np.flatnonzero(rng.random(n_users * n_items) < observed)
    u, i = np.divmod(cells, n_items)
    r = truth[u, i] + rng.normal(0, noise, len(u))
    inter = _interactions(u, i, r)  # ids are the codes: 0..n-1 sorted
    test = rng.random(len(u)) < 0.2
    train = inter.subset(~test)
    return train, np.column_stack([u[test], i[test]]), truth[u[test], i[test]]


def test_fm_regressor_recovers_held_out_ratings_of_known_factors() -> None:
    train, pairs, truth = _low_rank()
    model = FMRegressor(rank=4, n_iter=80, implicit_features=False, random_seed=1).fit(train)
    rmse = float(np.sqrt(np.mean((model.predict(pairs[:, 0], pairs[:, 1]) - truth) ** 2)))
    # the ratings spread ~1.3 around their mean (rank 4 x 0.8^4 = 1.6 variance); noise 0.1
    assert truth.std() > 1.0
    assert rmse < 0.25 * truth.std()
    again = FMRegressor(rank=4, n_iter=80, implicit_features=False, random_seed=1).fit(train)
    np.testing.assert_array_equal(again.predict(pairs[:, 0], pairs[:, 1]),
                                  model.predict(pairs[:, 0], pairs[:, 1]))


def test_fm_classifier_separates_planted_five_star_structure() -> None:
    # users and items in two groups each; a rating is 5 exactly when the groups match
    rng = np.random.default_rng(2)
    u, i = np.divmod(np.flatnonzero(rng.random(120 * 60) < 0.4), 60)
    five = (u % 2) == (i % 2)
    train_rows = rng.random(len(u)) < 0.8
    inter = _interactions(u, i, np.where(five, 5.0, rng.integers(1, 4, len(u))), scale=(1, 5))
    model = FMClassifier(rank=2, n_iter=60, implicit_features=False).fit(
        inter.subset(train_rows))
    p = model.predict(u[~train_rows], i[~train_rows])
    assert ((p > 0.5) == five[~train_rows]).mean() > 0.95
    assert model.positive_from_ == 5.0


def test_fm_kernel_predicts_as_myfm_itself() -> None:
    # the samples taken apart per user / item / day give myFM's own posterior mean
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="pkg_resources is deprecated")
        import myfm
    from segmint.recommend import _fm

    train, pairs, _ = _low_rank(n_users=60, n_items=40, observed=0.5)
    f = train.frame
    users, items = f["user"].to_numpy(), f["item"].to_numpy()
    rng = np.random.default_rng(0)
    day_codes = rng.integers(0, 5, len(f))
    ur, ug = _fm.entity_rows(60, (users, items, 40), [rng.random((60, 2))], 0)
    ir, ig = _fm.entity_rows(40, (items, users, 60), [], max(ug) + 1)
    ours = _fm.train(_fm.Blocks(ur, ir, ug, ig), users, items, day_codes, 5,
                     f["rating"].to_numpy(), task="regression", rank=3, n_iter=15, n_kept=10,
                     init_stdev=0.1, seed=7)
    import scipy.sparse as sp

    def day_matrix(codes: np.ndarray) -> sp.csr_matrix:
        return sp.csr_matrix((np.ones(len(codes)), (np.arange(len(codes)), codes)),
                             shape=(len(codes), 5))

    reference = myfm.MyFMRegressor(rank=3, random_seed=7)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference.fit(day_matrix(day_codes), f["rating"].to_numpy(),
                      X_rel=[myfm.RelationBlock(users, ur), myfm.RelationBlock(items, ir)],
                      n_iter=15, n_kept_samples=10, grouping=[max(ig) + 1] * 5 + ug + ig)
    test_days = rng.integers(0, 5, len(pairs))
    expected = reference.predict(day_matrix(test_days),
                                 [myfm.RelationBlock(pairs[:, 0], ur),
                                  myfm.RelationBlock(pairs[:, 1], ir)])
    got = _fm.pair_scores(ours, pairs[:, 0], pairs[:, 1], test_days).mean(axis=0)
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("model_class", [FMRegressor, FMClassifier])
def test_fm_vectors_rank_items_as_the_model_scores_them(model_class: type) -> None:
    rng = np.random.default_rng(3)
    u, i = np.divmod(np.flatnonzero(rng.random(50 * 30) < 0.5), 30)
    ratings = rng.integers(1, 6, len(u)).astype(float)
    stamps = pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 20, len(u)), "D")
    train = _interactions(u, i, ratings, stamps.to_numpy(), scale=(1, 5))
    segments = pd.DataFrame({"segment": [f"s{k % 3}" for k in range(50)]},
                            index=[str(k) for k in range(50)])
    model = model_class(rank=3, n_iter=20, dates=True, user_features=segments).fit(train)
    knn = model.user_vectors() @ model.item_vectors().T
    every = np.arange(50)
    scores = model.score_all(every)
    # the k-NN differs from the scores by a constant per user: the same order
    np.testing.assert_allclose(scores - knn, (scores - knn)[:, :1].repeat(30, axis=1),
                               atol=1e-9)
    assert all(np.array_equal(np.argsort(-knn[r], kind="stable"),
                              np.argsort(-scores[r], kind="stable")) for r in every)
    if model_class is FMRegressor:
        # and the model's own predictions (no clipping: compare the posterior mean itself)
        uu, ii = np.repeat(every, 30), np.tile(np.arange(30), 50)
        mean = model._sample_scores(uu, ii, None).mean(axis=0).reshape(50, 30)
        np.testing.assert_allclose(mean, scores, atol=1e-9)
        assert model.user_vectors().shape[1] == 3 * model.samples_.user_factors.shape[0] + 1


def test_ease_equals_its_closed_form_by_hand() -> None:
    # users: {a, b}, {a}; l2 = 1 -> G + I = [[3, 1], [1, 2]], P = [[2, -1], [-1, 3]] / 5
    # B_ab = -P_ab / P_bb = (1/5) / (3/5) = 1/3, B_ba = (1/5) / (2/5) = 1/2, diagonal 0
    train = _interactions(np.array([0, 0, 1]), np.array([0, 1, 0]), np.ones(3))
    model = EASE(l2=1.0).fit(train)
    np.testing.assert_allclose(model.weights_, [[0, 1 / 3], [1 / 2, 0]])
    # user 1 saw a only: its scores are row a of B
    np.testing.assert_allclose(model.score_all(np.array([1])), [[0, 1 / 3]])
    np.testing.assert_allclose(model.predict(np.array([0, 1]), np.array([0, 1])), [0.5, 1 / 3])


def test_ease_dropout_adds_a_count_proportional_penalty() -> None:
    rng = np.random.default_rng(4)
    u, i = np.divmod(np.flatnonzero(rng.random(40 * 6) < 0.5), 6)
    train = _interactions(u, i, np.ones(len(u)))
    X = train.matrix("binary").toarray()
    G = X.T @ X
    P = np.linalg.inv(G + np.diag(2.0 + 0.25 / 0.75 * np.diag(G)))
    B = np.eye(6) - P / np.diag(P)[None, :]
    np.testing.assert_allclose(EASE(l2=2.0, dropout=0.25).fit(train).weights_, B, atol=1e-12)


def test_popularity_ranks_by_counts_and_global_mean_is_the_mean() -> None:
    train = _interactions(np.array([0, 1, 2, 0, 1, 0]), np.array([2, 2, 2, 0, 0, 1]),
                          np.array([1.0, 2, 3, 4, 5, 3]), scale=(1, 5))
    pop = Popularity().fit(train)
    assert pop.counts_.tolist() == [2, 1, 3]
    assert np.argsort(-pop.score_all(np.array([1]))[0]).tolist() == [2, 0, 1]
    assert GlobalMean().fit(train).predict(np.array([0]), np.array([0])).tolist() == [3.0]


def test_blend_sums_per_user_standardised_scores() -> None:
    rng = np.random.default_rng(8)
    u, i = np.divmod(np.flatnonzero(rng.random(30 * 12) < 0.4), 12)
    train = _interactions(u, i, np.ones(len(u)))
    blend = Blend([EASE(l2=3.0), Popularity()], [1.0, 0.5]).fit(train)
    e, p = EASE(l2=3.0).fit(train).score_all(np.arange(30)), Popularity().fit(train).counts_

    def z(s: np.ndarray) -> np.ndarray:
        return (s - s.mean(axis=-1, keepdims=True)) / s.std(axis=-1, keepdims=True)

    np.testing.assert_allclose(blend.score_all(np.arange(30)), z(e) + 0.5 * z(p)[None, :])
    np.testing.assert_allclose(blend.predict(np.array([3, 3, 0]), np.array([1, 2, 1])),
                               (z(e) + 0.5 * z(p)[None, :])[[3, 3, 0], [1, 2, 1]])


def test_bias_baseline_recovers_planted_biases() -> None:
    rng = np.random.default_rng(5)
    bu, bi = rng.normal(0, 0.5, 80), rng.normal(0, 0.8, 40)
    u, i = np.divmod(np.arange(80 * 40), 40)
    train = _interactions(u, i, 3 + bu[u] + bi[i] + rng.normal(0, 0.05, len(u)))
    model = BiasBaseline(reg_user=0.1, reg_item=0.1, n_iter=30).fit(train)
    # biases are known up to a shared shift, which the mean absorbs: compare centred
    np.testing.assert_allclose(model.user_bias_ - model.user_bias_.mean(), bu - bu.mean(),
                               atol=0.03)
    np.testing.assert_allclose(model.item_bias_ - model.item_bias_.mean(), bi - bi.mean(),
                               atol=0.03)


@pytest.mark.parametrize("make", [lambda: ALS(factors=8, iterations=5, random_state=3),
                                  lambda: BPR(factors=8, iterations=20, random_state=3)])
def test_implicit_models_repeat_with_a_seed(make: object) -> None:
    rng = np.random.default_rng(6)
    u, i = np.divmod(np.flatnonzero(rng.random(60 * 40) < 0.2), 40)
    train = _interactions(u, i, np.ones(len(u)))
    first, second = make().fit(train), make().fit(train)  # type: ignore[operator]
    np.testing.assert_array_equal(first.item_vectors(), second.item_vectors())
    np.testing.assert_array_equal(first.score_all(np.arange(60)), second.score_all(np.arange(60)))
    np.testing.assert_allclose(first.predict(np.array([0, 5]), np.array([1, 2])),
                               first.score_all(np.array([0, 5]))[[0, 1], [1, 2]], rtol=1e-12)


def test_bpr_vectors_are_the_seeds_shape() -> None:
    rng = np.random.default_rng(7)
    u, i = np.divmod(np.flatnonzero(rng.random(30 * 20) < 0.3), 20)
    model = BPR(factors=4, iterations=5).fit(_interactions(u, i, np.ones(len(u))))
    assert model.user_vectors().shape == (30, 5) and model.item_vectors().shape == (20, 5)
    np.testing.assert_array_equal(model.user_vectors()[:, -1], 1.0)  # [V_u, 1]


def test_unknown_codes_single_class_bad_parameters_and_unfitted_are_clear_errors() -> None:
    train = _interactions(np.array([0, 1, 1]), np.array([0, 0, 1]), np.array([5.0, 5, 5]),
                          scale=(1, 5))
    pop = Popularity().fit(train)
    with pytest.raises(InputError, match="user code 7 is unknown: the model was trained on 2"):
        pop.predict(np.array([0, 7]), np.array([0, 0]))
    with pytest.raises(InputError, match="item code -1 is unknown"):
        pop.predict(np.array([0]), np.array([-1]))
    with pytest.raises(InputError, match="1-d array of integers"):
        pop.score_all(np.array([0.5]))
    with pytest.raises(InputError, match="needs both classes: all 3 training rows are positive"):
        FMClassifier(n_iter=5).fit(train)
    with pytest.raises(SpecError, match="EASE: The 'dropout' parameter"):
        EASE(dropout=1.0).fit(train)
    with pytest.raises(SpecError, match="n_kept_samples"):
        FMRegressor(n_iter=5, n_kept_samples=10).fit(train)
    with pytest.raises(ModelError, match="not fitted"):
        EASE().score_all(np.array([0]))
    with pytest.raises(InputError, match="empty training set"):
        GlobalMean().fit(train.subset(np.zeros(3, dtype=bool)))


def test_myfm_sampler_names_exist_in_the_tested_version() -> None:
    import importlib.metadata

    from segmint.recommend import _fm

    assert importlib.metadata.version("myfm").startswith("0.4.")
    assert callable(_fm.create_train_fm) and hasattr(_fm.ConfigBuilder(), "set_group_index")
