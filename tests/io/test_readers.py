"""read_source: every kind of source, header mapping, types, and the errors for bad input."""
from __future__ import annotations

import gzip
import hashlib
import re
import sqlite3
import zipfile
from importlib import resources
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pytest

from segmint.errors import InputError
from segmint.io import is_table, read_frame, read_source
from segmint.spec import ROLES, SourceSpec

HEADER = "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"
# Four line items a reader can check by hand; the last has no customer.
LINES = (
    "536365,85123A,WHITE HANGING HEART T-LIGHT HOLDER,6,12/1/2010 8:26,2.55,17850.0,United Kingdom\n"
    "536365,71053,WHITE METAL LANTERN,6,12/1/2010 8:26,3.39,17850.0,United Kingdom\n"
    "C536379,D,Discount,-1,12/1/2010 9:41,27.5,14527.0,United Kingdom\n"
    "536414,22139,,56,12/1/2010 11:52,0.0,,United Kingdom\n"
)
#: The roles LINES hold: every role but amount (they give quantity and price, not a line total).
LINE_ROLES = tuple(role for role in ROLES if role != "amount")

#: Online Retail as the package bundles it (the same file as ../shared/data holds).
BUNDLED = Path(str(resources.files("segmint") / "data" / "online_retail.parquet"))


def _write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def _read(path: Path, roles=LINE_ROLES, **spec) -> pd.DataFrame:
    return read_source(SourceSpec(path=str(path), **spec), required=roles)


def _read_error(path: Path, required, **spec) -> InputError:
    """The InputError that reading ``path`` for ``required`` roles raises."""
    with pytest.raises(InputError) as caught:
        read_source(SourceSpec(path=str(path), **spec), required=required)
    return caught.value


def _small_frame() -> pd.DataFrame:
    """LINES as a typed frame, as a Parquet file or a database would hold them."""
    return pd.DataFrame({
        "InvoiceNo": ["536365", "536365", "C536379", "536414"],
        "StockCode": ["85123A", "71053", "D", "22139"],
        "Description": ["WHITE HANGING HEART T-LIGHT HOLDER", "WHITE METAL LANTERN", "Discount", None],
        "Quantity": [6, 6, -1, 56],
        "InvoiceDate": pd.to_datetime(["2010-12-01 08:26", "2010-12-01 08:26", "2010-12-01 09:41",
                                       "2010-12-01 11:52"]),
        "UnitPrice": [2.55, 3.39, 27.5, 0.0],
        "CustomerID": [17850.0, 17850.0, 14527.0, None],
        "Country": ["United Kingdom"] * 4,
    })


def _assert_small(df: pd.DataFrame) -> None:
    """The four LINES, whatever kind of source they came from."""
    assert list(df.columns) == list(LINE_ROLES)
    assert df["customer"].dtype == "string"
    assert df["customer"].tolist()[:3] == ["17850", "17850", "14527"]
    assert df["customer"].isna().tolist() == [False, False, False, True]
    assert df["invoice"].tolist() == ["536365", "536365", "C536379", "536414"]
    assert df["product"].tolist() == ["85123A", "71053", "D", "22139"]
    assert df["quantity"].dtype == "int64"
    assert df["quantity"].tolist() == [6, 6, -1, 56]
    assert df["price"].dtype == "float64"
    assert df["price"].tolist() == [2.55, 3.39, 27.5, 0.0]
    assert df["date"].dtype == "datetime64[us]"
    assert df["date"].tolist() == [pd.Timestamp("2010-12-01 08:26"), pd.Timestamp("2010-12-01 08:26"),
                                   pd.Timestamp("2010-12-01 09:41"), pd.Timestamp("2010-12-01 11:52")]
    assert df["country"].tolist() == ["United Kingdom"] * 4
    assert df.attrs["source"]["rows"] == 4


# --------------------------------------------------------------------------- each reader

