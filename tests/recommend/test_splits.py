"""segmint.recommend.splits: the lab's last-rating hold-out, Microsoft Recommenders' stratified
split (checked against their algorithm written out in pandas), k-fold, MovieLens' u1..u5."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from segmint.errors import InputError
from segmint.recommend.interactions import Interactions, read_ratings
from segmint.recommend.splits import kfold, last_per_user, movielens_folds, stratified_random

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "amazon_reviews_sample.tsv"


def _rows(inter: Interactions) -> set[tuple[int, int]]:
    return set(zip(inter.frame["user"].tolist(), inter.frame["item"].tolist(), strict=True))


def _movielens(shared_data):
    path = shared_data / "movielens-100k" / "u.data"
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    return path


def _recommenders_stratified(data: pd.DataFrame, ratio: float, seed: int) -> set[tuple[int, int]]:
    """The test rows of Microsoft Recommenders' python_stratified_split (filter_by='user',
    min_rating=1), their _do_stratification's steps written out."""
    data = data.copy()
    np.random.seed(seed)
    data["random"] = np.random.rand(data.shape[0])
    data = data.sort_values(["user", "random"])
    groups = data.groupby("user")
    data["count"] = groups["user"].transform("count")
    data["rank"] = (groups.cumcount() + 1) / data["count"]
    test = data[data["rank"] > ratio]
    return set(zip(test["user"].tolist(), test["item"].tolist(), strict=True))


# --------------------------------------------------------------------------- last_per_user

def test_last_per_user_by_hand_ties_by_file_order_and_single_rating_users():
    inter = read_ratings(pd.DataFrame({
        "user": ["a", "a", "a", "b", "b", "c"],
        "item": ["x", "y", "z", "x", "y", "x"],
        "rating": [1, 2, 3, 4, 5, 1],
        "timestamp": ["2020-01-02", "2020-01-03", "2020-01-03", "2020-01-05", "2020-01-01",
                      "2020-01-01"]}))
    train, test = last_per_user(inter)
    # a: y and z tie on the latest day -> z, the later line; b: x (latest); c: one rating -> train
    assert _rows(test) == {(0, 2), (1, 0)}
    assert _rows(train) == {(0, 0), (0, 1), (1, 1), (2, 0)}
    assert (train.users is inter.users) and (test.items is inter.items)  # shared indexing
    assert "1 user with a single rating kept in train only" in test.notes[-1]


def test_last_per_user_on_the_amazon_fixture():
    inter = read_ratings(FIXTURE)
    train, test = last_per_user(inter)
    assert len(test.frame) == 5 and len(train.frame) == 31  # 6 users, one with a single rating
    latest = inter.frame.groupby("user")["timestamp"].max()
    for u, t in zip(test.frame["user"], test.frame["timestamp"], strict=True):
        assert t == latest[u]


def test_last_per_user_all_single_ratings_is_an_error():
    inter = read_ratings(pd.DataFrame({"user": [1, 2], "item": [1, 1], "rating": [3, 4]}))
    with pytest.raises(InputError, match="last_per_user: the test set is empty"):
        last_per_user(inter)


# --------------------------------------------------------------------------- stratified

def test_stratified_counts_by_hand():
    # n_u = 1, 2, 3, 4, 5, 8 -> train floor(0.75 n): 0, 1, 2, 3, 3, 6
    sizes = [1, 2, 3, 4, 5, 8]
    users = np.repeat(np.arange(len(sizes)), sizes)
    items = np.concatenate([np.arange(n) for n in sizes])
    inter = read_ratings(pd.DataFrame({"user": users, "item": items, "rating": 3}))
    train, test = stratified_random(inter, ratio=0.75, seed=7)
    got = train.frame.groupby("user").size().reindex(range(len(sizes)), fill_value=0).tolist()
    assert got == [0, 1, 2, 3, 3, 6]
    assert test.frame.groupby("user").size().tolist() == [1, 1, 1, 1, 2, 2]
    assert "1 user with too few ratings for train (1 / n > 0.75) in test only" in test.notes[-1]
    kept_train, kept_test = stratified_random(inter, min_rating=2)
    assert 0 not in set(kept_train.frame["user"]) | set(kept_test.frame["user"])
    assert "1 users with fewer than 2 ratings dropped" in kept_test.notes[-1]


def test_stratified_is_recommenders_split_on_small_data():
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"user": rng.integers(0, 30, 600), "item": rng.integers(0, 80, 600)})
    frame = frame.drop_duplicates(["user", "item"]).reset_index(drop=True)
    inter = read_ratings(frame.assign(rating=4.0))
    for seed in (42, 0, 123):
        for ratio in (0.75, 0.8, 0.5):
            train, test = stratified_random(inter, ratio=ratio, seed=seed)
            assert _rows(test) == _recommenders_stratified(inter.frame, ratio, seed)
            assert not _rows(train) & _rows(test)
            assert len(train.frame) + len(test.frame) == len(inter.frame)


def test_stratified_is_recommenders_split_on_movielens(shared_data):
    inter = read_ratings(_movielens(shared_data))
    train, test = stratified_random(inter, ratio=0.75, seed=42)
    # the frame is u.data in file order, as Recommenders' movielens.load_pandas_df reads it
    assert _rows(test) == _recommenders_stratified(inter.frame, 0.75, 42)
    # every ml-100k user has >= 20 ratings: floor(0.75 n) of each in train
    n = inter.frame.groupby("user").size()
    assert (train.frame.groupby("user").size() == np.floor(0.75 * n).astype(int)).all()
    assert len(test.frame) == int((n - np.floor(0.75 * n)).sum())


