"""The rule-based RFM solution beside the clustered ones: its labels, its place in the
leaderboard and its scoring of new customers."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import segmint
from segmint.recipes.rfm import RFM_SEGMENTS, rfm_segment

CDNOW = Path(__file__).resolve().parents[2] / "examples" / "data" / "cdnow_sample.txt"


@pytest.fixture(scope="module")
def rfm_run(tmp_path_factory):
    spec = {"name": "cdnow", "source": {"path": str(CDNOW), "header": False,
                                        "names": ["customer", "date", "quantity", "amount"]},
            "recipe": {"features": "rfm"},
            "sweep": {"scalings": ["log"],
                      "algorithms": [{"name": "kmeans", "grid": {"n_clusters": [2, 3, 4]}}]},
            "select": {"stability_resamples": 2}}
    return segmint.run(spec, output=tmp_path_factory.mktemp("runs"))


def test_rfm_segments_are_a_solution_never_recommended(rfm_run):
    board = rfm_run.leaderboard().set_index("solution")
    row = board.loc["rfm_segments"]
    assert row["algorithm"] == "rfm_rules" and not row["eligible"] and not row["recommended"]
    assert row["davies_bouldin"] > 0  # measured on the same matrix as the clustered ones
    prof = rfm_run.solution("rfm_segments").profile()
    assert set(prof["name"]) <= set(RFM_SEGMENTS)
    assert prof["size"].sum() == len(rfm_run.customers())


def test_rfm_labels_follow_the_score_map(rfm_run):
    customers = rfm_run.customers()
    labels = rfm_run.solution("rfm_segments").labels().set_index("customer")["segment"]
    # independent quintile scores: rank (ties by customer id), five equal-count bins
    ordered = customers.sort_index()
    r = pd.qcut((-ordered["recency_days"]).rank(method="first"), 5, labels=False) + 1
    f = pd.qcut(ordered["frequency"].rank(method="first"), 5, labels=False) + 1
    expected = [RFM_SEGMENTS.index(rfm_segment(a, b)) for a, b in zip(r, f, strict=True)]
    assert (labels.loc[ordered.index].to_numpy() == np.array(expected)).all()


def test_rfm_scores_new_customers_on_the_runs_scale(rfm_run):
    customers = rfm_run.customers()
    sol = rfm_run.solution("rfm_segments")
    scored = sol.predict(customers.reset_index())
    labels = sol.labels().set_index("customer")["segment"]
    assert list(scored["customer"]) == list(customers.index)
    # a customer keeps its segment unless a tie at a score boundary was split by customer id:
    # wherever a recency (frequency) value got one R (F) score, the fitted scale gives it back
    ordered = customers.sort_index()
    r = pd.qcut((-ordered["recency_days"]).rank(method="first"), 5, labels=False) + 1
    f = pd.qcut(ordered["frequency"].rank(method="first"), 5, labels=False) + 1
    clear = (r.groupby(ordered["recency_days"]).transform("nunique") == 1) \
        & (f.groupby(ordered["frequency"]).transform("nunique") == 1)
    same = scored.set_index("customer")["segment"].loc[clear[clear].index]
    assert clear.sum() > len(customers) / 4
    assert (same.to_numpy() == labels.loc[same.index].to_numpy()).all()
    assert set(scored["name"]) <= set(RFM_SEGMENTS)
    # the best imaginable customer is a Champion, the worst hibernates
    extremes = pd.DataFrame({"customer": ["best", "worst"], "recency_days": [0.0, 1e6],
                             "frequency": [1e6, 0.0], "monetary": [1e9, 0.0]})
    assert sol.predict(extremes)["name"].tolist() == ["Champions", "Hibernating"]
