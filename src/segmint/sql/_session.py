"""The SQL session: BigQuery statements in, DuckDB and segmint's models underneath.

Each statement is parsed as BigQuery SQL (:mod:`segmint.sql.dialect`). ``CREATE MODEL``,
``DROP MODEL`` and ``CREATE EXTERNAL TABLE`` are carried out here; in any other statement every
``ML.<FUNCTION>(MODEL m, ...)`` is computed first (its input query runs on DuckDB, the model
answers in Python) and stands in the query as a registered Arrow table, so the ML functions
compose with the rest of SQL as BigQuery's table functions do; the statement then runs on
DuckDB.
"""
from __future__ import annotations

import itertools
import logging
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa
from sqlglot import exp

from segmint.errors import InputError, ModelError, SegmintError, SpecError, public
from segmint.sql._catalog import CatalogModel, ModelCatalog

log = logging.getLogger(__name__)

__all__ = ["Connection", "Result", "connect"]

MODELS_SUFFIX = ".models"  # the catalog beside a database file: <file>.models/

#: The STRUCT(...) fields each ML function takes (BigQuery: trial_id picks a tuned model's trial)
STRUCT_FIELDS: dict[str, set[str]] = {
    "PREDICT": {"trial_id"}, "EVALUATE": {"trial_id"}, "CENTROIDS": {"standardize", "trial_id"},
    "DETECT_ANOMALIES": {"contamination", "trial_id"}, "TRAINING_INFO": {"trial_id"},
}


@dataclass
class Result:
    """What one statement did: a table for a query, a message for the rest."""

    statement: str  # the statement's BigQuery text
    line: int  # where it starts in the script (1-based)
    kind: str  # "query", "model", "ddl"
    message: str
    frame: pd.DataFrame | None = None
    seconds: float = 0.0


