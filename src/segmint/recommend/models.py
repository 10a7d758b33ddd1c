"""Recommendation models: baselines, factorization machines, EASE, ALS and BPR.

Every model keeps scikit-learn's contract: ``__init__`` stores parameters, ``fit(train)`` learns
from an :class:`~segmint.recommend.interactions.Interactions` and returns the model, learned state
ends in ``_``. Then, with user and item *codes* (positions in ``train.users`` / ``train.items``):

- ``predict(users, items)``: one number per pair; a rating for the regressors (GlobalMean,
  BiasBaseline, FMRegressor), a probability for FMClassifier, a relevance score for the rankers;
- ``score_all(users)``: a ``len(users) x n_items`` score matrix whose order per user is the
  model's ranking (top-N removes seen items and takes the best);
- the factor models (FMRegressor, FMClassifier, ALS, BPR) also give ``user_vectors()`` and
  ``item_vectors()`` whose inner products order each user's items as ``score_all`` does (the
  seed's k-NN matrices: item ``[V_i, w_i]``, user ``[V_u, 1]``).

A code outside the training indexing is an :class:`~segmint.errors.InputError`; a parameter
out of range a :class:`~segmint.errors.SpecError` naming it. All models are seeded where they
draw anything, and repeat exactly.

Examples
--------
>>> import pandas as pd
>>> from segmint.recommend.interactions import read_ratings
>>> train = read_ratings(pd.DataFrame({"user": [1, 1, 2, 3], "item": ["a", "b", "a", "a"],
...                                    "rating": [5, 3, 4, 2]}))
>>> Popularity().fit(train).score_all(np.array([0])).tolist()
[[3.0, 1.0]]
>>> round(float(GlobalMean().fit(train).predict(np.array([0]), np.array([1]))[0]), 2)
3.5
"""
from __future__ import annotations

import logging
import time
import warnings
from numbers import Integral, Real
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.special import ndtr
from sklearn.base import BaseEstimator

from segmint.cluster._sklearn_compat import Interval, StrOptions
from segmint.errors import InputError, ModelError, SpecError

if TYPE_CHECKING:
    from segmint.recommend._fm import Samples
    from segmint.recommend.interactions import Interactions

__all__ = ["GlobalMean", "BiasBaseline", "Popularity", "FMRegressor", "FMClassifier", "EASE",
           "ALS", "BPR", "Blend"]

logger = logging.getLogger(__name__)

_POSITIVE_INT = [Interval(Integral, 1, None, closed="left")]
_NON_NEGATIVE = [Interval(Real, 0, None, closed="left")]
_SEED = [Interval(Integral, 0, None, closed="left")]


# --------------------------------------------------------------------------- shared plumbing

class _Recommender(BaseEstimator):
    """What every model shares: parameter checks, the training indexing, code checks."""

    _parameter_constraints: dict[str, list[Any]] = {}

    def _start(self, train: Interactions) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Check the parameters and the data; remember the indexing. Returns the training
        (users, items, ratings) codes as arrays."""
        try:
            self._validate_params()
        except ValueError as exc:  # scikit-learn's InvalidParameterError
            raise SpecError(f"{type(self).__name__}: {str(exc).splitlines()[0]}") from None
        frame = train.frame
        if len(frame) == 0:
            raise InputError(f"{type(self).__name__} cannot learn from an empty training set")
        ratings = frame["rating"].to_numpy(np.float64)
        if not np.isfinite(ratings).all():
            row = int(np.flatnonzero(~np.isfinite(ratings))[0])
            raise InputError("a training rating is not a finite number", column="rating", row=row)
        self.n_users_ = int(train.n_users)
        self.n_items_ = int(train.n_items)
        return (frame["user"].to_numpy(np.int64), frame["item"].to_numpy(np.int64), ratings)

    def _fitted(self) -> None:
        if not hasattr(self, "n_items_"):
            raise ModelError(f"{type(self).__name__} is not fitted yet: call fit(train) first")

    def _codes(self, codes: Any, kind: str) -> np.ndarray:
        """Codes as int64, each one of the training indexing's, or a clear error."""
        self._fitted()
        arr = np.asarray(codes)
        if arr.ndim != 1 or (arr.size and not np.issubdtype(arr.dtype, np.integer)):
            raise InputError(f"{kind} codes must be a 1-d array of integers (positions in "
                             f"train.{kind}s); got dtype {arr.dtype}, shape {arr.shape}")
        n = self.n_users_ if kind == "user" else self.n_items_
        bad = (arr < 0) | (arr >= n)
        if bad.any():
            raise InputError(f"{kind} code {int(arr[bad][0])} is unknown: the model was trained "
                             f"on {n} {kind}s (codes 0..{n - 1}); {int(bad.sum())} of "
                             f"{arr.size} codes are outside")
        return arr.astype(np.int64, copy=False)

    def _pairs(self, users: Any, items: Any) -> tuple[np.ndarray, np.ndarray]:
        u, i = self._codes(users, "user"), self._codes(items, "item")
        if len(u) != len(i):
            raise InputError(f"predict needs as many items as users; got {len(u)} users and "
                             f"{len(i)} items")
        return u, i


