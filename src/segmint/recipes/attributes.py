"""A customer table as it is (one row per customer) -> a typed :class:`CustomerTable`.

CRM exports, Mall Customers, UCI Wholesale customers, CC GENERAL, marketing_campaign and the
UCI bank clients are already one row per customer; what they need is an id and a type for
every column. This recipe

- finds the id by name (``CustomerID``, ``CUST_ID``, ``ID``, ...), never by position, and
  numbers the customers by row when there is none;
- infers each column's type (numeric, categorical codes, yes/no binary, dates, free text,
  constant or identifier-like columns to ignore), each with a reason the feature report shows,
  unless ``recipe.columns`` sets it;
- converts: dates to days before a reference date, ordinal levels to ranks, binary to 0/1,
  categoricals to pandas ``string``;
- applies the missing-value policy (``impute`` leaves them for preparation, ``drop``,
  ``error``);
- records a schema so scoring applies the same recipe to new data without re-inferring.

Row numbers in errors and notes are 1-based rows of the raw table.
"""
from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from segmint.errors import InputError
from segmint.io import LARGEST_VALUE
from segmint.recipes._table import FEATURE_INFO_COLUMNS, CustomerTable
from segmint.spec import RecipeSpec

__all__ = ["ID_NAMES", "ColumnType", "attributes_table", "find_id_column",
           "infer_column_types"]

log = logging.getLogger(__name__)

#: Header names taken as the customer id, in order of preference. A header matches when it is
#: equal ignoring case, spaces, underscores and dashes ("CUST_ID", "CustomerID", "Id").
ID_NAMES = ("id", "customer_id", "customerid", "cust_id", "client_id", "clientid", "user_id",
            "member_id", "account_id", "customer", "customer_number", "customer_no",
            "customer_ref", "customer_key", "client_ref", "client_key", "client_no",
            "client_number", "member_number", "account_number")

#: Two-valued columns read as binary (case-insensitive); the first level of each pair is 1.
_BINARY_PAIRS = (("yes", "no"), ("y", "n"), ("true", "false"), ("t", "f"), ("1", "0"))
_ONES = {one for one, _ in _BINARY_PAIRS}

#: Name words that mark a small integer column as codes (Region, Channel, store_type, ...).
_CODE_WORDS = {"region", "channel", "code", "codes", "id", "type", "category", "cat", "class",
               "segment", "group", "cluster", "status", "kind", "tier", "zone", "area", "sector",
               "division", "branch", "state", "country", "city", "gender", "sex"}
#: Name words (or fragments) that mark a small integer column as a count, kept a number
#: (Kidhome, Teenhome, NumOfProducts, NumDealsPurchases, TENURE).
_COUNT_WORDS = {"num", "number", "count", "cnt", "qty", "quantity", "total", "visits",
                "purchases", "products", "items", "orders", "days", "months", "years", "tenure",
                "age", "children"}
_COUNT_FRAGMENTS = ("kid", "teen", "child", "count", "num")

#: Formats tried on text that looks like dates; on a tie the earlier wins (day-first for
#: dashes as in marketing_campaign's 04-09-2012, month-first for slashes as in 4/9/2012).
_DATE_FORMATS = ("%Y-%m-%d", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M",
                 "%Y/%m/%d", "%d-%m-%Y", "%m-%d-%Y", "%d-%m-%Y %H:%M", "%m/%d/%Y", "%d/%m/%Y",
                 "%m/%d/%Y %H:%M", "%d/%m/%Y %H:%M", "%d.%m.%Y")
_DATE_LIKE = re.compile(r"^\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}([ T]\d{1,2}:\d{2}(:\d{2})?)?$")
#: Share of present values that must parse for a text column to be taken as dates; the rest
#: become missing (with a note). A declared date column with more unparseable values is an error.
_DATE_SHARE = 0.9
#: a text column is numeric, its other values missing, when at least this share are numbers
_MIXED_NUMBER_SHARE = 0.95

_USED_TYPES = ("numeric", "categorical", "binary", "ordinal", "date")
_LIST = 10  # rows / ids an error lists at most


class ColumnType(NamedTuple):
    """A column's type and why (what :func:`infer_column_types` returns per column)."""

    type: str
    reason: str


@dataclass
class _Plan:
    """How one raw column is converted: its type plus what the conversion needs."""

    type: str
    reason: str
    inferred: bool = True
    date_format: str | None = None
    binary_one: str | None = None  # the level (as text) that becomes 1
    binary_zero: str | None = None
    levels: list[Any] | None = None  # ordinal levels, low to high
    note: bool = False  # worth a line in the notes
    dayfirst: bool = False  # a declared date: prefer day-first formats (source.dayfirst)
    lenient: bool = False  # numeric: the few values that are not numbers are read as missing


def _normal_name(name: str) -> str:
    return re.sub(r"[\s_\-]+", "", str(name)).lower()


