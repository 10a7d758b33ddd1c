"""BigQuery SQL, BigQuery ML's statements and table functions, translated to DuckDB.

The SQL front end reads scripts written for BigQuery (and BigQuery ML's k-means workflow) and
runs them on DuckDB. This module holds the language side of it:

* :class:`BigQueryML`, a sqlglot dialect: BigQuery plus the ML table functions
  (``ML.EVALUATE``, ``ML.CENTROIDS``, ``ML.PREDICT``, ``ML.DETECT_ANOMALIES``,
  ``ML.TRAINING_INFO``, ``ML.FEATURE_INFO``, ``ML.TRIAL_INFO``), all parsed into one node,
  :class:`MLFunction`;
* :func:`parse_script`, which splits a script into :class:`Statement` s;
* :func:`model_options` and :func:`model_transform` for ``CREATE MODEL``;
* :func:`to_duckdb`, which turns a statement that is not about models into DuckDB SQL with
  BigQuery's meaning (names, UNNEST of structs, REGEXP_EXTRACT, FARM_FINGERPRINT, ...);
* :class:`SQLError`, which every failure becomes, with the position in the BigQuery text.

Names: BigQuery's ``project.dataset.table`` and ``dataset.table`` are DuckDB's
``"dataset"."table"`` in the connection's database. The project is dropped: a BigQuery dataset is a
DuckDB schema, so two projects with a dataset of the same name share it.
"""
from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import duckdb
from sqlglot import exp
from sqlglot.dialects.bigquery import BigQuery
from sqlglot.errors import ParseError, TokenError
from sqlglot.generators.bigquery import BigQueryGenerator
from sqlglot.helper import seq_get
from sqlglot.parsers.bigquery import BigQueryParser
from sqlglot.tokens import Token, TokenType

from segmint.errors import InputError, public

__all__ = [
    "BigQueryML", "MLFunction", "ML_FUNCTIONS", "HParam", "SQLError", "Statement", "parse_script",
    "model_options", "model_transform", "to_duckdb", "register_functions", "duckdb_error",
    "duckdb_table_name",
]

logger = logging.getLogger(__name__)

#: BigQuery ML's table functions segmint understands, with the arguments each takes after
#: ``MODEL m``: "input" is ``(query)`` or ``TABLE t``, "params" a ``STRUCT(...)``; the tuple is
#: the order BigQuery writes them in, and which are required.
ML_FUNCTIONS: dict[str, tuple[tuple[str, bool], ...]] = {
    "EVALUATE": (("input", False), ("params", False)),
    "CENTROIDS": (("params", False),),
    "PREDICT": (("input", True), ("params", False)),
    "DETECT_ANOMALIES": (("params", False), ("input", False)),
    "TRAINING_INFO": (),
    "FEATURE_INFO": (),
    "TRIAL_INFO": (),
}

#: Where the script's text is kept on a parsed statement, for error positions.
_SOURCE_KEY = "segmint_source"


# --------------------------------------------------------------------------------------------
# errors


class SQLError(InputError):
    """A statement that cannot run, with the place in the user's BigQuery text.

    ``line`` and ``column`` are 1-based; ``source`` is the script, to show the line.

    Examples
    --------
    >>> error = SQLError('Syntax error: Expected ")" but got keyword FROM', line=2, column=4,
    ...                  source="SELECT a,\\n (b FROM t")
    >>> print(error)
    Syntax error: Expected ")" but got keyword FROM at [2:4]
     (b FROM t
       ^
    >>> (error.line, error.column)
    (2, 4)
    """

    def __init__(self, message: str, *, line: int | None = None, column: int | None = None,
                 source: str | None = None, file: str | None = None) -> None:
        # set before the base class renders the text
        self.line = line
        self.source = source
        self._position = column
        super().__init__(message, file=file)
        # SegmintError's ``column`` names a data column; here it is the position's column
        self.column = column  # type: ignore[assignment]

    def __str__(self) -> str:
        text = self.message
        if self.file is not None:
            text = f"file {self.file}: {text}"
        line, column = self.line, self._position
        if line is None or column is None:
            return text
        text = f"{text} at [{line}:{column}]"
        lines = (self.source or "").splitlines()
        if 1 <= line <= len(lines):
            shown = lines[line - 1].expandtabs(1)
            text += f"\n{shown}\n{' ' * (column - 1)}^"
        return text


def _line_column(source: str, offset: int) -> tuple[int, int]:
    """1-based line and column of a character offset."""
    offset = max(0, min(offset, len(source)))
    line = source.count("\n", 0, offset) + 1
    column = offset - (source.rfind("\n", 0, offset) + 1) + 1
    return line, column


def _error_at(message: str, node: exp.Expr | None, source: str | None) -> SQLError:
    """An SQLError placed at a node's first character (its first identifier that has a place)."""
    start = _start_of(node) if node is not None else None
    if start is None or source is None:
        return SQLError(message, source=source)
    line, column = _line_column(source, start)
    return SQLError(message, line=line, column=column, source=source)


def _start_of(node: exp.Expr) -> int | None:
    starts = [n.meta["start"] for n in node.walk() if isinstance(n, exp.Expr) and "start" in n.meta]
    return min(starts) if starts else None


# --------------------------------------------------------------------------------------------
# the dialect


class MLFunction(exp.Expression, exp.Func):
    """One of BigQuery ML's table functions, ``ML.<name>(MODEL m [, input] [, STRUCT(...)])``.

    ``this`` is the model (an ``exp.Table``), ``name`` the function's upper-case name (a key of
    :data:`ML_FUNCTIONS`), ``expression`` the input rows (``exp.Subquery`` or ``exp.Table``, or
    None) and ``params`` the ``exp.Struct`` of settings, or None.

    Examples
    --------
    >>> [call] = parse_script("SELECT * FROM ML.CENTROIDS(MODEL ds.m)")[0].expression.find_all(
    ...     MLFunction)
    >>> call.name, call.this.sql("bigquery")
    ('CENTROIDS', 'ds.m')
    """

    arg_types = {"this": True, "name": True, "expression": False, "params": False}

    @property
    def name(self) -> str:
        return str(self.args["name"])


