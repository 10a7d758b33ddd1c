"""ML.PREDICT, ML.CENTROIDS and ML.EVALUATE for a solution of a ``segmint run`` that joined
the catalog with ``CREATE MODEL ds.m OPTIONS(model_type='segmint', model_path=...)``.

The output has BigQuery ML's columns. CENTROID_ID is the segment id + 1 (BigQuery numbers
centroids from 1, segmint's segments from 0); a customer the run's outlier detector sets apart
gets a NULL CENTROID_ID (segment -1 in segmint). Distances are euclidean in the solution's
prepared space (k-prototypes: its own mixed dissimilarity), as ``segmint predict`` reports.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from segmint.errors import InputError, ModelError
from segmint.runs import _layout as L

NEAREST = pa.list_(pa.struct([("CENTROID_ID", pa.int64()), ("DISTANCE", pa.float64())]))
CATEGORICAL = pa.list_(pa.struct([("category", pa.string()), ("value", pa.float64())]))
MAX_NEAREST = 5  # BigQuery lists at most this many centroids in NEAREST_CENTROIDS_DISTANCE


def _distances(model: Any, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(segment ids, distances rows x segments) of ``frame``'s rows to the solution's centres."""
    from segmint.cluster.registry import ALGORITHMS
    from segmint.prepare import model_input

    solution, run = model.solution, model.run
    if solution.rule_based or solution.metrics.get("scorable") is False:
        raise ModelError(f"{model.full_name} ({solution.name}) cannot score new rows: it is "
                         f"rule-based or on a tree embedding")
    features = list(solution.metrics["features"])
    missing = [f for f in features if f not in frame.columns]
    if missing:
        raise InputError(f"ML.PREDICT input lacks the model's feature {missing[0]!r} (the model "
                         f"reads {features})", column=missing[0])
    for feature in features:  # model_input's to_numeric would raise a bare ValueError
        if run.types.get(feature) != "categorical":
            values = frame[feature]
            numbers = pd.to_numeric(values, errors="coerce")
            bad = numbers.isna() & values.notna()
            if bad.any():
                row = int(np.flatnonzero(bad.to_numpy())[0])
                raise InputError(f"ML.PREDICT input: {values.iloc[row]!r} is not a number (the "
                                 f"model reads {feature} as {run.types.get(feature)})",
                                 column=feature, row=row + 1)
    pipe = solution.model
    Z = pipe.named_steps["prepare"].transform(model_input(frame, run.types, features))
    algo = ALGORITHMS.get(solution.algorithm)
    if algo is not None and algo.distances is not None:
        dist = np.asarray(algo.distances(pipe.named_steps["cluster"], np.asarray(Z)), dtype="float64")
        return np.arange(dist.shape[1]), dist
    centers = pd.read_parquet(solution.folder / L.CENTERS)
    C = centers[list(solution.metrics["prepared_columns"])].to_numpy(dtype="float64")
    Z = np.asarray(Z, dtype="float64")
    dist = np.sqrt(np.maximum(((Z * Z).sum(1)[:, None] - 2 * Z @ C.T + (C * C).sum(1)[None, :]), 0))
    return centers["segment"].to_numpy(dtype=np.int64), dist


def predict(model: Any, rows: pa.Table) -> pa.Table:
    """ML.PREDICT's columns for a segmint solution, then every input column unchanged."""
    frame = rows.to_pandas()
    if not len(frame):  # no rows to score (scikit-learn refuses an empty array): none out
        head = pa.table({"CENTROID_ID": pa.array([], type=pa.int64()),
                         "NEAREST_CENTROIDS_DISTANCE": pa.array([], type=NEAREST)})
        return _beside(head, rows)
    ids, dist = _distances(model, frame)
    order = np.argsort(dist, axis=1, kind="stable")[:, :MAX_NEAREST]
    centroid = (ids[order[:, 0]] + 1).astype("float64") if len(ids) else np.full(len(frame), np.nan)
    features = list(model.solution.metrics["features"])
    flags = model.run.outlier_flags(frame[features], features)
    if flags is not None:
        centroid[flags] = np.nan
    nearest = [[{"CENTROID_ID": int(ids[j]) + 1, "DISTANCE": float(dist[i, j])} for j in order[i]]
               for i in range(len(frame))]
    head = pa.table({"CENTROID_ID": pa.array(pd.array(centroid).astype("Int64"), type=pa.int64()),
                     "NEAREST_CENTROIDS_DISTANCE": pa.array(nearest, type=NEAREST)})
    return _beside(head, rows)


def _beside(head: pa.Table, rows: pa.Table) -> pa.Table:
    for name, column in zip(rows.column_names, rows.columns, strict=True):
        if name.upper() in {c.upper() for c in head.column_names}:
            continue  # BigQuery would refuse a duplicate name; the prediction wins
        head = head.append_column(rows.field(name), column)
    return head


def centroids(model: Any, *, standardize: bool = False) -> pa.Table:
    """ML.CENTROIDS from the solution's saved centroids (segment means in the features'
    units; a categorical feature's share of each category). ``standardize`` is refused: a
    segmint solution's prepared space is not BigQuery's standardisation."""
    if standardize:
        raise ModelError(f"{model.full_name} is a segmint solution: its centroids are given in "
                         f"the features' units only (STRUCT(TRUE AS standardize) is for "
                         f"models made with CREATE MODEL)")
    long = model.solution.centroids()
    rows: list[tuple[int, str, float | None, list[dict[str, Any]]]] = []
    for (segment, feature), part in long.groupby(["segment", "feature"], sort=True):
        if part["category"].notna().any():
            cats = [{"category": str(c), "value": float(v)}
                    for c, v in zip(part["category"], part["value"], strict=True)]
            rows.append((int(segment) + 1, str(feature), None, cats))
        else:
            rows.append((int(segment) + 1, str(feature), float(part["value"].iloc[0]), []))
    order = {f: i for i, f in enumerate(model.solution.metrics["features"])}
    rows.sort(key=lambda r: (r[0], order.get(r[1], len(order))))
    return pa.table({"centroid_id": pa.array([r[0] for r in rows], type=pa.int64()),
                     "feature": pa.array([r[1] for r in rows], type=pa.string()),
                     "numerical_value": pa.array([r[2] for r in rows], type=pa.float64()),
                     "categorical_value": pa.array([r[3] for r in rows], type=CATEGORICAL)})


def evaluate(model: Any) -> pa.Table:
    """ML.EVALUATE from the solution's own measures on the customers it was fitted on."""
    m = model.solution.metrics
    return pa.table({"davies_bouldin_index": pa.array([m.get("davies_bouldin")], type=pa.float64()),
                     "mean_squared_distance": pa.array([m.get("mean_squared_distance")],
                                                       type=pa.float64())})
