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
    said = run.manifest["outliers"]
    assert {k: said[k] for k in ("method", "contamination", "mode", "count", "scaling", "auto")} \
        == {"method": "ecod", "contamination": 0.01, "mode": "flag", "count": 3,
            "scaling": "standard", "auto": False}
    # the detector is saved: scoring the training customers sets the same three apart
    scored = run.predict(frame.reset_index(), solution="kmeans_k2").set_index("customer")
    assert sorted(scored.index[scored["segment"] == -1]) == planted
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
    # stability refits on resamples of the clustered customers and compares with their own
    # labels: two well-apart groups come back identical (a misaligned comparison gives ~0)
    stab = pd.read_csv(run.path / "stability.csv").set_index("solution")
    assert stab.loc["kmeans_k2", "stability_ari_mean"] == pytest.approx(1.0)


def test_dropped_outliers_leave_the_run(tmp_path):
    frame, planted = _clients_with_outliers()
    run = segmint.run(frame, _spec("drop"), output=tmp_path)
    assert run.manifest["customers"] == 297 and run.manifest["outliers"]["count"] == 3
    assert not set(planted) & set(run.customers().index)
    labels = run.solution("kmeans_k2").labels()
    assert len(labels) == 297 and (labels["segment"] >= 0).all()


def _retail_like(n: int = 400) -> pd.DataFrame:
    """Transaction lines: most customers buy a few times; four buy a thousand times more."""
    rng = np.random.default_rng(7)
    rows = []
    for c in range(n):
        big = c < 4
        for i in range(int(rng.integers(1, 6))):
            rows.append({"customer": f"k{c:03d}", "invoice": f"i{c}-{i}",
                         "date": pd.Timestamp("2024-01-01") + pd.Timedelta(days=int(rng.integers(0, 300))),
                         "quantity": float(rng.integers(1, 10)) * (1000 if big else 1),
                         "price": float(rng.uniform(1, 20))})
    return pd.DataFrame(rows)


def test_transactions_set_extreme_customers_apart_by_default(tmp_path):
    lines = _retail_like()
    spec = {"recipe": {"kind": "transactions", "features": "rfm"},  # columns found by name
            "sweep": {"algorithms": [{"name": "kmeans", "grid": {"n_clusters": [2, 3]}}]},
            "select": {"stability_resamples": 2}}
    run = segmint.run(lines, spec, output=tmp_path)
    said = run.manifest["outliers"]
    assert said["auto"] and said["method"] == "isolation_forest" and said["scaling"] == "log"
    assert said["count"] == 4  # 1% of 400 customers
    labels = run.solution("kmeans_k2").labels().set_index("customer")["segment"]
    spend = (lines["quantity"] * lines["price"]).groupby(lines["customer"]).sum()
    # the four who bought a thousand times more are the ones set apart
    assert sorted(labels[labels == -1].index) == sorted(spend.nlargest(4).index)
    assert any(n.startswith("by default for transaction data") for n in run.manifest["notes"])
    # scoring applies the saved detector: the same customers come back set apart
    scored = run.predict(run.customers().reset_index(), solution="kmeans_k2")
    assert (scored.set_index("customer")["segment"] == labels).all()


def test_customer_tables_keep_every_customer_by_default(tmp_path):
    frame, _ = _clients_with_outliers()
    run = segmint.run(frame, {"recipe": {"kind": "attributes"},
                              "sweep": {"algorithms": [{"name": "kmeans", "grid": {"n_clusters": [2]}}]},
                              "select": {"stability_resamples": 2}}, output=tmp_path)
    assert run.manifest["outliers"] is None
    assert (run.solution("kmeans_k2").labels()["segment"] >= 0).all()


def test_online_retail_default_outliers_leave_k_4_to_8_eligible(tmp_path):
    """The new user's complaint on real data: a few extreme customers made every k >= 5
    ineligible. With the default outlier handling, k 4..8 are all eligible."""
    from segmint.pipeline import demo_spec

    spec = demo_spec(tmp_path).model_dump()
    spec["sweep"] = {"scalings": ["log"],
                     "algorithms": [{"name": "kmeans", "grid": {"n_clusters": [4, 5, 6, 7, 8]}}]}
    spec["select"] = {"stability_top": 1, "stability_resamples": 2}
    run = segmint.run(spec)
    board = run.leaderboard().set_index("solution")
    assert board["eligible"].all(), board[["min_cluster_share", "eligible"]]
    assert (board["min_cluster_share"] >= 0.01).all()
    assert run.manifest["outliers"]["count"] == int(0.01 * run.manifest["customers"])
    reasons = " ".join(run.manifest["reasons"])
    k = int(board.loc[run.recommended, "k"])
    assert f"k={k}" in reasons


def test_compare_outliers_runs_every_setting_with_and_without_them(tmp_path):
    frame, planted = _clients_with_outliers()
    spec = _spec("flag")
    spec["sweep"]["compare_outliers"] = True
    run = segmint.run(frame, spec, output=tmp_path)
    board = run.leaderboard().set_index("solution")
    assert {"kmeans_k2", "kmeans_k3", "kmeans_k2_all", "kmeans_k3_all"} <= set(board.index)
    assert set(board.loc[["kmeans_k2_all", "kmeans_k3_all"], "representation"]) == {"standard_all"}
    every = run.solution("kmeans_k3_all").labels().set_index("customer")["segment"]
    assert (every >= 0).all() and len(every) == 300
    # clustered with everyone, k=3 spends a segment on a planted outlier or two
    sizes = every.value_counts()
    assert sizes.min() <= 3 and not board.loc["kmeans_k3_all", "eligible"]
    apart = run.solution("kmeans_k2").labels().set_index("customer")["segment"]
    assert sorted(apart[apart == -1].index) == planted
    # stability of a solution refits on its own clustered customers: with the outliers apart,
    # the two real groups come back every time
    stab = pd.read_csv(run.path / "stability.csv").set_index("solution")
    assert "kmeans_k2" in stab.index and stab.loc["kmeans_k2", "stability_ari_mean"] > 0.99


def test_compare_outliers_without_an_outlier_rule_is_a_clear_error(tmp_path):
    frame, _ = _clients_with_outliers()
    spec = _spec("flag")
    spec["prepare"]["outliers"] = {"method": "none"}
    spec["sweep"]["compare_outliers"] = True
    with pytest.raises(segmint.SpecError, match="compare_outliers needs outliers"):
        segmint.run(frame, spec, output=tmp_path)
    assert not any(tmp_path.iterdir())
