"""The ML.* result tables of a k-means model, as BigQuery ML returns them (column names, order,
types), each a ``pyarrow.Table`` the SQL session registers as a DuckDB relation.

Each table's schema is a constant here (:data:`SCHEMAS`), the one place it is written.

BigQuery behaviour followed (documentation pages)
--------------------------------------------------
* ML.EVALUATE for k-means: davies_bouldin_index, mean_squared_distance ("mean of squared
  distances between each sample to its cluster centroid"); trial_id first for a tuned model,
  the optimal trial by default:
  https://cloud.google.com/bigquery/docs/reference/standard-sql/bigqueryml-syntax-evaluate
* ML.CENTROIDS: [trial_id], centroid_id, feature, numerical_value, categorical_value
  ARRAY<STRUCT<category, value>>, geography_value; one row per feature per centroid;
  ``standardize`` (default FALSE) gives features as mean 0, stddev 1:
  https://cloud.google.com/bigquery/docs/reference/standard-sql/bigqueryml-syntax-centroids
* ML.PREDICT for k-means: CENTROID_ID, NEAREST_CENTROIDS_DISTANCE
  ARRAY<STRUCT<CENTROID_ID, DISTANCE>> (the nearest min(num_clusters, 5) centroids, nearest
  first), then the input columns:
  https://cloud.google.com/bigquery/docs/reference/standard-sql/bigqueryml-syntax-predict
* ML.DETECT_ANOMALIES for k-means: is_anomaly, normalized_distance, centroid_id, then the
  input columns; contamination in [0, 0.5] is the share of training rows taken as anomalous:
  https://cloud.google.com/bigquery/docs/reference/standard-sql/bigqueryml-syntax-detect-anomalies
* ML.TRAINING_INFO: training_run, iteration, loss, eval_loss, learning_rate, duration_ms,
  cluster_info ARRAY<STRUCT<centroid_id, cluster_radius, cluster_size>> (k-means only):
  https://cloud.google.com/bigquery/docs/reference/standard-sql/bigqueryml-syntax-train
* ML.FEATURE_INFO: input, min, max, mean, median, stddev (NULL for non-numeric inputs),
  category_count (NULL for non-categorical), null_count, dimension (NULL but for ARRAY<STRUCT>):
  https://cloud.google.com/bigquery/docs/reference/standard-sql/bigqueryml-syntax-feature
* ML.TRIAL_INFO: one row per trial: trial_id (from 1), hyperparameters,
  hparam_tuning_evaluation_metrics, training_loss, eval_loss, status, error_message,
  is_optimal:
  https://cloud.google.com/bigquery/docs/reference/standard-sql/bigqueryml-syntax-trial-info

Where segmint differs from BigQuery ML, and why
-----------------------------------------------
1. ML.EVALUATE without a table reports the training rows' metrics (BigQuery: the evaluation
   data). Each row belongs to its nearest centroid; Davies-Bouldin is scikit-learn's
   ``davies_bouldin_score`` in the prepared (standardised, one-hot) space, for COSINE on the
   rows scaled to unit length; NULL when fewer than 2 clusters hold rows. For COSINE,
   mean_squared_distance is the mean squared cosine distance.
2. categorical_value.value is FLOAT64 (the centroid's one-hot value: the share of the category
   among the cluster's training rows); BigQuery's page calls it STRING, its examples show
   numbers. The NULL category has category NULL. geography_value is always NULL (no GEOGRAPHY
   features). Rows are ordered by trial_id, centroid_id, then the features' input order.
3. ML.CENTROIDS and ML.TRAINING_INFO of a tuned model return every trial that trained (with
   trial_id); ``trial=`` narrows them to one (BigQuery has no such argument for them).
4. ML.DETECT_ANOMALIES: BigQuery does not define its normalisation. Here a row's distance to
   each centroid is divided by that centroid's cluster radius (the mean distance of its
   training rows to it, as ML.TRAINING_INFO's cluster_radius); normalized_distance is the
   smallest of these and centroid_id the centroid it is measured to. The threshold is the
   (1 - contamination) quantile (linear interpolation) of the training rows' normalized
   distances; a row is an anomaly when its distance is above it. The caller passes the
   training rows (the model does not keep them).
5. ML.TRAINING_INFO: eval_loss and learning_rate are NULL; loss is defined in
   :mod:`segmint.sql.kmeans` (differences, 6); rows ordered by trial_id, training_run,
   iteration (ascending).
6. ML.FEATURE_INFO: median is exact; stddev is the sample standard deviation (NULL for one
   value); category_count counts distinct non-NULL values of BOOL and STRING columns.
7. ML.TRIAL_INFO: hyperparameters is STRUCT<num_clusters INT64> and
   hparam_tuning_evaluation_metrics STRUCT<davies_bouldin_index FLOAT64>, both on the
   training rows; eval_loss is NULL; a trial asking for more clusters than rows is INFEASIBLE.
   A model trained without tuning has no trials to show (ModelError), as in BigQuery.
8. Input columns named like an output column (case-insensitively, e.g. an input
   ``centroid_id`` for ML.PREDICT) are refused rather than renamed.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from segmint.errors import InputError, ModelError, SpecError, public
from segmint.sql.kmeans import (
    NUMERIC_TYPES,
    KMeansModel,
    KMeansTrial,
    bigquery_type,
    clustering_metrics,
)

if TYPE_CHECKING:
    from segmint.sql.kmeans import BQKMeans

__all__ = ["SCHEMAS", "NEAREST_CENTROIDS_MAX", "evaluate", "centroids", "predict",
           "detect_anomalies", "training_info", "feature_info", "trial_info"]

#: ML.PREDICT lists the nearest min(num_clusters, 5) centroids
NEAREST_CENTROIDS_MAX = 5

_F64, _I64, _STR, _BOOL = pa.float64(), pa.int64(), pa.string(), pa.bool_()
_TRIAL_ID = pa.field("trial_id", _I64)

#: Every ML.* table's columns (without trial_id, which leads them for a tuned model)
SCHEMAS: dict[str, pa.Schema] = {
    "evaluate": pa.schema([("davies_bouldin_index", _F64), ("mean_squared_distance", _F64)]),
    "centroids": pa.schema([
        ("centroid_id", _I64), ("feature", _STR), ("numerical_value", _F64),
        ("categorical_value", pa.list_(pa.struct([("category", _STR), ("value", _F64)]))),
        ("geography_value", _STR)]),
    "predict": pa.schema([
        ("CENTROID_ID", _I64),
        ("NEAREST_CENTROIDS_DISTANCE", pa.list_(pa.struct([("CENTROID_ID", _I64),
                                                           ("DISTANCE", _F64)])))]),
    "detect_anomalies": pa.schema([("is_anomaly", _BOOL), ("normalized_distance", _F64),
                                   ("centroid_id", _I64)]),
    "training_info": pa.schema([
        ("training_run", _I64), ("iteration", _I64), ("loss", _F64), ("eval_loss", _F64),
        ("learning_rate", _F64), ("duration_ms", _I64),
        ("cluster_info", pa.list_(pa.struct([("centroid_id", _I64), ("cluster_radius", _F64),
                                             ("cluster_size", _I64)])))]),
    "feature_info": pa.schema([
        ("input", _STR), ("min", _F64), ("max", _F64), ("mean", _F64), ("median", _F64),
        ("stddev", _F64), ("category_count", _I64), ("null_count", _I64), ("dimension", _I64)]),
    "trial_info": pa.schema([
        ("trial_id", _I64), ("hyperparameters", pa.struct([("num_clusters", _I64)])),
        ("hparam_tuning_evaluation_metrics", pa.struct([("davies_bouldin_index", _F64)])),
        ("training_loss", _F64), ("eval_loss", _F64), ("status", _STR), ("error_message", _STR),
        ("is_optimal", _BOOL)]),
}


def _schema(name: str, model: KMeansModel) -> pa.Schema:
    schema = SCHEMAS[name]
    return pa.schema([_TRIAL_ID, *schema]) if model.hparam_tuning else schema


def _trials(model: KMeansModel, trial: int | None) -> list[KMeansTrial]:
    """The trials a table without a trial argument in BigQuery reports (differences, 3)."""
    if trial is not None or not model.hparam_tuning:
        return [model.trial(trial)]
    return [t for t in model.trials if t.estimator is not None]


def _estimator(trial: KMeansTrial) -> BQKMeans:
    assert trial.estimator is not None  # model.trial() refuses trials without one
    return trial.estimator


def _prepared(model: KMeansModel, table: pa.Table) -> np.ndarray:
    """The rows of ``table`` in the model's prepared space; InputError naming a missing or
    mistyped feature column."""
    by_name = {name.lower(): name for name in table.column_names}
    columns = {}
    for feature, bq_type in model.feature_types.items():
        actual = by_name.get(feature.lower())
        if actual is None:
            raise InputError("the input lacks this feature column of the model", column=feature)
        arrow_type = table.schema.field(actual).type
        if not pa.types.is_null(arrow_type):
            given = bigquery_type(arrow_type, actual)
            if (given in NUMERIC_TYPES) != (bq_type in NUMERIC_TYPES) or \
                    (bq_type not in NUMERIC_TYPES and given != bq_type):
                raise InputError(f"the model was trained on {bq_type}, the input holds {given}",
                                 column=actual)
        columns[feature] = table.column(actual).to_pandas()
    import pandas as pd

    return model.preprocessor.transform(pd.DataFrame(columns, index=range(table.num_rows)))


def _with_inputs(head: pa.Schema, arrays: Sequence[pa.Array], table: pa.Table) -> pa.Table:
    if len(arrays[0]) != table.num_rows:
        raise InputError(f"the pass-through columns hold {table.num_rows} rows, the scored rows "
                         f"{len(arrays[0])}")
    taken = {name.lower() for name in head.names}
    for name in table.column_names:
        if name.lower() in taken:
            raise InputError("the input has a column named like an output column of this "
                             "function; rename it", column=name)
    return pa.Table.from_arrays([*arrays, *table.columns],
                                schema=pa.schema([*head, *table.schema]))


def _trial_rows(model: KMeansModel, trial: KMeansTrial, row: dict[str, Any]) -> dict[str, Any]:
    return {"trial_id": trial.trial_id, **row} if model.hparam_tuning else row


@public
def evaluate(model: KMeansModel, table: pa.Table | None = None, *,
             trial: int | None = None) -> pa.Table:
    """ML.EVALUATE: davies_bouldin_index and mean_squared_distance of the training rows (table
    None) or of the given rows, for a trial (the optimal one by default).

    Examples
    --------
    >>> from segmint.sql.kmeans import train
    >>> rows = pa.table({"x": [0.0, 0.2, 5.0, 5.2]})
    >>> model = train(rows, {"model_type": "kmeans", "num_clusters": 2, "standardize_features": False})
    >>> {name: round(value, 6) for name, value in evaluate(model).to_pylist()[0].items()}
    {'davies_bouldin_index': 0.04, 'mean_squared_distance': 0.01}
    """
    chosen = model.trial(trial)
    if table is None:
        davies_bouldin, msd = chosen.davies_bouldin_index, chosen.mean_squared_distance
    else:
        davies_bouldin, msd = clustering_metrics(_estimator(chosen), _prepared(model, table))
    row = {"davies_bouldin_index": davies_bouldin, "mean_squared_distance": msd}
    return pa.Table.from_pylist([_trial_rows(model, chosen, row)], schema=_schema("evaluate", model))


@public
def centroids(model: KMeansModel, *, standardize: bool = False, trial: int | None = None) -> pa.Table:
    """ML.CENTROIDS: one row per feature per centroid; numeric features in input units (or
    standardised), STRING / BOOL features as every category's share in the cluster."""
    prep = model.preprocessor
    rows = []
    for chosen in _trials(model, trial):
        centers = _estimator(chosen).cluster_centers_
        values = prep.standardized_numeric(centers) if standardize else prep.inverse_numeric(centers)
        for c in range(len(values)):
            for i, (column, kind, where) in enumerate(prep.output_slices()):
                if kind == "numeric":
                    numerical, categorical = float(values[c, where.start]), []
                else:
                    cats: list[str | None] = list(prep.categories_[i])
                    if prep.null_category_[i]:
                        cats.append(None)
                    numerical = None
                    categorical = [{"category": cat, "value": float(v)}
                                   for cat, v in zip(cats, values[c, where], strict=True)]
                rows.append(_trial_rows(model, chosen, {
                    "centroid_id": c + 1, "feature": column, "numerical_value": numerical,
                    "categorical_value": categorical, "geography_value": None}))
    return pa.Table.from_pylist(rows, schema=_schema("centroids", model))


