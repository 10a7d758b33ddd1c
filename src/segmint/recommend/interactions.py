"""Interactions: who rated or bought what, indexed so that every model, split and metric of
:mod:`segmint.recommend` speaks the same codes.

Three sources are read (:func:`read_ratings`): the Amazon customer-reviews TSV of the AWS lab
the recommender follows, MovieLens' ``u.data`` (titles from ``u.item`` beside it), and any
table through a column mapping. Purchases become implicit feedback through
:func:`from_transactions`. :func:`filter_long_tail` applies the lab's thresholds.

Rules every reader follows, each written in :attr:`Interactions.notes` when it fires:

- Exact duplicate rows are dropped (the lab's ``drop_duplicates``).
- A (user, item) pair rated more than once with the same rating keeps one row (the latest).
  With different ratings it follows ``duplicates``: ``"latest"`` keeps the latest by timestamp
  (ties, and timestamps unknown: the last in file order; an unknown timestamp counts as the
  earliest), ``"mean"`` averages them, ``"error"`` refuses the file naming the second rating.
- Codes follow the sorted order of the ids, numerically when every id is a whole number
  (MovieLens: code = id - 1), otherwise as strings, so two runs on the same data give the same
  codes whatever the row order.
- Rows of :attr:`Interactions.frame` stay in file order (of the row kept for a pair), which
  the splits use to break timestamp ties.
"""
from __future__ import annotations

import csv
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from segmint.errors import InputError, public

__all__ = ["Interactions", "read_ratings", "filter_long_tail", "from_transactions",
           "AMAZON_REVIEWS_COLUMNS", "FORMATS", "DUPLICATE_RULES", "BAD_LINE_RULES"]

logger = logging.getLogger(__name__)

#: The header of the AWS lab's ``amazon_reviews_us_*_v1_00.tsv`` files, in file order.
AMAZON_REVIEWS_COLUMNS = ("marketplace", "customer_id", "review_id", "product_id", "product_parent",
                          "product_title", "product_category", "star_rating", "helpful_votes",
                          "total_votes", "vine", "verified_purchase", "review_headline",
                          "review_body", "review_date")
#: What each role is read from in the Amazon reviews file (the lab keeps these five columns).
_AMAZON_ROLES = {"user": "customer_id", "item": "product_id", "rating": "star_rating",
                 "timestamp": "review_date", "title": "product_title"}
_MOVIELENS_NAMES = ["user_id", "item_id", "rating", "timestamp"]
_ROLES = ("user", "item", "rating", "timestamp", "title")
#: read_ratings's formats.
FORMATS = ("auto", "amazon", "movielens", "table")
#: What to do with a (user, item) pair rated more than once with different ratings.
DUPLICATE_RULES = ("latest", "mean", "error")
#: What to do with a line of an unquoted file that has too many or too few fields.
BAD_LINE_RULES = ("error", "skip")
_VALUES = ("rating", "binary")


@dataclass
class Interactions:
    """Ratings or purchases, one row per (user, item), with the ids behind the codes.

    Attributes
    ----------
    frame : pandas.DataFrame
        Columns ``user`` (int64 code), ``item`` (int64 code), ``rating`` (float64; for implicit
        feedback from :func:`from_transactions` the number of orders), ``timestamp``
        (datetime64[ns], NaT when unknown). Rows in file order.
    users, items : pandas.Index
        Original ids as strings; the position of an id is its code.
    titles : pandas.Series or None
        Item id -> title, when the source has titles.
    kind : str
        ``"explicit"`` (ratings) or ``"implicit"`` (purchases).
    scale : tuple of float or None
        The declared rating scale, e.g. ``(1, 5)``; None for implicit feedback.
    notes : list of str
        What was done to the data, in words.

    Examples
    --------
    >>> inter = read_ratings(pd.DataFrame({"user": ["b", "a", "a"], "item": ["x", "x", "y"],
    ...                                    "rating": [4, 5, 3]}))
    >>> inter.n_users, inter.n_items, list(inter.users)
    (2, 2, ['a', 'b'])
    >>> inter.matrix().toarray()
    array([[5., 3.],
           [4., 0.]])
    """

    frame: pd.DataFrame
    users: pd.Index
    items: pd.Index
    titles: pd.Series | None = None
    kind: str = "explicit"
    scale: tuple[float, float] | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def n_users(self) -> int:
        """How many users the indexing holds (also those without a row here)."""
        return len(self.users)

    @property
    def n_items(self) -> int:
        """How many items the indexing holds (also those without a row here)."""
        return len(self.items)

    def matrix(self, values: str = "rating") -> sp.csr_matrix:
        """The n_users x n_items sparse matrix of ``rating`` values, or of ones (``"binary"``).

        Examples
        --------
        >>> inter = read_ratings(pd.DataFrame({"user": [1, 2], "item": [1, 1], "rating": [2, 4]}))
        >>> inter.matrix("binary").toarray().tolist()
        [[1.0], [1.0]]
        """
        _check_choice("values", values, _VALUES)
        user = self.frame["user"].to_numpy(np.int64)
        item = self.frame["item"].to_numpy(np.int64)
        data = (np.ones(len(user)) if values == "binary"
                else self.frame["rating"].to_numpy(np.float64))
        return sp.csr_matrix((data, (user, item)), shape=(self.n_users, self.n_items))

    def subset(self, mask: Any) -> Interactions:
        """The rows where ``mask`` holds, with the same users/items indexing (so a train and a
        test set share codes). ``mask`` is a boolean array or Series aligned with the rows, or
        integer row positions.

        Examples
        --------
        >>> inter = read_ratings(pd.DataFrame({"user": [1, 2], "item": [1, 2], "rating": [2, 4]}))
        >>> part = inter.subset(inter.frame["user"] == 1)
        >>> len(part.frame), part.n_users, part.n_items
        (1, 2, 2)
        """
        mask = np.asarray(mask)
        rows = self.frame.iloc[mask] if mask.dtype != bool else self.frame[mask]
        return replace(self, frame=rows.reset_index(drop=True), notes=list(self.notes))

    def with_note(self, note: str) -> Interactions:
        """A copy with one more note (the splits record their rules this way)."""
        return replace(self, notes=[*self.notes, note])


