"""BigQuery exports as DuckDB tables: wildcard tables with _TABLE_SUFFIX, Parquet, NDJSON (INT64
as strings, as BigQuery writes it), Avro, CSV; the notebook's GA360 query gives the same numbers
from each format."""
from __future__ import annotations

import gzip
import json

import duckdb
import fastavro
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from test_dialect import GA360_FILE, GA360_QUERY, check_ga360_result, run

from segmint.errors import InputError
from segmint.sql.dialect import register_functions
from segmint.sql.tables import file_format, register_export, register_table

WILDCARD = "bigquery-public-data.google_analytics_sample.ga_sessions_*"


@pytest.fixture(scope="module")
def sessions(shared_data) -> pa.Table:
    return pq.read_table(shared_data / GA360_FILE)


@pytest.fixture()
def con():
    con = duckdb.connect()
    register_functions(con)
    return con


def two_days(sessions: pa.Table, folder) -> tuple[pa.Table, pa.Table]:
    """The real day split in two files: odd visitIds re-dated 20170802."""
    odd = pc.equal(pc.bit_wise_and(sessions["visitId"], 1), 1)
    first, second = sessions.filter(pc.invert(odd)), sessions.filter(odd)
    pq.write_table(first, folder / "ga360_sessions_20170801.parquet")
    pq.write_table(second, folder / "ga360_sessions_20170802.parquet")
    return first, second


def test_wildcard_table_suffix_filters_files(con, sessions, tmp_path):
    first, second = two_days(sessions, tmp_path)
    names = register_export(con, WILDCARD, str(tmp_path / "ga360_sessions_*.parquet"))
    assert names == ["google_analytics_sample.ga_sessions_*",
                     "google_analytics_sample.ga_sessions_20170801",
                     "google_analytics_sample.ga_sessions_20170802"]
    counts = run(con, f"SELECT _TABLE_SUFFIX, COUNT(*) FROM `{WILDCARD}` GROUP BY 1 ORDER BY 1")
    assert counts.fetchall() == [("20170801", first.num_rows), ("20170802", second.num_rows)]
    assert first.num_rows + second.num_rows == 2556
    one_day = f"SELECT COUNT(*) FROM `{WILDCARD}` WHERE _TABLE_SUFFIX BETWEEN '20170802' AND '20170802'"
    assert run(con, one_day).fetchall() == [(second.num_rows,)]
    # DuckDB reads only the file the WHERE keeps: one Parquet scan in the plan instead of two
    [sql] = [s for s in to_sql(con, one_day)]
    plan = con.sql("EXPLAIN " + sql).fetchall()[0][1]
    assert plan.count("READ_PARQUET") == 1
    plan = con.sql("EXPLAIN " + sql.replace("'20170802' AND", "'20170801' AND")).fetchall()[0][1]
    assert plan.count("READ_PARQUET") == 2
    # each day is also a table of its own, as in BigQuery
    rows = run(con, "SELECT COUNT(*) FROM google_analytics_sample.ga_sessions_20170801").fetchall()
    assert rows == [(first.num_rows,)]


def to_sql(con, sql):
    from segmint.sql.dialect import parse_script, to_duckdb

    return [t for s in parse_script(sql) for t in to_duckdb(s.expression, con)]


def test_seed_query_over_two_days_counts_the_days_asked_for(con, sessions, tmp_path):
    first, _ = two_days(sessions, tmp_path)
    register_export(con, WILDCARD, [tmp_path / "ga360_sessions_20170801.parquet",
                                    tmp_path / "ga360_sessions_20170802.parquet"])
    # the notebook's query asks for 20170801 only: the visitors of the first file
    frame = run(con, GA360_QUERY).df()
    check_ga360_result(frame, first.to_pylist())
    both = run(con, GA360_QUERY.replace("AND '20170801'", "AND '20170802'")).df()
    check_ga360_result(both, sessions.to_pylist())
    assert len(both) > len(frame)


# ------------------------------------------------------------------------------- formats


