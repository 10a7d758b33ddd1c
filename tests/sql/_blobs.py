"""Test data shared by test_kmeans and test_outputs: three blobs, and their rows prepared by hand."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa


@dataclass
class HParam:
    kind: str
    values: list


def blobs(n_per: int = 40, seed: int = 1, ids: bool = False) -> pa.Table:
    """Three well-separated Gaussian blobs in (x, y), a plan column mostly following the blob,
    a NULL in x and in plan; with ``ids``, first a customer_id that is not a feature."""
    rng = np.random.default_rng(seed)
    centres = np.array([[0.0, 0.0], [10.0, 10.0], [0.0, 20.0]])
    xy = np.vstack([rng.normal(c, 0.5, size=(n_per, 2)) for c in centres])
    plan = np.repeat(np.array(["basic", "gold", "plus"], dtype=object), n_per)
    plan[::4] = "gold"
    x = xy[:, 0].astype(object)
    x[5] = None
    plan[7] = None
    columns = {"customer_id": pa.array(np.arange(3 * n_per), pa.int32())} if ids else {}
    columns |= {"x": pa.array(list(x), pa.float64()), "y": pa.array(xy[:, 1]),
                "plan": pa.array(list(plan), pa.string())}
    return pa.table(columns)


def prepared_by_hand(table: pa.Table) -> np.ndarray:
    """The standardised, one-hot rows of blobs(), built without segmint."""
    x = table["x"].to_numpy(zero_copy_only=False).astype(float)
    y = table["y"].to_numpy()
    x = np.where(np.isnan(x), np.nanmean(x), x)
    present = table["x"].drop_null().to_numpy()
    zx = (x - present.mean()) / present.std(ddof=1)
    zy = (y - y.mean()) / y.std(ddof=1)
    plan = table["plan"].to_pylist()
    onehot = np.array([[p == c for c in ("basic", "gold", "plus")] + [p is None] for p in plan],
                      dtype=float)
    return np.column_stack([zx, zy, onehot])
