"""Reading a source into a typed raw table whose columns are named for their roles.

A source is opened in two steps: first its headers (cheap for every kind), so the roles can
be mapped and a missing column reported before any data is read; then only the mapped
columns are loaded. Types are then fixed column by column, vectorised, and the first bad value
of a column is reported with its file, column and row.

Files may be gzipped or sit alone in a zip archive; delimited text may be separated by commas,
semicolons, tabs, pipes or runs of whitespace, with or without a header line. Tables already in
memory (pandas, pyarrow, DuckDB, polars) go through the same mapping and typing.
"""
from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import logging
import re
import sys
import zipfile
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from segmint._secrets import expand_env, redact
from segmint.errors import InputError
from segmint.spec import DEFAULT_COLUMN_NAMES, ROLES, SourceSpec

__all__ = ["read_source", "read_frame", "is_table"]

logger = logging.getLogger(__name__)

_TEXT_ROLES = ("customer", "invoice", "product", "country")
_NUMERIC_ROLES = ("quantity", "price", "amount")
_FLOAT_ROLES = ("price", "amount")  # always float64; quantity is int64 when it can be
# Cell texts that mean "no value" in a numeric or date column (text columns keep them as text).
_MISSING_TOKENS = ["", "nan", "NaN", "NA", "N/A", "NULL", "null", "None", "NaT"]
_SNIFF_BYTES = 32_768
_DELIMITERS = ",;\t|"
_WHITESPACE = "whitespace"  # the delimiter value that stands for runs of spaces and tabs
_DELIMITED = ("csv", "tsv", "whitespace")
_ZIP_MAGIC = b"PK\x03\x04"
_GZIP_MAGIC = b"\x1f\x8b"
_FORMAT_BY_SUFFIX = {".csv": "csv", ".txt": "csv", ".tsv": "tsv", ".tab": "tsv",
                     ".parquet": "parquet", ".pq": "parquet", ".xlsx": "excel", ".xlsm": "excel",
                     ".ndjson": "ndjson", ".jsonl": "ndjson"}
# What read_frame takes: (module, class, how messages name it). Looked up in sys.modules, so
# an optional library is never imported just to learn that an object is not one of its tables.
_TABLE_TYPES = (("pandas", "DataFrame", "pandas DataFrame"), ("pyarrow", "Table", "pyarrow Table"),
                ("duckdb", "DuckDBPyRelation", "DuckDB relation"),
                ("polars", "DataFrame", "polars DataFrame"))


@dataclass
class _Opened:
    """A source whose headers are known and whose columns can be loaded on demand."""

    where: str  # how errors name the source: a path, a redacted URL, "db.duckdb (table t)"
    headers: list[str]
    load: Callable[[list[str] | None], pd.DataFrame]  # None: every column, types inferred
    # 1-based data row -> where it is in the source, e.g. "line 7"; None when rows are all one knows.
    locate: Callable[[int], str | None] = lambda row: None
    record: dict[str, Any] = field(default_factory=dict)  # what the manifest records
    close: Callable[[], None] = lambda: None  # database connections end here


@dataclass
class _Content:
    """What a file holds: the file itself, or the bytes inside its gzip or zip wrapper."""

    where: str  # how errors name it: the path, or "archive.zip (member 'sales.csv')"
    path: Path  # the file on disk
    data: bytes | None = None  # None: read the file on disk as it is

    def take_bytes(self) -> bytes:
        # Handed over, not kept: the text decoded from them is the copy that lives on.
        data = self.path.read_bytes() if self.data is None else self.data
        self.data = None
        return data

    def handle(self) -> Path | io.BytesIO:
        return self.path if self.data is None else io.BytesIO(self.data)


# --------------------------------------------------------------------------- entry points

def read_source(source: SourceSpec, *, required: Sequence[str] = (),
                optional: Sequence[str] = ()) -> pd.DataFrame:
    """Read a source into a table whose columns are the roles asked for.

    Each role in ``required`` and ``optional`` is looked up among the source's headers: the
    header named by ``source.columns[role]`` if the spec maps it, else the first of
    :data:`segmint.spec.DEFAULT_COLUMN_NAMES` present (exact match first, then ignoring case,
    spaces and underscores). The result holds one column per role found, named for the role
    and in the order of :data:`segmint.spec.ROLES`, and no other column. Types are fixed:

    - ``customer``, ``invoice``, ``product``, ``country``: pandas ``string`` with ``<NA>`` for
      missing; integral floats lose their ``.0`` (``17850.0`` -> ``"17850"``); text is stripped.
      Delimited files are read as text for these roles, so ``00001`` stays ``"00001"``.
    - ``quantity``: ``int64`` when every value is present and integral, else ``float64``.
    - ``price`` and ``amount`` (a line total): ``float64``.
    - ``date``: ``datetime64[us]``, from ISO 8601, ``12/1/2010 8:26`` (month first), ``19970101``
      and a few other common layouts, one layout per column. A column of 8-digit integers
      (``19970101`` in a Parquet int64 column) is read as yyyymmdd.

    With no roles asked for at all, the whole table is returned as read, its types inferred by
    the reader (pandas for text files): a customer table. There an id column such as ``00001``
    becomes the number 1; ask for the ``customer`` role to keep it as text.

    Files: CSV/TSV/TXT (delimiter sniffed among ``, ; tab |``, else runs of whitespace when
    every line splits into the same number of fields; ``source.delimiter`` or
    ``source.format: whitespace`` force it), Parquet, Excel .xlsx, NDJSON; each may be gzipped
    or be the one data file of a ``.zip`` (``__MACOSX/`` and dot-files are ignored). A text file
    without a header line needs ``header: false`` and ``names``, which name the columns in
    file order; ``names`` with a header line replace its names (as many are needed).

    Lines whose quantity, price or amount is missing, infinite or beyond 1e15 in magnitude, or
    whose date is before 1900 or after tomorrow, are dropped and counted (``source.invalid:
    error`` makes the first one an error instead). A missing customer is not invalid.

    A query (DuckDB or SQLAlchemy) must be a single SELECT (``WITH ... SELECT`` counts) and is
    run so that it cannot write: reading a source changes nothing. ``${NAME}`` in a URL is
    filled from the environment when connecting; what is recorded shows the URL redacted.

    ``df.attrs["source"]`` records what was read: ``file`` (or ``url`` / ``duckdb``), ``format``,
    ``rows``, ``sha256`` (first 16 hex digits of the SHA-256 of the file's bytes on disk, for
    files; of the archive for a zip member, named in ``member``), ``columns`` (role -> header)
    and, when roles are asked for, ``dropped`` (reason -> lines, e.g. ``{"price missing": 12}``;
    each line counted once, under the first of its reasons).

    Parameters
    ----------
    source : SourceSpec
        A file as above, a DuckDB database file with ``table`` or ``query``, or a SQLAlchemy
        ``url`` with ``table`` or ``query``.
    required : sequence of str
        Roles that must be found.
    optional : sequence of str
        Roles read when present. A role mapped in ``source.columns`` must be present anyway.

    Returns
    -------
    pandas.DataFrame

    Raises
    ------
    InputError
        The source is missing, empty or unreadable; a required or explicitly mapped column is
        absent; two columns share a name; a line has more or fewer fields than the header (or
        ``names``); a quantity, price or amount is not a number; a date cannot be parsed; a
        query is not a single SELECT; with ``invalid: error``, an invalid value. The error names
        the file, the column (as spelled in the file) and the 1-based data row.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from segmint.spec import SourceSpec
    >>> folder = Path(tempfile.mkdtemp())
    >>> csv_path = folder / "sales.csv"
    >>> _ = csv_path.write_text("Invoice;Customer ID;Price\\n536365;17850.0;2.55\\n"
    ...                         "536366;;3.39\\n")
    >>> df = read_source(SourceSpec(path=str(csv_path)), required=["customer", "invoice"],
    ...                  optional=["price", "quantity"])
    >>> df
      customer invoice  price
    0    17850  536365   2.55
    1     <NA>  536366   3.39
    >>> df.attrs["source"]["columns"]
    {'customer': 'Customer ID', 'invoice': 'Invoice', 'price': 'Price'}

    A whitespace-separated file without a header (CDNOW's layout):

    >>> cdnow = folder / "cdnow.txt"
    >>> _ = cdnow.write_text("00001 19970101  1  11.77\\n00002 19970112  2  20.76\\n")
    >>> source = SourceSpec(path=str(cdnow), header=False, names=["customer", "date", "cds", "amount"],
    ...                     columns={"quantity": "cds"})
    >>> read_source(source, required=["customer", "date", "quantity", "amount"])
      customer       date  quantity  amount
    0    00001 1997-01-01         1   11.77
    1    00002 1997-01-12         2   20.76
    """
    return _read_opened(_open(source), source, required, optional)