# --------------------------------------------------------------------------- reading ratings

@public
def read_ratings(source: str | Path | pd.DataFrame, *, format: str = "auto",
                 columns: Mapping[str, str] | None = None,
                 scale: tuple[float, float] | None = (1, 5), sep: str | None = None,
                 duplicates: str = "latest", bad_lines: str = "error") -> Interactions:
    """Read explicit ratings into :class:`Interactions`.

    Formats:

    - ``"amazon"``: the AWS lab's Amazon customer-reviews TSV
      (``amazon_reviews_us_Digital_Video_Download_v1_00.tsv``): tab-separated, a header line
      (:data:`AMAZON_REVIEWS_COLUMNS`), no quoting (a title may hold a ``"``). customer_id,
      product_id, star_rating, review_date and product_title are kept, as the lab does.
    - ``"movielens"``: MovieLens' ``u.data`` (user, item, rating, unix seconds; tab-separated,
      no header); titles from ``u.item`` beside it (latin-1, ``|``-separated) when present.
    - ``"table"``: any CSV/TSV/Parquet file or DataFrame, with ``columns`` mapping the roles
      ``user``, ``item``, ``rating`` and optionally ``timestamp`` and ``title`` to its column
      names (by default the roles' own names). A numeric timestamp is unix seconds.
    - ``"auto"``: ``u.data`` by its name, the Amazon file by its header, else a table.

    Parameters
    ----------
    source : str, Path or pandas.DataFrame
        The file or the table.
    format : str
        One of :data:`FORMATS`.
    columns : mapping, optional
        Role -> column name, for ``"table"`` (or to override the Amazon/MovieLens roles).
    scale : tuple of float or None
        The declared scale; a rating outside it is an error. None: not checked.
    sep : str, optional
        The delimiter of a table file (by default: tab for .tsv/.tab, else sniffed).
    duplicates : str
        The rule for a pair rated twice with different ratings (:data:`DUPLICATE_RULES`).
    bad_lines : str
        ``"error"``: a line of the Amazon or MovieLens file without the right number of fields
        is an error; ``"skip"``: such lines are skipped and counted in the notes (the lab read
        with ``error_bad_lines=False``).

    Returns
    -------
    Interactions

    Raises
    ------
    InputError
        The file is missing or unreadable; a line has more fields than the header; a role's
        column is absent; a user, item or rating is missing; a rating is no number or lies
        outside ``scale``; a timestamp cannot be read; ``duplicates="error"`` and a pair has
        conflicting ratings. The error names the file, the column and the 1-based line of the
        file (header included) or, for a DataFrame, the 1-based row.

    Examples
    --------
    >>> ratings = pd.DataFrame({"cust": ["c2", "c1", "c1", "c1"], "sku": ["p", "p", "q", "p"],
    ...                         "stars": [5, 3, 4, 1],
    ...                         "day": ["2015-01-02", "2015-01-01", "2015-01-01", "2015-01-03"]})
    >>> inter = read_ratings(ratings, columns={"user": "cust", "item": "sku", "rating": "stars",
    ...                                         "timestamp": "day"})
    >>> inter.frame
       user  item  rating  timestamp
    0     1     0     5.0 2015-01-02
    1     0     1     4.0 2015-01-01
    2     0     0     1.0 2015-01-03
    >>> for note in inter.notes: print(note)  # doctest: +NORMALIZE_WHITESPACE
    1 (user, item) pair rated more than once with different ratings: kept the latest by
      timestamp (ties: the last in file order)
    1 user has a single rating
    """
    _check_choice("format", format, FORMATS)
    _check_choice("duplicates", duplicates, DUPLICATE_RULES)
    _check_choice("bad_lines", bad_lines, BAD_LINE_RULES)
    if scale is not None:
        if len(scale) != 2 or not float(scale[0]) <= float(scale[1]):
            raise InputError(f"scale must be (low, high) with low <= high, got {scale!r}")
        scale = (float(scale[0]), float(scale[1]))
    if isinstance(source, pd.DataFrame):
        fmt = "amazon" if format == "auto" and _is_amazon_header(source.columns) else format
        fmt = "table" if fmt == "auto" else fmt
        raw, where, first_line, roles = _frame_source(source, fmt, columns)
        item_file = None
        notes: list[str] = []
    else:
        path = Path(source)
        if not path.is_file():
            raise InputError("no such file" if not path.exists() else "not a file", file=str(path))
        fmt = _detect_format(path) if format == "auto" else format
        notes = []
        raw, first_line, roles = _read_file(path, fmt, columns, sep, bad_lines, notes)
        where = str(path)
        item_file = path.with_name("u.item") if fmt == "movielens" else None
    frame = _typed(raw, roles, where, first_line, scale, notes)
    row_titles = frame.pop("title") if "title" in frame else None
    title_of = _movielens_titles(item_file) if item_file is not None and item_file.is_file() else None
    inter = _indexed(frame, row_titles=row_titles, title_of=title_of, kind="explicit", scale=scale,
                     notes=notes, duplicates=duplicates, where=where, first_line=first_line,
                     rating_column=roles["rating"])
    logger.info("read %d ratings of %d users on %d items from %s", len(inter.frame), inter.n_users,
                inter.n_items, where)
    return inter


