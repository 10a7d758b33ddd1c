"""Evaluation of recommenders: rating error against the naive guess, the 5-star classifier
against predicting all ones, and top-k ranking metrics as Microsoft Recommenders defines them.

Ranking follows ``recommenders.evaluation.python_evaluation`` (recommenders-team/recommenders,
the version after PR #2004 that aligned ``map_at_k`` with Spark), so figures compare with the
ml-100k tables they publish (the protocol: every held-out rating relevant, k = 10):

- ``precision_at_k``: hits in the top k / k, averaged over the users that have test items and
  recommendations (a list shorter than k still divides by k, as Spark does);
- ``recall_at_k``: hits / the user's test items, same users;
- ``ndcg_at_k``: binary relevance, DCG = sum of 1 / log(1 + rank) over hits, ideal DCG over
  min(test items, k) places; averaged over every user with test items (theirs merges the
  truth in with an outer join, so a test user without recommendations counts as 0 here,
  unlike the other measures);
- ``map_at_k``: per user, the sum over hits of (hits so far / rank), divided by
  min(test items, k) (their current ``map_at_k``, Spark's definition);
- ``map``: the same sum divided by the number of test items (their ``map``, which is what
  ``map_at_k`` computed before PR #2004 and what the published benchmark tables' MAP column
  reports);
- ``hit_rate_at_k`` (not in their module): the share of those users with at least one hit;
- ``catalog_coverage``: distinct items in the top-k lists / ``n_items`` (theirs divides by the
  distinct items of the training set: pass ``n_items=train.frame["item"].nunique()``).
"""
from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from segmint.errors import InputError, public
from segmint.recommend.interactions import Interactions

__all__ = ["rating_metrics", "global_mean_guess", "classification_metrics", "all_ones_baseline",
           "positive_labels", "ranking_metrics", "RANKING_METRICS"]

logger = logging.getLogger(__name__)

#: The ranking measures :func:`ranking_metrics` returns, in its order.
RANKING_METRICS = ("precision_at_k", "recall_at_k", "ndcg_at_k", "map_at_k", "map", "hit_rate_at_k",
                   "catalog_coverage")


def _vector(values: Any, name: str) -> np.ndarray:
    try:
        array = np.asarray(values, dtype=np.float64).ravel()
    except (TypeError, ValueError) as exc:
        raise InputError(f"{name} must be numbers: {exc}", column=name) from exc
    bad = ~np.isfinite(array)
    if bad.any():
        raise InputError(f"{name} holds a missing or infinite value", column=name,
                         row=int(np.flatnonzero(bad)[0]) + 1)
    return array


def _pair(y_true: Any, y_pred: Any) -> tuple[np.ndarray, np.ndarray]:
    t, p = _vector(y_true, "y_true"), _vector(y_pred, "y_pred")
    if len(t) != len(p):
        raise InputError(f"y_true has {len(t):,} values and y_pred {len(p):,}; they must pair up")
    if len(t) == 0:
        raise InputError("nothing to evaluate: y_true is empty")
    return t, p


# --------------------------------------------------------------------------- rating error

@public
def rating_metrics(y_true: Any, y_pred: Any) -> dict[str, float]:
    """Mean squared error, its root and the mean absolute error of predicted ratings.

    Parameters
    ----------
    y_true, y_pred : array-like of float

    Returns
    -------
    dict
        ``mse``, ``rmse``, ``mae``, ``n`` (how many ratings).

    Examples
    --------
    >>> rating_metrics([5, 3, 4], [4, 3, 2])
    {'mse': 1.6666666666666667, 'rmse': 1.2909944487358056, 'mae': 1.0, 'n': 3}
    """
    t, p = _pair(y_true, y_pred)
    error = p - t
    mse = float(np.mean(error ** 2))
    return {"mse": mse, "rmse": float(np.sqrt(mse)), "mae": float(np.mean(np.abs(error))), "n": len(t)}


