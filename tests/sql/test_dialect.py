"""BigQuery SQL on DuckDB: parsing (with BigQuery ML's functions), translation and errors.

The seed queries are Google's bqml_scaled_clustering notebook's, checked against a computation
in plain Python from the same Parquet file (GA360, 2017-08-01)."""
from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

import duckdb
import farmhash
import pyarrow.parquet as pq
import pytest
from sqlglot import exp

from segmint.sql.dialect import (
    HParam,
    MLFunction,
    SQLError,
    duckdb_error,
    model_options,
    model_transform,
    parse_script,
    register_functions,
    to_duckdb,
)

GA360_FILE = "ga360_sessions_20170801.parquet"

#: The notebook's product categories and the columns it names them.
CATEGORIES = [("Apparel", "Apparel"), ("Office", "Office"), ("Electronics", "Electronics"),
              ("Limited Supply", "LimitedSupply"), ("Accessories", "Accessories"),
              ("Shop by Brand", "ShopByBrand"), ("Bags", "Bags")]

#: Google's notebook as a script; its views are the seed queries.
EXAMPLE_SQL = (Path(__file__).resolve().parents[2] / "examples" / "bqml_ga360.sql").read_text()


def example_view(name: str) -> str:
    """The query of ``CREATE OR REPLACE VIEW bqml_kmeans.<name>`` in the example script."""
    head = f"CREATE OR REPLACE VIEW bqml_kmeans.{name} AS\n"
    start = EXAMPLE_SQL.index(head) + len(head)
    return EXAMPLE_SQL[start:EXAMPLE_SQL.index(";", start)]


#: The notebook's GA360 query, as written there (its date range is this one day).
GA360_QUERY = example_view("GA360_View")

#: The notebook's made-up CRM data, from the same visitors.
CRM_QUERY = example_view("CRM_View")

SEED_SCRIPT = f"""CREATE OR REPLACE VIEW bqml_kmeans.GA360_View AS
{GA360_QUERY};
CREATE OR REPLACE VIEW bqml_kmeans.CRM_View AS
{CRM_QUERY};
SELECT g.*, c.* EXCEPT(fullVisitorId) FROM bqml_kmeans.GA360_View g JOIN bqml_kmeans.CRM_View c
ON g.fullVisitorId = c.fullVisitorId
"""


def run(con: duckdb.DuckDBPyConnection, sql: str) -> duckdb.DuckDBPyRelation | None:
    """Every statement of a BigQuery script through to_duckdb; the last relation."""
    relation = None
    for statement in parse_script(sql):
        for text in to_duckdb(statement.expression, con):
            relation = con.sql(text)
    return relation


def ga360_reference(sessions: list[dict]) -> dict[str, dict]:
    """The GA360 query computed in Python: sessions in the United States, their EVENT hits'
    products, categories by the same regex, price sum in dollars; by visitor."""
    pattern = re.compile(r"^(?:(?:.*?)Home/)(.*?)/")
    visitors: dict[str, dict] = defaultdict(lambda: {"os": [], "categories": defaultdict(int),
                                                     "prices": []})
    for session in sessions:
        if (session["geoNetwork"] or {}).get("country") != "United States":
            continue
        for hit in session["hits"] or []:
            if hit["type"] != "EVENT":
                continue
            for product in hit["product"] or []:
                visitor = visitors[session["fullVisitorId"]]
                visitor["os"].append(session["device"]["operatingSystem"])
                found = pattern.search(product["v2ProductCategory"] or "")
                if found:
                    visitor["categories"][found.group(1)] += 1
                if product["productPrice"] is not None:
                    visitor["prices"].append(product["productPrice"])
    return dict(visitors)


def hashed(visitor: str) -> int:
    """ABS(FARM_FINGERPRINT(visitor)) in Python: the unsigned hash read as a signed int64."""
    value = farmhash.Fingerprint64(visitor)
    return abs(value - (1 << 64) if value >= 1 << 63 else value)


@pytest.fixture()
def ga360(shared_data):
    """A connection with the one GA360 day as the wildcard table and FARM_FINGERPRINT."""
    con = duckdb.connect()
    register_functions(con)
    path = shared_data / GA360_FILE
    con.execute("CREATE SCHEMA google_analytics_sample")
    con.execute(f"""CREATE VIEW google_analytics_sample."ga_sessions_*" AS SELECT *,
                    '20170801' AS _TABLE_SUFFIX FROM read_parquet('{path}')""")
    return con