def _check_choice(name: str, value: Any, allowed: Sequence[str]) -> None:
    # The one place a string parameter is checked: says which, what it got, what it accepts.
    if value not in allowed:
        raise InputError(f"{name} must be one of {', '.join(map(repr, allowed))}; got {value!r}")


def _is_amazon_header(names: Any) -> bool:
    return [str(n) for n in names][:2] == list(AMAZON_REVIEWS_COLUMNS[:2]) and all(
        c in set(map(str, names)) for c in _AMAZON_ROLES.values())


def _detect_format(path: Path) -> str:
    if path.name == "u.data":
        return "movielens"
    if path.suffix.lower() in (".parquet", ".pq"):
        return "table"
    with path.open("rb") as handle:
        first = handle.readline().decode("utf-8", errors="replace").rstrip("\r\n")
    return "amazon" if _is_amazon_header(first.split("\t")) else "table"


def _roles(fmt: str, columns: Mapping[str, str] | None, available: Sequence[str],
           where: str) -> dict[str, str]:
    unknown = sorted(set(columns or {}) - set(_ROLES))
    if unknown:
        raise InputError(f"columns maps unknown roles {unknown}; the roles are {list(_ROLES)}",
                         file=where)
    base = dict(_AMAZON_ROLES) if fmt == "amazon" else (
        dict(zip(_ROLES[:4], _MOVIELENS_NAMES, strict=True)) if fmt == "movielens"
        else {role: role for role in _ROLES})
    roles = {**base, **dict(columns or {})}
    for role in ("user", "item", "rating"):
        if roles[role] not in available:
            raise InputError(f"the {role} column {roles[role]!r} is absent (columns: "
                             f"{', '.join(map(str, available))})", file=where, column=roles[role])
    for role in ("timestamp", "title"):  # optional, unless mapped explicitly
        if role in (columns or {}) and roles[role] not in available:
            raise InputError(f"the {role} column {roles[role]!r} is absent (columns: "
                             f"{', '.join(map(str, available))})", file=where, column=roles[role])
    return {role: name for role, name in roles.items() if name in available}


def _frame_source(frame: pd.DataFrame, fmt: str, columns: Mapping[str, str] | None
                  ) -> tuple[pd.DataFrame, str, int | np.ndarray, dict[str, str]]:
    where = "DataFrame"
    roles = _roles(fmt, columns, [str(c) for c in frame.columns], where)
    raw = frame.rename(columns=str)[list(roles.values())].reset_index(drop=True)
    return raw, where, 1, roles  # row 1 is the first row of the table


