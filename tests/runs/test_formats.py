"""Run folders written by earlier versions still open (tests/fixtures/run_format1 was written by
segmint 0.1 before the run-folder format had a version)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import segmint
from segmint.cluster.leaderboard import column_names, parse_params
from segmint.runs import FORMAT_VERSION

FORMAT1 = Path(__file__).resolve().parents[1] / "fixtures" / "run_format1"


@pytest.fixture()
def old_run(tmp_path) -> segmint.Run:
    # a copy: opening must not need to write, but a test must not risk the fixture either
    shutil.copytree(FORMAT1, tmp_path / "run")
    return segmint.open_run(tmp_path / "run")


def test_format1_run_opens_with_todays_leaderboard_columns(old_run):
    assert old_run.format_version == 1
    board = old_run.leaderboard()
    assert set(column_names()) - {"description"} <= set(board.columns) | {"description"}
    assert "representation" in board.columns and "scaling" not in board.columns
    params = {row.solution: parse_params(row.params) for row in board.itertuples()}
    assert params["kmeans_k3"] == {"n_clusters": 3}
    assert params["dbscan"] == {"eps": 0.8, "min_samples": 5}
    assert old_run.recommended == "kmeans_k2"
    assert old_run.types == {f: "numeric" for f in old_run.features}


def test_format1_solutions_profile_and_predict_their_own_customers(old_run):
    customers = old_run.customers()
    assert len(customers) == 120
    for name in ["kmeans_k2", "kmeans_k4", "dbscan"]:
        sol = old_run.solution(name)
        prof = sol.profile()
        assert prof["size"].sum() == 120
        labels = sol.labels().set_index("customer")["segment"]
        scored = old_run.predict(customers.reset_index(), solution=name)
        if name == "dbscan":  # only core customers are sure to keep their cluster
            est = sol.model.named_steps["cluster"]
            core = customers.index[est.core_sample_indices_]
            scored = scored.set_index("customer").loc[core]
            assert (scored["segment"].to_numpy() == labels.loc[core].to_numpy()).all()
        else:
            assert (scored["segment"].to_numpy() == labels.to_numpy()).all()


def test_a_newer_format_is_refused_with_a_clear_error(tmp_path):
    shutil.copytree(FORMAT1, tmp_path / "run")
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    manifest["format_version"] = FORMAT_VERSION + 1
    (tmp_path / "run" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(segmint.ModelError, match="upgrade segmint"):
        segmint.open_run(tmp_path / "run")


def test_a_new_run_records_its_format_and_reopens(tmp_path):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"spend": np.r_[rng.normal(10, 1, 60), rng.normal(50, 2, 60)],
                          "visits": np.r_[rng.normal(2, 0.3, 60), rng.normal(9, 0.5, 60)]},
                         index=pd.Index([f"k{i:03d}" for i in range(120)], name="client_ref"))
    spec = {"name": "fmt", "recipe": {"kind": "attributes"},
            "sweep": {"algorithms": [{"name": "kmeans", "grid": {"n_clusters": [2, 3]}}]},
            "select": {"stability_resamples": 2}}
    run = segmint.run(frame, spec, output=tmp_path)
    again = segmint.open_run(run.path)
    assert again.format_version == FORMAT_VERSION == run.manifest["format_version"]
    assert list(again.leaderboard().columns) == column_names()
