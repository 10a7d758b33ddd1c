"""Revenue, line totals and optional roles of the transactions recipe, against pandas."""
from __future__ import annotations

import logging
from importlib import resources

import duckdb
import numpy as np
import pandas as pd
import pytest

from segmint.errors import InputError
from segmint.io import read_frame
from segmint.recipes import FEATURE_SETS, customer_table, required_roles
from segmint.recipes.transactions import FeatureSet
from segmint.spec import CleaningSpec, SourceSpec

FEATURE_SET_NAMES = ["insiders", "rfm", "intel21", "intel3"]


@pytest.fixture(scope="module")
def retail_lines() -> pd.DataFrame:
    """The bundled Online Retail file, read the way a run reads it (roles for intel21)."""
    path = resources.files("segmint") / "data" / "online_retail.parquet"
    required, optional = required_roles("intel21")
    with resources.as_file(path) as p:
        return read_frame(pd.read_parquet(p), required=required, optional=optional)


@pytest.fixture(scope="module")
def small_lines() -> pd.DataFrame:
    """Three customers, invoices, a return, a line without customer."""
    return pd.DataFrame({
        "customer": ["1", "1", "1", "1", "2", "2", "3", None],
        "invoice": ["A", "A", "B", "C", "D", "E", "F", "G"],
        "date": pd.to_datetime(["2011-01-03 10:00", "2011-01-03 10:00", "2011-02-11 09:00",
                                "2011-02-12 11:00", "2011-03-21 08:00", "2011-03-22 09:00",
                                "2011-03-01 12:00", "2011-03-25 12:00"]),
        "quantity": [2, 1, 4, -1, 10, 5, 3, 7],
        "price": [1.5, 10.0, 0.5, 10.0, 1.0, 2.0, 4.25, 1.0],
    })


def _gross_spend(lines: pd.DataFrame) -> pd.Series:
    """Sum of quantity x price over purchase lines (quantity >= 0) per customer, in pandas."""
    buy = lines[lines["customer"].notna() & (lines["quantity"] >= 0)]
    spend = (buy["quantity"] * buy["price"]).groupby(buy["customer"]).sum()
    spend.index = spend.index.astype("string")
    return spend


@pytest.mark.parametrize("features", FEATURE_SET_NAMES)
def test_revenue_is_gross_spend_on_online_retail(retail_lines, features):
    table = customer_table(retail_lines, features)
    assert table.revenue == FEATURE_SETS[features].revenue
    spend = _gross_spend(retail_lines)
    revenue = table.frame[table.revenue]
    if features in ("insiders", "rfm"):
        # one row per customer with a purchase
        assert set(revenue.index) == set(spend.index)
    # intel keeps customers with returns only (spend 0) and trims outliers: compare its rows
    expect = spend.reindex(revenue.index).fillna(0.0)
    np.testing.assert_allclose(revenue.to_numpy(), expect.to_numpy(), rtol=1e-9, atol=1e-9)
    assert len(revenue) > 4000


@pytest.mark.parametrize("features", FEATURE_SET_NAMES)
def test_revenue_is_gross_spend_on_a_small_table(small_lines, features):
    table = customer_table(small_lines, features)
    revenue = table.frame[table.revenue]
    # by hand: 1: 2*1.5 + 10 + 4*0.5 = 15 (the return of -10 is left out); 2: 10 + 10; 3: 12.75
    assert revenue.to_dict() == pytest.approx({"1": 15.0, "2": 20.0, "3": 12.75})
    assert revenue.to_dict() == pytest.approx(_gross_spend(small_lines).to_dict())


def test_intel_revenue_is_a_sum_not_the_mean_line_amount(small_lines):
    table = customer_table(small_lines, "intel21")
    # customer 1: mean line total (3 + 10 + 2 - 10) / 4 = 1.25; revenue 15
    assert table.frame.loc["1", "Amount"] == pytest.approx(1.25)
    assert table.frame.loc["1", "revenue"] == pytest.approx(15.0)
    assert "revenue" not in table.features