def bigquery_json(value, arrow_type):
    """A value as BigQuery's JSON export writes it: INT64 as a string, records and arrays nested."""
    if value is None:
        return None
    if pa.types.is_struct(arrow_type):
        return {f.name: bigquery_json(value[f.name], f.type) for f in arrow_type}
    if pa.types.is_list(arrow_type):
        return [bigquery_json(v, arrow_type.value_type) for v in value]
    if pa.types.is_integer(arrow_type):
        return str(value)
    return value


def avro_type(arrow_type):
    """An Avro schema for an Arrow type, every field nullable, as BigQuery's Avro export."""
    if pa.types.is_struct(arrow_type):
        avro_type.count += 1
        return {"type": "record", "name": f"r{avro_type.count}",
                "fields": [{"name": f.name, "type": ["null", avro_type(f.type)]} for f in arrow_type]}
    if pa.types.is_list(arrow_type):
        return {"type": "array", "items": avro_type(arrow_type.value_type)}
    if pa.types.is_integer(arrow_type):
        return "long"
    if pa.types.is_floating(arrow_type):
        return "double"
    if pa.types.is_boolean(arrow_type):
        return "boolean"
    return "string"


avro_type.count = 0


@pytest.fixture(scope="module")
def few(sessions) -> pa.Table:
    """200 sessions with United States EVENT hits among them (every 10th session)."""
    return sessions.take(list(range(0, sessions.num_rows, 10))[:200])


def seed_on(con, few) -> object:
    frame = run(con, GA360_QUERY).df()
    check_ga360_result(frame, few.to_pylist())
    assert len(frame) > 5
    return frame.sort_values("fullVisitorID").reset_index(drop=True)


def test_ndjson_export_gives_the_parquet_result(con, few, tmp_path):
    parquet = tmp_path / "ga_sessions_20170801.parquet"
    pq.write_table(few, parquet)
    lines = [json.dumps(bigquery_json(row, pa.struct(list(few.schema))))
             for row in few.to_pylist()]
    assert '"visitId": "' in lines[0]  # INT64 written as a string
    path = tmp_path / "json" / "ga_sessions_20170801.json.gz"
    path.parent.mkdir()
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
    register_export(con, WILDCARD, parquet)
    from_parquet = seed_on(con, few)
    other = duckdb.connect()
    register_functions(other)
    register_export(other, WILDCARD, str(tmp_path / "json" / "ga_sessions_*.json.gz"),
                    schema=parquet)
    from_json = seed_on(other, few)
    assert from_json.equals(from_parquet)
    # the schema's types, not the strings: the same column types as the Parquet view
    types = {c: str(t) for c, t in zip(*[getattr(other.sql(
        'SELECT * FROM google_analytics_sample."ga_sessions_*"'), a) for a in ("columns", "types")],
        strict=True)}
    assert types["visitId"] == "BIGINT" and types["fullVisitorId"] == "VARCHAR"


def test_ndjson_with_a_bigquery_schema_file(con, tmp_path):
    path = tmp_path / "crm_20170801.ndjson"
    path.write_text('{"id": "0012", "hhi": "55000", "rec": {"n": "3"}}\n'
                    '{"id": "7", "hhi": null, "rec": {"n": "4"}}\n')
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps([{"name": "id", "type": "STRING", "mode": "NULLABLE"},
                                  {"name": "hhi", "type": "INTEGER"},
                                  {"name": "rec", "type": "RECORD",
                                   "fields": [{"name": "n", "type": "INT64"}]}]))
    register_export(con, "crm.customers", path, schema=schema)
    assert con.sql("SELECT id, hhi, rec.n FROM crm.customers").fetchall() == [
        ("0012", 55000, 3), ("7", None, 4)]


def test_avro_export_gives_the_parquet_result(con, few, tmp_path):
    parquet = tmp_path / "ga_sessions_20170801.parquet"
    pq.write_table(few, parquet)
    schema = fastavro.parse_schema(avro_type(pa.struct(list(few.schema))))
    path = tmp_path / "ga_sessions_20170801.avro"
    with path.open("wb") as handle:
        fastavro.writer(handle, schema, few.to_pylist())
    register_export(con, WILDCARD, parquet)
    from_parquet = seed_on(con, few)
    other = duckdb.connect()
    register_functions(other)
    names = register_export(other, WILDCARD, [path])
    assert names[1] == "google_analytics_sample.ga_sessions_20170801"
    from_avro = seed_on(other, few)
    assert from_avro.equals(from_parquet)