class Connection:
    """A DuckDB database with BigQuery's dialect and BigQuery ML's k-means.

    Parameters
    ----------
    path : database file (created if missing); None for an in-memory database
    models : the model catalog folder; default ``<path>.models`` beside the database, or a
        temporary folder (removed on close) for an in-memory database
    base : folder that relative file paths in statements (``uris``, ``model_path``) are taken
        from; default the working directory
    """

    def __init__(self, path: str | Path | None = None, *, models: str | Path | None = None,
                 base: str | Path | None = None) -> None:
        from segmint.sql.dialect import register_functions

        self.path = None if path is None or str(path) == ":memory:" else Path(path)
        self._owned_catalog: Path | None = None
        if models is None:
            if self.path is None:
                self._owned_catalog = Path(tempfile.mkdtemp(prefix="segmint-models-"))
                models = self._owned_catalog
            else:
                models = self.path.with_name(self.path.name + MODELS_SUFFIX)
        self.catalog = ModelCatalog(models)
        self.base = Path(base) if base is not None else Path.cwd()
        try:
            self.duckdb = duckdb.connect(str(self.path) if self.path else ":memory:")
        except duckdb.Error as exc:
            raise InputError(f"cannot open the database ({exc})", file=str(path)) from None
        register_functions(self.duckdb)
        self._temp = itertools.count()

    # ------------------------------------------------------------------ public surface

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.duckdb.close()
        if self._owned_catalog is not None:
            shutil.rmtree(self._owned_catalog, ignore_errors=True)
            self._owned_catalog = None

    def execute(self, sql: str) -> pd.DataFrame | None:
        """Run a statement or a script; return the last query's rows (None if none)."""
        results = self.run(sql)
        frames = [r.frame for r in results if r.frame is not None]
        return frames[-1] if frames else None

    def run(self, sql: str) -> list[Result]:
        """Run every statement of a script in order; one :class:`Result` each."""
        return list(self.iter_run(sql))

    def iter_run(self, sql: str) -> Iterator[Result]:
        """Run the statements of a script one by one, yielding each result as it is done (a
        statement that fails raises, after the earlier ones took effect, as in BigQuery)."""
        from segmint.sql.dialect import parse_script

        for statement in parse_script(sql):
            t0 = time.perf_counter()
            result = self._execute(statement)
            result.seconds = time.perf_counter() - t0
            yield result

    def models(self) -> pd.DataFrame:
        """The models in the catalog (BigQuery: ``bq ls --models``)."""
        return self.catalog.listing()

    def model(self, name: str) -> CatalogModel:
        """A model by ``dataset.name`` (``project.dataset.name`` accepted)."""
        return self.catalog.load(*_dataset_and_name(name))

    def register_export(self, name: str, paths: Any) -> list[str]:
        """Register files (a BigQuery export: Parquet, NDJSON, Avro, or CSV) as the table
        ``name``; a name ending in ``*`` is a wildcard table with ``_TABLE_SUFFIX``."""
        from segmint.sql.tables import register_export

        return register_export(self.duckdb, name, self._paths(paths))

    # ------------------------------------------------------------------ statements

    def _paths(self, paths: Any) -> Any:
        def one(p: Any) -> str:
            q = Path(str(p)).expanduser()
            return str(q if q.is_absolute() else self.base / q)

        return [one(p) for p in paths] if isinstance(paths, (list, tuple)) else one(paths)

    @public  # nothing but a SegmintError leaves a statement (anything else is a bug)
    def _execute(self, statement: Any) -> Result:
        from segmint.sql.dialect import MLFunction

        expression = statement.expression
        text, line = statement.text, statement.line
        kind = str(expression.args.get("kind") or "").upper()
        if isinstance(expression, exp.Create) and kind == "MODEL":
            message = self._create_model(expression, text)
            return Result(text, line, "model", message)
        if isinstance(expression, exp.Drop) and kind == "MODEL":
            return Result(text, line, "model", self._drop_model(expression))
        if isinstance(expression, exp.Create) and _is_external(expression):
            return Result(text, line, "ddl", self._create_external(expression))
        if isinstance(expression, exp.Create) and kind == "VIEW" \
                and expression.find(MLFunction) is not None:
            # an ML function is computed when its statement runs and stands in it as a
            # temporary table, which a stored view would go on reading after it is gone
            raise SpecError(f"CREATE VIEW {_table_name(expression.this)}: a view cannot hold an "
                            f"ML function here (BigQuery recomputes it on every read; segmint "
                            f"computes it once); use CREATE TABLE ... AS SELECT, or query the "
                            f"ML function directly")
        frame = self._query(expression, ddl=not _returns_rows(expression))
        if frame is None:
            what = expression.key.upper()
            target = expression.this.sql("bigquery") if isinstance(expression.this, exp.Expr) \
                else ""
            return Result(text, line, "ddl", f"{what} {target}".strip() + " done")
        return Result(text, line, "query", f"{len(frame):,} rows", frame)

    # ---- queries, with ML functions computed first

    def _query(self, expression: exp.Expr, *, ddl: bool = False) -> pd.DataFrame | None:
        temps: list[str] = []
        try:
            resolved = self._substitute(expression.copy(), temps)
            if ddl:
                self._run_duckdb(resolved)
                return None
            return _exact_frame(self._run_duckdb(_name_unnamed_columns(resolved)))
        finally:
            for name in temps:
                self.duckdb.unregister(name)

    def _arrow(self, expression: exp.Expr) -> pa.Table:
        temps: list[str] = []
        try:
            return self._run_duckdb(self._substitute(expression.copy(), temps))
        finally:
            for name in temps:
                self.duckdb.unregister(name)

    def _run_duckdb(self, expression: exp.Expr) -> pa.Table:
        from segmint.sql.dialect import duckdb_error, to_duckdb

        statements = to_duckdb(expression, self.duckdb)
        if isinstance(statements, str):
            statements = [statements]
        out = pa.table({})
        for sql in statements:
            try:
                relation = self.duckdb.sql(sql)
                out = relation.to_arrow_table() if relation is not None else pa.table({})
            except duckdb.Error as exc:
                raise duckdb_error(exc, expression) from None
        return out

    def _substitute(self, expression: exp.Expr, temps: list[str]) -> exp.Expr:
        """Every ML table function not inside another one, computed and replaced by a
        registered Arrow table (the inner ones are computed with their outer one's input); so is
        ``[dataset.]INFORMATION_SCHEMA.MODELS``, the catalog's models (of that dataset)."""
        from segmint.sql.dialect import MLFunction

        for table_node in list(expression.find_all(exp.Table)):
            # sqlglot reads BigQuery's INFORMATION_SCHEMA.X as one name, the dataset before it
            parts = [p.name for p in table_node.parts]
            written = ".".join(parts).split(".")
            if [w.upper() for w in written[-2:]] == ["INFORMATION_SCHEMA", "MODELS"]:
                listing = self.models()
                if len(written) > 2:  # dataset.INFORMATION_SCHEMA.MODELS: that dataset's
                    listing = listing[listing["dataset"] == written[-3]]
                name = f"__segmint_models_{next(self._temp)}"
                self.duckdb.register(name, pa.Table.from_pandas(listing, preserve_index=False))
                temps.append(name)
                replacement = exp.Table(this=exp.to_identifier(name),
                                        alias=table_node.args.get("alias"))
                if table_node is expression:
                    return exp.select("*").from_(replacement)
                table_node.replace(replacement)
        for node in list(expression.find_all(MLFunction)):
            if node.find_ancestor(MLFunction) is not None:
                continue
            table = self._ml_function(node)
            name = f"__segmint_ml_{next(self._temp)}"
            self.duckdb.register(name, table)
            temps.append(name)
            holder = node.parent if isinstance(node.parent, exp.Table) else node
            alias = holder.args.get("alias") if isinstance(holder, exp.Table) else None
            replacement = exp.Table(this=exp.to_identifier(name), alias=alias)
            if holder is expression:
                return exp.select("*").from_(replacement)
            holder.replace(replacement)
        return expression

    def _input_rows(self, node: exp.Expr, source: exp.Expr | None) -> pa.Table | None:
        """The rows an ML function reads: its ``(query)`` or ``TABLE t``, run with the CTEs of
        the queries around it (the seed's ML.PREDICT reads a CTE defined outside it)."""
        if source is None:
            return None
        if isinstance(source, exp.Subquery):
            query = source.this.copy()
        elif isinstance(source, exp.Table):
            query = exp.select("*").from_(source.copy())
        else:
            query = source.copy()
        visible = _visible_ctes(node)
        own = query.args.get("with") or query.args.get("with_")
        defined = {c.alias_or_name.lower() for c in (own.expressions if own else [])}
        needed: list[exp.CTE] = []
        wanted = _table_names(query) - defined
        for cte in reversed(visible):  # later CTEs may read earlier ones, never the reverse
            if cte.alias_or_name.lower() in wanted:
                needed.insert(0, cte)
                wanted |= _table_names(cte.this)
        if needed and isinstance(query, exp.Query):
            for cte in needed:
                query = query.with_(cte.alias_or_name, cte.this.copy(), append=True)
            # the CTEs read by the query go first, in the order they were defined
            with_ = query.args.get("with") or query.args["with_"]
            with_.set("expressions", [*with_.expressions[len(with_.expressions) - len(needed):],
                                      *with_.expressions[:len(with_.expressions) - len(needed)]])
        return self._arrow(query)

    def _ml_function(self, node: Any) -> pa.Table:
        from segmint.sql import outputs

        function = str(node.args["name"]).upper()
        model = self._model_of(node.this)
        params = _struct_values(node.args.get("params"))
        unknown = sorted(set(params) - STRUCT_FIELDS.get(function, set()))
        if unknown:
            accepted = ", ".join(sorted(STRUCT_FIELDS.get(function, set()))) or "none"
            raise SpecError(f"ML.{function} has no argument {unknown[0]!r} (it takes: {accepted})")
        source = node.args.get("expression")
        if model.kind == "segmint":
            return self._segmint_function(function, model, self._input_rows(node, source), params)
        bq = model.bqml
        trial = params.get("trial_id")
        if trial is not None and (isinstance(trial, bool) or not isinstance(trial, int)):
            raise SpecError(f"trial_id must be an INT64 (a trial of ML.TRIAL_INFO), got {trial!r}")
        if function == "PREDICT":
            rows = self._required_rows(node, source, function)
            return outputs.predict(bq, self._transformed(model, rows), trial=trial,
                                   passthrough=rows)
        if function == "EVALUATE":
            rows = self._input_rows(node, source)
            return outputs.evaluate(bq, None if rows is None else self._transformed(model, rows),
                                    trial=trial)
        if function == "CENTROIDS":
            return outputs.centroids(bq, standardize=bool(params.get("standardize", False)),
                                     trial=trial)
        if function == "DETECT_ANOMALIES":
            rows = self._input_rows(node, source)
            training = self._training_rows(model)
            contamination = params.get("contamination")
            if contamination is None:
                raise SpecError("ML.DETECT_ANOMALIES on a k-means model needs "
                                "STRUCT(<fraction> AS contamination)")
            scored = training if rows is None else self._transformed(model, rows)
            # outputs checks the value (a number in [0, 0.5]); float() would raise on a string
            return outputs.detect_anomalies(bq, scored, contamination=contamination,
                                            training=training, trial=trial,
                                            passthrough=training if rows is None else rows)
        if function == "TRAINING_INFO":
            return outputs.training_info(bq, trial=trial)
        if function == "FEATURE_INFO":
            return outputs.feature_info(bq)
        if function == "TRIAL_INFO":
            return outputs.trial_info(bq)
        raise SpecError(f"Function ML.{function} is not supported for k-means models")

    def _required_rows(self, node: Any, source: Any, function: str) -> pa.Table:
        rows = self._input_rows(node, source)
        if rows is None:
            raise SpecError(f"ML.{function} needs the rows to score: ML.{function}(MODEL m, "
                            f"(SELECT ...)) or ML.{function}(MODEL m, TABLE t)")
        return rows

    def _training_rows(self, model: CatalogModel) -> pa.Table:
        """The training rows (after TRANSFORM) as the model reads them: the run folder keeps a
        BOOL feature as 0/1 (segmint's binary type), which the model would refuse as FLOAT64."""
        frame = model.run.customers().reset_index(drop=True)
        table = pa.Table.from_pandas(frame, preserve_index=False)
        for name, bq_type in model.bqml.feature_types.items():
            if bq_type == "BOOL" and name in table.column_names:
                i = table.column_names.index(name)
                table = table.set_column(i, name, table.column(name).cast(pa.bool_()))
        return table

    def _transformed(self, model: CatalogModel, rows: pa.Table) -> pa.Table:
        """The rows as the model's features: the TRANSFORM clause's expressions over them, as
        at training (the rows themselves when the model has none)."""
        if not model.transform:
            return rows
        from segmint.sql.dialect import parse_script

        name = f"__segmint_in_{next(self._temp)}"
        self.duckdb.register(name, rows)
        try:
            select = parse_script(f"SELECT {', '.join(model.transform)} FROM {name}")[0].expression
            return self._run_duckdb(select)
        finally:
            self.duckdb.unregister(name)

    def _segmint_function(self, function: str, model: CatalogModel, rows: pa.Table | None,
                          params: dict[str, Any]) -> pa.Table:
        from segmint.sql import _imported

        if function == "PREDICT":
            if rows is None:
                raise SpecError("ML.PREDICT needs the rows to score: (SELECT ...) or TABLE t")
            return _imported.predict(model, rows)
        if function == "CENTROIDS":
            return _imported.centroids(model, standardize=bool(params.get("standardize", False)))
        if function == "EVALUATE":
            if rows is not None:  # answering with the run's figures would pass as the rows'
                raise SpecError(f"ML.EVALUATE of {model.full_name}, a solution of a segmint "
                                f"run, reports the run's own measures: call it without rows")
            return _imported.evaluate(model)
        raise SpecError(f"ML.{function} is not available for {model.full_name}, a solution of a "
                        f"segmint run (it has ML.PREDICT, ML.CENTROIDS and ML.EVALUATE)")

    def _model_of(self, table: Any) -> CatalogModel:
        return self.catalog.load(*_dataset_and_name(_table_name(table)))

    # ---- CREATE / DROP MODEL

    def _create_model(self, create: exp.Create, text: str) -> str:
        from segmint.sql import kmeans
        from segmint.sql.dialect import model_options, model_transform

        dataset, name = _dataset_and_name(_table_name(create.this))
        options = model_options(create)
        lowered = {k.lower(): v for k, v in options.items()}
        replace = bool(create.args.get("replace"))
        if create.args.get("exists") and self.catalog.exists(dataset, name):
            return f"Model {dataset}.{name} already exists; kept (IF NOT EXISTS)"
        model_type = str(lowered.get("model_type", "")).lower()
        if model_type == "segmint":
            path = lowered.get("model_path")
            if not path:
                raise SpecError("model_type='segmint' needs model_path='<a segmint run folder>'")
            self.catalog.attach(dataset, name, self._paths(str(path)), lowered.get("solution"),
                                replace=replace)
            return f"Model {dataset}.{name} now names a solution of {path}"
        query = create.args.get("expression")
        if query is None:
            raise SpecError(f"CREATE MODEL {dataset}.{name} needs AS SELECT ... (the training data)")
        if not replace and self.catalog.exists(dataset, name):
            raise ModelError(f"Already Exists: Model {dataset}.{name} (CREATE OR REPLACE MODEL "
                             f"replaces it)")
        rows = self._arrow(query)
        transform = model_transform(create)
        transform_sql = None
        if transform:
            transform_sql = [e.sql("bigquery") for e in transform]
            name_in = f"__segmint_in_{next(self._temp)}"
            self.duckdb.register(name_in, rows)
            try:
                select = exp.select(*[e.copy() for e in transform]).from_(name_in)
                rows = self._run_duckdb(select)
            finally:
                self.duckdb.unregister(name_in)
        init_centers = None
        if lowered.get("warm_start") is True:
            if not self.catalog.exists(dataset, name):
                raise ModelError(f"warm_start needs an existing model {dataset}.{name} to start "
                                 f"from")
            init_centers = self.catalog.load(dataset, name).bqml
        rows = _canonical_order(rows)
        model = kmeans.train(rows, options, warm_start_from=init_centers)
        self.catalog.save_kmeans(dataset, name, model, rows, query=query.sql("bigquery"),
                                 transform=transform_sql, replace=True)
        return f"Created model {dataset}.{name}: k-means, {model.summary()}, {len(rows):,} training rows"

    def _drop_model(self, drop: exp.Drop) -> str:
        tables = drop.args.get("tables") or drop.expressions or [drop.this]
        done = []
        for table in tables:
            dataset, name = _dataset_and_name(_table_name(table))
            if self.catalog.drop(dataset, name, if_exists=bool(drop.args.get("exists"))):
                done.append(f"{dataset}.{name}")
        return f"Dropped model {', '.join(done)}" if done else "No such model (IF EXISTS)"

    # ---- CREATE EXTERNAL TABLE over files

    def _create_external(self, create: exp.Create) -> str:
        name = _table_name(create.this)
        props = create.args.get("properties")
        uris: list[str] = []
        for prop in props.expressions if props else []:
            if isinstance(prop, exp.Property) and prop.name.lower() == "uris":
                value = prop.args.get("value")
                if isinstance(value, exp.Array):
                    uris = [e.name for e in value.expressions]
                elif isinstance(value, exp.Literal):
                    uris = [value.name]
        if not uris:
            raise SpecError(f"CREATE EXTERNAL TABLE {name} needs OPTIONS(uris=['<file or glob>'])")
        if not name.endswith("*") and len(uris) == 1 and not any(c in uris[0] for c in "*?["):
            from segmint.sql.tables import register_table

            register_table(self.duckdb, name, self._paths(uris[0]))  # one file: CSV too
            return f"Created external table {name} over {uris[0]}"
        registered = self.register_export(name, uris if len(uris) > 1 else uris[0])
        return f"Created external table {name} over {len(registered)} table(s)"