def _user_item_matrix(users: np.ndarray, items: np.ndarray, values: np.ndarray, n_users: int,
                      n_items: int) -> sp.csr_matrix:
    return sp.csr_matrix((values, (users, items)), shape=(n_users, n_items), dtype=np.float64)


# --------------------------------------------------------------------------- baselines

class GlobalMean(_Recommender):
    """The seed's naive guess: every rating is the training mean. Ranks nothing (all items tie).

    Examples
    --------
    >>> from segmint.recommend.interactions import read_ratings
    >>> train = read_ratings(pd.DataFrame({"user": [1, 2], "item": [1, 1], "rating": [2, 5]}))
    >>> GlobalMean().fit(train).mean_
    3.5
    """

    def fit(self, train: Interactions) -> GlobalMean:
        """Learn ``mean_`` from the training ratings."""
        _, _, ratings = self._start(train)
        self.mean_ = float(ratings.mean())
        return self

    def predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """The mean, once per (user, item) pair."""
        u, _ = self._pairs(users, items)
        return np.full(len(u), self.mean_)

    def score_all(self, users: np.ndarray) -> np.ndarray:
        """The mean for every item: no order."""
        return np.full((len(self._codes(users, "user")), self.n_items_), self.mean_)


class BiasBaseline(_Recommender):
    """``mean + b_user + b_item`` with ridge-regularised biases (Koren 2010's baseline predictor).

    Fitted by alternating least squares: each sweep sets every item bias, then every user bias,
    to its exact regularised least-squares value given the others
    (``b_i = sum(r - mean - b_u) / (reg_item + n_i)``, likewise for users), ``n_iter`` sweeps from
    zero. Predictions are clipped to the rating scale when the data declare one.

    Parameters
    ----------
    reg_user, reg_item : float
        Ridge penalties on the user and item biases (in ratings: pseudo-counts of a mean rating).
    n_iter : int
        Alternating sweeps.

    Examples
    --------
    >>> from segmint.recommend.interactions import read_ratings
    >>> train = read_ratings(pd.DataFrame({"user": [1, 1, 2, 2], "item": [1, 2, 1, 2],
    ...                                    "rating": [5, 3, 5, 3]}))
    >>> model = BiasBaseline(reg_user=0, reg_item=0).fit(train)
    >>> model.item_bias_.round(3).tolist(), model.user_bias_.round(3).tolist()
    ([1.0, -1.0], [0.0, 0.0])
    """

    _parameter_constraints = {"reg_user": _NON_NEGATIVE, "reg_item": _NON_NEGATIVE,
                              "n_iter": _POSITIVE_INT}

    def __init__(self, reg_user: float = 15.0, reg_item: float = 10.0, n_iter: int = 10) -> None:
        self.reg_user = reg_user
        self.reg_item = reg_item
        self.n_iter = n_iter

    def fit(self, train: Interactions) -> BiasBaseline:
        """Learn ``mean_``, ``user_bias_`` and ``item_bias_``."""
        users, items, ratings = self._start(train)
        self.mean_ = float(ratings.mean())
        self.scale_ = train.scale
        n_u = np.bincount(users, minlength=self.n_users_)
        n_i = np.bincount(items, minlength=self.n_items_)
        bu, bi = np.zeros(self.n_users_), np.zeros(self.n_items_)
        residual = ratings - self.mean_
        for _ in range(self.n_iter):
            bi = np.bincount(items, residual - bu[users], self.n_items_) / (self.reg_item + n_i
                                                                          + 1e-12)
            bu = np.bincount(users, residual - bi[items], self.n_users_) / (self.reg_user + n_u
                                                                          + 1e-12)
        self.user_bias_, self.item_bias_ = bu, bi
        return self

    def predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """``mean + b_u + b_i``, clipped to the scale."""
        u, i = self._pairs(users, items)
        out = self.mean_ + self.user_bias_[u] + self.item_bias_[i]
        return out if self.scale_ is None else np.clip(out, *self.scale_)

    def score_all(self, users: np.ndarray) -> np.ndarray:
        """Unclipped ``mean + b_u + b_i`` for every item: ranks by item bias."""
        u = self._codes(users, "user")
        return self.mean_ + self.user_bias_[u][:, None] + self.item_bias_[None, :]


