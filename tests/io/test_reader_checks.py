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


# --------------------------------------------------------------------------- C4 invalid values

INVALID = ("InvoiceNo,Quantity,UnitPrice,InvoiceDate,CustomerID\n"
           "1,6,2.55,2010-12-01,17850\n"       # row 1: fine
           "2,6,,2010-12-01,17850\n"           # row 2: price missing
           "3,inf,1.00,2010-12-01,17850\n"     # row 3: quantity infinite
           "4,1,2e15,2010-12-01,\n"            # row 4: price beyond 1e15 (no customer: kept reason)
           "5,1,1.00,2999-01-01,17850\n"       # row 5: date in the future
           "6,1,1.00,1899-12-31,17850\n"       # row 6: date before 1900
           "7,,-inf,2010-12-01,17850\n"        # row 7: quantity missing (counted once)
           "8,2,1.50,2010-12-02,\n")           # row 8: fine, customer missing is not invalid
ROLES4 = ["invoice", "quantity", "price", "date", "customer"]


def test_invalid_lines_are_dropped_and_counted(tmp_path, caplog):
    path = tmp_path / "invalid.csv"
    path.write_text(INVALID)
    with caplog.at_level("WARNING", logger="segmint.io._readers"):
        df = read_source(SourceSpec(path=str(path)), required=ROLES4)
    assert df["invoice"].tolist() == ["1", "8"]
    assert df["quantity"].dtype == "int64" and df["quantity"].tolist() == [6, 2]
    assert df["customer"].isna().tolist() == [False, True]
    record = df.attrs["source"]
    assert record["dropped"] == {"quantity missing": 1, "quantity infinite": 1, "price missing": 1,
                                 "price beyond 1e15": 1, "date in the future": 1,
                                 "date before 1900": 1}
    assert record["rows"] == 2
    assert "dropped 6 of 8 lines as invalid" in caplog.text and "invalid.csv" in caplog.text


def test_no_invalid_lines_records_nothing_dropped(tmp_path):
    path = tmp_path / "fine.csv"
    path.write_text(INVALID.split("\n", 2)[0] + "\n" + INVALID.split("\n", 2)[1] + "\n")
    assert read_source(SourceSpec(path=str(path)), required=ROLES4).attrs["source"]["dropped"] == {}


def test_invalid_error_names_column_row_and_line(tmp_path):
    path = tmp_path / "invalid.csv"
    path.write_text(INVALID)
    error = _error(path, ROLES4, invalid="error")
    assert error.file == str(path) and error.column == "UnitPrice" and error.row == 2
    assert "price missing on line 3 of the file" in str(error) and "6 line(s)" in str(error)
    path.write_text(INVALID.replace("2,6,,", "2,6,1,"))
    error = _error(path, ROLES4, invalid="error")
    assert error.column == "Quantity" and error.row == 3 and "quantity infinite (inf)" in str(error)


def test_invalid_dates_and_amounts_in_a_frame():
    frame = pd.DataFrame({"customer_id": ["a", "b", "c"], "amount": [1.0, 2e16, 3.0],
                          "date": pd.to_datetime(["2020-01-01", "2020-01-02", "1850-01-01"])})
    df = read_frame(frame, required=["customer", "amount", "date"])
    assert df["customer"].tolist() == ["a"]
    assert df.attrs["source"]["dropped"] == {"amount beyond 1e15": 1, "date before 1900": 1}
    with pytest.raises(InputError, match=r"amount beyond 1e15 \(2e\+16\)") as caught:
        read_frame(frame, SourceSpec(path="x", invalid="error"), required=["customer", "amount", "date"])
    assert caught.value.column == "amount" and caught.value.row == 2


def test_every_line_invalid_is_an_error(tmp_path):
    path = tmp_path / "none.csv"
    path.write_text("Quantity,UnitPrice\n1,\n2,\n")
    with pytest.raises(InputError, match="every line is invalid: price missing 2"):
        read_source(SourceSpec(path=str(path)), required=["quantity", "price"])


def test_tomorrow_is_not_the_future(tmp_path):
    tomorrow = (pd.Timestamp.now().normalize() + pd.Timedelta(days=1, hours=23)).isoformat()
    path = tmp_path / "soon.csv"
    path.write_text(f"InvoiceDate,Quantity\n{tomorrow},1\n2010-01-01,1\n")
    df = read_source(SourceSpec(path=str(path)), required=["date"])
    assert len(df) == 2 and df.attrs["source"]["dropped"] == {}


# --------------------------------------------------------------------------- C5 decimal commas

def test_decimal_comma_inferred_in_a_semicolon_file(tmp_path):
    path = tmp_path / "de.csv"
    path.write_text("Rechnung;Menge;Preis\n1;6;2,55\n2;1.000;1.234,5\n3;2;3\n")
    source = SourceSpec(path=str(path), columns={"invoice": "Rechnung", "quantity": "Menge",
                                                 "price": "Preis"})
    df = read_source(source, required=["invoice", "quantity", "price"])
    assert df["price"].tolist() == [2.55, 1234.5, 3.0]
    assert df["quantity"].tolist() == [6, 1000, 2] and df["quantity"].dtype == "int64"
    assert df.attrs["source"]["decimal"] == ","