@dataclass(frozen=True)
class HParam:
    """A hyperparameter search space in OPTIONS: ``HPARAM_RANGE(3, 15)`` is
    ``HParam("RANGE", (3, 15))``, ``HPARAM_CANDIDATES([3, 5, 8])`` is
    ``HParam("CANDIDATES", (3, 5, 8))``."""

    kind: str
    values: tuple[Any, ...]


def _ml_function_parser(name: str) -> Any:
    return lambda self: self._parse_ml_function(name)


class BigQueryMLParser(BigQueryParser):
    """BigQuery's parser, with BigQuery ML's table functions parsed into :class:`MLFunction`."""

    FUNCTION_PARSERS = {
        **BigQueryParser.FUNCTION_PARSERS,
        **{name: _ml_function_parser(name) for name in ML_FUNCTIONS},
    }

    def raise_error(self, message: str, token: Token | None = None) -> None:
        # remember which token failed: parse_script places the error by its offset
        self._segmint_error_token = token or self._curr  # None: the statement ended early
        super().raise_error(message, token)  # type: ignore[arg-type]

    def _parse_ml_function(self, name: str) -> exp.Expr | None:
        # only ML.<name>(...) is BigQuery ML's; tokens are ML . NAME ( and we are past the (
        before = seq_get(self._tokens, self._index - 4)
        dot = seq_get(self._tokens, self._index - 3)
        if not (before and before.text.upper() == "ML" and dot and dot.token_type == TokenType.DOT):
            builder = self.FUNCTIONS.get(name)
            args = self._parse_function_args(alias=builder is None)
            if builder is not None:
                return self.validate_expression(builder(args), args)
            return self.expression(exp.Anonymous(this=name, expressions=args))
        if not self._match_text_seq("MODEL"):
            self.raise_error(f"Expected keyword MODEL as the first argument of ML.{name}")
        model = self._parse_table_parts()
        found: dict[str, exp.Expr | None] = {"input": None, "params": None}
        order: list[str] = []
        while self._match(TokenType.COMMA):
            if self._match(TokenType.STRUCT, advance=False):
                kind, value = "params", self._parse_bitwise()
            elif self._match(TokenType.TABLE):
                kind, value = "input", self._parse_table_parts()
            elif self._match(TokenType.L_PAREN, advance=False):
                kind, value = "input", self._parse_table()
            else:
                self.raise_error(f"Expected (query), TABLE or STRUCT as an argument of ML.{name}")
                break
            allowed = dict(ML_FUNCTIONS[name])
            if kind not in allowed or found[kind] is not None:
                self.raise_error(f"ML.{name} does not take {'a STRUCT' if kind == 'params' else 'an input'}"
                                 " argument here", self._prev)
            found[kind] = value
            order.append(kind)
        expected = [kind for kind, _ in ML_FUNCTIONS[name] if kind in order]
        if order != expected:
            self.raise_error(f"ML.{name} takes its arguments in the order "
                             f"{', '.join(k for k, _ in ML_FUNCTIONS[name])}")
        for kind, required in ML_FUNCTIONS[name]:
            if required and found[kind] is None:
                self.raise_error(f"ML.{name} needs an input: (query) or TABLE t")
        return self.expression(MLFunction(this=model, name=name, expression=found["input"],
                                          params=found["params"]))

    def _parse_table_parts(self, schema: bool = False, is_db_reference: bool = False,
                           wildcard: bool = False, fast: bool = False) -> Any:
        table = super()._parse_table_parts(schema=schema, is_db_reference=is_db_reference,
                                           wildcard=wildcard, fast=fast)
        # FROM ML.CENTROIDS(...) parses as a table named by the function in "database" ML
        if isinstance(table, exp.Table) and isinstance(table.this, MLFunction):
            table.set("db", None)
            table.set("catalog", None)
        return table


def _ml_function_sql(generator: Any, node: MLFunction) -> str:
    args = [f"MODEL {generator.sql(node, 'this')}"]
    input_sql = generator.sql(node, "expression")
    if input_sql and isinstance(node.args.get("expression"), exp.Table):
        input_sql = f"TABLE {input_sql}"
    parts = {"input": input_sql, "params": generator.sql(node, "params")}
    args += [parts[kind] for kind, _ in ML_FUNCTIONS[node.name] if parts[kind]]
    return f"ML.{node.name}({', '.join(args)})"


class BigQueryMLGenerator(BigQueryGenerator):
    TRANSFORMS = {**BigQueryGenerator.TRANSFORMS, MLFunction: _ml_function_sql}


class BigQueryML(BigQuery):
    """sqlglot's BigQuery dialect with BigQuery ML's table functions.

    Examples
    --------
    >>> from sqlglot import parse_one
    >>> node = parse_one("SELECT * FROM ML.DETECT_ANOMALIES(MODEL m, STRUCT(0.02 AS contamination), "
    ...                  "TABLE d.t)", read=BigQueryML)
    >>> call = node.find(MLFunction)
    >>> call.name, call.args["expression"].sql("bigquery"), call.args["params"].sql("bigquery")
    ('DETECT_ANOMALIES', 'd.t', 'STRUCT(0.02 AS contamination)')
    >>> node.sql(BigQueryML)
    'SELECT * FROM ML.DETECT_ANOMALIES(MODEL m, STRUCT(0.02 AS contamination), TABLE d.t)'
    """

    Parser = BigQueryMLParser
    Generator = BigQueryMLGenerator


# --------------------------------------------------------------------------------------------
# scripts


@dataclass
class Statement:
    """One statement of a script: the parsed ``expression``, its ``text`` as written and the
    ``line`` it starts on in the script (1-based)."""

    expression: exp.Expr
    text: str
    line: int


def _describe_token(token: Token | None) -> str:
    """A token as BigQuery's messages name it: keyword FROM, identifier "x", ")"."""
    if token is None:
        return "end of script"
    kind = token.token_type
    if kind in (TokenType.STRING, TokenType.RAW_STRING, TokenType.BYTE_STRING):
        return f'string literal "{token.text}"'
    if kind == TokenType.NUMBER:
        return f'{"floating point" if "." in token.text else "integer"} literal "{token.text}"'
    if kind in (TokenType.VAR, TokenType.IDENTIFIER):
        return f'identifier "{token.text}"'
    if token.text[:1].isalpha():
        return f"keyword {token.text.upper()}"
    return f'"{token.text}"'


