"""Shared machinery of the fault corpus: tiny data, the CLI as a subprocess, and the checks
every fault must pass.

Every case runs bad or hostile input through the real CLI (``python -m segmint.cli``, in a
fresh temporary folder) or through the public Python API, and asserts:

- a user error is exit code 1 (never 0; 2 means segmint hit a bug) or, through the API, a
  :class:`segmint.SegmintError`, never a bare KeyError / ValueError / BadZipFile;
- the message is one line (no traceback) naming the file and, where they apply, the column
  (``column 'Quantity'``) and the row (``row 3``);
- nothing was written outside the output root, no hidden temporary folder (``.*.tmp-*``,
  ``.*.claim``) is left in the output root, and the module's earlier good run folder has the
  same bytes as before.
"""
from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

#: Seconds any one CLI call may take; a hang is a fault too.
TIMEOUT = 120

#: A sweep as small as a run can be: one k-means setting, one scaling, two resamples.
TINY_SWEEP = {"scalings": ["standard"],
              "algorithms": [{"name": "kmeans", "grid": {"n_clusters": [2]}}]}
TINY_SELECT = {"stability_resamples": 2, "stability_top": 1}

TX_HEADER = ["InvoiceNo", "StockCode", "Quantity", "InvoiceDate", "UnitPrice", "CustomerID", "Country"]
N_CUSTOMERS = 16


# --------------------------------------------------------------------------- tiny data

def tx_rows(n_customers: int = N_CUSTOMERS) -> list[list[str]]:
    """Transaction lines as text fields in TX_HEADER order: customer c has c % 3 + 1 invoices of
    two lines each, on distinct days of 2011, so every number can be checked by hand."""
    rows = []
    invoice = 500000
    for c in range(n_customers):
        for k in range(c % 3 + 1):
            invoice += 1
            day = f"2011-{(c + k) % 12 + 1:02d}-{(3 * c + 5 * k) % 27 + 1:02d} 10:{k:02d}"
            for j, (quantity, price) in enumerate(((c % 5 + 1, 2.55), (k + 2, 1.25 + c))):
                rows.append([str(invoice), f"P{j}", str(quantity), day, f"{price:.2f}",
                             str(12000 + c), "United Kingdom"])
    return rows


def tx_text(rows: list[list[str]] | None = None, header: list[str] | None = None,
            sep: str = ",", newline: str = "\n") -> str:
    rows = tx_rows() if rows is None else rows
    header = TX_HEADER if header is None else header
    return newline.join(sep.join(r) for r in [header, *rows]) + newline


def gross_revenue_total(rows: list[list[str]]) -> float:
    """Sum of quantity x price over the lines (all purchases): what the customer table's
    gross_revenue column must add up to."""
    q, p = TX_HEADER.index("Quantity"), TX_HEADER.index("UnitPrice")
    return sum(float(r[q]) * float(r[p]) for r in rows)


CUSTOMER_HEADER = ["CUST_ID", "Age", "Income", "Region", "Education", "Visits"]
LEVELS = ["Basic", "Graduation", "Master", "PhD"]


def customer_rows(n: int = 20) -> list[list[str]]:
    """One row per customer: an id, two numbers, a region code, an ordinal and a count."""
    rows = []
    for i in range(n):
        rows.append([f"C{i:03d}", str(20 + (7 * i) % 45), f"{1000 + 137 * i % 900}.5",
                     ["North", "South", "East"][i % 3], LEVELS[i % 4], str(i % 6)])
    return rows


def customer_text(rows: list[list[str]] | None = None, header: list[str] | None = None,
                  sep: str = ",") -> str:
    rows = customer_rows() if rows is None else rows
    header = CUSTOMER_HEADER if header is None else header
    return "\n".join(sep.join(r) for r in [header, *rows]) + "\n"


def spec_dict(source: dict | None = None, *, name: str = "fault", recipe: dict | None = None,
              output: str | Path | None = None, **extra: Any) -> dict:
    spec: dict[str, Any] = {"name": name}
    if source is not None:
        spec["source"] = source
    if recipe is not None:
        spec["recipe"] = recipe
    spec["sweep"] = extra.pop("sweep", TINY_SWEEP)
    spec["select"] = extra.pop("select", TINY_SELECT)
    if output is not None:
        spec["output"] = str(output)
    spec.update(extra)
    return spec


def write_spec(folder: Path, source: dict | None = None, *, file: str = "spec.yaml",
               **kwargs: Any) -> Path:
    path = folder / file
    path.write_text(yaml.safe_dump(spec_dict(source, **kwargs), sort_keys=False), encoding="utf-8")
    return path