# ---------------------------------------------------------------------- helpers


def _ancestors(node: exp.Expr) -> Iterator[exp.Expr]:
    parent = node.parent
    while parent is not None:
        yield parent
        parent = parent.parent


_NULLABLE_INTS = {pa.int8(): pd.Int8Dtype(), pa.int16(): pd.Int16Dtype(),
                  pa.int32(): pd.Int32Dtype(), pa.int64(): pd.Int64Dtype()}


def _exact_frame(table: pa.Table) -> pd.DataFrame:
    """A query's rows as pandas, INT64 kept exact: an integer column holding NULL becomes
    pandas' nullable integer type, as BigQuery's client gives it (pyarrow's default, float64,
    rounds values past 2**53, FARM_FINGERPRINT's for one); the others as pyarrow converts them."""
    frame = table.to_pandas()
    for i, field in enumerate(table.schema):
        if field.type in _NULLABLE_INTS and table.column(i).null_count:
            frame.isetitem(i, table.column(i).to_pandas(types_mapper=_NULLABLE_INTS.get))
    return frame


def _name_unnamed_columns(query: exp.Expr) -> exp.Expr:
    """BigQuery names a result column that is an expression without an alias ``f0_``, ``f1_``,
    ... (DuckDB would name it after the expression's text, temporary table names included)."""
    select = query if isinstance(query, exp.Select) else None
    if select is None:
        return query
    count = 0
    for i, item in enumerate(list(select.expressions)):
        if isinstance(item, (exp.Alias, exp.Column, exp.Star)) or \
                (isinstance(item, exp.Dot) and isinstance(item.expression, exp.Star)):
            continue
        select.expressions[i] = exp.alias_(item.copy(), f"f{count}_")
        count += 1
    return query


