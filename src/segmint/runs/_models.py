"""Saving and loading fitted models (``model.skops``) without running code from the file.

A skops file is a zip holding ``schema.json``: a tree of nodes, each naming a loader (how
skops rebuilds it) and a type (``module.name``, imported when the node is built). skops trusts
a broad default set (every scikit-learn estimator, every NumPy ufunc) and whatever the caller
lists; a file can name any importable callable, and a chain of NumPy functions that all pass
a ``numpy.`` prefix test runs arbitrary code. So segmint reads the schema itself first and
refuses the file unless every node is one of :data:`ALLOWED_NODES`: the exact loader and type
pairs that the models segmint writes are made of (found by saving every model of a sweep over
every algorithm and scaling, on numeric and mixed tables, and the run-format-1 fixture). Only
then does skops load it, trusting no type beyond that list.

The checksum :func:`save_model` returns is recorded in the solution's ``metrics.json``;
:func:`load_model` refuses a file whose bytes changed since. It guards against damage and
casual edits, not against someone who can rewrite ``metrics.json`` as well; the allow-list is
what keeps a crafted file from running code.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from segmint.errors import ModelError
from segmint.io._writers import _atomic_file

__all__ = ["ALLOWED_NODES", "SKOPS_PROTOCOLS", "save_model", "load_model"]

#: skops format protocols whose node kinds were reviewed (skops 0.16 writes 2). A file of
#: another protocol is refused: a new skops protocol needs a review of its loaders first.
SKOPS_PROTOCOLS = frozenset({2})

_SCALING = "segmint.prepare.scaling"

#: skops loader -> the exact types it may build. Nothing else loads: no module prefixes, no
#: NumPy functions or ufuncs, no skops loader that calls what it names (ConstructorFromReduce,
#: Method, Partial, OperatorFunc, ...). Birch is absent: skops 0.16 cannot save it at all.
ALLOWED_NODES: dict[str, frozenset[str]] = {
    "ObjectNode": frozenset({
        "sklearn.pipeline.Pipeline",
        "sklearn.compose._column_transformer.ColumnTransformer",
        "sklearn.impute._base.SimpleImputer",
        "sklearn.impute._base.MissingIndicator",
        "sklearn.preprocessing._encoders.OneHotEncoder",
        "sklearn.preprocessing._data.StandardScaler",
        "sklearn.preprocessing._data.MinMaxScaler",
        "sklearn.preprocessing._data.RobustScaler",
        "sklearn.preprocessing._function_transformer.FunctionTransformer",
        "sklearn.cluster._kmeans.KMeans",
        "sklearn.cluster._kmeans.MiniBatchKMeans",
        "sklearn.cluster._dbscan.DBSCAN",
        "sklearn.cluster._hdbscan.hdbscan.HDBSCAN",
        "sklearn.cluster._agglomerative.AgglomerativeClustering",
        "sklearn.mixture._gaussian_mixture.GaussianMixture",
        # the outlier detectors a run saves for scoring (prepare.outliers)
        "sklearn.ensemble._iforest.IsolationForest",
        "sklearn.tree._classes.ExtraTreeRegressor",
        "pyod.models.ecod.ECOD",
        # the text representation: plain values only (columns, template, a model folder's
        # path); its model is read from that folder as JSON and safetensors, never run as code
        "segmint.prepare.embed.TextEmbedding",
        # BigQuery ML's automatic preprocessing of a model made with CREATE MODEL (segmint.sql):
        # means, standard deviations and category lists
        "segmint.sql.kmeans.BQPreprocessor",
    }),
    "TreeNode": frozenset({"sklearn.tree._tree.Tree"}),  # an isolation tree's arrays
    # the only functions inside a model: the "log" scaling's FunctionTransformer
    "FunctionNode": frozenset({f"{_SCALING}.signed_log1p", f"{_SCALING}.signed_expm1"}),
    "NdArrayNode": frozenset({"numpy.ndarray", "numpy.float64"}),  # read with allow_pickle=False
    "DTypeNode": frozenset({"numpy.dtype"}),
    "TypeNode": frozenset({"builtins.str", "numpy.float64"}),  # dict key types, encoder dtype
    "DictNode": frozenset({"builtins.dict"}),
    "ListNode": frozenset({"builtins.list"}),
    "TupleNode": frozenset({"builtins.tuple"}),
    "SliceNode": frozenset({"builtins.slice"}),
    "JsonNode": frozenset({"builtins.str"}),
}

def _allowed_nodes() -> dict[str, frozenset[str]]:
    """:data:`ALLOWED_NODES`, with the estimator class of every algorithm registered in this
    process (segmint.cluster.register_algorithm): adding an algorithm is one registry entry,
    and only code the user runs can register one."""
    from segmint.cluster.registry import ALGORITHMS

    registered = {name for algo in ALGORITHMS.values() if algo.savable
                  for name in algo.model_types()}
    return {**ALLOWED_NODES, "ObjectNode": ALLOWED_NODES["ObjectNode"] | registered}


def _allowed_types() -> frozenset[str]:
    return frozenset().union(*_allowed_nodes().values())
_ROOT = ("ObjectNode", "sklearn.pipeline.Pipeline")
_SCHEMA = "schema.json"
# a real model unzips to a few MB; refuse before inflating a crafted archive
_MAX_UNZIPPED_BYTES = 2 * 1024**3


def save_model(model: Any, path: str | os.PathLike[str], *, atomic: bool = True) -> str:
    """Write ``model`` to ``path`` with skops, atomically; return the file's sha256 (hex).

    The bytes are checked as :func:`load_model` checks them before they are written, so a run
    never holds a model segmint refuses to load.

    Parameters
    ----------
    model : a fitted scikit-learn Pipeline made of the types in :data:`ALLOWED_NODES`
    path : the file to write (``solutions/<name>/model.skops``); replaced if present
    atomic : False writes in place, without a temporary file and fsync: for a folder that is
        made whole as a unit (a run folder, :func:`segmint.io.atomic_dir`)

    Returns
    -------
    str
        The sha256 of the bytes written, for ``metrics.json``'s ``model_sha256``.

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> from sklearn.cluster import KMeans
    >>> from sklearn.pipeline import Pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> X = np.array([[0.0, 0.0], [0.0, 1.0], [10.0, 10.0], [10.0, 11.0]])
    >>> pipe = Pipeline([("scale", StandardScaler()),
    ...                  ("cluster", KMeans(n_clusters=2, n_init=1, random_state=0))]).fit(X)
    >>> path = f"{tempfile.mkdtemp()}/model.skops"
    >>> digest = save_model(pipe, path)
    >>> loaded = load_model(path, sha256=digest)
    >>> bool((loaded.predict(X) == pipe.predict(X)).all())
    True
    """
    import skops.io as sio
    from skops.io.exceptions import UnsupportedTypeException

    where = str(path)
    try:
        data = sio.dumps(model)
    except UnsupportedTypeException as exc:  # Birch, for one
        raise ModelError(f"skops cannot save this model: {_one_line(exc)}", file=where) from None
    _check(data, where)
    if atomic:
        with _atomic_file(path) as tmp:
            tmp.write_bytes(data)
    else:
        Path(path).write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def load_model(path: str | os.PathLike[str], *, sha256: str | None = None) -> Any:
    """The model saved at ``path``, or a :class:`~segmint.errors.ModelError` saying why not.

    The file is read once; its checksum (when ``sha256`` is given) and its types are checked
    on those bytes before skops builds anything from them.

    Parameters
    ----------
    path : a ``model.skops`` file
    sha256 : the checksum recorded when the model was saved; None (run-format 1 and runs
        written before checksums) skips the comparison, never the type check

    Returns
    -------
    sklearn.pipeline.Pipeline
    """
    import skops.io as sio

    where = str(path)
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise ModelError("model file not found", file=where) from None
    except IsADirectoryError:
        raise ModelError("is a folder, not a model file", file=where) from None
    except OSError as exc:
        raise ModelError(f"model file cannot be read ({exc.strerror or exc})", file=where) from None
    if sha256 is not None:
        actual = hashlib.sha256(data).hexdigest()
        if actual != str(sha256).strip().lower():
            raise ModelError(f"model file changed since the run saved it (sha256 {actual[:16]}..., "
                             f"recorded {str(sha256)[:16]}...)", file=where)
    trusted = _check(data, where)
    try:
        return sio.loads(data, trusted=trusted)
    except Exception as exc:  # skops, numpy and sklearn raise many kinds for a damaged file
        raise ModelError(f"skops could not load the model: {_one_line(exc)}", file=where) from None


def _check(data: bytes, where: str) -> list[str]:
    """Refuse ``data`` unless it is a skops zip whose every node is allowed; return the types
    skops itself does not trust by default (all of them on the allow-list) for its load."""
    import skops.io as sio

    schema = _read_schema(data, where)
    nodes = _allowed_nodes()  # builds each registered estimator once: do it once per file
    types = frozenset().union(*nodes.values())
    refused = sorted(_refused_nodes(schema, where, nodes, types))
    if refused:
        raise ModelError(f"model holds types segmint does not load: {_few(refused)}", file=where)
    root = (schema.get("__loader__"), f"{schema.get('__module__')}.{schema.get('__class__')}")
    if root != _ROOT:
        raise ModelError(f"is not a segmint model (a {root[1]}, not a scikit-learn Pipeline)",
                         file=where)
    # a second opinion: skops' own audit of the same bytes must name nothing beyond the list
    try:
        untrusted = sio.get_untrusted_types(data=data)
    except Exception as exc:
        raise ModelError(f"skops could not read the model: {_one_line(exc)}", file=where) from None
    beyond = sorted(set(untrusted) - types)
    if beyond:
        raise ModelError(f"model holds types segmint does not load: {_few(beyond)}", file=where)
    return list(untrusted)


def _read_schema(data: bytes, where: str) -> dict[str, Any]:
    if not data:
        raise ModelError("model file is empty", file=where)
    if not zipfile.is_zipfile(io.BytesIO(data)):
        what = "a pickle?" if data[:1] == b"\x80" or data.rstrip().endswith(b".") else \
            "not a zip archive: truncated, or another format"
        raise ModelError(f"is not a skops model file ({what})", file=where)
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            if _SCHEMA not in archive.namelist():
                raise ModelError(f"is not a skops model file (the zip holds no {_SCHEMA})",
                                 file=where)
            if sum(info.file_size for info in archive.infolist()) > _MAX_UNZIPPED_BYTES:
                raise ModelError("is not a model segmint wrote (it unzips to over 2 GB)",
                                 file=where)
            damaged = archive.testzip()  # every member's CRC, so a truncated array is caught here
            if damaged is not None:
                raise ModelError(f"model file is damaged ({damaged} fails its checksum)", file=where)
            schema = json.loads(archive.read(_SCHEMA))
    except ModelError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, EOFError, OSError,
            ValueError, RecursionError) as exc:
        raise ModelError(f"model file is damaged ({_one_line(exc)})", file=where) from None
    if not isinstance(schema, dict) or "__loader__" not in schema:
        raise ModelError(f"is not a skops model file ({_SCHEMA} holds no object tree)", file=where)
    protocol = schema.get("protocol")
    if protocol not in SKOPS_PROTOCOLS:
        raise ModelError(f"was written in skops protocol {protocol!r}; segmint loads protocols "
                         f"{sorted(SKOPS_PROTOCOLS)}", file=where)
    return schema


def _refused_nodes(schema: dict[str, Any], where: str, nodes: dict[str, frozenset[str]],
                   types: frozenset[str]) -> set[str]:
    """Every node of the schema whose (loader, type) is not allowed, by the name skops would
    import. Every dict of the JSON is visited, not only where a loader would look."""
    refused = set()
    for node in _dicts(schema):
        if "__loader__" not in node:
            continue
        loader, module, name = node.get("__loader__"), node.get("__module__"), node.get("__class__")
        if not (isinstance(loader, str) and isinstance(module, str) and isinstance(name, str)):
            raise ModelError(f"model file is damaged (a node of {_SCHEMA} lacks its loader or type)",
                             file=where)
        kind = f"{module}.{name}"
        if loader == "CachedNode":  # a second reference to a node that is itself checked
            allowed = kind in types
        else:
            allowed = kind in nodes.get(loader, ())
        if allowed:
            continue
        if loader == "MethodNode":  # skops names a bound method type.method
            content = node.get("content")
            kind = f"{kind}.{content.get('func') if isinstance(content, dict) else '?'}"
        refused.add(kind if kind not in types else f"{kind} (as {loader})")
    return refused


def _dicts(tree: Any) -> Iterator[dict[str, Any]]:
    # iterative: a crafted schema may nest deeper than Python's recursion limit
    stack = [tree]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            yield item
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def _few(names: list[str], n: int = 8) -> str:
    return str(names[:n]) + (f" and {len(names) - n} more" if len(names) > n else "")


def _one_line(exc: BaseException) -> str:
    return " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