def read_headers(source: SourceSpec) -> list[str]:
    """A source's column names as :func:`read_source` would see them, without loading its
    rows (a delimited file is decoded to find its delimiter and header line).

    Examples
    --------
    >>> import tempfile
    >>> from segmint.spec import SourceSpec
    >>> path = f"{tempfile.mkdtemp()}/t.txt"
    >>> _ = open(path, "w").write("id   spend  visits\\n1   2.5  3\\n2   4.0  1\\n")
    >>> read_headers(SourceSpec(path=path))
    ['id', 'spend', 'visits']
    """
    opened = _open(source)
    try:
        return list(opened.headers)
    finally:
        opened.close()


def is_table(obj: object) -> bool:
    """Whether ``obj`` is a table in memory that :func:`read_frame` reads.

    A pandas DataFrame, a pyarrow Table, a DuckDB relation or a polars DataFrame; not a path,
    a spec or anything else. No library is imported to answer.

    Parameters
    ----------
    obj : object
        Anything.

    Returns
    -------
    bool

    Examples
    --------
    >>> is_table(pd.DataFrame({"a": [1]})), is_table("sales.csv"), is_table([[1, 2]])
    (True, False, False)
    """
    return _table_kind(obj) is not None


def read_frame(frame: Any, source: SourceSpec | None = None, *,
               required: Sequence[str] = (), optional: Sequence[str] = (),
               name: str | None = None) -> pd.DataFrame:
    """:func:`read_source` for a table already in memory.

    The same role mapping (from ``source.columns`` or the usual headers), types and located
    errors. Of ``source`` only ``columns`` and ``dayfirst`` are used; the table's own column
    names are its headers.

    Parameters
    ----------
    frame : pandas.DataFrame, pyarrow.Table, duckdb.DuckDBPyRelation or polars.DataFrame
        The table (see :func:`is_table`). Others are converted through Arrow at the edge.
    source : SourceSpec, optional
        Column mapping and date order.
    required, optional : sequence of str
        Roles, as for :func:`read_source`.
    name : str, optional
        What messages call the table in place of a file; by default its kind, e.g.
        ``"pyarrow Table"``.

    Returns
    -------
    pandas.DataFrame
        ``attrs["source"]`` holds ``frame`` (the name), ``rows``, ``columns`` and ``sha256``:
        the first 16 hex digits of the SHA-256 of
        ``pd.util.hash_pandas_object(table, index=False).values.tobytes()`` followed by the
        column names joined by newlines (UTF-8), a fingerprint of the content read.

    Raises
    ------
    InputError
        ``frame`` is not a table of a kind listed above, or its data is bad as for
        :func:`read_source`.

    Examples
    --------
    >>> raw = pd.DataFrame({"InvoiceNo": ["1"], "CustomerID": [17850.0], "UnitPrice": ["2.5"]})
    >>> df = read_frame(raw, required=["customer", "invoice", "price"])
    >>> df.values.tolist()
    [['17850', '1', 2.5]]
    >>> df.attrs["source"]["frame"], df.attrs["source"]["rows"]
    ('pandas DataFrame', 1)
    """
    from segmint.spec import SourceSpec

    kind = _table_kind(frame)
    label = name or kind
    if kind is None:
        kinds = [f"a {shown}" for _, _, shown in _TABLE_TYPES]
        raise InputError(f"cannot read a {type(frame).__module__}.{type(frame).__qualname__} as a "
                         f"table; read_frame takes {', '.join(kinds[:-1])} or {kinds[-1]}",
                         file=name)
    table = _to_pandas(frame, kind, str(label)).reset_index(drop=True)
    source = source or SourceSpec(path=str(label))
    opened = _Opened(where=str(label), headers=[str(c) for c in table.columns],
                     load=lambda cols: table if cols is None else table[cols],
                     record={"frame": label, "sha256": _frame_fingerprint(table)})
    return _read_opened(opened, source, required, optional)


def _table_kind(obj: object) -> str | None:
    for module, attr, shown in _TABLE_TYPES:
        cls = getattr(sys.modules.get(module), attr, None)
        if isinstance(cls, type) and isinstance(obj, cls):
            return shown
    return None


def _to_pandas(frame: Any, kind: str, where: str) -> pd.DataFrame:
    if isinstance(frame, pd.DataFrame):
        return frame
    import pyarrow as pa

    try:
        if kind == "DuckDB relation":
            arrow = frame.arrow()  # a RecordBatchReader in DuckDB >= 1.4, a Table before
            table = arrow.read_all() if isinstance(arrow, pa.RecordBatchReader) else arrow
        elif kind == "polars DataFrame":
            table = frame.to_arrow()
        else:
            table = frame
        return table.to_pandas(date_as_object=False)
    except (pa.ArrowException, RuntimeError, ValueError) as exc:
        # DuckDB's errors derive from RuntimeError / ValueError: a relation runs its query here.
        raise InputError(f"cannot be read as a table ({type(exc).__name__}: {exc})",
                         file=where) from None


def _frame_fingerprint(frame: pd.DataFrame) -> str:
    try:
        hashed = pd.util.hash_pandas_object(frame, index=False)
    except TypeError:  # cells pandas cannot hash (lists, dicts): their text stands in
        hashed = pd.util.hash_pandas_object(frame.astype(str), index=False)
    names = "\n".join(str(c) for c in frame.columns).encode("utf-8")
    return _sha256_16(hashed.to_numpy().tobytes() + names)


def _read_opened(opened: _Opened, source: SourceSpec, required: Sequence[str],
                 optional: Sequence[str]) -> pd.DataFrame:
    roles = _check_roles(required, optional)
    try:
        if not opened.headers:
            raise InputError("is empty (no columns)", file=opened.where)
        _refuse_repeated_headers(opened.headers, opened.where)
        mapping = _map_roles(opened, source, roles, required)
        # Only the mapped columns are loaded (all of them when no role is asked for).
        raw = opened.load(list(dict.fromkeys(mapping.values())) if roles else None)
    finally:
        opened.close()
    raw = raw.reset_index(drop=True)
    if len(raw) == 0:
        raise InputError("holds no data rows (a header alone, or an empty table)", file=opened.where)
    if roles:
        dayfirst = bool(getattr(source, "dayfirst", False))
        decimal = _decimal_mark(raw, mapping, opened, getattr(source, "decimal", None))
        columns = {role: _convert(raw[header], role, header, opened, dayfirst, decimal)
                   for role, header in mapping.items()}
        out, dropped = _drop_invalid(pd.DataFrame(columns), mapping, opened,
                                     getattr(source, "invalid", "drop"))
        opened.record["dropped"] = dropped
    else:
        out = raw
    out.attrs["source"] = {**opened.record, "rows": len(out), "columns": dict(mapping),
                           "headers": list(opened.headers)}
    logger.info("read %d rows from %s", len(out), opened.where)
    return out


def _check_roles(required: Sequence[str], optional: Sequence[str]) -> list[str]:
    # Given as a str by mistake, "customer" would be read as seven one-letter roles.
    for name, roles in (("required", required), ("optional", optional)):
        if isinstance(roles, str):
            raise TypeError(f"{name} is a sequence of role names, got the string {roles!r}")
        unknown = sorted(set(roles) - set(ROLES))
        if unknown:
            raise ValueError(f"unknown roles in {name}: {unknown}; roles are {list(ROLES)}")
    asked = set(required) | set(optional)
    return [role for role in ROLES if role in asked]


# --------------------------------------------------------------------------- header mapping

def _squash(name: str) -> str:
    return re.sub(r"[\s_]+", "", str(name)).casefold()


