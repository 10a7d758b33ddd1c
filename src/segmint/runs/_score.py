"""Scoring new customers with a fitted solution: the one path a saved run's solution and a
published model (:mod:`segmint.deploy.models`) both take.

A :class:`Scorer` holds what scoring needs and nothing of where it came from: the spec (to
read raw input through the same recipe), the recipe's fitted schema, the features and their
types, the fitted ``prepare`` + ``cluster`` pipeline, the centres, the segment names and the
outlier detector with its threshold. New customers go: raw input --recipe--> customer rows
--checks--> the fitted preparation --> nearest segment and distances, as BigQuery ML's
ML.PREDICT returns them.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Any

import numpy as np
import pandas as pd

from segmint.errors import InputError, ModelError
from segmint.explain import NOISE_NAME
from segmint.spec import RunSpec

__all__ = ["Scorer", "Scores", "fill_rules"]


@dataclasses.dataclass
class Scores:
    """Scored customers as arrays: ``customer``, ``segment``, ``name``, ``distance`` (to its
    own centroid; NaN for outliers and rule-based segments), and ``ids`` / ``dist`` (every
    centroid's id, and each customer's distance to each, in ``ids`` order)."""

    customer: np.ndarray
    segment: np.ndarray
    name: np.ndarray
    distance: np.ndarray
    ids: np.ndarray
    dist: np.ndarray

    def frame(self) -> pd.DataFrame:
        """ML.PREDICT's shape: ``nearest_centroids_distance`` a list of ``{centroid_id,
        distance}`` per customer, nearest first."""
        order = np.argsort(self.dist, axis=1, kind="stable")
        ids = [int(i) for i in self.ids]
        nearest = [[{"centroid_id": ids[j], "distance": float(row[j])} for j in o]
                   for row, o in zip(self.dist.tolist(), order.tolist(), strict=True)] \
            if len(ids) else [[] for _ in range(len(self.customer))]
        return pd.DataFrame({"customer": pd.array(self.customer, dtype="string"),
                             "segment": self.segment, "name": self.name,
                             "distance": self.distance, "nearest_centroids_distance": nearest})

    def arrow(self) -> Any:
        """The same as :meth:`frame`, as an Arrow table built without a Python object per
        customer: for scoring millions in chunks."""
        import pyarrow as pa

        n, k = self.dist.shape
        order = np.argsort(self.dist, axis=1, kind="stable")
        centroid = np.asarray(self.ids, dtype=np.int64)[order].ravel()
        distance = np.take_along_axis(self.dist, order, axis=1).ravel()
        nearest = pa.ListArray.from_arrays(
            pa.array(np.arange(0, n * k + 1, k, dtype=np.int32) if k else np.zeros(n + 1, np.int32)),
            pa.StructArray.from_arrays([pa.array(centroid), pa.array(distance)],
                                       names=["centroid_id", "distance"]))
        return pa.table({"customer": pa.array(self.customer.astype(str), pa.string()),
                         "segment": pa.array(self.segment, pa.int64()),
                         "name": pa.array(self.name.astype(str), pa.string()),
                         "distance": pa.array(self.distance, pa.float64(), from_pandas=True),
                         "nearest_centroids_distance": nearest})


@dataclasses.dataclass
class Scorer:
    """Everything a fitted solution needs to score new customers.

    ``model`` is the fitted pipeline (``prepare`` + ``cluster``; run format 1: ``scale`` +
    ``cluster``), None for a rule-based solution, which has ``rules`` instead. ``centers``
    holds ``segment`` and the prepared columns (None for models that measure their own
    dissimilarities, k-prototypes). ``outliers`` is the run's outlier detector (its space's
    ``prepare`` + ``detect``) and the score threshold it used in fitting.
    """

    spec: RunSpec
    recipe: str
    schema: dict[str, Any] | None
    features: list[str]
    types: dict[str, str]
    algorithm: str
    names: dict[int, str]
    model: Any = None
    prepared_columns: list[str] = dataclasses.field(default_factory=list)
    centers: pd.DataFrame | None = None
    rules: dict[str, Any] | None = None
    outliers: tuple[Any, float] | None = None
    format_version: int = 3
    scorable: bool = True
    where: str | None = None
    #: the model's own segment ids -> the ids it scores as (a re-fit published with its
    #: segments matched to the earlier version's: deploy.schedule); None keeps them
    relabel: dict[int, int] | None = None

    # ---------------------------------------------------------------- input
    def customer_rows(self, data: Any) -> pd.DataFrame:
        """The customers in ``data`` as rows of the model's features (:meth:`customer_table`)."""
        return self.customer_table(data)[self.features]

    def customer_table(self, data: Any) -> pd.DataFrame:
        """The customers in ``data`` as a customer table indexed by customer id: the model's
        features and whatever else the recipe made (the revenue column among them).

        ``data`` is a customer table (the features, ids in a ``customer`` column, an id-named
        column or the index) or raw input of the run's kind (transactions, or a customer
        table as exported), a file or a table in memory, which goes through the run's reading
        and recipe with the schema the fit recorded."""
        from segmint.recipes import build_customers

        features = self.features
        if self.recipe == "transactions" and not isinstance(data, pd.DataFrame):
            data = self._customer_file(data)
        # a frame holding any of the features is customer rows, not raw transactions
        if isinstance(data, pd.DataFrame) and set(features) & set(data.columns) \
                and self.recipe == "transactions":
            table = ids_of_customer_table(data)
        else:
            schema = self.schema or None
            if self.format_version == 1:
                schema = None
            table = build_customers(self.spec, data, schema=schema).frame
        # a weekday or month never seen in new data is a zero count, not a missing feature
        missing = [f for f in features if f not in table.columns]
        if missing and self.spec.recipe.features.startswith("intel") \
                and self.spec.recipe.kind == "transactions":
            table = table.reindex(columns=[*table.columns, *missing], fill_value=0.0)
        elif missing:
            raise InputError(f"the customer rows lack the feature {missing[0]!r} the model "
                             f"needs (it needs {features})", column=missing[0])
        return table

    def _customer_file(self, data: Any) -> Any:
        """A file given to a transactions model: its customer table (ids read as text) when
        its headers hold any of the features, else the file itself, for the recipe."""
        from segmint.io import read_headers, read_source
        from segmint.recipes.attributes import find_id_column
        from segmint.spec import SourceSpec

        if not isinstance(data, (str, os.PathLike)):
            return data
        base = self.spec.source or SourceSpec(path=str(data))
        source = base.model_copy(update={"path": str(data), "url": None, "duckdb": None,
                                         "columns": {}})
        headers = read_headers(source)
        if not set(self.features) & set(headers):
            return data
        table = read_source(source)
        id_column = "customer" if "customer" in headers else find_id_column(headers)
        if id_column is not None:  # as text: "00017" stays "00017"
            missing = table[id_column].isna().to_numpy()
            if missing.any():
                raise InputError("a customer id is missing", file=str(data), column=id_column,
                                 row=int(np.flatnonzero(missing)[0]) + 1)
            ids = read_source(source.model_copy(update={"columns": {"customer": id_column}}),
                              required=("customer",))["customer"]
            table = table.drop(columns=id_column).assign(customer=ids.to_numpy())
        return table

    def model_input(self, frame: pd.DataFrame) -> pd.DataFrame:
        """``frame``'s features as the fitted preparation takes them, after checking every
        value: a number where the schema wants one (else an error naming the row, 1-based,
        and the column), categories as text. Missing values are left for the fitted
        imputers (:func:`fill_rules`)."""
        from segmint.prepare import model_input

        checked = {}
        for column in self.features:
            values = frame[column]
            if self.types.get(column, "numeric") == "categorical":
                text = values.astype("object")
                present = text.notna().to_numpy()
                text = text.where(~present, text.map(lambda v: v if isinstance(v, str) else
                                                     _category_text(v)))
                checked[column] = text
                continue
            if values.dtype == object or pd.api.types.is_string_dtype(values.dtype):
                values = values.astype("object").map(_number_or_nan)
                numbers = pd.to_numeric(values, errors="coerce")
            elif pd.api.types.is_bool_dtype(values.dtype):
                numbers = values.astype("float64")
            else:
                numbers = pd.to_numeric(values, errors="coerce")
            bad = numbers.isna().to_numpy() & values.notna().to_numpy()
            if bad.any():
                row = int(np.flatnonzero(bad)[0])
                raise InputError(f"{values.iloc[row]!r} is not a number (the model reads "
                                 f"{column!r} as {self.types.get(column, 'numeric')})",
                                 column=column, row=row + 1, file=self.where)
            checked[column] = numbers.astype("float64")
        return model_input(pd.DataFrame(checked, index=frame.index), self.types, self.features)

    # ---------------------------------------------------------------- scoring
    def score(self, data: Any) -> pd.DataFrame:
        """customer, segment, name, distance and nearest_centroids_distance (every
        centroid, nearest first) for each customer in ``data``."""
        return self.score_rows(self.customer_rows(data)).frame()

    def score_rows(self, frame: pd.DataFrame) -> Scores:
        """Scores of customer rows (the model's features, ids in the index)."""
        if self.rules is not None:
            return self._score_by_rules(frame)
        if not self.scorable:
            raise ModelError("this solution was clustered on a tree embedding, whose UMAP layout "
                             "cannot be saved in a safe format: it labels the run's customers but "
                             "cannot score new ones; score with a solution of another "
                             "representation", file=self.where)
        from segmint.cluster.registry import ALGORITHMS, nearest_center

        pipe = self.model
        checked = self.model_input(frame)  # once: the outlier detector takes it too
        if self.format_version == 1:
            Z = pipe.named_steps["scale"].transform(checked.to_numpy(dtype="float64"))
        else:
            Z = pipe.named_steps["prepare"].transform(checked)
        algo = ALGORITHMS.get(self.algorithm)
        estimator = pipe.named_steps["cluster"]
        if algo is not None and algo.distances is not None:
            # a mixed-type model: its own dissimilarities to its own centres, not the prepared space
            Z = np.asarray(Z)
            dist = np.asarray(algo.distances(estimator, Z), dtype="float64")
            ids, C = np.arange(dist.shape[1]), np.empty((dist.shape[1], 0))
        else:
            Z = np.asarray(Z, dtype="float64")
            if self.centers is None:
                raise ModelError("the solution's centres are missing", file=self.where)
            ids = self.centers["segment"].to_numpy()
            columns = self.features if self.format_version == 1 else self.prepared_columns
            C = self.centers[columns].to_numpy(dtype="float64")
            dist = _euclidean(Z, C)
        assign = algo.assign if algo is not None else nearest_center
        segment = np.asarray(assign(estimator, Z, ids, C), dtype=np.int64)
        flags = self.outlier_flags(frame, checked=checked)
        if flags is not None:  # set apart as in fitting: the outlier segment, no centroid
            segment[flags] = -1
        own = np.full(len(Z), np.nan)
        for j, s in enumerate(ids):
            own[segment == s] = dist[segment == s, j]
        if self.relabel:
            segment, ids = _relabelled(segment, self.relabel), _relabelled(ids, self.relabel)
        return Scores(customer=frame.index.astype(str).to_numpy(dtype=object), segment=segment,
                      name=self._names_of(segment), distance=own,
                      ids=np.asarray(ids, dtype=np.int64), dist=dist)

    def outlier_flags(self, frame: pd.DataFrame, *,
                      checked: pd.DataFrame | None = None) -> np.ndarray | None:
        """Which customers the fitted outlier detector sets apart, by the threshold it used in
        fitting; None when the model set none apart. ``checked`` is ``frame`` through
        :meth:`model_input` when the caller has it already."""
        from segmint.prepare.outliers import outlier_scores

        if self.outliers is None:
            return None
        pipe, threshold = self.outliers
        checked = self.model_input(frame) if checked is None else checked
        Z = pipe.named_steps["prepare"].transform(checked)
        return outlier_scores(pipe.named_steps["detect"], np.asarray(Z, dtype="float64")) \
            >= float(threshold)

    def _names_of(self, segment: np.ndarray) -> np.ndarray:
        # one lookup per segment, not per customer
        present, where = np.unique(segment, return_inverse=True)
        names = np.array([self.names.get(int(s), NOISE_NAME) for s in present], dtype=object)
        return names[where.reshape(-1)] if len(segment) else np.empty(0, dtype=object)

    def _score_by_rules(self, frame: pd.DataFrame) -> Scores:
        """A rule-based solution scores by its rules (RFM: scores on the run's scale, then the
        segment map); it has no centroids to measure distances to."""
        from segmint.recipes.rfm import score_with_edges

        rules = self.rules or {}
        if rules.get("kind") != "rfm":
            raise ModelError(f"unknown rules {rules.get('kind')!r}", file=self.where)
        scored = score_with_edges(frame, rules["edges"])
        ids = {name: i for i, name in enumerate(rules["segments"])}
        names = scored["rfm_segment"].astype(str).to_numpy(dtype=object)
        return Scores(customer=frame.index.astype(str).to_numpy(dtype=object),
                      segment=np.array([ids[str(s)] for s in names], dtype=np.int64), name=names,
                      distance=np.full(len(frame), np.nan), ids=np.empty(0, dtype=np.int64),
                      dist=np.empty((len(frame), 0)))


