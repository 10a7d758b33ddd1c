"""Scalers by the names a spec uses."""
from __future__ import annotations

from sklearn.base import TransformerMixin
from sklearn.preprocessing import FunctionTransformer, MinMaxScaler, RobustScaler, StandardScaler

__all__ = ["SCALERS", "make_scaler"]

SCALERS = {
    "standard": StandardScaler,
    "minmax": MinMaxScaler,
    "robust": RobustScaler,
    # identity; FunctionTransformer(func=None) keeps the estimator contract and saves safely
    "none": lambda: FunctionTransformer(None, validate=True),
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
