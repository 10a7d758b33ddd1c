"""Scalers by the names a spec uses."""
from __future__ import annotations

import numpy as np
from sklearn.base import TransformerMixin
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, MinMaxScaler, RobustScaler, StandardScaler

__all__ = ["SCALERS", "make_scaler", "signed_log1p"]


def signed_log1p(X: np.ndarray) -> np.ndarray:
    """sign(x) * log(1 + |x|): tames the long tails of revenue and counts, keeps zero at zero.

    Examples
    --------
    >>> signed_log1p(np.array([0.0, np.e - 1, -(np.e - 1)])).round(6).tolist()
    [0.0, 1.0, -1.0]
    """
    X = np.asarray(X, dtype="float64")
    return np.sign(X) * np.log1p(np.abs(X))


def signed_expm1(X: np.ndarray) -> np.ndarray:
    """The inverse of :func:`signed_log1p`."""
    X = np.asarray(X, dtype="float64")
    return np.sign(X) * np.expm1(np.abs(X))


def _log_standard() -> Pipeline:
    return Pipeline([("log", FunctionTransformer(signed_log1p, inverse_func=signed_expm1,
                                                 validate=True, feature_names_out="one-to-one")),
                     ("standard", StandardScaler())])

SCALERS = {
    "standard": StandardScaler,
    "minmax": MinMaxScaler,
    "robust": RobustScaler,
    # identity; FunctionTransformer(func=None) keeps the estimator contract and saves safely
    # long-tailed customer features (revenue, counts): signed log, then standardised
    "log": _log_standard,
    "none": lambda: FunctionTransformer(None, validate=True, feature_names_out="one-to-one"),
}


def make_scaler(name: str) -> TransformerMixin:
    """A fresh, unfitted scaler.

    Examples
    --------
    >>> make_scaler("minmax").fit_transform([[1.0], [3.0]]).ravel().tolist()
    [0.0, 1.0]
    """
    try:
        return SCALERS[name]()
    except KeyError:
        raise ValueError(f"scaling {name!r} is not one of {sorted(SCALERS)}") from None
