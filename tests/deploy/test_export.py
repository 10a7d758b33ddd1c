"""Export of scored customers: PostgreSQL (a real server), SQLite, DuckDB, Parquet, CSV.

Replace swaps a whole table in under a concurrent reader; upsert updates and inserts by key;
a connection killed in the middle of COPY leaves the old table as it was; no password leaves
memory; bad input is refused before anything is written.
"""
from __future__ import annotations

import csv
import json
import logging
import sqlite3
import threading
import time
from datetime import UTC, datetime

import duckdb
import numpy as np
import pandas as pd
import psycopg
import pyarrow.parquet as pq
import pytest

import segmint.deploy.export as export_module
from segmint.deploy.export import ENV_URL, ExportResult, export
from segmint.errors import InputError, InternalError, SegmintError, SpecError

T1 = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
T2 = datetime(2026, 12, 1, 9, 30, 15, 123456, tzinfo=UTC)
# text that CSV and COPY must carry as it is: empty, quotes, separators, a line break, the
# \x01 export quotes with, a backslash
NOTES = ["", None, 'say "hi", then go', "two\nlines", "odd \x01 byte", "back\\slash"]


def _scored(n: int, *, seed: int = 0, start: int = 0) -> pd.DataFrame:
    """``n`` scored customers c{start}..: three centroids, every 7th distance NaN."""
    rng = np.random.default_rng(seed)
    dist = rng.random((n, 3)).round(6) + 0.001
    segment = dist.argmin(axis=1)
    own = dist[np.arange(n), segment]
    own[::7] = np.nan
    nearest = [[{"centroid_id": int(j), "distance": float(dist[i, j])} for j in np.argsort(dist[i])]
               for i in range(n)]
    return pd.DataFrame({
        "customer": pd.array([f"c{start + i}" for i in range(n)], dtype="string"),
        "segment": segment.astype("int64"),
        "name": [f"segment {s}" for s in segment],
        "distance": own,
        "nearest_centroids_distance": nearest,
        "note": pd.array([NOTES[(start + i) % len(NOTES)] for i in range(n)], dtype="string"),
        "loyal": rng.random(n) < 0.5,
    })


def _libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def _nearest(value) -> list[tuple[int, float]]:
    """A nearest_centroids_distance cell as (centroid, distance) pairs, whatever it was read as
    (JSON text, a list of dicts, a NumPy array of dicts)."""
    if isinstance(value, str):
        value = json.loads(value)
    return [(int(d["centroid_id"]), float(d["distance"])) for d in value]


def _expected_after_upsert(old: pd.DataFrame, new: pd.DataFrame) -> pd.DataFrame:
    """The upsert's result computed in pandas: old rows whose key is not new, then the new ones."""
    kept = old[~old["customer"].isin(new["customer"])]
    return _canonical(pd.concat([kept, new], ignore_index=True))


def _stamp(frame: pd.DataFrame, version: str, when: datetime) -> pd.DataFrame:
    return frame.assign(model_version=version, scored_at=pd.Timestamp(when))


def _canonical(frame: pd.DataFrame) -> pd.DataFrame:
    """Comparable form of a frame read from anywhere: sorted by customer, plain types."""
    out = pd.DataFrame({
        "customer": frame["customer"].astype(str).to_numpy(),
        "segment": frame["segment"].astype("int64").to_numpy(),
        "name": frame["name"].astype(str).to_numpy(),
        "distance": pd.to_numeric(frame["distance"]).astype("float64").to_numpy(),
        "nearest": [_nearest(v) for v in frame["nearest_centroids_distance"]],
        "note": [None if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)) else str(v)
                 for v in frame["note"]],
        "loyal": frame["loyal"].astype(bool).to_numpy(),
        "model_version": frame["model_version"].astype(str).to_numpy(),
        "scored_at": pd.to_datetime(frame["scored_at"], utc=True, format="ISO8601").to_numpy(),
    })
    return out.sort_values("customer", ignore_index=True)


