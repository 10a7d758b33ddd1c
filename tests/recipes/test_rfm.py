"""RFM quintile scores and named segments, checked by hand and against pandas."""
from __future__ import annotations

import re
from importlib import resources

import numpy as np
import pandas as pd
import pytest

from segmint.errors import InputError
from segmint.io import read_frame
from segmint.recipes import customer_table, required_roles
from segmint.recipes.rfm import RFM_SEGMENT_MAP, RFM_SEGMENTS, rfm_segment, rfm_segments


@pytest.fixture(scope="module")
def retail_rfm() -> pd.DataFrame:
    path = resources.files("segmint") / "data" / "online_retail.parquet"
    required, optional = required_roles("rfm")
    with resources.as_file(path) as p:
        lines = read_frame(pd.read_parquet(p), required=required, optional=optional)
    return customer_table(lines, "rfm").frame


def _table(recency, frequency, monetary, ids=None) -> pd.DataFrame:
    ids = ids or [f"c{i:02d}" for i in range(len(recency))]
    return pd.DataFrame({"recency_days": np.asarray(recency, float),
                         "frequency": np.asarray(frequency, float),
                         "monetary": np.asarray(monetary, float)},
                        index=pd.Index(ids, name="customer", dtype="string"))


@pytest.mark.parametrize(("r", "f", "segment"), [
    (5, 5, "Champions"), (5, 4, "Champions"),
    (4, 5, "Loyal customers"), (3, 4, "Loyal customers"), (3, 5, "Loyal customers"),
    (5, 2, "Potential loyalists"), (4, 3, "Potential loyalists"),
    (5, 1, "New customers"), (4, 1, "Promising"), (3, 3, "Need attention"),
    (3, 1, "About to sleep"), (3, 2, "About to sleep"),
    (2, 3, "At risk"), (1, 4, "At risk"),
    (1, 5, "Cannot lose them"), (2, 5, "Cannot lose them"),
    (1, 1, "Hibernating"), (2, 2, "Hibernating"), (1, 2, "Hibernating"),
])
def test_hand_picked_score_pairs(r, f, segment):
    assert rfm_segment(r, f) == segment


def test_every_score_pair_matches_exactly_one_pattern():
    for r in range(1, 6):
        for f in range(1, 6):
            hits = [name for pattern, name in RFM_SEGMENT_MAP if re.fullmatch(pattern, f"{r}{f}")]
            assert len(hits) == 1, (r, f, hits)
    assert set(RFM_SEGMENTS) == {name for _, name in RFM_SEGMENT_MAP}
    assert len(RFM_SEGMENTS) == 10 and RFM_SEGMENTS[0] == "Champions"
    with pytest.raises(ValueError):
        rfm_segment(0, 3)


def test_scores_on_ten_customers_by_hand():
    # ten distinct values per column: two customers per score, 5 = best
    table = _table(recency=[0, 1, 2, 3, 4, 5, 6, 7, 8, 9],        # c00 most recent
                   frequency=[1, 2, 3, 4, 5, 6, 7, 8, 9, 10],     # c09 most frequent
                   monetary=[10, 90, 20, 80, 30, 70, 40, 60, 50, 100])
    s = rfm_segments(table)
    assert s["r_score"].tolist() == [5, 5, 4, 4, 3, 3, 2, 2, 1, 1]
    assert s["f_score"].tolist() == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert s["m_score"].tolist() == [1, 5, 1, 4, 2, 4, 2, 3, 3, 5]
    # (R, F): c00 (5,1) new, c02 (4,2) potential loyalist, c04 (3,3) need attention,
    # c06 (2,4) at risk, c09 (1,5) cannot lose them
    assert s.loc[["c00", "c02", "c04", "c06", "c09"], "rfm_segment"].tolist() == [
        "New customers", "Potential loyalists", "Need attention", "At risk", "Cannot lose them"]
    assert s["rfm_segment"].dtype == "string"


def test_scores_are_fifths_in_one_to_five_on_online_retail(retail_rfm):
    s = rfm_segments(retail_rfm)
    n = len(s)
    assert n > 4000
    for column in ("r_score", "f_score", "m_score"):
        assert set(s[column]) == {1, 2, 3, 4, 5}
    # monetary is nearly all distinct: each m score holds a fifth of the customers, +-1
    counts = s["m_score"].value_counts()
    assert (counts - n / 5).abs().max() <= 1
    # higher spend never gets a lower score
    by_spend = s.assign(m=retail_rfm["monetary"]).sort_values(["m", "m_score"])
    assert by_spend["m_score"].is_monotonic_increasing
    by_recency = s.assign(r=retail_rfm["recency_days"]).sort_values(["r", "r_score"], ascending=[True, False])
    assert by_recency["r_score"].is_monotonic_decreasing
    assert set(s["rfm_segment"]) <= set(RFM_SEGMENTS)
    # the segment is the map applied to (R, F), row by row
    expect = [rfm_segment(r, f) for r, f in zip(s["r_score"], s["f_score"], strict=True)]
    assert s["rfm_segment"].tolist() == expect


def test_ties_are_broken_by_customer_id_whatever_the_row_order():
    # everyone spent the same: ranking first still makes fifths, in customer-id order
    table = _table(recency=range(10), frequency=[1] * 10, monetary=[5.0] * 10)
    s = rfm_segments(table)
    assert s["m_score"].tolist() == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    shuffled = table.sample(frac=1.0, random_state=3)
    again = rfm_segments(shuffled)
    assert list(again.index) == list(shuffled.index)
    pd.testing.assert_frame_equal(again.loc[s.index], s)


def test_one_customer_scores_three():
    s = rfm_segments(_table([4], [2], [10]))
    assert s.iloc[0].tolist() == [3, 3, 3, "Need attention"]


def test_missing_columns_and_values_are_refused():
    with pytest.raises(InputError, match="missing \\['monetary'\\]"):
        rfm_segments(_table([1], [1], [1]).drop(columns="monetary"))
    table = _table([1, 2], [1, np.nan], [1, 2])
    with pytest.raises(InputError) as err:
        rfm_segments(table)
    assert err.value.column == "frequency" and err.value.row == 2
