"""Segment names and descriptions in a marketer's words, with figures a reader can check."""
from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from segmint.explain import NOISE_NAME, describe_segments, good_direction, name_segments, profile


def _rfm(revenue: str = "gross_revenue", recency: str = "recency_days", seed: int = 0):
    """Segment 0 spends much and bought lately; 1 spends little and left long ago; 2 sits
    between. Returns the table and the labels."""
    rng = np.random.default_rng(seed)
    sizes = [300, 500, 700]
    labels = np.repeat([0, 1, 2], sizes)
    table = pd.DataFrame({
        revenue: np.concatenate([rng.normal(5_000, 500, 300), rng.normal(200, 50, 500),
                                 rng.normal(1_000, 100, 700)]),
        recency: np.concatenate([rng.integers(1, 20, 300), rng.integers(200, 400, 500),
                                 rng.integers(60, 120, 700)]).astype("float64"),
        "age": rng.normal(45, 12, 1_500),  # the same in every segment
    })
    return table, labels


@pytest.mark.parametrize(("revenue", "recency", "high"), [
    ("gross_revenue", "recency_days", "high revenue"),
    ("Revenue", "Recency", "high revenue"),
    ("monetary", "RecencyDays", "high spend"),
    ("total_spend", "days_since_last_order", "high spend"),
])
def test_high_revenue_and_recent_buyers_are_named_so(revenue, recency, high):
    table, labels = _rfm(revenue, recency)
    names = name_segments(table, labels)
    parts = names[0].split(", ")
    assert high in parts and "recent" in parts
    assert not any("recency" in part or "lapsed" in part for part in parts)
    lapsed = names[1].split(", ")
    assert "lapsed" in lapsed and high.replace("high", "low") in lapsed
    assert not any("age" in part or "older" in part or "younger" in part for part in names[0].split(", "))


def test_a_categorical_segment_is_named_by_its_level_never_high_or_low():
    rng = np.random.default_rng(1)
    n = 1_000
    labels = np.repeat([0, 1], [400, 600])
    job = np.where(rng.random(n) < 0.7, "blue-collar", "admin.")
    job[400:] = rng.choice(["admin.", "technician", "retired", "blue-collar"], 600, p=[.4, .3, .2, .1])
    table = pd.DataFrame({"job": pd.Series(job, dtype="string"), "age": rng.normal(40, 10, n),
                          "Region": rng.choice([1, 2, 3], n)})
    names = name_segments(table, labels, types={"job": "categorical", "age": "numeric",
                                                "Region": "categorical"})
    share = (job[:400] == "blue-collar").mean()  # about 0.7: most, not all but a few
    assert 0.5 < share < 0.9
    assert names[0].split(", ")[0] == "mostly blue-collar"
    assert not re.search(r"\b(high|low) (job|region)\b", " ".join(names.values()))


def test_yes_no_columns_read_as_having_the_thing():
    labels = np.repeat([0, 1], [50, 50])
    housing = np.array(["yes"] * 48 + ["no"] * 2 + ["no"] * 45 + ["yes"] * 5)
    as_text = pd.DataFrame({"housing": housing})
    names = name_segments(as_text, labels, types={"housing": "categorical"})
    assert names == {0: "with a housing loan", 1: "without a housing loan"}
    as_binary = pd.DataFrame({"housing": (housing == "yes").astype(int),
                              "default": np.r_[np.zeros(50), np.ones(30), np.zeros(20)].astype(int)})
    names = name_segments(as_binary, labels, types={"housing": "binary", "default": "binary"})
    # segment 1: 30 of 50 in default (60%: most, but not all but a few)
    assert "with a housing loan" in names[0].split(", ")
    assert "mostly in default" in names[1].split(", ")


def test_names_are_unique_within_a_solution():
    table, labels = _rfm()
    # segments 3 and 4 are two halves of segment 0: the same words, told apart by number
    labels = labels.copy()
    zeros = np.flatnonzero(labels == 0)
    labels[zeros[::2]] = 3
    labels[zeros[1::2]] = 4
    names = name_segments(table, labels)
    assert len(set(names.values())) == len(names)
    assert names[3].endswith("(3)") and names[4].endswith("(4)")
    assert names[3].removesuffix(" (3)") == names[4].removesuffix(" (4)")