def _syntax_message(description: str, token: Token | None) -> str:
    # sqlglot's own words name its classes and tokens: say them as BigQuery would
    description = re.sub(r"\s*but got <Token[^>]*>", "", description)
    missing = re.match(r"Required keyword: '\w+' missing for <class '[\w.]*?(\w+)'>", description)
    if missing:
        description = f"Expected an expression after {missing.group(1).upper()}"
    expected = re.match(r"Expecting (.+)$", description)
    if expected:
        return f'Syntax error: Expected "{expected.group(1)}" but got {_describe_token(token)}'
    if description.startswith("Invalid expression / Unexpected token"):
        return f"Syntax error: Unexpected {_describe_token(token)}"
    if token is None:
        return f"Syntax error: {description}, got end of script"
    return f"Syntax error: {description}"


@public
def parse_script(sql: str) -> list[Statement]:
    """Parse a BigQuery script: statements separated by ``;``, comments ``#``, ``--`` and
    ``/* */`` allowed.

    Parameters
    ----------
    sql : str
        The script as the user wrote it.

    Returns
    -------
    list of Statement
        One per statement, in order; empty statements (``;;``) are skipped. Each expression keeps
        the positions of its identifiers in the whole script, and the script itself, so later
        errors (:func:`to_duckdb`) can point into it.

    Raises
    ------
    SQLError
        A syntax error, with BigQuery's wording and the ``[line:column]`` it is at.

    Examples
    --------
    >>> statements = parse_script("# train\\nCREATE MODEL d.m OPTIONS(model_type='kmeans') AS\\n"
    ...                           "SELECT 1 AS x;\\n\\nSELECT * FROM ML.CENTROIDS(MODEL d.m);")
    >>> [(s.line, type(s.expression).__name__) for s in statements]
    [(2, 'Create'), (5, 'Select')]
    >>> parse_script("SELECT a,\\n  (b FROM t")
    Traceback (most recent call last):
    ...
    segmint.sql.dialect.SQLError: Syntax error: Expected ")" but got keyword FROM at [2:6]
      (b FROM t
         ^
    """
    dialect = BigQueryML()
    try:
        tokens = dialect.tokenize(sql)
    except TokenError as error:
        found = re.search(r"(\d+):(\d+)", str(error))
        line, column = (int(found.group(1)), int(found.group(2))) if found else (None, None)
        raise SQLError(f"Syntax error: {str(error).splitlines()[0]}", line=line, column=column,
                       source=sql) from None
    statements: list[Statement] = []
    for chunk in _split_statements(tokens):
        parser = BigQueryMLParser(dialect=dialect)
        try:
            parsed = [e for e in parser.parse(chunk, sql) if e is not None]
        except ParseError as error:
            first = chunk[0]
            if first.token_type in (TokenType.VAR, TokenType.IDENTIFIER):
                # no statement starts with a name (a misspelt keyword: SELEC): say so there
                line, column = _line_column(sql, first.start)
                raise SQLError(f"Syntax error: Unexpected {_describe_token(first)}", line=line,
                               column=column, source=sql) from None
            raise _parse_error(error, getattr(parser, "_segmint_error_token", None), chunk[-1],
                               sql) from None
        if not parsed:
            continue
        start, end = chunk[0].start, chunk[-1].end
        # comments before the statement belong to its first token: start the text at the token
        expression = parsed[0]
        expression.meta[_SOURCE_KEY] = sql
        statements.append(Statement(expression, sql[start:end + 1], _line_column(sql, start)[0]))
    return statements


def _split_statements(tokens: list[Token]) -> Iterator[list[Token]]:
    chunk: list[Token] = []
    for token in tokens:
        if token.token_type == TokenType.SEMICOLON:
            if chunk:
                yield chunk
            chunk = []
        else:
            chunk.append(token)
    if chunk:
        yield chunk


def _parse_error(error: ParseError, token: Token | None, last: Token, sql: str) -> SQLError:
    description = (error.errors[0]["description"] if error.errors else str(error)).strip()
    if token is not None and token.token_type.name == "SENTINEL":  # sqlglot's end marker
        token = None
    if token is not None:
        line, column = _line_column(sql, token.start)
        return SQLError(_syntax_message(description, token), line=line, column=column, source=sql)
    # the statement ended early: place it just past its last character
    line, column = _line_column(sql, last.end + 1)
    return SQLError(_syntax_message(description, None), line=line, column=column, source=sql)


# --------------------------------------------------------------------------------------------
# CREATE MODEL


@public
def model_options(create: exp.Create) -> dict[str, Any]:
    """OPTIONS(...) of ``CREATE MODEL`` as Python values, keys in lower case.

    Strings keep the case they were written in; numbers are int or float, TRUE/FALSE bool,
    ``['a', 'b']`` a list, ``HPARAM_RANGE(a, b)`` and ``HPARAM_CANDIDATES([...])`` an
    :class:`HParam`.

    Examples
    --------
    >>> [s] = parse_script("CREATE OR REPLACE MODEL d.m OPTIONS(model_type='kmeans', "
    ...     "KMEANS_INIT_METHOD='KMEANS++', standardize_features=TRUE, max_iterations=-1.5, "
    ...     "num_clusters=HPARAM_RANGE(3, 15), x=HPARAM_CANDIDATES([3, 5]), cols=['a', 'b']) AS "
    ...     "SELECT 1 AS x")
    >>> model_options(s.expression)  # doctest: +NORMALIZE_WHITESPACE
    {'model_type': 'kmeans', 'kmeans_init_method': 'KMEANS++', 'standardize_features': True,
     'max_iterations': -1.5, 'num_clusters': HParam(kind='RANGE', values=(3, 15)),
     'x': HParam(kind='CANDIDATES', values=(3, 5)), 'cols': ['a', 'b']}
    """
    source = create.meta.get(_SOURCE_KEY)
    options: dict[str, Any] = {}
    properties = create.args.get("properties")
    for prop in properties.expressions if properties else []:
        if isinstance(prop, exp.Property) and not isinstance(prop, exp.TransformModelProperty):
            options[prop.name.lower()] = _option_value(prop.args["value"], source)
    return options


