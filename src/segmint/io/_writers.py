"""Writing outputs so that a reader never sees half a file or half a run folder.

Each writer writes to a temporary sibling (``.<name>.tmp-<random>``) in the destination
folder and moves it into place with :func:`os.replace`, which is atomic on one file system.

Frame writers drop ``df.attrs`` first: pandas stores them in the Parquet schema metadata, and
a frame read from a source carries the source's record there (a database URL among it). Text
is written as given; the callers redact it (:mod:`segmint._secrets`).
"""
from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from segmint.errors import SegmintError

__all__ = ["write_parquet_atomic", "write_parquet", "write_csv_atomic", "write_text_atomic",
           "atomic_dir"]


def _temporary_sibling(final: Path) -> Path:
    # Same folder as the destination: os.replace is only atomic within one file system.
    return final.parent / f".{final.name}.tmp-{secrets.token_hex(4)}"


def _fsync(path: Path) -> None:
    # Flush the bytes to disk before the rename, so a crash cannot leave an empty file in place.
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def _atomic_file(path: str | os.PathLike[str]) -> Iterator[Path]:
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary_sibling(final)
    try:
        yield tmp
        _fsync(tmp)
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _without_attrs(df: pd.DataFrame) -> pd.DataFrame:
    # A shallow copy (no data copied) whose attrs are empty: pandas writes attrs into the
    # Parquet metadata, where a source's URL would travel with every file.
    if not df.attrs:
        return df
    out = df.copy(deep=False)
    out.attrs = {}
    return out


def _keep_index(df: pd.DataFrame, index: bool | None) -> bool:
    # None: write the index only when it carries information (not a plain 0..n-1 range).
    if index is not None:
        return index
    return not (isinstance(df.index, pd.RangeIndex) and df.index.start == 0
                and df.index.step == 1 and df.index.name is None)


def write_parquet_atomic(df: pd.DataFrame, path: str | os.PathLike[str], *,
                         index: bool | None = None) -> Path:
    """Write a frame to Parquet, atomically, without its ``attrs``.

    Parameters
    ----------
    df : pandas.DataFrame
        The frame to write. Its ``attrs`` are not written (pandas would put them in the
        Parquet metadata); the frame itself is left as it is.
    path : str or os.PathLike
        The destination; its folder is created if absent. An existing file is replaced.
    index : bool or None, default None
        Passed to :meth:`pandas.DataFrame.to_parquet`: None keeps a meaningful index and
        stores a plain range index as metadata only.

    Returns
    -------
    pathlib.Path
        The path written.

    Examples
    --------
    >>> import tempfile, pandas as pd
    >>> folder = tempfile.mkdtemp()
    >>> df = pd.DataFrame({"a": [1, 2]})
    >>> df.attrs["source"] = {"url": "postgresql://ana@db/crm"}
    >>> out = write_parquet_atomic(df, f"{folder}/t.parquet")
    >>> pd.read_parquet(out)["a"].tolist(), pd.read_parquet(out).attrs
    ([1, 2], {})
    """
    with _atomic_file(path) as tmp:
        write_parquet(df, tmp, index=index)
    return Path(path)


def write_parquet(df: pd.DataFrame, path: str | os.PathLike[str], *,
                  index: bool | None = None) -> Path:
    """Write a frame to Parquet without its ``attrs``, in place: for the many small files of a
    folder that :func:`atomic_dir` makes whole, where a rename and fsync per file would only
    cost time.

    Parameters
    ----------
    df : pandas.DataFrame
        The frame to write; its ``attrs`` are not written.
    path : str or os.PathLike
        The destination; its folder must exist.
    index : bool or None, default None
        As in :func:`write_parquet_atomic`.

    Returns
    -------
    pathlib.Path
        The path written.
    """
    _without_attrs(df).to_parquet(path, index=index)
    return Path(path)


def write_csv_atomic(df: pd.DataFrame, path: str | os.PathLike[str], *,
                     index: bool | None = None) -> Path:
    """Write a frame to a UTF-8 CSV file with ``\\n`` line ends, atomically.

    Parameters
    ----------
    df : pandas.DataFrame
        The frame to write.
    path : str or os.PathLike
        The destination; its folder is created if absent. An existing file is replaced.
    index : bool or None, default None
        Write the index as the first column; None writes it only when it is not a plain
        0..n-1 range.

    Returns
    -------
    pathlib.Path
        The path written.

    Examples
    --------
    >>> import tempfile, pandas as pd
    >>> folder = tempfile.mkdtemp()
    >>> out = write_csv_atomic(pd.DataFrame({"a": [1, 2]}), f"{folder}/t.csv")
    >>> out.read_text()
    'a\\n1\\n2\\n'
    """
    with _atomic_file(path) as tmp:
        with open(tmp, "x", encoding="utf-8", newline="") as handle:
            _without_attrs(df).to_csv(handle, index=_keep_index(df, index), lineterminator="\n")
    return Path(path)


def write_text_atomic(text: str, path: str | os.PathLike[str], *, encoding: str = "utf-8") -> Path:
    """Write text to a file, atomically.

    Parameters
    ----------
    text : str
        The text; written as is (no newline translation, no redaction: the caller redacts).
    path : str or os.PathLike
        The destination; its folder is created if absent. An existing file is replaced.
    encoding : str, default "utf-8"

    Returns
    -------
    pathlib.Path
        The path written.

    Examples
    --------
    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> write_text_atomic("seed: 0\\n", f"{folder}/spec.yaml").read_text()
    'seed: 0\\n'
    """
    with _atomic_file(path) as tmp:
        with open(tmp, "x", encoding=encoding, newline="") as handle:
            handle.write(text)
    return Path(path)


@contextlib.contextmanager
def atomic_dir(final_path: str | os.PathLike[str], *, overwrite: bool = False) -> Iterator[Path]:
    """Build a folder under a temporary name and move it into place only on success.

    Yields a new empty sibling folder named ``.<name>.tmp-<random>``. When the ``with``
    block ends normally the folder is renamed to ``final_path``; when it raises (any
    exception, KeyboardInterrupt included) the folder is removed, so no half-written run
    folder is ever left behind.

    Parameters
    ----------
    final_path : str or os.PathLike
        Where the finished folder goes; its parent is created if absent.
    overwrite : bool, default False
        If False and ``final_path`` exists, raise :class:`~segmint.errors.SegmintError`
        before anything is written. If True, an existing folder is replaced on success
        (and left untouched on failure).

    Yields
    ------
    pathlib.Path
        The temporary folder to write into.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> runs = Path(tempfile.mkdtemp())
    >>> with atomic_dir(runs / "run-1") as tmp:
    ...     _ = (tmp / "manifest.json").write_text("{}")
    >>> sorted(p.name for p in runs.iterdir())
    ['run-1']
    >>> (runs / "run-1" / "manifest.json").read_text()
    '{}'
    """
    final = Path(final_path)
    if final.exists() and not overwrite:
        raise SegmintError("already exists; choose another name or allow overwriting",
                           file=str(final))
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary_sibling(final)
    try:
        # made inside the try: an interrupt that lands as mkdir returns still removes it
        tmp.mkdir()
        yield tmp
        if final.exists():
            if not overwrite:
                raise SegmintError("was created by someone else while this one was being "
                                   "written; nothing was moved into place", file=str(final))
            # Move the old folder aside first: two renames keep a complete folder at every moment
            # but one, instead of deleting the old one before the new one is in place.
            old = final.parent / f".{final.name}.old-{secrets.token_hex(4)}"
            os.replace(final, old)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