def _assert_same(actual: pd.DataFrame, expected: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(_canonical(actual), expected, check_exact=True)


def _staging_tables(conn: psycopg.Connection) -> list[str]:
    return [r[0] for r in conn.execute(
        "SELECT relname FROM pg_class WHERE relname LIKE '\\_segmint\\_stage\\_%'").fetchall()]


def _table_digest(conn: psycopg.Connection, table: str) -> tuple[int, str]:
    row = conn.execute(f"SELECT count(*), md5(string_agg(t::text, '|' ORDER BY customer)) "
                       f"FROM {table} t").fetchone()
    return int(row[0]), str(row[1])


# --------------------------------------------------------------------------- PostgreSQL

def _wait_for(condition, what: str, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {seconds} s for {what}")
        time.sleep(0.01)


def test_replace_swaps_the_table_under_a_concurrent_reader(postgres_url):
    """Readers counting the table in a loop see the old count or the new one, never an error
    (no "relation does not exist") and never a partial count, through six swaps. In each swap
    a third session holds a read lock on the table, so the export's DROP waits and the readers'
    next queries queue behind it on the old table; when the lock is let go, those queries run
    on the new table (PostgreSQL looks the name up again after waiting on a lock)."""
    table = "swap_segments"
    small, large = _scored(50_000), _scored(60_000, seed=1)
    export(small, postgres_url, table=table)
    counts: list[int] = []
    errors: list[str] = []
    stop = threading.Event()

    def read(prepare_threshold: int | None) -> None:
        # psycopg prepares a statement on its 5th run: one reader plans once and reuses the
        # plan (the swap must invalidate it), the other plans every time
        with psycopg.connect(_libpq(postgres_url), autocommit=True,
                             prepare_threshold=prepare_threshold) as conn:
            while not stop.is_set():
                try:
                    counts.append(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
                except psycopg.Error as exc:
                    errors.append(f"{type(exc).__name__}: {exc}")

    def waiting_on_locks(conn: psycopg.Connection) -> int:
        return conn.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                            "AND datname = current_database()").fetchone()[0]

    readers = [threading.Thread(target=read, args=(p,)) for p in (5, None)]
    for reader in readers:
        reader.start()
    results: list[ExportResult | BaseException] = []
    try:
        with psycopg.connect(_libpq(postgres_url), autocommit=True) as admin, \
                psycopg.connect(_libpq(postgres_url), autocommit=True) as holder:
            for i in range(6):
                frame = large if i % 2 == 0 else small
                seen = len(counts)
                with holder.transaction():
                    holder.execute(f"SELECT count(*) FROM {table}")  # ACCESS SHARE until commit

                    def run(frame: pd.DataFrame = frame) -> None:
                        try:
                            results.append(export(frame, postgres_url, table=table))
                        except BaseException as exc:  # reported by the main thread below
                            results.append(exc)

                    worker = threading.Thread(target=run)
                    worker.start()
                    # the export waits on the lock, and both readers wait behind it
                    _wait_for(lambda: waiting_on_locks(admin) >= 3, "the export and two readers to wait")
                    blocked_at = len(counts)
                worker.join()
                assert blocked_at >= seen  # reads went on before the swap queued them
        _wait_for(lambda: len(counts) > blocked_at + 10, "reads after the last swap")
    finally:
        stop.set()
        for reader in readers:
            reader.join()
    assert [r.rows if isinstance(r, ExportResult) else r for r in results] == \
        [60_000, 50_000] * 3
    assert errors == []
    assert set(counts) == {50_000, 60_000}
    assert len(counts) >= 100
    with psycopg.connect(_libpq(postgres_url)) as conn:
        assert _table_digest(conn, table)[0] == 50_000
        assert _staging_tables(conn) == []
        # the replaced table keeps a primary key on the key, so it can be upserted into later
        assert conn.execute("SELECT indexrelid::regclass::text FROM pg_index "
                            "WHERE indrelid = %s::regclass AND indisprimary", [table]).fetchall() \
            == [(f"{table}_pkey",)]


def test_replace_does_not_stall_readers_behind_a_long_query(postgres_url, monkeypatch):
    """A session reading the table for long keeps the swap from its lock; the export tries in
    short waits, so the readers queued behind each wait are held up briefly, not for the whole
    long query: it replaces the table once the query ends, and gives up (nothing changed)
    when the query outlasts its patience."""
    monkeypatch.setattr(export_module, "_SWAP_LOCK_TIMEOUT_MS", 200)
    table = "busy_segments"
    export(_scored(1_000), postgres_url, table=table)
    latencies: list[float] = []
    stop = threading.Event()

    def read() -> None:
        with psycopg.connect(_libpq(postgres_url), autocommit=True) as conn:
            while not stop.is_set():
                started = time.monotonic()
                conn.execute(f"SELECT count(*) FROM {table}").fetchone()
                latencies.append(time.monotonic() - started)
                time.sleep(0.005)

    def long_query(holder: psycopg.Connection, seconds: float) -> threading.Timer:
        holder.execute("BEGIN")
        holder.execute(f"SELECT count(*) FROM {table}")  # ACCESS SHARE until it commits
        timer = threading.Timer(seconds, holder.execute, args=("COMMIT",))
        timer.start()
        return timer

    reader = threading.Thread(target=read)
    reader.start()
    try:
        with psycopg.connect(_libpq(postgres_url), autocommit=True) as holder:
            monkeypatch.setattr(export_module, "_SWAP_PATIENCE_S", 1.0)
            timer = long_query(holder, 3.0)
            with pytest.raises(SegmintError, match=f"table {table} stayed in use by other sessions"):
                export(_scored(2_000), postgres_url, table=table)
            timer.join()
            with psycopg.connect(_libpq(postgres_url)) as conn:
                assert _table_digest(conn, table)[0] == 1_000 and _staging_tables(conn) == []

            monkeypatch.setattr(export_module, "_SWAP_PATIENCE_S", 30.0)
            timer = long_query(holder, 1.0)
            started = time.monotonic()
            assert export(_scored(2_000), postgres_url, table=table).rows == 2_000
            assert time.monotonic() - started >= 0.9  # it did wait for the long query
            timer.join()
    finally:
        stop.set()
        reader.join()
    with psycopg.connect(_libpq(postgres_url)) as conn:
        assert _table_digest(conn, table)[0] == 2_000
    assert len(latencies) > 50
    assert max(latencies) < 1.0  # far below the long queries' 3 s and 1 s


def test_upsert_updates_inserts_and_keeps_the_rest(postgres_url, monkeypatch):
    monkeypatch.setattr(export_module, "_COPY_ROWS", 300)  # COPY in four CSV parts
    table = "upsert_segments"
    before = _scored(1_000)
    after = _scored(1_000, seed=2, start=500)  # c500..c999 updated, c1000..c1499 new
    export(before, postgres_url, table=table, mode="upsert", model_version="v1", scored_at=T1)
    result = export(after, postgres_url, table=table, mode="upsert", model_version="v2", scored_at=T2)
    assert (result.inserted, result.updated, result.rows) == (500, 500, 1_000)
    with psycopg.connect(_libpq(postgres_url)) as conn:
        cur = conn.execute(f"SELECT * FROM {table}")
        stored = pd.DataFrame(cur.fetchall(), columns=[d.name for d in cur.description])
        types = dict(conn.execute(
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = %s",
            [table]).fetchall())
    expected = _expected_after_upsert(_stamp(before, "v1", T1), _stamp(after, "v2", T2))
    _assert_same(stored, expected)
    assert stored["distance"].isna().sum() == expected["distance"].isna().sum() > 0
    assert types == {"customer": "text", "segment": "bigint", "name": "text",
                     "distance": "double precision", "nearest_centroids_distance": "jsonb",
                     "note": "text", "loyal": "boolean", "model_version": "text",
                     "scored_at": "timestamp with time zone"}


def test_upsert_refuses_a_table_without_a_unique_key(postgres_url):
    table = "no_key_segments"
    with psycopg.connect(_libpq(postgres_url)) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {table}")
        conn.execute(f"CREATE TABLE {table} (customer text, segment bigint)")
        conn.execute(f"INSERT INTO {table} VALUES ('c0', 7)")
    with pytest.raises(SpecError, match="no primary key or unique constraint on 'customer'"):
        export(_scored(10), postgres_url, table=table, mode="upsert")
    with psycopg.connect(_libpq(postgres_url)) as conn:
        assert conn.execute(f"SELECT * FROM {table}").fetchall() == [("c0", 7)]


@pytest.mark.parametrize("mode", ["replace", "upsert"])
def test_killed_connection_leaves_the_old_table(postgres_url, monkeypatch, mode):
    """The server ends the export's session while its COPY is sending rows: the old table is
    as it was, no staging table remains, and the error is one SegmintError line with no
    password."""
    table = f"killed_{mode}"
    url = postgres_url.replace("postgres@", "postgres:s3cret@")
    export(_scored(3_000), url, table=table)
    with psycopg.connect(_libpq(postgres_url), autocommit=True) as conn:
        before = _table_digest(conn, table)
    killed: list[bool] = []
    original = export_module._csv_chunks

    def chunks_then_kill(path):
        pieces = original(path)
        yield next(pieces)  # COPY has started and holds rows
        with psycopg.connect(_libpq(postgres_url), autocommit=True) as admin:
            killed.extend(r[0] for r in admin.execute(
                "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity "
                "WHERE application_name = 'segmint-export'").fetchall())
        yield from pieces

    monkeypatch.setattr(export_module, "_csv_chunks", chunks_then_kill)
    monkeypatch.setattr(export_module, "_COPY_CHUNK", 16 * 1024)
    monkeypatch.setattr(export_module, "_COPY_ROWS", 5_000)  # parts still to make when killed
    with pytest.raises(SegmintError) as caught:
        export(_scored(20_000, seed=3, start=1_000), url, table=table, mode=mode)
    assert killed == [True]
    assert not isinstance(caught.value, InternalError)
    message = str(caught.value)
    assert "\n" not in message and "s3cret" not in message
    assert f"export to table {table} failed" in message and "***" in message
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    with psycopg.connect(_libpq(postgres_url), autocommit=True) as conn:
        assert _table_digest(conn, table) == before
        assert _staging_tables(conn) == []
    # the thread making CSV parts has stopped too
    assert not [t for t in threading.enumerate() if t.name == "segmint-export-csv"]


# --------------------------------------------------------------------------- SQLite, DuckDB, files

def _read_back(kind: str, target: str, table: str) -> pd.DataFrame:
    if kind == "sqlite":
        with sqlite3.connect(target.removeprefix("sqlite:///")) as con:
            return pd.read_sql_query(f"SELECT * FROM {table}", con)
    if kind == "duckdb":
        with duckdb.connect(target.removeprefix("duckdb:///")) as con:
            return con.sql(f"SELECT * FROM {table}").df()
    if kind == "parquet":
        return pd.read_parquet(target)
    return pd.read_csv(target, dtype={"customer": str, "note": str}, keep_default_na=False,
                       na_values={"distance": [""]})


@pytest.mark.parametrize("kind", ["sqlite", "duckdb", "parquet", "csv"])
def test_replace_and_upsert_round_trip(tmp_path, kind):
    target = {"sqlite": f"sqlite:///{tmp_path}/crm.db", "duckdb": f"duckdb:///{tmp_path}/crm.duckdb",
              "parquet": str(tmp_path / "segments.parquet"), "csv": str(tmp_path / "segments.csv")}[kind]
    first, second = _scored(300), _scored(200, seed=1, start=400)
    export(first, target, table="segments", model_version="v1", scored_at=T1)
    replaced = export(second, target, table="segments", model_version="v2", scored_at=T2)
    expected = _canonical(_stamp(second, "v2", T2))
    if kind == "csv":  # CSV has one empty field for both an empty and a missing text
        expected["note"] = expected["note"].fillna("")
    _assert_same(_read_back(kind, target, "segments"), expected)
    assert replaced.inserted is None and replaced.rows == 200

    update = _scored(100, seed=2, start=550)  # c550..c599 exist, c600..c649 are new
    upserted = export(update, target, table="segments", mode="upsert", model_version="v3",
                      scored_at=T1)
    assert (upserted.inserted, upserted.updated) == (50, 50)
    expected = _expected_after_upsert(_stamp(second, "v2", T2), _stamp(update, "v3", T1))
    if kind == "csv":
        expected["note"] = expected["note"].fillna("")
    stored = _read_back(kind, target, "segments")
    _assert_same(stored, expected)
    nan_rows = int(expected["distance"].isna().sum())
    assert nan_rows > 0
    if kind == "duckdb":  # NaN became NULL, and the list column is a list of structs
        with duckdb.connect(target.removeprefix("duckdb:///")) as con:
            nulls = con.execute("SELECT count(*) FROM segments WHERE distance IS NULL").fetchone()
            assert nulls[0] == nan_rows
            rel = con.sql("SELECT * FROM segments")
            types = dict(zip(rel.columns, map(str, rel.types), strict=True))
            assert types["nearest_centroids_distance"] == 'STRUCT(centroid_id BIGINT, "distance" DOUBLE)[]'
    if kind == "parquet":
        schema = pq.read_schema(target)
        assert str(schema.field("nearest_centroids_distance").type) == \
            "list<element: struct<centroid_id: int64, distance: double>>"
        assert pq.read_table(target).column("distance").null_count == nan_rows
    if kind == "sqlite":
        with sqlite3.connect(target.removeprefix("sqlite:///")) as con:
            assert con.execute("SELECT count(*) FROM segments WHERE distance IS NULL").fetchone()[0] \
                == nan_rows
    if kind in ("sqlite", "duckdb"):
        assert not [p.name for p in tmp_path.iterdir() if "stage" in p.name]


def test_rule_based_rows_keep_the_list_type(tmp_path):
    """Rule-based solutions have no centroids: all-empty lists are still a list of structs."""
    rules = _scored(3).assign(nearest_centroids_distance=[[], [], []])
    export(rules, str(tmp_path / "rfm.parquet"))
    export(rules, f"duckdb:///{tmp_path}/rfm.duckdb", table="rfm")
    kind = "list<element: struct<centroid_id: int64, distance: double>>"
    assert str(pq.read_schema(tmp_path / "rfm.parquet").field("nearest_centroids_distance").type) == kind
    with duckdb.connect(str(tmp_path / "rfm.duckdb")) as con:
        rel = con.sql("SELECT nearest_centroids_distance FROM rfm")
        assert [str(t) for t in rel.types] == ['STRUCT(centroid_id BIGINT, "distance" DOUBLE)[]']
        assert rel.fetchall() == [([],)] * 3


def test_file_upsert_keeps_untouched_rows_in_place(tmp_path):
    path = tmp_path / "segments.csv"

    def records() -> list[list[str]]:
        with open(path, newline="", encoding="utf-8") as handle:
            return list(csv.reader(handle))

    export(_scored(5), path.as_posix(), scored_at=T1)
    before = records()
    export(_scored(2, seed=4, start=1), path.as_posix(), mode="upsert", scored_at=T2)
    after = records()
    # c1, c2 replaced where they were; the header, c0, c3, c4 as they were, text for text
    assert [after[i] for i in (0, 1, 4, 5)] == [before[i] for i in (0, 1, 4, 5)]
    assert [row[0] for row in after[1:]] == ["c0", "c1", "c2", "c3", "c4"]
    assert after[2] != before[2] and after[2][-1] == "2026-12-01 09:30:15.123456+00:00"


# --------------------------------------------------------------------------- secrets

def test_passwords_stay_out_of_results_logs_and_errors(postgres_url, monkeypatch, caplog):
    caplog.set_level(logging.DEBUG, logger="segmint")
    with_password = postgres_url.replace("postgres@", "postgres:s3cret@")
    result = export(_scored(50), with_password, table="masked_segments")
    assert "s3cret" not in repr(result) and ":***@" in result.target

    monkeypatch.setenv("SEGMINT_TEST_EXPORT_PW", "s3cret")
    monkeypatch.setenv("SEGMINT_TEST_EXPORT_TABLE_PORT", postgres_url.rsplit(":", 1)[1].split("/")[0])
    by_reference = ("postgresql+psycopg://postgres:${SEGMINT_TEST_EXPORT_PW}@127.0.0.1:"
                    "${SEGMINT_TEST_EXPORT_TABLE_PORT}/postgres")
    result = export(_scored(60), by_reference, table="masked_segments", mode="upsert")
    assert result.target == by_reference and (result.inserted, result.updated) == (10, 50)

    closed = with_password.rsplit(":", 1)[0] + ":1/postgres"  # nothing listens on port 1
    with pytest.raises(SegmintError) as caught:
        export(_scored(5), closed, table="masked_segments")
    assert "cannot connect" in str(caught.value) and "s3cret" not in str(caught.value)
    assert not isinstance(caught.value, InternalError)

    monkeypatch.delenv("SEGMINT_TEST_EXPORT_PW")
    with pytest.raises(SpecError, match="SEGMINT_TEST_EXPORT_PW, which is not set"):
        export(_scored(5), by_reference, table="masked_segments")

    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "exported 60 rows" in logged and "s3cret" not in logged


def test_target_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.delenv(ENV_URL, raising=False)
    with pytest.raises(SpecError, match=ENV_URL):
        export(_scored(3))
    monkeypatch.setenv(ENV_URL, f"sqlite:///{tmp_path}/env.db")
    result = export(_scored(3), table="from_env")
    assert result == ExportResult(target=f"sqlite:///{tmp_path}/env.db", table="from_env",
                                  mode="replace", rows=3, seconds=result.seconds)


# --------------------------------------------------------------------------- bad input

@pytest.mark.parametrize(("change", "row", "words"), [
    (lambda f: f.assign(customer=f["customer"].where(f.index != 3, "c1")), 4, "'c1' repeats row 2"),
    (lambda f: f.assign(customer=f["customer"].where(f.index != 2, None)), 3, "missing value"),
])
def test_bad_key_names_column_and_row(tmp_path, change, row, words):
    db = tmp_path / "crm.db"
    with pytest.raises(InputError) as caught:
        export(change(_scored(6)), f"sqlite:///{db}", table="segments")
    assert (caught.value.column, caught.value.row) == ("customer", row)
    assert words in str(caught.value)
    assert not db.exists()


def test_absent_key_column(tmp_path):
    with pytest.raises(InputError, match="key column is absent") as caught:
        export(_scored(3), str(tmp_path / "s.parquet"), key="customer_id")
    assert caught.value.column == "customer_id"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("table", ["segments; DROP TABLE x", "a-b", "1st", "x" * 64, "crm.segments",
                                   'seg"ments', ""])
def test_bad_table_name_is_refused_before_writing(postgres_url, tmp_path, table):
    with psycopg.connect(_libpq(postgres_url)) as conn:
        tables = conn.execute("SELECT count(*) FROM pg_class").fetchone()
    for target in (f"sqlite:///{tmp_path}/crm.db", postgres_url):
        with pytest.raises(SpecError, match="is not a plain name"):
            export(_scored(3), target, table=table)
    assert list(tmp_path.iterdir()) == []
    with psycopg.connect(_libpq(postgres_url)) as conn:
        assert conn.execute("SELECT count(*) FROM pg_class").fetchone() == tables


def test_bad_mode_and_target(tmp_path):
    with pytest.raises(SpecError, match="mode 'merge' is not one of replace, upsert"):
        export(_scored(3), str(tmp_path / "s.csv"), mode="merge")
    with pytest.raises(SpecError, match="not supported"):
        export(_scored(3), "mysql://u:pw@db/crm")
    with pytest.raises(SpecError, match="neither a database URL"):
        export(_scored(3), str(tmp_path / "s.xlsx"))
    assert list(tmp_path.iterdir()) == []