@public
def predict(model: KMeansModel, table: pa.Table, *, trial: int | None = None,
            passthrough: pa.Table | None = None) -> pa.Table:
    """ML.PREDICT: each row's CENTROID_ID (1-based) and its distances to the nearest
    min(num_clusters, 5) centroids (nearest first), then every input column unchanged.

    Parameters
    ----------
    table : the rows to score, holding the model's feature columns
    trial : the trial whose model scores (the optimal one by default)
    passthrough : the columns to append (default ``table``): with a TRANSFORM clause, the rows
        as given, while ``table`` holds them transformed; same number of rows

    Examples
    --------
    >>> from segmint.sql.kmeans import train
    >>> rows = pa.table({"id": [1, 2, 3, 4], "x": [0.0, 0.2, 5.0, 5.2]})
    >>> model = train(rows.select(["x"]), {"model_type": "kmeans", "num_clusters": 2})
    >>> out = predict(model, rows)
    >>> out.column_names, len(out["NEAREST_CENTROIDS_DISTANCE"][0])
    (['CENTROID_ID', 'NEAREST_CENTROIDS_DISTANCE', 'id', 'x'], 2)
    """
    estimator = _estimator(model.trial(trial))
    distances = estimator.transform(_prepared(model, table))
    n, k = distances.shape
    m = min(k, NEAREST_CENTROIDS_MAX)
    order = np.argsort(distances, axis=1, kind="stable")[:, :m]
    nearest = np.take_along_axis(distances, order, axis=1)
    struct_type = SCHEMAS["predict"].field("NEAREST_CENTROIDS_DISTANCE").type.value_type
    entries = pa.StructArray.from_arrays(
        [pa.array((order + 1).ravel(), _I64), pa.array(nearest.ravel(), _F64)],
        fields=list(struct_type))
    offsets = pa.array(np.arange(0, n * m + 1, m, dtype=np.int32))
    arrays = [pa.array(order[:, 0] + 1, _I64), pa.ListArray.from_arrays(offsets, entries)]
    return _with_inputs(SCHEMAS["predict"], arrays, table if passthrough is None else passthrough)