def fill_rules(model: Any, features: list[str], types: dict[str, str]) -> dict[str, str]:
    """Feature -> what scoring does with a missing value or an unseen category, read from the
    fitted preparation (its imputers and one-hot encoder), in words.

    Examples
    --------
    >>> import pandas as pd
    >>> from sklearn.pipeline import Pipeline
    >>> from segmint.prepare.representation import make_representation
    >>> t = pd.DataFrame({"spend": [1.0, 3.0, None], "region": ["n", "s", "n"]})
    >>> prep = make_representation("standard", {"spend": "numeric", "region": "categorical"},
    ...                            ["spend", "region"], ["spend"]).fit(t)
    >>> fill_rules(Pipeline([("prepare", prep)]), ["spend", "region"],
    ...            {"spend": "numeric", "region": "categorical"})["spend"]
    'missing: the fitted median, 2; and its missing-value indicator set to 1'
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import MissingIndicator, SimpleImputer
    from sklearn.pipeline import Pipeline

    rules = {f: "missing: an error" for f in features}
    steps = getattr(model, "named_steps", {})
    prepare = steps.get("prepare")
    if not isinstance(prepare, ColumnTransformer):
        return rules
    flagged: set[str] = set()
    for _, part, columns in getattr(prepare, "transformers_", []):
        if not isinstance(columns, list) or isinstance(part, str):
            continue
        if isinstance(part, MissingIndicator):  # a 0/1 column of its own says "was missing"
            flagged.update(columns)
            continue
        inner = part.steps if isinstance(part, Pipeline) else [("", part)]
        imputer = next((s for _, s in inner if isinstance(s, SimpleImputer)), None)
        encoder = next((s for _, s in inner if hasattr(s, "categories_")), None)
        for i, column in enumerate(columns):
            if column not in rules:
                continue
            said = []
            if imputer is not None and hasattr(imputer, "statistics_"):
                value = imputer.statistics_[i]
                what = {"median": "the fitted median", "most_frequent": "the most frequent value",
                        "mean": "the fitted mean"}.get(imputer.strategy, imputer.strategy)
                said.append(f"missing: {what}, {_plain(value)}")
            if encoder is not None and types.get(column) == "categorical":
                handle = getattr(encoder, "handle_unknown", "error")
                said.append("unseen category: " + (
                    "the infrequent level where the fit had one, else no level"
                    if handle == "infrequent_if_exist" else
                    "no level (all zeros)" if handle == "ignore" else "an error"))
            if said:
                rules[column] = "; ".join(said)
    for column in flagged & set(rules):
        rules[column] += "; and its missing-value indicator set to 1"
    return rules


def ids_of_customer_table(data: pd.DataFrame) -> pd.DataFrame:
    """A customer table given in memory, indexed by its ids: a ``customer`` column, else a
    column named like an id (``client_ref``, ``CustomerID``, ...), else a named index."""
    from segmint.recipes.attributes import find_id_column

    id_column = "customer" if "customer" in data.columns else find_id_column(data.columns)
    if id_column is not None:
        table = data.set_index(id_column)
    elif data.index.name is not None:
        table = data
    else:
        raise InputError("the customer table has no id column: put the ids in a 'customer' "
                         "column or in the index (df.set_index(...))", file="DataFrame")
    ids = table.index.astype("string")
    if ids.isna().any():
        raise InputError("a customer id is missing", file="DataFrame", column=str(id_column),
                         row=int(np.flatnonzero(ids.isna())[0]) + 1)
    return table.set_axis(ids.rename("customer"), axis=0)


def _relabelled(segments: np.ndarray, mapping: dict[int, int]) -> np.ndarray:
    out = np.asarray(segments, dtype=np.int64).copy()
    for own in np.unique(out):
        out[segments == own] = mapping.get(int(own), int(own))
    return out


def _euclidean(Z: np.ndarray, C: np.ndarray) -> np.ndarray:
    """Distances of each row of ``Z`` to each centre, exact (no expanded-square rounding)."""
    if not len(C):
        return np.empty((len(Z), 0))
    out = np.empty((len(Z), len(C)))
    for j, c in enumerate(C):
        out[:, j] = np.sqrt(((Z - c) ** 2).sum(axis=1))
    return out


def _number_or_nan(value: Any) -> Any:
    # a JSON body or a CSV read as text: "12.5" is a number; bools are not amounts
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        text = value.strip()
        return np.nan if text == "" else text
    return value


def _category_text(value: Any) -> str:
    # a category that came as a number (JSON 3, not "3"): the fit read it as text
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _plain(value: Any) -> str:
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.6g}"
    return repr(value) if isinstance(value, str) else str(value)