def _read_file(path: Path, fmt: str, columns: Mapping[str, str] | None, sep: str | None,
               bad_lines: str, notes: list[str]) -> tuple[pd.DataFrame, int | np.ndarray, dict[str, str]]:
    """The raw columns of the roles, as text, and the file line of each data row (the first
    one's, when no line was skipped)."""
    where = str(path)
    if fmt == "table" and path.suffix.lower() in (".parquet", ".pq"):
        try:
            import pyarrow.parquet as pq

            names = pq.read_schema(path).names
        except Exception as exc:
            raise InputError(f"cannot read the Parquet file: {exc}", file=where) from exc
        roles = _roles(fmt, columns, names, where)
        return pd.read_parquet(path, columns=list(dict.fromkeys(roles.values()))), 1, roles
    if fmt == "movielens":
        header, names, delimiter, quoting = None, _MOVIELENS_NAMES, sep or "\t", csv.QUOTE_NONE
        first_line = 1
    else:
        with path.open("rb") as handle:
            head = handle.readline().decode("utf-8", errors="replace").rstrip("\r\n")
        if fmt == "amazon":
            delimiter, quoting = "\t", csv.QUOTE_NONE
        else:
            delimiter = sep or ("\t" if path.suffix.lower() in (".tsv", ".tab") else _sniff(head))
            quoting = csv.QUOTE_MINIMAL
        header, names, first_line = 0, head.split(delimiter), 2
        if quoting != csv.QUOTE_NONE:
            names = next(csv.reader([head], delimiter=delimiter))
    roles = _roles(fmt, columns, names, where)
    lines: int | np.ndarray = first_line
    skip: list[int] = []
    if quoting == csv.QUOTE_NONE:
        # Unquoted: a line's fields are its delimiters + 1, checked before pandas reads (which,
        # reading only some columns, would pad a short line and ignore a long one).
        bad, n_lines = _wrong_field_counts(path, delimiter.encode(), len(names), first_line)
        if bad.size and bad_lines == "error":
            what = "the header" if header == 0 else f"{fmt} lines"
            more = f" ({bad.size:,} lines are so; bad_lines='skip' skips them)" if bad.size > 1 else ""
            raise InputError(f"the line does not have the {len(names)} {delimiter!r}-separated fields "
                             f"of {what}{more}", file=where, row=int(bad[0]))
        if bad.size:
            notes.append(f"{_count(int(bad.size), 'line')} without {len(names)} fields skipped "
                         f"(first: line {bad[0]})")
            skip = [int(b) - 1 for b in bad]  # pandas counts lines from 0
            every = np.arange(first_line, n_lines + 1)
            lines = every[~np.isin(every, bad)]
    usecols = list(dict.fromkeys(roles.values())) if quoting == csv.QUOTE_NONE else None
    try:
        raw = pd.read_csv(path, sep=delimiter, header=header, names=None if header == 0 else names,
                          usecols=usecols, dtype=str, quoting=quoting, keep_default_na=False,
                          na_values=[""], skip_blank_lines=False, encoding="utf-8",
                          encoding_errors="replace", engine="c", skiprows=skip or None)
    except pd.errors.EmptyDataError as exc:
        raise InputError("the file is empty", file=where) from exc
    except (pd.errors.ParserError, ValueError) as exc:
        message = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        line = re.search(r"line (\d+)", message)
        raise InputError(f"cannot read the file: {message}", file=where,
                         row=int(line.group(1)) if line else None) from exc
    return raw[list(dict.fromkeys(roles.values()))], lines, roles


def _wrong_field_counts(path: Path, delimiter: bytes, expected: int, first_line: int
                        ) -> tuple[np.ndarray, int]:
    """1-based numbers of the data lines (from ``first_line``) whose field count is not
    ``expected``, and the number of lines. Read in 64 MB blocks: the lab's files are GBs."""
    bad: list[np.ndarray] = []
    line, carried = 1, 0  # carried: delimiters seen on the current, unfinished line
    tail = b""
    with path.open("rb") as handle:
        while block := handle.read(1 << 26):
            a = np.frombuffer(block, np.uint8)
            ends = np.flatnonzero(a == 10)
            marks = np.flatnonzero(a == delimiter[0])
            before = np.searchsorted(marks, ends)  # delimiters before each line end
            counts = np.diff(np.concatenate(([0], before))) + 1
            if counts.size:
                counts[0] += carried
                numbers = np.arange(line, line + counts.size)
                bad.append(numbers[(counts != expected) & (numbers >= first_line)])
                line += counts.size
                carried = int(marks.size - before[-1])
                tail = block[ends[-1] + 1:]
            else:
                carried += int(marks.size)
                tail += block
    if tail.strip(b"\r"):  # a last line without a line end
        if carried + 1 != expected and line >= first_line:
            bad.append(np.array([line]))
        line += 1
    return (np.concatenate(bad) if bad else np.array([], dtype=np.int64)), line - 1