def _normalized(estimator: BQKMeans, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row's smallest distance over cluster radius, and the centroid (0-based) it is to."""
    distances = estimator.transform(X)
    radius = np.broadcast_to(estimator.cluster_radius_, distances.shape)
    ratio = np.divide(distances, radius, out=np.where(distances > 0, np.inf, 0.0), where=radius > 0)
    centroid = ratio.argmin(axis=1)
    return ratio[np.arange(len(X)), centroid], centroid


@public
def detect_anomalies(model: KMeansModel, table: pa.Table, *, contamination: float,
                     training: pa.Table, trial: int | None = None,
                     passthrough: pa.Table | None = None) -> pa.Table:
    """ML.DETECT_ANOMALIES: is_anomaly, normalized_distance, centroid_id, then the input columns.

    Parameters
    ----------
    contamination : the share of training rows taken as anomalous, in [0, 0.5]
    training : the model's training rows (the threshold is their (1 - contamination) quantile)
    trial : the trial whose model scores (the optimal one by default)
    passthrough : the columns to append (default ``table``), as for :func:`predict`
    """
    if isinstance(contamination, bool) or not isinstance(contamination, (int, float)) \
            or not 0.0 <= float(contamination) <= 0.5:
        raise SpecError(f"contamination must be a FLOAT64 in [0, 0.5], got {contamination!r}")
    estimator = _estimator(model.trial(trial))
    train_distance, _ = _normalized(estimator, _prepared(model, training))
    q = 1.0 - float(contamination)
    threshold = float(np.quantile(train_distance, q))
    if not np.isfinite(threshold):  # infinite ratios (radius 0) make interpolation undefined
        threshold = float(np.quantile(train_distance, q, method="higher"))
    distance, centroid = _normalized(estimator, _prepared(model, table))
    arrays = [pa.array(distance > threshold, _BOOL), pa.array(distance, _F64),
              pa.array(centroid + 1, _I64)]
    return _with_inputs(SCHEMAS["detect_anomalies"], arrays,
                        table if passthrough is None else passthrough)


@public
def training_info(model: KMeansModel, *, trial: int | None = None) -> pa.Table:
    """ML.TRAINING_INFO: one row per iteration of every training run (of every trial)."""
    wanted = {t.trial_id for t in _trials(model, trial)} if model.hparam_tuning else None
    rows = []
    for record in model.training_info:
        if wanted is not None and record.get("trial_id") not in wanted:
            continue
        info = [{"centroid_id": j + 1, "cluster_radius": r, "cluster_size": s}
                for j, (r, s) in enumerate(zip(record["cluster_radius"], record["cluster_size"],
                                               strict=True))]
        row = {"training_run": record["training_run"], "iteration": record["iteration"],
               "loss": record["loss"], "eval_loss": None, "learning_rate": None,
               "duration_ms": record["duration_ms"], "cluster_info": info}
        rows.append({"trial_id": record["trial_id"], **row} if model.hparam_tuning else row)
    key = (lambda r: (r["trial_id"], r["training_run"], r["iteration"])) if model.hparam_tuning \
        else (lambda r: (r["training_run"], r["iteration"]))
    return pa.Table.from_pylist(sorted(rows, key=key), schema=_schema("training_info", model))


@public
def feature_info(model: KMeansModel) -> pa.Table:
    """ML.FEATURE_INFO: statistics of each feature column over the training rows."""
    return pa.Table.from_pylist(model.feature_stats, schema=SCHEMAS["feature_info"])


@public
def trial_info(model: KMeansModel) -> pa.Table:
    """ML.TRIAL_INFO: one row per hyper-parameter trial."""
    if not model.hparam_tuning:
        raise ModelError("ML.TRIAL_INFO needs a model trained with hyper-parameter tuning "
                         "(num_clusters as HPARAM_RANGE or HPARAM_CANDIDATES)")
    rows = [{"trial_id": t.trial_id, "hyperparameters": {"num_clusters": t.num_clusters},
             "hparam_tuning_evaluation_metrics": {"davies_bouldin_index": t.davies_bouldin_index},
             "training_loss": t.training_loss, "eval_loss": None, "status": t.status,
             "error_message": t.error_message, "is_optimal": t.trial_id == model.optimal_trial}
            for t in model.trials]
    return pa.Table.from_pylist(rows, schema=SCHEMAS["trial_info"])
