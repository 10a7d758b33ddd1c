"""BigQuery ML's k-means (``CREATE MODEL ... OPTIONS(model_type='kmeans')``), trained locally.

Three parts, each usable on its own:

* :func:`kmeans_options` reads the ``OPTIONS(...)`` of a ``CREATE MODEL`` statement into a
  :class:`KMeansOptions` with BigQuery's names, defaults and bounds (one declared table,
  :data:`OPTIONS`);
* :class:`BQPreprocessor` is BigQuery's automatic preprocessing as a scikit-learn transformer
  (numeric NULL -> training mean, standardisation, one-hot encoding with NULL as its own
  category and unseen categories as all zeros);
* :class:`BQKMeans` is Lloyd's k-means with BigQuery's initialisations (RANDOM, KMEANS++,
  CUSTOM), distances (EUCLIDEAN, COSINE), stopping rule (``max_iterations``, ``early_stop`` on
  ``min_rel_progress``) and per-iteration log (ML.TRAINING_INFO).

:func:`train` puts them together on the rows of the training query (a pyarrow Table) and
returns a :class:`KMeansModel`, hyper-parameter trials included; :func:`to_state` and
:func:`from_state` turn it into scikit-learn Pipelines (for skops) and a JSON-able dict, and
back. The ML.* result tables are in :mod:`segmint.sql.outputs`.

Why not scikit-learn's ``KMeans``: BigQuery stops when the loss improves by less than
``min_rel_progress`` (relative, 0.01) or after ``max_iterations`` (20), logs the loss and
duration of every iteration, offers a cosine distance and starts from user-marked rows;
scikit-learn's ``KMeans`` stops on centre movement (``tol``), keeps no per-iteration loss, runs
several starts and knows only Euclidean distance. The iteration here is a few vectorised numpy
lines (:func:`_lloyd_step`), so writing it is cheaper than bending ``KMeans``.

BigQuery behaviour followed (documentation pages)
--------------------------------------------------
* Options, names and defaults: model_type 'KMEANS' (required), num_clusters (an INT64 in
  [2, 100], or HPARAM_RANGE / HPARAM_CANDIDATES), kmeans_init_method 'RANDOM' (default) |
  'KMEANS++' | 'CUSTOM' with kmeans_init_col, distance_type 'EUCLIDEAN' (default) | 'COSINE',
  standardize_features TRUE, max_iterations 20, early_stop TRUE, min_rel_progress 0.01,
  warm_start FALSE, num_trials, max_parallel_trials, hparam_tuning_algorithm,
  hparam_tuning_objectives 'DAVIES_BOULDIN_INDEX', model_registry, vertex_ai_model_id,
  vertex_ai_model_version_aliases, kms_key_name:
  https://cloud.google.com/bigquery/docs/reference/standard-sql/bigqueryml-syntax-create-kmeans
* num_clusters defaults to log10(n), n the number of training rows (same page).
* The kmeans_init_col column is a BOOL marking the starting centroids; it is not a feature.
* Automatic preprocessing: numeric NULL -> the column's training mean (training and
  prediction); one-hot columns get NULL as an extra category and unseen values weight 0;
  INT64, NUMERIC, BIGNUMERIC, FLOAT64 are standardised (for k-means only when
  standardize_features); BOOL and STRING are one-hot encoded:
  https://cloud.google.com/bigquery/docs/auto-preprocessing
* Cluster radius (ML.TRAINING_INFO's cluster_info, and the normaliser of ML.DETECT_ANOMALIES'
  distance here): "the average distance from centroid to each point assigned to the cluster"
  (BigQuery API, ``Model.TrainingRun.IterationResult.ClusterInfo``).

Where segmint differs from BigQuery ML, and why
-----------------------------------------------
1. ``seed`` is an option of ours (BigQuery has none, so its RANDOM and KMEANS++ starts differ
   from run to run). Default 0: the same statement on the same rows gives the same model, which
   a local tool's tests, reruns and saved runs need. Set another seed to draw other starts.
2. Default num_clusters: BigQuery says log10(n); it does not say how that is rounded. segmint
   rounds to the nearest integer and keeps it within [2, min(100, n)].
3. Standardisation uses the sample standard deviation (n - 1), which is what ML.FEATURE_INFO's
   ``stddev`` (BigQuery's STDDEV) reports; BigQuery does not document which it uses. A
   constant column (stddev 0 or NULL) is centred and not scaled.
4. Category order (one-hot columns, ML.CENTROIDS' categorical_value) is sorted by the
   category's text, NULL last; BigQuery does not document an order. BOOL categories are written
   'true' / 'false' (BigQuery's CAST(bool AS STRING)). The NULL category exists only when the
   training rows held a NULL in that column; otherwise a NULL at prediction is an unseen
   value (all zeros).
5. Supported feature types: INT64, FLOAT64, NUMERIC, BIGNUMERIC, BOOL, STRING. BigQuery also
   one-hot encodes BYTES, DATE, DATETIME, TIME and handles TIMESTAMP, ARRAY, STRUCT and
   GEOGRAPHY; segmint refuses them naming the column (cast them to STRING or a number).
6. Loss (ML.TRAINING_INFO.loss): the mean squared Euclidean distance of the training rows to
   the centre of their cluster after the iteration's update; for COSINE, the mean cosine
   distance (1 - cos), which is what spherical k-means lowers at every step. BigQuery does not
   define its k-means loss. eval_loss and learning_rate are NULL (k-means has no evaluation
   split or learning rate here).
7. Early stop: training stops after the first iteration whose loss improved by less than
   min_rel_progress relative to the previous loss (the first iteration is measured against
   the loss of the starting centres). Training also stops, with or without early_stop, when
   the assignments no longer change (further iterations would repeat the last one).
8. COSINE is spherical k-means on the standardised (or, without standardize_features, imputed)
   rows: rows are scaled to unit length, distance = 1 - cos, and a centroid is the mean of its
   rows' unit vectors (only its direction matters). ML.CENTROIDS back-transforms that mean like
   any centre, so for COSINE its numerical values describe a direction, not a typical row. An
   all-zero row is at distance 1 from every centroid.
9. An empty cluster is re-seeded with the training row farthest from its own centre (the next
   farthest for a second empty cluster); BigQuery does not say what it does.
10. Hyper-parameter tuning: every trial trains on all training rows and is scored on them
    (BigQuery splits off evaluation rows); eval_loss is NULL. The search is over the listed
    num_clusters values: RANDOM_SEARCH draws num_trials of them with the seed, GRID_SEARCH and
    VIZIER_DEFAULT take num_trials evenly spaced values (no Bayesian optimisation). Without
    num_trials every candidate is tried. Trials run one after another (max_parallel_trials
    has no effect). A candidate above the number of rows is an INFEASIBLE trial.
    num_trials with num_clusters left out searches [2, 10] (as documented for BigQuery's
    default search space); num_trials > 1 with a fixed num_clusters is refused.
11. warm_start: the caller passes the previous model (``warm_start_from``; or its centres in the new prepared
    space); the preprocessing is refitted on the new rows, so the old centres are read in the
    new standardised units.
12. Options BigQuery has that do not apply locally (model_registry, vertex_ai_model_id,
    vertex_ai_model_version_aliases, kms_key_name) are accepted with a logged warning and
    ignored.
13. Outputs (:mod:`segmint.sql.outputs`) list their own differences.
"""
from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from numbers import Integral, Real
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from segmint.errors import InputError, ModelError, SpecError, public

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa
    from sklearn.pipeline import Pipeline