def _option_value(node: exp.Expr, source: str | None) -> Any:
    if isinstance(node, exp.Literal):
        if node.is_string:
            return node.this
        number = float(node.this)
        return int(number) if number.is_integer() and not re.search(r"[.eE]", node.this) else number
    if isinstance(node, exp.Boolean):
        return bool(node.this)
    if isinstance(node, exp.Null):
        return None
    if isinstance(node, exp.Neg):
        value = _option_value(node.this, source)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return -value
    if isinstance(node, exp.Array):
        return [_option_value(e, source) for e in node.expressions]
    if isinstance(node, exp.Paren):
        return _option_value(node.this, source)
    if isinstance(node, exp.Anonymous) and str(node.this).upper() in ("HPARAM_RANGE",
                                                                         "HPARAM_CANDIDATES"):
        kind = str(node.this).upper().removeprefix("HPARAM_")
        values = [_option_value(e, source) for e in node.expressions]
        if kind == "CANDIDATES" and len(values) == 1 and isinstance(values[0], list):
            values = values[0]
        return HParam(kind, tuple(values))
    raise _error_at(f"Unsupported value in OPTIONS: {node.sql('bigquery')}", node, source)


@public
def model_transform(create: exp.Create) -> list[exp.Expr] | None:
    """The expressions of ``TRANSFORM(...)`` in ``CREATE MODEL``, or None without one.

    Examples
    --------
    >>> [s] = parse_script("CREATE MODEL d.m TRANSFORM(ML.STANDARD_SCALER(x) OVER () AS x, y) "
    ...                    "OPTIONS(model_type='kmeans') AS SELECT 1 AS x, 2 AS y")
    >>> [e.sql("bigquery") for e in model_transform(s.expression)]
    ['ML.STANDARD_SCALER(x) OVER () AS x', 'y']
    """
    properties = create.args.get("properties")
    for prop in properties.expressions if properties else []:
        if isinstance(prop, exp.TransformModelProperty):
            return list(prop.expressions)
    return None


# --------------------------------------------------------------------------------------------
# names


def duckdb_table_name(table: exp.Table) -> exp.Table:
    """The DuckDB table for a BigQuery one: ``project.dataset.table`` and ``dataset.table``
    become ``"dataset"."table"``; a one-part name is left as it is.

    Examples
    --------
    >>> from sqlglot import parse_one
    >>> t = parse_one("SELECT 1 FROM `bigquery-public-data.google_analytics_sample.ga_sessions_*`",
    ...               read=BigQueryML).find(exp.Table)
    >>> duckdb_table_name(t).sql("duckdb")
    '"google_analytics_sample"."ga_sessions_*"'
    """
    if not table.args.get("db"):
        return table
    mapped = exp.Table(this=exp.to_identifier(table.name, quoted=True),
                       db=exp.to_identifier(table.db, quoted=True))
    return mapped


def _split_bigquery_name(name: str) -> tuple[str | None, str]:
    """(dataset, table) of a written name such as ``project.dataset.table``; project dropped."""
    parts = name.strip().strip("`").split(".")
    if len(parts) == 1:
        return None, parts[0]
    return parts[-2], parts[-1]


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


# --------------------------------------------------------------------------------------------
# UDFs


def _farm_fingerprint(values: Any) -> Any:
    import farmhash
    import numpy as np
    import pyarrow as pa

    hashed = [None if v is None else farmhash.Fingerprint64(v) for v in values.to_pylist()]
    unsigned = np.array([0 if h is None else h for h in hashed], dtype=np.uint64)
    mask = np.array([h is None for h in hashed], dtype=bool)
    # BigQuery's FARM_FINGERPRINT is the same 64 bits read as a signed INT64
    return pa.array(unsigned.view(np.int64), type=pa.int64(), mask=mask)


@public
def register_functions(con: duckdb.DuckDBPyConnection) -> None:
    """Install BigQuery functions DuckDB lacks on a connection (again is a no-op):
    ``farm_fingerprint(VARCHAR) -> BIGINT`` with BigQuery's values.

    Examples
    --------
    >>> con = duckdb.connect()
    >>> register_functions(con); register_functions(con)
    >>> con.sql("SELECT farm_fingerprint('test'), farm_fingerprint(NULL)").fetchall()
    [(8581389452482819506, None)]
    """
    present = con.sql("SELECT count(*) FROM duckdb_functions() WHERE function_name = "
                      "'farm_fingerprint'").fetchall()
    if present[0][0]:
        return
    from duckdb.func import FunctionNullHandling, PythonUDFType
    from duckdb.sqltypes import BIGINT, VARCHAR

    con.create_function("farm_fingerprint", _farm_fingerprint, [VARCHAR], BIGINT,
                        type=PythonUDFType.ARROW, null_handling=FunctionNullHandling.SPECIAL)


# --------------------------------------------------------------------------------------------
# translation to DuckDB


@dataclass
class _Source:
    """A range variable of a FROM clause as BigQuery sees it."""

    alias: str                                  # its name in the query (maybe generated)
    columns: dict[str, tuple[str, Any]]         # lower-case name -> (name, DuckDBPyType)
    element: Any = None                         # a value table's (UNNEST's) element type
    value_table: bool = False
    wildcard: bool = False


@dataclass
class _Scope:
    sources: list[_Source] = field(default_factory=list)
    parent: _Scope | None = None
    using: set[str] = field(default_factory=set)

    def by_alias(self, name: str) -> _Source | None:
        for source in self.sources:
            if source.alias.lower() == name.lower():
                return source
        return None


def _fields(duck_type: Any) -> dict[str, tuple[str, Any]]:
    """A STRUCT type's fields by lower-case name, else nothing."""
    if duck_type is None or getattr(duck_type, "id", None) != "struct":
        return {}
    return {name.lower(): (name, child) for name, child in duck_type.children}


def _element(duck_type: Any) -> Any:
    if duck_type is not None and getattr(duck_type, "id", None) in ("list", "array"):
        return duck_type.children[0][1]
    return None


def _path_of(node: exp.Expr) -> list[exp.Identifier] | None:
    """The identifiers of a column path ``a.b.c.d``: a Column, or Dots over a Column."""
    trail: list[exp.Identifier] = []
    while isinstance(node, exp.Dot):
        if not isinstance(node.expression, exp.Identifier):
            return None
        trail.append(node.expression)
        node = node.this
    if not isinstance(node, exp.Column) or not isinstance(node.this, exp.Identifier):
        return None
    parts = [p for p in (node.args.get(k) for k in ("catalog", "db", "table", "this"))
             if isinstance(p, exp.Identifier)]
    return parts + trail[::-1]


