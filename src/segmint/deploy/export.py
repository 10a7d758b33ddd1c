"""Scored customers to where marketing tools read them: PostgreSQL, SQLite, DuckDB, Parquet, CSV.

:func:`export` writes a scored frame (``customer``, ``segment``, ``name``, ``distance``,
``nearest_centroids_distance`` and any other columns) to a database table or a file, stamped
with ``model_version`` and ``scored_at``, in one of two modes:

``replace``
    The new table appears whole or not at all. In a database the rows go into a staging
    table with a random name and, in the same transaction, the old table is dropped and the
    staging table renamed in its place: a reader sees the old rows or the new ones, never a
    part, and never a missing table (PostgreSQL re-resolves a table name after waiting on its
    lock). A swap that finds the table in use by a long query waits at most a second at a time
    for it, so as not to hold up the readers queued behind, and gives up after two minutes.
    Because the staging table is created inside that transaction, a failure at any
    point (a killed connection included) rolls it back with everything else: the old table
    is untouched and no staging table is left behind. A file is written to a temporary
    sibling and moved into place.
``upsert``
    Rows whose key is in the table are updated, new keys are inserted, the other rows are
    left as they are; in one transaction (``INSERT ... ON CONFLICT (key) DO UPDATE``). The
    table is created with a PRIMARY KEY on the key when absent; an existing table must have
    a primary key or unique constraint on it.

How the rows travel: the frame becomes one Arrow table (NaN -> NULL, lists of structs kept
as such), and DuckDB turns that into what each target takes: a CSV stream for PostgreSQL's
``COPY`` (the list column as JSON made by DuckDB's ``to_json``, not ``json.dumps`` row by
row), rows for SQLite, the table itself for DuckDB. CSV through COPY rather than psycopg's
binary ``write_row``, which needs every row as a Python tuple first and was several times
slower when measured. The CSV is made in parts of 100,000 rows on a thread, one part ahead
of COPY; the server's parsing of jsonb is most of what is left (the measurements are in the
commits that chose these, 3e4f64b and a65ef08; ``benchmarks/export_speed.py`` times the whole).
"""
from __future__ import annotations

import contextlib
import logging
import os
import re
import secrets
import sqlite3
import tempfile
import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from segmint._secrets import expand_env, redact
from segmint.errors import InputError, SegmintError, SpecError, public

if TYPE_CHECKING:
    import duckdb
    import psycopg
    import pyarrow as pa

__all__ = ["export", "ExportResult", "MODES", "ENV_URL", "DEFAULT_TABLE", "APPLICATION_NAME"]

log = logging.getLogger(__name__)

#: The environment variable that holds the target when ``export`` is given none.
ENV_URL = "SEGMINT_EXPORT_URL"
MODES = ("replace", "upsert")
DEFAULT_TABLE = "customer_segments"
#: PostgreSQL's ``application_name`` of export connections (``pg_stat_activity`` shows it).
APPLICATION_NAME = "segmint-export"

NEAREST = "nearest_centroids_distance"
MODEL_VERSION = "model_version"
SCORED_AT = "scored_at"

# One logical type per column; each backend spells it below. "json" is a list/dict column:
# jsonb in PostgreSQL, JSON text in SQLite and CSV, a list of structs in DuckDB and Parquet.
_POSTGRES_TYPES = {"text": "text", "bigint": "bigint", "double": "double precision",
                   "boolean": "boolean", "timestamptz": "timestamp with time zone",
                   "timestamp": "timestamp without time zone", "json": "jsonb"}
_SQLITE_TYPES = {"text": "TEXT", "bigint": "INTEGER", "double": "REAL", "boolean": "INTEGER",
                 "timestamptz": "TEXT", "timestamp": "TEXT", "json": "TEXT"}

# PostgreSQL's limit on a name is 63 bytes; the same plain names are refused everywhere.
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
_URL_SCHEME = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*)://")
_FILE_SUFFIXES = {".parquet": "parquet", ".csv": "csv"}
_COPY_CHUNK = 1 << 20
_COPY_ROWS = 100_000  # rows per CSV part (see _csv_parts)
# A replace's wait for the old table's lock: per attempt, and in all (see _postgres_swap).
_SWAP_LOCK_TIMEOUT_MS = 1_000
_SWAP_PATIENCE_S = 120.0
# The CSV quote character between DuckDB and PostgreSQL's COPY (see _postgres_copy).
_COPY_QUOTE = "\x01"


@dataclass(frozen=True)
class ExportResult:
    """What :func:`export` wrote.

    Attributes
    ----------
    target : str
        The target as given, passwords masked (``${NAME}`` references kept as written).
    table : str or None
        The table written; None for a file.
    mode : str
        ``"replace"`` or ``"upsert"``.
    rows : int
        Rows written (the frame's rows).
    seconds : float
        Wall time of the export, validation included.
    inserted, updated : int or None
        For an upsert, how many rows were new keys and how many replaced existing ones;
        None for a replace.
    """

    target: str
    table: str | None
    mode: str
    rows: int
    seconds: float
    inserted: int | None = None
    updated: int | None = None


