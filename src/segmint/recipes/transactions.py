"""Transactions (one row per line item) -> one row per customer, computed set-wise in DuckDB.

The input frame has the canonical role columns of :data:`segmint.spec.ROLES` (customer,
invoice, date, quantity, price, amount, product, country), as :func:`segmint.io.read_source`
returns them. Every feature set needs ``customer``, ``date`` and a line total: the ``amount``
role when the source has one (a line's total, as in CDNOW's "dollar value"), else
``quantity`` x ``price``. ``invoice`` and ``product`` are optional.

:func:`customer_table` loads the lines once into a DuckDB table on one connection, with the
role columns found plus three computed ones, and hands its name to the feature set:

- ``line_total``: ``amount``, or ``quantity * price``;
- ``is_return``: ``quantity < 0``, or ``amount < 0`` when there is no quantity. Purchase lines
  are those where it is false;
- ``occasion``: what makes one purchase occasion of a customer: the invoice, or, with no
  invoice column, the calendar day (one customer's lines on one day count as one purchase,
  as in CDNOW where one line is one day's purchase).

Lines without a customer are left out of that table. Feature sets are registered by name
(:func:`register_feature_set`), so new ones (basket size, tenure, category shares) plug in
without touching the sweep; each declares the column holding each customer's revenue.
"""
from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from segmint.errors import InputError
from segmint.recipes._table import FEATURE_INFO_COLUMNS, CustomerTable
from segmint.spec import ROLES, CleaningSpec, SourceSpec

__all__ = ["FEATURE_SETS", "FeatureSet", "register_feature_set", "clean_transactions",
           "customer_table", "scanned_customer_table", "required_roles", "LINE_TOTAL_ROLES"]

log = logging.getLogger(__name__)

#: ``fn(con, tx) -> table``: ``tx`` names a table on ``con`` (see the module docstring); the
#: result is indexed by customer, one column per feature plus the revenue column.
FeatureFn = Callable[[duckdb.DuckDBPyConnection, str], pd.DataFrame]

#: The roles a line total is made from: ``amount``, or ``quantity`` and ``price``.
LINE_TOTAL_ROLES = ("quantity", "price", "amount")

#: Cleaning option -> the role it reads.
#: A stock code of letters only is a service line, not a product: POST(age), D(iscount),
#: M(anual), DOT(com postage), CRUK (a charity), ...
NON_PRODUCT_CODE = "[A-Za-z]+"

_CLEANING_ROLES = {"impute_customer": "invoice", "drop_non_product_codes": "product",
                   "min_unit_price": "price", "drop_countries": "country"}

#: A line whose amount and quantity x price differ by more than this is a mismatch ...
_MISMATCH_TOLERANCE = 0.01
#: ... and more than this share of mismatched lines is worth a warning.
_MISMATCH_SHARE = 0.01


@dataclass(frozen=True)
class FeatureSet:
    """A registered feature set: what it needs and what it gives.

    Attributes
    ----------
    name : str
        The name a spec uses (``recipe.features``).
    fn : callable
        ``fn(con, tx) -> pandas.DataFrame`` indexed by customer.
    roles : tuple of str
        Roles that must be present (besides a line total, which every feature set needs:
        ``amount`` or ``quantity`` and ``price``).
    optional : tuple of str
        Roles used when present (``invoice``: purchase occasions are invoices, else days).
    revenue : str or None
        The output column holding each customer's gross spend (sum of line totals over
        purchase lines); None if the feature set computes none.
    revenue_is_feature : bool
        Whether the revenue column is one of the clustered features. When false it is kept
        for the profile only, unless ``cluster_revenue`` asks for it.
    description : str
        One line for listings.
    """

    name: str
    fn: FeatureFn
    roles: tuple[str, ...]
    optional: tuple[str, ...] = ()
    revenue: str | None = None
    revenue_is_feature: bool = True
    description: str = ""


#: name -> :class:`FeatureSet`
FEATURE_SETS: dict[str, FeatureSet] = {}


