"""The report's summary and segment cards, checked against the run's own customers and
labels (not against the profile the cards are drawn from)."""
from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

import segmint

BUNDLED = Path(str(resources.files("segmint") / "data" / "online_retail.parquet"))
FEATURES = ["gross_revenue", "recency_days", "quantity_of_products", "returns", "frequency"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    spec = {"name": "cards", "recipe": {"features": "insiders"},
            "sweep": {"scalings": ["log"],
                      "algorithms": [{"name": "kmeans", "grid": {"n_clusters": [4]}}]},
            "select": {"stability_resamples": 2, "stability_top": 1},
            "profile": {"projections": [], "explain": False}}
    return segmint.run(BUNDLED, spec, output=tmp_path_factory.mktemp("runs"))


@pytest.fixture(scope="module")
def cards(run) -> dict[int, str]:
    page = run.report_path.read_text(encoding="utf-8")
    found = re.findall(r'<article class="card" data-segment="(-?\d+)">(.*?)</article>', page, re.S)
    return {int(segment): body for segment, body in found}


def _text(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).split()).replace("&#x27;", "'")


def test_one_card_per_segment_with_its_size_and_revenue_share(run, cards):
    customers = run.customers()
    labels = run.solution().labels().set_index("customer")["segment"]
    labels = labels.loc[customers.index]
    sizes = labels.value_counts()
    revenue = customers["gross_revenue"].groupby(labels.to_numpy()).sum()
    assert sorted(cards) == sorted(int(s) for s in sizes.index)
    for segment, body in cards.items():
        figures = _text(re.search(r'<p class="figures">(.*?)</p>', body, re.S).group(1))
        assert f"{int(sizes[segment]):,} customers" in figures
        share = 100 * revenue[segment] / customers["gross_revenue"].sum()
        assert f"{share:.1f}% of revenue" in figures, (figures, share)


def test_the_three_traits_are_the_largest_lifts(run, cards):
    customers = run.customers()
    labels = run.solution().labels().set_index("customer")["segment"].loc[customers.index]
    overall = customers[FEATURES].mean()
    for segment, body in cards.items():
        means = customers.loc[labels.to_numpy() == segment, FEATURES].mean()
        lifts = (means / overall).replace(0, np.nan).dropna()
        expected = list(np.abs(np.log(lifts)).sort_values(ascending=False).index[:3])
        traits = [_text(t) for t in re.findall(r"<li>(.*?)</li>", body, re.S)]
        assert [t.split(" ")[0] for t in traits] == \
            [f.replace("_", " ").split(" ")[0] for f in expected], (traits, expected)


def test_the_insiders_card_is_the_top_revenue_segment_and_says_keep_them(run, cards):
    customers = run.customers()
    labels = run.solution().labels().set_index("customer")["segment"].loc[customers.index]
    means = customers["gross_revenue"].groupby(labels.to_numpy()).mean().drop(index=-1,
                                                                            errors="ignore")
    top = int(means.idxmax())
    assert "Insiders" in cards[top] and "Reward and keep them" in cards[top]
    assert all("Insiders" not in body for segment, body in cards.items() if segment != top)
    assert "Look at them one by one" in cards[-1]


def test_the_summary_says_how_many_customers_and_which_segmentation_in_words(run):
    page = run.report_path.read_text(encoding="utf-8")
    summary = _text(re.search(r'<section id="summary".*?</section>', page, re.S).group(0))
    assert f"{len(run.customers()):,} customers from online_retail.parquet" in summary
    description = run.solution().metrics["description"]
    assert f"The recommended segmentation is {description}" in summary
    assert run.recommended not in summary  # words, not the solution's code name
    outliers = int((run.solution().labels()["segment"] == -1).sum())
    assert f"{outliers:,} customers" in summary and "outliers" in summary
