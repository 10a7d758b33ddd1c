"""A password given in a database URL is written nowhere and logged nowhere: not in the run
folder (spec.yaml, manifest.json, report.html, the Parquet files' metadata), not in the log,
not in an error message. The server is a real PostgreSQL with trust authentication, so any
password is accepted and the runs succeed."""
from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

import segmint
from segmint._secrets import MASK, RedactingFilter, redact
from segmint.errors import InputError, SegmintError
from segmint.io import write_csv_atomic, write_parquet_atomic

PASSWORD = "secret"
TABLE = "pos_lines"

SWEEP = {"scalings": ["log"], "algorithms": [{"name": "kmeans", "grid": {"n_clusters": [2, 3]}}]}


def _lines(customers: int = 30, seed: int = 0) -> pd.DataFrame:
    """Transaction lines with the default column names: three kinds of customer (rare small
    baskets, monthly mid-size ones, weekly large ones) over 2011."""
    rng = np.random.default_rng(seed)
    rows = []
    for c in range(customers):
        kind = c % 3
        visits, quantity, every = [(2, 1, 120), (6, 4, 30), (20, 12, 7)][kind]
        for v in range(visits):
            day = pd.Timestamp("2011-01-03") + pd.Timedelta(days=v * every + int(rng.integers(0, 3)))
            rows.append({"InvoiceNo": f"{c:03d}{v:03d}", "StockCode": "85123A",
                         "Quantity": quantity + int(rng.integers(0, 2)), "InvoiceDate": day,
                         "UnitPrice": 2.55, "CustomerID": 17000 + c, "Country": "United Kingdom"})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def pg(postgres_url):
    """(host part with port, e.g. ``127.0.0.1:5432``) of the server holding the lines table."""
    import sqlalchemy as sa

    engine = sa.create_engine(postgres_url)
    with engine.begin() as con:
        _lines().to_sql(TABLE, con, index=False, if_exists="replace")
    engine.dispose()
    return postgres_url.split("@", 1)[1].split("/", 1)[0]


def _spec(url: str, output: Path, **source) -> dict:
    return {"name": "pg", "output": str(output),
            "source": {"url": url, "table": TABLE, **source},
            "recipe": {"features": "rfm"}, "sweep": SWEEP,
            "select": {"stability_resamples": 2, "stability_top": 1}}


def _leaks(folder: Path, *needles: str) -> list[str]:
    """The files under ``folder`` whose bytes hold one of ``needles`` (Parquet and skops too)."""
    found = []
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            data = path.read_bytes()
            found += [f"{path.relative_to(folder)}: {n!r}" for n in needles if n.encode() in data]
    return found


def _urls(host: str) -> dict[str, str]:
    return {"in the user part": f"postgresql+psycopg://postgres:{PASSWORD}@{host}/postgres",
            "as ?password=": f"postgresql+psycopg://postgres@{host}/postgres?password={PASSWORD}"}


# --------------------------------------------------------------------------- writers


def test_parquet_and_csv_writers_drop_attrs_holding_a_url(tmp_path):
    frame = pd.DataFrame({"customer": ["17850"], "spend": [2.55]})
    frame.attrs["source"] = {"url": f"postgresql://postgres@db/crm?password={PASSWORD}"}
    parquet = write_parquet_atomic(frame, tmp_path / "t.parquet")
    write_csv_atomic(frame, tmp_path / "t.csv")
    assert _leaks(tmp_path, PASSWORD, "PANDAS_ATTRS") == []
    assert pd.read_parquet(parquet).attrs == {}
    assert frame.attrs["source"]["url"].endswith(PASSWORD)  # the caller's frame is untouched
    assert pd.read_parquet(parquet)["spend"].tolist() == [2.55]


# --------------------------------------------------------------------------- errors


def test_error_messages_are_redacted_whoever_raises_them():
    exc = InputError(f"cannot read table 'x': connection to postgresql://ana:{PASSWORD}@db failed",
                     file=f"postgresql://db/crm?password={PASSWORD}")
    assert PASSWORD not in str(exc) and PASSWORD not in repr(exc)
    assert PASSWORD not in exc.message and PASSWORD not in str(exc.file)
    assert str(exc) == (f"file postgresql://db/crm?password={MASK}: cannot read table 'x': "
                        f"connection to postgresql://ana:{MASK}@db failed")
    exc.message = f"token: {PASSWORD}"  # set after the fact: still masked when shown
    assert str(exc).endswith(f"token: {MASK}")