def register_feature_set(name: str, roles: tuple[str, ...], *, revenue: str | None = None,
                         revenue_is_feature: bool = True, optional: tuple[str, ...] = (),
                         description: str = "") -> Callable[[FeatureFn], FeatureFn]:
    """Register ``fn(con, tx) -> customer table`` under ``name`` (a decorator).

    Parameters
    ----------
    name : str
        The feature set's name.
    roles : tuple of str
        Roles it cannot do without; a line total (``amount``, or ``quantity`` and ``price``)
        is always needed and need not be listed.
    revenue : str, optional
        The output column with each customer's gross spend.
    revenue_is_feature : bool
        Whether that column is clustered by default.
    optional : tuple of str
        Roles it uses when the source has them.
    description : str
        One line; default the first line of ``fn``'s docstring.

    Examples
    --------
    >>> @register_feature_set("spend_only", roles=("customer",), revenue="spend")
    ... def spend_only(con, tx):
    ...     '''Gross spend per customer.'''
    ...     return con.execute(f"SELECT customer, sum(line_total) FILTER (WHERE NOT is_return) "
    ...                        f"AS spend FROM {tx} GROUP BY customer").df().set_index("customer")
    >>> FEATURE_SETS["spend_only"].description
    'Gross spend per customer.'
    >>> del FEATURE_SETS["spend_only"]
    """
    unknown = sorted((set(roles) | set(optional)) - set(ROLES))
    if unknown:
        raise ValueError(f"unknown roles {unknown}; roles are {list(ROLES)}")

    def deco(fn: FeatureFn) -> FeatureFn:
        doc = description or (fn.__doc__ or "").strip().split("\n")[0]
        FEATURE_SETS[name] = FeatureSet(name=name, fn=fn, roles=tuple(roles),
                                        optional=tuple(optional), revenue=revenue,
                                        revenue_is_feature=revenue_is_feature, description=doc)
        return fn
    return deco


def _feature_set(name: str) -> FeatureSet:
    if name not in FEATURE_SETS:
        raise InputError(f"unknown feature set {name!r}; known: {sorted(FEATURE_SETS)}")
    return FEATURE_SETS[name]


def _active_cleaning(cleaning: CleaningSpec) -> list[str]:
    # The cleaning options switched on that read a role of their own.
    out = []
    for option in _CLEANING_ROLES:
        value = getattr(cleaning, option)
        if value is not None and value is not False and value != []:
            out.append(option)
    return out


def required_roles(features: str, cleaning: CleaningSpec | None = None) -> tuple[list[str], list[str]]:
    """Roles to read for a feature set: (required, optional), each in :data:`ROLES` order.

    Required are the feature set's own roles (customer and date for the bundled sets).
    Optional are the line-total roles (amount, quantity, price: :func:`customer_table` checks
    that there is amount, or quantity and price), the feature set's optional roles, and the
    roles the switched-on cleaning options read (:func:`customer_table` says which option
    needs a role the source lacks).

    Examples
    --------
    >>> required_roles("rfm")
    (['customer', 'date'], ['invoice', 'quantity', 'price', 'amount'])
    >>> required_roles("insiders", CleaningSpec(drop_non_product_codes=True))[1]
    ['invoice', 'quantity', 'price', 'amount', 'product']
    """
    fs = _feature_set(features)
    cleaning = cleaning or CleaningSpec()
    wanted = {*LINE_TOTAL_ROLES, *fs.optional, *(_CLEANING_ROLES[o] for o in _active_cleaning(cleaning))}
    required = [r for r in ROLES if r in fs.roles]
    optional = [r for r in ROLES if r in wanted and r not in fs.roles]
    return required, optional


def _record(tx: pd.DataFrame | dict[str, Any]) -> dict[str, Any]:
    # What the reader recorded of the source: a frame's attrs["source"], or the record itself
    # (lines scanned in DuckDB are no frame).
    if isinstance(tx, dict):
        return tx
    return tx.attrs.get("source", {}) if hasattr(tx, "attrs") else {}


def _where(tx: pd.DataFrame | dict[str, Any]) -> str | None:
    # The file (or table) the transactions came from, for error messages.
    record = _record(tx)
    for key in ("file", "url", "duckdb", "frame"):
        if record.get(key):
            return str(record[key])
    return None


def _check_cleaning_roles(cleaning: CleaningSpec, columns: list[str], where: str | None) -> None:
    for option in _active_cleaning(cleaning):
        role = _CLEANING_ROLES[option]
        if role not in columns:
            raise InputError(
                f"cleaning.{option} needs the {role!r} role, which the transactions lack; map "
                f"it with source.columns.{role} or switch cleaning.{option} off", file=where,
                column=role)


