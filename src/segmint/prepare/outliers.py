"""Outliers: the few customers so unlike the rest that they would form clusters of one or two.

A detector scores every customer on the prepared matrix (the first representation: scaled
numerics, one-hot categoricals) and the ``contamination`` share with the highest scores are
outliers. ``mode: flag`` keeps them as a segment of their own (label -1, "outliers"), not
clustered; ``mode: drop`` leaves them out of the run. Either way the clusterers, the measures,
eligibility and stability see the other customers only, and the run says how many there were.

Methods: ``ecod`` (pyod's ECOD: empirical cumulative distribution tails, no parameters, fast)
and ``isolation_forest`` (scikit-learn, seeded).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from segmint.spec import OutlierSpec

__all__ = ["Outliers", "find_outliers", "outlier_scores"]


@dataclass
class Outliers:
    """Which customers are outliers, by what rule."""

    flags: np.ndarray  # bool, one per customer of the table
    scores: np.ndarray  # higher: more unusual
    method: str
    contamination: float
    detector: Any = None  # the fitted detector (IsolationForest or pyod's ECOD), for scoring
    threshold: float = np.inf  # a score at or above it is an outlier (the lowest flagged score)

    @property
    def count(self) -> int:
        return int(self.flags.sum())

    def describe(self, mode: str) -> str:
        action = "kept as their own segment, not clustered" if mode == "flag" else \
            "left out of the run"
        return (f"{self.count:,} customers ({self.count / len(self.flags):.1%}) are outliers by "
                f"{self.method} (contamination {self.contamination:g}): {action}")


def find_outliers(X: np.ndarray, spec: OutlierSpec, seed: int = 0) -> Outliers | None:
    """Flag the ``spec.contamination`` share of rows of ``X`` that ``spec.method`` scores as
    most unusual; None when the method is ``none``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = np.vstack([rng.normal(0, 1, (200, 2)), [[30.0, 30.0], [-25.0, 40.0]]])
    >>> found = find_outliers(X, OutlierSpec(method="ecod", contamination=0.01))
    >>> np.flatnonzero(found.flags).tolist()
    [200, 201]
    """
    if spec.method == "none":
        return None
    n = len(X)
    detector: Any
    if spec.method == "ecod":
        from pyod.models.ecod import ECOD

        detector = ECOD().fit(X)
    else:
        from sklearn.ensemble import IsolationForest

        detector = IsolationForest(random_state=seed, n_estimators=200).fit(X)
    scores = outlier_scores(detector, X)
    count = int(np.floor(spec.contamination * n))
    flags = np.zeros(n, dtype=bool)
    threshold = np.inf
    if count:
        # the highest scores; ties at the cut broken by row order (stable), so runs repeat
        order = np.argsort(-scores, kind="stable")
        flags[order[:count]] = True
        threshold = float(scores[order[count - 1]])
    return Outliers(flags, scores, spec.method, spec.contamination, detector, threshold)


def outlier_scores(detector: Any, X: np.ndarray) -> np.ndarray:
    """A fitted detector's scores for the rows of ``X``, higher: more unusual. New customers
    are scored against the fitted customers (ECOD's tails are the fitted data's), so a saved
    run flags a new customer as it would have flagged it in fitting."""
    if hasattr(detector, "score_samples"):  # IsolationForest: lower is more anomalous
        return -np.asarray(detector.score_samples(X), dtype="float64")
    return np.asarray(detector.decision_function(X), dtype="float64")
