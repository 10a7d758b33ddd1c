"""segmint.sql's session (``segmint.sql.connect``): statements on a DuckDB file, models in the
catalog beside it as segmint run folders, the ML functions inside larger queries, and errors.

The data are twelve points a reader can hold in their head: three squares of side 2 whose
centres are (1, 1), (21, 1) and (1, 21), with a plan (basic, gold, plus) per square::

    id  1..4   (0,0) (0,2) (2,0) (2,2)          basic
    id  5..8   (20,0) (20,2) (22,0) (22,2)      gold
    id  9..12  (0,20) (0,22) (2,20) (2,22)      plus

x and y have the same mean (23/3) and standard deviation (S below), so distances in BigQuery's
standardised space are the plain ones divided by S, and every point is sqrt(2)/S from the
centre of its square.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import davies_bouldin_score

import segmint
import segmint.sql
from segmint.errors import InternalError, ModelError, SegmintError

SQUARES = {"basic": (1.0, 1.0), "gold": (21.0, 1.0), "plus": (1.0, 21.0)}


def points() -> pd.DataFrame:
    rows = []
    for plan, (cx, cy) in SQUARES.items():
        for dx, dy in [(-1, -1), (-1, 1), (1, -1), (1, 1)]:
            rows.append({"id": len(rows) + 1, "x": cx + dx, "y": cy + dy, "plan": plan})
    return pd.DataFrame(rows)


S = float(points()["x"].std(ddof=1))  # = the y standard deviation: 9.9026


def open_with_points(folder, name: str = "s.duckdb") -> segmint.sql.Connection:
    """A database in ``folder`` with the points as ds.t, loaded through CREATE EXTERNAL TABLE."""
    points().to_parquet(folder / "points.parquet")
    con = segmint.sql.connect(folder / name)
    con.execute(f"CREATE EXTERNAL TABLE ds.raw OPTIONS(format='PARQUET', "
                f"uris=['{folder / 'points.parquet'}']);"
                f"CREATE TABLE ds.t AS SELECT * FROM ds.raw")
    return con


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("session")


@pytest.fixture(scope="module")
def con(folder):
    """ds.t and ds.m: k-means with k=3 on x, y and plan (k-means++ start: the three squares)."""
    con = open_with_points(folder)
    con.execute("CREATE MODEL ds.m OPTIONS(model_type='kmeans', num_clusters=3, "
                "kmeans_init_method='KMEANS++') AS SELECT x, y, plan FROM ds.t")
    yield con
    con.close()


def centres(con, model: str, digits: int = 6) -> dict[int, tuple[float, float]]:
    """centroid_id -> (x, y) from ML.CENTROIDS, rounded to compare with hand values."""
    frame = con.execute(f"SELECT centroid_id, feature, numerical_value "
                        f"FROM ML.CENTROIDS(MODEL {model}) WHERE feature IN ('x', 'y')")
    wide = frame.pivot(index="centroid_id", columns="feature", values="numerical_value")
    return {int(c): (round(float(r["x"]), digits), round(float(r["y"]), digits))
            for c, r in wide.iterrows()}


def assignment(con, model: str, rows: str = "TABLE ds.t") -> dict[int, int]:
    frame = con.execute(f"SELECT id, CENTROID_ID FROM ML.PREDICT(MODEL {model}, {rows})")
    return dict(zip(frame["id"], frame["CENTROID_ID"], strict=True))


# ---------------------------------------------------------------------- persistence, catalog


def test_a_model_and_a_view_are_there_after_close_and_reopen_until_dropped(tmp_path):
    con = open_with_points(tmp_path, "a.duckdb")
    con.execute("CREATE VIEW ds.right_side AS SELECT id, x FROM ds.t WHERE x > 10;"
                "CREATE MODEL ds.m OPTIONS(model_type='kmeans', num_clusters=2) AS "
                "SELECT x, y FROM ds.t")
    con.close()

    con = segmint.sql.connect(tmp_path / "a.duckdb")
    listed = con.models()
    assert listed[["dataset", "model_name", "model_type"]].values.tolist() == [["ds", "m", "KMEANS"]]
    assert listed["path"].tolist() == [str(tmp_path / "a.duckdb.models" / "ds" / "m")]
    assert con.execute("SELECT COUNT(DISTINCT centroid_id) AS k "
                       "FROM ML.CENTROIDS(MODEL ds.m)").k.tolist() == [2]
    assert con.execute("SELECT COUNT(*) AS n, SUM(x) AS x FROM ds.right_side").values.tolist() \
        == [[4, 84]]  # the gold square: 20 + 20 + 22 + 22

    con.execute("DROP MODEL ds.m")
    assert con.models().empty
    assert not (tmp_path / "a.duckdb.models" / "ds" / "m").exists()
    with pytest.raises(ModelError, match=r"Not found: Model ds\.m"):
        con.execute("SELECT * FROM ML.CENTROIDS(MODEL ds.m)")
    with pytest.raises(ModelError, match=r"Not found: Model ds\.m"):
        con.execute("DROP MODEL ds.m")
    [result] = con.run("DROP MODEL IF EXISTS ds.m")
    assert result.kind == "model" and "No such model" in result.message
    con.close()


def test_create_over_a_name_fails_and_keeps_it_or_replace_replaces_if_not_exists_keeps(tmp_path):
    con = open_with_points(tmp_path)
    con.execute("CREATE MODEL ds.m OPTIONS(model_type='kmeans', num_clusters=2) AS "
                "SELECT x, y FROM ds.t")
    k = "SELECT COUNT(DISTINCT centroid_id) AS k FROM ML.CENTROIDS(MODEL ds.m)"
    with pytest.raises(ModelError, match=r"Already Exists: Model ds\.m .*CREATE OR REPLACE"):
        con.execute("CREATE MODEL ds.m OPTIONS(model_type='kmeans', num_clusters=3) AS "
                    "SELECT x, y FROM ds.t")
    assert con.execute(k).k.tolist() == [2]
    [kept] = con.run("CREATE MODEL IF NOT EXISTS ds.m OPTIONS(model_type='kmeans', "
                     "num_clusters=3) AS SELECT x, y FROM ds.t")
    assert "kept" in kept.message
    assert con.execute(k).k.tolist() == [2]
    con.execute("CREATE OR REPLACE MODEL ds.m OPTIONS(model_type='kmeans', num_clusters=3, "
                "kmeans_init_method='KMEANS++') AS SELECT x, y FROM ds.t")
    assert con.execute(k).k.tolist() == [3]
    assert sorted(centres(con, "ds.m").values()) == sorted(SQUARES.values())
    assert len(con.models()) == 1
    con.close()


# ---------------------------------------------------------------------- the model is a segmint run


def test_the_model_is_a_segmint_run_its_profile_and_predict_agree_with_ml_predict(con, folder):
    run = segmint.open_run(folder / "s.duckdb.models" / "ds" / "m")
    assert run.solutions() == ["kmeans_k3"] and run.recommended == "kmeans_k3"
    assert (run.path / "report.html").is_file()
    counts = con.execute("SELECT CENTROID_ID, COUNT(*) AS n FROM ML.PREDICT(MODEL ds.m, TABLE ds.t) "
                         "GROUP BY CENTROID_ID")
    profile = run.solution().profile()
    assert dict(zip(profile["segment"] + 1, profile["size"], strict=True)) \
        == dict(zip(counts["CENTROID_ID"], counts["n"], strict=True)) == {1: 4, 2: 4, 3: 4}
    # run.predict on a DataFrame assigns segment = CENTROID_ID - 1
    frame = points().assign(customer=lambda d: d["id"].astype(str))
    scored = run.predict(frame)
    by_sql = assignment(con, "ds.m")
    assert {int(c): int(s) + 1 for c, s in zip(scored["customer"], scored["segment"], strict=True)} \
        == by_sql
    # each square is one segment, and the profile's means are the square's centre
    for plan, (cx, cy) in SQUARES.items():
        ids = points().loc[lambda d, p=plan: d["plan"] == p, "id"]
        [centroid] = {by_sql[i] for i in ids}
        row = profile.set_index("segment").loc[centroid - 1]
        assert (row["mean_x"], row["mean_y"], row["top_plan"]) == (cx, cy, plan)


# ---------------------------------------------------------------------- TRANSFORM, HPARAM, starts


def test_transform_features_are_computed_at_training_and_again_in_predict(con):
    con.execute("CREATE MODEL ds.tr TRANSFORM(x * 2 AS x2, * EXCEPT(x)) OPTIONS("
                "model_type='kmeans', num_clusters=3, kmeans_init_method='KMEANS++') AS "
                "SELECT x, y FROM ds.t")
    info = con.execute("SELECT input, min, max FROM ML.FEATURE_INFO(MODEL ds.tr)")
    assert info.values.tolist() == [["x2", 0.0, 44.0], ["y", 0.0, 22.0]]
    cents = con.execute("SELECT centroid_id, numerical_value FROM ML.CENTROIDS(MODEL ds.tr) "
                        "WHERE feature = 'x2' ORDER BY numerical_value")
    assert cents["numerical_value"].round(9).tolist() == [2.0, 2.0, 42.0]  # 2 * (1, 1, 21)
    out = con.execute("SELECT * FROM ML.PREDICT(MODEL ds.tr, (SELECT id, x, y FROM ds.t)) "
                      "ORDER BY id")
    # the input columns pass through as given: x, not x2
    assert out.columns.tolist() == ["CENTROID_ID", "NEAREST_CENTROIDS_DISTANCE", "id", "x", "y"]
    assert out["x"].tolist() == points()["x"].tolist()
    gold = cents.loc[cents["numerical_value"].round(9) == 42.0, "centroid_id"].item()
    assert out.loc[out["x"] >= 20, "CENTROID_ID"].tolist() == [gold] * 4
    assert gold not in out.loc[out["x"] < 20, "CENTROID_ID"].tolist()


def test_hparam_trials_optimal_on_lowest_davies_bouldin_one_solution_per_trial(con, folder):
    con.execute("CREATE MODEL ds.h OPTIONS(model_type='kmeans', "
                "num_clusters=HPARAM_RANGE(2, 5), num_trials=4, kmeans_init_method='KMEANS++') "
                "AS SELECT x, y FROM ds.t")
    trials = con.execute("SELECT trial_id, hyperparameters.num_clusters AS k, "
                         "hparam_tuning_evaluation_metrics.davies_bouldin_index AS db, "
                         "is_optimal FROM ML.TRIAL_INFO(MODEL ds.h) ORDER BY trial_id")
    assert trials["trial_id"].tolist() == [1, 2, 3, 4] and trials["k"].tolist() == [2, 3, 4, 5]
    assert trials["is_optimal"].tolist() == (trials["db"] == trials["db"].min()).tolist()
    assert trials.loc[trials["is_optimal"], "k"].tolist() == [3]  # the three squares
    # each trial's figure is scikit-learn's Davies-Bouldin of that trial's assignment
    # (x and y share one standard deviation, so the raw points give the standardised figure)
    xy = points()[["x", "y"]].to_numpy()
    for trial_id, db in zip(trials["trial_id"], trials["db"], strict=True):
        labels = assignment(con, "ds.h", f"TABLE ds.t, STRUCT({trial_id} AS trial_id)")
        assert db == pytest.approx(davies_bouldin_score(xy, [labels[i] for i in range(1, 13)]))
    run = segmint.open_run(folder / "s.duckdb.models" / "ds" / "h")
    assert run.solutions() == ["trial_1_k2", "trial_2_k3", "trial_3_k4", "trial_4_k5"]
    assert run.recommended == "trial_2_k3"
    board = run.leaderboard().set_index("solution")
    assert board.loc["trial_2_k3", "recommended"] and board["recommended"].sum() == 1
    assert board.loc["trial_2_k3", "davies_bouldin"] == pytest.approx(trials["db"].min())


def test_custom_start_then_warm_start_continues_from_the_previous_centres(con):
    # CUSTOM: rows 1 (0,0), 3 (2,0) and 9 (0,20) start; one iteration assigns (0,0), (0,2) to
    # the first, the rest of the basic square and the whole gold square to (2,0), the plus
    # square to (0,20): centres (0,1), (88/6, 1), (1,21)
    con.execute("CREATE MODEL ds.w OPTIONS(model_type='kmeans', kmeans_init_method='CUSTOM', "
                "kmeans_init_col='init', max_iterations=1) AS "
                "SELECT x, y, id IN (1, 3, 9) AS init FROM ds.t")
    before = centres(con, "ds.w")
    assert sorted(before.values()) == [(0.0, 1.0), (1.0, 21.0), (round(88 / 6, 6), 1.0)]
    assert con.execute("SELECT input FROM ML.FEATURE_INFO(MODEL ds.w)").input.tolist() == ["x", "y"]
    # warm start: one more iteration from those centres puts each square on its own centroid,
    # each centroid keeping its id
    con.execute("CREATE OR REPLACE MODEL ds.w OPTIONS(model_type='kmeans', warm_start=TRUE, "
                "max_iterations=1) AS SELECT x, y FROM ds.t")
    after = centres(con, "ds.w")
    expected = {(0.0, 1.0): (1.0, 1.0), (1.0, 21.0): (1.0, 21.0), (round(88 / 6, 6), 1.0): (21.0, 1.0)}
    assert after == {c: expected[xy] for c, xy in before.items()}
    log = con.execute("SELECT training_run, loss FROM ML.TRAINING_INFO(MODEL ds.w) "
                      "ORDER BY training_run, iteration")
    assert log["training_run"].tolist() == [0, 1]
    assert log["loss"].iloc[1] == pytest.approx(2 / S**2)  # every point sqrt(2)/S from its centre


def test_cosine_distance_groups_by_angle(con):
    # shifted off the origin; without standardisation the angle is the points' own
    con.execute("CREATE MODEL ds.cos OPTIONS(model_type='kmeans', num_clusters=2, "
                "distance_type='COSINE', standardize_features=FALSE, "
                "kmeans_init_method='KMEANS++') AS SELECT x + 0.5 AS x, y + 0.5 AS y FROM ds.t")
    cents = centres(con, "ds.cos", digits=15)
    out = con.execute("SELECT * FROM ML.PREDICT(MODEL ds.cos, "
                      "(SELECT id, x + 0.5 AS x, y + 0.5 AS y FROM ds.t))")
    for row in out.itertuples():
        v = np.array([row.x, row.y])
        expected = {c: 1 - v @ np.array(xy) / np.linalg.norm(v) / np.linalg.norm(xy)
                    for c, xy in cents.items()}
        got = {e["CENTROID_ID"]: e["DISTANCE"] for e in row.NEAREST_CENTROIDS_DISTANCE}
        assert got == pytest.approx(expected)
        assert row.CENTROID_ID == min(expected, key=expected.get)
    # below the diagonal with (22.5, 0.5), above it with (0.5, 22.5): (2.5, 0.5) is near the
    # origin, yet joins the far point at its angle, as euclidean k-means would not
    below = set(out.loc[out["x"] > out["y"], "CENTROID_ID"])
    above = set(out.loc[out["x"] < out["y"], "CENTROID_ID"])
    assert len(below) == len(above) == 1 and below != above


def test_the_same_statement_gives_the_same_model_and_seed_changes_it(con):
    # one iteration from a RANDOM start: the centres show which rows started
    statement = ("CREATE OR REPLACE MODEL ds.{name} OPTIONS(model_type='kmeans', num_clusters=3, "
                 "max_iterations=1{seed}) AS SELECT x, y FROM ds.t{order}")
    for name, seed, order in [("r1", "", ""), ("r2", "", " ORDER BY id DESC"),
                              ("r3", ", seed=1", "")]:
        con.execute(statement.format(name=name, seed=seed, order=order))
    assert centres(con, "ds.r1") == centres(con, "ds.r2")  # training rows are sorted first
    assert centres(con, "ds.r1") != centres(con, "ds.r3")


# ---------------------------------------------------------------------- the ML.* tables


def test_training_and_feature_info_against_numbers_by_hand(con):
    [row] = con.execute("SELECT * FROM ML.TRAINING_INFO(MODEL ds.m) "
                        "ORDER BY iteration DESC LIMIT 1").to_dict("records")
    # plan is one-hot and constant within a square: each point is sqrt(2)/S from its centre
    assert row["loss"] == pytest.approx(2 / S**2)
    assert [c["cluster_size"] for c in row["cluster_info"]] == [4, 4, 4]
    assert [c["cluster_radius"] for c in row["cluster_info"]] == pytest.approx([np.sqrt(2) / S] * 3)
    [evaluated] = con.execute("SELECT * FROM ML.EVALUATE(MODEL ds.m)").to_dict("records")
    assert evaluated["mean_squared_distance"] == pytest.approx(2 / S**2)

    info = con.execute("SELECT * FROM ML.FEATURE_INFO(MODEL ds.m)").set_index("input")
    frame = points()
    for column in ["x", "y"]:
        got = info.loc[column]
        assert [got["min"], got["max"], got["mean"], got["median"], got["stddev"]] == pytest.approx(
            [frame[column].min(), frame[column].max(), frame[column].mean(),
             frame[column].median(), frame[column].std(ddof=1)])
        assert got["null_count"] == 0
    assert info.loc["plan", "category_count"] == 3 and info.loc["plan", "null_count"] == 0


def test_detect_anomalies_flags_a_planted_far_point_and_reads_training_rows_without_input(con):
    out = con.execute("SELECT * FROM ML.DETECT_ANOMALIES(MODEL ds.m, STRUCT(0.1 AS contamination), "
                      "(SELECT 'far' AS label, 100.0 AS x, 100.0 AS y, 'gold' AS plan UNION ALL "
                      " SELECT 'centre', 21.0, 1.0, 'gold')) ORDER BY label")
    assert out.columns.tolist()[:3] == ["is_anomaly", "normalized_distance", "centroid_id"]
    assert out[["label", "is_anomaly"]].values.tolist() == [["centre", False], ["far", True]]
    assert out["normalized_distance"].iloc[0] == pytest.approx(0.0, abs=1e-9)  # on the centroid
    # without rows: the training rows, each at exactly its cluster's radius
    training = con.execute("SELECT * FROM ML.DETECT_ANOMALIES(MODEL ds.m, "
                           "STRUCT(0.1 AS contamination))")
    assert len(training) == 12
    assert training["normalized_distance"].to_numpy() == pytest.approx(np.ones(12))
    assert sorted(training["x"]) == sorted(points()["x"])


def test_detect_anomalies_without_rows_on_a_bool_feature(con):
    # the run folder keeps a BOOL feature as 0/1; the training rows must be BOOL again
    con.execute("CREATE MODEL ds.b OPTIONS(model_type='kmeans', num_clusters=3, "
                "kmeans_init_method='KMEANS++') AS SELECT x, y, x > 10 AS east FROM ds.t")
    out = con.execute("SELECT east, COUNT(*) AS n FROM ML.DETECT_ANOMALIES(MODEL ds.b, "
                      "STRUCT(0.1 AS contamination)) GROUP BY east ORDER BY east")
    assert out.values.tolist() == [[False, 8], [True, 4]]


# ---------------------------------------------------------------------- inside larger queries


def test_ml_predict_joined_in_a_cte_unnested_and_over_a_table(con):
    by_table = assignment(con, "ds.m")
    joined = con.execute("SELECT t.plan, COUNT(DISTINCT p.CENTROID_ID) AS k, COUNT(*) AS n "
                         "FROM ds.t AS t JOIN ML.PREDICT(MODEL ds.m, TABLE ds.t) AS p "
                         "ON t.id = p.id GROUP BY t.plan ORDER BY t.plan")
    assert joined.values.tolist() == [["basic", 1, 4], ["gold", 1, 4], ["plus", 1, 4]]
    # a CTE defined outside the ML function, read by its input query
    in_cte = con.execute("WITH east AS (SELECT * FROM ds.t WHERE x > 10) "
                         "SELECT id, CENTROID_ID FROM ML.PREDICT(MODEL ds.m, (SELECT * FROM east)) "
                         "ORDER BY id")
    assert in_cte["id"].tolist() == [5, 6, 7, 8]
    assert in_cte["CENTROID_ID"].tolist() == [by_table[i] for i in (5, 6, 7, 8)]
    # UNNEST of the distances: min(k, 5) = 3 entries per row, nearest first
    nearest = con.execute("SELECT id, d.CENTROID_ID AS c, d.DISTANCE AS distance "
                          "FROM ML.PREDICT(MODEL ds.m, TABLE ds.t), "
                          "UNNEST(nearest_centroids_distance) AS d WHERE id = 1")
    assert len(nearest) == 3 and nearest["c"].iloc[0] == by_table[1]
    assert nearest["distance"].is_monotonic_increasing
    # (0,0) to the basic centre (1,1): sqrt(2)/S; to (21,1) and (1,21): the raw distance / S
    # plus the plan's one-hot difference (1 and 1: sqrt(2) more in squares)
    assert nearest["distance"].tolist() == pytest.approx(
        [np.sqrt(2) / S, np.sqrt(442 / S**2 + 2), np.sqrt(442 / S**2 + 2)])
    scalar = con.execute("SELECT (SELECT COUNT(*) FROM ML.PREDICT(MODEL ds.m, TABLE ds.t) "
                         "WHERE CENTROID_ID = 1) AS n")
    assert scalar["n"].tolist() == [4]


def test_create_table_as_ml_predict_keeps_the_rows(con):
    con.execute("CREATE OR REPLACE TABLE ds.scored AS "
                "SELECT id, CENTROID_ID FROM ML.PREDICT(MODEL ds.m, TABLE ds.t)")
    stored = con.execute("SELECT id, CENTROID_ID FROM ds.scored")
    assert dict(zip(stored["id"], stored["CENTROID_ID"], strict=True)) == assignment(con, "ds.m")


# ---------------------------------------------------------------------- errors


@pytest.mark.parametrize(("statement", "message"), [
    ("SELECT * FROM ML.PREDICT(MODEL ds.nope, TABLE ds.t)", r"Not found: Model ds\.nope"),
    ("CREATE MODEL ds.e OPTIONS(model_type='kmeans', num_clusters=2, bogus_option=1) AS "
     "SELECT x FROM ds.t", r"no option bogus_option"),
    ("CREATE MODEL ds.e OPTIONS(model_type='linear_reg') AS SELECT x, y FROM ds.t",
     r"model_type 'kmeans', not 'linear_reg'"),
    ("CREATE MODEL ds.e OPTIONS(model_type='kmeans', num_clusters=13) AS SELECT x FROM ds.t",
     r"num_clusters=13 is more than the 12 training rows"),
    ("SELECT 1;\nSELECT (x FROM ds.t", r"Syntax error: Expected \"\)\".* at \[2:11\]"),
    ("SELECT * FROM ds.nope", r"Not found: Table ds\.nope .* at \[1:15\]"),
    ("SELECT * FROM ML.PREDICT(MODEL ds.m, (SELECT x, plan FROM ds.t))", r"column 'y'"),
    ("SELECT * FROM ML.DETECT_ANOMALIES(MODEL ds.m, STRUCT('a' AS contamination))",
     r"contamination must be a FLOAT64 in \[0, 0.5\], got 'a'"),
    ("SELECT * FROM ML.PREDICT(MODEL ds.m, TABLE ds.t, STRUCT(0.5 AS threshold))",
     r"ML.PREDICT has no argument 'threshold'"),
    ("SELECT * FROM ML.PREDICT(MODEL ds.m, TABLE ds.t, STRUCT('2' AS trial_id))",
     r"trial_id must be an INT64"),
    ("CREATE VIEW ds.pv AS SELECT * FROM ML.PREDICT(MODEL ds.m, TABLE ds.t)",
     r"a view cannot hold an ML function.*CREATE TABLE"),
    ("CREATE MODEL ds.e OPTIONS(model_type='kmeans', warm_start=TRUE) AS SELECT x FROM ds.t",
     r"warm_start needs an existing model ds\.e"),
])
def test_errors_are_segmint_errors_that_say_what(con, statement, message):
    with pytest.raises(SegmintError, match=message) as caught:
        con.execute(statement)
    assert "segmint-error" not in str(caught.value)  # not a bug report (InternalError)
    assert "e" not in {m for _, m in con.catalog.names()}  # no half-made model


def test_a_refused_view_over_an_ml_function_leaves_no_view_behind(con):
    with pytest.raises(SegmintError, match="a view cannot hold an ML function"):
        con.execute("CREATE VIEW ds.scores AS "
                    "SELECT * FROM ML.PREDICT(MODEL ds.m, TABLE ds.t)")
    # the name is free: no broken view reading a table that was gone after the statement
    con.execute("CREATE VIEW ds.scores AS SELECT 1 AS one")
    assert con.execute("SELECT one FROM ds.scores").one.tolist() == [1]


def test_an_unexpected_exception_in_a_statement_comes_out_as_a_bug_report(con, monkeypatch):
    def broken(*args, **kwargs):
        raise KeyError("uris")

    monkeypatch.setattr(con, "_create_external", broken)
    with pytest.raises(InternalError, match=r"unexpected KeyError: 'uris' \(a bug in segmint"):
        con.execute("CREATE EXTERNAL TABLE ds.x OPTIONS(format='PARQUET', uris=['x.parquet'])")


def test_ml_functions_on_no_rows_give_no_rows(con):
    out = con.execute("SELECT * FROM ML.PREDICT(MODEL ds.m, (SELECT * FROM ds.t WHERE FALSE))")
    assert len(out) == 0 and list(out.columns[:2]) == ["CENTROID_ID", "NEAREST_CENTROIDS_DISTANCE"]
    flagged = con.execute("SELECT * FROM ML.DETECT_ANOMALIES(MODEL ds.m, STRUCT(0.1 AS "
                          "contamination), (SELECT * FROM ds.t WHERE FALSE))")
    assert len(flagged) == 0 and "is_anomaly" in flagged.columns
    measured = con.execute("SELECT * FROM ML.EVALUATE(MODEL ds.m, (SELECT * FROM ds.t WHERE FALSE))")
    assert measured.isna().all(axis=None)


# ---------------------------------------------------------------------- a segmint run's solution


def clients() -> pd.DataFrame:
    """Thirty clients in three evenly spaced groups: balance around 100, 900, 3000."""
    return pd.DataFrame({
        "client_ref": [f"R{i:02d}" for i in range(30)],
        "balance": np.r_[np.linspace(90, 110, 10), np.linspace(880, 920, 10),
                         np.linspace(2900, 3100, 10)],
        "visits": np.r_[np.linspace(1, 3, 10), np.linspace(7, 9, 10), np.linspace(19, 21, 10)]})


def test_a_segmint_run_solution_answers_predict_centroids_and_evaluate(con, folder):
    run = segmint.run(clients(), {
        "name": "clients", "recipe": {"kind": "attributes"},
        "sweep": {"scalings": ["standard"],
                  "algorithms": [{"name": "kmeans", "grid": {"n_clusters": [2, 3]}}]},
        "select": {"stability_resamples": 2}}, output=folder / "runs")
    clients().to_parquet(folder / "clients.parquet")
    con.register_export("crm.clients", folder / "clients.parquet")
    con.execute(f"CREATE MODEL ds.r OPTIONS(model_type='segmint', model_path='{run.path}', "
                f"solution='kmeans_k3')")
    assert con.models().set_index("model_name").loc["r", "model_type"] == "SEGMINT"

    out = con.execute("SELECT client_ref, CENTROID_ID FROM ML.PREDICT(MODEL ds.r, "
                      "TABLE crm.clients)")
    scored = run.predict(clients(), solution="kmeans_k3")
    assert dict(zip(out["client_ref"], out["CENTROID_ID"], strict=True)) \
        == {c: int(s) + 1 for c, s in zip(scored["customer"], scored["segment"], strict=True)}
    assert out.groupby("CENTROID_ID").size().tolist() == [10, 10, 10]

    cents = con.execute("SELECT centroid_id, feature, numerical_value FROM ML.CENTROIDS(MODEL ds.r)")
    by_group = cents.pivot(index="centroid_id", columns="feature", values="numerical_value")
    # the groups' means, by hand: the middle of each evenly spaced range
    assert sorted(map(tuple, by_group[["balance", "visits"]].to_numpy().round(9))) \
        == [(100.0, 2.0), (900.0, 8.0), (3000.0, 20.0)]
    # and each client's centroid is its group's
    first = dict(zip(out["client_ref"], out["CENTROID_ID"], strict=True))
    assert by_group.loc[first["R00"], "balance"] == pytest.approx(100.0)
    assert by_group.loc[first["R29"], "balance"] == pytest.approx(3000.0)

    [evaluated] = con.execute("SELECT * FROM ML.EVALUATE(MODEL ds.r)").to_dict("records")
    X = clients()[["balance", "visits"]].to_numpy()
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    labels = out.set_index("client_ref").loc[clients()["client_ref"], "CENTROID_ID"].to_numpy()
    assert evaluated["davies_bouldin_index"] == pytest.approx(davies_bouldin_score(X, labels))
    with pytest.raises(SegmintError, match="reports the run's own measures"):
        con.execute("SELECT * FROM ML.EVALUATE(MODEL ds.r, TABLE crm.clients)")

    # no rows in, no rows out; a value that is no number is an InputError naming it
    none = con.execute("SELECT * FROM ML.PREDICT(MODEL ds.r, "
                       "(SELECT * FROM crm.clients WHERE balance < 0))")
    assert len(none) == 0 and none.columns.tolist() == [
        "CENTROID_ID", "NEAREST_CENTROIDS_DISTANCE", "client_ref", "balance", "visits"]
    with pytest.raises(segmint.InputError, match=r"column 'balance', row 2: .*'n/a' is not a number"):
        con.execute("SELECT * FROM ML.PREDICT(MODEL ds.r, (SELECT client_ref, "
                    "IF(client_ref = 'R01', 'n/a', CAST(balance AS STRING)) AS balance, visits "
                    "FROM crm.clients ORDER BY client_ref))")


def test_information_schema_models_lists_the_catalog(tmp_path):
    with segmint.sql.connect(tmp_path / "a.duckdb") as con:
        con.execute("CREATE TABLE ds.pts AS SELECT x FROM UNNEST([0.0, 0.1, 5.0, 5.1]) AS x")
        for name, dataset in [("m1", "ds"), ("m2", "ds"), ("m3", "other")]:
            con.execute(f"CREATE MODEL {dataset}.{name} OPTIONS(model_type='kmeans', "
                        f"num_clusters=2) AS SELECT * FROM ds.pts")
        mine = con.execute("SELECT model_name, model_type FROM ds.INFORMATION_SCHEMA.MODELS "
                           "ORDER BY 1")
        everyone = con.execute("SELECT COUNT(*) AS n FROM INFORMATION_SCHEMA.MODELS")
    assert mine.to_dict("list") == {"model_name": ["m1", "m2"], "model_type": ["KMEANS", "KMEANS"]}
    assert everyone["n"].tolist() == [3]


def test_unnamed_result_columns_are_named_as_bigquery_does():
    with segmint.sql.connect() as con:
        out = con.execute("SELECT COUNT(*), x, MAX(x) AS top, 1 + 1 FROM UNNEST([1, 2, 2]) AS x "
                          "GROUP BY x ORDER BY x")
    assert list(out.columns) == ["f0_", "x", "top", "f1_"]
    assert out["f0_"].tolist() == [1, 2]


def test_external_table_over_one_csv_export(tmp_path):
    crm = pd.DataFrame({"client": ["a", "b", "c"], "income": [55000, 65000, 95000]})
    crm.to_csv(tmp_path / "crm.csv", index=False)
    with segmint.sql.connect(tmp_path / "a.duckdb", base=tmp_path) as con:
        con.execute("CREATE EXTERNAL TABLE crm.clients OPTIONS(format='CSV', uris=['crm.csv'])")
        out = con.execute("SELECT client, income FROM crm.clients ORDER BY client")
    assert out.to_dict("list") == crm.to_dict("list")


def test_a_tab_separated_crm_export_with_missing_values(tmp_path):
    crm = pd.DataFrame({"client": ["A1", "A2", "A3", "A4", "A5", "A6"],
                        "age": [34, None, 51, 29, 62, 45],
                        "plan": ["gold", "silver", None, "gold", "bronze", "silver"],
                        "spend": [120.5, 80, 300, None, 45, 150]})
    crm.to_csv(tmp_path / "crm.tsv", sep="\t", index=False)
    with segmint.sql.connect(base=tmp_path) as con:
        con.execute("CREATE EXTERNAL TABLE crm.clients OPTIONS(format='CSV', uris=['crm.tsv'])")
        con.execute("CREATE MODEL crm.m OPTIONS(model_type='kmeans', num_clusters=2) AS "
                    "SELECT * EXCEPT(client) FROM crm.clients")
        info = con.execute("SELECT * FROM ML.FEATURE_INFO(MODEL crm.m)").set_index("input")
        counts = con.execute("SELECT CENTROID_ID, COUNT(*) AS n FROM ML.PREDICT(MODEL crm.m, "
                             "TABLE crm.clients) GROUP BY 1")
    assert info.loc["age", "mean"] == pytest.approx(crm["age"].mean())
    assert info.loc["spend", "mean"] == pytest.approx(crm["spend"].mean())
    assert info["null_count"].tolist() == [1, 1, 1]
    assert info.loc["plan", "category_count"] == 3
    assert counts["n"].sum() == 6


def test_int64_with_null_keeps_every_digit(tmp_path):
    con = segmint.sql.connect(tmp_path / "ints.duckdb")
    big = 2**62 + 1  # not a float64: it would come back as 2**62
    got = con.execute(f"SELECT CAST({big} AS INT64) AS id, 1 AS one UNION ALL SELECT NULL, 2 "
                      f"ORDER BY one")
    assert got["id"].dtype == "Int64" and got["id"][0] == big and got["id"].isna().tolist() == [False, True]
    assert isinstance(got["one"].dtype, np.dtype) and got["one"].dtype.kind == "i"  # no NULL: NumPy
    farm = con.execute("SELECT FARM_FINGERPRINT(s) AS f FROM UNNEST(['a', CAST(NULL AS STRING)]) AS s")
    exact = con.execute("SELECT FARM_FINGERPRINT('a') AS f")["f"][0]
    assert farm["f"].dtype == "Int64" and exact in farm["f"].tolist()