def _find_header(wanted: str, headers: list[str]) -> str | None:
    if wanted in headers:
        return wanted
    loose = [h for h in headers if _squash(h) == _squash(wanted)]
    return loose[0] if len(loose) == 1 else None


def _map_roles(opened: _Opened, source: SourceSpec, roles: list[str],
               required: Sequence[str]) -> dict[str, str]:
    headers = opened.headers
    mapping: dict[str, str] = {}
    # Explicit mappings are checked even for roles not asked for: a typo there is still a typo.
    for role, wanted in source.columns.items():
        found = _find_header(wanted, headers)
        if found is None:
            raise InputError(
                f"has no column {wanted!r}, which source.columns maps to role {role!r}; "
                f"its columns are {headers}", file=opened.where, column=wanted)
        if role in roles:
            mapping[role] = found
    for role in roles:
        if role in mapping:
            continue
        candidates = DEFAULT_COLUMN_NAMES[role]
        found = next((c for c in candidates if c in headers), None)
        if found is None:
            found = next((h for c in candidates for h in headers if _squash(h) == _squash(c)), None)
        if found is not None:
            mapping[role] = found
        elif role in required:
            raise InputError(
                f"has no column for role {role!r}: expected one of {list(candidates)} (or set "
                f"source.columns.{role} to its name); its columns are {headers}",
                file=opened.where, column=candidates[0])
    _refuse_one_column_for_two_roles(mapping, source, opened.where)
    return {role: mapping[role] for role in ROLES if role in mapping}


def _refuse_one_column_for_two_roles(mapping: dict[str, str], source: SourceSpec,
                                     where: str) -> None:
    # customer and invoice both read from "InvoiceNo": a typo in source.columns, never intended.
    role_of: dict[str, str] = {}
    for role in (r for r in ROLES if r in mapping):
        header = mapping[role]
        if header in role_of:
            first = role_of[header]
            how = {r: "source.columns" if r in source.columns else "its usual name"
                   for r in (first, role)}
            raise InputError(f"column {header!r} is mapped to two roles: {first} (by {how[first]}) "
                             f"and {role} (by {how[role]}); map each role to its own column in "
                             f"source.columns", file=where, column=header)
        role_of[header] = role


# --------------------------------------------------------------------------- opening sources

def _open(source: SourceSpec) -> _Opened:
    if source.url or source.duckdb:
        if not source.header:
            raise InputError("'header: false' is for text files without a header line; a database "
                             "table names its columns ('names' can still rename them)",
                             file=source.duckdb)  # not the URL: it may hold a password
        opened = _open_sqlalchemy(source) if source.url else _open_duckdb(source)
        return _renamed(opened, source.names) if source.names else opened
    path = Path(source.path)  # type: ignore[arg-type]
    if not path.exists():
        raise InputError("not found", file=str(path))
    if path.is_dir():
        raise InputError("is a folder; the source needs a file", file=str(path))
    if path.stat().st_size == 0:
        raise InputError("is empty (0 bytes)", file=str(path))
    content, record = _content(source, path)
    kind = _file_format(source, record.get("member", path.name), content.where)
    if kind not in _DELIMITED and not source.header:
        raise InputError(f"'header: false' is for delimited text files (csv, tsv, whitespace); a "
                         f"{kind} file names its columns ('names' can still rename them)",
                         file=content.where)
    opener = {"csv": _open_delimited, "tsv": _open_delimited, "whitespace": _open_delimited,
              "parquet": _open_parquet, "excel": _open_excel, "ndjson": _open_ndjson}[kind]
    opened = opener(source, content, kind)
    if source.names and kind not in _DELIMITED:
        opened = _renamed(opened, source.names)
    opened.record = {**record, "format": kind, **opened.record}
    return opened


def _content(source: SourceSpec, path: Path) -> tuple[_Content, dict[str, Any]]:
    """What the file holds once unwrapped, and the record of the file on disk."""
    with open(path, "rb") as handle:
        magic = handle.read(4)
    record: dict[str, Any] = {"file": str(path)}
    is_zip = path.name.lower().endswith(".zip") or (
        magic == _ZIP_MAGIC and "excel" not in (_format_by_name(path.name), source.format))
    if is_zip:  # a misnamed zip is found by its first bytes (an .xlsx is a zip too, and is not one)
        raw = path.read_bytes()
        record["sha256"] = _sha256_16(raw)
        member, data = _unzip(raw, path, source)
        del raw
        record["member"] = member
        where = f"{path} (member {member!r})"
        if data[:2] == _GZIP_MAGIC:
            data = _gunzip(data, where)
        return _Content(where=where, path=path, data=data), record
    if magic[:2] == _GZIP_MAGIC:
        raw = path.read_bytes()
        record["sha256"] = _sha256_16(raw)
        return _Content(where=str(path), path=path, data=_gunzip(raw, str(path))), record
    content = _Content(where=str(path), path=path)
    if _format_by_name(path.name) in (*_DELIMITED, "ndjson") or source.format in (*_DELIMITED,
                                                                                  "ndjson"):
        content.data = path.read_bytes()  # read whole anyway: hash the same bytes
        record["sha256"] = _sha256_16(content.data)
    else:
        record["sha256"] = _sha256_16(path=path)
    return content, record


def _format_by_name(name: str) -> str | None:
    name = name.lower()
    name = name[:-3] if name.endswith(".gz") else name
    return next((kind for suffix, kind in _FORMAT_BY_SUFFIX.items() if name.endswith(suffix)), None)


def _file_format(source: SourceSpec, name: str, where: str) -> str:
    if source.format != "auto":
        return source.format
    kind = _format_by_name(name)
    if kind is None:
        raise InputError("cannot tell the format from the file name; set source.format to one of "
                         "csv, tsv, whitespace, parquet, excel, ndjson", file=where)
    return kind


def _unzip(data: bytes, path: Path, source: SourceSpec) -> tuple[str, bytes]:
    """The name and bytes of the one data file in a zip archive."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise InputError(f"is not a readable zip archive ({exc})", file=str(path)) from None
    with archive:
        # macOS adds __MACOSX/ resource forks and .DS_Store files to the archives it makes.
        # Members are read into memory, never extracted, so a name like "../x.csv" is harmless.
        members = [info.filename for info in archive.infolist() if not info.is_dir()
                   and not any(part == "__MACOSX" or (part.startswith(".") and part not in (".", ".."))
                               for part in info.filename.split("/"))]
        data_files = [m for m in members if _format_by_name(m) is not None]
        if not data_files and source.format != "auto":
            data_files = members  # the spec says what the file is; any name will do
        if len(data_files) != 1:
            hint = ("; it looks like an Excel workbook: set source.format to excel"
                    if "xl/workbook.xml" in members else "")
            raise InputError(
                f"is a zip archive holding {len(data_files)} data files; it needs exactly one "
                f"(.csv, .tsv, .txt, .parquet, .xlsx, .ndjson, optionally .gz); its members are "
                f"{members}{hint}", file=str(path))
        member = data_files[0]
        try:
            content = archive.read(member)
        except (zipfile.BadZipFile, RuntimeError, NotImplementedError, OSError) as exc:
            # RuntimeError: encrypted; NotImplementedError: an unsupported compression method
            raise InputError(f"cannot extract {member!r} ({exc})", file=str(path)) from None
    if not content:
        raise InputError("is empty (0 bytes)", file=f"{path} (member {member!r})")
    return member, content


def _gunzip(data: bytes, where: str) -> bytes:
    try:
        data = gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as exc:
        raise InputError(f"is not a readable gzip file ({exc})", file=where) from None
    if not data:
        raise InputError("is empty (0 bytes once decompressed)", file=where)
    return data


def _renamed(opened: _Opened, names: list[str]) -> _Opened:
    """``opened`` with its columns called ``names``, in order."""
    if len(names) != len(opened.headers):
        raise InputError(f"has {len(opened.headers)} columns {opened.headers} but source.names "
                         f"gives {len(names)}: {names}", file=opened.where)
    original = dict(zip(names, opened.headers, strict=True))
    load = opened.load

    def load_renamed(columns: list[str] | None) -> pd.DataFrame:
        frame = load(None if columns is None else [original[c] for c in columns])
        return frame.set_axis(list(names) if columns is None else columns, axis=1)

    opened.headers, opened.load = list(names), load_renamed
    return opened


def _sha256_16(data: bytes | None = None, path: Path | None = None) -> str:
    digest = hashlib.sha256()
    if data is not None:
        digest.update(data)
    else:
        with open(path, "rb") as handle:  # type: ignore[arg-type]
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:16]


def _decode(data: bytes, encoding: str | None, where: str) -> tuple[str, str]:
    """Text and the encoding used: the spec's, else UTF-8 (BOM or not), else windows-1252."""
    def line_of(exc: UnicodeDecodeError) -> str:
        line = data.count(b"\n", 0, exc.start) + 1
        return f"byte 0x{data[exc.start]:02x} on line {line}"

    if encoding is not None:
        try:
            text = data.decode(encoding)
        except LookupError:
            raise InputError(f"unknown encoding {encoding!r} in source.encoding", file=where) from None
        except UnicodeDecodeError as exc:
            raise InputError(f"is not valid {encoding}: {line_of(exc)}; set source.encoding to the "
                             f"file's encoding (windows-1252 is common for Excel exports)",
                             file=where) from None
        return text.removeprefix("\ufeff"), encoding
    try:
        return data.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError as exc:
        utf8_error = line_of(exc)
    try:
        text = data.decode("windows-1252")
    except UnicodeDecodeError as exc:
        raise InputError(f"is neither UTF-8 ({utf8_error}) nor windows-1252 ({line_of(exc)}); set "
                         f"source.encoding", file=where) from None
    logger.info("%s is not UTF-8 (%s); read as windows-1252", where, utf8_error)
    return text, "windows-1252"


