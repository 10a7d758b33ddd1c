"""The seed notebook (Google's BigQuery ML k-means on GA360 + CRM) as examples/bqml_ga360.sql,
run on the real GA360 day, every figure checked against a computation made here: the views
with pandas from the same parquet and Python's farmhash, ML.EVALUATE with scikit-learn's
Davies-Bouldin, centroids as means of their visitors, ML.PREDICT as the nearest centroid."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from farmhash import Fingerprint64
from sklearn.metrics import davies_bouldin_score

import segmint
import segmint.sql

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "bqml_ga360.sql"
GA360 = ROOT.parent / "shared" / "data" / "ga360_sessions_20170801.parquet"
CATEGORIES = {"Apparel": "Apparel", "Office": "Office", "Electronics": "Electronics",
              "Limited Supply": "LimitedSupply", "Accessories": "Accessories",
              "Shop by Brand": "ShopByBrand", "Bags": "Bags"}
NUMERIC = [*CATEGORIES.values(), "productPrice_USD", "hhi"]
STRINGS = ["OS", "gender"]
KS = range(3, 16)

pytestmark = pytest.mark.skipif(not GA360.is_file(),
                                reason=f"{GA360} is absent (../shared/data is not beside the checkout)")


def _signed(v: int) -> int:
    return int(np.uint64(v).astype(np.int64))


def ga360_view_in_pandas() -> pd.DataFrame:
    """GA360_View computed from the parquet in plain Python: US sessions' EVENT hits x their
    products, the category from v2ProductCategory, per visitor."""
    sessions = pq.read_table(GA360, columns=["fullVisitorId", "device", "geoNetwork", "hits"]).to_pylist()
    pattern = re.compile(r"^(?:(?:.*?)Home/)(.*?)/")
    rows = []
    for s in sessions:
        if s["geoNetwork"]["country"] != "United States":
            continue
        for hit in s["hits"] or []:
            if hit["type"] != "EVENT":
                continue
            for product in hit["product"] or []:
                found = pattern.search(product["v2ProductCategory"] or "")
                rows.append((s["fullVisitorId"], s["device"]["operatingSystem"],
                             found.group(1) if found else None, product["productPrice"]))
    lines = pd.DataFrame(rows, columns=["fullVisitorID", "os", "category", "price"])
    by = lines.groupby("fullVisitorID")
    view = pd.DataFrame({"OS": by["os"].max()})
    for category, column in CATEGORIES.items():
        view[column] = (lines["category"] == category).groupby(lines["fullVisitorID"]).sum()
    view["productPrice_USD"] = (lines["price"] / 1e6).groupby(lines["fullVisitorID"]).sum().round(2)
    view["Hashed_fullVisitorID"] = [abs(_signed(Fingerprint64(v))) for v in view.index]
    return view


def crm_in_python(visitor: str) -> tuple[str, int]:
    h = abs(_signed(Fingerprint64(visitor)))
    hhi = {0: 55000, 1: 65000, 2: 65000, 3: 75000, 4: 75000, 5: 75000, 6: 75000, 7: 85000,
           8: 85000, 9: 95000}[h % 10]
    return ("M" if h % 2 == 0 else "F"), hhi


@pytest.fixture(scope="module")
def seed(tmp_path_factory):
    """The example run once, in a database file, its paths taken from the example's folder."""
    folder = tmp_path_factory.mktemp("bqml")
    con = segmint.sql.connect(folder / "ga.duckdb", base=EXAMPLE.parent)
    results = con.run(EXAMPLE.read_text(encoding="utf-8"))
    yield con, results
    con.close()


def standardized(rows: pd.DataFrame, training: pd.DataFrame) -> np.ndarray:
    """BigQuery ML's automatic preprocessing, written out: numeric (x - mean) / sample std of
    the training rows (a constant column, LimitedSupply on this day, only centred); each STRING
    one-hot over its training categories in sorted order."""
    parts = []
    for c in NUMERIC:
        std = training[c].astype(float).std(ddof=1)
        parts.append(((rows[c].astype(float) - training[c].astype(float).mean())
                      / (std if std > 0 else 1.0)).to_numpy()[:, None])
    for c in STRINGS:
        levels = sorted(training[c].unique())
        parts.append(np.stack([(rows[c] == v).to_numpy(float) for v in levels], axis=1))
    return np.hstack(parts)


def centroid_matrix(centroids: pd.DataFrame, training: pd.DataFrame) -> np.ndarray:
    """ML.CENTROIDS(STRUCT(TRUE AS standardize)) as a matrix in the order of :func:`standardized`."""
    out = []
    for cid in sorted(centroids["centroid_id"].unique()):
        rows = centroids[centroids["centroid_id"] == cid].set_index("feature")
        vec = [rows.loc[c, "numerical_value"] for c in NUMERIC]
        for c in STRINGS:
            values = {d["category"]: d["value"] for d in rows.loc[c, "categorical_value"]}
            vec += [values.get(v, 0.0) for v in sorted(training[c].unique())]
        out.append(vec)
    return np.asarray(out, dtype=float)