def _cdnow(seed: int = 0, n_customers: int = 60) -> pd.DataFrame:
    """CDNOW's shape: customer, date, number of CDs, dollar value of the line; no invoice or
    price. Some customers buy twice on one day (two lines, one purchase occasion)."""
    rng = np.random.default_rng(seed)
    rows = []
    for c in range(1, n_customers + 1):
        days = rng.choice(np.arange(0, 540), size=rng.integers(1, 8), replace=False)
        for d in days:
            for _ in range(rng.integers(1, 3)):
                cds = int(rng.integers(1, 6))
                rows.append((str(c), pd.Timestamp("1997-01-01") + pd.Timedelta(days=int(d)),
                             cds, round(cds * float(rng.uniform(9, 16)), 2)))
    return pd.DataFrame(rows, columns=["customer", "date", "quantity", "amount"])


def test_cdnow_shaped_rfm_uses_the_amount_as_line_total():
    lines = _cdnow()
    table = customer_table(lines, "rfm")
    frame = table.frame
    g = lines.groupby("customer")
    monetary = g["amount"].sum()
    days = g["date"].nunique()
    recency = (lines["date"].max() - g["date"].max()).dt.days
    pd.testing.assert_series_equal(frame["monetary"], monetary.reindex(frame.index), check_names=False,
                                   check_index_type=False)
    assert (frame["frequency"] == days.reindex(frame.index).astype(float)).all()
    assert (frame["recency_days"] == recency.reindex(frame.index).astype(float)).all()
    # the old mapping (amount read as a unit price) multiplied by the CDs: several times too high
    wrong = (lines["quantity"] * lines["amount"]).groupby(lines["customer"]).sum()
    assert (wrong.reindex(frame.index) / frame["monetary"]).mean() > 2
    assert table.notes[0] == "amount taken from column 'amount'"
    assert any("calendar day" in note for note in table.notes)


def test_cdnow_through_the_reader_with_mapped_columns():
    raw = _cdnow().rename(columns={"customer": "id", "date": "day", "quantity": "cds",
                                   "amount": "dollars"})
    source = SourceSpec(path="cdnow.txt", columns={"customer": "id", "date": "day", "quantity": "cds",
                                                    "amount": "dollars"})
    required, optional = required_roles("rfm")
    lines = read_frame(raw, source, required=required, optional=optional)
    assert list(lines.columns) == ["customer", "date", "quantity", "amount"]
    table = customer_table(lines, "rfm")
    expect = raw.groupby("id")["dollars"].sum()
    assert table.frame["monetary"].to_dict() == pytest.approx(expect.to_dict())
    assert table.notes[0] == "amount taken from column 'dollars'"
    assert table.source["columns"]["amount"] == "dollars"


@pytest.mark.parametrize("features", ["insiders", "intel21"])
def test_other_feature_sets_run_without_invoice(features):
    lines = _cdnow(seed=1)
    table = customer_table(lines, features)
    assert table.frame[table.revenue].sum() == pytest.approx(lines["amount"].sum())
    if features == "insiders":
        # purchase occasions are days: frequency = distinct days / span in days
        g = lines.groupby("customer")["date"]
        span = (g.max() - g.min()).dt.days
        expect = (g.nunique() / span.where(span > 0)).fillna(0.0)
        assert table.frame["frequency"].to_dict() == pytest.approx(expect.to_dict())
    else:
        # NumberOfOrders counts lines
        counts = lines.groupby("customer").size()
        assert table.frame["NumberOfOrders"].to_dict() == pytest.approx(
            counts.reindex(table.frame.index).astype(float).to_dict())


def test_negative_amount_is_a_return_without_quantity():
    lines = pd.DataFrame({"customer": ["1", "1", "1", "2"],
                          "date": pd.to_datetime(["2020-01-01", "2020-01-03", "2020-01-04", "2020-01-04"]),
                          "amount": [30.0, 12.5, -12.5, 8.0]})
    t = customer_table(lines, "insiders").frame
    assert t.loc["1", "gross_revenue"] == 42.5
    assert t.loc["1", "returns"] == 1.0
    assert t.loc["1", "recency_days"] == 1.0  # last purchase 3 Jan, data ends 4 Jan


def test_amount_wins_over_quantity_times_price(caplog):
    lines = pd.DataFrame({"customer": ["1", "1", "2", "2"],
                          "date": pd.to_datetime(["2020-01-01", "2020-01-02", "2020-01-02", "2020-01-03"]),
                          "quantity": [2, 3, 1, 4],
                          "price": [5.0, 1.0, 7.0, 2.0],
                          # line 2 carries a discount: 2.40 where 3 x 1.00 = 3.00
                          "amount": [10.0, 2.4, 7.0, 8.0]})
    with caplog.at_level(logging.WARNING, logger="segmint.recipes.transactions"):
        table = customer_table(lines, "rfm")
    assert table.frame["monetary"].to_dict() == {"1": 12.4, "2": 15.0}
    assert "amount differs from quantity x price" in caplog.text
    assert "1 of 4 lines" in caplog.text
    assert table.notes[0] == "amount taken from column 'amount'"