def check_ga360_result(frame, sessions) -> None:
    """The GA360 query's rows equal the Python computation, visitor by visitor."""
    reference = ga360_reference(sessions)
    assert len(frame) == len(reference)
    assert frame["fullVisitorID"].is_unique
    for row in frame.itertuples(index=False):
        visitor = reference[row.fullVisitorID]
        assert row.Hashed_fullVisitorID == hashed(row.fullVisitorID)
        assert row.OS == max(visitor["os"])
        for category, column in CATEGORIES:
            assert getattr(row, column) == visitor["categories"][category], (row, column)
        if visitor["prices"]:
            assert abs(row.productPrice_USD - sum(visitor["prices"]) / 1e6) <= 0.005 + 1e-9
        else:
            assert row.productPrice_USD != row.productPrice_USD  # NULL, as SUM of no values


# ------------------------------------------------------------------------------- the seed


def test_ga360_query_equals_python_computation(ga360, shared_data):
    frame = run(ga360, GA360_QUERY).df()
    sessions = pq.read_table(shared_data / GA360_FILE).to_pylist()
    check_ga360_result(frame, sessions)
    reference = ga360_reference(sessions)
    # column totals, for a reader to compare at a glance
    assert frame["Apparel"].sum() == sum(v["categories"]["Apparel"] for v in reference.values())
    assert frame["Apparel"].sum() > 0 and frame["Bags"].sum() > 0
    assert frame["LimitedSupply"].sum() == 0  # no such category on this day
    assert list(frame.columns) == ["fullVisitorID", "Hashed_fullVisitorID", "OS",
                                   *(c for _, c in CATEGORIES), "productPrice_USD"]
    # BigQuery's SUM of INT64 is INT64, not DuckDB's 128-bit HUGEINT
    assert str(frame["Apparel"].dtype) == "int64"


def test_crm_view_gender_and_income_from_farmhash(ga360, shared_data):
    frame = run(ga360, CRM_QUERY).df()
    sessions = pq.read_table(shared_data / GA360_FILE).to_pylist()
    assert sorted(frame["fullVisitorID"]) == sorted(ga360_reference(sessions))
    incomes = {0: 55000, 1: 65000, 2: 65000, 3: 75000, 4: 75000, 5: 75000, 6: 75000, 7: 85000,
               8: 85000, 9: 95000}
    for row in frame.itertuples(index=False):
        value = hashed(row.fullVisitorID)
        assert row.gender == ("M" if value % 2 == 0 else "F")
        assert row.hhi == incomes[value % 10]
    assert set(frame["gender"]) == {"M", "F"}


def test_seed_views_and_join(ga360, shared_data):
    frame = run(ga360, SEED_SCRIPT).df()
    sessions = pq.read_table(shared_data / GA360_FILE).to_pylist()
    # c.* EXCEPT(fullVisitorId) leaves the CRM's visitor column out (names case-insensitive)
    assert list(frame.columns) == ["fullVisitorID", "Hashed_fullVisitorID", "OS",
                                   *(c for _, c in CATEGORIES), "productPrice_USD", "gender", "hhi"]
    check_ga360_result(frame, sessions)
    assert ga360.sql("SELECT count(*) FROM bqml_kmeans.GA360_View").fetchall() == [(len(frame),)]


def test_select_star_of_a_wildcard_table_leaves_out_table_suffix(ga360):
    columns = run(ga360, "SELECT * FROM `google_analytics_sample.ga_sessions_*` LIMIT 1").columns
    assert "_TABLE_SUFFIX" not in columns and "fullVisitorId" in columns
    columns = run(ga360, "SELECT * EXCEPT(hits) FROM `google_analytics_sample.ga_sessions_*` AS s "
                         "LIMIT 1").columns
    assert "_TABLE_SUFFIX" not in columns and "hits" not in columns and "totals" in columns
    # but it can be named
    rows = run(ga360, "SELECT DISTINCT _TABLE_SUFFIX FROM `google_analytics_sample.ga_sessions_*`")
    assert rows.fetchall() == [("20170801",)]