def test_every_statement_of_the_notebook_ran(seed):
    con, results = seed
    kinds = [r.kind for r in results]
    # external table, 3 views, 1 test model + its drop, 13 models; 7 queries
    assert kinds.count("model") == 2 + len(KS)
    assert kinds.count("query") == 7
    assert [r.frame for r in results if r.kind == "query"][0].shape[0] == 5
    assert sorted(con.models()["model_name"]) == sorted(f"kmeans_clusters_{k}" for k in KS)


def test_views_equal_an_independent_computation(seed):
    con, _ = seed
    expected = ga360_view_in_pandas()
    got = con.execute("SELECT * FROM bqml_kmeans.GA360_View").set_index("fullVisitorID")
    assert len(got) == len(expected) == 280
    got = got.loc[expected.index]
    for column in CATEGORIES.values():
        assert got[column].astype(int).tolist() == expected[column].astype(int).tolist(), column
    np.testing.assert_allclose(got["productPrice_USD"], expected["productPrice_USD"], rtol=0, atol=1e-9)
    assert got["OS"].tolist() == expected["OS"].tolist()
    assert got["Hashed_fullVisitorID"].tolist() == expected["Hashed_fullVisitorID"].tolist()

    crm = con.execute("SELECT * FROM bqml_kmeans.CRM_View").set_index("fullVisitorID")
    assert len(crm) == 280
    for visitor, row in crm.iterrows():
        assert (row["gender"], int(row["hhi"])) == crm_in_python(str(visitor))

    final = con.execute("SELECT * FROM bqml_kmeans.Final_View")
    assert list(final.columns) == ["fullVisitorID", "Hashed_fullVisitorID", "OS",
                                   *CATEGORIES.values(), "productPrice_USD", "gender", "hhi"]
    assert final["fullVisitorID"].is_unique and len(final) == 280


def test_evaluate_equals_scikit_learns_davies_bouldin_and_the_mean_squared_distance(seed):
    con, results = seed
    final = con.execute("SELECT * FROM bqml_kmeans.Final_View")
    table = next(r.frame for r in results if r.frame is not None and "davies_bouldin_index" in r.frame)
    assert table["n_clusters"].tolist() == list(KS)
    X = standardized(final, final)
    for row in table.itertuples():
        model = f"bqml_kmeans.kmeans_clusters_{row.n_clusters}"
        predicted = con.execute(f"SELECT * FROM ML.PREDICT(MODEL {model}, "
                                f"(SELECT * FROM bqml_kmeans.Final_View))")
        predicted = predicted.set_index("fullVisitorID").loc[final["fullVisitorID"]]
        labels = predicted["CENTROID_ID"].to_numpy()
        # 1e-7: a one-visitor cluster's scatter is sqrt(rounding) ~ 1e-8 in scikit-learn's
        # euclidean distances (dot-product form), so last-digit differences of X show there
        assert davies_bouldin_score(X, labels) == pytest.approx(row.davies_bouldin_index, rel=1e-7)
        C = centroid_matrix(con.execute(f"SELECT * FROM ML.CENTROIDS(MODEL {model}, "
                                        f"STRUCT(TRUE AS standardize))"), final)
        msd = np.mean(((X - C[labels - 1]) ** 2).sum(axis=1))
        assert msd == pytest.approx(row.mean_squared_distance, rel=1e-9)


def test_centroids_are_the_means_of_their_visitors(seed):
    con, _ = seed
    model = con.model("bqml_kmeans.kmeans_clusters_5")
    training = model.run.customers()  # the training rows, as the run folder keeps them
    labels = model.solution.labels().set_index("customer").loc[training.index, "segment"].to_numpy()
    final = con.execute("SELECT * FROM bqml_kmeans.Final_View")
    X = standardized(training, final)
    standard = con.execute("SELECT * FROM ML.CENTROIDS(MODEL bqml_kmeans.kmeans_clusters_5, "
                           "STRUCT(TRUE AS standardize))")
    C = centroid_matrix(standard, final)
    means = np.stack([X[labels == j].mean(axis=0) for j in range(5)])
    np.testing.assert_allclose(C, means, rtol=0, atol=1e-9)

    units = con.execute("SELECT * FROM ML.CENTROIDS(MODEL bqml_kmeans.kmeans_clusters_5)")
    for row in units.itertuples():
        members = training[labels == row.centroid_id - 1]
        if row.feature in NUMERIC:
            assert row.numerical_value == pytest.approx(members[row.feature].astype(float).mean(),
                                                        rel=1e-9, abs=1e-9)
        else:
            shares = members[row.feature].value_counts(normalize=True)
            got = {d["category"]: d["value"] for d in row.categorical_value}
            assert got == pytest.approx({c: shares.get(c, 0.0) for c in got})


