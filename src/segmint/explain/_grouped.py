"""Per-segment statistics of many labelings of one table at once.

A sweep leaves tens of solutions over the same customers; each profile needs per-segment
counts, sums, medians and category counts. Grouping the table once per solution (pandas
``groupby``) repeats the same column conversions and hashing for every solution. Here every
labeling becomes rows of one sparse segment-membership matrix ``G`` (a row per segment of every
labeling, a column per customer), so the sums of all segments of all labelings are one sparse
product ``G @ values``; medians sort each column once and every labeling's groups by a radix
sort of its small integer codes.

Sums are plain sums of the customers' values in row order, as NumPy adds them (pandas'
grouped means add with Kahan compensation: the two agree to a few units in the last place).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import sparse

__all__ = ["Groups", "group"]

# nonzeros of one membership matrix (labelings x customers): about 0.25 GB at 8 + 4 bytes each
_MAX_NONZEROS = 20_000_000


@dataclass(frozen=True)
class Groups:
    """The segments of several labelings of the same ``n`` customers.

    ``ids[j]`` are labeling j's segment ids (sorted), ``codes[j]`` each customer's position in
    ``ids[j]``, ``rows[j]`` the slice of the stacked segment rows that are labeling j's.
    """

    n: int
    ids: list[np.ndarray]
    codes: list[np.ndarray]
    rows: list[slice]
    _matrices: list[tuple[int, int, sparse.csr_matrix]] = field(default_factory=list, repr=False,
                                                                compare=False)

    @property
    def total(self) -> int:
        return self.rows[-1].stop if self.rows else 0

    def sums(self, values: np.ndarray | sparse.spmatrix) -> np.ndarray:
        """``(total, m)`` sums of each column of ``values`` (n x m, dense or sparse, no NaN)
        over each segment."""
        if not sparse.issparse(values):
            values = np.asarray(values, dtype="float64").reshape(self.n, -1)
        out = np.empty((self.total, values.shape[1]))
        for start, stop, G in self._members():
            part = G @ values
            out[start:stop] = part.toarray() if sparse.issparse(part) else part
        return out

    def _members(self) -> list[tuple[int, int, sparse.csr_matrix]]:
        """The membership matrices (segment rows x customers), built once, in chunks of
        labelings that keep each under :data:`_MAX_NONZEROS` nonzeros."""
        if not self._matrices:
            for part in self._chunks():
                first, last = part[0], part[-1]
                start, stop = self.rows[first].start, self.rows[last].stop
                # CSR directly: row r's customers in order (indptr from the segment sizes)
                codes = np.concatenate([self.codes[j] + self.rows[j].start - start for j in part])
                customers = np.tile(np.arange(self.n), len(part))
                order = np.argsort(codes, kind="stable")
                indptr = np.concatenate([[0], np.cumsum(np.bincount(codes, minlength=stop - start))])
                G = sparse.csr_matrix((np.ones(len(codes)), customers[order], indptr),
                                      shape=(stop - start, self.n))
                self._matrices.append((start, stop, G))
        return self._matrices

    def means(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per-segment means of each column skipping NaN (NaN where a segment has no value),
        and the counts of values they are taken over."""
        values = np.asarray(values, dtype="float64").reshape(self.n, -1)
        present = ~np.isnan(values)
        both = self.sums(np.hstack([np.where(present, values, 0.0), present]))
        m = values.shape[1]
        sums, counts = both[:, :m], both[:, m:]
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(counts > 0, sums / np.where(counts > 0, counts, 1), np.nan), counts

    def sizes(self) -> np.ndarray:
        """Customers in each segment (stacked rows)."""
        return np.concatenate([np.bincount(c, minlength=len(i)) for c, i in
                               zip(self.codes, self.ids, strict=True)]) if self.ids else np.empty(0)

    def medians(self, values: np.ndarray) -> np.ndarray:
        """``(total,)`` per-segment medians of ``values`` (1-D) skipping NaN; NaN for a segment
        with no value. Even counts take the mean of the two middle values, as pandas does."""
        values = np.asarray(values, dtype="float64")
        order = np.argsort(values, kind="stable")  # NaN last
        ordered = values[order]
        present = ~np.isnan(ordered)
        out = np.full(self.total, np.nan)
        for j, codes in enumerate(self.codes):
            k = len(self.ids[j])
            small = codes[order].astype(np.int16 if k < 2**15 else np.int64)
            within = np.argsort(small, kind="stable")  # by segment, then by value
            counts = np.bincount(small[present], minlength=k)
            starts = np.concatenate([[0], np.cumsum(np.bincount(small, minlength=k))[:-1]])
            sorted_values = ordered[within]
            has = counts > 0
            lo = starts + np.maximum(counts - 1, 0) // 2
            hi = starts + counts // 2
            med = np.full(k, np.nan)
            med[has] = (sorted_values[lo[has]] + sorted_values[hi[has]]) / 2
            out[self.rows[j]] = med
        return out

    def _chunks(self) -> list[list[int]]:
        per = max(1, _MAX_NONZEROS // max(self.n, 1))
        return [list(range(s, min(s + per, len(self.ids)))) for s in range(0, len(self.ids), per)]


def group(labelings: Sequence[np.ndarray]) -> Groups:
    """The :class:`Groups` of ``labelings`` (each a 1-D array of segment ids, same length)."""
    if not labelings:
        return Groups(0, [], [], [])
    n = len(labelings[0])
    ids, codes, rows, start = [], [], [], 0
    for labels in labelings:
        labels = np.asarray(labels)
        if labels.shape != (n,):
            raise ValueError(f"every labeling must have {n} labels; got shape {labels.shape}")
        u, inverse = np.unique(labels, return_inverse=True)
        ids.append(u)
        codes.append(inverse.astype(np.int64).ravel())
        rows.append(slice(start, start + len(u)))
        start += len(u)
    return Groups(n, ids, codes, rows)
