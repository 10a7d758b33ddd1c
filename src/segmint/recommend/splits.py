"""Hold-out splits of :class:`~segmint.recommend.interactions.Interactions` for evaluation.

Every split returns ``(train, test)`` pairs that keep the input's users/items indexing, so a
model trained on ``train`` scores ``test`` with the same codes. Each side's ``notes`` say what
the split did; an empty side is an :class:`~segmint.errors.InputError` naming the split and why.

- :func:`last_per_user`: the AWS lab's hold-out, each user's latest rating.
- :func:`stratified_random`: Microsoft Recommenders' ``python_stratified_split``.
- :func:`kfold`: rows shuffled into k disjoint test folds.
- :func:`movielens_folds`: MovieLens-100k's predefined u1..u5 folds, rebuilt from ``u.data``.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from segmint.errors import InputError, public
from segmint.recommend.interactions import Interactions, read_ratings

__all__ = ["last_per_user", "time_cutoff", "stratified_random", "kfold", "movielens_folds"]

logger = logging.getLogger(__name__)

Split = tuple[Interactions, Interactions]


def _split(inter: Interactions, in_test: np.ndarray, name: str, rule: str) -> Split:
    """Train = rows not in test, test = rows in test; both non-empty, both noted."""
    n_test = int(in_test.sum())
    if n_test == 0:
        raise InputError(f"{name}: the test set is empty ({rule})")
    if n_test == len(in_test):
        raise InputError(f"{name}: the training set is empty ({rule})")
    note = f"{name}: {len(in_test) - n_test:,} ratings in train, {n_test:,} in test; {rule}"
    return inter.subset(~in_test).with_note(note), inter.subset(in_test).with_note(note)


def _latest_order(frame: pd.DataFrame) -> np.ndarray:
    """Row positions ordered by (user, timestamp, file order); an unknown timestamp counts as
    the earliest, as when duplicates were resolved."""
    stamp = frame["timestamp"].to_numpy("datetime64[ns]").view(np.int64)  # NaT is the smallest
    return np.lexsort((np.arange(len(frame)), stamp, frame["user"].to_numpy()))


@public
def last_per_user(inter: Interactions) -> Split:
    """The lab's hold-out: each user's latest rating goes to test, the rest to train.

    Latest by timestamp; ties (and unknown timestamps) go to the last in file order. A user
    with a single rating stays in train only (there is nothing left to learn them from
    otherwise), and the notes say how many.

    Parameters
    ----------
    inter : Interactions

    Returns
    -------
    (Interactions, Interactions)
        train, test.

    Raises
    ------
    InputError
        Every user has a single rating (the test set would be empty).

    Examples
    --------
    >>> from segmint.recommend.interactions import read_ratings
    >>> inter = read_ratings(pd.DataFrame({"user": [1, 1, 1, 2], "item": [1, 2, 3, 1],
    ...                                    "rating": [5, 4, 3, 2],
    ...                                    "timestamp": [30, 20, 10, 40]}))
    >>> train, test = last_per_user(inter)
    >>> test.frame[["user", "item"]].values.tolist(), len(train.frame)
    ([[0, 0]], 3)
    >>> print(test.notes[-1])
    last_per_user: 3 ratings in train, 1 in test; 1 user with a single rating kept in train only
    """
    frame = inter.frame
    order = _latest_order(frame)
    users = frame["user"].to_numpy()[order]
    is_last = np.r_[users[1:] != users[:-1], True]  # the last row of each user in that order
    counts = np.bincount(frame["user"].to_numpy(), minlength=inter.n_users)
    in_test = np.zeros(len(frame), dtype=bool)
    in_test[order[is_last]] = True
    single = counts[frame["user"].to_numpy()] == 1
    in_test &= ~single
    n_single = int((counts == 1).sum())
    rule = (f"{n_single:,} user{'' if n_single == 1 else 's'} with a single rating kept in train only"
            if n_single else "each user's latest rating in test")
    if not in_test.any():
        raise InputError("last_per_user: the test set is empty (every user has a single rating, and "
                         "a user with one rating stays in train)")
    return _split(inter, in_test, "last_per_user", rule)


@public
def time_cutoff(inter: Interactions, share: float = 0.8) -> Split:
    """A global time split: interactions up to the moment that leaves ``share`` of them
    earlier go to train, the later ones to test (how a model trained today meets next month).

    Test keeps only the later interactions of users and items that train has (a model cannot
    rank for a customer or an item it never saw: cold start is another problem), and the notes
    say how many were left out. Unknown timestamps count as the earliest.

    Examples
    --------
    >>> from segmint.recommend.interactions import read_ratings
    >>> inter = read_ratings(pd.DataFrame({"user": [1, 1, 2, 2, 3], "item": [1, 2, 1, 2, 1],
    ...                                    "rating": [1, 1, 1, 1, 1],
    ...                                    "timestamp": [1, 5, 2, 6, 9]}))
    >>> train, test = time_cutoff(inter, share=0.6)
    >>> test.frame[["user", "item"]].values.tolist(), len(train.frame)  # user 3 is new: out
    ([[1, 1]], 3)
    """
    if not 0 < share < 1:
        raise InputError(f"time_cutoff: share must be between 0 and 1, got {share}")
    frame = inter.frame
    stamp = frame["timestamp"].to_numpy("datetime64[ns]").view(np.int64)
    order = np.lexsort((np.arange(len(frame)), stamp))
    cutoff = stamp[order[max(int(np.floor(share * len(frame))) - 1, 0)]]
    later = stamp > cutoff
    known_users = np.zeros(inter.n_users, dtype=bool)
    known_items = np.zeros(inter.n_items, dtype=bool)
    known_users[frame["user"].to_numpy()[~later]] = True
    known_items[frame["item"].to_numpy()[~later]] = True
    warm = known_users[frame["user"].to_numpy()] & known_items[frame["item"].to_numpy()]
    in_test = later & warm
    cold = int((later & ~warm).sum())
    when = pd.Timestamp(cutoff) if cutoff != np.iinfo(np.int64).min else "unknown"
    rule = (f"train up to {when}, test after it; {cold:,} later interaction"
            f"{'' if cold == 1 else 's'} of customers or items new after the cut-off left out")
    kept = ~later | in_test
    return _split(inter.subset(kept), in_test[kept], "time_cutoff", rule)


@public
def stratified_random(inter: Interactions, ratio: float = 0.75, seed: int = 42, *,
                      min_rating: int = 1) -> Split:
    """Microsoft Recommenders' ``python_stratified_split`` (``filter_by="user"``), reproduced.

    As their ``_do_stratification``: one uniform number per row from NumPy's legacy generator
    (``np.random.seed(seed); np.random.rand(n)``, drawn in row order, which is file order here);
    each user's rows sorted by that number and ranked 1..n_u; a row goes to train when
    ``rank / n_u <= ratio``, else to test. So a user gets floor(ratio * n_u) training rows (not a
    rounding), up to float comparison, exactly as theirs. Given the same rows in the same order
    (MovieLens' u.data as their loader reads it), the same seed picks the same test rows.

    Their rule for users with few ratings is kept: with ``ratio < 1`` every user has at least one
    test row, and a user whose 1 / n_u exceeds ``ratio`` (a single rating, at 0.75) has all of
    them in test and none in train; the notes count them. ``min_rating`` (theirs too) first
    drops users with fewer ratings; ``min_rating=2`` keeps every user on both sides at 0.75.

    Parameters
    ----------
    inter : Interactions
    ratio : float
        The training share, 0 < ratio < 1.
    seed : int
    min_rating : int
        Users with fewer ratings are dropped before splitting.

    Returns
    -------
    (Interactions, Interactions)
        train, test.

    Examples
    --------
    >>> from segmint.recommend.interactions import read_ratings
    >>> inter = read_ratings(pd.DataFrame({"user": [1] * 4 + [2] * 2 + [3],
    ...                                    "item": [1, 2, 3, 4, 1, 2, 1], "rating": 3}))
    >>> train, test = stratified_random(inter)
    >>> train.frame.groupby("user").size().to_dict(), test.frame.groupby("user").size().to_dict()
    ({0: 3, 1: 1}, {0: 1, 1: 1, 2: 1})
    """
    if not 0 < ratio < 1:
        raise InputError(f"ratio must be between 0 and 1 (the training share), got {ratio!r}")
    if min_rating < 1:
        raise InputError(f"min_rating must be >= 1, got {min_rating!r}")
    frame = inter.frame
    counts = np.bincount(frame["user"].to_numpy(), minlength=inter.n_users)
    notes = []
    if min_rating > 1:
        keep = counts[frame["user"].to_numpy()] >= min_rating
        dropped = int(((counts > 0) & (counts < min_rating)).sum())
        inter = inter.subset(keep)
        frame = inter.frame
        notes.append(f"{dropped:,} users with fewer than {min_rating} ratings dropped")
    random = np.random.RandomState(seed).rand(len(frame))  # = np.random.seed(seed); rand(n)
    user = frame["user"].to_numpy()
    order = np.lexsort((random, user))  # their sort_values([user, "random"])
    sorted_user = user[order]
    starts = np.r_[0, np.flatnonzero(sorted_user[1:] != sorted_user[:-1]) + 1]
    sizes = np.diff(np.r_[starts, len(order)])
    rank = np.arange(len(order)) - np.repeat(starts, sizes) + 1
    in_train = np.empty(len(frame), dtype=bool)
    in_train[order] = rank / np.repeat(sizes, sizes) <= ratio
    n_users = np.bincount(user, minlength=inter.n_users)
    in_train_users = np.bincount(user[in_train], minlength=inter.n_users)
    test_only = int(((n_users > 0) & (in_train_users == 0)).sum())
    notes.append(f"per user, floor({ratio:g} * n) ratings in train in a seeded random order (seed "
                 f"{seed}; Microsoft Recommenders' python_stratified_split)")
    if test_only:
        notes.append(f"{test_only:,} user{'' if test_only == 1 else 's'} with too few ratings for "
                     f"train (1 / n > {ratio:g}) in test only")
    return _split(inter, ~in_train, "stratified_random", "; ".join(notes))


@public
def kfold(inter: Interactions, k: int = 5, seed: int = 0) -> list[Split]:
    """Rows shuffled (``numpy.random.default_rng(seed).permutation``) and cut into ``k``
    disjoint test folds of near-equal size (``numpy.array_split``); each fold's train is the
    rest. A user may fall wholly in one test fold (no per-user stratification).

    Parameters
    ----------
    inter : Interactions
    k : int
        Folds, 2 <= k <= number of ratings.
    seed : int

    Returns
    -------
    list of (Interactions, Interactions)

    Examples
    --------
    >>> from segmint.recommend.interactions import read_ratings
    >>> inter = read_ratings(pd.DataFrame({"user": [1, 1, 2, 2, 3], "item": [1, 2, 1, 2, 1],
    ...                                    "rating": 4}))
    >>> folds = kfold(inter, k=2)
    >>> [(len(train.frame), len(test.frame)) for train, test in folds]
    [(2, 3), (3, 2)]
    """
    n = len(inter.frame)
    if not 2 <= k <= n:
        raise InputError(f"k must be between 2 and the number of ratings ({n:,}), got {k!r}")
    parts = np.array_split(np.random.default_rng(seed).permutation(n), k)
    out = []
    for fold, part in enumerate(parts, start=1):
        in_test = np.zeros(n, dtype=bool)
        in_test[part] = True
        out.append(_split(inter, in_test, f"kfold {fold}/{k}",
                          f"rows shuffled with seed {seed} into {k} disjoint test folds"))
    return out


@public
def movielens_folds(path: str | Path) -> list[Split]:
    """MovieLens-100k's predefined splits u1..u5, rebuilt from ``u.data`` as the dataset's
    ``mku.sh`` does: ``u{i}.test`` is lines (i-1)*20000+1 .. i*20000 of ``u.data`` in file
    order (``head -i*20000 | tail -20000``), ``u{i}.base`` the other 80,000, each then sorted by
    user and item (``sort -k 1,1n -k 2,2n``). The five test folds are disjoint.

    A file of another size is cut the same way into five equal blocks of lines.

    Parameters
    ----------
    path : str or Path
        ``u.data``, or the folder holding it (titles from ``u.item`` beside it).

    Returns
    -------
    list of (Interactions, Interactions)
        ``(u1.base, u1.test)`` .. ``(u5.base, u5.test)``, sharing the indexing of all of u.data.

    Raises
    ------
    InputError
        The file is not u.data's 4 tab-separated fields, has a pair rated twice (u.data has
        none: rows could not be matched to lines), or its lines do not split into 5 equal blocks.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "u.data"
    inter = read_ratings(path, format="movielens", duplicates="error")
    n = len(inter.frame)
    with path.open("rb") as handle:
        n_lines = sum(1 for _ in handle)
    if n != n_lines:
        raise InputError(f"movielens_folds: {n_lines - n:,} lines repeat a (user, item) pair, so "
                         "rows no longer match the lines mku.sh cuts", file=str(path))
    if n % 5:
        raise InputError(f"movielens_folds: {n:,} lines do not split into 5 equal blocks as mku.sh "
                         "cuts u.data (100,000 lines into 20,000)", file=str(path))
    size = n // 5
    line = np.arange(n)  # rows are in file order
    out = []
    for i in range(1, 6):
        in_test = (line >= (i - 1) * size) & (line < i * size)
        train, test = _split(inter, in_test, f"movielens u{i}",
                             f"u{i}.test = lines {(i - 1) * size + 1:,}..{i * size:,} of u.data "
                             "(mku.sh)")
        out.append((_sorted_like_mku(train), _sorted_like_mku(test)))
    return out


def _sorted_like_mku(inter: Interactions) -> Interactions:
    # mku.sh sorts each file by user then item, numerically; codes follow numeric ids here
    order = np.lexsort((inter.frame["item"].to_numpy(), inter.frame["user"].to_numpy()))
    return inter.subset(order)
