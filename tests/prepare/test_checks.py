"""check_matrix: a float64 matrix, or an InputError naming the column and rows."""

import numpy as np
import pandas as pd
import pytest

from segmint.errors import InputError
from segmint.prepare._checks import check_matrix, locate_nonfinite


def test_clean_matrix_comes_back_as_float64_c_ordered():
    X = np.asfortranarray(np.arange(6, dtype=np.int64).reshape(3, 2))
    out = check_matrix(X)
    assert out.dtype == np.float64 and out.flags.c_contiguous
    np.testing.assert_array_equal(out, [[0, 1], [2, 3], [4, 5]])
    same = np.ones((4, 2))
    assert check_matrix(same) is same  # already right: not copied


def test_nan_names_the_column_by_name_and_rows_from_1():
    X = np.ones((10, 3))
    X[[3, 7], 1] = np.nan
    with pytest.raises(InputError) as err:
        check_matrix(X, ["recency_days", "frequency", "monetary"])
    assert err.value.column == "frequency"
    assert str(err.value) == (
        "column 'frequency': prepared matrix holds 2 non-finite values (NaN or inf): rows 4, 8")


def test_inf_in_a_dataframe_names_its_column_and_other_columns():
    df = pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [1.0, np.inf, -np.inf], "c": [np.nan, 1.0, 1.0]})
    with pytest.raises(InputError) as err:
        check_matrix(df, what="customer table")
    assert err.value.column == "b"
    assert err.value.message == (
        "customer table holds 3 non-finite values (NaN or inf): rows 2, 3; also in columns 'c'")


def test_many_rows_are_cut_at_five():
    X = np.zeros((50, 1))
    X[::7] = np.nan
    eight = r"holds 8 non-finite values \(NaN or inf\): rows 1, 8, 15, 22, 29, \.\.\.$"
    with pytest.raises(InputError, match=eight):
        check_matrix(X, ["spend"])


def test_non_numeric_value_names_its_column_and_row():
    df = pd.DataFrame({"a": [1.0, 2.0], "segment": ["7", "gold"]})
    with pytest.raises(InputError) as err:
        check_matrix(df)
    assert err.value.column == "segment"
    assert err.value.message == "prepared matrix holds a value that is not a number: 'gold' in row 2"
    with pytest.raises(InputError) as err:
        check_matrix(np.array([[1, "x"]], dtype=object), ["n", "label"])
    assert err.value.column == "label"


def test_dataframe_missing_values_are_reported_as_non_finite():
    df = pd.DataFrame({"n": pd.array([1, None, 3], dtype="Int64")})
    with pytest.raises(InputError, match="1 non-finite value .*: row 2$") as err:
        check_matrix(df)
    assert err.value.column == "n"


@pytest.mark.parametrize("X, message", [
    (np.zeros(3), "prepared matrix must be 2-D (rows x columns), got 1-D"),
    (np.zeros((0, 3)), "prepared matrix is empty: 0 rows, 3 columns"),
    (np.ones((2, 2)) * 1j, "prepared matrix holds a value that is not a number: 1j in row 1"),
])
def test_shape_and_kind(X, message):
    with pytest.raises(InputError) as err:
        check_matrix(X)
    assert err.value.message == message


def test_overflowing_sum_is_not_a_non_finite_value():
    X = np.full((4, 2), 1e308)
    assert locate_nonfinite(X) is None
    assert check_matrix(X) is X
