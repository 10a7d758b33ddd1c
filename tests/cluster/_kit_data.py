"""Test data shaped like Intel's kit replicates its customers: shared by the grid tests."""
from __future__ import annotations

import numpy as np
from sklearn.preprocessing import StandardScaler


def replicated(n_base: int = 200, r: int = 10, d: int = 21, seed: int = 0) -> np.ndarray:
    """Kit-style replication: rows repeated, then continuous jitter on the first column and
    integer jitter on the others; standard-scaled."""
    rng = np.random.default_rng(seed)
    base = np.column_stack([rng.gamma(2.0, 10.0, n_base), rng.poisson(8, (n_base, d - 1))])
    X = np.repeat(base.astype(float), r, axis=0)
    X[:, 0] += np.exp(rng.standard_normal(X.shape[0]))
    X[:, 1:] += rng.integers(0, 5, size=(X.shape[0], d - 1))
    return StandardScaler().fit_transform(X)
