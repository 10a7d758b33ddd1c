"""The Spark engine gives the local engine's answers on the bundled Online Retail (issue 16).

One SparkSession in local[2] mode for the module (Java 17 and pyspark: the test extra and
.ci/run install both). The local engine's tables come from segmint's own reader and DuckDB
recipe; the clustering reference is scikit-learn on the Spark engine's own scaled matrix,
collected for the check (5,695 customers).
"""
from __future__ import annotations

import shutil
from importlib import resources

import numpy as np
import pandas as pd
import pytest
import yaml

pytest.importorskip("pyspark", reason="pyspark is not installed (pip install segmint[spark])")
if shutil.which("java") is None:
    pytest.skip("no java on PATH: the Spark engine needs Java 17 (.ci/run installs "
                "openjdk-17-jre-headless)", allow_module_level=True)

from sklearn.cluster import KMeans  # noqa: E402
from sklearn.metrics import (  # noqa: E402
    adjusted_rand_score,
    calinski_harabasz_score,
    davies_bouldin_score,
    silhouette_score,
)

from segmint.engines import spark as engine  # noqa: E402
from segmint.errors import InputError  # noqa: E402
from segmint.io import read_source  # noqa: E402
from segmint.prepare.scaling import make_scaler  # noqa: E402
from segmint.recipes.transactions import customer_table, required_roles  # noqa: E402
from segmint.spec import EngineSpec, SourceSpec, load_spec  # noqa: E402

DATA = resources.files("segmint") / "data"
SOURCE = SourceSpec(path=str(DATA / "online_retail.parquet"))
# the demo's cleaning: imputed customers, service codes, tiny prices, one customer and two
# countries dropped
CLEANING = load_spec(yaml.safe_load((DATA / "demo.yaml").read_text(encoding="utf-8"))).recipe.cleaning

#: per feature set, the columns that are sums, means or ratios (compared to 1e-9 relative:
#: Spark adds in another order; a sum whose returns cancel its purchases is 0 to rounding, so
#: 1e-12 absolute too); every other column is a count or a day count, compared exactly
NOT_COUNTS = {"insiders": {"gross_revenue", "frequency"}, "rfm": {"monetary"},
              "intel21": {"Amount", "revenue"}}


@pytest.fixture(scope="module")
def spark():
    session = engine.spark_session(EngineSpec(kind="spark", master="local[2]"),
                                   app_name="segmint-tests")
    yield session
    session.stop()


@pytest.fixture(scope="module")
def lines():
    roles = set()
    for features in NOT_COUNTS:
        required, optional = required_roles(features, CLEANING)
        roles |= {*required, *optional}
    return read_source(SOURCE, optional=sorted(roles))


@pytest.fixture(scope="module")
def insiders(spark):
    """The insiders features in Spark, not collected (its lines cached until the module ends)."""
    found = engine.customer_frame(spark, SOURCE, "insiders", CLEANING)
    yield found
    found.release()


@pytest.mark.parametrize("features", ["insiders", "rfm", "intel21"])
def test_feature_sets_equal_the_local_engine(spark, lines, insiders, features):
    local = customer_table(lines, features, CLEANING)
    remote = engine.collect_customers(insiders) if features == "insiders" else \
        engine.customer_table(spark, SOURCE, features, CLEANING)

    assert remote.frame.index.tolist() == local.frame.index.tolist()  # the same customers
    assert list(remote.frame.columns) == list(local.frame.columns)
    assert remote.features == local.features and remote.revenue == local.revenue
    assert remote.lines == len(lines)
    assert remote.notes == local.notes  # line total and cleaning counts, in the same words
    for column in local.frame.columns:
        mine, theirs = remote.frame[column].to_numpy(), local.frame[column].to_numpy()
        if column in NOT_COUNTS[features]:
            np.testing.assert_allclose(mine, theirs, rtol=1e-9, atol=1e-12, err_msg=column)
        else:
            np.testing.assert_array_equal(mine, theirs, err_msg=column)


@pytest.fixture(scope="module")
def insiders_scaled(lines, insiders):
    """The Spark engine's log-scaled insiders features (not collected), the local table."""
    scaled = engine.scaled_features(insiders.frame, insiders.features, "log").cache()
    yield scaled, insiders.features, customer_table(lines, "insiders", CLEANING)
    scaled.unpersist()


