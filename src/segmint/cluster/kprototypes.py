"""k-prototypes: k-means for customer tables that mix numeric and categorical columns.

Huang (1997, 1998): a prototype is a mean over the numeric columns and a mode over the
categorical ones; the dissimilarity of a customer to a prototype is the squared euclidean
distance over the (standardised) numeric columns plus ``gamma`` times the number of categorical
columns where they differ. Lloyd-style iterations alternate "join the nearest prototype" and
"move each prototype to the mean / mode of its customers".

Differences from the ``kmodes`` package, on purpose: numeric columns are standardised before
clustering (raw, the widest numeric column sets the segments on its own); no initialisation
ever fails while the table has ``n_clusters`` distinct rows; ties between modes go to the
lowest category code, so seeded runs repeat exactly.
"""
from __future__ import annotations

import logging
import operator
from numbers import Integral, Real
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from segmint.cluster._sklearn_compat import Interval, StrOptions

__all__ = ["KPrototypes"]

logger = logging.getLogger(__name__)


class KPrototypes(ClusterMixin, BaseEstimator):
    """k-prototypes clustering of mixed numeric and categorical data.

    Parameters
    ----------
    n_clusters : int, default=8
        The number of segments (prototypes).
    categorical : list of int or None, default=None
        Column indices of X that are categorical. None: the object, string and category
        columns when X is a DataFrame, else none. Every other column is numeric. Categorical
        values are compared as text (``str(value)``).
    gamma : float >= 0 or "auto", default="auto"
        Weight of one categorical mismatch against the numeric squared distance. "auto" is
        clustMixType's ``lambdaest``: the sum of the numeric columns' variances (``ddof=1``,
        after scaling when ``scale_numeric``) over the sum of the categorical columns'
        ``1 - sum_j p_j^2``. Without categorical columns it is 0; without numeric columns, or
        when either sum is 0, it is 1.
    init : {"huang", "cao", "k-means++"}, default="huang"
        "huang": per prototype, a level of every categorical column drawn by its frequency and
        numeric values drawn around the column means, then moved to the nearest row not yet
        taken. "cao": Cao et al. (2009), the densest row first, then the row with the largest
        density times distance to the chosen prototypes; deterministic, so it runs once whatever
        ``n_init``. "k-means++": D^2 sampling in the mixed dissimilarity (greedy, as
        scikit-learn's). All three start from ``n_clusters`` distinct rows.
    n_init : int, default=10
        Runs from different starts; the one of lowest cost is kept.
    max_iter : int, default=100
        Most iterations of one run.
    random_state : int, RandomState instance or None, default=None
        Draws the seed of every run.
    scale_numeric : bool, default=True
        Standardise numeric columns (mean 0, standard deviation 1; a constant column is only
        centred) with the statistics of the data ``fit`` sees.

    Attributes
    ----------
    labels_ : ndarray of shape (n_samples,), int64
    cost_ : float
        Sum of every row's dissimilarity to its own prototype.
    n_iter_ : int
        Iterations of the kept run.
    gamma_ : float
        The categorical weight used.
    categorical_ : ndarray of int64
        Indices of the categorical columns.
    numeric_ : ndarray of int64
        Indices of the numeric columns.
    numeric_mean_, numeric_scale_ : ndarray of float64
        The standardisation of the numeric columns (0 and 1 when ``scale_numeric`` is False).
    numeric_centers_ : ndarray of shape (n_clusters, n_numeric), float64
        Prototype means, in scaled units.
    categorical_codes_ : ndarray of shape (n_clusters, n_categorical), int64
        Prototype modes: ``categories_[j][categorical_codes_[c, j]]``.
    categories_ : list of list of str
        The levels of each categorical column seen in ``fit``, sorted.
    n_features_in_ : int

    Examples
    --------
    >>> import pandas as pd
    >>> X = pd.DataFrame({"age": [21, 23, 22, 61, 64, 60],
    ...                   "plan": ["basic", "basic", "basic", "gold", "gold", "gold"]})
    >>> km = KPrototypes(n_clusters=2, n_init=2, random_state=0).fit(X)
    >>> km.categorical_.tolist(), sorted(km.categories_[0])
    ([1], ['basic', 'gold'])
    >>> km.labels_[:3].tolist() == [km.labels_[0]] * 3, bool(km.labels_[0] != km.labels_[3])
    (True, True)
    >>> bool((km.predict(X) == km.labels_).all())
    True
    """

    _parameter_constraints: dict[str, list[Any]] = {
        "n_clusters": [Interval(Integral, 1, None, closed="left")],
        "categorical": [list, None],
        "gamma": [Interval(Real, 0, None, closed="left"), StrOptions({"auto"})],
        "init": [StrOptions({"huang", "cao", "k-means++"})],
        "n_init": [Interval(Integral, 1, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
        "scale_numeric": ["boolean"],
    }

    def __init__(self, n_clusters: int = 8, *, categorical: list[int] | None = None,
                 gamma: float | str = "auto", init: str = "huang", n_init: int = 10,
                 max_iter: int = 100, random_state: Any = None, scale_numeric: bool = True) -> None:
        self.n_clusters = n_clusters
        self.categorical = categorical
        self.gamma = gamma
        self.init = init
        self.n_init = n_init
        self.max_iter = max_iter
        self.random_state = random_state
        self.scale_numeric = scale_numeric

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.categorical = True
        tags.input_tags.string = True
        return tags

    # ------------------------------------------------------------------ public surface

    def fit(self, X: Any, y: Any = None) -> KPrototypes:
        """Find ``n_clusters`` prototypes of X.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
            No missing values.
        y : ignored

        Returns
        -------
        KPrototypes
            self, fitted.

        Examples
        --------
        >>> import numpy as np
        >>> X = np.array([[0.0, 0.1], [0.1, 0.0], [5.0, 5.1], [5.1, 5.0]])
        >>> km = KPrototypes(n_clusters=2, random_state=0).fit(X)
        >>> km.gamma_, km.categorical_.tolist(), km.numeric_.tolist()
        (0.0, [], [0, 1])
        """
        from segmint.cluster._kprototypes_kernels import cost

        self._validate_params()
        k = int(self.n_clusters)
        frame = _Columns.read(X, self.categorical)
        self.n_features_in_ = frame.n_features
        self.categorical_ = np.asarray(frame.categorical, dtype=np.int64)
        self.numeric_ = np.asarray(frame.numeric, dtype=np.int64)

        X_num = frame.numeric_matrix()
        if self.scale_numeric:
            mean, scale = X_num.mean(axis=0), X_num.std(axis=0)
            scale[scale == 0] = 1.0
        else:
            mean, scale = np.zeros(X_num.shape[1]), np.ones(X_num.shape[1])
        self.numeric_mean_, self.numeric_scale_ = mean, scale
        Xs = np.ascontiguousarray((X_num - mean) / scale)
        codes, self.categories_ = frame.encode()
        n = len(Xs)
        level_freqs = [np.bincount(codes[:, j], minlength=len(levels)) / n
                       for j, levels in enumerate(self.categories_)]
        self.gamma_ = _auto_gamma(Xs, level_freqs) if self.gamma == "auto" else float(self.gamma)

        pool = _distinct_rows(Xs, codes)
        if len(pool) < k:
            raise ValueError(f"X has {len(pool)} distinct rows, fewer than n_clusters={k}: "
                             f"k-prototypes needs n_clusters distinct starting rows")
        search = _Search(Xs, codes, self.categories_, self.gamma_, k, int(self.max_iter))
        starts = _Starts(Xs[pool], codes[pool], level_freqs, Xs.mean(axis=0), Xs.std(axis=0),
                         self.gamma_, k)

        rs = check_random_state(self.random_state)
        seeds = rs.randint(np.iinfo(np.int32).max, size=int(self.n_init))
        runs = 1 if self.init == "cao" else len(seeds)  # Cao's start is deterministic
        best: tuple[float, np.ndarray, np.ndarray, np.ndarray, int] | None = None
        for seed in seeds[:runs]:
            first = starts.pick(self.init, np.random.RandomState(seed))
            labels, centers, modes, n_iter = search.run(starts.X[first], starts.codes[first])
            run_cost = float(cost(Xs, codes, centers, modes, labels, self.gamma_))
            logger.debug("k-prototypes run seed=%d: cost %.6g after %d iterations",
                         seed, run_cost, n_iter)
            if best is None or run_cost < best[0]:
                best = (run_cost, labels, centers, modes, n_iter)
        assert best is not None
        self.cost_, self.labels_, self.numeric_centers_, self.categorical_codes_, self.n_iter_ = best
        return self

    def predict(self, X: Any) -> np.ndarray:
        """The segment of each row of X: its nearest prototype.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features_in_)
            Columns as in ``fit``. A categorical level ``fit`` never saw matches no mode.

        Returns
        -------
        ndarray of shape (n_samples,), int64

        Examples
        --------
        >>> import numpy as np
        >>> X = np.array([[0.0, 0.1], [0.1, 0.0], [5.0, 5.1], [5.1, 5.0]])
        >>> km = KPrototypes(n_clusters=2, random_state=0).fit(X)
        >>> bool(km.predict([[4.9, 5.2]])[0] == km.labels_[2])
        True
        """
        labels, _ = self._nearest(X)
        return labels

    def fit_predict(self, X: Any, y: Any = None) -> np.ndarray:
        """Fit, then return ``labels_``.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
        y : ignored

        Returns
        -------
        ndarray of shape (n_samples,), int64

        Examples
        --------
        >>> KPrototypes(n_clusters=1).fit_predict([[1.0], [2.0]]).tolist()
        [0, 0]
        """
        return self.fit(X).labels_

    def transform(self, X: Any) -> np.ndarray:
        """Dissimilarity of each row of X to each prototype.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features_in_)

        Returns
        -------
        ndarray of shape (n_samples, n_clusters), float64
            Squared euclidean distance over the scaled numeric columns plus ``gamma_`` times
            the number of categorical mismatches; its row-wise argmin is :meth:`predict`.

        Examples
        --------
        >>> X = [[0.0, "a"], [0.0, "b"], [2.0, "a"]]
        >>> km = KPrototypes(n_clusters=3, categorical=[1], gamma=1.0, scale_numeric=False,
        ...                  random_state=0).fit(X)
        >>> km.transform([[0.0, "a"]]).min().item()
        0.0
        """
        _, D = self._nearest(X)
        return D

    # ------------------------------------------------------------------ internals

    def _nearest(self, X: Any) -> tuple[np.ndarray, np.ndarray]:
        # predict and transform share one computation, so transform's argmin is predict
        check_is_fitted(self, "categorical_codes_")
        frame = _Columns.read(X, self.categorical_.tolist(), n_features=self.n_features_in_)
        Xs = np.ascontiguousarray((frame.numeric_matrix() - self.numeric_mean_) / self.numeric_scale_)
        codes, _ = frame.encode(self.categories_)
        return _assign(Xs, codes, self.numeric_centers_, self.categorical_codes_, self.gamma_)


def _numeric_sq_dist(Xs: np.ndarray, x_sq: np.ndarray, centers: np.ndarray) -> np.ndarray:
    # BLAS: ||x||^2 + ||c||^2 - 2 x.c; clipped at 0, which rounding can cross
    D = Xs @ centers.T
    D *= -2.0
    D += x_sq[:, None]
    D += np.einsum("ij,ij->i", centers, centers)[None, :]
    np.maximum(D, 0.0, out=D)
    return D


def _assign(Xs: np.ndarray, codes: np.ndarray, centers: np.ndarray, modes: np.ndarray,
            gamma: float, x_sq: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(labels, dissimilarities (n x k)); the minimum of each row is ``D[i, labels[i]]``."""
    from segmint.cluster._kprototypes_kernels import add_mismatches_argmin

    if x_sq is None:
        x_sq = np.einsum("ij,ij->i", Xs, Xs)
    D = _numeric_sq_dist(Xs, x_sq, centers)
    labels = np.empty(len(Xs), dtype=np.int64)
    min_dist = np.empty(len(Xs))
    add_mismatches_argmin(D, codes, np.ascontiguousarray(modes), float(gamma), labels, min_dist)
    return labels, D


def _auto_gamma(Xs: np.ndarray, level_freqs: list[np.ndarray]) -> float:
    """clustMixType's lambdaest (R's var: ddof=1)."""
    if not level_freqs:
        return 0.0
    v_num = float(Xs.var(axis=0, ddof=1).sum()) if len(Xs) > 1 else 0.0
    v_cat = float(sum(1.0 - (f ** 2).sum() for f in level_freqs))
    if Xs.shape[1] == 0 or v_num <= 0.0 or v_cat <= 0.0:
        return 1.0  # one side carries no spread: weigh a mismatch as one unit of variance
    return v_num / v_cat


def _distinct_rows(Xs: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Sorted indices of one row per distinct row of (Xs, codes)."""
    Z = np.hstack([Xs + 0.0, codes.astype(np.float64)])  # + 0.0: -0.0 and 0.0 are one value
    hashes = pd.util.hash_pandas_object(pd.DataFrame(Z), index=False).to_numpy()
    _, first = np.unique(hashes, return_index=True)
    # rows with different hashes differ; a collision can only merge distinct rows, so when
    # too few remain, count exactly
    if len(first) < len(Z):
        Zc = np.ascontiguousarray(Z)
        rows = Zc.view(np.dtype((np.void, Zc.dtype.itemsize * Zc.shape[1]))).ravel()
        exact_first = np.unique(rows, return_index=True)[1]
        if len(exact_first) > len(first):
            first = exact_first
    return np.sort(first)


class _Columns:
    """X read column by column: numeric columns as float64, categorical ones as text."""

    def __init__(self, numeric: list[np.ndarray], text: list[np.ndarray], categorical: list[int],
                 n_features: int, n_rows: int) -> None:
        self.numeric_columns, self.text_columns = numeric, text
        self.categorical = categorical
        self.numeric = [j for j in range(n_features) if j not in set(categorical)]
        self.n_features, self.n_rows = n_features, n_rows

    @classmethod
    def read(cls, X: Any, categorical: list[int] | None, n_features: int | None = None) -> _Columns:
        if isinstance(X, pd.DataFrame):
            columns = [X.iloc[:, j] for j in range(X.shape[1])]
            if categorical is None:
                categorical = [j for j, col in enumerate(columns) if _is_categorical_dtype(col.dtype)]
        else:
            arr = np.asarray(X) if isinstance(X, np.ndarray) or categorical is None \
                else np.asarray(X, dtype=object)
            if arr.ndim != 2:
                raise ValueError(f"X must be 2-dimensional (rows x columns), got {arr.ndim} "
                                 f"dimension(s)")
            columns = [arr[:, j] for j in range(arr.shape[1])]
            categorical = [] if categorical is None else categorical
        p = len(columns)
        if n_features is not None and p != n_features:
            raise ValueError(f"X has {p} columns, but KPrototypes was fitted with {n_features}")
        n = len(columns[0]) if columns else 0
        if p == 0 or n == 0:
            raise ValueError(f"X must have at least one row and one column, got shape ({n}, {p})")
        categorical = _check_categorical(categorical, p)
        chosen = set(categorical)
        numeric = [_numeric_column(columns[j], j) for j in range(p) if j not in chosen]
        text = [_text_column(columns[j], j) for j in categorical]
        return cls(numeric, text, categorical, p, n)

    def numeric_matrix(self) -> np.ndarray:
        if not self.numeric_columns:
            return np.empty((self.n_rows, 0))
        return np.column_stack(self.numeric_columns)

    def encode(self, categories: list[list[str]] | None = None) -> tuple[np.ndarray, list[list[str]]]:
        """int64 codes (n x p_cat) into the sorted levels (learned when ``categories`` is None;
        else looked up, an unseen level is -1)."""
        codes = np.empty((self.n_rows, len(self.text_columns)), dtype=np.int64)
        levels_out = []
        for j, text in enumerate(self.text_columns):
            if categories is None:
                col_codes, levels = pd.factorize(text, sort=True)
                levels_out.append([str(v) for v in levels])
            else:
                col_codes = pd.Index(categories[j], dtype=object).get_indexer(text)
                levels_out.append(categories[j])
            codes[:, j] = col_codes
        return codes, levels_out


def _is_categorical_dtype(dtype: Any) -> bool:
    return (isinstance(dtype, pd.CategoricalDtype) or pd.api.types.is_object_dtype(dtype)
            or pd.api.types.is_string_dtype(dtype))


def _check_categorical(categorical: list[Any], p: int) -> list[int]:
    out = []
    for j in categorical:
        try:
            index = operator.index(j)
        except TypeError:
            raise ValueError(f"categorical must hold column indices (int), got {j!r}") from None
        if not 0 <= index < p:
            raise ValueError(f"categorical column index {index} is out of range for X's {p} "
                             f"columns (0..{p - 1})")
        out.append(index)
    if len(set(out)) != len(out):
        raise ValueError(f"categorical lists a column twice: {out}")
    return sorted(out)


def _first_row(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def _numeric_column(col: Any, j: int) -> np.ndarray:
    try:
        if isinstance(col, pd.Series):
            values = col.to_numpy(dtype=np.float64, na_value=np.nan)
        else:
            values = np.asarray(col, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"column {j} is not numeric; list it in categorical if it holds "
                         f"categories") from None
    bad = ~np.isfinite(values)
    if bad.any():
        r = _first_row(bad)
        what = "missing value" if np.isnan(values[r]) else "infinite value"
        raise ValueError(f"{what} in column {j}, row {r} (first of {int(bad.sum())}); "
                         f"k-prototypes needs complete data")
    return values


def _text_column(col: Any, j: int) -> np.ndarray:
    values = col.to_numpy(dtype=object) if isinstance(col, pd.Series) else np.asarray(col, dtype=object)
    missing = pd.isna(values)
    if missing.any():
        r = _first_row(missing)
        raise ValueError(f"missing value in column {j}, row {r} (first of {int(missing.sum())}); "
                         f"k-prototypes needs complete data")
    if pd.api.types.infer_dtype(values, skipna=False) == "string":
        return values
    return np.array([str(v) for v in values], dtype=object)


class _Starts:
    """The three ways to choose starting prototypes, all among distinct rows (the pool), so a
    start never fails and never repeats a prototype."""

    def __init__(self, X: np.ndarray, codes: np.ndarray, level_freqs: list[np.ndarray],
                 numeric_mean: np.ndarray, numeric_std: np.ndarray, gamma: float, k: int) -> None:
        self.X, self.codes = np.ascontiguousarray(X), np.ascontiguousarray(codes)
        self.level_freqs = level_freqs
        self.numeric_mean, self.numeric_std = numeric_mean, numeric_std
        self.gamma, self.k = gamma, k

    def pick(self, init: str, rs: np.random.RandomState) -> np.ndarray:
        """Indices into the pool of k distinct starting rows."""
        if init == "huang":
            first = self._huang(rs)
        elif init == "cao":
            first = self._cao()
        else:
            first = self._kmeans_plusplus(rs)
        assert len(set(first.tolist())) == self.k
        return first

    def _to(self, i: int) -> np.ndarray:
        from segmint.cluster._kprototypes_kernels import dissimilarity_to_row

        return dissimilarity_to_row(self.X, self.codes, self.X[i], self.codes[i], self.gamma)

    def _huang(self, rs: np.random.RandomState) -> np.ndarray:
        from segmint.cluster._kprototypes_kernels import dissimilarity_to_row

        k = self.k
        # categorical levels drawn by their frequency (Huang 1997, as kmodes draws them);
        # numeric values around the column means (kmodes' k-prototypes)
        modes = np.zeros((k, len(self.level_freqs)), dtype=np.int64)
        for j, freqs in enumerate(self.level_freqs):
            modes[:, j] = rs.choice(len(freqs), size=k, p=freqs)
        centers = self.numeric_mean + rs.standard_normal((k, self.X.shape[1])) * self.numeric_std
        taken = np.zeros(len(self.X), dtype=bool)
        first = np.empty(k, dtype=np.int64)
        for c in range(k):
            d = dissimilarity_to_row(self.X, self.codes, centers[c], modes[c], self.gamma)
            d[taken] = np.inf
            first[c] = int(np.argmin(d))
            taken[first[c]] = True
        return first

    def _cao(self) -> np.ndarray:
        # density of a row: mean frequency of its levels (1 everywhere without categories)
        if self.level_freqs:
            density = np.mean([f[self.codes[:, j]] for j, f in enumerate(self.level_freqs)], axis=0)
        else:
            density = np.ones(len(self.X))
        first = [int(np.argmax(density))]
        closest = self._to(first[0])
        for _ in range(1, self.k):
            score = closest * density
            score[first] = -1.0  # taken rows never again, even when every score is 0
            nxt = int(np.argmax(score))
            first.append(nxt)
            np.minimum(closest, self._to(nxt), out=closest)
        return np.asarray(first, dtype=np.int64)

    def _kmeans_plusplus(self, rs: np.random.RandomState) -> np.ndarray:
        m = len(self.X)
        n_trials = 2 + int(np.log(self.k))
        first = [int(rs.randint(m))]
        closest = self._to(first[0])
        for _ in range(1, self.k):
            cumulative = np.cumsum(closest)
            total = cumulative[-1]
            if not total > 0:
                # every row left sits on a prototype (gamma 0 hides categories): any untaken row
                free = np.setdiff1d(np.arange(m), first)
                nxt = int(free[rs.randint(len(free))])
                first.append(nxt)
                np.minimum(closest, self._to(nxt), out=closest)
                continue
            # side="right" below total: only rows of positive weight, never a taken one
            trials = np.searchsorted(cumulative, rs.random_sample(n_trials) * total, side="right")
            best_potential, best_d, best_i = np.inf, closest, -1
            for i in trials:
                d = np.minimum(closest, self._to(int(i)))
                potential = d.sum()
                if potential < best_potential:
                    best_potential, best_d, best_i = potential, d, int(i)
            first.append(best_i)
            closest = best_d
        return np.asarray(first, dtype=np.int64)


class _Search:
    """Lloyd-style iterations from one start (the same data for every run of a fit)."""

    def __init__(self, Xs: np.ndarray, codes: np.ndarray, categories: list[list[str]],
                 gamma: float, k: int, max_iter: int) -> None:
        self.Xs, self.codes = Xs, codes
        self.x_sq = np.einsum("ij,ij->i", Xs, Xs)
        sizes = [len(levels) for levels in categories]
        self.offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        self.gamma, self.k, self.max_iter = gamma, k, max_iter

    def run(self, centers: np.ndarray, modes: np.ndarray
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
        from segmint.cluster._kprototypes_kernels import cluster_sums

        labels, D = _assign(self.Xs, self.codes, centers, modes, self.gamma, self.x_sq)
        n_iter = 0
        for n_iter in range(1, self.max_iter + 1):  # noqa: B007 - n_iter_ is the count run
            self._relocate_empty(labels, D[np.arange(len(labels)), labels])
            sums, counts, level_counts = cluster_sums(self.Xs, self.codes, self.offsets, labels,
                                                      self.k, int(self.offsets[-1]))
            centers = sums / counts[:, None]
            # argmax takes the first of equal counts: ties go to the lowest category code
            modes = np.column_stack(
                [level_counts[:, a:b].argmax(axis=1) for a, b in zip(self.offsets[:-1], self.offsets[1:],
                                                                      strict=True)]
            ).astype(np.int64) if len(self.offsets) > 1 else np.empty((self.k, 0), dtype=np.int64)
            new_labels, D = _assign(self.Xs, self.codes, centers, modes, self.gamma, self.x_sq)
            changed = not np.array_equal(new_labels, labels)
            labels = new_labels
            if not changed:
                break
        return labels, centers, modes, n_iter

    def _relocate_empty(self, labels: np.ndarray, min_dist: np.ndarray) -> None:
        # an empty cluster takes the row farthest from its prototype, from a cluster that
        # keeps at least one row
        counts = np.bincount(labels, minlength=self.k)
        empty = np.flatnonzero(counts == 0)
        if len(empty) == 0:
            return
        order = np.argsort(-min_dist, kind="stable")
        pos = 0
        for c in empty:
            while counts[labels[order[pos]]] <= 1:
                pos += 1
            i = order[pos]
            counts[labels[i]] -= 1
            labels[i] = c
            counts[c] = 1
            pos += 1