def _sniff(head: str) -> str:
    counts = {d: head.count(d) for d in ",;\t|"}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def _typed(raw: pd.DataFrame, roles: dict[str, str], where: str, first_line: int | np.ndarray,
           scale: tuple[float, float] | None, notes: list[str]) -> pd.DataFrame:
    """Roles -> typed columns (ids as text, rating float64, timestamp datetime64[ns]); errors
    name the file, the column and the line of the first bad value."""
    n = len(raw)
    if n == 0:
        raise InputError("no ratings: the source has no data rows", file=where)
    out = pd.DataFrame(index=raw.index)
    for role in ("user", "item"):
        out[role] = _ids(raw[roles[role]], roles[role], where, first_line)
    column = roles["rating"]
    values = raw[column]
    rating = pd.to_numeric(values, errors="coerce").astype(np.float64)
    _first_bad(values.isna(), "the rating is missing", where, column, first_line)
    _first_bad(rating.isna() | ~np.isfinite(rating.fillna(0)), "the rating is not a number", where,
               column, first_line, values)
    if scale is not None:
        outside = (rating < scale[0]) | (rating > scale[1])
        _first_bad(outside, f"the rating is outside the declared scale {scale[0]:g}..{scale[1]:g}",
                   where, column, first_line, values)
    out["rating"] = rating.to_numpy(np.float64)
    if "timestamp" in roles:
        out["timestamp"] = _timestamps(raw[roles["timestamp"]], roles["timestamp"], where, first_line)
    else:
        out["timestamp"] = pd.Series(pd.NaT, index=raw.index, dtype="datetime64[ns]")
        notes.append("no timestamps: ties and 'latest' follow file order")
    if "title" in roles:
        out["title"] = raw[roles["title"]].astype(object).where(raw[roles["title"]].notna(), None)
    return out


def _ids(values: pd.Series, column: str, where: str, first_line: int | np.ndarray) -> pd.Series:
    if pd.api.types.is_float_dtype(values.dtype):
        # 17850.0 -> "17850": a float column of whole numbers holds integer ids
        whole = values.notna() & (values == np.round(values))
        text = values.astype(object).where(values.notna(), None)
        text = text.where(~whole, values.where(whole, 0).astype(np.int64).astype(str))
        ids = pd.Series(text, index=values.index).astype("string")
    else:
        ids = values.astype("string").str.strip()
    _first_bad(ids.isna() | (ids == ""), "the id is missing", where, column, first_line)
    return ids.astype(object)


def _first_bad(bad: pd.Series | np.ndarray, message: str, where: str, column: str,
               first_line: int | np.ndarray, values: pd.Series | None = None) -> None:
    """Raise for the first row where ``bad`` holds. ``first_line``: the line (or row) number
    of the first row, or every row's number when rows were left out before."""
    bad = np.asarray(bad, dtype=bool)
    if bad.any():
        at = int(np.flatnonzero(bad)[0])
        shown = "" if values is None else f" ({values.iloc[at]!r})"
        row = int(first_line[at]) if isinstance(first_line, np.ndarray) else first_line + at
        raise InputError(f"{message}{shown}", file=where, column=column, row=row)


def _timestamps(values: pd.Series, column: str, where: str, first_line: int | np.ndarray) -> pd.Series:
    """Dates (any layout pandas reads, one per column first, mixed if that fails) or unix
    seconds (a numeric column); NaT where empty; an unreadable value is an error."""
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        parsed = values
        present = values.notna()
    else:
        present = values.notna() & (values.astype("string").str.strip() != "")
        sample = values[present].iloc[:1000]
        if pd.api.types.is_numeric_dtype(values.dtype) or (
                len(sample) and pd.to_numeric(sample, errors="coerce").notna().all()):
            parsed = pd.to_datetime(pd.to_numeric(values, errors="coerce"), unit="s", errors="coerce")
        else:
            text = values.where(present)
            parsed = pd.to_datetime(text, errors="coerce")  # the layout of the first value
            if (present & parsed.isna()).any():
                parsed = pd.to_datetime(text, errors="coerce", format="mixed")
    _first_bad(present & parsed.isna(), "the timestamp cannot be read as a date", where, column,
               first_line, values)
    parsed = pd.Series(parsed, index=values.index)
    if getattr(parsed.dt, "tz", None) is not None:
        parsed = parsed.dt.tz_convert("UTC").dt.tz_localize(None)
    return parsed.astype("datetime64[ns]")


def _movielens_titles(path: Path) -> pd.Series:
    try:
        table = pd.read_csv(path, sep="|", header=None, usecols=[0, 1], dtype=str, encoding="latin-1",
                            quoting=csv.QUOTE_NONE, keep_default_na=False)
    except (pd.errors.ParserError, ValueError) as exc:
        raise InputError(f"cannot read the MovieLens titles: {exc}", file=str(path)) from exc
    return pd.Series(table[1].to_numpy(), index=table[0].str.strip().to_numpy(), name="title")


# --------------------------------------------------------------------------- indexing

