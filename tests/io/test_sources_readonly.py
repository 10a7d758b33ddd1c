"""Reading a database source changes nothing anywhere, and its URL's secrets stay secret.

Tests for :mod:`segmint.io._readers` (DuckDB and SQLAlchemy sources).
"""
from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from segmint.errors import InputError
from segmint.io import read_source
from segmint.spec import SourceSpec

ONLY_SELECT = "only a single SELECT"


def _snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under ``folder`` with its bytes and modification time (ns)."""
    return {str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _sales_duckdb(path: Path) -> Path:
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE TABLE sales AS SELECT * FROM (VALUES ('17850', 2.55), ('14527', 3.39)) "
                    "t(CustomerID, UnitPrice)")
    return path


def _sales_sqlite(path: Path) -> Path:
    with sqlite3.connect(path) as con:
        con.execute("CREATE TABLE sales (CustomerID text, UnitPrice real)")
        con.execute("INSERT INTO sales VALUES ('17850', 2.55), ('14527', 3.39)")
    con.close()
    return path


def _writing_queries(folder: Path) -> dict[str, str]:
    """Queries that would write into ``folder`` (or elsewhere) if they ran."""
    return {
        "copy": f"COPY (SELECT 1 AS a) TO '{folder / 'out.csv'}'",
        "create": "CREATE TABLE t2 AS SELECT 1 AS a",
        "insert": "INSERT INTO sales VALUES ('1', 1.0)",
        "attach": f"ATTACH '{folder / 'other.duckdb'}' AS other",
        "install": "INSTALL httpfs",
        "two statements": f"SELECT 1 AS a; COPY (SELECT 1 AS a) TO '{folder / 'out2.csv'}'",
        "pragma": "PRAGMA enable_profiling",
        "export": f"EXPORT DATABASE '{folder / 'export'}'",
        "set": "SET enable_external_access = true",
    }


@pytest.mark.parametrize("name", list(_writing_queries(Path("."))))
def test_duckdb_memory_query_that_writes_is_refused(tmp_path, name, monkeypatch):
    monkeypatch.chdir(tmp_path)
    query = _writing_queries(tmp_path)[name]
    before = _snapshot(tmp_path)
    with pytest.raises(InputError, match=ONLY_SELECT) as caught:
        read_source(SourceSpec(duckdb=":memory:", query=query), required=["customer"])
    assert ":memory:" in str(caught.value)
    assert _snapshot(tmp_path) == before


@pytest.mark.parametrize("name", list(_writing_queries(Path("."))))
def test_duckdb_file_query_that_writes_is_refused(tmp_path, name, monkeypatch):
    database = _sales_duckdb(tmp_path / "shop.duckdb")
    monkeypatch.chdir(tmp_path)
    before = _snapshot(tmp_path)
    with pytest.raises(InputError, match=ONLY_SELECT) as caught:
        read_source(SourceSpec(duckdb=str(database), query=_writing_queries(tmp_path)[name]),
                    required=["customer"])
    assert "shop.duckdb" in str(caught.value)
    assert _snapshot(tmp_path) == before  # the database's bytes and mtime too


def test_duckdb_select_and_with_still_read(tmp_path):
    database = _sales_duckdb(tmp_path / "shop.duckdb")
    before = _snapshot(tmp_path)
    for query in ("SELECT * FROM sales ORDER BY CustomerID",
                  "WITH s AS (SELECT * FROM sales) SELECT * FROM s ORDER BY CustomerID -- sorted\n"):
        df = read_source(SourceSpec(duckdb=str(database), query=query), required=["customer", "price"])
        assert df["customer"].tolist() == ["14527", "17850"] and df["price"].tolist() == [3.39, 2.55]
    memory = read_source(SourceSpec(duckdb=":memory:", query="WITH s AS (SELECT '1' AS customer_id) "
                                    "SELECT * FROM s;"), required=["customer"])
    assert memory["customer"].tolist() == ["1"]
    assert _snapshot(tmp_path) == before


def test_duckdb_memory_query_reads_local_files_but_not_the_network(tmp_path):
    pd.DataFrame({"CustomerID": ["7"]}).to_csv(tmp_path / "c.csv", index=False)
    df = read_source(SourceSpec(duckdb=":memory:", query=f"SELECT * FROM read_csv('{tmp_path / 'c.csv'}')"),
                     required=["customer"])
    assert df["customer"].tolist() == ["7"]
    with pytest.raises(InputError, match="cannot read query"):
        read_source(SourceSpec(duckdb=":memory:", query="SELECT * FROM read_csv('https://example.com/c.csv')"),
                    required=["customer"])


@pytest.mark.parametrize("query", [
    "INSERT INTO sales VALUES ('1', 1.0)",
    "CREATE TABLE t2 AS SELECT 1 AS a",
    "ATTACH DATABASE 'other.sqlite' AS other",
    "PRAGMA user_version = 5",
    "SELECT * FROM sales; DELETE FROM sales",
    "WITH d AS (SELECT 1) DELETE FROM sales",
    "/* a comment */ UPDATE sales SET UnitPrice = 0",
])
def test_sqlite_query_that_writes_is_refused(tmp_path, query, monkeypatch):
    database = _sales_sqlite(tmp_path / "shop.sqlite")
    monkeypatch.chdir(tmp_path)
    before = _snapshot(tmp_path)
    with pytest.raises(InputError, match=ONLY_SELECT) as caught:
        read_source(SourceSpec(url=f"sqlite:///{database}", query=query), required=["customer"])
    assert "shop.sqlite" in str(caught.value)
    assert _snapshot(tmp_path) == before


def test_sqlite_select_and_with_still_read_and_change_nothing(tmp_path):
    database = _sales_sqlite(tmp_path / "shop.sqlite")
    before = _snapshot(tmp_path)
    for query in ("SELECT * FROM sales ORDER BY CustomerID;",
                  "-- sorted\nWITH s AS (SELECT * FROM sales) SELECT * FROM s ORDER BY CustomerID"):
        df = read_source(SourceSpec(url=f"sqlite:///{database}", query=query),
                         required=["customer", "price"])
        assert df["customer"].tolist() == ["14527", "17850"]
    assert _snapshot(tmp_path) == before


def _pg_sales(url: str) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    with engine.begin() as con:
        con.execute(sa.text("DROP TABLE IF EXISTS ro_sales"))
        con.execute(sa.text("CREATE TABLE ro_sales (cust text, unit double precision)"))
        con.execute(sa.text("INSERT INTO ro_sales VALUES ('17850', 2.55), ('14527', 3.39)"))
    engine.dispose()


def _pg_count(url: str) -> int:
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    with engine.connect() as con:
        count = con.execute(sa.text("SELECT count(*) FROM ro_sales")).scalar_one()
    engine.dispose()
    return int(count)


def test_postgresql_select_with_and_writes(postgres_url):
    _pg_sales(postgres_url)
    columns = {"customer": "cust", "price": "unit"}
    for query in ("SELECT * FROM ro_sales ORDER BY cust",
                  "WITH s AS (SELECT * FROM ro_sales) SELECT * FROM s ORDER BY cust"):
        df = read_source(SourceSpec(url=postgres_url, query=query, columns=columns),
                         required=["customer", "price"])
        assert df["customer"].tolist() == ["14527", "17850"] and df["price"].tolist() == [3.39, 2.55]
    for query in ("DELETE FROM ro_sales", "WITH d AS (DELETE FROM ro_sales RETURNING *) SELECT * FROM d",
                  "SELECT * INTO ro_copy FROM ro_sales", "SELECT 1 AS cust; DELETE FROM ro_sales"):
        with pytest.raises(InputError, match=ONLY_SELECT):
            read_source(SourceSpec(url=postgres_url, query=query, columns=columns),
                        required=["customer"])
    assert _pg_count(postgres_url) == 2


def test_postgresql_transaction_is_read_only(postgres_url):
    # A function call passes the keyword check; the read-only transaction still refuses to write.
    import sqlalchemy as sa

    engine = sa.create_engine(postgres_url)
    with engine.begin() as con:
        con.execute(sa.text("DROP SEQUENCE IF EXISTS ro_seq"))
        con.execute(sa.text("CREATE SEQUENCE ro_seq"))
    engine.dispose()
    with pytest.raises(InputError, match="read-only transaction"):
        read_source(SourceSpec(url=postgres_url, query="SELECT nextval('ro_seq') AS cust"),
                    required=["customer"])


# --------------------------------------------------------------------------- secrets in URLs

def _with_password(url: str, how: str) -> str:
    if how == "user":
        return url.replace("postgres@", "postgres:secret@")
    return url + "?password=secret"


@pytest.mark.parametrize("how", ["user", "parameter"])
def test_postgresql_password_never_in_records_or_errors(postgres_url, how):
    _pg_sales(postgres_url)
    url = _with_password(postgres_url, how)  # trust auth: any password is accepted
    df = read_source(SourceSpec(url=url, table="ro_sales", columns={"customer": "cust"}),
                     required=["customer"])
    assert df["customer"].tolist() == ["17850", "14527"]
    record = df.attrs["source"]
    assert "secret" not in repr(record) and "***" in record["url"]
    for spec in (SourceSpec(url=url, table="absent_table"),
                 SourceSpec(url=url, query="SELECT * FROM absent_table"),
                 SourceSpec(url=url, query="SELECT * FROM ro_sales", columns={"customer": "nope"}),
                 SourceSpec(url=url.replace("/postgres", "/no_such_db"), table="ro_sales")):
        with pytest.raises(InputError) as caught:
            read_source(spec, required=["customer"])
        assert "secret" not in str(caught.value) and "secret" not in repr(caught.value.args)


def test_environment_reference_in_url(postgres_url, monkeypatch):
    _pg_sales(postgres_url)
    monkeypatch.setenv("SEGMINT_TEST_PGPASSWORD", "secret")
    url = postgres_url.replace("postgres@", "postgres:${SEGMINT_TEST_PGPASSWORD}@")
    df = read_source(SourceSpec(url=url, table="ro_sales", columns={"customer": "cust"}),
                     required=["customer"])
    assert df.attrs["source"]["url"] == url  # the reference, not the value
    assert "secret" not in repr(df.attrs["source"])
    monkeypatch.delenv("SEGMINT_TEST_PGPASSWORD")
    with pytest.raises(InputError, match="SEGMINT_TEST_PGPASSWORD, which is not set") as caught:
        read_source(SourceSpec(url=url, table="ro_sales"), required=["customer"])
    assert "secret" not in str(caught.value)
    assert os.environ.get("SEGMINT_TEST_PGPASSWORD") is None