def _canonical_order(rows: pa.Table) -> pa.Table:
    """The training rows sorted by every column, NULLs last: DuckDB's parallel GROUP BY returns
    rows in no fixed order, and random or k-means++ starts pick rows by position, so without
    this the same statement and seed could train different models."""
    import pyarrow.compute as pc

    keys = [(name, "ascending", "at_end") for name in rows.column_names
            if pa.types.is_integer(rows.schema.field(name).type)
            or pa.types.is_floating(rows.schema.field(name).type)
            or pa.types.is_decimal(rows.schema.field(name).type)
            or pa.types.is_boolean(rows.schema.field(name).type)
            or pa.types.is_string(rows.schema.field(name).type)
            or pa.types.is_large_string(rows.schema.field(name).type)]
    if not keys or rows.num_rows < 2:
        return rows
    return rows.take(pc.sort_indices(rows, sort_keys=keys))


def _visible_ctes(node: exp.Expr) -> list[exp.CTE]:
    """The CTEs of the queries around ``node`` that it may read, outermost first: in the WITH
    that holds ``node`` inside one of its CTEs, only the CTEs defined before that one."""
    visible: list[exp.CTE] = []
    path = {id(node)}
    for ancestor in _ancestors(node):
        with_ = ancestor.args.get("with") or ancestor.args.get("with_")
        if isinstance(with_, exp.With):
            ctes = list(with_.expressions)
            inside = next((i for i, c in enumerate(ctes) if id(c) in path), len(ctes))
            visible = ctes[:inside] + visible
        path.add(id(ancestor))
    return visible