from sklearn.base import BaseEstimator, TransformerMixin

from segmint.cluster.bqml_kmeans import BQKMeans, _unit_rows

__all__ = [
    "OPTIONS", "NUMERIC_TYPES", "CATEGORICAL_TYPES", "HParam", "KMeansOptions", "kmeans_options",
    "bigquery_type", "BQPreprocessor", "BQKMeans", "KMeansTrial", "KMeansModel", "train",
    "to_state", "from_state", "clustering_metrics",
]

logger = logging.getLogger(__name__)

#: BigQuery types standardised as numbers, and those one-hot encoded, that segmint supports
NUMERIC_TYPES = ("INT64", "FLOAT64", "NUMERIC", "BIGNUMERIC")
CATEGORICAL_TYPES = ("BOOL", "STRING")

_STATE_FORMAT = "segmint.sql.kmeans/1"
_MAX_CLUSTERS = 100
_DEFAULT_SEARCH = (2, 10)  # BigQuery's num_clusters search space when num_trials comes alone


# ---------------------------------------------------------------------------------- options

class HParam(Protocol):
    """What the SQL layer hands over for HPARAM_RANGE(a, b) (kind 'range', values [a, b]) and
    HPARAM_CANDIDATES([...]) (kind 'candidates')."""

    kind: str
    values: Sequence[Any]


@dataclass(frozen=True)
class _Option:
    kind: type                      # the Python type of the value: str, int, float, bool, list
    default: Any = None
    choices: frozenset[str] | None = None   # upper-case values a string may take
    low: float | None = None
    high: float | None = None
    hparam: bool = False            # may be HPARAM_RANGE / HPARAM_CANDIDATES
    applies: bool = True            # False: BigQuery has it, segmint accepts and ignores it


#: Every option BigQuery ML's k-means takes, plus ``seed`` (ours); names lower case.
OPTIONS: dict[str, _Option] = {
    "model_type": _Option(str, None, frozenset({"KMEANS"})),
    "num_clusters": _Option(int, None, low=2, high=_MAX_CLUSTERS, hparam=True),
    "kmeans_init_method": _Option(str, "RANDOM", frozenset({"RANDOM", "KMEANS++", "CUSTOM"})),
    "kmeans_init_col": _Option(str, None),
    "distance_type": _Option(str, "EUCLIDEAN", frozenset({"EUCLIDEAN", "COSINE"})),
    "standardize_features": _Option(bool, True),
    "max_iterations": _Option(int, 20, low=1),
    "early_stop": _Option(bool, True),
    "min_rel_progress": _Option(float, 0.01, low=0.0),
    "warm_start": _Option(bool, False),
    "num_trials": _Option(int, None, low=1, high=100),
    "max_parallel_trials": _Option(int, 1, low=1, high=5),
    "hparam_tuning_algorithm": _Option(str, "VIZIER_DEFAULT",
                                       frozenset({"VIZIER_DEFAULT", "RANDOM_SEARCH", "GRID_SEARCH"})),
    "hparam_tuning_objectives": _Option(list, ("DAVIES_BOULDIN_INDEX",),
                                        frozenset({"DAVIES_BOULDIN_INDEX"})),
    "model_registry": _Option(str, None, frozenset({"VERTEX_AI"}), applies=False),
    "vertex_ai_model_id": _Option(str, None, applies=False),
    "vertex_ai_model_version_aliases": _Option(list, None, applies=False),
    "kms_key_name": _Option(str, None, applies=False),
    "seed": _Option(int, 0, low=0),
}