def _sorted_ids(ids: pd.Series | np.ndarray) -> tuple[pd.Index, np.ndarray]:
    """Distinct ids in code order (numerically when all are whole numbers, else as strings) and
    each row's code."""
    raw_codes, unique = pd.factorize(np.asarray(ids, dtype=object))
    text = np.array([str(v) for v in unique], dtype=object)
    if len(text) and all(t.isdigit() for t in text):
        order = sorted(range(len(text)), key=lambda i: (int(text[i]), text[i]))
    else:
        order = sorted(range(len(text)), key=lambda i: text[i])
    code_of = np.empty(len(text), dtype=np.int64)
    code_of[np.asarray(order, dtype=np.int64)] = np.arange(len(text))
    return pd.Index(text[order], dtype=object), code_of[raw_codes]


def _indexed(frame: pd.DataFrame, *, row_titles: pd.Series | None = None,
             title_of: pd.Series | None = None, kind: str, scale: tuple[float, float] | None,
             notes: list[str], duplicates: str, where: str, first_line: int | np.ndarray,
             rating_column: str) -> Interactions:
    """Code the ids, then deduplicate (the rules in the module docstring); on integer codes, as
    the lab's files run to millions of rows. Titles come per row (``row_titles``, aligned with
    ``frame``: an item's first non-empty title in file order wins) or as item id -> title
    (``title_of``)."""
    users, user_codes = _sorted_ids(frame["user"])
    items, item_codes = _sorted_ids(frame["item"])
    coded = pd.DataFrame({
        "user": user_codes, "item": item_codes,
        "rating": frame["rating"].to_numpy(np.float64),
        "timestamp": frame["timestamp"].to_numpy("datetime64[ns]"),
        "_line": (first_line if isinstance(first_line, np.ndarray)
                  else np.arange(len(frame)) + first_line),
    })
    exact = ["user", "item", "rating", "timestamp"]
    if row_titles is not None:
        per_row = pd.DataFrame({"item": frame["item"].to_numpy(), "title": row_titles.to_numpy()}).dropna()
        title_of = per_row.drop_duplicates("item").set_index("item")["title"]
        coded["_title"] = pd.factorize(row_titles.to_numpy(), use_na_sentinel=True)[0]
        exact.append("_title")  # the title is part of what makes a row an exact duplicate
    dup = coded.duplicated(exact, keep="first").to_numpy()
    if dup.any():
        notes.append(f"{_count(int(dup.sum()), 'exact duplicate row')} dropped")
        coded = coded[~dup]
    coded = coded.drop(columns=["_title"], errors="ignore")
    coded = _resolve_pairs(coded, duplicates, notes, where, rating_column, users, items)
    coded = coded.reset_index(drop=True)
    if title_of is not None:
        title_of = title_of[~title_of.index.duplicated()]
        title_of = title_of.reindex(items).dropna()
        title_of.index = pd.Index(title_of.index.astype(str), dtype=object)
        title_of.name = "title"
    single = int((np.bincount(coded["user"].to_numpy(), minlength=len(users)) == 1).sum())
    if single:
        notes.append(f"{_count(single, 'user')} {'has' if single == 1 else 'have'} a single "
                     f"{'rating' if kind == 'explicit' else 'purchased item'}")
    return Interactions(frame=coded, users=users, items=items, titles=title_of, kind=kind, scale=scale,
                        notes=notes)


def _resolve_pairs(frame: pd.DataFrame, duplicates: str, notes: list[str], where: str,
                   rating_column: str, users: pd.Index, items: pd.Index) -> pd.DataFrame:
    """One row per (user, item): the last row in (timestamp, file order) order is the latest."""
    repeated = frame.duplicated(["user", "item"], keep=False).to_numpy()
    if not repeated.any():
        return frame.drop(columns="_line")
    rows = frame[repeated]
    # NaT is the smallest int64: an unknown timestamp counts as the earliest
    rows = rows.assign(_t=rows["timestamp"].to_numpy("datetime64[ns]").view(np.int64)).sort_values(
        ["_t", "_line"], kind="stable")
    pair = rows.groupby(["user", "item"], sort=False)["rating"]
    conflicting = (pair.transform("nunique") > 1).to_numpy()
    n_conflict_pairs = int(rows[conflicting][["user", "item"]].drop_duplicates().shape[0])
    n_same_pairs = int(rows[~conflicting][["user", "item"]].drop_duplicates().shape[0])
    if n_conflict_pairs and duplicates == "error":
        in_file = rows.sort_values("_line")
        firsts = in_file.groupby(["user", "item"], sort=False)["rating"].transform("first")
        second = in_file[in_file["rating"] != firsts].iloc[0]
        raise InputError(f"user {users[int(second['user'])]} rated item {items[int(second['item'])]} "
                         f"again with a different rating ({second['rating']:g}, first "
                         f"{firsts.loc[second.name]:g}); duplicates='latest' keeps the latest, "
                         "'mean' averages them",
                         file=where, column=rating_column, row=int(second["_line"]))
    latest = rows.drop_duplicates(["user", "item"], keep="last")
    if duplicates == "mean" and n_conflict_pairs:
        means = pair.mean()
        latest = latest.assign(rating=means.reindex(pd.MultiIndex.from_frame(latest[["user", "item"]]))
                               .to_numpy())
    if n_same_pairs:
        notes.append(f"{_count(n_same_pairs, '(user, item) pair')} rated more than once with the same "
                     "rating: one row kept (the latest)")
    if n_conflict_pairs:
        rule = ("kept the latest by timestamp (ties: the last in file order)" if duplicates == "latest"
                else "their mean kept (timestamp: the latest)")
        notes.append(f"{_count(n_conflict_pairs, '(user, item) pair')} rated more than once with "
                     f"different ratings: {rule}")
    kept = pd.concat([frame[~repeated], latest.drop(columns="_t")])
    return kept.sort_values("_line", kind="stable").drop(columns="_line")


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


