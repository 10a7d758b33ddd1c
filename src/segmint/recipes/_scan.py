"""Transaction lines read where they lie: DuckDB scans Parquet files (one, or a glob) and CSV
globs, so a recipe's SQL runs over data larger than memory and only the customer table comes
back to Python.

:func:`scan_lines` makes a view on the connection whose columns are the roles, typed as
:func:`segmint.io.read_source` types them (ids as text without a float's ``.0``, numbers as
DOUBLE, dates as TIMESTAMP), without the lines ``read_source`` calls invalid; one pass over
the files counts them, per reason, under the same names. :func:`configure` puts the run's
engine settings (memory limit, spill folder, threads) on the connection.
"""
from __future__ import annotations

import glob
import hashlib
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from segmint.errors import InputError
from segmint.spec import EngineSpec, SourceSpec

__all__ = ["scan_format", "scan_lines", "configure", "connect", "ScannedLines"]

log = logging.getLogger(__name__)

_GLOB_CHARS = "*?["
_TEXT_ROLES = ("customer", "invoice", "product", "country")
_NUMERIC_ROLES = ("quantity", "price", "amount")
# Text that means "no value" in a numeric or date column (as the reader's _MISSING_TOKENS).
_MISSING = ("", "nan", "NaN", "NA", "N/A", "NULL", "null", "None", "NaT")
# DuckDB type names (DESCRIBE) by family.
_INTEGER_TYPES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
                  "UINTEGER", "UBIGINT", "UHUGEINT")
_FLOAT_TYPES = ("FLOAT", "DOUBLE", "REAL")
_WHITESPACE = " \t\r\n\f\v"


@dataclass
class ScannedLines:
    """Valid transaction lines as a view on a DuckDB connection.

    Attributes
    ----------
    view : str
        The view's name: role columns in :data:`segmint.spec.ROLES` order.
    columns : list of str
        The roles found.
    lines : int
        Valid lines (what ``len(read_source(...))`` would be).
    with_customer : int
        Valid lines that have a customer.
    record : dict
        What ``read_source`` records in ``attrs["source"]``: file, format, files, rows,
        sha256, columns, headers, dropped.
    """

    view: str
    columns: list[str]
    lines: int
    with_customer: int
    record: dict[str, Any] = field(default_factory=dict)
    #: The view's customer column holds the ids as BIGINT (a whole-number id column), not text:
    #: grouping on it is about twice as fast. Its text is ``CAST(customer AS VARCHAR)``, and
    #: text order is what the in-memory path's ORDER BY gives.
    numeric_customer: bool = False


def _is_glob(path: str) -> bool:
    return any(c in path for c in _GLOB_CHARS)


def scan_format(source: Any) -> str | None:
    """``"parquet"`` or ``"csv"`` when the transactions recipe reads ``source`` in DuckDB
    (a Parquet file or glob; a CSV/TSV glob with a header line), else None (read by
    :func:`segmint.io.read_source` into memory).

    Examples
    --------
    >>> scan_format(SourceSpec(path="lines/*.parquet")), scan_format(SourceSpec(path="a.csv"))
    ('parquet', None)
    >>> scan_format(SourceSpec(path="exports/2024-*.csv"))
    'csv'
    """
    from segmint.io._readers import _format_by_name

    if not isinstance(source, SourceSpec) or not source.path:
        return None
    path = source.path
    lower = path.lower()
    if lower.endswith((".gz", ".zip")):
        return None
    kind = source.format if source.format != "auto" else _format_by_name(Path(path).name)
    if kind == "parquet":
        return "parquet"
    if kind in ("csv", "tsv") and _is_glob(path) and source.header and not source.names:
        return "csv"
    return None


def configure(con: duckdb.DuckDBPyConnection, engine: EngineSpec | None,
              threads: int | None = None) -> None:
    """Put the engine's memory limit and spill folder, and ``threads``, on ``con``.

    Examples
    --------
    >>> con = duckdb.connect()
    >>> configure(con, EngineSpec(memory_limit="1GB"), threads=1)
    >>> con.execute("SELECT current_setting('memory_limit'), current_setting('threads')").fetchone()
    ('953.6 MiB', 1)
    """
    if threads is not None:
        con.execute(f"SET threads = {int(threads)}")
    if engine is None:
        return
    if engine.memory_limit is not None:
        con.execute(f"SET memory_limit = '{engine.memory_limit.strip()}'")
    if engine.temp_directory is not None:
        Path(engine.temp_directory).mkdir(parents=True, exist_ok=True)
        con.execute(f"SET temp_directory = {_literal(engine.temp_directory)}")


