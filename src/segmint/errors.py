"""One family of errors. Each carries the file, column and row it is about, where known.

The CLI turns any :class:`SegmintError` into one red line and a non-zero exit code;
anything else that escapes is a bug.

The message and the file are redacted (:func:`segmint._secrets.redact`) when the error is made,
so no error can carry a password, whichever code raises it and whatever it puts in the text.
"""
from __future__ import annotations

from segmint._secrets import redact

__all__ = ["SegmintError", "InputError", "SpecError", "ModelError"]


class SegmintError(Exception):
    """Base class: a problem the user can fix, with where it is.

    Examples
    --------
    >>> str(InputError("cannot connect", file="postgresql://ana:hunter2@db/crm?sslpassword=x"))
    'file postgresql://ana:***@db/crm?sslpassword=***: cannot connect'
    """

    def __init__(self, message: str, *, file: str | None = None, column: str | None = None,
                 row: int | None = None) -> None:
        self.message = redact(str(message))
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
