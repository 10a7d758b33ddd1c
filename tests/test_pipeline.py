"""segmint.run on customer tables in memory: ids kept, missing values by policy, nothing
non-finite reaching a clusterer."""
from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import segmint
from segmint.cluster import run_sweep
from segmint.spec import SweepSpec


def _clients(n: int = 150, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    group = np.repeat([0, 1, 2], n // 3)
    return pd.DataFrame({
        "client_ref": [f"R-{i:04d}" for i in range(n)],
        "balance": np.r_[rng.normal(100, 10, n // 3), rng.normal(900, 40, n // 3),
                         rng.normal(3000, 90, n // 3)],
        "visits": np.r_[rng.normal(2, 0.3, n // 3), rng.normal(8, 0.5, n // 3),
                        rng.normal(20, 1, n // 3)],
        "plan": np.where(group == 2, "gold", np.where(group == 1, "silver", "basic")),
    })


SPEC = {"name": "clients", "recipe": {"kind": "attributes"},
        "sweep": {"scalings": ["standard"],
                  "algorithms": [{"name": "kmeans", "grid": {"n_clusters": [2, 3, 4]}}]},
        "select": {"stability_resamples": 2}}


def test_run_on_a_dataframe_keeps_its_client_ref_ids_and_predict_too(tmp_path):
    clients = _clients()
    run = segmint.run(clients, SPEC, output=tmp_path)
    assert run.manifest["schema"]["id"] == "client_ref"
    assert list(run.customers().index) == list(clients["client_ref"])
    labels = run.solution("kmeans_k3").labels()
    assert list(labels["customer"]) == list(clients["client_ref"])
    # the three made groups come back as the three segments
    assert labels.groupby(clients["plan"].to_numpy())["segment"].nunique().eq(1).all()
    scored = run.predict(clients.iloc[::-1].head(20), solution="kmeans_k3")
    assert list(scored["customer"]) == list(clients["client_ref"].iloc[::-1].head(20))
    expected = labels.set_index("customer").loc[scored["customer"], "segment"].to_numpy()
    assert (scored["segment"].to_numpy() == expected).all()


def test_ids_from_a_named_index_arrow_and_duckdb(tmp_path):
    clients = _clients()
    by_index = segmint.run(clients.set_index("client_ref").rename_axis("ref"), SPEC,
                           output=tmp_path / "a")
    assert list(by_index.customers().index) == list(clients["client_ref"])
    arrow = segmint.run(pa.Table.from_pandas(clients), SPEC, output=tmp_path / "b")
    relation = duckdb.connect().from_df(clients)
    rel = segmint.run(relation, SPEC, output=tmp_path / "c")
    for other in (arrow, rel):
        assert list(other.customers().index) == list(clients["client_ref"])
        assert (other.solution("kmeans_k3").labels()["segment"].to_numpy()
                == by_index.solution("kmeans_k3").labels()["segment"].to_numpy()).all()


def test_missing_values_are_imputed_and_counted_by_default(tmp_path):
    clients = _clients()
    clients.loc[[3, 60, 61], "balance"] = np.nan
    clients.loc[[7], "plan"] = None
    run = segmint.run(clients, SPEC, output=tmp_path)
    info = run.feature_info().set_index("column")
    assert info.loc["balance", "imputed"] == 3 and info.loc["plan", "imputed"] == 1
    assert "missing_balance" in info.loc["balance", "became"]
    assert "plan_gold" in info.loc["plan", "became"]
    board = run.leaderboard().set_index("solution")
    # imputation keeps every customer and the clusters: not one cluster everywhere
    assert (board["n_clusters"] == [2, 3, 4]).all()
    assert run.manifest["customers"] == 150


def test_missing_error_policy_names_column_and_rows(tmp_path):
    clients = _clients()
    clients.loc[[3, 60], "balance"] = np.nan
    with pytest.raises(segmint.InputError) as caught:
        segmint.run(clients, {**SPEC, "recipe": {"kind": "attributes", "missing": "error"}},
                    output=tmp_path)
    message = str(caught.value)
    assert "balance" in message and "4" in message and "61" in message
    assert not any(tmp_path.iterdir())  # nothing written


def test_missing_drop_policy_counts_the_rows(tmp_path):
    clients = _clients()
    clients.loc[[3, 60], "balance"] = np.nan
    run = segmint.run(clients, {**SPEC, "recipe": {"kind": "attributes", "missing": "drop"}},
                      output=tmp_path)
    assert run.manifest["customers"] == 148
    assert "R-0003" not in set(run.customers().index)
    assert any("2" in note and "dropped" in note for note in run.manifest["notes"])


def test_nan_and_inf_through_the_grid_engine_never_give_one_cluster():
    X = np.random.default_rng(3).normal(size=(300, 3)) + np.repeat([[0, 0, 0], [8, 8, 8]], 150, 0)
    table = pd.DataFrame(X, columns=["a", "b", "c"])
    table.iloc[[5, 200], 1] = np.nan
    spec = SweepSpec.model_validate({"algorithms": [{"name": "kmeans",
                                                     "grid": {"n_clusters": [2, 3, 4]}}]})
    sols = run_sweep(table, spec)
    assert [s.metrics["n_clusters"] for s in sols] == [2, 3, 4]
    assert len(sols[0].columns) == 4 and sols[0].columns[-1] == "missing_b"
    table.iloc[7, 2] = np.inf
    with pytest.raises(segmint.InputError, match=r"'c'.*non-finite.*rows \[8\]"):
        run_sweep(table, spec)


def test_a_spec_without_a_source_needs_data():
    with pytest.raises(segmint.SpecError, match="no 'source'"):
        segmint.run(SPEC)


def test_describe_columns_before_running(tmp_path):
    from segmint.pipeline import describe_columns

    clients = _clients()
    clients.loc[[1, 2], "visits"] = np.nan
    path = tmp_path / "clients.csv"
    clients.to_csv(path, index=False)
    info = describe_columns(path).set_index("column")
    assert info.loc["client_ref", "type"] == "id"
    assert info.loc["client_ref", "became"] == "the customer id"
    assert info.loc["plan", "type"] == "categorical"
    assert info.loc["plan", "became"] == "plan_basic, plan_gold, plan_silver"
    assert info.loc["visits", "nulls"] == 2
    assert info.loc["visits", "became"] == "visits, missing_visits"
    assert info.loc["balance", "mean"] == pytest.approx(clients["balance"].mean())


def test_a_customer_table_run_as_transactions_says_how_to_read_it(tmp_path):
    path = tmp_path / "mall.csv"
    pd.DataFrame({"CustomerID": [1, 2, 3], "Age": [19, 21, 20],
                  "Annual Income (k$)": [15, 15, 16]}).to_csv(path, index=False)
    with pytest.raises(segmint.InputError, match="recipe.kind: attributes") as caught:
        segmint.run({"source": {"path": str(path)}, "output": str(tmp_path / "runs")})
    assert caught.value.file == str(path) and caught.value.column is not None


def test_one_day_of_transactions_says_its_constant_features(tmp_path):
    lines = pd.DataFrame({"customer": ["a", "a", "b", "c", "d"], "invoice": ["1", "2", "3", "4", "5"],
                          "date": ["2010-12-01 08:26"] * 5, "quantity": [1, 2, 3, 4, 5],
                          "price": [1.0, 2.0, 3.0, 4.0, 5.0]})
    spec = {"recipe": {"features": "rfm"}, "sweep": {"algorithms": [
        {"name": "kmeans", "grid": {"n_clusters": [2]}}]}, "select": {"stability_resamples": 2}}
    run = segmint.run(lines, spec, output=tmp_path)
    notes = " ".join(run.manifest["notes"])
    assert "recency_days is the same for every customer" in notes


def test_an_overflowing_value_is_an_error_not_one_cluster(tmp_path):
    clients = _clients()
    clients.loc[3, "balance"] = 1e200
    with pytest.raises(segmint.InputError, match=r"'balance', row 4: 1 values beyond"):
        segmint.run(clients, SPEC, output=tmp_path)


def test_kprototypes_runs_on_the_mixed_table_and_scores_new_clients(tmp_path):
    clients = _clients()
    clients.loc[[5, 70], "balance"] = np.nan  # filled by the mixed input's imputer
    spec = {**SPEC, "sweep": {"scalings": ["standard", "log"], "algorithms": [
        {"name": "kprototypes", "grid": {"n_clusters": [3], "n_init": [2]}}]}}
    run = segmint.run(clients, spec, output=tmp_path)
    board = run.leaderboard().set_index("solution")
    # one fit whatever the scalings, measured in the first representation's space
    assert list(board.index) == ["kprototypes_k3"]
    assert board.loc["kprototypes_k3", "representation"] == "standard"
    assert "mixed table" in board.loc["kprototypes_k3", "description"]
    labels = run.solution("kprototypes_k3").labels()
    assert labels.groupby(clients["plan"].to_numpy())["segment"].nunique().eq(1).all()
    scored = run.predict(clients.head(30), solution="kprototypes_k3")
    assert (scored["segment"].to_numpy() == labels["segment"].head(30).to_numpy()).all()
    nearest = scored["nearest_centroids_distance"].iloc[0]
    assert len(nearest) == 3 and nearest[0]["centroid_id"] == scored["segment"].iloc[0]