def _sniff_delimiter(text: str, where: str) -> str:
    sample = text[:_SNIFF_BYTES]
    if len(text) > _SNIFF_BYTES and "\n" in sample:
        sample = sample[: sample.rindex("\n")]  # whole lines only
    try:
        return csv.Sniffer().sniff(sample, delimiters=_DELIMITERS).delimiter
    except csv.Error:
        pass
    if _splits_on_whitespace(sample):
        logger.info("%s: no delimiter among %r; fields are separated by whitespace", where,
                    _DELIMITERS)
        return _WHITESPACE
    first_line = sample.split("\n", 1)[0]
    counts = {d: first_line.count(d) for d in _DELIMITERS}
    best = max(counts, key=counts.get)  # type: ignore[arg-type]
    delimiter = best if counts[best] else ","
    logger.info("%s: delimiter not sniffed; using %r from the header line", where, delimiter)
    return delimiter


def _splits_on_whitespace(sample: str) -> bool:
    # CDNOW's "00001 19970101  1  11.77": every line the same number (>= 2) of fields, and no
    # character that would rather be a delimiter.
    if any(c in sample for c in ",;|"):
        return False
    counts = {len(fields) for _, fields in _records(sample, _WHITESPACE)}
    return len(counts) == 1 and counts.pop() >= 2


def _open_delimited(source: SourceSpec, content: _Content, kind: str) -> _Opened:
    where = content.where
    data = content.take_bytes()
    text, encoding = _decode(data, source.encoding, where)
    del data
    if not text.strip():
        raise InputError("is empty (no header line)" if source.header else "is empty (no lines)",
                         file=where)
    if source.delimiter:
        delimiter = {"tab": "\t", "\\t": "\t"}.get(source.delimiter, source.delimiter)
    elif kind in ("tsv", "whitespace"):
        delimiter = {"tsv": "\t", "whitespace": _WHITESPACE}[kind]
    else:
        delimiter = _sniff_delimiter(text, where)
    names = source.names
    layout: dict[str, Any] = {}  # header / names arguments for pandas
    # The expected number of fields per line, once known; a ragged line is reported against it.
    expected: dict[str, Any] = {}

    def read(**kwargs: Any) -> pd.DataFrame:
        sep = r"\s+" if delimiter == _WHITESPACE else delimiter
        try:
            return pd.read_csv(io.StringIO(text), sep=sep, **layout, **kwargs)
        except pd.errors.EmptyDataError:
            raise InputError("is empty (no header line)", file=where) from None
        except (pd.errors.ParserError, ValueError) as exc:
            if expected:
                _check_fields(text, delimiter, source.header, where, **expected)
            raise InputError(f"cannot be parsed with delimiter {delimiter!r}: {exc}",
                             file=where) from None

    if source.header:
        headers = [str(h) for h in read(nrows=0).columns]
        expected.update(count=len(headers), what=f"the header line has {len(headers)}")
        if names is None:
            _refuse_data_as_header(headers, where)
            # pandas renames a repeated header ("Quantity" twice: the second becomes
            # "Quantity.1"); the header line as written says which columns repeat.
            written = next(_records(text, delimiter), (0, []))[1]
            _refuse_repeated_headers(written, where)
        if names is not None:
            if len(names) != len(headers):
                raise InputError(f"has {len(headers)} columns in its header line {headers} but "
                                 f"source.names gives {len(names)}: {names}", file=where)
            layout.update(header=0, names=list(names))
            headers = list(names)
    else:
        assert names is not None  # SourceSpec requires names with header: false
        expected.update(count=len(names), what=f"source.names gives {len(names)}")
        # pandas would quietly take the extra leading fields of a longer first line as an index
        _check_fields(text, delimiter, False, where, first_only=True, **expected)
        layout.update(header=None, names=list(names))
        headers = list(names)

    def load(columns: list[str] | None) -> pd.DataFrame:
        if columns is None:
            frame = read()
        else:
            # Every cell as text: the typing step sees the exact value to report when it is
            # bad, and an id keeps its leading zeros. All columns are parsed (not usecols) so a
            # row with more fields than the header, which would shift values into the wrong
            # columns, is an error and not silent.
            frame = read(dtype=str, keep_default_na=False, na_values=[""])
        if len(frame) and (frame.iloc[:, -1].isna().any()
                           or not isinstance(frame.index, pd.RangeIndex)):
            # pandas fills a short line with missing values (a field missing in the middle moves
            # every later value one column left), and takes the extra leading fields of longer
            # lines as an index when the first data line is one of them: both are errors.
            _check_fields(text, delimiter, source.header, where, **expected)
        return frame if columns is None else frame[columns]

    return _Opened(where=where, headers=headers, load=load,
                   locate=lambda row: _line_of_row(text, delimiter, source.header, row),
                   record={"format": "whitespace" if delimiter == _WHITESPACE else kind,
                           "encoding": encoding, "delimiter": delimiter})


def _records(text: str, delimiter: str) -> Iterator[tuple[int, list[str]]]:
    """(first line, fields) of each record pandas reads: blank lines are skipped."""
    if delimiter == _WHITESPACE:
        for number, line in enumerate(text.split("\n"), start=1):
            fields = line.split()
            if fields:
                yield number, fields
        return
    if len(delimiter) != 1:  # pandas takes a longer separator as a regular expression
        for number, line in enumerate(text.split("\n"), start=1):
            if line.strip():
                yield number, re.split(delimiter, line.rstrip("\r"))
        return
    _allow_long_fields()
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    start = 1
    for record in reader:
        # pandas skips empty and whitespace-only lines, but "," is a record of missing values
        if len(record) > 1 or (record and record[0].strip()):
            yield start, record
        start = reader.line_num + 1


def _allow_long_fields() -> None:
    # The csv module refuses fields over 128 KiB that pandas reads; the located-error path
    # must read every field pandas did. The limit is a C long: sys.maxsize overflows on Windows.
    limit = sys.maxsize
    while csv.field_size_limit() < limit:
        try:
            csv.field_size_limit(limit)
        except OverflowError:
            limit //= 2


def _looks_like_data(name: str) -> bool:
    """A header that reads as a value: a number (not a year such as 2019, which wide tables use
    as headers), or a date."""
    text = name.strip()
    if re.fullmatch(r"(19|20)\d\d", text):
        return False
    if re.fullmatch(r"[+-]?(\d+([.,]\d*)?|[.,]\d+)([eE][+-]?\d+)?", text):
        return True
    return bool(re.fullmatch(r"\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}", text))