@public
def export(frame: pd.DataFrame, target: str | None = None, *, table: str | None = None,
           mode: str = "replace", key: str = "customer", model_version: str | None = None,
           scored_at: datetime | None = None) -> ExportResult:
    """Write scored customers to a database table or a file.

    Everything is checked before anything is connected to or written: the mode, the table
    name, the key column (present, no missing or repeated values) and the column types.

    Parameters
    ----------
    frame : pandas.DataFrame
        Scored customers (:meth:`segmint.runs.Solution.predict`'s columns, or any other).
        Columns of lists or dicts (``nearest_centroids_distance``) are written as JSON
        (PostgreSQL ``jsonb``; text in SQLite and CSV) or as lists of structs (DuckDB,
        Parquet); NaN and missing values become NULL.
    target : str or None, default None
        A SQLAlchemy-style URL (``postgresql://``, ``postgresql+psycopg://``,
        ``sqlite:///path.db``, ``duckdb:///path.duckdb``) or a path ending ``.parquet`` or
        ``.csv``. ``${NAME}`` references in a URL are filled from the environment when
        connecting. None reads the target from the environment variable
        ``SEGMINT_EXPORT_URL``. PostgreSQL is reached through psycopg 3 whatever driver the
        URL names, with ``application_name=segmint-export`` unless the URL sets one.
    table : str or None, default None
        The table to write (a plain name: letters, digits, underscores); None writes
        ``customer_segments``. Not used for files.
    mode : {"replace", "upsert"}, default "replace"
        ``replace``: the table (file) is replaced whole, atomically. ``upsert``: rows are
        updated or inserted by ``key``; rows not in the frame are kept.
    key : str, default "customer"
        The column identifying a customer: the table's primary key, the upsert's match.
    model_version : str or None, default None
        Written to a ``model_version`` column when given.
    scored_at : datetime or None, default None
        Written to a ``scored_at`` column (timestamp with time zone, UTC) on every row; None
        is now. A naive datetime is taken as UTC.

    Returns
    -------
    ExportResult
        The redacted target, table, mode, rows, seconds, and an upsert's inserted/updated.

    Raises
    ------
    SpecError
        A mode, table name or target that cannot be used; no target at all.
    InputError
        The key column is absent or has missing or repeated values (the error names the
        column and the first bad row, counted from 1); a column's type cannot be written.
    SegmintError
        The database cannot be reached or refuses the write, or a table to replace stayed in
        use by other sessions for two minutes (one line, password masked); nothing was changed.

    Examples
    --------
    >>> import tempfile, sqlite3
    >>> scored = pd.DataFrame({
    ...     "customer": ["a", "b"], "segment": [0, 1], "name": ["loyal", "new"],
    ...     "distance": [0.5, float("nan")],
    ...     "nearest_centroids_distance": [[{"centroid_id": 0, "distance": 0.5}], []]})
    >>> db = f"{tempfile.mkdtemp()}/crm.db"
    >>> result = export(scored, f"sqlite:///{db}", table="segments", model_version="v1")
    >>> result.rows, result.table, result.mode
    (2, 'segments', 'replace')
    >>> sqlite3.connect(db).execute(
    ...     "SELECT customer, distance, nearest_centroids_distance, model_version "
    ...     "FROM segments ORDER BY customer").fetchall()
    [('a', 0.5, '[{"centroid_id":0,"distance":0.5}]', 'v1'), ('b', None, '[]', 'v1')]
    >>> again = scored.assign(segment=[1, 1], customer=["b", "c"])
    >>> result = export(again, f"sqlite:///{db}", table="segments", mode="upsert")
    >>> result.inserted, result.updated
    (1, 1)
    >>> export(scored, "postgresql://analyst:${PGPASSWORD}@db/crm",
    ...        table="segments")  # doctest: +SKIP
    ExportResult(target='postgresql://analyst:${PGPASSWORD}@db/crm', table='segments', ...)
    """
    started = time.perf_counter()
    given = _resolve_target(target)
    shown = redact(given)
    kind = _target_kind(given, shown)
    if mode not in MODES:
        raise SpecError(f"export mode {mode!r} is not one of {', '.join(MODES)}")
    name = None if kind in _FILE_SUFFIXES.values() else _check_table(table)
    _check_columns(frame)
    _check_key(frame, key)
    rows = _stamped(frame, model_version, scored_at)
    kinds = _column_kinds(rows)
    if name is None:
        inserted, updated = _write_file(rows, kinds, given=given, shown=shown, mode=mode, key=key,
                                        kind=kind)
    else:
        writer = _DATABASE_WRITERS[kind]
        inserted, updated = writer(rows, kinds, given=given, shown=shown, table=name, mode=mode, key=key)
    seconds = time.perf_counter() - started
    log.info("exported %d rows to %s%s (%s) in %.2f s", len(rows), shown,
             f" table {name}" if name else "", mode, seconds)
    return ExportResult(target=shown, table=name, mode=mode, rows=len(rows), seconds=seconds,
                        inserted=inserted, updated=updated)


# --------------------------------------------------------------------------- checks

def _resolve_target(target: str | None) -> str:
    if target is None:
        target = os.environ.get(ENV_URL)
        if not target:
            raise SpecError(f"no export target: give one, or set the environment variable {ENV_URL}")
    if not isinstance(target, (str, os.PathLike)):
        raise SpecError(f"the export target must be a URL or a file path, not {type(target).__name__}")
    return os.fspath(target)


