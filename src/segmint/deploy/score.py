"""Scoring many customers with a published model, in bounded memory.

:func:`score_file` reads a customer table in chunks (DuckDB streams Parquet and CSV files
without loading them whole), scores each chunk through the model's recipe and preparation
(:class:`segmint.runs._score.Scorer`, the same path as ``PublishedModel.score``) and appends
it to the output, which appears whole at the end or not at all. Raw transactions go through
the recipe as a whole first (an aggregation needs every line of a customer), then the
customer rows are scored in chunks.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from segmint.errors import InputError, SpecError

__all__ = ["score_file", "ScoreResult", "CHUNK_ROWS"]

log = logging.getLogger(__name__)

#: customers scored at a time: a few hundred MB at most for tables of tens of features
CHUNK_ROWS = 200_000

_STREAMED = (".parquet", ".csv", ".tsv", ".txt", ".csv.gz", ".tsv.gz", ".txt.gz")


@dataclasses.dataclass
class ScoreResult:
    """What :func:`score_file` wrote: where, how many customers, per segment, how long."""

    output: str
    customers: int
    sizes: dict[int, int]
    seconds: float

    @property
    def customers_per_second(self) -> float:
        return self.customers / self.seconds if self.seconds > 0 else float("nan")


def score_file(model: Any, source: str | os.PathLike[str] | pd.DataFrame, output: str | os.PathLike[str],
               *, chunk_rows: int = CHUNK_ROWS,
               progress: Callable[[int, int, str], None] | None = None) -> ScoreResult:
    """Score every customer in ``source`` with a published model and write the scores.

    Parameters
    ----------
    model : a :class:`segmint.deploy.models.PublishedModel`
    source : a customer table or raw input of the model's kind: a file (Parquet and CSV are
        streamed in chunks) or a DataFrame
    output : a ``.parquet`` or ``.csv`` file; written under a temporary name and moved into
        place when every chunk is scored, so a failure leaves an existing file as it was.
        In CSV, ``nearest_centroids_distance`` is JSON text.
    chunk_rows : customers scored at a time
    progress : optional ``progress(done, total, what)``; total is 0 when unknown

    Returns
    -------
    ScoreResult
    """
    from segmint.io._writers import _atomic_file

    if not isinstance(chunk_rows, int) or chunk_rows < 1:
        raise SpecError(f"chunk_rows must be a positive integer; got {chunk_rows!r}")
    out = Path(output)
    kind = _output_kind(out)
    t0 = time.perf_counter()
    sizes: dict[int, int] = {}
    done = 0
    ids = _Ids(source)
    with _atomic_file(out) as tmp:
        writer = _Writer(tmp, kind)
        try:
            for rows, total in _raw_chunks(model.scorer, source, chunk_rows):
                ids.add(rows.index)
                scores = model.scorer.score_rows(rows)
                writer.write(scores.arrow())
                done += len(rows)
                for s, n in zip(*np.unique(scores.segment, return_counts=True), strict=True):
                    sizes[int(s)] = sizes.get(int(s), 0) + int(n)
                if progress is not None:
                    progress(done, total, f"{done:,} customers scored")
            if done == 0:  # an empty table still has the columns
                from segmint.runs._score import Scores

                empty = np.empty(0, dtype=object)
                writer.write(Scores(empty, np.empty(0, np.int64), empty, np.empty(0),
                                    np.empty(0, np.int64), np.empty((0, 0))).arrow())
        finally:
            writer.close()
        ids.check(lambda rows: _ids_at(tmp, kind, rows))  # before the file is moved into place
    seconds = time.perf_counter() - t0
    log.info("scored %d customers with %s v%d in %.2f s -> %s", done, model.name, model.version,
             seconds, out)
    return ScoreResult(output=str(out), customers=done, sizes=dict(sorted(sizes.items())),
                       seconds=seconds)


def _output_kind(out: Path) -> str:
    suffix = out.suffix.lower()
    if suffix not in (".parquet", ".csv"):
        raise SpecError(f"scores are written to a .parquet or .csv file; got {out.name!r} (for a "
                        f"database, score to a file or a frame and export it)")
    return suffix[1:]


class _Ids:
    """Every customer id scored so far, as a 64-bit hash each (8 bytes a customer: a set of
    the ids themselves grew many times larger and slower, benchmarks/score_stream.py), checked
    for a customer that appears twice once every chunk is in; a hash match is confirmed on
    the ids themselves."""

    def __init__(self, source: Any) -> None:
        self.name = str(source) if isinstance(source, (str, os.PathLike)) else "DataFrame"
        self.hashes: list[np.ndarray] = []

    def add(self, ids: pd.Index) -> None:
        values = ids.astype(str).to_numpy(dtype=object)
        self.hashes.append(pd.util.hash_array(values, categorize=False))

    def check(self, read_ids: Callable[[np.ndarray], list[str]]) -> None:
        """Raise for the first row (in input order) whose customer appeared before.
        ``read_ids(rows)`` gives the ids at those 0-based rows, to confirm a match."""
        if not self.hashes:
            return
        hashes = np.concatenate(self.hashes)
        order = np.argsort(hashes, kind="stable")  # equal hashes keep their input order
        ordered = hashes[order]
        same = np.flatnonzero(ordered[1:] == ordered[:-1])
        if not len(same):
            return
        # the pairs (earlier row, later row) of equal hashes, earliest later row first
        pairs = sorted(zip(order[same + 1].tolist(), order[same].tolist(), strict=True))
        for later, earlier in pairs[:1000]:
            first, second = read_ids(np.array([earlier, later]))
            if first == second:
                raise InputError(f"customer {second!r} appears twice (rows {earlier + 1} and "
                                 f"{later + 1}): a customer table holds one row per customer",
                                 file=self.name, column="customer", row=later + 1)


def _raw_chunks(scorer: Any, source: Any, chunk_rows: int) -> Iterator[tuple[pd.DataFrame, int]]:
    streamed = isinstance(source, (str, os.PathLike)) \
        and str(source).lower().endswith(_STREAMED) and Path(source).is_file() \
        and (scorer.recipe != "transactions" or _holds_features(source, scorer.features))
    if not streamed:
        rows = scorer.customer_rows(source)
        for start in range(0, len(rows), chunk_rows):
            yield rows.iloc[start:start + chunk_rows], len(rows)
        return
    import duckdb

    path = str(source)
    reader = "read_parquet" if path.lower().endswith(".parquet") else "read_csv"
    with duckdb.connect() as con:
        try:
            relation = con.sql(f"SELECT * FROM {reader}($path)", params={"path": path})
            total = 0  # unknown: counting a CSV file's rows would read it once more
            if reader == "read_parquet":  # the footer holds it
                counted = con.sql("SELECT sum(num_rows) FROM parquet_file_metadata($path)",
                                  params={"path": path}).fetchall()
                total = int(counted[0][0]) if counted and counted[0][0] is not None else 0
            batches: Any = relation.to_arrow_reader(chunk_rows)
        except duckdb.Error as exc:
            raise InputError(f"cannot read the customer table ({' '.join(str(exc).split())[:300]})",
                             file=path) from None
        offset = 0
        for batch in batches:
            frame = batch.to_pandas()
            try:
                rows = scorer.customer_rows(frame)
            except InputError as exc:  # rows of a chunk: say the file's row
                raise InputError(exc.message, file=path, column=exc.column,
                                 row=None if exc.row is None else exc.row + offset) from None
            offset += len(frame)
            yield rows, total


def _ids_at(path: Path, kind: str, rows: np.ndarray) -> list[str]:
    """The customer ids at these 0-based rows of the scores written so far."""
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    column = pq.read_table(path, columns=["customer"]) if kind == "parquet" else \
        pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(
            include_columns=["customer"], column_types={"customer": "string"}))
    return [str(v) for v in column.column("customer").take(rows).to_pylist()]


def _holds_features(path: Any, features: list[str]) -> bool:
    """Whether a file is a customer table with these features (not raw transactions)."""
    import duckdb

    reader = "read_parquet" if str(path).lower().endswith(".parquet") else "read_csv"
    try:
        with duckdb.connect() as con:
            con.execute(f"SELECT * FROM {reader}(?) LIMIT 0", [str(path)])
            columns = [d[0] for d in con.description or []]
    except duckdb.Error:
        return False  # the recipe's reader says what is wrong with it
    return set(features) <= set(columns)


class _Writer:
    """Appends Arrow tables to one Parquet or CSV file."""

    def __init__(self, path: Path, kind: str) -> None:
        self.path, self.kind = path, kind
        self._writer: Any = None

    def write(self, table: Any) -> None:
        import pyarrow as pa
        import pyarrow.csv as pacsv
        import pyarrow.parquet as pq

        if self.kind == "csv":
            nearest = table.column("nearest_centroids_distance").to_pylist()
            text = pa.array([json.dumps(v) for v in nearest], pa.string())
            table = table.set_column(table.schema.get_field_index("nearest_centroids_distance"),
                                     "nearest_centroids_distance", text)
        if self._writer is None:
            self._writer = pq.ParquetWriter(self.path, table.schema) if self.kind == "parquet" \
                else pacsv.CSVWriter(self.path, table.schema)
        self._writer.write_table(table)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        elif not self.path.exists():
            self.path.write_bytes(b"")