def connect(engine: EngineSpec | None = None, threads: int | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with :func:`configure`'s settings."""
    con = duckdb.connect()
    configure(con, engine, threads)
    return con


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _files(source: SourceSpec) -> list[str]:
    path = str(source.path)
    if _is_glob(path):
        files = sorted(glob.glob(path, recursive=True))
        if not files:
            raise InputError("no file matches this pattern", file=path)
    else:
        if not Path(path).exists():
            raise InputError("not found", file=path)
        if Path(path).is_dir():
            raise InputError("is a folder; the source needs a file", file=path)
        files = [path]
    for file in files:
        if Path(file).stat().st_size == 0:
            raise InputError("is empty (0 bytes)", file=file)
    return files


def _fingerprint(files: list[str]) -> str:
    # One SHA-256 over every file's name and bytes, in name order (read_source hashes a file's bytes).
    digest = hashlib.sha256()
    for file in files:
        if len(files) > 1:
            digest.update(Path(file).name.encode("utf-8") + b"\0")
        with open(file, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 22), b""):
                digest.update(block)
    return digest.hexdigest()[:16]


def _reader_sql(source: SourceSpec, kind: str, files: list[str]) -> str:
    listed = "[" + ", ".join(_literal(f) for f in files) + "]"
    if kind == "parquet":
        return f"read_parquet({listed})"
    options = ["header = true", "all_varchar = true"]
    delimiter = source.delimiter or ("\t" if source.format == "tsv" or
                                     str(source.path).lower().endswith((".tsv", ".tab")) else None)
    if delimiter in ("tab", "\\t"):
        delimiter = "\t"
    if delimiter == "whitespace":
        raise InputError("a CSV glob is read by DuckDB, which takes one delimiter character; "
                         "fields separated by runs of whitespace need one file (source.path)",
                         file=source.path)
    if delimiter:
        options.append(f"delim = {_literal(delimiter)}")
    if source.encoding:
        options.append(f"encoding = {_literal(source.encoding)}")
    return f"read_csv({listed}, {', '.join(options)})"


def _describe(con: duckdb.DuckDBPyConnection, reader: str, where: str) -> dict[str, str]:
    try:
        rows = con.execute(f"DESCRIBE SELECT * FROM {reader}").fetchall()
    except duckdb.Error as exc:
        raise InputError(f"cannot be read ({type(exc).__name__}: {exc})", file=where) from None
    return {str(name): str(kind) for name, kind, *_ in rows}


def _base_type(kind: str) -> str:
    return kind.split("(")[0].upper()


def _text_sql(column: str, kind: str, role: str) -> tuple[str, str | None]:
    """A text role's expression, and a condition that makes the column a measure mapped by
    mistake (numbers, some negative or fractional), or None."""
    base = _base_type(kind)
    if base in _INTEGER_TYPES:
        return f"CAST({column} AS VARCHAR)", f"{column} < 0"
    if base in _FLOAT_TYPES or base.startswith("DECIMAL"):
        number = f"CAST({column} AS DOUBLE)"
        text = (f"CASE WHEN isnan({number}) THEN NULL "
                f"WHEN {number} = trunc({number}) AND abs({number}) < 9007199254740992 "
                f"THEN CAST(CAST({number} AS BIGINT) AS VARCHAR) ELSE CAST({number} AS VARCHAR) END")
        return text, f"{number} < 0 OR ({number} <> trunc({number}) AND NOT isnan({number}))"
    stripped = f"nullif(trim(CAST({column} AS VARCHAR), {_literal(_WHITESPACE)}), '')"
    if role == "customer":  # an id that went through a float column: "17850.0" -> "17850"
        stripped = f"regexp_replace({stripped}, '^([+-]?[0-9]+)\\.0*$', '\\1')"
    return stripped, None