def _target_kind(given: str, shown: str) -> str:
    """postgresql, sqlite, duckdb, parquet or csv, from the target's scheme or suffix."""
    scheme = _URL_SCHEME.match(given)
    if scheme is None:
        suffix = Path(given).suffix.lower()
        if suffix in _FILE_SUFFIXES:
            return _FILE_SUFFIXES[suffix]
        raise SpecError("is neither a database URL (postgresql://, sqlite:///, duckdb:///) nor a "
                        "file ending .parquet or .csv", file=shown)
    backend = scheme.group("scheme").split("+")[0].lower()
    if backend in ("postgresql", "postgres"):
        return "postgresql"
    if backend in ("sqlite", "duckdb"):
        return backend
    raise SpecError(f"exports go to PostgreSQL, SQLite, DuckDB, Parquet or CSV; {backend}:// is "
                    f"not supported", file=shown)


def _check_table(table: str | None) -> str:
    name = DEFAULT_TABLE if table is None else table
    if not isinstance(name, str) or not _IDENTIFIER.fullmatch(name):
        raise SpecError(f"table name {name!r} is not a plain name (a letter or underscore, then "
                        f"letters, digits or underscores; at most 63)")
    return name


def _check_columns(frame: pd.DataFrame) -> None:
    if not isinstance(frame, pd.DataFrame):
        raise InputError(f"export takes a pandas DataFrame, not {type(frame).__name__}")
    odd = [c for c in frame.columns if not isinstance(c, str) or not c]
    if odd:
        raise InputError(f"column names must be non-empty text; got {odd[0]!r}")
    repeated = frame.columns[frame.columns.duplicated()]
    if len(repeated):
        raise InputError("the column appears more than once", column=str(repeated[0]))


def _check_key(frame: pd.DataFrame, key: str) -> None:
    if key not in frame.columns:
        raise InputError(f"the key column is absent; the columns are {list(frame.columns)}", column=key)
    values = frame[key]
    missing = np.flatnonzero(values.isna().to_numpy())
    if len(missing):
        raise InputError("the key has a missing value", column=key, row=int(missing[0]) + 1)
    repeated = np.flatnonzero(values.duplicated().to_numpy())
    if len(repeated):
        at = int(repeated[0])
        first = int(np.flatnonzero((values == values.iloc[at]).to_numpy())[0])
        raise InputError(f"the key {values.iloc[at]!r} repeats row {first + 1}; keys must be unique",
                         column=key, row=at + 1)


def _stamped(frame: pd.DataFrame, model_version: str | None, scored_at: datetime | None) -> pd.DataFrame:
    """The frame with model_version (when given) and scored_at (UTC) columns, attrs dropped."""
    when = pd.Timestamp(datetime.now(UTC) if scored_at is None else scored_at)
    when = when.tz_localize("UTC") if when.tzinfo is None else when.tz_convert("UTC")
    extra: dict[str, Any] = {SCORED_AT: pd.Series(when, index=frame.index, dtype="datetime64[us, UTC]")}
    if model_version is not None:
        extra[MODEL_VERSION] = pd.Series(str(model_version), index=frame.index, dtype="string")
    out = frame.assign(**extra)
    out.attrs = {}  # a source's record (its URL among it) stays out of every output
    return out.reset_index(drop=True)


def _column_kinds(frame: pd.DataFrame) -> dict[str, str]:
    """Each column's logical type (the keys of _POSTGRES_TYPES), from its dtype and values."""
    api = pd.api.types
    kinds: dict[str, str] = {}
    for column in frame.columns:
        dtype = frame[column].dtype
        if api.is_bool_dtype(dtype):
            kinds[column] = "boolean"
        elif api.is_integer_dtype(dtype):
            kinds[column] = "bigint"
        elif api.is_float_dtype(dtype):
            kinds[column] = "double"
        elif isinstance(dtype, pd.DatetimeTZDtype):
            kinds[column] = "timestamptz"
        elif api.is_datetime64_dtype(dtype):
            kinds[column] = "timestamp"
        elif (api.is_string_dtype(dtype) or api.is_object_dtype(dtype)
              or isinstance(dtype, pd.CategoricalDtype)):
            present = frame[column].dropna()
            first = present.iloc[0] if len(present) else None
            nested = column == NEAREST or isinstance(first, (list, tuple, dict, np.ndarray))
            kinds[column] = "json" if nested and not isinstance(first, str) else "text"
        else:
            raise InputError(f"export cannot write a column of dtype {dtype}; convert it to numbers, "
                             f"text or timestamps first", column=column)
    return kinds


# --------------------------------------------------------------------------- rows as Arrow

def _nearest_type() -> pa.DataType:
    import pyarrow as pa

    # The one type of nearest_centroids_distance, so that a frame whose lists are all empty
    # (a rule-based solution) still writes list<struct>, not list<null>.
    return pa.list_(pa.struct([("centroid_id", pa.int64()), ("distance", pa.float64())]))