def _found(tx: pd.DataFrame | dict[str, Any], columns: list[str]) -> str:
    # What the source did give, in its own header names, so the user sees what to map.
    record = _record(tx)
    mapped = record.get("columns", {})
    found = ", ".join(f"{r} ({mapped[r]!r})" if r in mapped else r for r in columns) or "none"
    text = f"roles found: {found}"
    if record.get("headers"):
        text += f"; its columns are {list(record['headers'])}"
    return text


def _check_roles(fs: FeatureSet, tx: pd.DataFrame | dict[str, Any], columns: list[str]) -> None:
    where = _where(tx)
    for role in fs.roles:
        if role not in columns:
            raise InputError(
                f"feature set {fs.name!r} needs the {role!r} role, which the transactions lack "
                f"({_found(tx, columns)}); map it with source.columns.{role}", file=where, column=role)
    if "amount" not in columns and not {"quantity", "price"} <= set(columns):
        missing = [r for r in LINE_TOTAL_ROLES if r not in columns]
        raise InputError(
            f"feature set {fs.name!r} needs a line total: the 'amount' role, or both 'quantity' "
            f"and 'price'; missing {missing} ({_found(tx, columns)}). Map them with "
            f"source.columns (e.g. source.columns.amount: <the line-total column>)",
            file=where, column=missing[0])


def _cleaning_sql(con: duckdb.DuckDBPyConnection, src: str, cleaning: CleaningSpec,
                  temp: list[str]) -> str:
    """A SELECT over ``src`` applying the switched-on cleaning steps (names it registers go to
    ``temp``)."""
    query = f"SELECT * FROM {src}"
    if cleaning.impute_customer:
        # One new id per invoice that has no customer; ids start above the largest numeric id.
        query = f"""
            WITH base AS (SELECT coalesce(max(TRY_CAST(customer AS BIGINT)), 0) AS top FROM {src}),
            missing AS (
                SELECT invoice, (SELECT top FROM base) + dense_rank() OVER (ORDER BY invoice) AS new_id
                FROM (SELECT DISTINCT invoice FROM {src} WHERE customer IS NULL)
            )
            SELECT s.* REPLACE (coalesce(s.customer, CAST(missing.new_id AS VARCHAR)) AS customer)
            FROM {src} s LEFT JOIN missing ON s.customer IS NULL AND s.invoice = missing.invoice
        """
    conditions = []
    if cleaning.drop_non_product_codes:
        conditions.append(f"NOT regexp_full_match(coalesce(product, ''), '{NON_PRODUCT_CODE}')")
    if cleaning.min_unit_price is not None:
        conditions.append(f"price >= {float(cleaning.min_unit_price)!r}")
    for option, column in (("drop_customers", "customer"), ("drop_countries", "country")):
        values = getattr(cleaning, option)
        if values:
            name = f"{src}_{option}"
            con.register(name, pd.DataFrame({"v": [str(v) for v in values]}))
            temp.append(name)
            conditions.append(f"{column} IS NULL OR {column} NOT IN (SELECT v FROM {name})")
    if conditions:
        where = " AND ".join(f"({c})" for c in conditions)
        query = f"SELECT * FROM ({query}) WHERE {where}"
    return query


def _register_roles(con: duckdb.DuckDBPyConnection, tx: pd.DataFrame,
                    temp: list[str]) -> tuple[str, list[str]]:
    # Only the role columns go in; ids are text so cleaning and the output index agree.
    columns = [r for r in ROLES if r in tx.columns]
    name = f"segmint_raw_{uuid.uuid4().hex[:12]}"
    con.register(name, tx[columns])
    temp.append(name)
    if "customer" in columns:
        typed = f"segmint_typed_{uuid.uuid4().hex[:12]}"
        con.execute(f"CREATE TEMP VIEW {typed} AS "
                    f"SELECT * REPLACE (CAST(customer AS VARCHAR) AS customer) FROM {name}")
        temp.append(typed)
        name = typed
    return name, columns


