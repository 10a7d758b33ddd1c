"""BigQuery exports registered in DuckDB under their BigQuery names.

A table exported from BigQuery (Parquet, newline-delimited JSON, Avro, or CSV for flat tables)
becomes a DuckDB view named as in BigQuery, so the user's SQL runs unchanged:
``bigquery-public-data.google_analytics_sample.ga_sessions_*`` is the view
``"google_analytics_sample"."ga_sessions_*"`` (the project is dropped, the dataset is a schema;
see :mod:`segmint.sql.dialect`). Views keep absolute paths, so a file database remembers them
across sessions; the files are read when a query runs.

Formats, as BigQuery writes them:

* Parquet: read in place (``read_parquet``).
* Newline-delimited JSON (``.json``, ``.ndjson``, ``.jsonl``, optionally ``.gz``): read in place
  (``read_json``). BigQuery writes INT64 values as JSON strings, so only a schema tells an INT64
  from a STRING of digits (``visitId`` from ``fullVisitorId``): pass ``schema`` (a BigQuery JSON
  schema, as ``bq show --schema`` prints it, or a Parquet or Avro export of the same table) and
  the columns get its types; without one DuckDB guesses from the values, and such numbers stay
  text.
* Avro: DuckDB's avro extension is a download and segmint runs offline, so the file is read with
  fastavro (types from the Avro schema) and *copied* into a DuckDB table; a later change to the
  file needs registering again.
* CSV (:func:`register_table` only; a flat CRM export): ``read_csv`` with detection.
"""
from __future__ import annotations

import glob as globbing
import json
import logging
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import duckdb

from segmint.errors import InputError, public
from segmint.sql.dialect import _quote, _split_bigquery_name

__all__ = ["register_export", "register_table", "file_format"]

logger = logging.getLogger(__name__)

#: File name endings and the format each is; ``.gz`` may follow the JSON and CSV ones.
FORMATS = {".parquet": "parquet", ".json": "json", ".ndjson": "json", ".jsonl": "json",
           ".avro": "avro", ".csv": "csv", ".tsv": "csv"}  # a .tsv: DuckDB detects the tab

#: BigQuery's column types as DuckDB's.
_BIGQUERY_TYPES = {
    "STRING": "VARCHAR", "BYTES": "BLOB", "INTEGER": "BIGINT", "INT64": "BIGINT",
    "FLOAT": "DOUBLE", "FLOAT64": "DOUBLE", "NUMERIC": "DECIMAL(38, 9)",
    "BIGNUMERIC": "DOUBLE", "BOOLEAN": "BOOLEAN", "BOOL": "BOOLEAN", "TIMESTAMP": "TIMESTAMPTZ",
    "DATE": "DATE", "TIME": "TIME", "DATETIME": "TIMESTAMP", "JSON": "JSON",
    "GEOGRAPHY": "VARCHAR", "INTERVAL": "INTERVAL",
}

_ROWS_PER_BATCH = 10_000