@dataclass(frozen=True)
class KMeansOptions:
    """The options of one k-means ``CREATE MODEL``, checked, with BigQuery's defaults filled in.

    ``num_clusters`` is the fixed number of clusters (None when tuning); ``candidates`` the
    num_clusters values the trials try, in trial order (one value without tuning).
    """

    num_clusters: int | None
    candidates: tuple[int, ...]
    hparam_tuning: bool
    kmeans_init_method: str = "RANDOM"
    kmeans_init_col: str | None = None
    distance_type: str = "EUCLIDEAN"
    standardize_features: bool = True
    max_iterations: int = 20
    early_stop: bool = True
    min_rel_progress: float = 0.01
    warm_start: bool = False
    num_trials: int | None = None
    max_parallel_trials: int = 1
    hparam_tuning_algorithm: str = "VIZIER_DEFAULT"
    hparam_tuning_objectives: tuple[str, ...] = ("DAVIES_BOULDIN_INDEX",)
    seed: int = 0
    model_type: str = "KMEANS"
    ignored: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able: tuples become lists."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> KMeansOptions:
        """The inverse of :meth:`to_dict`."""
        values = dict(data)
        for name in ("candidates", "hparam_tuning_objectives"):
            values[name] = tuple(values[name])
        return cls(**values)


def _default_num_clusters(n_rows: int) -> int:
    # log10(n) as documented; the rounding is ours (see the module's differences, 2)
    return max(2, min(_MAX_CLUSTERS, n_rows, round(math.log10(max(n_rows, 1)))))


def _check_value(name: str, spec: _Option, value: Any) -> Any:
    """One option's value, coerced to its type and checked against its bounds."""
    if spec.kind is bool:
        if not isinstance(value, (bool, np.bool_)):
            raise SpecError(f"option {name} must be TRUE or FALSE, got {value!r}")
        return bool(value)
    if spec.kind is int:
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (Integral, float)) \
                or (isinstance(value, float) and not value.is_integer()):
            raise SpecError(f"option {name} must be an INT64, got {value!r}")
        value = int(value)
    elif spec.kind is float:
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, Real):
            raise SpecError(f"option {name} must be a FLOAT64, got {value!r}")
        value = float(value)
    elif spec.kind is str:
        if not isinstance(value, str):
            raise SpecError(f"option {name} must be a STRING, got {value!r}")
        if spec.choices is not None:
            value = value.upper()
            if value not in spec.choices:
                raise SpecError(f"option {name} must be one of {sorted(spec.choices)}, got {value!r}")
        return value
    elif spec.kind is list:
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, (list, tuple)) or not all(isinstance(v, str) for v in items):
            raise SpecError(f"option {name} must be an ARRAY<STRING>, got {value!r}")
        if spec.choices is not None:
            items = [v.upper() for v in items]
            bad = [v for v in items if v not in spec.choices]
            if bad:
                raise SpecError(f"option {name} accepts only {sorted(spec.choices)} for kmeans, "
                                f"got {bad}")
        return tuple(items)
    if spec.low is not None and value < spec.low or spec.high is not None and value > spec.high:
        bounds = f"[{spec.low:g}, {spec.high:g}]" if spec.high is not None else f">= {spec.low:g}"
        raise SpecError(f"option {name} must be in {bounds}, got {value!r}")
    return value


def _hparam_candidates(name: str, spec: _Option, value: Any) -> tuple[int, ...]:
    kind = str(getattr(value, "kind", "")).lower()
    values = list(getattr(value, "values", []))
    if kind == "range":
        if len(values) != 2:
            raise SpecError(f"HPARAM_RANGE for {name} takes two values (min, max), got {values}")
        low, high = (_check_value(name, spec, v) for v in values)
        if low > high:
            raise SpecError(f"HPARAM_RANGE for {name} has min {low} above max {high}")
        return tuple(range(low, high + 1))
    if kind == "candidates":
        if not values:
            raise SpecError(f"HPARAM_CANDIDATES for {name} is empty")
        return tuple(dict.fromkeys(_check_value(name, spec, v) for v in values))
    raise SpecError(f"option {name}: unknown hyper-parameter kind {kind!r} (range or candidates)")


def _is_hparam(value: Any) -> bool:
    return hasattr(value, "kind") and hasattr(value, "values")


def _trial_values(candidates: tuple[int, ...], num_trials: int | None, algorithm: str,
                  seed: int) -> tuple[int, ...]:
    """The num_clusters values the trials try (differences, 10)."""
    if num_trials is None or num_trials >= len(candidates):
        return candidates
    if algorithm == "RANDOM_SEARCH":
        picked = np.random.default_rng(seed).choice(len(candidates), num_trials, replace=False)
        return tuple(candidates[i] for i in sorted(picked))
    ordered = sorted(candidates)
    spots = np.unique(np.round(np.linspace(0, len(ordered) - 1, num_trials)).astype(int))
    return tuple(ordered[i] for i in spots)