def _ident(name: str) -> exp.Identifier:
    return exp.to_identifier(name, quoted=True)


def _build_path(alias: str, column: str, fields: list[str]) -> exp.Expr:
    # (alias.column).field: the parentheses keep DuckDB from reading alias.column.field as
    # schema.table.column
    node: exp.Expr = exp.Column(this=_ident(column), table=_ident(alias))
    if fields:
        node = exp.Paren(this=node)
    for name in fields:
        node = exp.Dot(this=node, expression=_ident(name))
    return node


_QUERY_TYPES = (exp.Select, exp.SetOperation)
_TYPES_ERROR = (duckdb.Error,)


class _Translator:
    def __init__(self, con: duckdb.DuckDBPyConnection, source: str | None) -> None:
        self.con = con
        self.source = source
        self.ctes: list[tuple[str, str]] = []       # (name, DuckDB SQL) visible now
        self.counter = 0

    # -- helpers

    def error(self, message: str, node: exp.Expr | None) -> SQLError:
        return _error_at(message, node, self.source)

    def fresh(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}{self.counter}"

    def with_ctes(self, sql: str) -> str:
        if not self.ctes:
            return sql
        return "WITH " + ", ".join(f"{_quote(n)} AS ({q})" for n, q in self.ctes) + " " + sql

    def relation_types(self, from_sql: str, node: exp.Expr) -> dict[str, tuple[str, Any]]:
        try:
            relation = self.con.sql(self.with_ctes(f"SELECT * FROM {from_sql} LIMIT 0"))
        except duckdb.Error as error:
            raise duckdb_error(error, node, self.source) from None
        return {name.lower(): (name, kind) for name, kind in zip(relation.columns, relation.types,
                                                                    strict=True)}

    # -- statements

    def statement(self, node: exp.Expr) -> list[str]:
        if node.find(MLFunction):
            raise self.error("ML functions must be replaced by their results before translation",
                             node.find(MLFunction))
        if isinstance(node, _QUERY_TYPES) or isinstance(node, exp.Subquery):
            self.query(node, None)
            return [self.sql(node)]
        if isinstance(node, exp.Create):
            return self.create(node)
        if isinstance(node, exp.Drop):
            kind = str(node.args.get("kind") or "").upper()
            if kind in ("TABLE", "VIEW"):
                node.set("tables", [duckdb_table_name(t) for t in node.args.get("tables") or []])
                return [self.sql(node)]
            if kind == "SCHEMA":
                return [self.sql(self.schema_name(node))]
        if isinstance(node, exp.Insert):
            target = node.this
            table = target.this if isinstance(target, exp.Schema) else target
            if isinstance(table, exp.Table):
                return self.write(node, table)
        if isinstance(node, (exp.Update, exp.Delete)) and isinstance(node.this, exp.Table):
            # the target's name mapped as any table's; its columns are the target's own
            node.set("this", duckdb_table_name(node.this))
            return [self.sql(node)]
        kind = type(node).__name__.upper()
        if isinstance(node, exp.Command):
            kind = str(node.this).upper()
        raise self.error(f"Statement not supported here: {kind}", node)

    def schema_name(self, node: exp.Expr) -> exp.Expr:
        table = node.this
        if isinstance(table, exp.Table):
            # CREATE SCHEMA [project.]dataset: the schema is the dataset (sqlglot parses the
            # name into the table's db part)
            name = table.db or table.name
            node.set("this", exp.Table(db=_ident(name.split(".")[-1])))  # `p.ds` in backticks
        return node

    def schema_statements(self, table: exp.Table) -> list[str]:
        if not table.args.get("db"):
            return []
        return [f"CREATE SCHEMA IF NOT EXISTS {_quote(table.db)}"]

    def create(self, node: exp.Create) -> list[str]:
        kind = str(node.args.get("kind") or "").upper()
        if kind == "SCHEMA":
            return [self.sql(self.schema_name(node))]
        if kind not in ("TABLE", "VIEW"):
            raise self.error(f"CREATE {kind} is not supported here", node)
        target = node.this
        table = target.this if isinstance(target, exp.Schema) else target
        if not isinstance(table, exp.Table):
            raise self.error("CREATE needs a table name", node)
        return self.write(node, table)

    def write(self, node: exp.Create | exp.Insert, table: exp.Table) -> list[str]:
        """CREATE/INSERT into ``table`` (``node.this`` or its schema's): the target's schema
        created first, its name mapped, and the query it writes rewritten."""
        prefix = self.schema_statements(table)
        mapped = duckdb_table_name(table)
        if isinstance(node.this, exp.Schema):
            node.this.set("this", mapped)
        else:
            node.set("this", mapped)
        if isinstance(node.expression, (*_QUERY_TYPES, exp.Subquery)):
            self.query(node.expression, None)
        return prefix + [self.sql(node)]

    def sql(self, node: exp.Expr) -> str:
        return node.sql(dialect="duckdb", comments=False)

    # -- queries

    def query(self, node: exp.Expr, parent: _Scope | None) -> None:
        """Rewrite a query in place for DuckDB; correlated names resolve in ``parent``."""
        saved = len(self.ctes)
        with_ = node.args.get("with_")
        if with_ is not None:
            if with_.args.get("recursive"):
                raise self.error("WITH RECURSIVE is not supported here", with_)
            for cte in with_.expressions:
                self.query(cte.this, None)
                self.ctes.append((cte.alias, self.sql(cte.this)))
        try:
            if isinstance(node, exp.Subquery):
                self.query(node.this, parent)
            elif isinstance(node, exp.SetOperation):
                self.query(node.left, parent)
                self.query(node.right, parent)
            elif isinstance(node, exp.Select):
                self.select(node, parent)
        finally:
            del self.ctes[saved:]

    def select(self, node: exp.Select, parent: _Scope | None) -> None:
        scope = _Scope(parent=parent)
        from_ = node.args.get("from_")
        if from_ is not None:
            from_.set("this", self.source_of(from_.this, scope))
        for join in node.args.get("joins") or []:
            join.set("this", self.source_of(join.this, scope))
            for name in join.args.get("using") or []:
                scope.using.add(name.name.lower())
            if join.args.get("on") is not None:
                self.resolve(join.args["on"], scope)
        aliases = {e.alias.lower() for e in node.expressions if isinstance(e, exp.Alias)}
        for key, value in list(node.args.items()):
            if key in ("from_", "joins", "with_") or value is None:
                continue
            for child in value if isinstance(value, list) else [value]:
                if not isinstance(child, exp.Expr):
                    continue
                # GROUP BY / ORDER BY / HAVING may name the SELECT list's aliases
                shadow = aliases if key in ("group", "order", "having", "qualify") else set()
                if key == "expressions":
                    self.resolve_projection(child, scope)
                else:
                    self.resolve(child, scope, shadow)
        # after the names: the columns a star stands for are written qualified already
        self.expand_stars(node, scope)
        if parent is None:
            self.fix_int64(node)

    # -- FROM items

    def source_of(self, item: exp.Expr, scope: _Scope) -> exp.Expr:
        if isinstance(item, exp.Table) and isinstance(item.this, exp.Identifier):
            path_source = scope.by_alias(item.parts[0].name) if len(item.parts) > 1 else None
            if path_source is not None:
                # FROM t, t.hits AS h: a path is an implicit UNNEST
                path = exp.column(item.parts[-1].name, *(p.name for p in item.parts[-2::-1]))
                unnest = exp.Unnest(expressions=[path])
                alias = item.alias or item.name
                unnest.set("alias", exp.TableAlias(columns=[exp.to_identifier(alias)]))
                return self.unnest(unnest, scope)
            return self.table(item, scope)
        if isinstance(item, exp.Subquery):
            self.query(item.this, None)
            alias = item.alias or self.fresh("_s")
            item.set("alias", exp.TableAlias(this=_ident(alias)))
            columns = self.relation_types(f"({self.sql(item.this)})", item)
            scope.sources.append(_Source(alias, columns))
            return item
        if isinstance(item, exp.Unnest):
            return self.unnest(item, scope)
        raise self.error(f"This FROM item is not supported here: {item.sql('bigquery')[:60]}", item)

    def table(self, item: exp.Table, scope: _Scope) -> exp.Expr:
        name = item.name
        alias = item.alias or name
        is_cte = not item.args.get("db") and any(n.lower() == name.lower() for n, _ in self.ctes)
        mapped = item if is_cte else duckdb_table_name(item)
        if mapped is not item:
            for key in ("alias", "joins", "pivots", "laterals", "when"):
                if item.args.get(key) is not None:
                    mapped.set(key, item.args[key])
        written = ".".join(p.name for p in item.parts)
        from_sql = self.sql(exp.Table(this=mapped.this, db=mapped.args.get("db")))
        try:
            relation = self.con.sql(self.with_ctes(f"SELECT * FROM {from_sql} LIMIT 0"))
        except duckdb.CatalogException:
            raise self.error(f"Not found: Table {written} (no table or view of that name is "
                             "registered)", item) from None
        except duckdb.Error as error:
            raise duckdb_error(error, item, self.source) from None
        columns = {n.lower(): (n, t) for n, t in zip(relation.columns, relation.types, strict=True)}
        mapped.set("alias", exp.TableAlias(this=_ident(alias)))
        scope.sources.append(_Source(alias, columns, wildcard=name.endswith("*")))
        return mapped

    def unnest(self, item: exp.Unnest, scope: _Scope) -> exp.Expr:
        if item.args.get("offset"):
            raise self.error("UNNEST ... WITH OFFSET is not supported here", item)
        if len(item.expressions) != 1:
            raise self.error("UNNEST takes one array", item)
        argument = item.expressions[0]
        resolved = self.resolve(argument, scope)
        argument = item.expressions[0]
        array_type = self.probe_type(argument) if resolved is _UNRESOLVED else resolved
        element = _element(array_type)
        if array_type is not None and element is None:
            raise self.error("Values referenced in UNNEST must be arrays. UNNEST contains "
                             f"expression of type {array_type}", argument)
        alias_node = item.args.get("alias")
        alias = None
        if alias_node is not None:
            columns = alias_node.args.get("columns") or []
            alias = columns[0].name if columns else alias_node.name or None
        alias = alias or self.fresh("_u")
        item.set("alias", exp.TableAlias(this=_ident(alias), columns=[_ident(alias)]))
        scope.sources.append(_Source(alias, {}, element=element, value_table=True))
        return item

    def probe_type(self, argument: exp.Expr) -> Any:
        # an UNNEST of a computed array, e.g. UNNEST([1, 2]) or UNNEST(SPLIT(s)): ask DuckDB
        if argument.find(exp.Column):
            return None
        try:
            return self.con.sql(self.with_ctes(f"SELECT ({self.sql(argument)}) LIMIT 0")).types[0]
        except duckdb.Error:
            return None

    # -- names in expressions

    def resolve_projection(self, item: exp.Expr, scope: _Scope) -> None:
        path = _path_of(item)
        kind = self.resolve(item, scope)
        replacement = self._replacement
        if path is not None and kind is not _UNRESOLVED and replacement is not None:
            # BigQuery names an unaliased column after its last part, as written
            replacement.replace(exp.Alias(this=replacement.copy(), alias=_ident(path[-1].name)))

    _replacement: exp.Expr | None = None

    def resolve(self, node: exp.Expr, scope: _Scope, shadow: set[str] | None = None) -> Any:
        """Qualify the column names under ``node`` (in place); returns the type of ``node`` when
        it is itself a column path that resolved, else :data:`_UNRESOLVED` or None."""
        self._replacement = None
        path = _path_of(node)
        if path is not None:
            if shadow and len(path) == 1 and path[0].name.lower() in shadow:
                return _UNRESOLVED
            found = self.resolve_path(path, scope, node)
            if found is None:
                return _UNRESOLVED
            replacement, kind = found
            if node.parent is not None:
                node.replace(replacement)
            self._replacement = replacement
            return kind
        if isinstance(node, (*_QUERY_TYPES, exp.Subquery)):
            self.query(node, scope)
            return _UNRESOLVED
        if isinstance(node, exp.Star) or (isinstance(node, exp.Column) and
                                          isinstance(node.this, exp.Star)):
            return _UNRESOLVED
        for child in list(_children(node)):
            self.resolve(child, scope, shadow)
        self._replacement = None
        return _UNRESOLVED

    def resolve_path(self, path: list[exp.Identifier], scope: _Scope,
                     node: exp.Expr) -> tuple[exp.Expr, Any] | None:
        names = [p.name for p in path]
        current: _Scope | None = scope
        while current is not None:
            source = current.by_alias(names[0])
            if source is not None and (len(names) > 1 or source.value_table):
                if source.value_table:
                    return self.walk(source.alias, source.alias, source.element, path[1:], node)
                column = source.columns.get(names[1].lower())
                if column is None:
                    raise self.error(f"Name {names[1]} not found inside {source.alias}", path[1])
                return self.walk(source.alias, column[0], column[1], path[2:], node)
            hits: list[tuple[_Source, str, Any]] = []
            for candidate in current.sources:
                if candidate.value_table:
                    fields = _fields(candidate.element)
                    if names[0].lower() in fields:
                        hits.append((candidate, *fields[names[0].lower()]))
                elif names[0].lower() in candidate.columns:
                    hits.append((candidate, *candidate.columns[names[0].lower()]))
            if len(hits) > 1:
                if names[0].lower() in current.using:
                    return None
                raise self.error(f"Column name {names[0]} is ambiguous", path[0])
            if hits:
                source, name, kind = hits[0]
                if source.value_table:
                    return self.walk(source.alias, source.alias, source.element, path, node)
                return self.walk(source.alias, name, kind, path[1:], node)
            current = current.parent
        return None

    def walk(self, alias: str, column: str, kind: Any, rest: list[exp.Identifier],
             node: exp.Expr) -> tuple[exp.Expr, Any]:
        names: list[str] = []
        for part in rest:
            fields = _fields(kind)
            if not fields:
                if kind is not None and getattr(kind, "id", None) in ("list", "array"):
                    raise self.error(f"Cannot access field {part.name} on a value with type {kind}",
                                     part)
                names.append(part.name)
                kind = None
                continue
            if part.name.lower() not in fields:
                raise self.error(f"Field name {part.name} does not exist in {kind}", part)
            name, kind = fields[part.name.lower()]
            names.append(name)
        replacement = _build_path(alias, column, names)
        return replacement, kind

    # -- stars

    def expand_stars(self, node: exp.Select, scope: _Scope) -> None:
        expanded: list[exp.Expr] = []
        changed = False
        for item in node.expressions:
            if isinstance(item, exp.Star):
                needs = any(s.wildcard or s.value_table for s in scope.sources)
                if needs:
                    expanded += self.star_columns(item, scope.sources, scope, item)
                    changed = True
                    continue
                self.map_star_names(item, scope.sources)
            elif isinstance(item, exp.Column) and isinstance(item.this, exp.Star):
                source = scope.by_alias(item.table)
                if source is not None and (source.wildcard or source.value_table):
                    expanded += self.star_columns(item.this, [source], scope, item)
                    changed = True
                    continue
                if source is not None:
                    self.map_star_names(item.this, [source])
            expanded.append(item)
        if changed:
            node.set("expressions", expanded)

    def map_star_names(self, star: exp.Star, sources: list[_Source]) -> None:
        # EXCEPT names as stored (DuckDB's EXCLUDE matches case-insensitively, kept for clarity)
        for name in star.args.get("except_") or star.args.get("except") or []:
            if isinstance(name, exp.Column):
                for source in sources:
                    found = source.columns.get(name.name.lower())
                    if found is not None:
                        name.set("this", _ident(found[0]))

    def star_columns(self, star: exp.Star, sources: list[_Source], scope: _Scope,
                     node: exp.Expr) -> list[exp.Expr]:
        except_ = {c.name.lower() for c in (star.args.get("except_") or star.args.get("except") or [])}
        replace = {r.alias.lower(): r for r in (star.args.get("replace") or [])}
        columns: list[exp.Expr] = []
        for source in sources:
            if source.value_table:
                fields = _fields(source.element)
                if not fields:
                    items = [(source.alias, _build_path(source.alias, source.alias, []))]
                else:
                    items = [(name, _build_path(source.alias, source.alias, [name]))
                             for name, _ in fields.values()]
            else:
                items = [(name, _build_path(source.alias, name, []))
                         for name, _ in source.columns.values()
                         if not (source.wildcard and name.lower() == "_table_suffix")]
            for name, expression in items:
                if name.lower() in except_:
                    continue
                column = exp.Alias(this=expression, alias=_ident(name))
                if name.lower() in replace:
                    column.set("this", replace[name.lower()].this.copy())
                    self.resolve(column.this, scope)
                columns.append(column)
        if not columns:
            raise self.error("SELECT * would return no columns", node)
        return columns

    # -- BigQuery's INT64

    def fix_int64(self, node: exp.Select) -> None:
        # DuckDB's SUM of integers is a HUGEINT (128 bits); BigQuery's is an INT64
        if any(isinstance(e, exp.Star) or (isinstance(e, exp.Column) and isinstance(e.this, exp.Star))
               for e in node.expressions):
            return
        bare = node.copy()
        bare.set("with_", None)  # its CTEs are in self.ctes already
        try:
            relation = self.con.sql(self.with_ctes(self.sql(bare)))
        except duckdb.Error as error:
            raise duckdb_error(error, node, self.source) from None
        if len(relation.types) != len(node.expressions):
            return
        for item, name, kind in zip(list(node.expressions), relation.columns, relation.types,
                                    strict=True):
            if str(kind) in ("HUGEINT", "UHUGEINT"):
                inner = item.this if isinstance(item, exp.Alias) else item
                item.replace(exp.Alias(this=exp.cast(inner.copy(), "BIGINT"), alias=_ident(name)))


