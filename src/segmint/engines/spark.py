"""The Spark engine (``engine: spark``): the transactions recipes as Spark SQL, k-means with MLlib.

The same answers as the local engine (DuckDB + scikit-learn), computed where the lines live:

- :func:`spark_session` starts (or joins) a session from the spec's ``engine`` section: its
  ``master`` (``local[*]`` by default) and ``conf``; the web UI off, logs quiet, few shuffle
  partitions on a local master, the session time zone UTC (dates are wall-clock times, as
  DuckDB reads them), and ``SPARK_LOCAL_IP=127.0.0.1`` unless the environment says otherwise.
- :func:`read_transactions` reads a Parquet or CSV source into a Spark DataFrame of role
  columns, its headers mapped to roles by segmint's own reader (:func:`segmint.io.read_headers`
  and its role mapping), the values typed and the invalid lines dropped as the local reader
  does them.
- :func:`customer_frame` cleans the lines (the Insiders notebook's steps) and computes a
  feature set (``insiders``, ``rfm``, ``intel21``, ``intel3``) as Spark SQL ported from
  :mod:`segmint.recipes.transactions`; :func:`customer_table` collects the result, one row per
  customer, into the :class:`~segmint.recipes.CustomerTable` the local engine returns. Only
  aggregated rows ever reach the driver.
- :func:`scaled_features` and :func:`kmeans_solutions`: MLlib k-means (k-means||, seeded) on
  the features scaled in Spark, each solution measured by MLlib's silhouette and a
  Davies-Bouldin index computed from Spark aggregates.

What the local engine says about a feature set (its roles, its revenue column) is read from
:data:`segmint.recipes.transactions.FEATURE_SETS`; only the SQL is this module's own.
"""
from __future__ import annotations

import logging
import os
import re
import time
import uuid
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import pandas as pd

from segmint.errors import InputError, SpecError
from segmint.spec import CleaningSpec, EngineSpec, SourceSpec

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

    from segmint.recipes._table import CustomerTable

__all__ = ["spark_session", "read_transactions", "customer_frame", "customer_table",
           "collect_customers",
           "scaled_features", "kmeans_solutions", "cluster_measures", "SparkCustomers",
           "SparkKMeans", "SPARK_FEATURE_SETS"]

log = logging.getLogger(__name__)

_TEXT_ROLES = ("customer", "invoice", "product", "country")
_NUMERIC_ROLES = ("quantity", "price", "amount")
#: Date layouts a CSV's date column is tried in, in order (the local reader sniffs more).
_CSV_DATE_FORMATS = ("yyyy-MM-dd HH:mm:ss", "yyyy-MM-dd'T'HH:mm:ss", "yyyy-MM-dd HH:mm",
                     "yyyy-MM-dd", "M/d/yyyy H:mm", "M/d/yyyy H:mm:ss", "M/d/yyyy", "yyyyMMdd")


# --------------------------------------------------------------------------- the session

def spark_session(engine: EngineSpec | None = None, *, app_name: str = "segmint") -> SparkSession:
    """A SparkSession for ``engine`` (``engine.master``, ``engine.conf``); an existing session
    is reused, as ``SparkSession.builder.getOrCreate`` does.

    Parameters
    ----------
    engine : EngineSpec, optional
        Default ``engine: spark`` (master ``local[*]``, no extra settings).
    app_name : str
        The application's name in the cluster manager.

    Returns
    -------
    pyspark.sql.SparkSession

    Raises
    ------
    SpecError
        pyspark is not installed (``pip install segmint[spark]``) or Java cannot be started.
    """
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise SpecError("engine: spark needs pyspark: pip install 'segmint[spark]' (and Java 17)") \
            from None
    engine = engine or EngineSpec(kind="spark")
    # the driver and a local master talk over loopback unless told otherwise
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    conf = {"spark.ui.enabled": "false", "spark.ui.showConsoleProgress": "false",
            "spark.log.level": "ERROR", "spark.sql.session.timeZone": "UTC",
            "spark.sql.shuffle.partitions": str(_local_partitions(engine.master)),
            **engine.conf}
    builder = SparkSession.builder.master(engine.master).appName(app_name)
    for key, value in conf.items():
        builder = builder.config(key, value)
    try:
        spark = builder.getOrCreate()
    except Exception as exc:  # py4j's and the launcher's errors share no base class
        raise SpecError(f"could not start Spark (master {engine.master!r}): {exc}; is Java 17 "
                        f"installed (java -version)?") from exc
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def _local_partitions(master: str) -> int:
    # Spark's 200 shuffle partitions cost more than they give on one machine: 2 per core.
    found = re.fullmatch(r"local(?:\[(\d+|\*)(?:,\d+)?\])?", master.strip())
    if found is None:
        return 200
    cores = found.group(1)
    n = (os.cpu_count() or 1) if cores in (None, "*") else int(cores)
    return max(2, 2 * n)


# --------------------------------------------------------------------------- reading