@public
def kmeans_options(options: Mapping[str, Any], *, n_rows: int) -> KMeansOptions:
    """Read a k-means ``CREATE MODEL``'s OPTIONS as BigQuery ML reads them.

    Parameters
    ----------
    options : option name -> Python value (names and string values in any case); num_clusters
        may be an object with ``.kind`` ('range' / 'candidates') and ``.values``
    n_rows : the number of training rows (the default num_clusters and its upper bound)

    Returns
    -------
    KMeansOptions

    Examples
    --------
    >>> opts = kmeans_options({"MODEL_TYPE": "kmeans", "kmeans_init_method": "kmeans++"},
    ...                       n_rows=5000)
    >>> opts.num_clusters, opts.kmeans_init_method, opts.max_iterations, opts.min_rel_progress
    (4, 'KMEANS++', 20, 0.01)
    >>> kmeans_options({"model_type": "kmeans", "l2_reg": 1}, n_rows=10)
    Traceback (most recent call last):
    ...
    segmint.errors.SpecError: BigQuery ML has no option l2_reg for kmeans
    """
    given: dict[str, Any] = {}
    for raw_name, value in options.items():
        name = str(raw_name).lower()
        if name in given:
            raise SpecError(f"option {name} is given twice")
        given[name] = value
    if "model_type" not in given:
        raise SpecError("CREATE MODEL needs OPTIONS(model_type='kmeans'): segmint supports "
                        "model_type 'kmeans'")
    model_type = given["model_type"]
    if not isinstance(model_type, str) or model_type.upper() != "KMEANS":
        raise SpecError(f"segmint supports model_type 'kmeans', not {model_type!r}")
    unknown = sorted(set(given) - set(OPTIONS))
    if unknown:
        raise SpecError(f"BigQuery ML has no option {unknown[0]} for kmeans"
                        + (f" (nor {', '.join(unknown[1:])})" if len(unknown) > 1 else ""))

    values: dict[str, Any] = {}
    ignored: dict[str, Any] = {}
    num_clusters_value = given.pop("num_clusters", None)
    for name, spec in OPTIONS.items():
        if name == "num_clusters" or (not spec.applies and given.get(name) is None):
            continue
        if name not in given or given[name] is None:
            values[name] = spec.default
            continue
        checked = _check_value(name, spec, given[name])
        if not spec.applies:
            logger.warning("option %s has no effect in segmint (BigQuery-only); ignored", name)
            ignored[name] = list(checked) if isinstance(checked, tuple) else checked
            continue
        values[name] = checked

    if n_rows < 2:
        raise InputError(f"k-means needs at least 2 training rows, the query gave {n_rows}")
    num_trials = values["num_trials"]
    if _is_hparam(num_clusters_value):
        candidates = _hparam_candidates("num_clusters", OPTIONS["num_clusters"], num_clusters_value)
        tuning = True
    elif num_clusters_value is None and num_trials is not None and num_trials > 1:
        candidates, tuning = tuple(range(_DEFAULT_SEARCH[0], _DEFAULT_SEARCH[1] + 1)), True
    else:
        if num_trials is not None and num_trials > 1:
            raise SpecError("num_trials tunes num_clusters: give num_clusters as HPARAM_RANGE or "
                            "HPARAM_CANDIDATES, or leave it out")
        if num_clusters_value is None:
            k = _default_num_clusters(n_rows)
        else:
            k = _check_value("num_clusters", OPTIONS["num_clusters"], num_clusters_value)
            if k > n_rows:
                raise SpecError(f"num_clusters={k} is more than the {n_rows} training rows")
        candidates, tuning = (k,), False

    method = values["kmeans_init_method"]
    init_col = values["kmeans_init_col"]
    if method == "CUSTOM":
        if init_col is None:
            raise SpecError("kmeans_init_method 'CUSTOM' needs kmeans_init_col, the BOOL column "
                            "marking the starting centroids")
        if tuning:
            raise SpecError("kmeans_init_method 'CUSTOM' fixes num_clusters (the marked rows); "
                            "it cannot be tuned")
    elif init_col is not None:
        raise SpecError(f"kmeans_init_col is used only with kmeans_init_method 'CUSTOM' "
                        f"(got {method!r})")
    if values["warm_start"] and tuning:
        raise SpecError("warm_start cannot be combined with hyper-parameter tuning")
    if tuning:
        candidates = _trial_values(candidates, num_trials, values["hparam_tuning_algorithm"],
                                   values["seed"])
    values.pop("model_type")
    return KMeansOptions(num_clusters=None if tuning else candidates[0], candidates=candidates,
                         hparam_tuning=tuning, ignored=ignored, **values)


# --------------------------------------------------------------------------- column types

def bigquery_type(arrow_type: pa.DataType, column: str) -> str:
    """The BigQuery type of an Arrow column, for the types segmint's k-means takes.

    Examples
    --------
    >>> import pyarrow as pa
    >>> [bigquery_type(t, "c") for t in (pa.int32(), pa.float32(), pa.decimal128(10, 2),
    ...                                   pa.bool_(), pa.large_string())]
    ['INT64', 'FLOAT64', 'NUMERIC', 'BOOL', 'STRING']
    """
    import pyarrow as pa

    t = arrow_type.value_type if pa.types.is_dictionary(arrow_type) else arrow_type
    if pa.types.is_integer(t):
        return "INT64"
    if pa.types.is_floating(t):
        return "FLOAT64"
    if pa.types.is_decimal(t):
        return "BIGNUMERIC" if t.precision > 38 else "NUMERIC"
    if pa.types.is_boolean(t):
        return "BOOL"
    if pa.types.is_string(t) or pa.types.is_large_string(t) or getattr(pa.types, "is_string_view",
                                                                        lambda _: False)(t):
        return "STRING"
    raise InputError(f"type {t} is not supported as a k-means feature (segmint takes INT64, "
                     f"FLOAT64, NUMERIC, BIGNUMERIC, BOOL and STRING; cast it or leave it out)",
                     column=column)


def _numeric_values(series: pd.Series, column: str) -> np.ndarray:
    import pandas as pd

    try:
        return np.asarray(pd.to_numeric(series, errors="raise"), dtype=np.float64)
    except (ValueError, TypeError) as exc:
        raise InputError(f"expected numbers ({exc})", column=column) from None


def _category_keys(series: pd.Series, bq_type: str) -> np.ndarray:
    """Each value's category text (object array), None for NULL."""
    import pandas as pd

    missing = pd.isna(series).to_numpy()
    values = series.to_numpy(dtype=object)
    if bq_type == "BOOL":
        keys = ["true" if v else "false" for v in values]
    else:
        keys = [str(v) for v in values]
    out = np.asarray(keys, dtype=object)
    out[missing] = None
    return out


# ------------------------------------------------------------------------- preprocessing

