"""segmint.sql.kmeans: options, preprocessing and k-means checked against numbers computed here."""
from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from _blobs import HParam, blobs, prepared_by_hand
from sklearn.metrics import davies_bouldin_score

from segmint.errors import InputError, SpecError
from segmint.sql.kmeans import (
    BQKMeans,
    BQPreprocessor,
    from_state,
    kmeans_options,
    to_state,
    train,
)

# ---------------------------------------------------------------------------------- options

def test_options_defaults_and_case():
    opts = kmeans_options({"MODEL_TYPE": "KMeans", "Distance_Type": "cosine"}, n_rows=5000)
    assert opts.num_clusters == 4  # round(log10(5000)) = round(3.7)
    assert (opts.kmeans_init_method, opts.distance_type, opts.standardize_features) == \
        ("RANDOM", "COSINE", True)
    assert (opts.max_iterations, opts.early_stop, opts.min_rel_progress, opts.warm_start) == \
        (20, True, 0.01, False)
    assert opts.seed == 0 and not opts.hparam_tuning
    assert kmeans_options({"model_type": "kmeans"}, n_rows=50).num_clusters == 2  # log10(50)=1.7


@pytest.mark.parametrize("options, message", [
    ({"model_type": "kmeans", "l1_reg": 0.1}, "BigQuery ML has no option l1_reg for kmeans"),
    ({"model_type": "linear_reg"}, "segmint supports model_type 'kmeans'"),
    ({"num_clusters": 3}, "segmint supports model_type 'kmeans'"),
    ({"model_type": "kmeans", "num_clusters": 11}, "more than the 10 training rows"),
    ({"model_type": "kmeans", "num_clusters": 1}, "num_clusters must be in [2, 100]"),
    ({"model_type": "kmeans", "num_clusters": 2.5}, "must be an INT64"),
    ({"model_type": "kmeans", "distance_type": "manhattan"}, "distance_type must be one of"),
    ({"model_type": "kmeans", "kmeans_init_method": "custom"}, "needs kmeans_init_col"),
    ({"model_type": "kmeans", "kmeans_init_col": "c"}, "only with kmeans_init_method 'CUSTOM'"),
    ({"model_type": "kmeans", "hparam_tuning_objectives": ["silhouette"]}, "DAVIES_BOULDIN_INDEX"),
    ({"model_type": "kmeans", "num_clusters": 3, "num_trials": 4}, "HPARAM_RANGE"),
])
def test_options_errors(options, message):
    with pytest.raises(SpecError) as caught:
        kmeans_options(options, n_rows=10)
    assert message in str(caught.value)


def test_options_bigquery_only_are_accepted_with_a_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="segmint.sql.kmeans"):
        opts = kmeans_options({"model_type": "kmeans", "kms_key_name": "projects/p/keys/k",
                               "model_registry": "vertex_ai"}, n_rows=100)
    assert opts.ignored == {"kms_key_name": "projects/p/keys/k", "model_registry": "VERTEX_AI"}
    assert "kms_key_name" in caplog.text and "model_registry" in caplog.text


def test_options_hparams():
    opts = kmeans_options({"model_type": "kmeans", "num_clusters": HParam("range", [3, 6])}, n_rows=50)
    assert opts.hparam_tuning and opts.candidates == (3, 4, 5, 6) and opts.num_clusters is None
    opts = kmeans_options({"model_type": "kmeans", "num_clusters": HParam("candidates", [8, 3, 5]),
                           "num_trials": 2, "hparam_tuning_algorithm": "grid_search"}, n_rows=50)
    assert opts.candidates == (3, 8)  # two evenly spaced of the sorted 3, 5, 8: the ends
    opts = kmeans_options({"model_type": "kmeans", "num_trials": 3}, n_rows=50)
    assert opts.candidates == (2, 6, 10)  # BigQuery's default search space [2, 10]


# ---------------------------------------------------------------------------- preprocessing

def test_preprocessor_standardises_imputes_and_one_hot_encodes():
    table = blobs()
    frame = table.to_pandas()
    prep = BQPreprocessor(types={"x": "FLOAT64", "y": "FLOAT64", "plan": "STRING"}).fit(frame)
    np.testing.assert_allclose(prep.transform(frame), prepared_by_hand(table), atol=1e-12)
    assert prep.transform(frame)[5, 0] == 0.0  # NULL x -> the mean -> 0 once standardised
    assert prep.get_feature_names_out().tolist() == \
        ["x", "y", "plan=basic", "plan=gold", "plan=plus", "plan IS NULL"]
    unseen = prep.transform(pd.DataFrame({"x": [1.0], "y": [2.0], "plan": ["platinum"]}))
    assert unseen[0, 2:].tolist() == [0.0, 0.0, 0.0, 0.0]