_UNRESOLVED = object()


def _children(node: exp.Expr) -> Iterator[exp.Expr]:
    for value in node.args.values():
        for child in value if isinstance(value, list) else [value]:
            if isinstance(child, exp.Expr):
                yield child


def _bigquery_semantics(node: exp.Expr) -> exp.Expr:
    """Rewrites where BigQuery's functions or literals mean something else in DuckDB."""
    if isinstance(node, exp.Literal) and not node.is_string and re.search(r"[.eE]", node.this):
        # 2.5 is a FLOAT64 in BigQuery, a DECIMAL in DuckDB
        return exp.cast(node.copy(), "DOUBLE")
    return _regexp_extract(node)


def _regexp_extract(node: exp.Expr) -> exp.Expr:
    # BigQuery: NULL when nothing matches, the group when the pattern has one, else the match;
    # DuckDB's regexp_extract gives '' on no match
    if not isinstance(node, exp.RegexpExtract):
        return node
    pattern = node.expression
    if node.args.get("group") is None and isinstance(pattern, exp.Literal) and pattern.is_string:
        groups = re.compile(pattern.this).groups if _compiles(pattern.this) else 1
        if groups > 1:
            raise InputError("Regular expressions passed into extraction functions must not have "
                             "more than 1 capturing group")
        node.set("group", exp.Literal.number(groups))
    return node