# --------------------------------------------------------------------------- the CLI

@dataclass
class Result:
    code: int
    stdout: str
    stderr: str
    args: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return (f"segmint {' '.join(self.args)} -> exit {self.code}\n--- stderr ---\n"
                f"{self.stderr[-3000:]}\n--- stdout ---\n{self.stdout[-1500:]}")


_BUG_LOGS: Path | None = None  # where the CLI writes a bug's trace (its TMPDIR), outside every case


def cli(*args: str | Path, cwd: Path, timeout: float = TIMEOUT) -> Result:
    """``python -m segmint.cli ARGS`` in ``cwd``; output captured, never a terminal."""
    env = {**os.environ, "NO_COLOR": "1", "TERM": "dumb", "COLUMNS": "200",
           "PYTHONDONTWRITEBYTECODE": "1"}
    if _BUG_LOGS is not None:
        env["TMPDIR"] = str(_BUG_LOGS)
    argv = [str(a) for a in args]
    done = subprocess.run([sys.executable, "-m", "segmint.cli", *argv], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)
    return Result(done.returncode, done.stdout, done.stderr, argv)


@pytest.fixture(scope="session", autouse=True)
def bug_logs(tmp_path_factory) -> Path:
    """The CLI's TMPDIR, where it writes the trace of a bug it hit."""
    global _BUG_LOGS
    _BUG_LOGS = tmp_path_factory.mktemp("segmint-bug-logs")
    yield _BUG_LOGS


def _is_log_record(line: str) -> bool:
    # logging.basicConfig's records from segmint's own loggers (warnings about the data)
    return line.startswith(("WARNING:segmint", "INFO:segmint"))


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.strip() and not _is_log_record(line)]


def check_message(line: str, *, file: str | None = None, column: str | None = None,
                  row: int | None = None, contains: tuple[str, ...] = (),
                  absent: tuple[str, ...] = ()) -> None:
    assert "Traceback" not in line
    if file is not None:
        assert file in line, f"the message does not name {file!r}: {line}"
    if column is not None:
        assert f"column {column!r}" in line, f"the message does not name column {column!r}: {line}"
    if row is not None:  # "row 3", or "rows [3, 9]" when it lists several
        assert re.search(rf"\brows? \[?{row}\b", line), \
            f"the message does not name row {row}: {line}"
    for text in contains:
        assert text.lower() in line.lower(), f"the message does not say {text!r}: {line}"
    for text in absent:
        assert text not in line, f"the message holds {text!r}: {line}"


def assert_user_error(res: Result, **expected: Any) -> str:
    """Exit 1 and one line on stderr naming what ``expected`` says; returns that line."""
    assert res.code != 0, f"a bad input was accepted:\n{res}"
    assert res.code != 70, f"segmint hit a bug:\n{res}"
    assert res.code == 1, f"unexpected exit code:\n{res}"
    assert "Traceback" not in res.stderr, str(res)
    lines = error_lines(res.stderr)
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}:\n{res}"
    check_message(lines[0], **expected)
    return lines[0]


def api_error(call, *args: Any, **kwargs: Any):
    """The SegmintError ``call(*args, **kwargs)`` raises; fails on any other outcome."""
    import segmint
    import segmint.errors

    internal = getattr(segmint.errors, "InternalError", ())  # the API's name for a bug it caught
    try:
        call(*args, **kwargs)
    except internal as exc:
        pytest.fail(f"segmint hit a bug: {exc}")
    except segmint.SegmintError as exc:
        return exc
    except Exception as exc:  # noqa: BLE001 - what else escapes is the finding
        pytest.fail(f"raised {type(exc).__module__}.{type(exc).__name__} instead of a "
                    f"SegmintError: {str(exc)[:500]}")
    pytest.fail("no error was raised for a bad input")


def _segmint_run(*args: Any, **kwargs: Any) -> Any:
    import segmint

    return segmint.run(*args, **kwargs)


def assert_api_error(call, *args: Any, kind: type | None = None, **expected: Any):
    exc = api_error(call, *args)
    text = str(exc)
    assert "\n" not in text.strip(), f"the message is more than one line: {text!r}"
    if kind is not None:
        assert isinstance(exc, kind), f"{type(exc).__name__}, not {kind.__name__}: {text}"
    check_message(text, **expected)
    return exc


# --------------------------------------------------------------------------- the invariants

