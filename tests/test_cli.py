"""The ``segmint`` command as a user runs it: real processes, real files, exit codes."""
from __future__ import annotations

import os
import subprocess
import sys
from importlib import resources
from pathlib import Path

import pandas as pd
import yaml

BUNDLED = Path(str(resources.files("segmint") / "data" / "online_retail.parquet"))
SEGMINT = [sys.executable, "-m", "segmint.cli"]


def segmint(*args, cwd=None) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run([*SEGMINT, *map(str, args)], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=600)


def write_spec(folder: Path, source: dict, **extra) -> Path:
    spec = {"name": "t", "source": source,
            "recipe": {"features": "insiders", "cleaning": {"impute_customer": True,
                                                            "drop_non_product_codes": True,
                                                            "min_unit_price": 0.04}},
            "sweep": {"scalings": ["log"],
                      "algorithms": [{"name": "kmeans", "grid": {"n_clusters": [2, 3]}}]},
            "select": {"stability_resamples": 2, "stability_top": 1},
            "output": str(folder / "runs"), **extra}
    path = folder / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def only_run(folder: Path) -> Path:
    runs = [p for p in (folder / "runs").iterdir()]
    assert len(runs) == 1, runs
    return runs[0]


def test_online_retail_ii_headers_in_a_csv_give_the_same_customers(tmp_path):
    raw = pd.read_parquet(BUNDLED)
    ii = raw.rename(columns={"InvoiceNo": "Invoice", "UnitPrice": "Price", "CustomerID": "Customer ID"})
    ii["Customer ID"] = ii["Customer ID"].astype("Int64")
    csv_dir, pq_dir = tmp_path / "csv", tmp_path / "pq"
    csv_dir.mkdir(), pq_dir.mkdir()
    ii.to_csv(csv_dir / "online_retail_II.csv", index=False, encoding="cp1252")
    r1 = segmint("run", write_spec(csv_dir, {"path": "online_retail_II.csv"}))
    assert r1.returncode == 0, r1.stderr
    r2 = segmint("run", write_spec(pq_dir, {"path": str(BUNDLED)}))
    assert r2.returncode == 0, r2.stderr
    a = pd.read_parquet(only_run(csv_dir) / "customers.parquet")
    b = pd.read_parquet(only_run(pq_dir) / "customers.parquet")
    assert len(a) > 5000
    pd.testing.assert_frame_equal(a, b)
    assert "recommended:" in r1.stdout and "report:" in r1.stdout


GOOD = ("InvoiceNo,StockCode,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"
        "536365,85123A,6,12/1/2010 8:26,2.55,17850,United Kingdom\n"
        "536366,71053,6,12/1/2010 8:28,3.39,17851,United Kingdom\n"
        "536367,84406B,8,12/2/2010 9:01,2.75,17852,France\n")


def _bad(tmp_path, text: str | bytes, source_extra=None, name="tx.csv"):
    data = text.encode("utf-8") if isinstance(text, str) else text
    (tmp_path / name).write_bytes(data)
    spec = write_spec(tmp_path, {"path": name, **(source_extra or {})})
    (tmp_path / "runs").mkdir()
    marker = tmp_path / "runs" / "earlier-run"
    marker.mkdir()
    (marker / "manifest.json").write_text("{}")
    result = segmint("run", spec)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    # nothing half-written, nothing already there lost
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["earlier-run"]
    assert (marker / "manifest.json").read_text() == "{}"
    return " ".join(result.stderr.split())  # rich may wrap the one line


def test_missing_mapped_column(tmp_path):
    msg = _bad(tmp_path, GOOD.replace("UnitPrice", "Cost"))
    assert "tx.csv" in msg and "price" in msg.lower() and "Cost" in msg


def test_missing_column_named_in_spec(tmp_path):
    msg = _bad(tmp_path, GOOD, {"columns": {"customer": "Client"}})
    assert "tx.csv" in msg and "'Client'" in msg


def test_non_numeric_price(tmp_path):
    msg = _bad(tmp_path, GOOD.replace("3.39", "3.39x"))
    assert "tx.csv" in msg and "'UnitPrice'" in msg and "row 2" in msg and "3.39x" in msg


def test_unparseable_date(tmp_path):
    msg = _bad(tmp_path, GOOD.replace("12/2/2010 9:01", "yesterday"))
    assert "tx.csv" in msg and "'InvoiceDate'" in msg and "row 3" in msg and "yesterday" in msg


def test_empty_file(tmp_path):
    msg = _bad(tmp_path, "")
    assert "tx.csv" in msg and "empty" in msg.lower()


def test_wrong_encoding(tmp_path):
    text = GOOD.replace("United Kingdom", "United Kingdom £").encode("cp1252")
    msg = _bad(tmp_path, text, {"encoding": "utf-8"})
    assert "tx.csv" in msg and "utf-8" in msg.lower() and "line 2" in msg


def test_bad_spec_is_one_line(tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_text("name: x\nsource: {path: a.csv}\nsweep: {scalings: [cubic]}\n")
    result = segmint("run", spec)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "spec.yaml" in result.stderr and "scalings" in result.stderr


def test_predict_command_writes_scores(tmp_path):
    (tmp_path / "runs").mkdir()
    spec = write_spec(tmp_path, {"path": str(BUNDLED)})
    assert segmint("run", spec).returncode == 0
    run = only_run(tmp_path)
    raw = pd.read_parquet(BUNDLED)
    raw[raw["CustomerID"].isin([12347.0, 17850.0])].to_csv(tmp_path / "new.csv", index=False)
    result = segmint("predict", run, "kmeans_k3", tmp_path / "new.csv", "-o", tmp_path / "scored.csv")
    assert result.returncode == 0, result.stderr
    scored = pd.read_csv(tmp_path / "scored.csv", dtype={"customer": str})
    assert sorted(scored["customer"]) == ["12347", "17850"]
    assert set(scored["segment"]) <= {-1, 0, 1, 2}  # -1: the run's outlier detector
    bad = segmint("predict", run, "kmeans_k42", tmp_path / "new.csv")
    assert bad.returncode == 1 and "kmeans_k42" in bad.stderr


def test_columns_command_shows_types_and_a_customer_table_run_prints_them(tmp_path):
    table = pd.DataFrame({"Channel": [1, 2, 1, 2, 1, 2] * 10, "Region": [1, 2, 3] * 20,
                          "Fresh": [float(i * 37 % 101) for i in range(60)],
                          "Milk": [float(i * 53 % 97) for i in range(60)]})
    path = tmp_path / "wholesale.csv"
    table.to_csv(path, index=False)
    shown = segmint("columns", path)
    assert shown.returncode == 0, shown.stderr
    lines = {line.split("│")[1].strip(): line for line in shown.stdout.splitlines()
             if line.count("│") > 3}
    assert "categorical" in lines["Channel"] and "Channel_1, Channel_2" in lines["Channel"]
    assert "numeric" in lines["Fresh"]
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump({
        "name": "w", "source": {"path": str(path)}, "recipe": {"kind": "attributes"},
        "sweep": {"algorithms": [{"name": "kmeans", "grid": {"n_clusters": [2, 3]}}]},
        "select": {"stability_resamples": 2}, "output": str(tmp_path / "runs")}))
    ran = segmint("run", spec)
    assert ran.returncode == 0, ran.stderr
    assert "Region: categorical -> Region_1, Region_2, Region_3" in ran.stdout
    assert "customers are numbered by row" in ran.stdout
    missing = segmint("columns", tmp_path / "nope.csv")
    assert missing.returncode == 1 and "nope.csv" in missing.stderr and "Traceback" not in missing.stderr
