"""The tree embedding: a forest that learns its target puts customers with very different
targets far apart; the transformer contract; the clear errors.

umap-learn compiles its kernels on the first fit in a process (tens of seconds), so the fits
are few and small: one fitted embedding shared by the module, one Euclidean fit."""
from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.model_selection import cross_val_score
from sklearn.neighbors import KNeighborsClassifier

from segmint.errors import InputError
from segmint.prepare.tree_embedding import TreeEmbedding


def _customers(n: int = 300, seed: int = 0) -> pd.DataFrame:
    """Revenue is 40 per order plus noise; tenure and age have nothing to do with it."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"orders": rng.uniform(0, 10, n), "tenure": rng.normal(0, 1, n),
                          "age": rng.normal(0, 1, n)})
    frame["revenue"] = 40 * frame["orders"] + rng.normal(0, 4, n)
    return frame


@pytest.fixture(scope="module")
def fitted() -> tuple[pd.DataFrame, TreeEmbedding, np.ndarray]:
    # 270 customers and 30 copies of the first 30: identical customers are common in practice
    customers = _customers(n=270)
    frame = pd.concat([customers, customers.iloc[:30]], ignore_index=True)
    embedding = TreeEmbedding("revenue", seed=0)
    return frame, embedding, embedding.fit_transform(frame)


def _low_and_high(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """The customers in the bottom and the top fifth of revenue."""
    revenue = frame["revenue"].to_numpy()
    return revenue <= np.quantile(revenue, 0.2), revenue >= np.quantile(revenue, 0.8)


def _apart(coords: np.ndarray, low: np.ndarray, high: np.ndarray) -> tuple[float, float]:
    """(5-NN accuracy telling low from high by position, median low-high distance over the
    median distance between two low customers)."""
    both = low | high
    accuracy = cross_val_score(KNeighborsClassifier(5), coords[both], high[both], cv=5).mean()
    between = np.linalg.norm(coords[low][:, None] - coords[high][None], axis=2)
    within = np.linalg.norm(coords[low][:, None] - coords[low][None], axis=2)
    return float(accuracy), float(np.median(between) / np.median(within[np.triu_indices(low.sum(), 1)]))


def test_forest_learns_the_target_and_far_targets_land_apart(fitted):
    frame, embedding, coords = fitted
    assert embedding.oob_score_ > 0.8
    low, high = _low_and_high(frame)
    accuracy, ratio = _apart(coords, low, high)
    assert accuracy >= 0.95
    assert ratio > 2  # a low and a high customer: twice as far apart as two low customers


def test_the_transformer_contract(fitted):
    frame, embedding, coords = fitted
    assert coords.shape == (300, 2) and coords.dtype == np.float64
    np.testing.assert_array_equal(coords, embedding.embedding_)
    assert embedding.get_feature_names_out().tolist() == ["tree_umap_0", "tree_umap_1"]
    assert embedding.features_ == ["orders", "tenure", "age"]
    assert embedding.n_features_in_ == 4
    assert embedding.forest_.n_estimators == 100
    assert max(est.get_n_leaves() for est in embedding.forest_.estimators_) <= 64
    # customers with the same leaves in every tree share one place: the copies, at least
    assert len(embedding.leaves_) <= 270
    np.testing.assert_array_equal(coords[270:], coords[:30])
    # the fitted customers, in any order and without their target, are placed where the fit
    # put them
    order = np.random.default_rng(1).permutation(len(frame))
    placed = embedding.transform(frame.iloc[order].drop(columns="revenue"))
    np.testing.assert_array_equal(placed[np.argsort(order)], coords)
    assert embedding.describe().startswith("UMAP (hamming) of the leaves of a 100-tree forest "
                                           "(at most 64 leaves each) that predicts 'revenue'")
    cloned = clone(embedding)  # scikit-learn's contract: parameters only in __init__
    assert cloned.get_params() == embedding.get_params() and not hasattr(cloned, "embedding_")


def test_new_customers_land_among_fitted_customers_of_like_revenue(fitted):
    frame, embedding, coords = fitted
    new = _customers(n=100, seed=9)
    placed = embedding.transform(new)
    assert placed.shape == (100, 2) and np.isfinite(placed).all()
    # the mean revenue of each new customer's 5 nearest fitted customers in the embedding
    # follows the new customer's own revenue
    distances = np.linalg.norm(placed[:, None] - coords[None], axis=2)
    nearest = np.argsort(distances, axis=1)[:, :5]
    neighbours = frame["revenue"].to_numpy()[nearest].mean(axis=1)
    assert np.corrcoef(neighbours, new["revenue"])[0, 1] > 0.9


def test_euclidean_on_leaf_indices_reproduces_the_original_project():
    frame = _customers(n=200, seed=3)
    embedding = TreeEmbedding("revenue", n_estimators=30, max_leaf_nodes=None,
                              umap_metric="euclidean", n_components=3, seed=1)
    coords = embedding.fit_transform(frame)
    assert coords.shape == (200, 3)
    assert embedding.get_feature_names_out().tolist() == ["tree_umap_0", "tree_umap_1", "tree_umap_2"]
    assert embedding.umap_.metric == "euclidean"
    # fully grown trees: leaves of one or a few customers
    assert min(est.get_n_leaves() for est in embedding.forest_.estimators_) > 64


def test_a_forest_that_cannot_predict_says_so(caplog):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=120), "b": rng.normal(size=120),
                          "noise": rng.normal(size=120)})
    embedding = TreeEmbedding("noise", n_estimators=30, max_leaf_nodes=8)
    with caplog.at_level(logging.WARNING, logger="segmint.prepare.tree_embedding"):
        embedding.fit(frame)
    assert embedding.oob_score_ < 0.3
    assert "close to noise" in caplog.text and "close to noise" in embedding.describe()


def test_constant_or_absent_target_is_named():
    frame = _customers(n=50)
    frame["plan"] = 3.0
    with pytest.raises(InputError, match=r"column 'plan': .*target is constant \(every customer has 3\)"):
        TreeEmbedding("plan").fit(frame)
    with pytest.raises(InputError, match="column 'gross_revenue': .*not a column of the table"):
        TreeEmbedding("gross_revenue").fit(frame)
    with pytest.raises(InputError, match="column 'revenue': .*at least one column besides"):
        TreeEmbedding("revenue").fit(frame[["revenue"]])


def test_missing_values_are_the_callers_to_fill():
    frame = _customers(n=50)
    frame.loc[[3, 7], "revenue"] = np.nan
    with pytest.raises(InputError, match=r"column 'revenue': .*2 non-finite values.*rows 4, 8"):
        TreeEmbedding("revenue").fit(frame)
    frame = _customers(n=50)
    frame.loc[10, "tenure"] = np.inf
    with pytest.raises(InputError, match=r"column 'tenure': .*row 11"):
        TreeEmbedding("revenue").fit(frame)


@pytest.mark.parametrize(("param", "value", "rule"), [
    ("n_estimators", 0, "a whole number, at least 1"),
    ("max_leaf_nodes", 1, "None or a whole number, at least 2"),
    ("umap_metric", "cosine", "'hamming' or 'euclidean'"),
    ("n_components", 2.5, "a whole number, at least 1"),
])
def test_parameters_break_their_rules_before_any_work(param, value, rule):
    with pytest.raises(ValueError, match=f"TreeEmbedding's {param} must be {rule}; got {value!r}"):
        TreeEmbedding("revenue", **{param: value}).fit(_customers(n=50))


def test_transform_needs_the_fitted_features(fitted):
    frame, embedding, _ = fitted
    with pytest.raises(InputError, match="column 'tenure'"):
        embedding.transform(frame.drop(columns="tenure"))