def _number_sql(column: str, kind: str) -> tuple[str, str | None]:
    """A numeric role's expression (DOUBLE, NULL for missing), and a condition true on a value
    that is no number, or None."""
    base = _base_type(kind)
    if base in _INTEGER_TYPES:
        return f"CAST({column} AS DOUBLE)", None
    if base in _FLOAT_TYPES or base.startswith("DECIMAL"):
        number = f"CAST({column} AS DOUBLE)"
        return f"nullif({number}, 'NaN'::DOUBLE)", None
    if base != "VARCHAR":
        return "CAST(NULL AS DOUBLE)", f"{column} IS NOT NULL"
    text = f"trim({column}, {_literal(_WHITESPACE)})"
    present = f"({column} IS NOT NULL AND {text} NOT IN ({', '.join(map(_literal, _MISSING))}))"
    number = f"TRY_CAST({text} AS DOUBLE)"
    return f"CASE WHEN {present} THEN {number} END", f"{present} AND {number} IS NULL"


def _date_format(con: duckdb.DuckDBPyConnection, reader: str, column: str,
                 dayfirst: bool) -> str | None:
    """The layout of a text date column, chosen as read_source chooses it: the first of its
    layouts that parses every one of the first 2,000 present values (else the one parsing most)."""
    from segmint.io._readers import _date_formats, _parse_dates

    text = f"trim({column}, {_literal(_WHITESPACE)})"
    sample = [row[0] for row in con.execute(
        f"SELECT {text} FROM {reader} WHERE {column} IS NOT NULL AND {text} NOT IN "
        f"({', '.join(map(_literal, _MISSING))}) LIMIT 2000").fetchall()]
    values = pd.Series(pd.unique(pd.Series(sample, dtype=object)), dtype=object)
    best, best_parsed = None, -1
    for fmt in _date_formats(dayfirst):
        parsed = int(_parse_dates(values, fmt).notna().sum())
        if parsed > best_parsed:
            best, best_parsed = fmt, parsed
        if parsed == len(values):
            break
    return best


def _date_sql(con: duckdb.DuckDBPyConnection, reader: str, column: str, kind: str,
              dayfirst: bool, record: dict[str, Any], header: str) -> tuple[str, str | None]:
    """The date role's expression (TIMESTAMP, NULL for missing), and a condition true on a
    value that is no date, or None."""
    base = _base_type(kind)
    if base.startswith("TIMESTAMP") or base == "DATE":
        return f"CAST({column} AS TIMESTAMP)", None
    if base in _INTEGER_TYPES:  # yyyymmdd, as CDNOW's 19970101
        parsed = f"try_strptime(CAST({column} AS VARCHAR), '%Y%m%d')"
        return parsed, f"{column} IS NOT NULL AND ({parsed} IS NULL OR {column} < 10000000 " \
                       f"OR {column} > 99999999)"
    if base != "VARCHAR":
        return "CAST(NULL AS TIMESTAMP)", f"{column} IS NOT NULL"
    text = f"trim({column}, {_literal(_WHITESPACE)})"
    present = f"({column} IS NOT NULL AND {text} NOT IN ({', '.join(map(_literal, _MISSING))}))"
    fmt = _date_format(con, reader, column, dayfirst)
    record.setdefault("date_formats", {})[header] = fmt
    if fmt in (None, "ISO8601"):
        parsed = f"TRY_CAST({text} AS TIMESTAMP)"
    else:
        parsed = f"try_strptime({text}, {_literal(fmt)})"
    return f"CASE WHEN {present} THEN {parsed} END", f"{present} AND {parsed} IS NULL"


def _reasons(columns: list[str]) -> list[tuple[str, str]]:
    """(reason, condition) in read_source's order: a line counts under its first reason."""
    from segmint.io._readers import _EARLIEST_DATE, LARGEST_VALUE

    out = []
    for role in columns:
        if role in _NUMERIC_ROLES:
            out += [(f"{role} missing", f"{role} IS NULL"),
                    (f"{role} infinite", f"isinf({role})"),
                    (f"{role} beyond 1e15", f"abs({role}) > {LARGEST_VALUE!r}")]
        elif role == "date":
            latest = pd.Timestamp.now().normalize() + pd.Timedelta(days=2)
            out += [("date in the future", f"date >= TIMESTAMP '{latest:%Y-%m-%d %H:%M:%S}'"),
                    ("date before 1900", f"date < TIMESTAMP '{_EARLIEST_DATE:%Y-%m-%d %H:%M:%S}'")]
    return out