def _drop(con: duckdb.DuckDBPyConnection, temp: list[str]) -> None:
    # Views and tables first (they may read a registered frame), then the frames.
    for name in reversed(temp):
        for statement in (f"DROP VIEW IF EXISTS {name}", f"DROP TABLE IF EXISTS {name}"):
            try:
                con.execute(statement)
            except duckdb.Error:
                pass
        try:
            con.unregister(name)
        except (duckdb.Error, KeyError):
            pass


def clean_transactions(tx: pd.DataFrame, cleaning: CleaningSpec) -> pd.DataFrame:
    """Apply the Insiders notebook's cleaning steps that ``cleaning`` switches on, set-wise.

    Steps, in this order: impute a missing customer id per invoice (new ids above the largest
    numeric id, one per invoice, in invoice order; needs ``invoice``); drop non-product stock
    codes (letters only: POST, D, M, DOT, CRUK, ...; needs ``product``); drop unit price below
    ``min_unit_price`` (needs ``price``); drop listed customers; drop listed countries (needs
    ``country``). Rows still without a customer are left for the feature sets to drop.

    Parameters
    ----------
    tx : pandas.DataFrame
        Transactions with role columns (other columns are dropped).
    cleaning : CleaningSpec

    Returns
    -------
    pandas.DataFrame
        The lines kept, role columns only, customer ids as text.

    Raises
    ------
    InputError
        A switched-on step needs a role the transactions lack.

    Examples
    --------
    >>> tx = pd.DataFrame({"customer": [None, None, "12"], "invoice": ["B", "A", "C"],
    ...                    "product": ["X1", "POST", "X2"], "price": [1.0, 1.0, 0.01]})
    >>> clean_transactions(tx, CleaningSpec(impute_customer=True, drop_non_product_codes=True,
    ...                                     min_unit_price=0.04))["customer"].tolist()
    ['14']
    """
    con = duckdb.connect()
    temp: list[str] = []
    try:
        src, columns = _register_roles(con, tx, temp)
        _check_cleaning_roles(cleaning, columns, _where(tx))
        out = con.execute(_cleaning_sql(con, src, cleaning, temp)).df()
    finally:
        _drop(con, temp)
        con.close()
    out = out.reset_index(drop=True)
    log.info("cleaning kept %d of %d lines", len(out), len(tx))
    return out


def _load_lines(con: duckdb.DuckDBPyConnection, tx: pd.DataFrame, fs: FeatureSet,
                cleaning: CleaningSpec, temp: list[str]) -> tuple[str, list[str]]:
    """Clean the lines and store them as the table the feature set reads; return its name and
    the notes on what was done."""
    src, columns = _register_roles(con, tx, temp)
    return _prepare_lines(con, src, columns, fs, cleaning, temp, record=_record(tx), lines=len(tx))


