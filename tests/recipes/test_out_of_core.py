"""The transactions recipe run by DuckDB over Parquet files and CSV globs (recipes/_scan.py)
against the in-memory path: read_source into pandas, then customer_table."""
from __future__ import annotations

import itertools
import os
import threading
import time
from importlib import resources
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from segmint._threads import threads
from segmint.errors import InputError, SpecError
from segmint.io import read_source
from segmint.recipes import build_customers
from segmint.recipes.transactions import customer_table, required_roles
from segmint.spec import RunSpec, SourceSpec

FEATURE_SETS = ["insiders", "rfm", "intel21"]


@pytest.fixture(scope="module")
def retail() -> pd.DataFrame:
    with resources.as_file(resources.files("segmint") / "data" / "online_retail.parquet") as path:
        return pd.read_parquet(path)


@pytest.fixture(scope="module")
def parquet_parts(retail, tmp_path_factory) -> Path:
    # The bundled Online Retail cut into 3 Parquet files of unequal length.
    folder = tmp_path_factory.mktemp("lines")
    cuts = [0, 100_000, 350_000, len(retail)]
    for i, (a, b) in enumerate(itertools.pairwise(cuts)):
        retail.iloc[a:b].to_parquet(folder / f"part-{i}.parquet", index=False)
    return folder


@pytest.fixture(scope="module")
def csv_parts(retail, tmp_path_factory) -> tuple[Path, Path]:
    # The same lines as CSV in the UCI layout (dates "12/01/2010 08:26", ids "17850.0"), cut
    # into 3 files, plus the whole as one file for the in-memory path.
    folder = tmp_path_factory.mktemp("csv")
    text = retail.assign(InvoiceDate=retail["InvoiceDate"].dt.strftime("%m/%d/%Y %H:%M"))
    whole = folder / "whole" / "retail.csv"
    whole.parent.mkdir()
    text.to_csv(whole, index=False)
    parts = folder / "parts"
    parts.mkdir()
    cuts = [0, 200_000, 400_000, len(text)]
    for i, (a, b) in enumerate(itertools.pairwise(cuts)):
        text.iloc[a:b].to_csv(parts / f"retail-{i}.csv", index=False)
    return whole, parts


def _in_memory(source: SourceSpec, features: str):
    # Today's path, step by step: every line into pandas, then the recipe.
    required, optional = required_roles(features)
    return customer_table(read_source(source, required=required, optional=optional), features)


def _spec(path: str, features: str, **engine) -> RunSpec:
    return RunSpec.model_validate({"source": {"path": path}, "recipe": {"features": features},
                                   "engine": engine or "local"})


@pytest.mark.parametrize("features", FEATURE_SETS)
def test_parquet_glob_equals_the_in_memory_path(retail, parquet_parts, features):
    bundled = resources.files("segmint") / "data" / "online_retail.parquet"
    with resources.as_file(bundled) as path:
        want = _in_memory(SourceSpec(path=str(path)), features)
    got = build_customers(_spec(str(parquet_parts / "*.parquet"), features))
    assert got.source["files"] == 3
    assert got.lines == want.lines == len(retail)
    assert got.features == want.features
    pd.testing.assert_frame_equal(got.frame, want.frame, check_exact=False, rtol=1e-12)
    assert got.notes == want.notes
    # customers with a purchase, counted by hand (intel21 trims outliers: fewer)
    with_purchase = retail.loc[retail["Quantity"] > 0, "CustomerID"].nunique()
    assert len(got.frame) == with_purchase if features != "intel21" else len(got.frame) < with_purchase


@pytest.mark.parametrize("features", ["rfm", "intel21"])
def test_csv_glob_equals_one_csv_read_in_memory(csv_parts, features):
    whole, parts = csv_parts
    want = _in_memory(SourceSpec(path=str(whole)), features)
    got = build_customers(_spec(str(parts / "retail-*.csv"), features))
    assert got.source["files"] == 3
    assert got.source["date_formats"] == {"InvoiceDate": "%m/%d/%Y %H:%M"}
    assert got.lines == want.lines
    pd.testing.assert_frame_equal(got.frame, want.frame, check_exact=False, rtol=1e-12)