# ------------------------------------------------------------------------------ functions


@pytest.fixture()
def con():
    con = duckdb.connect()
    register_functions(con)
    return con


def test_farm_fingerprint_has_bigquerys_values(con):
    published = {"test": 8581389452482819506, "1footrue": -1541654101129638711,
                 "2applefalse": 2794438866806483259, "3true": -4880158226897771312,
                 "alphabet": -2427165924636348523, "a" * 126: 6261940804893177895,
                 "a" * 128: -4747627967806356490}
    values = ", ".join(f"'{text}'" for text in published)
    rows = run(con, f"SELECT x, FARM_FINGERPRINT(x) AS f FROM UNNEST([{values}]) AS x")
    assert dict(rows.fetchall()) == published
    assert run(con, "SELECT FARM_FINGERPRINT(CAST(NULL AS STRING))").fetchall() == [(None,)]
    register_functions(con)  # again: no error, same function
    assert run(con, "SELECT farm_fingerprint('test')").fetchall() == [(8581389452482819506,)]


def test_regexp_extract_is_null_without_a_match(con):
    rows = run(con, r"""SELECT REGEXP_EXTRACT('Home/Apparel/Men/', r'^(?:(?:.*?)Home/)(.*?)/'),
                              REGEXP_EXTRACT('Apparel', r'^(?:(?:.*?)Home/)(.*?)/'),
                              REGEXP_EXTRACT('abc123def', r'\d+'),
                              REGEXP_EXTRACT('Home//', r'Home/(.*?)/'),
                              REGEXP_EXTRACT(NULL, r'x')""").fetchall()
    # the group; NULL (DuckDB's own gives ''); the whole match without a group; an empty group
    assert rows == [("Apparel", None, "123", "", None)]


def test_mod_if_round_and_double_quoted_strings(con):
    rows = run(con, """SELECT MOD(-7, 2), MOD(7, -2), MOD(-8, 2), IF(MOD(-7, 2) = -1, "neg", "pos"),
                              ROUND(2.25, 1), ROUND(-2.5), 7 / 2""").fetchall()
    # BigQuery's MOD takes the sign of the dividend; ROUND rounds half away from zero; / is FLOAT64
    assert rows == [(-1, 1, 0, "neg", 2.3, -3.0, 3.5)]


def test_star_except_replace_trailing_comma_group_by_position(con):
    con.execute("CREATE TABLE sales AS SELECT * FROM (VALUES ('a', 1, 10), ('a', 2, 20), "
                "('b', 3, 30)) AS t(Customer, n, amount)")
    rows = run(con, """# a comment
        SELECT customer, SUM(AMOUNT) AS total, -- another
               COUNT(*) AS n,
        FROM sales GROUP BY 1 ORDER BY 1""").fetchall()
    assert rows == [("a", 30, 2), ("b", 30, 1)]
    relation = run(con, "SELECT * EXCEPT(N) REPLACE (amount * 2 AS amount) FROM sales ORDER BY 2")
    assert relation.columns == ["Customer", "amount"]
    assert relation.fetchall() == [("a", 20), ("a", 40), ("b", 60)]


def test_array_agg_of_structs_and_scalar_subquery_over_unnest(con):
    # the shape of the notebook's centroid query: features as an array of (name, value) structs
    con.execute("CREATE TABLE centroids AS SELECT * FROM (VALUES (1, 'Apparel', 2.0::DOUBLE), "
                "(1, 'Bags', 0.5), (2, 'Apparel', 7.25), (2, 'Bags', 1.0)) AS t(centroid_id, "
                "feature, numerical_value)")
    rows = run(con, """
        WITH c AS (
          SELECT centroid_id,
                 ARRAY_AGG(STRUCT(feature AS name, ROUND(numerical_value, 1) AS value)
                           ORDER BY centroid_id) AS cluster
          FROM centroids GROUP BY centroid_id)
        SELECT centroid_id,
               (SELECT value FROM UNNEST(cluster) WHERE name = 'Apparel') AS Apparel,
               (SELECT value FROM UNNEST(cluster) AS f WHERE f.name = 'Bags') AS Bags
        FROM c ORDER BY centroid_id""").fetchall()
    assert rows == [(1, 2.0, 0.5), (2, 7.3, 1.0)]


