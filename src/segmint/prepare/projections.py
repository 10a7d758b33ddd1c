"""Projections for plots: customers as points in two or three dimensions.

Four methods, one result (:class:`Projection`):

- ``pca``: principal components of the prepared matrix. Linear, so distances and the share
  of variance each axis explains mean what they say.
- ``tsne`` (scikit-learn's t-SNE, started from PCA) and ``umap`` (umap-learn): non-linear maps
  that keep each customer's nearest neighbours near. Groups that are apart in the data are
  apart in the plot, but the distances between groups and the groups' sizes are not to scale.
- ``mca`` (:func:`project_categorical`, prince's multiple correspondence analysis): the
  categorical columns themselves, unencoded; a missing value is a level of its own.

Which rows are projected (``Projection.rows``): every row when there are at most ``max_rows``;
above that a sample of ``max_rows`` rows drawn with ``seed`` (the same seed draws the same
rows). t-SNE, UMAP and MCA are fitted on that sample only: t-SNE of 45,000 customers takes
minutes, and a plot of more than a few thousand points is a blur. PCA is fitted on every row,
so its axes and explained shares describe all customers, and only the sample is returned to
plot. A projection never holds more than ``max_rows`` points.
"""
from __future__ import annotations

import logging
import time
import warnings
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from segmint.errors import InputError
from segmint.prepare._checks import check_matrix

__all__ = ["METHODS", "Projection", "project", "project_categorical"]

logger = logging.getLogger(__name__)

#: Methods of :func:`project` and how a reader calls them.
METHODS = {"pca": "PCA", "tsne": "t-SNE", "umap": "UMAP"}
_LABELS = {**METHODS, "mca": "MCA"}
# axis titles: PCA's and MCA's axes are ranked by the variance they explain, the others are not
_AXIS = {"pca": "PC", "mca": "Axis ", "tsne": "t-SNE ", "umap": "UMAP "}
_MISSING_LEVEL = "missing"


@dataclass
class Projection:
    """Customers as points: which rows of the input, where, and what was done in words."""

    method: str  # "pca", "tsne", "umap" or "mca"
    coords: np.ndarray  # float64, (len(rows), n_components)
    rows: np.ndarray  # int64, positions in the input of the projected rows, ascending
    explained: list[float] | None  # share of variance per axis (PCA, MCA); None for t-SNE, UMAP
    note: str  # what was done, for a reader of the report

    @property
    def n_components(self) -> int:
        return int(self.coords.shape[1])

    def axis_titles(self) -> list[str]:
        """One title per axis: the explained share when known.

        Examples
        --------
        >>> p = Projection("pca", np.zeros((1, 2)), np.arange(1), [0.231, 0.1], "")
        >>> p.axis_titles()
        ['PC1 (23.1%)', 'PC2 (10.0%)']
        >>> Projection("tsne", np.zeros((1, 2)), np.arange(1), None, "").axis_titles()
        ['t-SNE 1', 't-SNE 2']
        """
        titles = [f"{_AXIS[self.method]}{i + 1}" for i in range(self.n_components)]
        if self.explained is not None:
            titles = [f"{title} ({share:.1%})" for title, share in zip(titles, self.explained, strict=True)]
        return titles


