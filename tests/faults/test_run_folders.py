"""Where results go and where they come from: output paths that are files or folders of the
wrong kind, damaged run folders given to ``predict`` and ``open_run``, hostile model files, and
runs interrupted or killed while writing."""
from __future__ import annotations

import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time

import pytest

import segmint

from .conftest import (
    TIMEOUT,
    assert_api_error,
    assert_user_error,
    error_lines,
)


class _Evil:
    """Unpickling this makes a folder: a model loader that unpickles would be caught."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def _copy_run(case) -> tuple:
    copy = case.folder / "copied" / case.good.path.name
    shutil.copytree(case.good.path, copy)
    recommended = json.loads((copy / "manifest.json").read_text())["recommended"]
    return copy, recommended


def _damage(case, kind: str):
    """A damaged copy of the good run; returns (run folder, solution name, what the message names)."""
    run, solution = _copy_run(case)
    folder = run / "solutions" / solution
    model = folder / "model.skops"
    if kind == "missing-manifest":
        (run / "manifest.json").unlink()
        return run, solution, "manifest.json"
    if kind == "corrupt-manifest":
        (run / "manifest.json").write_text('{"format_version": 2, "features": [', encoding="utf-8")
        return run, solution, "manifest.json"
    if kind == "manifest-a-list":
        (run / "manifest.json").write_text("[1, 2, 3]", encoding="utf-8")
        return run, solution, "manifest.json"
    if kind == "missing-metrics":
        (folder / "metrics.json").unlink()
        return run, solution, "metrics.json"
    if kind == "missing-spec":
        (run / "spec.yaml").unlink()
        return run, solution, "spec.yaml"
    if kind == "solution-dotdot":
        return run, "../..", "../.."
    if kind == "solution-escape":
        return run, "../../../copied", "copied"
    if kind == "model-random-bytes":
        model.write_bytes(bytes((i * 131 + 7) % 256 for i in range(20_000)))
        return run, solution, "model.skops"
    if kind == "model-pickle":
        model.write_bytes(pickle.dumps(_Evil(str(case.folder / "PWNED"))))
        return run, solution, "model.skops"
    if kind == "model-empty":
        model.write_bytes(b"")
        return run, solution, "model.skops"
    if kind == "model-missing":
        model.unlink()
        return run, solution, "model.skops"
    if kind == "centers-truncated":
        centers = folder / "centers.parquet"
        centers.write_bytes(centers.read_bytes()[:40])
        return run, solution, "centers.parquet"
    raise AssertionError(kind)


CLI_DAMAGE = ["corrupt-manifest", "solution-dotdot", "model-pickle"]
API_DAMAGE = ["missing-manifest", "corrupt-manifest", "manifest-a-list", "missing-spec",
              "missing-metrics", "solution-dotdot", "solution-escape", "model-random-bytes",
              "model-pickle", "model-empty", "model-missing", "centers-truncated"]


@pytest.mark.parametrize("kind", CLI_DAMAGE)
def test_damaged_run_folder_predict_cli(case, kind):
    run, solution, names = _damage(case, kind)
    res = case.run("predict", run, solution, case.good.data, "-o", "scored.csv")
    assert_user_error(res, contains=(names,))
    assert not (case.folder / "PWNED").exists(), "the model file's pickle was run"
    case.check()


@pytest.mark.parametrize("kind", API_DAMAGE)
def test_damaged_run_folder_api(case, kind):
    run, solution, names = _damage(case, kind)
    case.snapshot()

    def use():
        segmint.open_run(run).predict(str(case.good.data), solution)

    assert_api_error(use, kind=segmint.SegmintError, contains=(names,))
    assert not (case.folder / "PWNED").exists(), "the model file's pickle was run"
    case.check()


@pytest.mark.parametrize("what", ["absent", "a-file", "empty-folder"])
def test_not_a_run_folder_api_and_cli(case, what):
    target = case.folder / "notarun"
    if what == "a-file":
        target.write_text("hello", encoding="utf-8")
    elif what == "empty-folder":
        target.mkdir()
    case.snapshot()
    assert_api_error(segmint.open_run, target, kind=segmint.ModelError, file="notarun")
    if what == "absent":
        res = case.run("predict", "notarun", "recommended", case.good.data)
        assert_user_error(res, file="notarun")
    case.check()


# --------------------------------------------------------------------------- output paths

def test_run_output_naming_a_file_cli(case):
    case.write("taken", "not a folder\n")
    res = case.run("run", case.spec({"path": str(case.good.data)}), "-o", "taken")
    assert_user_error(res, file="taken")
    case.check()


@pytest.mark.parametrize("output", ["taken", "taken/below"])
def test_output_root_that_is_a_file_api(case, output):
    case.write("taken", "not a folder\n")
    spec = case.spec({"path": str(case.good.data)}, output=case.folder / output)
    case.snapshot()
    assert_api_error(segmint.run, spec, kind=segmint.SegmintError, file="taken")
    case.check()


def test_predict_output_naming_a_folder_cli(case):
    (case.folder / "scores").mkdir()
    res = case.run("predict", case.good.path, "recommended", case.good.data, "-o", "scores")
    assert_user_error(res, file="scores")
    case.check()


def test_predict_output_in_a_missing_folder_cli(case):
    res = case.run("predict", case.good.path, "recommended", case.good.data,
                   "-o", "nowhere/scored.csv")
    assert_user_error(res, file="nowhere")
    case.check()


def test_predict_unknown_solution_api(case):
    case.snapshot()
    run = segmint.open_run(case.good.path)
    assert_api_error(run.predict, str(case.good.data), "kmeans_k99", kind=segmint.ModelError,
                     contains=("kmeans_k99",))
    case.check()


def test_predict_input_without_the_run_columns_cli(case):
    case.write("other.csv", "a,b\n1,2\n3,4\n")
    res = case.run("predict", case.good.path, "recommended", "other.csv", "-o", "scored.csv")
    assert_user_error(res, file="other.csv")
    case.check()


# --------------------------------------------------------------------------- interrupted runs

def _slow_spec(case):
    # enough solutions that writing them takes a moment to interrupt
    return case.spec({"path": str(case.good.data)}, name="slow",
                     sweep={"scalings": ["standard", "minmax"],
                            "algorithms": [{"name": "kmeans", "grid": {"n_clusters": [2, 3, 4, 5]}}]})


def _default_sigint() -> None:
    # a command started in the background of a non-interactive shell (CI's, often) inherits
    # SIGINT ignored, and Python then never raises KeyboardInterrupt: the child gets it back
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _start(case, spec):
    env = {**os.environ, "NO_COLOR": "1"}
    return subprocess.Popen([sys.executable, "-m", "segmint.cli", "run", str(spec)],
                            cwd=case.folder, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=_default_sigint)


def _wait_for_writing(case, proc) -> bool:
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline and proc.poll() is None:
        # the temporary run folder, not the claim made just before it: an interrupt between
        # the claim and the write is a window of a few instructions, not what this case is about
        if any(p.name.startswith(".slow-") and ".tmp-" in p.name for p in case.root.iterdir()):
            return True
        time.sleep(0.002)
    return False


def test_interrupt_while_writing_leaves_nothing_cli(case):
    spec = _slow_spec(case)
    case.snapshot()
    proc = _start(case, spec)
    if not _wait_for_writing(case, proc):
        proc.communicate()
        pytest.skip("the run ended before it could be interrupted")
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=TIMEOUT)
    if proc.returncode == 0 and "interrupted" not in err:
        # on a loaded machine the run can finish between the folder being seen and the
        # signal arriving: then the run is whole, which is what this case guards
        case.check(new_runs=1)
        pytest.skip("the run ended before the interrupt reached it")
    assert proc.returncode == 130, f"exit {proc.returncode}\n{err}"
    assert "Traceback" not in err and len(error_lines(err)) == 1, err
    case.check()


def test_stale_leftovers_of_a_dead_run_are_removed_api(case):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    spec = case.spec({"path": str(case.good.data)})
    case.snapshot()
    claim = case.root / ".stale-20200101-000000.claim"
    claim.mkdir()
    (claim / "pid").write_text(dead)
    (case.root / ".stale-20200101-000000.tmp-deadbeef").mkdir()
    (case.root / ".stale-20200101-000000.tmp-deadbeef" / "manifest.json").write_text("{}")
    segmint.run(spec)
    case.check(new_runs=1)
