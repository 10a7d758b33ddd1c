"""Per-segment sums, means and medians of many labelings (explain._grouped): the compiled
passes and the NumPy fallback give the same bits, and both equal pandas' groupby."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import sparse

from segmint.explain import _grouped
from segmint.explain._grouped import group


def _labelings(n: int, rng: np.random.Generator) -> list[np.ndarray]:
    return [rng.integers(0, 3, n),
            np.where(rng.random(n) < 0.2, -1, rng.integers(0, 40, n)),  # DBSCAN-like noise
            np.arange(n) // 2,                                           # segments of two
            np.full(n, 7)]


def _values(n: int, rng: np.random.Generator) -> np.ndarray:
    values = np.column_stack([rng.lognormal(size=n), rng.integers(0, 5, n).astype(float),
                              -rng.random(n), np.full(n, np.nan)])
    values[rng.random((n, 4)) < 0.15] = np.nan
    values[:50, 1] = np.nan  # a segment of two may hold no value at all
    return values


@pytest.fixture(params=["compiled", "numpy"])
def path(request, monkeypatch):
    if request.param == "compiled" and not _grouped.AVAILABLE:
        pytest.skip("numba is not installed")
    if request.param == "numpy":
        monkeypatch.setattr(_grouped, "AVAILABLE", False)
    return request.param


def test_means_and_medians_equal_pandas_groupby(path):
    rng = np.random.default_rng(0)
    n = 1_001
    labelings, values = _labelings(n, rng), _values(n, rng)
    groups = group(labelings)
    means, counts = groups.means(values)
    medians = np.column_stack([groups.medians(values[:, c]) for c in range(values.shape[1])])
    for j, labels in enumerate(labelings):
        frame = pd.DataFrame(values).groupby(labels)
        rows = groups.rows[j]
        np.testing.assert_array_equal(groups.ids[j], frame.size().index.to_numpy())
        np.testing.assert_allclose(means[rows], frame.mean().to_numpy(), rtol=1e-13)
        np.testing.assert_array_equal(counts[rows], frame.count().to_numpy())
        np.testing.assert_array_equal(medians[rows], frame.median().to_numpy())
    assert np.isnan(medians[:, 3]).all() and (counts[:, 3] == 0).all()  # an empty column


def test_compiled_and_numpy_paths_give_the_same_bits(monkeypatch):
    if not _grouped.AVAILABLE:
        pytest.skip("numba is not installed")
    rng = np.random.default_rng(1)
    n = 5_000
    labelings, values = _labelings(n, rng), _values(n, rng)
    indicator = sparse.csr_matrix((np.ones(n), (np.arange(n), rng.integers(0, 6, n))), shape=(n, 6))
    clean = np.nan_to_num(values)

    def everything() -> list[np.ndarray]:
        groups = group(labelings)
        return [*groups.means(values), groups.sums(clean), groups.sums(indicator),
                *[groups.medians(values[:, c]) for c in range(values.shape[1])]]

    compiled = everything()
    monkeypatch.setattr(_grouped, "AVAILABLE", False)
    for a, b in zip(compiled, everything(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_sums_add_in_row_order_and_refuse_nan(path):
    # 1e16 + 1 - 1e16 in row order is 0; another order could give 1 or 2
    values = np.array([1e16, 1.0, 1.0, -1e16])
    groups = group([np.zeros(4, dtype=int)])
    assert groups.sums(values)[0, 0] == 0.0
    with pytest.raises(ValueError, match="NaN"):
        groups.sums(np.array([1.0, np.nan, 2.0, 3.0]))


def test_many_segments_keep_their_codes(path):
    n = 70_000  # 35,000 segments of two: past int16 codes
    labels = np.repeat(np.arange(n // 2), 2)
    values = np.arange(n, dtype=float)
    groups = group([labels, labels % 3])
    medians = groups.medians(values)
    np.testing.assert_array_equal(medians[:n // 2], np.arange(n // 2) * 2 + 0.5)
    np.testing.assert_array_equal(medians[n // 2:], [np.median(values[labels % 3 == s]) for s in range(3)])