def project(X: np.ndarray, method: Literal["pca", "tsne", "umap"], *, n_components: int = 2,
            seed: int = 0, max_rows: int = 5000) -> Projection:
    """Project the rows of the prepared matrix ``X`` to ``n_components`` dimensions for a plot.

    Parameters
    ----------
    X : ndarray of shape (n_customers, n_columns)
        The prepared matrix: numbers, no NaN or inf.
    method : {"pca", "tsne", "umap"}
        See the module's description. t-SNE uses perplexity ``min(30, (m - 1) / 3)`` for ``m``
        rows; UMAP is seeded, which makes it run on one thread.
    n_components : {2, 3}
        Dimensions of the plot.
    seed : int
        Draws the sample and seeds t-SNE and UMAP: the same seed gives the same points.
    max_rows : int
        At most this many rows are projected (a seeded sample above it).

    Returns
    -------
    Projection

    Raises
    ------
    ValueError
        An unknown ``method``, ``n_components`` other than 2 or 3, ``max_rows`` below 1.
    InputError
        ``X`` holds NaN or inf (the message names the column and rows), has fewer columns than
        ``n_components`` or fewer than ``n_components + 2`` rows to project, or every column is
        constant.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = np.hstack([rng.normal(0, 3, (100, 1)), rng.normal(0, 1, (100, 2))])
    >>> p = project(X, "pca")
    >>> p.coords.shape, len(p.rows), [round(share, 2) for share in p.explained]
    ((100, 2), 100, [0.8, 0.11])
    >>> p.note
    'PCA of the 3 prepared columns: 2 components explain 91.0% of the variance'
    >>> p = project(X, "tsne", max_rows=40)
    >>> p.coords.shape, p.explained, p.note.split(";")[0]
    ((40, 2), None, 't-SNE of the 3 prepared columns, a 40-customer sample of 100')
    """
    if method not in METHODS:
        raise ValueError(f"projection method {method!r} is not one of {sorted(METHODS)}")
    _check_settings(n_components, max_rows)
    X = check_matrix(X, what="the matrix to project")
    n, d = X.shape
    rows = _sample(n, max_rows, seed)
    _check_size(len(rows), d, n_components, "columns")
    if not (np.ptp(X, axis=0) > 0).any():
        raise InputError(f"every column of the matrix to project is constant: all {n:,} customers "
                         "are one point")
    started = time.perf_counter()
    explained: list[float] | None = None
    if method == "pca":
        from sklearn.decomposition import PCA

        pca = PCA(n_components=n_components, random_state=seed).fit(X)
        coords = pca.transform(X[rows])
        explained = [float(v) for v in pca.explained_variance_ratio_]
    elif method == "tsne":
        from sklearn.manifold import TSNE

        perplexity = min(30.0, (len(rows) - 1) / 3)
        coords = TSNE(n_components=n_components, perplexity=perplexity, init="pca",
                      random_state=seed).fit_transform(X[rows])
    else:
        coords = _umap(X[rows], n_components, seed)
    logger.debug("%s of %d x %d: %.1f s", method, len(rows), d, time.perf_counter() - started)
    note = _note(method, f"the {d:,} prepared columns", n, len(rows), explained)
    return Projection(method, np.ascontiguousarray(coords, dtype=np.float64), rows, explained, note)


def project_categorical(frame: pd.DataFrame, columns: list[str], *, n_components: int = 2,
                        seed: int = 0, max_rows: int = 5000) -> Projection:
    """Project customers by their categorical ``columns`` with multiple correspondence analysis.

    Each column's values are taken as levels (numbers too); a missing value is the level
    ``"missing"``. MCA is fitted on the projected rows (see the module's rule). Its explained
    shares are the uncorrected ones (prince's percentage of variance as a ratio): they are
    low by nature, as MCA spreads a column of L levels over L - 1 axes.

    Parameters
    ----------
    frame : DataFrame
        One row per customer.
    columns : list of str
        The categorical columns to project.
    n_components, seed, max_rows
        As for :func:`project`.

    Returns
    -------
    Projection
        ``method`` is ``"mca"``.

    Raises
    ------
    ValueError
        ``n_components`` other than 2 or 3, ``max_rows`` below 1, no ``columns``.
    InputError
        A column is not in ``frame``; the columns have too few levels between them for
        ``n_components`` axes (MCA has one axis per level beyond the first of each column), or
        there are fewer than ``n_components + 2`` rows.

    Examples
    --------
    >>> frame = pd.DataFrame({"plan": ["basic"] * 4 + ["gold"] * 4,
    ...                       "channel": ["web"] * 4 + ["store"] * 3 + [None],
    ...                       "region": ["N", "S"] * 4})
    >>> p = project_categorical(frame, ["plan", "channel", "region"])
    >>> gap = p.coords[:4, 0].mean() - p.coords[4:, 0].mean()  # plan and channel: axis 1
    >>> bool(abs(gap) > 1), [round(share, 2) for share in p.explained]
    (True, [0.5, 0.35])
    >>> p.note.split(", ")[1]
    'all 8 customers: 2 axes explain 85.2% of the variance'
    """
    _check_settings(n_components, max_rows)
    if not columns:
        raise ValueError("project_categorical needs at least one column")
    for column in columns:
        if column not in frame.columns:
            raise InputError("is not in the table to project", column=column)
    n = len(frame)
    rows = _sample(n, max_rows, seed)
    table = pd.DataFrame({
        column: [_MISSING_LEVEL if pd.isna(v) else str(v) for v in frame[column].iloc[rows]]
        for column in columns}, index=pd.RangeIndex(len(rows)))
    levels = sum(table[column].nunique() for column in columns)
    _check_size(len(rows), levels - len(columns), n_components,
                f"MCA axes ({levels} levels in {len(columns)} columns)")

    import prince

    started = time.perf_counter()
    mca = prince.MCA(n_components=n_components, random_state=seed).fit(table)
    coords = mca.row_coordinates(table).to_numpy(dtype=np.float64)[:, :n_components]
    explained = [float(v) / 100 for v in mca.percentage_of_variance_[:n_components]]
    logger.debug("mca of %d x %d: %.1f s", len(rows), len(columns), time.perf_counter() - started)
    what = f"{len(columns)} categorical column{'s' if len(columns) > 1 else ''} " \
           "(a missing value is a level of its own)"
    note = _note("mca", what, n, len(rows), explained)
    return Projection("mca", np.ascontiguousarray(coords), rows, explained, note)


