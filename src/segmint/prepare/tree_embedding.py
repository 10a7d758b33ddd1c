"""Tree embedding: customers placed by what a random forest learned about one of their figures.

The "Insiders" workflow. A random forest learns one chosen column (gross revenue, say) from the
other features; each customer then lands in one leaf of each tree, and customers who share
leaves are customers the forest treats alike *as far as that column is concerned*. UMAP lays
the leaf memberships out in a few dimensions, and those coordinates are what is clustered.
Unlike the prepared matrix, the space weighs each feature by how much it says about the target:
a feature the forest never splits on moves nobody.

Two choices differ from the original project, both on purpose:

- ``umap_metric="hamming"``: a leaf index is a category (leaf 7 is not "between" leaves 6 and
  8), so the distance between two customers is the share of trees in which they fall in
  different leaves: Hamming distance on the leaf indices. The original project ran UMAP's
  default Euclidean distance on the raw indices; ``"euclidean"`` reproduces it.
- ``max_leaf_nodes=64``: fully grown trees end in leaves of one or two customers, so nearly
  every pair of customers differs in nearly every tree and the distances carry nothing. At most
  64 leaves per tree keeps each leaf a group of customers (hundreds of them in a table of tens
  of thousands). ``None`` grows the trees fully, as the original project did.

Customers whose leaves agree in every tree are one point to the forest, and they are common
(a leaf holds many customers): there are often a few times fewer distinct leaf combinations
than customers. UMAP lays out each distinct combination once, and its customers share the place
(what umap-learn's ``unique=True`` does). Fed the copies, UMAP finds a customer's neighbours all
at distance 0, makes islands of copies and its spectral start fails; on tens of thousands of
customers the fit then takes many minutes instead of seconds.

The forest's out-of-bag R² (``oob_score_``) says whether the leaves mean anything: a forest
that cannot predict its target out of bag splits on noise, and so does the embedding built on
its leaves. A warning is logged below 0.3.
"""
from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from numbers import Integral
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from segmint.errors import InputError
from segmint.prepare._checks import check_matrix

__all__ = ["TreeEmbedding"]

logger = logging.getLogger(__name__)

# out-of-bag R² below this: the forest explains under a third of the target, little to embed
_WEAK_FOREST = 0.3
_METRICS = ("hamming", "euclidean")


def _whole(value: Any, least: int) -> bool:
    return isinstance(value, Integral) and not isinstance(value, bool) and int(value) >= least


# Every parameter's rule, in one place: (accepts?, what it accepts in words). fit checks them
# all before any work.
_RULES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "target": (lambda v: isinstance(v, str) and v != "", "a column name"),
    "n_estimators": (lambda v: _whole(v, 1), "a whole number, at least 1"),
    "max_leaf_nodes": (lambda v: v is None or _whole(v, 2), "None or a whole number, at least 2"),
    "n_components": (lambda v: _whole(v, 1), "a whole number, at least 1"),
    "umap_metric": (lambda v: v in _METRICS, " or ".join(repr(m) for m in _METRICS)),
    "seed": (lambda v: _whole(v, 0), "a whole number, at least 0"),
}