def _words(name: str) -> set[str]:
    # "NumWebVisitsMonth" -> num, web, visits, month; "CUST_ID" -> cust, id
    return {w.lower() for w in re.findall(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+", str(name))}


def find_id_column(columns: Iterable[str]) -> str | None:
    """The column that holds the customer id, found by name only (never by position).

    A header matches a name of :data:`ID_NAMES` exactly, ignoring case, or ignoring case,
    spaces, underscores and dashes; names earlier in :data:`ID_NAMES` win.

    Parameters
    ----------
    columns : iterable of str
        The table's headers.

    Returns
    -------
    str or None
        The id column, or None when no header looks like an id.

    Examples
    --------
    >>> find_id_column(["CUST_ID", "BALANCE"])
    'CUST_ID'
    >>> find_id_column(["Channel", "Region", "Fresh"]) is None
    True
    >>> find_id_column(["Gender", "Customer ID", "Age"])
    'Customer ID'
    """
    columns = [str(c) for c in columns]
    for name in ID_NAMES:
        for matches in ((c for c in columns if c == name),
                        (c for c in columns if c.lower() == name),
                        (c for c in columns if _normal_name(c) == _normal_name(name))):
            found = next(matches, None)
            if found is not None:
                return found
    return None


#: Cell texts that mean "no value": the ones pandas' CSV reader turns into NaN, so a table given
#: in memory reads as the same table written to a file and read back.
_MISSING_TEXT = frozenset({"", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan",
                           "1.#IND", "1.#QNAN", "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a",
                           "nan", "null"})


def _text_of(value: Any) -> str | None:
    # One cell as text: integral floats lose ".0" (ids and codes read as floats), stripped,
    # "" and the missing-value tokens (NA, n/a, NULL, ...) are missing.
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    text = str(value).strip()
    return None if not text or text in _MISSING_TEXT else text


def _as_text(values: pd.Series) -> pd.Series:
    """A column as pandas ``string``: stripped, "" -> <NA>, 12.0 -> "12"."""
    if pd.api.types.is_integer_dtype(values) and not pd.api.types.is_bool_dtype(values):
        return values.astype("string")
    if pd.api.types.is_string_dtype(values) and \
            pd.api.types.infer_dtype(values, skipna=True) in ("string", "empty"):
        out = values.astype("string").str.strip()
        return out.mask(out.isin(_MISSING_TEXT).fillna(False))
    return pd.Series([_text_of(v) for v in values], index=values.index, dtype="string")


def _rows(mask: np.ndarray | pd.Series) -> list[int]:
    """1-based raw rows where ``mask`` holds (positional index)."""
    return [int(i) + 1 for i in np.flatnonzero(np.asarray(mask, dtype=bool))]


def _row_list(rows: list[int]) -> str:
    shown = ", ".join(str(r) for r in rows[:_LIST])
    return shown + (f", ... ({len(rows)} in all)" if len(rows) > _LIST else "")


# ---------------------------------------------------------------------------------------------
# inference

def _date_formats(dayfirst: bool) -> tuple[str, ...]:
    # source.dayfirst: day-first slash formats before month-first ones (ties go to the first)
    if not dayfirst:
        return _DATE_FORMATS
    return tuple(sorted(_DATE_FORMATS, key=lambda f: 0 if f.startswith("%d/%m") else 1
                        if f.startswith("%m/%d") else -1))


def _swapped(fmt: str) -> str:
    return fmt.replace("%d", "%_").replace("%m", "%d").replace("%_", "%m")


def _ambiguous(text: pd.Series, fmt: str) -> bool:
    """Every value reads the same with day and month swapped (04-09-2012, 3/1/2019)."""
    other = _swapped(fmt)
    if other == fmt:
        return False
    distinct = pd.Series(text.dropna().unique().astype(str), dtype="object")
    return bool(pd.to_datetime(distinct, format=other, errors="coerce").notna().all())


def _date_format(text: pd.Series, min_share: float = _DATE_SHARE,
                 dayfirst: bool = False) -> tuple[str | None, float]:
    """The format that reads most present values of ``text``, and the share it reads (None
    when fewer than ``min_share`` of the values even look like dates)."""
    counts = text.dropna().value_counts()
    if counts.empty:
        return None, 0.0
    distinct = pd.Series(counts.index.astype(str), dtype="object")
    weights = counts.to_numpy(dtype="float64")
    looks = distinct.str.match(_DATE_LIKE).to_numpy(dtype=bool)
    if not looks.any() or weights[looks].sum() < min_share * weights.sum():
        return None, 0.0
    best, best_share = None, 0.0
    for fmt in _date_formats(dayfirst):
        parsed = pd.to_datetime(distinct, format=fmt, errors="coerce")
        share = float(weights[parsed.notna().to_numpy()].sum() / weights.sum())
        if share > best_share:
            best, best_share = fmt, share
    return best, best_share


#: Name words that, with values that are all yyyymmdd dates, make an integer column a date.
_DATE_WORDS = {"date", "dt", "day", "since", "joined", "birth", "birthday", "dob", "signup",
               "registered", "created", "opened"}


def _yyyymmdd(values: pd.Series) -> bool:
    """Every present value is an 8-digit whole number that reads as a date (19970101)."""
    present = pd.to_numeric(values, errors="coerce").dropna()
    if present.empty or not (present % 1 == 0).all() \
            or not present.between(19_000_101, 21_001_231).all():
        return False
    parsed = pd.to_datetime(present.astype("int64").astype(str), format="%Y%m%d", errors="coerce")
    return bool(parsed.notna().all())


def _numeric_plan(num: pd.Series, name: str, code_levels: int, prefix: str = "") -> _Plan:
    """Type of a column of numbers (float64, NaN for missing)."""
    present = num[num.notna()].to_numpy(dtype="float64")
    if present.size == 0:
        return _Plan("ignore", "no values (every row is missing)", note=True)
    finite = present[np.isfinite(present)]
    distinct = np.unique(finite)
    if len(distinct) == 1 and finite.size == present.size:
        return _Plan("ignore", f"{prefix}constant: every value is {_text_of(distinct[0])}",
                     note=True)
    if set(distinct.tolist()) == {0.0, 1.0}:
        return _Plan("binary", f"{prefix}0/1 values; 1 -> 1", binary_one="1", binary_zero="0")
    integral = finite.size == present.size and bool(np.all(finite == np.round(finite)))
    k = len(distinct)
    if integral and k <= code_levels:
        span = f"{_text_of(distinct[0])}..{_text_of(distinct[-1])}"
        keep = f"set recipe.columns.{name}: numeric to keep it a number"
        words = _words(name)
        lowered = str(name).lower()
        if words & _CODE_WORDS or lowered.endswith("code"):
            return _Plan("categorical", f"{prefix}integer with {k} values ({span}) and a code-like "
                         f"name, treated as categorical codes; {keep}", note=True)
        if distinct[0] >= 0 and distinct[-1] <= code_levels:
            if words & _COUNT_WORDS or any(f in lowered for f in _COUNT_FRAGMENTS):
                return _Plan("numeric", f"{prefix}integer with {k} values ({span}) named like a "
                             f"count, kept a number; set recipe.columns.{name}: categorical to "
                             "treat it as codes", note=True)
            return _Plan("categorical", f"{prefix}integer with {k} values ({span}), all within "
                         f"0..{code_levels}, treated as categorical codes; {keep}", note=True)
    n = len(num)
    if integral and present.size == n and k == n and n >= 10:
        words = _words(name)
        if words & {"id", "index", "row", "unnamed"} or distinct[-1] - distinct[0] == n - 1:
            return _Plan("ignore", f"{prefix}looks like an identifier (a distinct integer per row); "
                         f"set recipe.id_column: {name} to use it as the id", note=True)
    return _Plan("numeric", f"{prefix}numbers ({k} distinct)")


def _binary_levels(levels: list[str]) -> tuple[str, str] | None:
    """(one, zero) when two text levels are a yes/no-like pair, else None."""
    lowered = {level.lower(): level for level in levels}
    for one, zero in _BINARY_PAIRS:
        if set(lowered) == {one, zero}:
            return lowered[one], lowered[zero]
    return None


def _spellings(present: pd.Series) -> pd.Series:
    """Counts of the distinct values ignoring case, each under its most common spelling."""
    counts = present.value_counts()
    return counts.groupby(counts.index.str.lower(), sort=False).sum().set_axis(
        counts.groupby(counts.index.str.lower(), sort=False).head(1).index)


def _infer_plan(values: pd.Series, name: str, code_levels: int, dayfirst: bool = False) -> _Plan:
    """Infer one (non-id) column's type from its values and name."""
    n = len(values)
    if pd.api.types.is_datetime64_any_dtype(values):
        return _Plan("date", "date values", note=True)
    if pd.api.types.is_bool_dtype(values):
        present = values.dropna()
        if present.nunique() < 2:
            return _Plan("ignore", "constant: every value is "
                         f"{present.iloc[0] if len(present) else 'missing'}", note=True)
        return _Plan("binary", "true/false values; True -> 1", binary_one="True",
                     binary_zero="False")
    if pd.api.types.is_numeric_dtype(values):
        if _yyyymmdd(values) and _words(name) & _DATE_WORDS:
            return _Plan("date", "8-digit numbers that are all dates (yyyymmdd) in a column "
                         "named like a date", date_format="%Y%m%d", note=True)
        return _numeric_plan(values.astype("float64"), name, code_levels)
    text = _as_text(values)
    present = text.dropna()
    if present.empty:
        return _Plan("ignore", "no values (every row is missing)", note=True)
    counts = present.value_counts()
    if len(counts) == 1:
        return _Plan("ignore", f"constant: every value is {counts.index[0]!r}", note=True)
    spellings = _spellings(present)
    if len(spellings) == 2:
        pair = _binary_levels([str(v) for v in spellings.index])
        if pair is not None:
            return _Plan("binary", f"two values {pair[0]}/{pair[1]}; {pair[0]} -> 1",
                         binary_one=pair[0], binary_zero=pair[1])
    numbers = pd.to_numeric(present, errors="coerce")
    if numbers.notna().all():
        plan = _numeric_plan(pd.to_numeric(text, errors="coerce").astype("float64"), name,
                             code_levels, prefix="numbers stored as text; ")
        return plan
    numeric_share = float(numbers.notna().mean())
    if numeric_share >= _MIXED_NUMBER_SHARE:
        # mostly numbers with a few stray tokens ("n/a?", "-"): a number column whose strays
        # are missing values (then imputed, dropped or an error, as recipe.missing says)
        stray = present[numbers.isna()]
        seen = ", ".join(repr(v) for v in stray.value_counts().index[:3])
        plan = _numeric_plan(pd.to_numeric(text, errors="coerce").astype("float64"), name,
                             code_levels, prefix=f"mixed: {numeric_share:.1%} numbers; {len(stray)} values "
                             f"that are not ({seen}) read as missing; ")
        if plan.type == "numeric":
            plan.lenient, plan.note = True, True
            return plan
    fmt, share = _date_format(text, dayfirst=dayfirst)
    if fmt is not None and share >= _DATE_SHARE:
        ambiguous = ""
        if _ambiguous(text, fmt):
            ambiguous = "; no date tells day from month, so this order is a guess" + (
                ": set source.dayfirst: true for day first" if fmt.startswith("%m") else "")
        return _Plan("date", f"dates (format {fmt}, {share:.0%} of values parse){ambiguous}",
                     date_format=fmt, note=True)
    k, count = len(counts), len(present)
    lengths = present.str.len()
    long_text = bool(lengths.mean() >= 20 and present.str.contains(r"\s").mean() >= 0.5)
    if k == count and count >= 10:
        if long_text:
            return _Plan("text", f"free text: every value distinct, {lengths.mean():.0f} "
                         "characters on average", note=True)
        return _Plan("ignore", f"looks like an identifier (a distinct value per row); set "
                     f"recipe.id_column: {name} to use it as the id", note=True)
    limit = max(50, int(0.05 * n))
    if k <= limit:
        return _Plan("categorical", f"text with {k} levels")
    if long_text:
        return _Plan("text", f"free text: {k} distinct values, {lengths.mean():.0f} characters on "
                     "average", note=True)
    if numeric_share >= 0.5:
        return _Plan("ignore", f"mixed types: {numeric_share:.0%} numbers and "
                     f"{1 - numeric_share:.0%} text, "
                     f"{k} distinct values; set recipe.columns.{name}: categorical to use it as "
                     f"levels, or clean it", note=True)
    return _Plan("ignore", f"{k} distinct values, more than {limit} for categories; set "
                 f"recipe.columns.{name}: categorical to use it", note=True)


def infer_column_types(raw: pd.DataFrame, *, code_levels: int = 10,
                       id_column: str | None = None) -> dict[str, ColumnType]:
    """Infer every column's type from its values and name, with the reason.

    Parameters
    ----------
    raw : pandas.DataFrame
        One row per customer, as read.
    code_levels : int, default 10
        Integer columns with at most this many values are categorical codes when their name
        looks like a code (Region, Channel, ``*_code``, type, status, ...) or when their values
        all lie within ``0..code_levels`` and their name is not a count's (Kidhome, Num*).
    id_column : str, optional
        The id column; None: found by name (:func:`find_id_column`).

    Returns
    -------
    dict
        Column -> :class:`ColumnType` ``(type, reason)``, type one of
        :data:`segmint.spec.COLUMN_TYPES` ("id" for the id column).

    Examples
    --------
    >>> raw = pd.DataFrame({"Channel": [1, 2, 2, 1], "Region": [3, 1, 2, 3],
    ...                     "Fresh": [12669, 7057, 6353, 13265], "loan": ["no", "yes", "no", "no"]})
    >>> types = infer_column_types(raw)
    >>> {c: t.type for c, t in types.items()}
    {'Channel': 'categorical', 'Region': 'categorical', 'Fresh': 'numeric', 'loan': 'binary'}
    >>> print(types["Region"].reason)  # doctest: +NORMALIZE_WHITESPACE
    integer with 3 values (1..3) and a code-like name, treated as categorical codes;
    set recipe.columns.Region: numeric to keep it a number
    """
    raw = raw.reset_index(drop=True)
    raw.columns = [str(c) for c in raw.columns]
    if id_column is None:
        id_column = find_id_column(raw.columns)
    out: dict[str, ColumnType] = {}
    for column in raw.columns:
        if column == id_column:
            out[column] = ColumnType("id", "the customer id")
            continue
        plan = _infer_plan(raw[column], column, code_levels)
        out[column] = ColumnType(plan.type, plan.reason)
    return out


# ---------------------------------------------------------------------------------------------
# conversions (each returns the column as it goes into the frame, or raises naming the rows)

def _to_numeric(values: pd.Series, column: str, where: str, lenient: bool = False) -> pd.Series:
    if pd.api.types.is_bool_dtype(values):
        return values.astype("float64")
    if pd.api.types.is_numeric_dtype(values):
        out = values.astype("float64")
    else:
        text = _as_text(values)
        out = pd.to_numeric(text, errors="coerce").astype("float64")
        bad = text.notna().to_numpy() & out.isna().to_numpy()
        if bad.any() and not lenient:
            rows = _rows(bad)
            raise InputError(f"{len(rows)} values are not numbers (first {text.iloc[rows[0] - 1]!r}); "
                             f"rows {_row_list(rows)}", file=where, column=column, row=rows[0])
    infinite = np.isinf(out.to_numpy())
    if infinite.any():
        rows = _rows(infinite)
        raise InputError(f"{len(rows)} infinite values; rows {_row_list(rows)}", file=where,
                         column=column, row=rows[0])
    huge = np.abs(out.fillna(0.0).to_numpy()) > LARGEST_VALUE
    if huge.any():  # squared in scaling and distances, such a value puts everyone in one cluster
        rows = _rows(huge)
        raise InputError(f"{len(rows)} values beyond ±{LARGEST_VALUE:g} (first "
                         f"{out.iloc[rows[0] - 1]:g}), too large to be a customer figure; rows "
                         f"{_row_list(rows)}", file=where, column=column, row=rows[0])
    return out


def _to_binary(values: pd.Series, plan: _Plan, column: str, where: str) -> pd.Series:
    text = _as_text(values)
    if plan.binary_one is None:  # declared binary: the levels come from the data
        levels = sorted(_spellings(text.dropna()).index.tolist(), key=str.lower)
        if len(levels) > 2:
            raise InputError(f"declared binary but holds {len(levels)} values: "
                             f"{levels[:_LIST]}", file=where, column=column)
        pair = _binary_levels(levels) if len(levels) == 2 else None
        if pair is not None:
            plan.binary_one, plan.binary_zero = pair
        else:  # not yes/no-like: the later level in sort order is 1
            plan.binary_one = levels[-1] if levels else None
            plan.binary_zero = levels[0] if len(levels) == 2 else None
        plan.reason += f"; {plan.binary_one} -> 1"
    lowered = text.str.lower()
    one = lowered == str(plan.binary_one).lower()
    zero = lowered == str(plan.binary_zero).lower() if plan.binary_zero is not None else \
        pd.Series(False, index=text.index)
    one, zero = one.fillna(False).to_numpy(bool), zero.fillna(False).to_numpy(bool)
    unknown = text.notna().to_numpy() & ~one & ~zero
    if unknown.any():
        rows = _rows(unknown)
        raise InputError(f"value {text.iloc[rows[0] - 1]!r} is neither level of this binary "
                         f"column ({plan.binary_one!r} -> 1, {plan.binary_zero!r} -> 0); "
                         f"rows {_row_list(rows)}", file=where, column=column, row=rows[0])
    out = np.where(one, 1.0, np.where(zero, 0.0, np.nan))
    return pd.Series(out, index=values.index, dtype="float64")


def _to_ordinal(values: pd.Series, plan: _Plan, column: str, where: str) -> pd.Series:
    text = _as_text(values)
    if not plan.levels:
        numbers = pd.to_numeric(text, errors="coerce")
        if numbers[text.notna()].isna().any():
            raise InputError("declared ordinal but recipe.ordinal gives no levels (low to high)",
                             file=where, column=column)
        plan.levels = [_plain(v) for v in np.sort(numbers.dropna().unique())]
        plan.reason += f"; levels in numeric order {plan.levels}"
    keys = [_text_of(level) for level in plan.levels]
    rank = {key: float(i) for i, key in enumerate(keys)}
    folded = {str(key).lower(): float(i) for i, key in enumerate(keys)}
    ranks = [np.nan if v is pd.NA else rank.get(v, folded.get(v.lower(), -1.0)) for v in text]
    out = pd.Series(ranks, index=values.index, dtype="float64")
    unknown = (out == -1.0).to_numpy()
    if unknown.any():
        rows = _rows(unknown)
        raise InputError(f"value {text.iloc[rows[0] - 1]!r} is not one of the ordinal levels "
                         f"{keys}; rows {_row_list(rows)}", file=where, column=column,
                         row=rows[0])
    return out


def _to_dates(values: pd.Series, plan: _Plan, column: str, where: str,
              notes: list[str]) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(values):
        parsed = pd.to_datetime(values)
        if getattr(parsed.dt, "tz", None) is not None:
            parsed = parsed.dt.tz_convert(None)
        return parsed
    text = _as_text(values)
    if plan.date_format is None and _yyyymmdd(values):
        plan.date_format = "%Y%m%d"
        plan.reason += " (format %Y%m%d)"
    if plan.date_format is None:
        plan.date_format, _ = _date_format(text, min_share=0.0, dayfirst=plan.dayfirst)
        if plan.date_format is None:
            first = text.dropna()
            raise InputError(f"declared date but no date format reads its values (e.g. "
                             f"{first.iloc[0] if len(first) else None!r})", file=where,
                             column=column)
        plan.reason += f" (format {plan.date_format})"
    parsed = pd.to_datetime(text.astype("object"), format=plan.date_format, errors="coerce")
    bad = text.notna().to_numpy() & parsed.isna().to_numpy()
    if bad.any():
        rows = _rows(bad)
        message = (f"{len(rows)} values are not dates in format {plan.date_format} (first "
                   f"{text.iloc[rows[0] - 1]!r}); rows {_row_list(rows)}")
        present = int(text.notna().sum())
        if present - len(rows) < _DATE_SHARE * present:
            raise InputError(message, file=where, column=column, row=rows[0])
        notes.append(f"{column}: {message}; treated as missing")
    return parsed


def _plain(value: Any) -> Any:
    # numpy scalars -> Python, so the schema is JSON
    return value.item() if isinstance(value, np.generic) else value


def _date_reference(reference_date: Any, column: str) -> pd.Timestamp | None:
    if isinstance(reference_date, Mapping):
        reference_date = reference_date.get(column)
    if reference_date is None:
        return None
    return pd.Timestamp(reference_date)


def _iso(ts: pd.Timestamp) -> str:
    return ts.date().isoformat() if ts == ts.normalize() else ts.isoformat()


# ---------------------------------------------------------------------------------------------
# the recipe

def _customer_ids(raw: pd.DataFrame, id_column: str | None, where: str) -> pd.Index:
    """Unique string ids: the id column's values, or the 1-based row numbers."""
    if id_column is None:
        return pd.Index([str(i + 1) for i in range(len(raw))], dtype="string", name="customer")
    ids = _as_text(raw[id_column])
    missing = ids.isna().to_numpy()
    if missing.any():
        rows = _rows(missing)
        raise InputError(f"{len(rows)} customers have no id; rows {_row_list(rows)}",
                         file=where, column=id_column, row=rows[0])
    repeated = ids.duplicated(keep=False).to_numpy()
    if repeated.any():
        groups = pd.Series(np.flatnonzero(repeated) + 1).groupby(ids[repeated].to_numpy(),
                                                                 sort=False)
        listed = "; ".join(f"{key!r} rows {', '.join(map(str, rows.tolist()))}"
                           for key, rows in list(groups)[:_LIST])
        more = f"; ... ({groups.ngroups} ids in all)" if groups.ngroups > _LIST else ""
        lines = ("; if the file holds several rows per customer (transaction lines), use "
                 "recipe.kind: transactions" if repeated.mean() > 0.2 else "")
        raise InputError(f"ids are not unique: {groups.ngroups} ids appear more than once "
                         f"({int(repeated.sum())} rows): {listed}{more}{lines}", file=where,
                         column=id_column, row=int(np.flatnonzero(repeated)[0]) + 1)
    return pd.Index(ids.to_numpy(), dtype="string", name="customer")


def _check_known(names: Iterable[str], columns: list[str], what: str, where: str) -> None:
    unknown = [c for c in names if c not in columns]
    if unknown:
        raise InputError(f"{what} names columns not in the table: {unknown}; its columns: "
                         f"{columns}", file=where, column=unknown[0])


def _plans_from_recipe(raw: pd.DataFrame, recipe: RecipeSpec, id_column: str | None,
                       where: str, dayfirst: bool = False) -> dict[str, _Plan]:
    columns = list(raw.columns)
    _check_known(recipe.columns, columns, "recipe.columns", where)
    _check_known(recipe.ordinal, columns, "recipe.ordinal", where)
    if recipe.feature_columns is not None:
        _check_known(recipe.feature_columns, columns, "recipe.feature_columns", where)
    chosen = None if recipe.feature_columns is None else set(recipe.feature_columns)
    plans: dict[str, _Plan] = {}
    for column in columns:
        if column == id_column:
            continue
        declared = recipe.columns.get(column)
        if chosen is not None and column not in chosen and column != recipe.revenue:
            plans[column] = _Plan("ignore", "not in recipe.feature_columns", inferred=False)
        elif declared is not None:
            reason = "set in recipe.columns"
            levels = recipe.ordinal.get(column)
            if levels:
                reason = "set in recipe.ordinal: " + " < ".join(str(v) for v in levels)
            plans[column] = _Plan(declared, reason, inferred=False, levels=levels,
                                  dayfirst=dayfirst)
        else:
            plans[column] = _infer_plan(raw[column], column, recipe.code_levels, dayfirst)
    return plans


def _plans_from_schema(raw: pd.DataFrame, schema: Mapping[str, Any], where: str,
                       notes: list[str]) -> dict[str, _Plan]:
    columns = list(raw.columns)
    plans: dict[str, _Plan] = {}
    reasons = schema.get("reasons", {})
    binary_levels = schema.get("binary_levels", {})
    for column, kind in schema["columns"].items():
        if kind in _USED_TYPES and column not in columns:
            raise InputError(f"the fitted recipe uses column {column!r} ({kind}) but the table "
                             f"has none; its columns: {columns}", file=where, column=column)
        one, zero = binary_levels.get(column, (schema.get("binary", {}).get(column), None))
        plans[column] = _Plan(kind, "as fitted: " + reasons.get(column, kind), inferred=False,
                              date_format=schema.get("date_formats", {}).get(column),
                              binary_one=one, binary_zero=zero,
                              levels=schema.get("ordinal", {}).get(column))
    extra = [c for c in columns if c not in plans and c != schema.get("id")]
    for column in extra:
        plans[column] = _Plan("ignore", "not in the fitted schema", inferred=False)
    if extra:
        notes.append(f"columns not in the fitted schema, ignored: {extra}")
    return plans


def _id_column(columns: list[str], recipe: RecipeSpec, schema: Mapping[str, Any] | None,
               where: str, notes: list[str]) -> tuple[str | None, bool]:
    """The id column (None: number the rows) and whether it was found by name."""
    if schema is not None or recipe.id_column is not None:
        id_column = schema.get("id") if schema is not None else recipe.id_column
        what = "the fitted recipe's id column" if schema is not None else "recipe.id_column"
        if id_column is not None and id_column not in columns:
            raise InputError(f"{what} {id_column!r} is not in the table; its columns: "
                             f"{columns}", file=where, column=id_column)
        return id_column, False
    id_column = find_id_column(columns)
    if id_column is None:
        notes.append(f"no id column found (looked for {', '.join(ID_NAMES)}); customers are "
                     "numbered by row; set recipe.id_column")
    else:
        notes.append(f"{id_column}: the customer id (found by name)")
    return id_column, True


@dataclass
class _Converted:
    frame: dict[str, pd.Series]  # frame column -> values (positional index)
    types: dict[str, str]  # frame column -> prepared type
    sources: dict[str, str]  # frame column -> raw column
    converted: dict[str, pd.Series]  # raw column -> its values as converted
    dates: dict[str, str]  # raw date column -> reference date, ISO


def _convert(raw: pd.DataFrame, plans: dict[str, _Plan], where: str, notes: list[str], *,
             references: Mapping[str, str] | None, reference_date: Any) -> _Converted:
    """Every used column converted, in table order; dates become ``<column>_days``."""
    done = _Converted({}, {}, {}, {}, {})
    for column, plan in plans.items():
        if plan.type not in _USED_TYPES or column not in raw.columns:
            continue
        values = raw[column]
        name, kind = column, plan.type
        if plan.type == "numeric":
            out = _to_numeric(values, column, where, lenient=plan.lenient)
        elif plan.type == "binary":
            out = _to_binary(values, plan, column, where)
        elif plan.type == "ordinal":
            out, kind = _to_ordinal(values, plan, column, where), "numeric"
        elif plan.type == "date":
            parsed = _to_dates(values, plan, column, where, notes)
            if references is not None:
                reference = pd.Timestamp(references[column])
            else:
                reference = _date_reference(reference_date, column)
                if reference is None:
                    reference = parsed.max()
                if pd.isna(reference):
                    raise InputError("no value of this date column reads as a date", file=where,
                                     column=column)
            done.dates[column] = _iso(reference)
            out = ((reference - parsed) / pd.Timedelta(days=1)).astype("float64")
            name, kind = f"{column}_days", "numeric"
            if name in raw.columns:
                raise InputError(f"date column {column!r} becomes {name!r}, which the table "
                                 "already has; rename one", file=where, column=name)
            if references is None:
                plan.reason += f"; became {name}, days before {done.dates[column]}"
        else:
            out = _as_text(values)
        done.converted[column] = out
        done.frame[name] = out
        done.types[name] = kind
        done.sources[name] = column
    return done


def _apply_missing(table: pd.DataFrame, policy: str, sources: dict[str, str], where: str,
                   notes: list[str]) -> pd.DataFrame:
    """The missing-value policy on the used columns: impute (leave), drop, error."""
    missing = table.isna()
    with_missing = [c for c in table.columns if missing[c].any()]
    if not with_missing:
        return table
    if policy == "error":
        column = with_missing[0]
        rows = _rows(missing[column])  # no row dropped yet: positions are raw rows
        raise InputError(f"{len(rows)} missing values (recipe.missing: error); rows "
                         f"{_row_list(rows)}", file=where, column=sources[column], row=rows[0])
    counts = ", ".join(f"{sources[c]} {int(missing[c].sum())}" for c in with_missing)
    if policy == "drop":
        dropped = missing.any(axis=1).to_numpy()
        notes.append(f"dropped {int(dropped.sum())} of {len(table)} rows with missing values: "
                     f"{counts}")
        if dropped.all():
            raise InputError("every row has a missing value (recipe.missing: drop)", file=where)
        return table.loc[~dropped]
    notes.append(f"missing values left for preparation to impute: {counts}")
    return table


def _fitted_schema(id_column: str | None, plans: dict[str, _Plan], done: _Converted,
                   features: list[str], revenue: str | None) -> dict[str, Any]:
    """What scoring needs to apply this recipe to new data the same way (JSON)."""
    binary = {c: p for c, p in plans.items() if p.type == "binary"}
    return {
        "recipe": "attributes",
        "id": id_column,
        "columns": {c: p.type for c, p in plans.items()},
        "ordinal": {c: [_plain(v) for v in p.levels] for c, p in plans.items()
                    if p.type == "ordinal" and p.levels},
        "dates": done.dates,
        "date_formats": {c: p.date_format for c, p in plans.items()
                         if p.type == "date" and p.date_format},
        "binary": {c: p.binary_one for c, p in binary.items()},
        "binary_levels": {c: [p.binary_one, p.binary_zero] for c, p in binary.items()},
        "features": features,
        "revenue": revenue,
        "sources": dict(done.sources),
        "reasons": {c: p.reason for c, p in plans.items()},
    }


def _top_levels(text: pd.Series) -> str:
    shares = text.dropna().value_counts(normalize=True)
    top = ", ".join(f"{level} {share:.1%}" for level, share in shares.head(5).items())
    return top + (", ..." if len(shares) > 5 else "")


def _info_row(column: str, plan: _Plan, raw: pd.Series, converted: pd.Series | None,
              imputed: bool) -> dict[str, Any]:
    """One row of the feature report; numbers over the whole table as read (before drops)."""
    values = converted if converted is not None else raw
    nulls = int(values.isna().sum())
    row: dict[str, Any] = {
        "column": column, "type": plan.type, "inferred": plan.inferred, "reason": plan.reason,
        "count": int(len(values) - nulls), "nulls": nulls,
        "imputed": nulls if imputed else 0,
        "distinct": int((_as_text(raw) if converted is None else converted).nunique()),
        "min": np.nan, "max": np.nan, "mean": np.nan, "stddev": np.nan, "top_levels": "",
        "became": "",
    }
    if converted is not None and plan.type in ("numeric", "binary", "ordinal", "date"):
        with np.errstate(over="ignore", invalid="ignore"):  # 1e200 is refused later, by name
            row.update(min=float(values.min()), max=float(values.max()),
                       mean=float(values.mean()), stddev=float(values.std()))
    if plan.type in ("categorical", "binary"):
        row["top_levels"] = _top_levels(_as_text(raw))
    return row


def attributes_table(raw: pd.DataFrame, recipe: RecipeSpec, *, where: str = "table",
                     schema: Mapping[str, Any] | None = None,
                     reference_date: Any = None, dayfirst: bool = False) -> CustomerTable:
    """Type a table that is already one row per customer and hand it on as a customer table.

    Parameters
    ----------
    raw : pandas.DataFrame
        One row per customer, as read (any index; rows are numbered 1.. in errors and notes).
    recipe : RecipeSpec
        Its ``attributes`` options: ``id_column``, ``columns`` (types), ``ordinal`` (levels,
        low to high), ``feature_columns``, ``missing`` (impute, drop, error), ``code_levels``
        and ``revenue``.
    where : str, default "table"
        What the table is (a file name), named in errors.
    schema : dict, optional
        A fitted :attr:`CustomerTable.schema`: apply the same ids, types, levels, date formats
        and date references to new data instead of inferring them (scoring). Categorical
        levels unseen in fitting are kept; an unseen binary or ordinal level is an error.
    reference_date : date-like or dict, optional
        Dates become days before this (one date, or column -> date); default: the latest date
        in each date column. Ignored when ``schema`` is given (its references are used).
    dayfirst : bool, default False
        Read slash dates that fit both orders (3/1/2019) day first (``source.dayfirst``).

    Returns
    -------
    CustomerTable
        ``frame`` indexed by the customer id (string), numeric and binary columns float64,
        categoricals pandas ``string``; date ``X`` becomes numeric ``X_days``; text and
        ignored columns are left out (the feature report, ``info``, says why).

    Raises
    ------
    InputError
        Naming the file, column and rows: an id column that is absent, missing or repeated
        ids, values that do not fit their type, infinite numbers, missing values under
        ``missing: error``, unknown columns in the recipe.

    Examples
    --------
    >>> raw = pd.DataFrame({"Channel": [2, 2, 1, 1], "Region": [3, 3, 3, 1],
    ...                     "Fresh": [12669, 7057, 6353, None],
    ...                     "Joined": ["04-09-2012", "08-03-2014", "21-08-2013", "10-02-2014"]})
    >>> table = attributes_table(raw, RecipeSpec(kind="attributes"), where="wholesale.csv")
    >>> table.ids.tolist()   # no id column: customers are numbered by row
    ['1', '2', '3', '4']
    >>> table.types
    {'Channel': 'categorical', 'Region': 'categorical', 'Fresh': 'numeric', 'Joined_days': 'numeric'}
    >>> table.frame["Joined_days"].tolist()   # days before the latest date, 2014-03-08
    [550.0, 0.0, 199.0, 26.0]
    >>> table.info[["column", "type", "nulls", "imputed", "mean"]]
        column         type  nulls  imputed     mean
    0  Channel  categorical      0        0      NaN
    1   Region  categorical      0        0      NaN
    2    Fresh      numeric      1        1  8693.00
    3   Joined         date      0        0   193.75
    """
    if raw.columns.duplicated().any():
        repeated = sorted({str(c) for c in raw.columns[raw.columns.duplicated()]})
        raise InputError(f"column names repeat: {repeated}", file=where, column=repeated[0])
    raw = raw.reset_index(drop=True)
    raw.columns = [str(c) for c in raw.columns]
    columns = list(raw.columns)
    if raw.empty:
        raise InputError("the table has no rows", file=where)
    notes: list[str] = []
    id_column, id_inferred = _id_column(columns, recipe, schema, where, notes)
    ids = _customer_ids(raw, id_column, where)
    plans = (_plans_from_schema(raw, schema, where, notes) if schema is not None
             else _plans_from_recipe(raw, recipe, id_column, where, dayfirst))
    revenue = schema.get("revenue") if schema is not None else recipe.revenue
    if revenue is not None:
        if revenue not in plans:
            raise InputError(f"revenue column {revenue!r} is not in the table; its columns: "
                             f"{columns}", file=where, column=revenue)
        if plans[revenue].type != "numeric":
            raise InputError(f"the revenue column must be numeric; it is {plans[revenue].type} "
                             f"({plans[revenue].reason})", file=where, column=revenue)

    done = _convert(raw, plans, where, notes,
                    references=None if schema is None else schema["dates"],
                    reference_date=reference_date)
    notes.extend(f"{c}: {p.reason}" for c, p in plans.items() if p.note and p.inferred)
    if schema is not None:
        features = [n for n in schema["features"] if n in done.frame]
    else:
        features = list(done.frame)
        if revenue is not None and recipe.feature_columns is not None \
                and revenue not in recipe.feature_columns:
            features.remove(revenue)  # kept for the profile, not clustered
    table = pd.DataFrame({n: v.array for n, v in done.frame.items()}, index=ids)
    table.index.name = "customer"
    table = _apply_missing(table, recipe.missing, done.sources, where, notes)

    used = {done.sources[n] for n in features}
    id_plan = _Plan("id", "named like an id" if id_inferred else "set in recipe.id_column",
                    inferred=id_inferred)
    info = pd.DataFrame(
        [_info_row(c, id_plan, raw[c], None, False) if c == id_column else
         _info_row(c, plans[c], raw[c], done.converted.get(c),
                   recipe.missing == "impute" and c in used)
         for c in columns if c == id_column or c in plans],
        columns=list(FEATURE_INFO_COLUMNS))
    if schema is not None:  # scoring keeps the fitted schema as it was
        fitted = {**schema, "features": features}
    else:
        fitted = _fitted_schema(id_column, plans, done, features, revenue)
    for note in notes:
        log.info("%s: %s", where, note)
    return CustomerTable(frame=table, types=done.types, features=features, revenue=revenue,
                         info=info, notes=notes,
                         source={"where": where, "rows": len(raw), "columns": columns},
                         lines=len(raw), schema=fitted)
