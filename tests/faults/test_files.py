"""Files that are empty, binary, truncated, mis-encoded, ragged, wrongly mapped, huge, or
wrapped in archives that are not what they say."""
from __future__ import annotations

import gzip
import io
import zipfile

import pandas as pd
import pytest

import segmint

from .conftest import TX_HEADER, assert_api_error, assert_user_error, tx_rows, tx_text

Q, D, P, C = (TX_HEADER.index(h) for h in ("Quantity", "InvoiceDate", "UnitPrice", "CustomerID"))


def _with(rows, row: int, index: int, value: str):
    """``rows`` with the field ``index`` of 1-based data row ``row`` set to ``value``."""
    rows = [list(r) for r in rows]
    rows[row - 1][index] = value
    return rows


def _run_cli(case, name: str, content: str | bytes, **source):
    data = case.write(name, content)
    spec = case.spec({"path": data.name, **source})
    return data, case.run("run", spec)


def _ready_for_api(case, name: str, content: str | bytes, **source):
    data = case.write(name, content)
    spec = case.spec({"path": data.name, **source})
    case.snapshot()
    return data, spec


def _parquet_bytes() -> bytes:
    frame = pd.DataFrame(tx_rows(), columns=TX_HEADER)
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


def _xlsx_bytes() -> bytes:
    frame = pd.DataFrame(tx_rows(), columns=TX_HEADER)
    buffer = io.BytesIO()
    frame.to_excel(buffer, index=False)
    return buffer.getvalue()


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


# A fixed, seeded "random" blob: bytes windows-1252 cannot decode (0x81, 0x8d ...), NULs, no lines.
BINARY = bytes((i * 7919 + 13) % 256 for i in range(4096))


# --------------------------------------------------------------------------- through the CLI