@public
def global_mean_guess(train: Interactions, test: Interactions) -> dict[str, float]:
    """The lab's naive guess: every test rating predicted as the training set's mean rating.

    Returns
    -------
    dict
        :func:`rating_metrics` of the guess, and ``guess`` (the mean).

    Examples
    --------
    >>> from segmint.recommend.interactions import read_ratings
    >>> inter = read_ratings(pd.DataFrame({"user": [1, 1, 2], "item": [1, 2, 1], "rating": [5, 3, 2]}))
    >>> global_mean_guess(inter.subset([0, 1]), inter.subset([2]))
    {'mse': 4.0, 'rmse': 2.0, 'mae': 2.0, 'n': 1, 'guess': 4.0}
    """
    if train.frame.empty or test.frame.empty:
        raise InputError(f"global_mean_guess: the {'training' if train.frame.empty else 'test'} set "
                         "is empty")
    guess = float(train.frame["rating"].mean())
    out: dict[str, float] = dict(rating_metrics(test.frame["rating"], np.full(len(test.frame), guess)))
    out["guess"] = guess
    return out


# --------------------------------------------------------------------------- classification

@public
def positive_labels(ratings: Any, positive_from: float = 5.0) -> np.ndarray:
    """1 where a rating is at least ``positive_from`` (the lab: 5 stars), else 0.

    Examples
    --------
    >>> positive_labels([5, 4, 5.0, 1]).tolist()
    [1, 0, 1, 0]
    """
    return (_vector(ratings, "ratings") >= positive_from).astype(np.int64)


def _labels(values: Any, name: str) -> np.ndarray:
    array = _vector(values, name)
    bad = (array != 0) & (array != 1)
    if bad.any():
        raise InputError(f"{name} must be class labels 0 or 1, found {array[bad][0]!r} (threshold "
                         "scores or ratings first, e.g. with positive_labels)", column=name,
                         row=int(np.flatnonzero(bad)[0]) + 1)
    return array.astype(np.int64)


@public
def classification_metrics(y_true: Any, y_pred: Any, *,
                           labels: tuple[str, str] = ("0", "1")) -> dict[str, Any]:
    """Accuracy, precision, recall and F1 of the positive class, and the confusion matrix.

    Precision is 0 when nothing is predicted positive, recall 0 when nothing is positive,
    F1 0 when both are (scikit-learn's ``zero_division=0``).

    Parameters
    ----------
    y_true, y_pred : array-like of 0/1 (or bool)
    labels : (str, str)
        Names of class 0 and class 1 in the confusion matrix.

    Returns
    -------
    dict
        ``accuracy``, ``precision``, ``recall``, ``f1``, ``n`` and ``confusion``: a 2 x 2
        DataFrame, rows the actual class (index named ``actual``), columns the predicted one
        (``predicted``), as scikit-learn's ``confusion_matrix`` lays it out.

    Examples
    --------
    >>> m = classification_metrics([1, 1, 0, 0, 1], [1, 0, 0, 1, 1], labels=("< 5", "5 stars"))
    >>> m["accuracy"], m["precision"], m["recall"]
    (0.6, 0.6666666666666666, 0.6666666666666666)
    >>> m["confusion"]  # doctest: +NORMALIZE_WHITESPACE
    predicted  < 5  5 stars
    actual
    < 5          1        1
    5 stars      1        2
    """
    t, p = _pair(_labels(y_true, "y_true"), _labels(y_pred, "y_pred"))
    tp = int(((t == 1) & (p == 1)).sum())
    fp = int(((t == 0) & (p == 1)).sum())
    fn = int(((t == 1) & (p == 0)).sum())
    tn = int(((t == 0) & (p == 0)).sum())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    names = [str(label) for label in labels]
    confusion = pd.DataFrame([[tn, fp], [fn, tp]], index=pd.Index(names, name="actual"),
                             columns=pd.Index(names, name="predicted"))
    return {"accuracy": (tp + tn) / len(t), "precision": precision, "recall": recall, "f1": f1,
            "n": len(t), "confusion": confusion}


