"""Every private scikit-learn name the grid engine borrows, in one place.

The grid engine (``_grid.py``) reproduces scikit-learn's k-means and DBSCAN
results exactly, so it calls some of scikit-learn's own internals.  They
may move or change between releases; importing them here, and only here,
makes a release that moves one fail on import of this module (and in
``tests/test_packaging.py``), not in the middle of a sweep.  The range of
scikit-learn versions these imports are tested with is the one in
``pyproject.toml``.

``to_sklearn_kmeans`` also writes the private attributes a fitted
``KMeans`` carries (``_n_threads``, ``_tol``, ...); ``tests/cluster/test_grid.py``
checks that they are exactly those a real fit sets.
"""

from __future__ import annotations

from inspect import signature

# inertia of given labels and centers (KMeans's own summation order), and
# KMeans's relocation of empty clusters to the farthest points
from sklearn.cluster._k_means_common import _inertia_dense, _relocate_empty_clusters_dense

# one Lloyd iteration (E- and M-step) in scikit-learn's compiled kernel: the
# fallback when numba is absent
from sklearn.cluster._k_means_lloyd import lloyd_iter_chunked_dense

# k-means++ seeding on dense data, the same draws as KMeans's own start
# (the public ``kmeans_plusplus`` re-validates its input on every call)
from sklearn.cluster._kmeans import _kmeans_plusplus

# squared distances with precomputed norms, as ``_kmeans_plusplus`` computes them
from sklearn.metrics.pairwise import _euclidean_distances

# public: read below for the name of its finiteness keyword
from sklearn.utils import check_array

# the thread count KMeans sets for its OpenMP kernels (``KMeans._n_threads``)
from sklearn.utils._openmp_helpers import _openmp_effective_n_threads

# an estimator's declared parameter rules, checked as its own fit checks them first: the spec
# refuses a negative tol before anything is fitted; Interval and StrOptions declare the rules of
# segmint's own estimators (KPrototypes) in scikit-learn's terms
from sklearn.utils._param_validation import Interval, StrOptions, validate_parameter_constraints

# squared row norms as KMeans computes them (not in the public API reference)
from sklearn.utils.extmath import row_norms

__all__ = [
    "ALLOW_NONFINITE",
    "Interval",
    "StrOptions",
    "validate_parameter_constraints",
    "_euclidean_distances",
    "_inertia_dense",
    "_kmeans_plusplus",
    "_openmp_effective_n_threads",
    "_relocate_empty_clusters_dense",
    "lloyd_iter_chunked_dense",
    "row_norms",
]

# ``check_array`` keyword that turns its NaN/inf test off (the grid engine
# runs its own, whose message names the column and rows): ``force_all_finite``
# up to 1.5, ``ensure_all_finite`` from 1.6 (the old name removed in 1.8)
ALLOW_NONFINITE: dict[str, bool] = (
    {"ensure_all_finite": False}
    if "ensure_all_finite" in signature(check_array).parameters
    else {"force_all_finite": False}
)

