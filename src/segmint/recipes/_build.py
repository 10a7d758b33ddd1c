"""The one entry point to the recipes: source -> customer table. Fitting (the pipeline) and
scoring (a saved run) both call :func:`build_customers`, scoring with the schema the fit
recorded, so new customers are read exactly as the ones the model was fitted on."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from segmint._threads import threads
from segmint.errors import InputError, SpecError, public
from segmint.recipes._scan import configure, connect, scan_format
from segmint.recipes._table import CustomerTable
from segmint.spec import RunSpec, SourceSpec

__all__ = ["build_customers", "Source"]

log = logging.getLogger(__name__)

#: What segmint.run accepts as a source besides a SourceSpec: a path, or a table in memory.
Source = Any


def _as_source(spec: RunSpec, source: Source | None) -> SourceSpec | Any:
    """A SourceSpec for a path (keeping the spec's reading options), the table itself for a
    table in memory, the spec's own source when none is given."""
    from segmint.io import is_table

    if source is None:
        if spec.source is None:
            raise SpecError("the spec has no 'source'; give one in the spec or pass the data "
                            "to segmint.run(data, spec)")
        return spec.source
    if isinstance(source, SourceSpec) or is_table(source):
        return source
    if isinstance(source, (str, Path)):
        base = spec.source or SourceSpec(path=str(source))
        return base.model_copy(update={"path": str(source), "url": None, "duckdb": None})
    raise SpecError(f"a source is a path, a SourceSpec or a table (pandas/Arrow/DuckDB); got "
                    f"{type(source).__name__}")


def _frame_with_id(frame: Any, spec: RunSpec) -> tuple[Any, RunSpec]:
    """A pandas frame whose ids sit in a named index (``df.set_index("client_ref")``) keeps
    them: the index becomes the id column. An unnamed index (0..n-1, or what filtering left)
    is not an id."""
    if isinstance(frame, pd.DataFrame) and frame.index.name is not None \
            and frame.index.nlevels == 1:
        name = str(frame.index.name)
        if name not in frame.columns:
            frame = frame.reset_index(names=name)
            if spec.recipe.kind == "attributes" and spec.recipe.id_column is None:
                spec = spec.model_copy(deep=True)
                spec.recipe.id_column = name
            elif spec.recipe.kind == "transactions" and \
                    "customer" not in (spec.source.columns if spec.source else {}):
                spec = spec.model_copy(deep=True)
                if spec.source is None:
                    spec.source = SourceSpec(path="DataFrame")
                spec.source.columns.setdefault("customer", name)
    return frame, spec


@public
def build_customers(spec: RunSpec, source: Source | None = None, *,
                    schema: dict[str, Any] | None = None,
                    con: duckdb.DuckDBPyConnection | None = None) -> CustomerTable:
    """Read ``source`` (default: the spec's) and apply the spec's recipe.

    Parameters
    ----------
    spec : RunSpec
    source : path, SourceSpec, or a table in memory (pandas / Arrow / DuckDB relation)
    schema : dict, optional
        The schema a fitted run recorded (column types, ordinal levels, date references):
        scoring passes it so new data is read exactly as the data the model was fitted on.
    con : duckdb connection, optional
        The run's connection: transaction recipes compute on it (a fresh in-memory one,
        closed at the end, by default). ``spec.engine``'s memory limit and spill folder and
        the run's thread count are set on it.

    Notes
    -----
    A transactions source that is a Parquet file or glob (``lines/*.parquet``), or a CSV
    glob, is read by DuckDB where it lies (:func:`segmint.recipes.transactions.scanned_customer_table`):
    the lines never come into Python, so they may be larger than memory. Other sources are read
    into memory by :func:`segmint.io.read_source` first.

    Returns
    -------
    CustomerTable
    """
    from segmint.io import is_table

    source = _as_source(spec, source)
    own = con is None and spec.recipe.kind == "transactions"
    if own:
        con = connect(spec.engine, threads())
    elif con is not None:
        configure(con, spec.engine, threads())
    try:
        if spec.recipe.kind == "transactions" and not is_table(source) and scan_format(source):
            table = _scanned(spec, source, con)
        else:
            table = _read_and_build(spec, source, schema, con)
    finally:
        if own and con is not None:
            con.close()
    return _finish(table, spec)


def _hint_attributes(exc: InputError) -> InputError:
    # A missing role in a table that is one row per customer: say which recipe reads it.
    if "for role" not in exc.message:
        return exc
    return InputError(f"{exc.message}. If the table is already one row per customer "
                      f"(a CRM export), set recipe.kind: attributes", file=exc.file,
                      column=exc.column, row=exc.row)


def _scanned(spec: RunSpec, source: SourceSpec,
             con: duckdb.DuckDBPyConnection | None) -> CustomerTable:
    """The transactions recipe over a Parquet file or glob, or a CSV glob, run in DuckDB where
    the files lie: the lines never come into Python."""
    from segmint.recipes.transactions import scanned_customer_table

    recipe = spec.recipe
    try:
        return scanned_customer_table(source, recipe.features, recipe.cleaning,
                                      cluster_revenue=recipe.cluster_revenue, con=con)
    except InputError as exc:
        raise _hint_attributes(exc) from None
    except duckdb.OutOfMemoryException as exc:
        # What DuckDB could not spill: the user's setting to change, not a bug.
        raise SpecError(f"DuckDB ran out of memory computing feature set {recipe.features!r} "
                        f"(engine.memory_limit: {spec.engine.memory_limit or 'default'}, "
                        f"engine.temp_directory: {spec.engine.temp_directory or 'default'}): "
                        f"raise engine.memory_limit ({str(exc).splitlines()[0]})",
                        file=str(source.path)) from None


def _read_and_build(spec: RunSpec, source: Source, schema: dict[str, Any] | None,
                    con: duckdb.DuckDBPyConnection | None) -> CustomerTable:
    """Read the source into memory (pandas) and apply the recipe."""
    from segmint.io import is_table, read_frame, read_source
    from segmint.recipes.attributes import attributes_table
    from segmint.recipes.transactions import customer_table, required_roles

    where = "DataFrame"
    if is_table(source):
        source, spec = _frame_with_id(source, spec)

        def read(**roles: Any) -> pd.DataFrame:
            return read_frame(source, spec.source, name=where, **roles)
    else:
        where = str(source.path or source.url or source.duckdb)

        def read(**roles: Any) -> pd.DataFrame:
            return read_source(source, **roles)
    recipe = spec.recipe
    if recipe.kind == "attributes":
        raw = read()
        dayfirst = bool(getattr(source, "dayfirst", False)) or \
            bool(spec.source is not None and spec.source.dayfirst)
        table = attributes_table(raw, recipe, where=where, schema=schema, dayfirst=dayfirst)
    else:
        required, optional = required_roles(recipe.features, recipe.cleaning)
        try:
            raw = read(required=required, optional=optional)
        except InputError as exc:
            raise _hint_attributes(exc) from None
        table = customer_table(raw, recipe.features, recipe.cleaning,
                               cluster_revenue=recipe.cluster_revenue, con=con)
    table.source = dict(raw.attrs.get("source", {}))
    table.lines = len(raw)
    return table


def _finish(table: CustomerTable, spec: RunSpec) -> CustomerTable:
    # Notes on what reading did, constant features, the profile's revenue column.
    dropped = table.source.get("dropped") or {}
    if dropped:
        counts = ", ".join(f"{what} {n:,}" for what, n in dropped.items())
        table.notes.append(f"lines dropped as invalid (source.invalid: drop): {counts}")
    if table.source.get("date_order_ambiguous"):
        table.notes.append("no date tells day from month (every day and month is 12 or less); "
                           "dates were read month first: set source.dayfirst: true if they are "
                           "day first")
    constant = [f for f in table.features if table.frame[f].nunique(dropna=True) <= 1]
    for feature in constant:  # e.g. recency and frequency when the data span one day
        note = (f"{feature} is the same for every customer ({table.frame[feature].iloc[0]!r}), "
                f"so it separates no one; check the data's date range")
        log.warning(note)
        table.notes.append(note)
    if spec.profile.revenue is not None:
        if spec.profile.revenue not in table.frame.columns:
            raise SpecError(f"profile.revenue names {spec.profile.revenue!r}, which is not a "
                            f"column of the customer table {list(table.frame.columns)}")
        table.revenue = spec.profile.revenue
    return table