def test_register_table_csv_and_file_database(tmp_path):
    path = tmp_path / "crm.csv"
    path.write_text("fullVisitorId,gender,hhi\n0012,M,55000\n3,F,65000\n")
    database = tmp_path / "segmint.duckdb"
    with duckdb.connect(str(database)) as con:
        assert register_table(con, "my-project.crm.customers", path) == "crm.customers"
    # the view was saved with the file's absolute path
    with duckdb.connect(str(database)) as con:
        rows = con.sql("SELECT * FROM crm.customers ORDER BY hhi").fetchall()
    assert rows == [("0012", "M", 55000), ("3", "F", 65000)]


def test_registering_again_replaces(con, sessions, tmp_path):
    first, second = two_days(sessions, tmp_path)
    register_export(con, WILDCARD, str(tmp_path / "ga360_sessions_20170801.parquet"))
    register_export(con, WILDCARD, str(tmp_path / "ga360_sessions_*.parquet"))
    rows = run(con, f"SELECT COUNT(*) FROM `{WILDCARD}`").fetchall()
    assert rows == [(first.num_rows + second.num_rows,)]


def test_suffix_rules(con, tmp_path):
    for name, value in [("export_a_20170801-000000000000.parquet", 1),
                        ("export_b_20170802.parquet", 2)]:
        pq.write_table(pa.table({"x": [value]}), tmp_path / name)
    # from a glob: what its * matched
    register_export(con, "d.g_*", str(tmp_path / "export_*.parquet"))
    assert con.sql('SELECT _TABLE_SUFFIX, x FROM d."g_*" ORDER BY x').fetchall() == [
        ("a_20170801-000000000000", 1), ("b_20170802", 2)]
    # from a list of files: after the last _
    register_export(con, "d.h_*", sorted(tmp_path.glob("export_*.parquet")))
    assert con.sql('SELECT _TABLE_SUFFIX, x FROM d."h_*" ORDER BY x').fetchall() == [
        ("20170801-000000000000", 1), ("20170802", 2)]


# -------------------------------------------------------------------------------- errors


def test_no_file_matches(con, tmp_path):
    with pytest.raises(InputError) as caught:
        register_export(con, WILDCARD, str(tmp_path / "ga_sessions_*.parquet"))
    assert "no file matches" in str(caught.value) and "ga_sessions_*.parquet" in str(caught.value)


def test_unreadable_file_is_named(con, tmp_path):
    good, bad = tmp_path / "t_20170801.parquet", tmp_path / "t_20170802.parquet"
    pq.write_table(pa.table({"x": [1]}), good)
    bad.write_bytes(b"not parquet at all")
    with pytest.raises(InputError) as caught:
        register_export(con, "d.t_*", str(tmp_path / "t_*.parquet"))
    assert str(bad) in str(caught.value) and "cannot read as parquet" in str(caught.value)
    avro = tmp_path / "t_20170803.avro"
    avro.write_bytes(b"nope")
    with pytest.raises(InputError, match="cannot read as Avro") as caught:
        register_export(con, "d.a_*", [avro])
    assert str(avro) in str(caught.value)


def test_conflicting_schemas_are_named(con, tmp_path):
    pq.write_table(pa.table({"visits": [1], "x": ["a"]}), tmp_path / "t_20170801.parquet")
    pq.write_table(pa.table({"visits": ["1"], "x": ["b"]}), tmp_path / "t_20170802.parquet")
    with pytest.raises(InputError) as caught:
        register_export(con, "d.t_*", str(tmp_path / "t_*.parquet"))
    text = str(caught.value)
    assert "schemas conflict" in text and "visits" in text and "t_20170802.parquet" in text


def test_unknown_format_and_csv_for_nested_exports(con, tmp_path):
    assert file_format("x.ndjson.gz") == "json"
    path = tmp_path / "t_1.txt"
    path.write_text("x")
    with pytest.raises(InputError, match="unknown file type"):
        register_export(con, "d.t_*", [path])
    csv = tmp_path / "t_2.csv"
    csv.write_text("x\n1\n")
    with pytest.raises(InputError, match="CSV cannot hold"):
        register_export(con, "d.t_*", [csv])