# --------------------------------------------------------------------------- filters

@public
def filter_long_tail(inter: Interactions, min_user: int = 18, min_item: int = 95, *,
                     iterate: bool = False) -> Interactions:
    """Keep users with at least ``min_user`` ratings and items with at least ``min_item``.

    As the AWS lab does, both counts are taken once on the input (deduplicated) data and both
    thresholds applied together, so a user kept may end with fewer than ``min_user`` ratings
    once thin items are gone. ``iterate=True`` repeats until every user and item meets its
    threshold (a k-core). Codes are re-assigned over what is kept (same ordering rule).

    Parameters
    ----------
    inter : Interactions
    min_user, min_item : int
        Thresholds (the lab: 18 ratings per customer, 95 reviews per product).
    iterate : bool
        Repeat until stable.

    Returns
    -------
    Interactions

    Examples
    --------
    >>> inter = read_ratings(pd.DataFrame({"user": [1, 1, 2, 2, 3], "item": [1, 2, 1, 2, 1],
    ...                                    "rating": 5}))
    >>> kept = filter_long_tail(inter, min_user=2, min_item=3)
    >>> list(kept.users), list(kept.items)
    (['1', '2'], ['1'])
    >>> print(kept.notes[-1])  # doctest: +NORMALIZE_WHITESPACE
    kept 2 of 5 ratings: 2 of 3 users with >= 2 ratings and 1 of 2 items with >= 3 ratings
      (counted once on the input, as the lab does)
    """
    if min_user < 1 or min_item < 1:
        raise InputError(f"min_user and min_item must be >= 1, got {min_user} and {min_item}")
    frame = inter.frame
    n0, passes = len(frame), 0
    while True:
        passes += 1
        user_counts = np.bincount(frame["user"].to_numpy(), minlength=inter.n_users)
        item_counts = np.bincount(frame["item"].to_numpy(), minlength=inter.n_items)
        keep = (user_counts[frame["user"].to_numpy()] >= min_user) & (
            item_counts[frame["item"].to_numpy()] >= min_item)
        if passes == 1:
            users_before, items_before = int((user_counts > 0).sum()), int((item_counts > 0).sum())
            users_ok, items_ok = int((user_counts >= min_user).sum()), int((item_counts >= min_item).sum())
        frame = frame[keep]
        if not iterate or keep.all():
            break
    if frame.empty:
        raise InputError(f"no rating is left after keeping users with >= {min_user} ratings and items "
                         f"with >= {min_item} ratings")
    users = inter.users[np.unique(frame["user"].to_numpy())]
    items = inter.items[np.unique(frame["item"].to_numpy())]
    coded = frame.assign(user=users.get_indexer(inter.users[frame["user"].to_numpy()]).astype(np.int64),
                         item=items.get_indexer(inter.items[frame["item"].to_numpy()]).astype(np.int64)
                         ).reset_index(drop=True)
    if iterate:
        note = (f"kept {len(coded):,} of {n0:,} ratings: {len(users):,} of {users_before:,} users and "
                f"{len(items):,} of {items_before:,} items, repeated until every user has >= {min_user} "
                f"ratings and every item >= {min_item} ({passes} passes)")
    else:
        note = (f"kept {len(coded):,} of {n0:,} ratings: {users_ok:,} of {users_before:,} users with "
                f">= {min_user} ratings and {items_ok:,} of {items_before:,} items with >= {min_item} "
                "ratings (counted once on the input, as the lab does)")
    titles = None if inter.titles is None else inter.titles.reindex(items).dropna()
    return replace(inter, frame=coded, users=pd.Index(users, dtype=object),
                   items=pd.Index(items, dtype=object), titles=titles, notes=[*inter.notes, note])


# --------------------------------------------------------------------------- purchases