def test_no_comma_in_a_semicolon_file_reads_points_as_decimals(tmp_path):
    path = tmp_path / "points.csv"
    path.write_text("InvoiceNo;Quantity;UnitPrice\n1;6;1.234\n2;1;2.5\n")
    df = read_source(SourceSpec(path=str(path)), required=["invoice", "quantity", "price"])
    assert df["price"].tolist() == [1.234, 2.5] and "decimal" not in df.attrs["source"]


def test_a_comma_separated_file_is_unaffected(tmp_path):
    path = tmp_path / "en.csv"
    path.write_text('InvoiceNo,Quantity,UnitPrice\n1,6,2.55\n2,1,"1,234.5"\n')
    error = _error(path, ["invoice", "quantity", "price"])
    assert error.column == "UnitPrice" and error.row == 2 and "'1,234.5'" in str(error)
    path.write_text("InvoiceNo,Quantity,UnitPrice\n1,6,2.55\n2,1,1.5\n")
    df = read_source(SourceSpec(path=str(path)), required=["invoice", "quantity", "price"])
    assert df["price"].tolist() == [2.55, 1.5]


def test_mixed_marks_in_a_semicolon_file_are_not_guessed(tmp_path):
    path = tmp_path / "mixed.csv"
    path.write_text("InvoiceNo;Quantity;UnitPrice\n1;6;2,55\n2;1;1.5\n")
    error = _error(path, ["invoice", "quantity", "price"])
    assert error.file == str(path) and error.column == "UnitPrice" and error.row == 1
    assert "'2,55'" in str(error) and "set source.decimal: ','" in str(error)


def test_declared_decimal_comma(tmp_path):
    path = tmp_path / "tab.tsv"
    path.write_text("InvoiceNo\tUnitPrice\n1\t2,55\n2\t1.234,5\n3\t7\n")
    df = read_source(SourceSpec(path=str(path), decimal=","), required=["invoice", "price"])
    assert df["price"].tolist() == [2.55, 1234.5, 7.0]
    path.write_text("InvoiceNo\tUnitPrice\n1\t2,55\n2\t1.5\n")  # 1.5 is not 15
    error = _error(path, ["invoice", "price"], decimal=",")
    assert error.column == "UnitPrice" and error.row == 2 and "'1.5'" in str(error)
    assert "decimal comma" in str(error)


# --------------------------------------------------------------------------- C3 roles of the wrong kind

MEASURES = ("InvoiceNo,Quantity,UnitPrice,CustomerID\n"
            "1,6,2.55,17850\n"
            "2,-1,3.39,17850\n"
            "3,2.5,1.00,14527\n")


def test_customer_mapped_to_a_measure_is_an_error(tmp_path):
    path = tmp_path / "measures.csv"
    path.write_text(MEASURES)
    error = _error(path, ["customer", "invoice"], columns={"customer": "Quantity"})
    assert error.file == str(path) and error.column == "Quantity" and error.row == 2
    assert "customer must be an id or a name, not a measure, got '-1'" in str(error)
    assert "line 3 of the file" in str(error) and "1 more bad value" in str(error)
    error = _error(path, ["customer", "product"], columns={"product": "UnitPrice"})
    assert error.column == "UnitPrice" and error.row == 1 and "product must be an id" in str(error)


def test_a_measure_in_a_typed_frame_and_whole_numbers_as_ids():
    frame = pd.DataFrame({"CustomerID": [17850.0, None, 14527.0], "Country": [1.5, 2.0, 3.0]})
    with pytest.raises(InputError, match="country must be an id or a name") as caught:
        read_frame(frame, required=["customer", "country"])
    assert caught.value.column == "Country" and caught.value.row == 1
    df = read_frame(frame, required=["customer"])  # whole ids through a float column are ids
    assert df["customer"].tolist()[::2] == ["17850", "14527"]


def test_one_column_for_two_roles_is_an_error(tmp_path):
    path = tmp_path / "measures.csv"
    path.write_text(MEASURES)
    error = _error(path, ["customer", "invoice"], columns={"customer": "InvoiceNo"})
    assert error.file == str(path) and error.column == "InvoiceNo"
    assert ("column 'InvoiceNo' is mapped to two roles: customer (by source.columns) and invoice "
            "(by its usual name)") in str(error)
    error = _error(path, ["customer", "quantity", "price"],
                   columns={"quantity": "Quantity", "price": "Quantity"})
    assert "quantity (by source.columns) and price (by source.columns)" in str(error)


def test_date_mapped_to_a_number_column_is_an_error(tmp_path):
    path = tmp_path / "measures.csv"
    path.write_text(MEASURES)
    error = _error(path, ["customer", "date"], columns={"date": "UnitPrice"})
    assert error.column == "UnitPrice" and error.row == 1 and "date" in str(error)