def _compiles(pattern: str) -> bool:
    try:
        re.compile(pattern)
    except re.error:
        return False
    return True


@public
def to_duckdb(expression: exp.Expr, con: duckdb.DuckDBPyConnection) -> list[str]:
    """DuckDB SQL with BigQuery's meaning for a statement that is not about models.

    Handles SELECT / WITH / set operations, CREATE [OR REPLACE] TABLE / VIEW [AS query], CREATE
    SCHEMA, DROP TABLE / VIEW / SCHEMA and INSERT. ``project.dataset.table`` and
    ``dataset.table`` become ``"dataset"."table"`` in the connection's database (the project is
    dropped: a dataset is a schema); other names are left as they are. A CREATE into
    ``dataset.x`` is preceded by ``CREATE SCHEMA IF NOT EXISTS "dataset"``, hence a list.

    Column names are qualified as BigQuery resolves them, which needs the connection to know the
    tables named: the fields of an ``UNNEST`` of an array of structs are columns (``type`` in
    ``FROM t, UNNEST(hits) AS hits`` is ``hits.type``); a name found in two places is an error;
    ``SELECT *`` over a wildcard table leaves out ``_TABLE_SUFFIX``; an integer SUM is an INT64
    (BIGINT), not DuckDB's HUGEINT. ``farm_fingerprint`` needs :func:`register_functions` on the
    connection that runs the result. Lambdas come out in DuckDB 2's ``LAMBDA x : expr`` form
    (sqlglot writes them so; DuckDB 2 rejects ``x -> expr``), and ``->`` stays JSON's operator.

    Parameters
    ----------
    expression : sqlglot.exp.Expr
        A statement from :func:`parse_script` (it is not changed).
    con : duckdb.DuckDBPyConnection
        The connection the result will run on; asked for the types of the tables named.

    Returns
    -------
    list of str
        DuckDB statements to run in order.

    Raises
    ------
    SQLError
        An unknown table, an ambiguous or unknown column or field, a statement not supported,
        or DuckDB's own error, placed in the BigQuery text where the name can be found.

    Examples
    --------
    >>> con = duckdb.connect()
    >>> _ = con.execute("CREATE SCHEMA ds; CREATE TABLE ds.s AS SELECT 'v1' AS id, "
    ...                 "[{'type': 'EVENT', 'n': 2}, {'type': 'PAGE', 'n': 3}] AS hits")
    >>> [s] = parse_script("SELECT id, SUM(n) AS n FROM `p.ds.s`, UNNEST(hits) AS hits "
    ...                    "WHERE type = 'EVENT' GROUP BY 1")
    >>> [sql] = to_duckdb(s.expression, con)
    >>> sql  # doctest: +NORMALIZE_WHITESPACE
    'SELECT "s"."id" AS "id", CAST(SUM(("hits"."hits")."n") AS BIGINT) AS "n" FROM "ds"."s" AS "s"
     CROSS JOIN UNNEST("s"."hits") AS "hits"("hits") WHERE ("hits"."hits")."type" = \\'EVENT\\'
     GROUP BY 1'
    >>> con.sql(sql).fetchall()
    [('v1', 2)]
    """
    source = expression.meta.get(_SOURCE_KEY)
    try:
        node = expression.copy()
        node = node.transform(_bigquery_semantics, copy=False)
        statements = _Translator(con, source).statement(node)
    except SQLError:
        raise
    except InputError as error:
        raise SQLError(error.message, source=source) from None
    except duckdb.Error as error:
        raise duckdb_error(error, expression, source) from None
    except Exception as error:  # sqlglot's own refusals (UnsupportedError and the like)
        raise SQLError(f"Cannot translate this statement to DuckDB: {error}", source=source) from None
    return statements


