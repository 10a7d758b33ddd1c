"""The attributes recipe on small customer tables written for these tests (Wholesale-, Mall-,
CC GENERAL-, marketing_campaign- and bank-like), checked against pandas computed here."""
from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from segmint.errors import InputError
from segmint.recipes._table import FEATURE_INFO_COLUMNS
from segmint.recipes.attributes import (
    ID_NAMES,
    attributes_table,
    find_id_column,
    infer_column_types,
)
from segmint.spec import RecipeSpec

TABLES = Path(__file__).resolve().parents[1] / "fixtures" / "tables"
#: UCI Bank Marketing as the package bundles it (the same bytes as ../shared/data holds).
BANK_FULL = Path(str(resources.files("segmint") / "data" / "bank-full.csv.gz"))


def _read(name: str) -> pd.DataFrame:
    return pd.read_csv(TABLES / name, sep=";" if name.startswith("bank") else ",")


def _recipe(**options) -> RecipeSpec:
    return RecipeSpec(kind="attributes", **options)


def _info(table) -> pd.DataFrame:
    return table.info.set_index("column")


# --- the id -------------------------------------------------------------------------------------

def test_wholesale_has_no_id_so_customers_are_numbered_by_row():
    raw = _read("wholesale.csv")
    table = attributes_table(raw, _recipe(), where="wholesale.csv")
    assert table.ids.tolist() == [str(i) for i in range(1, 13)]
    assert table.ids.name == "customer"
    assert "Channel" in table.features  # the first column is a feature, not the id
    assert any(n.startswith("no id column found (looked for id, customer_id") and
               "numbered by row" in n and "set recipe.id_column" in n for n in table.notes)
    assert table.schema["id"] is None


def test_bank_age_is_not_the_id():
    table = attributes_table(_read("bank.csv"), _recipe(), where="bank.csv")
    assert table.ids.tolist()[:3] == ["1", "2", "3"]
    assert table.types["age"] == "numeric"
    assert table.frame["age"].tolist() == _read("bank.csv")["age"].astype(float).tolist()


def test_mall_id_is_customer_id_and_gender_stays_categorical():
    raw = _read("mall.csv")
    table = attributes_table(raw, _recipe(), where="mall.csv")
    assert table.ids.tolist() == raw["CustomerID"].astype(str).tolist()
    assert "CustomerID" not in table.frame.columns
    assert table.types["Gender"] == "categorical"  # two values, but not a yes/no pair
    assert str(table.frame["Gender"].dtype) == "string"
    assert _info(table).loc["CustomerID", "type"] == "id"
    assert bool(_info(table).loc["CustomerID", "inferred"]) is True


@pytest.mark.parametrize("header", ["CUST_ID", "CustomerID", "ID", "Id", "customer id",
                                    "Client-ID", "member_id"])
def test_id_found_by_name(header):
    assert find_id_column(["Age", header, "Spend"]) == header


def test_id_names_prefer_the_earlier_name_and_never_position():
    assert find_id_column(["customer", "ID"]) == "ID"
    assert find_id_column(["Channel", "Region"]) is None
    assert "cust_id" in ID_NAMES


def test_ids_are_strings_without_float_tails():
    raw = pd.DataFrame({"customer_id": [12346.0, 12347.0, 12348.5], "spend": [1.0, 2.0, 3.0]})
    table = attributes_table(raw, _recipe())
    assert table.ids.tolist() == ["12346", "12347", "12348.5"]
    raw = pd.DataFrame({"id": [" a1", "b2 ", "c3"], "spend": [1.0, 2.0, 3.0]})
    assert attributes_table(raw, _recipe()).ids.tolist() == ["a1", "b2", "c3"]


def test_missing_id_names_column_and_row():
    raw = pd.DataFrame({"CUST_ID": ["C1", None, "C3", " "], "spend": [1.0, 2.0, 3.0, 4.0]})
    with pytest.raises(InputError) as err:
        attributes_table(raw, _recipe(), where="cc.csv")
    assert err.value.column == "CUST_ID" and err.value.row == 2 and err.value.file == "cc.csv"
    assert "2 customers have no id; rows 2, 4" in str(err.value)


