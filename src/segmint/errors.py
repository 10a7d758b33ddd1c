"""One family of errors. Each carries the file, column and row it is about, where known.

The CLI turns any :class:`SegmintError` into one red line and a non-zero exit code;
anything else that escapes is a bug.

The message and the file are redacted (:func:`segmint._secrets.redact`) when the error is made,
so no error can carry a password, whichever code raises it and whatever it puts in the text.
"""
from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any, TypeVar

from segmint._secrets import redact

__all__ = ["SegmintError", "InputError", "SpecError", "ModelError", "InternalError", "public"]

F = TypeVar("F", bound=Callable[..., Any])


def _one_line(message: str) -> str:
    r"""A message as one line: libraries' multi-line texts (DuckDB's "Did you mean", a
    database driver's hints) joined, SQLAlchemy's link to its docs left out.

    Examples
    --------
    >>> _one_line('Table sales does not exist!\nDid you mean "sqlite_master"?')
    'Table sales does not exist! Did you mean "sqlite_master"?'
    >>> _one_line("Connection refused\n\tIs the server running?\n(Background on this error at: "
    ...           "https://sqlalche.me/e/20/e3q8)")
    'Connection refused Is the server running?'
    """
    message = re.sub(r"\s*\(Background on this error at: [^)]*\)", "", message)
    return " ".join(line.strip() for line in message.splitlines() if line.strip())


class SegmintError(Exception):
    """Base class: a problem the user can fix, with where it is.

    Examples
    --------
    >>> str(InputError("cannot connect", file="postgresql://ana:hunter2@db/crm?sslpassword=x"))
    'file postgresql://ana:***@db/crm?sslpassword=***: cannot connect'
    """

    def __init__(self, message: str, *, file: str | None = None, column: str | None = None,
                 row: int | None = None) -> None:
        self.message = redact(_one_line(str(message)))
        self.file = None if file is None else redact(str(file))
        self.column = column
        self.row = row
        super().__init__(self.__str__())

    def __str__(self) -> str:
        # Each part redacted again (a no-op on redacted text): code may set message or file
        # after __init__. Parts, not the joined line: "password=***: msg" must keep its colon.
        where = []
        if self.file is not None:
            where.append(f"file {redact(self.file)}")
        if self.column is not None:
            where.append(f"column {self.column!r}")
        if self.row is not None:
            where.append(f"row {self.row}")
        prefix = ", ".join(where)
        message = redact(self.message)
        return f"{prefix}: {message}" if prefix else message


class InputError(SegmintError):
    """The data given cannot be read or does not hold what the spec says."""


class SpecError(SegmintError):
    """The run spec is invalid."""


class ModelError(SegmintError):
    """A saved run or solution cannot be found or used."""


class InternalError(SegmintError):
    """Something segmint did not expect: a bug. The message says where the full trace was
    written, for a bug report."""


def _trace_file(exc: BaseException) -> str:
    import tempfile
    import traceback

    trace = redact("".join(traceback.format_exception(exc)))
    with tempfile.NamedTemporaryFile("w", prefix="segmint-error-", suffix=".log", delete=False,
                                     encoding="utf-8") as handle:
        handle.write(trace)
    return handle.name


def public(fn: F) -> F:
    """Mark a function of the public API: whatever goes wrong inside reaches the caller as a
    :class:`SegmintError`; one that is not already one is a bug and becomes an
    :class:`InternalError` naming it in one line, its trace written to a file."""
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except SegmintError:
            raise
        except Exception as exc:
            first = (str(exc).splitlines() or [""])[0][:300]
            raise InternalError(f"unexpected {type(exc).__name__}: {first} (a bug in segmint; "
                                f"the full trace is in {_trace_file(exc)})") from exc
    return wrapper  # type: ignore[return-value]