def _with_invalid_lines(tmp_path: Path) -> tuple[Path, dict[str, int]]:
    # 12 lines: 2 prices missing, 1 quantity infinite, 1 price beyond 1e15, 1 date in the
    # future, 1 before 1900; line 5, both missing a price and in the future, counts once, under
    # its first reason in role order (customer, invoice, date, quantity, price, amount).
    n = 12
    frame = pd.DataFrame({
        "CustomerID": [1.0, 1.0, 2.0, 2.0, 3.0, 3.0, 4.0, 4.0, 5.0, 5.0, np.nan, 6.0],
        "InvoiceNo": [str(100 + i) for i in range(n)],
        "InvoiceDate": pd.to_datetime(["2011-01-03"] * n),
        "Quantity": [1.0] * n,
        "UnitPrice": [2.5] * n,
    })
    frame.loc[[0, 5], "UnitPrice"] = np.nan
    frame.loc[2, "Quantity"] = np.inf
    frame.loc[3, "UnitPrice"] = 2e15
    frame.loc[[4, 5], "InvoiceDate"] = pd.Timestamp("2999-01-01")
    frame.loc[6, "InvoiceDate"] = pd.Timestamp("1850-06-01")
    path = tmp_path / "bad.parquet"
    frame.to_parquet(path, index=False)
    return path, {"date in the future": 2, "date before 1900": 1, "quantity infinite": 1,
                  "price missing": 1, "price beyond 1e15": 1}


def test_invalid_lines_are_counted_as_read_source_counts_them(tmp_path):
    path, by_hand = _with_invalid_lines(tmp_path)
    got = build_customers(_spec(str(path), "rfm"))
    read = read_source(SourceSpec(path=str(path)), required=["customer", "date"],
                       optional=["invoice", "quantity", "price"])
    assert got.source["dropped"] == read.attrs["source"]["dropped"] == by_hand
    assert list(got.source["dropped"]) == list(by_hand)
    assert got.lines == len(read) == 12 - 6
    assert any("lines dropped as invalid" in note for note in got.notes)
    # customers 2 and 3 lost both lines; 1 and 4 kept their second, 5 and 6 all
    assert got.frame.index.tolist() == ["1", "4", "5", "6"]
    spec = _spec(str(path), "rfm").model_copy(deep=True)
    assert spec.source is not None
    spec.source.invalid = "error"
    with pytest.raises(InputError, match="price missing; 6 line"):
        build_customers(spec)


def test_a_missing_role_is_named_as_in_memory(tmp_path, retail):
    path = tmp_path / "no_customer.parquet"
    retail.head(50).drop(columns="CustomerID").to_parquet(path, index=False)
    with pytest.raises(InputError) as scanned:
        build_customers(_spec(str(tmp_path / "*.parquet"), "rfm"))
    with pytest.raises(InputError) as in_memory:
        _in_memory(SourceSpec(path=str(path)), "rfm")
    assert "has no column for role 'customer'" in scanned.value.message
    assert scanned.value.message.startswith(in_memory.value.message)
    assert scanned.value.message.endswith("set recipe.kind: attributes")
    assert scanned.value.column == in_memory.value.column == "CustomerID"


def test_a_value_that_is_no_number_names_file_and_column(tmp_path):
    folder = tmp_path / "csv"
    folder.mkdir()
    (folder / "a.csv").write_text("CustomerID,InvoiceDate,Amount\n1,2011-01-01,2.5\n")
    (folder / "b.csv").write_text("CustomerID,InvoiceDate,Amount\n2,2011-01-02,abc\n")
    with pytest.raises(InputError, match="amount must be a number, got 'abc'") as err:
        build_customers(_spec(str(folder / "*.csv"), "rfm"))
    assert err.value.column == "Amount"
    with pytest.raises(InputError, match="no file matches"):
        build_customers(_spec(str(folder / "*.parquet"), "rfm"))