class BQPreprocessor(TransformerMixin, BaseEstimator):
    """BigQuery ML's automatic preprocessing of k-means features, as a scikit-learn transformer.

    Numeric columns (INT64, FLOAT64, NUMERIC, BIGNUMERIC): NULL -> the training mean, then
    ``(x - mean) / stddev`` when ``standardize`` (sample stddev; a constant column is only
    centred). BOOL and STRING columns: one-hot, one output column per training category (sorted,
    then NULL when the training rows held NULLs); a value not seen in training is all zeros.

    Parameters
    ----------
    standardize : BigQuery's standardize_features
    types : column -> BigQuery type; columns not listed are read as numeric if pandas holds
        numbers there, else STRING

    Attributes
    ----------
    feature_names_in_ : the input columns, in order
    kinds_ : 'numeric' or 'categorical' per input column
    mean_, stddev_, scale_ : per input column: the training mean (imputation), the sample
        standard deviation, and the divisor of standardisation (stddev_, or 1.0 without
        standardisation, for a constant column and for categorical columns)
    categories_ : per input column, its categories' texts (empty for numeric columns)
    null_category_ : per input column, whether NULL is one of its categories (last)

    Examples
    --------
    >>> import pandas as pd
    >>> X = pd.DataFrame({"spend": [10.0, None, 30.0], "os": ["mac", "linux", None]})
    >>> prep = BQPreprocessor(types={"spend": "FLOAT64", "os": "STRING"}).fit(X)
    >>> prep.get_feature_names_out().tolist()
    ['spend', 'os=linux', 'os=mac', 'os IS NULL']
    >>> prep.transform(pd.DataFrame({"spend": [20.0], "os": ["windows"]})).tolist()
    [[0.0, 0.0, 0.0, 0.0]]
    """

    _parameter_constraints: dict[str, list[Any]] = {
        "standardize": ["boolean"],
        "types": [dict, None],
    }

    def __init__(self, standardize: bool = True, types: dict[str, str] | None = None) -> None:
        self.standardize = standardize
        self.types = types

    def _type_of(self, column: str, series: pd.Series) -> str:
        import pandas as pd

        bq_type = (self.types or {}).get(column)
        if bq_type is None:
            return "FLOAT64" if pd.api.types.is_numeric_dtype(series) and \
                not pd.api.types.is_bool_dtype(series) else "STRING"
        bq_type = bq_type.upper()
        if bq_type not in NUMERIC_TYPES + CATEGORICAL_TYPES:
            raise InputError(f"type {bq_type} is not supported as a k-means feature", column=column)
        return bq_type

    def fit(self, X: pd.DataFrame, y: Any = None) -> BQPreprocessor:
        """Learn means, standard deviations and categories from the training rows.

        Parameters
        ----------
        X : DataFrame of the feature columns
        y : ignored

        Returns
        -------
        BQPreprocessor
            self, fitted.
        """
        self._validate_params()
        columns = [str(c) for c in X.columns]
        if not columns:
            raise InputError("the training query has no feature columns")
        kinds: list[str] = []
        means: list[float] = []
        stddevs: list[float] = []
        scales: list[float] = []
        categories: list[list[str]] = []
        nulls: list[bool] = []
        for column in columns:
            series = X[column]
            bq_type = self._type_of(column, series)
            if bq_type in NUMERIC_TYPES:
                values = _numeric_values(series, column)
                present = values[~np.isnan(values)]
                if present.size == 0:
                    raise InputError("the column is NULL in every training row", column=column)
                mean = float(present.mean())
                std = float(present.std(ddof=1)) if present.size > 1 else 0.0
                kinds.append("numeric")
                means.append(mean)
                stddevs.append(std)
                scales.append(std if self.standardize and std > 0 else 1.0)
                categories.append([])
                nulls.append(False)
            else:
                keys = _category_keys(series, bq_type)
                seen = {k for k in keys if k is not None}
                kinds.append("categorical")
                means.append(0.0)
                stddevs.append(0.0)
                scales.append(1.0)
                categories.append(sorted(seen))
                nulls.append(bool(any(k is None for k in keys)))
        self.feature_names_in_ = np.asarray(columns, dtype=object)
        self.n_features_in_ = len(columns)
        self.kinds_ = kinds
        self.mean_ = np.asarray(means, dtype=np.float64)
        self.stddev_ = np.asarray(stddevs, dtype=np.float64)
        self.scale_ = np.asarray(scales, dtype=np.float64)
        self.categories_ = categories
        self.null_category_ = np.asarray(nulls, dtype=bool)
        return self

    def _widths(self) -> list[int]:
        return [1 if kind == "numeric" else len(cats) + int(null)
                for kind, cats, null in zip(self.kinds_, self.categories_, self.null_category_,
                                            strict=True)]

    def transform(self, X: pd.DataFrame) -> np.ndarray:
        """The prepared rows: one float column per output feature.

        Parameters
        ----------
        X : DataFrame holding (at least) the training's feature columns

        Returns
        -------
        ndarray of shape (n_rows, len(get_feature_names_out()))
        """
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(self, "kinds_")
        out = np.zeros((len(X), sum(self._widths())), dtype=np.float64)
        start = 0
        for i, column in enumerate(self.feature_names_in_):
            if column not in X.columns:
                raise InputError("the input lacks this feature column of the model", column=column)
            series = X[column]
            if self.kinds_[i] == "numeric":
                values = _numeric_values(series, column)
                values = np.where(np.isnan(values), self.mean_[i], values)
                out[:, start] = (values - self.mean_[i]) / self.scale_[i] if self.standardize \
                    else values
                start += 1
                continue
            bq_type = (self.types or {}).get(column, "STRING").upper()
            keys = _category_keys(series, bq_type)
            position: dict[str | None, int] = {cat: j for j, cat in enumerate(self.categories_[i])}
            if self.null_category_[i]:
                position[None] = len(self.categories_[i])
            width = len(position)
            for row, key in enumerate(keys):
                j = position.get(key)
                if j is not None:
                    out[row, start + j] = 1.0
            start += width
        return out

    def inverse_numeric(self, centers: np.ndarray) -> np.ndarray:
        """Centres in the prepared space back in input units: numeric columns ``z*std + mean``
        (as they are without standardisation), one-hot columns unchanged."""
        out = np.array(centers, dtype=np.float64, copy=True)
        if not self.standardize:
            return out
        start = 0
        for i, width in enumerate(self._widths()):
            if self.kinds_[i] == "numeric":
                out[:, start] = out[:, start] * self.scale_[i] + self.mean_[i]
            start += width
        return out

    def standardized_numeric(self, centers: np.ndarray) -> np.ndarray:
        """Centres with every numeric column as ``(x - mean) / stddev`` (ML.CENTROIDS'
        standardize), whether or not the model standardised its features."""
        out = np.array(centers, dtype=np.float64, copy=True)
        if self.standardize:
            return out
        start = 0
        for i, width in enumerate(self._widths()):
            if self.kinds_[i] == "numeric":
                out[:, start] = (out[:, start] - self.mean_[i]) / self._stddev(i)
            start += width
        return out

    def _stddev(self, i: int) -> float:
        # a constant column is centred, not scaled (as in fit)
        return float(self.stddev_[i]) if self.stddev_[i] > 0 else 1.0

    def output_slices(self) -> list[tuple[str, str, slice]]:
        """(input column, kind, its output columns) per input column, in order."""
        out, start = [], 0
        for column, kind, width in zip(self.feature_names_in_, self.kinds_, self._widths(),
                                       strict=True):
            out.append((str(column), kind, slice(start, start + width)))
            start += width
        return out

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """One name per output column: the column's name for a number, ``column=category`` for a
        category, ``column IS NULL`` for the NULL category."""
        names: list[str] = []
        for i, column in enumerate(self.feature_names_in_):
            if self.kinds_[i] == "numeric":
                names.append(str(column))
                continue
            names.extend(f"{column}={cat}" for cat in self.categories_[i])
            if self.null_category_[i]:
                names.append(f"{column} IS NULL")
        return np.asarray(names, dtype=object)


