"""Customer tables (``recipe.kind: attributes``): ids repeated or missing, missing values under
``missing: error``, columns the recipe names that are not there, ordinal values outside their
levels, values that are not finite."""
from __future__ import annotations

import pytest

import segmint

from .conftest import (
    CUSTOMER_HEADER,
    LEVELS,
    assert_api_error,
    assert_user_error,
    customer_rows,
    customer_text,
)

ID, AGE, INCOME, REGION, EDUCATION, VISITS = range(len(CUSTOMER_HEADER))
RECIPE = {"kind": "attributes", "id_column": "CUST_ID", "ordinal": {"Education": LEVELS}}


def _with(row: int, index: int, value: str, rows=None):
    rows = [list(r) for r in (customer_rows() if rows is None else rows)]
    rows[row - 1][index] = value
    return rows


def _setup(case, rows, recipe=None, name="clients.csv", sep=","):
    data = case.write(name, customer_text(rows, sep=sep))
    return case.spec({"path": data.name}, recipe={**RECIPE, **(recipe or {})})


# --------------------------------------------------------------------------- through the CLI

def test_duplicate_ids_cli(case):
    rows = _with(7, ID, "C002")  # row 7 repeats row 3's id
    res = case.run("run", _setup(case, rows))
    line = assert_user_error(res, file="clients.csv", column="CUST_ID", contains=("C002",))
    assert "3" in line and "7" in line, line
    case.check()


def test_missing_id_cli(case):
    res = case.run("run", _setup(case, _with(5, ID, "")))
    assert_user_error(res, file="clients.csv", column="CUST_ID", row=5)
    case.check()


def test_missing_value_with_missing_error_cli(case):
    res = case.run("run", _setup(case, _with(4, INCOME, ""), recipe={"missing": "error"}))
    assert_user_error(res, file="clients.csv", column="Income", row=4)
    case.check()


def test_ordinal_value_outside_the_levels_cli(case):
    res = case.run("run", _setup(case, _with(6, EDUCATION, "Doctorate")))
    assert_user_error(res, file="clients.csv", column="Education", row=6, contains=("Doctorate",))
    case.check()


@pytest.mark.parametrize("via, value", [("cli", "inf"), ("api", "-inf"),
                                        ("api", "1e200")])
def test_non_finite_or_huge_value(case, via, value):
    case.fails(_setup(case, _with(9, INCOME, value)), via, kind=segmint.InputError,
               file="clients.csv", column="Income", row=9)
    case.check()


# --------------------------------------------------------------------------- through the API

@pytest.mark.parametrize("recipe, column", [
    ({"columns": {"Salary": "numeric"}}, "Salary"),
    ({"feature_columns": ["Age", "Height"]}, "Height"),
    ({"id_column": "client_ref"}, "client_ref"),
    ({"revenue": "Spend"}, "Spend"),
    ({"ordinal": {"Grade": ["A", "B"]}}, "Grade"),
], ids=["columns", "feature-columns", "id-column", "revenue", "ordinal"])
def test_recipe_names_a_column_that_is_not_there_api(case, recipe, column):
    spec = _setup(case, customer_rows(), recipe=recipe)
    case.snapshot()
    assert_api_error(segmint.run, spec, file="clients.csv", column=column)
    case.check()


def test_revenue_column_that_is_text_api(case):
    spec = _setup(case, customer_rows(), recipe={"revenue": "Region"})
    case.snapshot()
    assert_api_error(segmint.run, spec, file="clients.csv", column="Region")
    case.check()


def test_numeric_override_on_a_text_column_api(case):
    spec = _setup(case, customer_rows(), recipe={"columns": {"Region": "numeric"}})
    case.snapshot()
    assert_api_error(segmint.run, spec, file="clients.csv", column="Region", row=1)
    case.check()


@pytest.mark.parametrize("value", ["inf", "1e200"])
def test_non_finite_value_api(case, value):
    spec = _setup(case, _with(2, AGE, value))
    case.snapshot()
    assert_api_error(segmint.run, spec, kind=segmint.InputError, file="clients.csv",
                     column="Age", row=2)
    case.check()


def test_duplicate_ids_in_a_semicolon_file_api(case):
    rows = _with(12, ID, "C010")  # row 12 repeats row 11's id
    spec = _setup(case, rows, sep=";")
    case.snapshot()
    assert_api_error(segmint.run, spec, kind=segmint.InputError, file="clients.csv", column="CUST_ID")
    case.check()


def test_too_few_customers_for_the_grid_api(case):
    spec = _setup(case, customer_rows(1))
    case.snapshot()
    assert_api_error(segmint.run, spec, kind=segmint.SegmintError)
    case.check()


def test_nothing_left_to_cluster_api(case):
    rows = [[r[ID], "x", "y", "z", "Basic", "w"] for r in customer_rows()]
    spec = _setup(case, rows, recipe={"ordinal": {}, "columns": {"Age": "text", "Income": "text",
                                                                  "Region": "ignore",
                                                                  "Visits": "text",
                                                                  "Education": "ignore"}})
    case.snapshot()
    assert_api_error(segmint.run, spec, kind=segmint.SegmintError)
    case.check()


def test_predict_new_customers_with_an_unseen_ordinal_level_api(case):
    spec = _setup(case, customer_rows())
    run = segmint.run(spec)
    new = case.write("new.csv", customer_text(_with(2, EDUCATION, "Postdoc", customer_rows(3))))
    case.snapshot()
    assert_api_error(run.predict, str(new), file="new.csv", column="Education", row=2)
    case.check()


def test_markup_in_headers_and_values_is_escaped_in_the_report_api(case):
    script, img = "<script>alert(1)</script>", "<img src=x onerror=alert(2)>"
    header = [*CUSTOMER_HEADER[:3], img, *CUSTOMER_HEADER[4:]]
    rows = [[*r[:3], script if i % 3 == 0 else r[REGION], *r[4:]]
            for i, r in enumerate(customer_rows())]
    data = case.write("clients.csv", customer_text(rows, header=header))
    spec = case.spec({"path": data.name}, recipe=RECIPE)
    case.snapshot()
    run = segmint.run(spec)
    html = run.report_path.read_text(encoding="utf-8")
    assert script not in html and img not in html
    case.check(new_runs=1)


def test_bom_crlf_customer_table_accepted_api(case):
    data = case.write("clients.csv", b"\xef\xbb\xbf" + customer_text().replace("\n", "\r\n").encode())
    spec = case.spec({"path": data.name}, recipe=RECIPE)
    case.snapshot()
    run = segmint.run(spec)
    assert sorted(run.customers().index) == [f"C{i:03d}" for i in range(20)]
    case.check(new_runs=1)