def test_no_warning_when_amount_agrees_within_a_cent(caplog):
    lines = pd.DataFrame({"customer": ["1", "2"], "date": pd.to_datetime(["2020-01-01", "2020-01-02"]),
                          "quantity": [3, 1], "price": [0.333, 7.0], "amount": [1.0, 7.0]})
    with caplog.at_level(logging.WARNING, logger="segmint.recipes.transactions"):
        table = customer_table(lines, "rfm")
    assert table.frame["monetary"].to_dict() == {"1": 1.0, "2": 7.0}
    assert "differs" not in caplog.text


def test_required_roles_reads_the_line_total_roles_when_present():
    assert required_roles("insiders") == (["customer", "date"], ["invoice", "quantity", "price", "amount"])
    cleaning = CleaningSpec(impute_customer=True, drop_countries=["X"], min_unit_price=0.04)
    assert required_roles("intel3", cleaning)[1] == ["invoice", "quantity", "price", "amount", "country"]
    with pytest.raises(InputError, match="unknown feature set 'nope'"):
        required_roles("nope")


def test_a_source_without_a_line_total_is_refused():
    lines = pd.DataFrame({"customer": ["1"], "date": pd.to_datetime(["2020-01-01"]), "quantity": [2]})
    lines.attrs["source"] = {"file": "sales.csv"}
    with pytest.raises(InputError) as err:
        customer_table(lines, "rfm")
    message = str(err.value)
    assert "sales.csv" in message
    assert "missing ['price', 'amount']" in message
    assert "source.columns" in message


def test_a_source_without_a_date_is_refused():
    lines = pd.DataFrame({"customer": ["1"], "amount": [2.0]})
    with pytest.raises(InputError, match="needs the 'date' role.*source.columns.date"):
        customer_table(lines, "insiders")


@pytest.mark.parametrize(("cleaning", "option", "role"), [
    (CleaningSpec(impute_customer=True), "impute_customer", "invoice"),
    (CleaningSpec(drop_non_product_codes=True), "drop_non_product_codes", "product"),
    (CleaningSpec(min_unit_price=0.04), "min_unit_price", "price"),
    (CleaningSpec(drop_countries=["Unspecified"]), "drop_countries", "country"),
])
def test_cleaning_that_needs_a_missing_role_is_refused(cleaning, option, role):
    lines = _cdnow()
    with pytest.raises(InputError) as err:
        customer_table(lines, "rfm", cleaning)
    assert f"cleaning.{option} needs the {role!r} role" in str(err.value)
    assert err.value.column == role


def test_non_finite_features_are_refused():
    lines = pd.DataFrame({"customer": ["1", "2"], "date": pd.to_datetime(["2020-01-01", "2020-01-02"]),
                          "amount": [np.inf, 3.0]})
    with pytest.raises(InputError, match=r"non-finite values in \['monetary'\]"):
        customer_table(lines, "rfm")


def test_a_given_connection_is_used_and_left_clean(small_lines):
    con = duckdb.connect()
    con.execute("CREATE TABLE mine AS SELECT 1 AS x")
    before = sorted(con.execute("SELECT table_name FROM information_schema.tables").fetchall())
    table = customer_table(small_lines, "rfm", con=con)
    assert len(table) == 3
    after = sorted(con.execute("SELECT table_name FROM information_schema.tables").fetchall())
    assert after == before
    assert con.execute("SELECT x FROM mine").fetchone() == (1,)
    con.close()


def test_feature_sets_are_registered_as_frozen_records():
    fs = FEATURE_SETS["intel21"]
    assert isinstance(fs, FeatureSet)
    assert (fs.name, fs.roles, fs.optional, fs.revenue, fs.revenue_is_feature) == \
        ("intel21", ("customer", "date"), ("invoice",), "revenue", False)
    assert {n: FEATURE_SETS[n].revenue for n in FEATURE_SET_NAMES} == {
        "insiders": "gross_revenue", "rfm": "monetary", "intel21": "revenue", "intel3": "revenue"}
    with pytest.raises(AttributeError):
        fs.revenue = "x"  # type: ignore[misc]
