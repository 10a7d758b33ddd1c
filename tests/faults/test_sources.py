"""Database sources: queries that would write, tables and files that are not there, and URLs
holding a password that must never be shown."""
from __future__ import annotations

import sqlite3

import duckdb
import pytest

import segmint

from .conftest import TX_HEADER, api_error, assert_api_error, assert_user_error, tx_rows

SECRET = "s3cr3t-Hunter2"

# Queries that would change something if they ran: each in a :memory: DuckDB source. Relative
# paths, so a query that ran would write into the case folder, which the check watches.
WRITING_QUERIES = {
    "copy": "COPY (SELECT 1) TO 'x.csv'",
    "create-table": "CREATE TABLE t AS SELECT 1",
    "install": "INSTALL httpfs",
    "attach": "ATTACH 'other.db'",
    "two-statements": "SELECT 1 AS CustomerID; COPY (SELECT 1) TO 'y.csv'",
    "export": "EXPORT DATABASE 'dump'",
    "set-access": "SET enable_external_access = true",
}


@pytest.mark.parametrize("name", list(WRITING_QUERIES))
def test_duckdb_query_that_writes(case, name):
    via = "cli" if name in ("copy", "attach") else "api"
    spec = case.spec({"duckdb": ":memory:", "query": WRITING_QUERIES[name]})
    case.fails(spec, via, kind=segmint.InputError, file=":memory:", contains=("select",))
    for made in ("x.csv", "y.csv", "other.db", "dump"):
        assert not (case.folder / made).exists(), f"the query wrote {made}"
    case.check()


def test_duckdb_query_reading_the_network_api(case):
    spec = case.spec({"duckdb": ":memory:",
                      "query": "SELECT * FROM read_csv('https://example.com/tx.csv')"})
    case.snapshot()
    assert_api_error(segmint.run, spec, kind=segmint.InputError, contains=(":memory:",))
    case.check()


def _duckdb_file(case):
    path = case.folder / "shop.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE TABLE lines (InvoiceNo VARCHAR, CustomerID VARCHAR)")
    return path


def test_duckdb_file_missing_table_cli(case):
    _duckdb_file(case)
    res = case.run("run", case.spec({"duckdb": "shop.duckdb", "table": "sales"}))
    assert_user_error(res, file="shop.duckdb", contains=("sales",))
    case.check()


@pytest.mark.parametrize("what", ["absent", "a-csv-file", "table-missing-columns"])
def test_duckdb_file_faults_api(case, what):
    if what == "a-csv-file":
        case.write("shop.duckdb", "InvoiceNo,CustomerID\n1,2\n")
        source = {"duckdb": "shop.duckdb", "table": "lines"}
    elif what == "absent":
        source = {"duckdb": "shop.duckdb", "table": "lines"}
    else:
        _duckdb_file(case)
        source = {"duckdb": "shop.duckdb", "table": "lines"}
    spec = case.spec(source)
    case.snapshot()
    assert_api_error(segmint.run, spec, kind=segmint.InputError, file="shop.duckdb")
    assert not (case.folder / "shop.duckdb.wal").exists()
    case.check()


def test_sqlite_url_to_a_missing_file_cli(case):
    res = case.run("run", case.spec({"url": f"sqlite:///{case.folder / 'absent.db'}",
                                     "table": "sales"}))
    assert_user_error(res, file="absent.db", contains=("not found",))
    assert not (case.folder / "absent.db").exists(), "sqlite made an empty database"
    case.check()


def _sqlite(case):
    path = case.folder / "crm.db"
    con = sqlite3.connect(path)
    with con:
        con.execute("CREATE TABLE customers (id TEXT)")
    con.close()
    return path


def _secret_urls(case) -> dict[str, str]:
    db = case.folder / "crm.db"
    return {
        "query-password": f"sqlite:///{db}?password={SECRET}",
        "userinfo-password": f"postgresql+psycopg://ana:{SECRET}@127.0.0.1:1/crm?connect_timeout=2",
        "both": f"postgresql+psycopg://ana:{SECRET}@127.0.0.1:1/crm?sslpassword={SECRET}&connect_timeout=2",
    }


@pytest.mark.parametrize("kind", ["query-password", "userinfo-password", "both"])
def test_url_password_never_shown_cli(case, bug_logs, kind):
    _sqlite(case)
    res = case.run("run", case.spec({"url": _secret_urls(case)[kind], "table": "sales"}))
    assert res.code == 1, str(res)
    assert SECRET not in res.stderr + res.stdout, str(res)
    for log in bug_logs.glob("segmint-error-*.log"):
        assert SECRET not in log.read_text(encoding="utf-8")
    case.check()


@pytest.mark.parametrize("via, kind", [
    ("cli", "query-password"),
    ("api", "userinfo-password"),
])
def test_database_error_is_one_line_naming_the_table(case, via, kind):
    _sqlite(case)
    spec = case.spec({"url": _secret_urls(case)[kind], "table": "sales"})
    case.fails(spec, via, kind=segmint.InputError, contains=("sales",), absent=(SECRET,))
    case.check()


@pytest.mark.parametrize("kind", ["query-password", "userinfo-password", "both"])
def test_url_password_never_in_api_error(case, kind):
    _sqlite(case)
    spec = case.spec({"url": _secret_urls(case)[kind], "table": "sales"})
    case.snapshot()
    exc = api_error(segmint.run, spec)
    assert SECRET not in str(exc) and SECRET not in repr(exc) and SECRET not in str(exc.args)
    assert SECRET not in str(vars(exc))
    case.check()


@pytest.mark.parametrize("query", ["DELETE FROM customers", "SELECT 1; DROP TABLE customers",
                                   "WITH d AS (SELECT 1) INSERT INTO customers SELECT * FROM d"],
                         ids=["delete", "select-then-drop", "with-insert"])
def test_sqlite_query_that_writes_api(case, query):
    db = _sqlite(case)
    spec = case.spec({"url": f"sqlite:///{db}", "query": query})
    case.snapshot()
    assert_api_error(segmint.run, spec, kind=segmint.InputError, contains=("select",))
    con = sqlite3.connect(db)
    assert con.execute("SELECT name FROM sqlite_master").fetchall() == [("customers",)]
    con.close()
    case.check()


def test_duckdb_select_of_good_lines_still_runs_api(case):
    path = case.folder / "shop.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE TABLE lines (" + ", ".join(f'"{h}" VARCHAR' for h in TX_HEADER) + ")")
        con.executemany("INSERT INTO lines VALUES (" + ", ".join("?" * len(TX_HEADER)) + ")",
                        tx_rows())
    spec = case.spec({"duckdb": "shop.duckdb", "query": "SELECT * FROM lines"})
    case.snapshot()
    run = segmint.run(spec)
    assert run.manifest["customers"] == 16
    case.check(new_runs=1)