def _arrow(frame: pd.DataFrame, kinds: dict[str, str]) -> pa.Table:
    """The frame as an Arrow table of the kinds' types; NaN and None become null."""
    import pyarrow as pa

    types = {"text": pa.string(), "bigint": pa.int64(), "double": pa.float64(),
             "boolean": pa.bool_(), "timestamptz": pa.timestamp("us", tz="UTC"),
             "timestamp": pa.timestamp("us")}
    arrays = []
    for column, kind in kinds.items():
        values = frame[column]
        try:
            if kind == "json":
                typ = _nearest_type() if column == NEAREST else None
                arrays.append(pa.array(values.tolist(), type=typ, from_pandas=True))
            elif kind == "text":
                arrays.append(pa.array(values.astype("string"), type=pa.string(), from_pandas=True))
            else:
                arrays.append(pa.array(values, type=types[kind], from_pandas=True))
        except (pa.ArrowException, TypeError, ValueError, OverflowError) as exc:
            raise InputError(f"cannot be written as {kind}: {exc}", column=column) from None
    return pa.Table.from_arrays(arrays, names=list(kinds))


def _duckdb_rows(rows: pa.Table) -> tuple[duckdb.DuckDBPyConnection, str]:
    """An in-memory DuckDB connection (UTC) with the rows registered as a view; its name."""
    import duckdb

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    view = f"segmint_rows_{secrets.token_hex(4)}"
    con.register(view, rows)
    return con, view


def _quote(name: str) -> str:
    # SQL's quoted identifier (SQLite and DuckDB); PostgreSQL's are made by psycopg.sql.
    return '"' + name.replace('"', '""') + '"'


def _text_select(kinds: dict[str, str], view: str, *, timestamps_as_text: bool) -> str:
    """SELECT of the rows with json columns as JSON text (and timestamps as ISO text)."""
    parts = []
    for column, kind in kinds.items():
        q = _quote(column)
        if kind == "json":
            parts.append(f"to_json({q})::VARCHAR AS {q}")
        elif timestamps_as_text and kind == "timestamptz":
            parts.append(f"strftime({q}, '%Y-%m-%d %H:%M:%S.%f+00:00') AS {q}")
        elif timestamps_as_text and kind == "timestamp":
            parts.append(f"strftime({q}, '%Y-%m-%d %H:%M:%S.%f') AS {q}")
        else:
            parts.append(q)
    return f"SELECT {', '.join(parts)} FROM {_quote(view)}"


# --------------------------------------------------------------------------- PostgreSQL

def _csv_chunks(path: Path) -> Iterator[bytes]:
    """The CSV file in pieces for COPY (a seam: the tests interrupt an export between pieces)."""
    with open(path, "rb") as handle:
        while chunk := handle.read(_COPY_CHUNK):
            yield chunk


def _postgres_connect(given: str, shown: str) -> psycopg.Connection[Any]:
    import psycopg
    import sqlalchemy as sa

    try:
        url = sa.make_url(expand_env(given, what="the export target"))
    except KeyError as exc:
        raise SpecError(str(exc.args[0]), file=shown) from None
    except sa.exc.ArgumentError as exc:
        raise SpecError(f"is not a database URL ({exc})", file=shown) from None
    params: dict[str, Any] = {"host": url.host, "port": url.port, "user": url.username,
                              "password": url.password, "dbname": url.database}
    params = {k: v for k, v in params.items() if v is not None}
    params["application_name"] = APPLICATION_NAME
    for name, value in url.query.items():  # sslmode=..., application_name=... as libpq takes them
        params[name] = value[-1] if isinstance(value, tuple) else value
    try:
        return psycopg.connect(**params)
    except psycopg.Error as exc:
        raise SegmintError(f"cannot connect to PostgreSQL: {exc}", file=shown) from None


def _postgres_columns(kinds: dict[str, str]) -> Any:
    from psycopg import sql

    return sql.SQL(", ").join(sql.SQL("{} {}").format(sql.Identifier(c), sql.SQL(_POSTGRES_TYPES[k]))
                              for c, k in kinds.items())


def _postgres_copy(cursor: psycopg.Cursor[Any], staging: str, rows: pa.Table,
                   kinds: dict[str, str]) -> None:
    """COPY the rows into ``staging`` as CSV, which DuckDB writes: a quoted empty field is an
    empty string, an unquoted one NULL, json columns JSON text. The quote character is \\x01,
    not '"': JSON is full of '"', and doubling each slowed DuckDB's writer markedly (a \\x01
    in a value is doubled, as any quote, so no value is lost)."""
    from psycopg import sql

    statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv, QUOTE {}, ESCAPE {})").format(
        sql.Identifier(staging), sql.SQL(", ").join(map(sql.Identifier, kinds)),
        sql.Literal(_COPY_QUOTE), sql.Literal(_COPY_QUOTE))
    with tempfile.TemporaryDirectory(prefix="segmint-export-") as folder, \
            contextlib.closing(_csv_parts(rows, kinds, Path(folder))) as parts, \
            cursor.copy(statement) as copy:
        for path in parts:
            for chunk in _csv_chunks(path):
                copy.write(chunk)
            path.unlink()