# ----------------------------------------------------------------------------- the model

def clustering_metrics(estimator: BQKMeans, X: np.ndarray) -> tuple[float | None, float | None]:
    """ML.EVALUATE's (davies_bouldin_index, mean_squared_distance) of prepared rows X.

    Each row belongs to its nearest centre (ML.PREDICT's CENTROID_ID). Davies-Bouldin is
    scikit-learn's on the prepared rows (for COSINE, on the rows scaled to unit length: the
    space the clusters live in); None when fewer than 2 clusters hold rows or every row is its
    own cluster. The mean squared distance is of each row to its nearest centre in the model's
    distance (for COSINE, the squared cosine distance).
    """
    from sklearn.metrics import davies_bouldin_score

    distances = estimator.transform(X)
    labels = distances.argmin(axis=1)
    nearest = distances[np.arange(len(X)), labels]
    space = _unit_rows(X) if estimator.distance == "cosine" else X
    used = len(np.unique(labels))
    davies_bouldin = float(davies_bouldin_score(space, labels)) if 2 <= used < len(X) else None
    if not len(X):  # no rows: no measure (NULL), as an aggregate over no rows
        return None, None
    return davies_bouldin, float(np.mean(nearest ** 2))


@dataclass
class KMeansTrial:
    """One trained model of a CREATE MODEL (the only one without hyper-parameter tuning)."""

    trial_id: int                           # 1-based
    num_clusters: int
    estimator: BQKMeans | None              # None when the trial did not train
    davies_bouldin_index: float | None = None
    mean_squared_distance: float | None = None
    status: str = "SUCCEEDED"               # SUCCEEDED | INFEASIBLE | FAILED
    error_message: str | None = None

    @property
    def labels(self) -> np.ndarray | None:
        """The training rows' clusters (0-based), as the final centres were computed from."""
        return None if self.estimator is None else self.estimator.labels_

    @property
    def training_loss(self) -> float | None:
        """The loss of the last iteration."""
        if self.estimator is None or not self.estimator.training_info_:
            return None
        return float(self.estimator.training_info_[-1]["loss"])


@dataclass
class KMeansModel:
    """A trained k-means CREATE MODEL: options, column types, the fitted preprocessor, the
    trials (each a fitted :class:`BQKMeans` on the shared preprocessor) and what the ML.*
    functions report."""

    options: KMeansOptions
    feature_types: dict[str, str]           # feature column -> BigQuery type, in input order
    preprocessor: BQPreprocessor
    trials: list[KMeansTrial]
    optimal_trial: int                      # trial_id of the trial with the lowest Davies-Bouldin
    feature_stats: list[dict[str, Any]]     # ML.FEATURE_INFO's rows
    training_info: list[dict[str, Any]]     # ML.TRAINING_INFO's rows (every trial and run)

    @property
    def hparam_tuning(self) -> bool:
        """Whether num_clusters was tuned (ML.* outputs then carry trial_id)."""
        return self.options.hparam_tuning

    def trial(self, trial_id: int | None = None) -> KMeansTrial:
        """A trial by id (the optimal one by default); ModelError if it has no model."""
        wanted = self.optimal_trial if trial_id is None else int(trial_id)
        for trial in self.trials:
            if trial.trial_id == wanted:
                if trial.estimator is None:
                    raise ModelError(f"trial {wanted} did not train ({trial.status}: "
                                     f"{trial.error_message})")
                return trial
        raise ModelError(f"the model has no trial {wanted} (trials 1 to {len(self.trials)})")

    def summary(self) -> str:
        """One line: clusters and Davies-Bouldin of the optimal trial (and the trials run)."""
        best = self.trial()
        davies_bouldin = "n/a" if best.davies_bouldin_index is None \
            else f"{best.davies_bouldin_index:.3f}"
        line = f"{best.num_clusters} clusters, Davies-Bouldin {davies_bouldin}"
        if not self.hparam_tuning:
            return line
        tried = ", ".join(str(t.num_clusters) for t in self.trials)
        return f"{len(self.trials)} trials (num_clusters {tried}); optimal trial {best.trial_id}: {line}"

    @property
    def estimator(self) -> BQKMeans:
        """The optimal trial's estimator."""
        estimator = self.trial().estimator
        assert estimator is not None
        return estimator

    @property
    def davies_bouldin_index(self) -> float | None:
        """The optimal trial's Davies-Bouldin index on the training rows."""
        return self.trial().davies_bouldin_index

    @property
    def mean_squared_distance(self) -> float | None:
        """The optimal trial's mean squared distance on the training rows."""
        return self.trial().mean_squared_distance

    def pipeline(self, trial_id: int | None = None) -> Pipeline:
        """``Pipeline([("prepare", preprocessor), ("cluster", estimator)])`` of a trial."""
        from sklearn.pipeline import Pipeline

        return Pipeline([("prepare", self.preprocessor), ("cluster", self.trial(trial_id).estimator)])


