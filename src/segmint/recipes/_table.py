"""The customer table: what every recipe hands to preparation."""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import pandas as pd

__all__ = ["CustomerTable", "PREPARED_TYPES", "FEATURE_INFO_COLUMNS"]

#: The types a column of ``CustomerTable.frame`` has once a recipe is done with it. Ordinal
#: and date columns arrive as numbers (level rank; days since / tenure), text and ignored
#: columns are not in the frame.
PREPARED_TYPES = ("numeric", "binary", "categorical")

#: The feature report's columns (like BigQuery ML's ML.FEATURE_INFO, plus what segmint did):
#: one row per source column. ``became`` is filled by preparation (the prepared columns it
#: turned into, or why none).
FEATURE_INFO_COLUMNS = (
    "column", "type", "inferred", "reason", "count", "nulls", "imputed", "distinct",
    "min", "max", "mean", "stddev", "top_levels", "became",
)


@dataclass
class CustomerTable:
    """One row per customer.

    Attributes
    ----------
    frame : pandas.DataFrame
        Index ``customer`` (string ids, unique); one column per feature, plus the revenue
        column when it is kept for the profile but not clustered. Numeric and binary columns
        are float64 (binary: 0/1), categorical columns pandas ``string``. Missing values are
        ``NaN`` / ``<NA>`` only where the missing-value policy is ``impute`` (preparation fills
        them); under ``drop`` and ``error`` there are none.
    types : dict
        Column -> one of :data:`PREPARED_TYPES`, for every column in ``features``.
    features : list of str
        The columns that are clustered, in order.
    revenue : str or None
        The column of ``frame`` holding each customer's total spend; None when the recipe
        knows none (then no revenue share is shown).
    info : pandas.DataFrame or None
        The feature report, columns :data:`FEATURE_INFO_COLUMNS`.
    notes : list of str
        What the recipe inferred or did, in words ("Region: integer with 3 values, treated as
        categorical codes", "12 rows dropped for missing values").
    source : dict
        What was read (the reader's record: file, rows, sha256, columns).
    lines : int or None
        Raw rows read (transaction lines, or table rows).
    outliers : dict or None
        How outliers were looked for and how many were found (see
        :mod:`segmint.prepare.outliers`); None when they were not.
    schema : dict
        What scoring needs to apply this recipe to new data the same way (column types as
        fitted, ordinal levels, date reference); JSON-serialisable.
    """

    frame: pd.DataFrame
    types: dict[str, str]
    features: list[str]
    revenue: str | None = None
    info: pd.DataFrame | None = None
    notes: list[str] = field(default_factory=list)
    source: dict[str, Any] = field(default_factory=dict)
    lines: int | None = None
    schema: dict[str, Any] = field(default_factory=dict)
    outliers: dict[str, Any] | None = None  # method, contamination, mode, count (when searched)

    def __post_init__(self) -> None:
        missing = [c for c in self.features if c not in self.frame.columns]
        if missing:
            raise ValueError(f"features not in the table: {missing}")
        untyped = [c for c in self.features if self.types.get(c) not in PREPARED_TYPES]
        if untyped:
            raise ValueError(f"features without a type in {PREPARED_TYPES}: {untyped}")
        if self.revenue is not None and self.revenue not in self.frame.columns:
            raise ValueError(f"revenue column {self.revenue!r} not in the table")

    def __len__(self) -> int:
        return len(self.frame)

    @property
    def ids(self) -> pd.Index:
        return self.frame.index

    def subset(self, keep: Any) -> CustomerTable:
        """The same table with only the rows where ``keep`` (a boolean array) holds."""
        return replace(self, frame=self.frame[keep], notes=list(self.notes))