@public
def all_ones_baseline(y_true: Any, *, labels: tuple[str, str] = ("0", "1")) -> dict[str, Any]:
    """The lab's baseline classifier: predict the positive class (1) for every case.

    Examples
    --------
    >>> all_ones_baseline([1, 0, 1, 1])["accuracy"]
    0.75
    """
    t = _labels(y_true, "y_true")
    return classification_metrics(t, np.ones_like(t), labels=labels)


# --------------------------------------------------------------------------- ranking

def _codes(recommendations: pd.DataFrame, test: Interactions) -> tuple[np.ndarray, np.ndarray]:
    """User and item codes of the recommendations: ``user`` holds codes, ``customer`` ids (as
    :func:`segmint.recommend.topn.recommendations_frame` writes); ``item`` codes when integer,
    else ids."""
    if "user" in recommendations:
        users = _code_column(recommendations["user"], "user", test.n_users)
    elif "customer" in recommendations:
        users = _id_column(recommendations["customer"], "customer", test.users)
    else:
        raise InputError("recommendations need a user column (codes) or a customer column (ids)",
                         column="user")
    if "item" not in recommendations:
        raise InputError("recommendations need an item column", column="item")
    items = recommendations["item"]
    if pd.api.types.is_integer_dtype(items.dtype):
        return users, _code_column(items, "item", test.n_items)
    return users, _id_column(items, "item", test.items)


def _code_column(values: pd.Series, column: str, n: int) -> np.ndarray:
    codes = values.to_numpy()
    if not pd.api.types.is_integer_dtype(values.dtype):
        raise InputError(f"the {column} column must hold integer codes", column=column)
    bad = (codes < 0) | (codes >= n)
    if bad.any():
        raise InputError(f"{codes[bad][0]} is not a {column} code of the test set's indexing "
                         f"(0..{n - 1})", column=column, row=int(np.flatnonzero(bad)[0]) + 1)
    return codes.astype(np.int64)


def _id_column(values: pd.Series, column: str, ids: pd.Index) -> np.ndarray:
    codes = ids.get_indexer(values.astype(str))
    bad = codes < 0
    if bad.any():
        raise InputError(f"{values.iloc[int(np.flatnonzero(bad)[0])]!r} is not an id of the test "
                         "set's indexing", column=column, row=int(np.flatnonzero(bad)[0]) + 1)
    return codes.astype(np.int64)