def test_scaling_in_spark_equals_segmints_scaler(insiders_scaled):
    scaled, features, local = insiders_scaled
    collected = scaled.select("customer", *features).toPandas().set_index("customer").sort_index()
    expected = make_scaler("log").fit_transform(local.frame[local.features].to_numpy())
    assert collected.index.tolist() == local.frame.index.tolist()
    np.testing.assert_allclose(collected.to_numpy(), expected, rtol=1e-9, atol=1e-12)


def test_kmeans_agrees_with_scikit_learn_and_its_metrics_with_the_collected_rows(insiders_scaled):
    scaled, features, _ = insiders_scaled
    (solution,) = engine.kmeans_solutions(scaled, features, [4], seed=0, n_init=4)
    # collected only to check: each customer's scaled features and Spark's segment
    rows = (scaled.select("customer", *features).join(solution.predictions, "customer")
            .toPandas().set_index("customer").sort_index())
    X, labels = rows[features].to_numpy(), rows["prediction"].to_numpy()

    assert solution.k == 4 and sorted(np.unique(labels).tolist()) == [0, 1, 2, 3]
    np.testing.assert_array_equal(np.sort(solution.sizes), np.sort(np.bincount(labels)))
    reference = KMeans(n_clusters=4, n_init=10, random_state=0).fit(X)
    assert adjusted_rand_score(labels, reference.labels_) >= 0.9
    # MLlib's silhouette over every customer is the squared-Euclidean one; Davies-Bouldin and
    # Calinski-Harabasz come from Spark aggregates; the Euclidean silhouette the leaderboard
    # shows is measured on every customer up to 20,000 (here all 5,695)
    assert solution.silhouette_squared == pytest.approx(
        silhouette_score(X, labels, metric="sqeuclidean"), rel=1e-6)
    assert solution.davies_bouldin == pytest.approx(davies_bouldin_score(X, labels), rel=1e-6)
    assert solution.calinski_harabasz == pytest.approx(calinski_harabasz_score(X, labels),
                                                       rel=1e-6)
    assert solution.silhouette_sample == len(X)
    assert solution.silhouette == pytest.approx(silhouette_score(X, labels), rel=1e-6)
    inertia = sum(((X[labels == j] - X[labels == j].mean(axis=0)) ** 2).sum() for j in range(4))
    assert solution.inertia == pytest.approx(inertia, rel=1e-3)  # centres within MLlib's tol


def test_a_missing_role_is_named_before_spark_reads_a_row(spark, tmp_path):
    path = tmp_path / "no_customer.parquet"
    pd.DataFrame({"InvoiceNo": ["1"], "InvoiceDate": pd.to_datetime(["2011-01-01"]),
                  "Quantity": [1], "UnitPrice": [2.0]}).to_parquet(path)
    with pytest.raises(InputError, match="role 'customer'"):
        engine.customer_table(spark, SourceSpec(path=str(path)), "rfm")


def test_a_csv_reads_as_the_local_reader_reads_it(spark, tmp_path):
    # a CSV as exports write it: month-first dates, float ids ("17850.0"), a mapped header, a
    # line without a price and one dated in the future (both dropped as invalid)
    rows = pd.read_parquet(SOURCE.path).head(2000)
    rows["InvoiceDate"] = rows["InvoiceDate"].map(lambda t: f"{t.month}/{t.day}/{t.year} "
                                                            f"{t.hour}:{t.minute:02d}")
    rows = rows.rename(columns={"UnitPrice": "Unit Cost"})
    rows.loc[5, "Unit Cost"] = None
    rows.loc[9, "InvoiceDate"] = "1/1/2999 10:00"
    path = tmp_path / "retail.csv"
    rows.to_csv(path, index=False)
    source = SourceSpec(path=str(path), columns={"price": "Unit Cost"})
    assert rows["CustomerID"].astype(str).str.endswith(".0").any()

    required, optional = required_roles("rfm")  # reading is under test: no cleaning
    local = customer_table(read_source(source, required=required, optional=optional), "rfm")
    remote = engine.customer_table(spark, source, "rfm")

    assert remote.lines == local.lines == len(rows) - 2
    assert remote.source["dropped"] == {"invalid": 2}
    assert remote.frame.index.tolist() == local.frame.index.tolist()
    np.testing.assert_array_equal(remote.frame[["recency_days", "frequency"]].to_numpy(),
                                  local.frame[["recency_days", "frequency"]].to_numpy())
    np.testing.assert_allclose(remote.frame["monetary"], local.frame["monetary"], rtol=1e-9,
                               atol=1e-12)