def test_descriptions_state_size_share_and_revenue_by_hand():
    table, labels = _rfm()
    labels = labels.copy()
    labels[:7] = -1  # seven outliers
    texts = describe_segments(table, labels, revenue="gross_revenue")
    total = table["gross_revenue"].sum()
    for segment, text in texts.items():
        count = int((labels == segment).sum())
        assert text.startswith(f"{count:,} customers ({count / len(labels):.1%})")
        revenue_share = table["gross_revenue"][labels == segment].sum() / total
        assert re.search(r"; ([\d.]+)% of revenue\.$", text).group(1) == \
            (f"{revenue_share * 100:.0f}" if revenue_share >= 0.1 else f"{revenue_share * 100:.1f}")
    assert "not clustered" in texts[-1]
    # spend of segment 0 against the average, as the sentence gives it
    ratio = table["gross_revenue"][labels == 0].mean() / table["gross_revenue"].mean()
    assert f"revenue {ratio:.1f}x the average" in texts[0]
    assert "of revenue" not in describe_segments(table, labels)[0]  # none declared, none made up


def test_descriptions_give_the_dominant_level_share_against_overall():
    rng = np.random.default_rng(2)
    job = pd.Series(rng.choice(["blue-collar", "admin.", "student"], 900, p=[.3, .5, .2]), dtype="string")
    labels = rng.integers(0, 3, 900)
    job[labels == 1] = np.where(rng.random(int((labels == 1).sum())) < 0.8, "blue-collar", "admin.")
    table = pd.DataFrame({"job": job})
    text = describe_segments(table, labels)[1]
    mine = (job[labels == 1] == "blue-collar").mean()
    overall = (job == "blue-collar").mean()
    found = re.search(r"mostly blue-collar \((\d+)% vs (\d+)% overall\)", text)
    assert found, text
    assert found.groups() == (f"{mine * 100:.0f}", f"{overall * 100:.0f}")


def test_profile_has_a_description_next_to_the_name():
    table, labels = _rfm()
    p = profile(table, labels, revenue="gross_revenue")
    columns = list(p.columns)
    assert columns.index("description") == columns.index("name") + 1
    assert p["description"].str.endswith("of revenue.").all()
    labels = labels.copy()
    labels[:3] = -1
    p = profile(table, labels).set_index("segment")
    assert p.loc[-1, "name"] == NOISE_NAME and "outliers" in p.loc[-1, "description"]


def test_other_columns_read_as_words():
    rng = np.random.default_rng(3)
    labels = np.repeat([0, 1], 100)
    table = pd.DataFrame({"GroceryShare": np.r_[rng.normal(10, 1, 100), rng.normal(2, 1, 100)],
                          "NumWebVisits": np.r_[rng.normal(2, 1, 100), rng.normal(9, 1, 100)]})
    names = name_segments(table, labels)
    assert set(names[0].split(", ")) == {"high grocery share", "few visits"}
    assert set(names[1].split(", ")) == {"low grocery share", "many visits"}


@pytest.mark.parametrize(("feature", "direction"), [
    ("recency", -1), ("Recency", -1), ("recency_days", -1), ("RECENCY_DAYS", -1), ("RecencyDays", -1),
    ("days_since_last_purchase", -1), ("returns", -1), ("Returns", -1), ("n_returns", -1),
    ("revenue", 1), ("gross_revenue", 1), ("Revenue", 1), ("spend", 1), ("total_spend", 1),
    ("monetary", 1), ("MonetaryValue", 1), ("frequency", 1), ("Frequency", 1),
    ("NumberOfOrders", 1), ("orders", 1),
    ("age", 0), ("balance", 0), ("Region", 0), ("days_since_first_purchase", 0),
])
def test_good_direction_reads_any_spelling(feature, direction):
    assert good_direction(feature) == direction


@pytest.mark.parametrize(("column", "high", "low"), [
    ("MntWines", "high spend on wines", "low spend on wines"),
    ("total_spend", "high spend", "low spend"),
    ("Year_Birth", "younger", "older"),  # a later birth year is a younger customer
    ("age", "older", "younger"),
    ("Dt_Customer", "long-standing", "new"),  # days since joining, as the attributes recipe makes it
    ("NumberOfOrders", "many orders", "few orders"),
    ("balance", "high balance", "low balance"),
    ("Kidhome", "more children", "fewer children"),
])
def test_numeric_columns_by_the_words_of_their_name(column, high, low):
    labels = np.repeat([0, 1], 50)
    table = pd.DataFrame({column: np.r_[np.linspace(10, 20, 50), np.linspace(1, 5, 50)]})
    assert name_segments(table, labels) == {0: high, 1: low}