@pytest.mark.parametrize("via, name, content, says", [
    ("cli", "empty.csv", b"", "empty"),
    ("api", "blank.csv", b"\n\n   \n", "empty"),
    ("cli", "binary.csv", BINARY, ""),
    ("api", "header_only.csv", tx_text(rows=[]).encode(), "no data"),
    ("api", "truncated.parquet", _parquet_bytes()[: len(_parquet_bytes()) // 2], "parquet"),
    ("cli", "truncated.csv.gz", gzip.compress(tx_text().encode())[:300], "gzip"),
    ("api", "truncated.xlsx", _xlsx_bytes()[:2000], "excel"),
    ("api", "png.parquet", b"\x89PNG\r\n\x1a\n" + BINARY, "parquet"),
], ids=["empty", "blank-lines", "binary", "header-only", "truncated-parquet", "truncated-gzip",
        "truncated-xlsx", "png-named-parquet"])
def test_unreadable_file(case, via, name, content, says):
    data = case.write(name, content)
    spec = case.spec({"path": data.name})
    case.fails(spec, via, kind=segmint.InputError, file=name, contains=(says,) if says else ())
    case.check()


def test_truncated_csv_cut_mid_line_cli(case):
    text = tx_text()
    cut = text[: text.rindex(",2.55,") + 3]  # the last line stops inside its price
    rows = len(cut.strip().splitlines()) - 1
    _, res = _run_cli(case, "cut.csv", cut)
    assert_user_error(res, file="cut.csv", row=rows, contains=("field",))
    case.check()


def test_declared_utf8_but_windows_1252_api(case):
    rows = _with(tx_rows(), 3, TX_HEADER.index("Country"), "Côte d'Ivoire")
    _, spec = _ready_for_api(case, "cp1252.csv", tx_text(rows).encode("windows-1252"), encoding="utf-8")
    assert_api_error(segmint.run, spec, kind=segmint.InputError, file="cp1252.csv",
                     contains=("utf-8", "line 4"))
    case.check()


@pytest.mark.parametrize("via, row, fields", [("cli", 3, "short"), ("api", 2, "long"),
                                              ("api", 7, "long")])
def test_ragged_line(case, via, row, fields):
    rows = tx_rows()
    if fields == "short":
        rows[row - 1] = rows[row - 1][:Q] + rows[row - 1][Q + 1:]  # Quantity missing mid-line
    else:
        rows[row - 1] = [*rows[row - 1], "extra"]
    data = case.write("ragged.csv", tx_text(rows))
    case.fails(case.spec({"path": data.name}), via, kind=segmint.InputError, file="ragged.csv",
               row=row, contains=(f"line {row + 1}",))
    case.check()


def test_duplicate_header_cli(case):
    header = [*TX_HEADER[:-1], "Quantity"]  # Country's place taken by a second Quantity
    _, res = _run_cli(case, "twice.csv", tx_text(header=header))
    assert_user_error(res, file="twice.csv", column="Quantity")
    case.check()


def test_role_mapped_to_a_missing_column_api(case):
    _, spec = _ready_for_api(case, "tx.csv", tx_text(), columns={"customer": "Client"})
    assert_api_error(segmint.run, spec, kind=segmint.InputError, file="tx.csv", column="Client")
    case.check()


@pytest.mark.parametrize("via, role, header", [("cli", "customer", "Quantity"),
                                               ("api", "quantity", "Country"),
                                               ("api", "date", "UnitPrice")])
def test_role_mapped_to_the_wrong_kind_of_column(case, via, role, header):
    # customer -> Quantity: the Quantity column would be both the customer id and the quantity
    data = case.write("tx.csv", tx_text())
    case.fails(case.spec({"path": data.name, "columns": {role: header}}), via,
               kind=segmint.InputError, file="tx.csv", column=header)
    case.check()


def test_located_error_after_a_10_mb_field_cli(case):
    rows = _with(tx_rows(), 1, TX_HEADER.index("StockCode"), '"' + "x" * 10_000_000 + '"')
    rows = _with(rows, 2, Q, "six")
    _, res = _run_cli(case, "huge_field.csv", tx_text(rows), invalid="error")
    assert_user_error(res, file="huge_field.csv", column="Quantity", row=2)
    case.check()


def test_zip_with_two_csvs_cli(case):
    archive = _zip({"a.csv": tx_text().encode(), "b.csv": tx_text().encode()})
    _, res = _run_cli(case, "two.zip", archive)
    assert_user_error(res, file="two.zip", contains=("a.csv", "b.csv"))
    case.check()


def test_empty_zip_api(case):
    _, spec = _ready_for_api(case, "empty.zip", _zip({}))
    assert_api_error(segmint.run, spec, kind=segmint.InputError, file="empty.zip", contains=("zip",))
    case.check()


def test_gzip_that_is_not_gzip_cli(case):
    _, res = _run_cli(case, "fake.csv.gz", b"\x1f\x8b\x08\x00" + BINARY)
    assert_user_error(res, file="fake.csv.gz", contains=("gzip",))
    case.check()


# --------------------------------------------------------------------------- through the API

@pytest.mark.parametrize("name, content, source", [
    ("nul.csv", b"InvoiceNo,CustomerID\x00\x00\n1,\x002\n", {}),
    ("utf16.csv", tx_text().encode("utf-16"), {}),
    ("latin.csv", tx_text().encode("utf-8"), {"encoding": "no-such-codec"}),
    ("ascii.csv", tx_text(_with(tx_rows(), 2, 6, "Côte")).encode(), {"encoding": "ascii"}),
    ("not.zip", tx_text().encode(), {}),
    ("random.csv.gz", BINARY, {}),
    ("empty_member.zip", _zip({"sales.csv": b""}), {}),
    ("sales.dat", tx_text().encode(), {}),
    ("garbage.ndjson", b'{"CustomerID": 1}\n{not json\n', {}),
    ("workbook.xlsx", BINARY, {}),
], ids=["nul-bytes", "utf16", "unknown-encoding", "declared-ascii", "text-named-zip",
        "random-named-gz", "zip-of-empty-csv", "unknown-suffix", "broken-ndjson", "binary-xlsx"])
def test_unreadable_file_more_api(case, name, content, source):
    _, spec = _ready_for_api(case, name, content, **source)
    assert_api_error(segmint.run, spec, file=name)
    case.check()


def test_missing_file_and_folder_as_source_api(case):
    (case.folder / "folder.csv").mkdir()
    for name in ("absent.csv", "folder.csv"):
        spec = case.spec({"path": name})
        case.snapshot()
        assert_api_error(segmint.run, spec, kind=segmint.InputError, file=name)
        case.check()


@pytest.mark.parametrize("sep, row", [(",", 1), (";", 5)])
def test_every_or_one_line_longer_than_the_header_api(case, sep, row):
    rows = tx_rows()
    targets = range(len(rows)) if row == 1 else [row - 1]
    for i in targets:
        rows[i] = [*rows[i], "x"]
    _, spec = _ready_for_api(case, "long.csv", tx_text(rows, sep=sep))
    assert_api_error(segmint.run, spec, kind=segmint.InputError, file="long.csv", row=row)
    case.check()


def test_duplicate_customer_header_api(case):
    header = [*TX_HEADER[:-1], "CustomerID"]
    _, spec = _ready_for_api(case, "twice.csv", tx_text(header=header))
    assert_api_error(segmint.run, spec, kind=segmint.InputError, file="twice.csv",
                     column="CustomerID")
    case.check()


@pytest.mark.parametrize("role, header", [("price", "InvoiceDate"), ("amount", "Country"),
                                          ("invoice", "Invoice")])
def test_role_mapped_wrongly_api(case, role, header):
    _, spec = _ready_for_api(case, "tx.csv", tx_text(), columns={role: header})
    assert_api_error(segmint.run, spec, kind=segmint.InputError, file="tx.csv", column=header)
    case.check()


def test_unknown_role_is_a_spec_error_api(case):
    _, spec = _ready_for_api(case, "tx.csv", tx_text(), columns={"client": "CustomerID"})
    assert_api_error(segmint.run, spec, kind=segmint.SpecError, file="spec.yaml",
                     contains=("client",))
    case.check()


def test_short_line_after_a_10_mb_field_api(case):
    rows = _with(tx_rows(), 1, TX_HEADER.index("StockCode"), '"' + "y" * 10_000_000 + '"')
    rows[1] = rows[1][:3]
    _, spec = _ready_for_api(case, "huge_short.csv", tx_text(rows))
    assert_api_error(segmint.run, spec, kind=segmint.InputError, file="huge_short.csv", row=2)
    case.check()
