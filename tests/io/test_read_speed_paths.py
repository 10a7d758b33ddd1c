"""The fast paths that type label columns (customer, invoice, product, country) in
:mod:`segmint.io._readers`, checked against the code they replaced (kept below, verbatim, as
the reference) on small adversarial columns: the same text, dtype and missing values, and the
same error (message, file, column, row) or none.

The fast paths: a text column is parsed as numbers on its distinct values only; float ids are
written by Arrow; the stripped text is made once for both steps; the customer regex is spared
columns without a point.
"""
from __future__ import annotations

import random

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import segmint.io._readers as R
from segmint.errors import InputError

# --------------------------------------------------------------------------- the reference


def ref_text_for_parsing(values: pd.Series) -> pd.Series:
    text = values.astype("string").str.strip()
    return text.mask(text.isin(R._MISSING_TOKENS))


def ref_to_text(values: pd.Series, role: str) -> pd.Series:
    if R._is_number_dtype(values) and pd.api.types.is_float_dtype(values):
        floats = values.astype("float64")
        text = floats.astype("string")
        integral = floats.notna() & (floats % 1 == 0) & (floats.abs() < 2**53)
        text[integral] = floats[integral].astype("int64").astype("string")
        return text
    text = values.astype("string").str.strip()
    text = text.mask(text == "")
    if role == "customer":
        text = text.str.replace(r"^([+-]?\d+)\.0*$", r"\1", regex=True)
    return text


def ref_refuse(values: pd.Series, role: str, header: str, opened: R._Opened) -> None:
    if R._is_number_dtype(values):
        numbers = values.astype("float64")
    elif pd.api.types.is_bool_dtype(values) or pd.api.types.is_datetime64_any_dtype(values):
        return
    else:
        text = ref_text_for_parsing(values)
        parsed = pd.to_numeric(text.to_numpy(dtype=object, na_value=None), errors="coerce")
        numbers = pd.Series(parsed, index=values.index, dtype="float64")
        if (numbers.isna() & text.notna()).any():
            return
    with np.errstate(invalid="ignore"):
        measure = (numbers < 0) | (numbers % 1 != 0) & numbers.notna()
    if measure.any():
        raise R._bad_value(values, measure, role, header, opened, "an id or a name, not a measure",
                           f"; column {header!r} holds only numbers, some negative or fractional: "
                           f"map {role} to its own column in source.columns.{role}")


def ref_convert(values: pd.Series, role: str, header: str, opened: R._Opened) -> pd.Series:
    ref_refuse(values, role, header, opened)
    return ref_to_text(values, role)


# --------------------------------------------------------------------------- helpers

OPENED = R._Opened(where="sales.csv", headers=["Col"], load=lambda cols: pd.DataFrame(),
                   locate=lambda row: f"line {row + 1}")


def outcome(call, *args):
    """What a call gives: ("value", result) or ("error", type, message, file, column, row)."""
    try:
        return ("value", call(*args))
    except InputError as error:
        return ("error", "InputError", error.message, error.file, error.column, error.row)
    except Exception as error:  # noqa: BLE001 - the reference may fail otherwise too
        return ("error", type(error).__name__, str(error))


def assert_same_text(got: pd.Series, want: pd.Series) -> None:
    assert got.dtype == want.dtype, (got.dtype, want.dtype)
    pd.testing.assert_series_equal(got, want, check_exact=True)
    assert got.isna().tolist() == want.isna().tolist()
    assert got.astype(object).where(got.notna(), None).tolist() == \
        want.astype(object).where(want.notna(), None).tolist()
    assert type(got.array) is type(want.array)
    if hasattr(want.array, "_pa_array"):
        assert got.array._pa_array.type == want.array._pa_array.type


def assert_same(got, want) -> None:
    assert got[0] == want[0], (got, want)
    if got[0] == "error":
        assert got == want
    elif isinstance(want[1], pd.Series):
        assert_same_text(got[1], want[1])
    else:
        assert got[1] == want[1]


def check_column(values: pd.Series) -> None:
    """Every fast path against the reference on one column."""
    for role in ("customer", "invoice"):
        assert_same(outcome(R._to_text, values, role), outcome(ref_to_text, values, role))
        assert_same(outcome(R._refuse_measure_as_label, values, role, "Col", OPENED),
                    outcome(ref_refuse, values, role, "Col", OPENED))
        assert_same(outcome(R._convert, values, role, "Col", OPENED, False),
                    outcome(ref_convert, values, role, "Col", OPENED))
    assert_same(outcome(R._text_for_parsing, values), outcome(ref_text_for_parsing, values))


NUMBERS = ["1", "17850", "007", "+2", "17850.0", "17850.000", "+3.0", "1e5", "1E3", " 7 ",
           "\t8\n", "12345678901234567", "9223372036854775808", "18446744073709551615",
           "99999999999999999999999", "1e400", "inf", "Infinity", "iNf", " 1e5"]
