"""One family of errors. Each carries the file, column and row it is about, where known.

The CLI turns any :class:`SegmintError` into one red line and a non-zero exit code;
anything else that escapes is a bug.
"""
from __future__ import annotations

__all__ = ["SegmintError", "InputError", "SpecError", "ModelError"]


class SegmintError(Exception):
    """Base class: a problem the user can fix, with where it is."""

    def __init__(self, message: str, *, file: str | None = None, column: str | None = None,
                 row: int | None = None) -> None:
        self.message = message
        self.file = None if file is None else str(file)
        self.column = column
        self.row = row
        super().__init__(self.__str__())

    def __str__(self) -> str:
        where = []
        if self.file is not None:
            where.append(f"file {self.file}")
        if self.column is not None:
            where.append(f"column {self.column!r}")
        if self.row is not None:
            where.append(f"row {self.row}")
        prefix = ", ".join(where)
        return f"{prefix}: {self.message}" if prefix else self.message


class InputError(SegmintError):
    """The data given cannot be read or does not hold what the spec says."""


class SpecError(SegmintError):
    """The run spec is invalid."""


class ModelError(SegmintError):
    """A saved run or solution cannot be found or used."""