def _refuse_data_as_header(headers: list[str], where: str) -> None:
    """A file whose first line is data, read with a header, loses its first row and names its
    columns after values ("1", "Male", "19"): stop and say how to read it."""
    data_like = [h for h in headers if _looks_like_data(h)]
    if headers and len(data_like) * 2 >= len(headers):
        raise InputError(
            f"its first line looks like data, not a header: {headers[:8]}; if the file has no "
            f"header, set source.header: false and name the columns in source.names (one per "
            f"column); if it is a header, set source.names to these names", file=where)


def _check_fields(text: str, delimiter: str, header: bool, where: str, *, count: int, what: str,
                  first_only: bool = False) -> None:
    """Raise for the first record with other than ``count`` fields (error path, short lines)."""
    records = _records(text, delimiter)
    if header:
        next(records, None)
    for row, (line, fields) in enumerate(records, start=1):
        if len(fields) != count:
            shown = "runs of whitespace" if delimiter == _WHITESPACE else repr(delimiter)
            why = ("a field is missing, and every value after it would land one column early"
                   if len(fields) < count else "a value may hold the separator without quotes")
            raise InputError(f"line {line} has {len(fields)} field{'s' if len(fields) != 1 else ''} "
                             f"separated by {shown}, but {what}: {why} (set source.delimiter if "
                             f"{shown} is not the separator)", file=where, row=row)
        if first_only:
            return


def _refuse_repeated_headers(headers: Sequence[str], where: str) -> None:
    """Two columns of one name: a role would find the first and the other be renamed."""
    first_at: dict[str, int] = {}
    for position, name in enumerate(headers, start=1):
        if not name:  # blank headers: pandas names each apart ("Unnamed: 3")
            continue
        if name in first_at:
            raise InputError(f"columns {first_at[name]} and {position} are both named {name!r}; "
                             f"rename one, or name every column in source.names", file=where,
                             column=name)
        first_at[name] = position


def _line_of_row(text: str, delimiter: str, header: bool, row: int) -> str | None:
    # Error path only: walk the records up to the bad one to count physical lines, which
    # differ from rows when a quoted cell spans lines or blank lines are skipped.
    records = _records(text, delimiter)
    if header:
        next(records, None)
    for number, (line, _) in enumerate(records, start=1):
        if number == row:
            return f"line {line}"
    return None


def _open_parquet(source: SourceSpec, content: _Content, kind: str) -> _Opened:
    import pyarrow as pa
    import pyarrow.parquet as pq

    where = content.where
    try:
        headers = list(pq.ParquetFile(content.handle()).schema_arrow.names)
    except (pa.ArrowException, OSError) as exc:
        raise InputError(f"is not a readable Parquet file ({exc})", file=where) from None

    def load(columns: list[str] | None) -> pd.DataFrame:
        return pd.read_parquet(content.handle(), columns=columns)

    return _Opened(where=where, headers=headers, load=load)


def _open_excel(source: SourceSpec, content: _Content, kind: str) -> _Opened:
    where = content.where
    try:
        book = pd.ExcelFile(content.handle(), engine="openpyxl")
    except Exception as exc:  # openpyxl raises zipfile, KeyError and its own errors for bad files
        raise InputError(f"is not a readable Excel .xlsx file ({type(exc).__name__}: {exc})",
                         file=where) from None
    with book:
        sheet = 0 if source.sheet is None else source.sheet
        names = book.sheet_names
        if (isinstance(sheet, int) and not 0 <= sheet < len(names)) or \
                (isinstance(sheet, str) and sheet not in names):
            raise InputError(f"has no sheet {sheet!r}; its sheets are {names}", file=where)
        frame = pd.read_excel(book, sheet_name=sheet)
        if source.names is None:  # pandas renamed a repeated header; the sheet's own row says
            written = pd.read_excel(book, sheet_name=sheet, header=None, nrows=1)
            _refuse_repeated_headers([str(h) if pd.notna(h) else "" for h in written.iloc[0]]
                                     if len(written) else [], where)
    sheet_name = names[sheet] if isinstance(sheet, int) else sheet
    frame.columns = [str(c) for c in frame.columns]
    return _Opened(where=f"{where} (sheet {sheet_name!r})", headers=list(frame.columns),
                   load=lambda columns: frame if columns is None else frame[columns],
                   locate=lambda row: f"sheet row {row + 1}",
                   record={"sheet": sheet_name})


def _open_ndjson(source: SourceSpec, content: _Content, kind: str) -> _Opened:
    where = content.where
    data = content.take_bytes()
    text, encoding = _decode(data, source.encoding or "utf-8", where)
    del data
    if not text.strip():
        raise InputError("is empty (no records)", file=where)
    try:
        # dtype=False: no guessing of types or dates; the typing step does that, per role.
        frame = pd.read_json(io.StringIO(text), lines=True, dtype=False)
    except ValueError as exc:
        raise InputError(f"is not valid NDJSON: {_first_bad_json_line(text) or exc}",
                         file=where) from None
    frame.columns = [str(c) for c in frame.columns]
    return _Opened(where=where, headers=list(frame.columns),
                   load=lambda columns: frame if columns is None else frame[columns],
                   record={"encoding": encoding})


def _first_bad_json_line(text: str) -> str | None:
    # Error path only: pandas does not say which line is broken.
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            return f"line {number}: {exc.msg} (column {exc.colno})"
        if not isinstance(value, dict):
            return f"line {number}: a record must be a JSON object, got {type(value).__name__}"
    return None


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _open_duckdb(source: SourceSpec) -> _Opened:
    import duckdb

    database = redact(str(source.duckdb))
    what = f"query {source.query!r}" if source.query else f"table {source.table!r}"
    where = f"{database} ({redact(what)})"
    record: dict[str, Any] = {"duckdb": database}
    record.update({"query": redact(source.query)} if source.query else {"table": source.table})
    if source.query:
        _check_duckdb_select(source.query, where)
    if str(source.duckdb) != ":memory:":
        path = Path(str(source.duckdb))
        if not path.is_file():  # duckdb.connect would create an empty database instead
            raise InputError("DuckDB database not found", file=database)
        record["sha256"] = _sha256_16(path=path)
    try:
        con = duckdb.connect(str(source.duckdb), read_only=str(source.duckdb) != ":memory:")
    except duckdb.Error as exc:
        raise InputError(f"is not a readable DuckDB database ({exc})", file=database) from None
    try:
        _lock_down_duckdb(con)
        relation = con.sql(source.query) if source.query else con.table(str(source.table))
        if relation is None:
            raise InputError(f"{what} returns no table", file=database)
        headers = list(relation.columns)
    except (duckdb.Error, InputError) as exc:
        con.close()
        if isinstance(exc, InputError):
            raise
        raise InputError(f"cannot read {what}: {exc}", file=database) from None

    def load(columns: list[str] | None) -> pd.DataFrame:
        try:
            chosen = relation if columns is None else relation.select(*map(_quote, columns))
            return chosen.df()
        except duckdb.Error as exc:
            raise InputError(f"cannot read {what}: {exc}", file=database) from None

    return _Opened(where=where, headers=headers, load=load, record=record, close=con.close)


# Reading a source changes nothing anywhere. A query is one SELECT (DuckDB's own parser says
# which kind each statement is); the connection then reads local files only (no network, no
# extension installed or loaded) and its settings are locked, so the query cannot undo that.
_DUCKDB_LOCKDOWN = ("SET allowed_directories = ['/']", "SET autoinstall_known_extensions = false",
                    "SET autoload_known_extensions = false", "SET enable_external_access = false",
                    "SET lock_configuration = true")
_ONLY_SELECT = "only a single SELECT (or WITH ... SELECT) statement is allowed in source.query"


def _check_duckdb_select(query: str, where: str) -> None:
    import duckdb

    try:
        with duckdb.connect() as parser:
            statements = parser.extract_statements(query)
    except duckdb.Error as exc:
        raise InputError(f"source.query is not valid SQL ({exc})", file=where) from None
    if len(statements) != 1:
        raise InputError(f"{_ONLY_SELECT}; it holds {len(statements)} statements", file=where)
    kind = statements[0].type
    if kind != duckdb.StatementType.SELECT:
        raise InputError(f"{_ONLY_SELECT}; it is a {kind.name} statement", file=where)


def _lock_down_duckdb(con: Any) -> None:
    for setting in _DUCKDB_LOCKDOWN:
        con.execute(setting)