MEASURES = ["-1", "2.5", "-0.5", "-17850.0", ".5", "5.", "1e-3", "-inf", "-9223372036854775809",
            "0.1"]
NOT_NUMBERS = ["85123A", "C536379", "United Kingdom", "a b", "é", "NAN", "-nan", "+nan",
               "1_000", "1,5", "0x10", "١٢٣", "1 2", "--1", ".", "e5", "True"]
MISSING = [*R._MISSING_TOKENS, "  ", " NA ", "\tnull", None, np.nan]
TEXT_DTYPES = [object, "str", "string", "string[python]", "string[pyarrow]", "category"]


def text_columns(tokens: list, dtypes: list = TEXT_DTYPES) -> list[pd.Series]:
    columns = []
    for dtype in dtypes:
        try:
            columns.append(pd.Series(tokens, dtype=dtype, name="Col"))
        except (TypeError, ValueError):  # e.g. a dtype that refuses None
            continue
    return columns


# --------------------------------------------------------------------------- text columns

CASES = {
    "ids": ["17850", "13047", "17850", "00001", None, "13047"],
    "ids as floats": ["17850.0", "13047.00", "17850.0", "", "nan", "17850"],
    "a negative": ["1", "2", "-3", "2", "1", "2"],
    "a fraction": ["4", "4", "4.5", " 4 ", None],
    "missing tokens": R._MISSING_TOKENS + [None, np.nan, "  "],
    "all missing": [None, None, np.nan],
    "empty strings": ["", "", " "],
    "inf": ["1", "inf", "2", "1"],
    "-inf is a measure": ["1", "-inf", "2", "1"],
    "NAN is no number": ["-1", "NAN", "-1"],
    "a letter": ["-1", "2.5", "85123A", "-1"],
    "invoices": ["536365", "C536379", "536365", "536366"],
    "uint64 beside a negative": ["18446744073709551615", "-1", "18446744073709551615"],
    "uint64 beside a negative and missing": ["18446744073709551615", None, "-1", "3"],
    "uint64 beside a fraction": ["18446744073709551615", "0.5", None],
    "beyond uint64": ["99999999999999999999999", "-1", "7"],
    "beyond int64 below": ["-9223372036854775809", "1"],
    "big ints with missing": ["12345678901234567", None, "12345678901234569", "12345678901234567"],
    "exponents": ["1e5", "-1e5", " 1e5 ", "1E-3"],
    "whitespace": [" 17850 ", "\t17850.0\n", "17850", "  "],
    "plus signs": ["+1", "+1.0", "+1.50", "-0"],
    "one value": ["-2.5"],
    "points without zeros": ["5.", "17.", "5.", "123"],
    "unicode digits": ["١٢٣", "١٢٣"],
    "underscores": ["1_000", "1_000", "-5"],
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_text_columns_match_the_reference(name):
    for values in text_columns(CASES[name]):
        check_column(values)


def test_random_text_columns_match_the_reference():
    pools = [NUMBERS, MEASURES, NOT_NUMBERS, MISSING]
    rng = random.Random(13)
    for _ in range(150):
        # Mostly numbers (the interesting columns), each value repeated a few times.
        weights = [rng.random() * 4, rng.random(), rng.random() * 0.3, rng.random()]
        size = rng.randint(1, 25)
        tokens = [rng.choice(rng.choices(pools, weights)[0]) for _ in range(size)]
        tokens = [rng.choice(tokens) for _ in range(rng.randint(size, 2 * size))]
        for values in text_columns(tokens, [object, "str", "string"]):
            check_column(values)


def test_the_known_answers():
    # Values the reference gives, written out: the comparison above must not pass on two
    # equal wrongs.
    got = R._convert(pd.Series([" 17850.0 ", None, "nan", "00001", "17850"], dtype="str"),
                     "customer", "Col", OPENED, False)
    assert got.dtype == pd.StringDtype("pyarrow")
    assert got.tolist() == ["17850", pd.NA, "nan", "00001", "17850"]
    got = R._convert(pd.Series(["1.0", "2.00"], dtype=object), "invoice", "Col", OPENED, False)
    assert got.tolist() == ["1.0", "2.00"]  # only customer loses its ".0"
    got = R._to_text(pd.Series(["5.", " 12. ", "1.5", "x.0", "-3.00", "4"], dtype="str"),
                     "customer")
    assert got.tolist() == ["5", "12", "1.5", "x.0", "-3", "4"]
    with pytest.raises(InputError) as caught:
        R._convert(pd.Series(["1", "2", "2", "-3", "2", "-1"], dtype="str"), "customer", "Col",
                   OPENED, False)
    error = caught.value
    assert (error.file, error.column, error.row) == ("sales.csv", "Col", 4)
    assert error.message == ("customer must be an id or a name, not a measure, got '-3' "
                             "(line 5 of the file; 1 more bad value in this column); column "
                             "'Col' holds only numbers, some negative or fractional: map "
                             "customer to its own column in source.columns.customer")
    # inf parses and is no whole number: a measure. NAN parses to nothing: labels.
    with pytest.raises(InputError) as caught:
        R._refuse_measure_as_label(pd.Series(["1", "inf", "1"], dtype="str"), "invoice", "Col",
                                   OPENED)
    assert caught.value.row == 2 and "got 'inf'" in caught.value.message
    assert R._refuse_measure_as_label(pd.Series(["-1", "NAN", "-1"], dtype="str"), "invoice",
                                      "Col", OPENED) is None


def test_a_label_column_is_parsed_on_its_distinct_values(monkeypatch):
    sizes: list[int] = []
    to_numeric = pd.to_numeric

    def spy(arg, *args, **kwargs):
        sizes.append(len(arg))
        return to_numeric(arg, *args, **kwargs)

    monkeypatch.setattr(pd, "to_numeric", spy)
    invoices = pd.Series([f"{536365 + i // 20}" for i in range(2000)] + [None], dtype="str")
    R._refuse_measure_as_label(invoices, "invoice", "Col", OPENED)
    assert sizes == [101]  # 100 invoices and the missing one, not 2001 lines
    sizes.clear()
    with pytest.raises(InputError) as caught:
        R._refuse_measure_as_label(pd.concat([invoices, pd.Series(["-5"], dtype="str")],
                                             ignore_index=True), "invoice", "Col", OPENED)
    assert caught.value.row == 2002
    assert sizes == [102, 2002]  # undecided on the distinct values: the reference decides


# --------------------------------------------------------------------------- number columns

FLOATS = [17850.0, np.nan, 1e16, -0.0, 0.0, 2.5, np.inf, -np.inf, 2.0**53, 2.0**53 - 1,
          -(2.0**53) + 1, -5.0, 0.1 + 0.2, 1e-300, 123456789012.0, 1e300, 5e-324]


@pytest.mark.parametrize("dtype", ["float64", "float32", "Float64", "double[pyarrow]"])
def test_float_columns_match_the_reference(dtype):
    rng = random.Random(7)
    for tokens in [FLOATS, [17850.0, 17850.0, np.nan], [np.nan, np.nan], [1.0], [],
                   *([rng.choice(FLOATS) for _ in range(rng.randint(1, 12))]
                     for _ in range(60))]:
        with np.errstate(over="ignore"):  # 1e300 as float32 is inf
            values = pd.Series(tokens, dtype=dtype, name="Col")
        check_column(values)


def test_float_ids_as_text():
    got = R._to_text(pd.Series(FLOATS, name="Col"), "customer")
    assert got.dtype == pd.StringDtype("pyarrow") and got.name == "Col"
    assert got.tolist() == ["17850", pd.NA, "1e+16", "0", "0", "2.5", "inf", "-inf",
                            "9007199254740992.0", "9007199254740991", "-9007199254740991",
                            "-5", "0.30000000000000004", "1e-300", "123456789012", "1e+300",
                            "5e-324"]


@pytest.mark.parametrize("dtype", ["int64", "int32", "uint8", "uint64", "Int64", "bool",
                                   "datetime64[ns]", "int64[pyarrow]"])
def test_other_columns_match_the_reference(dtype):
    columns = {
        "int64": [17850, -3, 0, 2**62, -(2**63)],
        "int32": [1, -1, 7],
        "uint8": [0, 255, 7],
        "uint64": [2**64 - 1, 0, 17850],
        "Int64": [17850, None, -2],
        "bool": [True, False, True],
        "datetime64[ns]": ["2010-12-01 08:26", "2011-01-01", None],
        "int64[pyarrow]": [1, None, 17850],
    }
    check_column(pd.Series(columns[dtype], dtype=dtype, name="Col"))
    if dtype in ("int64", "uint64"):
        got = R._to_text(pd.Series(columns[dtype], dtype=dtype), "customer")
        assert got.tolist() == [str(v) for v in columns[dtype]]


def test_a_slice_of_the_bundled_transactions_matches_the_reference():
    path = R.Path(R.__file__).parents[1] / "data" / "online_retail.parquet"
    import pyarrow.parquet as pq

    table = pq.read_table(path, columns=["InvoiceNo", "StockCode", "CustomerID", "Country"])
    raw = table.slice(0, 20_000).to_pandas()
    for header, role in [("InvoiceNo", "invoice"), ("StockCode", "product"),
                         ("CustomerID", "customer"), ("Country", "country")]:
        for values in (raw[header], raw[header].astype(object)):
            got = outcome(R._convert, values, role, header, OPENED, False)
            assert_same(got, outcome(ref_convert, values, role, header, OPENED))
    assert R._convert(raw["CustomerID"], "customer", "CustomerID", OPENED,
                      False).iloc[0] == "17850"
    assert pa.types.is_large_string(R._convert(raw["CustomerID"], "customer", "CustomerID",
                                               OPENED, False).array._pa_array.type)
