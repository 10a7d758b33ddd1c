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


FORMAT2 = Path(__file__).resolve().parents[1] / "fixtures" / "run_format2"


def test_format2_run_with_a_model_and_labels_per_solution_opens_and_predicts(tmp_path):
    # written by segmint at run format 2 (a mixed customer table, before labels.parquet and
    # preparations/ were shared): every solution's folder holds its labels and whole model
    shutil.copytree(FORMAT2, tmp_path / "run")
    run = segmint.open_run(tmp_path / "run")
    assert run.format_version == 2 and not (run.path / "labels.parquet").exists()
    customers = run.customers()
    for name in ["kmeans_k2", "kmeans_k3", "dbscan"]:
        sol = run.solution(name)
        assert list(sol.model.named_steps) == ["prepare", "cluster"]
        labels = sol.labels().set_index("customer")["segment"]
        assert list(labels.index) == list(customers.index)
        assert sol.profile().set_index("segment")["size"].to_dict() == \
            labels.value_counts().to_dict()
        if name.startswith("kmeans"):
            table = customers.reset_index().rename(columns={"customer": "client_ref"})
            scored = run.predict(table, solution=name)
            assert (scored["segment"].to_numpy() == labels.to_numpy()).all()


def test_format3_saves_each_preparation_once_and_joins_it_to_each_cluster_step(tmp_path):
    from segmint.runs._models import load_model

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"spend": np.r_[rng.normal(10, 1, 60), rng.normal(50, 2, 60)],
                          "visits": np.r_[rng.normal(2, 0.3, 60), rng.normal(9, 0.5, 60)]},
                         index=pd.Index([f"k{i:03d}" for i in range(120)], name="client_ref"))
    spec = {"name": "fmt3", "recipe": {"kind": "attributes"},
            "sweep": {"scalings": ["standard", "minmax"],
                      "algorithms": [{"name": "kmeans", "grid": {"n_clusters": [2, 3, 4]}}]},
            "select": {"stability_resamples": 2}}
    run = segmint.run(frame, spec, output=tmp_path)
    files = sorted(p.name for p in (run.path / "preparations").iterdir())
    assert files == ["minmax.skops", "standard.skops"]  # one per space, six solutions
    labels = pd.read_parquet(run.path / "labels.parquet")
    assert list(labels.columns) == ["customer", *sorted(run.solutions(), key=list(labels.columns).index)]
    for name in run.solutions():
        sol = run.solution(name)
        alone = load_model(sol.folder / "model.skops", sha256=sol.metrics["model_sha256"])
        assert list(alone.named_steps) == ["cluster"]
        assert sol.metrics["preparation"] == sol.metrics["representation"]
        model = sol.model
        assert list(model.named_steps) == ["prepare", "cluster"]
        # the model predicts the run's own labels of its customers
        assert (model.predict(frame) == labels[name].to_numpy()).all()
        assert (sol.labels()["segment"].to_numpy() == labels[name].to_numpy()).all()
    # solutions of one space share the one preparation they were fitted with
    a, b = run.solution("kmeans_k2_standard").model, run.solution("kmeans_k4_standard").model
    assert a.named_steps["prepare"] is b.named_steps["prepare"]


@pytest.mark.parametrize("damage, says", [
    ("flip", "changed since the run saved it"),
    ("name", "is not a preparation name"),
    ("missing", "model file not found"),
])
def test_a_damaged_or_misnamed_preparation_is_refused(tmp_path, damage, says):
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"spend": rng.normal(10, 3, 80), "visits": rng.normal(4, 1, 80)},
                         index=pd.Index([f"c{i}" for i in range(80)], name="client_ref"))
    run = segmint.run(frame, {"name": "bad", "recipe": {"kind": "attributes"},
                              "sweep": {"algorithms": [{"name": "kmeans",
                                                        "grid": {"n_clusters": [2, 3]}}]},
                              "select": {"stability_resamples": 2}}, output=tmp_path)
    sol_folder = run.path / "solutions" / "kmeans_k2"
    prep = next((run.path / "preparations").iterdir())
    if damage == "flip":
        data = bytearray(prep.read_bytes())
        data[len(data) // 2] ^= 0xFF
        prep.write_bytes(bytes(data))
    elif damage == "name":
        metrics = json.loads((sol_folder / "metrics.json").read_text())
        metrics["preparation"] = "../../../elsewhere"
        (sol_folder / "metrics.json").write_text(json.dumps(metrics))
    else:
        prep.unlink()
    with pytest.raises(segmint.ModelError, match=says):
        _ = segmint.open_run(run.path).solution("kmeans_k2").model