def test_predict_gives_the_nearest_centroid(seed):
    con, _ = seed
    final = con.execute("SELECT * FROM bqml_kmeans.Final_View")
    C = centroid_matrix(con.execute("SELECT * FROM ML.CENTROIDS(MODEL bqml_kmeans.kmeans_clusters_5, "
                                    "STRUCT(TRUE AS standardize))"), final)
    predicted = con.execute("SELECT * FROM ML.PREDICT(MODEL bqml_kmeans.kmeans_clusters_5, "
                            "(SELECT * FROM bqml_kmeans.Final_View))")
    assert list(predicted.columns[:2]) == ["CENTROID_ID", "NEAREST_CENTROIDS_DISTANCE"]
    assert list(predicted.columns[2:]) == list(final.columns)  # the input passes through
    rows = final.set_index("fullVisitorID").loc[predicted["fullVisitorID"]].reset_index()
    distances = np.sqrt(((standardized(rows, final)[:, None, :] - C[None]) ** 2).sum(axis=2))
    assert predicted["CENTROID_ID"].tolist() == (distances.argmin(axis=1) + 1).tolist()
    for i, nearest in enumerate(predicted["NEAREST_CENTROIDS_DISTANCE"]):
        assert len(nearest) == 5
        assert [d["CENTROID_ID"] for d in nearest] == (np.argsort(distances[i], kind="stable") + 1).tolist()
        assert [d["DISTANCE"] for d in nearest] == pytest.approx(np.sort(distances[i]), rel=1e-9)


def test_the_numerical_centroids_query_joins_predict_counts(seed):
    con, results = seed
    table = next(r.frame for r in results if r.frame is not None and "Total_Users" in r.frame)
    counts = con.execute("SELECT CENTROID_ID, COUNT(*) AS n FROM ML.PREDICT(MODEL "
                         "bqml_kmeans.kmeans_clusters_5, (SELECT * FROM bqml_kmeans.Final_View)) "
                         "GROUP BY 1").set_index("CENTROID_ID")["n"]
    assert table["centroid_id"].tolist() == [1, 2, 3, 4, 5]
    assert table.set_index("centroid_id")["Total_Users"].to_dict() == counts.to_dict()
    assert table["Total_Users"].sum() == 280
    units = con.execute("SELECT centroid_id, numerical_value FROM ML.CENTROIDS(MODEL "
                        "bqml_kmeans.kmeans_clusters_5) WHERE feature = 'Apparel' ORDER BY 1")
    np.testing.assert_allclose(table["Apparel"], units["numerical_value"].round(1), atol=1e-12)
    assert table["Total_Purchases"].isna().all()  # not a feature: the subquery finds no row
    last = results[-1].frame
    assert len(last) == 1 and "NEAREST_CENTROIDS_DISTANCE" not in last.columns
    assert 1 <= int(last["CENTROID_ID"].iloc[0]) <= 5


def test_a_model_made_in_sql_is_a_segmint_run(seed):
    con, _ = seed
    model = con.model("bqml_kmeans.kmeans_clusters_5")
    run = segmint.open_run(model.run.path)
    assert run.recommended == "kmeans_k5" and run.report_path.is_file()
    labels = run.solution().labels()["segment"].to_numpy()
    sizes = run.solution().profile().set_index("segment")["size"]
    assert sizes.to_dict() == {int(s): int((labels == s).sum()) for s in np.unique(labels)}
    # scoring the training rows through segmint gives ML.PREDICT's centroid (- 1)
    rows = run.customers().reset_index()
    scored = run.predict(rows)
    by_sql = con.execute("SELECT * FROM ML.PREDICT(MODEL bqml_kmeans.kmeans_clusters_5, "
                         "(SELECT * FROM bqml_kmeans.Final_View))")
    assert np.bincount(scored["segment"], minlength=5).tolist() == \
        np.bincount(by_sql["CENTROID_ID"] - 1, minlength=5).tolist()


def test_the_command_prints_each_result(tmp_path):
    done = subprocess.run([sys.executable, "-m", "segmint.cli", "sql", str(tmp_path / "ga.duckdb"),
                           "-f", str(EXAMPLE)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert out.count("Created model bqml_kmeans.kmeans_clusters_") == len(KS)
    assert "Dropped model bqml_kmeans.test" in out
    assert "davies_bouldin_index" in out and "Total_Users" in out and "categorical_value" in out
    assert "Traceback" not in done.stderr
    assert (tmp_path / "ga.duckdb.models" / "bqml_kmeans" / "kmeans_clusters_15" / "manifest.json").is_file()
