"""Run folders under faults: concurrent runs, a run killed while writing, damaged folders."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

import segmint


def _table(n: int = 300) -> pd.DataFrame:
    rng = np.random.default_rng(5)
    return pd.DataFrame({"customer_id": [f"c{i}" for i in range(n)],
                         "spend": rng.lognormal(3, 1, n), "visits": rng.poisson(5, n).astype(float)})


def _spec(folder: Path, ks=(2, 3), **extra) -> Path:
    data = folder / "clients.csv"
    if not data.exists():
        _table().to_csv(data, index=False)
    spec = {"name": "twin", "source": {"path": str(data)}, "recipe": {"kind": "attributes"},
            "sweep": {"algorithms": [{"name": "kmeans", "grid": {"n_clusters": list(ks)}}]},
            "select": {"stability_resamples": 2}, "output": str(folder / "runs"), **extra}
    path = folder / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def _visible(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if not p.name.startswith("."))


def test_two_runs_of_one_spec_started_together_get_distinct_folders(tmp_path):
    spec = _spec(tmp_path)
    with ThreadPoolExecutor(2) as pool:
        runs = list(pool.map(lambda _: segmint.run(spec), range(2)))
    assert runs[0].path != runs[1].path
    root = tmp_path / "runs"
    assert _visible(root) == sorted([runs[0].path.name, runs[1].path.name])
    assert not [p for p in root.iterdir() if p.name.startswith(".")]  # no claim, no temp
    for run in runs:
        assert run.manifest["run_id"] == run.path.name


def _signal_mid_write(tmp_path: Path, signum: int) -> tuple[Path, int, str]:
    """Run a long spec in a process, send it ``signum`` once its temporary run folder exists;
    return the output root, the exit code and what it printed on stderr."""
    spec = _spec(tmp_path, ks=list(range(2, 31)))
    root = tmp_path / "runs"
    root.mkdir()
    proc = subprocess.Popen([sys.executable, "-m", "segmint.cli", "run", str(spec)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        if any(".tmp-" in p.name for p in root.iterdir()):
            os.kill(proc.pid, signum)
            break
        time.sleep(0.005)
    _, stderr = proc.communicate(timeout=120)
    return root, proc.returncode, stderr


def test_a_run_killed_while_writing_leaves_nothing_visible_and_the_next_run_cleans_up(tmp_path):
    root, code, _ = _signal_mid_write(tmp_path, signal.SIGKILL)
    if code != -signal.SIGKILL:
        pytest.skip("the run finished before it could be killed mid-write")
    left = [p.name for p in root.iterdir()]
    assert _visible(root) == [] and any(".tmp-" in n for n in left) and any(
        n.endswith(".claim") for n in left)
    run = segmint.run(_spec(tmp_path))
    assert [p.name for p in root.iterdir()] == [run.path.name]


def test_the_output_folder_being_a_file_is_one_error(tmp_path):
    (tmp_path / "runs").write_text("not a folder")
    with pytest.raises(segmint.SegmintError, match="output folder is a file"):
        segmint.run(_spec(tmp_path))


@pytest.fixture(scope="module")
def a_run(tmp_path_factory) -> segmint.Run:
    folder = tmp_path_factory.mktemp("one")
    return segmint.run(_spec(folder))


def _copy(run: segmint.Run, tmp_path: Path) -> Path:
    import shutil

    shutil.copytree(run.path, tmp_path / "copy")
    return tmp_path / "copy"


@pytest.mark.parametrize("damage, where", [
    (lambda p: (p / "manifest.json").write_text("{not json"), "manifest"),
    (lambda p: (p / "manifest.json").write_text("[1, 2]"), "manifest"),
    (lambda p: (p / "manifest.json").write_text('{"format_version": "x", "features": []}'),
     "format_version"),
    (lambda p: (p / "spec.yaml").unlink(), "spec.yaml"),
    (lambda p: (p / "spec.yaml").write_text("a: [unclosed"), "spec.yaml"),
])
def test_a_damaged_run_folder_is_one_model_error(a_run, tmp_path, damage, where):
    folder = _copy(a_run, tmp_path)
    damage(folder)
    with pytest.raises(segmint.ModelError, match=where):
        segmint.open_run(folder)


def test_damaged_solution_files_are_model_errors(a_run, tmp_path):
    folder = _copy(a_run, tmp_path)
    run = segmint.open_run(folder)
    name = run.solutions()[0]
    (folder / "solutions" / name / "metrics.json").write_text("{")
    with pytest.raises(segmint.ModelError, match="metrics"):
        run.solution(name)
    other = run.solutions()[1]
    (folder / "solutions" / other / "profile.parquet").write_bytes(b"garbage")
    with pytest.raises(segmint.ModelError, match="profile"):
        run.solution(other).profile()
    (folder / "leaderboard.csv").write_bytes(b"\x00\xff" * 10)
    with pytest.raises(segmint.ModelError, match="leaderboard"):
        run.leaderboard()


@pytest.mark.parametrize("name", ["../..", "..", "/etc", "a/../../b", "kmeans_k2/../../x"])
def test_a_solution_name_cannot_leave_the_run_folder(a_run, name):
    with pytest.raises(segmint.ModelError, match="not a solution name"):
        a_run.solution(name)


def test_predict_output_naming_a_folder_is_one_line(a_run, tmp_path):
    data = tmp_path / "new.csv"
    _table(20).to_csv(data, index=False)
    result = subprocess.run([sys.executable, "-m", "segmint.cli", "predict", str(a_run.path),
                             "recommended", str(data), "-o", str(tmp_path)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 1 and "is a folder" in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert json.loads((a_run.path / "manifest.json").read_text())["run_id"] == a_run.path.name


def test_an_unexpected_error_is_one_line_with_the_trace_in_a_file(monkeypatch):
    from typer.testing import CliRunner

    import segmint.pipeline as pipeline
    from segmint.cli import app

    def broken(*args, **kwargs):
        raise RuntimeError("something segmint did not expect")

    monkeypatch.setattr(pipeline, "describe_columns", broken)
    result = CliRunner().invoke(app, ["columns", "whatever.csv"])
    assert result.exit_code == 70
    text = result.output
    assert "unexpected RuntimeError: something segmint did not expect" in text
    trace = Path(text.split("the full trace is in ")[1].split(")")[0].strip())
    assert "Traceback" in trace.read_text() and "Traceback" not in text
    trace.unlink()


@pytest.mark.parametrize("call", [
    lambda: segmint.run(123),
    lambda: segmint.run([1, 2], {"recipe": {"kind": "attributes"}}),
    lambda: segmint.open_run(None),
    lambda: segmint.load_spec(["a"]),
    lambda: segmint.open_run("/nonexistent/run"),
])
def test_the_python_api_raises_only_segmint_errors(call):
    with pytest.raises(segmint.SegmintError):
        call()


def test_a_bug_inside_the_api_is_an_internal_error_with_its_trace_on_file(monkeypatch):
    from segmint.errors import InternalError
    from segmint.recipes import _build

    def broken(*args, **kwargs):
        raise KeyError("surprise")

    monkeypatch.setattr(_build, "_as_source", broken)
    with pytest.raises(InternalError, match="unexpected KeyError") as caught:
        segmint.run({"source": {"path": "x.csv"}})
    trace = Path(str(caught.value).split("the full trace is in ")[1].rstrip(")"))
    assert "KeyError" in trace.read_text()
    trace.unlink()


def test_a_run_terminated_while_writing_cleans_up_after_itself(tmp_path):
    root, code, stderr = _signal_mid_write(tmp_path, signal.SIGTERM)
    if code == 0:
        pytest.skip("the run finished before it could be terminated mid-write")
    assert code == 130 and "interrupted" in stderr and "Traceback" not in stderr
    assert list(root.iterdir()) == []  # nothing visible, nothing hidden


def test_a_full_disk_while_writing_is_one_error_and_leaves_nothing(tmp_path, monkeypatch):
    import errno

    import segmint.runs._write as writer

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(writer, "write_parquet", full)
    with pytest.raises(segmint.SegmintError, match="No space left on device"):
        segmint.run(_spec(tmp_path))
    assert list((tmp_path / "runs").iterdir()) == []