class Popularity(_Recommender):
    """Ranks items by how many training interactions they have (the same list for everyone).

    Examples
    --------
    >>> from segmint.recommend.interactions import read_ratings
    >>> train = read_ratings(pd.DataFrame({"user": [1, 2, 2], "item": [7, 7, 8],
    ...                                    "rating": [1, 1, 1]}))
    >>> Popularity().fit(train).counts_.tolist()
    [2.0, 1.0]
    """

    def fit(self, train: Interactions) -> Popularity:
        """Learn ``counts_``: interactions per item."""
        _, items, _ = self._start(train)
        self.counts_ = np.bincount(items, minlength=self.n_items_).astype(np.float64)
        return self

    def predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Each item's count."""
        _, i = self._pairs(users, items)
        return self.counts_[i]

    def score_all(self, users: np.ndarray) -> np.ndarray:
        """Every item's count, one row per user."""
        u = self._codes(users, "user")
        return np.broadcast_to(self.counts_, (len(u), self.n_items_)).copy()


# --------------------------------------------------------------------------- factorization machines

def _load_fm_kernel() -> Any:
    # myfm imports pkg_resources on import, which warns of its own deprecation: not the user's
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="pkg_resources is deprecated")
        from segmint.recommend import _fm
    return _fm


def _side_blocks(features: pd.DataFrame | None, ids: pd.Index, kind: str) -> list[np.ndarray]:
    """Side features as dense blocks aligned to the codes: each non-numeric column one-hot (its
    own prior group), the numeric columns together; an id without a row gets zeros."""
    if features is None:
        return []
    if not isinstance(features, pd.DataFrame):
        raise InputError(f"{kind}_features must be a DataFrame indexed by {kind} id; got "
                         f"{type(features).__name__}")
    frame = features.copy()
    frame.index = frame.index.astype(str)
    if frame.index.has_duplicates:
        dup = frame.index[frame.index.duplicated()][0]
        raise InputError(f"{kind}_features has {kind} id {dup!r} more than once")
    frame = frame.reindex(pd.Index(ids, dtype=str))
    blocks: list[np.ndarray] = []
    numeric = [c for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c])
               and not pd.api.types.is_bool_dtype(frame[c])]
    for column in frame.columns:
        if column in numeric:
            continue
        codes, _ = pd.factorize(frame[column], use_na_sentinel=True)
        block = np.zeros((len(frame), max(codes.max() + 1, 1)))
        has = codes >= 0
        block[np.flatnonzero(has), codes[has]] = 1.0
        blocks.append(block)
    if numeric:
        values = frame[numeric].to_numpy(np.float64)
        known = features.index.astype(str)
        present = np.asarray(frame.index.isin(known))
        bad = ~np.isfinite(values) & present[:, None]
        if bad.any():
            r, c = np.argwhere(bad)[0]
            raise InputError(f"{kind}_features: a value is missing or not finite "
                             f"({kind} {frame.index[r]!r})", column=str(numeric[c]))
        blocks.append(np.nan_to_num(values))
    return blocks


def _days(timestamps: Any) -> np.ndarray:
    # days since 1970 (-1 when unknown): the FM's day feature is categorical, as in myFM's examples
    ts = pd.to_datetime(pd.Series(timestamps))
    days = ts.to_numpy("datetime64[ns]").astype("datetime64[D]").astype(np.int64)
    return np.where(ts.isna().to_numpy(), -1, days)


