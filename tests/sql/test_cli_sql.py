"""``segmint sql``: statements from -e, a script file or standard input, printed results, one
error line and exit 1 on a failing statement, --table registering export files."""
from __future__ import annotations

import os
import subprocess
import sys

import pandas as pd
import pytest
from typer.testing import CliRunner

import segmint.sql
from segmint.cli import app


def points() -> pd.DataFrame:
    """Six rows: two groups of three, far apart on x; the gold ones carry a note."""
    return pd.DataFrame({"id": [1, 2, 3, 4, 5, 6],
                         "x": [0.0, 1.0, 2.0, 20.0, 21.0, 22.0],
                         "y": [5.0, 6.0, 7.0, 5.0, 6.0, 7.0],
                         "plan": ["basic"] * 3 + ["gold"] * 3,
                         "note": [None, None, None, "renewed in May", "renewed in May", "new"]})


@pytest.fixture
def parquet(tmp_path):
    path = tmp_path / "data" / "points.parquet"
    path.parent.mkdir()
    points().to_parquet(path)
    return path


def sql(*args: str, input: str | None = None):
    return CliRunner().invoke(app, ["sql", *map(str, args)], input=input)


def test_execute_prints_every_column_of_a_query(tmp_path, parquet):
    db = tmp_path / "c.duckdb"
    result = sql(db, "--table", f"ds.raw={parquet}", "-e",
                 "CREATE TABLE ds.t AS SELECT * FROM ds.raw;\n"
                 "SELECT id, x, y, plan, note, x * 2 AS twice FROM ds.t WHERE id IN (3, 4) "
                 "ORDER BY id")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.split()[:1] == ["id"])
    assert lines[header].split() == ["id", "x", "y", "plan", "note", "twice"]
    assert lines[header + 1].split() == ["3", "2.0", "7.0", "basic", "NULL", "4.0"]
    assert lines[header + 2].split() == ["4", "20.0", "5.0", "gold", "renewed", "in", "May", "40.0"]
    assert "2 rows" in lines[header + 3]
    assert "CREATE ds.t done" in result.stdout


def test_a_query_without_rows_prints_its_columns_and_0_rows(tmp_path, parquet):
    result = sql("--table", f"ds.t={parquet}", "-e", "SELECT id, plan FROM ds.t WHERE x > 100")
    assert result.exit_code == 0, result.output
    lines = [line.strip() for line in result.stdout.splitlines()]
    assert lines[1].split() == ["id", "plan"] and lines[2].startswith("0 rows")


def test_max_rows_limits_the_printed_rows_and_says_how_many_more(tmp_path, parquet):
    result = sql("--table", f"ds.t={parquet}", "--max-rows", "2", "-e",
                 "SELECT id FROM ds.t ORDER BY id")
    assert result.exit_code == 0, result.output
    printed = [line.strip() for line in result.stdout.splitlines()]
    assert printed[printed.index("id") + 1:printed.index("id") + 3] == ["1", "2"]
    assert "6 rows, 4 more not shown (--max-rows)" in result.stdout


def test_a_model_made_and_queried_from_the_command_line(tmp_path, parquet):
    db = tmp_path / "m.duckdb"
    result = sql(db, "--table", f"ds.t={parquet}", "-e",
                 "CREATE MODEL ds.m OPTIONS(model_type='kmeans', num_clusters=2) AS "
                 "SELECT x FROM ds.t;\n"
                 "SELECT plan, COUNT(DISTINCT CENTROID_ID) AS k, COUNT(*) AS n "
                 "FROM ML.PREDICT(MODEL ds.m, TABLE ds.t) GROUP BY plan ORDER BY plan")
    assert result.exit_code == 0, result.output
    assert "Created model ds.m: k-means, 2 clusters" in result.stdout
    rows = [line.split() for line in result.stdout.splitlines()]
    assert ["basic", "1", "3"] in rows and ["gold", "1", "3"] in rows
    with segmint.sql.connect(db) as con:
        assert con.models()["model_name"].tolist() == ["m"]


