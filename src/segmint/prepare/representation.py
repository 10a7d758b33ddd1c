"""A representation: the customer table turned into the numeric matrix a clusterer takes.

A representation is one scikit-learn transformer (a ``ColumnTransformer``) fitted on the
customer table, with ``get_feature_names_out``:

- numeric columns: missing values filled with the column's median, then scaled by the
  representation's scaling (standard, minmax, robust, log, none);
- binary columns (0/1): missing values filled with the most common value, not scaled;
- categorical columns: missing values filled with the most common level, then one-hot encoded
  (0/1, not scaled); levels held by fewer than ``rare_share`` of customers are folded into one
  ``<column>_other`` column, and levels never seen in fitting go there too when scoring;
- one 0/1 indicator ``missing_<column>`` for every column that had missing values in fitting,
  so "did not say" stays visible to the clusterer.

The fill values are learned in fitting and stored with the model, so scoring new customers
applies the same rule. Nothing non-finite leaves :func:`prepare`: a NaN or inf that gets past
the recipe is an error naming the column and the rows.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import MissingIndicator, SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

from segmint.errors import InputError
from segmint.io import LARGEST_VALUE
from segmint.prepare._checks import check_matrix
from segmint.prepare.scaling import make_scaler
from segmint.recipes._table import CustomerTable
from segmint.spec import PrepareSpec, RepresentationSpec

__all__ = ["MixedInput", "Representation", "make_representation", "model_input", "prepare",
           "prepare_mixed", "prepared_names", "represent", "what_columns_became"]

_INFREQUENT = "infrequent_sklearn"  # scikit-learn's name for the folded level


@dataclass
class Representation:
    """A fitted representation and the matrix it made."""

    name: str
    transformer: ColumnTransformer
    X: np.ndarray  # float64, finite, one row per customer
    columns: list[str]  # prepared column names, one per column of X
    index: pd.Index | None = None  # the customers of the rows of X


def model_input(frame: pd.DataFrame, types: dict[str, str], features: list[str]) -> pd.DataFrame:
    """The customer table's features as the transformer takes them: numeric and binary as
    float64 (NaN for missing), categorical as object with NaN for missing (scikit-learn's
    imputers and encoders do not take pandas' ``<NA>``).

    Examples
    --------
    >>> t = pd.DataFrame({"a": [1, 2], "c": pd.array(["x", None], dtype="string")})
    >>> model_input(t, {"a": "numeric", "c": "categorical"}, ["a", "c"]).dtypes.tolist()
    [dtype('float64'), dtype('O')]
    """
    out = {}
    for column in features:
        values = frame[column]
        if types[column] == "categorical":
            out[column] = values.astype("object").where(values.notna(), np.nan)
        else:
            out[column] = pd.to_numeric(values, errors="raise").astype("float64")
    return pd.DataFrame(out, index=frame.index)


def make_representation(scaling: str, types: dict[str, str], features: list[str],
                        with_missing: list[str], spec: PrepareSpec | None = None) -> ColumnTransformer:
    """An unfitted representation for a customer table with these column types.

    ``with_missing`` are the columns that get a missing-value indicator (those with missing
    values in the table it will be fitted on).
    """
    spec = spec or PrepareSpec()
    numeric = [c for c in features if types[c] == "numeric"]
    binary = [c for c in features if types[c] == "binary"]
    categorical = [c for c in features if types[c] == "categorical"] \
        if spec.categorical == "onehot" else []
    parts: list[tuple[str, Any, list[str]]] = []
    if numeric:
        parts.append(("num", Pipeline([("impute", SimpleImputer(strategy="median")),
                                       ("scale", make_scaler(scaling))]), numeric))
    if binary:
        parts.append(("bin", SimpleImputer(strategy="most_frequent"), binary))
    if categorical:
        encoder = OneHotEncoder(handle_unknown="infrequent_if_exist", sparse_output=False,
                                min_frequency=spec.rare_share if spec.rare_share > 0 else None,
                                max_categories=spec.max_levels, dtype=np.float64)
        parts.append(("cat", Pipeline([("impute", SimpleImputer(strategy="most_frequent")),
                                       ("onehot", encoder)]), categorical))
    missing = [c for c in with_missing if c in numeric + binary + categorical]
    if missing:
        parts.append(("missing", MissingIndicator(features="all"), missing))
    if not parts:
        raise InputError("no column is left to cluster (every feature is text, ignored or "
                         "dropped); see the feature report")
    return ColumnTransformer(parts, remainder="drop", verbose_feature_names_out=False)


def prepared_names(transformer: ColumnTransformer) -> list[str]:
    """Prepared column names: ``Recency``, ``job_admin.``, ``job_other``, ``missing_Income``."""
    names = []
    for name in transformer.get_feature_names_out():
        name = str(name)
        if name.endswith("_" + _INFREQUENT):
            name = name[: -len(_INFREQUENT)] + "other"
        elif name.startswith("missingindicator_"):
            name = "missing_" + name[len("missingindicator_"):]
        names.append(name)
    return names


def prepare(table: CustomerTable, scaling: str, spec: PrepareSpec | None = None) -> Representation:
    """Fit the representation named ``scaling`` on ``table`` and return it with its matrix.

    Examples
    --------
    >>> from segmint.recipes._table import CustomerTable
    >>> frame = pd.DataFrame({"spend": [10.0, 20.0, np.nan, 40.0],
    ...                       "region": pd.array(["N", "S", "S", None], dtype="string")},
    ...                      index=pd.Index(["a", "b", "c", "d"], name="customer"))
    >>> t = CustomerTable(frame, {"spend": "numeric", "region": "categorical"}, ["spend", "region"])
    >>> rep = prepare(t, "none", PrepareSpec(rare_share=0))
    >>> rep.columns
    ['spend', 'region_N', 'region_S', 'missing_spend', 'missing_region']
    >>> rep.X[2].tolist()   # spend filled with the median, region with the most common level
    [20.0, 0.0, 1.0, 1.0, 0.0]
    """
    features = table.features
    frame = model_input(table.frame, table.types, features)
    for column in features:  # missing values are the policy's; infinities are errors
        if table.types[column] != "categorical":
            values = frame[column].to_numpy()
            infinite = np.isinf(values)
            if infinite.any():
                rows = np.flatnonzero(infinite)
                raise InputError(f"the customer table holds {len(rows)} non-finite values (inf); "
                                 f"first in rows {[int(r) + 1 for r in rows[:5]]}", column=column)
            huge = np.abs(np.nan_to_num(values)) > LARGEST_VALUE
            if huge.any():  # squares overflow in scaling and distances: one cluster everywhere
                rows = np.flatnonzero(huge)
                raise InputError(f"the customer table holds {len(rows)} values beyond ±{LARGEST_VALUE:g} "
                                 f"(e.g. {values[rows[0]]:g}), too large to be a customer figure; "
                                 f"first in rows {[int(r) + 1 for r in rows[:5]]}", column=column)
    with_missing = [c for c in features if frame[c].isna().any()]
    transformer = make_representation(scaling, table.types, features, with_missing, spec)
    X = np.ascontiguousarray(transformer.fit_transform(frame), dtype=np.float64)
    columns = prepared_names(transformer)
    X = check_matrix(X, columns, what=f"the prepared matrix ({scaling})")
    return Representation(scaling, transformer, X, columns, table.frame.index)


def what_columns_became(transformer: ColumnTransformer, features: list[str]) -> dict[str, str]:
    """Source column -> the prepared columns it became, in words, for the feature report."""
    names = prepared_names(transformer)
    became: dict[str, list[str]] = {c: [] for c in features}
    for name in names:
        if name.startswith("missing_") and name[len("missing_"):] in became:
            became[name[len("missing_"):]].append(name)
            continue
        source = max((c for c in features if name == c or name.startswith(c + "_")),
                     key=len, default=None)
        if source is not None:
            became[source].append(name)
    return {c: ", ".join(v) if v else "not clustered" for c, v in became.items()}


@dataclass
class MixedInput:
    """The customer table as a mixed-type clusterer (k-prototypes) takes it: numeric and binary
    columns first (float64, missing values filled with the median), then categorical ones (their
    levels, missing filled with the most common), unscaled and not one-hot encoded."""

    transformer: ColumnTransformer
    X: np.ndarray  # object array: numbers, then levels
    categorical: list[int]  # column indices of X that are categorical
    columns: list[str]


def prepare_mixed(table: CustomerTable) -> MixedInput:
    """Fit the mixed-type input of ``table`` (see :class:`MixedInput`).

    Examples
    --------
    >>> from segmint.recipes._table import CustomerTable
    >>> frame = pd.DataFrame({"spend": [10.0, np.nan, 30.0], "job": ["a", "b", None]},
    ...                      index=pd.Index(["x", "y", "z"], name="customer"))
    >>> mixed = prepare_mixed(CustomerTable(frame, {"spend": "numeric", "job": "categorical"},
    ...                                     ["spend", "job"]))
    >>> mixed.X.tolist(), mixed.categorical
    ([[10.0, 'a'], [20.0, 'b'], [30.0, 'a']], [1])
    """
    features = table.features
    frame = model_input(table.frame, table.types, features)
    numeric = [c for c in features if table.types[c] != "categorical"]
    categorical = [c for c in features if table.types[c] == "categorical"]
    parts: list[tuple[str, Any, list[str]]] = []
    if numeric:
        parts.append(("num", SimpleImputer(strategy="median"), numeric))
    if categorical:
        parts.append(("cat", SimpleImputer(strategy="most_frequent"), categorical))
    transformer = ColumnTransformer(parts, remainder="drop", verbose_feature_names_out=False)
    X = transformer.fit_transform(frame)
    X = np.asarray(X, dtype=object if categorical else np.float64)
    return MixedInput(transformer, X, list(range(len(numeric), len(features))), numeric + categorical)


def represent(table: CustomerTable, space: RepresentationSpec, spec: PrepareSpec | None = None, *,
              seed: int = 0) -> Representation:
    """Fit one space of the sweep (a :class:`~segmint.spec.RepresentationSpec`) on ``table``.

    - ``scaled``: :func:`prepare` with the space's scaling;
    - ``text``: each customer's row as text (the space's template, or "Label: value, ..."),
      embedded by :class:`segmint.prepare.embed.TextEmbedding` (L2-normalised vectors);
    - ``tree``: the ``scaled`` preparation, then :class:`segmint.prepare.tree_embedding.TreeEmbedding`
      (a forest learns ``target`` from the other columns; UMAP lays out its leaves).

    The transformer takes what :func:`model_input` makes of the customer table, so a saved
    solution scores new customers through the same steps.
    """
    if space.kind == "scaled":
        rep = prepare(table, space.scaling, spec)
        rep.name = str(space.name)
        return rep
    frame = model_input(table.frame, table.types, table.features)
    transformer: Any
    if space.kind == "text":
        from segmint.prepare.embed import TextEmbedding

        columns = list(space.columns or table.features)
        unknown = [c for c in columns if c not in table.features]
        if unknown:
            raise InputError(f"the text representation writes column {unknown[0]!r}, which is "
                             f"not a feature of the customer table; features: {table.features}")
        # 0/1 columns in the source's own words ("Housing: yes"), as the recipe read them
        levels = (table.schema or {}).get("binary_levels") or {}
        words = {c: [str(w) for w in levels.get(c, ("yes", "no"))] for c in columns
                 if table.types[c] == "binary"}
        transformer = TextEmbedding(columns=columns, template=space.template, model=space.model,
                                    batch_size=space.batch_size, words=words or None)
    else:
        from segmint.prepare.tree_embedding import TreeEmbedding

        target = space.target or table.revenue
        if target is None:
            raise InputError("a tree representation needs a 'target' column for its forest to "
                             "learn (no revenue column is declared)")
        if target not in table.features or table.types.get(target) not in ("numeric", "binary"):
            raise InputError(f"the tree representation's target {target!r} is not a numeric "
                             f"feature of the customer table; numeric features: "
                             f"{[c for c in table.features if table.types[c] == 'numeric']}")
        with_missing = [c for c in table.features if frame[c].isna().any()]
        scaled = make_representation(space.scaling, table.types, table.features, with_missing,
                                     spec).set_output(transform="pandas")
        transformer = Pipeline([("prepare", scaled),
                                ("embed", TreeEmbedding(target, n_estimators=space.n_estimators,
                                                        n_components=space.n_components,
                                                        umap_metric=space.metric, seed=seed))])
    X = np.ascontiguousarray(transformer.fit_transform(frame), dtype=np.float64)
    columns = [str(c) for c in transformer.get_feature_names_out()]
    X = check_matrix(X, columns, what=f"the {space.kind} representation {space.name!r}")
    return Representation(str(space.name), transformer, X, columns, table.frame.index)