def _quiet_sqlalchemy(fn: Callable[..., Any]) -> Callable[..., Any]:
    """SQLAlchemy warns on stderr about what it reflects (types it does not know, missing
    tables): keep those lines off the user's terminal; what matters becomes an InputError."""
    import functools
    import warnings

    @functools.wraps(fn)
    def quiet(*args: Any, **kwargs: Any) -> Any:
        import sqlalchemy as sa

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", sa.exc.SAWarning)
            return fn(*args, **kwargs)
    return quiet


@_quiet_sqlalchemy
def _open_sqlalchemy(source: SourceSpec) -> _Opened:
    import sqlalchemy as sa

    # Every text about the URL is redacted; ${NAME} references stay as written (they are no secret)
    # and are filled from the environment only for connecting.
    shown = redact(str(source.url))
    what = f"query {source.query!r}" if source.query else f"table {source.table!r}"
    where = f"{shown} ({redact(what)})"
    if source.query:
        _check_sql_select(source.query, where)
    try:
        url = sa.make_url(expand_env(str(source.url)))
    except KeyError as exc:
        raise InputError(str(exc.args[0]), file=shown) from None
    except sa.exc.ArgumentError as exc:
        raise InputError(f"is not a database URL ({exc})", file=shown) from None
    record: dict[str, Any] = {"url": shown}
    record.update({"query": redact(source.query)} if source.query else {"table": source.table})
    backend = url.get_backend_name()
    if backend == "sqlite" and url.database not in (None, "", ":memory:") \
            and not url.database.startswith("file:"):
        path = Path(url.database)
        if not path.is_file():  # sqlite would create an empty database instead
            raise InputError("SQLite database not found", file=shown)
        record["sha256"] = _sha256_16(path=path)
    try:
        engine = sa.create_engine(url)
    except (sa.exc.NoSuchModuleError, ImportError) as exc:
        raise InputError(f"no database driver installed for this URL ({exc})", file=shown) from None

    def read_only(conn: Any) -> Any:
        # The database refuses writes too (a WITH can hold a DELETE in PostgreSQL); other
        # backends rely on the single-SELECT check alone.
        if backend == "postgresql":
            conn.exec_driver_sql("SET TRANSACTION READ ONLY")
        elif backend == "sqlite":
            conn.exec_driver_sql("PRAGMA query_only = ON")
        return conn

    try:
        with engine.connect() as conn:
            if source.query:
                frame = pd.read_sql(sa.text(source.query), read_only(conn))
                frame.columns = [str(c) for c in frame.columns]
                headers = list(frame.columns)
                table = None
            else:
                schema, _, name = str(source.table).rpartition(".")
                table = sa.Table(name, sa.MetaData(), schema=schema or None, autoload_with=conn)
                headers = [c.name for c in table.columns]
    except sa.exc.NoSuchTableError:
        tables = sa.inspect(engine).get_table_names()
        engine.dispose()
        raise InputError(f"has no table {source.table!r}; its tables are {tables}", file=shown) from None
    except (sa.exc.SQLAlchemyError, pd.errors.DatabaseError) as exc:  # pandas wraps a query's error
        engine.dispose()
        raise InputError(f"cannot read {what}: {redact(str(exc))}", file=shown) from None

    def load(columns: list[str] | None) -> pd.DataFrame:
        try:
            if table is None:
                return frame if columns is None else frame[columns]
            chosen = table.select() if columns is None else sa.select(*(table.c[h] for h in columns))
            with engine.connect() as conn:
                return pd.read_sql(chosen, read_only(conn))
        except (sa.exc.SQLAlchemyError, pd.errors.DatabaseError) as exc:
            raise InputError(f"cannot read {what}: {redact(str(exc))}", file=shown) from None

    return _Opened(where=where, headers=headers, load=_quiet_sqlalchemy(load), record=record,
                   close=engine.dispose)


# Words that make a statement write (or lock) whatever its first word: WITH d AS (DELETE ...),
# SELECT ... INTO new_table, SELECT ... FOR UPDATE. Found outside strings, quoted names and comments.
_WRITING_WORDS = frozenset({"insert", "update", "delete", "merge", "into"})
# A quoted string or name, a comment, a PostgreSQL $tag$ string, or one word or character.
_SQL_TOKEN = re.compile(r"""'(?:[^']|'')*'?|"(?:[^"]|"")*"?|`[^`]*`?|\[[^\]]*\]?|--[^\n]*|/\*.*?(?:\*/|$)"""
                        r"|\$(?P<tag>[A-Za-z_]*)\$.*?(?:\$(?P=tag)\$|$)|[A-Za-z_][A-Za-z0-9_$]*|.",
                        re.DOTALL)


def _check_sql_select(query: str, where: str) -> None:
    """Refuse anything but one SELECT (or WITH ... SELECT): no parser needed for that much."""
    words: list[str] = []
    statements = 0
    pending = False  # a statement has started and not yet ended with ";"
    for match in _SQL_TOKEN.finditer(query):
        token = match.group(0)
        if token.isspace() or token.startswith(("--", "/*")):
            continue
        if token == ";":
            statements += pending
            pending = False
            continue
        if statements:  # something after the first statement's ";"
            raise InputError(f"{_ONLY_SELECT}; it holds more than one statement", file=where)
        pending = True
        if token[0].isalpha() or token[0] == "_":
            words.append(token.casefold())
    statements += pending
    if statements == 0:
        raise InputError(f"{_ONLY_SELECT}; it is empty", file=where)
    if words[:1] not in (["select"], ["with"]):
        first = words[0].upper() if words else query.strip()[:20]
        raise InputError(f"{_ONLY_SELECT}; it starts with {first}", file=where)
    writing = sorted(w.upper() for w in set(words) & _WRITING_WORDS)
    if writing:
        raise InputError(f"{_ONLY_SELECT}; it holds {', '.join(writing)}, which can write "
                         f"(quote a column of that name)", file=where)


# --------------------------------------------------------------------------- invalid values

#: Numbers beyond this magnitude are no quantity, price or amount (an overflow, a misread id).
#: Beyond this magnitude a number is no customer figure: its square loses all precision in
#: scaling and distances (and overflows near 1e154). Readers and recipes share it.
LARGEST_VALUE = 1e15
_EARLIEST_DATE = pd.Timestamp("1900-01-01")


def _invalid_reasons(out: pd.DataFrame) -> dict[str, np.ndarray]:
    """Why lines are invalid, in a fixed order: reason -> boolean mask over the rows."""
    reasons: dict[str, np.ndarray] = {}
    for role in (r for r in ROLES if r in out.columns):
        values = out[role]
        if role in _NUMERIC_ROLES:
            numbers = values.to_numpy(dtype="float64", na_value=np.nan)
            reasons[f"{role} missing"] = np.isnan(numbers)
            reasons[f"{role} infinite"] = np.isinf(numbers)
            with np.errstate(invalid="ignore"):
                reasons[f"{role} beyond 1e15"] = np.isfinite(numbers) & (np.abs(numbers) > LARGEST_VALUE)
        elif role == "date":
            dates = values
            if isinstance(dates.dtype, pd.DatetimeTZDtype):
                dates = dates.dt.tz_convert("UTC").dt.tz_localize(None)
            # Later than tomorrow by the local clock: a day of slack for time zones.
            latest = pd.Timestamp.now().normalize() + pd.Timedelta(days=2)
            reasons["date in the future"] = (dates >= latest).to_numpy(dtype=bool)
            reasons["date before 1900"] = (dates < _EARLIEST_DATE).to_numpy(dtype=bool)
    return reasons


