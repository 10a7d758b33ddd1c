"""Top-N by inner product: equal to a full sort, never a seen item, the seed's k-NN vectors
rank as the FM's own scores, faiss gives the same lists, per-segment tables count by hand."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from segmint.errors import InputError
from segmint.recommend.topn import recommendations_frame, segment_top_items, top_n, top_n_of_scores


def full_sort(scores: np.ndarray, seen: np.ndarray, n: int) -> list[list[int]]:
    """The reference: every unseen item sorted by score, ties by item code."""
    out = []
    for u in range(len(scores)):
        items = [i for i in range(scores.shape[1]) if not seen[u, i]]
        items.sort(key=lambda i: (-scores[u, i], i))
        out.append(items[:n])
    return out


@pytest.fixture()
def factors():
    rng = np.random.default_rng(7)
    U, V = rng.normal(size=(60, 5)), rng.normal(size=(300, 5))
    seen = rng.random((60, 300)) < 0.1
    return U, V, seen


def test_top_n_equals_a_full_sort_and_never_recommends_a_seen_item(factors):
    U, V, seen = factors
    items, scores = top_n(U, V, 20, seen=sp.csr_matrix(seen))
    assert items.tolist() == full_sort(U @ V.T, seen, 20)
    assert not seen[np.arange(60)[:, None], items].any()
    assert (np.diff(scores, axis=1) <= 0).all()
    np.testing.assert_allclose(scores, np.take_along_axis(U @ V.T, items, axis=1))


def test_ties_are_broken_by_item_code():
    U = np.ones((2, 1))
    V = np.array([[1.0], [2.0], [1.0], [2.0], [1.0]])
    items, _ = top_n(U, V, 3)
    assert items.tolist() == [[1, 3, 0], [1, 3, 0]]


def test_the_seeds_knn_vectors_rank_as_the_factorization_machine(factors):
    """score(u, i) = w0 + w_u + w_i + <V_u, V_i>; the k-NN uses [V_u, 1] . [V_i, w_i]."""
    U, V, seen = factors
    rng = np.random.default_rng(8)
    w0, w_user, w_item = 3.5, rng.normal(size=60), rng.normal(size=300)
    fm = w0 + w_user[:, None] + w_item[None, :] + U @ V.T
    user_vectors = np.hstack([U, np.ones((60, 1))])
    item_vectors = np.hstack([V, w_item[:, None]])
    items, _ = top_n(user_vectors, item_vectors, 100, seen=sp.csr_matrix(seen))
    direct, _ = top_n_of_scores(fm, 100, seen=sp.csr_matrix(seen))
    assert items.tolist() == direct.tolist() == full_sort(fm, seen, 100)


def test_faiss_gives_the_same_lists(factors):
    U, V, seen = factors
    exact, _ = top_n(U, V, 10, seen=sp.csr_matrix(seen), use_faiss=False)
    indexed, scores = top_n(U, V, 10, seen=sp.csr_matrix(seen), use_faiss=True)
    assert indexed.tolist() == exact.tolist()
    np.testing.assert_allclose(scores, np.take_along_axis(U @ V.T, exact, axis=1))


def test_a_user_who_has_seen_almost_everything_gets_what_is_left():
    U, V = np.ones((2, 1)), np.arange(4, dtype=float)[:, None]
    seen = sp.csr_matrix(np.array([[1, 1, 1, 0], [0, 0, 0, 0]]))
    items, scores = top_n(U, V, 3, seen=seen)
    assert items[0, 0] == 3 and np.isinf(scores[0, 1:]).all()
    inter = SimpleNamespace(users=pd.Index(["a", "b"]), items=pd.Index(["p", "q", "r", "s"]),
                            titles=pd.Series({"s": "Sock", "r": "Rug", "q": "Quilt", "p": "Pan"}))
    frame = recommendations_frame(items, scores, inter)
    assert frame[frame["customer"] == "a"][["rank", "item", "title"]].values.tolist() == [[1, "s", "Sock"]]
    assert frame[frame["customer"] == "b"]["item"].tolist() == ["s", "r", "q"]


def test_bad_factors_are_refused():
    with pytest.raises(InputError, match="same width"):
        top_n(np.ones((2, 3)), np.ones((4, 2)))
    with pytest.raises(InputError, match="NaN"):
        top_n(np.array([[np.nan]]), np.ones((4, 1)))
    with pytest.raises(InputError, match="seen-items matrix"):
        top_n(np.ones((2, 1)), np.ones((4, 1)), seen=sp.csr_matrix((3, 4)))


def test_segment_top_items_counts_customers_by_hand():
    users, items = pd.Index(["c1", "c2", "c3"]), pd.Index(["i1", "i2", "i3"])
    frame = pd.DataFrame({"user": [0, 0, 1, 2, 2], "item": [0, 1, 0, 1, 2]})
    train = SimpleNamespace(users=users, items=items, frame=frame, titles=None)
    recs = pd.DataFrame({"customer": ["c1", "c2", "c3"], "item": ["i3", "i3", "i1"],
                         "rank": [1, 1, 1]})
    segments = pd.Series({"c1": "loyal", "c2": "loyal", "c3": "new"})
    out = segment_top_items(recs, train, segments, n=2)
    loyal_bought = out[(out["segment"] == "loyal") & (out["source"] == "bought")]
    # c1 bought i1, i2; c2 bought i1: i1 by 2 of 2 loyal customers, i2 by 1
    assert loyal_bought[["rank", "item", "customers", "share"]].values.tolist() == \
        [[1, "i1", 2, 1.0], [2, "i2", 1, 0.5]]
    loyal_recs = out[(out["segment"] == "loyal") & (out["source"] == "recommended")]
    assert loyal_recs[["item", "customers"]].values.tolist() == [["i3", 2]]
    assert out[(out["segment"] == "new") & (out["source"] == "recommended")]["item"].tolist() == ["i1"]
