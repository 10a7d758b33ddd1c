"""End to end: spec -> run folder -> answers, on the bundled Online Retail data."""
from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

import segmint

BUNDLED = Path(str(resources.files("segmint") / "data" / "online_retail.parquet"))
CLEANING = {"impute_customer": True, "drop_non_product_codes": True, "min_unit_price": 0.04,
            "drop_customers": ["16446"], "drop_countries": ["European Community", "Unspecified"]}


def small_spec(path, **over) -> dict:
    spec = {
        "name": "small",
        "source": {"path": str(path)},
        "recipe": {"features": "insiders", "cleaning": CLEANING},
        "sweep": {"scalings": ["log"], "algorithms": [
            {"name": "kmeans", "grid": {"n_clusters": [2, 3, 4, 5]}},
            {"name": "gaussian_mixture", "grid": {"n_components": [3]}},
            {"name": "dbscan", "grid": {"eps": [0.5], "min_samples": [20]}},
        ]},
        "select": {"stability_resamples": 3, "stability_top": 2},
    }
    spec.update(over)
    return spec


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    return segmint.run(small_spec(BUNDLED), output=out)


def test_run_folder_holds_what_design_says(first_run):
    p = first_run.path
    for name in ["spec.yaml", "manifest.json", "customers.parquet", "prepared.parquet",
                 "leaderboard.csv", "stability.csv", "report.html"]:
        assert (p / name).is_file(), name
    board = first_run.leaderboard()
    assert sorted(first_run.solutions()) == sorted(board["solution"])
    assert len(board) == 6
    # per-segment stability (clusterboot Jaccard) of the stability candidates, with verdicts
    segments = first_run.segment_stability()
    assert len(segments) and set(segments["solution"]) == set(first_run.stability()["solution"])
    assert ((segments["jaccard_mean"] >= 0.75) == (segments["verdict"] == "stable")).all()
    assert ((segments["jaccard_mean"] < 0.6) == (segments["verdict"] == "not to be trusted")).all()
    # every solution's labels are a column of one labels.parquet (run format 3)
    labels = pd.read_parquet(p / "labels.parquet")
    assert list(labels.columns) == ["customer", *board["solution"]]
    assert list(labels["customer"]) == list(first_run.customers().index)
    for name in board["solution"]:
        folder = p / "solutions" / name
        assert {f.name for f in folder.iterdir()} >= {"model.skops", "profile.parquet",
                                                      "centroids.parquet", "metrics.json"}
        assert "labels.parquet" not in {f.name for f in folder.iterdir()}
        segments = first_run.solution(name).labels()
        assert (segments["segment"].to_numpy() == labels[name].to_numpy()).all()
        sizes = first_run.solution(name).profile().set_index("segment")["size"]
        assert sizes.to_dict() == labels[name].value_counts().to_dict()
    manifest = json.loads((p / "manifest.json").read_text())
    assert manifest["input"]["rows"] == 541_909
    assert manifest["customers"] == len(first_run.customers()) > 5000
    assert manifest["recommended"] in set(board["solution"])
    assert board.loc[board["recommended"], "solution"].tolist() == [manifest["recommended"]]
    # the spec as run has its defaults filled in
    written = yaml.safe_load((p / "spec.yaml").read_text())
    assert written["select"]["min_cluster_share"] == 0.01


def test_same_spec_twice_gives_the_same_leaderboard(first_run, tmp_path):
    again = segmint.run(small_spec(BUNDLED), output=tmp_path)
    a = first_run.leaderboard().drop(columns="fit_seconds")
    b = again.leaderboard().drop(columns="fit_seconds")
    pd.testing.assert_frame_equal(a, b)
    assert again.recommended == first_run.recommended
    pd.testing.assert_frame_equal(first_run.stability(), again.stability())


def test_profiles_sizes_add_up_and_insiders_is_top_revenue(first_run):
    for name in first_run.solutions():
        prof = first_run.solution(name).profile()
        assert prof["size"].sum() == len(first_run.customers())
        assert prof["share"].sum() == pytest.approx(1.0)
        assert prof["revenue_share"].sum() == pytest.approx(1.0)
        real = prof[prof["segment"] >= 0]
        assert real.loc[real["mean_gross_revenue"].idxmax(), "insiders"]
        assert prof["insiders"].sum() == 1
        assert prof["name"].is_unique


def test_predict_on_the_training_customers_gives_back_their_labels(first_run):
    customers = first_run.customers()
    for name in ["kmeans_k4", "gaussian_mixture_k3"]:
        sol = first_run.solution(name)
        scored = first_run.predict(customers.reset_index(), solution=name)
        labels = sol.labels()
        assert (scored["customer"].to_numpy() == labels["customer"].to_numpy()).all()
        assert (scored["segment"].to_numpy() == labels["segment"].to_numpy()).all()
    # k-means: the assigned centroid is the nearest one, distances come nearest first
    scored = first_run.predict(customers.head(50).reset_index(), solution="kmeans_k4")
    for _, row in scored.iterrows():
        d = [x["distance"] for x in row["nearest_centroids_distance"]]
        assert d == sorted(d) and len(d) == 4
        assert row["nearest_centroids_distance"][0]["centroid_id"] == row["segment"]
        assert row["distance"] == pytest.approx(d[0])