def _csv_parts(rows: pa.Table, kinds: dict[str, str], folder: Path) -> Generator[Path, None, None]:
    """CSV files of consecutive slices of the rows, which DuckDB writes on a thread one part
    ahead of their reader: the server parses part k while part k + 1 is made."""
    import queue
    import threading

    made: queue.Queue[Path | BaseException | None] = queue.Queue(maxsize=1)
    stop = threading.Event()

    def hand_over(item: Path | BaseException | None) -> None:
        while not stop.is_set():  # a reader that has stopped takes nothing more
            try:
                made.put(item, timeout=0.05)
                return
            except queue.Full:
                continue

    def write() -> None:
        con, view = _duckdb_rows(rows.slice(0, 0))
        try:
            for number, start in enumerate(range(0, max(rows.num_rows, 1), _COPY_ROWS)):
                if stop.is_set():
                    return
                con.unregister(view)
                con.register(view, rows.slice(start, _COPY_ROWS))
                path = folder / f"part-{number}.csv"
                literal = str(path).replace("'", "''")
                con.execute(f"COPY ({_text_select(kinds, view, timestamps_as_text=False)}) TO "
                            f"'{literal}' (FORMAT csv, HEADER false, QUOTE '{_COPY_QUOTE}', "
                            f"ESCAPE '{_COPY_QUOTE}')")
                hand_over(path)
        except BaseException as exc:  # raised again in the reader's thread
            hand_over(exc)
        finally:
            con.close()
            hand_over(None)

    writer = threading.Thread(target=write, name="segmint-export-csv", daemon=True)
    writer.start()
    try:
        while (item := made.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        writer.join()


def _pkey_name(table: str) -> str:
    return f"{table[:58]}_pkey"


def _write_postgres(rows: pd.DataFrame, kinds: dict[str, str], *, given: str, shown: str,
                    table: str, mode: str, key: str) -> tuple[int | None, int | None]:
    import duckdb
    import psycopg
    from psycopg import sql

    arrow = _arrow(rows, kinds)
    conn = _postgres_connect(given, shown)
    staging = f"_segmint_stage_{secrets.token_hex(6)}"
    try:
        with conn, conn.transaction(), conn.cursor() as cur:
            if mode == "replace":
                cur.execute(sql.SQL("CREATE TABLE {} ({})").format(
                    sql.Identifier(staging), _postgres_columns(kinds)))
                _postgres_copy(cur, staging, arrow, kinds)
                cur.execute(sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} PRIMARY KEY ({})").format(
                    sql.Identifier(staging), sql.Identifier(_pkey_name(staging)), sql.Identifier(key)))
                _postgres_swap(cur, staging, table, shown)
                return None, None
            return _postgres_upsert(cur, arrow, kinds, staging=staging, table=table, key=key,
                                    shown=shown)
    except (psycopg.Error, duckdb.Error, OSError) as exc:
        raise SegmintError(f"export to table {table} failed, nothing was changed: "
                           f"{_first_line(exc)}", file=shown) from None
    finally:
        conn.close()


def _postgres_swap(cur: psycopg.Cursor[Any], staging: str, table: str, shown: str) -> None:
    """Put ``staging`` in the place of ``table`` (DROP + RENAME, committed by the caller).

    The DROP needs the old table's ACCESS EXCLUSIVE lock, and while it waits for a long
    reader to finish, every new reader of the table queues behind it. So each attempt waits
    at most _SWAP_LOCK_TIMEOUT_MS, then lets the readers through (back to a savepoint, the
    copied rows kept) and tries again, until _SWAP_PATIENCE_S have passed.
    """
    import psycopg
    from psycopg import sql

    gives_up = time.monotonic() + _SWAP_PATIENCE_S
    pause = 0.05
    cur.execute("SAVEPOINT segmint_swap")
    while True:
        try:
            cur.execute(sql.SQL("SET LOCAL lock_timeout = {}").format(
                sql.Literal(f"{_SWAP_LOCK_TIMEOUT_MS}ms")))
            cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(table)))
            break
        except psycopg.errors.LockNotAvailable:
            cur.execute("ROLLBACK TO SAVEPOINT segmint_swap")
            if time.monotonic() + pause > gives_up:
                raise SegmintError(f"table {table} stayed in use by other sessions for "
                                   f"{_SWAP_PATIENCE_S:g} s, so it could not be replaced; nothing "
                                   f"was changed", file=shown) from None
            log.info("table %s is in use; replacing it again in %.2f s", table, pause)
            time.sleep(pause)
            pause = min(2 * pause, 2.0)
    # From here to COMMIT the lock is held: two renames, no data moved.
    cur.execute(sql.SQL("ALTER TABLE {} RENAME TO {}").format(
        sql.Identifier(staging), sql.Identifier(table)))
    cur.execute(sql.SQL("ALTER TABLE {} RENAME CONSTRAINT {} TO {}").format(
        sql.Identifier(table), sql.Identifier(_pkey_name(staging)), sql.Identifier(_pkey_name(table))))