# --------------------------------------------------------------------------- logging


def test_redacting_filter_on_a_handler_masks_every_segmint_logger():
    records: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(self.format(record))

    handler = Collect()
    handler.addFilter(segmint.RedactingFilter())
    logger = logging.getLogger("segmint.io._readers")
    logger.addHandler(handler)
    old_level = logger.level
    logger.setLevel(logging.INFO)
    try:
        logger.info("read %d rows from %s", 3, f"postgresql://ana:{PASSWORD}@db/crm")
        try:
            raise RuntimeError(f"could not connect with password={PASSWORD}")
        except RuntimeError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
    assert records[0] == f"read 3 rows from postgresql://ana:{MASK}@db/crm"
    # (the traceback names this file, test_secrets.py: look for the password itself)
    assert f"password={PASSWORD}" not in records[1]
    assert records[1].endswith(f"RuntimeError: could not connect with password={MASK}")


# --------------------------------------------------------------------------- whole runs


@pytest.mark.parametrize("how", ["in the user part", "as ?password="])
def test_run_writes_the_password_nowhere(pg, tmp_path, caplog, how):
    url = _urls(pg)[how]
    caplog.handler.addFilter(RedactingFilter())
    with caplog.at_level(logging.INFO, logger="segmint"):
        run = segmint.run(_spec(url, tmp_path / "runs"))
    assert run.manifest["customers"] == 30
    assert _leaks(run.path, PASSWORD) == []
    assert (run.path / "customers.parquet").is_file() and (run.path / "report.html").is_file()
    # the password is masked, the rest of the URL is kept (the run says where its data came from)
    written = yaml.safe_load((run.path / "spec.yaml").read_text())
    assert written["source"]["url"] == redact(url) and MASK in written["source"]["url"]
    assert pg in run.manifest["input"]["url"]
    assert run.spec.source is not None and run.spec.source.table == TABLE  # the run opens again
    assert PASSWORD not in caplog.text


@pytest.mark.parametrize("how", ["in the user part", "as ?password="])
def test_error_for_a_url_with_a_password_does_not_show_it(pg, tmp_path, how):
    spec = _spec(_urls(pg)[how], tmp_path / "runs")
    spec["source"]["table"] = "no_such_table"
    with pytest.raises(SegmintError) as caught:
        segmint.run(spec)
    assert "no_such_table" in str(caught.value)
    assert PASSWORD not in str(caught.value) and PASSWORD not in repr(caught.value.args)
    refused = _spec(_urls("127.0.0.1:1")[how], tmp_path / "runs")  # nothing listens on port 1
    with pytest.raises(SegmintError) as caught:
        segmint.run(refused)
    assert PASSWORD not in str(caught.value)
    assert not (tmp_path / "runs").exists() or _leaks(tmp_path / "runs", PASSWORD) == []


def _cli(*args: object, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "segmint.cli", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=600,
                          env={**os.environ, "COLUMNS": "200", **(env or {})})


@pytest.mark.parametrize("how", ["in the user part", "as ?password="])
def test_cli_verbose_run_logs_and_prints_no_password(pg, tmp_path, how):
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(_spec(_urls(pg)[how], tmp_path / "runs")))
    done = _cli("run", spec, "-v", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "INFO:segmint" in done.stderr  # logging was on, and its records were redacted
    assert PASSWORD not in done.stdout and PASSWORD not in done.stderr
    assert _leaks(tmp_path / "runs", PASSWORD) == []
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(_spec(_urls(pg)[how], tmp_path / "runs", table="no_such_table")))
    failed = _cli("run", bad, "-v", cwd=tmp_path)
    assert failed.returncode == 1 and "no_such_table" in failed.stderr
    assert PASSWORD not in failed.stdout and PASSWORD not in failed.stderr


def test_url_naming_an_environment_variable_keeps_the_reference(pg, tmp_path):
    value = "pw-from-the-environment"
    url = "postgresql+psycopg://postgres:${SEGMINT_TEST_PW}@" + pg + "/postgres"
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(_spec(url, tmp_path / "runs")))
    done = _cli("run", spec, "-v", cwd=tmp_path, env={"SEGMINT_TEST_PW": value})
    assert done.returncode == 0, done.stderr
    assert value not in done.stdout and value not in done.stderr
    (folder,) = (tmp_path / "runs").iterdir()
    assert yaml.safe_load((folder / "spec.yaml").read_text())["source"]["url"] == url
    assert _leaks(folder, value) == []