def _feature_stats(frame: pd.DataFrame, feature_types: Mapping[str, str]) -> list[dict[str, Any]]:
    """ML.FEATURE_INFO's rows: numeric stats for numbers, category_count for categories."""
    rows = []
    for column, bq_type in feature_types.items():
        series = frame[column]
        if bq_type in NUMERIC_TYPES:
            values = _numeric_values(series, column)
            present = values[~np.isnan(values)]
            rows.append({
                "input": column, "min": float(present.min()), "max": float(present.max()),
                "mean": float(present.mean()), "median": float(np.median(present)),
                "stddev": float(present.std(ddof=1)) if present.size > 1 else None,
                "category_count": None, "null_count": int(values.size - present.size),
                "dimension": None})
        else:
            keys = _category_keys(series, bq_type)
            nulls = sum(k is None for k in keys)
            rows.append({"input": column, "min": None, "max": None, "mean": None, "median": None,
                         "stddev": None, "category_count": len({k for k in keys if k is not None}),
                         "null_count": int(nulls), "dimension": None})
    return rows


def _find_column(names: Sequence[str], wanted: str) -> str:
    # BigQuery (and DuckDB) column names are case-insensitive
    for name in names:
        if name.lower() == wanted.lower():
            return name
    raise InputError(f"kmeans_init_col {wanted!r} is not a column of the training query",
                     column=wanted)


def _custom_start(table: pa.Table, column: str, X: np.ndarray) -> np.ndarray:
    import pyarrow as pa

    values = table.column(column)
    if not pa.types.is_boolean(values.type):
        raise InputError(f"kmeans_init_col must be a BOOL column, it is {values.type}", column=column)
    marked = np.asarray(values.fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)
    count = int(marked.sum())
    if count < 2:
        raise InputError(f"kmeans_init_col marks {count} rows; it must mark num_clusters (>= 2)",
                         column=column)
    return X[marked]


def _warm_centers(previous: KMeansModel | None, init_centers: np.ndarray | None) -> np.ndarray:
    if init_centers is not None:
        return np.asarray(init_centers, dtype=np.float64)
    if previous is None:
        raise SpecError("warm_start needs an existing model to continue from")
    return previous.estimator.cluster_centers_


@public
def train(table: pa.Table, options: Mapping[str, Any], *, init_centers: np.ndarray | None = None,
          warm_start_from: KMeansModel | None = None) -> KMeansModel:
    """Train BigQuery ML's k-means on the rows of the training query.

    Parameters
    ----------
    table : the rows of CREATE MODEL's query: every column is a feature except kmeans_init_col
    options : the OPTIONS, as for :func:`kmeans_options`
    init_centers : with warm_start, the starting centres in this training's prepared space
    warm_start_from : with warm_start, the model being retrained: its optimal centres start
        this training (unless init_centers is given) and its ML.TRAINING_INFO rows are kept,
        this training adding training_run + 1

    Returns
    -------
    KMeansModel

    Examples
    --------
    >>> import pyarrow as pa
    >>> rows = pa.table({"spend": [1.0, 1.2, 0.9, 9.0, 9.5, 8.7], "plan": list("aaabbb")})
    >>> model = train(rows, {"model_type": "kmeans", "num_clusters": 2})
    >>> model.estimator.n_clusters, sorted(model.estimator.cluster_size_.tolist())
    (2, [3, 3])
    """
    opts = kmeans_options(options, n_rows=table.num_rows)
    previous = warm_start_from
    init_col = None
    if opts.kmeans_init_col is not None:
        init_col = _find_column(table.column_names, opts.kmeans_init_col)
    features = [name for name in table.column_names if name != init_col]
    if len(set(n.lower() for n in features)) != len(features):
        raise InputError("the training query has two columns of the same name (names are "
                         "case-insensitive)")
    feature_types = {name: bigquery_type(table.schema.field(name).type, name) for name in features}
    frame = table.select(features).to_pandas()
    preprocessor = BQPreprocessor(standardize=opts.standardize_features, types=feature_types)
    X = preprocessor.fit_transform(frame)
    stats = _feature_stats(frame, feature_types)

    distance = opts.distance_type.lower()
    init: str | np.ndarray = {"RANDOM": "random", "KMEANS++": "k-means++"}.get(
        opts.kmeans_init_method, "random")
    candidates = opts.candidates
    if opts.kmeans_init_method == "CUSTOM":
        assert init_col is not None
        init = _custom_start(table, init_col, X)
        if opts.num_clusters is not None and "num_clusters" in {str(k).lower() for k in options} \
                and opts.num_clusters != len(init):
            raise SpecError(f"num_clusters={opts.num_clusters} but kmeans_init_col marks "
                            f"{len(init)} rows")
        candidates = (len(init),)
    if opts.warm_start:
        init = _warm_centers(previous, init_centers)
        if "num_clusters" not in {str(k).lower() for k in options}:
            candidates = (len(init),)
        if init.shape != (candidates[0], X.shape[1]):
            raise SpecError(f"warm_start: the previous centres have shape {init.shape}; this "
                            f"training needs ({candidates[0]}, {X.shape[1]}) (same num_clusters, "
                            f"same feature columns and categories)")

    trials: list[KMeansTrial] = []
    for trial_id, k in enumerate(candidates, start=1):
        if k > X.shape[0]:
            trials.append(KMeansTrial(trial_id, k, None, status="INFEASIBLE",
                                      error_message=f"num_clusters={k} is more than the "
                                                    f"{X.shape[0]} training rows"))
            continue
        estimator = BQKMeans(n_clusters=k, init=init, distance=distance,
                             max_iter=opts.max_iterations, early_stop=opts.early_stop,
                             min_rel_progress=opts.min_rel_progress, random_state=opts.seed)
        try:
            estimator.fit(X)
        except InputError as exc:
            if not opts.hparam_tuning:
                raise
            trials.append(KMeansTrial(trial_id, k, None, status="FAILED", error_message=exc.message))
            continue
        davies_bouldin, msd = clustering_metrics(estimator, X)
        trials.append(KMeansTrial(trial_id, k, estimator, davies_bouldin, msd))
    trained = [t for t in trials if t.estimator is not None]
    if not trained:
        raise InputError("no trial trained: " + "; ".join(
            f"trial {t.trial_id}: {t.error_message}" for t in trials))
    optimal = min(trained, key=lambda t: (math.inf if t.davies_bouldin_index is None
                                          else t.davies_bouldin_index, t.trial_id))

    training_info: list[dict[str, Any]] = []
    run = 0
    if opts.warm_start and previous is not None:
        training_info = [dict(row) for row in previous.training_info
                         if row.get("trial_id") in (None, previous.optimal_trial)]
        for row in training_info:
            row["trial_id"] = None
        run = 1 + max((row["training_run"] for row in training_info), default=-1)
    for trial in trained:
        assert trial.estimator is not None
        for record in trial.estimator.training_info_:
            training_info.append({"trial_id": trial.trial_id if opts.hparam_tuning else None,
                                  "training_run": run, **record})
    return KMeansModel(options=opts, feature_types=feature_types, preprocessor=preprocessor,
                       trials=trials, optimal_trial=optimal.trial_id, feature_stats=stats,
                       training_info=training_info)


