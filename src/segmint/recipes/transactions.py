"""Transactions (one row per invoice line) -> one row per customer, computed set-wise in DuckDB.

The input frame has the canonical role columns of :data:`segmint.spec.ROLES`
(customer, invoice, date, quantity, price, product, country), as :func:`segmint.io.read_source`
returns them. Feature sets are registered by name so new ones (basket size, tenure, category
shares) plug in without touching the sweep.
"""
from __future__ import annotations

import logging
from typing import Callable

import duckdb
import numpy as np
import pandas as pd

from segmint.errors import InputError
from segmint.spec import CleaningSpec

__all__ = ["FEATURE_SETS", "register_feature_set", "clean_transactions", "customer_table",
           "required_roles"]

log = logging.getLogger(__name__)

FeatureFn = Callable[[pd.DataFrame], pd.DataFrame]

#: name -> (function, roles it needs)
FEATURE_SETS: dict[str, tuple[FeatureFn, tuple[str, ...]]] = {}


def register_feature_set(name: str, roles: tuple[str, ...]) -> Callable[[FeatureFn], FeatureFn]:
    """Register ``fn(transactions) -> customer table`` under ``name``.

    ``roles`` are the canonical columns the feature set reads.
    """
    def deco(fn: FeatureFn) -> FeatureFn:
        FEATURE_SETS[name] = (fn, roles)
        return fn
    return deco


def required_roles(features: str, cleaning: CleaningSpec | None = None) -> tuple[list[str], list[str]]:
    """Roles a feature set needs (required) and roles cleaning may use (optional)."""
    if features not in FEATURE_SETS:
        raise InputError(f"unknown feature set {features!r}; known: {sorted(FEATURE_SETS)}")
    required = list(FEATURE_SETS[features][1])
    cleaning = cleaning or CleaningSpec()
    if cleaning.drop_non_product_codes and "product" not in required:
        required.append("product")
    if cleaning.drop_countries and "country" not in required:
        required.append("country")
    if cleaning.impute_customer and "invoice" not in required:
        required.append("invoice")
    return required, []


def _connect(tx: pd.DataFrame) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.register("tx", tx)
    return con


def clean_transactions(tx: pd.DataFrame, cleaning: CleaningSpec) -> pd.DataFrame:
    """Apply the Insiders notebook's cleaning steps that ``cleaning`` switches on, set-wise.

    Steps, in this order: impute a missing customer id per invoice (new ids above the largest
    numeric id, one per invoice, in invoice order); drop non-product stock codes (letters only:
    POST, D, M, DOT, CRUK, ...); drop unit price below ``min_unit_price``; drop listed customers;
    drop listed countries. Rows still without a customer are dropped afterwards by the feature
    sets, not here.

    Examples
    --------
    >>> tx = pd.DataFrame({"customer": [None, None, "12"], "invoice": ["B", "A", "C"],
    ...                    "product": ["X1", "POST", "X2"], "price": [1.0, 1.0, 0.01]})
    >>> clean_transactions(tx, CleaningSpec(impute_customer=True, drop_non_product_codes=True,
    ...                                     min_unit_price=0.04))["customer"].tolist()
    ['14']
    """
    out = tx
    con = _connect(out)
    if cleaning.impute_customer:
        # One new id per invoice that has no customer; ids start above the largest numeric id.
        out = con.execute("""
            WITH base AS (SELECT coalesce(max(TRY_CAST(customer AS BIGINT)), 0) AS top FROM tx),
            missing AS (
                SELECT invoice, (SELECT top FROM base) + dense_rank() OVER (ORDER BY invoice) AS new_id
                FROM (SELECT DISTINCT invoice FROM tx WHERE customer IS NULL)
            )
            SELECT tx.* REPLACE (coalesce(tx.customer, CAST(missing.new_id AS VARCHAR)) AS customer)
            FROM tx LEFT JOIN missing ON tx.customer IS NULL AND tx.invoice = missing.invoice
        """).df()
        con.close()
        con = _connect(out)
    conditions = []
    if cleaning.drop_non_product_codes:
        conditions.append("NOT regexp_full_match(coalesce(product, ''), '[A-Za-z]+')")
    if cleaning.min_unit_price is not None:
        conditions.append(f"price >= {float(cleaning.min_unit_price)!r}")
    if cleaning.drop_customers:
        con.register("drop_customers", pd.DataFrame({"c": cleaning.drop_customers}))
        conditions.append("customer IS NULL OR customer NOT IN (SELECT c FROM drop_customers)")
    if cleaning.drop_countries:
        con.register("drop_countries", pd.DataFrame({"c": cleaning.drop_countries}))
        conditions.append("country IS NULL OR country NOT IN (SELECT c FROM drop_countries)")
    if conditions:
        where = " AND ".join(f"({c})" for c in conditions)
        out = con.execute(f"SELECT * FROM tx WHERE {where}").df()
    con.close()
    out = out.reset_index(drop=True)
    log.info("cleaning kept %d of %d lines", len(out), len(tx))
    return out


