"""Checks of the matrix a clustering fits, with errors that say where the problem is.

Two callers, two kinds of error: ``check_matrix`` is for segmint's own steps
(a :class:`~segmint.errors.InputError` naming the column by name and rows
from 1), ``locate_nonfinite`` also serves the grid engine, whose
``ValueError`` names column and row indices as scikit-learn's arrays do.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from segmint.errors import InputError

__all__ = ["NonFinite", "check_matrix", "locate_nonfinite"]

# rows (and further columns) an error message lists at most
_SHOWN = 5


@dataclass(frozen=True)
class NonFinite:
    """Where a matrix holds NaN or inf: the first such column and its first rows (0-based)."""

    count: int  # non-finite cells in the whole matrix
    column: int  # the first column holding one
    column_count: int  # non-finite cells in that column
    rows: list[int]  # that column's first rows holding one, at most 5
    other_columns: list[int]  # the further columns holding one

    def message(self, name: str) -> str:
        """The finding in indices from 0, as for an array.

        >>> NonFinite(3, 2, 3, [4, 17, 90], []).message("X")
        'X holds 3 non-finite values (NaN or inf): column 2, rows [4, 17, 90]'
        """
        text = (
            f"{name} holds {self.count} non-finite value{'s' if self.count > 1 else ''} "
            f"(NaN or inf): column {self.column}, rows [{_listed(self.rows, self.column_count)}]"
        )
        if self.other_columns:
            shown = self.other_columns[:_SHOWN]
            text += f"; also columns [{_listed(shown, len(self.other_columns))}]"
        return text


def locate_nonfinite(X: np.ndarray) -> NonFinite | None:
    """Where the 2-D float array ``X`` holds NaN or inf; None if nowhere.

    One sum over ``X`` decides the common case (any NaN or inf makes the
    sum non-finite); only then are cells tested one by one.

    Examples
    --------
    >>> X = np.array([[0.0, 1.0], [2.0, np.nan], [np.inf, np.nan]])
    >>> locate_nonfinite(X)
    NonFinite(count=3, column=0, column_count=1, rows=[2], other_columns=[1])
    >>> locate_nonfinite(X[:2, :1]) is None
    True
    """
    with np.errstate(over="ignore", invalid="ignore"):
        if np.isfinite(X.sum()):
            return None
    bad = ~np.isfinite(X)
    per_column = bad.sum(axis=0)
    columns = np.flatnonzero(per_column)
    if columns.size == 0:  # the sum overflowed; every value is finite
        return None
    first = int(columns[0])
    return NonFinite(
        count=int(per_column.sum()),
        column=first,
        column_count=int(per_column[first]),
        rows=np.flatnonzero(bad[:, first])[:_SHOWN].tolist(),
        other_columns=columns[1:].tolist(),
    )


def _listed(values: Sequence[object], total: int) -> str:
    """'4, 17, 90' or '4, 17, 90, 91, 95, ...' when there are more than shown."""
    return ", ".join(str(v) for v in values) + (", ..." if total > len(values) else "")


def check_matrix(X: Any, columns: list[str] | None = None, what: str = "prepared matrix") -> np.ndarray:
    """``X`` as a float64, C-contiguous 2-D array, or an InputError that says where it is not.

    Parameters
    ----------
    X : array-like or DataFrame
        One row per customer, one numeric column per feature.
    columns : list of str, optional
        The columns' names, for error messages; a DataFrame's own names by
        default, else ``column 0``, ``column 1``, ...
    what : str
        What ``X`` is, for error messages.

    Returns
    -------
    numpy.ndarray
        float64, C-contiguous, (rows, columns); ``X`` itself when it already is one.

    Raises
    ------
    InputError
        ``X`` is not 2-D, has no rows or no columns, or a column holds a
        value that is not a number, NaN or inf; ``column`` is that column's
        name and the message lists the first such rows, counted from 1.

    Examples
    --------
    >>> check_matrix([[1, 2], [3, 4]]).dtype
    dtype('float64')
    >>> check_matrix([[1.0, 2.0], [3.0, float("nan")]], ["recency", "spend"], "X")
    Traceback (most recent call last):
    ...
    segmint.errors.InputError: column 'spend': X holds 1 non-finite value (NaN or inf): row 2
    """
    if columns is None and hasattr(X, "columns"):
        columns = [str(c) for c in X.columns]
    arr = _as_float(X, columns, what)
    if arr.ndim != 2:
        raise InputError(f"{what} must be 2-D (rows x columns), got {arr.ndim}-D")
    n, d = arr.shape
    if n == 0 or d == 0:
        raise InputError(f"{what} is empty: {n} rows, {d} columns")
    if columns is not None and len(columns) != d:
        raise ValueError(f"{len(columns)} column names for {d} columns")
    found = locate_nonfinite(arr)
    if found is not None:
        rows = [r + 1 for r in found.rows]
        message = (
            f"{what} holds {found.count} non-finite value{'s' if found.count > 1 else ''} "
            f"(NaN or inf): {'rows' if found.column_count > 1 else 'row'} "
            f"{_listed(rows, found.column_count)}"
        )
        if found.other_columns:
            others = [repr(_name(columns, j)) for j in found.other_columns[:_SHOWN]]
            message += f"; also in columns {_listed(others, len(found.other_columns))}"
        raise InputError(message, column=_name(columns, found.column))
    return np.ascontiguousarray(arr, dtype=np.float64)


def _name(columns: list[str] | None, j: int) -> str:
    return columns[j] if columns is not None else f"column {j}"


def _as_float(X: Any, columns: list[str] | None, what: str) -> np.ndarray:
    """X as a float64 array (any shape); a value that is no number names its column."""
    try:
        if hasattr(X, "to_numpy") and hasattr(X, "columns"):  # a DataFrame: <NA> is NaN
            return X.to_numpy(dtype=np.float64, na_value=np.nan)
        arr = np.asarray(X)
        if arr.dtype.kind in "biuf":
            return arr.astype(np.float64, copy=False)
        if arr.dtype.kind in "OUS":
            return arr.astype(np.float64)
    except (TypeError, ValueError):
        pass
    # not numbers somewhere: find the first column and row
    if hasattr(X, "iloc") and hasattr(X, "columns"):
        by_column = (X.iloc[:, j] for j in range(X.shape[1]))
    else:
        table = np.asarray(X, dtype=object)
        if table.ndim != 2:
            raise InputError(f"{what} must be 2-D (rows x columns), got {table.ndim}-D")
        by_column = (table[:, j] for j in range(table.shape[1]))
    for j, values in enumerate(by_column):
        for i, value in enumerate(values):
            if not _is_number(value):
                raise InputError(
                    f"{what} holds a value that is not a number: {value!r} in row {i + 1}",
                    column=_name(columns, j),
                )
    raise InputError(f"{what} holds values that are not numbers")


def _is_number(value: object) -> bool:
    """True for a real number, a numeric string, or a missing value (None, NaN, <NA>)."""
    if value is None or isinstance(value, (bool, np.bool_)):
        return True
    if isinstance(value, (complex, np.complexfloating)):
        return False
    try:
        float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        import pandas as pd

        try:
            return bool(pd.isna(value))
        except (TypeError, ValueError):
            return False
    return True
