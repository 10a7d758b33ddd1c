"""Published models (segmint.deploy.models) and scoring in chunks (segmint.deploy.score)."""
from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import segmint
from segmint.cli import app
from segmint.deploy.models import ModelStore, PublishedModel
from segmint.deploy.score import score_file
from segmint.errors import InputError, ModelError, SpecError

BUNDLED = Path(str(resources.files("segmint") / "data" / "online_retail.parquet"))


def _retail_spec() -> dict:
    return {"name": "retail", "recipe": {"features": "insiders"},
            "sweep": {"scalings": ["log"], "algorithms": [
                {"name": "kmeans", "grid": {"n_clusters": [4]}},
                {"name": "dbscan", "grid": {"eps": [0.5], "min_samples": [20]}}]},
            "select": {"stability_resamples": 2, "stability_top": 1},
            "profile": {"projections": [], "explain": False}}


def _crm(n: int = 400, seed: int = 0) -> pd.DataFrame:
    """A CRM export unlike Online Retail: headers with spaces, mixed types, missing values."""
    rng = np.random.default_rng(seed)
    group = rng.integers(0, 3, n)
    frame = pd.DataFrame({
        "Client Ref": [f"C{i:05d}" for i in range(n)],
        "Annual Spend": np.round(rng.lognormal(5 + group, 0.3), 2),
        "Store Visits": rng.poisson(2 + 4 * group).astype(float),
        "Region": np.array(["north", "south", "east"])[group],
    })
    frame.loc[rng.choice(n, 20, replace=False), "Annual Spend"] = np.nan
    frame.loc[rng.choice(n, 20, replace=False), "Region"] = None
    return frame


@pytest.fixture(scope="module")
def retail_run(tmp_path_factory):
    return segmint.run(BUNDLED, _retail_spec(), output=tmp_path_factory.mktemp("runs"))


@pytest.fixture(scope="module")
def crm_run(tmp_path_factory):
    spec = {"name": "crm", "recipe": {"kind": "attributes", "id_column": "Client Ref"},
            "prepare": {"outliers": {"method": "none"}},
            "sweep": {"scalings": ["standard"],
                      "algorithms": [{"name": "kmeans", "grid": {"n_clusters": [3]}}]},
            "select": {"stability_resamples": 2, "stability_top": 1},
            "profile": {"projections": [], "explain": False}}
    return segmint.run(_crm(), spec, output=tmp_path_factory.mktemp("runs"))


@pytest.fixture(scope="module")
def store(retail_run, crm_run, tmp_path_factory):
    store = ModelStore(tmp_path_factory.mktemp("models"))
    store.publish(retail_run)
    store.publish(crm_run)
    return store


def test_publish_records_the_solution_features_and_segments(store, retail_run):
    model = store.get("retail")
    assert (model.name, model.version) == ("retail", 1)
    info = model.info
    assert info["solution"]["name"] == retail_run.recommended
    assert model.features == retail_run.solution().metrics["features"]
    assert all(f["type"] == "numeric" and f["fill"].startswith("missing: the fitted median")
               for f in info["features"])
    # the segments' sizes, counted again from the run's labels
    labels = retail_run.solution().labels()
    counts = labels["segment"].value_counts()
    assert {s["segment"]: s["size"] for s in info["segments"]} == \
        {int(k): int(v) for k, v in counts.items()}
    assert sum(s["share"] for s in info["segments"]) == pytest.approx(1.0)
    names = dict(zip(retail_run.solution().profile()["segment"],
                     retail_run.solution().profile()["name"], strict=True))
    assert all(s["name"] == names[s["segment"]] for s in info["segments"] if s["segment"] >= 0)
    assert info["input"]["sha256"] == retail_run.manifest["input"]["sha256"]
    assert info["outliers"]["threshold"] == retail_run.manifest["outliers"]["threshold"]
    listed = store.list()
    assert sorted(listed["name"]) == ["crm", "retail"] and listed["error"].isna().all()


def test_a_second_publish_is_the_next_version_and_get_finds_the_newest(retail_run, tmp_path):
    store = ModelStore(tmp_path)
    first = store.publish(retail_run, name="insiders")
    second = store.publish(retail_run, solution="dbscan", name="insiders")
    assert (first.version, second.version) == (1, 2)
    assert store.get("insiders").info["solution"]["name"] == "dbscan"
    assert store.get("insiders", 1).info["solution"]["name"] == retail_run.recommended
    with pytest.raises(ModelError, match=r"no version 3; it has \[1, 2\]"):
        store.get("insiders", 3)
    with pytest.raises(ModelError, match="no published model 'other'"):
        store.get("other")
    with pytest.raises(SpecError, match="not a model name"):
        store.publish(retail_run, name="../escape")