def _check_settings(n_components: int, max_rows: int) -> None:
    whole = isinstance(n_components, (int, np.integer)) and not isinstance(n_components, bool)
    if not whole or n_components not in (2, 3):
        raise ValueError(f"n_components must be 2 or 3 (a plot's dimensions), got {n_components!r}")
    if not isinstance(max_rows, (int, np.integer)) or max_rows < 1:
        raise ValueError(f"max_rows must be a whole number of rows, at least 1; got {max_rows!r}")


def _check_size(rows: int, dimensions: int, n_components: int, what: str) -> None:
    # UMAP's spectral start needs n_components + 2 points; fewer make no plot worth reading
    if dimensions < n_components:
        raise InputError(f"{dimensions} {what} cannot give {n_components} dimensions to plot")
    if rows < n_components + 2:
        raise InputError(f"{rows} customers are too few to project to {n_components} dimensions "
                         f"(at least {n_components + 2})")


def _sample(n: int, max_rows: int, seed: int) -> np.ndarray:
    """Every row, or ``max_rows`` of them drawn with ``seed``, ascending.

    >>> _sample(5, 10, 0).tolist(), _sample(10, 3, 0).tolist()
    ([0, 1, 2, 3, 4], [5, 6, 9])
    """
    if n <= max_rows:
        return np.arange(n, dtype=np.int64)
    drawn = np.random.default_rng(seed).choice(n, size=max_rows, replace=False)
    return np.sort(drawn).astype(np.int64)


def _umap(X: np.ndarray, n_components: int, seed: int) -> np.ndarray:
    import umap

    # n_neighbors: UMAP's default 15, fewer when there are fewer customers than that;
    # n_jobs=1 says what the seed implies, so umap-learn does not warn that it overrode it
    model = umap.UMAP(n_components=n_components, n_neighbors=min(15, len(X) - 1),
                      random_state=seed, n_jobs=1)
    with warnings.catch_warnings():
        # tiny inputs: scipy's sparse eigensolver warns before umap-learn falls back
        warnings.filterwarnings("ignore", category=RuntimeWarning, module="scipy")
        return np.asarray(model.fit_transform(X))


def _note(method: str, what: str, n: int, m: int, explained: list[float] | None) -> str:
    """What a projection did, in words: method, input, rows, explained share or how to read it.

    >>> _note("pca", "the 4 prepared columns", 9000, 5000, [0.3, 0.1]).split(": ")[1]
    '2 components explain 40.0% of the variance; 5,000 of the 9,000 customers shown'
    >>> _note("mca", "2 categorical columns", 9000, 5000, [0.3, 0.1])
    'MCA of 2 categorical columns, a 5,000-customer sample of 9,000: 2 axes explain 40.0% of the variance'
    """
    label = _LABELS[method]
    if method == "pca":  # fitted on every row, the sample only shown
        note = f"{label} of {what}: {_explained(method, explained)}"
        return note + (f"; {m:,} of the {n:,} customers shown" if m < n else "")
    rows = f"a {m:,}-customer sample of {n:,}" if m < n else f"all {n:,} customers"
    if explained is not None:
        return f"{label} of {what}, {rows}: {_explained(method, explained)}"
    return (f"{label} of {what}, {rows}; nearby points are similar customers, but the distances "
            "between groups and their sizes are not to scale")


def _explained(method: str, explained: list[float] | None) -> str:
    shares = explained or []
    axes = "components" if method == "pca" else "axes"
    return f"{len(shares)} {axes} explain {sum(shares):.1%} of the variance"
