"""The customer tables against independent pandas computations written here."""
from __future__ import annotations

from importlib import resources

import numpy as np
import pandas as pd
import pytest

from segmint.recipes import clean_transactions, customer_table
from segmint.recipes._table import CustomerTable
from segmint.spec import CleaningSpec

CANON = {"InvoiceNo": "invoice", "StockCode": "product", "Quantity": "quantity",
         "InvoiceDate": "date", "UnitPrice": "price", "CustomerID": "customer", "Country": "country"}


@pytest.fixture(scope="module")
def retail() -> pd.DataFrame:
    # Bundled in the package, so nothing here skips on a fresh clone.
    with resources.as_file(resources.files("segmint") / "data" / "online_retail.parquet") as path:
        return pd.read_parquet(path)


@pytest.fixture(scope="module")
def tx(retail) -> pd.DataFrame:
    df = retail.rename(columns=CANON).drop(columns="Description")
    df["customer"] = df["customer"].astype("Int64").astype("string")
    return df


def _kit_intel21(retail: pd.DataFrame) -> pd.DataFrame:
    """Intel's kit, restated in plain pandas (dropna, groupby, value_counts, trimming)."""
    r = retail.dropna().copy()
    r["Amount"] = r["Quantity"] * r["UnitPrice"]
    r["Diff"] = r["InvoiceDate"].max() - r["InvoiceDate"]
    r["DayOfWeek"] = r["InvoiceDate"].dt.day_name()
    r["Month"] = r["InvoiceDate"].dt.month_name()
    g = r.groupby(r["CustomerID"].astype(int).astype(str))
    df = pd.DataFrame({"Amount": g["Amount"].mean(), "NumberOfOrders": g["InvoiceNo"].count(),
                       "Recency": g["Diff"].min().dt.days})
    df = df.join(g["DayOfWeek"].value_counts().unstack(-1).fillna(0))
    df = df.join(g["Month"].value_counts().unstack(-1).fillna(0))
    for col in ["Amount", "Recency", "NumberOfOrders"]:
        q1, q3 = df[col].quantile(0.05), df[col].quantile(0.95)
        df = df[(df[col] >= q1 - 1.5 * (q3 - q1)) & (df[col] <= q3 + 1.5 * (q3 - q1))]
    return df.astype("float64")


def test_intel21_equals_the_kit(retail, tx):
    table = customer_table(tx, "intel21")
    kit = _kit_intel21(retail)
    assert isinstance(table, CustomerTable)
    assert len(table.features) == 21
    assert table.features == list(kit.columns)
    # the revenue column is kept beside the 21 features, not clustered
    assert table.revenue == "revenue"
    assert list(table.frame.columns) == [*kit.columns, "revenue"]
    kit.index = kit.index.astype("string")
    kit.index.name = "customer"
    ours = table.frame[table.features]
    assert ours.shape == (4256, 21)
    pd.testing.assert_frame_equal(ours.sort_index(), kit.sort_index(), check_exact=False, rtol=1e-12)


def test_intel3_is_the_first_three_columns(tx):
    small = customer_table(tx, "intel3")
    assert small.features == ["Amount", "NumberOfOrders", "Recency"]
    assert list(small.frame.columns) == ["Amount", "NumberOfOrders", "Recency", "revenue"]
    assert len(small) == 4256


def test_cluster_revenue_adds_the_revenue_column_to_the_features(tx):
    table = customer_table(tx, "intel3", cluster_revenue=True)
    assert table.features == ["Amount", "NumberOfOrders", "Recency", "revenue"]
    # a feature set whose revenue is already a feature is unchanged
    assert customer_table(tx.head(500), "rfm", cluster_revenue=True).features == \
        ["recency_days", "frequency", "monetary"]


def test_the_table_describes_itself(tx):
    table = customer_table(tx, "insiders")
    assert table.types == {c: "numeric" for c in table.frame.columns}
    assert table.lines == len(tx)
    assert table.schema == {"recipe": "transactions", "features": "insiders"}
    no_customer = int(tx["customer"].isna().sum())
    assert table.notes == ["line total = quantity x price (columns 'quantity' x 'price')",
                           f"{no_customer} of {len(tx)} lines have no customer and are left out"]
    assert table.frame.index.dtype == "string" and table.frame.index.name == "customer"
    assert (table.frame.dtypes == "float64").all()
    info = table.info.set_index("column")
    assert info.loc["returns", "max"] == table.frame["returns"].max()
    assert info.loc["gross_revenue", "count"] == len(table)