@public
def ranking_metrics(recommendations: pd.DataFrame, test: Interactions, k: int = 10,
                    n_items: int | None = None) -> dict[str, float]:
    """Top-k ranking measures of recommendation lists against held-out interactions, as
    Microsoft Recommenders' ``python_evaluation`` defines them (see the module docstring for
    each formula and which of their versions).

    Every test interaction is relevant (whatever its rating). Each user's list is ordered by
    ``rank`` (ties by row order) and cut at k; places are then 1..k as in their
    ``get_top_k_items``.

    Parameters
    ----------
    recommendations : pandas.DataFrame
        ``user`` (codes) or ``customer`` (ids), ``item`` (codes if integer, else ids), ``rank``
        (smaller is better). No (user, item) pair twice.
    test : Interactions
        The held-out interactions, indexed as the recommendations' codes.
    k : int
    n_items : int, optional
        The catalogue size for coverage; default ``test.n_items``.

    Returns
    -------
    dict
        :data:`RANKING_METRICS`, and ``k``, ``users`` (users averaged over: with test items and
        recommendations), ``test_users`` (with test items; nDCG's average) and
        ``users_without_recommendations``.

    Examples
    --------
    One user, test items {0, 2}; the list [2, 1, 0] hits at places 1 and 3:

    >>> from segmint.recommend.interactions import read_ratings
    >>> rated = read_ratings(pd.DataFrame({"user": 0, "item": [0, 1, 2], "rating": 1.0}))
    >>> test = rated.subset([0, 2])
    >>> recs = pd.DataFrame({"user": 0, "item": [2, 1, 0], "rank": [1, 2, 3]})
    >>> m = ranking_metrics(recs, test, k=3)
    >>> round(m["precision_at_k"], 4), m["recall_at_k"], round(m["map_at_k"], 4)
    (0.6667, 1.0, 0.8333)
    """
    if not isinstance(k, (int, np.integer)) or k < 1:
        raise InputError(f"k must be a positive integer, got {k!r}")
    if "rank" not in recommendations:
        raise InputError("recommendations need a rank column (1 = best)", column="rank")
    users, items = _codes(recommendations, test)
    rank = _vector(recommendations["rank"], "rank")
    pairs = users * np.int64(test.n_items) + items
    repeated = pd.Series(pairs).duplicated().to_numpy()
    if repeated.any():
        at = int(np.flatnonzero(repeated)[0])
        raise InputError(f"user {test.users[users[at]]!r} is recommended item {test.items[items[at]]!r} "
                         "twice", column="item", row=at + 1)
    order = np.lexsort((np.arange(len(rank)), rank, users))
    users, items, pairs = users[order], items[order], pairs[order]
    starts = np.r_[0, np.flatnonzero(users[1:] != users[:-1]) + 1] if len(users) else np.array([], int)
    place = np.arange(len(users)) - np.repeat(starts, np.diff(np.r_[starts, len(users)])) + 1
    top = place <= k
    users, items, pairs, place = users[top], items[top], pairs[top], place[top]

    truth = test.frame
    true_users = truth["user"].to_numpy()
    true_pairs = true_users * np.int64(test.n_items) + truth["item"].to_numpy()
    actual = np.bincount(true_users, minlength=test.n_users)  # test items per user
    test_users = np.flatnonzero(actual)
    if test_users.size == 0:
        raise InputError("ranking_metrics: the test set is empty")
    recommended = np.zeros(test.n_users, dtype=bool)
    recommended[users] = True
    common = test_users[recommended[test_users]]
    if common.size == 0:
        raise InputError("ranking_metrics: no user of the test set has recommendations")

    hit = np.isin(pairs, true_pairs)
    hit_users, hit_place = users[hit], place[hit]
    hits = np.bincount(hit_users, minlength=test.n_users)
    # hits so far / place, for each hit in place order (rows are sorted by user, then place)
    so_far = np.arange(hit.sum()) - np.repeat(*_run_starts(hit_users)) + 1
    precision_sum = np.bincount(hit_users, weights=so_far / hit_place, minlength=test.n_users)
    discount = 1.0 / np.log1p(np.arange(1, k + 1))  # natural log as theirs; nDCG is base-free
    dcg = np.bincount(hit_users, weights=discount[hit_place - 1], minlength=test.n_users)
    ideal = np.cumsum(discount)[np.minimum(actual[test_users], k) - 1]

    n = common.size
    n_catalogue = test.n_items if n_items is None else int(n_items)
    if n_catalogue < 1:
        raise InputError(f"n_items must be >= 1, got {n_items!r}")
    out: dict[str, float] = {
        "precision_at_k": float((hits[common] / k).sum() / n),
        "recall_at_k": float((hits[common] / actual[common]).sum() / n),
        "ndcg_at_k": float((dcg[test_users] / ideal).mean()),
        "map_at_k": float((precision_sum[common] / np.minimum(actual[common], k)).sum() / n),
        "map": float((precision_sum[common] / actual[common]).sum() / n),
        "hit_rate_at_k": float((hits[common] > 0).sum() / n),
        "catalog_coverage": float(np.unique(items).size / n_catalogue),
        "k": int(k), "users": int(n), "test_users": int(test_users.size),
        "users_without_recommendations": int(test_users.size - n),
    }
    if out["users_without_recommendations"]:
        logger.warning("%d of %d test users have no recommendations: nDCG counts them as 0, the other "
                       "measures leave them out (as Microsoft Recommenders does)",
                       out["users_without_recommendations"], test_users.size)
    return out


def _run_starts(sorted_codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    # (start of each run of equal codes, run lengths): np.repeat of the two gives each element
    # the position where its run starts
    if sorted_codes.size == 0:
        return np.array([], dtype=np.int64), np.array([], dtype=np.int64)
    starts = np.r_[0, np.flatnonzero(sorted_codes[1:] != sorted_codes[:-1]) + 1]
    return starts, np.diff(np.r_[starts, sorted_codes.size])