def fingerprint(folder: Path, exclude: Path | None = None) -> dict[str, str]:
    """Relative path -> sha256 of every file (and '<dir>' for every folder) under ``folder``."""
    out = {}
    if not folder.exists():
        return out
    for path in sorted(folder.rglob("*")):
        if exclude is not None and (path == exclude or exclude in path.parents):
            continue
        rel = str(path.relative_to(folder))
        if path.is_dir():
            out[rel + "/"] = "<dir>"
        elif path.is_file():
            out[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            out[rel] = "<other>"
    return out


def hidden_leftovers(root: Path) -> list[str]:
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir()
                  if p.name.startswith(".") and (".tmp-" in p.name or p.name.endswith(".claim")))


@dataclass
class GoodRun:
    """A run made once per module, that no later fault may touch."""

    root: Path  # its output root, which the fault cases write into too
    path: Path  # the run folder
    data: Path  # the transactions it was made from
    bytes: dict[str, str]  # fingerprint of the run folder

    def assert_untouched(self) -> None:
        assert fingerprint(self.path) == self.bytes, "the earlier good run folder changed"


@pytest.fixture(scope="module")
def good_run(tmp_path_factory) -> GoodRun:
    import segmint

    folder = tmp_path_factory.mktemp("good")
    data = folder / "transactions.csv"
    data.write_text(tx_text(), encoding="utf-8")
    root = folder / "runs"
    run = segmint.run(spec_dict({"path": str(data)}, name="good", output=root))
    return GoodRun(root=root, path=run.path, data=data, bytes=fingerprint(run.path))


class Case:
    """One fault case's folder (the CLI's cwd; the API's cwd too) and its before-picture."""

    def __init__(self, folder: Path, good: GoodRun) -> None:
        self.folder = folder
        self.good = good
        self.root = good.root  # output root: the good run's, so a fault could reach it
        self._before: dict[str, str] | None = None
        self._root_before: set[str] = set()

    def write(self, name: str, content: str | bytes, encoding: str = "utf-8") -> Path:
        path = self.folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_bytes(content.encode(encoding))
        return path

    def spec(self, source: dict | None = None, **kwargs: Any) -> Path:
        kwargs.setdefault("output", self.root)
        return write_spec(self.folder, source, **kwargs)

    def snapshot(self) -> None:
        """Call when the inputs are in place, just before the command under test."""
        self._before = fingerprint(self.folder, exclude=self.root)
        self._root_before = {p.name for p in self.root.iterdir()} if self.root.is_dir() else set()

    def run(self, *args: str | Path, timeout: float = TIMEOUT) -> Result:
        if self._before is None:
            self.snapshot()
        return cli(*args, cwd=self.folder, timeout=timeout)

    def new_run_folders(self) -> list[Path]:
        """Run folders the command under test added to the output root."""
        return sorted(p for p in self.root.iterdir()
                      if p.name not in self._root_before and not p.name.startswith("."))

    def fails(self, spec: str | Path, via: str, *, kind: type | None = None,
              **expected: Any) -> str:
        """``segmint run SPEC`` (via="cli") or ``segmint.run(SPEC)`` (via="api") fails as a
        user error naming ``expected``; returns the message."""
        if via == "cli":
            return assert_user_error(self.run("run", spec), **expected)
        assert via == "api", via
        self.snapshot()
        return str(assert_api_error(_segmint_run, spec, kind=kind, **expected))

    def check(self, *, new_outputs: tuple[str, ...] = (), new_runs: int = 0) -> None:
        """Nothing written but ``new_outputs`` (paths relative to the case folder) and
        ``new_runs`` run folders in the output root; no hidden leftovers; the good run intact."""
        assert self._before is not None, "snapshot() was not taken"
        after = fingerprint(self.folder, exclude=self.root)
        changed = sorted(k for k in set(after) | set(self._before)
                         if after.get(k) != self._before.get(k)
                         and k not in new_outputs and k.rstrip("/") not in new_outputs)
        assert not changed, f"files written or changed outside the output root: {changed}"
        assert hidden_leftovers(self.root) == [], \
            f"hidden leftovers in the output root: {hidden_leftovers(self.root)}"
        now = {p.name for p in self.root.iterdir()} if self.root.is_dir() else set()
        added = sorted(now - self._root_before)
        assert len(added) == new_runs, f"run folders added to the output root: {added}"
        assert self._root_before <= now, "a run folder vanished from the output root"
        self.good.assert_untouched()


@pytest.fixture
def case(tmp_path, good_run, monkeypatch) -> Case:
    work = tmp_path / "case"
    work.mkdir()
    monkeypatch.chdir(work)
    return Case(work, good_run)


def gap(reason: str):
    """A fault segmint does not handle yet: kept in the corpus, expected to fail, strictly (a
    fix turns it into XPASS(strict), a failure, so the mark is removed and the case guards)."""
    return pytest.mark.xfail(strict=True, reason=reason)
