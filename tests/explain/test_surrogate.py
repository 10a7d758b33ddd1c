"""The LightGBM surrogate: it finds the column a segmentation was built on, says how well it
predicts, and leaves outliers out."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from segmint.errors import InputError
from segmint.explain import SurrogateExplanation, explain_segments
from segmint.explain.surrogate import _per_class


def _customers(n: int = 2_000, seed: int = 0) -> pd.DataFrame:
    """Five columns of noise around the one a test builds segments on: numbers with NaN, a
    0/1 column, and a text categorical with missing values."""
    rng = np.random.default_rng(seed)
    table = pd.DataFrame({
        "spend": rng.gamma(2.0, 50.0, n),
        "age": rng.integers(18, 90, n).astype("float64"),
        "visits": rng.poisson(5, n).astype("float64"),
        "newsletter": rng.integers(0, 2, n),
        "channel": pd.Series(rng.choice(["web", "store", "phone"], n), dtype="string"),
        "job": pd.Series(rng.choice(["admin.", "blue-collar", "student", "retired"], n), dtype="string"),
    })
    table.loc[rng.random(n) < 0.1, "spend"] = np.nan
    table.loc[rng.random(n) < 0.1, "visits"] = np.nan
    table.loc[rng.random(n) < 0.1, "channel"] = pd.NA
    table.loc[rng.random(n) < 0.05, "job"] = pd.NA
    return table


TYPES = {"spend": "numeric", "age": "numeric", "visits": "numeric", "newsletter": "binary",
         "channel": "categorical", "job": "categorical"}


def test_segments_cut_from_one_number_are_explained_by_it():
    table = _customers()
    labels = pd.qcut(table["age"], 4, labels=False, duplicates="drop").to_numpy()
    ex = explain_segments(table, labels, types=TYPES)
    assert isinstance(ex, SurrogateExplanation)
    assert ex.accuracy > 0.95 and ex.balanced_accuracy > 0.95
    assert ex.importance["feature"].iloc[0] == "age"
    for segment in range(4):
        assert ex.top_features(segment, n=1) == ["age"]
    assert "warning" not in ex.note and "accuracy" in ex.note


def test_segments_of_a_categorical_level_are_explained_by_it():
    table = _customers(seed=1)
    # students (missing jobs are not students) against everyone else
    labels = (table["job"] == "student").fillna(False).to_numpy().astype(int)
    ex = explain_segments(table, labels, types=TYPES)
    assert ex.accuracy > 0.95
    assert ex.top_features(0, n=1) == ["job"] and ex.top_features(1, n=1) == ["job"]
    # being a student pushes customers into segment 1: the signed mean is positive
    row = ex.by_segment.query("segment == 1 and feature == 'job'")
    assert row["mean_shap"].item() > 0 and row["rank"].item() == 1


def test_a_segment_built_on_missing_values_is_found():
    table = _customers(seed=2)
    labels = table["visits"].isna().to_numpy().astype(int)  # LightGBM sends NaN its own way
    ex = explain_segments(table, labels, types=TYPES)
    assert ex.accuracy > 0.95 and ex.top_features(1, n=1) == ["visits"]


def test_random_labels_are_not_predicted_and_the_note_warns():
    table = _customers(seed=3)
    labels = np.random.default_rng(7).integers(0, 4, len(table))
    ex = explain_segments(table, labels, types=TYPES)
    # four balanced segments the columns know nothing of: chance is a quarter
    assert ex.accuracy < 0.5 and ex.balanced_accuracy < 0.5
    assert ex.note.startswith("warning") and "explain little" in ex.note


def test_holdout_scores_agree_with_the_recalls():
    table = _customers(seed=4)
    labels = pd.qcut(table["spend"].fillna(0), 3, labels=False).to_numpy()
    ex = explain_segments(table, labels, types=TYPES, holdout=0.25)
    # the holdout takes a quarter of each segment (rounded): accuracy is the recalls weighted so
    held = {s: round(0.25 * int((labels == s).sum())) for s in range(3)}
    weighted = sum(ex.recall_by_segment[s] * held[s] for s in held) / sum(held.values())
    assert ex.accuracy == pytest.approx(weighted)
    assert ex.balanced_accuracy == pytest.approx(np.mean(list(ex.recall_by_segment.values())))
    assert set(ex.recall_by_segment) == {0, 1, 2}


def test_outliers_are_left_out_of_the_fit():
    table = _customers(seed=5)
    labels = pd.qcut(table["age"], 3, labels=False).to_numpy().copy()
    outliers = np.random.default_rng(0).random(len(table)) < 0.1
    labels[outliers] = -1
    ex = explain_segments(table, labels, types=TYPES)
    assert ex.n_customers == int((~outliers).sum())
    assert set(ex.recall_by_segment) == {0, 1, 2}
    assert set(ex.by_segment["segment"]) == {0, 1, 2}
    assert f"{int(outliers.sum()):,} outliers" in ex.note
    assert ex.accuracy > 0.95  # the outliers, spread over every age, would cost accuracy


def test_one_segment_is_an_error():
    table = _customers(n=300)
    labels = np.zeros(len(table), dtype=int)
    labels[:10] = -1
    with pytest.raises(InputError, match="nothing to explain"):
        explain_segments(table, labels, types=TYPES)


def test_bad_arguments_name_the_parameter():
    table = _customers(n=300)
    with pytest.raises(ValueError, match="holdout"):
        explain_segments(table, np.zeros(300, dtype=int), holdout=1.5)
    with pytest.raises(ValueError, match="labels"):
        explain_segments(table, np.zeros(10, dtype=int))


def test_large_tables_are_sampled_by_segment_and_the_note_says_so():
    table = _customers(n=3_000, seed=6)
    labels = pd.qcut(table["age"], 3, labels=False).to_numpy()
    ex = explain_segments(table, labels, types=TYPES, max_rows=1_000)
    # a third of each segment, rounded
    expected = sum(round(int((labels == s).sum()) / 3) for s in range(3))
    assert ex.n_customers == expected
    assert f"sample of {expected:,} of the 3,000 clustered customers" in ex.note


def test_same_seed_same_numbers_and_frames_are_plain():
    table = _customers(n=800, seed=8)
    labels = pd.qcut(table["age"], 3, labels=False).to_numpy()
    first = explain_segments(table, labels, types=TYPES, seed=3)
    second = explain_segments(table, labels, types=TYPES, seed=3)
    pd.testing.assert_frame_equal(first.importance, second.importance)
    assert first.accuracy == second.accuracy
    frames = first.to_frames()
    assert set(frames) == {"summary", "recall", "importance", "by_segment"}
    assert all(type(frame) is pd.DataFrame for frame in frames.values())
    assert list(frames["importance"].columns) == ["feature", "mean_abs_shap", "gain"]
    assert list(frames["by_segment"].columns) == ["segment", "feature", "mean_abs_shap", "mean_shap", "rank"]
    assert frames["importance"]["gain"].sum() == pytest.approx(1.0)
    # six columns for each of three segments, ranks 1..6 in each
    assert len(frames["by_segment"]) == 18
    assert sorted(frames["by_segment"].query("segment == 0")["rank"]) == [1, 2, 3, 4, 5, 6]


def test_the_same_numbers_on_one_or_two_lightgbm_threads(monkeypatch):
    from segmint.explain import surrogate

    monkeypatch.setattr(surrogate, "THREADED_ROWS", 100)  # the fit takes n_jobs too
    table = _customers(n=1_500, seed=9)
    labels = pd.qcut(table["spend"].fillna(0), 4, labels=False).to_numpy()
    one = explain_segments(table, labels, types=TYPES, seed=2, n_jobs=1)
    two = explain_segments(table, labels, types=TYPES, seed=2, n_jobs=2)
    for name, frame in one.to_frames().items():
        pd.testing.assert_frame_equal(frame, two.to_frames()[name], check_exact=True, obj=name)
    assert one.top_features(0, n=2) == two.top_features(0, n=2)


def test_shap_outputs_of_every_shape_read_the_same():
    rng = np.random.default_rng(0)
    phi = rng.normal(size=(5, 4, 3))  # customers, features, classes
    as_list = [phi[:, :, k] for k in range(3)]  # shap before 0.45
    assert np.array_equal(_per_class(as_list, 3, 4), phi)
    assert np.array_equal(_per_class(phi, 3, 4), phi)
    assert np.array_equal(_per_class(phi.transpose(0, 2, 1), 3, 4), phi)
    one_output = rng.normal(size=(5, 4))  # LightGBM's binary model: the second class only
    two = _per_class(one_output, 2, 4)
    assert np.array_equal(two[:, :, 1], one_output) and np.array_equal(two[:, :, 0], -one_output)
    assert np.array_equal(_per_class([one_output], 2, 4), two)


@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning", "ignore::UserWarning")
@pytest.mark.parametrize("n_segments", [2, 4])
def test_lightgbm_contributions_are_shap_tree_explainer_values(n_segments):
    # segmint reads TreeSHAP from LightGBM's pred_contrib (importing shap cost ~2 s a run);
    # shap's TreeExplainer is the reference, on a mixed table with missing values
    import shap

    from segmint.explain.surrogate import _fit, _model_frame, _n_trees, _tree_shap

    table = _customers(600, seed=3)
    y = (np.nan_to_num(table["spend"].to_numpy(), nan=80.0) // 60).clip(0, n_segments - 1)
    y = y.astype(np.int64)
    frame = _model_frame(table, TYPES)
    rows = np.ones(len(y), dtype=bool)
    model = _fit(frame, y, rows, ~rows, seed=0)
    ours = _tree_shap(model, frame, n_segments, len(frame.attrs["columns"]))
    values = shap.TreeExplainer(model.booster_).shap_values(frame, tree_limit=_n_trees(model))
    theirs = _per_class(values, n_segments, len(frame.attrs["columns"]))
    assert ours.shape == (600, len(frame.attrs["columns"]), n_segments)
    np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-12)
    assert np.abs(ours).max() > 0.1  # the segments are cut from spend: its values are large
