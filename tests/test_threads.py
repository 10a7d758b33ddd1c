"""The thread count: SEGMINT_THREADS, using_threads, segmint.run(threads=) and --threads."""
from __future__ import annotations

import threading

import numpy as np
import pandas as pd
import pytest
import yaml

from segmint._threads import ENV, available_cores, threads, using_threads
from segmint.errors import SegmintError, SpecError


def test_default_is_the_cores_this_process_may_use(monkeypatch):
    import os

    monkeypatch.delenv(ENV, raising=False)
    assert threads() == len(os.sched_getaffinity(0)) == available_cores()


@pytest.mark.parametrize("value, expected", [("1", 1), ("3", 3), (" 7 ", 7), ("", None)])
def test_environment_variable(monkeypatch, value, expected):
    monkeypatch.setenv(ENV, value)
    assert threads() == (available_cores() if expected is None else expected)


@pytest.mark.parametrize("value", ["0", "-2", "abc", "1.5", "2x"])
def test_a_bad_environment_value_is_a_clear_error(monkeypatch, value):
    monkeypatch.setenv(ENV, value)
    with pytest.raises(SpecError) as caught:
        threads()
    message = str(caught.value)
    assert ENV in message and repr(value) in message and "positive integer" in message
    assert isinstance(caught.value, SegmintError)


@pytest.mark.parametrize("value", [0, -1, "abc", True, 2.5])
def test_using_threads_refuses_a_bad_count(value):
    with pytest.raises(SpecError, match="threads must be a positive integer"):
        with using_threads(value):  # type: ignore[arg-type]
            pass


def test_using_threads_sets_and_restores(monkeypatch):
    from threadpoolctl import threadpool_info

    monkeypatch.setenv(ENV, "5")
    blas_before = [i["num_threads"] for i in threadpool_info()]
    with using_threads(1) as n:
        assert n == 1 and threads() == 1
        # every BLAS / OpenMP pool loaded is held to one thread
        assert all(i["num_threads"] == 1 for i in threadpool_info())
        seen = []
        worker = threading.Thread(target=lambda: seen.append(threads()))
        worker.start()
        worker.join()
        assert seen == [1]  # worker threads see the run's count
        with using_threads(2):
            assert threads() == 2
        assert threads() == 1
    assert threads() == 5
    assert [i["num_threads"] for i in threadpool_info()] == blas_before
    with pytest.raises(RuntimeError):
        with using_threads(3):
            assert threads() == 3
            raise RuntimeError("boom")
    assert threads() == 5
    with using_threads() as n:  # None: the environment's count
        assert n == 5


