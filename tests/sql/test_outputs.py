"""segmint.sql.outputs: the ML.* tables, their schemas, and numbers computed in the test."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from _blobs import HParam, blobs, prepared_by_hand
from sklearn.metrics import davies_bouldin_score

from segmint.errors import InputError, ModelError, SpecError
from segmint.sql import outputs
from segmint.sql.kmeans import train

FEATURES = ["x", "y", "plan"]


@pytest.fixture(scope="module")
def table() -> pa.Table:
    return blobs(ids=True)


@pytest.fixture(scope="module")
def model(table):
    return train(table.select(FEATURES), {"model_type": "kmeans", "num_clusters": 3,
                                          "kmeans_init_method": "kmeans++"})


def test_evaluate_matches_sklearn_and_a_hand_mean(model, table):
    X = prepared_by_hand(table)
    d = np.linalg.norm(X[:, None, :] - model.estimator.cluster_centers_[None, :, :], axis=2)
    expected_db = davies_bouldin_score(X, d.argmin(axis=1))
    expected_msd = np.mean(d.min(axis=1) ** 2)
    for result in (outputs.evaluate(model), outputs.evaluate(model, table)):
        assert result.schema == outputs.SCHEMAS["evaluate"]
        row = result.to_pylist()[0]
        assert row["davies_bouldin_index"] == pytest.approx(expected_db)
        assert row["mean_squared_distance"] == pytest.approx(expected_msd)


def test_centroids_in_input_units_standardised_and_as_shares(model, table):
    labels = model.estimator.labels_
    x = table["x"].to_numpy(zero_copy_only=False).astype(float)
    x = np.where(np.isnan(x), np.nanmean(x), x)  # NULL x counted at the mean, as trained
    y = table["y"].to_numpy()
    plan = np.array(table["plan"].to_pylist(), dtype=object)
    result = outputs.centroids(model)
    assert result.schema == outputs.SCHEMAS["centroids"]
    rows = result.to_pylist()
    assert [(r["centroid_id"], r["feature"]) for r in rows[:3]] == [(1, "x"), (1, "y"), (1, "plan")]
    assert len(rows) == 3 * 3
    for r in rows:
        members = labels == r["centroid_id"] - 1
        assert r["geography_value"] is None
        if r["feature"] == "x":
            assert r["numerical_value"] == pytest.approx(x[members].mean())
            assert r["categorical_value"] == []
        elif r["feature"] == "y":
            assert r["numerical_value"] == pytest.approx(y[members].mean())
        else:
            assert r["numerical_value"] is None
            shares = {c["category"]: c["value"] for c in r["categorical_value"]}
            assert list(shares) == ["basic", "gold", "plus", None]
            for category, value in shares.items():
                assert value == pytest.approx(np.mean([p == category for p in plan[members]]))
    z = outputs.centroids(model, standardize=True).to_pylist()
    X = prepared_by_hand(table)
    first_x = next(r for r in z if r["centroid_id"] == 1 and r["feature"] == "x")
    assert first_x["numerical_value"] == pytest.approx(X[labels == 0, 0].mean())


def test_predict_nearest_centroids_and_inputs(model, table):
    result = outputs.predict(model, table)
    assert result.column_names == ["CENTROID_ID", "NEAREST_CENTROIDS_DISTANCE", "customer_id",
                                   "x", "y", "plan"]
    assert result.schema.field("NEAREST_CENTROIDS_DISTANCE").type == \
        outputs.SCHEMAS["predict"].field("NEAREST_CENTROIDS_DISTANCE").type
    assert result.schema.field("customer_id").type == pa.int32()  # inputs pass through unchanged
    assert result.select(["customer_id", "x", "y", "plan"]).equals(table)
    X = prepared_by_hand(table)
    d = np.linalg.norm(X[:, None, :] - model.estimator.cluster_centers_[None, :, :], axis=2)
    assert result["CENTROID_ID"].to_numpy().tolist() == (d.argmin(axis=1) + 1).tolist()
    for i, entries in enumerate(result["NEAREST_CENTROIDS_DISTANCE"].to_pylist()):
        assert len(entries) == 3  # min(k, 5)
        distances = [e["DISTANCE"] for e in entries]
        assert distances == sorted(distances)
        assert entries[0]["CENTROID_ID"] == result["CENTROID_ID"][i].as_py()
        np.testing.assert_allclose(distances, np.sort(d[i]))


def test_predict_passes_through_other_columns(model, table):
    given = pa.table({"raw": [f"r{i}" for i in range(table.num_rows)]})
    result = outputs.predict(model, table, passthrough=given)
    assert result.column_names == ["CENTROID_ID", "NEAREST_CENTROIDS_DISTANCE", "raw"]
    with pytest.raises(InputError, match="rows"):
        outputs.predict(model, table, passthrough=given.slice(0, 3))


def test_predict_lists_at_most_five_centroids(table):
    seven = train(table.select(FEATURES), {"model_type": "kmeans", "num_clusters": 7})
    entries = outputs.predict(seven, table)["NEAREST_CENTROIDS_DISTANCE"].to_pylist()
    assert {len(e) for e in entries} == {5}


def test_predict_refuses_missing_or_mistyped_features(model, table):
    with pytest.raises(InputError) as caught:
        outputs.predict(model, table.drop_columns(["y"]))
    assert caught.value.column == "y"
    mistyped = table.set_column(3, "plan", pa.array([1] * table.num_rows))
    with pytest.raises(InputError, match="trained on STRING"):
        outputs.predict(model, mistyped)
    clash = table.append_column("centroid_id", pa.array([0] * table.num_rows))
    with pytest.raises(InputError, match="named like an output column"):
        outputs.predict(model, clash)


def test_predict_imputes_nulls_like_training(model):
    row = pa.table({"x": pa.array([None], pa.float64()), "y": [10.0], "plan": ["gold"]})
    X = np.array([[0.0, (10.0 - model.preprocessor.mean_[1]) / model.preprocessor.stddev_[1],
                   0.0, 1.0, 0.0, 0.0]])
    expected = np.linalg.norm(model.estimator.cluster_centers_ - X, axis=1).argmin() + 1
    assert outputs.predict(model, row)["CENTROID_ID"].to_pylist() == [expected]


def test_detect_anomalies(model, table):
    far = pa.table({"customer_id": pa.array([900, 901], pa.int32()),
                    "x": [60.0, -40.0], "y": [60.0, -50.0], "plan": ["gold", "basic"]})
    result = outputs.detect_anomalies(model, pa.concat_tables([table, far]), contamination=0.05,
                                      training=table)
    assert result.column_names[:3] == ["is_anomaly", "normalized_distance", "centroid_id"]
    assert result.schema.field("is_anomaly").type == pa.bool_()
    flags = result["is_anomaly"].to_pylist()
    assert flags[-2:] == [True, True]
    assert sum(flags[:-2]) == pytest.approx(0.05 * table.num_rows, abs=2)
    # normalized distance: distance to a centroid over its cluster radius, the smallest of them
    X = prepared_by_hand(table)
    d = np.linalg.norm(X[:, None, :] - model.estimator.cluster_centers_[None, :, :], axis=2)
    ratio = d / model.estimator.cluster_radius_
    np.testing.assert_allclose(result["normalized_distance"].to_numpy()[:-2], ratio.min(axis=1))
    for bad in (0.6, -0.1):
        with pytest.raises(SpecError, match="contamination"):
            outputs.detect_anomalies(model, table, contamination=bad, training=table)


def test_training_info(model, table):
    result = outputs.training_info(model)
    assert result.schema == outputs.SCHEMAS["training_info"]
    rows = result.to_pylist()
    assert [r["iteration"] for r in rows] == list(range(model.estimator.n_iter_))
    assert all(r["training_run"] == 0 and r["eval_loss"] is None for r in rows)
    losses = [r["loss"] for r in rows]
    assert all(b <= a + 1e-12 for a, b in zip(losses, losses[1:], strict=False))
    assert sum(c["cluster_size"] for c in rows[-1]["cluster_info"]) == table.num_rows
    assert [c["centroid_id"] for c in rows[-1]["cluster_info"]] == [1, 2, 3]


def test_feature_info(model, table):
    result = outputs.feature_info(model)
    assert result.schema == outputs.SCHEMAS["feature_info"]
    x, plan = result.to_pylist()[0], result.to_pylist()[2]
    present = table["x"].drop_null().to_numpy()
    assert (x["input"], x["null_count"], x["category_count"]) == ("x", 1, None)
    assert x["min"] == present.min() and x["max"] == present.max()
    assert x["median"] == pytest.approx(np.median(present))
    assert x["stddev"] == pytest.approx(present.std(ddof=1))
    assert (plan["input"], plan["category_count"], plan["null_count"], plan["mean"]) == \
        ("plan", 3, 1, None)


def test_tuned_model_outputs_carry_trial_id(table):
    tuned = train(table.select(FEATURES), {"model_type": "kmeans",
                                           "num_clusters": HParam("range", [2, 4])})
    info = outputs.trial_info(tuned)
    assert info.schema == outputs.SCHEMAS["trial_info"]
    rows = info.to_pylist()
    assert [r["trial_id"] for r in rows] == [1, 2, 3]
    assert [r["hyperparameters"]["num_clusters"] for r in rows] == [2, 3, 4]
    best = min(rows, key=lambda r: r["hparam_tuning_evaluation_metrics"]["davies_bouldin_index"])
    assert [r["is_optimal"] for r in rows] == [r is best for r in rows]
    assert all(r["status"] == "SUCCEEDED" for r in rows)
    evaluated = outputs.evaluate(tuned)
    assert evaluated.column_names == ["trial_id", "davies_bouldin_index", "mean_squared_distance"]
    assert evaluated["trial_id"].to_pylist() == [best["trial_id"]]
    assert outputs.evaluate(tuned, trial=1)["trial_id"].to_pylist() == [1]
    cents = outputs.centroids(tuned)
    assert cents.column_names[0] == "trial_id"
    assert len(cents) == (2 + 3 + 4) * 3  # every trial, every centroid, every feature
    assert set(outputs.training_info(tuned)["trial_id"].to_pylist()) == {1, 2, 3}


def test_trial_info_needs_tuning(model):
    with pytest.raises(ModelError, match="hyper-parameter tuning"):
        outputs.trial_info(model)