def test_preprocessor_bool_constant_and_no_standardisation():
    frame = pd.DataFrame({"vip": [True, False, None, True], "n": [3, 3, 3, 3], "v": [1.0, 2.0, 3.0, None]})
    prep = BQPreprocessor(standardize=False, types={"vip": "BOOL", "n": "INT64", "v": "FLOAT64"})
    out = prep.fit_transform(frame)
    assert prep.get_feature_names_out().tolist() == ["vip=false", "vip=true", "vip IS NULL", "n", "v"]
    assert out[:, 3].tolist() == [3.0] * 4               # not standardised
    assert out[:, 4].tolist() == [1.0, 2.0, 3.0, 2.0]    # NULL -> mean 2.0
    constant = BQPreprocessor(types={"n": "INT64"}).fit_transform(frame[["n"]])
    assert constant[:, 0].tolist() == [0.0] * 4          # centred, not divided by stddev 0


def test_unsupported_type_names_the_column():
    table = pa.table({"x": [1.0, 2.0, 3.0], "tags": [[1], [2], [3]]})
    with pytest.raises(InputError) as caught:
        train(table, {"model_type": "kmeans", "num_clusters": 2})
    assert caught.value.column == "tags" and "not supported" in str(caught.value)


# ------------------------------------------------------------------------------- estimator

def test_centres_are_the_means_of_their_rows():
    X = prepared_by_hand(blobs())
    km = BQKMeans(n_clusters=3, random_state=0).fit(X)
    for c in range(3):
        np.testing.assert_allclose(km.cluster_centers_[c], X[km.labels_ == c].mean(axis=0))
    assert sorted(km.cluster_size_.tolist()) == [40, 40, 40]
    own = np.linalg.norm(X - km.cluster_centers_[km.labels_], axis=1)
    assert km.inertia_ == pytest.approx(np.sum(own ** 2))
    assert km.training_info_[-1]["loss"] == pytest.approx(np.mean(own ** 2))


def test_seed_reproduces_and_seeds_differ():
    X = prepared_by_hand(blobs())
    first = BQKMeans(n_clusters=6, random_state=3).fit(X).cluster_centers_
    again = BQKMeans(n_clusters=6, random_state=3).fit(X).cluster_centers_
    assert np.array_equal(first, again)
    others = [BQKMeans(n_clusters=6, random_state=s).fit(X).cluster_centers_ for s in range(6)]
    assert any(not np.array_equal(first, o) for o in others)


def test_early_stop_loss_and_max_iterations():
    X = prepared_by_hand(blobs())
    km = BQKMeans(n_clusters=3, init="k-means++", random_state=0).fit(X)
    assert km.converged_ and km.n_iter_ < 20
    losses = [r["loss"] for r in km.training_info_]
    assert all(b <= a + 1e-12 for a, b in zip(losses, losses[1:], strict=False))
    rng = np.random.default_rng(0)
    hard = rng.normal(size=(400, 5))  # no structure: many iterations without early stop
    slow = BQKMeans(n_clusters=8, early_stop=False, max_iter=3, random_state=0).fit(hard)
    assert slow.n_iter_ == 3 and [r["iteration"] for r in slow.training_info_] == [0, 1, 2]
    losses = [r["loss"] for r in slow.training_info_]
    assert losses[0] >= losses[1] >= losses[2]


def test_custom_init_uses_the_marked_rows():
    table = blobs()
    marked = np.zeros(table.num_rows, dtype=bool)
    marked[[0, 1, 41]] = True  # two starts in blob 1, one in blob 2, none in blob 3
    table = table.append_column("start", pa.array(marked))
    model = train(table, {"model_type": "kmeans", "kmeans_init_method": "CUSTOM",
                          "kmeans_init_col": "start", "max_iterations": 1})
    assert model.feature_types == {"x": "FLOAT64", "y": "FLOAT64", "plan": "STRING"}
    X = prepared_by_hand(table)
    start = X[marked]
    nearest = np.linalg.norm(X[:, None, :] - start[None, :, :], axis=2).argmin(axis=1)
    by_hand = np.array([X[nearest == c].mean(axis=0) for c in range(3)])
    np.testing.assert_allclose(model.estimator.cluster_centers_, by_hand, atol=1e-12)
    assert model.estimator.n_iter_ == 1