class _FactorizationMachine(_Recommender):
    """A Bayesian factorization machine (myFM's Gibbs sampler) on one-hot user + item features,
    optionally SVD++'s implicit features, the day of the rating and side features.

    The posterior mean over the kept Gibbs samples is the prediction. Each sample's score splits
    into a user part, an item part and their factor product (see :mod:`segmint.recommend._fm`),
    so the vectors stack the samples: a user's vector is ``[P_u^1, ..., P_u^S, 1]`` and an item's
    ``[P_i^1 / S, ..., P_i^S / S, b_i]``, ``b_i`` the item's mean bias. Their inner product is
    the posterior mean score less the user's own constant, so the k-NN orders each user's items
    exactly as the model does. With plain one-hot features and one kept sample this is the
    seed's ``[V_u, 1]``, ``[V_i, w_i]``; neither the samples' mean factors nor the last sample
    would rank as the posterior mean does (the mean of products is not the product of means).
    """

    _parameter_constraints = {
        "rank": _POSITIVE_INT, "n_iter": _POSITIVE_INT,
        "n_kept_samples": [Interval(Integral, 1, None, closed="left"), None],
        "implicit_features": ["boolean"], "dates": ["boolean"],
        "user_features": [pd.DataFrame, None], "item_features": [pd.DataFrame, None],
        "init_stdev": _NON_NEGATIVE, "random_seed": _SEED,
    }
    _task = "regression"

    def __init__(self, rank: int = 10, n_iter: int = 200, n_kept_samples: int | None = None,
                 implicit_features: bool = True, dates: bool = False,
                 user_features: pd.DataFrame | None = None,
                 item_features: pd.DataFrame | None = None, init_stdev: float = 0.1,
                 random_seed: int = 0) -> None:
        self.rank = rank
        self.n_iter = n_iter
        self.n_kept_samples = n_kept_samples
        self.implicit_features = implicit_features
        self.dates = dates
        self.user_features = user_features
        self.item_features = item_features
        self.init_stdev = init_stdev
        self.random_seed = random_seed

    def _targets(self, ratings: np.ndarray, train: Interactions) -> np.ndarray:
        return ratings

    def fit(self, train: Interactions) -> Any:
        """Run the Gibbs sampler; keep the last ``n_kept_samples`` samples (default: all but the
        first tenth) taken apart per user, item and day."""
        users, items, ratings = self._start(train)
        kept = self.n_kept_samples or max(self.n_iter - self.n_iter // 10, 1)
        if kept > self.n_iter:
            raise SpecError(f"{type(self).__name__}: n_kept_samples ({kept}) cannot exceed "
                            f"n_iter ({self.n_iter})")
        y = self._targets(ratings, train)
        fm = _load_fm_kernel()
        partners_u = (users, items, self.n_items_) if self.implicit_features else None
        partners_i = (items, users, self.n_users_) if self.implicit_features else None
        user_rows, user_groups = fm.entity_rows(
            self.n_users_, partners_u, _side_blocks(self.user_features, train.users, "user"), 0)
        item_rows, item_groups = fm.entity_rows(
            self.n_items_, partners_i, _side_blocks(self.item_features, train.items, "item"),
            max(user_groups) + 1)
        day_codes = None
        self.days_ = np.empty(0, dtype=np.int64)
        if self.dates:
            days = _days(train.frame["timestamp"])
            if (days < 0).all():
                raise InputError("dates=True, but no training row has a timestamp",
                                 column="timestamp")
            self.days_ = np.unique(days[days >= 0])
            day_codes = fm.day_index(days, self.days_)
        start = time.perf_counter()
        self.samples_: Samples = fm.train(
            fm.Blocks(user_rows, item_rows, user_groups, item_groups), users, items, day_codes,
            len(self.days_), y, task=self._task, rank=self.rank, n_iter=self.n_iter,
            n_kept=kept, init_stdev=self.init_stdev, seed=self.random_seed)
        logger.info("%s: %d Gibbs iterations on %d rows in %.1f s, %d samples kept",
                    type(self).__name__, self.n_iter, len(y), time.perf_counter() - start, kept)
        return self

    def _day_codes(self, timestamps: Any, n: int) -> np.ndarray | None:
        if not self.dates:
            return None
        if timestamps is None:  # the model's 'now': its last training day
            return np.full(n, len(self.days_) - 1)
        days = _days(timestamps)
        if len(days) != n:
            raise InputError(f"predict got {len(days)} timestamps for {n} pairs")
        return _load_fm_kernel().day_index(days, self.days_)

    def _sample_scores(self, users: Any, items: Any, timestamps: Any) -> np.ndarray:
        u, i = self._pairs(users, items)
        return _load_fm_kernel().pair_scores(
            self.samples_, u, i, self._day_codes(timestamps, len(u)))

    def _item_bias_now(self) -> np.ndarray:
        # each sample's item bias, with the day terms of the last training day folded in
        s = self.samples_
        bias = s.item_bias
        if self.dates:
            bias = bias + np.einsum("sir,sr->si", s.item_factors, s.day_factors[:, -1])
        return bias

    def user_vectors(self) -> np.ndarray:
        """``(n_users, S * rank + 1)``: each kept sample's factor sum ``P_u``, then 1."""
        self._fitted()
        f = self.samples_.user_factors
        return np.hstack([f.transpose(1, 0, 2).reshape(self.n_users_, -1),
                          np.ones((self.n_users_, 1))])

    def item_vectors(self) -> np.ndarray:
        """``(n_items, S * rank + 1)``: each sample's ``P_i / S``, then the mean item bias."""
        self._fitted()
        f = self.samples_.item_factors
        n_samples = f.shape[0]
        return np.hstack([f.transpose(1, 0, 2).reshape(self.n_items_, -1) / n_samples,
                          self._item_bias_now().mean(axis=0)[:, None]])

    def score_all(self, users: np.ndarray) -> np.ndarray:
        """The posterior mean score (for the classifier: of the probit's latent score) of every
        item at the last training day: ``user_vectors() @ item_vectors().T`` plus the user's
        constant."""
        u = self._codes(users, "user")
        s = self.samples_
        const = s.user_bias[:, u]
        if self.dates:
            const = const + s.day_bias[:, -1][:, None] + np.einsum(
                "sur,sr->su", s.user_factors[:, u], s.day_factors[:, -1])
        return const.mean(axis=0)[:, None] + self.user_vectors()[u] @ self.item_vectors().T


class FMRegressor(_FactorizationMachine):
    """A Bayesian factorization machine regressor of the rating (the seed's star_rating target).

    Parameters
    ----------
    rank : int
        Latent factors per feature.
    n_iter : int
        Gibbs iterations.
    n_kept_samples : int or None
        The last samples kept for prediction; None: all but the first tenth (burn-in).
    implicit_features : bool
        Add SVD++'s implicit feedback: each user's rated items and each item's raters, each
        weighted 1/sqrt(count) (myFM's examples; Rendle et al. 2019).
    dates : bool
        Add the day of the rating as a categorical feature; a day not seen in training counts
        as the latest training day before it, and ``predict`` without timestamps (and
        ``score_all``) uses the last training day.
    user_features, item_features : DataFrame or None
        Side features indexed by the original user / item id (e.g. the customer's segment, the
        item's category): non-numeric columns one-hot, numeric columns as they are.
    init_stdev : float
        Standard deviation of the initial factors.
    random_seed : int
        The sampler's seed: equal seeds give equal models.

    Examples
    --------
    >>> from segmint.recommend.interactions import read_ratings
    >>> rng = np.random.default_rng(0)
    >>> u, i = np.divmod(np.arange(400), 20)
    >>> train = read_ratings(pd.DataFrame({"user": u, "item": i,
    ...                                    "rating": np.where(u % 2 == i % 2, 5, 1)}))
    >>> model = FMRegressor(rank=2, n_iter=60, implicit_features=False).fit(train)
    >>> np.round(model.predict(np.array([0, 0]), np.array([0, 1]))).tolist()
    [5.0, 1.0]
    """

    def _targets(self, ratings: np.ndarray, train: Interactions) -> np.ndarray:
        self.scale_ = train.scale
        return ratings

    def predict(self, users: np.ndarray, items: np.ndarray, timestamps: Any = None) -> np.ndarray:
        """The posterior mean rating of each pair, clipped to the scale; ``timestamps`` (one per
        pair) when the model uses dates."""
        out = self._sample_scores(users, items, timestamps).mean(axis=0)
        return out if self.scale_ is None else np.clip(out, *self.scale_)


class FMClassifier(_FactorizationMachine):
    """A Bayesian factorization machine classifier (probit link): the seed's "5 stars = 1".

    ``positive_from`` is the lowest rating counted as class 1 (default: the top of the declared
    scale, or any interaction when there is no scale). ``predict`` gives P(class 1), the
    posterior mean of the probit's probability; ``score_all`` and the vectors order items by the
    posterior mean latent score, which orders them as P(class 1) does up to sampling noise.
    Other parameters as :class:`FMRegressor`.
    """

    _parameter_constraints = {**_FactorizationMachine._parameter_constraints,
                              "positive_from": [Real, None]}
    _task = "classification"

    def __init__(self, rank: int = 10, n_iter: int = 200, n_kept_samples: int | None = None,
                 implicit_features: bool = True, dates: bool = False,
                 user_features: pd.DataFrame | None = None,
                 item_features: pd.DataFrame | None = None, init_stdev: float = 0.1,
                 random_seed: int = 0, positive_from: float | None = None) -> None:
        super().__init__(rank, n_iter, n_kept_samples, implicit_features, dates, user_features,
                         item_features, init_stdev, random_seed)
        self.positive_from = positive_from

    def _targets(self, ratings: np.ndarray, train: Interactions) -> np.ndarray:
        if self.positive_from is not None:
            threshold = float(self.positive_from)
        elif train.scale is not None:
            threshold = float(train.scale[1])
        else:
            threshold = -np.inf
        y = (ratings >= threshold).astype(np.float64)
        n_pos = int(y.sum())
        if n_pos in (0, len(y)):
            which = "positive" if n_pos else "negative"
            raise InputError(f"FMClassifier needs both classes: all {len(y)} training rows are "
                             f"{which} (rating >= {threshold:g} is class 1)", column="rating")
        self.positive_from_ = threshold
        return y

    def predict(self, users: np.ndarray, items: np.ndarray, timestamps: Any = None) -> np.ndarray:
        """P(class 1) of each pair: the mean over samples of Phi(score)."""
        return ndtr(self._sample_scores(users, items, timestamps)).mean(axis=0)


# --------------------------------------------------------------------------- ranking models

class EASE(_Recommender):
    """Steck (2019)'s EASE: an item-item linear model with a zero diagonal, in closed form:
    ``P = (X^T X + Lambda)^-1``, ``B = I - P diag(1 / diag(P))``, score ``X_u B``.

    ``Lambda = l2 I`` is plain EASE. ``dropout = p > 0`` adds ``p / (1 - p) diag(X^T X)``, the
    emphasised-denoising variant (EDLAE, Steck 2020): a popular item is regularised in
    proportion to its count, as dropping each input with probability p would.

    Parameters
    ----------
    l2 : float
        The ridge penalty.
    dropout : float in [0, 1)
        EDLAE's dropout rate (0: plain EASE).
    values : {"binary", "rating"}
        What ``X`` holds.

    Examples
    --------
    >>> from segmint.recommend.interactions import read_ratings
    >>> train = read_ratings(pd.DataFrame({"user": [1, 1, 2], "item": [1, 2, 1],
    ...                                    "rating": [1, 1, 1]}))
    >>> EASE(l2=1.0).fit(train).weights_.round(3).tolist()
    [[0.0, 0.333], [0.5, 0.0]]
    """

    _parameter_constraints = {"l2": _NON_NEGATIVE,
                              "dropout": [Interval(Real, 0, 1, closed="left")],
                              "values": [StrOptions({"binary", "rating"})]}

    def __init__(self, l2: float = 500.0, dropout: float = 0.0, values: str = "binary") -> None:
        self.l2 = l2
        self.dropout = dropout
        self.values = values

    def fit(self, train: Interactions) -> EASE:
        """Learn ``weights_`` (items x items) and keep the users' rows (their input)."""
        users, items, ratings = self._start(train)
        values = np.ones(len(users)) if self.values == "binary" else ratings
        self.history_ = _user_item_matrix(users, items, values, self.n_users_, self.n_items_)
        gram = (self.history_.T @ self.history_).toarray()
        diag = np.diag(gram).copy()
        penalty = self.l2 + self.dropout / (1.0 - self.dropout) * diag
        gram[np.diag_indices_from(gram)] += penalty
        if not (np.diag(gram) > 0).all():
            raise InputError("EASE with l2 = 0 needs every item to have an interaction: use l2 > 0")
        precision = np.linalg.inv(gram)
        weights = -precision / np.diag(precision)[None, :]
        np.fill_diagonal(weights, 0.0)
        self.weights_ = weights
        return self

    def predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """``X_u B_{:, i}`` for each pair."""
        u, i = self._pairs(users, items)
        rows = self.history_[u]
        return np.asarray(rows.multiply(self.weights_[:, i].T).sum(axis=1)).ravel()

    def score_all(self, users: np.ndarray) -> np.ndarray:
        """``X_u B`` for the users."""
        u = self._codes(users, "user")
        return np.asarray(self.history_[u] @ self.weights_)


class _ImplicitModel(_Recommender):
    """A model from the ``implicit`` package (CPU): its factors are the vectors."""

    def _fit_implicit(self, make: Any, train: Interactions, ratings: bool = False) -> None:
        """Fit ``make()`` on the users x items matrix of ``train`` (ones, or the ratings)."""
        from threadpoolctl import threadpool_limits

        users, items, values = self._start(train)
        matrix = _user_item_matrix(users, items, values if ratings else np.ones(len(users)),
                                   self.n_users_, self.n_items_)

        # implicit runs its own threads; OpenBLAS's pool beneath them only slows it down (and
        # implicit warns of it when the model is made)
        with threadpool_limits(1, "blas"):
            model = make()
            model.fit(matrix, show_progress=False)
        self.user_factors_ = np.asarray(model.user_factors, dtype=np.float64)
        self.item_factors_ = np.asarray(model.item_factors, dtype=np.float64)

    def user_vectors(self) -> np.ndarray:
        """The user factors."""
        self._fitted()
        return self.user_factors_

    def item_vectors(self) -> np.ndarray:
        """The item factors."""
        self._fitted()
        return self.item_factors_

    def predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """The inner product of each pair's factors."""
        u, i = self._pairs(users, items)
        return np.einsum("nr,nr->n", self.user_factors_[u], self.item_factors_[i])

    def score_all(self, users: np.ndarray) -> np.ndarray:
        """The inner products with every item."""
        u = self._codes(users, "user")
        return self.user_factors_[u] @ self.item_factors_.T


class ALS(_ImplicitModel):
    """Implicit-feedback matrix factorisation (Hu, Koren and Volinsky 2008) by ``implicit``'s
    CPU alternating least squares (conjugate gradient): preference 1 for every interaction,
    confidence ``1 + alpha * value``.

    Parameters
    ----------
    factors, regularization, iterations : as ``implicit.als.AlternatingLeastSquares``
    alpha : float
        Confidence per unit of the value.
    values : {"binary", "rating"}
        The value: 1 per interaction, or the rating / count.
    random_state : int
        Seeds the initial factors; each user's and item's solve is independent of the thread
        count, so runs repeat exactly.
    num_threads : int
        Threads (at most the cores you want to use).
    """

    _parameter_constraints = {"factors": _POSITIVE_INT, "regularization": _NON_NEGATIVE,
                              "alpha": _NON_NEGATIVE, "iterations": _POSITIVE_INT,
                              "values": [StrOptions({"binary", "rating"})],
                              "random_state": _SEED, "num_threads": _POSITIVE_INT}

    def __init__(self, factors: int = 64, regularization: float = 0.05, alpha: float = 10.0,
                 iterations: int = 15, values: str = "binary", random_state: int = 0,
                 num_threads: int = 2) -> None:
        self.factors = factors
        self.regularization = regularization
        self.alpha = alpha
        self.iterations = iterations
        self.values = values
        self.random_state = random_state
        self.num_threads = num_threads

    def fit(self, train: Interactions) -> ALS:
        """Learn ``user_factors_`` and ``item_factors_``."""
        from implicit.cpu.als import AlternatingLeastSquares

        def make() -> Any:
            return AlternatingLeastSquares(
                factors=self.factors, regularization=self.regularization, alpha=self.alpha,
                iterations=self.iterations, random_state=self.random_state,
                num_threads=self.num_threads, dtype=np.float32)

        self._fit_implicit(make, train, ratings=self.values == "rating")
        return self


class BPR(_ImplicitModel):
    """A factorization machine with a ranking loss: Bayesian personalised ranking (Rendle et al.
    2009) by ``implicit``'s CPU ``BayesianPersonalizedRanking``.

    Why implicit's BPR is the FM: with one-hot user + item features an FM scores
    ``w0 + w_u + w_i + <V_u, V_i>``; BPR's pairwise loss sees only differences between two
    items of one user, where ``w0`` and ``w_u`` cancel, so the FM under BPR *is* matrix
    factorisation with an item bias, which is what implicit fits: its user factors end in 1 and
    its item factors in the item's bias, exactly the seed's ``[V_u, 1]`` and ``[V_i, w_i]``.
    Side features would need an FM of our own; implicit's compiled SGD is far faster than a
    numpy one and well kept.

    ``num_threads`` is 1 by default: implicit's BPR runs lock-free (Hogwild) SGD, which repeats
    exactly only on one thread.
    """

    _parameter_constraints = {"factors": _POSITIVE_INT, "learning_rate": _NON_NEGATIVE,
                              "regularization": _NON_NEGATIVE, "iterations": _POSITIVE_INT,
                              "random_state": _SEED, "num_threads": _POSITIVE_INT}

    def __init__(self, factors: int = 64, learning_rate: float = 0.05,
                 regularization: float = 0.01, iterations: int = 100, random_state: int = 0,
                 num_threads: int = 1) -> None:
        self.factors = factors
        self.learning_rate = learning_rate
        self.regularization = regularization
        self.iterations = iterations
        self.random_state = random_state
        self.num_threads = num_threads

    def fit(self, train: Interactions) -> BPR:
        """Learn ``user_factors_`` (last column 1) and ``item_factors_`` (last column the bias)."""
        from implicit.cpu.bpr import BayesianPersonalizedRanking

        def make() -> Any:
            return BayesianPersonalizedRanking(
                factors=self.factors, learning_rate=self.learning_rate,
                regularization=self.regularization, iterations=self.iterations,
                random_state=self.random_state, num_threads=self.num_threads, dtype=np.float32)

        self._fit_implicit(make, train)
        return self


class Blend(_Recommender):
    """A weighted sum of rankers' scores, each standardised per user (zero mean, unit spread
    over the catalogue) so that no model's scale dominates: e.g. EASE with ALS.

    Parameters
    ----------
    models : list of models
        Unfitted models; ``fit`` fits each on the same data.
    weights : list of float
        One per model.

    Examples
    --------
    >>> from segmint.recommend.interactions import read_ratings
    >>> train = read_ratings(pd.DataFrame({"user": [1, 1, 2], "item": [1, 2, 1],
    ...                                    "rating": [1, 1, 1]}))
    >>> blend = Blend([Popularity(), EASE(l2=1.0)], [1.0, 0.0]).fit(train)
    >>> blend.score_all(np.array([1])).round(3).tolist()
    [[1.0, -1.0]]
    """

    _parameter_constraints = {"models": [list], "weights": [list]}

    def __init__(self, models: list[Any], weights: list[float]) -> None:
        self.models = models
        self.weights = weights

    def fit(self, train: Interactions) -> Blend:
        """Fit every model (as ``models_``)."""
        self._start(train)
        if len(self.models) != len(self.weights) or not self.models:
            raise SpecError(f"Blend needs one weight per model; got {len(self.models)} models "
                            f"and {len(self.weights)} weights")
        from sklearn.base import clone

        self.models_ = [clone(model).fit(train) for model in self.models]
        return self

    def score_all(self, users: np.ndarray) -> np.ndarray:
        """The weighted sum of the models' per-user standardised scores."""
        u = self._codes(users, "user")
        total = np.zeros((len(u), self.n_items_))
        for model, weight in zip(self.models_, self.weights, strict=True):
            scores = model.score_all(u)
            spread = scores.std(axis=1, keepdims=True)
            total += weight * (scores - scores.mean(axis=1, keepdims=True)) / np.where(
                spread > 0, spread, 1.0)
        return total

    def predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """The blended score of each pair (standardised over each user's whole catalogue)."""
        u, i = self._pairs(users, items)
        unique, row = np.unique(u, return_inverse=True)
        return self.score_all(unique)[row, i]
