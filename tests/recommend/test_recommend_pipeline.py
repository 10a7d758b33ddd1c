"""`segmint recommend`: the seed's pipeline from one spec on three shapes of data (Amazon
reviews TSV, MovieLens u.data, Online Retail purchases), checked against computations here."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

import segmint
from segmint.cli import app
from segmint.errors import SpecError
from segmint.recommend.interactions import read_ratings
from segmint.recommend.pipeline import RecommendRun, recommend

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
MOVIELENS = ROOT.parent / "shared" / "data" / "movielens-100k" / "u.data"


def seen_pairs(frame: pd.DataFrame, users: pd.Index, items: pd.Index) -> set[tuple[str, str]]:
    return set(zip(users.to_numpy()[frame["user"]], items.to_numpy()[frame["item"]], strict=True))


def test_amazon_reviews_spec_runs_with_the_seeds_comparisons(tmp_path):
    run = recommend(EXAMPLES / "amazon_reviews_fm.yaml", output=tmp_path)
    mean = run.metrics().query("split == 'mean'").set_index("model")
    # the baselines stand beside the spec's models
    assert set(mean.index) == {"fm_regression", "fm_classifier", "global_mean", "popularity"}
    # the naive guess is the training mean: its MSE is the mean squared deviation, computed here
    inter = read_ratings(ROOT / "tests" / "fixtures" / "amazon_reviews_sample.tsv", format="amazon")
    frame = inter.frame.assign(order=np.arange(len(inter.frame)))
    last = frame.sort_values(["timestamp", "order"]).groupby("user").tail(1)
    users_with_more = frame["user"].value_counts()
    test = last[last["user"].map(users_with_more) > 1]
    train = frame.drop(test.index)
    naive = ((test["rating"] - train["rating"].mean()) ** 2).mean()
    assert mean.loc["global_mean", "mse"] == pytest.approx(naive)
    assert mean.loc["fm_regression", "naive_mse"] == pytest.approx(naive)
    # all ones: the share of 5-star ratings among the held-out ones
    assert mean.loc["fm_classifier", "all_ones_accuracy"] == pytest.approx((test["rating"] >= 5).mean())
    recs = run.recommendations()
    assert not set(zip(recs["customer"], recs["item"], strict=True)) & seen_pairs(inter.frame, inter.users,
                                                                                  inter.items)
    assert recs["title"].notna().all() and recs.groupby("customer")["rank"].min().eq(1).all()
    assert (run.path / "report.html").read_text(encoding="utf-8").count("<table") >= 2


def test_online_retail_purchases_as_implicit_feedback(tmp_path):
    spec = yaml.safe_load((EXAMPLES / "online_retail_recommend.yaml").read_text(encoding="utf-8"))
    spec["source"]["path"] = str(ROOT / "src" / "segmint" / "data" / "online_retail.parquet")
    spec["recommend"]["params"]["als"] = {"factors": 16, "iterations": 3}
    run = recommend(spec, output=tmp_path)
    mean = run.metrics().query("split == 'mean'").set_index("model")
    assert list(mean.index) == ["ease", "als", "popularity"]
    assert mean["ndcg_at_k"].notna().all()
    assert "rmse" not in mean or mean["rmse"].isna().all()  # purchases have no rating to predict
    assert mean.loc["ease", "ndcg_at_k"] > mean.loc["popularity", "ndcg_at_k"]
    lines = pd.read_parquet(ROOT / "src" / "segmint" / "data" / "online_retail.parquet")
    bought = lines[lines["CustomerID"].notna() & (lines["Quantity"] > 0)
                   & ~lines["InvoiceNo"].astype(str).str.startswith("C")
                   & ~lines["StockCode"].astype(str).str.fullmatch("[A-Za-z]+")]  # the spec's cleaning
    customers = bought["CustomerID"].astype("int64").astype(str)
    recs = run.recommendations()
    assert not recs["item"].isin(["POST", "DOT", "M", "D", "CRUK"]).any()
    assert recs["customer"].nunique() == customers.nunique()
    pairs = set(zip(customers, bought["StockCode"].astype(str), strict=True))
    assert not set(zip(recs["customer"], recs["item"], strict=True)) & pairs  # never bought before
    assert recs.groupby("customer").size().max() == 20


def test_per_segment_top_items_from_a_segmentation_run(tmp_path):
    lines = pd.read_parquet(ROOT / "src" / "segmint" / "data" / "online_retail.parquet")
    seg_run = segmint.run({"name": "seg", "source": {"path": str(ROOT / "src" / "segmint" / "data"
                                                                  / "online_retail.parquet")},
                           "recipe": {"features": "rfm"},
                           "sweep": {"algorithms": [{"name": "kmeans", "grid": {"n_clusters": [3]}}],
                                     "scalings": ["log"]},
                           "select": {"stability_resamples": 2, "stability_top": 1},
                           "profile": {"projections": [], "explain": False}},
                          output=tmp_path / "seg")
    spec = {"name": "recs", "source": {"path": str(ROOT / "src" / "segmint" / "data"
                                                   / "online_retail.parquet")},
            "recommend": {"interactions": {"format": "transactions", "scale": None},
                          "split": {"kind": "last_per_user"}, "models": ["popularity"],
                          "top_n": 5, "segments": str(seg_run.path)}}
    run = recommend(spec, lines, output=tmp_path / "recs")
    said = run.manifest["segments"]
    assert said["customers_with_a_segment"] == seg_run.solution().labels()["customer"].nunique()
    table = run.segment_top_items()
    labels = seg_run.solution().labels().set_index("customer")["segment"]
    names = seg_run.solution().profile().set_index("segment")["name"]
    assert set(table["segment"]) <= set(names)
    # the top bought item of the first segment, counted here
    first = names.iloc[0]
    members = set(labels[labels == names.index[0]].index.astype(str))
    bought = lines[lines["CustomerID"].notna() & (lines["Quantity"] > 0)
                   & ~lines["InvoiceNo"].astype(str).str.startswith("C")]
    bought = bought.assign(customer=bought["CustomerID"].astype("int64").astype(str))
    mine = bought[bought["customer"].isin(members)].drop_duplicates(["customer", "StockCode"])
    counts = mine.groupby("StockCode").size().sort_values(ascending=False)
    top = table[(table["segment"] == first) & (table["source"] == "bought")].iloc[0]
    assert top["customers"] == counts.iloc[0]
    assert top["share"] == pytest.approx(counts.iloc[0] / len(members))


@pytest.mark.skipif(not MOVIELENS.is_file(), reason=f"{MOVIELENS} is absent (../shared/data)")
def test_the_seeds_pipeline_on_movielens_from_one_spec(tmp_path):
    spec = yaml.safe_load((EXAMPLES / "movielens_fm.yaml").read_text(encoding="utf-8"))
    spec["source"]["path"] = str(MOVIELENS)
    for name in ("fm_regression", "fm_classifier"):
        spec["recommend"]["params"][name] = {"rank": 8, "n_iter": 40}
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec), encoding="utf-8")
    result = CliRunner().invoke(app, ["recommend", str(path), "-o", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "against the naive guess" in result.output and "against predicting all" in result.output
    run = RecommendRun(next((tmp_path / "out").iterdir()))
    mean = run.metrics().query("split == 'mean'").set_index("model")
    assert mean.loc["fm_regression", "mse"] < mean.loc["fm_regression", "naive_mse"]
    assert mean.loc["fm_classifier", "accuracy"] > mean.loc["fm_classifier", "all_ones_accuracy"]
    recs = run.recommendations()
    assert recs["customer"].nunique() == 943 and recs.groupby("customer").size().eq(100).all()
    ratings = pd.read_csv(MOVIELENS, sep="\t", names=["user", "item", "rating", "ts"], dtype=str)
    assert not set(zip(recs["customer"], recs["item"], strict=True)) & set(
        zip(ratings["user"], ratings["item"], strict=True))


def test_spec_mistakes_are_clear(tmp_path):
    reviews = ROOT / "tests" / "fixtures" / "amazon_reviews_sample.tsv"
    base = {"name": "x", "source": {"path": str(reviews)},
            "recommend": {"interactions": {"format": "amazon"}, "models": ["nope"]}}
    with pytest.raises(SpecError, match="unknown model 'nope'"):
        recommend(base, output=tmp_path)
    retail = ROOT / "src" / "segmint" / "data" / "online_retail.parquet"
    implicit = {"name": "y", "source": {"path": str(retail)},
                "recommend": {"interactions": {"format": "transactions", "scale": None},
                              "models": ["fm_regression"]}}
    with pytest.raises(SpecError, match="needs ratings"):
        recommend(implicit, output=tmp_path)
    ratings = {**base, "recommend": {"interactions": {"format": "amazon"},
                                     "models": ["fm_regression"], "segment_feature": True}}
    with pytest.raises(SpecError, match="segment_feature needs recommend.segments"):
        recommend(ratings, output=tmp_path)
    assert not any(tmp_path.iterdir())  # nothing written


def test_transactions_with_other_headers_are_read_by_their_roles(tmp_path):
    """Online Retail II's headers (Invoice, Price, Customer ID) in a CSV: the roles are found by
    the names segmint knows; the top-N equals popularity computed here."""
    lines = pd.read_parquet(ROOT / "src" / "segmint" / "data" / "online_retail.parquet").head(20_000)
    lines = lines.rename(columns={"InvoiceNo": "Invoice", "UnitPrice": "Price",
                                  "CustomerID": "Customer ID"})
    path = tmp_path / "online_retail_ii.csv"
    lines.to_csv(path, index=False)
    spec = {"name": "ii", "source": {"path": str(path)},
            "recommend": {"interactions": {"format": "transactions", "scale": None},
                          "split": {"kind": "time", "ratio": 0.8}, "models": ["popularity"],
                          "top_n": 3}}
    run = recommend(spec, output=tmp_path / "out")
    bought = lines[lines["Customer ID"].notna() & (lines["Quantity"] > 0)
                   & ~lines["Invoice"].astype(str).str.startswith("C")]
    bought = bought.assign(customer=bought["Customer ID"].astype("int64").astype(str),
                           item=bought["StockCode"].astype(str))
    customers_per_item = bought.drop_duplicates(["customer", "item"]).groupby("item").size()
    recs = run.recommendations()
    assert recs["customer"].nunique() == bought["customer"].nunique()
    # a customer's first recommendation is the most bought item it has not bought
    first = recs[recs["rank"] == 1].set_index("customer")["item"]
    for customer in list(first.index[:25]):
        unseen = customers_per_item.drop(bought.loc[bought["customer"] == customer, "item"].unique())
        best = unseen[unseen == unseen.max()].index.min()  # ties by item id
        assert first[customer] == best
    assert run.manifest["split"] == "time"


def test_item_side_features_reach_the_factorization_machine(tmp_path):
    reviews = ROOT / "tests" / "fixtures" / "amazon_reviews_sample.tsv"
    items = read_ratings(reviews, format="amazon").items
    categories = pd.DataFrame({"product_id": items, "category": ["drama", "comedy"] * (len(items) // 2)
                               + ["drama"] * (len(items) % 2)})
    categories.to_csv(tmp_path / "items.csv", index=False)
    spec = {"name": "side", "source": {"path": str(reviews)},
            "recommend": {"interactions": {"format": "amazon"}, "split": {"kind": "last_per_user"},
                          "models": ["fm_regression"],
                          "params": {"fm_regression": {"rank": 2, "n_iter": 30,
                                                       "implicit_features": False}},
                          "item_features": {"source": {"path": str(tmp_path / "items.csv")},
                                            "id": "product_id"}}}
    run = recommend(spec, output=tmp_path / "out")
    assert run.manifest["side_features"] == {"item": ["category"]}
    with_features = run.metrics().query("model == 'fm_regression' and split == 'mean'")["mse"].iloc[0]
    spec["recommend"].pop("item_features")
    without = recommend(spec, output=tmp_path / "out2").metrics().query(
        "model == 'fm_regression' and split == 'mean'")["mse"].iloc[0]
    assert with_features != without  # the category entered the model
    categories.iloc[[0, 0]].to_csv(tmp_path / "dup.csv", index=False)
    spec["recommend"]["item_features"] = {"source": {"path": str(tmp_path / "dup.csv")},
                                          "id": "product_id"}
    with pytest.raises(segmint.InputError, match="unique") as caught:
        recommend(spec, output=tmp_path / "out3")
    assert caught.value.row == 2


def test_a_blend_from_the_spec_weights_its_parts(tmp_path):
    """A blend with weight 0 on EASE ranks as popularity alone: the same ranking measures."""
    spec = {"name": "blend", "source": {"path": str(ROOT / "src" / "segmint" / "data"
                                                   / "online_retail.parquet")},
            "recommend": {"interactions": {"format": "transactions", "scale": None},
                          "split": {"kind": "time", "ratio": 0.8},
                          "models": ["blend", "ease"],
                          "params": {"ease": {"l2": 100.0},
                                     "blend": {"models": ["ease", "popularity"], "weights": [0.0, 1.0]}},
                          "top_n": 5}}
    lines = pd.read_parquet(ROOT / "src" / "segmint" / "data" / "online_retail.parquet").head(60_000)
    mean = recommend(spec, lines, output=tmp_path).metrics().query("split == 'mean'").set_index("model")
    for measure in ("ndcg_at_k", "precision_at_k", "recall_at_k"):
        assert mean.loc["blend", measure] == pytest.approx(mean.loc["popularity", measure])
        assert mean.loc["blend", measure] != pytest.approx(mean.loc["ease", measure])