def _prepare_lines(con: duckdb.DuckDBPyConnection, src: str, columns: list[str], fs: FeatureSet,
                   cleaning: CleaningSpec, temp: list[str], *, record: dict[str, Any], lines: int,
                   counts: tuple[int, int] | None = None,
                   materialize: bool = True) -> tuple[str, list[str]]:
    """:func:`_load_lines` from the role columns of ``src`` (a table or view on ``con``, ids
    as text): the lines with a customer, cleaned, plus ``line_total``, ``is_return`` and
    ``occasion``. ``materialize``: stored as a table (lines in memory), else a view that each
    feature query reads again (lines scanned from files). ``counts``: the lines kept by the
    cleaning and those with a customer, when the caller has counted them already."""
    where = _where(record)
    _check_roles(fs, record, columns)
    _check_cleaning_roles(cleaning, columns, where)
    mapped = record.get("columns", {})
    notes = []
    if "amount" in columns:
        line_total = "CAST(amount AS DOUBLE)"
        notes.append(f"amount taken from column {mapped.get('amount', 'amount')!r}")
    else:
        line_total = "quantity * price"
        notes.append(f"line total = quantity x price (columns {mapped.get('quantity', 'quantity')!r}"
                     f" x {mapped.get('price', 'price')!r})")
    is_return = "quantity < 0" if "quantity" in columns else "amount < 0"
    if "invoice" in columns:
        occasion = "CAST(invoice AS VARCHAR)"
    else:
        occasion = "CAST(CAST(date AS DATE) AS VARCHAR)"
        notes.append("no invoice column: a customer's purchase lines on one calendar day count "
                     "as one purchase occasion")
    cleaned = f"segmint_clean_{uuid.uuid4().hex[:12]}"
    con.execute(f"CREATE TEMP VIEW {cleaned} AS {_cleaning_sql(con, src, cleaning, temp)}")
    temp.append(cleaned)
    cleaned_any = bool(_active_cleaning(cleaning) or cleaning.drop_customers)
    if counts is None or cleaned_any:
        kept, with_customer = _one_row(con, f"SELECT count(*), count(customer) FROM {cleaned}")
    else:
        kept, with_customer = counts
    if cleaned_any:
        notes.append(f"cleaning kept {kept} of {lines} lines")
    if with_customer < kept:
        notes.append(f"{kept - with_customer} of {kept} lines have no customer and are left out")
    name = f"segmint_tx_{uuid.uuid4().hex[:12]}"
    con.execute(f"""
        CREATE TEMP {'TABLE' if materialize else 'VIEW'} {name} AS
        SELECT c.* REPLACE (CAST(date AS TIMESTAMP) AS date),
               {line_total} AS line_total, {is_return} AS is_return, {occasion} AS occasion
        FROM {cleaned} c
        WHERE customer IS NOT NULL
    """)
    temp.append(name)
    log.info("%d lines with a customer for feature set %r", with_customer, fs.name)
    if {"amount", "quantity", "price"} <= set(columns):
        bad, total = _one_row(con, f"""
            SELECT count(*) FILTER (WHERE abs(amount - quantity * price) > {_MISMATCH_TOLERANCE}),
                   count(*)
            FROM {name} WHERE amount IS NOT NULL AND quantity IS NOT NULL AND price IS NOT NULL
        """)
        if total and bad > _MISMATCH_SHARE * total:
            message = (f"amount differs from quantity x price by more than {_MISMATCH_TOLERANCE} on "
                       f"{bad} of {total} lines ({bad / total:.1%}); using amount as the line total")
            log.warning(message)
            notes.append(message)
    return name, notes


def _one_row(con: duckdb.DuckDBPyConnection, query: str) -> tuple[Any, ...]:
    # Aggregates without GROUP BY always return exactly one row.
    return con.execute(query).fetchall()[0]


def _columns(con: duckdb.DuckDBPyConnection, tx: str) -> list[str]:
    return list(con.table(tx).columns)


@register_feature_set("insiders", roles=("customer", "date"), optional=("invoice",),
                      revenue="gross_revenue")
def insiders_features(con: duckdb.DuckDBPyConnection, tx: str) -> pd.DataFrame:
    """The Insiders notebook's five features, one row per customer with a purchase.

    - ``gross_revenue``: sum of line totals over purchase lines (the revenue column);
    - ``recency_days``: days from the data's last date to the customer's last purchase date;
    - ``quantity_of_products``: number of purchase lines (products bought, with repeats);
    - ``returns``: distinct return occasions (invoices, or days without invoices) among
      return lines;
    - ``frequency``: distinct purchase occasions / days between first and last purchase,
      0 when that span is 0 days.
    """
    # Distinct occasions are counted in two steps (the (customer, occasion) pairs, then per
    # customer): DuckDB spills that to its temp directory under a memory limit, and not a
    # grouped count(DISTINCT ...).
    return con.execute(f"""
        WITH last_day AS (SELECT max(CAST(date AS DATE)) AS d FROM {tx}),
        purchases AS (
            SELECT customer,
                   sum(line_total) AS gross_revenue,
                   max(CAST(date AS DATE)) AS last_purchase,
                   min(CAST(date AS DATE)) AS first_purchase,
                   count(*) AS quantity_of_products
            FROM {tx} WHERE NOT is_return GROUP BY customer
        ),
        occasions AS (
            SELECT customer,
                   count(occasion) FILTER (WHERE NOT is_return) AS occasions,
                   count(occasion) FILTER (WHERE is_return) AS returns
            FROM (SELECT customer, occasion, is_return FROM {tx} GROUP BY customer, occasion, is_return)
            GROUP BY customer
        )
        SELECT p.customer,
               CAST(p.gross_revenue AS DOUBLE) AS gross_revenue,
               CAST(date_diff('day', p.last_purchase, (SELECT d FROM last_day)) AS DOUBLE) AS recency_days,
               CAST(p.quantity_of_products AS DOUBLE) AS quantity_of_products,
               CAST(coalesce(o.returns, 0) AS DOUBLE) AS returns,
               CASE WHEN date_diff('day', p.first_purchase, p.last_purchase) = 0 THEN 0.0
                    ELSE o.occasions / date_diff('day', p.first_purchase, p.last_purchase) END AS frequency
        FROM purchases p JOIN occasions o USING (customer)
        ORDER BY p.customer
    """).df().set_index("customer")