def _quoted(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _where_of(source: SourceSpec) -> str:
    return str(source.path or source.url or source.duckdb)


def _spark_format(source: SourceSpec) -> str:
    if source.url or source.duckdb or not source.path:
        raise InputError("the Spark engine reads Parquet and CSV files (source.path); run this "
                         "source with the local engine", file=_where_of(source))
    if source.format in ("parquet", "csv"):
        return source.format
    if source.format == "auto":
        name = source.path.lower()
        if name.endswith(".parquet") or os.path.isdir(source.path):
            return "parquet"
        if name.endswith(".csv"):
            return "csv"
    raise InputError(f"the Spark engine reads Parquet and CSV files; {source.path!r} is read as "
                     f"{source.format!r}: run it with the local engine", file=source.path)


def _role_mapping(source: SourceSpec, required: list[str], optional: list[str]) -> dict[str, str]:
    """role -> header, by the local reader's own rules (source.columns, then the usual names)."""
    from segmint.io import read_headers
    from segmint.io._readers import _check_roles, _map_roles, _Opened, _refuse_repeated_headers

    roles = _check_roles(required, optional)
    headers = read_headers(source)
    where = _where_of(source)
    _refuse_repeated_headers(headers, where)

    def _no_rows(columns: list[str] | None) -> pd.DataFrame:
        raise AssertionError("the Spark engine loads rows with Spark")

    return _map_roles(_Opened(where=where, headers=headers, load=_no_rows), source, roles,
                      required)


def _typed(column: Column, dtype: Any, role: str) -> Column:
    """A role column typed as the local reader types it: labels as trimmed text (integral
    float ids without ".0"), measures as doubles, dates as timestamps."""
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    if role in _TEXT_ROLES:
        if isinstance(dtype, (T.DoubleType, T.FloatType)):
            number = column.cast("double")
            integral = number.isNotNull() & ~F.isnan(number) & (number % 1 == 0) \
                & (F.abs(number) < 2.0 ** 53)
            return F.when(integral, number.cast("long").cast("string")) \
                .when(F.isnan(number), F.lit(None).cast("string")) \
                .otherwise(number.cast("string"))
        text = F.trim(column.cast("string"))
        text = F.when(text == "", F.lit(None).cast("string")).otherwise(text)
        if role == "customer":  # ids that went through a float column upstream: "17850.0"
            text = F.regexp_replace(text, r"^([+-]?\d+)\.0*$", "$1")
        return text
    if role in _NUMERIC_ROLES:
        return column.cast("double")
    # the date
    if isinstance(dtype, (T.TimestampType, T.TimestampNTZType)):
        return column.cast("timestamp")
    if isinstance(dtype, T.DateType):
        return column.cast("timestamp")
    if isinstance(dtype, (T.IntegerType, T.LongType)):  # 19970101
        return F.to_timestamp(column.cast("string"), "yyyyMMdd")
    text = F.trim(column.cast("string"))
    return F.coalesce(*(F.try_to_timestamp(text, F.lit(fmt)) for fmt in _CSV_DATE_FORMATS))


def _invalid(columns: list[str]) -> Column:
    """True for the lines the local reader drops as invalid (source.invalid: drop)."""
    from pyspark.sql import functions as F

    from segmint.io import LARGEST_VALUE

    bad = F.lit(False)
    for role in columns:
        if role in _NUMERIC_ROLES:
            value = F.col(role)
            bad = bad | value.isNull() | F.isnan(value) | (F.abs(value) > LARGEST_VALUE)
        elif role == "date":
            # later than tomorrow by the local clock (a day of slack for time zones), or
            # before 1900; a date that did not parse is an error, as locally
            latest = (pd.Timestamp.now().normalize() + pd.Timedelta(days=2)).to_pydatetime()
            value = F.col("date")
            bad = bad | (value >= F.lit(latest)) | (value < F.lit(pd.Timestamp("1900-01-01")
                                                                  .to_pydatetime()))
    return bad


def read_transactions(spark: SparkSession, source: SourceSpec, *, required: Sequence[str],
                      optional: Sequence[str] = (), persist: bool = False
                      ) -> tuple[DataFrame, dict[str, Any]]:
    """Read a Parquet or CSV source into a Spark DataFrame of role columns.

    Headers are mapped to roles exactly as :func:`segmint.io.read_source` maps them; values
    are typed as it types them (labels as text, measures as doubles, dates as timestamps) and
    lines with a missing, infinite or huge measure, or a date before 1900 or in the future,
    are dropped.

    Parameters
    ----------
    spark : SparkSession
    source : SourceSpec
        A Parquet file or folder, or a CSV file with a header line (``source.delimiter``,
        default ``,``).
    required, optional : list of str
        Roles, as for :func:`segmint.io.read_source`.
    persist : bool
        Keep the valid lines in Spark's cache (memory, then disk), filled by the counting
        pass: for callers that read them more than once; they ``unpersist()`` them.

    Returns
    -------
    (pyspark.sql.DataFrame, dict)
        The valid lines (role columns in :data:`segmint.spec.ROLES` order), and the record
        ``{"file", "format", "columns", "headers", "rows", "dropped"}`` (``rows`` and
        ``dropped`` from one Spark aggregate and the source's row count).

    Raises
    ------
    InputError
        Not a Parquet or CSV file; a required or mapped column is absent; a date did not parse.
    """
    from pyspark.sql import functions as F

    fmt = _spark_format(source)
    mapping = _role_mapping(source, list(required), list(optional))
    assert source.path is not None
    if fmt == "parquet":
        raw = spark.read.parquet(source.path)
    else:
        raw = spark.read.csv(source.path, header=source.header, sep=source.delimiter or ",",
                             encoding=source.encoding or "UTF-8", inferSchema=False)
    types = {f.name: f.dataType for f in raw.schema.fields}
    typed = raw.select(*(_typed(F.col(_quoted(header)), types[header], role).alias(role)
                         for role, header in mapping.items()))
    columns = list(mapping)
    # a date that did not parse is not dropped here: it is an error, below
    lines = typed.where(~F.coalesce(_invalid(columns), F.lit(False)))
    if persist:
        from pyspark import StorageLevel

        lines = lines.persist(StorageLevel.MEMORY_AND_DISK)
    total = raw.count()  # Parquet: from the files' footers
    counts = lines.select(F.count(F.lit(1)).alias("lines"),
                          *([F.count_if(F.col("date").isNull()).alias("undated")]
                            if "date" in columns else [])).first()
    assert counts is not None
    if "date" in columns and counts["undated"]:
        if persist:
            lines.unpersist()
        raise InputError(f"{counts['undated']} dates could not be read by the Spark engine (it "
                         f"reads ISO dates and {', '.join(_CSV_DATE_FORMATS[4:])}); run it with "
                         f"the local engine", file=source.path, column=mapping["date"])
    dropped = int(total - counts["lines"])
    record = {"file": source.path, "format": fmt, "columns": dict(mapping),
              "headers": list(types), "rows": int(counts["lines"]),
              "dropped": {"invalid": dropped} if dropped else {}}
    return lines, record


# --------------------------------------------------------------------------- cleaning

def _cleaned(lines: DataFrame, cleaning: CleaningSpec) -> DataFrame:
    """The lines kept by the switched-on cleaning steps, in clean_transactions' order."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    if cleaning.impute_customer:
        # one new id per invoice without a customer, above the largest numeric id, in invoice order
        top = lines.select(F.coalesce(F.max(F.expr("try_cast(customer AS BIGINT)")), F.lit(0))
                           .alias("top"))
        missing = (lines.where(F.col("customer").isNull()).select("invoice").distinct()
                   .crossJoin(top)
                   .select(F.col("invoice").alias("_invoice"),
                           (F.col("top") + F.dense_rank().over(Window.orderBy("invoice")))
                           .cast("string").alias("_new_id")))
        joined = lines.join(missing, F.col("customer").isNull()
                            & (F.col("invoice") == F.col("_invoice")), "left")
        lines = joined.select(*(F.coalesce(F.col("customer"), F.col("_new_id")).alias("customer")
                                if c == "customer" else F.col(c) for c in lines.columns))
    if cleaning.drop_non_product_codes:
        from segmint.recipes.transactions import NON_PRODUCT_CODE

        lines = lines.where(~F.coalesce(F.col("product"), F.lit(""))
                            .rlike(f"^(?:{NON_PRODUCT_CODE})$"))
    if cleaning.min_unit_price is not None:
        lines = lines.where(F.col("price") >= float(cleaning.min_unit_price))
    for option, column in (("drop_customers", "customer"), ("drop_countries", "country")):
        values = [str(v) for v in getattr(cleaning, option)]
        if values:
            lines = lines.where(F.col(column).isNull() | ~F.col(column).isin(values))
    return lines


# --------------------------------------------------------------------------- feature sets

def _insiders_sql(tx: str, columns: list[str]) -> str:
    return f"""
        WITH last_day AS (SELECT max(CAST(date AS DATE)) AS d FROM {tx}),
        purchases AS (
            SELECT customer,
                   sum(line_total) AS gross_revenue,
                   max(CAST(date AS DATE)) AS last_purchase,
                   min(CAST(date AS DATE)) AS first_purchase,
                   count(*) AS quantity_of_products,
                   count(DISTINCT occasion) AS occasions
            FROM {tx} WHERE NOT is_return GROUP BY customer
        ),
        returns AS (
            SELECT customer, count(DISTINCT occasion) AS returns
            FROM {tx} WHERE is_return GROUP BY customer
        )
        SELECT p.customer,
               CAST(p.gross_revenue AS DOUBLE) AS gross_revenue,
               CAST(datediff((SELECT d FROM last_day), p.last_purchase) AS DOUBLE) AS recency_days,
               CAST(p.quantity_of_products AS DOUBLE) AS quantity_of_products,
               CAST(coalesce(r.returns, 0) AS DOUBLE) AS returns,
               CASE WHEN datediff(p.last_purchase, p.first_purchase) = 0 THEN 0.0D
                    ELSE p.occasions / datediff(p.last_purchase, p.first_purchase) END AS frequency
        FROM purchases p LEFT JOIN returns r ON p.customer = r.customer
    """


def _rfm_sql(tx: str, columns: list[str]) -> str:
    return f"""
        WITH last_day AS (SELECT max(CAST(date AS DATE)) AS d FROM {tx})
        SELECT customer,
               CAST(datediff((SELECT d FROM last_day), max(CAST(date AS DATE))) AS DOUBLE)
                   AS recency_days,
               CAST(count(DISTINCT occasion) AS DOUBLE) AS frequency,
               CAST(sum(line_total) AS DOUBLE) AS monetary
        FROM {tx} WHERE NOT is_return GROUP BY customer
    """


def _weekdays_months() -> tuple[list[str], list[str]]:
    from segmint.recipes.transactions import _MONTHS, _WEEKDAYS

    return list(_WEEKDAYS), list(_MONTHS)


def _intel_sql(tx: str, columns: list[str]) -> str:
    weekdays, months = _weekdays_months()
    # Spark's dayofweek: 1 = Sunday ... 7 = Saturday; the list runs Monday ... Sunday
    day_cols = ", ".join(f"CAST(count_if(dayofweek(date) = {(i + 1) % 7 + 1}) AS DOUBLE) AS {d}"
                         for i, d in enumerate(weekdays))
    month_cols = ", ".join(f"CAST(count_if(month(date) = {i + 1}) AS DOUBLE) AS {m}"
                           for i, m in enumerate(months))
    # the kit counts invoice numbers per customer (lines, not distinct invoices)
    orders = "count(invoice)" if "invoice" in columns else "count(*)"
    return f"""
        WITH last_ts AS (SELECT max(date) AS ts FROM {tx})
        SELECT customer,
               CAST(avg(line_total) AS DOUBLE) AS Amount,
               CAST({orders} AS DOUBLE) AS NumberOfOrders,
               -- timedelta.days: whole days, floored
               CAST(floor((unix_micros((SELECT ts FROM last_ts)) - unix_micros(max(date)))
                          / 86400000000D) AS DOUBLE) AS Recency,
               {day_cols}, {month_cols},
               CAST(coalesce(sum(CASE WHEN NOT is_return THEN line_total END), 0) AS DOUBLE)
                   AS revenue
        FROM {tx} GROUP BY customer
    """


def _intel_columns(frame: DataFrame) -> DataFrame:
    """The kit pivots observed values only: drop weekdays and months that never occur (one
    aggregate), ordered alphabetically as its pivot does."""
    from pyspark.sql import functions as F

    weekdays, months = _weekdays_months()
    sums = frame.select(*(F.sum(c).alias(c) for c in weekdays + months)).first()
    assert sums is not None
    days = sorted(d for d in weekdays if sums[d])
    seen = sorted(m for m in months if sums[m])
    return frame.select("customer", "Amount", "NumberOfOrders", "Recency", *days, *seen, "revenue")


def _trimmed(frame: DataFrame, columns: list[str]) -> DataFrame:
    """The kit's trimming, [q05 - 1.5 span, q95 + 1.5 span], one column after another, with
    Spark's exact percentile (linear interpolation, as pandas' quantile)."""
    from pyspark.sql import functions as F

    for col in columns:
        row = frame.select(F.percentile(col, 0.05).alias("q05"),
                           F.percentile(col, 0.95).alias("q95")).first()
        assert row is not None
        q05, q95 = float(row["q05"]), float(row["q95"])
        span = q95 - q05
        frame = frame.where((F.col(col) >= q05 - 1.5 * span) & (F.col(col) <= q95 + 1.5 * span))
    return frame


def _intel21(spark: SparkSession, tx: str, columns: list[str], kept: list[DataFrame]) -> DataFrame:
    # one row per customer, read four more times (column sums, three trimming passes): cached
    frame = spark.sql(_intel_sql(tx, columns)).cache()
    kept.append(frame)
    return _trimmed(_intel_columns(frame), ["Amount", "Recency", "NumberOfOrders"])


def _intel3(spark: SparkSession, tx: str, columns: list[str], kept: list[DataFrame]) -> DataFrame:
    return _intel21(spark, tx, columns, kept).select("customer", "Amount", "NumberOfOrders", "Recency",
                                               "revenue")


#: feature set name -> ``fn(spark, lines_view, role_columns, kept) -> DataFrame`` (customer +
#: the columns the local feature set of the same name gives, in its order; frames it caches
#: go to ``kept``, released with the result)
SPARK_FEATURE_SETS: dict[str, Any] = {
    "insiders": lambda spark, tx, columns, kept: spark.sql(_insiders_sql(tx, columns)),
    "rfm": lambda spark, tx, columns, kept: spark.sql(_rfm_sql(tx, columns)),
    "intel21": _intel21,
    "intel3": _intel3,
}


@dataclass
class SparkCustomers:
    """A feature set computed in Spark, not yet collected.

    Attributes
    ----------
    frame : pyspark.sql.DataFrame
        ``customer`` (text) and the feature set's columns, one row per customer.
    features : list of str
        The clustered columns, in order (the local engine's choice for the feature set).
    revenue : str or None
        The revenue column.
    notes : list of str
        What was done, in the local engine's words.
    source : dict
        The reader's record (:func:`read_transactions`).
    lines : int
        Valid lines read.
    feature_set : str
    """

    frame: DataFrame
    features: list[str]
    revenue: str | None
    notes: list[str] = field(default_factory=list)
    source: dict[str, Any] = field(default_factory=dict)
    lines: int = 0
    feature_set: str = "insiders"
    cached: list[DataFrame] = field(default_factory=list)
    views: list[str] = field(default_factory=list)

    def release(self) -> None:
        """Drop what computing the frame cached (the lines, intermediate tables) and its temp
        views; ``frame`` is not usable afterwards."""
        for frame in self.cached:
            frame.unpersist()
        spark = self.frame.sparkSession
        for view in self.views:
            spark.catalog.dropTempView(view)
        self.cached, self.views = [], []


def customer_frame(spark: SparkSession, source: SourceSpec, features: str = "insiders",
                   cleaning: CleaningSpec | None = None, *,
                   cluster_revenue: bool = False) -> SparkCustomers:
    """Read ``source``, clean its lines and compute a feature set, all in Spark.

    Parameters
    ----------
    spark : SparkSession
    source : SourceSpec
        A Parquet or CSV file of transaction lines.
    features : str
        ``insiders``, ``rfm``, ``intel21`` or ``intel3``.
    cleaning : CleaningSpec, optional
    cluster_revenue : bool
        Cluster the revenue column too when the feature set keeps it apart (intel21/3).

    Returns
    -------
    SparkCustomers

    Raises
    ------
    InputError
        Unknown feature set (or one the Spark engine does not compute yet); a needed role is
        missing; a cleaning option needs a missing role.
    """
    from pyspark.sql import functions as F

    from segmint.recipes.transactions import FEATURE_SETS, required_roles

    if features not in FEATURE_SETS or features not in SPARK_FEATURE_SETS:
        raise InputError(f"the Spark engine computes the feature sets {sorted(SPARK_FEATURE_SETS)}; "
                         f"got {features!r}")
    fs = FEATURE_SETS[features]
    cleaning = cleaning or CleaningSpec()
    required, optional = required_roles(features, cleaning)
    lines, record = read_transactions(spark, source, required=required, optional=optional,
                                      persist=True)
    cached = [lines]
    columns = lines.columns
    where = _where_of(source)
    try:
        _check_lines(features, cleaning, columns, where)
    except InputError:
        lines.unpersist()
        raise
    mapped = record["columns"]
    notes = []
    if "amount" in columns:
        line_total = F.col("amount")
        notes.append(f"amount taken from column {mapped.get('amount', 'amount')!r}")
    else:
        line_total = F.col("quantity") * F.col("price")
        notes.append(f"line total = quantity x price (columns {mapped.get('quantity', 'quantity')!r}"
                     f" x {mapped.get('price', 'price')!r})")
    is_return = F.col("quantity") < 0 if "quantity" in columns else F.col("amount") < 0
    if "invoice" in columns:
        occasion = F.col("invoice").cast("string")
    else:
        occasion = F.col("date").cast("date").cast("string")
        notes.append("no invoice column: a customer's purchase lines on one calendar day count "
                     "as one purchase occasion")
    cleaned = _cleaned(lines, cleaning)
    counts = cleaned.select(F.count(F.lit(1)).alias("kept"),
                            F.count("customer").alias("with_customer")).first()
    assert counts is not None
    kept, with_customer = int(counts["kept"]), int(counts["with_customer"])
    if any(getattr(cleaning, o) not in (None, False, []) for o in
           ("impute_customer", "drop_non_product_codes", "min_unit_price", "drop_countries",
            "drop_customers")):
        notes.append(f"cleaning kept {kept} of {record['rows']} lines")
    if with_customer < kept:
        notes.append(f"{kept - with_customer} of {kept} lines have no customer and are left out")
    tx = (cleaned.where(F.col("customer").isNotNull())
          .select(*columns, line_total.alias("line_total"), is_return.alias("is_return"),
                  occasion.alias("occasion")))
    view = f"segmint_tx_{uuid.uuid4().hex[:12]}"
    tx.createOrReplaceTempView(view)
    frame = SPARK_FEATURE_SETS[features](spark, view, columns, cached)
    names = [c for c in frame.columns if c != "customer"]
    feature_cols = [c for c in names if c != fs.revenue or fs.revenue_is_feature]
    if cluster_revenue and fs.revenue is not None and fs.revenue not in feature_cols:
        feature_cols.append(fs.revenue)
    frame = frame.select("customer", *feature_cols, *(c for c in names if c not in feature_cols))
    return SparkCustomers(frame=frame, features=feature_cols, revenue=fs.revenue, notes=notes,
                          source=record, lines=int(record["rows"]), feature_set=features,
                          cached=cached, views=[view])


def _check_lines(features: str, cleaning: CleaningSpec, columns: list[str], where: str) -> None:
    # The local engine's checks, on the role columns read (the same messages).
    from segmint.recipes.transactions import _CLEANING_ROLES, FEATURE_SETS, LINE_TOTAL_ROLES

    fs = FEATURE_SETS[features]
    for role in fs.roles:
        if role not in columns:
            raise InputError(f"feature set {features!r} needs the {role!r} role, which the "
                             f"transactions lack; map it with source.columns.{role}", file=where,
                             column=role)
    if "amount" not in columns and not {"quantity", "price"} <= set(columns):
        missing = [r for r in LINE_TOTAL_ROLES if r not in columns]
        raise InputError(f"feature set {features!r} needs a line total: the 'amount' role, or "
                         f"both 'quantity' and 'price'; missing {missing}", file=where,
                         column=missing[0])
    for option, role in _CLEANING_ROLES.items():
        value = getattr(cleaning, option)
        if value not in (None, False, []) and role not in columns:
            raise InputError(f"cleaning.{option} needs the {role!r} role, which the transactions "
                             f"lack; map it with source.columns.{role} or switch cleaning.{option} "
                             f"off", file=where, column=role)


def customer_table(spark: SparkSession, source: SourceSpec, features: str = "insiders",
                   cleaning: CleaningSpec | None = None, *,
                   cluster_revenue: bool = False) -> CustomerTable:
    """:func:`customer_frame`, collected (:func:`collect_customers`) and its cache released:
    the local engine's :func:`segmint.recipes.transactions.customer_table` computed by Spark.

    Only the aggregated table (one row per customer) is collected to the driver.

    Returns
    -------
    CustomerTable
        As the local engine's: ``frame`` indexed by customer (string, sorted), float64 columns
        (the features, then the revenue column when it is not a feature), the feature report
        in ``info``, ``notes``, ``source`` and ``lines`` from the Spark read.

    Raises
    ------
    InputError
        As :func:`customer_frame`; no customer is left; a feature is not finite.
    """
    found = customer_frame(spark, source, features, cleaning, cluster_revenue=cluster_revenue)
    try:
        return collect_customers(found)
    finally:
        found.release()


def collect_customers(found: SparkCustomers) -> CustomerTable:
    """A :class:`SparkCustomers` collected into the local engine's
    :class:`~segmint.recipes.CustomerTable` (its cache is kept: the caller releases it).

    Raises
    ------
    InputError
        No customer is left; a feature is not finite.
    """
    from segmint.recipes._table import CustomerTable
    from segmint.recipes.transactions import FEATURE_SETS, _feature_info

    with warnings.catch_warnings():
        # pyspark 4.3 warns that it "does not yet fully support pandas >= 3": collecting
        # plain strings and doubles, as here, is covered by the engine's tests
        warnings.filterwarnings("ignore", "PySpark does not yet fully support pandas",
                                FutureWarning)
        collected: pd.DataFrame = cast(pd.DataFrame, found.frame.toPandas())
    table = collected.set_index("customer").sort_index()
    table.index = table.index.astype("string")
    table.index.name = "customer"
    table = table.astype("float64")
    where = found.source.get("file")
    features = found.feature_set
    if table.empty:
        raise InputError(f"feature set {features!r} produced no customers (no purchase lines "
                         f"with a customer?)", file=where)
    finite = np.isfinite(table.to_numpy(dtype="float64")).all(axis=0)
    if not finite.all():
        bad = table.columns[~finite].tolist()
        raise InputError(f"feature set {features!r} produced non-finite values in {bad}",
                         file=where, column=bad[0])
    return CustomerTable(
        frame=table, types={c: "numeric" for c in table.columns}, features=list(found.features),
        revenue=found.revenue, info=_feature_info(table, FEATURE_SETS[features]),
        notes=list(found.notes), source=dict(found.source), lines=found.lines,
        schema={"recipe": "transactions", "features": features, "engine": "spark"})


# --------------------------------------------------------------------------- k-means

def scaled_features(frame: DataFrame, features: list[str], scaling: str = "log") -> DataFrame:
    """The features scaled in Spark as :func:`segmint.prepare.scaling.make_scaler` scales them.

    ``standard``: (x - mean) / population standard deviation (1 where it is 0), as
    scikit-learn's StandardScaler; ``log``: signed log1p, then standard; ``none``: as they are.
    Means and deviations come from one Spark aggregate.

    Returns
    -------
    pyspark.sql.DataFrame
        ``customer``, the scaled features (same names) and ``features`` (an MLlib vector of them).

    Raises
    ------
    SpecError
        A scaling the Spark engine does not compute yet (minmax, robust).
    """
    from pyspark.ml.feature import VectorAssembler
    from pyspark.sql import functions as F

    if scaling not in ("standard", "log", "none"):
        raise SpecError(f"the Spark engine scales with 'standard', 'log' or 'none'; got {scaling!r}")
    cols = {f: F.col(_quoted(f)).cast("double") for f in features}
    if scaling == "log":
        cols = {f: F.signum(c) * F.log1p(F.abs(c)) for f, c in cols.items()}
    out = frame.select("customer", *(c.alias(f) for f, c in cols.items()))
    if scaling != "none":
        stats = out.select(*(F.avg(_quoted(f)).alias(f"m{i}") for i, f in enumerate(features)),
                           *(F.stddev_pop(_quoted(f)).alias(f"s{i}")
                             for i, f in enumerate(features))).first()
        assert stats is not None
        eps = 10 * np.finfo(np.float64).eps  # scikit-learn's _handle_zeros_in_scale
        scaled = []
        for i, f in enumerate(features):
            mean, std = float(stats[f"m{i}"]), float(stats[f"s{i}"])
            scale = std if std >= eps else 1.0
            scaled.append(((F.col(_quoted(f)) - mean) / scale).alias(f))
        out = out.select("customer", *scaled)
    assembler = VectorAssembler(inputCols=list(features), outputCol="features")
    return assembler.transform(out)


@dataclass
class SparkKMeans:
    """One MLlib k-means solution.

    Attributes
    ----------
    k : int
    predictions : pyspark.sql.DataFrame
        ``customer`` and ``prediction`` (the segment, 0..k-1), not collected.
    centers : numpy.ndarray
        (k, features) cluster centres in the scaled space.
    sizes : numpy.ndarray
        Customers per segment.
    inertia : float
        Sum of squared distances to the nearest centre (MLlib's training cost).
    silhouette : float
        The Euclidean silhouette the local engine's leaderboard reports: scikit-learn's, on a
        seeded sample of at most ``silhouette_sample`` customers (all of them up to that).
    silhouette_sample : int
        Customers the silhouette was measured on.
    silhouette_squared : float
        MLlib's ClusteringEvaluator silhouette over every customer, squared Euclidean
        distance (scikit-learn's ``silhouette_score(X, labels, metric="sqeuclidean")``).
    davies_bouldin, calinski_harabasz : float
        From Spark aggregates (:func:`cluster_measures`).
    seconds : float
        Fit + metrics.
    model : pyspark.ml.clustering.KMeansModel
    """

    k: int
    predictions: DataFrame
    centers: np.ndarray
    sizes: np.ndarray
    inertia: float
    silhouette: float
    silhouette_sample: int
    silhouette_squared: float
    davies_bouldin: float
    calinski_harabasz: float
    seconds: float
    model: Any = None


def cluster_measures(predictions: DataFrame, features: list[str],
                     prediction: str = "prediction") -> dict[str, Any]:
    """Davies-Bouldin and Calinski-Harabasz from Spark aggregates, as scikit-learn's
    ``davies_bouldin_score`` and ``calinski_harabasz_score``.

    Two passes over the rows: each segment's centroid (mean) and size, then each segment's
    mean Euclidean distance and summed squared distance to its centroid (the centroids joined
    in as a broadcast table). The indices are computed on the driver from those k rows.

    Parameters
    ----------
    predictions : pyspark.sql.DataFrame
        The feature columns and the segment column.
    features : list of str
    prediction : str

    Returns
    -------
    dict
        ``davies_bouldin``, ``calinski_harabasz``, ``inertia`` (squared distances to the
        segments' means), ``sizes`` (segment -> customers).
    """
    from pyspark.sql import functions as F

    centroids = predictions.groupBy(prediction).agg(
        F.count(F.lit(1)).alias("_n"),
        *(F.avg(_quoted(f)).alias(f"_c{i}") for i, f in enumerate(features)))
    squares = [(F.col(_quoted(f)) - F.col(f"_c{i}")) ** 2 for i, f in enumerate(features)]
    total = squares[0]
    for square in squares[1:]:
        total = total + square
    rows = (predictions.join(F.broadcast(centroids), prediction)
            .groupBy(prediction)
            .agg(F.avg(F.sqrt(total)).alias("_spread"), F.sum(total).alias("_within"),
                 F.first("_n").alias("_n"),
                 *(F.first(f"_c{i}").alias(f"_c{i}") for i in range(len(features))))
            .orderBy(prediction).collect())
    spread = np.array([r["_spread"] for r in rows], dtype="float64")
    within = np.array([r["_within"] for r in rows], dtype="float64")
    sizes = np.array([r["_n"] for r in rows], dtype="int64")
    centres = np.array([[r[f"_c{i}"] for i in range(len(features))] for r in rows],
                       dtype="float64")
    k, n = len(rows), int(sizes.sum())
    out: dict[str, Any] = {"sizes": {int(r[prediction]): int(r["_n"]) for r in rows},
                           "inertia": float(within.sum()), "davies_bouldin": float("nan"),
                           "calinski_harabasz": float("nan")}
    if not 2 <= k < n:
        return out
    # scikit-learn's davies_bouldin_score from here on
    between = np.sqrt(((centres[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2))
    if np.allclose(spread, 0) or np.allclose(between, 0):
        out["davies_bouldin"] = 0.0
    else:
        between[between == 0] = np.inf
        combined = spread[:, None] + spread[None, :]
        out["davies_bouldin"] = float(np.mean(np.max(combined / between, axis=1)))
    # ... and its calinski_harabasz_score: between- over within-segment dispersion
    mean = (centres * sizes[:, None]).sum(axis=0) / n
    dispersion_between = float((sizes * ((centres - mean) ** 2).sum(axis=1)).sum())
    dispersion_within = float(within.sum())
    out["calinski_harabasz"] = 1.0 if dispersion_within == 0 else \
        dispersion_between * (n - k) / (dispersion_within * (k - 1))
    return out


def _sampled_silhouette(predicted: DataFrame, features: list[str], n: int, sample: int,
                        seed: int) -> tuple[float, int]:
    """The Euclidean silhouette the local engine reports (scikit-learn's, on at most ``sample``
    rows): only that seeded sample is collected."""
    from sklearn.metrics import silhouette_score

    rows = predicted.select(*(_quoted(f) for f in features), "prediction")
    if n > sample:  # Bernoulli sampling a little above the target, then cut to it
        rows = rows.sample(fraction=min(1.0, 1.1 * sample / n), seed=seed).limit(sample)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "PySpark does not yet fully support pandas",
                                FutureWarning)
        collected = cast(pd.DataFrame, rows.toPandas())
    labels = collected["prediction"].to_numpy()
    if not 2 <= np.unique(labels).size < len(labels):
        return float("nan"), 0
    X = collected[features].to_numpy(dtype="float64")
    return float(silhouette_score(X, labels)), len(labels)


def kmeans_solutions(scaled: DataFrame, features: list[str], ks: list[int], *, seed: int = 0,
                     n_init: int = 4, max_iter: int = 300, tol: float = 1e-4,
                     silhouette_sample: int = 20_000) -> list[SparkKMeans]:
    """MLlib k-means (k-means|| initialisation, seeded) for each k, measured in Spark.

    One MLlib run can stop in a poor local optimum (on Online Retail's insiders features at
    k=4, two of six seeds cost 10-16% more than the best, their segments far from
    scikit-learn's); as scikit-learn's ``n_init``, each k is fitted from ``n_init`` seeds
    (``seed``, ``seed + 1``, ...) and the run of least cost kept.

    Parameters
    ----------
    scaled : pyspark.sql.DataFrame
        :func:`scaled_features` output (``customer``, the features, ``features`` vector).
    features : list of str
        The scaled feature columns.
    ks : list of int
        Numbers of segments, each at least 2.
    seed : int
    n_init : int
        Runs per k; the one with the least training cost is kept.
    max_iter, tol : MLlib's maxIter and tol.
    silhouette_sample : int
        At most this many customers are collected for the Euclidean silhouette (as the local
        engine's ``solution_metrics``); every other measure is a Spark aggregate.

    Returns
    -------
    list of SparkKMeans
    """
    from pyspark.ml.clustering import KMeans
    from pyspark.ml.evaluation import ClusteringEvaluator

    evaluator = ClusteringEvaluator(featuresCol="features", predictionCol="prediction",
                                    metricName="silhouette", distanceMeasure="squaredEuclidean")
    data = scaled.cache()
    out = []
    try:
        for k in ks:
            if k < 2:
                raise SpecError(f"k-means needs at least 2 segments; got n_clusters={k}")
            t0 = time.perf_counter()
            estimators = [KMeans(k=k, seed=seed + i, initMode="k-means||", maxIter=max_iter,
                                 tol=tol, featuresCol="features", predictionCol="prediction")
                          for i in range(max(1, n_init))]
            # the runs are independent Spark jobs: submitted together, the scheduler overlaps
            # their many small iterations (twice as fast on local[2]; the same models)
            with ThreadPoolExecutor(max_workers=len(estimators)) as pool:
                runs = list(pool.map(lambda estimator: estimator.fit(data), estimators))
            model = min(runs, key=lambda m: m.summary.trainingCost)
            predicted = model.transform(data)
            squared = float(evaluator.evaluate(predicted))
            measures = cluster_measures(predicted, features)
            summary = model.summary
            silhouette, measured = _sampled_silhouette(
                predicted, features, int(sum(summary.clusterSizes)), silhouette_sample, seed)
            out.append(SparkKMeans(
                k=k, predictions=predicted.select("customer", "prediction"),
                centers=np.array(model.clusterCenters(), dtype="float64"),
                sizes=np.array(summary.clusterSizes, dtype="int64"),
                inertia=float(summary.trainingCost), silhouette=silhouette,
                silhouette_sample=measured, silhouette_squared=squared,
                davies_bouldin=measures["davies_bouldin"],
                calinski_harabasz=measures["calinski_harabasz"],
                seconds=time.perf_counter() - t0, model=model))
            log.info("spark k-means k=%d: silhouette %.4f, Davies-Bouldin %.4f", k, silhouette,
                     measures["davies_bouldin"])
    finally:
        data.unpersist()
    return out