def _postgres_upsert(cur: psycopg.Cursor[Any], arrow: pa.Table, kinds: dict[str, str], *,
                     staging: str, table: str, key: str, shown: str) -> tuple[int, int]:
    from psycopg import sql

    target = sql.Identifier(table)
    columns = _postgres_table(cur, table, key)
    if columns is None:
        cur.execute(sql.SQL("CREATE TABLE IF NOT EXISTS {} ({}, PRIMARY KEY ({}))").format(
            target, _postgres_columns(kinds), sql.Identifier(key)))
    else:
        names, unique = columns
        _check_upsert_table(table, names, unique, kinds, key, shown)
    cur.execute(sql.SQL("CREATE TEMP TABLE {} ({}) ON COMMIT DROP").format(
        sql.Identifier(staging), _postgres_columns(kinds)))
    _postgres_copy(cur, staging, arrow, kinds)
    names_sql = sql.SQL(", ").join(map(sql.Identifier, kinds))
    others = [c for c in kinds if c != key]
    action = sql.SQL("DO UPDATE SET {}").format(sql.SQL(", ").join(
        sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(c)) for c in others)) if others \
        else sql.SQL("DO NOTHING")
    # xmax = 0 marks a row this statement inserted (an updated row carries the updating xid):
    # the counts come with the write, no second pass over the keys.
    cur.execute(sql.SQL(
        "WITH written AS (INSERT INTO {target} ({names}) SELECT {names} FROM {staging} "
        "ON CONFLICT ({key}) {action} RETURNING (xmax = 0) AS inserted) "
        "SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) FROM written"
    ).format(target=target, names=names_sql, staging=sql.Identifier(staging),
             key=sql.Identifier(key), action=action))
    counts = cur.fetchone()
    assert counts is not None
    return int(counts[0]), int(counts[1])


def _postgres_table(cur: psycopg.Cursor[Any], table: str, key: str) -> tuple[list[str], bool] | None:
    """The existing table's columns and whether ``key`` alone is unique in it; None if absent."""
    from psycopg import sql

    cur.execute("SELECT to_regclass(%s)::oid", [sql.Identifier(table).as_string(cur.connection)])
    found = cur.fetchone()
    if found is None or found[0] is None:
        return None
    oid = found[0]
    cur.execute("SELECT attname FROM pg_attribute WHERE attrelid = %s AND attnum > 0 "
                "AND NOT attisdropped ORDER BY attnum", [oid])
    names = [r[0] for r in cur.fetchall()]
    cur.execute("SELECT EXISTS (SELECT 1 FROM pg_index i JOIN pg_attribute a "
                "ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0] "
                "WHERE i.indrelid = %s AND i.indisunique AND i.indnkeyatts = 1 AND a.attname = %s "
                "AND i.indpred IS NULL AND i.indexprs IS NULL)", [oid, key])
    unique = cur.fetchone()
    return names, bool(unique and unique[0])


def _check_upsert_table(table: str, names: list[str], unique: bool, kinds: dict[str, str],
                        key: str, shown: str) -> None:
    if not unique:
        raise SpecError(f"table {table} has no primary key or unique constraint on {key!r}, which "
                        f"an upsert matches rows by; add one (ALTER TABLE {table} ADD PRIMARY KEY "
                        f"({key})) or export with mode 'replace'", file=shown)
    absent = [c for c in kinds if c not in names]
    if absent:
        raise SpecError(f"table {table} has no column {', '.join(map(repr, absent))} of the rows to "
                        f"upsert; its columns are {names}", file=shown)


def _conflict_action(kinds: dict[str, str], key: str) -> str:
    """An upsert's ON CONFLICT action in SQLite's and DuckDB's SQL: every other column
    takes the incoming row's value."""
    others = [c for c in kinds if c != key]
    return ("DO UPDATE SET " + ", ".join(f"{_quote(c)} = excluded.{_quote(c)}" for c in others)
            if others else "DO NOTHING")


def _swap(execute: Any, staging: str, table: str) -> None:
    """The loaded staging table takes the table's place (inside the caller's transaction)."""
    execute(f"DROP TABLE IF EXISTS {_quote(table)}")
    execute(f"ALTER TABLE {_quote(staging)} RENAME TO {_quote(table)}")


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


# --------------------------------------------------------------------------- SQLite

def _database_path(given: str, shown: str, what: str) -> Path:
    import sqlalchemy as sa

    try:
        url = sa.make_url(expand_env(given, what="the export target"))
    except KeyError as exc:
        raise SpecError(str(exc.args[0]), file=shown) from None
    except sa.exc.ArgumentError as exc:
        raise SpecError(f"is not a database URL ({exc})", file=shown) from None
    if not url.database or url.database == ":memory:" or url.database.startswith("file:"):
        raise SpecError(f"names no {what} database file (write {url.drivername}:///path)", file=shown)
    path = Path(url.database)
    if not path.parent.is_dir():
        raise SegmintError("the folder of the database does not exist", file=redact(str(path)))
    return path


