"""Outliers set apart before clustering: flagged as a segment of their own, or dropped."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import segmint
from segmint.prepare.outliers import find_outliers
from segmint.spec import OutlierSpec


def _clients_with_outliers() -> tuple[pd.DataFrame, list[str]]:
    rng = np.random.default_rng(4)
    n = 300
    frame = pd.DataFrame({
        "spend": np.r_[rng.normal(100, 10, n // 2), rng.normal(300, 20, n // 2)],
        "visits": np.r_[rng.normal(3, 0.5, n // 2), rng.normal(9, 1.0, n // 2)]},
        index=pd.Index([f"c{i:03d}" for i in range(n)], name="client_ref"))
    planted = ["c007", "c150", "c299"]
    frame.loc["c007", ["spend", "visits"]] = [5000.0, 60.0]
    frame.loc["c150", ["spend", "visits"]] = [4200.0, 0.0]
    frame.loc["c299", ["spend", "visits"]] = [-800.0, 70.0]
    return frame, planted


@pytest.mark.parametrize("method", ["ecod", "isolation_forest"])
def test_planted_outliers_are_found(method):
    frame, planted = _clients_with_outliers()
    X = ((frame - frame.mean()) / frame.std()).to_numpy()
    found = find_outliers(X, OutlierSpec(method=method, contamination=0.01), seed=0)
    assert found.count == 3
    assert sorted(frame.index[found.flags]) == planted


def _spec(mode: str) -> dict:
    return {"recipe": {"kind": "attributes"},
            "prepare": {"outliers": {"method": "ecod", "contamination": 0.01, "mode": mode}},
            "sweep": {"algorithms": [{"name": "kmeans", "grid": {"n_clusters": [2, 3, 4]}}]},
            "select": {"stability_resamples": 2}}


def test_flagged_outliers_are_their_own_segment_and_not_clustered(tmp_path):
    frame, planted = _clients_with_outliers()
    run = segmint.run(frame, _spec("flag"), output=tmp_path)
    assert run.manifest["outliers"] == {"method": "ecod", "contamination": 0.01, "mode": "flag",
                                        "count": 3}
    assert run.manifest["customers"] == 300
    assert any("3 customers (1.0%) are outliers by ecod" in n for n in run.manifest["notes"])
    for name in run.solutions():
        labels = run.solution(name).labels().set_index("customer")["segment"]
        assert sorted(labels[labels == -1].index) == planted, name
    # the two real groups, recovered once the outliers no longer pull a centre
    labels = run.solution("kmeans_k2").labels().set_index("customer")["segment"]
    kept = labels[labels >= 0]
    assert kept.groupby(frame.loc[kept.index, "spend"] > 200).nunique().eq(1).all()
    board = run.leaderboard().set_index("solution")
    sizes = dict(part.split(":") for part in board.loc["kmeans_k2", "sizes"].split())
    assert {int(k): int(v) for k, v in sizes.items()} == kept.value_counts().to_dict()
    assert board.loc["kmeans_k2", "min_cluster_share"] == pytest.approx(
        kept.value_counts().min() / 297)  # shares among the clustered customers
    prof = run.solution("kmeans_k2").profile().set_index("segment")
    assert prof.loc[-1, "size"] == 3 and prof["size"].sum() == 300


def test_dropped_outliers_leave_the_run(tmp_path):
    frame, planted = _clients_with_outliers()
    run = segmint.run(frame, _spec("drop"), output=tmp_path)
    assert run.manifest["customers"] == 297 and run.manifest["outliers"]["count"] == 3
    assert not set(planted) & set(run.customers().index)
    labels = run.solution("kmeans_k2").labels()
    assert len(labels) == 297 and (labels["segment"] >= 0).all()