def test_the_published_model_scores_the_run_customers_into_their_labels(store, retail_run):
    model = store.get("retail")
    customers = retail_run.customers()
    scored = model.score(customers.reset_index())
    labels = retail_run.solution().labels().set_index("customer")["segment"]
    assert (scored.set_index("customer")["segment"] == labels.loc[scored["customer"]].to_numpy()).all()
    # the same as the run's own predict: one scoring path
    pd.testing.assert_frame_equal(scored, retail_run.predict(customers.reset_index()))
    # distance to its own centroid is the smallest of the nearest-centroids list
    first = scored[scored["segment"] >= 0].iloc[0]
    assert first["distance"] == pytest.approx(first["nearest_centroids_distance"][0]["distance"])


def test_a_flipped_byte_in_a_model_file_is_refused_with_the_file_named(store, tmp_path):
    import shutil

    for name in ("model.skops", "centers.parquet", "profile.parquet"):
        copy = tmp_path / name / "v1"
        shutil.copytree(store.get("retail").path, copy)
        data = bytearray((copy / name).read_bytes())
        data[len(data) // 2] ^= 0x01
        (copy / name).write_bytes(bytes(data))
        with pytest.raises(ModelError) as caught:
            PublishedModel(copy).score(pd.DataFrame({"customer": ["1"]}))
        message = str(caught.value)
        assert name in message and ("changed since" in message or "damaged" in message), message


def test_bad_values_name_the_row_and_the_column(store, retail_run):
    model = store.get("retail")
    rows = retail_run.customers().reset_index().head(5).copy()
    rows["gross_revenue"] = rows["gross_revenue"].astype(object)
    rows.loc[3, "gross_revenue"] = "12,5 EUR"
    with pytest.raises(InputError) as caught:
        model.score(rows)
    assert (caught.value.row, caught.value.column) == (4, "gross_revenue")
    with pytest.raises(InputError, match="lack the feature 'returns'"):
        model.score(rows.drop(columns="returns"))


def test_missing_values_follow_the_stated_fill_rule(store, crm_run):
    model = store.get("crm")
    rules = {f["name"]: f["fill"] for f in model.info["features"]}
    assert rules["Annual Spend"].startswith("missing: the fitted median")
    assert "unseen category" in rules["Region"]
    rows = _crm(30, seed=7)
    rows["Annual Spend"] = rows["Annual Spend"].fillna(100.0)
    with_gap = rows.copy()
    with_gap.loc[[2, 5], "Annual Spend"] = np.nan
    # the median of the customers the model was fitted on, computed again
    median = float(crm_run.customers()["Annual Spend"].median())
    stated = float(re.search(r"median, ([0-9.e+-]+)", rules["Annual Spend"]).group(1))
    assert stated == pytest.approx(median, rel=1e-5)
    filled = rows.copy()
    filled.loc[[2, 5], "Annual Spend"] = median
    # the stated rule, applied by hand: the median in place, and the indicator column at 1
    assert rules["Annual Spend"].endswith("missing-value indicator set to 1")
    prepare = model.scorer.model.named_steps["prepare"]
    columns = list(prepare.get_feature_names_out())
    flag = next(i for i, c in enumerate(columns) if "missing" in c and "Annual Spend" in c)
    scorer = model.scorer
    got = prepare.transform(scorer.model_input(scorer.customer_rows(with_gap)))
    expected = prepare.transform(scorer.model_input(scorer.customer_rows(filled)))
    expected[[2, 5], flag] = 1.0
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    a, b = model.score(with_gap), model.score(filled)
    keep = ~np.isin(np.arange(len(rows)), [2, 5])
    np.testing.assert_allclose(a["distance"][keep], b["distance"][keep], rtol=1e-12)
    # an unseen category scores (no level), and numbers given for a category are read as text
    odd = rows.copy()
    odd.loc[0, "Region"] = "atlantis"
    assert len(model.score(odd)) == len(rows)


def test_score_file_streams_in_chunks_and_equals_scoring_at_once(store, crm_run, tmp_path):
    model = store.get("crm")
    table = _crm(1000, seed=3)
    table.to_parquet(tmp_path / "in.parquet", index=False)
    table.to_csv(tmp_path / "in.tsv", sep="\t", index=False)
    whole = model.score(table).set_index("customer")
    for source, out in [(tmp_path / "in.parquet", tmp_path / "s.parquet"),
                        (tmp_path / "in.tsv", tmp_path / "s.csv")]:
        result = score_file(model, source, out, chunk_rows=128)
        assert result.customers == 1000
        got = pd.read_parquet(out) if out.suffix == ".parquet" else \
            pd.read_csv(out, dtype={"customer": str})
        got = got.set_index("customer").loc[whole.index]
        assert (got["segment"].to_numpy() == whole["segment"].to_numpy()).all()
        np.testing.assert_allclose(got["distance"], whole["distance"], rtol=1e-9)
        first = got["nearest_centroids_distance"].iloc[0]
        first = json.loads(first) if isinstance(first, str) else list(first)
        assert [d["centroid_id"] for d in first] == \
            [d["centroid_id"] for d in whole["nearest_centroids_distance"].iloc[0]]
        assert result.sizes == {int(k): int(v) for k, v in
                                whole["segment"].value_counts().sort_index().items()}


def test_a_bad_chunk_names_the_file_row_and_keeps_the_old_output(store, tmp_path):
    model = store.get("crm")
    table = _crm(600, seed=4)
    table["Store Visits"] = table["Store Visits"].astype(object)
    table.loc[450, "Store Visits"] = "many"
    table.to_csv(tmp_path / "in.csv", index=False)
    out = tmp_path / "scores.parquet"
    out.write_bytes(b"the old scores")
    with pytest.raises(InputError) as caught:
        score_file(model, tmp_path / "in.csv", out, chunk_rows=100)
    assert caught.value.column == "Store Visits" and caught.value.row == 451
    assert "in.csv" in str(caught.value)
    assert out.read_bytes() == b"the old scores"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_a_customer_twice_across_chunks_is_refused(store, tmp_path):
    table = _crm(300, seed=5)
    table.loc[250, "Client Ref"] = table.loc[10, "Client Ref"]
    table.to_parquet(tmp_path / "in.parquet", index=False)
    with pytest.raises(InputError, match="appears twice") as caught:
        score_file(store.get("crm"), tmp_path / "in.parquet", tmp_path / "o.parquet",
                   chunk_rows=100)
    assert caught.value.row == 251


def test_the_cli_publishes_lists_shows_and_scores(retail_run, tmp_path):
    runner = CliRunner()
    models = str(tmp_path / "models")
    result = runner.invoke(app, ["models", "publish", str(retail_run.path), "--models", models])
    assert result.exit_code == 0, result.output
    assert "published retail v1" in result.output
    result = runner.invoke(app, ["models", "list", "--models", models])
    assert result.exit_code == 0 and "retail" in result.output
    result = runner.invoke(app, ["models", "show", "retail", "--models", models])
    assert result.exit_code == 0 and "gross_revenue: numeric; missing: the fitted median" in \
        result.output
    out = tmp_path / "scores.parquet"
    result = runner.invoke(app, ["score", "retail", str(BUNDLED), "-o", str(out), "--models", models])
    assert result.exit_code == 0, result.output
    scored = pd.read_parquet(out)
    labels = retail_run.solution().labels()
    assert len(scored) == len(labels)
    # to a database table: the same scores, stamped with the model's version
    database = tmp_path / "crm.db"
    result = runner.invoke(app, ["score", "retail", str(out.with_name("customers.csv")), "--to",
                                 f"sqlite:///{database}", "--table", "segments", "--models", models])
    assert result.exit_code == 1 and "customers.csv" in result.output  # no such file yet
    retail_run.customers().reset_index().to_csv(out.with_name("customers.csv"), index=False)
    result = runner.invoke(app, ["score", "retail", str(out.with_name("customers.csv")), "--to",
                                 f"sqlite:///{database}", "--table", "segments", "--models", models])
    assert result.exit_code == 0, result.output
    import sqlite3

    with sqlite3.connect(database) as con:
        table = pd.read_sql("SELECT customer, segment, model_version FROM segments", con)
    expected = labels.assign(customer=labels["customer"].astype(str)).set_index("customer")
    assert (table.set_index("customer")["segment"] == expected.loc[table["customer"], "segment"]
            .to_numpy()).all()
    assert set(table["model_version"]) == {"retail v1"}
    result = runner.invoke(app, ["models", "show", "nothing", "--models", models])
    assert result.exit_code == 1 and "no published model 'nothing'" in result.output


def test_a_transactions_model_scores_a_whitespace_separated_customer_table(store, retail_run,
                                                                           tmp_path):
    """A customer table in a shape unlike the fit's input: whitespace-separated, ids with
    leading zeros, the features in another order; scored through the model's own reader."""
    model = store.get("retail")
    rows = retail_run.customers().reset_index().head(40)
    lines = ["frequency   returns  gross_revenue  recency_days  quantity_of_products  customer"]
    for i, r in enumerate(rows.itertuples(index=False)):
        lines.append(f"{r.frequency!r}   {r.returns!r}  {r.gross_revenue!r}  {r.recency_days!r}  "
                     f"{r.quantity_of_products!r}  {i:05d}")
    (tmp_path / "customers.txt").write_text("\n".join(lines) + "\n")
    scored = model.score(tmp_path / "customers.txt")
    assert scored["customer"].tolist() == [f"{i:05d}" for i in range(40)]
    expected = model.score(rows)
    assert (scored["segment"].to_numpy() == expected["segment"].to_numpy()).all()
    np.testing.assert_allclose(scored["distance"], expected["distance"], rtol=1e-12)
    result = score_file(model, tmp_path / "customers.txt", tmp_path / "s.parquet")
    assert result.customers == 40