@register_feature_set("rfm", roles=("customer", "date"), optional=("invoice",), revenue="monetary")
def rfm_features(con: duckdb.DuckDBPyConnection, tx: str) -> pd.DataFrame:
    """Classic RFM: recency_days, frequency, monetary, one row per customer with a purchase.

    - ``recency_days``: days from the data's last date to the customer's last purchase date;
    - ``frequency``: number of purchase occasions (distinct invoices among purchase lines, or
      distinct purchase days when there is no invoice);
    - ``monetary``: sum of line totals over purchase lines (the revenue column).

    Quintile scores and the named RFM segments come from
    :func:`segmint.recipes.rfm.rfm_segments` applied to this table.
    """
    # Occasions counted in two steps, as in insiders_features (spillable).
    return con.execute(f"""
        WITH last_day AS (SELECT max(CAST(date AS DATE)) AS d FROM {tx}),
        purchases AS (
            SELECT customer, max(CAST(date AS DATE)) AS last_purchase, sum(line_total) AS monetary
            FROM {tx} WHERE NOT is_return GROUP BY customer
        ),
        occasions AS (
            SELECT customer, count(occasion) AS occasions
            FROM (SELECT customer, occasion FROM {tx} WHERE NOT is_return GROUP BY customer, occasion)
            GROUP BY customer
        )
        SELECT p.customer,
               CAST(date_diff('day', p.last_purchase, (SELECT d FROM last_day)) AS DOUBLE)
                   AS recency_days,
               CAST(o.occasions AS DOUBLE) AS frequency,
               CAST(p.monetary AS DOUBLE) AS monetary
        FROM purchases p JOIN occasions o USING (customer) ORDER BY p.customer
    """).df().set_index("customer")


_WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
_MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December"]


def _intel_table(con: duckdb.DuckDBPyConnection, tx: str) -> pd.DataFrame:
    """Intel's customer-segmentation kit features, before trimming, plus ``revenue``."""
    day_cols = ", ".join(f"count(*) FILTER (WHERE dayname(date) = '{d}') AS \"{d}\"" for d in _WEEKDAYS)
    month_cols = ", ".join(f"count(*) FILTER (WHERE monthname(date) = '{m}') AS \"{m}\"" for m in _MONTHS)
    # The kit counts invoice numbers per customer (lines, not distinct invoices).
    orders = "count(invoice)" if "invoice" in _columns(con, tx) else "count(*)"
    df = con.execute(f"""
        WITH last_ts AS (SELECT max(date) AS ts FROM {tx})
        SELECT customer,
               avg(line_total) AS "Amount",
               CAST({orders} AS DOUBLE) AS "NumberOfOrders",
               -- timedelta.days: whole days, floored
               CAST(floor(epoch((SELECT ts FROM last_ts) - max(date)) / 86400) AS DOUBLE) AS "Recency",
               {day_cols}, {month_cols},
               CAST(coalesce(sum(line_total) FILTER (WHERE NOT is_return), 0) AS DOUBLE) AS revenue
        FROM {tx} GROUP BY customer ORDER BY customer
    """).df()
    df = df.set_index("customer")
    # The kit pivots observed values only (value_counts().unstack()): drop weekdays and months
    # that never occur, then order them alphabetically as the pivot does.
    days = sorted(d for d in _WEEKDAYS if df[d].sum() > 0)
    months = sorted(m for m in _MONTHS if df[m].sum() > 0)
    return df[["Amount", "NumberOfOrders", "Recency", *days, *months, "revenue"]].astype("float64")