def test_stratified_bad_ratio():
    inter = read_ratings(pd.DataFrame({"user": [1, 1], "item": [1, 2], "rating": [3, 4]}))
    with pytest.raises(InputError, match="ratio must be between 0 and 1"):
        stratified_random(inter, ratio=1.0)


# --------------------------------------------------------------------------- kfold

def test_kfold_disjoint_and_complete():
    rng = np.random.default_rng(2)
    frame = pd.DataFrame({"user": rng.integers(0, 20, 300), "item": rng.integers(0, 50, 300)})
    inter = read_ratings(frame.drop_duplicates(["user", "item"]).assign(rating=2.0))
    folds = kfold(inter, k=5, seed=0)
    tests = [_rows(test) for _, test in folds]
    assert sum(len(t) for t in tests) == len(inter.frame)
    assert set().union(*tests) == _rows(inter)
    for (train, test), rows in zip(folds, tests, strict=True):
        assert not _rows(train) & rows and len(train.frame) + len(test.frame) == len(inter.frame)
    sizes = sorted(len(t) for t in tests)
    assert sizes[-1] - sizes[0] <= 1
    assert [_rows(t) for _, t in kfold(inter, k=5, seed=0)] == tests  # seeded
    with pytest.raises(InputError, match="k must be between 2"):
        kfold(inter, k=1)


def test_empty_split_is_an_error_naming_the_split():
    inter = read_ratings(pd.DataFrame({"user": [1], "item": [1], "rating": [3]}))
    with pytest.raises(InputError, match="stratified_random: the training set is empty"):
        stratified_random(inter)


# --------------------------------------------------------------------------- MovieLens u1..u5

def test_movielens_folds_as_mku_sh(shared_data):
    path = _movielens(shared_data)
    folds = movielens_folds(path.parent)
    assert len(folds) == 5
    lines = pd.read_csv(path, sep="\t", header=None, names=["u", "i", "r", "t"])
    tests = []
    for i, (base, test) in enumerate(folds, start=1):
        assert (len(base.frame), len(test.frame)) == (80_000, 20_000)
        block = lines.iloc[(i - 1) * 20_000:i * 20_000]  # head -i*20000 u.data | tail -20000
        expected = set(zip(block["u"] - 1, block["i"] - 1, strict=True))  # code = id - 1
        assert _rows(test) == expected
        assert not _rows(base) & expected
        # sorted by user, then item (sort -k 1,1n -k 2,2n)
        keys = test.frame["user"].to_numpy() * 10_000 + test.frame["item"].to_numpy()
        assert (np.diff(keys) > 0).all()
        tests.append(_rows(test))
        assert base.n_users == 943 and test.n_items == 1_682  # the indexing of all of u.data
    assert len(set().union(*tests)) == 100_000
    # the first lines of the published u1.base and u1.test files
    base, test = folds[0]
    first = [(base.users[u], base.items[it], r, int(t.timestamp()))
             for u, it, r, t in base.frame.head(3).itertuples(index=False)]
    assert first == [("1", "1", 5.0, 874965758), ("1", "2", 3.0, 876893171), ("1", "3", 4.0, 878542960)]
    first = [(test.users[u], test.items[it], r, int(t.timestamp()))
             for u, it, r, t in test.frame.head(3).itertuples(index=False)]
    assert first == [("1", "6", 5.0, 887431973), ("1", "10", 3.0, 875693118), ("1", "12", 5.0, 878542960)]


def test_movielens_folds_on_a_small_u_data(tmp_path):
    path = tmp_path / "u.data"
    rows = [f"{1 + k % 4}\t{1 + k}\t{1 + k % 5}\t{880000000 + k}" for k in range(10)]
    path.write_text("\n".join(rows) + "\n")
    folds = movielens_folds(path)
    assert [len(test.frame) for _, test in folds] == [2] * 5
    assert _rows(folds[0][1]) == {(0, 0), (1, 1)}
    path.write_text("\n".join(rows[:9]) + "\n")
    with pytest.raises(InputError, match="do not split into 5 equal blocks"):
        movielens_folds(path)


def test_time_cutoff_trains_on_the_past_and_tests_on_known_customers_and_items():
    from segmint.recommend.splits import time_cutoff

    frame = pd.DataFrame({
        "user": ["a", "a", "b", "b", "c", "a"], "item": ["x", "y", "x", "y", "x", "z"],
        "rating": 1.0,
        "timestamp": pd.to_datetime(["2011-01-01", "2011-01-02", "2011-01-03", "2011-02-01",
                                     "2011-02-02", "2011-02-03"])})
    inter = read_ratings(frame, scale=None)
    train, test = time_cutoff(inter, share=0.5)

    def pairs(part: Interactions) -> list[tuple[str, str]]:
        return sorted(zip(part.users[part.frame["user"]], part.items[part.frame["item"]], strict=True))

    assert pairs(train) == [("a", "x"), ("a", "y"), ("b", "x")]
    # after the cut-off: (b, y) is known on both sides; c is a new customer, z a new item: out
    assert pairs(test) == [("b", "y")]
    assert "2 later interactions of customers or items new after the cut-off left out" in test.notes[-1]
    with pytest.raises(InputError, match="share"):
        time_cutoff(inter, share=1.0)