def test_predict_from_raw_transactions_goes_through_the_recipe(first_run, tmp_path):
    raw = pd.read_parquet(BUNDLED)
    some = raw[raw["CustomerID"].isin([12347.0, 12348.0, 17850.0])]
    path = tmp_path / "new.parquet"
    some.to_parquet(path)
    scored = first_run.predict(path, solution="kmeans_k3")
    assert sorted(scored["customer"]) == ["12347", "12348", "17850"]
    # -1: set apart by the run's saved outlier detector, as in fitting (17850 spends the most)
    assert scored["segment"].between(-1, 2).all()
    assert (scored.loc[scored["segment"] == -1, "name"] == "outliers (noise)").all()
    # the same features recomputed from these lines alone: 12347's revenue is all in them
    table = first_run.customers()
    assert table.loc["12347", "gross_revenue"] > 0


def test_centroids_match_profile_means(first_run):
    sol = first_run.solution("kmeans_k3")
    cents = sol.centroids().pivot(index="segment", columns="feature", values="value")
    prof = sol.profile().set_index("segment")
    # centroids are the clustered segments' (the outlier segment -1 has none)
    assert list(cents.index) == [s for s in prof.index if s >= 0]
    assert np.allclose(cents["gross_revenue"], prof.loc[cents.index, "mean_gross_revenue"])


def test_unknown_solution_is_a_model_error(first_run):
    with pytest.raises(segmint.ModelError, match="no solution 'kmeans_k99'"):
        first_run.solution("kmeans_k99")


def test_dbscan_predict_keeps_core_customers_in_their_cluster(first_run):
    name = next(n for n in first_run.solutions() if n.startswith("dbscan"))
    sol = first_run.solution(name)
    est = sol.model.named_steps["cluster"]
    customers = first_run.customers()
    core = customers.iloc[est.core_sample_indices_]
    scored = sol.predict(core.reset_index())
    labels = sol.labels().set_index("customer").loc[core.index, "segment"]
    assert len(core) > 100
    assert (scored["segment"].to_numpy() == labels.to_numpy()).all()
    # a customer far from everyone is noise
    far = customers.head(1).copy()
    far.loc[:, :] = 1e9
    assert sol.predict(far.reset_index())["segment"].tolist() == [-1]


def test_predict_from_a_raw_dataframe_with_the_original_headers(first_run):
    raw = pd.read_parquet(BUNDLED)
    some = raw[raw["CustomerID"].isin([12347.0, 12348.0])]
    scored = first_run.predict(some, solution="kmeans_k3")
    assert sorted(scored["customer"]) == ["12347", "12348"]
    bad = some.assign(UnitPrice=some["UnitPrice"].astype(str))
    bad.iloc[2, bad.columns.get_loc("UnitPrice")] = "n/a"
    with pytest.raises(segmint.InputError, match=r"column 'UnitPrice', row 3"):
        first_run.predict(bad, solution="kmeans_k3")


def test_intel21_revenue_shares_equal_the_shares_from_the_raw_lines(tmp_path):
    spec = {"name": "intel", "source": {"path": str(BUNDLED)}, "recipe": {"features": "intel21"},
            "sweep": {"scalings": ["standard"],
                      "algorithms": [{"name": "kmeans", "grid": {"n_clusters": [3, 4]}}]},
            "select": {"stability_resamples": 2, "stability_top": 1}}
    run = segmint.run(spec, output=tmp_path)
    assert run.manifest["revenue"] == "revenue" and "revenue" not in run.features
    assert len(run.features) == 21
    # independent: gross spend per customer from the raw lines (purchases, quantity >= 0)
    raw = pd.read_parquet(BUNDLED).dropna(subset=["CustomerID"])
    raw["customer"] = raw["CustomerID"].astype("int64").astype(str)
    buys = raw[raw["Quantity"] >= 0]
    spend = (buys["Quantity"] * buys["UnitPrice"]).groupby(buys["customer"]).sum()
    for name in ["kmeans_k3", "kmeans_k4"]:
        sol = run.solution(name)
        labels = sol.labels().set_index("customer")["segment"]
        mine = spend.reindex(labels.index).fillna(0.0)
        expected = mine.groupby(labels).sum() / mine.sum()
        prof = sol.profile().set_index("segment")
        assert np.allclose(prof.loc[expected.index, "revenue_share"], expected, rtol=1e-9)
        # the Insiders badge sits on the segment with the highest mean spend
        top = mine.groupby(labels).mean().drop(-1, errors="ignore").idxmax()  # outliers aside
        assert prof["insiders"].sum() == 1 and prof.loc[top, "insiders"]


def test_a_dbscan_grid_saves_the_core_samples_scikit_learn_would(tmp_path):
    # two settings: the grid engine fits them; its solutions hold no copy of their core
    # samples during the run, and the saved models get them back
    from sklearn.cluster import DBSCAN

    spec = small_spec(BUNDLED, prepare={"outliers": {"method": "none"}},
                      sweep={"scalings": ["log"], "algorithms": [
                          {"name": "kmeans", "grid": {"n_clusters": [2, 3]}},
                          {"name": "dbscan", "grid": {"eps": [0.5, 0.8], "min_samples": [20]}}]})
    run = segmint.run(spec, output=tmp_path)
    customers = run.customers()
    dbscans = [n for n in run.solutions() if n.startswith("dbscan")]
    assert len(dbscans) == 2
    for name in dbscans:
        model = run.solution(name).model
        est = model.named_steps["cluster"]
        X = model.named_steps["prepare"].transform(customers)
        ref = DBSCAN(eps=est.eps, min_samples=est.min_samples).fit(X)
        assert len(ref.core_sample_indices_) > 100
        np.testing.assert_array_equal(est.core_sample_indices_, ref.core_sample_indices_)
        np.testing.assert_array_equal(est.components_, ref.components_)