@register_feature_set("insiders", roles=("customer", "invoice", "date", "quantity", "price"))
def insiders_features(tx: pd.DataFrame) -> pd.DataFrame:
    """The Insiders notebook's five features, one row per customer with a purchase.

    - ``gross_revenue``: sum of quantity * price over purchases (quantity >= 0);
    - ``recency_days``: days from the data's last date to the customer's last purchase date;
    - ``quantity_of_products``: number of purchase lines (products bought, with repeats);
    - ``returns``: distinct return invoices (lines with negative quantity);
    - ``frequency``: distinct purchase invoices / days between first and last purchase,
      0 when that span is 0 days.
    """
    con = _connect(tx)
    df = con.execute("""
        WITH t AS (SELECT * FROM tx WHERE customer IS NOT NULL),
        last_day AS (SELECT max(CAST(date AS DATE)) AS d FROM t),
        purchases AS (
            SELECT customer,
                   sum(quantity * price) AS gross_revenue,
                   max(CAST(date AS DATE)) AS last_purchase,
                   min(CAST(date AS DATE)) AS first_purchase,
                   count(*) AS quantity_of_products,
                   count(DISTINCT invoice) AS invoices
            FROM t WHERE quantity >= 0 GROUP BY customer
        ),
        returns AS (
            SELECT customer, count(DISTINCT invoice) AS returns
            FROM t WHERE quantity < 0 GROUP BY customer
        )
        SELECT p.customer,
               CAST(p.gross_revenue AS DOUBLE) AS gross_revenue,
               CAST(date_diff('day', p.last_purchase, (SELECT d FROM last_day)) AS DOUBLE) AS recency_days,
               CAST(p.quantity_of_products AS DOUBLE) AS quantity_of_products,
               CAST(coalesce(r.returns, 0) AS DOUBLE) AS returns,
               CASE WHEN date_diff('day', p.first_purchase, p.last_purchase) = 0 THEN 0.0
                    ELSE p.invoices / date_diff('day', p.first_purchase, p.last_purchase) END AS frequency
        FROM purchases p LEFT JOIN returns r USING (customer)
        ORDER BY p.customer
    """).df()
    con.close()
    return df.set_index("customer")


_WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
_MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December"]


def _intel_table(tx: pd.DataFrame) -> pd.DataFrame:
    """Intel's customer-segmentation kit features, before trimming."""
    con = _connect(tx)
    day_cols = ", ".join(f"count(*) FILTER (WHERE dayname(date) = '{d}') AS \"{d}\"" for d in _WEEKDAYS)
    month_cols = ", ".join(f"count(*) FILTER (WHERE monthname(date) = '{m}') AS \"{m}\"" for m in _MONTHS)
    df = con.execute(f"""
        WITH t AS (SELECT * FROM tx WHERE customer IS NOT NULL),
        last_ts AS (SELECT max(date) AS ts FROM t)
        SELECT customer,
               avg(quantity * price) AS "Amount",
               CAST(count(invoice) AS DOUBLE) AS "NumberOfOrders",
               -- timedelta.days: whole days, floored
               CAST(floor(epoch((SELECT ts FROM last_ts) - max(date)) / 86400) AS DOUBLE) AS "Recency",
               {day_cols}, {month_cols}
        FROM t GROUP BY customer ORDER BY customer
    """).df()
    con.close()
    df = df.set_index("customer")
    # The kit pivots observed values only (value_counts().unstack()): drop weekdays and months
    # that never occur, then order them alphabetically as the pivot does.
    days = sorted(d for d in _WEEKDAYS if df[d].sum() > 0)
    months = sorted(m for m in _MONTHS if df[m].sum() > 0)
    return df[["Amount", "NumberOfOrders", "Recency", *days, *months]].astype("float64")


def _trim(df: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """The kit's outlier trimming: keep [q05 - 1.5 span, q95 + 1.5 span], one column after another."""
    for col in columns:
        q05, q95 = df[col].quantile(0.05), df[col].quantile(0.95)
        span = q95 - q05
        df = df[(df[col] >= q05 - 1.5 * span) & (df[col] <= q95 + 1.5 * span)]
    return df


@register_feature_set("intel21", roles=("customer", "invoice", "date", "quantity", "price"))
def intel21_features(tx: pd.DataFrame) -> pd.DataFrame:
    """Intel kit's 21 features: Amount (mean line value), NumberOfOrders (lines), Recency (days),
    line counts per weekday and per month; rows with no customer dropped; 5%/95% +- 1.5x span
    trimming on Amount, Recency, NumberOfOrders."""
    return _trim(_intel_table(tx), ["Amount", "Recency", "NumberOfOrders"])


@register_feature_set("intel3", roles=("customer", "invoice", "date", "quantity", "price"))
def intel3_features(tx: pd.DataFrame) -> pd.DataFrame:
    """Intel kit's small feature set: Amount, NumberOfOrders, Recency (same rows as intel21)."""
    return intel21_features(tx)[["Amount", "NumberOfOrders", "Recency"]]


def customer_table(tx: pd.DataFrame, features: str = "insiders",
                   cleaning: CleaningSpec | None = None) -> pd.DataFrame:
    """Clean the transactions, then compute a registered feature set.

    Returns a DataFrame indexed by ``customer`` (string), one float64 column per feature.
    """
    if features not in FEATURE_SETS:
        raise InputError(f"unknown feature set {features!r}; known: {sorted(FEATURE_SETS)}")
    if cleaning is not None:
        tx = clean_transactions(tx, cleaning)
    fn, _ = FEATURE_SETS[features]
    table = fn(tx)
    table.index = table.index.astype("string")
    table.index.name = "customer"
    if table.empty:
        raise InputError(f"feature set {features!r} produced no customers (no rows with a customer?)")
    if not np.isfinite(table.to_numpy(dtype="float64")).all():
        bad = table.columns[~np.isfinite(table.to_numpy(dtype="float64")).all(axis=0)].tolist()
        raise InputError(f"feature set {features!r} produced non-finite values in {bad}")
    return table