def _table_names(query: exp.Expr) -> set[str]:
    """The unqualified table names a query reads (the candidates for CTE names)."""
    return {t.name.lower() for t in query.find_all(exp.Table) if not t.args.get("db")}


def _is_external(create: exp.Create) -> bool:
    props = create.args.get("properties")
    return props is not None and any(isinstance(p, exp.ExternalProperty) for p in props.expressions)


def _returns_rows(expression: exp.Expr) -> bool:
    return isinstance(expression, exp.Query) or (
        isinstance(expression, exp.Select))


def _table_name(table: Any) -> str:
    if isinstance(table, exp.Table):
        parts = [p.name for p in table.parts]
        return ".".join(parts)
    return str(table.name if isinstance(table, exp.Expr) else table)


def _dataset_and_name(full: str) -> tuple[str, str]:
    """``project.dataset.model`` or ``dataset.model`` -> (dataset, model): the project is
    dropped, as for tables (datasets are DuckDB schemas)."""
    parts = [p for p in full.replace("`", "").split(".") if p]
    if len(parts) < 2:
        raise SpecError(f"model {full!r} needs a dataset: dataset.model (as BigQuery ML)")
    return parts[-2], parts[-1]


def _struct_values(struct: Any) -> dict[str, Any]:
    """``STRUCT(TRUE AS standardize, 0.02 AS contamination)`` -> {'standardize': True, ...}."""
    if struct is None:
        return {}
    out: dict[str, Any] = {}
    for item in struct.expressions:
        if isinstance(item, (exp.Alias, exp.PropertyEQ)):
            key = item.alias if isinstance(item, exp.Alias) else item.this.name
            value = item.this if isinstance(item, exp.Alias) else item.expression
        else:
            raise SpecError(f"the STRUCT argument needs named fields (<value> AS <name>); got "
                            f"{item.sql('bigquery')}")
        out[key.lower()] = _literal(value)
    return out


def _literal(value: exp.Expr) -> Any:
    if isinstance(value, exp.Boolean):
        return bool(value.this)
    if isinstance(value, exp.Literal):
        return value.this if value.is_string else float(value.this) if "." in value.this \
            or "e" in value.this.lower() else int(value.this)
    if isinstance(value, exp.Neg):
        return -_literal(value.this)
    raise SpecError(f"expected a literal, got {value.sql('bigquery')}")


def connect(path: str | Path | None = None, *, models: str | Path | None = None,
            base: str | Path | None = None) -> Connection:
    """Open a database for BigQuery SQL and BigQuery ML's k-means (see :class:`Connection`).

    Examples
    --------
    >>> import segmint.sql
    >>> with segmint.sql.connect() as con:
    ...     con.execute("SELECT IF(MOD(7, 2) = 1, 'odd', 'even') AS parity").parity.tolist()
    ['odd']
    """
    try:
        return Connection(path, models=models, base=base)
    except SegmintError:
        raise
    except OSError as exc:
        raise InputError(f"cannot open ({exc.strerror or exc})", file=str(path)) from None
