"""Bad values inside good files: numbers that are not numbers (or not finite, or absurd), dates
that cannot be read or cannot be true, day/month order, decimal commas. And files a naive
tool fails on that segmint must accept."""
from __future__ import annotations

import json

import pandas as pd
import pytest

import segmint

from .conftest import (
    N_CUSTOMERS,
    TX_HEADER,
    assert_user_error,
    check_message,
    gross_revenue_total,
    tx_rows,
    tx_text,
)

Q, D, P, C = (TX_HEADER.index(h) for h in ("Quantity", "InvoiceDate", "UnitPrice", "CustomerID"))
BAD_NUMBERS = ["abc", "NaN", "inf", "-inf", "1e200"]
AMOUNT_HEADER = ["InvoiceNo", "InvoiceDate", "CustomerID", "amount"]


def _with(rows, row: int, index: int, value: str):
    rows = [list(r) for r in rows]
    rows[row - 1][index] = value
    return rows


def _lines_with(column: str, row: int, value: str):
    """(rows, header) of the lines, with ``value`` in ``column`` of 1-based ``row``; the
    ``amount`` column is in the line-total shape of the lines."""
    if column == "amount":
        return _with(_amount_rows(), row, 3, value), AMOUNT_HEADER
    return _with(tx_rows(), row, TX_HEADER.index(column), value), TX_HEADER


def _amount_rows():
    """The same lines with a line total (quantity x price) in place of quantity and price."""
    return [[r[0], r[D], r[C], f"{float(r[Q]) * float(r[P]):.4f}"] for r in tx_rows()]


def _manifest(run) -> dict:
    return json.loads((run.path / "manifest.json").read_text(encoding="utf-8"))


def _dropped(manifest: dict) -> int:
    dropped = manifest["input"].get("dropped")
    assert dropped is not None, f"the manifest's input record has no 'dropped': {manifest['input']}"
    return sum(dropped.values()) if isinstance(dropped, dict) else int(dropped)


# --------------------------------------------------------------------------- numbers, dropped

@pytest.mark.parametrize("value", ["NaN", "inf", "-inf", "1e200"])
@pytest.mark.parametrize("column", ["Quantity", "UnitPrice", "amount"])
def test_bad_number_line_is_dropped_and_counted_api(case, column, value):
    rows, header = _lines_with(column, 3, value)
    data = case.write("lines.csv", tx_text(rows, header=header))
    spec = case.spec({"path": data.name})
    case.snapshot()
    run = segmint.run(spec)
    manifest = _manifest(run)
    assert _dropped(manifest) == 1, manifest["input"]
    assert manifest["lines"] == len(rows) - 1
    # the dropped line is said in words a user sees, too
    assert any("drop" in note.lower() for note in manifest.get("notes", [])), manifest.get("notes")
    case.check(new_runs=1)


# --------------------------------------------------------------------------- numbers, error

@pytest.mark.parametrize("column", ["Quantity", "UnitPrice", "amount"])
def test_text_where_a_number_belongs_stops_the_run_api(case, column):
    # README: a missing, infinite or huge number drops its line; text is an error even so
    rows, header = _lines_with(column, 3, "abc")
    data = case.write("lines.csv", tx_text(rows, header=header))
    spec = case.spec({"path": data.name})
    case.fails(spec, "api", kind=segmint.InputError, file="lines.csv", column=column, row=3,
               contains=("'abc'",))
    case.check()


@pytest.mark.parametrize("value", BAD_NUMBERS)
@pytest.mark.parametrize("column", ["Quantity", "UnitPrice", "amount"])
def test_bad_number_with_invalid_error(case, column, value):
    rows, header = _lines_with(column, 4, value)
    data = case.write("lines.csv", tx_text(rows, header=header))
    spec = case.spec({"path": data.name, "invalid": "error"})
    via = "cli" if (column, value) in {("Quantity", "abc"), ("UnitPrice", "inf")} else "api"
    case.fails(spec, via, kind=segmint.InputError, file="lines.csv", column=column, row=4)
    case.check()


def test_every_quantity_bad_is_an_error_not_an_empty_run_cli(case):
    rows = [_with([r], 1, Q, "n/a")[0] for r in tx_rows()]
    data = case.write("lines.csv", tx_text(rows))
    res = case.run("run", case.spec({"path": data.name}))
    assert_user_error(res, file="lines.csv", column="Quantity")
    case.check()


# --------------------------------------------------------------------------- dates

@pytest.mark.parametrize("via, value", [("cli", "not a date"), ("api", "2011-02-30 10:00"),
                                        ("api", "31/31/2011")])
def test_unparseable_date(case, via, value):
    data = case.write("lines.csv", tx_text(_with(tx_rows(), 3, D, value)))
    case.fails(case.spec({"path": data.name}), via, kind=segmint.InputError, file="lines.csv",
               column="InvoiceDate", row=3)
    case.check()


@pytest.mark.parametrize("value", ["2099-06-01 10:00", "1899-12-31 10:00"])
def test_impossible_date_is_dropped_and_counted_api(case, value):
    data = case.write("lines.csv", tx_text(_with(tx_rows(), 5, D, value)))
    spec = case.spec({"path": data.name})
    case.snapshot()
    run = segmint.run(spec)
    assert _dropped(_manifest(run)) == 1
    case.check(new_runs=1)