def test_unnest_field_names_and_case(con):
    con.execute("""CREATE SCHEMA ds; CREATE TABLE ds.visits AS SELECT * FROM (VALUES
        ('v1', [{'type': 'EVENT', 'product': [{'price': 2}, {'price': 3}]},
                {'type': 'PAGE', 'product': [{'price': 100}]}]),
        ('v2', [{'type': 'EVENT', 'product': []}])) AS t(fullVisitorId, hits)""")
    rows = run(con, """SELECT FULLVISITORID, type, SUM(price) AS total, COUNT(*) AS n
        FROM `my-project.ds.visits` v, UNNEST(v.hits) AS hits, UNNEST(hits.product)
        GROUP BY 1, 2 ORDER BY 1, 2""")
    assert rows.columns == ["FULLVISITORID", "type", "total", "n"]
    assert rows.fetchall() == [("v1", "EVENT", 5, 2), ("v1", "PAGE", 100, 1)]
    # a path in FROM is an implicit UNNEST
    rows = run(con, "SELECT h.type FROM ds.visits AS v, v.hits AS h ORDER BY 1").fetchall()
    assert rows == [("EVENT",), ("EVENT",), ("PAGE",)]


def test_star_over_unnest_expands_struct_fields(con):
    con.execute("CREATE TABLE t AS SELECT 1 AS a, [{'x': 5, 'y': 6}, {'x': 7, 'y': 8}] AS arr")
    relation = run(con, "SELECT * EXCEPT (arr) REPLACE (x + a AS x) FROM t, UNNEST(arr) AS e "
                        "ORDER BY x")
    # BigQuery: the element struct's fields are columns of the value table
    assert relation.columns == ["a", "x", "y"]
    assert relation.fetchall() == [(1, 6, 6), (1, 8, 8)]
    relation = run(con, "SELECT e.* FROM t, UNNEST(arr) AS e ORDER BY 1")
    assert relation.columns == ["x", "y"] and relation.fetchall() == [(5, 6), (7, 8)]


def test_create_drop_insert_map_datasets_to_schemas(con):
    statements = parse_script("CREATE TABLE `p.crm.customers` (id STRING, hhi INT64);"
                              "INSERT INTO crm.customers (id, hhi) VALUES ('a', 55000);"
                              "DROP TABLE crm.customers")
    texts = [to_duckdb(s.expression, con) for s in statements[:1]]
    assert texts[0][0] == 'CREATE SCHEMA IF NOT EXISTS "crm"'
    assert texts[0][1].startswith('CREATE TABLE "crm"."customers"')
    run(con, "CREATE TABLE `p.crm.customers` (id STRING, hhi INT64);"
             "INSERT INTO crm.customers (id, hhi) VALUES ('a', 55000)")
    assert con.sql("SELECT * FROM crm.customers").fetchall() == [("a", 55000)]
    run(con, "DROP TABLE crm.customers")
    assert con.sql("SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'crm'"
                   ).fetchall() == [(0,)]


def test_lambdas_use_duckdbs_syntax(con):
    [statement] = parse_script("SELECT ARRAY_TRANSFORM([1, 2], x -> x * 10) AS a, "
                               "JSON_EXTRACT(j, '$.a') AS b, 'x -> y' AS c "
                               "FROM UNNEST([JSON '{\"a\": 3}']) AS j")
    [sql] = to_duckdb(statement.expression, con)
    assert con.sql(sql).fetchall() == [([10, 20], "3", "x -> y")]


# ---------------------------------------------------------------------------- ML functions


def ml_call(sql: str) -> MLFunction:
    [statement] = parse_script(sql)
    calls = list(statement.expression.find_all(MLFunction))
    assert len(calls) == 1
    return calls[0]