def _drop_invalid(out: pd.DataFrame, mapping: dict[str, str], opened: _Opened,
                  invalid: str) -> tuple[pd.DataFrame, dict[str, int]]:
    """``out`` without its invalid lines, and how many were dropped for each reason (a line
    counts once, under its first reason); with ``invalid="error"`` the first one raises."""
    reasons = _invalid_reasons(out)
    taken = np.zeros(len(out), dtype=bool)
    dropped: dict[str, int] = {}
    for reason, mask in reasons.items():
        new = mask & ~taken
        if new.any():
            dropped[reason] = int(new.sum())
            taken |= new
    if not dropped:
        return out, {}
    if invalid == "error":
        first = int(np.flatnonzero(taken)[0])
        reason = next(r for r, mask in reasons.items() if mask[first])
        role = reason.split(" ", 1)[0]
        place = opened.locate(first + 1)
        value = out[role].iloc[first]
        shown = "" if pd.isna(value) and not np.isinf(value) else f" ({value})"
        raise InputError(
            f"{reason}{shown}{f' on {place} of the file' if place else ''}; "
            f"{int(taken.sum())} line(s) hold a missing, infinite or out-of-range quantity, "
            f"price or amount or a date before 1900 or in the future (source.invalid: drop "
            f"drops them)", file=opened.where, column=mapping[role], row=first + 1)
    if taken.all():
        raise InputError(f"every line is invalid: {_counts(dropped)}", file=opened.where)
    kept = out[~taken].reset_index(drop=True)
    if "quantity" in kept and kept["quantity"].dtype.kind == "f":
        quantity = kept["quantity"]
        if (quantity % 1 == 0).all():  # integral once the missing ones are gone
            kept["quantity"] = quantity.astype("int64")
    logger.warning("%s: dropped %d of %d lines as invalid: %s (set source.invalid: error to stop "
                   "at the first)", opened.where, int(taken.sum()), len(out), _counts(dropped))
    return kept, dropped


def _counts(dropped: dict[str, int]) -> str:
    return ", ".join(f"{reason} {count:,}" for reason, count in dropped.items())


# --------------------------------------------------------------------------- typing columns

def _bad_value(values: pd.Series, bad: pd.Series, role: str, header: str, opened: _Opened,
               expected: str, hint: str = "") -> InputError:
    positions = np.flatnonzero(bad.to_numpy(dtype=bool))
    first = int(positions[0])
    row = first + 1
    place = opened.locate(row)
    more = len(positions) - 1
    details = [f"{place} of the file"] if place else []
    if more:
        details.append(f"{more} more bad value{'s' if more > 1 else ''} in this column")
    suffix = f" ({'; '.join(details)})" if details else ""
    value = values.iloc[first]
    value = value.item() if isinstance(value, np.generic) else value  # 5, not np.int64(5)
    return InputError(f"{role} must be {expected}, got {value!r}{suffix}{hint}",
                      file=opened.where, column=header, row=row)


def _convert(values: pd.Series, role: str, header: str, opened: _Opened, dayfirst: bool,
             decimal: str = ".") -> pd.Series:
    if role in _TEXT_ROLES:
        # The stripped text serves both steps: made once (from an object column it is the
        # slowest part, pandas building the string array value by value).
        stripped = None if _is_number_dtype(values) else _stripped_text(values)
        _refuse_measure_as_label(values, role, header, opened, stripped)
        return _to_text(values, role, stripped)
    if role in _NUMERIC_ROLES:
        return _to_number(values, role, header, opened, decimal)
    return _to_datetime(values, role, header, opened, dayfirst)


# Numbers written with a decimal comma: 1.234,5 (a point grouping thousands) or 2,55.
_GROUPED_COMMA = r"[+-]?\d{1,3}(?:\.\d{3})*(?:,\d+)?"
_PLAIN_COMMA = r"[+-]?\d+(?:,\d+)?"
_ANY_COMMA = rf"(?=.*,)(?:{_GROUPED_COMMA}|{_PLAIN_COMMA})"


def _decimal_mark(raw: pd.DataFrame, mapping: dict[str, str], opened: _Opened,
                  declared: str | None) -> str:
    """The decimal mark of the numeric roles' text: the declared one, else "," when a
    ";"-separated file writes every such value with a decimal comma (at least one has a comma)."""
    numeric = [mapping[role] for role in _NUMERIC_ROLES if role in mapping
               and not _is_number_dtype(raw[mapping[role]])]
    if declared is not None or not numeric or opened.record.get("delimiter") != ";":
        decimal = declared or "."
    else:
        present = pd.concat([_text_for_parsing(raw[h]).dropna() for h in dict.fromkeys(numeric)])
        comma = present.str.fullmatch(f"{_GROUPED_COMMA}|{_PLAIN_COMMA}")
        decimal = "," if len(present) and comma.all() and present.str.contains(",").any() else "."
        if decimal == ",":
            logger.info("%s: numbers are written with a decimal comma (e.g. %r); read with ',' as "
                        "the decimal mark and '.' grouping thousands", opened.where,
                        str(present[present.str.contains(",")].iloc[0]))
    if decimal == "," and numeric:
        opened.record["decimal"] = ","
    return decimal


def _is_number_dtype(values: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)


def _strings_are_arrow() -> bool:
    """Whether pandas' ``"string"`` dtype keeps its values in Arrow (pandas 3, or the option
    ``mode.string_storage``): the fast paths below build Arrow arrays, else pandas' own way."""
    return getattr(pd.api.types.pandas_dtype("string"), "storage", None) == "pyarrow"


def _stripped_text(values: pd.Series) -> pd.Series:
    """``values.astype("string").str.strip()``; whole numbers are written by Arrow (the same
    digits as ``str(int)``, without a Python string per value)."""
    if (isinstance(values.dtype, np.dtype) and values.dtype.kind in "iu"
            and _strings_are_arrow()):
        import pyarrow as pa

        digits = pa.array(values.to_numpy()).cast(pa.large_string())
        return pd.Series(pd.array(digits, dtype="string"), index=values.index, name=values.name)
    return values.astype("string").str.strip()


def _to_text(values: pd.Series, role: str, stripped: pd.Series | None = None) -> pd.Series:
    """A label column as pandas ``string``; ``stripped`` is :func:`_stripped_text` of
    ``values`` when the caller has it already."""
    if _is_number_dtype(values) and pd.api.types.is_float_dtype(values):
        floats = values.astype("float64")
        if _strings_are_arrow():
            return _float_text(floats)
        text = floats.astype("string")
        integral = floats.notna() & (floats % 1 == 0) & (floats.abs() < 2**53)
        text[integral] = floats[integral].astype("int64").astype("string")
        return text
    text = _stripped_text(values) if stripped is None else stripped
    text = text.mask(text == "")
    # IDs that went through a float column somewhere upstream: "17850.0" -> "17850". Only a
    # text with a point can match, and most columns have none: the regex is spared them.
    if role == "customer" and text.str.contains(".", regex=False).any():
        text = text.str.replace(r"^([+-]?\d+)\.0*$", r"\1", regex=True)
    return text


def _float_text(floats: pd.Series) -> pd.Series:
    """float64 ids as text: whole numbers below 2**53 without ".0" ("17850"), others as
    pandas writes them ("1e+16", "2.5"), NaN as <NA>. Arrow writes the whole numbers."""
    import pyarrow as pa

    numbers = floats.to_numpy(dtype="float64")
    with np.errstate(invalid="ignore"):
        integral = ~np.isnan(numbers) & (numbers % 1 == 0) & (np.abs(numbers) < 2**53)
    whole = pa.array(np.where(integral, numbers, 0).astype("int64"), mask=~integral)
    pieces = [whole.cast(pa.large_string())]
    others = np.flatnonzero(~integral & ~np.isnan(numbers))  # fractions, inf, beyond 2**53
    if len(others):
        written = pd.Series(numbers[others]).astype("string").to_numpy(dtype=object)
        pieces.append(pa.array(written, type=pa.large_string()))
        order = np.arange(len(numbers))
        order[others] = len(numbers) + np.arange(len(others))
        text = pa.concat_arrays(pieces).take(pa.array(order))
    else:
        text = pieces[0]
    return pd.Series(pd.array(text, dtype="string"), index=floats.index, name=floats.name)


def _refuse_measure_as_label(values: pd.Series, role: str, header: str, opened: _Opened,
                             stripped: pd.Series | None = None) -> None:
    """A customer, invoice, product or country column holding only numbers, some negative or
    fractional, is a measure (a quantity, a price) mapped by mistake: ids are whole and >= 0.
    ``stripped`` is :func:`_stripped_text` of ``values`` when the caller has it already."""
    if _is_number_dtype(values):
        numbers = values.astype("float64")
    elif pd.api.types.is_bool_dtype(values) or pd.api.types.is_datetime64_any_dtype(values):
        return
    else:
        text = _text_for_parsing(values, stripped)
        if _labels_by_distinct_values(text):
            return
        parsed = pd.to_numeric(text.to_numpy(dtype=object, na_value=None), errors="coerce")
        numbers = pd.Series(parsed, index=values.index, dtype="float64")
        if (numbers.isna() & text.notna()).any():  # some value is no number: labels
            return
    with np.errstate(invalid="ignore"):
        measure = (numbers < 0) | (numbers % 1 != 0) & numbers.notna()
    if measure.any():
        raise _bad_value(values, measure, role, header, opened, "an id or a name, not a measure",
                         f"; column {header!r} holds only numbers, some negative or fractional: "
                         f"map {role} to its own column in source.columns.{role}")