def test_cosine_distances():
    X = np.array([[1.0, 0.0], [2.0, 0.1], [0.0, 1.0], [0.1, 3.0], [-1.0, 0.0]])
    km = BQKMeans(n_clusters=2, distance="cosine", init=np.array([[1.0, 0.0], [0.0, 1.0]])).fit(X)
    unit = X / np.linalg.norm(X, axis=1, keepdims=True)
    centres = km.cluster_centers_ / np.linalg.norm(km.cluster_centers_, axis=1, keepdims=True)
    np.testing.assert_allclose(km.transform(X), 1.0 - unit @ centres.T, atol=1e-12)
    assert km.labels_[:4].tolist() == [0, 0, 1, 1]
    for c in range(2):  # a centroid is the mean of its rows' unit vectors
        np.testing.assert_allclose(km.cluster_centers_[c], unit[km.labels_ == c].mean(axis=0))


def test_empty_cluster_is_reseeded():
    X = np.array([[0.0], [0.1], [0.2], [10.0]])
    km = BQKMeans(n_clusters=2, init=np.array([[0.0], [100.0]]), max_iter=1).fit(X)
    assert km.cluster_centers_[1].tolist() == [10.0]  # the row farthest from its centre


# --------------------------------------------------------------------------------- training

def test_tuning_picks_the_lowest_davies_bouldin():
    table = blobs()
    options = {"model_type": "kmeans", "num_clusters": HParam("candidates", [2, 3, 4, 5]),
               "kmeans_init_method": "kmeans++"}
    model = train(table, options)
    X = prepared_by_hand(table)
    alone = {}
    for k in (2, 3, 4, 5):
        single = train(table, {"model_type": "kmeans", "num_clusters": k,
                               "kmeans_init_method": "kmeans++"})
        labels = single.estimator.predict(X)
        alone[k] = davies_bouldin_score(X, labels)
        assert single.davies_bouldin_index == pytest.approx(alone[k])
    assert [t.num_clusters for t in model.trials] == [2, 3, 4, 5]
    assert model.summary().startswith(f"4 trials (num_clusters 2, 3, 4, 5); optimal trial "
                                      f"{model.optimal_trial}: ")
    assert model.trial().num_clusters == min(alone, key=alone.get)
    for trial in model.trials:
        assert trial.davies_bouldin_index == pytest.approx(alone[trial.num_clusters])


def test_infeasible_trial():
    table = pa.table({"x": [0.0, 0.1, 5.0, 5.1]})
    model = train(table, {"model_type": "kmeans", "num_clusters": HParam("candidates", [2, 6])})
    assert [t.status for t in model.trials] == ["SUCCEEDED", "INFEASIBLE"]
    assert model.optimal_trial == 1


def test_state_round_trip_through_skops_and_json():
    import skops.io as sio

    table = blobs()
    model = train(table, {"model_type": "kmeans", "num_clusters": 3})
    pipelines, state = to_state(model)
    data = sio.dumps(pipelines["trial_1"])
    untrusted = sio.get_untrusted_types(data=data)
    assert set(untrusted) <= {"segmint.sql.kmeans.BQPreprocessor", "segmint.cluster.bqml_kmeans.BQKMeans"}
    loaded = sio.loads(data, trusted=untrusted)
    frame = table.to_pandas()
    assert np.array_equal(loaded.predict(frame), model.pipeline().predict(frame))
    again = from_state({"trial_1": loaded}, json.loads(json.dumps(state)))
    assert again.options == model.options and again.feature_stats == model.feature_stats
    assert again.davies_bouldin_index == model.davies_bouldin_index


def test_warm_start_continues_from_the_previous_centres():
    table = blobs()
    first = train(table, {"model_type": "kmeans", "num_clusters": 3, "max_iterations": 1})
    second = train(table, {"model_type": "kmeans", "warm_start": True}, warm_start_from=first)
    assert second.estimator.n_clusters == 3
    assert {r["training_run"] for r in second.training_info} == {0, 1}
    with pytest.raises(SpecError, match="warm_start needs an existing model"):
        train(table, {"model_type": "kmeans", "warm_start": True})