@pytest.mark.parametrize("sql, name, model, input_, params", [
    ("SELECT * FROM ML.CENTROIDS(MODEL `p.bqml.m`)", "CENTROIDS", "bqml.m", None, None),
    ("SELECT * FROM ML.CENTROIDS(MODEL bqml.m, STRUCT(TRUE AS standardize))", "CENTROIDS", "bqml.m",
     None, "STRUCT(TRUE AS standardize)"),
    ("SELECT * FROM ML.EVALUATE(MODEL bqml.m)", "EVALUATE", "bqml.m", None, None),
    ("SELECT * FROM ML.EVALUATE(MODEL bqml.m, (SELECT * FROM d.t), STRUCT(0.5 AS threshold))",
     "EVALUATE", "bqml.m", "(SELECT * FROM d.t)", "STRUCT(0.5 AS threshold)"),
    ("SELECT * FROM ML.PREDICT(MODEL bqml.m, TABLE d.t)", "PREDICT", "bqml.m", "d.t", None),
    ("SELECT centroid_id FROM ML.PREDICT(MODEL bqml.m, (SELECT 1 AS x)) AS p", "PREDICT", "bqml.m",
     "(SELECT 1 AS x)", None),
    ("SELECT * FROM ML.DETECT_ANOMALIES(MODEL m, STRUCT(0.02 AS contamination), TABLE d.t)",
     "DETECT_ANOMALIES", "m", "d.t", "STRUCT(0.02 AS contamination)"),
    ("SELECT * FROM ML.DETECT_ANOMALIES(MODEL m, STRUCT(0.02 AS contamination))",
     "DETECT_ANOMALIES", "m", None, "STRUCT(0.02 AS contamination)"),
    ("SELECT * FROM ML.TRAINING_INFO(MODEL bqml.m) ORDER BY iteration", "TRAINING_INFO", "bqml.m",
     None, None),
    ("SELECT * FROM ml.feature_info(MODEL bqml.m)", "FEATURE_INFO", "bqml.m", None, None),
    ("SELECT * FROM ML.TRIAL_INFO(MODEL bqml.m)", "TRIAL_INFO", "bqml.m", None, None),
])
def test_ml_functions_parse_into_one_node(sql, name, model, input_, params):
    call = ml_call(sql)
    assert call.name == name
    assert isinstance(call.this, exp.Table)
    assert ".".join(p.name for p in call.this.parts[-2:]) == model
    got_input = call.args.get("expression")
    assert (got_input.sql("bigquery") if got_input is not None else None) == input_
    got_params = call.args.get("params")
    assert (got_params.sql("bigquery") if got_params is not None else None) == params
    # the FROM item is a table holding the call, with no "ML" schema left
    holder = call.parent
    assert isinstance(holder, exp.Table) and not holder.args.get("db")


def test_ml_function_inside_a_cte_and_a_join():
    [statement] = parse_script("""WITH p AS (SELECT * FROM ML.PREDICT(MODEL d.m, (SELECT * FROM d.t)))
        SELECT * FROM p JOIN ML.CENTROIDS(MODEL d.m) AS c USING (centroid_id)""")
    names = [c.name for c in statement.expression.find_all(MLFunction)]
    assert sorted(names) == ["CENTROIDS", "PREDICT"]


def test_function_names_without_ml_prefix_are_not_ml_functions(con):
    [statement] = parse_script("SELECT evaluate(1) AS a, centroids('x') AS b")
    assert statement.expression.find(MLFunction) is None


@pytest.mark.parametrize("sql, where, words", [
    ("SELECT * FROM ML.PREDICT(MODEL m)", "[1:33]", "needs an input"),
    ("SELECT * FROM ML.CENTROIDS(m)", "[1:28]", "MODEL"),
    ("SELECT * FROM ML.DETECT_ANOMALIES(MODEL m, TABLE t, STRUCT(0.1 AS contamination))", None,
     "order"),
    ("SELECT * FROM ML.TRAINING_INFO(MODEL m, TABLE t)", None, "does not take"),
])
def test_ml_function_argument_errors(sql, where, words):
    with pytest.raises(SQLError) as caught:
        parse_script(sql)
    assert words in str(caught.value)
    if where:
        assert where in str(caught.value)