def _write_sqlite(rows: pd.DataFrame, kinds: dict[str, str], *, given: str, shown: str,
                  table: str, mode: str, key: str) -> tuple[int | None, int | None]:
    if sqlite3.sqlite_version_info < (3, 24):
        raise SegmintError(f"SQLite {sqlite3.sqlite_version} has no upsert; export needs 3.24 or later")
    path = _database_path(given, shown, "SQLite")
    con, view = _duckdb_rows(_arrow(rows, kinds))
    values = con.sql(_text_select(kinds, view, timestamps_as_text=True)).fetchall()
    con.close()
    columns = ", ".join(f"{_quote(c)} {_SQLITE_TYPES[k]}" for c, k in kinds.items())
    names = ", ".join(map(_quote, kinds))
    marks = ", ".join("?" for _ in kinds)
    staging = f"_segmint_stage_{secrets.token_hex(6)}"
    try:
        db = sqlite3.connect(path, isolation_level=None, timeout=30)
    except sqlite3.Error as exc:
        raise SegmintError(f"cannot open the SQLite database: {exc}", file=shown) from None
    try:
        db.execute("BEGIN IMMEDIATE")  # the write lock now: no one changes the table under us
        try:
            if mode == "replace":
                db.execute(f"CREATE TABLE {_quote(staging)} ({columns}, PRIMARY KEY ({_quote(key)}))")
                db.executemany(f"INSERT INTO {_quote(staging)} ({names}) VALUES ({marks})", values)
                _swap(db.execute, staging, table)
                result: tuple[int | None, int | None] = (None, None)
            else:
                existing = _sqlite_table(db, table, key)
                if existing is None:
                    db.execute(f"CREATE TABLE {_quote(table)} ({columns}, PRIMARY KEY ({_quote(key)}))")
                else:
                    _check_upsert_table(table, existing[0], existing[1], kinds, key, shown)
                db.execute(f"CREATE TEMP TABLE {_quote(staging)} ({columns})")
                db.executemany(f"INSERT INTO temp.{_quote(staging)} ({names}) VALUES ({marks})", values)
                found = db.execute(f"SELECT count(*) FROM temp.{_quote(staging)} WHERE {_quote(key)} IN "
                                   f"(SELECT {_quote(key)} FROM {_quote(table)})").fetchone()
                updated = int(found[0])
                action = _conflict_action(kinds, key)
                # "WHERE true": SQLite's grammar needs it between SELECT and an upsert's ON CONFLICT
                db.execute(f"INSERT INTO {_quote(table)} ({names}) SELECT {names} "
                           f"FROM temp.{_quote(staging)} WHERE true ON CONFLICT ({_quote(key)}) {action}")
                db.execute(f"DROP TABLE temp.{_quote(staging)}")
                result = (len(values) - updated, updated)
            db.execute("COMMIT")
            return result
        except BaseException:
            db.execute("ROLLBACK")
            raise
    except sqlite3.Error as exc:
        raise SegmintError(f"export to table {table} failed, nothing was changed: {_first_line(exc)}",
                           file=shown) from None
    finally:
        db.close()


def _sqlite_table(db: sqlite3.Connection, table: str, key: str) -> tuple[list[str], bool] | None:
    info = db.execute(f"PRAGMA table_info({_quote(table)})").fetchall()
    if not info:
        return None
    names = [row[1] for row in info]
    primary = [row[1] for row in info if row[5]]
    unique = primary == [key]
    for index in db.execute(f"PRAGMA index_list({_quote(table)})").fetchall():
        # (seq, name, unique, origin, partial)
        if index[2] and not index[4]:
            cols = [r[2] for r in db.execute(f"PRAGMA index_info({_quote(index[1])})").fetchall()]
            unique = unique or cols == [key]
    return names, unique


# --------------------------------------------------------------------------- DuckDB

def _write_duckdb(rows: pd.DataFrame, kinds: dict[str, str], *, given: str, shown: str,
                  table: str, mode: str, key: str) -> tuple[int | None, int | None]:
    import duckdb

    path = _database_path(given, shown, "DuckDB")
    arrow = _arrow(rows, kinds)
    try:
        con = duckdb.connect(str(path))
    except duckdb.Error as exc:
        raise SegmintError(f"cannot open the DuckDB database: {_first_line(exc)}", file=shown) from None
    view = f"segmint_rows_{secrets.token_hex(4)}"
    staging = f"_segmint_stage_{secrets.token_hex(6)}"
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.register(view, arrow)
        types = dict(zip(con.sql(f"SELECT * FROM {_quote(view)}").columns,
                         map(str, con.sql(f"SELECT * FROM {_quote(view)}").types), strict=True))
        columns = ", ".join(f"{_quote(c)} {types[c]}" for c in kinds)
        names = ", ".join(map(_quote, kinds))
        con.execute("BEGIN TRANSACTION")
        try:
            if mode == "replace":
                con.execute(f"CREATE TABLE {_quote(staging)} ({columns}, PRIMARY KEY ({_quote(key)}))")
                con.execute(f"INSERT INTO {_quote(staging)} ({names}) SELECT {names} FROM {_quote(view)}")
                _swap(con.execute, staging, table)
                result: tuple[int | None, int | None] = (None, None)
            else:
                existing = _duckdb_table(con, table, key)
                if existing is None:
                    con.execute(f"CREATE TABLE {_quote(table)} ({columns}, PRIMARY KEY ({_quote(key)}))")
                else:
                    _check_upsert_table(table, existing[0], existing[1], kinds, key, shown)
                found = con.execute(f"SELECT count(*) FROM {_quote(view)} WHERE {_quote(key)} IN "
                                    f"(SELECT {_quote(key)} FROM {_quote(table)})").fetchone()
                updated = int(found[0]) if found else 0
                action = _conflict_action(kinds, key)
                con.execute(f"INSERT INTO {_quote(table)} ({names}) SELECT {names} FROM {_quote(view)} "
                            f"ON CONFLICT ({_quote(key)}) {action}")
                result = (len(rows) - updated, updated)
            con.execute("COMMIT")
            return result
        except BaseException:
            con.execute("ROLLBACK")
            raise
    except duckdb.Error as exc:
        raise SegmintError(f"export to table {table} failed, nothing was changed: {_first_line(exc)}",
                           file=shown) from None
    finally:
        con.close()