def _trim(df: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """The kit's outlier trimming: keep [q05 - 1.5 span, q95 + 1.5 span], one column after another."""
    for col in columns:
        q05, q95 = df[col].quantile(0.05), df[col].quantile(0.95)
        span = q95 - q05
        df = df[(df[col] >= q05 - 1.5 * span) & (df[col] <= q95 + 1.5 * span)]
    return df


@register_feature_set("intel21", roles=("customer", "date"), optional=("invoice",),
                      revenue="revenue", revenue_is_feature=False)
def intel21_features(con: duckdb.DuckDBPyConnection, tx: str) -> pd.DataFrame:
    """Intel kit's 21 features: Amount (mean line total), NumberOfOrders (lines), Recency (days),
    line counts per weekday and per month; plus ``revenue`` (gross spend: sum of line totals
    over purchase lines), kept for the profile. 5%/95% +- 1.5x span trimming on Amount,
    Recency, NumberOfOrders, in that order."""
    return _trim(_intel_table(con, tx), ["Amount", "Recency", "NumberOfOrders"])


@register_feature_set("intel3", roles=("customer", "date"), optional=("invoice",),
                      revenue="revenue", revenue_is_feature=False)
def intel3_features(con: duckdb.DuckDBPyConnection, tx: str) -> pd.DataFrame:
    """Intel kit's small feature set: Amount, NumberOfOrders, Recency (same rows as intel21),
    plus ``revenue``."""
    return intel21_features(con, tx)[["Amount", "NumberOfOrders", "Recency", "revenue"]]


def _feature_info(frame: pd.DataFrame, fs: FeatureSet) -> pd.DataFrame:
    # The feature report: every column is a number the feature set computed.
    rows: list[dict[str, Any]] = []
    for column in frame.columns:
        values = frame[column]
        rows.append({
            "column": column, "type": "numeric", "inferred": False,
            "reason": f"computed by feature set {fs.name!r}"
                      + (" (revenue)" if column == fs.revenue else ""),
            "count": int(values.notna().sum()), "nulls": int(values.isna().sum()), "imputed": 0,
            "distinct": int(values.nunique()), "min": float(values.min()),
            "max": float(values.max()), "mean": float(values.mean()),
            "stddev": float(values.std()) if len(values) > 1 else 0.0,
            "top_levels": None, "became": None,
        })
    return pd.DataFrame(rows, columns=list(FEATURE_INFO_COLUMNS))


def customer_table(tx: pd.DataFrame, features: str = "insiders", cleaning: CleaningSpec | None = None,
                   *, cluster_revenue: bool = False,
                   con: duckdb.DuckDBPyConnection | None = None) -> CustomerTable:
    """Clean the transactions, then compute a registered feature set, on one DuckDB connection.

    Parameters
    ----------
    tx : pandas.DataFrame
        Transaction lines with role columns (:func:`segmint.io.read_source` output); needs
        ``customer``, ``date`` and ``amount`` or ``quantity`` and ``price``. When both the
        amount and quantity x price are present, the amount is the line total (a warning is
        logged when they differ by more than a cent on more than 1% of lines).
    features : str
        A name in :data:`FEATURE_SETS`: ``insiders``, ``rfm``, ``intel21``, ``intel3``.
    cleaning : CleaningSpec, optional
        Cleaning steps (see :func:`clean_transactions`); none by default.
    cluster_revenue : bool
        Cluster on the revenue column too when the feature set keeps it apart (intel21/3).
    con : duckdb.DuckDBPyConnection, optional
        Connection to compute on; a fresh in-memory one by default. Temporary tables and
        views made here are dropped again.

    Returns
    -------
    CustomerTable
        ``frame`` indexed by customer (string), float64 columns: the features, then the
        revenue column if it is not a feature; ``types`` all "numeric"; ``revenue`` the feature
        set's revenue column; ``notes`` say where the line total came from and what cleaning
        kept; ``lines`` = ``len(tx)``; ``source`` = ``tx.attrs["source"]``.

    Raises
    ------
    InputError
        Unknown feature set; a needed role is missing (the message names it and
        ``source.columns``); a cleaning option needs a missing role; no customer is left;
        a feature is not finite.

    Examples
    --------
    >>> tx = pd.DataFrame({"customer": ["1", "1", "2"],
    ...                    "date": pd.to_datetime(["2020-01-01", "2020-01-05", "2020-01-05"]),
    ...                    "amount": [10.0, 5.0, 7.5]})
    >>> table = customer_table(tx, "rfm")
    >>> table.frame  # doctest: +NORMALIZE_WHITESPACE
              recency_days  frequency  monetary
    customer
    1                  0.0        2.0      15.0
    2                  0.0        1.0       7.5
    >>> table.revenue, table.features
    ('monetary', ['recency_days', 'frequency', 'monetary'])
    """
    fs = _feature_set(features)
    cleaning = cleaning or CleaningSpec()
    own = con is None
    con = duckdb.connect() if con is None else con
    temp: list[str] = []
    try:
        name, notes = _load_lines(con, tx, fs, cleaning, temp)
        table = fs.fn(con, name)
    finally:
        _drop(con, temp)
        if own:
            con.close()
    return _customer_table(table, fs, notes, _record(tx), len(tx), cluster_revenue)


def scanned_customer_table(source: SourceSpec, features: str = "insiders",
                           cleaning: CleaningSpec | None = None, *, cluster_revenue: bool = False,
                           con: duckdb.DuckDBPyConnection | None = None) -> CustomerTable:
    """:func:`customer_table` of the lines in ``source``'s files, computed where they lie.

    DuckDB reads the Parquet file or glob (or the CSV glob) itself: the lines are typed,
    checked, counted and cleaned in SQL and never loaded into Python; only the customer table
    comes back. The result equals ``customer_table(read_source(source, ...), ...)``: the same
    customers and values, the same ``source`` record (``dropped`` counts per reason, ``rows``),
    the same errors.

    Parameters
    ----------
    source : SourceSpec
        A source :func:`segmint.recipes._scan.scan_format` accepts.
    features, cleaning, cluster_revenue
        As for :func:`customer_table`.
    con : duckdb.DuckDBPyConnection, optional
        Connection to compute on (its memory limit, spill folder and threads apply, see
        :func:`segmint.recipes._scan.configure`); a fresh in-memory one by default.

    Returns
    -------
    CustomerTable
        As :func:`customer_table`; ``source`` also holds ``files`` (how many were read).
    """
    from segmint.recipes._scan import scan_lines

    fs = _feature_set(features)
    cleaning = cleaning or CleaningSpec()
    required, optional = required_roles(features, cleaning)
    own = con is None
    con = duckdb.connect() if con is None else con
    temp: list[str] = []
    try:
        # Ids as numbers while grouping, unless a cleaning step compares them as text.
        scan = scan_lines(con, source, required, optional, temp, numeric_customer=not (
            cleaning.impute_customer or cleaning.drop_customers))
        name, notes = _prepare_lines(con, scan.view, scan.columns, fs, cleaning, temp,
                                     record=scan.record, lines=scan.lines,
                                     counts=(scan.lines, scan.with_customer), materialize=False)
        table = fs.fn(con, name)
    finally:
        _drop(con, temp)
        if own:
            con.close()
    if scan.numeric_customer:  # ordered as text, as ORDER BY on the text ids orders them
        table.index = table.index.astype("int64").astype("string")
        table = table.sort_index()
    return _customer_table(table, fs, notes, scan.record, scan.lines, cluster_revenue)


def _customer_table(table: pd.DataFrame, fs: FeatureSet, notes: list[str], record: dict[str, Any],
                    lines: int, cluster_revenue: bool) -> CustomerTable:
    # The feature set's frame, typed and checked, as a CustomerTable.
    features = fs.name
    table.index = table.index.astype("string")
    table.index.name = "customer"
    table = table.astype("float64")
    if table.empty:
        raise InputError(f"feature set {features!r} produced no customers (no purchase lines "
                         f"with a customer?)", file=_where(record))
    finite = np.isfinite(table.to_numpy(dtype="float64")).all(axis=0)
    if not finite.all():
        bad = table.columns[~finite].tolist()
        raise InputError(f"feature set {features!r} produced non-finite values in {bad}",
                         file=_where(record), column=bad[0])
    feature_cols = [c for c in table.columns if c != fs.revenue or fs.revenue_is_feature]
    if cluster_revenue and fs.revenue is not None and fs.revenue not in feature_cols:
        feature_cols.append(fs.revenue)
    table = table[feature_cols + [c for c in table.columns if c not in feature_cols]]
    return CustomerTable(
        frame=table, types={c: "numeric" for c in table.columns}, features=feature_cols,
        revenue=fs.revenue, info=_feature_info(table, fs), notes=notes,
        source=dict(record), lines=lines,
        schema={"recipe": "transactions", "features": fs.name})
