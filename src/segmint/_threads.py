"""How many threads segmint's parallel steps use: one place decides.

``threads()`` is the count in force: inside :func:`using_threads` its ``n``; else the
``SEGMINT_THREADS`` environment variable (a positive integer); else the cores this process may
run on (``os.sched_getaffinity``, falling back to ``os.cpu_count()``).

``segmint.run(..., threads=n)`` and ``segmint run --threads N`` wrap a whole run in
``using_threads(n)``, which also limits the BLAS and OpenMP pools of the libraries loaded in
the process (threadpoolctl) to ``n``; DuckDB's recipe queries and the surrogate's LightGBM
take ``threads()`` too. Blocks may nest, and two runs in two threads of one process may
enter and leave them in any order: ``threads()`` is the count of the latest block still open,
and the pools' limits are the lowest any open block asks for (``map_in_threads`` asks BLAS
for one thread while its items run), back to what they were once the last block closes.
"""
from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

from segmint.errors import SpecError

__all__ = ["threads", "using_threads", "map_in_threads", "available_cores", "ENV"]

T = TypeVar("T")
R = TypeVar("R")

#: the environment variable that sets the thread count
ENV = "SEGMINT_THREADS"

_lock = threading.Lock()
# the counts of the using_threads blocks now open, in the order they were entered, each under
# its own token (process-wide: worker threads see them). Two runs in two threads of one process
# leave in any order; each removes its own entry, so neither restores the other's count.
_active: dict[object, int] = {}
# the BLAS and OpenMP caps each open block asks for (None: no cap), and the threadpoolctl
# limiter that recorded the pools' own limits when the first block opened
_caps: dict[object, tuple[int | None, int | None]] = {}
_first_limiter: list[object] = []


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity), else the machine's count."""
    if hasattr(os, "sched_getaffinity"):
        try:
            return max(1, len(os.sched_getaffinity(0)))
        except OSError:  # pragma: no cover - affinity unreadable
            pass
    return os.cpu_count() or 1


def _parse(value: object, where: str) -> int:
    """A positive int, or a SpecError naming where the value came from and the value."""
    if isinstance(value, bool):
        raise SpecError(f"{where} must be a positive integer (a thread count), got {value!r}")
    if isinstance(value, int):
        n = value
    else:
        text = str(value).strip()
        try:
            n = int(text)
        except ValueError:
            raise SpecError(f"{where} must be a positive integer (a thread count), "
                            f"got {value!r}") from None
    if n < 1:
        raise SpecError(f"{where} must be a positive integer (a thread count), got {value!r}")
    return n


def threads() -> int:
    """The number of threads segmint's parallel steps use now.

    Examples
    --------
    >>> with using_threads(3):
    ...     threads()
    3
    """
    with _lock:
        current = next(reversed(_active.values()), None)
    if current is not None:
        return current
    value = os.environ.get(ENV)
    if value is not None and value.strip() != "":
        return _parse(value, f"the environment variable {ENV}")
    return available_cores()


@contextlib.contextmanager
def using_threads(n: int | None = None) -> Iterator[int]:
    """Use ``n`` threads (None: :func:`threads`) until the block ends; yields the count.

    Inside, :func:`threads` returns ``n`` (in every thread of the process) and the BLAS and
    OpenMP thread pools of loaded libraries are limited to ``n``; both are restored after.
    """
    count = threads() if n is None else _parse(n, "threads")
    token = object()
    with _lock:
        _active[token] = count
    try:
        with _capped(blas=count, openmp=count):
            yield count
    finally:
        with _lock:
            del _active[token]


@contextlib.contextmanager
def _capped(*, blas: int | None, openmp: int | None) -> Iterator[None]:
    """Cap the BLAS and OpenMP pools while the block is open. The caps in force are the lowest
    of every open block's, set again as blocks open and close in any order (each removes its
    own), and the pools get their own limits back when the last one closes."""
    token = object()
    with _lock:
        _caps[token] = (blas, openmp)
        _apply_caps()
    try:
        yield
    finally:
        with _lock:
            del _caps[token]
            _apply_caps()


def _apply_caps() -> None:
    # under _lock
    from threadpoolctl import threadpool_limits

    if not _caps:
        if _first_limiter:
            _first_limiter.pop().restore_original_limits()  # type: ignore[attr-defined]
        return
    limits: dict[str, int] = {}
    for api, i in (("blas", 0), ("openmp", 1)):
        asked = [c for c in (cap[i] for cap in _caps.values()) if c is not None]
        if asked:
            limits[api] = min(asked)
    limiter = threadpool_limits(limits=limits)
    if not _first_limiter:
        _first_limiter.append(limiter)


def _one_openmp_thread() -> None:
    """Worker-thread initializer: OpenMP regions started from this thread use one thread (the
    OpenMP thread count is per calling thread; the worker threads are the parallelism)."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1, user_api="openmp")  # not restored: the thread ends with its pool


def map_in_threads(fn: Callable[[T], R], items: Sequence[T], n: int | None = None, *,
                   done: Callable[[int], None] | None = None) -> list[R]:
    """``[fn(x) for x in items]`` on up to ``n`` threads (None: :func:`threads`), in order.

    BLAS runs single-threaded while the items run (on one thread too: a BLAS product's last
    bits can depend on its thread count, and results must not depend on the thread count), and
    OpenMP regions started by the workers use one thread each: the items are the parallelism.
    ``done(i)`` is called in the calling thread as item ``i``'s result is taken, in order (for
    progress). The first exception raised is raised here, after the running items finish.
    """
    workers = min(threads() if n is None else n, len(items))
    if not items:
        return []
    out: list[R] = []
    with _capped(blas=1, openmp=None), contextlib.ExitStack() as stack:
        if workers <= 1:
            results: Iterator[R] = map(fn, items)
        else:
            from concurrent.futures import ThreadPoolExecutor

            pool = stack.enter_context(ThreadPoolExecutor(max_workers=workers,
                                                          initializer=_one_openmp_thread))
            results = pool.map(fn, items)
        for result in results:
            out.append(result)
            if done:
                done(len(out) - 1)
    return out