def test_duplicate_ids_are_listed_with_rows_and_count():
    raw = _read("cc_general.csv")
    raw.loc[5, "CUST_ID"] = raw.loc[0, "CUST_ID"]  # C20001 on rows 1 and 6
    raw.loc[[8, 10], "CUST_ID"] = raw.loc[2, "CUST_ID"]  # C20003 on rows 3, 9, 11
    with pytest.raises(InputError) as err:
        attributes_table(raw, _recipe(), where="cc.csv")
    message = str(err.value)
    assert err.value.column == "CUST_ID" and err.value.row == 1
    assert "2 ids appear more than once (5 rows)" in message
    assert "'C20001' rows 1, 6" in message and "'C20003' rows 3, 9, 11" in message


def test_duplicate_id_list_is_capped_at_ten():
    raw = pd.DataFrame({"id": [i // 2 for i in range(30)], "x": np.arange(30.0)})
    with pytest.raises(InputError) as err:
        attributes_table(raw, _recipe())
    message = str(err.value)
    assert "15 ids appear more than once (30 rows)" in message
    assert "'9' rows 19, 20" in message and "'10' rows" not in message
    assert "(15 ids in all)" in message


def test_recipe_id_column_must_exist():
    with pytest.raises(InputError) as err:
        attributes_table(_read("wholesale.csv"), _recipe(id_column="client"), where="w.csv")
    assert err.value.column == "client" and "'Channel'" in str(err.value)


def test_recipe_id_column_is_used_even_when_another_looks_like_an_id():
    raw = pd.DataFrame({"ID": [1, 1, 2], "account": ["x", "y", "z"], "spend": [1.0, 2.0, 3.0]})
    table = attributes_table(raw, _recipe(id_column="account"))
    assert table.ids.tolist() == ["x", "y", "z"]
    assert bool(_info(table).loc["account", "inferred"]) is False


# --- inferred types -----------------------------------------------------------------------------

def test_channel_and_region_are_categorical_codes_with_the_reason():
    table = attributes_table(_read("wholesale.csv"), _recipe())
    info = _info(table)
    for column, k in (("Channel", 2), ("Region", 3)):
        assert table.types[column] == "categorical"
        assert info.loc[column, "reason"].startswith(f"integer with {k} values")
        assert "treated as categorical codes" in info.loc[column, "reason"]
        assert f"set recipe.columns.{column}: numeric" in info.loc[column, "reason"]
        assert any(n.startswith(f"{column}: integer with {k} values") for n in table.notes)
    assert table.frame["Region"].tolist()[:3] == ["3", "3", "1"]
    assert all(table.types[c] == "numeric" for c in ("Fresh", "Milk", "Delicassen"))


def test_small_integers_within_code_levels_are_codes_unless_named_like_counts():
    raw = pd.DataFrame({"score_band": [0, 1, 2, 3, 1, 2], "Kidhome": [0, 1, 2, 0, 1, 0],
                        "Spend": [5, 7, 9, 11, 13, 15], "Tenure": [6, 8, 12, 12, 10, 9]})
    types = infer_column_types(raw)
    assert types["score_band"].type == "categorical"
    assert "all within 0..10" in types["score_band"].reason
    assert types["Kidhome"].type == "numeric" and "named like a count" in types["Kidhome"].reason
    assert types["Spend"].type == "numeric"
    assert types["Tenure"].type == "numeric"
    assert infer_column_types(raw, code_levels=2)["score_band"].type == "numeric"


def test_yes_no_columns_are_binary_with_the_level_that_is_one():
    raw = _read("bank.csv")
    table = attributes_table(raw, _recipe(), where="bank.csv")
    info = _info(table)
    for column in ("default", "housing", "loan", "y"):
        assert table.types[column] == "binary"
        assert "yes -> 1" in info.loc[column, "reason"]
        expected = (raw[column] == "yes").astype(float)
        assert table.frame[column].tolist() == expected.tolist()
        assert info.loc[column, "mean"] == pytest.approx(expected.mean())
        assert table.schema["binary"][column] == "yes"
    assert table.types["job"] == "categorical"


def test_binary_pairs_and_zero_one():
    raw = pd.DataFrame({"a": ["Y", "N", "Y", None], "b": ["false", "TRUE", "true", "false"],
                        "c": [0, 1, 1, 0], "d": [True, False, True, True],
                        "e": ["M", "F", "F", "M"]})
    table = attributes_table(raw, _recipe())
    assert {c: table.types[c] for c in "abcd"} == dict.fromkeys("abcd", "binary")
    assert table.frame["a"].tolist()[:3] == [1.0, 0.0, 1.0] and np.isnan(table.frame["a"].iloc[3])
    assert table.frame["b"].tolist() == [0.0, 1.0, 1.0, 0.0]
    assert table.frame["d"].tolist() == [1.0, 0.0, 1.0, 1.0]
    assert table.types["e"] == "categorical"


def test_marketing_dates_become_days_before_the_latest_date():
    raw = _read("marketing.csv")
    table = attributes_table(raw, _recipe(), where="marketing.csv")
    assert table.ids.tolist() == raw["ID"].astype(str).tolist()
    assert "Dt_Customer" not in table.frame.columns
    assert table.types["Dt_Customer_days"] == "numeric"
    dates = pd.to_datetime(raw["Dt_Customer"], dayfirst=True)
    expected = (dates.max() - dates).dt.days.astype(float)
    assert table.frame["Dt_Customer_days"].tolist() == expected.tolist()
    assert table.schema["dates"] == {"Dt_Customer": dates.max().date().isoformat()}
    assert table.schema["date_formats"] == {"Dt_Customer": "%d-%m-%Y"}
    info = _info(table)
    assert info.loc["Dt_Customer", "type"] == "date"
    assert f"became Dt_Customer_days, days before {dates.max().date()}" in \
        info.loc["Dt_Customer", "reason"]
    assert info.loc["Dt_Customer", "mean"] == pytest.approx(expected.mean())
    assert table.schema["sources"]["Dt_Customer_days"] == "Dt_Customer"


def test_reference_date_is_given():
    raw = _read("marketing.csv")
    table = attributes_table(raw, _recipe(), reference_date="2015-01-01")
    dates = pd.to_datetime(raw["Dt_Customer"], dayfirst=True)
    expected = (pd.Timestamp("2015-01-01") - dates).dt.days.astype(float)
    assert table.frame["Dt_Customer_days"].tolist() == expected.tolist()
    assert table.schema["dates"]["Dt_Customer"] == "2015-01-01"


@pytest.mark.parametrize("values, fmt", [
    (["2012-09-04", "2013-01-20", "2014-06-29"], "%Y-%m-%d"),
    (["4/9/2012", "1/20/2013", "6/29/2014"], "%m/%d/%Y"),
    (["04-09-2012", "20-01-2013", "29-06-2014"], "%d-%m-%Y"),
])
def test_date_formats(values, fmt):
    raw = pd.DataFrame({"id": ["a", "b", "c"], "joined": values})
    table = attributes_table(raw, _recipe())
    assert table.schema["date_formats"] == {"joined": fmt}
    dates = pd.to_datetime(pd.Series(values), format=fmt)
    assert table.frame["joined_days"].tolist() == (dates.max() - dates).dt.days.tolist()
    assert table.frame["joined_days"].iloc[1] == 525.0  # 2013-01-20 to 2014-06-29


def test_constant_column_is_ignored_with_a_note():
    table = attributes_table(_read("marketing.csv"), _recipe())
    info = _info(table)
    assert info.loc["Z_CostContact", "type"] == "ignore"
    assert "Z_CostContact" not in table.frame.columns
    assert "Z_CostContact: constant: every value is 3" in table.notes
    assert table.schema["columns"]["Z_CostContact"] == "ignore"
    assert table.types["Education"] == "categorical"
    assert table.types["Marital_Status"] == "categorical"
    assert table.types["Response"] == "binary" and table.types["Complain"] == "binary"
    assert table.types["Kidhome"] == "numeric"


def test_text_identifiers_and_numbers_stored_as_text():
    n = 20
    raw = pd.DataFrame({
        "email": [f"user{i}@example.com" for i in range(n)],
        "comment": [f"customer {i} says the delivery was late again this week" for i in range(n)],
        "balance": [f"{i * 10.5}" for i in range(n)],
        "plan": ["basic", "pro"] * 10,
        "score": [" 1", "2", "3", "4"] * 5,
    })
    table = attributes_table(raw, _recipe())
    info = _info(table)
    assert info.loc["email", "type"] == "ignore"
    assert "looks like an identifier" in info.loc["email", "reason"]
    assert info.loc["comment", "type"] == "text"
    assert info.loc["balance", "type"] == "numeric"
    assert info.loc["balance", "reason"].startswith("numbers stored as text")
    assert table.frame["balance"].tolist() == [i * 10.5 for i in range(n)]
    assert table.types["plan"] == "categorical"
    assert table.types["score"] == "categorical"  # codes 1..4 stored as text
    assert set(table.frame.columns) == {"balance", "plan", "score"}


def test_row_counter_column_is_ignored():
    raw = pd.DataFrame({"Unnamed: 0": range(12), "spend": np.linspace(1, 2, 12)})
    types = infer_column_types(raw)
    assert types["Unnamed: 0"].type == "ignore"
    assert "identifier" in types["Unnamed: 0"].reason


def test_infer_column_types_marks_the_id():
    types = infer_column_types(_read("cc_general.csv"))
    assert types["CUST_ID"].type == "id"
    assert types["TENURE"].type == "numeric"
    assert all(t.reason for t in types.values())


# --- declared types -----------------------------------------------------------------------------

def test_declared_types_override_inference():
    recipe = _recipe(columns={"Region": "numeric", "Channel": "binary", "Milk": "ignore"})
    table = attributes_table(_read("wholesale.csv"), recipe)
    info = _info(table)
    assert table.types["Region"] == "numeric"
    assert bool(info.loc["Region", "inferred"]) is False
    assert info.loc["Region", "reason"] == "set in recipe.columns"
    assert table.frame["Channel"].tolist() == (_read("wholesale.csv")["Channel"] == 2).astype(
        float).tolist()  # not yes/no-like: the later level, 2, is 1
    assert table.schema["binary"]["Channel"] == "2"
    assert "Milk" not in table.frame.columns


def test_declared_binary_takes_its_levels_from_the_data():
    raw = pd.DataFrame({"Gender": ["Male", "Female", "female", None],
                        "Subscribed": ["Yes", "no", "YES", "No"]})
    table = attributes_table(raw, _recipe(columns={"Gender": "binary", "Subscribed": "binary"}))
    assert table.frame["Gender"].tolist()[:3] == [1.0, 0.0, 0.0]  # Male is later in sort order
    assert table.frame["Subscribed"].tolist() == [1.0, 0.0, 1.0, 0.0]
    assert "Male -> 1" in _info(table).loc["Gender", "reason"]
    with pytest.raises(InputError, match="declared binary but holds 3 values"):
        attributes_table(pd.DataFrame({"g": ["a", "b", "c"]}), _recipe(columns={"g": "binary"}))


def test_ordinal_levels_become_ranks():
    recipe = _recipe(ordinal={"Education": ["Basic", "Graduation", "Master", "PhD"]})
    raw = _read("marketing.csv")
    table = attributes_table(raw, recipe)
    rank = {"Basic": 0.0, "Graduation": 1.0, "Master": 2.0, "PhD": 3.0}
    assert table.types["Education"] == "numeric"
    assert table.frame["Education"].tolist() == raw["Education"].map(rank).tolist()
    assert table.schema["ordinal"] == {"Education": ["Basic", "Graduation", "Master", "PhD"]}


def test_unknown_ordinal_level_names_column_row_value_and_levels():
    recipe = _recipe(ordinal={"Education": ["Graduation", "Master", "PhD"]})
    raw = _read("marketing.csv")
    with pytest.raises(InputError) as err:
        attributes_table(raw, recipe, where="m.csv")
    row = int(np.flatnonzero(raw["Education"] == "Basic")[0]) + 1
    assert err.value.column == "Education" and err.value.row == row
    assert "'Basic' is not one of the ordinal levels ['Graduation', 'Master', 'PhD']" in \
        str(err.value)


def test_declared_numeric_with_text_is_an_error_naming_rows():
    raw = pd.DataFrame({"id": ["a", "b", "c"], "x": ["1", "two", "3"]})
    with pytest.raises(InputError) as err:
        attributes_table(raw, _recipe(columns={"x": "numeric"}))
    assert err.value.column == "x" and err.value.row == 2 and "'two'" in str(err.value)


def test_infinite_values_are_an_error():
    raw = pd.DataFrame({"id": ["a", "b", "c"], "x": [1.0, np.inf, -np.inf]})
    with pytest.raises(InputError) as err:
        attributes_table(raw, _recipe(), where="t.csv")
    assert err.value.column == "x" and "2 infinite values; rows 2, 3" in str(err.value)


def test_unknown_columns_in_the_recipe_are_listed():
    with pytest.raises(InputError) as err:
        attributes_table(_read("wholesale.csv"), _recipe(feature_columns=["Fresh", "Fish"]))
    assert err.value.column == "Fish" and "'Delicassen'" in str(err.value)
    with pytest.raises(InputError):
        attributes_table(_read("wholesale.csv"), _recipe(columns={"Fish": "numeric"}))


def test_feature_columns_limit_the_features():
    table = attributes_table(_read("mall.csv"), _recipe(feature_columns=["Age", "Gender"]))
    assert table.features == ["Gender", "Age"]
    info = _info(table)
    assert info.loc["Annual Income (k$)", "type"] == "ignore"
    assert info.loc["Annual Income (k$)", "reason"] == "not in recipe.feature_columns"


def test_revenue_column():
    table = attributes_table(_read("marketing.csv"), _recipe(revenue="MntWines"))
    assert table.revenue == "MntWines" and "MntWines" in table.features
    kept = attributes_table(_read("marketing.csv"),
                            _recipe(revenue="MntWines", feature_columns=["Income"]))
    assert kept.revenue == "MntWines" and kept.features == ["Income"]
    assert "MntWines" in kept.frame.columns
    with pytest.raises(InputError, match="must be numeric"):
        attributes_table(_read("marketing.csv"), _recipe(revenue="Education"))
    with pytest.raises(InputError, match="not in the table"):
        attributes_table(_read("marketing.csv"), _recipe(revenue="MntGold"))
    assert attributes_table(_read("mall.csv"), _recipe()).revenue is None


# --- missing values -----------------------------------------------------------------------------

def test_impute_leaves_missing_values_and_counts_them():
    raw = _read("cc_general.csv")
    table = attributes_table(raw, _recipe(), where="cc.csv")
    info = _info(table)
    assert len(table) == len(raw)
    for column in ("MINIMUM_PAYMENTS", "CREDIT_LIMIT", "BALANCE"):
        assert info.loc[column, "nulls"] == raw[column].isna().sum()
        assert info.loc[column, "imputed"] == raw[column].isna().sum()
        assert info.loc[column, "count"] == raw[column].notna().sum()
        assert info.loc[column, "mean"] == pytest.approx(raw[column].mean())
        assert info.loc[column, "stddev"] == pytest.approx(raw[column].std())
        assert info.loc[column, "min"] == raw[column].min()
        assert info.loc[column, "max"] == raw[column].max()
        assert table.frame[column].isna().sum() == raw[column].isna().sum()
    assert "missing values left for preparation to impute: CREDIT_LIMIT 1, MINIMUM_PAYMENTS 2" \
        in table.notes


def test_drop_removes_rows_and_says_how_many():
    raw = _read("cc_general.csv")
    table = attributes_table(raw, _recipe(missing="drop"), where="cc.csv")
    keep = raw[["CREDIT_LIMIT", "MINIMUM_PAYMENTS"]].notna().all(axis=1)
    assert table.ids.tolist() == raw.loc[keep, "CUST_ID"].tolist()
    assert "dropped 3 of 12 rows with missing values: CREDIT_LIMIT 1, MINIMUM_PAYMENTS 2" \
        in table.notes
    assert not table.frame.isna().any().any()
    assert _info(table)["imputed"].sum() == 0


def test_drop_keeps_row_numbers_as_ids_when_there_is_no_id():
    raw = pd.DataFrame({"Region": [1, 2, 3, 1], "Fresh": [1.0, None, 3.0, 4.0]})
    table = attributes_table(raw, _recipe(missing="drop"))
    assert table.ids.tolist() == ["1", "3", "4"]


def test_error_names_the_first_column_and_its_rows():
    raw = _read("cc_general.csv")
    with pytest.raises(InputError) as err:
        attributes_table(raw, _recipe(missing="error"), where="cc.csv")
    rows = [int(i) + 1 for i in np.flatnonzero(raw["CREDIT_LIMIT"].isna())]
    assert err.value.file == "cc.csv" and err.value.column == "CREDIT_LIMIT"
    assert err.value.row == rows[0]
    assert f"{len(rows)} missing values (recipe.missing: error); rows {rows[0]}" in str(err.value)


def test_error_lists_at_most_ten_rows():
    raw = pd.DataFrame({"x": [np.nan] * 12 + [1.0, 2.0]})
    with pytest.raises(InputError) as err:
        attributes_table(raw, _recipe(missing="error"))
    assert "rows 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, ... (12 in all)" in str(err.value)


def test_missing_values_in_ignored_columns_do_not_count():
    raw = pd.DataFrame({"x": [1.0, 2.0, 3.0], "note": [None, "a", "a"]})
    table = attributes_table(raw, _recipe(missing="error"))
    assert table.features == ["x"]


# --- the report ---------------------------------------------------------------------------------

def test_feature_report_numbers_match_pandas():
    raw = _read("bank.csv")
    table = attributes_table(raw, _recipe())
    info = _info(table)
    assert list(table.info.columns) == list(FEATURE_INFO_COLUMNS)
    assert info.index.tolist() == raw.columns.tolist()  # one row per raw column
    assert info.loc["balance", "mean"] == pytest.approx(raw["balance"].mean())
    assert info.loc["balance", "stddev"] == pytest.approx(raw["balance"].std())
    assert info.loc["job", "distinct"] == raw["job"].nunique()
    shares = raw["job"].value_counts(normalize=True)
    first = f"{shares.index[0]} {shares.iloc[0]:.1%}"
    assert info.loc["job", "top_levels"].startswith(first)
    assert info.loc["job", "top_levels"].count("%") == min(5, len(shares))
    assert np.isnan(info.loc["job", "mean"])
    assert (table.info["became"] == "").all()
    assert table.info["inferred"].all()


def test_frame_dtypes():
    table = attributes_table(_read("marketing.csv"), _recipe())
    for column, kind in table.types.items():
        expected = "string" if kind == "categorical" else "float64"
        assert str(table.frame[column].dtype) == expected, column


# --- the schema (scoring) -----------------------------------------------------------------------

def test_schema_round_trip_applies_the_same_recipe():
    fitted = attributes_table(_read("marketing.csv"), _recipe(), where="marketing.csv")
    schema = json.loads(json.dumps(fitted.schema))  # it is stored as JSON
    new_raw = _read("marketing_new.csv")
    scored = attributes_table(new_raw, _recipe(), where="new.csv", schema=schema)
    assert scored.types == fitted.types
    assert scored.features == fitted.features
    assert scored.schema["dates"] == fitted.schema["dates"]
    reference = pd.Timestamp(fitted.schema["dates"]["Dt_Customer"])
    dates = pd.to_datetime(new_raw["Dt_Customer"], format="%d-%m-%Y")
    assert scored.frame["Dt_Customer_days"].tolist() == (reference - dates).dt.days.astype(
        float).tolist()  # the fitted reference, not the new data's latest date
    assert scored.ids.tolist() == ["11001", "11002", "11003", "11004"]
    assert "2n Cycle" in scored.frame["Education"].tolist()  # a new level is kept
    assert scored.frame["Income"].isna().sum() == 1
    assert not _info(scored)["inferred"].any()


def test_schema_keeps_codes_categorical_even_when_new_data_has_more_values():
    fitted = attributes_table(_read("wholesale.csv"), _recipe())
    new = pd.DataFrame({"Channel": [1, 2, 3], "Region": [1.0, 2.0, 3.0], "Fresh": [1, 2, 3],
                        "Milk": [1, 2, 3], "Grocery": [1, 2, 3], "Frozen": [1, 2, 3],
                        "Detergents_Paper": [1, 2, 3], "Delicassen": [1, 2, 3]})
    scored = attributes_table(new, _recipe(), schema=fitted.schema)
    assert scored.types == fitted.types
    assert scored.frame["Region"].tolist() == ["1", "2", "3"]


def test_schema_missing_feature_column_is_an_error():
    fitted = attributes_table(_read("marketing.csv"), _recipe())
    new = _read("marketing_new.csv").drop(columns=["Income", "Z_CostContact"])
    with pytest.raises(InputError) as err:
        attributes_table(new, _recipe(), where="new.csv", schema=fitted.schema)
    assert err.value.column == "Income" and err.value.file == "new.csv"


def test_schema_unknown_binary_level_is_an_error():
    fitted = attributes_table(_read("bank.csv"), _recipe())
    new = _read("bank.csv").head(3)
    new.loc[1, "loan"] = "unknown"
    with pytest.raises(InputError) as err:
        attributes_table(new, _recipe(), schema=fitted.schema)
    assert err.value.column == "loan" and err.value.row == 2
    assert "'unknown' is neither level" in str(err.value)


# --- bundled data -------------------------------------------------------------------------------

def test_bank_full_as_bundled():
    raw = pd.read_csv(BANK_FULL, sep=";")
    table = attributes_table(raw, _recipe(), where=BANK_FULL.name)
    assert len(table) == 45_211
    assert table.ids[0] == "1" and table.ids[-1] == "45211"  # no id: row numbers, not age
    assert any(n.startswith("no id column found") for n in table.notes)
    types = table.schema["columns"]
    for column in ("job", "marital", "education", "contact", "month", "poutcome"):
        assert types[column] == "categorical", column
    for column in ("default", "housing", "loan", "y"):
        assert types[column] == "binary", column
        assert table.frame[column].sum() == (raw[column] == "yes").sum()
    for column in ("age", "balance", "duration"):
        assert types[column] == "numeric", column
    info = _info(table)
    assert info.loc["balance", "mean"] == pytest.approx(raw["balance"].mean())
    assert info.loc["job", "top_levels"].startswith("blue-collar 21.5%, management 20.9%")
    assert info["nulls"].sum() == 0


def test_a_few_unreadable_dates_become_missing_with_a_note():
    values = [f"2013-0{m}-1{m}" for m in range(1, 10)] + ["soon"]
    table = attributes_table(pd.DataFrame({"joined": values}), _recipe())
    assert table.types["joined_days"] == "numeric"
    assert _info(table).loc["joined", "nulls"] == 1
    assert "joined: 1 values are not dates in format %Y-%m-%d (first 'soon'); rows 10; treated " \
        "as missing" in table.notes
    with pytest.raises(InputError) as err:  # declared dates with more unreadable values
        attributes_table(pd.DataFrame({"joined": values[:5] + ["soon"] * 5}),
                         _recipe(columns={"joined": "date"}))
    assert err.value.column == "joined" and err.value.row == 6


def test_schema_keeps_ordinal_levels():
    recipe = _recipe(ordinal={"Education": ["Basic", "Graduation", "Master", "PhD"]})
    fitted = attributes_table(_read("marketing.csv"), recipe)
    new = _read("marketing_new.csv")
    with pytest.raises(InputError, match="'2n Cycle' is not one of the ordinal levels"):
        attributes_table(new, _recipe(), schema=fitted.schema)
    scored = attributes_table(new.drop(index=2), _recipe(), schema=fitted.schema)
    assert scored.frame["Education"].tolist() == [2.0, 3.0, 1.0]  # Master, PhD, Graduation


def test_missing_tokens_in_memory_read_as_in_a_file(tmp_path):
    # pandas' CSV reader turns "n/a", "NA", "NULL", ... into NaN; a DataFrame given in memory
    # with the same texts must give the same table, not a text column
    raw = pd.DataFrame({"ID": [1, 2, 3, 4, 5, 6],
                        "spend": ["10.5", "n/a", "7", "NULL", "3.25", "12"],
                        "plan": ["a", "b", "NA", "a", "b", "a"]})
    path = tmp_path / "t.csv"
    raw.to_csv(path, index=False)
    from_file = attributes_table(pd.read_csv(path), _recipe(), where="t.csv")
    in_memory = attributes_table(raw, _recipe(), where="DataFrame")
    assert in_memory.types == from_file.types == {"spend": "numeric", "plan": "categorical"}
    assert in_memory.frame["spend"].isna().sum() == 2
    assert in_memory.frame["plan"].isna().sum() == 1
    pd.testing.assert_series_equal(in_memory.frame["spend"], from_file.frame["spend"])


def test_yyyymmdd_numbers_are_dates_when_named_or_declared():
    raw = pd.DataFrame({"ID": [1, 2, 3], "Dt_Customer": [20120904, 20140308, 20130821],
                        "code": [20120904, 20140308, 20130821], "spend": [1.0, 2.0, 3.0]})
    table = attributes_table(raw, _recipe())
    assert table.types["Dt_Customer_days"] == "numeric" and "code" in table.types
    assert table.frame["Dt_Customer_days"].tolist() == [550.0, 0.0, 199.0]  # days before 2014-03-08
    declared = attributes_table(raw, _recipe(columns={"code": "date"}))
    assert declared.frame["code_days"].tolist() == [550.0, 0.0, 199.0]


def test_transaction_lines_given_as_a_customer_table_get_a_hint():
    lines = pd.DataFrame({"customer_id": ["a", "a", "b", "b", "b", "c"],
                          "amount": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]})
    with pytest.raises(InputError, match="recipe.kind: transactions") as err:
        attributes_table(lines, _recipe())
    assert err.value.column == "customer_id" and err.value.row == 1


def test_slash_dates_that_fit_both_orders_say_so_and_follow_dayfirst():
    raw = pd.DataFrame({"ID": [1, 2, 3], "joined": ["03/01/2019", "11/01/2019", "05/02/2019"],
                        "spend": [1.0, 2.0, 3.0]})
    month_first = attributes_table(raw, _recipe())
    reason = _info(month_first).loc["joined", "reason"]
    assert "%m/%d/%Y" in reason and "source.dayfirst: true" in reason
    # month first: 3 Jan? no: March 1, November 1, May 2 -> days before 2019-11-01
    assert month_first.frame["joined_days"].tolist() == [245.0, 0.0, 183.0]
    day_first = attributes_table(raw, _recipe(), dayfirst=True)
    assert "%d/%m/%Y" in _info(day_first).loc["joined", "reason"]
    # 3 January, 11 January, 5 February -> days before 2019-02-05
    assert day_first.frame["joined_days"].tolist() == [33.0, 25.0, 0.0]
    unambiguous = attributes_table(raw.assign(joined=["13/01/2019", "11/01/2019", "05/02/2019"]),
                                   _recipe())
    assert "guess" not in _info(unambiguous).loc["joined", "reason"]