def test_insiders_on_a_hand_made_table():
    tx = pd.DataFrame({
        "customer": ["1", "1", "1", "1", "2", "2"],
        "invoice": ["A", "A", "B", "C1", "D", "D"],
        "date": pd.to_datetime(["2011-01-01 10:00", "2011-01-01 10:00", "2011-01-11 09:00",
                                "2011-01-12 00:00", "2011-01-21 08:00", "2011-01-21 09:00"]),
        "quantity": [2, 1, 4, -1, 10, 5],
        "price": [1.5, 10.0, 0.5, 10.0, 1.0, 2.0],
    })
    t = customer_table(tx, "insiders").frame
    assert t.loc["1"].to_dict() == {"gross_revenue": 2 * 1.5 + 10.0 + 4 * 0.5, "recency_days": 10.0,
                                    "quantity_of_products": 3.0, "returns": 1.0,
                                    "frequency": 2 / 10}
    # one day of purchases: span 0 -> frequency 0
    assert t.loc["2"].to_dict() == {"gross_revenue": 20.0, "recency_days": 0.0,
                                    "quantity_of_products": 2.0, "returns": 0.0, "frequency": 0.0}


def test_insiders_matches_pandas_on_online_retail(tx):
    cleaning = CleaningSpec(impute_customer=True, drop_non_product_codes=True, min_unit_price=0.04,
                            drop_customers=["16446"], drop_countries=["European Community", "Unspecified"])
    table = customer_table(tx, "insiders", cleaning)
    ours = table.frame
    # the same steps in pandas
    df = tx.copy()
    missing = df.loc[df["customer"].isna(), "invoice"].drop_duplicates().sort_values()
    new_ids = pd.Series(np.arange(1, len(missing) + 1) + df["customer"].dropna().astype(int).max(),
                        index=missing.to_numpy()).astype(str)
    df.loc[df["customer"].isna(), "customer"] = df.loc[df["customer"].isna(), "invoice"].map(new_ids)
    df = df[~df["product"].str.fullmatch(r"[A-Za-z]+")]
    df = df[df["price"] >= 0.04]
    df = df[~df["customer"].isin(["16446"]) & ~df["country"].isin(["European Community", "Unspecified"])]
    assert f"cleaning kept {len(df)} of {len(tx)} lines" in table.notes
    day = df["date"].dt.normalize()
    last = day.max()
    buy, ret = df[df["quantity"] >= 0], df[df["quantity"] < 0]
    g = buy.assign(day=day, rev=buy["quantity"] * buy["price"]).groupby("customer")
    span = (g["day"].max() - g["day"].min()).dt.days
    expect = pd.DataFrame({
        "gross_revenue": g["rev"].sum(),
        "recency_days": (last - g["day"].max()).dt.days.astype(float),
        "quantity_of_products": g.size().astype(float),
        "returns": (ret.groupby("customer")["invoice"].nunique().reindex(g.size().index)
                    .fillna(0).astype(float)),
        "frequency": (g["invoice"].nunique() / span.where(span > 0)).fillna(0.0),
    })
    expect.index = expect.index.astype("string")
    expect.index.name = "customer"
    assert len(ours) == len(expect) > 5000
    pd.testing.assert_frame_equal(ours.sort_index(), expect.sort_index(), check_exact=False, rtol=1e-9)


def test_cleaning_steps_one_by_one():
    tx = pd.DataFrame({"customer": ["5", None, None, "16446", "7"],
                       "invoice": ["X", "Z", "Y", "W", "V"],
                       "product": ["85123A", "POST", "22423", "22423", "DOT"],
                       "price": [1.0, 5.0, 0.01, 2.0, 3.0],
                       "country": ["UK", "UK", "Unspecified", "UK", "UK"]})
    imputed = clean_transactions(tx, CleaningSpec(impute_customer=True))
    # invoices Y then Z (invoice order) get new ids just above the largest id, 16446
    assert imputed.set_index("invoice").loc[["Y", "Z"], "customer"].tolist() == ["16447", "16448"]
    def kept(**options):
        return clean_transactions(tx, CleaningSpec(**options))["invoice"].tolist()

    assert kept(drop_non_product_codes=True) == ["X", "Y", "W"]
    assert kept(min_unit_price=0.04) == ["X", "Z", "W", "V"]
    assert kept(drop_customers=[16446]) == ["X", "Z", "Y", "V"]
    assert kept(drop_countries=["Unspecified"]) == ["X", "Z", "W", "V"]