class TreeEmbedding(TransformerMixin, BaseEstimator):
    """Random-forest leaves of each customer, laid out by UMAP (the "Insiders" workflow).

    Parameters
    ----------
    target : str
        The column the forest predicts from all the others (gross revenue, for instance).
    n_estimators : int
        Trees in the forest; each is one categorical coordinate of the leaf space.
    max_leaf_nodes : int or None
        Leaves per tree at most (see the module's description for why 64, not fully grown).
    n_components : int
        Dimensions of the embedding.
    umap_metric : {"hamming", "euclidean"}
        UMAP's distance between leaf-index rows: Hamming, the share of trees that put two
        customers in different leaves (leaf indices are categories), or Euclidean on the raw
        indices, as the original project did.
    seed : int
        Seeds the forest and UMAP (seeded UMAP runs on one thread).

    Attributes
    ----------
    features_ : list of str
        The columns the forest learns from: every column of the fitted frame but ``target``.
    forest_ : RandomForestRegressor
    umap_ : umap.UMAP
        Fitted on ``leaves_``.
    leaves_ : ndarray of shape (n_distinct, n_estimators)
        The distinct rows of leaf indices (one leaf per tree) among the fitted customers.
    leaves_embedding_ : ndarray of shape (n_distinct, n_components)
        Where UMAP put each of ``leaves_``.
    embedding_ : ndarray of shape (n_customers, n_components)
        The fitted customers' coordinates (what ``fit_transform`` returns): each customer at
        the place of its row of ``leaves_``.
    oob_score_ : float
        The forest's out-of-bag R² on ``target``: near 1, the leaves group customers by what
        drives the target; near 0 or below, the forest cannot predict it and the embedding
        lays out noise.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = pd.DataFrame({"orders": rng.uniform(0, 10, 80), "tenure": rng.normal(0, 1, 80)})
    >>> X["revenue"] = 50 * X["orders"] + rng.normal(0, 5, 80)
    >>> embedding = TreeEmbedding("revenue", n_estimators=20, max_leaf_nodes=8)
    >>> coords = embedding.fit_transform(X)
    >>> coords.shape, embedding.features_, embedding.get_feature_names_out().tolist()
    ((80, 2), ['orders', 'tenure'], ['tree_umap_0', 'tree_umap_1'])
    >>> bool(embedding.oob_score_ > 0.9)
    True
    >>> embedding.transform(X.drop(columns="revenue")).shape  # new customers need no target
    (80, 2)
    """

    def __init__(self, target: str, *, n_estimators: int = 100, max_leaf_nodes: int | None = 64,
                 n_components: int = 2, umap_metric: str = "hamming", seed: int = 0) -> None:
        self.target = target
        self.n_estimators = n_estimators
        self.max_leaf_nodes = max_leaf_nodes
        self.n_components = n_components
        self.umap_metric = umap_metric
        self.seed = seed

    def fit(self, X: pd.DataFrame, y: Any = None) -> TreeEmbedding:
        """Grow the forest on ``target`` and lay out the fitted customers' leaves with UMAP.

        Parameters
        ----------
        X : DataFrame
            Numeric, no missing values (imputed and scaled by the caller), holding ``target``
            and at least one other column.
        y : ignored

        Returns
        -------
        TreeEmbedding
            self, fitted.

        Raises
        ------
        ValueError
            A parameter breaks its rule (the message names it, its value and the rule).
        InputError
            ``target`` is not a column of ``X``, or is constant; ``X`` has no other column, a
            value that is not a number, NaN or inf (named by column and rows), or fewer than
            ``n_components + 2`` rows.
        """
        from sklearn.ensemble import RandomForestRegressor

        self._check_params()
        if not isinstance(X, pd.DataFrame):
            raise InputError("the tree embedding takes a table (a pandas DataFrame) with named "
                             f"columns, one of them the target; got {type(X).__name__}")
        if self.target not in X.columns:
            raise InputError("the tree embedding's target is not a column of the table",
                             column=self.target)
        # the target's missing-value indicator (as a preparation names it) would hand the
        # forest part of its answer: left out with the target
        leaks = {self.target, f"missing_{self.target}", f"missingindicator_{self.target}"}
        features = [str(c) for c in X.columns if c not in leaks]
        if not features:
            raise InputError("the tree embedding needs at least one column besides its target "
                             "to learn it from", column=self.target)
        if len(X) < self.n_components + 2:
            raise InputError(f"{len(X)} customers are too few for a {self.n_components}-dimensional "
                             f"tree embedding (at least {self.n_components + 2})")
        target = check_matrix(X[[self.target]], what="the tree embedding's target")[:, 0]
        if np.ptp(target) == 0:
            raise InputError(f"the tree embedding's target is constant (every customer has "
                             f"{target[0]:g}): a forest has nothing to learn, so its leaves "
                             "would say nothing; pick a column that varies", column=self.target)
        matrix = check_matrix(X[features], features, what="the tree embedding's input")

        forest = RandomForestRegressor(n_estimators=self.n_estimators,
                                       max_leaf_nodes=self.max_leaf_nodes, oob_score=True,
                                       random_state=self.seed)
        forest.fit(matrix, target)
        self.forest_ = forest
        self.oob_score_ = float(forest.oob_score_)
        if self.oob_score_ < _WEAK_FOREST:
            logger.warning("the tree embedding's forest predicts %r with out-of-bag R² %.2f: its "
                           "leaves hold little about the target, and the embedding is close to "
                           "noise", self.target, self.oob_score_)
        leaves = np.asarray(forest.apply(matrix), dtype=np.int64)
        distinct, where = np.unique(leaves, axis=0, return_inverse=True)
        if len(distinct) < self.n_components + 2:
            raise InputError(f"the forest puts all {len(leaves):,} customers in {len(distinct)} "
                             f"distinct leaf combinations: too few points to lay out in "
                             f"{self.n_components} dimensions", column=self.target)
        self.umap_ = self._make_umap(len(distinct))
        with _quiet_umap():
            placed = self.umap_.fit_transform(distinct)
        self.leaves_ = distinct
        self.leaves_embedding_ = np.asarray(placed, dtype=np.float64)
        self.embedding_ = self.leaves_embedding_[where.reshape(-1)]
        self.features_ = features
        self.feature_names_in_ = np.asarray([str(c) for c in X.columns], dtype=object)
        self.n_features_in_ = len(X.columns)
        return self

    def transform(self, X: pd.DataFrame) -> np.ndarray:
        """The UMAP coordinates of new customers: their leaves, placed among the fitted ones.

        ``X`` needs the fitted ``features_`` (the target may be there; it is not used).
        A customer whose leaves are a fitted combination (every fitted customer is one) takes
        its place; UMAP places the others by their nearest fitted neighbours in leaf space, each
        new combination once.
        """
        check_is_fitted(self, "embedding_")
        absent = [c for c in self.features_ if c not in getattr(X, "columns", ())]
        if absent:
            raise InputError("the tree embedding was fitted with this column; the table to "
                             "place lacks it", column=absent[0])
        matrix = check_matrix(X[self.features_], self.features_, what="the tree embedding's input")
        leaves = np.asarray(self.forest_.apply(matrix), dtype=np.int64)
        known = {row.tobytes(): i for i, row in enumerate(self.leaves_)}
        found = np.array([known.get(row.tobytes(), -1) for row in leaves], dtype=np.int64)
        coords = np.empty((len(leaves), self.leaves_embedding_.shape[1]), dtype=np.float64)
        seen = found >= 0
        coords[seen] = self.leaves_embedding_[found[seen]]
        if not seen.all():
            new, where = np.unique(leaves[~seen], axis=0, return_inverse=True)
            with _quiet_umap():
                placed = np.asarray(self.umap_.transform(new), dtype=np.float64)
            coords[~seen] = placed[where.reshape(-1)]
        return coords

    def fit_transform(self, X: pd.DataFrame, y: Any = None, **fit_params: Any) -> np.ndarray:
        """Fit, and return the fitted customers' coordinates (``embedding_``), not a re-placement."""
        return self.fit(X, y).embedding_.copy()

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """``tree_umap_0``, ``tree_umap_1``, ...: one name per embedding dimension."""
        check_is_fitted(self, "embedding_")
        return np.asarray([f"tree_umap_{i}" for i in range(self.n_components)], dtype=object)

    def describe(self) -> str:
        """What was fitted, in words, for the run's notes and the report.

        >>> e = TreeEmbedding("revenue", n_estimators=20)
        >>> e.features_, e.oob_score_ = ["orders", "tenure"], 0.874
        >>> text = e.describe()
        >>> text[:text.index(" that")]
        'UMAP (hamming) of the leaves of a 20-tree forest (at most 64 leaves each)'
        >>> text[text.index("that"):]
        "that predicts 'revenue' from 2 columns with out-of-bag R² 0.87, to 2 dimensions"
        """
        leaves = "fully grown" if self.max_leaf_nodes is None else \
            f"at most {self.max_leaf_nodes} leaves each"
        text = (f"UMAP ({self.umap_metric}) of the leaves of a {self.n_estimators}-tree forest "
                f"({leaves}) that predicts {self.target!r} from {len(self.features_)} columns "
                f"with out-of-bag R² {self.oob_score_:.2f}, to {self.n_components} dimensions")
        if self.oob_score_ < _WEAK_FOREST:
            text += "; the forest predicts its target poorly, so the layout is close to noise"
        return text

    # ------------------------------------------------------------------ private

    def _check_params(self) -> None:
        for name, (accepts, rule) in _RULES.items():
            value = getattr(self, name)
            if not accepts(value):
                raise ValueError(f"TreeEmbedding's {name} must be {rule}; got {value!r}")

    def _make_umap(self, rows: int) -> Any:
        import umap

        # n_neighbors: UMAP's default 15, fewer for fewer customers; n_jobs=1 says what the
        # seed implies, so umap-learn does not warn that it overrode it
        return umap.UMAP(n_components=self.n_components, metric=self.umap_metric,
                         n_neighbors=min(15, rows - 1), random_state=self.seed, n_jobs=1)


@contextmanager
def _quiet_umap() -> Iterator[None]:
    # umap-learn warns that Hamming has no gradient for inverse_transform, which is never used
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="gradient function is not yet implemented",
                                category=UserWarning)
        yield