def _table_spec(tmp_path):
    rng = np.random.default_rng(0)
    centers = np.array([[0.0, 0.0, 0.0], [6.0, 6.0, 0.0], [0.0, 6.0, 6.0]])
    X = np.vstack([c + rng.standard_normal((150, 3)) for c in centers])
    frame = pd.DataFrame(X, columns=["a", "b", "c"])
    frame.insert(0, "customer_id", np.arange(len(frame)))
    frame.to_csv(tmp_path / "customers.csv", index=False)
    spec = {"name": "threads", "source": {"path": str(tmp_path / "customers.csv")},
            "recipe": {"kind": "attributes", "id_column": "customer_id"},
            "sweep": {"scalings": ["standard"],
                      "algorithms": [{"name": "kmeans",
                                      "grid": {"n_clusters": [2, 3], "tol": [1e-4, 1e-3]}}]},
            "select": {"stability_resamples": 2, "stability_top": 1},
            "output": str(tmp_path / "runs")}
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def _record_grid_threads(monkeypatch) -> list[int]:
    """The thread count in force whenever the k-means grid runs."""
    from threadpoolctl import threadpool_info

    import segmint.cluster._grid as grid

    seen: list[int] = []
    original = grid.kmeans_grid

    def recording(*args, **kwargs):
        seen.append(threads())
        seen.extend(i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas")
        return original(*args, **kwargs)

    monkeypatch.setattr(grid, "kmeans_grid", recording)
    return seen


@pytest.mark.parametrize("count", [1, 2])
def test_cli_run_threads(tmp_path, monkeypatch, count):
    from typer.testing import CliRunner

    from segmint.cli import app

    monkeypatch.setenv(ENV, "3")
    seen = _record_grid_threads(monkeypatch)
    result = CliRunner().invoke(app, ["run", str(_table_spec(tmp_path)), "--threads", str(count)])
    assert result.exit_code == 0, result.output
    assert "recommended:" in result.output
    assert seen and set(seen) == {count}
    assert threads() == 3  # restored after the run


def test_cli_refuses_zero_threads_and_a_bad_environment(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from segmint.cli import app

    spec = _table_spec(tmp_path)
    result = CliRunner().invoke(app, ["run", str(spec), "--threads", "0"])
    assert result.exit_code == 2 and "--threads" in result.output
    monkeypatch.setenv(ENV, "abc")
    result = CliRunner().invoke(app, ["run", str(spec)])
    assert result.exit_code == 1
    assert f"{ENV} must be a positive integer" in result.output and "'abc'" in result.output
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_run_threads_argument(tmp_path, monkeypatch):
    import segmint

    monkeypatch.delenv(ENV, raising=False)
    seen = _record_grid_threads(monkeypatch)
    run = segmint.run(_table_spec(tmp_path), threads=1)
    assert set(seen) == {1}
    assert run.recommended


def test_blocks_left_in_another_order_by_two_threads_restore_the_default(monkeypatch):
    # two runs in two threads of one process (tests/runs/test_reliability.py does this): the
    # first to enter leaves first; the count must not stay at either run's after both leave
    monkeypatch.setenv(ENV, "3")
    a_inside, b_inside, a_left = threading.Event(), threading.Event(), threading.Event()
    seen: dict[str, int] = {}

    def first():
        with using_threads(2):
            a_inside.set()
            b_inside.wait(5)
        a_left.set()

    def second():
        a_inside.wait(5)
        with using_threads(4):
            b_inside.set()
            a_left.wait(5)
            seen["second alone"] = threads()

    workers = [threading.Thread(target=first), threading.Thread(target=second)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert seen == {"second alone": 4}
    assert threads() == 3  # back to SEGMINT_THREADS


@pytest.mark.parametrize("workers", [1, 2])
def test_map_in_threads_reports_each_item_done_in_order_in_the_caller(workers):
    import time

    from segmint._threads import map_in_threads

    caller = threading.get_ident()
    seen = []

    def slow_first(i: int) -> int:
        time.sleep(0.05 if i == 0 else 0.0)  # item 0 finishes last on two threads
        return i * i

    out = map_in_threads(slow_first, range(5), workers,
                         done=lambda i: seen.append((i, threading.get_ident())))
    assert out == [0, 1, 4, 9, 16]
    assert seen == [(i, caller) for i in range(5)]


def test_pool_limits_are_the_lowest_open_and_come_back_when_blocks_close_in_any_order(monkeypatch):
    # what segmint asks threadpoolctl for, recorded (OpenBLAS ignores a thread count set from a
    # thread other than the main one, so the pools themselves cannot show it here)
    import threadpoolctl

    from segmint._threads import map_in_threads

    asked: list[object] = []

    class Limiter:
        def __init__(self, limits=None, user_api=None):
            if user_api is None:  # map_in_threads' workers set their own OpenMP apart
                asked.append(dict(limits))

        def restore_original_limits(self):
            asked.append("restored")

    monkeypatch.setattr(threadpoolctl, "threadpool_limits", Limiter)
    a_inside, b_inside, a_left = threading.Event(), threading.Event(), threading.Event()

    def first():
        with using_threads(1):
            a_inside.set()
            b_inside.wait(5)
        a_left.set()

    def second():
        a_inside.wait(5)
        with using_threads(2):
            b_inside.set()
            a_left.wait(5)
            map_in_threads(lambda x: x, [0, 1], 2)

    workers = [threading.Thread(target=first), threading.Thread(target=second)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    # the old code restored the first block's entry limits when the second closed last
    assert asked == [{"blas": 1, "openmp": 1},   # the first opens
                     {"blas": 1, "openmp": 1},   # the second opens: the lowest is still 1
                     {"blas": 2, "openmp": 2},   # the first closes
                     {"blas": 1, "openmp": 2},   # items running: BLAS on one thread
                     {"blas": 2, "openmp": 2},   # the items are done
                     "restored"]                 # the last closes: the pools' own limits