def duckdb_error(error: BaseException, expression: exp.Expr | None,
                 source: str | None = None) -> SQLError:
    """DuckDB's error for a statement as an :class:`SQLError`: DuckDB's message, placed at the
    first place in the BigQuery text where the name it quotes is written.

    Examples
    --------
    >>> [s] = parse_script("SELECT 1 AS x,\\n  nope FROM (SELECT 1 AS y)")
    >>> try:
    ...     duckdb.connect().sql("SELECT nope FROM (SELECT 1 AS y)")
    ... except duckdb.Error as error:
    ...     print(duckdb_error(error, s.expression))  # doctest: +ELLIPSIS
    Binder Error: Referenced column "nope" not found in FROM clause! ... at [2:3]
      nope FROM (SELECT 1 AS y)
      ^
    """
    if source is None and expression is not None:
        source = expression.root().meta.get(_SOURCE_KEY) or expression.meta.get(_SOURCE_KEY)
    lines = [line for line in str(error).splitlines()
             if not re.match(r"\s*(LINE \d+:|\^)", line)]
    message = " ".join(line.strip() for line in lines if line.strip())
    message = re.sub(r"\s*(LINE \d+:.*)$", "", message)
    node = None
    if expression is not None:
        for name in re.findall(r'"([^"]+)"|with name (\w+)', message):
            wanted = (name[0] or name[1]).lower()
            node = _find_name(expression, wanted)
            if node is not None:
                break
    return _error_at(message, node, source)


def _find_name(expression: exp.Expr, wanted: str) -> exp.Expr | None:
    best: exp.Expr | None = None
    for node in expression.walk():
        if not isinstance(node, exp.Expr) or "start" not in node.meta:
            continue
        name = node.name if isinstance(node, exp.Identifier) else (
            str(node.this) if isinstance(node, exp.Anonymous) else None)
        if name is not None and name.lower() == wanted:
            if best is None or node.meta["start"] < best.meta["start"]:
                best = node
    return best