def file_format(path: str | Path) -> str:
    """The export format of a file by its name: parquet, json, avro or csv.

    Examples
    --------
    >>> [file_format(p) for p in ["a.parquet", "b.json.gz", "c_0.ndjson", "d.avro", "crm.csv"]]
    ['parquet', 'json', 'json', 'avro', 'csv']
    """
    suffixes = [s.lower() for s in Path(path).suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    kind = FORMATS.get(suffixes[-1]) if suffixes else None
    if kind is None:
        raise InputError(f"unknown file type (expected one of {', '.join(FORMATS)}, JSON and CSV "
                         "optionally .gz)", file=str(path))
    if kind in ("parquet", "avro") and Path(path).suffix.lower() == ".gz":
        raise InputError(f"a .gz {kind} file cannot be read (BigQuery compresses {kind} inside "
                         "the file)", file=str(path))
    return kind


def _stem(path: str | Path) -> str:
    """A file's name without its format's endings (``x.json.gz`` -> ``x``)."""
    name = Path(path).name
    for _ in range(2):
        lower = name.lower()
        for ending in (".gz", *FORMATS):
            if lower.endswith(ending):
                name = name[: -len(ending)]
                break
    return name


@public
def register_export(con: duckdb.DuckDBPyConnection, name: str, paths: str | Path | Sequence[str | Path],
                    *, schema: str | Path | list[dict[str, Any]] | None = None) -> list[str]:
    """Register a BigQuery export as DuckDB views (tables for Avro) under its BigQuery name.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        Where to register; with a file database the views are saved in it.
    name : str
        The BigQuery name, e.g. ``bigquery-public-data.google_analytics_sample.ga_sessions_*``
        or ``google_analytics_sample.ga_sessions_20170801``; the project is dropped and the
        dataset becomes a schema (created when missing).
    paths : str, Path or list of them
        A file, a glob, or a list of files (globs in it are expanded). For a wildcard ``name``
        (ending in ``*``) each file is one day (shard) of the table: its ``_TABLE_SUFFIX`` is
        what the glob's last ``*`` matched in the file name, format endings left out
        (``data/ga360_sessions_*.parquet`` and ``ga360_sessions_20170801.parquet`` give
        ``20170801``); for files listed by name, the part of the name after its last ``_``.
        Files with the same suffix (a sharded export) make one table. For a plain name, all the
        files make the one table.
    schema : BigQuery schema, or path, optional
        Column types for JSON files (see the module docstring): a BigQuery JSON schema (a list of
        ``{"name", "type", "mode", "fields"}``, or a ``.json`` file of one) or a Parquet / Avro
        export of the same table whose types to use.

    Returns
    -------
    list of str
        The names registered, ``dataset.table``: for a wildcard name the view of all files
        (``_TABLE_SUFFIX`` a column of it, the same constant for every row of a file, so DuckDB
        skips the files a ``WHERE _TABLE_SUFFIX ...`` rules out), then one table per suffix
        (``ga_sessions_20170801``), as BigQuery has.

    Raises
    ------
    InputError
        No file matches, a file cannot be read, the files' schemas conflict (a column of two
        types), or an unknown format; the message names the file.

    Examples
    --------
    >>> import duckdb, pyarrow as pa, pyarrow.parquet as pq, tempfile, os
    >>> folder = tempfile.mkdtemp()
    >>> for day, visits in [("20170801", 3), ("20170802", 5)]:
    ...     pq.write_table(pa.table({"visits": [visits]}), os.path.join(folder, f"ga_{day}.parquet"))
    >>> con = duckdb.connect()
    >>> register_export(con, "project.ga.ga_sessions_*", os.path.join(folder, "ga_*.parquet"))
    ['ga.ga_sessions_*', 'ga.ga_sessions_20170801', 'ga.ga_sessions_20170802']
    >>> con.sql('SELECT visits, _TABLE_SUFFIX FROM ga."ga_sessions_*" ORDER BY 1').fetchall()
    [(3, '20170801'), (5, '20170802')]
    """
    dataset, table = _split_bigquery_name(name)
    files = _files(paths)
    types = _schema_types(con, schema) if schema is not None else None
    if not table.endswith("*"):
        _register(con, dataset, table, files, types)
        return [_shown(dataset, table)]
    prefix = table[:-1]
    days: dict[str, list[Path]] = {}
    for path, suffix in _suffixes(paths, files):
        days.setdefault(suffix, []).append(path)
    registered = []
    for suffix, day_files in sorted(days.items()):
        _register(con, dataset, prefix + suffix, day_files, types)
        registered.append(prefix + suffix)
    _check_schemas(con, dataset, registered, days)
    parts = [f"SELECT *, '{suffix.replace(chr(39), chr(39) * 2)}' AS _TABLE_SUFFIX "
             f"FROM {_qualified(dataset, prefix + suffix)}" for suffix in sorted(days)]
    _replace(con, dataset, table, "VIEW", " UNION ALL BY NAME ".join(parts))
    return [_shown(dataset, t) for t in [table, *registered]]


@public
def register_table(con: duckdb.DuckDBPyConnection, name: str, path: str | Path, *,
                   schema: str | Path | list[dict[str, Any]] | None = None) -> str:
    """Register one file (Parquet, NDJSON, Avro or CSV, e.g. a CRM export) as the table
    ``name`` (BigQuery's name; the project dropped, the dataset a schema).

    Returns the name registered, ``dataset.table``.

    Examples
    --------
    >>> import duckdb, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "crm.csv")
    >>> _ = open(path, "w").write("fullVisitorId,hhi\\n0012,55000\\n")
    >>> con = duckdb.connect()
    >>> register_table(con, "crm.customers", path)
    'crm.customers'
    >>> con.sql("SELECT * FROM crm.customers").fetchall()
    [('0012', 55000)]
    """
    dataset, table = _split_bigquery_name(name)
    if table.endswith("*"):
        raise InputError(f"{name} is a wildcard name: use register_export for a table per file")
    files = _files(path)
    if len(files) != 1:
        raise InputError(f"register_table takes one file, {len(files)} match", file=str(path))
    types = _schema_types(con, schema) if schema is not None else None
    _register(con, dataset, table, files, types, csv=True)
    return _shown(dataset, table)


# ------------------------------------------------------------------------------------ files


def _files(paths: str | Path | Sequence[str | Path]) -> list[Path]:
    items = [paths] if isinstance(paths, str | Path) else list(paths)
    if not items:
        raise InputError("no files given")
    found: list[Path] = []
    for item in items:
        text = str(Path(str(item)).expanduser())
        if globbing.has_magic(text):
            matches = sorted(globbing.glob(text))
            if not matches:
                raise InputError("no file matches this pattern", file=text)
            found += [Path(m).resolve() for m in matches]
        else:
            path = Path(text).resolve()
            if not path.is_file():
                raise InputError("no such file", file=text)
            found.append(path)
    for path in found:
        file_format(path)
    return found


def _glob_regex(pattern: str) -> re.Pattern[str] | None:
    """A file-name glob as a regex with a group per ``*`` (None without a ``*``)."""
    if "*" not in pattern:
        return None
    out, i = "", 0
    while i < len(pattern):
        char = pattern[i]
        if char == "*":
            out += "(.*)"
        elif char == "?":
            out += "."
        elif char == "[" and "]" in pattern[i + 1:]:
            end = pattern.index("]", i + 1)
            body = pattern[i + 1:end]
            out += "[" + ("^" + body[1:] if body.startswith("!") else body) + "]"
            i = end
        else:
            out += re.escape(char)
        i += 1
    return re.compile(out + r"\Z")


def _suffixes(paths: str | Path | Sequence[str | Path], files: list[Path]) -> Iterable[tuple[Path, str]]:
    patterns = [paths] if isinstance(paths, str | Path) else list(paths)
    regexes = [_glob_regex(Path(str(p)).name) for p in patterns
               if globbing.has_magic(str(p))]
    for path in files:
        suffix = None
        for regex in regexes:
            match = regex.match(path.name) if regex is not None else None
            if match is not None:
                suffix = _stem(match.group(match.lastindex)) if match.lastindex else None
                break
        if suffix is None:
            stem = _stem(path)
            suffix = stem.rsplit("_", 1)[-1] if "_" in stem else stem
        yield path, suffix


# ------------------------------------------------------------------------------ registering


def _qualified(dataset: str | None, table: str) -> str:
    return f"{_quote(dataset)}.{_quote(table)}" if dataset else _quote(table)


def _shown(dataset: str | None, table: str) -> str:
    return f"{dataset}.{table}" if dataset else table


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _reader(files: list[Path], kind: str, types: dict[str, str] | None) -> str:
    listed = "[" + ", ".join(_literal(str(f)) for f in files) + "]"
    if kind == "parquet":
        return f"read_parquet({listed}, union_by_name = true)"
    if kind == "json":
        options = "format = 'newline_delimited', sample_size = -1"
        if types:
            columns = ", ".join(f"{_literal(n)}: {_literal(t)}" for n, t in types.items())
            options += f", columns = {{{columns}}}"
        return f"read_json({listed}, {options})"
    if kind == "csv":
        return f"read_csv({listed}, header = true, union_by_name = true)"
    raise AssertionError(kind)


def _register(con: duckdb.DuckDBPyConnection, dataset: str | None, table: str, files: list[Path],
              types: dict[str, str] | None, *, csv: bool = False) -> None:
    kinds = {file_format(f) for f in files}
    if len(kinds) > 1:
        raise InputError(f"the files of {table} mix formats ({', '.join(sorted(kinds))})",
                         file=str(files[0]))
    kind = kinds.pop()
    if kind == "csv" and not csv:
        raise InputError("CSV cannot hold BigQuery's nested records: export as Parquet, JSON or "
                         "Avro, or use register_table for a flat table", file=str(files[0]))
    if dataset:
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {_quote(dataset)}")
    if kind == "avro":
        _register_avro(con, dataset, table, files)
        return
    for path in files:
        # one file at a time, so an error names the file
        try:
            con.sql(f"SELECT * FROM {_reader([path], kind, types)} LIMIT 0").fetchall()
        except duckdb.Error as error:
            raise InputError(f"cannot read as {kind}: {error}", file=str(path)) from None
    _replace(con, dataset, table, "VIEW", f"SELECT * FROM {_reader(files, kind, types)}")


def _replace(con: duckdb.DuckDBPyConnection, dataset: str | None, table: str, kind: str,
             query: str) -> None:
    """CREATE OR REPLACE a view or table, whichever of the two held the name before."""
    existing = con.sql(
        "SELECT 'TABLE' FROM duckdb_tables() WHERE schema_name = $s AND table_name = $t "
        "UNION ALL SELECT 'VIEW' FROM duckdb_views() WHERE schema_name = $s AND view_name = $t",
        params={"s": dataset or "main", "t": table}).fetchall()
    for (old,) in existing:
        if old != kind:
            con.execute(f"DROP {old} {_qualified(dataset, table)}")
    con.execute(f"CREATE OR REPLACE {kind} {_qualified(dataset, table)} AS {query}")


def _check_schemas(con: duckdb.DuckDBPyConnection, dataset: str | None, tables: list[str],
                   days: dict[str, list[Path]]) -> None:
    """A wildcard table's days must agree on the type of every column they share."""
    seen: dict[str, tuple[str, Path]] = {}
    for table, files in zip(tables, (days[s] for s in sorted(days)), strict=True):
        relation = con.sql(f"SELECT * FROM {_qualified(dataset, table)} LIMIT 0")
        for column, kind in zip(relation.columns, relation.types, strict=True):
            text = _type_sql(kind)
            first = seen.setdefault(column.lower(), (text, files[0]))
            if first[0] != text:
                raise InputError(f"the files' schemas conflict: column {column} is {first[0]} in "
                                 f"{first[1]} and {text} here", file=str(files[0]))


# ---------------------------------------------------------------------------------- schemas


def _type_sql(kind: Any) -> str:
    """A DuckDBPyType as DuckDB SQL, field names quoted."""
    if kind.id == "struct":
        return "STRUCT(" + ", ".join(f"{_quote(n)} {_type_sql(c)}" for n, c in kind.children) + ")"
    if kind.id == "list":
        return _type_sql(kind.children[0][1]) + "[]"
    return str(kind)


def _bigquery_type(field: dict[str, Any]) -> str:
    kind = str(field.get("type", "STRING")).upper()
    if kind in ("RECORD", "STRUCT"):
        inner = ", ".join(f"{_quote(f['name'])} {_bigquery_type(f)}" for f in field.get("fields", []))
        text = f"STRUCT({inner})"
    elif kind in _BIGQUERY_TYPES:
        text = _BIGQUERY_TYPES[kind]
    else:
        raise InputError(f"unknown BigQuery type {kind} for field {field.get('name')}")
    return text + "[]" if str(field.get("mode", "")).upper() == "REPEATED" else text


def _schema_types(con: duckdb.DuckDBPyConnection,
                  schema: str | Path | list[dict[str, Any]]) -> dict[str, str]:
    """Column name -> DuckDB type, from a BigQuery JSON schema or an export with types."""
    if isinstance(schema, list):
        return {f["name"]: _bigquery_type(f) for f in schema}
    path = Path(schema).expanduser().resolve()
    if not path.is_file():
        raise InputError("no such schema file", file=str(path))
    kind = file_format(path)
    if kind == "json":
        try:
            fields = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise InputError(f"not a BigQuery JSON schema: {error}", file=str(path)) from None
        if isinstance(fields, dict):
            fields = fields.get("schema", {}).get("fields", fields.get("fields"))
        if not isinstance(fields, list):
            raise InputError("not a BigQuery JSON schema (a list of fields)", file=str(path))
        return {f["name"]: _bigquery_type(f) for f in fields}
    if kind == "avro":
        arrow_schema = _avro_arrow_schema(_avro_writer_schema(path), path)
        names = [f.name for f in arrow_schema]
        relation = con.from_arrow(arrow_schema.empty_table())
        return {n: _type_sql(t) for n, t in zip(names, relation.types, strict=True)}
    if kind != "parquet":
        raise InputError("a schema is a BigQuery JSON schema, Parquet or Avro file", file=str(path))
    relation = con.sql(f"SELECT * FROM read_parquet({_literal(str(path))}) LIMIT 0")
    return {n: _type_sql(t) for n, t in zip(relation.columns, relation.types, strict=True)}


# ------------------------------------------------------------------------------------- Avro


def _avro_writer_schema(path: Path) -> Any:
    import fastavro

    try:
        with path.open("rb") as handle:
            return fastavro.reader(handle).writer_schema
    except Exception as error:  # fastavro raises ValueError, EOFError, its own errors
        raise InputError(f"cannot read as Avro: {error}", file=str(path)) from None


def _avro_arrow_schema(schema: Any, path: Path) -> Any:
    import pyarrow as pa

    named: dict[str, Any] = {}

    def convert(node: Any) -> tuple[Any, bool]:
        # (arrow type, nullable)
        if isinstance(node, list):
            options = [n for n in node if n != "null"]
            if len(options) != 1:
                raise InputError(f"an Avro union of {node} cannot be a column", file=str(path))
            return convert(options[0])[0], True
        if isinstance(node, str):
            if node in named:
                return named[node], False
            simple = {"null": pa.null(), "boolean": pa.bool_(), "int": pa.int32(),
                      "long": pa.int64(), "float": pa.float32(), "double": pa.float64(),
                      "bytes": pa.binary(), "string": pa.string()}
            if node not in simple:
                raise InputError(f"unknown Avro type {node}", file=str(path))
            return simple[node], node == "null"
        kind, logical = node.get("type"), node.get("logicalType")
        if kind == "record":
            fields = []
            for f in node["fields"]:
                arrow, nullable = convert(f["type"])
                fields.append(pa.field(f["name"], arrow, nullable=nullable))
            result = pa.struct(fields)
            named[node.get("name", "")] = result
            return result, False
        if kind == "array":
            return pa.list_(convert(node["items"])[0]), False
        if kind == "map":
            return pa.map_(pa.string(), convert(node["values"])[0]), False
        if kind == "enum":
            return pa.string(), False
        if kind == "fixed":
            return pa.binary(node["size"]), False
        if logical == "decimal":
            return pa.decimal128(node.get("precision", 38), node.get("scale", 0)), False
        if logical == "date":
            return pa.date32(), False
        if logical in ("timestamp-micros", "timestamp-millis"):
            return pa.timestamp("us" if logical.endswith("micros") else "ms", tz="UTC"), False
        if logical in ("time-micros", "time-millis"):
            return (pa.time64("us") if logical.endswith("micros") else pa.time32("ms")), False
        return convert(kind)

    arrow, _ = convert(schema)
    if not pa.types.is_struct(arrow):
        raise InputError("an Avro export holds records", file=str(path))
    return pa.schema(list(arrow))


def _register_avro(con: duckdb.DuckDBPyConnection, dataset: str | None, table: str,
                   files: list[Path]) -> None:
    import fastavro
    import pyarrow as pa

    batches: list[Any] = []
    schema = None
    for path in files:
        file_schema = _avro_arrow_schema(_avro_writer_schema(path), path)
        if schema is not None and not file_schema.equals(schema):
            raise InputError("the files' schemas conflict (Avro schema differs from "
                             f"{files[0]})", file=str(path))
        schema = file_schema
        try:
            with path.open("rb") as handle:
                rows: list[dict[str, Any]] = []
                for record in fastavro.reader(handle):
                    rows.append(record)  # type: ignore[arg-type]  # records of a record schema
                    if len(rows) == _ROWS_PER_BATCH:
                        batches.append(pa.RecordBatch.from_pylist(rows, schema=schema))
                        rows = []
                if rows:
                    batches.append(pa.RecordBatch.from_pylist(rows, schema=schema))
        except InputError:
            raise
        except Exception as error:
            raise InputError(f"cannot read as Avro: {error}", file=str(path)) from None
    arrow_table = pa.Table.from_batches(batches, schema=schema)
    temporary = f"__segmint_avro_{table}"
    con.register(temporary, arrow_table)
    try:
        _replace(con, dataset, table, "TABLE", f"SELECT * FROM {_quote(temporary)}")
    finally:
        con.unregister(temporary)
