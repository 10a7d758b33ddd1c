"""Data checks of :mod:`segmint.io._readers`: ragged lines, repeated headers, long fields,
invalid numbers and dates, decimal commas, roles mapped to the wrong kind of column.

Each error names the file, the column (as spelled in the source) and the row.
"""
from __future__ import annotations

import duckdb
import pandas as pd
import pytest

from segmint.errors import InputError
from segmint.io import read_frame, read_source
from segmint.spec import SourceSpec

HEADER = "InvoiceNo,Quantity,UnitPrice,CustomerID,Country\n"


def _error(path, required, **spec) -> InputError:
    with pytest.raises(InputError) as caught:
        read_source(SourceSpec(path=str(path), **spec), required=required)
    return caught.value


# --------------------------------------------------------------------------- C1 ragged lines

def test_a_line_missing_a_field_in_the_middle_is_an_error(tmp_path):
    # Without the check the customer of line 3 would read "United Kingdom".
    path = tmp_path / "short.csv"
    path.write_text(HEADER + "1,6,2.55,17850,United Kingdom\n2,6,3.39,United Kingdom\n"
                    "3,1,1.00,14527,France\n")
    error = _error(path, ["invoice", "quantity", "price", "customer", "country"])
    assert error.file == str(path) and error.row == 2
    assert "line 3 has 4 fields" in str(error) and "header line has 5" in str(error)
    assert "a field is missing" in str(error)


def test_a_short_last_line_and_a_short_line_of_a_role_not_asked_for(tmp_path):
    path = tmp_path / "short.csv"
    path.write_text(HEADER + "1,6,2.55,17850,United Kingdom\n2,6,3.39,17851\n")
    error = _error(path, ["customer"])
    assert error.row == 2 and "line 3 has 4 fields" in str(error)


def test_an_empty_last_field_is_not_a_short_line(tmp_path):
    path = tmp_path / "ok.csv"
    path.write_text(HEADER + "1,6,2.55,17850,\n2,6,3.39,17851,France\n")
    df = read_source(SourceSpec(path=str(path)), required=["customer", "country"])
    assert df["customer"].tolist() == ["17850", "17851"]
    assert df["country"].isna().tolist() == [True, False]


def test_every_line_longer_than_the_header_is_an_error(tmp_path):
    # pandas would take the first field of each line as an index and shift the rest left
    path = tmp_path / "long.csv"
    path.write_text("InvoiceNo,CustomerID\n1,17850,x\n2,17851,y\n")
    error = _error(path, ["invoice", "customer"])
    assert error.row == 1 and "line 2 has 3 fields" in str(error) and "header line has 2" in str(error)


def test_a_long_line_later_in_the_file(tmp_path):
    path = tmp_path / "long.csv"
    path.write_text("InvoiceNo,CustomerID\n1,17850\n2,17851\n3,3,39\n")
    error = _error(path, ["invoice", "customer"])
    assert error.row == 3 and "line 4 has 3 fields" in str(error)
    assert "separator without quotes" in str(error)


def test_short_line_in_a_semicolon_file_without_roles(tmp_path):
    path = tmp_path / "customers.csv"
    path.write_text("id;age;city\n1;30;Lyon\n2;Paris\n")
    with pytest.raises(InputError, match=r"line 3 has 2 fields separated by ';'") as caught:
        read_source(SourceSpec(path=str(path)))
    assert caught.value.row == 2


# --------------------------------------------------------------------------- C2 repeated headers

def test_repeated_header_names_both_positions(tmp_path):
    path = tmp_path / "twice.csv"
    path.write_text("InvoiceNo,Quantity,CustomerID,Quantity\n1,6,17850,7\n")
    error = _error(path, ["customer"])
    assert error.file == str(path) and error.column == "Quantity"
    assert "columns 2 and 4 are both named 'Quantity'" in str(error)


def test_repeated_header_in_excel_and_in_a_query(tmp_path):
    path = tmp_path / "twice.xlsx"
    pd.DataFrame([[1, 2, 3]], columns=["CustomerID", "a", "b"]).to_excel(path, index=False)
    from openpyxl import load_workbook

    book = load_workbook(path)
    book.active["C1"] = "CustomerID"
    book.save(path)
    error = _error(path, ["customer"])
    assert "columns 1 and 3 are both named 'CustomerID'" in str(error) and "twice.xlsx" in str(error)
    with pytest.raises(InputError, match="columns 1 and 2 are both named 'CustomerID'"):
        read_frame(pd.DataFrame([[1, 2]], columns=["CustomerID", "CustomerID"]), required=["customer"])
    database = tmp_path / "shop.duckdb"
    with duckdb.connect(str(database)) as con:
        con.execute("CREATE TABLE t AS SELECT 1 AS CustomerID, 2 AS x")
    df = read_source(SourceSpec(duckdb=str(database), query="SELECT CustomerID, x AS y FROM t"),
                     required=["customer"])
    assert df["customer"].tolist() == ["1"]


def test_names_replace_a_repeated_header(tmp_path):
    path = tmp_path / "twice.csv"
    path.write_text("a,a\n17850,6\n")
    df = read_source(SourceSpec(path=str(path), names=["CustomerID", "Quantity"]),
                     required=["customer", "quantity"])
    assert df["customer"].tolist() == ["17850"] and df["quantity"].tolist() == [6]


def test_blank_headers_are_not_repeats(tmp_path):
    path = tmp_path / "blank.csv"
    path.write_text("CustomerID,,\n17850,1,2\n")
    df = read_source(SourceSpec(path=str(path)), required=["customer"])
    assert df["customer"].tolist() == ["17850"]


# --------------------------------------------------------------------------- C6 long fields

def test_located_errors_after_a_10_mb_field(tmp_path):
    path = tmp_path / "long_field.csv"
    big = "x" * 10_000_000
    path.write_text(f"InvoiceNo,Description,Quantity\n1,\"{big}\",6\n2,small,six\n")
    error = _error(path, ["invoice", "quantity"])
    assert error.file == str(path) and error.column == "Quantity" and error.row == 2
    assert "line 3 of the file" in str(error) and "'six'" in str(error)
    short = tmp_path / "long_field_short.csv"
    short.write_text(f"InvoiceNo,Description,Quantity\n1,\"{big}\",6\n2,7\n")
    error = _error(short, ["invoice", "quantity"])
    assert error.row == 2 and "line 3 has 2 fields" in str(error)