def test_model_options_and_transform():
    [statement] = parse_script("""CREATE OR REPLACE MODEL `p.bqml_kmeans.kmeans_clusters`
        TRANSFORM(ML.STANDARD_SCALER(Apparel) OVER () AS Apparel, OS)
        OPTIONS(model_type='kmeans', NUM_CLUSTERS=HPARAM_RANGE(3, 15),
                kmeans_init_method='KMEANS++', distance_type = 'EUCLIDEAN',
                early_stop=FALSE, min_rel_progress=0.01, max_iterations=20,
                num_trials=HPARAM_CANDIDATES([3, 5, 8]), l1=-1,
                hparam_tuning_objectives=['davies_bouldin_index'])
        AS SELECT * EXCEPT(fullVisitorID) FROM bqml_kmeans.GA360_View""")
    create = statement.expression
    assert isinstance(create, exp.Create) and create.args["kind"] == "MODEL"
    assert model_options(create) == {
        "model_type": "kmeans", "num_clusters": HParam("RANGE", (3, 15)),
        "kmeans_init_method": "KMEANS++", "distance_type": "EUCLIDEAN", "early_stop": False,
        "min_rel_progress": 0.01, "max_iterations": 20,
        "num_trials": HParam("CANDIDATES", (3, 5, 8)), "l1": -1,
        "hparam_tuning_objectives": ["davies_bouldin_index"]}
    transform = model_transform(create)
    assert [e.alias_or_name for e in transform] == ["Apparel", "OS"]
    assert model_transform(parse_script("CREATE MODEL m OPTIONS(model_type='kmeans') AS "
                                        "SELECT 1 AS x")[0].expression) is None
    drop = parse_script("DROP MODEL IF EXISTS bqml_kmeans.m")[0].expression
    assert isinstance(drop, exp.Drop) and drop.args["kind"] == "MODEL" and drop.args["exists"]


def test_model_option_of_an_unsupported_value_is_an_sql_error():
    [statement] = parse_script("CREATE MODEL m OPTIONS(model_type=CONCAT('k', 'means')) AS "
                               "SELECT 1 AS x")
    with pytest.raises(SQLError, match=r"Unsupported value in OPTIONS: CONCAT\('k', 'means'\) "
                                       r"at \[1:35\]"):
        model_options(statement.expression)


# ------------------------------------------------------------------------------- scripts


def test_parse_script_splits_statements_with_lines_and_texts():
    script = """# a script
CREATE OR REPLACE VIEW d.v AS SELECT 1 AS x;  -- first

/* a block
   comment; with a semicolon */
SELECT x
FROM d.v;;
SELECT ';' AS semicolon"""
    statements = parse_script(script)
    assert [s.line for s in statements] == [2, 6, 8]
    assert statements[1].text == "SELECT x\nFROM d.v"
    assert statements[2].text == "SELECT ';' AS semicolon"
    assert [type(s.expression).__name__ for s in statements] == ["Create", "Select", "Select"]


# -------------------------------------------------------------------------------- errors


def test_syntax_error_points_at_line_and_column():
    script = "SELECT 1;\n\nSELECT a,\n  (b + 1 FROM t"
    with pytest.raises(SQLError) as caught:
        parse_script(script)
    error = caught.value
    assert (error.line, error.column) == (4, 10)
    assert str(error) == ('Syntax error: Expected ")" but got keyword FROM at [4:10]\n'
                          "  (b + 1 FROM t\n"
                          "         ^")
    assert "Traceback" not in str(error)


def test_syntax_error_at_the_end_of_a_script():
    with pytest.raises(SQLError) as caught:
        parse_script("SELECT (1 + 2")
    assert str(caught.value).startswith('Syntax error: Expected ")" but got end of script at [1:14]')


@pytest.mark.parametrize("script, message, where", [
    ("SELEC 1", 'Syntax error: Unexpected identifier "SELEC"', (1, 1)),
    ("SELECT 1;\n  selec x FROM t", 'Syntax error: Unexpected identifier "selec"', (2, 3)),
    ("SELECT 1,\n FROM", "Syntax error: Expected table name, got end of script", (2, 6)),
    ("SELECT 1 FROM t WHERE", "Syntax error: Expected an expression after WHERE", (1, 22)),
])
def test_syntax_errors_speak_bigquery_not_the_parser(script, message, where):
    with pytest.raises(SQLError) as caught:
        parse_script(script)
    assert str(caught.value).startswith(message)
    assert (caught.value.line, caught.value.column) == where
    assert "<" not in str(caught.value).splitlines()[0]  # no <Token ...> or <class ...>


