"""segmint.recommend.metrics: hand-computed tiny cases, and the ranking measures against Microsoft
Recommenders' python_evaluation steps written out in pandas."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from segmint.errors import InputError
from segmint.recommend.interactions import Interactions, read_ratings
from segmint.recommend.metrics import (
    all_ones_baseline,
    classification_metrics,
    global_mean_guess,
    positive_labels,
    ranking_metrics,
    rating_metrics,
)


def _interactions(pairs: list[tuple[int, int]], n_users: int, n_items: int) -> Interactions:
    frame = pd.DataFrame({"user": [u for u, _ in pairs], "item": [i for _, i in pairs],
                          "rating": 1.0, "timestamp": pd.NaT}).astype({"user": "int64", "item": "int64",
                                                                      "timestamp": "datetime64[ns]"})
    return Interactions(frame=frame, users=pd.Index([f"u{u}" for u in range(n_users)], dtype=object),
                        items=pd.Index([f"i{i}" for i in range(n_items)], dtype=object), kind="implicit")


def _recs(lists: dict[int, list[int]]) -> pd.DataFrame:
    rows = [(u, item, r) for u, items in lists.items() for r, item in enumerate(items, start=1)]
    return pd.DataFrame(rows, columns=["user", "item", "rank"])


# --------------------------------------------------------------------------- ranking, by hand

def test_ranking_by_hand_two_users_five_items():
    # test: u0 -> {0, 2, 3, 4}; u1 -> {1}; u2 -> {3} but u2 gets no recommendations.
    # catalogue: 6 items. k = 3. u3 has recommendations but no test items.
    test = _interactions([(0, 0), (0, 2), (0, 3), (0, 4), (1, 1), (2, 3)], n_users=4, n_items=6)
    recs = _recs({0: [2, 1, 0, 3], 1: [0, 3, 1], 3: [4]})
    m = ranking_metrics(recs, test, k=3)
    # top 3: u0 [2, 1, 0] hits at places 1 and 3; u1 [0, 3, 1] hits at place 3
    assert m["users"] == 2 and m["test_users"] == 3 and m["users_without_recommendations"] == 1
    assert m["precision_at_k"] == pytest.approx((2 / 3 + 1 / 3) / 2)
    assert m["recall_at_k"] == pytest.approx((2 / 4 + 1 / 1) / 2)
    ln = math.log
    ndcg_u0 = (1 / ln(2) + 1 / ln(4)) / (1 / ln(2) + 1 / ln(3) + 1 / ln(4))  # ideal: min(4, 3) places
    ndcg_u1 = (1 / ln(4)) / (1 / ln(2))
    ndcg_u2 = 0.0  # a test user without recommendations counts in nDCG's mean, as theirs
    assert m["ndcg_at_k"] == pytest.approx((ndcg_u0 + ndcg_u1 + ndcg_u2) / 3)
    # average precision: u0 (1/1 + 2/3), u1 (1/3)
    assert m["map_at_k"] == pytest.approx(((1 + 2 / 3) / min(4, 3) + (1 / 3) / 1) / 2)
    assert m["map"] == pytest.approx(((1 + 2 / 3) / 4 + (1 / 3) / 1) / 2)
    assert m["hit_rate_at_k"] == 1.0
    # top-3 items of every list: {2, 1, 0} | {0, 3, 1} | {4} = 5 of 6
    assert m["catalog_coverage"] == pytest.approx(5 / 6)
    assert ranking_metrics(recs, test, k=3, n_items=5)["catalog_coverage"] == pytest.approx(1.0)


def test_ranking_log2_ndcg_is_the_same_and_perfect_lists_score_one():
    test = _interactions([(0, 0), (0, 1), (1, 2)], n_users=2, n_items=4)
    perfect = ranking_metrics(_recs({0: [1, 0, 3], 1: [2, 0, 1]}), test, k=3)
    assert perfect["ndcg_at_k"] == pytest.approx(1.0)
    assert perfect["map_at_k"] == perfect["map"] == pytest.approx(1.0)
    assert perfect["recall_at_k"] == 1.0 and perfect["hit_rate_at_k"] == 1.0
    assert perfect["precision_at_k"] == pytest.approx((2 / 3 + 1 / 3) / 2)
    # one hit at place 2 for u1: 1/log2(3) over 1/log2(2), whatever the log's base
    m = ranking_metrics(_recs({0: [1, 0], 1: [3, 2]}), test, k=2)
    assert m["ndcg_at_k"] == pytest.approx((1.0 + 1 / math.log2(3)) / 2)


def test_ranking_uses_rank_order_and_cuts_at_k():
    test = _interactions([(0, 3)], n_users=1, n_items=5)
    shuffled = pd.DataFrame({"user": [0, 0, 0, 0], "item": [3, 1, 2, 0], "rank": [4, 2, 1, 3]})
    assert ranking_metrics(shuffled, test, k=3)["hit_rate_at_k"] == 0.0  # item 3 is 4th
    assert ranking_metrics(shuffled, test, k=4)["ndcg_at_k"] == pytest.approx(
        (1 / math.log(5)) / (1 / math.log(2)))


def test_ranking_takes_ids_as_the_top_n_table_writes_them():
    inter = read_ratings(pd.DataFrame({"user": ["a", "a", "b"], "item": ["x", "y", "x"], "rating": 4}))
    table = pd.DataFrame({"customer": ["a", "b"], "rank": [1, 1], "item": ["y", "x"], "score": [2.0, 1.0]})
    by_id = ranking_metrics(table, inter, k=1)
    by_code = ranking_metrics(pd.DataFrame({"user": [0, 1], "item": [1, 0], "rank": [1, 1]}), inter, k=1)
    assert by_id == by_code and by_id["precision_at_k"] == 1.0


def test_ranking_bad_input():
    test = _interactions([(0, 0)], n_users=1, n_items=2)
    with pytest.raises(InputError) as err:
        ranking_metrics(pd.DataFrame({"user": [0, 0], "item": [1, 1], "rank": [1, 2]}), test)
    assert (err.value.column, err.value.row) == ("item", 2)
    with pytest.raises(InputError, match="not a item code"):
        ranking_metrics(pd.DataFrame({"user": [0], "item": [7], "rank": [1]}), test)
    with pytest.raises(InputError, match="rank column"):
        ranking_metrics(pd.DataFrame({"user": [0], "item": [1]}), test)
    with pytest.raises(InputError, match="no user of the test set has recommendations"):
        ranking_metrics(pd.DataFrame({"user": pd.Series([], dtype="int64"),
                                      "item": pd.Series([], dtype="int64"), "rank": []}), test)
    with pytest.raises(InputError, match="k must be a positive integer"):
        ranking_metrics(_recs({0: [1]}), test, k=0)


# --------------------------------------------------------------------------- against Recommenders

def _recommenders_reference(true: pd.DataFrame, pred: pd.DataFrame, k: int) -> dict[str, float]:
    """python_evaluation's precision_at_k, recall_at_k, ndcg_at_k (binary, loge), map_at_k and
    map, their steps written out (merge_ranking_true_pred with relevancy_method='top_k')."""
    common = set(true["userID"]) & set(pred["userID"])
    true_c, pred_c = true[true["userID"].isin(common)], pred[pred["userID"].isin(common)]
    n_users = len(common)
    top = (pred_c.sort_values(["userID", "prediction"], ascending=[True, False])
           .groupby("userID", as_index=False).head(k).reset_index(drop=True))
    top["rank"] = top.groupby("userID", sort=False).cumcount() + 1
    df_hit = pd.merge(top, true_c, on=["userID", "itemID"])[["userID", "itemID", "rank"]]
    counts = pd.merge(df_hit.groupby("userID").size().rename("hit").reset_index(),
                      true_c.groupby("userID").size().rename("actual").reset_index(), on="userID")
    out = {"precision_at_k": (counts["hit"] / k).sum() / n_users,
           "recall_at_k": (counts["hit"] / counts["actual"]).sum() / n_users}
    # nDCG: hits merged back with the whole truth (outer), ideal over the truth's top k
    dcg = df_hit.merge(pred, on=["userID", "itemID"]).merge(true, on=["userID", "itemID"], how="outer",
                                                            suffixes=("_left", None))
    dcg["rel"] = 1
    dcg["dcg"] = dcg["rel"] / np.log(1 + dcg["rank"])
    idcg = dcg.sort_values(["userID", "rating"], ascending=False)
    idcg["irank"] = idcg.groupby("userID", as_index=False, sort=False)["rating"].rank("first",
                                                                                   ascending=False)
    idcg["idcg"] = idcg["rel"] / np.log(1 + idcg["irank"])
    user = dcg.groupby("userID", as_index=False, sort=False).agg({"dcg": "sum"})
    user = user.merge(idcg.groupby("userID", as_index=False, sort=False).head(k)
                      .groupby("userID", as_index=False, sort=False).agg({"idcg": "sum"}), on="userID")
    out["ndcg_at_k"] = (user["dcg"] / user["idcg"]).mean()
    rr = df_hit.copy()
    rr["rr"] = (rr.groupby("userID").cumcount() + 1) / rr["rank"]
    rr = rr.groupby("userID").agg({"rr": "sum"}).reset_index().merge(counts, on="userID")
    out["map_at_k"] = (rr["rr"] / rr["actual"].apply(lambda x: min(x, k))).sum() / n_users
    out["map"] = (rr["rr"] / rr["actual"]).sum() / n_users
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ranking_equals_recommenders_python_evaluation(seed):
    rng = np.random.default_rng(seed)
    n_users, n_items, k = 40, 60, 10
    pairs = sorted({(int(u), int(i)) for u, i in zip(rng.integers(0, n_users, 500),
                                                      rng.integers(0, n_items, 500), strict=True)})
    test = _interactions(pairs, n_users, n_items)
    test.frame["rating"] = rng.integers(1, 6, len(pairs)).astype(float)  # binary relevance: unused
    users = [u for u in range(n_users) if u % 7]  # some test users without recommendations
    scores = rng.random((len(users), n_items))
    pred = pd.DataFrame({"userID": np.repeat(users, n_items),
                         "itemID": np.tile(np.arange(n_items), len(users)), "prediction": scores.ravel()})
    true = test.frame.rename(columns={"user": "userID", "item": "itemID"})[["userID", "itemID", "rating"]]
    expected = _recommenders_reference(true, pred, k)
    recs = pred.sort_values(["userID", "prediction"], ascending=[True, False])
    recs = recs.assign(rank=recs.groupby("userID").cumcount() + 1).rename(
        columns={"userID": "user", "itemID": "item"})
    got = ranking_metrics(recs[["user", "item", "rank"]], test, k=k)
    for name, value in expected.items():
        assert got[name] == pytest.approx(value, rel=1e-12), name


# --------------------------------------------------------------------------- rating error

def test_rating_metrics_by_hand():
    m = rating_metrics([4, 2, 5, 1], [3.5, 2, 3, 2])
    # errors -0.5, 0, -2, 1: squares 0.25 + 0 + 4 + 1 = 5.25
    assert m["mse"] == pytest.approx(5.25 / 4)
    assert m["rmse"] == pytest.approx(math.sqrt(5.25 / 4))
    assert m["mae"] == pytest.approx(3.5 / 4)
    with pytest.raises(InputError, match="they must pair up"):
        rating_metrics([1, 2], [1])
    with pytest.raises(InputError) as err:
        rating_metrics([1, 2], [1, float("nan")])
    assert (err.value.column, err.value.row) == ("y_pred", 2)


def test_global_mean_guess():
    inter = read_ratings(pd.DataFrame({"user": [1, 1, 2, 2], "item": [1, 2, 1, 2],
                                       "rating": [5, 4, 3, 1]}))
    train, test = inter.subset([0, 1, 2]), inter.subset([3])
    m = global_mean_guess(train, test)
    assert m["guess"] == pytest.approx(4.0) and m["mse"] == pytest.approx(9.0)
    with pytest.raises(InputError, match="the test set is empty"):
        global_mean_guess(train, inter.subset(np.zeros(4, dtype=bool)))


# --------------------------------------------------------------------------- classification

def test_classification_by_hand_and_all_ones_baseline():
    ratings = [5, 4, 5, 3, 5, 1, 2, 5]
    y = positive_labels(ratings)
    assert y.tolist() == [1, 0, 1, 0, 1, 0, 0, 1]
    pred = [1, 1, 0, 0, 1, 0, 1, 1]
    m = classification_metrics(y, pred, labels=("not 5", "5 stars"))
    # tp 3 (rows 1, 5, 8), fp 2 (rows 2, 7), fn 1 (row 3), tn 2 (rows 4, 6)
    assert m["confusion"].to_numpy().tolist() == [[2, 2], [1, 3]]
    assert list(m["confusion"].index) == ["not 5", "5 stars"] and m["confusion"].index.name == "actual"
    assert m["confusion"].columns.name == "predicted"
    assert m["accuracy"] == pytest.approx(5 / 8)
    assert m["precision"] == pytest.approx(3 / 5) and m["recall"] == pytest.approx(3 / 4)
    assert m["f1"] == pytest.approx(2 * (3 / 5) * (3 / 4) / (3 / 5 + 3 / 4))
    base = all_ones_baseline(y)
    assert base["accuracy"] == pytest.approx(4 / 8) and base["recall"] == 1.0
    assert base["confusion"].to_numpy().tolist() == [[0, 4], [0, 4]]
    none = classification_metrics([1, 0], [0, 0])
    assert none["precision"] == 0.0 and none["f1"] == 0.0
    with pytest.raises(InputError, match="class labels 0 or 1"):
        classification_metrics([1, 0], [0.7, 0])