def test_engine_settings_reach_duckdb(tmp_path, retail):
    path = tmp_path / "lines.parquet"
    retail.head(2000).to_parquet(path, index=False)
    spill = tmp_path / "spill"
    with duckdb.connect() as con:
        build_customers(_spec(str(path), "rfm", memory_limit="300MB",
                              temp_directory=str(spill)), con=con)
        limit, folder, count = con.execute(
            "SELECT current_setting('memory_limit'), current_setting('temp_directory'), "
            "current_setting('threads')").fetchone()
    assert limit == "286.1 MiB"  # 300 MB = 300e6 bytes, as DuckDB shows it
    assert folder == str(spill)
    assert count == threads()


def _synthetic_lines(path: Path, n: int, customers: int) -> None:
    rng = np.random.default_rng(7)
    pd.DataFrame({
        "CustomerID": rng.integers(0, customers, n),
        "InvoiceNo": rng.integers(0, n // 2, n).astype(str),
        "InvoiceDate": pd.Timestamp("2011-01-01")
        + pd.to_timedelta(rng.integers(0, 365 * 24 * 60, n), unit="min"),
        "Quantity": rng.integers(-2, 10, n),
        "UnitPrice": rng.random(n) * 10,
    }).to_parquet(path, index=False)


def test_a_small_memory_limit_spills_and_gives_the_same_table(tmp_path):
    # 3M lines, ~1M customers: rfm's aggregation outgrows 200MB and goes to the temp folder.
    path = tmp_path / "big.parquet"
    _synthetic_lines(path, 3_000_000, 1_000_000)
    spill = tmp_path / "spill"
    seen: set[str] = set()
    done = threading.Event()

    def watch() -> None:  # the spill files live only while the query runs
        while not done.is_set():
            if spill.exists():
                seen.update(os.listdir(spill))
            time.sleep(0.005)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        limited = build_customers(_spec(str(path), "rfm", memory_limit="200MB",
                                        temp_directory=str(spill)))
    finally:
        done.set()
        watcher.join()
    assert any(name.endswith(".tmp") for name in seen), seen
    unlimited = build_customers(_spec(str(path), "rfm"))
    pd.testing.assert_frame_equal(limited.frame, unlimited.frame, check_exact=False, rtol=1e-12)
    assert len(limited.frame) > 900_000
    # a limit too small to work in at all is the user's setting to change, not a bug
    with pytest.raises(SpecError, match="out of memory computing feature set 'rfm' "
                                        r"\(engine.memory_limit: 10MB"):
        build_customers(_spec(str(path), "rfm", memory_limit="10MB", temp_directory=str(spill)))


@pytest.mark.parametrize("ids", [[5.0, 40.0, 300.0, 12.0, np.nan, 7.0],  # grouped as numbers
                                 [5, 40, 300, 12, 9, 7],
                                 [2.0**60, 40.0, 300.0, 12.0, np.nan, 7.0]])  # too big: as text
def test_ids_of_any_width_come_back_as_text_in_text_order(tmp_path, ids):
    path = tmp_path / "ids.parquet"
    pd.DataFrame({"CustomerID": ids, "InvoiceNo": list("abcdef"),
                  "InvoiceDate": pd.to_datetime(["2011-01-0" + str(d) for d in range(1, 7)]),
                  "Amount": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]}).to_parquet(path, index=False)
    got = build_customers(_spec(str(path), "rfm"))
    want = _in_memory(SourceSpec(path=str(path)), "rfm")
    pd.testing.assert_frame_equal(got.frame, want.frame)
    assert got.frame.index.tolist()[:3] == ["12", "300", "40"] or ids[0] == 2.0**60
    assert got.frame.loc["300", "monetary"] == 3.0
