"""The example specs in examples/ stay valid, and each one runs end to end.

The runs use a small grid (k-means, k 2..4, two stability resamples) to stay fast; what they
assert is computed again here from the raw example file with pandas.
"""
from pathlib import Path

import pandas as pd
import pytest

import segmint
from segmint import load_spec
from segmint.prepare.embed import rows_as_text
from segmint.spec import AlgorithmSpec

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))
DATA = ROOT / "examples" / "data"


def _example(name: str):
    return load_spec(ROOT / "examples" / name)


def _run_small(spec, tmp_path):
    """Run ``spec`` with k-means k 2..4 and two stability resamples."""
    spec.sweep.algorithms = [AlgorithmSpec(name="kmeans", grid={"n_clusters": [2, 3, 4]})]
    spec.select.stability_resamples = 2
    return segmint.run(spec, output=tmp_path)


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_spec_validates(path):
    spec = load_spec(path)
    assert spec.source.path and Path(spec.source.path).is_absolute()


def test_intel_kit_example_runs(tmp_path):
    spec = load_spec(EXAMPLES[[p.name for p in EXAMPLES].index("intel_kit.yaml")])
    spec.sweep.algorithms[0].grid = {"n_clusters": [2, 3], "tol": [0.001]}
    spec.sweep.algorithms[1].grid = {"min_samples": [10], "eps": [0.7]}
    run = segmint.run(spec, output=tmp_path)
    assert run.manifest["customers"] == 4256 and len(run.manifest["features"]) == 21


def test_wholesale_example_runs(tmp_path):
    raw = pd.read_csv(DATA / "wholesale_customers.csv")
    assert raw.shape == (440, 8)
    run = _run_small(_example("customers_wholesale.yaml"), tmp_path)

    # no id column: customers numbered by row
    assert run.manifest["customers"] == 440
    assert list(run.customers().index) == [str(i) for i in range(1, 441)]
    assert run.manifest["types"]["Channel"] == "categorical"
    assert run.manifest["types"]["Region"] == "categorical"
    info = run.feature_info().set_index("column")
    assert {"Channel_1", "Channel_2"} <= {c.strip() for c in info.loc["Channel", "became"].split(",")}
    for name in run.solutions():
        assert run.solution(name).profile()["size"].sum() == 440


def test_credit_card_example_runs(tmp_path):
    raw = pd.read_csv(DATA / "credit_card_customers.csv")
    spec = _example("customers_credit_card.yaml")
    run = _run_small(spec, tmp_path)

    assert list(run.customers().index) == list(raw["CUST_ID"])
    info = run.feature_info().set_index("column")
    assert info.loc["MINIMUM_PAYMENTS", "imputed"] == raw["MINIMUM_PAYMENTS"].isna().sum() == 9
    assert info.loc["CREDIT_LIMIT", "imputed"] == raw["CREDIT_LIMIT"].isna().sum() == 6

    # revenue share: each segment's PURCHASES over all PURCHASES, from the raw file
    labels = run.solution().labels()
    spend = raw.set_index("CUST_ID")["PURCHASES"]
    by_segment = spend.loc[labels["customer"]].groupby(labels["segment"].to_numpy()).sum()
    profile = run.solution().profile().set_index("segment")
    expected = (by_segment / spend.sum()).reindex(profile.index)
    pd.testing.assert_series_equal(profile["revenue_share"], expected, check_names=False,
                                   check_dtype=False, rtol=1e-9)

    # missing: error names the first column with a missing value and its first such row
    strict = spec.model_copy(deep=True)
    strict.recipe.missing = "error"
    column = next(c for c in raw.columns if raw[c].isna().any())
    row = int(raw[column].isna().to_numpy().argmax()) + 1  # 1-based data row
    with pytest.raises(segmint.InputError) as caught:
        segmint.run(strict, output=tmp_path / "strict")
    assert column in str(caught.value) and f"row {row}" in str(caught.value)


def test_bank_example_runs(tmp_path):
    spec = _example("customers_bank.yaml")
    raw = pd.read_csv(spec.source.path, sep=";")
    assert raw.shape == (45211, 17)
    run = _run_small(spec, tmp_path)

    # the file has no id column: customers are row numbers, and age is a feature, not the id
    assert run.manifest["customers"] == 45211
    ids = run.customers().index
    assert ids[0] == "1" and ids[-1] == "45211" and ids.is_unique
    types = run.manifest["types"]
    assert types["age"] == "numeric" and types["job"] == "categorical"
    assert types["default"] == types["housing"] == types["loan"] == "binary"
    assert set(types) == {"age", "job", "marital", "education", "default", "balance",
                          "housing", "loan"}


@pytest.mark.parametrize("name, header", [("cdnow_rfm.yaml", None), ("cdnow_rfm_header.yaml", 0)])
def test_cdnow_example_runs(tmp_path, name, header):
    spec = _example(name)
    raw = pd.read_csv(spec.source.path, sep=r"\s+", header=header, dtype={0: str})
    raw.columns = ["customer", "date", "quantity", "amount"]
    assert raw["customer"].iloc[0] == "00001"
    run = _run_small(spec, tmp_path)

    customers = run.customers()
    assert sorted(customers.index) == sorted(raw["customer"].unique())
    # monetary is the sum of the amounts (a line total), not quantity x amount
    assert customers["monetary"].sum() == pytest.approx(raw["amount"].sum(), rel=1e-9)
    profile = run.solution().profile()
    assert (profile["mean_monetary"] * profile["size"]).sum() == pytest.approx(
        raw["amount"].sum(), rel=1e-9)
    assert profile["revenue_share"].sum() == pytest.approx(1.0)
    assert "rfm_segments" in set(run.leaderboard()["solution"])