def test_create_schema_is_the_dataset(con):
    for script in ["CREATE SCHEMA ds1", "CREATE SCHEMA IF NOT EXISTS `p.ds2`"]:
        [statement] = parse_script(script)
        for sql in to_duckdb(statement.expression, con):
            con.execute(sql)
    schemas = {r[0] for r in con.execute("SELECT schema_name FROM information_schema.schemata").fetchall()}
    assert {"ds1", "ds2"} <= schemas


def test_unterminated_string_is_an_sql_error():
    with pytest.raises(SQLError, match="Syntax error"):
        parse_script("SELECT 'abc")


def test_unknown_table_is_named_at_its_place(con):
    [statement] = parse_script("SELECT a\nFROM `p.nowhere.sessions` AS s")
    with pytest.raises(SQLError) as caught:
        to_duckdb(statement.expression, con)
    text = str(caught.value)
    assert text.startswith("Not found: Table p.nowhere.sessions")
    assert (caught.value.line, caught.value.column) == (2, 6)


def test_unqualified_field_found_twice_is_ambiguous(con):
    con.execute("CREATE TABLE s AS SELECT 'PAGE' AS type, [{'type': 'EVENT', 'n': 1}] AS hits")
    [statement] = parse_script("SELECT n,\n       type\nFROM s, UNNEST(hits) AS h")
    with pytest.raises(SQLError) as caught:
        to_duckdb(statement.expression, con)
    assert str(caught.value).startswith("Column name type is ambiguous at [2:8]")
    # qualified, either is fine
    rows = run(con, "SELECT s.type, h.type AS hit_type, n FROM s, UNNEST(hits) AS h").fetchall()
    assert rows == [("PAGE", "EVENT", 1)]


def test_unknown_column_and_field_errors_have_places(con):
    con.execute("CREATE TABLE s AS SELECT 1 AS a, {'x': 2} AS rec")
    [statement] = parse_script("SELECT a,\n  rec.nope FROM s")
    with pytest.raises(SQLError, match=r"Field name nope does not exist in .* at \[2:7\]"):
        to_duckdb(statement.expression, con)
    [statement] = parse_script("SELECT a,\n  missing_column FROM s")
    with pytest.raises(SQLError) as caught:
        to_duckdb(statement.expression, con)
    assert "missing_column" in caught.value.message
    assert (caught.value.line, caught.value.column) == (2, 3)


def test_duckdb_errors_at_run_time_map_to_sql_errors(con):
    [statement] = parse_script("SELECT CAST(x AS INT64) AS n\nFROM UNNEST(['1', 'two']) AS x")
    [sql] = to_duckdb(statement.expression, con)
    with pytest.raises(duckdb.ConversionException) as caught:
        con.sql(sql).fetchall()
    error = duckdb_error(caught.value, statement.expression)
    assert isinstance(error, SQLError)
    assert "Conversion Error" in error.message and "two" in error.message
    assert "\nLINE" not in str(error)


def test_statements_not_supported_are_sql_errors(con):
    [statement] = parse_script("SELECT * FROM ML.CENTROIDS(MODEL m)")
    with pytest.raises(SQLError, match="ML functions must be replaced"):
        to_duckdb(statement.expression, con)
    [statement] = parse_script("CREATE MODEL m OPTIONS(model_type='kmeans') AS SELECT 1 AS x")
    with pytest.raises(SQLError, match="CREATE MODEL is not supported here"):
        to_duckdb(statement.expression, con)


def test_update_and_delete_map_the_target_to_its_schema(con):
    con.execute("CREATE SCHEMA ds; CREATE TABLE ds.t AS SELECT x, x * 10 AS y FROM range(1, 5) r(x)")
    for script in ["UPDATE `p.ds.t` SET y = 0 WHERE x > 2", "DELETE FROM ds.t WHERE x = 1"]:
        [statement] = parse_script(script)
        for sql in to_duckdb(statement.expression, con):
            con.execute(sql)
    assert con.execute("SELECT x, y FROM ds.t ORDER BY x").fetchall() == [(2, 20), (3, 0), (4, 0)]