@public
def from_transactions(lines: pd.DataFrame, *, customer: str, product: str, quantity: str, date: str,
                      invoice: str | None = None, title: str | None = None) -> Interactions:
    """Implicit feedback from transaction lines: one row per customer x product bought.

    Lines without a customer are dropped; returns and cancellations are excluded: a quantity
    of zero or less, and, when an ``invoice`` column is given, an invoice number starting with
    ``C`` (Online Retail's cancellations). Each note says how many lines went for each reason.

    ``rating`` is the number of distinct orders (invoices; without an invoice column, distinct
    purchase dates) in which the customer bought the product: a count, not a score on a scale
    (``matrix("binary")`` gives bought / not bought). ``timestamp`` is the last purchase. The
    title of a product is its first non-empty description in file order.

    Parameters
    ----------
    lines : pandas.DataFrame
        One row per invoice line.
    customer, product, quantity, date : str
        Column names.
    invoice, title : str, optional
        Column names.

    Returns
    -------
    Interactions
        ``kind="implicit"``, ``scale=None``.

    Examples
    --------
    >>> lines = pd.DataFrame({"inv": ["1", "1", "2", "C3", "4"], "cust": [7.0, 7.0, 7.0, 7.0, None],
    ...                       "sku": ["A", "B", "A", "A", "A"], "qty": [1, 2, 3, -1, 1],
    ...                       "day": pd.to_datetime(["2011-01-01", "2011-01-01", "2011-02-01",
    ...                                              "2011-02-02", "2011-03-01"])})
    >>> inter = from_transactions(lines, customer="cust", product="sku", quantity="qty", date="day",
    ...                           invoice="inv")
    >>> inter.frame
       user  item  rating  timestamp
    0     0     0     2.0 2011-02-01
    1     0     1     1.0 2011-01-01
    >>> list(inter.users), list(inter.items)
    (['7'], ['A', 'B'])
    >>> for note in inter.notes: print(note)  # doctest: +NORMALIZE_WHITESPACE
    1 line without a customer dropped
    1 return or cancellation line excluded (quantity <= 0 or invoice starting with C)
    3 purchase lines -> 2 customer x product pairs; rating = number of distinct invoices with
      the product, timestamp = last purchase
    """
    where = "transactions"
    for column in (customer, product, quantity, date, invoice, title):
        if column is not None and column not in lines.columns:
            raise InputError(f"the column {column!r} is absent (columns: "
                             f"{', '.join(map(str, lines.columns))})", file=where, column=column)
    table = lines.reset_index(drop=True)
    notes: list[str] = []
    cust = table[customer]
    no_customer = cust.isna() | (cust.astype("string").str.strip() == "")
    if no_customer.any():
        notes.append(f"{_count(int(no_customer.sum()), 'line')} without a customer dropped")
    qty = pd.to_numeric(table[quantity], errors="coerce")
    _first_bad(qty.isna() & ~no_customer, "the quantity is not a number", where, quantity, 1,
               table[quantity])
    returned = qty <= 0
    reason = "quantity <= 0"
    if invoice is not None:
        returned |= table[invoice].astype("string").str.strip().str.upper().str.startswith("C").fillna(False)
        reason += " or invoice starting with C"
    returned &= ~no_customer
    if returned.any():
        notes.append(f"{_count(int(returned.sum()), 'return or cancellation line')} excluded ({reason})")
    keep = ~(no_customer | returned)
    bought = table[keep]
    if bought.empty:
        raise InputError("no purchase is left once lines without a customer and returns are excluded",
                         file=where)
    rows = np.flatnonzero(keep.to_numpy()) + 1  # 1-based rows of the table, for errors
    when = _timestamps(bought[date], date, where, rows)
    user = _ids(bought[customer], customer, where, rows)
    item = _ids(bought[product], product, where, rows)
    order = (bought[invoice].astype("string").str.strip() if invoice is not None
             else when.astype("string"))
    per_line = pd.DataFrame({"user": user, "item": item, "order": order, "timestamp": when,
                             "_line": np.arange(len(bought))})
    pairs = per_line.groupby(["user", "item"], sort=False).agg(
        rating=("order", "nunique"), timestamp=("timestamp", "max"), _line=("_line", "min"))
    pairs = pairs.reset_index().sort_values("_line", kind="stable")
    orders = "invoices" if invoice else "purchase dates"
    notes.append(f"{_count(len(per_line), 'purchase line')} -> "
                 f"{_count(len(pairs), 'customer x product pair')}; rating = number of distinct "
                 f"{orders} with the product, timestamp = last purchase")
    titles = None
    if title is not None:
        named = pd.DataFrame({"item": item, "title": bought[title].astype("string").str.strip()})
        named = named[named["title"].notna() & (named["title"] != "")]
        titles = named.drop_duplicates("item").set_index("item")["title"].astype(object)
    frame = pairs[["user", "item", "rating", "timestamp"]].reset_index(drop=True)
    frame["rating"] = frame["rating"].astype(np.float64)
    return _indexed(frame, title_of=titles, kind="implicit", scale=None, notes=notes,
                    duplicates="latest", where=where, first_line=1, rating_column="rating")