def test_bank_llm_comparison_runs_on_a_sample(tmp_path, monkeypatch):
    """The LLM comparison (one-hot k-means, k-prototypes, k-means on MiniLM embeddings) on
    1,500 bank clients: every way is on the leaderboard, measured in its own space and in the
    common one, and the report shows the projections and the surrogate's explanation."""
    monkeypatch.setenv("SEGMINT_CACHE", str(tmp_path / "cache"))
    spec = _example("bank_llm.yaml")
    raw = pd.read_csv(spec.source.path, sep=";")
    sample = raw.sample(1500, random_state=0)
    sample.to_csv(tmp_path / "bank.csv", sep=";", index=False)
    spec.source.path = str(tmp_path / "bank.csv")
    for algorithm in spec.sweep.algorithms:
        algorithm.grid["n_clusters"] = [3, 4]
    spec.select.stability_resamples = 2
    spec.profile.projections = ["pca", "mca"]
    run = segmint.run(spec, output=tmp_path / "runs")

    board = run.leaderboard().set_index("solution")
    assert set(board.index) >= {"kmeans_k3_standard", "kmeans_k3_text", "kprototypes_k3",
                                "kmeans_k3_standard_all", "kmeans_k3_text_all", "kprototypes_k3_all"}
    assert (run.solution("kmeans_k3_text_all").labels()["segment"] >= 0).all()
    assert (board["n_clusters"] > 0).all()
    # 10% set apart by ECOD, as the article does; the rest clustered
    assert run.manifest["outliers"]["count"] == 150
    # one-hot k-means is measured in the common space itself; the text solutions are not
    same = board.loc["kmeans_k3_standard"]
    assert same["common_davies_bouldin"] == pytest.approx(same["davies_bouldin"])
    text = board.loc["kmeans_k3_text"]
    assert text["common_davies_bouldin"] != pytest.approx(text["davies_bouldin"])
    # the text space: 384 MiniLM dimensions; yes/no columns written as the file says them
    assert len(run.manifest["prepared_columns"]["text"]) == 384
    embedding = run.solution("kmeans_k3_text").model.named_steps["prepare"]
    assert embedding.words == {c: ["yes", "no"] for c in ("default", "housing", "loan")}
    first = raw.loc[sample.index[0]]
    text = rows_as_text(run.customers().head(1), embedding.columns_, words=embedding.words)[0]
    assert f"Housing: {first['housing']}, Loan: {first['loan']}" in text
    # the recommendation ranks in the common space: the chosen one is the best candidate there
    eligible = board[board["eligible"]]
    assert board.loc[run.recommended, "eligible"]
    assert eligible["rank"].min() == 1
    page = run.report_path.read_text(encoding="utf-8")
    assert "The segments, projected" in page and "What sets the segments apart" in page
    # the ways side by side: 3 ways x with and without the outliers, each its best-ranked
    from segmint.cluster import compare_ways

    ways = compare_ways(board.reset_index())
    assert len(ways) == 6 and "Ways compared" in page
    for row in ways.itertuples():
        group = board[(board["algorithm"] == board.loc[row.solution, "algorithm"])
                      & (board["representation"] == board.loc[row.solution, "representation"])]
        if group["rank"].notna().any():
            assert row.solution == group["rank"].idxmin()
    summary = pd.read_parquet(run.path / "solutions" / run.recommended / "explain_summary.parquet")
    assert summary.loc[0, "accuracy"] > 0.7


def test_insiders_tree_embedding_example_runs(tmp_path):
    """Forest leaves + UMAP as a space: its solutions are on the leaderboard, measured in the
    common (log) space too, and say plainly that they cannot score new customers."""
    spec = _example("insiders_tree.yaml")
    for algorithm in spec.sweep.algorithms:
        algorithm.grid["n_clusters"] = [3, 4]
    spec.select.stability_resamples = 2
    spec.profile.projections = ["pca"]
    run = segmint.run(spec, output=tmp_path)
    board = run.leaderboard().set_index("solution")
    assert {"kmeans_k3_tree", "kmeans_k4_tree", "kmeans_k3_log"} <= set(board.index)
    assert run.manifest["prepared_columns"]["tree"] == ["tree_umap_0", "tree_umap_1"]
    tree = board.loc["kmeans_k4_tree"]
    assert tree["common_davies_bouldin"] != pytest.approx(tree["davies_bouldin"])
    sol = run.solution("kmeans_k4_tree")
    labels = sol.labels()
    assert len(labels) == run.manifest["customers"] and labels["segment"].nunique() >= 4
    with pytest.raises(segmint.ModelError, match="tree embedding"):
        sol.predict(run.customers().head(5).reset_index())