@pytest.mark.parametrize("via, value", [("cli", "2099-06-01 10:00"), ("api", "1899-12-31 10:00")])
def test_impossible_date_with_invalid_error(case, via, value):
    data = case.write("lines.csv", tx_text(_with(tx_rows(), 5, D, value)))
    case.fails(case.spec({"path": data.name, "invalid": "error"}), via, kind=segmint.InputError,
               file="lines.csv", column="InvoiceDate", row=5)
    case.check()


def test_day_first_date_without_dayfirst_says_how_cli(case):
    rows = [_with([r], 1, D, pd.Timestamp(r[D]).strftime("%d/%m/%Y %H:%M"))[0] for r in tx_rows()]
    rows = _with(rows, 2, D, "25/03/2011 10:00")
    data = case.write("lines.csv", tx_text(rows))
    res = case.run("run", case.spec({"path": data.name}))
    assert_user_error(res, file="lines.csv", column="InvoiceDate", contains=("dayfirst",))
    case.check()


def _small_day_rows():
    """Slash dates whose day and month are both 12 or less: the order cannot be told."""
    rows = []
    for r in tx_rows():
        stamp = pd.Timestamp(r[D])
        day = (stamp.day - 1) % 12 + 1
        rows.append(_with([r], 1, D, f"{stamp.month:02d}/{day:02d}/2011 10:00")[0])
    return rows


@pytest.mark.parametrize("dayfirst", [False, True])
def test_ambiguous_day_month_order_is_recorded_api(case, dayfirst):
    data = case.write("lines.csv", tx_text(_small_day_rows()))
    spec = case.spec({"path": data.name, **({"dayfirst": True} if dayfirst else {})})
    case.snapshot()
    run = segmint.run(spec)
    manifest = _manifest(run)
    said = json.dumps({"notes": manifest.get("notes"), "input": manifest["input"]}).lower()
    order = "day" if dayfirst else "month"
    fmt = "%d/%m" if dayfirst else "%m/%d"
    assert f"{order} first" in said or fmt in said, said
    assert "ambiguous" in said or "cannot tell" in said or "guess" in said or "tells day" in said, said
    case.check(new_runs=1)


# --------------------------------------------------------------------------- decimal commas

def _decimal_comma_text() -> str:
    rows = [[f.replace(".", ",") if i == P else f for i, f in enumerate(r)] for r in tx_rows()]
    return tx_text(rows, sep=";")


def test_decimal_commas_without_saying_so_are_read_right_or_refused_api(case):
    # Either is fine; a price of 255 (or 2) for "2,55" is not.
    data = case.write("eu.csv", _decimal_comma_text())
    spec = case.spec({"path": data.name})
    case.snapshot()
    try:
        run = segmint.run(spec)
    except segmint.InputError as exc:
        check_message(str(exc), file="eu.csv", column="UnitPrice", row=1, contains=("decimal",))
        case.check()
        return
    assert run.manifest["input"].get("decimal") == ",", run.manifest["input"]
    assert run.customers()["gross_revenue"].sum() == pytest.approx(gross_revenue_total(tx_rows()))
    case.check(new_runs=1)


def test_mixed_decimal_marks_cli(case):
    rows = [[f.replace(".", ",") if i == P else f for i, f in enumerate(r)] for r in tx_rows()]
    rows = _with(rows, 5, P, "2.55")  # one point among commas: no mark can read every value
    data = case.write("eu.csv", tx_text(rows, sep=";"))
    res = case.run("run", case.spec({"path": data.name}))
    assert_user_error(res, file="eu.csv", column="UnitPrice", contains=("decimal",))
    case.check()


# --------------------------------------------------------------------------- must accept

def test_decimal_commas_with_decimal_comma_accepted_cli(case):
    data = case.write("eu.csv", _decimal_comma_text())
    res = case.run("run", case.spec({"path": data.name, "decimal": ","}))
    assert res.code == 0, str(res)
    (folder,) = case.new_run_folders()
    run = segmint.open_run(folder)
    revenue = run.customers()["gross_revenue"].sum()
    assert revenue == pytest.approx(gross_revenue_total(tx_rows()))
    case.check(new_runs=1)


def test_utf8_bom_and_crlf_accepted_cli(case):
    data = case.write("windows.csv", b"\xef\xbb\xbf" + tx_text(newline="\r\n").encode())
    res = case.run("run", case.spec({"path": data.name}))
    assert res.code == 0, str(res)
    assert "Traceback" not in res.stderr
    (folder,) = case.new_run_folders()
    run = segmint.open_run(folder)
    assert len(run.customers()) == N_CUSTOMERS
    assert run.manifest["input"]["columns"]["invoice"] == "InvoiceNo"  # not "\ufeffInvoiceNo"
    assert run.customers()["gross_revenue"].sum() == pytest.approx(gross_revenue_total(tx_rows()))
    case.check(new_runs=1)


def test_windows_1252_file_accepted_api(case):
    rows = _with(tx_rows(), 2, TX_HEADER.index("Country"), "Côte d'Ivoire")
    data = case.write("cp1252.csv", tx_text(rows).encode("windows-1252"))
    spec = case.spec({"path": data.name})
    case.snapshot()
    run = segmint.run(spec)
    assert run.manifest["input"]["encoding"] == "windows-1252"
    assert len(run.customers()) == N_CUSTOMERS
    case.check(new_runs=1)