def test_csv(tmp_path):
    path = _write(tmp_path / "retail.csv", HEADER + LINES)
    df = _read(path)
    _assert_small(df)
    record = df.attrs["source"]
    assert record["file"] == str(path)
    assert record["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    assert record["encoding"] == "utf-8" and record["delimiter"] == ","
    assert record["columns"] == {"customer": "CustomerID", "invoice": "InvoiceNo", "date": "InvoiceDate",
                                 "quantity": "Quantity", "price": "UnitPrice", "product": "StockCode",
                                 "country": "Country"}


def test_tsv_txt_and_gzip(tmp_path):
    tsv = HEADER.replace(",", "\t") + LINES.replace(",", "\t")
    _assert_small(_read(_write(tmp_path / "retail.tsv", tsv)))
    # .txt: the delimiter is sniffed.
    txt = _read(_write(tmp_path / "retail.txt", HEADER.replace(",", "|") + LINES.replace(",", "|")))
    _assert_small(txt)
    assert txt.attrs["source"]["delimiter"] == "|"
    gz = tmp_path / "retail.csv.gz"
    gz.write_bytes(gzip.compress((HEADER + LINES).encode()))
    df = _read(gz)
    _assert_small(df)
    # The fingerprint is of the bytes on disk, not the decompressed text.
    assert df.attrs["source"]["sha256"] == hashlib.sha256(gz.read_bytes()).hexdigest()[:16]


def test_parquet(tmp_path):
    path = tmp_path / "retail.parquet"
    _small_frame().to_parquet(path)
    _assert_small(_read(path))


def test_excel_sheet(tmp_path):
    path = tmp_path / "retail.xlsx"
    with pd.ExcelWriter(path, engine="openpyxl") as book:
        pd.DataFrame({"notes": ["not this sheet"]}).to_excel(book, sheet_name="Notes", index=False)
        _small_frame().to_excel(book, sheet_name="Sales", index=False)
    df = _read(path, sheet="Sales")
    _assert_small(df)
    assert df.attrs["source"]["sheet"] == "Sales"
    with pytest.raises(InputError, match=r"has no sheet 'Orders'; its sheets are \['Notes', 'Sales'\]"):
        _read(path, sheet="Orders")


def test_ndjson(tmp_path):
    path = tmp_path / "retail.jsonl"
    _small_frame().assign(InvoiceDate=lambda d: d["InvoiceDate"].dt.strftime("%Y-%m-%dT%H:%M:%S")) \
        .to_json(path, orient="records", lines=True)
    _assert_small(_read(path))


def test_ndjson_broken_line(tmp_path):
    path = _write(tmp_path / "retail.ndjson", '{"CustomerID": 1}\n{"CustomerID": 2,\n')
    with pytest.raises(InputError, match=r"retail.ndjson: is not valid NDJSON: line 2"):
        _read(path, roles=["customer"])


def test_duckdb_file_table_and_query(tmp_path):
    path = tmp_path / "shop.duckdb"
    frame = _small_frame()  # noqa: F841 - DuckDB reads the local `frame` by name below
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE TABLE sales AS SELECT * FROM frame")
    df = read_source(SourceSpec(duckdb=str(path), table="sales"), required=LINE_ROLES)
    _assert_small(df)
    assert df.attrs["source"]["duckdb"] == str(path) and df.attrs["source"]["table"] == "sales"
    assert df.attrs["source"]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    only_17850 = read_source(
        SourceSpec(duckdb=str(path), query="SELECT * FROM sales WHERE CustomerID = 17850"),
        required=["customer", "price"])
    assert only_17850["customer"].tolist() == ["17850", "17850"]
    assert only_17850["price"].tolist() == [2.55, 3.39]


def test_duckdb_memory_query_and_missing_table(tmp_path):
    df = read_source(SourceSpec(duckdb=":memory:", query="SELECT 12346 AS customer_id, 2.5 AS price"),
                     required=["customer", "price"])
    assert df["customer"].tolist() == ["12346"] and df["price"].tolist() == [2.5]
    path = tmp_path / "shop.duckdb"
    duckdb.connect(str(path)).close()
    with pytest.raises(InputError, match=r"shop.duckdb: cannot read table 'sales'"):
        read_source(SourceSpec(duckdb=str(path), table="sales"), required=["customer"])
    with pytest.raises(InputError, match="DuckDB database not found"):
        read_source(SourceSpec(duckdb=str(tmp_path / "absent.duckdb"), table="sales"))
    assert not (tmp_path / "absent.duckdb").exists()


def test_sqlalchemy_sqlite_table_and_query(tmp_path):
    path = tmp_path / "shop.sqlite"
    with sqlite3.connect(path) as con:
        _small_frame().to_sql("sales", con, index=False)
    url = f"sqlite:///{path}"
    df = read_source(SourceSpec(url=url, table="sales"), required=LINE_ROLES)
    _assert_small(df)  # SQLite stores the dates as text: parsed as ISO 8601
    assert df.attrs["source"]["url"] == url and df.attrs["source"]["table"] == "sales"
    assert df.attrs["source"]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    refunds = read_source(SourceSpec(url=url, query="SELECT * FROM sales WHERE Quantity < 0"),
                          required=["invoice", "quantity"])
    assert refunds["invoice"].tolist() == ["C536379"] and refunds["quantity"].tolist() == [-1]
    with pytest.raises(InputError, match=r"has no table 'orders'; its tables are \['sales'\]"):
        read_source(SourceSpec(url=url, table="orders"), required=["customer"])
    with pytest.raises(InputError, match="SQLite database not found"):
        read_source(SourceSpec(url=f"sqlite:///{tmp_path / 'absent.sqlite'}", table="sales"))
    assert not (tmp_path / "absent.sqlite").exists()


def test_sqlalchemy_url_hides_password():
    with pytest.raises(InputError) as caught:
        read_source(SourceSpec(url="nosuchdb://ana:secret@localhost/shop", table="sales"))
    assert "secret" not in str(caught.value) and "***" in str(caught.value)


# --------------------------------------------------------------------------- header mapping

def test_online_retail_ii_headers_map_like_online_retail(tmp_path):
    ii = HEADER.replace("InvoiceNo", "Invoice").replace("UnitPrice", "Price") \
        .replace("CustomerID", "Customer ID")
    one = _read(_write(tmp_path / "one.csv", HEADER + LINES))
    two = _read(_write(tmp_path / "two.csv", ii + LINES))
    pd.testing.assert_frame_equal(one, two)
    assert two.attrs["source"]["columns"]["customer"] == "Customer ID"
    assert two.attrs["source"]["columns"]["invoice"] == "Invoice"
    assert two.attrs["source"]["columns"]["price"] == "Price"


def test_csv_with_online_retail_ii_headers_equals_parquet(tmp_path):
    head = pd.read_parquet(BUNDLED).iloc[:20_000]
    parquet = tmp_path / "head.parquet"
    head.to_parquet(parquet)
    ii = head.rename(columns={"InvoiceNo": "Invoice", "UnitPrice": "Price", "CustomerID": "Customer ID"})
    ii["InvoiceDate"] = ii["InvoiceDate"].dt.strftime("%-m/%-d/%Y %-H:%M")  # 12/1/2010 8:26
    csv_path = tmp_path / "head.csv"
    ii.to_csv(csv_path, index=False)  # CustomerID floats are written as 17850.0
    assert csv_path.read_text().splitlines()[1].startswith("536365,85123A,")

    from_parquet = _read(parquet)
    from_csv = _read(csv_path)
    pd.testing.assert_frame_equal(from_csv, from_parquet)
    assert len(from_csv) == 20_000
    assert from_csv["customer"].isna().sum() == head["CustomerID"].isna().sum()
    first = from_csv.iloc[0]
    assert (first["customer"], first["invoice"], first["product"], first["quantity"],
            first["price"]) == ("17850", "536365", "85123A", 6, 2.55)
    assert first["date"] == pd.Timestamp("2010-12-01 08:26")


def test_full_online_retail_parquet():
    path = BUNDLED  # the same bytes as ../shared/data/online_retail.parquet
    df = _read(path)
    assert len(df) == 541_909 and df.attrs["source"]["rows"] == 541_909
    assert df["customer"].isna().sum() == 135_080
    assert df.attrs["source"]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    assert df["date"].min() == pd.Timestamp("2010-12-01 08:26")


def test_headers_matched_ignoring_case_spaces_underscores(tmp_path):
    path = _write(tmp_path / "loose.csv", "customer id,INVOICE_NO, quantity ,Notes\n17850,536365,6,x\n")
    df = read_source(SourceSpec(path=str(path)), required=["customer", "invoice"],
                     optional=["quantity", "price"])
    assert list(df.columns) == ["customer", "invoice", "quantity"]  # no price column, no Notes
    assert df.attrs["source"]["columns"] == {"customer": "customer id", "invoice": "INVOICE_NO",
                                             "quantity": " quantity "}
    assert df.iloc[0].tolist() == ["17850", "536365", 6]


def test_exact_name_wins_over_loose_match(tmp_path):
    # "customer_id" (exact, third default) beats "CUSTOMERID" (a loose match for the first).
    path = _write(tmp_path / "two_ids.csv", "CUSTOMERID,customer_id\n1,2\n")
    df = read_source(SourceSpec(path=str(path)), required=["customer"])
    assert df["customer"].tolist() == ["2"]


def test_explicit_column_mapping(tmp_path):
    path = _write(tmp_path / "crm.csv", "client,CustomerID,spent\n00123,999,10.5\n")
    df = read_source(SourceSpec(path=str(path), columns={"customer": "client", "price": "spent"}),
                     required=["customer"], optional=["price"])
    assert df["customer"].tolist() == ["00123"]  # leading zeros kept: an ID is text
    assert df["price"].tolist() == [10.5]


def test_missing_required_column_names_file_and_headers(tmp_path):
    path = _write(tmp_path / "no_customer.csv", "InvoiceNo,Quantity\n536365,6\n")
    err = _read_error(path, ["invoice", "customer"])
    assert err.file == str(path) and err.column == "CustomerID" and err.row is None
    assert "role 'customer'" in str(err)
    assert "['CustomerID', 'Customer ID', 'customer_id', 'customer']" in str(err)
    assert "its columns are ['InvoiceNo', 'Quantity']" in str(err)


def test_explicitly_mapped_column_absent_fails_even_if_optional(tmp_path):
    path = _write(tmp_path / "sales.csv", "CustomerID,Land\n17850,UK\n")
    with pytest.raises(InputError) as caught:
        read_source(SourceSpec(path=str(path), columns={"country": "Country Name"}),
                    required=["customer"], optional=["country"])
    assert caught.value.file == str(path) and caught.value.column == "Country Name"
    assert "its columns are ['CustomerID', 'Land']" in str(caught.value)


def test_no_roles_returns_the_table_as_read(tmp_path):
    path = _write(tmp_path / "crm.csv", "id,age,city\n1,34,Porto\n2,51,Lisboa\n")
    df = read_source(SourceSpec(path=str(path)))
    assert list(df.columns) == ["id", "age", "city"]
    assert df["age"].tolist() == [34, 51]
    assert df.attrs["source"]["rows"] == 2


# --------------------------------------------------------------------------- encodings, delimiters

def test_windows_1252_with_pound_sign_and_semicolons(tmp_path):
    text = ("InvoiceNo;StockCode;Quantity;UnitPrice;CustomerID\n"
            "536365;GIFT £10;1;10.0;17850\n"
            "536366;85123A;6;2.55;17850\n")
    path = _write(tmp_path / "insiders.csv", text, encoding="windows-1252")
    assert b"\xa3" in path.read_bytes()  # £ is one byte, 0xA3: not valid UTF-8
    df = read_source(SourceSpec(path=str(path)), required=["invoice", "product", "quantity", "price"])
    assert df.attrs["source"]["encoding"] == "windows-1252"
    assert df.attrs["source"]["delimiter"] == ";"
    assert df["product"].tolist() == ["GIFT £10", "85123A"]
    assert df["price"].tolist() == [10.0, 2.55]


def test_utf8_with_byte_order_mark(tmp_path):
    path = _write(tmp_path / "bom.csv", "\ufeffCustomerID,Quantity\n17850,6\n")
    df = read_source(SourceSpec(path=str(path)), required=["customer", "quantity"])
    assert df.attrs["source"]["columns"]["customer"] == "CustomerID"  # not "\ufeffCustomerID"
    assert df["quantity"].tolist() == [6]


def test_declared_utf8_but_bytes_are_not(tmp_path):
    text = "InvoiceNo,StockCode\n536365,85123A\n536366,GIFT £10\n"
    path = _write(tmp_path / "latin.csv", text, encoding="windows-1252")
    err = _read_error(path, ["invoice"], encoding="utf-8")
    assert err.file == str(path)
    assert "is not valid utf-8: byte 0xa3 on line 3" in str(err)


# --------------------------------------------------------------------------- types

def test_customer_ids_normalised(tmp_path):
    path = _write(tmp_path / "ids.csv", "CustomerID\n17850.0\n 12346 \n\n00123\n12347.\nA-9\n")
    df = read_source(SourceSpec(path=str(path)), required=["customer"])
    # The blank line is skipped; an empty cell would be <NA>.
    assert df["customer"].tolist() == ["17850", "12346", "00123", "12347", "A-9"]
    empty_cell = _write(tmp_path / "ids2.csv", "CustomerID,Quantity\n,1\n17850.0,2\n")
    assert read_source(SourceSpec(path=str(empty_cell)), required=["customer"])["customer"] \
        .isna().tolist() == [True, False]


def test_quantity_int_when_integral_else_float(tmp_path):
    whole = _write(tmp_path / "whole.csv", "Quantity\n6\n-1\n6.0\n")
    q = read_source(SourceSpec(path=str(whole)), required=["quantity"])["quantity"]
    assert q.dtype == "int64" and q.tolist() == [6, -1, 6]
    weighed = _write(tmp_path / "weighed.csv", "Quantity\n6\n0.5\n")
    q = read_source(SourceSpec(path=str(weighed)), required=["quantity"])["quantity"]
    assert q.dtype == "float64" and q.tolist() == [6.0, 0.5]
    gap = _write(tmp_path / "gap.csv", "Quantity,UnitPrice\n6,1\n,2\n")
    df = read_source(SourceSpec(path=str(gap)), required=["quantity"])
    # the line without a quantity is dropped (test_reader_checks.py); the rest are whole
    assert df["quantity"].dtype == "int64" and df["quantity"].tolist() == [6]
    assert df.attrs["source"]["dropped"] == {"quantity missing": 1}


@pytest.mark.parametrize("text, expected", [
    ("2010-12-01 08:26:00", "2010-12-01 08:26"),
    ("2010-12-01T08:26:00", "2010-12-01 08:26"),
    ("2010-12-01", "2010-12-01 00:00"),
    ("12/1/2010 8:26", "2010-12-01 08:26"),  # month first: 1 December
    ("12/01/2010 08:26:30", "2010-12-01 08:26:30"),
    ("01.12.2010 08:26", "2010-12-01 08:26"),
])
def test_date_layouts(tmp_path, text, expected):
    path = _write(tmp_path / "d.csv", f"InvoiceDate,Quantity\n{text},1\n")
    dates = read_source(SourceSpec(path=str(path)), required=["date"])["date"]
    assert dates.dtype == "datetime64[us]" and dates.iloc[0] == pd.Timestamp(expected)


# --------------------------------------------------------------------------- bad input

def test_bad_quantity_names_file_column_row_and_line(tmp_path):
    text = ("InvoiceNo,Description,Quantity\n"
            "536365,WHITE HANGING HEART,6\n"            # line 2, row 1
            '536365,"A NOTE THAT SPANS\nTWO LINES",6\n'  # lines 3-4, row 2
            "\n"                                         # line 5, blank: skipped
            "536366,HAND WARMER,six\n"                   # line 6, row 3
            "536367,HAND WARMER,x\n")                    # line 7, row 4
    path = _write(tmp_path / "bad_qty.csv", text)
    err = _read_error(path, ["invoice", "quantity"])
    assert (err.file, err.column, err.row) == (str(path), "Quantity", 3)
    assert str(err) == (f"file {path}, column 'Quantity', row 3: quantity must be a number, got 'six' "
                        "(line 6 of the file; 1 more bad value in this column)")


def test_bad_price_uses_the_header_as_in_the_file(tmp_path):
    path = _write(tmp_path / "bad_price.csv", "Invoice,Price\n1,2.55\n2,£3.39\n")
    err = _read_error(path, ["price"])
    assert (err.file, err.column, err.row) == (str(path), "Price", 2)
    assert "got '£3.39' (line 3 of the file)" in str(err)


def test_unparseable_date(tmp_path):
    path = _write(tmp_path / "bad_date.csv",
                  "InvoiceDate,Quantity\n12/1/2010 8:26,1\n12/1/2010 9:01,1\nyesterday,1\n")
    err = _read_error(path, ["date"])
    assert (err.file, err.column, err.row) == (str(path), "InvoiceDate", 3)
    assert "date must be a date, got 'yesterday' (line 4 of the file)" in str(err)


def test_day_first_date_gets_a_hint(tmp_path):
    path = _write(tmp_path / "uk_dates.csv", "InvoiceDate,Quantity\n1/12/2010 8:26,1\n13/12/2010 8:26,1\n")
    err = _read_error(path, ["date"])
    assert err.row == 2
    assert "got '13/12/2010 8:26' (line 3 of the file); dates are read month first" in str(err)


def test_bad_value_in_parquet_and_excel_rows(tmp_path):
    frame = pd.DataFrame({"CustomerID": ["1", "2", "3"], "Quantity": ["6", "6", "lots"]})
    parquet = tmp_path / "q.parquet"
    frame.to_parquet(parquet)
    err = _read_error(parquet, ["quantity"])
    assert (err.file, err.column, err.row) == (str(parquet), "Quantity", 3)
    xlsx = tmp_path / "q.xlsx"
    frame.to_excel(xlsx, index=False, sheet_name="Orders")
    err = _read_error(xlsx, ["quantity"])
    assert (err.column, err.row) == ("Quantity", 3)
    assert "got 'lots' (sheet row 4 of the file)" in str(err)
    assert err.file == f"{xlsx} (sheet 'Orders')"


@pytest.mark.parametrize("name, content, message", [
    ("zero.csv", b"", "is empty (0 bytes)"),
    ("header_only.csv", HEADER.encode(), "holds no data rows"),
    ("blank.csv", b"\n\n", "is empty (no header line)"),
    ("zero.parquet", b"", "is empty (0 bytes)"),
])
def test_empty_files(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(InputError, match=re.escape(message)) as caught:
        read_source(SourceSpec(path=str(path)), required=["customer"])
    assert caught.value.file == str(path)


def test_empty_parquet_table(tmp_path):
    path = tmp_path / "none.parquet"
    _small_frame().iloc[:0].to_parquet(path)
    with pytest.raises(InputError, match="holds no data rows") as caught:
        read_source(SourceSpec(path=str(path)), required=["customer"])
    assert caught.value.file == str(path)


def test_missing_file_and_unknown_extension(tmp_path):
    with pytest.raises(InputError, match="not found") as caught:
        read_source(SourceSpec(path=str(tmp_path / "absent.csv")), required=["customer"])
    assert caught.value.file == str(tmp_path / "absent.csv")
    odd = _write(tmp_path / "sales.dat", HEADER + LINES)
    with pytest.raises(InputError, match="set source.format"):
        read_source(SourceSpec(path=str(odd)), required=["customer"])
    _assert_small(read_source(SourceSpec(path=str(odd), format="csv"), required=LINE_ROLES))


def test_unknown_role_is_a_programming_error(tmp_path):
    path = _write(tmp_path / "s.csv", HEADER + LINES)
    with pytest.raises(ValueError, match="unknown roles"):
        read_source(SourceSpec(path=str(path)), required=["client"])
    with pytest.raises(TypeError, match="sequence of role names"):
        read_source(SourceSpec(path=str(path)), required="customer")


def test_dates_with_offsets_and_tab_delimiter_alias(tmp_path):
    path = _write(tmp_path / "events.txt", "InvoiceDate\tQuantity\n"
                  "2010-12-01T08:26:00+00:00\t1\n2010-12-01T08:26:00+01:00\t1\n")
    dates = read_source(SourceSpec(path=str(path), delimiter="tab"), required=["date"])["date"]
    # Offsets that differ between rows become one instant each, in UTC.
    assert dates.tolist() == [pd.Timestamp("2010-12-01 08:26", tz="UTC"),
                              pd.Timestamp("2010-12-01 07:26", tz="UTC")]


def test_a_row_with_more_fields_than_the_header_is_an_error(tmp_path):
    # "3,39" in a comma-separated file shifts every later value one column right
    path = tmp_path / "ragged.csv"
    path.write_text("InvoiceNo,Quantity,InvoiceDate,UnitPrice,CustomerID\n"
                    "1,6,12/1/2010 8:26,2.55,17850\n"
                    "2,6,12/1/2010 8:28,3,39,17851\n")
    with pytest.raises(InputError) as info:
        read_source(SourceSpec(path=str(path)), required=["customer", "invoice", "date", "quantity", "price"])
    assert "ragged.csv" in str(info.value) and "line 3" in str(info.value)


def test_postgresql_url_and_query(postgres_url):
    import sqlalchemy as sa

    engine = sa.create_engine(postgres_url)
    with engine.begin() as con:
        con.execute(sa.text("DROP TABLE IF EXISTS sales"))
        con.execute(sa.text("CREATE TABLE sales (inv text, cust double precision, qty int, "
                            "unit numeric(10,2), at timestamp)"))
        con.execute(sa.text("INSERT INTO sales VALUES ('536365', 17850, 6, 2.55, '2010-12-01 08:26'), "
                            "('536366', NULL, 3, 1.10, '2010-12-02 09:00')"))
    engine.dispose()
    source = SourceSpec(url=postgres_url, query="SELECT * FROM sales ORDER BY inv",
                        columns={"invoice": "inv", "customer": "cust", "quantity": "qty",
                                 "price": "unit", "date": "at"})
    df = read_source(source, required=["invoice", "customer", "quantity", "price", "date"])
    assert df["customer"].tolist()[0] == "17850" and pd.isna(df["customer"].iloc[1])
    assert df["price"].tolist() == [2.55, 1.10]
    assert df["date"].iloc[1] == pd.Timestamp("2010-12-02 09:00")
    assert "postgres@" in df.attrs["source"]["url"] and df.attrs["source"]["rows"] == 2


# --------------------------------------------------------------------------- whitespace, no header

# CDNOW's layout: customer, date as yyyymmdd, number of CDs, dollar value; runs of spaces, and
# the second line starts with spaces. Read by hand: customers 00001, 00002, 00002, 00003.
CDNOW = ("00001 19970101  1  11.77\n"
         "   00002 19970112  1  12.00\n"
         "00002 19970112  5  77.00\n"
         "00003 19970102  2  20.76\n")
CDNOW_NAMES = ["customer_id", "date", "cds", "amount"]
CDNOW_ROLES = ["customer", "date", "quantity", "amount"]


def _assert_cdnow(df: pd.DataFrame) -> None:
    assert list(df.columns) == CDNOW_ROLES
    assert df["customer"].dtype == "string"
    assert df["customer"].tolist() == ["00001", "00002", "00002", "00003"]  # leading zeros kept
    assert df["date"].dtype == "datetime64[us]"
    assert df["date"].tolist() == [pd.Timestamp("1997-01-01"), pd.Timestamp("1997-01-12"),
                                   pd.Timestamp("1997-01-12"), pd.Timestamp("1997-01-02")]
    assert df["quantity"].dtype == "int64" and df["quantity"].tolist() == [1, 1, 5, 2]
    assert df["amount"].dtype == "float64" and df["amount"].tolist() == [11.77, 12.0, 77.0, 20.76]


def test_cdnow_whitespace_without_header(tmp_path):
    path = _write(tmp_path / "CDNOW_master.txt", CDNOW)
    df = _read(path, CDNOW_ROLES, header=False, names=CDNOW_NAMES, columns={"quantity": "cds"})
    _assert_cdnow(df)
    record = df.attrs["source"]
    assert record["format"] == "whitespace" and record["delimiter"] == "whitespace"  # sniffed
    assert record["columns"] == {"customer": "customer_id", "date": "date", "quantity": "cds",
                                 "amount": "amount"}


def test_cdnow_whitespace_with_header_and_amount_mapped(tmp_path):
    path = _write(tmp_path / "cdnow.txt", "customer_id date cds amount\n" + CDNOW)
    _assert_cdnow(_read(path, CDNOW_ROLES, columns={"quantity": "cds"}))  # amount by its name
    dollars = _write(tmp_path / "dollars.txt", "customer_id\tdate cds dollars\n" + CDNOW)
    df = _read(dollars, CDNOW_ROLES, columns={"quantity": "cds", "amount": "dollars"})
    _assert_cdnow(df)
    assert df.attrs["source"]["columns"]["amount"] == "dollars"


def test_whitespace_forced_by_format_or_delimiter(tmp_path):
    # .dat says nothing of the format: the spec does.
    path = _write(tmp_path / "cdnow.dat", CDNOW)
    _assert_cdnow(_read(path, CDNOW_ROLES, format="whitespace", header=False, names=CDNOW_NAMES,
                        columns={"quantity": "cds"}))
    # One comma on every line (in the genre) makes the sniffer take ","; the spec overrides it.
    genres = ["rock,pop", "jazz,blues", "pop,soul", "folk,rock"]
    text = "".join(f"{line} {genre}\n" for line, genre in zip(CDNOW.splitlines(), genres, strict=True))
    txt = _write(tmp_path / "cdnow.txt", text)
    names = [*CDNOW_NAMES, "genre"]
    sniffed = read_source(SourceSpec(path=str(txt), header=False, names=["left", "right"]))
    assert sniffed.attrs["source"]["delimiter"] == ","
    df = _read(txt, CDNOW_ROLES, delimiter="whitespace", header=False, names=names,
               columns={"quantity": "cds"})
    _assert_cdnow(df)
    assert df.attrs["source"]["format"] == "whitespace"


def test_whole_table_of_a_headerless_whitespace_file(tmp_path):
    path = _write(tmp_path / "cdnow.txt", CDNOW)
    df = read_source(SourceSpec(path=str(path), header=False, names=CDNOW_NAMES))
    assert list(df.columns) == CDNOW_NAMES
    # Types as pandas infers them: without the customer role an id like 00001 is the number 1.
    assert df["customer_id"].tolist() == [1, 2, 2, 3]
    assert df["cds"].tolist() == [1, 1, 5, 2] and df["amount"].tolist() == [11.77, 12.0, 77.0, 20.76]
    assert df.attrs["source"]["rows"] == 4


def test_customer_ids_keep_leading_zeros(tmp_path):
    path = _write(tmp_path / "ids.csv", "CustomerID,Quantity\n00001,1\n00002,2\n")
    df = read_source(SourceSpec(path=str(path)), required=["customer", "quantity"])
    assert df["customer"].tolist() == ["00001", "00002"]
    assert df["quantity"].tolist() == [1, 2]


def test_bad_value_in_headerless_whitespace_file_names_the_line(tmp_path):
    path = _write(tmp_path / "cdnow.txt", CDNOW.replace("  5  ", "  x  "))
    err = _read_error(path, ["quantity"], header=False, names=CDNOW_NAMES, columns={"quantity": "cds"})
    # Without a header, row 3 is line 3.
    assert (err.file, err.column, err.row) == (str(path), "cds", 3)
    assert "got 'x' (line 3 of the file)" in str(err)


def test_headerless_csv_with_names(tmp_path):
    path = _write(tmp_path / "sales.csv", "17850,536365,6,2.55\n\n00123,536366,-1,3.39\n")
    df = _read(path, ["customer", "invoice", "quantity", "price"], header=False,
               names=["CustomerID", "InvoiceNo", "Quantity", "UnitPrice"])
    assert df.values.tolist() == [["17850", "536365", 6, 2.55], ["00123", "536366", -1, 3.39]]
    assert df.attrs["source"]["delimiter"] == ","


def test_names_replace_the_header_line(tmp_path):
    path = _write(tmp_path / "sales.csv", "a;b;c\n17850;6;2.55\n")
    df = _read(path, ["customer", "quantity", "price"], names=["CustomerID", "Quantity", "UnitPrice"])
    assert df.values.tolist() == [["17850", 6, 2.55]]
    err = _read_error(path, ["customer"], names=["CustomerID", "Quantity"])
    assert err.file == str(path)
    assert "has 3 columns in its header line ['a', 'b', 'c'] but source.names gives 2" in str(err)


@pytest.mark.parametrize("text, line, fields", [
    ("17850,536365,6\n17851,536366\n17852,536367,1\n", 2, 2),        # a short line
    ("17850,536365,6\n17851,536366,2\n17852,536367,1,9\n", 3, 4),    # a long line
    ("17850,536365\n17851,536366\n", 1, 2),                          # every line short
])
def test_headerless_line_with_other_field_count(tmp_path, text, line, fields):
    path = _write(tmp_path / "sales.csv", text)
    err = _read_error(path, ["customer"], header=False, names=["CustomerID", "InvoiceNo", "Quantity"])
    assert (err.file, err.row) == (str(path), line)
    assert f"line {line} has {fields} fields separated by ',', but source.names gives 3" in str(err)


def test_short_line_in_headerless_whitespace_file(tmp_path):
    path = _write(tmp_path / "cdnow.txt", CDNOW.replace("1  12.00", "1"))
    err = _read_error(path, ["customer"], delimiter="whitespace", header=False, names=CDNOW_NAMES)
    assert err.row == 2
    assert "line 2 has 3 fields separated by runs of whitespace, but source.names gives 4" in str(err)


def test_header_false_is_for_text_files(tmp_path):
    path = tmp_path / "d.parquet"
    pd.DataFrame({"d": [19970101], "c": ["00001"]}).to_parquet(path)
    err = _read_error(path, ["date"], header=False, names=["date", "customer"])
    assert err.file == str(path) and "'header: false' is for delimited text files" in str(err)
    # names alone rename the columns of a Parquet file, in order
    df = _read(path, ["customer", "date"], names=["date", "customer"])
    assert df.values.tolist() == [["00001", pd.Timestamp("1997-01-01")]]
    assert df.attrs["source"]["columns"] == {"customer": "customer", "date": "date"}
    database = tmp_path / "shop.duckdb"
    with duckdb.connect(str(database)) as con:
        con.execute("CREATE TABLE sales AS SELECT 19970101 AS d, '00001' AS c")
    with pytest.raises(InputError, match="a database table names its columns"):
        read_source(SourceSpec(duckdb=str(database), table="sales", header=False, names=["date", "customer"]))
    renamed = read_source(SourceSpec(duckdb=str(database), table="sales", names=["date", "customer"]),
                          required=["customer", "date"])
    assert renamed.values.tolist() == [["00001", pd.Timestamp("1997-01-01")]]


# --------------------------------------------------------------------------- archives

def test_zip_holding_one_csv(tmp_path):
    path = tmp_path / "retail.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("export/retail.csv", HEADER + LINES)
        archive.writestr("__MACOSX/export/._retail.csv", b"\x00\x05\x16\x07")  # macOS junk
        archive.writestr("export/.DS_Store", b"\x00\x00\x00\x01Bud1")
    df = _read(path)
    _assert_small(df)
    record = df.attrs["source"]
    assert record["file"] == str(path) and record["member"] == "export/retail.csv"
    assert record["format"] == "csv"
    assert record["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def test_zip_found_by_its_bytes_and_located_errors(tmp_path):
    path = tmp_path / "retail.csv"  # a zip with a .csv name: found by its first bytes
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("retail.csv", HEADER + LINES.replace(",6,", ",six,", 1))
    err = _read_error(path, ["quantity"])
    assert (err.file, err.column, err.row) == (f"{path} (member 'retail.csv')", "Quantity", 1)
    assert "got 'six' (line 2 of the file)" in str(err)


def test_zip_with_two_or_no_data_files_lists_members(tmp_path):
    two = tmp_path / "two.zip"
    with zipfile.ZipFile(two, "w") as archive:
        archive.writestr("2010.csv", HEADER + LINES)
        archive.writestr("2011.csv", HEADER + LINES)
        archive.writestr("README.md", "two years")
    err = _read_error(two, ["customer"])
    assert err.file == str(two)
    assert "holding 2 data files; it needs exactly one" in str(err)
    assert "its members are ['2010.csv', '2011.csv', 'README.md']" in str(err)
    none = tmp_path / "none.zip"
    with zipfile.ZipFile(none, "w") as archive:
        archive.writestr("README.md", "nothing")
    assert "holding 0 data files" in str(_read_error(none, ["customer"]))


def test_gzipped_whitespace_txt_and_parquet(tmp_path):
    path = tmp_path / "CDNOW_master.txt.gz"
    path.write_bytes(gzip.compress(CDNOW.encode()))
    df = _read(path, CDNOW_ROLES, header=False, names=CDNOW_NAMES, columns={"quantity": "cds"})
    _assert_cdnow(df)
    assert df.attrs["source"]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    parquet = tmp_path / "retail.parquet"
    _small_frame().to_parquet(parquet)
    packed = tmp_path / "retail.parquet.gz"
    packed.write_bytes(gzip.compress(parquet.read_bytes()))
    _assert_small(_read(packed))


# --------------------------------------------------------------------------- integer dates

def test_text_yyyymmdd_dates(tmp_path):
    path = _write(tmp_path / "d.csv", "date,Quantity\n19970101,1\n19971231,1\n")
    dates = _read(path, ["date"])["date"]
    assert dates.tolist() == [pd.Timestamp("1997-01-01"), pd.Timestamp("1997-12-31")]


def test_integer_yyyymmdd_dates_in_a_frame_and_parquet(tmp_path):
    frame = pd.DataFrame({"date": [19970101, 19970112]})
    assert frame["date"].dtype == "int64"
    dates = read_frame(frame, required=["date"])["date"]
    assert dates.dtype == "datetime64[us]"
    assert dates.tolist() == [pd.Timestamp("1997-01-01"), pd.Timestamp("1997-01-12")]
    # A missing value makes the column float; it is still yyyymmdd.
    gap = read_frame(pd.DataFrame({"date": [19970101, None]}), required=["date"])["date"]
    assert gap.iloc[0] == pd.Timestamp("1997-01-01") and pd.isna(gap.iloc[1])
    path = tmp_path / "d.parquet"
    frame.to_parquet(path)
    assert _read(path, ["date"])["date"].tolist() == dates.tolist()


def test_bad_integer_dates(tmp_path):
    path = tmp_path / "d.parquet"
    pd.DataFrame({"InvoiceDate": [19970101, 20131345]}).to_parquet(path)  # month 13
    err = _read_error(path, ["date"])
    assert (err.file, err.column, err.row) == (str(path), "InvoiceDate", 2)
    assert "read as yyyymmdd from 8-digit numbers, got 20131345" in str(err)
    text = _write(tmp_path / "d.csv", "InvoiceDate\n19970101\n20131345\n")
    err = _read_error(text, ["date"])
    assert (err.column, err.row) == ("InvoiceDate", 2) and "(line 3 of the file)" in str(err)
    # Numbers that are not all 8 digits (Excel serials here) keep the old error.
    with pytest.raises(InputError, match="a date or a date text, not a number, got 35065"):
        read_frame(pd.DataFrame({"InvoiceDate": [35065, 19970101]}), required=["date"])


# --------------------------------------------------------------------------- tables in memory

def _fingerprint(frame: pd.DataFrame) -> str:
    """read_frame's documented content fingerprint."""
    hashed = pd.util.hash_pandas_object(frame, index=False).values.tobytes()
    return hashlib.sha256(hashed + "\n".join(frame.columns).encode()).hexdigest()[:16]


def test_read_frame_pandas_arrow_and_duckdb_alike():
    frame = _small_frame()
    expected = _fingerprint(frame)
    from_pandas = read_frame(frame, required=LINE_ROLES)
    _assert_small(from_pandas)
    assert from_pandas.attrs["source"]["frame"] == "pandas DataFrame"
    assert from_pandas.attrs["source"]["sha256"] == expected
    from_arrow = read_frame(pa.Table.from_pandas(frame), required=LINE_ROLES, name="sales")
    _assert_small(from_arrow)
    assert from_arrow.attrs["source"]["frame"] == "sales"
    with duckdb.connect() as con:
        relation = con.from_df(frame)
        from_duckdb = read_frame(relation, required=LINE_ROLES)
    _assert_small(from_duckdb)
    assert from_duckdb.attrs["source"]["frame"] == "DuckDB relation"
    # The same content, the same fingerprint, whatever held it; another value, another one.
    assert from_arrow.attrs["source"]["sha256"] == from_duckdb.attrs["source"]["sha256"] == expected
    changed = frame.assign(Quantity=[6, 6, -1, 57])
    assert read_frame(changed, required=["quantity"]).attrs["source"]["sha256"] != expected


def test_read_frame_polars():
    pl = pytest.importorskip("polars")
    frame = pl.DataFrame({"CustomerID": ["00001", None], "date": [19970101, 19970112],
                          "amount": [11.77, 12.0]})
    df = read_frame(frame, required=["customer", "date", "amount"])
    assert df["customer"].tolist()[0] == "00001" and pd.isna(df["customer"].iloc[1])
    assert df["date"].tolist() == [pd.Timestamp("1997-01-01"), pd.Timestamp("1997-01-12")]
    assert df.attrs["source"]["frame"] == "polars DataFrame"


def test_read_frame_bad_value_and_bad_type():
    with pytest.raises(InputError) as caught:
        read_frame(pa.table({"Quantity": ["1", "lots"]}), required=["quantity"], name="orders")
    err = caught.value
    assert (err.file, err.column, err.row) == ("orders", "Quantity", 2)
    with pytest.raises(InputError, match=r"cannot read a builtins.list as a table; read_frame "
                                         r"takes a pandas DataFrame, a pyarrow Table, a DuckDB "
                                         r"relation or a polars DataFrame"):
        read_frame([[17850, 6]], required=["customer"])


def test_is_table(tmp_path):
    assert is_table(_small_frame()) and is_table(pa.table({"a": [1]}))
    with duckdb.connect() as con:
        assert is_table(con.sql("SELECT 1 AS a"))
    assert not any(is_table(x) for x in (str(tmp_path), tmp_path, SourceSpec(path="x.csv"), [[1]], None))


def test_amount_role_by_default_header(tmp_path):
    path = _write(tmp_path / "lines.csv", "CustomerID,Sales\n17850,15.30\n17850,20\n")
    df = _read(path, ["customer", "amount"])
    assert df["amount"].dtype == "float64" and df["amount"].tolist() == [15.3, 20.0]
    assert df.attrs["source"]["columns"]["amount"] == "Sales"
    bad = _write(tmp_path / "bad.csv", "CustomerID,Sales\n17850,£15\n")
    err = _read_error(bad, ["amount"])
    assert (err.column, err.row) == ("Sales", 1) and "amount must be a number" in str(err)


@pytest.mark.parametrize("content", [
    "1,Male,19,15,39\n2,Male,21,15,81\n3,Female,20,16,6\n",            # Mall without its header
    "00001 19970101  1  11.77\n00002 19970112  1  12.00\n",              # CDNOW as distributed
])
def test_a_first_line_of_data_is_not_taken_for_a_header(tmp_path, content):
    path = _write(tmp_path / "table.csv", content)
    with pytest.raises(InputError, match=r"first line looks like data.*source.header: false"):
        read_source(SourceSpec(path=str(path)))


def test_year_headers_of_a_wide_table_are_a_header(tmp_path):
    path = _write(tmp_path / "wide.csv", "customer,2019,2020,2021\nA,1.5,2.0,3.0\nB,0,1,2\n")
    df = read_source(SourceSpec(path=str(path)))
    assert list(df.columns) == ["customer", "2019", "2020", "2021"] and len(df) == 2


def test_dates_that_read_both_ways_are_read_month_first_with_a_warning(tmp_path, caplog):
    text = "customer,date,amount\nA,03/01/19,1\nB,11/01/19,2\nA,05/02/19,3\n"
    path = _write(tmp_path / "sales.csv", text)
    with caplog.at_level("WARNING"):
        df = read_source(SourceSpec(path=str(path)), required=["customer", "date", "amount"])
    assert df["date"].iloc[0] == pd.Timestamp("2019-03-01")  # month first, as documented
    assert df.attrs["source"]["date_order_ambiguous"] is True
    assert "source.dayfirst: true" in caplog.text
    day_first = read_source(SourceSpec(path=str(path), dayfirst=True),
                            required=["customer", "date", "amount"])
    assert day_first["date"].iloc[0] == pd.Timestamp("2019-01-03")
    # a day above 12 decides it: no warning, and a month-first read of it is an error naming
    # the way out
    caplog.clear()
    _write(path, text + "C,13/01/19,4\n")
    with pytest.raises(InputError, match="source.dayfirst: true"):
        read_source(SourceSpec(path=str(path)), required=["customer", "date", "amount"])


def test_zip_members_named_with_a_parent_folder_are_counted(tmp_path):
    import zipfile

    path = tmp_path / "two.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("../a.csv", "customer,amount\nx,1\n")
        archive.writestr("../b.csv", "customer,amount\ny,2\n")
    with pytest.raises(InputError, match=r"holding 2 data files.*'../a.csv', '../b.csv'"):
        read_source(SourceSpec(path=str(path)))