# ------------------------------------------------------------------------ saving, loading

def _pipeline_name(trial_id: int) -> str:
    return f"trial_{trial_id}"


def to_state(model: KMeansModel) -> tuple[dict[str, Pipeline], dict[str, Any]]:
    """A model as skops-savable Pipelines (one per trained trial, named ``trial_<id>``; each is
    ``Pipeline([("prepare", BQPreprocessor), ("cluster", BQKMeans)])``) and a JSON-able dict of
    everything else.

    Examples
    --------
    >>> import json, pyarrow as pa
    >>> rows = pa.table({"x": [0.0, 0.1, 5.0, 5.1], "y": [1.0, 1.1, 7.0, 7.2]})
    >>> model = train(rows, {"model_type": "kmeans", "num_clusters": 2})
    >>> pipelines, state = to_state(model)
    >>> sorted(pipelines), state["optimal_trial"]
    (['trial_1'], 1)
    >>> again = from_state(pipelines, json.loads(json.dumps(state)))
    >>> bool((again.pipeline().predict(rows.to_pandas()) == model.pipeline().predict(rows.to_pandas())).all())
    True
    """
    pipelines = {_pipeline_name(t.trial_id): model.pipeline(t.trial_id)
                 for t in model.trials if t.estimator is not None}
    state = {
        "format": _STATE_FORMAT,
        "options": model.options.to_dict(),
        "feature_types": dict(model.feature_types),
        "optimal_trial": model.optimal_trial,
        "trials": [{"trial_id": t.trial_id, "num_clusters": t.num_clusters, "status": t.status,
                    "error_message": t.error_message,
                    "davies_bouldin_index": t.davies_bouldin_index,
                    "mean_squared_distance": t.mean_squared_distance,
                    "pipeline": _pipeline_name(t.trial_id) if t.estimator is not None else None}
                   for t in model.trials],
        "feature_stats": [dict(row) for row in model.feature_stats],
        "training_info": [dict(row) for row in model.training_info],
    }
    return pipelines, state


def from_state(pipelines: Mapping[str, Pipeline], state: Mapping[str, Any]) -> KMeansModel:
    """The model :func:`to_state` described (the pipelines as loaded by skops)."""
    if state.get("format") != _STATE_FORMAT:
        raise ModelError(f"not a segmint k-means model state (format {state.get('format')!r}, "
                         f"expected {_STATE_FORMAT!r})")
    trials = []
    preprocessor = None
    for row in state["trials"]:
        estimator = None
        if row["pipeline"] is not None:
            if row["pipeline"] not in pipelines:
                raise ModelError(f"the model's pipeline {row['pipeline']} is missing")
            pipe = pipelines[row["pipeline"]]
            estimator = pipe.named_steps["cluster"]
            preprocessor = preprocessor or pipe.named_steps["prepare"]
        trials.append(KMeansTrial(row["trial_id"], row["num_clusters"], estimator,
                                  row["davies_bouldin_index"], row["mean_squared_distance"],
                                  row["status"], row["error_message"]))
    if preprocessor is None:
        raise ModelError("the model state names no pipeline")
    return KMeansModel(options=KMeansOptions.from_dict(state["options"]),
                       feature_types=dict(state["feature_types"]), preprocessor=preprocessor,
                       trials=trials, optimal_trial=int(state["optimal_trial"]),
                       feature_stats=[dict(r) for r in state["feature_stats"]],
                       training_info=[dict(r) for r in state["training_info"]])