def scan_lines(con: duckdb.DuckDBPyConnection, source: SourceSpec, required: Sequence[str],
               optional: Sequence[str], temp: list[str], *,
               numeric_customer: bool = False) -> ScannedLines:
    """Map the roles of ``source``'s files and make a view of its valid lines on ``con``.

    The same roles, errors and counts as :func:`segmint.io.read_source`: a missing required
    or mapped column is named, a value that is no number or no date is an error naming the
    file and column, invalid lines are dropped and counted per reason (``invalid: error``
    makes the first one an error). Views made here are added to ``temp``.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
    source : SourceSpec
        A source :func:`scan_format` accepts.
    required, optional : sequence of str
        Roles, as for ``read_source``.
    temp : list of str
        Names of the views made, for the caller to drop.
    numeric_customer : bool
        Keep a whole-number customer column as BIGINT in the view (see
        :attr:`ScannedLines.numeric_customer`) when every id is below 2**53.

    Returns
    -------
    ScannedLines
    """
    from segmint.io._readers import _check_roles, _map_roles, _Opened, _refuse_repeated_headers

    kind = scan_format(source)
    if kind is None:
        raise InputError("is not a Parquet file or glob, nor a CSV glob", file=source.path)
    where = str(source.path)
    if kind == "csv" and source.decimal == ",":
        raise InputError("a CSV glob is read by DuckDB with '.' as the decimal mark; "
                         "source.decimal: ',' needs one file (source.path)", file=where)
    if kind == "parquet" and not source.header:
        raise InputError("'header: false' is for delimited text files (csv, tsv, whitespace); a "
                         "parquet file names its columns ('names' can still rename them)",
                         file=where)
    roles = _check_roles(required, optional)
    files = _files(source)
    reader = _reader_sql(source, kind, files)
    types = _describe(con, reader, where)
    headers = list(types)
    if source.names:
        if len(source.names) != len(headers):
            raise InputError(f"has {len(headers)} columns {headers} but source.names gives "
                             f"{len(source.names)}: {source.names}", file=where)
        types = dict(zip(source.names, types.values(), strict=True))
        renamed = ", ".join(f"{_quote(h)} AS {_quote(n)}" for h, n in zip(headers, source.names,
                                                                          strict=True))
        reader = f"(SELECT {renamed} FROM {reader})"
        headers = list(source.names)
    if not headers:
        raise InputError("is empty (no columns)", file=where)
    _refuse_repeated_headers(headers, where)
    opened = _Opened(where=where, headers=headers, load=lambda columns: pd.DataFrame())
    mapping = _map_roles(opened, source, roles, required)
    record: dict[str, Any] = {"file": where, "format": kind, "files": len(files)}
    typed, checks = [], []  # the role expressions; (what, condition, role) found wrong
    key, key_check = None, -1  # the customer as BIGINT, when it may be; its check's place
    for role, header in mapping.items():
        column = _quote(header)
        if role in _TEXT_ROLES:
            expr, measure = _text_sql(column, types[header], role)
            if measure is not None:
                checks.append(("an id or a name, not a measure", measure, role))
                if role == "customer" and numeric_customer:
                    number = f"CAST({column} AS DOUBLE)"
                    key_check = len(checks)
                    checks.append(("below 2**53", f"abs({number}) >= 9007199254740992", role))
                    key = f"CAST(nullif({number}, 'NaN'::DOUBLE) AS BIGINT)"
        elif role in _NUMERIC_ROLES:
            expr, bad = _number_sql(column, types[header])
            if bad is not None:
                checks.append(("a number", bad, role))
        else:
            expr, bad = _date_sql(con, reader, column, types[header], source.dayfirst, record,
                                  header)
            if bad is not None:
                checks.append(("a date", bad, role))
        typed.append(f"{expr} AS {role}")
    columns = list(mapping)
    reasons = _reasons(columns)
    reason = ("CASE " + " ".join(f"WHEN {cond} THEN {_literal(name)}" for name, cond in reasons)
              + " END") if reasons else "CAST(NULL AS VARCHAR)"
    checked = ", ".join(f"({cond}) AS check_{i}" for i, (_, cond, _) in enumerate(checks))
    raw = f"segmint_scan_{uuid.uuid4().hex[:12]}"
    con.execute(f"CREATE TEMP VIEW {raw} AS SELECT *, {reason} AS invalid_reason FROM "
                f"(SELECT {', '.join(typed)}{', ' + checked if checked else ''} FROM {reader})")
    temp.append(raw)
    counts = [f"count(*) FILTER (WHERE invalid_reason = {_literal(name)})" for name, _ in reasons]
    counts += [f"count(*) FILTER (WHERE check_{i})" for i in range(len(checks))]
    customer = "count(customer) FILTER (WHERE invalid_reason IS NULL)" \
        if "customer" in columns else "0"
    try:
        row = con.execute(f"SELECT count(*), {customer}{''.join(', ' + c for c in counts)} "
                          f"FROM {raw}").fetchone()
    except duckdb.OutOfMemoryException:
        raise  # the engine's memory limit, not the file (build_customers says which setting)
    except duckdb.Error as exc:
        raise InputError(f"cannot be read ({type(exc).__name__}: {exc})", file=where) from None
    assert row is not None
    total, with_customer = int(row[0]), int(row[1])
    per_reason = [int(n) for n in row[2:2 + len(reasons)]]
    wrong = [int(n) for n in row[2 + len(reasons):]]
    if key is not None:  # ids too large for a whole double stay text; the check is no error
        if wrong[key_check]:
            key = None
        del checks[key_check], wrong[key_check]
    for (expected, cond, role), n in zip(checks, wrong, strict=True):
        if n:
            raise _first_wrong(con, reader, cond, role, mapping[role], expected, n, where)
    if total == 0:
        raise InputError("holds no data rows (a header alone, or an empty table)", file=where)
    dropped = {name: n for (name, _), n in zip(reasons, per_reason, strict=True) if n}
    invalid = sum(dropped.values())
    if dropped and source.invalid == "error":
        first_reason = con.execute(f"SELECT invalid_reason FROM {raw} WHERE invalid_reason IS "
                                   f"NOT NULL LIMIT 1").fetchone()
        name = first_reason[0] if first_reason else next(iter(dropped))
        role = name.split(" ", 1)[0]
        raise InputError(f"{name}; {invalid} line(s) hold a missing, infinite or out-of-range "
                         f"quantity, price or amount or a date before 1900 or in the future "
                         f"(source.invalid: drop drops them)", file=where, column=mapping[role])
    if invalid == total:
        shown = ", ".join(f"{r} {n:,}" for r, n in dropped.items())
        raise InputError(f"every line is invalid: {shown}", file=where)
    if invalid:
        log.warning("%s: dropped %d of %d lines as invalid: %s (set source.invalid: error to "
                    "stop at the first)", where, invalid, total,
                    ", ".join(f"{r} {n:,}" for r, n in dropped.items()))
    view = f"segmint_lines_{uuid.uuid4().hex[:12]}"
    if key is not None:
        typed[columns.index("customer")] = f"{key} AS customer"
    lines = f"(SELECT {', '.join(typed)} FROM {reader})"
    if invalid:  # the reasons are evaluated again only when some line has one
        lines = f"(SELECT * FROM {lines} WHERE ({reason}) IS NULL)"
    con.execute(f"CREATE TEMP VIEW {view} AS SELECT {', '.join(columns)} FROM {lines}")
    temp.append(view)
    record.update({"sha256": _fingerprint(files), "rows": total - invalid,
                   "columns": dict(mapping), "headers": headers, "dropped": dropped})
    log.info("scanned %d lines from %d file(s) at %s", total, len(files), where)
    return ScannedLines(view=view, columns=columns, lines=total - invalid,
                        with_customer=with_customer, record=record,
                        numeric_customer=key is not None)


def _first_wrong(con: duckdb.DuckDBPyConnection, reader: str, condition: str, role: str,
                 header: str, expected: str, count: int, where: str) -> InputError:
    # Found wrong by the counting pass; read again only to show the first value.
    first = con.execute(f"SELECT {_quote(header)} FROM {reader} WHERE {condition} "
                        f"LIMIT 1").fetchone()
    value = first[0] if first else None
    more = f" ({count - 1} more bad value{'s' if count > 2 else ''} in this column)" \
        if count > 1 else ""
    hint = (f"; column {header!r} holds only numbers, some negative or fractional: map {role} "
            f"to its own column in source.columns.{role}") if expected.startswith("an id") else ""
    return InputError(f"{role} must be {expected}, got {value!r}{more}{hint}", file=where,
                      column=header)