def test_a_failing_statement_is_one_error_line_exit_1_and_the_earlier_ones_took_effect(
        tmp_path, parquet):
    db = tmp_path / "f.duckdb"
    script = ("CREATE TABLE ds.t AS SELECT * FROM ds.raw;\n"
              "CREATE VIEW ds.gold AS SELECT * FROM ds.t WHERE plan = 'gold';\n"
              "SELECT COUNT(*) FROM ds.nope;\n"
              "CREATE VIEW ds.never AS SELECT 1 AS one;\n")
    # a real process: what a user sees, a traceback included if one escaped
    done = subprocess.run([sys.executable, "-m", "segmint.cli", "sql", str(db), "--table",
                           f"ds.raw={parquet}", "-e", script], capture_output=True, text=True,
                          env={**os.environ, "COLUMNS": "200"}, timeout=120)
    assert done.returncode == 1, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Not found: Table ds.nope" in errors[0]
    assert "[3:22]" in errors[0]
    assert "Traceback" not in done.stderr + done.stdout
    assert "CREATE ds.gold done" in done.stdout
    with segmint.sql.connect(db) as con:
        assert con.execute("SELECT COUNT(*) AS n FROM ds.gold").n.tolist() == [3]
        with pytest.raises(segmint.SegmintError, match=r"ds\.never"):
            con.execute("SELECT * FROM ds.never")


def test_a_syntax_error_names_its_place(tmp_path):
    result = sql("-e", "SELECT 1 AS one;\nSELECT (2 AS two")
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)  # not an exception escaping the command
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Syntax error" in errors[0] and "[2:" in errors[0]


def test_table_paths_are_taken_from_the_working_directory(tmp_path, parquet, monkeypatch):
    # the script sits in another folder: its statements' paths are the script's, the command
    # line's are the shell's
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    (scripts / "count.sql").write_text("SELECT COUNT(*) AS n, SUM(x) AS sum_x FROM ds.t;\n")
    monkeypatch.chdir(tmp_path)
    result = sql("--table", "ds.t=data/points.parquet", "-f", scripts / "count.sql")
    assert result.exit_code == 0, result.output
    rows = [line.split() for line in result.stdout.splitlines()]
    assert ["n", "sum_x"] in rows and ["6", "66.0"] in rows  # 0+1+2+20+21+22


def test_a_script_from_standard_input(tmp_path, parquet):
    db = tmp_path / "in.duckdb"
    script = ("-- two statements on standard input\n"
              "CREATE TABLE ds.t AS SELECT * FROM ds.raw;\n"
              "SELECT plan, SUM(y) AS sum_y FROM ds.t GROUP BY plan ORDER BY plan;\n")
    result = sql(db, "--table", f"ds.raw={parquet}", input=script)
    assert result.exit_code == 0, result.output
    rows = [line.split() for line in result.stdout.splitlines()]
    assert ["basic", "18.0"] in rows and ["gold", "18.0"] in rows
    assert "-- line 3: SELECT plan, SUM(y)" in result.stdout


def test_a_bad_table_option_is_one_error_line(tmp_path):
    result = sql("--table", "no-equals-sign", "-e", "SELECT 1")
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        "error: --table takes NAME=FILES; got 'no-equals-sign'"]


def test_the_prompt_gathers_statements_until_a_semicolon(monkeypatch):
    from segmint.cli import _statements_from_prompt

    typed = iter(["SELECT 1", "  AS one;", "SELECT 2 AS two;", "", "never read;"])
    monkeypatch.setattr("builtins.input", lambda prompt="": next(typed))
    assert list(_statements_from_prompt()) == ["SELECT 1\n  AS one;", "SELECT 2 AS two;"]


def test_the_prompt_ends_at_end_of_input_with_what_was_typed(monkeypatch):
    from segmint.cli import _statements_from_prompt

    typed = iter(["SELECT 3 AS three"])

    def read(prompt: str = "") -> str:
        try:
            return next(typed)
        except StopIteration:
            raise EOFError from None

    monkeypatch.setattr("builtins.input", read)
    assert list(_statements_from_prompt()) == ["SELECT 3 AS three"]