def _labels_by_distinct_values(text: pd.Series) -> bool:
    """True when the text column is surely labels (some value is no number, or no number is
    negative or fractional), decided on its distinct values: an invoice column repeats each
    number on every line of the invoice. False: undecided, the whole column is parsed.

    ``pd.to_numeric`` parses each value alone; what it makes of the column as a whole (ints or
    floats, uint64) follows from which kinds of value it saw, which the distinct values (and
    one None for the missing) show as well as the whole column."""
    present = text.dropna()
    distinct = np.asarray(present.unique(), dtype=object)
    given = np.ones(len(distinct), dtype=bool)
    if len(present) < len(text):
        distinct = np.concatenate([distinct, np.array([None], dtype=object)])
        given = np.append(given, False)
    try:
        parsed = pd.to_numeric(distinct, errors="coerce")
        numbers = pd.Series(parsed, dtype="float64")
    except (TypeError, ValueError):
        return False
    if (numbers.isna() & given).any():  # some value is no number
        return True
    with np.errstate(invalid="ignore"):
        measure = (numbers < 0) | (numbers % 1 != 0) & numbers.notna()
    return not measure.any()


def _text_for_parsing(values: pd.Series, stripped: pd.Series | None = None) -> pd.Series:
    text = _stripped_text(values) if stripped is None else stripped
    return text.mask(text.isin(_MISSING_TOKENS))


def _to_number(values: pd.Series, role: str, header: str, opened: _Opened,
               decimal: str = ".") -> pd.Series:
    if _is_number_dtype(values):
        whole = values.dtype.kind in "iu" and not values.isna().any()
        numbers = values.astype("int64" if whole else "float64")
    else:
        text = _text_for_parsing(values)
        expected, hint = "a number", ""
        if decimal == ",":
            # A point groups thousands, so 1.5 is no number here (it is not read as 15).
            grouped_wrong = text.str.contains(".", regex=False) & ~text.str.fullmatch(_GROUPED_COMMA)
            text = text.mask(grouped_wrong.fillna(False), "not a number")
            text = text.str.replace(".", "", regex=False).str.replace(",", ".", regex=False)
            expected = "a number with a decimal comma (source.decimal: ',')"
        else:
            hint = ("; it has a decimal comma: set source.decimal: ','" if text.str.fullmatch(
                _ANY_COMMA).fillna(False).any() else "")
        # An object array (None for missing) parses to plain float64/int64, not nullable types.
        parsed = pd.to_numeric(text.to_numpy(dtype=object, na_value=None), errors="coerce")
        numbers = pd.Series(parsed, index=values.index)
        bad = numbers.isna() & text.notna()
        if bad.any():
            raise _bad_value(values, bad, role, header, opened, expected, hint)
    if role in _FLOAT_ROLES:
        return numbers.astype("float64")
    if numbers.dtype.kind in "iu":
        return numbers.astype("int64")
    floats = numbers.astype("float64")
    if floats.notna().all() and (floats % 1 == 0).all() and (floats.abs() < 2**63).all():
        return floats.astype("int64")
    return floats


def _date_formats(dayfirst: bool) -> list[str | None]:
    md = "%d/%m" if dayfirst else "%m/%d"
    return ["ISO8601", f"{md}/%Y %H:%M", f"{md}/%Y %H:%M:%S", f"{md}/%Y", f"{md}/%y %H:%M",
            f"{md}/%y", "%Y/%m/%d %H:%M:%S", "%Y/%m/%d %H:%M", "%Y/%m/%d", "%d.%m.%Y %H:%M:%S",
            "%d.%m.%Y %H:%M", "%d.%m.%Y", "%d-%b-%Y %H:%M:%S", "%d-%b-%Y", "%d %b %Y %H:%M",
            "%d %b %Y", "%Y%m%d"]


def _parse_dates(text: pd.Series, fmt: str | None) -> pd.Series:
    try:
        return pd.to_datetime(text, format=fmt, errors="coerce")
    except ValueError:  # offsets that differ from row to row: one instant each, in UTC
        return pd.to_datetime(text, format=fmt, errors="coerce", utc=True)


def _warn_if_day_and_month_ambiguous(present: pd.Series, header: str, opened: _Opened,
                                     dayfirst: bool) -> None:
    """When no date of the column has a day above 12 (03/01/19 could be 3 January or 1 March),
    the order read is a guess: say which one was taken and how to change it."""
    fields = pd.Series(present.unique()).str.extract(r"^\s*(\d{1,2})/(\d{1,2})/").astype("float64")
    if fields.isna().any().any() or (fields > 12).any().any():
        return
    order, other = ("day", "false") if dayfirst else ("month", "true")
    opened.record["date_order_ambiguous"] = True
    logger.warning("%s: column %r: no date tells day from month (every day and month is 12 or "
                   "less, e.g. %r); read %s first. If that is wrong, set source.dayfirst: %s",
                   opened.where, header, str(present.iloc[0]), order, other)


def _to_datetime(values: pd.Series, role: str, header: str, opened: _Opened,
                 dayfirst: bool) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(values):
        if isinstance(values.dtype, pd.DatetimeTZDtype):
            return values.dt.as_unit("us")
        return values.astype("datetime64[us]")
    if _is_number_dtype(values) or pd.api.types.is_bool_dtype(values):
        bad = values.notna()
        if not bad.any():  # an empty column typed as numbers by the reader (Excel, JSON)
            return pd.Series(pd.NaT, index=values.index, dtype="datetime64[us]")
        if _is_number_dtype(values):
            floats = values.astype("float64")
            if (floats[bad] % 1 == 0).all() and floats[bad].between(10_000_000, 99_999_999).all():
                # 8-digit numbers: yyyymmdd (CDNOW's 19970101), as a number-typed reader saw it
                dates = pd.to_datetime(floats.astype("Int64").astype("string"), format="%Y%m%d",
                                       errors="coerce")
                wrong = dates.isna() & bad
                if wrong.any():
                    raise _bad_value(values, wrong, role, header, opened,
                                     "a date, read as yyyymmdd from 8-digit numbers")
                return dates.astype("datetime64[us]")
        raise _bad_value(values, bad, role, header, opened, "a date or a date text, not a number")
    text = _text_for_parsing(values)
    present = text.dropna()
    if present.empty:
        return pd.Series(pd.NaT, index=values.index, dtype="datetime64[us]")
    sample = pd.Series(present.iloc[:2000].unique())
    best_format, best_parsed = None, -1
    for fmt in _date_formats(dayfirst):
        parsed = int(_parse_dates(sample, fmt).notna().sum())
        if parsed > best_parsed:
            best_format, best_parsed = fmt, parsed
        if parsed == len(sample):
            break
    dates = _parse_dates(text, best_format)
    bad = dates.isna() & text.notna()
    if bad.any():
        hint = ""
        first_bad = str(text[bad].iloc[0])
        day_first = re.match(r"^\s*(\d{1,2})/(\d{1,2})/", first_bad)
        if day_first and not dayfirst and int(day_first.group(1)) > 12:
            hint = ("; dates are read month first (12/1/2010 is 1 December); this one looks day "
                    "first: set source.dayfirst: true")
        raise _bad_value(values, bad, role, header, opened, "a date", hint)
    opened.record.setdefault("date_formats", {})[header] = best_format
    if best_format is not None and best_format.startswith(("%m/%d", "%d/%m")):
        _warn_if_day_and_month_ambiguous(present, header, opened, dayfirst)
    if isinstance(dates.dtype, pd.DatetimeTZDtype):
        return dates.dt.as_unit("us")
    return dates.astype("datetime64[us]")
