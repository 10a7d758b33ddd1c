"""An algorithm is registered in one place and every stage picks it up."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, ClusterMixin

import segmint
from segmint.cluster import ALGORITHMS, Algorithm, register_algorithm
from segmint.cluster.registry import model_predict


class SplitAtMedian(ClusterMixin, BaseEstimator):
    """A toy clusterer: customers below the median of the first prepared column are 0."""

    def __init__(self, n_clusters: int = 2, column: int = 0):
        self.n_clusters = n_clusters
        self.column = column

    def fit(self, X, y=None):
        X = np.asarray(X)
        self.threshold_ = float(np.median(X[:, self.column]))
        self.labels_ = self.predict(X)
        return self

    def predict(self, X):
        return (np.asarray(X)[:, self.column] >= self.threshold_).astype(np.int64)


@pytest.fixture()
def halves():
    algo = register_algorithm(Algorithm("halves", SplitAtMedian, {"n_clusters": [2]},
                                        label="median split", k_param="n_clusters",
                                        short={"n_clusters": "k"},
                                        assign=model_predict))
    yield algo
    del ALGORITHMS["halves"]


def test_a_registered_algorithm_runs_in_a_sweep_the_leaderboard_and_the_report(halves, tmp_path):
    rng = np.random.default_rng(1)
    spend = rng.lognormal(3, 1, 200)
    frame = pd.DataFrame({"spend": spend, "visits": rng.poisson(4, 200).astype(float)},
                         index=pd.Index([f"c{i}" for i in range(200)], name="customer"))
    spec = {"name": "halves", "recipe": {"kind": "attributes"},
            "sweep": {"scalings": ["none"], "algorithms": [
                {"name": "halves", "grid": {"column": [0, 1]}},
                {"name": "kmeans", "grid": {"n_clusters": [2, 3]}}]},
            "select": {"stability_resamples": 2}}
    run = segmint.run(frame, spec, output=tmp_path)
    board = run.leaderboard().set_index("solution")
    assert {"halves_k2_column0", "halves_k2_column1"} <= set(board.index)
    row = board.loc["halves_k2_column0"]
    assert row["algorithm"] == "halves" and row["description"].startswith("median split, 2 segments")
    # the labels are the toy's: above or below the median spend (independent computation)
    labels = run.solution("halves_k2_column0").labels().set_index("customer")["segment"]
    expected = (frame["spend"] >= np.median(frame["spend"])).astype(int)
    assert (labels.loc[frame.index].to_numpy() == expected.to_numpy()).all()
    assert row["n_clusters"] == 2 and row["sizes"] == f"0:{(expected == 0).sum()} 1:{(expected == 1).sum()}"
    html = run.report_path.read_text(encoding="utf-8")
    assert "halves_k2_column1" in html and "median split" in html


def test_unknown_algorithm_names_come_from_the_registry(halves):
    spec = {"source": {"path": "x.csv"}, "sweep": {"algorithms": [{"name": "halvez"}]}}
    with pytest.raises(segmint.SpecError, match="unknown algorithm 'halvez'.*'halves'"):
        segmint.load_spec(spec)
    assert segmint.load_spec({**spec, "sweep": {"algorithms": [{"name": "halves"}]}})