def _duckdb_table(con: duckdb.DuckDBPyConnection, table: str, key: str) -> tuple[list[str], bool] | None:
    found = con.execute("SELECT column_name FROM information_schema.columns WHERE table_name = ? "
                        "AND table_schema = current_schema() ORDER BY ordinal_position", [table]).fetchall()
    if not found:
        return None
    unique = con.execute("SELECT count(*) FROM duckdb_constraints() WHERE table_name = ? "
                         "AND schema_name = current_schema() AND constraint_type IN "
                         "('PRIMARY KEY', 'UNIQUE') AND constraint_column_names = [?]",
                         [table, key]).fetchone()
    return [r[0] for r in found], bool(unique and unique[0])


# --------------------------------------------------------------------------- files

def _json_text(rows: pd.DataFrame, kinds: dict[str, str]) -> pd.DataFrame:
    """The rows with json columns as JSON text (for CSV), made by DuckDB."""
    nested = [c for c, k in kinds.items() if k == "json"]
    if not nested:
        return rows
    con, view = _duckdb_rows(_arrow(rows[nested], {c: "json" for c in nested}))
    text = con.sql(f"SELECT {', '.join(f'to_json({_quote(c)})::VARCHAR' for c in nested)} "
                   f"FROM {_quote(view)}").fetchnumpy()
    con.close()
    return rows.assign(**{c: pd.array(v, dtype="string") for c, v in zip(nested, text.values(), strict=True)})


def _typed_nearest(rows: pd.DataFrame, kinds: dict[str, str]) -> pd.DataFrame:
    """The rows for Parquet: a nearest_centroids_distance column of only empty lists (a
    rule-based solution's) held as Arrow's list<struct>, which pandas would store as list<null>."""
    if kinds.get(NEAREST) != "json" or any(len(v) for v in rows[NEAREST] if v is not None):
        return rows
    column = _arrow(rows[[NEAREST]], {NEAREST: "json"}).column(0)
    return rows.assign(**{NEAREST: pd.arrays.ArrowExtensionArray(column)})


def _merged(old: pd.DataFrame, new: pd.DataFrame, key: str, shown: str) -> tuple[pd.DataFrame, int]:
    """Old rows with the new ones in place of those of the same key, new keys appended; how
    many were updated."""
    if key not in old.columns:
        raise SpecError(f"the existing file has no key column {key!r}; its columns are "
                        f"{list(old.columns)}", file=shown)
    old_keys = old[key].astype("string").reset_index(drop=True)
    new_keys = new[key].astype("string").reset_index(drop=True)
    where = dict(zip(old_keys, range(len(old_keys)), strict=True))
    hit = old_keys.isin(new_keys).to_numpy()
    # each new row takes its old row's place, or comes after all old rows in the frame's order
    at_new = np.array([where.get(k, len(old) + i) for i, k in enumerate(new_keys)], dtype="float64")
    position = np.concatenate([np.flatnonzero(~hit).astype("float64"), at_new])
    both = pd.concat([old.loc[~hit].reset_index(drop=True), new.reset_index(drop=True)], ignore_index=True)
    return both.iloc[np.argsort(position, kind="stable")].reset_index(drop=True), int(hit.sum())


def _write_file(rows: pd.DataFrame, kinds: dict[str, str], *, given: str, shown: str,
                mode: str, key: str, kind: str) -> tuple[int | None, int | None]:
    from segmint.io._writers import write_csv_atomic, write_parquet_atomic

    path = Path(expand_env(given, what="the export target")) if "${" in given else Path(given)
    if not path.parent.is_dir():
        raise SegmintError("the folder to write into does not exist", file=shown)
    out = _typed_nearest(rows, kinds) if kind == "parquet" else _json_text(rows, kinds)
    inserted: int | None = None
    updated: int | None = None
    try:
        if mode == "upsert" and path.exists():
            if kind == "parquet":
                old = pd.read_parquet(path)
            else:  # as text, so that untouched rows are written back as they were read
                old = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
            out, updated = _merged(old, out, key, shown)
            inserted = len(rows) - updated
        elif mode == "upsert":
            inserted, updated = len(rows), 0
        if kind == "parquet":
            write_parquet_atomic(out, path, index=False)
        else:
            write_csv_atomic(out, path, index=False)
    except (OSError, ValueError) as exc:
        raise SegmintError(f"cannot be written: {_first_line(exc)}", file=shown) from None
    return inserted, updated


_DATABASE_WRITERS = {"postgresql": _write_postgres, "sqlite": _write_sqlite, "duckdb": _write_duckdb}
